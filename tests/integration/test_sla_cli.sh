#!/usr/bin/env bash
# test_sla_cli.sh BINDIR - "helpgatectl sla due" against a throw-away config
# in Europe/Kyiv with a holiday: business and 24x7 deadlines as ISO 8601
# with the zone's offset, and the exit codes for bad input.  Starts
# nothing.  Prints "ok - ..." / "not ok - ..." per check and
# "N passed, N failed"; exits 1 on any failure.
set -u

bindir=${1:?usage: test_sla_cli.sh BINDIR}
ctl="$bindir/helpgatectl"
[ -x "$ctl" ] || { echo "not ok - $ctl is not an executable"; echo "0 passed, 1 failed"; exit 1; }

tmp=$(mktemp -d /tmp/hg-test-sla-cli.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

passed=0
failed=0
ok()     { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/#   /'; }

# run ARGS...: helpgatectl with the test config; sets $out, $err, $rc.
run() {
	"$ctl" -c "$tmp/helpgate.conf" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	out=$(cat "$tmp/out")
	err=$(cat "$tmp/err")
}

# due WANT DESCRIPTION ARGS...: "sla due ARGS" prints WANT and exits 0.
due() {
	local want=$1 desc=$2
	shift 2
	run sla due "$@"
	if [ "$rc" -eq 0 ] && [ "$out" = "$want" ]; then
		ok "$desc"
	else
		not_ok "$desc (exit $rc, want $want)" "$out$err"
	fi
}

# expect_rc WANT DESCRIPTION [NEEDLE]: the last run exited WANT (and its
# stderr holds NEEDLE).
expect_rc() {
	if [ "$rc" -ne "$1" ]; then
		not_ok "$2 (exit $rc, want $1)" "$out$err"
	elif [ -n "${3:-}" ] && [[ "$err" != *"$3"* ]]; then
		not_ok "$2 (no \"$3\")" "$err"
	else
		ok "$2"
	fi
}

cat >"$tmp/helpgate.conf" <<EOF
# test config: default business week mon-fri 09:00-18:00, P1 24x7
Timezone		Europe/Kyiv
SupportAddress		support@example.com
Database		$tmp/helpgate.db
Syslog			no
Holiday			2026-12-25
EOF
unset HELPGATE_CONF

# standard: P2 first=4h resolve=3d, P3 first=1d; trial P1 first=30m resolve=4h.
due 2026-11-30T16:00:00+02:00 "Monday noon + 4 business hours" \
    --tier standard --urgency P2 --at 2026-11-30T12:00:00+02:00
due 2026-12-07T13:00:00+02:00 "arriving on Saturday: Monday 09:00 + 4 h" \
    --tier standard --urgency P2 --at 2026-12-05T10:30:00+02:00
due 2026-12-28T11:00:00+02:00 "holiday Friday 25 December is skipped" \
    --tier standard --urgency P2 --at 2026-12-24T16:00:00+02:00
due 2026-12-01T00:15:00+02:00 "P1 runs around the clock, across midnight; printed in Timezone" \
    --tier trial --urgency P1 --at 2026-11-30T21:45:00Z --kind first
due 2026-12-03T12:00:00+02:00 "--kind resolve, 3d = 27 business hours" \
    --tier standard --urgency P2 --at 2026-11-30T12:00:00+02:00 --kind resolve
due 2026-12-01T12:00:00+02:00 "1d = 9 business hours; a time without offset is in Timezone" \
    --tier standard --urgency P3 --at 2026-11-30T12:00
due 2026-03-30T13:00:00+03:00 "across the spring DST change" \
    --tier standard --urgency p2 --at 2026-03-27T18:30:00+02:00
HELPGATE_NOW=2026-12-04T17:00:00+02:00 due 2026-12-07T12:00:00+02:00 \
    "--at defaults to now (HELPGATE_NOW)" --tier standard --urgency P2

run sla due --tier gold --urgency P2 --at 2026-11-30T12:00:00+02:00
expect_rc 1 "an unknown tier fails" "valid tiers: enterprise, premium, standard, trial, unknown"
run sla due --tier standard --urgency P5 --at 2026-11-30T12:00:00+02:00
expect_rc 2 "urgency P5 is a usage error" "--urgency wants P1, P2, P3 or P4"
run sla due --tier standard --urgency high --at 2026-11-30T12:00:00+02:00
expect_rc 2 "urgency \"high\" is a usage error"
run sla due --tier standard --urgency P2 --at yesterday
expect_rc 2 "a malformed --at is a usage error" "--at wants an ISO 8601 time"
run sla due --tier standard --urgency P2 --at 2026-13-01T12:00:00+02:00
expect_rc 2 "month 13 is a usage error"
run sla due --tier standard --urgency P2 --at @9223372036854775807
expect_rc 2 "a time past the year 9999 is a usage error"
run sla due --tier standard --urgency P2 --kind last --at 2026-11-30T12:00:00+02:00
expect_rc 2 "--kind last is a usage error"
run sla due --urgency P2
expect_rc 2 "--tier is required"
run sla due --help
expect_rc 0 "sla due --help exits 0"
[[ "$out" == *"--urgency P1..P4"* ]] && ok "--help shows the usage" || not_ok "--help shows the usage" "$out"

printf 'SupportAddress support@example.com\nBusinessHours mon 18:00-09:00\n' >"$tmp/bad.conf"
"$ctl" -c "$tmp/bad.conf" sla due --tier standard --urgency P2 >"$tmp/out" 2>"$tmp/err"
rc=$?; out=$(cat "$tmp/out"); err=$(cat "$tmp/err")
expect_rc 1 "a bad BusinessHours line fails, with file and line" "$tmp/bad.conf:2: BusinessHours"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
