/*
 * SLA deadlines on the 24x7 and the business clock: nights, weekends,
 * holidays, lunch breaks, "d" on a business clock, and DST in Europe/Kyiv
 * (2026-03-29 03:00 -> 04:00, 2026-10-25 04:00 -> 03:00).  Every expected
 * time is written out (checked with TZ=Europe/Kyiv date -d ...).
 */
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "sla.h"
#include "t.h"

static char dir[] = "/tmp/hg-test-sla-XXXXXX";

static const char *
write_file(const char *name, const char *text)
{
	static char path[256];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fp = fopen(path, "w")) == NULL) {
		perror(path);
		exit(2);
	}
	fputs(text, fp);
	fclose(fp);
	return path;
}

/* A config in Europe/Kyiv with extra lines; the process zone follows it. */
static struct config *
load(const char *name, const char *extra)
{
	char text[4096];
	struct buf errors;
	struct config *cfg;

	snprintf(text, sizeof(text),
	    "Timezone Europe/Kyiv\n"
	    "SupportAddress support@example.com\n"
	    "SLA a P1 first=2h resolve=1d\n"
	    "SLA a P2 first=4h resolve=2d\n"
	    "SLA a P3 first=30m resolve=2h\n"
	    "SLA a P4 first=24h resolve=1w\n"
	    "%s", extra);
	buf_init(&errors, 8192);
	cfg = config_load(write_file(name, text), &errors);
	if (cfg == NULL) {
		fprintf(stderr, "%s: %s", name, buf_str(&errors));
		exit(2);
	}
	buf_free(&errors);
	if (clock_set_timezone(cfg->timezone) != 0) {
		fprintf(stderr, "no Europe/Kyiv on this system\n");
		exit(2);
	}
	return cfg;
}

/* The errors a config with these extra lines (from line 3 on) gets. */
static const char *
load_errors(const char *name, const char *extra)
{
	static char out[8192];
	char text[4096];
	struct buf errors;
	struct config *cfg;

	snprintf(text, sizeof(text), "Timezone Europe/Kyiv\nSupportAddress support@example.com\n%s",
	    extra);
	buf_init(&errors, 8192);
	cfg = config_load(write_file(name, text), &errors);
	T_CHECK(cfg == NULL);
	config_unref(cfg);
	snprintf(out, sizeof(out), "%s", buf_str(&errors));
	buf_free(&errors);
	return out;
}

static time_t
at(const char *iso)
{
	time_t t;

	if (clock_parse_iso8601(iso, &t) != 0) {
		fprintf(stderr, "bad time in test: %s\n", iso);
		exit(2);
	}
	return t;
}

/* ISO 8601 in the process zone; eight rotating buffers. */
static const char *
iso(time_t t)
{
	static char out[8][64];
	static int n;
	char *p = out[n++ % 8];

	if (t == 0)
		return "0";
	clock_format_iso8601(t, p, sizeof(out[0]));
	return p;
}

static const char *
due(const struct config *cfg, int urgency, enum sla_kind kind, const char *start)
{
	return iso(sla_deadline(cfg, "a", urgency, kind, at(start)));
}

#define FIRST	SLA_FIRST_RESPONSE
#define RESOLVE	SLA_RESOLUTION

