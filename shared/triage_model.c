/*
 * triage_model - features of a message and the linear model over them
 * (see triage_model.h).
 */
#include <errno.h>
#include <libstemmer.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "triage_model.h"
#include "utf8.h"
#include "xalloc.h"

#define NURG		4
#define MAX_WORD	64	/* bytes; longer runs are not words (hashes, base64) */

struct triage_model {
	int		ncat;
	char		cat[TRIAGE_MAX_CATS][48];
	int		nw;			/* weights per feature: NURG + ncat */
	float		bias[NURG + TRIAGE_MAX_CATS];
	float		gate[2];		/* urgency, category */
	size_t		nfeat;
	char	      **name;			/* for the reasons */
	float	       *w;			/* nfeat * nw */
	uint64_t       *slot_hash;		/* open addressing, 2^k slots */
	uint32_t       *slot_idx;
	size_t		mask;
};

static uint64_t
fnv64(const char *s, size_t len)
{
	uint64_t h = 14695981039346656037ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h ? h : 1;
}

double
triage_feature_value(const char *name)
{
	return strncmp(name, "c:", 2) == 0 ? TRIAGE_GRAM_VALUE : 1.0;
}

void
triage_feats_init(struct triage_feats *tf)
{
	tf->n = 0;
	memset(tf->seen, 0, sizeof(tf->seen));
	buf_init(&tf->text, 64 * 1024);
}

void
triage_feats_free(struct triage_feats *tf)
{
	buf_free(&tf->text);
	tf->n = 0;
}

/* Per thread: the feature set and the Snowball stemmers (a stemmer keeps
 * state, so threads cannot share one; making one per message costs more
 * than the stemming). */
struct stem_cache {
	size_t	n;
	struct {
		const char		*algo;
		struct sb_stemmer	*st;
	} v[16];
};

static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static pthread_key_t feats_key, stem_key;

static void
feats_destroy(void *p)
{
	triage_feats_free(p);
	free(p);
}

static void
stem_destroy(void *p)
{
	struct stem_cache *c = p;

	for (size_t i = 0; i < c->n; i++)
		sb_stemmer_delete(c->v[i].st);
	free(c);
}

static void
tls_init(void)
{
	if (pthread_key_create(&feats_key, feats_destroy) != 0 ||
	    pthread_key_create(&stem_key, stem_destroy) != 0)
		abort();
}

struct triage_feats *
triage_feats_thread(void)
{
	struct triage_feats *tf;

	pthread_once(&tls_once, tls_init);
	if ((tf = pthread_getspecific(feats_key)) == NULL) {
		tf = xmalloc(sizeof(*tf));
		triage_feats_init(tf);
		if (pthread_setspecific(feats_key, tf) != 0)
			abort();
		return tf;
	}
	for (size_t i = 0; i < tf->n; i++)
		tf->seen[tf->slot[i]] = 0;
	tf->n = 0;
	buf_reset(&tf->text);
	return tf;
}

/* The thread's stemmer for a Snowball algorithm name (a static string). */
static struct sb_stemmer *
stemmer_for(const char *algo)
{
	struct stem_cache *c;
	struct sb_stemmer *st;

	pthread_once(&tls_once, tls_init);
	if ((c = pthread_getspecific(stem_key)) == NULL) {
		c = xcalloc(1, sizeof(*c));
		if (pthread_setspecific(stem_key, c) != 0)
			abort();
	}
	for (size_t i = 0; i < c->n; i++)
		if (c->v[i].algo == algo)
			return c->v[i].st;
	if ((st = sb_stemmer_new(algo, "UTF_8")) == NULL || c->n == sizeof(c->v) / sizeof(c->v[0]))
		return st;		/* (a full cache never happens: 8 algorithms) */
	c->v[c->n].algo = algo;
	c->v[c->n++].st = st;
	return st;
}

