#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <regex.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "clock.h"
#include "log.h"
#include "xalloc.h"

enum config_type {
	CT_STRING, CT_PATH, CT_URL, CT_ADDRESS_LIST, CT_DOMAIN_LIST, CT_BOOL,
	CT_SIZE, CT_DURATION_MS, CT_FACILITY, CT_TIMEZONE, CT_SLA, CT_LOGLEVEL,
	CT_ADDRESS, CT_RATE, CT_REGEX_LIST, CT_DURATION,
};

struct config_row {
	const char	*name;
	enum config_type type;
	size_t		 offset;
	const char	*default_value;	/* NULL: unset */
	long long	 min, max;	/* for sizes and durations */
};

#define OFF(f) offsetof(struct config, f)

/* Every key the programs understand.  Add a row, not a special case. */
static const struct config_row config_rows[] = {
	{ "Socket",		CT_STRING,	 OFF(socket),		  "inet:8891@127.0.0.1", 0, 0 },
	{ "Database",		CT_PATH,	 OFF(database),		  "/var/lib/helpgate/helpgate.db", 0, 0 },
	{ "SupportAddress",	CT_ADDRESS_LIST, OFF(support_addresses),  NULL, 0, 0 },
	{ "StaffDomain",	CT_DOMAIN_LIST,	 OFF(staff_domains),	  NULL, 0, 0 },
	{ "StaffAddress",	CT_ADDRESS_LIST, OFF(staff_addresses),	  NULL, 0, 0 },
	{ "Relay",		CT_URL,		 OFF(relay),		  NULL, 0, 0 },
	{ "RelayCredentials",	CT_PATH,	 OFF(relay_credentials),  NULL, 0, 0 },
	{ "Timezone",		CT_TIMEZONE,	 OFF(timezone),		  "UTC", 0, 0 },
	{ "PidFile",		CT_PATH,	 OFF(pidfile),		  NULL, 0, 0 },
	{ "UserID",		CT_STRING,	 OFF(userid),		  NULL, 0, 0 },
	{ "Syslog",		CT_BOOL,	 OFF(syslog),		  "yes", 0, 0 },
	{ "SyslogFacility",	CT_FACILITY,	 OFF(syslog_facility),	  "mail", 0, 0 },
	{ "LogLevel",		CT_LOGLEVEL,	 OFF(log_debug),	  "info", 0, 0 },
	{ "MaxBodyScan",	CT_SIZE,	 OFF(max_body_scan),	  "256K", 1024, 64LL << 20 },
	{ "KeywordsDir",	CT_PATH,	 OFF(keywords_dir),	  "keywords", 0, 0 },
	{ "TemplatesDir",	CT_PATH,	 OFF(templates_dir),	  "templates", 0, 0 },
	{ "StoreTimeout",	CT_DURATION_MS,	 OFF(store_timeout_ms),	  "1s", 0, 600000 },
	{ "SLA",		CT_SLA,		 0,			  NULL, 0, 0 },
	{ "FromName",		CT_STRING,	 OFF(from_name),	  "Support", 0, 0 },
	{ "EscalationAddress",	CT_ADDRESS,	 OFF(escalation_address), NULL, 0, 0 },
	{ "AckRateLimit",	CT_RATE,	 0,			  "5 20", 0, 0 },
	{ "NoReplyPattern",	CT_REGEX_LIST,	 OFF(no_reply_patterns),  NULL, 0, 0 },
	{ "AckMargin",		CT_DURATION,	 OFF(ack_margin),	  "30m", 0, 7 * 86400 },
	{ "PollInterval",	CT_DURATION_MS,	 OFF(poll_interval_ms),	  "200ms", 10, 60000 },
};

/* Senders that must never get an automatic answer (RFC 3834 section 2),
 * used when the config names no NoReplyPattern of its own. */
