/*
 * ctl_customer - helpgatectl customer add | import | list | remove.
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

/* ---- customer commands ---- */

int
ctl_cmd_customer_add(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv)
{
	const char *tier_name = NULL, *watch = NULL, *why;
	const struct ctl_opt opts[] = {
		{ "--tier", &tier_name, NULL },
		{ "--incident-watch", &watch, NULL },
		{ NULL, NULL, NULL },
	};
	const struct tier_policy *tier;
	struct customer c, old;
	struct config *cfg;
	struct store *s;
	char *pos[1], when[64];
	enum store_rc rc;
	long days = 0;
	int r, existed;

	if ((r = ctl_parse(cmd, argc, argv, opts, pos, 1, 1, NULL)) != 0)
		return r == CTL_HELP ? CTL_EXIT_OK : r;
	if (tier_name == NULL)
		return ctl_usage_error(cmd, "--tier is required");
	if (watch != NULL && ctl_parse_days(watch, &days) != 0)
		return ctl_usage_error(cmd, "--incident-watch wants whole days from 0 to %d, not \"%s\"",
		    CTL_MAX_WATCH_DAYS, watch);
	memset(&c, 0, sizeof(c));
	if (ctl_customer_address(pos[0], c.address, sizeof(c.address), &why) != 0) {
		ctl_err("\"%s\" %s", pos[0], why);
		return CTL_EXIT_FAIL;
	}
	if ((cfg = ctl_config(ctl)) == NULL)
		return CTL_EXIT_FAIL;
	if ((tier = ctl_tier(cfg, tier_name)) == NULL)
		return CTL_EXIT_FAIL;
	if (strlen(tier->name) >= sizeof(c.tier)) {
		ctl_err("tier name \"%s\" is longer than %zu bytes", tier->name, sizeof(c.tier) - 1);
		return CTL_EXIT_FAIL;
	}
	snprintf(c.tier, sizeof(c.tier), "%s", tier->name);
	c.created = clock_now();
	c.watch_until = days > 0 ? c.created + days * 86400LL : 0;
	if ((s = ctl_store(ctl)) == NULL)
		return CTL_EXIT_FAIL;
	/* An update keeps the date the customer was first added. */
	rc = store_customer_lookup(s, c.address, &old);
	existed = rc == STORE_OK && strcmp(old.address, c.address) == 0;
	if (rc != STORE_OK && rc != STORE_NOTFOUND)
		return ctl_store_failed(ctl, "looking up the customer", rc);
	if (existed)
		c.created = old.created;
	if ((rc = store_customer_put(s, &c)) != STORE_OK)
		return ctl_store_failed(ctl, "saving the customer", rc);
	printf("%s customer %s (tier %s", existed ? "updated" : "added", c.address, c.tier);
	if (c.watch_until)
		printf(", incident watch until %s", ctl_iso(c.watch_until, when, sizeof(when)));
	printf(")\n");
	return CTL_EXIT_OK;
}

/* Splits one CSV line in place: fields separated by ',', optionally in
 * double quotes with "" for a quote; spaces around fields are dropped.
 * Returns the field count, or -1 with *why set. */
static int
ctl_csv_split(char *line, char **fields, int max, const char **why)
{
	char *p = line, *out;
	int n = 0;

	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (n == max) {
			*why = "too many columns (expected address,tier[,incident_watch_days])";
			return -1;
		}
		fields[n++] = out = p;
		if (*p == '"') {
			char *q = p + 1;

			for (;;) {
				if (*q == '\0') {
					*why = "unterminated quoted field";
					return -1;
				}
				if (*q == '"' && q[1] == '"') {
					*out++ = '"';
					q += 2;
				} else if (*q == '"') {
					q++;
					break;
				} else {
					*out++ = *q++;
				}
			}
			while (*q == ' ' || *q == '\t')
				q++;
			if (*q != ',' && *q != '\0') {
				*why = "text after a closing quote";
				return -1;
			}
			p = q;
		} else {
			while (*p != ',' && *p != '\0')
				p++;
			out = p;
			while (out > fields[n - 1] && (out[-1] == ' ' || out[-1] == '\t'))
				out--;
		}
		if (*p == '\0') {
			*out = '\0';
			return n;
		}
		p++;
		*out = '\0';
	}
}

