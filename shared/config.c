#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <regex.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "clock.h"
#include "diag.h"
#include "diag_dns.h"
#include "log.h"
#include "store.h"
#include "xalloc.h"

enum config_type {
	CT_STRING, CT_PATH, CT_URL, CT_ADDRESS_LIST, CT_DOMAIN_LIST, CT_BOOL,
	CT_SIZE, CT_DURATION_MS, CT_FACILITY, CT_TIMEZONE, CT_SLA, CT_LOGLEVEL,
	CT_ADDRESS, CT_RATE, CT_REGEX_LIST, CT_DURATION, CT_BUSINESS_HOURS, CT_HOLIDAY,
	CT_CLOCK, CT_PERCENT, CT_INT, CT_ESCALATE, CT_CIDR_LIST, CT_PORT_LIST,
	CT_RESOLVER, CT_DATABASE,
	CT_MODE, CT_TOKEN_LIST, CT_ACK_POLICY, CT_MAILBOX_LIST, CT_SCHEDULE,
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
	{ "Database",		CT_DATABASE,	 OFF(database),		  "/var/lib/helpgate/helpgate.db", 0, 0 },
	{ "DatabasePasswordFile", CT_PATH,	 OFF(database_password_file), NULL, 0, 0 },
	{ "SupportAddress",	CT_ADDRESS_LIST, OFF(support_addresses),  NULL, 0, 0 },
	{ "StaffDomain",	CT_DOMAIN_LIST,	 OFF(staff_domains),	  NULL, 0, 0 },
	{ "StaffAddress",	CT_ADDRESS_LIST, OFF(staff_addresses),	  NULL, 0, 0 },
	/* Who is staff is decided by what the MTA authenticated, never by a
	 * From or an envelope sender: SASL logins ({auth_authen}) matching a
	 * StaffLogin glob or being a staff address, or a client address
	 * ({client_addr}) inside a StaffNetwork. */
	{ "StaffLogin",		CT_TOKEN_LIST,	 OFF(staff_logins),	  NULL, 0, 0 },
	{ "StaffNetwork",	CT_CIDR_LIST,	 OFF(staff_networks),	  NULL, 0, 0 },
	/* Whose Authentication-Results count, and what makes a From worth an
	 * automatic answer (authres.h). */
	{ "TrustedAuthservID",	CT_TOKEN_LIST,	 OFF(trusted_authserv_ids), NULL, 0, 0 },
	{ "AckPolicy",		CT_ACK_POLICY,	 0,			  "aligned", 0, 0 },
	/* Caps no sender can pass by varying its address. */
	{ "AckPerHour",		CT_INT,		 OFF(ack_global_per_hour), "1000", 0, 10000000 },
	{ "P1NoticePerDomainPerHour", CT_INT,	 OFF(p1_notice_per_domain), "3", 0, 10000 },
	{ "P1NoticePerHour",	CT_INT,		 OFF(p1_notice_per_hour),  "20", 0, 100000 },
	{ "Relay",		CT_URL,		 OFF(relay),		  NULL, 0, 0 },
	{ "RelayCredentials",	CT_PATH,	 OFF(relay_credentials),  NULL, 0, 0 },
	{ "Timezone",		CT_TIMEZONE,	 OFF(timezone),		  "UTC", 0, 0 },
	{ "PidFile",		CT_PATH,	 OFF(pidfile),		  NULL, 0, 0 },
	{ "UserID",		CT_STRING,	 OFF(userid),		  NULL, 0, 0 },
	{ "Syslog",		CT_BOOL,	 OFF(syslog),		  "yes", 0, 0 },
	{ "SyslogFacility",	CT_FACILITY,	 OFF(syslog_facility),	  "mail", 0, 0 },
	/* The same for both daemons; wins over SyslogFacility (default: it). */
	{ "LogFacility",	CT_FACILITY,	 OFF(log_facility),	  NULL, 0, 0 },
	{ "LogLevel",		CT_LOGLEVEL,	 OFF(log_debug),	  "info", 0, 0 },
	{ "MaxBodyScan",	CT_SIZE,	 OFF(max_body_scan),	  "256K", 1024, 64LL << 20 },
	{ "KeywordsDir",	CT_PATH,	 OFF(keywords_dir),	  "keywords", 0, 0 },
	{ "TemplatesDir",	CT_PATH,	 OFF(templates_dir),	  "templates", 0, 0 },
	{ "StoreTimeout",	CT_DURATION_MS,	 OFF(store_timeout_ms),	  "1s", 0, 600000 },
	/* Support mail the store could not take waits here for the worker
	 * (default: "spool" beside the Database). */
	{ "SpoolDirectory",	CT_PATH,	 OFF(spool_directory),	  NULL, 0, 0 },
	/* A unix milter socket gets exactly this mode (and group). */
	/* The key of X-Helpgate-Seal, the proof that a message with
	 * X-Helpgate-* headers is helpgate's own (default: "seal.key" beside
	 * the Database; made by the first daemon that needs it). */
	{ "SealKeyFile",	CT_PATH,	 OFF(seal_key_file),	  NULL, 0, 0 },
	{ "SocketMode",		CT_MODE,	 OFF(socket_mode),	  "0660", 0, 0777 },
	{ "SocketGroup",	CT_STRING,	 OFF(socket_group),	  NULL, 0, 0 },
	{ "SLA",		CT_SLA,		 0,			  NULL, 0, 0 },
	{ "FromName",		CT_STRING,	 OFF(from_name),	  "Support", 0, 0 },
	{ "EscalationAddress",	CT_ADDRESS,	 OFF(escalation_address), NULL, 0, 0 },
	{ "AckRateLimit",	CT_RATE,	 0,			  "5 20", 0, 0 },
	{ "NoReplyPattern",	CT_REGEX_LIST,	 OFF(no_reply_patterns),  NULL, 0, 0 },
	{ "AckMargin",		CT_DURATION,	 OFF(ack_margin),	  "30m", 0, 7 * 86400 },
	{ "PollInterval",	CT_DURATION_MS,	 OFF(poll_interval_ms),	  "200ms", 10, 60000 },
	/* The default week is applied like a first line; each BusinessHours
	 * line then replaces the hours of the days it names. */
	{ "BusinessHours",	CT_BUSINESS_HOURS, 0,			  "mon-fri 09:00-18:00", 0, 0 },
	{ "Holiday",		CT_HOLIDAY,	 0,			  NULL, 0, 0 },
	{ "Clock",		CT_CLOCK,	 0,			  NULL, 0, 0 },
	{ "EndOfDayWindow",	CT_DURATION,	 OFF(end_of_day_window),  "60m", 0, 86400 },
	{ "WarnAt",		CT_PERCENT,	 OFF(warn_at_pct),	  "75%", 1, 99 },
	{ "NoticeAddress",	CT_ADDRESS,	 OFF(notice_address),	  NULL, 0, 0 },
	{ "OnCallAddress",	CT_ADDRESS,	 OFF(on_call_address),	  NULL, 0, 0 },
	{ "IncidentWatchDays",	CT_INT,		 OFF(incident_watch_days), "21", 1, 3650 },
	{ "Escalate",		CT_ESCALATE,	 0,			  NULL, 0, 0 },
	/* The diagnosis of a client's mail settings (diag.h). */
	{ "DiagnoseTimeout",	CT_DURATION_MS,	 OFF(diagnose_timeout_ms), "20s", 1000, 120000 },
	{ "DiagnoseCAFile",	CT_PATH,	 OFF(diagnose_ca_file),	  NULL, 0, 0 },
	{ "ProbeAllow",		CT_CIDR_LIST,	 OFF(probe_allow),	  NULL, 0, 0 },
	/* One line is the whole list: a DiagnosePorts line replaces the default
	 * (and any earlier line). */
	{ "DiagnosePorts",	CT_PORT_LIST,	 0,			  "587/starttls 465/tls 25/starttls 2525/starttls", 0, 0 },
	/* ADDRESS[:PORT] of the one DNS server the diagnosis asks (tests run
	 * their own); unset: the system's resolv.conf, still bounded. */
	{ "DiagnoseResolver",	CT_RESOLVER,	 OFF(diagnose_resolver),  NULL, 0, 0 },
	/* The worker's automatic diagnosis of new outgoing-mail cases. */
	{ "DiagnoseConcurrency", CT_INT,	 OFF(diagnose_concurrency), "4", 1, 64 },
	/* Per sender domain (a sender varies its address, +detail included, at
	 * will, not its domain), and all senders together: a message can
	 * make helpgate probe, so no sender may make it probe without end. */
	{ "DiagnosePerCustomerPerHour", CT_INT,	 OFF(diagnose_per_hour),  "6", 0, 10000 },
	{ "DiagnosePerHour",	CT_INT,		 OFF(diagnose_global_per_hour), "60", 0, 100000 },
	{ "DiagnoseTellClient",	CT_BOOL,	 OFF(diagnose_tell_client), "yes", 0, 0 },
	/* The support mailbox the worker reconciles (repeatable, accumulates):
	 * mail the milter never saw (stopped, crashed, too slow while the MTA
	 * accepts anyway) is found there and gets its case all the same.
	 * "maildir:PATH", "imaps://USER@HOST[:PORT]/FOLDER" or "imap://..."
	 * (STARTTLS required), read-only. */
	{ "Mailbox",		CT_MAILBOX_LIST, OFF(mailboxes),	  NULL, 0, 0 },
	{ "MailboxPoll",	CT_DURATION,	 OFF(mailbox_poll),	  "60s", 1, 86400 },
	/* Older mail in the mailbox is history, left alone (a mailbox newly
	 * given to the worker may hold years of it). */
	{ "MailboxMaxAge",	CT_DURATION,	 OFF(mailbox_max_age),	  "2d", 60, 365 * 86400 },
	/* The IMAP password (first line; mode 0600 or the worker refuses it)
	 * and a PEM CA file added to the system's for the server's certificate. */
	{ "MailboxPasswordFile", CT_PATH,	 OFF(mailbox_password_file), NULL, 0, 0 },
	{ "MailboxCAFile",	CT_PATH,	 OFF(mailbox_ca_file),	  NULL, 0, 0 },
	/* IMAP keywords on each message with a case (HG-12, P1, its category):
	 * the folder is then SELECTed, not EXAMINEd. */
	{ "MailboxFlags",	CT_BOOL,	 OFF(mailbox_flags),	  "no", 0, 0 },
	/* Letters to staff on a calendar (repeatable): the open queue on
	 * business days, and the week's report. */
	{ "Digest",		CT_SCHEDULE,	 0,			  NULL, 0, 0 },
	{ "Report",		CT_SCHEDULE,	 1,			  NULL, 0, 0 },
	{ "DigestEmpty",	CT_BOOL,	 OFF(digest_empty),	  "no", 0, 0 },
};

