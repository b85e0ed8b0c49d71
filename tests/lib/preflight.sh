#!/usr/bin/env bash
# preflight.sh - before any test runs: is every tool the tests use here,
# and can it do what they ask of it?  A tool that lacks a capability fails
# a check deep inside one suite minutes later, with a message about the
# test, not about the machine; this says at once which package is missing.
#
# Prints one line per problem ("missing: ... (package P)") and ends with
# the "N passed, N failed" line; exit 1 when anything is missing.
# tests/run.sh runs it first and stops when it fails.
set -u
here=$(cd "$(dirname "$0")" && pwd)
problems=0
checked=0

missing() {	# missing WHAT PACKAGE
	printf 'missing: %s (install the Debian package %s: apt-get install %s, or make deps)\n' "$1" "$2" "$2"
	problems=$((problems + 1))
}

# Commands, with the package that brings each.
while read -r cmd pkg; do
	[ -n "$cmd" ] || continue
	checked=$((checked + 1))
	command -v "$cmd" >/dev/null 2>&1 || missing "the command $cmd" "$pkg"
done <<'EOF'
postfix postfix
smtp-sink postfix
smtp-source postfix
postconf postfix
swaks swaks
miltertest miltertest
dovecot dovecot-core
doveadm dovecot-core
sieve-test dovecot-sieve
sievec dovecot-sieve
dnsmasq dnsmasq-base
openssl openssl
curl curl
python3 python3
sqlite3 sqlite3
faketime faketime
man man-db
groff groff-base
chromium chromium
ss iproute2
unshare util-linux
setsid util-linux
flock util-linux
dpkg-deb dpkg
apt-get apt
EOF

# swaks does TLS and AUTH only with Perl modules it merely recommends.
if command -v swaks >/dev/null 2>&1; then
	support=$(swaks --support 2>&1)
	while IFS='|' read -r cap pkg; do
		checked=$((checked + 1))
		printf '%s\n' "$support" | grep -q "^=== $cap supported" ||
			missing "swaks: $cap ($(printf '%s\n' "$support" | grep -m1 "$cap not available" | sed 's/.*requires //'))" "$pkg"
	done <<'EOF'
TLS|libnet-ssleay-perl
Basic AUTH|swaks
IPv6|libio-socket-inet6-perl
EOF
fi

# Python's standard modules the tests read stores and mail with.
checked=$((checked + 1))
python3 -c 'import sqlite3, email.policy, json' 2>/dev/null ||
	missing "python3's sqlite3 and email modules" "python3"

# Dovecot's submission service (the diagnosis test bed's SASL through Postfix).
checked=$((checked + 1))
[ -x /usr/lib/dovecot/submission ] || missing "Dovecot's submission service" dovecot-submissiond
checked=$((checked + 1))
[ -x /usr/lib/dovecot/imap ] || missing "Dovecot's IMAP service" dovecot-imapd

# The private Sendmail: downloaded and unpacked once, then it must run.
if [ "$(id -u)" = 0 ]; then
	checked=$((checked + 1))
	# shellcheck source=tests/lib/mailstack.sh
	. "$here/mailstack.sh"
	# shellcheck source=tests/lib/sendmail.sh
	. "$here/sendmail.sh"
	if ! sm_fetch 2>"${TMPDIR:-/tmp}/preflight-sendmail.$$"; then
		sed 's/^# */  /' "${TMPDIR:-/tmp}/preflight-sendmail.$$"
		missing "a runnable private Sendmail (tests/lib/sendmail.sh: apt-get download sendmail-bin)" \
			"libwrap0 (and the other libraries named above)"
	fi
	rm -f "${TMPDIR:-/tmp}/preflight-sendmail.$$"
fi

echo "preflight: $checked tools and capabilities checked, $problems missing"
if [ "$problems" != 0 ]; then
	echo "0 passed, $problems failed"
	exit 1
fi
echo "$checked passed, 0 failed"
