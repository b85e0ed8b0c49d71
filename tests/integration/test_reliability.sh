#!/usr/bin/env bash
# test_reliability.sh BINDIR - helpgate-milter keeps mail flowing when its
# case store breaks, through a real private Postfix, with helpgate-worker
# running beside it.  Four ways to break the store, one after the other on
# the same milter and worker:
#   locked   another process holds the write lock (BEGIN EXCLUSIVE)
#   deleted  the database file is removed under the open handles
#   full     the file system of the database is full (a 4 MB tmpfs)
#   corrupt  the file's header is overwritten
# For each: every message is delivered at once tagged X-Helpgate-Status:
# degraded (within a bounded wait), the trouble is logged once (not per
# message), the message is spooled; after the repair the next message is
# tagged normally with a case, and the worker opens the cases of the spooled
# messages.  Then: SocketMode/SocketGroup on the unix socket, and LogFacility
# as it reaches syslog (a private /dev/log in a mount namespace).
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/../lib/mailstack.sh"

bindir=${1:-bin}
for p in helpgate-milter helpgate-worker; do
	[ -x "$bindir/$p" ] || { echo "no $bindir/$p"; echo "0 passed, 1 failed"; exit 1; }
done
ms_init || exit 1

dbdir="$MS_T/db"
mkdir -p "$dbdir"
have_tmpfs=0
if mount -t tmpfs -o size=4m,mode=755 helpgate-test "$dbdir" 2>/dev/null; then
	have_tmpfs=1
	# the daemons go first: a worker left running would recreate the
	# database in the directory under the mount
	ms_on_exit 'stop_daemons; umount -l "$dbdir" 2>/dev/null'

else
	ms_log "mount -t tmpfs does not work here: the full-disk case is skipped"
fi
stop_daemons() {
	[ -n "${worker_pid:-}" ] && ms_stop_pid "$worker_pid"
	[ -n "${MS_MILTER_PID:-}" ] && MS_MILTER_SOCKET="unix:$MS_T/hg.sock" ms_stop_milter "$MS_MILTER_PID"
	return 0
}
db="$dbdir/hg.db"
spool="$MS_T/spool"	# not on the small tmpfs: spooling must work while it is full
conf="$MS_T/helpgate.conf"
cat >"$conf" <<CONF
Socket unix:$MS_T/hg.sock
Database $db
DiagnoseResolver 127.0.0.1:9
SpoolDirectory $spool
SupportAddress support@example.com
Timezone UTC
Syslog no
KeywordsDir $repo/conf/keywords
TemplatesDir $repo/conf/templates
StoreTimeout 1s
PollInterval 100ms
CONF

ms_start_sink || exit 1
MS_MILTER_SOCKET="unix:$MS_T/hg.sock"
ms_start_milter "$bindir/helpgate-milter" -f -c "$conf" || exit 1
milter_log="$MS_T/milter-$MS_MILTER_N.log"
ms_start_postfix "$MS_MILTER_SOCKET" || exit 1
ms_spawn worker_pid "$bindir/helpgate-worker" -f -c "$conf"
worker_log="$MS_T/helpgate-worker.log"

sq() { python3 - "$db" "$@" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=10)
for row in c.execute(sys.argv[2], sys.argv[3:]):
    print("|".join(str(v) for v in row))
