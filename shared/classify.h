/*
 * classify - decide urgency, category, language and whether a message was
 * written by a machine, from the decoded message.
 *
 * The vocabulary lives in conf/keywords/ (KeywordsDir), never in C: every
 * *.kw file in the directory is read, in name order (strcmp).  '#' at the
 * start of a line (after blanks) begins a comment; blank lines are ignored.
 * Phrase lines are
 *     CLASS[,CLASS...]  WEIGHT  PHRASE
 * where PHRASE is matched case-insensitively (simple case folding for Latin,
 * Greek and Cyrillic; ё matches е, ß matches ss, ’ ʼ ` ´ match ', runs of
 * blanks and line breaks match one space, so phrases survive line wrapping),
 * at a word start; it must end at a word end unless it ends with '*' (a
 * stem: "отправ*").  A Latin phrase written with diacritics also matches the
 * same phrase written without them ("não consigo" matches "nao consigo"),
 * not the reverse.  WEIGHT is an integer -10..10; it applies to every CLASS
 * listed.  CLASS is one of
 *     outage      a core function is fully broken (cannot send/receive, down)
 *     impact      urgency or impact wording (urgent, ASAP, срочно, терміново)
 *     security    breach, compromise, data loss (always P1)
 *     defect      an ordinary fault
 *     workaround  the client has a way around it (caps at P3)
 *     howto       questions, requests, thanks, information (P4)
 *     category:NAME   evidence for category NAME (outgoing-mail, ...);
 *                 NAME is [a-z0-9-], at most 47 bytes
 *     group:NAME  a word group for near rules (below); counts nothing by
 *                 itself
 *     lang:CODE   evidence that the text is in language CODE ("de"); read
 *                 over the first 4 KB only, every occurrence counts.
 *                 lang is "ru" or "uk" when Cyrillic letters are at least
 *                 a third of the letters and the Ukrainian-only (і ї є ґ)
 *                 or Russian-only (ы э ъ) letters plus 3 * lang:ru/lang:uk
 *                 hits favour one; otherwise the lang class with the most
 *                 hits (at least 3, and 1.5 times lang:en's); else "en".
 * A phrase counts once per message in the body (WEIGHT) and once in the
 * subject (2 * WEIGHT: a subject is a summary the client chose), however
 * often it repeats.  Negative weights cancel: "not urgent" -2 contains
 * "urgent" 2 and the two add up to 0 wherever they occur.  A class counts
 * when its sum reaches its threshold.  Other line kinds in the same files:
 *     threshold CLASS N         sum needed for CLASS to count (default 2,
 *                               N 1..100); a category's first mention, in
 *                               threshold or phrase lines, sets its rank
 *                               for breaking ties (earlier wins)
 *     quote-attribution SUFFIX  a line ending in SUFFIX ("wrote:", "пишет:")
 *                               starts quoted text; '*' in SUFFIX stands
 *                               for any text ("schrieb *:")
 *     quote-separator PREFIX    a line starting with PREFIX
 *                               ("-----Original Message-----") starts quoted text
 *     quote-header PREFIX       two consecutive lines that both start with a
 *                               quote-header prefix ("From:" then "Sent:")
 *                               start quoted text (Outlook's header block)
 *     signature LINE            a line that is exactly LINE ("--", trailing
 *                               blanks ignored) starts the signature, which
 *                               is not scored either
 *     acronym WORD              an all-capitals WORD that is not shouting
 *     reply-prefix PREFIX       a subject starting with PREFIX ("Re:", "AW:",
 *                               "Ответ:") is inherited from the message
 *                               answered and is not scored
 *     near CLASS[,CLASS] WEIGHT WINDOW group:A group:B
 *                               a word of group A and one of group B, in
 *                               either order, no more than WINDOW folded
 *                               bytes apart (1..400) and both in the subject
 *                               or both in the body, count once as a
 *                               phrase of WEIGHT for each CLASS ("logins"
 *                               ... "from China", "contacts" ... "исчезли");
 *                               at most 32 places per group and message
 *                               are kept, so the cost stays bounded
 *     auto-subject PREFIX       a subject starting with PREFIX ("Automatic
 *                               reply:", "Abwesenheitsnotiz:") marks an
 *                               automatic reply (auto_reason
 *                               "autoreply-subject") even without headers
 * Quoted text is not scored: lines starting with '>', and everything after
 * a separator or quote-header block.  After an attribution line, when the
 * next non-blank line starts with '>', only the '>' lines are quoted (the
 * client may answer below the quote); otherwise everything after it is.
 * Rules are loaded once and are read-only afterwards, so one set can be
 * shared by all milter threads; classify_message() keeps its state on the
 * heap per call and is reentrant.
 *
 * Urgency (content): security -> P1; outage with impact, SHOUTING or "!!!"
 * -> P1; outage -> P2; defect -> P3 (workaround caps at P3, except for
 * security); howto without outage or defect -> P4; a question with nothing
 * broken named (a '?' in the scored text, or three words at most: "help",
 * "???") -> P4; otherwise P3.
 * SHOUTING: three all-capital words of three or more letters within about
 * ten long words, or a subject whose long words are mostly capitals;
 * acronyms and lines quoting a server reply ("550 5.7.1 ...") do not count.
 * It is judged only when it can change the urgency (an outage), so
 * "CAPITALS" appears in the reasons only then.  "!!!": a run of three '!'
 * (two when there is also an all-capital word).  Machine-generated mail
 * (auto_reason set) is always P4 and classify_adjust() does not raise it,
 * so it never pages anyone.
 *
 * classify_message() leaves urgency == content_urgency; classify_adjust()
 * then raises one level (never above P1) for each of: header priority
 * (only when the text names something broken: a sender's flag does not
 * make a price question urgent), tier trial, incident watch, third or later
 * message on an open case within 24 hours.
 */
