#!/usr/bin/env python3
"""make demo's second half: wait for what helpgate does with the four demo
messages (scripts/demo.sh sent them) and print it as a support agent would
want to see it.  Everything printed is read back from where a person would
look: the delivered copy in the support Maildir, the client's Maildir, and
helpgatectl case show --json.

usage: demo_report.py HELPGATECTL CONF MAILDIR_ROOT STAMP TIMEOUT SUBMISSION_PORT SMTPS_PORT
Exit 0 when every expected thing arrived in time, 1 otherwise (and it says
what is missing)."""

import email
import json
import os
import subprocess
import sys
import time
from email import policy

ctl, conf, mailroot, stamp, timeout = sys.argv[1:6]
timeout = float(timeout)
submission_port, smtps_port = sys.argv[6], sys.argv[7]

DEMO = [
    (1, "A calm how-to question", "anna@client.example", True),
    (2, "An angry outage, in Russian", "ivan@shop.example", True),
    (3, "A trial customer whose outgoing mail is not being sent", "tom@newco.example", True),
    (4, "A bounce", "MAILER-DAEMON@mx.client.example", False),
]


def msgid(n, sender):
    return "demo-%s-%d@%s" % (stamp, n, sender.split("@", 1)[1])


def read(path):
    with open(path, "rb") as f:
        return email.message_from_binary_file(f, policy=policy.default)


def maildir(address):
    d = os.path.join(mailroot, address, "new")
    try:
        names = sorted(os.listdir(d))
    except OSError:
        return []
    return [os.path.join(d, n) for n in names]


def find(address, pred):
    for path in maildir(address):
        try:
            m = read(path)
        except OSError:
            continue
        if pred(m):
            return m
    return None


def ids(value):
    return (value or "").strip().strip("<>")


def case_json(ref):
    out = subprocess.run([ctl, "-c", conf, "case", "show", ref, "--json"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        return None
    return json.loads(out.stdout)


def body(m, lines=None):
    part = m.get_body(preferencelist=("plain",))
    text = part.get_content() if part else ""
    rows = [r.rstrip() for r in text.splitlines()]
    return rows if lines is None else rows[:lines]


def wait(what, fn):
    """fn() until it returns something, or None after the deadline."""
    while True:
        v = fn()
        if v is not None or time.time() > deadline:
            return v
        time.sleep(0.2)


deadline = time.time() + timeout
missing = []
state = {}
for n, title, sender, human in DEMO:
    mid = msgid(n, sender)
    tagged = wait("tagged", lambda: find("support@example.com", lambda m: ids(m["Message-ID"]) == mid))
    state[n] = {"tagged": tagged}
    if tagged is None:
        missing.append("message %d never reached var/mail/support@example.com" % n)

for n, title, sender, human in DEMO:
    tagged = state[n]["tagged"]
    ref = tagged["X-Helpgate-Case"] if tagged is not None else None
    state[n]["ref"] = ref
    if human and ref:
        mid = msgid(n, sender)
        ack = wait("ack", lambda: find(sender, lambda m: ids(m["In-Reply-To"]) == mid and
                                        ".ack." in (m["Message-ID"] or "")))
        state[n]["ack"] = ack
        if ack is None:
            missing.append("no acknowledgement reached %s" % sender)

# The trial case: its diagnosis, and the setting the client was sent.
n3 = state[3]
if n3.get("ref"):
    def diagnosed():
        d = case_json(n3["ref"])
        if d and d.get("diagnoses") and d["diagnoses"][0].get("client_note"):
            return d
        if d and d.get("diagnoses") and d["diagnoses"][0].get("alternative") is None:
            return d
        return None
    n3["case"] = wait("diagnosis", diagnosed)
    if n3["case"] is None:
        missing.append("no diagnosis of %s in time" % n3["ref"])
    elif n3["case"]["diagnoses"][0].get("client_note") == "follow-up":
        mid = msgid(3, "tom@newco.example")
        n3["alt"] = wait("alternative", lambda: find("tom@newco.example", lambda m: ids(m["In-Reply-To"]) == mid
                                                     and ".alternative." in (m["Message-ID"] or "")))
        if n3["alt"] is None:
            missing.append("the working setting never reached tom@newco.example")

# ---- print
RULE = "-" * 76
for n, title, sender, human in DEMO:
    s = state[n]
    print()
    print(RULE)
    tagged = s["tagged"]
    print("%d. %s" % (n, title))
    if tagged is None:
        print("   NOT DELIVERED (see var/maillog)")
        continue
    print("   from %s: \"%s\"" % (tagged["From"], tagged["Subject"]))
    tags = [(h, tagged[h]) for h in ("X-Helpgate-Case", "X-Helpgate-Urgency", "X-Helpgate-Tier",
                                     "X-Helpgate-Category", "X-Helpgate-SLA-Due", "X-Helpgate-Auto")
            if tagged[h] is not None]
    print("   delivered to var/mail/support@example.com/ with:")
    for h, v in tags:
        print("     %-20s %s" % (h + ":", v))
    if tagged["X-Helpgate-Reasons"]:
        print("     %-20s %s" % ("X-Helpgate-Reasons:", " ".join(str(tagged["X-Helpgate-Reasons"]).split())))
    if not human:
        print("   machine mail: no case, no acknowledgement")
        continue
    ack = s.get("ack")
    if ack is None:
        print("   acknowledgement: none arrived")
        continue
    print("   the client got, in var/mail/%s/:" % sender)
    print("     Subject: %s" % ack["Subject"])
    for line in [r for r in body(ack) if r][:5]:
        print("     | %s" % line)
    if n == 3 and s.get("case"):
        dg = s["case"]["diagnoses"][0]
        print("   diagnosis (%s, settings from the %s): %s:%s %s -> verdict %s"
              % ("%d ms" % dg["duration_ms"], dg["source"], dg["host"], dg["port"], dg["security"],
                 dg["verdict"]))
        advice = dg.get("report", {}).get("advice") or ""
        if advice:
            print("     advice to staff: %s" % advice)
        alt = dg.get("alternative")
        if alt:
            print("     works instead: %s:%s %s%s" % (alt["host"], alt["port"], alt["security"],
                                                  ", verified with the customer's password" if alt.get("verified") else ""))
        if s.get("alt") is not None:
            a = s["alt"]
            print("   and then sent the client the working setting (\"%s\"):" % a["Subject"])
            for line in [r for r in body(a) if r and ("Port" in r or "server" in r.lower() or "Security" in r)][:4]:
                print("     | %s" % line.strip())
print()
print(RULE)
if missing:
    print("missing after %d s:" % timeout)
    for m in missing:
        print("  - " + m)
    sys.exit(1)
