/*
 * clock - the one source of "now" for every program.
 *
 * HELPGATE_NOW, when set, overrides the system clock so that tests can
 * drive SLA timers deterministically:
 *   HELPGATE_NOW=2026-11-30T09:00:00+02:00   fixed instant (ISO 8601)
 *   HELPGATE_NOW=@1764486000                  fixed instant (epoch seconds)
 *   HELPGATE_NOW=/path/to/file                the file holds one of the above
 *                                             and is re-read on every call,
 *                                             so a test can move time forward
 *                                             under a running daemon.
 * An unparsable override is ignored with a warning (once) and the real
 * clock is used.
 */
#ifndef HG_CLOCK_H
#define HG_CLOCK_H

#include <stddef.h>
#include <time.h>

time_t	clock_now(void);

/* Parses ISO 8601 "YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM|-HH:MM]" (a missing offset
 * means the process time zone) or "@EPOCH".  Returns 0 or -1. */
int	clock_parse_iso8601(const char *s, time_t *out);

/* Formats t in the process time zone (set from the config's Timezone). */
void	clock_format_rfc5322(time_t t, char *out, size_t outlen);	/* Mon, 30 Nov 2026 11:00:00 +0200 */
void	clock_format_iso8601(time_t t, char *out, size_t outlen);	/* 2026-11-30T11:00:00+02:00 */

/* Sets the process time zone (TZ + tzset) to an IANA name; -1 when the
 * name is not in the system's zoneinfo.  Call before starting threads. */
int	clock_set_timezone(const char *iana_name);

#endif
