/*
 * test_diag - the SMTP probe against tiny fault servers started here.
 *
 * Each server is a forked child that accepts on 127.0.0.1 (port 0, the
 * listening socket made before fork so the probe cannot race it) and
 * follows a script: greeting (or silence), EHLO reply, answers to AUTH,
 * MAIL and RCPT, optional TLS (implicit or STARTTLS) with a certificate
 * made here with GnuTLS (self-signed; valid, expired, or for another
 * name).  Every child is killed by its PID at the end.
 *
 * Covered verdicts: ok (plain, implicit TLS, STARTTLS), connect_refused,
 * greeting_timeout (bounded), protocol_error (garbage greeting; address not
 * allowed), starttls_unavailable, auth_unavailable, auth_failed (+ hints),
 * sender_rejected, relay_denied, tls_mode_mismatch (both directions),
 * cert_untrusted, cert_expired, cert_hostname_mismatch.  Plus the CIDR
 * policy, JSON/text output and that the password never appears.
 *
 * Refused envelopes: diag_smtp_refusal() on the real servers' replies
 * (Postfix, Exchange, Gmail, Exim, Sendmail, qmail), and the same replies
 * from a fault server at RCPT TO and, where a server could send them
 * there, at MAIL FROM: sender_rejected (with the login's mismatch named),
 * relay_denied, or the recipient refused.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/stat.h>
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

struct script {
	const char *greeting;	/* sent as is; NULL: silent */
	const char *ehlo;	/* full reply to EHLO */
	const char *ehlo_tls;	/* ... after STARTTLS (NULL: the same) */
	int	    stall_rcpt;	/* never answer RCPT */
	const char *auth;	/* final reply to AUTH */
	int	    echo_auth;	/* append the client's AUTH line to the reply */
	const char *mail;
	const char *rcpt;
	int	    implicit_tls;
	int	    starttls;	/* answer STARTTLS with 220 and go TLS */
	const char *cert, *key;	/* PEM files for TLS */
};

static pid_t children[64];
static int nchildren;

/* ---------------------------------------------------------- fake server */

struct sconn {
	int fd;
	gnutls_session_t s;
	char buf[4096];
	size_t len;
};

static void
s_write(struct sconn *c, const char *str)
{
	size_t len = strlen(str);

	if (c->s)
		gnutls_record_send(c->s, str, len);
	else if (write(c->fd, str, len) < 0)
		_exit(0);
}

/* One line without CRLF into out; -1 at EOF. */
static int
s_line(struct sconn *c, char *out, size_t outlen)
{
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		ssize_t n;
		if (nl) {
			size_t l = (size_t)(nl - c->buf);
			size_t cp = l < outlen - 1 ? l : outlen - 1;
			memcpy(out, c->buf, cp);
			out[cp] = '\0';
			if (cp && out[cp - 1] == '\r')
				out[cp - 1] = '\0';
			c->len -= l + 1;
			memmove(c->buf, nl + 1, c->len);
			return 0;
		}
		if (c->len == sizeof(c->buf))
			return -1;
		n = c->s ? gnutls_record_recv(c->s, c->buf + c->len, sizeof(c->buf) - c->len)
		    : read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
		if (n <= 0)
			return -1;
		c->len += (size_t)n;
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
serve_one(int fd, const struct script *sc)
{
	struct sconn c;
	char line[2048], out[4096];

	memset(&c, 0, sizeof(c));
	c.fd = fd;
	if (sc->implicit_tls && s_tls(&c, sc) < 0)
		return;
	if (!sc->greeting) {
		while (read(fd, line, sizeof(line)) > 0)
			;
		return;
	}
	s_write(&c, sc->greeting);
	while (s_line(&c, line, sizeof(line)) == 0) {
		if (!strncasecmp(line, "EHLO", 4) || !strncasecmp(line, "HELO", 4))
			s_write(&c, c.s && sc->ehlo_tls ? sc->ehlo_tls : sc->ehlo ? sc->ehlo : "250 fake\r\n");
		else if (!strcasecmp(line, "STARTTLS")) {
			if (!sc->starttls) {
				s_write(&c, "454 4.7.0 TLS not available\r\n");
				continue;
			}
			s_write(&c, "220 2.0.0 Ready to start TLS\r\n");
			c.len = 0;
			if (s_tls(&c, sc) < 0)
				return;
		} else if (!strcasecmp(line, "AUTH LOGIN")) {
			s_write(&c, "334 VXNlcm5hbWU6\r\n");
			if (s_line(&c, line, sizeof(line)) < 0)
				return;
			s_write(&c, "334 UGFzc3dvcmQ6\r\n");
			if (s_line(&c, line, sizeof(line)) < 0)
				return;
			snprintf(out, sizeof(out), "%s%s%s\r\n", sc->auth ? sc->auth : "235 2.7.0 ok",
			    sc->echo_auth ? " " : "", sc->echo_auth ? line : "");
			s_write(&c, out);
		} else if (!strncasecmp(line, "AUTH ", 5)) {
			snprintf(out, sizeof(out), "%s%s%s\r\n", sc->auth ? sc->auth : "235 2.7.0 ok",
			    sc->echo_auth ? " " : "", sc->echo_auth ? line : "");
			s_write(&c, out);
		} else if (!strncasecmp(line, "MAIL FROM:", 10))
			s_write(&c, sc->mail ? sc->mail : "250 2.1.0 ok\r\n");
		else if (!strncasecmp(line, "RCPT TO:", 8) && sc->stall_rcpt)
			pause();
		else if (!strncasecmp(line, "RCPT TO:", 8))
			s_write(&c, sc->rcpt ? sc->rcpt : "250 2.1.5 ok\r\n");
		else if (!strcasecmp(line, "QUIT")) {
			s_write(&c, "221 2.0.0 bye\r\n");
			break;
		} else
			s_write(&c, "500 5.5.2 what?\r\n");
	}
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
			serve_one(fd, sc);
			close(fd);
		}
	}
	close(lfd);
	children[nchildren++] = pid;
	return port;
}

/* ---------------------------------------------------------------- probes */

static char *allow_lo[] = { (char *)"127.0.0.0/8" };

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
	t->allow[0] = xstrdup(allow_lo[0]);
	t->allow_count = 1;
}

static void
with_creds(struct diag_target *t)
{
	t->user = xstrdup("alice@example.com");
	t->password = xstrdup(PASSWORD);
}

/* Runs the probe; checks the verdict and that no secret leaks; returns the
 * JSON (caller frees) when want_json. */