PY
}
sent=0
send() {	# send ID SUBJECT: one support message with Message-ID <ID@client.test>
	local t0 t1
	t0=$(date +%s%N)
	if ms_send --from "c-$1@client.test" --h-Subject "$2" --h-Message-Id "<$1@client.test>" \
	    --body "Hello, I cannot log in to webmail since this morning ($1)."; then
		sent=$((sent + 1))
	else
		t_fail "swaks: $1 accepted"
	fi
	t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000000)) >"$MS_T/last-ms"
}
by_id() { ms_find_by_header Message-ID "<$1@client.test>"; }
case_of() {	# the case a message ID was recorded on, "" if none
	sq "SELECT case_id FROM messages WHERE message_id = ?" "$1@client.test"
}
lines_since() {	# lines_since FILE OFFSET REGEX: count of matching lines after line OFFSET
	tail -n +"$(($2 + 1))" "$1" | grep -Ec "$3"
}
spooled() { find "$spool" -name '*.msg' 2>/dev/null | wc -l; }
wait_for() { ms_wait_for "$@"; }
quiet_checkpoint() {	# empty the WAL into the database file, for sure: a WAL
	# still holding page 1 would let SQLite's checkpoint at close write a
	# good header back over a corrupted one
	local i r
	for ((i = 0; i < 50; i++)); do
		r=$(sq "PRAGMA wal_checkpoint(TRUNCATE)")
		[ "$r" = "0|0|0" ] && return 0
		sleep 0.2
	done
	ms_log "wal_checkpoint(TRUNCATE) kept answering $r"
	return 1
}

# a baseline: the store works
send base-1 "Cannot log in"
ms_wait_delivered "$sent" 30 || t_fail "baseline delivered"
f=$(by_id base-1)
t_like "$(ms_header "$f" X-Helpgate-Case)" '^HG-[0-9]+$' "baseline: tagged with a case"

# scenario NAME: breaks with break_NAME, repairs with repair_NAME
scenario() {
	local name=$1 mlog0 wlog0 f i ms max_ms=0 c missing=0 back
	mlog0=$(wc -l <"$milter_log")
	wlog0=$(wc -l <"$worker_log")
	"break_$name" || { t_fail "$name: could not break the store"; return; }
	for i in 1 2 3; do
		send "$name-$i" "Cannot log in ($name $i)"
		ms=$(cat "$MS_T/last-ms")
		[ "$ms" -gt "$max_ms" ] && max_ms=$ms
	done
	echo "# $name: slowest of 3 degraded messages took ${max_ms} ms (SMTP, end to end)"
	ms_wait_delivered "$sent" 30 || t_fail "$name: delivered"
	for i in 1 2 3; do
		f=$(by_id "$name-$i")
		[ -n "$f" ] || { t_fail "$name-$i delivered"; continue; }
		t_is "$(ms_header "$f" X-Helpgate-Status)" degraded "$name-$i: X-Helpgate-Status: degraded"
		t_is "$(ms_header "$f" X-Helpgate-Case)" "" "$name-$i: no case header"
	done
	t_is "$([ "$max_ms" -lt 6000 ] && echo fast || echo "slow: ${max_ms} ms")" fast \
		"$name: each message went through SMTP in under 6 s"
	t_is "$(lines_since "$milter_log" "$mlog0" 'warning: case store .* unusable')" 1 \
		"$name: the trouble logged once for 3 messages"
	t_is "$(lines_since "$milter_log" "$mlog0" ': case=- .* degraded: .*spool=[0-9]')" 3 \
		"$name: each message's log line says degraded and where it was spooled"
	max_us=$(tail -n +"$((mlog0 + 1))" "$milter_log" | sed -n 's/.*degraded.*elapsed_us=\([0-9]*\).*/\1/p' | sort -n | tail -n 1)
	echo "# $name: milter elapsed_us of the slowest degraded message: ${max_us:-?}"
	# the bound: about StoreTimeout (1 s), never twice it
	t_is "$([ -n "$max_us" ] && [ "$max_us" -lt 2000000 ] && echo bounded || echo "${max_us:-no log line}")" \
		bounded "$name: the milter spent under 2 s on each degraded message"

	"repair_$name" || { t_fail "$name: could not repair the store"; return; }
	# the milter retries the store every 5 s
	sleep 5.5
	send "$name-after" "Cannot log in ($name after)"
	ms_wait_delivered "$sent" 30 || t_fail "$name: delivered after the repair"
	f=$(by_id "$name-after")
	t_like "$(ms_header "$f" X-Helpgate-Case 2>/dev/null)" '^HG-[0-9]+$' "$name: recovered, the next message has a case"
	t_is "$(ms_header "$f" X-Helpgate-Status 2>/dev/null)" "" "$name: recovered, not degraded"
	back=$(lines_since "$milter_log" "$mlog0" 'case store .* is back after')
	t_is "$back" 1 "$name: the recovery logged once"
	# the worker opens the spooled messages' cases
	check_spooled() {
		[ "$(spooled)" = 0 ] || return 1
		for i in 1 2 3; do [ -n "$(case_of "$name-$i")" ] || return 1; done
	}
	if wait_for 20 check_spooled; then
		t_ok "$name: the worker opened the cases of the 3 spooled messages and emptied the spool"
	else
		for i in 1 2 3; do [ -n "$(case_of "$name-$i")" ] || missing=$((missing + 1)); done
		t_fail "$name: spooled messages became cases" "$missing of 3 have no case; $(spooled) files in the spool" \
			"$(tail -n 5 "$worker_log")"
	fi
	c=$(sq "SELECT count(DISTINCT case_id) FROM messages WHERE message_id LIKE ?" "$name-%")
	t_is "$c" 4 "$name: 4 messages, 4 cases (none recorded twice)"
	t_is "$(sq 'PRAGMA integrity_check')" ok "$name: the database is sound"
	t_is "$(kill -0 "$worker_pid" 2>/dev/null && echo alive)" alive "$name: the worker kept running"
	echo "# $name: worker log lines about the store: $(lines_since "$worker_log" "$wlog0" 'case store')"
}

