#include "outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "xalloc.h"

#define BACKOFF_FIRST	15
#define BACKOFF_MAX	300	/* a relay back after an outage is used within 5 minutes */
#define OUTBOX_SAVE_TRIES	10
#define OUTBOX_RELAY_DOWN	1

long
outbox_backoff(int attempts)
{
	long wait = BACKOFF_FIRST;

	for (int i = 1; i < attempts && wait < BACKOFF_MAX; i++)
		wait *= 2;
	return wait < BACKOFF_MAX ? wait : BACKOFF_MAX;
}

struct outbox_batch {
	struct outbox_rec	*items;
	size_t			 count;
};

static int
outbox_collect(struct outbox_rec *o, void *arg)
{
	struct outbox_batch *b = arg;

	b->items = xrealloc(b->items, (b->count + 1) * sizeof(*b->items));
	b->items[b->count] = *o;
	o->content = NULL;	/* ownership moves to the batch */
	b->count++;
	return 0;
}

/* Writes o's new state; a failure here is logged, and the row is found
 * again on the next pass. */
static enum store_rc
outbox_save(struct store *s, struct outbox_rec *o)
{
	enum store_rc rc = store_outbox_update(s, o);

	if (rc != STORE_OK)
		log_warnx("outbox #%lld: recording state %s: %s: %s", o->id, o->state,
		    store_strerror(rc), store_errmsg(s));
	return rc;
}

/* A failed write of a row's new state is retried: a row left "sending"
 * after the relay took it is the one way left to send a message twice. */
static enum store_rc
outbox_save_hard(struct store *s, struct outbox_rec *o)
{
	enum store_rc rc = STORE_BUSY;

	for (int i = 0; i < OUTBOX_SAVE_TRIES && (rc = outbox_save(s, o)) == STORE_BUSY; i++)
		;
	return rc;
}

/* OUTBOX_RELAY_DOWN: the relay could not be reached; stop the batch. */
static int
outbox_send_one(struct store *s, struct relay *r, struct outbox_rec *o, time_t now)
{
	char err[256] = "";
	enum relay_result res;
	long reply;

	/* The relay's milter saw this message whole on an earlier attempt
	 * that ended without a verdict (a crash, a lost final reply): the
	 * relay has it. */
	if (o->relay_seen) {
		snprintf(o->state, sizeof(o->state), "sent");
		o->sent_at = now;
		log_info("HG-%lld: %s to <%s> was already taken by the relay; not sent again "
		    "outbox=%lld result=sent", o->case_id, o->kind, o->recipient, o->id);
		return outbox_save_hard(s, o) == STORE_OK ? 0 : -1;
	}
	/* store_outbox_claim already made the row "sending", counted the
	 * attempt and leased it until now + OUTBOX_SENDING_GRACE: should this
	 * worker die from here on, the row waits out the grace period before
	 * another worker tries, long enough for the relay's milter to have
	 * recorded what it saw. */
	res = relay_send(r, o->envelope_from, o->recipient, o->content, err, sizeof(err));
	reply = relay_last_reply(r);
	now = clock_now();
	o->relay_seen = -1;	/* leave whatever the milter wrote meanwhile */
	switch (res) {
	case RELAY_SENT:
		snprintf(o->state, sizeof(o->state), "sent");
		o->sent_at = now;
		o->last_error[0] = '\0';
		log_info("HG-%lld: %s sent to <%s> (attempt %d) outbox=%lld result=sent", o->case_id,
		    o->kind, o->recipient, o->attempts, o->id);
		return outbox_save_hard(s, o) == STORE_OK ? 0 : -1;
	case RELAY_TEMPFAIL:
		snprintf(o->last_error, sizeof(o->last_error), "%s", err);
		/* A refusal the relay stated means it does not have the
		 * message, whatever its milter saw. */
		if (reply >= 400)
			o->relay_seen = 0;
		if (now - o->created > OUTBOX_LIFETIME) {
			snprintf(o->state, sizeof(o->state), "failed");
			log_warnx("HG-%lld: %s to <%s> given up after %d attempts: %s "
			    "outbox=%lld result=failed", o->case_id, o->kind, o->recipient,
			    o->attempts, err, o->id);
		} else {
			snprintf(o->state, sizeof(o->state), "pending");
			o->next_attempt = now + outbox_backoff(o->attempts);
			log_warnx("HG-%lld: %s to <%s> deferred (attempt %d, next in %lds): %s "
			    "outbox=%lld result=deferred", o->case_id, o->kind, o->recipient,
			    o->attempts, (long)(o->next_attempt - now), err, o->id);
		}
		if (outbox_save_hard(s, o) != STORE_OK)
			return -1;
		return reply == 0 ? OUTBOX_RELAY_DOWN : 0;
	case RELAY_PERMFAIL:
		snprintf(o->state, sizeof(o->state), "failed");
		snprintf(o->last_error, sizeof(o->last_error), "%s", err);
		o->relay_seen = 0;
		log_warnx("HG-%lld: %s to <%s> refused by the relay: %s outbox=%lld result=failed",
		    o->case_id, o->kind, o->recipient, err, o->id);
		return outbox_save_hard(s, o) == STORE_OK ? 0 : -1;
	}
	return -1;
}

int
outbox_run(struct store *s, struct relay *r, time_t now, int limit)
{
	struct outbox_batch batch = { NULL, 0 };
	enum store_rc rc;
	int done = 0;

	if (r == NULL)
		return 0;
	/* Claimed, not just read: with several workers on one database each
	 * row goes to exactly one of them. */
	rc = store_outbox_claim(s, now, now + OUTBOX_SENDING_GRACE, limit, outbox_collect, &batch);
	if (rc != STORE_OK) {
		if (rc != STORE_BUSY)
			log_warnx("reading the outbox: %s: %s", store_strerror(rc), store_errmsg(s));
		return -1;
	}
	int stop = 0;

	for (size_t i = 0; i < batch.count; i++) {
		if (!stop) {
			int r1 = outbox_send_one(s, r, &batch.items[i], now);
			if (r1 == 0) {
				done++;
			} else {
				/* The relay is down (the rest would wait a
				 * connect timeout each) or the store failed. */
				stop = 1;
				if (r1 == OUTBOX_RELAY_DOWN)
					done++;
				else
					rc = STORE_ERROR;
			}
		}
		outbox_rec_clear(&batch.items[i]);
	}
	free(batch.items);
	return rc == STORE_OK || done ? done : -1;
}