struct ctl_import {
	struct customer	*rows;
	size_t		 count, alloc;
};

/* Parses FILE into im (every row checked) and reports every bad line as
 * FILE:LINE.  Returns the number of bad lines, or -1 if the file could not
 * be read. */
static int
ctl_import_parse(const struct config *cfg, const char *path, struct ctl_import *im)
{
	char line[CTL_LINE_MAX + 2], *fields[3];
	const char *why;
	time_t now = clock_now();
	int lineno = 0, bad = 0, data_rows = 0, n;
	FILE *fp;

	if ((fp = fopen(path, "r")) == NULL) {
		ctl_err("%s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		const struct tier_policy *tier;
		struct customer c;
		char *p = line;
		size_t len;
		long days = 0;

		lineno++;
		len = strlen(line);
		if (len > 0 && line[len - 1] != '\n' && !feof(fp)) {
			ctl_err("%s:%d: line longer than %d bytes", path, lineno, CTL_LINE_MAX);
			bad++;
			for (int ch; (ch = fgetc(fp)) != EOF && ch != '\n';)
				;
			continue;
		}
		line[strcspn(line, "\r\n")] = '\0';
		if (lineno == 1 && strncmp(p, "\xEF\xBB\xBF", 3) == 0)
			p += 3;		/* spreadsheet programs write a BOM */
		while (isspace((unsigned char)*p))
			p++;
		if (*p == '\0' || *p == '#')
			continue;
		if ((n = ctl_csv_split(p, fields, 3, &why)) < 0) {
			ctl_err("%s:%d: %s", path, lineno, why);
			bad++;
			continue;
		}
		if (data_rows++ == 0 && strcasecmp(fields[0], "address") == 0)
			continue;	/* header row */
		if (n < 2 || fields[1][0] == '\0') {
			ctl_err("%s:%d: expected address,tier[,incident_watch_days]", path, lineno);
			bad++;
			continue;
		}
		memset(&c, 0, sizeof(c));
		if (ctl_customer_address(fields[0], c.address, sizeof(c.address), &why) != 0) {
			ctl_err("%s:%d: \"%s\" %s", path, lineno, fields[0], why);
			bad++;
			continue;
		}
		if ((tier = config_tier(cfg, fields[1])) == NULL || strlen(tier->name) >= sizeof(c.tier)) {
			struct buf names;

			buf_init(&names, 4096);
			ctl_tier_names(cfg, &names);
			ctl_err("%s:%d: unknown tier \"%s\"; valid tiers: %s", path, lineno,
			    fields[1], buf_str(&names));
			buf_free(&names);
			bad++;
			continue;
		}
		if (n == 3 && fields[2][0] != '\0' && ctl_parse_days(fields[2], &days) != 0) {
			ctl_err("%s:%d: incident_watch_days \"%s\" is not a whole number from 0 to %d",
			    path, lineno, fields[2], CTL_MAX_WATCH_DAYS);
			bad++;
			continue;
		}
		snprintf(c.tier, sizeof(c.tier), "%s", tier->name);
		c.created = now;
		c.watch_until = days > 0 ? now + days * 86400LL : 0;
		if (im->count == im->alloc) {
			im->alloc = im->alloc ? im->alloc * 2 : 64;
			im->rows = xrealloc(im->rows, im->alloc * sizeof(*im->rows));
		}
		im->rows[im->count++] = c;
	}
	if (ferror(fp)) {
		ctl_err("%s: read error: %s", path, strerror(errno));
		fclose(fp);
		return -1;
	}
	fclose(fp);
	return bad;
}

/* All or nothing: the whole file is checked before the store is touched,
 * then written in one transaction. */
int
ctl_cmd_customer_import(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv)
{
	struct ctl_import im = { NULL, 0, 0 };
	struct config *cfg;
	struct store *s;
	struct customer old;
	enum store_rc rc = STORE_OK;
	char *pos[1];
	int r, bad;

	if ((r = ctl_parse(cmd, argc, argv, NULL, pos, 1, 1, NULL)) != 0)
		return r == CTL_HELP ? CTL_EXIT_OK : r;
	if ((cfg = ctl_config(ctl)) == NULL)
		return CTL_EXIT_FAIL;
	if ((bad = ctl_import_parse(cfg, pos[0], &im)) != 0) {
		if (bad > 0)
			ctl_err("%s: %d bad line%s; nothing imported", pos[0], bad, bad == 1 ? "" : "s");
		free(im.rows);
		return CTL_EXIT_FAIL;
	}
	if ((s = ctl_store(ctl)) == NULL) {
		free(im.rows);
		return CTL_EXIT_FAIL;
	}
	if ((rc = store_begin(s)) != STORE_OK) {
		free(im.rows);
		return ctl_store_failed(ctl, "starting the import", rc);
	}
	for (size_t i = 0; i < im.count && rc == STORE_OK; i++) {
		rc = store_customer_lookup(s, im.rows[i].address, &old);
		if (rc == STORE_OK && strcmp(old.address, im.rows[i].address) == 0)
			im.rows[i].created = old.created;
		if (rc == STORE_OK || rc == STORE_NOTFOUND)
			rc = store_customer_put(s, &im.rows[i]);
	}
	if (rc == STORE_OK)
		rc = store_commit(s);
	free(im.rows);
	if (rc != STORE_OK) {
		store_rollback(s);
		ctl_store_failed(ctl, "importing customers", rc);
		ctl_err("%s: nothing imported", pos[0]);
		return CTL_EXIT_FAIL;
	}
	printf("imported %zu customer%s\n", im.count, im.count == 1 ? "" : "s");
	return CTL_EXIT_OK;
}

struct ctl_customers {
	struct customer	*rows;
	size_t		 count, alloc;
};

static int
ctl_collect_customer(const struct customer *c, void *arg)
{
	struct ctl_customers *list = arg;

	if (list->count == list->alloc) {
		list->alloc = list->alloc ? list->alloc * 2 : 64;
		list->rows = xrealloc(list->rows, list->alloc * sizeof(*list->rows));
	}
	list->rows[list->count++] = *c;
	return 0;
}

/* "mail": {"smtp": {host, port, security, user, password_file} or null,
 * "imap": ...} of the customer's own settings (never a password). */
static void
ctl_json_mail(struct store *s, struct buf *b, const char *address)
{
	struct customer_mail m;
	int have = store_customer_mail_lookup(s, address, &m) == STORE_OK &&
	    strcmp(m.address, address) == 0;

	json_key(b, "mail");
	json_object_begin(b);
	for (int imap = 0; imap < 2; imap++) {
		const char *host = imap ? m.imap_host : m.smtp_host;

		if (!have || host[0] == '\0') {
			json_kv_null(b, imap ? "imap" : "smtp");
			continue;
		}
		json_key(b, imap ? "imap" : "smtp");
		json_object_begin(b);
		json_kv_string(b, "host", host);
		json_kv_int(b, "port", imap ? m.imap_port : m.smtp_port);
		json_kv_string(b, "security", imap ? m.imap_security : m.smtp_security);
		json_kv_string(b, "user", imap ? m.imap_user : m.smtp_user);
		json_kv_string(b, "password_file", imap ? m.imap_password_file : m.smtp_password_file);
		json_object_end(b);
	}
	json_object_end(b);
}

int
ctl_cmd_customer_list(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv)
{
	int json = 0, r, ret = CTL_EXIT_OK;
	const struct ctl_opt opts[] = { { "--json", NULL, &json }, { NULL, NULL, NULL } };
	struct ctl_customers list = { NULL, 0, 0 };
	struct store *s;
	enum store_rc rc;
	size_t width = strlen("ADDRESS");
	char when[64];

	if ((r = ctl_parse(cmd, argc, argv, opts, NULL, 0, 0, NULL)) != 0)
		return r == CTL_HELP ? CTL_EXIT_OK : r;
	if ((s = ctl_store(ctl)) == NULL)
		return CTL_EXIT_FAIL;
	if ((rc = store_customer_list(s, ctl_collect_customer, &list)) != STORE_OK) {
		free(list.rows);
		return ctl_store_failed(ctl, "listing customers", rc);
	}
	if (json) {
		struct buf b;

		buf_init(&b, CTL_JSON_MAX);
		fputs(list.count ? "[\n" : "[]\n", stdout);
		for (size_t i = 0; i < list.count && ret == CTL_EXIT_OK; i++) {
			const struct customer *c = &list.rows[i];

			buf_append_str(&b, "  ");
			json_object_begin(&b);
			json_kv_string(&b, "address", c->address);
			json_kv_string(&b, "tier", c->tier);
			ctl_json_time(&b, "watch_until", c->watch_until);
			ctl_json_time(&b, "created", c->created);
			ctl_json_mail(s, &b, c->address);
			json_object_end(&b);
			buf_append_str(&b, i + 1 < list.count ? ",\n" : "\n]\n");
			if (ctl_emit(&b) != 0)
				ret = CTL_EXIT_FAIL;
		}
		buf_free(&b);
		free(list.rows);
		return ret;
	}
	if (list.count == 0) {
		printf("no customers\n");
		return CTL_EXIT_OK;
	}
	for (size_t i = 0; i < list.count; i++) {
		size_t w = ctl_text_chars(list.rows[i].address);
		if (w > width)
			width = w;
	}
	ctl_cell("ADDRESS", width);
	ctl_cell("TIER", 12);
	ctl_cell("WATCH UNTIL", 26);
	printf("MAIL SETTINGS\n");
	for (size_t i = 0; i < list.count; i++) {
		const struct customer *c = &list.rows[i];
		struct customer_mail m;
		char mail[600];

		ctl_cell(c->address, width);
		ctl_cell(c->tier, 12);
		ctl_cell(ctl_iso(c->watch_until, when, sizeof(when)), 26);
		snprintf(mail, sizeof(mail), "-");
		if (store_customer_mail_lookup(s, c->address, &m) == STORE_OK &&
		    strcmp(m.address, c->address) == 0 && m.smtp_host[0])
			snprintf(mail, sizeof(mail), "smtp %.255s:%d %s%s", m.smtp_host, m.smtp_port,
			    m.smtp_security, m.imap_host[0] ? " + imap" : "");
		ctl_put_text(stdout, mail, 300, NULL);
		fputc('\n', stdout);
	}
	free(list.rows);
	return CTL_EXIT_OK;
}

int
ctl_cmd_customer_remove(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv)
{
	struct store *s;
	enum store_rc rc;
	char *pos[1], address[320];
	const char *why;
	int r;

	if ((r = ctl_parse(cmd, argc, argv, NULL, pos, 1, 1, NULL)) != 0)
		return r == CTL_HELP ? CTL_EXIT_OK : r;
	if (ctl_customer_address(pos[0], address, sizeof(address), &why) != 0) {
		ctl_err("\"%s\" %s", pos[0], why);
		return CTL_EXIT_FAIL;
	}
	if ((s = ctl_store(ctl)) == NULL)
		return CTL_EXIT_FAIL;
	rc = store_customer_remove(s, address);
	if (rc == STORE_NOTFOUND) {
		ctl_err("no customer %s", address);
		return CTL_EXIT_FAIL;
	}
	if (rc != STORE_OK)
		return ctl_store_failed(ctl, "removing the customer", rc);
	printf("removed customer %s\n", address);
	return CTL_EXIT_OK;
}

/* ---- customer set: the customer's mail settings, for the diagnosis ---- */

/* "host", "host:587", "[2001:db8::1]:587" -> host (into out) and *port
 * (0 if none given).  0, or -1 when the form or the port is bad. */
static int
ctl_mail_hostport(const char *s, char *out, size_t outlen, int *port)
{
	const char *end_host, *p = NULL, *colon;
	char *end;
	size_t len;
	long v;

	*port = 0;
	if (s[0] == '[') {
		if ((end_host = strchr(s, ']')) == NULL || end_host == s + 1)
			return -1;
		if (end_host[1] == ':')
			p = end_host + 2;
		else if (end_host[1] != '\0')
			return -1;
		s++;
	} else if ((colon = strchr(s, ':')) != NULL && strchr(colon + 1, ':') == NULL) {
		end_host = colon;
		p = colon + 1;
	} else {
		end_host = s + strlen(s);
	}
	len = (size_t)(end_host - s);
	if (len == 0 || len >= outlen)
		return -1;
	memcpy(out, s, len);
	out[len] = '\0';
	for (char *c = out; *c; c++) {
		if ((unsigned char)*c <= ' ' || *c == '/' || (unsigned char)*c >= 0x7f)
			return -1;
		*c = (char)tolower((unsigned char)*c);
	}
	if (p != NULL) {
		errno = 0;
		v = isdigit((unsigned char)*p) ? strtol(p, &end, 10) : -1;
		if (v < 1 || v > 65535 || errno || *end != '\0')
			return -1;
		*port = (int)v;
	}
	return 0;
}

/* Checks that path holds a password the diagnosis can use (a regular file,
 * mode 0600 or stricter: diag_target_password_file's rules), then forgets
 * the password at once: only the absolute path is stored. */
static int
ctl_mail_password_file(const char *opt, const char *path, char *out, size_t outlen)
{
	struct diag_target t;
	struct buf err;
	char *abs;
	int rc;

	memset(&t, 0, sizeof(t));
	buf_init(&err, 4096);
	rc = diag_target_password_file(&t, path, &err);
	diag_target_free(&t);
	if (rc != 0) {
		ctl_err("%s: %s", opt, err.len ? buf_str(&err) : "cannot be read");
		buf_free(&err);
		return -1;
	}
	buf_free(&err);
	if ((abs = realpath(path, NULL)) == NULL || strlen(abs) >= outlen) {
		ctl_err("%s: %s: %s", opt, path, abs ? "path too long" : strerror(errno));
		free(abs);
		return -1;
	}
	snprintf(out, outlen, "%s", abs);
	free(abs);
	return 0;
}

/* One protocol's options into host/port/security/user/password file. */
static int
ctl_mail_group(const struct ctl_command *cmd, const char *proto, const char *hostport,
    const char *security, const char *user, const char *pwfile, char *host, size_t hostlen,
    int *port, char *sec, size_t seclen, char *u, size_t ulen, char *pw, size_t pwlen)
{
	enum diag_security ds;

	if (ctl_mail_hostport(hostport, host, hostlen, port) != 0)
		return ctl_usage_error(cmd, "--%s wants HOST or HOST:PORT (port 1-65535), not \"%s\"",
		    proto, hostport);
	if (security != NULL) {
		if (diag_security_parse(security, &ds) != 0)
			return ctl_usage_error(cmd, "--%s security wants tls, starttls or none, "
			    "not \"%s\"", proto, security);
	} else if (strcmp(proto, "smtp") == 0) {
		ds = *port == 465 ? DIAG_SEC_TLS : DIAG_SEC_STARTTLS;
	} else {
		ds = *port == 993 ? DIAG_SEC_TLS : DIAG_SEC_STARTTLS;
	}
	snprintf(sec, seclen, "%s", diag_security_name(ds));
	if (*port == 0)
		*port = strcmp(proto, "smtp") == 0 ?
		    (ds == DIAG_SEC_TLS ? 465 : ds == DIAG_SEC_STARTTLS ? 587 : 25) :
		    (ds == DIAG_SEC_TLS ? 993 : 143);
	u[0] = pw[0] = '\0';
	if ((user != NULL) != (pwfile != NULL))
		return ctl_usage_error(cmd, "a user needs a password file and a password file a "
		    "user (--user U --password-file F)");
	if (user != NULL) {
		if (strlen(user) >= ulen || strpbrk(user, "\r\n") != NULL)
			return ctl_usage_error(cmd, "bad user name \"%s\"", user);
		snprintf(u, ulen, "%s", user);
		if (ctl_mail_password_file("--password-file", pwfile, pw, pwlen) != 0)
			return CTL_EXIT_FAIL;
	}
	return CTL_EXIT_OK;
}

static void
ctl_mail_print(const struct customer_mail *m)
{
	printf("customer ");
	ctl_put_text(stdout, m->address, 320, NULL);
	printf("\n  SMTP: ");
	if (m->smtp_host[0]) {
		ctl_put_text(stdout, m->smtp_host, 256, NULL);
		printf(":%d %s", m->smtp_port, m->smtp_security);
		if (m->smtp_user[0]) {
			printf(", user ");
			ctl_put_text(stdout, m->smtp_user, 320, NULL);
			printf(", password file ");
			ctl_put_text(stdout, m->smtp_password_file, 1024, NULL);
		} else {
			printf(", no credentials");
		}
	} else {
		printf("not set");
	}
	printf("\n  IMAP: ");
	if (m->imap_host[0]) {
		ctl_put_text(stdout, m->imap_host, 256, NULL);
		printf(":%d %s", m->imap_port, m->imap_security);
		if (m->imap_user[0]) {
			printf(", user ");
			ctl_put_text(stdout, m->imap_user, 320, NULL);
			printf(", password file ");
			ctl_put_text(stdout, m->imap_password_file, 1024, NULL);
		} else {
			printf(", no credentials");
		}
	} else {
		printf("not set");
	}
	printf("\n");
}

/*
 * customer set ADDRESS|@DOMAIN [--smtp HOST[:PORT] [--security S] [--user U
 * --password-file F]] [--imap HOST[:PORT] [--imap-security S] [--imap-user U
 * --imap-password-file F]] [--clear]
 *
 * The settings the automatic diagnosis probes first.  --smtp replaces the
 * SMTP settings, --imap the IMAP ones (IMAP credentials default to the
 * SMTP ones); --clear removes both; no option shows them.  The password
 * file is checked (regular file, mode 0600 or stricter) and only its
 * absolute path is stored: the worker reads it at each diagnosis.
 */
int
ctl_cmd_customer_set(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv)
{
	const char *smtp = NULL, *security = NULL, *user = NULL, *pwfile = NULL;
	const char *imap = NULL, *imap_security = NULL, *imap_user = NULL, *imap_pwfile = NULL;
	const char *why;
	int clear = 0, r;
	const struct ctl_opt opts[] = {
		{ "--smtp", &smtp, NULL },
		{ "--security", &security, NULL },
		{ "--user", &user, NULL },
		{ "--password-file", &pwfile, NULL },
		{ "--imap", &imap, NULL },
		{ "--imap-security", &imap_security, NULL },
		{ "--imap-user", &imap_user, NULL },
		{ "--imap-password-file", &imap_pwfile, NULL },
		{ "--clear", NULL, &clear },
		{ NULL, NULL, NULL },
	};
	struct customer_mail m;
	struct customer cust;
	struct store *s;
	enum store_rc rc;
	char *pos[1], address[320];

	if ((r = ctl_parse(cmd, argc, argv, opts, pos, 1, 1, NULL)) != 0)
		return r == CTL_HELP ? CTL_EXIT_OK : r;
	if (ctl_customer_address(pos[0], address, sizeof(address), &why) != 0) {
		ctl_err("\"%s\" %s", pos[0], why);
		return CTL_EXIT_FAIL;
	}
	if (clear && (smtp || imap || security || user || pwfile || imap_security || imap_user ||
	    imap_pwfile))
		return ctl_usage_error(cmd, "--clear takes no other option");
	if (smtp == NULL && (security || user || pwfile))
		return ctl_usage_error(cmd, "--security, --user and --password-file go with --smtp");
	if (imap == NULL && (imap_security || imap_user || imap_pwfile))
		return ctl_usage_error(cmd, "--imap-security, --imap-user and --imap-password-file "
		    "go with --imap");
	memset(&m, 0, sizeof(m));
	snprintf(m.address, sizeof(m.address), "%s", address);
	if (smtp != NULL && (r = ctl_mail_group(cmd, "smtp", smtp, security, user, pwfile,
	    m.smtp_host, sizeof(m.smtp_host), &m.smtp_port, m.smtp_security,
	    sizeof(m.smtp_security), m.smtp_user, sizeof(m.smtp_user), m.smtp_password_file,
	    sizeof(m.smtp_password_file))) != CTL_EXIT_OK)
		return r;
	if (imap != NULL) {
		if (imap_user == NULL && imap_pwfile == NULL) {
			imap_user = user;
			imap_pwfile = pwfile;
		}
		if ((r = ctl_mail_group(cmd, "imap", imap, imap_security, imap_user, imap_pwfile,
		    m.imap_host, sizeof(m.imap_host), &m.imap_port, m.imap_security,
		    sizeof(m.imap_security), m.imap_user, sizeof(m.imap_user), m.imap_password_file,
		    sizeof(m.imap_password_file))) != CTL_EXIT_OK)
			return r;
	}
	if ((s = ctl_store(ctl)) == NULL)
		return CTL_EXIT_FAIL;
	/* Settings belong to a customer record of exactly this key. */
	rc = store_customer_lookup(s, address, &cust);
	if (rc == STORE_NOTFOUND || (rc == STORE_OK && strcmp(cust.address, address) != 0)) {
		ctl_err("no customer %s (add it first: helpgatectl customer add %s --tier TIER)",
		    address, address);
		return CTL_EXIT_FAIL;
	}
	if (rc != STORE_OK)
		return ctl_store_failed(ctl, "looking up the customer", rc);
	if (clear) {
		rc = store_customer_mail_remove(s, address);
		if (rc != STORE_OK && rc != STORE_NOTFOUND)
			return ctl_store_failed(ctl, "clearing the mail settings", rc);
		printf("cleared the mail settings of %s\n", address);
		return CTL_EXIT_OK;
	}
	if (smtp == NULL && imap == NULL) {
		struct customer_mail old;

		rc = store_customer_mail_lookup(s, address, &old);
		if (rc == STORE_NOTFOUND || (rc == STORE_OK && strcmp(old.address, address) != 0)) {
			memset(&old, 0, sizeof(old));
			snprintf(old.address, sizeof(old.address), "%s", address);
		} else if (rc != STORE_OK) {
			return ctl_store_failed(ctl, "reading the mail settings", rc);
		}
		ctl_mail_print(&old);
		return CTL_EXIT_OK;
	}
	/* One group given: the other keeps its stored value. */
	if (smtp == NULL || imap == NULL) {
		struct customer_mail old;

		rc = store_customer_mail_lookup(s, address, &old);
		if (rc == STORE_OK && strcmp(old.address, address) == 0) {
			if (smtp == NULL) {
				memcpy(m.smtp_host, old.smtp_host, sizeof(m.smtp_host));
				m.smtp_port = old.smtp_port;
				memcpy(m.smtp_security, old.smtp_security, sizeof(m.smtp_security));
				memcpy(m.smtp_user, old.smtp_user, sizeof(m.smtp_user));
				memcpy(m.smtp_password_file, old.smtp_password_file,
				    sizeof(m.smtp_password_file));
			} else {
				memcpy(m.imap_host, old.imap_host, sizeof(m.imap_host));
				m.imap_port = old.imap_port;
				memcpy(m.imap_security, old.imap_security, sizeof(m.imap_security));
				memcpy(m.imap_user, old.imap_user, sizeof(m.imap_user));
				memcpy(m.imap_password_file, old.imap_password_file,
				    sizeof(m.imap_password_file));
			}
		} else if (rc != STORE_OK && rc != STORE_NOTFOUND) {
			return ctl_store_failed(ctl, "reading the mail settings", rc);
		}
	}
	m.updated = clock_now();
	if ((rc = store_customer_mail_put(s, &m)) != STORE_OK)
		return ctl_store_failed(ctl, "saving the mail settings", rc);
	ctl_mail_print(&m);
	return CTL_EXIT_OK;
}
