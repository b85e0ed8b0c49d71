/*
 * ctl_stats - helpgatectl stats: what helpgate did since a date, in numbers.
 *
 * Messages tagged (by urgency and category), degraded mail, acknowledgements
 * sent and skipped (by reason), SLA met (first response and resolution, by
 * urgency), diagnoses (by verdict) and the outbox backlog.  The counting is
 * the store's (store_stats); the SLA verdict per case is the one report uses
 * (report_outcome), so the two commands never disagree.  Degraded mail that
 * the worker has not replayed yet is still a file in SpoolDirectory, and is
 * counted there.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "clock.h"
#include "config.h"
#include "json.h"
#include "spool.h"
#include "store.h"
#include "ctl.h"
#include "report.h"

#define STATS_NAME_WIDTH	24	/* text table: the label column */

struct stats_sla {
	long		first_met, first_missed;
	long		resolve_met, resolve_missed;
};

struct stats_run {
	long long		 since, now;
	struct stats_sla	 sla[5];	/* [1]..[4] by urgency, [0] all */
};

/* --since: an ISO 8601 date or time (clock_parse_iso8601), or N followed by
 * m, h, d or w for that long before now.  Returns 0 or -1. */
static int
stats_parse_since(const char *arg, long long now, long long *since)
{
	static const struct { char unit; long long secs; } units[] = {
		{ 'm', 60 }, { 'h', 3600 }, { 'd', 86400 }, { 'w', 7 * 86400 },
	};
	char *end;
	time_t t;
	long v;

	if (isdigit((unsigned char)arg[0]) && strchr(arg, '-') == NULL) {
		errno = 0;
		v = strtol(arg, &end, 10);
		if (errno != 0 || end == arg || end[0] == '\0' || end[1] != '\0' || v < 0)
			return -1;
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			if (units[i].unit != end[0])
				continue;
			if (v > CTL_MAX_WATCH_DAYS * 86400LL / units[i].secs)
				return -1;	/* ten years is plenty, and cannot overflow */
			*since = now - v * units[i].secs;
			return 0;
		}
		return -1;
	}
	if (clock_parse_iso8601(arg, &t) != 0 || t < CTL_TIME_MIN || t > CTL_TIME_MAX)
		return -1;
	*since = t;
	return 0;
}

static int
stats_case(const struct case_rec *c, void *arg)
{
	struct stats_run *r = arg;
	enum report_outcome first, resolve;

	if (c->created < r->since || c->urgency < 1 || c->urgency > 4)
		return 0;
	report_outcome(c, r->now, &first, &resolve);
	/* Its urgency's row and the row for all. */
	for (int k = 0; k < 2; k++) {
		struct stats_sla *g = &r->sla[k ? c->urgency : 0];

		g->first_met += first == REPORT_MET;
		g->first_missed += first == REPORT_MISSED;
		g->resolve_met += resolve == REPORT_MET;
		g->resolve_missed += resolve == REPORT_MISSED;
	}
	return 0;
}

/* Degraded mail still waiting in the spool: NAME.msg files whose name
 * starts with the time the MTA accepted it (shared/spool.h).  A directory
 * that does not exist holds nothing. */
static long long
stats_spooled(const char *dir, long long since)
{
	DIR *d;
	struct dirent *e;
	long long n = 0;

	if (dir == NULL || (d = opendir(dir)) == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		long long received;

		if (spool_is_name(e->d_name) && spool_name_time(e->d_name, &received) == 0 &&
		    received >= since)
			n++;
	}
	closedir(d);
	return n;
}

static long long
stats_sum(const struct store_count *list, size_t n)
{
	long long sum = 0;

	for (size_t i = 0; i < n; i++)
		sum += list[i].n;
	return sum;
}

static long long
stats_find(const struct store_count *list, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i].name, name) == 0)
			return list[i].n;
	return 0;
}

static void
stats_json_counts(struct buf *b, const char *key, const struct store_count *list, size_t n)
{
	json_key(b, key);
	json_object_begin(b);
	for (size_t i = 0; i < n; i++)
		json_kv_int(b, list[i].name[0] ? list[i].name : "-", list[i].n);
	json_object_end(b);
}

static void
stats_json_pct(struct buf *b, const char *key, long met, long missed)
{
	if (met + missed > 0)
		json_kv_int(b, key, met * 100 / (met + missed));
	else
		json_kv_null(b, key);
}

static void
stats_json(const struct stats_run *r, const struct store_stats *st, long long spooled,
    struct buf *b)
{
	static const char *const urg[] = { "all", "P1", "P2", "P3", "P4" };

	json_object_begin(b);
	ctl_json_time(b, "since", r->since);
	ctl_json_time(b, "now", r->now);

