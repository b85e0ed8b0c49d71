/*
 * html_text - HTML mail body to plain text (see html_text.h).
 *
 * The tree walk is iterative (first child / next sibling / parent) so a
 * hostile document nested thousands of levels deep costs heap, not stack.
 * Output goes through a capped struct buf and the walk stops as soon as
 * the cap is reached, so the cost after parsing is bounded by max.
 *
 * libxml2's HTML parser checks each attribute of a start tag against every
 * one before it: a tag with n distinct attributes costs n^2/2 comparisons
 * (one tag of 30000 attributes in 256 KB: 0.9 s).  Attributes carry
 * nothing this file reads, so in a tag with more than HTML_MAX_ATTRS of
 * them the ones past that many are overwritten with blanks (same length,
 * same tokens otherwise), which bounds the comparisons per byte.  Other
 * documents go to libxml2 untouched.
 */
#include "html_text.h"

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/tree.h>

#include "buf.h"
#include "xalloc.h"

#ifndef HTML_MAX_ATTRS
#define HTML_MAX_ATTRS	64	/* attributes of one start tag left as written */
#endif
#define HTML_NAME_MAX	100	/* libxml2's HTML_PARSER_BUFFER_SIZE: a longer name is
				 * read as several */

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

/* ------------------------------------------------------------------ */
/* Start tags with many attributes                                     */

/*
 * To know which attributes make up which start tag, the document is
 * walked the way libxml2's HTML parser (HTMLparser.c, 2.9.14, in recovery
 * mode) splits it: comments, DOCTYPE (with its quoted literals),
 * processing instructions, end tags, start tags, and script and style
 * contents, which are text up to "</script" or "</style".  One thing it
 * decides from its element stack, which is not modelled here: whether an
 * end tag read in script or style contents that is not "</script>"
 * ("</scriptx>", or "</p>" right after "<script>") closes the element.  It
 * cannot when no element of that name was opened; otherwise both readings
 * are walked and tags are capped in either (HTML_FORKS times per document;
 * past that the document is cut there: the rest is not read, *truncated),
 * so that no reading hides a tag from the cap.
 */
#define HTML_FORKS	8

struct hscan {
	const unsigned char *s;
	size_t		n;
	unsigned char  *w;		/* the copy with attributes blanked, or NULL */
	int		forks;		/* readings still to fork */
	size_t		cut;		/* read the document up to here */
};

#define SEEN_BYTES	512		/* element names opened, as hash bits */

