#include "timers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "sla.h"
#include "xalloc.h"


static enum store_rc
timers_add(struct store *s, long long case_id, const char *kind, long long due)
{
	struct event_rec e;
	enum store_rc rc;

	memset(&e, 0, sizeof(e));
	e.case_id = case_id;
	snprintf(e.kind, sizeof(e.kind), "%s", kind);
	e.due = due;
	rc = store_event_add(s, &e);
	return rc == STORE_EXISTS ? STORE_OK : rc;
}

enum store_rc
timers_schedule(struct ack_ctx *a, struct store *s, const struct case_rec *c, time_t now)
{
	const struct config *cfg = ack_config(a);
	time_t warn = sla_point(cfg, c->tier, c->urgency, SLA_FIRST_RESPONSE, (time_t)c->created,
	    cfg->warn_at_pct, 0);
	enum store_rc rc;
	char kind[32];

	(void)now;
	if (strcmp(c->status, "resolved") == 0)
		return STORE_OK;
	if ((rc = timers_add(s, c->id, "first-warning", warn)) != STORE_OK ||
	    (rc = timers_add(s, c->id, "first-breach", c->first_due)) != STORE_OK)
		return rc;
	for (size_t i = 0; i < cfg->escalation_count; i++) {
		const struct escalation *e = &cfg->escalations[i];

		time_t base = e->after_warning ? warn : (time_t)c->first_due;

		/* after=breach means at the breach itself, even when it falls at
		 * closing time (adding nothing on a business clock would move
		 * it to the next opening). */
		/* On a business clock "+1d" is one business day, as in SLA lines. */
		long offset = sla_clock(cfg, c->urgency) == CONFIG_CLOCK_24X7 ? e->offset :
		    e->offset_span.weeks * cfg->business_week_len +
		    e->offset_span.days * cfg->business_day_len + e->offset_span.seconds;

		snprintf(kind, sizeof(kind), "escalate-%d", e->level);
		if ((rc = timers_add(s, c->id, kind, offset == 0 ? base :
		    sla_clock_add(cfg, c->urgency, base, offset))) != STORE_OK)
			return rc;
	}
	/* A case already waiting for the client gets its resolution timers
	 * paused; the client's next mail sets them. */
	if ((rc = timers_add(s, c->id, "resolve-warning", c->paused_at ? TIMERS_PAUSED :
	    sla_point(cfg, c->tier, c->urgency, SLA_RESOLUTION, (time_t)c->created,
	    cfg->warn_at_pct, (long)c->paused_total))) != STORE_OK)
		return rc;
	if ((rc = timers_add(s, c->id, "resolve-breach",
	    c->paused_at ? TIMERS_PAUSED : c->resolve_due)) != STORE_OK)
		return rc;
	/* A critical case that lands just before the business day closes must
	 * not wait for the morning unnoticed. */
	if (c->urgency <= 2 && cfg->on_call_address != NULL) {
		time_t close = sla_next_close(cfg, (time_t)c->created);

		if (close != 0 && close - (time_t)c->created <= cfg->end_of_day_window)
			rc = timers_add(s, c->id, "end-of-day", c->created);
	}
	return rc;
}

/* "in 25 min" / "2 h 5 min ago" */
static void
timers_span(long long secs, char *out, size_t outlen)
{
	long long a = secs < 0 ? -secs : secs;

	if (a >= 3600)
		snprintf(out, outlen, "%s%lld h %lld min%s", secs < 0 ? "" : "in ", a / 3600,
		    (a % 3600) / 60, secs < 0 ? " ago" : "");
	else
		snprintf(out, outlen, "%s%lld min%s", secs < 0 ? "" : "in ", (a + 59) / 60,
		    secs < 0 ? " ago" : "");
}

struct timers_batch {
	struct event_rec	*items;
	size_t			 count;
};

static int
timers_collect(const struct event_rec *e, void *arg)
{
	struct timers_batch *b = arg;

	b->items = xrealloc(b->items, (b->count + 1) * sizeof(*b->items));
	b->items[b->count++] = *e;
	return 0;
}

