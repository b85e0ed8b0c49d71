/*
 * diag_alt - the whole SMTP diagnosis: the client's own combination and,
 * in parallel, the ones a good mail client would guess (diag.h,
 * diag_smtp_with_alternatives).
 *
 * Why everything starts at once: a silent server costs the whole step
 * timeout, so probing the alternatives only after the primary failed would
 * leave them no time.  The primary gets its own thread; up to
 * ALT_CONCURRENCY workers take the candidates from a queue, each probe
 * with the time left until the common deadline as its timeout_ms.  The SRV
 * lookup runs in the calling thread meanwhile and appends its targets.
 *
 * Why the candidates never log in while they run in parallel: with a wrong
 * password that would be a burst of failed logins for one account, and
 * providers lock the account or the address after a few (Dovecot's auth
 * penalty alone then delays the primary's own AUTH past its timeout).  So
 * only the primary carries the credentials; a candidate goes as far as a
 * client would before logging in (connect, TLS, certificate, EHLO, the AUTH
 * mechanisms), and it "works" when it offers PLAIN or LOGIN over TLS, or in
 * clear text when the combination itself is security none.  No MAIL/RCPT
 * either: without a login a submission server refuses to relay, so an
 * unauthenticated envelope would prove nothing.  Afterwards, and only when
 * the primary failed before its login could tell anything about the
 * password (dns, connect, greeting, TLS, certificate, STARTTLS,
 * auth_unavailable, protocol_error, ...), the best-ranked working
 * candidates are verified one after another with the credentials and the
 * envelope, at most ALT_VERIFY_MAX of them and only within what is left of
 * the deadline: one diagnosis makes at most 1 + ALT_VERIFY_MAX logins.
 * When the primary says auth_failed no candidate is verified (the password
 * is the problem, not the port); when a verification says auth_failed the
 * search ends there with no alternative, for the same reason.
 * Without credentials nothing changes: the candidates run the same probe
 * as the primary (envelope included) and the best one that passes is
 * reported, unverified.
 *
 * Stopping early: once the primary is ok or auth_failed, or the best
 * finished candidate can no longer be beaten by one still running, the
 * rest are cancelled through an eventfd that every wait of theirs polls
 * (dg_cancel_fd), so the call returns without waiting for silent ports.  A
 * last guard cancels the primary too if it overruns the deadline by
 * ALT_GRACE_MS.
 *
 * Ranking (smaller is better): the source (SRV, the given host, guessed
 * names), then the position in DiagnosePorts (or in the sorted SRV
 * answer).  The logins follow it: the best working candidate is verified
 * as soon as nothing still running can beat it, while the others go on;
 * if its login fails for a reason of its own (say the sender), the next
 * best is verified.  A candidate whose login was never tried (no time
 * left) is still reported, unverified.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "diag.h"
#include "diag_dns.h"
#include "diag_int.h"
#include "json.h"
#include "xalloc.h"

#define ALT_CONCURRENCY		16	/* probes at once, besides the primary */
#define ALT_PORTS_MAX		16	/* as CONFIG_DIAG_PORTS_MAX */
#define ALT_SRV_MAX		8	/* SRV targets taken from the answer */
#define ALT_MIN_MS		200	/* a probe with less time left is not started */
#define ALT_GRACE_MS		250	/* the primary's own clock starts a little late */
#define ALT_VERIFY_MAX		2	/* logins on candidates, one after another */
#define ALT_DEFAULT_PORTS	"587/starttls 465/tls 25/starttls 2525/starttls"

enum alt_rank { RANK_SRV, RANK_GIVEN_HOST, RANK_GUESSED_NAME };

static const char *const rank_source[] = { "SRV", "port list", "host name" };

enum probe_state { P_QUEUED, P_RUNNING, P_DONE, P_SKIPPED };

/* The login with the credentials, after the parallel phase. */
enum verify_state { V_NONE, V_OK, V_AUTH_FAILED, V_FAILED };

struct probe {
	struct diag_target	 t;	/* a copy: own strings, no credentials */
	enum alt_rank		 rank;
	int			 order;
	enum probe_state	 state;
	struct diag_report	 report;
	enum verify_state	 vstate;
	struct diag_report	 vreport;	/* the login, when vstate != V_NONE */
};