static void
probe(struct diag_target *t, enum diag_verdict want, struct diag_report *r)
{
	struct buf j, x;

	diag_smtp(t, r);
	T_EQ_STR(diag_verdict_name(r->verdict), diag_verdict_name(want));
	buf_init(&j, 1 << 20);
	buf_init(&x, 1 << 20);
	diag_report_json(r, &j);
	diag_report_text(r, &x);
	T_CHECK(strstr(buf_str(&j), PASSWORD) == NULL);
	T_CHECK(strstr(buf_str(&x), PASSWORD) == NULL);
	/* base64 of "\0alice@example.com\0s3cr3t-Pa55" and of the password */
	T_CHECK(strstr(buf_str(&j), "AGFsaWNlQGV4YW1wbGUuY29tAHMzY3IzdC1QYTU1") == NULL);
	T_CHECK(strstr(buf_str(&j), "czNjcjN0LVBhNTU=") == NULL);
	T_CONTAINS(buf_str(&j), "\"verdict\":");
	if (r->verdict != want || getenv("DIAG_VERBOSE"))
		fprintf(stderr, "%s\n%s\n", buf_str(&x), buf_str(&j));
	buf_free(&j);
	buf_free(&x);
}

static const char *GOOD_EHLO = "250-mx.test\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n";

/* diag_addr_allowed on an IPv6 address written as text. */
static int
allowed6(const char *addr, char **allow, size_t n)
{
	struct sockaddr_in6 sin6;

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	if (inet_pton(AF_INET6, addr, &sin6.sin6_addr) != 1)
		return -1;
	return diag_addr_allowed((struct sockaddr *)&sin6, allow, n);
}

/*
 * IPv6 addresses that stand for an IPv4 host are judged as that host:
 * IPv4-mapped, IPv4-compatible, SIIT's IPv4-translated and the NAT64
 * well-known prefix.  Those whose IPv4 address cannot be known, or that
 * go through relays (local-use NAT64 64:ff9b:1::/48, 6to4, Teredo), and
 * everything outside global unicast 2000::/3, are refused unless an allow
 * entry names the IPv6 address itself.
 */
