# shellcheck shell=bash
# sendmail.sh - a private Sendmail 8.17 on loopback beside the private
# Postfix of mailstack.sh, for integration tests and benchmarks.  Source it
# after mailstack.sh and ms_init.
#
#   . tests/lib/mailstack.sh; . tests/lib/sendmail.sh
#   ms_init; ms_start_sink
#   sm_start_sendmail unix:$MS_T/hg.sock      smtpd on 127.0.0.1:$SM_PORT
#   sm_send --to support@example.com ...      swaks against it
#   ms_wait_sink 1 20                         it relays everything to the sink
#
# Debian's sendmail-bin conflicts with postfix, so Sendmail is never
# installed: its packages are downloaded once (apt-get download) and
# unpacked with dpkg-deb into $SM_CACHE (default build/sendmail in the
# repo), and it runs from there with every path of its own under
# $MS_T/sm.  Sendmail works out its canonical host name before reading any
# config and waits 60 s for DNS when the machine's name has no domain, so
# it runs in its own mount + UTS namespace with the host name mta.test and
# private /etc/hosts and /etc/resolv.conf (nameserver 127.0.0.1: no query
# leaves the machine).  That needs root.
#
# The daemon runs in the foreground (-bD) and is recorded by PID; at exit
# it is stopped, and then every process of its process group (the
# per-connection and queue-run children it forked keep it) is killed.
# Sendmail clears its children's environment, so mailstack's MS_T= search
# would not find them: the process group is how they are found.
#
# Env: SM_MILTER_FLAGS (the F= of INPUT_MAIL_FILTER; default T, so that a
# dead filter tempfails and a test can never pass without the filter),
# SM_MILTER_TIMEOUTS (the T=), SM_MC_EXTRA (more .mc lines, before the
# MAILER lines), SM_MILTER_MACROS_ENVFROM (confMILTER_MACROS_ENVFROM),
# SM_FILTER_LINE (a whole INPUT_MAIL_FILTER line, used as it is: the tests
# take INSTALL's own line).

SM_PKGS="sendmail-bin sendmail-base sendmail-cf m4"
SM_UP=0

