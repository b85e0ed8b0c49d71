#!/usr/bin/env bash
# test_sla.sh BINDIR - SLA timers end to end on a controlled clock
# (HELPGATE_NOW, read by the milter, the worker and helpgatectl): a warning
# before the deadline, the breach and the escalation chain after it, each
# notice exactly once across a worker restart; a staff reply that stops the
# clock; the end-of-day alarm; waiting for the client and resuming; a missed
# P1 that puts the customer under incident watch; resolving, which asks the
# client to confirm.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/../lib/mailstack.sh"

bindir=${1:-bin}
for p in helpgate-milter helpgate-worker helpgatectl; do
	[ -x "$bindir/$p" ] || { echo "no $bindir/$p"; echo "0 passed, 1 failed"; exit 1; }
done
ms_init || exit 1
ms_database || exit 1
ms_start_sink || exit 1
export MS_DELIVERY=maildir
export MS_MAILDIR_DOMAINS="example.com client.test staff.example.com"
conf="$MS_T/helpgate.conf"
now_file="$MS_T/now"
export HELPGATE_NOW="$now_file"
set_now() { echo "$1" >"$now_file"; }
set_now 2026-11-30T10:00:00+02:00	# a Monday
cat >"$conf" <<CONF
Socket unix:$MS_T/hg.sock
$MS_DATABASE_CONF
DiagnoseResolver 127.0.0.1:9
SupportAddress support@example.com
StaffDomain staff.example.com
StaffNetwork 127.0.0.2/32
Timezone Europe/Kyiv
Syslog no
KeywordsDir $repo/conf/keywords
TemplatesDir $repo/conf/templates
PollInterval 100ms
NoticeAddress notices@staff.example.com
OnCallAddress oncall@staff.example.com
Escalate 1 after=breach to=l2@staff.example.com
Escalate 2 after=breach+2h to=manager@staff.example.com
# no automatic diagnosis (test_autodiagnose.sh): it would resolve the
# clients' domains through the system resolver and note staff
DiagnosePerCustomerPerHour 0
CONF
MS_MILTER_SOCKET="unix:$MS_T/hg.sock"
ms_start_milter "$bindir/helpgate-milter" -f -c "$conf" -p "$MS_MILTER_SOCKET" || exit 1
ms_start_postfix "$MS_MILTER_SOCKET" || exit 1
echo "Relay smtp://127.0.0.1:$MS_SMTP_PORT" >>"$conf"
ctl() { "$bindir/helpgatectl" -c "$conf" "$@"; }
start_worker() { ms_spawn WORKER_PID "$bindir/helpgate-worker" -f -c "$conf"; }
stop_worker() { ms_stop_pid "$WORKER_PID"; }
start_worker

inbox() { find "$MS_T/mail/$1/new" -type f 2>/dev/null | sort; }
count_notices() {	# count_notices ADDRESS CASE TAG
	local n=0 f
	for f in $(inbox "$1"); do
		[ "$(ms_header "$f" X-Helpgate-Case)" = "$2" ] && [ "$(ms_header "$f" X-Helpgate-Notice)" = "$3" ] && n=$((n + 1))
	done
	echo "$n"
}
wait_notice() {	# wait_notice ADDRESS CASE TAG
	local i
	for ((i = 0; i < 100; i++)); do
		[ "$(count_notices "$@")" -ge 1 ] && return 0
		sleep 0.1
	done
	return 1
}
send() {	# send FROM SUBJECT BODY [swaks args]
	local from=$1 subject=$2 body=$3; shift 3
	ms_send --from "$from" --h-From "<$from>" --h-Subject "$subject" --body "$body" "$@" >/dev/null ||
		t_fail "swaks: $subject"
}
case_of() {	# case_of CLIENT: the newest case of a client
	ctl cases --json | python3 -c 'import json,sys
for c in json.load(sys.stdin):
    if c["client"] == sys.argv[1]: print("HG-%d" % c["id"]); break' "$1"
}
wait_case() { local i; for ((i = 0; i < 50; i++)); do c=$(case_of "$1"); [ -n "$c" ] && { echo "$c"; return; }; sleep 0.1; done; }

