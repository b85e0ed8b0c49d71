#!/usr/bin/env bash
# test_autodiagnose.sh BINDIR - the automatic diagnosis of outgoing-mail
# cases end to end (issue 5, "Where it runs"): clients write through a
# private Postfix with helpgate-milter, the worker diagnoses against the
# prober's test bed (tests/lib/testbed.sh) and sends through the same
# Postfix; the test reads the staff and client Maildirs.
#
#   1. a trial customer whose stored settings are wrong (the implicit-TLS
#      port set up as STARTTLS): staff note with X-Helpgate-Diagnosis:
#      tls_mode_mismatch and the check list, the client's acknowledgement
#      and a follow-up with the real submission port (verified with the
#      customer's password), `case show` with the report, timings;
#   2. a client with no stored settings who names host and port in the
#      message (mailhints): source "client's message", recorded as written,
#      not probed (127.0.0.1 is not public; ProbeAllow is not for it);
#   3. a slow (silent) server: another client's acknowledgement is not
#      delayed while that diagnosis runs;
#   4. DiagnosePerCustomerPerHour 6: the 7th run in an hour is skipped and
#      recorded;
#   5. two customers of one provider failing the same way: one incident,
#      named in the second note;
#   6. DiagnoseTellClient no: the note, no message to the client;
#   7. the staff notes open no case;
# A client's message steering the diagnosis (issue 12), every attack through
# the real Postfix, milter and worker:
#   8. a message naming 127.0.0.1:<a port that listens and is no mail port>
#      as its SMTP server: nothing connects to it, and the diagnosis says why;
#   9. one naming 127.0.0.1 on a mail port inside ProbeAllow: not probed
#      either (ProbeAllow is for customer records);
#  10. one naming a host in a stranger's domain (smtp.client.test, with an
#      SRV record) under a victim's From: neither it nor its domain is
#      searched, and the victim gets no "works instead" letter;
#  11. a customer record whose provider's SRV record points outside it: the
#      working server is verified and shown to staff, withheld from the
#      client (client_note withheld:outside-domain);
#  12. 12 messages from victim+N@ and other addresses of one domain: at most
#      DiagnosePerCustomerPerHour (6) diagnoses, the rest rate-limit;
#  13. DiagnosePerHour (reloaded): the cap on all senders holds;
#  14. the password never appears in mail, logs or the database.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bindir=${1:?usage: test_autodiagnose.sh BINDIR}
bindir=$(cd "$bindir" && pwd)
. "$here/../lib/mailstack.sh"
. "$here/../lib/testbed.sh"

for c in python3 dovecot postfix openssl swaks; do
	command -v "$c" >/dev/null || { echo "not ok - no $c"; echo "0 passed, 1 failed"; exit 1; }
done
for p in helpgate-milter helpgate-worker helpgatectl; do
	[ -x "$bindir/$p" ] || { echo "not ok - no $bindir/$p"; echo "0 passed, 1 failed"; exit 1; }
done

ms_init || exit 1
ms_database || exit 1
MS_MILTER_SOCKET="unix:$MS_T/hg.sock"
export MS_DELIVERY=maildir
export MS_MAILDIR_DOMAINS="example.com client.test staff.example.com hints.test slow.test quick.test rate.test alpha.test beta.test tell.test steer.test prov.test flood.test"
# Postfix starts with the milter configured; mail waits for nothing while
# the milter is not up yet (milter_default_action = accept), and none is
# sent before it is.
if ! tb_start_bed "$MS_MILTER_SOCKET"; then
	t_fail "test bed starts"
	t_done
	exit 1
fi
t_ok "test bed up"
# the diagnosis's own DNS: no query leaves the machine
if ! tb_start_dns; then
	t_fail "dnsmasq starts"
	t_done
	exit 1
fi

conf="$MS_T/helpgate.conf"
cat >"$conf" <<CONF
Socket unix:$MS_T/hg.sock
$MS_DATABASE_CONF
SupportAddress support@example.com
StaffDomain staff.example.com
NoticeAddress staff@staff.example.com
Timezone UTC
Syslog no
KeywordsDir $repo/conf/keywords
TemplatesDir $repo/conf/templates
AckRateLimit 20 50
PollInterval 100ms
DiagnoseCAFile $TB_CA
ProbeAllow 127.0.0.0/8
DiagnoseTimeout 5s
DiagnosePorts $TB_SUBMISSION_PORT/starttls $TB_SMTPS_PORT/tls
DiagnoseResolver $TB_DNS
Relay smtp://127.0.0.1:$MS_SMTP_PORT
CONF
ms_start_milter "$bindir/helpgate-milter" -f -c "$conf" -p "$MS_MILTER_SOCKET" || { t_fail "milter starts"; t_done; exit 1; }
ctl() { "$bindir/helpgatectl" -c "$conf" "$@"; }

