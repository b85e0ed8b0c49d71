#!/usr/bin/env bash
# test_daemons.sh BINDIR - helpgate-milter and helpgate-worker as processes:
#
#   a  -n checks a config and exits (0, "config OK"); a bad config names
#      file:line for every problem, exits 1 and starts nothing (no socket,
#      no PidFile); "helpgatectl config check" the same
#   b  PidFile holds the PID and is removed on SIGTERM, which ends the
#      process with status 0 (libmilter needs up to ~5 s to notice)
#   c  SIGUSR1 reloads: a SupportAddress added to the config tags mail to
#      it from then on (through a private Postfix); a broken config is
#      refused ("reload ... failed") and the running one kept; the worker
#      reloads too; a SIGUSR1 that arrives while the milter is still
#      starting (here: waiting on a locked store) waits for it instead of
#      killing it
#   d  SIGHUP is NOT a reload: libmilter takes SIGHUP, SIGINT and SIGTERM
#      for "terminate" (smfi_main returns), so it is not tested here; use
#      SIGUSR1 (README)
#   e  UserID: both daemons run as that user (/proc/PID/status), and the
#      milter opens its store only after dropping privileges (the database
#      file belongs to the user) and still tags mail
#   g  under ASan/UBSan (BINDIR = build/san/bin) every SIGTERM, after mail
#      and reloads, ends with status 0 and no sanitizer report in the log
#
# All daemons are stopped together at the end: one libmilter shutdown wait
# (~5 s) instead of one per milter.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/../lib/mailstack.sh"

bindir=${1:-bin}
for p in helpgate-milter helpgate-worker helpgatectl; do
	[ -x "$bindir/$p" ] || { echo "no $bindir/$p"; echo "0 passed, 1 failed"; exit 1; }
done
milter="$bindir/helpgate-milter"
worker="$bindir/helpgate-worker"
ctl="$bindir/helpgatectl"
TEST_USER=helpgate-test

ms_init || exit 1

# write_conf FILE NAME [LINE...]: a config with socket and database
# $MS_T/NAME.*; each "Key value" LINE replaces the default line of that key
# or is added.
write_conf() {
	local f=$1 n=$2 l d i
	shift 2
	local lines=(
		"Socket unix:$MS_T/$n.sock"
		"Database $MS_T/$n.db"
		"SupportAddress support@example.com"
		"StaffDomain staff.example.com"
		"Timezone Europe/Kyiv"
		"Syslog no"
		"DiagnoseResolver 127.0.0.1:9"
		"KeywordsDir $repo/conf/keywords"
		"TemplatesDir $repo/conf/templates"
		"StoreTimeout 500ms"
		"PollInterval 100ms"
	)
	for l in "$@"; do
		for i in "${!lines[@]}"; do
			d=${lines[$i]}
			if [ "${d%% *}" = "${l%% *}" ]; then
				lines[i]=$l
				continue 2
			fi
		done
		lines+=("$l")
	done
	printf '%s\n' "${lines[@]}" >"$f"
}

# wait_for SECONDS CMD...: poll CMD every 50 ms until it succeeds.
wait_for() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.05
	done
}
# log_count FILE REGEX: how many lines of FILE match REGEX.
log_count() { grep -cE -- "$2" "$1" 2>/dev/null; }
# log_more FILE REGEX N: more than N lines match.
log_more() { [ "$(log_count "$1" "$2")" -gt "$3" ]; }
alive() { kill -0 "$1" 2>/dev/null; }
gone() { ! kill -0 "$1" 2>/dev/null; }
# mailstack's _ms_stop_pid aborts under "set -u" for a PID that has already
# exited (its "i" is never set), and with it the clean-up at exit: leave it
# only processes that are still there.
prune_pids() {
	local p keep=()
	for p in "${MS_PIDS[@]}"; do
		alive "$p" && keep+=("$p")
	done
	MS_PIDS=("${keep[@]}")
}
ms_on_exit prune_pids
sanitizer_clean() {	# sanitizer_clean DESC LOG
	local bad
	bad=$(grep -E 'ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:' "$2")
	if [ -z "$bad" ]; then t_ok "$1"; else t_fail "$1" "$bad"; fi
}

