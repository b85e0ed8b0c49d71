# shellcheck shell=bash
# mailbox.sh - what the support-mailbox tests (issue 14: test_mailbox.sh,
# test_mailbox_imap.sh) share: a private Postfix delivering into Maildirs,
# helpgate-milter and helpgate-worker reconciling a Mailbox, and helpers to
# read the store.  Source it after mailstack.sh (and testbed.sh), then:
#
#   mb_start BINDIR MAILBOX-LINE...   conf (with these extra lines), sink,
#                                     milter, Postfix, Relay, the worker
#   sq SQL [ARGS...]                  query $MB_DB (rows as a|b|c; commits)
#   send ID [SUBJECT [SWAKS-ARGS...]] a support message from ID@client.test,
#                                     Message-ID <ID@client.test>
#   ms_wait_for SECS at_least N CMD   until CMD prints a number >= N
#
# Sets MB_CONF, MB_DB, MB_WORKER_LOG, worker_pid, sent.

# mb_start BINDIR LINE...: everything up, the worker last.
mb_start() {
	local bindir=$1 repo
	shift
	repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
	export MS_DELIVERY=maildir
	ms_database || return 1
	MB_DB=$MS_DATABASE
	MB_CONF="$MS_T/helpgate.conf"
	MB_WORKER_LOG="$MS_T/helpgate-worker.log"
	cat >"$MB_CONF" <<CONF
Socket unix:$MS_T/hg.sock
$MS_DATABASE_CONF
DiagnoseResolver 127.0.0.1:9
SupportAddress support@example.com
Timezone UTC
Syslog no
KeywordsDir $repo/conf/keywords
TemplatesDir $repo/conf/templates
PollInterval 100ms
AckRateLimit 5 20
DiagnosePerCustomerPerHour 0
MailboxPoll 1s
CONF
	printf '%s\n' "$@" >>"$MB_CONF"
	ms_start_sink || return 1
	MS_MILTER_SOCKET="unix:$MS_T/hg.sock"
	ms_start_milter "$bindir/helpgate-milter" -f -c "$MB_CONF" || return 1
	ms_start_postfix "$MS_MILTER_SOCKET" || return 1
	echo "Relay smtp://127.0.0.1:$MS_SMTP_PORT" >>"$MB_CONF"
	ms_spawn worker_pid "$bindir/helpgate-worker" -f -c "$MB_CONF"
}

sq() { ms_sq "$MB_DB" "$@"; }

sent=0
send() {
	local id=$1 subject=${2:-"Cannot log in ($1)"}
	shift
	[ $# -gt 0 ] && shift
	if ms_send --from "$id@client.test" --h-Subject "$subject" --h-Message-Id "<$id@client.test>" \
	    --body "Hello, since this morning I cannot log in to webmail ($id). Please help." "$@"; then
		sent=$((sent + 1))
	else
		t_fail "swaks: $id accepted"
	fi
}

cases() { sq "SELECT count(*) FROM cases"; }
seen() { sq "SELECT count(*) FROM mailbox_seen"; }
# acknowledgements (any mail) in ADDRESS@client.test's Maildir
acks_of() { find "$MS_T/mail/$1@client.test/new" -type f 2>/dev/null | grep -c .; }
# all_acked PREFIX N: PREFIX-1..N@client.test each have an acknowledgement
all_acked() {
	local i
	for ((i = 1; i <= $2; i++)); do
		[ "$(acks_of "$1-$i")" -ge 1 ] || return 1
	done
}
# exactly_one_ack PREFIX N: how many of PREFIX-1..N have exactly one
exactly_one_ack() {
	local i n=0
	for ((i = 1; i <= $2; i++)); do
		[ "$(acks_of "$1-$i")" -eq 1 ] && n=$((n + 1))
	done
	echo "$n"
}
# at_least N CMD...: CMD's output is a number >= N (for ms_wait_for, which
# runs its command again each time)
at_least() { local n=$1; shift; [ "$("$@")" -ge "$n" ]; }
# lines_since FILE OFFSET REGEX: matching lines after line OFFSET
lines_since() { tail -n +"$(($2 + 1))" "$1" | grep -Ec "$3"; }
worker_alive() { kill -0 "$worker_pid" 2>/dev/null && echo alive || echo dead; }
MB_OPENED_RE='case=HG-[0-9]+ opened from the mailbox \(the milter did not see it\)'