# ---- 1. a P2 outage at 10:00 Monday: 8 business hours for an unknown tier
send pat@client.test "Our outgoing mail is not being sent" "Since this morning no email leaves our office."
c1=$(wait_case pat@client.test)
t_like "$c1" '^HG-[0-9]+$' "case opened"
t_is "$(ctl case show "$c1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["first_due"])')" \
    "2026-11-30T18:00:00+02:00" "first response due 18:00 (P2, business hours)"
sleep 1
t_is "$(count_notices notices@staff.example.com "$c1" first-warning)" 0 "no warning at 10:00"
set_now 2026-11-30T16:01:00+02:00
wait_notice notices@staff.example.com "$c1" first-warning && t_ok "warning at 75% (16:00)" || t_fail "warning at 75%"

# ---- 2. the worker is down over the deadline, then catches up once
stop_worker
set_now 2026-11-30T18:05:00+02:00
start_worker
wait_notice notices@staff.example.com "$c1" first-breach && t_ok "breach after a restart" || t_fail "breach"
wait_notice l2@staff.example.com "$c1" escalate-1 && t_ok "escalation 1 at the breach" || t_fail "escalation 1"
t_is "$(count_notices manager@staff.example.com "$c1" escalate-2)" 0 "escalation 2 not before breach+2h"
stop_worker
start_worker
sleep 1.5
t_is "$(count_notices notices@staff.example.com "$c1" first-breach)" 1 "breach notice exactly once across restarts"
t_is "$(count_notices l2@staff.example.com "$c1" escalate-1)" 1 "escalation 1 exactly once"
t_is "$(count_notices notices@staff.example.com "$c1" first-warning)" 1 "warning exactly once"
set_now 2026-12-01T11:01:00+02:00	# breach+2h of business time: Tuesday 11:00
wait_notice manager@staff.example.com "$c1" escalate-2 && t_ok "escalation 2 at breach + 2 business hours" ||
	t_fail "escalation 2"
notice=$(inbox l2@staff.example.com | head -n 1)
t_like "$(cat "$notice")" "Client: +pat@client.test" "notice names the client"

# ---- 3. a staff reply stops the first-response clock
set_now 2026-12-01T12:00:00+02:00
send rob@client.test "Cannot receive mail" "No incoming mail since yesterday evening."
c2=$(wait_case rob@client.test)
send sam@staff.example.com "Re: [$c2] Cannot receive mail" "Hello Rob, we are on it." --to rob@client.test --local-interface 127.0.0.2
sleep 1
set_now 2026-12-02T12:00:00+02:00
sleep 1.5
t_is "$(count_notices notices@staff.example.com "$c2" first-breach)" 0 "answered case: no breach notice"
t_like "$(ctl sla explain "$c2")" "first-breach .*cancelled: answered" "sla explain: breach cancelled, answered"

# ---- 4. end of day: a P1 at 17:30 alarms the on-call address at once
set_now 2026-12-02T17:30:00+02:00
send ida@client.test "URGENT: we cannot send any email" "Nothing goes out, customers are waiting! URGENT!!!"
c3=$(wait_case ida@client.test)
wait_notice oncall@staff.example.com "$c3" end-of-day && t_ok "end-of-day notice to on-call" || t_fail "end-of-day notice"