# start_milter VAR CONF: a milter on $MS_T/<conf name>.sock; VAR_PID and
# VAR_LOG are set.  Returns once the socket accepts.
start_milter() {
	local var=$1 conf=$2
	MS_MILTER_SOCKET="unix:$MS_T/$(basename "$conf" .conf).sock"
	ms_start_milter "$milter" -f -c "$conf" -p "$MS_MILTER_SOCKET" || return 1
	printf -v "${var}_PID" '%s' "$MS_MILTER_PID"
	printf -v "${var}_LOG" '%s' "$MS_T/milter-$MS_MILTER_N.log"
}
# start_worker VAR CONF: a worker; VAR_PID and VAR_LOG are set.
start_worker() {
	local var=$1 conf=$2 log
	log="$MS_T/worker-$(basename "$conf" .conf).log"
	"$worker" -f -c "$conf" >"$log" 2>&1 </dev/null &
	MS_PIDS+=("$!")
	printf -v "${var}_PID" '%s' "$!"
	printf -v "${var}_LOG" '%s' "$log"
}

# ============================================================ a. -n
good="$MS_T/good.conf"
write_conf "$good" good
bad="$MS_T/bad.conf"
cat >"$bad" <<CONF
# two mistakes: line 3 and line 6
Socket unix:$MS_T/bad.sock
NoSuchKey yes
Database $MS_T/bad.db
SupportAddress support@example.com
MaxBodyScan lots
PidFile $MS_T/bad.pid
Timezone UTC
Syslog no
KeywordsDir $repo/conf/keywords
TemplatesDir $repo/conf/templates
CONF

# check_bad DESC RC OUTPUT: exit 1, both lines named, no "config OK".
check_bad() {
	t_is "$2" 1 "$1: exit status 1"
	t_like "$3" "bad\.conf:3: .*NoSuchKey" "$1: names bad.conf:3 (unknown key)"
	t_like "$3" "bad\.conf:6: .*MaxBodyScan" "$1: names bad.conf:6 (MaxBodyScan)"
	if [[ $3 == *"config OK"* || $3 == *Sanitizer* ]]; then
		t_fail "$1: no \"config OK\", no sanitizer report" "$3"
	else
		t_ok "$1: no \"config OK\", no sanitizer report"
	fi
}

for prog in milter worker; do
	bin=${!prog}
	out=$("$bin" -n -c "$good" 2>&1)
	t_is "$?" 0 "helpgate-$prog -n good.conf: exit status 0"
	if [[ $out == "config OK: $good" ]]; then
		t_ok "helpgate-$prog -n good.conf: prints \"config OK\" and nothing else"
	else
		t_fail "helpgate-$prog -n good.conf: prints \"config OK\" and nothing else" "$(head -n 12 <<<"$out")"
	fi
	out=$("$bin" -n -c "$bad" 2>&1)
	check_bad "helpgate-$prog -n bad.conf" "$?" "$out"
	# Without -n (in the foreground, so it cannot detach): still nothing starts.
	out=$(timeout 20 "$bin" -f -c "$bad" 2>&1 </dev/null)
	check_bad "helpgate-$prog -f bad.conf" "$?" "$out"
	if [ -e "$MS_T/bad.sock" ] || [ -e "$MS_T/bad.pid" ] || [ -e "$MS_T/bad.db" ]; then
		t_fail "helpgate-$prog -f bad.conf: no socket, PidFile or database created" "$(ls -l "$MS_T")"
	else
		t_ok "helpgate-$prog -f bad.conf: no socket, PidFile or database created"
	fi
done
out=$("$ctl" -c "$good" config check 2>&1)
t_is "$?" 0 "helpgatectl config check good.conf: exit status 0"
out=$("$ctl" -c "$bad" config check 2>&1)
check_bad "helpgatectl config check bad.conf" "$?" "$out"

# ============================================================ start everything
# b: PidFile milter and worker
pid_milter_conf="$MS_T/pidm.conf"
write_conf "$pid_milter_conf" pidm "PidFile $MS_T/milter.pid"
start_milter P "$pid_milter_conf" || exit 1
pid_worker_conf="$MS_T/pidw.conf"
write_conf "$pid_worker_conf" pidw "PidFile $MS_T/worker.pid"
start_worker W "$pid_worker_conf"

# c: the milter that is reloaded, behind Postfix
reload_conf="$MS_T/reload.conf"
write_conf "$reload_conf" reload
start_milter R "$reload_conf" || exit 1

