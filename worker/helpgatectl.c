/*
 * helpgatectl - the staff and admin command line.
 *
 *   helpgatectl [-c FILE] COMMAND [ARGS...]
 *
 * Every command is one row of ctl_commands[] (name, handler, usage,
 * summary) and one ctl_cmd_* function; main() only picks the global
 * options and dispatches.  The config (-c FILE, else $HELPGATE_CONF, else
 * /etc/helpgate/helpgate.conf) and the store are opened on first use by a
 * handler, so "--help" works without either.
 *
 * Exit status: 0 done, 1 failed or not found, 2 usage error.  Diagnostics
 * go to stderr as "helpgatectl: ...", results to stdout.  --json output is
 * always plain UTF-8 JSON; the tables may colour urgency when stdout is a
 * terminal and NO_COLOR is unset.  Text that came from mail (subjects,
 * excerpts, addresses) is printed with control characters replaced, so a
 * hostile message cannot drive the staff member's terminal.
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

#define CTL_DEFAULT_CONF	"/etc/helpgate/helpgate.conf"
#define CTL_STORE_TIMEOUT_MS	5000
#define CTL_EXIT_OK		0
#define CTL_EXIT_FAIL		1
#define CTL_EXIT_USAGE		2
#define CTL_HELP		(-1)	/* ctl_parse(): --help was printed */
#define CTL_MAX_WATCH_DAYS	3650
#define CTL_EXCERPT_CHARS	400
#define CTL_JSON_MAX		(4u << 20)	/* one case with its messages fits */
#define CTL_LINE_MAX		4096	/* customer import: longest CSV line */
#define CTL_TIME_MIN		(-2208988800LL)	/* sla due --at: 1900-01-01T00:00:00Z */
#define CTL_TIME_MAX		253402300799LL	/* ... to 9999-12-31T23:59:59Z */

struct ctl {
	const char	*conf_path;
	struct config	*cfg;		/* loaded by ctl_config() */
	struct store	*store;		/* opened by ctl_store() */
	int		 color;		/* stdout is a terminal and NO_COLOR is unset */
};

struct ctl_command;
typedef int ctl_handler(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv);

struct ctl_command {
	const char	*name;		/* one or two words: "cases", "customer add" */
	ctl_handler	*run;		/* gets the arguments after the name */
	const char	*usage;		/* arguments, after the name */
	const char	*summary;
};

/* A subcommand option: value != NULL takes an argument, else flag is set. */
struct ctl_opt {
	const char	*name;		/* "--tier" */
	const char	**value;
	int		*flag;
};

__attribute__((format(printf, 1, 2)))
static void
ctl_err(const char *fmt, ...)
{
	va_list ap;

	fputs("helpgatectl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- config and store, on first use ---- */

/* The loaded config, or NULL after printing why (every error line). */
static struct config *
ctl_config(struct ctl *ctl)
{
	struct buf errors;
	const char *p, *nl;

	if (ctl->cfg != NULL)
		return ctl->cfg;
	buf_init(&errors, 1 << 20);
	ctl->cfg = config_load(ctl->conf_path, &errors);
	if (ctl->cfg == NULL) {
		for (p = buf_str(&errors); *p; p = *nl ? nl + 1 : nl) {
			nl = p + strcspn(p, "\n");
			ctl_err("%.*s", (int)(nl - p), p);
		}
		if (errors.len == 0)
			ctl_err("%s: cannot load the configuration", ctl->conf_path);
		buf_free(&errors);
		return NULL;
	}
	buf_free(&errors);
	if (clock_set_timezone(ctl->cfg->timezone) != 0) {
		ctl_err("%s: Timezone \"%s\" cannot be used on this system",
		    ctl->conf_path, ctl->cfg->timezone);
		config_unref(ctl->cfg);
		ctl->cfg = NULL;
		return NULL;
	}
	return ctl->cfg;
}

static struct store *
ctl_store(struct ctl *ctl)
{
	char err[1024];
	struct config *cfg;

	if (ctl->store != NULL)
		return ctl->store;
	if ((cfg = ctl_config(ctl)) == NULL)
		return NULL;
	if (store_open(cfg->database, CTL_STORE_TIMEOUT_MS, &ctl->store, err,
	    sizeof(err)) != STORE_OK) {
		ctl_err("cannot open the case store: %s", err);
		return NULL;
	}
	return ctl->store;
}

/* Reports a failed store call; always returns CTL_EXIT_FAIL. */
static int
ctl_store_failed(struct ctl *ctl, const char *what, enum store_rc rc)
{
	if (rc == STORE_BUSY)
		ctl_err("%s: the database stayed locked for %d s; try again", what,
		    CTL_STORE_TIMEOUT_MS / 1000);
	else
		ctl_err("%s: %s: %s", what, store_strerror(rc), store_errmsg(ctl->store));
	return CTL_EXIT_FAIL;
}

/* ---- argument parsing ---- */

static void
ctl_command_usage(FILE *fp, const struct ctl_command *cmd)
{
	fprintf(fp, "usage: helpgatectl [-c FILE] %s%s%s\n       %s\n", cmd->name,
	    cmd->usage[0] ? " " : "", cmd->usage, cmd->summary);
}

__attribute__((format(printf, 2, 3)))
static int
ctl_usage_error(const struct ctl_command *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "helpgatectl: %s: ", cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	ctl_command_usage(stderr, cmd);
	return CTL_EXIT_USAGE;
}

/* Splits argv into the options in opts (NULL-name terminated; "--name VALUE"
 * or "--name=VALUE") and positionals, which must number min..max.  Returns
 * 0, CTL_HELP after printing the usage for -h/--help, or CTL_EXIT_USAGE
 * after printing what was wrong.  "--" ends the options. */
static int
ctl_parse(const struct ctl_command *cmd, int argc, char **argv, const struct ctl_opt *opts,
    char **pos, int min, int max, int *npos)
{
	int n = 0, only_pos = 0;

	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		const struct ctl_opt *o;
		size_t len;

		if (only_pos || a[0] != '-' || a[1] == '\0') {
			if (n >= max)
				return ctl_usage_error(cmd, "unexpected argument \"%s\"", a);
			pos[n++] = argv[i];
			continue;
		}
		if (strcmp(a, "--") == 0) {
			only_pos = 1;
			continue;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			ctl_command_usage(stdout, cmd);
			return CTL_HELP;
		}
		len = strcspn(a, "=");
		for (o = opts; o != NULL && o->name != NULL; o++)
			if (strlen(o->name) == len && strncmp(a, o->name, len) == 0)
				break;
		/* Only the name: "--pass=secret" must not echo the secret. */
		if (o == NULL || o->name == NULL)
			return ctl_usage_error(cmd, "unknown option \"%.*s\"", (int)len, a);
		if (o->value == NULL) {
			if (a[len] == '=')
				return ctl_usage_error(cmd, "%s takes no value", o->name);
			*o->flag = 1;
		} else if (a[len] == '=') {
			*o->value = a + len + 1;
		} else if (i + 1 < argc) {
			*o->value = argv[++i];
		} else {
			return ctl_usage_error(cmd, "%s needs a value", o->name);
		}
	}
	if (n < min)
		return ctl_usage_error(cmd, "missing argument");
	if (npos != NULL)
		*npos = n;
	return 0;
}

/* "12", "HG-12", "hg-12" -> 12. */
static int
ctl_parse_case_ref(const char *s, long long *id)
{
	char *end;
	long long v;

	if (strncasecmp(s, "HG-", 3) == 0)
		s += 3;
	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v <= 0)
		return -1;
	*id = v;
	return 0;
}

/* Whole days for an incident watch, 0..CTL_MAX_WATCH_DAYS. */
static int
ctl_parse_days(const char *s, long *days)
{
	char *end;
	long v;

	while (isspace((unsigned char)*s))
		s++;
	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	while (isspace((unsigned char)*end))
		end++;
	if (errno != 0 || *end != '\0' || v < 0 || v > CTL_MAX_WATCH_DAYS)
		return -1;
	*days = v;
	return 0;
}

/* Normalises a customer key into out ("user@example.com" or
 * "@example.com", lowercase).  Returns 0, or -1 with *why set. */