static void
test_addr_embedded(void)
{
	char *lo[] = { (char *)"127.0.0.0/8" };
	char *ten[] = { (char *)"10.0.0.0/8" };
	char *mapped_ten[] = { (char *)"::ffff:10.0.0.0/104" };
	char *local64[] = { (char *)"64:ff9b:1::/48" };
	static const struct {
		const char	*addr;
		int		 plain;	/* no allow list */
		int		 lo;	/* ProbeAllow 127.0.0.0/8 */
	} cases[] = {
		/* IPv4-mapped ::ffff:0:0/96 */
		{ "::ffff:127.0.0.1", 0, 1 },
		{ "::ffff:10.0.0.1", 0, 0 },
		{ "::ffff:169.254.169.254", 0, 0 },
		{ "::ffff:0.0.0.0", 0, 0 },
		{ "::ffff:8.8.8.8", 1, 1 },
		/* IPv4-translated ::ffff:0:0:0/96 (SIIT) */
		{ "::ffff:0:7f00:1", 0, 1 },
		{ "::ffff:0:a00:1", 0, 0 },
		{ "::ffff:0:808:808", 1, 1 },
		/* IPv4-compatible ::/96 (deprecated); :: and ::1 are themselves */
		{ "::127.0.0.1", 0, 1 },
		{ "::10.0.0.1", 0, 0 },
		{ "::8.8.8.8", 1, 1 },
		{ "::", 0, 0 },
		{ "::1", 0, 0 },
		/* NAT64 well-known prefix 64:ff9b::/96: the translator goes to
		 * the IPv4 address in the last 32 bits */
		{ "64:ff9b::7f00:1", 0, 1 },
		{ "64:ff9b::a00:1", 0, 0 },
		{ "64:ff9b::c0a8:101", 0, 0 },
		{ "64:ff9b::a9fe:a9fe", 0, 0 },
		{ "64:ff9b::808:808", 1, 1 },
		/* beyond the /96 it is no NAT64 address: outside 2000::/3 */
		{ "64:ff9b::1:808:808", 0, 0 },
		/* local-use NAT64 64:ff9b:1::/48 (RFC 8215), wherever its IPv4 sits */
		{ "64:ff9b:1::a00:1", 0, 0 },
		{ "64:ff9b:1::808:808", 0, 0 },
		{ "64:ff9b:1:7f00:1::", 0, 0 },
		{ "64:ff9b:1:ffff::7f00:1", 0, 0 },
		/* 6to4 2002::/16, private or public inside */
		{ "2002:7f00:1::1", 0, 0 },
		{ "2002:a00:1::1", 0, 0 },
		{ "2002:808:808::1", 0, 0 },
		/* Teredo 2001::/32 and the rest of 2001::/23 */
		{ "2001:0:4136:e378:8000:63bf:3fff:fdd2", 0, 0 },
		{ "2001:2::1", 0, 0 },
		{ "2001:10::1", 0, 0 },
		/* documentation, discard, unique local, site-local */
		{ "2001:db8::25", 0, 0 },
		{ "3fff::25", 0, 0 },
		{ "100::1", 0, 0 },
		{ "fc00::1", 0, 0 },
		{ "fec0::1", 0, 0 },
		/* not global unicast: outside 2000::/3 */
		{ "4000::1", 0, 0 },
		{ "5f00::1", 0, 0 },
		{ "1::1", 0, 0 },
		/* public */
		{ "2001:200::1", 1, 1 },
		{ "2a00:1450:4001::1b", 1, 1 },
		{ "2606:4700::1111", 1, 1 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int plain = allowed6(cases[i].addr, NULL, 0), with_lo = allowed6(cases[i].addr, lo, 1);

		if (plain != cases[i].plain || with_lo != cases[i].lo)
			fprintf(stderr, "  address %s: %d, with 127.0.0.0/8 allowed %d\n",
			    cases[i].addr, plain, with_lo);
		T_EQ_INT(plain, cases[i].plain);
		T_EQ_INT(with_lo, cases[i].lo);
	}
	/* an allow entry matches either form of the address */
	T_EQ_INT(allowed6("::ffff:10.1.2.3", ten, 1), 1);
	T_EQ_INT(allowed6("64:ff9b::a01:203", ten, 1), 1);
	T_EQ_INT(allowed6("::ffff:10.1.2.3", mapped_ten, 1), 1);
	T_EQ_INT(allowed6("64:ff9b::a01:203", mapped_ten, 1), 1);
	T_EQ_INT(allowed6("::ffff:192.168.1.1", mapped_ten, 1), 0);
	/* 6to4 and local-use NAT64 stay refused under an IPv4 allow entry,
	 * and pass only one that names them */
	T_EQ_INT(allowed6("2002:a01:203::1", ten, 1), 0);
	T_EQ_INT(allowed6("64:ff9b:1::a01:203", ten, 1), 0);
	T_EQ_INT(allowed6("64:ff9b:1::a01:203", local64, 1), 1);
}

static void
test_cidr(void)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	char *allow[] = { (char *)"10.1.0.0/16", (char *)"bogus" };

	T_EQ_INT(diag_cidr_match("127.0.0.0/8", "127.1.2.3"), 1);
	T_EQ_INT(diag_cidr_match("127.0.0.0/8", "128.0.0.1"), 0);
	T_EQ_INT(diag_cidr_match("10.0.0.0/9", "10.127.255.255"), 1);
	T_EQ_INT(diag_cidr_match("10.0.0.0/9", "10.128.0.0"), 0);
	T_EQ_INT(diag_cidr_match("::1", "::1"), 1);
	T_EQ_INT(diag_cidr_match("fe80::/10", "febf::1"), 1);
	T_EQ_INT(diag_cidr_match("fe80::/10", "fec0::1"), 0);
	T_EQ_INT(diag_cidr_match("0.0.0.0/0", "8.8.8.8"), 1);
	T_EQ_INT(diag_cidr_match("1.2.3.4/33", "1.2.3.4"), -1);
	T_EQ_INT(diag_cidr_match("x/8", "1.2.3.4"), -1);
	/* an IPv4-mapped address, or CIDR, is the IPv4 one it maps */
	T_EQ_INT(diag_cidr_match("10.0.0.0/8", "::ffff:10.0.0.1"), 1);
	T_EQ_INT(diag_cidr_match("10.0.0.0/8", "::ffff:11.0.0.1"), 0);
	T_EQ_INT(diag_cidr_match("::ffff:10.0.0.0/104", "10.9.9.9"), 1);
	T_EQ_INT(diag_cidr_match("::ffff:10.0.0.0/104", "::ffff:10.9.9.9"), 1);
	T_EQ_INT(diag_cidr_match("::ffff:10.0.0.0/104", "11.0.0.1"), 0);
	T_EQ_INT(diag_cidr_match("::/0", "10.0.0.1"), 0);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	inet_pton(AF_INET, "8.8.8.8", &sin.sin_addr);
	T_EQ_INT(diag_addr_allowed((struct sockaddr *)&sin, NULL, 0), 1);
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	T_EQ_INT(diag_addr_allowed((struct sockaddr *)&sin, NULL, 0), 0);
	T_EQ_INT(diag_addr_allowed((struct sockaddr *)&sin, allow_lo, 1), 1);
	inet_pton(AF_INET, "10.1.2.3", &sin.sin_addr);
	T_EQ_INT(diag_addr_allowed((struct sockaddr *)&sin, NULL, 0), 0);
	T_EQ_INT(diag_addr_allowed((struct sockaddr *)&sin, allow, 2), 1);
	inet_pton(AF_INET, "10.2.2.3", &sin.sin_addr);
	T_EQ_INT(diag_addr_allowed((struct sockaddr *)&sin, allow, 2), 0);
	inet_pton(AF_INET, "192.168.1.1", &sin.sin_addr);
	T_EQ_INT(diag_addr_allowed((struct sockaddr *)&sin, NULL, 0), 0);
	inet_pton(AF_INET, "169.254.169.254", &sin.sin_addr);
	T_EQ_INT(diag_addr_allowed((struct sockaddr *)&sin, NULL, 0), 0);
	inet_pton(AF_INET, "224.0.0.1", &sin.sin_addr);
	T_EQ_INT(diag_addr_allowed((struct sockaddr *)&sin, NULL, 0), 0);

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::1", &sin6.sin6_addr);
	T_EQ_INT(diag_addr_allowed((struct sockaddr *)&sin6, NULL, 0), 0);
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &sin6.sin6_addr);
	T_EQ_INT(diag_addr_allowed((struct sockaddr *)&sin6, NULL, 0), 0);
	T_EQ_INT(diag_addr_allowed((struct sockaddr *)&sin6, allow_lo, 1), 1);
	inet_pton(AF_INET6, "fd00::1", &sin6.sin6_addr);
	T_EQ_INT(diag_addr_allowed((struct sockaddr *)&sin6, NULL, 0), 0);
	inet_pton(AF_INET6, "fe80::1", &sin6.sin6_addr);
	T_EQ_INT(diag_addr_allowed((struct sockaddr *)&sin6, NULL, 0), 0);
	inet_pton(AF_INET6, "ff02::1", &sin6.sin6_addr);
	T_EQ_INT(diag_addr_allowed((struct sockaddr *)&sin6, NULL, 0), 0);
	inet_pton(AF_INET6, "2a00:1450:4001::1", &sin6.sin6_addr);
	T_EQ_INT(diag_addr_allowed((struct sockaddr *)&sin6, NULL, 0), 1);
	test_addr_embedded();
}

static void
test_names(void)
{
	enum diag_security s;
	int i;

	T_EQ_STR(diag_verdict_name(DIAG_OK), "ok");
	T_EQ_STR(diag_verdict_name(DIAG_CERT_HOSTNAME_MISMATCH), "cert_hostname_mismatch");
	T_EQ_STR(diag_verdict_name(DIAG_PROTOCOL_ERROR), "protocol_error");
	for (i = 0; i < DIAG_VERDICT_COUNT; i++)
		T_CHECK(diag_verdict_name((enum diag_verdict)i)[0] != '\0');
	T_EQ_INT(diag_security_parse("STARTTLS", &s), 0);
	T_EQ_INT(s, DIAG_SEC_STARTTLS);
	T_EQ_INT(diag_security_parse("ssl", &s), 0);
	T_EQ_INT(s, DIAG_SEC_TLS);
	T_EQ_INT(diag_security_parse("maybe", &s), -1);
}

