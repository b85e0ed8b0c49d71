#!/usr/bin/env bash
# test_worker_resilience.sh BINDIR - helpgate-worker rides out trouble:
#  1. the relay is down for an hour (time moved on with HELPGATE_NOW, not
#     waited for): the acknowledgement is retried on the backoff schedule
#     15 s, 30 s, ... capped at 5 minutes, stays pending (nothing lost), and
#     goes out exactly once when the relay is back, with one log line per
#     attempt naming case, recipient, outbox id and result;
#  2. the database is locked for ~10 s (as by a long helpgatectl command)
#     while a case arrives (the milter spools it) and while the worker has a
#     recorded case to decide: the worker logs it, keeps running, and both
#     acknowledgements go out after the release, once each.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/../lib/mailstack.sh"

bindir=${1:-bin}
for p in helpgate-milter helpgate-worker; do
	[ -x "$bindir/$p" ] || { echo "no $bindir/$p"; echo "0 passed, 1 failed"; exit 1; }
done
ms_init || exit 1
ms_start_sink || exit 1
ms_free_port relay_port || exit 1
db="$MS_T/hg.db"
conf="$MS_T/helpgate.conf"
cat >"$conf" <<CONF
Socket unix:$MS_T/hg.sock
Database $db
DiagnoseResolver 127.0.0.1:9
SupportAddress support@example.com
Timezone UTC
Syslog no
KeywordsDir $repo/conf/keywords
TemplatesDir $repo/conf/templates
PollInterval 100ms
Relay smtp://127.0.0.1:$relay_port
CONF
MS_MILTER_SOCKET="unix:$MS_T/hg.sock"
ms_start_milter "$bindir/helpgate-milter" -f -c "$conf" || exit 1
ms_start_postfix "$MS_MILTER_SOCKET" || exit 1

now_file="$MS_T/now"
t0=$(date +%s)
echo "@$t0" >"$now_file"
HELPGATE_NOW="$now_file" ms_spawn worker_pid "$bindir/helpgate-worker" -f -c "$conf"
wlog="$MS_T/helpgate-worker.log"

sq() { python3 - "$db" "$@" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=20)
for row in c.execute(sys.argv[2], sys.argv[3:]):
    print("|".join(str(v) for v in row))