void
triage_feats_add(struct triage_feats *tf, const char *name, size_t len)
{
	const size_t nslots = sizeof(tf->seen) / sizeof(tf->seen[0]);
	uint64_t h = fnv64(name, len);
	size_t i = (size_t)h & (nslots - 1);

	if (tf->n >= TRIAGE_MAX_FEATS || len > 200)
		return;
	while (tf->seen[i]) {
		if (tf->seen[i] == h)
			return;
		i = (i + 1) & (nslots - 1);
	}
	if (tf->text.len + len + 1 > tf->text.max)
		return;
	tf->seen[i] = h;
	tf->slot[tf->n] = (uint16_t)i;
	tf->hash[tf->n] = h;
	tf->off[tf->n] = (uint32_t)tf->text.len;
	tf->len[tf->n] = (uint16_t)len;
	buf_append(&tf->text, name, len);
	buf_append_char(&tf->text, '\0');
	tf->n++;
}

/* ------------------------------------------------------------------ */
/* Words                                                               */

/* The next character of possibly broken UTF-8: a bad byte is U+FFFD, one
 * byte long, so the scan always moves on. */
static int
utf8_next(const unsigned char *p, const unsigned char *end, uint32_t *cp)
{
	size_t n = utf8_decode(p, end, cp);

	if (n == 0) {
		*cp = 0xfffd;
		return 1;
	}
	return (int)n;
}

static int
word_cp(uint32_t cp)
{
	if (cp < 0x80)
		return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
		    (cp >= '0' && cp <= '9');
	if (cp >= 0xc0 && cp <= 0x24f)
		return cp != 0xd7 && cp != 0xf7;
	return (cp >= 0x370 && cp <= 0x3ff) || (cp >= 0x400 && cp <= 0x52f);
}

/* Ends a sentence for bigrams. */
static int
stop_cp(uint32_t cp)
{
	return cp == '.' || cp == '!' || cp == '?' || cp == '\n' || cp == ';' || cp == ':';
}

static int
is_vowel(uint32_t cp)
{
	static const uint32_t v[] = { 'a', 'e', 'i', 'o', 'u', 'y', 0x430, 0x435, 0x454, 0x438,
		0x456, 0x457, 0x43e, 0x443, 0x44e, 0x44f, 0x44b, 0x44d };

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (cp == v[i])
			return 1;
	return 0;
}

static size_t
put_cp(char *out, uint32_t cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	out[0] = (char)(0xe0 | cp >> 12);
	out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[2] = (char)(0x80 | (cp & 0x3f));
	return 3;
}

/* Latin diacritics off, ASCII lower-cased (Snowball and the folded text
 * are lower-case already; a caller's text may not be). */
static size_t
plain_letters(const char *in, size_t len, char *out)
{
	size_t n = utf8_strip_latin(in, len, out);

	for (size_t i = 0; i < n; i++)
		if (out[i] >= 'A' && out[i] <= 'Z')
			out[i] = (char)(out[i] + 32);
	return n;
}

/* Polish and Ukrainian: the first five letters; a word of four or five
 * letters loses a final vowel ("листи" and "лист" meet). */
static size_t
prefix_stem(const char *in, size_t len, char *out)
{
	const unsigned char *p = (const unsigned char *)in, *end = p + len;
	uint32_t cps[MAX_WORD];
	size_t n = 0, o = 0;

	while (p < end && n < MAX_WORD) {
		p += utf8_next(p, end, &cps[n]);
		n++;
	}
	if (n > 5)
		n = 5;
	else if (n >= 4 && is_vowel(cps[n - 1]))
		n--;
	for (size_t i = 0; i < n; i++)
		o += put_cp(out + o, cps[i]);
	return o;
}

static const char *
snowball_name(const char *lang)
{
	static const char *const map[][2] = {
		{ "en", "english" }, { "de", "german" }, { "fr", "french" }, { "es", "spanish" },
		{ "it", "italian" }, { "pt", "portuguese" }, { "ru", "russian" }, { "nl", "dutch" },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(map[i][0], lang) == 0)
			return map[i][1];
	return NULL;
}

