/*
 * test_diag_imap - the IMAP probe against tiny fault servers started here.
 *
 * Each server is a forked child that accepts on 127.0.0.1 and follows a
 * script: greeting (or silence), capabilities (before and after TLS),
 * answers to STARTTLS, LOGIN, AUTHENTICATE and LIST (raw lines, literals
 * included), optional TLS with certificates made here with GnuTLS.  The
 * server assembles a command's literals ("{n}" kept, the bytes appended)
 * and appends every command it got to a log file, so a test can check
 * what the probe sent (quoting, literals, that no password went out).
 * Every child is killed by its PID at the end.
 *
 * Covered: ok (plain, implicit TLS, STARTTLS, PREAUTH), connect_refused,
 * greeting_timeout, protocol_error (garbage, BYE, SMTP greeting, endless
 * line, huge literal), starttls_unavailable (missing, refused),
 * auth_unavailable (LOGINDISABLED), auth_failed (+ hints), tls_mode_mismatch
 * both ways, the certificate verdicts, literals in responses, the Sent
 * folder (\Sent, names, modified UTF-7, missing), LOGIN quoting and
 * literals, AUTHENTICATE PLAIN with and without SASL-IR, redaction.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "buf.h"
#include "diag.h"
#include "xalloc.h"
#include "t.h"
#include "diag_testserver.h"

#define PASSWORD	"s3cr3t-Pa55"
#define USER		"alice@example.com"

struct script {
	const char *greeting;	/* sent as is; NULL: silent */
	const char *caps;	/* CAPABILITY words */
	const char *caps_tls;	/* ... after STARTTLS (NULL: the same) */
	int	    starttls;	/* answer STARTTLS with OK and go TLS */
	int	    implicit_tls;
	const char *cert, *key;
	const char *login;	/* tagged answer to LOGIN/AUTHENTICATE after the tag;
				 * NULL: "OK Logged in" */
	const char *untagged_login; /* untagged lines before it (e.g. "* BYE ...") */
	int	    close_after_login;
	const char *expect;	/* LOGIN/AUTHENTICATE must be this (after the tag) */
	int	    echo;	/* append the client's line to the login answer */
	const char *list;	/* untagged LIST lines; NULL: INBOX and Sent */
	const char *capability_raw; /* sent instead of the CAPABILITY answer */
};

static pid_t children[64];
static int nchildren;

/* ---------------------------------------------------------- fake server */

struct sconn {
	int fd;
	gnutls_session_t s;
	char buf[8192];
	size_t len;
};

static void
s_write(struct sconn *c, const char *str, size_t len)
{
	if (c->s)
		gnutls_record_send(c->s, str, len);
	else if (write(c->fd, str, len) < 0)
		_exit(0);
}

static void
s_puts(struct sconn *c, const char *str)
{
	s_write(c, str, strlen(str));
}

static int
s_fill(struct sconn *c)
{
	ssize_t n;

	if (c->len == sizeof(c->buf))
		return -1;
	n = c->s ? gnutls_record_recv(c->s, c->buf + c->len, sizeof(c->buf) - c->len)
	    : read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
	if (n <= 0)
		return -1;
	c->len += (size_t)n;
	return 0;
}

/* One line without CRLF appended to out; -1 at EOF. */
static int
s_line(struct sconn *c, struct buf *out)
{
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		if (nl) {
			size_t l = (size_t)(nl - c->buf);
			buf_append(out, c->buf, l && c->buf[l - 1] == '\r' ? l - 1 : l);
			c->len -= l + 1;
			memmove(c->buf, nl + 1, c->len);
			return 0;
		}
		if (s_fill(c) < 0)
			return -1;
	}
}

/* A command with its literals: "{n}" kept, "+" sent for synchronising
 * ones, the n bytes and the rest of the line appended. */
static int
s_command(struct sconn *c, struct buf *out)
{
	buf_reset(out);
	for (;;) {
		size_t n;
		char *brace;

		if (s_line(c, out) < 0)
			return -1;
		if (out->len < 3 || out->data[out->len - 1] != '}' ||
		    !(brace = strrchr(out->data, '{')))
			return 0;
		n = strtoul(brace + 1, NULL, 10);
		if (out->data[out->len - 2] != '+')
			s_puts(c, "+ Ready for literal data\r\n");
		while (c->len < n)
			if (s_fill(c) < 0)
				return -1;
		buf_append(out, c->buf, n);
		c->len -= n;
		memmove(c->buf, c->buf + n, c->len);
	}
}

static int
s_tls(struct sconn *c, const struct script *sc)
{
	gnutls_certificate_credentials_t cred;
	int ret;

	gnutls_certificate_allocate_credentials(&cred);
	if (gnutls_certificate_set_x509_key_file(cred, sc->cert, sc->key, GNUTLS_X509_FMT_PEM) < 0)
		_exit(3);
	gnutls_init(&c->s, GNUTLS_SERVER);
	gnutls_set_default_priority(c->s);
	gnutls_credentials_set(c->s, GNUTLS_CRD_CERTIFICATE, cred);
	gnutls_transport_set_int(c->s, c->fd);
	do
		ret = gnutls_handshake(c->s);
	while (ret < 0 && !gnutls_error_is_fatal(ret));
	return ret < 0 ? -1 : 0;
}

