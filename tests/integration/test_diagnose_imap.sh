#!/usr/bin/env bash
# test_diagnose_imap.sh BINDIR - "helpgatectl diagnose --imap" against the
# prober's test bed (tests/lib/testbed.sh): Dovecot with STARTTLS and
# implicit TLS, imaps listeners with bad certificates, a listener Dovecot
# does not count as local (LOGINDISABLED before STARTTLS), the fault
# servers; --imap beside --smtp; the verdicts and fields read from --json
# with python3, the exit status (0 only when every protocol asked is ok,
# 1 problem, 2 usage) and that the password never appears in any output.
# The wrong-password check runs last: after a failed login Dovecot delays
# later logins from 127.0.0.1.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bindir=${1:?usage: test_diagnose_imap.sh BINDIR}
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

conf="$MS_T/diag.conf"
printf '%s\n' "SupportAddress support@example.com
Database $MS_T/diag.db
Syslog no
KeywordsDir $repo/conf/keywords
TemplatesDir $repo/conf/templates
DiagnoseCAFile $TB_CA
DiagnoseTimeout 5s
ProbeAllow 127.0.0.0/8" >"$conf"

pwfile="$MS_T/pw"
(umask 077 && printf '%s\n' "$TB_PASS" >"$pwfile")
badpw="wrong-$RANDOM-pw"
badpwfile="$MS_T/pw-wrong"
(umask 077 && printf '%s\n' "$badpw" >"$badpwfile")

ALL_OUT="$MS_T/all-output"
: >"$ALL_OUT"
N=0

# flatten: $out's JSON as "PATH<TAB>VALUE" lines in $MS_T/flat (every
# node, lists also by negative index; strings as they are, others as JSON)
# and imap.steps as "+NAME" / "-NAME" lines in $MS_T/steps.  One python3
# per diagnosis: on a loaded machine each start costs up to a second.
flatten() {
	python3 -c '
import json, sys
flat, steps = open(sys.argv[1], "w"), open(sys.argv[2], "w")
try:
    d = json.loads(sys.stdin.read())
except Exception:
    sys.exit(0)
def walk(path, v):
    flat.write("%s\t%s\n" % (path, v if isinstance(v, str) else json.dumps(v)))
    kids = v.items() if isinstance(v, dict) else \
        [(str(i), x) for i, x in enumerate(v)] + [(str(i - len(v)), x) for i, x in enumerate(v)] \
        if isinstance(v, list) else []
    for k, x in kids:
        walk(path + "." + k if path else k, x)
walk("", d)
for st in (d.get("imap") or {}).get("steps", []):
    steps.write(("+" if st["ok"] else "-") + st["name"] + "\n")
' "$MS_T/flat" "$MS_T/steps" <<<"$out"
}

# diag ARGS...: helpgatectl -c $conf diagnose ARGS; sets $rc, $out, $err,
# $ms (wall time) and $verdict (imap.verdict, "-" if not JSON).
diag() {
	local start
	N=$((N + 1))
	start=$(date +%s%N)
	"$ctl" -c "$conf" diagnose "$@" >"$MS_T/d$N.out" 2>"$MS_T/d$N.err"
	rc=$?
	ms=$((($(date +%s%N) - start) / 1000000))
	out=$(cat "$MS_T/d$N.out")
	err=$(cat "$MS_T/d$N.err")
	cat "$MS_T/d$N.out" "$MS_T/d$N.err" >>"$ALL_OUT"
	: >"$MS_T/flat"
	: >"$MS_T/steps"
	case "$out" in "{"*) flatten ;; esac
	verdict=$(jget imap.verdict)
	printf '# diagnose %d: %d ms\n' "$N" "$ms"
}

# jget PATH: a dotted path of $out's JSON ("imap.tls.subject",
# "imap.steps.-1.name"), strings as they are, others as JSON; "-" if $out
# is not JSON, "<missing>" if the path is not there.
jget() {
	[ -s "$MS_T/flat" ] || { echo -; return; }
	awk -F '\t' -v p="$1" '$1 == p { sub(/^[^\t]*\t/, ""); print; found = 1; exit }
		END { if (!found) print "<missing>" }' "$MS_T/flat"
}

# step_names: imap.steps[].name, one a line, "+" or "-" for ok in front.
step_names() {
	cat "$MS_T/steps"
}

# check WANT_VERDICT WANT_RC DESC
check() {
	t_is "$verdict" "$1" "$3: verdict $1"
	t_is "$rc" "$2" "$3: exit $2"
	if [ "$verdict" != "$1" ] || [ "$rc" != "$2" ]; then
		printf '# stdout: %s\n# stderr: %s\n' "$out" "$err" | head -n 30
	fi
}

CRED=(--user "$TB_USER" --password-file "$pwfile")
H=127.0.0.1

