/*
 * report - the weekly report and the figures of helpgatectl report (see
 * report.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chart.h"
#include "digest.h"
#include "letter.h"
#include "log.h"
#include "report.h"
#include "xalloc.h"

#define WEEK		(7 * 86400LL)
#define SLOWEST		5
#define LESSONS_MAX	20

/* ---- per tier and urgency (helpgatectl report) ---- */

struct rg_ctx {
	struct report_groups	*r;
	time_t			 since, until, now;
};

void
report_outcome(const struct case_rec *c, long long now, enum report_outcome *first,
    enum report_outcome *resolve)
{
	if (c->first_response_at)
		*first = c->first_response_at <= c->first_due ? REPORT_MET : REPORT_MISSED;
	else
		*first = c->first_due < now ? REPORT_MISSED : REPORT_OPEN;
	if (c->resolved_at)
		*resolve = c->resolved_at <= c->resolve_due ? REPORT_MET : REPORT_MISSED;
	else
		*resolve = c->resolve_due < now && !c->paused_at ? REPORT_MISSED : REPORT_OPEN;
}

static int
rg_row(const struct case_rec *c, void *arg)
{
	struct rg_ctx *x = arg;
	struct report_group *g = NULL;
	enum report_outcome f, r;

	if (c->created < x->since || (x->until && c->created >= x->until))
		return 0;
	for (size_t i = 0; i < x->r->n; i++)
		if (x->r->g[i].urgency == c->urgency && strcmp(x->r->g[i].tier, c->tier) == 0)
			g = &x->r->g[i];
	if (g == NULL) {
		x->r->g = xrealloc(x->r->g, (x->r->n + 1) * sizeof(*x->r->g));
		g = &x->r->g[x->r->n++];
		memset(g, 0, sizeof(*g));
		snprintf(g->tier, sizeof(g->tier), "%s", c->tier);
		g->urgency = c->urgency;
	}
	g->cases++;
	report_outcome(c, x->now, &f, &r);
	g->first_met += f == REPORT_MET;
	g->first_missed += f == REPORT_MISSED;
	g->resolve_met += r == REPORT_MET;
	g->resolve_missed += r == REPORT_MISSED;
	if (c->first_response_at) {
		g->response = xrealloc(g->response, (g->nresponse + 1) * sizeof(long));
		g->response[g->nresponse++] = (long)(c->first_response_at - c->created);
	}
	return 0;
}

static int
rp_long_cmp(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;

	return (x > y) - (x < y);
}

static int
rg_cmp(const void *a, const void *b)
{
	const struct report_group *x = a, *y = b;
	int t = strcmp(x->tier, y->tier);

	return t ? t : x->urgency - y->urgency;
}

enum store_rc
report_groups(struct store *s, time_t since, time_t until, time_t now, struct report_groups *out)
{
	struct rg_ctx x = { out, since, until, now };
	enum store_rc rc;

	memset(out, 0, sizeof(*out));
	if ((rc = store_case_list(s, 0, rg_row, &x)) != STORE_OK) {
		report_groups_free(out);
		return rc;
	}
	if (out->n > 1)
		qsort(out->g, out->n, sizeof(*out->g), rg_cmp);
	for (size_t i = 0; i < out->n; i++)
		if (out->g[i].nresponse > 1)
			qsort(out->g[i].response, out->g[i].nresponse, sizeof(long), rp_long_cmp);
	return STORE_OK;
}

void
report_groups_free(struct report_groups *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->g[i].response);
	free(r->g);
	r->g = NULL;
	r->n = 0;
}

static long
rp_percentile(const long *v, size_t n, int pct)
{
	size_t rank;

	if (n == 0)
		return -1;
	rank = (n * (size_t)pct + 99) / 100;
	return v[rank ? rank - 1 : 0];
}

long
report_percentile(const struct report_group *g, int pct)
{
	return rp_percentile(g->response, g->nresponse, pct);
}

/* ---- the nine weeks ---- */