struct run {
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;	/* the queue grew, a probe ended, stop */
	struct probe		**probes;
	size_t			 count, next;
	int			 producing;	/* the SRV lookup may still add */
	int			 stop;		/* start nothing more */
	int			 primary_done;
	int			 cancel_fd;	/* eventfd: the candidates' waits end */
	int			 primary_cancel_fd;
	long long		 deadline;
	int			 logins;	/* on candidates, by verify_next() */
	struct probe		*verified;	/* logged in and passed */
	int			 refused;	/* a candidate refused the password */
	const struct diag_target *t;
	struct diag_report	*r;
};

/* ------------------------------------------------------------ candidates */

static int
same_host(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	while (la > 0 && a[la - 1] == '.')
		la--;
	while (lb > 0 && b[lb - 1] == '.')
		lb--;
	return la == lb && strncasecmp(a, b, la) == 0;
}

/*
 * dst = src aimed at host:port/sec (own copies of every string).  full 0
 * leaves out user, password, mail_from and rcpt: a probe that does not
 * log in; timeout_ms is left for the caller.
 */
static void
target_copy(struct diag_target *dst, const struct diag_target *src, const char *host,
    int port, enum diag_security sec, int full)
{
	size_t i;

	memset(dst, 0, sizeof(*dst));
	dst->host = xstrdup(host);
	dst->port = port;
	dst->security = sec;
	if (full) {
		dst->user = src->user ? xstrdup(src->user) : NULL;
		dst->password = src->password ? xstrdup(src->password) : NULL;
		dst->mail_from = src->mail_from ? xstrdup(src->mail_from) : NULL;
		dst->rcpt = src->rcpt ? xstrdup(src->rcpt) : NULL;
	}
	dst->helo = src->helo ? xstrdup(src->helo) : NULL;
	dst->step_timeout_ms = src->step_timeout_ms;
	dst->ca_file = src->ca_file ? xstrdup(src->ca_file) : NULL;
	dst->resolver = src->resolver ? xstrdup(src->resolver) : NULL;
	if (src->allow_count > 0) {
		dst->allow = xcalloc(src->allow_count, sizeof(*dst->allow));
		for (i = 0; i < src->allow_count; i++)
			dst->allow[i] = xstrdup(src->allow[i]);
		dst->allow_count = src->allow_count;
	}
	/* what the sender chose binds every candidate: ports, addresses */
	dst->untrusted = src->untrusted;
	if (src->mail_port_count > 0) {
		dst->mail_ports = xcalloc(src->mail_port_count, sizeof(*dst->mail_ports));
		memcpy(dst->mail_ports, src->mail_ports, src->mail_port_count * sizeof(*dst->mail_ports));
		dst->mail_port_count = src->mail_port_count;
	}
}

/*
 * Queues host:port/sec unless it is the given combination or already
 * queued; a duplicate found again from a better source takes that source
 * (it is the same probe).  Caller holds run->mu (or runs alone).
 */
static void
probe_add(struct run *run, const char *host, int port, enum diag_security sec,
    enum alt_rank rank, int order)
{
	const struct diag_target *t = run->t;
	struct probe *p;
	size_t i;

	if (port == t->port && sec == t->security && same_host(host, t->host))
		return;
	for (i = 0; i < run->count; i++) {
		p = run->probes[i];
		if (p->t.port == port && p->t.security == sec && same_host(p->t.host, host)) {
			if (rank < p->rank || (rank == p->rank && order < p->order)) {
				p->rank = rank;
				p->order = order;
			}
			return;
		}
	}
	p = xcalloc(1, sizeof(*p));
	/* with credentials the candidate stops before the login (and so
	 * before the envelope); without them it runs the primary's probe */
	target_copy(&p->t, t, host, port, sec, t->user == NULL);
	p->rank = rank;
	p->order = order;
	p->state = P_QUEUED;
	run->probes = xrealloc(run->probes, (run->count + 1) * sizeof(*run->probes));
	run->probes[run->count++] = p;
}

static void
probe_free(struct probe *p)
{
	diag_target_free(&p->t);
	diag_report_free(&p->report);
	diag_report_free(&p->vreport);
	free(p);
}

/* "587/starttls 465/tls" (blank or comma separated); bad entries are
 * skipped (the config check refuses them earlier).  Returns the count. */
