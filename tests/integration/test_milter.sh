#!/usr/bin/env bash
# test_milter.sh BINDIR - helpgate-milter through a real private Postfix:
# support mail in many languages, charsets and shapes is tagged, threaded
# and recorded; everything else passes untouched; forged headers go; a
# broken store degrades instead of losing mail.  Every message sent must
# arrive.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/../lib/mailstack.sh"

bindir=${1:-bin}
for p in helpgate-milter helpgatectl; do
	[ -x "$bindir/$p" ] || { echo "no $bindir/$p"; echo "0 passed, 1 failed"; exit 1; }
done
data="$repo/tests/data"

ms_init || exit 1
conf="$MS_T/helpgate.conf"
write_conf() {	# write_conf FILE DATABASE
	cat >"$1" <<CONF
Socket unix:$MS_T/hg.sock
Database $2
DiagnoseResolver 127.0.0.1:9
SupportAddress support@example.com
SupportAddress help@example.com
StaffDomain staff.example.com
StaffNetwork 127.0.0.2/32
Timezone Europe/Kyiv
Syslog no
KeywordsDir $repo/conf/keywords
TemplatesDir $repo/conf/templates
StoreTimeout 500ms
CONF
}
write_conf "$conf" "$MS_T/hg.db"
ctl() { "$bindir/helpgatectl" -c "$conf" "$@"; }

ctl customer add trial@newco.test --tier trial >/dev/null || t_fail "customer add trial"
ctl customer add @bigcorp.test --tier enterprise >/dev/null || t_fail "customer add domain"
ctl customer add boss@bigcorp.test --tier premium >/dev/null || t_fail "customer add address"
ctl customer add watched@client.test --tier standard --incident-watch 21 >/dev/null || t_fail "customer add watch"

ms_start_sink || exit 1
MS_MILTER_SOCKET="unix:$MS_T/hg.sock"
ms_start_milter "$bindir/helpgate-milter" -f -c "$conf" -p "$MS_MILTER_SOCKET" || exit 1

# A second milter whose store cannot open: mail must still flow, degraded.
conf_broken="$MS_T/broken.conf"
write_conf "$conf_broken" "/nonexistent-dir/hg.db"
MS_MILTER_SOCKET="unix:$MS_T/broken.sock"
ms_start_milter "$bindir/helpgate-milter" -f -c "$conf_broken" -p "$MS_MILTER_SOCKET" || exit 1
ms_add_smtpd broken_port "unix:$MS_T/broken.sock"
ms_start_postfix "unix:$MS_T/hg.sock" || exit 1

sent=0
send() {	# send FILE [swaks args]
	local f=$1; shift
	if ms_send --data "$f" "$@"; then sent=$((sent + 1)); else t_fail "swaks accepted $(basename "$f")"; fi
}
mkmsg() { ms_mkmsg "$@"; }
by_id() { ms_find_by_header Message-ID "<$1>"; }
hdr() { ms_header "$1" "$2"; }

# ---- 1. the sample corpus, as real clients send it
for f in en-outgoing-urgent ru-koi8-qp ru-cp1251-b64 uk-utf8-b64 uk-utf8-qp html-only \
    howto de-outgoing fr-outgoing broken-mime attachment-pdf reply-quoted thanks auto-reply list; do
	send "$data/$f.eml"
done
send "$data/bounce.eml" --from '<>'

# ---- 2. shapes: forged headers, priority header, tiers, big attachment, non-support
mkmsg "$MS_T/forged.eml" "Eve <eve@client.test>" "Question about invoices" "forged-1@client.test" \
    "How do I download last month's invoice?" \
    "X-Helpgate-Urgency: P1\nX-Helpgate-Case: HG-999\nx-helpgate-tier: enterprise\nX-Helpgate-Status: ok"
send "$MS_T/forged.eml"
pad=$(for i in $(seq 1 70); do printf 'X-Helpgate-Pad%d: x\\n' "$i"; done)
mkmsg "$MS_T/forged2.eml" "Eve <eve@client.test>" "Another question" "forged-2@client.test" \
    "How do I download an invoice?" "${pad}X-Helpgate-Case: HG-1\nX-Helpgate-Urgency: P1\nX-Helpgate-Urgency: P1"
