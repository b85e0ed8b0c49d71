# shellcheck shell=bash
# mailstack.sh - a private Postfix, an smtp-sink and milters on loopback, for
# integration tests and benchmarks.  Source it from bash; it sets nothing up by
# itself.
#
#   . tests/lib/mailstack.sh
#   ms_init                                   temp dir, ports, EXIT trap
#   ms_start_sink                             smtp-sink on 127.0.0.1:$MS_SINK_PORT
#   MS_MILTER_SOCKET=unix:$MS_T/m.sock
#   ms_start_milter bin/trivial-milter -p "$MS_MILTER_SOCKET"
#   ms_start_postfix "$MS_MILTER_SOCKET"      smtpd on 127.0.0.1:$MS_SMTP_PORT
#   ms_send --to support@example.com --data "$file"
#   ms_wait_delivered 1 20 || ...
#   t_is "$(ms_header "$(ms_list_delivered | head -n 1)" X-Trivial)" 1 "tagged"
#   t_done
#
# Everything lives in $MS_T (removed at exit unless MS_KEEP=1): pf/ (main.cf,
# master.cf), queue/, data/, maillog, sink/ (one file per relayed message),
# mail/<address>/ (Maildirs), *.log of every started program.  Every process
# is started here, recorded by PID and stopped by PID at exit; Postfix is
# stopped with "postfix -c $MS_T/pf stop", then any process still carrying
# MAIL_CONFIG=$MS_T/pf is killed.  Nothing is ever killed by name.
#
# Only 127.0.0.1 is used.  Functions that start processes must run in the
# main shell, not in $(...): they record PIDs in shell variables.
#
# The TAP-ish reporting API (t_ok, t_fail, t_is, t_like, t_done) ends every
# test script with the line "N passed, N failed" that tests/run.sh adds up.

MS_PIDS=()              # PIDs to stop at exit (sink, milters, helpers)
MS_PORTS=()             # ports reserved under $MS_PORT_DIR by this shell
MS_EXIT_HOOKS=()        # commands run first at exit (ms_on_exit)
MS_EXTRA_SMTPD=()       # "PORT|MILTERS" rows: more smtpd listeners
MS_PORT_DIR=${MS_PORT_DIR:-/tmp/helpgate-ports}
T_PASSED=0
T_FAILED=0

ms_log() { printf '# %s\n' "$*" >&2; }

# ---------------------------------------------------------------- ports

# _ms_port_in_use PORT: true if anything on this host has PORT as a local
# TCP port (listening, connected or in TIME_WAIT).
_ms_port_in_use() {
	local p=$1
	if command -v ss >/dev/null 2>&1; then
		[ -n "$(ss -Htan "sport = :$p" 2>/dev/null)" ]
		return
	fi
	if command -v python3 >/dev/null 2>&1; then
		! python3 -c 'import socket,sys
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))' "$p" 2>/dev/null
		return
	fi
	(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null
}

# ms_free_port VAR: reserve a free loopback TCP port and store it in VAR.
# Ports come from 20000-32767 (below Linux's ephemeral range).  A port is
# reserved by mkdir $MS_PORT_DIR/PORT (atomic), so parallel runs never pick
# the same one; reservations of dead shells are taken over.
ms_free_port() {
	local var=$1 p i owner
	mkdir -p "$MS_PORT_DIR" 2>/dev/null && chmod 1777 "$MS_PORT_DIR" 2>/dev/null
	for ((i = 0; i < 200; i++)); do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % 12768))
		if ! mkdir "$MS_PORT_DIR/$p" 2>/dev/null; then
			owner=$(cat "$MS_PORT_DIR/$p/pid" 2>/dev/null)
			if [ -n "$owner" ] && kill -0 "$owner" 2>/dev/null; then
				continue
			fi
			rm -rf "${MS_PORT_DIR:?}/$p"
			mkdir "$MS_PORT_DIR/$p" 2>/dev/null || continue
		fi
		echo "$$" >"$MS_PORT_DIR/$p/pid"
		if _ms_port_in_use "$p"; then
			rm -rf "${MS_PORT_DIR:?}/$p"
			continue
		fi
		MS_PORTS+=("$p")
		printf -v "$var" '%s' "$p"
		return 0
	done
	ms_log "ms_free_port: no free port found"
	return 1
}

# ---------------------------------------------------------------- setup

# ms_init: create $MS_T, pick $MS_SMTP_PORT and $MS_SINK_PORT, install the
# EXIT trap (and INT/TERM traps that exit through it).
ms_init() {
	umask 022
	MS_T=$(mktemp -d /tmp/helpgate-test.XXXXXX) || return 1
	_ms_init_in
}

