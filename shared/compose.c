#include "compose.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "clock.h"
#include "msg.h"
#include "seal.h"
#include "xalloc.h"

#define COMPOSE_MAX	(1024 * 1024)
#define QP_LINE		76

char *
compose_sanitize(const char *s)
{
	struct buf b;
	int space = 0;

	buf_init(&b, COMPOSE_MAX);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c == 0x7f) {
			space = 1;
			continue;
		}
		if (c == ' ') {
			space = 1;
			continue;
		}
		if (space && b.len > 0)
			buf_append_char(&b, ' ');
		space = 0;
		buf_append_char(&b, (char)c);
	}
	return buf_steal(&b);
}

static void
qp_flush_line(struct buf *b, const char *line, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t col = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		char enc[4];
		size_t n;
		int last = i + 1 == len;

		/* Trailing white space and anything not plain printable
		 * ASCII is encoded; so is a leading dot, which some relays
		 * mangle, and "From " at the start of a line. */
		if ((c == ' ' || c == '\t') && last) {
			enc[0] = '=', enc[1] = hex[c >> 4], enc[2] = hex[c & 15], n = 3;
		} else if (c == '=' || c > 126 || (c < 32 && c != '\t') ||
		    (col == 0 && c == '.') || (col == 0 && c == 'F' && strncmp(line + i, "From ", 5) == 0)) {
			enc[0] = '=', enc[1] = hex[c >> 4], enc[2] = hex[c & 15], n = 3;
		} else {
			enc[0] = (char)c, n = 1;
		}
		if (col + n > QP_LINE - 1 && !(last && col + n <= QP_LINE)) {
			buf_append(b, "=\r\n", 3);
			col = 0;
		}
		buf_append(b, enc, n);
		col += n;
	}
	buf_append(b, "\r\n", 2);
}

char *
compose_qp_encode(const char *text)
{
	struct buf b;
	const char *p = text;

	buf_init(&b, COMPOSE_MAX * 3);
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);

		if (len > 0 && p[len - 1] == '\r')
			qp_flush_line(&b, p, len - 1);
		else
			qp_flush_line(&b, p, len);
		p += len + (nl ? 1 : 0);
	}
	return buf_steal(&b);
}

static void
add_header(struct buf *b, struct buf *cover, const char *name, const char *value)
{
	char *clean = compose_sanitize(value);

	buf_printf(b, "%s: %s\r\n", name, clean);
	if (cover != NULL)
		seal_cover_add(cover, name, clean);
	free(clean);
}

/* Folds a list of <id> tokens so no line passes 78 characters. */
static void
add_id_list(struct buf *b, const char *name, const char *ids)
{
	char *clean = compose_sanitize(ids), *save = NULL, *tok;
	size_t col = strlen(name) + 1;

	buf_printf(b, "%s:", name);
	for (tok = strtok_r(clean, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		size_t len = strlen(tok) + 2;
		if (col + 1 + len > 78 && col > strlen(name) + 1) {
			buf_append(b, "\r\n", 2);
			col = 0;
		}
		buf_printf(b, " <%s>", tok);
		col += 1 + len;
	}
	buf_append(b, "\r\n", 2);
	free(clean);
}

/* msg_encode_header_value folds with "\n "; a message on the wire wants CRLF. */
static void
append_crlf(struct buf *b, const char *s)
{
	char prev = '\0';

	for (; *s; prev = *s++) {
		if (*s == '\n' && prev != '\r')
			buf_append(b, "\r\n", 2);
		else
			buf_append_char(b, *s);
	}
}

/* A bare addr-spec: everything up to the first character that cannot be in
 * one unquoted, so "a@b>\r\nBcc: x" becomes "a@b". */
static char *
compose_addr_spec(const char *addr)
{
	char *clean = compose_sanitize(addr), *p = clean;

	while (*p == '<' || *p == ' ')
		p++;
	memmove(clean, p, strlen(p) + 1);
	clean[strcspn(clean, " <>,;:\"()[]\\")] = '\0';
	return clean;
}

/* "Name <addr>", with Name encoded when needed, folded before "<addr>"
 * when the line would pass 78 characters. */
static void
add_address(struct buf *b, const char *header, const char *name, const char *addr)
{
	char *clean_addr = compose_addr_spec(addr);

	if (name != NULL && *name) {
		char *clean_name = compose_sanitize(name);
		int ascii = 1;
		for (const char *p = clean_name; *p; p++)
			if ((unsigned char)*p > 126 || strchr("\"\\()<>@,;:[]", *p))
				ascii = 0;
		int plain = 1;
		for (const char *p = clean_name; *p; p++)
			if ((unsigned char)*p > 126)
				plain = 0;
		if (ascii) {
			buf_printf(b, "%s: %s <%s>\r\n", header, clean_name, clean_addr);
		} else if (plain) {
			/* ASCII with specials ("Acme, Inc."): a quoted-string. */
			buf_printf(b, "%s: \"", header);
			for (const char *p = clean_name; *p; p++) {
				if (*p == '"' || *p == '\\')
					buf_append_char(b, '\\');
				buf_append_char(b, *p);
			}
			buf_printf(b, "\" <%s>\r\n", clean_addr);
		} else {
			char *enc = msg_encode_header_value(clean_name, strlen(header) + 2);
			const char *last_nl = strrchr(enc, '\n');
			size_t last = strlen(last_nl ? last_nl + 1 : enc) + (last_nl ? 0 : strlen(header) + 2);

			/* An encoded-word in a phrase must not contain some
			 * specials; the B encoding never does. */
			buf_printf(b, "%s: ", header);
			append_crlf(b, enc);
			buf_printf(b, "%s<%s>\r\n", last + 3 + strlen(clean_addr) > 78 ? "\r\n " : " ",
			    clean_addr);
			free(enc);
		}
		free(clean_name);
	} else {
		buf_printf(b, "%s: <%s>\r\n", header, clean_addr);
	}
	free(clean_addr);
}

/* A boundary no part can contain: its base64 and quoted-printable lines
 * never hold "=_" followed by "hg". */
static void
compose_boundary(char *out, size_t outlen, const char *message_id, const char *kind)
{
	unsigned long h = 5381;

	for (const char *p = message_id; *p; p++)
		h = h * 33 + (unsigned char)*p;
	snprintf(out, outlen, "=_hg-%s-%08lx", kind, h & 0xffffffffUL);
}

static void
compose_base64_lines(struct buf *b, const unsigned char *data, size_t len)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char line[80];
	size_t n = 0;

	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)data[i] << 16 | (i + 1 < len ? (unsigned)data[i + 1] << 8 : 0) |
		    (i + 2 < len ? data[i + 2] : 0);

		line[n++] = tab[v >> 18 & 63];
		line[n++] = tab[v >> 12 & 63];
		line[n++] = i + 1 < len ? tab[v >> 6 & 63] : '=';
		line[n++] = i + 2 < len ? tab[v & 63] : '=';
		if (n == 76 || i + 3 >= len) {
			buf_append(b, line, n);
			buf_append(b, "\r\n", 2);
			n = 0;
		}
	}
}

