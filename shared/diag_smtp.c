/*
 * diag_smtp - the SMTP settings probe (see diag.h for the contract).
 *
 * Why plain sockets + GnuTLS and not libcurl CONNECT_ONLY: libcurl hides the
 * EHLO capability list (only visible through DEBUGFUNCTION), silently skips
 * AUTH when none is offered, merges "STARTTLS against an implicit-TLS port"
 * and "silent server" into the same timeout, and reports certificate
 * problems as one PEER_FAILED_VERIFICATION code.  Driving the dialogue
 * ourselves gives each step its own timeout and duration, the exact server
 * reply for every step, and the GnuTLS verification status bits (expired,
 * signer not found, wrong host) that map one to one onto the verdicts.
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

#define REPLY_MAX	8192	/* one SMTP reply, all lines */

struct reply {
	int		code;
	struct buf	text;	/* lines joined with '\n', no CR */
	int		status;	/* 1 ok, 0 timeout, -1 closed/error, -2 garbage */
};

/*
 * Reads one (possibly multi-line) reply.  A line that does not start with
 * three digits and ' ' or '-' (or an inconsistent code) makes status -2 and
 * stops at that line.
 */
static void
read_reply(struct conn *c, struct reply *rp, long long deadline)
{
	char *nl;
	size_t linelen;
	int code;

	rp->code = -1;
	rp->status = 1;
	buf_init(&rp->text, REPLY_MAX);
	for (;;) {
		nl = memchr(c->rbuf, '\n', c->rlen);
		if (!nl) {
			int f;
			if (c->rlen == sizeof(c->rbuf)) {
				/* an endless line: take what we have */
				buf_append(&rp->text, c->rbuf, 200);
				rp->status = -2;
				return;
			}
			f = dg_conn_fill(c, deadline);
			if (f <= 0) {
				if (c->rlen > 0)
					buf_append(&rp->text, c->rbuf, c->rlen < 200 ? c->rlen : 200);
				rp->status = f == 0 ? 0 : -1;
				if (f < 0 && c->rlen > 0)
					rp->status = -2;
				c->rlen = 0;
				return;
			}
			continue;
		}
		linelen = (size_t)(nl - c->rbuf);
		if (linelen > 0 && c->rbuf[linelen - 1] == '\r')
			linelen--;
		if (rp->text.len)
			buf_append_char(&rp->text, '\n');
		buf_append(&rp->text, c->rbuf, linelen);
		{
			int valid = linelen >= 3 && isdigit((unsigned char)c->rbuf[0]) &&
			    isdigit((unsigned char)c->rbuf[1]) && isdigit((unsigned char)c->rbuf[2]) &&
			    (linelen == 3 || c->rbuf[3] == ' ' || c->rbuf[3] == '-');
			int last = linelen == 3 || (linelen > 3 && c->rbuf[3] == ' ');

			code = valid ? (c->rbuf[0] - '0') * 100 + (c->rbuf[1] - '0') * 10 + (c->rbuf[2] - '0') : -1;
			c->rlen -= (size_t)(nl + 1 - c->rbuf);
			memmove(c->rbuf, nl + 1, c->rlen);
			if (!valid || (rp->code >= 0 && code != rp->code)) {
				rp->status = -2;
				return;
			}
			rp->code = code;
			if (last)
				return;
		}
	}
}

static void
reply_free(struct reply *rp)
{
	buf_free(&rp->text);
}

/* Sends one command line (CRLF added) and reads the reply. */
static void
command(struct conn *c, const char *line, struct reply *rp)
{
	long long d = dg_step_deadline(c);
	size_t len = strlen(line);
	char *wire = xmalloc(len + 3);
	int w;

	/* one write: a command split over two segments waits for Nagle */
	memcpy(wire, line, len);
	memcpy(wire + len, "\r\n", 3);
	w = dg_conn_write(c, wire, len + 2, d);
	explicit_bzero(wire, len + 2);	/* may hold credentials */
	free(wire);
	if (w < 0) {
		rp->code = -1;
		rp->status = -1;
		buf_init(&rp->text, REPLY_MAX);
		return;
	}
	read_reply(c, rp, d);
}

static const char *
reply_detail(const struct reply *rp)
{
	if (rp->text.len)
		return buf_str(&rp->text);
	return rp->status == 0 ? "no reply (timed out)" : "connection closed";
}

