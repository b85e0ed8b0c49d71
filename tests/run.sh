#!/usr/bin/env bash
# tests/run.sh BUILD_DIR - the "make check" runner.
#
# Runs, one after the other (the machine has two cores, the integration
# tests each run a private Postfix):
#   0. tests/lib/preflight.sh: every tool the tests use is there and can do
#      what they ask (swaks with TLS, ...); if not, nothing else runs
#   1. every unit test binary BUILD_DIR/tests/test_*
#   2. every tests/integration/test_*.sh and tests/milter/*.sh, with the
#      absolute path of BUILD_DIR/bin as $1; then the suites that go through
#      the store most once more with HG_TEST_BACKEND=postgresql
#   3. the fuzz regression: build/fuzz/fuzz-msg (if built) executes each
#      file of tests/fuzz/corpus and tests/data once (10 s at most each), build/fuzz/fuzz-mailhints
#      each of tests/fuzz/corpus-mailhints and tests/data, build/fuzz/fuzz-spool
#      each of tests/fuzz/corpus-spool, build/fuzz/fuzz-authres and
#      build/fuzz/fuzz-mailcmd each of theirs; one pass or
#      failure per target.
# Every suite ends its output with "N passed, N failed"; this script adds
# them up and ends with one such line for everything.  A suite that exits
# non-zero, hits the time limit or prints no summary line counts one more
# failure.  Output of each suite is kept in BUILD_DIR/test-logs/ and its
# tail printed when the suite fails.
#
# Env: TEST_TIMEOUT (seconds per suite, default 600), TEST_VERBOSE=1 (print
# every suite's output), TEST_FILTER (substring: run only matching suites).
set -u

build=${1:?usage: tests/run.sh BUILD_DIR}
cd "$(dirname "$0")/.." || exit 1
root=$(pwd)
[ -d "$build" ] || { echo "tests/run.sh: no build directory $build"; exit 1; }
build=$(cd "$build" && pwd)

# LeakSanitizer works here as root (ptrace is allowed); UBSan stops at the
# first error so that a report cannot scroll by unnoticed.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LC_ALL=C.UTF-8
export CI=${CI:-}

# One directory per run, so that two runs at once (a developer and a
# helper, say) never delete each other's logs; test-logs points at the last.
logdir="$build/test-logs.$$"
rm -rf "$logdir"
mkdir -p "$logdir"
[ -L "$build/test-logs" ] || rm -rf "$build/test-logs"
ln -sfn "test-logs.$$" "$build/test-logs" 2>/dev/null || true
find "$build" -maxdepth 1 -name 'test-logs.*' -mmin +120 -exec rm -rf {} + 2>/dev/null
mkdir -p "$logdir"
timeout_s=${TEST_TIMEOUT:-600}
total_pass=0
total_fail=0
failed_suites=()
start_all=$SECONDS

# run_suite NAME CMD...: run one suite, add its counts.
run_suite() {
	local name=$1 log rc line p f note t0 dt
	shift
	case "$name" in *"${TEST_FILTER:-}"*) ;; *) return 0 ;; esac
	log="$logdir/$(printf '%s' "$name" | tr '/' '_').log"
	t0=$(date +%s.%N)
	timeout -k 10 "$timeout_s" "$@" </dev/null >"$log" 2>&1
	rc=$?
	dt=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
	note=""
	if [ -n "$line" ]; then
		p=${line%% passed*}
		f=${line#*, }; f=${f%% failed}
	else
		p=0 f=0
	fi
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		f=$((f + 1)); note=" + timed out after ${timeout_s}s"
	elif [ -z "$line" ]; then
		f=$((f + 1)); note=" + exit $rc without a summary line"
	elif [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		f=1; note=" + exit $rc"
	fi
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	if [ "$f" = 0 ]; then
		printf '  ok    %-40s %4d passed  (%ss)\n' "$name" "$p" "$dt"
		[ "${TEST_VERBOSE:-0}" = 1 ] && sed 's/^/        | /' "$log"
	else
		printf '  FAIL  %-40s %4d passed, %d failed%s  (%ss)\n' "$name" "$p" "$f" "$note" "$dt"
		failed_suites+=("$name")
		if [ "${TEST_VERBOSE:-0}" = 1 ]; then
			sed 's/^/        | /' "$log"
		else
			echo "        --- $log"
			if [ "$(wc -l <"$log")" -gt 40 ]; then
				grep -E '^(not ok|FAIL)' "$log" | head -n 20 | sed 's/^/        | /'
				echo "        | ..."
			fi
			tail -n 40 "$log" | sed 's/^/        | /'
		fi
	fi
}

# fuzz_regression FUZZ [DIR...]: run a fuzz target over every file of the
# DIRs (default: tests/fuzz/corpus and tests/data) once; with
# FUZZ_REGRESSION_TIMEOUT set, an input taking longer (seconds) fails it.
fuzz_regression() {
	local fuzz=$1 files=()
	local d dirs
	shift
	dirs=("$@")
	[ "${#dirs[@]}" = 0 ] && dirs=(tests/fuzz/corpus tests/data)
	for d in "${dirs[@]}"; do
		[ -d "$d" ] || continue
		while IFS= read -r -d '' f; do files+=("$f"); done < <(find "$d" -type f -print0 | sort -z)
	done
	if [ "${#files[@]}" = 0 ]; then
		echo "no inputs in ${dirs[*]}"
		echo "1 passed, 0 failed"
		return 0
	fi
	# Files as arguments: libFuzzer executes each once and mutates nothing.
	if printf '%s\0' "${files[@]}" |
	    xargs -0 "$fuzz" -runs=0 ${FUZZ_REGRESSION_TIMEOUT:+-timeout=$FUZZ_REGRESSION_TIMEOUT}; then
		echo "${#files[@]} inputs ran clean"
		echo "1 passed, 0 failed"
	else
		echo "0 passed, 1 failed"
		return 1
	fi
}

# Every tool the tests use, and what it must be able to do: a missing
# package is named here, at once, not as a failed check deep in a suite.
echo "== preflight"
if ! bash tests/lib/preflight.sh >"$logdir/preflight.log" 2>&1; then
	grep -v '^[0-9]* passed' "$logdir/preflight.log"
	echo "preflight failed: nothing was run (make deps installs what is missing)"
	echo "0 passed, 1 failed"
	exit 1
fi
sed -n 's/^preflight: /  /p' "$logdir/preflight.log"

echo "== unit tests ($build/tests)"
n=0
for t in "$build"/tests/test_*; do
	[ -f "$t" ] && [ -x "$t" ] || continue
	case "$t" in *.o | *.d) continue ;; esac
	run_suite "unit/$(basename "$t")" "$t"
	n=$((n + 1))
