/*
 * ctl_sla - helpgatectl sla, sla explain, sla due and report.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "config.h"
#include "diag.h"
#include "json.h"
#include "log.h"
#include "sla.h"
#include "store.h"
#include "intake.h"
#include "ack.h"
#include "timers.h"
#include "digest.h"
#include "report.h"
#include "xalloc.h"
#include "ctl.h"

struct ctl_sla {
	struct ctl	*ctl;
	struct buf	 out;
	int		 json;
	size_t		 count;		/* open cases seen */
	size_t		 limit;		/* rows printed at most */
	long long	 now;
	long		 breached;	/* the running clock is past its deadline */
	long		 due_soon;	/* ... reaches it within the hour */
};

/* sla --watch: the signal handlers only set these. */
static volatile sig_atomic_t ctl_watch_stop;
static volatile sig_atomic_t ctl_watch_resized;

/* ---- SLA ---- */

/* Prints the deadline an SLA clock started at --at (default: now) would
 * have, in Timezone; the same sla_deadline() the milter and worker use. */
int
ctl_cmd_sla_due(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv)
{
	const char *tier_name = NULL, *urgency = NULL, *at = NULL, *kind_name = NULL;
	const struct ctl_opt opts[] = {
		{ "--tier", &tier_name, NULL },
		{ "--urgency", &urgency, NULL },
		{ "--at", &at, NULL },
		{ "--kind", &kind_name, NULL },
		{ NULL, NULL, NULL },
	};
	const struct tier_policy *tier;
	enum sla_kind kind = SLA_FIRST_RESPONSE;
	struct config *cfg;
	char due[64];
	time_t start;
	int r, level;

	if ((r = ctl_parse(cmd, argc, argv, opts, NULL, 0, 0, NULL)) != 0)
		return r == CTL_HELP ? CTL_EXIT_OK : r;
	if (tier_name == NULL)
		return ctl_usage_error(cmd, "--tier is required");
	if (urgency == NULL)
		return ctl_usage_error(cmd, "--urgency is required");
	if ((urgency[0] != 'P' && urgency[0] != 'p') || urgency[1] < '1' ||
	    urgency[1] > '0' + URGENCY_LEVELS || urgency[2] != '\0')
		return ctl_usage_error(cmd, "--urgency wants P1, P2, P3 or P4, not \"%s\"", urgency);
	level = urgency[1] - '0';
	if (kind_name != NULL && strcmp(kind_name, "resolve") == 0)
		kind = SLA_RESOLUTION;
	else if (kind_name != NULL && strcmp(kind_name, "first") != 0)
		return ctl_usage_error(cmd, "--kind wants first or resolve, not \"%s\"", kind_name);
	/* The config first: a time without an offset is read in Timezone. */
	if ((cfg = ctl_config(ctl)) == NULL)
		return CTL_EXIT_FAIL;
	if (at == NULL)
		start = clock_now();
	else if (clock_parse_iso8601(at, &start) != 0 || start < CTL_TIME_MIN || start > CTL_TIME_MAX)
		return ctl_usage_error(cmd, "--at wants an ISO 8601 time such as "
		    "2026-11-30T09:00:00+02:00 (or @EPOCH) in the years 1900 to 9999, not \"%s\"", at);
	if ((tier = ctl_tier(cfg, tier_name)) == NULL)
		return CTL_EXIT_FAIL;
	clock_format_iso8601(sla_deadline(cfg, tier->name, level, kind, start), due, sizeof(due));
	printf("%s\n", due);
	return CTL_EXIT_OK;
}

/* "1d02h", "-0h05m": a length of time for a table cell. */
void
ctl_span(long long secs, char *out, size_t outlen)
{
	long long a = secs < 0 ? -secs : secs;
	const char *sign = secs < 0 ? "-" : "";

	/* Overdue shows as negative time left, with or without colour. */
	if (a >= 86400)
		snprintf(out, outlen, "%s%lldd%02lldh", sign, a / 86400, (a % 86400) / 3600);
	else
		snprintf(out, outlen, "%s%lldh%02lldm", sign, a / 3600, (a % 3600) / 60);
}