/* ----------------------------------------------------------- SMTP logic */

struct caps {
	int	starttls;
	int	auth;		/* any AUTH advertised */
	int	plain, login;
	char	mechs[128];
};

static void
parse_caps(const char *text, struct caps *cp)
{
	const char *line = text;

	memset(cp, 0, sizeof(*cp));
	/* the first line is the greeting part of the EHLO reply */
	line = strchr(line, '\n');
	while (line) {
		const char *kw;
		size_t len;

		line++;
		len = strcspn(line, "\n");
		kw = line + (len >= 4 ? 4 : len);
		len -= (size_t)(kw - line);
		if (len >= 8 && !strncasecmp(kw, "STARTTLS", 8))
			cp->starttls = 1;
		if (len >= 5 && !strncasecmp(kw, "AUTH", 4) && (kw[4] == ' ' || kw[4] == '=')) {
			const char *m = kw + 5, *end = kw + len;
			cp->auth = 1;
			while (m < end) {
				size_t ml = 0;
				while (m + ml < end && m[ml] != ' ')
					ml++;
				if (ml == 5 && !strncasecmp(m, "PLAIN", 5))
					cp->plain = 1;
				if (ml == 5 && !strncasecmp(m, "LOGIN", 5))
					cp->login = 1;
				if (ml &&
				    strlen(cp->mechs) + ml + 2 < sizeof(cp->mechs)) {
					char tmp[64];
					size_t tl = ml < sizeof(tmp) - 1 ? ml : sizeof(tmp) - 1;
					memcpy(tmp, m, tl);
					tmp[tl] = '\0';
					if (!strstr(cp->mechs, tmp)) {
						size_t used = strlen(cp->mechs);
						snprintf(cp->mechs + used, sizeof(cp->mechs) - used, "%s%s",
						    used ? " " : "", tmp);
					}
				}
				m += ml;
				while (m < end && *m == ' ')
					m++;
			}
		}
		line = strchr(line, '\n');
	}
}

/* Known provider cases of a failed login, from the server's reply text. */
static const struct dg_hint smtp_hints[] = {
	DG_HINT_APP_PASSWORD,
	{ { "5.7.9" }, DG_HINT_APP_PASSWORD_TEXT },
	{ { "SmtpClientAuthentication is disabled", "5.7.139" },
	    "SMTP AUTH is disabled for the account (Microsoft 365: enable Authenticated SMTP)" },
	{ { "5.7.3 Authentication unsuccessful" },
	    "Microsoft 365 rejected the login (wrong password, or SMTP AUTH / legacy authentication disabled)" },
	DG_HINT_WEB_LOGIN,
	{ { "5.7.8", "credentials invalid", "Username and Password not accepted" }, "user name or password wrong" },
	{ { NULL }, NULL }
};

struct session {
	const struct diag_target *t;
	struct diag_report	*r;
	struct conn		 c;
	struct caps		 caps;
	const char		*helo;
};

/* EHLO (falling back to HELO); records the step; DIAG_OK or protocol_error. */
static enum diag_verdict
do_ehlo(struct session *s, const char *label)
{
	struct reply rp;
	char line[300];
	long long st = dg_now_ms();

	snprintf(line, sizeof(line), "EHLO %s", s->helo);
	command(&s->c, line, &rp);
	if (rp.status == 1 && rp.code == 250) {
		parse_caps(buf_str(&rp.text), &s->caps);
		dg_step_add(s->r, st, 1, buf_str(&rp.text), "%s", label);
		reply_free(&rp);
		return DIAG_OK;
	}
	dg_step_add(s->r, st, 0, reply_detail(&rp), "%s", label);
	reply_free(&rp);
	return dg_finish(s->r, DIAG_PROTOCOL_ERROR,
	    "The server did not accept EHLO: it does not behave as an SMTP submission server on this port.");
}

/* a plain SMTP server talks first ("220 ...") or answers our ClientHello
 * with "500 ...": three digits, never a TLS record */
static int
smtp_looks_plain(const char *first, size_t len)
{
	return len >= 3 && isdigit((unsigned char)first[0]) &&
	    isdigit((unsigned char)first[1]) && isdigit((unsigned char)first[2]);
}

static const struct dg_tls_proto smtp_tls = {
	smtp_looks_plain,
	"This port speaks plain SMTP (with STARTTLS), not implicit TLS: set security to STARTTLS, or use port 465 for SSL/TLS.",
};