static void
test_defaults(void)
{
	struct config *cfg = load("default.conf", "");

	T_EQ_INT(sla_clock(cfg, 1), CONFIG_CLOCK_24X7);
	T_EQ_INT(sla_clock(cfg, 2), CONFIG_CLOCK_BUSINESS);
	T_EQ_INT(sla_clock(cfg, 4), CONFIG_CLOCK_BUSINESS);
	T_EQ_INT(sla_clock(cfg, 9), CONFIG_CLOCK_BUSINESS);	/* clamped to P4 */
	T_EQ_INT(cfg->business_day_len, 9 * 3600);
	T_EQ_INT(cfg->business_week_len, 45 * 3600);
	T_EQ_INT(cfg->end_of_day_window, 3600);
	T_EQ_INT(cfg->business_week[0].count, 0);	/* Sunday */
	T_EQ_INT(cfg->business_week[6].count, 0);	/* Saturday */
	T_EQ_INT(cfg->business_week[1].count, 1);
	T_EQ_INT(cfg->business_week[5].range[0].open, 9 * 3600);
	T_EQ_INT(cfg->business_week[5].range[0].close, 18 * 3600);
	T_EQ_INT(sla_target(cfg, "a", 2, RESOLVE), 2 * 86400);
	T_EQ_INT(sla_business_target(cfg, "a", 2, RESOLVE), 2 * 9 * 3600);
	T_EQ_INT(sla_business_target(cfg, "a", 4, RESOLVE), 45 * 3600);
	T_EQ_INT(sla_business_target(cfg, "a", 3, FIRST), 1800);
	config_unref(cfg);
}

static void
test_business_week(void)
{
	struct config *cfg = load("week.conf", "Holiday 2026-12-25\n");

	/* Monday noon, 4 business hours: the same afternoon. */
	T_EQ_STR(due(cfg, 2, FIRST, "2026-11-30T12:00:00+02:00"), "2026-11-30T16:00:00+02:00");
	/* Five minutes before closing, 30 minutes: 25 left for the morning. */
	T_EQ_STR(due(cfg, 3, FIRST, "2026-11-30T17:55:00+02:00"), "2026-12-01T09:25:00+02:00");
	/* Friday 17:00 plus 2 h: Monday 10:00. */
	T_EQ_STR(due(cfg, 3, RESOLVE, "2026-12-04T17:00:00+02:00"), "2026-12-07T10:00:00+02:00");
	/* Arriving on Saturday: Monday's opening plus the target. */
	T_EQ_STR(due(cfg, 2, FIRST, "2026-12-05T10:00:00+02:00"), "2026-12-07T13:00:00+02:00");
	T_EQ_STR(due(cfg, 3, FIRST, "2026-12-06T23:59:59+02:00"), "2026-12-07T09:30:00+02:00");
	/* Before opening and after closing on a weekday. */
	T_EQ_STR(due(cfg, 3, FIRST, "2026-12-01T07:10:00+02:00"), "2026-12-01T09:30:00+02:00");
	T_EQ_STR(due(cfg, 3, FIRST, "2026-12-01T18:00:00+02:00"), "2026-12-02T09:30:00+02:00");
	/* Used up exactly at closing: due at closing, not at the next opening. */
	T_EQ_STR(due(cfg, 3, FIRST, "2026-12-01T17:30:00+02:00"), "2026-12-01T18:00:00+02:00");
	/* Exact to the second. */
	T_EQ_STR(due(cfg, 3, FIRST, "2026-12-01T17:45:17+02:00"), "2026-12-02T09:15:17+02:00");
	/* Friday 25 December is a holiday: Thursday 16:00 + 4 h runs to Monday. */
	T_EQ_STR(due(cfg, 2, FIRST, "2026-12-24T16:00:00+02:00"), "2026-12-28T11:00:00+02:00");
	/* The holiday's eve at 17:55, 30 minutes: Monday 09:25. */
	T_EQ_STR(due(cfg, 3, FIRST, "2026-12-24T17:55:00+02:00"), "2026-12-28T09:25:00+02:00");
	/* On the holiday itself. */
	T_EQ_STR(due(cfg, 3, FIRST, "2026-12-25T11:00:00+02:00"), "2026-12-28T09:30:00+02:00");
	/* 2d on a business clock is 2 x 9 business hours. */
	T_EQ_STR(due(cfg, 2, RESOLVE, "2026-11-30T12:00:00+02:00"), "2026-12-02T12:00:00+02:00");
	T_EQ_STR(due(cfg, 2, RESOLVE, "2026-12-04T12:00:00+02:00"), "2026-12-08T12:00:00+02:00");
	T_EQ_STR(due(cfg, 2, RESOLVE, "2026-12-23T12:00:00+02:00"), "2026-12-28T12:00:00+02:00");
	/* 24h is 24 business hours (2 days and 6 hours); 1w is the 45 h week. */
	T_EQ_STR(due(cfg, 4, FIRST, "2026-11-30T09:00:00+02:00"), "2026-12-02T15:00:00+02:00");
	T_EQ_STR(due(cfg, 4, RESOLVE, "2026-11-30T09:00:00+02:00"), "2026-12-04T18:00:00+02:00");
	T_EQ_STR(due(cfg, 4, RESOLVE, "2026-11-30T12:00:00+02:00"), "2026-12-07T12:00:00+02:00");
	/* P1 runs around the clock, across midnight and the weekend. */
	T_EQ_STR(due(cfg, 1, FIRST, "2026-11-30T23:00:00+02:00"), "2026-12-01T01:00:00+02:00");
	T_EQ_STR(due(cfg, 1, RESOLVE, "2026-12-05T20:30:00+02:00"), "2026-12-06T20:30:00+02:00");
	/* An unknown tier uses "unknown" (P2 first=8h, business). */
	T_EQ_STR(iso(sla_deadline(cfg, "nonesuch", 2, FIRST, at("2026-11-30T12:00:00+02:00"))),
	    "2026-12-01T11:00:00+02:00");
	config_unref(cfg);
}

