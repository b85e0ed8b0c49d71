#!/usr/bin/env bash
# test_mailbox_imap.sh BINDIR - issue 14 over IMAP: helpgate-worker
# reconciles the support mailbox through the test bed's Dovecot (imaps://,
# certificate checked against the bed's CA, EXAMINE), whose user
# support@example.com reads the very Maildir the private Postfix delivers
# the support address to (a symlink: the simplest way to one mailbox).
#   - milter up: the passes read every message and add nothing;
#   - milter killed: 10 untagged messages, 10 cases opened from the
#     mailbox, one acknowledgement each, nothing marked \Seen;
#   - Dovecot stopped for a while: logged once, no crash, the mail that
#     came meanwhile gets its cases when Dovecot is back;
#   - a wrong password: logged once, retried, works again when fixed;
#   - the folder's UIDVALIDITY changes (dovecot-uidlist removed): logged,
#     everything read again, nothing duplicated, nothing lost;
#   - imap:// (STARTTLS) works as well; a server whose certificate does
#     not verify gets no password;
#   - MailboxFlags yes: keywords HG-n, Pn and the category on new messages.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/mailstack.sh"
. "$here/../lib/testbed.sh"
. "$here/../lib/mailbox.sh"

bindir=${1:-bin}
for p in helpgate-milter helpgate-worker helpgatectl; do
	[ -x "$bindir/$p" ] || { echo "no $bindir/$p"; echo "0 passed, 1 failed"; exit 1; }
done

ms_init || exit 1
tb_certs || exit 1
tb_start_dovecot || exit 1
D=$MS_T/dovecot
support_md="$MS_T/mail/support@example.com"
mkdir -p "$MS_T/mail" "$support_md/new" "$support_md/cur" "$support_md/tmp"
chown -R nobody: "$MS_T/mail"
ln -s "$support_md" "$D/mail/support@example.com"
printf '%s:{PLAIN}%s:%s:%s::%s::\n' support@example.com 'imap-pw' \
	"$(id -u nobody)" "$(id -g nobody)" "$D/mail/support@example.com" >>"$D/users"

pwfile="$MS_T/mailbox.secret"
printf 'imap-pw\n' >"$pwfile"
chmod 600 "$pwfile"
mb_start "$bindir" "Mailbox imaps://support@example.com@127.0.0.1:$TB_IMAPS_PORT/INBOX" \
	"MailboxPasswordFile $pwfile" "MailboxCAFile $TB_CA" || exit 1
conf=$MB_CONF worker_log=$MB_WORKER_LOG
msgs() { sq "SELECT count(*) FROM messages WHERE direction = 'in'"; }
via_mailbox() { sq "SELECT count(*) FROM messages WHERE via = 'mailbox'"; }
dovecot_stop() {
	doveadm -c "$TB_DOVECOT_CONF" stop >/dev/null 2>&1
	_tb_wait_gone "$TB_DOVECOT_PID" 10 || t_fail "dovecot stopped"
}
dovecot_start() {
	ms_spawn TB_DOVECOT_PID dovecot -F -c "$TB_DOVECOT_CONF"
	_tb_wait_dovecot || t_fail "dovecot started again"
}
opened_re=$MB_OPENED_RE

# ---- 1. the milter up: the passes read everything, add nothing
for i in 1 2 3; do send "up-$i"; done
ms_wait_delivered "$sent" 30 || t_fail "milter up: delivered"
ms_wait_for 15 at_least 3 seen || true
sleep 2
t_is "$(seen)" 3 "milter up: the passes read the 3 messages over IMAP"
t_is "$(cases)|$(via_mailbox)" "3|0" "milter up: nothing added"
t_is "$(sq "SELECT count(*) FROM mailbox_seen WHERE key GLOB '[0-9]*/[0-9]*'")" 3 \
	"keyed by UIDVALIDITY/UID"
t_is "$(grep -c 'from the mailbox' "$worker_log")" 0 "milter up: no 'from the mailbox' line"

