/*
 * test_triage_model - the learned part of triage (shared/triage_model.c):
 * that inflected forms become one feature, that the model file is read
 * strictly, and that the gate keeps an unsure model from overruling.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "triage_model.h"
#include "t.h"

static char dir[] = "/tmp/hg-test-triage.XXXXXX";

static int
has_feat(const struct triage_feats *tf, const char *name)
{
	for (size_t i = 0; i < tf->n; i++)
		if (strcmp(tf->text.data + tf->off[i], name) == 0)
			return 1;
	return 0;
}

static struct triage_feats *
feats_of(const char *text, const char *lang)
{
	struct triage_feats *tf = malloc(sizeof(*tf));

	triage_feats_init(tf);
	triage_feats_words(tf, text, strlen(text), lang);
	return tf;
}

static void
feats_done(struct triage_feats *tf)
{
	triage_feats_free(tf);
	free(tf);
}

static void
test_words(void)
{
	struct triage_feats *a, *b;

	/* Snowball: Russian case and number endings meet */
	a = feats_of("папки исчезли", "ru");
	b = feats_of("исчезла папка", "ru");
	T_CHECK(has_feat(a, "w:исчезл"));
	T_CHECK(has_feat(b, "w:исчезл"));
	T_CHECK(has_feat(a, "w:папк") && has_feat(b, "w:папк"));
	T_CHECK(has_feat(a, "b:папк_исчезл"));		/* a pair in order */
	feats_done(a);
	feats_done(b);

	/* Polish: no Snowball stemmer; diacritics off, the first five letters */
	a = feats_of("Nie mogę wysłać wiadomości", "pl");
	b = feats_of("nie moge wyslac wiadomosci", "pl");
	T_CHECK(has_feat(a, "w:wysla") && has_feat(b, "w:wysla"));
	T_CHECK(has_feat(a, "w:wiado") && has_feat(b, "w:wiado"));
	T_CHECK(has_feat(a, "w:nie"));
	feats_done(a);
	feats_done(b);

	/* Ukrainian: the same, and a short word loses its final vowel */
	a = feats_of("листи зникли", "uk");
	b = feats_of("лист зник", "uk");
	T_CHECK(has_feat(a, "w:лист") && has_feat(b, "w:лист"));
	T_CHECK(has_feat(a, "w:зникл"));
	feats_done(a);
	feats_done(b);

	/* German stemmed, then de-accented */
	a = feats_of("Die Ordner sind verschwunden", "de");
	T_CHECK(has_feat(a, "w:verschwund"));
	feats_done(a);

	/* a sentence ends a pair; each feature once */
	a = feats_of("urgent. urgent urgent", "en");
	T_CHECK(has_feat(a, "b:urgent_urgent"));	/* the second sentence has one */
	{
		int n = 0;

		for (size_t i = 0; i < a->n; i++)
			n += strcmp(a->text.data + a->off[i], "w:urgent") == 0;
		T_EQ_INT(n, 1);
	}
	feats_done(a);

	/* bounded: a huge text gives at most TRIAGE_MAX_WORDS words */
	{
		size_t len = 200000;
		char *big = malloc(len + 1);

		for (size_t i = 0; i < len; i++)
			big[i] = "abcdefgh "[i % 9];
		big[len] = '\0';
		a = feats_of(big, "en");
		/* the same word again and again: it, its pair, its 7 4-grams */
		T_CHECK(a->n <= 9);
		T_CHECK(has_feat(a, "c:^abc") && has_feat(a, "c:fgh$"));
		feats_done(a);
		{
			unsigned x = 12345;

			for (size_t i = 0; i < len; i++) {
				x = x * 1103515245u + 12345u;
				big[i] = (char)('a' + (x >> 16) % 26);
			}
		}
		for (size_t i = 8; i < len; i += 9)
			big[i] = ' ';
		a = feats_of(big, "en");
		{
			size_t words = 0;

			for (size_t i = 0; i < a->n; i++)
				words += strncmp(a->text.data + a->off[i], "w:", 2) == 0;
			T_CHECK(words > 100 && words <= TRIAGE_MAX_WORDS);
			T_CHECK(a->n <= TRIAGE_MAX_FEATS);
		}
		feats_done(a);
		free(big);
	}

	/* bytes that are not UTF-8 are separators, never read past the end */
	a = feats_of("\xd0\xbf\xff\xfe\xc3", "ru");
	T_CHECK(a->n <= 2);
	feats_done(a);
}