static void
s_log(int port, const char *line)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/imap-%d.log", tmpdir, port);
	if ((f = fopen(path, "a")) != NULL) {
		fprintf(f, "%s\n", line);
		fclose(f);
	}
}

static void
login_answer(struct sconn *c, const struct script *sc, const char *tag, const char *rest)
{
	struct buf out;

	buf_init(&out, 1 << 16);
	if (sc->untagged_login)
		buf_append_str(&out, sc->untagged_login);
	if (sc->close_after_login) {
		s_write(c, out.data, out.len);
		buf_free(&out);
		_exit(0);
	}
	if (sc->expect && strcmp(rest, sc->expect) != 0)
		buf_printf(&out, "%s NO [AUTHENTICATIONFAILED] not what the test expects\r\n", tag);
	else
		buf_printf(&out, "%s %s%s%s\r\n", tag, sc->login ? sc->login : "OK Logged in",
		    sc->echo ? " " : "", sc->echo ? rest : "");
	s_write(c, out.data, out.len);
	buf_free(&out);
}

static void
serve_one(int fd, const struct script *sc, int port)
{
	struct sconn c;
	struct buf line, out;

	memset(&c, 0, sizeof(c));
	c.fd = fd;
	if (sc->implicit_tls && s_tls(&c, sc) < 0)
		return;
	if (!sc->greeting) {
		char junk[512];
		while (read(fd, junk, sizeof(junk)) > 0)
			;
		return;
	}
	s_puts(&c, sc->greeting);
	buf_init(&line, 1 << 16);
	buf_init(&out, 1 << 20);
	while (s_command(&c, &line) == 0) {
		char tag[32] = "", cmd[32] = "";
		const char *rest = "";
		char *sp = strchr(line.data, ' ');

		s_log(port, line.data);
		if (sp) {
			snprintf(tag, sizeof(tag), "%.*s", (int)(sp - line.data), line.data);
			sscanf(sp + 1, "%31s", cmd);
			rest = sp + 1;
		}
		buf_reset(&out);
		if (!strcasecmp(cmd, "CAPABILITY")) {
			if (sc->capability_raw) {
				s_puts(&c, sc->capability_raw);
				continue;
			}
			buf_printf(&out, "* CAPABILITY %s\r\n%s OK Pre-login capabilities listed\r\n",
			    c.s && sc->caps_tls ? sc->caps_tls : sc->caps ? sc->caps : "IMAP4rev1", tag);
		} else if (!strcasecmp(cmd, "STARTTLS")) {
			if (!sc->starttls) {
				buf_printf(&out, "%s NO STARTTLS is not available now\r\n", tag);
			} else {
				buf_printf(&out, "%s OK Begin TLS negotiation now.\r\n", tag);
				s_write(&c, out.data, out.len);
				c.len = 0;
				if (s_tls(&c, sc) < 0)
					break;
				continue;
			}
		} else if (!strcasecmp(cmd, "LOGIN")) {
			login_answer(&c, sc, tag, rest);
			continue;
		} else if (!strcasecmp(cmd, "AUTHENTICATE")) {
			struct buf full;
			buf_init(&full, 1 << 16);
			buf_append_str(&full, rest);
			if (!strcasecmp(rest, "AUTHENTICATE PLAIN")) {
				s_puts(&c, "+ \r\n");
				buf_append_char(&full, ' ');
				if (s_line(&c, &full) < 0)
					break;
				s_log(port, full.data);
			}
			login_answer(&c, sc, tag, full.data);
			buf_free(&full);
			continue;
		} else if (!strcasecmp(cmd, "LIST")) {
			buf_printf(&out, "%s%s OK List completed\r\n", sc->list ? sc->list :
			    "* LIST (\\HasChildren) \"/\" INBOX\r\n* LIST (\\HasNoChildren) \"/\" Sent\r\n", tag);
		} else if (!strcasecmp(cmd, "LOGOUT")) {
			buf_printf(&out, "* BYE Logging out\r\n%s OK Logout completed.\r\n", tag);
			s_write(&c, out.data, out.len);
			break;
		} else
			buf_printf(&out, "%s BAD Error in IMAP command\r\n", tag[0] ? tag : "*");
		s_write(&c, out.data, out.len);
	}
	buf_free(&line);
	buf_free(&out);
	if (c.s) {
		gnutls_bye(c.s, GNUTLS_SHUT_WR);
		gnutls_deinit(c.s);
	}
}

/* Starts a server; returns its port. */
static int
server_start(const struct script *sc)
{
	int port, lfd = bound_socket(SOCK_STREAM, &port);
	pid_t pid;

	if (listen(lfd, 16) < 0) {
		perror("listen");
		exit(2);
	}
	pid = server_fork();
	if (pid == 0) {
		for (;;) {
			int fd = accept(lfd, NULL, NULL);
			if (fd < 0)
				continue;
			serve_one(fd, sc, port);
			close(fd);
		}
	}
	close(lfd);
	children[nchildren++] = pid;
	return port;
}