# c: a milter whose store is locked while it starts: store_open waits
# StoreTimeout (2 s) after the socket is up and before the reload thread
# exists, and that is when SIGUSR1 comes.
early_conf="$MS_T/early.conf"
write_conf "$early_conf" early "StoreTimeout 2s"
"$ctl" -c "$early_conf" cases >/dev/null 2>&1	# creates the database
ms_spawn LOCK_PID python3 -c '
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
c.execute("PRAGMA locking_mode = EXCLUSIVE")
c.execute("BEGIN EXCLUSIVE")
c.execute("CREATE TABLE IF NOT EXISTS test_lock (x)")
print("locked", flush=True)
time.sleep(60)' "$MS_T/early.db"
wait_for 15 grep -qs locked "$MS_T/python3.log" || t_fail "lock on early.db taken" "$(cat "$MS_T/python3.log")"

# e: UserID
if ! id -u "$TEST_USER" >/dev/null 2>&1; then
	useradd -r -M -d /nonexistent -s /usr/sbin/nologin "$TEST_USER" >/dev/null 2>&1 ||
		id -u "$TEST_USER" >/dev/null 2>&1 ||	# made meanwhile by a parallel run
		{ t_fail "useradd $TEST_USER"; t_done; exit 1; }
fi
test_uid=$(id -u "$TEST_USER")
test_gid=$(id -g "$TEST_USER")
mkdir "$MS_T/uid-db"
chown "$TEST_USER:" "$MS_T/uid-db"
chmod 700 "$MS_T/uid-db"
uid_conf="$MS_T/uid.conf"
write_conf "$uid_conf" uid "Database $MS_T/uid-db/hg.db" "UserID $TEST_USER"
start_milter U "$uid_conf" || exit 1
uidw_conf="$MS_T/uidw.conf"
write_conf "$uidw_conf" uidw "Database $MS_T/uid-db/hg.db" "UserID $TEST_USER"
start_worker UW "$uidw_conf"

start_milter E "$early_conf" || exit 1
kill -USR1 "$E_PID"	# the store is still being waited for

ms_start_sink || exit 1
ms_add_smtpd uid_port "unix:$MS_T/uid.sock" || exit 1
ms_start_postfix "unix:$MS_T/reload.sock" || exit 1

for v in P R U E; do
	log=${v}_LOG
	wait_for 15 grep -q 'listening on' "${!log}" || t_fail "milter $v is listening" "$(tail -n 5 "${!log}")"
done
for v in W UW; do
	log=${v}_LOG
	wait_for 15 grep -q 'started' "${!log}" || t_fail "worker $v started" "$(tail -n 5 "${!log}")"
done

# ============================================================ b. PidFile
wait_for 5 test -s "$MS_T/milter.pid"
t_is "$(cat "$MS_T/milter.pid" 2>/dev/null)" "$P_PID" "milter PidFile holds its PID"
wait_for 5 test -s "$MS_T/worker.pid"
t_is "$(cat "$MS_T/worker.pid" 2>/dev/null)" "$W_PID" "worker PidFile holds its PID"
# A reload before the stop: the PidFile must still be found (and removed)
# with the configuration of the start freed by the reload.
kill -USR1 "$P_PID"
wait_for 10 log_more "$P_LOG" 'reloaded' 0 && t_ok "PidFile milter reloaded" ||
	t_fail "PidFile milter reloaded" "$(tail -n 5 "$P_LOG")"

# ============================================================ c. SIGUSR1
sent=0
mkmsg() {	# mkmsg ID SUBJECT BODY: $MS_T/ID.eml
	printf 'From: Client <client@client.test>\nTo: support@example.com\nSubject: %s\nDate: %s\nMessage-ID: <%s@client.test>\n\n%s\n' \
		"$2" "$(date -R)" "$1" "$3" >"$MS_T/$1.eml"
}
send() {	# send ID TO [swaks args]
	local id=$1 to=$2
	shift 2
	if ms_send --to "$to" --data "$MS_T/$id.eml" "$@"; then
		sent=$((sent + 1))
	else
		t_fail "swaks delivered $id"
	fi
}
case_of() {	# case_of ID: X-Helpgate-Case of the delivered message, "" if none
	local f
	f=$(ms_find_by_header Message-ID "<$1@client.test>" | head -n 1)
	[ -n "$f" ] || { echo "(not delivered)"; return; }
	ms_header "$f" X-Helpgate-Case || true
}
for id in r1 r2 r3 r4 r5 u1; do
	mkmsg "$id" "Question $id" "How do I set up an alias for my mailbox?"
