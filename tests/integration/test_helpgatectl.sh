#!/usr/bin/env bash
# test_helpgatectl.sh BINDIR - drives the built helpgatectl against a
# throw-away config and database: customers (add, list, JSON, remove,
# CSV import all-or-nothing), tier checks, cases, case show, config check
# and exit codes.  Uses only BINDIR/helpgatectl, bash and python3 (to
# validate JSON).  Prints "ok - ..." / "not ok - ..." per check and
# "N passed, N failed"; exits 1 on any failure.
set -u

bindir=${1:?usage: test_helpgatectl.sh BINDIR}
ctl="$bindir/helpgatectl"
[ -x "$ctl" ] || { echo "not ok - $ctl is not an executable"; echo "0 passed, 1 failed"; exit 1; }

tmp=$(mktemp -d /tmp/hg-test-ctl.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

passed=0
failed=0
ok()     { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/#   /'; }

# run ARGS...: runs helpgatectl with the test config; sets $out (stdout),
# $err (stderr), $rc.
run() {
	"$ctl" -c "$tmp/helpgate.conf" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	out=$(cat "$tmp/out")
	err=$(cat "$tmp/err")
}

# expect_rc WANT DESCRIPTION
expect_rc() {
	if [ "$rc" -eq "$1" ]; then ok "$2"; else not_ok "$2 (exit $rc, want $1)" "$out$err"; fi
}

# expect_in HAYSTACK NEEDLE DESCRIPTION
expect_in() {
	case "$1" in
	*"$2"*) ok "$3" ;;
	*) not_ok "$3 (no \"$2\")" "$1" ;;
	esac
}

expect_not_in() {
	case "$1" in
	*"$2"*) not_ok "$3 (found \"$2\")" "$1" ;;
	*) ok "$3" ;;
	esac
}

# expect_json DESCRIPTION: $out must be valid JSON.
expect_json() {
	if printf '%s' "$out" | python3 -m json.tool >/dev/null 2>"$tmp/json.err"; then
		ok "$1"
	else
		not_ok "$1" "$out
$(cat "$tmp/json.err")"
	fi
}

# json_eval EXPR: evaluates a Python expression over the parsed $out (as j).
json_eval() {
	printf '%s' "$out" | python3 -c "import json, sys; j = json.load(sys.stdin); print($1)" 2>&1
}

# The keys of conf/helpgate.conf, with the database in the temp dir.
cat >"$tmp/helpgate.conf" <<EOF
# test config
Socket			inet:8891@127.0.0.1
Database		$tmp/helpgate.db
SupportAddress		support@example.com
StaffDomain		staff.example.com
StaffAddress		helpdesk@example.com
Relay			smtp://127.0.0.1:25
Timezone		Europe/Kyiv
Syslog			no
SyslogFacility		mail
MaxBodyScan		256K
StoreTimeout		1s
KeywordsDir		keywords
TemplatesDir		templates
SLA trial	P1	first=30m	resolve=4h
SLA enterprise	P1	first=30m	resolve=4h
EOF

# Fixed "now" so that watch times are known.
export HELPGATE_NOW=2026-11-30T09:00:00+02:00
unset NO_COLOR HELPGATE_CONF

# ---- config check ----
run config check
expect_rc 0 "config check accepts the test config"
expect_in "$out" "config OK: $tmp/helpgate.conf" "config check names the file"

printf 'SupportAddress support@example.com\nNoSuchKey yes\nDatabase %s/x.db\nMaxBodyScan lots\n' "$tmp" >"$tmp/bad.conf"
"$ctl" -c "$tmp/bad.conf" config check >"$tmp/out" 2>&1
rc=$?; out=$(cat "$tmp/out"); err=""
expect_rc 1 "config check refuses an unknown key"
expect_in "$out" "$tmp/bad.conf:2:" "config check names line 2"
expect_in "$out" "$tmp/bad.conf:4:" "config check reports every error (line 4 too)"

HELPGATE_CONF="$tmp/helpgate.conf" "$ctl" config check >"$tmp/out" 2>&1
rc=$?; out=$(cat "$tmp/out")
expect_rc 0 "HELPGATE_CONF is the default config path"

"$ctl" -c "$tmp/missing.conf" customer list >"$tmp/out" 2>&1
rc=$?; out=$(cat "$tmp/out")
expect_rc 1 "a missing config fails"
expect_in "$out" "helpgatectl: $tmp/missing.conf: cannot open" "a missing config is named"

# ---- usage ----
run
expect_rc 2 "no command is a usage error"
run frobnicate
expect_rc 2 "an unknown command is a usage error"
run customer
expect_rc 2 "customer without a subcommand is a usage error"
run customer add
expect_rc 2 "customer add without an address is a usage error"
run customer add a@example.com
expect_rc 2 "customer add without --tier is a usage error"
run customer add a@example.com --tier standard --bogus
expect_rc 2 "an unknown option is a usage error"
run customer add a@example.com --tier standard --incident-watch soon
expect_rc 2 "a non-numeric --incident-watch is a usage error"
run case show HG-abc
expect_rc 2 "a malformed case reference is a usage error"
run cases extra
expect_rc 2 "an extra argument is a usage error"
run --help
expect_rc 0 "--help exits 0"
expect_in "$out" "customer import" "--help lists the commands"
run customer add --help
expect_rc 0 "customer add --help exits 0"
expect_in "$out" "--incident-watch DAYS" "customer add --help shows its usage"
run customer -h
expect_rc 0 "customer -h exits 0"

