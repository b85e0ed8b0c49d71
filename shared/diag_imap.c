/*
 * diag_imap - the IMAP settings probe (see diag.h for the contract).
 *
 * The dialogue a mail client has with its IMAP server, one recorded step
 * each: connect (or TLS at once), greeting, CAPABILITY, STARTTLS and
 * CAPABILITY again, LOGIN (or AUTHENTICATE PLAIN when LOGINDISABLED),
 * LIST to find the Sent folder, LOGOUT.  It shares the connection, TLS and
 * report code with diag_smtp.c (diag_int.h) and mirrors its verdicts.
 *
 * Responses: commands are tagged a1, a2, ...; untagged lines are read up
 * to the tagged one.  A line ending in a literal {n} continues after the n
 * bytes, which are inlined as a quoted string (the first LITERAL_KEPT
 * bytes; the rest is read and dropped), so a mailbox name sent as a
 * literal is seen like a quoted one.  Every line, literal and response has
 * a size cap; going past one is a protocol_error, never an unbounded read.
 *
 * A missing Sent folder is not a verdict (the list is fixed): the step
 * fails, the verdict stays as it is, r->sent_folder_found is 0 and the
 * advice says what to do.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <gnutls/gnutls.h>

#include "buf.h"
#include "diag.h"
#include "diag_int.h"
#include "xalloc.h"

#define LINE_KEPT	8192		/* one logical line kept for parsing */
#define LINE_READ_MAX	(256 * 1024)	/* bytes one logical line may take */
#define LITERAL_KEPT	1024		/* literal bytes inlined in the line */
#define LITERAL_MAX	(1024 * 1024)	/* a larger literal is not a reply to us */
#define RESP_LINES_MAX	20000		/* untagged lines answering one command */
#define FOLDER_KEPT	256		/* a mailbox name, decoded */

struct caps {
	int	starttls;
	int	logindisabled;
	int	auth_plain;
	int	sasl_ir;
	int	literal_plus;	/* LITERAL+, or LITERAL- (up to 4096 bytes: a
				 * password file holds at most 1023) */
	int	special_use;
	int	list_extended;
};

enum resp_kind { RESP_NONE, RESP_OK, RESP_NO, RESP_BAD };

struct resp {
	int		status;	/* 1 tagged reply, 2 continuation "+", 0 timeout,
				 * -1 closed/error, -2 garbage or too large */
	enum resp_kind	kind;
	struct buf	text;	/* the tagged line, or the last line read */
	struct buf	notes;	/* untagged BYE, NO, BAD and [ALERT] lines */
};

struct session;
typedef void (*untagged_fn)(struct session *s, const char *line, size_t len);

struct session {
	const struct diag_target *t;
	struct diag_report	*r;
	struct conn		 c;
	struct caps		 caps;
	struct buf		 caps_text;	/* the server's capability words */
	unsigned		 tag;
	int			 preauth;
	char			*enc;		/* AUTHENTICATE PLAIN's credentials, wiped at the end */
	/* LIST */
	size_t			 folders;
	int			 sent_by_use;	/* found through \Sent */
	char			 sent_wire[FOLDER_KEPT];	/* as the server sent it */
	char			 sent_name[FOLDER_KEPT];	/* decoded, UTF-8 */
};

/* ------------------------------------------------------------- reading */

/* Appends literal bytes inside a quoted string: '"' and '\' escaped, NUL
 * as '?' (the line stays a C string). */
static void
append_quoted_bytes(struct buf *line, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] == '"' || p[i] == '\\')
			buf_append_char(line, '\\');
		buf_append_char(line, p[i] ? p[i] : '?');
	}
}

/* If the physical line's end (tail, CR removed) is a literal "{n}" or
 * "{n+}", returns its length in *n and the marker's size; else 0. */
static size_t
literal_marker(const char *tail, size_t tlen, unsigned long *n)
{
	size_t i;
	char *end;

	if (tlen < 3 || tail[tlen - 1] != '}')
		return 0;
	i = tlen - 1;
	if (tail[i - 1] == '+' || tail[i - 1] == '-')
		i--;
	while (i > 0 && isdigit((unsigned char)tail[i - 1]))
		i--;
	if (i == 0 || tail[i - 1] != '{' || !isdigit((unsigned char)tail[i]))
		return 0;
	errno = 0;
	*n = strtoul(tail + i, &end, 10);
	if (errno || *n > LITERAL_MAX)
		*n = LITERAL_MAX + 1;
	return tlen - (i - 1);
}

/*
 * Reads one logical response line into line (buf with max LINE_KEPT; CRLF
 * removed, literals inlined as quoted strings, see the top).  Returns 1, 0
 * timeout, -1 closed/error (what was read so far stays in line), -2 line
 * or literal too large.
 */