done

send r1 support@example.com
send r2 help2@example.com
ms_wait_delivered "$sent" 30 || t_fail "r1, r2 delivered"
t_like "$(case_of r1)" '^HG-[0-9]+$' "before reload: support@ tagged"
t_is "$(case_of r2)" "" "before reload: help2@ is not a support address"

echo "SupportAddress help2@example.com" >>"$reload_conf"
before=$(log_count "$R_LOG" 'reloaded')
kill -USR1 "$R_PID"
wait_for 10 log_more "$R_LOG" 'reloaded' "$before" && t_ok "SIGUSR1: milter logged \"reloaded\"" ||
	t_fail "SIGUSR1: milter logged \"reloaded\"" "$(tail -n 5 "$R_LOG")"
send r3 help2@example.com
ms_wait_delivered "$sent" 30 || t_fail "r3 delivered"
t_like "$(case_of r3)" '^HG-[0-9]+$' "after reload: help2@ tagged"

cp "$reload_conf" "$MS_T/reload.conf.good"
echo "NoSuchKey 1" >>"$reload_conf"
bad_line=$(wc -l <"$reload_conf")
before=$(log_count "$R_LOG" 'reload .*failed')
kill -USR1 "$R_PID"
wait_for 10 log_more "$R_LOG" 'reload .*failed' "$before" &&
	t_ok "broken config: milter logged \"reload ... failed\"" ||
	t_fail "broken config: milter logged \"reload ... failed\"" "$(tail -n 5 "$R_LOG")"
t_like "$(cat "$R_LOG")" "reload\.conf:$bad_line: .*NoSuchKey" "broken config: the log names reload.conf:$bad_line"
alive "$R_PID" && t_ok "broken config: milter still running" || t_fail "broken config: milter still running"
send r4 help2@example.com
send r5 support@example.com
ms_wait_delivered "$sent" 30 || t_fail "r4, r5 delivered"
t_like "$(case_of r4)" '^HG-[0-9]+$' "broken config: running config kept (help2@ still tagged)"
t_like "$(case_of r5)" '^HG-[0-9]+$' "broken config: support@ still tagged"
cp "$MS_T/reload.conf.good" "$reload_conf"

# the worker
before=$(log_count "$W_LOG" 'reloaded')
kill -USR1 "$W_PID"
wait_for 10 log_more "$W_LOG" 'reloaded' "$before" && t_ok "SIGUSR1: worker logged \"reloaded\"" ||
	t_fail "SIGUSR1: worker logged \"reloaded\"" "$(tail -n 5 "$W_LOG")"
cp "$pid_worker_conf" "$MS_T/pidw.conf.good"
echo "MaxBodyScan lots" >>"$pid_worker_conf"
before=$(log_count "$W_LOG" 'reload .*failed')
kill -USR1 "$W_PID"
wait_for 10 log_more "$W_LOG" 'reload .*failed' "$before" &&
	t_ok "broken config: worker logged \"reload ... failed\"" ||
	t_fail "broken config: worker logged \"reload ... failed\"" "$(tail -n 5 "$W_LOG")"
alive "$W_PID" && t_ok "broken config: worker still running" || t_fail "broken config: worker still running"
cp "$MS_T/pidw.conf.good" "$pid_worker_conf"

# SIGUSR1 during start-up
wait_for 10 log_more "$E_LOG" 'reloaded' 0
alive "$E_PID" && t_ok "SIGUSR1 during start-up: milter still running" ||
	t_fail "SIGUSR1 during start-up: milter still running" "$(tail -n 5 "$E_LOG")"
t_like "$(cat "$E_LOG")" 'listening on.*' "SIGUSR1 during start-up: milter came up"
t_is "$(log_count "$E_LOG" 'reloaded')" 1 "SIGUSR1 during start-up: handled once the reload thread is there"
alive "$LOCK_PID" && ms_stop_pid "$LOCK_PID"