send "$MS_T/forged2.eml"
mkmsg "$MS_T/prio.eml" "Pat <pat@client.test>" "Error on the settings page" "prio-1@client.test" \
    "When I open the settings page I get an error 500. Everything else works." "X-Priority: 1 (Highest)"
send "$MS_T/prio.eml"
mkmsg "$MS_T/trial.eml" "New Co <trial@newco.test>" "Autoresponder" "trial-1@newco.test" \
    "Hello, how do I set up an autoresponder for my mailbox?"
send "$MS_T/trial.eml"
mkmsg "$MS_T/ent.eml" "Dev <dev@bigcorp.test>" "Aliases" "ent-1@bigcorp.test" "How do I add an alias?"
send "$MS_T/ent.eml"
mkmsg "$MS_T/boss.eml" "Boss <boss@bigcorp.test>" "Aliases too" "boss-1@bigcorp.test" "How do I add an alias?"
send "$MS_T/boss.eml"
mkmsg "$MS_T/watch.eml" "W <watched@client.test>" "Spam folder" "watch-1@client.test" \
    "Some messages land in the spam folder, is there a setting for that?"
send "$MS_T/watch.eml"
mkmsg "$MS_T/sales.eml" "Client <client@client.test>" "URGENT cannot send mail!!!" "sales-1@client.test" \
    "This goes to sales, not support." "X-Helpgate-Urgency: P1"
send "$MS_T/sales.eml" --to sales@example.com
mkmsg "$MS_T/plus.eml" "Plus <plus@client.test>" "Billing question" "plus-1@client.test" \
    "Can you send me a copy of the invoice?"
send "$MS_T/plus.eml" --to support+billing@example.com

big="$MS_T/big.eml"
{
	printf 'From: Big <big@client.test>\nTo: support@example.com\nSubject: cannot send email, log attached\n'
	printf 'Message-ID: <big-1@client.test>\nMIME-Version: 1.0\n'
	printf 'Content-Type: multipart/mixed; boundary="b1"\n\n--b1\nContent-Type: text/plain; charset=utf-8\n\n'
	printf 'Outgoing mail fails since this morning, the full log is attached. Urgent please!\n\n'
	printf -- '--b1\nContent-Type: application/octet-stream; name="log.bin"\n'
	printf 'Content-Disposition: attachment; filename="log.bin"\nContent-Transfer-Encoding: base64\n\n'
	head -c 6000000 /dev/urandom | base64 -w 76
	printf -- '--b1--\n'
} >"$big"
send "$big"

# ---- 3. the degraded path, through the second smtpd
mkmsg "$MS_T/degraded.eml" "Dee <dee@client.test>" "We cannot send any email, urgent!" "degraded-1@client.test" \
    "Outgoing mail is down for the whole office. Urgent!"
send "$MS_T/degraded.eml" --server "127.0.0.1:$broken_port"

ms_wait_delivered "$sent" 60 && t_ok "all $sent messages delivered, queue empty" ||
	t_fail "all $sent messages delivered" "$(ms_count_delivered) arrived"

# ---- assertions on the corpus
check() {	# check MESSAGE-ID URGENCY CATEGORY DESC
	local f; f=$(by_id "$1")
	if [ -z "$f" ]; then t_fail "$4: delivered"; return; fi
	t_is "$(hdr "$f" X-Helpgate-Urgency)" "$2" "$4: urgency"
	[ -n "$3" ] && t_is "$(hdr "$f" X-Helpgate-Category)" "$3" "$4: category"
	t_like "$(hdr "$f" X-Helpgate-Case)" '^HG-[0-9]+$' "$4: case number"
	t_like "$(hdr "$f" X-Helpgate-SLA-Due)" '^[A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} 20[0-9]{2} [0-9:]{8} [+-][0-9]{4}$' "$4: SLA due date"
	t_is "$(ms_header_count "$f" X-Helpgate-Urgency)" 1 "$4: tagged once"
}
check 20250303091241.5521@mail.client.test P1 outgoing-mail "en urgent outgoing"
check a7c1e0f2.4411@client.test P1 outgoing-mail "ru koi8-r QP srochno"
check 0f3b2d9e81c4\$1a2b3c40\$@client.test P2 incoming-mail "ru cp1251 base64 incoming"
check CAF9x2kq7Hh1@mail.client.test P1 outgoing-mail "uk utf-8 base64 terminovo"
check 5e8a.77c3@client.test P4 "" "uk howto, ne terminovo"
check BN8PR12MB3345.2025@client.test P2 incoming-mail "html-only incoming"
t_is "$(hdr "$(by_id BN8PR12MB3345.2025@client.test)" Importance)" high "P2 gets Importance: high"
check 20250307140233.GA1234@client.test P4 "" "en howto"
check 9c2f4e1a-de01@client.test P1 outgoing-mail "de dringend"
check fr.20250310090500@client.test P1 outgoing-mail "fr urgent iso-8859-1"

