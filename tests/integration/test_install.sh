#!/usr/bin/env bash
# test_install.sh BINDIR - "make install" and "make uninstall" (mk/install.mk)
# into throw-away DESTDIRs, installing the programs of BINDIR (make check
# gives build/san/bin; nothing is rebuilt).
#
#   1. PREFIX=/usr: every file in its place with its mode, nothing group- or
#      world-writable, the programs identical to BINDIR's; the installed
#      config names the installed tree (/etc/helpgate/keywords, ...) and
#      nothing of DESTDIR; re-rooted into DESTDIR it passes helpgate-milter
#      -n, helpgate-worker -n and helpgatectl config check; the units name
#      /usr/sbin and /etc/helpgate and pass systemd-analyze verify (skipped,
#      with the reason, where systemd-analyze does not work); the man pages
#      render without a warning; helpgate.conf.5 documents every key of
#      shared/config.c with its default (tests/lib/check-man-keys.sh), and
#      helpgatectl.1 every command that BINDIR's helpgatectl lists in its
#      usage, with the command's options (tests/lib/check-man-commands.sh).
#   2. An edited config and keyword list survive a second install (the new
#      versions go beside them as .dist-new, with a note), and "make
#      uninstall" removes everything else, leaving exactly those two.
#   3. The default PREFIX (/usr/local, config in /usr/local/etc/helpgate)
#      installs and uninstalls without leaving a file behind.
#   4. Controls, so that the checks can fail: a missing BINDIR program stops
#      install before it copies anything; a broken config fails -n; a man
#      page with an unknown macro warns; a man page without a key fails the
#      key check; a helpgatectl.1 without a command, or without one of its
#      options, fails the command check; a unit with a bogus key fails
#      systemd-analyze verify.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/lib/mailstack.sh"	# t_ok, t_fail, t_is, t_like, t_done

bindir=${1:-$root/bin}
bindir=$(cd "$bindir" 2>/dev/null && pwd) || { echo "not ok - no directory ${1:-bin}"; echo "0 passed, 1 failed"; exit 1; }
for p in helpgate-milter helpgate-worker helpgatectl; do
	[ -x "$bindir/$p" ] || { echo "not ok - $bindir/$p is not built"; echo "0 passed, 1 failed"; exit 1; }
done

tmp=$(mktemp -d /tmp/hg-test-install.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export LC_ALL=C.UTF-8

# hg_make ARGS...: make in the source tree, as a user would run it, with the
# make check parent's flags and variables kept out; output in $tmp/make.out.
hg_make() {
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES \
		make -C "$root" --no-print-directory "$@" >"$tmp/make.out" 2>&1
}

# mode FILE: its permission bits, octal.
mode() { stat -c %a "$1" 2>/dev/null || echo missing; }

# ---------------------------------------------------------------- 1. PREFIX=/usr
d=$tmp/root
if hg_make install DESTDIR="$d" PREFIX=/usr BIN="$bindir"; then
	t_ok "make install DESTDIR=... PREFIX=/usr BIN=$bindir"
else
	t_fail "make install DESTDIR=... PREFIX=/usr" "$(cat "$tmp/make.out")"
fi
install_out=$(cat "$tmp/make.out")

for p in usr/sbin/helpgate-milter usr/sbin/helpgate-worker usr/bin/helpgatectl; do
	t_is "$(mode "$d/$p")" 755 "/$p installed, mode 755"
	if cmp -s "$d/$p" "$bindir/${p##*/}"; then
		t_ok "/$p is $bindir/${p##*/}"
	else
		t_fail "/$p is $bindir/${p##*/}"
	fi
done
for f in etc/helpgate/helpgate.conf \
	usr/share/man/man1/helpgatectl.1 usr/share/man/man5/helpgate.conf.5 \
	usr/share/man/man8/helpgate-milter.8 usr/share/man/man8/helpgate-worker.8 \
	usr/lib/systemd/system/helpgate-milter.service \
	usr/lib/systemd/system/helpgate-worker.service \
	usr/share/doc/helpgate/INSTALL usr/share/doc/helpgate/README.md; do
	t_is "$(mode "$d/$f")" 644 "/$f installed, mode 644"
done

# keyword lists, templates and (when shipped) Sieve scripts: all of them.
for kind in keywords templates sieve; do
	[ -d "$root/conf/$kind" ] || continue
	missing=""
	n=0
	for f in "$root/conf/$kind"/*; do
		[ -f "$f" ] || continue
		n=$((n + 1))
		b=${f##*/}
		if ! cmp -s "$f" "$d/etc/helpgate/$kind/$b" || [ "$(mode "$d/etc/helpgate/$kind/$b")" != 644 ]; then
			missing="$missing $b"
		fi
	done
	if [ "$n" -gt 0 ] && [ -z "$missing" ]; then
		t_ok "all $n files of conf/$kind in /etc/helpgate/$kind, mode 644"
	else
		t_fail "all files of conf/$kind in /etc/helpgate/$kind, mode 644" "missing or different:$missing (of $n)"
	fi