pwfile="$MS_T/alice.pw"
(umask 077 && printf '%s\n' "$TB_PASS" >"$pwfile")
openpw="$MS_T/open.pw"
printf '%s\n' "$TB_PASS" >"$openpw"
chmod 0644 "$openpw"
H=127.0.0.1

# ---- helpgatectl customer set
ctl customer add carol@client.test --tier trial >/dev/null
out=$(ctl customer set carol@client.test --smtp "$H:$TB_SMTPS_PORT" --security starttls \
    --user "$TB_USER" --password-file "$openpw" 2>&1)
t_is "$?" 1 "customer set: a password file readable by others is refused"
t_like "$out" 'mode 644|0600' "customer set: says why"
out=$(ctl customer set nobody@client.test --smtp "$H:25" 2>&1)
t_is "$?" 1 "customer set: an unknown customer is refused"
ctl customer set carol@client.test --smtp "$H:$TB_SMTPS_PORT" --user "$TB_USER" >/dev/null 2>&1
t_is "$?" 2 "customer set: --user without --password-file is a usage error"
out=$(ctl customer set carol@client.test --smtp "$H:$TB_SMTPS_PORT" --security starttls \
    --user "$TB_USER" --password-file "$pwfile" --imap "$H:$TB_IMAPS_PORT" --imap-security tls)
t_is "$?" 0 "customer set: stored"
t_like "$out" "IMAP: $H:$TB_IMAPS_PORT tls, user $TB_USER" "customer set: IMAP credentials default to the SMTP ones"
t_like "$out" "SMTP: $H:$TB_SMTPS_PORT starttls, user $TB_USER, password file $pwfile" \
    "customer set: prints the settings"
t_like "$(ctl customer set carol@client.test)" "SMTP: $H:$TB_SMTPS_PORT starttls" \
    "customer set ADDRESS alone shows them"
t_like "$(ctl customer list)" "smtp $H:$TB_SMTPS_PORT starttls" "customer list shows the settings"
t_like "$(ctl customer list --json)" "\"password_file\": ?\"$pwfile\"" \
    "customer list --json: the password file's path, not the password"

ctl customer add rita@rate.test --tier standard >/dev/null
ctl customer set rita@rate.test --smtp "$H:$TB_CLOSED_PORT" --security starttls >/dev/null
ctl customer add sam@slow.test --tier standard >/dev/null
ctl customer set sam@slow.test --smtp "$H:$TB_SILENT_PORT" --security starttls >/dev/null
for who in al@alpha.test bea@beta.test; do
	ctl customer add "$who" --tier premium >/dev/null
	ctl customer set "$who" --smtp "$H:$TB_APPPASS_PORT" --security none --user "$TB_USER" \
	    --password-file "$pwfile" >/dev/null
done

"$bindir/helpgate-worker" -f -c "$conf" >>"$MS_T/worker.log" 2>&1 &
WORKER_PID=$!
MS_PIDS+=("$WORKER_PID")

