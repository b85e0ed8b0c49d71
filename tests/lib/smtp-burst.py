#!/usr/bin/env python3
# smtp-burst.py SPEC [CONNECTIONS]: client mail for the tests and benchmarks.
# Each line of SPEC is "PORT|MESSAGE-ID|FROM|SUBJECT|IN-REPLY-TO" (the last
# may be empty); the messages go to support@example.com on 127.0.0.1:PORT
# over CONNECTIONS (default 4) SMTP connections at once, each retried for
# ten seconds.  Prints how many the MTAs accepted.
import smtplib, sys, threading, time
from email.utils import formatdate
lines = [l.rstrip("\n").split("|") for l in open(sys.argv[1]) if l.strip()]
accepted = [0]
lock = threading.Lock()
def run(part):
    conns = {}
    for port, mid, frm, subj, irt in part:
        hdr = irt and "In-Reply-To: <%s>\r\nReferences: <%s>\r\n" % (irt, irt) or ""
        msg = ("From: %s\r\nTo: support@example.com\r\nSubject: %s\r\nDate: %s\r\n"
               "Message-ID: <%s>\r\n%sMIME-Version: 1.0\r\n"
               "Content-Type: text/plain; charset=utf-8\r\n\r\n"
               "Hello, since this morning I cannot log in to webmail (%s).\r\n"
               "Please help.\r\n" % (frm, subj, formatdate(localtime=True), mid, hdr, mid))
        for attempt in range(20):
            try:
                c = conns.get(port)
                if c is None:
                    c = conns[port] = smtplib.SMTP("127.0.0.1", int(port), timeout=60)
                c.sendmail(frm, ["support@example.com"], msg.encode())
                with lock:
                    accepted[0] += 1
                break
            except Exception as e:
                conns.pop(port, None)
                time.sleep(0.5)
    for c in conns.values():
        try:
            c.quit()
        except Exception:
            pass
nconn = int(sys.argv[2]) if len(sys.argv) > 2 else 4
threads = [threading.Thread(target=run, args=(lines[i::nconn],)) for i in range(nconn)]
for t in threads: t.start()
for t in threads: t.join()
print(accepted[0])