# ============================================================ e. UserID
uid_line() { awk -v k="$2:" '$1 == k { print $2, $3, $4, $5 }' "/proc/$1/status" 2>/dev/null; }
t_is "$(uid_line "$U_PID" Uid)" "$test_uid $test_uid $test_uid $test_uid" "UserID: milter runs as $TEST_USER (real, effective, saved, fs uid)"
t_is "$(uid_line "$U_PID" Gid)" "$test_gid $test_gid $test_gid $test_gid" "UserID: milter runs with $TEST_USER's group"
t_is "$(awk '$1 == "Groups:" { $1 = ""; print substr($0, 2) }' "/proc/$U_PID/status")" "$test_gid" \
	"UserID: milter has no supplementary group left (root's are dropped)"
t_is "$(uid_line "$UW_PID" Uid)" "$test_uid $test_uid $test_uid $test_uid" "UserID: worker runs as $TEST_USER"
send u1 support@example.com --server "127.0.0.1:$uid_port"
ms_wait_delivered "$sent" 30 || t_fail "u1 delivered"
t_like "$(case_of u1)" '^HG-[0-9]+$' "UserID: mail still tagged"
t_is "$(stat -c %U "$MS_T/uid-db/hg.db" 2>/dev/null)" "$TEST_USER" \
	"UserID: the store was created after the drop (hg.db belongs to $TEST_USER)"
t_is "$(log_count "$U_LOG" 'unavailable|degraded')" 0 "UserID: the store opened at once, no degraded mail"

# ============================================================ stop, b and g
ms_stop_postfix
# Everything gets SIGTERM at once; libmilter takes up to ~5 s to notice.
t0=$(date +%s.%N)
for v in P R E U W UW; do
	pid=${v}_PID
	kill -TERM "${!pid}" 2>/dev/null
done
# reap VAR: wait (up to 8 s, then SIGKILL) for a process that was sent
# SIGTERM; set STOP_RC (its exit status) and STOP_SECS (since t0).  Not
# ms_stop_pid: that one trips over "set -u" when the process is already
# gone (see prune_pids).
reap() {
	local pid=${1}_PID p keep=()
	pid=${!pid}
	wait_for 8 gone "$pid" || kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	STOP_RC=$?
	STOP_SECS=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	for p in "${MS_PIDS[@]}"; do
		[ "$p" = "$pid" ] || keep+=("$p")
	done
	MS_PIDS=("${keep[@]}")
}
within() { awk -v s="$1" -v m="$2" 'BEGIN { exit !(s <= m) }'; }

reap W
t_is "$STOP_RC" 0 "SIGTERM: PidFile worker exits 0"
within "$STOP_SECS" 3 && t_ok "SIGTERM: worker gone within 3 s (${STOP_SECS}s)" ||
	t_fail "SIGTERM: worker gone within 3 s" "${STOP_SECS}s"
[ -e "$MS_T/worker.pid" ] && t_fail "SIGTERM: worker PidFile removed" || t_ok "SIGTERM: worker PidFile removed"
sanitizer_clean "SIGTERM: no sanitizer report from the reloaded worker" "$W_LOG"

reap P
t_is "$STOP_RC" 0 "SIGTERM: PidFile milter (reloaded once) exits 0"
within "$STOP_SECS" 7 && t_ok "SIGTERM: milter gone within 7 s (${STOP_SECS}s)" ||
	t_fail "SIGTERM: milter gone within 7 s" "${STOP_SECS}s"
[ -e "$MS_T/milter.pid" ] && t_fail "SIGTERM: milter PidFile removed" || t_ok "SIGTERM: milter PidFile removed"
t_like "$(tail -n 1 "$P_LOG")" 'stopping$' "SIGTERM: the milter shut down through smfi_main (\"stopping\" logged)"
sanitizer_clean "SIGTERM: no sanitizer report from the PidFile milter" "$P_LOG"

reap R
t_is "$STOP_RC" 0 "SIGTERM after mail and two reloads (one refused): milter exits 0"
sanitizer_clean "SIGTERM after mail and reloads: no sanitizer report in the log" "$R_LOG"

reap E
t_is "$STOP_RC" 0 "SIGTERM: the milter reloaded during start-up exits 0"
sanitizer_clean "no sanitizer report from the milter reloaded during start-up" "$E_LOG"

reap U
t_is "$STOP_RC" 0 "SIGTERM: the UserID milter exits 0"
sanitizer_clean "no sanitizer report from the UserID milter" "$U_LOG"
reap UW
t_is "$STOP_RC" 0 "SIGTERM: the UserID worker exits 0"
sanitizer_clean "no sanitizer report from the UserID worker" "$UW_LOG"

t_done
