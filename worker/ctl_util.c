/*
 * ctl_util - helpgatectl's shared helpers: errors, option parsing, the
 * config and store on first use, times, and terminal-safe text (ctl.h).
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

void
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
struct config *
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

struct store *
ctl_store(struct ctl *ctl)
{
	char err[1024];
	struct config *cfg;

	if (ctl->store != NULL)
		return ctl->store;
	if ((cfg = ctl_config(ctl)) == NULL)
		return NULL;
	store_set_password_file(cfg->database_password_file);
	if (store_open(cfg->database, CTL_STORE_TIMEOUT_MS, &ctl->store, err,
	    sizeof(err)) != STORE_OK) {
		ctl_err("cannot open the case store: %s", err);
		return NULL;
	}
	return ctl->store;
}

/* Reports a failed store call; always returns CTL_EXIT_FAIL. */
int
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

void
ctl_command_usage(FILE *fp, const struct ctl_command *cmd)
{
	fprintf(fp, "usage: helpgatectl [-c FILE] %s%s%s\n       %s\n", cmd->name,
	    cmd->usage[0] ? " " : "", cmd->usage, cmd->summary);
}


int
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
int
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
int
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
int
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
int
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
void
ctl_tier_names(const struct config *cfg, struct buf *out)
{
	for (size_t i = 0; i < cfg->tier_count; i++)
		buf_printf(out, "%s%s", i ? ", " : "", cfg->tiers[i].name);
}

/* The config's tier called name, or NULL after saying which tiers there are. */
const struct tier_policy *
ctl_tier(const struct config *cfg, const char *name)
{
	const struct tier_policy *tier = config_tier(cfg, name);
	struct buf names;

	if (tier != NULL)
		return tier;
	buf_init(&names, 4096);
	ctl_tier_names(cfg, &names);
	ctl_err("unknown tier \"%s\"; valid tiers: %s", name, buf_str(&names));
	buf_free(&names);
	return NULL;
}

/* ---- output helpers ---- */

const char *
ctl_iso(long long t, char *out, size_t outlen)
{
	if (t == 0)
		return "-";
	clock_format_iso8601((time_t)t, out, outlen);
	return out;
}

/* Table form: local date and minute, which is what a person compares. */
const char *
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
void
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
size_t
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

size_t
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
size_t
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
void
ctl_cell(const char *s, size_t width)
{
	size_t shown = ctl_put_text(stdout, s, width, NULL);

	for (; shown < width; shown++)
		fputc(' ', stdout);
	fputs("  ", stdout);
}

void
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
size_t
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
int
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

/* --limit N, 1..1000000; prints the usage error itself. */
int
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
