/*
 * classify - urgency, category, language and machine detection (classify.h).
 *
 * How a message is read (budget: a 100 KB message in 200 us on one core):
 *  1. The subject, a '\n', then the body lines that are the client's own
 *     words (quoted lines, quote blocks and the signature left out) are
 *     case-folded into one heap buffer in a single pass (fold_run).  Folding
 *     keeps the byte length of what most mail is made of (ASCII, Cyrillic,
 *     Latin-1, Greek): every blank becomes one ' ' but runs are kept, so the
 *     few places where lengths change (NBSP, ’ -> ', dropped quoted lines)
 *     are recorded as "anchors", and a folded offset maps back to the
 *     original text when a phrase is quoted in the reasons.
 *  2. An Aho-Corasick automaton with a dense transition table over byte
 *     classes (only bytes that occur in phrases get their own class) finds
 *     every phrase in one linear scan.  A transition carries a flag bit when
 *     its target ends a phrase, so the hot loop is a load, a mask and a
 *     test; eight walks over eight pieces of the text run interleaved so
 *     that their table loads overlap (ac_scan).  States reached by a space
 *     loop on further blanks: that is matching with blank runs collapsed.
 *     Word boundaries are checked only on hits.  Language phrases (lang:,
 *     mostly short stop words that would hit all the time) live in a second
 *     automaton run over the first LANG_SCAN bytes.
 *  3. Scores per class decide urgency, category and language.  Shouting is
 *     judged only when it can change the urgency (an outage), from the runs
 *     of capitals the fold noted, so ordinary text pays nothing for it.
 * Everything a call writes lives in a struct scan allocated per call, so
 * the rules stay read-only and calls on different threads never meet.
 * Measurements behind these choices: tests/bench/bench-classify.c.
 */
#include "classify.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <unistd.h>

#include "triage_model.h"
#include "utf8.h"
#include "xalloc.h"

#define MAX_CLASSES	64
#define MAX_LINE	4096	/* bytes in one .kw line */
#define MAX_PHRASE	200	/* bytes in one phrase or marker */
#define MARKER_WINDOW	256	/* most bytes of a body line compared with quote markers */
#define HEAD_BITS	1024
#define LANG_SCAN	4096	/* folded bytes read for language evidence: ~600 words */
#define SHOW_PER_CLASS	2	/* phrases quoted per class in reasons */
#define GROUP_HITS	32	/* places kept per word group and message (near rules) */
#define MAX_NEAR	64	/* near rules */
#define SHOW_PHRASE_MAX	40	/* bytes of one quoted phrase in reasons */
#define CONTENT_REASONS_MAX 220	/* leaves room for classify_adjust()'s raises */
#define DEFAULT_THRESHOLD 2
#define AC_OUT		0x80000000u	/* transition flag: target state ends a phrase */
#define AC_ROW		0x7fffffffu
#define AC_MISSING	UINT32_MAX	/* trie edge not yet there (build time only) */

/* The classes with a fixed meaning come first, in this order. */
enum { C_OUTAGE, C_IMPACT, C_SECURITY, C_DEFECT, C_WORKAROUND, C_HOWTO, C_BASE };
static const char *const base_class_names[C_BASE] = {
	"outage", "impact", "security", "defect", "workaround", "howto",
};
enum class_kind { K_BASE, K_CATEGORY, K_LANG, K_GROUP };

/* Character flags, for ASCII bytes and decoded code points alike. */
#define CF_LETTER	0x01
#define CF_UPPER	0x02
#define CF_DIGIT	0x04
#define CF_CYR		0x08
#define CF_UK		0x10	/* і ї є ґ: Ukrainian, not Russian */
#define CF_RU		0x20	/* ы э ъ ё: Russian, not Ukrainian */
#define CF_SPACE	0x40
#define CF_MB		0x80	/* ASCII table only: first byte of a multibyte sequence */
#define CF_ALNUM	(CF_LETTER | CF_DIGIT)
#define ASC_SLOW	0x10000	/* r->asc: not a plain byte to copy (capital, '!', multibyte) */

/* What folding does with one 2-byte character. */
enum { OP_COPY2, OP_LETTER2, OP_ONE, OP_SPACE, OP_DROP };	/* OP_LETTER2: OP_COPY2 of a small letter */
struct fold2 {
	unsigned char b0, b1;	/* folded bytes (b1 unused for OP_ONE) */
	unsigned char flags;
	unsigned char op;
};

struct classinfo {
	char		name[56];	/* "outage", "category:billing", "lang:de" */
	const char     *value;		/* the part after ':', or name */
	enum class_kind	kind;
	int		threshold;
};

struct cw {
	uint16_t	cls;
	int16_t		weight;
};

struct phrase {
	uint32_t	cw_first;	/* into rules->cws */
	uint16_t	cw_count;
	uint8_t		lang;		/* lives in the language automaton */
};

struct ac_entry {
	uint32_t	phrase;
	uint16_t	len;		/* folded bytes */
	uint8_t		stem;
	uint8_t		spaces;		/* has a blank: the text may have more than one there */
};

struct ac {
	uint32_t       *delta;		/* nstates * k: target * k, | AC_OUT */
	uint32_t	nstates;
	uint32_t	k;		/* byte classes; class 0 = bytes in no phrase */
	unsigned char	cmap[256];
	uint32_t       *out_first;	/* per state: its entries in entries[] */
	uint16_t       *out_count;
	uint32_t       *dict;		/* per state: next state with entries on the failure chain, 0 = none */
	struct ac_entry *entries;
	size_t		nentries;
	size_t		maxlen;		/* longest key, bytes */
};

struct marker {
	char	       *text;		/* folded */
	size_t		len;
	int		glob;		/* attribution with '*': any text there */
};

/* Quote markers of one kind.  Every body line is tested against them, so
 * cheap filters come first - the raw first two bytes (rules->marker_pair),
 * then a hash of the first head_n folded characters, for prefix kinds; the
 * last raw byte for attributions - and only then a fold of as many bytes as
 * the longest marker can need. */
struct markers {
	struct marker  *v;
	size_t		n;
	size_t		window;		/* raw bytes to fold for a comparison */
	int		head_n;		/* characters head_key() reads: min(3, shortest marker) */
	unsigned char	last[256];	/* attribution: raw last bytes worth a look */
	unsigned char	head[HEAD_BITS / 8];	/* bitmap of the markers' head_key() values */
};

struct classify_rules {
	struct classinfo classes[MAX_CLASSES];
	size_t		nclasses;
	struct phrase  *phrases;
	size_t		nphrases;
	struct cw      *cws;
	size_t		ncws;
	struct ac	main_ac, lang_ac;
	struct markers	attribution, separator, qheader, signature;
	struct markers	reply;		/* subject prefixes of a reply or forward */
	struct markers	autosubj;	/* subject prefixes of an automatic reply */
	/* "near CLASSES WEIGHT WINDOW group:A group:B": a word of group A and
	 * one of group B within WINDOW folded bytes of each other count as
	 * one phrase of CLASSES (a function and its state, said apart:
	 * "logins ... from another country") */
	struct near_rule {
		int		a, b;		/* group classes */
		uint32_t	window;
		int		cls[8];
		int		ncls;
		int		weight;
	}		near[MAX_NEAR];
	size_t		nnear;
	/* bit b0 << 8 | b1: a line starting with raw bytes b0 b1 may start
	 * with a separator, quote-header or signature marker */
	unsigned char	marker_pair[65536 / 8];
	char	      **acronyms;	/* open addressing, folded; NULL = empty slot */
	size_t		acronym_mask;
	unsigned char	asc_fold[256];
	unsigned char	asc_fl[256];
	uint32_t	asc[256];	/* asc_fold | asc_fl << 8 | ASC_SLOW: one load in the hot loop */
	struct fold2	f2[0x800 - 0x80];
	struct triage_model *model;	/* triage.model in the directory, or NULL */
};

/* ------------------------------------------------------------------ */
/* Case folding tables                                                 */

static void
tables_init(struct classify_rules *r)
{
	for (unsigned b = 0; b < 256; b++) {
		unsigned char fold = (unsigned char)b, fl = 0;

		if (b >= 'A' && b <= 'Z') {
			fold = (unsigned char)(b + 32);
			fl = CF_LETTER | CF_UPPER;
		} else if (b >= 'a' && b <= 'z')
			fl = CF_LETTER;
		else if (b >= '0' && b <= '9')
			fl = CF_DIGIT;
		else if (b < 0x20 || b == ' ' || b == 0x7f) {
			fold = ' ';
			fl = CF_SPACE;
		} else if (b >= 0x80)
			fl = CF_MB;
		r->asc_fold[b] = fold;
		r->asc_fl[b] = fl;
		r->asc[b] = (uint32_t)fold | (uint32_t)fl << 8 |
		    (fl & (CF_MB | CF_UPPER) || b == '!' ? ASC_SLOW : 0);
	}

	for (uint32_t cp = 0x80; cp < 0x800; cp++) {
		struct fold2 *e = &r->f2[cp - 0x80];
		uint32_t lc = cp;
		unsigned fl = 0;

		e->op = OP_COPY2;
		if (cp < 0xa0 || cp == 0xa0) {		/* C1 controls, NBSP */
			e->op = OP_SPACE;
			e->flags = CF_SPACE;
			continue;
		}
		if (cp == 0xad) {			/* soft hyphen: invisible */
			e->op = OP_DROP;
			continue;
		}
		if (cp == 0xb4 || cp == 0x2bc) {	/* ´ ʼ used as apostrophes */
			e->op = OP_ONE;
			e->b0 = '\'';
			continue;
		}
		if (cp == 0xdf) {			/* ß matches ss */
			e->op = OP_LETTER2;
			e->b0 = 's';
			e->b1 = 's';
			e->flags = CF_LETTER;
			continue;
		}
		if (cp == 0x130 || cp == 0x17f) {	/* İ -> i, ſ -> s */
			e->op = OP_ONE;
			e->b0 = cp == 0x130 ? 'i' : 's';
			e->flags = (unsigned char)(CF_LETTER | (cp == 0x130 ? CF_UPPER : 0));
			continue;
		}

		if (cp == 0xaa || cp == 0xb5 || cp == 0xba)
			fl = CF_LETTER;
		else if (cp >= 0xc0 && cp <= 0xde && cp != 0xd7) {
			lc = cp + 0x20;
			fl = CF_LETTER | CF_UPPER;
		} else if (cp >= 0xe0 && cp <= 0xff && cp != 0xf7)
			fl = CF_LETTER;
		else if (cp >= 0x100 && cp <= 0x17f) {
			int upper = 0;

			fl = CF_LETTER;
			if (cp <= 0x137 || (cp >= 0x14a && cp <= 0x177))
				upper = (cp & 1) == 0;
			else if ((cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17e))
				upper = (cp & 1) == 1;
			if (cp == 0x178) {
				lc = 0xff;
				fl |= CF_UPPER;
			} else if (upper) {
				lc = cp + 1;
				fl |= CF_UPPER;
			}
		} else if (cp >= 0x180 && cp <= 0x2ff)
			fl = CF_LETTER;
		else if (cp >= 0x300 && cp <= 0x36f)
			/* combining marks: part of the word; "upper" so that they
			 * neither make nor break an all-capital word */
			fl = CF_LETTER | CF_UPPER;
		else if (cp >= 0x370 && cp <= 0x3ff) {
			if (cp == 0x375 || cp == 0x37e || cp == 0x384 || cp == 0x385 ||
			    cp == 0x387 || cp == 0x3f6)
				fl = 0;
			else
				fl = CF_LETTER;
			if (cp == 0x386)
				lc = 0x3ac;
			else if (cp >= 0x388 && cp <= 0x38a)
				lc = cp + 37;
			else if (cp == 0x38c)
				lc = 0x3cc;
			else if (cp == 0x38e || cp == 0x38f)
				lc = cp + 63;
			else if ((cp >= 0x391 && cp <= 0x3a1) || (cp >= 0x3a3 && cp <= 0x3ab))
				lc = cp + 0x20;
			else if (cp >= 0x3d8 && cp <= 0x3ef && (cp & 1) == 0)
				lc = cp + 1;
			else if (cp == 0x3c2)
				lc = 0x3c3;		/* final sigma */
			if (lc != cp && cp != 0x3c2)
				fl |= CF_UPPER;
		} else if (cp >= 0x400 && cp <= 0x52f) {
			fl = CF_LETTER | CF_CYR;
			if (cp == 0x482)
				fl = 0;
			else if (cp >= 0x483 && cp <= 0x489)
				fl = CF_LETTER | CF_UPPER;
			else if (cp <= 0x40f)
				lc = cp + 0x50;
			else if (cp <= 0x42f)
				lc = cp + 0x20;
			else if (((cp >= 0x460 && cp <= 0x481) || (cp >= 0x48a && cp <= 0x4bf) ||
			    (cp >= 0x4d0)) && (cp & 1) == 0)
				lc = cp + 1;
			else if (cp == 0x4c0)
				lc = 0x4cf;
			else if (cp >= 0x4c1 && cp <= 0x4ce && (cp & 1) == 1)
				lc = cp + 1;
			if (lc != cp)
				fl |= CF_UPPER;
			if (lc == 0x456 || lc == 0x457 || lc == 0x454 || lc == 0x491)
				fl |= CF_UK;
			if (lc == 0x44b || lc == 0x44d || lc == 0x44a || lc == 0x451)
				fl |= CF_RU;
			if (lc == 0x451)
				lc = 0x435;		/* ё matches е */
		} else if (cp >= 0x531 && cp <= 0x556) {
			lc = cp + 0x30;
			fl = CF_LETTER | CF_UPPER;
		} else if (cp >= 0x557 && cp <= 0x7ff) {
			/* Armenian, Hebrew, Arabic, Syriac, ...: letters, but for
			 * their punctuation */
			static const uint16_t punct[] = {
				0x55a, 0x55b, 0x55c, 0x55d, 0x55e, 0x55f, 0x589, 0x58a,
				0x5be, 0x5c0, 0x5c3, 0x5c6, 0x5f3, 0x5f4, 0x60c, 0x60d,
				0x61b, 0x61e, 0x61f, 0x66a, 0x66b, 0x66c, 0x66d, 0x6d4,
			};
			fl = CF_LETTER;
			for (size_t i = 0; i < sizeof(punct) / sizeof(punct[0]); i++)
				if (cp == punct[i])
					fl = 0;
			if (cp >= 0x660 && cp <= 0x669)
				fl = CF_DIGIT;
		}
		e->flags = (unsigned char)fl;
		if ((fl & (CF_LETTER | CF_UPPER)) == CF_LETTER)
			e->op = OP_LETTER2;	/* the hot loop's fast case */
		e->b0 = (unsigned char)(0xc0 | (lc >> 6));
		e->b1 = (unsigned char)(0x80 | (lc & 0x3f));
	}
}

