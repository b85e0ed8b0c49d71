/*
 * test_diag_alt - diag_smtp_with_alternatives() and the bounded resolver,
 * against small plain-text SMTP servers forked here on 127.0.0.1 (the
 * approach of test_diag.c: listening socket made before fork, one
 * connection at a time, every child killed by PID at the end).
 *
 * Covered: the primary refused and another DiagnosePorts entry works (the
 * alternative, its source, verified with the same credentials); logins
 * (every server counts the AUTH commands it gets, in shared memory): the
 * candidates never log in while they run, a wrong password costs at most
 * two logins on candidates and none when the primary itself says
 * auth_failed, a candidate that offers no AUTH PLAIN/LOGIN does not count
 * as working when there are credentials; a silent
 * primary still ends within DiagnoseTimeout and leaves the alternatives
 * their time; nothing else works (found = 0); duplicates and the given
 * combination itself are not probed twice; the DiagnosePorts order and
 * "verified" decide between working ones; security is part of a
 * combination; a working primary reports no alternative and does not wait
 * for a silent candidate; connect_timeout against a listener whose accept
 * queue is full; the resolver is bounded against a DNS server
 * that never answers; IP literals need no DNS; the password never appears;
 * a target a sender chose (untrusted) connects to no port outside its mail
 * ports and to no loopback address, ProbeAllow or not, and neither do its
 * candidates (every server counts the connections it accepts).
 * No packet leaves 127.0.0.1: every name lookup here goes to a UDP socket
 * of this test.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "diag.h"
#include "diag_dns.h"
#include "diag_int.h"
#include "xalloc.h"
#include "t.h"
#include "diag_testserver.h"

#define PASSWORD	"s3cr3t-Pa55"
/* a correctness bound, not a speed target: thread start-up and ASan */
#define SLACK_MS	1000

struct script {
	const char *greeting;	/* NULL: silent */
	const char *auth;	/* reply to AUTH; NULL: 235 */
	const char *ehlo;	/* reply to EHLO; NULL: with AUTH PLAIN LOGIN */
	const char *mail;	/* reply to MAIL FROM; NULL: 250 */
};

#define MAX_CHILDREN	48

static pid_t children[MAX_CHILDREN];
static int child_port[MAX_CHILDREN];
static int nchildren;
/* AUTH commands and connections received, per child; MAP_SHARED so the
 * parent sees them */
static int *auth_seen, *conn_seen;

/* seen[] of the server on port: what it has received so far. */
static int
seen_by(const int *seen, int port)
{
	int i;

	for (i = 0; i < nchildren; i++)
		if (child_port[i] == port)
			return __atomic_load_n(&seen[i], __ATOMIC_SEQ_CST);
	return -1;
}

/* The AUTH commands, the connections the server on port got so far. */
static int logins(int port) { return seen_by(auth_seen, port); }
static int connections(int port) { return seen_by(conn_seen, port); }

static void
s_write(int fd, const char *s)
{
	if (write(fd, s, strlen(s)) < 0)
		_exit(0);
}

static void
serve_one(int fd, const struct script *sc, int slot)
{
	char buf[4096], line[2048];
	size_t len = 0;

	if (!sc->greeting) {
		while (read(fd, buf, sizeof(buf)) > 0)
			;
		return;
	}
	s_write(fd, sc->greeting);
	for (;;) {
		char *nl = memchr(buf, '\n', len);
		ssize_t n;
		size_t l;

		if (!nl) {
			if (len == sizeof(buf))
				return;
			n = read(fd, buf + len, sizeof(buf) - len);
			if (n <= 0)
				return;
			len += (size_t)n;
			continue;
		}
		l = (size_t)(nl - buf);
		memcpy(line, buf, l < sizeof(line) - 1 ? l : sizeof(line) - 1);
		line[l < sizeof(line) - 1 ? l : sizeof(line) - 1] = '\0';
		l = strlen(line);	/* a NUL byte ends the line early */
		if (l && line[l - 1] == '\r')
			line[l - 1] = '\0';
		l = (size_t)(nl - buf);
		len -= l + 1;
		memmove(buf, nl + 1, len);
		if (!strncasecmp(line, "EHLO", 4))
			s_write(fd, sc->ehlo ? sc->ehlo : "250-alt.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n");
		else if (!strncasecmp(line, "AUTH ", 5)) {
			__atomic_fetch_add(&auth_seen[slot], 1, __ATOMIC_SEQ_CST);
			s_write(fd, sc->auth ? sc->auth : "235 2.7.0 ok\r\n");
		} else if (!strncasecmp(line, "MAIL FROM:", 10))
			s_write(fd, sc->mail ? sc->mail : "250 2.1.0 ok\r\n");
		else if (!strncasecmp(line, "RCPT TO:", 8))
			s_write(fd, "250 2.1.5 ok\r\n");
		else if (!strcasecmp(line, "QUIT")) {
			s_write(fd, "221 2.0.0 bye\r\n");
			return;
		} else
			s_write(fd, "500 5.5.2 what?\r\n");
	}
}