static enum diag_verdict
do_auth(struct session *s)
{
	const struct diag_target *t = s->t;
	struct reply rp;
	struct buf cmd;
	char *enc = NULL, *enc_user = NULL, *enc_pass = NULL;
	const char *mech = s->caps.plain ? "PLAIN" : "LOGIN";
	long long st = dg_now_ms();
	enum diag_verdict v = DIAG_OK;

	if (!t->password) {
		dg_step_add(s->r, 0, 0, "no password given (a password file of mode 0600 is required)", "AUTH");
		return dg_finish(s->r, DIAG_AUTH_FAILED, "Give the account's password in a file of mode 0600.");
	}
	buf_init_secret(&cmd, 4096);	/* the credentials: wiped when freed */
	if (s->caps.plain) {
		size_t ul = strlen(t->user), pl = strlen(t->password);
		unsigned char *raw = xmalloc(ul + pl + 2);
		raw[0] = '\0';
		memcpy(raw + 1, t->user, ul);
		raw[ul + 1] = '\0';
		memcpy(raw + ul + 2, t->password, pl);
		enc = dg_b64(raw, ul + pl + 2);
		explicit_bzero(raw, ul + pl + 2);
		free(raw);
		dg_redact[1] = enc;
		/* appended, not formatted: no printf scratch copy of it */
		buf_append_str(&cmd, "AUTH PLAIN ");
		buf_append_str(&cmd, enc);
		command(&s->c, buf_str(&cmd), &rp);
	} else {
		enc_user = dg_b64((const unsigned char *)t->user, strlen(t->user));
		enc_pass = dg_b64((const unsigned char *)t->password, strlen(t->password));
		dg_redact[2] = enc_pass;
		command(&s->c, "AUTH LOGIN", &rp);
		if (rp.status == 1 && rp.code == 334) {
			reply_free(&rp);
			command(&s->c, enc_user, &rp);
			if (rp.status == 1 && rp.code == 334) {
				reply_free(&rp);
				command(&s->c, enc_pass, &rp);
			}
		}
	}
	if (rp.status == 1 && rp.code == 235) {
		dg_step_add(s->r, st, 1, buf_str(&rp.text), "AUTH %s as %s", mech, t->user);
	} else {
		const char *h = rp.text.len ? dg_auth_hint(smtp_hints, buf_str(&rp.text)) : NULL;
		dg_step_add(s->r, st, 0, reply_detail(&rp), "AUTH %s", mech);
		if (rp.status == 1 && rp.code >= 400) {
			if (h)
				s->r->hint = xstrdup(h);
			v = dg_finish(s->r, DIAG_AUTH_FAILED,
			    h && strstr(h, "application password") ?
			    "Create an application password in the account's security settings and use it instead of the normal password." :
			    h && strstr(h, "disabled") ?
			    "The account's administrator must enable SMTP AUTH (authenticated SMTP) for this mailbox." :
			    "The server refused the login: check the user name (often the full address) and the password.");
		} else
			v = dg_finish(s->r, DIAG_PROTOCOL_ERROR, "The server answered AUTH in a way no mail client understands.");
	}
	reply_free(&rp);
	buf_free(&cmd);
	dg_wipe_free(enc);
	dg_wipe_free(enc_user);
	dg_wipe_free(enc_pass);
	dg_redact[1] = dg_redact[2] = NULL;
	return v;
}

/* ------------------------------------------------- a refused envelope */

/* The server's words that name what it refused (see diag.h).  login: the
 * words say the login may not use the address.  Matched at a word start. */