void
triage_feats_words(struct triage_feats *tf, const char *text, size_t len, const char *lang)
{
	const unsigned char *p = (const unsigned char *)text, *end = p + len;
	const char *algo = snowball_name(lang ? lang : "");
	struct sb_stemmer *stemmer = algo ? stemmer_for(algo) : NULL;
	int prefix = lang && (strcmp(lang, "pl") == 0 || strcmp(lang, "uk") == 0);
	char prev[MAX_WORD * 3 + 8], feat[MAX_WORD * 6 + 16];
	size_t prevlen = 0;
	int words = 0;

	while (p < end && words < TRIAGE_MAX_WORDS) {
		const unsigned char *w;
		uint32_t cp;
		int n = utf8_next(p, end, &cp);
		char stem[MAX_WORD * 3 + 8];
		size_t slen;

		if (!word_cp(cp)) {
			if (stop_cp(cp))
				prevlen = 0;
			p += n;
			continue;
		}
		w = p;
		while (p < end) {
			n = utf8_next(p, end, &cp);
			if (!word_cp(cp))
				break;
			p += n;
		}
		if ((size_t)(p - w) > MAX_WORD) {
			prevlen = 0;
			continue;
		}
		words++;
		if (stemmer != NULL) {
			const sb_symbol *s = sb_stemmer_stem(stemmer, (const sb_symbol *)w, (int)(p - w));
			int sl = s ? sb_stemmer_length(stemmer) : 0;

			if (s == NULL || sl <= 0 || sl > MAX_WORD)
				slen = plain_letters((const char *)w, (size_t)(p - w), stem);
			else
				slen = plain_letters((const char *)s, (size_t)sl, stem);
		} else {
			char plain[MAX_WORD * 3 + 8];
			size_t pl = plain_letters((const char *)w, (size_t)(p - w), plain);

			slen = prefix ? prefix_stem(plain, pl, stem) : pl;
		}
		if (slen == 0)
			continue;
		memcpy(feat, "w:", 2);
		memcpy(feat + 2, stem, slen);
		triage_feats_add(tf, feat, slen + 2);
		if (prevlen) {
			memcpy(feat, "b:", 2);
			memcpy(feat + 2, prev, prevlen);
			feat[2 + prevlen] = '_';
			memcpy(feat + 3 + prevlen, stem, slen);
			triage_feats_add(tf, feat, 3 + prevlen + slen);
		}
		memcpy(prev, stem, slen);
		prevlen = slen;
		if (words <= TRIAGE_GRAM_WORDS) {
			char plain[MAX_WORD * 3 + 8];
			size_t pl = plain_letters((const char *)w, (size_t)(p - w), plain + 1);
			const unsigned char *q, *qe;

			plain[0] = '^';
			plain[pl + 1] = '$';
			pl += 2;
			/* 4-grams of characters (not bytes) of the unstemmed word,
			 * marked at its ends: what a stemmer misses (Polish,
			 * Ukrainian, transliteration, typos) still shares most */
			q = (const unsigned char *)plain;
			qe = q + pl;
			while (q < qe) {
				const unsigned char *g = q;
				uint32_t gc;
				int k;

				for (k = 0; k < 4 && g < qe; k++)
					g += utf8_next(g, qe, &gc);
				if (k < 4)
					break;
				memcpy(feat, "c:", 2);
				memcpy(feat + 2, q, (size_t)(g - q));
				triage_feats_add(tf, feat, 2 + (size_t)(g - q));
				q += utf8_next(q, qe, &gc);
			}
		}
	}
}

/* ------------------------------------------------------------------ */
/* The model                                                           */

static int
load_error(struct buf *errors, const char *path, int line, const char *what)
{
	if (errors != NULL)
		buf_printf(errors, "%s:%d: %s\n", path, line, what);
	return -1;
}

static int
parse_floats(char *s, float *out, int n)
{
	for (int i = 0; i < n; i++) {
		char *e;
		double v;

		errno = 0;
		v = strtod(s, &e);
		if (e == s || errno != 0 || !isfinite(v) || fabs(v) > 1e6)
			return -1;
		out[i] = (float)v;
		s = e;
	}
	while (*s == ' ' || *s == '\t')
		s++;
	return *s == '\0' ? 0 : -1;
}