static int
ctl_sla_row(const struct case_rec *c, void *arg)
{
	struct ctl_sla *x = arg;
	int first = c->first_response_at == 0;
	long long due = first ? c->first_due : c->resolve_due;
	/* Waiting for the client stops the resolution clock only. */
	int paused = c->paused_at && !first;
	char left[32], t[64];

	x->count++;
	if (!paused && due < x->now)
		x->breached++;
	else if (!paused && due < x->now + 3600)
		x->due_soon++;
	if (x->count > x->limit)
		return 0;
	if (x->json) {
		json_object_begin(&x->out);
		json_kv_int(&x->out, "id", c->id);
		json_kv_string(&x->out, "clock", paused ? "paused" : first ? "first" : "resolve");
		ctl_json_time(&x->out, "due", paused ? 0 : due);
		json_kv_int(&x->out, "seconds_left", paused ? 0 : due - x->now);
		json_kv_bool(&x->out, "overdue", !paused && due < x->now);
		json_kv_int(&x->out, "urgency", c->urgency);
		json_kv_string(&x->out, "tier", c->tier);
		json_kv_string(&x->out, "assignee", c->assignee);
		json_kv_string(&x->out, "client", c->client);
		json_kv_string(&x->out, "subject", c->subject);
		json_object_end(&x->out);
		return 0;
	}
	ctl_span(due - x->now, left, sizeof(left));
	printf("HG-%-7lld ", c->id);
	ctl_urgency_cell(x->ctl, c->urgency);
	if (paused)
		printf("%-8s %-10s ", "waiting", "paused");
	else if (due < x->now)
		printf("%-8s %s%-10s%s ", first ? "first" : "resolve", x->ctl->color ? "\033[1;31m" : "",
		    left, x->ctl->color ? "\033[0m" : "");
	else
		printf("%-8s %-10s ", first ? "first" : "resolve", left);
	printf("%-16s ", paused ? "-" : ctl_short_time(due, t, sizeof(t)));
	ctl_cell(c->tier, 10);
	ctl_cell(c->assignee[0] ? c->assignee : "-", 24);
	ctl_put_text(stdout, c->subject, 40, NULL);
	fputc('\n', stdout);
	return 0;
}

static void
ctl_sla_header(void)
{
	printf("%-10s %-3s %-8s %-10s %-16s %-10s %-24s %s\n", "CASE", "URG", "CLOCK",
	    "LEFT", "DUE", "TIER", "ASSIGNEE", "SUBJECT");
}

/* A whole number from 1 to max for option name; prints the usage error. */
static int
ctl_sla_count_arg(const struct ctl_command *cmd, const char *name, const char *arg, long max,
    long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < 1 || v > max) {
		ctl_usage_error(cmd, "%s wants a whole number from 1 to %ld, not \"%s\"", name, max,
		    arg);
		return -1;
	}
	*out = v;
	return 0;
}

static void
ctl_watch_signal(int sig)
{
	if (sig == SIGWINCH)
		ctl_watch_resized = 1;
	else
		ctl_watch_stop = 1;
}

/* Table rows that fit the terminal under the two header lines (and the
 * cursor's line); 0 when stdout is not a terminal. */
static size_t
ctl_watch_rows(void)
{
	struct winsize ws;

	if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 4)
		return (size_t)ws.ws_row - 3;
	return 0;
}

/* One frame of sla --watch: a header line with the time and the counts
 * over every open case, then the table.  On a terminal the screen is
 * cleared first; otherwise frames after the first are preceded by a form
 * feed line, so that a pipe or a file can tell them apart.  A store that
 * fails is closed, reported in the frame, and opened again next time. */
