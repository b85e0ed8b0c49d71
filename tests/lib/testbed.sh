# shellcheck shell=bash
# testbed.sh - a mail-client test bed on loopback for the connection prober
# (issue 5): certificates made here, Dovecot (IMAP, imaps, SASL for
# Postfix), Postfix submission listeners (STARTTLS, implicit TLS, bad
# certificates) and small fault servers.  Source it AFTER mailstack.sh; it
# reuses ms_init, ms_free_port, ms_spawn, ms_on_exit and the PID clean-up,
# so every process started here is stopped at exit.
#
#   . tests/lib/mailstack.sh
#   . tests/lib/testbed.sh
#   ms_init
#   tb_start_bed [MILTER]         all of the following (the fault servers
#                                 and Dovecot start first, are waited for last):
#     tb_certs                    CA + good/wrongname/expired/selfsigned
#     tb_start_dovecot            IMAP $TB_IMAP_PORT, imaps $TB_IMAPS_PORT
#     ms_start_sink               (mailstack; mail sent on the bed lands here)
#     ms_start_postfix [MILTER]   (mailstack)
#     tb_start_submission         submission/smtps/bad-cert listeners (reload)
#     tb_start_faults             python3 fault servers
#   tb_describe                   print every TB_* setting
# Call the steps one by one instead in this order (tb_start_submission
# after ms_start_postfix; tb_start_dovecot before Postfix authenticates).
# Startup takes ~3 s on an idle machine (6-15 s with other suites running).
#
# Users (Dovecot passwd-file; the same accounts authenticate Postfix SASL):
#   TB_USER / TB_PASS    alice@client.test / s3cret
#   TB_USER2 / TB_PASS2  bob@client.test / app-only
#
# Certificates ($MS_T/certs; every leaf is signed by TB_CA except selfsigned):
#   TB_CA TB_CA_KEY
#   TB_CERT_GOOD TB_KEY_GOOD             CN=localhost, SAN DNS:localhost, IP:127.0.0.1
#   TB_CERT_WRONGNAME TB_KEY_WRONGNAME   CN=other.test, SAN DNS:other.test only
#   TB_CERT_EXPIRED TB_KEY_EXPIRED       like good, valid 2020-01-01 .. 2020-01-31
#   TB_CERT_SELFSIGNED TB_KEY_SELFSIGNED like good, but self-signed
#   TB_EXPIRED_METHOD                    x509-dates | faketime | openssl-ca
#
# Ports (all on 127.0.0.1):
#   TB_IMAP_PORT              Dovecot IMAP, STARTTLS offered (not required)
#   TB_IMAPS_PORT             Dovecot IMAP, implicit TLS
#   TB_IMAPS_EXPIRED_PORT     Dovecot imaps on TB_IMAPS_EXPIRED_HOST (127.0.0.2),
#                             expired certificate
#   TB_IMAPS_WRONGNAME_PORT   ... on TB_IMAPS_WRONGNAME_HOST (127.0.0.3), other.test
#   TB_IMAPS_SELFSIGNED_PORT  ... on TB_IMAPS_SELFSIGNED_HOST (127.0.0.4), self-signed
#                             (Dovecot 2.3 picks a certificate by local address,
#                             not by port; no certificate names 127.0.0.2-4, so
#                             only the verdict that outranks the name is seen)
#   TB_IMAP_REMOTE_PORT       Dovecot IMAP on TB_IMAP_REMOTE_HOST (127.0.0.2):
#                             the client's address (127.0.0.1) differs, so
#                             Dovecot does not count it as local: LOGINDISABLED
#                             until STARTTLS (expired certificate)
#   TB_SUBMISSION_PORT        Postfix, STARTTLS required, SASL after TLS only
#   TB_SMTPS_PORT             Postfix, implicit TLS (wrapper mode), SASL
#   TB_SUBMISSION_EXPIRED_PORT    as submission, expired certificate
#   TB_SUBMISSION_WRONGNAME_PORT  as submission, certificate for other.test
#   TB_SUBMISSION_SELFSIGNED_PORT as submission, self-signed certificate
#   TB_SUBMISSION_SENDERCHECK_PORT as submission, plus smtpd_sender_login_maps
#                      (texthash: alice@client.test is owned by TB_USER, no
#                      other address by anyone) and reject_sender_login_mismatch:
#                      TB_USER sending as any other address gets, at RCPT TO
#                      (smtpd_delay_reject), "553 5.7.1 <addr>: Sender address
#                      rejected: not owned by user alice@client.test"; a client
#                      that did not log in, "... not logged in" for alice's
#                      address and, for any other, the relay refusal "554
#                      5.7.1 <rcpt>: Recipient address rejected: Access
#                      denied".  (The other ports take any sender: the
#                      automatic diagnosis verifies an alternative for
#                      carol@client.test with alice's login.)
#   TB_CLOSED_PORT     reserved, nothing listens (connection refused)
#   TB_SILENT_PORT     accepts, never says anything
#   TB_GARBAGE_PORT    sends "HELLO THERE\r\n" and closes
#   TB_NOSTARTTLS_PORT 220, EHLO offers AUTH PLAIN LOGIN in clear, no STARTTLS;
#                      any AUTH succeeds (235), mail accepted
#   TB_NOAUTH_PORT     220, EHLO without AUTH and without STARTTLS; mail accepted
#   TB_APPPASS_PORT    offers AUTH PLAIN LOGIN; every AUTH gets
#                      "535 5.7.9 Application-specific password required"
#   TB_RELAYDENY_PORT  AUTH accepted (235), MAIL 250, RCPT
#                      "554 5.7.1 <rcpt>: Relay access denied"
# The fault servers log each connection to $MS_T/tb-faults.py.log.
#
# Env: TB_KEY_ALG (ec = P-256, default; or e.g. rsa:2048), TB_EXPIRED_FORCE=
# openssl-ca (skip faketime), TB_DOVECOT_CONF_EXTRA (more dovecot.conf lines).
# Logs: $MS_T/dovecot-server.log (Dovecot), $MS_T/maillog (Postfix, syslog
# names postfix/tb-PORT for the bed's listeners), $MS_T/certs/openssl.log.
#
# Functions that start processes must run in the main shell, not in $(...).

