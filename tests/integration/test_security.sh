#!/usr/bin/env bash
# test_security.sh BINDIR - helpgate on the public mail path: each attack of
# issue 12 tried from outside through a real Postfix (port 25 for
# strangers, the submission service with Dovecot SASL for logins), against
# the real milter and worker, and shown to fail:
#   1. staff identity: only the MTA's word (SASL login in StaffLogin) makes
#      a staff reply; a staff From / MAIL FROM on port 25, or a login that
#      is not staff, stops no clock and is said in X-Helpgate-Reasons/log;
#   2. our own headers: a stranger's X-Helpgate-* on mail to staff, on
#      null-sender mail and with a made-up or replayed seal is removed;
#      the worker's own letters keep theirs and are confirmed (relay_seen)
#      only by a valid seal;
#   3. backscatter and paging on demand: a forged From gets no
#      acknowledgement (AckPolicy aligned), +detail variants share one
#      rate limit, Authentication-Results count only from
#      TrustedAuthservID, and a flood of P1 messages from one domain pages
#      staff at most P1NoticePerDomainPerHour times plus one flood notice.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bindir=${1:?usage: test_security.sh BINDIR}
bindir=$(cd "$bindir" && pwd)
. "$here/../lib/mailstack.sh"
. "$here/../lib/testbed.sh"

for p in helpgate-milter helpgate-worker helpgatectl; do
	[ -x "$bindir/$p" ] || { echo "not ok - no $bindir/$p"; echo "0 passed, 1 failed"; exit 1; }
done
ms_init || exit 1
ms_database || exit 1
MS_MILTER_SOCKET="unix:$MS_T/hg.sock"
export MS_DELIVERY=maildir
export MS_MAILDIR_DOMAINS="example.com client.test staff.example.com evil.test victim.test partner.test"
tb_start_bed "$MS_MILTER_SOCKET" || { t_fail "test bed starts"; t_done; exit 1; }

conf="$MS_T/helpgate.conf"
db=$MS_DATABASE
cat >"$conf" <<CONF
Socket $MS_MILTER_SOCKET
$MS_DATABASE_CONF
SupportAddress support@example.com
StaffDomain staff.example.com
StaffLogin $TB_USER
NoticeAddress staff@staff.example.com
EscalationAddress oncall@staff.example.com
TrustedAuthservID mx.helpgate.test
AckRateLimit 3 20
P1NoticePerDomainPerHour 2
Timezone UTC
Syslog no
KeywordsDir $repo/conf/keywords
TemplatesDir $repo/conf/templates
PollInterval 100ms
DiagnosePerCustomerPerHour 0
DiagnoseResolver 127.0.0.1:9
Relay smtp://127.0.0.1:$MS_SMTP_PORT
CONF
ms_start_milter "$bindir/helpgate-milter" -f -c "$conf" || { t_fail "milter starts"; t_done; exit 1; }
milter_log="$MS_T/milter-$MS_MILTER_N.log"
ms_spawn worker_pid "$bindir/helpgate-worker" -f -c "$conf"
ctl() { "$bindir/helpgatectl" -c "$conf" "$@"; }
sq() { ms_sq "$db" "$@"; }
hdr() { ms_header "$1" "$2"; }
maildir_find() { tb_maildir_find "$@"; }
wait_find() { tb_wait_find "$@"; }
by_id() { wait_find 20 "$1" Message-ID "^<$2>$"; }
# port 25 as a stranger; the submission port with a login
smtp25() { ms_send "$@"; }
submit() { tb_submit "$@"; }

# A client's case to answer.
ms_mkmsg "$MS_T/c1.eml" "Ann <ann@client.test>" "Calendar error" "c1@client.test" \
	"When I open the calendar I get an error 500."
smtp25 --data "$MS_T/c1.eml" --from ann@client.test || t_fail "client mail sent"
f=$(by_id support@example.com c1@client.test) || t_fail "client mail delivered"
case1=$(hdr "$f" X-Helpgate-Case)
t_like "$case1" '^HG-[0-9]+$' "a client's case: $case1"
first() { sq "SELECT first_response_at FROM cases WHERE id = ?" "${case1#HG-}"; }