static int
read_line(struct conn *c, struct buf *line, long long deadline)
{
	char tail[32];
	size_t tlen = 0, taken = 0, kept;

	buf_reset(line);
	for (;;) {
		char *nl = memchr(c->rbuf, '\n', c->rlen);
		size_t n = nl ? (size_t)(nl - c->rbuf) : c->rlen;
		unsigned long lit;
		size_t mlen;

		if (!nl && c->rlen < sizeof(c->rbuf)) {
			int f = dg_conn_fill(c, deadline);
			if (f <= 0) {
				buf_append(line, c->rbuf, c->rlen);
				c->rlen = 0;
				return f;
			}
			continue;
		}
		/* line content (a full read-ahead without a newline: part of a long line) */
		buf_append(line, c->rbuf, n);
		if (n >= sizeof(tail)) {
			memcpy(tail, c->rbuf + n - sizeof(tail), sizeof(tail));
			tlen = sizeof(tail);
		} else {
			if (tlen + n > sizeof(tail)) {
				size_t drop = tlen + n - sizeof(tail);
				memmove(tail, tail + drop, tlen - drop);
				tlen -= drop;
			}
			memcpy(tail + tlen, c->rbuf, n);
			tlen += n;
		}
		taken += n + (nl ? 1 : 0);
		c->rlen -= n + (nl ? 1 : 0);
		memmove(c->rbuf, c->rbuf + n + (nl ? 1 : 0), c->rlen);
		if (taken > LINE_READ_MAX)
			return -2;
		if (!nl)
			continue;
		if (tlen && tail[tlen - 1] == '\r')
			tlen--;
		if (line->len && line->data[line->len - 1] == '\r' && !line->truncated)
			line->data[--line->len] = '\0';
		if ((mlen = literal_marker(tail, tlen, &lit)) == 0)
			return 1;
		if (lit > LITERAL_MAX)
			return -2;
		if (!line->truncated && line->len >= mlen) {
			line->len -= mlen;
			line->data[line->len] = '\0';
		}
		buf_append_char(line, '"');
		kept = 0;
		while (lit > 0) {
			size_t k;
			if (c->rlen == 0) {
				int f = dg_conn_fill(c, deadline);
				if (f <= 0)
					return f;
			}
			k = c->rlen < lit ? c->rlen : lit;
			if (kept < LITERAL_KEPT) {
				size_t m = k < LITERAL_KEPT - kept ? k : LITERAL_KEPT - kept;
				append_quoted_bytes(line, c->rbuf, m);
				kept += m;
			}
			taken += k;
			lit -= k;
			c->rlen -= k;
			memmove(c->rbuf, c->rbuf + k, c->rlen);
			if (taken > LINE_READ_MAX)
				return -2;
		}
		buf_append_char(line, '"');
		tlen = 0;
	}
}

static void
resp_init(struct resp *rp)
{
	rp->status = -1;
	rp->kind = RESP_NONE;
	buf_init(&rp->text, LINE_KEPT);
	buf_init(&rp->notes, DIAG_DETAIL_MAX);
}

static void
resp_free(struct resp *rp)
{
	buf_free(&rp->text);
	buf_free(&rp->notes);
}

static int
word_is(const char *p, const char *w)
{
	size_t n = strlen(w);
	return !strncasecmp(p, w, n) && (p[n] == ' ' || p[n] == '\0' || p[n] == ']');
}

/* The capability words from "CAPABILITY w1 w2 ..." (up to ']' or the end). */
static void
caps_parse(struct session *s, const char *words, size_t len)
{
	const char *p = words, *end = words + len;
	struct caps *cp = &s->caps;

	memset(cp, 0, sizeof(*cp));
	buf_reset(&s->caps_text);
	buf_append(&s->caps_text, words, len);
	while (p < end) {
		size_t wl = 0;
		while (p + wl < end && p[wl] != ' ')
			wl++;
		if (wl == 8 && !strncasecmp(p, "STARTTLS", 8))
			cp->starttls = 1;
		else if (wl == 13 && !strncasecmp(p, "LOGINDISABLED", 13))
			cp->logindisabled = 1;
		else if (wl == 10 && !strncasecmp(p, "AUTH=PLAIN", 10))
			cp->auth_plain = 1;
		else if (wl == 7 && !strncasecmp(p, "SASL-IR", 7))
			cp->sasl_ir = 1;
		else if (wl == 8 && (!strncasecmp(p, "LITERAL+", 8) || !strncasecmp(p, "LITERAL-", 8)))
			cp->literal_plus = 1;
		else if (wl == 11 && !strncasecmp(p, "SPECIAL-USE", 11))
			cp->special_use = 1;
		else if (wl == 13 && !strncasecmp(p, "LIST-EXTENDED", 13))
			cp->list_extended = 1;
		p += wl;
		while (p < end && *p == ' ')
			p++;
	}
}

/* A "[CAPABILITY ...]" response code inside text: parses it, returns 1. */
static int
caps_from_code(struct session *s, const char *text)
{
	const char *p = strcasestr(text, "[CAPABILITY ");
	const char *end;

	if (!p)
		return 0;
	p += 12;
	end = strchr(p, ']');
	caps_parse(s, p, end ? (size_t)(end - p) : strlen(p));
	return 1;
}

/* "a12 OK ..." for tag 12 -> the kind; RESP_NONE if not that tag. */
static enum resp_kind
tagged_kind(const char *line, unsigned tag)
{
	char want[16];
	size_t wl = (size_t)snprintf(want, sizeof(want), "a%u ", tag);

	if (strncasecmp(line, want, wl) != 0)
		return RESP_NONE;
	line += wl;
	if (word_is(line, "OK"))
		return RESP_OK;
	if (word_is(line, "NO"))
		return RESP_NO;
	if (word_is(line, "BAD"))
		return RESP_BAD;
	return RESP_NONE;
}

