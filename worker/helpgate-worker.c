/*
 * helpgate-worker: the daemon that acts on cases after the milter recorded
 * them (acknowledgements, SLA timers, diagnosis; filled in by later work).
 *
 *   helpgate-worker [-c FILE] [-f] [-n]
 *
 * Today it starts, opens the store (creating and migrating it), and idles
 * until SIGTERM/SIGINT; SIGUSR1 reloads the config.  Signal handlers only
 * set flags (as Redis and OpenDKIM do); the loop does the work.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "config.h"
#include "log.h"
#include "store.h"

#define DEFAULT_CONFIG	"/etc/helpgate/helpgate.conf"

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

int
main(int argc, char **argv)
{
	const char *path = DEFAULT_CONFIG;
	int foreground = 0, check_only = 0, ch;
	struct config *cfg;
	struct store *store = NULL;
	struct sigaction sa;
	char err[256];

	while ((ch = getopt(argc, argv, "c:fnh")) != -1) {
		switch (ch) {
		case 'c': path = optarg; break;
		case 'f': foreground = 1; break;
		case 'n': check_only = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	log_init("helpgate-worker", 1, NULL);
	if ((cfg = load(path)) == NULL)
		return 1;
	if (check_only) {
		printf("config OK: %s\n", path);
		config_unref(cfg);
		return 0;
	}
	if (clock_set_timezone(cfg->timezone) != 0)
		fatalx("Timezone %s is unknown", cfg->timezone);
	log_init("helpgate-worker", foreground || !cfg->syslog, cfg->syslog_facility);
	if (!foreground && daemon(0, 0) != 0)
		fatal("daemon");

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_reload;
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (cfg->pidfile != NULL) {
		FILE *fp = fopen(cfg->pidfile, "w");
		if (fp == NULL)
			fatal("PidFile %s", cfg->pidfile);
		fprintf(fp, "%ld\n", (long)getpid());
		fclose(fp);
	}
	if (store_open(cfg->database, 5000, &store, err, sizeof(err)) != STORE_OK)
		fatalx("cannot open the case store %s: %s", cfg->database, err);
	log_info("started; case store %s", cfg->database);

	while (!stop_requested) {
		if (reload_requested) {
			struct config *fresh;

			reload_requested = 0;
			if ((fresh = load(path)) != NULL) {
				config_unref(cfg);
				cfg = fresh;
				log_info("reloaded %s", path);
			} else {
				log_warnx("reload of %s failed; keeping the running configuration", path);
			}
		}
		sleep(1);
	}
	log_info("stopping");
	store_close(store);
	if (cfg->pidfile != NULL)
		unlink(cfg->pidfile);
	config_unref(cfg);
	return 0;
}