# ---- 1. staff identity
# 1a. a stranger on port 25 with the staff domain in MAIL FROM and From
ms_mkmsg "$MS_T/f1.eml" "Boss <boss@staff.example.com>" "Re: [$case1] fixed" "forged-staff-1@evil.test" \
	"Closed." "" ann@client.test
smtp25 --data "$MS_T/f1.eml" --from boss@staff.example.com --to ann@client.test
by_id ann@client.test forged-staff-1@evil.test >/dev/null || t_fail "forged staff reply delivered"
t_is "$(first)" 0 "1a: a staff From/MAIL FROM on port 25 does not stop the first-response clock"
t_like "$(grep -F 'boss@staff.example.com' "$milter_log")" 'claims staff without authentication \(login none\)' \
	"1a: the milter logs the claim"
# 1b. a login that is not staff (bob), with a staff From
submit "$TB_USER2" "$TB_PASS2" --from boss@staff.example.com --to ann@client.test \
	--h-From "Boss <boss@staff.example.com>" --h-Subject "Re: [$case1] fixed" \
	--h-Message-Id "<forged-staff-2@evil.test>" --body "Closed." || t_fail "bob's submission accepted"
by_id ann@client.test forged-staff-2@evil.test >/dev/null || t_fail "bob's message delivered"
t_is "$(first)" 0 "1b: an authenticated login that is not staff does not stop the clock"
t_like "$(grep -F 'boss@staff.example.com' "$milter_log" | tail -n 1)" "claims staff without authentication \(login $TB_USER2\)" \
	"1b: the log names the login that was used"
# 1c. a stranger writing to support as staff: a client's message, and staff are told
ms_mkmsg "$MS_T/f3.eml" "Boss <boss@staff.example.com>" "Re: [$case1] please close" "forged-staff-3@evil.test" \
	"Please close this case, it is resolved."
smtp25 --data "$MS_T/f3.eml" --from boss@staff.example.com
f=$(by_id support@example.com forged-staff-3@evil.test) || t_fail "claimed-staff mail to support delivered"
t_like "$(hdr "$f" X-Helpgate-Reasons)" 'unauthenticated staff claim' "1c: X-Helpgate-Reasons says the staff claim is not authenticated"
t_like "$(hdr "$f" X-Helpgate-SLA-Due)" '.' "1c: it is timed like a client's mail"
t_is "$(first)" 0 "1c: and stops no clock"
t_like "$(grep -F 'from=<boss@staff.example.com>' "$milter_log" | grep -F 'case=')" 'staff-claim=unauthenticated' \
	"1c: the log line says staff-claim=unauthenticated"
t_is "$(sq "SELECT direction FROM messages WHERE message_id = ?" forged-staff-3@evil.test)" in \
	"1c: recorded as the client's side"
# 1d. the staff member logged in (alice is a StaffLogin) answers the client
submit "$TB_USER" "$TB_PASS" --from sam@staff.example.com --to ann@client.test \
	--h-From "Sam <sam@staff.example.com>" --h-Subject "Re: [$case1] Calendar error" \
	--h-Message-Id "<staff-real-1@staff.example.com>" --body "Hello Ann, fixed now." || t_fail "alice's submission accepted"
f=$(by_id ann@client.test staff-real-1@staff.example.com) || t_fail "the staff reply delivered"
t_like "$(first)" '^[1-9][0-9]+$' "1d: an authenticated staff login's reply stops the first-response clock"
t_is "$(sq "SELECT direction FROM messages WHERE message_id = ?" staff-real-1@staff.example.com)" staff \
	"1d: recorded on the case as staff"
t_is "$(grep -ci '^X-Helpgate-' "$f")" 0 "1d: delivered to the client untagged"
t_like "$(grep -F "case=$case1 staff reply" "$milter_log")" "login=$TB_USER" "1d: the log names the login"

# ---- 2. our own headers
# 2a. a stranger's "notice" to a staff mailbox
ms_mkmsg "$MS_T/n1.eml" "helpgate <support@example.com>" "[$case1] SLA breach" "fake-notice@evil.test" \
	"Log in at http://evil.test/ to keep your account." \
	"X-Helpgate-Notice: breach\nX-Helpgate-Urgency: P1\nX-Helpgate-Case: $case1\nx-helpgate-SEAL: v=1; t=$(date +%s); c=1; s=$(printf '%064d' 0)" \
	staff@staff.example.com
