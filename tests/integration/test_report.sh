#!/usr/bin/env bash
# test_report.sh BINDIR - the weekly report (issue 15, part 3) through a
# real Postfix: four weeks of cases are made the way they happen, with the
# milter and helpgatectl run under faketime at each week (clients' mail,
# staff answers on time and late, a resolution with cause and lesson, an
# incident); the worker, started with "Report ... at=" today a minute ago,
# mails the report once:
#   - multipart/alternative, the HTML in multipart/related with three PNG
#     charts (Content-ID, referenced as cid: by the HTML, valid PNG);
#   - the plain text has the numbers: nine weeks, per tier and urgency,
#     categories, the slowest, incidents and lessons; lines of at most 78;
#   - the HTML, with its inline images resolved, loaded into headless
#     Chromium: tables present, every chart drawn with a non-zero size; a
#     screenshot is kept ($MS_T/report.png, and $REPORT_SHOT when set);
#   - the figures agree with helpgatectl report for the same week.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bindir=${1:?usage: test_report.sh BINDIR}
bindir=$(cd "$bindir" && pwd)
. "$here/../lib/mailstack.sh"

for p in helpgate-milter helpgate-worker helpgatectl; do
	[ -x "$bindir/$p" ] || { echo "not ok - no $bindir/$p"; echo "0 passed, 1 failed"; exit 1; }
done
chromium=$(command -v chromium || command -v chromium-browser) ||
	{ echo "not ok - no chromium (apt-get install chromium)"; echo "0 passed, 1 failed"; exit 1; }
command -v faketime >/dev/null || { echo "not ok - no faketime"; echo "0 passed, 1 failed"; exit 1; }
t_check() { if [ "$1" "$2" "$3" ]; then t_ok "$4"; else t_fail "$4" "got $1, wanted $2 $3"; fi; }

