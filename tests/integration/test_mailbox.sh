#!/usr/bin/env bash
# test_mailbox.sh BINDIR - issue 14: no case is lost while helpgate-milter
# is down.  A private Postfix (milter_default_action = accept) delivers the
# support address into a Maildir, which helpgate-worker reconciles
# (Mailbox maildir:..., MailboxPoll 1s):
#   - with the milter up, the mailbox passes read every message and add
#     nothing (each was recorded by the milter);
#   - the milter killed with SIGKILL, 20 clients write (delivered untagged)
#     and one client answers its case; the milter started again; within a
#     few polls each of the 20 has exactly one case, opened from the
#     mailbox, logged once each and shown so by `helpgatectl case show`,
#     the answer joined its case, and every client has exactly one
#     acknowledgement;
#   - helpgate's own sealed letter dropped into the mailbox is left alone,
#     and so is a message from 2020 (MailboxMaxAge);
#   - a restarted worker adds nothing; one that forgot what it had read
#     (mailbox_seen emptied) reads it all again and still adds nothing.
# Postfix only: the Sendmail stack (tests/lib/sendmail.sh) relays to a
# sink and delivers into no mailbox.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/mailstack.sh"
. "$here/../lib/mailbox.sh"

bindir=${1:-bin}
for p in helpgate-milter helpgate-worker helpgatectl; do
	[ -x "$bindir/$p" ] || { echo "no $bindir/$p"; echo "0 passed, 1 failed"; exit 1; }
done

ms_init || exit 1
support_md="$MS_T/mail/support@example.com"
mb_start "$bindir" "Mailbox maildir:$support_md" || exit 1
conf=$MB_CONF worker_log=$MB_WORKER_LOG
ctl() { "$bindir/helpgatectl" -c "$conf" "$@"; }
in_mailbox() { find "$support_md/new" "$support_md/cur" -type f 2>/dev/null | grep -c .; }
opened_re=$MB_OPENED_RE

# ---- 1. the milter up: the mailbox pass reads everything and adds nothing
for i in 1 2 3 4 5; do
	send "up-$i" "Cannot log in ($i)"
done
# an out-of-office reply that answers no case: the milter stores nothing
# (no case), so the pass cannot tell whether it saw it; not a gap either
send "ooo-1" "Out of office" --from ooo-1@client.test --h-Auto-Submitted auto-replied
ms_wait_delivered "$sent" 30 || t_fail "milter up: delivered"
ms_wait_for 20 all_acked up 5 || t_fail "milter up: every client acknowledged"
t_is "$(sq "SELECT count(*) FROM messages WHERE message_id LIKE 'up-%' AND via = ''")" 5 \
	"milter up: the milter recorded the 5"
ms_wait_for 10 at_least 6 seen || true
sleep 3	# three more passes
t_is "$(seen)" 6 "milter up: the passes read the 6 messages of the mailbox"
t_is "$(cases)" 5 "milter up: several passes added no case"
t_is "$(sq "SELECT count(*) FROM messages WHERE via = 'mailbox'")" 0 \
	"milter up: nothing recorded from the mailbox"
t_is "$(grep -c "from the mailbox" "$worker_log")" 0 "milter up: no 'from the mailbox' line"
up1_case=$(sq "SELECT case_id FROM messages WHERE message_id = 'up-1@client.test'")

# ---- 2. the milter killed: 20 clients and one answer arrive untagged
wlog0=$(wc -l <"$worker_log")
ms_stop_milter "$MS_MILTER_PID" KILL
t0=$(date +%s)
for i in $(seq 1 20); do
	send "down-$i" "Webmail login broken ($i)"
done
send "down-answer" "Re: [HG-$up1_case] Cannot log in (1)" --from up-1@client.test \
	--h-In-Reply-To "<up-1@client.test>"
ms_wait_delivered "$sent" 30 || t_fail "milter down: delivered"
tagged=0
for f in $(find "$support_md/new" "$support_md/cur" -type f); do
	case "$(ms_header "$f" Message-ID)" in "<down-"*)
		ms_header "$f" X-Helpgate-Case >/dev/null && tagged=$((tagged + 1)) ;;
	esac
done
t_is "$tagged" 0 "milter down: the 21 messages were delivered untagged"
ms_start_milter "$bindir/helpgate-milter" -f -c "$conf" || t_fail "milter started again"

down_cases() {
	sq "SELECT count(DISTINCT case_id) FROM messages WHERE message_id LIKE 'down-%' AND message_id <> 'down-answer@client.test' AND via = 'mailbox'"
}
down_msgs() { sq "SELECT count(*) FROM messages WHERE message_id LIKE 'down-%'"; }
ms_wait_for 15 at_least 21 down_msgs || true
t1=$(date +%s)
t_is "$(down_cases)" 20 "every one of the 20 has a case of its own"
echo "# 20 untagged messages became cases within $((t1 - t0)) s of the first being sent (MailboxPoll 1s)"
t_is "$(sq "SELECT count(*) FROM messages WHERE message_id LIKE 'down-%'")" 21 \
	"each message recorded exactly once"
t_is "$(sq "SELECT case_id || ' ' || via FROM messages WHERE message_id = 'down-answer@client.test'")" \
	"$up1_case mailbox" "the client's answer joined its case"
