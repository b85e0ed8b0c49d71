#!/usr/bin/env bash
# test_protocol.sh BINDIR - helpgate-milter at the milter-protocol level, with
# miltertest(8) playing the MTA: what the filter negotiates, what it answers at
# each step and which header changes it requests at end of message.
#
#   a  forged X-Helpgate-* headers are deleted (change to an empty value at
#      the right index, per name, case-insensitively counted) and ours added
#   b  a non-support message is read to its headers only (forged X-Helpgate-*
#      deleted, nothing added); the next message
#      on the same connection is still tagged, and an aborted one leaves
#      nothing behind
#   c  an urgent outage gets X-Helpgate-Urgency P1 and Importance: high
#   d  an existing "Importance: low" is changed, not duplicated
#   e  the least miltertest sends, an empty body, and a message with no
#      header and no body at all
#   f  a body past MaxBodyScan is answered SKIP and the message still tagged
#   g  an MTA that never sends DATA (milter protocol 2: Postfix
#      milter_protocol = 2, Sendmail 8.13) still gets support mail
#      classified, and other mail untouched
#
# miltertest notes (Debian's miltertest, OpenDKIM 2.11, Lua 5.3):
# - The filter negotiates away connect/helo/unknown (its callbacks are NULL)
#   and asks for no reply to MAIL, RCPT, headers and EOH.  miltertest raises
#   a Lua error for a negotiated-away step (mt.conninfo, mt.helo) and a
#   script dying on an uncaught error exits 1 with little to go on, so every
#   step runs through step() (pcall) and every check prints one PASS/FAIL
#   line; the script ends with DONE.
# - For a step without reply, mt.getreply() still returns the reply to the
#   last step that had one, so replies are checked only after DATA, body
#   chunks and EOM.
# - miltertest fills in skipped steps with its own data: mt.eoh() with no
#   header sent first sends "From: <sender@example.com>", mt.eom() with no
#   body chunk sends "Dummy message body.", mt.header() sends DATA first.
#   A message with no header and no body at all, and a session without
#   DATA, therefore go through rawmilter.py (below), a small client of the
#   same wire protocol.
# - mt.eom_check(conn, MT_HDRCHANGE, name, value, index) reads the index
#   from the wrong argument in this miltertest; indexes are checked with
#   MT_HDRDELETE (name, index) and with rawmilter.py instead.
# - After ACCEPT at DATA the MTA sends nothing more for that message:
#   libmilter ignores it (miltertest would wait for replies that never
#   come), so (b) goes on with the next MAIL.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/../lib/mailstack.sh"

bindir=${1:-bin}
[ -x "$bindir/helpgate-milter" ] || { echo "no $bindir/helpgate-milter"; echo "0 passed, 1 failed"; exit 1; }
command -v miltertest >/dev/null || { echo "miltertest is not installed"; echo "0 passed, 1 failed"; exit 1; }

ms_init || exit 1
conf="$MS_T/helpgate.conf"
cat >"$conf" <<CONF
Socket unix:$MS_T/m.sock
Database $MS_T/hg.db
SupportAddress support@example.com
SupportAddress help@example.com
StaffDomain staff.example.com
Timezone Europe/Kyiv
Syslog no
KeywordsDir $repo/conf/keywords
TemplatesDir $repo/conf/templates
StoreTimeout 500ms
MaxBodyScan 64K
CONF
MS_MILTER_SOCKET="unix:$MS_T/m.sock"
ms_start_milter "$bindir/helpgate-milter" -f -c "$conf" -p "$MS_MILTER_SOCKET" || exit 1
milter_log="$MS_T/milter-$MS_MILTER_N.log"

# ------------------------------------------------------------ Lua helpers
cat >"$MS_T/lib.lua" <<'LUA'
-- Helpers for the scenarios of test_protocol.sh (globals sock and lib come
-- from miltertest -D).  Every check prints one line: "PASS what" or
-- "FAIL what | detail".
local names = {
	[SMFIR_CONTINUE] = "CONTINUE", [SMFIR_ACCEPT] = "ACCEPT",
	[SMFIR_REJECT] = "REJECT", [SMFIR_TEMPFAIL] = "TEMPFAIL",
	[SMFIR_DISCARD] = "DISCARD", [SMFIR_REPLYCODE] = "REPLYCODE",
}
SKIP = SMFIR_SKIP or string.byte("s")
names[SKIP] = "SKIP"

