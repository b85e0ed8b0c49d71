#!/usr/bin/env bash
# tests/bench/bench-sendmail.sh BINDIR - what helpgate costs Sendmail, in
# one run against baselines from the same run: ONE private Sendmail 8.17
# (tests/lib/sendmail.sh) relaying to ONE smtp-sink, with three listening
# ports that differ only in their InputMailFilters: none, the trivial
# libmilter filter (tests/bench/trivial-milter.c) and helpgate-milter.
# Each round sends BENCH_SM_MESSAGES messages of BENCH_SIZE bytes to the
# support address with smtp-source to each port in turn (the order rotates
# every round) and times until all of them are in the sink; medians over
# BENCH_SM_ROUNDS rounds and the ratios helpgate/trivial, helpgate/none.
#
# Env: BENCH_SM_ROUNDS (3), BENCH_SM_MESSAGES (500), BENCH_SIZE (10240),
# BENCH_SESSIONS (8), BENCH_SM_WARMUP (50).  Exit 0 when it ran: a missed
# target is printed as MISSED, and tests/bench/run.sh counts it.
set -u
cd "$(dirname "$0")/../.." || exit 1
root=$(pwd)
. "$root/tests/lib/mailstack.sh"
. "$root/tests/lib/sendmail.sh"
. "$root/tests/bench/lib.sh"

bindir=${1:-bin}
rounds=${BENCH_SM_ROUNDS:-3}
messages=${BENCH_SM_MESSAGES:-500}
size=${BENCH_SIZE:-10240}
sessions=${BENCH_SESSIONS:-8}
warmup=${BENCH_SM_WARMUP:-50}
rcpt=support@example.com
sender=client@client.test
missed=0

for p in trivial-milter helpgate-milter; do
	[ -x "$bindir/$p" ] || { say "bench-sendmail: no $bindir/$p (make programs)"; exit 1; }
done
bench_drained() { ms_wait_for 30 sm_queue_empty; }

ms_init || exit 1
ms_start_sink || exit 1
cat >"$MS_T/helpgate.conf" <<EOF
Socket		unix:$MS_T/hg.sock
Database	$MS_T/hg.db
DiagnoseResolver 127.0.0.1:9
SupportAddress	$rcpt
KeywordsDir	$root/conf/keywords
TemplatesDir	$root/conf/templates
Syslog		no
EOF
declare -A port pid
MS_MILTER_SOCKET="unix:$MS_T/trivial.sock"
ms_start_milter "$bindir/trivial-milter" -p "$MS_MILTER_SOCKET" || exit 1
pid[trivial]=$MS_MILTER_PID
MS_MILTER_SOCKET="unix:$MS_T/hg.sock"
ms_start_milter "$bindir/helpgate-milter" -f -c "$MS_T/helpgate.conf" || exit 1
pid[helpgate]=$MS_MILTER_PID

# The filters are declared (MAIL_FILTER, not INPUT_MAIL_FILTER: no port uses
# them unless it names them) and each extra port names its own.
ms_free_port 'port[trivial]' || exit 1
ms_free_port 'port[helpgate]' || exit 1
SM_MC_EXTRA="MAIL_FILTER(\`trivial', \`S=unix:$MS_T/trivial.sock, F=T, T=S:30s;R:30s;E:2m')dnl
MAIL_FILTER(\`helpgate', \`S=unix:$MS_T/hg.sock, F=T, T=S:30s;R:30s;E:2m')dnl
DAEMON_OPTIONS(\`Port=${port[trivial]}, Addr=127.0.0.1, Name=MTA-trivial, InputMailFilters=trivial')dnl
DAEMON_OPTIONS(\`Port=${port[helpgate]}, Addr=127.0.0.1, Name=MTA-helpgate, InputMailFilters=helpgate')dnl"
sm_start_sendmail "" || exit 1
port[none]=$SM_PORT
for s in trivial helpgate; do
	_ms_wait_banner "${port[$s]}" 20 || { say "bench-sendmail: port ${port[$s]} ($s) not up"; exit 1; }
done
setups=(none trivial helpgate)

say "== Sendmail throughput: smtp-source -s $sessions -m $messages -l $size to $rcpt"
say "   private Sendmail $(timeout 20 "$SM_DIR/ns.sh" "$SM_BIN" -d0.1 -bt -C "$SM_DIR/sendmail.cf" </dev/null 2>/dev/null |
	sed -n '1s/^Version //p') on 127.0.0.1, relaying to smtp-sink;"
say "   setups: ${setups[*]} (milters on unix sockets); $rounds rounds, interleaved"

for s in "${setups[@]}"; do
	[ "$warmup" -gt 0 ] || break
	send_round "${port[$s]}" "$warmup" >/dev/null || exit 1
done
# Sanity: one message through each port shows the right filter ran.
declare -A rate cpu sent
for s in "${setups[@]}"; do
	send_round "${port[$s]}" 1 >/dev/null || exit 1
	sample=$(ms_list_sink | head -n 1)
	case "$s" in
	none) grep -qi '^X-Trivial:\|^X-Helpgate-' "$sample" && { say "bench-sendmail: the none port ran a filter"; exit 1; } ;;
	trivial) [ "$(ms_header "$sample" X-Trivial)" = 1 ] || { say "bench-sendmail: the trivial filter did not tag"; exit 1; } ;;
	helpgate) grep -qi '^X-Helpgate-Case' "$sample" || { say "bench-sendmail: helpgate-milter did not tag"; exit 1; } ;;
	esac
	rate[$s]=""
	cpu[$s]=0
	sent[$s]=0
done

bench_rounds "$rounds" "$messages" || exit 1
declare -A med
bench_medians
printf '\n'
say "trivial/none       = $(ratio "${med[trivial]}" "${med[none]}") (what any libmilter filter costs Sendmail)"
check_target helpgate/trivial "$(ratio "${med[helpgate]}" "${med[trivial]}")" '>=' 0.95 target
check_target helpgate/none "$(ratio "${med[helpgate]}" "${med[none]}")" '>=' 0.90 aim
clk_tck=$(getconf CLK_TCK)
for s in trivial helpgate; do
	awk -v t="${cpu[$s]}" -v hz="$clk_tck" -v n="${sent[$s]}" -v s="$s" \
		'BEGIN { printf "%-16s %.3f ms CPU/message in the milter\n", s, t / hz * 1000 / n }'
done
T_DONE=1	# a missed target is a result, not a failure to diagnose
exit 0
