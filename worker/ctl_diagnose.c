/*
 * ctl_diagnose - helpgatectl diagnose: probe a client's mail settings.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "config.h"
#include "diag.h"
#include "json.h"
#include "log.h"
#include "sla.h"
#include "store.h"
#include "intake.h"
#include "ack.h"
#include "timers.h"
#include "xalloc.h"
#include "ctl.h"
#include "diagnose.h"

/* ---- diagnose ---- */

/* "host", "host:587", "[2001:db8::1]:587", "2001:db8::1" (no port: a bare
 * IPv6 address) -> *host (allocated) and *port (0 if none given).
 * Returns 0, or -1 if the form or the port is bad. */
static int
ctl_parse_hostport(const char *s, char **host, int *port)
{
	const char *colon, *end_host, *p = NULL;
	char *end;
	long v;

	*port = 0;
	if (s[0] == '[') {
		end_host = strchr(s, ']');
		if (end_host == NULL || end_host == s + 1)
			return -1;
		if (end_host[1] == ':')
			p = end_host + 2;
		else if (end_host[1] != '\0')
			return -1;
		*host = xstrndup(s + 1, (size_t)(end_host - s - 1));
	} else {
		colon = strchr(s, ':');
		if (colon != NULL && strchr(colon + 1, ':') == NULL) {
			p = colon + 1;
			end_host = colon;
		} else {
			end_host = s + strlen(s);
		}
		if (end_host == s)
			return -1;
		*host = xstrndup(s, (size_t)(end_host - s));
	}
	for (const char *c = *host; *c; c++)
		if ((unsigned char)*c <= ' ' || *c == '/' || (unsigned char)*c >= 0x7f) {
			free(*host);
			*host = NULL;
			return -1;
		}
	if (p != NULL) {
		errno = 0;
		v = isdigit((unsigned char)*p) ? strtol(p, &end, 10) : -1;
		if (v < 1 || v > 65535 || errno || *end != '\0') {
			free(*host);
			*host = NULL;
			return -1;
		}
		*port = (int)v;
	}
	return 0;
}

/* ---- diagnose --imap ---- */

/* The IMAP half of "diagnose": its target comes from the command line
 * (usage errors are found before anything is probed) and, beside --smtp,
 * it runs in a thread of its own, so that both end within one
 * DiagnoseTimeout rather than two. */
struct ctl_imap_job {
	struct diag_target	t;
	struct diag_report	report;
	pthread_t		thread;
	int			started;	/* the thread runs; join it */
};

/* Fills job->t from --imap HOST[:PORT] (993: tls, else starttls; no port:
 * 993 or 143), --imap-security, the user and the password file.  Returns
 * 0, or the exit status of a usage error (printed, job freed). */
static int
ctl_imap_target(const struct ctl_command *cmd, const char *hostport, const char *security,
    const char *user, const char *password_file, struct ctl_imap_job *job)
{
	struct diag_target *t = &job->t;
	struct buf err;
	int port;

	memset(job, 0, sizeof(*job));
	if (ctl_parse_hostport(hostport, &t->host, &port) != 0)
		return ctl_usage_error(cmd, "--imap wants HOST or HOST:PORT (port 1-65535), "
		    "not \"%s\"", hostport);
	if (security != NULL) {
		if (diag_security_parse(security, &t->security) != 0) {
			diag_target_free(t);
			return ctl_usage_error(cmd, "--imap-security wants tls, starttls or none, "
			    "not \"%s\"", security);
		}
	} else {
		t->security = port == 993 ? DIAG_SEC_TLS : DIAG_SEC_STARTTLS;
	}
	t->port = port ? port : t->security == DIAG_SEC_TLS ? 993 : 143;
	if (user != NULL && password_file == NULL) {
		diag_target_free(t);
		return ctl_usage_error(cmd, "--user needs --password-file FILE");
	}
	if (password_file != NULL && user == NULL) {
		diag_target_free(t);
		return ctl_usage_error(cmd, "--password-file needs --user");
	}
	if (user != NULL) {
		buf_init(&err, 4096);
		if (diag_target_password_file(t, password_file, &err) != 0) {
			ctl_err("diagnose: --password-file: %s",
			    err.len ? buf_str(&err) : "cannot be read");
			buf_free(&err);
			diag_target_free(t);
			return CTL_EXIT_USAGE;
		}
		buf_free(&err);
		t->user = xstrdup(user);
	}
	return 0;
}

static void *
ctl_imap_run(void *arg)
{
	struct ctl_imap_job *job = arg;

	diag_imap(&job->t, &job->report);
	return NULL;
}

static void
ctl_imap_start(struct ctl_imap_job *job)
{
	job->started = pthread_create(&job->thread, NULL, ctl_imap_run, job) == 0;
}

/* Waits for the probe (or runs it here if no thread could start). */
static void
ctl_imap_finish(struct ctl_imap_job *job)
{
	if (job->started)
		pthread_join(job->thread, NULL);
	else
		ctl_imap_run(job);
	job->started = 0;
}

