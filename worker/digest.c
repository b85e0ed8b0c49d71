/*
 * digest - the open queue mailed to staff (see digest.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compose.h"
#include "digest.h"
#include "letter.h"
#include "log.h"
#include "sla.h"
#include "xalloc.h"

#define DIGEST_CASES	1000	/* the queue shown at most; the count says the rest */
#define TEXT_WIDTH	78

enum dg_group { DG_BREACHED, DG_SOON, DG_LATER, DG_WAITING, DG_GROUPS };

static const char *const group_title[DG_GROUPS] = {
	"Breached", "Due within the hour", "Later, by deadline", "Waiting for the client",
};

struct dg_case {
	struct case_rec	c;
	enum dg_group	group;
	long long	due;		/* of the running clock; 0 when paused */
	int		first;		/* the first-response clock runs */
	char		verdict[64];	/* the last diagnosis, "" if none */
	long long	incident;
};

struct dg_queue {
	struct dg_case	*v;
	size_t		 n, cap, total;
	long long	 now;
	size_t		 count[DG_GROUPS];
};

static int
dg_collect(const struct case_rec *c, void *arg)
{
	struct dg_queue *q = arg;
	struct dg_case *d;
	int first = c->first_response_at == 0;
	/* a case waiting for the client is apart, whatever clock still runs */
	int paused = strcmp(c->status, "waiting") == 0;

	q->total++;
	if (q->n == DIGEST_CASES)
		return 0;
	if (q->n == q->cap) {
		q->cap = q->cap ? 2 * q->cap : 64;
		q->v = xrealloc(q->v, q->cap * sizeof(*q->v));
	}
	d = &q->v[q->n++];
	memset(d, 0, sizeof(*d));
	d->c = *c;
	d->first = first;
	d->due = first ? c->first_due : c->resolve_due;
	d->group = paused ? DG_WAITING : d->due < q->now ? DG_BREACHED :
	    d->due < q->now + 3600 ? DG_SOON : DG_LATER;
	q->count[d->group]++;
	return 0;
}

static int
dg_last_diagnosis(const struct diagnosis_rec *r, void *arg)
{
	struct dg_case *d = arg;

	if (r->skipped[0] == '\0' && r->verdict[0] != '\0') {
		snprintf(d->verdict, sizeof(d->verdict), "%s", r->verdict);
		if (r->incident)
			d->incident = r->incident;
	}
	return 0;
}

static int
dg_cmp(const void *a, const void *b)
{
	const struct dg_case *x = a, *y = b;

	if (x->group != y->group)
		return x->group < y->group ? -1 : 1;
	if (x->group == DG_WAITING)
		return x->c.paused_at < y->c.paused_at ? -1 : x->c.paused_at > y->c.paused_at;
	if (x->due != y->due)
		return x->due < y->due ? -1 : 1;
	return x->c.urgency - y->c.urgency;
}

/* What the time left says in words: "OVERDUE 1h20m", "due in 40m". */
static void
dg_left(const struct dg_case *d, long long now, char *out, size_t outlen)
{
	char span[32];

	if (d->group == DG_WAITING) {
		letter_span(now - d->c.paused_at, span, sizeof(span));
		snprintf(out, outlen, "waiting %s", span);
		return;
	}
	letter_span(d->due - now, span, sizeof(span));
	snprintf(out, outlen, "%s %s", d->due < now ? "OVERDUE" : "due in", span);
}

static void
dg_marks(const struct dg_case *d, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s%s", d->incident ? "incident" : "",
	    d->c.watch ? (d->incident ? ", watch" : "watch") : "");
}

/* RFC 6068 percent-encoding for a mailto: subject. */
static void
dg_url_encode(struct buf *b, const char *s, size_t max)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p && n < max; p++, n++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr("-._~", *p))
			buf_append_char(b, (char)*p);
		else
			buf_printf(b, "%%%c%c", hex[*p >> 4], hex[*p & 15]);
	}
}