/* What the server on port got, one command a line ("" if nothing). */
static char *
server_log(int port)
{
	char path[128];
	struct buf b;
	char chunk[4096];
	size_t n;
	FILE *f;

	buf_init(&b, 1 << 20);
	snprintf(path, sizeof(path), "%s/imap-%d.log", tmpdir, port);
	if ((f = fopen(path, "r")) != NULL) {
		while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
			buf_append(&b, chunk, n);
		fclose(f);
	}
	return buf_steal(&b);
}

/* ---------------------------------------------------------------- probes */

static void
target_init(struct diag_target *t, int port, enum diag_security sec)
{
	memset(t, 0, sizeof(*t));
	t->host = xstrdup("127.0.0.1");
	t->port = port;
	t->security = sec;
	t->timeout_ms = 5000;
	t->step_timeout_ms = 3000;
	t->allow = xmalloc(sizeof(char *));
	t->allow[0] = xstrdup("127.0.0.0/8");
	t->allow_count = 1;
}

static void
with_creds(struct diag_target *t)
{
	t->user = xstrdup(USER);
	t->password = xstrdup(PASSWORD);
}

/* Runs the probe, checks the verdict and that no secret leaks. */
static void
probe(struct diag_target *t, enum diag_verdict want, struct diag_report *r)
{
	struct buf j, x;

	diag_imap(t, r);
	T_EQ_STR(diag_verdict_name(r->verdict), diag_verdict_name(want));
	T_EQ_STR(r->protocol, "imap");
	buf_init(&j, 1 << 20);
	buf_init(&x, 1 << 20);
	diag_report_json(r, &j);
	diag_report_text(r, &x);
	T_CHECK(strstr(buf_str(&j), PASSWORD) == NULL);
	T_CHECK(strstr(buf_str(&x), PASSWORD) == NULL);
	if (t->password) {
		T_CHECK(strstr(buf_str(&j), t->password) == NULL);
		T_CHECK(strstr(buf_str(&x), t->password) == NULL);
	}
	/* base64 of "\0alice@example.com\0s3cr3t-Pa55" */
	T_CHECK(strstr(buf_str(&j), "AGFsaWNlQGV4YW1wbGUuY29tAHMzY3IzdC1QYTU1") == NULL);
	T_CONTAINS(buf_str(&j), "\"protocol\":\"imap\"");
	T_CONTAINS(buf_str(&j), "\"sent_folder_found\":");
	if (r->verdict != want || getenv("DIAG_VERBOSE"))
		fprintf(stderr, "%s\n%s\n", buf_str(&x), buf_str(&j));
	buf_free(&j);
	buf_free(&x);
}

/* The step called name, or NULL. */
static const struct diag_step *
step(const struct diag_report *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->step_count; i++)
		if (!strcmp(r->steps[i].name, name))
			return &r->steps[i];
	return NULL;
}

static const struct diag_step *
last_step(const struct diag_report *r)
{
	return r->step_count ? &r->steps[r->step_count - 1] : NULL;
}

#define CAPS_PLAIN	"IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE AUTH=PLAIN"
#define GREET_CAPS	"* OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR STARTTLS AUTH=PLAIN] Dovecot ready.\r\n"

