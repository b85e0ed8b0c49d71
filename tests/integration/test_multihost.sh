#!/usr/bin/env bash
# test_multihost.sh BINDIR - two MX hosts, one PostgreSQL case store.
#
# Two private Postfix instances ("mx1" and "mx2", each its own
# config_directory and queue), a helpgate-milter on each, a helpgate-worker
# for each host (each relays through its own Postfix and reconciles both
# support mailboxes), and one private PostgreSQL cluster they all share.
#
#   1. a burst of 300 new cases split across both hosts, 20 messages
#      delivered to both hosts with the same Message-ID, then 30 follow-ups
#      each sent to the host its case did not start on: one case per
#      conversation, one case numbering, one acknowledgement per case
#      (counted in the clients' mailboxes, not only in the database);
#   2. the same burst again, with kill -9 of mx1's worker and of mx1's
#      milter in the middle: every case opened (the milter's mail from the
#      support mailbox), still exactly one acknowledgement per case;
#   3. the database stopped for 30 s during a burst: every message delivered
#      at once (tagged degraded), every case opened from the spools once
#      the database is back;
#   4. the database frozen (SIGSTOP: a server that stops answering without
#      closing): mail still delivered within the milter's StoreTimeout.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/../lib/mailstack.sh"
. "$here/../lib/pg.sh"

bindir=${1:-bin}
for p in helpgate-milter helpgate-worker helpgatectl; do
	[ -x "$bindir/$p" ] || { echo "no $bindir/$p"; echo "0 passed, 1 failed"; exit 1; }
done

ms_init || exit 1
ms_start_sink || exit 1
pg_start "$MS_T/pg" || { echo "0 passed, 1 failed"; exit 1; }
export MS_DELIVERY=maildir
export MS_MAILDIR_DOMAINS="example.com client.test staff.example.com"
mx1=$MS_T
mx2=$MS_T/mx2
mkdir -p "$mx2"
chmod 755 "$mx2"
ms_free_port MX2_PORT || exit 1
MX1_PORT=$MS_SMTP_PORT

# write_conf DIR: the helpgate.conf of one host.  Both share the database
# and the seal key (INSTALL: copy it to every host); each has its own
# milter socket and spool.
write_conf() {
	cat >"$1/helpgate.conf" <<CONF
Socket unix:$1/hg.sock
Database $PG_TARGET
SpoolDirectory $1/spool
SealKeyFile $MS_T/seal.key
StoreTimeout 1s
SupportAddress support@example.com
StaffDomain staff.example.com
DiagnoseResolver 127.0.0.1:9
DiagnosePerCustomerPerHour 0
Timezone UTC
Syslog no
KeywordsDir $repo/conf/keywords
TemplatesDir $repo/conf/templates
PollInterval 100ms
MailboxPoll 1s
Mailbox maildir:$mx1/mail/support@example.com
Mailbox maildir:$mx2/mail/support@example.com
CONF
}
write_conf "$mx1"
write_conf "$mx2"
echo "Relay smtp://127.0.0.1:$MX1_PORT" >>"$mx1/helpgate.conf"
echo "Relay smtp://127.0.0.1:$MX2_PORT" >>"$mx2/helpgate.conf"

# The schema, created by the owner (here the superuser, as helpgatectl),
# then mx2's milter on a role with only conf/pg-milter-grants.sql (INSTALL).
"$bindir/helpgatectl" -c "$mx1/helpgate.conf" customer add @vip.test --tier premium >/dev/null ||
	t_fail "schema created"
pg_psql -c "CREATE ROLE helpgate_milter LOGIN" &&
	pg_psql -v milter=helpgate_milter -f "$repo/conf/pg-milter-grants.sql" ||
	t_fail "the milter's grants (conf/pg-milter-grants.sql) apply"
grep -v '^Database ' "$mx2/helpgate.conf" >"$mx2/milter.conf"
echo "Database ${PG_TARGET/user=postgres/user=helpgate_milter}" >>"$mx2/milter.conf"