static void
dg_mailto(struct buf *b, const struct config *cfg, const struct dg_case *d, int with_subject)
{
	char tag[40];

	snprintf(tag, sizeof(tag), "[HG-%lld] ", d->c.id);
	buf_printf(b, "mailto:%s?subject=", d->c.support_address[0] ? d->c.support_address :
	    cfg->support_addresses.count ? cfg->support_addresses.items[0] : "");
	dg_url_encode(b, tag, sizeof(tag));
	if (with_subject)
		dg_url_encode(b, d->c.subject, 80);
}

static const char *
dg_urgency_colour(int urgency)
{
	static const char *const c[] = { "#b00020", "#e65100", "#1565c0", "#546e7a" };

	return c[urgency >= 1 && urgency <= 4 ? urgency - 1 : 2];
}

static void
dg_headline(struct buf *b, const struct dg_queue *q, const char *when)
{
	buf_printf(b, "%zu open at %s: %zu breached, %zu due within the hour, %zu later, "
	    "%zu waiting for the client", q->total, when, q->count[DG_BREACHED], q->count[DG_SOON],
	    q->count[DG_LATER], q->count[DG_WAITING]);
}

static void
dg_render_text(struct buf *b, const struct config *cfg, const struct dg_queue *q, const char *when)
{
	struct buf line;

	buf_init(&line, 4096);
	dg_headline(&line, q, when);
	/* the headline wraps at the width like the rest */
	for (const char *p = buf_str(&line); *p;) {
		size_t n = strlen(p), cut = n;

		if (n > TEXT_WIDTH) {
			for (cut = TEXT_WIDTH; cut > 0 && p[cut] != ' '; cut--)
				;
			if (cut == 0)
				cut = TEXT_WIDTH;
		}
		buf_append(b, p, cut);
		buf_append_char(b, '\n');
		p += cut;
		while (*p == ' ')
			p++;
	}
	buf_free(&line);
	if (q->total > q->n)
		buf_printf(b, "(the first %zu are listed)\n", q->n);
	for (int g = 0; g < DG_GROUPS; g++) {
		if (q->count[g] == 0)
			continue;
		buf_printf(b, "\n== %s (%zu) ==\n", group_title[g], q->count[g]);
		for (size_t i = 0; i < q->n; i++) {
			const struct dg_case *d = &q->v[i];
			char left[48], marks[32], ref[24];

			if (d->group != (enum dg_group)g)
				continue;
			dg_left(d, q->now, left, sizeof(left));
			dg_marks(d, marks, sizeof(marks));
			snprintf(ref, sizeof(ref), "HG-%lld", d->c.id);
			/* HG-12  P1 trial      outgoing-mail    OVERDUE 1h20m   ann@... */
			buf_printf(b, "%-7s P%d %-10.10s %-15.15s %-15s ", ref, d->c.urgency,
			    d->c.tier[0] ? d->c.tier : "unknown", d->c.category, left);
			letter_text_cell(b, d->c.assignee[0] ? d->c.assignee : "unassigned", 20);
			buf_append_char(b, '\n');
			buf_append_str(b, "        ");
			letter_text_cell(b, d->c.subject[0] ? d->c.subject : "(no subject)", 40);
			buf_append_str(b, "  ");
			letter_text_cell(b, d->c.client, 28);
			buf_append_char(b, '\n');
			if (d->verdict[0] || marks[0]) {
				buf_append_str(b, "        ");
				if (d->verdict[0])
					buf_printf(b, "diagnosis: %.40s", d->verdict);
				if (marks[0])
					buf_printf(b, "%s%s", d->verdict[0] ? "; " : "", marks);
				buf_append_char(b, '\n');
			}
			buf_append_str(b, "        reply: ");
			dg_mailto(b, cfg, d, 0);
			buf_append_char(b, '\n');
		}
	}
	if (q->total == 0)
		buf_append_str(b, "\nNothing is open.\n");
	buf_append_str(b, "\nWrite commands (#assign me, #wait, #resolve cause: ...; lesson: ...)\n"
	    "on the first lines of a mail with the case's tag in the subject.\n");
}