# ms_init_dir DIR: like ms_init, but everything lives in DIR (made if
# missing) and DIR is kept at exit: for make run, whose mail and database
# outlive it.  The ports are still picked here; set MS_SMTP_PORT after.
ms_init_dir() {
	umask 022
	mkdir -p "$1" || return 1
	MS_T=$(cd "$1" && pwd) || return 1
	MS_KEEP_DIR=1
	_ms_init_in
}

# _ms_init_in: the rest of ms_init once MS_T is there.
_ms_init_in() {
	chmod 755 "$MS_T"
	export MS_T
	ms_free_port MS_SMTP_PORT || return 1
	ms_free_port MS_SINK_PORT || return 1
	export MS_SMTP_PORT MS_SINK_PORT
	MS_POSTFIX_UP=0
	trap ms_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# ms_on_exit CMD...: run CMD (one string, eval'ed) at exit, before processes
# are stopped.  Use it instead of setting another EXIT trap.
ms_on_exit() { MS_EXIT_HOOKS+=("$*"); }

# _ms_stop_pid PID [GRACE_SECONDS]: TERM, wait up to GRACE seconds, KILL.
# Returns the exit status of PID if it is a child of this shell (128+N
# when killed by signal N), else 0.
_ms_stop_pid() {
	local pid=$1 grace=${2:-6} i=0
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null
		for ((i = 0; i < grace * 20; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
	fi
	if kill -0 "$pid" 2>/dev/null; then
		ms_log "pid $pid ignored SIGTERM for ${grace}s: SIGKILL"
		i=KILL
	fi
	# the group's redirection also hides bash's "Killed" job notice
	{
		[ "$i" = KILL ] && kill -KILL "$pid"
		wait "$pid"
	} 2>/dev/null
	i=$?
	[ "$i" = 127 ] && i=0
	return "$i"
}

# _ms_pids_with_env VAR=VALUE...: PIDs of processes (other than this shell)
# whose environment holds one of these exact entries.  The private Postfix
# inherits MAIL_CONFIG=$MS_T/pf from "postfix -c"; everything started from
# this shell inherits MS_T=$MS_T.  Call it as pids=$(...): the pipeline's
# own processes are gone by the time the list is used.
_ms_pids_with_env() {
	local args=() e
	for e in "$@"; do args+=(-e "$e"); done
	grep -lzxF "${args[@]}" /proc/[0-9]*/environ 2>/dev/null |
		sed -n 's|^/proc/\([0-9]*\)/environ$|\1|p' | grep -vx "$$"
}

# _ms_kill_list PID...: SIGKILL each PID except this shell.
_ms_kill_list() {
	local pid
	for pid in "$@"; do
		[ "$pid" = "$$" ] || kill -KILL "$pid" 2>/dev/null
	done
}

# ms_stop_postfix: "postfix stop", wait for the master to go, kill leftovers.
ms_stop_postfix() {
	local master i pids
	[ "${MS_POSTFIX_UP:-0}" = 1 ] || return 0
	master=$(tr -d ' ' <"$MS_T/queue/pid/master.pid" 2>/dev/null)
	postfix -c "$MS_T/pf" stop >/dev/null 2>&1
	for ((i = 0; i < 100; i++)); do
		[ -n "$master" ] && kill -0 "$master" 2>/dev/null || break
		sleep 0.05
	done
	[ -n "$master" ] && kill -KILL "$master" 2>/dev/null
	pids=$(_ms_pids_with_env "MAIL_CONFIG=$MS_T/pf")
	# shellcheck disable=SC2086
	_ms_kill_list $pids
	MS_POSTFIX_UP=0
}

# ms_cleanup: the EXIT trap.  Stops Postfix, then every recorded PID, frees
# the ports, removes $MS_T unless MS_KEEP=1 (the path is printed then).
ms_cleanup() {
	local rc=$? h pid p
	# a second signal must not cut the clean-up short
	trap - EXIT
	trap '' INT TERM HUP
	for h in "${MS_EXIT_HOOKS[@]}"; do
		eval "$h" || true
	done
	ms_stop_postfix
	for pid in "${MS_PIDS[@]}"; do
		_ms_stop_pid "$pid" 6
	done
	MS_PIDS=()
	# anything else started from here that is still around (a signal can
	# land between "cmd &" and recording its PID)
	if [ -n "${MS_T:-}" ]; then
		p=$(_ms_pids_with_env "MS_T=$MS_T" "MAIL_CONFIG=$MS_T/pf")
		# shellcheck disable=SC2086
		_ms_kill_list $p
	fi
	for p in "${MS_PORTS[@]}"; do
		rm -rf "${MS_PORT_DIR:?}/$p"
	done
	if [ -n "${MS_T:-}" ] && [ -d "$MS_T" ]; then
		if [ "$rc" != 0 ] && [ "${T_DONE:-0}" = 0 ]; then
			ms_diag
		fi
		if [ "${MS_KEEP_DIR:-0}" = 1 ]; then
			:
		elif [ "${MS_KEEP:-0}" = 1 ]; then
			ms_log "kept $MS_T"
		else
			rm -rf "$MS_T"
		fi
	fi
	exit "$rc"
}

# ms_diag: print what helps after a failure: the maillog tail, the queue,
# the tail of each program log.
ms_diag() {
	local f
	[ -n "${MS_T:-}" ] || return 0
	if [ -f "$MS_T/maillog" ]; then
		echo "# --- $MS_T/maillog (last 40 lines)"
		tail -n 40 "$MS_T/maillog" | sed 's/^/#   /'
	fi
	if [ "${MS_POSTFIX_UP:-0}" = 1 ]; then
		echo "# --- queue"
		postqueue -c "$MS_T/pf" -p 2>&1 | head -n 30 | sed 's/^/#   /'
	fi
	for f in "$MS_T"/*.log; do
		[ -s "$f" ] || continue
		echo "# --- $f (last 15 lines)"
		tail -n 15 "$f" | sed 's/^/#   /'
	done
} >&2

# _ms_wait_banner PORT TIMEOUT: true once 127.0.0.1:PORT answers "220".
_ms_wait_banner() {
	local port=$1 timeout=${2:-10} end line
	end=$((SECONDS + timeout))
	while [ "$SECONDS" -le "$end" ]; do
		line=$(
			exec 2>/dev/null
			exec 3<>"/dev/tcp/127.0.0.1/$port" || exit
			read -r -t 2 line <&3
			printf 'QUIT\r\n' >&3
			printf '%s' "$line"
		)
		case "$line" in 220*) return 0 ;; esac
		sleep 0.05
	done
	return 1
}

# _ms_wait_port PORT TIMEOUT: true once 127.0.0.1:PORT accepts connections.
_ms_wait_port() {
	local port=$1 timeout=${2:-10} end
	end=$((SECONDS + timeout))
	while [ "$SECONDS" -le "$end" ]; do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		sleep 0.05
	done
	return 1
}

# ---------------------------------------------------------------- sink

# ms_start_sink: smtp-sink on 127.0.0.1:$MS_SINK_PORT; each message goes to
# its own file in $MS_T/sink.  Sets MS_SINK_PID.
ms_start_sink() {
	mkdir -p "$MS_T/sink"
	chown postfix: "$MS_T/sink"
	smtp-sink -u postfix -h sink.test -d "$MS_T/sink/%Y%m%d%H%M%S." \
		"127.0.0.1:$MS_SINK_PORT" 256 >"$MS_T/sink.log" 2>&1 </dev/null &
	MS_SINK_PID=$!
	MS_PIDS+=("$MS_SINK_PID")
	if ! _ms_wait_banner "$MS_SINK_PORT" 10; then
		ms_log "smtp-sink did not come up on port $MS_SINK_PORT"
		cat "$MS_T/sink.log" >&2
		return 1
	fi
}

# _ms_sink_open_files: dump files smtp-sink is still writing.
_ms_sink_open_files() {
	[ -n "${MS_SINK_PID:-}" ] || return 0
	find "/proc/$MS_SINK_PID/fd" -mindepth 1 -maxdepth 1 -printf '%l\n' 2>/dev/null |
		grep -F "$MS_T/sink/"
}

# ms_list_sink: complete messages in the sink, oldest first, one path a line.
ms_list_sink() {
	[ -d "$MS_T/sink" ] || return 0
	find "$MS_T/sink" -type f -printf '%T@ %p\n' | sort -n | cut -d' ' -f2- |
		grep -vxF -f <(_ms_sink_open_files)
}

# ms_list_maildir: delivered Maildir messages, oldest first.
ms_list_maildir() {
	[ -d "$MS_T/mail" ] || return 0
	find "$MS_T/mail" -type f -path '*/new/*' -printf '%T@ %p\n' | sort -n | cut -d' ' -f2-
}

# ms_list_delivered: every delivered message (sink and Maildirs), oldest first.
ms_list_delivered() {
	local dirs=()
	[ -d "$MS_T/sink" ] && dirs+=("$MS_T/sink")
	[ -d "$MS_T/mail" ] && dirs+=("$MS_T/mail")
	[ "${#dirs[@]}" != 0 ] || return 0
	find "${dirs[@]}" -type f \( -path "$MS_T/sink/*" -o -path '*/new/*' \) -printf '%T@ %p\n' |
		sort -n | cut -d' ' -f2- | grep -vxF -f <(_ms_sink_open_files)
}

# ms_count_sink / ms_count_delivered: numbers of complete messages.
ms_count_sink() { ms_list_sink | grep -c .; }
ms_count_delivered() { ms_list_delivered | grep -c .; }

# ms_clear_delivered: forget everything delivered so far (sink and Maildirs).
ms_clear_delivered() {
	[ -d "$MS_T/sink" ] && find "$MS_T/sink" -type f -delete
	[ -d "$MS_T/mail" ] && find "$MS_T/mail" -type f -path '*/new/*' -delete
	return 0
}

# ms_wait_sink N TIMEOUT: wait until at least N complete messages are in the
# sink.  Returns 1 on timeout (and says how many arrived).
ms_wait_sink() {
	local n=$1 timeout=${2:-30} end c
	end=$((SECONDS + timeout))
	while :; do
		c=$(ms_count_sink)
		[ "$c" -ge "$n" ] && return 0
		[ "$SECONDS" -ge "$end" ] && break
		sleep 0.1
	done
	ms_log "ms_wait_sink: $c of $n messages after ${timeout}s"
	return 1
}

# ms_sink_read N: print the Nth (1-based, oldest first) complete sink message.
ms_sink_read() {
	local f
	f=$(ms_list_sink | sed -n "${1}p")
	[ -n "$f" ] && cat "$f"
}

# ---------------------------------------------------------------- postfix

# ms_pf_milter SPEC: a libmilter socket spec (unix:PATH, inet:PORT@HOST,
# local:PATH) in Postfix's syntax (unix:PATH, inet:HOST:PORT).  Postfix
# specs pass through.
ms_pf_milter() {
	local s=$1
	case "$s" in
	"") ;;
	local:*) s="unix:${s#local:}" ;;
	inet:*@*) s="inet:${s#*@}:${s#inet:}"; s=${s%@*} ;;
	inet6:*) ms_log "ms_pf_milter: IPv6 milter sockets are not used here"; return 1 ;;
	esac
	printf '%s\n' "$s"
}

# ms_add_smtpd VAR [MILTER_SOCKET]: before ms_start_postfix, add another
# smtpd listener with its own smtpd_milters (empty = none); its port is
# stored in VAR.  Lets one Postfix serve several milter setups at once.
ms_add_smtpd() {
	local var=$1 milter
	milter=$(ms_pf_milter "${2:-}") || return 1
	ms_free_port "$var" || return 1
	MS_EXTRA_SMTPD+=("${!var}|$milter")
}

# _ms_write_main_cf MILTERS: main.cf of the private Postfix.
_ms_write_main_cf() {
	local milters=$1 T=$MS_T
	cat >"$T/pf/main.cf" <<EOF
# private test Postfix written by tests/lib/mailstack.sh
compatibility_level = 3.6
config_directory = $T/pf
queue_directory = $T/queue
data_directory = $T/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.helpgate.test
mydomain = helpgate.test
myorigin = \$myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
local_recipient_maps =
biff = no
append_dot_mydomain = no
maillog_file = $T/maillog
maillog_file_prefixes = /var, /dev/stdout, $T
relayhost = [127.0.0.1]:$MS_SINK_PORT
smtp_dns_support_level = disabled
message_size_limit = 52428800
mailbox_size_limit = 0
virtual_mailbox_limit = 0
smtputf8_enable = yes
milter_default_action = accept
milter_protocol = 6
smtpd_milters = $milters
non_smtpd_milters = $milters
EOF
	if [ "${MS_DELIVERY:-relay}" = maildir ]; then
		# Every address of these domains gets its own Maildir,
		# $T/mail/<address>/.  virtual(8) cannot do that (it refuses
		# regexp substitution in virtual_mailbox_maps), so the domains
		# are virtual mailbox domains whose transport is a pipe(8) into
		# _ms_write_deliver's script; static:ok accepts every address.
		mkdir -p "$T/mail"
		chown nobody: "$T/mail"
		cat >>"$T/pf/main.cf" <<EOF
virtual_mailbox_domains = ${MS_MAILDIR_DOMAINS:-example.com client.test staff.example.com}
virtual_mailbox_maps = static:ok
virtual_transport = maildir
maildir_destination_recipient_limit = 1
EOF
	fi
	# MS_MAIN_CF_EXTRA: more main.cf lines from the caller (last one wins)
	if [ -n "${MS_MAIN_CF_EXTRA:-}" ]; then
		printf '%s\n' "$MS_MAIN_CF_EXTRA" >>"$T/pf/main.cf"
	fi
}

# _ms_write_deliver: the Maildir delivery script run by the "maildir"
# pipe(8) service as user nobody (it cannot run as mail_owner postfix).
_ms_write_deliver() {
	cat >"$MS_T/pf/maildir-deliver" <<'EOF'
#!/bin/sh
# maildir-deliver BASE ADDRESS: stdin into the Maildir BASE/ADDRESS/ (tmp/,
# then renamed into new/).  Exit 75 (EX_TEMPFAIL) defers, 67 (EX_NOUSER)
# bounces.  Written by tests/lib/mailstack.sh.
umask 022
case "$2" in "" | */* | .*) exit 67 ;; esac
d="$1/$2"
mkdir -p "$d/tmp" "$d/new" "$d/cur" || exit 75
f="$(date +%s.%N).P$$.mx"
cat >"$d/tmp/$f" || { rm -f "$d/tmp/$f"; exit 75; }
mv "$d/tmp/$f" "$d/new/$f" || exit 75
EOF
	chmod 755 "$MS_T/pf/maildir-deliver"
}

# _ms_write_master_cf: master.cf, no chroot, a postlog service, smtpd on
# 127.0.0.1:$MS_SMTP_PORT plus the listeners of ms_add_smtpd.
_ms_write_master_cf() {
	local row port milters
	{
		echo "# private test Postfix written by tests/lib/mailstack.sh"
		printf '%-28s inet  n - n - - smtpd\n' "127.0.0.1:$MS_SMTP_PORT"
		for row in "${MS_EXTRA_SMTPD[@]}"; do
			port=${row%%|*}
			milters=${row#*|}
			printf '%-28s inet  n - n - - smtpd\n  -o smtpd_milters=%s\n' \
				"127.0.0.1:$port" "$milters"
		done
		cat <<'EOF'
pickup     unix  n - n 60    1 pickup
cleanup    unix  n - n -     0 cleanup
qmgr       unix  n - n 300   1 qmgr
tlsmgr     unix  - - n 1000? 1 tlsmgr
rewrite    unix  - - n -     - trivial-rewrite
bounce     unix  - - n -     0 bounce
defer      unix  - - n -     0 bounce
trace      unix  - - n -     0 bounce
verify     unix  - - n -     1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -     - proxymap
proxywrite unix  - - n -     1 proxymap
smtp       unix  - - n -     - smtp
relay      unix  - - n -     - smtp
showq      unix  n - n -     - showq
error      unix  - - n -     - error
retry      unix  - - n -     - error
discard    unix  - - n -     - discard
local      unix  - n n -     - local
virtual    unix  - n n -     - virtual
lmtp       unix  - - n -     - lmtp
anvil      unix  - - n -     1 anvil
scache     unix  - - n -     1 scache
postlog    unix-dgram n - n - 1 postlogd
EOF
		printf '%s\n' "maildir    unix  - n n -     - pipe" \
			"  flags=DROhu user=nobody argv=/bin/sh $MS_T/pf/maildir-deliver $MS_T/mail \${recipient}"
	} >"$MS_T/pf/master.cf"
}

# ms_start_postfix [MILTER_SOCKET]: write the configuration, "postfix
# check", start, wait for the banner on $MS_SMTP_PORT (and every extra
# listener).  MILTER_SOCKET in libmilter or Postfix syntax, empty = none;
# it becomes smtpd_milters and non_smtpd_milters.
# Env: MS_DELIVERY=maildir (delivery of MS_MAILDIR_DOMAINS, default
# "example.com client.test staff.example.com", to $MS_T/mail/<address>/;
# other domains still go to the sink), MS_MAIN_CF_EXTRA (more main.cf lines).
ms_start_postfix() {
	local milters row
	milters=$(ms_pf_milter "${1:-}") || return 1
	mkdir -p "$MS_T/pf" "$MS_T/queue" "$MS_T/data"
	chown postfix: "$MS_T/data"
	_ms_write_main_cf "$milters"
	_ms_write_master_cf
	_ms_write_deliver
	_ms_backdate_cf
	# Up before "start": a signal during start must still stop it at exit.
	MS_POSTFIX_UP=1
	# "postfix start" runs the same checks as "postfix check" (check-fatal
	# and check-warn); warnings are shown, not fatal.
	if ! postfix -c "$MS_T/pf" start >"$MS_T/postfix-start.log" 2>&1; then
		ms_log "postfix start failed:"
		sed 's/^/#   /' "$MS_T/postfix-start.log" >&2
		return 1
	fi
	if grep -qi 'warning' "$MS_T/postfix-start.log"; then
		ms_log "postfix start warned:"
		sed 's/^/#   /' "$MS_T/postfix-start.log" >&2
	fi
	if ! _ms_wait_banner "$MS_SMTP_PORT" 20; then
		ms_log "postfix did not answer on port $MS_SMTP_PORT"
		return 1
	fi
	for row in "${MS_EXTRA_SMTPD[@]}"; do
		_ms_wait_banner "${row%%|*}" 20 || {
			ms_log "postfix did not answer on port ${row%%|*}"
			return 1
		}
	done
}

# _ms_backdate_cf: Postfix commands wait (5 x 300 ms) while main.cf is
# younger than a second or two; the files are complete, so age them.
_ms_backdate_cf() {
	touch -d '-10 seconds' "$MS_T/pf/main.cf" "$MS_T/pf/master.cf"
}

# ms_postconf KEY=VALUE...: change main.cf and reload; returns once the
# master logged the reload.
ms_postconf() {
	postconf -c "$MS_T/pf" -e "$@" || return 1
	_ms_backdate_cf
	ms_reload
}

# ms_reload: "postfix reload" and wait (up to 10 s) for the master to log it.
ms_reload() {
	local before end
	before=$(grep -c 'reload -- version' "$MS_T/maillog" 2>/dev/null)
	postfix -c "$MS_T/pf" reload >/dev/null 2>&1 || return 1
	end=$((SECONDS + 10))
	while [ "$SECONDS" -le "$end" ]; do
		[ "$(grep -c 'reload -- version' "$MS_T/maillog" 2>/dev/null)" -gt "$before" ] && return 0
		sleep 0.05
	done
	ms_log "ms_reload: no reload in the maillog after 10 s"
	return 1
}

# ms_queue_empty: true if the private Postfix has no mail queued.
ms_queue_empty() {
	postqueue -c "$MS_T/pf" -p 2>/dev/null | grep -q 'Mail queue is empty'
}

# ms_wait_delivered N TIMEOUT: wait until N messages were delivered (sink
# plus Maildirs) and the queue is empty.  On timeout print the maillog tail
# and the queue, return 1.
ms_wait_delivered() {
	local n=$1 timeout=${2:-30} end c=0
	end=$((SECONDS + timeout))
	while :; do
		c=$(ms_count_delivered)
		if [ "$c" -ge "$n" ] && ms_queue_empty; then
			return 0
		fi
		[ "$SECONDS" -ge "$end" ] && break
		sleep 0.1
	done
	ms_log "ms_wait_delivered: $c of $n messages after ${timeout}s"
	ms_diag
	return 1
}

# ms_send SWAKS-ARGS...: swaks against the private Postfix, quiet unless it
# fails (then its transcript goes to stderr).  Defaults: --from
# client@client.test --to support@example.com; any argument overrides them.
# The transcript is kept in $MS_T/swaks.log.
ms_send() {
	local args=() has_to=0 has_from=0 a rc
	for a in "$@"; do
		case "$a" in
		--to | --to=* | -t) has_to=1 ;;
		--from | --from=* | -f) has_from=1 ;;
		esac
	done
	[ "$has_to" = 1 ] || args+=(--to support@example.com)
	[ "$has_from" = 1 ] || args+=(--from client@client.test)
	swaks --server "127.0.0.1:$MS_SMTP_PORT" --helo client.test \
		"${args[@]}" "$@" </dev/null >"$MS_T/swaks.last" 2>&1
	rc=$?
	cat "$MS_T/swaks.last" >>"$MS_T/swaks.log"
	if [ "$rc" != 0 ]; then
		ms_log "swaks failed (exit $rc):"
		sed 's/^/#   /' "$MS_T/swaks.last" >&2
	fi
	return "$rc"
}

# ---------------------------------------------------------------- messages

# ms_header FILE NAME: the unfolded value of the first header NAME (case
# does not matter) in the header section of FILE; exit 1 if absent.
ms_header() {
	awk -v want="$2" '
		BEGIN { want = tolower(want); found = 0 }
		{ sub(/\r$/, "") }
		/^$/ { exit }
		/^[ \t]/ { if (cur) val = val $0; next }
		{
			if (cur) { print val; found = 1; exit }
			i = index($0, ":")
			if (i > 0 && tolower(substr($0, 1, i - 1)) == want) {
				cur = 1; val = substr($0, i + 1); sub(/^[ \t]+/, "", val)
			}
		}
		END { if (cur && !found) { print val; found = 1 } exit !found }
	' "$1"
}

# ms_header_count FILE NAME: how many NAME headers FILE has.
ms_header_count() {
	awk -v want="$2" '
		BEGIN { want = tolower(want); n = 0 }
		{ sub(/\r$/, "") }
		/^$/ { exit }
		{ i = index($0, ":"); if (i > 0 && $0 !~ /^[ \t]/ && tolower(substr($0, 1, i - 1)) == want) n++ }
		END { print n }
	' "$1"
}

# ms_find_by_header NAME VALUE: paths of delivered messages whose header
# NAME has exactly VALUE (unfolded), oldest first; exit 1 if none.
ms_find_by_header() {
	local f v found=1
	while IFS= read -r f; do
		v=$(ms_header "$f" "$1") || continue
		if [ "$v" = "$2" ]; then
			printf '%s\n' "$f"
			found=0
		fi
	done < <(ms_list_delivered)
	return "$found"
}

# ---------------------------------------------------------------- milters

# ms_start_milter CMD...: run a milter in the background (output to
# $MS_T/milter-N.log), record its PID in MS_MILTER_PID and MS_PIDS, wait
# until $MS_MILTER_SOCKET (unix:PATH, local:PATH or inet:PORT@127.0.0.1)
# accepts; a unix socket is made world-writable for user postfix.
# MS_MILTER_TIMEOUT (default 15 s) bounds the wait; MS_MILTER_LOG names
# another log file.
ms_start_milter() {
	local spec=${MS_MILTER_SOCKET:?set MS_MILTER_SOCKET first} path port log end
	MS_MILTER_N=$((${MS_MILTER_N:-0} + 1))
	log=${MS_MILTER_LOG:-$MS_T/milter-$MS_MILTER_N.log}
	case "$spec" in
	unix:* | local:*) path=${spec#*:}; rm -f "$path" ;;
	inet:*@*) port=${spec#inet:}; port=${port%@*} ;;
	*) ms_log "ms_start_milter: unsupported socket $spec"; return 1 ;;
	esac
	"$@" >"$log" 2>&1 </dev/null &
	MS_MILTER_PID=$!
	MS_PIDS+=("$MS_MILTER_PID")
	end=$((SECONDS + ${MS_MILTER_TIMEOUT:-15}))
	while :; do
		if ! kill -0 "$MS_MILTER_PID" 2>/dev/null; then
			ms_log "ms_start_milter: $1 exited early:"
			sed 's/^/#   /' "$log" >&2
			return 1
		fi
		if [ -n "${path:-}" ] && [ -S "$path" ]; then
			chmod 666 "$path"
			return 0
		fi
		if [ -n "${port:-}" ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		if [ "$SECONDS" -ge "$end" ]; then
			ms_log "ms_start_milter: $spec not up after ${MS_MILTER_TIMEOUT:-15}s"
			sed 's/^/#   /' "$log" >&2
			return 1
		fi
		sleep 0.05
	done
}

# ms_stop_pid PID: stop one recorded process (TERM, up to 8 s, KILL); it is
# no longer stopped at exit.  Returns its exit status (see _ms_stop_pid):
# a sanitizer report makes it non-zero.  libmilter needs up to ~5 s after
# SIGTERM.
ms_stop_pid() {
	local pid=$1 p keep=() rc
	_ms_stop_pid "$pid" 8
	rc=$?
	for p in "${MS_PIDS[@]}"; do
		[ "$p" = "$pid" ] || keep+=("$p")
	done
	MS_PIDS=("${keep[@]}")
	return "$rc"
}

# ms_stop_milter [PID [SIGNAL]]: stop a milter (default: the last one
# started), remove the unix socket of $MS_MILTER_SOCKET, return the
# milter's exit status: 0 after a clean SIGTERM shutdown (libmilter takes
# 1-5 s), non-zero after a sanitizer report; 143 if SIGTERM came before
# smfi_main() set up libmilter's signal handling.  SIGNAL KILL simulates a
# crash and skips the shutdown (status 137).
ms_stop_milter() {
	local pid=${1:-${MS_MILTER_PID:-}} sig=${2:-TERM} path rc
	[ -n "$pid" ] || return 0
	if [ "$sig" = TERM ]; then
		ms_stop_pid "$pid"
		rc=$?
	else
		# a signal that ends the process (KILL, ABRT, SEGV ...)
		{
			kill "-$sig" "$pid"
			wait "$pid"
		} 2>/dev/null
		rc=$?
		ms_stop_pid "$pid"
	fi
	case "${MS_MILTER_SOCKET:-}" in
	unix:* | local:*) path=${MS_MILTER_SOCKET#*:}; rm -f "$path" ;;
	esac
	return "$rc"
}

# ms_spawn VAR CMD...: run any helper in the background (output to
# $MS_T/<basename>.log), store its PID in VAR, stop it at exit.
ms_spawn() {
	local var=$1
	shift
	"$@" >>"$MS_T/$(basename "$1").log" 2>&1 </dev/null &
	printf -v "$var" '%s' "$!"
	MS_PIDS+=("$!")
}

# ---------------------------------------------------------------- helpers

# ms_wait_for SECONDS CMD...: run CMD every 0.2 s until it succeeds;
# 1 when SECONDS pass first.
ms_wait_for() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -ge "$end" ] && return 1
		sleep 0.2
	done
}