/* Which clock each urgency's SLA runs on unless a Clock line says otherwise:
 * a critical case is answered at night, the rest in business hours. */
static const enum config_clock default_clock[URGENCY_LEVELS] = {
	CONFIG_CLOCK_24X7, CONFIG_CLOCK_BUSINESS, CONFIG_CLOCK_BUSINESS, CONFIG_CLOCK_BUSINESS,
};

#define CONFIG_HOLIDAYS_MAX	100000	/* a Holiday file longer than this is a mistake */

static const char *const config_day_names[7][2] = {
	{ "sun", "sunday" }, { "mon", "monday" }, { "tue", "tuesday" }, { "wed", "wednesday" },
	{ "thu", "thursday" }, { "fri", "friday" }, { "sat", "saturday" },
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
	struct config_span span;

	return config_parse_span(s, &span);
}

long
config_parse_span(const char *s, struct config_span *span)
{
	struct config_span parts = { 0, 0, 0 };
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
		/* Each part is at most total, so none of these overflows. */
		if (mult == 7 * 86400)
			parts.weeks += v;
		else if (mult == 86400)
			parts.days += v;
		else
			parts.seconds += v * mult;
		p = end;
	}
	*span = parts;
	return total;
}

/* Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
 * days_from_civil), so that holidays need no time zone. */
