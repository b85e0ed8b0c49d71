#!/usr/bin/env bash
# test_diagnose.sh BINDIR - "helpgatectl diagnose --smtp" against the
# prober's test bed (tests/lib/testbed.sh): one verdict per server of the
# bed, read from --json with python3, the exit status (0 ok, 1 problem,
# 2 usage), the allow list (ProbeAllow), the password-file checks, and that
# the password never appears in any output.  The wrong-password check runs
# last: after a failed login Dovecot delays later logins from 127.0.0.1.
# sender_rejected and relay_denied against the bed's submission port with a
# sender login map (Postfix reject_sender_login_mismatch, refused at RCPT TO).
# Alternatives (smtp.alternative, "Works instead:"): DiagnosePorts names the
# bed's submission and smtps ports; names resolve through the bed's own
# dnsmasq (tb_start_dns, DiagnoseResolver), which forwards nothing, so no
# query leaves the machine.  connect_timeout: a listener whose accept queue
# is full (backlog 0, never accepting) drops further SYNs on loopback.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bindir=${1:?usage: test_diagnose.sh BINDIR}
bindir=$(cd "$bindir" && pwd)
ctl="$bindir/helpgatectl"
. "$here/../lib/mailstack.sh"
. "$here/../lib/testbed.sh"

for c in python3 dovecot postfix openssl; do
	command -v "$c" >/dev/null || { echo "not ok - no $c"; echo "0 passed, 1 failed"; exit 1; }
done
[ -x "$ctl" ] || { echo "not ok - $ctl is not an executable"; echo "0 passed, 1 failed"; exit 1; }

ms_init || exit 1
if ! tb_start_bed; then
	t_fail "test bed starts"
	t_done
	exit 1
fi
t_ok "test bed up"
if ! tb_start_dns; then
	t_fail "dnsmasq for the bed starts"
	t_done
	exit 1
fi
t_ok "dnsmasq up on $TB_DNS"

# a TCP port whose connects never complete: the accept queue (backlog 0)
# is filled by the script itself and nothing is ever accepted
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
print("ready", flush=True)
time.sleep(3600)
PY
ms_spawn FULL_PID python3 "$MS_T/tb-fullbacklog.py" "$FULL_PORT"

conf="$MS_T/diag.conf"
conf_noallow="$MS_T/diag-noallow.conf"
base="SupportAddress support@example.com
Database $MS_T/diag.db
Syslog no
KeywordsDir $repo/conf/keywords
TemplatesDir $repo/conf/templates
DiagnoseCAFile $TB_CA
DiagnoseTimeout 5s
DiagnoseResolver $TB_DNS"
printf '%s\nProbeAllow 127.0.0.0/8\nDiagnosePorts %s/starttls %s/tls\n' "$base" \
    "$TB_SUBMISSION_PORT" "$TB_SMTPS_PORT" >"$conf"
printf '%s\n' "$base" >"$conf_noallow"
conf_tlsfirst="$MS_T/diag-tlsfirst.conf"
printf '%s\nProbeAllow 127.0.0.0/8\nDiagnosePorts %s/tls, %s/starttls\n' "$base" \
    "$TB_SMTPS_PORT" "$TB_SUBMISSION_PORT" >"$conf_tlsfirst"
conf_badres="$MS_T/diag-badresolver.conf"
printf '%s\nDiagnoseResolver dns.example:53\n' "$base" >"$conf_badres"

pwfile="$MS_T/pw"
(umask 077 && printf '%s\n' "$TB_PASS" >"$pwfile")
badpw="wrong-$RANDOM-pw"
badpwfile="$MS_T/pw-wrong"
(umask 077 && printf '%s\n' "$badpw" >"$badpwfile")
openpw="$MS_T/pw-open"
printf '%s\n' "$TB_PASS" >"$openpw"
chmod 0644 "$openpw"

ALL_OUT="$MS_T/all-output"
: >"$ALL_OUT"
N=0