# ---- 2. the milter killed: 10 untagged messages become 10 cases
wlog0=$(wc -l <"$worker_log")
ms_stop_milter "$MS_MILTER_PID" KILL
t0=$(date +%s.%N)
for i in $(seq 1 10); do send "down-$i"; done
ms_wait_delivered "$sent" 30 || t_fail "milter down: delivered"
ms_wait_for 20 at_least 10 via_mailbox || true
t1=$(date +%s.%N)
t_is "$(sq "SELECT count(DISTINCT case_id) FROM messages WHERE message_id LIKE 'down-%' AND via = 'mailbox'")" 10 \
	"each of the 10 has a case of its own, from the mailbox"
echo "# 10 untagged messages became cases within $(python3 -c "print(round($t1 - $t0, 1))") s of the first being sent (IMAP, MailboxPoll 1s)"
t_is "$(lines_since "$worker_log" "$wlog0" "$opened_re")" 10 "one log line per case"
ms_wait_for 20 all_acked down 10 || t_fail "every client acknowledged"
sleep 1
t_is "$(exactly_one_ack down 10)" 10 "every client exactly one acknowledgement"
t_is "$(find "$support_md/cur" "$support_md/new" -type f -name '*:2,*S*' | grep -c .)" 0 \
	"read-only: nothing marked \\Seen"

# ---- 3. Dovecot stopped: logged once, no crash, the mail waits
wlog0=$(wc -l <"$worker_log")
dovecot_stop
for i in 1 2 3; do send "dark-$i"; done
ms_wait_delivered "$sent" 30 || t_fail "Dovecot down: delivered"
sleep 4
t_is "$(lines_since "$worker_log" "$wlog0" 'mailbox imaps://.*(refused|broke|failed)')" 1 \
	"Dovecot down: logged once over 4 passes"
t_is "$(worker_alive)" alive "Dovecot down: the worker runs on"
dovecot_start
ms_wait_for 20 at_least 13 via_mailbox || true
t_is "$(sq "SELECT count(*) FROM messages WHERE message_id LIKE 'dark-%' AND via = 'mailbox'")" 3 \
	"Dovecot back: the 3 messages that came meanwhile have cases"
t_is "$(lines_since "$worker_log" "$wlog0" 'mailbox imaps://.*readable again')" 1 "the recovery logged"

# ---- 4. a wrong password: logged once, retried, fixed
wlog0=$(wc -l <"$worker_log")
printf 'wrong\n' >"$pwfile"
send "pw-1"
ms_wait_delivered "$sent" 30 || t_fail "wrong password: delivered"
sleep 4
t_is "$(lines_since "$worker_log" "$wlog0" 'mailbox imaps://.*LOGIN failed')" 1 \
	"wrong password: logged once over 4 passes"
t_is "$(sq "SELECT count(*) FROM messages WHERE message_id = 'pw-1@client.test'")" 0 \
	"wrong password: nothing read"
printf 'imap-pw\n' >"$pwfile"
ms_wait_for 15 at_least 14 via_mailbox || true
t_is "$(sq "SELECT count(*) FROM messages WHERE message_id = 'pw-1@client.test'")" 1 \
	"password fixed: the message has its case"
t_is "$(worker_alive)" alive "wrong password: the worker runs on"

# ---- 5. a new UIDVALIDITY: read again, nothing duplicated, nothing lost
wlog0=$(wc -l <"$worker_log")
c0=$(cases) m0=$(msgs) s0=$(seen)
dovecot_stop
rm -f "$support_md/dovecot-uidlist" "$support_md"/dovecot.index*
sleep 1	# Dovecot's new UIDVALIDITY is the time of day
dovecot_start
send "renew-1"
ms_wait_delivered "$sent" 30 || t_fail "new UIDVALIDITY: delivered"
ms_wait_for 20 at_least $((s0 + $(find "$support_md/new" "$support_md/cur" -type f | grep -c .))) seen || true
ms_wait_for 10 at_least $((m0 + 1)) msgs || true
t_is "$(lines_since "$worker_log" "$wlog0" 'UIDVALIDITY changed')" 1 "the new UIDVALIDITY logged"
t_is "$(cases)|$(msgs)" "$((c0 + 1))|$((m0 + 1))" \
	"everything read again: only the new message added"
t_is "$(sq "SELECT count(*) FROM messages WHERE message_id = 'renew-1@client.test' AND via = 'mailbox'")" 1 \
	"the message after the change has its case"

