/*
 * helpgate-worker: the daemon that acts on cases after the milter recorded
 * them.
 *
 *   helpgate-worker [-c FILE] [-f] [-n]
 *
 * One loop, one thread: decide about new messages (ack.c), deliver the
 * outbox (outbox.c), then sleep PollInterval unless there is more to do.
 * All state is in the store, so the process can be killed at any moment and
 * resumes where it was.  SIGTERM/SIGINT stop it after the current step;
 * SIGUSR1 reloads the config and templates.  Signal handlers only set flags
 * (as Redis and OpenDKIM do); the loop does the work.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "classify.h"
#include "clock.h"
#include "config.h"
#include "daemon.h"
#include "intake.h"
#include "log.h"
#include "msg.h"
#include "spool.h"
#include "store.h"
#include "xalloc.h"

#include <curl/curl.h>
#include <time.h>

#include "ack.h"
#include "outbox.h"
#include "relay.h"
#include "timers.h"
#include "mailcmd_run.h"
#include "digest.h"
#include "report.h"
#include "diagnose.h"
#include "mailbox.h"

#define DEFAULT_CONFIG	"/etc/helpgate/helpgate.conf"
#define BATCH		50
#define RETRY_SECONDS	5
#define STORE_LOG_SECONDS	60	/* store trouble is reported at most this often */

static volatile sig_atomic_t	stop_requested;
static volatile sig_atomic_t	reload_requested;

static void
on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void
on_reload(int sig)
{
	(void)sig;
	reload_requested = 1;
}

static struct config *
load(const char *path)
{
	struct buf errors;
	struct config *cfg;

	buf_init(&errors, 64 * 1024);
	cfg = config_load(path, &errors);
	if (cfg == NULL)
		log_err("%s", buf_str(&errors));
	buf_free(&errors);
	return cfg;
}

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: helpgate-worker [-c FILE] [-f] [-n]\n"
	    "  -c FILE  configuration (default %s)\n"
	    "  -f       stay in the foreground and log to stderr\n"
	    "  -n       check the configuration, then exit\n", DEFAULT_CONFIG);
}

/* What a config brings with it; rebuilt as a whole on reload. */
struct worker_setup {
	struct config		*cfg;
	struct ack_ctx		*ack;
	struct classify_rules	*rules;	/* for mail replayed from the spool */
};

/* The seal key, once running as UserID (never made by root for the
 * daemons' user); a reload loads it for the new context. */
static void
worker_load_seal(struct worker_setup *w)
{
	char err[512];

	if (w->ack != NULL && ack_load_seal(w->ack, err, sizeof(err)) != 0)
		log_warnx("%s: letters go out unsealed, and helpgate-milter removes their "
		    "X-Helpgate-* headers like a stranger's", err);
}

static int
setup_load(const char *path, struct worker_setup *w)
{
	char err[512];

	struct buf errors;

	if ((w->cfg = load(path)) == NULL)
		return -1;
	buf_init(&errors, 64 * 1024);
	w->rules = classify_rules_load(w->cfg->keywords_dir, &errors);
	if (w->rules == NULL) {
		log_err("keyword lists in %s: %s", w->cfg->keywords_dir, buf_str(&errors));
		buf_free(&errors);
		config_unref(w->cfg);
		w->cfg = NULL;
		return -1;
	}
	buf_free(&errors);
	if ((w->ack = ack_ctx_new(w->cfg, err, sizeof(err))) == NULL ||
	    ack_check_templates(w->ack, err, sizeof(err)) != 0) {
		log_err("%s", err);
		ack_ctx_free(w->ack);
		classify_rules_free(w->rules);
		config_unref(w->cfg);
		w->ack = NULL;
		w->rules = NULL;
		w->cfg = NULL;
		return -1;
	}
	return 0;
}

static void
setup_free(struct worker_setup *w)
{
	ack_ctx_free(w->ack);
	classify_rules_free(w->rules);
	config_unref(w->cfg);
	w->ack = NULL;
	w->rules = NULL;
	w->cfg = NULL;
}

/* ---- the spool: support mail the milter could not record ---- */

/*
 * Opens the cases of spooled messages, oldest first, at most limit; each
 * file is removed once its message is recorded (a crash in between replays
 * it again, and its Message-ID makes that a duplicate, not a second case).
 * Returns how many were handled, or -1 when the store failed (the files
 * stay for the next pass).
 */