static int
ctl_customer_address(const char *in, char *out, size_t outlen, const char **why)
{
	const char *at;

	if (strlen(in) >= outlen) {
		*why = "is too long";
		return -1;
	}
	snprintf(out, outlen, "%s", in);
	config_normalize_address(out);
	at = strchr(out, '@');
	if (at == NULL || strchr(at + 1, '@') != NULL) {
		*why = "is not an address (user@example.com) or a domain (@example.com)";
		return -1;
	}
	if (at[1] == '\0' || at[1] == '.') {
		*why = "has no domain";
		return -1;
	}
	for (const unsigned char *p = (const unsigned char *)out; *p; p++) {
		if (*p <= 0x20 || *p == 0x7F || *p == ',' || *p == '<' || *p == '>') {
			*why = "contains a space, a comma or a control character";
			return -1;
		}
	}
	return 0;
}

/* Lists the tiers the config knows, for an error message. */
static void
ctl_tier_names(const struct config *cfg, struct buf *out)
{
	for (size_t i = 0; i < cfg->tier_count; i++)
		buf_printf(out, "%s%s", i ? ", " : "", cfg->tiers[i].name);
}

/* ---- output helpers ---- */

static const char *
ctl_iso(long long t, char *out, size_t outlen)
{
	if (t == 0)
		return "-";
	clock_format_iso8601((time_t)t, out, outlen);
	return out;
}

/* Table form: local date and minute, which is what a person compares. */
static const char *
ctl_short_time(long long t, char *out, size_t outlen)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t == 0 || localtime_r(&tt, &tm) == NULL)
		return "-";
	if (strftime(out, outlen, "%Y-%m-%d %H:%M", &tm) == 0)
		return "?";
	return out;
}

/* ISO 8601 string, or null when t is 0. */
static void
ctl_json_time(struct buf *b, const char *name, long long t)
{
	char when[64];

	if (t == 0) {
		json_kv_null(b, name);
		return;
	}
	clock_format_iso8601((time_t)t, when, sizeof(when));
	json_kv_string(b, name, when);
}

/* Length of the UTF-8 character at p (1 for a byte that does not start a
 * complete one, which the printers show as '?'), and whether it was valid. */
static size_t
ctl_utf8_char(const unsigned char *p, unsigned long *cp, int *valid)
{
	size_t n;

	*valid = 1;
	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	n = (p[0] & 0xE0) == 0xC0 ? 2 : (p[0] & 0xF0) == 0xE0 ? 3 : (p[0] & 0xF8) == 0xF0 ? 4 : 0;
	if (n == 0)
		goto bad;
	*cp = p[0] & (0x7F >> n);
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80)
			goto bad;
		*cp = (*cp << 6) | (p[i] & 0x3F);
	}
	return n;
bad:
	*valid = 0;
	*cp = '?';
	return 1;
}

static size_t
ctl_text_chars(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	unsigned long cp;
	size_t n = 0;
	int valid;

	while (*p) {
		p += ctl_utf8_char(p, &cp, &valid);
		n++;
	}
	return n;
}

/* Prints at most max characters of untrusted text s (cut with "…"),
 * replacing control characters (C0, DEL, C1) and invalid bytes with '?'.
 * With indent != NULL newlines are kept and each new line starts with
 * indent; otherwise line breaks and tabs become spaces.  Returns the
 * characters printed (indent excluded). */
static size_t
ctl_put_text(FILE *fp, const char *s, size_t max, const char *indent)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t total = ctl_text_chars(s), shown = 0, limit = total, n;
	unsigned long cp;
	int valid;

	if (total > max)
		limit = max > 0 ? max - 1 : 0;
	while (*p && shown < limit) {
		n = ctl_utf8_char(p, &cp, &valid);
		if (cp == '\n' && indent != NULL) {
			fputc('\n', fp);
			fputs(indent, fp);
		} else if (cp == '\r' && indent != NULL) {
			;	/* CRLF: the LF starts the line */
		} else if (cp == '\n' || cp == '\t' || cp == '\r') {
			fputc(' ', fp);
		} else if (!valid || cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0)) {
			fputc('?', fp);
		} else {
			fwrite(p, 1, n, fp);
		}
		p += n;
		shown++;
	}
	if (total > max && max > 0) {
		fputs("\xE2\x80\xA6", fp);	/* … */
		shown++;
	}
	return shown;
}

/* One table cell: text cut to width characters and padded to it. */
static void
ctl_cell(const char *s, size_t width)
{
	size_t shown = ctl_put_text(stdout, s, width, NULL);

	for (; shown < width; shown++)
		fputc(' ', stdout);
	fputs("  ", stdout);
}

static void
ctl_urgency_cell(const struct ctl *ctl, int urgency)
{
	char p[8];

	snprintf(p, sizeof(p), "P%d", urgency);
	if (ctl->color && urgency == 1)
		fputs("\033[1;31m", stdout);
	else if (ctl->color && urgency == 2)
		fputs("\033[33m", stdout);
	else {
		ctl_cell(p, 3);
		return;
	}
	fputs(p, stdout);
	fputs("\033[0m", stdout);
	for (size_t i = strlen(p); i < 3; i++)
		fputc(' ', stdout);
	fputs("  ", stdout);
}

/* Terminal width for cutting subjects: the tty's, else $COLUMNS, else 120. */
static size_t
ctl_columns(void)
{
	struct winsize ws;
	const char *env;
	char *end;
	long v;

	if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	if ((env = getenv("COLUMNS")) != NULL) {
		errno = 0;
		v = strtol(env, &end, 10);
		if (errno == 0 && *end == '\0' && v >= 40 && v <= 1000)
			return (size_t)v;
	}
	return 120;
}

/* Writes the buffer to stdout; JSON over the cap is refused, not cut. */
static int
ctl_emit(struct buf *b)
{
	if (b->truncated) {
		ctl_err("output larger than %u bytes; refusing to print it cut", CTL_JSON_MAX);
		return -1;
	}
	fwrite(buf_str(b), 1, b->len, stdout);
	buf_reset(b);
	return 0;
}

/* ---- customer commands ---- */

static int
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
static int
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

static int
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

static int
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

/* ---- cases ---- */

static void
ctl_json_case(struct buf *b, const struct case_rec *c)
{
	char ref[32];

	snprintf(ref, sizeof(ref), "HG-%lld", c->id);
	json_kv_int(b, "id", c->id);
	json_kv_string(b, "ref", ref);
	json_kv_string(b, "status", c->status);
	json_kv_int(b, "urgency", c->urgency);
	json_kv_string(b, "tier", c->tier);
	json_kv_bool(b, "watch", c->watch);
	json_kv_string(b, "category", c->category);
	json_kv_string(b, "lang", c->lang);
	json_kv_string(b, "reasons", c->reasons);
	json_kv_string(b, "client", c->client);
	json_kv_string(b, "support_address", c->support_address);
	json_kv_string(b, "subject", c->subject);
	json_kv_string(b, "assignee", c->assignee);
	ctl_json_time(b, "created", c->created);
	ctl_json_time(b, "updated", c->updated);
	ctl_json_time(b, "first_due", c->first_due);
	ctl_json_time(b, "resolve_due", c->resolve_due);
	ctl_json_time(b, "first_response_at", c->first_response_at);
	ctl_json_time(b, "resolved_at", c->resolved_at);
}

struct ctl_case_list {
	struct ctl	*ctl;
	struct buf	 out;		/* JSON: one case at a time */
	int		 json;
	size_t		 count;
	size_t		 subject_width;
	int		 failed;
};

#define CASES_W_REF	8
#define CASES_W_STATUS	8
#define CASES_W_URG	3
#define CASES_W_TIER	10
#define CASES_W_CAT	14
#define CASES_W_CLIENT	28
#define CASES_W_TIME	16
#define CASES_FIXED	(CASES_W_REF + CASES_W_STATUS + CASES_W_URG + CASES_W_TIER + \
			 CASES_W_CAT + CASES_W_CLIENT + 2 * CASES_W_TIME + 8 * 2)

static void
ctl_cases_header(void)
{
	ctl_cell("CASE", CASES_W_REF);
	ctl_cell("STATUS", CASES_W_STATUS);
	ctl_cell("URG", CASES_W_URG);
	ctl_cell("TIER", CASES_W_TIER);
	ctl_cell("CATEGORY", CASES_W_CAT);
	ctl_cell("CLIENT", CASES_W_CLIENT);
	ctl_cell("CREATED", CASES_W_TIME);
	ctl_cell("FIRST DUE", CASES_W_TIME);
	printf("SUBJECT\n");
}