static void
dg_render_html(struct buf *b, const struct config *cfg, const struct dg_queue *q, const char *when)
{
	static const char *const group_colour[DG_GROUPS] = { "#b00020", "#e65100", "#37474f",
		"#6a1b9a" };
	const char *th = "style=\"text-align:left;padding:4px 8px;border-bottom:2px solid #cfd8dc;"
	    "font-size:12px;color:#455a64\"";
	const char *td = "style=\"padding:4px 8px;border-bottom:1px solid #eceff1;vertical-align:top\"";

	buf_append_str(b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
	    "<title>helpgate queue</title></head>\n"
	    "<body style=\"margin:0;padding:16px;font-family:Arial,Helvetica,sans-serif;"
	    "font-size:14px;color:#263238;background:#ffffff\">\n"
	    "<h1 style=\"font-size:18px;margin:0 0 8px 0\">Support queue</h1>\n"
	    "<p id=\"summary\" style=\"margin:0 0 16px 0\">");
	dg_headline(b, q, when);
	buf_append_str(b, "</p>\n");
	for (int g = 0; g < DG_GROUPS; g++) {
		if (q->count[g] == 0)
			continue;
		buf_printf(b, "<h2 style=\"font-size:15px;margin:16px 0 4px 0;color:%s\">%s (%zu)</h2>\n"
		    "<table class=\"group\" data-group=\"%d\" cellpadding=\"0\" cellspacing=\"0\" "
		    "style=\"border-collapse:collapse;width:100%%;max-width:960px\">\n"
		    "<tr><th %s>Case</th><th %s>Urgency</th><th %s>Time left</th><th %s>Tier</th>"
		    "<th %s>Category</th><th %s>Assignee</th><th %s>Subject and client</th>"
		    "<th %s>Diagnosis</th></tr>\n", group_colour[g], group_title[g], q->count[g], g,
		    th, th, th, th, th, th, th, th);
		for (size_t i = 0; i < q->n; i++) {
			const struct dg_case *d = &q->v[i];
			char left[48], marks[32];

			if (d->group != (enum dg_group)g)
				continue;
			dg_left(d, q->now, left, sizeof(left));
			dg_marks(d, marks, sizeof(marks));
			buf_printf(b, "<tr class=\"case\" data-case=\"HG-%lld\"><td %s><a href=\"", d->c.id, td);
			dg_mailto(b, cfg, d, 1);
			buf_printf(b, "\" style=\"color:#1565c0;font-weight:bold\">HG-%lld</a></td>"
			    "<td %s><span style=\"display:inline-block;padding:1px 6px;border-radius:3px;"
			    "background:%s;color:#ffffff;font-weight:bold\">P%d</span></td>", d->c.id, td,
			    dg_urgency_colour(d->c.urgency), d->c.urgency);
			buf_printf(b, "<td %s><span style=\"color:%s;font-weight:%s\">%s</span></td>", td,
			    d->group == DG_BREACHED ? "#b00020" : d->group == DG_SOON ? "#e65100" : "#263238",
			    d->group <= DG_SOON ? "bold" : "normal", left);
			buf_printf(b, "<td %s>", td);
			letter_html_escape(b, d->c.tier[0] ? d->c.tier : "unknown");
			if (marks[0]) {
				buf_append_str(b, " <span style=\"color:#b00020;font-weight:bold\">");
				letter_html_escape(b, marks);
				buf_append_str(b, "</span>");
			}
			buf_printf(b, "</td><td %s>", td);
			letter_html_escape(b, d->c.category);
			buf_printf(b, "</td><td %s>", td);
			letter_html_escape(b, d->c.assignee[0] ? d->c.assignee : "unassigned");
			buf_printf(b, "</td><td %s>", td);
			letter_html_escape(b, d->c.subject[0] ? d->c.subject : "(no subject)");
			buf_append_str(b, "<br><span style=\"color:#607d8b;font-size:12px\">");
			letter_html_escape(b, d->c.client);
			buf_printf(b, "</span></td><td %s>", td);
			letter_html_escape(b, d->verdict[0] ? d->verdict : "-");
			buf_append_str(b, "</td></tr>\n");
		}
		buf_append_str(b, "</table>\n");
	}
	if (q->total == 0)
		buf_append_str(b, "<p id=\"empty\">Nothing is open.</p>\n");
	if (q->total > q->n)
		buf_printf(b, "<p>(the first %zu are listed)</p>\n", q->n);
	buf_append_str(b, "<p style=\"margin-top:16px;font-size:12px;color:#607d8b\">The case number "
	    "opens a mail to the support address with the case's tag: write commands (#assign me, "
	    "#wait, #resolve cause: ...; lesson: ...) on its first lines.</p>\n</body></html>\n");
}