static int
spool_replay(const struct worker_setup *w, struct store *store, int limit)
{
	const char *dir = w->cfg->spool_directory;
	struct dirent **names = NULL;
	struct intake_result *res = NULL;
	int n, done = 0, failed = 0;

	if ((n = spool_list(dir, &names)) < 0)
		return 0;	/* no spool directory: nothing was ever spooled */
	for (int i = 0; i < n; i++) {
		char path[4096], bad[4200];
		struct spool_record sm;
		struct intake_input in;
		struct msg *m;
		size_t len = 0;
		char *data;

		if (done >= limit || failed || stop_requested ||
		    (size_t)snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name) >= sizeof(path)) {
			free(names[i]);
			continue;
		}
		data = spool_read(path, SPOOL_FIELDS_MAX + SPOOL_HEADER_MAX + w->cfg->max_body_scan, &len);
		if (data == NULL || spool_parse(data, len, &sm) != 0) {
			snprintf(bad, sizeof(bad), "%s.bad", path);
			log_warnx("spool %s: %s; set aside as %s.bad", path,
			    data == NULL ? strerror(errno) : "not a helpgate spool file",
			    names[i]->d_name);
			(void)rename(path, bad);
			free(data);
			free(names[i]);
			done++;
			continue;
		}
		m = msg_parse(sm.raw, sm.raw_len, w->cfg->max_body_scan);
		if (sm.truncated)
			m->flags |= MSG_TRUNCATED;
		memset(&in, 0, sizeof(in));
		in.cfg = w->cfg;
		in.rules = w->rules;
		in.store = store;
		in.msg = m;
		in.envelope_from = sm.envelope_from;
		in.support_address = sm.support_address;
		in.queue_id = sm.queue_id;
		in.received = (time_t)sm.received;
		in.staff_authenticated = sm.staff_authenticated;
		if (res == NULL)
			res = xcalloc(1, sizeof(*res));
		intake_process(&in, res);
		if (res->disposition == INTAKE_DEGRADED) {
			failed = 1;	/* store trouble: the main loop reports it */
		} else {
			char case_name[32] = "-";

			if (res->case_id > 0)
				snprintf(case_name, sizeof(case_name), "HG-%lld", res->case_id);
			log_info("%s: case=%s urgency=%s category=%s %s from=<%s> (spooled while the "
			    "store was unusable: %s)", *sm.queue_id ? sm.queue_id : "NOQUEUE",
			    case_name, classify_urgency_name(res->cls.urgency), res->cls.category,
			    intake_disposition_name(res->disposition), res->client,
			    names[i]->d_name);
			if (unlink(path) != 0)
				log_warn("spool %s: cannot remove it (its message is recorded)", path);
			done++;
		}
		msg_free(m);
		free(data);
		free(names[i]);
	}
	free(names);
	free(res);
	return failed && done == 0 ? -1 : done;
}

static void
nap(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);	/* a signal cuts it short, which is what we want */
}