# diag CONF ARGS...: runs helpgatectl -c CONF diagnose ARGS --json; sets $rc,
# $out, $err, $ms (wall time), $verdict (smtp.verdict or "-").
diag() {
	local c=$1 start
	shift
	N=$((N + 1))
	start=$(date +%s%N)
	"$ctl" -c "$c" diagnose "$@" >"$MS_T/d$N.out" 2>"$MS_T/d$N.err"
	rc=$?
	ms=$((($(date +%s%N) - start) / 1000000))
	out=$(cat "$MS_T/d$N.out")
	err=$(cat "$MS_T/d$N.err")
	cat "$MS_T/d$N.out" "$MS_T/d$N.err" >>"$ALL_OUT"
	verdict=$(jq_get verdict)
}

# jq_get FIELD[.SUBFIELD]: smtp.FIELD of $out as text ("-" if not JSON).
jq_get() {
	python3 -c '
import json, sys
try:
    d = json.loads(sys.stdin.read())
except Exception:
    print("-"); sys.exit(0)
v = d["smtp"]
for k in sys.argv[1].split("."):
    v = v.get(k, "<missing>") if isinstance(v, dict) else "<missing>"
print(json.dumps(v) if not isinstance(v, str) else v)
' "$1" <<<"$out"
}

# check WANT_VERDICT WANT_RC DESC
check() {
	t_is "$verdict" "$1" "$3: verdict $1"
	t_is "$rc" "$2" "$3: exit $2"
	if [ "$verdict" = - ] || [ "$rc" != "$2" ]; then
		printf '# stdout: %s\n# stderr: %s\n' "$out" "$err" | head -n 30
	fi
}

CRED=(--user "$TB_USER" --password-file "$pwfile")
H=127.0.0.1