static int
ctl_case_row(const struct case_rec *c, void *arg)
{
	struct ctl_case_list *cl = arg;
	char ref[32], t[64];

	if (cl->json) {
		buf_append_str(&cl->out, cl->count ? ",\n  " : "[\n  ");
		json_object_begin(&cl->out);
		ctl_json_case(&cl->out, c);
		json_object_end(&cl->out);
		cl->count++;
		if (ctl_emit(&cl->out) != 0) {
			cl->failed = 1;
			return 1;
		}
		return 0;
	}
	if (cl->count++ == 0)
		ctl_cases_header();
	snprintf(ref, sizeof(ref), "HG-%lld", c->id);
	ctl_cell(ref, CASES_W_REF);
	ctl_cell(c->status, CASES_W_STATUS);
	ctl_urgency_cell(cl->ctl, c->urgency);
	ctl_cell(c->tier, CASES_W_TIER);
	ctl_cell(c->category, CASES_W_CAT);
	ctl_cell(c->client, CASES_W_CLIENT);
	ctl_cell(ctl_short_time(c->created, t, sizeof(t)), CASES_W_TIME);
	ctl_cell(ctl_short_time(c->first_due, t, sizeof(t)), CASES_W_TIME);
	ctl_put_text(stdout, c->subject, cl->subject_width, NULL);
	fputc('\n', stdout);
	return 0;
}

static int
ctl_cmd_cases(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv)
{
	int json = 0, open_only = 0, r;
	const struct ctl_opt opts[] = {
		{ "--json", NULL, &json },
		{ "--open", NULL, &open_only },
		{ NULL, NULL, NULL },
	};
	struct ctl_case_list cl;
	struct store *s;
	enum store_rc rc;
	size_t cols;

	if ((r = ctl_parse(cmd, argc, argv, opts, NULL, 0, 0, NULL)) != 0)
		return r == CTL_HELP ? CTL_EXIT_OK : r;
	if ((s = ctl_store(ctl)) == NULL)
		return CTL_EXIT_FAIL;
	memset(&cl, 0, sizeof(cl));
	cl.ctl = ctl;
	cl.json = json;
	cols = ctl_columns();
	cl.subject_width = cols > CASES_FIXED + 20 ? cols - CASES_FIXED : 20;
	buf_init(&cl.out, CTL_JSON_MAX);
	rc = store_case_list(s, open_only, ctl_case_row, &cl);
	buf_free(&cl.out);
	if (rc != STORE_OK)
		return ctl_store_failed(ctl, "listing cases", rc);
	if (cl.failed)
		return CTL_EXIT_FAIL;
	if (json)
		fputs(cl.count ? "\n]\n" : "[]\n", stdout);
	else if (cl.count == 0)
		printf("no %scases\n", open_only ? "open " : "");
	return CTL_EXIT_OK;
}

struct ctl_case_show {
	struct buf	 out;
	int		 json;
	size_t		 count;
	int		 failed;
};

static void
ctl_show_field(const char *label, const char *value)
{
	printf("%-13s", label);
	ctl_put_text(stdout, value[0] ? value : "-", 400, NULL);
	fputc('\n', stdout);
}

static int
ctl_message_row(const struct message_rec *m, void *arg)
{
	struct ctl_case_show *cs = arg;
	char t[64];

	if (cs->json) {
		json_object_begin(&cs->out);
		json_kv_int(&cs->out, "id", m->id);
		json_kv_string(&cs->out, "direction", m->direction);
		json_kv_string(&cs->out, "sender", m->sender);
		ctl_json_time(&cs->out, "received", m->received);
		json_kv_string(&cs->out, "date_header", m->date_header);
		json_kv_string(&cs->out, "message_id", m->message_id);
		json_kv_string(&cs->out, "subject", m->subject);
		json_kv_string(&cs->out, "queue_id", m->queue_id);
		json_kv_int(&cs->out, "urgency", m->urgency);
		json_kv_string(&cs->out, "category", m->category);
		json_kv_string(&cs->out, "auto_reason", m->auto_reason);
		json_kv_string(&cs->out, "ack", m->ack);
		json_kv_string(&cs->out, "excerpt", m->excerpt);
		json_object_end(&cs->out);
		cs->count++;
		return 0;
	}
	printf("\n[%zu] ", ++cs->count);
	ctl_cell(m->direction, 5);
	printf("%s  from ", ctl_iso(m->received, t, sizeof(t)));
	ctl_put_text(stdout, m->sender[0] ? m->sender : "-", 320, NULL);
	printf("\n    Message-ID: ");
	ctl_put_text(stdout, m->message_id[0] ? m->message_id : "-", 200, NULL);
	printf("  Queue ID: ");
	ctl_put_text(stdout, m->queue_id[0] ? m->queue_id : "-", 32, NULL);
	printf("\n    P%d  ", m->urgency);
	ctl_put_text(stdout, m->category[0] ? m->category : "-", 48, NULL);
	if (m->auto_reason[0]) {
		printf("  automatic: ");
		ctl_put_text(stdout, m->auto_reason, 64, NULL);
	}
	if (m->ack[0] && strcmp(m->ack, "n/a") != 0) {
		printf("  acknowledgement: ");
		ctl_put_text(stdout, m->ack, 64, NULL);
	}
	if (m->subject[0]) {
		printf("\n    Subject: ");
		ctl_put_text(stdout, m->subject, 200, NULL);
	}
	printf("\n    | ");
	ctl_put_text(stdout, m->excerpt, CTL_EXCERPT_CHARS, "    | ");
	fputc('\n', stdout);
	return 0;
}

/* --limit N, 1..1000000; prints the usage error itself. */
static int
ctl_parse_limit(const struct ctl_command *cmd, const char *arg, long *limit)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < 1 || v > 1000000) {
		ctl_usage_error(cmd, "--limit wants a count from 1 to 1000000, not \"%s\"", arg);
		return -1;
	}
	*limit = v;
	return 0;
}

/* ---- outbox ---- */

struct ctl_outbox {
	struct buf	out;
	int		json;
	size_t		count;
};

static int
ctl_outbox_row(struct outbox_rec *o, void *arg)
{
	struct ctl_outbox *ob = arg;
	char t[64], t2[64];

	ob->count++;
	if (ob->json) {
		json_object_begin(&ob->out);
		json_kv_int(&ob->out, "id", o->id);
		if (o->case_id)
			json_kv_int(&ob->out, "case_id", o->case_id);
		else
			json_kv_null(&ob->out, "case_id");
		json_kv_string(&ob->out, "kind", o->kind);
		json_kv_string(&ob->out, "recipient", o->recipient);
		json_kv_string(&ob->out, "message_id", o->message_id);
		json_kv_string(&ob->out, "state", o->state);
		json_kv_int(&ob->out, "attempts", o->attempts);
		ctl_json_time(&ob->out, "created", o->created);
		ctl_json_time(&ob->out, "next_attempt",
		    strcmp(o->state, "pending") == 0 ? o->next_attempt : 0);
		ctl_json_time(&ob->out, "sent_at", o->sent_at);
		json_kv_string(&ob->out, "last_error", o->last_error);
		json_object_end(&ob->out);
		return 0;
	}
	printf("%-7s ", o->state);
	if (o->case_id)
		printf("HG-%-6lld ", o->case_id);
	else
		printf("%-9s ", "-");
	ctl_cell(o->kind, 7);
	printf("%s  ", ctl_short_time(o->sent_at ? o->sent_at : o->created, t, sizeof(t)));
	ctl_put_text(stdout, o->recipient, 60, NULL);
	if (o->attempts > 1 || o->last_error[0])
		printf("  (%d attempts)", o->attempts);
	if (strcmp(o->state, "pending") == 0 && o->attempts > 0)
		printf("  next %s", ctl_short_time(o->next_attempt, t2, sizeof(t2)));
	if (o->last_error[0]) {
		printf("\n        ");
		ctl_put_text(stdout, o->last_error, 200, NULL);
	}
	fputc('\n', stdout);
	return 0;
}

