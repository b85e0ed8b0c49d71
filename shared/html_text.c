/*
 * html_text - HTML mail body to plain text (see html_text.h).
 *
 * The tree walk is iterative (first child / next sibling / parent) so a
 * hostile document nested thousands of levels deep costs heap, not stack.
 * Output goes through a capped struct buf and the walk stops as soon as
 * the cap is reached, so the cost after parsing is bounded by max.
 */
#include "html_text.h"

#include <limits.h>
#include <pthread.h>
#include <string.h>

#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "buf.h"
#include "xalloc.h"

enum tag_kind {
	TAG_INLINE,	/* text flows through */
	TAG_SKIP,	/* contents are not text a person reads */
	TAG_BLOCK,	/* starts and ends a line */
	TAG_PARA,	/* starts and ends a paragraph (blank line) */
	TAG_BR,
	TAG_CELL,
	TAG_ROW,
	TAG_QUOTE,
	TAG_PRE
};

#define TAG(name, kind) { name, sizeof(name) - 1, kind }

static const struct {
	const char	*name;
	size_t		 len;
	enum tag_kind	 kind;
} tags[] = {
	TAG("script", TAG_SKIP), TAG("style", TAG_SKIP), TAG("head", TAG_SKIP),
	TAG("title", TAG_SKIP), TAG("template", TAG_SKIP),
	TAG("noscript", TAG_SKIP), TAG("iframe", TAG_SKIP),
	TAG("object", TAG_SKIP), TAG("svg", TAG_SKIP), TAG("xml", TAG_SKIP),
	TAG("select", TAG_SKIP), TAG("br", TAG_BR), TAG("td", TAG_CELL),
	TAG("th", TAG_CELL), TAG("tr", TAG_ROW), TAG("blockquote", TAG_QUOTE),
	TAG("pre", TAG_PRE), TAG("p", TAG_PARA), TAG("h1", TAG_PARA),
	TAG("h2", TAG_PARA), TAG("h3", TAG_PARA), TAG("h4", TAG_PARA),
	TAG("h5", TAG_PARA), TAG("h6", TAG_PARA), TAG("hr", TAG_PARA),
	TAG("div", TAG_BLOCK), TAG("li", TAG_BLOCK), TAG("table", TAG_BLOCK),
	TAG("ul", TAG_BLOCK), TAG("ol", TAG_BLOCK), TAG("dl", TAG_BLOCK),
	TAG("dt", TAG_BLOCK), TAG("dd", TAG_BLOCK), TAG("center", TAG_BLOCK),
	TAG("form", TAG_BLOCK), TAG("address", TAG_BLOCK),
	TAG("section", TAG_BLOCK), TAG("article", TAG_BLOCK),
	TAG("header", TAG_BLOCK), TAG("footer", TAG_BLOCK), TAG("nav", TAG_BLOCK),
	TAG("aside", TAG_BLOCK), TAG("main", TAG_BLOCK),
	TAG("fieldset", TAG_BLOCK), TAG("figure", TAG_BLOCK),
	TAG("caption", TAG_BLOCK), TAG("body", TAG_BLOCK), TAG("html", TAG_BLOCK),
};
#undef TAG

/* The libxml2 HTML parser lowercases element names.  Called twice per
 * element, so the length and first letter are checked before memcmp. */
static enum tag_kind
tag_kind(const xmlChar *uname)
{
	const char *name = (const char *)uname;
	size_t i, len;

	if (name == NULL || (len = strlen(name)) > 10)
		return TAG_INLINE;
	for (i = 0; i < sizeof(tags) / sizeof(tags[0]); i++)
		if (tags[i].len == len && tags[i].name[0] == name[0] &&
		    memcmp(name, tags[i].name, len) == 0)
			return tags[i].kind;
	return TAG_INLINE;
}

struct emit {
	struct buf	*b;
	int		 nl;	/* newlines ending the output; -1 before any text */
	int		 space;	/* a collapsed white space run is pending */
	int		 quote;	/* <blockquote> depth */
	int		 pre;	/* <pre> depth */
	int		 cells;	/* cells so far on this table row */
};

/* Ends the current line; want = 2 leaves a blank line.  Never at the start
 * of the text and never more than one blank line in a row. */
static void
em_break(struct emit *e, int want)
{
	e->space = 0;
	if (e->nl < 0)
		return;
	while (e->nl < want) {
		buf_append_char(e->b, '\n');
		e->nl++;
	}
}

/* Called before the first byte of text on a line. */
static void
em_line_start(struct emit *e)
{
	int i;

	for (i = 0; i < e->quote && i < 8; i++)
		buf_append(e->b, "> ", 2);
	e->nl = 0;
}

static int
is_space_at(const unsigned char *s, size_t n, size_t i, size_t *len)
{
	switch (s[i]) {
	case ' ': case '\t': case '\n': case '\r': case '\f': case '\v':
		*len = 1;
		return 1;
	case 0xc2:		/* U+00A0 NO-BREAK SPACE (&nbsp;) */
		if (i + 1 < n && s[i + 1] == 0xa0) {
			*len = 2;
			return 1;
		}
		return 0;
	default:
		return 0;
	}
}