struct rp_week {
	time_t	start, end;
	long	cases, first_met, first_missed, resolve_met, resolve_missed;
	long   *response;
	size_t	nresponse;
	long	median;		/* -1: no response that week */
};

struct rp_count {
	char	name[48];
	long	n;
};

struct rp_data {
	struct rp_week	 week[REPORT_WEEKS];	/* [0]: the last week */
	struct rp_count	 cat[16];
	size_t		 ncat;
	struct case_rec	 slow[SLOWEST];		/* longest to first response, last week */
	long		 slow_secs[SLOWEST];
	size_t		 nslow;
	struct case_rec *lesson;		/* resolved last week with a cause */
	size_t		 nlesson;
	time_t		 now;
};

static void
rp_slowest(struct rp_data *d, const struct case_rec *c)
{
	long secs = (long)((c->first_response_at ? c->first_response_at : d->now) - c->created);
	size_t at = d->nslow;

	while (at > 0 && d->slow_secs[at - 1] < secs)
		at--;
	if (at >= SLOWEST)
		return;
	if (d->nslow < SLOWEST)
		d->nslow++;
	memmove(&d->slow[at + 1], &d->slow[at], (d->nslow - 1 - at) * sizeof(d->slow[0]));
	memmove(&d->slow_secs[at + 1], &d->slow_secs[at], (d->nslow - 1 - at) * sizeof(long));
	d->slow[at] = *c;
	d->slow_secs[at] = secs;
}

static int
rp_row(const struct case_rec *c, void *arg)
{
	struct rp_data *d = arg;
	enum report_outcome f, r;

	if (c->resolved_at >= d->week[0].start && c->resolved_at < d->week[0].end &&
	    c->cause[0] != '\0' && d->nlesson < LESSONS_MAX) {
		d->lesson = xrealloc(d->lesson, (d->nlesson + 1) * sizeof(*d->lesson));
		d->lesson[d->nlesson++] = *c;
	}
	for (int w = 0; w < REPORT_WEEKS; w++) {
		struct rp_week *k = &d->week[w];

		if (c->created < k->start || c->created >= k->end)
			continue;
		k->cases++;
		report_outcome(c, d->now, &f, &r);
		k->first_met += f == REPORT_MET;
		k->first_missed += f == REPORT_MISSED;
		k->resolve_met += r == REPORT_MET;
		k->resolve_missed += r == REPORT_MISSED;
		if (c->first_response_at) {
			k->response = xrealloc(k->response, (k->nresponse + 1) * sizeof(long));
			k->response[k->nresponse++] = (long)(c->first_response_at - c->created);
		}
		if (w == 0) {
			size_t i;

			for (i = 0; i < d->ncat && strcmp(d->cat[i].name, c->category) != 0; i++)
				;
			if (i == d->ncat && d->ncat < sizeof(d->cat) / sizeof(d->cat[0]))
				snprintf(d->cat[d->ncat++].name, sizeof(d->cat[0].name), "%s", c->category);
			if (i < d->ncat)
				d->cat[i].n++;
			rp_slowest(d, c);
		}
	}
	return 0;
}

static int
rp_cat_cmp(const void *a, const void *b)
{
	const struct rp_count *x = a, *y = b;

	return x->n != y->n ? (x->n < y->n ? 1 : -1) : strcmp(x->name, y->name);
}

/* A time taken, "-" when there is none (a week without an answer). */
static void
rp_time(long secs, char *out, size_t outlen)
{
	if (secs < 0)
		snprintf(out, outlen, "-");
	else
		letter_span(secs, out, outlen);
}

static void
rp_pct(long met, long missed, char *out, size_t outlen)
{
	if (met + missed == 0)
		snprintf(out, outlen, "-");
	else
		snprintf(out, outlen, "%ld%%", met * 100 / (met + missed));
}

static void
rp_week_label(const struct rp_week *k, char *out, size_t outlen)
{
	struct tm lt;

	localtime_r(&k->start, &lt);
	strftime(out, outlen, "%d %b", &lt);
}

static const char *const TD = "style=\"padding:3px 8px;border-bottom:1px solid #eceff1;"
    "text-align:left;vertical-align:top\"";
