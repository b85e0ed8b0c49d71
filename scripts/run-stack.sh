#!/usr/bin/env bash
# make run: helpgate on a complete private mail stack on loopback, for a
# person to watch it work.  Everything lives under var/ and nothing of the
# machine's own mail system is touched:
#
#   Postfix      its own config (var/pf) and queue (var/queue), listening on
#                127.0.0.1:$HELPGATE_PORT (default 2525) with helpgate-milter;
#                mail for every address is delivered to var/mail/ADDRESS/
#                (a Maildir: mutt -f var/mail/support@example.com)
#   milter       helpgate-milter on unix:var/run/milter.sock
#   worker       helpgate-worker relaying through that Postfix
#   demo bed     a submission server for make demo's trial customer:
#                Postfix submission (STARTTLS) and smtps (implicit TLS) ports
#                with Dovecot SASL, certificates made under var/certs
#
# The daemons run with var/run/helpgate.conf: conf/helpgate.conf with the
# stack's socket, relay, absolute paths and the demo bed's diagnosis
# settings; the database is conf/helpgate.conf's own (var/helpgate.db), so
# "helpgatectl -c conf/helpgate.conf ..." sees the same cases.
# var/run/stack.env describes the running stack (for make demo).  Ctrl-C
# stops everything it started, by PID.
set -u
cd "$(dirname "$0")/.." || exit 1
root=$(pwd)
. "$root/tests/lib/mailstack.sh"
. "$root/tests/lib/testbed.sh"

port=${HELPGATE_PORT:-2525}
var=$root/var
bin=$root/bin
say() { printf '%s\n' "$*"; }

[ "$(id -u)" = 0 ] || { say "make run: the private Postfix needs root (it runs as user postfix)"; exit 1; }
for p in helpgate-milter helpgate-worker helpgatectl; do
	[ -x "$bin/$p" ] || { say "make run: no $bin/$p (make)"; exit 1; }
done
if [ -f "$var/run/stack.env" ] && kill -0 "$(sed -n 's/^STACK_PID=//p' "$var/run/stack.env")" 2>/dev/null; then
	say "make run: already running (var/run/stack.env); Ctrl-C that one first"
	exit 1
fi
# a listener, not a connection in TIME_WAIT: Postfix binds with SO_REUSEADDR
if [ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]; then
	say "make run: 127.0.0.1:$port is in use; choose another with HELPGATE_PORT=N make run"
	exit 1
fi

mkdir -p "$var/run" "$var/log"
rm -f "$var/run/stack.env" "$var/run/milter.sock"
ms_init_dir "$var" || exit 1
# The daemons drop root for the user INSTALL creates (UserID), as in a real
# deployment: var/ is group-writable for it (the database, its -wal and
# -shm, the spool and the seal key are made there), and what an earlier
# run left behind as root becomes its own.
if ! id helpgate >/dev/null 2>&1; then
	say "make run: adding the system user helpgate (as INSTALL does)"
	adduser --system --group --home /nonexistent --no-create-home helpgate >/dev/null 2>&1 ||
		useradd --system --user-group --home-dir /nonexistent --no-create-home helpgate ||
		{ say "make run: cannot add the user helpgate"; exit 1; }
fi
chgrp helpgate "$var"
chmod 0775 "$var"
for f in "$var"/helpgate.db* "$var/seal.key" "$var/spool"; do
	[ -e "$f" ] && chown -R helpgate:helpgate "$f"
done
MS_SMTP_PORT=$port
export MS_DELIVERY=maildir MS_MAILDIR_DOMAINS=static:all
T_DONE=1	# Ctrl-C is the normal way out: no failure report at exit
ms_on_exit 'rm -f "$var/run/stack.env"; say "make run: stopped"'