static size_t
ports_parse(const char *ports, int *port, enum diag_security *sec)
{
	char *copy = xstrdup(ports && *ports ? ports : ALT_DEFAULT_PORTS), *save = NULL, *tok;
	size_t n = 0;

	for (tok = strtok_r(copy, " \t,", &save); tok && n < ALT_PORTS_MAX;
	    tok = strtok_r(NULL, " \t,", &save)) {
		char *slash = strchr(tok, '/'), *end;
		long v;

		if (!slash)
			continue;
		*slash = '\0';
		errno = 0;
		v = strtol(tok, &end, 10);
		if (errno || end == tok || *end || v < 1 || v > 65535 ||
		    diag_security_parse(slash + 1, &sec[n]) != 0)
			continue;
		port[n++] = (int)v;
	}
	free(copy);
	return n;
}

/* The mail domain: the argument, else host less its first label when it
 * has three or more, else host; NULL for an IP literal (nothing to guess). */
static char *
mail_domain(const char *domain, const char *host)
{
	const char *dot;
	size_t len, labels = 1;

	if (domain && *domain)
		host = domain;
	else if (dg_host_is_ip(host))
		return NULL;
	len = strlen(host);
	while (len > 0 && host[len - 1] == '.')
		len--;
	if (len == 0)
		return NULL;
	if (host == domain)
		return xstrndup(host, len);
	for (size_t i = 0; i < len; i++)
		labels += host[i] == '.';
	dot = memchr(host, '.', len);
	if (labels >= 3 && dot)
		return xstrndup(dot + 1, len - (size_t)(dot + 1 - host));
	return xstrndup(host, len);
}

/* --------------------------------------------------------------- threads */

static void cancel(int fd);
static void stop_all(struct run *run);

/* 1 when the primary's verdict leaves nothing for a candidate to do: it
 * worked, or the server refused the password (no port fixes that). */
static int
primary_final(const struct run *run)
{
	return run->r->verdict == DIAG_OK ||
	    (run->r->verdict == DIAG_AUTH_FAILED && run->t->user != NULL);
}

static void *
primary_main(void *arg)
{
	struct run *run = arg;

	dg_cancel_fd = run->primary_cancel_fd;
	diag_smtp(run->t, run->r);
	pthread_mutex_lock(&run->mu);
	run->primary_done = 1;
	if (primary_final(run))
		stop_all(run);	/* no alternative is wanted: end the SRV lookup too */
	pthread_cond_broadcast(&run->cv);
	pthread_mutex_unlock(&run->mu);
	return NULL;
}

static void *
worker_main(void *arg)
{
	struct run *run = arg;
	struct probe *p;
	long long left;

	dg_cancel_fd = run->cancel_fd;
	pthread_mutex_lock(&run->mu);
	for (;;) {
		while (!run->stop && run->next >= run->count && run->producing)
			pthread_cond_wait(&run->cv, &run->mu);
		if (run->stop || run->next >= run->count)
			break;
		p = run->probes[run->next++];
		left = run->deadline - dg_now_ms();
		if (left < ALT_MIN_MS) {
			p->state = P_SKIPPED;
			pthread_cond_broadcast(&run->cv);
			continue;
		}
		p->state = P_RUNNING;
		p->t.timeout_ms = (long)left;
		pthread_mutex_unlock(&run->mu);
		diag_smtp(&p->t, &p->report);
		pthread_mutex_lock(&run->mu);
		p->state = P_DONE;
		pthread_cond_broadcast(&run->cv);
	}
	pthread_mutex_unlock(&run->mu);
	return NULL;
}

/* ---------------------------------------------------------------- choice */

/* Ranking key, smaller is better: source, then order. */
static long long
probe_key(const struct probe *p)
{
	return ((long long)p->rank << 20) + p->order;
}

/* 1 if the report offers AUTH PLAIN or LOGIN.  diag_smtp() records the
 * mechanisms as the detail of its step "AUTH mechanisms". */