maildir() { printf '%s/mail/%s' "$MS_T" "$1"; }
inbox() { find "$(maildir "$1")/new" -type f 2>/dev/null | sort; }
inbox_count() { inbox "$1" | grep -c .; }
hdr() { ms_header "$1" "$2"; }
# first_with ADDRESS HEADER REGEX: the first message in ADDRESS's Maildir
# whose HEADER matches REGEX.
first_with() {
	local f
	for f in $(inbox "$1"); do
		[[ $(hdr "$f" "$2") =~ $3 ]] && { echo "$f"; return 0; }
	done
	return 1
}
# wait_for ADDRESS HEADER REGEX TIMEOUT: the path once such a message is there.
wait_for() {
	local i f
	for ((i = 0; i < $4 * 20; i++)); do
		f=$(first_with "$1" "$2" "$3") && { echo "$f"; return 0; }
		sleep 0.05
	done
	return 1
}
body() { python3 - "$1" <<'PY'
import email, sys
from email import policy
m = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=policy.default)
part = m.get_body(preferencelist=('plain',))
print(part.get_content() if part else '')
PY
}
subject() { python3 - "$1" <<'PY'
import email, sys
from email import policy
print(email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=policy.default)['Subject'])
PY
}
mkmsg() {	# mkmsg FILE FROM SUBJECT MESSAGE-ID BODY
	printf 'From: %s\nTo: support@example.com\nSubject: %s\nDate: %s\nMessage-ID: <%s>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n%s\n' \
	    "$2" "$3" "$(date -R)" "$4" "$5" >"$1"
}
send() {	# send FROM FILE
	ms_send --data "$2" --from "$1" --to support@example.com || t_fail "swaks from $1"
}
outgoing() {	# outgoing TAG FROM: "outgoing mail is not sending", Message-ID TAG@FROM's domain
	mkmsg "$MS_T/$1.eml" "Client <$2>" "Outgoing mail not sending ($1)" "$1@${2#*@}" \
	    "Outgoing mail is not sending again ($1), the send fails with connection refused."
	send "$2" "$MS_T/$1.eml"
}
case_of() {	# case_of MESSAGE-ID: HG-n of the case that message opened
	ctl cases --json | python3 -c '
import json, subprocess, sys
for c in json.load(sys.stdin):
    d = json.loads(subprocess.run(sys.argv[1:-1] + ["case", "show", str(c["id"]), "--json"],
        capture_output=True, text=True).stdout)
    if any(m["message_id"] == sys.argv[-1] for m in d["messages"]):
        print(c["ref"]); break
' "$bindir/helpgatectl" -c "$conf" "$1"
}
# jfield CASE EXPR: a Python expression over d = case show --json
jfield() {
	ctl case show "$1" --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
try:
    print(eval(sys.argv[1]))
except Exception as e:
    print("<%s>" % e)
' "$2"
}
now_ms() { date +%s%3N; }
# log_count REGEX: the worker's log lines matching the extended REGEX.
log_count() { grep -cE -- "$1" "$MS_T/worker.log"; }
# log_wait REGEX N TIMEOUT: until the worker has logged N such lines.
log_wait() {
	local end=$((SECONDS + $3))
	while [ "$SECONDS" -lt "$end" ]; do
		[ "$(log_count "$1")" -ge "$2" ] && return 0
		sleep 0.2
	done
	return 1
}
# a run that happened (not a skip): "HG-n: diagnosis HOST:PORT/SECURITY ..."
RAN='HG-[0-9]+: diagnosis [^ ]+:[0-9]+/'
# outcome SENDER-REGEX N REASON: once N runs or skips for such senders are
# logged, "RAN SKIPPED" (skipped for REASON)
outcome() {
	log_wait "diagnosis .*for <$1>" "$2" 60
	echo "$(log_count "$RAN.* for <$1>") $(log_count "diagnosis skipped \($3\) for <$1>")"
}
reloads=0
reload_worker() {	# after editing $conf: SIGUSR1, and wait for the worker to say so
	kill -USR1 "$WORKER_PID"
	log_wait "reloaded $conf" $((reloads + 1)) 5
	reloads=$(log_count "reloaded $conf")
}

# ---- 1. stored settings that are wrong
mkmsg "$MS_T/c1.eml" "Carol <carol@client.test>" "Outgoing mail is not sending" "c1@client.test" \
    "Hello, since this morning my outgoing mail is not sending. Outlook cannot send any email, the messages stay in the Outbox with a send error."
t0=$(now_ms)
send carol@client.test "$MS_T/c1.eml"
ack=$(wait_for carol@client.test Message-ID '\.ack\.' 20) && t_ok "1: the client's acknowledgement arrived" ||
    t_fail "1: the client's acknowledgement arrived"
t_ack=$(now_ms)
note=$(wait_for staff@staff.example.com X-Helpgate-Diagnosis . 30) && t_ok "1: a diagnosis note reached staff" ||
    t_fail "1: a diagnosis note reached staff"
t_note=$(now_ms)
alt=$(wait_for carol@client.test Message-ID '\.alternative\.' 30) && t_ok "1: the client got the working setting" ||
    t_fail "1: the client got the working setting"
t_alt=$(now_ms)
echo "# measured: client mail accepted -> acknowledgement $((t_ack - t0)) ms, -> staff note $((t_note - t0)) ms, -> client alternative $((t_alt - t0)) ms"

