/*
 * mailcmd - staff commands at the top of a mail (see mailcmd.h).
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "mailcmd.h"
#include "msg.h"

static const char *const names[] = {
	[MAILCMD_ASSIGN] = "assign", [MAILCMD_WAIT] = "wait", [MAILCMD_RESOLVE] = "resolve",
	[MAILCMD_REOPEN] = "reopen", [MAILCMD_URGENCY] = "urgency", [MAILCMD_NOTE] = "note",
	[MAILCMD_TIER] = "tier", [MAILCMD_BAD] = "?",
};

const char *
mailcmd_name(enum mailcmd_kind kind)
{
	return kind <= MAILCMD_BAD ? names[kind] : "?";
}

/* One line: [s, *le) without its line end; returns the start of the next. */
static const char *
next_line(const char *s, const char *end, const char **le)
{
	const char *nl = memchr(s, '\n', (size_t)(end - s));

	*le = nl ? nl : end;
	if (*le > s && (*le)[-1] == '\r')
		(*le)--;
	return nl ? nl + 1 : end;
}

static int
blank(const char *s, const char *e)
{
	for (; s < e; s++)
		if (*s != ' ' && *s != '\t' && (unsigned char)*s != 0xa0)
			return 0;
	return 1;
}

static const char *
skip_ws(const char *s, const char *e)
{
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	return s;
}

static void
trim_copy(char *out, size_t outsz, const char *s, const char *e)
{
	size_t n;

	s = skip_ws(s, e);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	n = (size_t)(e - s) < outsz - 1 ? (size_t)(e - s) : outsz - 1;
	memcpy(out, s, n);
	out[n] = '\0';
}

