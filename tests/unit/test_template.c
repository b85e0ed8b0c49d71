/* Template rendering: variables, sections, and errors that name the line. */
#include "template.h"
#include "t.h"

static const char *
lookup(const char *name, void *arg)
{
	(void)arg;
	if (strcmp(name, "case") == 0) return "HG-42";
	if (strcmp(name, "empty") == 0) return "";
	if (strcmp(name, "name") == 0) return "Анна";
	return NULL;
}

static const char *
render(const char *text, char *err, size_t errlen)
{
	static struct buf out;

	buf_free(&out);
	buf_init(&out, 4096);
	err[0] = '\0';
	if (template_render(text, lookup, NULL, &out, err, errlen) != 0)
		return NULL;
	return buf_str(&out);
}

int
main(void)
{
	char err[200];

	T_EQ_STR(render("Case {{case}}, {{ name }}.", err, sizeof(err)), "Case HG-42, Анна.");
	T_EQ_STR(render("a{{#case}}[{{case}}]{{/case}}b", err, sizeof(err)), "a[HG-42]b");
	T_EQ_STR(render("a{{#empty}}hidden {{case}}{{/empty}}b", err, sizeof(err)), "ab");
	T_EQ_STR(render("a{{^empty}}shown{{/empty}}b", err, sizeof(err)), "ashownb");
	T_EQ_STR(render("{{#case}}{{#empty}}x{{/empty}}y{{/case}}", err, sizeof(err)), "y");
	T_EQ_STR(render("no variables at all", err, sizeof(err)), "no variables at all");
	T_CHECK(render("one\ntwo {{nonesuch}}", err, sizeof(err)) == NULL);
	T_CONTAINS(err, "line 2: unknown variable {{nonesuch}}");
	T_CHECK(render("{{#case}} never closed", err, sizeof(err)) == NULL);
	T_CONTAINS(err, "is not closed");
	T_CHECK(render("{{/case}}", err, sizeof(err)) == NULL);
	T_CONTAINS(err, "closes nothing");
	T_CHECK(render("{{case", err, sizeof(err)) == NULL);
	/* An error inside a hidden section is still an error. */
	T_CHECK(render("{{#empty}}{{typo}}{{/empty}}", err, sizeof(err)) == NULL);
	T_CONTAINS(err, "typo");
	return t_done();
}