# ---- 6. imap:// with STARTTLS; a certificate that does not verify
ms_stop_pid "$worker_pid"
sed -i "s|^Mailbox .*|Mailbox imap://support@example.com@127.0.0.1:$TB_IMAP_PORT/INBOX|" "$conf"
wlog0=$(wc -l <"$worker_log")
send "tls-1"
ms_wait_delivered "$sent" 30 || t_fail "STARTTLS: delivered"
ms_spawn worker_pid "$bindir/helpgate-worker" -f -c "$conf"
ms_wait_for 15 at_least $((m0 + 2)) msgs || true
t_is "$(sq "SELECT count(*) FROM messages WHERE message_id = 'tls-1@client.test' AND via = 'mailbox'")" 1 \
	"imap:// (STARTTLS): the message has its case"
ms_stop_pid "$worker_pid"
sed -i "s|^Mailbox .*|Mailbox imaps://support@example.com@$TB_IMAPS_SELFSIGNED_HOST:$TB_IMAPS_SELFSIGNED_PORT/INBOX|" "$conf"
wlog0=$(wc -l <"$worker_log")
dlog0=$(wc -l <"$MS_T/dovecot-server.log")
ms_spawn worker_pid "$bindir/helpgate-worker" -f -c "$conf"
sleep 3
t_is "$(lines_since "$worker_log" "$wlog0" 'mailbox imaps://.*certificate')" 1 \
	"a self-signed certificate: refused, logged once"
t_is "$(lines_since "$MS_T/dovecot-server.log" "$dlog0" 'Login: user=<support@example.com>')" 0 \
	"and no login was tried"
t_is "$(worker_alive)" alive "the worker runs on"

# ---- 7. MailboxFlags: keywords HG-n, Pn and the category on new messages
ms_stop_pid "$worker_pid"
sed -i "s|^Mailbox .*|Mailbox imaps://support@example.com@127.0.0.1:$TB_IMAPS_PORT/INBOX|" "$conf"
echo "MailboxFlags yes" >>"$conf"
flags_of() {	# the IMAP flags of the message with this Message-ID, sorted
	doveadm -c "$TB_DOVECOT_CONF" fetch -u support@example.com flags mailbox INBOX \
		header message-id "$1" 2>/dev/null | sed -n 's/^flags: //p' | tr ' ' '\n' | grep . | sort | paste -sd' '
}
words() { printf '%s\n' "$@" | sort | paste -sd' '; }
send "flag-1"	# the milter is down: opened from the mailbox
ms_start_milter "$bindir/helpgate-milter" -f -c "$conf" || t_fail "milter started again"
send "flag-2"	# recorded by the milter
ms_wait_delivered "$sent" 30 || t_fail "MailboxFlags: delivered"
ms_spawn worker_pid "$bindir/helpgate-worker" -f -c "$conf"
# (a fresh message shows \Recent to doveadm: wait for the case keyword)
flagged() { [[ "$(flags_of flag-2@client.test)" == *HG-* ]] && [[ "$(flags_of flag-1@client.test)" == *HG-* ]]; }
ms_wait_for 15 flagged || true
c1=$(sq "SELECT case_id FROM messages WHERE message_id = 'flag-1@client.test'")
c2=$(sq "SELECT case_id FROM messages WHERE message_id = 'flag-2@client.test'")
u1=$(sq "SELECT urgency || ' ' || category FROM cases WHERE id = ?" "$c1")
u2=$(sq "SELECT urgency || ' ' || category FROM cases WHERE id = ?" "$c2")
t_is "$(flags_of flag-1@client.test)" "$(words "HG-$c1" "P${u1% *}" "${u1#* }")" \
	"MailboxFlags: the case opened from the mailbox has HG-$c1, P${u1% *}, ${u1#* }"
t_is "$(flags_of flag-2@client.test)" "$(words "HG-$c2" "P${u2% *}" "${u2#* }")" \
	"MailboxFlags: the milter's case too"
t_is "$(flags_of down-1@client.test)" "" "messages read before keep their flags (none)"
t_is "$(find "$support_md/cur" "$support_md/new" -type f -name '*:2,*S*' | grep -c .)" 0 \
	"SELECT with BODY.PEEK: still nothing marked \\Seen"
t_is "$(grep -c 'runtime error\|AddressSanitizer' "$worker_log")" 0 "no sanitizer report"

t_done
