#!/bin/sh
# Installs the Debian packages helpgate builds, tests and runs with, when any
# is missing.  Non-interactive; as a non-root user it prints the command.
#
# Packages are installed without their recommends, so every piece a test
# needs is named here, recommended ones included: swaks only recommends the
# Perl modules it does TLS (Net::SSLeay, IO::Socket::SSL), IPv6 and DNS
# with.  The libraries after "sendmail:" are what the private Sendmail of
# the tests links with (tests/lib/sendmail.sh downloads and unpacks
# sendmail-bin itself: it conflicts with postfix, so it is never
# installed).  tests/lib/preflight.sh checks, before any test runs, that
# each tool can do what the tests ask of it.
PACKAGES="build-essential pkg-config clang libmilter-dev libetpan-dev libsqlite3-dev
libcurl4-gnutls-dev libgnutls28-dev libxml2-dev libpsl-dev libstemmer-dev libcairo2-dev libpq-dev postgresql publicsuffix sqlite3 tzdata postfix swaks miltertest dovecot-imapd
dovecot-submissiond dovecot-sieve dnsmasq-base libc-ares-dev openssl faketime curl python3 man-db
libnet-ssleay-perl libio-socket-ssl-perl libio-socket-inet6-perl libnet-dns-perl
groff-base iproute2 util-linux systemd ca-certificates chromium
libdb5.3 libldap-2.5-0 liblockfile1 libnsl2 libsasl2-2 libssl3 libwrap0"
missing=""
for p in $PACKAGES; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "helpgate needs:$missing"
	echo "run as root: apt-get install -y$missing"
	exit 1
fi
echo "installing:$missing"
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null 2>&1 || apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