static const char *const TH = "style=\"padding:3px 8px;border-bottom:2px solid #cfd8dc;"
    "text-align:left;font-size:12px;color:#455a64\"";

static void
rp_render(const struct rp_data *d, const struct report_groups *g, const char (*cid)[96],
    struct buf *t, struct buf *h)
{
	const struct rp_week *w0 = &d->week[0];
	char a[32], b[32], c[32], e[32], from[32], to[32];
	struct tm lt;

	localtime_r(&w0->start, &lt);
	strftime(from, sizeof(from), "%a %d %b %Y", &lt);
	localtime_r(&w0->end, &lt);
	strftime(to, sizeof(to), "%a %d %b %Y %H:%M", &lt);
	rp_pct(w0->first_met, w0->first_missed, a, sizeof(a));
	rp_pct(w0->resolve_met, w0->resolve_missed, b, sizeof(b));
	rp_time(w0->median, c, sizeof(c));
	buf_printf(t, "Support, the week from %s to %s\n\n%ld cases opened; first response met %s "
	    "(median %s); resolution met %s.\n", from, to, w0->cases, a, c, b);
	buf_append_str(h, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>helpgate "
	    "weekly report</title></head>\n<body style=\"margin:0;padding:16px;font-family:Arial,"
	    "Helvetica,sans-serif;font-size:14px;color:#263238;background:#ffffff\">\n"
	    "<h1 style=\"font-size:18px;margin:0 0 4px 0\">Support, the week</h1>\n");
	buf_printf(h, "<p id=\"summary\" style=\"margin:0 0 12px 0\">%s to %s: <b>%ld</b> cases "
	    "opened; first response met <b>%s</b> (median %s); resolution met <b>%s</b>.</p>\n",
	    from, to, w0->cases, a, c, b);

	/* the nine weeks: a chart and its numbers */
	buf_append_str(t, "\nThe last nine weeks (oldest first)\n"
	    "  week of    cases  first met  median   resolved met\n");
	buf_printf(h, "<h2 style=\"font-size:15px;margin:16px 0 4px 0\">The last nine weeks</h2>\n"
	    "<table cellpadding=\"0\" cellspacing=\"0\"><tr><td style=\"vertical-align:top\">"
	    "<img id=\"chart-first\" src=\"cid:%s\" width=\"560\" height=\"220\" alt=\"First "
	    "response met per week\"><br><img id=\"chart-median\" src=\"cid:%s\" width=\"560\" "
	    "height=\"220\" alt=\"Median first response per week\"></td>"
	    "<td style=\"vertical-align:top;padding-left:12px\"><table id=\"weeks\" "
	    "style=\"border-collapse:collapse\"><tr><th %s>Week of</th><th %s>Cases</th>"
	    "<th %s>First met</th><th %s>Median</th><th %s>Resolved met</th></tr>\n",
	    cid[0], cid[1], TH, TH, TH, TH, TH);
	for (int w = REPORT_WEEKS - 1; w >= 0; w--) {
		const struct rp_week *k = &d->week[w];

		rp_week_label(k, e, sizeof(e));
		rp_pct(k->first_met, k->first_missed, a, sizeof(a));
		rp_pct(k->resolve_met, k->resolve_missed, b, sizeof(b));
		rp_time(k->median, c, sizeof(c));
		buf_printf(t, "  %-9s %6ld  %9s  %-7s  %12s\n", e, k->cases, a, c, b);
		buf_printf(h, "<tr><td %s>%s</td><td %s>%ld</td><td %s>%s</td><td %s>%s</td>"
		    "<td %s>%s</td></tr>\n", TD, e, TD, k->cases, TD, a, TD, c, TD, b);
	}
	buf_append_str(h, "</table></td></tr></table>\n");