# The milters first: the worker of each host must not create the seal key
# while the other reads it.
MS_MILTER_SOCKET="unix:$mx1/hg.sock"
ms_start_milter "$bindir/helpgate-milter" -f -c "$mx1/helpgate.conf" || exit 1
MILTER1_PID=$MS_MILTER_PID
MS_MILTER_SOCKET="unix:$mx2/hg.sock"
ms_start_milter "$bindir/helpgate-milter" -f -c "$mx2/milter.conf" || exit 1
MILTER2_PID=$MS_MILTER_PID

ms_start_postfix "unix:$mx1/hg.sock" || exit 1
# The second Postfix: everything of mailstack.sh's under another directory.
start_mx2() {
	local T=$MS_T port=$MS_SMTP_PORT
	MS_T=$mx2 MS_SMTP_PORT=$MX2_PORT
	ms_start_postfix "unix:$mx2/hg.sock"
	local rc=$?
	MS_T=$T MS_SMTP_PORT=$port
	return $rc
}
ms_on_exit "MS_T=$mx2 MS_POSTFIX_UP=1 ms_stop_postfix"
start_mx2 || exit 1

start_worker() {	# start_worker N
	local dir=$mx1
	[ "$1" = 2 ] && dir=$mx2
	"$bindir/helpgate-worker" -f -c "$dir/helpgate.conf" >>"$MS_T/worker-$1.log" 2>&1 </dev/null &
	printf -v "WORKER$1_PID" '%s' "$!"
	MS_PIDS+=("$!")
}
start_worker 1
start_worker 2

sq() { ms_sq "$PG_TARGET" "$@"; }
cases() { sq "SELECT count(*) FROM cases"; }


# burst PREFIX N: N new cases, alternately to mx1 and mx2, into $MS_T/PREFIX.spec
burst_spec() {
	local i port
	: >"$MS_T/$1.spec"
	for ((i = 1; i <= $2; i++)); do
		port=$MX1_PORT
		((i % 2)) || port=$MX2_PORT
		printf '%s|%s-%03d@client.test|%s-%03d@client.test|Cannot log in (%s %d)|\n' \
			"$port" "$1" "$i" "$1" "$i" "$1" "$i" >>"$MS_T/$1.spec"
	done
}