static void
test_faults(void)
{
	struct diag_target t;
	struct diag_report r;
	long long ms;
	struct timespec a, z;
	int port;
	char *log;

	/* closed port */
	target_init(&t, closed_port(), DIAG_SEC_STARTTLS);
	probe(&t, DIAG_CONNECT_REFUSED, &r);
	T_EQ_INT(r.sent_folder_found, -1);
	diag_report_free(&r);
	diag_target_free(&t);

	/* silent server: greeting_timeout within the budget */
	{
		static const struct script sc = { .greeting = NULL };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_STARTTLS);
	t.timeout_ms = 600;
	clock_gettime(CLOCK_MONOTONIC, &a);
	probe(&t, DIAG_GREETING_TIMEOUT, &r);
	clock_gettime(CLOCK_MONOTONIC, &z);
	ms = (z.tv_sec - a.tv_sec) * 1000 + (z.tv_nsec - a.tv_nsec) / 1000000;
	T_CHECK(ms >= 400 && ms < 1000);
	T_CHECK(step(&r, "greeting") && !step(&r, "greeting")->ok);
	diag_report_free(&r);
	t.security = DIAG_SEC_TLS;
	probe(&t, DIAG_GREETING_TIMEOUT, &r);
	T_CHECK(r.duration_ms < 1000);
	diag_report_free(&r);
	diag_target_free(&t);

	/* garbage greeting */
	{
		static const struct script sc = { .greeting = "HTTP/1.1 400 Bad Request\r\n\r\n" };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_NONE);
	probe(&t, DIAG_PROTOCOL_ERROR, &r);
	T_CONTAINS(last_step(&r)->detail, "HTTP/1.1 400");
	T_CONTAINS(r.advice, "not an IMAP server");
	diag_report_free(&r);
	diag_target_free(&t);

	/* BYE at once */
	{
		static const struct script sc = { .greeting = "* BYE Too many connections from your IP\r\n" };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_NONE);
	probe(&t, DIAG_PROTOCOL_ERROR, &r);
	T_CONTAINS(last_step(&r)->detail, "* BYE Too many connections");
	T_CONTAINS(r.advice, "BYE");
	diag_report_free(&r);
	diag_target_free(&t);

	/* an SMTP server on the IMAP port */
	{
		static const struct script sc = { .greeting = "220 mx.test ESMTP Postfix\r\n" };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_STARTTLS);
	probe(&t, DIAG_PROTOCOL_ERROR, &r);
	T_CONTAINS(r.advice, "SMTP");
	diag_report_free(&r);
	diag_target_free(&t);

	/* STARTTLS asked, not among the greeting's capabilities */
	{
		static const struct script sc = {
			.greeting = "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n" };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_STARTTLS);
	with_creds(&t);
	probe(&t, DIAG_STARTTLS_UNAVAILABLE, &r);
	T_CHECK(step(&r, "CAPABILITY (announced)") != NULL);
	T_CONTAINS(r.advice, "993");
	log = server_log(port);
	T_CHECK(strstr(log, "LOGIN") == NULL);
	T_CHECK(strstr(log, "CAPABILITY") == NULL);	/* the greeting told */
	free(log);
	diag_report_free(&r);
	diag_target_free(&t);

	/* STARTTLS advertised (through CAPABILITY), then refused */
	{
		static const struct script sc = { .greeting = "* OK ready\r\n",
			.caps = "IMAP4rev1 STARTTLS LOGINDISABLED" };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_STARTTLS);
	with_creds(&t);
	probe(&t, DIAG_STARTTLS_UNAVAILABLE, &r);
	T_CHECK(step(&r, "CAPABILITY") && step(&r, "CAPABILITY")->ok);
	T_CONTAINS(last_step(&r)->detail, "NO STARTTLS is not available");
	diag_report_free(&r);

	/* the same with security none: LOGINDISABLED, and no password goes out */
	t.security = DIAG_SEC_NONE;
	probe(&t, DIAG_AUTH_UNAVAILABLE, &r);
	T_CHECK(step(&r, "STARTTLS available") != NULL);
	T_CONTAINS(last_step(&r)->detail, "LOGINDISABLED");
	T_CONTAINS(r.advice, "STARTTLS");
	T_CONTAINS(r.advice, "993");
	log = server_log(port);
	T_CHECK(strstr(log, PASSWORD) == NULL);
	T_CHECK(strstr(log, "LOGIN ") == NULL && strstr(log, "AUTHENTICATE") == NULL);
	free(log);
	diag_report_free(&r);
	diag_target_free(&t);

	/* an endless CAPABILITY line is cut, bounded */
	{
		static struct script sc = { .greeting = "* OK ready\r\n" };
		static char big[300 * 1024];
		memset(big, 'A', sizeof(big) - 1);
		sc.capability_raw = big;
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_NONE);
	probe(&t, DIAG_PROTOCOL_ERROR, &r);
	T_CHECK(r.duration_ms < 2500);
	T_EQ_STR(last_step(&r)->name, "CAPABILITY");
	diag_report_free(&r);
	diag_target_free(&t);

	/* a literal larger than any answer to us */
	{
		static const struct script sc = { .greeting = "* OK ready\r\n",
			.capability_raw = "* CAPABILITY {999999999}\r\nIMAP4rev1\r\n" };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_NONE);
	probe(&t, DIAG_PROTOCOL_ERROR, &r);
	T_CHECK(r.duration_ms < 1000);
	diag_report_free(&r);
	diag_target_free(&t);

	/* implicit TLS against a plain port: "* OK" arrives in clear */
	{
		static const struct script sc = { .greeting = "* OK [CAPABILITY IMAP4rev1 STARTTLS] plain here\r\n" };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_TLS);
	probe(&t, DIAG_TLS_MODE_MISMATCH, &r);
	T_CHECK(step(&r, "server sent plain text") != NULL);
	T_CONTAINS(step(&r, "server sent plain text")->detail, "* OK");
	T_CONTAINS(r.advice, "STARTTLS");
	diag_report_free(&r);
	diag_target_free(&t);
}