	json_key(b, "messages");
	json_object_begin(b);
	json_kv_int(b, "total", st->messages);
	json_key(b, "by_urgency");
	json_object_begin(b);
	for (int u = 1; u <= 4; u++)
		json_kv_int(b, urg[u], st->urgency[u]);
	json_object_end(b);
	stats_json_counts(b, "by_category", st->category, st->ncategory);
	json_object_end(b);

	json_key(b, "degraded");
	json_object_begin(b);
	json_kv_int(b, "total", st->degraded + spooled);
	if (st->degraded_known)
		json_kv_int(b, "recorded", st->degraded);
	else
		json_kv_null(b, "recorded");
	json_kv_int(b, "spooled", spooled);
	json_object_end(b);

	json_key(b, "acks");
	json_object_begin(b);
	json_kv_int(b, "sent", stats_find(st->ack_state, st->nack_state, "sent"));
	json_kv_int(b, "waiting", stats_find(st->ack_state, st->nack_state, "pending") +
	    stats_find(st->ack_state, st->nack_state, "sending"));
	json_kv_int(b, "failed", stats_find(st->ack_state, st->nack_state, "failed"));
	json_kv_int(b, "skipped", stats_sum(st->ack_skip, st->nack_skip));
	stats_json_counts(b, "skipped_by_reason", st->ack_skip, st->nack_skip);
	json_object_end(b);

	json_key(b, "sla");
	json_object_begin(b);
	for (int u = 0; u <= 4; u++) {
		const struct stats_sla *g = &r->sla[u];

		json_key(b, urg[u]);
		json_object_begin(b);
		json_kv_int(b, "first_response_met", g->first_met);
		json_kv_int(b, "first_response_missed", g->first_missed);
		stats_json_pct(b, "first_response_met_pct", g->first_met, g->first_missed);
		json_kv_int(b, "resolution_met", g->resolve_met);
		json_kv_int(b, "resolution_missed", g->resolve_missed);
		stats_json_pct(b, "resolution_met_pct", g->resolve_met, g->resolve_missed);
		json_object_end(b);
	}
	json_object_end(b);

	json_key(b, "diagnoses");
	json_object_begin(b);
	json_kv_int(b, "total", stats_sum(st->verdict, st->nverdict));
	stats_json_counts(b, "by_verdict", st->verdict, st->nverdict);
	json_kv_int(b, "skipped", stats_sum(st->diag_skip, st->ndiag_skip));
	stats_json_counts(b, "skipped_by_reason", st->diag_skip, st->ndiag_skip);
	json_object_end(b);

	json_key(b, "outbox");
	json_object_begin(b);
	json_kv_int(b, "queued", st->outbox_queued);
	json_kv_int(b, "deferred", st->outbox_deferred);
	json_kv_int(b, "failed", st->outbox_failed);
	if (st->outbox_oldest)
		json_kv_int(b, "oldest_age_s", r->now - st->outbox_oldest);
	else
		json_kv_null(b, "oldest_age_s");
	json_object_end(b);
	json_object_end(b);
	buf_append_char(b, '\n');
}

/* One line of the text table: an indented label, a count, a remark. */
static void
stats_line(int indent, const char *label, long long n, const char *remark)
{
	size_t shown;

	printf("%*s", indent, "");
	shown = ctl_put_text(stdout, label[0] ? label : "-", STATS_NAME_WIDTH - (size_t)indent,
	    NULL);
	for (shown += (size_t)indent; shown < STATS_NAME_WIDTH; shown++)
		fputc(' ', stdout);
	printf(" %8lld%s%s\n", n, remark[0] ? "  " : "", remark);
}

static void
stats_lines(int indent, const struct store_count *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		stats_line(indent, list[i].name, list[i].n, "");
}

/* "93% (14/15)" or "-" when nothing was decided yet. */
static const char *
stats_pct(long met, long missed, char *out, size_t outlen)
{
	if (met + missed == 0)
		return "-";
	snprintf(out, outlen, "%ld%% (%ld/%ld)", met * 100 / (met + missed), met, met + missed);
	return out;
}

