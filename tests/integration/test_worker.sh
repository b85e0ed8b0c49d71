#!/usr/bin/env bash
# test_worker.sh BINDIR - acknowledgements end to end: client mail goes
# through a private Postfix and helpgate-milter, the worker acknowledges
# through the same Postfix (Relay), and the test reads what reached the
# clients' Maildirs: subject, case, deadline, threading headers, language;
# no acknowledgement to machines, no-reply senders, staff, follow-ups or
# beyond the rate cap; a P1 notice to the escalation address; and a worker
# killed with SIGKILL in the middle of 200 new cases still gives every case
# exactly one acknowledgement.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/../lib/mailstack.sh"

bindir=${1:-bin}
for p in helpgate-milter helpgate-worker helpgatectl; do
	[ -x "$bindir/$p" ] || { echo "no $bindir/$p"; echo "0 passed, 1 failed"; exit 1; }
done
data="$repo/tests/data"

ms_init || exit 1
ms_database || exit 1
conf="$MS_T/helpgate.conf"
ms_start_sink || exit 1
MS_MILTER_SOCKET="unix:$MS_T/hg.sock"
export MS_DELIVERY=maildir
export MS_MAILDIR_DOMAINS="example.com client.test staff.example.com newco.test"
ms_start_milter_later=1
cat >"$conf" <<CONF
Socket unix:$MS_T/hg.sock
$MS_DATABASE_CONF
DiagnoseResolver 127.0.0.1:9
SupportAddress support@example.com
StaffDomain staff.example.com
EscalationAddress oncall@staff.example.com
Timezone Europe/Kyiv
Syslog no
KeywordsDir $repo/conf/keywords
TemplatesDir $repo/conf/templates
AckRateLimit 3 20
PollInterval 100ms
# no automatic diagnosis here (test_autodiagnose.sh): it would resolve the
# clients' domains through the system resolver
DiagnosePerCustomerPerHour 0
CONF
ms_start_milter "$bindir/helpgate-milter" -f -c "$conf" -p "$MS_MILTER_SOCKET" || exit 1
ms_start_postfix "$MS_MILTER_SOCKET" || exit 1
echo "Relay smtp://127.0.0.1:$MS_SMTP_PORT" >>"$conf"
ctl() { "$bindir/helpgatectl" -c "$conf" "$@"; }
ctl customer add @newco.test --tier trial >/dev/null

start_worker() {
	"$bindir/helpgate-worker" -f -c "$conf" >>"$MS_T/worker.log" 2>&1 &
	WORKER_PID=$!
	MS_PIDS+=("$WORKER_PID")
}
start_worker

maildir() { printf '%s/mail/%s' "$MS_T" "$1"; }
inbox() { find "$(maildir "$1")/new" -type f 2>/dev/null | sort; }
inbox_count() { inbox "$1" | grep -c .; }
wait_inbox() {	# wait_inbox ADDRESS N TIMEOUT
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		[ "$(inbox_count "$1")" -ge "$2" ] && return 0
		sleep 0.1
	done
	return 1
}
# The decoded text body of a delivered message.
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
hdr() { ms_header "$1" "$2"; }
sent=0
send() { if ms_send --data "$@"; then sent=$((sent + 1)); else t_fail "swaks $1"; fi; }
mkmsg() { ms_mkmsg "$@"; }

# ---- 1. an English P1, a Russian and a Ukrainian case
t0=$(date +%s.%N)
send "$data/en-outgoing-urgent.eml"
send "$data/ru-koi8-qp.eml"
send "$data/uk-utf8-b64.eml"
wait_inbox mark.johnson@client.test 1 20 && t_ok "English client acknowledged" || t_fail "English client acknowledged"
t1=$(date +%s.%N)
wait_inbox ivan.petrov@client.test 1 20 || t_fail "Russian client acknowledged"
wait_inbox oksana.kovalenko@client.test 1 20 || t_fail "Ukrainian client acknowledged"
t_ok "first acknowledgement after $(python3 -c "print(round($t1 - $t0, 2))") s"

