#!/usr/bin/env bash
# test_mailcmd.sh BINDIR - staff work the case from their mail client
# (issue 15, part 1), through a real Postfix with the submission service
# and Dovecot SASL, helpgate-milter and helpgate-worker:
#   - each command by mail (#assign me, #note, #wait, #urgency, #tier,
#     #resolve with and without a cause, #reopen, an unknown one) changes
#     the case as helpgatectl case would, and `case show` says who did it;
#   - the client's copy has no command left (plain text compared byte for
#     byte; multipart/alternative with quoted-printable and HTML parts
#     keeps its structure and charset), and a mail of only commands is not
#     delivered at all;
#   - the staff member gets one short answer per mail, in their thread,
#     Auto-Submitted: auto-replied, and nobody else does;
#   - commands from a stranger on port 25 claiming staff, or from a login
#     that is not staff, do nothing (and the milter log says so).
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bindir=${1:?usage: test_mailcmd.sh BINDIR}
bindir=$(cd "$bindir" && pwd)
. "$here/../lib/mailstack.sh"
. "$here/../lib/testbed.sh"

for p in helpgate-milter helpgate-worker helpgatectl; do
	[ -x "$bindir/$p" ] || { echo "not ok - no $bindir/$p"; echo "0 passed, 1 failed"; exit 1; }
done
ms_init || exit 1
ms_database || exit 1
MS_MILTER_SOCKET="unix:$MS_T/hg.sock"
export MS_DELIVERY=maildir
export MS_MAILDIR_DOMAINS="example.com client.test staff.example.com evil.test"
tb_start_bed "$MS_MILTER_SOCKET" || { t_fail "test bed starts"; t_done; exit 1; }

conf="$MS_T/helpgate.conf"
db=$MS_DATABASE
cat >"$conf" <<CONF
Socket $MS_MILTER_SOCKET
$MS_DATABASE_CONF
SupportAddress support@example.com
StaffDomain staff.example.com
StaffLogin $TB_USER
NoticeAddress staff@staff.example.com
EscalationAddress oncall@staff.example.com
Timezone UTC
Syslog no
KeywordsDir $repo/conf/keywords
TemplatesDir $repo/conf/templates
PollInterval 100ms
DiagnosePerCustomerPerHour 0
DiagnoseResolver 127.0.0.1:9
Relay smtp://127.0.0.1:$MS_SMTP_PORT
CONF
ms_start_milter "$bindir/helpgate-milter" -f -c "$conf" || { t_fail "milter starts"; t_done; exit 1; }
milter_log="$MS_T/milter-$MS_MILTER_N.log"
ms_spawn worker_pid "$bindir/helpgate-worker" -f -c "$conf"
ctl() { "$bindir/helpgatectl" -c "$conf" "$@"; }
sq() { ms_sq "$db" "$@"; }
hdr() { ms_header "$1" "$2"; }
maildir_find() { tb_maildir_find "$@"; }
wait_find() { tb_wait_find "$@"; }
by_id() { wait_find 20 "$1" Message-ID "^<$2>$"; }
# the answer to the staff mail whose Message-ID is $1
answer_to() { wait_find 20 "$TB_USER" In-Reply-To "^<$1>$"; }
body_of() { awk 'f { print } /^\r?$/ && !f { f = 1 }' "$1"; }
smtp25() { ms_send "$@"; }
submit() { tb_submit "$@"; }
# staff MSGID SUBJECT BODY-FILE: alice (a StaffLogin) writes to the client
staff() {
	submit "$TB_USER" "$TB_PASS" --from "$TB_USER" --to ann@client.test \
		--h-From "Alice <$TB_USER>" --h-Subject "$2" --h-Message-Id "<$1>" \
		--body "$3" || t_fail "alice's submission $1 accepted"
}
field() { sq "SELECT $1 FROM cases WHERE id = ?" "$case_n"; }

