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
	if ((tier = config_tier(cfg, tier_name)) == NULL) {
		struct buf names;

		buf_init(&names, 4096);
		ctl_tier_names(cfg, &names);
		ctl_err("unknown tier \"%s\"; valid tiers: %s", tier_name, buf_str(&names));
		buf_free(&names);
		return CTL_EXIT_FAIL;
	}
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
	printf("WATCH UNTIL\n");
	for (size_t i = 0; i < list.count; i++) {
		const struct customer *c = &list.rows[i];

		ctl_cell(c->address, width);
		ctl_cell(c->tier, 12);
		printf("%s\n", ctl_iso(c->watch_until, when, sizeof(when)));
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