function rname(r)
	if r == nil then return "nil" end
	local n = math.floor(r)
	return names[n] or string.format("%q (%d)", string.char(n), n)
end

local function oneline(s)
	return (tostring(s):gsub("[\r\n]+", " / "))
end

function check(ok, what, detail)
	if ok then
		print("PASS " .. what)
	else
		print("FAIL " .. what .. " | " .. oneline(detail or "false"))
	end
	return ok
end

-- step(what, fn, ...): one protocol step; miltertest either returns an
-- error string or raises (negotiated-away step, dead connection).
function step(what, fn, ...)
	local ok, err = pcall(fn, ...)
	if not ok or err ~= nil then
		return check(false, what, err)
	end
	return true
end

function reply_is(conn, want, what)
	local got = mt.getreply(conn)
	return check(got == want, what, "reply " .. rname(got) .. ", expected " .. rname(want))
end

function connect()
	local conn = mt.connect(sock, 100, 0.05)
	if conn == nil then error("cannot connect to " .. sock) end
	return conn
end

-- added(conn, name [, n]): value of the (n+1)th header added at EOM, or nil.
function added(conn, name, n)
	return mt.getheader(conn, name, n or 0)
end

function added_count(conn, name)
	local n = 0
	while mt.getheader(conn, name, n) ~= nil do n = n + 1 end
	return n
end

function is_added(conn, name, want, what)
	local got = added(conn, name)
	return check(got == want, what, "added " .. name .. ": " .. tostring(got) .. ", expected " .. tostring(want))
end

-- envelope(conn, tag, from, rcpts): MAIL and RCPTs (no replies: NR_*).
function envelope(conn, tag, from, rcpts)
	local ok = step(tag .. "MAIL", mt.mailfrom, conn, from)
	for _, r in ipairs(rcpts) do
		ok = step(tag .. "RCPT " .. r, mt.rcptto, conn, r) and ok
	end
	return ok
end

-- content(conn, tag, headers, chunks): headers ({name, value} pairs), EOH,
-- body chunks (each answered CONTINUE unless told otherwise).
function content(conn, tag, headers, chunks)
	for _, h in ipairs(headers) do
		if not step(tag .. "header " .. h[1], mt.header, conn, h[1], h[2]) then return false end
	end
	if not step(tag .. "EOH", mt.eoh, conn) then return false end
	for i, c in ipairs(chunks or {}) do
		if not step(tag .. "body chunk " .. i, mt.bodystring, conn, c) then return false end
	end
	return true
end

-- tagged(conn, tag): the headers every tagged support message gets.
function tagged(conn, tag)
	check(added_count(conn, "X-Helpgate-Case") == 1 and
	    string.match(added(conn, "X-Helpgate-Case") or "", "^HG%-%d+$") ~= nil,
	    tag .. "one X-Helpgate-Case: HG-<n> added", "got " .. tostring(added(conn, "X-Helpgate-Case")))
	check(string.match(added(conn, "X-Helpgate-Urgency") or "", "^P[1-4]$") ~= nil,
	    tag .. "X-Helpgate-Urgency added", "got " .. tostring(added(conn, "X-Helpgate-Urgency")))
	check(added(conn, "X-Helpgate-Tier") == "unknown", tag .. "X-Helpgate-Tier: unknown added",
	    "got " .. tostring(added(conn, "X-Helpgate-Tier")))
	check(string.match(added(conn, "X-Helpgate-Category") or "", "^[a-z-]+$") ~= nil,
	    tag .. "X-Helpgate-Category added", "got " .. tostring(added(conn, "X-Helpgate-Category")))
	check(string.match(added(conn, "X-Helpgate-SLA-Due") or "",
	    "^%a%a%a, %d%d %a%a%a %d%d%d%d %d%d:%d%d:%d%d [+-]%d%d%d%d$") ~= nil,
	    tag .. "X-Helpgate-SLA-Due is an RFC 5322 date", "got " .. tostring(added(conn, "X-Helpgate-SLA-Due")))
	check(added(conn, "X-Helpgate-Status") == nil, tag .. "store up: no X-Helpgate-Status",
	    "got " .. tostring(added(conn, "X-Helpgate-Status")))
	reply_is(conn, SMFIR_ACCEPT, tag .. "EOM answered ACCEPT")