/* A line any IMAP server may send: untagged, continuation, or tagged. */
static int
line_plausible(const char *line)
{
	const char *sp;

	if (line[0] == '*' || line[0] == '+')
		return 1;
	sp = strchr(line, ' ');
	if (!sp || sp == line)
		return 0;
	return word_is(sp + 1, "OK") || word_is(sp + 1, "NO") || word_is(sp + 1, "BAD");
}

/*
 * Reads the answer to tag s->tag: untagged lines go to fn (CAPABILITY ones
 * update s->caps first), then the tagged line.  With want_cont, a "+"
 * continuation ends the read (status 2).  rp must be resp_init'ed.
 */
static void
read_response(struct session *s, struct resp *rp, untagged_fn fn, int want_cont, long long deadline)
{
	size_t lines = 0;

	for (;;) {
		const char *l;
		int st = read_line(&s->c, &rp->text, deadline);

		if (st != 1) {
			rp->status = st;
			if (st == -1 && rp->text.len)
				rp->status = -2;	/* a partial line, then the end */
			return;
		}
		l = buf_str(&rp->text);
		if (!strncmp(l, "* ", 2)) {
			if (++lines > RESP_LINES_MAX) {
				rp->status = -2;
				return;
			}
			if (word_is(l + 2, "CAPABILITY"))
				caps_parse(s, rp->text.len > 13 ? l + 13 : l + rp->text.len,
				    rp->text.len > 13 ? rp->text.len - 13 : 0);
			else if (word_is(l + 2, "BYE") || word_is(l + 2, "NO") || word_is(l + 2, "BAD") ||
			    strstr(l, "[ALERT]")) {
				/* the server's reasons, e.g. before it hangs up */
				if (rp->notes.len)
					buf_append_char(&rp->notes, '\n');
				buf_append(&rp->notes, l, rp->text.len);
			}
			if (fn)
				fn(s, l, rp->text.len);
			continue;
		}
		if (l[0] == '+' && want_cont) {
			rp->status = 2;
			return;
		}
		if ((rp->kind = tagged_kind(l, s->tag)) != RESP_NONE) {
			rp->status = 1;
			return;
		}
		if (!line_plausible(l)) {
			rp->status = -2;
			return;
		}
		/* another tag's reply or a stray continuation: not ours */
	}
}

/* Starts command number ++s->tag: a fresh response, and the wire buffer
 * (of cap bytes) holding the tag "aN ". */
static void
begin_command(struct session *s, struct resp *rp, struct buf *wire, size_t cap)
{
	resp_init(rp);
	s->tag++;
	buf_init_secret(wire, cap);	/* may hold credentials */
	buf_printf(wire, "a%u ", s->tag);
}

/* Sends "aN line" (a new tag) and reads the answer. */
static void
command(struct session *s, const char *line, untagged_fn fn, struct resp *rp)
{
	long long d = dg_step_deadline(&s->c);
	struct buf wire;
	int w;

	/* one write: a command split over two segments waits for Nagle */
	begin_command(s, rp, &wire, 16384);
	buf_printf(&wire, "%s\r\n", line);
	w = wire.truncated ? -1 : dg_conn_write(&s->c, wire.data, wire.len, d);
	buf_free(&wire);	/* wiped: a secret buffer */
	if (w < 0) {
		rp->status = -1;
		return;
	}
	read_response(s, rp, fn, 0, d);
}

static const char *
resp_detail(const struct resp *rp)
{
	if (rp->notes.len && rp->status != 1)
		return buf_str(&rp->notes);
	if (rp->text.len)
		return buf_str(&rp->text);
	if (rp->status == -2)
		return "response too large";
	return rp->status == 0 ? "no reply (timed out)" : "connection closed";
}

/* ------------------------------------------------------------------ TLS */

/* a plain IMAP server talks first: "* OK ..." is never a TLS record */
static int
imap_looks_plain(const char *first, size_t len)
{
	return len >= 2 && first[0] == '*' && first[1] == ' ';
}

static const struct dg_tls_proto imap_tls = {
	imap_looks_plain,
	"This port speaks plain IMAP (with STARTTLS), not implicit TLS: set security to STARTTLS, or use port 993 for SSL/TLS.",
};

/* ----------------------------------------------------------------- steps */

/* CAPABILITY, unless a [CAPABILITY] code already told; label names the step. */
static enum diag_verdict
do_capability(struct session *s, const char *label, int known)
{
	struct resp rp;
	long long st = dg_now_ms();

	if (known) {
		size_t ll = strlen(label);
		/* "CAPABILITY (announced)", "CAPABILITY (after login, announced)" */
		if (ll && label[ll - 1] == ')')
			dg_step_add(s->r, 0, 1, buf_str(&s->caps_text), "%.*s, announced)", (int)(ll - 1), label);
		else
			dg_step_add(s->r, 0, 1, buf_str(&s->caps_text), "%s (announced)", label);
		return DIAG_OK;
	}
	buf_reset(&s->caps_text);
	command(s, "CAPABILITY", NULL, &rp);
	if (rp.status == 1 && rp.kind == RESP_OK && s->caps_text.len) {
		dg_step_add(s->r, st, 1, buf_str(&s->caps_text), "%s", label);
		resp_free(&rp);
		return DIAG_OK;
	}
	dg_step_add(s->r, st, 0, resp_detail(&rp), "%s", label);
	resp_free(&rp);
	return dg_finish(s->r, DIAG_PROTOCOL_ERROR,
	    "The server did not answer CAPABILITY: it does not behave as an IMAP server on this port.");
}