static int
ctl_cmd_outbox(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv)
{
	int json = 0, r, ret = CTL_EXIT_OK;
	const char *limit_arg = NULL;
	const struct ctl_opt opts[] = {
		{ "--json", NULL, &json }, { "--limit", &limit_arg, NULL }, { NULL, NULL, NULL },
	};
	struct ctl_outbox ob;
	struct store *s;
	enum store_rc rc;
	long limit = 200;

	if ((r = ctl_parse(cmd, argc, argv, opts, NULL, 0, 0, NULL)) != 0)
		return r == CTL_HELP ? CTL_EXIT_OK : r;
	if (limit_arg != NULL && ctl_parse_limit(cmd, limit_arg, &limit) != 0)
		return CTL_EXIT_USAGE;
	if ((s = ctl_store(ctl)) == NULL)
		return CTL_EXIT_FAIL;
	memset(&ob, 0, sizeof(ob));
	ob.json = json;
	buf_init(&ob.out, CTL_JSON_MAX);
	if (json)
		json_array_begin(&ob.out);
	else
		printf("%-7s %-9s %-7s %-16s %s\n", "STATE", "CASE", "KIND", "WHEN", "TO");
	if ((rc = store_outbox_list(s, 0, (int)limit, ctl_outbox_row, &ob)) != STORE_OK) {
		buf_free(&ob.out);
		return ctl_store_failed(ctl, "reading the outbox", rc);
	}
	if (json) {
		json_array_end(&ob.out);
		buf_append_char(&ob.out, '\n');
		if (ctl_emit(&ob.out) != 0)
			ret = CTL_EXIT_FAIL;
	} else if (ob.count == 0) {
		printf("the outbox is empty\n");
	}
	buf_free(&ob.out);
	return ret;
}

static int
ctl_cmd_case_show(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv)
{
	int json = 0, r, ret = CTL_EXIT_OK;
	const struct ctl_opt opts[] = { { "--json", NULL, &json }, { NULL, NULL, NULL } };
	struct ctl_case_show cs;
	struct case_rec c;
	struct store *s;
	enum store_rc rc;
	long long id;
	char *pos[1], t[64], t2[64];

	if ((r = ctl_parse(cmd, argc, argv, opts, pos, 1, 1, NULL)) != 0)
		return r == CTL_HELP ? CTL_EXIT_OK : r;
	if (ctl_parse_case_ref(pos[0], &id) != 0)
		return ctl_usage_error(cmd, "\"%s\" is not a case (HG-12 or 12)", pos[0]);
	if ((s = ctl_store(ctl)) == NULL)
		return CTL_EXIT_FAIL;
	if ((rc = store_case_get(s, id, &c)) == STORE_NOTFOUND) {
		ctl_err("no case HG-%lld", id);
		return CTL_EXIT_FAIL;
	}
	if (rc != STORE_OK)
		return ctl_store_failed(ctl, "reading the case", rc);

	memset(&cs, 0, sizeof(cs));
	cs.json = json;
	buf_init(&cs.out, CTL_JSON_MAX);
	if (json) {
		json_object_begin(&cs.out);
		ctl_json_case(&cs.out, &c);
		json_key(&cs.out, "messages");
		json_array_begin(&cs.out);
	} else {
		printf("HG-%lld  %s  ", c.id, c.status);
		ctl_urgency_cell(ctl, c.urgency);
		ctl_put_text(stdout, c.tier[0] ? c.tier : "-", 32, NULL);
		printf("%s\n", c.watch ? " (incident watch)" : "");
		ctl_show_field("Subject:", c.subject);
		ctl_show_field("Client:", c.client);
		ctl_show_field("To:", c.support_address);
		ctl_show_field("Category:", c.category);
		ctl_show_field("Language:", c.lang);
		ctl_show_field("Reasons:", c.reasons);
		ctl_show_field("Assignee:", c.assignee);
		ctl_show_field("Created:", ctl_iso(c.created, t, sizeof(t)));
		ctl_show_field("Updated:", ctl_iso(c.updated, t, sizeof(t)));
		printf("%-13s%s (answered: %s)\n", "First due:", ctl_iso(c.first_due, t, sizeof(t)),
		    c.first_response_at ? ctl_iso(c.first_response_at, t2, sizeof(t2)) : "not yet");
		ctl_show_field("Resolve due:", ctl_iso(c.resolve_due, t, sizeof(t)));
		ctl_show_field("Resolved:", ctl_iso(c.resolved_at, t, sizeof(t)));
	}
	rc = store_message_list(s, id, ctl_message_row, &cs);
	if (rc != STORE_OK) {
		buf_free(&cs.out);
		return ctl_store_failed(ctl, "reading the case's messages", rc);
	}
	struct ctl_outbox ob;
	memset(&ob, 0, sizeof(ob));
	ob.json = json;
	buf_init(&ob.out, CTL_JSON_MAX);
	if (json) {
		json_array_begin(&ob.out);
	} else {
		if (cs.count == 0)
			printf("\nno messages\n");
		printf("\nSent by helpgate:\n");
	}
	rc = store_outbox_list(s, id, 1000, ctl_outbox_row, &ob);
	if (rc != STORE_OK) {
		buf_free(&cs.out);
		buf_free(&ob.out);
		return ctl_store_failed(ctl, "reading the case's outbox", rc);
	}
	if (json) {
		json_array_end(&cs.out);
		json_array_end(&ob.out);
		json_key(&cs.out, "outbox");
		buf_append(&cs.out, ob.out.data, ob.out.len);
		json_object_end(&cs.out);
		buf_append_char(&cs.out, '\n');
		if (ctl_emit(&cs.out) != 0)
			ret = CTL_EXIT_FAIL;
	} else if (ob.count == 0) {
		printf("nothing\n");
	}
	buf_free(&cs.out);
	buf_free(&ob.out);
	return ret;
}

/* ---- config ---- */

static int
ctl_cmd_config_check(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv)
{
	int r;

	if ((r = ctl_parse(cmd, argc, argv, NULL, NULL, 0, 0, NULL)) != 0)
		return r == CTL_HELP ? CTL_EXIT_OK : r;
	if (ctl_config(ctl) == NULL)
		return CTL_EXIT_FAIL;
	printf("config OK: %s\n", ctl->conf_path);
	return CTL_EXIT_OK;
}

/* ---- SLA ---- */

/* Prints the deadline an SLA clock started at --at (default: now) would
 * have, in Timezone; the same sla_deadline() the milter and worker use. */
static int
ctl_cmd_sla_due(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv)
{
	const char *tier_name = NULL, *urgency = NULL, *at = NULL, *kind_name = NULL;
	const struct ctl_opt opts[] = {
		{ "--tier", &tier_name, NULL },
		{ "--urgency", &urgency, NULL },
		{ "--at", &at, NULL },
		{ "--kind", &kind_name, NULL },
		{ NULL, NULL, NULL },
	};
	const struct tier_policy *tier;
	enum sla_kind kind = SLA_FIRST_RESPONSE;
	struct config *cfg;
	char due[64];
	time_t start;
	int r, level;

	if ((r = ctl_parse(cmd, argc, argv, opts, NULL, 0, 0, NULL)) != 0)
		return r == CTL_HELP ? CTL_EXIT_OK : r;
	if (tier_name == NULL)
		return ctl_usage_error(cmd, "--tier is required");
	if (urgency == NULL)
		return ctl_usage_error(cmd, "--urgency is required");
	if ((urgency[0] != 'P' && urgency[0] != 'p') || urgency[1] < '1' ||
	    urgency[1] > '0' + URGENCY_LEVELS || urgency[2] != '\0')
		return ctl_usage_error(cmd, "--urgency wants P1, P2, P3 or P4, not \"%s\"", urgency);
	level = urgency[1] - '0';
	if (kind_name != NULL && strcmp(kind_name, "resolve") == 0)
		kind = SLA_RESOLUTION;
	else if (kind_name != NULL && strcmp(kind_name, "first") != 0)
		return ctl_usage_error(cmd, "--kind wants first or resolve, not \"%s\"", kind_name);
	/* The config first: a time without an offset is read in Timezone. */
	if ((cfg = ctl_config(ctl)) == NULL)
		return CTL_EXIT_FAIL;
	if (at == NULL)
		start = clock_now();
	else if (clock_parse_iso8601(at, &start) != 0 || start < CTL_TIME_MIN || start > CTL_TIME_MAX)
		return ctl_usage_error(cmd, "--at wants an ISO 8601 time such as "
		    "2026-11-30T09:00:00+02:00 (or @EPOCH) in the years 1900 to 9999, not \"%s\"", at);
	if ((tier = config_tier(cfg, tier_name)) == NULL) {
		struct buf names;

		buf_init(&names, 4096);
		ctl_tier_names(cfg, &names);
		ctl_err("unknown tier \"%s\"; valid tiers: %s", tier_name, buf_str(&names));
		buf_free(&names);
		return CTL_EXIT_FAIL;
	}
	clock_format_iso8601(sla_deadline(cfg, tier->name, level, kind, start), due, sizeof(due));
	printf("%s\n", due);
	return CTL_EXIT_OK;
}


