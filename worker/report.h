/*
 * report - the week a support lead forwards: "Report ADDR at=mon 08:00"
 * mails what `helpgatectl report` computes, for the last week and the
 * eight before it: first response met % and median per tier and urgency,
 * resolution met %, cases per category, the slowest cases, and the
 * incidents with the cause and lesson recorded on resolve (support's work
 * on mistakes).  Three charts (first response met % and median per week,
 * cases per category) are inline PNG parts drawn with cairo (chart.h),
 * each with its numbers beside it as text; the plain-text part has the
 * same numbers.  Once per slot, like the digest (digest.h).
 *
 * A week is the seven days up to the report's time; a case counts in the
 * week it was opened.
 */
#ifndef HG_REPORT_H
#define HG_REPORT_H

#include <time.h>

#include "ack.h"
#include "buf.h"
#include "compose.h"
#include "config.h"
#include "store.h"

#define REPORT_WEEKS	9
#define REPORT_CHARTS	3

/* Met when answered (resolved) by the deadline, missed when answered late
 * or still open past it; an open case within its deadline, or a
 * resolution clock paused while waiting for the client, is undecided.
 * report, stats and the weekly letter all count with this. */
enum report_outcome { REPORT_OPEN, REPORT_MET, REPORT_MISSED };
void	report_outcome(const struct case_rec *c, long long now, enum report_outcome *first,
	    enum report_outcome *resolve);

/* ---- what helpgatectl report prints: per tier and urgency ---- */
struct report_group {
	char	 tier[32];
	int	 urgency;
	long	 cases, first_met, first_missed, resolve_met, resolve_missed;
	long	*response;		/* seconds to the first response */
	size_t	 nresponse;
};

struct report_groups {
	struct report_group	*g;
	size_t			 n;
};

/* Cases opened in [since, until) (until 0: no end), grouped by tier and
 * urgency, sorted; undecided SLAs are neither met nor missed at now. */
enum store_rc report_groups(struct store *s, time_t since, time_t until, time_t now,
	    struct report_groups *out);
void	report_groups_free(struct report_groups *r);
/* Nearest-rank percentile of g's response times (sorted by
 * report_groups); -1 when there are none. */
long	report_percentile(const struct report_group *g, int pct);

/* ---- the letter ---- */
struct report_letter {
	struct buf		text, html;
	struct buf		png[REPORT_CHARTS];
	struct compose_inline	inl[REPORT_CHARTS];
	char			cid[REPORT_CHARTS][96];
	size_t			cases;		/* opened in the last week */
};

/* Renders the report for the week ending at now; domain names the
 * images' Content-IDs.  report_letter_free() after. */
enum store_rc report_render(const struct config *cfg, struct store *s, time_t now,
	    const char *domain, struct report_letter *out);
void	report_letter_free(struct report_letter *l);

/* Puts each report that is due and not yet sent in the outbox; returns
 * how many, -1 on a store failure. */
int	report_run(struct ack_ctx *a, struct store *s, time_t now);

#endif
