# shellcheck shell=bash
# tests/bench/lib.sh - what the benchmarks share: medians, CPU ticks, one
# timed round of smtp-source into an MTA that relays to mailstack.sh's
# smtp-sink, targets.  Source after tests/lib/mailstack.sh; the caller sets
# sessions, size, rcpt, sender and missed=0.
#
# send_round waits for the MTA's queue with bench_drained N, which the
# caller may redefine (the default is Postfix's: ms_wait_delivered).

bench_drained() { ms_wait_delivered "$1" 30 >/dev/null; }

say() { printf '%s\n' "$*"; }

# median V...: the median of numbers.
median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
		END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2];
		      else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# cpu_ticks PID: utime + stime of a process (all threads), in clock ticks.
cpu_ticks() {
	sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# count_sink: SINK_N = files in the sink.  A glob, not find | wc: the poll
# must not steal CPU from the two cores being measured.
count_sink() {
	local files=("$MS_T"/sink/*)
	SINK_N=${#files[@]}
	[ -e "${files[0]}" ] || SINK_N=0
}

# send_round PORT N: N messages through 127.0.0.1:PORT, timed until all are
# in the sink (complete) and the queue is empty; prints messages/s.
send_round() {
	local port=$1 n=$2 t0 t1 limit
	find "$MS_T/sink" -type f -delete
	t0=$(date +%s.%N)
	if ! smtp-source -s "$sessions" -m "$n" -l "$size" -M client.test \
		-S "Cannot log in to my account" -t "$rcpt" -f "$sender" \
		"127.0.0.1:$port" >>"$MS_T/smtp-source.log" 2>&1; then
		ms_log "smtp-source failed against port $port (see $MS_T/smtp-source.log)"
		tail -n 5 "$MS_T/smtp-source.log" >&2
		return 1
	fi
	limit=$((SECONDS + 60 + n / 10))
	while count_sink && [ "$SINK_N" -lt "$n" ]; do
		if [ "$SECONDS" -gt "$limit" ]; then
			ms_log "only $SINK_N of $n messages arrived"
			ms_diag
			return 1
		fi
		sleep 0.05
	done
	while [ -n "$(_ms_sink_open_files)" ]; do sleep 0.01; done
	t1=$(date +%s.%N)
	bench_drained "$n" || return 1
	awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f\n", n / (b - a) }'
}

# check_target NAME VALUE OP LIMIT WORD: print and remember a missed target.
check_target() {
	local verdict
	if awk -v v="$2" -v l="$4" -v op="$3" 'BEGIN { exit !(op == ">=" ? v >= l : v <= l) }'; then
		verdict=ok
	else
		verdict=MISSED
		missed=$((missed + 1))
	fi
	printf '%-18s = %s (%s %s %s): %s\n' "$1" "$2" "$5" "$3" "$4" "$verdict"
}

# ratio A B: A / B with two decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f\n", a / b }'; }

# bench_rounds ROUNDS MESSAGES: interleaved rounds over the setups named in
# the array setups, sending to port[SETUP] and adding the CPU time of
# pid[SETUP] (when set); appends each rate to rate[SETUP], counts sent[SETUP]
# and cpu[SETUP] (all associative arrays of the caller), prints a table.
bench_rounds() {
	local rounds=$1 messages=$2 n r i s c0 v
	printf '%-8s' round; printf ' %10s' "${setups[@]}"; printf '   (messages/s)\n'
	n=${#setups[@]}
	for ((r = 1; r <= rounds; r++)); do
		declare -A this=()
		for ((i = 0; i < n; i++)); do
			s=${setups[$(((i + r - 1) % n))]}
			c0=0
			[ -n "${pid[$s]:-}" ] && c0=$(cpu_ticks "${pid[$s]}")
			v=$(send_round "${port[$s]}" "$messages") || return 1
			if [ -n "${pid[$s]:-}" ]; then
				cpu[$s]=$((cpu[$s] + $(cpu_ticks "${pid[$s]}") - c0))
			fi
			sent[$s]=$((sent[$s] + messages))
			this[$s]=$v
			rate[$s]="${rate[$s]} $v"
		done
		printf '%-8s' "$r"
		for s in "${setups[@]}"; do printf ' %10s' "${this[$s]}"; done
		printf '\n'
	done
}

# bench_medians: med[SETUP] = the median of rate[SETUP] for each setup,
# printed as the table's "median" row.
bench_medians() {
	local s
	printf '%-8s' median
	for s in "${setups[@]}"; do
		# shellcheck disable=SC2086
		med[$s]=$(median ${rate[$s]})
		printf ' %10s' "${med[$s]}"
	done
}