static void
test_password_file(void)
{
	struct diag_target t;
	struct buf err;
	char path[128];
	FILE *f;

	memset(&t, 0, sizeof(t));
	buf_init(&err, 1024);
	snprintf(path, sizeof(path), "%s/pw", tmpdir);
	f = fopen(path, "w");
	fputs(PASSWORD "\n", f);
	fclose(f);
	chmod(path, 0644);
	T_EQ_INT(diag_target_password_file(&t, path, &err), -1);
	T_CONTAINS(buf_str(&err), "0600");
	T_CHECK(t.password == NULL);
	chmod(path, 0600);
	T_EQ_INT(diag_target_password_file(&t, path, &err), 0);
	T_EQ_STR(t.password, PASSWORD);
	diag_target_free(&t);
	T_CHECK(t.password == NULL);
	buf_free(&err);
}

static void
test_plain_servers(void)
{
	struct diag_target t;
	struct diag_report r;
	struct buf b;
	struct timespec a, z;
	long ms;
	int port;

	/* closed port */
	target_init(&t, closed_port(), DIAG_SEC_NONE);
	probe(&t, DIAG_CONNECT_REFUSED, &r);
	diag_report_free(&r);
	diag_target_free(&t);

	/* silent server, 500 ms for everything */
	{
		static const struct script sc = { .greeting = NULL };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_STARTTLS);
	t.timeout_ms = 500;
	clock_gettime(CLOCK_MONOTONIC, &a);
	probe(&t, DIAG_GREETING_TIMEOUT, &r);
	clock_gettime(CLOCK_MONOTONIC, &z);
	ms = (z.tv_sec - a.tv_sec) * 1000 + (z.tv_nsec - a.tv_nsec) / 1000000;
	T_CHECK(ms >= 300 && ms < 900);
	T_CHECK(r.duration_ms < 900);
	diag_report_free(&r);
	diag_target_free(&t);

	/* silent server, implicit TLS: nothing answers the ClientHello either */
	target_init(&t, port, DIAG_SEC_TLS);
	t.timeout_ms = 500;
	probe(&t, DIAG_GREETING_TIMEOUT, &r);
	T_CHECK(r.duration_ms < 900);
	diag_report_free(&r);
	diag_target_free(&t);

	/* garbage greeting */
	{
		static const struct script sc = { .greeting = "HTTP/1.1 400 Bad Request\r\n\r\n" };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_NONE);
	probe(&t, DIAG_PROTOCOL_ERROR, &r);
	T_CHECK(r.step_count >= 3);
	T_CONTAINS(r.steps[r.step_count - 1].detail, "HTTP/1.1 400");
	diag_report_free(&r);
	diag_target_free(&t);

	/* 554 greeting is not 220 */
	{
		static const struct script sc = { .greeting = "554 5.7.1 You are blocked\r\n" };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_NONE);
	probe(&t, DIAG_PROTOCOL_ERROR, &r);
	diag_report_free(&r);
	diag_target_free(&t);

	/* plain server without STARTTLS, starttls asked */
	{
		static const struct script sc = { .greeting = "220 mx.test ESMTP\r\n",
			.ehlo = "250-mx.test\r\n250 AUTH PLAIN\r\n" };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_STARTTLS);
	probe(&t, DIAG_STARTTLS_UNAVAILABLE, &r);
	diag_report_free(&r);
	diag_target_free(&t);

	/* no AUTH offered, credentials given (AUTH only after STARTTLS) */
	{
		static const struct script sc = { .greeting = "220 mx.test ESMTP\r\n",
			.ehlo = "250-mx.test\r\n250 STARTTLS\r\n" };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_NONE);
	with_creds(&t);
	probe(&t, DIAG_AUTH_UNAVAILABLE, &r);
	T_CONTAINS(r.advice, "STARTTLS");
	diag_report_free(&r);
	diag_target_free(&t);

	/* AUTH 535 with an application-password text; the server echoes our line */
	{
		static const struct script sc = { .greeting = "220 smtp.gmail.test ESMTP\r\n",
			.ehlo = "250-smtp.test\r\n250-AUTH LOGIN PLAIN XOAUTH2\r\n250 SIZE 100\r\n",
			.auth = "535-5.7.8 Username and Password not accepted. Application-specific password required.\r\n535 5.7.8 https://support.example/answer",
			.echo_auth = 1 };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_NONE);
	with_creds(&t);
	probe(&t, DIAG_AUTH_FAILED, &r);
	T_CHECK(r.hint != NULL);
	if (r.hint)
		T_CONTAINS(r.hint, "application password");
	buf_init(&b, 1 << 16);
	diag_report_text(&r, &b);
	T_CONTAINS(buf_str(&b), "\xE2\x9C\x97 AUTH PLAIN: 535-5.7.8");
	T_CONTAINS(buf_str(&b), "***");
	T_CONTAINS(buf_str(&b), "advice: Create an application password");
	buf_free(&b);
	diag_report_free(&r);
	diag_target_free(&t);

	/* AUTH LOGIN only, Microsoft's SMTP AUTH disabled; echo of the password line */
	{
		static const struct script sc = { .greeting = "220 outlook.test ESMTP\r\n",
			.ehlo = "250-outlook.test\r\n250 AUTH LOGIN\r\n",
			.auth = "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.",
			.echo_auth = 1 };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_NONE);
	with_creds(&t);
	probe(&t, DIAG_AUTH_FAILED, &r);
	T_CHECK(r.hint && strstr(r.hint, "SMTP AUTH is disabled"));
	diag_report_free(&r);
	diag_target_free(&t);

	/* MAIL FROM 553 */
	{
		static const struct script sc = { .greeting = "220 mx.test ESMTP\r\n",
			.ehlo = "250-mx.test\r\n250 AUTH PLAIN LOGIN\r\n",
			.mail = "553 5.7.1 <bob@other.test>: Sender address rejected: not owned by user alice\r\n" };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_NONE);
	with_creds(&t);
	t.mail_from = xstrdup("bob@other.test");
	t.rcpt = xstrdup("probe@example.net");
	probe(&t, DIAG_SENDER_REJECTED, &r);
	T_CONTAINS(r.steps[r.step_count - 1].detail, "553 5.7.1");
	diag_report_free(&r);
	diag_target_free(&t);

	/* RCPT 554 5.7.1 relay access denied (no credentials) */
	{
		static const struct script sc = { .greeting = "220 mx.test ESMTP\r\n",
			.ehlo = "250-mx.test\r\n250 8BITMIME\r\n",
			.rcpt = "554 5.7.1 <probe@example.net>: Relay access denied\r\n" };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_NONE);
	t.mail_from = xstrdup("alice@example.com");
	t.rcpt = xstrdup("probe@example.net");
	probe(&t, DIAG_RELAY_DENIED, &r);
	diag_report_free(&r);
	diag_target_free(&t);

	/* only CRAM-MD5 offered: this probe speaks PLAIN and LOGIN */
	{
		static const struct script sc = { .greeting = "220 mx.test ESMTP\r\n",
			.ehlo = "250-mx.test\r\n250 AUTH CRAM-MD5\r\n" };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_NONE);
	with_creds(&t);
	probe(&t, DIAG_AUTH_UNAVAILABLE, &r);
	diag_report_free(&r);
	diag_target_free(&t);

	/* MAIL FROM 530 (no credentials given): sender_rejected, advice to authenticate */
	{
		static const struct script sc = { .greeting = "220 mx.test ESMTP\r\n",
			.mail = "530 5.7.0 Authentication required\r\n" };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_NONE);
	t.mail_from = xstrdup("alice@example.com");
	probe(&t, DIAG_SENDER_REJECTED, &r);
	T_CONTAINS(r.advice, "authentication");
	diag_report_free(&r);
	diag_target_free(&t);

	/* RCPT 550 with relay wording (Exchange) vs an unknown user */
	{
		static const struct script sc = { .greeting = "220 mx.test ESMTP\r\n",
			.rcpt = "550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain\r\n" };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_NONE);
	t.mail_from = xstrdup("alice@example.com");
	t.rcpt = xstrdup("probe@example.net");
	probe(&t, DIAG_RELAY_DENIED, &r);
	diag_report_free(&r);
	diag_target_free(&t);
	{
		static const struct script sc = { .greeting = "220 mx.test ESMTP\r\n",
			.rcpt = "550 5.1.1 <probe@example.net>: Recipient address rejected: User unknown\r\n" };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_NONE);
	t.mail_from = xstrdup("alice@example.com");
	t.rcpt = xstrdup("probe@example.net");
	probe(&t, DIAG_PROTOCOL_ERROR, &r);
	T_CONTAINS(r.steps[r.step_count - 1].detail, "User unknown");
	diag_report_free(&r);
	diag_target_free(&t);

	/* a server that stops answering at RCPT: the whole call stays bounded */
	{
		static const struct script sc = { .greeting = "220 mx.test ESMTP\r\n", .stall_rcpt = 1 };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_NONE);
	t.timeout_ms = 700;
	t.mail_from = xstrdup("alice@example.com");
	t.rcpt = xstrdup("probe@example.net");
	probe(&t, DIAG_PROTOCOL_ERROR, &r);
	T_CHECK(r.duration_ms >= 600 && r.duration_ms < 1100);
	T_CONTAINS(r.steps[r.step_count - 1].detail, "timed out");
	diag_report_free(&r);
	diag_target_free(&t);

	/* control characters from the server never reach the report */
	{
		static const struct script sc = { .greeting = "220 mx\x1b[31m.test\x07 ESMTP\r\n" };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_NONE);
	probe(&t, DIAG_OK, &r);
	T_EQ_STR(r.steps[2].detail, "220 mx?[31m.test? ESMTP");
	diag_report_free(&r);
	diag_target_free(&t);

	/* a good plain server: the whole way, ok */
	{
		static const struct script sc = { .greeting = "220-mx.test ESMTP\r\n220 hello\r\n",
			.ehlo = "250-mx.test\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n" };
		port = server_start(&sc);
	}
	target_init(&t, port, DIAG_SEC_NONE);
	with_creds(&t);
	t.mail_from = xstrdup("alice@example.com");
	t.rcpt = xstrdup("probe@example.net");
	probe(&t, DIAG_OK, &r);
	T_CHECK(r.step_count >= 8);
	T_CHECK(r.tls.used == 0);
	buf_init(&b, 1 << 16);
	diag_report_json(&r, &b);
	T_CONTAINS(buf_str(&b), "{\"protocol\":\"smtp\",\"verdict\":\"ok\"");
	T_CONTAINS(buf_str(&b), "\"steps\":[{\"name\":\"resolve 127.0.0.1\"");
	T_CONTAINS(buf_str(&b), "\"tls\":null");
	T_CONTAINS(buf_str(&b), "AUTH PLAIN as alice@example.com");
	T_CONTAINS(buf_str(&b), "\"name\":\"QUIT\",\"ok\":true");
	T_CHECK(b.data[b.len - 1] == '}');
	buf_reset(&b);
	diag_report_text(&r, &b);
	{
		char want[64];
		snprintf(want, sizeof(want), "\xE2\x9C\x93 connect 127.0.0.1:%d (", port);
		T_CONTAINS(buf_str(&b), want);
	}
	T_CONTAINS(buf_str(&b), "verdict: ok\n");
	buf_free(&b);
	diag_report_free(&r);

	/* the same server, LOGIN-only client path is covered above; now not allowed */
	free(t.allow[0]);
	free(t.allow);
	t.allow = NULL;
	t.allow_count = 0;
	probe(&t, DIAG_PROTOCOL_ERROR, &r);
	T_CHECK(r.not_allowed);
	T_CONTAINS(r.steps[r.step_count - 1].detail, "address not allowed");
	diag_report_free(&r);

	/* implicit TLS against a plain port */
	t.allow = xmalloc(sizeof(char *));
	t.allow[0] = xstrdup("127.0.0.0/8");
	t.allow_count = 1;
	t.security = DIAG_SEC_TLS;
	probe(&t, DIAG_TLS_MODE_MISMATCH, &r);
	diag_report_free(&r);
	diag_target_free(&t);

	/* unknown host */
	target_init(&t, 25, DIAG_SEC_NONE);
	free(t.host);
	t.host = xstrdup("no-such-host.invalid");
	probe(&t, DIAG_DNS_NOT_FOUND, &r);
	diag_report_free(&r);
	diag_target_free(&t);
}