static const char *const default_no_reply[] = {
	"^(mailer-daemon|postmaster|abuse|bounces?|no[-_.]?reply|do[-_.]?not[-_.]?reply)([+=._-][^@]*)?@",
	"^(listserv|majordomo|owner-[^@]*|[^@]*-(request|owner|bounces?))@",
};

/* Out-of-the-box first-response / resolution targets, P1..P4. */
static const struct {
	const char *tier;
	const char *targets[URGENCY_LEVELS][2];
} default_sla[] = {
	{ "enterprise",	{ { "30m", "4h" }, { "1h", "1d" }, { "4h", "3d" }, { "1d", "5d" } } },
	{ "premium",	{ { "1h", "8h" }, { "2h", "2d" }, { "8h", "4d" }, { "2d", "10d" } } },
	{ "standard",	{ { "2h", "1d" }, { "4h", "3d" }, { "1d", "5d" }, { "3d", "15d" } } },
	{ "trial",	{ { "30m", "4h" }, { "1h", "1d" }, { "4h", "3d" }, { "1d", "5d" } } },
	{ "unknown",	{ { "2h", "1d" }, { "8h", "3d" }, { "1d", "5d" }, { "3d", "15d" } } },
};

long
config_parse_duration(const char *s)
{
	long total = 0;
	const char *p = s;

	if (*p == '\0')
		return -1;
	while (*p) {
		char *end;
		long v, mult;

		errno = 0;
		if (!isdigit((unsigned char)*p))
			return -1;
		v = strtol(p, &end, 10);
		if (errno || v < 0)
			return -1;
		switch (*end) {
		case 's': mult = 1; end++; break;
		case 'm': mult = 60; end++; break;
		case 'h': mult = 3600; end++; break;
		case 'd': mult = 86400; end++; break;
		case 'w': mult = 7 * 86400; end++; break;
		case '\0': mult = 1; break;
		default: return -1;
		}
		if (v > (LONG_MAX - total) / mult)
			return -1;
		total += v * mult;
		p = end;
	}
	return total;
}

long long
config_parse_size(const char *s)
{
	char *end;
	long long v, mult = 1;

	errno = 0;
	if (!isdigit((unsigned char)*s))
		return -1;
	v = strtoll(s, &end, 10);
	if (errno || v < 0)
		return -1;
	switch (toupper((unsigned char)*end)) {
	case 'K': mult = 1024; end++; break;
	case 'M': mult = 1024 * 1024; end++; break;
	case 'G': mult = 1024LL * 1024 * 1024; end++; break;
	case '\0': break;
	default: return -1;
	}
	if (v > LLONG_MAX / mult)
		return -1;
	v *= mult;
	if (toupper((unsigned char)*end) == 'B')
		end++;
	return *end == '\0' ? v : -1;
}

char *
config_normalize_address(char *addr)
{
	char *start = addr, *end;

	while (isspace((unsigned char)*start) || *start == '<')
		start++;
	end = start + strlen(start);
	while (end > start && (isspace((unsigned char)end[-1]) || end[-1] == '>'))
		end--;
	memmove(addr, start, (size_t)(end - start));
	addr[end - start] = '\0';
	for (char *p = addr; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return addr;
}

static void
strlist_add(struct strlist *l, const char *s)
{
	l->items = xrealloc(l->items, (l->count + 1) * sizeof(*l->items));
	l->items[l->count++] = xstrdup(s);
}

static void
strlist_free(struct strlist *l)
{
	for (size_t i = 0; i < l->count; i++)
		free(l->items[i]);
	free(l->items);
	l->items = NULL;
	l->count = 0;
}

static int
strlist_has(const struct strlist *l, const char *s)
{
	for (size_t i = 0; i < l->count; i++)
		if (strcmp(l->items[i], s) == 0)
			return 1;
	return 0;
}

/* Copies and normalises an address; drops a "+detail" so that
 * support+billing@ reaches the same list entry as support@. */
static void
config_address_key(const char *addr, char *out, size_t outlen, int strip_detail)
{
	char *at, *plus;

	snprintf(out, outlen, "%s", addr);
	config_normalize_address(out);
	if (strip_detail && (at = strchr(out, '@')) != NULL) {
		plus = memchr(out, '+', (size_t)(at - out));
		if (plus != NULL)
			memmove(plus, at, strlen(at) + 1);
	}
}

int
config_is_support_address(const struct config *cfg, const char *addr)
{
	char key[512];

	config_address_key(addr, key, sizeof(key), 0);
	if (strlist_has(&cfg->support_addresses, key))
		return 1;
	config_address_key(addr, key, sizeof(key), 1);
	return strlist_has(&cfg->support_addresses, key);
}

int
config_is_staff(const struct config *cfg, const char *addr)
{
	char key[512];
	const char *at;

	config_address_key(addr, key, sizeof(key), 1);
	if (strlist_has(&cfg->staff_addresses, key))
		return 1;
	if ((at = strrchr(key, '@')) == NULL)
		return 0;
	return strlist_has(&cfg->staff_domains, at + 1);
}

const struct tier_policy *
config_tier(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->tier_count; i++)
		if (strcasecmp(cfg->tiers[i].name, name) == 0)
			return &cfg->tiers[i];
	return NULL;
}