static const struct refusal_word {
	const char		*word;
	enum diag_refusal	 what;	/* DIAG_REFUSED_OTHER: no subject of its own */
	int			 login;
} refusal_words[] = {
	{ "sender", DIAG_REFUSED_SENDER, 0 },
	{ "send as", DIAG_REFUSED_SENDER, 1 },
	{ "send-as", DIAG_REFUSED_SENDER, 1 },
	{ "sendas", DIAG_REFUSED_SENDER, 1 },
	{ "send mail as", DIAG_REFUSED_SENDER, 1 },
	{ "on behalf", DIAG_REFUSED_SENDER, 1 },
	{ "not authorized to send", DIAG_REFUSED_SENDER, 1 },
	{ "not authorised to send", DIAG_REFUSED_SENDER, 1 },
	{ "sending from", DIAG_REFUSED_SENDER, 0 },
	{ "from address", DIAG_REFUSED_SENDER, 0 },
	{ "owned", DIAG_REFUSED_SENDER, 1 },
	{ "not logged in", DIAG_REFUSED_SENDER, 1 },
	{ "does not match", DIAG_REFUSED_OTHER, 1 },
	{ "doesn't match", DIAG_REFUSED_OTHER, 1 },
	{ "mismatch", DIAG_REFUSED_OTHER, 1 },
	{ "permission", DIAG_REFUSED_OTHER, 1 },
	{ "relay", DIAG_REFUSED_RELAY, 0 },
	{ "rcpthosts", DIAG_REFUSED_RELAY, 0 },
	{ "recipient", DIAG_REFUSED_RECIPIENT, 0 },
	{ "user unknown", DIAG_REFUSED_RECIPIENT, 0 },
	{ "unknown user", DIAG_REFUSED_RECIPIENT, 0 },
	{ "no such user", DIAG_REFUSED_RECIPIENT, 0 },
	{ "mailbox unavailable", DIAG_REFUSED_RECIPIENT, 0 },
	{ "mailbox not found", DIAG_REFUSED_RECIPIENT, 0 },
};

/* The enhanced status code at the start of the reply's first line ("553
 * 5.7.1 ..." or "553-5.7.1 ..."): 0 and *subject, *detail; -1 if none. */
static int
enhanced_code(const char *s, int *subject, int *detail)
{
	int n[3], k;

	if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) ||
	    !isdigit((unsigned char)s[2]) || (s[3] != ' ' && s[3] != '-'))
		return -1;
	s += 4;
	while (*s == ' ')
		s++;
	if (*s != '2' && *s != '4' && *s != '5')
		return -1;
	for (k = 0; k < 3; k++) {
		int digits = 0;
		n[k] = 0;
		while (isdigit((unsigned char)*s) && digits < (k ? 3 : 1)) {
			n[k] = n[k] * 10 + (*s++ - '0');
			digits++;
		}
		if (!digits)
			return -1;
		if (k < 2 && *s++ != '.')
			return -1;
		if (k == 2 && (isalnum((unsigned char)*s) || *s == '.'))
			return -1;
	}
	*subject = n[1];
	*detail = n[2];
	return 0;
}

/* What the enhanced code alone says (see diag.h). */
static enum diag_refusal
refusal_by_code(int subject, int detail, int at_rcpt)
{
	if (subject == 1 && (detail == 7 || detail == 8))
		return DIAG_REFUSED_SENDER;
	if (subject == 1 && (detail == 1 || detail == 2 || detail == 3 || detail == 6 || detail == 10))
		return DIAG_REFUSED_RECIPIENT;
	if (subject == 7 && detail == 60)
		return DIAG_REFUSED_SENDER_LOGIN;
	if (subject == 7 && detail == 27)
		return DIAG_REFUSED_SENDER;
	if (subject == 7 && detail == 54)
		return DIAG_REFUSED_RELAY;
	if (subject == 7 && detail == 1)
		return at_rcpt ? DIAG_REFUSED_RELAY : DIAG_REFUSED_SENDER;
	return DIAG_REFUSED_OTHER;
}

/* A token of the reply that is an address, a host name or a URL, whose
 * words are not the server's: it has '@' or '/', or a '.' before a letter. */
static int
token_is_name(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] == '@' || s[i] == '/' ||
		    (s[i] == '.' && i > 0 && i + 1 < len && isalpha((unsigned char)s[i + 1])))
			return 1;
	return 0;
}

