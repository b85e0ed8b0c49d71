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
 * Stopping early: once the primary is ok, or the best finished alternative
 * can no longer be beaten by one still running, the rest are cancelled
 * through an eventfd that every wait of theirs polls (dg_cancel_fd), so
 * the call returns without waiting for silent ports.  A last guard cancels
 * the primary too if it overruns the deadline by ALT_GRACE_MS.
 *
 * Ranking (smaller is better): verified with the same credentials first,
 * then the source (SRV, the given host, guessed names), then the position
 * in DiagnosePorts (or in the sorted SRV answer).
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
#define ALT_DEFAULT_PORTS	"587/starttls 465/tls 25/starttls 2525/starttls"

enum alt_rank { RANK_SRV, RANK_GIVEN_HOST, RANK_GUESSED_NAME };

static const char *const rank_source[] = { "SRV", "port list", "host name" };

enum probe_state { P_QUEUED, P_RUNNING, P_DONE, P_SKIPPED };

struct probe {
	struct diag_target	 t;	/* a copy: own strings */
	enum alt_rank		 rank;
	int			 order;
	enum probe_state	 state;
	struct diag_report	 report;
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
	p->t.host = xstrdup(host);
	p->t.port = port;
	p->t.security = sec;
	p->t.user = t->user ? xstrdup(t->user) : NULL;
	p->t.password = t->password ? xstrdup(t->password) : NULL;
	p->t.mail_from = t->mail_from ? xstrdup(t->mail_from) : NULL;
	p->t.rcpt = t->rcpt ? xstrdup(t->rcpt) : NULL;
	p->t.helo = t->helo ? xstrdup(t->helo) : NULL;
	p->t.step_timeout_ms = t->step_timeout_ms;
	p->t.ca_file = t->ca_file ? xstrdup(t->ca_file) : NULL;
	p->t.resolver = t->resolver ? xstrdup(t->resolver) : NULL;
	if (t->allow_count > 0) {
		p->t.allow = xcalloc(t->allow_count, sizeof(*p->t.allow));
		for (i = 0; i < t->allow_count; i++)
			p->t.allow[i] = xstrdup(t->allow[i]);
		p->t.allow_count = t->allow_count;
	}
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

static void *
primary_main(void *arg)
{
	struct run *run = arg;

	dg_cancel_fd = run->primary_cancel_fd;
	diag_smtp(run->t, run->r);
	pthread_mutex_lock(&run->mu);
	run->primary_done = 1;
	if (run->r->verdict == DIAG_OK)
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

/* Ranking key, smaller is better: verified, source, order. */
static long long
probe_key(const struct probe *p, int verified)
{
	return (verified ? 0 : 1LL << 40) + ((long long)p->rank << 20) + p->order;
}

static int
probe_ok(const struct probe *p)
{
	return p->state == P_DONE && p->report.verdict == DIAG_OK;
}

static int
probe_verified(const struct probe *p)
{
	return probe_ok(p) && p->t.user != NULL;
}

/* The best finished working probe, or NULL.  Caller holds run->mu. */
static struct probe *
best_done(const struct run *run)
{
	struct probe *best = NULL;
	size_t i;

	for (i = 0; i < run->count; i++) {
		struct probe *p = run->probes[i];
		if (probe_ok(p) && (!best || probe_key(p, probe_verified(p)) < probe_key(best, probe_verified(best))))
			best = p;
	}
	return best;
}

/*
 * 1 when waiting longer cannot change the answer: the primary worked, or
 * failed and no probe still to finish could beat the best one (a probe not
 * yet done is judged as if it will verify).  Caller holds run->mu.
 */
static int
decided(const struct run *run)
{
	const struct probe *best;
	long long best_key;
	size_t i;

	if (!run->primary_done)
		return 0;
	if (run->r->verdict == DIAG_OK)
		return 1;
	best = best_done(run);
	if (run->producing && (!best || best->rank != RANK_SRV || best->order != 0))
		return 0;	/* an SRV target may still come and win */
	best_key = best ? probe_key(best, probe_verified(best)) : -1;
	for (i = 0; i < run->count; i++) {
		const struct probe *p = run->probes[i];
		if (p->state == P_DONE || p->state == P_SKIPPED)
			continue;
		if (!best || probe_key(p, p->t.user != NULL) < best_key)
			return 0;
	}
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
	int primary_cancelled = 0;

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

	/* wait until the answer is known, then stop whatever still runs */
	pthread_mutex_lock(&run.mu);
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
	stop_all(&run);
	pthread_mutex_unlock(&run.mu);
	for (i = 0; i < nworkers; i++)
		pthread_join(workers[i], NULL);
	pthread_join(primary, NULL);

out:
	for (k = 0; k < run.count; k++)
		if (run.probes[k]->state == P_DONE || run.probes[k]->state == P_RUNNING)
			alt->tried++;
	best = r->verdict == DIAG_OK ? NULL : best_done(&run);
	if (best) {
		alt->found = 1;
		alt->host = xstrdup(best->t.host);
		alt->port = best->t.port;
		alt->security = best->t.security;
		alt->verified = probe_verified(best);
		alt->source = rank_source[best->rank];
		alt->report = best->report;
		memset(&best->report, 0, sizeof(best->report));
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