static void
model_index(struct triage_model *tm)
{
	size_t slots = 16;

	while (slots < 2 * tm->nfeat + 16)
		slots *= 2;
	tm->mask = slots - 1;
	tm->slot_hash = xcalloc(slots, sizeof(*tm->slot_hash));
	tm->slot_idx = xcalloc(slots, sizeof(*tm->slot_idx));
	for (size_t f = 0; f < tm->nfeat; f++) {
		uint64_t h = fnv64(tm->name[f], strlen(tm->name[f]));
		size_t i = (size_t)h & tm->mask;

		while (tm->slot_hash[i] && tm->slot_hash[i] != h)
			i = (i + 1) & tm->mask;
		tm->slot_hash[i] = h;
		tm->slot_idx[i] = (uint32_t)f;
	}
}

struct triage_model *
triage_model_load(const char *path, struct buf *errors)
{
	FILE *fp = fopen(path, "r");
	struct triage_model *tm;
	char *line = NULL;
	size_t cap = 0, capfeat = 0;
	int lineno = 0, have_head = 0, have_bias = 0, bad = 0;

	if (fp == NULL) {
		load_error(errors, path, 0, strerror(errno));
		return NULL;
	}
	tm = xcalloc(1, sizeof(*tm));
	while (!bad && getline(&line, &cap, fp) > 0) {
		char *s = line, *sp;

		lineno++;
		s[strcspn(s, "\r\n")] = '\0';
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0' || *s == '#')
			continue;
		if ((sp = strpbrk(s, " \t")) == NULL) {
			bad = load_error(errors, path, lineno, "a name and weights expected");
			break;
		}
		*sp++ = '\0';
		if (!have_head) {
			if (strcmp(s, "triage-model") != 0 || strcmp(sp, "1") != 0)
				bad = load_error(errors, path, lineno, "\"triage-model 1\" expected first");
			have_head = 1;
		} else if (strcmp(s, "categories") == 0) {
			for (char *t = strtok(sp, " \t"); t; t = strtok(NULL, " \t")) {
				if (tm->ncat == TRIAGE_MAX_CATS || strlen(t) >= sizeof(tm->cat[0])) {
					bad = load_error(errors, path, lineno, "too many or too long categories");
					break;
				}
				snprintf(tm->cat[tm->ncat++], sizeof(tm->cat[0]), "%s", t);
			}
			tm->nw = NURG + tm->ncat;
		} else if (tm->nw == 0) {
			bad = load_error(errors, path, lineno, "\"categories\" expected before weights");
		} else if (strcmp(s, "gate") == 0) {
			if (parse_floats(sp, tm->gate, 2) < 0)
				bad = load_error(errors, path, lineno, "bad gate");
		} else if (strcmp(s, "bias") == 0) {
			if (parse_floats(sp, tm->bias, tm->nw) < 0)
				bad = load_error(errors, path, lineno, "bad bias weights");
			have_bias = 1;
		} else {
			if (tm->nfeat == capfeat) {
				capfeat = capfeat ? 2 * capfeat : 1024;
				tm->name = xrealloc(tm->name, capfeat * sizeof(*tm->name));
				tm->w = xrealloc(tm->w, capfeat * (size_t)tm->nw * sizeof(*tm->w));
			}
			if (parse_floats(sp, tm->w + tm->nfeat * (size_t)tm->nw, tm->nw) < 0) {
				bad = load_error(errors, path, lineno, "bad feature weights");
				break;
			}
			tm->name[tm->nfeat++] = xstrdup(s);
		}
	}
	free(line);
	fclose(fp);
	if (!bad && (!have_head || !have_bias || tm->ncat == 0))
		bad = load_error(errors, path, lineno, "incomplete model (header, categories, bias)");
	if (bad) {
		triage_model_free(tm);
		return NULL;
	}
	model_index(tm);
	return tm;
}

void
triage_model_free(struct triage_model *tm)
{
	if (tm == NULL)
		return;
	for (size_t i = 0; i < tm->nfeat; i++)
		free(tm->name[i]);
	free(tm->name);
	free(tm->w);
	free(tm->slot_hash);
	free(tm->slot_idx);
	free(tm);
}