/* ------------------------------------------------ refused senders */

/* Stops the server started last (each refusal case has its own). */
static void
server_stop_last(void)
{
	pid_t pid = children[--nchildren];

	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* diag_smtp_refusal() itself: the real servers' words, the code alone,
 * case, multi-line replies, addresses that look like words. */
static void
test_refusal_words(void)
{
	static const struct {
		const char *reply;
		int at_rcpt;
		enum diag_refusal want;
	} cases[] = {
		/* Postfix (smtpd_delay_reject: sender refusals arrive at RCPT) */
		{ "553 5.7.1 <a@b>: Sender address rejected: not owned by user c@d", 1, DIAG_REFUSED_SENDER_LOGIN },
		{ "553 5.7.1 <a@b>: Sender address rejected: not owned by user c@d", 0, DIAG_REFUSED_SENDER_LOGIN },
		{ "553 5.7.1 <a@b>: Sender address rejected: not logged in", 1, DIAG_REFUSED_SENDER_LOGIN },
		{ "554 5.7.1 <a@b>: Sender address rejected: Access denied", 1, DIAG_REFUSED_SENDER },
		{ "550 5.1.7 <a@b>: Sender address rejected: undeliverable address", 1, DIAG_REFUSED_SENDER },
		{ "450 4.1.8 <a@b>: Sender address rejected: Domain not found", 1, DIAG_REFUSED_SENDER },
		{ "550 5.1.0 <a@b>: Sender address rejected: User unknown in local recipient table", 1, DIAG_REFUSED_SENDER },
		{ "454 4.7.1 <x@y>: Relay access denied", 1, DIAG_REFUSED_RELAY },
		{ "554 5.7.1 <x@y>: Relay access denied", 1, DIAG_REFUSED_RELAY },
		{ "550 5.1.1 <x@y>: Recipient address rejected: User unknown in virtual mailbox table", 1, DIAG_REFUSED_RECIPIENT },
		{ "554 5.7.1 <x@y>: Recipient address rejected: Access denied", 1, DIAG_REFUSED_RELAY },
		{ "554 5.7.1 <x@y>: Recipient address rejected: Access denied", 0, DIAG_REFUSED_SENDER },
		{ "550 5.7.0 <x@y>: Recipient address rejected: Policy", 1, DIAG_REFUSED_RECIPIENT },
		/* Exchange Online */
		{ "550 5.7.60 SMTP; Client does not have permissions to send as this sender", 1, DIAG_REFUSED_SENDER_LOGIN },
		{ "550 5.7.60 SMTP; Client does not have permissions to send as this sender", 0, DIAG_REFUSED_SENDER_LOGIN },
		{ "550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain", 1, DIAG_REFUSED_RELAY },
		/* Gmail */
		{ "550-5.7.1 The user or domain that you are sending from doesn't match\n550 5.7.1 the account you logged in with. - gsmtp", 1, DIAG_REFUSED_SENDER_LOGIN },
		{ "553 5.7.1 <x@y> Sender address rejected: not owned by auth user.", 1, DIAG_REFUSED_SENDER_LOGIN },
		{ "550-5.7.1 Invalid credentials for relay [192.0.2.1]. The IP address you've\n550 5.7.1 registered doesn't match the domain of the account. - gsmtp", 1, DIAG_REFUSED_RELAY },
		/* Exim */
		{ "550 5.7.1 sender address not allowed", 1, DIAG_REFUSED_SENDER },
		{ "550 Sender verify failed", 1, DIAG_REFUSED_SENDER },
		{ "550 relay not permitted", 1, DIAG_REFUSED_RELAY },
		/* Sendmail, qmail */
		{ "553 5.1.8 <a@b>... Domain of sender address a@b does not exist", 1, DIAG_REFUSED_SENDER },
		{ "550 5.7.1 <a@b>... Relaying denied", 1, DIAG_REFUSED_RELAY },
		{ "553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)", 1, DIAG_REFUSED_RELAY },
		/* other wordings of the login's mismatch */
		{ "550 5.7.1 You are not authorized to send on behalf of <a@b>", 1, DIAG_REFUSED_SENDER_LOGIN },
		{ "553 5.7.1 From address does not match your login", 0, DIAG_REFUSED_SENDER_LOGIN },
		/* case does not matter */
		{ "553 5.7.1 <A@B>: SENDER ADDRESS REJECTED: NOT OWNED BY USER C@D", 1, DIAG_REFUSED_SENDER_LOGIN },
		{ "554 5.7.1 <X@Y>: RELAY ACCESS DENIED", 1, DIAG_REFUSED_RELAY },
		/* addresses, host names and URLs are not the server's words */
		{ "554 5.7.1 <sender@example.net>: Relay access denied", 1, DIAG_REFUSED_RELAY },
		{ "553 5.7.1 <relay@b>: Sender address rejected: not owned by user relay-admin@d", 1, DIAG_REFUSED_SENDER_LOGIN },
		{ "554 5.7.1 recipient@b: Relay access denied", 1, DIAG_REFUSED_RELAY },
		{ "550 5.7.1 smtp-relay.example.net says: sender address rejected", 1, DIAG_REFUSED_SENDER },
		{ "550 5.7.1 see https://help.example/relay-denied: sender address rejected", 1, DIAG_REFUSED_SENDER },
		/* the enhanced code alone */
		{ "553 5.1.7 Bad address syntax", 1, DIAG_REFUSED_SENDER },
		{ "553 5.1.8 Bad system", 1, DIAG_REFUSED_SENDER },
		{ "550 5.7.27 Null MX", 1, DIAG_REFUSED_SENDER },
		{ "550 5.1.1 Bad destination", 1, DIAG_REFUSED_RECIPIENT },
		{ "550 5.1.10 Null MX", 1, DIAG_REFUSED_RECIPIENT },
		{ "550 5.1.1 Bad mailbox", 0, DIAG_REFUSED_SENDER },
		{ "550 5.7.60 Denied", 1, DIAG_REFUSED_SENDER_LOGIN },
		{ "554 5.7.1 Access denied", 1, DIAG_REFUSED_RELAY },
		{ "554 5.7.1 Access denied", 0, DIAG_REFUSED_SENDER },
		{ "554 5.7.10 Access denied", 1, DIAG_REFUSED_OTHER },
		{ "554 5.71 Access denied", 1, DIAG_REFUSED_OTHER },
		/* nothing said about what */
		{ "530 5.7.0 Authentication required", 0, DIAG_REFUSED_OTHER },
		{ "451 4.3.0 Temporary lookup failure", 1, DIAG_REFUSED_OTHER },
		{ "550", 1, DIAG_REFUSED_OTHER },
		{ "", 1, DIAG_REFUSED_OTHER },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *got = diag_refusal_name(diag_smtp_refusal(cases[i].reply, cases[i].at_rcpt));
		if (strcmp(got, diag_refusal_name(cases[i].want)) != 0)
			fprintf(stderr, "refusal case %zu at %s: %s\n", i,
			    cases[i].at_rcpt ? "RCPT" : "MAIL", cases[i].reply);
		T_EQ_STR(got, diag_refusal_name(cases[i].want));
	}
	T_EQ_INT(diag_smtp_refusal(NULL, 1), DIAG_REFUSED_OTHER);

	/* linear: 1 MB of word starts in one token, of '<' and of words end
	 * within a second (a rescan per word would take hours) */
	{
		static const char *const fill[] = { "a,", "<x ", "Sender Relays " };
		size_t n = 1u << 20, k, j;
		char *big = xmalloc(n + 1);
		struct timespec a, z;
		long ms;

		for (k = 0; k < 3; k++) {
			size_t fl = strlen(fill[k]);
			memcpy(big, "550 5.7.1 ", 10);
			for (j = 10; j + fl <= n; j += fl)
				memcpy(big + j, fill[k], fl);
			big[j] = '\0';
			clock_gettime(CLOCK_MONOTONIC, &a);
			T_EQ_INT(diag_smtp_refusal(big, 1), k == 2 ? DIAG_REFUSED_SENDER : DIAG_REFUSED_RELAY);
			clock_gettime(CLOCK_MONOTONIC, &z);
			ms = (z.tv_sec - a.tv_sec) * 1000 + (z.tv_nsec - a.tv_nsec) / 1000000;
			if (ms >= 1000)
				fprintf(stderr, "refusal of 1 MB of \"%s\": %ld ms\n", fill[k], ms);
			T_CHECK(ms < 1000);
		}
		free(big);
	}
}

/* The same replies from a server, at RCPT TO and (where a server could
 * send them there) at MAIL FROM: the verdict and the advice. */
static void
test_refusal_servers(void)
{
	static const char LOGIN_ADVICE[] =
	    "The server accepted your login but refuses this From address for it: "
	    "send as an address the account alice@example.com owns, or ask the provider to allow it.";
	static const struct {
		const char *reply;
		int at_mail;		/* also sent at MAIL FROM */
		int anonymous;		/* no login */
		enum diag_verdict want;	/* at RCPT TO */
		enum diag_verdict want_mail;
		const char *advice;	/* in the advice, at either step */
	} cases[] = {
		{ "553 5.7.1 <bob@other.test>: Sender address rejected: not owned by user alice@example.com",
		    1, 0, DIAG_SENDER_REJECTED, DIAG_SENDER_REJECTED, LOGIN_ADVICE },
		{ "554 5.7.1 <bob@other.test>: Sender address rejected: Access denied",
		    1, 0, DIAG_SENDER_REJECTED, DIAG_SENDER_REJECTED, "refused the sender (From) address" },
		{ "550 5.1.7 <bob@other.test>: Sender address rejected: undeliverable address",
		    1, 0, DIAG_SENDER_REJECTED, DIAG_SENDER_REJECTED, "refused the sender (From) address" },
		{ "450 4.1.8 <bob@other.test>: Sender address rejected: Domain not found",
		    1, 0, DIAG_SENDER_REJECTED, DIAG_SENDER_REJECTED, "its domain exists" },
		{ "553 5.7.1 <bob@other.test>: Sender address rejected: not logged in",
		    1, 1, DIAG_SENDER_REJECTED, DIAG_SENDER_REJECTED, "log in (SMTP AUTH) with the account that owns it" },
		{ "550 5.7.60 SMTP; Client does not have permissions to send as this sender",
		    1, 0, DIAG_SENDER_REJECTED, DIAG_SENDER_REJECTED, LOGIN_ADVICE },
		{ "550-5.7.1 The user or domain that you are sending from doesn't match\r\n"
		  "550 5.7.1 the account you logged in with. - gsmtp",
		    1, 0, DIAG_SENDER_REJECTED, DIAG_SENDER_REJECTED, LOGIN_ADVICE },
		{ "553 5.7.1 <bob@other.test> Sender address rejected: not owned by auth user.",
		    1, 0, DIAG_SENDER_REJECTED, DIAG_SENDER_REJECTED, LOGIN_ADVICE },
		{ "550 5.7.1 sender address not allowed",
		    1, 0, DIAG_SENDER_REJECTED, DIAG_SENDER_REJECTED, "refused the sender (From) address" },
		{ "550 Sender verify failed",
		    1, 0, DIAG_SENDER_REJECTED, DIAG_SENDER_REJECTED, "refused the sender (From) address" },
		{ "553 5.1.8 <bob@other.test>... Domain of sender address bob@other.test does not exist",
		    1, 0, DIAG_SENDER_REJECTED, DIAG_SENDER_REJECTED, "its domain exists" },
		/* relaying, at RCPT only: the refused address is the recipient */
		{ "550 5.7.1 <probe@example.net>... Relaying denied",
		    0, 0, DIAG_RELAY_DENIED, DIAG_OK, "accepted the login but refuses to relay" },
		{ "454 4.7.1 <probe@example.net>: Relay access denied",
		    0, 1, DIAG_RELAY_DENIED, DIAG_OK, "authenticate (SMTP AUTH)" },
		{ "554 5.7.1 <probe@example.net>: Relay access denied",
		    0, 0, DIAG_RELAY_DENIED, DIAG_OK, "refuses to relay" },
		{ "550 relay not permitted",
		    0, 1, DIAG_RELAY_DENIED, DIAG_OK, "refuses to relay" },
		{ "550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain",
		    0, 0, DIAG_RELAY_DENIED, DIAG_OK, "refuses to relay" },
		{ "554 5.7.1 <probe@example.net>: Recipient address rejected: Access denied",
		    0, 1, DIAG_RELAY_DENIED, DIAG_OK, "authenticate (SMTP AUTH)" },
		/* the recipient, and a 5.7.1 that says nothing more */
		{ "550 5.1.1 <probe@example.net>: Recipient address rejected: User unknown",
		    0, 0, DIAG_PROTOCOL_ERROR, DIAG_OK, "refused the test recipient" },
		{ "554 5.7.1 Access denied",
		    1, 0, DIAG_RELAY_DENIED, DIAG_SENDER_REJECTED, "" },
	};
	size_t i;
	int step;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (step = 0; step < 2; step++) {	/* 0 RCPT TO, 1 MAIL FROM */
			struct script sc = { .greeting = "220 mx.test ESMTP\r\n", .ehlo = GOOD_EHLO };
			struct diag_target t;
			struct diag_report r;
			char reply[512];

			if (step == 1 && !cases[i].at_mail)
				continue;
			snprintf(reply, sizeof(reply), "%s\r\n", cases[i].reply);
			if (step == 0)
				sc.rcpt = reply;
			else
				sc.mail = reply;
			target_init(&t, server_start(&sc), DIAG_SEC_NONE);
			if (!cases[i].anonymous)
				with_creds(&t);
			t.mail_from = xstrdup("bob@other.test");
			t.rcpt = xstrdup("probe@example.net");
			probe(&t, step ? cases[i].want_mail : cases[i].want, &r);
			T_CHECK(r.step_count > 0 && !r.steps[r.step_count - 1].ok);
			if (r.step_count > 0)
				T_CONTAINS(r.steps[r.step_count - 1].name, step ? "MAIL FROM:<bob@other.test>" :
				    "RCPT TO:<probe@example.net>");
			T_CONTAINS(r.advice, cases[i].advice);
			if (r.verdict == DIAG_SENDER_REJECTED && !cases[i].anonymous &&
			    strstr(cases[i].advice, "accepted your login") == NULL)
				T_CHECK(r.advice && strstr(r.advice, "login") == NULL);
			diag_report_free(&r);
			diag_target_free(&t);
			server_stop_last();
		}
	}
}