diag "$conf" --smtp "$H:$TB_SUBMISSION_PORT" "${CRED[@]}" --from "$TB_USER" --rcpt "$TB_USER" --json
check ok 0 "STARTTLS submission with credentials, MAIL FROM and RCPT TO"
steps=$(python3 -c '
import json, sys
d = json.loads(sys.stdin.read())["smtp"]
print(len(d["steps"]), all(s["ok"] for s in d["steps"]), "alternative" in d and d["alternative"] is None)
' <<<"$out" 2>/dev/null)
t_like "$steps" '^[0-9]+ True True$' "steps[] all ok and smtp.alternative is null"
t_like "$out" '"AUTH' "an AUTH step is reported"
t_like "$out" 'RCPT' "a RCPT TO step is reported"

diag "$conf" --smtp "$H:$TB_SUBMISSION_PORT" "${CRED[@]}" --from "$TB_USER" --rcpt "$TB_USER"
t_is "$rc" 0 "text output: exit 0"
t_like "$out" '✓' "text output is a check list"

diag "$conf" --smtp "$H:$TB_SMTPS_PORT" --security tls "${CRED[@]}" --json
check ok 0 "implicit TLS (smtps) with --security tls"

diag "$conf" --smtp "$H:$TB_SMTPS_PORT" --security starttls --json
check tls_mode_mismatch 1 "starttls against the implicit-TLS port"

diag "$conf" --smtp "$H:$TB_SUBMISSION_PORT" --security tls --json
check tls_mode_mismatch 1 "tls against the STARTTLS submission port"

diag "$conf" --smtp "$H:$TB_SUBMISSION_EXPIRED_PORT" --json
check cert_expired 1 "expired certificate"

diag "$conf" --smtp "$H:$TB_SUBMISSION_WRONGNAME_PORT" --json
check cert_hostname_mismatch 1 "certificate for another name"

diag "$conf" --smtp "$H:$TB_SUBMISSION_SELFSIGNED_PORT" --json
check cert_untrusted 1 "self-signed certificate"

diag "$conf" --smtp "$H:$TB_CLOSED_PORT" --json
check connect_refused 1 "closed port"

diag "$conf" --smtp "$H:$TB_SILENT_PORT" --json
check greeting_timeout 1 "silent server"
if [ "$ms" -le 7000 ]; then
	t_ok "silent server: returned in $ms ms (DiagnoseTimeout 5 s + 2 s)"
else
	t_fail "silent server: returned in $ms ms (DiagnoseTimeout 5 s + 2 s)"
fi

diag "$conf" --smtp "$H:$TB_GARBAGE_PORT" --json
check protocol_error 1 "garbage instead of a greeting"

diag "$conf" --smtp "$H:$TB_NOSTARTTLS_PORT" --security starttls "${CRED[@]}" --json
check starttls_unavailable 1 "no STARTTLS offered"

diag "$conf" --smtp "$H:$TB_NOAUTH_PORT" --security none "${CRED[@]}" --json
check auth_unavailable 1 "no AUTH offered"

diag "$conf" --smtp "$H:$TB_APPPASS_PORT" --security none "${CRED[@]}" --json
check auth_failed 1 "application password required"
t_like "$(jq_get hint)" '[Aa]pplication[- ]?(specific )?password' "application password: hint in the JSON"

diag "$conf" --smtp "$H:$TB_RELAYDENY_PORT" --security none "${CRED[@]}" --from "$TB_USER" \
    --rcpt someone@elsewhere.test --json
check relay_denied 1 "relay denied"

# A sender the login does not own: the bed's submission port with
# smtpd_sender_login_maps + reject_sender_login_mismatch (alice owns only
# alice@client.test).  Postfix delays the refusal to RCPT TO.  DiagnosePorts
# names only that port: the bed's other ports take any sender and would be
# offered as working instead.
conf_sc="$MS_T/diag-sendercheck.conf"
printf '%s\nProbeAllow 127.0.0.0/8\nDiagnosePorts %s/starttls\n' "$base" \
    "$TB_SUBMISSION_SENDERCHECK_PORT" >"$conf_sc"
SC="$H:$TB_SUBMISSION_SENDERCHECK_PORT"
# envelope: "MAIL-ok RCPT-ok RCPT-detail" of $out's steps
envelope() {
	python3 -c '
import json, sys
d = json.loads(sys.stdin.read())["smtp"]
m = [s for s in d["steps"] if s["name"].startswith("MAIL FROM:")]
r = [s for s in d["steps"] if s["name"].startswith("RCPT TO:")]
print(m[0]["ok"] if m else "-", r[0]["ok"] if r else "-", r[0]["detail"] if r else "-")' <<<"$out" 2>/dev/null
}
mismatch_advice="The server accepted your login but refuses this From address for it: send as an address the account $TB_USER owns, or ask the provider to allow it."

diag "$conf_sc" --smtp "$SC" "${CRED[@]}" --from "$TB_USER" --rcpt "$TB_USER" --json
check ok 0 "sender login map: alice sending as her own address"

diag "$conf_sc" --smtp "$SC" "${CRED[@]}" --from bob@client.test --rcpt "$TB_USER" --json
check sender_rejected 1 "sender login map: alice sending as bob@client.test"
t_is "$(jq_get advice)" "$mismatch_advice" "sender login map: the advice names the login and the From address it may not use"
t_is "$(envelope)" "True False 553 5.7.1 <bob@client.test>: Sender address rejected: not owned by user $TB_USER" \
    "sender login map: MAIL FROM passed, RCPT TO has Postfix's delayed refusal"
t_is "$(jq_get alternative)" null "sender login map: no other port is offered for a refused sender"

diag "$conf_sc" --smtp "$SC" "${CRED[@]}" --from bob@client.test --rcpt "$TB_USER"
t_is "$rc" 1 "sender login map, text: exit 1"
t_like "$out" $'verdict: sender_rejected\nadvice: The server accepted your login but refuses this From address' \
    "sender login map, text: verdict and advice"

diag "$conf_sc" --smtp "$SC" "${CRED[@]}" --from bob@client.test --json
check ok 0 "sender login map, --from without --rcpt: Postfix refuses the sender only at RCPT TO"

diag "$conf_sc" --smtp "$SC" --from "$TB_USER" --rcpt "$TB_USER" --json
check sender_rejected 1 "sender login map, no login: alice's own address"
t_like "$(jq_get advice)" 'log in \(SMTP AUTH\) with the account that owns it' \
    "sender login map, no login: the advice says to log in"

diag "$conf_sc" --smtp "$SC" --from nobody@elsewhere.test --rcpt "$TB_USER" --json
check relay_denied 1 "no login, an address nobody owns: 554 5.7.1 Recipient address rejected: Access denied"
t_like "$(envelope)" '^True False 554 5\.7\.1 .*Recipient address rejected: Access denied' \
    "no login: the recipient refused for security (5.7.1), i.e. relaying"

diag "$conf_noallow" --smtp "$H:$TB_SUBMISSION_PORT" --json
t_is "$rc" 1 "loopback without ProbeAllow: exit 1"
t_is "$verdict" protocol_error "loopback without ProbeAllow: verdict protocol_error (diag.h: no verdict of its own)"
t_is "$(jq_get address_not_allowed)" true "loopback without ProbeAllow: address_not_allowed"
t_like "$out" 'not allowed' "loopback without ProbeAllow: the step says so"

# Usage errors: exit 2, nothing probed.
diag "$conf" --smtp "$H:$TB_SUBMISSION_PORT" --user "$TB_USER" --password-file "$openpw" --json
t_is "$rc" 2 "password file readable by others: exit 2"
t_like "$err" 'password-file' "password file readable by others: says why"
diag "$conf" --smtp "$H:$TB_SUBMISSION_PORT" --user "$TB_USER" --password-file "$MS_T/nonesuch" --json
t_is "$rc" 2 "unreadable password file: exit 2"
diag "$conf" --smtp "$H:$TB_SUBMISSION_PORT" --user "$TB_USER" --json
t_is "$rc" 2 "--user without --password-file: exit 2"
diag "$conf" --smtp "$H:$TB_SUBMISSION_PORT" --security smoke --json
t_is "$rc" 2 "bad --security: exit 2"
diag "$conf" --json
t_is "$rc" 2 "no --smtp: exit 2"
diag "$conf" --smtp "$H:99999" --json
t_is "$rc" 2 "bad port: exit 2"
diag "$conf" --smtp "$H:$TB_SUBMISSION_PORT" --password "$TB_PASS" --json
t_is "$rc" 2 "--password on the command line is refused: exit 2"
diag "$conf" --imap "$H:$TB_IMAP_PORT" --imap-security smoke --json
t_is "$rc" 2 "bad --imap-security: exit 2 (IMAP itself: test_diagnose_imap.sh)"

# ---- alternatives (DiagnosePorts, smtp./mail. names, SRV) and DNS

# alt_is HOST PORT SECURITY VERIFIED SOURCE DESC: smtp.alternative of $out
alt_is() {
	t_is "$(jq_get alternative.host) $(jq_get alternative.port) $(jq_get alternative.security) $(jq_get alternative.verified) $(jq_get alternative.source)" \
	    "$1 $2 $3 $4 $5" "$6: alternative $1:$2 $3 verified=$4 from $5"
}

diag "$conf" --smtp "$H:$TB_CLOSED_PORT" --security starttls "${CRED[@]}" --json
check connect_refused 1 "closed port with alice's credentials"
alt_is 127.0.0.1 "$TB_SUBMISSION_PORT" starttls true "port list" "closed port"
diag "$conf" --smtp "$H:$TB_CLOSED_PORT" --security starttls "${CRED[@]}"
t_is "$rc" 1 "closed port, text: exit 1"
t_like "$out" "Works instead: 127\\.0\\.0\\.1 port $TB_SUBMISSION_PORT with STARTTLS \\(verified with your password" \
    "closed port, text: says what works instead"

diag "$conf_tlsfirst" --smtp "$H:$TB_SMTPS_PORT" --security starttls "${CRED[@]}"
t_is "$rc" 1 "starttls against smtps, text: exit 1"
t_like "$out" "Works instead: 127\\.0\\.0\\.1 port $TB_SMTPS_PORT with SSL/TLS \\(verified with your password" \
    "starttls against smtps: the same port with SSL/TLS, first in DiagnosePorts"

diag "$conf" --smtp "$H:$TB_SUBMISSION_PORT" --security starttls --json
check ok 0 "working settings"
t_is "$(jq_get alternative)" null "working settings: smtp.alternative is null"

# names through the bed's dnsmasq
diag "$conf" --smtp "smtp.client.test:$TB_CLOSED_PORT" --security starttls "${CRED[@]}" --json
check connect_refused 1 "smtp.client.test (dnsmasq: 127.0.0.1) on the closed port"
step0=$(python3 -c '
import json, sys
s = json.loads(sys.stdin.read())["smtp"]["steps"][0]
print(s["name"], s["ok"], s["detail"])' <<<"$out" 2>/dev/null)
t_like "$step0" '^resolve smtp\.client\.test True 127\.0\.0\.1:' "smtp.client.test resolves to 127.0.0.1 through DiagnoseResolver"
alt_is localhost "$TB_SUBMISSION_PORT" starttls true SRV "SRV _submission._tcp.client.test"

diag "$conf" --smtp "nosuch.client.test:$TB_SUBMISSION_PORT" "${CRED[@]}" --json
check dns_not_found 1 "nosuch.client.test (NXDOMAIN from dnsmasq)"
t_like "$out" "NXDOMAIN" "dns_not_found: the resolver's words"
t_like "$out" "127\\.0\\.0\\.1:$TB_DNS_PORT" "dns_not_found: names the resolver asked"

diag "$conf_badres" --smtp "$H:$TB_SUBMISSION_PORT" --json
t_is "$rc" 1 "DiagnoseResolver that is not ADDRESS[:PORT]: the config is refused (exit 1)"
t_like "$err" 'DiagnoseResolver' "bad DiagnoseResolver: the error names the key"

if grep -q '_submission\._tcp\.client\.test' "$MS_T/dnsmasq.log" &&
	grep -q 'smtp\.client\.test' "$MS_T/dnsmasq.log"; then
	t_ok "the names and the SRV record were asked of the bed's dnsmasq"
else
	t_fail "the names and the SRV record were asked of the bed's dnsmasq" "$(tail -n 20 "$MS_T/dnsmasq.log")"
fi
if grep -qE 'forwarded|query\[[A-Z]+\] [^ ]+ from [^1]' "$MS_T/dnsmasq.log"; then
	t_fail "dnsmasq forwarded nothing and was asked only from loopback" "$(grep -E 'forwarded' "$MS_T/dnsmasq.log" | head)"
else
	t_ok "dnsmasq forwarded nothing and was asked only from loopback"
fi

# connect_timeout: SYNs to the full accept queue are dropped
diag "$conf" --smtp "$H:$FULL_PORT" --security none --json
check connect_timeout 1 "connect never completes (full accept queue)"
if [ "$ms" -le 7000 ]; then
	t_ok "connect timeout: returned in $ms ms (DiagnoseTimeout 5 s + 2 s)"
else
	t_fail "connect timeout: returned in $ms ms (DiagnoseTimeout 5 s + 2 s)"
fi

# Last: a failed login makes Dovecot slow down the next ones.
diag "$conf" --smtp "$H:$TB_SUBMISSION_PORT" --user "$TB_USER" --password-file "$badpwfile" --json
check auth_failed 1 "wrong password on the real submission port"

if grep -qF -- "$TB_PASS" "$ALL_OUT"; then
	t_fail "the password never appears in any output" "$(grep -nF -- "$TB_PASS" "$ALL_OUT" | head -n 5)"
else
	t_ok "the password never appears in any output"
fi
if grep -qF -- "$badpw" "$ALL_OUT"; then
	t_fail "the wrong password never appears in any output"
else
	t_ok "the wrong password never appears in any output"
fi

t_done