smtp25 --data "$MS_T/n1.eml" --from support@example.com --to staff@staff.example.com
f=$(by_id staff@staff.example.com fake-notice@evil.test) || t_fail "fake notice delivered"
t_is "$(grep -ci '^X-Helpgate-' "$f")" 0 "2a: a stranger's notice to staff loses every X-Helpgate-* header (made-up seal)"
# 2b. null-sender mail claiming to be an acknowledgement of ours
ms_mkmsg "$MS_T/n2.eml" "support@example.com" "Re: [$case1] ack" "hg-${case1#HG-}.ack.0000@example.com" \
	"fake" "X-Helpgate-Case: $case1\nAuto-Submitted: auto-replied" ann@client.test
smtp25 --data "$MS_T/n2.eml" --from '<>' --to ann@client.test
f=$(by_id ann@client.test "hg-${case1#HG-}.ack.0000@example.com") || t_fail "null-sender fake delivered"
t_is "$(grep -ci '^X-Helpgate-' "$f")" 0 "2b: null-sender mail without a seal loses its X-Helpgate-Case"
# 2c. the worker's real acknowledgement keeps its headers, sealed
ack=$(wait_find 20 ann@client.test Auto-Submitted '^auto-replied$') || t_fail "ann's acknowledgement arrived"
while [ -n "$ack" ] && [ -z "$(hdr "$ack" X-Helpgate-Seal)" ]; do	# skip the fake of 2b
	ack=$(ls -t "$MS_T/mail/ann@client.test/new/"* | while read -r x; do
		[ -n "$(hdr "$x" X-Helpgate-Seal)" ] && { echo "$x"; break; }; done)
	break
done
t_is "$(hdr "$ack" X-Helpgate-Case)" "$case1" "2c: the worker's acknowledgement keeps X-Helpgate-Case"
t_like "$(hdr "$ack" X-Helpgate-Seal)" '^v=1; t=[0-9]+; c='"${case1#HG-}"'; +s=[0-9a-f]{64}$' "2c: ... and its seal"
ackid=$(hdr "$ack" Message-ID | tr -d '<>')
t_is "$(sq "SELECT relay_seen FROM outbox WHERE message_id = ?" "$ackid")" 1 "2c: the milter confirmed it into the relay (relay_seen)"
# 2d. that sealed acknowledgement replayed with another case: the seal fails
sed -e "s/^X-Helpgate-Case: .*/X-Helpgate-Case: HG-999/" -e 's/^Message-ID: <\(.*\)>/Message-ID: <replay-\1>/' \
	"$ack" | sed '/^Return-Path:\|^Delivered-To:\|^Received:/d' >"$MS_T/replay.eml"
sed -i "s/^\\(X-Helpgate-Seal:.*c=\\)[0-9]*/\\1999/" "$MS_T/replay.eml"
smtp25 --data "$MS_T/replay.eml" --from '<>' --to staff@staff.example.com
f=$(wait_find 20 staff@staff.example.com Message-ID '^<replay-') || t_fail "replayed letter delivered"
t_is "$(grep -ci '^X-Helpgate-' "$f")" 0 "2d: a sealed letter replayed with another case and Message-ID loses all X-Helpgate-* headers"
# 2f. the client's own sealed acknowledgement, sent on to staff with a notice
# header added or its Subject changed: the seal covers them, so it fails.
# The control, sent on untouched, keeps its headers: the seal survives a
# second trip through Postfix, and only the change makes the difference.
sed '/^Return-Path:\|^Delivered-To:\|^Received:/d' "$ack" >"$MS_T/fwd-control.eml"
sed -e 's/^Message-ID: <\(.*\)>/Message-ID: <\1>\nX-Helpgate-Notice: breach/' "$MS_T/fwd-control.eml" >"$MS_T/fwd-notice.eml"
sed -e 's/^Subject: .*/Subject: [Case] Your account is suspended, log in at http:\/\/evil.test\//' \
	"$MS_T/fwd-control.eml" >"$MS_T/fwd-subject.eml"
grep -q '^X-Helpgate-Notice: breach' "$MS_T/fwd-notice.eml" || t_fail "2f: the notice header was added"
for kind in notice subject control; do
	smtp25 --data "$MS_T/fwd-$kind.eml" --from '<>' --to "fwd-$kind@staff.example.com" ||
		t_fail "2f: the $kind replay accepted"