/* "imap": REPORT, with "alternative": null (IMAP alternatives are not
 * probed) so that both protocols have the same shape. */
static void
ctl_imap_json(const struct ctl_imap_job *job, struct buf *out)
{
	json_key(out, "imap");
	diag_report_json(&job->report, out);
	if (!out->truncated && out->len > 0 && out->data[out->len - 1] == '}') {
		out->data[--out->len] = '\0';
		json_kv_null(out, "alternative");
		json_object_end(out);
	}
}

static void
ctl_imap_text(const struct ctl_imap_job *job, int after_smtp, struct buf *out)
{
	buf_printf(out, "%sIMAP %s port %d (%s)\n", after_smtp ? "\n" : "", job->t.host,
	    job->t.port, diag_security_name(job->t.security));
	diag_report_text(&job->report, out);
}

static void
ctl_imap_free(struct ctl_imap_job *job)
{
	diag_target_free(&job->t);
	diag_report_free(&job->report);
}

/* diagnose --imap without --smtp: the IMAP report alone. */
static int
ctl_diagnose_imap_only(struct ctl *ctl, struct ctl_imap_job *job, int json)
{
	struct config *cfg;
	struct buf out;
	int ret;

	if ((cfg = ctl_config(ctl)) == NULL) {
		ctl_imap_free(job);
		return CTL_EXIT_FAIL;
	}
	diagnose_target_config(&job->t, cfg);
	ctl_imap_run(job);
	buf_init(&out, CTL_JSON_MAX);
	if (json) {
		json_object_begin(&out);
		ctl_imap_json(job, &out);
		json_object_end(&out);
		buf_append_char(&out, '\n');
	} else {
		ctl_imap_text(job, 0, &out);
	}
	ret = job->report.verdict == DIAG_OK ? CTL_EXIT_OK : CTL_EXIT_FAIL;
	if (ctl_emit(&out) != 0)
		ret = CTL_EXIT_FAIL;
	buf_free(&out);
	ctl_imap_free(job);
	return ret;
}

/* The setting that works instead, in the words a client's mail program
 * uses: "Works instead: smtp.client.test port 465 with SSL/TLS (verified
 * with your password)". */
static void
ctl_diagnose_alternative_text(const struct diag_report *r, const struct diag_alternative *alt,
    struct buf *out)
{
	const char *sec;

	if (r->verdict == DIAG_OK)
		return;
	if (!alt->found) {
		buf_printf(out, "No working alternative found (%zu other combination%s tried).\n",
		    alt->tried, alt->tried == 1 ? "" : "s");
		return;
	}
	sec = alt->security == DIAG_SEC_TLS ? "SSL/TLS" :
	    alt->security == DIAG_SEC_STARTTLS ? "STARTTLS" : "no encryption";
	buf_printf(out, "Works instead: %s port %d with %s (%s; found by %s, %zu combination%s tried)\n",
	    alt->host, alt->port, sec,
	    alt->verified ? "verified with your password" : "not verified: no password was given",
	    alt->source, alt->tried, alt->tried == 1 ? "" : "s");
}

/* Probes a client's SMTP settings the way the client would (diag.h) and
 * prints the check list, or with --json {"smtp": REPORT} where REPORT also
 * has "alternative": the best other combination that works (DiagnosePorts,
 * smtp./mail. names, SRV; probed in parallel within DiagnoseTimeout), null
 * when the given settings work or nothing else does.  DiagnoseTimeout,
 * DiagnoseCAFile, DiagnoseResolver and ProbeAllow come from the config.  The password is only
 * ever read from --password-file and never printed.  Exit 0 when the
 * verdict is ok, 1 when a problem was found, 2 for usage errors. */