end

-- scenario(fn): run fn, turn a Lua error into a FAIL line, end with DONE.
function scenario(fn)
	local ok, err = pcall(fn)
	if not ok then check(false, "scenario ran without a Lua error", err) end
	print("DONE")
end
LUA

# run_lua NAME: the scenario on stdin, run by miltertest against the milter;
# its PASS/FAIL lines become ok/not ok.
run_lua() {
	local name=$1 script="$MS_T/$1.lua" out rc line done=0 what detail
	cat >"$script"
	out=$(timeout 60 miltertest -D "sock=$MS_MILTER_SOCKET" -D "lib=$MS_T/lib.lua" -s "$script" 2>&1)
	rc=$?
	while IFS= read -r line; do
		case "$line" in
		"PASS "*) t_ok "$name: ${line#PASS }" ;;
		"FAIL "*)
			what=${line#FAIL }; detail=${what#* | }; what=${what%% | *}
			t_fail "$name: $what" "$detail" ;;
		DONE) done=1 ;;
		esac
	done <<<"$out"
	if [ "$rc" != 0 ] || [ "$done" != 1 ]; then
		t_fail "$name: miltertest ran the script to its end (exit $rc)" "$out"
	fi
}

# ------------------------------------------------------------ raw client
# rawmilter.py VERSION PROTOCOL-OFFER: the MTA side of the milter protocol,
# for what miltertest cannot send.  Steps on stdin, one a line: "mail ADDR",
# "rcpt ADDR", "data", "header NAME: VALUE", "eoh", "body TEXT", "eom".
# Prints "negotiated ...", "reply STEP C" for every step the filter
# answers, "mod h NAME VALUE" / "mod m INDEX NAME VALUE" for header
# additions / changes at EOM (newlines in values shown as \n).
cat >"$MS_T/rawmilter.py" <<'PY'
import socket, struct, sys
NR = {'M': 0x4000, 'R': 0x8000, 'T': 0x10000, 'L': 0x80, 'N': 0x40000, 'B': 0x80000}
path, version, offer = sys.argv[1], int(sys.argv[2], 0), int(sys.argv[3], 0)
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(path)
def send(cmd, data=b''):
    s.sendall(struct.pack('>I', len(data) + 1) + cmd.encode() + data)
def recvn(n):
    b = b''
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError('the filter closed the connection')
        b += c
    return b
def read():
    n, = struct.unpack('>I', recvn(4))
    p = recvn(n)
    return chr(p[0]), p[1:]
def text(b):
    return b.decode('utf-8', 'replace').replace('\r', '').replace('\n', '\\n')
send('O', struct.pack('>III', version, 0x1ff, offer))
c, p = read()
v, acts, proto = struct.unpack('>III', p[:12])
print('negotiated version=%d actions=%#x protocol=%#x' % (v, acts, proto))
def step(cmd, data, name):
    send(cmd, data)
    if version >= 6 and cmd in NR and proto & NR[cmd]:
        return
    c, p = read()
    print('reply', name, c)
for line in sys.stdin:
    verb, _, arg = line.rstrip('\n').partition(' ')
    if verb == 'mail':
        step('M', arg.encode() + b'\0', 'MAIL')
    elif verb == 'rcpt':
        step('R', arg.encode() + b'\0', 'RCPT')
    elif verb == 'data':
        step('T', b'', 'DATA')
    elif verb == 'header':
        n, _, val = arg.partition(': ')
        step('L', n.encode() + b'\0' + val.encode() + b'\0', 'HEADER')
    elif verb == 'eoh':
        step('N', b'', 'EOH')
    elif verb == 'body':
        step('B', arg.encode() + b'\r\n', 'BODY')
    elif verb == 'eom':
        send('E')
        while True:
            c, p = read()
            if c in 'acrtd':
                print('reply EOM', c)
                break
            f = p.split(b'\0')
            if c == 'h':
                print('mod h', text(f[0]), text(f[1]))
            elif c == 'm':
                idx, = struct.unpack('>I', p[:4])
                f = p[4:].split(b'\0')
                print('mod m', idx, text(f[0]), text(f[1]))
            else:
                print('mod', c, text(p))