static void
ctl_watch_frame(struct ctl *ctl, int tty, long limit, long interval, long frame)
{
	struct ctl_sla x;
	enum store_rc rc = STORE_OK;
	struct store *s;
	size_t rows;
	char now[64];

	memset(&x, 0, sizeof(x));
	x.ctl = ctl;
	x.now = clock_now();
	x.limit = (size_t)limit;
	if (tty && (rows = ctl_watch_rows()) > 0 && rows < x.limit)
		x.limit = rows;
	if (tty)
		fputs("\033[H\033[2J", stdout);
	else if (frame > 1)
		fputs("\f\n", stdout);
	/* Counted before printing: the header line comes first. */
	if ((s = ctl_store(ctl)) != NULL) {
		size_t keep = x.limit;

		x.limit = 0;
		rc = store_case_by_due(s, INT_MAX, ctl_sla_row, &x);
		x.limit = keep;
	}
	printf("helpgate sla  %s  breached %ld  due within 1 h %ld  open %zu  (every %ld s)\n",
	    ctl_iso(x.now, now, sizeof(now)), x.breached, x.due_soon, x.count, interval);
	if (s == NULL || rc != STORE_OK) {
		if (s != NULL) {
			ctl_store_failed(ctl, "reading open cases", rc);
			store_close(ctl->store);
			ctl->store = NULL;
		}
		printf("(the case store cannot be read; see the error above; retrying)\n");
	} else {
		ctl_sla_header();
		x.count = 0;
		x.breached = x.due_soon = 0;
		if ((rc = store_case_by_due(s, (int)x.limit, ctl_sla_row, &x)) != STORE_OK) {
			ctl_store_failed(ctl, "reading open cases", rc);
			store_close(ctl->store);
			ctl->store = NULL;
		} else if (x.count == 0) {
			printf("no open cases\n");
		}
	}
	fflush(stdout);
}

/* sla --watch: a frame every interval seconds until SIGINT or SIGTERM (or
 * count frames).  The signals are blocked except inside pselect(), so one
 * that arrives while a frame is drawn ends the wait at once instead of
 * being lost.  The terminal gets its cursor back on the way out. */
static int
ctl_sla_watch(struct ctl *ctl, long limit, long interval, long count)
{
	struct sigaction sa, old_int, old_term, old_winch;
	sigset_t block, old_mask;
	int tty = isatty(STDOUT_FILENO);

	if (ctl_config(ctl) == NULL)
		return CTL_EXIT_FAIL;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = ctl_watch_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	sigaction(SIGWINCH, &sa, &old_winch);
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGWINCH);
	sigprocmask(SIG_BLOCK, &block, &old_mask);
	if (tty)
		fputs("\033[?25l", stdout);	/* no cursor blinking over the table */

	for (long frame = 1; !ctl_watch_stop; frame++) {
		struct timespec wait = { (time_t)interval, 0 };

		ctl_watch_frame(ctl, tty, limit, interval, frame);
		if (count > 0 && frame >= count)
			break;
		ctl_watch_resized = 0;
		while (!ctl_watch_stop && !ctl_watch_resized &&
		    pselect(0, NULL, NULL, NULL, &wait, &old_mask) == -1 && errno == EINTR)
			wait.tv_sec = 0;	/* another signal: redraw now rather than wait on */
	}

	if (tty)
		fputs("\033[?25h\n", stdout);
	fflush(stdout);
	sigprocmask(SIG_SETMASK, &old_mask, NULL);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGWINCH, &old_winch, NULL);
	return CTL_EXIT_OK;
}