done

writable=$(find "$d" -perm /022 ! -type l | sed "s|^$d||")
t_is "$writable" "" "nothing installed is group- or world-writable"
stray=$(find "$d" -name '*.dist-new' | sed "s|^$d||")
t_is "$stray" "" "a first install leaves no .dist-new"

# The installed config names the installed tree, never DESTDIR.
conf=$d/etc/helpgate/helpgate.conf
val() { awk -v k="$1" '$1 == k { v = $2 } END { print v }' "$2"; }
t_is "$(val KeywordsDir "$conf")" /etc/helpgate/keywords "KeywordsDir is the installed keyword lists"
t_is "$(val TemplatesDir "$conf")" /etc/helpgate/templates "TemplatesDir is the installed templates"
t_is "$(val Database "$conf")" /var/lib/helpgate/helpgate.db "Database is in /var/lib/helpgate (StateDirectory)"
t_is "$(val Socket "$conf")" unix:/run/helpgate/milter.sock "Socket is in /run/helpgate (RuntimeDirectory)"
kw=$(val KeywordsDir "$conf")
tp=$(val TemplatesDir "$conf")
if ls "$d$kw"/*.kw >/dev/null 2>&1 && [ -f "$d$tp/ack.en.txt" ]; then
	t_ok "KeywordsDir and TemplatesDir exist inside DESTDIR"
else
	t_fail "KeywordsDir and TemplatesDir exist inside DESTDIR" "$d$kw, $d$tp"
fi
leaks=$(grep -rl -- "$tmp" "$d/etc" "$d/usr/lib/systemd" "$d/usr/share/man" 2>/dev/null)
t_is "$leaks" "" "no installed text file names DESTDIR"

# The config, re-rooted into DESTDIR (its paths are absolute), passes the
# programs' own checks.
sed -e "s|/etc/helpgate/|$d/etc/helpgate/|g" -e "s|/var/lib/helpgate/|$tmp/var/|g" "$conf" >"$tmp/rerooted.conf"
mkdir -p "$tmp/var"
out=$("$d/usr/sbin/helpgate-milter" -n -c "$tmp/rerooted.conf" 2>&1)
t_like "$out" "config OK" "installed helpgate-milter -n accepts the installed config and keyword lists"
out=$("$d/usr/sbin/helpgate-worker" -n -c "$tmp/rerooted.conf" 2>&1)
t_like "$out" "config OK" "installed helpgate-worker -n accepts the installed config and templates"
if out=$("$d/usr/bin/helpgatectl" -c "$tmp/rerooted.conf" config check 2>&1); then
	t_ok "installed helpgatectl config check accepts the installed config"
else
	t_fail "installed helpgatectl config check accepts the installed config" "$out"
fi
{ cat "$tmp/rerooted.conf"; echo "NoSuchKey 1"; } >"$tmp/broken.conf"
if out=$("$d/usr/sbin/helpgate-milter" -n -c "$tmp/broken.conf" 2>&1); then
	t_fail "control: helpgate-milter -n refuses a config with an unknown key" "$out"
else
	t_like "$out" "unknown key" "control: helpgate-milter -n refuses a config with an unknown key"
fi

# Units: paths substituted, the service user, foreground, directories.
unitdir=$d/usr/lib/systemd/system
for u in helpgate-milter helpgate-worker; do
	f=$unitdir/$u.service
	t_is "$(grep -c '@[A-Z_]*@' "$f")" 0 "$u.service: every @...@ replaced"
	t_is "$(sed -n 's/^ExecStart=//p' "$f")" "/usr/sbin/$u -f -c /etc/helpgate/helpgate.conf" \
		"$u.service: ExecStart runs /usr/sbin/$u in the foreground with the installed config"
	t_is "$(grep -cxE 'User=helpgate|Group=helpgate|StateDirectory=helpgate|Restart=on-failure|NoNewPrivileges=yes|ProtectSystem=strict' "$f")" 6 \
		"$u.service: User/Group helpgate, StateDirectory, Restart=on-failure, hardening"
done
t_is "$(grep -cxE 'RuntimeDirectory=helpgate|RuntimeDirectoryMode=0750' "$unitdir/helpgate-milter.service")" 2 \
	"helpgate-milter.service: RuntimeDirectory=helpgate, mode 0750"
t_is "$(grep -c '^RuntimeDirectory=' "$unitdir/helpgate-worker.service")" 0 \
	"helpgate-worker.service has no RuntimeDirectory (stopping it would remove the milter's socket)"

# systemd-analyze verify, on copies whose paths exist here.
sa_skip=""
if ! command -v systemd-analyze >/dev/null 2>&1; then
	sa_skip="systemd-analyze is not installed"
else
	mkdir -p "$tmp/sa"
	printf '[Unit]\nDescription=probe\n[Service]\nExecStart=/bin/true\n' >"$tmp/sa/probe.service"
	if ! err=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify "$tmp/sa/probe.service" 2>&1) || [ -n "$err" ]; then
		sa_skip="systemd-analyze verify does not work here: $(printf '%s' "$err" | head -n 1)"
	fi
fi
if [ -n "$sa_skip" ]; then
	echo "# skipped systemd-analyze verify: $sa_skip"
else
	for u in helpgate-milter helpgate-worker; do
		sed -e "s|/usr/sbin/|$d/usr/sbin/|g" -e "s|/etc/helpgate/|$d/etc/helpgate/|g" \
			"$unitdir/$u.service" >"$tmp/sa/$u.service"
		# MANPATH: Documentation=man:... is checked against the installed pages.
		err=$(cd "$tmp/sa" && MANPATH=$d/usr/share/man SYSTEMD_LOG_LEVEL=warning \
			systemd-analyze verify "$u.service" 2>&1)
		t_is "$err" "" "systemd-analyze verify $u.service (and its man: links): no complaint"
	done
	sed 's/^Restart=on-failure$/Restart=on-failure\nBogusHardening=yes/' "$tmp/sa/helpgate-milter.service" >"$tmp/sa/bogus.service"
	err=$(cd "$tmp/sa" && MANPATH=$d/usr/share/man SYSTEMD_LOG_LEVEL=warning \
		systemd-analyze verify bogus.service 2>&1)
	t_like "$err" "BogusHardening" "control: systemd-analyze verify reports an unknown key"
fi

# Man pages: render without warnings.
mandir=$d/usr/share/man
manpages="$mandir/man1/helpgatectl.1 $mandir/man5/helpgate.conf.5 $mandir/man8/helpgate-milter.8 $mandir/man8/helpgate-worker.8"
# man_warnings FILE: what man (or groff) says while rendering FILE; "" if nothing.
man_warnings() {
	if command -v man >/dev/null 2>&1; then
		{ MANWIDTH=80 man -l --warnings "$1" >/dev/null; } 2>&1
	fi
	if command -v groff >/dev/null 2>&1; then
		groff -man -ww -z "$1" 2>&1
	fi
}
if ! command -v man >/dev/null 2>&1 && ! command -v groff >/dev/null 2>&1; then
	echo "# skipped man page rendering: neither man nor groff is installed"
else
	for m in $manpages; do
		t_is "$(man_warnings "$m")" "" "${m#"$d"} renders without a warning"
		if command -v man >/dev/null 2>&1; then
			text=$(MANWIDTH=80 man -l "$m" 2>/dev/null)
			t_like "$text" "NAME.*SYNOPSIS.*DESCRIPTION.*SEE ALSO" "${m#"$d"} has NAME, SYNOPSIS, DESCRIPTION ... SEE ALSO"
		fi
	done
	for m in $mandir/man8/helpgate-milter.8 $mandir/man8/helpgate-worker.8 $mandir/man1/helpgatectl.1; do
		t_is "$(grep -cE '^\.SH (FILES|EXIT STATUS)$' "$m")" 2 "${m#"$d"} has FILES and EXIT STATUS"
	done
	for m in $mandir/man8/helpgate-milter.8 $mandir/man8/helpgate-worker.8; do
		t_is "$(grep -cE '^\.SH SIGNALS$|SIGUSR1|SIGTERM' "$m")" 3 "${m#"$d"} documents SIGUSR1 and SIGTERM"
	done
	sed 's/^\.SH DESCRIPTION$/.SH DESCRIPTION\n.XYZZY nonsense/' "$mandir/man8/helpgate-milter.8" >"$tmp/bad.8"
	t_like "$(man_warnings "$tmp/bad.8")" "XYZZY|macro" "control: a page with an unknown macro warns"
fi
# doc_check WHAT SCRIPT INPUT PAGE: tests/lib/SCRIPT INPUT PAGE passes.
doc_check() {
	local out
	if out=$(sh "$root/tests/lib/$2" "$3" "$4" 2>&1); then
		t_ok "$1"
	else
		t_fail "$1" "$out"
	fi
}
# doc_control WHAT SCRIPT INPUT PAGE SED EXPECTED: with PAGE edited by the
# sed script SED, tests/lib/SCRIPT says EXPECTED (so the check can fail).
doc_control() {
	sed "$5" "$4" >"$tmp/control.man"
	t_like "$(sh "$root/tests/lib/$2" "$3" "$tmp/control.man" 2>&1)" "$6" "control: $1"
}
keys=(check-man-keys.sh "$root/shared/config.c" "$mandir/man5/helpgate.conf.5")
cmds=(check-man-commands.sh "$bindir/helpgatectl" "$mandir/man1/helpgatectl.1")
doc_check "helpgate.conf.5 documents every key of shared/config.c with its default" "${keys[@]}"
doc_control "the key check notices a key without an entry" "${keys[@]}" \
	'/^\.BI "MaxBodyScan /s/MaxBodyScan/MaxBodyScanned/' "no entry for MaxBodyScan"
doc_control "the key check notices a wrong default" "${keys[@]}" \
	'/^\.BI "PollInterval /,/^\.TP/s/^\.BR 200ms \.$/.BR 300ms ./' "PollInterval does not give the default"
doc_check "helpgatectl.1 documents every command of helpgatectl's usage, with its options" "${cmds[@]}"
doc_control "the command check notices a command without an entry" "${cmds[@]}" \
	'/^\.BI "case wait HG/s/case wait/case hold/' 'no entry for the command "case wait"'
doc_control "the command check notices an option left out" "${cmds[@]}" \
	's/\\-\\-no\\-message/\\-\\-quiet/g' 'entry for "case resolve" does not mention --no-message'

# ---------------------------------------------------------------- 2. edited files survive
cp "$conf" "$tmp/pristine.conf"
printf '\n# edited by the postmaster\nSupportAddress\t\tdesk@example.org\n' >>"$conf"
cp "$conf" "$tmp/edited.conf"
kwfile=$d/etc/helpgate/keywords/en.kw
printf '\noutage 3 mailbox on fire\n' >>"$kwfile"
cp "$kwfile" "$tmp/edited.kw"
if hg_make install DESTDIR="$d" PREFIX=/usr BIN="$bindir"; then
	t_ok "a second make install succeeds"
else
	t_fail "a second make install succeeds" "$(cat "$tmp/make.out")"
fi
second_out=$(cat "$tmp/make.out")
if cmp -s "$conf" "$tmp/edited.conf"; then
	t_ok "a second make install keeps the edited helpgate.conf"
else
	t_fail "a second make install keeps the edited helpgate.conf" "$(diff "$tmp/edited.conf" "$conf")"
fi
if cmp -s "$conf.dist-new" "$tmp/pristine.conf"; then
	t_ok "... and puts the new one beside it as helpgate.conf.dist-new"
else
	t_fail "... and puts the new one beside it as helpgate.conf.dist-new"
fi
t_like "$second_out" "helpgate\.conf differs.*dist-new" "... and says so"
if cmp -s "$kwfile" "$tmp/edited.kw" && cmp -s "$kwfile.dist-new" "$root/conf/keywords/en.kw"; then
	t_ok "an edited keyword list is kept too, the new one beside it"
else
	t_fail "an edited keyword list is kept too, the new one beside it"
fi
t_is "$(find "$d" -name '*.dist-new' | sed "s|^$d||" | sort | tr '\n' ' ')" \
	"/etc/helpgate/helpgate.conf.dist-new /etc/helpgate/keywords/en.kw.dist-new " \
	"unedited files get no .dist-new"

if hg_make uninstall DESTDIR="$d" PREFIX=/usr; then
	t_ok "make uninstall DESTDIR=... PREFIX=/usr"
else
	t_fail "make uninstall DESTDIR=... PREFIX=/usr" "$(cat "$tmp/make.out")"
fi
t_is "$(cd "$d" && find . ! -type d | sort | tr '\n' ' ')" \
	"./etc/helpgate/helpgate.conf ./etc/helpgate/keywords/en.kw " \
	"make uninstall removes everything but the edited config and keyword list"
if cmp -s "$conf" "$tmp/edited.conf"; then
	t_ok "the edited config is untouched by uninstall"
else
	t_fail "the edited config is untouched by uninstall"
fi
t_like "$(cat "$tmp/make.out")" "helpgate\.conf was changed after installation: kept" "uninstall says it kept the edited config"
left=$(cd "$d" && find . -type d -path '*helpgate*' | sort | tr '\n' ' ')
t_is "$left" "./etc/helpgate ./etc/helpgate/keywords " "uninstall removes helpgate's empty directories"

# ---------------------------------------------------------------- 3. default PREFIX
d2=$tmp/local
if hg_make install DESTDIR="$d2" BIN="$bindir"; then
	t_ok "make install with the default PREFIX"
else
	t_fail "make install with the default PREFIX" "$(cat "$tmp/make.out")"
fi
t_like "$(cat "$tmp/make.out")" "HELPGATE_CONF=/usr/local/etc/helpgate/helpgate.conf" \
	"it says how to point the programs at /usr/local/etc/helpgate"
ok=1
for f in usr/local/sbin/helpgate-milter usr/local/sbin/helpgate-worker usr/local/bin/helpgatectl \
	usr/local/etc/helpgate/helpgate.conf usr/local/share/man/man5/helpgate.conf.5 \
	usr/local/lib/systemd/system/helpgate-milter.service; do
	[ -f "$d2/$f" ] || { ok=0; echo "# missing /$f"; }
done
if [ "$ok" = 1 ]; then
	t_ok "PREFIX=/usr/local: sbin, bin, etc, share/man, lib/systemd/system"
else
	t_fail "PREFIX=/usr/local: sbin, bin, etc, share/man, lib/systemd/system"
fi
t_is "$(val KeywordsDir "$d2/usr/local/etc/helpgate/helpgate.conf")" /usr/local/etc/helpgate/keywords \
	"PREFIX=/usr/local: KeywordsDir follows SYSCONFDIR"
t_is "$(sed -n 's/^ExecStart=//p' "$d2/usr/local/lib/systemd/system/helpgate-worker.service")" \
	"/usr/local/sbin/helpgate-worker -f -c /usr/local/etc/helpgate/helpgate.conf" \
	"PREFIX=/usr/local: the units name /usr/local/sbin and /usr/local/etc"
hg_make uninstall DESTDIR="$d2"
t_is "$(cd "$d2" && find . ! -type d | sort | tr '\n' ' ')" "" "uninstall of an unedited install leaves no file"

# ---------------------------------------------------------------- 4. install needs the programs
d3=$tmp/nobin
mkdir -p "$tmp/emptybin"
if hg_make install DESTDIR="$d3" PREFIX=/usr BIN="$tmp/emptybin"; then
	t_fail "control: install with a BIN that lacks the programs fails" "$(cat "$tmp/make.out")"
else
	t_like "$(cat "$tmp/make.out")" "helpgate-milter is missing; run make first" \
		"control: install with a BIN that lacks the programs fails and says why"
fi
t_is "$( [ -e "$d3" ] && cd "$d3" && find . ! -type d)" "" "... having installed nothing"

[ -n "$install_out" ] && printf '%s\n' "$install_out" | sed 's/^/# make install: /'
t_done