done
f=$(wait_find 20 fwd-notice@staff.example.com Message-ID .) || t_fail "2f: notice replay delivered"
t_is "$(grep -ci '^X-Helpgate-' "$f")" 0 "2f: a sealed acknowledgement with an added X-Helpgate-Notice loses all X-Helpgate-* headers"
f=$(wait_find 20 fwd-subject@staff.example.com Message-ID .) || t_fail "2f: subject replay delivered"
t_is "$(grep -ci '^X-Helpgate-' "$f")" 0 "2f: a sealed acknowledgement with another Subject loses all X-Helpgate-* headers"
f=$(wait_find 20 fwd-control@staff.example.com Message-ID .) || t_fail "2f: control replay delivered"
t_is "$(hdr "$f" X-Helpgate-Case)" "$case1" "2f: control: the untouched acknowledgement keeps its headers"
# 2e. an unsealed null-sender message naming a pending outbox row does not confirm it
sq "INSERT INTO outbox (case_id, kind, recipient, message_id, content, state, created) VALUES (?, 'notice', 'x@client.test', 'pending-1@example.com', 'x', 'failed', 0)" "${case1#HG-}" >/dev/null
ms_mkmsg "$MS_T/n3.eml" "support@example.com" "x" "pending-1@example.com" "x" "X-Helpgate-Case: $case1" ann@client.test
smtp25 --data "$MS_T/n3.eml" --from '<>' --to ann@client.test
by_id ann@client.test pending-1@example.com >/dev/null || t_fail "n3 delivered"
t_is "$(sq "SELECT relay_seen FROM outbox WHERE message_id = 'pending-1@example.com'")" 0 \
	"2e: an unsealed message cannot mark an outbox row as in the relay"

# ---- 3. backscatter and paging on demand
count_dir() { find "$MS_T/mail" -path "$1" -path '*/new/*' -type f 2>/dev/null | wc -l; }
# 3a. 12 outage reports "from" victim+N@victim.test, sent by evil.test
for i in $(seq 1 12); do
	ms_mkmsg "$MS_T/v$i.eml" "Victim <victim+$i@victim.test>" "URGENT: all our mail is down!!!" \
		"victim-$i@evil.test" "We cannot send or receive any mail since this morning. Urgent!!!"
	smtp25 --data "$MS_T/v$i.eml" --from attacker@evil.test || t_fail "victim message $i sent"
done
f=$(by_id support@example.com victim-12@evil.test) || t_fail "victim messages delivered"
t_like "$(hdr "$f" X-Helpgate-Case)" '^HG-[0-9]+$' "3a: a forged From still opens and tags a case (staff must see it)"
t_like "$(hdr "$f" X-Helpgate-Reasons)" 'From not verified \(not-aligned\): no automatic answer' \
	"3a: X-Helpgate-Reasons tells staff the From is not verified"
decided() { [ "$(sq "SELECT count(*) FROM messages WHERE message_id LIKE 'victim-%' AND ack <> ''")" = 12 ]; }
ms_wait_for 20 decided || t_fail "the worker decided the 12 messages"
t_is "$(sq "SELECT count(*) FROM messages WHERE message_id LIKE 'victim-%' AND ack = 'skip:sender-unverified:not-aligned'")" 12 \
	"3a: all 12 recorded as skip:sender-unverified:not-aligned"
sleep 2
t_is "$(count_dir '*/victim*@victim.test/*')" 0 "3a: the victim got no acknowledgement at all (12 forged From)"
t_is "$(sq "SELECT count(*) FROM outbox WHERE kind = 'ack' AND recipient LIKE 'victim%'")" 0 "3a: none queued"
# the 12 are P1: oncall is paged twice for victim.test, then told of the flood once
p1_notices() { grep -l "^X-Helpgate-Notice: $1\$" "$MS_T/mail/oncall@staff.example.com/new/"* 2>/dev/null | wc -l; }
flood_paged() { [ "$(p1_notices p1-flood)" -ge 1 ]; }	# a function: re-evaluated each try
ms_wait_for 20 flood_paged || t_fail "3a: the flood notice arrived"
sleep 2
t_is "$(p1_notices p1)" 2 "3a: 12 P1 cases from one domain page on-call P1NoticePerDomainPerHour (2) times"
t_is "$(p1_notices p1-flood)" 1 "3a: ... plus one notice that paging is paused for that domain"
flood=$(grep -l '^X-Helpgate-Notice: p1-flood$' "$MS_T/mail/oncall@staff.example.com/new/"* | head -n 1)
t_like "$(python3 -c 'import email,sys; from email import policy; m=email.message_from_binary_file(open(sys.argv[1],"rb"),policy=policy.default); print(m.get_body().get_content())' "$flood")" \
	'from victim.test' "3a: the flood notice names the domain"