/* One event, one transaction. */
static enum store_rc
timers_fire(struct ack_ctx *a, struct store *s, const struct event_rec *e, time_t now)
{
	const struct config *cfg = ack_config(a);
	struct case_rec *c = xmalloc(sizeof(*c));
	struct outbox_rec o;
	char event[200], span[64], err[256], note[128];
	const char *cancel = NULL;
	const char *recipient = cfg->notice_address ? cfg->notice_address : cfg->escalation_address;
	int escalate = strncmp(e->kind, "escalate-", 9) == 0;
	int end_of_day = strcmp(e->kind, "end-of-day") == 0;
	int first = strncmp(e->kind, "first-", 6) == 0 || escalate || end_of_day;
	int breach = strstr(e->kind, "breach") != NULL || escalate;
	long long deadline;
	enum store_rc rc;

	memset(&o, 0, sizeof(o));
	struct event_rec now_e;

	if ((rc = store_begin(s)) != STORE_OK)
		goto out;
	/* The batch was read outside this transaction: a staff command may
	 * have fired, cancelled or paused the event meanwhile. */
	if ((rc = store_event_get(s, e->id, &now_e)) != STORE_OK)
		goto fail;
	if (now_e.fired != 0 || now_e.due > (long long)now) {
		store_rollback(s);
		goto out;
	}
	if ((rc = store_case_get(s, e->case_id, c)) != STORE_OK)
		goto fail;
	if (!first && c->paused_at) {
		/* Waiting for the client: the resolution clock stands. */
		rc = store_event_reschedule(s, c->id, e->kind, TIMERS_PAUSED);
		if (rc != STORE_OK || (rc = store_commit(s)) != STORE_OK)
			goto fail;
		goto out;
	}
	deadline = first ? c->first_due : c->resolve_due;
	if (escalate) {
		recipient = NULL;
		for (size_t i = 0; i < cfg->escalation_count; i++)
			if (cfg->escalations[i].level == atoi(e->kind + 9))
				recipient = cfg->escalations[i].to;
	} else if (end_of_day) {
		recipient = cfg->on_call_address;
	}
	if (strcmp(c->status, "resolved") == 0)
		cancel = "case resolved";
	else if (first && c->first_response_at)
		cancel = "answered";
	else if (!breach && !end_of_day && deadline <= now)
		cancel = "superseded by the breach";
	if (cancel == NULL && recipient == NULL)
		cancel = "nobody to tell (no NoticeAddress, EscalationAddress or to=)";

	if (cancel != NULL) {
		rc = store_event_mark(s, e->id, -1, cancel);
	} else {
		const char *headline;

		timers_span(deadline - now, span, sizeof(span));
		if (end_of_day) {
			snprintf(event, sizeof(event), "A P%d case arrived just before the business "
			    "day closes; its first response is due %s.", c->urgency, span);
			headline = "end of day";
		} else if (escalate) {
			snprintf(event, sizeof(event), "Escalation level %s: the first response "
			    "was due %s and nobody has answered.", e->kind + 9, span);
			headline = "escalation";
		} else {
			snprintf(event, sizeof(event), "%s %s: %s %s.",
			    first ? "First response" : "Resolution",
			    breach ? "deadline missed" : "deadline near",
			    breach ? "it was due" : "it is due", span);
			headline = breach ? (first ? "first response overdue" : "resolution overdue")
			    : (first ? "first response due soon" : "resolution due soon");
		}
		struct ack_notice_spec n = {
			.template_kind = "notice-sla", .tag = e->kind, .headline = headline,
			.recipient = recipient, .event = event, .deadline = deadline,
		};
		if (ack_notice(a, c, &n, now, &o, err, sizeof(err)) != 0) {
			log_warnx("HG-%lld: cannot render the %s notice: %s", c->id, e->kind, err);
			rc = store_event_mark(s, e->id, -1, "template error");
		} else {
			rc = store_outbox_add(s, &o);
			if (rc == STORE_OK || rc == STORE_EXISTS) {
				snprintf(note, sizeof(note), "notice to %s", recipient);
				/* fired holds when; 0 would mean pending */
				rc = store_event_mark(s, e->id, now ? (long long)now : 1, note);
			}
			/* A missed P1 first response is an incident for the
			 * customer: their next mail comes first for weeks. */
			if (rc == STORE_OK && c->urgency == 1 && strcmp(e->kind, "first-breach") == 0)
				rc = store_customer_watch(s, c->client, c->tier,
				    (long long)now + cfg->incident_watch_days * 86400LL, (long long)now);
		}
	}
	if (rc != STORE_OK)
		goto fail;
	if ((rc = store_commit(s)) != STORE_OK)
		goto fail;
	if (cancel)
		log_info("HG-%lld: %s cancelled (%s)", c->id, e->kind, cancel);
	else
		log_info("HG-%lld: %s fired; notice to <%s>", c->id, e->kind, recipient);
	goto out;
fail:
	store_rollback(s);
out:
	outbox_rec_clear(&o);
	free(c);
	return rc;
}

int
timers_run(struct ack_ctx *a, struct store *s, time_t now, int limit)
{
	struct timers_batch b = { NULL, 0 };
	enum store_rc rc;
	int done = 0;

	rc = store_event_due(s, now, limit, timers_collect, &b);
	if (rc != STORE_OK) {
		free(b.items);
		if (rc != STORE_BUSY)
			log_warnx("reading due SLA events: %s: %s", store_strerror(rc), store_errmsg(s));
		return -1;
	}
	for (size_t i = 0; i < b.count; i++) {
		if ((rc = timers_fire(a, s, &b.items[i], now)) != STORE_OK) {
			if (rc != STORE_BUSY)
				log_warnx("HG-%lld: firing %s: %s: %s", b.items[i].case_id,
				    b.items[i].kind, store_strerror(rc), store_errmsg(s));
			break;
		}
		done++;
	}
	free(b.items);
	return done ? done : (rc == STORE_OK ? 0 : -1);
}