static void
test_login(void)
{
	struct diag_target t;
	struct diag_report r;
	struct buf b;
	int port;
	char *log;

	/* the whole way in clear (security none): LOGIN, LIST, LOGOUT */
	{
		static const struct script sc = { .greeting = GREET_CAPS,
			.expect = "LOGIN \"" USER "\" \"" PASSWORD "\"" };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_NONE);
	with_creds(&t);
	probe(&t, DIAG_OK, &r);
	T_EQ_INT(r.sent_folder_found, 1);
	T_EQ_STR(r.sent_folder, "Sent");
	T_CHECK(r.advice == NULL);
	T_CHECK(step(&r, "STARTTLS available") != NULL);
	T_CHECK(step(&r, "LOGIN as " USER) && step(&r, "LOGIN as " USER)->ok);
	T_CHECK(step(&r, "CAPABILITY (after login)") != NULL);
	T_CHECK(step(&r, "LIST \"\" \"*\"") && step(&r, "LIST \"\" \"*\"")->ok);
	T_CONTAINS(step(&r, "Sent folder")->detail, "\"Sent\" (by name)");
	T_EQ_STR(last_step(&r)->name, "LOGOUT");
	T_CHECK(last_step(&r)->ok);
	buf_init(&b, 1 << 16);
	diag_report_json(&r, &b);
	T_CONTAINS(buf_str(&b), "{\"protocol\":\"imap\",\"verdict\":\"ok\"");
	T_CONTAINS(buf_str(&b), "\"sent_folder_found\":true,\"sent_folder\":\"Sent\",\"steps\":[");
	buf_reset(&b);
	diag_report_text(&r, &b);
	T_CONTAINS(buf_str(&b), "Sent folder: Sent\n");
	T_CONTAINS(buf_str(&b), "verdict: ok\n");
	buf_free(&b);
	log = server_log(port);
	/* the greeting's capabilities were used; after login they are asked for */
	T_CHECK(strncmp(log, "a1 LOGIN ", 9) == 0);
	T_CONTAINS(log, "a2 CAPABILITY\na3 LIST \"\" \"*\"\na4 LOGOUT\n");
	free(log);
	diag_report_free(&r);

	/* no credentials: no LOGIN, no LIST; the Sent folder is unknown */
	free(t.user);
	t.user = NULL;
	probe(&t, DIAG_OK, &r);
	T_EQ_INT(r.sent_folder_found, -1);
	T_CHECK(step(&r, "Sent folder") == NULL);
	buf_init(&b, 1 << 16);
	diag_report_json(&r, &b);
	T_CONTAINS(buf_str(&b), "\"sent_folder_found\":null");
	buf_free(&b);
	diag_report_free(&r);
	diag_target_free(&t);

	/* a password that needs escaping, and a UTF-8 one as a literal */
	{
		static const struct script sc = { .greeting = "* OK ready\r\n", .caps = "IMAP4rev1",
			.expect = "LOGIN \"" USER "\" \"pa\\\"ss\\\\word\"" };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_NONE);
	t.user = xstrdup(USER);
	t.password = xstrdup("pa\"ss\\word");
	probe(&t, DIAG_OK, &r);
	diag_report_free(&r);
	diag_target_free(&t);
	{
		/* synchronising literal: the server's "+" first */
		static const struct script sc = { .greeting = "* OK ready\r\n", .caps = "IMAP4rev1",
			.expect = "LOGIN \"" USER "\" {11}p\xC3\xA4sswo\xCC\x88rd" };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_NONE);
	t.user = xstrdup(USER);
	t.password = xstrdup("p\xC3\xA4sswo\xCC\x88rd");
	probe(&t, DIAG_OK, &r);
	diag_report_free(&r);
	diag_target_free(&t);
	{
		/* LITERAL+: no waiting */
		static const struct script sc = { .greeting = "* OK ready\r\n", .caps = "IMAP4rev1 LITERAL+",
			.expect = "LOGIN {9+}j\xC3\xBCrgen@x {4+}p\xC3\xA4w" };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_NONE);
	t.user = xstrdup("j\xC3\xBCrgen@x");
	t.password = xstrdup("p\xC3\xA4w");
	probe(&t, DIAG_OK, &r);
	diag_report_free(&r);
	diag_target_free(&t);

	/* LOGINDISABLED, AUTH=PLAIN: AUTHENTICATE PLAIN with SASL-IR... */
	{
		static const struct script sc = { .greeting = "* OK ready\r\n",
			.caps = "IMAP4rev1 LOGINDISABLED AUTH=PLAIN SASL-IR",
			.expect = "AUTHENTICATE PLAIN AGFsaWNlQGV4YW1wbGUuY29tAHMzY3IzdC1QYTU1" };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_NONE);
	with_creds(&t);
	probe(&t, DIAG_OK, &r);
	T_CHECK(step(&r, "AUTHENTICATE PLAIN as " USER) != NULL);
	diag_report_free(&r);
	diag_target_free(&t);
	/* ... and without: the credentials after the server's "+" */
	{
		static const struct script sc = { .greeting = "* OK ready\r\n",
			.caps = "IMAP4rev1 LOGINDISABLED AUTH=PLAIN",
			.expect = "AUTHENTICATE PLAIN AGFsaWNlQGV4YW1wbGUuY29tAHMzY3IzdC1QYTU1" };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_NONE);
	with_creds(&t);
	probe(&t, DIAG_OK, &r);
	diag_report_free(&r);
	diag_target_free(&t);

	/* Dovecot's wrong password; the server echoes our line (redacted) */
	{
		static const struct script sc = { .greeting = GREET_CAPS,
			.login = "NO [AUTHENTICATIONFAILED] Authentication failed.", .echo = 1 };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_NONE);
	with_creds(&t);
	probe(&t, DIAG_AUTH_FAILED, &r);
	T_EQ_STR(r.hint, "user name or password wrong");
	T_CONTAINS(last_step(&r)->detail, "[AUTHENTICATIONFAILED]");
	T_CONTAINS(last_step(&r)->detail, "***");
	T_EQ_STR(last_step(&r)->name, "LOGIN");
	T_EQ_INT(r.sent_folder_found, -1);
	diag_report_free(&r);
	diag_target_free(&t);

	/* provider hints: application password, IMAP disabled, web login */
	{
		static const struct script sc = { .greeting = "* OK Gimap ready\r\n", .caps = CAPS_PLAIN,
			.login = "NO [ALERT] Application-specific password required: https://support.google.com/accounts/answer/185833 (Failure)" };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_NONE);
	with_creds(&t);
	probe(&t, DIAG_AUTH_FAILED, &r);
	T_CHECK(r.hint && strstr(r.hint, "application password"));
	T_CONTAINS(r.advice, "application password");
	diag_report_free(&r);
	diag_target_free(&t);
	{
		static const struct script sc = { .greeting = "* OK Gimap ready\r\n", .caps = CAPS_PLAIN,
			.login = "NO [ALERT] Your account is not enabled for IMAP use. Please visit your Gmail settings page and enable your account for IMAP access. (Failure)" };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_NONE);
	with_creds(&t);
	probe(&t, DIAG_AUTH_FAILED, &r);
	T_CHECK(r.hint && strstr(r.hint, "IMAP is disabled"));
	T_CONTAINS(r.advice, "Enable IMAP");
	diag_report_free(&r);
	diag_target_free(&t);
	{
		static const struct script sc = { .greeting = "* OK ready\r\n", .caps = CAPS_PLAIN,
			.login = "NO [ALERT] Please log in via your web browser: https://support.example/answer (Failure)" };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_NONE);
	with_creds(&t);
	probe(&t, DIAG_AUTH_FAILED, &r);
	T_CHECK(r.hint && strstr(r.hint, "web browser"));
	diag_report_free(&r);
	diag_target_free(&t);
	/* the login service is down: auth_failed, but the hint says it is not the password */
	{
		static const struct script sc = { .greeting = "* OK ready\r\n", .caps = CAPS_PLAIN,
			.login = "NO [UNAVAILABLE] Temporary authentication failure." };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_NONE);
	with_creds(&t);
	probe(&t, DIAG_AUTH_FAILED, &r);
	T_CHECK(r.hint && strstr(r.hint, "temporarily unavailable"));
	T_CONTAINS(r.advice, "try again later");
	diag_report_free(&r);
	diag_target_free(&t);
	/* a plain NO without a known cause: auth_failed, no hint */
	{
		static const struct script sc = { .greeting = "* OK ready\r\n", .caps = CAPS_PLAIN,
			.login = "NO LOGIN failed." };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_NONE);
	with_creds(&t);
	probe(&t, DIAG_AUTH_FAILED, &r);
	T_CHECK(r.hint == NULL);
	T_CONTAINS(r.advice, "user name");
	diag_report_free(&r);
	diag_target_free(&t);
	/* BYE and a closed connection instead of NO (some servers do) */
	{
		static const struct script sc = { .greeting = "* OK ready\r\n", .caps = CAPS_PLAIN,
			.untagged_login = "* BYE [AUTHENTICATIONFAILED] Invalid credentials, disconnecting\r\n",
			.close_after_login = 1 };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_NONE);
	with_creds(&t);
	probe(&t, DIAG_AUTH_FAILED, &r);
	T_CONTAINS(last_step(&r)->detail, "* BYE [AUTHENTICATIONFAILED]");
	diag_report_free(&r);
	diag_target_free(&t);

	/* PREAUTH: no login needed, the folders are listed */
	{
		static const struct script sc = { .greeting = "* PREAUTH [CAPABILITY IMAP4rev1] logged in as you\r\n" };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_NONE);
	probe(&t, DIAG_OK, &r);
	T_CHECK(step(&r, "login") != NULL);
	T_EQ_INT(r.sent_folder_found, 1);
	log = server_log(port);
	T_CHECK(strstr(log, "LOGIN") == NULL);
	free(log);
	diag_report_free(&r);
	diag_target_free(&t);
}