static const float *
model_weights(const struct triage_model *tm, uint64_t h)
{
	size_t i = (size_t)h & tm->mask;

	while (tm->slot_hash[i]) {
		if (tm->slot_hash[i] == h)
			return tm->w + tm->slot_idx[i] * (size_t)tm->nw;
		i = (i + 1) & tm->mask;
	}
	return NULL;
}

/* How a feature reads in the reasons: a stem gets its '*', a rule stays. */
static size_t
feat_shown(const char *name, char *out, size_t outsz)
{
	int n;

	if (strncmp(name, "w:", 2) == 0)
		n = snprintf(out, outsz, "%s*", name + 2);
	else if (strncmp(name, "b:", 2) == 0) {
		n = snprintf(out, outsz, "%s*", name + 2);
		for (char *u = out; *u; u++)
			if (*u == '_')
				*u = ' ';
	} else
		n = snprintf(out, outsz, "%s", name);
	return n < 0 ? 0 : (size_t)n < outsz ? (size_t)n : outsz - 1;
}

void
triage_model_decide(const struct triage_model *tm, const struct triage_feats *tf,
    struct triage_decision *out)
{
	double s[NURG + TRIAGE_MAX_CATS], max, sum = 0;
	int best = 0, bestc = 0;
	struct { double v; size_t f; } top[3] = { { 0, 0 }, { 0, 0 }, { 0, 0 } };
	size_t len = 0;

	memset(out, 0, sizeof(*out));
	for (int k = 0; k < tm->nw; k++)
		s[k] = tm->bias[k];
	const float **wf = xmalloc((tf->n + 1) * sizeof(*wf));

	for (size_t f = 0; f < tf->n; f++) {
		const float *w = wf[f] = model_weights(tm, tf->hash[f]);
		double v;

		if (w == NULL)
			continue;
		v = triage_feature_value(tf->text.data + tf->off[f]);
		for (int k = 0; k < tm->nw; k++)
			s[k] += v * w[k];
	}
	for (int k = 1; k < NURG; k++)
		if (s[k] > s[best])
			best = k;
	for (int k = 1; k < tm->ncat; k++)
		if (s[NURG + k] > s[NURG + bestc])
			bestc = k;
	max = s[best];
	for (int k = 0; k < NURG; k++)
		sum += out->p_urgency[k] = exp(s[k] - max);
	for (int k = 0; k < NURG; k++)
		out->p_urgency[k] /= sum;
	out->urgency = best + 1;
	snprintf(out->category, sizeof(out->category), "%s", tm->cat[bestc]);
	sum = 0;
	for (int k = 0; k < tm->ncat; k++)
		sum += exp(s[NURG + k] - s[NURG + bestc]);
	out->p_category = 1.0 / sum;
	out->sure_urgency = out->p_urgency[best] >= tm->gate[0];
	out->sure_category = out->p_category >= tm->gate[1];

	/* what pushed toward the urgency chosen more than toward the others,
	 * among what a person can read: words, pairs and the rules' findings
	 * (not character 4-grams, not one- and two-letter stems) */
	for (size_t f = 0; f < tf->n; f++) {
		const float *w = wf[f];
		const char *name = tf->text.data + tf->off[f];
		double v = 0;

		if (w == NULL || strncmp(name, "c:", 2) == 0 ||
		    (strncmp(name, "w:", 2) == 0 && tf->len[f] < 5))
			continue;
		for (int k = 0; k < NURG; k++)
			v += w[best] - w[k];
		v *= triage_feature_value(tf->text.data + tf->off[f]) / (NURG - 1);
		for (int t = 0; t < 3; t++)
			if (v > top[t].v) {
				memmove(&top[t + 1], &top[t], (size_t)(2 - t) * sizeof(top[0]));
				top[t].v = v;
				top[t].f = f + 1;
				break;
			}
	}
	free(wf);
	for (int t = 0; t < 3 && top[t].f; t++) {
		char shown[80];
		size_t n = feat_shown(tf->text.data + tf->off[top[t].f - 1], shown, sizeof(shown));

		if (len + n + 2 >= sizeof(out->why))
			break;
		if (len) {
			memcpy(out->why + len, ", ", 2);
			len += 2;
		}
		memcpy(out->why + len, shown, n);
		len += n;
		out->why[len] = '\0';
	}
}
