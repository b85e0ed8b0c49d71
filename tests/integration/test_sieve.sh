#!/usr/bin/env bash
# test_sieve.sh BINDIR - the staff Sieve scripts of conf/sieve/ against real
# tagged mail.  Support mail goes through a private Postfix with the real
# helpgate-milter (and a second milter whose store cannot open, for
# degraded mail); helpgate-worker sends its acknowledgements and P1 notice
# through the same Postfix; the delivered Maildir files are run through
# Pigeonhole's sieve-test, and the folder and flags it would use are
# checked for each script.  Every script also compiles with sievec, and two
# controls show that the checks can fail: a script with a broken flag rule
# gives another answer, and a script with a syntax error does not compile.
#
# sieve-test cannot run as root; as root it is pointed at a tiny
# dovecot.conf under $MS_T with mail_uid nobody (nothing in /etc is used).
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/../lib/mailstack.sh"

bindir=${1:-bin}
for p in helpgate-milter helpgate-worker helpgatectl; do
	[ -x "$bindir/$p" ] || { echo "no $bindir/$p"; echo "0 passed, 1 failed"; exit 1; }
done
for p in sieve-test sievec; do
	command -v "$p" >/dev/null 2>&1 ||
		{ echo "no $p (package dovecot-sieve, see tests/lib/deps.sh)"; echo "0 passed, 1 failed"; exit 1; }
done
data="$repo/tests/data"
scripts="$repo/conf/sieve"
staff="helpgate-staff.sieve"
bytier="helpgate-by-tier.sieve"

ms_init || exit 1

