/*
 * helpgate-milter: the process around the filter.
 *
 *   helpgate-milter [-c FILE] [-p SOCKET] [-f] [-n]
 *
 * Order of start-up matters: load and check everything first (a bad config
 * never starts a half-working filter), open the socket while still root,
 * then drop privileges as one checked sequence, then open the store as the
 * service user so its files belong to that user.  SIGUSR1 reloads the
 * config and keyword lists (libmilter reserves SIGHUP, SIGINT and SIGTERM
 * for "terminate", which it handles itself).
 */
#include "milter.h"

#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "daemon.h"
#include "log.h"
#include "store.h"
#include "xalloc.h"

#define DEFAULT_CONFIG	"/etc/helpgate/helpgate.conf"

static pthread_mutex_t		 snapshot_lock = PTHREAD_MUTEX_INITIALIZER;
static struct milter_snapshot	*snapshot_current;
static const char		*config_path = DEFAULT_CONFIG;

struct milter_snapshot *
milter_snapshot_get(void)
{
	struct milter_snapshot *snap;

	pthread_mutex_lock(&snapshot_lock);
	snap = snapshot_current;
	snap->refs++;
	pthread_mutex_unlock(&snapshot_lock);
	return snap;
}

void
milter_snapshot_put(struct milter_snapshot *snap)
{
	int last;

	if (snap == NULL)
		return;
	pthread_mutex_lock(&snapshot_lock);
	last = --snap->refs == 0;
	pthread_mutex_unlock(&snapshot_lock);
	if (last) {
		config_unref(snap->cfg);
		classify_rules_free(snap->rules);
		free(snap);
	}
}

/* Loads config and keyword lists; prints every problem.  NULL on failure. */
static struct milter_snapshot *
snapshot_load(const char *path)
{
	struct milter_snapshot *snap;
	struct buf errors;
	struct config *cfg;
	struct classify_rules *rules;

	buf_init(&errors, 64 * 1024);
	if ((cfg = config_load(path, &errors)) == NULL) {
		log_err("%s", buf_str(&errors));
		buf_free(&errors);
		return NULL;
	}
	if ((rules = classify_rules_load(cfg->keywords_dir, &errors)) == NULL) {
		log_err("keyword lists in %s: %s", cfg->keywords_dir, buf_str(&errors));
		buf_free(&errors);
		config_unref(cfg);
		return NULL;
	}
	buf_free(&errors);
	snap = xcalloc(1, sizeof(*snap));
	snap->cfg = cfg;
	snap->rules = rules;
	snap->refs = 1;
	return snap;
}

static void *
reload_thread(void *arg)
{
	sigset_t *set = arg;
	int sig;

	for (;;) {
		if (sigwait(set, &sig) != 0 || sig != SIGUSR1)
			continue;
		struct milter_snapshot *fresh = snapshot_load(config_path), *old;
		if (fresh == NULL) {
			log_warnx("reload of %s failed; keeping the running configuration", config_path);
			continue;
		}
		pthread_mutex_lock(&snapshot_lock);
		old = snapshot_current;
		snapshot_current = fresh;
		pthread_mutex_unlock(&snapshot_lock);
		if (strcmp(old->cfg->socket, fresh->cfg->socket) != 0 ||
		    strcmp(old->cfg->database, fresh->cfg->database) != 0 ||
		    strcmp(old->cfg->timezone, fresh->cfg->timezone) != 0)
			log_warnx("Socket, Database and Timezone changes take effect at restart "
			    "(the time zone cannot change under running threads)");
		milter_snapshot_put(old);
		log_info("reloaded %s", config_path);
	}
	return NULL;
}

/*
 * libmilter owns the listening socket and offers no accessor for it, so find
 * it among our descriptors: a TCP socket in listening state.  Accepted
 * connections inherit TCP_NODELAY; without it Nagle and delayed ACKs cost
 * Postfix two thirds of its throughput over a TCP milter socket.
 */
static void
set_listen_nodelay(void)
{
	int one = 1;

	for (int fd = 3; fd < 1024; fd++) {
		int listening = 0, type = 0, family = 0;
		socklen_t len = sizeof(int);

		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening)
			continue;
		len = sizeof(int);
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM)
			continue;
		len = sizeof(int);
		if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &len) != 0 ||
		    (family != AF_INET && family != AF_INET6))
			continue;
		if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
			log_warn("TCP_NODELAY on the milter socket");
	}
}

/* The path of a unix socket spec (unix:PATH, local:PATH or a bare /PATH);
 * NULL for inet sockets. */
static const char *
socket_unix_path(const char *spec)
{
	if (strncmp(spec, "unix:", 5) == 0)
		return spec + 5;
	if (strncmp(spec, "local:", 6) == 0)
		return spec + 6;
	if (spec[0] == '/')
		return spec;
	return NULL;
}

/*
 * Opens the listening socket (as root, before privileges are dropped).  A
 * unix socket gets exactly SocketMode (default 0660) and, with SocketGroup,
 * that group: Postfix connects as its own user, so either SocketGroup names
 * a group Postfix is in or SocketMode opens it to others.  The socket is
 * created owner-only (umask 0177) and opened up afterwards, so it is never
 * more open than configured, not even for a moment.
 */