/* ---- case life cycle ---- */

/* Loads the case named by pos (HG-12) inside a transaction.  On failure the
 * transaction is rolled back and the exit status returned. */
static int
ctl_case_begin(struct ctl *ctl, const struct ctl_command *cmd, const char *ref,
    struct store **s, struct case_rec *c)
{
	enum store_rc rc;
	long long id;

	if (ctl_parse_case_ref(ref, &id) != 0)
		return ctl_usage_error(cmd, "\"%s\" is not a case (HG-12 or 12)", ref);
	if (ctl_config(ctl) == NULL || (*s = ctl_store(ctl)) == NULL)
		return CTL_EXIT_FAIL;
	if ((rc = store_begin(*s)) != STORE_OK)
		return ctl_store_failed(ctl, "starting a transaction", rc);
	if ((rc = store_case_get(*s, id, c)) != STORE_OK) {
		store_rollback(*s);
		if (rc == STORE_NOTFOUND) {
			ctl_err("no case HG-%lld", id);
			return CTL_EXIT_FAIL;
		}
		return ctl_store_failed(ctl, "reading the case", rc);
	}
	return CTL_EXIT_OK;
}

static int
ctl_case_commit(struct ctl *ctl, struct store *s, enum store_rc rc, const char *what)
{
	if (rc == STORE_OK && (rc = store_commit(s)) == STORE_OK)
		return CTL_EXIT_OK;
	store_rollback(s);
	return ctl_store_failed(ctl, what, rc);
}

static int
ctl_cmd_case_reply(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv)
{
	const char *by = NULL;
	const struct ctl_opt opts[] = { { "--by", &by, NULL }, { NULL, NULL, NULL } };
	struct case_rec c;
	struct store *s;
	char *pos[1], t[64];
	long long now = clock_now();
	enum store_rc rc;
	int r;

	char by_addr[320];

	if ((r = ctl_parse(cmd, argc, argv, opts, pos, 1, 1, NULL)) != 0)
		return r == CTL_HELP ? CTL_EXIT_OK : r;
	if (by != NULL) {
		snprintf(by_addr, sizeof(by_addr), "%s", by);
		config_normalize_address(by_addr);
		if (strchr(by_addr, '@') == NULL || strpbrk(by_addr, " \t<>\"") != NULL)
			return ctl_usage_error(cmd, "--by wants a mail address, not \"%s\"", by);
		by = by_addr;
	}
	if ((r = ctl_case_begin(ctl, cmd, pos[0], &s, &c)) != CTL_EXIT_OK)
		return r;
	rc = store_case_responded(s, c.id, now);
	if (rc == STORE_OK && by != NULL && c.assignee[0] == '\0')
		rc = store_case_assign(s, c.id, by, now);
	if ((r = ctl_case_commit(ctl, s, rc, "recording the reply")) != CTL_EXIT_OK)
		return r;
	if (c.first_response_at)
		printf("HG-%lld: first response was already recorded at %s\n", c.id,
		    ctl_iso(c.first_response_at, t, sizeof(t)));
	else
		printf("HG-%lld: first response recorded at %s (%s the deadline)\n", c.id,
		    ctl_iso(now, t, sizeof(t)), now <= c.first_due ? "within" : "after");
	return CTL_EXIT_OK;
}

static int
ctl_cmd_case_assign(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv)
{
	struct case_rec c;
	struct store *s;
	char *pos[2];
	int r;

	if ((r = ctl_parse(cmd, argc, argv, NULL, pos, 2, 2, NULL)) != 0)
		return r == CTL_HELP ? CTL_EXIT_OK : r;
	config_normalize_address(pos[1]);
	if (strchr(pos[1], '@') == NULL || strpbrk(pos[1], " \t<>\"") != NULL)
		return ctl_usage_error(cmd, "\"%s\" is not a mail address", pos[1]);
	if ((r = ctl_case_begin(ctl, cmd, pos[0], &s, &c)) != CTL_EXIT_OK)
		return r;
	if ((r = ctl_case_commit(ctl, s, store_case_assign(s, c.id, pos[1], clock_now()),
	    "assigning")) != CTL_EXIT_OK)
		return r;
	printf("HG-%lld: assigned to %s\n", c.id, pos[1]);
	return CTL_EXIT_OK;
}

static int
ctl_cmd_case_wait(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv)
{
	struct case_rec c;
	struct store *s;
	char *pos[1];
	long long now = clock_now();
	enum store_rc rc;
	int r;

	if ((r = ctl_parse(cmd, argc, argv, NULL, pos, 1, 1, NULL)) != 0)
		return r == CTL_HELP ? CTL_EXIT_OK : r;
	if ((r = ctl_case_begin(ctl, cmd, pos[0], &s, &c)) != CTL_EXIT_OK)
		return r;
	if (strcmp(c.status, "open") != 0) {
		store_rollback(s);
		ctl_err("HG-%lld is %s, not open", c.id, c.status);
		return CTL_EXIT_FAIL;
	}
	/* The resolution timers stop with the clock; the client's next mail
	 * (or case reopen) sets them again. */
	rc = store_case_set_status(s, c.id, "waiting", now, now, c.resolve_due, 0, c.paused_total);
	if (rc == STORE_OK)
		rc = store_event_reschedule(s, c.id, "resolve-warning", TIMERS_PAUSED);
	if (rc == STORE_OK)
		rc = store_event_reschedule(s, c.id, "resolve-breach", TIMERS_PAUSED);
	if ((r = ctl_case_commit(ctl, s, rc, "pausing the case")) != CTL_EXIT_OK)
		return r;
	printf("HG-%lld: waiting for the client; the resolution clock is paused\n", c.id);
	return CTL_EXIT_OK;
}

static int
ctl_cmd_case_reopen(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv)
{
	struct intake_input in;
	struct case_rec c;
	struct store *s;
	char *pos[1];
	enum store_rc rc = STORE_OK;
	int r;

	if ((r = ctl_parse(cmd, argc, argv, NULL, pos, 1, 1, NULL)) != 0)
		return r == CTL_HELP ? CTL_EXIT_OK : r;
	if ((r = ctl_case_begin(ctl, cmd, pos[0], &s, &c)) != CTL_EXIT_OK)
		return r;
	if (strcmp(c.status, "open") == 0) {
		store_rollback(s);
		printf("HG-%lld is already open\n", c.id);
		return CTL_EXIT_OK;
	}
	memset(&in, 0, sizeof(in));
	in.cfg = ctl->cfg;
	in.store = s;
	in.received = clock_now();
	if (strcmp(c.status, "waiting") == 0) {
		rc = intake_resume(&in, &c);
	} else {
		/* Timers that resolving cancelled and whose time has not come
		 * run again; those that passed meanwhile stay cancelled. */
		rc = store_case_set_status(s, c.id, "open", in.received, 0, c.resolve_due, 0,
		    c.paused_total);
		if (rc == STORE_OK)
			rc = store_event_rearm(s, c.id, "case resolved", in.received);
	}
	if ((r = ctl_case_commit(ctl, s, rc, "reopening")) != CTL_EXIT_OK)
		return r;
	printf("HG-%lld: open again\n", c.id);
	return CTL_EXIT_OK;
}