f=$(by_id 20250303091241.5521@mail.client.test)
t_is "$(hdr "$f" Importance)" high "P1 gets Importance: high"
t_like "$(hdr "$f" X-Helpgate-Reasons)" "state broken" "reasons name the evidence"
t_is "$(hdr "$f" X-Helpgate-Tier)" unknown "sender not on file: tier unknown"
en_case=$(hdr "$f" X-Helpgate-Case)
f=$(by_id a7c1e0f2.4411@client.test)
reasons=$(hdr "$f" X-Helpgate-Reasons)
t_like "$reasons" '^=\?UTF-8\?B\?' "Cyrillic reasons are RFC 2047 encoded"
f=$(by_id 5e8a.77c3@client.test)
t_is "$(hdr "$f" Importance)" "" "P4 gets no Importance header"

f=$(by_id broken.1741262400@client.test)
t_like "$(hdr "$f" X-Helpgate-Urgency)" '^P[1-4]$' "broken MIME still tagged"
f=$(by_id 20250311131000.3301@mail.client.test)
t_like "$(hdr "$f" X-Helpgate-Case)" '^HG-' "mail with a PDF attachment tagged"

f=$(by_id 20250303110500.8812@mail.client.test)
t_is "$(hdr "$f" X-Helpgate-Case)" "$(hdr "$(by_id 20250303110500.8812@mail.client.test)" X-Helpgate-Case)" "reply-quoted has a case"
t_like "$(hdr "$f" X-Helpgate-Urgency)" '^P[2-4]$' "urgency only in quoted text is not P1"

f=$(by_id autoreply.20250303092000@mail.client.test)
t_is "$(hdr "$f" X-Helpgate-Auto)" auto-submitted "out-of-office marked auto"
t_is "$(hdr "$f" Importance)" "" "auto-reply gets no Importance"
f=$(by_id newsletter-2025-03@lists.client.test)
t_like "$(hdr "$f" X-Helpgate-Auto)" '^(list|precedence-(bulk|list))$' "list mail marked auto"
t_is "$(hdr "$f" X-Helpgate-Case)" "" "unthreaded list mail opens no case"
f=$(by_id 20250303100005.4B2C1@mx.client.test)
t_like "$(hdr "$f" X-Helpgate-Auto)" '.' "bounce marked auto"
t_is "$(hdr "$f" X-Helpgate-Case)" "" "bounce opens no case"
t_is "$(hdr "$f" X-Helpgate-SLA-Due)" "" "bounce has no deadline"

f=$(by_id forged-1@client.test)
t_is "$(ms_header_count "$f" X-Helpgate-Urgency)" 1 "forged urgency replaced, not added to"
t_is "$(hdr "$f" X-Helpgate-Urgency)" P4 "forged P1 did not survive"
t_like "$(hdr "$f" X-Helpgate-Case)" '^HG-[0-9]+$' "forged case replaced"
t_is "$(ms_header_count "$f" X-Helpgate-Case)" 1 "one case header"
[ "$(hdr "$f" X-Helpgate-Case)" != HG-999 ] && t_ok "forged HG-999 gone" || t_fail "forged HG-999 gone"
t_is "$(hdr "$f" X-Helpgate-Tier)" unknown "forged lowercase tier gone"
t_is "$(hdr "$f" X-Helpgate-Status)" "" "forged status gone"