int
ctl_cmd_sla(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv)
{
	int json = 0, watch = 0, r, ret = CTL_EXIT_OK;
	const char *limit_arg = NULL, *interval_arg = NULL, *count_arg = NULL;
	const struct ctl_opt opts[] = {
		{ "--json", NULL, &json }, { "--limit", &limit_arg, NULL },
		{ "--watch", NULL, &watch }, { "--interval", &interval_arg, NULL },
		{ "--count", &count_arg, NULL }, { NULL, NULL, NULL },
	};
	struct ctl_sla x;
	struct store *s;
	enum store_rc rc;
	long limit = 100, interval = 5, count = 0;

	if ((r = ctl_parse(cmd, argc, argv, opts, NULL, 0, 0, NULL)) != 0)
		return r == CTL_HELP ? CTL_EXIT_OK : r;
	if (limit_arg != NULL && ctl_parse_limit(cmd, limit_arg, &limit) != 0)
		return CTL_EXIT_USAGE;
	if (!watch && (interval_arg != NULL || count_arg != NULL))
		return ctl_usage_error(cmd, "--interval and --count go with --watch");
	if (watch && json)
		return ctl_usage_error(cmd, "--watch is a terminal view; it does not take --json");
	if (interval_arg != NULL &&
	    ctl_sla_count_arg(cmd, "--interval", interval_arg, 3600, &interval) != 0)
		return CTL_EXIT_USAGE;
	if (count_arg != NULL && ctl_sla_count_arg(cmd, "--count", count_arg, 1000000, &count) != 0)
		return CTL_EXIT_USAGE;
	if (watch)
		return ctl_sla_watch(ctl, limit, interval, count);
	if (ctl_config(ctl) == NULL || (s = ctl_store(ctl)) == NULL)
		return CTL_EXIT_FAIL;
	memset(&x, 0, sizeof(x));
	x.ctl = ctl;
	x.json = json;
	x.now = clock_now();
	x.limit = (size_t)limit;
	buf_init(&x.out, CTL_JSON_MAX * 16);
	if (json)
		json_array_begin(&x.out);
	else
		ctl_sla_header();
	if ((rc = store_case_by_due(s, (int)limit, ctl_sla_row, &x)) != STORE_OK) {
		buf_free(&x.out);
		return ctl_store_failed(ctl, "reading open cases", rc);
	}
	if (json) {
		json_array_end(&x.out);
		buf_append_char(&x.out, '\n');
		if (ctl_emit(&x.out) != 0)
			ret = CTL_EXIT_FAIL;
	} else if (x.count == 0) {
		printf("no open cases\n");
	}
	buf_free(&x.out);
	return ret;
}

struct ctl_explain {
	const struct config	*cfg;
	int			 business;
};

static int
ctl_explain_event(const struct event_rec *e, void *arg)
{
	char t[64], f[64];

	(void)arg;
	printf("  %-16s %s  ", e->kind, e->due >= TIMERS_PAUSED ? "(paused)          " :
	    ctl_iso(e->due, t, sizeof(t)));
	if (e->fired > 0)
		printf("fired %s (%s)\n", ctl_iso(e->fired, f, sizeof(f)), e->note);
	else if (e->fired < 0)
		printf("cancelled: %s\n", e->note);
	else
		printf("pending\n");
	return 0;
}

static int
ctl_explain_pause(long long start, long long end, void *arg)
{
	char a[64], b[64];

	(void)arg;
	printf("  paused %s -> %s\n", ctl_iso(start, a, sizeof(a)), ctl_iso(end, b, sizeof(b)));
	return 0;
}

/* Every stretch of the clock that counted between from and to. */
static void
ctl_explain_intervals(const struct config *cfg, int urgency, time_t from, time_t to)
{
	char a[64], b[64];
	int shown = 0;

	if (sla_clock(cfg, urgency) == CONFIG_CLOCK_24X7) {
		printf("  %s -> %s  (around the clock)\n", ctl_iso(from, a, sizeof(a)),
		    ctl_iso(to, b, sizeof(b)));
		return;
	}
	for (time_t t = sla_next_open(cfg, from); t != 0 && t < to && shown < 60; shown++) {
		time_t close = sla_next_close(cfg, t);
		if (close == 0 || close > to)
			close = to;
		printf("  %s -> %s  %ldm\n", ctl_iso(t, a, sizeof(a)), ctl_iso(close, b, sizeof(b)),
		    (long)(close - t) / 60);
		t = sla_next_open(cfg, close);
	}
	if (shown == 60)
		printf("  ... (more intervals)\n");
}

