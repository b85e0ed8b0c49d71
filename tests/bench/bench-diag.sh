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
# 3. The worker (issue 5: "the number of diagnoses per minute the worker
#    sustains"): helpgate-milter on its own Postfix listener and
#    helpgate-worker (fresh store, Relay straight to the bed's smtp-sink)
#    with BENCH_DIAG_CUSTOMERS (40) customers whose stored settings are
#    the bed's submission port with alice's credentials, and as many
#    whose server is the bed's silent port.  Each phase sends
#    BENCH_DIAG_CASES (200) outgoing-mail messages at once and counts the
#    rows of the diagnoses table (sqlite, read-only) until all are
#    there: diagnoses per minute from the first message sent to the last
#    row.  Phases: healthy, and a mix where every 4th case comes from a
#    silent customer (each bounded by DiagnoseTimeout), for
#    DiagnoseConcurrency 4 and 8.  All the while BENCH_DIAG_ACKS (100)
#    ordinary questions are paced at BENCH_DIAG_ACK_RATE (10/s) from
#    other senders; their acknowledgement latency (250 after DATA ->
#    acknowledgement in the sink) is compared with the same paced load
#    and no diagnoses: p95 under load / p95 idle should stay near 1.
#
# Env: BENCH_DIAG_TIMEOUT (5 s, DiagnoseTimeout), BENCH_DIAG_ROUNDS,
# BENCH_DIAG_PARALLEL, BENCH_DIAG_SECONDS, BENCH_DIAG_CASES,
# BENCH_DIAG_CUSTOMERS, BENCH_DIAG_ACKS, BENCH_DIAG_ACK_RATE,
# BENCH_BIN (bin), MS_KEEP=1.
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
# section 3's listener with helpgate-milter; the bed's own listeners (and
# the diagnoses of sections 1 and 2) have no milter
HG_SOCKET="unix:$MS_T/hg.sock"
ms_add_smtpd HG_PORT "$HG_SOCKET" || exit 1
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

# ---------------------------------------------------------------- worker
cases=${BENCH_DIAG_CASES:-200}
customers=${BENCH_DIAG_CUSTOMERS:-40}
acks=${BENCH_DIAG_ACKS:-100}
ack_rate=${BENCH_DIAG_ACK_RATE:-10}
say ""
say "== Worker: diagnoses per minute sustained ($cases outgoing-mail cases from $customers customers at once,"
say "   DiagnoseTimeout ${timeout_s} s) and acknowledgement latency ($acks questions paced at $ack_rate/s)"
for p in helpgate-milter helpgate-worker; do
	[ -x "$bindir/$p" ] || { say "no $bindir/$p: SKIPPED"; exit 1; }
done
wdb="$MS_T/worker.db"
# wconf FILE CONCURRENCY
wconf() {
	cat >"$1" <<EOF
Socket $HG_SOCKET
Database $wdb
SupportAddress support@example.com
NoticeAddress staff@staff.example.com
StaffDomain staff.example.com
Timezone UTC
Syslog no
KeywordsDir $root/conf/keywords
TemplatesDir $root/conf/templates
AckRateLimit 100000 100000
AckPerHour 10000000
PollInterval 100ms
DiagnoseCAFile $TB_CA
DiagnoseTimeout ${timeout_s}s
DiagnoseResolver $TB_DNS
ProbeAllow 127.0.0.0/8
DiagnosePorts $TB_SUBMISSION_PORT/starttls $TB_SMTPS_PORT/tls
DiagnosePerCustomerPerHour 10000
DiagnosePerHour 100000
DiagnoseConcurrency $2
Relay smtp://127.0.0.1:$MS_SINK_PORT
EOF
}
wconf "$MS_T/worker.conf" 4
MS_MILTER_SOCKET=$HG_SOCKET
ms_start_milter "$bindir/helpgate-milter" -f -c "$MS_T/worker.conf" -p "$HG_SOCKET" ||
	{ say "helpgate-milter did not start: SKIPPED"; exit 1; }
