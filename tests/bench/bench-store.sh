#!/usr/bin/env bash
# tests/bench/bench-store.sh - the case store's backends against each other
# in one run: SQLite (one worker), PostgreSQL with one worker and with two.
#
# One private Postfix with a listener per setup, each with its own
# helpgate-milter and database (an SQLite file; a database of one private
# PostgreSQL cluster, tests/lib/pg.sh).  Per setup:
#   new cases/s   BENCH_STORE_CASES (600) new cases from distinct senders over
#                 four SMTP connections, timed until the last is in the store
#   ack latency   tests/bench/ack-latency.py: BENCH_ACKS (200) paced at
#                 BENCH_ACK_RATE (20/s), median / p95 / max from the MTA's 250
#                 to the acknowledgement in the sink; then BENCH_ACK_BURST (300)
#                 at once: acknowledgements/s sustained
# and the ratios of each PostgreSQL setup to SQLite.  Env: BENCH_BIN (bin).
set -u
cd "$(dirname "$0")/../.." || exit 1
root=$(pwd)
. "$root/tests/lib/mailstack.sh"
. "$root/tests/lib/pg.sh"

bindir=${BENCH_BIN:-bin}
ncases=${BENCH_STORE_CASES:-600}
acks=${BENCH_ACKS:-200}
rate=${BENCH_ACK_RATE:-20}
burst=${BENCH_ACK_BURST:-300}
say() { printf '%s\n' "$*"; }

ms_init || exit 1
ms_start_sink || exit 1
pg_start "$MS_T/pg" || exit 1
setups=(sqlite pg-1worker pg-2workers)
declare -A db port workers cps p95 aps
db[sqlite]=$MS_T/hg.db
db[pg-1worker]=$(pg_createdb bench1) || exit 1
db[pg-2workers]=$(pg_createdb bench2) || exit 1
workers=([sqlite]=1 [pg-1worker]=1 [pg-2workers]=2)

for s in "${setups[@]}"; do
	mkdir -p "$MS_T/$s"
	cat >"$MS_T/$s/helpgate.conf" <<EOF
Socket unix:$MS_T/$s/hg.sock
Database ${db[$s]}
SpoolDirectory $MS_T/$s/spool
SealKeyFile $MS_T/seal.key
SupportAddress support@example.com
DiagnoseResolver 127.0.0.1:9
DiagnosePerCustomerPerHour 0
KeywordsDir $root/conf/keywords
TemplatesDir $root/conf/templates
Syslog no
AckRateLimit 100000 100000
AckPerHour 10000000
PollInterval 100ms
EOF
	MS_MILTER_SOCKET="unix:$MS_T/$s/hg.sock"
	ms_start_milter "$bindir/helpgate-milter" -f -c "$MS_T/$s/helpgate.conf" || exit 1
	ms_add_smtpd "port_${s//-/_}" "$MS_MILTER_SOCKET" || exit 1
	v="port_${s//-/_}"
	port[$s]=${!v}
	echo "Relay smtp://127.0.0.1:${port[$s]}" >>"$MS_T/$s/helpgate.conf"
done
ms_start_postfix "" || exit 1

cases_in() { ms_sq "$1" "SELECT count(*) FROM cases"; }

for s in "${setups[@]}"; do
	say ""
	say "== $s"
	wpids=()
	for ((w = 0; w < workers[$s]; w++)); do
		ms_spawn wpid "$bindir/helpgate-worker" -f -c "$MS_T/$s/helpgate.conf"
		wpids+=("$wpid")
	done
	: >"$MS_T/$s.spec"
	for ((i = 1; i <= ncases; i++)); do
		printf '%s|%s-new-%d@bench.test|%s-new-%d@client.test|Cannot send mail (%d)|\n' \
			"${port[$s]}" "$s" "$i" "$s" "$i" "$i" >>"$MS_T/$s.spec"
	done
	t0=$(date +%s.%N)
	python3 "$root/tests/lib/smtp-burst.py" "$MS_T/$s.spec" >/dev/null
	for ((i = 0; i < 600; i++)); do
		[ "$(cases_in "${db[$s]}")" -ge "$ncases" ] && break
		sleep 0.1
	done
	cps[$s]=$(python3 -c "print(round($ncases / ($(date +%s.%N) - $t0), 1))")
	say "new cases: $ncases in the store at ${cps[$s]} cases/s"
	# The latency is measured on an idle desk: the burst's acknowledgements
	# are decided and sent first (else the paced cases queue behind them).
	t0=$(date +%s.%N)
	for ((i = 0; i < 1200; i++)); do
		[ "$(ms_sq "${db[$s]}" "SELECT (SELECT count(*) FROM messages WHERE ack = '') +
		    (SELECT count(*) FROM outbox WHERE state IN ('pending', 'sending'))")" = 0 ] && break
		sleep 0.1
	done
	say "the burst's acknowledgements all sent after $(python3 -c "print(round($(date +%s.%N) - $t0, 1))") s"
	out=$(python3 "$root/tests/bench/ack-latency.py" "${port[$s]}" "$MS_T/sink" "$acks" "$rate" \
	    "$burst" "$s-")
	printf '%s\n' "$out" | grep -v '^P95 '
	p95[$s]=$(printf '%s\n' "$out" | sed -n 's/^P95 //p')
	aps[$s]=$(printf '%s\n' "$out" | sed -n 's/.*: \([0-9.]*\) acknowledgements\/s sustained/\1/p')
	for w in "${wpids[@]}"; do ms_stop_pid "$w"; done
done

say ""
say "== PostgreSQL against SQLite, this run"
printf '%-14s %10s %10s %10s   %s\n' setup "cases/s" "ack p95 s" "acks/s" "ratios to sqlite (cases/s, p95, acks/s)"
for s in "${setups[@]}"; do
	printf '%-14s %10s %10s %10s   %s\n' "$s" "${cps[$s]}" "${p95[$s]:-?}" "${aps[$s]:-?}" \
		"$(python3 -c "
def r(a, b):
    try: return '%.2f' % (float(a) / float(b))
    except Exception: return '?'
print(r('${cps[$s]}', '${cps[sqlite]}'), r('${p95[$s]:-}', '${p95[sqlite]:-}'), r('${aps[$s]:-}', '${aps[sqlite]:-}'))")"
done
T_DONE=1
exit 0