done
[ "$n" = 0 ] && echo "  (no unit test binaries)"

echo "== integration and milter tests (bin: $build/bin)"
n=0
for s in tests/integration/test_*.sh tests/milter/*.sh; do
	[ -f "$s" ] || continue
	run_suite "${s#tests/}" bash "$root/$s" "$build/bin"
	n=$((n + 1))
done
[ "$n" = 0 ] && echo "  (no integration scripts)"

# The suites that go through the store most, again on PostgreSQL (each
# starts its own cluster: tests/lib/pg.sh); test_store_pg.sh and
# test_multihost.sh above are PostgreSQL's own.
echo "== the same suites on PostgreSQL"
for s in test_worker test_outbox test_sla test_mailcmd test_digest test_report test_security \
	test_autodiagnose test_mailbox; do
	run_suite "pg/$s.sh" env HG_TEST_BACKEND=postgresql \
		bash "$root/tests/integration/$s.sh" "$build/bin"
done

echo "== fuzz regression"
if [ -x build/fuzz/fuzz-msg ]; then
	export -f fuzz_regression
	# The adversarial shapes (tests/fuzz/corpus/adv-*) each within 10 s,
	# sanitizers and a busy machine included (linear: well under 1 s).
	run_suite "fuzz/fuzz-msg regression" env FUZZ_REGRESSION_TIMEOUT=10 \
	    bash -c 'fuzz_regression "$1"' _ "$root/build/fuzz/fuzz-msg"
else
	echo "  (build/fuzz/fuzz-msg not built: skipped)"
fi
if [ -x build/fuzz/fuzz-mailhints ]; then
	export -f fuzz_regression
	run_suite "fuzz/fuzz-mailhints regression" bash -c 'fuzz_regression "$@"' _ \
	    "$root/build/fuzz/fuzz-mailhints" tests/fuzz/corpus-mailhints tests/data
else
	echo "  (build/fuzz/fuzz-mailhints not built: skipped)"
fi
if [ -x build/fuzz/fuzz-spool ]; then
	export -f fuzz_regression
	run_suite "fuzz/fuzz-spool regression" bash -c 'fuzz_regression "$@"' _ \
	    "$root/build/fuzz/fuzz-spool" tests/fuzz/corpus-spool
else
	echo "  (build/fuzz/fuzz-spool not built: skipped)"
fi

if [ -x build/fuzz/fuzz-authres ]; then
	export -f fuzz_regression
	run_suite "fuzz/fuzz-authres regression" bash -c 'fuzz_regression "$@"' _ \
	    "$root/build/fuzz/fuzz-authres" tests/fuzz/corpus-authres
else
	echo "  (build/fuzz/fuzz-authres not built: skipped)"
fi

if [ -x build/fuzz/fuzz-mailcmd ]; then
	export -f fuzz_regression
	run_suite "fuzz/fuzz-mailcmd regression" bash -c 'fuzz_regression "$@"' _ \
	    "$root/build/fuzz/fuzz-mailcmd" tests/fuzz/corpus-mailcmd
else
	echo "  (build/fuzz/fuzz-mailcmd not built: skipped)"
fi

echo "== $((SECONDS - start_all))s; logs in $logdir"
if [ "${#failed_suites[@]}" != 0 ]; then
	echo "failed suites: ${failed_suites[*]}"
fi
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]