wctl() { "$bindir/helpgatectl" -c "$MS_T/worker.conf" "$@"; }
# customers h0..: healthy; s0..: the same customers' silent twins (the
# mix phase sends every 4th case from one of those)
for ((i = 0; i < customers; i++)); do
	for kind in h s; do
		port=$TB_SUBMISSION_PORT
		[ "$kind" = s ] && port=$TB_SILENT_PORT
		wctl customer add "$kind$i@cust.test" --tier standard >/dev/null &&
			wctl customer set "$kind$i@cust.test" --smtp "127.0.0.1:$port" --security starttls \
				--user "$TB_USER" --password-file "$pwfile" >/dev/null ||
			{ say "helpgatectl customer add/set failed: SKIPPED"; exit 1; }
	done
done

cat >"$MS_T/wbench.py" <<'PY'
# wbench.py PORT SINK DB CASES CUSTOMERS MIX ACKS RATE LABEL: one phase.
# MIX 0: no outgoing-mail cases (the idle baseline); otherwise every
# MIX-th case comes from a silent customer (MIX 1000000: none).
import os, smtplib, sqlite3, sys, threading, time
port, sink, db = int(sys.argv[1]), sys.argv[2], sys.argv[3]
cases, customers, mix = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
acks, rate, label = int(sys.argv[7]), float(sys.argv[8]), sys.argv[9]

def msg(frm, subject, mid, body):
    return ('From: <%s>\r\nTo: support@example.com\r\nSubject: %s\r\nMessage-ID: <%s>\r\n'
            'MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n') % (frm, subject, mid, body)

def ndiag():
    c = sqlite3.connect('file:%s?mode=ro' % db, uri=True, timeout=5)
    try:
        return c.execute('SELECT count(*), max(id) FROM diagnoses').fetchone()
    finally:
        c.close()

questions = {}
def paced():
    s = smtplib.SMTP('127.0.0.1', port)
    t0 = time.time()
    for i in range(acks):
        d = t0 + i / rate - time.time()
        if d > 0:
            time.sleep(d)
        mid = 'q-%s-%d@quick.test' % (label, i)
        frm = 'q%s%d@quick.test' % (label, i)
        s.sendmail(frm, ['support@example.com'], msg(frm, 'How do I add an alias? (%d)' % i, mid,
                   'Hello, how do I add an alias to my mailbox?'))
        questions[mid] = time.time()
    s.quit()

def burst():
    s = smtplib.SMTP('127.0.0.1', port)
    for i in range(cases):
        who = '%s%d@cust.test' % ('s' if mix and i % mix == mix - 1 else 'h', i % customers)
        s.sendmail(who, ['support@example.com'], msg(who, 'Outgoing mail is not sending (%d)' % i,
                   'o-%s-%d@cust.test' % (label, i),
                   'Hello, since this morning my outgoing mail is not sending. Outlook cannot send '
                   'any email, the messages stay in the Outbox with a send error.'))
    s.quit()

seen = {}
def scan():
    for name in os.listdir(sink):
        path = os.path.join(sink, name)
        if path in seen:
            continue
        try:
            with open(path, 'rb') as f:
                head = f.read(8192).split(b'\r\n\r\n', 1)[0].split(b'\n\n', 1)[0]
            st = os.stat(path)
        except OSError:
            continue
        irt = None
        for line in head.splitlines():
            if line.lower().startswith(b'in-reply-to:'):
                irt = line.split(b':', 1)[1].strip().strip(b'<>').decode()
        if irt is None:
            if time.time() - st.st_mtime > 2:
                seen[path] = None
            continue
        seen[path] = (irt, st.st_mtime)

def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]

for name in os.listdir(sink):        # earlier phases' mail is not this phase's
    seen[os.path.join(sink, name)] = None
base, base_max = ndiag()
base_max = base_max or 0
t0 = time.time()
tp = threading.Thread(target=paced)
tp.start()
tb = None
if mix:
    tb = threading.Thread(target=burst)
    tb.start()
done_at, n, last = None, 0, (0, t0)
end = t0 + 120 + cases * 2
while time.time() < end:
    if mix and done_at is None:
        n = ndiag()[0] - base
        if n >= cases:
            done_at = time.time()
    scan()
    got = sum(1 for v in seen.values() if v and v[0] in questions)
    if not tp.is_alive() and got >= acks and (not mix or done_at):
        break
    time.sleep(0.1)