# ---------------------------------------------------------------- working
diag --imap "$H:$TB_IMAP_PORT" --imap-security starttls "${CRED[@]}" --json
check ok 0 "STARTTLS on the IMAP port with credentials"
steps=$(step_names)
t_like "$steps" $'\n[+]STARTTLS\n' "STARTTLS step ok"
t_like "$steps" $'\n[+]CAPABILITY \\(after STARTTLS\\)\n' "CAPABILITY asked again after TLS"
t_like "$steps" $'\n[+](LOGIN|AUTHENTICATE PLAIN) as alice@client.test\n' "login step ok"
t_like "$steps" $'\n[+]Sent folder\n' "Sent folder step ok"
t_like "$steps" $'\n[+]LOGOUT$' "LOGOUT last, ok"
t_is "$(grep -c '^-' <<<"$steps")" 0 "no failed step"
t_is "$(jget imap.sent_folder_found)" true "sent_folder_found true"
t_is "$(jget imap.sent_folder)" Sent "sent_folder is Dovecot's \\Sent mailbox"
t_like "$(jget imap.steps.-2.detail)" '"Sent" \(\\Sent\)' "found through the \\Sent special use"
t_is "$(jget imap.tls.trusted)" true "certificate trusted through DiagnoseCAFile"
t_is "$(jget imap.protocol)" imap "protocol imap"
t_is "$(jget imap.alternative)" null "imap.alternative is null"
t_is "$(jget smtp)" "<missing>" "no smtp report when only --imap is given"

diag --imap "$H:$TB_IMAPS_PORT" --imap-security tls "${CRED[@]}" --json
check ok 0 "implicit TLS on the imaps port"
t_is "$(jget imap.sent_folder)" Sent "implicit TLS: Sent found"
t_like "$(jget imap.tls.version)" '^TLS' "implicit TLS: TLS version reported"

# no --imap-security and a port other than 993: STARTTLS is assumed
diag --imap "$H:$TB_IMAPS_PORT" "${CRED[@]}" --json
check tls_mode_mismatch 1 "no --imap-security against imaps: STARTTLS assumed, mismatch"

diag --imap "$H:$TB_IMAP_PORT" --imap-security none "${CRED[@]}" --json
check ok 0 "security none on the plain port (Dovecot trusts 127.0.0.1 -> 127.0.0.1)"
t_like "$(step_names)" $'\n[+]STARTTLS available\n' "security none: the STARTTLS offer is noted"

diag --imap "$H:$TB_IMAP_PORT" --imap-security starttls --json
check ok 0 "no credentials: connection and TLS only"
t_is "$(jget imap.sent_folder_found)" null "no credentials: Sent folder not checked (null)"

diag --imap "$H:$TB_IMAP_PORT" --imap-security starttls "${CRED[@]}"
t_is "$rc" 0 "text output: exit 0"
t_like "$out" "IMAP $H port $TB_IMAP_PORT \\(starttls\\)" "text output: IMAP heading"
t_like "$out" '✓ LOGIN as alice@client.test' "text output: check list"
t_like "$out" 'Sent folder: Sent' "text output: the Sent folder"
t_like "$out" 'verdict: ok' "text output: verdict"

# ---------------------------------------------------------------- --smtp and --imap
diag --smtp "$H:$TB_SUBMISSION_PORT" --imap "$H:$TB_IMAPS_PORT" --imap-security tls "${CRED[@]}" --json
check ok 0 "--smtp and --imap together, both ok"
t_is "$(jget smtp.verdict)" ok "together: smtp.verdict ok"
diag --smtp "$H:$TB_SUBMISSION_PORT" --imap "$H:$TB_CLOSED_PORT" "${CRED[@]}" --json
check connect_refused 1 "together: smtp ok, imap refused -> exit 1"
t_is "$(jget smtp.verdict)" ok "together: smtp.verdict still ok"
diag --smtp "$H:$TB_CLOSED_PORT" --imap "$H:$TB_IMAPS_PORT" --imap-security tls "${CRED[@]}" --json
check ok 1 "together: smtp refused, imap ok -> exit 1"
t_is "$(jget smtp.verdict)" connect_refused "together: smtp.verdict connect_refused"
diag --smtp "$H:$TB_SUBMISSION_PORT" --imap "$H:$TB_IMAP_PORT" --imap-security starttls "${CRED[@]}"
t_is "$rc" 0 "together, text: exit 0"
t_like "$out" $'\n\nIMAP '"$H port $TB_IMAP_PORT" "together, text: the IMAP section after the SMTP one"

# ---------------------------------------------------------------- TLS mode and certificates
diag --imap "$H:$TB_IMAP_PORT" --imap-security tls --json
check tls_mode_mismatch 1 "implicit TLS against the plain IMAP port"
t_like "$(jget imap.steps.-1.detail)" '^\* OK' "the server's plain \"* OK\" is quoted"