int
ctl_cmd_sla_explain(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv)
{
	struct case_rec c;
	struct store *s;
	char *pos[1], t[64];
	enum store_rc rc;
	long long id;
	int r;

	if ((r = ctl_parse(cmd, argc, argv, NULL, pos, 1, 1, NULL)) != 0)
		return r == CTL_HELP ? CTL_EXIT_OK : r;
	if (ctl_parse_case_ref(pos[0], &id) != 0)
		return ctl_usage_error(cmd, "\"%s\" is not a case (HG-12 or 12)", pos[0]);
	if (ctl_config(ctl) == NULL || (s = ctl_store(ctl)) == NULL)
		return CTL_EXIT_FAIL;
	if ((rc = store_case_get(s, id, &c)) != STORE_OK) {
		if (rc == STORE_NOTFOUND) {
			ctl_err("no case HG-%lld", id);
			return CTL_EXIT_FAIL;
		}
		return ctl_store_failed(ctl, "reading the case", rc);
	}
	const struct config *cfg = ctl->cfg;
	int business = sla_clock(cfg, c.urgency) == CONFIG_CLOCK_BUSINESS;
	printf("HG-%lld  P%d  tier %s  %s clock (Clock P%d), Timezone %s\n", c.id, c.urgency,
	    c.tier, business ? "business-hours" : "24x7", c.urgency, cfg->timezone);
	printf("Opened:          %s (when the MTA accepted the client's mail)\n",
	    ctl_iso(c.created, t, sizeof(t)));
	printf("First response:  target %lds of clock time, due %s, ",
	    business ? sla_business_target(cfg, c.tier, c.urgency, SLA_FIRST_RESPONSE) :
	    sla_target(cfg, c.tier, c.urgency, SLA_FIRST_RESPONSE), ctl_iso(c.first_due, t, sizeof(t)));
	if (c.first_response_at)
		printf("answered %s\n", ctl_iso(c.first_response_at, t, sizeof(t)));
	else
		printf("not answered yet\n");
	printf("Intervals that counted towards the first response:\n");
	ctl_explain_intervals(cfg, c.urgency, (time_t)c.created, (time_t)c.first_due);
	printf("Resolution:      due %s (%lld s of clock paused while waiting for the client)%s\n",
	    ctl_iso(c.resolve_due, t, sizeof(t)), c.paused_total,
	    c.paused_at ? "; paused now" : "");
	if ((rc = store_pause_list(s, c.id, ctl_explain_pause, NULL)) != STORE_OK)
		return ctl_store_failed(ctl, "reading pauses", rc);
	printf("Timers:\n");
	if ((rc = store_event_list(s, c.id, ctl_explain_event, NULL)) != STORE_OK)
		return ctl_store_failed(ctl, "reading timers", rc);
	return CTL_EXIT_OK;
}


/* ---- report ---- */

