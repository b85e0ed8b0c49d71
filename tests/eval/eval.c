/*
 * eval - how the classifier does on labelled mail it was not tuned on.
 *
 *   eval KEYWORDS_DIR [--json] [--part dev|test|all] CORPUS_DIR...
 *
 * Each CORPUS_DIR holds *.eml files and labels.tsv ("file lang urgency
 * category machine note", tab-separated, a header line first), written
 * by people who read only the rubric.  Every message goes through the
 * milter's own path: msg_parse with the default MaxBodyScan, then
 * classify_message and the raises a new case of an unknown customer gets
 * (classify_adjust).
 *
 * Parts: a message is in the test part when the FNV-1a hash of its file
 * name is 0 mod 3, else in the dev part; the split never depends on the
 * classifier, so it cannot drift toward what it does well.  Only the dev
 * part may be looked at while tuning (the dev listing of misses); the test
 * part is only scored.
 *
 * Prints, per part: urgency and category confusion matrices, accuracy per
 * language, P1 recall and precision, machine-mail precision and recall;
 * with --misses, the dev part's wrong answers.  --json prints the figures
 * only (for tests/integration/test_eval.sh).  --list prints each message's
 * answer instead ("DIR/FILE urgency category machine", tab-separated: what
 * tests/integration/test_eval_mta.sh compares with the headers Postfix
 * delivers).  --rules scores the keyword
 * rules alone, without the learned part (KEYWORDS_DIR/triage.model).
 *
 * The learned part (shared/triage_model.h) is trained here, on the dev
 * part only:
 *   --train OUT   writes the model to OUT (make model: conf/keywords/triage.model)
 *   --cv K        K-fold cross-validation inside the dev part: how a model
 *                 trained without each fold does on it (choose settings by
 *                 this, never by the test part)
 *   --gate P, --gate-category P   how sure the model must be to overrule
 *                 the rules (written to the model)
 *   --epochs, --rate, --l2, --p1-weight   the training itself
 *   --prune W     features whose weights all stay below W are left out
 * Training is multinomial logistic regression by stochastic gradient
 * descent in a fixed order (a seeded shuffle), so the same corpora give the
 * same file; features seen in fewer than two dev messages are dropped.
 */
#include <ctype.h>
#include <math.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "classify.h"
#include "msg.h"
#include "triage_model.h"
#include "xalloc.h"

#define MAX_SCAN	(256 * 1024)	/* MaxBodyScan's default */
#define MAX_MSG		(4 * 1024 * 1024)

static const char *const categories[] = {
	"outgoing-mail", "incoming-mail", "login", "billing", "security", "outage",
	"feature-request", "other",
};
#define NCAT (int)(sizeof(categories) / sizeof(categories[0]))
#define NLANG 16

struct score {
	int	n, human;
	int	urg[4][4];		/* [expected][got] */
	int	cat[NCAT][NCAT];
	int	urg_ok, cat_ok, cat_n;
	int	p1_exp, p1_got, p1_hit;
	int	mach_exp, mach_got, mach_hit;
	char	lang[NLANG][8];
	int	lang_n[NLANG], lang_ok[NLANG];
	char	corpus[NLANG][208];	/* the same per corpus (per writer) */
	int	corpus_n[NLANG], corpus_ok[NLANG], corpus_p1[NLANG], corpus_p1_hit[NLANG];
};

static int
cat_index(const char *c)
{
	for (int i = 0; i < NCAT; i++)
		if (strcmp(categories[i], c) == 0)
			return i;
	return NCAT - 1;
}

static int
is_test(const char *name)
{
	uint32_t h = 2166136261u;

	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		h ^= *p;
		h *= 16777619u;
	}
	return h % 3 == 0;
}

static char *
slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *data;

	if (fp == NULL)
		return NULL;
	data = malloc(MAX_MSG + 1);
	*len = fread(data, 1, MAX_MSG, fp);
	fclose(fp);
	data[*len] = '\0';
	return data;
}