t_is "$(cases)" 25 "no other case opened"
ms_wait_for 20 all_acked down 20 || t_fail "every client of the 20 acknowledged"
sleep 2
t_is "$(exactly_one_ack down 20)" 20 "every one of the 20 clients has exactly one acknowledgement"
t_is "$(acks_of up-1)" 1 "the answer to a case brought no second acknowledgement"
t_is "$(lines_since "$worker_log" "$wlog0" "$opened_re")" 20 \
	"one 'opened from the mailbox (the milter did not see it)' line per case"
t_is "$(lines_since "$worker_log" "$wlog0" "case=HG-$up1_case recorded from the mailbox")" 1 \
	"the answer logged as recorded from the mailbox"
c=$(sq "SELECT case_id FROM messages WHERE message_id = 'down-7@client.test'")
show=$(ctl case show "HG-$c")
t_like "$show" "opened from the mailbox: the milter did not see it" "case show says so"
t_like "$(ctl case show "HG-$up1_case")" "recorded from the mailbox: the milter did not see it" \
	"case show marks the answer"
t_is "$(ctl case show "HG-$up1_case" | grep -c 'opened from the mailbox')" 0 \
	"a case the milter opened is not called opened from the mailbox"
rec=$(ms_find_by_header Message-ID "<down-7@client.test>" | head -n 1)
want=$(python3 - "$rec" <<'PY'
import email.utils, sys
from email import policy
import email
m = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=policy.compat32)
print(int(email.utils.parsedate_to_datetime(m.get_all('Received')[0].rsplit(';', 1)[1].strip()).timestamp()))
PY
)
t_is "$(sq "SELECT received FROM messages WHERE message_id = 'down-7@client.test'")" "$want" \
	"the arrival time is the first Received header's"

# ---- 3. helpgate's own (sealed) letter in the mailbox is left alone
ack=$(find "$MS_T/mail/down-3@client.test/new" -type f | head -n 1)
c3=$(sq "SELECT case_id FROM messages WHERE message_id = 'down-3@client.test'")
n3=$(sq "SELECT count(*) FROM messages WHERE case_id = ?" "$c3")
ms_header "$ack" X-Helpgate-Seal >/dev/null || t_fail "the acknowledgement is sealed"
seen0=$(seen)
wlog0=$(wc -l <"$worker_log")
cp "$ack" "$support_md/tmp/sealed.P1.test" && mv "$support_md/tmp/sealed.P1.test" "$support_md/new/"
ms_wait_for 10 at_least $((seen0 + 1)) seen || t_fail "the sealed letter was read"
t_is "$(sq "SELECT count(*) FROM messages WHERE case_id = ?" "$c3")" "$n3" \
	"the sealed acknowledgement was not recorded on its case"
t_is "$(cases)" 25 "nor opened a case"
t_is "$(lines_since "$worker_log" "$wlog0" 'from the mailbox')" 0 "nor went through the intake (no log line)"

# ---- 3b. history: a message that arrived years ago is left alone
seen0=$(seen)
wlog0=$(wc -l <"$worker_log")
printf '%s\n' "Received: from mx.client.test by mx.example.com (Postfix) with ESMTP id 4OLD1; Tue, 3 Mar 2020 09:12:41 +0000" \
	"From: old-1@client.test" "To: support@example.com" "Subject: Cannot log in" \
	"Message-ID: <old-1@client.test>" "" "Hello, I cannot log in (2020)." >"$support_md/tmp/old.P2.test"
mv "$support_md/tmp/old.P2.test" "$support_md/new/"
ms_wait_for 10 at_least $((seen0 + 1)) seen || t_fail "the old message was read"
t_is "$(sq "SELECT count(*) FROM messages WHERE message_id = 'old-1@client.test'")|$(cases)" "0|25" \
	"a message from 2020 opened no case (MailboxMaxAge)"
t_is "$(lines_since "$worker_log" "$wlog0" '1 message\(s\) older than MailboxMaxAge')" 1 "and is counted in one line"

# ---- 4. a restarted worker adds nothing; nor one that forgot what it read
total_msgs=$(sq "SELECT count(*) FROM messages")
ms_stop_pid "$worker_pid"
wlog0=$(wc -l <"$worker_log")
ms_spawn worker_pid "$bindir/helpgate-worker" -f -c "$conf"
sleep 3
t_is "$(cases)|$(sq "SELECT count(*) FROM messages")" "25|$total_msgs" "a restarted worker's passes add nothing"
ms_stop_pid "$worker_pid"
sq "DELETE FROM mailbox_seen" >/dev/null
ms_spawn worker_pid "$bindir/helpgate-worker" -f -c "$conf"
ms_wait_for 10 at_least "$(in_mailbox)" seen || t_fail "a forgetful worker read the mailbox again"
sleep 1
t_is "$(seen)" "$(in_mailbox)" "every file of the mailbox read again ($(in_mailbox))"
t_is "$(cases)|$(sq "SELECT count(*) FROM messages")" "25|$total_msgs" \
	"reading it all again added nothing (Message-ID)"
t_is "$(lines_since "$worker_log" "$wlog0" 'from the mailbox')" 0 "and logged no case"
t_is "$(grep -c 'runtime error\|AddressSanitizer' "$worker_log")" 0 "no sanitizer report"

t_done
