#!/bin/sh
# check-man-keys.sh [CONFIG_C [MANPAGE]] - every key of config_rows[] in
# shared/config.c has an entry in helpgate.conf(5) that states its default.
#
# An entry is a paragraph tag line ".B Key ..." or ".BI "Key ..." right after .TP,
# up to the next .TP/.SH/.SS.  Its text, with font escapes and \- undone,
# must contain "Default", and when the table has a default value, that value
# as written in the table ("256K", "mon-fri 09:00-18:00").  Prints one line
# per missing key or default and exits 1 if there is any; 0 otherwise.
set -u
here=$(cd "$(dirname "$0")/../.." && pwd)
config_c=${1:-$here/shared/config.c}
man=${2:-$here/man/helpgate.conf.5}
[ -r "$config_c" ] || { echo "check-man-keys: cannot read $config_c"; exit 1; }
[ -r "$man" ] || { echo "check-man-keys: cannot read $man"; exit 1; }

# "Key<TAB>default" per row; default "-" for NULL.
rows=$(sed -n '/config_rows\[\] *= *{/,/^};/p' "$config_c" |
	sed -n 's/^[[:space:]]*{[[:space:]]*"\([A-Za-z0-9]*\)",[^,]*,[^,]*,[[:space:]]*\(NULL\|"[^"]*"\).*/\1	\2/p' |
	sed 's/	NULL$/	-/; s/	"\(.*\)"$/	\1/')
n=$(printf '%s\n' "$rows" | grep -c .)
if [ "$n" -lt 10 ]; then
	echo "check-man-keys: found only $n keys in $config_c; has config_rows[] changed shape?"
	exit 1
fi

bad=0
tab=$(printf '\t')
while IFS="$tab" read -r key def; do
	# The entry: from its tag line to the next .TP, .SH or .SS, as plain text.
	text=$(awk -v key="$key" '
		BEGIN { inside = 0; tp = 0 }
		/^\.(TP|SH|SS)/ { if (inside) exit; tp = ($0 ~ /^\.TP/); next }
		{
			line = $0
			if (!inside) {
				t = line
				sub(/^\.B[IR]?[ \t]+"?/, "", t)
				if (tp && line ~ /^\.B[IR]?[ \t]/ && (t == key || index(t, key " ") == 1 || index(t, key "\"") == 1))
					inside = 1
				tp = 0
				if (!inside)
					next
			}
			print line
		}' "$man" |
		sed -e 's/\\f[BIRP]//g' -e 's/\\-/-/g' -e 's/\\&//g' -e 's/\\e/\\/g' \
		    -e 's/^\.[A-Z][A-Z]*[[:space:]]*//' -e 's/"//g' | tr '\n' ' ')
	if [ -z "$text" ]; then
		echo "helpgate.conf.5: no entry for $key"
		bad=1
		continue
	fi
	case "$text" in
	*Default*) ;;
	*) echo "helpgate.conf.5: the entry for $key does not say its default"; bad=1; continue ;;
	esac
	if [ "$def" != "-" ]; then
		case "$text" in
		*"$def"*) ;;
		*) echo "helpgate.conf.5: the entry for $key does not give the default \"$def\""; bad=1 ;;
		esac
	fi
done <<ROWS
$rows
ROWS
[ "$bad" = 0 ] && echo "helpgate.conf.5 documents all $n keys of config_rows[] with their defaults"
exit "$bad"