static void
count_lang(struct score *s, const char *lang, int ok)
{
	int i;

	for (i = 0; i < NLANG && s->lang[i][0]; i++)
		if (strcmp(s->lang[i], lang) == 0)
			break;
	if (i == NLANG)
		return;
	if (!s->lang[i][0])
		snprintf(s->lang[i], sizeof(s->lang[i]), "%s", lang);
	s->lang_n[i]++;
	s->lang_ok[i] += ok;
}

static void
count_corpus(struct score *s, const char *dir, int ok, int p1, int p1_hit)
{
	const char *base = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;
	int i;

	for (i = 0; i < NLANG && s->corpus[i][0]; i++)
		if (strcmp(s->corpus[i], base) == 0)
			break;
	if (i == NLANG)
		return;
	if (!s->corpus[i][0])
		snprintf(s->corpus[i], sizeof(s->corpus[i]), "%s", base);
	s->corpus_n[i]++;
	s->corpus_ok[i] += ok;
	s->corpus_p1[i] += p1;
	s->corpus_p1_hit[i] += p1_hit;
}

static double
pct(int a, int b)
{
	return b ? 100.0 * a / b : 0.0;
}

static void
print_part(const char *name, const struct score *s)
{
	printf("\n== %s part: %d messages (%d from people)\n", name, s->n, s->human);
	printf("urgency right      %d/%d (%.1f%%)\n", s->urg_ok, s->n, pct(s->urg_ok, s->n));
	printf("category right     %d/%d (%.1f%%)  (people's mail)\n", s->cat_ok, s->cat_n,
	    pct(s->cat_ok, s->cat_n));
	printf("P1 recall          %d/%d (%.1f%%)\n", s->p1_hit, s->p1_exp, pct(s->p1_hit, s->p1_exp));
	printf("P1 precision       %d/%d (%.1f%%)\n", s->p1_hit, s->p1_got, pct(s->p1_hit, s->p1_got));
	printf("machine recall     %d/%d (%.1f%%)\n", s->mach_hit, s->mach_exp, pct(s->mach_hit, s->mach_exp));
	printf("machine precision  %d/%d (%.1f%%)\n", s->mach_hit, s->mach_got, pct(s->mach_hit, s->mach_got));
	printf("\nurgency (rows: label, columns: helpgate)\n        P1   P2   P3   P4\n");
	for (int e = 0; e < 4; e++)
		printf("  P%d  %4d %4d %4d %4d\n", e + 1, s->urg[e][0], s->urg[e][1], s->urg[e][2], s->urg[e][3]);
	printf("\ncategory (rows: label, columns: helpgate; people's mail)\n                 ");
	for (int g = 0; g < NCAT; g++)
		printf(" %5.5s", categories[g]);
	printf("\n");
	for (int e = 0; e < NCAT; e++) {
		printf("  %-15s", categories[e]);
		for (int g = 0; g < NCAT; g++)
			printf(" %5d", s->cat[e][g]);
		printf("\n");
	}
	printf("\nurgency right per language\n");
	for (int i = 0; i < NLANG && s->lang[i][0]; i++)
		printf("  %-4s %3d/%-3d %5.1f%%\n", s->lang[i], s->lang_ok[i], s->lang_n[i],
		    pct(s->lang_ok[i], s->lang_n[i]));
	printf("\nurgency right and P1 recall per corpus (per writer)\n");
	for (int i = 0; i < NLANG && s->corpus[i][0]; i++)
		printf("  %-10s %3d/%-3d %5.1f%%   P1 %3d/%-3d %5.1f%%\n", s->corpus[i], s->corpus_ok[i],
		    s->corpus_n[i], pct(s->corpus_ok[i], s->corpus_n[i]), s->corpus_p1_hit[i],
		    s->corpus_p1[i], pct(s->corpus_p1_hit[i], s->corpus_p1[i]));
}

static void
print_json(const char *name, const struct score *s, int last)
{
	printf("\"%s\":{\"n\":%d,\"urgency\":%.1f,\"category\":%.1f,\"p1_recall\":%.1f,"
	    "\"p1_precision\":%.1f,\"machine_recall\":%.1f,\"machine_precision\":%.1f}%s",
	    name, s->n, pct(s->urg_ok, s->n), pct(s->cat_ok, s->cat_n), pct(s->p1_hit, s->p1_exp),
	    pct(s->p1_hit, s->p1_got), pct(s->mach_hit, s->mach_exp), pct(s->mach_hit, s->mach_got),
	    last ? "" : ",");
}