diag --imap "$H:$TB_IMAPS_PORT" --imap-security starttls --json
check tls_mode_mismatch 1 "STARTTLS against the imaps port"
t_like "$(step_names)" $'\n-greeting\n-TLS probe' "greeting timed out, then the TLS probe answered"
if [ "$ms" -le 7000 ]; then
	t_ok "STARTTLS against imaps: $ms ms (DiagnoseTimeout 5 s + 2 s)"
else
	t_fail "STARTTLS against imaps: $ms ms (DiagnoseTimeout 5 s + 2 s)"
fi

diag --imap "$TB_IMAPS_EXPIRED_HOST:$TB_IMAPS_EXPIRED_PORT" --imap-security tls "${CRED[@]}" --json
check cert_expired 1 "expired certificate"
t_like "$(jget imap.tls.days_to_expiry)" '^-[0-9]+$' "expired: days_to_expiry negative"

diag --imap "$TB_IMAPS_WRONGNAME_HOST:$TB_IMAPS_WRONGNAME_PORT" --imap-security tls "${CRED[@]}" --json
check cert_hostname_mismatch 1 "certificate for another name"
t_like "$(jget imap.tls.subject)" 'other\.test' "wrong name: it is the other.test certificate"
t_is "$(jget imap.tls.trusted)" true "wrong name: the chain itself is trusted"

diag --imap "$TB_IMAPS_SELFSIGNED_HOST:$TB_IMAPS_SELFSIGNED_PORT" --imap-security tls "${CRED[@]}" --json
check cert_untrusted 1 "self-signed certificate"
t_is "$(jget imap.tls.trusted)" false "self-signed: not trusted"

diag --imap "$TB_IMAP_REMOTE_HOST:$TB_IMAP_REMOTE_PORT" --imap-security none "${CRED[@]}" --json
check auth_unavailable 1 "LOGINDISABLED without TLS (security none)"
t_like "$(jget imap.advice)" 'STARTTLS.*993' "LOGINDISABLED: advice names STARTTLS and 993"
t_like "$(jget imap.steps.-1.detail)" 'LOGINDISABLED' "LOGINDISABLED: the step says so"

diag --imap "$TB_IMAP_REMOTE_HOST:$TB_IMAP_REMOTE_PORT" --imap-security starttls "${CRED[@]}" --json
check cert_expired 1 "STARTTLS on the remote listener: its expired certificate"

# ---------------------------------------------------------------- faults
diag --imap "$H:$TB_CLOSED_PORT" --json
check connect_refused 1 "closed port"

diag --imap "$H:$TB_SILENT_PORT" --imap-security starttls --json
check greeting_timeout 1 "silent server"
if [ "$ms" -le 7000 ]; then
	t_ok "silent server: returned in $ms ms (DiagnoseTimeout 5 s + 2 s)"
else
	t_fail "silent server: returned in $ms ms (DiagnoseTimeout 5 s + 2 s)"
fi

diag --imap "$H:$TB_GARBAGE_PORT" --imap-security none --json
check protocol_error 1 "garbage instead of a greeting"
t_like "$(jget imap.steps.-1.detail)" 'HELLO THERE' "garbage: the server's words"

diag --imap "$H:$TB_NOAUTH_PORT" --imap-security none --json
check protocol_error 1 "an SMTP server on the IMAP port"
t_like "$(jget imap.advice)" 'SMTP' "SMTP server: the advice says so"

# ---------------------------------------------------------------- usage
diag --imap "$H:$TB_IMAP_PORT" --imap-security smoke --json
t_is "$rc" 2 "bad --imap-security: exit 2"
diag --imap-security tls --json
t_is "$rc" 2 "--imap-security without --imap: exit 2"
diag --imap "$H:0" --json
t_is "$rc" 2 "--imap port 0: exit 2"
diag --imap "$H:$TB_IMAP_PORT" --user "$TB_USER" --json
t_is "$rc" 2 "--imap with --user and no --password-file: exit 2"
diag --imap "$H:$TB_IMAP_PORT" --from "$TB_USER" --json
t_is "$rc" 2 "--from without --smtp: exit 2"

# ---------------------------------------------------------------- last: a wrong password
diag --imap "$H:$TB_IMAPS_PORT" --imap-security tls --user "$TB_USER" --password-file "$badpwfile" --json
check auth_failed 1 "wrong password"
t_like "$(jget imap.steps.-1.detail)" 'AUTHENTICATIONFAILED' "wrong password: Dovecot's words"
t_is "$(jget imap.hint)" "user name or password wrong" "wrong password: hint"
t_is "$(jget imap.sent_folder_found)" null "wrong password: Sent folder not checked"

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
