#!/usr/bin/env bash
# test_testbed.sh BINDIR - proves the prober's test bed (tests/lib/testbed.sh)
# with ordinary clients only (curl, swaks, openssl s_client, python3): what a
# connection prober must see on each server.  BINDIR is not used (the bed is
# independent of helpgate's programs).  curl exit codes are CURLcodes:
# 0 ok, 7 refused, 8 weird reply, 28 timeout, 35 TLS handshake, 55 send
# error, 60 certificate, 64 TLS required but not offered, 67 login denied.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/mailstack.sh"
. "$here/../lib/testbed.sh"

for c in curl swaks openssl python3 dovecot postfix; do
	command -v "$c" >/dev/null || { echo "no $c"; echo "0 passed, 1 failed"; exit 1; }
done

ms_init || exit 1
start=$(date +%s%N)
if ! tb_start_bed; then
	t_fail "test bed starts"
	t_done
	exit 1
fi
ms=$((($(date +%s%N) - start) / 1000000))
t_ok "test bed up in $ms ms (expired certificate via $TB_EXPIRED_METHOD)"

# cx EXPECTED DESC CURL-ARGS...: run curl (10 s limit unless given), check
# its exit code (EXPECTED may be alternatives: "8|56"); the transcript (-v) is kept in $MS_T/curl.out.
CURL_N=0
cx() {
	local want=$1 desc=$2 rc
	shift 2
	CURL_N=$((CURL_N + 1))
	curl -sS -v --max-time 10 "$@" </dev/null >"$MS_T/curl.out" 2>&1
	rc=$?
	cp "$MS_T/curl.out" "$MS_T/curl-$CURL_N.out"
	if [[ $rc =~ ^($want)$ ]]; then
		t_ok "$desc (curl $rc)"
	else
		t_fail "$desc (curl $rc)" "expected curl exit $want" "$(tail -n 12 "$MS_T/curl.out")"
	fi
}

# ehlo PORT: the server's greeting and EHLO reply, one line each, CR removed
# (bash /dev/tcp: python3 takes up to a second to start on a loaded machine).
ehlo() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		reply() {
			local l
			while IFS= read -r -t 5 l <&3; do
				l=${l%$'\r'}
				printf '%s\n' "$l"
				[[ $l =~ ^[0-9]{3}- ]] || return 0
			done
			return 1
		}
		reply || exit 1
		printf 'EHLO client.test\r\n' >&3
		reply
		printf 'QUIT\r\n' >&3
	) 2>/dev/null
}

# enddate: notAfter of the PEM certificate on stdin.
enddate() { openssl x509 -noout -enddate 2>/dev/null | sed 's/^notAfter=//'; }

A=(--user "$TB_USER:$TB_PASS" --mail-from "$TB_USER" --mail-rcpt "$TB_USER" -T /dev/null)
TLS=(--ssl-reqd --cacert "$TB_CA")

# ---------------------------------------------------------------- certificates
t_like "$(openssl verify -CAfile "$TB_CA" -verify_hostname localhost "$TB_CERT_GOOD" 2>&1)" ": OK$" \
	"good certificate verifies for localhost"
t_like "$(openssl verify -CAfile "$TB_CA" -verify_ip 127.0.0.1 "$TB_CERT_GOOD" 2>&1)" ": OK$" \
	"good certificate verifies for 127.0.0.1"
t_like "$(openssl verify -CAfile "$TB_CA" -verify_hostname localhost "$TB_CERT_WRONGNAME" 2>&1)" \
	"hostname mismatch" "wrongname certificate: hostname mismatch for localhost"
t_like "$(openssl verify -CAfile "$TB_CA" -verify_hostname other.test "$TB_CERT_WRONGNAME" 2>&1)" ": OK$" \
	"wrongname certificate verifies for other.test"
t_like "$(openssl verify -CAfile "$TB_CA" "$TB_CERT_EXPIRED" 2>&1)" "certificate has expired" \
	"expired certificate: has expired"
t_like "$(openssl verify -CAfile "$TB_CA" "$TB_CERT_SELFSIGNED" 2>&1)" "self-signed certificate" \
	"self-signed certificate: not trusted by the CA"
