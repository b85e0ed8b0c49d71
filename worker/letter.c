/*
 * letter - see letter.h.
 */
#include <stdio.h>

#include "letter.h"

void
letter_span(long long secs, char *out, size_t outlen)
{
	if (secs < 0)
		secs = -secs;
	if (secs < 60)
		snprintf(out, outlen, "<1m");
	else if (secs >= 86400)
		snprintf(out, outlen, "%lldd%02lldh", secs / 86400, secs % 86400 / 3600);
	else if (secs >= 3600)
		snprintf(out, outlen, "%lldh%02lldm", secs / 3600, secs % 3600 / 60);
	else
		snprintf(out, outlen, "%lldm", secs / 60);
}

void
letter_text_cell(struct buf *b, const char *s, size_t width)
{
	size_t chars = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p & 0xc0) != 0x80 && ++chars > width)
			break;
		buf_append_char(b, *p < 0x20 || *p == 0x7f ? ' ' : (char)*p);
	}
}

void
letter_html_escape(struct buf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': buf_append_str(b, "&amp;"); break;
		case '<': buf_append_str(b, "&lt;"); break;
		case '>': buf_append_str(b, "&gt;"); break;
		case '"': buf_append_str(b, "&quot;"); break;
		case '\'': buf_append_str(b, "&#39;"); break;
		default:
			buf_append_char(b, (unsigned char)*s < 0x20 ? ' ' : *s);
		}
	}
}
