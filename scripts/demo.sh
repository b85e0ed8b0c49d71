#!/usr/bin/env bash
# make demo: four clients write to support through make run's private
# stack, and this prints what became of each message, as a support agent
# would want to see it: the tags on the delivered copy, the case, the
# acknowledgement the client received, the diagnosis and the working
# setting sent to the client, then the queue (helpgatectl sla).
#
#   1. a calm how-to question (English)
#   2. an angry outage, in Russian (mail is not arriving)
#   3. a trial customer whose outgoing mail fails: their stored settings
#      name the implicit-TLS port with STARTTLS, so the diagnosis probes the
#      demo's submission server and finds the setting that works
#   4. a bounce (null sender, delivery report)
#
# If make run is not going, it is started here (var/log/stack.log) and
# stopped again at the end; the mail stays under var/mail.  Every run uses
# new Message-IDs, so it can be repeated.  DEMO_TIMEOUT (60 s) bounds the
# wait for acknowledgements and the diagnosis.
set -u
cd "$(dirname "$0")/.." || exit 1
root=$(pwd)
var=$root/var
say() { printf '%s\n' "$*"; }

started=0
stack_pid=""
stack_up() {
	[ -f "$var/run/stack.env" ] || return 1
	stack_pid=$(sed -n 's/^STACK_PID=//p' "$var/run/stack.env")
	[ -n "$stack_pid" ] && kill -0 "$stack_pid" 2>/dev/null
}
if ! stack_up; then
	say "make demo: make run is not going; starting it (var/log/stack.log) ..."
	mkdir -p "$var/log"
	setsid bash "$root/scripts/run-stack.sh" >"$var/log/stack.log" 2>&1 </dev/null &
	started=1
	for ((i = 0; i < 600; i++)); do
		stack_up && break
		kill -0 $! 2>/dev/null || break
		sleep 0.1
	done
	if ! stack_up; then
		say "make demo: the stack did not start:"
		tail -n 20 "$var/log/stack.log"
		exit 1
	fi
fi
stop_stack() {
	[ "$started" = 1 ] || return 0
	kill -TERM "$stack_pid" 2>/dev/null
	for ((i = 0; i < 300; i++)); do
		kill -0 "$stack_pid" 2>/dev/null || break
		sleep 0.1
	done
}
trap stop_stack EXIT
# shellcheck disable=SC1091
. "$var/run/stack.env"
ctl() { "$root/bin/helpgatectl" -c "$CONF" "$@"; }

# The trial customer, with the wrong security for the port they named.
pwfile=$var/run/demo-trial.pw
(umask 077 && printf '%s\n' "$TB_PASS" >"$pwfile")
# 0600 and the daemons' own: the worker runs as helpgate (make run)
id helpgate >/dev/null 2>&1 && chown helpgate "$pwfile"
ctl customer add @newco.example --tier trial >/dev/null || exit 1
ctl customer set @newco.example --smtp "127.0.0.1:$SMTPS_PORT" --security starttls \
	--user "$TB_USER" --password-file "$pwfile" >/dev/null || exit 1

stamp=$(date +%s).$$
msgdir=$var/run/demo-$stamp
mkdir -p "$msgdir"
mk() {	# mk N FROM SUBJECT BODY: message N of this run
	local dom
	dom=$(printf '%s' "$2" | sed 's/.*@\([^>]*\)>*$/\1/')
	{
		printf 'From: %s\nTo: support@example.com\nSubject: %s\nDate: %s\n' "$2" "$3" "$(date -R)"
		printf 'Message-ID: <demo-%s-%s@%s>\nMIME-Version: 1.0\n' "$stamp" "$1" "$dom"
		printf 'Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n%s\n' "$4"
	} >"$msgdir/$1.eml"
}
mk 1 "Anna Schmidt <anna@client.example>" "How do I add an alias to my mailbox?" \
"Hello,

could you tell me how to add a second address (an alias) to my mailbox?
No hurry, whenever you have time.

Thanks, Anna"
mk 2 "=?utf-8?B?0JjQstCw0L0g0J/QtdGC0YDQvtCy?= <ivan@shop.example>" \
	"=?utf-8?B?0KHQoNCe0KfQndCeISEhINCf0L7Rh9GC0LAg0L3QtSDQv9GA0LjRhdC+0LTQuNGCIQ==?=" \
"Здравствуйте!

Уже три часа к нам не приходит НИ ОДНО письмо. Клиенты не могут с нами
связаться, мы теряем заказы! Это катастрофа, сделайте что-нибудь
немедленно!!!

Иван Петров, интернет-магазин"
mk 3 "Tom Novak <tom@newco.example>" "Outgoing mail is not being sent" \
"Hi,

we are trying out your service. Since noon our mail program cannot send
any email: the messages stay in the outbox and it keeps retrying.
Receiving works fine.

Tom"
{
	printf 'From: Mail Delivery System <MAILER-DAEMON@mx.client.example>\nTo: support@example.com\n'
	printf 'Subject: Undelivered Mail Returned to Sender\nDate: %s\n' "$(date -R)"
	printf 'Message-ID: <demo-%s-4@mx.client.example>\nAuto-Submitted: auto-replied\n' "$stamp"
	printf 'MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
	printf -- '--b\nContent-Type: text/plain\n\nYour message could not be delivered to nobody@client.example.\n\n'
	printf -- '--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.client.example\n\n'
	printf 'Final-Recipient: rfc822; nobody@client.example\nAction: failed\nStatus: 5.1.1\n\n--b--\n'
} >"$msgdir/4.eml"

say "helpgate demo: 4 messages to support@example.com through the private Postfix at 127.0.0.1:$SMTP_PORT"
for n in 1 2 3 4; do
	from=$(sed -n 's/^From: .*<\(.*\)>$/\1/p' "$msgdir/$n.eml" | head -n 1)
	[ "$n" = 4 ] && from="<>"
	if ! swaks --server "127.0.0.1:$SMTP_PORT" --helo client.example --from "$from" \
		--to support@example.com --data "$msgdir/$n.eml" >"$msgdir/$n.swaks" 2>&1; then
		say "make demo: Postfix did not take message $n:"
		tail -n 5 "$msgdir/$n.swaks"
		exit 1
	fi
done

python3 "$root/scripts/demo_report.py" "$root/bin/helpgatectl" "$CONF" "$var/mail" "$stamp" \
	"${DEMO_TIMEOUT:-60}" "$SUBMISSION_PORT" "$SMTPS_PORT"
rc=$?
say ""
say "The queue now (bin/helpgatectl -c conf/helpgate.conf sla):"
"$root/bin/helpgatectl" -c "$root/conf/helpgate.conf" sla | sed 's/^/  /'
say ""
say "Everything above is in var/mail/ (mutt -f var/mail/support@example.com);"
[ "$started" = 1 ] && say "the stack this demo started is stopped now; make run keeps one going."
exit "$rc"
