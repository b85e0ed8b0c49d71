#!/usr/bin/env bash
# test_sendmail.sh BINDIR - helpgate-milter and helpgate-worker behind a real
# Sendmail 8.17 (a private one on loopback, tests/lib/sendmail.sh), the way
# a postmaster runs them: support mail in several charsets tagged, forged
# X-Helpgate-* removed, other mail untouched, follow-ups threaded, staff
# replies recorded, the worker's acknowledgements relayed through that same
# Sendmail and confirmed by the milter (relay_seen), the degraded path
# (store locked: delivered at once, tagged, spooled, replayed by the
# worker), and INSTALL's own INPUT_MAIL_FILTER line: with the filter down,
# mail still flows, and the worker's Mailbox pass gives it its case.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/../lib/mailstack.sh"
. "$here/../lib/sendmail.sh"

bindir=${1:-bin}
for p in helpgate-milter helpgate-worker helpgatectl; do
	[ -x "$bindir/$p" ] || { echo "no $bindir/$p"; echo "0 passed, 1 failed"; exit 1; }
done
data="$repo/tests/data"

ms_init || exit 1
conf="$MS_T/helpgate.conf"
db="$MS_T/hg.db"
spool="$MS_T/spool"
ms_start_sink || exit 1
MS_MILTER_SOCKET="unix:$MS_T/hg.sock"
sm_start_sendmail "$MS_MILTER_SOCKET" || { t_fail "private Sendmail starts"; t_done; exit 1; }
cat >"$conf" <<CONF
Socket $MS_MILTER_SOCKET
Database $db
SpoolDirectory $spool
DiagnoseResolver 127.0.0.1:9
SupportAddress support@example.com
StaffDomain staff.example.com
StaffNetwork 127.0.0.2/32
Timezone UTC
Syslog no
KeywordsDir $repo/conf/keywords
TemplatesDir $repo/conf/templates
StoreTimeout 1s
PollInterval 100ms
DiagnosePerCustomerPerHour 0
Relay smtp://127.0.0.1:$SM_PORT
CONF
ms_start_milter "$bindir/helpgate-milter" -f -c "$conf" || exit 1
milter_log="$MS_T/milter-$MS_MILTER_N.log"
ms_spawn worker_pid "$bindir/helpgate-worker" -f -c "$conf"
worker_log="$MS_T/helpgate-worker.log"
ctl() { "$bindir/helpgatectl" -c "$conf" "$@"; }
t_like "$(timeout 20 "$SM_DIR/ns.sh" "$SM_BIN" -d0.1 -bt -C "$SM_DIR/sendmail.cf" </dev/null 2>/dev/null | head -n 1)" \
	'^Version 8\.1[7-9]' "the MTA is a real Sendmail 8.17 or later"

sq() { ms_sq "$db" "$@"; }
sent_ids=()
send() {	# send FILE [swaks args]: through Sendmail
	local f=$1 id
	shift
	id=$(ms_header "$f" Message-ID)
	if sm_send --data "$f" "$@"; then sent_ids+=("$id"); else t_fail "Sendmail accepted $(basename "$f")"; fi
}
# wait_sent TIMEOUT: every message sent so far is in the sink and
# Sendmail's queue is empty (the sink also holds acknowledgements, so
# messages are found by Message-ID, not counted).
wait_sent() {
	local end=$((SECONDS + $1)) id missing
	while :; do
		missing=""
		for id in "${sent_ids[@]}"; do
			[ -n "$(ms_find_by_header Message-ID "$id" | head -n 1)" ] || { missing=$id; break; }
		done
		[ -z "$missing" ] && sm_queue_empty && return 0
		[ "$SECONDS" -ge "$end" ] && break
		sleep 0.2
	done
	ms_log "wait_sent: ${missing:-the queue} still missing after ${1}s"
	return 1
}
mkmsg() { ms_mkmsg "$@"; }
by_id() { ms_find_by_header Message-ID "<$1>" | head -n 1; }
hdr() { ms_header "$1" "$2"; }
case_of() { sq "SELECT case_id FROM messages WHERE message_id = ?" "$1"; }
wait_for() { ms_wait_for "$@"; }
# acks_to ADDRESS: acknowledgements relayed to ADDRESS (in the sink)
acks_to() {
	local f n=0
	while IFS= read -r f; do
		[ "$(hdr "$f" Auto-Submitted)" = auto-replied ] || continue
		grep -qi "^X-Rcpt-Args: <$1>" "$f" && n=$((n + 1))
	done < <(ms_list_sink)
	echo "$n"
}