/* One labelled message, as read once. */
struct example {
	char	file[160], corpus[200], lang[8];
	int	eu, ec, em;		/* labels */
	int	in_test;
	int	fold;			/* cross-validation */
	struct classify_result model_r;	/* classify_message with the model */
	struct classify_result rules_r;	/* the rules alone */
	int	nf;
	uint32_t *feat;			/* indexes into the dictionary */
};

/* ------------------------------------------------------------------ */
/* Training                                                            */

struct dict {
	char	**name;
	int	 *df;			/* dev messages holding it */
	float	 *value;		/* triage_feature_value */
	size_t	  n, cap;
	uint64_t *slot;
	uint32_t *idx;
	size_t	  mask;
};

static uint64_t
hash64(const char *s)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h ? h : 1;
}

static uint32_t
dict_id(struct dict *d, const char *name)
{
	uint64_t h = hash64(name);
	size_t i;

	if (d->slot == NULL || 2 * (d->n + 1) > d->mask) {
		size_t nslots = d->slot ? 2 * (d->mask + 1) : 1 << 16;

		free(d->slot);
		free(d->idx);
		d->slot = xcalloc(nslots, sizeof(*d->slot));
		d->idx = xcalloc(nslots, sizeof(*d->idx));
		d->mask = nslots - 1;
		for (size_t f = 0; f < d->n; f++) {
			uint64_t hf = hash64(d->name[f]);

			for (i = hf & d->mask; d->slot[i]; i = (i + 1) & d->mask)
				;
			d->slot[i] = hf;
			d->idx[i] = (uint32_t)f;
		}
	}
	for (i = h & d->mask; d->slot[i]; i = (i + 1) & d->mask)
		if (d->slot[i] == h && strcmp(d->name[d->idx[i]], name) == 0)
			return d->idx[i];
	if (d->n == d->cap) {
		d->cap = d->cap ? 2 * d->cap : 4096;
		d->name = xrealloc(d->name, d->cap * sizeof(*d->name));
		d->df = xrealloc(d->df, d->cap * sizeof(*d->df));
		d->value = xrealloc(d->value, d->cap * sizeof(*d->value));
	}
	d->value[d->n] = (float)triage_feature_value(name);
	d->name[d->n] = xstrdup(name);
	d->df[d->n] = 0;
	d->slot[i] = h;
	d->idx[i] = (uint32_t)d->n;
	return (uint32_t)d->n++;
}

#define NW	(4 + NCAT)

struct weights {
	float	bias[NW];
	float  *w;			/* dict.n * NW */
};

struct train_opts {
	int	epochs;
	double	rate, l2, p1_weight;
	double	gate_u, gate_c;		/* written to the model: see triage_model.h */
	float	prune;			/* features whose weights all stay below */
	int	min_df;
};

static uint32_t rng_state;

static uint32_t
rng(void)
{
	rng_state = rng_state * 1103515245u + 12345u;
	return rng_state >> 8;
}

static void
scores(const struct weights *W, const struct dict *d, const struct example *x, const int *use,
    double *s)
{
	for (int k = 0; k < NW; k++)
		s[k] = W->bias[k];
	for (int i = 0; i < x->nf; i++) {
		uint32_t f = x->feat[i];

		if (f < d->n && use[f])
			for (int k = 0; k < NW; k++)
				s[k] += d->value[f] * W->w[(size_t)f * NW + k];
	}
}

static void
softmax(double *s, int n)
{
	double max = s[0], sum = 0;

	for (int k = 1; k < n; k++)
		if (s[k] > max)
			max = s[k];
	for (int k = 0; k < n; k++)
		sum += s[k] = exp(s[k] - max);
	for (int k = 0; k < n; k++)
		s[k] /= sum;
}