# Acknowledgements that reached the clients' mailboxes on either host, as
# "Case To" lines.
delivered_acks() {
	local f
	for f in "$mx1"/mail/*@client.test/new/* "$mx2"/mail/*@client.test/new/*; do
		[ -f "$f" ] || continue
		printf '%s %s\n' "$(ms_header "$f" X-Helpgate-Case)" "$(ms_header "$f" To)"
	done
}
acks_of() { delivered_acks | grep -c "$1-"; }
dup_acks() { delivered_acks | sort | uniq -d | grep -c .; }
acked_cases_sent() { sq "SELECT count(*) FROM outbox WHERE kind = 'ack' AND state = 'sent'"; }
at_least() { [ "$($1)" -ge "$2" ]; }
acks_delivered_at_least() { [ "$(acks_of "$1")" -ge "$2" ]; }

# ---- 1. 300 new cases over both hosts, the same messages through both,
# follow-ups crossing over
burst_spec p1 300
for ((i = 1; i <= 20; i++)); do	# the same message delivered to both MX hosts
	printf '%s|p1-both-%02d@client.test|p1-both-%02d@client.test|Both hosts (%d)|\n' \
		"$MX1_PORT" "$i" "$i" "$i" >>"$MS_T/p1.spec"
	printf '%s|p1-both-%02d@client.test|p1-both-%02d@client.test|Both hosts (%d)|\n' \
		"$MX2_PORT" "$i" "$i" "$i" >>"$MS_T/p1.spec"
done
t0=$SECONDS
n=$(python3 "$repo/tests/lib/smtp-burst.py" "$MS_T/p1.spec")
t_is "$n" 340 "1: both MTAs accepted the 340 messages"
ms_wait_for 120 at_least cases 320 || true
t_is "$(cases)" 320 "1: 320 cases: one per new conversation, one for each message sent to both hosts"
t_is "$(sq "SELECT count(*) FROM messages WHERE message_id LIKE 'p1-both-%'")" 20 \
	"1: a message delivered to both hosts is recorded once"
t_is "$(sq "SELECT count(*) FROM messages WHERE via = 'mailbox'")" 0 "1: the milters recorded every one"
t_is "$(sq "SELECT min(id) || '-' || max(id) FROM cases")" "1-320" "1: one numbering across hosts: HG-1 to HG-320"
t_is "$(sq "SELECT count(DISTINCT case_id) FROM messages WHERE queue_id <> ''")" 320 "1: queue ids recorded"

# follow-ups, each to the host its case did not start on
: >"$MS_T/p1f.spec"
for ((i = 1; i <= 30; i++)); do
	port=$MX2_PORT
	((i % 2)) || port=$MX1_PORT
	printf '%s|p1-re-%03d@client.test|p1-%03d@client.test|Re: Cannot log in (p1 %d)|p1-%03d@client.test\n' \
		"$port" "$i" "$i" "$i" "$i" >>"$MS_T/p1f.spec"
done
n=$(python3 "$repo/tests/lib/smtp-burst.py" "$MS_T/p1f.spec")
t_is "$n" 30 "1: 30 follow-ups accepted, each by the other host"
joined() {
	sq "SELECT count(*) FROM messages r JOIN messages o ON o.case_id = r.case_id
	    WHERE r.message_id LIKE 'p1-re-%' AND o.message_id = replace(r.message_id, 'p1-re-', 'p1-')"
}
ms_wait_for 30 at_least joined 30 || true
t_is "$(joined)" 30 "1: every follow-up joined its case on the other host"
t_is "$(cases)" 320 "1: follow-ups opened no case"

# A client writes to a case that waits for them, through mx2 (the
# restricted milter): the case opens again and the pause is recorded.
wcase=$(sq "SELECT case_id FROM messages WHERE message_id = 'p1-002@client.test'")
"$bindir/helpgatectl" -c "$mx1/helpgate.conf" case wait "$wcase" >/dev/null || t_fail "1: case wait"
printf '%s|p1-wait-re@client.test|p1-002@client.test|Re: Cannot log in (p1 2)|p1-002@client.test\n' \
	"$MX2_PORT" >"$MS_T/p1w.spec"
python3 "$repo/tests/lib/smtp-burst.py" "$MS_T/p1w.spec" >/dev/null
reopened() { [ "$(sq "SELECT status FROM cases WHERE id = ?" "$wcase")" = open ]; }
ms_wait_for 20 reopened || true
t_is "$(sq "SELECT status || ' ' || (SELECT count(*) FROM pauses WHERE case_id = ?) FROM cases WHERE id = ?" "$wcase" "$wcase")" \
	"open 1" "1: the client's answer through mx2 opened the waiting case again, pause recorded"

ms_wait_for 120 at_least acked_cases_sent 320 || true
ms_wait_for 60 acks_delivered_at_least p1 320 || true
t_ok "1: 320 acknowledgements out after $((SECONDS - t0)) s"
t_is "$(sq "SELECT count(*) FROM outbox WHERE kind = 'ack'")" 320 "1: one acknowledgement row per case"
t_is "$(acks_of p1)" 320 "1: 320 acknowledgements in the clients' mailboxes"
t_is "$(dup_acks)" 0 "1: no client got a case's acknowledgement twice"
w1=$(grep -c "ack sent\|result=sent" "$MS_T/worker-1.log")
w2=$(grep -c "ack sent\|result=sent" "$MS_T/worker-2.log")
t_like "$w1 $w2" '^[1-9][0-9]* [1-9][0-9]*$' "1: both workers did part of the sending ($w1 and $w2)"

# ---- 2. the same burst, kill -9 of mx1's worker and of mx1's milter mid-way.
# In three parts, so that the kills land where they must whatever the
# speed: the worker dies while the second part is being acknowledged, the
# milter while it is still arriving, and the third part reaches mx1 with no
# milter at all (delivered untagged, opened from the support mailbox).
burst_spec p2 300
sed -n '1,100p' "$MS_T/p2.spec" >"$MS_T/p2a.spec"
sed -n '101,200p' "$MS_T/p2.spec" >"$MS_T/p2b.spec"
sed -n '201,300p' "$MS_T/p2.spec" >"$MS_T/p2c.spec"
p2_recorded() { sq "SELECT count(*) FROM messages WHERE message_id LIKE 'p2-%'"; }
n2=$(python3 "$repo/tests/lib/smtp-burst.py" "$MS_T/p2a.spec")
python3 "$repo/tests/lib/smtp-burst.py" "$MS_T/p2b.spec" >"$MS_T/p2b.accepted" 2>&1 &
SENDER_PID=$!
MS_PIDS+=("$SENDER_PID")
ms_wait_for 60 at_least p2_recorded 110 || true
{ kill -KILL "$WORKER1_PID"; wait "$WORKER1_PID"; } 2>/dev/null
ms_log "killed worker 1 after $(p2_recorded) messages"
{ kill -KILL "$MILTER1_PID"; wait "$MILTER1_PID"; } 2>/dev/null
ms_log "killed milter 1 after $(p2_recorded) messages"
wait "$SENDER_PID" 2>/dev/null
n2=$((n2 + $(cat "$MS_T/p2b.accepted")))
n2=$((n2 + $(python3 "$repo/tests/lib/smtp-burst.py" "$MS_T/p2c.spec")))
t_is "$n2" 300 "2: both MTAs accepted all 300 messages"
p2_cases() { sq "SELECT count(DISTINCT case_id) FROM messages WHERE message_id LIKE 'p2-%'"; }
ms_wait_for 120 at_least p2_cases 300 || true
t_is "$(p2_cases)" 300 "2: no case lost: 300 cases"
t_like "$(sq "SELECT count(*) FROM messages WHERE message_id LIKE 'p2-%' AND via = 'mailbox'")" '^[1-9]' \
	"2: mx1's mail after its milter died was opened from the support mailbox"
# A row the dead worker had taken waits out its lease (30 s) first.
ms_wait_for 150 acks_delivered_at_least p2 300 || true
t_is "$(acks_of p2)" 300 "2: 300 acknowledgements in the clients' mailboxes"
t_is "$(dup_acks)" 0 "2: still no acknowledgement twice"
t_is "$(sq "SELECT count(*) FROM outbox WHERE kind = 'ack' AND state <> 'sent'")" 0 \
	"2: every acknowledgement row sent"
# mx1 back: its worker restarted sends nothing twice
MS_MILTER_SOCKET="unix:$mx1/hg.sock"
ms_start_milter "$bindir/helpgate-milter" -f -c "$mx1/helpgate.conf" || t_fail "2: milter 1 restarted"
MILTER1_PID=$MS_MILTER_PID
start_worker 1
sleep 3
t_is "$(dup_acks)" 0 "2: a restarted worker sends nothing twice"

# ---- 3. the database stopped for 30 s during a burst
burst_spec p3 60
count_all() { find "$mx1/mail/support@example.com" "$mx2/mail/support@example.com" -type f \
	-path '*/new/*' 2>/dev/null | xargs -r grep -l '^Message-ID: <p3-' 2>/dev/null | grep -c .; }
pg_stop_server
t0=$SECONDS
n=$(python3 "$repo/tests/lib/smtp-burst.py" "$MS_T/p3.spec")
dt=$((SECONDS - t0))
t_is "$n" 60 "3: database down: the MTAs accepted all 60 messages"
ms_wait_for 30 at_least count_all 60 || true
t_is "$(count_all)" 60 "3: database down: every message delivered at once ($dt s for 60)"
degraded=0
for f in $(find "$mx1/mail/support@example.com" "$mx2/mail/support@example.com" -path '*/new/*' -type f); do
	grep -q '^Message-ID: <p3-' "$f" || continue
	[ "$(ms_header "$f" X-Helpgate-Status)" = degraded ] && degraded=$((degraded + 1))
done
t_is "$degraded" 60 "3: each tagged X-Helpgate-Status: degraded"
t_like "$(ls "$mx1/spool" | grep -c .) $(ls "$mx2/spool" | grep -c .)" '^[1-9][0-9]* [1-9][0-9]*$' \
	"3: spooled on each host"
sleep $((30 - (SECONDS - t0) > 0 ? 30 - (SECONDS - t0) : 0))
pg_start_server || t_fail "3: database started again"
p3_cases() { sq "SELECT count(DISTINCT case_id) FROM messages WHERE message_id LIKE 'p3-%'"; }
ms_wait_for 90 at_least p3_cases 60 || true
t_is "$(p3_cases)" 60 "3: database back: every case opened (from the spools), once"
ms_wait_for 60 acks_delivered_at_least p3 60 || true
t_is "$(acks_of p3)" 60 "3: and acknowledged once each"
t_is "$(dup_acks)" 0 "3: still no acknowledgement twice"

# ---- 4. a database that stops answering (SIGSTOP)
burst_spec p4 10
pg_freeze
t0=$(date +%s.%N)
n=$(python3 "$repo/tests/lib/smtp-burst.py" "$MS_T/p4.spec")
dt=$(python3 -c "print(round($(date +%s.%N) - $t0, 1))")
t_is "$n" 10 "4: database frozen: the MTAs accepted all 10"
t_like "$(python3 -c "print('fast' if $dt < 30 else 'slow')")" fast \
	"4: ... in $dt s (StoreTimeout 1s bounds each wait; no hang)"
pg_thaw
p4_cases() { sq "SELECT count(DISTINCT case_id) FROM messages WHERE message_id LIKE 'p4-%'"; }
ms_wait_for 90 at_least p4_cases 10 || true
t_is "$(p4_cases)" 10 "4: database answering again: every case opened"
t_like "$(cat "$MS_T"/milter-*.log)" "did not answer within" "4: the milter logged the silent server"

t_is "$(sq "SELECT count(*) FROM (SELECT case_id FROM outbox WHERE kind = 'ack' GROUP BY case_id HAVING count(*) > 1) x")" 0 \
	"at most one acknowledgement row per case, in all"

t_is "$(cat "$MS_T"/milter-*.log | grep -c 'permission denied')" 0 \
	"mx2's milter did everything with the grants of conf/pg-milter-grants.sql"
t_like "$(grep -c 'HG-[0-9]' "$MS_T/milter-2.log")" '^[1-9][0-9][0-9]' \
	"mx2's milter (role helpgate_milter) opened and threaded cases"

# ---- 5. helpgatectl store copy: this desk to SQLite and back to PostgreSQL
ctl() { "$bindir/helpgatectl" -c "$mx1/helpgate.conf" "$@"; }
copy2=$(pg_createdb copy2)
{ grep -v '^Database ' "$mx1/helpgate.conf"; echo "Database $MS_T/copy.db"; } >"$MS_T/copy-sqlite.conf"
{ grep -v '^Database ' "$mx1/helpgate.conf"; echo "Database $copy2"; } >"$MS_T/copy-pg.conf"
kill -STOP "$WORKER1_PID" "$WORKER2_PID"	# a still desk: the counts must agree
out=$(ctl store copy "$PG_TARGET" "$MS_T/copy.db" 2>&1)
t_is "$?" 0 "5: PostgreSQL to SQLite: exit 0"
t_like "$out" "cases +[0-9]+ in the source, +[0-9]+ copied" "5: counts per table"
t_like "$out" "every table's counts agree" "5: and says they agree"
out=$(ctl store copy "$MS_T/copy.db" "$copy2" 2>&1)
t_is "$?" 0 "5: SQLite to PostgreSQL: exit 0"
for what in "cases --json" "outbox --json --limit 100000" "customer list --json" "case show 5 --json"; do
	# shellcheck disable=SC2086
	a=$(ctl $what | md5sum)
	# shellcheck disable=SC2086
	b=$("$bindir/helpgatectl" -c "$MS_T/copy-sqlite.conf" $what | md5sum)
	# shellcheck disable=SC2086
	c=$("$bindir/helpgatectl" -c "$MS_T/copy-pg.conf" $what | md5sum)
	t_is "$a $a" "$b $c" "5: helpgatectl $what: the same in all three stores"
done
t_is "$(ms_sq "$copy2" "SELECT nextval(pg_get_serial_sequence('cases', 'id')) > max(id) FROM cases")" t \
	"5: the copy's case numbering goes on after the last case"
out=$(ctl store copy "$MS_T/copy.db" "$copy2" 2>&1)
t_is "$?" 1 "5: into a store that is not empty: refused"
t_like "$out" "not empty" "5: and says why"
kill -CONT "$WORKER1_PID" "$WORKER2_PID"
t_done