/* multipart/alternative: the text, then the HTML (in multipart/related
 * with its images when there are any); quoted-printable text, base64
 * images. */
static void
compose_alternative(struct buf *b, const struct compose *c)
{
	char alt[64], rel[64];
	char *text = compose_qp_encode(c->body ? c->body : "");
	char *html = compose_qp_encode(c->html);

	compose_boundary(alt, sizeof(alt), c->message_id, "alt");
	compose_boundary(rel, sizeof(rel), c->message_id, "rel");
	buf_printf(b, "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n"
	    "This is a MIME message: a plain text and an HTML version of the same.\r\n\r\n"
	    "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n", alt, alt);
	buf_append_str(b, text);
	buf_printf(b, "\r\n--%s\r\n", alt);
	if (c->inline_count > 0)
		buf_printf(b, "Content-Type: multipart/related; boundary=\"%s\"; type=\"text/html\"\r\n\r\n"
		    "--%s\r\n", rel, rel);
	buf_append_str(b, "Content-Type: text/html; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
	buf_append_str(b, html);
	for (size_t i = 0; i < c->inline_count; i++) {
		const struct compose_inline *im = &c->inlines[i];

		buf_printf(b, "\r\n--%s\r\nContent-Type: %s; name=\"%s\"\r\n"
		    "Content-Transfer-Encoding: base64\r\nContent-ID: <%s>\r\n"
		    "Content-Disposition: inline; filename=\"%s\"\r\n\r\n", rel, im->type, im->name,
		    im->content_id, im->name);
		compose_base64_lines(b, im->data, im->len);
	}
	if (c->inline_count > 0)
		buf_printf(b, "\r\n--%s--\r\n", rel);
	buf_printf(b, "\r\n--%s--\r\n", alt);
	free(text);
	free(html);
}

char *
compose_message(const struct compose *c)
{
	struct buf b, cover;	/* cover: what the seal vouches for (seal.h) */
	char date[64];
	char *subject, *body;

	buf_init(&b, COMPOSE_MAX * 4);
	buf_init(&cover, SEAL_COVER_MAX);
	clock_format_rfc5322(c->date, date, sizeof(date));
	add_address(&b, "From", c->from_name, c->from_address);
	add_address(&b, "To", NULL, c->to_address);
	subject = compose_sanitize(c->subject ? c->subject : "");
	char *enc = msg_encode_header_value(subject, sizeof("Subject: ") - 1);
	buf_append_str(&b, "Subject: ");
	append_crlf(&b, enc);
	buf_append(&b, "\r\n", 2);
	seal_cover_add(&cover, "Subject", enc);
	free(enc);
	free(subject);
	add_header(&b, &cover, "Date", date);
	buf_printf(&b, "Message-ID: <%s>\r\n", c->message_id);
	if (c->in_reply_to && *c->in_reply_to)
		add_id_list(&b, "In-Reply-To", c->in_reply_to);
	if (c->references && *c->references)
		add_id_list(&b, "References", c->references);
	for (size_t i = 0; i < c->extra_count; i++)
		add_header(&b, &cover, c->extra[i].name, c->extra[i].value);
	if (c->seal_key != NULL) {
		char seal[SEAL_VALUE_MAX];

		char *mac;

		seal_make(c->seal_key, c->message_id, c->case_id, &cover, c->date, seal, sizeof(seal));
		/* folded before the MAC, so that no line passes 78 characters */
		if ((mac = strstr(seal, " s=")) != NULL) {
			*mac = '\0';
			buf_printf(&b, "X-Helpgate-Seal: %s\r\n %s\r\n", seal, mac + 1);
		} else {
			add_header(&b, NULL, "X-Helpgate-Seal", seal);
		}
	}
	buf_free(&cover);
	if (c->html != NULL) {
		compose_alternative(&b, c);
		return buf_steal(&b);
	}
	buf_append_str(&b, "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
	body = compose_qp_encode(c->body ? c->body : "");
	buf_append_str(&b, body);
	free(body);
	return buf_steal(&b);
}