static int
offers_login(const struct diag_report *r)
{
	size_t i;

	for (i = 0; i < r->step_count; i++) {
		const char *d = r->steps[i].detail, *w;
		size_t len;

		if (strcmp(r->steps[i].name, "AUTH mechanisms") != 0 || !r->steps[i].ok || !d)
			continue;
		for (w = d; *w; w += len) {
			w += strspn(w, " ");
			len = strcspn(w, " ");
			if (len == 5 && (!strncasecmp(w, "PLAIN", 5) || !strncasecmp(w, "LOGIN", 5)))
				return 1;
		}
	}
	return 0;
}

/* A finished candidate a client could use: with credentials, one that
 * offers a login this probe speaks, over TLS unless the combination is
 * security none, and whose verification (if any) did not fail; without,
 * one whose whole probe passed. */
static int
probe_works(const struct run *run, const struct probe *p)
{
	if (p->state != P_DONE || p->report.verdict != DIAG_OK || p->vstate == V_FAILED)
		return 0;
	if (!run->t->user)
		return 1;
	return offers_login(&p->report) && (p->report.tls.used || p->t.security == DIAG_SEC_NONE);
}

/* The best finished working probe, or NULL.  Caller holds run->mu. */
static struct probe *
best_done(const struct run *run)
{
	struct probe *best = NULL;
	size_t i;

	for (i = 0; i < run->count; i++) {
		struct probe *p = run->probes[i];
		if (probe_works(run, p) && (!best || probe_key(p) < probe_key(best)))
			best = p;
	}
	return best;
}

/*
 * 1 when waiting longer cannot change the answer: the primary's verdict
 * needs no alternative, or no probe still to finish could beat the best
 * working one (a probe not yet done is judged as if it will work).  Caller
 * holds run->mu.
 */
static int
decided(const struct run *run)
{
	const struct probe *best;
	long long best_key;
	size_t i;

	if (!run->primary_done)
		return 0;
	if (primary_final(run))
		return 1;
	best = best_done(run);
	if (run->producing && (!best || best->rank != RANK_SRV || best->order != 0))
		return 0;	/* an SRV target may still come and win */
	best_key = best ? probe_key(best) : -1;
	for (i = 0; i < run->count; i++) {
		const struct probe *p = run->probes[i];
		if (p->state == P_DONE || p->state == P_SKIPPED)
			continue;
		if (!best || probe_key(p) < best_key)
			return 0;
	}
	return 1;
}

/*
 * Called whenever decided(): logs in with the credentials on the best
 * working candidate not tried yet, unlocking run->mu meanwhile (the other
 * candidates keep running; none of them logs in).  1 when that login
 * failed for a reason of the candidate's own (e.g. its MAIL FROM), so the
 * next best is worth waiting for; 0 when there is nothing more to do:
 * verified (run->verified), the password refused (run->refused), no
 * credentials, ALT_VERIFY_MAX logins made, or less than ALT_MIN_MS left.
 */
static int
verify_next(struct run *run)
{
	const struct diag_target *t = run->t;
	struct probe *p;
	struct diag_target v;
	struct diag_report vr;
	long long left = run->deadline - dg_now_ms();

	if (primary_final(run) || !t->user || !t->password || run->verified || run->refused ||
	    run->logins >= ALT_VERIFY_MAX || left < ALT_MIN_MS || !(p = best_done(run)))
		return 0;
	run->logins++;
	target_copy(&v, t, p->t.host, p->t.port, p->t.security, 1);
	v.timeout_ms = (long)left;
	pthread_mutex_unlock(&run->mu);
	diag_smtp(&v, &vr);
	diag_target_free(&v);
	pthread_mutex_lock(&run->mu);
	p->vreport = vr;
	if (vr.verdict == DIAG_OK) {
		p->vstate = V_OK;
		run->verified = p;
		return 0;
	}
	if (vr.verdict == DIAG_AUTH_FAILED) {
		/* the password is wrong here, so it is wrong everywhere */
		p->vstate = V_AUTH_FAILED;
		run->refused = 1;
		return 0;
	}
	p->vstate = V_FAILED;	/* e.g. the sender refused: not this one */
	pthread_cond_broadcast(&run->cv);
	return 1;
}

static void
cancel(int fd)
{
	uint64_t one = 1;

	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0) {
		/* an eventfd write fails only at its 2^64 limit: already signalled */
	}
}

/* No probe starts any more; the running ones end at their next wait.
 * Caller holds run->mu. */