/* Flags of a code point of three or four bytes: letters unless in the
 * punctuation, symbol and emoji blocks. */
static unsigned
wide_flags(uint32_t cp)
{
	if ((cp >= 0x2000 && cp <= 0x2bff) || (cp >= 0x2e00 && cp <= 0x2e7f) ||
	    (cp >= 0x3000 && cp <= 0x303f) || (cp >= 0xe000 && cp <= 0xf8ff) ||
	    (cp >= 0xfe10 && cp <= 0xfe1f) || (cp >= 0xfe30 && cp <= 0xfe6f) ||
	    (cp >= 0xff00 && cp <= 0xff0f) || (cp >= 0xff1a && cp <= 0xff20) ||
	    (cp >= 0xff3b && cp <= 0xff40) || (cp >= 0xff5b && cp <= 0xff65) ||
	    (cp >= 0xfff0 && cp <= 0xffff) || (cp >= 0x1f000 && cp <= 0x1faff))
		return 0;
	if (cp >= 0xff10 && cp <= 0xff19)
		return CF_DIGIT;
	return CF_LETTER;
}

static unsigned
cp_flags(const struct classify_rules *r, uint32_t cp)
{
	if (cp < 0x80)
		return r->asc_fl[cp];
	if (cp < 0x800)
		return r->f2[cp - 0x80].flags;
	return wide_flags(cp);
}

/*
 * Folds the character at p (*p >= 0x80, p < end).  Writes up to 4 bytes to
 * o and sets *nout to how many, or to -1 for a blank (the caller writes one
 * space, or collapses blanks).  *nout == 0 means an invisible character
 * that joins its neighbours (soft hyphen, zero-width space).  Returns the
 * bytes consumed; *fl gets the character's CF_ flags.  Invalid UTF-8
 * becomes 0x1a, which is neither a letter nor in any phrase.
 */
static size_t
fold_mb(const struct classify_rules *r, const unsigned char *p, const unsigned char *end,
    unsigned char *o, int *nout, unsigned *fl)
{
	uint32_t cp;
	size_t n = utf8_decode(p, end, &cp);

	if (n == 2) {
		const struct fold2 *e = &r->f2[cp - 0x80];

		*fl = e->flags;
		switch (e->op) {
		case OP_COPY2:
		case OP_LETTER2:
			o[0] = e->b0;
			o[1] = e->b1;
			*nout = 2;
			break;
		case OP_ONE:
			o[0] = e->b0;
			*nout = 1;
			break;
		case OP_SPACE:
			*nout = -1;
			break;
		default:
			*nout = 0;
			break;
		}
		return 2;
	}
	if (n == 3) {
		*fl = 0;
		if ((cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
		    cp == 0x202f || cp == 0x205f || cp == 0x3000) {
			*fl = CF_SPACE;
			*nout = -1;
			return 3;
		}
		if ((cp >= 0x200b && cp <= 0x200d) || cp == 0x2060 || cp == 0xfeff) {
			*nout = 0;
			return 3;
		}
		if (cp == 0x2018 || cp == 0x2019 || cp == 0x201b || cp == 0x2032) {
			o[0] = '\'';
			*nout = 1;
			return 3;
		}
		if ((cp >= 0x2010 && cp <= 0x2015) || cp == 0x2212) {
			o[0] = '-';
			*nout = 1;
			return 3;
		}
		if (cp >= 0x201c && cp <= 0x201f) {
			o[0] = '"';
			*nout = 1;
			return 3;
		}
		if (cp == 0x1e9e) {		/* capital sharp s */
			o[0] = 's';
			o[1] = 's';
			*fl = CF_LETTER | CF_UPPER;
			*nout = 2;
			return 3;
		}
		*fl = wide_flags(cp);
		if (cp >= 0x1e00 && cp <= 0x1eff && (cp & 1) == 0 &&
		    (cp <= 0x1e95 || cp >= 0x1ea0)) {
			cp++;
			*fl |= CF_UPPER;
		}
		o[0] = (unsigned char)(0xe0 | (cp >> 12));
		o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (unsigned char)(0x80 | (cp & 0x3f));
		*nout = 3;
		return 3;
	}
	if (n == 4) {
		memcpy(o, p, 4);
		*fl = wide_flags(cp);
		*nout = 4;
		return 4;
	}
	o[0] = 0x1a;
	*fl = 0;
	*nout = 1;
	return 1;
}

/* Folds in[0..len) to out (at least len bytes) without statistics: blanks
 * collapsed to one space, trimmed.  For phrases, markers and acronyms at
 * load time, and for comparing a body line with the markers. */
static size_t
fold_simple(const struct classify_rules *r, const char *in, size_t len, char *out)
{
	const unsigned char *p = (const unsigned char *)in, *end = p + len;
	unsigned char *o = (unsigned char *)out, *start = o;

	while (p < end) {
		int n;
		unsigned fl;

		if (*p < 0x80) {
			if (r->asc_fl[*p] & CF_SPACE) {
				if (o > start && o[-1] != ' ')
					*o++ = ' ';
			} else
				*o++ = r->asc_fold[*p];
			p++;
			continue;
		}
		p += fold_mb(r, p, end, o, &n, &fl);
		if (n < 0) {
			if (o > start && o[-1] != ' ')
				*o++ = ' ';
		} else
			o += n;
	}
	while (o > start && o[-1] == ' ')
		o--;
	return (size_t)(o - start);
}

/* ------------------------------------------------------------------ */
/* Aho-Corasick                                                        */

struct key {
	const char     *s;
	uint16_t	len;
	uint8_t		stem;
	uint8_t		variant;	/* the diacritics-free spelling */
	uint32_t	phrase;
};

static int
key_cmp(const void *a, const void *b)
{
	const struct key *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->s, y->s, n);

	if (c)
		return c;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	if (x->stem != y->stem)
		return x->stem - y->stem;
	if (x->variant != y->variant)
		return x->variant - y->variant;
	return x->phrase < y->phrase ? -1 : x->phrase > y->phrase;
}

struct term {
	uint32_t	state;
	struct ac_entry	e;
};

static int
term_cmp(const void *a, const void *b)
{
	const struct term *x = a, *y = b;

	return x->state < y->state ? -1 : x->state > y->state;
}

static void
ac_free(struct ac *a)
{
	free(a->delta);
	free(a->out_first);
	free(a->out_count);
	free(a->dict);
	free(a->entries);
}

/*
 * Builds the automaton over keys (sorted here; a spelling that equals
 * another phrase's own spelling is dropped so nothing counts twice).
 * Returns -1 when the table would not fit the 31-bit row offsets.
 */
static int
ac_build(struct ac *a, struct key *keys, size_t nkeys)
{
	struct term *terms;
	size_t nterms = 0, cap = 64;
	uint32_t *fail, *queue, k;
	unsigned char *label;
	size_t qh = 0, qt = 0, labcap = 64;

	memset(a, 0, sizeof(*a));
	if (nkeys)
		qsort(keys, nkeys, sizeof(*keys), key_cmp);

	k = 1;
	for (size_t i = 0; i < nkeys; i++)
		for (size_t j = 0; j < keys[i].len; j++) {
			unsigned char b = (unsigned char)keys[i].s[j];

			if (a->cmap[b] == 0)
				a->cmap[b] = (unsigned char)k++;
		}
	a->k = k;

	a->nstates = 1;
	a->delta = xmalloc((size_t)cap * k * sizeof(uint32_t));
	for (uint32_t c = 0; c < k; c++)
		a->delta[c] = AC_MISSING;
	terms = xmalloc(nkeys * sizeof(*terms) + 1);
	label = xcalloc(labcap, 1);

	for (size_t i = 0; i < nkeys; i++) {
		const struct key *ky = &keys[i];
		uint32_t s = 0;

		if (i > 0 && ky->variant && keys[i - 1].len == ky->len &&
		    keys[i - 1].stem == ky->stem && memcmp(keys[i - 1].s, ky->s, ky->len) == 0)
			continue;
		for (size_t j = 0; j < ky->len; j++) {
			uint32_t c = a->cmap[(unsigned char)ky->s[j]];
			uint32_t t = a->delta[(size_t)s * k + c];

			if (t == AC_MISSING) {
				if (a->nstates == cap) {
					cap *= 2;
					a->delta = xrealloc(a->delta, cap * k * sizeof(uint32_t));
				}
				t = a->nstates++;
				for (uint32_t x = 0; x < k; x++)
					a->delta[(size_t)t * k + x] = AC_MISSING;
				a->delta[(size_t)s * k + c] = t;
				if (t >= labcap) {
					label = xrealloc(label, labcap * 2);
					memset(label + labcap, 0, labcap);
					labcap *= 2;
				}
				label[t] = (unsigned char)c;
			}
			s = t;
		}
		if (ky->len > a->maxlen)
			a->maxlen = ky->len;
		terms[nterms].state = s;
		terms[nterms].e.phrase = ky->phrase;
		terms[nterms].e.len = ky->len;
		terms[nterms].e.stem = ky->stem;
		terms[nterms].e.spaces = memchr(ky->s, ' ', ky->len) != NULL;
		nterms++;
	}
	if ((uint64_t)a->nstates * k > AC_ROW) {
		free(terms);
		free(label);
		return -1;
	}
	a->delta = xrealloc(a->delta, (size_t)a->nstates * k * sizeof(uint32_t));

	if (nterms)
		qsort(terms, nterms, sizeof(*terms), term_cmp);
	a->entries = xmalloc(nterms * sizeof(*a->entries) + 1);
	a->nentries = nterms;
	a->out_first = xcalloc(a->nstates, sizeof(uint32_t));
	a->out_count = xcalloc(a->nstates, sizeof(uint16_t));
	for (size_t i = 0; i < nterms; i++) {
		if (a->out_count[terms[i].state] == 0)
			a->out_first[terms[i].state] = (uint32_t)i;
		a->out_count[terms[i].state]++;
		a->entries[i] = terms[i].e;
	}
	free(terms);

	/* Breadth first, so a state's failure target (shallower) already has
	 * its complete row when the state's own row is filled in. */
	fail = xcalloc(a->nstates, sizeof(uint32_t));
	queue = xmalloc(a->nstates * sizeof(uint32_t));
	a->dict = xcalloc(a->nstates, sizeof(uint32_t));
	for (uint32_t c = 0; c < k; c++) {
		uint32_t t = a->delta[c];

		if (t == AC_MISSING)
			a->delta[c] = 0;
		else {
			fail[t] = 0;
			queue[qt++] = t;
		}
	}
	while (qh < qt) {
		uint32_t s = queue[qh++];
		uint32_t *row = a->delta + (size_t)s * k;
		const uint32_t *frow = a->delta + (size_t)fail[s] * k;

		for (uint32_t c = 0; c < k; c++) {
			uint32_t t = row[c];

			if (t == AC_MISSING)
				row[c] = frow[c];
			else {
				uint32_t f = frow[c];

				fail[t] = f;
				a->dict[t] = a->out_count[f] ? f : a->dict[f];
				queue[qt++] = t;
			}
		}
	}
	free(fail);

	/* The text keeps every blank (folding is faster when it keeps the
	 * length); phrases have single spaces.  A state reached by a space
	 * stays put on further blanks, which is matching the text with its
	 * blank runs collapsed. */
	if (a->cmap[' '] != 0)
		for (uint32_t s = 1; s < a->nstates; s++)
			if (label[s] == a->cmap[' '])
				a->delta[(size_t)s * k + a->cmap[' ']] = s;
	free(label);
	/* (Renumbering the states breadth first, to pack the shallow ones,
	 * measured slower: keys inserted in sorted order already keep each
	 * phrase's states together, in the order a walk needs them.) */
	free(queue);

	for (size_t i = 0; i < (size_t)a->nstates * k; i++) {
		uint32_t t = a->delta[i];

		a->delta[i] = t * k | (a->out_count[t] || a->dict[t] ? AC_OUT : 0);
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Loading                                                             */

struct item {
	char	       *text;		/* folded */
	uint16_t	len;
	uint8_t		stem;
	uint8_t		lang;
	uint16_t	cls;
	int16_t		weight;
	const char     *file;
	int		line;
};

struct loader {
	struct classify_rules *r;
	struct buf     *errors;
	int		nerrors;
	struct item    *items;
	size_t		nitems, capitems;
	char	      **acr;		/* acronyms before hashing */
	size_t		nacr, capacr;
};

static void
load_error(struct loader *ld, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
load_error(struct loader *ld, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	ld->nerrors++;
	if (ld->errors == NULL)
		return;
	if (line > 0)
		buf_printf(ld->errors, "%s:%d: ", file, line);
	else
		buf_printf(ld->errors, "%s: ", file);
	va_start(ap, fmt);
	buf_vprintf(ld->errors, fmt, ap);
	va_end(ap);
	buf_append_char(ld->errors, '\n');
}

static int
utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;

	while (p < end) {
		uint32_t cp;
		size_t n = utf8_decode(p, end, &cp);

		if (n == 0)
			return 0;
		p += n;
	}
	return 1;
}

/* Finds or adds the class called name; -1 (with *why set) if it is not a
 * valid class name. */
static int
class_lookup(struct classify_rules *r, const char *name, size_t len, const char **why)
{
	struct classinfo *ci;
	enum class_kind kind;
	size_t vlen;

	for (size_t i = 0; i < r->nclasses; i++)
		if (strlen(r->classes[i].name) == len && memcmp(r->classes[i].name, name, len) == 0)
			return (int)i;
	*why = "unknown class";
	if (len > 9 && memcmp(name, "category:", 9) == 0) {
		kind = K_CATEGORY;
		vlen = len - 9;
		if (vlen > 47)
			return -1;
		for (size_t i = 9; i < len; i++)
			if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
			    name[i] == '-'))
				return -1;
	} else if (len > 6 && memcmp(name, "group:", 6) == 0) {
		kind = K_GROUP;
		vlen = len - 6;
		if (vlen > 40)
			return -1;
		for (size_t i = 6; i < len; i++)
			if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
			    name[i] == '-'))
				return -1;
	} else if (len > 5 && memcmp(name, "lang:", 5) == 0) {
		kind = K_LANG;
		vlen = len - 5;
		if (vlen < 2 || vlen > 7)
			return -1;
		for (size_t i = 5; i < len; i++)
			if (!(name[i] >= 'a' && name[i] <= 'z'))
				return -1;
	} else
		return -1;
	if (r->nclasses == MAX_CLASSES) {
		*why = "too many classes";
		return -1;
	}
	ci = &r->classes[r->nclasses];
	memcpy(ci->name, name, len);
	ci->name[len] = '\0';
	ci->value = ci->name + (len - vlen);
	ci->kind = kind;
	ci->threshold = DEFAULT_THRESHOLD;
	return (int)r->nclasses++;
}