# ms_mkmsg FILE FROM SUBJECT MESSAGE-ID BODY [EXTRA-HEADERS [TO]]: a plain
# UTF-8 message to TO (default support@example.com); EXTRA-HEADERS is a
# printf %b string ("A: 1\nB: 2").
ms_mkmsg() {
	{
		printf 'From: %s\nTo: %s\nSubject: %s\nDate: %s\nMessage-ID: <%s>\n' \
		    "$2" "${7:-support@example.com}" "$3" "$(date -R)" "$4"
		[ -n "${6:-}" ] && printf '%b\n' "$6"
		printf 'MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n%s\n' "$5"
	} >"$1"
}

# ms_sq DB SQL [ARG...]: run SQL with bound ARGs on the SQLite file DB,
# rows as "a|b|c" lines (python3's sqlite3: no sqlite3 shell quoting).
ms_sq() {
	case "$1" in
	postgresql://* | postgres://* | *=*) _ms_sq_pg "$@"; return ;;
	esac
	python3 - "$@" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=10)
for row in c.execute(sys.argv[2], sys.argv[3:]).fetchall():
    print("|".join(str(v) for v in row))
c.commit()
PY
}

# _ms_sq_pg TARGET SQL [ARGS...]: ms_sq on PostgreSQL through psql, each
# "?" a psql variable quoted as a literal (:'pN').
_ms_sq_pg() {
	local db=$1 sql=$2 i=1 a vars=()
	shift 2
	for a in "$@"; do
		sql=${sql/\?/:\'p$i\'}
		vars+=(-v "p$i=$a")
		i=$((i + 1))
	done
	printf '%s;\n' "$sql" | psql -X -q -At -F '|' -v ON_ERROR_STOP=1 "${vars[@]}" -d "$db"
}

# ms_database [PATH]: sets MS_DATABASE, the Database value of the suite:
# PATH (default $MS_T/hg.db), or, with HG_TEST_BACKEND=postgresql, a
# private PostgreSQL cluster under $MS_T/pg started here (tests/lib/pg.sh),
# stopped at exit; and MS_DATABASE_CONF, the config lines that go with it
# (Database, SpoolDirectory, SealKeyFile).  Call it in the main shell.
ms_database() {
	if [ "${HG_TEST_BACKEND:-sqlite}" = postgresql ]; then
		# shellcheck source=tests/lib/pg.sh
		. "$(dirname "${BASH_SOURCE[0]}")/pg.sh"
		pg_start "$MS_T/pg" || return 1
		MS_DATABASE=$PG_TARGET
	else
		MS_DATABASE=${1:-$MS_T/hg.db}
	fi
	# the host's own state, where SQLite keeps it: beside the database
	MS_DATABASE_CONF="Database $MS_DATABASE
SpoolDirectory $MS_T/spool
SealKeyFile $MS_T/seal.key"
	export MS_DATABASE MS_DATABASE_CONF
}

# ms_hold_sqlite_lock DB: another process takes SQLite's write lock on DB
# (BEGIN EXCLUSIVE) and holds it until ms_release_sqlite_lock; returns once
# the lock is held.  Sets MS_LOCK_PID.
ms_hold_sqlite_lock() {
	MS_LOCK_FLAG="$MS_T/hold-lock.$RANDOM"
	touch "$MS_LOCK_FLAG"
	ms_spawn MS_LOCK_PID python3 -c '
import os, sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=20)
c.execute("BEGIN EXCLUSIVE")
c.execute("CREATE TABLE IF NOT EXISTS lock_test (x)")
open(sys.argv[2] + ".held", "w").close()
while os.path.exists(sys.argv[2]):
    time.sleep(0.05)
c.execute("ROLLBACK")
' "$1" "$MS_LOCK_FLAG"
	ms_wait_for 10 test -e "$MS_LOCK_FLAG.held"
}

