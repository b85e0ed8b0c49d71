/*
 * diagnose - the automatic diagnosis of new outgoing-mail cases; see
 * diagnose.h for the design (pool of probe threads, store written only by
 * the loop).
 */
#include "diagnose.h"

#include <ctype.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <strings.h>
#include <time.h>

#include "buf.h"
#include "config.h"
#include "diag.h"
#include "log.h"
#include "mailhints.h"
#include "xalloc.h"

#define DIAGNOSE_WINDOW		3600	/* the rate limit's and the incident's hour */
#define DIAGNOSE_STOP_WAIT_MS	3000	/* grace for running probes at shutdown */
#define DIAGNOSE_REPORT_MAX	(256 * 1024)
#define DIAGNOSE_SAVE_TRIES	20	/* passes a finished run waits for the store */
#define DIAGNOSE_INCIDENT_CASES	20	/* cases named in the incident line */

/* One run.  The input fields are written by the loop before the job is
 * queued and never changed after; the results only by the pool thread
 * that takes it.  The loop reads results only from the done queue. */
struct diag_job {
	struct diag_job		*next;		/* todo or done queue, or the retry list */
	struct diag_job		*flight_next;	/* every job not recorded yet (loop only) */
	long long		 case_id;
	char			*customer;	/* rate-limit key */
	char			*client;
	const char		*source;	/* static */
	char			*domain;	/* for smtp./mail./SRV guesses; may be NULL */
	char			*ports;		/* DiagnosePorts in config syntax */
	char			*smtp_password_file;	/* NULL: no authentication */
	char			*imap_password_file;
	char			*client_quote;	/* a server reply the client pasted; may be NULL */
	struct diag_target	 smtp;
	struct diag_target	 imap;
	int			 has_imap;
	int			 save_tries;
	/* results */
	struct diag_report	 smtp_r;
	struct diag_report	 imap_r;
	struct diag_alternative	 alt;
	char			*cred_error;	/* the password file could not be used */
	long			 elapsed_ms;
};

struct diagnose_ctx {
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;		/* work queued, a run finished, stop */
	struct diag_job		*todo, *todo_tail;
	struct diag_job		*done, *done_tail;
	int			 busy;		/* threads inside a probe */
	int			 stopping;
	pthread_t		*threads;
	size_t			 nthreads;
	/* the loop's own */
	struct diag_job		*flight;	/* handed out, not recorded */
	size_t			 in_flight;
	struct diag_job		*retry;		/* finished, the store was busy */
	long long		 watermark;	/* highest case id looked at */
	time_t			 rescan_at;	/* walk again from the first case then:
						 * another worker's lease has run out */
	/* DiagnosePerHour: when each run of the last hour started, oldest
	 * first; read from the store once (runs before a restart count) */
	time_t			*starts;
	size_t			 nstarts, starts_cap;
	int			 starts_known;
};

/* ---------------------------------------------------------------- jobs */

static void
job_free(struct diag_job *j)
{
	if (j == NULL)
		return;
	free(j->customer);
	free(j->client);
	free(j->domain);
	free(j->ports);
	free(j->smtp_password_file);
	free(j->imap_password_file);
	free(j->client_quote);
	free(j->cred_error);
	diag_target_free(&j->smtp);
	diag_target_free(&j->imap);
	diag_report_free(&j->smtp_r);
	diag_report_free(&j->imap_r);
	diag_alternative_free(&j->alt);
	free(j);
}

static long long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads the password for t from path; on failure the probe goes on
 * without authentication and the reason is kept for staff.  The password
 * itself lives only in t->password until job_forget_passwords(). */
static void
job_load_password(struct diag_job *j, struct diag_target *t, const char *path)
{
	struct buf err;

	if (path == NULL || t->user == NULL)
		return;
	buf_init(&err, 1024);
	if (diag_target_password_file(t, path, &err) != 0) {
		if (j->cred_error == NULL)
			j->cred_error = xstrdup(err.len ? buf_str(&err) : "cannot be read");
		free(t->user);
		t->user = NULL;
		free(t->mail_from);
		t->mail_from = NULL;
		free(t->rcpt);
		t->rcpt = NULL;
	}
	buf_free(&err);
}

static void
forget_password(struct diag_target *t)
{
	if (t->password != NULL) {
		explicit_bzero(t->password, strlen(t->password));
		free(t->password);
		t->password = NULL;
	}
}

/* The slow part, on a pool thread. */
static void
job_probe(struct diag_job *j)
{
	long long start = mono_ms();

	job_load_password(j, &j->smtp, j->smtp_password_file);
	diag_smtp_with_alternatives(&j->smtp, j->ports, j->domain, &j->smtp_r, &j->alt);
	forget_password(&j->smtp);
	if (j->has_imap) {
		job_load_password(j, &j->imap, j->imap_password_file);
		diag_imap(&j->imap, &j->imap_r);
		forget_password(&j->imap);
	}
	j->elapsed_ms = (long)(mono_ms() - start);
}

/* ---------------------------------------------------------------- pool */

static void *
pool_main(void *arg)
{
	struct diagnose_ctx *d = arg;
	struct diag_job *j;

	pthread_mutex_lock(&d->mu);
	for (;;) {
		while (d->todo == NULL && !d->stopping)
			pthread_cond_wait(&d->cv, &d->mu);
		if (d->stopping)
			break;
		j = d->todo;
		if ((d->todo = j->next) == NULL)
			d->todo_tail = NULL;
		j->next = NULL;
		d->busy++;
		pthread_mutex_unlock(&d->mu);

		job_probe(j);

		pthread_mutex_lock(&d->mu);
		d->busy--;
		if (d->done_tail != NULL)
			d->done_tail->next = j;
		else
			d->done = j;
		d->done_tail = j;
		pthread_cond_broadcast(&d->cv);
	}
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

struct diagnose_ctx *
diagnose_new(void)
{
	struct diagnose_ctx *d = xcalloc(1, sizeof(*d));

	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cv, NULL);
	return d;
}