static long
config_days_from_civil(long y, long m, long d)
{
	long era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

long
config_parse_date(const char *s)
{
	static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	long y, m, d;

	for (int i = 0; i < 10; i++)
		if (i == 4 || i == 7 ? s[i] != '-' : !isdigit((unsigned char)s[i]))
			return -1;
	if (s[10] != '\0')
		return -1;
	y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
	m = (s[5] - '0') * 10 + (s[6] - '0');
	d = (s[8] - '0') * 10 + (s[9] - '0');
	if (y < 1900 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
		return -1;
	if (m == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		return -1;
	return config_days_from_civil(y, m, d);
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

int
config_is_staff_login(const struct config *cfg, const char *login)
{
	char key[512];

	if (login == NULL || *login == '\0')
		return 0;
	snprintf(key, sizeof(key), "%s", login);
	for (char *p = key; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	for (size_t i = 0; i < cfg->staff_logins.count; i++)
		if (fnmatch(cfg->staff_logins.items[i], key, 0) == 0)
			return 1;
	/* a login that is itself a staff address owns that address */
	return strchr(key, '@') != NULL && config_is_staff(cfg, key);
}

int
config_is_staff_network(const struct config *cfg, const char *client_addr)
{
	char addr[128];
	size_t n;

	if (client_addr == NULL || *client_addr == '\0')
		return 0;
	/* Sendmail and Postfix may write an IPv6 client as "IPv6:..." or in brackets */
	if (strncasecmp(client_addr, "IPv6:", 5) == 0)
		client_addr += 5;
	snprintf(addr, sizeof(addr), "%s", client_addr[0] == '[' ? client_addr + 1 : client_addr);
	if ((n = strlen(addr)) > 0 && addr[n - 1] == ']')
		addr[n - 1] = '\0';
	for (size_t i = 0; i < cfg->staff_networks.count; i++)
		if (diag_cidr_match(cfg->staff_networks.items[i], addr) == 1)
			return 1;
	return 0;
}

/* NAME in the Database's directory: the daemons' state lives together.
 * With PostgreSQL the host's own state (the spool, the seal key) lives in
 * /var/lib/helpgate. */
static char *
config_beside_database(const struct config *cfg, const char *name)
{
	const char *db = store_target_is_pg(cfg->database) ? "/var/lib/helpgate/x" : cfg->database;
	const char *slash = strrchr(db, '/');
	size_t dirlen = slash == NULL ? 0 : (size_t)(slash - db) + 1;
	size_t len = dirlen + strlen(name) + 1;
	char *path = xmalloc(len);

	snprintf(path, len, "%.*s%s", (int)dirlen, db, name);
	return path;
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
		t->sla[u].first = config_parse_span(default_sla[2].targets[u][0], &t->sla[u].first_span);
		t->sla[u].resolve = config_parse_span(default_sla[2].targets[u][1],
		    &t->sla[u].resolve_span);
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
		struct config_span span;
		long d;

		if (eq == NULL) {
			snprintf(err, errlen, "SLA: \"%s\" is not first=DURATION or resolve=DURATION", item);
			return -1;
		}
		*eq = '\0';
		d = config_parse_span(eq + 1, &span);
		if (d <= 0) {
			snprintf(err, errlen, "SLA: \"%s\" is not a duration such as 30m, 4h, 2d", eq + 1);
			return -1;
		}
		if (strcasecmp(item, "first") == 0) {
			t->sla[u].first = d;
			t->sla[u].first_span = span;
		} else if (strcasecmp(item, "resolve") == 0) {
			t->sla[u].resolve = d;
			t->sla[u].resolve_span = span;
		} else {
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

/* "mon" or "monday" (any case), len bytes of s -> 0 (Sunday) .. 6; -1 otherwise. */
static int
config_day(const char *s, size_t len)
{
	for (int i = 0; i < 7; i++)
		for (int j = 0; j < 2; j++)
			if (strlen(config_day_names[i][j]) == len &&
			    strncasecmp(s, config_day_names[i][j], len) == 0)
				return i;
	return -1;
}

/* "09:00" or "9:00" (len bytes) -> seconds after midnight, 00:00..24:00; -1 otherwise. */
static long
config_hhmm(const char *s, size_t len)
{
	long h, m;

	if (len == 4 && isdigit((unsigned char)s[0]) && s[1] == ':')
		h = s[0] - '0';
	else if (len == 5 && isdigit((unsigned char)s[0]) && isdigit((unsigned char)s[1]) && s[2] == ':')
		h = (s[0] - '0') * 10 + (s[1] - '0');
	else
		return -1;
	s += len - 2;
	if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]))
		return -1;
	m = (s[0] - '0') * 10 + (s[1] - '0');
	if (m > 59 || h > 24 || (h == 24 && m != 0))
		return -1;
	return h * 3600 + m * 60;
}

/* "mon-fri", "sat", "mon,wed,fri", "mon-wed,sat" -> days[0..6] set.  A range
 * may wrap around the week ("fri-mon").  Returns 0 or -1. */
static int
config_day_spec(const char *spec, int days[7])
{
	const char *p = spec;

	memset(days, 0, 7 * sizeof(days[0]));
	for (;;) {
		size_t len = strcspn(p, ",");
		const char *dash = memchr(p, '-', len);
		int a, b;

		if (dash != NULL) {
			a = config_day(p, (size_t)(dash - p));
			b = config_day(dash + 1, len - (size_t)(dash - p) - 1);
		} else {
			a = b = config_day(p, len);
		}
		if (a < 0 || b < 0)
			return -1;
		for (int d = a;; d = (d + 1) % 7) {
			days[d] = 1;
			if (d == b)
				break;
		}
		if (p[len] == '\0')
			return 0;
		p += len + 1;
	}
}

/* Parses "BusinessHours DAYS RANGE... | closed": the named days get exactly
 * these ranges (nothing changes on an error). */
static int
config_set_business_hours(struct config *cfg, char *value, char *err, size_t errlen)
{
	char *save = NULL, *spec, *tok;
	struct business_day day;
	int days[7], closed = 0;

	memset(&day, 0, sizeof(day));
	spec = strtok_r(value, " \t", &save);
	if (spec == NULL || config_day_spec(spec, days) != 0) {
		snprintf(err, errlen, "BusinessHours: \"%s\" is not a day (mon..sun), a range (mon-fri) "
		    "or a list (mon,wed,fri)", spec ? spec : "");
		return -1;
	}
	while ((tok = strtok_r(NULL, " \t", &save)) != NULL) {
		const char *dash = strchr(tok, '-');
		long open, close;

		if (strcasecmp(tok, "closed") == 0) {
			closed = 1;
			continue;
		}
		open = dash ? config_hhmm(tok, (size_t)(dash - tok)) : -1;
		close = dash ? config_hhmm(dash + 1, strlen(dash + 1)) : -1;
		if (open < 0 || close < 0 || open == 86400) {
			snprintf(err, errlen, "BusinessHours: \"%s\" is not a range of times HH:MM-HH:MM "
			    "(00:00 to 24:00)", tok);
			return -1;
		}
		if (close <= open) {
			snprintf(err, errlen, "BusinessHours: \"%s\" does not end after it starts "
			    "(a range cannot cross midnight: end it at 24:00, go on at 00:00 the next day)",
			    tok);
			return -1;
		}
		if (day.count > 0 && open < day.range[day.count - 1].open) {
			snprintf(err, errlen, "BusinessHours: \"%s\" comes after a later range "
			    "(give the ranges of a day in increasing order)", tok);
			return -1;
		}
		if (day.count > 0 && open < day.range[day.count - 1].close) {
			snprintf(err, errlen, "BusinessHours: \"%s\" overlaps the range before it", tok);
			return -1;
		}
		if (day.count == BUSINESS_RANGES_MAX) {
			snprintf(err, errlen, "BusinessHours: more than %d ranges in one day",
			    BUSINESS_RANGES_MAX);
			return -1;
		}
		day.range[day.count].open = open;
		day.range[day.count].close = close;
		day.count++;
	}
	if (closed && day.count > 0) {
		snprintf(err, errlen, "BusinessHours: a day is either closed or has ranges, not both");
		return -1;
	}
	if (!closed && day.count == 0) {
		snprintf(err, errlen, "BusinessHours %s names no hours (e.g. 09:00-18:00, or closed)", spec);
		return -1;
	}
	for (int d = 0; d < 7; d++)
		if (days[d])
			cfg->business_week[d] = day;
	return 0;
}

static int
config_holiday_add(struct config *cfg, long day, char *err, size_t errlen)
{
	size_t n = cfg->holiday_count;

	if (n >= CONFIG_HOLIDAYS_MAX) {
		snprintf(err, errlen, "Holiday: more than %d holidays", CONFIG_HOLIDAYS_MAX);
		return -1;
	}
	/* Capacity doubles from 16: grow when n is 0, 16, 32, 64, ... */
	if (n == 0 || (n >= 16 && (n & (n - 1)) == 0))
		cfg->holidays = xrealloc(cfg->holidays, (n ? n * 2 : 16) * sizeof(*cfg->holidays));
	cfg->holidays[cfg->holiday_count++] = day;
	return 0;
}

/* Parses "Holiday YYYY-MM-DD" or "Holiday FILE" (one date a line, '#'
 * comments, blank lines; relative to the config's directory).  A value of
 * only digits and dashes is a date, anything else a file. */
static int
config_set_holiday(struct config *cfg, char *value, char *err, size_t errlen)
{
	char line[256], *path;
	int lineno = 0, rc = 0;
	long day;
	FILE *fp;

	if (value[strspn(value, "0123456789-")] == '\0') {
		if ((day = config_parse_date(value)) < 0) {
			snprintf(err, errlen, "Holiday: \"%s\" is not a date YYYY-MM-DD", value);
			return -1;
		}
		return config_holiday_add(cfg, day, err, errlen);
	}
	path = config_resolve_path(cfg->path, value);
	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "Holiday: cannot open %s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	while (rc == 0 && fgets(line, sizeof(line), fp) != NULL) {
		char *s, *end;

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(fp)) {
			snprintf(err, errlen, "Holiday: %s:%d: line too long", path, lineno);
			rc = -1;
			break;
		}
		line[strcspn(line, "#")] = '\0';
		for (s = line; isspace((unsigned char)*s); s++)
			;
		for (end = s + strlen(s); end > s && isspace((unsigned char)end[-1]); end--)
			;
		*end = '\0';
		if (*s == '\0')
			continue;
		if ((day = config_parse_date(s)) < 0) {
			snprintf(err, errlen, "Holiday: %s:%d: \"%s\" is not a date YYYY-MM-DD",
			    path, lineno, s);
			rc = -1;
		} else {
			rc = config_holiday_add(cfg, day, err, errlen);
		}
	}
	if (rc == 0 && ferror(fp)) {
		snprintf(err, errlen, "Holiday: reading %s: %s", path, strerror(errno));
		rc = -1;
	}
	fclose(fp);
	free(path);
	return rc;
}

/* Parses "Clock Pn 24x7|business". */
static int
config_set_clock(struct config *cfg, char *value, char *err, size_t errlen)
{
	char *save = NULL, *level, *mode;

	level = strtok_r(value, " \t", &save);
	mode = strtok_r(NULL, " \t", &save);
	if (level == NULL || mode == NULL || strtok_r(NULL, " \t", &save) != NULL) {
		snprintf(err, errlen, "Clock wants: Clock P1..P4 24x7|business");
		return -1;
	}
	if ((level[0] != 'P' && level[0] != 'p') || level[1] < '1' || level[1] > '4' || level[2]) {
		snprintf(err, errlen, "Clock: urgency \"%s\" is not one of P1, P2, P3, P4", level);
		return -1;
	}
	if (strcasecmp(mode, "24x7") == 0)
		cfg->clock[level[1] - '1'] = CONFIG_CLOCK_24X7;
	else if (strcasecmp(mode, "business") == 0)
		cfg->clock[level[1] - '1'] = CONFIG_CLOCK_BUSINESS;
	else {
		snprintf(err, errlen, "Clock: \"%s\" is not 24x7 or business", mode);
		return -1;
	}
	return 0;
}

static int
config_cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;

	return (x > y) - (x < y);
}

/* After the last line: holidays sorted and unique, the lengths of a
 * business day and week.  Returns 0, or -1 with err set. */
static int
config_finish_calendar(struct config *cfg, char *err, size_t errlen)
{
	size_t n = 0;

	if (cfg->holiday_count > 0) {
		qsort(cfg->holidays, cfg->holiday_count, sizeof(*cfg->holidays), config_cmp_long);
		for (size_t i = 0; i < cfg->holiday_count; i++)
			if (n == 0 || cfg->holidays[n - 1] != cfg->holidays[i])
				cfg->holidays[n++] = cfg->holidays[i];
		cfg->holiday_count = n;
	}
	cfg->business_day_len = cfg->business_week_len = 0;
	for (int d = 0; d < 7; d++) {
		const struct business_day *bd = &cfg->business_week[d];
		long len = 0;

		for (int i = 0; i < bd->count; i++)
			len += bd->range[i].close - bd->range[i].open;
		if (len > cfg->business_day_len)
			cfg->business_day_len = len;
		cfg->business_week_len += len;
	}
	if (cfg->business_week_len == 0) {
		snprintf(err, errlen, "BusinessHours leave no business time in the week");
		return -1;
	}
	return 0;
}

/* "Escalate N after=breach[+DUR]|warning[+DUR] to=ADDRESS" */
static int
config_set_escalate(struct config *cfg, char *value, char *err, size_t errlen)
{
	char *save = NULL, *tok, *end;
	struct escalation e;
	long level;

	memset(&e, 0, sizeof(e));
	tok = strtok_r(value, " \t", &save);
	errno = 0;
	level = tok ? strtol(tok, &end, 10) : 0;
	if (tok == NULL || errno || *end || level < 1 || level > 9) {
		snprintf(err, errlen, "Escalate wants: Escalate LEVEL(1-9) after=breach[+DURATION] to=ADDRESS");
		return -1;
	}
	e.level = (int)level;
	e.offset = -1;
	while ((tok = strtok_r(NULL, " \t", &save)) != NULL) {
		if (strncasecmp(tok, "after=", 6) == 0) {
			char *point = tok + 6, *plus = strchr(point, '+');
			if (plus)
				*plus++ = '\0';
			if (strcasecmp(point, "breach") == 0)
				e.after_warning = 0;
			else if (strcasecmp(point, "warning") == 0)
				e.after_warning = 1;
			else {
				snprintf(err, errlen, "Escalate: after=%s is not breach or warning "
				    "(optionally +DURATION)", point);
				return -1;
			}
			memset(&e.offset_span, 0, sizeof(e.offset_span));
			e.offset = plus ? config_parse_span(plus, &e.offset_span) : 0;
			if (e.offset < 0) {
				snprintf(err, errlen, "Escalate: \"%s\" is not a duration such as 2h", plus);
				return -1;
			}
		} else if (strncasecmp(tok, "to=", 3) == 0) {
			config_normalize_address(tok + 3);
			if (!valid_address(tok + 3)) {
				snprintf(err, errlen, "Escalate: to=%s is not a mail address", tok + 3);
				return -1;
			}
			free(e.to);
			e.to = xstrdup(tok + 3);
		} else {
			snprintf(err, errlen, "Escalate: unknown \"%s\" (after=..., to=...)", tok);
			free(e.to);
			return -1;
		}
	}
	if (e.offset < 0 || e.to == NULL) {
		snprintf(err, errlen, "Escalate %d needs after= and to=", e.level);
		free(e.to);
		return -1;
	}
	for (size_t i = 0; i < cfg->escalation_count; i++) {
		if (cfg->escalations[i].level == e.level) {
			free(cfg->escalations[i].to);
			cfg->escalations[i] = e;
			return 0;
		}
	}
	cfg->escalations = xrealloc(cfg->escalations, (cfg->escalation_count + 1) * sizeof(e));
	cfg->escalations[cfg->escalation_count++] = e;
	return 0;
}

/* "HH:MM" -> minutes after midnight, or -1. */
static int
config_clock_minute(const char *s)
{
	int h, m;
	char tail;

	if (sscanf(s, "%2d:%2d%c", &h, &m, &tail) != 2 || h < 0 || h > 23 || m < 0 || m > 59 ||
	    strlen(s) != 5)
		return -1;
	return h * 60 + m;
}

/* "Digest ADDR at=HH:MM[,HH:MM...]" or "Report ADDR at=DAY HH:MM". */
static int
config_set_schedule(struct config *cfg, int report, char *value, char *err, size_t errlen)
{
	static const char *const days[] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat" };
	const char *name = report ? "Report" : "Digest";
	char *save = NULL, *tok, *at = NULL, *when = NULL;
	struct schedule sc;

	memset(&sc, 0, sizeof(sc));
	sc.report = report;
	sc.wday = -1;
	if ((tok = strtok_r(value, " \t", &save)) == NULL) {
		snprintf(err, errlen, "%s wants: %s ADDRESS at=%s", name, name,
		    report ? "DAY HH:MM (at=mon 08:00)" : "HH:MM[,HH:MM...] (at=09:00,17:30)");
		return -1;
	}
	config_normalize_address(tok);
	if (!valid_address(tok)) {
		snprintf(err, errlen, "%s: \"%s\" is not a mail address", name, tok);
		return -1;
	}
	sc.to = tok;
	while ((tok = strtok_r(NULL, " \t", &save)) != NULL) {
		if (strncasecmp(tok, "at=", 3) == 0 && at == NULL)
			at = tok + 3;
		else if (report && at != NULL && when == NULL)
			when = tok;
		else {
			snprintf(err, errlen, "%s: unexpected \"%s\"", name, tok);
			return -1;
		}
	}
	if (at == NULL) {
		snprintf(err, errlen, "%s %s needs at=", name, sc.to);
		return -1;
	}
	if (report) {
		for (int d = 0; d < 7; d++)
			if (strncasecmp(at, days[d], 3) == 0 && at[3] == '\0')
				sc.wday = d;
		if (sc.wday < 0 || when == NULL || (sc.minute[0] = config_clock_minute(when)) < 0) {
			snprintf(err, errlen, "Report: at= wants a day and a time, such as at=mon 08:00");
			return -1;
		}
		sc.n = 1;
	} else {
		char *save2 = NULL;

		for (tok = strtok_r(at, ",", &save2); tok; tok = strtok_r(NULL, ",", &save2)) {
			int m = config_clock_minute(tok);

			if (m < 0 || sc.n == SCHEDULE_TIMES_MAX || (sc.n && m <= sc.minute[sc.n - 1])) {
				snprintf(err, errlen, "Digest: at= wants up to %d increasing times HH:MM "
				    "(at=09:00,17:30), not \"%s\"", SCHEDULE_TIMES_MAX, tok);
				return -1;
			}
			sc.minute[sc.n++] = m;
		}
		if (sc.n == 0) {
			snprintf(err, errlen, "Digest: at= wants times, such as at=09:00,17:30");
			return -1;
		}
	}
	sc.to = xstrdup(sc.to);
	cfg->schedules = xrealloc(cfg->schedules, (cfg->schedule_count + 1) * sizeof(sc));
	cfg->schedules[cfg->schedule_count++] = sc;
	return 0;
}

/* "ProbeAllow CIDR..." (blank or comma separated; repeatable, accumulates):
 * each one as diag_cidr_match() reads it, "10.0.0.0/8", "::1/128", or a
 * bare address.  Nothing is added when one of them is bad. */
static int
config_add_cidrs(struct strlist *list, const char *name, char *value, char *err, size_t errlen)
{
	char *save = NULL, *tok;
	size_t before = list->count;

	for (tok = strtok_r(value, " \t,", &save); tok; tok = strtok_r(NULL, " \t,", &save)) {
		if (diag_cidr_match(tok, "::") < 0) {
			snprintf(err, errlen, "%s: \"%s\" is not an address or CIDR range "
			    "(e.g. 127.0.0.0/8, 10.1.2.3, fd00::/8)", name, tok);
			while (list->count > before)
				free(list->items[--list->count]);
			return -1;
		}
		if (!strlist_has(list, tok))
			strlist_add(list, tok);
	}
	return 0;
}

#define CONFIG_DIAG_PORTS_MAX	16

/* "DiagnosePorts PORT/SECURITY..." (blank or comma separated), e.g.
 * "587/starttls 465/tls 25/none"; replaces the list (nothing changes on an error). */
static int
config_set_ports(struct config *cfg, const char *name, char *value, char *err, size_t errlen)
{
	int ports[CONFIG_DIAG_PORTS_MAX];
	enum diag_security sec[CONFIG_DIAG_PORTS_MAX];
	char *save = NULL, *tok;
	size_t n = 0;

	for (tok = strtok_r(value, " \t,", &save); tok; tok = strtok_r(NULL, " \t,", &save)) {
		char *slash = strchr(tok, '/'), *end;
		long port;

		if (slash)
			*slash = '\0';
		errno = 0;
		port = strtol(tok, &end, 10);
		if (slash == NULL || errno || end == tok || *end || port < 1 || port > 65535 ||
		    diag_security_parse(slash + 1, &sec[n]) != 0) {
			if (slash)
				*slash = '/';
			snprintf(err, errlen, "%s: \"%s\" is not PORT/SECURITY (a port 1-65535, "
			    "then tls, starttls or none; e.g. 587/starttls)", name, tok);
			return -1;
		}
		if (n == CONFIG_DIAG_PORTS_MAX) {
			snprintf(err, errlen, "%s: more than %d ports", name, CONFIG_DIAG_PORTS_MAX);
			return -1;
		}
		ports[n++] = (int)port;
	}
	if (n == 0) {
		snprintf(err, errlen, "%s names no PORT/SECURITY pair", name);
		return -1;
	}
	free(cfg->diagnose_ports);
	free(cfg->diagnose_security);
	cfg->diagnose_ports = xmalloc(n * sizeof(*cfg->diagnose_ports));
	cfg->diagnose_security = xmalloc(n * sizeof(*cfg->diagnose_security));
	memcpy(cfg->diagnose_ports, ports, n * sizeof(*ports));
	memcpy(cfg->diagnose_security, sec, n * sizeof(*sec));
	cfg->diagnose_port_count = n;
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
	case CT_DATABASE:
		/* A PostgreSQL connection string stays as written; a password
		 * in it would show in every "config show" and process list. */
		if (store_target_is_pg(value)) {
			const char *at = strchr(value, '@'), *colon = strstr(value, "://");

			if (strstr(value, "password=") != NULL ||
			    (colon != NULL && at != NULL && memchr(colon + 3, ':',
			    (size_t)(at - colon - 3)) != NULL)) {
				snprintf(err, errlen, "%s: no password here; put it in "
				    "DatabasePasswordFile (mode 0600) or ~/.pgpass", row->name);
				return -1;
			}
			free(*str);
			*str = xstrdup(value);
		} else {
			free(*str);
			*str = config_resolve_path(cfg->path, value);
		}
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
	case CT_ACK_POLICY:
		if (strcasecmp(value, "aligned") == 0)
			cfg->ack_policy = CONFIG_ACK_ALIGNED;
		else if (strcasecmp(value, "dmarc") == 0)
			cfg->ack_policy = CONFIG_ACK_DMARC;
		else if (strcasecmp(value, "any") == 0)
			cfg->ack_policy = CONFIG_ACK_ANY;
		else {
			snprintf(err, errlen, "%s: \"%s\" is not aligned, dmarc or any", row->name, value);
			return -1;
		}
		return 0;
	case CT_TOKEN_LIST:
		if (value[0] == '\0' || strpbrk(value, " \t")) {
			snprintf(err, errlen, "%s: \"%s\" is not a single word", row->name, value);
			return -1;
		}
		for (char *p = value; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		if (!strlist_has(list, value))
			strlist_add(list, value);
		return 0;
	case CT_MAILBOX_LIST:
		if (strncmp(value, "imap://", 7) == 0 || strncmp(value, "imaps://", 8) == 0) {
			const char *auth = value + (value[4] == 's' ? 8 : 7);
			const char *slash = strchr(auth, '/');
			const char *at = slash ? memrchr(auth, '@', (size_t)(slash - auth)) : NULL;

			if (at == NULL || at == auth || at + 1 == slash || slash[1] == '\0' ||
			    strpbrk(value, " \t") != NULL) {
				snprintf(err, errlen, "%s: \"%s\" is not imaps://USER@HOST[:PORT]/FOLDER",
				    row->name, value);
				return -1;
			}
			if (!strlist_has(list, value))
				strlist_add(list, value);
			return 0;
		}
		if (strncmp(value, "maildir:", 8) != 0 || value[8] == '\0') {
			snprintf(err, errlen, "%s: \"%s\" is not maildir:PATH or an imaps:// URL",
			    row->name, value);
			return -1;
		} else {
			char *dir = config_resolve_path(cfg->path, value + 8);
			char *spec = xmalloc(strlen(dir) + 9);

			memcpy(spec, "maildir:", 8);
			strcpy(spec + 8, dir);
			free(dir);
			if (!strlist_has(list, spec))
				strlist_add(list, spec);
			free(spec);
		}
		return 0;
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
	case CT_BUSINESS_HOURS:
		return config_set_business_hours(cfg, value, err, errlen);
	case CT_HOLIDAY:
		return config_set_holiday(cfg, value, err, errlen);
	case CT_CLOCK:
		return config_set_clock(cfg, value, err, errlen);
	case CT_PERCENT:
	case CT_INT: {
		char *end;
		long v;

		errno = 0;
		v = strtol(value, &end, 10);
		if (row->type == CT_PERCENT && *end == '%')
			end++;
		if (errno || end == value || *end || v < row->min || v > row->max) {
			snprintf(err, errlen, "%s: \"%s\" is not a number from %lld to %lld%s", row->name,
			    value, row->min, row->max, row->type == CT_PERCENT ? " (percent)" : "");
			return -1;
		}
		if (row->type == CT_PERCENT)
			*(int *)((char *)cfg + row->offset) = (int)v;
		else
			*(long *)((char *)cfg + row->offset) = v;
		return 0;
	}
	case CT_ESCALATE:
		return config_set_escalate(cfg, value, err, errlen);
	case CT_SCHEDULE:
		return config_set_schedule(cfg, (int)row->offset, value, err, errlen);
	case CT_CIDR_LIST:
		return config_add_cidrs(list, row->name, value, err, errlen);
	case CT_PORT_LIST:
		return config_set_ports(cfg, row->name, value, err, errlen);
	case CT_RESOLVER:
		if (!dg_dns_resolver_valid(value)) {
			snprintf(err, errlen, "%s: \"%s\" is not ADDRESS[:PORT] (e.g. 127.0.0.1:5353, [::1]:53)",
			    row->name, value);
			return -1;
		}
		free(*str);
		*str = xstrdup(value);
		return 0;
	case CT_MODE: {
		char *end;
		long v;

		errno = 0;
		v = strtol(value, &end, 8);
		if (errno || end == value || *end || v < row->min || v > row->max) {
			snprintf(err, errlen, "%s: \"%s\" is not an octal mode from %llo to %04llo "
			    "(e.g. 0660)", row->name, value, row->min, row->max);
			return -1;
		}
		*(int *)((char *)cfg + row->offset) = (int)v;
		return 0;
	}
	}
	return -1;
}

static void
config_free(struct config *cfg)
{
	for (size_t i = 0; i < sizeof(config_rows) / sizeof(config_rows[0]); i++) {
		const struct config_row *row = &config_rows[i];
		switch (row->type) {
		case CT_STRING: case CT_PATH: case CT_DATABASE: case CT_URL: case CT_FACILITY:
		case CT_TIMEZONE:
		case CT_ADDRESS: case CT_RESOLVER:
			free(*(char **)((char *)cfg + row->offset));
			break;
		case CT_ADDRESS_LIST: case CT_DOMAIN_LIST: case CT_REGEX_LIST: case CT_CIDR_LIST:
		case CT_TOKEN_LIST: case CT_MAILBOX_LIST:
			strlist_free((struct strlist *)((char *)cfg + row->offset));
			break;
		default:
			break;
		}
	}
	for (size_t i = 0; i < cfg->tier_count; i++)
		free(cfg->tiers[i].name);
	free(cfg->tiers);
	free(cfg->holidays);
	for (size_t i = 0; i < cfg->escalation_count; i++)
		free(cfg->escalations[i].to);
	free(cfg->escalations);
	for (size_t i = 0; i < cfg->schedule_count; i++)
		free(cfg->schedules[i].to);
	free(cfg->schedules);
	free(cfg->diagnose_ports);
	free(cfg->diagnose_security);
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
			t->sla[u].first = config_parse_span(default_sla[i].targets[u][0],
			    &t->sla[u].first_span);
			t->sla[u].resolve = config_parse_span(default_sla[i].targets[u][1],
			    &t->sla[u].resolve_span);
		}
	}
	for (int u = 0; u < URGENCY_LEVELS; u++)
		cfg->clock[u] = default_clock[u];
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
	/* The RFC 3834 robots are always skipped; NoReplyPattern adds to them. */
	for (size_t i = 0; i < sizeof(default_no_reply) / sizeof(default_no_reply[0]); i++)
		strlist_add(&cfg->no_reply_patterns, default_no_reply[i]);
	if (config_finish_calendar(cfg, err, sizeof(err)) != 0) {
		buf_printf(errors, "%s: %s\n", path, err);
		bad++;
	}
	/* Defaults that follow other keys. */
	if (cfg->log_facility == NULL)
		cfg->log_facility = xstrdup(cfg->syslog_facility);
	if (cfg->spool_directory == NULL)
		cfg->spool_directory = config_beside_database(cfg, "spool");
	if (cfg->seal_key_file == NULL)
		cfg->seal_key_file = config_beside_database(cfg, "seal.key");
	for (size_t i = 0; i < cfg->mailboxes.count && !bad; i++) {
		if (strncmp(cfg->mailboxes.items[i], "imap", 4) == 0 &&
		    cfg->mailbox_password_file == NULL) {
			buf_printf(errors, "%s: Mailbox %s needs a MailboxPasswordFile\n", path,
			    cfg->mailboxes.items[i]);
			bad++;
		}
	}
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