TB_USER=alice@client.test
TB_PASS=s3cret
TB_USER2=bob@client.test
TB_PASS2=app-only
# key type of every certificate: "ec" (P-256, made in milliseconds, the
# default) or anything "openssl req -newkey" takes, e.g. rsa:2048 (~0.4 s
# a key here)
TB_KEY_ALG=${TB_KEY_ALG:-ec}

# _tb_newkey: the openssl req arguments for a new key of TB_KEY_ALG.
_tb_newkey() {
	if [ "$TB_KEY_ALG" = ec ]; then
		_TB_NEWKEY=(-newkey ec -pkeyopt ec_paramgen_curve:P-256)
	else
		_TB_NEWKEY=(-newkey "$TB_KEY_ALG")
	fi
}

# ---------------------------------------------------------------- certs

# _tb_x509_has_dates: true if "openssl x509" knows -not_before/-not_after
# (OpenSSL 3.4+; Debian 12 has 3.0 and needs faketime or "openssl ca").
_tb_x509_has_dates() {
	openssl x509 -help 2>&1 | grep -q -- '-not_after'
}

# _tb_leaf NAME SECTION SUBJECT [SIGNER...]: key + CSR, then a cert signed
# by the CA with the extensions of SECTION in certs/ext.cnf, valid 825 days.
_tb_leaf() {
	local name=$1 section=$2 subj=$3 d=$MS_T/certs
	openssl req -new "${_TB_NEWKEY[@]}" -nodes -subj "$subj" \
		-keyout "$d/$name.key" -out "$d/$name.csr" 2>>"$d/openssl.log" || return 1
	openssl x509 -req -in "$d/$name.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
		-CAcreateserial -days 825 -sha256 \
		-extfile "$d/ext.cnf" -extensions "$section" \
		-out "$d/$name.pem" 2>>"$d/openssl.log"
}

# _tb_expired: certs/expired.pem, valid 2020-01-01 .. 2020-01-31, signed by
# the CA; the first method this openssl allows.
_tb_expired() {
	local d=$MS_T/certs
	openssl req -new "${_TB_NEWKEY[@]}" -nodes -subj "/CN=localhost" \
		-keyout "$d/expired.key" -out "$d/expired.csr" 2>>"$d/openssl.log" || return 1
	if [ "${TB_EXPIRED_FORCE:-}" != openssl-ca ] && _tb_x509_has_dates; then
		TB_EXPIRED_METHOD=x509-dates
		openssl x509 -req -in "$d/expired.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
			-CAcreateserial -sha256 -not_before 20200101000000Z -not_after 20200131000000Z \
			-extfile "$d/ext.cnf" -extensions leaf_good \
			-out "$d/expired.pem" 2>>"$d/openssl.log"
		return
	fi
	if [ "${TB_EXPIRED_FORCE:-}" != openssl-ca ] && command -v faketime >/dev/null 2>&1; then
		TB_EXPIRED_METHOD=faketime
		# the fake clock only dates the certificate; -f: time stands still
		# -checkend 0 fails for a certificate that has expired: that is
		# the success case; a valid one means faketime did not work.  A
		# failed signing (libfaketime can fail to set up under load) is
		# told apart from it: then there is no certificate to check.
		if faketime -f '2020-01-01 00:00:00' openssl x509 -req -in "$d/expired.csr" \
			-CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -sha256 -days 30 \
			-extfile "$d/ext.cnf" -extensions leaf_good \
			-out "$d/expired.pem" 2>>"$d/openssl.log" && [ -s "$d/expired.pem" ]; then
			openssl x509 -in "$d/expired.pem" -noout -checkend 0 >/dev/null 2>&1
			[ $? = 1 ] && return 0
		fi
		ms_log "tb_certs: faketime did not backdate the certificate, trying openssl ca"
	fi
	TB_EXPIRED_METHOD=openssl-ca
	mkdir -p "$d/ca-db"
	: >"$d/ca-db/index.txt"
	echo 1000 >"$d/ca-db/serial"
	cat >"$d/ca-db/ca.cnf" <<EOF
[ca]
default_ca = tb
[tb]
dir = $d/ca-db
database = \$dir/index.txt
serial = \$dir/serial
new_certs_dir = \$dir
certificate = $d/ca.pem
private_key = $d/ca.key
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[any]
commonName = supplied
EOF
	openssl ca -batch -notext -config "$d/ca-db/ca.cnf" \
		-startdate 20200101000000Z -enddate 20200131000000Z \
		-extfile "$d/ext.cnf" -extensions leaf_good \
		-in "$d/expired.csr" -out "$d/expired.pem" >>"$d/openssl.log" 2>&1
}