# ---- 1. support mail in several languages and charsets, as real clients send it
for f in en-outgoing-urgent ru-koi8-qp ru-cp1251-b64 uk-utf8-b64 html-only howto de-outgoing \
    fr-outgoing broken-mime auto-reply list; do
	send "$data/$f.eml"
done
send "$data/bounce.eml" --from '<>'
check() {	# check MESSAGE-ID URGENCY CATEGORY DESC
	local f
	f=$(by_id "$1")
	[ -n "$f" ] || { t_fail "$4: delivered"; return; }
	t_like "$(hdr "$f" X-Helpgate-Case)" '^HG-[0-9]+$' "$4: X-Helpgate-Case"
	t_is "$(hdr "$f" X-Helpgate-Urgency)" "$2" "$4: urgency"
	t_is "$(hdr "$f" X-Helpgate-Category)" "$3" "$4: category"
}
wait_sent 30 || t_fail "corpus delivered through Sendmail"
check 20250303091241.5521@mail.client.test P1 outgoing-mail "en urgent outgoing"
check a7c1e0f2.4411@client.test P1 outgoing-mail "ru koi8-r QP"
check '0f3b2d9e81c4$1a2b3c40$@client.test' P2 incoming-mail "ru cp1251 base64"
check CAF9x2kq7Hh1@mail.client.test P1 outgoing-mail "uk utf-8 base64"
check BN8PR12MB3345.2025@client.test P2 incoming-mail "html-only"
check 9c2f4e1a-de01@client.test P1 outgoing-mail "de"
check fr.20250310090500@client.test P1 outgoing-mail "fr iso-8859-1"
f=$(by_id 20250307140233.GA1234@client.test)
t_is "$(hdr "$f" X-Helpgate-Urgency)" P4 "how-to question: P4"
f=$(by_id 20250303100005.4B2C1@mx.client.test)
t_like "$(hdr "$f" X-Helpgate-Auto)" '.' "bounce marked X-Helpgate-Auto"
f=$(by_id broken.1741262400@client.test)
t_like "$(hdr "$f" X-Helpgate-Case)" '^HG-' "broken MIME still tagged"

# The milter's log line names Sendmail's queue ID (macro i), as in Received.
f=$(by_id 20250303091241.5521@mail.client.test)
qid=$(sed -n 's/.*by mta\.test (8\.[0-9.\/]*) with E\{0,1\}SMTP id \([A-Za-z0-9]*\).*/\1/p' "$f" | head -n 1)
[ -z "$qid" ] && qid=$(awk '/^Received: .*by mta\.test/ { r = 1 } r && / id / { for (i = 1; i <= NF; i++) if ($i == "id") { print $(i + 1); exit } }' "$f" | tr -d ';')
t_like "$qid" '^[A-Za-z0-9]{10,}$' "Sendmail's queue ID in the Received header"
t_like "$(grep -F "$qid: case=" "$milter_log" | head -n 1)" "^.*$qid: case=HG-[0-9]+ urgency=P1" \
	"the milter's log line carries Sendmail's queue ID"

# ---- 2. forged X-Helpgate-* headers: removed however many, however spelt
pad=$(for i in $(seq 1 70); do printf 'X-Helpgate-Pad%d: x\\n' "$i"; done)
mkmsg "$MS_T/forged.eml" "Eve <eve@client.test>" "Question about invoices" "forged-1@client.test" \
    "How do I download last month's invoice?" \
    "${pad}X-Helpgate-Urgency: P1\nX-Helpgate-Case: HG-999\nx-helpgate-tier: enterprise\nX-HELPGATE-STATUS: ok\nX-Helpgate-Urgency: P1"