send('Q')
s.close()
PY
# raw VERSION OFFER STEP...: run rawmilter.py with these steps (not in a
# pipeline: the output is kept in $raw_out of this shell).
raw() {
	local version=$1 offer=$2
	shift 2
	raw_out=$(printf '%s\n' "$@" |
		timeout 30 python3 "$MS_T/rawmilter.py" "${MS_MILTER_SOCKET#unix:}" "$version" "$offer" 2>&1)
}
# raw_has DESC REGEX / raw_lacks DESC REGEX: a line of $raw_out matches
# (does not match) the extended regex REGEX.
raw_has() {
	if grep -qE -- "$2" <<<"$raw_out"; then t_ok "$1"; else t_fail "$1" "no line matching /$2/ in:" "$raw_out"; fi
}
raw_lacks() {
	if grep -qE -- "$2" <<<"$raw_out"; then t_fail "$1" "unexpected line matching /$2/ in:" "$raw_out"; else t_ok "$1"; fi
}

# ------------------------------------------------------------ scenarios

# Negotiation, as Postfix (milter_protocol = 6) sees it.
run_lua negotiate <<'LUA'
dofile(lib)
scenario(function()
	local conn = connect()
	step("negotiate", mt.negotiate, conn, nil, nil, nil)
	check(mt.test_action(conn, SMFIF_ADDHDRS) and mt.test_action(conn, SMFIF_CHGHDRS),
	    "asks to add and change headers")
	-- the body only for staff mail: commands are taken out of the client's copy
	check(mt.test_action(conn, SMFIF_CHGBODY), "asks to replace the body (staff commands)")
	check(not mt.test_action(conn, SMFIF_ADDRCPT) and
	    not mt.test_action(conn, SMFIF_DELRCPT) and not mt.test_action(conn, SMFIF_QUARANTINE),
	    "asks for nothing else (recipients, quarantine)")
	check(mt.test_option(conn, SMFIP_NOCONNECT) and mt.test_option(conn, SMFIP_NOHELO) and
	    mt.test_option(conn, SMFIP_NOUNKNOWN), "no connect, HELO or unknown-command events")
	check(mt.test_option(conn, SMFIP_NR_MAIL) and mt.test_option(conn, SMFIP_NR_RCPT) and
	    mt.test_option(conn, SMFIP_NR_HDR) and mt.test_option(conn, SMFIP_NR_EOH),
	    "no replies to MAIL, RCPT, headers, EOH")
	check(not mt.test_option(conn, SMFIP_NR_DATA) and not mt.test_option(conn, SMFIP_NR_BODY),
	    "DATA and body chunks are answered")
	check(mt.test_option(conn, SMFIP_SKIP), "SKIP is understood")
	check(not mt.test_option(conn, SMFIP_NODATA) and not mt.test_option(conn, SMFIP_NOHDRS) and
	    not mt.test_option(conn, SMFIP_NOBODY), "DATA, headers and body are wanted")
	local ok, err = pcall(mt.conninfo, conn, "client.test", "127.0.0.1")
	check(not ok and string.find(tostring(err), "NOCONNECT") ~= nil,
	    "miltertest refuses the negotiated-away connect step", tostring(err))
	mt.disconnect(conn)
end)
LUA