/* Known provider cases of a failed IMAP login, from the server's words. */
static const struct dg_hint imap_hints[] = {
	DG_HINT_APP_PASSWORD,
	{ { "IMAP access is disabled", "not enabled for IMAP", "IMAP is disabled", "IMAP disabled",
	    "IMAP access disabled", "IMAP use" }, "IMAP is disabled for the account" },
	DG_HINT_WEB_LOGIN,
	{ { "[UNAVAILABLE]" }, "the server's login service is temporarily unavailable" },
	{ { "[EXPIRED]" }, "the account's password has expired" },
	{ { "[AUTHENTICATIONFAILED]", "Invalid credentials", "Authentication failed" },
	    "user name or password wrong" },
	{ { NULL }, NULL }
};

static const char *
auth_failed_advice(const char *h)
{
	if (h && strstr(h, "application password"))
		return "Create an application password in the account's security settings and use it instead of the normal password.";
	if (h && strstr(h, "IMAP is disabled"))
		return "Enable IMAP access for the account (in the provider's webmail settings, or ask the account's administrator).";
	if (h && strstr(h, "web browser"))
		return "Log in once through the provider's webmail to clear its security check, then try again.";
	if (h && strstr(h, "temporarily"))
		return "The server could not check the login just now: try again later; if it persists, contact the provider.";
	if (h && strstr(h, "expired"))
		return "Change the account's password (usually through webmail) and use the new one.";
	return "The server refused the login: check the user name (often the full address) and the password.";
}

/* IMAP quoted strings carry printable ASCII only; anything else is a literal. */
static int
quotable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

static void
append_quoted(struct buf *b, const char *s)
{
	buf_append_char(b, '"');
	append_quoted_bytes(b, s, strlen(s));
	buf_append_char(b, '"');
}

/*
 * LOGIN user password, as quoted strings or, for other bytes, literals
 * (synchronising unless LITERAL+: each waits for the server's "+").
 */
static void
login_command(struct session *s, struct resp *rp)
{
	const char *args[2] = { s->t->user, s->t->password };
	long long d = dg_step_deadline(&s->c);
	struct buf wire;
	int i;

	begin_command(s, rp, &wire, 8192);
	buf_append_str(&wire, "LOGIN ");
	for (i = 0; i < 2; i++) {
		if (i)
			buf_append_char(&wire, ' ');
		if (quotable(args[i])) {
			append_quoted(&wire, args[i]);
			continue;
		}
		buf_printf(&wire, "{%zu%s}\r\n", strlen(args[i]), s->caps.literal_plus ? "+" : "");
		if (!s->caps.literal_plus) {
			if (wire.truncated || dg_conn_write(&s->c, wire.data, wire.len, d) < 0) {
				rp->status = -1;
				goto out;
			}
			buf_reset(&wire);	/* wiped */
			read_response(s, rp, NULL, 1, d);
			if (rp->status != 2)
				goto out;	/* the server's answer instead of "+" */
			buf_reset(&rp->text);
		}
		buf_append_str(&wire, args[i]);
	}
	buf_append_str(&wire, "\r\n");
	if (wire.truncated || dg_conn_write(&s->c, wire.data, wire.len, d) < 0) {
		rp->status = -1;
		goto out;
	}
	read_response(s, rp, NULL, 0, d);
out:
	buf_free(&wire);	/* wiped */
}

/* AUTHENTICATE PLAIN, with the initial response when SASL-IR is offered. */
static void
authenticate_command(struct session *s, struct resp *rp)
{
	const struct diag_target *t = s->t;
	size_t ul = strlen(t->user), pl = strlen(t->password);
	unsigned char *raw = xmalloc(ul + pl + 2);
	long long d = dg_step_deadline(&s->c);
	struct buf wire;
	char *enc;

	raw[0] = '\0';
	memcpy(raw + 1, t->user, ul);
	raw[ul + 1] = '\0';
	memcpy(raw + ul + 2, t->password, pl);
	enc = dg_b64(raw, ul + pl + 2);
	explicit_bzero(raw, ul + pl + 2);
	free(raw);
	dg_redact[2] = enc;

	begin_command(s, rp, &wire, 8192);
	buf_append_str(&wire, "AUTHENTICATE PLAIN");
	if (s->caps.sasl_ir) {
		/* appended, not formatted: no printf scratch copy of it */
		buf_append_char(&wire, ' ');
		buf_append_str(&wire, enc);
	}
	buf_append_str(&wire, "\r\n");
	if (wire.truncated || dg_conn_write(&s->c, wire.data, wire.len, d) < 0) {
		rp->status = -1;
		goto out;
	}
	read_response(s, rp, NULL, 1, d);
	if (rp->status == 2 && !s->caps.sasl_ir) {
		buf_reset(&wire);	/* wiped */
		buf_append_str(&wire, enc);
		buf_append_str(&wire, "\r\n");
		buf_reset(&rp->text);
		if (dg_conn_write(&s->c, wire.data, wire.len, d) < 0) {
			rp->status = -1;
			goto out;
		}
		read_response(s, rp, NULL, 1, d);
	}
	if (rp->status == 2) {
		/* a second challenge PLAIN does not have: cancel */
		buf_reset(&rp->text);
		if (dg_conn_write(&s->c, "*\r\n", 3, d) == 0)
			read_response(s, rp, NULL, 0, d);
		if (rp->status == 1 && rp->kind == RESP_OK)
			rp->kind = RESP_BAD;
	}
out:
	buf_free(&wire);	/* wiped */
	/* kept (and redacted) until the end of the probe: the server may echo it */
	s->enc = enc;
}