static void
test_lunch_break(void)
{
	struct config *cfg = load("lunch.conf",
	    "BusinessHours mon-fri 09:00-13:00 14:00-18:00\n"
	    "BusinessHours sat 10:00-14:00\n");

	T_EQ_INT(cfg->business_day_len, 8 * 3600);
	T_EQ_INT(cfg->business_week_len, 44 * 3600);
	T_EQ_INT(cfg->business_week[6].count, 1);
	T_EQ_STR(due(cfg, 2, FIRST, "2026-11-30T12:00:00+02:00"), "2026-11-30T17:00:00+02:00");
	T_EQ_STR(due(cfg, 3, FIRST, "2026-11-30T12:30:00+02:00"), "2026-11-30T13:00:00+02:00");
	T_EQ_STR(due(cfg, 3, FIRST, "2026-11-30T12:45:00+02:00"), "2026-11-30T14:15:00+02:00");
	T_EQ_STR(due(cfg, 3, FIRST, "2026-11-30T13:10:00+02:00"), "2026-11-30T14:30:00+02:00");
	/* Saturday now has hours: Friday 17:00 + 2 h is Saturday 11:00. */
	T_EQ_STR(due(cfg, 3, RESOLVE, "2026-12-04T17:00:00+02:00"), "2026-12-05T11:00:00+02:00");
	T_EQ_STR(due(cfg, 2, FIRST, "2026-12-05T12:00:00+02:00"), "2026-12-07T11:00:00+02:00");
	/* 2d = 16 business hours: Monday 12:00 -> Wednesday 12:00. */
	T_EQ_STR(due(cfg, 2, RESOLVE, "2026-11-30T12:00:00+02:00"), "2026-12-02T12:00:00+02:00");
	T_EQ_INT(sla_next_close(cfg, at("2026-11-30T10:00:00+02:00")), at("2026-11-30T13:00:00+02:00"));
	T_EQ_INT(sla_next_close(cfg, at("2026-11-30T13:30:00+02:00")), 0);
	T_EQ_INT(sla_next_open(cfg, at("2026-11-30T13:30:00+02:00")), at("2026-11-30T14:00:00+02:00"));
	T_CHECK(!sla_is_business_time(cfg, at("2026-11-30T13:00:00+02:00")));
	T_CHECK(sla_is_business_time(cfg, at("2026-11-30T12:59:59+02:00")));
	T_EQ_INT(sla_business_seconds(cfg, at("2026-11-30T00:00:00+02:00"),
	    at("2026-12-07T00:00:00+02:00")), 44 * 3600);
	config_unref(cfg);
}