# ms_release_sqlite_lock: end ms_hold_sqlite_lock (the holder rolls back).
ms_release_sqlite_lock() {
	rm -f "$MS_LOCK_FLAG" "$MS_LOCK_FLAG.held"
	ms_wait_for 10 eval '! kill -0 "$MS_LOCK_PID" 2>/dev/null'
	ms_stop_pid "$MS_LOCK_PID" || true
}

# ---------------------------------------------------------------- reporting

# t_ok DESC / t_fail DESC [DETAILS...]: one passed / failed assertion.
t_ok() {
	T_PASSED=$((T_PASSED + 1))
	printf 'ok %d - %s\n' "$((T_PASSED + T_FAILED))" "$1"
}

t_fail() {
	local d
	T_FAILED=$((T_FAILED + 1))
	printf 'not ok %d - %s\n' "$((T_PASSED + T_FAILED))" "$1"
	shift
	for d in "$@"; do
		printf '%s\n' "$d" | sed 's/^/#   /'
	done
}

# t_is ACTUAL EXPECTED DESC: string equality.
t_is() {
	if [ "$1" = "$2" ]; then
		t_ok "$3"
	else
		t_fail "$3" "got:      '$1'" "expected: '$2'"
	fi
}

# t_like ACTUAL REGEX DESC: ACTUAL matches the extended regex REGEX.
t_like() {
	if [[ $1 =~ $2 ]]; then
		t_ok "$3"
	else
		t_fail "$3" "got:      '$1'" "expected to match: /$2/"
	fi
}

# t_done: print "N passed, N failed" (the last line run.sh reads); status
# 1 if anything failed.  Call it last: "t_done; exit" or "exit $(...)".
t_done() {
	T_DONE=1
	if [ "$T_FAILED" != 0 ]; then
		ms_diag
	fi
	printf '%d passed, %d failed\n' "$T_PASSED" "$T_FAILED"
	[ "$T_FAILED" = 0 ]
}