static enum diag_verdict
do_login(struct session *s)
{
	const struct diag_target *t = s->t;
	struct resp rp;
	long long st = dg_now_ms();
	const char *what = s->caps.logindisabled ? "AUTHENTICATE PLAIN" : "LOGIN";
	char *quoted_pw = NULL;
	enum diag_verdict v = DIAG_OK;

	if (!t->password) {
		dg_step_add(s->r, 0, 0, "no password given (a password file of mode 0600 is required)", "LOGIN");
		return dg_finish(s->r, DIAG_AUTH_FAILED, "Give the account's password in a file of mode 0600.");
	}
	if (s->caps.logindisabled && !s->caps.auth_plain) {
		dg_step_add(s->r, 0, 0, s->c.tls ?
		    "LOGINDISABLED and no AUTH=PLAIN: no login this probe speaks is offered" :
		    "LOGINDISABLED: the server refuses LOGIN without TLS", "LOGIN");
		return dg_finish(s->r, DIAG_AUTH_UNAVAILABLE, s->c.tls ?
		    "The server offers only login methods this probe does not speak (no LOGIN, no AUTHENTICATE PLAIN)." :
		    s->caps.starttls ?
		    "The server refuses to log in without encryption: set security to STARTTLS (port 143) or SSL/TLS (port 993)." :
		    "The server refuses to log in without encryption and offers no STARTTLS here: use SSL/TLS on port 993.");
	}
	/* the password travels only under TLS, or in clear when the client says so */
	if (!s->c.tls && t->security != DIAG_SEC_NONE) {
		dg_step_add(s->r, 0, 0, "TLS is not active: the password is not sent", "LOGIN");
		return dg_finish(s->r, DIAG_PROTOCOL_ERROR, NULL);
	}
	if (quotable(t->password) && strpbrk(t->password, "\"\\")) {
		struct buf q;
		buf_init_secret(&q, 4096);
		append_quoted_bytes(&q, t->password, strlen(t->password));
		quoted_pw = buf_steal(&q);
		dg_redact[1] = quoted_pw;
	}
	if (s->caps.logindisabled)
		authenticate_command(s, &rp);
	else
		login_command(s, &rp);
	if (rp.status == 1 && rp.kind == RESP_OK) {
		int known = caps_from_code(s, buf_str(&rp.text));
		dg_step_add(s->r, st, 1, buf_str(&rp.text), "%s as %s", what, t->user);
		resp_free(&rp);
		/* capabilities may grow after login (SPECIAL-USE, LIST-EXTENDED) */
		v = do_capability(s, "CAPABILITY (after login)", known);
	} else {
		const char *txt = buf_str(&rp.text);
		const char *h = dg_auth_hint(imap_hints, txt);

		if (!h)
			h = dg_auth_hint(imap_hints, buf_str(&rp.notes));

		dg_step_add(s->r, st, 0, resp_detail(&rp), "%s", what);
		if (rp.status == 1 && rp.kind == RESP_NO && strcasestr(txt, "[PRIVACYREQUIRED]"))
			v = dg_finish(s->r, DIAG_AUTH_UNAVAILABLE,
			    "The server refuses to log in without encryption: set security to STARTTLS (port 143) or SSL/TLS (port 993).");
		else if (rp.status == 1 && rp.kind == RESP_NO) {
			if (h)
				s->r->hint = xstrdup(h);
			v = dg_finish(s->r, DIAG_AUTH_FAILED, auth_failed_advice(h));
		} else if (rp.status == 1)
			v = dg_finish(s->r, DIAG_PROTOCOL_ERROR, "The server did not understand the login command.");
		else if (rp.notes.len && h) {
			s->r->hint = xstrdup(h);
			v = dg_finish(s->r, DIAG_AUTH_FAILED, auth_failed_advice(h));
		} else
			v = dg_finish(s->r, DIAG_PROTOCOL_ERROR, rp.status == 0 ?
			    "The server stopped answering after the login command." :
			    "The server answered the login in a way no mail client understands.");
		resp_free(&rp);
	}
	dg_redact[1] = NULL;
	dg_wipe_free(quoted_pw);
	return v;
}

/* ------------------------------------------------------------ Sent folder */

/* Names mail clients and providers give the Sent folder (last hierarchy
 * level, compared case-insensitively for ASCII). */
static const char *const sent_names[] = {
	"Sent", "Sent Items", "Sent Messages", "Sent Mail", "Sent-Mail", "Sent Objects",
	"Sent Email", "Gesendet", "Gesendete Objekte", "Gesendete Elemente",
	"Gesendete Nachrichten", "Envoyés", "Éléments envoyés", "Messages envoyés",
	"Enviados", "Elementos enviados", "Correo enviado", "Enviadas", "Itens Enviados",
	"Mensagens enviadas", "Inviata", "Inviati", "Posta inviata", "Elementi inviati",
	"Wysłane", "Elementy wysłane", "Отправленные", "Отправленные письма", "Надіслані",
	"Відправлені", "Надіслані елементи", "Verzonden", "Verzonden items",
	"Verzonden berichten", "Skickat", "Skickade", "Skickade objekt", "Sendt",
	"Sendte", "Sendte elementer", "Lähetetyt", "Lähetetyt viestit", "Odeslané",
	"Odeslaná pošta", "Odeslané položky", "Elküldött", "Elküldött elemek",
	"Gönderilmiş Öğeler", "Gönderilenler", "Απεσταλμένα", "送信済み",
	"送信済みアイテム", "已发送", "已傳送", "보낸 편지함",
};