static const char *
write_file(const char *name, const char *content)
{
	static char path[512];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "w");
	fputs(content, fp);
	fclose(fp);
	return path;
}

static void
test_load(void)
{
	struct buf err;
	struct triage_model *tm;

	buf_init(&err, 4096);
	T_CHECK(triage_model_load(write_file("a", "bias 1 2 3 4\n"), &err) == NULL);
	T_CONTAINS(buf_str(&err), "triage-model 1");
	buf_reset(&err);
	T_CHECK(triage_model_load(write_file("b", "triage-model 1\nbias 1 2 3 4\n"), &err) == NULL);
	T_CONTAINS(buf_str(&err), "categories");
	buf_reset(&err);
	T_CHECK(triage_model_load(write_file("c",
	    "triage-model 1\ncategories x y\nbias 0 0 0 0 0 0\nw:a 1 2 3\n"), &err) == NULL);
	T_CONTAINS(buf_str(&err), ":4: bad feature weights");
	buf_reset(&err);
	T_CHECK(triage_model_load(write_file("d",
	    "triage-model 1\ncategories x y\nbias 0 0 0 0 0 nan\n"), &err) == NULL);
	T_CONTAINS(buf_str(&err), "bad bias");
	buf_reset(&err);
	T_CHECK(triage_model_load(write_file("e", "triage-model 1\ncategories x y\n"), &err) == NULL);
	T_CONTAINS(buf_str(&err), "incomplete");
	buf_reset(&err);
	T_CHECK(triage_model_load("/nonexistent/triage.model", &err) == NULL);
	T_CONTAINS(buf_str(&err), "/nonexistent/triage.model");
	buf_reset(&err);
	tm = triage_model_load(write_file("ok", "triage-model 1\n# comment\ncategories x y\n"
	    "gate 0.6 0\nbias 0 0 0.5 0 0 0\n\nw:gone 3 0 0 0 0 1\nr:u2 0 1 0 0 0 0\n"), &err);
	T_CHECK(tm != NULL);
	T_EQ_STR(buf_str(&err), "");
	if (tm != NULL) {
		struct triage_feats *tf = feats_of("nothing here", "en");
		struct triage_decision d;

		/* the bias alone: P3 at 0.5 against 0 0 0, not sure at 0.6 */
		triage_model_decide(tm, tf, &d);
		T_EQ_INT(d.urgency, 3);
		T_CHECK(!d.sure_urgency);
		T_EQ_STR(d.category, "x");
		T_CHECK(d.sure_category);
		feats_done(tf);

		tf = feats_of("all my mail is gone", "en");
		triage_model_decide(tm, tf, &d);
		T_EQ_INT(d.urgency, 1);
		T_CHECK(d.sure_urgency);
		T_CHECK(d.p_urgency[0] > 0.8);
		T_EQ_STR(d.category, "y");
		T_CONTAINS(d.why, "gone*");			/* named as a stem */
		triage_feats_add(tf, "r:u2", 4);
		triage_model_decide(tm, tf, &d);
		T_EQ_INT(d.urgency, 1);
		T_CONTAINS(d.why, "gone*");
		feats_done(tf);
		triage_model_free(tm);
	}
	triage_model_free(NULL);
	buf_free(&err);
}

int
main(void)
{
	if (mkdtemp(dir) == NULL)
		return 1;
	test_words();
	test_load();
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return t_done();
}
