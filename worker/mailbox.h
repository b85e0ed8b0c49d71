/*
 * mailbox - the worker reconciles the support mailbox (issue 14).
 *
 * The MTA accepts support mail when helpgate-milter is stopped, crashed or
 * too slow (milter_default_action = accept): that mail is delivered
 * untagged and the milter never recorded it.  Every MailboxPoll the worker
 * reads each Mailbox it is given ("maildir:PATH": new/ and cur/), and each
 * message not read by an earlier pass (store_mailbox_seen, keyed by the
 * Maildir file's unique part) is looked at: its headers and the first
 * MaxBodyScan bytes.  A message the store already has (its Message-ID) or
 * that carries a valid X-Helpgate-Seal (helpgate's own letters) is left
 * alone; any other goes through intake_process() like a spool replay, with
 * via "mailbox", so that `helpgatectl case show` says the milter did not
 * see it, and one line is logged per such message: each is a gap in the
 * deployment.
 *
 * The mailbox is only read, never changed.
 */
#ifndef HG_MAILBOX_H
#define HG_MAILBOX_H

#include <signal.h>
#include <time.h>

#include "ack.h"
#include "classify.h"
#include "config.h"
#include "store.h"

/* One pass over every Mailbox of cfg.  Returns how many messages it
 * recorded (cases opened or joined), or -1 when the store failed (what was
 * not recorded is read again on the next pass).  Stops early when *stop
 * becomes non-zero. */
int	mailbox_run(const struct config *cfg, const struct classify_rules *rules,
    const struct ack_ctx *ack, struct store *store, time_t now,
    volatile sig_atomic_t *stop);

/* Parses the date of the first Received header (after its last ';');
 * 0 when there is none or it does not parse.  For tests. */
time_t	mailbox_received_time(const char *value);

#endif