static void
test_dst(void)
{
	struct config *cfg = load("dst.conf", "BusinessHours sun 09:00-18:00\n");
	time_t s, d;

	/* 24x7 across spring forward and fall back: exact real seconds. */
	s = at("2026-03-29T02:30:00+02:00");
	d = sla_deadline(cfg, "a", 1, FIRST, s);
	T_EQ_STR(iso(d), "2026-03-29T05:30:00+03:00");
	T_EQ_INT(d - s, 7200);
	s = at("2026-10-25T03:30:00+03:00");	/* the first 03:30 */
	d = sla_deadline(cfg, "a", 1, FIRST, s);
	T_EQ_STR(iso(d), "2026-10-25T04:30:00+02:00");
	T_EQ_INT(d - s, 7200);
	s = at("2026-10-25T03:30:00+02:00");	/* the second 03:30 */
	T_EQ_STR(iso(sla_deadline(cfg, "a", 1, FIRST, s)), "2026-10-25T05:30:00+02:00");
	s = at("2026-03-28T12:00:00+02:00");
	d = sla_deadline(cfg, "a", 1, RESOLVE, s);
	T_EQ_STR(iso(d), "2026-03-29T13:00:00+03:00");
	T_EQ_INT(d - s, 86400);
	/* Business hours on a day whose change happens at night: unaffected. */
	T_EQ_STR(due(cfg, 2, FIRST, "2026-03-29T09:00:00+03:00"), "2026-03-29T13:00:00+03:00");
	T_EQ_STR(due(cfg, 2, FIRST, "2026-10-25T09:00:00+02:00"), "2026-10-25T13:00:00+02:00");
	T_EQ_STR(due(cfg, 2, FIRST, "2026-03-29T02:00:00+02:00"), "2026-03-29T13:00:00+03:00");
	T_EQ_STR(due(cfg, 2, FIRST, "2026-10-25T03:15:00+02:00"), "2026-10-25T13:00:00+02:00");
	T_EQ_INT(sla_business_seconds(cfg, at("2026-03-29T00:00:00+02:00"),
	    at("2026-03-30T00:00:00+03:00")), 9 * 3600);
	T_EQ_INT(sla_business_seconds(cfg, at("2026-10-25T00:00:00+03:00"),
	    at("2026-10-26T00:00:00+02:00")), 9 * 3600);
	/* Friday to Monday over each change. */
	T_EQ_STR(due(cfg, 3, RESOLVE, "2026-03-27T17:00:00+02:00"), "2026-03-29T10:00:00+03:00");
	config_unref(cfg);

	cfg = load("dst-week.conf", "");
	T_EQ_STR(due(cfg, 3, RESOLVE, "2026-03-27T17:00:00+02:00"), "2026-03-30T10:00:00+03:00");
	T_EQ_STR(due(cfg, 3, RESOLVE, "2026-10-23T17:00:00+03:00"), "2026-10-26T10:00:00+02:00");
	T_EQ_INT(sla_business_seconds(cfg, at("2026-03-27T17:00:00+02:00"),
	    at("2026-03-30T10:00:00+03:00")), 7200);
	config_unref(cfg);

	/* Around the clock on a business calendar: real seconds count, 23 h
	 * on the spring day and 25 h on the autumn day. */
	cfg = load("dst-full.conf", "BusinessHours mon-sun 00:00-24:00\nClock P1 business\n");
	T_EQ_INT(cfg->business_day_len, 86400);
	s = at("2026-03-28T12:00:00+02:00");
	d = sla_deadline(cfg, "a", 1, RESOLVE, s);	/* 1d = 86400 business seconds */
	T_EQ_STR(iso(d), "2026-03-29T13:00:00+03:00");
	T_EQ_INT(d - s, 86400);
	s = at("2026-10-24T12:00:00+03:00");
	d = sla_deadline(cfg, "a", 4, FIRST, s);	/* 24h */
	T_EQ_STR(iso(d), "2026-10-25T11:00:00+02:00");
	T_EQ_INT(d - s, 86400);
	T_EQ_STR(due(cfg, 1, FIRST, "2026-03-29T02:30:00+02:00"), "2026-03-29T05:30:00+03:00");
	T_EQ_INT(sla_business_seconds(cfg, at("2026-03-29T00:00:00+02:00"),
	    at("2026-03-30T00:00:00+03:00")), 23 * 3600);
	T_EQ_INT(sla_business_seconds(cfg, at("2026-10-25T00:00:00+03:00"),
	    at("2026-10-26T00:00:00+02:00")), 25 * 3600);
	T_CHECK(sla_is_business_time(cfg, at("2026-10-25T03:30:00+02:00")));
	config_unref(cfg);

	/* Hours inside the changes: a range the clocks jump over is empty;
	 * across the repeated hour it is longer, from the first 03:30 on. */
	cfg = load("dst-odd.conf", "BusinessHours sun 02:30-03:30 03:30-05:00\n");
	T_EQ_INT(sla_business_seconds(cfg, at("2026-03-29T00:00:00+02:00"),
	    at("2026-03-30T00:00:00+03:00")), 1800 + 3600);
	T_EQ_INT(sla_business_seconds(cfg, at("2026-10-25T00:00:00+03:00"),
	    at("2026-10-26T00:00:00+02:00")), 3600 + 9000);
	T_EQ_INT(sla_next_open(cfg, at("2026-03-29T02:59:59+02:00")), at("2026-03-29T02:59:59+02:00"));
	T_EQ_INT(sla_next_close(cfg, at("2026-03-29T02:45:00+02:00")), at("2026-03-29T05:00:00+03:00"));
	T_EQ_STR(due(cfg, 3, FIRST, "2026-03-29T02:50:00+02:00"), "2026-03-29T04:20:00+03:00");
	T_EQ_STR(due(cfg, 3, FIRST, "2026-10-25T03:40:00+03:00"), "2026-10-25T03:10:00+02:00");
	T_CHECK(sla_is_business_time(cfg, at("2026-10-25T03:10:00+02:00")));
	config_unref(cfg);
}

