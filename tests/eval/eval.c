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
 * only (for tests/integration/test_eval.sh).
 */
#include <ctype.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "classify.h"
#include "msg.h"

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

int
main(int argc, char **argv)
{
	struct classify_rules *rules;
	struct score dev, test;
	struct buf errors;
	int json = 0, misses = 0, argi = 2;
	const char *part = "all";

	if (argc < 3) {
		fprintf(stderr, "usage: eval KEYWORDS_DIR [--json] [--misses] [--part dev|test|all] CORPUS_DIR...\n");
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
		if (strcmp(argv[argi], "--json") == 0)
			json = 1;
		else if (strcmp(argv[argi], "--misses") == 0)
			misses = 1;
		else if (strcmp(argv[argi], "--part") == 0 && argi + 1 < argc)
			part = argv[++argi];
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
			int nf = 0, eu, gu, ec, gc, em, gm, in_test;
			size_t len;

			line[strcspn(line, "\r\n")] = '\0';
			while (nf < 6 && p != NULL) {
				f[nf++] = p;
				if ((p = strchr(p, '\t')) != NULL)
					*p++ = '\0';
			}
			if (nf < 5 || f[2][0] != 'P')
				continue;
			in_test = is_test(f[0]);
			if ((strcmp(part, "dev") == 0 && in_test) || (strcmp(part, "test") == 0 && !in_test))
				continue;
			snprintf(path, sizeof(path), "%s/%s", argv[argi], f[0]);
			if ((data = slurp(path, &len)) == NULL) {
				fprintf(stderr, "eval: %s: cannot read\n", path);
				continue;
			}
			struct msg *m = msg_parse(data, len, MAX_SCAN);
			struct classify_result r;
			classify_message(rules, m, NULL, &r);
			classify_adjust(&r, "unknown", 0, 1);

			struct score *s = in_test ? &test : &dev;
			eu = f[2][1] - '1';
			gu = r.urgency - 1;
			if (eu < 0 || eu > 3)
				eu = 2;
			em = strcmp(f[4], "yes") == 0;
			gm = r.auto_reason[0] != '\0';
			ec = cat_index(f[3]);
			gc = cat_index(r.category);
			s->n++;
			s->urg[eu][gu]++;
			s->urg_ok += eu == gu;
			count_lang(s, f[1], eu == gu);
			if (!em) {
				s->human++;
				s->cat_n++;
				s->cat[ec][gc]++;
				s->cat_ok += ec == gc;
			}
			s->p1_exp += eu == 0;
			s->p1_got += gu == 0;
			s->p1_hit += eu == 0 && gu == 0;
			s->mach_exp += em;
			s->mach_got += gm;
			s->mach_hit += em && gm;
			if (misses && !in_test && (eu != gu || (!em && ec != gc) || em != gm))
				printf("MISS %s/%s: label %s %s%s, got %s %s%s | %s\n", argv[argi], f[0], f[2], f[3],
				    em ? " machine" : "", classify_urgency_name(r.urgency), r.category,
				    gm ? " machine" : "", r.reasons);
			msg_free(m);
			free(data);
		}
		fclose(labels);
	}
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
	classify_rules_free(rules);
	buf_free(&errors);
	return 0;
}