static int
utf8_put(char *out, size_t outlen, size_t *o, unsigned long cp)
{
	unsigned char b[4];
	size_t n, i;

	/* a control character in a mailbox name is not shown to anyone */
	if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0) || cp > 0x10ffff)
		return -1;
	if (cp < 0x80) {
		b[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (unsigned char)(0xc0 | (cp >> 6));
		b[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (unsigned char)(0xe0 | (cp >> 12));
		b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (unsigned char)(0xf0 | (cp >> 18));
		b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	if (*o + n >= outlen)
		return -1;
	for (i = 0; i < n; i++)
		out[(*o)++] = (char)b[i];
	out[*o] = '\0';
	return 0;
}

/*
 * Modified UTF-7 (RFC 3501 5.1.3: "&" base64-with-comma of UTF-16 "-") to
 * UTF-8 in out (NUL-terminated).  -1 if malformed, too long, or it holds a
 * control character.
 */
static int
mutf7_decode(const char *in, char *out, size_t outlen)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";
	size_t o = 0;

	out[0] = '\0';
	while (*in) {
		unsigned long bits = 0, hi = 0;
		int nbits = 0;

		if (*in != '&') {
			if (utf8_put(out, outlen, &o, (unsigned char)*in) < 0 || (unsigned char)*in > 0x7e)
				return -1;
			in++;
			continue;
		}
		in++;
		if (*in == '-') {
			if (utf8_put(out, outlen, &o, '&') < 0)
				return -1;
			in++;
			continue;
		}
		while (*in && *in != '-') {
			const char *pos = strchr(b64, *in);
			if (!pos)
				return -1;
			bits = (bits << 6) | (unsigned long)(pos - b64);
			nbits += 6;
			if (nbits >= 16) {
				unsigned long u = (bits >> (nbits - 16)) & 0xffff;
				nbits -= 16;
				bits &= (1UL << nbits) - 1;
				if (hi) {
					if (u < 0xdc00 || u > 0xdfff)
						return -1;
					if (utf8_put(out, outlen, &o, 0x10000 + ((hi - 0xd800) << 10) + (u - 0xdc00)) < 0)
						return -1;
					hi = 0;
				} else if (u >= 0xd800 && u <= 0xdbff)
					hi = u;
				else if ((u >= 0xdc00 && u <= 0xdfff) || utf8_put(out, outlen, &o, u) < 0)
					return -1;
			}
			in++;
		}
		if (*in != '-' || hi)
			return -1;
		in++;
	}
	return 0;
}

/* 1 if s is UTF-8 without control characters (the shape json/text accept). */
static int
utf8_clean(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		size_t n, i;
		if (*p < 0x20 || *p == 0x7f)
			return 0;
		n = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : (*p & 0xf8) == 0xf0 ? 4 : 0;
		if (n == 0 || (n == 2 && *p < 0xc2))
			return 0;
		for (i = 1; i < n; i++)
			if ((p[i] & 0xc0) != 0x80)
				return 0;
		p += n;
	}
	return 1;
}

/* An astring at *p: "quoted" (escapes undone) or an atom up to a space;
 * copied to out, cut at outlen - 1.  -1 if there is none. */
static int
parse_astring(const char **pp, char *out, size_t outlen)
{
	const char *p = *pp;
	size_t o = 0;

	if (*p == '"') {
		for (p++; *p && *p != '"'; p++) {
			if (*p == '\\' && p[1])
				p++;
			if (o + 1 < outlen)
				out[o++] = *p;
		}
		if (*p != '"')
			return -1;
		p++;
	} else {
		for (; *p && *p != ' '; p++)
			if (o + 1 < outlen)
				out[o++] = *p;
		if (o == 0)
			return -1;
	}
	out[o] = '\0';
	*pp = p;
	return 0;
}

/* 1 if the attribute list (a b c, no parentheses) holds the flag. */
static int
has_attr(const char *attrs, size_t len, const char *flag)
{
	size_t fl = strlen(flag), i = 0;

	while (i < len) {
		size_t wl = 0;
		while (i + wl < len && attrs[i + wl] != ' ')
			wl++;
		if (wl == fl && !strncasecmp(attrs + i, flag, fl))
			return 1;
		i += wl + 1;
	}
	return 0;
}

static int
sent_name_match(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(sent_names) / sizeof(sent_names[0]); i++)
		if (!strcasecmp(name, sent_names[i]))
			return 1;
	return 0;
}

/* One untagged "* LIST (attributes) delimiter name" line: counts the
 * folder and remembers the Sent folder (\Sent first, then a known name). */