send "$MS_T/forged.eml"
wait_sent 30 || t_fail "forged delivered"
f=$(by_id forged-1@client.test)
t_is "$(grep -ci '^X-Helpgate-Pad' "$f")" 0 "70 forged X-Helpgate-Pad* headers removed"
t_is "$(ms_header_count "$f" X-Helpgate-Urgency)" 1 "forged urgency replaced, not added to"
t_is "$(hdr "$f" X-Helpgate-Urgency)" P4 "forged P1 did not survive"
t_is "$(ms_header_count "$f" X-Helpgate-Case)" 1 "one X-Helpgate-Case"
t_like "$(hdr "$f" X-Helpgate-Case)" '^HG-[0-9]+$' "its own case, not the forged HG-999"
t_is "$(hdr "$f" X-Helpgate-Tier)" unknown "forged tier did not survive"
t_is "$(ms_header_count "$f" X-Helpgate-Status)" 0 "forged status removed"

# ---- 3. mail that is not for support passes untouched and opens nothing
mkmsg "$MS_T/sales.eml" "Client <client@client.test>" "Price list" "sales-1@client.test" \
    "Could you send me your price list? This goes to sales, not support." "" sales@example.com
send "$MS_T/sales.eml" --to sales@example.com
wait_sent 30 || t_fail "non-support delivered"
f=$(by_id sales-1@client.test)
t_is "$(grep -ci '^X-Helpgate-' "$f")" 0 "non-support mail: no X-Helpgate-* header added"
t_is "$(sed '1,/^$/d' "$f" | tr -d '\r')" "$(sed '1,/^$/d' "$MS_T/sales.eml")" "non-support mail: body unchanged"
t_is "$(case_of sales-1@client.test)" "" "non-support mail: no case recorded"

# ---- 4. threading: subject tag, In-Reply-To, the same Message-ID twice
f=$(by_id 20250307140233.GA1234@client.test)
howto_case=$(hdr "$f" X-Helpgate-Case)
mkmsg "$MS_T/fu1.eml" "Anna Schmidt <anna@client.test>" "Re: [$howto_case] How do I add an alias?" \
    "fu-1@client.test" "And how do I remove one again?"
send "$MS_T/fu1.eml" --from anna@client.test
mkmsg "$MS_T/fu2.eml" "Anna Schmidt <anna@client.test>" "one more thing" "fu-2@client.test" \
    "Also, can an alias point outside the domain?" "In-Reply-To: <20250307140233.GA1234@client.test>"
send "$MS_T/fu2.eml" --from anna@client.test
cases_before=$(sq "SELECT count(*) FROM cases")
send "$data/howto.eml"	# the same message again (a client's retry)
wait_sent 30 || t_fail "follow-ups delivered"
t_is "$(hdr "$(by_id fu-1@client.test)" X-Helpgate-Case)" "$howto_case" "follow-up by [HG-n] joins the case"
t_is "$(hdr "$(by_id fu-2@client.test)" X-Helpgate-Case)" "$howto_case" "follow-up by In-Reply-To joins the case"
t_is "$(sq "SELECT count(*) FROM cases")" "$cases_before" "the same Message-ID twice opens no second case"

# ---- 5. the worker's acknowledgements go out through Sendmail and its milter
wait_acks() { [ "$(sq "SELECT count(*) FROM outbox WHERE kind = 'ack' AND state = 'sent'")" -ge 8 ]; }
wait_for 30 wait_acks || t_fail "acknowledgements sent" "$(tail -n 5 "$worker_log")"
wait_for 20 sh -c '[ -z "$(find "$1" -type f -name "qf*" | head -n 1)" ]' _ "$SM_DIR/mqueue"
sleep 0.5
t_is "$(acks_to mark.johnson@client.test)" 1 "one acknowledgement to the English client, through Sendmail"
t_is "$(acks_to anna@client.test)" 1 "one acknowledgement for the how-to case (not one per follow-up)"
t_is "$(acks_to ivan.petrov@client.test)" 1 "Russian client acknowledged"
t_is "$(acks_to news@client.test)" 0 "no acknowledgement to a mailing list"
t_is "$(acks_to 'MAILER-DAEMON@mx.client.test')" 0 "no acknowledgement to a bounce"
t_is "$(sq "SELECT count(*) FROM outbox WHERE kind = 'ack' AND state <> 'sent'")" 0 "every acknowledgement sent"
t_is "$(sq "SELECT count(*) FROM outbox WHERE kind = 'ack' AND relay_seen = 0")" 0 \
	"every acknowledgement confirmed by the milter inside Sendmail (relay_seen)"