c1=$(hdr "$ack" X-Helpgate-Case)
t_like "$c1" '^HG-[0-9]+$' "1: the case"
t_is "$(jfield "$c1" 'd["category"]')" outgoing-mail "1: the case is outgoing-mail"
t_is "$(hdr "$note" X-Helpgate-Diagnosis)" tls_mode_mismatch "1: X-Helpgate-Diagnosis: tls_mode_mismatch"
t_is "$(hdr "$note" X-Helpgate-Case)" "$c1" "1: the note carries X-Helpgate-Case"
t_like "$(subject "$note")" "^\[$c1\] Diagnosis: tls_mode_mismatch — $H:$TB_SMTPS_PORT" "1: the note's subject"
nb=$(body "$note")
t_like "$nb" "Source: +customer record" "1: the note names the settings' source"
t_like "$nb" "✗" "1: the note holds the check list"
t_like "$nb" "Working alternative: $H:$TB_SUBMISSION_PORT starttls, verified" \
    "1: the note gives the verified alternative"
t_like "$nb" "user $TB_USER" "1: the note names the user"
t_like "$(hdr "$alt" In-Reply-To)" "<c1@client.test>" "1: the follow-up is in the client's thread"
t_like "$(subject "$alt")" "^Re: \[$c1\] Outgoing mail is not sending$" "1: the follow-up's subject"
t_is "$(hdr "$alt" Auto-Submitted)" auto-replied "1: the follow-up is Auto-Submitted: auto-replied"
t_like "$(hdr "$alt" Return-Path)" '^<(MAILER-DAEMON)?>$' "1: the follow-up has a null envelope sender"
ab=$(body "$alt")
t_like "$ab" "Outgoing server \(SMTP\): $H" "1: the follow-up names the server"
t_like "$ab" "Port: +$TB_SUBMISSION_PORT" "1: the follow-up names the port"
t_like "$ab" "Security: +STARTTLS" "1: the follow-up names the security"
if [[ $ab =~ (EHLO|AUTH|✗|✓) ]]; then
	t_fail "1: the follow-up holds no probe details"
else
	t_ok "1: the follow-up holds no probe details"
fi
t_is "$(jfield "$c1" 'd["diagnoses"][0]["verdict"]')" tls_mode_mismatch "1: case show --json: the verdict"
t_is "$(jfield "$c1" 'd["diagnoses"][0]["source"]')" "customer record" "1: case show --json: the source"
t_is "$(jfield "$c1" '(d["diagnoses"][0]["alternative"]["port"], d["diagnoses"][0]["alternative"]["verified"])')" \
    "($TB_SUBMISSION_PORT, True)" "1: case show --json: the alternative, verified"
t_is "$(jfield "$c1" 'len(d["diagnoses"][0]["report"]["steps"]) > 2')" True "1: case show --json: the report's steps"
t_is "$(jfield "$c1" 'd["diagnoses"][0]["client_note"]')" follow-up "1: case show --json: the client was told by a follow-up"
t_is "$(jfield "$c1" '(d["diagnoses"][1]["protocol"], d["diagnoses"][1]["verdict"], d["diagnoses"][1]["port"])')" \
    "('imap', 'ok', $TB_IMAPS_PORT)" "1: the IMAP settings were diagnosed too"
t_like "$nb" "IMAP:" "1: the note has the IMAP check list"
show=$(ctl case show "$c1")
t_like "$show" "Diagnosis:" "1: case show has a Diagnosis section"
t_like "$show" "verdict tls_mode_mismatch" "1: case show gives the verdict"
t_like "$show" "Working alternative: $H:$TB_SUBMISSION_PORT" "1: case show gives the alternative"
t_like "$(grep "$c1: diagnosis" "$MS_T/worker.log")" \
    "$c1: diagnosis $H:$TB_SMTPS_PORT/starttls \(customer record\) for <carol@client.test>: tls_mode_mismatch, imap ok; alternative $H:$TB_SUBMISSION_PORT .*[0-9]+ ms" \
    "1: one log line: case, target, source, verdict, alternative, elapsed"

# ---- 2. no stored settings: what the client wrote
mkmsg "$MS_T/d1.eml" "Dave <dave@hints.test>" "Cannot send email" "d1@hints.test" \
    "Hi, my outgoing mail is not being sent. SMTP server $H port 587, the program says the server answered something strange."
send dave@hints.test "$MS_T/d1.eml"
if n2=$(wait_for staff@staff.example.com X-Helpgate-Diagnosis protocol_error 30); then
	t_ok "2: a note for the client who named the server"
	c2=$(hdr "$n2" X-Helpgate-Case)
	t_like "$(body "$n2")" "Source: +client's message" "2: the settings came from the client's message"
	t_is "$(jfield "$c2" '(d["diagnoses"][0]["host"], d["diagnoses"][0]["port"])')" "('$H', 587)" \
	    "2: the host and port the client wrote"
	t_like "$(body "$n2")" "address not allowed.*probed only at public addresses" \
	    "2: not probed: a server the sender named must be public"
