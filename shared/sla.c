/*
 * sla - deadlines on a 24x7 or a business clock (contract in sla.h).
 *
 * Local dates are handled as day numbers (days since 1970-01-01 on the
 * wall calendar), so weekdays and holidays need no time-zone call.  Only
 * turning a wall-clock time of a date into an instant does, and that goes
 * through sla_first_reach(), which is exact across DST changes; mktime()
 * with tm_isdst = -1 is not used because what it returns for a time in a
 * gap or an overlap is unspecified.
 */
#include "sla.h"

#include <limits.h>

#include "log.h"

#define SLA_DAY		86400LL
/* Instants further than this from 1970 (about 34,800 years) have no
 * business time, so that no date arithmetic can overflow. */
#define SLA_TIME_LIMIT	(1LL << 40)

/* A walk over business intervals, in time order, from one local date. */
struct sla_walk {
	const struct config		*cfg;
	long long			 day;		/* the local date being walked */
	long long			 last_day;	/* the walk ends after this date */
	const struct business_day	*hours;		/* that date's ranges; NULL: not looked up */
	int				 next;		/* index of its next range */
	int				 uniform;	/* no UTC offset change that day */
	time_t				 midnight;	/* first instant of the date */
	time_t				 next_midnight;	/* first instant of the next date */
	long long			 known_day;	/* date whose midnight is known_midnight; -1 none */
	time_t				 known_midnight;
};

static int sla_warned;

static void
sla_warn_horizon(void)
{
	if (__atomic_exchange_n(&sla_warned, 1, __ATOMIC_RELAXED) == 0)
		log_warnx("SLA: business time reaches beyond %d days ahead; counting the rest "
		    "around the clock (check BusinessHours, Holiday and the SLA targets)",
		    SLA_HORIZON_DAYS);
}

/* start + seconds, saturating instead of overflowing. */
static time_t
sla_add(time_t start, long seconds)
{
	time_t out;

	if (__builtin_add_overflow(start, (time_t)seconds, &out))
		return seconds > 0 ? (time_t)LLONG_MAX : (time_t)LLONG_MIN;
	return out;
}

static time_t
sla_clamp_time(time_t t)
{
	return t < -SLA_TIME_LIMIT ? -SLA_TIME_LIMIT : t > SLA_TIME_LIMIT ? SLA_TIME_LIMIT : t;
}