static void
on_list(struct session *s, const char *line, size_t len)
{
	const char *p = line + 2, *attrs, *attrs_end, *leaf;
	char delim = 0, wire[FOLDER_KEPT], name[FOLDER_KEPT];
	int by_use;

	(void)len;
	if (!word_is(p, "LIST"))
		return;
	p += 5;
	if (*p != '(' || !(attrs_end = strchr(p, ')')))
		return;
	attrs = p + 1;
	p = attrs_end + 1;
	if (*p++ != ' ')
		return;
	if (!strncasecmp(p, "NIL", 3))
		p += 3;
	else if (*p == '"') {
		p++;
		if (*p == '\\')
			p++;
		if (!*p)
			return;
		delim = *p++;
		if (*p++ != '"')
			return;
	} else
		return;
	if (*p++ != ' ' || parse_astring(&p, wire, sizeof(wire)) < 0)
		return;
	s->folders++;
	if (has_attr(attrs, (size_t)(attrs_end - attrs), "\\Noselect") ||
	    has_attr(attrs, (size_t)(attrs_end - attrs), "\\NonExistent"))
		return;
	by_use = has_attr(attrs, (size_t)(attrs_end - attrs), "\\Sent");
	if (s->sent_by_use || (s->sent_wire[0] && !by_use))
		return;
	if (mutf7_decode(wire, name, sizeof(name)) < 0) {
		/* UTF8=ACCEPT servers and sloppy ones send UTF-8 as it is */
		if (!utf8_clean(wire))
			return;
		snprintf(name, sizeof(name), "%s", wire);
	}
	leaf = delim ? strrchr(name, delim) : NULL;
	leaf = leaf ? leaf + 1 : name;
	if (by_use || sent_name_match(leaf)) {
		snprintf(s->sent_wire, sizeof(s->sent_wire), "%s", wire);
		snprintf(s->sent_name, sizeof(s->sent_name), "%s", name);
		s->sent_by_use = by_use;
	}
}

/* LIST all folders; records whether a Sent folder exists. */
static enum diag_verdict
do_list(struct session *s)
{
	struct resp rp;
	struct buf d;
	long long st = dg_now_ms();
	const char *cmd = s->caps.special_use && s->caps.list_extended ?
	    "LIST \"\" \"*\" RETURN (SPECIAL-USE)" : "LIST \"\" \"*\"";

	command(s, cmd, on_list, &rp);
	if (rp.status == 1 && rp.kind == RESP_BAD && strstr(cmd, "RETURN")) {
		/* advertised but not understood: the plain form */
		resp_free(&rp);
		s->folders = 0;
		cmd = "LIST \"\" \"*\"";
		command(s, cmd, on_list, &rp);
	}
	if (rp.status != 1 || rp.kind != RESP_OK) {
		dg_step_add(s->r, st, 0, resp_detail(&rp), "%s", cmd);
		resp_free(&rp);
		return dg_finish(s->r, DIAG_PROTOCOL_ERROR,
		    "The server refused to list the account's folders: a mail client cannot show the mailbox.");
	}
	dg_step_add(s->r, st, 1, buf_str(&rp.text), "%s", cmd);
	resp_free(&rp);

	buf_init(&d, DIAG_DETAIL_MAX);
	if (s->sent_wire[0]) {
		buf_printf(&d, "\"%s\"%s; %zu folders", s->sent_wire,
		    s->sent_by_use ? " (\\Sent)" : " (by name)", s->folders);
		s->r->sent_folder_found = 1;
		s->r->sent_folder = xstrdup(s->sent_name);
	} else {
		buf_printf(&d, "no folder marked \\Sent and none named Sent, Sent Items, Sent Messages ... "
		    "among %zu folders", s->folders);
		s->r->sent_folder_found = 0;
	}
	dg_step_add(s->r, 0, s->r->sent_folder_found, buf_str(&d), "Sent folder");
	buf_free(&d);
	return DIAG_OK;
}

static void
do_logout(struct session *s)
{
	struct resp rp;
	long long st = dg_now_ms();
	long saved = s->c.step_ms;

	s->c.step_ms = saved < 2000 ? saved : 2000;
	command(s, "LOGOUT", NULL, &rp);
	dg_step_add(s->r, st, rp.status == 1 && rp.kind == RESP_OK,
	    rp.notes.len && rp.status == 1 ? buf_str(&rp.notes) : resp_detail(&rp), "LOGOUT");
	s->c.step_ms = saved;
	resp_free(&rp);
}

/* What a greeting that is not "* OK" / "* PREAUTH" says about the port. */
static const char *
greeting_advice(const char *l)
{
	if (!strncmp(l, "* ", 2) && word_is(l + 2, "BYE"))
		return "The server refused the session at once (\"* BYE\"): it is overloaded or blocks this address; see its words.";
	if (isdigit((unsigned char)l[0]) && isdigit((unsigned char)l[1]) && isdigit((unsigned char)l[2]))
		return "This port speaks SMTP, not IMAP: IMAP uses port 143 (STARTTLS) or 993 (SSL/TLS).";
	if (!strncmp(l, "+OK", 3))
		return "This port speaks POP3, not IMAP: IMAP uses port 143 (STARTTLS) or 993 (SSL/TLS).";
	return "The server did not greet with \"* OK\": it is not an IMAP server, or another service answers on this port.";
}