# sm_fetch: make sure Sendmail is unpacked under $SM_CACHE; sets SM_BIN,
# SM_M4, SM_CFDIR.  Concurrent test runs share one cache, under a lock.
sm_fetch() {
	local repo
	repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
	SM_CACHE=${SM_CACHE:-$repo/build/sendmail}
	SM_BIN=$SM_CACHE/root/usr/libexec/sendmail/sendmail
	SM_M4=$SM_CACHE/root/usr/bin/m4
	SM_CFDIR=$SM_CACHE/root/usr/share/sendmail/cf
	[ -x "$SM_BIN" ] && [ -x "$SM_M4" ] && [ -f "$SM_CFDIR/m4/cf.m4" ] && return 0
	mkdir -p "$SM_CACHE" || return 1
	(
		flock 9
		[ -x "$SM_BIN" ] && [ -x "$SM_M4" ] && [ -f "$SM_CFDIR/m4/cf.m4" ] && exit 0
		rm -rf "$SM_CACHE/debs" "$SM_CACHE/root"
		mkdir -p "$SM_CACHE/debs" "$SM_CACHE/root"
		cd "$SM_CACHE/debs" || exit 1
		# shellcheck disable=SC2086
		if ! apt-get -qq -o APT::Sandbox::User=root download $SM_PKGS >download.log 2>&1; then
			# no or stale package lists on this machine
			apt-get update -qq >/dev/null 2>&1
			# shellcheck disable=SC2086
			apt-get -qq -o APT::Sandbox::User=root download $SM_PKGS >download.log 2>&1 || {
				ms_log "sm_fetch: apt-get download $SM_PKGS failed:"
				sed 's/^/#   /' download.log >&2
				exit 1
			}
		fi
		for d in ./*.deb; do
			dpkg-deb -x "$d" "$SM_CACHE/root" || exit 1
		done
	) 9>"$SM_CACHE/.lock" || return 1
	[ -x "$SM_BIN" ] || { ms_log "sm_fetch: no $SM_BIN after unpacking"; return 1; }
	if ldd "$SM_BIN" | grep -q 'not found'; then
		ms_log "sm_fetch: sendmail lacks libraries (install them):"
		ldd "$SM_BIN" | grep 'not found' | sed 's/^/#   /' >&2
		return 1
	fi
}

# sm_milter_spec SPEC: a libmilter socket spec (unix:PATH, local:PATH,
# inet:PORT@HOST) in Sendmail's S= syntax.
sm_milter_spec() {
	case "$1" in
	local:*) printf 'unix:%s\n' "${1#local:}" ;;
	*) printf '%s\n' "$1" ;;
	esac
}

# _sm_write_mc MILTER: sendmail.mc, every path under $SM_DIR.
_sm_write_mc() {
	local milter=$1 E=$SM_DIR/etc R=$SM_DIR/run
	{
		cat <<EOF
divert(0)dnl
OSTYPE(\`linux')dnl
define(\`LOCAL_MAILER_PATH', \`/bin/false')dnl
define(\`MAIL_SETTINGS_DIR', \`$E/')dnl
define(\`confDOMAIN_NAME', \`mta.test')dnl
define(\`confDONT_PROBE_INTERFACES', \`True')dnl
define(\`confSERVICE_SWITCH_FILE', \`$E/service.switch')dnl
define(\`confHOSTS_FILE', \`$E/hosts')dnl
define(\`confTO_IDENT', \`0s')dnl
FEATURE(\`nocanonify')dnl
FEATURE(\`accept_unresolvable_domains')dnl
FEATURE(\`accept_unqualified_senders')dnl
define(\`confDONT_BLAME_SENDMAIL', \`TrustStickyBit')dnl
define(\`QUEUE_DIR', \`$SM_DIR/mqueue')dnl
define(\`confPID_FILE', \`$R/sendmail.pid')dnl
define(\`STATUS_FILE', \`$R/sendmail.st')dnl
define(\`confDEAD_LETTER_DROP', \`$R/dead.letter')dnl
define(\`HELP_FILE', \`$SM_CACHE/root/etc/mail/helpfile')dnl
define(\`ALIAS_FILE', \`$E/aliases')dnl
define(\`confCR_FILE', \`-o $E/relay-domains')dnl
define(\`confQUEUE_LA', \`1000')dnl
define(\`confREFUSE_LA', \`1000')dnl
define(\`confMIN_FREE_BLOCKS', \`0')dnl
define(\`confMAX_MESSAGE_SIZE', \`52428800')dnl
FEATURE(\`no_default_msa')dnl
DAEMON_OPTIONS(\`Port=$SM_PORT, Addr=127.0.0.1, Name=MTA')dnl
define(\`SMART_HOST', \`[127.0.0.1]')dnl
define(\`MAIL_HUB', \`[127.0.0.1]')dnl
define(\`RELAY_MAILER_ARGS', \`TCP \$h $MS_SINK_PORT')dnl
define(\`ESMTP_MAILER_ARGS', \`TCP \$h $MS_SINK_PORT')dnl
define(\`SMTP_MAILER_ARGS', \`TCP \$h $MS_SINK_PORT')dnl
EOF
		[ -n "${SM_MILTER_MACROS_ENVFROM:-}" ] &&
			printf "define(\`confMILTER_MACROS_ENVFROM', \`%s')dnl\n" "$SM_MILTER_MACROS_ENVFROM"
		if [ -n "${SM_FILTER_LINE:-}" ]; then
			printf '%s\n' "$SM_FILTER_LINE"
		elif [ -n "$milter" ]; then
			printf "INPUT_MAIL_FILTER(\`helpgate', \`S=%s, F=%s, T=%s')dnl\n" \
				"$(sm_milter_spec "$milter")" "${SM_MILTER_FLAGS-T}" \
				"${SM_MILTER_TIMEOUTS:-C:10s;S:30s;R:30s;E:2m}"
		fi
		[ -n "${SM_MC_EXTRA:-}" ] && printf '%s\n' "$SM_MC_EXTRA"
		printf "MAILER(\`local')dnl\nMAILER(\`smtp')dnl\n"
	} >"$SM_DIR/sendmail.mc"
}

# _sm_write_ns: the namespace wrapper.  Binds private hosts/resolv.conf and
# sets the host name, then execs its arguments (so $! is Sendmail itself).
_sm_write_ns() {
	cat >"$SM_DIR/ns.sh" <<EOF
#!/bin/sh
# Written by tests/lib/sendmail.sh: run "\$@" as host mta.test.
exec unshare --mount --uts --propagation private -- /bin/sh -c '
hostname mta.test &&
mount --bind "$SM_DIR/etc/hosts" /etc/hosts &&
mount --bind "$SM_DIR/etc/resolv.conf" /etc/resolv.conf &&
exec "\$@"' sh "\$@"
EOF
	chmod 755 "$SM_DIR/ns.sh"
}

# sm_start_sendmail [MILTER_SOCKET]: write the configuration, build
# sendmail.cf with m4, start the daemon on 127.0.0.1:$SM_PORT relaying
# everything to the sink on $MS_SINK_PORT, wait for its banner.  Sets
# SM_PID; MILTER_SOCKET empty = no filter.
sm_start_sendmail() {
	local milter=${1:-}
	[ "$(id -u)" = 0 ] || { ms_log "sm_start_sendmail: needs root (namespaces)"; return 1; }
	sm_fetch || return 1
	SM_DIR=$MS_T/sm
	[ -n "${SM_PORT:-}" ] || ms_free_port SM_PORT || return 1
	export SM_PORT
	mkdir -p "$SM_DIR/etc" "$SM_DIR/run" "$SM_DIR/mqueue"
	chmod 700 "$SM_DIR/mqueue"
	# 127.0.0.2 and 127.0.0.3 stand for other hosts on the network (a
	# staff relay, say): named, so that Sendmail's PTR checks pass, and
	# allowed to relay like the machine itself (the "127" network in
	# relay-domains)
	printf '127.0.0.1\tmta.test localhost\n::1\tmta.test localhost ip6-localhost\n127.0.0.2\trelay2.test\n127.0.0.3\trelay3.test\n' \
		>"$SM_DIR/etc/hosts"
	echo 'nameserver 127.0.0.1' >"$SM_DIR/etc/resolv.conf"
	printf 'hosts\tfiles\naliases\tfiles\n' >"$SM_DIR/etc/service.switch"
	printf 'postmaster: root\n' >"$SM_DIR/etc/aliases"
	echo 127 >"$SM_DIR/etc/relay-domains"
	_sm_write_mc "$milter"
	_sm_write_ns
	if ! "$SM_M4" "$SM_CFDIR/m4/cf.m4" "$SM_DIR/sendmail.mc" >"$SM_DIR/sendmail.cf" 2>"$SM_DIR/m4.log"; then
		ms_log "sm_start_sendmail: m4 failed:"
		sed 's/^/#   /' "$SM_DIR/m4.log" >&2
		return 1
	fi
	"$SM_DIR/ns.sh" "$SM_BIN" -C "$SM_DIR/sendmail.cf" -bi >"$SM_DIR/newaliases.log" 2>&1 || {
		ms_log "sm_start_sendmail: sendmail -bi failed:"
		sed 's/^/#   /' "$SM_DIR/newaliases.log" >&2
		return 1
	}
	# setsid: its own process group, so that its children are found at exit
	setsid "$SM_DIR/ns.sh" "$SM_BIN" -C "$SM_DIR/sendmail.cf" -bD -q1m \
		>"$MS_T/sendmail.log" 2>&1 </dev/null &
	SM_PID=$!
	SM_UP=1
	if ! _ms_wait_banner "$SM_PORT" 20; then
		ms_log "sendmail did not answer on port $SM_PORT"
		sed 's/^/#   /' "$MS_T/sendmail.log" >&2
		return 1
	fi
}

# sm_stop_sendmail: stop the daemon (TERM, then KILL) and every process
# left in its process group.
sm_stop_sendmail() {
	local i
	[ "$SM_UP" = 1 ] || return 0
	kill -TERM "$SM_PID" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		kill -0 "$SM_PID" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL -- "-$SM_PID" 2>/dev/null
	wait "$SM_PID" 2>/dev/null
	SM_UP=0
}
ms_on_exit sm_stop_sendmail

# sm_send SWAKS-ARGS...: ms_send against the private Sendmail.
sm_send() {
	MS_SMTP_PORT=$SM_PORT ms_send "$@"
}

# sm_queue_empty: true if the private Sendmail has nothing queued.
sm_queue_empty() {
	[ -z "$(find "$SM_DIR/mqueue" -type f -name 'qf*' 2>/dev/null | head -n 1)" ]
}