enum diag_refusal
diag_smtp_refusal(const char *reply, int at_rcpt)
{
	enum diag_refusal what = DIAG_REFUSED_OTHER;
	int login = 0, subject, detail, have_code;
	size_t i = 0, n, k;

	if (!reply)
		return DIAG_REFUSED_OTHER;
	n = strlen(reply);
	have_code = enhanced_code(reply, &subject, &detail) == 0;
	while (i < n) {
		size_t end, w;

		if (isspace((unsigned char)reply[i])) {
			i++;
			continue;
		}
		if (reply[i] == '<') {	/* <address>: not the server's words */
			while (i < n && reply[i] != '>' && reply[i] != '\n')
				i++;
			continue;
		}
		for (end = i; end < n && !isspace((unsigned char)reply[end]) && reply[end] != '<'; end++)
			;
		if (token_is_name(reply + i, end - i)) {
			i = end;
			continue;
		}
		for (w = i; w < end; w++) {
			if (!isalpha((unsigned char)reply[w]) || (w > i && isalnum((unsigned char)reply[w - 1])))
				continue;
			for (k = 0; k < sizeof(refusal_words) / sizeof(refusal_words[0]); k++) {
				const struct refusal_word *rw = &refusal_words[k];
				if (tolower((unsigned char)reply[w]) != rw->word[0] ||
				    strncasecmp(reply + w, rw->word, strlen(rw->word)) != 0)
					continue;
				if (what == DIAG_REFUSED_OTHER)
					what = rw->what;
				login |= rw->login;
			}
		}
		i = end;
	}
	if (have_code) {
		enum diag_refusal by_code = refusal_by_code(subject, detail, at_rcpt);

		/* a recipient refused for security (X.7), not for its address
		 * (X.1): "554 5.7.1 <x>: Recipient address rejected: Access
		 * denied" is Postfix's submission refusing to relay */
		if (what == DIAG_REFUSED_OTHER ||
		    (what == DIAG_REFUSED_RECIPIENT && subject == 7 && by_code != DIAG_REFUSED_OTHER))
			what = by_code;
		else if (what == DIAG_REFUSED_SENDER && by_code == DIAG_REFUSED_SENDER_LOGIN)
			what = by_code;
	}
	/* at MAIL FROM the only mailbox named is the sender's */
	if (!at_rcpt && what == DIAG_REFUSED_RECIPIENT)
		what = DIAG_REFUSED_SENDER;
	if (what == DIAG_REFUSED_SENDER && login)
		what = DIAG_REFUSED_SENDER_LOGIN;
	return what;
}

const char *
diag_refusal_name(enum diag_refusal k)
{
	switch (k) {
	case DIAG_REFUSED_SENDER:	return "sender";
	case DIAG_REFUSED_SENDER_LOGIN:	return "sender_login";
	case DIAG_REFUSED_RELAY:	return "relay";
	case DIAG_REFUSED_RECIPIENT:	return "recipient";
	default:			return "other";
	}
}

/* The verdict and the advice for a refusal (a reply of 400 or more) of
 * MAIL FROM (at_rcpt 0) or RCPT TO. */
static enum diag_verdict
envelope_refused(struct session *s, const struct reply *rp, int at_rcpt)
{
	const struct diag_target *t = s->t;
	struct buf advice;
	char *user;
	enum diag_verdict v;

	switch (diag_smtp_refusal(buf_str(&rp->text), at_rcpt)) {
	case DIAG_REFUSED_SENDER_LOGIN:
		if (!t->user)
			return dg_finish(s->r, DIAG_SENDER_REJECTED,
			    "The server lets only the owner of this From address send from it: log in (SMTP AUTH) with the account that owns it.");
		buf_init(&advice, 4096);
		user = dg_sanitise(t->user, strlen(t->user));
		buf_printf(&advice, "The server accepted your login but refuses this From address for it: "
		    "send as an address the account %s owns, or ask the provider to allow it.", user);
		free(user);
		v = dg_finish(s->r, DIAG_SENDER_REJECTED, buf_str(&advice));
		buf_free(&advice);
		return v;
	case DIAG_REFUSED_SENDER:
		return dg_finish(s->r, DIAG_SENDER_REJECTED,
		    "The server refused the sender (From) address: check it for typos and that its domain exists, and send from an address of the account; see the server's reply.");
	case DIAG_REFUSED_RELAY:
		return dg_finish(s->r, DIAG_RELAY_DENIED, t->user ?
		    "The server accepted the login but refuses to relay to outside addresses: use the provider's submission server and port, or ask the provider to allow relaying for the account." :
		    "The server refuses to relay to outside addresses: authenticate (SMTP AUTH) with the account, or use the provider's submission server.");
	default:
		break;
	}
	if (at_rcpt)
		return dg_finish(s->r, DIAG_PROTOCOL_ERROR, "The server refused the test recipient; see its reply.");
	return dg_finish(s->r, DIAG_SENDER_REJECTED, rp->code == 530 ?
	    "The server requires authentication before accepting mail: enable SMTP authentication in the mail client." :
	    "The server refused the sender address: send from an address the account owns.");
}