static void
test_tls_servers(void)
{
	struct diag_target t;
	struct diag_report r;
	struct script *sc;
	int port_good, port_expired, port_other, port_starttls, port_auth_after_tls;

	make_cert("good", "mx.test", 1, -3600, 30L * 86400 + 3600);
	make_cert("expired", "mx.test", 1, -10L * 86400, -86400);
	make_cert("other", "other.test", 0, -3600, 30L * 86400);

	sc = xcalloc(5, sizeof(*sc));
	sc[0] = (struct script){ .greeting = "220 mx.test ESMTP\r\n", .ehlo = GOOD_EHLO,
		.implicit_tls = 1, .cert = tpath("good", "crt"), .key = tpath("good", "key") };
	port_good = server_start(&sc[0]);
	sc[1] = sc[0];
	sc[1].cert = tpath("expired", "crt");
	sc[1].key = tpath("expired", "key");
	port_expired = server_start(&sc[1]);
	sc[2] = sc[0];
	sc[2].cert = tpath("other", "crt");
	sc[2].key = tpath("other", "key");
	port_other = server_start(&sc[2]);
	sc[3] = (struct script){ .greeting = "220 mx.test ESMTP\r\n",
		.ehlo = "250-mx.test\r\n250-STARTTLS\r\n250 8BITMIME\r\n", .starttls = 1,
		.cert = tpath("good", "crt"), .key = tpath("good", "key") };
	port_starttls = server_start(&sc[3]);
	sc[4] = sc[3];
	sc[4].ehlo_tls = "250-mx.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n";
	port_auth_after_tls = server_start(&sc[4]);

	/* not in the trust store; a CA file that does not exist is reported */
	target_init(&t, port_good, DIAG_SEC_TLS);
	t.ca_file = tpath("missing", "crt");
	probe(&t, DIAG_CERT_UNTRUSTED, &r);
	T_CHECK(r.tls.used && !r.tls.trusted);
	T_EQ_STR(r.steps[2].name, "CA file");
	free(t.ca_file);
	t.ca_file = NULL;
	diag_report_free(&r);

	/* trusted through ca_file: ok over implicit TLS, with AUTH and envelope */
	t.ca_file = tpath("good", "crt");
	with_creds(&t);
	t.mail_from = xstrdup("alice@example.com");
	t.rcpt = xstrdup("probe@example.net");
	probe(&t, DIAG_OK, &r);
	T_CHECK(r.tls.used && r.tls.trusted && r.tls.hostname_ok);
	T_CHECK(r.tls.days_to_expiry >= 29 && r.tls.days_to_expiry <= 30);
	T_CHECK(r.tls.subject && strstr(r.tls.subject, "mx.test"));
	diag_report_free(&r);

	/* STARTTLS against the implicit-TLS port */
	t.security = DIAG_SEC_STARTTLS;
	probe(&t, DIAG_TLS_MODE_MISMATCH, &r);
	diag_report_free(&r);
	diag_target_free(&t);

	/* expired */
	target_init(&t, port_expired, DIAG_SEC_TLS);
	t.ca_file = tpath("expired", "crt");
	probe(&t, DIAG_CERT_EXPIRED, &r);
	T_CHECK(r.tls.days_to_expiry < 0);
	diag_report_free(&r);
	diag_target_free(&t);

	/* trusted, but for another name */
	target_init(&t, port_other, DIAG_SEC_TLS);
	t.ca_file = tpath("other", "crt");
	probe(&t, DIAG_CERT_HOSTNAME_MISMATCH, &r);
	T_CHECK(r.tls.trusted && !r.tls.hostname_ok);
	diag_report_free(&r);
	diag_target_free(&t);

	/* STARTTLS: upgrade, EHLO again, AUTH appears only after TLS here? (no AUTH: no creds) */
	target_init(&t, port_starttls, DIAG_SEC_STARTTLS);
	t.ca_file = tpath("good", "crt");
	t.mail_from = xstrdup("alice@example.com");
	probe(&t, DIAG_OK, &r);
	T_CHECK(r.tls.used && r.tls.trusted);
	diag_report_free(&r);
	diag_target_free(&t);

	/* AUTH offered only after STARTTLS: fine with starttls, not with none */
	target_init(&t, port_auth_after_tls, DIAG_SEC_STARTTLS);
	t.ca_file = tpath("good", "crt");
	with_creds(&t);
	t.mail_from = xstrdup("alice@example.com");
	t.rcpt = xstrdup("probe@example.net");
	probe(&t, DIAG_OK, &r);
	T_EQ_STR(r.steps[r.step_count - 1].name, "QUIT");
	diag_report_free(&r);
	t.security = DIAG_SEC_NONE;
	probe(&t, DIAG_AUTH_UNAVAILABLE, &r);
	T_CONTAINS(r.advice, "STARTTLS");
	diag_report_free(&r);
	diag_target_free(&t);

	{
		int i;
		for (i = 0; i < 4; i++) {	/* sc[4] shares sc[3]'s strings */
			free((char *)sc[i].cert);
			free((char *)sc[i].key);
		}
		free(sc);
	}
}

int
main(void)
{
	int i;
	char cmd[128];

	signal(SIGPIPE, SIG_IGN);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_diag.XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 2;
	}
	test_names();
	test_cidr();
	test_password_file();
	test_plain_servers();
	test_refusal_words();
	test_refusal_servers();
	test_tls_servers();

	for (i = 0; i < nchildren; i++) {
		kill(children[i], SIGKILL);
		waitpid(children[i], NULL, 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
	return t_done();
}
