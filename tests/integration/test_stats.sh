#!/usr/bin/env bash
# test_stats.sh BINDIR - helpgatectl stats and helpgatectl sla --watch
# against a throw-away store.  helpgatectl creates the store (schema and
# migrations); the test then writes a known history into it with python3's
# sqlite3 (cases with met, missed and undecided SLA clocks, client, staff and
# helpgate messages with acknowledgement decisions, outbox rows in every
# state, diagnoses that ran and were skipped) and a degraded-mail spool, and
# checks the exact numbers in stats --json and the text table, --since in
# its three forms, and that report agrees on SLA met.  sla --watch: two
# frames with --count, a prompt clean exit on SIGTERM and SIGINT, and on a
# terminal (script(1)) the screen cleared and the cursor given back.
# Starts nothing that outlives it; prints "ok - ..." / "not ok - ..." and
# "N passed, N failed"; exits 1 on any failure.
set -u

bindir=${1:?usage: test_stats.sh BINDIR}
ctl="$bindir/helpgatectl"
[ -x "$ctl" ] || { echo "not ok - $ctl is not an executable"; echo "0 passed, 1 failed"; exit 1; }

tmp=$(mktemp -d /tmp/hg-test-stats.XXXXXX)
watch_pid=
cleanup() {
	[ -n "$watch_pid" ] && kill -KILL "$watch_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

passed=0
failed=0
ok()     { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/#   /'; }

run() {
	"$ctl" -c "$tmp/helpgate.conf" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	out=$(cat "$tmp/out")
	err=$(cat "$tmp/err")
}
expect_rc() {
	if [ "$rc" -eq "$1" ]; then ok "$2"; else not_ok "$2 (exit $rc, want $1)" "$out$err"; fi
}
# is GOT WANT DESCRIPTION
is() {
	if [ "$1" = "$2" ]; then ok "$3"; else not_ok "$3" "got:  $1
want: $2"; fi
}
# json_eval EXPR: a Python expression over the parsed $out (as j).
json_eval() {
	printf '%s' "$out" | python3 -c "import json, sys; j = json.load(sys.stdin); print(($1))" 2>&1
}
# line_is REGEX DESCRIPTION: some line of $out matches the extended regex.
line_is() {
	if printf '%s\n' "$out" | grep -Eq -- "$1"; then ok "$2"; else not_ok "$2 (no line /$1/)" "$out"; fi
}

cat >"$tmp/helpgate.conf" <<EOF
Database		$tmp/helpgate.db
SupportAddress		support@example.com
Timezone		Europe/Kyiv
Syslog			no
EOF
unset NO_COLOR HELPGATE_CONF
export HELPGATE_NOW=2026-11-30T10:00:00+02:00
now=$(python3 -c 'import datetime; print(int(datetime.datetime.fromisoformat("2026-11-30T10:00:00+02:00").timestamp()))')

# ---- an empty store ----
run stats --json
expect_rc 0 "stats on an empty (new) store"
is "$(json_eval 'j["messages"]["total"], j["acks"]["sent"], j["outbox"]["oldest_age_s"], j["sla"]["P1"]["first_response_met_pct"]')" \
    "(0, 0, None, None)" "an empty store counts nothing, and no percentage or age"

# ---- the history ----
# H = 3600, D = 86400; every time relative to now.
python3 - "$tmp/helpgate.db" "$now" <<'PY' || { echo "not ok - writing the history"; exit 1; }
import sqlite3, sys
db, now = sys.argv[1], int(sys.argv[2])
H, D = 3600, 86400
c = sqlite3.connect(db)
cases = [
    # id, created, status, urgency, category, first_due, resolve_due, first_response_at, resolved_at, paused_at
    (1, now - 10*D, 'resolved', 1, 'outgoing-mail', now - 10*D + H, now - 10*D + 4*H, now - 10*D + 1800, now - 10*D + 2*H, 0),
    (2, now - 2*D, 'open', 1, 'outgoing-mail', now - 2*D + 1800, now - 2*D + 4*H, now - 2*D + H, 0, 0),
    (3, now - D, 'open', 2, 'login', now - D + 4*H, now + D, now - D + H, 0, 0),
    (4, now - H, 'open', 4, 'other', now + 1800, now + 3*D, 0, 0, 0),
    (5, now - 3*D, 'waiting', 2, 'incoming-mail', now - 3*D + 4*H, now - D, 0, 0, now - 2*D),
    (6, now - 5*D, 'resolved', 1, 'outage', now - 5*D + 1800, now - 5*D + 4*H, now - 5*D + 600, now - 5*D + 3*H, 0),
]
for (i, cr, st, u, cat, fd, rd, fr, ra, pa) in cases:
    c.execute("INSERT INTO cases (id, created, updated, status, client, urgency, tier, category,"
              " first_due, resolve_due, first_response_at, resolved_at, paused_at, subject)"
              " VALUES (?, ?, ?, ?, ?, ?, 'standard', ?, ?, ?, ?, ?, ?, ?)",
              (i, cr, cr, st, "client%d@client.test" % i, u, cat, fd, rd, fr, ra, pa, "case %d" % i))
messages = [
    # case, direction, received, urgency, category, auto_reason, ack
    (1, 'in', now - 10*D, 1, 'outgoing-mail', '', 'queued'),
    (1, 'in', now - 20*D, 4, 'feature-request', '', 'skip:predates-worker'),
    (2, 'in', now - 2*D, 1, 'outgoing-mail', '', 'queued'),
    (2, 'in', now - 2*D + H, 2, 'outgoing-mail', '', 'skip:follow-up'),
    (2, 'staff', now - 2*D + H, 4, '', '', 'n/a'),
    (3, 'in', now - D, 2, 'login', '', 'skip:no-reply-sender'),
    (4, 'in', now - H, 4, 'other', 'autoreply', 'skip:auto:autoreply'),
    (5, 'in', now - 3*D, 2, 'incoming-mail', '', 'skip:rate-limit-hour'),
    (6, 'in', now - 5*D, 1, 'outage', '', 'queued'),
    (6, 'out', now - 5*D, 1, '', '', 'n/a'),
]
for n, (case, d, r, u, cat, auto, ack) in enumerate(messages):
    c.execute("INSERT INTO messages (case_id, message_id, direction, received, urgency, category,"
              " auto_reason, ack) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
              (case, "m%d@client.test" % n, d, r, u, cat, auto, ack))
outbox = [
    # case, kind, state, attempts, created
    (1, 'ack', 'sent', 1, now - 10*D),
    (2, 'ack', 'sent', 1, now - 2*D),
    (6, 'ack', 'failed', 5, now - 5*D),
    (2, 'notice', 'pending', 0, now - 1800),
    (3, 'close', 'pending', 2, now - 2*H),
    (6, 'notice', 'sending', 1, now - 600),
    (1, 'notice', 'failed', 3, now - 9*D),
    (3, 'ack', 'pending', 1, now - D),
]
for n, (case, kind, st, att, cr) in enumerate(outbox):
    c.execute("INSERT INTO outbox (case_id, kind, recipient, message_id, content, state, attempts,"
              " next_attempt, created) VALUES (?, ?, 'x@client.test', ?, '', ?, ?, ?, ?)",
              (case, kind, "o%d@example.com" % n, st, att, cr, cr))
diagnoses = [
    # case, protocol, created, verdict, skipped
    (2, 'smtp', now - 2*D, 'auth_failed', ''),
    (1, 'smtp', now - 10*D, 'ok', ''),
    (6, 'smtp', now - 5*D, 'auth_failed', ''),
    (3, 'smtp', now - D, '', 'no-settings'),
    (4, 'imap', 0, '', 'predates-diagnosis'),
]
for (case, proto, cr, verdict, skipped) in diagnoses:
    c.execute("INSERT INTO diagnoses (case_id, protocol, created, verdict, skipped)"
              " VALUES (?, ?, ?, ?, ?)", (case, proto, cr, verdict, skipped))
c.commit()
PY
# Degraded mail the worker has not replayed: SpoolDirectory defaults to
# "spool" beside the database; names start with the MTA's receive time.
mkdir -p "$tmp/spool"
printf 'x' >"$tmp/spool/$(printf '%010d' $((now - 3600))).q1.1.1.msg"
printf 'x' >"$tmp/spool/$(printf '%010d' $((now - 8 * 86400))).q2.1.2.msg"
printf 'x' >"$tmp/spool/.tmp.$(printf '%010d' $((now - 60))).q3.1.3"
printf 'x' >"$tmp/spool/notes.txt"

# ---- stats --json, all time ----
run stats --json
expect_rc 0 "stats --json"
is "$(json_eval 'j["since"], j["now"]')" "(None, '2026-11-30T10:00:00+02:00')" "since null (all time), now from HELPGATE_NOW"
is "$(json_eval 'j["messages"]["total"], j["messages"]["by_urgency"]')" \
    "(8, {'P1': 3, 'P2': 3, 'P3': 0, 'P4': 2})" "client messages by urgency (staff and helpgate's own not counted)"
is "$(json_eval 'sorted(j["messages"]["by_category"].items())')" \
    "[('feature-request', 1), ('incoming-mail', 1), ('login', 1), ('other', 1), ('outage', 1), ('outgoing-mail', 3)]" \
    "client messages by category"
is "$(json_eval 'list(j["messages"]["by_category"])[0]')" "outgoing-mail" "categories: the largest first"
is "$(json_eval 'j["degraded"]["total"], j["degraded"]["spooled"]')" "(2, 2)" "degraded: the .msg files waiting in the spool"
is "$(json_eval 'j["acks"]["sent"], j["acks"]["waiting"], j["acks"]["failed"], j["acks"]["skipped"]')" \
    "(2, 1, 1, 5)" "acknowledgements sent, waiting, failed and skipped"
is "$(json_eval 'sorted(j["acks"]["skipped_by_reason"].items())')" \
    "[('auto:autoreply', 1), ('follow-up', 1), ('no-reply-sender', 1), ('predates-worker', 1), ('rate-limit-hour', 1)]" \
    "acknowledgements skipped by reason"
is "$(json_eval '[(k, v["first_response_met"], v["first_response_missed"], v["first_response_met_pct"]) for k, v in j["sla"].items()]')" \
    "[('all', 3, 2, 60), ('P1', 2, 1, 66), ('P2', 1, 1, 50), ('P3', 0, 0, None), ('P4', 0, 0, None)]" \
    "first response met % per urgency (open within the deadline: undecided)"
is "$(json_eval '[(k, v["resolution_met"], v["resolution_missed"], v["resolution_met_pct"]) for k, v in j["sla"].items()]')" \
    "[('all', 2, 1, 66), ('P1', 2, 1, 66), ('P2', 0, 0, None), ('P3', 0, 0, None), ('P4', 0, 0, None)]" \
    "resolution met % per urgency (a paused clock is undecided)"
is "$(json_eval 'j["diagnoses"]["total"], j["diagnoses"]["by_verdict"], j["diagnoses"]["skipped"], sorted(j["diagnoses"]["skipped_by_reason"].items())')" \
    "(3, {'auth_failed': 2, 'ok': 1}, 2, [('no-settings', 1), ('predates-diagnosis', 1)])" \
    "diagnoses by verdict, and the skipped ones by reason"
is "$(json_eval 'j["outbox"]')" "{'queued': 2, 'deferred': 2, 'failed': 2, 'oldest_age_s': 86400}" \
    "outbox backlog: queued (incl. sending), deferred (retrying), failed, oldest waiting age"

# report counts SLA the same way (ctl_sla_outcome).
stats_p1=$(json_eval 'j["sla"]["P1"]["first_response_met_pct"], j["sla"]["P1"]["resolution_met_pct"]')
run report --json
is "$(json_eval '[(g["first_response_met_pct"], g["resolution_met_pct"]) for g in j if g["urgency"] == 1][0]')" \
    "$stats_p1" "report agrees with stats on P1"

# ---- --since ----
for since in 7d 168h 1w 2026-11-23T10:00:00+02:00 2026-11-23T10:00; do
	run stats --json --since "$since"
	got=$(json_eval 'j["since"], j["messages"]["total"], j["messages"]["by_urgency"]["P1"], j["messages"]["by_category"]["outgoing-mail"], j["acks"]["sent"], j["acks"]["skipped"], j["sla"]["P1"]["first_response_met_pct"], j["diagnoses"]["by_verdict"], j["diagnoses"]["skipped"], j["outbox"]["failed"], j["outbox"]["queued"], j["degraded"]["total"]')
	is "$got" "('2026-11-23T10:00:00+02:00', 6, 2, 2, 1, 4, 50, {'auth_failed': 2}, 1, 1, 2, 1)" \
	    "--since $since counts only what came after (the backlog stays now's)"
done
run stats --json --since 2026-11-23
is "$(json_eval 'j["since"], j["messages"]["total"]')" "('2026-11-23T00:00:00+02:00', 6)" "--since a date is its midnight in Timezone"
run stats --json --since 30m
is "$(json_eval 'j["messages"]["total"], j["acks"]["skipped"], j["outbox"]["oldest_age_s"]')" "(0, 0, 86400)" "--since 30m: nothing new, the backlog unchanged"
for bad in 7x -1d yesterday 2026-13-01 99999999w; do
	run stats --since "$bad"
	expect_rc 2 "--since $bad is a usage error"
done
run stats --json --verbose
expect_rc 2 "an unknown option is a usage error"

# ---- the text table ----
run stats --since 7d
expect_rc 0 "stats (text)"
line_is '^helpgate stats since 2026-11-23T10:00:00\+02:00 \(now 2026-11-30T10:00:00\+02:00\)$' "the heading names the period"
line_is '^messages tagged +6$' "text: messages tagged"
line_is '^  P1 +2$' "text: P1 messages"
line_is '^  outgoing-mail +2$' "text: a category"
line_is '^degraded +1  \(waiting in the spool\)$' "text: degraded"
line_is '^acks sent +1$' "text: acks sent"
line_is '^acks skipped +4$' "text: acks skipped"
line_is '^  rate-limit-hour +1$' "text: a skip reason"
line_is '^  P1 +50% \(1/2\) +50% \(1/2\)$' "text: SLA met for P1, first response and resolution"
line_is '^  P3 +- +-$' "text: no decided case shows -"
line_is '^  auth_failed +2$' "text: a verdict"
line_is '^outbox deferred +2$' "text: outbox deferred"
line_is '^outbox oldest waiting +1d00h$' "text: the oldest waiting row's age"
# aligned: every count ends in the same column
cols=$(printf '%s\n' "$out" | grep -E '^ *[A-Za-z][A-Za-z0-9_:. -]* +[0-9]+$' | awk '{ print length($0) }' | sort -u | tr '\n' ' ')
is "$cols" "33 " "text: the counts are right-aligned in one column"

# ---- sla --watch ----
start=$(date +%s%N)
run sla --watch --count 2 --interval 1
end=$(date +%s%N)
expect_rc 0 "sla --watch --count 2 exits 0"
is "$(printf '%s\n' "$out" | grep -c '^helpgate sla ')" 2 "two frames, each with a header line"
is "$(printf '%s\n' "$out" | grep -c $'^\f$')" 1 "frames are separated by a form feed line when not on a terminal"
line_is '^helpgate sla  2026-11-30T10:00:00\+02:00  breached 2  due within 1 h 1  open 4  \(every 1 s\)$' \
    "the header line: time, breached, due within the hour, open"
is "$(printf '%s\n' "$out" | grep -c '^HG-')" 8 "each frame lists the 4 open cases"
ms=$(((end - start) / 1000000))
if [ "$ms" -ge 900 ] && [ "$ms" -lt 5000 ]; then ok "one interval between the frames (${ms} ms)"; else not_ok "one interval between the frames" "${ms} ms"; fi
if printf '%s' "$out" | grep -q $'\033'; then not_ok "no escape sequences when not on a terminal" "$out"; else ok "no escape sequences when not on a terminal"; fi

run sla --watch --limit 1 --count 1
is "$(printf '%s\n' "$out" | grep -c '^HG-')" 1 "--limit bounds the rows, not the counts"
line_is 'breached 2  due within 1 h 1  open 4' "the counts cover every open case"
run sla --watch --json
expect_rc 2 "--watch with --json is a usage error"
run sla --interval 2
expect_rc 2 "--interval without --watch is a usage error"
run sla --watch --interval 0
expect_rc 2 "--interval 0 is a usage error"
run sla --watch --count x
expect_rc 2 "--count x is a usage error"

# stops promptly on SIGTERM and SIGINT, mid-wait, exit 0
for sig in TERM INT; do
	"$ctl" -c "$tmp/helpgate.conf" sla --watch --interval 60 >"$tmp/watch.out" 2>&1 &
	watch_pid=$!
	for ((i = 0; i < 50; i++)); do
		grep -q '^helpgate sla ' "$tmp/watch.out" 2>/dev/null && break
		sleep 0.1
	done
	start=$(date +%s%N)
	kill -"$sig" "$watch_pid"
	wait "$watch_pid"
	rc=$?
	end=$(date +%s%N)
	watch_pid=
	ms=$(((end - start) / 1000000))
	if [ "$rc" -eq 0 ] && [ "$ms" -lt 2000 ]; then
		ok "SIG$sig ends sla --watch at once, exit 0 (${ms} ms)"
	else
		not_ok "SIG$sig ends sla --watch at once, exit 0" "exit $rc after ${ms} ms; $(cat "$tmp/watch.out")"
	fi
done

# on a terminal: the screen is cleared for each frame, the cursor hidden and given back
if command -v script >/dev/null 2>&1; then
	script -qec "'$ctl' -c '$tmp/helpgate.conf' sla --watch --count 2 --interval 1" /dev/null \
	    >"$tmp/tty.out" 2>&1 </dev/null
	rc=$?
	tty_out=$(cat -v "$tmp/tty.out")
	is "$rc" 0 "on a terminal: exit 0"
	is "$(grep -o '\^\[\[H\^\[\[2J' <<<"$tty_out" | wc -l)" 2 "on a terminal: each frame clears the screen"
	if [[ "$tty_out" == *'^[[?25l'* && "$tty_out" == *'^[[?25h'* ]]; then
		ok "on a terminal: the cursor is hidden and given back"
	else
		not_ok "on a terminal: the cursor is hidden and given back" "$tty_out"
	fi
else
	ok "# skip: no script(1) for the terminal checks"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