t_is "$(openssl x509 -in "$TB_CERT_SELFSIGNED" -noout -issuer | sed 's/^issuer=//')" \
	"$(openssl x509 -in "$TB_CERT_SELFSIGNED" -noout -subject | sed 's/^subject=//')" \
	"self-signed: issuer = subject"

# ---------------------------------------------------------------- submission (STARTTLS)
P=$TB_SUBMISSION_PORT
e=$(ehlo "$P")
t_like "$e" "^220 " "submission: 220 greeting"
t_like "$e" "250.STARTTLS" "submission: STARTTLS offered"
if [[ $e =~ AUTH ]]; then t_fail "submission: no AUTH before STARTTLS" "$e"; else t_ok "submission: no AUTH before STARTTLS"; fi
cx 0 "submission: STARTTLS + AUTH alice + send" --url "smtp://127.0.0.1:$P" "${TLS[@]}" "${A[@]}"
t_like "$(cat "$MS_T/curl.out")" "250-AUTH PLAIN LOGIN|250-AUTH LOGIN PLAIN" "submission: AUTH PLAIN LOGIN after STARTTLS"
if ms_wait_sink 1 15; then t_ok "submission: the message reached the sink"; else t_fail "submission: the message reached the sink"; fi
cx 0 "submission: bob / app-only authenticates" --url "smtp://127.0.0.1:$P" "${TLS[@]}" \
	--user "$TB_USER2:$TB_PASS2" --mail-from "$TB_USER2" --mail-rcpt "$TB_USER2" -T /dev/null
cx 55 "submission: without STARTTLS, MAIL refused" --url "smtp://127.0.0.1:$P" "${A[@]}"
t_like "$(cat "$MS_T/curl.out")" "530 5\.7\.0" "submission: 530 5.7.0 Must issue a STARTTLS command first"
cx 35 "submission: implicit TLS against a STARTTLS port" --url "smtps://127.0.0.1:$P" "${TLS[@]}" "${A[@]}"
cx 0 "submission: --connect-only style probe (no mail) by name localhost" \
	--url "smtp://localhost:$P" --connect-to "localhost:$P:127.0.0.1:$P" "${TLS[@]}" \
	--user "$TB_USER:$TB_PASS" -X NOOP
# swaks too: TLS, AUTH, one message
if swaks --server "127.0.0.1:$P" --tls --tls-verify --tls-ca-path "$TB_CA" --auth PLAIN \
	--auth-user "$TB_USER" --auth-password "$TB_PASS" --from "$TB_USER" --to "$TB_USER" \
	--helo client.test >"$MS_T/swaks.out" 2>&1 </dev/null; then
	t_ok "submission: swaks --tls --auth sends"
else
	t_fail "submission: swaks --tls --auth sends" "$(tail -n 15 "$MS_T/swaks.out")"
fi

# ---------------------------------------------------------------- submission with a sender login map
# reject_sender_login_mismatch: alice owns alice@client.test and nothing
# else; Postfix delays the refusal to RCPT TO (smtpd_delay_reject = yes).
P=$TB_SUBMISSION_SENDERCHECK_PORT
cx 0 "sendercheck: alice sends as alice@client.test" --url "smtp://127.0.0.1:$P" "${TLS[@]}" "${A[@]}"
cx 55 "sendercheck: alice as bob@client.test is refused" --url "smtp://127.0.0.1:$P" "${TLS[@]}" \
	--user "$TB_USER:$TB_PASS" --mail-from bob@client.test --mail-rcpt "$TB_USER" -T /dev/null
t_like "$(tr -d '\r' <"$MS_T/curl.out" | sed -n '/> MAIL FROM:<bob@client.test>/,$p' | grep -m1 '^< ')" \
	"^< 250 " "sendercheck: MAIL FROM bob is accepted (the refusal is delayed)"
t_like "$(cat "$MS_T/curl.out")" "< 553 5\.7\.1 <bob@client\.test>: Sender address rejected: not owned by user $TB_USER" \
	"sendercheck: RCPT TO gets 553 5.7.1 ... not owned by user alice@client.test"