# (a) forged X-Helpgate-* headers.
run_lua a-forged <<'LUA'
dofile(lib)
scenario(function()
	local conn = connect()
	envelope(conn, "", "<eve@client.test>", { "<support@example.com>" })
	step("DATA", mt.data, conn)
	reply_is(conn, SMFIR_CONTINUE, "support mail: DATA answered CONTINUE")
	content(conn, "", {
		{ "From", "Eve <eve@client.test>" },
		{ "To", "support@example.com" },
		{ "X-Helpgate-Urgency", "P1" },
		{ "Subject", "Question about invoices" },
		{ "X-Helpgate-Case", "HG-999" },
		{ "Message-ID", "<forged-1@client.test>" },
		{ "X-HELPGATE-URGENCY", "P2" },
	}, { "How do I download last month's invoice?\r\n" })
	reply_is(conn, SMFIR_CONTINUE, "body chunk answered CONTINUE")
	step("EOM", mt.eom, conn)
	check(mt.eom_check(conn, MT_HDRDELETE, "X-Helpgate-Urgency", 1), "forged X-Helpgate-Urgency #1 deleted")
	check(mt.eom_check(conn, MT_HDRDELETE, "X-Helpgate-Case", 1), "forged X-Helpgate-Case #1 deleted")
	-- MTAs count header names case-insensitively; either spelling will do.
	check(mt.eom_check(conn, MT_HDRDELETE, "X-HELPGATE-URGENCY", 2) or
	    mt.eom_check(conn, MT_HDRDELETE, "X-Helpgate-Urgency", 2),
	    "second X-Helpgate-Urgency (other case) deleted as #2 of that name")
	check(not mt.eom_check(conn, MT_HDRDELETE, "X-Helpgate-Case", 2) and
	    not mt.eom_check(conn, MT_HDRDELETE, "X-Helpgate-Urgency", 3) and
	    not mt.eom_check(conn, MT_HDRDELETE, "X-HELPGATE-URGENCY", 3),
	    "no deletion at an index that does not exist")
	check(not mt.eom_check(conn, MT_HDRDELETE, "Subject") and not mt.eom_check(conn, MT_HDRDELETE, "From"),
	    "other headers left alone")
	tagged(conn, "")
	check(added(conn, "X-Helpgate-Case") ~= "HG-999", "the case is ours, not HG-999")
	is_added(conn, "X-Helpgate-Urgency", "P4", "a how-to question is P4, not the forged P1")
	check(added_count(conn, "X-Helpgate-Urgency") == 1, "one X-Helpgate-Urgency added")
	is_added(conn, "X-Helpgate-Category", "billing", "category billing")
	check(string.find(added(conn, "X-Helpgate-Reasons") or "", "invoice") ~= nil,
	    "X-Helpgate-Reasons added, names the evidence", "got " .. tostring(added(conn, "X-Helpgate-Reasons")))
	check(added(conn, "Importance") == nil and not mt.eom_check(conn, MT_HDRCHANGE, "Importance"),
	    "P4: no Importance header")
	mt.disconnect(conn)
end)
LUA

# (b) non-support mail, then more messages on the same connection.
run_lua b-nonsupport <<'LUA'
dofile(lib)
scenario(function()
	local conn = connect()
	envelope(conn, "sales: ", "<client@client.test>", { "<sales@example.com>", "<billing@example.org>" })
	step("sales: DATA", mt.data, conn)
	reply_is(conn, SMFIR_CONTINUE,
	    "non-support mail: DATA answered CONTINUE (its headers are read: a sender's X-Helpgate-* go from all mail)")
	content(conn, "sales: ", { { "Subject", "Price list" }, { "X-Helpgate-Notice", "breach" } }, {})
	step("sales: EOM", mt.eom, conn)
	check(mt.eom_check(conn, MT_HDRDELETE, "X-Helpgate-Notice", 1),
	    "non-support mail: a forged X-Helpgate-Notice is deleted")
	check(added(conn, "X-Helpgate-Case") == nil and added(conn, "X-Helpgate-Urgency") == nil,
	    "non-support mail: nothing of ours added")

	-- The MTA goes on with the next message on the same connection.
	envelope(conn, "next: ", "<client@client.test>", { "<sales@example.com>", "<Support@Example.COM>" })
	step("next: DATA", mt.data, conn)
	reply_is(conn, SMFIR_CONTINUE, "next: a support address (any case, second RCPT): DATA answered CONTINUE")
	content(conn, "next: ", { { "Subject", "How do I add an alias?" } }, { "How do I add an alias?\r\n" })
	step("next: EOM", mt.eom, conn)
	tagged(conn, "next: ")
	check(not mt.eom_check(conn, MT_HDRDELETE) and not mt.eom_check(conn, MT_HDRCHANGE),
	    "next: nothing deleted or changed")

	-- A support message aborted after its headers leaves nothing behind.
	envelope(conn, "aborted: ", "<mallory@client.test>", { "<support@example.com>" })
	step("aborted: DATA", mt.data, conn)
	content(conn, "aborted: ", { { "X-Helpgate-Case", "HG-999" }, { "Subject", "URGENT server down!!!" } }, {})
	step("aborted: ABORT", mt.abort, conn)
	envelope(conn, "after abort: ", "<client@client.test>", { "<help@example.com>" })
	step("after abort: DATA", mt.data, conn)
	content(conn, "after abort: ", { { "Subject", "Thanks" } }, { "Thank you for the quick help.\r\n" })
	step("after abort: EOM", mt.eom, conn)
	tagged(conn, "after abort: ")
	check(not mt.eom_check(conn, MT_HDRDELETE),
	    "after abort: no deletion carried over from the aborted message")
	check(added(conn, "Importance") == nil, "after abort: urgency of the aborted message not carried over")
	mt.disconnect(conn)
end)
LUA