# ---- Pigeonhole: a private config and a copy of the scripts that user
# nobody may compile next to (sieve-test saves the .svbin beside the script).
sv="$MS_T/sieve"
mkdir -p "$sv/scripts" "$sv/mail"
cp "$scripts"/*.sieve "$sv/scripts/"
chown -R nobody: "$sv"
cat >"$sv/dovecot.conf" <<CONF
# written by tests/integration/test_sieve.sh
mail_uid = nobody
mail_gid = $(id -gn nobody)
base_dir = $sv/run
state_dir = $sv/state
log_path = /dev/stderr
mail_location = maildir:$sv/mail
protocols =
ssl = no
CONF

# ---- helpgate: the real milter, a broken-store milter, the worker
conf="$MS_T/helpgate.conf"
write_conf() {	# write_conf FILE DATABASE
	cat >"$1" <<CONF
Socket unix:$MS_T/hg.sock
Database $2
DiagnoseResolver 127.0.0.1:9
SupportAddress support@example.com
StaffDomain staff.example.com
EscalationAddress oncall@staff.example.com
Timezone Europe/Kyiv
Syslog no
KeywordsDir $repo/conf/keywords
TemplatesDir $repo/conf/templates
StoreTimeout 500ms
PollInterval 100ms
CONF
}
write_conf "$conf" "$MS_T/hg.db"
ctl() { "$bindir/helpgatectl" -c "$conf" "$@"; }
ctl customer add mark.johnson@client.test --tier enterprise >/dev/null || t_fail "customer add enterprise"
ctl customer add ivan.petrov@client.test --tier trial >/dev/null || t_fail "customer add trial"
ctl customer add olga.smirnova@client.test --tier premium >/dev/null || t_fail "customer add premium"
ctl customer add watched@client.test --tier standard --incident-watch 21 >/dev/null || t_fail "customer add watch"

export MS_DELIVERY=maildir
ms_start_sink || exit 1
MS_MILTER_SOCKET="unix:$MS_T/hg.sock"
ms_start_milter "$bindir/helpgate-milter" -f -c "$conf" -p "$MS_MILTER_SOCKET" || exit 1
conf_broken="$MS_T/broken.conf"
write_conf "$conf_broken" "/nonexistent-dir/hg.db"
sed -i "s|^Socket .*|Socket unix:$MS_T/broken.sock|" "$conf_broken"
MS_MILTER_SOCKET="unix:$MS_T/broken.sock"
ms_start_milter "$bindir/helpgate-milter" -f -c "$conf_broken" -p "$MS_MILTER_SOCKET" || exit 1
ms_add_smtpd broken_port "unix:$MS_T/broken.sock"
ms_start_postfix "unix:$MS_T/hg.sock" || exit 1
echo "Relay smtp://127.0.0.1:$MS_SMTP_PORT" >>"$conf"
ms_spawn WORKER_PID "$bindir/helpgate-worker" -f -c "$conf"

# ---- the mail
sent=0
send() {	# send FILE [swaks args]
	local f=$1; shift
	if ms_send --data "$f" "$@"; then sent=$((sent + 1)); else t_fail "swaks accepted $(basename "$f")"; fi
}
mkmsg() {	# mkmsg FILE FROM TO SUBJECT MESSAGE-ID BODY [EXTRA-HEADERS]
	{
		printf 'From: %s\nTo: %s\nSubject: %s\nDate: %s\nMessage-ID: <%s>\n' \
		    "$2" "$3" "$4" "$(date -R)" "$5"
		[ -n "${7:-}" ] && printf '%b\n' "$7"
		printf 'MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n%s\n' "$6"
	} >"$1"
}

send "$data/en-outgoing-urgent.eml"	# P1, enterprise
send "$data/ru-koi8-qp.eml"		# P1 (срочно), trial
send "$data/ru-cp1251-b64.eml"		# P2, premium
mkmsg "$MS_T/p3.eml" "Ann <ann@client.test>" support@example.com "Error when opening the calendar" \
    "p3-1@client.test" "I get an error when I open the calendar in webmail."
send "$MS_T/p3.eml"			# P3, unknown
send "$data/howto.eml"			# P4, unknown
mkmsg "$MS_T/watch.eml" "W <watched@client.test>" support@example.com "Spam folder" "watch-1@client.test" \
    "Some messages land in the spam folder, is there a setting for that?"
send "$MS_T/watch.eml"			# standard+watch
send "$data/auto-reply.eml"
send "$data/list.eml"
send "$data/bounce.eml" --from '<>'
mkmsg "$MS_T/sales.eml" "Client <client@client.test>" sales@example.com "Prices" "sales-1@client.test" \
    "What does the premium plan cost?"
send "$MS_T/sales.eml" --to sales@example.com	# not support mail
# A stranger's "notice" to a staff mailbox, with a made-up seal: the milter
# must strip it, or the scripts would file and flag it as helpgate's own.
mkmsg "$MS_T/fakenotice.eml" "helpgate <support@example.com>" oncall@staff.example.com \
    "[HG-1] SLA breach: reset your password here" "fake-notice-1@evil.test" \
    "Click http://evil.test/login to keep your account." \
    "X-Helpgate-Notice: breach\nX-Helpgate-Urgency: P1\nX-Helpgate-Case: HG-1\nX-Helpgate-Seal: v=1; t=$(date +%s); c=1; s=$(printf '%064d' 0)"
send "$MS_T/fakenotice.eml" --from support@example.com --to oncall@staff.example.com
mkmsg "$MS_T/deg1.eml" "Dee <dee@client.test>" support@example.com "We cannot send any email, urgent!" \
    "degraded-1@client.test" "Outgoing mail is down for the whole office. Urgent!"
send "$MS_T/deg1.eml" --server "127.0.0.1:$broken_port"
mkmsg "$MS_T/deg4.eml" "Dee <dee@client.test>" support@example.com "How do I add an alias?" \
    "degraded-4@client.test" "Hello, how do I add an alias to my mailbox?"
send "$MS_T/deg4.eml" --server "127.0.0.1:$broken_port"

ms_wait_delivered "$sent" 60 && t_ok "all $sent messages delivered" ||
	t_fail "all $sent messages delivered" "$(ms_count_delivered) arrived"

by_id() { ms_find_by_header Message-ID "<$1>" | head -n 1; }
hdr() { ms_header "$1" "$2"; }

# The worker's acknowledgement to the enterprise client and its P1 notice
# to the escalation address (both pass the milter as helpgate's own mail).
find_in() {	# find_in ADDRESS HEADER REGEX: first message in that Maildir
	local f
	for f in "$MS_T/mail/$1"/new/*; do
		[ -f "$f" ] || continue
		[[ $(hdr "$f" "$2") =~ $3 ]] && { printf '%s\n' "$f"; return 0; }
	done
	return 1
}
ack="" notice=""
for ((i = 0; i < 300; i++)); do
	[ -z "$ack" ] && ack=$(find_in mark.johnson@client.test Auto-Submitted '^auto-replied$')
	[ -z "$notice" ] && notice=$(find_in oncall@staff.example.com X-Helpgate-Notice '.')
	[ -n "$ack" ] && [ -n "$notice" ] && break
	sleep 0.1
done
[ -n "$ack" ] && t_ok "worker acknowledged the P1 client" || t_fail "worker acknowledged the P1 client"
[ -n "$notice" ] && t_ok "worker sent a P1 notice to oncall@" || t_fail "worker sent a P1 notice to oncall@"

# ---- the messages are what the scripts expect (else a sieve failure
# below would point at the wrong place)
declare -A msg
msg[p1en]=$(by_id 20250303091241.5521@mail.client.test)
msg[p1ru]=$(by_id a7c1e0f2.4411@client.test)
msg[p2]=$(by_id '0f3b2d9e81c4$1a2b3c40$@client.test')
msg[p3]=$(by_id p3-1@client.test)
msg[p4]=$(by_id 20250307140233.GA1234@client.test)
msg[watch]=$(by_id watch-1@client.test)
msg[autoreply]=$(by_id autoreply.20250303092000@mail.client.test)
msg[list]=$(by_id newsletter-2025-03@lists.client.test)
msg[bounce]=$(by_id 20250303100005.4B2C1@mx.client.test)
msg[sales]=$(by_id sales-1@client.test)
msg[fakenotice]=$(by_id fake-notice-1@evil.test)
msg[deg1]=$(by_id degraded-1@client.test)
msg[deg4]=$(by_id degraded-4@client.test)
msg[ack]=$ack
msg[notice]=$notice
for k in "${!msg[@]}"; do
	[ -n "${msg[$k]}" ] || t_fail "message '$k' delivered"
done

tags() {	# tags FILE: "urgency tier auto status"
	local f=$1
	[ -n "$f" ] || { echo "(missing)"; return; }
	printf '%s %s %s %s\n' "$(hdr "$f" X-Helpgate-Urgency)" "$(hdr "$f" X-Helpgate-Tier)" \
	    "$(hdr "$f" X-Helpgate-Auto)" "$(hdr "$f" X-Helpgate-Status)"
}
t_is "$(tags "${msg[p1en]}")" "P1 enterprise  " "tagged: English outage P1, enterprise"
t_is "$(tags "${msg[p1ru]}")" "P1 trial  " "tagged: Russian outage P1, trial"
t_is "$(tags "${msg[p2]}")" "P2 premium  " "tagged: Russian incoming-mail P2, premium"
t_is "$(tags "${msg[p3]}")" "P3 unknown  " "tagged: ordinary defect P3"
t_is "$(tags "${msg[p4]}")" "P4 unknown  " "tagged: how-to P4"
t_like "$(tags "${msg[watch]}")" '^P[1-4] standard\+watch  $' "tagged: incident watch"
t_like "$(tags "${msg[autoreply]}")" '^P4 [a-z]+ auto-submitted $' "tagged: auto-reply"
t_like "$(tags "${msg[list]}")" '^P[1-4] [a-z]+ [a-z-]+ $' "tagged: list mail auto"
t_like "$(tags "${msg[bounce]}")" '^P[1-4] [a-z]+ [a-z-]+ $' "tagged: bounce auto"
t_is "$(grep -ci '^X-Helpgate-' "${msg[sales]:-/dev/null}")" 0 "non-support mail carries no X-Helpgate header"
t_is "$(tags "${msg[deg1]}")" "P1 unknown  degraded" "tagged: degraded P1"
t_like "$(tags "${msg[deg4]}")" '^P[34] unknown  degraded$' "tagged: degraded how-to (P3/P4)"
t_is "$(hdr "${msg[notice]:-/dev/null}" X-Helpgate-Urgency)" P1 "notice carries X-Helpgate-Urgency P1"
t_is "$(hdr "${msg[ack]:-/dev/null}" X-Helpgate-Urgency)" "" "acknowledgement carries no urgency"

# ---- sievec: every script compiles, cleanly
n=0
for s in "$sv"/scripts/*.sieve; do
	[ -f "$s" ] || continue
	n=$((n + 1))
	out=$(sievec -c "$sv/dovecot.conf" "$s" "$sv/$(basename "$s" .sieve).svbin" 2>&1)
	rc=$?
	if [ "$rc" = 0 ] && [ -z "$out" ] && [ -s "$sv/$(basename "$s" .sieve).svbin" ]; then
		t_ok "sievec $(basename "$s")"
	else
		t_fail "sievec $(basename "$s")" "exit $rc" "$out"
	fi
done
t_like "$n" '^[2-9]$' "conf/sieve has the scripts ($n)"
[ -f "$sv/scripts/$staff" ] && t_ok "$staff present" || t_fail "$staff present"
[ -f "$sv/scripts/$bytier" ] && t_ok "$bytier present" || t_fail "$bytier present"

# ---- sieve-test
# sieve_result SCRIPT FILE: what the script does with the message, as
# "FOLDER|FLAGS" per store action ("keep:FOLDER|..." for the implicit
# keep), actions joined with ";", flags sorted and lower case.
sieve_result() {
	local script=$1 file=$2 out rc
	[ -n "$file" ] && [ -f "$file" ] || { echo "(no message)"; return; }
	out=$(sieve-test -c "$sv/dovecot.conf" "$script" "$file" 2>&1)
	rc=$?
	printf '%s\n' "$out" >>"$MS_T/sieve-test.log"
	if [ "$rc" != 0 ] || ! grep -q 'final result: success' <<<"$out"; then
		echo "(sieve-test exit $rc: $(grep -m1 -iE 'error|fatal' <<<"$out"))"
		return
	fi
	LC_ALL=C awk '
		function flush() { if (folder != "") { res = res sep folder "|" flags; sep = ";" } folder = ""; flags = "" }
		/^Performed actions:/ { sect = "" ; next }
		/^Implicit keep:/ { flush(); sect = "keep:"; next }
		/^ \* store message in folder: / { flush(); sub(/^ \* store message in folder: /, ""); folder = sect $0; next }
		/^ \* / { flush(); line = $0; sub(/^ \* /, "", line); res = res sep "(" line ")"; sep = ";"; next }
		/^ +\+ add IMAP flags: / {
			sub(/^ +\+ add IMAP flags: /, "")
			n = split(tolower($0), w, " ")
			for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (w[j] < w[i]) { t = w[i]; w[i] = w[j]; w[j] = t }
			flags = ""; for (i = 1; i <= n; i++) flags = flags (i > 1 ? " " : "") w[i]
		}
		END { flush(); print res }
	' <<<"$out"
}

# expect KEY SCRIPT EXPECTED DESC
expect() {
	t_is "$(sieve_result "$sv/scripts/$2" "${msg[$1]:-}")" "$3" "$2: $4"
}

P1F='$important $label1 \flagged'
P2F='$important \flagged'

expect p1en "$staff" "Support/P1|$P1F" "English P1 outage -> Support/P1, flagged"
expect p1ru "$staff" "Support/P1|$P1F" "Russian P1 outage -> Support/P1, flagged"
expect p2 "$staff" "Support/P2|$P2F" "P2 -> Support/P2, flagged"
expect p3 "$staff" "Support/P3|" "P3 -> Support/P3, not flagged"
expect p4 "$staff" "Support/P4|" "P4 how-to -> Support/P4, not flagged"
expect watch "$staff" "Support/$(hdr "${msg[watch]:-/dev/null}" X-Helpgate-Urgency)|$(
	case $(hdr "${msg[watch]:-/dev/null}" X-Helpgate-Urgency) in P1) echo "$P1F" ;; P2) echo "$P2F" ;; esac)" \
    "watched customer -> its urgency folder"
expect autoreply "$staff" "Support/Auto|" "auto-reply -> Support/Auto, not flagged"
expect list "$staff" "Support/Auto|" "list mail -> Support/Auto"
expect bounce "$staff" "Support/Auto|" "bounce -> Support/Auto"
expect ack "$staff" "Support/Auto|" "helpgate's acknowledgement -> Support/Auto"
expect notice "$staff" "Support/Notices|$P2F" "helpgate's P1 notice -> Support/Notices, flagged"
expect deg1 "$staff" "INBOX|$P1F helpgate-degraded" "degraded P1 -> INBOX, flagged, Helpgate-Degraded"
expect deg4 "$staff" "INBOX|\\flagged helpgate-degraded" "degraded how-to -> INBOX, flagged, not \$Important"
expect sales "$staff" "keep:INBOX|" "non-support mail untouched (implicit keep)"
t_is "$(grep -ci '^X-Helpgate-' "${msg[fakenotice]:-/dev/null}")" 0 \
	"a stranger's notice with a made-up seal reaches staff without any X-Helpgate-* header"
expect fakenotice "$staff" "keep:INBOX|" "... so it is not filed or flagged as helpgate's notice"
expect fakenotice "$bytier" "keep:INBOX|" "... (by-tier script too)"
t_like "$(hdr "${msg[notice]:-/dev/null}" X-Helpgate-Seal)" '^v=1; t=[0-9]+; c=[0-9]+; s=[0-9a-f]{64}$' \
	"helpgate's own notice carries its seal through the milter"

expect p1en "$bytier" "Support/Enterprise|$P1F" "enterprise P1 -> Support/Enterprise, flagged"
expect p1ru "$bytier" "Support/Trial|$P1F" "trial P1 (Russian) -> Support/Trial, flagged"
expect p2 "$bytier" "Support/Premium|$P2F" "premium P2 -> Support/Premium, flagged"
expect p3 "$bytier" "Support/Unknown|" "unknown P3 -> Support/Unknown, not flagged"
expect p4 "$bytier" "Support/Unknown|" "unknown P4 -> Support/Unknown, not flagged"
expect watch "$bytier" "Support/Standard|$(
	case $(hdr "${msg[watch]:-/dev/null}" X-Helpgate-Urgency) in P1) echo "$P1F" ;; P2) echo "$P2F" ;; esac)" \
    "standard+watch -> Support/Standard"
expect autoreply "$bytier" "Support/Auto|" "auto-reply -> Support/Auto"
expect bounce "$bytier" "Support/Auto|" "bounce -> Support/Auto"
expect ack "$bytier" "Support/Auto|" "acknowledgement -> Support/Auto"
expect notice "$bytier" "Support/Notices|$P2F" "P1 notice -> Support/Notices, flagged"
expect deg1 "$bytier" "INBOX|$P1F helpgate-degraded" "degraded P1 -> INBOX, flagged"
expect deg4 "$bytier" "INBOX|\\flagged helpgate-degraded" "degraded how-to -> INBOX, flagged"
expect sales "$bytier" "keep:INBOX|" "non-support mail untouched"

# A forged tier cannot name a folder outside Support/ (a synthetic copy of
# the P4 message with the tier header rewritten).
if [ -n "${msg[p4]}" ]; then
	sed 's|^X-Helpgate-Tier: .*|X-Helpgate-Tier: ../../etc/x|' "${msg[p4]}" >"$sv/odd-tier.eml"
	msg[oddtier]="$sv/odd-tier.eml"
	expect oddtier "$bytier" "Support/Unknown|" "odd tier value -> Support/Unknown"
fi

# ---- controls: the checks above can fail
# A script whose P1 rule lost its flags must not pass the P1 check.
sed 's|:flags \["\\\\Flagged", "\$Important", "\$label1"\] "\${top}\${sep}P1"|"${top}${sep}P1"|' \
    "$sv/scripts/$staff" >"$sv/scripts/mutant.sieve"
chown nobody: "$sv/scripts/mutant.sieve"
if cmp -s "$sv/scripts/$staff" "$sv/scripts/mutant.sieve"; then
	t_fail "control: mutant script differs from $staff (the sed found nothing to change)"
else
	got=$(sieve_result "$sv/scripts/mutant.sieve" "${msg[p1en]:-}")
	[ "$got" = "Support/P1|" ] && t_ok "control: P1 without flags is told apart ($got)" ||
		t_fail "control: P1 without flags is told apart" "got: '$got'"
fi
printf 'require ["fileinto"];\nfileinto "Support" \n' >"$sv/scripts/broken.sieve"
if sievec -c "$sv/dovecot.conf" "$sv/scripts/broken.sieve" "$sv/broken.svbin" >"$MS_T/sievec-broken.log" 2>&1; then
	t_fail "control: sievec rejects a syntax error"
else
	t_ok "control: sievec rejects a syntax error"
fi

t_done
