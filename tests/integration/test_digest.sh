#!/usr/bin/env bash
# test_digest.sh BINDIR - the queue digest (issue 15, part 2) through a
# real Postfix: clients' mail opens cases of every kind (breached, due
# within the hour, later, waiting, a customer under incident watch); the
# worker, started with "Digest ... at=" a minute ago, mails the queue to
# staff once:
#   - multipart/alternative; the plain text names every open case, breached
#     first, in lines of at most 78 characters, with a mailto: per case;
#   - the HTML, loaded into headless Chromium (Debian's chromium) from the
#     delivered message: every open case present, breached first, no
#     script and no external image; a screenshot is kept in the test's log
#     directory ($MS_T/digest.png, and $DIGEST_SHOT when set);
#   - nothing is mailed while the queue is empty (DigestEmpty no);
#   - the slot is mailed exactly once, across a worker restart;
#   - helpgatectl digest renders the same queue.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bindir=${1:?usage: test_digest.sh BINDIR}
bindir=$(cd "$bindir" && pwd)
. "$here/../lib/mailstack.sh"

for p in helpgate-milter helpgate-worker helpgatectl; do
	[ -x "$bindir/$p" ] || { echo "not ok - no $bindir/$p"; echo "0 passed, 1 failed"; exit 1; }
done
chromium=$(command -v chromium || command -v chromium-browser) ||
	{ echo "not ok - no chromium (apt-get install chromium)"; echo "0 passed, 1 failed"; exit 1; }
t_check() { if [ "$1" "$2" "$3" ]; then t_ok "$4"; else t_fail "$4" "got $1, wanted $2 $3"; fi; }

ms_init || exit 1
ms_database || exit 1
export MS_DELIVERY=maildir
export MS_MAILDIR_DOMAINS="example.com client.test staff.example.com"
conf="$MS_T/helpgate.conf"
db=$MS_DATABASE
at=$(date -u -d '-1 min' +%H:%M)
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
SLA unknown P1 first=2s resolve=1h
SLA unknown P2 first=40m resolve=8h
SLA unknown P3 first=3h resolve=2d
SLA unknown P4 first=1d resolve=5d
SLA standard P3 first=3h resolve=2d
SLA standard P4 first=1d resolve=5d
Digest lead@staff.example.com at=$at
CONF
ms_start_sink || exit 1
MS_MILTER_SOCKET="unix:$MS_T/hg.sock"
ms_start_milter "$bindir/helpgate-milter" -f -c "$conf" -p "$MS_MILTER_SOCKET" || { t_fail "milter starts"; t_done; exit 1; }
ms_start_postfix "unix:$MS_T/hg.sock" || { t_fail "postfix starts"; t_done; exit 1; }
echo "Relay smtp://127.0.0.1:$MS_SMTP_PORT" >>"$conf"
ctl() { "$bindir/helpgatectl" -c "$conf" "$@"; }
sq() { ms_sq "$db" "$@"; }
hdr() { ms_header "$1" "$2"; }
ctl customer add watched@client.test --tier standard --incident-watch 21 >/dev/null || t_fail "customer under watch"

# ---- nothing open: no digest (DigestEmpty no, the default)
ms_spawn worker_pid "$bindir/helpgate-worker" -f -c "$conf"
sleep 2
t_is "$(ls "$MS_T/mail/lead@staff.example.com/new/" 2>/dev/null | wc -l)" 0 "an empty queue: no digest"
t_is "$(sq "SELECT count(*) FROM outbox WHERE kind = 'digest'")" 0 "an empty queue: nothing in the outbox"
ms_stop_pid "$worker_pid"

n=0
client() {	# client FROM SUBJECT TEXT
	n=$((n + 1))
	ms_mkmsg "$MS_T/c$n.eml" "Client <$1>" "$2" "c$n@client.test" "$3"
	ms_send --data "$MS_T/c$n.eml" --from "$1" || t_fail "client mail $n sent"
}
client ann@client.test "URGENT: nobody can send email" \
	"Since 9 am none of our 30 users can send any email. We are losing orders, please help ASAP!!!"
client bob@client.test "Cannot log in" "Since this morning I cannot log in to webmail, it says the password is wrong."
client cid@client.test "Calendar one hour late" "Invitations I receive show up one hour later than they should."
client dan@client.test "Signature" "How do I add my logo to the signature in webmail? Thanks."
client watched@client.test "Filter does not move mail" "My rule that moves invoices to a folder stopped working."
ms_wait_delivered "$n" 30 || t_fail "the clients' mail delivered"
t_is "$(sq "SELECT count(*) FROM cases")" "$n" "$n cases opened"
dan=$(sq "SELECT id FROM cases WHERE client = 'dan@client.test'")
ctl case wait "HG-$dan" >/dev/null || t_fail "HG-$dan waits for the client"
sleep 3	# the P1 case is now past its 2 s first-response target

ms_spawn worker_pid "$bindir/helpgate-worker" -f -c "$conf"
f=""
for ((i = 0; i < 100; i++)); do
	f=$(grep -l '^X-Helpgate-Notice: digest' "$MS_T/mail/lead@staff.example.com/new/"* 2>/dev/null | head -1) && [ -n "$f" ] && break
	sleep 0.2
done
[ -n "$f" ] && t_ok "the digest reached lead@staff.example.com" || { t_fail "the digest reached lead@staff.example.com"; t_done; exit 1; }
t_like "$(hdr "$f" Subject)" "^\[helpgate\] Queue .*: $n open$" "the subject counts the open cases"
t_like "$(hdr "$f" Content-Type)" '^multipart/alternative' "multipart/alternative"
t_is "$(hdr "$f" Auto-Submitted)" auto-generated "Auto-Submitted: auto-generated"

