/*
 * case_ops - the steps of a case's life (see case_ops.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "case_ops.h"
#include "intake.h"
#include "sla.h"
#include "timers.h"

static enum case_op_rc
said(struct case_op *op, enum case_op_rc r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum case_op_rc
said(struct case_op *op, enum case_op_rc r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(op->said, sizeof(op->said), fmt, ap);
	va_end(ap);
	return r;
}

static enum case_op_rc
failed(struct case_op *op, enum store_rc rc, const char *what)
{
	op->rc = rc;
	return said(op, CASE_OP_FAILED, "the case store failed %s: %s", what, store_strerror(rc));
}

enum case_op_rc
case_op_assign(struct case_op *op, const struct case_rec *c, const char *addr)
{
	char a[320];
	enum store_rc rc;

	snprintf(a, sizeof(a), "%s", addr);
	config_normalize_address(a);
	if (strchr(a, '@') == NULL || strpbrk(a, " \t<>\"") != NULL)
		return said(op, CASE_OP_REFUSED, "\"%s\" is not a mail address", addr);
	if ((rc = store_case_assign(op->s, c->id, a, op->now)) != STORE_OK)
		return failed(op, rc, "assigning");
	return said(op, CASE_OP_DONE, "HG-%lld: assigned to %s", c->id, a);
}

enum case_op_rc
case_op_wait(struct case_op *op, const struct case_rec *c)
{
	enum store_rc rc;

	if (strcmp(c->status, "open") != 0)
		return said(op, CASE_OP_REFUSED, "HG-%lld is %s, not open", c->id, c->status);
	/* The resolution timers stop with the clock; the client's next mail
	 * (or case reopen) sets them again. */
	rc = store_case_set_status(op->s, c->id, "waiting", op->now, op->now, c->resolve_due, 0,
	    c->paused_total);
	if (rc == STORE_OK)
		rc = store_event_reschedule(op->s, c->id, "resolve-warning", TIMERS_PAUSED);
	if (rc == STORE_OK)
		rc = store_event_reschedule(op->s, c->id, "resolve-breach", TIMERS_PAUSED);
	if (rc != STORE_OK)
		return failed(op, rc, "pausing the case");
	return said(op, CASE_OP_DONE, "HG-%lld: waiting for the client; the resolution clock is "
	    "paused", c->id);
}

enum case_op_rc
case_op_reopen(struct case_op *op, const struct case_rec *c)
{
	struct intake_input in;
	enum store_rc rc;

	if (strcmp(c->status, "open") == 0)
		return said(op, CASE_OP_DONE, "HG-%lld is already open", c->id);
	memset(&in, 0, sizeof(in));
	in.cfg = op->cfg;
	in.store = op->s;
	in.received = (time_t)op->now;
	if (strcmp(c->status, "waiting") == 0) {
		rc = intake_resume(&in, c);
	} else {
		/* Timers that resolving cancelled and whose time has not come
		 * run again; those that passed meanwhile stay cancelled. */
		rc = store_case_set_status(op->s, c->id, "open", op->now, 0, c->resolve_due, 0,
		    c->paused_total);
		if (rc == STORE_OK)
			rc = store_event_rearm(op->s, c->id, "case resolved", op->now);
	}
	if (rc != STORE_OK)
		return failed(op, rc, "reopening");
	return said(op, CASE_OP_DONE, "HG-%lld: open again", c->id);
}