# ---- locked: a writer holds the lock for as long as the test wants
break_locked() { ms_hold_sqlite_lock "$db"; }
repair_locked() { ms_release_sqlite_lock; }
scenario locked

# ---- deleted: rm hg.db (its -wal and -shm stay, as after a careless rm)
break_deleted() { rm -f "$db"; }
repair_deleted() { return 0; }	# nothing: the store recreates the file
scenario deleted
t_is "$(sq "SELECT count(*) FROM messages WHERE message_id LIKE 'base-%'")" 0 \
	"deleted: the recreated database did not inherit the old one's -wal"

# ---- full: the tmpfs that holds the database fills up
if [ "$have_tmpfs" = 1 ]; then
	break_full() {
		quiet_checkpoint || return 1
		dd if=/dev/zero of="$dbdir/filler" bs=64k 2>/dev/null
		[ "$(df --output=avail "$dbdir" | tail -n 1 | tr -d ' ')" -lt 64 ]
	}
	repair_full() { rm -f "$dbdir/filler"; }
	scenario full
else
	echo "# full: skipped (mount -t tmpfs refused)"
fi

# ---- corrupt: the first 16 bytes (the SQLite magic) overwritten
break_corrupt() {
	quiet_checkpoint || return 1
	dd if="$db" of="$MS_T/header.saved" bs=100 count=1 2>/dev/null
	printf 'this is garbage!' | dd of="$db" bs=16 count=1 conv=notrunc 2>/dev/null
}
repair_corrupt() { dd if="$MS_T/header.saved" of="$db" bs=100 count=1 conv=notrunc 2>/dev/null; }
scenario corrupt