f=$(by_id forged-2@client.test)
t_is "$(grep -ci '^X-Helpgate-Pad' "$f")" 0 "70 forged padding headers all removed"
t_is "$(ms_header_count "$f" X-Helpgate-Urgency)" 1 "forged urgency after 70 others still replaced"
t_is "$(hdr "$f" X-Helpgate-Urgency)" P4 "and the value is ours"
f=$(by_id prio-1@client.test)
# The learned part has seen the sender's flag: in the labelled mail the
# text decides, so a flag on an ordinary defect raises nothing (the rules
# alone would raise it: test_classify's rules-only checks).
t_is "$(hdr "$f" X-Helpgate-Urgency)" P3 "X-Priority 1 on an ordinary defect: the text decides (P3)"
t_is "$(hdr "$f" Importance)" "" "P3 gets no Importance: high"
f=$(by_id trial-1@newco.test)
t_is "$(hdr "$f" X-Helpgate-Tier)" trial "trial customer"
t_is "$(hdr "$f" X-Helpgate-Urgency)" P3 "trial raises a how-to from P4 to P3"
t_is "$(hdr "$(by_id ent-1@bigcorp.test)" X-Helpgate-Tier)" enterprise "domain match"
t_is "$(hdr "$(by_id boss-1@bigcorp.test)" X-Helpgate-Tier)" premium "address match wins over domain"
f=$(by_id watch-1@client.test)
t_is "$(hdr "$f" X-Helpgate-Tier)" "standard+watch" "incident watch shown"
t_like "$(hdr "$f" X-Helpgate-Urgency)" '^P[1-3]$' "incident watch raises"
f=$(by_id plus-1@client.test)
t_like "$(hdr "$f" X-Helpgate-Case)" '^HG-' "support+detail@ is support mail"

f=$(by_id sales-1@client.test)
t_is "$(ms_header_count "$f" X-Helpgate-Case)" 0 "non-support mail not tagged"
t_is "$(ms_header_count "$f" X-Helpgate-Urgency)" 0 "non-support mail: the X-Helpgate-Urgency a sender wrote is removed too"
t_is "$(sed '1,/^$/d' "$f" | tr -d '\r' | head -n 1)" "This goes to sales, not support." "non-support mail: body untouched"

f=$(by_id big-1@client.test)
t_is "$(hdr "$f" X-Helpgate-Category)" outgoing-mail "6 MB attachment: text still classified"
size=$(stat -c %s "$f")
[ "$size" -gt 8000000 ] && t_ok "6 MB attachment delivered whole ($size bytes)" || t_fail "attachment delivered whole" "$size bytes"

f=$(by_id degraded-1@client.test)
t_is "$(hdr "$f" X-Helpgate-Status)" degraded "broken store: degraded"
t_is "$(hdr "$f" X-Helpgate-Urgency)" P1 "degraded mail still classified"
t_is "$(hdr "$f" X-Helpgate-Case)" "" "degraded mail has no case"

# ---- 4. threading and the 24-hour raise
ms_clear_delivered
sent=0
mkmsg "$MS_T/t1.eml" "Ann <ann@client.test>" "Error when opening the calendar" "thread-1@client.test" \
    "I get an error when I open the calendar in webmail."
send "$MS_T/t1.eml"
ms_wait_delivered 1 30 || t_fail "thread 1 delivered"
case1=$(hdr "$(by_id thread-1@client.test)" X-Helpgate-Case)
t_is "$(hdr "$(by_id thread-1@client.test)" X-Helpgate-Urgency)" P3 "ordinary defect is P3"
mkmsg "$MS_T/t2.eml" "Ann <ann@client.test>" "Re: [$case1] Error when opening the calendar" "thread-2@client.test" \
    "Any news? The calendar still shows the error."
send "$MS_T/t2.eml"
mkmsg "$MS_T/t3.eml" "Ann <ann@client.test>" "Re: calendar" "thread-3@client.test" \
    "Still broken, the calendar error again." "In-Reply-To: <thread-1@client.test>\nReferences: <thread-1@client.test>"