cx 55 "sendercheck: no login, as alice@client.test: refused" --url "smtp://127.0.0.1:$P" "${TLS[@]}" \
	--mail-from "$TB_USER" --mail-rcpt "$TB_USER" -T /dev/null
t_like "$(cat "$MS_T/curl.out")" "< 553 5\.7\.1 <$TB_USER>: Sender address rejected: not logged in" \
	"sendercheck: without a login alice's address gets ... not logged in"
cx 55 "sendercheck: no login, as an address nobody owns: refused" --url "smtp://127.0.0.1:$P" "${TLS[@]}" \
	--mail-from nobody@elsewhere.test --mail-rcpt "$TB_USER" -T /dev/null
t_like "$(cat "$MS_T/curl.out")" "< 554 5\.7\.1 <$TB_USER>: Recipient address rejected: Access denied" \
	"sendercheck: without a login an unowned sender passes, the recipient is refused (5.7.1)"

# ---------------------------------------------------------------- smtps (implicit TLS)
P=$TB_SMTPS_PORT
cx 0 "smtps: implicit TLS + AUTH + send" --url "smtps://127.0.0.1:$P" "${TLS[@]}" "${A[@]}"
s=$SECONDS
cx 28 "smtps: STARTTLS against implicit TLS times out" --url "smtp://127.0.0.1:$P" "${TLS[@]}" "${A[@]}" --max-time 2
t_like "$((SECONDS - s))" "^[234]$" "smtps: ... after the 2 s limit"

# ---------------------------------------------------------------- bad certificates
P=$TB_SUBMISSION_EXPIRED_PORT
cx 60 "expired: certificate rejected" --url "smtp://127.0.0.1:$P" "${TLS[@]}" "${A[@]}"
t_like "$(cat "$MS_T/curl.out")" "expired" "expired: curl says expired"
cx 0 "expired: --insecure still authenticates" --url "smtp://127.0.0.1:$P" "${TLS[@]}" --insecure "${A[@]}"
sc=$(openssl s_client -starttls smtp -connect "127.0.0.1:$P" -CAfile "$TB_CA" </dev/null 2>&1)
t_like "$sc" "Verify return code: 10 \(certificate has expired\)" "expired: s_client verify code 10"
na=$(printf '%s\n' "$sc" | enddate)
if [ -n "$na" ] && [ "$(date -d "$na" +%s)" -lt "$(date +%s)" ]; then
	t_ok "expired: s_client shows notAfter in the past ($na)"
else
	t_fail "expired: s_client shows notAfter in the past" "notAfter: '$na'"
fi

P=$TB_SUBMISSION_WRONGNAME_PORT
cx 60 "wrongname: rejected for 127.0.0.1" --url "smtp://127.0.0.1:$P" "${TLS[@]}" "${A[@]}"
t_like "$(cat "$MS_T/curl.out")" "127\.0\.0\.1|does not match|subject" "wrongname: curl names the mismatch"
cx 60 "wrongname: rejected for localhost" --url "smtp://localhost:$P" \
	--connect-to "localhost:$P:127.0.0.1:$P" "${TLS[@]}" "${A[@]}"
cx 0 "wrongname: accepted as other.test" --url "smtp://other.test:$P" \
	--connect-to "other.test:$P:127.0.0.1:$P" "${TLS[@]}" "${A[@]}"
sc=$(openssl s_client -starttls smtp -connect "127.0.0.1:$P" -CAfile "$TB_CA" \
	-verify_hostname localhost </dev/null 2>&1)
t_like "$sc" "Verify return code: 62 \(hostname mismatch\)" "wrongname: s_client verify code 62"

P=$TB_SUBMISSION_SELFSIGNED_PORT
cx 60 "selfsigned: rejected" --url "smtp://127.0.0.1:$P" "${TLS[@]}" "${A[@]}"
sc=$(openssl s_client -starttls smtp -connect "127.0.0.1:$P" -CAfile "$TB_CA" </dev/null 2>&1)
t_like "$sc" "Verify return code: 18 \(self-signed certificate\)" "selfsigned: s_client verify code 18"
cx 0 "selfsigned: --insecure still authenticates" --url "smtp://127.0.0.1:$P" "${TLS[@]}" --insecure "${A[@]}"