static int
ctl_cmd_case_resolve(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv)
{
	const char *cause = NULL, *lesson = NULL;
	int incident = 0, quiet = 0, r;
	const struct ctl_opt opts[] = {
		{ "--cause", &cause, NULL }, { "--lesson", &lesson, NULL },
		{ "--incident", NULL, &incident }, { "--no-message", NULL, &quiet },
		{ NULL, NULL, NULL },
	};
	struct ack_ctx *a = NULL;
	struct case_rec c;
	struct store *s;
	char *pos[1], err[512];
	long long now = clock_now();
	enum store_rc rc;

	if ((r = ctl_parse(cmd, argc, argv, opts, pos, 1, 1, NULL)) != 0)
		return r == CTL_HELP ? CTL_EXIT_OK : r;
	if (cause == NULL || lesson == NULL)
		return ctl_usage_error(cmd, "--cause and --lesson are required: what broke, and "
		    "what we learn from it");
	if (ctl_config(ctl) == NULL)
		return CTL_EXIT_FAIL;
	if (!quiet && (a = ack_ctx_new(ctl->cfg, err, sizeof(err))) == NULL) {
		ctl_err("%s", err);
		return CTL_EXIT_FAIL;
	}
	if ((r = ctl_case_begin(ctl, cmd, pos[0], &s, &c)) != CTL_EXIT_OK) {
		ack_ctx_free(a);
		return r;
	}
	if (strcmp(c.status, "resolved") == 0) {
		store_rollback(s);
		ack_ctx_free(a);
		ctl_err("HG-%lld is already resolved (case reopen first)", c.id);
		return CTL_EXIT_FAIL;
	}
	/* A case resolved while waiting for the client: the wait counts as a
	 * pause, so the resolution is measured against the moved deadline. */
	long long total = c.paused_total, due = c.resolve_due;
	if (c.paused_at) {
		long stood = sla_clock_seconds(ctl->cfg, c.urgency, (time_t)c.paused_at, (time_t)now);
		if (stood > 0) {
			total += stood;
			due = sla_clock_add(ctl->cfg, c.urgency, (time_t)c.resolve_due, stood);
		}
	}
	rc = store_case_set_status(s, c.id, "resolved", now, 0, due, now, total);
	if (rc == STORE_OK && c.paused_at)
		rc = store_pause_add(s, c.id, c.paused_at, now);
	if (rc == STORE_OK)
		rc = store_event_cancel_pending(s, c.id, "case resolved");
	if (rc == STORE_OK)
		rc = store_case_set_resolution(s, c.id, cause, lesson, incident);
	if (rc == STORE_OK && incident)
		rc = store_customer_watch(s, c.client, c.tier,
		    now + ctl->cfg->incident_watch_days * 86400LL, now);
	if (rc == STORE_OK && a != NULL && ack_close_loop(a, s, &c, (time_t)now, err, sizeof(err)) != 0) {
		store_rollback(s);
		ack_ctx_free(a);
		ctl_err("HG-%lld: the message to the client: %s", c.id, err);
		return CTL_EXIT_FAIL;
	}
	ack_ctx_free(a);
	if ((r = ctl_case_commit(ctl, s, rc, "resolving")) != CTL_EXIT_OK)
		return r;
	printf("HG-%lld: resolved%s%s\n", c.id, !quiet ? "; the client is asked to confirm it works" : "",
	    incident ? "; the customer is under incident watch" : "");
	return CTL_EXIT_OK;
}

/* ---- sla ---- */

struct ctl_sla {
	struct ctl	*ctl;
	struct buf	 out;
	int		 json;
	size_t		 count;
	long long	 now;
};

static void
ctl_span(long long secs, char *out, size_t outlen)
{
	long long a = secs < 0 ? -secs : secs;
	const char *sign = secs < 0 ? "-" : "";

	/* Overdue shows as negative time left, with or without colour. */
	if (a >= 86400)
		snprintf(out, outlen, "%s%lldd%02lldh", sign, a / 86400, (a % 86400) / 3600);
	else
		snprintf(out, outlen, "%s%lldh%02lldm", sign, a / 3600, (a % 3600) / 60);
}

static int
ctl_sla_row(const struct case_rec *c, void *arg)
{
	struct ctl_sla *x = arg;
	int first = c->first_response_at == 0;
	long long due = first ? c->first_due : c->resolve_due;
	/* Waiting for the client stops the resolution clock only. */
	int paused = c->paused_at && !first;
	char left[32], t[64];

	x->count++;
	if (x->json) {
		json_object_begin(&x->out);
		json_kv_int(&x->out, "id", c->id);
		json_kv_string(&x->out, "clock", paused ? "paused" : first ? "first" : "resolve");
		ctl_json_time(&x->out, "due", paused ? 0 : due);
		json_kv_int(&x->out, "seconds_left", paused ? 0 : due - x->now);
		json_kv_bool(&x->out, "overdue", !paused && due < x->now);
		json_kv_int(&x->out, "urgency", c->urgency);
		json_kv_string(&x->out, "tier", c->tier);
		json_kv_string(&x->out, "assignee", c->assignee);
		json_kv_string(&x->out, "client", c->client);
		json_kv_string(&x->out, "subject", c->subject);
		json_object_end(&x->out);
		return 0;
	}
	ctl_span(due - x->now, left, sizeof(left));
	printf("HG-%-7lld ", c->id);
	ctl_urgency_cell(x->ctl, c->urgency);
	if (paused)
		printf("%-8s %-10s ", "waiting", "paused");
	else if (due < x->now)
		printf("%-8s %s%-10s%s ", first ? "first" : "resolve", x->ctl->color ? "\033[1;31m" : "",
		    left, x->ctl->color ? "\033[0m" : "");
	else
		printf("%-8s %-10s ", first ? "first" : "resolve", left);
	printf("%-16s ", paused ? "-" : ctl_short_time(due, t, sizeof(t)));
	ctl_cell(c->tier, 10);
	ctl_cell(c->assignee[0] ? c->assignee : "-", 24);
	ctl_put_text(stdout, c->subject, 40, NULL);
	fputc('\n', stdout);
	return 0;
}

static int
ctl_cmd_sla(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv)
{
	int json = 0, r, ret = CTL_EXIT_OK;
	const char *limit_arg = NULL;
	const struct ctl_opt opts[] = {
		{ "--json", NULL, &json }, { "--limit", &limit_arg, NULL }, { NULL, NULL, NULL },
	};
	struct ctl_sla x;
	struct store *s;
	enum store_rc rc;
	long limit = 100;

	if ((r = ctl_parse(cmd, argc, argv, opts, NULL, 0, 0, NULL)) != 0)
		return r == CTL_HELP ? CTL_EXIT_OK : r;
	if (limit_arg != NULL && ctl_parse_limit(cmd, limit_arg, &limit) != 0)
		return CTL_EXIT_USAGE;
	if (ctl_config(ctl) == NULL || (s = ctl_store(ctl)) == NULL)
		return CTL_EXIT_FAIL;
	memset(&x, 0, sizeof(x));
	x.ctl = ctl;
	x.json = json;
	x.now = clock_now();
	buf_init(&x.out, CTL_JSON_MAX * 16);
	if (json)
		json_array_begin(&x.out);
	else
		printf("%-10s %-3s %-8s %-10s %-16s %-10s %-24s %s\n", "CASE", "URG", "CLOCK",
		    "LEFT", "DUE", "TIER", "ASSIGNEE", "SUBJECT");
	if ((rc = store_case_by_due(s, (int)limit, ctl_sla_row, &x)) != STORE_OK) {
		buf_free(&x.out);
		return ctl_store_failed(ctl, "reading open cases", rc);
	}
	if (json) {
		json_array_end(&x.out);
		buf_append_char(&x.out, '\n');
		if (ctl_emit(&x.out) != 0)
			ret = CTL_EXIT_FAIL;
	} else if (x.count == 0) {
		printf("no open cases\n");
	}
	buf_free(&x.out);
	return ret;
}

struct ctl_explain {
	const struct config	*cfg;
	int			 business;
};

static int
ctl_explain_event(const struct event_rec *e, void *arg)
{
	char t[64], f[64];

	(void)arg;
	printf("  %-16s %s  ", e->kind, e->due >= TIMERS_PAUSED ? "(paused)          " :
	    ctl_iso(e->due, t, sizeof(t)));
	if (e->fired > 0)
		printf("fired %s (%s)\n", ctl_iso(e->fired, f, sizeof(f)), e->note);
	else if (e->fired < 0)
		printf("cancelled: %s\n", e->note);
	else
		printf("pending\n");
	return 0;
}

static int
ctl_explain_pause(long long start, long long end, void *arg)
{
	char a[64], b[64];

	(void)arg;
	printf("  paused %s -> %s\n", ctl_iso(start, a, sizeof(a)), ctl_iso(end, b, sizeof(b)));
	return 0;
}

/* Every stretch of the clock that counted between from and to. */
static void
ctl_explain_intervals(const struct config *cfg, int urgency, time_t from, time_t to)
{
	char a[64], b[64];
	int shown = 0;

	if (sla_clock(cfg, urgency) == CONFIG_CLOCK_24X7) {
		printf("  %s -> %s  (around the clock)\n", ctl_iso(from, a, sizeof(a)),
		    ctl_iso(to, b, sizeof(b)));
		return;
	}
	for (time_t t = sla_next_open(cfg, from); t != 0 && t < to && shown < 60; shown++) {
		time_t close = sla_next_close(cfg, t);
		if (close == 0 || close > to)
			close = to;
		printf("  %s -> %s  %ldm\n", ctl_iso(t, a, sizeof(a)), ctl_iso(close, b, sizeof(b)),
		    (long)(close - t) / 60);
		t = sla_next_open(cfg, close);
	}
	if (shown == 60)
		printf("  ... (more intervals)\n");
}