enum case_op_rc
case_op_resolve(struct case_op *op, const struct case_rec *c, const char *cause,
    const char *lesson, int incident)
{
	long long total = c->paused_total, due = c->resolve_due;
	char err[512];
	enum store_rc rc;

	if (cause == NULL || *cause == '\0' || lesson == NULL || *lesson == '\0')
		return said(op, CASE_OP_REFUSED, "a cause and a lesson are required: what broke, "
		    "and what we learn from it");
	if (strcmp(c->status, "resolved") == 0)
		return said(op, CASE_OP_REFUSED, "HG-%lld is already resolved (reopen it first)",
		    c->id);
	/* A case resolved while waiting for the client: the wait counts as a
	 * pause, so the resolution is measured against the moved deadline. */
	if (c->paused_at) {
		long stood = sla_clock_seconds(op->cfg, c->urgency, (time_t)c->paused_at,
		    (time_t)op->now);

		if (stood > 0) {
			total += stood;
			due = sla_clock_add(op->cfg, c->urgency, (time_t)c->resolve_due, stood);
		}
	}
	rc = store_case_set_status(op->s, c->id, "resolved", op->now, 0, due, op->now, total);
	if (rc == STORE_OK && c->paused_at)
		rc = store_pause_add(op->s, c->id, c->paused_at, op->now);
	if (rc == STORE_OK)
		rc = store_event_cancel_pending(op->s, c->id, "case resolved");
	if (rc == STORE_OK)
		rc = store_case_set_resolution(op->s, c->id, cause, lesson, incident);
	if (rc == STORE_OK && incident)
		rc = store_customer_watch(op->s, c->client, c->tier,
		    op->now + op->cfg->incident_watch_days * 86400LL, op->now);
	if (rc != STORE_OK)
		return failed(op, rc, "resolving");
	if (op->ack != NULL && ack_close_loop(op->ack, op->s, c, (time_t)op->now, err,
	    sizeof(err)) != 0)
		return said(op, CASE_OP_FAILED, "HG-%lld: the message to the client: %s", c->id, err);
	return said(op, CASE_OP_DONE, "HG-%lld: resolved%s%s", c->id,
	    op->ack != NULL ? "; the client is asked to confirm it works" : "",
	    incident ? "; the customer is under incident watch" : "");
}

enum case_op_rc
case_op_urgency(struct case_op *op, const struct case_rec *c, int urgency)
{
	time_t first, resolve;
	enum store_rc rc;

	if (urgency < 1 || urgency > 4)
		return said(op, CASE_OP_REFUSED, "urgency is P1, P2, P3 or P4");
	if (urgency == c->urgency)
		return said(op, CASE_OP_DONE, "HG-%lld is P%d already", c->id, urgency);
	first = sla_deadline(op->cfg, c->tier, urgency, SLA_FIRST_RESPONSE, (time_t)c->created);
	resolve = sla_deadline(op->cfg, c->tier, urgency, SLA_RESOLUTION, (time_t)c->created);
	if (c->paused_total > 0)
		resolve = sla_clock_add(op->cfg, urgency, resolve, (long)c->paused_total);
	rc = store_case_set_urgency(op->s, c->id, urgency, first, resolve, op->now);
	/* the pending timers follow the new deadlines (fired ones stay fired) */
	if (rc == STORE_OK)
		rc = store_event_reschedule(op->s, c->id, "first-warning",
		    sla_point(op->cfg, c->tier, urgency, SLA_FIRST_RESPONSE, (time_t)c->created,
		    op->cfg->warn_at_pct, 0));
	if (rc == STORE_OK)
		rc = store_event_reschedule(op->s, c->id, "first-breach", first);
	if (rc == STORE_OK && !c->paused_at)
		rc = store_event_reschedule(op->s, c->id, "resolve-warning",
		    sla_point(op->cfg, c->tier, urgency, SLA_RESOLUTION, (time_t)c->created,
		    op->cfg->warn_at_pct, (long)c->paused_total));
	if (rc == STORE_OK && !c->paused_at)
		rc = store_event_reschedule(op->s, c->id, "resolve-breach", resolve);
	if (rc != STORE_OK)
		return failed(op, rc, "changing the urgency");
	return said(op, CASE_OP_DONE, "HG-%lld: P%d -> P%d; first response due by the new "
	    "deadline", c->id, c->urgency, urgency);
}

enum case_op_rc
case_op_tier(struct case_op *op, const struct case_rec *c, const char *tier)
{
	const struct tier_policy *t = config_tier(op->cfg, tier);
	struct customer cu;
	enum store_rc rc;

	if (t == NULL)
		return said(op, CASE_OP_REFUSED, "unknown tier \"%s\"", tier);
	memset(&cu, 0, sizeof(cu));
	/* a domain's record lends its watch; the client gets a record of
	 * their own, so the rest of the domain keeps its tier */
	rc = store_customer_lookup(op->s, c->client, &cu);
	if (rc != STORE_OK && rc != STORE_NOTFOUND)
		return failed(op, rc, "reading the customer");
	snprintf(cu.address, sizeof(cu.address), "%s", c->client);
	snprintf(cu.tier, sizeof(cu.tier), "%s", t->name);
	if (cu.created == 0)
		cu.created = op->now;
	if ((rc = store_customer_put(op->s, &cu)) != STORE_OK)
		return failed(op, rc, "recording the tier");
	return said(op, CASE_OP_DONE, "%s: tier %s from the next case on", c->client, t->name);
}