int
ctl_cmd_diagnose(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv)
{
	const char *smtp = NULL, *imap = NULL, *security = NULL, *user = NULL;
	const char *password_file = NULL, *password = NULL, *from = NULL, *rcpt = NULL;
	const char *imap_security = NULL, *imap_user = NULL;
	int json = 0;
	const struct ctl_opt opts[] = {
		{ "--smtp", &smtp, NULL },
		{ "--imap", &imap, NULL },
		{ "--imap-security", &imap_security, NULL },
		{ "--imap-user", &imap_user, NULL },	/* default: --user */
		{ "--security", &security, NULL },
		{ "--user", &user, NULL },
		{ "--password-file", &password_file, NULL },
		{ "--password", &password, NULL },	/* refused, below */
		{ "--from", &from, NULL },
		{ "--rcpt", &rcpt, NULL },
		{ "--json", NULL, &json },
		{ NULL, NULL, NULL },
	};
	struct diag_target t;
	struct diag_report report;
	struct diag_alternative alt;
	struct ctl_imap_job ij;
	struct buf ports;
	struct config *cfg;
	struct buf out, err;
	int r, port, ret;

	if ((r = ctl_parse(cmd, argc, argv, opts, NULL, 0, 0, NULL)) != 0)
		return r == CTL_HELP ? CTL_EXIT_OK : r;
	if (password != NULL)
		return ctl_usage_error(cmd, "the password is never taken on the command line; "
		    "put it in a file only you can read (mode 0600) and give --password-file FILE");
	if (imap == NULL && (imap_security != NULL || imap_user != NULL))
		return ctl_usage_error(cmd, "--imap-security and --imap-user need --imap HOST[:PORT]");
	if (smtp == NULL && imap == NULL)
		return ctl_usage_error(cmd, "--smtp HOST[:PORT] or --imap HOST[:PORT] is required");
	if (smtp == NULL) {
		if (security != NULL || from != NULL || rcpt != NULL)
			return ctl_usage_error(cmd, "--security, --from and --rcpt need --smtp "
			    "(IMAP's security is --imap-security)");
		if ((r = ctl_imap_target(cmd, imap, imap_security, imap_user ? imap_user : user,
		    password_file, &ij)) != 0)
			return r;
		return ctl_diagnose_imap_only(ctl, &ij, json);
	}
	memset(&t, 0, sizeof(t));
	if (ctl_parse_hostport(smtp, &t.host, &port) != 0)
		return ctl_usage_error(cmd, "--smtp wants HOST or HOST:PORT (port 1-65535), "
		    "not \"%s\"", smtp);
	if (security != NULL) {
		if (diag_security_parse(security, &t.security) != 0) {
			diag_target_free(&t);
			return ctl_usage_error(cmd, "--security wants tls, starttls or none, not \"%s\"",
			    security);
		}
	} else {
		t.security = port == 465 ? DIAG_SEC_TLS : DIAG_SEC_STARTTLS;
	}
	if (port == 0)
		port = t.security == DIAG_SEC_TLS ? 465 : t.security == DIAG_SEC_STARTTLS ? 587 : 25;
	t.port = port;
	if (user != NULL && password_file == NULL) {
		diag_target_free(&t);
		return ctl_usage_error(cmd, "--user needs --password-file FILE");
	}
	if (password_file != NULL && user == NULL) {
		diag_target_free(&t);
		return ctl_usage_error(cmd, "--password-file needs --user");
	}
	if (rcpt != NULL && from == NULL) {
		diag_target_free(&t);
		return ctl_usage_error(cmd, "--rcpt needs --from");
	}
	if (user != NULL) {
		buf_init(&err, 4096);
		if (diag_target_password_file(&t, password_file, &err) != 0) {
			ctl_err("diagnose: --password-file: %s",
			    err.len ? buf_str(&err) : "cannot be read");
			buf_free(&err);
			diag_target_free(&t);
			return CTL_EXIT_USAGE;
		}
		buf_free(&err);
		t.user = xstrdup(user);
	}
	if (from != NULL)
		t.mail_from = xstrdup(from);
	if (rcpt != NULL)
		t.rcpt = xstrdup(rcpt);
	if ((cfg = ctl_config(ctl)) == NULL) {
		diag_target_free(&t);
		return CTL_EXIT_FAIL;
	}
	diagnose_target_config(&t, cfg);
	if (imap != NULL) {
		/* beside the SMTP diagnosis, in a thread: one DiagnoseTimeout for both */
		if ((r = ctl_imap_target(cmd, imap, imap_security, imap_user ? imap_user : user,
		    password_file, &ij)) != 0) {
			diag_target_free(&t);
			return r;
		}
		diagnose_target_config(&ij.t, cfg);
		ctl_imap_start(&ij);
	}
	diagnose_ports_text(cfg, &ports);

	diag_smtp_with_alternatives(&t, buf_str(&ports), NULL, &report, &alt);
	if (imap != NULL)
		ctl_imap_finish(&ij);
	buf_free(&ports);
	diag_target_free(&t);
	buf_init(&out, CTL_JSON_MAX);
	if (json) {
		json_object_begin(&out);
		json_key(&out, "smtp");
		diag_report_json(&report, &out);
		/* Reopen the report's object for the field diag.c does not know. */
		if (!out.truncated && out.len > 0 && out.data[out.len - 1] == '}') {
			out.data[--out.len] = '\0';
			json_key(&out, "alternative");
			diag_alternative_json(&alt, &out);
			json_object_end(&out);
		}
		if (imap != NULL)
			ctl_imap_json(&ij, &out);
		json_object_end(&out);
		buf_append_char(&out, '\n');
	} else {
		diag_report_text(&report, &out);
		ctl_diagnose_alternative_text(&report, &alt, &out);
		if (imap != NULL)
			ctl_imap_text(&ij, 1, &out);
	}
	ret = report.verdict == DIAG_OK ? CTL_EXIT_OK : CTL_EXIT_FAIL;
	if (imap != NULL && ij.report.verdict != DIAG_OK)
		ret = CTL_EXIT_FAIL;
	if (ctl_emit(&out) != 0)
		ret = CTL_EXIT_FAIL;
	buf_free(&out);
	diag_report_free(&report);
	diag_alternative_free(&alt);
	if (imap != NULL)
		ctl_imap_free(&ij);
	return ret;
}