# ---- customers ----
run customer add Alice@Example.COM --tier premium
expect_rc 0 "customer add an address"
expect_in "$out" "alice@example.com" "customer add lowercases the address"
run customer add @example.org --tier Enterprise --incident-watch 7
expect_rc 0 "customer add a domain with an incident watch"
run customer add bob@example.com --tier gold
expect_rc 1 "customer add with an unknown tier fails"
expect_in "$err" "valid tiers: enterprise, premium, standard, trial, unknown" "the error lists the valid tiers"
run customer add "not an address" --tier standard
expect_rc 1 "customer add refuses a non-address"

run customer list
expect_rc 0 "customer list"
expect_in "$out" "alice@example.com" "customer list shows the address"
expect_in "$out" "@example.org" "customer list shows the domain"
expect_in "$out" "2026-12-07T09:00:00+02:00" "watch until is ISO 8601 in the config time zone"

run customer list --json
expect_rc 0 "customer list --json"
expect_json "customer list --json is valid JSON"
got=$(json_eval '";".join("%s=%s=%s" % (c["address"], c["tier"], c["watch_until"]) for c in j)')
if [ "$got" = "@example.org=enterprise=2026-12-07T09:00:00+02:00;alice@example.com=premium=None" ]; then
	ok "customer list --json has the rows, watch_until null when unset"
else
	not_ok "customer list --json has the rows" "$got"
fi

run customer remove ALICE@example.com
expect_rc 0 "customer remove"
run customer remove alice@example.com
expect_rc 1 "customer remove of a missing customer fails"
run customer list --json
expect_not_in "$out" "alice@example.com" "a removed customer is gone"

# ---- import ----
cat >"$tmp/good.csv" <<'EOF'
address,tier,incident_watch_days
# a comment

"Carol@Example.net",premium,
dave@example.net , standard , 3
@example.net,"trial"
"eve,the@example.net",enterprise,0
EOF
run customer import "$tmp/good.csv"
expect_rc 1 "import refuses an address with a comma"
expect_in "$err" "good.csv:7:" "the comma address is reported on line 7"

sed -i '/eve,the/d' "$tmp/good.csv"
run customer import "$tmp/good.csv"
expect_rc 0 "import a good CSV"
expect_in "$out" "imported 3 customers" "import counts the rows"
run customer list --json
expect_json "customer list --json after import is valid JSON"
got=$(json_eval '";".join("%s=%s" % (c["address"], c["tier"]) for c in j)')
if [ "$got" = "@example.net=trial;@example.org=enterprise;carol@example.net=premium;dave@example.net=standard" ]; then
	ok "import stored every row, normalised"
else
	not_ok "import stored every row, normalised" "$got"
fi
got=$(json_eval '[c["watch_until"] for c in j if c["address"] == "dave@example.net"][0]')
if [ "$got" = "2026-12-03T09:00:00+02:00" ]; then ok "import sets the incident watch"; else not_ok "import sets the incident watch" "$got"; fi

printf 'frank@example.com,standard\ngrace@example.com,premium\nheidi@example.com,platinum\nivan@example.com,standard\n' >"$tmp/bad.csv"
run customer import "$tmp/bad.csv"
expect_rc 1 "import with a bad row fails"
expect_in "$err" "bad.csv:3:" "the error names line 3"
expect_in "$err" "nothing imported" "the error says nothing was imported"
run customer list --json
expect_not_in "$out" "frank@example.com" "nothing from the bad file was imported (line 1)"
expect_not_in "$out" "ivan@example.com" "nothing from the bad file was imported (line 4)"

printf 'x@example.com,standard,"unterminated\n' >"$tmp/quote.csv"
run customer import "$tmp/quote.csv"
expect_rc 1 "import refuses an unterminated quote"
expect_in "$err" "quote.csv:1:" "the unterminated quote is on line 1"
run customer import "$tmp/nope.csv"
expect_rc 1 "import of a missing file fails"

# ---- cases ----
run cases --json
expect_rc 0 "cases --json on an empty store"
if [ "$out" = "[]" ]; then ok "cases --json on an empty store prints []"; else not_ok "cases --json prints []" "$out"; fi
run cases --open --json
if [ "$out" = "[]" ]; then ok "cases --open --json on an empty store prints []"; else not_ok "cases --open --json prints []" "$out"; fi
run cases
expect_rc 0 "cases on an empty store"
run case show HG-999
expect_rc 1 "case show of a missing case fails"
expect_in "$err" "no case HG-999" "case show names the missing case"
run case show hg-999 --json
expect_rc 1 "case show --json of a missing case fails"
if [ -z "$out" ]; then ok "nothing on stdout for a missing case"; else not_ok "nothing on stdout for a missing case" "$out"; fi

# ---- store errors ----
sed "s|^Database.*|Database $tmp/no/such/dir/helpgate.db|" "$tmp/helpgate.conf" >"$tmp/nodir.conf"
"$ctl" -c "$tmp/nodir.conf" cases >"$tmp/out" 2>&1
rc=$?; out=$(cat "$tmp/out")
expect_rc 1 "a database in a missing directory fails"
expect_in "$out" "$tmp/no/such/dir" "the error names the missing directory"

# ---- colour ----
run cases
expect_not_in "$out" $'\033[' "no colour when stdout is not a terminal"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