static const char *
skip_blanks(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

static const char *
skip_token(const char *s)
{
	while (*s && *s != ' ' && *s != '\t')
		s++;
	return s;
}

/* strtol with the whole token and a range checked. */
static int
parse_int(const char *s, size_t len, long lo, long hi, long *out)
{
	char tmp[24];
	char *end;
	long v;

	if (len == 0 || len >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	errno = 0;
	v = strtol(tmp, &end, 10);
	if (errno || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* Hash of the first nchars folded characters of s..e (a line without its
 * leading blanks, or a marker); HEAD_BITS when s..e is empty. */
static unsigned
head_key(const struct classify_rules *r, const char *s, const char *e, int nchars)
{
	const unsigned char *p = (const unsigned char *)s, *end = (const unsigned char *)e;
	unsigned char out[8];
	uint32_t h = 2166136261u;
	int chars = 0;

	if (p == end)
		return HEAD_BITS;
	while (p < end && chars < nchars) {
		size_t n = 0;

		if (*p < 0x80) {
			out[0] = r->asc_fold[*p];
			n = 1;
			p++;
		} else {
			int nout;
			unsigned fl;

			p += fold_mb(r, p, end, out, &nout, &fl);
			if (nout < 0) {
				out[0] = ' ';
				n = 1;
			} else
				n = (size_t)nout;
		}
		for (size_t i = 0; i < n; i++)
			h = (h ^ out[i]) * 16777619u;
		chars += n > 0;
	}
	return h % HEAD_BITS;
}

static void
markers_add(struct classify_rules *r, struct markers *m, const char *raw, size_t len,
    int at_end)
{
	char *f = xmalloc(len + 1);
	size_t flen = fold_simple(r, raw, len, f);
	int chars = 0;

	f[flen] = '\0';
	m->v = xrealloc(m->v, (m->n + 1) * sizeof(*m->v));
	m->v[m->n].text = f;
	m->v[m->n].len = flen;
	m->v[m->n].glob = at_end && memchr(f, '*', flen) != NULL;
	/* Raw text may be longer than folded (blank runs, ’): leave room;
	 * a glob may need the whole line. */
	if (m->v[m->n].glob)
		m->window = MARKER_WINDOW;
	else if (m->window < 2 * flen + 16)
		m->window = 2 * flen + 16 < MARKER_WINDOW ? 2 * flen + 16 : MARKER_WINDOW;
	m->n++;
	for (size_t i = 0; i < flen; i++)
		chars += !utf8_is_cont((unsigned char)f[i]);
	if (m->n == 1 || chars < m->head_n)
		m->head_n = chars < 3 ? chars : 3;
	if (at_end) {
		unsigned char b = (unsigned char)raw[len - 1];

		if (b >= 0x80) {
			for (unsigned x = 0x80; x < 0x100; x++)
				m->last[x] = 1;
		} else {
			m->last[b] = 1;
			if (b >= 'a' && b <= 'z')
				m->last[b - 32] = 1;
			if (b >= 'A' && b <= 'Z')
				m->last[b + 32] = 1;
		}
	}
}

/* The UTF-8 bytes of code point u folded; returns their count. */
static size_t
fold_cp(const struct classify_rules *r, uint32_t u, char *out)
{
	char raw[2];

	if (u < 0x80) {
		raw[0] = (char)u;
		return fold_simple(r, raw, 1, out);
	}
	raw[0] = (char)(0xc0 | (u >> 6));
	raw[1] = (char)(0x80 | (u & 0x3f));
	return fold_simple(r, raw, 2, out);
}

/* Writes to v the first raw byte of every character of up to two bytes
 * that folds like the character at p (len bytes) - or, with both, its two
 * bytes as b0 << 8 | b1 - and returns how many. */
static size_t
char_variants(const struct classify_rules *r, const char *p, size_t len, int both,
    unsigned *v)
{
	char want[8], got[8];
	size_t wl = fold_simple(r, p, len, want), n = 0;

	for (uint32_t u = 0; u < 0x800; u++) {
		size_t gl = fold_cp(r, u, got);

		if (gl != wl || memcmp(got, want, wl) != 0)
			continue;
		if (u < 0x80)
			v[n++] = both ? u << 8 : u;
		else
			v[n++] = both ? (0xc0 | (u >> 6)) << 8 | (0x80 | (u & 0x3f)) : 0xc0 | (u >> 6);
	}
	return n;
}

/* Marks in r->marker_pair the raw first two bytes a line can have when it
 * starts with the prefix marker raw[0..len). */
static void
marker_pairs(struct classify_rules *r, const char *raw, size_t len)
{
	const unsigned char *p = (const unsigned char *)raw, *end = p + len;
	unsigned v1[64], v2[64];
	size_t n1, n2 = 0, l1, l2 = 0;
	uint32_t cp;
	int all = 0;

	if ((l1 = utf8_decode(p, end, &cp)) == 0)
		return;
	if (l1 > 2) {		/* no case variants to think of */
		r->marker_pair[(p[0] << 8 | p[1]) / 8] |= (unsigned char)(1u << ((p[0] << 8 | p[1]) % 8));
		return;
	}
	n1 = char_variants(r, raw, l1, 1, v1);
	if (p + l1 < end && (l2 = utf8_decode(p + l1, end, &cp)) != 0 &&
	    !(cp_flags(r, cp) & CF_SPACE) && !(cp >= 0x80 && cp < 0x800 && r->f2[cp - 0x80].op == OP_SPACE))
		n2 = char_variants(r, raw + l1, l2, 0, v2);
	else
		all = 1;	/* a blank (or nothing) next: any byte */
	for (size_t i = 0; i < n1; i++) {
		if ((v1[i] & 0xff) != 0 || v1[i] >= 0xc000) {	/* two bytes already */
			r->marker_pair[v1[i] / 8] |= (unsigned char)(1u << (v1[i] % 8));
			continue;
		}
		for (unsigned b = 0; b < 256; b++) {
			int ok = all;

			for (size_t j = 0; j < n2 && !ok; j++)
				ok = v2[j] == b;
			if (ok)
				r->marker_pair[(v1[i] | b) / 8] |= (unsigned char)(1u << ((v1[i] | b) % 8));
		}
	}
}

/* Once all markers of m are in: the bitmap of their first head_n
 * characters (folding a folded text again changes nothing). */
static void
markers_finish(const struct classify_rules *r, struct markers *m)
{
	for (size_t i = 0; i < m->n; i++) {
		unsigned key = head_key(r, m->v[i].text, m->v[i].text + m->v[i].len, m->head_n);

		m->head[key / 8] |= (unsigned char)(1u << (key % 8));
	}
}

static void
item_add(struct loader *ld, const char *text, size_t len, int stem, int cls,
    int weight, const char *file, int line)
{
	struct item *it;

	if (ld->nitems == ld->capitems) {
		ld->capitems = ld->capitems ? ld->capitems * 2 : 256;
		ld->items = xrealloc(ld->items, ld->capitems * sizeof(*ld->items));
	}
	it = &ld->items[ld->nitems++];
	it->text = xstrndup(text, len);
	it->len = (uint16_t)len;
	it->stem = (uint8_t)stem;
	it->lang = ld->r->classes[cls].kind == K_LANG;
	it->cls = (uint16_t)cls;
	it->weight = (int16_t)weight;
	it->file = file;
	it->line = line;
}

static void
parse_line(struct loader *ld, const char *file, int lineno, char *line)
{
	struct classify_rules *r = ld->r;
	const char *p = skip_blanks(line), *kw_end, *rest;
	size_t kwlen, restlen;
	char folded[MAX_PHRASE + 1];

	if (*p == '\0' || *p == '#')
		return;
	kw_end = skip_token(p);
	kwlen = (size_t)(kw_end - p);
	rest = skip_blanks(kw_end);
	restlen = strlen(rest);
	while (restlen && (rest[restlen - 1] == ' ' || rest[restlen - 1] == '\t'))
		restlen--;

	if (kwlen == 9 && memcmp(p, "threshold", 9) == 0) {
		const char *cend = skip_token(rest), *n = skip_blanks(cend), *nend = skip_token(n);
		const char *why = NULL;
		long v;
		int cls;

		if (*skip_blanks(nend) != '\0' || cend == rest) {
			load_error(ld, file, lineno, "usage: threshold CLASS N");
			return;
		}
		cls = class_lookup(r, rest, (size_t)(cend - rest), &why);
		if (cls < 0)
			load_error(ld, file, lineno, "%s '%.*s'", why, (int)(cend - rest), rest);
		else if (parse_int(n, (size_t)(nend - n), 1, 100, &v) < 0)
			load_error(ld, file, lineno, "bad threshold '%.*s' (integer 1..100)",
			    (int)(nend - n), n);
		else
			r->classes[cls].threshold = (int)v;
		return;
	}
	if (kwlen == 12 && memcmp(p, "reply-prefix", 12) == 0) {
		if (restlen == 0 || restlen > 32 || !utf8_valid(rest, restlen)) {
			load_error(ld, file, lineno, "usage: reply-prefix PREFIX (e.g. Re:)");
			return;
		}
		markers_add(r, &r->reply, rest, restlen, 0);
		return;
	}
	if (kwlen == 12 && memcmp(p, "auto-subject", 12) == 0) {
		if (restlen == 0 || restlen > 48 || !utf8_valid(rest, restlen)) {
			load_error(ld, file, lineno, "usage: auto-subject PREFIX (e.g. Out of Office:)");
			return;
		}
		markers_add(r, &r->autosubj, rest, restlen, 0);
		return;
	}
	if ((kwlen == 17 && memcmp(p, "quote-attribution", 17) == 0) ||
	    (kwlen == 15 && memcmp(p, "quote-separator", 15) == 0) ||
	    (kwlen == 12 && memcmp(p, "quote-header", 12) == 0) ||
	    (kwlen == 9 && memcmp(p, "signature", 9) == 0)) {
		if (restlen == 0) {
			load_error(ld, file, lineno, "empty %.*s", (int)kwlen, p);
			return;
		}
		if (restlen > MAX_PHRASE / 2 || !utf8_valid(rest, restlen)) {
			load_error(ld, file, lineno, "%.*s too long or not UTF-8", (int)kwlen, p);
			return;
		}
		if (p[6] == 'a')
			markers_add(r, &r->attribution, rest, restlen, 1);
		else {
			if (p[6] == 's')
				markers_add(r, &r->separator, rest, restlen, 0);
			else if (p[6] == 'h')
				markers_add(r, &r->qheader, rest, restlen, 0);
			else
				markers_add(r, &r->signature, rest, restlen, 0);
			marker_pairs(r, rest, restlen);
		}
		return;
	}
	if (kwlen == 4 && memcmp(p, "near", 4) == 0) {
		const char *tok[5], *tend[5], *q = rest;
		struct near_rule nr;
		const char *why = NULL;
		long v;
		int n = 0;

		memset(&nr, 0, sizeof(nr));
		for (; n < 5 && q < rest + restlen; n++) {
			tok[n] = q;
			tend[n] = skip_token(q);
			q = skip_blanks(tend[n]);
		}
		if (n != 5 || q != rest + restlen) {
			load_error(ld, file, lineno, "usage: near CLASS[,CLASS] WEIGHT WINDOW group:A group:B");
			return;
		}
		for (const char *c = tok[0]; c < tend[0] && nr.ncls < 8;) {
			const char *ce = memchr(c, ',', (size_t)(tend[0] - c));
			int cls;

			if (ce == NULL)
				ce = tend[0];
			if ((cls = class_lookup(r, c, (size_t)(ce - c), &why)) < 0) {
				load_error(ld, file, lineno, "%s '%.*s'", why, (int)(ce - c), c);
				return;
			}
			nr.cls[nr.ncls++] = cls;
			c = ce + 1;
		}
		if (parse_int(tok[1], (size_t)(tend[1] - tok[1]), -10, 10, &v) < 0) {
			load_error(ld, file, lineno, "bad weight '%.*s' (integer -10..10)",
			    (int)(tend[1] - tok[1]), tok[1]);
			return;
		}
		nr.weight = (int)v;
		if (parse_int(tok[2], (size_t)(tend[2] - tok[2]), 1, 400, &v) < 0) {
			load_error(ld, file, lineno, "bad window '%.*s' (bytes 1..400)",
			    (int)(tend[2] - tok[2]), tok[2]);
			return;
		}
		nr.window = (uint32_t)v;
		nr.a = class_lookup(r, tok[3], (size_t)(tend[3] - tok[3]), &why);
		nr.b = class_lookup(r, tok[4], (size_t)(tend[4] - tok[4]), &why);
		if (nr.a < 0 || nr.b < 0 || r->classes[nr.a].kind != K_GROUP ||
		    r->classes[nr.b].kind != K_GROUP) {
			load_error(ld, file, lineno, "near: the last two words must be group:NAME classes");
			return;
		}
		if (r->nnear == MAX_NEAR) {
			load_error(ld, file, lineno, "more than %d near rules", MAX_NEAR);
			return;
		}
		r->near[r->nnear++] = nr;
		return;
	}
	if (kwlen == 7 && memcmp(p, "acronym", 7) == 0) {
		size_t flen;

		if (restlen == 0 || restlen > 32 || skip_token(rest) != rest + restlen ||
		    !utf8_valid(rest, restlen)) {
			load_error(ld, file, lineno, "usage: acronym WORD");
			return;
		}
		flen = fold_simple(r, rest, restlen, folded);
		if (ld->nacr == ld->capacr) {
			ld->capacr = ld->capacr ? ld->capacr * 2 : 64;
			ld->acr = xrealloc(ld->acr, ld->capacr * sizeof(*ld->acr));
		}
		ld->acr[ld->nacr++] = xstrndup(folded, flen);
		return;
	}

	/* CLASS[,CLASS...] WEIGHT PHRASE */
	{
		const char *w = rest, *wend = skip_token(w), *ph = skip_blanks(wend);
		int classes[MAX_CLASSES];
		size_t ncls = 0, phlen, flen;
		int stem = 0, bad = 0;
		long weight;

		for (const char *c = p; c < kw_end;) {
			const char *ce = memchr(c, ',', (size_t)(kw_end - c));
			const char *why = NULL;
			int cls;

			if (ce == NULL)
				ce = kw_end;
			cls = class_lookup(r, c, (size_t)(ce - c), &why);
			if (cls < 0) {
				load_error(ld, file, lineno, "%s '%.*s'", why, (int)(ce - c), c);
				bad = 1;
			} else if (ncls < MAX_CLASSES)
				classes[ncls++] = cls;
			c = ce + 1;
		}
		if (bad)
			return;
		if (parse_int(w, (size_t)(wend - w), -10, 10, &weight) < 0) {
			if (wend == w)
				load_error(ld, file, lineno, "missing weight");
			else
				load_error(ld, file, lineno, "bad weight '%.*s' (integer -10..10)",
				    (int)(wend - w), w);
			return;
		}
		phlen = restlen - (size_t)(ph - rest);
		if (phlen > 0 && ph[phlen - 1] == '*') {
			stem = 1;
			phlen--;
		}
		if (memchr(ph, '*', phlen) != NULL) {
			load_error(ld, file, lineno, "'*' is only allowed at the end of a phrase");
			return;
		}
		if (phlen > MAX_PHRASE) {
			load_error(ld, file, lineno, "phrase longer than %d bytes", MAX_PHRASE);
			return;
		}
		if (!utf8_valid(ph, phlen)) {
			load_error(ld, file, lineno, "phrase is not valid UTF-8");
			return;
		}
		flen = fold_simple(r, ph, phlen, folded);
		if (flen == 0) {
			load_error(ld, file, lineno, "empty phrase");
			return;
		}
		for (size_t i = 0; i < ncls; i++)
			item_add(ld, folded, flen, stem, classes[i], (int)weight, file, lineno);
	}
}

static void
parse_file(struct loader *ld, const char *path)
{
	FILE *fp = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int lineno = 0;

	if (fp == NULL) {
		load_error(ld, path, 0, "cannot open: %s", strerror(errno));
		return;
	}
	while ((n = getline(&line, &cap, fp)) != -1) {
		size_t len = (size_t)n;

		lineno++;
		if (len > MAX_LINE) {
			load_error(ld, path, lineno, "line longer than %d bytes", MAX_LINE);
			continue;
		}
		if (strlen(line) != len) {
			load_error(ld, path, lineno, "NUL byte in line");
			continue;
		}
		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		parse_line(ld, path, lineno, line);
	}
	if (ferror(fp))
		load_error(ld, path, 0, "read error: %s", strerror(errno));
	free(line);
	fclose(fp);
}

static int
item_cmp(const void *a, const void *b)
{
	const struct item *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c;

	if (x->lang != y->lang)
		return x->lang - y->lang;
	if ((c = memcmp(x->text, y->text, n)) != 0)
		return c;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	if (x->stem != y->stem)
		return x->stem - y->stem;
	if (x->cls != y->cls)
		return x->cls - y->cls;
	/* keep file order among duplicates, so "first at" is the first */
	if ((c = strcmp(x->file, y->file)) != 0)
		return c;
	return x->line - y->line;
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static uint32_t
hash_bytes(const char *s, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

static int
acronym_has(const struct classify_rules *r, const char *s, size_t len)
{
	if (r->acronyms == NULL)
		return 0;
	for (size_t i = hash_bytes(s, len) & r->acronym_mask;; i = (i + 1) & r->acronym_mask) {
		const char *a = r->acronyms[i];

		if (a == NULL)
			return 0;
		if (strlen(a) == len && memcmp(a, s, len) == 0)
			return 1;
	}
}

/* Groups the items into phrases, checks duplicates, builds both automata. */
static void
build_phrases(struct loader *ld, const char *dir)
{
	struct classify_rules *r = ld->r;
	struct key *keys[2];
	size_t nkeys[2] = { 0, 0 };
	char **variants;
	size_t nvariants = 0;

	if (ld->nitems)
		qsort(ld->items, ld->nitems, sizeof(*ld->items), item_cmp);
	r->phrases = xcalloc(ld->nitems + 1, sizeof(*r->phrases));
	r->cws = xcalloc(ld->nitems + 1, sizeof(*r->cws));
	keys[0] = xcalloc(2 * ld->nitems + 1, sizeof(struct key));
	keys[1] = xcalloc(2 * ld->nitems + 1, sizeof(struct key));
	variants = xcalloc(ld->nitems + 1, sizeof(char *));

	for (size_t i = 0; i < ld->nitems;) {
		const struct item *it = &ld->items[i];
		struct phrase *ph = &r->phrases[r->nphrases];
		size_t j = i;
		char tmp[MAX_PHRASE + 1];
		size_t tlen;
		int a = it->lang;

		ph->cw_first = (uint32_t)r->ncws;
		ph->lang = it->lang;
		for (; j < ld->nitems && ld->items[j].lang == it->lang && ld->items[j].len == it->len &&
		    ld->items[j].stem == it->stem && memcmp(ld->items[j].text, it->text, it->len) == 0;
		    j++) {
			const struct item *d = &ld->items[j];

			if (j > i && d->cls == ld->items[j - 1].cls) {
				const struct item *first = &ld->items[j - 1];

				while (first > it && first[-1].cls == d->cls)
					first--;
				if (first->weight != d->weight)
					load_error(ld, d->file, d->line,
					    "\"%s%s\" for %s has weight %d here but %d at %s:%d",
					    d->text, d->stem ? "*" : "", r->classes[d->cls].name,
					    d->weight, first->weight, first->file, first->line);
				continue;
			}
			r->cws[r->ncws].cls = d->cls;
			r->cws[r->ncws].weight = d->weight;
			r->ncws++;
			ph->cw_count++;
		}
		keys[a][nkeys[a]].s = it->text;
		keys[a][nkeys[a]].len = it->len;
		keys[a][nkeys[a]].stem = it->stem;
		keys[a][nkeys[a]].phrase = (uint32_t)r->nphrases;
		nkeys[a]++;
		tlen = utf8_strip_latin(it->text, it->len, tmp);
		if (tlen != it->len || memcmp(tmp, it->text, tlen) != 0) {
			variants[nvariants] = xstrndup(tmp, tlen);
			keys[a][nkeys[a]].s = variants[nvariants++];
			keys[a][nkeys[a]].len = (uint16_t)tlen;
			keys[a][nkeys[a]].stem = it->stem;
			keys[a][nkeys[a]].variant = 1;
			keys[a][nkeys[a]].phrase = (uint32_t)r->nphrases;
			nkeys[a]++;
		}
		r->nphrases++;
		i = j;
	}
	if (nkeys[0] == 0)
		load_error(ld, dir, 0, "no phrases");
	if (ld->nerrors == 0) {
		if (ac_build(&r->main_ac, keys[0], nkeys[0]) < 0 ||
		    ac_build(&r->lang_ac, keys[1], nkeys[1]) < 0)
			load_error(ld, dir, 0, "too many phrases");
	}
	for (size_t i = 0; i < nvariants; i++)
		free(variants[i]);
	free(variants);
	free(keys[0]);
	free(keys[1]);
}

struct classify_rules *
classify_rules_load(const char *dir, struct buf *errors)
{
	return classify_rules_load_opts(dir, 0, errors);
}

struct classify_rules *
classify_rules_load_opts(const char *dir, int flags, struct buf *errors)
{
	struct loader ld;
	struct classify_rules *r;
	DIR *d;
	struct dirent *de;
	char **names = NULL;
	size_t nnames = 0;

	memset(&ld, 0, sizeof(ld));
	ld.errors = errors;
	r = xcalloc(1, sizeof(*r));
	ld.r = r;
	tables_init(r);
	for (int i = 0; i < C_BASE; i++) {
		size_t len = strlen(base_class_names[i]);

		memcpy(r->classes[i].name, base_class_names[i], len + 1);
		r->classes[i].value = r->classes[i].name;
		r->classes[i].kind = K_BASE;
		r->classes[i].threshold = DEFAULT_THRESHOLD;
	}
	r->nclasses = C_BASE;

	if ((d = opendir(dir)) == NULL) {
		load_error(&ld, dir, 0, "cannot open keyword directory: %s", strerror(errno));
		classify_rules_free(r);
		return NULL;
	}
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		if (de->d_name[0] == '.' || len < 4 || strcmp(de->d_name + len - 3, ".kw") != 0)
			continue;
		names = xrealloc(names, (nnames + 1) * sizeof(*names));
		names[nnames] = xmalloc(strlen(dir) + len + 2);
		memcpy(names[nnames], dir, strlen(dir));
		names[nnames][strlen(dir)] = '/';
		memcpy(names[nnames] + strlen(dir) + 1, de->d_name, len + 1);
		nnames++;
	}
	closedir(d);
	if (nnames == 0)
		load_error(&ld, dir, 0, "no *.kw files");
	else
		qsort(names, nnames, sizeof(*names), str_cmp);

	for (size_t i = 0; i < nnames; i++)
		parse_file(&ld, names[i]);
	if (ld.nerrors == 0)
		build_phrases(&ld, dir);
	markers_finish(r, &r->separator);
	markers_finish(r, &r->qheader);
	markers_finish(r, &r->signature);
	markers_finish(r, &r->reply);
	markers_finish(r, &r->autosubj);

	if (ld.nerrors == 0 && ld.nacr > 0) {
		size_t size = 16;

		while (size < ld.nacr * 2)
			size *= 2;
		r->acronyms = xcalloc(size, sizeof(char *));
		r->acronym_mask = size - 1;
		for (size_t i = 0; i < ld.nacr; i++) {
			size_t len = strlen(ld.acr[i]), h;

			if (acronym_has(r, ld.acr[i], len)) {
				free(ld.acr[i]);
				continue;
			}
			for (h = hash_bytes(ld.acr[i], len) & r->acronym_mask; r->acronyms[h];
			    h = (h + 1) & r->acronym_mask)
				;
			r->acronyms[h] = ld.acr[i];
		}
	} else {
		for (size_t i = 0; i < ld.nacr; i++)
			free(ld.acr[i]);
	}
	free(ld.acr);
	for (size_t i = 0; i < ld.nitems; i++)
		free(ld.items[i].text);
	free(ld.items);

	/* The items pointed into names for their file; the phrases keep
	 * nothing of them. */
	for (size_t i = 0; i < nnames; i++)
		free(names[i]);
	free(names);
	if (!ld.nerrors && !(flags & CLASSIFY_RULES_ONLY)) {
		char path[4096];

		/* the learned part is optional: without it the rules decide */
		snprintf(path, sizeof(path), "%s/%s", dir, TRIAGE_MODEL_FILE);
		if (access(path, F_OK) == 0 && (r->model = triage_model_load(path, errors)) == NULL)
			ld.nerrors++;
	}
	if (ld.nerrors) {
		classify_rules_free(r);
		return NULL;
	}
	return r;
}

static void
markers_free(struct markers *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i].text);
	free(m->v);
}

int
classify_rules_learned(const struct classify_rules *r)
{
	return r != NULL && r->model != NULL;
}

void
classify_rules_free(struct classify_rules *r)
{
	if (r == NULL)
		return;
	ac_free(&r->main_ac);
	ac_free(&r->lang_ac);
	markers_free(&r->attribution);
	markers_free(&r->separator);
	markers_free(&r->qheader);
	markers_free(&r->signature);
	markers_free(&r->reply);
	markers_free(&r->autosubj);
	if (r->acronyms)
		for (size_t i = 0; i <= r->acronym_mask; i++)
			free(r->acronyms[i]);
	free(r->acronyms);
	free(r->phrases);
	free(r->cws);
	triage_model_free(r->model);
	free(r);
}

/* ------------------------------------------------------------------ */
/* Folding a message                                                   */

/* From folded offset fpos on, folded bytes map one to one to orig. */
struct anchor {
	size_t		fpos;
	const char     *orig;
};

struct span {
	uint32_t	start, end;	/* folded offsets */
	int		weight;
};

struct scan;
static const char *orig_at(const struct scan *sc, size_t fpos);

struct seg {
	const char     *s;
	size_t		len;
};

struct textstats {
	unsigned	letters, cyr, uk, ru;	/* in the first LANG_SCAN folded bytes */
	unsigned	caps_words;	/* all-capital words, acronyms and server replies aside */
	int		shouting;
	unsigned	bang_run, bang_max;
	size_t		last_bang;
	unsigned	up_run;		/* capitals in a row ending at up_end */
	size_t		up_end;
};

/* Where three capitals in a row were folded: a possible shouted word. */
struct capsrun {
	size_t		fpos;		/* folded offset of the third capital */
	size_t		seg;		/* in sc->segs */
};

struct scan {
	const struct classify_rules *r;
	unsigned char  *f;		/* folded text; f[0] = '\n' */
	size_t		flen;
	size_t		subj_end;	/* folded offsets below this are the subject */
	int		subj_reply;	/* ... a reply's subject: it names the topic
					 * (categories) but not this message's urgency */
	struct anchor  *anch;
	size_t		nanch, capanch;
	uint8_t	       *seen;		/* per phrase: 1 body, 2 subject */
	int		score[MAX_CLASSES];
	struct span	ghit[MAX_CLASSES][GROUP_HITS];	/* word groups: where they matched */
	uint8_t		nghit[MAX_CLASSES];
	int		langcount[MAX_CLASSES];
	struct span	shown[MAX_CLASSES][SHOW_PER_CLASS];
	uint8_t		nshown[MAX_CLASSES];
	struct span	neg[SHOW_PER_CLASS];
	uint8_t		nneg;
	struct textstats st;
	int		quoted;
	struct seg     *segs;		/* what was folded: subject first, then body runs */
	size_t		nsegs, capsegs;
	struct capsrun *caps;
	size_t		ncaps, capcaps;
};

static void
anchor_push(struct scan *sc, size_t fpos, const char *orig)
{
	if (sc->nanch && sc->anch[sc->nanch - 1].fpos == fpos) {
		sc->anch[sc->nanch - 1].orig = orig;
		return;
	}
	if (sc->nanch == sc->capanch) {
		sc->capanch = sc->capanch ? sc->capanch * 2 : 64;
		sc->anch = xrealloc(sc->anch, sc->capanch * sizeof(*sc->anch));
	}
	sc->anch[sc->nanch].fpos = fpos;
	sc->anch[sc->nanch].orig = orig;
	sc->nanch++;
}

/* Flags of the character that ends just before folded offset pos. */
static unsigned
flags_before(const struct scan *sc, size_t pos)
{
	const unsigned char *f = sc->f;
	size_t i = pos - 1;
	uint32_t cp;

	if (f[i] < 0x80)
		return sc->r->asc_fl[f[i]];
	while (i > 0 && utf8_is_cont(f[i]) && pos - i < 4)
		i--;
	if (utf8_decode(f + i, f + pos, &cp) == 0)
		return 0;
	return cp_flags(sc->r, cp);
}

static unsigned
flags_at(const struct scan *sc, size_t pos)
{
	uint32_t cp;

	if (pos >= sc->flen)
		return 0;
	if (sc->f[pos] < 0x80)
		return sc->r->asc_fl[sc->f[pos]];
	if (utf8_decode(sc->f + pos, sc->f + sc->flen, &cp) == 0)
		return 0;
	return cp_flags(sc->r, cp);
}

/* A capital letter was folded to sc->f[at..at + n): note runs of three. */
static void
fold_capital(struct scan *sc, size_t at, size_t n)
{
	struct textstats *st = &sc->st;

	st->up_run = at == st->up_end ? st->up_run + 1 : 1;
	st->up_end = at + n;
	if (st->up_run != 3)
		return;
	if (sc->ncaps == sc->capcaps) {
		sc->capcaps = sc->capcaps ? sc->capcaps * 2 : 16;
		sc->caps = xrealloc(sc->caps, sc->capcaps * sizeof(*sc->caps));
	}
	sc->caps[sc->ncaps].fpos = at;
	sc->caps[sc->ncaps].seg = sc->nsegs - 1;
	sc->ncaps++;
}

/* UTF-8 bytes a, b are а-я, і, ї or є (not ё): their own folding. */
#define SMALL_CYRILLIC(a, b) \
	(((a) == 0xd0 && ((b) & 0xf0) == 0xb0) || ((a) == 0xd1 && ((b) & 0xe0) == 0x80 && (b) != 0x91))

/*
 * Folds src[0..n) onto the end of sc->f (the hot loop).  Every blank or
 * control character becomes one ' ' (runs are kept: the automaton treats
 * them as one), so for most text the output is as long as the input.  The
 * first branch copies ASCII other than capitals and '!'; the second, small
 * Cyrillic letters (а-я, і ї є; not ё), which are their own folding.  (A
 * branch-free version that computes the step from the bytes measured five
 * times slower: the next turn then waits for this turn's loads.)  The rest
 * - capitals, '!', other multibyte characters - is rare enough to take its
 * time: runs of '!' are counted, runs of capitals noted for
 * shouting_check(), and an anchor recorded where the length changes.
 */
static void
fold_run(struct scan *sc, const char *src, size_t n)
{
	const struct classify_rules *r = sc->r;
	const unsigned char *p = (const unsigned char *)src, *end = p + n;
	const uint32_t *asc = r->asc;
	const struct fold2 *f2 = r->f2;
	unsigned char *o = sc->f + sc->flen;

	if (sc->nsegs == sc->capsegs) {
		sc->capsegs = sc->capsegs ? sc->capsegs * 2 : 16;
		sc->segs = xrealloc(sc->segs, sc->capsegs * sizeof(*sc->segs));
	}
	sc->segs[sc->nsegs].s = src;
	sc->segs[sc->nsegs].len = n;
	sc->nsegs++;
	anchor_push(sc, sc->flen, src);
	while (p < end) {
		unsigned c0 = p[0], c1;
		uint32_t e = asc[c0];
		int nout;
		unsigned fl;
		size_t used;

		if (!(e & ASC_SLOW)) {
			*o++ = (unsigned char)e;
			p++;
			continue;
		}
		if (p + 1 < end && SMALL_CYRILLIC(c0, p[1])) {
			/* stay here for the rest of the word: measured a third
			 * faster on Russian text than going round the outer loop */
			do {
				o[0] = p[0];
				o[1] = p[1];
				o += 2;
				p += 2;
			} while (p + 1 < end && SMALL_CYRILLIC(p[0], p[1]));
			continue;
		}
		if (c0 >= 0xc2 && c0 <= 0xdf && p + 1 < end && utf8_is_cont(c1 = p[1])) {
			const struct fold2 *x = &f2[((c0 & 0x1f) << 6 | (c1 & 0x3f)) - 0x80];

			if (x->op == OP_LETTER2) {		/* é, ß, ... */
				o[0] = x->b0;
				o[1] = x->b1;
				o += 2;
				p += 2;
				continue;
			}
		}
		if (c0 < 0x80) {
			p++;
			if (c0 == '!') {
				struct textstats *st = &sc->st;
				size_t at = (size_t)(o - sc->f);

				st->bang_run = at == st->last_bang + 1 ? st->bang_run + 1 : 1;
				st->last_bang = at;
				if (st->bang_run > st->bang_max)
					st->bang_max = st->bang_run;
			} else
				fold_capital(sc, (size_t)(o - sc->f), 1);
			*o++ = (unsigned char)e;
			continue;
		}
		used = fold_mb(r, p, end, o, &nout, &fl);
		p += used;
		if (nout < 0)
			*o++ = ' ';
		else {
			if ((fl & (CF_LETTER | CF_UPPER)) == (CF_LETTER | CF_UPPER) && nout > 0)
				fold_capital(sc, (size_t)(o - sc->f), (size_t)nout);
			o += nout;
		}
		if ((size_t)(nout < 0 ? 1 : nout) != used)
			anchor_push(sc, (size_t)(o - sc->f), (const char *)p);
	}
	sc->flen = (size_t)(o - sc->f);
}

/* "535 5.7.8" and the like: a line quoting a server reply is machine
 * output, and its capitals are not shouting. */
static int
has_smtp_code(const char *s, size_t len)
{
	for (size_t i = 0; i + 3 <= len; i++) {
		if ((s[i] == '4' || s[i] == '5') && s[i + 1] >= '0' && s[i + 1] <= '9' &&
		    s[i + 2] >= '0' && s[i + 2] <= '9' &&
		    (i == 0 || s[i - 1] < '0' || s[i - 1] > '9') &&
		    (i + 3 == len || s[i + 3] == ' ' || s[i + 3] == '-'))
			return 1;
	}
	return 0;
}

/* Flags of the character at p (< end) as written; *len gets its size. */
static unsigned
raw_flags(const struct classify_rules *r, const unsigned char *p, const unsigned char *end,
    size_t *len)
{
	unsigned char tmp[4];
	unsigned fl;
	int nout;

	if (*p < 0x80) {
		*len = 1;
		return r->asc_fl[*p];
	}
	*len = fold_mb(r, p, end, tmp, &nout, &fl);
	return nout == 0 ? CF_LETTER | CF_UPPER : fl;	/* invisible: part of the word */
}

/* The word and the line that caps_word_at() read last.  Runs of capitals
 * come in text order, so a run inside that word, or a word on that line,
 * is answered from here: a line of many capital words, or one long word
 * with many runs of capitals, is read once, not once per run. */
struct caps_memo {
	size_t		wseg, lseg;	/* segments of the spans; SIZE_MAX: none yet */
	const char     *ws, *we;	/* the word */
	const char     *ls, *le;	/* the line */
	int		smtp;		/* the line quotes a server reply */
};

/*
 * Is the word around orig (inside segment seg) written in capitals, at
 * least three letters long, not an acronym and not on a server reply
 * line?  memo gets the word's span, and the line's when it is read.
 */
static int
caps_word_at(const struct scan *sc, size_t seg, const char *orig, struct caps_memo *memo)
{
	const struct classify_rules *r = sc->r;
	const struct seg *g = &sc->segs[seg];
	const unsigned char *lo = (const unsigned char *)g->s, *hi = lo + g->len;
	const unsigned char *a = (const unsigned char *)orig, *b = a, *ls, *le;
	unsigned letters = 0, caps = 0;
	char folded[64];
	size_t n;

	/* back to the word start: step over whole characters */
	while (a > lo) {
		const unsigned char *c = a - 1;

		while (c > lo && utf8_is_cont(*c) && a - c < 4)
			c--;
		if (!(raw_flags(r, c, hi, &n) & CF_LETTER))
			break;
		a = c;
	}
	for (b = a; b < hi; b += n) {
		unsigned fl = raw_flags(r, b, hi, &n);

		if (!(fl & CF_LETTER))
			break;
		letters++;
		caps += (fl & CF_UPPER) != 0;
	}
	memo->wseg = seg;
	memo->ws = (const char *)a;
	memo->we = (const char *)b;
	if (letters < 3 || caps != letters)
		return 0;
	if ((size_t)(b - a) < sizeof(folded) &&
	    acronym_has(r, folded, fold_simple(r, (const char *)a, (size_t)(b - a), folded)))
		return 0;
	if (memo->lseg != seg || (const char *)a < memo->ls || (const char *)a >= memo->le) {
		for (ls = a; ls > lo && ls[-1] != '\n'; ls--)
			;
		for (le = b; le < hi && *le != '\n'; le++)
			;
		memo->lseg = seg;
		memo->ls = (const char *)ls;
		memo->le = (const char *)le;
		memo->smtp = has_smtp_code((const char *)ls, (size_t)(le - ls));
	}
	return !memo->smtp;
}

/* Long words (three letters or more) in folded f[from..to), counting no
 * further than stop. */
static unsigned
long_words(const struct scan *sc, size_t from, size_t to, unsigned stop)
{
	unsigned words = 0, wl = 0;

	while (from < to && words <= stop) {
		size_t n = 1;
		uint32_t cp;

		if (sc->f[from] >= 0x80 && (n = utf8_decode(sc->f + from, sc->f + to, &cp)) == 0)
			n = 1;
		if (n > 1 ? cp_flags(sc->r, cp) & CF_LETTER : sc->r->asc_fl[sc->f[from]] & CF_LETTER)
			wl++;
		else {
			words += wl >= 3;
			wl = 0;
		}
		from += n;
	}
	return words + (wl >= 3);
}

/*
 * Shouting: three words in capitals within ten long words, or a subject
 * mostly in capitals.  Reads only the runs of capitals the fold noted, so
 * ordinary text costs nothing; called only when the answer can change the
 * urgency.  Linear: each word and each line is read once however many runs
 * of capitals it holds (struct caps_memo), and the long words between two
 * capital words are counted at most twice, up to ten.
 */
static void
shouting_check(struct scan *sc)
{
	struct textstats *st = &sc->st;
	size_t at[3] = { 0, 0, 0 };	/* folded starts of the last three capital words */
	unsigned subj_caps = 0;
	struct caps_memo memo = { .wseg = SIZE_MAX, .lseg = SIZE_MAX };

	for (size_t i = 0; i < sc->ncaps; i++) {
		const struct capsrun *c = &sc->caps[i];
		const char *o;

		/* Past the subject, nothing more can change: shouting stays
		 * set, caps_words > 0 is all the "!!" rule asks, subj_caps is
		 * complete. */
		if (st->shouting && c->seg > 0)
			break;
		o = orig_at(sc, c->fpos);
		/* a run in the word read last: that word counted once, if at all */
		if (c->seg == memo.wseg && o >= memo.ws && o <= memo.we)
			continue;
		if (!caps_word_at(sc, c->seg, o, &memo))
			continue;
		st->caps_words++;
		subj_caps += c->seg == 0;
		at[0] = at[1];
		at[1] = at[2];
		at[2] = c->fpos;
		if (st->caps_words >= 3 && long_words(sc, at[0], at[2], 10) < 10)
			st->shouting = 1;
	}
	if (subj_caps >= 2 && 2 * subj_caps > long_words(sc, 1, sc->subj_end, UINT_MAX))
		st->shouting = 1;
}

/* Letters per script in the folded text f[0..n), for the language. */
static void
letter_stats(struct scan *sc, size_t n)
{
	const struct classify_rules *r = sc->r;
	const unsigned char *p = sc->f, *end = p + n;
	struct textstats *st = &sc->st;

	while (p < end) {
		if (*p < 0x80) {
			st->letters += r->asc_fl[*p] & CF_LETTER;
			p++;
		} else if (*p >= 0xc2 && *p <= 0xdf && p + 1 < end && utf8_is_cont(p[1])) {
			unsigned fl = r->f2[((p[0] & 0x1f) << 6 | (p[1] & 0x3f)) - 0x80].flags;

			st->letters += fl & CF_LETTER;
			st->cyr += (fl & CF_CYR) >> 3;
			st->uk += (fl & CF_UK) >> 4;
			st->ru += (fl & CF_RU) >> 5;
			p += 2;
		} else
			p++;
	}
}

/* Appends a separator no phrase can cross. */
static void
fold_break(struct scan *sc)
{
	if (sc->f[sc->flen - 1] != '\n')
		sc->f[sc->flen++] = '\n';
}

/*
 * Does the line s..e (leading blanks skipped) start with a marker of m, or,
 * with exact, consist of one (trailing blanks ignored)?
 */
static int
line_starts_with(const struct classify_rules *r, const struct markers *m, const char *s,
    const char *e, int exact)
{
	char folded[MARKER_WINDOW];
	size_t len = (size_t)(e - s), flen;
	unsigned key;

	if (m->n == 0 || s == e)
		return 0;
	key = head_key(r, s, e, m->head_n);
	if (!(m->head[key / 8] & (1u << (key % 8))))
		return 0;
	if (exact) {
		while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'))
			len--;
		if (len > m->window)
			return 0;
	} else if (len > m->window) {
		len = m->window;
		while (len > 0 && utf8_is_cont((unsigned char)s[len]))
			len--;
	}
	flen = fold_simple(r, s, len, folded);
	for (size_t i = 0; i < m->n; i++) {
		const struct marker *mk = &m->v[i];

		if (mk->len <= flen && (!exact || mk->len == flen) && mk->text[0] == folded[0] &&
		    memcmp(folded, mk->text, mk->len) == 0)
			return 1;
	}
	return 0;
}

/* Does s[0..slen) end with pat[0..plen), where '*' in pat stands for any
 * text (a leading '*' implied)?  The part after the last '*' must be the
 * end of s; the parts before it are then found left to right, each at its
 * first place, which is exact for patterns whose only wildcard is '*'. */
static int
glob_tail(const char *pat, size_t plen, const char *s, size_t slen)
{
	const char *last = memrchr(pat, '*', plen), *p = pat;
	size_t tail = last ? plen - (size_t)(last - pat) - 1 : plen, pos = 0, lim;

	if (tail > slen || memcmp(s + slen - tail, pat + plen - tail, tail) != 0)
		return 0;
	if (last == NULL)
		return 1;
	lim = slen - tail;
	while (p < last) {
		const char *star = memchr(p, '*', (size_t)(last - p) + 1), *hit;
		size_t seg = (size_t)(star - p);

		if (seg > 0) {
			if ((hit = memmem(s + pos, lim - pos, p, seg)) == NULL)
				return 0;
			pos = (size_t)(hit - s) + seg;
		}
		p = star + 1;
	}
	return 1;
}

/* Does the line s..e end with a marker of m (trailing blanks ignored)? */
static int
line_ends_with(const struct classify_rules *r, const struct markers *m, const char *s,
    const char *e)
{
	char folded[MARKER_WINDOW];
	size_t flen;

	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		e--;
	if (m->n == 0 || e == s || !m->last[(unsigned char)e[-1]])
		return 0;
	if ((size_t)(e - s) > m->window) {
		s = e - m->window;
		while (s < e && utf8_is_cont((unsigned char)*s))
			s++;
	}
	flen = fold_simple(r, s, (size_t)(e - s), folded);
	for (size_t i = 0; i < m->n; i++) {
		const struct marker *mk = &m->v[i];

		if (mk->glob ? glob_tail(mk->text, mk->len, folded, flen) :
		    mk->len <= flen && memcmp(folded + flen - mk->len, mk->text, mk->len) == 0)
			return 1;
	}
	return 0;
}

static int
blank_line(const char *s, const char *e)
{
	for (; s < e; s++)
		if (*s != ' ' && *s != '\t' && *s != '\r')
			return 0;
	return 1;
}

static int
has_text(const char *s, const char *e)
{
	for (; s < e; s++)
		if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n' && *s != '>')
			return 1;
	return 0;
}

/* Folds the pending run of unquoted lines, if any. */
static void
fold_pending(struct scan *sc, const char **run, const char *upto)
{
	if (*run) {
		fold_run(sc, *run, (size_t)(upto - *run));
		*run = NULL;
	}
}

/*
 * Folds the body lines that are the client's own words.  Consecutive plain
 * lines are folded in one go; each line costs a memchr and a few table
 * lookups unless its first two bytes could start a marker.
 */
static void
fold_body(struct scan *sc, const char *text, size_t len)
{
	const struct classify_rules *r = sc->r;
	const char *p = text, *end = text + len, *run = NULL;
	int need_break = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end, *next = nl ? nl + 1 : end;
		const char *s = p;

		while (s < le && (*s == ' ' || *s == '\t'))
			s++;
		if (s < le && *s == '>') {
			fold_pending(sc, &run, p);
			sc->quoted |= has_text(s, le);
			need_break = 1;
			p = next;
			continue;
		}
		if (le - s >= 2) {
			unsigned pair = (unsigned char)s[0] << 8 | (unsigned char)s[1];

			if (r->marker_pair[pair / 8] & (1u << (pair % 8))) {
				if (line_starts_with(r, &r->separator, s, le, 0)) {
					sc->quoted |= has_text(next, end);
					break;
				}
				if (line_starts_with(r, &r->signature, s, le, 1))
					break;
				if (next < end && line_starts_with(r, &r->qheader, s, le, 0)) {
					const char *s2 = next, *n2, *e2;

					/* HTML mail turned into text puts a blank line
					 * between Outlook's "From:" and "Sent:" paragraphs:
					 * up to two blank lines may stand between them */
					for (int blanks = 0;; blanks++) {
						n2 = memchr(s2, '\n', (size_t)(end - s2));
						e2 = n2 ? n2 : end;
						if (blanks == 2 || !blank_line(s2, e2) || n2 == NULL)
							break;
						s2 = n2 + 1;
					}
					while (s2 < e2 && (*s2 == ' ' || *s2 == '\t'))
						s2++;
					if (line_starts_with(r, &r->qheader, s2, e2, 0)) {
						sc->quoted |= has_text(next, end);
						break;
					}
				}
			}
		}
		if (line_ends_with(r, &r->attribution, s, le)) {
			const char *q = next, *qe;

			fold_pending(sc, &run, p);
			/* Blank lines, then '>' lines: only those are quoted. */
			for (;;) {
				const char *qn = memchr(q, '\n', (size_t)(end - q));

				qe = qn ? qn : end;
				if (q >= end || !blank_line(q, qe))
					break;
				q = qn ? qn + 1 : end;
			}
			while (q < qe && (*q == ' ' || *q == '\t'))
				q++;
			if (q < qe && *q == '>') {
				need_break = 1;
				p = next;
				continue;
			}
			sc->quoted |= has_text(next, end);
			break;
		}
		if (run == NULL) {
			if (need_break) {
				fold_break(sc);
				need_break = 0;
			}
			run = p;
		}
		p = next;
	}
	fold_pending(sc, &run, p);
}

/* ------------------------------------------------------------------ */
/* Matching                                                            */

/* Where the word that a stem match ends in ends. */
static size_t
word_end_at(const struct scan *sc, size_t pos)
{
	while (pos < sc->flen && (flags_at(sc, pos) & CF_ALNUM)) {
		pos++;
		while (pos < sc->flen && utf8_is_cont(sc->f[pos]))
			pos++;
	}
	return pos;
}

/* Remembers span [start, end) of a phrase of a class for the reasons:
 * SHOW_PER_CLASS of them, the weightiest first found (|weight|); a longer
 * one replaces one it contains. */
static void
show(struct span *shown, uint8_t *nshown, size_t start, size_t end, int weight)
{
	int low = 0;

	if (weight < 0)
		weight = -weight;
	for (int i = 0; i < *nshown; i++) {
		if (start <= shown[i].start && end >= shown[i].end) {
			shown[i].start = (uint32_t)start;
			shown[i].end = (uint32_t)end;
			if (weight > shown[i].weight)
				shown[i].weight = weight;
			return;
		}
		if (start >= shown[i].start && end <= shown[i].end)
			return;
		if (shown[i].weight <= shown[low].weight)
			low = i;	/* of equals, the later one goes */
	}
	if (*nshown < SHOW_PER_CLASS)
		low = (*nshown)++;
	else if (weight <= shown[low].weight)
		return;
	shown[low].start = (uint32_t)start;
	shown[low].end = (uint32_t)end;
	shown[low].weight = weight;
}

static void
hit(struct scan *sc, uint32_t phrase, size_t start, size_t end, int stem)
{
	const struct classify_rules *r = sc->r;
	const struct phrase *ph = &r->phrases[phrase];
	uint8_t zone = start < sc->subj_end ? 2 : 1;
	int first = sc->seen[phrase] == 0, mult = zone == 2 ? 2 : 1, negated = 0;

	if (sc->seen[phrase] & zone)
		return;
	sc->seen[phrase] |= zone;
	if (first && stem)
		end = word_end_at(sc, end);
	if (zone == 2 && sc->subj_reply)
		mult = 1;
	for (uint32_t i = 0; i < ph->cw_count; i++) {
		const struct cw *cw = &r->cws[ph->cw_first + i];

		if (zone == 2 && sc->subj_reply && r->classes[cw->cls].kind != K_CATEGORY)
			continue;	/* a reply's subject: its topic only */
		if (r->classes[cw->cls].kind == K_GROUP) {
			if (sc->nghit[cw->cls] < GROUP_HITS) {
				struct span *g = &sc->ghit[cw->cls][sc->nghit[cw->cls]++];

				g->start = (uint32_t)start;
				g->end = (uint32_t)end;
			}
			continue;
		}
		sc->score[cw->cls] += cw->weight * mult;
		if (!first)
			continue;
		if (cw->weight > 0)
			show(sc->shown[cw->cls], &sc->nshown[cw->cls], start, end, cw->weight);
		else if (cw->weight < 0 && !negated) {
			show(sc->neg, &sc->nneg, start, end, cw->weight);
			negated = 1;
		}
	}
}

/* Where a phrase of len folded bytes ending at end starts, its spaces
 * standing for blank runs in the text. */
static size_t
match_start(const struct scan *sc, size_t end, size_t len)
{
	size_t i = end;

	while (len > 0) {
		i--;
		if (!(sc->f[i] == ' ' && sc->f[i - 1] == ' '))
			len--;
	}
	return i;
}

/* The automaton is in state after the byte before end: check the phrases
 * that end there, keeping those that start before lim at a word start. */
static void
report(struct scan *sc, const struct ac *a, uint32_t state, size_t end, size_t lim, int lang)
{
	for (uint32_t s = state; s; s = a->dict[s]) {
		const struct ac_entry *e = a->entries + a->out_first[s];

		for (uint32_t j = 0; j < a->out_count[s]; j++, e++) {
			size_t start = e->spaces ? match_start(sc, end, e->len) : end - e->len;

			if (start >= lim)
				continue;
			/* Counted already: skip the boundary checks (common for
			 * words that repeat, such as "smtp" in a pasted log). */
			if (!lang && (sc->seen[e->phrase] & (start < sc->subj_end ? 2 : 1)))
				continue;
			if (flags_before(sc, start) & CF_ALNUM)
				continue;
			if (!e->stem && (flags_at(sc, end) & CF_ALNUM))
				continue;
			if (lang) {
				const struct phrase *ph = &sc->r->phrases[e->phrase];

				for (uint32_t i = 0; i < ph->cw_count; i++)
					sc->langcount[sc->r->cws[ph->cw_first + i].cls]++;
			} else
				hit(sc, e->phrase, start, end, e->stem);
		}
	}
}

#define AC_WALKS	8	/* the unrolled loop in ac_scan() has this many steps */
#define AC_QUEUE	256
#define AC_BLANK_SLACK	64

/* A hit found by the interleaved loop, handled outside it. */
struct ac_hit {
	uint32_t	row;		/* state * k */
	uint32_t	end;
	uint32_t	walk;
};

static void
ac_flush(struct scan *sc, const struct ac *a, const struct ac_hit *q, size_t nq,
    const size_t *lim, int lang)
{
	for (size_t i = 0; i < nq; i++)
		report(sc, a, q[i].row / a->k, q[i].end, lim[q[i].walk], lang);
}

/*
 * Runs the automaton over f[0..n).  One walk through a table is bound by
 * the latency of each load, which waits for the one before; so the text is
 * cut into AC_WALKS pieces walked side by side, and the processor overlaps
 * their loads (measured on a 100 KB message: 8 walks are about 5 times
 * faster than one).  Walk w starts afresh at its piece's start and goes on
 * past its end far enough to finish any phrase begun in it, reporting only
 * the matches that start in its piece: every match is found by exactly one
 * walk, and each byte is read about once.  Hits are queued so that the loop makes no calls and
 * its eight states stay in registers.  Short texts get one walk.
 */
static void
ac_scan(struct scan *sc, const struct ac *a, size_t n, int lang)
{
	const uint32_t *d = a->delta;
	const unsigned char *cm = a->cmap, *t = sc->f;
	size_t beg[AC_WALKS], lim[AC_WALKS], len[AC_WALKS], piece, common = 0, nq = 0;
	uint32_t st[AC_WALKS] = { 0 };
	struct ac_hit q[AC_QUEUE];
	int walks = AC_WALKS;
	/* how far a walk reads past its piece: the longest phrase, plus room
	 * for extra blanks inside it (a phrase stretched by more than that
	 * across a piece boundary is missed) */
	size_t over = a->maxlen + AC_BLANK_SLACK;

	if (a->nentries == 0 || n == 0)
		return;
	piece = (n + AC_WALKS - 1) / AC_WALKS;
	if (piece < 4 * over) {
		walks = 1;
		piece = n;
	}
	for (int w = 0; w < walks; w++) {
		beg[w] = w * piece;
		lim[w] = beg[w] + piece < n ? beg[w] + piece : n;
		len[w] = (lim[w] + over < n ? lim[w] + over : n) - beg[w];
	}
	if (walks == AC_WALKS) {
		uint32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;

		common = len[AC_WALKS - 1];	/* the last piece is the shortest */
#define AC_STEP(w) do {							\
		uint32_t v = d[s##w + cm[p[(w) * piece]]];		\
									\
		s##w = v & AC_ROW;					\
		if (v & AC_OUT) {					\
			q[nq].row = s##w;				\
			q[nq].end = (uint32_t)((w) * piece + i + 1);	\
			q[nq].walk = (w);				\
			nq++;						\
		}							\
	} while (0)
		for (size_t i = 0; i < common; i++) {
			const unsigned char *p = t + i;

			AC_STEP(0);
			AC_STEP(1);
			AC_STEP(2);
			AC_STEP(3);
			AC_STEP(4);
			AC_STEP(5);
			AC_STEP(6);
			AC_STEP(7);
			if (nq > AC_QUEUE - AC_WALKS) {
				ac_flush(sc, a, q, nq, lim, lang);
				nq = 0;
			}
		}
#undef AC_STEP
		ac_flush(sc, a, q, nq, lim, lang);
		st[0] = s0;
		st[1] = s1;
		st[2] = s2;
		st[3] = s3;
		st[4] = s4;
		st[5] = s5;
		st[6] = s6;
		st[7] = s7;
	}
	for (int w = 0; w < walks; w++) {
		uint32_t s = st[w];

		for (size_t i = beg[w] + common; i < beg[w] + len[w]; i++) {
			uint32_t v = d[s + cm[t[i]]];

			s = v & AC_ROW;
			if (v & AC_OUT)
				report(sc, a, s / a->k, i + 1, lim[w], lang);
		}
	}
}

/* ------------------------------------------------------------------ */
/* Headers and machine detection                                       */

/* The first word of a structured header value, lowercased, comments and
 * parameters cut off. */
static void
header_token(const char *v, char *out, size_t outsz)
{
	size_t n = 0;

	while (*v == ' ' || *v == '\t')
		v++;
	for (; *v && *v != ';' && *v != '(' && *v != ' ' && *v != '\t' && *v != ',' &&
	    n + 1 < outsz; v++)
		out[n++] = (char)(*v >= 'A' && *v <= 'Z' ? *v + 32 : *v);
	out[n] = '\0';
}

static int
header_is(const struct msg *m, const char *name, const char *value)
{
	const char *v = msg_header_raw(m, name);
	char tok[32];

	if (v == NULL)
		return 0;
	header_token(v, tok, sizeof(tok));
	return strcmp(tok, value) == 0;
}

static int
header_priority(const struct msg *m)
{
	const char *v = msg_header_raw(m, "X-Priority");

	if (v) {
		while (*v == ' ' || *v == '\t')
			v++;
		if ((v[0] == '1' || v[0] == '2') && (v[1] < '0' || v[1] > '9'))
			return 1;
	}
	return header_is(m, "Importance", "high") || header_is(m, "X-MSMail-Priority", "high") ||
	    header_is(m, "Priority", "urgent") || header_is(m, "X-Importance", "high");
}

/* Is the local part of addr (optionally in <>) mailer-daemon or postmaster? */
static int
daemon_address(const char *addr)
{
	const char *s, *at, *e;
	size_t len;

	if (addr == NULL)
		return 0;
	s = addr;
	while (*s == ' ' || *s == '<')
		s++;
	at = strrchr(s, '@');
	e = at ? at : s + strlen(s);
	while (e > s && (e[-1] == '>' || e[-1] == ' '))
		e--;
	len = (size_t)(e - s);
	return (len == 13 && strncasecmp(s, "mailer-daemon", 13) == 0) ||
	    (len == 10 && strncasecmp(s, "postmaster", 10) == 0);
}

static void
auto_reason(const struct msg *m, const char *envelope_from, char *out, size_t outsz)
{
	static const char *const autoreply[] = {
		"X-Autoreply", "X-Autorespond", "X-Auto-Reply", "X-Autogenerated",
		"X-AutoReply-From", "X-Mail-Autoreply", "X-FC-MachineGenerated",
		"X-Auto-Generated", "X-Autoresponder", "X-Auto-Response",
	};
	static const char *const precedence[] = { "bulk", "junk", "list", "auto_reply" };
	const char *v;
	char tok[32];

	out[0] = '\0';
	if ((v = msg_header_raw(m, "Auto-Submitted")) != NULL) {
		header_token(v, tok, sizeof(tok));
		if (strcmp(tok, "no") != 0) {
			snprintf(out, outsz, "auto-submitted");
			return;
		}
	}
	if ((v = msg_header_raw(m, "Precedence")) != NULL) {
		header_token(v, tok, sizeof(tok));
		for (size_t i = 0; i < sizeof(precedence) / sizeof(precedence[0]); i++)
			if (strcmp(tok, precedence[i]) == 0) {
				snprintf(out, outsz, "precedence-%s", tok);
				return;
			}
	}
	if (msg_header_raw(m, "List-Id") || msg_header_raw(m, "List-Unsubscribe") ||
	    msg_header_raw(m, "List-Post")) {
		snprintf(out, outsz, "list");
		return;
	}
	if (msg_header_raw(m, "X-Auto-Response-Suppress")) {
		snprintf(out, outsz, "auto-response-suppress");
		return;
	}
	for (size_t i = 0; i < sizeof(autoreply) / sizeof(autoreply[0]); i++)
		if (msg_header_raw(m, autoreply[i])) {
			snprintf(out, outsz, "autoreply");
			return;
		}
	if (envelope_from) {
		const char *s = envelope_from;

		while (*s == ' ')
			s++;
		if (*s == '\0' || strncmp(s, "<>", 2) == 0) {
			snprintf(out, outsz, "null-sender");
			return;
		}
	}
	if (daemon_address(envelope_from) || daemon_address(m->from_address)) {
		snprintf(out, outsz, "mailer-daemon");
		return;
	}
	if ((m->flags & MSG_REPORT) || msg_header_raw(m, "X-Failed-Recipients") ||
	    (m->content_type && strcasecmp(m->content_type, "multipart/report") == 0)) {
		snprintf(out, outsz, "delivery-report");
		return;
	}
}

/* ------------------------------------------------------------------ */
/* Decision and reasons                                                */

/* The near rules: each counts once per message, as one phrase would,
 * shown in the reasons as the stretch from one word to the other (both
 * quoted when that is short).  At most GROUP_HITS places per group, so
 * the cost is bounded whatever the text. */
static void
near_rules(struct scan *sc)
{
	const struct classify_rules *r = sc->r;

	for (size_t k = 0; k < r->nnear; k++) {
		const struct near_rule *nr = &r->near[k];
		const struct span *A = sc->ghit[nr->a], *B = sc->ghit[nr->b];
		int found = 0;
		size_t s = 0, e = 0;

		for (int i = 0; i < sc->nghit[nr->a] && !found; i++)
			for (int j = 0; j < sc->nghit[nr->b] && !found; j++) {
				const struct span *x = A[i].start <= B[j].start ? &A[i] : &B[j];
				const struct span *y = x == &A[i] ? &B[j] : &A[i];

				if (y->start >= x->end && y->start - x->end <= nr->window &&
				    (x->start >= sc->subj_end) == (y->start >= sc->subj_end)) {
					found = 1;
					s = x->start;
					e = y->end;
				}
			}
		if (!found)
			continue;
		for (int c = 0; c < nr->ncls; c++) {
			sc->score[nr->cls[c]] += nr->weight;
			if (nr->weight > 0)
				show(sc->shown[nr->cls[c]], &sc->nshown[nr->cls[c]], s, e, nr->weight);
		}
	}
}

/* Whether the scored text (subject and unquoted body) asks something:
 * a question mark, or so few words that it can only be a request for
 * help ("help", "???" under a quoted invoice). */
static int
scored_question(const struct scan *sc)
{
	size_t words = 0, from = sc->subj_reply ? sc->subj_end : 0;
	int in_word = 0;

	/* a reply's subject is the other side's words, not a question asked now */
	if (memchr(sc->f + from, '?', sc->flen - from) != NULL)
		return 1;
	for (size_t i = from; i < sc->flen; i++) {
		int w = !(sc->f[i] == ' ' || sc->f[i] == '\n');

		if (w && !in_word)
			words++;
		in_word = w;
	}
	return words <= 3;
}

/* The original text behind folded offset fpos. */
static const char *
orig_at(const struct scan *sc, size_t fpos)
{
	size_t lo = 0, hi = sc->nanch;

	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;

		if (sc->anch[mid].fpos <= fpos)
			lo = mid;
		else
			hi = mid;
	}
	return sc->anch[lo].orig + (fpos - sc->anch[lo].fpos);
}

struct rbuf {
	char	       *s;
	size_t		len, max;
};

/* Appends item as a "; "-separated entry when it fits whole. */
static void
rb_item(struct rbuf *rb, const char *item, size_t len)
{
	size_t sep = rb->len ? 2 : 0;

	if (len == 0 || rb->len + sep + len > rb->max)
		return;
	if (sep) {
		memcpy(rb->s + rb->len, "; ", 2);
		rb->len += 2;
	}
	memcpy(rb->s + rb->len, item, len);
	rb->len += len;
	rb->s[rb->len] = '\0';
}

struct item_buf {
	char		s[160];
	size_t		len;
};

static void
ib_str(struct item_buf *ib, const char *s)
{
	size_t n = strlen(s);

	if (n > sizeof(ib->s) - 1 - ib->len)
		n = sizeof(ib->s) - 1 - ib->len;
	memcpy(ib->s + ib->len, s, n);
	ib->len += n;
	ib->s[ib->len] = '\0';
}

/* Appends the phrase at folded span sp as the client wrote it, in quotes:
 * whole UTF-8 characters only, blanks and controls as one space, at most
 * SHOW_PHRASE_MAX bytes. */
static void
ib_phrase(struct item_buf *ib, const struct scan *sc, const struct span *sp)
{
	const unsigned char *s = (const unsigned char *)orig_at(sc, sp->start);
	const unsigned char *e = (const unsigned char *)orig_at(sc, sp->end - 1) + 1;
	char out[SHOW_PHRASE_MAX + 8];
	size_t n = 0;

	while (utf8_is_cont(*e))
		e++;
	while (s < e) {
		uint32_t cp;
		size_t len = utf8_decode(s, e, &cp);

		if (len == 0) {
			s++;
			continue;
		}
		if (cp <= 0x20 || cp == 0x7f || cp == '"' || (cp >= 0x80 && cp <= 0xa0) ||
		    cp == 0x2028 || cp == 0x2029) {
			if (cp == '"')
				out[n++] = '\'';
			else if (n && out[n - 1] != ' ')
				out[n++] = ' ';	/* blank runs, line breaks: one space */
			s += len;
			continue;
		}
		if (n + len > SHOW_PHRASE_MAX) {
			memcpy(out + n, "\xe2\x80\xa6", 3);	/* … */
			n += 3;
			break;
		}
		memcpy(out + n, s, len);
		n += len;
		s += len;
	}
	while (n && out[n - 1] == ' ')
		n--;
	out[n] = '\0';
	ib_str(ib, "\"");
	ib_str(ib, out);
	ib_str(ib, "\"");
}

static void
reason_class(struct rbuf *rb, const struct scan *sc, int cls, const char *label,
    const char *extra1, const char *extra2)
{
	struct item_buf ib = { .len = 0 };
	int n = 0;

	ib_str(&ib, label);
	ib_str(&ib, ": ");
	for (int i = 0; cls >= 0 && i < sc->nshown[cls]; i++, n++) {
		if (n)
			ib_str(&ib, ", ");
		ib_phrase(&ib, sc, &sc->shown[cls][i]);
	}
	if (extra1) {
		if (n++)
			ib_str(&ib, ", ");
		ib_str(&ib, extra1);
	}
	if (extra2) {
		if (n++)
			ib_str(&ib, ", ");
		ib_str(&ib, extra2);
	}
	if (n)
		rb_item(rb, ib.s, ib.len);
}

static int
class_on(const struct scan *sc, int cls)
{
	return sc->score[cls] >= sc->r->classes[cls].threshold;
}

static void
decide_lang(const struct scan *sc, char *out, size_t outsz)
{
	const struct classify_rules *r = sc->r;
	unsigned latin = sc->st.letters - sc->st.cyr;
	int best = -1, en = 0;
	int bestn = 0;

	snprintf(out, outsz, "en");
	if (sc->st.cyr >= 8 && 2 * sc->st.cyr >= latin) {
		long ru = sc->st.ru, uk = sc->st.uk;

		for (size_t i = 0; i < r->nclasses; i++) {
			if (r->classes[i].kind != K_LANG)
				continue;
			if (strcmp(r->classes[i].value, "ru") == 0)
				ru += 3L * sc->langcount[i];
			else if (strcmp(r->classes[i].value, "uk") == 0)
				uk += 3L * sc->langcount[i];
		}
		if (ru >= 2 && ru > uk)
			snprintf(out, outsz, "ru");
		else if (uk >= 2 && uk > ru)
			snprintf(out, outsz, "uk");
		return;
	}
	for (size_t i = 0; i < r->nclasses; i++) {
		if (r->classes[i].kind != K_LANG || strcmp(r->classes[i].value, "ru") == 0 ||
		    strcmp(r->classes[i].value, "uk") == 0)
			continue;
		if (strcmp(r->classes[i].value, "en") == 0)
			en = sc->langcount[i];
		else if (sc->langcount[i] > bestn) {
			bestn = sc->langcount[i];
			best = (int)i;
		}
	}
	/* Claim another language only on clear evidence: the acknowledgement
	 * is better in English than in the wrong language. */
	if (best >= 0 && bestn >= 3 && 2 * bestn > 3 * en)
		snprintf(out, outsz, "%s", r->classes[best].value);
}

/* What the rules found, as features of the learned part. */
static void
rule_features(struct triage_feats *tf, const struct scan *sc, const struct classify_result *out,
    int u, int best, int shout, int bangs)
{
	static const char *const names[C_BASE] = { "r:outage", "r:impact", "r:security",
		"r:defect", "r:workaround", "r:howto" };
	const struct classify_rules *r = sc->r;
	char f[80];
	int n;

	for (int c = 0; c < C_BASE; c++)
		if (class_on(sc, c))
			triage_feats_add(tf, names[c], strlen(names[c]));
	/* every word the lists know, by what it means, whatever the language
	 * and even below a threshold: "some" evidence of a class, and the
	 * word groups of the near rules (vanish, data-object, foreign, ...) */
	for (size_t i = 0; i < r->nclasses; i++) {
		const char *kind = NULL;

		if (r->classes[i].kind == K_GROUP && sc->nghit[i] > 0)
			kind = "g";
		else if (r->classes[i].kind != K_LANG && r->classes[i].kind != K_GROUP &&
		    sc->score[i] > 0)
			kind = "some";
		if (kind != NULL) {
			n = snprintf(f, sizeof(f), "r:%s-%s", kind, r->classes[i].value);
			if (n > 0 && (size_t)n < sizeof(f))
				triage_feats_add(tf, f, (size_t)n);
		}
	}
	if (shout)
		triage_feats_add(tf, "r:capitals", 10);
	if (bangs)
		triage_feats_add(tf, "r:bangs", 7);
	if (sc->nneg)
		triage_feats_add(tf, "r:negated", 9);
	if (sc->quoted)
		triage_feats_add(tf, "r:quoted", 8);
	if (scored_question(sc))
		triage_feats_add(tf, "r:question", 10);
	if (out->header_priority)
		triage_feats_add(tf, "r:header-priority", 17);
	n = snprintf(f, sizeof(f), "r:u%d", u);
	triage_feats_add(tf, f, (size_t)n);
	for (size_t i = 0; i < r->nclasses; i++)
		if (r->classes[i].kind == K_CATEGORY && class_on(sc, (int)i)) {
			n = snprintf(f, sizeof(f), "r:%s%s", (int)i == best ? "cat-" : "c-",
			    r->classes[i].value);
			if (n > 0 && (size_t)n < sizeof(f))
				triage_feats_add(tf, f, (size_t)n);
		}
	if (best < 0)
		triage_feats_add(tf, "r:cat-other", 11);
}

/* classify_message, and the features of the learned part into tf when tf
 * is not NULL.  use_model 0: the rules alone decide (for training). */
static void
classify_run(const struct classify_rules *r, const struct msg *m,
    const char *envelope_from, struct classify_result *out, struct triage_feats *tf,
    int use_model)
{
	struct scan *sc;
	struct triage_feats *own = NULL;
	struct triage_decision td;
	int learned = 0;
	const char *subject = m->subject ? m->subject : "";
	const char *text = m->text ? m->text : "";
	size_t slen = strlen(subject), tlen = m->text ? m->text_len : 0;
	int security, outage, impact, defect, workaround, howto, shout, bangs, u;
	int best = -1;
	struct rbuf rb;

	memset(out, 0, sizeof(*out));
	snprintf(out->category, sizeof(out->category), "other");
	snprintf(out->lang, sizeof(out->lang), "en");
	out->urgency = out->content_urgency = 3;
	out->header_priority = header_priority(m);
	auto_reason(m, envelope_from, out->auto_reason, sizeof(out->auto_reason));
	if (r == NULL)
		return;
	if (tlen == 0 && m->text)
		tlen = strlen(text);
	/* An out-of-office reply whose software set no header saying so:
	 * its subject still says what it is, in the sender's language. */
	if (!out->auto_reason[0] && line_starts_with(r, &r->autosubj, subject, subject + slen, 0))
		snprintf(out->auto_reason, sizeof(out->auto_reason), "autoreply-subject");

	sc = xcalloc(1, sizeof(*sc));
	sc->r = r;
	sc->seen = xcalloc(r->nphrases + 1, 1);
	/* Folding never makes text longer; +3 for the separators. */
	sc->f = xmalloc(slen + tlen + 4);
	sc->f[0] = '\n';
	sc->flen = 1;
	sc->st.last_bang = (size_t)-2;
	/* "Re: URGENT!!! ..." is the subject the client answered, not words
	 * they chose now: like quoted text, it does not count for urgency
	 * (nor its capitals and '!'), but it still says what the thread is
	 * about ("Re: Invoice 2026-11" under a bare "???"). */
	if (line_starts_with(r, &r->reply, subject, subject + slen, 0)) {
		struct textstats st0 = sc->st;
		size_t ncaps0 = sc->ncaps;

		sc->subj_reply = 1;
		fold_run(sc, subject, slen);
		sc->st = st0;
		sc->ncaps = ncaps0;
	} else
		fold_run(sc, subject, slen);
	fold_break(sc);
	sc->subj_end = sc->flen;
	fold_body(sc, text, tlen);

	ac_scan(sc, &r->main_ac, sc->flen, 0);
	ac_scan(sc, &r->lang_ac, sc->flen < LANG_SCAN ? sc->flen : LANG_SCAN, 1);
	letter_stats(sc, sc->flen < LANG_SCAN ? sc->flen : LANG_SCAN);

	near_rules(sc);
	security = class_on(sc, C_SECURITY);
	outage = class_on(sc, C_OUTAGE);
	if (outage && !security && !out->auto_reason[0])
		shouting_check(sc);
	shout = sc->st.shouting;
	bangs = sc->st.bang_max >= 3 || (sc->st.bang_max >= 2 && sc->st.caps_words > 0);
	impact = class_on(sc, C_IMPACT);
	defect = class_on(sc, C_DEFECT);
	workaround = class_on(sc, C_WORKAROUND);
	howto = class_on(sc, C_HOWTO);

	if (security)
		u = 1;
	else if (outage && (impact || shout || bangs))
		u = 1;
	else if (outage)
		u = 2;
	else if (defect)
		u = 3;
	else if (howto)
		u = 4;
	else if (scored_question(sc))
		u = 4;	/* nothing broken, something asked: "???", "is there ...?" */
	else
		u = 3;
	out->problem = security || outage || defect;
	if (workaround && !security && u < 3)
		u = 3;
	if (out->auto_reason[0])
		u = 4;
	out->urgency = out->content_urgency = u;

	for (size_t i = 0; i < r->nclasses; i++)
		if (r->classes[i].kind == K_CATEGORY && class_on(sc, (int)i) &&
		    (best < 0 || sc->score[i] > sc->score[best]))
			best = (int)i;
	if (best >= 0)
		snprintf(out->category, sizeof(out->category), "%s", r->classes[best].value);
	/* Nothing broken, only asked ("which SMTP port for Thunderbird?"):
	 * the words of mail flow name the topic, not a failure, and a
	 * mail-flow category would start a diagnosis nobody needs. */
	if (best >= 0 && u == 4 && !out->auto_reason[0] && !security && !outage && !defect &&
	    (strcmp(out->category, "outgoing-mail") == 0 || strcmp(out->category, "incoming-mail") == 0)) {
		snprintf(out->category, sizeof(out->category), "other");
		best = -1;
	}
	decide_lang(sc, out->lang, sizeof(out->lang));

	if (tf == NULL && use_model && r->model != NULL && !out->auto_reason[0])
		tf = own = triage_feats_thread();
	if (tf != NULL) {
		rule_features(tf, sc, out, u, best, shout, bangs);
		triage_feats_words(tf, (const char *)sc->f, sc->flen, out->lang);
	}
	/* The learned part decides a person's mail when there is one; machine
	 * mail stays the rules' (P4, never raised).  It has seen the sender's
	 * priority flag already, so classify_adjust() must not raise again. */
	if (use_model && r->model != NULL && !out->auto_reason[0]) {
		/* what the rules would end with for an unknown customer: the
		 * model was trained on that, the flag included */
		int rules_final = u - (out->header_priority && out->problem);

		triage_model_decide(r->model, tf, &td);
		if (td.sure_urgency && td.urgency != (rules_final < 1 ? 1 : rules_final)) {
			learned = 1;
			out->urgency = out->content_urgency = u = td.urgency;
			out->problem = 0;
		}
		if (td.sure_category && strcmp(td.category, out->category) != 0) {
			snprintf(out->category, sizeof(out->category), "%s", td.category);
			best = -1;
			for (size_t i = 0; i < r->nclasses; i++)
				if (r->classes[i].kind == K_CATEGORY && class_on(sc, (int)i) &&
				    strcmp(r->classes[i].value, td.category) == 0)
					best = (int)i;
		}
	}

	rb.s = out->reasons;
	rb.len = 0;
	rb.max = CONTENT_REASONS_MAX;
	if (out->auto_reason[0]) {
		char item[96];
		int n = snprintf(item, sizeof(item), "machine-generated (%s): P4, never raised",
		    out->auto_reason);

		if (n > 0)
			rb_item(&rb, item, (size_t)n < sizeof(item) ? (size_t)n : sizeof(item) - 1);
	}
	/* short, and it explains the rest: what was not read */
	if (sc->quoted)
		rb_item(&rb, "quoted text ignored", 19);
	if (security)
		reason_class(&rb, sc, C_SECURITY, "security", NULL, NULL);
	if (outage)
		reason_class(&rb, sc, C_OUTAGE, "state broken", NULL, NULL);
	if (impact || shout || bangs)
		reason_class(&rb, sc, impact ? C_IMPACT : -1, "impact",
		    shout ? "CAPITALS" : NULL, bangs ? "\"!!!\"" : NULL);
	if (workaround)
		reason_class(&rb, sc, C_WORKAROUND, "state workaround", NULL, NULL);
	if (sc->nneg) {
		struct item_buf ib = { .len = 0 };

		ib_str(&ib, "negated: ");
		for (int i = 0; i < sc->nneg; i++) {
			if (i)
				ib_str(&ib, ", ");
			ib_phrase(&ib, sc, &sc->neg[i]);
		}
		rb_item(&rb, ib.s, ib.len);
	}
	if (defect)
		reason_class(&rb, sc, C_DEFECT, "state faulty", NULL, NULL);
	if (howto)
		reason_class(&rb, sc, C_HOWTO, "state question", NULL, NULL);
	if (!security && !outage && !defect && !howto && !out->auto_reason[0])
		rb_item(&rb, u == 4 ? "a question, no problem wording: P4" : "no problem wording: P3",
		    u == 4 ? 34 : 22);
	if (learned) {
		char item[160];
		int n = snprintf(item, sizeof(item), "learned %s: %s", classify_urgency_name(u),
		    td.why[0] ? td.why : "bias");

		if (n > 0)
			rb_item(&rb, item, (size_t)n < sizeof(item) ? (size_t)n : sizeof(item) - 1);
	}
	if (best >= 0) {
		char label[64];

		snprintf(label, sizeof(label), "function %s", r->classes[best].value);
		reason_class(&rb, sc, best, label, NULL, NULL);
	} else if (use_model && r->model != NULL && strcmp(out->category, "other") != 0) {
		char item[80];
		int n = snprintf(item, sizeof(item), "function %s (learned)", out->category);

		if (n > 0)
			rb_item(&rb, item, (size_t)n < sizeof(item) ? (size_t)n : sizeof(item) - 1);
	}
	out->reasons_content_len = rb.len;

	free(sc->anch);
	free(sc->segs);
	free(sc->caps);
	free(sc->seen);
	free(sc->f);
	free(sc);
}

void
classify_message(const struct classify_rules *r, const struct msg *m,
    const char *envelope_from, struct classify_result *out)
{
	classify_run(r, m, envelope_from, out, NULL, 1);
}

void
classify_features(const struct classify_rules *r, const struct msg *m,
    const char *envelope_from, struct classify_result *out, struct triage_feats *tf)
{
	classify_run(r, m, envelope_from, out, tf, 0);
}

void
classify_adjust(struct classify_result *r, const char *tier, int watch,
    int recent_messages_24h)
{
	struct rbuf rb;
	int u = r->content_urgency, raises = 0;
	char item[64];

	if (r->reasons_content_len < sizeof(r->reasons))
		r->reasons[r->reasons_content_len] = '\0';
	rb.s = r->reasons;
	rb.len = strlen(r->reasons);
	rb.max = CLASSIFY_REASONS_MAX;
	if (u < 1 || u > 4)
		u = 3;
	if (r->auto_reason[0]) {
		r->urgency = u;
		return;
	}
	/* a sender's priority flag lifts a problem, not a question about
	 * prices (the rubric: it never lifts what is P4 by content) */
	if (r->header_priority && r->problem) {
		rb_item(&rb, "header priority +1", 18);
		raises++;
	}
	if (tier && strcasecmp(tier, "trial") == 0) {
		rb_item(&rb, "tier trial +1", 13);
		raises++;
	}
	if (watch) {
		rb_item(&rb, "incident watch +1", 17);
		raises++;
	}
	if (recent_messages_24h >= 3) {
		int n = recent_messages_24h, len;
		const char *suf = "th";

		if (n % 100 < 11 || n % 100 > 13)
			suf = n % 10 == 1 ? "st" : n % 10 == 2 ? "nd" : n % 10 == 3 ? "rd" : "th";
		len = snprintf(item, sizeof(item), "%d%s message in 24h +1", n, suf);
		if (len > 0 && (size_t)len < sizeof(item))
			rb_item(&rb, item, (size_t)len);
		raises++;
	}
	if (u - raises < 1 && raises)
		rb_item(&rb, "capped at P1", 12);
	u -= raises;
	r->urgency = u < 1 ? 1 : u;
}

const char *
classify_urgency_name(int urgency)
{
	static const char *const names[] = { "P1", "P2", "P3", "P4" };

	if (urgency < 1 || urgency > 4)
		return "P3";
	return names[urgency - 1];
}
