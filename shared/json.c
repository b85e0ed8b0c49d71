#include "json.h"

#include <stdio.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at p (at most `left` bytes), or 0 when
 * it is not one: overlong forms, surrogates and code points past U+10FFFF
 * are rejected as RFC 3629 requires.  *cp receives the code point. */
static size_t
json_utf8_seq(const unsigned char *p, size_t left, unsigned long *cp)
{
	size_t n;
	unsigned long c, min;

	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	} else if ((p[0] & 0xE0) == 0xC0) {
		n = 2; c = p[0] & 0x1F; min = 0x80;
	} else if ((p[0] & 0xF0) == 0xE0) {
		n = 3; c = p[0] & 0x0F; min = 0x800;
	} else if ((p[0] & 0xF8) == 0xF0) {
		n = 4; c = p[0] & 0x07; min = 0x10000;
	} else {
		return 0;
	}
	if (n > left)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (p[i] & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	*cp = c;
	return n;
}

void
json_string(struct buf *b, const char *utf8)
{
	const unsigned char *p = (const unsigned char *)utf8;
	size_t left = strlen(utf8), n;
	unsigned long cp;

	buf_append_char(b, '"');
	while (left > 0) {
		n = json_utf8_seq(p, left, &cp);
		if (n == 0) {
			buf_append_str(b, "\xEF\xBF\xBD");	/* U+FFFD */
			n = 1;
		} else if (cp == '"' || cp == '\\') {
			buf_append_char(b, '\\');
			buf_append_char(b, (char)cp);
		} else if (cp == '\n') {
			buf_append_str(b, "\\n");
		} else if (cp == '\r') {
			buf_append_str(b, "\\r");
		} else if (cp == '\t') {
			buf_append_str(b, "\\t");
		} else if (cp < 0x20 || (cp >= 0x7F && cp < 0xA0) || cp == 0x2028 || cp == 0x2029) {
			buf_printf(b, "\\u%04lx", cp);
		} else {
			buf_append(b, p, n);
		}
		p += n;
		left -= n;
	}
	buf_append_char(b, '"');
}

void
json_sep(struct buf *b)
{
	size_t i = b->len;
	char last;

	while (i > 0 && (b->data[i - 1] == ' ' || b->data[i - 1] == '\n' ||
	    b->data[i - 1] == '\t' || b->data[i - 1] == '\r'))
		i--;		/* indentation the caller added */
	if (i == 0)
		return;
	last = b->data[i - 1];
	if (last != '{' && last != '[' && last != ':' && last != ',')
		buf_append_char(b, ',');
}

void
json_key(struct buf *b, const char *name)
{
	json_sep(b);
	json_string(b, name);
	buf_append_char(b, ':');
}

void
json_object_begin(struct buf *b)
{
	json_sep(b);
	buf_append_char(b, '{');
}

void
json_object_end(struct buf *b)
{
	buf_append_char(b, '}');
}

void
json_array_begin(struct buf *b)
{
	json_sep(b);
	buf_append_char(b, '[');
}

void
json_array_end(struct buf *b)
{
	buf_append_char(b, ']');
}

void
json_kv_string(struct buf *b, const char *name, const char *utf8)
{
	json_key(b, name);
	json_string(b, utf8);
}

void
json_kv_int(struct buf *b, const char *name, long long v)
{
	json_key(b, name);
	buf_printf(b, "%lld", v);
}

void
json_kv_bool(struct buf *b, const char *name, int v)
{
	json_key(b, name);
	buf_append_str(b, v ? "true" : "false");
}

void
json_kv_null(struct buf *b, const char *name)
{
	json_key(b, name);
	buf_append_str(b, "null");
}
