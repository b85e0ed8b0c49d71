#!/usr/bin/env bash
# test_harness.sh BINDIR - proves the test harness itself through a real
# Postfix: relay to smtp-sink through the trivial milter, Maildir delivery,
# and mail still flowing when the milter is gone (milter_default_action =
# accept).  BINDIR holds trivial-milter (make programs builds it).
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/mailstack.sh"

bindir=${1:-bin}
milter="$bindir/trivial-milter"
[ -x "$milter" ] || { echo "no $milter (make programs)"; echo "0 passed, 1 failed"; exit 1; }

ms_init || exit 1
msg="$MS_T/msg.eml"
cat >"$msg" <<'EOF'
From: Client <client@client.test>
To: Support <support@example.com>
Subject: Cannot log in
Date: Mon, 01 Jan 2024 10:00:00 +0000
X-Folded: first part
 second part
Message-ID: <harness-%N@client.test>

Hello, I cannot log in since this morning.
EOF

# 1. Relay through the trivial milter to the sink.
ms_start_sink || exit 1
MS_MILTER_SOCKET="unix:$MS_T/trivial.sock"
ms_start_milter "$milter" -p "$MS_MILTER_SOCKET" || exit 1
start=$SECONDS
ms_start_postfix "$MS_MILTER_SOCKET" || exit 1
t_ok "private Postfix up in $((SECONDS - start)) s"
if postfix -c "$MS_T/pf" check >"$MS_T/check.out" 2>&1 && ! [ -s "$MS_T/check.out" ]; then
	t_ok "postfix check passes silently"
else
	t_fail "postfix check passes silently" "$(cat "$MS_T/check.out")"
fi

ok=0
for i in 1 2 3 4 5; do
	sed "s/%N/$i/" "$msg" >"$MS_T/msg-$i.eml"
	ms_send --data "$MS_T/msg-$i.eml" && ok=$((ok + 1))
done
t_is "$ok" 5 "swaks sent 5 messages"
if ms_wait_delivered 5 30; then t_ok "5 delivered, queue empty"; else t_fail "5 delivered, queue empty"; fi
t_is "$(ms_count_sink)" 5 "5 messages in the sink"
tagged=0
while IFS= read -r f; do
	[ "$(ms_header "$f" X-Trivial)" = 1 ] && tagged=$((tagged + 1))
done < <(ms_list_sink)
t_is "$tagged" 5 "every relayed message carries X-Trivial: 1"
f=$(ms_find_by_header Message-ID "<harness-3@client.test>")
t_like "$f" "^$MS_T/sink/" "ms_find_by_header finds message 3"
t_is "$(ms_header "$f" x-folded)" "first part second part" "ms_header unfolds, any case"
t_is "$(ms_header "$f" X-Trivial)" 1 "message 3 tagged"
t_is "$(ms_header_count "$f" X-Trivial)" 1 "tagged once"
t_like "$(ms_header "$f" X-Rcpt-Args)" "support@example.com" "sink saw the recipient"
if ms_header "$f" X-Missing >/dev/null; then t_fail "absent header: status 1"; else t_ok "absent header: status 1"; fi
if ms_queue_empty; then t_ok "queue empty"; else t_fail "queue empty"; fi

# 2. Maildir delivery (a second Postfix in the same temp dir).
ms_stop_postfix
ms_clear_delivered
MS_DELIVERY=maildir ms_start_postfix "$MS_MILTER_SOCKET" || exit 1
sed "s/%N/md/" "$msg" >"$MS_T/msg-md.eml"
ms_send --to support@example.com --data "$MS_T/msg-md.eml"
if ms_wait_delivered 1 30; then t_ok "Maildir delivery done"; else t_fail "Maildir delivery done"; fi
md=$(ms_list_maildir)
t_like "$md" "^$MS_T/mail/support@example.com/new/[^/]+$" "in support@example.com's Maildir"
[ -n "$md" ] && t_is "$(ms_header "$md" X-Trivial)" 1 "Maildir message tagged"
[ -n "$md" ] && t_is "$(ms_header "$md" Subject)" "Cannot log in" "Maildir message intact"
t_is "$(ms_count_sink)" 0 "nothing went to the sink"

# 3. Milter gone: milter_default_action = accept lets mail through
# untagged.  Back to relaying by a reload.  The milter must stop cleanly on
# SIGTERM (exit 0: under ASan that also means no leak report).
ms_clear_delivered
if ms_postconf 'virtual_mailbox_domains ='; then t_ok "reloaded"; else t_fail "reloaded"; fi
ms_stop_milter
t_is "$?" 0 "milter exited 0 on SIGTERM"
if kill -0 "$MS_MILTER_PID" 2>/dev/null; then t_fail "milter stopped"; else t_ok "milter stopped"; fi
[ -e "$MS_T/trivial.sock" ] && t_fail "socket removed" || t_ok "socket removed"
sed "s/%N/nomilter/" "$msg" >"$MS_T/msg-nm.eml"
if ms_send --data "$MS_T/msg-nm.eml"; then t_ok "accepted without milter"; else t_fail "accepted without milter"; fi
if ms_wait_delivered 1 30; then t_ok "delivered without milter"; else t_fail "delivered without milter"; fi
f=$(ms_find_by_header Message-ID "<harness-nomilter@client.test>")
t_like "$f" "^$MS_T/sink/" "found in the sink"
t_is "$(ms_header_count "$f" X-Trivial)" 0 "no X-Trivial without the milter"
t_like "$(cat "$MS_T/maillog")" "milter unix:$MS_T/trivial.sock: can't connect|connect to Milter service" \
	"Postfix logged the unreachable milter"

t_done