static struct tier_policy *
config_tier_add(struct config *cfg, const char *name)
{
	struct tier_policy *t;

	for (size_t i = 0; i < cfg->tier_count; i++)
		if (strcasecmp(cfg->tiers[i].name, name) == 0)
			return &cfg->tiers[i];
	cfg->tiers = xrealloc(cfg->tiers, (cfg->tier_count + 1) * sizeof(*cfg->tiers));
	t = &cfg->tiers[cfg->tier_count++];
	memset(t, 0, sizeof(*t));
	t->name = xstrdup(name);
	for (char *p = t->name; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	/* A new tier starts from the "standard" targets until told otherwise. */
	for (int u = 0; u < URGENCY_LEVELS; u++) {
		t->sla[u].first = config_parse_duration(default_sla[2].targets[u][0]);
		t->sla[u].resolve = config_parse_duration(default_sla[2].targets[u][1]);
	}
	return t;
}

static int
valid_address(const char *a)
{
	const char *at = strchr(a, '@');

	if (at == NULL || at == a || at[1] == '\0' || strchr(at + 1, '@'))
		return 0;
	for (const char *p = a; *p; p++)
		if (isspace((unsigned char)*p) || (unsigned char)*p < 0x20 || *p == ',')
			return 0;
	return 1;
}

static char *
config_resolve_path(const char *config_path, const char *value)
{
	const char *slash;
	char *out;
	size_t dirlen;

	if (value[0] == '/' || (slash = strrchr(config_path, '/')) == NULL)
		return xstrdup(value);
	dirlen = (size_t)(slash - config_path);
	out = xmalloc(dirlen + 1 + strlen(value) + 1);
	memcpy(out, config_path, dirlen);
	out[dirlen] = '/';
	memcpy(out + dirlen + 1, value, strlen(value) + 1);
	return out;
}

/* Parses "SLA tier Pn first=DUR resolve=DUR" (either part optional). */
static int
config_set_sla(struct config *cfg, char *value, char *err, size_t errlen)
{
	char *save = NULL, *tier, *level, *item;
	struct tier_policy *t;
	int u, seen = 0;

	tier = strtok_r(value, " \t", &save);
	level = strtok_r(NULL, " \t", &save);
	if (tier == NULL || level == NULL) {
		snprintf(err, errlen, "SLA wants: SLA TIER P1..P4 first=DURATION resolve=DURATION");
		return -1;
	}
	if ((level[0] != 'P' && level[0] != 'p') || level[1] < '1' || level[1] > '4' || level[2]) {
		snprintf(err, errlen, "SLA: urgency \"%s\" is not one of P1, P2, P3, P4", level);
		return -1;
	}
	u = level[1] - '1';
	t = config_tier_add(cfg, tier);
	while ((item = strtok_r(NULL, " \t", &save)) != NULL) {
		char *eq = strchr(item, '=');
		long d;

		if (eq == NULL) {
			snprintf(err, errlen, "SLA: \"%s\" is not first=DURATION or resolve=DURATION", item);
			return -1;
		}
		*eq = '\0';
		d = config_parse_duration(eq + 1);
		if (d <= 0) {
			snprintf(err, errlen, "SLA: \"%s\" is not a duration such as 30m, 4h, 2d", eq + 1);
			return -1;
		}
		if (strcasecmp(item, "first") == 0)
			t->sla[u].first = d;
		else if (strcasecmp(item, "resolve") == 0)
			t->sla[u].resolve = d;
		else {
			snprintf(err, errlen, "SLA: unknown target \"%s\" (use first= or resolve=)", item);
			return -1;
		}
		seen++;
	}
	if (!seen) {
		snprintf(err, errlen, "SLA %s %s names no target", tier, level);
		return -1;
	}
	return 0;
}

static int
config_set(struct config *cfg, const struct config_row *row, char *value,
    char *err, size_t errlen)
{
	char **str = (char **)((char *)cfg + row->offset);
	struct strlist *list = (struct strlist *)((char *)cfg + row->offset);
	long long n;
	long d;

	switch (row->type) {
	case CT_STRING:
		free(*str);
		*str = xstrdup(value);
		return 0;
	case CT_PATH:
		free(*str);
		*str = config_resolve_path(cfg->path, value);
		return 0;
	case CT_URL:
		if (strncasecmp(value, "smtp://", 7) != 0 && strncasecmp(value, "smtps://", 8) != 0) {
			snprintf(err, errlen, "%s must be an smtp:// or smtps:// URL", row->name);
			return -1;
		}
		free(*str);
		*str = xstrdup(value);
		return 0;
	case CT_ADDRESS_LIST:
		config_normalize_address(value);
		if (!valid_address(value)) {
			snprintf(err, errlen, "%s: \"%s\" is not a mail address", row->name, value);
			return -1;
		}
		if (!strlist_has(list, value))
			strlist_add(list, value);
		return 0;
	case CT_DOMAIN_LIST:
		config_normalize_address(value);
		if (value[0] == '@')
			memmove(value, value + 1, strlen(value));
		if (value[0] == '\0' || strchr(value, '@') || strpbrk(value, " \t,")) {
			snprintf(err, errlen, "%s: \"%s\" is not a domain", row->name, value);
			return -1;
		}
		if (!strlist_has(list, value))
			strlist_add(list, value);
		return 0;
	case CT_BOOL:
		if (!strcasecmp(value, "yes") || !strcasecmp(value, "true") || !strcmp(value, "1"))
			*(int *)((char *)cfg + row->offset) = 1;
		else if (!strcasecmp(value, "no") || !strcasecmp(value, "false") || !strcmp(value, "0"))
			*(int *)((char *)cfg + row->offset) = 0;
		else {
			snprintf(err, errlen, "%s: \"%s\" is not yes or no", row->name, value);
			return -1;
		}
		return 0;
	case CT_SIZE:
		n = config_parse_size(value);
		if (n < row->min || n > row->max) {
			snprintf(err, errlen, "%s: \"%s\" is not a size from %lld to %lld bytes (e.g. 256K)",
			    row->name, value, row->min, row->max);
			return -1;
		}
		*(size_t *)((char *)cfg + row->offset) = (size_t)n;
		return 0;
	case CT_DURATION_MS:
		if (strlen(value) > 2 && strcmp(value + strlen(value) - 2, "ms") == 0) {
			char *end;
			errno = 0;
			n = strtoll(value, &end, 10);
			if (errno || strcmp(end, "ms") != 0)
				n = -1;
		} else {
			d = config_parse_duration(value);
			n = d < 0 || d > LLONG_MAX / 1000 ? -1 : d * 1000LL;
		}
		if (n < row->min || n > row->max) {
			snprintf(err, errlen, "%s: \"%s\" is not a duration from %lldms to %llds",
			    row->name, value, row->min, row->max / 1000);
			return -1;
		}
		*(long *)((char *)cfg + row->offset) = (long)n;
		return 0;
	case CT_FACILITY:
		if (!log_facility_valid(value)) {
			snprintf(err, errlen, "%s: \"%s\" is not a syslog facility (mail, daemon, local0..7)",
			    row->name, value);
			return -1;
		}
		free(*str);
		*str = xstrdup(value);
		return 0;
	case CT_LOGLEVEL:
		if (strcasecmp(value, "info") == 0)
			cfg->log_debug = 0;
		else if (strcasecmp(value, "debug") == 0)
			cfg->log_debug = 1;
		else {
			snprintf(err, errlen, "LogLevel: \"%s\" is not info or debug", value);
			return -1;
		}
		return 0;
	case CT_TIMEZONE: {
		/* Validated against the system's zoneinfo without touching TZ,
		 * by the same test as clock_set_timezone() (a regular file), so
		 * that a directory such as "Europe" is refused here, with its line. */
		const char *z = value;
		char path[512];
		struct stat st;

		if (strcmp(z, "UTC") != 0) {
			if (z[0] == '/' || strstr(z, "..") != NULL) {
				snprintf(err, errlen, "Timezone: \"%s\" is not an IANA zone name", z);
				return -1;
			}
			snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", z);
			if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
				snprintf(err, errlen, "Timezone: \"%s\" is not an IANA zone name "
				    "known to this system (e.g. Europe/Kyiv)", z);
				return -1;
			}
		}
		free(*str);
		*str = xstrdup(value);
		return 0;
	}
	case CT_SLA:
		return config_set_sla(cfg, value, err, errlen);
	case CT_ADDRESS:
		config_normalize_address(value);
		if (!valid_address(value)) {
			snprintf(err, errlen, "%s: \"%s\" is not a mail address", row->name, value);
			return -1;
		}
		free(*str);
		*str = xstrdup(value);
		return 0;
	case CT_RATE: {
		char *end;
		long hour, day;

		errno = 0;
		hour = strtol(value, &end, 10);
		day = errno == 0 && end != value ? strtol(end, &end, 10) : -1;
		while (*end == ' ' || *end == '\t')
			end++;
		if (errno || hour < 0 || day < 0 || hour > 100000 || day > 100000 || *end) {
			snprintf(err, errlen, "%s wants two counts: PER_HOUR PER_DAY (e.g. 5 20)", row->name);
			return -1;
		}
		cfg->ack_per_hour = (int)hour;
		cfg->ack_per_day = (int)day;
		return 0;
	}
	case CT_REGEX_LIST: {
		regex_t re;
		int rc = regcomp(&re, value, REG_EXTENDED | REG_ICASE | REG_NOSUB);

		if (rc != 0) {
			char why[128];
			regerror(rc, &re, why, sizeof(why));
			snprintf(err, errlen, "%s: \"%s\" is not a regular expression: %s",
			    row->name, value, why);
			return -1;
		}
		regfree(&re);
		strlist_add(list, value);
		return 0;
	}
	case CT_DURATION:
		d = config_parse_duration(value);
		if (d < row->min || d > row->max) {
			snprintf(err, errlen, "%s: \"%s\" is not a duration such as 30m, 4h", row->name, value);
			return -1;
		}
		*(long *)((char *)cfg + row->offset) = d;
		return 0;
	}
	return -1;
}

