/*
 * timers - keep the SLA promise: warn before a deadline, say when it is
 * missed, escalate along the chain, and remember a customer who just went
 * through an incident.
 *
 * Every timer is a row in the store's events table, created once when the
 * worker first decides about a case (timers_schedule, inside that decision's
 * transaction) and fired once (timers_run): a restart or a day of downtime
 * never loses one and never sends one twice.  After downtime, an event whose
 * successor is also due (a warning when the breach has come too) is marked
 * superseded instead of sent, so staff get the news, not the history.
 * Whether an event still matters is decided when it fires: a first-response
 * event of an answered case, or a resolution event of a resolved one, is
 * cancelled then, so answering a case costs no scan of the timers.
 */
#ifndef HG_TIMERS_H
#define HG_TIMERS_H

#include <time.h>

#include "ack.h"
#include "sla.h"
#include "store.h"

#define TIMERS_PAUSED	((long long)1 << 62)	/* due of an event whose clock is paused */

enum store_rc timers_schedule(struct ack_ctx *a, struct store *s, const struct case_rec *c,
	    time_t now);
/* Fires at most limit due events; returns how many it handled, -1 on a store failure. */
int	timers_run(struct ack_ctx *a, struct store *s, time_t now, int limit);

#endif
