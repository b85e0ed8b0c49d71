/*
 * outbox - deliver what ack.c (and later the SLA timers) queued, exactly once.
 *
 * For each due row: mark it "sending" and commit, hand it to the relay, then
 * record the verdict (sent / retry later with backoff / failed for good).
 * No transaction is held while the relay talks, so the milter, which writes
 * to the same store as the message passes through the relay, never waits on
 * the worker.
 *
 * After a crash a row may be left in "sending", due again only after
 * OUTBOX_SENDING_GRACE.  If the relay's milter saw the message whole
 * (relay_seen, see store_outbox_relay_seen) the relay has it and the row is
 * marked sent without a second copy; otherwise the message never reached
 * the relay and is sent again.  The same holds after an attempt that ended
 * without the relay's verdict (a timeout after the final dot); a refusal
 * the relay stated (4xx, 5xx) clears relay_seen.  When the relay cannot be
 * reached at all, the rest of the batch waits for the next pass.
 */
#ifndef HG_OUTBOX_H
#define HG_OUTBOX_H

#include <time.h>

#include "relay.h"
#include "store.h"

#define OUTBOX_LIFETIME	(5 * 86400)	/* then a temporary failure is final */
#define OUTBOX_SENDING_GRACE	30	/* after a crash mid-send, wait this long before retrying */

/* Sends at most limit due messages; returns how many it handled, or -1 when
 * the store failed. relay may be NULL (no Relay configured): nothing is sent. */
int	outbox_run(struct store *s, struct relay *r, time_t now, int limit);

/* Seconds to wait after the n-th failed attempt. */
long	outbox_backoff(int attempts);

#endif