# The daemons' config: conf/helpgate.conf with the stack's own values.
conf=$var/run/helpgate.conf
cat_conf() {
	say "# written by make run (scripts/run-stack.sh): conf/helpgate.conf with the"
	say "# private stack's values below; edit conf/helpgate.conf, not this file"
	grep -viE '^[[:space:]]*(Socket|SocketMode|Database|Relay|KeywordsDir|TemplatesDir|Syslog|SyslogFacility|PidFile|UserID|DiagnoseCAFile|ProbeAllow|DiagnosePorts|DiagnoseResolver|SpoolDirectory)[[:space:]]' \
		"$root/conf/helpgate.conf"
	cat <<EOF
Socket			unix:$var/run/milter.sock
Database		$var/helpgate.db
SpoolDirectory		$var/spool
Relay			smtp://127.0.0.1:$port
KeywordsDir		$root/conf/keywords
TemplatesDir		$root/conf/templates
Syslog			no
UserID			helpgate
SocketMode		0666
DiagnoseCAFile		$TB_CA
ProbeAllow		127.0.0.0/8
DiagnosePorts		$TB_SUBMISSION_PORT/starttls $TB_SMTPS_PORT/tls
DiagnoseResolver	127.0.0.1:9
EOF
	# staff see notes and P1 pages in their own Maildirs unless the
	# config already names where they go
	grep -qiE '^[[:space:]]*NoticeAddress[[:space:]]' "$root/conf/helpgate.conf" ||
		say "NoticeAddress		staff@staff.example.com"
	grep -qiE '^[[:space:]]*EscalationAddress[[:space:]]' "$root/conf/helpgate.conf" ||
		say "EscalationAddress	oncall@staff.example.com"
}

say "make run: starting Postfix, Dovecot (the demo's submission server), helpgate-milter and helpgate-worker under var/ ..."
tb_certs >/dev/null || { say "make run: certificates failed"; exit 1; }
tb_start_dovecot --no-wait || { say "make run: Dovecot failed (var/dovecot-server.log)"; exit 1; }
MS_MILTER_SOCKET="unix:$var/run/milter.sock"
ms_start_postfix "$MS_MILTER_SOCKET" || { say "make run: Postfix failed (var/maillog)"; exit 1; }
tb_start_submission || { say "make run: the submission ports failed (var/maillog)"; exit 1; }
_tb_wait_dovecot || { say "make run: Dovecot did not come up (var/dovecot-server.log)"; exit 1; }
cat_conf >"$conf"
"$bin/helpgate-milter" -n -c "$conf" >/dev/null || { say "make run: $conf is not valid"; exit 1; }
MS_MILTER_LOG=$var/log/milter.log ms_start_milter "$bin/helpgate-milter" -f -c "$conf" ||
	{ say "make run: helpgate-milter failed (var/log/milter.log)"; exit 1; }
milter_pid=$MS_MILTER_PID
"$bin/helpgate-worker" -f -c "$conf" >>"$var/log/worker.log" 2>&1 </dev/null &
worker_pid=$!
MS_PIDS+=("$worker_pid")

cat >"$var/run/stack.env.tmp" <<EOF
STACK_PID=$$
SMTP_PORT=$port
CONF=$conf
MILTER_PID=$milter_pid
WORKER_PID=$worker_pid
SUBMISSION_PORT=$TB_SUBMISSION_PORT
SMTPS_PORT=$TB_SMTPS_PORT
TB_USER=$TB_USER
TB_PASS=$TB_PASS
EOF
mv "$var/run/stack.env.tmp" "$var/run/stack.env"

cat <<TXT

helpgate is running on a private Postfix at 127.0.0.1:$port.

  Write to support:  swaks --server 127.0.0.1:$port --to support@example.com \\
                       --from ann@client.example --header 'Subject: Cannot send mail' \\
                       --body 'Since noon Outlook cannot send any mail. Urgent!'
  Tagged mail:       var/mail/support@example.com/new/   (grep ^X-Helpgate)
  Acknowledgements:  var/mail/ann@client.example/new/    (every address has a Maildir)
  Staff notices:     var/mail/staff@staff.example.com/, var/mail/oncall@staff.example.com/
  The queue:         bin/helpgatectl -c conf/helpgate.conf sla
  A case:            bin/helpgatectl -c conf/helpgate.conf case show HG-1
  See it all:        make demo   (in another terminal)
  Logs:              var/log/milter.log, var/log/worker.log, var/maillog

Ctrl-C stops everything.
TXT

# Until Ctrl-C, or until a daemon dies (then say so and stop the rest).
while kill -0 "$milter_pid" 2>/dev/null && kill -0 "$worker_pid" 2>/dev/null; do
	sleep 1 &
	wait $!
done
say "make run: a daemon stopped (see var/log/): stopping the rest"
exit 1