python3 - "$f" "$MS_T" <<'PY' >"$MS_T/parts.txt" || t_fail "the digest's parts decode"
import email, sys
m = email.message_from_binary_file(open(sys.argv[1], "rb"))
for p in m.walk():
    ct = p.get_content_type()
    if ct in ("text/plain", "text/html"):
        data = p.get_payload(decode=True).decode(p.get_content_charset() or "utf-8")
        open(sys.argv[2] + ("/digest.txt" if ct == "text/plain" else "/digest.html"), "w").write(data)
        print(ct)
PY
t_is "$(tr '\n' ' ' <"$MS_T/parts.txt")" "text/plain text/html " "a plain text part, then an HTML part"
txt="$MS_T/digest.txt"
long=$(awk 'length($0) > 78' "$txt" | wc -l)
t_is "$long" 0 "no plain-text line longer than 78 characters"
for id in $(sq "SELECT id FROM cases ORDER BY id"); do
	grep -q "^HG-$id " "$txt" && t_ok "text: HG-$id listed" || t_fail "text: HG-$id listed"
done
p1=$(sq "SELECT id FROM cases WHERE urgency = 1 AND client = 'ann@client.test'")
t_like "$p1" '^[0-9]+$' "the outage is P1"
t_is "$(grep -m1 '^== ' "$txt")" "== Breached (1) ==" "text: breached first"
t_is "$(grep -m1 '^HG-' "$txt" | cut -d' ' -f1)" "HG-$p1" "text: the breached P1 case first"
t_like "$(tr '\n' ' ' <"$txt")" "OVERDUE" "text: time left says OVERDUE in words"
t_like "$(tr '\n' ' ' <"$txt")" "Waiting for the client \(1\) == HG-$dan " "text: the waiting case apart"
t_like "$(tr '\n' ' ' <"$txt")" "watch" "text: the customer under incident watch marked"
t_like "$(tr '\n' ' ' <"$txt")" "reply: mailto:support@example.com\?subject=%5BHG-$p1%5D" "text: a mailto: with the case's tag"

# ---- the HTML in a real browser
html="$MS_T/digest.html"
grep -qi '<script' "$html" && t_fail "html: no script" || t_ok "html: no script"
grep -qiE '<img[^>]+src="?https?:' "$html" && t_fail "html: no external image" || t_ok "html: no external image"
shot="$MS_T/digest.png"
prof="$MS_T/chromium-profile"
timeout 60 "$chromium" --headless --no-sandbox --disable-gpu --user-data-dir="$prof" \
	--window-size=1100,800 --screenshot="$shot" "file://$html" >"$MS_T/chromium.log" 2>&1
t_check "$(stat -c %s "$shot" 2>/dev/null || echo 0)" -gt 5000 "chromium rendered a screenshot ($shot)"
[ -n "${DIGEST_SHOT:-}" ] && cp "$shot" "$DIGEST_SHOT"
timeout 60 "$chromium" --headless --no-sandbox --disable-gpu --user-data-dir="$prof" \
	--dump-dom "file://$html" >"$MS_T/dom.html" 2>>"$MS_T/chromium.log"
python3 - "$MS_T/dom.html" "$(sq "SELECT group_concat(id, ' ') FROM cases")" "$p1" "$dan" <<'PY' >"$MS_T/dom.txt"
import sys, html.parser
class P(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(); self.rows = []; self.groups = []; self.links = []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and a.get("data-case"): self.rows.append((a["data-case"], self.groups[-1] if self.groups else None))
        if tag == "table" and a.get("data-group") is not None: self.groups.append(a["data-group"])
        if tag == "a" and a.get("href", "").startswith("mailto:"): self.links.append(a["href"])
p = P(); p.feed(open(sys.argv[1]).read())
ids = ["HG-" + i for i in sys.argv[2].split()]
print("all", all(any(r[0] == i for r in p.rows) for i in ids))
print("first", p.rows[0][0] if p.rows else "", p.rows[0][1] if p.rows else "")
print("waiting", [g for c, g in p.rows if c == "HG-" + sys.argv[4]])
print("links", len(p.links), all("subject=%5BHG-" in l for l in p.links))
PY
t_like "$(grep '^all' "$MS_T/dom.txt")" 'all True' "DOM: every open case has its row"
t_is "$(grep '^first' "$MS_T/dom.txt")" "first HG-$p1 0" "DOM: the breached P1 case first, in the breached table"
t_is "$(grep '^waiting' "$MS_T/dom.txt")" "waiting ['3']" "DOM: the waiting case in the waiting table"
t_like "$(grep '^links' "$MS_T/dom.txt")" "links $n True" "DOM: a mailto: link with the tag for every case"

# ---- once per slot, across a restart
ms_stop_pid "$worker_pid"
ms_spawn worker_pid "$bindir/helpgate-worker" -f -c "$conf"
sleep 2
t_is "$(sq "SELECT count(*) FROM outbox WHERE kind = 'digest'")" 1 "one digest for the slot, across a worker restart"
t_is "$(ls "$MS_T/mail/lead@staff.example.com/new/" | wc -l)" 1 "lead got it once"

# ---- helpgatectl digest renders the same queue
ctl digest --html "$MS_T/ctl.html" --text "$MS_T/ctl.txt" || t_fail "helpgatectl digest"
t_is "$(grep -c '^HG-' "$MS_T/ctl.txt")" "$n" "helpgatectl digest lists every open case"
t_done