static int
server_start(const struct script *sc)
{
	int port, lfd = bound_socket(SOCK_STREAM, &port), slot = nchildren;
	pid_t pid;

	if (slot >= MAX_CHILDREN) {
		fprintf(stderr, "too many servers\n");
		exit(2);
	}
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
			__atomic_fetch_add(&conn_seen[slot], 1, __ATOMIC_SEQ_CST);
			serve_one(fd, sc, slot);
			close(fd);
		}
	}
	close(lfd);
	child_port[slot] = port;
	children[nchildren++] = pid;
	return port;
}

static void
target_init(struct diag_target *t, int port, enum diag_security sec, long timeout_ms)
{
	memset(t, 0, sizeof(*t));
	t->host = xstrdup("127.0.0.1");
	t->port = port;
	t->security = sec;
	t->timeout_ms = timeout_ms;
	t->user = xstrdup("alice@example.com");
	t->password = xstrdup(PASSWORD);
	t->mail_from = xstrdup("alice@example.com");
	t->allow = xmalloc(sizeof(char *));
	t->allow[0] = xstrdup("127.0.0.0/8");
	t->allow_count = 1;
}

static char *
ports(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *
ports(const char *fmt, ...)
{
	struct buf b;
	va_list ap;

	buf_init(&b, 1024);
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	return buf_steal(&b);
}

/* Runs the whole diagnosis; returns the wall time in ms. */
static long long
run(struct diag_target *t, const char *plist, struct diag_report *r, struct diag_alternative *a)
{
	long long st = dg_now_ms();
	struct buf j;

	diag_smtp_with_alternatives(t, plist, NULL, r, a);
	st = dg_now_ms() - st;
	buf_init(&j, 1 << 20);
	diag_alternative_json(a, &j);
	diag_report_json(&a->report, &j);
	diag_report_json(r, &j);
	T_CHECK(strstr(buf_str(&j), PASSWORD) == NULL);
	if (getenv("DIAG_VERBOSE"))
		fprintf(stderr, "%lld ms, tried %zu: %s\n", st, a->tried, buf_str(&j));
	buf_free(&j);
	return st;
}

static const struct script good = { "220 alt.test ESMTP\r\n", NULL, NULL, NULL };
static const struct script silent = { NULL, NULL, NULL, NULL };
static const struct script wrong_pw = { "220 alt.test ESMTP\r\n", "535 5.7.8 Authentication credentials invalid\r\n",
	NULL, NULL };
/* a relay-only port: no AUTH at all */
static const struct script no_auth = { "220 alt.test ESMTP\r\n", NULL, "250-alt.test\r\n250 8BITMIME\r\n", NULL };
/* the login passes, the sender does not */
static const struct script bad_sender = { "220 alt.test ESMTP\r\n", NULL, NULL,
	"553 5.7.1 Sender address rejected: not owned by user\r\n" };

static void
test_refused_primary(void)
{
	struct diag_target t;
	struct diag_report r;
	struct diag_alternative a;
	struct buf j;
	int ok = server_start(&good), c1 = closed_port(), c2 = closed_port();
	char *pl = ports("%d/none %d/none", c2, ok);

	target_init(&t, c1, DIAG_SEC_NONE, 5000);
	run(&t, pl, &r, &a);
	T_EQ_STR(diag_verdict_name(r.verdict), "connect_refused");
	T_EQ_INT(a.found, 1);
	T_EQ_STR(a.host, "127.0.0.1");
	T_EQ_INT(a.port, ok);
	T_EQ_INT(a.security, DIAG_SEC_NONE);
	T_EQ_INT(a.verified, 1);
	T_EQ_STR(a.source, "port list");
	T_EQ_INT(a.tried, 2);
	T_EQ_STR(diag_verdict_name(a.report.verdict), "ok");
	/* the alternative's report is the verifying login, MAIL FROM included */
	T_CONTAINS(a.report.step_count ? a.report.steps[a.report.step_count - 2].name : "", "MAIL FROM");
	T_EQ_INT(logins(ok), 1);
	buf_init(&j, 1 << 16);
	diag_alternative_json(&a, &j);
	T_CONTAINS(buf_str(&j), "\"source\":\"port list\"");
	T_CONTAINS(buf_str(&j), "\"verified\":true");
	T_CONTAINS(buf_str(&j), "\"security\":\"none\"");
	buf_free(&j);
	diag_alternative_free(&a);
	T_CHECK(a.host == NULL && a.found == 0);
	diag_report_free(&r);
	diag_target_free(&t);
	free(pl);
}

/* The primary never greets: the call still ends within timeout_ms (the
 * default step timeout, 10 s, is longer than the whole 3 s budget), and
 * the alternatives, started at once, are not starved by it. */
static void
test_silent_primary(void)
{
	struct diag_target t;
	struct diag_report r;
	struct diag_alternative a;
	int s1 = server_start(&silent), s2 = server_start(&silent), ok = server_start(&good);
	char *pl = ports("%d/none %d/starttls %d/none", s2, s2, ok);
	long long ms;

	target_init(&t, s1, DIAG_SEC_STARTTLS, 3000);
	ms = run(&t, pl, &r, &a);
	T_EQ_STR(diag_verdict_name(r.verdict), "greeting_timeout");
	T_CHECK(ms <= 3000 + SLACK_MS);
	if (ms > 3000 + SLACK_MS)
		fprintf(stderr, "silent primary: %lld ms for a 3000 ms budget\n", ms);
	T_EQ_INT(a.found, 1);
	T_EQ_INT(a.port, ok);
	T_EQ_INT(a.tried, 3);
	diag_alternative_free(&a);
	diag_report_free(&r);
	diag_target_free(&t);
	free(pl);
}

static void
test_nothing_works(void)
{
	struct diag_target t;
	struct diag_report r;
	struct diag_alternative a;
	int c1 = closed_port(), c2 = closed_port(), bad = server_start(&wrong_pw);
	char *pl = ports("%d/none %d/none", c2, bad);
	struct buf j;

	target_init(&t, c1, DIAG_SEC_NONE, 5000);
	run(&t, pl, &r, &a);
	T_EQ_STR(diag_verdict_name(r.verdict), "connect_refused");
	T_EQ_INT(a.found, 0);
	T_EQ_INT(a.tried, 2);
	T_CHECK(a.host == NULL);
	buf_init(&j, 1024);
	diag_alternative_json(&a, &j);
	T_EQ_STR(buf_str(&j), "null");
	buf_free(&j);
	diag_alternative_free(&a);
	diag_report_free(&r);
	diag_target_free(&t);
	free(pl);
}

/* The same combination twice, and the given one, are probed once / never;
 * the same port with another security is another combination. */
static void
test_duplicates(void)
{
	struct diag_target t;
	struct diag_report r;
	struct diag_alternative a;
	int ok = server_start(&good), c1 = closed_port();
	char *pl = ports("%d/none, %d/none %d/tls %d/starttls %d/none %d/plain", c1, c1, c1, ok, ok, c1);

	/* given ok/starttls: the server offers no STARTTLS */
	target_init(&t, ok, DIAG_SEC_STARTTLS, 5000);
	run(&t, pl, &r, &a);
	T_EQ_STR(diag_verdict_name(r.verdict), "starttls_unavailable");
	/* c1/none, c1/tls, ok/none: three, not six */
	T_EQ_INT(a.tried, 3);
	T_EQ_INT(a.found, 1);
	T_EQ_INT(a.port, ok);
	T_EQ_INT(a.security, DIAG_SEC_NONE);
	diag_alternative_free(&a);
	diag_report_free(&r);
	diag_target_free(&t);
	free(pl);
}

/* Between two that work, DiagnosePorts order decides; one whose login
 * passes but whose MAIL FROM is refused gives way to the next; one that
 * refuses the password ends the search (it would be refused everywhere). */
static void
test_preference(void)
{
	struct diag_target t;
	struct diag_report r;
	struct diag_alternative a;
	int bad = server_start(&wrong_pw), ok1 = server_start(&good), ok2 = server_start(&good);
	int snd = server_start(&bad_sender), c1 = closed_port();
	char *pl = ports("%d/none %d/none %d/none", snd, ok2, ok1);

	target_init(&t, c1, DIAG_SEC_NONE, 5000);
	run(&t, pl, &r, &a);
	T_EQ_INT(a.found, 1);
	T_EQ_INT(a.port, ok2);
	T_EQ_INT(a.verified, 1);
	T_EQ_INT(logins(snd), 1);
	T_EQ_INT(logins(ok2), 1);
	T_EQ_INT(logins(ok1), 0);
	diag_alternative_free(&a);
	diag_report_free(&r);
	diag_target_free(&t);
	free(pl);

	pl = ports("%d/none %d/none %d/none", bad, ok2, ok1);
	target_init(&t, c1, DIAG_SEC_NONE, 5000);
	run(&t, pl, &r, &a);
	T_EQ_STR(diag_verdict_name(r.verdict), "connect_refused");
	T_EQ_INT(a.found, 0);
	T_EQ_INT(logins(bad), 1);
	T_EQ_INT(logins(ok2), 1);	/* unchanged since the first run */
	T_EQ_INT(logins(ok1), 0);
	diag_alternative_free(&a);
	diag_report_free(&r);
	diag_target_free(&t);
	free(pl);

	/* no credentials: found, but not verified */
	pl = ports("%d/none", ok1);
	target_init(&t, c1, DIAG_SEC_NONE, 5000);
	dg_wipe_free(t.password);
	free(t.user);
	t.user = t.password = NULL;
	run(&t, pl, &r, &a);
	T_EQ_INT(a.found, 1);
	T_EQ_INT(a.verified, 0);
	diag_alternative_free(&a);
	diag_report_free(&r);
	diag_target_free(&t);
	free(pl);
}

/* With credentials a candidate works only when a client could log in
 * there: a port without AUTH is passed over, although its probe is ok.
 * Without credentials the same port is a fine alternative (unverified). */
static void
test_candidate_needs_auth(void)
{
	struct diag_target t;
	struct diag_report r;
	struct diag_alternative a;
	int na = server_start(&no_auth), ok = server_start(&good), c1 = closed_port();
	char *pl = ports("%d/none %d/none", na, ok);

	target_init(&t, c1, DIAG_SEC_NONE, 5000);
	run(&t, pl, &r, &a);
	T_EQ_INT(a.found, 1);
	T_EQ_INT(a.port, ok);
	T_EQ_INT(a.verified, 1);
	T_EQ_INT(logins(na), 0);
	diag_alternative_free(&a);
	diag_report_free(&r);
	diag_target_free(&t);

	target_init(&t, c1, DIAG_SEC_NONE, 5000);
	dg_wipe_free(t.password);
	free(t.user);
	t.user = t.password = NULL;
	run(&t, pl, &r, &a);
	T_EQ_INT(a.found, 1);
	T_EQ_INT(a.port, na);
	T_EQ_INT(a.verified, 0);
	/* without credentials the candidate runs the envelope, as the primary */
	T_CONTAINS(a.report.step_count ? a.report.steps[a.report.step_count - 2].name : "", "MAIL FROM");
	diag_alternative_free(&a);
	diag_report_free(&r);
	diag_target_free(&t);
	free(pl);
}

/* A wrong password and the primary refused: four candidates work without
 * a login, but at most two logins reach them (here one: the first refusal
 * ends the search), and no alternative is reported. */
static void
test_wrong_password_refused_primary(void)
{
	struct diag_target t;
	struct diag_report r;
	struct diag_alternative a;
	int w[4], i, total = 0, c1 = closed_port();
	char *pl;

	for (i = 0; i < 4; i++)
		w[i] = server_start(&wrong_pw);
	pl = ports("%d/none %d/none %d/none %d/none", w[0], w[1], w[2], w[3]);
	target_init(&t, c1, DIAG_SEC_NONE, 5000);
	run(&t, pl, &r, &a);
	T_EQ_STR(diag_verdict_name(r.verdict), "connect_refused");
	T_EQ_INT(a.tried, 4);
	T_EQ_INT(a.found, 0);
	for (i = 0; i < 4; i++)
		total += logins(w[i]);
	T_CHECK(total >= 1 && total <= 2);
	if (total > 2)
		fprintf(stderr, "wrong password: %d logins on candidates\n", total);
	T_EQ_INT(logins(w[0]), 1);	/* the best-ranked one was the one tried */
	diag_alternative_free(&a);
	diag_report_free(&r);
	diag_target_free(&t);
	free(pl);
}

/* A wrong password on a port that works: auth_failed, and not a single
 * login on any candidate (a working one included): found = 0. */
static void
test_wrong_password_primary(void)
{
	struct diag_target t;
	struct diag_report r;
	struct diag_alternative a;
	int prim = server_start(&wrong_pw), w1 = server_start(&wrong_pw), w2 = server_start(&wrong_pw);
	int ok = server_start(&good);
	char *pl = ports("%d/none %d/none %d/none", w1, ok, w2);

	target_init(&t, prim, DIAG_SEC_NONE, 5000);
	run(&t, pl, &r, &a);
	T_EQ_STR(diag_verdict_name(r.verdict), "auth_failed");
	T_EQ_INT(a.found, 0);
	T_EQ_INT(logins(prim), 1);
	T_EQ_INT(logins(w1) + logins(w2) + logins(ok), 0);
	diag_alternative_free(&a);
	diag_report_free(&r);
	diag_target_free(&t);
	free(pl);
}

/* The right password, the primary refused, four working candidates: the
 * best-ranked one is verified with the one and only login on candidates. */
static void
test_right_password_one_login(void)
{
	struct diag_target t;
	struct diag_report r;
	struct diag_alternative a;
	int g[4], i, total = 0, c1 = closed_port();
	char *pl;

	for (i = 0; i < 4; i++)
		g[i] = server_start(&good);
	pl = ports("%d/none %d/none %d/none %d/none", g[2], g[0], g[1], g[3]);
	target_init(&t, c1, DIAG_SEC_NONE, 5000);
	run(&t, pl, &r, &a);
	T_EQ_INT(a.found, 1);
	T_EQ_INT(a.port, g[2]);
	T_EQ_INT(a.verified, 1);
	for (i = 0; i < 4; i++)
		total += logins(g[i]);
	T_EQ_INT(total, 1);
	T_EQ_INT(logins(g[2]), 1);
	diag_alternative_free(&a);
	diag_report_free(&r);
	diag_target_free(&t);
	free(pl);
}

/* A working primary: no alternative, and a silent candidate is cancelled
 * rather than waited for (the bound: well inside the 8 s budget). */
static void
test_primary_ok(void)
{
	struct diag_target t;
	struct diag_report r;
	struct diag_alternative a;
	int ok = server_start(&good), ok2 = server_start(&good), s = server_start(&silent);
	char *pl = ports("%d/none %d/none", s, ok2);
	long long ms;

	target_init(&t, ok, DIAG_SEC_NONE, 8000);
	ms = run(&t, pl, &r, &a);
	T_EQ_STR(diag_verdict_name(r.verdict), "ok");
	T_EQ_INT(a.found, 0);
	T_CHECK(ms < 4000);
	diag_alternative_free(&a);
	diag_report_free(&r);
	diag_target_free(&t);
	free(pl);
}

/* connect_timeout on loopback without any packet filter: once the accept
 * queue of a listener (backlog 0) that never accepts is full, Linux drops
 * further SYNs, so the connect neither completes nor is refused. */
static void
test_connect_timeout(void)
{
	struct diag_target t;
	struct diag_report r;
	struct diag_alternative a;
	int port, lfd = bound_socket(SOCK_STREAM, &port), held[3], i, c1 = closed_port();
	struct sockaddr_in sin;
	char *pl = ports("%d/none", c1);
	long long ms;

	if (listen(lfd, 0) < 0) {
		perror("listen");
		exit(2);
	}
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((unsigned short)port);
	for (i = 0; i < 3; i++) {
		held[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (connect(held[i], (struct sockaddr *)&sin, sizeof(sin)) < 0 && errno != EINPROGRESS)
			perror("connect");
	}
	usleep(100000);
	target_init(&t, port, DIAG_SEC_NONE, 1500);
	ms = run(&t, pl, &r, &a);
	T_EQ_STR(diag_verdict_name(r.verdict), "connect_timeout");
	T_CHECK(r.step_count >= 2 && strstr(r.steps[1].detail ? r.steps[1].detail : "", "timed out") != NULL);
	T_CHECK(ms <= 1500 + SLACK_MS);
	T_EQ_INT(a.found, 0);
	diag_alternative_free(&a);
	diag_report_free(&r);
	diag_target_free(&t);
	free(pl);
	for (i = 0; i < 3; i++)
		close(held[i]);
	close(lfd);
}

/* A DNS server that never answers: every lookup ends at its deadline. */
static void
test_resolver_bounded(void)
{
	struct diag_target t;
	struct diag_report r;
	struct diag_alternative a;
	struct dg_addr *addrs = NULL;
	struct dg_srv *srv = NULL;
	size_t n = 0;
	int uport, ufd = bound_socket(SOCK_DGRAM, &uport);
	char resolver[64];
	const char *names[] = { "_submission._tcp.silent.test", "_submissions._tcp.silent.test" };
	struct buf why;
	long long st, ms;
	enum dg_dns_rc rc;

	snprintf(resolver, sizeof(resolver), "127.0.0.1:%d", uport);
	T_CHECK(dg_dns_resolver_valid(resolver));
	T_CHECK(dg_dns_resolver_valid("[::1]:53"));
	T_CHECK(dg_dns_resolver_valid("::1"));
	T_CHECK(dg_dns_resolver_valid("10.0.0.1"));
	T_CHECK(!dg_dns_resolver_valid("dns.example:53"));
	T_CHECK(!dg_dns_resolver_valid("127.0.0.1:0"));
	T_CHECK(!dg_dns_resolver_valid("127.0.0.1:x"));
	T_CHECK(!dg_dns_resolver_valid(""));

	buf_init(&why, 1024);
	st = dg_now_ms();
	rc = dg_dns_addrs("smtp.silent.test", 587, resolver, st + 700, &addrs, &n, &why);
	ms = dg_now_ms() - st;
	T_EQ_STR(dg_dns_rc_name(rc), "timed out");
	T_CHECK(ms >= 650 && ms <= 700 + SLACK_MS);
	T_CONTAINS(buf_str(&why), resolver);
	T_CHECK(addrs == NULL && n == 0);

	buf_reset(&why);
	st = dg_now_ms();
	rc = dg_dns_srv(names, 2, resolver, st + 500, &srv, &n, &why);
	ms = dg_now_ms() - st;
	T_EQ_STR(dg_dns_rc_name(rc), "timed out");
	T_CHECK(ms <= 500 + SLACK_MS);
	T_CHECK(srv == NULL && n == 0);
	buf_free(&why);

	/* an IP literal needs no DNS even with a dead resolver */
	rc = dg_dns_addrs("127.0.0.1", 25, resolver, dg_now_ms() + 100, &addrs, &n, NULL);
	T_EQ_INT(rc, DG_DNS_OK);
	T_EQ_INT(n, 1);
	free(addrs);

	/* the whole diagnosis by name, with guessed names and SRV: bounded */
	memset(&t, 0, sizeof(t));
	target_init(&t, 587, DIAG_SEC_STARTTLS, 2000);
	free(t.host);
	t.host = xstrdup("smtp.silent.test");
	t.resolver = xstrdup(resolver);
	st = dg_now_ms();
	diag_smtp_with_alternatives(&t, "587/starttls 465/tls", NULL, &r, &a);
	ms = dg_now_ms() - st;
	T_EQ_STR(diag_verdict_name(r.verdict), "dns_not_found");
	T_CHECK(r.step_count >= 1 && strstr(r.steps[0].name, "resolve") != NULL);
	T_CHECK(ms <= 2000 + SLACK_MS);
	if (ms > 2000 + SLACK_MS)
		fprintf(stderr, "dead resolver: %lld ms for a 2000 ms budget\n", ms);
	T_EQ_INT(a.found, 0);
	/* 465/tls on the host, then smtp.silent.test (the host itself) is a
	 * duplicate, mail.silent.test twice */
	T_EQ_INT(a.tried, 3);
	diag_alternative_free(&a);
	diag_report_free(&r);
	diag_target_free(&t);
	close(ufd);
}

/* The step of r whose name starts with prefix, or NULL. */
static const struct diag_step *
step_named(const struct diag_report *r, const char *prefix)
{
	for (size_t i = 0; i < r->step_count; i++)
		if (strncmp(r->steps[i].name, prefix, strlen(prefix)) == 0)
			return &r->steps[i];
	return NULL;
}

/*
 * A target a sender chose (untrusted): a port outside mail_ports is refused
 * before anything (no lookup, no connection), and ProbeAllow does not
 * apply to it, the primary's or a candidate's: a server on 127.0.0.1 that
 * a staff target reaches (test_refused_primary) is never connected to.
 */
static void
test_untrusted(void)
{
	struct diag_target t;
	struct diag_report r;
	struct diag_alternative a;
	const struct diag_step *st;
	int other = server_start(&good), mail = server_start(&good), also = server_start(&good);
	char *pl = ports("%d/none %d/none", mail, also);

	/* the primary's port is no mail port */
	target_init(&t, other, DIAG_SEC_NONE, 3000);
	t.untrusted = 1;
	t.mail_ports = xcalloc(2, sizeof(int));
	t.mail_ports[0] = 587;
	t.mail_ports[1] = mail;
	t.mail_port_count = 2;
	run(&t, pl, &r, &a);
	T_EQ_STR(diag_verdict_name(r.verdict), "protocol_error");
	T_EQ_INT(r.not_allowed, 1);
	T_EQ_INT(r.step_count, 1);
	st = step_named(&r, "port not allowed");
	T_CHECK(st != NULL);
	if (st != NULL) {
		char want[64];

		snprintf(want, sizeof(want), "%d is not a mail port", other);
		T_CONTAINS(st->detail, want);
		snprintf(want, sizeof(want), "only on 587, %d", mail);
		T_CONTAINS(st->detail, want);
	}
	T_CHECK(step_named(&r, "resolve") == NULL && step_named(&r, "connect") == NULL);
	/* the candidates: one port allowed but 127.0.0.1 refused in spite
	 * of ProbeAllow 127.0.0.0/8, one port not allowed */
	T_EQ_INT(a.found, 0);
	T_EQ_INT(a.tried, 2);
	T_EQ_INT(connections(other), 0);
	T_EQ_INT(connections(mail), 0);
	T_EQ_INT(connections(also), 0);
	T_EQ_INT(logins(mail), 0);
	diag_alternative_free(&a);
	diag_report_free(&r);

	/* a mail port on loopback: the address is refused, ProbeAllow or not */
	t.port = mail;
	free(pl);
	pl = ports("%d/none", also);	/* no port list default: 25 may listen here */
	run(&t, pl, &r, &a);
	T_EQ_STR(diag_verdict_name(r.verdict), "protocol_error");
	T_EQ_INT(r.not_allowed, 1);
	st = step_named(&r, "connect 127.0.0.1");
	T_CHECK(st != NULL && !st->ok);
	if (st != NULL)
		T_CONTAINS(st->detail, "whatever ProbeAllow says");
	T_CONTAINS(r.advice, "only at public addresses");
	T_EQ_INT(connections(mail), 0);
	diag_alternative_free(&a);
	diag_report_free(&r);

	/* the same target from staff (not untrusted) is probed */
	t.untrusted = 0;
	run(&t, pl, &r, &a);
	T_EQ_STR(diag_verdict_name(r.verdict), "ok");
	T_EQ_INT(connections(mail), 1);
	diag_alternative_free(&a);
	diag_report_free(&r);
	diag_target_free(&t);
	free(pl);
}

int
main(void)
{
	int i;

	signal(SIGPIPE, SIG_IGN);
	auth_seen = mmap(NULL, 2 * MAX_CHILDREN * sizeof(*auth_seen), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (auth_seen == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	conn_seen = auth_seen + MAX_CHILDREN;
	test_refused_primary();
	test_silent_primary();
	test_nothing_works();
	test_duplicates();
	test_preference();
	test_candidate_needs_auth();
	test_wrong_password_refused_primary();
	test_wrong_password_primary();
	test_right_password_one_login();
	test_primary_ok();
	test_connect_timeout();
	test_resolver_bounded();
	test_untrusted();
	for (i = 0; i < nchildren; i++) {
		kill(children[i], SIGKILL);
		waitpid(children[i], NULL, 0);
	}
	return t_done();
}