enum store_rc
digest_render(const struct config *cfg, struct store *s, time_t now, struct buf *text,
    struct buf *html, size_t *open)
{
	struct dg_queue q;
	enum store_rc rc;
	char when[64];
	struct tm lt;

	memset(&q, 0, sizeof(q));
	q.now = now;
	if ((rc = store_case_by_due(s, DIGEST_CASES * 10, dg_collect, &q)) != STORE_OK) {
		free(q.v);
		return rc;
	}
	for (size_t i = 0; i < q.n; i++)
		if ((rc = store_diagnosis_list(s, q.v[i].c.id, dg_last_diagnosis, &q.v[i])) != STORE_OK) {
			free(q.v);
			return rc;
		}
	if (q.n > 1)
		qsort(q.v, q.n, sizeof(q.v[0]), dg_cmp);
	localtime_r(&now, &lt);
	strftime(when, sizeof(when), "%H:%M %a %d %b %Y", &lt);
	if (text != NULL)
		dg_render_text(text, cfg, &q, when);
	if (html != NULL)
		dg_render_html(html, cfg, &q, when);
	if (open != NULL)
		*open = q.total;
	free(q.v);
	return STORE_OK;
}

time_t
digest_slot(const struct config *cfg, const struct schedule *sc, time_t now)
{
	/* a week's report may come a day late (the worker was down on Monday
	 * morning); a digest of the queue is only worth its own morning */
	long late = sc->report ? 86400 : DIGEST_LATE;
	time_t best = 0;

	/* today and the days before, back as far as the lateness reaches */
	for (int back = 0; back <= late / 86400 + 1; back++) {
		time_t day = now - (time_t)back * 86400;
		struct tm lt;

		localtime_r(&day, &lt);
		if (sc->report ? lt.tm_wday != sc->wday : !sla_is_business_day(cfg, day))
			continue;
		for (int i = 0; i < sc->n; i++) {
			struct tm t = lt;
			time_t at;

			t.tm_hour = sc->minute[i] / 60;
			t.tm_min = sc->minute[i] % 60;
			t.tm_sec = 0;
			t.tm_isdst = -1;
			at = mktime(&t);
			if (at != (time_t)-1 && at <= now && now - at < late && at > best)
				best = at;
		}
	}
	return best;
}

/* The slot's Message-ID: the same slot and address always make the same
 * one, so the outbox takes each letter once. */
static void
dg_message_id(char *out, size_t outlen, const char *kind, time_t slot, const char *to,
    const char *support)
{
	unsigned long h = 5381;
	const char *domain = strrchr(support, '@');
	struct tm lt;
	char stamp[32];

	for (const char *p = to; *p; p++)
		h = h * 33 + (unsigned char)*p;
	localtime_r(&slot, &lt);
	strftime(stamp, sizeof(stamp), "%Y%m%d%H%M", &lt);
	snprintf(out, outlen, "hg-0.%s.%s.%08lx@%s", kind, stamp, h & 0xffffffffUL,
	    domain ? domain + 1 : "helpgate.invalid");
}

