#!/usr/bin/env bash
# tests/bench/bench-diag.sh [BINDIR] - the diagnosis (helpgatectl diagnose,
# shared/diag*.c) against the prober's test bed (tests/lib/testbed.sh) on
# loopback.  Called by tests/bench/run.sh; runs alone too.  Prints figures
# and ratios only: nothing here is a pass/fail timing assertion.
#
# 1. Time to a verdict, median of BENCH_DIAG_ROUNDS (5) runs, wall time of
#    the whole helpgatectl process, for
#      healthy  the bed's STARTTLS submission port, alice's credentials,
#               MAIL FROM and RCPT TO (the alternatives start too and are
#               cancelled when the primary is ok);
#      refused  a closed port, with the alternative found and verified;
#      silent   a server that accepts and never greets, while the
#               alternatives include another silent port and a connect
#               that never completes: each of these alone may take the
#               whole DiagnoseTimeout, so the sum of the bounds is
#               (1 + candidates) x timeout; the ratio elapsed/timeout
#               shows the call is bounded by the timeout, not that sum.
# 2. Diagnoses per minute sustained: BENCH_DIAG_PARALLEL (4) loops of
#    helpgatectl diagnose against the healthy port for BENCH_DIAG_SECONDS
#    (30) s; every run must end with verdict ok to count.
#
# Env: BENCH_DIAG_TIMEOUT (5 s, DiagnoseTimeout), BENCH_DIAG_ROUNDS,
# BENCH_DIAG_PARALLEL, BENCH_DIAG_SECONDS, BENCH_BIN (bin), MS_KEEP=1.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bindir=${1:-${BENCH_BIN:-$root/bin}}
bindir=$(cd "$bindir" && pwd)
ctl="$bindir/helpgatectl"
timeout_s=${BENCH_DIAG_TIMEOUT:-5}
rounds=${BENCH_DIAG_ROUNDS:-5}
parallel=${BENCH_DIAG_PARALLEL:-4}
seconds=${BENCH_DIAG_SECONDS:-30}
. "$root/tests/lib/mailstack.sh"
. "$root/tests/lib/testbed.sh"

say() { printf '%s\n' "$*"; }
[ -x "$ctl" ] || { say "bench-diag: no $ctl (make programs)"; exit 1; }
for c in python3 dovecot postfix dnsmasq; do
	command -v "$c" >/dev/null || { say "bench-diag: $c missing (make deps)"; exit 1; }
done

median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
		END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2];
		      else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ms_init || exit 1
tb_start_bed || { say "bench-diag: the test bed did not start"; exit 1; }
tb_start_dns || { say "bench-diag: dnsmasq did not start"; exit 1; }

# a port whose connects never complete (full accept queue, see test_diagnose.sh)
ms_free_port FULL_PORT || exit 1
cat >"$MS_T/tb-fullbacklog.py" <<'PY'
import socket, sys, time
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", int(sys.argv[1])))
l.listen(0)
held = []
for i in range(3):
    c = socket.socket()
    c.setblocking(False)
    try:
        c.connect(("127.0.0.1", int(sys.argv[1])))
    except BlockingIOError:
        pass
    held.append(c)
time.sleep(3600)
PY
ms_spawn FULL_PID python3 "$MS_T/tb-fullbacklog.py" "$FULL_PORT"

base="SupportAddress support@example.com
Database $MS_T/diag.db
Syslog no
KeywordsDir $root/conf/keywords
TemplatesDir $root/conf/templates
DiagnoseCAFile $TB_CA
DiagnoseTimeout ${timeout_s}s
DiagnoseResolver $TB_DNS
ProbeAllow 127.0.0.0/8"
conf="$MS_T/diag.conf"
printf '%s\nDiagnosePorts %s/starttls %s/tls\n' "$base" "$TB_SUBMISSION_PORT" "$TB_SMTPS_PORT" >"$conf"
conf_slow="$MS_T/diag-slow.conf"
printf '%s\nDiagnosePorts %s/starttls %s/starttls %s/tls %s/starttls\n' "$base" \
	"$TB_SILENT_PORT" "$FULL_PORT" "$TB_SILENT_PORT" "$TB_SUBMISSION_PORT" >"$conf_slow"
slow_candidates=4
pwfile="$MS_T/pw"
(umask 077 && printf '%s\n' "$TB_PASS" >"$pwfile")
CRED=(--user "$TB_USER" --password-file "$pwfile")

# one CONF ARGS...: one diagnosis; prints "WALL_MS VERDICT ALT_FOUND INTERNAL_MS".
one() {
	local c=$1 t0 t1 out
	shift
	t0=$(date +%s%N)
	out=$("$ctl" -c "$c" diagnose "$@" --json 2>/dev/null)
	t1=$(date +%s%N)
	python3 -c '
import json, sys
try:
    d = json.loads(sys.stdin.read())["smtp"]
    print(sys.argv[1], d["verdict"], "yes" if d.get("alternative") else "no", d["duration_ms"])
except Exception:
    print(sys.argv[1], "-", "no", 0)' "$(((t1 - t0) / 1000000))" <<<"$out"
}

