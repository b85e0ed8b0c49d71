/*
 * digest - the open queue, mailed to staff on business days at the times
 * of each "Digest ADDR at=09:00,17:30" line, as helpgatectl sla sees it:
 * breached first, then due within the hour, then the rest by deadline;
 * cases waiting for the client apart.  Each case with its tier, urgency,
 * category, assignee, time left, the last diagnosis verdict, an incident
 * or watch mark, and a mailto: link that opens a mail to the support
 * address with the case's tag in the subject, ready for a command.
 *
 * One letter, multipart/alternative: plain text for a terminal client
 * (lines of at most 78 characters) and HTML for Thunderbird, Outlook and
 * Gmail (tables and inline styles only, no scripts, no external images;
 * urgency and time left in colour and in words).  Nothing when the queue
 * is empty, unless DigestEmpty yes.
 *
 * Exactly once per slot: the letter's Message-ID is made from the slot
 * and the address, and the outbox holds one row per Message-ID; a slot is
 * sent within DIGEST_LATE of its time or not at all (after downtime staff
 * get the next one, not the ones they missed).
 */
#ifndef HG_DIGEST_H
#define HG_DIGEST_H

#include <time.h>

#include "ack.h"
#include "buf.h"
#include "config.h"
#include "store.h"

#define DIGEST_LATE	(2 * 3600)

/* Renders the queue at now into text and html (either may be NULL);
 * *open gets the number of open cases.  STORE_OK or the store's error. */
enum store_rc digest_render(const struct config *cfg, struct store *s, time_t now,
	    struct buf *text, struct buf *html, size_t *open);

/* Puts each digest that is due and not yet sent in the outbox; returns how
 * many, -1 on a store failure. */
int	digest_run(struct ack_ctx *a, struct store *s, time_t now);

/* The latest slot of sc at or before now (business days only for a
 * digest), or 0 when there is none within DIGEST_LATE (a day for a
 * Report). */
time_t	digest_slot(const struct config *cfg, const struct schedule *sc, time_t now);

/* Shared with report.c, letters on a calendar: whether this process has
 * handled (kind, to, slot) already, and remembering that it has. */
int	schedule_done(const char *kind, const char *to, time_t slot);
void	schedule_mark_done(const char *kind, const char *to, time_t slot);
/* Puts the letter for one slot in the outbox, with a Message-ID made from
 * kind, the slot and sc->to: STORE_EXISTS when it is there already. */
struct compose_inline;
enum store_rc schedule_send(struct ack_ctx *a, struct store *s, const struct schedule *sc,
	    time_t slot, time_t now, const char *kind, const char *subject, const char *text,
	    const char *html, const struct compose_inline *inl, size_t ninl);

#endif
