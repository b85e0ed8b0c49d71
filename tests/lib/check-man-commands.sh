#!/bin/sh
# check-man-commands.sh HELPGATECTL [MANPAGE] - every command that
# "helpgatectl" (run with no arguments) lists in its usage has an entry in
# the COMMANDS section of helpgatectl(1), and every option of the command's
# usage line ("--json", "--watch") is mentioned in that entry.
#
# A command is the leading lower-case words of a usage line ("customer add",
# "sla", "config check").  Its entry is a paragraph tag (the line after .TP
# or .TQ in COMMANDS) that starts with those words, with font escapes, \-
# and quotes undone, and does not start with a longer command ("sla explain"
# is not the entry of "sla"); it runs to the next tag of a command, .SS or
# .SH.  Prints one line per missing command or option and exits 1 if there
# is any; 0 otherwise.
set -u
here=$(cd "$(dirname "$0")/../.." && pwd)
ctl=${1:-$here/bin/helpgatectl}
man=${2:-$here/man/helpgatectl.1}
[ -x "$ctl" ] || { echo "check-man-commands: cannot run $ctl"; exit 1; }
[ -r "$man" ] || { echo "check-man-commands: cannot read $man"; exit 1; }

# The usage (helpgatectl with no arguments prints it to stderr, exit 2):
# "command<TAB>--opt --opt ..." per command line (two blanks, a letter).
usage=$("$ctl" 2>&1 </dev/null)
rows=$(printf '%s\n' "$usage" | sed -n '/^commands:/,/^options:/p' |
	awk '/^  [a-z]/ {
		cmd = ""; i = 1
		while (i <= NF && $i ~ /^[a-z][a-z-]*$/) { cmd = cmd (cmd == "" ? "" : " ") $i; i++ }
		opts = ""
		for (; i <= NF; i++) {
			w = $i
			while (match(w, /--[a-z][a-z0-9-]*/)) {
				o = substr(w, RSTART, RLENGTH)
				if (index(" " opts " ", " " o " ") == 0) opts = opts (opts == "" ? "" : " ") o
				w = substr(w, RSTART + RLENGTH)
			}
		}
		printf "%s\t%s\n", cmd, opts
	}')
n=$(printf '%s\n' "$rows" | grep -c .)
if [ "$n" -lt 5 ]; then
	echo "check-man-commands: found only $n commands in the usage of $ctl; has it changed shape?"
	printf '%s\n' "$usage" | sed 's/^/  /'
	exit 1
fi
cmds=$(printf '%s\n' "$rows" | cut -f 1)

# COMMANDS as plain text: "T<TAB>tag" for a paragraph tag, "S<TAB>" for a
# subsection heading, "B<TAB>text" for any other line.
plain=$(awk '
	/^\.SH/ { inside = ($0 ~ /^\.SH "?COMMANDS"?[ \t]*$/); tag = 0; next }
	!inside { next }
	/^\.SS/ { print "S\t"; tag = 0; next }
	/^\.(TP|TQ)/ { tag = 1; next }
	/^\.\\"/ { next }
	{ printf "%s\t%s\n", (tag ? "T" : "B"), $0; tag = 0 }' "$man" |
	sed -e 's/\\f[BIRP]//g' -e 's/\\f(..//g' -e 's/\\-/-/g' -e 's/\\&//g' -e 's/\\e/\\/g' \
	    -e 's/\\(em/--/g' -e 's/	\.[A-Za-z][A-Za-z]*[[:space:]]*/	/' -e 's/"//g' \
	    -e 's/  */ /g' -e 's/	 */	/')

# entry CMD: the text of CMD's entry, one line; empty if it has none.
entry() {
	printf '%s\n' "$plain" | awk -F '\t' -v cmd="$1" -v cmds="$cmds" '
		BEGIN {
			n = split(cmds, all, "\n")
			for (i = 1; i <= n; i++) { split(all[i], w, " "); first[w[1]] = 1 }
		}
		# starts(s, c): s is c, or c followed by a blank
		function starts(s, c) { return s == c || index(s, c " ") == 1 }
		function is_entry_of(s, c,    i) {
			if (!starts(s, c)) return 0
			for (i = 1; i <= n; i++)
				if (all[i] != c && length(all[i]) > length(c) && starts(all[i], c) && starts(s, all[i]))
					return 0
			return 1
		}
		$1 == "T" {
			split($2, w, " ")
			if (inside && (w[1] in first)) exit
			if (!inside && is_entry_of($2, cmd)) inside = 1
		}
		$1 == "S" { if (inside) exit }
		inside { printf "%s ", $2 }'
}

bad=0
tab=$(printf '\t')
while IFS="$tab" read -r cmd opts; do
	text=$(entry "$cmd")
	if [ -z "$text" ]; then
		echo "helpgatectl.1: no entry for the command \"$cmd\""
		bad=1
		continue
	fi
	for o in $opts; do
		case "$text" in
		*"$o"*) ;;
		*) echo "helpgatectl.1: the entry for \"$cmd\" does not mention $o"; bad=1 ;;
		esac
	done
done <<ROWS
$rows
ROWS
[ "$bad" = 0 ] && echo "helpgatectl.1 documents all $n commands of helpgatectl's usage with their options"
exit "$bad"
