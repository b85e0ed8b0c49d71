#!/usr/bin/env bash
# test_newcomer.sh - the README's first minute, as a newcomer lives it, in a
# clean clone of the committed tree:
#   1. "make run" (deps, build, the private stack on 127.0.0.1:2525); one
#      message to support, found tagged in var/mail/support@example.com/,
#      the acknowledgement found in the client's Maildir; then SIGINT to the
#      whole foreground process group, as Ctrl-C in a terminal sends it, and
#      no process of the stack is left;
#   2. "make demo" with no stack running (it starts one and stops it): every
#      line it prints about a case, its tags, the acknowledgement, the
#      diagnosis and the working setting is checked against the store
#      (helpgatectl case show --json) and the Maildirs; nothing left running.
# The clone builds its own release binaries (BINDIR is not used): that is
# what the newcomer runs.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/../lib/mailstack.sh"

T=$(mktemp -d /tmp/helpgate-newcomer.XXXXXX) || exit 1
chmod 755 "$T"
clone=$T/helpgate
run_pgid=""
# leftovers: processes whose command line or working directory is in the
# clone (the private Postfix, Dovecot, the daemons, make itself)
leftovers() {
	local p
	for p in /proc/[0-9]*; do
		[ "${p#/proc/}" = "$$" ] && continue
		if { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qF "$clone" ||
			[ "$(readlink "$p/cwd" 2>/dev/null)" = "$clone" ]; then
			echo "${p#/proc/}"
		fi
	done
}
cleanup() {
	local pids
	[ -n "$run_pgid" ] && kill -TERM -- "-$run_pgid" 2>/dev/null
	postfix -c "$clone/var/pf" stop >/dev/null 2>&1
	sleep 1
	pids=$(leftovers)
	# shellcheck disable=SC2086
	[ -n "$pids" ] && kill -KILL $pids 2>/dev/null
	rm -rf "$T"
	for p in "${MS_PORTS[@]}"; do
		rm -rf "${MS_PORT_DIR:?}/$p"
	done
}
trap cleanup EXIT

git clone -q "$repo" "$clone" || { t_fail "git clone"; t_done; exit 1; }
# A port of its own (reserved like every test port), not make run's
# default 2525: another run of this suite, or a developer's make run, may
# hold that one; HELPGATE_PORT is the only difference from a newcomer's run.
MS_PORT_DIR=${MS_PORT_DIR:-/tmp/helpgate-ports}
ms_free_port port || { t_fail "a free port"; t_done; exit 1; }
ctl() { "$clone/bin/helpgatectl" -c "$clone/conf/helpgate.conf" "$@"; }
jq_py() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

# ---- 1. make run
set -m	# the job gets its own process group, as a terminal's foreground job does
(cd "$clone" && HELPGATE_PORT=$port exec make run) >"$T/run.log" 2>&1 </dev/null &
run_pgid=$!
set +m
up=0
for ((i = 0; i < 600; i++)); do
	grep -q '^Ctrl-C stops everything' "$T/run.log" && { up=1; break; }
	kill -0 "$run_pgid" 2>/dev/null || break
	sleep 0.5
done
if [ "$up" = 1 ]; then
	t_ok "make run: up in a clean clone (deps, build, stack)"
else
	t_fail "make run: up in a clean clone" "$(tail -n 30 "$T/run.log")"
	t_done
	exit 1
fi
t_like "$(cat "$T/run.log")" "swaks --server 127.0.0.1:$port --to support@example.com" "make run says where to send"
t_like "$(cat "$T/run.log")" "helpgatectl -c conf/helpgate.conf sla" "make run says how to see the queue"

swaks --server "127.0.0.1:$port" --to support@example.com --from ann@client.example \
	--header 'Subject: Cannot send mail' --header 'Message-Id: <newcomer-1@client.example>' \
	--body 'Since noon Outlook cannot send any mail. Urgent!' >"$T/swaks.log" 2>&1 ||
	t_fail "swaks to 127.0.0.1:$port" "$(tail -n 5 "$T/swaks.log")"
tagged=""
ack=""
for ((i = 0; i < 100; i++)); do
	tagged=$(grep -l '^Message-Id: <newcomer-1@client.example>' "$clone"/var/mail/support@example.com/new/* 2>/dev/null | head -n 1)
	ack=$(grep -l '^In-Reply-To: <newcomer-1@client.example>' "$clone"/var/mail/ann@client.example/new/* 2>/dev/null | head -n 1)
	[ -n "$tagged" ] && [ -n "$ack" ] && break
	sleep 0.2
done
t_like "$tagged" . "the message is in var/mail/support@example.com/"
t_like "$(ms_header "$tagged" X-Helpgate-Case 2>/dev/null)" '^HG-1$' "... tagged X-Helpgate-Case: HG-1"
t_is "$(ms_header "$tagged" X-Helpgate-Urgency 2>/dev/null)" P1 "... X-Helpgate-Urgency: P1"
t_like "$ack" . "the acknowledgement is in var/mail/ann@client.example/"
t_like "$(ms_header "$ack" Subject 2>/dev/null)" '^Re: \[HG-1\] Cannot send mail$' "... its subject names the case"
t_like "$(ctl sla)" 'HG-1 +P1' "helpgatectl -c conf/helpgate.conf sla shows the case"

kill -INT -- "-$run_pgid"
stopped=0
for ((i = 0; i < 300; i++)); do
	kill -0 "$run_pgid" 2>/dev/null || { stopped=1; break; }
	sleep 0.1
done
t_is "$stopped" 1 "Ctrl-C (SIGINT to the process group) stops make run"
sleep 1
left=$(leftovers)
t_is "$left" "" "no process of the stack is left" 
[ -n "$left" ] && ps -o pid,cmd -p "$(echo $left | tr ' ' ',')" | sed 's/^/#   /'
t_is "$([ -e "$clone/var/run/stack.env" ] && echo left || echo gone)" gone "var/run/stack.env removed"
run_pgid=""

# ---- 2. make demo (starts the stack itself)
(cd "$clone" && HELPGATE_PORT=$port DEMO_TIMEOUT=90 make demo) >"$T/demo.log" 2>&1 </dev/null
rc=$?
t_is "$rc" 0 "make demo exits 0"
out=$(cat "$T/demo.log")
t_like "$out" 'helpgate demo: 4 messages' "make demo says what it sends"
# section N of the output
section() { awk -v n="$1" '/^[0-9]\. /{ cur = ($1 == n ".") } cur' "$T/demo.log"; }
val() { section "$1" | sed -n "s/^ *$2: *//p" | head -n 1; }
for n in 1 2 3; do
	ref=$(val "$n" X-Helpgate-Case)
	t_like "$ref" '^HG-[0-9]+$' "demo $n: prints the case"
	json=$(ctl case show "$ref" --json 2>/dev/null)
	[ -n "$json" ] || { t_fail "demo $n: $ref is in the store"; continue; }
	t_is "$(val "$n" X-Helpgate-Urgency)" "P$(printf '%s' "$json" | jq_py 'd["urgency"]')" "demo $n: printed urgency is the store's"
	t_is "$(val "$n" X-Helpgate-Tier)" "$(printf '%s' "$json" | jq_py 'd["tier"]')" "demo $n: printed tier is the store's"
	t_is "$(val "$n" X-Helpgate-Category)" "$(printf '%s' "$json" | jq_py 'd["category"]')" "demo $n: printed category is the store's"
	t_is "$(printf '%s' "$json" | jq_py '[o["state"] for o in d["outbox"] if o["kind"] == "ack"]')" "['sent']" \
		"demo $n: the store has its acknowledgement sent"
	t_like "$(section "$n" | sed -n 's/^ *Subject: //p' | head -n 1)" "^Re: \[$ref\] " "demo $n: the acknowledgement printed names the case"
	client=$(printf '%s' "$json" | jq_py 'd["client"]')
	t_like "$(grep -l "^X-Helpgate-Case: $ref" "$clone/var/mail/$client/new/"* 2>/dev/null | head -n 1)" . \
		"demo $n: the acknowledgement is in var/mail/$client/"
done
t_is "$(val 1 X-Helpgate-Urgency)" P4 "demo 1: the calm how-to is P4"
t_is "$(val 2 X-Helpgate-Urgency)" P1 "demo 2: the angry outage is P1"
t_is "$(val 3 X-Helpgate-Tier)" trial "demo 3: the trial customer is tier trial"
ref3=$(val 3 X-Helpgate-Case)
json3=$(ctl case show "$ref3" --json 2>/dev/null)
verdict=$(printf '%s' "$json3" | jq_py 'd["diagnoses"][0]["verdict"]')
t_is "$verdict" tls_mode_mismatch "demo 3: the store's diagnosis is tls_mode_mismatch"
t_like "$(section 3)" "verdict $verdict" "demo 3: the printed verdict is the store's"
alt=$(printf '%s' "$json3" | jq_py '"%s:%s %s" % (d["diagnoses"][0]["alternative"]["host"], d["diagnoses"][0]["alternative"]["port"], d["diagnoses"][0]["alternative"]["security"])')
t_like "$(section 3)" "works instead: $alt, verified" "demo 3: the printed working setting is the store's ($alt)"
t_is "$(printf '%s' "$json3" | jq_py 'd["diagnoses"][0]["client_note"]')" follow-up "demo 3: the client was sent the setting"
altport=${alt#*:}; altport=${altport%% *}
t_like "$(section 3)" "Port: +$altport" "demo 3: ... with the working port"
t_like "$(section 4)" "X-Helpgate-Auto:" "demo 4: the bounce is marked machine mail"
t_like "$(section 4)" "no case, no acknowledgement" "demo 4: and says so"
t_is "$(section 4 | grep -c 'X-Helpgate-Case')" 0 "demo 4: no case printed for the bounce"
t_like "$out" "HG-[0-9]+ +P1 " "make demo ends with the queue (helpgatectl sla)"
sleep 1
t_is "$(leftovers)" "" "make demo stopped the stack it started"
echo "# make demo printed:"
sed 's/^/#   /' "$T/demo.log" | head -n 40
t_done