/* Character classes of libxml2's HTML tokenizer. */
static int
is_blank(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int
is_letter(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* htmlParseHTMLName(): the first character, then the others */
static int
is_name_start(unsigned char c)
{
	return is_letter(c) || c == '_' || c == ':' || c == '.';
}

static int
is_name_char(unsigned char c)
{
	return is_name_start(c) || (c >= '0' && c <= '9') || c == '-';
}

/* Where the next c at or after i is, or n. */
static size_t
skip_to(const struct hscan *h, size_t i, unsigned char c)
{
	const unsigned char *p = i < h->n ? memchr(h->s + i, c, h->n - i) : NULL;

	return p ? (size_t)(p - h->s) : h->n;
}

/* Just past the next c at or after i, or n. */
static size_t
past(const struct hscan *h, size_t i, unsigned char c)
{
	i = skip_to(h, i, c);
	return i < h->n ? i + 1 : h->n;
}

static size_t
skip_blanks(const struct hscan *h, size_t i)
{
	while (i < h->n && is_blank(h->s[i]))
		i++;
	return i;
}

/* Does s[i..n) start with lit (letters case-insensitively)? */
static int
starts_ci(const struct hscan *h, size_t i, const char *lit)
{
	for (; *lit; lit++, i++)
		if (i >= h->n || (h->s[i] | 0x20) != (*lit | 0x20))
			return 0;
	return 1;
}

/* htmlParseHTMLName() at i: at most HTML_NAME_MAX name characters,
 * lowercased into name (HTML_NAME_MAX + 1 bytes); returns where it ends
 * (i when there is no name).  dot: '.' is a name character (not in
 * htmlParseHTMLName_nonInvasive(), nor as its first). */
static size_t
html_name(const struct hscan *h, size_t i, char *name, int dot)
{
	size_t k = 0;

	name[0] = '\0';
	if (i >= h->n || !is_name_start(h->s[i]) || (!dot && h->s[i] == '.'))
		return i;
	for (; i < h->n && k < HTML_NAME_MAX && is_name_char(h->s[i]) &&
	    (dot || h->s[i] != '.'); i++)
		name[k++] = (char)(h->s[i] | (is_letter(h->s[i]) ? 0x20 : 0));
	name[k] = '\0';
	return i;
}

/* The code point at i (valid UTF-8: the caller cleaned it), *len its bytes. */
static unsigned
utf8_at(const struct hscan *h, size_t i, size_t *len)
{
	const unsigned char *p = h->s + i;
	size_t n = h->n - i;

	if (p[0] >= 0xf0 && n >= 4) {
		*len = 4;
		return (unsigned)(p[0] & 7) << 18 | (unsigned)(p[1] & 0x3f) << 12 |
		    (unsigned)(p[2] & 0x3f) << 6 | (p[3] & 0x3f);
	}
	if (p[0] >= 0xe0 && n >= 3) {
		*len = 3;
		return (unsigned)(p[0] & 0xf) << 12 | (unsigned)(p[1] & 0x3f) << 6 | (p[2] & 0x3f);
	}
	if (p[0] >= 0xc0 && n >= 2) {
		*len = 2;
		return (unsigned)(p[0] & 0x1f) << 6 | (p[1] & 0x3f);
	}
	*len = 1;
	return p[0];
}

/* htmlParseName() at i (DOCTYPE names, processing instruction targets):
 * returns where the name ends, i when there is none. */
static size_t
xml_name(const struct hscan *h, size_t i)
{
	size_t j = i, l;
	unsigned c;

	if (j < h->n && (is_letter(h->s[j]) || h->s[j] == '_' || h->s[j] == ':')) {
		for (j++; j < h->n && (is_name_char(h->s[j])); j++)
			;
		if (j == h->n)
			return i;	/* the ASCII shortcut takes a name at the very end for none */
		if (h->s[j] < 0x80)
			return j;
	}
	j = i;
	if (j >= h->n)
		return i;
	c = utf8_at(h, j, &l);
	if (c == ' ' || c == '>' || c == '/' || (!IS_LETTER(c) && c != '_' && c != ':'))
		return i;
	while (j < h->n) {
		c = utf8_at(h, j, &l);
		if (c == ' ' || c == '>' || c == '/' ||
		    !(IS_LETTER(c) || IS_DIGIT(c) || c == '.' || c == '-' || c == '_' ||
		    c == ':' || IS_COMBINING(c) || IS_EXTENDER(c)))
			break;
		j += l;
	}
	return j;
}

static unsigned
name_bit(const char *name)
{
	uint32_t x = 2166136261u;

	for (; *name; name++)
		x = (x ^ (unsigned char)*name) * 16777619u;
	return x % (8 * SEEN_BYTES);
}

/*
 * The attributes of the start tag whose name starts at i (after '<'), as
 * htmlParseStartTag() reads them: names of at most HTML_NAME_MAX
 * characters (the rest of a longer one is read as the next), a value after
 * '=' quoted or up to a blank or '>', anything else skipped up to a blank
 * (each such piece costs libxml2 an error report).  With h->w set, every
 * attribute or piece past the first HTML_MAX_ATTRS is overwritten with
 * blanks there.  Returns where the tag ends ('>', "/>" or n); *count gets
 * the number of attributes and pieces.
 */
static size_t
start_tag(const struct hscan *h, size_t i, size_t *count)
{
	const unsigned char *s = h->s;
	size_t n = h->n, k, at;

	*count = 0;
	for (k = 0; i < n && k < HTML_NAME_MAX && is_name_char(s[i]); k++)
		i++;
	i = skip_blanks(h, i);
	while (i < n && s[i] != '>' && !(s[i] == '/' && i + 1 < n && s[i + 1] == '>')) {
		at = i;
		if (is_name_start(s[i])) {
			for (k = 0; i < n && k < HTML_NAME_MAX && is_name_char(s[i]); k++)
				i++;
			i = skip_blanks(h, i);
			if (i < n && s[i] == '=') {
				i = skip_blanks(h, i + 1);
				if (i < n && (s[i] == '"' || s[i] == '\''))
					i = past(h, i + 1, s[i]);
				else
					while (i < n && !is_blank(s[i]) && s[i] != '>')
						i++;
			}
		} else
			while (i < n && !is_blank(s[i]) && s[i] != '>' &&
			    !(s[i] == '/' && i + 1 < n && s[i + 1] == '>'))
				i++;
		if (h->w != NULL && *count >= HTML_MAX_ATTRS)
			memset(h->w + at, ' ', i - at);
		(*count)++;
		i = skip_blanks(h, i);
	}
	return i;
}

/* htmlParseDocTypeDecl() from i ("<!DOCTYPE"): where it ends. */
static size_t
doctype(const struct hscan *h, size_t i)
{
	int literals = 0;

	i = skip_blanks(h, xml_name(h, skip_blanks(h, i + 9)));
	if (starts_ci(h, i, "system"))
		literals = 1;
	else if (starts_ci(h, i, "public"))
		literals = 2;
	if (literals > 0)
		i = skip_blanks(h, i + 6);
	while (literals-- > 0) {
		if (i < h->n && (h->s[i] == '"' || h->s[i] == '\''))
			i = past(h, i + 1, h->s[i]);
		i = skip_blanks(h, i);
	}
	return past(h, i, '>');
}

/* htmlParseComment() from i ("<!--"): ends with "-->" or "--!>". */
static size_t
comment(const struct hscan *h, size_t i)
{
	const unsigned char *s = h->s, *d;
	size_t p = i + 4;

	while (p + 2 < h->n && (d = memmem(s + p, h->n - p, "--", 2)) != NULL) {
		p = (size_t)(d - s);
		if (p + 2 < h->n && s[p + 2] == '>')
			return p + 3;
		if (p + 3 < h->n && s[p + 2] == '!' && s[p + 3] == '>')
			return p + 4;
		p++;
	}
	return h->n;
}

/*
 * The contents of script or style (name), from i, up to where markup is
 * read again; SIZE_MAX when that depends on the element stack (*at: the
 * end tag that decides, *after: just past it).  Like
 * htmlParseContentInternal() with currentNode script or style: an end tag
 * is read first, then "<noscript" (for script) or "<body", "<frameset"
 * (for style) closes the element, else the text runs to "</name", an end
 * tag to read next.
 */
static size_t
raw_text(const struct hscan *h, const unsigned char *seen, size_t i, const char *name,
    size_t *at, size_t *after)
{
	static const char *const always[] = { "html", "head", "body", "p" };	/* implied */
	char tag[HTML_NAME_MAX + 1];
	size_t j;

	for (;;) {
		if (i + 1 < h->n && h->s[i] == '<' && h->s[i + 1] == '/') {
			if ((j = html_name(h, i + 2, tag, 1)) == i + 2) {
				i += 2;
				continue;
			}
			if (strcmp(tag, name) == 0)
				return past(h, j, '>');
			*at = i;
			*after = past(h, j, '>');
			for (size_t k = 0; k < sizeof(always) / sizeof(always[0]); k++)
				if (strcmp(tag, always[k]) == 0)
					return SIZE_MAX;
			j = name_bit(tag);
			if (seen[j / 8] & (1u << (j % 8)))
				return SIZE_MAX;	/* it may close name, or not */
			i = *after;
			continue;
		}
		if (i + 1 < h->n && h->s[i] == '<' && html_name(h, i + 1, tag, 0) != i + 1 &&
		    (name[1] == 'c' ? strcmp(tag, "noscript") == 0 :
		    strcmp(tag, "body") == 0 || strcmp(tag, "frameset") == 0))
			return i;
		for (j = i; (j = skip_to(h, j, '<')) < h->n; j++)
			if (j + 1 < h->n && h->s[j + 1] == '/' && starts_ci(h, j + 2, name))
				break;
		if (j >= h->n)
			return h->n;
		i = j;
	}
}

/*
 * Walks the document from i to its end, in the contents of script or style
 * when raw names which: caps the start tags on the way, forks where the
 * reading depends on the element stack.  seen: the element names opened
 * before i (updated).
 */
static void
walk_tags(struct hscan *h, size_t i, unsigned char *seen, const char *raw)
{
	unsigned char seen2[SEEN_BYTES];
	char tag[HTML_NAME_MAX + 1];
	size_t n = h->n, end, count, j, at = 0, after = 0;

	if (raw != NULL)
		snprintf(tag, sizeof(tag), "%s", raw);
	for (;;) {
		if (raw != NULL) {
			if ((i = raw_text(h, seen, i, tag, &at, &after)) == SIZE_MAX) {
				if (h->forks == 0) {
					if (at < h->cut)
						h->cut = at;
					return;
				}
				h->forks--;
				memcpy(seen2, seen, SEEN_BYTES);
				walk_tags(h, after, seen2, tag);	/* still inside */
				i = after;				/* closed */
			}
			raw = NULL;
		}
		if ((i = skip_to(h, i, '<')) + 1 >= n)
			return;
		if (h->s[i + 1] == '/') {
			/* an end tag runs to '>'; "</" and no name is text */
			i = html_name(h, i + 2, tag, 1) != i + 2 ? past(h, i + 2, '>') : i + 2;
		} else if (h->s[i + 1] == '!' && i + 3 < n && h->s[i + 2] == '-' && h->s[i + 3] == '-') {
			i = comment(h, i);
		} else if (h->s[i + 1] == '!' && starts_ci(h, i + 2, "doctype")) {
			i = doctype(h, i);
		} else if (h->s[i + 1] == '?') {
			/* a processing instruction when a name follows */
			i = (j = xml_name(h, i + 2)) != i + 2 ? past(h, j, '>') : i + 2;
		} else if (is_letter(h->s[i + 1])) {
			html_name(h, i + 1, tag, 1);
			j = name_bit(tag);
			seen[j / 8] |= (unsigned char)(1u << (j % 8));
			end = start_tag(h, i + 1, &count);
			if (count > HTML_MAX_ATTRS) {
				if (h->w == NULL) {
					h->w = xmalloc(n + 1);
					memcpy(h->w, h->s, n);
					h->w[n] = '\0';
				}
				start_tag(h, i + 1, &count);	/* now blanking */
			}
			if (end >= n)
				return;
			i = h->s[end] == '/' ? end + 2 : end + 1;
			if (h->s[end] == '>' && (strcmp(tag, "script") == 0 || strcmp(tag, "style") == 0))
				raw = tag;
		} else
			i++;
	}
}

/*
 * Returns a copy of html[0..n) in which every start tag with more than
 * HTML_MAX_ATTRS attributes has the rest blanked, or NULL when no tag has
 * that many; *cut gets how much of the document to read (n, or less where
 * the walk ran out of forks).
 */
static char *
cap_attributes(const char *html, size_t n, size_t *cut)
{
	struct hscan h;
	unsigned char seen[SEEN_BYTES];

	memset(&h, 0, sizeof(h));
	memset(seen, 0, sizeof(seen));
	h.s = (const unsigned char *)html;
	h.n = h.cut = n;
	h.forks = HTML_FORKS;
	walk_tags(&h, 0, seen, NULL);
	*cut = h.cut;
	return (char *)h.w;
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
	size_t n, cut;
	char *out, *capped;

	pthread_once(&html_text_once, html_text_init);
	buf_init(&b, max);
	if (len > INT_MAX) {
		len = INT_MAX;
		*truncated = 1;
	}
	doc = NULL;
	capped = cap_attributes(html, len, &cut);
	if (cut < len) {
		len = cut;
		*truncated = 1;
	}
	if (len > 0)
		doc = htmlReadMemory(capped ? capped : html, (int)len, NULL, "UTF-8",
		    HTML_PARSE_RECOVER | HTML_PARSE_NOERROR |
		    HTML_PARSE_NOWARNING | HTML_PARSE_NONET);
	free(capped);
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