static enum diag_verdict
do_envelope(struct session *s)
{
	const struct diag_target *t = s->t;
	struct reply rp;
	char line[600];
	long long st = dg_now_ms();
	enum diag_verdict v = DIAG_OK;

	snprintf(line, sizeof(line), "MAIL FROM:<%s>", t->mail_from);
	command(&s->c, line, &rp);
	if (!(rp.status == 1 && rp.code == 250)) {
		dg_step_add(s->r, st, 0, reply_detail(&rp), "MAIL FROM:<%s>", t->mail_from);
		if (rp.status == 1 && rp.code >= 400)
			v = envelope_refused(s, &rp, 0);
		else
			v = dg_finish(s->r, DIAG_PROTOCOL_ERROR, "The server did not answer MAIL FROM.");
		reply_free(&rp);
		return v;
	}
	dg_step_add(s->r, st, 1, buf_str(&rp.text), "MAIL FROM:<%s>", t->mail_from);
	reply_free(&rp);
	if (!t->rcpt)
		return DIAG_OK;
	st = dg_now_ms();
	snprintf(line, sizeof(line), "RCPT TO:<%s>", t->rcpt);
	command(&s->c, line, &rp);
	if (rp.status == 1 && (rp.code == 250 || rp.code == 251)) {
		dg_step_add(s->r, st, 1, buf_str(&rp.text), "RCPT TO:<%s>", t->rcpt);
	} else {
		dg_step_add(s->r, st, 0, reply_detail(&rp), "RCPT TO:<%s>", t->rcpt);
		if (rp.status == 1 && rp.code >= 400)
			v = envelope_refused(s, &rp, 1);
		else if (rp.status == 1)
			v = dg_finish(s->r, DIAG_PROTOCOL_ERROR, "The server refused the test recipient; see its reply.");
		else
			v = dg_finish(s->r, DIAG_PROTOCOL_ERROR, "The server stopped answering after RCPT TO.");
	}
	reply_free(&rp);
	return v;
}

static void
do_quit(struct session *s)
{
	struct reply rp;
	long long st = dg_now_ms();
	long saved = s->c.step_ms;

	s->c.step_ms = saved < 2000 ? saved : 2000;
	command(&s->c, "QUIT", &rp);
	dg_step_add(s->r, st, rp.status == 1 && rp.code == 221, reply_detail(&rp), "QUIT");
	s->c.step_ms = saved;
	reply_free(&rp);
}