ack=$(ms_find_by_header X-Helpgate-Case "$howto_case" | while IFS= read -r f; do
	[ "$(hdr "$f" Auto-Submitted)" = auto-replied ] && echo "$f"; done | head -n 1)
t_like "$(hdr "$ack" Subject)" "\[$howto_case\]" "the acknowledgement names the case"
t_is "$(ms_header_count "$ack" X-Helpgate-Urgency)" 0 "the acknowledgement passed the milter untagged"
t_like "$(grep -m1 '^X-Mail-Args:' "$ack")" '^X-Mail-Args: <>' "the acknowledgement's envelope sender is null"

# ---- 6. a staff reply through Sendmail: recorded, never tagged, but only
# when Sendmail vouches for the sender ({client_addr} in StaffNetwork: the
# staff relay 127.0.0.2); a staff From and MAIL FROM alone do not
en_case=$(hdr "$(by_id 20250303091241.5521@mail.client.test)" X-Helpgate-Case)
mkmsg "$MS_T/forged-staff.eml" "Boss <boss@staff.example.com>" "Re: [$en_case] done" \
    "forged-staff-1@client.test" "Closing this." "X-Helpgate-Notice: sla-breach" mark.johnson@client.test
send "$MS_T/forged-staff.eml" --from boss@staff.example.com --to mark.johnson@client.test
wait_sent 30 || t_fail "forged staff reply delivered"
t_is "$(case_of forged-staff-1@client.test)" "" "a forged staff reply is not recorded on the case"
t_is "$(sq "SELECT first_response_at FROM cases WHERE id = ?" "${en_case#HG-}")" 0 \
	"... and does not stop the first-response clock"
t_is "$(grep -ci '^X-Helpgate-' "$(by_id forged-staff-1@client.test)")" 0 \
	"... and its X-Helpgate-Notice is removed (mail to a client, not support)"
mkmsg "$MS_T/staff.eml" "Sam <sam@staff.example.com>" "Re: [$en_case] URGENT: cannot send email" \
    "staff-1@staff.example.com" "Hello Mark, please use port 465 with SSL/TLS meanwhile." "" \
    mark.johnson@client.test
send "$MS_T/staff.eml" --from sam@staff.example.com --to mark.johnson@client.test --local-interface 127.0.0.2
wait_sent 30 || t_fail "staff reply delivered"
f=$(by_id staff-1@staff.example.com)
t_is "$(grep -ci '^X-Helpgate-' "$f")" 0 "staff reply delivered untagged"
t_is "$(case_of staff-1@staff.example.com)" "${en_case#HG-}" "staff reply recorded on its case"
t_like "$(sq "SELECT first_response_at FROM cases WHERE id = ?" "${en_case#HG-}")" '^[1-9][0-9]+$' \
	"staff reply stopped the first-response clock"
# 6b. commands on top of a staff reply: Sendmail takes the replaced body too
mkmsg "$MS_T/staff2.eml" "Sam <sam@staff.example.com>" "Re: [$en_case] URGENT: cannot send email" \
    "staff-2@staff.example.com" "#assign me\n#note tried port 465 with him\n\nMark, it should work now." "" \
    mark.johnson@client.test
send "$MS_T/staff2.eml" --from sam@staff.example.com --to mark.johnson@client.test --local-interface 127.0.0.2
wait_sent 30 || t_fail "staff reply with commands delivered"
f=$(by_id staff-2@staff.example.com)
t_like "$(tr -d '\r' <"$f" | tr '\n' ' ')" "Mark, it should work now" "commands through Sendmail: the reply reaches the client"
grep -q '#assign\|tried port 465' "$f" && t_fail "commands through Sendmail: none left in the client's copy" ||
	t_ok "commands through Sendmail: none left in the client's copy"
wait_for 20 eval '[ "$(sq "SELECT assignee FROM cases WHERE id = ?" "${en_case#HG-}")" = sam@staff.example.com ]' ||
	t_fail "commands through Sendmail: #assign me carried out"
t_is "$(sq "SELECT assignee FROM cases WHERE id = ?" "${en_case#HG-}")" sam@staff.example.com \
	"commands through Sendmail: the case is assigned to the staff member"

# ---- 7. the store locked: delivered at once, degraded, spooled, replayed
ms_hold_sqlite_lock "$db" || t_fail "store locked"
t0=$(date +%s%N)
for i in 1 2; do
	mkmsg "$MS_T/deg$i.eml" "Dee <dee$i@client.test>" "Cannot log in" "deg-$i@client.test" \
	    "Hello, I cannot log in to webmail since this morning ($i)."
	send "$MS_T/deg$i.eml" --from "dee$i@client.test"
done
ms=$((($(date +%s%N) - t0) / 1000000))
echo "# 2 degraded messages through Sendmail took $ms ms"
wait_sent 30 || t_fail "degraded mail delivered"
for i in 1 2; do
	f=$(by_id "deg-$i@client.test")
	t_is "$(hdr "$f" X-Helpgate-Status)" degraded "deg-$i: X-Helpgate-Status: degraded"
	t_like "$(hdr "$f" X-Helpgate-Urgency)" '^P[1-4]$' "deg-$i: still classified"
done
t_is "$([ "$ms" -lt 8000 ] && echo prompt || echo "$ms ms")" prompt "degraded mail not held (under 8 s for two)"
t_is "$(find "$spool" -name '*.msg' | wc -l)" 2 "both spooled"
ms_release_sqlite_lock
replayed() { [ -n "$(case_of deg-1@client.test)" ] && [ -n "$(case_of deg-2@client.test)" ] &&
	[ "$(find "$spool" -name '*.msg' | wc -l)" = 0 ]; }
if wait_for 20 replayed; then
	t_ok "the worker opened the spooled messages' cases after the store came back"
else
	t_fail "spooled messages replayed" "$(tail -n 5 "$worker_log")"
fi
wait_deg_acks() { [ "$(acks_to dee1@client.test)" = 1 ] && [ "$(acks_to dee2@client.test)" = 1 ]; }
wait_for 20 wait_deg_acks && t_ok "replayed cases acknowledged through Sendmail" ||
	t_fail "replayed cases acknowledged" "dee1: $(acks_to dee1@client.test) dee2: $(acks_to dee2@client.test)"

# ---- 8. the filter down
# With F=T (the harness's default) Sendmail refuses for now: proof that
# every message above went through the filter, never around it.
ms_stop_milter "$MS_MILTER_PID"
mkmsg "$MS_T/down1.eml" "Dan <dan@client.test>" "Cannot log in" "down-1@client.test" "Cannot log in since noon."
sm_send --data "$MS_T/down1.eml" --from dan@client.test >/dev/null 2>&1
rc=$?
t_like "$(grep -E '^<[*~]* *[0-9]{3} ' "$MS_T/swaks.last" | tail -n 1)" '^<[*~]* *4[0-9][0-9] ' \
	"F=T: a dead filter makes Sendmail answer 4xx (swaks exit $rc)"

# INSTALL's own line (F= empty): mail flows untagged while helpgate is down.
line=$(grep -m1 "INPUT_MAIL_FILTER(\`helpgate', \`S=unix:" "$repo/INSTALL" | sed 's/^[[:space:]]*//')
t_like "$line" "F=," "INSTALL's Sendmail line found, with F= empty"
sm_stop_sendmail
SM_FILTER_LINE=$(printf '%s' "$line" | sed "s|S=unix:[^,]*|S=unix:$MS_T/hg.sock|")dnl \
	sm_start_sendmail "$MS_MILTER_SOCKET" || t_fail "Sendmail restarts with INSTALL's line"
t_like "$(grep -c "INPUT_MAIL_FILTER\|Xhelpgate" "$SM_DIR/sendmail.cf")" '^[1-9]' "sendmail.cf has the filter"
send "$MS_T/down1.eml" --from dan@client.test
wait_sent 30 || t_fail "mail delivered with the filter down"
f=$(by_id down-1@client.test)
t_is "$([ -n "$f" ] && echo delivered)" delivered "INSTALL's line: with the filter down, mail is delivered"
t_is "$(grep -ci '^X-Helpgate-' "$f" 2>/dev/null)" 0 "... untagged"
ms_start_milter "$bindir/helpgate-milter" -f -c "$conf" || t_fail "milter restarts"
mkmsg "$MS_T/up1.eml" "Uma <uma@client.test>" "Cannot log in" "up-1@client.test" "Cannot log in since noon."
send "$MS_T/up1.eml" --from uma@client.test
wait_sent 30 || t_fail "mail delivered with the filter back"
t_like "$(hdr "$(by_id up-1@client.test)" X-Helpgate-Case)" '^HG-[0-9]+$' "INSTALL's line: the filter back, mail tagged again"

# ---- 9. the support mailbox (issue 14): what came while the filter was
# down still becomes a case.  The sink stands in for the support mailbox:
# its copies go into a Maildir as a local delivery agent would put them
# (with Return-Path), and the worker, reloaded with Mailbox, reads it.
t_is "$(case_of down-1@client.test)" "" "the message that came while the filter was down has no case yet"
md="$MS_T/sm-support"
mkdir -p "$md/tmp" "$md/new" "$md/cur"
deliver() {	# deliver MESSAGE-ID ENVELOPE-FROM: the sink's copy into $md
	local f name
	f=$(by_id "$1") && [ -n "$f" ] || { t_fail "$1 in the sink"; return; }
	name="$(date +%s).$RANDOM.sm"
	{ printf 'Return-Path: <%s>\n' "$2"; cat "$f"; } >"$md/tmp/$name" && mv "$md/tmp/$name" "$md/new/$name"
}
deliver down-1@client.test dan@client.test
deliver up-1@client.test uma@client.test
wlog0=$(wc -l <"$worker_log")
printf 'Mailbox maildir:%s\nMailboxPoll 1s\n' "$md" >>"$conf"
kill -USR1 "$worker_pid"
has_case() { [ -n "$(case_of "$1")" ]; }
wait_for 15 has_case down-1@client.test || true
t_like "$(case_of down-1@client.test)" '^[0-9]+$' "Sendmail, filter down: the message got its case from the mailbox"
t_is "$(sq "SELECT via FROM messages WHERE message_id = 'down-1@client.test'")" mailbox "... recorded as from the mailbox"
t_is "$(tail -n +"$((wlog0 + 1))" "$worker_log" | grep -Ec 'case=HG-[0-9]+ opened from the mailbox \(the milter did not see it\)')" 1 \
	"one 'opened from the mailbox' line: the tagged message was left alone"
t_like "$(tail -n +"$((wlog0 + 1))" "$worker_log" | grep 'opened from the mailbox' | head -n 1)" '^[^ ]+ [^ ]+ [A-Za-z0-9]{8,}: case=' \
	"the line names Sendmail's queue id (from its Received header)"
wait_dan() { [ "$(acks_to dan@client.test)" = 1 ]; }
wait_for 20 wait_dan && t_ok "the case from the mailbox acknowledged through Sendmail" ||
	t_fail "the case from the mailbox acknowledged" "dan: $(acks_to dan@client.test)"
t_is "$(acks_to uma@client.test)" 1 "the tagged message: still one acknowledgement"

t_is "$(kill -0 "$worker_pid" 2>/dev/null && echo alive)" alive "the worker kept running"
ms_stop_pid "$worker_pid"
t_is "$?" 0 "the worker exits cleanly (no sanitizer report)"
ms_stop_milter "$MS_MILTER_PID"
t_is "$?" 0 "the milter exits cleanly (no sanitizer report)"
t_done
