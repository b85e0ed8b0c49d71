/*
 * triage_model - the learned part of triage: a small linear model over the
 * client's own words (stemmed) and the rules' findings, beside the keyword
 * rules of classify.c.
 *
 * A message becomes a set of features (each counts once):
 *     w:STEM        a word of the scored text (quoted text and signature
 *                   already cut away by classify.c), stemmed by Snowball
 *                   (libstemmer) for en, de, fr, es, it, pt and ru; Polish
 *                   and Ukrainian, which Snowball lacks, keep their first
 *                   five letters (a word of four or five loses a final
 *                   vowel): their endings carry case and person, the
 *                   start carries the meaning.  Latin diacritics are
 *                   removed after stemming, so "wysłać" and "wyslac" meet.
 *     b:STEM_STEM   two words in a row within a sentence ("not urgent",
 *                   "не уход")
 *     c:GRAM        the character 4-grams of each of the first
 *                   TRIAGE_GRAM_WORDS words, unstemmed, with '^' and '$'
 *                   at its ends ("^зни", "никл"): what a stemmer misses
 *                   (Polish, Ukrainian, transliteration, typos) still
 *                   shares most of them; each counts half
 *     r:NAME        what the rules found ("r:outage", "r:u2", "r:cat-login")
 * Only the first TRIAGE_MAX_WORDS words are read, so the cost is bounded
 * whatever the message's size.
 *
 * The model (triage.model in KeywordsDir, written by `make model` from the
 * dev part of tests/eval only) holds, per feature, one weight for each
 * urgency P1..P4 and each category; the class with the highest sum wins.
 * It is read-only after loading and shared by all milter threads.
 *
 * File format, one item per line, '#' comments:
 *     triage-model 1
 *     categories NAME...            (the category classes, in weight order)
 *     gate PU PC                    (optional, default 0 0)
 *     bias U1 U2 U3 U4 C1 ... Cn
 *     FEATURE U1 U2 U3 U4 C1 ... Cn
 * The gate is how sure the model must be to overrule the rules: its
 * urgency (category) is used only when its probability is at least PU
 * (PC); below that the rules' answer stands.
 */
#ifndef HG_TRIAGE_MODEL_H
#define HG_TRIAGE_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define TRIAGE_MODEL_FILE	"triage.model"
#define TRIAGE_MAX_WORDS	150
#define TRIAGE_MAX_FEATS	4000
#define TRIAGE_MAX_CATS		16

/* How much a feature counts: a character 4-gram ("c:") is one of many
 * for each word, so each counts for less. */
#define TRIAGE_GRAM_VALUE	0.5
#define TRIAGE_GRAM_WORDS	60	/* words whose 4-grams are read */
double	triage_feature_value(const char *name);

/* The features of one message. */
struct triage_feats {
	uint64_t	hash[TRIAGE_MAX_FEATS];
	uint32_t	off[TRIAGE_MAX_FEATS];	/* name in text */
	uint16_t	len[TRIAGE_MAX_FEATS];
	size_t		n;
	struct buf	text;			/* the names, NUL-separated */
	uint16_t	slot[TRIAGE_MAX_FEATS];	/* where each sits in seen, to clear it */
	uint64_t	seen[8192];		/* open addressing over hash; 0 = free */
};

void	triage_feats_init(struct triage_feats *tf);
void	triage_feats_free(struct triage_feats *tf);
/* The calling thread's own set, emptied: no allocation per message (the
 * set is large); freed when the thread ends. */
struct triage_feats *triage_feats_thread(void);
/* Adds one feature by name (kept once; silently dropped past the cap). */
void	triage_feats_add(struct triage_feats *tf, const char *name, size_t len);
/* Adds the w: and b: features of folded (lower-cased UTF-8) text, stemmed
 * for lang ("en", "ru", ...; anything unknown is only de-accented). */
void	triage_feats_words(struct triage_feats *tf, const char *text, size_t len,
	    const char *lang);

struct triage_model;

/* Returns NULL and appends "PATH:LINE: problem" to errors on a bad file. */
struct triage_model *triage_model_load(const char *path, struct buf *errors);
void	triage_model_free(struct triage_model *tm);	/* accepts NULL */

struct triage_decision {
	int	urgency;		/* 1..4 */
	char	category[48];
	double	p_urgency[4];		/* softmax of the urgency scores */
	double	p_category;		/* softmax probability of the category */
	int	sure_urgency;		/* p_urgency[urgency - 1] >= the gate */
	int	sure_category;
	/* the features that pushed hardest toward the urgency chosen,
	 * "; "-free text such as "исчезл*, r:outage" */
	char	why[96];
};

void	triage_model_decide(const struct triage_model *tm, const struct triage_feats *tf,
	    struct triage_decision *out);

#endif