static long long
sla_floor_div(long long a, long long b)
{
	long long q = a / b;

	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* The UTC offset in force at t, in seconds east. */
static long
sla_gmtoff(time_t t)
{
	struct tm tm;

	return localtime_r(&t, &tm) != NULL ? tm.tm_gmtoff : 0;
}

/* What the wall clock shows at t, as seconds since 1970-01-01 00:00 local. */
static long long
sla_local(time_t t)
{
	return (long long)t + sla_gmtoff(t);
}

/*
 * The first instant at which the wall clock shows local or a later time.
 * Normally the one instant that shows it; in a fall-back overlap the
 * earlier of two; in a spring-forward gap the instant of the jump.  The
 * offsets a day either side bracket any single change near local, which
 * gives every candidate; a gap is then found by bisection between them.
 */
static time_t
sla_first_reach(long long local)
{
	long off[3];
	time_t lo = 0, hi = 0, best = 0;
	int found = 0;

	off[0] = sla_gmtoff((time_t)(local - SLA_DAY));
	off[1] = sla_gmtoff((time_t)local);
	off[2] = sla_gmtoff((time_t)(local + SLA_DAY));
	for (int i = 0; i < 3; i++) {
		time_t c = (time_t)(local - off[i]);

		if (i == 0 || c < lo)
			lo = c;
		if (i == 0 || c > hi)
			hi = c;
		if (sla_local(c) == local && (!found || c < best)) {
			best = c;
			found = 1;
		}
	}
	if (found)
		return best;
	/* A gap: the wall clock is before local at lo and past it at hi. */
	if (sla_local(lo) >= local || sla_local(hi) < local)
		return (time_t)(local - off[1]);	/* not one simple change: best effort */
	while (hi - lo > 1) {
		time_t mid = lo + (hi - lo) / 2;

		if (sla_local(mid) >= local)
			hi = mid;
		else
			lo = mid;
	}
	return hi;
}

static int
sla_is_holiday(const struct config *cfg, long long day)
{
	size_t lo = 0, hi = cfg->holiday_count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (cfg->holidays[mid] == day)
			return 1;
		if (cfg->holidays[mid] < day)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* Starts a walk at t's local date, covering that date and days more. */
static void
sla_walk_init(struct sla_walk *w, const struct config *cfg, time_t t, long long days)
{
	w->cfg = cfg;
	if (t < -SLA_TIME_LIMIT || t > SLA_TIME_LIMIT) {
		w->day = 0;
		w->last_day = -1;	/* an empty walk */
	} else {
		w->day = sla_floor_div(sla_local(t), SLA_DAY);
		w->last_day = w->day + days;
	}
	w->hours = NULL;
	w->next = 0;
	w->known_day = -1;
}

/* The instant a wall-clock time (seconds after midnight) of the walk's
 * date begins. */
static time_t
sla_walk_at(const struct sla_walk *w, long secs)
{
	if (secs == 0)
		return w->midnight;
	if (secs == SLA_DAY)
		return w->next_midnight;
	if (w->uniform)
		return w->midnight + secs;
	return sla_first_reach(w->day * SLA_DAY + secs);
}

/* The first instant after the walk's business hours so far: where a
 * walk that ran out stopped counting. */
static time_t
sla_walk_end(const struct sla_walk *w)
{
	return sla_first_reach((w->last_day + 1) * SLA_DAY);
}

/*
 * The next business interval [*open, *close), in time order; intervals
 * never overlap and an interval of an earlier date ends before the next
 * date begins.  Empty ones (a range inside a DST gap) are skipped.
 * Returns 0 when the walk has passed its last date.
 */
static int
sla_walk_next(struct sla_walk *w, time_t *open, time_t *close)
{
	static const struct business_day closed;
	const struct business_range *r;

	for (;;) {
		if (w->day > w->last_day)
			return 0;
		if (w->hours == NULL) {
			long long wday = w->day + 4 - sla_floor_div(w->day + 4, 7) * 7;	/* 1970-01-01: Thursday */

			w->hours = sla_is_holiday(w->cfg, w->day) ? &closed : &w->cfg->business_week[wday];
			w->next = 0;
			if (w->hours->count > 0) {
				w->midnight = w->known_day == w->day ? w->known_midnight :
				    sla_first_reach(w->day * SLA_DAY);
				w->next_midnight = sla_first_reach((w->day + 1) * SLA_DAY);
				w->known_day = w->day + 1;
				w->known_midnight = w->next_midnight;
				w->uniform = w->next_midnight - w->midnight == SLA_DAY &&
				    sla_gmtoff(w->midnight) == sla_gmtoff(w->next_midnight - 1);
			}
		}
		if (w->next >= w->hours->count) {
			w->day++;
			w->hours = NULL;
			continue;
		}
		r = &w->hours->range[w->next++];
		*open = sla_walk_at(w, r->open);
		*close = sla_walk_at(w, r->close);
		if (*open < *close)
			return 1;
	}
}

static int
sla_clamp_urgency(int urgency)
{
	if (urgency < 1)
		return 1;
	if (urgency > URGENCY_LEVELS)
		return URGENCY_LEVELS;
	return urgency;
}

static const struct sla_target *
sla_targets(const struct config *cfg, const char *tier, int urgency)
{
	const struct tier_policy *t = config_tier(cfg, tier ? tier : "unknown");

	if (t == NULL)
		t = config_tier(cfg, "unknown");
	return t == NULL ? NULL : &t->sla[sla_clamp_urgency(urgency) - 1];
}

long
sla_target(const struct config *cfg, const char *tier, int urgency, enum sla_kind kind)
{
	const struct sla_target *t = sla_targets(cfg, tier, urgency);

	if (t == NULL)
		return 86400;
	return kind == SLA_FIRST_RESPONSE ? t->first : t->resolve;
}

long
sla_business_target(const struct config *cfg, const char *tier, int urgency, enum sla_kind kind)
{
	const struct sla_target *t = sla_targets(cfg, tier, urgency);
	const struct config_span *s;

	if (t == NULL)
		return cfg->business_day_len;
	s = kind == SLA_FIRST_RESPONSE ? &t->first_span : &t->resolve_span;
	/* Each length is at most its 24x7 one, so this is at most the target. */
	return s->weeks * cfg->business_week_len + s->days * cfg->business_day_len + s->seconds;
}

enum config_clock
sla_clock(const struct config *cfg, int urgency)
{
	return cfg->clock[sla_clamp_urgency(urgency) - 1];
}

/* Where seconds of business time from start run out: 0 and *due set, or
 * -1 when the walk reaches the horizon first. */
static int
sla_walk_add(const struct config *cfg, time_t start, long seconds, time_t *due)
{
	struct sla_walk w;
	time_t open, close;

	sla_walk_init(&w, cfg, start, SLA_HORIZON_DAYS);
	while (sla_walk_next(&w, &open, &close)) {
		time_t from;

		if (close <= start)
			continue;
		from = open > start ? open : start;
		if (seconds <= close - from) {
			*due = from + seconds;
			return 0;
		}
		seconds -= (long)(close - from);
	}
	return -1;
}

time_t
sla_deadline(const struct config *cfg, const char *tier, int urgency,
    enum sla_kind kind, time_t start)
{
	time_t due;

	if (sla_clock(cfg, urgency) == CONFIG_CLOCK_24X7)
		return sla_add(start, sla_target(cfg, tier, urgency, kind));
	if (sla_walk_add(cfg, start, sla_business_target(cfg, tier, urgency, kind), &due) == 0)
		return due;
	sla_warn_horizon();
	return sla_add(start, sla_target(cfg, tier, urgency, kind));
}

time_t
sla_business_add(const struct config *cfg, time_t start, long seconds)
{
	time_t due;

	if (seconds < 0)
		seconds = 0;
	if (sla_walk_add(cfg, start, seconds, &due) == 0)
		return due;
	sla_warn_horizon();
	return sla_add(start, seconds);
}

long
sla_business_seconds(const struct config *cfg, time_t from, time_t to)
{
	struct sla_walk w;
	time_t open, close, end;
	long long last;
	long sum = 0;

	if (to < from)
		return -sla_business_seconds(cfg, to, from);
	from = sla_clamp_time(from);
	to = sla_clamp_time(to);
	sla_walk_init(&w, cfg, from, SLA_HORIZON_DAYS);
	last = sla_floor_div(sla_local(to), SLA_DAY);
	if (last < w.last_day)
		w.last_day = last;
	while (sla_walk_next(&w, &open, &close)) {
		if (open >= to)
			return sum;
		if (close <= from)
			continue;
		sum += (long)((close < to ? close : to) - (open > from ? open : from));
	}
	end = sla_walk_end(&w);
	if (to > end) {
		sla_warn_horizon();
		sum += (long)(to - (end > from ? end : from));
	}
	return sum;
}

int
sla_is_business_time(const struct config *cfg, time_t t)
{
	struct sla_walk w;
	time_t open, close;

	sla_walk_init(&w, cfg, t, 0);
	while (sla_walk_next(&w, &open, &close))
		if (open <= t && t < close)
			return 1;
	return 0;
}

int
sla_is_business_day(const struct config *cfg, time_t t)
{
	struct sla_walk w;
	time_t open, close;

	/* the walk yields a day's ranges only when it is open and no holiday */
	sla_walk_init(&w, cfg, t, 0);
	return sla_walk_next(&w, &open, &close);
}

time_t
sla_next_close(const struct config *cfg, time_t t)
{
	struct sla_walk w;
	time_t open, close, end = 0;

	sla_walk_init(&w, cfg, t, SLA_HORIZON_DAYS);
	while (sla_walk_next(&w, &open, &close)) {
		if (close <= t)
			continue;
		if (end == 0) {
			if (open > t)
				return 0;
		} else if (open > end) {
			break;
		}
		end = close;
	}
	return end;
}

time_t
sla_next_open(const struct config *cfg, time_t t)
{
	struct sla_walk w;
	time_t open, close;

	sla_walk_init(&w, cfg, t, SLA_HORIZON_DAYS);
	while (sla_walk_next(&w, &open, &close))
		if (close > t)
			return open > t ? open : t;
	return 0;
}

time_t
sla_clock_add(const struct config *cfg, int urgency, time_t start, long seconds)
{
	if (sla_clock(cfg, urgency) == CONFIG_CLOCK_24X7)
		return start + seconds;
	return sla_business_add(cfg, start, seconds);
}

long
sla_clock_seconds(const struct config *cfg, int urgency, time_t from, time_t to)
{
	if (sla_clock(cfg, urgency) == CONFIG_CLOCK_24X7)
		return (long)(to - from);
	return sla_business_seconds(cfg, from, to);
}

time_t
sla_point(const struct config *cfg, const char *tier, int urgency, enum sla_kind kind,
    time_t start, int pct, long extra)
{
	long target = sla_clock(cfg, urgency) == CONFIG_CLOCK_24X7 ?
	    sla_target(cfg, tier, urgency, kind) : sla_business_target(cfg, tier, urgency, kind);

	return sla_clock_add(cfg, urgency, start, target / 100 * pct + target % 100 * pct / 100 + extra);
}