say "== Diagnosis: time to a verdict (DiagnoseTimeout ${timeout_s} s, median of $rounds, wall time of helpgatectl)"
say "   $(nproc) CPUs; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
t0=$(date +%s%N)
"$ctl" -c "$conf" config check >/dev/null 2>&1
say "   process baseline (helpgatectl config check): $((($(date +%s%N) - t0) / 1000000)) ms; engine ms = the report's duration_ms"
printf '%-9s %10s %12s %-20s %-11s %s\n' case "wall ms" "engine ms" verdict alternative "elapsed/timeout"
declare -A wall
for case in healthy refused silent; do
	ws=() es=() v=- a=no
	for ((i = 0; i < rounds; i++)); do
		case $case in
		healthy) r=$(one "$conf" --smtp "127.0.0.1:$TB_SUBMISSION_PORT" --security starttls \
			"${CRED[@]}" --from "$TB_USER" --rcpt "$TB_USER") ;;
		refused) r=$(one "$conf" --smtp "127.0.0.1:$TB_CLOSED_PORT" --security starttls "${CRED[@]}") ;;
		silent) r=$(one "$conf_slow" --smtp "127.0.0.1:$TB_SILENT_PORT" --security none "${CRED[@]}") ;;
		esac
		read -r w v a e <<<"$r"
		ws+=("$w")
		es+=("$e")
	done
	wall[$case]=$(median "${ws[@]}")
	printf '%-9s %10s %12s %-20s %-11s %s\n' "$case" "${wall[$case]}" "$(median "${es[@]}")" "$v" "$a" \
		"$(awk -v w="${wall[$case]}" -v t="$timeout_s" 'BEGIN { printf "%.2f", w / (t * 1000) }')"
done
awk -v w="${wall[silent]}" -v t="$timeout_s" -v n="$slow_candidates" 'BEGIN {
	printf "silent: %.2f x DiagnoseTimeout, against %d x for the sum of the %d bounded probes (primary + %d candidates: silent, connect never completing, silent, working)\n",
	    w / (t * 1000), n + 1, n + 1, n }'

say ""
say "== Diagnoses sustained: $parallel parallel loops of helpgatectl diagnose (healthy port, credentials, MAIL/RCPT) for $seconds s"
cat >"$MS_T/loop.sh" <<'SH'
#!/usr/bin/env bash
# loop.sh CTL CONF PORT USER PWFILE END_EPOCH OUT: diagnoses until END_EPOCH; one verdict a line in OUT
ctl=$1 conf=$2 port=$3 user=$4 pw=$5 end=$6 out=$7
while [ "$(date +%s)" -lt "$end" ]; do
	t0=$(date +%s%N)
	"$ctl" -c "$conf" diagnose --smtp "127.0.0.1:$port" --security starttls --user "$user" \
		--password-file "$pw" --from "$user" --rcpt "$user" --json >"$out.json" 2>/dev/null
	t1=$(date +%s%N)
	v=$(grep -o '"verdict":"[a-z_]*"' "$out.json" | head -n 1)
	echo "${v#*:} $(((t1 - t0) / 1000000))" | tr -d '"' >>"$out"
	case "$v" in *'"ok"') ;; *) cp "$out.json" "$out.fail.$t0" ;; esac
done
SH
chmod 755 "$MS_T/loop.sh"
t0=$(date +%s%N)
end=$(($(date +%s) + seconds))
pids=()
for ((i = 0; i < parallel; i++)); do
	ms_spawn lp "$MS_T/loop.sh" "$ctl" "$conf" "$TB_SUBMISSION_PORT" "$TB_USER" "$pwfile" "$end" "$MS_T/loop.$i.out"
	pids+=("$lp")
done
for p in "${pids[@]}"; do wait "$p"; done
t1=$(date +%s%N)
okn=$(cat "$MS_T"/loop.*.out 2>/dev/null | grep -c '^ok ')
alln=$(cat "$MS_T"/loop.*.out 2>/dev/null | wc -l)
# shellcheck disable=SC2046
say "wall ms per diagnosis under this load: median $(median $(cut -d' ' -f2 "$MS_T"/loop.*.out)), max $(cut -d' ' -f2 "$MS_T"/loop.*.out | sort -g | tail -n 1)"
awk -v ok="$okn" -v all="$alln" -v a="$t0" -v b="$t1" -v p="$parallel" 'BEGIN {
	s = (b - a) / 1e9
	printf "%d diagnoses in %.1f s (%d ok): %.0f diagnoses/minute sustained, %.2f s each per loop\n",
	    all, s, ok, ok / s * 60, (ok ? s * p / ok : 0) }'
if [ "$alln" = 0 ] || [ "$okn" != "$alln" ]; then
	say "WARNING: $((alln - okn)) of $alln diagnoses did not end ok:"
	for f in "$MS_T"/loop.*.fail.*; do
		[ -f "$f" ] || continue
		python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))["smtp"]
bad = [s for s in d["steps"] if not s["ok"]]
print("  ", d["verdict"], "|", bad[0]["name"] + ": " + str(bad[0]["detail"]) if bad else "")' "$f" 2>/dev/null ||
			sed 's/^/   /' "$f" | head -n 3
	done
fi
exit 0