static void
em_pre_text(struct emit *e, const unsigned char *s, size_t n)
{
	size_t i = 0, j;

	while (i < n) {
		if (s[i] == '\r') {
			i++;
			continue;
		}
		if (s[i] == '\n') {
			buf_append_char(e->b, '\n');
			e->nl = e->nl < 0 ? 1 : e->nl + 1;
			i++;
			continue;
		}
		for (j = i; j < n && s[j] != '\n' && s[j] != '\r'; j++)
			;
		if (e->nl != 0)
			em_line_start(e);
		buf_append(e->b, s + i, j - i);
		i = j;
	}
}

static void
em_text(struct emit *e, const unsigned char *s, size_t n)
{
	size_t i = 0, j, sl;

	if (e->pre) {
		em_pre_text(e, s, n);
		return;
	}
	while (i < n) {
		if (is_space_at(s, n, i, &sl)) {
			e->space = 1;
			i += sl;
			continue;
		}
		for (j = i; j < n && !is_space_at(s, n, j, &sl); j++)
			;
		if (e->nl != 0)
			em_line_start(e);
		else if (e->space)
			buf_append_char(e->b, ' ');
		e->space = 0;
		buf_append(e->b, s + i, j - i);
		i = j;
	}
}

static void
em_open(struct emit *e, enum tag_kind k)
{
	switch (k) {
	case TAG_BR:
		e->space = 0;
		if (e->nl >= 0 && e->nl < 2) {
			buf_append_char(e->b, '\n');
			e->nl++;
		}
		break;
	case TAG_BLOCK:
		em_break(e, 1);
		break;
	case TAG_PARA:
		em_break(e, 2);
		break;
	case TAG_ROW:
		em_break(e, 1);
		e->cells = 0;
		break;
	case TAG_CELL:
		if (e->cells++ > 0 && e->nl == 0) {
			buf_append_char(e->b, '\t');
			e->space = 0;
		}
		break;
	case TAG_QUOTE:
		em_break(e, 1);
		e->quote++;
		break;
	case TAG_PRE:
		em_break(e, 2);
		e->pre++;
		break;
	case TAG_INLINE:
	case TAG_SKIP:
		break;
	}
}

static void
em_close(struct emit *e, enum tag_kind k)
{
	switch (k) {
	case TAG_BLOCK:
	case TAG_ROW:
		em_break(e, 1);
		break;
	case TAG_PARA:
		em_break(e, 2);
		break;
	case TAG_QUOTE:
		em_break(e, 1);
		if (e->quote > 0)
			e->quote--;
		break;
	case TAG_PRE:
		em_break(e, 2);
		if (e->pre > 0)
			e->pre--;
		break;
	case TAG_BR:
	case TAG_CELL:
	case TAG_INLINE:
	case TAG_SKIP:
		break;
	}
}

/* Depth-first walk without recursion; stops once the output is full. */
static void
walk(struct emit *e, xmlNodePtr root)
{
	xmlNodePtr cur = root;
	enum tag_kind k;

	while (cur != NULL && !e->b->truncated) {
		if (cur->type == XML_ELEMENT_NODE) {
			k = tag_kind(cur->name);
			if (k != TAG_SKIP) {
				em_open(e, k);
				if (cur->children != NULL) {
					cur = cur->children;
					continue;
				}
			}
		} else if ((cur->type == XML_TEXT_NODE ||
		    cur->type == XML_CDATA_SECTION_NODE) && cur->content != NULL) {
			em_text(e, cur->content, strlen((const char *)cur->content));
		}
		/* Leave cur, then every ancestor whose children are done. */
		for (;;) {
			if (cur->type == XML_ELEMENT_NODE &&
			    (k = tag_kind(cur->name)) != TAG_SKIP)
				em_close(e, k);
			if (cur == root) {
				cur = NULL;
				break;
			}
			if (cur->next != NULL) {
				cur = cur->next;
				break;
			}
			cur = cur->parent;
			if (cur == NULL)
				break;
		}
	}
}

static pthread_once_t html_text_once = PTHREAD_ONCE_INIT;

static void
html_text_init(void)
{
	/* After this, libxml2 parsing is thread-safe. */
	xmlInitParser();
}

char *
html_text_extract(const char *html, size_t len, size_t max, size_t *outlen,
    int *truncated)
{
	struct buf b;
	struct emit e;
	htmlDocPtr doc;
	xmlNodePtr root;
	size_t n;
	char *out;

	pthread_once(&html_text_once, html_text_init);
	buf_init(&b, max);
	if (len > INT_MAX) {
		len = INT_MAX;
		*truncated = 1;
	}
	doc = NULL;
	if (len > 0)
		doc = htmlReadMemory(html, (int)len, NULL, "UTF-8",
		    HTML_PARSE_RECOVER | HTML_PARSE_NOERROR |
		    HTML_PARSE_NOWARNING | HTML_PARSE_NONET);
	if (doc != NULL) {
		root = xmlDocGetRootElement(doc);
		if (root != NULL) {
			memset(&e, 0, sizeof(e));
			e.b = &b;
			e.nl = -1;
			walk(&e, root);
		}
		xmlFreeDoc(doc);
	}
	/* Drop the line breaks the last block left behind. */
	while (b.len > 0 && b.data[b.len - 1] == '\n')
		b.data[--b.len] = '\0';
	if (b.truncated)
		*truncated = 1;
	n = b.len;
	out = buf_steal(&b);
	if (outlen != NULL)
		*outlen = n;
	return out;
}