PY
}
ob() {	# ob RECIPIENT FIELDS: the recipient's acknowledgement row
	sq "SELECT $2 FROM outbox WHERE kind = 'ack' AND recipient = ?" "$1"
}
wait_for() { ms_wait_for "$@"; }
attempts_are() { [ "$(ob "$1" attempts 2>/dev/null)" = "$2" ]; }
relay_files() { find "$MS_T/relay" -type f 2>/dev/null | wc -l; }
relay_has() { grep -l "^To: .*$1" "$MS_T"/relay/* 2>/dev/null | wc -l; }
start_relay() {
	mkdir -p "$MS_T/relay"
	chown postfix: "$MS_T/relay"
	smtp-sink -u postfix -h relay.test -d "$MS_T/relay/%Y%m%d%H%M%S." \
		"127.0.0.1:$relay_port" 64 >>"$MS_T/relay.log" 2>&1 </dev/null &
	relay_pid=$!
	MS_PIDS+=("$relay_pid")
	wait_for 10 eval '(exec 3<>"/dev/tcp/127.0.0.1/$relay_port") 2>/dev/null'
}

# ---- 1. the relay is down for an hour
ms_send --from ann@client.test --h-From "Ann <ann@client.test>" --h-Subject "Cannot log in" \
    --body "I cannot log in to webmail since this morning." >/dev/null
wait_for 20 attempts_are ann@client.test 1 && t_ok "relay down: first attempt made" ||
	t_fail "relay down: first attempt made" "$(tail -n 5 "$wlog")"
id=$(ob ann@client.test id)
last=$t0
clock=$t0
gaps=()
n=1
ok_schedule=1
while [ $((clock - t0)) -lt 3600 ]; do
	next=$(ob ann@client.test next_attempt)
	gaps+=($((next - last)))
	# expected: 15 s doubling, at most 300 s
	want=15
	for ((i = 1; i < n && want < 300; i++)); do want=$((want * 2)); done
	[ "$want" -gt 300 ] && want=300
	[ "$((next - last))" = "$want" ] || ok_schedule=0
	# the worker must not try before it is due
	if [ "$n" = 3 ]; then
		echo "@$((next - 1))" >"$now_file"
		sleep 0.5
		attempts_are ann@client.test "$n" && t_ok "no attempt before next_attempt" ||
			t_fail "no attempt before next_attempt" "attempts: $(ob ann@client.test attempts)"
	fi
	clock=$next
	echo "@$clock" >"$now_file"
	n=$((n + 1))
	if ! wait_for 10 attempts_are ann@client.test "$n"; then
		t_fail "attempt $n made once due" "attempts: $(ob ann@client.test attempts)"
		break
	fi
	last=$clock
done
echo "# gaps between attempts over one simulated hour (s): ${gaps[*]}"
t_is "$ok_schedule" 1 "backoff: 15 s doubling, capped at 300 s (${#gaps[@]} gaps)"
max=0
for g in "${gaps[@]}"; do [ "$g" -gt "$max" ] && max=$g; done
t_is "$max" 300 "the longest wait is 5 minutes"
t_like "$((clock - t0))" '^(3[6-9][0-9]{2})$' "an hour of relay outage simulated"
t_is "$(ob ann@client.test state)" pending "after an hour: still pending, nothing lost"
t_is "$(grep -c "HG-[0-9]*: ack to <ann@client.test> deferred .* outbox=$id result=deferred" "$wlog")" \
	"$(ob ann@client.test attempts)" "one log line per failed attempt, with outbox id and result"
t_is "$(kill -0 "$worker_pid" 2>/dev/null && echo alive)" alive "the worker kept running"

start_relay
tries=$(ob ann@client.test attempts)
echo "@$(ob ann@client.test next_attempt)" >"$now_file"
wait_for 15 eval '[ "$(ob ann@client.test state)" = sent ]' && t_ok "relay back: sent at the next attempt" ||
	t_fail "relay back: sent" "$(ob ann@client.test 'state, attempts, last_error')"
t_is "$(ob ann@client.test attempts)" "$((tries + 1))" "one attempt after the relay came back"
sleep 1
t_is "$(relay_has ann@client.test)" 1 "exactly one copy reached the relay"
t_like "$(grep "ack sent to <ann@client.test>" "$wlog")" "^.*HG-1: ack sent to <ann@client.test> \(attempt $((tries + 1))\) outbox=$id result=sent$" \
	"the sent line names case, recipient, attempt, outbox id and result"

# ---- 2. the database locked for ~10 s
hold_lock() { ms_hold_sqlite_lock "$db"; }
release_lock() { ms_release_sqlite_lock; }
wlog0=$(wc -l <"$wlog")
# carol's case is recorded while the worker is stopped; it decides under the lock
kill -STOP "$worker_pid"
ms_send --from carol@client.test --h-From "Carol <carol@client.test>" --h-Subject "Password reset" \
    --body "The password reset link does not work." >/dev/null
wait_for 10 eval '[ "$(sq "SELECT count(*) FROM cases WHERE client = '"'carol@client.test'"'")" = 1 ]' &&
	t_ok "carol's case recorded before the lock" || t_fail "carol's case recorded"
hold_lock || t_fail "lock taken"
lock_start=$SECONDS
kill -CONT "$worker_pid"
# dave writes while the database is locked: the milter spools his mail
ms_send --from dave@client.test --h-From "Dave <dave@client.test>" --h-Subject "Webmail down" \
    --body "Webmail shows an error page since an hour." >/dev/null
ms_wait_delivered 2 30 >/dev/null 2>&1	# (Postfix has delivered dave's copy to the sink)
sleep $((10 - (SECONDS - lock_start)))
t_is "$(relay_has carol@client.test)$(relay_has dave@client.test)" 00 "nothing sent while the database is locked"
t_is "$(kill -0 "$worker_pid" 2>/dev/null && echo alive)" alive "the worker survived ~10 s of lock"
release_lock
echo "# lock held for $((SECONDS - lock_start)) s"
released=$SECONDS
wait_for 30 eval '[ "$(relay_has carol@client.test)" -ge 1 ] && [ "$(relay_has dave@client.test)" -ge 1 ]' &&
	t_ok "after the release both acknowledgements went out ($((SECONDS - released)) s)" ||
	t_fail "acknowledgements after the release" "carol $(relay_has carol@client.test), dave $(relay_has dave@client.test)" "$(tail -n 8 "$wlog")"
sleep 1
t_is "$(relay_has carol@client.test) $(relay_has dave@client.test)" "1 1" "each exactly once"
t_is "$(find "$MS_T" -path "*spool*" -name '*.msg' | wc -l)" 0 "dave's spooled message was taken from the spool"
n=$(tail -n +"$((wlog0 + 1))" "$wlog" | grep -Ec 'warning: case store .*(locked|busy)')
t_is "$n" 1 "the worker logged the locked store once"
t_is "$(kill -0 "$worker_pid" 2>/dev/null && echo alive)" alive "the worker is still running"
t_done