/* Trains on the examples for which pick(x) is true (human mail only). */
static void
train(struct weights *W, const struct dict *d, int *use, struct example **xs, size_t n,
    const struct train_opts *o)
{
	size_t *order = xmalloc((n ? n : 1) * sizeof(*order));
	int *df = xcalloc(d->n + 1, sizeof(*df));

	rng_state = 20261207u;
	for (size_t i = 0; i < n; i++)
		for (int j = 0; j < xs[i]->nf; j++)
			df[xs[i]->feat[j]]++;
	for (size_t f = 0; f < d->n; f++)
		use[f] = df[f] >= o->min_df;
	memset(W->bias, 0, sizeof(W->bias));
	W->w = xcalloc(d->n * NW + 1, sizeof(*W->w));
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	for (int ep = 0; ep < o->epochs; ep++) {
		double rate = o->rate / (1.0 + 0.1 * ep);

		for (size_t i = n; i > 1; i--) {
			size_t j = rng() % i, t = order[i - 1];

			order[i - 1] = order[j];
			order[j] = t;
		}
		for (size_t i = 0; i < n; i++) {
			const struct example *x = xs[order[i]];
			double s[NW], g[NW], a = x->eu == 0 ? o->p1_weight : 1.0;

			scores(W, d, x, use, s);
			softmax(s, 4);
			softmax(s + 4, NCAT);
			for (int k = 0; k < 4; k++)
				g[k] = a * (s[k] - (k == x->eu));
			for (int k = 0; k < NCAT; k++)
				g[4 + k] = s[4 + k] - (k == x->ec);
			for (int k = 0; k < NW; k++)
				W->bias[k] -= (float)(rate * g[k]);
			for (int j = 0; j < x->nf; j++) {
				uint32_t f = x->feat[j];

				if (!use[f])
					continue;
				for (int k = 0; k < NW; k++)
					W->w[(size_t)f * NW + k] -= (float)(rate * d->value[f] * g[k]);
			}
		}
		for (size_t f = 0; f < d->n * NW; f++)
			W->w[f] *= (float)(1.0 - rate * o->l2);
	}
	/* what barely moves any class is left out of the file: a smaller
	 * model, the same answers */
	for (size_t f = 0; f < d->n; f++) {
		float big = 0;

		for (int k = 0; k < NW; k++)
			if (fabsf(W->w[f * NW + k]) > big)
				big = fabsf(W->w[f * NW + k]);
		if (big < o->prune)
			use[f] = 0;
	}
	free(df);
	free(order);
}

static void
predict(const struct weights *W, const struct dict *d, const int *use, const struct example *x,
    const struct train_opts *o, struct classify_result *r)
{
	double s[NW];
	int bu = 0, bc = 0;

	*r = x->rules_r;
	if (r->auto_reason[0])
		return;
	scores(W, d, x, use, s);
	softmax(s, 4);
	softmax(s + 4, NCAT);
	for (int k = 1; k < 4; k++)
		if (s[k] > s[bu])
			bu = k;
	for (int k = 1; k < NCAT; k++)
		if (s[4 + k] > s[4 + bc])
			bc = k;
	/* as classify.c does: the model overrules the rules when sure */
	if (s[bu] >= o->gate_u)
		r->urgency = r->content_urgency = bu + 1;
	if (s[4 + bc] >= o->gate_c)
		snprintf(r->category, sizeof(r->category), "%s", categories[bc]);
	snprintf(r->reasons, sizeof(r->reasons), "(cross-validated model: P%d %.2f, %s %.2f)", bu + 1,
	    s[bu], categories[bc], s[4 + bc]);
}