static void
test_business_seconds_and_close(void)
{
	struct config *cfg = load("seconds.conf", "Holiday 2026-12-25\n");
	time_t a = at("2026-12-04T17:00:00+02:00"), b = at("2026-12-07T10:00:00+02:00");

	T_EQ_INT(sla_business_seconds(cfg, a, b), 7200);
	T_EQ_INT(sla_business_seconds(cfg, b, a), -7200);
	T_EQ_INT(sla_business_seconds(cfg, a, a), 0);
	T_EQ_INT(sla_business_seconds(cfg, at("2026-12-05T09:00:00+02:00"),
	    at("2026-12-06T18:00:00+02:00")), 0);
	/* The week of the holiday has four business days. */
	T_EQ_INT(sla_business_seconds(cfg, at("2026-12-21T00:00:00+02:00"),
	    at("2026-12-28T00:00:00+02:00")), 4 * 9 * 3600);
	T_EQ_INT(sla_business_seconds(cfg, at("2026-12-28T00:00:00+02:00"),
	    at("2026-12-21T00:00:00+02:00")), -4 * 9 * 3600);
	/* Deadline and business time agree, in both directions, from many starts. */
	for (time_t s = at("2026-12-18T00:00:00+02:00"); s < at("2027-01-05T00:00:00+02:00"); s += 3917) {
		for (int u = 2; u <= 4; u++) {
			time_t d = sla_deadline(cfg, "a", u, RESOLVE, s);
			long want = sla_business_target(cfg, "a", u, RESOLVE);

			if (sla_business_seconds(cfg, s, d) != want || sla_business_seconds(cfg, d, s) != -want) {
				T_CHECK(!"business_seconds(start, deadline) == target");
				fprintf(stderr, "  start %s urgency P%d deadline %s\n", iso(s), u, iso(d));
				goto out;
			}
		}
	}
	T_CHECK(1);
out:
	T_EQ_INT(sla_business_add(cfg, at("2026-12-04T17:00:00+02:00"), 7200),
	    at("2026-12-07T10:00:00+02:00"));
	T_EQ_INT(sla_business_add(cfg, at("2026-12-05T17:00:00+02:00"), 0),
	    at("2026-12-07T09:00:00+02:00"));
	T_CHECK(sla_is_business_time(cfg, at("2026-11-30T09:00:00+02:00")));
	T_CHECK(sla_is_business_time(cfg, at("2026-11-30T17:59:59+02:00")));
	T_CHECK(!sla_is_business_time(cfg, at("2026-11-30T18:00:00+02:00")));
	T_CHECK(!sla_is_business_time(cfg, at("2026-11-30T08:59:59+02:00")));
	T_CHECK(!sla_is_business_time(cfg, at("2026-12-05T12:00:00+02:00")));
	T_CHECK(!sla_is_business_time(cfg, at("2026-12-25T12:00:00+02:00")));
	T_EQ_INT(sla_next_close(cfg, at("2026-11-30T12:00:00+02:00")), at("2026-11-30T18:00:00+02:00"));
	T_EQ_INT(sla_next_close(cfg, at("2026-11-30T09:00:00+02:00")), at("2026-11-30T18:00:00+02:00"));
	T_EQ_INT(sla_next_close(cfg, at("2026-11-30T18:00:00+02:00")), 0);
	T_EQ_INT(sla_next_close(cfg, at("2026-12-05T12:00:00+02:00")), 0);
	T_EQ_INT(sla_next_close(cfg, at("2026-12-25T12:00:00+02:00")), 0);
	T_EQ_INT(sla_next_open(cfg, at("2026-12-24T18:00:00+02:00")), at("2026-12-28T09:00:00+02:00"));
	T_EQ_INT(sla_next_open(cfg, at("2026-12-24T12:00:00+02:00")), at("2026-12-24T12:00:00+02:00"));
	config_unref(cfg);

	/* Touching ranges and days are one interval for sla_next_close. */
	cfg = load("touch.conf", "BusinessHours mon-fri 00:00-24:00\nBusinessHours sat 00:00-12:00 12:00-15:00\n");
	T_EQ_INT(sla_next_close(cfg, at("2026-12-02T12:00:00+02:00")), at("2026-12-05T15:00:00+02:00"));
	T_EQ_INT(sla_next_close(cfg, at("2026-12-06T12:00:00+02:00")), 0);
	config_unref(cfg);
}