ms_init || exit 1
ms_database || exit 1
export MS_DELIVERY=maildir
export MS_MAILDIR_DOMAINS="example.com client.test staff.example.com"
conf="$MS_T/helpgate.conf"
db=$MS_DATABASE
today=$(date -u +%a | tr 'A-Z' 'a-z')
at=$(date -u -d '-1 min' +%H:%M)
[ "$(date -u -d '-1 min' +%a)" = "$(date -u +%a)" ] || { sleep 61; today=$(date -u +%a | tr 'A-Z' 'a-z'); at=$(date -u -d '-1 min' +%H:%M); }
cat >"$conf" <<CONF
Socket unix:$MS_T/hg.sock
$MS_DATABASE_CONF
SupportAddress support@example.com
StaffDomain staff.example.com
Timezone UTC
Syslog no
KeywordsDir $repo/conf/keywords
TemplatesDir $repo/conf/templates
PollInterval 100ms
DiagnosePerCustomerPerHour 0
DiagnoseResolver 127.0.0.1:9
BusinessHours mon-sun 00:00-24:00
SLA unknown P1 first=30m resolve=4h
SLA unknown P2 first=2h resolve=1d
SLA unknown P3 first=4h resolve=2d
SLA unknown P4 first=1d resolve=5d
CONF
ms_start_sink || exit 1
MS_MILTER_SOCKET="unix:$MS_T/hg.sock"
ms_start_postfix "unix:$MS_T/hg.sock" || { t_fail "postfix starts"; t_done; exit 1; }
# libfaketime is preloaded ahead of an ASan build's runtime: tell ASan so
# (exec: the milter's recorded PID is then the milter's own)
faked() { ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" exec faketime "$@"; }
ctl_at() { local off=$1; shift; (faked -f "$off" "$bindir/helpgatectl" -c "$conf" "$@"); }
sq() { ms_sq "$db" "$@"; }
hdr() { ms_header "$1" "$2"; }

n=0
week() {	# week OFFSET: the milter runs OFFSET ago while clients write
	ms_start_milter faked -f "$1" "$bindir/helpgate-milter" -f -c "$conf" -p "$MS_MILTER_SOCKET" ||
		t_fail "milter starts at $1"
}
client() {	# client FROM SUBJECT TEXT: sets c to the new case's number
	n=$((n + 1))
	ms_mkmsg "$MS_T/c$n.eml" "Client <$1>" "$2" "c$n@client.test" "$3"
	ms_send --data "$MS_T/c$n.eml" --from "$1" || t_fail "client mail $n sent"
	ms_wait_delivered "$n" 20 >/dev/null || t_fail "client mail $n delivered"
	c=$(sq "SELECT id FROM cases ORDER BY id DESC LIMIT 1")
}
unanswered=""
# four weeks ago ... this week; answers come from helpgatectl at the time they happen
week -25d
client ann@client.test "Cannot send" "Since this morning I cannot send any email at all."
ctl_at -25d case reply "HG-$c" --by sam@staff.example.com >/dev/null
client bob@client.test "Signature" "How do I add a logo to my signature? Thanks."
ctl_at -24d case reply "HG-$c" --by sam@staff.example.com >/dev/null
ms_stop_milter
week -17d
client cid@client.test "No mail arrives" "We have not received any email since yesterday, nothing comes in."
ctl_at -17d case reply "HG-$c" --by ann@staff.example.com >/dev/null
client dan@client.test "Invoice question" "Could you send me the invoice for November again?"
ms_stop_milter
week -4d
client eve@client.test "URGENT: nobody can send, we are losing orders" \
	"Since 9 am none of our 30 users can send any email. We are losing orders, please help ASAP!!!"
p1=$c
ctl_at -4d case reply "HG-$c" --by sam@staff.example.com >/dev/null
out=$(ctl_at -3d case resolve "HG-$c" --incident --no-message --cause "the relay's certificate expired" \
	--lesson "monitor certificate expiry on the relays" 2>&1) || t_fail "the incident resolved" "$out"
client fay@client.test "Login fails" "I cannot log in to webmail since this morning."
ctl_at -2d case reply "HG-$c" --by ann@staff.example.com >/dev/null	# late: 2 days for 2 h
slow=$c
client gus@client.test "Dark mode?" "Is there a dark mode for webmail?"
unanswered=$c
client hal@client.test "Calendar one hour late" "Invitations show up one hour later than they should."
ctl_at -1d case reply "HG-$c" --by sam@staff.example.com >/dev/null
ms_stop_milter
t_is "$(sq "SELECT count(*) FROM cases")" "$n" "$n cases over four weeks"

echo "Relay smtp://127.0.0.1:$MS_SMTP_PORT" >>"$conf"
echo "Report lead@staff.example.com at=$today $at" >>"$conf"
ms_spawn worker_pid "$bindir/helpgate-worker" -f -c "$conf"
f=""
for ((i = 0; i < 100; i++)); do
	f=$(grep -l '^X-Helpgate-Notice: report' "$MS_T/mail/lead@staff.example.com/new/"* 2>/dev/null | head -1) && [ -n "$f" ] && break
	sleep 0.2
done
[ -n "$f" ] && t_ok "the report reached lead@staff.example.com" || { t_fail "the report reached lead@staff.example.com"; t_done; exit 1; }
t_like "$(hdr "$f" Subject)" '^\[helpgate\] The week to .*: 4 cases$' "the subject counts the week's cases"
t_like "$(hdr "$f" Content-Type)" '^multipart/alternative' "multipart/alternative"

python3 - "$f" "$MS_T" <<'PY' >"$MS_T/parts.txt" || t_fail "the report's parts decode"
import email, sys, struct
m = email.message_from_binary_file(open(sys.argv[1], "rb"))
out = sys.argv[2]
html = None
for p in m.walk():
    ct = p.get_content_type()
    if ct == "text/plain":
        open(out + "/report.txt", "w").write(p.get_payload(decode=True).decode("utf-8"))
        print("text/plain")
    elif ct == "text/html":
        html = p.get_payload(decode=True).decode("utf-8")
        print("text/html", p.get_content_charset())
    elif ct == "multipart/related":
        print("multipart/related")
    elif ct == "image/png":
        cid = p["Content-ID"].strip("<>")
        data = p.get_payload(decode=True)
        ok = data[:8] == b"\x89PNG\r\n\x1a\n"
        w, h = struct.unpack(">II", data[16:24]) if ok else (0, 0)
        name = "img-%s.png" % p.get_filename()
        open(out + "/" + name, "wb").write(data)
        print("image/png", "valid" if ok else "broken", w, h, "referenced" if html and ("cid:" + cid) in html else "unreferenced")
        html = html.replace("cid:" + cid, name) if html else html
if html:
    # the test's copy only: a script that writes each image's drawn size
    # into the DOM, for --dump-dom (the letter itself has no script)
    probe = "<script>window.addEventListener('load',()=>{for(const i of document.images){i.setAttribute('data-natural',i.naturalWidth+'x'+i.naturalHeight)}})</script>"
    open(out + "/report.html", "w").write(html.replace("</body>", probe + "</body>"))
PY
t_like "$(tr '\n' ' ' <"$MS_T/parts.txt")" '^text/plain multipart/related text/html utf-8 ' "text, then the HTML in multipart/related"
t_is "$(grep -c '^image/png valid [1-9][0-9]* [1-9][0-9]* referenced$' "$MS_T/parts.txt")" 3 "three valid PNG charts, each referenced by the HTML (cid:)"

txt="$MS_T/report.txt"
t_is "$(awk 'length($0) > 78' "$txt" | wc -l)" 0 "no plain-text line longer than 78 characters"
# the week: the P1 answered in time; the P2 two days late, the P3 a day
# late, the P4 question not answered past its day: 1 of 4 met
t_like "$(tr '\n' ' ' <"$txt")" "4 cases opened; first response met 25%" "text: the week's cases and first response met (1 of 4)"
t_is "$(grep -cE '^  [0-9]{2} [A-Z][a-z]{2} +[0-9]+ ' "$txt")" 9 "text: nine weeks of numbers"
t_like "$(tr '\n' ' ' <"$txt")" "HG-$p1 \(incident\) +cause: +the relay's certificate expired +lesson: monitor certificate expiry" \
	"text: the incident with its cause and lesson"
t_like "$(grep -m1 -A1 'slowest' "$txt" | tail -1)" "^  HG-$unanswered .* \* Dark mode" "text: the slowest first: the question nobody answered (marked *)"
t_like "$(grep -m1 -A3 'slowest' "$txt" | tr '\n' ' ')" "HG-$slow +P2 .* 2d00h" "text: the answer two days late among the slowest"
t_like "$(tr '\n' ' ' <"$txt")" "outgoing-mail +1 " "text: cases per category"

# ---- the HTML in a real browser, images resolved
shot="$MS_T/report.png"
prof="$MS_T/chromium-profile"
(cd "$MS_T" && timeout 60 "$chromium" --headless --no-sandbox --disable-gpu --user-data-dir="$prof" \
	--allow-file-access-from-files --window-size=1200,1500 --screenshot="$shot" "file://$MS_T/report.html" \
	>"$MS_T/chromium.log" 2>&1)
t_check "$(stat -c %s "$shot" 2>/dev/null || echo 0)" -gt 20000 "chromium rendered a screenshot ($shot)"
[ -n "${REPORT_SHOT:-}" ] && cp "$shot" "$REPORT_SHOT"
timeout 60 "$chromium" --headless --no-sandbox --disable-gpu --user-data-dir="$prof" \
	--allow-file-access-from-files --virtual-time-budget=3000 --dump-dom "file://$MS_T/report.html" \
	>"$MS_T/dom.html" 2>>"$MS_T/chromium.log"
for id in chart-first chart-median chart-category; do
	t_like "$(grep -o "id=\"$id\"[^>]*" "$MS_T/dom.html")" 'data-natural="[1-9][0-9]*x[1-9][0-9]*"' "DOM: $id drawn with a non-zero size"
done
for id in weeks tiers categories slowest lessons; do
	grep -q "id=\"$id\"" "$MS_T/dom.html" && t_ok "DOM: the $id table" || t_fail "DOM: the $id table"
done

# ---- the same figures as helpgatectl report for the week
since=$(date -u -d '-7 days' +%Y-%m-%dT%H:%M)
rep=$("$bindir/helpgatectl" -c "$conf" report --since "$since" --json)
t_like "$rep" '"cases":1' "helpgatectl report counts the week per tier and urgency"
t_is "$(python3 -c 'import json,sys; print(sum(g["cases"] for g in json.load(sys.stdin)))' <<<"$rep")" 4 \
	"helpgatectl report: the same 4 cases"

# ---- once per slot, across a restart
ms_stop_pid "$worker_pid"
ms_spawn worker_pid "$bindir/helpgate-worker" -f -c "$conf"
sleep 2
t_is "$(sq "SELECT count(*) FROM outbox WHERE kind = 'report'")" 1 "one report for the slot, across a worker restart"
t_done