static void
stop_all(struct run *run)
{
	size_t i;

	run->stop = 1;
	for (i = 0; i < run->count; i++)
		if (run->probes[i]->state == P_QUEUED)
			run->probes[i]->state = P_SKIPPED;
	cancel(run->cancel_fd);
	pthread_cond_broadcast(&run->cv);
}

/* -------------------------------------------------------------- the call */

enum diag_verdict
diag_smtp_with_alternatives(const struct diag_target *t, const char *ports,
    const char *domain, struct diag_report *r, struct diag_alternative *alt)
{
	struct run run;
	pthread_t primary, workers[ALT_CONCURRENCY];
	pthread_condattr_t ca;
	int port[ALT_PORTS_MAX], nworkers = 0, i;
	enum diag_security sec[ALT_PORTS_MAX];
	size_t nports, k;
	char *dom;
	struct probe *best;
	int primary_cancelled = 0, verified = 0;

	memset(alt, 0, sizeof(*alt));
	memset(r, 0, sizeof(*r));
	/* the trust store is loaded once per process; not on anyone's clock */
	dg_trust_init();

	memset(&run, 0, sizeof(run));
	run.t = t;
	run.r = r;
	run.deadline = dg_now_ms() + (t->timeout_ms > 0 ? t->timeout_ms : DIAG_TIMEOUT_DEFAULT_MS);
	run.cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	run.primary_cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pthread_mutex_init(&run.mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&run.cv, &ca);
	pthread_condattr_destroy(&ca);

	if (pthread_create(&primary, NULL, primary_main, &run) != 0) {
		/* no thread to be had: the primary alone, in this thread */
		primary_main(&run);
		goto out;
	}

	/* no DNS needed to queue these: the given host, then the guessed names */
	nports = t->host && *t->host ? ports_parse(ports, port, sec) : 0;
	dom = t->host && *t->host ? mail_domain(domain, t->host) : NULL;
	pthread_mutex_lock(&run.mu);
	for (k = 0; k < nports; k++)
		probe_add(&run, t->host, port[k], sec[k], RANK_GIVEN_HOST, (int)k);
	if (dom) {
		const char *prefix[] = { "smtp.", "mail." };
		for (i = 0; i < 2; i++) {
			char *h = xmalloc(strlen(prefix[i]) + strlen(dom) + 1);
			memcpy(h, prefix[i], strlen(prefix[i]));
			memcpy(h + strlen(prefix[i]), dom, strlen(dom) + 1);
			for (k = 0; k < nports; k++)
				probe_add(&run, h, port[k], sec[k], RANK_GUESSED_NAME,
				    i * ALT_PORTS_MAX + (int)k);
			free(h);
		}
		run.producing = 1;
	}
	pthread_mutex_unlock(&run.mu);
	for (i = 0; i < ALT_CONCURRENCY && ((size_t)i < run.count || run.producing); i++) {
		if (pthread_create(&workers[nworkers], NULL, worker_main, &run) != 0)
			break;
		nworkers++;
	}
	if (nworkers == 0) {
		pthread_mutex_lock(&run.mu);
		stop_all(&run);	/* no thread for them: the primary alone */
		pthread_mutex_unlock(&run.mu);
	}

	if (dom) {
		/* RFC 6186 submission (STARTTLS) and RFC 8314 submissions (TLS) */
		const char *svc[] = { "_submission._tcp.", "_submissions._tcp." };
		char *names[2];
		struct dg_srv *srv = NULL;
		size_t nsrv = 0;
		long long d = dg_now_ms() + (t->step_timeout_ms > 0 ? t->step_timeout_ms : DIAG_STEP_TIMEOUT_DEFAULT_MS);
		int saved = dg_cancel_fd;

		if (d > run.deadline - ALT_MIN_MS)
			d = run.deadline - ALT_MIN_MS;
		for (i = 0; i < 2; i++) {
			names[i] = xmalloc(strlen(svc[i]) + strlen(dom) + 1);
			memcpy(names[i], svc[i], strlen(svc[i]));
			memcpy(names[i] + strlen(svc[i]), dom, strlen(dom) + 1);
		}
		dg_cancel_fd = run.cancel_fd;
		if (nworkers > 0 && dg_dns_srv((const char *const *)names, 2, t->resolver, d, &srv, &nsrv, NULL) == DG_DNS_OK) {
			pthread_mutex_lock(&run.mu);
			for (k = 0; k < nsrv && k < ALT_SRV_MAX; k++)
				probe_add(&run, srv[k].target, srv[k].port,
				    srv[k].service == 0 ? DIAG_SEC_STARTTLS : DIAG_SEC_TLS, RANK_SRV, (int)k);
			pthread_mutex_unlock(&run.mu);
		}
		dg_cancel_fd = saved;
		dg_dns_srv_free(srv, nsrv);
		free(names[0]);
		free(names[1]);
		free(dom);
		pthread_mutex_lock(&run.mu);
		run.producing = 0;
		pthread_cond_broadcast(&run.cv);
		pthread_mutex_unlock(&run.mu);
	}

	/* wait until the answer is known (and verified, with credentials),
	 * then stop whatever still runs */
	pthread_mutex_lock(&run.mu);
again:
	while (!decided(&run)) {
		long long guard = run.deadline + ALT_GRACE_MS, now = dg_now_ms();
		struct timespec ts;

		if (now >= run.deadline && !run.stop)
			stop_all(&run);	/* the candidates are out of time */
		if (now >= guard && !primary_cancelled) {
			primary_cancelled = 1;
			cancel(run.primary_cancel_fd);
		}
		if (primary_cancelled && run.stop) {
			/* everything is told to end; just wait for the primary */
			while (!run.primary_done)
				pthread_cond_wait(&run.cv, &run.mu);
			break;
		}
		{
			long long until = now < run.deadline ? run.deadline : guard;
			ts.tv_sec = (time_t)(until / 1000);
			ts.tv_nsec = (long)(until % 1000) * 1000000L;
		}
		pthread_cond_timedwait(&run.cv, &run.mu, &ts);
	}
	if (verify_next(&run))
		goto again;
	stop_all(&run);
	pthread_mutex_unlock(&run.mu);
	for (i = 0; i < nworkers; i++)
		pthread_join(workers[i], NULL);
	pthread_join(primary, NULL);

out:
	for (k = 0; k < run.count; k++)
		if (run.probes[k]->state == P_DONE || run.probes[k]->state == P_RUNNING)
			alt->tried++;
	/* auth_failed (the primary's or a verification's): no candidate is
	 * offered, not even unverified; the port is not what the client must
	 * change, and "works instead" would send them to fail the same login
	 * elsewhere.  Otherwise the verified one, else the best working one
	 * whose login was not tried (no credentials, no time left, or both
	 * logins spent on candidates that failed for reasons of their own). */
	best = NULL;
	if (run.verified) {
		best = run.verified;
		verified = 1;
	} else if (!primary_final(&run) && !run.refused)
		best = best_done(&run);
	if (best) {
		struct diag_report *rep = verified ? &best->vreport : &best->report;

		alt->found = 1;
		alt->host = xstrdup(best->t.host);
		alt->port = best->t.port;
		alt->security = best->t.security;
		alt->verified = verified;
		alt->source = rank_source[best->rank];
		alt->report = *rep;
		memset(rep, 0, sizeof(*rep));
	}
	for (k = 0; k < run.count; k++)
		probe_free(run.probes[k]);
	free(run.probes);
	if (run.cancel_fd >= 0)
		close(run.cancel_fd);
	if (run.primary_cancel_fd >= 0)
		close(run.primary_cancel_fd);
	pthread_cond_destroy(&run.cv);
	pthread_mutex_destroy(&run.mu);
	return r->verdict;
}

void
diag_alternative_json(const struct diag_alternative *alt, struct buf *out)
{
	if (!alt || !alt->found) {
		json_sep(out);
		buf_append_str(out, "null");
		return;
	}
	json_object_begin(out);
	json_kv_string(out, "host", alt->host ? alt->host : "");
	json_kv_int(out, "port", alt->port);
	json_kv_string(out, "security", diag_security_name(alt->security));
	json_kv_bool(out, "verified", alt->verified);
	json_kv_string(out, "source", alt->source ? alt->source : "");
	json_object_end(out);
}

void
diag_alternative_free(struct diag_alternative *alt)
{
	if (!alt)
		return;
	free(alt->host);
	diag_report_free(&alt->report);
	memset(alt, 0, sizeof(*alt));
}