static void
test_holiday_file_and_horizon(void)
{
	struct config *cfg;

	write_file("holidays.txt",
	    "# New Year\n"
	    "2026-12-31\n"
	    "\n"
	    "  2027-01-01   # Friday\n"
	    "2026-12-31\n");
	cfg = load("holfile.conf", "Holiday holidays.txt\nHoliday 2026-12-25\n");
	T_EQ_INT(cfg->holiday_count, 3);	/* the repeated date once */
	T_EQ_STR(due(cfg, 3, FIRST, "2026-12-30T17:55:00+02:00"), "2027-01-04T09:25:00+02:00");
	config_unref(cfg);

	/* More business time than three years hold: around the clock, once logged. */
	cfg = load("horizon.conf", "SLA a P4 resolve=2000d\n");
	T_EQ_INT(sla_deadline(cfg, "a", 4, RESOLVE, at("2026-11-30T12:00:00+02:00")),
	    at("2026-11-30T12:00:00+02:00") + 2000L * 86400);
	/* Absurd instants: no overflow, no business time. */
	T_EQ_INT(sla_deadline(cfg, "a", 1, FIRST, (time_t)LLONG_MAX - 10), (time_t)LLONG_MAX);
	T_EQ_INT(sla_deadline(cfg, "a", 2, FIRST, (time_t)LLONG_MAX - 10), (time_t)LLONG_MAX);
	T_CHECK(!sla_is_business_time(cfg, (time_t)LLONG_MIN));
	T_EQ_INT(sla_next_close(cfg, (time_t)LLONG_MAX), 0);
	T_EQ_INT(sla_next_open(cfg, (time_t)LLONG_MAX), 0);
	T_CHECK(sla_business_seconds(cfg, (time_t)LLONG_MIN, (time_t)LLONG_MAX) > 0);
	T_CHECK(sla_business_seconds(cfg, (time_t)LLONG_MAX, (time_t)LLONG_MIN) < 0);
	config_unref(cfg);
}