# ---- 5. waiting for the client pauses the resolution clock; their mail resumes it
c1_due=$(ctl case show "$c1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["resolve_due"])')
ctl case wait "$c1" >/dev/null && t_ok "case wait" || t_fail "case wait"
set_now 2026-12-03T12:00:00+02:00
send pat@client.test "Re: [$c1] Our outgoing mail is not being sent" "Here is the error: 554 relay denied."
sleep 1
json=$(ctl case show "$c1" --json)
t_is "$(printf '%s' "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')" open \
    "the client's mail resumed the case"
new_due=$(printf '%s' "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["resolve_due"])')
[ "$new_due" \> "$c1_due" ] && t_ok "resolution deadline moved by the pause ($c1_due -> $new_due)" ||
	t_fail "deadline moved" "$c1_due -> $new_due"
t_like "$(ctl sla explain "$c1")" "paused 2026-12-0" "sla explain lists the pause"

# ---- 6. a missed P1 puts the customer under incident watch
set_now 2026-12-03T13:00:00+02:00
send zed@client.test "URGENT: cannot send email" "Outgoing mail is down!!! Urgent!"
c4=$(wait_case zed@client.test)
set_now 2026-12-03T15:31:00+02:00	# P1: 2 h around the clock for an unknown tier
wait_notice notices@staff.example.com "$c4" first-breach || t_fail "P1 breach notice"
t_like "$(ctl customer list)" "zed@client.test .*standard|zed@client.test .*unknown" "customer on file after the breach"
send zed@client.test "Another question" "How do I add an alias?"
sleep 1
f=$(ms_list_maildir | while read -r m; do [ "$(ms_header "$m" Subject)" = "Another question" ] && echo "$m"; done | tail -n 1)
t_like "$(ms_header "$f" X-Helpgate-Tier)" '\+watch$' "their next mail is tagged +watch"
t_like "$(ms_header "$f" X-Helpgate-Reasons)" "watch|=\?UTF-8" "and raised for it"

# ---- 7. resolving closes the loop with the client
ctl case resolve "$c2" --cause "MX record pointed to the old server" --lesson "check DNS after migrations" >/dev/null &&
	t_ok "case resolve" || t_fail "case resolve"
n2=${c2#HG-}
for ((i = 0; i < 100; i++)); do
	close=$(inbox rob@client.test | while read -r m; do
		ms_header "$m" Message-ID | grep -q "^<hg-$n2\.close\." && echo "$m"; done | head -n 1)
	[ -n "$close" ] && break
	sleep 0.1
done
t_like "$close" . "the client got the closing message"
t_is "$(ms_header "$close" In-Reply-To)" "$(ctl case show "$c2" --json | python3 -c 'import json,sys; print("<%s>" % json.load(sys.stdin)["messages"][0]["message_id"])')" \
    "in the thread of the client's first message"
t_like "$(ms_header "$close" Subject)" "^Re: \[$c2\] Cannot receive mail$" "closing subject"
t_like "$(python3 -c 'import email,sys; from email import policy; m=email.message_from_binary_file(open(sys.argv[1],"rb"),policy=policy.default); print(m.get_body().get_content())' "$close")" \
    "check that everything works" "closing message asks the client to confirm"
json=$(ctl case show "$c2" --json)
t_is "$(printf '%s' "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')" resolved "resolved"
sla=$(ctl sla --json)
t_is "$(printf '%s' "$sla" | python3 -c 'import json,sys; print(sum(1 for c in json.load(sys.stdin) if c["id"] == int(sys.argv[1][3:])))' "$c2")" 0 \
    "sla no longer lists the resolved case"
t_is "$(printf '%s' "$sla" | python3 -c 'import json,sys
d = json.load(sys.stdin); print(all(d[i]["due"] <= d[i+1]["due"] for i in range(len(d)-1) if d[i]["due"] and d[i+1]["due"]))')" True \
    "sla lists the nearest deadline first"
rep=$(ctl report --json)
t_is "$(printf '%s' "$rep" | python3 -c 'import json,sys; print(sum(g["cases"] for g in json.load(sys.stdin)))')" \
    "$(ctl cases --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" "report counts every case"
t_like "$(printf '%s' "$rep" | python3 -c 'import json,sys
print([g for g in json.load(sys.stdin) if g["urgency"] == 2 and g["tier"] == "unknown"][0])')" \
    "'first_response_missed': [1-9]" "report: the missed P2 first response counted"
t_like "$(ctl report)" "^TIER +URG +CASES +FIRST-MET +MEDIAN +P90 +RESOLVE-MET" "report table"
ctl report --since yesterday >/dev/null 2>&1
t_is "$?" 2 "report: a bad --since is a usage error"
t_done
