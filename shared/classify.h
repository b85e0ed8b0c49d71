/*
 * classify - decide urgency, category, language and whether a message was
 * written by a machine, from the decoded message.
 *
 * The vocabulary lives in conf/keywords/ (KeywordsDir), never in C: each
 * *.kw file has lines
 *     CLASS  WEIGHT  PHRASE
 * where PHRASE is matched case-insensitively (Unicode simple case folding),
 * at a word start; it must end at a word end unless it ends with '*' (a
 * stem: "отправ*").  CLASS is one of
 *     outage      a core function is fully broken (cannot send/receive, down)
 *     impact      urgency or impact wording (urgent, ASAP, срочно, терміново)
 *     security    breach, compromise, data loss (always P1)
 *     defect      an ordinary fault
 *     workaround  the client has a way around it (caps at P3)
 *     howto       questions, requests, thanks, information (P4)
 *     category:NAME   evidence for category NAME (outgoing-mail, ...)
 * Negative weights cancel ("not urgent" -2 against "urgent" 2).  Other
 * line kinds in the same files:
 *     threshold CLASS N         score needed for CLASS to count (default 2)
 *     quote-attribution SUFFIX  a line ending in SUFFIX ("wrote:", "пишет:")
 *                               starts quoted text
 *     quote-separator PREFIX    a line starting with PREFIX
 *                               ("-----Original Message-----") starts quoted text
 * Quoted text (lines starting with '>', and everything after an attribution
 * or separator line) is not scored.  Rules are loaded once and are
 * read-only afterwards, so one set can be shared by all milter threads.
 *
 * Urgency (content): security -> P1; outage with impact, SHOUTING or "!!!"
 * -> P1; outage -> P2; defect -> P3 (workaround caps at P3); howto alone ->
 * P4; otherwise P3.  classify_adjust() then raises one level (never above
 * P1) for each of: header priority, tier trial, incident watch, third or
 * later message on an open case within 24 hours.
 */
#ifndef HG_CLASSIFY_H
#define HG_CLASSIFY_H

#include <stddef.h>

#include "buf.h"
#include "msg.h"

struct classify_rules;

/* Loads every *.kw file in dir.  On error returns NULL and appends
 * "FILE:LINE: problem" lines to errors. */
struct classify_rules *classify_rules_load(const char *dir, struct buf *errors);
void	classify_rules_free(struct classify_rules *rules);	/* accepts NULL */

struct classify_result {
	int	urgency;		/* final, 1..4 (P1..P4) */
	int	content_urgency;	/* from the text alone */
	char	category[48];		/* "outgoing-mail", ..., "other" */
	char	lang[8];		/* "en", "ru", "uk" (default "en") */
	char	auto_reason[64];	/* "" for a person; else e.g. "auto-submitted", "bounce" */
	int	header_priority;	/* X-Priority 1-2 / Importance: high / Priority: urgent */
	char	reasons[600];		/* human-readable evidence, UTF-8, "; "-separated */
};

/* envelope_from: as given by the MTA ("" or "<>" for the null sender). */
void	classify_message(const struct classify_rules *rules, const struct msg *m,
	    const char *envelope_from, struct classify_result *out);

/* Applies the one-level raises described above and appends their reasons. */
void	classify_adjust(struct classify_result *r, const char *tier, int watch,
	    int recent_messages_24h);

/* "P1".."P4" */
const char *classify_urgency_name(int urgency);

#endif