static void
test_config_errors(void)
{
	const char *e;

	e = load_errors("bad.conf",
	    "BusinessHours mun-fri 09:00-18:00\n"	/* 3 */
	    "BusinessHours mon 18:00-09:00\n"		/* 4 */
	    "BusinessHours tue 09:00-13:00 12:00-18:00\n"	/* 5 */
	    "BusinessHours wed 14:00-18:00 09:00-13:00\n"	/* 6 */
	    "Holiday 2026-02-30\n"			/* 7 */
	    "Clock P5 business\n"			/* 8 */
	    "Clock P2 sometimes\n"			/* 9 */
	    "BusinessHours thu 09:00-25:00\n"		/* 10 */
	    "BusinessHours fri\n"			/* 11 */
	    "Holiday no-such-file.txt\n"		/* 12 */
	    "EndOfDayWindow soon\n"			/* 13 */
	    "BusinessHours sat closed 09:00-10:00\n"	/* 14 */
	    "Holiday 26-12-25\n");			/* 15 */
	T_CONTAINS(e, "bad.conf:3: BusinessHours: \"mun-fri\" is not a day");
	T_CONTAINS(e, "bad.conf:4: BusinessHours: \"18:00-09:00\" does not end after it starts");
	T_CONTAINS(e, "bad.conf:5: BusinessHours: \"12:00-18:00\" overlaps");
	T_CONTAINS(e, "bad.conf:6: BusinessHours: \"09:00-13:00\" comes after a later range");
	T_CONTAINS(e, "bad.conf:7: Holiday: \"2026-02-30\" is not a date");
	T_CONTAINS(e, "bad.conf:8: Clock: urgency \"P5\"");
	T_CONTAINS(e, "bad.conf:9: Clock: \"sometimes\"");
	T_CONTAINS(e, "bad.conf:10: BusinessHours: \"09:00-25:00\"");
	T_CONTAINS(e, "bad.conf:11: BusinessHours fri names no hours");
	T_CONTAINS(e, "bad.conf:12: Holiday: cannot open");
	T_CONTAINS(e, "no-such-file.txt");
	T_CONTAINS(e, "bad.conf:13: EndOfDayWindow");
	T_CONTAINS(e, "bad.conf:14: BusinessHours: a day is either closed");
	T_CONTAINS(e, "bad.conf:15: Holiday: \"26-12-25\"");

	write_file("badhol.txt", "2026-12-25\n# fine\n2026-13-01\n");
	e = load_errors("badhol.conf", "Holiday badhol.txt\n");
	T_CONTAINS(e, "badhol.conf:3: Holiday: ");
	T_CONTAINS(e, "badhol.txt:3: \"2026-13-01\" is not a date");

	e = load_errors("closed.conf", "BusinessHours mon-sun closed\n");
	T_CONTAINS(e, "closed.conf: BusinessHours leave no business time in the week");
}

int
main(void)
{
	if (mkdtemp(dir) == NULL)
		return 2;
	test_defaults();
	test_business_week();
	test_lunch_break();
	test_dst();
	test_business_seconds_and_close();
	test_holiday_file_and_horizon();
	test_config_errors();
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return t_done();
}