tp.join()
if tb:
    tb.join()
lat = [v[1] - questions[v[0]] for v in seen.values() if v and v[0] in questions]
if mix:
    c = sqlite3.connect('file:%s?mode=ro' % db, uri=True, timeout=5)
    verdicts = c.execute('SELECT verdict, count(*) FROM diagnoses WHERE id > ? GROUP BY verdict ORDER BY 2 DESC',
                         (base_max,)).fetchall()
    first, lastc = c.execute('SELECT min(created), max(created) FROM diagnoses WHERE id > ?', (base_max,)).fetchone()
    c.close()
    span = (done_at or time.time()) - t0
    print('DIAG %d %.1f %.0f %s' % (n, span, n / span * 60 if span else 0,
          ','.join('%s:%d' % (v or 'skipped', k) for v, k in verdicts)))
if lat:
    print('ACK %d %.3f %.3f %.3f' % (len(lat), pct(lat, 50), pct(lat, 95), max(lat)))
else:
    print('ACK 0 nan nan nan')
PY

# phase LABEL MIX: one wbench.py run; sets P_DIAG and P_ACK
phase() {
	local out
	out=$(python3 "$MS_T/wbench.py" "$HG_PORT" "$MS_T/sink" "$wdb" "$cases" "$customers" "$2" \
		"$acks" "$ack_rate" "$1" 2>>"$MS_T/wbench.err")
	P_DIAG=$(printf '%s\n' "$out" | sed -n 's/^DIAG //p')
	P_ACK=$(printf '%s\n' "$out" | sed -n 's/^ACK //p')
}
# start_worker CONCURRENCY
start_worker() {
	wconf "$MS_T/worker-$1.conf" "$1"
	ms_spawn WORKER_PID "$bindir/helpgate-worker" -f -c "$MS_T/worker-$1.conf"
}

printf '%-22s %6s %8s %12s %9s %9s %9s %11s  %s\n' phase cases "wall s" "diagnoses/min" "ack p50" "ack p95" "ack max" "p95/idle" verdicts
start_worker 4
phase idle 0
read -r an idle50 idle95 idlemax <<<"$P_ACK"
[ "${an:-0}" -ge "$acks" ] || say "WARNING: only ${an:-0} of $acks questions acknowledged"
printf '%-22s %6s %8s %12s %9s %9s %9s %11s\n' "no diagnoses (c=4)" - - - "$idle50" "$idle95" "$idlemax" 1.00
for conc in 4 8; do
	if [ "$conc" != 4 ]; then
		ms_stop_pid "$WORKER_PID"
		start_worker "$conc"
	fi
	for mixname in healthy mix; do
		m=1000000
		[ "$mixname" = mix ] && m=4
		phase "$mixname$conc" "$m"
		read -r dn ds dpm verdicts <<<"$P_DIAG"
		read -r an a50 a95 amax <<<"$P_ACK"
		[ "${an:-0}" -ge "$acks" ] || say "WARNING: only ${an:-0} of $acks questions acknowledged"
		label="$mixname (c=$conc)"
		[ "$mixname" = mix ] && label="1/4 silent (c=$conc)"
		printf '%-22s %6s %8s %12s %9s %9s %9s %11s  %s\n' "$label" "${dn:-?}" "${ds:-?}" "${dpm:-?}" \
			"$a50" "$a95" "$amax" "$(awk -v a="$a95" -v b="$idle95" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')" \
			"${verdicts:-}"
		[ "${dn:-0}" -ge "$cases" ] || say "WARNING: only ${dn:-0} of $cases diagnoses recorded (see $MS_T/helpgate-worker.log)"
	done
done
say "(wall s: first message sent -> last diagnosis row; each silent case holds one of the"
say " DiagnoseConcurrency slots for DiagnoseTimeout; p95/idle: ack p95 under diagnosis load / without)"
ms_stop_pid "$WORKER_PID"
exit 0