	/* per tier and urgency, the last week */
	buf_append_str(t, "\nThe last week by tier and urgency\n"
	    "  tier         urg  cases  first met  median   resolved met\n");
	buf_printf(h, "<h2 style=\"font-size:15px;margin:16px 0 4px 0\">By tier and urgency</h2>\n"
	    "<table id=\"tiers\" style=\"border-collapse:collapse\"><tr><th %s>Tier</th>"
	    "<th %s>Urgency</th><th %s>Cases</th><th %s>First met</th><th %s>Median</th>"
	    "<th %s>Resolved met</th></tr>\n", TH, TH, TH, TH, TH, TH);
	for (size_t i = 0; i < g->n; i++) {
		const struct report_group *k = &g->g[i];

		rp_pct(k->first_met, k->first_missed, a, sizeof(a));
		rp_pct(k->resolve_met, k->resolve_missed, b, sizeof(b));
		rp_time(report_percentile(k, 50), c, sizeof(c));
		buf_printf(t, "  %-12.12s P%d  %5ld  %9s  %-7s  %12s\n", k->tier, k->urgency, k->cases,
		    a, c, b);
		buf_printf(h, "<tr><td %s>", TD);
		letter_html_escape(h, k->tier);
		buf_printf(h, "</td><td %s>P%d</td><td %s>%ld</td><td %s>%s</td><td %s>%s</td>"
		    "<td %s>%s</td></tr>\n", TD, k->urgency, TD, k->cases, TD, a, TD, c, TD, b);
	}
	if (g->n == 0)
		buf_append_str(t, "  no cases\n");
	buf_append_str(h, "</table>\n");

	/* categories */
	buf_append_str(t, "\nCases per category, the last week\n");
	buf_printf(h, "<h2 style=\"font-size:15px;margin:16px 0 4px 0\">Cases per category</h2>\n"
	    "<table cellpadding=\"0\" cellspacing=\"0\"><tr><td style=\"vertical-align:top\">"
	    "<img id=\"chart-category\" src=\"cid:%s\" width=\"560\" height=\"%d\" alt=\"Cases per "
	    "category\"></td><td style=\"vertical-align:top;padding-left:12px\"><table "
	    "id=\"categories\" style=\"border-collapse:collapse\"><tr><th %s>Category</th>"
	    "<th %s>Cases</th></tr>\n", cid[2], 60 + 28 * (int)(d->ncat ? d->ncat : 1), TH, TH);
	for (size_t i = 0; i < d->ncat; i++) {
		buf_printf(t, "  %-18s %5ld\n", d->cat[i].name, d->cat[i].n);
		buf_printf(h, "<tr><td %s>", TD);
		letter_html_escape(h, d->cat[i].name);
		buf_printf(h, "</td><td %s>%ld</td></tr>\n", TD, d->cat[i].n);
	}
	buf_append_str(h, "</table></td></tr></table>\n");

	/* the slowest */
	buf_append_str(t, "\nThe slowest to a first response, the last week\n");
	buf_printf(h, "<h2 style=\"font-size:15px;margin:16px 0 4px 0\">The slowest to a first "
	    "response</h2>\n<table id=\"slowest\" style=\"border-collapse:collapse\"><tr>"
	    "<th %s>Case</th><th %s>Urgency</th><th %s>Tier</th><th %s>Waited</th>"
	    "<th %s>Subject</th></tr>\n", TH, TH, TH, TH, TH);
	for (size_t i = 0; i < d->nslow; i++) {
		const struct case_rec *k = &d->slow[i];

		rp_time(d->slow_secs[i], c, sizeof(c));
		buf_printf(t, "  HG-%-6lld P%d %-10.10s %-8s%s ", k->id, k->urgency, k->tier, c,
		    k->first_response_at ? " " : "*");
		letter_text_cell(t, k->subject, 40);
		buf_append_char(t, '\n');
		buf_printf(h, "<tr><td %s>HG-%lld</td><td %s>P%d</td><td %s>", TD, k->id, TD, k->urgency, TD);
		letter_html_escape(h, k->tier);
		buf_printf(h, "</td><td %s>%s%s</td><td %s>", TD, c,
		    k->first_response_at ? "" : " (not answered yet)", TD);
		letter_html_escape(h, k->subject);
		buf_append_str(h, "</td></tr>\n");
	}
	if (d->nslow && d->slow[d->nslow - 1].first_response_at == 0)
		buf_append_str(t, "  (* not answered yet: the time so far)\n");
	buf_append_str(h, "</table>\n");