#ifndef HG_CLASSIFY_H
#define HG_CLASSIFY_H

#include <stddef.h>

#include "buf.h"
#include "msg.h"

/* reasons never holds more than this many bytes (plus the NUL). */
#define CLASSIFY_REASONS_MAX	300

struct classify_rules;

/* Loads every *.kw file in dir.  On error returns NULL and appends
 * "FILE:LINE: problem" lines (or "DIR: problem") to errors, which may be
 * NULL.  A missing or empty directory is an error. */
struct classify_rules *classify_rules_load(const char *dir, struct buf *errors);
/* flags CLASSIFY_RULES_ONLY: the keyword rules without the learned part
 * (triage.model is not read), as the tests of the rules want them. */
#define CLASSIFY_RULES_ONLY	1
struct classify_rules *classify_rules_load_opts(const char *dir, int flags, struct buf *errors);
void	classify_rules_free(struct classify_rules *rules);	/* accepts NULL */
/* 1 when the learned part (triage.model) was loaded with the rules. */
int	classify_rules_learned(const struct classify_rules *rules);

struct classify_result {
	int	urgency;		/* final, 1..4 (P1..P4) */
	int	content_urgency;	/* from the text alone */
	char	category[48];		/* "outgoing-mail", ..., "other" */
	char	lang[8];		/* "en", "ru", "uk", "de", ... (default "en") */
	char	auto_reason[64];	/* "" for a person; else "auto-submitted", "list", ... */
	int	header_priority;	/* X-Priority 1-2 / Importance: high / Priority: urgent */
	int	problem;		/* the text names something broken (security, outage,
					 * defect): only then does header_priority raise it */
	char	reasons[600];		/* human-readable evidence, UTF-8, "; "-separated,
					 * at most CLASSIFY_REASONS_MAX bytes, no CR/LF */
	size_t	reasons_content_len;	/* classify_adjust() cuts reasons back to
					 * this before appending, so calling it
					 * again replaces the earlier raises */
};

/* Fills *out completely.  m must not be NULL; its strings may be NULL
 * (treated as "").  envelope_from: as given by the MTA ("" or "<>" for the
 * null sender), NULL when unknown. */
void	classify_message(const struct classify_rules *rules, const struct msg *m,
	    const char *envelope_from, struct classify_result *out);

struct triage_feats;

/* classify_message() by the rules alone (the learned part, if any, is not
 * asked), and the features the learned part reads (triage_model.h) added
 * to tf, which the caller has set up with triage_feats_init(): what `make
 * model` trains on. */
void	classify_features(const struct classify_rules *rules, const struct msg *m,
	    const char *envelope_from, struct classify_result *out, struct triage_feats *tf);

/* Applies the one-level raises described above to r->content_urgency and
 * appends their reasons.  tier may be NULL; recent_messages_24h counts the
 * client's messages on the case in the last 24 hours including this one
 * (so 3 or more raises).  Idempotent: it always starts again from
 * content_urgency and reasons_content_len. */
void	classify_adjust(struct classify_result *r, const char *tier, int watch,
	    int recent_messages_24h);

/* "P1".."P4" ("P3" for anything out of range) */
const char *classify_urgency_name(int urgency);

#endif
