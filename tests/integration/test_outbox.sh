#!/usr/bin/env bash
# test_outbox.sh BINDIR - the outbox when the relay misbehaves: a relay that
# is down defers the acknowledgement with backoff and delivers it once the
# relay is back (time moved on with HELPGATE_NOW); a relay that refuses for
# good records the failure where staff see it.  Nothing is lost, nothing is
# sent twice.
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
ms_free_port relay_port || exit 1
conf="$MS_T/helpgate.conf"
cat >"$conf" <<CONF
Socket unix:$MS_T/hg.sock
$MS_DATABASE_CONF
DiagnoseResolver 127.0.0.1:9
SupportAddress support@example.com
Syslog no
KeywordsDir $repo/conf/keywords
TemplatesDir $repo/conf/templates
PollInterval 100ms
Relay smtp://127.0.0.1:$relay_port
CONF
MS_MILTER_SOCKET="unix:$MS_T/hg.sock"
ms_start_milter "$bindir/helpgate-milter" -f -c "$conf" -p "$MS_MILTER_SOCKET" || exit 1
ms_start_postfix "$MS_MILTER_SOCKET" || exit 1
ctl() { "$bindir/helpgatectl" -c "$conf" "$@"; }
outbox_field() {	# outbox_field RECIPIENT FIELD
	ctl outbox --json | python3 -c '
import json, sys
for o in json.load(sys.stdin):
    if o["recipient"] == sys.argv[1]: print(o[sys.argv[2]]); break' "$1" "$2"
}
now_file="$MS_T/now"
now=$(date +%s)
echo "@$now" >"$now_file"
HELPGATE_NOW="$now_file" ms_spawn worker_pid "$bindir/helpgate-worker" -f -c "$conf"
wait_log() {	# wait_log REGEX TIMEOUT
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		grep -Eq "$1" "$MS_T/helpgate-worker.log" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
start_relay() {	# start_relay [smtp-sink options]: a second sink on relay_port
	mkdir -p "$MS_T/relay"
	chown postfix: "$MS_T/relay"
	smtp-sink -u postfix -h relay.test -d "$MS_T/relay/%Y%m%d%H%M%S." "$@" \
		"127.0.0.1:$relay_port" 64 >>"$MS_T/relay.log" 2>&1 </dev/null &
	relay_pid=$!
	MS_PIDS+=("$relay_pid")
	sleep 0.5
}

# ---- 1. the relay is down: deferred, retried after the backoff, delivered
ms_send --from ann@client.test --h-From "Ann <ann@client.test>" --h-Subject "Cannot log in" \
    --body "I cannot log in to webmail since this morning." >/dev/null
wait_log "deferred \(attempt 1" 20 && t_ok "relay down: acknowledgement deferred" || t_fail "deferred"
t_is "$(outbox_field ann@client.test state)" pending "outbox: pending"
t_is "$(outbox_field ann@client.test attempts)" 1 "outbox: one attempt"
t_like "$(outbox_field ann@client.test last_error)" "[Cc]onnect" "outbox: the relay's failure recorded"
start_relay
sleep 1
t_is "$(outbox_field ann@client.test attempts)" 1 "no retry before the backoff is over"
echo "@$((now + 20))" >"$now_file"
wait_log "ack sent to <ann@client.test> \(attempt 2\)" 20 && t_ok "retried after the backoff and sent" ||
	t_fail "retried after the backoff"
t_is "$(outbox_field ann@client.test state)" sent "outbox: sent"
t_is "$(find "$MS_T/relay" -type f | wc -l)" 1 "exactly one copy reached the relay"
t_like "$(cat "$MS_T"/relay/* 2>/dev/null | grep -m1 '^X-Helpgate-Case:')" "HG-1" "it is the case's acknowledgement"

# ---- 2. the relay refuses the recipient for good (5xx): failed, shown
kill "$relay_pid"; wait "$relay_pid" 2>/dev/null
start_relay -f rcpt
ms_send --from bob@client.test --h-From "Bob <bob@client.test>" --h-Subject "Question" \
    --body "How do I add an alias?" >/dev/null
wait_log "refused by the relay" 20 && t_ok "permanent refusal logged" || t_fail "permanent refusal logged"
t_is "$(outbox_field bob@client.test state)" failed "outbox: failed"
t_like "$(outbox_field bob@client.test last_error)" "5[0-9][0-9]" "outbox: the relay's 5xx kept"
case2=$(ctl cases --json | python3 -c 'import json,sys; print([c["id"] for c in json.load(sys.stdin) if c["client"] == "bob@client.test"][0])')
t_like "$(ctl case show "$case2")" "failed .*bob@client.test" "case show tells staff the acknowledgement failed"
echo "@$((now + 3600))" >"$now_file"
sleep 1
t_is "$(outbox_field bob@client.test attempts)" 1 "a permanent failure is not retried"
# ---- 3. one worker per SQLite store: a second one refuses to start (on
# PostgreSQL any number share the work: test_multihost.sh)
if [ "${HG_TEST_BACKEND:-sqlite}" = sqlite ]; then
	out=$(timeout 10 "$bindir/helpgate-worker" -f -c "$conf" 2>&1)
	rc=$?
	t_is "$rc" 1 "a second worker on the same store exits 1"
	t_like "$out" "another helpgate-worker already works on" "and says why"
fi
t_done