else
	t_fail "2: a note for the client who named the server"
fi

# ---- 3. a slow server does not delay anyone's acknowledgement
mkmsg "$MS_T/s1.eml" "Sam <sam@slow.test>" "Outgoing mail not sending" "s1@slow.test" \
    "My outgoing mail is not sending at all, every message fails to send."
mkmsg "$MS_T/q1.eml" "Quinn <quinn@quick.test>" "How do I add an alias?" "q1@quick.test" \
    "How do I add an alias to my mailbox?"
send sam@slow.test "$MS_T/s1.eml"
sleep 0.5	# the silent server's diagnosis is under way
tq=$(now_ms)
send quinn@quick.test "$MS_T/q1.eml"
if wait_for quinn@quick.test Message-ID '\.ack\.' 20 >/dev/null; then
	tq_ack=$(($(now_ms) - tq))
	echo "# measured: acknowledgement while a silent server is being diagnosed: $tq_ack ms"
	slow_note=$(first_with staff@staff.example.com X-Helpgate-Diagnosis greeting_timeout)
	if [ "$tq_ack" -lt 3000 ] && [ -z "$slow_note" ]; then
		t_ok "3: another client's acknowledgement came in $tq_ack ms, before the slow diagnosis ended"
	else
		t_fail "3: another client's acknowledgement came in $tq_ack ms, before the slow diagnosis ended" \
		    "slow note already there: ${slow_note:-no}"
	fi
else
	t_fail "3: another client's acknowledgement while a slow diagnosis runs"
fi
if sn=$(wait_for staff@staff.example.com X-Helpgate-Diagnosis greeting_timeout 30); then
	t_ok "3: the silent server's diagnosis ends with greeting_timeout"
else
	t_fail "3: the silent server's diagnosis ends with greeting_timeout"
fi

# ---- 4. DiagnosePerCustomerPerHour (default 6): the 7th is skipped
for i in 1 2 3 4 5 6 7; do
	outgoing "r$i" rita@rate.test
done
log_wait 'for <rita@rate\.test>' 7 60
ran=$(log_count 'diagnosis .* for <rita@rate\.test>: connect_refused')
skipped=$(log_count 'diagnosis skipped \(rate-limit\) for <rita@rate\.test>')
t_is "$ran" 6 "4: six diagnoses ran for one customer within the hour"
t_is "$skipped" 1 "4: the seventh was skipped"
c7=$(case_of r7@rate.test)
t_is "$(jfield "$c7" 'd["diagnoses"][0]["skipped"]')" rate-limit "4: the skip is recorded with the case (case show)"
t_like "$(ctl case show "$c7")" "skipped: rate-limit" "4: case show says it was skipped"

# ---- 5. two customers of one provider failing the same way: one incident
mkmsg "$MS_T/a1.eml" "Al <al@alpha.test>" "Outgoing mail is not sending" "a1@alpha.test" \
    "Our outgoing mail is not sending since noon, the send fails with an error."
send al@alpha.test "$MS_T/a1.eml"
na=$(wait_for staff@staff.example.com X-Helpgate-Diagnosis auth_failed 30) && t_ok "5: first auth_failed note" ||
    t_fail "5: first auth_failed note"
mkmsg "$MS_T/b1.eml" "Bea <bea@beta.test>" "Outgoing mail is not sending" "b1@beta.test" \
    "Outgoing mail is not sending here either, every send fails."
send bea@beta.test "$MS_T/b1.eml"
ca=$(case_of a1@alpha.test)
nb=""
for ((i = 0; i < 600; i++)); do
	for f in $(inbox staff@staff.example.com); do
		[ "$(hdr "$f" X-Helpgate-Diagnosis)" = auth_failed ] && [ "$(hdr "$f" X-Helpgate-Case)" != "$ca" ] && nb=$f
	done
	[ -n "$nb" ] && break
	sleep 0.05
done
if [ -n "$nb" ]; then
	t_ok "5: second auth_failed note"
	cb=$(hdr "$nb" X-Helpgate-Case)
	t_like "$(body "$nb")" "Incident #[0-9]+: 2 clients of $H failing with auth_failed since [0-9]{2}:[0-9]{2} \(cases $ca, $cb\)" \
	    "5: the second note names the incident and both cases"
	t_like "$(hdr "$nb" X-Helpgate-Incident)" '^[0-9]+$' "5: X-Helpgate-Incident"
	t_like "$(subject "$nb")" "\(incident #[0-9]+\)" "5: the subject marks the incident"
	t_is "$(jfield "$ca" 'd["diagnoses"][0]["incident"] == '"$(jfield "$cb" 'd["diagnoses"][0]["incident"]')")" True \
	    "5: both diagnoses are linked to one incident"
	t_is "$(hdr "$na" X-Helpgate-Incident)" "" "5: the first note had no incident yet"