send "$MS_T/t3.eml"
send "$MS_T/t1.eml"	# the same message again
ms_wait_delivered 4 30 || t_fail "follow-ups delivered"
t_is "$(hdr "$(by_id thread-2@client.test)" X-Helpgate-Case)" "$case1" "[HG-n] in the subject threads"
t_is "$(hdr "$(by_id thread-3@client.test)" X-Helpgate-Case)" "$case1" "In-Reply-To threads"
t_is "$(hdr "$(by_id thread-2@client.test)" X-Helpgate-Urgency)" P3 "second message: no raise"
t_is "$(hdr "$(by_id thread-3@client.test)" X-Helpgate-Urgency)" P2 "third message in 24 h raises"
dups=$(ms_list_delivered | while read -r f; do [ "$(hdr "$f" Message-ID)" = "<thread-1@client.test>" ] && hdr "$f" X-Helpgate-Case; done | sort -u)
t_is "$dups" "$case1" "same Message-ID twice: same case"

json=$(ctl case show "$case1" --json)
t_is "$(printf '%s' "$json" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["messages"]))')" 3 \
    "case show: 3 messages recorded (the duplicate is not)"
t_is "$(printf '%s' "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["urgency"])')" 2 \
    "case urgency raised to the follow-up's"
ncases=$(ctl cases --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
t_like "$ncases" '^[0-9]+$' "cases --json parses ($ncases cases)"
en_json=$(ctl case show "$en_case" --json)
t_like "$(printf '%s' "$en_json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["category"])')" outgoing-mail "case show: category recorded"

# ---- 5. a staff reply to the client stops the first-response clock, but
# only when the MTA vouches for the sender (here StaffNetwork: the staff
# relay 127.0.0.2); a staff From and MAIL FROM alone do not
mkmsg "$MS_T/forged-staff.eml" "Boss <boss@staff.example.com>" "Re: [$case1] done" \
    "forged-staff-1@client.test" "Closing this." "" ann@client.test
send "$MS_T/forged-staff.eml" --from boss@staff.example.com --to ann@client.test
ms_wait_delivered 5 30 || t_fail "forged staff reply delivered"
json=$(ctl case show "$case1" --json)
t_is "$(printf '%s' "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["first_response_at"])')" \
    None "a forged staff reply (staff From and MAIL FROM, not authenticated) does not stop the clock"
t_is "$(printf '%s' "$json" | python3 -c 'import json,sys; print(sum(m["message_id"] == "forged-staff-1@client.test" for m in json.load(sys.stdin)["messages"]))')" \
    0 "... and is not recorded on the case"
t_like "$(cat "$MS_T"/milter-1.log)" 'from=<boss@staff.example.com> claims staff without authentication' \
    "... the milter logs the claim"
mkmsg "$MS_T/staff.eml" "Sam <sam@staff.example.com>" "Re: [$case1] Error when opening the calendar" \
    "staff-reply-1@staff.example.com" "Hello Ann, we fixed the calendar." "" ann@client.test
send "$MS_T/staff.eml" --from sam@staff.example.com --to ann@client.test --local-interface 127.0.0.2
ms_wait_delivered 5 30 || t_fail "staff reply delivered"
f=$(by_id staff-reply-1@staff.example.com)
t_is "$(grep -ci '^X-Helpgate-' "$f")" 0 "staff reply to a client carries no X-Helpgate header"
json=$(ctl case show "$case1" --json)
t_like "$(printf '%s' "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["first_response_at"])')" \
    '^20[0-9]{2}-' "staff reply recorded as the first response"
t_is "$(printf '%s' "$json" | python3 -c 'import json,sys; print([m["direction"] for m in json.load(sys.stdin)["messages"]][-1])')" \
    staff "staff reply recorded on the case"

# ---- 6. the milter's own log line per message
log=$(cat "$MS_T"/*.log 2>/dev/null)
t_like "$log" "case=$case1 urgency=P3" "one log line per message with case and urgency"
t_like "$log" "elapsed_us=[0-9]+" "log line has elapsed microseconds"

t_done