# tb_certs: the CA and the leaf certificates in $MS_T/certs (see the top).
tb_certs() {
	local d=$MS_T/certs ku
	_tb_newkey
	mkdir -p "$d"
	# an EC key signs only; RSA keys may also be used for RSA key exchange
	ku="critical, digitalSignature"
	[ "$TB_KEY_ALG" = ec ] || ku="$ku, keyEncipherment"
	cat >"$d/ext.cnf" <<EOF
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[leaf_good]
basicConstraints = CA:FALSE
keyUsage = $ku
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:localhost, IP:127.0.0.1
[leaf_wrongname]
basicConstraints = CA:FALSE
keyUsage = $ku
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:other.test
[selfsigned]
basicConstraints = CA:FALSE
keyUsage = $ku
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
subjectAltName = DNS:localhost, IP:127.0.0.1
EOF
	openssl req -x509 "${_TB_NEWKEY[@]}" -nodes -days 3650 -sha256 \
		-subj "/O=helpgate tests/CN=helpgate test CA" \
		-config "$d/ext.cnf" -extensions ca_ext \
		-keyout "$d/ca.key" -out "$d/ca.pem" 2>>"$d/openssl.log" || {
		ms_log "tb_certs: CA failed"; cat "$d/openssl.log" >&2; return 1; }
	if ! { _tb_leaf good leaf_good "/CN=localhost" &&
		_tb_leaf wrongname leaf_wrongname "/CN=other.test" && _tb_expired; }; then
		ms_log "tb_certs: leaf certificate failed"
		cat "$d/openssl.log" >&2
		return 1
	fi
	openssl req -x509 "${_TB_NEWKEY[@]}" -nodes -days 825 -sha256 -subj "/CN=localhost" \
		-config "$d/ext.cnf" -extensions selfsigned \
		-keyout "$d/selfsigned.key" -out "$d/selfsigned.pem" 2>>"$d/openssl.log" || {
		ms_log "tb_certs: self-signed failed"; cat "$d/openssl.log" >&2; return 1; }
	chmod 644 "$d"/*.pem
	chmod 600 "$d"/*.key
	TB_CA=$d/ca.pem TB_CA_KEY=$d/ca.key
	TB_CERT_GOOD=$d/good.pem TB_KEY_GOOD=$d/good.key
	TB_CERT_WRONGNAME=$d/wrongname.pem TB_KEY_WRONGNAME=$d/wrongname.key
	TB_CERT_EXPIRED=$d/expired.pem TB_KEY_EXPIRED=$d/expired.key
	TB_CERT_SELFSIGNED=$d/selfsigned.pem TB_KEY_SELFSIGNED=$d/selfsigned.key
	export TB_CA TB_CA_KEY TB_CERT_GOOD TB_KEY_GOOD TB_CERT_WRONGNAME TB_KEY_WRONGNAME \
		TB_CERT_EXPIRED TB_KEY_EXPIRED TB_CERT_SELFSIGNED TB_KEY_SELFSIGNED TB_EXPIRED_METHOD
}

# ---------------------------------------------------------------- dovecot

# _tb_wait_line PORT PREFIX TIMEOUT: true once 127.0.0.1:PORT greets with
# a line starting with PREFIX.
_tb_wait_line() {
	local port=$1 prefix=$2 timeout=${3:-10} end line
	end=$((SECONDS + timeout))
	while [ "$SECONDS" -le "$end" ]; do
		line=$(
			exec 2>/dev/null
			exec 3<>"/dev/tcp/127.0.0.1/$port" || exit
			read -r -t 2 line <&3
			printf '%s' "$line"
		)
		case "$line" in "$prefix"*) return 0 ;; esac
		sleep 0.05
	done
	return 1
}

# tb_start_dovecot: a stand-alone Dovecot (config, runtime, state, logs and
# Maildirs under $MS_T/dovecot), IMAP and imaps with the good certificate,
# imaps with the expired, wrong-name and self-signed ones on 127.0.0.2-4,
# the SASL socket at $MS_T/queue/private/auth for Postfix.  Call after
# ms_init and tb_certs, before or after ms_start_postfix.  Sets
# TB_IMAP_PORT, TB_IMAPS_PORT, TB_IMAPS_{EXPIRED,WRONGNAME,SELFSIGNED}_{HOST,PORT},
# TB_DOVECOT_PID, TB_DOVECOT_CONF.  With
# --no-wait it returns at once; _tb_wait_dovecot waits then.
# Env: TB_DOVECOT_CONF_EXTRA (more dovecot.conf lines, appended).
# A failed login makes Dovecot delay later authentications from 127.0.0.1
# (auth penalty: 2, 4, 8, 15 s, forgotten after ~30 s), Postfix SASL too.
tb_start_dovecot() {
	local D=$MS_T/dovecot nobody_uid nogroup_gid
	[ -n "${TB_CERT_GOOD:-}" ] || { ms_log "tb_start_dovecot: run tb_certs first"; return 1; }
	ms_free_port TB_IMAP_PORT || return 1
	ms_free_port TB_IMAPS_PORT || return 1
	ms_free_port TB_IMAPS_EXPIRED_PORT || return 1
	ms_free_port TB_IMAPS_WRONGNAME_PORT || return 1
	ms_free_port TB_IMAPS_SELFSIGNED_PORT || return 1
	ms_free_port TB_IMAP_REMOTE_PORT || return 1
	TB_IMAPS_EXPIRED_HOST=127.0.0.2 TB_IMAPS_WRONGNAME_HOST=127.0.0.3 TB_IMAPS_SELFSIGNED_HOST=127.0.0.4
	TB_IMAP_REMOTE_HOST=$TB_IMAPS_EXPIRED_HOST
	export TB_IMAP_PORT TB_IMAPS_PORT TB_IMAPS_EXPIRED_PORT TB_IMAPS_WRONGNAME_PORT \
		TB_IMAPS_SELFSIGNED_PORT TB_IMAPS_EXPIRED_HOST TB_IMAPS_WRONGNAME_HOST TB_IMAPS_SELFSIGNED_HOST \
		TB_IMAP_REMOTE_PORT TB_IMAP_REMOTE_HOST
	nobody_uid=$(id -u nobody) nogroup_gid=$(id -g nobody)
	mkdir -p "$D/run" "$D/state" "$D/mail"
	chown nobody: "$D/mail"
	# Postfix's private/ must exist (owned by postfix, 0700, as Postfix
	# makes it) before Dovecot puts the auth socket in it.
	mkdir -p "$MS_T/queue/private"
	chown postfix: "$MS_T/queue/private"
	chmod 700 "$MS_T/queue/private"
	{
		printf '%s:{PLAIN}%s:%s:%s::%s::\n' "$TB_USER" "$TB_PASS" \
			"$nobody_uid" "$nogroup_gid" "$D/mail/$TB_USER"
		printf '%s:{PLAIN}%s:%s:%s::%s::\n' "$TB_USER2" "$TB_PASS2" \
			"$nobody_uid" "$nogroup_gid" "$D/mail/$TB_USER2"
	} >"$D/users"
	chmod 644 "$D/users"
	TB_DOVECOT_CONF=$D/dovecot.conf
	export TB_DOVECOT_CONF
	cat >"$TB_DOVECOT_CONF" <<EOF
# private test Dovecot written by tests/lib/testbed.sh
protocols = imap
listen = 127.0.0.1
base_dir = $D/run
state_dir = $D/state
instance_name = helpgate-tb-$TB_IMAP_PORT
log_path = $MS_T/dovecot-server.log
ssl = yes
ssl_cert = <$TB_CERT_GOOD
ssl_key = <$TB_KEY_GOOD
auth_mechanisms = plain login
disable_plaintext_auth = yes
mail_location = maildir:$D/mail/%u
first_valid_uid = 1
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $D/users
}
userdb {
  driver = passwd-file
  args = username_format=%u $D/users
}
namespace inbox {
  inbox = yes
  separator = /
  mailbox Sent {
    auto = create
    special_use = \\Sent
  }
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $TB_IMAP_PORT
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $TB_IMAPS_PORT
    ssl = yes
  }
  inet_listener imap_remote {
    address = $TB_IMAP_REMOTE_HOST
    port = $TB_IMAP_REMOTE_PORT
  }
  inet_listener imaps_expired {
    address = $TB_IMAPS_EXPIRED_HOST
    port = $TB_IMAPS_EXPIRED_PORT
    ssl = yes
  }
  inet_listener imaps_wrongname {
    address = $TB_IMAPS_WRONGNAME_HOST
    port = $TB_IMAPS_WRONGNAME_PORT
    ssl = yes
  }
  inet_listener imaps_selfsigned {
    address = $TB_IMAPS_SELFSIGNED_HOST
    port = $TB_IMAPS_SELFSIGNED_PORT
    ssl = yes
  }
}
local $TB_IMAPS_EXPIRED_HOST {
  ssl_cert = <$TB_CERT_EXPIRED
  ssl_key = <$TB_KEY_EXPIRED
}
local $TB_IMAPS_WRONGNAME_HOST {
  ssl_cert = <$TB_CERT_WRONGNAME
  ssl_key = <$TB_KEY_WRONGNAME
}
local $TB_IMAPS_SELFSIGNED_HOST {
  ssl_cert = <$TB_CERT_SELFSIGNED
  ssl_key = <$TB_KEY_SELFSIGNED
}
service auth {
  unix_listener $MS_T/queue/private/auth {
    mode = 0660
    user = postfix
    group = postfix
  }
}
EOF
	# TB_DOVECOT_CONF_EXTRA: more dovecot.conf lines from the caller
	if [ -n "${TB_DOVECOT_CONF_EXTRA:-}" ]; then
		printf '%s\n' "$TB_DOVECOT_CONF_EXTRA" >>"$TB_DOVECOT_CONF"
	fi
	if ! doveconf -c "$TB_DOVECOT_CONF" -n >"$D/doveconf.out" 2>&1; then
		ms_log "tb_start_dovecot: bad configuration:"
		sed 's/^/#   /' "$D/doveconf.out" >&2
		return 1
	fi
	# -F: stay in the foreground, so the recorded PID is the master's
	ms_spawn TB_DOVECOT_PID dovecot -F -c "$TB_DOVECOT_CONF"
	ms_on_exit "doveadm -c '$TB_DOVECOT_CONF' stop >/dev/null 2>&1; _tb_wait_gone $TB_DOVECOT_PID 5"
	[ "${1:-}" = --no-wait ] || _tb_wait_dovecot
}

# _tb_wait_dovecot: wait (15 s at most) for Dovecot's auth socket, the IMAP
# greeting and the imaps listener.
_tb_wait_dovecot() {
	local end
	end=$((SECONDS + 15))
	while :; do
		if ! kill -0 "$TB_DOVECOT_PID" 2>/dev/null; then
			ms_log "tb_start_dovecot: dovecot exited:"
			tail -n 20 "$MS_T/dovecot.log" "$MS_T/dovecot-server.log" 2>/dev/null | sed 's/^/#   /' >&2
			return 1
		fi
		[ -S "$MS_T/queue/private/auth" ] &&
			_tb_wait_line "$TB_IMAP_PORT" "* OK" 1 &&
			_ms_wait_port "$TB_IMAPS_PORT" 1 &&
			_tb_wait_addr "$TB_IMAPS_EXPIRED_HOST" "$TB_IMAPS_EXPIRED_PORT" &&
			_tb_wait_addr "$TB_IMAPS_WRONGNAME_HOST" "$TB_IMAPS_WRONGNAME_PORT" &&
			_tb_wait_addr "$TB_IMAPS_SELFSIGNED_HOST" "$TB_IMAPS_SELFSIGNED_PORT" &&
			_tb_wait_addr "$TB_IMAP_REMOTE_HOST" "$TB_IMAP_REMOTE_PORT" && return 0
		if [ "$SECONDS" -ge "$end" ]; then
			ms_log "tb_start_dovecot: not up after 15 s"
			tail -n 20 "$MS_T/dovecot-server.log" 2>/dev/null | sed 's/^/#   /' >&2
			return 1
		fi
		sleep 0.05
	done
}

# _tb_wait_addr HOST PORT: true if HOST:PORT accepts a connection now.
_tb_wait_addr() {
	(exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# _tb_wait_gone PID SECONDS: wait for PID to end (it need not be a child).
_tb_wait_gone() {
	local pid=$1 i
	for ((i = 0; i < ${2:-5} * 20; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.05
	done
	return 1
}

# ---------------------------------------------------------------- postfix

# _tb_smtpd PORT CERT KEY [-o OPTION...]: a master.cf smtpd service on
# 127.0.0.1:PORT with required TLS and Dovecot SASL after TLS only.
_tb_smtpd() {
	local port=$1 cert=$2 key=$3 o
	shift 3
	printf '%-28s inet  n - n - - smtpd\n' "127.0.0.1:$port"
	for o in "syslog_name=postfix/tb-$port" \
		smtpd_tls_security_level=encrypt \
		smtpd_tls_auth_only=yes \
		"smtpd_tls_cert_file=$cert" \
		"smtpd_tls_key_file=$key" \
		smtpd_sasl_auth_enable=yes \
		smtpd_sasl_type=dovecot \
		smtpd_sasl_path=private/auth \
		smtpd_sasl_security_options=noanonymous \
		smtpd_recipient_restrictions=permit_sasl_authenticated,reject \
		smtpd_relay_restrictions=permit_sasl_authenticated,reject \
		"$@"; do
		printf '  -o %s\n' "$o"
	done
}

# tb_start_submission: after ms_start_postfix (and tb_start_dovecot, whose
# auth socket SASL needs), add the submission listeners to the private
# Postfix's master.cf and reload.  Sets TB_SUBMISSION_PORT, TB_SMTPS_PORT,
# TB_SUBMISSION_EXPIRED_PORT, TB_SUBMISSION_WRONGNAME_PORT,
# TB_SUBMISSION_SELFSIGNED_PORT, TB_SUBMISSION_SENDERCHECK_PORT.
tb_start_submission() {
	local p
	[ "${MS_POSTFIX_UP:-0}" = 1 ] || { ms_log "tb_start_submission: run ms_start_postfix first"; return 1; }
	[ -n "${TB_CERT_GOOD:-}" ] || { ms_log "tb_start_submission: run tb_certs first"; return 1; }
	for p in TB_SUBMISSION_PORT TB_SMTPS_PORT TB_SUBMISSION_EXPIRED_PORT \
		TB_SUBMISSION_WRONGNAME_PORT TB_SUBMISSION_SELFSIGNED_PORT \
		TB_SUBMISSION_SENDERCHECK_PORT; do
		ms_free_port "$p" || return 1
		export "${p?}"
	done
	# the sender login map: texthash is read as it is, no postmap
	printf '%s %s\n' "$TB_USER" "$TB_USER" >"$MS_T/pf/tb-sender-logins"
	chmod 644 "$MS_T/pf/tb-sender-logins"
	{
		echo "# submission test bed, added by tests/lib/testbed.sh"
		_tb_smtpd "$TB_SUBMISSION_PORT" "$TB_CERT_GOOD" "$TB_KEY_GOOD"
		_tb_smtpd "$TB_SMTPS_PORT" "$TB_CERT_GOOD" "$TB_KEY_GOOD" smtpd_tls_wrappermode=yes
		_tb_smtpd "$TB_SUBMISSION_EXPIRED_PORT" "$TB_CERT_EXPIRED" "$TB_KEY_EXPIRED"
		_tb_smtpd "$TB_SUBMISSION_WRONGNAME_PORT" "$TB_CERT_WRONGNAME" "$TB_KEY_WRONGNAME"
		_tb_smtpd "$TB_SUBMISSION_SELFSIGNED_PORT" "$TB_CERT_SELFSIGNED" "$TB_KEY_SELFSIGNED"
		_tb_smtpd "$TB_SUBMISSION_SENDERCHECK_PORT" "$TB_CERT_GOOD" "$TB_KEY_GOOD" \
			"smtpd_sender_login_maps=texthash:$MS_T/pf/tb-sender-logins" \
			smtpd_sender_restrictions=reject_sender_login_mismatch
	} >>"$MS_T/pf/master.cf"
	_ms_backdate_cf
	ms_reload || return 1
	for p in "$TB_SUBMISSION_PORT" "$TB_SUBMISSION_EXPIRED_PORT" \
		"$TB_SUBMISSION_WRONGNAME_PORT" "$TB_SUBMISSION_SELFSIGNED_PORT" \
		"$TB_SUBMISSION_SENDERCHECK_PORT"; do
		_ms_wait_banner "$p" 20 || { ms_log "tb_start_submission: no banner on $p"; return 1; }
	done
	# wrapper mode: wait for the TLS greeting, not just the listener
	_tb_wait_tls_banner "$TB_SMTPS_PORT" 20 || { ms_log "tb_start_submission: no TLS banner on $TB_SMTPS_PORT"; return 1; }
}

# _tb_wait_tls_banner PORT TIMEOUT: true once an implicit-TLS SMTP server
# on PORT says 220 (certificate not checked).
_tb_wait_tls_banner() {
	local port=$1 timeout=${2:-10} end
	end=$((SECONDS + timeout))
	while [ "$SECONDS" -le "$end" ]; do
		if printf 'QUIT\r\n' | timeout 5 openssl s_client -quiet -connect "127.0.0.1:$port" \
			2>/dev/null | grep -q '^220'; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# ---------------------------------------------------------------- faults

_tb_write_faults() {
	cat >"$MS_T/tb-faults.py" <<'EOF'
#!/usr/bin/env python3
"""Fault SMTP servers for the helpgate test bed (written by
tests/lib/testbed.sh).  Usage: tb-faults.py MODE=PORT...  One thread per
listener and per connection; exits when its parent (the test shell) is
gone, on SIGTERM, or after --lifetime seconds (default 3600)."""
import os, signal, socket, sys, threading, time, base64

LOG_LOCK = threading.Lock()

def log(msg):
    with LOG_LOCK:
        sys.stdout.write("%s %s\n" % (time.strftime("%H:%M:%S"), msg))
        sys.stdout.flush()

class Conn:
    def __init__(self, sock, mode):
        self.s = sock
        self.mode = mode
        self.f = sock.makefile("rb")

    def send(self, line):
        self.s.sendall(line.encode() + b"\r\n")

    def readline(self):
        l = self.f.readline(4096)
        if not l:
            return None
        return l.decode("latin-1").rstrip("\r\n")

def ehlo_lines(mode):
    caps = ["PIPELINING", "SIZE 10240000", "8BITMIME"]
    if mode in ("nostarttls", "apppass", "relaydeny"):
        caps.append("AUTH PLAIN LOGIN")
    return caps

def do_auth(c, arg, ok):
    """Run the AUTH exchange far enough for any client, then answer."""
    parts = arg.split()
    mech = parts[0].upper() if parts else ""
    if mech == "PLAIN" and len(parts) == 1:
        c.send("334 ")
        if c.readline() is None:
            return False
    elif mech == "LOGIN":
        if len(parts) == 1:
            c.send("334 " + base64.b64encode(b"Username:").decode())
            if c.readline() is None:
                return False
        c.send("334 " + base64.b64encode(b"Password:").decode())
        if c.readline() is None:
            return False
    elif mech != "PLAIN":
        c.send("504 5.5.4 Unrecognized authentication type")
        return True
    if ok:
        c.send("235 2.7.0 Authentication successful")
    else:
        c.send("535 5.7.9 Application-specific password required")
    return True

def smtp_session(c, mode):
    c.send("220 fault.test ESMTP %s" % mode)
    while True:
        line = c.readline()
        if line is None:
            return
        cmd, _, arg = line.partition(" ")
        cmd = cmd.upper()
        if cmd in ("EHLO",):
            caps = ehlo_lines(mode)
            c.send("250-fault.test")
            for cap in caps[:-1]:
                c.send("250-" + cap)
            c.send("250 " + caps[-1])
        elif cmd == "HELO":
            c.send("250 fault.test")
        elif cmd == "STARTTLS":
            c.send("502 5.5.1 STARTTLS not supported")
        elif cmd == "AUTH":
            if mode == "noauth":
                c.send("502 5.5.1 AUTH not supported")
            elif not do_auth(c, arg, mode != "apppass"):
                return
        elif cmd == "MAIL":
            c.send("250 2.1.0 Ok")
        elif cmd == "RCPT":
            if mode == "relaydeny":
                addr = arg.partition(":")[2].strip().split(" ")[0] or "<>"
                c.send("554 5.7.1 %s: Relay access denied" % addr)
            else:
                c.send("250 2.1.5 Ok")
        elif cmd == "DATA":
            c.send("354 End data with <CR><LF>.<CR><LF>")
            while True:
                l = c.readline()
                if l is None:
                    return
                if l == ".":
                    break
            c.send("250 2.0.0 Ok: queued as FAULT")
        elif cmd in ("RSET", "NOOP"):
            c.send("250 2.0.0 Ok")
        elif cmd == "QUIT":
            c.send("221 2.0.0 Bye")
            return
        else:
            c.send("502 5.5.2 Error: command not recognized")

def handle(sock, mode, port):
    try:
        sock.settimeout(120)
        log("%s:%d connection" % (mode, port))
        if mode == "silent":
            # say nothing; hold the connection until the client gives up
            while sock.recv(4096):
                pass
        elif mode == "garbage":
            sock.sendall(b"HELLO THERE\r\n")
        else:
            smtp_session(Conn(sock, mode), mode)
    except (OSError, ValueError) as e:
        log("%s:%d %s" % (mode, port, e))
    finally:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()

def serve(mode, port, ready):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(16)
    ready.release()
    while True:
        s, _ = ls.accept()
        threading.Thread(target=handle, args=(s, mode, port), daemon=True).start()

MODES = ("silent", "garbage", "nostarttls", "noauth", "apppass", "relaydeny")

def main():
    lifetime = 3600
    specs = []
    for a in sys.argv[1:]:
        if a.startswith("--lifetime="):
            lifetime = int(a.split("=", 1)[1])
            continue
        mode, _, port = a.partition("=")
        if mode not in MODES:
            sys.exit("unknown mode " + mode)
        specs.append((mode, int(port)))
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    parent = os.getppid()
    ready = threading.Semaphore(0)
    for mode, port in specs:
        threading.Thread(target=serve, args=(mode, port, ready), daemon=True).start()
    for _ in specs:
        ready.acquire()
    log("listening: " + " ".join("%s=%d" % s for s in specs))
    end = time.time() + lifetime
    while time.time() < end and os.getppid() == parent:
        time.sleep(0.5)
    log("exiting")
    os._exit(0)

if __name__ == "__main__":
    try:
        main()
    except OSError as e:
        sys.stderr.write("tb-faults: %s\n" % e)
        os._exit(1)
EOF
}

# tb_start_faults: the fault servers (one python3 process, PID in
# TB_FAULTS_PID) and the closed port.  Sets the TB_*_PORT variables of the
# fault servers (see the top).  --no-wait: _tb_wait_faults waits later.
tb_start_faults() {
	local p args=() m v
	for p in CLOSED SILENT GARBAGE NOSTARTTLS NOAUTH APPPASS RELAYDENY; do
		ms_free_port "TB_${p}_PORT" || return 1
		export "TB_${p}_PORT"
	done
	for m in silent garbage nostarttls noauth apppass relaydeny; do
		v="TB_${m^^}_PORT"
		args+=("$m=${!v}")
	done
	_tb_write_faults
	chmod 755 "$MS_T/tb-faults.py"
	ms_spawn TB_FAULTS_PID "$MS_T/tb-faults.py" "${args[@]}"
	[ "${1:-}" = --no-wait ] || _tb_wait_faults
}

# _tb_wait_faults: wait (10 s at most) until every fault server listens.
_tb_wait_faults() {
	local p
	kill -0 "$TB_FAULTS_PID" 2>/dev/null || {
		ms_log "tb_start_faults: tb-faults.py exited:"
		sed 's/^/#   /' "$MS_T/tb-faults.py.log" >&2
		return 1
	}
	for p in "$TB_SILENT_PORT" "$TB_GARBAGE_PORT" "$TB_NOSTARTTLS_PORT" \
		"$TB_NOAUTH_PORT" "$TB_APPPASS_PORT" "$TB_RELAYDENY_PORT"; do
		if ! _ms_wait_port "$p" 10; then
			ms_log "tb_start_faults: port $p not listening"
			sed 's/^/#   /' "$MS_T/tb-faults.py.log" >&2
			return 1
		fi
	done
}

# ---------------------------------------------------------------- all

# tb_start_bed [MILTER_SOCKET]: after ms_init, the whole bed: certificates,
# Dovecot, the sink, Postfix (with MILTER_SOCKET, as ms_start_postfix),
# the submission listeners and the fault servers.
# The slow starters (python3, Dovecot) start first and are waited for last.
tb_start_bed() {
	tb_start_faults --no-wait || return 1
	tb_certs || return 1
	tb_start_dovecot --no-wait || return 1
	ms_start_sink || return 1
	ms_start_postfix "${1:-}" || return 1
	tb_start_submission || return 1
	_tb_wait_dovecot || return 1
	_tb_wait_faults || return 1
}

# tb_describe: the bed's users, certificates and ports, one "NAME=VALUE" a
# line (for logs and for starting a prober by hand with MS_KEEP=1).
tb_describe() {
	local v
	for v in TB_USER TB_PASS TB_USER2 TB_PASS2 TB_CA TB_CERT_GOOD TB_CERT_WRONGNAME \
		TB_CERT_EXPIRED TB_CERT_SELFSIGNED TB_EXPIRED_METHOD TB_IMAP_PORT TB_IMAPS_PORT \
		TB_IMAPS_EXPIRED_HOST TB_IMAPS_EXPIRED_PORT TB_IMAPS_WRONGNAME_HOST \
		TB_IMAPS_WRONGNAME_PORT TB_IMAPS_SELFSIGNED_HOST TB_IMAPS_SELFSIGNED_PORT \
		TB_IMAP_REMOTE_HOST TB_IMAP_REMOTE_PORT \
		TB_SUBMISSION_PORT TB_SMTPS_PORT TB_SUBMISSION_EXPIRED_PORT \
		TB_SUBMISSION_WRONGNAME_PORT TB_SUBMISSION_SELFSIGNED_PORT \
		TB_SUBMISSION_SENDERCHECK_PORT TB_CLOSED_PORT \
		TB_SILENT_PORT TB_GARBAGE_PORT TB_NOSTARTTLS_PORT TB_NOAUTH_PORT \
		TB_APPPASS_PORT TB_RELAYDENY_PORT; do
		printf '%s=%s\n' "$v" "${!v:-}"
	done
}

# ---------------------------------------------------------------- dns

# tb_start_dns: dnsmasq on 127.0.0.1:$TB_DNS_PORT (UDP and TCP), the bed's
# own DNS for DiagnoseResolver "$TB_DNS".  It knows only these names and
# forwards nothing (--no-resolv, no --server): no query leaves the machine,
# and every other name under .test is NXDOMAIN (--local=/test/):
#   smtp.client.test, mail.client.test, localhost   A 127.0.0.1
#     (the diagnosis itself answers localhost without DNS, RFC 6761)
#   client.test                          MX 10 mail.client.test
#   _submission._tcp.client.test         SRV 0 1 $TB_SUBMISSION_PORT localhost
#   _submissions._tcp.client.test        SRV 10 1 $TB_SMTPS_PORT localhost
#   nosuch.client.test (any other)       NXDOMAIN
# The SRV targets are "localhost" because the bed's good certificate names
# localhost (and 127.0.0.1), not the client.test names.  Call after
# tb_start_submission (the SRV ports).  Sets TB_DNS_PORT, TB_DNS_PID and
# TB_DNS; the PID is stopped at exit with the others.  Log:
# $MS_T/dnsmasq.log (every query).
tb_start_dns() {
	local try
	[ -n "${TB_SUBMISSION_PORT:-}" ] || { ms_log "tb_start_dns: run tb_start_submission first"; return 1; }
	command -v dnsmasq >/dev/null || { ms_log "tb_start_dns: no dnsmasq (package dnsmasq-base)"; return 1; }
	# ms_free_port checks TCP only; a UDP clash shows as dnsmasq exiting
	for try in 1 2 3; do
		ms_free_port TB_DNS_PORT || return 1
		dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
			--port="$TB_DNS_PORT" --listen-address=127.0.0.1 \
			--bind-interfaces --pid-file= --user=root --local=/test/ \
			--log-queries --log-facility="$MS_T/dnsmasq.log" \
			--host-record=smtp.client.test,127.0.0.1 \
			--host-record=mail.client.test,127.0.0.1 \
			--host-record=localhost,127.0.0.1 \
			--mx-host=client.test,mail.client.test,10 \
			--srv-host=_submission._tcp.client.test,localhost,"$TB_SUBMISSION_PORT",0,1 \
			--srv-host=_submissions._tcp.client.test,localhost,"$TB_SMTPS_PORT",10,1 \
			>>"$MS_T/dnsmasq.out" 2>&1 </dev/null &
		TB_DNS_PID=$!
		MS_PIDS+=("$TB_DNS_PID")
		if _ms_wait_port "$TB_DNS_PORT" 5 && kill -0 "$TB_DNS_PID" 2>/dev/null; then
			TB_DNS="127.0.0.1:$TB_DNS_PORT"
			export TB_DNS_PORT TB_DNS
			return 0
		fi
		ms_log "tb_start_dns: dnsmasq did not come up on $TB_DNS_PORT (try $try):"
		sed 's/^/#   /' "$MS_T/dnsmasq.out" >&2
		kill "$TB_DNS_PID" 2>/dev/null
		wait "$TB_DNS_PID" 2>/dev/null
	done
	return 1
}

# tb_maildir_find ADDRESS HEADER VALUE-REGEX: the newest message delivered
# to ADDRESS (MS_DELIVERY=maildir) whose HEADER matches; exit 1 if none.
tb_maildir_find() {
	local f
	for f in $(ls -t "$MS_T/mail/$1/new/"* 2>/dev/null); do
		[[ $(ms_header "$f" "$2") =~ $3 ]] && { echo "$f"; return 0; }
	done
	return 1
}

# tb_wait_find SECONDS ADDRESS HEADER REGEX: tb_maildir_find, waiting.
tb_wait_find() {
	local i f
	for ((i = 0; i < $1 * 5; i++)); do
		f=$(tb_maildir_find "$2" "$3" "$4") && { echo "$f"; return 0; }
		sleep 0.2
	done
	return 1
}

# tb_submit USER PASS SWAKS-ARGS...: swaks on the submission port, STARTTLS
# and SASL PLAIN as USER; its transcript only when it fails.
tb_submit() {
	local u=$1 p=$2
	shift 2
	swaks --server "127.0.0.1:$TB_SUBMISSION_PORT" --tls --tls-ca-path "$TB_CA" \
		--auth PLAIN --auth-user "$u" --auth-password "$p" --helo client.test "$@" \
		</dev/null >"$MS_T/submit.last" 2>&1 || { cat "$MS_T/submit.last" >&2; return 1; }
}