static void
config_free(struct config *cfg)
{
	for (size_t i = 0; i < sizeof(config_rows) / sizeof(config_rows[0]); i++) {
		const struct config_row *row = &config_rows[i];
		switch (row->type) {
		case CT_STRING: case CT_PATH: case CT_URL: case CT_FACILITY: case CT_TIMEZONE:
		case CT_ADDRESS:
			free(*(char **)((char *)cfg + row->offset));
			break;
		case CT_ADDRESS_LIST: case CT_DOMAIN_LIST: case CT_REGEX_LIST:
			strlist_free((struct strlist *)((char *)cfg + row->offset));
			break;
		default:
			break;
		}
	}
	for (size_t i = 0; i < cfg->tier_count; i++)
		free(cfg->tiers[i].name);
	free(cfg->tiers);
	free(cfg->path);
	free(cfg);
}

struct config *
config_ref(struct config *cfg)
{
	__atomic_add_fetch(&cfg->refcount, 1, __ATOMIC_SEQ_CST);
	return cfg;
}

void
config_unref(struct config *cfg)
{
	if (cfg != NULL && __atomic_sub_fetch(&cfg->refcount, 1, __ATOMIC_SEQ_CST) == 0)
		config_free(cfg);
}

static char *
trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

struct config *
config_load(const char *path, struct buf *errors)
{
	struct config *cfg = xcalloc(1, sizeof(*cfg));
	char err[512], line[4096];
	size_t rows = sizeof(config_rows) / sizeof(config_rows[0]);
	int lineno = 0, bad = 0;
	FILE *fp;

	cfg->path = xstrdup(path);
	cfg->refcount = 1;
	for (size_t i = 0; i < sizeof(default_sla) / sizeof(default_sla[0]); i++) {
		struct tier_policy *t = config_tier_add(cfg, default_sla[i].tier);
		for (int u = 0; u < URGENCY_LEVELS; u++) {
			t->sla[u].first = config_parse_duration(default_sla[i].targets[u][0]);
			t->sla[u].resolve = config_parse_duration(default_sla[i].targets[u][1]);
		}
	}
	for (size_t i = 0; i < rows; i++) {
		char value[256];
		if (config_rows[i].default_value == NULL)
			continue;
		snprintf(value, sizeof(value), "%s", config_rows[i].default_value);
		if (config_set(cfg, &config_rows[i], value, err, sizeof(err)) != 0)
			fatalx("built-in default for %s is invalid: %s", config_rows[i].name, err);
	}

	if ((fp = fopen(path, "r")) == NULL) {
		buf_printf(errors, "%s: cannot open: %s\n", path, strerror(errno));
		config_free(cfg);
		return NULL;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		char *key, *value;
		size_t i;

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(fp)) {
			buf_printf(errors, "%s:%d: line too long\n", path, lineno);
			bad++;
			int c;
			while ((c = fgetc(fp)) != EOF && c != '\n')
				;
			continue;
		}
		key = trim(line);
		if (*key == '\0' || *key == '#')
			continue;
		value = key + strcspn(key, " \t");
		if (*value)
			*value++ = '\0';
		value = trim(value);
		for (i = 0; i < rows; i++)
			if (strcasecmp(key, config_rows[i].name) == 0)
				break;
		if (i == rows) {
			buf_printf(errors, "%s:%d: unknown key \"%s\"\n", path, lineno, key);
			bad++;
			continue;
		}
		if (*value == '\0') {
			buf_printf(errors, "%s:%d: %s needs a value\n", path, lineno, config_rows[i].name);
			bad++;
			continue;
		}
		if (config_set(cfg, &config_rows[i], value, err, sizeof(err)) != 0) {
			buf_printf(errors, "%s:%d: %s\n", path, lineno, err);
			bad++;
		}
	}
	fclose(fp);
	if (cfg->no_reply_patterns.count == 0)
		for (size_t i = 0; i < sizeof(default_no_reply) / sizeof(default_no_reply[0]); i++)
			strlist_add(&cfg->no_reply_patterns, default_no_reply[i]);
	if (!bad && cfg->support_addresses.count == 0) {
		buf_printf(errors, "%s: no SupportAddress: nothing would be processed\n", path);
		bad++;
	}
	if (bad) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}