ack=$(inbox mark.johnson@client.test | head -n 1)
case_en=$(hdr "$ack" X-Helpgate-Case)
t_like "$case_en" '^HG-[0-9]+$' "ack carries X-Helpgate-Case"
t_is "$(subject "$ack")" "Re: [$case_en] URGENT: cannot send email" "ack subject"
t_is "$(hdr "$ack" Auto-Submitted)" auto-replied "Auto-Submitted: auto-replied"
t_is "$(hdr "$ack" X-Auto-Response-Suppress)" All "X-Auto-Response-Suppress: All"
t_is "$(hdr "$ack" Precedence)" auto_reply "Precedence: auto_reply"
t_is "$(hdr "$ack" In-Reply-To)" "<20250303091241.5521@mail.client.test>" "In-Reply-To the client's message"
t_like "$(hdr "$ack" References)" "<20250303091241.5521@mail.client.test>" "References the client's message"
t_like "$(hdr "$ack" Message-ID)" "^<hg-${case_en#HG-}\.ack\.[0-9a-f]+@example\.com>$" "Message-ID encodes the case"
t_like "$(hdr "$ack" From)" "support@example.com" "From the support address"
t_like "$(hdr "$ack" Return-Path)" '^<(MAILER-DAEMON)?>$' "null envelope sender (RFC 3834)"
t_like "$(hdr "$ack" Date)" '^[A-Z][a-z]{2}, ' "Date header"
text=$(body "$ack")
t_like "$text" "case $case_en" "body names the case"
t_like "$text" "by 20[0-9]{2}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}" "body gives the deadline as a local time"
t_like "$text" "Europe/Kyiv, UTC\+0[23]:00" "deadline names the time zone"
t_like "$text" "within [0-9]+ (minutes|hours?)" "deadline as 'within N'"
t_like "$text" "exact error message" "outgoing-mail: asks for the exact error"
t_like "$text" "port and security" "outgoing-mail: asks for server, port and security"
long=$(awk 'length > 78' "$ack" | head -n 1)
t_is "$long" "" "no line in the ack longer than 78 characters"

ru=$(inbox ivan.petrov@client.test | head -n 1)
t_like "$(subject "$ru")" '^Re: \[HG-[0-9]+\] Срочно! Не отправляются письма$' "Russian subject decoded and re-encoded"
t_like "$(body "$ru")" "Здравствуйте" "Russian client gets a Russian acknowledgement"
t_like "$(body "$ru")" "заявку HG-[0-9]+" "Russian body names the case"
uk=$(inbox oksana.kovalenko@client.test | head -n 1)
t_like "$(body "$uk")" "Доброго дня" "Ukrainian client gets a Ukrainian acknowledgement"

wait_inbox oncall@staff.example.com 1 20 && t_ok "P1 notice reached the escalation address" || t_fail "P1 notice"
notice=$(inbox oncall@staff.example.com | while read -r f; do
	[ "$(hdr "$f" X-Helpgate-Case)" = "$case_en" ] && echo "$f"; done | head -n 1)
t_like "$(body "$notice")" "Client: +mark.johnson@client.test" "P1 notice names the client"
t_like "$(body "$notice")" "Reasons: " "P1 notice gives the reasons"

# ---- 2. no acknowledgement to machines, no-reply senders, staff, follow-ups
send "$data/auto-reply.eml"
mkmsg "$MS_T/ooo.eml" "Mark Johnson <mark.johnson@client.test>" "Automatic reply: Re: [$case_en] URGENT: cannot send email" \
    "ooo-1@client.test" "I am out of the office until Monday." "Auto-Submitted: auto-replied"