/* Non-blocking connect; 0 connected, else errno (ETIMEDOUT on timeout). */
static enum diag_verdict
smtp_dialogue(struct session *s)
{
	const struct diag_target *t = s->t;
	struct reply rp;
	long long st;
	enum diag_verdict v;

	if (t->security == DIAG_SEC_TLS) {
		if ((v = dg_tls_step(&s->c, s->t, s->r, 1, &smtp_tls)) != DIAG_OK)
			return v;
	}

	st = dg_now_ms();
	{
		/* keep a little time to find out whether the port speaks TLS */
		long long gd = dg_step_deadline(&s->c), total = s->c.deadline - st;
		long long reserve = total / 4 < 2000 ? total / 4 : 2000;

		if (t->security != DIAG_SEC_TLS && gd > s->c.deadline - reserve)
			gd = s->c.deadline - reserve;
		read_reply(&s->c, &rp, gd);
	}
	if (rp.status == 0 && rp.text.len == 0) {
		dg_step_add(s->r, st, 0, "no greeting (timed out)", "greeting");
		reply_free(&rp);
		st = dg_now_ms();
		if (t->security != DIAG_SEC_TLS && st < s->c.deadline && dg_speaks_tls(&s->c, s->t)) {
			dg_step_add(s->r, st, 0, "the port answered a TLS ClientHello: it speaks implicit TLS",
			    "TLS probe");
			return dg_finish(s->r, DIAG_TLS_MODE_MISMATCH,
			    "This port expects implicit TLS (SSL/TLS, usually port 465): set security to SSL/TLS, or use port 587 with STARTTLS.");
		}
		return dg_finish(s->r, DIAG_GREETING_TIMEOUT,
		    "The server accepted the connection but never greeted: it is overloaded, filtered, or expects TLS on this port.");
	}
	if (rp.status != 1 || rp.code != 220) {
		dg_step_add(s->r, st, 0, reply_detail(&rp), "greeting");
		reply_free(&rp);
		return dg_finish(s->r, DIAG_PROTOCOL_ERROR,
		    "The server did not greet with 220: it refused the session or is not an SMTP server.");
	}
	dg_step_add(s->r, st, 1, buf_str(&rp.text), "greeting");
	reply_free(&rp);

	if ((v = do_ehlo(s, "EHLO")) != DIAG_OK)
		return v;

	if (t->security == DIAG_SEC_STARTTLS) {
		st = dg_now_ms();
		if (!s->caps.starttls) {
			dg_step_add(s->r, st, 0, "STARTTLS is not in the EHLO capabilities", "STARTTLS");
			return dg_finish(s->r, DIAG_STARTTLS_UNAVAILABLE,
			    "The server does not offer STARTTLS on this port: use port 465 with SSL/TLS, or ask the provider to enable TLS.");
		}
		command(&s->c, "STARTTLS", &rp);
		if (rp.status != 1 || rp.code != 220) {
			dg_step_add(s->r, st, 0, reply_detail(&rp), "STARTTLS");
			reply_free(&rp);
			return dg_finish(s->r, DIAG_STARTTLS_UNAVAILABLE,
			    "The server advertised STARTTLS but refused it.");
		}
		dg_step_add(s->r, st, 1, buf_str(&rp.text), "STARTTLS");
		reply_free(&rp);
		s->c.rlen = 0;	/* nothing read before TLS may be trusted after */
		if ((v = dg_tls_step(&s->c, s->t, s->r, 0, &smtp_tls)) != DIAG_OK)
			return v;
		if ((v = do_ehlo(s, "EHLO (after STARTTLS)")) != DIAG_OK)
			return v;
	} else if (t->security == DIAG_SEC_NONE && s->caps.starttls) {
		dg_step_add(s->r, 0, 1, "offered but not used (security none): the password would travel in clear text",
		    "STARTTLS available");
	}

	dg_step_add(s->r, 0, s->caps.auth || !t->user,
	    s->caps.auth ? s->caps.mechs : "none offered", "AUTH mechanisms");
	if (t->user) {
		if (!s->caps.auth)
			return dg_finish(s->r, DIAG_AUTH_UNAVAILABLE,
			    s->caps.starttls && !s->c.tls ?
			    "The server offers AUTH only after STARTTLS: set security to STARTTLS." :
			    "The server offers no authentication on this port: use the provider's submission port (587 with STARTTLS or 465 with SSL/TLS).");
		if (!s->caps.plain && !s->caps.login) {
			dg_step_add(s->r, 0, 0, "neither PLAIN nor LOGIN is offered", "AUTH");
			return dg_finish(s->r, DIAG_AUTH_UNAVAILABLE,
			    "The server offers only authentication mechanisms this probe does not speak.");
		}
		if ((v = do_auth(s)) != DIAG_OK)
			return v;
	}
	if (t->mail_from && (v = do_envelope(s)) != DIAG_OK)
		return v;
	do_quit(s);
	return dg_finish(s->r, DIAG_OK, NULL);
}

enum diag_verdict
diag_smtp(const struct diag_target *t, struct diag_report *r)
{
	struct session s;
	long long start;

	memset(&s, 0, sizeof(s));
	s.t = t;
	s.r = r;
	s.helo = t->helo ? t->helo : "helpgate.invalid";
	if (dg_probe_begin(t, r, "smtp", &s.c, &start) < 0)
		goto out;
	if (t->user && strpbrk(t->user, "\r\n")) {
		dg_step_add(r, 0, 0, "user name contains a line break", "input");
		dg_finish(r, DIAG_PROTOCOL_ERROR, NULL);
		goto out;
	}
	if ((t->mail_from && strpbrk(t->mail_from, "\r\n<>")) || (t->rcpt && strpbrk(t->rcpt, "\r\n<>"))) {
		dg_step_add(r, 0, 0, "address contains a line break or angle bracket", "input");
		dg_finish(r, DIAG_PROTOCOL_ERROR, NULL);
		goto out;
	}

	if (dg_connect(t, r, &s.c) != DIAG_OK)
		goto out;
	smtp_dialogue(&s);
out:
	dg_probe_end(&s.c, r, start);
	return r->verdict;
}