# ---- SocketMode / SocketGroup: exactly the configured mode, never 0666
sock_milter() {	# sock_milter NAME [CONFIG LINES...]: start a milter on $MS_T/NAME.sock
	local n=$1 c="$MS_T/$1.conf"
	shift
	{
		grep -v '^Socket ' "$conf"
		echo "Socket unix:$MS_T/$n.sock"
		printf '%s\n' "$@"
	} >"$c"
	ms_spawn sock_pid "$bindir/helpgate-milter" -f -c "$c"
	wait_for 10 test -S "$MS_T/$n.sock"
}
sock_milter default-mode
t_is "$(stat -c %a "$MS_T/default-mode.sock" 2>/dev/null)" 660 "SocketMode default: 0660"
ms_stop_pid "$sock_pid"
sock_milter mode0640 "SocketMode 0640" "SocketGroup daemon"
t_is "$(stat -c '%a %G' "$MS_T/mode0640.sock" 2>/dev/null)" "640 daemon" "SocketMode 0640, SocketGroup daemon"
ms_stop_pid "$sock_pid"
sock_milter mode0666 "SocketMode 666"
t_is "$(stat -c %a "$MS_T/mode0666.sock" 2>/dev/null)" 666 "SocketMode 666 (no leading 0) is octal too"
ms_stop_pid "$sock_pid"
{ grep -v '^Socket ' "$conf"; echo "SocketMode 0968"; } >"$MS_T/badmode.conf"
out=$("$bindir/helpgate-milter" -n -c "$MS_T/badmode.conf" 2>&1)
t_is "$?" 1 "SocketMode 0968: the config is refused"
t_like "$out" "badmode.conf:[0-9]+: SocketMode" "and the error names file, line and key"
{ grep -v '^Socket ' "$conf"; echo "SocketGroup no-such-group-here"; echo "Socket unix:$MS_T/nogroup.sock"; } >"$MS_T/nogroup.conf"
out=$(timeout 10 "$bindir/helpgate-milter" -f -c "$MS_T/nogroup.conf" 2>&1)
t_is "$?" 1 "SocketGroup naming no group: the milter does not start"
t_like "$out" "SocketGroup no-such-group-here: no such group" "and says why"

# ---- LogFacility: what reaches /dev/log carries the facility (local3 = 19)
for prog in helpgate-milter helpgate-worker; do
	c="$MS_T/fac-$prog.conf"
	{
		grep -v '^Syslog \|^Socket \|^Database ' "$conf"
		echo "Socket unix:$MS_T/fac.sock"
		echo "Database $MS_T/fac-$prog.db"
		echo "Syslog yes"
		echo "LogFacility local3"
		echo "PidFile $MS_T/fac-$prog.pid"
	} >"$c"
	out=$("$bindir/$prog" -n -c "$c" 2>&1)
	t_like "$out" "config OK" "$prog -n accepts LogFacility local3"
	cat >"$MS_T/fac-run.sh" <<EOF
set -u
mkdir -p "$MS_T/realdev"
mount --bind /dev "$MS_T/realdev"
mount -t tmpfs -o size=1m,mode=755 none /dev
for n in null zero urandom random; do touch /dev/\$n; mount --bind "$MS_T/realdev/\$n" /dev/\$n; done
python3 - <<'PY' &
import socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
open("$MS_T/fac-ready", "w").close()
s.settimeout(8)
with open("$MS_T/fac-$prog.syslog", "w") as out:
    try:
        while True:
            d = s.recv(8192).decode("utf-8", "replace")
            out.write(d + "\n"); out.flush()
            if "listening on" in d or "started;" in d:
                break
    except socket.timeout:
        pass
PY
py=\$!
for i in \$(seq 100); do [ -e "$MS_T/fac-ready" ] && break; sleep 0.05; done
"$bindir/$prog" -c "$c"
wait \$py
pid=\$(cat "$MS_T/fac-$prog.pid" 2>/dev/null)
[ -n "\$pid" ] && kill -TERM "\$pid"
for i in \$(seq 200); do [ -n "\$pid" ] && kill -0 "\$pid" 2>/dev/null || break; sleep 0.05; done
[ -n "\$pid" ] && kill -KILL "\$pid" 2>/dev/null
rm -f "$MS_T/fac-ready"
exit 0
EOF
	if unshare -m bash "$MS_T/fac-run.sh" >>"$MS_T/fac-run.log" 2>&1; then
		first=$(grep -m1 -E 'listening on|started;' "$MS_T/fac-$prog.syslog" 2>/dev/null)
		t_like "$first" '^<158>' "$prog: syslog lines carry local3.info (<158>)"
	else
		echo "# $prog: unshare -m refused; syslog facility not checked on the wire"
	fi
done

t_done