/* Slots already handled by this process (sent, found sent, or nothing to
 * send): the outbox makes a letter exactly once, this saves rendering it
 * again on every pass for DIGEST_LATE. */
#define DG_DONE_MAX	64
static struct {
	unsigned long	key;
	time_t		slot;
} dg_done[DG_DONE_MAX];
static size_t dg_done_next;

static unsigned long
dg_key(const char *kind, const char *to)
{
	unsigned long h = 5381;

	for (const char *p = kind; *p; p++)
		h = h * 33 + (unsigned char)*p;
	for (const char *p = to; *p; p++)
		h = h * 33 + (unsigned char)*p;
	return h;
}

int
schedule_done(const char *kind, const char *to, time_t slot)
{
	unsigned long k = dg_key(kind, to);

	for (size_t i = 0; i < DG_DONE_MAX; i++)
		if (dg_done[i].slot == slot && dg_done[i].key == k)
			return 1;
	return 0;
}

void
schedule_mark_done(const char *kind, const char *to, time_t slot)
{
	dg_done[dg_done_next].key = dg_key(kind, to);
	dg_done[dg_done_next].slot = slot;
	dg_done_next = (dg_done_next + 1) % DG_DONE_MAX;
}

enum store_rc
schedule_send(struct ack_ctx *a, struct store *s, const struct schedule *sc, time_t slot,
    time_t now, const char *kind, const char *subject, const char *text, const char *html,
    const struct compose_inline *inl, size_t ninl)
{
	const struct config *cfg = ack_config(a);
	const char *support = cfg->support_addresses.count ? cfg->support_addresses.items[0] : "";
	struct outbox_rec o;
	enum store_rc rc;

	char mid[256];

	dg_message_id(mid, sizeof(mid), kind, slot, sc->to, support);
	struct compose_header extra[] = { { "X-Helpgate-Notice", kind } };
	struct letter l = {
		.kind = kind, .message_id = mid,
		.from = support[0] ? support : sc->to, .from_name = "helpgate", .to = sc->to,
		.subject = subject, .text = text, .html = html, .inlines = inl, .inline_count = ninl,
		.automatic = LETTER_AUTO_GENERATED, .extra = extra, .extra_count = 1,
		.seal = ack_seal_key(a),
	};
	letter_outbox(&l, now, &o);
	rc = store_outbox_add(s, &o);
	free(o.content);
	return rc;
}

int
digest_run(struct ack_ctx *a, struct store *s, time_t now)
{
	const struct config *cfg = ack_config(a);
	int sent = 0;

	for (size_t i = 0; i < cfg->schedule_count; i++) {
		const struct schedule *sc = &cfg->schedules[i];
		time_t slot = sc->report ? 0 : digest_slot(cfg, sc, now);
		struct buf text, html, subject;
		enum store_rc rc = STORE_OK;
		size_t open = 0;
		char when[32];
		struct tm lt;

		if (slot == 0 || schedule_done("digest", sc->to, slot))
			continue;
		buf_init(&text, 4 * 1024 * 1024);
		buf_init(&html, 8 * 1024 * 1024);
		if ((rc = digest_render(cfg, s, now, &text, &html, &open)) == STORE_OK &&
		    (open > 0 || cfg->digest_empty)) {
			localtime_r(&slot, &lt);
			strftime(when, sizeof(when), "%a %H:%M", &lt);
			buf_init(&subject, 512);
			buf_printf(&subject, "[helpgate] Queue %s: %zu open", when, open);
			rc = schedule_send(a, s, sc, slot, now, "digest", buf_str(&subject),
			    buf_str(&text), buf_str(&html), NULL, 0);
			buf_free(&subject);
			if (rc == STORE_OK) {
				sent++;
				log_info("digest for %s: %zu open cases", sc->to, open);
			}
		}
		buf_free(&text);
		buf_free(&html);
		if (rc != STORE_OK && rc != STORE_EXISTS)	/* EXISTS: sent before a restart */
			return -1;
		schedule_mark_done("digest", sc->to, slot);
	}
	return sent;
}
