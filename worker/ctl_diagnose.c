/*
 * ctl_diagnose - helpgatectl diagnose: probe a client's mail settings.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
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

/* Probes a client's SMTP settings the way the client would (diag.h) and
 * prints the check list, or with --json {"smtp": REPORT} where REPORT also
 * has "alternative" (null until alternatives are tried).  DiagnoseTimeout,
 * DiagnoseCAFile and ProbeAllow come from the config.  The password is only
 * ever read from --password-file and never printed.  Exit 0 when the
 * verdict is ok, 1 when a problem was found, 2 for usage errors. */
int
ctl_cmd_diagnose(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv)
{
	const char *smtp = NULL, *imap = NULL, *security = NULL, *user = NULL;
	const char *password_file = NULL, *password = NULL, *from = NULL, *rcpt = NULL;
	int json = 0;
	const struct ctl_opt opts[] = {
		{ "--smtp", &smtp, NULL },
		{ "--imap", &imap, NULL },
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
	struct config *cfg;
	struct buf out, err;
	int r, port, ret;

	if ((r = ctl_parse(cmd, argc, argv, opts, NULL, 0, 0, NULL)) != 0)
		return r == CTL_HELP ? CTL_EXIT_OK : r;
	if (password != NULL)
		return ctl_usage_error(cmd, "the password is never taken on the command line; "
		    "put it in a file only you can read (mode 0600) and give --password-file FILE");
	if (imap != NULL) {
		ctl_err("diagnose: IMAP diagnosis is not implemented yet");
		return CTL_EXIT_USAGE;
	}
	if (smtp == NULL)
		return ctl_usage_error(cmd, "--smtp HOST[:PORT] is required");
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
	t.timeout_ms = cfg->diagnose_timeout_ms;
	if (cfg->diagnose_ca_file != NULL)
		t.ca_file = xstrdup(cfg->diagnose_ca_file);
	if (cfg->probe_allow.count > 0) {
		t.allow = xcalloc(cfg->probe_allow.count, sizeof(*t.allow));
		for (size_t i = 0; i < cfg->probe_allow.count; i++)
			t.allow[i] = xstrdup(cfg->probe_allow.items[i]);
		t.allow_count = cfg->probe_allow.count;
	}

	diag_smtp(&t, &report);
	diag_target_free(&t);
	buf_init(&out, CTL_JSON_MAX);
	if (json) {
		json_object_begin(&out);
		json_key(&out, "smtp");
		diag_report_json(&report, &out);
		/* Reopen the report's object for the field diag.c does not know. */
		if (!out.truncated && out.len > 0 && out.data[out.len - 1] == '}') {
			out.data[--out.len] = '\0';
			json_kv_null(&out, "alternative");
			json_object_end(&out);
		}
		json_object_end(&out);
		buf_append_char(&out, '\n');
	} else {
		diag_report_text(&report, &out);
	}
	ret = report.verdict == DIAG_OK ? CTL_EXIT_OK : CTL_EXIT_FAIL;
	if (ctl_emit(&out) != 0)
		ret = CTL_EXIT_FAIL;
	buf_free(&out);
	diag_report_free(&report);
	return ret;
}
