#include "template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

#define TEMPLATE_MAX_FILE	(256 * 1024)
#define TEMPLATE_MAX_NAME	64
#define TEMPLATE_MAX_DEPTH	8

static int
line_of(const char *start, const char *p)
{
	int line = 1;

	for (; start < p; start++)
		if (*start == '\n')
			line++;
	return line;
}

/* Renders [p, end) — recursive for sections; emit = 0 parses without output
 * so that errors inside skipped sections are still found. */
static int
render_span(const char *base, const char *p, const char *end, template_lookup_fn lookup,
    void *arg, struct buf *out, int emit, int depth, const char **stop,
    const char *closing, char *err, size_t errlen)
{
	while (p < end) {
		const char *open = strstr(p, "{{");
		const char *close, *name;
		char key[TEMPLATE_MAX_NAME + 1];
		size_t len;
		char kind;

		if (open == NULL || open >= end)
			open = end;
		if (emit)
			buf_append(out, p, (size_t)(open - p));
		if (open == end)
			break;
		close = strstr(open + 2, "}}");
		if (close == NULL || close >= end) {
			snprintf(err, errlen, "line %d: \"{{\" is not closed by \"}}\"", line_of(base, open));
			return -1;
		}
		name = open + 2;
		kind = (*name == '#' || *name == '^' || *name == '/') ? *name++ : '=';
		while (*name == ' ')
			name++;
		len = (size_t)(close - name);
		while (len > 0 && name[len - 1] == ' ')
			len--;
		if (len == 0 || len > TEMPLATE_MAX_NAME) {
			snprintf(err, errlen, "line %d: empty or too long variable name", line_of(base, open));
			return -1;
		}
		memcpy(key, name, len);
		key[len] = '\0';
		p = close + 2;

		if (kind == '/') {
			if (closing == NULL || strcmp(closing, key) != 0) {
				snprintf(err, errlen, "line %d: {{/%s}} closes nothing open", line_of(base, open), key);
				return -1;
			}
			*stop = p;
			return 0;
		}
		const char *value = lookup(key, arg);
		if (value == NULL) {
			snprintf(err, errlen, "line %d: unknown variable {{%s}}", line_of(base, open), key);
			return -1;
		}
		if (kind == '=') {
			if (emit)
				buf_append_str(out, value);
			continue;
		}
		if (depth >= TEMPLATE_MAX_DEPTH) {
			snprintf(err, errlen, "line %d: sections nested too deeply", line_of(base, open));
			return -1;
		}
		int show = (kind == '#') == (value[0] != '\0');
		const char *after = NULL;
		if (render_span(base, p, end, lookup, arg, out, emit && show, depth + 1, &after,
		    key, err, errlen) != 0)
			return -1;
		if (after == NULL) {
			snprintf(err, errlen, "line %d: {{%c%s}} is not closed", line_of(base, open), kind, key);
			return -1;
		}
		p = after;
	}
	if (closing != NULL)
		*stop = NULL;
	return 0;
}

int
template_render(const char *text, template_lookup_fn lookup, void *arg,
    struct buf *out, char *err, size_t errlen)
{
	const char *stop = NULL;

	return render_span(text, text, text + strlen(text), lookup, arg, out, 1, 0, &stop,
	    NULL, err, errlen);
}

char *
template_read(const char *dir, const char *name)
{
	char path[1024];
	struct buf b;
	char chunk[4096];
	size_t n;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fp = fopen(path, "r")) == NULL)
		return NULL;
	buf_init(&b, TEMPLATE_MAX_FILE);
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		buf_append(&b, chunk, n);
	fclose(fp);
	if (b.truncated) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b);
}