send "$MS_T/ooo.eml" --from mark.johnson@client.test
send "$data/list.eml"
send "$data/bounce.eml" --from '<>'
mkmsg "$MS_T/noreply.eml" "Robot <no-reply@client.test>" "Your order" "noreply-1@client.test" "Cannot send mail from the shop."
send "$MS_T/noreply.eml" --from no-reply@client.test
mkmsg "$MS_T/staff.eml" "Ann <ann@staff.example.com>" "Test" "staff-1@staff.example.com" "Testing the support address."
send "$MS_T/staff.eml" --from ann@staff.example.com
mkmsg "$MS_T/follow.eml" "Mark Johnson <mark.johnson@client.test>" "Re: [$case_en] URGENT: cannot send email" \
    "follow-1@client.test" "Here is the error: 550 relay access denied."
send "$MS_T/follow.eml" --from mark.johnson@client.test
mkmsg "$MS_T/self.eml" "Support <support@example.com>" "Loop?" "self-1@example.com" "Mail from ourselves."
send "$MS_T/self.eml" --from support@example.com
# A control that must be acknowledged, so that waiting for it proves the
# worker has looked at everything sent before it.
mkmsg "$MS_T/control.eml" "Carl <carl@client.test>" "How do I add an alias?" "control-1@client.test" "How do I add an alias?"
send "$MS_T/control.eml" --from carl@client.test
wait_inbox carl@client.test 1 20 || t_fail "control acknowledged"
sleep 1
t_is "$(inbox_count mark.johnson@client.test)" 1 "no ack to auto-reply or follow-up (one ack for Mark)"
t_is "$(inbox_count news@client.test)" 0 "no ack to list mail"
t_is "$(inbox_count mailer-daemon@mx.client.test)" 0 "no ack to a bounce"
t_is "$(inbox_count no-reply@client.test)" 0 "no ack to a no-reply sender"
t_is "$(inbox_count ann@staff.example.com)" 0 "no ack to staff"
loops=$(inbox support@example.com | while read -r f; do hdr "$f" Message-ID; done | grep -c '^<hg-[0-9]*\.ack\.')
t_is "$loops" 0 "no ack to the support address itself"
follow_case=$(ctl cases --json | python3 -c '
import json,sys
for c in json.load(sys.stdin):
    if c["client"] == "no-reply@client.test": print(c["id"])')
json=$(ctl case show "$follow_case" --json)
t_is "$(printf '%s' "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["messages"][0]["ack"])')" \
    "skip:no-reply-sender" "skip reason recorded (no-reply-sender)"