# ---- a client's case
ms_mkmsg "$MS_T/c1.eml" "Ann <ann@client.test>" "Calendar error" "c1@client.test" \
	"When I open the calendar I get an error 500."
smtp25 --data "$MS_T/c1.eml" --from ann@client.test || t_fail "client mail sent"
f=$(by_id support@example.com c1@client.test) || t_fail "client mail delivered"
case1=$(hdr "$f" X-Helpgate-Case)
case_n=${case1#HG-}
t_like "$case1" '^HG-[0-9]+$' "a client's case: $case1"

# ---- 1. commands on top of a plain reply: the client reads only the reply
{
	printf 'From: Alice <%s>\r\nTo: ann@client.test\r\nSubject: Re: [%s] Calendar error\r\n' "$TB_USER" "$case1"
	printf 'Message-ID: <s1@client.test>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n'
	printf '#assign me\r\n#note called her, she is testing on the phone\r\n\r\n'
	printf 'Hello Ann,\r\n\r\nthe calendar is fixed; please try again.\r\n\r\nAlice\r\n'
} >"$MS_T/m1.eml"
submit "$TB_USER" "$TB_PASS" --from "$TB_USER" --to ann@client.test --data "$MS_T/m1.eml" ||
	t_fail "1: alice's reply accepted"
f=$(by_id ann@client.test s1@client.test) || t_fail "1: the reply reached the client"
# (the test bed's delivery ends every message with a blank line: so does
# the client's own first mail, c1)
printf 'Hello Ann,\n\nthe calendar is fixed; please try again.\n\nAlice\n\n' >"$MS_T/want1.txt"
body_of "$f" | tr -d '\r' >"$MS_T/got1.txt"
if cmp -s "$MS_T/got1.txt" "$MS_T/want1.txt"; then
	t_ok "1: the client's copy is the reply without the command lines, byte for byte"
else
	t_fail "1: the client's copy is the reply without the command lines" "$(diff "$MS_T/want1.txt" "$MS_T/got1.txt")"
fi
a=$(answer_to s1@client.test) || t_fail "1: alice got an answer in her thread"
t_like "$(hdr "$a" Subject)" "\[$case1\]" "1: the answer's subject carries the case"
t_is "$(hdr "$a" Auto-Submitted)" "auto-replied" "1: the answer is Auto-Submitted: auto-replied"
t_like "$(body_of "$a" | tr -d '\r' | tr '\n' ' ')" "#assign me +$case1: assigned to $TB_USER" "1: the answer says the case is assigned to her"
t_like "$(body_of "$a" | tr -d '\r' | tr '\n' ' ')" "note recorded" "1: the answer says the note is recorded"
t_is "$(field assignee)" "$TB_USER" "1: the case is assigned to the login the MTA authenticated"
t_like "$(field first_response_at)" '^[1-9]' "1: the reply itself stopped the first-response clock"
show=$(ctl case show "$case1")
t_like "$show" "Commands by mail:" "1: case show lists commands by mail"
t_like "$show" "$TB_USER \(login $TB_USER\)  done" "1: case show says who sent them and that they are done"
t_like "$show" "called her, she is testing" "1: case show keeps the note"
grep -q 'called her' "$MS_T/mail/ann@client.test/new/"* && t_fail "1: the note reached the client"

# ---- 2. a mail of nothing but commands is delivered to nobody
staff s2@client.test "Re: [$case1] Calendar error" "#wait"
a=$(answer_to s2@client.test) || t_fail "2: alice got an answer"
t_like "$(body_of "$a" | tr -d '\r' | tr '\n' ' ')" "waiting for the client" "2: #wait answered"
t_is "$(field status)" waiting "2: the case waits for the client"
sleep 1
maildir_find ann@client.test Message-ID '^<s2@client.test>$' >/dev/null &&
	t_fail "2: a commands-only mail reached the client" || t_ok "2: a commands-only mail reached nobody"
t_like "$(grep -F 's2@client.test' "$milter_log"; grep -F 'not delivered' "$milter_log")" "not delivered" "2: the milter log says it was not delivered"

# ---- 3. multipart/alternative, quoted-printable text and HTML: both parts lose the commands
cat >"$MS_T/m3.eml" <<EOF
From: Alice <$TB_USER>
To: ann@client.test
Subject: Re: [$case1] Calendar error
Message-ID: <s3@client.test>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="alt-3"

--alt-3
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

#urgency P2
#reopen

Gr=FC=DFe Ann, we are looking at it again.
--alt-3
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: quoted-printable

<html><body><p class=3DMsoNormal><span>#urgency P2</span></p><p>#reopen</p><p>Gr=C3=BC=C3=9Fe Ann, we are looking at it again.</p></body></html>
--alt-3--
EOF
submit "$TB_USER" "$TB_PASS" --from "$TB_USER" --to ann@client.test --data "$MS_T/m3.eml" ||
	t_fail "3: alice's HTML reply accepted"
f=$(by_id ann@client.test s3@client.test) || t_fail "3: the HTML reply reached the client"
t_like "$(hdr "$f" Content-Type)" 'multipart/alternative; boundary="alt-3"' "3: the MIME structure is kept"
t_is "$(grep -c 'charset=iso-8859-1' "$f")" 1 "3: the text part keeps its charset"
grep -q 'urgency P2\|#reopen' "$f" && t_fail "3: a command is left in the client's copy" ||
	t_ok "3: no command left in either part"
t_like "$(tr -d '\r' <"$f" | tr '\n' ' ')" 'Gr=FC=DFe Ann, we are looking' "3: the text part stays quoted-printable latin-1"
parts=$(python3 -c '
import email, sys
m = email.message_from_binary_file(open(sys.argv[1], "rb"))
for p in m.walk():
    if p.get_content_maintype() == "text":
        print(p.get_content_type(), p.get_payload(decode=True).decode(p.get_content_charset()).strip())
' "$f")
t_like "$parts" 'text/plain Grüße Ann, we are looking at it again\.' "3: the text part reads as the reply alone"
t_like "$parts" 'text/html <html><body><p class=MsoNormal><span></span></p><p></p><p>Grüße Ann, we are looking at it again\.</p></body></html>' \
	"3: the HTML part keeps its markup, loses the command text"
a=$(answer_to s3@client.test) || t_fail "3: alice got an answer"
t_is "$(field urgency)" 2 "3: #urgency P2 set the case's urgency"
t_is "$(field status)" open "3: #reopen: the case is open again"

# ---- 4. exact errors: an unknown command, resolve without a cause
staff s4@client.test "Re: [$case1] Calendar error" "$(printf '#close\n#resolve\n#tier platinum\n\nStill on it.')"
a=$(answer_to s4@client.test) || t_fail "4: alice got an answer"
ab=$(body_of "$a" | tr -d '\r' | tr '\n' ' ')
t_like "$ab" "unknown command #close" "4: an unknown command is named"
t_like "$ab" "resolve without a cause" "4: resolve without a cause is refused"
t_like "$ab" "unknown tier \"platinum\"" "4: an unknown tier is refused"
t_is "$(field status)" open "4: nothing was resolved"

# ---- 5. resolve with cause and lesson: resolved, recorded, the client asked to confirm
staff s5@client.test "Re: [$case1] Calendar error" "$(printf '#tier premium\n#resolve incident cause: a stale calendar index; lesson: rebuild indexes after restores\n\nAnn, it works again.')"
a=$(answer_to s5@client.test) || t_fail "5: alice got an answer"
t_like "$(body_of "$a" | tr -d '\r' | tr '\n' ' ')" "resolved; the client is asked to confirm" "5: #resolve answered"
t_is "$(field status)" resolved "5: the case is resolved"
t_is "$(field cause)" "a stale calendar index" "5: the cause is recorded"
t_is "$(field lesson)" "rebuild indexes after restores" "5: the lesson is recorded"
t_is "$(sq "SELECT tier FROM customers WHERE address = ?" ann@client.test)" premium "5: #tier premium recorded for the client"
wait_find 20 ann@client.test Subject "\[$case1\]" >/dev/null || t_fail "5: the close-the-loop letter reached the client"
t_is "$(sq "SELECT count(*) FROM outbox WHERE case_id = ? AND kind = 'close'" "$case_n")" 1 "5: one close-the-loop letter"

# ---- 6. commands to the support address: recorded, and only-commands goes nowhere
submit "$TB_USER" "$TB_PASS" --from "$TB_USER" --to support@example.com \
	--h-From "Alice <$TB_USER>" --h-Subject "[$case1] internal" --h-Message-Id "<s6@client.test>" \
	--body "#reopen" || t_fail "6: alice's mail to support accepted"
a=$(answer_to s6@client.test) || t_fail "6: alice got an answer"
t_is "$(field status)" open "6: #reopen by mail to the support address"
maildir_find support@example.com Message-ID '^<s6@client.test>$' >/dev/null &&
	t_fail "6: the commands-only mail reached the support mailbox" || t_ok "6: the commands-only mail to support reached nobody"

# ---- 7. no case named: the answer says so
staff s7@client.test "Hello" "#wait"
a=$(answer_to s7@client.test) || t_fail "7: alice got an answer"
t_like "$(body_of "$a" | tr -d '\r' | tr '\n' ' ')" "case not found" "7: a mail that names no case is answered so"

# ---- 8. forged: a stranger on port 25 claiming staff, a login that is not staff
ms_mkmsg "$MS_T/f8.eml" "Alice <$TB_USER>" "Re: [$case1] Calendar error" "f8@evil.test" \
	"#resolve cause: forged; lesson: forged\n#assign eve@evil.test"
smtp25 --data "$MS_T/f8.eml" --from "$TB_USER" || t_fail "8: the stranger's mail sent"
f=$(by_id support@example.com f8@evil.test) || t_fail "8: the stranger's mail delivered to support"
t_like "$(tr -d '\r' <"$f")" "#resolve cause: forged" "8: a stranger's #lines stay in their text"
t_is "$(field status)" open "8: a stranger's #resolve did nothing"
t_is "$(field assignee)" "$TB_USER" "8: a stranger's #assign did nothing"
t_like "$(grep -F 'f8@evil.test' "$milter_log"; grep 'ignored: not authenticated as staff' "$milter_log")" \
	"ignored: not authenticated as staff" "8: the milter log says a stranger's commands were ignored"
submit "$TB_USER2" "$TB_PASS2" --from "$TB_USER2" --to ann@client.test \
	--h-From "Bob <$TB_USER2>" --h-Subject "Re: [$case1] Calendar error" --h-Message-Id "<f9@client.test>" \
	--body "$(printf '#assign me\n\nhi')" || t_fail "8: bob's submission accepted"
f=$(by_id ann@client.test f9@client.test) || t_fail "8: bob's mail delivered"
t_like "$(tr -d '\r' <"$f")" "#assign me" "8: a login that is not staff: the mail goes unchanged"
t_is "$(field assignee)" "$TB_USER" "8: a login that is not staff commands nothing"
t_is "$(sq "SELECT count(*) FROM mail_commands WHERE message_id IN ('f8@evil.test', 'f9@client.test')")" 0 \
	"8: no command recorded for either"

# ---- the answers went to alice and nobody else
sleep 1
t_is "$(sq "SELECT count(*) FROM outbox WHERE kind = 'command-answer' AND recipient <> ?" "$TB_USER")" 0 \
	"every answer went to the staff member who wrote"
t_is "$(sq "SELECT count(*) FROM outbox WHERE kind = 'command-answer'")" 7 "one answer per staff mail with commands"
t_is "$(sq "SELECT count(*) FROM mail_commands WHERE done = 0")" 0 "every command mail carried out"
t_done