static int
write_model(const char *path, const struct weights *W, const struct dict *d, const int *use,
    size_t ntrain, const struct train_opts *o)
{
	FILE *fp = fopen(path, "w");
	size_t kept = 0;

	if (fp == NULL) {
		fprintf(stderr, "eval: %s: cannot write\n", path);
		return -1;
	}
	fprintf(fp, "triage-model 1\n# Written by `make model` (tests/eval/eval.c --train) from the dev part\n"
	    "# of tests/eval (%zu messages from people); do not edit, retrain.\n"
	    "# Per feature: weights for P1 P2 P3 P4, then for each category.\ncategories", ntrain);
	for (int k = 0; k < NCAT; k++)
		fprintf(fp, " %s", categories[k]);
	fprintf(fp, "\ngate %.3g %.3g\nbias", o->gate_u, o->gate_c);
	for (int k = 0; k < NW; k++)
		fprintf(fp, " %.4g", W->bias[k]);
	fprintf(fp, "\n");
	for (size_t f = 0; f < d->n; f++) {
		float big = 0;

		if (!use[f])
			continue;
		for (int k = 0; k < NW; k++)
			if (fabsf(W->w[f * NW + k]) > big)
				big = fabsf(W->w[f * NW + k]);
		if (big < 0.001f)
			continue;
		fprintf(fp, "%s", d->name[f]);
		for (int k = 0; k < NW; k++)
			fprintf(fp, " %.2g", W->w[f * NW + k]);
		fprintf(fp, "\n");
		kept++;
	}
	fclose(fp);
	fprintf(stderr, "eval: %s: %zu features from %zu messages\n", path, kept, ntrain);
	return 0;
}

/* ------------------------------------------------------------------ */

static void
score_one(struct score *s, const struct example *x, const struct classify_result *r, int misses)
{
	int gu = r->urgency - 1, gc = cat_index(r->category), gm = r->auto_reason[0] != '\0';

	if (gu < 0 || gu > 3)
		gu = 2;
	s->n++;
	s->urg[x->eu][gu]++;
	s->urg_ok += x->eu == gu;
	count_lang(s, x->lang, x->eu == gu);
	count_corpus(s, x->corpus, x->eu == gu, x->eu == 0, x->eu == 0 && gu == 0);
	if (!x->em) {
		s->human++;
		s->cat_n++;
		s->cat[x->ec][gc]++;
		s->cat_ok += x->ec == gc;
	}
	s->p1_exp += x->eu == 0;
	s->p1_got += gu == 0;
	s->p1_hit += x->eu == 0 && gu == 0;
	s->mach_exp += x->em;
	s->mach_got += gm;
	s->mach_hit += x->em && gm;
	if (misses && !x->in_test && (x->eu != gu || (!x->em && x->ec != gc) || x->em != gm))
		printf("MISS %s/%s: label P%d %s%s, got %s %s%s | %s\n", x->corpus, x->file, x->eu + 1,
		    categories[x->ec], x->em ? " machine" : "", classify_urgency_name(r->urgency),
		    r->category, gm ? " machine" : "", r->reasons);
}