# 3b. victim+N@client.test, aligned this time: one mailbox, one rate limit
for i in $(seq 1 6); do
	ms_mkmsg "$MS_T/p$i.eml" "Pat <pat+$i@client.test>" "Question $i" "plus-$i@client.test" "How do I add an alias ($i)?"
	smtp25 --data "$MS_T/p$i.eml" --from "pat+$i@client.test" || t_fail "plus message $i sent"
done
plus_decided() { [ "$(sq "SELECT count(*) FROM messages WHERE message_id LIKE 'plus-%' AND ack <> ''")" = 6 ]; }
ms_wait_for 20 plus_decided || t_fail "the worker decided the 6 messages"
sleep 2
t_is "$(sq "SELECT count(*) FROM outbox WHERE kind = 'ack' AND recipient LIKE 'pat+%@client.test'")" 3 \
	"3b: pat+1..6@ share one mailbox's AckRateLimit (3 an hour)"
t_is "$(sq "SELECT count(*) FROM messages WHERE message_id LIKE 'plus-%' AND ack = 'skip:rate-limit-hour'")" 3 \
	"3b: the other 3 recorded as rate-limited"

# 3c. Authentication-Results: only the trusted authserv-id counts
ms_mkmsg "$MS_T/ar1.eml" "Dee <dee@partner.test>" "Alias question" "ar-1@partner.test" "How do I add an alias?" \
	"Authentication-Results: mx.helpgate.test; dkim=pass header.d=partner.test; spf=fail smtp.mailfrom=esp.test"
smtp25 --data "$MS_T/ar1.eml" --from bounce-123@esp.test
ms_mkmsg "$MS_T/ar2.eml" "Dan <dan@partner.test>" "Alias question" "ar-2@partner.test" "How do I add an alias?" \
	"Authentication-Results: evil.test; dkim=pass header.d=partner.test; dmarc=pass header.from=partner.test"
smtp25 --data "$MS_T/ar2.eml" --from bounce-124@esp.test
ms_mkmsg "$MS_T/ar3.eml" "Dot <dot@partner.test>" "Alias question" "ar-3@partner.test" "How do I add an alias?" \
	"Authentication-Results: mx.helpgate.test; dmarc=fail header.from=partner.test"
smtp25 --data "$MS_T/ar3.eml" --from dot@partner.test
ar_decided() { [ "$(sq "SELECT count(*) FROM messages WHERE message_id LIKE 'ar-%' AND ack <> ''")" = 3 ]; }
ms_wait_for 20 ar_decided || t_fail "the worker decided the 3 messages"
t_is "$(sq "SELECT ack FROM messages WHERE message_id = 'ar-1@partner.test'")" queued \
	"3c: DKIM aligned with From, stamped by the trusted authserv-id: acknowledged (envelope at an ESP)"
t_is "$(sq "SELECT ack FROM messages WHERE message_id = 'ar-2@partner.test'")" skip:sender-unverified:not-aligned \
	"3c: the same results under another authserv-id are not read"
t_is "$(sq "SELECT ack FROM messages WHERE message_id = 'ar-3@partner.test'")" skip:sender-unverified:dmarc-fail \
	"3c: a trusted dmarc=fail wins over an aligned envelope"

t_is "$(kill -0 "$worker_pid" 2>/dev/null && echo alive)" alive "the worker kept running"
ms_stop_pid "$worker_pid"
t_is "$?" 0 "the worker exits cleanly"
ms_stop_milter "$MS_MILTER_PID"
t_is "$?" 0 "the milter exits cleanly"
t_done