int
ctl_cmd_report(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv)
{
	const char *since_arg = NULL;
	int json = 0, r, ret = CTL_EXIT_OK;
	const struct ctl_opt opts[] = {
		{ "--since", &since_arg, NULL }, { "--json", NULL, &json }, { NULL, NULL, NULL },
	};
	struct report_groups rep;
	struct store *s;
	struct buf out;
	enum store_rc rc;
	time_t since = 0;

	if ((r = ctl_parse(cmd, argc, argv, opts, NULL, 0, 0, NULL)) != 0)
		return r == CTL_HELP ? CTL_EXIT_OK : r;
	if (ctl_config(ctl) == NULL)
		return CTL_EXIT_FAIL;
	if (since_arg != NULL && clock_parse_iso8601(since_arg, &since) != 0)
		return ctl_usage_error(cmd, "--since wants a date or time such as 2026-11-01, not \"%s\"",
		    since_arg);
	if ((s = ctl_store(ctl)) == NULL)
		return CTL_EXIT_FAIL;
	if ((rc = report_groups(s, since, 0, clock_now(), &rep)) != STORE_OK)
		return ctl_store_failed(ctl, "reading cases", rc);
	buf_init(&out, CTL_JSON_MAX);
	if (json)
		json_array_begin(&out);
	else
		printf("%-12s %-3s %7s %9s %9s %9s %11s\n", "TIER", "URG", "CASES", "FIRST-MET",
		    "MEDIAN", "P90", "RESOLVE-MET");
	for (size_t i = 0; i < rep.n; i++) {
		const struct report_group *g = &rep.g[i];
		long fdec = g->first_met + g->first_missed, rdec = g->resolve_met + g->resolve_missed;
		long med = report_percentile(g, 50), p90 = report_percentile(g, 90);

		if (json) {
			json_object_begin(&out);
			json_kv_string(&out, "tier", g->tier);
			json_kv_int(&out, "urgency", g->urgency);
			json_kv_int(&out, "cases", g->cases);
			json_kv_int(&out, "first_response_met", g->first_met);
			json_kv_int(&out, "first_response_missed", g->first_missed);
			if (fdec) json_kv_int(&out, "first_response_met_pct", g->first_met * 100 / fdec);
			else json_kv_null(&out, "first_response_met_pct");
			if (med >= 0) json_kv_int(&out, "first_response_median_s", med);
			else json_kv_null(&out, "first_response_median_s");
			if (p90 >= 0) json_kv_int(&out, "first_response_p90_s", p90);
			else json_kv_null(&out, "first_response_p90_s");
			if (rdec) json_kv_int(&out, "resolution_met_pct", g->resolve_met * 100 / rdec);
			else json_kv_null(&out, "resolution_met_pct");
			json_object_end(&out);
		} else {
			char fm[16] = "-", rm[16] = "-", m1[32] = "-", m2[32] = "-";

			if (fdec) snprintf(fm, sizeof(fm), "%ld%%", g->first_met * 100 / fdec);
			if (rdec) snprintf(rm, sizeof(rm), "%ld%%", g->resolve_met * 100 / rdec);
			if (med >= 0) ctl_span(med, m1, sizeof(m1));
			if (p90 >= 0) ctl_span(p90, m2, sizeof(m2));
			printf("%-12s P%-2d %7ld %9s %9s %9s %11s\n", g->tier, g->urgency, g->cases, fm,
			    m1, m2, rm);
		}
	}
	if (json) {
		json_array_end(&out);
		buf_append_char(&out, '\n');
		if (ctl_emit(&out) != 0)
			ret = CTL_EXIT_FAIL;
	} else if (rep.n == 0) {
		printf("no cases%s\n", since_arg ? " since then" : "");
	}
	report_groups_free(&rep);
	buf_free(&out);
	return ret;
}

/* ---- digest ---- */

static int
ctl_write_file(const char *path, const struct buf *b)
{
	FILE *fp = fopen(path, "w");

	if (fp == NULL || fwrite(b->data ? b->data : "", 1, b->len, fp) != b->len) {
		ctl_err("%s: %s", path, strerror(errno));
		if (fp != NULL)
			fclose(fp);
		return -1;
	}
	if (fclose(fp) != 0) {
		ctl_err("%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

int
ctl_cmd_digest(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv)
{
	const char *html_path = NULL, *text_path = NULL;
	const struct ctl_opt opts[] = {
		{ "--html", &html_path, NULL }, { "--text", &text_path, NULL }, { NULL, NULL, NULL },
	};
	struct buf text, html;
	struct store *s;
	enum store_rc rc;
	int r, ret = CTL_EXIT_OK;

	if ((r = ctl_parse(cmd, argc, argv, opts, NULL, 0, 0, NULL)) != 0)
		return r == CTL_HELP ? CTL_EXIT_OK : r;
	if (ctl_config(ctl) == NULL || (s = ctl_store(ctl)) == NULL)
		return CTL_EXIT_FAIL;
	buf_init(&text, 4 * 1024 * 1024);
	buf_init(&html, 8 * 1024 * 1024);
	if ((rc = digest_render(ctl->cfg, s, clock_now(), &text, &html, NULL)) != STORE_OK) {
		buf_free(&text);
		buf_free(&html);
		return ctl_store_failed(ctl, "reading open cases", rc);
	}
	if ((html_path && ctl_write_file(html_path, &html) != 0) ||
	    (text_path && ctl_write_file(text_path, &text) != 0))
		ret = CTL_EXIT_FAIL;
	else if (html_path == NULL && text_path == NULL)
		fputs(buf_str(&text), stdout);
	buf_free(&text);
	buf_free(&html);
	return ret;
}