# (c) an urgent outage.
run_lua c-outage <<'LUA'
dofile(lib)
scenario(function()
	local conn = connect()
	envelope(conn, "", "<ops@client.test>", { "<support@example.com>" })
	step("DATA", mt.data, conn)
	content(conn, "", {
		{ "From", "Ops <ops@client.test>" },
		{ "Subject", "Service down - URGENT" },
	}, { "Your whole service is down since 9:00, none of our 40 users can log in or receive mail.\r\n",
	     "This is critical, we are losing customers!!!\r\n" })
	step("EOM", mt.eom, conn)
	tagged(conn, "")
	is_added(conn, "X-Helpgate-Urgency", "P1", "urgent outage is P1")
	is_added(conn, "X-Helpgate-Category", "outage", "category outage")
	check(mt.eom_check(conn, MT_HDRADD, "Importance", "high"), "Importance: high added")
	check(added_count(conn, "Importance") == 1 and not mt.eom_check(conn, MT_HDRCHANGE, "Importance"),
	    "Importance added once, nothing changed")
	check(string.find(added(conn, "X-Helpgate-Reasons") or "", "outage") ~= nil,
	    "reasons name the outage", "got " .. tostring(added(conn, "X-Helpgate-Reasons")))
	mt.disconnect(conn)
end)
LUA

# (d) an existing Importance header.
run_lua d-importance <<'LUA'
dofile(lib)
scenario(function()
	local conn = connect()
	envelope(conn, "P1: ", "<client@client.test>", { "<support@example.com>" })
	step("P1: DATA", mt.data, conn)
	content(conn, "P1: ", {
		{ "Subject", "URGENT: cannot send any email" },
		{ "Importance", "low" },
	}, { "Since this morning nobody in the office can send email, every message bounces. " ..
	     "Urgent, we are losing customers!!!\r\n" })
	step("P1: EOM", mt.eom, conn)
	tagged(conn, "P1: ")
	is_added(conn, "X-Helpgate-Urgency", "P1", "P1: urgent outgoing-mail failure is P1")
	check(mt.eom_check(conn, MT_HDRCHANGE, "Importance", "high"), "P1: Importance changed to high")
	check(added(conn, "Importance") == nil, "P1: no second Importance header added",
	    "added Importance: " .. tostring(added(conn, "Importance")))
	check(not mt.eom_check(conn, MT_HDRDELETE, "Importance"), "P1: Importance not deleted")

	envelope(conn, "P4: ", "<client@client.test>", { "<support@example.com>" })
	step("P4: DATA", mt.data, conn)
	content(conn, "P4: ", {
		{ "Subject", "Autoresponder" },
		{ "Importance", "low" },
	}, { "Hello, how do I set up an autoresponder for my mailbox?\r\n" })
	step("P4: EOM", mt.eom, conn)
	tagged(conn, "P4: ")
	check(not mt.eom_check(conn, MT_HDRCHANGE, "Importance") and added(conn, "Importance") == nil,
	    "P4: Importance: low left as it is")
	mt.disconnect(conn)
end)
LUA