static void
test_sent_folder(void)
{
	struct diag_target t;
	struct diag_report r;
	int port;
	char *log;

	/* no Sent folder: a failed step, the verdict stays ok, the advice says */
	{
		static const struct script sc = { .greeting = "* OK ready\r\n", .caps = CAPS_PLAIN,
			.list = "* LIST (\\HasNoChildren) \"/\" INBOX\r\n* LIST (\\HasNoChildren) \"/\" Drafts\r\n"
			    "* LIST (\\HasNoChildren) \"/\" \"Sent-ish things\"\r\n" };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_NONE);
	with_creds(&t);
	probe(&t, DIAG_OK, &r);
	T_EQ_INT(r.sent_folder_found, 0);
	T_CHECK(r.sent_folder == NULL);
	T_CHECK(step(&r, "Sent folder") && !step(&r, "Sent folder")->ok);
	T_CONTAINS(step(&r, "Sent folder")->detail, "among 3 folders");
	T_CHECK(r.advice && strstr(r.advice, "Sent folder"));
	{
		struct buf b;
		buf_init(&b, 1 << 16);
		diag_report_text(&r, &b);
		T_CONTAINS(buf_str(&b), "Sent folder: none found");
		buf_free(&b);
	}
	diag_report_free(&r);
	diag_target_free(&t);

	/* literals in the LIST answer: a name sent as a literal, a big one skipped */
	{
		static struct script sc = { .greeting = "* OK ready\r\n", .caps = CAPS_PLAIN };
		static char list[12000];
		char big[6001];
		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		snprintf(list, sizeof(list),
		    "* LIST (\\HasNoChildren) \"/\" {6000}\r\n%s\r\n"
		    "* LIST (\\HasNoChildren) \".\" {15}\r\nINBOX.\"Sent\"\\ x\r\n"
		    "* LIST (\\HasNoChildren) \".\" {16}\r\nINBOX.Sent Items\r\n", big);
		sc.list = list;
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_NONE);
	with_creds(&t);
	probe(&t, DIAG_OK, &r);
	T_EQ_INT(r.sent_folder_found, 1);
	T_EQ_STR(r.sent_folder, "INBOX.Sent Items");
	T_CONTAINS(step(&r, "Sent folder")->detail, "; 3 folders");
	diag_report_free(&r);
	diag_target_free(&t);

	/* \Sent wins over a name; SPECIAL-USE + LIST-EXTENDED: RETURN (SPECIAL-USE) */
	{
		static const struct script sc = { .greeting = "* OK ready\r\n",
			.caps = "IMAP4rev1 LIST-EXTENDED SPECIAL-USE",
			.list = "* LIST (\\HasNoChildren) \"/\" Sent\r\n"
			    "* LIST (\\HasNoChildren \\Sent) \"/\" \"Postausgang/Kopien\"\r\n" };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_NONE);
	with_creds(&t);
	probe(&t, DIAG_OK, &r);
	T_EQ_STR(r.sent_folder, "Postausgang/Kopien");
	T_CONTAINS(step(&r, "Sent folder")->detail, "(\\Sent)");
	log = server_log(port);
	T_CONTAINS(log, "LIST \"\" \"*\" RETURN (SPECIAL-USE)");
	free(log);
	diag_report_free(&r);
	diag_target_free(&t);

	/* SPECIAL-USE learnt from the login's [CAPABILITY] code (Dovecot does so) */
	{
		static const struct script sc = { .greeting = "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n",
			.login = "OK [CAPABILITY IMAP4rev1 LIST-EXTENDED SPECIAL-USE] Logged in",
			.list = "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent Items\"\r\n" };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_NONE);
	with_creds(&t);
	probe(&t, DIAG_OK, &r);
	T_CHECK(step(&r, "CAPABILITY (after login, announced)") != NULL);
	T_EQ_STR(r.sent_folder, "Sent Items");
	log = server_log(port);
	T_CONTAINS(log, "a2 LIST \"\" \"*\" RETURN (SPECIAL-USE)\na3 LOGOUT");
	free(log);
	diag_report_free(&r);
	diag_target_free(&t);

	/* a localised name in modified UTF-7, "." as the delimiter */
	{
		static const struct script sc = { .greeting = "* OK ready\r\n", .caps = CAPS_PLAIN,
			.list = "* LIST (\\HasChildren) \".\" INBOX\r\n"
			    "* LIST (\\HasNoChildren) \".\" \"INBOX.&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-\"\r\n" };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_NONE);
	with_creds(&t);
	probe(&t, DIAG_OK, &r);
	T_EQ_STR(r.sent_folder, "INBOX.\xD0\x9E\xD1\x82\xD0\xBF\xD1\x80\xD0\xB0\xD0\xB2\xD0\xBB\xD0\xB5\xD0\xBD\xD0\xBD\xD1\x8B\xD0\xB5");
	diag_report_free(&r);
	diag_target_free(&t);

	/* Wysłane (Polish) and a \Noselect "Sent" that cannot hold mail */
	{
		static const struct script sc = { .greeting = "* OK ready\r\n", .caps = CAPS_PLAIN,
			.list = "* LIST (\\Noselect \\HasChildren) \"/\" Sent\r\n"
			    "* LIST (\\HasNoChildren) \"/\" \"Wys&AUI-ane\"\r\n" };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_NONE);
	with_creds(&t);
	probe(&t, DIAG_OK, &r);
	T_EQ_STR(r.sent_folder, "Wys\xC5\x82" "ane");
	diag_report_free(&r);
	diag_target_free(&t);
}