	/* work on mistakes */
	buf_append_str(t, "\nIncidents and lessons, the last week\n");
	buf_printf(h, "<h2 style=\"font-size:15px;margin:16px 0 4px 0\">Incidents and lessons</h2>\n"
	    "<table id=\"lessons\" style=\"border-collapse:collapse\"><tr><th %s>Case</th>"
	    "<th %s>Cause</th><th %s>Lesson</th></tr>\n", TH, TH, TH);
	for (size_t i = 0; i < d->nlesson; i++) {
		const struct case_rec *k = &d->lesson[i];

		buf_printf(t, "  HG-%lld%s\n    cause:  ", k->id, k->incident ? " (incident)" : "");
		letter_text_cell(t, k->cause, 68);
		buf_append_str(t, "\n    lesson: ");
		letter_text_cell(t, k->lesson, 68);
		buf_append_char(t, '\n');
		buf_printf(h, "<tr><td %s>HG-%lld%s</td><td %s>", TD, k->id, k->incident ?
		    " <span style=\"color:#b00020;font-weight:bold\">incident</span>" : "", TD);
		letter_html_escape(h, k->cause);
		buf_printf(h, "</td><td %s>", TD);
		letter_html_escape(h, k->lesson);
		buf_append_str(h, "</td></tr>\n");
	}
	if (d->nlesson == 0)
		buf_append_str(t, "  none recorded\n");
	buf_append_str(h, "</table>\n</body></html>\n");
}

static int
rp_charts(const struct rp_data *d, struct report_letter *l)
{
	struct chart_point wk[REPORT_WEEKS], med[REPORT_WEEKS], cat[16];
	char lab[REPORT_WEEKS][16], txt[REPORT_WEEKS][16], mtx[REPORT_WEEKS][16], ctx[16][16];
	double maxmed = 0;
	int rc = 0;

	for (int i = 0; i < REPORT_WEEKS; i++) {
		const struct rp_week *k = &d->week[REPORT_WEEKS - 1 - i];
		long dec = k->first_met + k->first_missed;

		rp_week_label(k, lab[i], sizeof(lab[i]));
		rp_pct(k->first_met, k->first_missed, txt[i], sizeof(txt[i]));
		rp_time(k->median, mtx[i], sizeof(mtx[i]));
		wk[i] = (struct chart_point){ lab[i], dec ? 100.0 * (double)k->first_met / (double)dec : -1,
			txt[i] };
		med[i] = (struct chart_point){ lab[i], k->median >= 0 ? (double)k->median / 3600.0 : -1,
			mtx[i] };
		if (med[i].value > maxmed)
			maxmed = med[i].value;
	}
	for (size_t i = 0; i < d->ncat; i++) {
		snprintf(ctx[i], sizeof(ctx[i]), "%ld", d->cat[i].n);
		cat[i] = (struct chart_point){ d->cat[i].name, (double)d->cat[i].n, ctx[i] };
	}
	rc |= chart_png(CHART_BARS, "First response met, % of cases", wk, REPORT_WEEKS, 100, 560, 220,
	    &l->png[0]);
	rc |= chart_png(CHART_LINE, "Median first response, hours", med, REPORT_WEEKS,
	    maxmed > 0 ? maxmed * 1.15 : 1, 560, 220, &l->png[1]);
	rc |= chart_png(CHART_HBARS, "Cases per category, the last week", cat, d->ncat, 0, 560,
	    60 + 28 * (int)(d->ncat ? d->ncat : 1), &l->png[2]);
	return rc;
}

enum store_rc
report_render(const struct config *cfg, struct store *s, time_t now, const char *domain,
    struct report_letter *l)
{
	static const char *const names[REPORT_CHARTS] = { "first-met", "median", "categories" };
	struct report_groups g;
	struct rp_data *d = xcalloc(1, sizeof(*d));
	enum store_rc rc;