# (e) the least miltertest can send: MAIL and RCPT, then EOM; it fills in
# DATA, one "From: <sender@example.com>" header, EOH and "Dummy message
# body." (A zero-length body chunk is no empty body: libmilter drops the
# connection on it, and no MTA sends one.)  Truly empty messages follow
# below through rawmilter.py.
run_lua e-minimal <<'LUA'
dofile(lib)
scenario(function()
	local conn = connect()
	envelope(conn, "", "<client@client.test>", { "<support@example.com>" })
	step("EOM (miltertest fills in the rest)", mt.eom, conn)
	tagged(conn, "")
	check(not mt.eom_check(conn, MT_HDRDELETE) and not mt.eom_check(conn, MT_HDRCHANGE),
	    "nothing deleted or changed")
	mt.disconnect(conn)
end)
LUA

# (f) a body past MaxBodyScan (64K here; the buffer also holds up to 256K of
# headers): once full, a chunk is answered SKIP and the rest need not come.
run_lua f-bigbody <<'LUA'
dofile(lib)
scenario(function()
	local conn = connect()
	envelope(conn, "", "<client@client.test>", { "<support@example.com>" })
	step("DATA", mt.data, conn)
	content(conn, "", { { "Subject", "cannot send email, log below" } },
	    { "Outgoing mail fails since this morning, the full log follows. Urgent please!\r\n" })
	local line = string.rep("x", 998) .. "\r\n"
	local chunk = string.rep(line, 60)	-- 60000 bytes, under libmilter's 64K
	local replies = {}
	for i = 1, 8 do
		if not step("log chunk " .. i, mt.bodystring, conn, chunk) then break end
		replies[#replies + 1] = rname(mt.getreply(conn))
		if mt.getreply(conn) ~= SMFIR_CONTINUE then break end
	end
	local seq = table.concat(replies, " ")
	check(mt.getreply(conn) == SKIP and #replies >= 5 and #replies <= 7,
	    "chunks answered CONTINUE until the scan limit, then SKIP", seq)
	step("EOM", mt.eom, conn)
	tagged(conn, "")
	is_added(conn, "X-Helpgate-Category", "outgoing-mail", "the scanned text is still classified")
	mt.disconnect(conn)
end)
LUA

# (e) continued: an empty body and an empty message, as Postfix sends them
# (no body chunk at all; EOH right after DATA when there is no header).
raw 6 0x1fffff 'mail <client@client.test>' 'rcpt <support@example.com>' 'data' \
	'header From: Client <client@client.test>' 'header Subject: (no subject)' 'eoh' 'eom'
raw_has "e-empty-body: a case is opened" '^mod h X-Helpgate-Case HG-[0-9]+$'
raw_has "e-empty-body: urgency added" '^mod h X-Helpgate-Urgency P[1-4]$'
raw_has "e-empty-body: deadline added" '^mod h X-Helpgate-SLA-Due '
raw_has "e-empty-body: EOM answered ACCEPT" '^reply EOM a$'
raw 6 0x1fffff 'mail <client@client.test>' 'rcpt <support@example.com>' 'data' 'eoh' 'eom'
raw_has "e-nothing: no header, no body: DATA answered CONTINUE" '^reply DATA c$'
raw_has "e-nothing: a case is opened" '^mod h X-Helpgate-Case HG-[0-9]+$'
raw_has "e-nothing: urgency added" '^mod h X-Helpgate-Urgency P[1-4]$'
raw_has "e-nothing: tier added" '^mod h X-Helpgate-Tier unknown$'
raw_has "e-nothing: category added" '^mod h X-Helpgate-Category [a-z-]+$'
raw_has "e-nothing: deadline added" '^mod h X-Helpgate-SLA-Due '
raw_lacks "e-nothing: nothing changed or deleted" '^mod m '
raw_has "e-nothing: EOM answered ACCEPT" '^reply EOM a$'

# (a) continued: the order of the deletions.  Deleting #1 of a name first
# would make #2 the new #1 and leave it in place: per name, the highest
# index goes first.
raw 6 0x1fffff 'mail <eve@client.test>' 'rcpt <support@example.com>' 'data' \
	'header X-Helpgate-Urgency: P1' 'header Subject: Question about invoices' \
	'header X-Helpgate-Case: HG-999' 'header x-helpgate-urgency: P2' \
	'header X-Helpgate-Urgency: P3' 'eoh' 'body How do I download an invoice?' 'eom'
order=$(awk 'tolower($4) == "x-helpgate-urgency" && $1 " " $2 == "mod m" { print $3 }' <<<"$raw_out" | paste -sd, -)
t_is "$order" "3,2,1" "a-order: three X-Helpgate-Urgency (any case) deleted as #3, #2, #1, in that order"
raw_has "a-order: X-Helpgate-Case #1 deleted" '^mod m 1 X-Helpgate-Case $'
t_is "$(grep -c '^mod m ' <<<"$raw_out")" 4 "a-order: four deletions, nothing else changed"

# (g) an MTA speaking milter protocol 2 never sends DATA (and wants a reply
# to every step): support mail must still be read, other mail untouched.
raw 2 0x7f 'mail <client@client.test>' 'rcpt <support@example.com>' \
	'header Subject: URGENT: cannot send any email' 'header X-Helpgate-Urgency: P4' 'eoh' \
	'body Since this morning nobody in the office can send email, every message bounces. Urgent, we are losing customers!!!' \
	'eom'
raw_has "g-protocol2: version 2 negotiated" '^negotiated version=2 '
raw_lacks "g-protocol2: no step refused" '^reply (MAIL|RCPT|HEADER|EOH|BODY) [^c]$'
raw_has "g-protocol2: support mail without DATA classified P1" '^mod h X-Helpgate-Urgency P1$'
raw_has "g-protocol2: category outgoing-mail" '^mod h X-Helpgate-Category outgoing-mail$'
raw_has "g-protocol2: Importance: high" '^mod h Importance high$'
raw_has "g-protocol2: forged X-Helpgate-Urgency deleted (index 1, empty value)" '^mod m 1 X-Helpgate-Urgency $'
raw_has "g-protocol2: EOM answered ACCEPT" '^reply EOM a$'
raw 2 0x7f 'mail <client@client.test>' 'rcpt <sales@example.com>' \
	'header Subject: URGENT: cannot send any email' 'header X-Helpgate-Urgency: P1' 'eoh' \
	'body Nobody can send email. URGENT!!!' 'eom'
raw_has "g-protocol2: non-support mail: EOM answered ACCEPT" '^reply EOM a$'
raw_has "g-protocol2: non-support mail: the sender's X-Helpgate-Urgency deleted" '^mod m 1 X-Helpgate-Urgency $'
raw_lacks "g-protocol2: non-support mail: nothing of ours added" '^mod h '

# The milter logged one line per tagged message and no sanitizer report.
log=$(cat "$milter_log")
n=$(grep -c ' case=HG-[0-9]* ' <<<"$log")
t_is "$n" 12 "the milter logged one line for each of the 12 tagged messages"
if grep -qE 'ERROR: AddressSanitizer|runtime error:|header-changes-failed' <<<"$log"; then
	t_fail "no sanitizer report or failed header change in the milter log" \
		"$(grep -E 'ERROR: AddressSanitizer|runtime error:|header-changes-failed' <<<"$log" | head -n 5)"
else
	t_ok "no sanitizer report or failed header change in the milter log"
fi
if kill -0 "$MS_MILTER_PID" 2>/dev/null; then
	ms_stop_milter
	rc=$?
else
	# ms_stop_milter trips over "set -u" for a process already gone
	wait "$MS_MILTER_PID" 2>/dev/null
	rc=$?
	MS_PIDS=()
	t_fail "the milter was still running at the end" "exit status $rc"
fi
t_is "$rc" 0 "the milter stops cleanly on SIGTERM (exit 0)"

t_done