# ---------------------------------------------------------------- IMAP
P=$TB_IMAP_PORT
g=$(python3 - "$P" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
f = s.makefile("rb")
print(f.readline().decode().rstrip())
s.sendall(b"a CAPABILITY\r\n")
while True:
    l = f.readline().decode().rstrip()
    print(l)
    if l.startswith("a "):
        break
s.sendall(b"b LOGOUT\r\n")
EOF
)
t_like "$g" "^\* OK " "imap: * OK greeting"
t_like "$g" "STARTTLS" "imap: STARTTLS offered"
cx 0 "imap: STARTTLS + LOGIN + LIST" --url "imap://127.0.0.1:$P/" "${TLS[@]}" --user "$TB_USER:$TB_PASS"
t_like "$(cat "$MS_T/curl.out")" 'LIST \([^)]*\\Sent[^)]*\) "/" Sent' "imap: Sent folder exists (\\Sent)"
t_like "$(cat "$MS_T/curl.out")" 'LIST \([^)]*\) "/" INBOX' "imap: INBOX exists"
cx 0 "imap: bob / app-only logs in" --url "imap://127.0.0.1:$P/" "${TLS[@]}" --user "$TB_USER2:$TB_PASS2"
cx 0 "imap: STARTTLS not required (plain login on loopback)" --url "imap://127.0.0.1:$P/" --user "$TB_USER:$TB_PASS"
sc=$(openssl s_client -starttls imap -connect "127.0.0.1:$P" -CAfile "$TB_CA" -verify_ip 127.0.0.1 </dev/null 2>&1)
t_like "$sc" "Verify return code: 0 \(ok\)" "imap: s_client -starttls imap verifies"
P=$TB_IMAPS_PORT
cx 0 "imaps: implicit TLS + LOGIN + LIST" --url "imaps://127.0.0.1:$P/" --cacert "$TB_CA" --user "$TB_USER:$TB_PASS"
t_like "$(cat "$MS_T/curl.out")" '\\Sent' "imaps: Sent folder listed"
cx 0 "imaps: EXAMINE Sent" --url "imaps://127.0.0.1:$P/Sent" --cacert "$TB_CA" \
	--user "$TB_USER:$TB_PASS" -X 'EXAMINE Sent'
cx 35 "imap: implicit TLS against the STARTTLS port" --url "imaps://127.0.0.1:$TB_IMAP_PORT/" \
	--cacert "$TB_CA" --user "$TB_USER:$TB_PASS"