static int
ctl_cmd_sla_explain(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv)
{
	struct case_rec c;
	struct store *s;
	char *pos[1], t[64];
	enum store_rc rc;
	long long id;
	int r;

	if ((r = ctl_parse(cmd, argc, argv, NULL, pos, 1, 1, NULL)) != 0)
		return r == CTL_HELP ? CTL_EXIT_OK : r;
	if (ctl_parse_case_ref(pos[0], &id) != 0)
		return ctl_usage_error(cmd, "\"%s\" is not a case (HG-12 or 12)", pos[0]);
	if (ctl_config(ctl) == NULL || (s = ctl_store(ctl)) == NULL)
		return CTL_EXIT_FAIL;
	if ((rc = store_case_get(s, id, &c)) != STORE_OK) {
		if (rc == STORE_NOTFOUND) {
			ctl_err("no case HG-%lld", id);
			return CTL_EXIT_FAIL;
		}
		return ctl_store_failed(ctl, "reading the case", rc);
	}
	const struct config *cfg = ctl->cfg;
	int business = sla_clock(cfg, c.urgency) == CONFIG_CLOCK_BUSINESS;
	printf("HG-%lld  P%d  tier %s  %s clock (Clock P%d), Timezone %s\n", c.id, c.urgency,
	    c.tier, business ? "business-hours" : "24x7", c.urgency, cfg->timezone);
	printf("Opened:          %s (when the MTA accepted the client's mail)\n",
	    ctl_iso(c.created, t, sizeof(t)));
	printf("First response:  target %lds of clock time, due %s, ",
	    business ? sla_business_target(cfg, c.tier, c.urgency, SLA_FIRST_RESPONSE) :
	    sla_target(cfg, c.tier, c.urgency, SLA_FIRST_RESPONSE), ctl_iso(c.first_due, t, sizeof(t)));
	if (c.first_response_at)
		printf("answered %s\n", ctl_iso(c.first_response_at, t, sizeof(t)));
	else
		printf("not answered yet\n");
	printf("Intervals that counted towards the first response:\n");
	ctl_explain_intervals(cfg, c.urgency, (time_t)c.created, (time_t)c.first_due);
	printf("Resolution:      due %s (%lld s of clock paused while waiting for the client)%s\n",
	    ctl_iso(c.resolve_due, t, sizeof(t)), c.paused_total,
	    c.paused_at ? "; paused now" : "");
	if ((rc = store_pause_list(s, c.id, ctl_explain_pause, NULL)) != STORE_OK)
		return ctl_store_failed(ctl, "reading pauses", rc);
	printf("Timers:\n");
	if ((rc = store_event_list(s, c.id, ctl_explain_event, NULL)) != STORE_OK)
		return ctl_store_failed(ctl, "reading timers", rc);
	return CTL_EXIT_OK;
}


/* ---- report ---- */

struct ctl_report_group {
	char		 tier[32];
	int		 urgency;
	long		 cases;
	long		 first_met, first_missed;	/* decided: answered, or overdue */
	long		 resolve_met, resolve_missed;
	long		*response;		/* seconds to first response, answered cases */
	size_t		 nresponse;
};

struct ctl_report {
	struct ctl_report_group	*g;
	size_t			 n;
	long long		 since, now;
};

static int
ctl_report_row(const struct case_rec *c, void *arg)
{
	struct ctl_report *r = arg;
	struct ctl_report_group *g = NULL;

	if (c->created < r->since)
		return 0;
	for (size_t i = 0; i < r->n; i++)
		if (r->g[i].urgency == c->urgency && strcmp(r->g[i].tier, c->tier) == 0)
			g = &r->g[i];
	if (g == NULL) {
		r->g = xrealloc(r->g, (r->n + 1) * sizeof(*r->g));
		g = &r->g[r->n++];
		memset(g, 0, sizeof(*g));
		snprintf(g->tier, sizeof(g->tier), "%s", c->tier);
		g->urgency = c->urgency;
	}
	g->cases++;
	if (c->first_response_at) {
		if (c->first_response_at <= c->first_due)
			g->first_met++;
		else
			g->first_missed++;
		g->response = xrealloc(g->response, (g->nresponse + 1) * sizeof(long));
		g->response[g->nresponse++] = (long)(c->first_response_at - c->created);
	} else if (c->first_due < r->now) {
		g->first_missed++;
	}
	if (c->resolved_at) {
		if (c->resolved_at <= c->resolve_due)
			g->resolve_met++;
		else
			g->resolve_missed++;
	} else if (c->resolve_due < r->now && !c->paused_at) {
		g->resolve_missed++;
	}
	return 0;
}

static int
ctl_long_cmp(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;

	return (x > y) - (x < y);
}

static int
ctl_group_cmp(const void *a, const void *b)
{
	const struct ctl_report_group *x = a, *y = b;
	int t = strcmp(x->tier, y->tier);

	return t ? t : x->urgency - y->urgency;
}

/* Nearest-rank percentile of sorted v; -1 when empty. */
static long
ctl_percentile(const long *v, size_t n, int pct)
{
	size_t rank;

	if (n == 0)
		return -1;
	rank = (n * (size_t)pct + 99) / 100;
	return v[rank ? rank - 1 : 0];
}

static int
ctl_cmd_report(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv)
{
	const char *since_arg = NULL;
	int json = 0, r, ret = CTL_EXIT_OK;
	const struct ctl_opt opts[] = {
		{ "--since", &since_arg, NULL }, { "--json", NULL, &json }, { NULL, NULL, NULL },
	};
	struct ctl_report rep;
	struct store *s;
	struct buf out;
	enum store_rc rc;
	time_t since = 0;

	if ((r = ctl_parse(cmd, argc, argv, opts, NULL, 0, 0, NULL)) != 0)
		return r == CTL_HELP ? CTL_EXIT_OK : r;
	if (ctl_config(ctl) == NULL)
		return CTL_EXIT_FAIL;
	if (since_arg != NULL && clock_parse_iso8601(since_arg, &since) != 0)
		return ctl_usage_error(cmd, "--since wants a date or time such as 2026-11-01, not \"%s\"",
		    since_arg);
	if ((s = ctl_store(ctl)) == NULL)
		return CTL_EXIT_FAIL;
	memset(&rep, 0, sizeof(rep));
	rep.since = since;
	rep.now = clock_now();
	if ((rc = store_case_list(s, 0, ctl_report_row, &rep)) != STORE_OK) {
		for (size_t i = 0; i < rep.n; i++)
			free(rep.g[i].response);
		free(rep.g);
		return ctl_store_failed(ctl, "reading cases", rc);
	}
	if (rep.n > 1)
		qsort(rep.g, rep.n, sizeof(*rep.g), ctl_group_cmp);
	buf_init(&out, CTL_JSON_MAX);
	if (json)
		json_array_begin(&out);
	else
		printf("%-12s %-3s %7s %9s %9s %9s %11s\n", "TIER", "URG", "CASES", "FIRST-MET",
		    "MEDIAN", "P90", "RESOLVE-MET");
	for (size_t i = 0; i < rep.n; i++) {
		struct ctl_report_group *g = &rep.g[i];
		long fdec = g->first_met + g->first_missed, rdec = g->resolve_met + g->resolve_missed;
		long med, p90;

		if (g->nresponse > 1)
			qsort(g->response, g->nresponse, sizeof(long), ctl_long_cmp);
		med = ctl_percentile(g->response, g->nresponse, 50);
		p90 = ctl_percentile(g->response, g->nresponse, 90);
		if (json) {
			json_object_begin(&out);
			json_kv_string(&out, "tier", g->tier);
			json_kv_int(&out, "urgency", g->urgency);
			json_kv_int(&out, "cases", g->cases);
			json_kv_int(&out, "first_response_met", g->first_met);
			json_kv_int(&out, "first_response_missed", g->first_missed);
			if (fdec) json_kv_int(&out, "first_response_met_pct", g->first_met * 100 / fdec);
			else json_kv_null(&out, "first_response_met_pct");
			if (med >= 0) json_kv_int(&out, "first_response_median_s", med);
			else json_kv_null(&out, "first_response_median_s");
			if (p90 >= 0) json_kv_int(&out, "first_response_p90_s", p90);
			else json_kv_null(&out, "first_response_p90_s");
			if (rdec) json_kv_int(&out, "resolution_met_pct", g->resolve_met * 100 / rdec);
			else json_kv_null(&out, "resolution_met_pct");
			json_object_end(&out);
		} else {
			char fm[16] = "-", rm[16] = "-", m1[32] = "-", m2[32] = "-";

			if (fdec) snprintf(fm, sizeof(fm), "%ld%%", g->first_met * 100 / fdec);
			if (rdec) snprintf(rm, sizeof(rm), "%ld%%", g->resolve_met * 100 / rdec);
			if (med >= 0) ctl_span(med, m1, sizeof(m1));
			if (p90 >= 0) ctl_span(p90, m2, sizeof(m2));
			printf("%-12s P%-2d %7ld %9s %9s %9s %11s\n", g->tier, g->urgency, g->cases, fm,
			    m1, m2, rm);
		}
		free(g->response);
	}
	free(rep.g);
	if (json) {
		json_array_end(&out);
		buf_append_char(&out, '\n');
		if (ctl_emit(&out) != 0)
			ret = CTL_EXIT_FAIL;
	} else if (rep.n == 0) {
		printf("no cases%s\n", since_arg ? " since then" : "");
	}
	buf_free(&out);
	return ret;
}

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
static int
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