	(void)cfg;
	memset(l, 0, sizeof(*l));
	buf_init(&l->text, 1024 * 1024);
	buf_init(&l->html, 2 * 1024 * 1024);
	d->now = now;
	for (int w = 0; w < REPORT_WEEKS; w++) {
		d->week[w].end = now - (time_t)(w * WEEK);
		d->week[w].start = d->week[w].end - (time_t)WEEK;
	}
	rc = store_case_list(s, 0, rp_row, d);
	if (rc == STORE_OK)
		rc = report_groups(s, d->week[0].start, d->week[0].end, now, &g);
	if (rc != STORE_OK) {
		for (int w = 0; w < REPORT_WEEKS; w++)
			free(d->week[w].response);
		free(d->lesson);
		free(d);
		return rc;
	}
	for (int w = 0; w < REPORT_WEEKS; w++) {
		struct rp_week *k = &d->week[w];

		if (k->nresponse > 1)
			qsort(k->response, k->nresponse, sizeof(long), rp_long_cmp);
		k->median = rp_percentile(k->response, k->nresponse, 50);
	}
	if (d->ncat > 1)
		qsort(d->cat, d->ncat, sizeof(d->cat[0]), rp_cat_cmp);
	for (int i = 0; i < REPORT_CHARTS; i++) {
		buf_init(&l->png[i], 4 * 1024 * 1024);
		snprintf(l->cid[i], sizeof(l->cid[i]), "%s.%lld@%s", names[i], (long long)now,
		    domain && *domain ? domain : "helpgate.invalid");
	}
	if (rp_charts(d, l) != 0)
		log_warnx("report: a chart could not be drawn");
	for (int i = 0; i < REPORT_CHARTS; i++) {
		l->inl[i].content_id = l->cid[i];
		l->inl[i].type = "image/png";
		l->inl[i].name = names[i];
		l->inl[i].data = (const unsigned char *)l->png[i].data;
		l->inl[i].len = l->png[i].len;
	}
	rp_render(d, &g, l->cid, &l->text, &l->html);
	l->cases = (size_t)d->week[0].cases;
	report_groups_free(&g);
	for (int w = 0; w < REPORT_WEEKS; w++)
		free(d->week[w].response);
	free(d->lesson);
	free(d);
	return STORE_OK;
}

void
report_letter_free(struct report_letter *l)
{
	buf_free(&l->text);
	buf_free(&l->html);
	for (int i = 0; i < REPORT_CHARTS; i++)
		buf_free(&l->png[i]);
}

int
report_run(struct ack_ctx *a, struct store *s, time_t now)
{
	const struct config *cfg = ack_config(a);
	const char *support = cfg->support_addresses.count ? cfg->support_addresses.items[0] : "";
	const char *domain = strrchr(support, '@');
	int sent = 0;

	for (size_t i = 0; i < cfg->schedule_count; i++) {
		const struct schedule *sc = &cfg->schedules[i];
		time_t slot = sc->report ? digest_slot(cfg, sc, now) : 0;
		struct report_letter l;
		struct buf subject;
		enum store_rc rc;
		char when[32];
		struct tm lt;

		if (slot == 0 || schedule_done("report", sc->to, slot))
			continue;
		if ((rc = report_render(cfg, s, slot, domain ? domain + 1 : "", &l)) != STORE_OK)
			return -1;
		localtime_r(&slot, &lt);
		strftime(when, sizeof(when), "%d %b %Y", &lt);
		buf_init(&subject, 512);
		buf_printf(&subject, "[helpgate] The week to %s: %zu cases", when, l.cases);
		rc = schedule_send(a, s, sc, slot, now, "report", buf_str(&subject), buf_str(&l.text),
		    buf_str(&l.html), l.inl, REPORT_CHARTS);
		buf_free(&subject);
		report_letter_free(&l);
		if (rc == STORE_OK) {
			sent++;
			log_info("weekly report for %s", sc->to);
		} else if (rc != STORE_EXISTS)
			return -1;
		schedule_mark_done("report", sc->to, slot);
	}
	return sent;
}