static void bad(struct mailcmd *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
bad(struct mailcmd *c, const char *fmt, ...)
{
	char tmp[sizeof(c->error)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	c->kind = MAILCMD_BAD;
	memcpy(c->error, tmp, sizeof(tmp));
}

/* "cause: TEXT; lesson: TEXT" in either order, each once. */
static void
parse_resolve(struct mailcmd *c, const char *s, const char *e)
{
	const char *p = skip_ws(s, e);

	if ((size_t)(e - p) >= 8 && strncasecmp(p, "incident", 8) == 0 &&
	    (p + 8 == e || p[8] == ' ' || p[8] == '\t')) {
		c->incident = 1;
		p = skip_ws(p + 8, e);
	}
	while (p < e) {
		const char *semi = memchr(p, ';', (size_t)(e - p)), *fe = semi ? semi : e;
		const char *colon = memchr(p, ':', (size_t)(fe - p));
		char key[16];

		if (colon == NULL) {
			bad(c, "#resolve wants \"cause: TEXT; lesson: TEXT\"");
			return;
		}
		trim_copy(key, sizeof(key), p, colon);
		if (strcasecmp(key, "cause") == 0)
			trim_copy(c->text, sizeof(c->text), colon + 1, fe);
		else if (strcasecmp(key, "lesson") == 0)
			trim_copy(c->lesson, sizeof(c->lesson), colon + 1, fe);
		else {
			bad(c, "#resolve knows cause: and lesson:, not \"%s:\"", key);
			return;
		}
		p = semi ? skip_ws(semi + 1, e) : e;
	}
	if (c->text[0] == '\0')
		bad(c, "resolve without a cause: write \"#resolve cause: TEXT; lesson: TEXT\"");
	else if (c->lesson[0] == '\0')
		bad(c, "resolve without a lesson: write \"#resolve cause: TEXT; lesson: TEXT\"");
}

static int
word_is(const char *w, size_t wl, const char *name)
{
	return strlen(name) == wl && strncasecmp(w, name, wl) == 0;
}

static void
parse_command(struct mailcmd *c, const char *s, const char *e)
{
	const char *w = s + 1, *we = w, *rest;
	size_t wl;
	char word[32];

	memset(c, 0, sizeof(*c));
	trim_copy(c->line, sizeof(c->line), s, e);
	while (we < e && (isalpha((unsigned char)*we) || *we == '-'))
		we++;
	wl = (size_t)(we - w);
	rest = skip_ws(we, e);
	trim_copy(word, sizeof(word), w, we);
	if (word_is(w, wl, "assign")) {
		c->kind = MAILCMD_ASSIGN;
		trim_copy(c->arg, sizeof(c->arg), rest, e);
		if (c->arg[0] == '\0')
			bad(c, "#assign wants an address or \"me\"");
		else if (strcasecmp(c->arg, "me") != 0 &&
		    (strchr(c->arg, '@') == NULL || strpbrk(c->arg, " \t<>\"") != NULL))
			bad(c, "#assign: \"%.100s\" is not a mail address (or \"me\")", c->arg);
	} else if (word_is(w, wl, "wait") || word_is(w, wl, "reopen")) {
		c->kind = word_is(w, wl, "wait") ? MAILCMD_WAIT : MAILCMD_REOPEN;
		if (rest < e)
			bad(c, "#%s takes nothing after it", c->kind == MAILCMD_WAIT ? "wait" : "reopen");
	} else if (word_is(w, wl, "resolve")) {
		c->kind = MAILCMD_RESOLVE;
		parse_resolve(c, rest, e);
	} else if (word_is(w, wl, "urgency")) {
		c->kind = MAILCMD_URGENCY;
		trim_copy(c->arg, sizeof(c->arg), rest, e);
		if ((c->arg[0] == 'P' || c->arg[0] == 'p') && c->arg[1] >= '1' && c->arg[1] <= '4' &&
		    c->arg[2] == '\0')
			c->urgency = c->arg[1] - '0';
		else
			bad(c, "#urgency wants P1, P2, P3 or P4, not \"%.100s\"", c->arg);
	} else if (word_is(w, wl, "note")) {
		c->kind = MAILCMD_NOTE;
		trim_copy(c->text, sizeof(c->text), rest, e);
		if (c->text[0] == '\0')
			bad(c, "#note wants the note after it");
	} else if (word_is(w, wl, "tier")) {
		c->kind = MAILCMD_TIER;
		trim_copy(c->arg, sizeof(c->arg), rest, e);
		for (const char *t = c->arg; *t; t++)
			if (!isalnum((unsigned char)*t) && *t != '-' && *t != '_') {
				bad(c, "#tier wants one word (trial, standard, ...), not \"%.60s\"", c->arg);
				break;
			}
		if (c->kind == MAILCMD_TIER && c->arg[0] == '\0')
			bad(c, "#tier wants a tier");
	} else
		bad(c, "unknown command #%.30s (assign, wait, resolve, reopen, urgency, note, tier)", word);
}

/* A line that starts what the staff member quoted or signed, not wrote. */
static int
quote_start(const char *s, const char *e, const char *next, const char *end)
{
	const char *le;

	s = skip_ws(s, e);
	if (s < e && *s == '>')
		return 1;
	if ((e - s == 2 && strncmp(s, "--", 2) == 0) || (e - s == 3 && strncmp(s, "-- ", 3) == 0))
		return 1;			/* signature */
	if (e - s >= 10 && strncmp(s, "-----", 5) == 0)
		return 1;			/* -----Original Message----- and the like */
	if (e > s && e[-1] == ':') {		/* "On Mon, Ann wrote:" before a quote */
		while (next < end) {
			const char *n2 = next_line(next, end, &le);

			if (!blank(next, le))
				return *skip_ws(next, le) == '>';
			next = n2;
		}
	}
	return 0;
}

size_t
mailcmd_parse(const char *text, size_t len, struct mailcmd_list *out)
{
	const char *p = text, *end = text + len, *le, *next;

	memset(out, 0, sizeof(*out));
	out->block_end = 0;
	while (p < end) {
		next = next_line(p, end, &le);
		if (blank(p, le)) {
			p = next;
			continue;
		}
		{
			const char *s = skip_ws(p, le);

			if (le - s < 2 || *s != '#' || !isalpha((unsigned char)s[1]))
				break;
			if (out->n < MAILCMD_MAX)
				parse_command(&out->v[out->n++], s, le);
			else
				out->dropped++;
		}
		p = next;
		out->block_end = (size_t)(p - text);
	}
	if (out->n == 0)
		return 0;
	/* Is there anything for the client after the block? */
	out->only_commands = 1;
	for (p = text + out->block_end; p < end; p = next) {
		next = next_line(p, end, &le);
		if (blank(p, le))
			continue;
		if (!quote_start(p, le, next, end))
			out->only_commands = 0;
		break;
	}
	return out->n;
}

/* ------------------------------------------------------------------ */
/* Taking the block out of the client's copy                           */

static int
tag_is(const char *name, size_t n, const char *const *list)
{
	for (; *list; list++)
		if (strlen(*list) == n && strncasecmp(name, *list, n) == 0)
			return 1;
	return 0;
}

/*
 * HTML: the text of the leading command lines goes, the tags stay (an
 * empty <p></p> is a blank line), so the markup stays well formed.  A
 * command's text runs to the next block-level tag: Outlook and Thunderbird
 * write each line as a <p>, a <div> or a <br>.
 */
static void
html_strip(const char *h, size_t n, struct buf *out)
{
	static const char *const blocks[] = { "p", "div", "br", "li", "tr", "td", "table",
		"h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "hr", "pre", "body", NULL };
	static const char *const skipped[] = { "head", "style", "script", "title", NULL };
	size_t i = 0;
	int in_cmd = 0;

	while (i < n) {
		if (h[i] == '<') {
			const char *gt = memchr(h + i, '>', n - i);
			size_t tend = gt ? (size_t)(gt - h) + 1 : n, nb = i + 1, ne;
			int closing = nb < n && h[nb] == '/';

			nb += closing;
			for (ne = nb; ne < tend && isalnum((unsigned char)h[ne]); ne++)
				;
			buf_append(out, h + i, tend - i);
			if (!closing && ne > nb && tag_is(h + nb, ne - nb, skipped)) {
				/* to its end tag, copied as it is */
				size_t j = tend;

				while (j + 2 + (ne - nb) <= n && !(h[j] == '<' && h[j + 1] == '/' &&
				    strncasecmp(h + j + 2, h + nb, ne - nb) == 0))
					j++;
				buf_append(out, h + tend, j - tend);
				tend = j;
			} else if (tag_is(h + nb, ne - nb, blocks))
				in_cmd = 0;
			i = tend;
			continue;
		}
		if (in_cmd) {
			i++;
			continue;
		}
		if (h[i] == ' ' || h[i] == '\t' || h[i] == '\r' || h[i] == '\n') {
			buf_append_char(out, h[i++]);
			continue;
		}
		if (n - i >= 6 && strncasecmp(h + i, "&nbsp;", 6) == 0) {
			buf_append(out, h + i, 6);
			i += 6;
			continue;
		}
		if (h[i] == '#' && i + 1 < n && isalpha((unsigned char)h[i + 1])) {
			in_cmd = 1;
			continue;
		}
		break;		/* the first words for the client: the rest stays */
	}
	if (i < n)
		buf_append(out, h + i, n - i);
}

/* Plain text: the block and the blank lines after it go. */
static void
plain_strip(const char *t, size_t n, struct buf *out)
{
	struct mailcmd_list *l = malloc(sizeof(*l));
	size_t at = 0;

	if (l != NULL && mailcmd_parse(t, n, l) > 0) {
		at = l->block_end;
		for (;;) {
			size_t j = at;

			while (j < n && (t[j] == ' ' || t[j] == '\t' || t[j] == '\r'))
				j++;
			if (j < n && t[j] == '\n')
				at = j + 1;
			else
				break;
		}
	}
	free(l);
	buf_append(out, t + at, n - at);
}

int
mailcmd_strip(const char *raw, size_t len, size_t body_offset, struct buf *body_out)
{
	struct msg_text_span sp[2], tmp;
	size_t at = body_offset;
	int changed = 0;

	msg_text_spans(raw, len, &sp[0], &sp[1]);
	if (sp[0].found && sp[1].found && sp[1].start < sp[0].start) {
		tmp = sp[0];
		sp[0] = sp[1];
		sp[1] = tmp;
	}
	for (int k = 0; k < 2; k++) {
		struct buf dec, out;

		if (!sp[k].found || sp[k].start < at || sp[k].end > len)
			continue;
		buf_init(&dec, len + 16);
		buf_init(&out, 2 * len + 1024);
		msg_cte_decode(sp[k].cte, raw + sp[k].start, sp[k].end - sp[k].start, &dec);
		if (sp[k].html)
			html_strip(buf_str(&dec), dec.len, &out);
		else
			plain_strip(buf_str(&dec), dec.len, &out);
		if (out.len != dec.len) {
			buf_append(body_out, raw + at, sp[k].start - at);
			msg_cte_encode(sp[k].cte, buf_str(&out), out.len, body_out);
			at = sp[k].end;
			changed = 1;
		}
		buf_free(&dec);
		buf_free(&out);
	}
	buf_append(body_out, raw + at, len - at);
	return changed;
}