static void
socket_open(const char *spec, const struct config *cfg)
{
	const char *path = socket_unix_path(spec);
	gid_t gid = (gid_t)-1;
	mode_t old_umask;

	if (path != NULL && cfg->socket_group != NULL) {
		struct group *gr = getgrnam(cfg->socket_group);
		char *end;
		long n;

		if (gr != NULL) {
			gid = gr->gr_gid;
		} else {
			errno = 0;
			n = strtol(cfg->socket_group, &end, 10);
			if (errno || end == cfg->socket_group || *end || n < 0 || n > 0x7fffffffL)
				fatalx("SocketGroup %s: no such group", cfg->socket_group);
			gid = (gid_t)n;
		}
	}
	old_umask = umask(0177);
	if (smfi_opensocket(1) == MI_FAILURE)
		fatalx("cannot listen on %s", spec);
	umask(old_umask);
	if (path == NULL)
		return;
	/* the socket libmilter just made, not whatever a link there points to */
	struct stat st;
	if (lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode))
		fatalx("%s is not the socket just made (a link or another file): not touched", path);
	if (gid != (gid_t)-1 && lchown(path, (uid_t)-1, gid) != 0)
		fatal("SocketGroup: chown %s to group %s", path, cfg->socket_group);
	if (chmod(path, (mode_t)cfg->socket_mode) != 0)
		fatal("SocketMode: chmod %s to %04o", path, (unsigned)cfg->socket_mode);
}

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: helpgate-milter [-c FILE] [-p SOCKET] [-f] [-n]\n"
	    "  -c FILE    configuration (default %s)\n"
	    "  -p SOCKET  listen here instead of the config's Socket\n"
	    "             (unix:/path or inet:PORT@ADDRESS)\n"
	    "  -f         stay in the foreground and log to stderr\n"
	    "  -n         check the configuration and keyword lists, then exit\n",
	    DEFAULT_CONFIG);
}

int
main(int argc, char **argv)
{
	const char *socket_spec = NULL;
	int foreground = 0, check_only = 0, ch;
	struct milter_snapshot *snap;
	struct config *cfg;
	static sigset_t reload_set;

	/* the store, its -wal/-shm, the spool and the seal key are the
	 * daemons' alone; the socket gets SocketMode explicitly */
	umask(077);
	pthread_t reloader;

	while ((ch = getopt(argc, argv, "c:p:fnh")) != -1) {
		switch (ch) {
		case 'c': config_path = optarg; break;
		case 'p': socket_spec = optarg; break;
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

	/* SIGUSR1 is blocked from the start (and so in every thread) and taken
	 * by the reload thread with sigwait(): one that arrives while we start
	 * waits for that thread instead of killing the process. */
	sigemptyset(&reload_set);
	sigaddset(&reload_set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &reload_set, NULL);

	log_init("helpgate-milter", 1, NULL);
	if ((snap = snapshot_load(config_path)) == NULL)
		return 1;
	cfg = snap->cfg;
	if (check_only) {
		printf("config OK: %s\n", config_path);
		milter_snapshot_put(snap);	/* LeakSanitizer would fail the check */
		return 0;
	}
	if (clock_set_timezone(cfg->timezone) != 0)
		fatalx("Timezone %s is unknown", cfg->timezone);
	if (log_init("helpgate-milter", foreground || !cfg->syslog, cfg->log_facility) != 0)
		fatalx("LogFacility %s is unknown", cfg->log_facility);
	log_set_level(cfg->log_debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
	snapshot_current = snap;
	/* main's own reference: cfg (Socket, PidFile, ...) stays valid until
	 * the end, however many reloads replace snapshot_current meanwhile. */
	snap->refs++;
	if (socket_spec == NULL)
		socket_spec = cfg->socket;

	if (smfi_register(milter_filter_desc) == MI_FAILURE)
		fatalx("smfi_register failed");
	if (smfi_setconn((char *)socket_spec) == MI_FAILURE)
		fatalx("bad socket %s", socket_spec);
	socket_open(socket_spec, cfg);
	set_listen_nodelay();

	if (!foreground)
		daemon_detach();
	if (cfg->userid != NULL)
		daemon_drop_privileges(cfg->userid);
	if (cfg->pidfile != NULL)
		daemon_write_pidfile(cfg->pidfile);

	store_set_password_file(cfg->database_password_file);
	milter_store_init(cfg->database, cfg->store_timeout_ms);
	milter_seal_init(cfg->seal_key_file);

	/*
	 * The reload thread starts with every signal blocked.  libmilter takes
	 * SIGHUP/SIGINT/SIGTERM with sigwait() and blocks them only in the
	 * threads smfi_main() creates; a thread of ours that left them open
	 * would take SIGTERM with its default action and the process would die
	 * (status 143, PidFile left behind) instead of shutting down.
	 */
	sigset_t all_signals, main_mask;
	sigfillset(&all_signals);
	pthread_sigmask(SIG_SETMASK, &all_signals, &main_mask);
	if (pthread_create(&reloader, NULL, reload_thread, &reload_set) != 0)
		fatal("pthread_create");
	pthread_sigmask(SIG_SETMASK, &main_mask, NULL);
	pthread_detach(reloader);

	log_info("listening on %s, support addresses: %zu, database %s",
	    socket_spec, cfg->support_addresses.count, cfg->database);
	int rc = smfi_main();
	log_info("stopping");
	milter_store_shutdown();
	if (cfg->pidfile != NULL)
		unlink(cfg->pidfile);
	pthread_mutex_lock(&snapshot_lock);
	struct milter_snapshot *current = snapshot_current;
	snapshot_current = NULL;
	pthread_mutex_unlock(&snapshot_lock);
	milter_snapshot_put(current);
	milter_snapshot_put(snap);	/* main's own reference */
	return rc == MI_SUCCESS ? 0 : 1;
}