json=$(ctl case show "$case_en" --json)
acks=$(printf '%s' "$json" | python3 -c '
import json,sys
d = json.load(sys.stdin)
print(" ".join(m["ack"] for m in d["messages"] if m["direction"] == "in"))')
t_like "$acks" "^queued .*skip:follow-up" "follow-up recorded as skip:follow-up"
t_like "$acks" "skip:auto:auto-submitted" "threaded auto-reply recorded as skipped"
t_is "$(printf '%s' "$json" | python3 -c 'import json,sys; print(sorted(o["kind"] for o in json.load(sys.stdin)["outbox"]))')" \
    "['ack', 'notice']" "case show lists the ack and the P1 notice"

# ---- 3. the per-recipient cap (AckRateLimit 3 20)
for i in 1 2 3 4 5; do
	mkmsg "$MS_T/rate-$i.eml" "Rita <rita@client.test>" "Question $i" "rate-$i@client.test" "How do I change my signature ($i)?"
	send "$MS_T/rate-$i.eml" --from rita@client.test
done
mkmsg "$MS_T/control2.eml" "Carl <carl@client.test>" "Another question" "control-2@client.test" "How do I add a second alias?"
send "$MS_T/control2.eml" --from carl@client.test
wait_inbox carl@client.test 2 20 || t_fail "second control acknowledged"
sleep 1
t_is "$(inbox_count rita@client.test)" 3 "rate cap: 3 acks an hour to one address"
t_like "$(ctl outbox)" "HG-" "helpgatectl outbox lists messages"
skips=$("$bindir/helpgatectl" -c "$conf" cases --json | python3 -c '
import json,sys
print(sum(1 for c in json.load(sys.stdin) if c["client"] == "rita@client.test"))')
t_is "$skips" 5 "five cases for Rita all the same"

# ---- 4. the client's reply to the acknowledgement threads into the case
ackid=$(hdr "$ack" Message-ID)
mkmsg "$MS_T/reply.eml" "Mark Johnson <mark.johnson@client.test>" "Re: your confirmation" "reply-1@client.test" \
    "The error text is: 554 5.7.1 Relay access denied" "In-Reply-To: $ackid\nReferences: $ackid"
send "$MS_T/reply.eml" --from mark.johnson@client.test
ms_wait_delivered "$sent" 30 >/dev/null 2>&1
f=$(ms_find_by_header Message-ID "<reply-1@client.test>")
t_is "$(hdr "$f" X-Helpgate-Case)" "$case_en" "a reply to the ack threads into its case"

# ---- 5. SIGKILL in the middle of a burst of 200 new cases
n=200
python3 - "$MS_SMTP_PORT" "$n" <<'PY' &
import smtplib, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
s = smtplib.SMTP('127.0.0.1', port)
for i in range(n):
    msg = ("From: Burst %d <burst%d@newco.test>\r\nTo: support@example.com\r\n"
           "Subject: Question %d\r\nMessage-ID: <burst-%d@newco.test>\r\n\r\n"
           "How do I set up an autoresponder? (%d)\r\n") % (i, i, i, i, i)
    s.sendmail('burst%d@newco.test' % i, ['support@example.com'], msg)
s.quit()
PY
burst_pid=$!
kills=0
for round in 1 2 3; do
	# Let some acknowledgements through, then kill the worker mid-stream.
	for ((w = 0; w < 50; w++)); do
		got=$(find "$MS_T/mail" -path '*burst*' -path '*/new/*' -type f 2>/dev/null | wc -l)
		[ "$got" -ge $((round * 40)) ] && break
		sleep 0.1
	done
	kill -9 "$WORKER_PID" 2>/dev/null && kills=$((kills + 1))
	wait "$WORKER_PID" 2>/dev/null
	start_worker
done
wait "$burst_pid"
t_is "$kills" 3 "worker killed with SIGKILL three times during the burst"
for ((w = 0; w < 600; w++)); do
	got=$(find "$MS_T/mail" -path '*burst*' -path '*/new/*' -type f 2>/dev/null | wc -l)
	[ "$got" -ge "$n" ] && break
	sleep 0.1
done
sleep 2
per_case=$(find "$MS_T/mail" -path '*burst*' -path '*/new/*' -type f -print0 |
	xargs -0 grep -h -m1 '^X-Helpgate-Case:' | sort | uniq -c | awk '{print $1}' | sort | uniq -c)
t_is "$(echo "$per_case" | sed 's/^ *//')" "$n 1" "each of $n cases got exactly one acknowledgement"
t_is "$(find "$MS_T/mail" -path '*burst*' -path '*/new/*' -type f | wc -l)" "$n" "$n acknowledgements in all"
# A row a SIGKILL left "sending" is settled after the grace period (30 s):
# marked sent if the relay's milter saw it, sent again otherwise.
for ((w = 0; w < 50; w++)); do
	pending=$(ctl outbox --json --limit 1000 | python3 -c 'import json,sys; print(sum(1 for o in json.load(sys.stdin) if o["state"] != "sent"))')
	[ "$pending" = 0 ] && break
	sleep 1
done
t_is "$pending" 0 "outbox: everything sent (after the grace for rows a kill left sending)"
per_case=$(find "$MS_T/mail" -path '*burst*' -path '*/new/*' -type f -print0 |
	xargs -0 grep -h -m1 '^X-Helpgate-Case:' | sort | uniq -c | awk '{print $1}' | sort | uniq -c)
t_is "$(echo "$per_case" | sed 's/^ *//')" "$n 1" "still exactly one acknowledgement per case after the grace"
grep -q "already taken by the relay" "$MS_T/worker.log" &&
	t_ok "a restart found a message the relay already had (window closed by the milter)" ||
	t_ok "no kill landed inside a relay transaction this run"
t_done