static enum diag_verdict
imap_dialogue(struct session *s)
{
	const struct diag_target *t = s->t;
	struct buf greet;
	struct resp rp;
	long long st;
	enum diag_verdict v;
	int rs, known;
	const char *l;

	if (t->security == DIAG_SEC_TLS) {
		if ((v = dg_tls_step(&s->c, s->t, s->r, 1, &imap_tls)) != DIAG_OK)
			return v;
	}

	st = dg_now_ms();
	buf_init(&greet, LINE_KEPT);
	{
		/* keep a little time to find out whether the port speaks TLS */
		long long gd = dg_step_deadline(&s->c), total = s->c.deadline - st;
		long long reserve = total / 4 < 2000 ? total / 4 : 2000;

		if (t->security != DIAG_SEC_TLS && gd > s->c.deadline - reserve)
			gd = s->c.deadline - reserve;
		rs = read_line(&s->c, &greet, gd);
	}
	l = buf_str(&greet);
	if (rs == 0 && greet.len == 0) {
		dg_step_add(s->r, st, 0, "no greeting (timed out)", "greeting");
		buf_free(&greet);
		st = dg_now_ms();
		if (t->security != DIAG_SEC_TLS && st < s->c.deadline && dg_speaks_tls(&s->c, s->t)) {
			dg_step_add(s->r, st, 0, "the port answered a TLS ClientHello: it speaks implicit TLS",
			    "TLS probe");
			return dg_finish(s->r, DIAG_TLS_MODE_MISMATCH,
			    "This port expects implicit TLS (SSL/TLS, usually port 993): set security to SSL/TLS, or use port 143 with STARTTLS.");
		}
		return dg_finish(s->r, DIAG_GREETING_TIMEOUT,
		    "The server accepted the connection but never greeted: it is overloaded, filtered, or expects TLS on this port.");
	}
	if (rs != 1 || strncmp(l, "* ", 2) != 0 || !(word_is(l + 2, "OK") || word_is(l + 2, "PREAUTH"))) {
		dg_step_add(s->r, st, 0, greet.len ? l : rs == -2 ? "greeting too long" :
		    rs == 0 ? "no greeting (timed out)" : "connection closed", "greeting");
		v = dg_finish(s->r, DIAG_PROTOCOL_ERROR, greet.len ? greeting_advice(l) :
		    "The server closed the connection without a greeting: it refused the session or is not an IMAP server.");
		buf_free(&greet);
		return v;
	}
	dg_step_add(s->r, st, 1, l, "greeting");
	s->preauth = word_is(l + 2, "PREAUTH");
	known = caps_from_code(s, l);
	buf_free(&greet);

	if ((v = do_capability(s, "CAPABILITY", known)) != DIAG_OK)
		return v;

	if (t->security == DIAG_SEC_STARTTLS) {
		st = dg_now_ms();
		if (!s->caps.starttls) {
			dg_step_add(s->r, st, 0, "STARTTLS is not among the capabilities", "STARTTLS");
			return dg_finish(s->r, DIAG_STARTTLS_UNAVAILABLE,
			    "The server does not offer STARTTLS on this port: use port 993 with SSL/TLS, or ask the provider to enable TLS.");
		}
		command(s, "STARTTLS", NULL, &rp);
		if (rp.status != 1 || rp.kind != RESP_OK) {
			dg_step_add(s->r, st, 0, resp_detail(&rp), "STARTTLS");
			resp_free(&rp);
			return dg_finish(s->r, DIAG_STARTTLS_UNAVAILABLE,
			    "The server advertised STARTTLS but refused it.");
		}
		dg_step_add(s->r, st, 1, buf_str(&rp.text), "STARTTLS");
		resp_free(&rp);
		s->c.rlen = 0;	/* nothing read before TLS may be trusted after */
		if ((v = dg_tls_step(&s->c, s->t, s->r, 0, &imap_tls)) != DIAG_OK)
			return v;
		/* capabilities from before TLS are discarded (RFC 3501 6.2.1) */
		if ((v = do_capability(s, "CAPABILITY (after STARTTLS)", 0)) != DIAG_OK)
			return v;
	} else if (t->security == DIAG_SEC_NONE && s->caps.starttls) {
		dg_step_add(s->r, 0, 1, "offered but not used (security none): the password would travel in clear text",
		    "STARTTLS available");
	}

	if (s->preauth) {
		dg_step_add(s->r, 0, 1, "PREAUTH: the server logged the connection in already", "login");
	} else if (t->user) {
		if ((v = do_login(s)) != DIAG_OK)
			return v;
	}
	if ((s->preauth || t->user) && (v = do_list(s)) != DIAG_OK)
		return v;
	do_logout(s);
	if (s->r->sent_folder_found == 0)
		return dg_finish(s->r, DIAG_OK,
		    "The login works, but the account has no Sent folder: create one named \"Sent\" (or choose one as the "
		    "sent-mail folder in the mail client), or copies of sent mail are not kept.");
	return dg_finish(s->r, DIAG_OK, NULL);
}

enum diag_verdict
diag_imap(const struct diag_target *t, struct diag_report *r)
{
	struct session s;
	long long start;
	int bad_target;

	memset(&s, 0, sizeof(s));
	s.t = t;
	s.r = r;
	buf_init(&s.caps_text, DIAG_DETAIL_MAX);
	bad_target = dg_probe_begin(t, r, "imap", &s.c, &start) < 0;
	r->sent_folder_found = -1;
	if (bad_target)
		goto out;
	if (t->user && (!*t->user || strpbrk(t->user, "\r\n"))) {
		dg_step_add(r, 0, 0, "user name is empty or contains a line break", "input");
		dg_finish(r, DIAG_PROTOCOL_ERROR, NULL);
		goto out;
	}
	if (dg_connect(t, r, &s.c) != DIAG_OK)
		goto out;
	imap_dialogue(&s);
out:
	dg_probe_end(&s.c, r, start);
	buf_free(&s.caps_text);
	dg_wipe_free(s.enc);
	return r->verdict;
}