int
main(int argc, char **argv)
{
	struct classify_rules *rules;
	struct score dev, test;
	struct buf errors;
	int json = 0, misses = 0, argi = 2, rules_only = 0, cv = 0, list = 0, ret = 0;
	const char *part = "all", *train_out = NULL;
	struct example *xs = NULL;
	size_t nx = 0, capx = 0;
	struct dict dict = { 0 };
	/* gate_c: the model overrules the rules' category only when at least
	 * 60% sure, so that a whole-service outage the rules see plainly is not
	 * pulled to a mail-flow category by a weaker word ("receive") */
	struct train_opts opts = { .epochs = 30, .rate = 0.05, .l2 = 0.001, .p1_weight = 2,
		.min_df = 2, .prune = 0.05f, .gate_c = 0.6 };

	if (argc < 3) {
		fprintf(stderr, "usage: eval KEYWORDS_DIR [--json] [--misses] [--list] [--rules] [--part dev|test|all]\n"
		    "       [--train OUT] [--cv K] [--epochs N] [--rate R] [--l2 L] [--p1-weight A]\n"
		    "       [--gate P] [--gate-category P] [--prune W]\n"
		    "       CORPUS_DIR...\n");
		return 2;
	}
	buf_init(&errors, 64 * 1024);
	if ((rules = classify_rules_load(argv[1], &errors)) == NULL) {
		fprintf(stderr, "eval: %s\n", buf_str(&errors));
		return 2;
	}
	memset(&dev, 0, sizeof(dev));
	memset(&test, 0, sizeof(test));
	for (; argi < argc && argv[argi][0] == '-'; argi++) {
		const char *a = argv[argi], *v = argi + 1 < argc ? argv[argi + 1] : "0";

		if (strcmp(a, "--json") == 0)
			json = 1;
		else if (strcmp(a, "--misses") == 0)
			misses = 1;
		else if (strcmp(a, "--rules") == 0)
			rules_only = 1;
		else if (strcmp(a, "--list") == 0)
			list = 1;
		else if (strcmp(a, "--part") == 0 && ++argi)
			part = v;
		else if (strcmp(a, "--train") == 0 && ++argi)
			train_out = v;
		else if (strcmp(a, "--cv") == 0 && ++argi)
			cv = strcmp(v, "corpus") == 0 ? -1 : atoi(v);
		else if (strcmp(a, "--epochs") == 0 && ++argi)
			opts.epochs = atoi(v);
		else if (strcmp(a, "--rate") == 0 && ++argi)
			opts.rate = atof(v);
		else if (strcmp(a, "--l2") == 0 && ++argi)
			opts.l2 = atof(v);
		else if (strcmp(a, "--p1-weight") == 0 && ++argi)
			opts.p1_weight = atof(v);
		else if (strcmp(a, "--prune") == 0 && ++argi)
			opts.prune = (float)atof(v);
		else if (strcmp(a, "--gate") == 0 && ++argi)
			opts.gate_u = atof(v);
		else if (strcmp(a, "--gate-category") == 0 && ++argi)
			opts.gate_c = atof(v);
		else {
			fprintf(stderr, "eval: unknown option %s\n", a);
			return 2;
		}
	}
	for (; argi < argc; argi++) {
		char path[4096], line[2048];
		FILE *labels;

		snprintf(path, sizeof(path), "%s/labels.tsv", argv[argi]);
		if ((labels = fopen(path, "r")) == NULL) {
			fprintf(stderr, "eval: %s: cannot read\n", path);
			return 2;
		}
		if (fgets(line, sizeof(line), labels) == NULL) {	/* the header */
			fclose(labels);
			continue;
		}
		while (fgets(line, sizeof(line), labels) != NULL) {
			char *f[6] = { 0 }, *p = line, *data;
			size_t len;
			struct example *x;
			struct triage_feats *tf;

			line[strcspn(line, "\r\n")] = '\0';
			for (int nf = 0; nf < 6 && p != NULL; nf++) {
				f[nf] = p;
				if ((p = strchr(p, '\t')) != NULL)
					*p++ = '\0';
			}
			if (f[4] == NULL || f[2][0] != 'P')
				continue;
			snprintf(path, sizeof(path), "%s/%s", argv[argi], f[0]);
			if ((data = slurp(path, &len)) == NULL) {
				fprintf(stderr, "eval: %s: cannot read\n", path);
				continue;
			}
			if (nx == capx) {
				capx = capx ? 2 * capx : 512;
				xs = xrealloc(xs, capx * sizeof(*xs));
			}
			x = &xs[nx++];
			memset(x, 0, sizeof(*x));
			snprintf(x->file, sizeof(x->file), "%s", f[0]);
			snprintf(x->corpus, sizeof(x->corpus), "%s", argv[argi]);
			snprintf(x->lang, sizeof(x->lang), "%s", f[1]);
			x->in_test = is_test(f[0]);
			x->eu = f[2][1] - '1';
			if (x->eu < 0 || x->eu > 3)
				x->eu = 2;
			x->ec = cat_index(f[3]);
			x->em = strcmp(f[4], "yes") == 0;

			struct msg *m = msg_parse(data, len, MAX_SCAN);
			classify_message(rules, m, NULL, &x->model_r);
			classify_adjust(&x->model_r, "unknown", 0, 1);
			tf = xmalloc(sizeof(*tf));
			triage_feats_init(tf);
			classify_features(rules, m, NULL, &x->rules_r, tf);
			classify_adjust(&x->rules_r, "unknown", 0, 1);
			x->feat = xmalloc((tf->n + 1) * sizeof(*x->feat));
			for (size_t i = 0; i < tf->n; i++)
				x->feat[x->nf++] = dict_id(&dict, tf->text.data + tf->off[i]);
			triage_feats_free(tf);
			free(tf);
			msg_free(m);
			free(data);
		}
		fclose(labels);
	}

	/* the dev part's people: what the learned part may learn from */
	struct example **devx = xmalloc((nx + 1) * sizeof(*devx));
	size_t ndev = 0;
	int *use = xcalloc(dict.n + 1, sizeof(*use));

	for (size_t i = 0; i < nx; i++)
		if (!xs[i].in_test && !xs[i].rules_r.auto_reason[0])
			devx[ndev++] = &xs[i];
	if (train_out != NULL) {
		struct weights W;

		train(&W, &dict, use, devx, ndev, &opts);
		ret = write_model(train_out, &W, &dict, use, ndev, &opts) < 0 ? 1 : 0;
		free(W.w);
		goto done;
	}
	if (cv > 1 || cv == -1) {
		/* each dev message scored by a model that never saw it; "--cv
		 * corpus" leaves out one corpus at a time: how the model does on
		 * writers it never read */
		struct example **fold = xmalloc((ndev + 1) * sizeof(*fold));
		int nfolds = cv;

		if (cv == -1) {
			nfolds = 0;
			for (size_t i = 0; i < nx; i++) {
				size_t j;

				for (j = 0; j < i && strcmp(xs[j].corpus, xs[i].corpus) != 0; j++)
					;
				xs[i].fold = j == i ? nfolds++ : xs[j].fold;
			}
		} else
			for (size_t i = 0; i < ndev; i++)
				devx[i]->fold = (int)(i % (size_t)cv);
		for (int k = 0; k < nfolds; k++) {
			struct weights W;
			size_t nf = 0;

			for (size_t i = 0; i < ndev; i++)
				if (devx[i]->fold != k)
					fold[nf++] = devx[i];
			train(&W, &dict, use, fold, nf, &opts);
			for (size_t i = 0; i < nx; i++) {
				struct classify_result r;

				if (xs[i].in_test)
					continue;
				if (xs[i].rules_r.auto_reason[0]) {
					if (k == 0)
						score_one(&dev, &xs[i], &xs[i].rules_r, misses);
					continue;
				}
				if (xs[i].fold != k)
					continue;
				predict(&W, &dict, use, &xs[i], &opts, &r);
				score_one(&dev, &xs[i], &r, misses);
			}
			free(W.w);
		}
		free(fold);
		print_part("dev, cross-validated", &dev);
		goto done;
	}
	for (size_t i = 0; i < nx; i++) {
		const struct example *x = &xs[i];

		if ((strcmp(part, "dev") == 0 && x->in_test) || (strcmp(part, "test") == 0 && !x->in_test))
			continue;
		score_one(x->in_test ? &test : &dev, x, rules_only ? &x->rules_r : &x->model_r, misses);
		if (list) {
			const struct classify_result *r = rules_only ? &x->rules_r : &x->model_r;

			printf("%s/%s\t%s\t%s\t%s\n", x->corpus, x->file, classify_urgency_name(r->urgency),
			    r->category, r->auto_reason[0] ? "yes" : "no");
		}
	}
	if (list)
		goto done;
	if (json) {
		printf("{");
		print_json("dev", &dev, 0);
		print_json("test", &test, 1);
		printf("}\n");
	} else {
		if (strcmp(part, "test") != 0)
			print_part("dev", &dev);
		if (strcmp(part, "dev") != 0)
			print_part("test (scored, never tuned on)", &test);
	}
done:
	for (size_t i = 0; i < nx; i++)
		free(xs[i].feat);
	for (size_t f = 0; f < dict.n; f++)
		free(dict.name[f]);
	free(dict.name);
	free(dict.df);
	free(dict.value);
	free(dict.slot);
	free(dict.idx);
	free(devx);
	free(use);
	free(xs);
	classify_rules_free(rules);
	buf_free(&errors);
	return ret;
}