int
main(int argc, char **argv)
{
	const char *path = DEFAULT_CONFIG;
	int foreground = 0, check_only = 0, ch;
	struct worker_setup w = { NULL, NULL, NULL };
	struct store *store = NULL;
	struct relay *relay = NULL;
	struct diagnose_ctx *diag = NULL;	/* the probe threads, once running */
	struct sigaction sa;
	time_t store_retry = 0, relay_retry = 0;
	time_t mailbox_next = 0;	/* the next pass over the support mailbox */
	/* store trouble: since when, last report (at most once a minute) */
	time_t trouble_since = 0, trouble_logged = 0;
	char err[512];

	umask(077);	/* the store, the spool and the seal key are the daemons' alone */

	/* First of all, so that a signal during start-up is a request, not
	 * the default action (death for SIGUSR1). */
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_reload;
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	while ((ch = getopt(argc, argv, "c:fnh")) != -1) {
		switch (ch) {
		case 'c': path = optarg; break;
		case 'f': foreground = 1; break;
		case 'n': check_only = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	log_init("helpgate-worker", 1, NULL);
	if (setup_load(path, &w) != 0)
		return 1;
	if (check_only) {
		printf("config OK: %s\n", path);
		setup_free(&w);
		return 0;
	}
	if (clock_set_timezone(w.cfg->timezone) != 0)
		fatalx("Timezone %s is unknown", w.cfg->timezone);
	if (log_init("helpgate-worker", foreground || !w.cfg->syslog, w.cfg->log_facility) != 0)
		fatalx("LogFacility %s is unknown", w.cfg->log_facility);
	log_set_level(w.cfg->log_debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		fatalx("curl_global_init failed");
	if (!foreground)
		daemon_detach();


	if (w.cfg->userid != NULL)
		daemon_drop_privileges(w.cfg->userid);
	if (w.cfg->pidfile != NULL)
		daemon_write_pidfile(w.cfg->pidfile);
	worker_load_seal(&w);
	/* One worker per SQLite store: the outbox claim and the serialised
	 * write transactions would keep two from doing anything twice, but
	 * two processes on one SQLite file only wait for each other's locks.
	 * On PostgreSQL any number of workers share the work (INSTALL). */
	char lock_path[4096];
	int lock_fd = -1;
	if (!store_target_is_pg(w.cfg->database)) {
		snprintf(lock_path, sizeof(lock_path), "%s.worker-lock", w.cfg->database);
		if ((lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1)
			fatal("lock file %s", lock_path);
		if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0)
			fatalx("another helpgate-worker already works on %s (it holds %s)",
			    w.cfg->database, lock_path);
	}
	store_set_password_file(w.cfg->database_password_file);
	log_info("started; case store %s, relay %s", w.cfg->database,
	    relay_describe(w.cfg->relay, err, sizeof(err)));
	for (size_t i = 0; i < w.cfg->mailboxes.count; i++)
		log_info("reconciling the support mailbox %s every %lds", w.cfg->mailboxes.items[i],
		    w.cfg->mailbox_poll);
	diag = diagnose_new();

	while (!stop_requested) {
		time_t now = time(NULL);
		int work = 0, n;

		if (reload_requested) {
			struct worker_setup fresh;

			reload_requested = 0;
			if (setup_load(path, &fresh) == 0) {
				if (clock_set_timezone(fresh.cfg->timezone) != 0)
					log_warnx("Timezone %s is unknown; keeping the old one",
					    fresh.cfg->timezone);
				log_set_level(fresh.cfg->log_debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
				setup_free(&w);
				w = fresh;
				worker_load_seal(&w);
				relay_close(relay);
				relay = NULL;
				relay_retry = 0;
				mailbox_next = 0;
				log_info("reloaded %s", path);
			} else {
				log_warnx("reload of %s failed; keeping the running configuration", path);
			}
		}
		if (store == NULL && now >= store_retry) {
			if (store_open(w.cfg->database, 5000, &store, err, sizeof(err)) != STORE_OK) {
				if (trouble_since == 0)
					trouble_since = now;
				if (now - trouble_logged >= STORE_LOG_SECONDS) {
					trouble_logged = now;
					log_warnx("case store unavailable: %s (retrying every %ds; "
					    "logged once a minute)", err, RETRY_SECONDS);
				}
				store_retry = now + RETRY_SECONDS;
			}
		}
		if (relay == NULL && w.cfg->relay != NULL && now >= relay_retry) {
			if ((relay = relay_open(w.cfg, err, sizeof(err))) == NULL) {
				log_warnx("relay unusable: %s (retrying every %ds)", err, RETRY_SECONDS);
				relay_retry = now + RETRY_SECONDS;
			}
		}
		if (store != NULL) {
			int failed = 0;

			if ((n = spool_replay(&w, store, BATCH)) > 0)
				work += n;
			else if (n < 0)
				failed = 1;
			/* mail the milter never saw: the same intake, once a MailboxPoll */
			if (w.cfg->mailboxes.count > 0 && now >= mailbox_next) {
				if ((n = mailbox_run(w.cfg, w.rules, w.ack, store, now,
				    &stop_requested)) >= 0)
					mailbox_next = now + w.cfg->mailbox_poll;
				if (n > 0)
					work += n;
				else if (n < 0)
					failed = 1;
			}
			if ((n = ack_run(w.ack, store, clock_now(), BATCH)) > 0)
				work += n;
			else if (n < 0)
				failed = 1;
			/* staff commands by mail, then their answers go with
			 * the rest of the outbox */
			if ((n = mailcmd_run(w.ack, store, clock_now(), BATCH)) > 0)
				work += n;
			else if (n < 0)
				failed = 1;
			if ((n = digest_run(w.ack, store, clock_now())) > 0)
				work += n;
			else if (n < 0)
				failed = 1;
			if ((n = report_run(w.ack, store, clock_now())) > 0)
				work += n;
			else if (n < 0)
				failed = 1;
			if ((n = timers_run(w.ack, store, clock_now(), BATCH)) > 0)
				work += n;
			else if (n < 0)
				failed = 1;
			if ((n = outbox_run(store, relay, clock_now(), BATCH)) > 0)
				work += n;
			else if (n < 0)
				failed = 1;
			/* outgoing-mail cases: probes run on diagnose.c's threads */
			if ((n = diagnose_run(diag, w.ack, store, clock_now())) > 0)
				work += n;
			else if (n < 0)
				failed = 1;
			now = time(NULL);
			if (failed) {
				/* Locked past the busy timeout (a long helpgatectl
				 * command), or broken: deleted or replaced under
				 * us, corrupt, disk full.  Nothing is lost (all
				 * state is in the store and the spool); the handle
				 * is reopened, which also picks up a recreated or
				 * restored file, and the work is done on a later
				 * pass. */
				if (trouble_since == 0)
					trouble_since = now;
				if (now - trouble_logged >= STORE_LOG_SECONDS) {
					trouble_logged = now;
					log_warnx("case store %s: %s; reopening it and retrying "
					    "(logged once a minute)", w.cfg->database,
					    *store_errmsg(store) ? store_errmsg(store) : "busy");
				}
				store_close(store);
				store = NULL;
				store_retry = now + 1;
			} else if (trouble_since != 0) {
				log_info("case store %s works again after %llds", w.cfg->database,
				    (long long)(now - trouble_since));
				trouble_since = 0;
			}
		}
		if (work == 0 && !stop_requested)
			nap(w.cfg->poll_interval_ms);
	}
	log_info("stopping");
	diagnose_free(diag);
	relay_close(relay);
	store_close(store);
	if (w.cfg->pidfile != NULL)
		unlink(w.cfg->pidfile);
	setup_free(&w);
	curl_global_cleanup();
	return 0;
}