# ---------------------------------------------------------------- fault servers
cx 7 "closed port: refused" --url "smtp://127.0.0.1:$TB_CLOSED_PORT" "${A[@]}"
s=$SECONDS
cx 28 "silent: times out" --url "smtp://127.0.0.1:$TB_SILENT_PORT" "${A[@]}" --max-time 2
t_like "$((SECONDS - s))" "^[234]$" "silent: ... after the 2 s limit"
g=$(timeout 5 python3 -c 'import socket,sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=4)
d = b""
while True:
    b = s.recv(100)
    if not b: break
    d += b
sys.stdout.write(repr(d))' "$TB_GARBAGE_PORT")
t_is "$g" "b'HELLO THERE\\r\\n'" "garbage: says HELLO THERE and closes"
cx "8|56" "garbage: weird reply or receive error" --url "smtp://127.0.0.1:$TB_GARBAGE_PORT" "${A[@]}"

e=$(ehlo "$TB_NOSTARTTLS_PORT")
t_like "$e" "^220 " "nostarttls: 220 greeting"
t_like "$e" "250.AUTH PLAIN LOGIN" "nostarttls: AUTH PLAIN LOGIN offered in clear"
if [[ $e =~ STARTTLS ]]; then t_fail "nostarttls: no STARTTLS" "$e"; else t_ok "nostarttls: no STARTTLS"; fi
cx 64 "nostarttls: TLS required: fails" --url "smtp://127.0.0.1:$TB_NOSTARTTLS_PORT" "${TLS[@]}" "${A[@]}"
cx 0 "nostarttls: AUTH in clear works" --url "smtp://127.0.0.1:$TB_NOSTARTTLS_PORT" "${A[@]}"
t_like "$(cat "$MS_T/curl.out")" "> AUTH PLAIN" "nostarttls: curl sent AUTH PLAIN in clear"

e=$(ehlo "$TB_NOAUTH_PORT")
t_like "$e" "^220 " "noauth: 220 greeting"
if [[ $e =~ AUTH|STARTTLS ]]; then t_fail "noauth: neither AUTH nor STARTTLS" "$e"; else t_ok "noauth: neither AUTH nor STARTTLS"; fi
cx 0 "noauth: mail accepted (curl skips AUTH silently)" --url "smtp://127.0.0.1:$TB_NOAUTH_PORT" "${A[@]}"
if grep -q '> AUTH' "$MS_T/curl.out"; then t_fail "noauth: curl sent no AUTH"; else t_ok "noauth: curl sent no AUTH"; fi
cx 64 "noauth: TLS required: fails" --url "smtp://127.0.0.1:$TB_NOAUTH_PORT" "${TLS[@]}" "${A[@]}"
if swaks --server "127.0.0.1:$TB_NOAUTH_PORT" --auth PLAIN --auth-user x --auth-password y \
	--from a@b.test --to c@d.test >"$MS_T/swaks.out" 2>&1 </dev/null; then
	t_fail "noauth: swaks --auth fails"
else
	t_like "$(cat "$MS_T/swaks.out")" "did not advertise authentication" "noauth: swaks --auth fails: no AUTH advertised"
fi

e=$(ehlo "$TB_APPPASS_PORT")
t_like "$e" "250.AUTH PLAIN" "apppass: AUTH PLAIN offered"
cx 67 "apppass: login denied" --url "smtp://127.0.0.1:$TB_APPPASS_PORT" "${A[@]}"
t_like "$(cat "$MS_T/curl.out")" "535 5\.7\.9 Application-specific password required" "apppass: 535 5.7.9 text"
cx 67 "apppass: AUTH LOGIN denied too" --url "smtp://127.0.0.1:$TB_APPPASS_PORT" \
	--login-options AUTH=LOGIN "${A[@]}"

cx 55 "relaydeny: RCPT refused" --url "smtp://127.0.0.1:$TB_RELAYDENY_PORT" \
	--user x:y --mail-from a@b.test --mail-rcpt outside@elsewhere.test -T /dev/null
t_like "$(cat "$MS_T/curl.out")" "> AUTH PLAIN" "relaydeny: curl authenticated"
t_like "$(cat "$MS_T/curl.out")" "235 " "relaydeny: AUTH accepted"
t_like "$(cat "$MS_T/curl.out")" "554 5\.7\.1 <outside@elsewhere\.test>: Relay access denied" \
	"relaydeny: 554 5.7.1 Relay access denied"

# a second connection after all that: every fault server still answers
e=$(ehlo "$TB_APPPASS_PORT")
t_like "$e" "^220 " "fault servers still answer"

# ---------------------------------------------------------------- libcurl-gnutls
# The prober links libcurl-gnutls: the same verdicts through GnuTLS (python3
# ctypes, CURLOPT_CONNECT_ONLY: greeting, EHLO, STARTTLS, AUTH, no mail).
GLIB=$(find /usr/lib -name libcurl-gnutls.so.4 2>/dev/null | head -n 1)
# gcurl URL [CAFILE [USER PASS]]: the CURLcode of a connect-only transfer.
gcurl() {
	python3 - "$GLIB" "$@" <<'PYEOF'
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
lib.curl_easy_init.restype = ctypes.c_void_p
lib.curl_easy_setopt.argtypes = None
h = ctypes.c_void_p(lib.curl_easy_init())
def so(opt, v):
    if isinstance(v, int):
        v = ctypes.c_long(v)
    else:
        v = ctypes.c_char_p(v.encode())
    lib.curl_easy_setopt(h, ctypes.c_int(opt), v)
args = sys.argv[2:]
so(10002, args[0])                 # CURLOPT_URL
so(119, 3)                         # CURLOPT_USE_SSL = CURLUSESSL_ALL
so(141, 1)                         # CURLOPT_CONNECT_ONLY
so(155, 8000)                      # CURLOPT_TIMEOUT_MS
so(99, 1)                          # CURLOPT_NOSIGNAL
if len(args) > 1 and args[1]:
    so(10065, args[1])             # CURLOPT_CAINFO
if len(args) > 3:
    so(10173, args[2])             # CURLOPT_USERNAME
    so(10174, args[3])             # CURLOPT_PASSWORD
print(lib.curl_easy_perform(h))
PYEOF
}
if [ -z "$GLIB" ]; then
	t_ok "# SKIP libcurl-gnutls not installed"
else
	t_is "$(gcurl "smtp://127.0.0.1:$TB_SUBMISSION_PORT" "$TB_CA" "$TB_USER" "$TB_PASS")" 0 \
		"gnutls: submission STARTTLS + AUTH"
	t_is "$(gcurl "smtps://127.0.0.1:$TB_SMTPS_PORT" "$TB_CA" "$TB_USER" "$TB_PASS")" 0 \
		"gnutls: smtps + AUTH"
	t_is "$(gcurl "smtp://127.0.0.1:$TB_SUBMISSION_EXPIRED_PORT" "$TB_CA" "$TB_USER" "$TB_PASS")" 60 \
		"gnutls: expired certificate: 60"
	t_is "$(gcurl "smtp://127.0.0.1:$TB_SUBMISSION_WRONGNAME_PORT" "$TB_CA" "$TB_USER" "$TB_PASS")" 60 \
		"gnutls: wrong name: 60"
	t_is "$(gcurl "smtp://127.0.0.1:$TB_SUBMISSION_SELFSIGNED_PORT" "$TB_CA" "$TB_USER" "$TB_PASS")" 60 \
		"gnutls: self-signed: 60"
	t_is "$(gcurl "imap://127.0.0.1:$TB_IMAP_PORT/" "$TB_CA" "$TB_USER" "$TB_PASS")" 0 \
		"gnutls: imap STARTTLS + LOGIN"
	t_is "$(gcurl "imaps://127.0.0.1:$TB_IMAPS_PORT/" "$TB_CA" "$TB_USER" "$TB_PASS")" 0 \
		"gnutls: imaps + LOGIN"
	t_is "$(gcurl "smtp://127.0.0.1:$TB_NOSTARTTLS_PORT" "" "$TB_USER" "$TB_PASS")" 64 \
		"gnutls: no STARTTLS with TLS required: 64"
	t_is "$(gcurl "smtp://127.0.0.1:$TB_CLOSED_PORT" "")" 7 "gnutls: closed port: 7"
fi

# ---------------------------------------------------------------- wrong passwords
# Last: after a failed login Dovecot delays every later authentication from
# 127.0.0.1 (auth penalty: 2, 4, 8, 15 s, for about 30 s), so only two
# (smtps shares the submission's SASL path: not repeated).
s=$SECONDS
cx 67 "submission: wrong password: login denied" --url "smtp://127.0.0.1:$TB_SUBMISSION_PORT" "${TLS[@]}" \
	--user "$TB_USER:wrong" --mail-from "$TB_USER" --mail-rcpt "$TB_USER" -T /dev/null
t_like "$(cat "$MS_T/curl.out")" "535 5\.7\.8" "submission: wrong password gets 535 5.7.8"
cx 67 "imap: wrong password: login denied" --url "imap://127.0.0.1:$TB_IMAP_PORT/" "${TLS[@]}" --user "$TB_USER:wrong"
t_like "$(cat "$MS_T/curl.out")" "AUTHENTICATIONFAILED|Authentication failed" "imap: NO [AUTHENTICATIONFAILED]"
ms_log "two failed logins took $((SECONDS - s)) s"

t_done