else
	t_fail "5: second auth_failed note"
fi

# ---- 6. DiagnoseTellClient no (reloaded with SIGUSR1): staff only
ctl customer add tom@tell.test --tier standard >/dev/null
ctl customer set tom@tell.test --smtp "$H:$TB_NOAUTH_PORT" --security none --user "$TB_USER" \
    --password-file "$pwfile" >/dev/null
echo "DiagnoseTellClient no" >>"$conf"
reload_worker
mkmsg "$MS_T/t1.eml" "Tom <tom@tell.test>" "Outgoing mail is not sending" "t1@tell.test" \
    "My outgoing mail is not sending, the mail program cannot send."
send tom@tell.test "$MS_T/t1.eml"
if nt=$(wait_for staff@staff.example.com X-Helpgate-Diagnosis auth_unavailable 30); then
	t_ok "6: staff still get the note"
	t_like "$(body "$nt")" "not told \(DiagnoseTellClient no\)" "6: the note says the client was not told"
	sleep 1
	t_is "$(first_with tom@tell.test Message-ID '\.alternative\.')" "" "6: no working setting sent to the client"
	t_is "$(inbox_count tom@tell.test)" 1 "6: the client got the acknowledgement only"
else
	t_fail "6: staff still get the note"
fi

# ---- 7. the notes opened no case
sleep 1
clients=$(ctl cases --json | python3 -c '
import json, sys
print(" ".join(sorted(set(c["client"] for c in json.load(sys.stdin)))))')
t_is "$clients" "al@alpha.test bea@beta.test carol@client.test dave@hints.test quinn@quick.test rita@rate.test sam@slow.test tom@tell.test" \
    "7: cases only for the clients (no case from a staff note)"
t_is "$(ctl cases --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" 14 \
    "7: one case per client message (14)"

# ---- A client's message steering the diagnosis (issue 12)
# Sections 8-13 run with DiagnoseTellClient yes again: each attack would
# have reached the client if it worked.
sed -i '/^DiagnoseTellClient /d' "$conf"
reload_worker
# reply_to ADDRESS MESSAGE-ID KIND TIMEOUT: the path of helpgate's KIND
# (ack, alternative) in reply to MESSAGE-ID, once it is in ADDRESS's Maildir.
reply_to() {
	local i f
	for ((i = 0; i <= $4 * 20; i++)); do
		for f in $(inbox "$1"); do
			[[ $(hdr "$f" In-Reply-To) == *"<$2>"* && $(hdr "$f" Message-ID) =~ \.$3\. ]] &&
			    { echo "$f"; return 0; }
		done
		sleep 0.05
	done
	return 1
}
# note_for CASE TIMEOUT: the path of the staff note on CASE's diagnosis.
note_for() {
	local i f
	for ((i = 0; i < $2 * 20; i++)); do
		for f in $(inbox staff@staff.example.com); do
			[ "$(hdr "$f" X-Helpgate-Case)" = "$1" ] && [ -n "$(hdr "$f" X-Helpgate-Diagnosis)" ] &&
			    { echo "$f"; return 0; }
		done
		sleep 0.05
	done
	return 1
}
# connects PORT: the connections the bed's Postfix listener on PORT logged.
connects() { grep -c "postfix/tb-$1/smtpd\[[0-9]*\]: connect from" "$MS_T/maillog"; }
# steer N FROM MESSAGE-ID BODY: a client's outgoing-mail message; sets
# case_n (HG-n, from the acknowledgement) and note_n (the staff note).
steer() {
	local a
	mkmsg "$MS_T/steer$1.eml" "$2" "Outgoing mail is not sending ($1)" "$3" "$4"
	send "$(printf '%s' "$2" | sed 's/.*<\(.*\)>/\1/')" "$MS_T/steer$1.eml"
	case_n="" note_n=""
	a=$(reply_to "$(printf '%s' "$2" | sed 's/.*<\(.*\)>/\1/')" "$3" ack 20) || { t_fail "$1: acknowledged"; return 1; }
	case_n=$(hdr "$a" X-Helpgate-Case)
	note_n=$(note_for "$case_n" 30) || { t_fail "$1: a diagnosis note for $case_n"; return 1; }
	t_ok "$1: acknowledged and diagnosed ($case_n)"
}
steps_json='" | ".join("%s: %s" % (s["name"], s["detail"]) for s in d["diagnoses"][0]["report"]["steps"])'

# ---- 8. a port that listens, but is no mail port
g0=$(grep -c "garbage:$TB_GARBAGE_PORT connection" "$MS_T/tb-faults.py.log")
if steer 8 "Victim <victim@steer.test>" v8@steer.test \
    "Hello, my outgoing mail is not sending.  Outgoing server (SMTP): $H:$TB_GARBAGE_PORT, security none."; then
	t_is "$(jfield "$case_n" '(d["diagnoses"][0]["source"], d["diagnoses"][0]["host"], d["diagnoses"][0]["port"])')" \
	    "(\"client's message\", '$H', $TB_GARBAGE_PORT)" "8: the target is the one the message named"
	t_is "$(grep -c "garbage:$TB_GARBAGE_PORT connection" "$MS_T/tb-faults.py.log")" "$g0" \
	    "8: nothing connected to the port the message named"
	t_like "$(jfield "$case_n" "$steps_json")" "port not allowed: $TB_GARBAGE_PORT is not a mail port" \
	    "8: the diagnosis says why (port not allowed)"
	t_is "$(jfield "$case_n" '(d["diagnoses"][0]["verdict"], d["diagnoses"][0]["report"]["address_not_allowed"])')" \
	    "('protocol_error', True)" "8: verdict protocol_error, not allowed"
	t_like "$(body "$note_n")" "port not allowed" "8: the staff note says why"
	t_is "$(reply_to victim@steer.test v8@steer.test alternative 0)" "" "8: no working setting went to the client"
fi

# ---- 9. a mail port (in DiagnosePorts) on 127.0.0.1, inside ProbeAllow
p0=$(connects "$TB_SUBMISSION_PORT")
if steer 9 "Victim <victim@steer.test>" v9@steer.test \
    "My outgoing mail is not being sent. SMTP server: $H port $TB_SUBMISSION_PORT, STARTTLS."; then
	t_is "$(jfield "$case_n" '(d["diagnoses"][0]["host"], d["diagnoses"][0]["port"])')" \
	    "('$H', $TB_SUBMISSION_PORT)" "9: the target is the one the message named"
	t_is "$(connects "$TB_SUBMISSION_PORT")" "$p0" "9: nothing connected to it although ProbeAllow has 127.0.0.0/8"
	t_like "$(jfield "$case_n" "$steps_json")" "address not allowed.*whatever ProbeAllow says" \
	    "9: the diagnosis says why"
	t_is "$(jfield "$case_n" 'd["diagnoses"][0]["alternative"]')" None "9: no alternative"
fi

# ---- 10. a host in a stranger's domain (smtp.client.test: A 127.0.0.1, and
# _submission._tcp.client.test names a working server) under a victim's From
q0=$(grep -c 'query\[' "$MS_T/dnsmasq.log")
s0=$(connects "$TB_SMTPS_PORT") u0=$(connects "$TB_SUBMISSION_PORT")
if steer 10 "Victim <victim@steer.test>" v10@steer.test \
    "Our outgoing mail is not sending. Outgoing server: smtp.client.test port $TB_SMTPS_PORT, security STARTTLS. Please tell me what to use instead."; then
	t_is "$(jfield "$case_n" '(d["diagnoses"][0]["source"], d["diagnoses"][0]["host"])')" \
	    "(\"client's message\", 'smtp.client.test')" "10: the target is the stranger's host"
	t_is "$(jfield "$case_n" 'd["diagnoses"][0]["alternative"]')" None "10: no alternative found"
	t_is "$(jfield "$case_n" 'd["diagnoses"][0]["client_note"]')" "" "10: nothing to tell the client"
	t_is "$(connects "$TB_SMTPS_PORT") $(connects "$TB_SUBMISSION_PORT")" "$s0 $u0" \
	    "10: nothing connected to the servers the stranger's names lead to"
	qs=$(grep 'query\[' "$MS_T/dnsmasq.log" | tail -n +$((q0 + 1)))
	if grep -qE 'query\[SRV\] _submissions?\._tcp\.client\.test|mail\.client\.test' <<<"$qs"; then
		t_fail "10: the stranger's domain was not searched for alternatives" "$qs"
	else
		t_ok "10: the stranger's domain was not searched for alternatives"
	fi
	t_like "$(grep 'query\[' "$MS_T/dnsmasq.log")" 'query\[SRV\] _submission\._tcp\.steer\.test' \
	    "10: the sender's own domain was, instead"
	sleep 1
	t_is "$(reply_to victim@steer.test v10@steer.test alternative 0)" "" "10: no \"works instead\" letter to the victim"
	t_is "$(first_with victim@steer.test Message-ID '\.alternative\.')" "" \
	    "10: no \"works instead\" letter to the victim at all (8-10)"
fi

# ---- 11. a customer record whose provider's SRV record points outside it
ctl customer add @prov.test --tier standard >/dev/null
ctl customer set @prov.test --smtp "smtp.client.test:$TB_SMTPS_PORT" --security starttls \
    --user "$TB_USER" --password-file "$pwfile" >/dev/null
if steer 11 "Pat <pat@prov.test>" p11@prov.test "Outgoing mail is not sending since this morning, every send fails."; then
	t_is "$(jfield "$case_n" 'd["diagnoses"][0]["source"]')" "customer record" "11: the settings are the record's"
	t_is "$(jfield "$case_n" '(d["diagnoses"][0]["alternative"]["host"], d["diagnoses"][0]["alternative"]["port"], d["diagnoses"][0]["alternative"]["verified"])')" \
	    "('localhost', $TB_SUBMISSION_PORT, True)" "11: a working server was found (SRV localhost) and verified"
	t_is "$(jfield "$case_n" 'd["diagnoses"][0]["client_note"]')" "withheld:outside-domain" \
	    "11: withheld from the client: outside the record's provider and the sender's domain"
	nb11=$(body "$note_n")
	t_like "$nb11" "Working alternative: localhost:$TB_SUBMISSION_PORT starttls, verified" "11: staff see it"
	t_like "$nb11" "The client: not told: the working server is outside the client's own domain" \
	    "11: the note says the client was not told, and why"
	sleep 1
	t_is "$(first_with pat@prov.test Message-ID '\.alternative\.')" "" "11: no \"works instead\" letter"
	if [[ $(body "$(reply_to pat@prov.test p11@prov.test ack 0)") == *localhost* ]]; then
		t_fail "11: the acknowledgement names no server"
	else
		t_ok "11: the acknowledgement names no server"
	fi
fi

# ---- 12. DiagnosePerCustomerPerHour (6) counts the sender's domain
for i in 1 2 3 4 5 6; do
	outgoing "f$i" "victim+$i@flood.test"
	outgoing "g$i" "user$i@flood.test"
done
t_is "$(outcome '[^>]*@flood\.test' 12 rate-limit)" "6 6" \
    "12: 12 messages from victim+N@ and userN@flood.test: 6 diagnoses, 6 rate-limited"
cf=$(case_of g6@flood.test)
t_is "$(jfield "$cf" 'd["diagnoses"][0]["customer"]')" "@flood.test" "12: the key is the sender's domain"

# ---- 13. DiagnosePerHour: every sender together
all=$(log_count "$RAN")
echo "DiagnosePerHour $((all + 3))" >>"$conf"
reload_worker
for i in 1 2 3 4 5 6; do
	outgoing "h$i" "client@cap$i.test"
done
t_is "$(outcome 'client@cap[0-9]\.test' 6 global-rate-limit)" "3 3" \
    "13: DiagnosePerHour $((all + 3)) after $all runs: 3 of 6 new senders diagnosed, 3 skipped"
t_is "$(log_count "$RAN")" "$((all + 3))" \
    "13: the cap holds for the whole hour's runs"

# ---- 14. the password is nowhere
leaks=$( (find "$MS_T/mail" -type f -print0 | xargs -0 grep -lF -- "$TB_PASS"
	grep -lF -- "$TB_PASS" "$MS_T/worker.log" "$MS_T"/milter-*.log
	for f in "$MS_T"/hg.db*; do strings "$f" | grep -qF -- "$TB_PASS" && echo "$f"; done
	case "$MS_DATABASE" in postgresql://*)
		pg_dump -d "$MS_DATABASE" | grep -qF -- "$TB_PASS" && echo "the PostgreSQL database" ;;
	esac
	ctl case show "$c1" --json | grep -qF -- "$TB_PASS" && echo "case show"
	ctl customer list --json | grep -qF -- "$TB_PASS" && echo "customer list") 2>/dev/null)
t_is "$leaks" "" "14: the password appears in no mail, log, database or output"

t_done