/* ---- dispatch ---- */

static const struct ctl_command ctl_commands[] = {
	{ "customer add", ctl_cmd_customer_add,
	    "ADDRESS|@DOMAIN --tier TIER [--incident-watch DAYS]",
	    "add or update a customer (one address, or every address of a domain)" },
	{ "customer import", ctl_cmd_customer_import, "FILE.csv",
	    "add or update customers from CSV lines address,tier[,incident_watch_days]; "
	    "all or nothing" },
	{ "customer list", ctl_cmd_customer_list, "[--json]", "list customers" },
	{ "customer remove", ctl_cmd_customer_remove, "ADDRESS|@DOMAIN", "remove a customer" },
	{ "cases", ctl_cmd_cases, "[--open] [--json]",
	    "list cases, newest first (--open: not resolved)" },
	{ "case show", ctl_cmd_case_show, "HG-N [--json]", "show a case and its messages" },
	{ "outbox", ctl_cmd_outbox, "[--json] [--limit N]",
	    "messages helpgate sends (acknowledgements, notices): pending, sent, failed; newest first" },
	{ "config check", ctl_cmd_config_check, "", "check the configuration file" },
	{ "case reply", ctl_cmd_case_reply, "HG-N [--by ADDRESS]",
	    "record that staff answered the client (stops the first-response clock)" },
	{ "case assign", ctl_cmd_case_assign, "HG-N ADDRESS", "assign the case" },
	{ "case wait", ctl_cmd_case_wait, "HG-N",
	    "waiting for the client: pause the resolution clock until they write" },
	{ "case reopen", ctl_cmd_case_reopen, "HG-N", "open a waiting or resolved case again" },
	{ "case resolve", ctl_cmd_case_resolve,
	    "HG-N --cause TEXT --lesson TEXT [--incident] [--no-message]",
	    "resolve; ask the client to confirm it works; --incident puts the customer "
	    "under incident watch" },
	{ "sla explain", ctl_cmd_sla_explain, "HG-N",
	    "why a deadline is where it is: clock, intervals that counted, pauses, timers" },
	{ "sla due", ctl_cmd_sla_due,
	    "--tier TIER --urgency P1..P4 [--at ISO-8601-TIME] [--kind first|resolve]",
	    "the deadline of an SLA clock started at --at (default now), in Timezone, "
	    "on the urgency's clock (business hours, holidays)" },
	{ "sla", ctl_cmd_sla, "[--json] [--limit N]",
	    "open cases, the nearest deadline first, with time left or overdue" },
	{ "report", ctl_cmd_report, "[--since DATE] [--json]",
	    "per tier and urgency: cases, first response met %, median and p90 time to first "
	    "response, resolution met % (undecided cases are not counted as met or missed)" },
	{ "diagnose", ctl_cmd_diagnose,
	    "--smtp HOST[:PORT] [--security tls|starttls|none] [--user USER --password-file FILE] "
	    "[--from ADDRESS [--rcpt ADDRESS]] [--json]",
	    "probe a client's SMTP settings step by step (connect, TLS, certificate, AUTH, "
	    "MAIL FROM, RCPT TO; never DATA); exit 0 ok, 1 problem found" },
	{ NULL, NULL, NULL, NULL },
};

/* How many words of argv name cmd (0: no match). */
static int
ctl_match(const struct ctl_command *cmd, int argc, char **argv)
{
	const char *name = cmd->name, *sp;
	int words = 0;

	for (;;) {
		size_t len = (sp = strchr(name, ' ')) ? (size_t)(sp - name) : strlen(name);

		if (words >= argc || strlen(argv[words]) != len || strncmp(argv[words], name, len) != 0)
			return 0;
		words++;
		if (sp == NULL)
			return words;
		name = sp + 1;
	}
}

/* Usage for every command (group == NULL) or those starting with group. */
static void
ctl_usage(FILE *fp, const char *group)
{
	size_t glen = group ? strlen(group) : 0;

	fprintf(fp, "usage: helpgatectl [-c FILE] COMMAND [ARGS...]\n\ncommands:\n");
	for (const struct ctl_command *c = ctl_commands; c->name; c++) {
		if (group && (strncmp(c->name, group, glen) != 0 || c->name[glen] != ' '))
			continue;
		fprintf(fp, "  %s%s%s\n      %s\n", c->name, c->usage[0] ? " " : "", c->usage,
		    c->summary);
	}
	if (group == NULL)
		fprintf(fp, "\noptions:\n"
		    "  -c FILE     configuration (default: $HELPGATE_CONF, else %s)\n"
		    "  -h, --help  this help; COMMAND --help for one command\n"
		    "\nexit status: 0 done, 1 failed or not found, 2 usage error\n",
		    CTL_DEFAULT_CONF);
}

/* Is word the first word of a multi-word command ("customer")? */
static int
ctl_is_group(const char *word)
{
	size_t len = strlen(word);

	for (const struct ctl_command *c = ctl_commands; c->name; c++)
		if (strncmp(c->name, word, len) == 0 && c->name[len] == ' ')
			return 1;
	return 0;
}

static int
ctl_dispatch(struct ctl *ctl, int argc, char **argv)
{
	for (const struct ctl_command *c = ctl_commands; c->name; c++) {
		int words = ctl_match(c, argc, argv);

		if (words > 0)
			return c->run(ctl, c, argc - words, argv + words);
	}
	if (ctl_is_group(argv[0])) {
		if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
			ctl_usage(stdout, argv[0]);
			return CTL_EXIT_OK;
		}
		if (argc > 1)
			ctl_err("unknown command \"%s %s\"", argv[0], argv[1]);
		else
			ctl_err("\"%s\" needs a subcommand", argv[0]);
		ctl_usage(stderr, argv[0]);
		return CTL_EXIT_USAGE;
	}
	ctl_err("unknown command \"%s\" (helpgatectl --help lists them)", argv[0]);
	return CTL_EXIT_USAGE;
}

int
main(int argc, char **argv)
{
	struct ctl ctl;
	const char *env;
	int i, ret;

	log_init("helpgatectl", 1, NULL);
	memset(&ctl, 0, sizeof(ctl));
	env = getenv("HELPGATE_CONF");
	ctl.conf_path = env != NULL && env[0] != '\0' ? env : CTL_DEFAULT_CONF;
	ctl.color = isatty(STDOUT_FILENO) && getenv("NO_COLOR") == NULL;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			ctl_usage(stdout, NULL);
			return CTL_EXIT_OK;
		} else if (strcmp(argv[i], "-c") == 0) {
			if (++i == argc) {
				ctl_err("-c needs a FILE");
				return CTL_EXIT_USAGE;
			}
			ctl.conf_path = argv[i];
		} else if (strncmp(argv[i], "-c", 2) == 0) {
			ctl.conf_path = argv[i] + 2;
		} else if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else {
			ctl_err("unknown option \"%s\"", argv[i]);
			ctl_usage(stderr, NULL);
			return CTL_EXIT_USAGE;
		}
	}
	if (i == argc) {
		ctl_usage(stderr, NULL);
		return CTL_EXIT_USAGE;
	}
	ret = ctl_dispatch(&ctl, argc - i, argv + i);
	store_close(ctl.store);
	config_unref(ctl.cfg);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		ctl_err("writing the output: %s", strerror(errno));
		ret = CTL_EXIT_FAIL;
	}
	return ret;
}
