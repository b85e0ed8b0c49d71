/*
 * sla - the one place deadlines are computed.
 *
 * The milter's X-Helpgate-SLA-Due header, the worker's acknowledgement and
 * the SLA timers all call sla_deadline(), so a client is never promised one
 * time and measured against another.  Targets come from the config's
 * per-tier table (SLA TIER Pn first=... resolve=...); an unknown tier name
 * uses the "unknown" tier's targets.
 *
 * Two clocks, chosen per urgency (Clock Pn 24x7|business; default P1 24x7,
 * P2..P4 business):
 *
 *   24x7      the deadline is start + target, in real seconds.
 *   business  only business time counts: the instants whose wall-clock time
 *             in Timezone lies in one of the day's BusinessHours ranges, on
 *             a day that is not a Holiday.  A clock started outside hours
 *             starts at the next opening.  A target used up exactly at a
 *             closing time is due at that closing time (Friday 18:00, not
 *             Monday 09:00).
 *
 * Units of a target on the business clock: s, m and h are business seconds,
 * minutes and hours.  "Nd" is N standard business days, where a standard
 * business day is the business time of the longest day of the configured
 * week (9 h for mon-fri 09:00-18:00; 8 h for 09:00-13:00 14:00-18:00),
 * counted in business time like any other duration: "2d" from Monday 12:00
 * on a 09:00-18:00 week is Wednesday 12:00.  "Nw" is N times the business
 * time of the whole configured week (45 h for mon-fri 09:00-18:00), so
 * "1w" from Monday 09:00 is due Friday 18:00.  On the 24x7 clock a day is
 * 86400 s and a week 7 days, as written.
 *
 * Time zones: everything is evaluated in the process time zone, which the
 * programs set from Timezone with clock_set_timezone() before calling here.
 * An opening or closing time is the first instant at which the wall clock
 * shows that time (or a later one) on that date, so:
 *   - a range that the clocks jump over (03:00-04:00 on a spring-forward
 *     day) is empty, and a range across the jump is an hour shorter in real
 *     time (00:00-24:00 is 23 h that day);
 *   - across a fall-back the repeated hour counts as real time
 *     (00:00-24:00 is 25 h that day); a boundary inside the repeated hour
 *     is its first occurrence;
 *   - hours on a day whose change happens at night are unaffected.
 * Deadlines are exact to the second.  Thread-safe (localtime_r only).
 *
 * Cost: a computation walks business intervals from start, O(calendar days
 * walked), a handful of localtime_r() calls per business day.  The walk
 * stops three years ahead (SLA_HORIZON_DAYS); beyond that a deadline is
 * counted around the clock and the fact is logged once per process.
 */
#ifndef HG_SLA_H
#define HG_SLA_H

#include <time.h>

#include "config.h"

#define SLA_HORIZON_DAYS	1096	/* how far ahead a business-time walk goes */

enum sla_kind { SLA_FIRST_RESPONSE, SLA_RESOLUTION };

/* The target duration in seconds for tier/urgency (urgency 1..4, clamped),
 * as written: a day is 86400 s.  The 24x7 clock's length. */
long	sla_target(const struct config *cfg, const char *tier, int urgency, enum sla_kind kind);
/* The same target as business seconds (see "Units" above). */
long	sla_business_target(const struct config *cfg, const char *tier, int urgency,
	    enum sla_kind kind);
/* The clock urgency (1..4, clamped) runs on. */
enum config_clock sla_clock(const struct config *cfg, int urgency);

/* Where a clock started at start stands after `seconds` of its own time
 * (real seconds on 24x7, business seconds otherwise). */
time_t	sla_clock_add(const struct config *cfg, int urgency, time_t start, long seconds);
/* How much of urgency's clock runs between two instants. */
long	sla_clock_seconds(const struct config *cfg, int urgency, time_t from, time_t to);
/* The instant pct percent of the target (plus extra clock seconds, e.g.
 * time paused) after start, on the urgency's clock: 100 is the deadline. */
time_t	sla_point(const struct config *cfg, const char *tier, int urgency, enum sla_kind kind,
	    time_t start, int pct, long extra);

/* The deadline for a clock that started at start, on the urgency's clock. */
time_t	sla_deadline(const struct config *cfg, const char *tier, int urgency,
	    enum sla_kind kind, time_t start);

/* The instant at which seconds of business time, counted from start, are
 * used up (start itself or the next opening when seconds is 0).  Beyond the
 * horizon: start + seconds, logged once. */
time_t	sla_business_add(const struct config *cfg, time_t start, long seconds);

/* Business time between two instants, in seconds; negative when to is
 * before from (sla_business_seconds(a, b) == -sla_business_seconds(b, a)).
 * For any from and s >= 0 within the horizon,
 * sla_business_seconds(from, sla_business_add(from, s)) == s.  Time
 * beyond the horizon counts around the clock (logged once). */
long	sla_business_seconds(const struct config *cfg, time_t from, time_t to);

/* 1 if t's local date is a business day (it has BusinessHours and is not a
 * Holiday), else 0. */
int	sla_is_business_day(const struct config *cfg, time_t t);

/* 1 if t is business time (inside a range, not a holiday), else 0. */
int	sla_is_business_time(const struct config *cfg, time_t t);

/* The end of the business interval that holds t, or 0 when t is outside
 * business hours.  Ranges that touch (13:00-14:00 14:00-18:00, or a day
 * ending at 24:00 followed by one opening at 00:00) are one interval; a
 * stretch longer than the horizon ends at the horizon. */
time_t	sla_next_close(const struct config *cfg, time_t t);

/* t if it is business time, else the next opening; 0 if there is none
 * within the horizon. */
time_t	sla_next_open(const struct config *cfg, time_t t);

#endif