/* Threads are started as runs need them, up to want (DiagnoseConcurrency
 * may grow on reload; it never shrinks the pool, only the runs handed
 * out).  The signals stay with the loop's thread, so that a SIGTERM cuts
 * its nap short. */
static void
pool_grow(struct diagnose_ctx *d, size_t want)
{
	sigset_t all, old;

	if (d->nthreads >= want)
		return;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	d->threads = xrealloc(d->threads, want * sizeof(*d->threads));
	while (d->nthreads < want) {
		if (pthread_create(&d->threads[d->nthreads], NULL, pool_main, d) != 0) {
			log_warn("diagnosis: cannot start a probe thread");
			break;
		}
		d->nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void
diagnose_free(struct diagnose_ctx *d)
{
	struct diag_job *j, *next;
	struct timespec until;
	int busy;

	if (d == NULL)
		return;
	pthread_mutex_lock(&d->mu);
	d->stopping = 1;
	pthread_cond_broadcast(&d->cv);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += DIAGNOSE_STOP_WAIT_MS / 1000;
	while (d->busy > 0 && pthread_cond_timedwait(&d->cv, &d->mu, &until) == 0)
		;
	busy = d->busy;
	pthread_mutex_unlock(&d->mu);
	if (busy > 0) {
		/* A probe cannot be interrupted from outside; it ends within
		 * DiagnoseTimeout, but the process should not wait that long
		 * to stop.  Those cases are diagnosed again after a restart. */
		log_info("stopping with %d diagnos%s still running; %s run again at the next start",
		    busy, busy == 1 ? "is" : "es", busy == 1 ? "it will" : "they will");
		return;
	}
	for (size_t i = 0; i < d->nthreads; i++)
		pthread_join(d->threads[i], NULL);
	free(d->threads);
	for (j = d->flight; j != NULL; j = next) {
		next = j->flight_next;
		job_free(j);
	}
	free(d->starts);
	pthread_cond_destroy(&d->cv);
	pthread_mutex_destroy(&d->mu);
	free(d);
}

/* ------------------------------------------------------------ settings */

static const char *
domain_of(const char *address)
{
	const char *at = address ? strrchr(address, '@') : NULL;

	return at != NULL && at[1] != '\0' ? at + 1 : NULL;
}

static int
default_port(enum diag_security sec)
{
	return sec == DIAG_SEC_TLS ? 465 : sec == DIAG_SEC_STARTTLS ? 587 : 25;
}

/* A host name or address as it can be probed: printable, no blanks. */
static int
host_usable(const char *h)
{
	if (h == NULL || *h == '\0' || strlen(h) > 253)
		return 0;
	for (; *h; h++)
		if ((unsigned char)*h <= ' ' || (unsigned char)*h >= 0x7f || *h == '/')
			return 0;
	return 1;
}

void
diagnose_target_config(struct diag_target *t, const struct config *cfg)
{
	t->timeout_ms = cfg->diagnose_timeout_ms;
	if (cfg->diagnose_ca_file != NULL)
		t->ca_file = xstrdup(cfg->diagnose_ca_file);
	if (cfg->probe_allow.count > 0) {
		t->allow = xcalloc(cfg->probe_allow.count, sizeof(*t->allow));
		for (size_t i = 0; i < cfg->probe_allow.count; i++)
			t->allow[i] = xstrdup(cfg->probe_allow.items[i]);
		t->allow_count = cfg->probe_allow.count;
	}
	if (cfg->diagnose_resolver != NULL)
		t->resolver = xstrdup(cfg->diagnose_resolver);
}

/* Did staff, not the sender, choose what is probed?  For now: the settings
 * came from the customer record.  (The sender-authenticity verdict the
 * intake is getting is to widen this to authenticated senders.) */
static int
sender_trusted(const struct diag_job *j)
{
	return strcmp(j->source, "customer record") == 0;
}

/* SMTP's and IMAP's own ports: with DiagnosePorts, the only ones a target
 * a sender chose is probed on. */
static const int smtp_mail_ports[] = { 25, 465, 587, 2525 };
static const int imap_mail_ports[] = { 143, 993 };

static void
port_add(struct diag_target *t, int port)
{
	for (size_t i = 0; i < t->mail_port_count; i++)
		if (t->mail_ports[i] == port)
			return;
	t->mail_ports[t->mail_port_count++] = port;
}

/*
 * A target a sender chose (their message, their domain; anyone may write
 * either under anyone's From): no ProbeAllow, which is staff's, for staff's
 * targets and the tests; only mail ports, DiagnosePorts and SMTP's own for
 * SMTP, IMAP's for IMAP (diag.h, untrusted).
 */
static void
target_untrust(struct diag_target *t, const struct config *cfg, int imap)
{
	for (size_t i = 0; i < t->allow_count; i++)
		free(t->allow[i]);
	free(t->allow);
	t->allow = NULL;
	t->allow_count = 0;
	t->untrusted = 1;
	free(t->mail_ports);
	t->mail_port_count = 0;
	t->mail_ports = xcalloc(cfg->diagnose_port_count + 4, sizeof(*t->mail_ports));
	if (imap) {
		for (size_t i = 0; i < sizeof(imap_mail_ports) / sizeof(imap_mail_ports[0]); i++)
			port_add(t, imap_mail_ports[i]);
		return;
	}
	for (size_t i = 0; i < cfg->diagnose_port_count; i++)
		port_add(t, cfg->diagnose_ports[i]);
	for (size_t i = 0; i < sizeof(smtp_mail_ports) / sizeof(smtp_mail_ports[0]); i++)
		port_add(t, smtp_mail_ports[i]);
}

void
diagnose_ports_text(const struct config *cfg, struct buf *out)
{
	buf_init(out, 1024);
	for (size_t i = 0; i < cfg->diagnose_port_count; i++)
		buf_printf(out, "%s%d/%s", i ? " " : "", cfg->diagnose_ports[i],
		    diag_security_name(cfg->diagnose_security[i]));
}

static void
target_set(struct diag_target *t, const char *host, int port, const char *security)
{
	enum diag_security sec;

	if (security == NULL || diag_security_parse(security, &sec) != 0)
		sec = port == 465 || port == 993 ? DIAG_SEC_TLS : DIAG_SEC_STARTTLS;
	t->host = xstrdup(host);
	t->security = sec;
	t->port = port > 0 ? port : default_port(sec);
}

/* The customer record's settings, if it has SMTP ones.  1 found, 0 not,
 * -1 store error. */
static int
settings_from_record(struct store *s, struct diag_job *j, const char *client)
{
	struct customer_mail *cm = xcalloc(1, sizeof(*cm));
	enum store_rc rc = store_customer_mail_lookup(s, client, cm);
	int found = 0;

	if (rc == STORE_OK && host_usable(cm->smtp_host)) {
		target_set(&j->smtp, cm->smtp_host, cm->smtp_port, cm->smtp_security);
		if (cm->smtp_user[0] && cm->smtp_password_file[0]) {
			j->smtp.user = xstrdup(cm->smtp_user);
			j->smtp_password_file = xstrdup(cm->smtp_password_file);
		}
		if (host_usable(cm->imap_host)) {
			j->has_imap = 1;
			target_set(&j->imap, cm->imap_host, cm->imap_port, cm->imap_security);
			if (j->imap.port == 587)
				j->imap.port = 143;
			else if (j->imap.port == 465)
				j->imap.port = 993;
			if (cm->imap_port > 0)
				j->imap.port = cm->imap_port;
			if (cm->imap_user[0] && cm->imap_password_file[0]) {
				j->imap.user = xstrdup(cm->imap_user);
				j->imap_password_file = xstrdup(cm->imap_password_file);
			}
		}
		j->source = "customer record";
		found = 1;
	}
	free(cm);
	if (rc != STORE_OK && rc != STORE_NOTFOUND)
		return -1;
	return found;
}

/* What the client wrote in the message that opened the case (its stored
 * excerpt: the start of the decoded text, where the settings and a pasted
 * error usually are).  1 found a host, 0 not, -1 store error. */
static int
settings_from_message(struct store *s, struct diag_job *j, long long case_id,
    const char *client)
{
	struct message_rec *m = xcalloc(1, sizeof(*m));
	struct mail_hints h;
	long long first = 0;
	enum store_rc rc;
	int found = 0;

	memset(&h, 0, sizeof(h));
	if ((rc = store_case_first_message(s, case_id, &first)) == STORE_OK)
		rc = store_message_get(s, first, m);
	if (rc != STORE_OK) {
		free(m);
		return rc == STORE_NOTFOUND ? 0 : -1;
	}
	if (mail_hints_parse(m->excerpt, strlen(m->excerpt), domain_of(client), &h) > 0) {
		if (h.reply_text != NULL)
			j->client_quote = xstrdup(h.reply_text);
		else if (h.error_hint != NULL)
			j->client_quote = xstrdup(h.error_hint);
		if (host_usable(h.smtp_host)) {
			target_set(&j->smtp, h.smtp_host, h.smtp_port,
			    h.smtp_security >= 0 ? diag_security_name(h.smtp_security) : NULL);
			j->source = "client's message";
			/* the names guessed and the SRV record asked are the
			 * sender's own, not those of a domain the text names */
			if (domain_of(client) != NULL)
				j->domain = xstrdup(domain_of(client));
			found = 1;
		}
	}
	mail_hints_free(&h);
	free(m);
	return found;
}

/* ------------------------------------------------------------- starting */

struct pending {
	struct case_rec	*items;
	size_t		 count;
};

static int
pending_collect(const struct case_rec *c, void *arg)
{
	struct pending *p = arg;

	p->items = xrealloc(p->items, (p->count + 1) * sizeof(*p->items));
	p->items[p->count++] = *c;
	return 0;
}

/* Records that the case gets no diagnosis, and why. */
static enum store_rc
record_skip(struct store *s, const struct case_rec *c, const char *customer, const char *why,
    time_t now)
{
	struct diagnosis_rec *r = xcalloc(1, sizeof(*r));
	enum store_rc rc;

	r->case_id = c->id;
	snprintf(r->customer, sizeof(r->customer), "%s", customer);
	snprintf(r->client, sizeof(r->client), "%s", c->client);
	r->created = now;
	snprintf(r->protocol, sizeof(r->protocol), "smtp");
	snprintf(r->skipped, sizeof(r->skipped), "%s", why);
	rc = store_diagnosis_add(s, r);
	free(r);
	if (rc == STORE_EXISTS)
		rc = STORE_OK;
	if (rc == STORE_OK)
		log_info("HG-%lld: diagnosis skipped (%s) for <%s>", c->id, why, c->client);
	return rc;
}

/*
 * The DiagnosePerCustomerPerHour key: what a sender cannot vary.  An
 * address, "+detail" and all, is the sender's to choose (and a From is
 * forged at will); the domain is not: "@domain", lower case.  Every sender
 * of a domain shares its runs, whether the domain is theirs or forged.
 */
static void
rate_key(const char *client, char *out, size_t outlen)
{
	const char *dom = domain_of(client);
	size_t len;

	if (snprintf(out, outlen, "@%s", dom != NULL ? dom : client) >= (int)outlen)
		out[outlen - 1] = '\0';	/* cut: still one key per domain */
	config_normalize_address(out);
	while ((len = strlen(out)) > 1 && out[len - 1] == '.')
		out[len - 1] = '\0';
}

static void
global_started(struct diagnose_ctx *d, time_t now)
{
	if (d->nstarts == d->starts_cap) {
		d->starts_cap = d->starts_cap ? 2 * d->starts_cap : 64;
		d->starts = xrealloc(d->starts, d->starts_cap * sizeof(*d->starts));
	}
	d->starts[d->nstarts++] = now;
}

/* DiagnosePerHour: forgets the starts older than the hour and says in
 * *room whether another run fits.  The first call reads the runs of the
 * last hour from the store, all counted as started now (a restart does not
 * reset the cap; it may hold a little longer than the hour). */
static enum store_rc
global_room(struct diagnose_ctx *d, struct store *s, const struct config *cfg, time_t now,
    int *room)
{
	size_t old = 0;

	if (!d->starts_known) {
		struct store_stats st;
		long long ran = 0;
		enum store_rc rc;

		if ((rc = store_stats(s, (long long)now - DIAGNOSE_WINDOW, &st)) != STORE_OK) {
			store_stats_clear(&st);
			return rc;
		}
		for (size_t i = 0; i < st.nverdict; i++)
			ran += st.verdict[i].n;
		store_stats_clear(&st);
		for (; ran > 0 && d->nstarts < (size_t)cfg->diagnose_global_per_hour; ran--)
			global_started(d, now);
		d->starts_known = 1;
	}
	while (old < d->nstarts && d->starts[old] <= now - DIAGNOSE_WINDOW)
		old++;
	if (old > 0) {
		memmove(d->starts, d->starts + old, (d->nstarts - old) * sizeof(*d->starts));
		d->nstarts -= old;
	}
	*room = d->nstarts < (size_t)cfg->diagnose_global_per_hour;
	return STORE_OK;
}

static int
in_flight_for(const struct diagnose_ctx *d, const char *customer, long long case_id, int *same_case)
{
	int n = 0;

	*same_case = 0;
	for (const struct diag_job *j = d->flight; j != NULL; j = j->flight_next) {
		if (j->case_id == case_id)
			*same_case = 1;
		if (strcmp(j->customer, customer) == 0)
			n++;
	}
	return n;
}

/* Decides about one case: a skip row, or a job for the pool. */
static enum store_rc
start_one(struct diagnose_ctx *d, struct ack_ctx *a, struct store *s, const struct case_rec *c,
    time_t now)
{
	const struct config *cfg = ack_config(a);
	struct diag_job *j;
	const char *why, *domain = domain_of(c->client);
	char customer[320];
	enum store_rc rc;
	int count = 0, same = 0, got, room;

	rate_key(c->client, customer, sizeof(customer));
	if ((why = ack_nobody_to_answer(a, c->client)) != NULL)
		return record_skip(s, c, customer, why, now);
	if (cfg->diagnose_per_hour <= 0)
		return record_skip(s, c, customer, "disabled (DiagnosePerCustomerPerHour 0)", now);
	if (cfg->diagnose_global_per_hour <= 0)
		return record_skip(s, c, customer, "disabled (DiagnosePerHour 0)", now);
	if ((rc = store_diagnosis_count_since(s, customer, now - DIAGNOSE_WINDOW, &count)) != STORE_OK)
		return rc;
	count += in_flight_for(d, customer, c->id, &same);
	if (same)
		return STORE_OK;
	if (count >= cfg->diagnose_per_hour)
		return record_skip(s, c, customer, "rate-limit", now);
	if ((rc = global_room(d, s, cfg, now, &room)) != STORE_OK)
		return rc;
	if (!room)
		return record_skip(s, c, customer, "global-rate-limit", now);

	j = xcalloc(1, sizeof(*j));
	j->case_id = c->id;
	j->customer = xstrdup(customer);
	j->client = xstrdup(c->client);
	if ((got = settings_from_record(s, j, c->client)) == 0)
		got = settings_from_message(s, j, c->id, c->client);
	if (got < 0) {
		job_free(j);
		return STORE_ERROR;
	}
	if (got == 0) {
		char host[300];

		if (domain == NULL || snprintf(host, sizeof(host), "smtp.%s", domain) >=
		    (int)sizeof(host) || !host_usable(host)) {
			job_free(j);
			return record_skip(s, c, customer, "no-settings", now);
		}
		target_set(&j->smtp, host, 587, "starttls");
		j->domain = xstrdup(domain);
		j->source = "sender domain";
	}
	/* With credentials the probe goes as far as the client's own
	 * sending would: MAIL FROM them, RCPT TO the support address.
	 * Without, RCPT would only show that relaying needs a login. */
	if (j->smtp.user != NULL) {
		j->smtp.mail_from = xstrdup(c->client);
		if (c->support_address[0])
			j->smtp.rcpt = xstrdup(c->support_address);
	}
	diagnose_target_config(&j->smtp, cfg);
	if (j->has_imap)
		diagnose_target_config(&j->imap, cfg);
	if (!sender_trusted(j)) {
		target_untrust(&j->smtp, cfg, 0);
		if (j->has_imap)
			target_untrust(&j->imap, cfg, 1);
	}
	struct buf ports;
	diagnose_ports_text(cfg, &ports);
	j->ports = buf_steal(&ports);
	buf_free(&ports);

	j->flight_next = d->flight;
	d->flight = j;
	d->in_flight++;
	global_started(d, now);
	pool_grow(d, (size_t)cfg->diagnose_concurrency);
	pthread_mutex_lock(&d->mu);
	if (d->todo_tail != NULL)
		d->todo_tail->next = j;
	else
		d->todo = j;
	d->todo_tail = j;
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->mu);
	log_debug("HG-%lld: diagnosis of %s:%d started (%s)", c->id, j->smtp.host, j->smtp.port,
	    j->source);
	return STORE_OK;
}

/* How long a worker may take over a diagnosis before another may start it
 * again: longer than every probe's timeouts together. */
#define DIAGNOSE_LEASE	600

/* "host:pid": who holds a lease (store_claim). */
static const char *
diagnose_holder(void)
{
	static char holder[300];

	if (holder[0] == '\0') {
		char host[256] = "";

		gethostname(host, sizeof(host) - 1);
		snprintf(holder, sizeof(holder), "%s:%ld", host, (long)getpid());
	}
	return holder;
}

static int
diagnose_start(struct diagnose_ctx *d, struct ack_ctx *a, struct store *s, time_t now)
{
	const struct config *cfg = ack_config(a);
	struct pending p = { NULL, 0 };
	long room = cfg->diagnose_concurrency - (long)d->in_flight;
	enum store_rc rc;
	int done = 0;

	if (room <= 0)
		return 0;
	if (d->rescan_at != 0 && now >= d->rescan_at) {
		d->rescan_at = 0;
		d->watermark = 0;
	}
	rc = store_diagnosis_pending(s, d->watermark, (int)room, pending_collect, &p);
	if (rc != STORE_OK) {
		if (rc != STORE_BUSY)
			log_warnx("diagnosis: reading new cases: %s: %s", store_strerror(rc),
			    store_errmsg(s));
		free(p.items);
		return -1;
	}
	for (size_t i = 0; i < p.count; i++) {
		/* Several workers on one database: the case is probed by the
		 * one that holds its lease.  A case another worker holds is
		 * passed over; should that worker die before recording it, the
		 * walk from the first case once its lease is over finds it
		 * again (cases in flight here are not started twice). */
		rc = store_claim(s, "diagnose", p.items[i].id, diagnose_holder(), (long long)now,
		    (long long)now + DIAGNOSE_LEASE);
		if (rc == STORE_EXISTS) {
			if (d->rescan_at == 0)
				d->rescan_at = now + DIAGNOSE_LEASE + 1;
			d->watermark = p.items[i].id;
			continue;
		}
		if (rc != STORE_OK) {
			if (rc != STORE_BUSY)
				log_warnx("HG-%lld: claiming the diagnosis: %s: %s", p.items[i].id,
				    store_strerror(rc), store_errmsg(s));
			break;
		}
		if ((rc = start_one(d, a, s, &p.items[i], now)) != STORE_OK) {
			if (rc != STORE_BUSY)
				log_warnx("HG-%lld: starting the diagnosis: %s: %s", p.items[i].id,
				    store_strerror(rc), store_errmsg(s));
			break;
		}
		/* Past this case only once it is handled: a store error
		 * leaves it for the next pass. */
		d->watermark = p.items[i].id;
		done++;
	}
	free(p.items);
	return done;
}

/* ------------------------------------------------------------ recording */

/* An IPv4 or IPv6 address rather than a name. */
static int
ip_literal(const char *host)
{
	if (strchr(host, ':') != NULL || host[0] == '[')
		return 1;
	for (const char *p = host; *p; p++)
		if (!isdigit((unsigned char)*p) && *p != '.')
			return 0;
	return 1;
}

/* The incident key: the SMTP host without its first label when it has
 * three or more (smtp.provider.example and mail.provider.example are one
 * provider), an address as it is. */
static void
provider_key(const char *host, char *out, size_t outlen)
{
	const char *dot = strchr(host, '.');
	int dots = 0;

	for (const char *p = host; *p; p++)
		dots += *p == '.';
	snprintf(out, outlen, "%s", !ip_literal(host) && dots >= 2 && dot != NULL ? dot + 1 : host);
	for (char *p = out; *p; p++)
		*p = (char)tolower((unsigned char)*p);
}

/* 1 if host is domain or a name under it (case-insensitive, a final dot
 * ignored); an address is only itself. */
static int
host_within(const char *host, const char *domain)
{
	size_t hl = strlen(host), dl = strlen(domain);

	while (hl > 0 && host[hl - 1] == '.')
		hl--;
	while (dl > 0 && domain[dl - 1] == '.')
		dl--;
	if (dl == 0 || hl < dl)
		return 0;
	if (hl == dl)
		return strncasecmp(host, domain, hl) == 0;
	return !ip_literal(domain) && host[hl - dl - 1] == '.' &&
	    strncasecmp(host + hl - dl, domain, dl) == 0;
}

/*
 * May the client be told this working setting?  A letter from the support
 * domain saying "use this server with the same user name and password" is
 * believed, so it names only a server that is the client's already: within
 * the provider of the settings staff stored (that host, or its parent
 * domain) or within the sender's own domain.  When the message or the
 * sender's domain chose the target (anyone can write that message, under
 * anyone's From), only a host within the sender's own domain.  Staff see
 * every alternative in the note either way.
 */
static int
alternative_tellable(const struct diag_job *j)
{
	const char *own = domain_of(j->client);
	char provider[256];

	if (j->alt.host == NULL)
		return 0;
	if (own != NULL && host_within(j->alt.host, own))
		return 1;
	if (!sender_trusted(j) || j->smtp.host == NULL)
		return 0;
	provider_key(j->smtp.host, provider, sizeof(provider));
	return host_within(j->alt.host, j->smtp.host) || host_within(j->alt.host, provider);
}

struct similar {
	struct diagnosis_rec	*rows;
	size_t			 count;
};

static int
similar_collect(const struct diagnosis_rec *r, void *arg)
{
	struct similar *sm = arg;

	sm->rows = xrealloc(sm->rows, (sm->count + 1) * sizeof(*sm->rows));
	sm->rows[sm->count] = *r;
	sm->rows[sm->count].report_json = sm->rows[sm->count].report_text = NULL;
	sm->count++;
	return 0;
}

static int
same_domain(const char *a, const char *b)
{
	const char *da = domain_of(a), *db = domain_of(b);

	return da != NULL && db != NULL && strcasecmp(da, db) == 0;
}

/*
 * Several clients of one provider failing the same way within the hour
 * are one incident: every such diagnosis gets the id of the oldest as its
 * incident, and *line says so for staff.  Only clients of another domain
 * make an incident (one company's users share one misconfiguration).
 * Returns the incident id, 0 when there is none, -1 on a store error.
 */
static long long
incident_link(struct store *s, struct diagnosis_rec *r, const char *display, time_t now,
    struct buf *line)
{
	struct similar sm = { NULL, 0 };
	long long incident = 0, since = r->created;
	size_t clients = 1, named = 0;
	int foreign = 0;
	char hhmm[16];
	struct tm tm;
	time_t t;

	if (store_diagnosis_similar(s, r->provider, r->verdict, (long long)now - DIAGNOSE_WINDOW,
	    similar_collect, &sm) != STORE_OK) {
		free(sm.rows);
		return -1;
	}
	for (size_t i = 0; i < sm.count; i++)
		if (!same_domain(sm.rows[i].client, r->client))
			foreign = 1;
	if (!foreign) {
		free(sm.rows);
		return 0;
	}
	for (size_t i = 0; i < sm.count; i++) {
		long long id = sm.rows[i].incident ? sm.rows[i].incident : sm.rows[i].id;
		int seen = strcasecmp(sm.rows[i].client, r->client) == 0;

		if (incident == 0 || id < incident)
			incident = id;
		if (sm.rows[i].created < since)
			since = sm.rows[i].created;
		for (size_t k = 0; k < i && !seen; k++)
			seen = strcasecmp(sm.rows[k].client, sm.rows[i].client) == 0;
		if (!seen)
			clients++;
	}
	for (size_t i = 0; i < sm.count; i++) {
		if (sm.rows[i].incident == 0 &&
		    store_diagnosis_set_incident(s, sm.rows[i].id, incident) != STORE_OK) {
			free(sm.rows);
			return -1;
		}
	}
	t = (time_t)since;
	if (localtime_r(&t, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	strftime(hhmm, sizeof(hhmm), "%H:%M", &tm);
	buf_printf(line, "Incident #%lld: %zu clients of %s failing with %s since %s (cases ",
	    incident, clients, display, r->verdict, hhmm);
	for (size_t i = 0; i < sm.count; i++) {
		int dup = 0;

		for (size_t k = 0; k < i && !dup; k++)
			dup = sm.rows[k].case_id == sm.rows[i].case_id;
		if (dup)
			continue;
		if (named++ == DIAGNOSE_INCIDENT_CASES) {
			buf_append_str(line, "..., ");
			break;
		}
		buf_printf(line, "HG-%lld, ", sm.rows[i].case_id);
	}
	buf_printf(line, "HG-%lld)", r->case_id);
	free(sm.rows);
	return incident;
}

/* Fills the row every run shares, then what this protocol found. */
static void
row_fill(struct diagnosis_rec *r, const struct diag_job *j, const char *protocol,
    const struct diag_target *t, const struct diag_report *rep, time_t now)
{
	struct buf b;

	memset(r, 0, sizeof(*r));
	r->case_id = j->case_id;
	snprintf(r->customer, sizeof(r->customer), "%s", j->customer);
	snprintf(r->client, sizeof(r->client), "%s", j->client);
	r->created = now;
	snprintf(r->protocol, sizeof(r->protocol), "%s", protocol);
	snprintf(r->host, sizeof(r->host), "%s", t->host ? t->host : "");
	r->port = t->port;
	snprintf(r->security, sizeof(r->security), "%s", diag_security_name(t->security));
	snprintf(r->source, sizeof(r->source), "%s", j->source);
	snprintf(r->verdict, sizeof(r->verdict), "%s", diag_verdict_name(rep->verdict));
	snprintf(r->hint, sizeof(r->hint), "%s", rep->hint ? rep->hint : "");
	r->duration_ms = rep->duration_ms;
	buf_init(&b, DIAGNOSE_REPORT_MAX);
	diag_report_json(rep, &b);
	if (b.truncated)	/* cut JSON is no JSON; the text still has it all */
		buf_reset(&b);
	r->report_json = buf_steal(&b);
	buf_init(&b, DIAGNOSE_REPORT_MAX);
	diag_report_text(rep, &b);
	r->report_text = buf_steal(&b);
	buf_free(&b);
}

/* What the client is told: "ack" (the acknowledgement, not decided yet,
 * will carry the setting), "follow-up" (it went already: a short message
 * follows), "no:<why>", "withheld:outside-domain" (alternative_tellable
 * said no: staff only), or "" when there is nothing to tell. */
static enum store_rc
client_note_decide(struct ack_ctx *a, struct store *s, const struct diag_job *j,
    struct message_rec *first, char *note, size_t notelen)
{
	const struct config *cfg = ack_config(a);
	long long first_id = 0;
	const char *why;
	enum store_rc rc;

	note[0] = '\0';
	if (!j->alt.found || j->smtp_r.verdict == DIAG_OK)
		return STORE_OK;
	if (!alternative_tellable(j)) {
		snprintf(note, notelen, "withheld:outside-domain");
		return STORE_OK;
	}
	if (!cfg->diagnose_tell_client) {
		snprintf(note, notelen, "no:DiagnoseTellClient");
		return STORE_OK;
	}
	if ((why = ack_nobody_to_answer(a, j->client)) != NULL) {
		snprintf(note, notelen, "no:%s", why);
		return STORE_OK;
	}
	if ((rc = store_case_first_message(s, j->case_id, &first_id)) != STORE_OK ||
	    (rc = store_message_get(s, first_id, first)) != STORE_OK)
		return rc;
	if (first->ack[0] == '\0')
		snprintf(note, notelen, "ack");
	else if (strcmp(first->ack, "queued") == 0)
		snprintf(note, notelen, "follow-up");
	else
		snprintf(note, notelen, "no:ack %.*s", (int)(notelen > 8 ? notelen - 8 : 0),
		    first->ack);
	return STORE_OK;
}

static const char *
client_note_text(const char *note)
{
	if (strcmp(note, "ack") == 0)
		return "the acknowledgement gives them the working setting.";
	if (strcmp(note, "follow-up") == 0)
		return "a short follow-up in their thread gives them the working setting.";
	if (strcmp(note, "no:DiagnoseTellClient") == 0)
		return "not told (DiagnoseTellClient no).";
	if (strcmp(note, "withheld:outside-domain") == 0)
		return "not told: the working server is outside the client's own domain (and "
		    "outside the provider of their stored settings, if any), and helpgate names "
		    "only servers that are the client's already; tell them yourself if it is right.";
	if (strncmp(note, "no:", 3) == 0)
		return "not told (no automatic mail to this sender).";
	return "";
}

/* Records one finished run in one transaction. */
static enum store_rc
record(struct diagnose_ctx *d, struct ack_ctx *a, struct store *s, struct diag_job *j,
    time_t now)
{
	const struct config *cfg = ack_config(a);
	const char *recipient = cfg->notice_address ? cfg->notice_address : cfg->escalation_address;
	struct case_rec *c = xmalloc(sizeof(*c));
	struct message_rec *first = xcalloc(1, sizeof(*first));
	struct diagnosis_rec smtp, imap;
	struct outbox_rec o;
	struct buf incident, target, target_short, report, alt;
	char err[256] = "";
	long long incident_id = 0;
	enum store_rc rc;
	int noted = 0, told = 0;

	(void)d;
	memset(&o, 0, sizeof(o));
	memset(&smtp, 0, sizeof(smtp));
	memset(&imap, 0, sizeof(imap));
	buf_init(&incident, 8192);
	buf_init(&target, 2048);
	buf_init(&target_short, 512);
	buf_init(&report, 2 * DIAGNOSE_REPORT_MAX);
	buf_init(&alt, 1024);
	if ((rc = store_begin(s)) != STORE_OK)
		goto out;
	if ((rc = store_case_get(s, j->case_id, c)) != STORE_OK)
		goto fail;

	row_fill(&smtp, j, "smtp", &j->smtp, &j->smtp_r, now);
	if (j->alt.found) {
		snprintf(smtp.alt_host, sizeof(smtp.alt_host), "%s", j->alt.host ? j->alt.host : "");
		smtp.alt_port = j->alt.port;
		snprintf(smtp.alt_security, sizeof(smtp.alt_security), "%s",
		    diag_security_name(j->alt.security));
		smtp.alt_verified = j->alt.verified;
		buf_printf(&alt, "%s:%d %s, %s (found by %s)", smtp.alt_host, smtp.alt_port,
		    smtp.alt_security, j->alt.verified ? "verified with the client's password" :
		    "not verified: no password known", j->alt.source ? j->alt.source : "?");
	}
	provider_key(smtp.host, smtp.provider, sizeof(smtp.provider));
	if (j->smtp_r.verdict != DIAG_OK && !j->smtp_r.not_allowed) {
		incident_id = incident_link(s, &smtp, smtp.host, now, &incident);
		if (incident_id < 0) {
			rc = STORE_ERROR;
			goto fail;
		}
		smtp.incident = incident_id;
	}
	if ((rc = client_note_decide(a, s, j, first, smtp.client_note,
	    sizeof(smtp.client_note))) != STORE_OK)
		goto fail;
	/* The note to staff gets the check list (its template adds the
	 * alternative); the stored report also the alternative, for case
	 * show.  Both say what went wrong with the credentials. */
	buf_append_str(&report, smtp.report_text);
	if (j->cred_error != NULL)
		buf_printf(&report, "Password file unusable (%s): probed without "
		    "authentication.\n", j->cred_error);
	{
		struct buf t;

		buf_init(&t, DIAGNOSE_REPORT_MAX);
		buf_append_str(&t, smtp.report_text);
		if (j->alt.found)
			buf_printf(&t, "Working alternative: %s\n", buf_str(&alt));
		else if (j->smtp_r.verdict != DIAG_OK)
			buf_printf(&t, "No working alternative found (%zu combination%s tried).\n",
			    j->alt.tried, j->alt.tried == 1 ? "" : "s");
		if (j->cred_error != NULL)
			buf_printf(&t, "Password file unusable (%s): probed without "
			    "authentication.\n", j->cred_error);
		free(smtp.report_text);
		smtp.report_text = buf_steal(&t);
		buf_free(&t);
	}
	if ((rc = store_diagnosis_add(s, &smtp)) != STORE_OK && rc != STORE_EXISTS)
		goto fail;
	if (rc == STORE_EXISTS) {
		/* Recorded meanwhile (another worker): nothing more to do. */
		store_rollback(s);
		rc = STORE_OK;
		goto out;
	}
	if (j->has_imap) {
		row_fill(&imap, j, "imap", &j->imap, &j->imap_r, now);
		if ((rc = store_diagnosis_add(s, &imap)) != STORE_OK && rc != STORE_EXISTS)
			goto fail;
	}

	/* The note to staff. */
	buf_printf(&target_short, "%s:%d", smtp.host, smtp.port);
	buf_printf(&target, "%s:%d %s", smtp.host, smtp.port, smtp.security);
	if (j->smtp.user != NULL)
		buf_printf(&target, ", user %s", j->smtp.user);
	else if (j->cred_error != NULL)
		buf_append_str(&target, ", password file unusable");
	else
		buf_append_str(&target, ", no credentials known");
	if (j->has_imap)
		buf_printf(&target, "; IMAP %s:%d %s", imap.host, imap.port, imap.security);
	if (j->has_imap) {
		buf_append_str(&report, "\nIMAP:\n");
		buf_append_str(&report, imap.report_text);
	}
	if (j->client_quote != NULL)
		buf_printf(&report, "\nThe client's message quotes: %s\n", j->client_quote);
	if (recipient != NULL) {
		struct ack_diagnosis n = {
			.recipient = recipient,
			.verdict = smtp.verdict,
			.target = buf_str(&target),
			.target_short = buf_str(&target_short),
			.source = smtp.source,
			.report = buf_str(&report),
			.alternative = buf_str(&alt),
			.incident = buf_str(&incident),
			.client_note = client_note_text(smtp.client_note),
			.incident_id = incident_id,
		};
		if (ack_diagnosis_note(a, c, &n, now, &o, err, sizeof(err)) != 0) {
			log_warnx("HG-%lld: cannot render the diagnosis note: %s", c->id, err);
		} else {
			if ((rc = store_outbox_add(s, &o)) != STORE_OK && rc != STORE_EXISTS)
				goto fail;
			noted = 1;
		}
		outbox_rec_clear(&o);
	}

	/* The client's follow-up, when the acknowledgement already went. */
	if (strcmp(smtp.client_note, "follow-up") == 0) {
		struct ack_alternative alt_set = { smtp.alt_host, smtp.alt_port, smtp.alt_security };

		if (ack_alternative_followup(a, c, first, &alt_set, now, &o, err, sizeof(err)) != 0) {
			log_warnx("HG-%lld: cannot render the alternative for the client: %s", c->id,
			    err);
		} else {
			if ((rc = store_outbox_add(s, &o)) != STORE_OK && rc != STORE_EXISTS)
				goto fail;
			rc = ack_record_sent(s, c, o.message_id, "working setting", now);
			if (rc != STORE_OK && rc != STORE_EXISTS)
				goto fail;
			told = 1;
		}
		outbox_rec_clear(&o);
	}
	if ((rc = store_commit(s)) != STORE_OK)
		goto fail;

	/* One line per run; never the password (the target holds none now). */
	log_info("HG-%lld: diagnosis %s:%d/%s (%s) for <%s>: %s%s%s; alternative %s%s; "
	    "%ld ms%s%s%s", c->id, smtp.host, smtp.port, smtp.security, smtp.source, j->client,
	    smtp.verdict, j->has_imap ? ", imap " : "", j->has_imap ? imap.verdict : "",
	    j->alt.found ? buf_str(&alt) : "none", told ? " (sent to the client)" :
	    strcmp(smtp.client_note, "ack") == 0 ? " (in the acknowledgement)" : "",
	    j->elapsed_ms, noted ? "; note to " : "; no note (no NoticeAddress or "
	    "EscalationAddress)", noted ? recipient : "",
	    incident_id ? "; incident" : "");
	goto out;
fail:
	outbox_rec_clear(&o);
	store_rollback(s);
out:
	diagnosis_rec_clear(&smtp);
	diagnosis_rec_clear(&imap);
	buf_free(&incident);
	buf_free(&target);
	buf_free(&target_short);
	buf_free(&report);
	buf_free(&alt);
	free(first);
	free(c);
	return rc;
}

static void
flight_remove(struct diagnose_ctx *d, struct diag_job *j)
{
	for (struct diag_job **p = &d->flight; *p != NULL; p = &(*p)->flight_next) {
		if (*p == j) {
			*p = j->flight_next;
			d->in_flight--;
			return;
		}
	}
}

static int
diagnose_collect(struct diagnose_ctx *d, struct ack_ctx *a, struct store *s, time_t now)
{
	struct diag_job *list, *j, *next, **keep;
	enum store_rc rc = STORE_OK;
	int done = 0;

	pthread_mutex_lock(&d->mu);
	list = d->done;
	d->done = d->done_tail = NULL;
	pthread_mutex_unlock(&d->mu);
	/* earlier runs that waited for the store first */
	if (d->retry != NULL) {
		for (j = d->retry; j->next != NULL; j = j->next)
			;
		j->next = list;
		list = d->retry;
		d->retry = NULL;
	}
	keep = &d->retry;
	for (j = list; j != NULL; j = next) {
		next = j->next;
		j->next = NULL;
		if (rc == STORE_OK)
			rc = record(d, a, s, j, now);
		else
			rc = STORE_BUSY;	/* the store just failed: try them all later */
		if (rc == STORE_OK) {
			done++;
		} else if (++j->save_tries < DIAGNOSE_SAVE_TRIES) {
			*keep = j;
			keep = &j->next;
			continue;
		} else {
			log_warnx("HG-%lld: diagnosis not recorded: %s: %s (it runs again at the next "
			    "start)", j->case_id, store_strerror(rc), store_errmsg(s));
		}
		flight_remove(d, j);
		job_free(j);
	}
	if (rc != STORE_OK && rc != STORE_BUSY)
		log_warnx("diagnosis: recording: %s: %s", store_strerror(rc), store_errmsg(s));
	return done ? done : (rc == STORE_OK ? 0 : -1);
}

int
diagnose_run(struct diagnose_ctx *d, struct ack_ctx *a, struct store *s, time_t now)
{
	int recorded, started;

	recorded = diagnose_collect(d, a, s, now);
	started = diagnose_start(d, a, s, now);
	if (recorded < 0 && started <= 0)
		return -1;
	return (recorded > 0 ? recorded : 0) + (started > 0 ? started : 0);
}