static void
stats_text(const struct stats_run *r, const struct store_stats *st, long long spooled)
{
	static const char *const urg[] = { "all", "P1", "P2", "P3", "P4" };
	char a[64], b[64], remark[96];

	printf("helpgate stats since %s (now %s)\n\n",
	    r->since ? ctl_iso(r->since, a, sizeof(a)) : "the beginning",
	    ctl_iso(r->now, b, sizeof(b)));

	stats_line(0, "messages tagged", st->messages, "");
	for (int u = 1; u <= 4; u++)
		stats_line(2, urg[u], st->urgency[u], "");
	stats_lines(2, st->category, st->ncategory);
	if (st->degraded_known)
		snprintf(remark, sizeof(remark), "(%lld recorded, %lld waiting in the spool)",
		    st->degraded, spooled);
	else
		snprintf(remark, sizeof(remark), "(waiting in the spool)");
	stats_line(0, "degraded", st->degraded + spooled, remark);

	printf("\n");
	stats_line(0, "acks sent", stats_find(st->ack_state, st->nack_state, "sent"), "");
	stats_line(0, "acks waiting", stats_find(st->ack_state, st->nack_state, "pending") +
	    stats_find(st->ack_state, st->nack_state, "sending"), "");
	stats_line(0, "acks failed", stats_find(st->ack_state, st->nack_state, "failed"), "");
	stats_line(0, "acks skipped", stats_sum(st->ack_skip, st->nack_skip), "");
	stats_lines(2, st->ack_skip, st->nack_skip);

	printf("\n%-*s %-16s %s\n", STATS_NAME_WIDTH, "SLA met", "FIRST RESPONSE", "RESOLUTION");
	for (int u = 1; u <= 4; u++) {
		const struct stats_sla *g = &r->sla[u];

		printf("  %-*s %-16s %s\n", STATS_NAME_WIDTH - 2, urg[u],
		    stats_pct(g->first_met, g->first_missed, a, sizeof(a)),
		    stats_pct(g->resolve_met, g->resolve_missed, b, sizeof(b)));
	}
	printf("  %-*s %-16s %s\n", STATS_NAME_WIDTH - 2, urg[0],
	    stats_pct(r->sla[0].first_met, r->sla[0].first_missed, a, sizeof(a)),
	    stats_pct(r->sla[0].resolve_met, r->sla[0].resolve_missed, b, sizeof(b)));

	printf("\n");
	stats_line(0, "diagnoses", stats_sum(st->verdict, st->nverdict), "");
	stats_lines(2, st->verdict, st->nverdict);
	stats_line(0, "diagnoses skipped", stats_sum(st->diag_skip, st->ndiag_skip), "");
	stats_lines(2, st->diag_skip, st->ndiag_skip);

	printf("\n");
	stats_line(0, "outbox queued", st->outbox_queued, "");
	stats_line(0, "outbox deferred", st->outbox_deferred, "");
	stats_line(0, "outbox failed", st->outbox_failed, "");
	if (st->outbox_oldest) {
		ctl_span(r->now - st->outbox_oldest, a, sizeof(a));
		printf("%-*s %8s\n", STATS_NAME_WIDTH, "outbox oldest waiting", a);
	} else {
		printf("%-*s %8s\n", STATS_NAME_WIDTH, "outbox oldest waiting", "-");
	}
}

int
ctl_cmd_stats(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv)
{
	const char *since_arg = NULL;
	int json = 0, r, ret = CTL_EXIT_OK;
	const struct ctl_opt opts[] = {
		{ "--since", &since_arg, NULL }, { "--json", NULL, &json }, { NULL, NULL, NULL },
	};
	struct store_stats st;
	struct stats_run run;
	struct config *cfg;
	struct store *s;
	enum store_rc rc;
	long long spooled;

	if ((r = ctl_parse(cmd, argc, argv, opts, NULL, 0, 0, NULL)) != 0)
		return r == CTL_HELP ? CTL_EXIT_OK : r;
	/* The config first: a time without an offset is read in Timezone. */
	if ((cfg = ctl_config(ctl)) == NULL)
		return CTL_EXIT_FAIL;
	memset(&run, 0, sizeof(run));
	run.now = clock_now();
	if (since_arg != NULL && stats_parse_since(since_arg, run.now, &run.since) != 0)
		return ctl_usage_error(cmd, "--since wants a date or time such as 2026-11-01 or "
		    "2026-11-01T09:00, or a span before now such as 7d, 24h, 30m or 2w, not \"%s\"",
		    since_arg);
	if ((s = ctl_store(ctl)) == NULL)
		return CTL_EXIT_FAIL;
	if ((rc = store_stats(s, run.since, &st)) != STORE_OK) {
		store_stats_clear(&st);
		return ctl_store_failed(ctl, "counting", rc);
	}
	if ((rc = store_case_list(s, 0, stats_case, &run)) != STORE_OK) {
		store_stats_clear(&st);
		return ctl_store_failed(ctl, "reading cases", rc);
	}
	spooled = stats_spooled(cfg->spool_directory, run.since);
	if (json) {
		struct buf out;

		buf_init(&out, CTL_JSON_MAX);
		stats_json(&run, &st, spooled, &out);
		if (ctl_emit(&out) != 0)
			ret = CTL_EXIT_FAIL;
		buf_free(&out);
	} else {
		stats_text(&run, &st, spooled);
	}
	store_stats_clear(&st);
	return ret;
}