static void
test_tls(void)
{
	struct diag_target t;
	struct diag_report r;
	struct script *sc;
	int port_good, port_expired, port_other, port_starttls;
	char *log;
	size_t i;

	make_cert("good", "imap.test", 1, -3600, 30L * 86400 + 3600);
	make_cert("expired", "imap.test", 1, -10L * 86400, -86400);
	make_cert("other", "other.test", 0, -3600, 30L * 86400);

	sc = xcalloc(4, sizeof(*sc));
	sc[0] = (struct script){ .greeting = "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] imaps ready\r\n",
		.implicit_tls = 1, .cert = tpath("good", "crt"), .key = tpath("good", "key"),
		.expect = "LOGIN \"" USER "\" \"" PASSWORD "\"" };
	port_good = server_start(&sc[0]);
	sc[1] = sc[0];
	sc[1].cert = tpath("expired", "crt");
	sc[1].key = tpath("expired", "key");
	port_expired = server_start(&sc[1]);
	sc[2] = sc[0];
	sc[2].cert = tpath("other", "crt");
	sc[2].key = tpath("other", "key");
	port_other = server_start(&sc[2]);
	/* LOGINDISABLED before TLS only, as Dovecot does */
	sc[3] = (struct script){ .greeting = "* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n",
		.caps_tls = "IMAP4rev1 AUTH=PLAIN", .starttls = 1,
		.cert = tpath("good", "crt"), .key = tpath("good", "key"),
		.expect = "LOGIN \"" USER "\" \"" PASSWORD "\"" };
	port_starttls = server_start(&sc[3]);

	/* untrusted without the CA file */
	target_init(&t, port_good, DIAG_SEC_TLS);
	probe(&t, DIAG_CERT_UNTRUSTED, &r);
	T_CHECK(r.tls.used && !r.tls.trusted);
	diag_report_free(&r);

	/* implicit TLS, trusted: the whole way */
	t.ca_file = tpath("good", "crt");
	with_creds(&t);
	probe(&t, DIAG_OK, &r);
	T_CHECK(r.tls.used && r.tls.trusted && r.tls.hostname_ok);
	T_EQ_INT(r.sent_folder_found, 1);
	T_CHECK(step(&r, "LOGIN as " USER) != NULL);
	diag_report_free(&r);

	/* STARTTLS against the implicit-TLS port */
	t.security = DIAG_SEC_STARTTLS;
	probe(&t, DIAG_TLS_MODE_MISMATCH, &r);
	T_CHECK(step(&r, "TLS probe") != NULL);
	T_CONTAINS(r.advice, "993");
	diag_report_free(&r);
	diag_target_free(&t);

	/* STARTTLS: upgrade, CAPABILITY again (LOGINDISABLED gone), LOGIN */
	target_init(&t, port_starttls, DIAG_SEC_STARTTLS);
	t.ca_file = tpath("good", "crt");
	with_creds(&t);
	probe(&t, DIAG_OK, &r);
	T_CHECK(r.tls.used && r.tls.trusted);
	T_CHECK(step(&r, "STARTTLS") && step(&r, "STARTTLS")->ok);
	T_CHECK(step(&r, "CAPABILITY (after STARTTLS)") != NULL);
	T_CHECK(step(&r, "LOGIN as " USER) != NULL);
	log = server_log(port_starttls);
	T_CONTAINS(log, "a1 STARTTLS\na2 CAPABILITY\na3 LOGIN");
	free(log);
	diag_report_free(&r);
	diag_target_free(&t);

	/* expired; another name */
	target_init(&t, port_expired, DIAG_SEC_TLS);
	t.ca_file = tpath("expired", "crt");
	with_creds(&t);
	probe(&t, DIAG_CERT_EXPIRED, &r);
	T_CHECK(r.tls.days_to_expiry < 0);
	diag_report_free(&r);
	diag_target_free(&t);
	target_init(&t, port_other, DIAG_SEC_TLS);
	t.ca_file = tpath("other", "crt");
	with_creds(&t);
	probe(&t, DIAG_CERT_HOSTNAME_MISMATCH, &r);
	T_CHECK(r.tls.trusted && !r.tls.hostname_ok);
	diag_report_free(&r);
	diag_target_free(&t);
	/* no certificate problem lets the password out */
	log = server_log(port_expired);
	T_CHECK(strstr(log, "LOGIN") == NULL);
	free(log);
	log = server_log(port_other);
	T_CHECK(strstr(log, "LOGIN") == NULL);
	free(log);

	for (i = 0; i < 4; i++) {
		free((char *)sc[i].cert);
		free((char *)sc[i].key);
	}
	free(sc);
}

int
main(void)
{
	int i;
	char cmd[128];

	signal(SIGPIPE, SIG_IGN);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_diag_imap.XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 2;
	}
	test_faults();
	test_login();
	test_sent_folder();
	test_tls();

	for (i = 0; i < nchildren; i++) {
		kill(children[i], SIGKILL);
		waitpid(children[i], NULL, 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
	return t_done();
}
