#!/usr/bin/env python3
# ack-latency.py PORT SINK N RATE BURST [PREFIX]: acknowledgement latency
# through a real MTA.  Sends N client messages at RATE/s from distinct
# senders to 127.0.0.1:PORT (the helpgate listener), then BURST at once;
# each acknowledgement is found in the smtp-sink directory SINK by its
# In-Reply-To.  Prints the median, p95 and max latency (from the MTA's 250
# to the acknowledgement in the sink), a "P95 x" line for the caller, and
# the acknowledgements per second sustained over the burst.  PREFIX
# (default "") keeps the Message-IDs of several runs into one sink apart.
import os, smtplib, sys, time
port, sink, n, rate, burst = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
run = sys.argv[6] if len(sys.argv) > 6 else ''

def send(prefix, count, pace):
    sent = {}
    s = smtplib.SMTP('127.0.0.1', port)
    t0 = time.time()
    for i in range(count):
        if pace:
            delay = t0 + i / pace - time.time()
            if delay > 0:
                time.sleep(delay)
        mid = '%s-%d@bench.test' % (prefix, i)
        msg = ('From: Client %d <%s%d@client.test>\r\nTo: support@example.com\r\n'
               'Subject: How do I add an alias? (%d)\r\nMessage-ID: <%s>\r\n\r\n'
               'Hello, how do I add an alias to my mailbox?\r\n') % (i, prefix, i, i, mid)
        s.sendmail('%s%d@client.test' % (prefix, i), ['support@example.com'], msg)
        sent[mid] = time.time()        # the relay has answered 250: accepted
    s.quit()
    return sent

seen = {}
def scan():
    for name in os.listdir(sink):
        path = os.path.join(sink, name)
        if path in seen:
            continue
        try:
            with open(path, 'rb') as f:
                head = f.read(8192).split(b'\r\n\r\n', 1)[0].split(b'\n\n', 1)[0]
            st = os.stat(path)
        except OSError:
            continue
        irt = None
        for line in head.splitlines():
            if line.lower().startswith(b'in-reply-to:'):
                irt = line.split(b':', 1)[1].strip().strip(b'<>').decode()
        if irt is None:
            if time.time() - st.st_mtime > 2:
                seen[path] = None      # not an acknowledgement
            continue
        seen[path] = (irt, st.st_mtime)

def wait(sent, timeout):
    end = time.time() + timeout
    while time.time() < end:
        scan()
        got = {v[0]: v[1] for v in seen.values() if v and v[0] in sent}
        if len(got) >= len(sent):
            return got
        time.sleep(0.2)
    return {v[0]: v[1] for v in seen.values() if v and v[0] in sent}

def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]

sent = send(run + 'lat', n, rate)
got = wait(sent, 120)
lat = [got[m] - sent[m] for m in got]
print('paced: %d cases at %.0f/s, %d acknowledged' % (n, rate, len(got)))
if lat:
    print('latency median %.3f s, p95 %.3f s, max %.3f s' % (pct(lat, 50), pct(lat, 95), max(lat)))
    print('P95 %.3f' % pct(lat, 95))
sent = send(run + 'burst', burst, 0)
first = min(sent.values())
got = wait(sent, 300)
if got:
    span = max(got.values()) - first
    print('burst: %d cases sent in %.1f s, %d acknowledged within %.1f s: %.0f acknowledgements/s sustained'
          % (burst, max(sent.values()) - first, len(got), span, len(got) / span))
