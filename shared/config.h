/*
 * config - helpgate.conf, shared by the milter, the worker and helpgatectl.
 *
 * Format (as opendkim.conf): one "Key value" per line, '#' starts a comment
 * at the beginning of a line, keys are case-insensitive, repeatable keys
 * accumulate.  Relative paths are taken relative to the directory that holds
 * the config file, so a config and its keyword lists move together.
 *
 * config_load() reports every problem, each as "FILE:LINE: message", and
 * fails if there was any: an unknown key or a bad value never starts a
 * daemon with a guess.  A loaded config is immutable; reload builds a new
 * one and swaps the pointer (config_ref/config_unref keep the old one alive
 * for callers still using it, as OpenDKIM's conf_refcnt).
 */
#ifndef HG_CONFIG_H
#define HG_CONFIG_H

#include <stddef.h>
#include <time.h>

#include "buf.h"
#include "diag.h"

#define URGENCY_LEVELS	4	/* P1..P4; index = level - 1 */

struct strlist {
	char  **items;
	size_t  count;
};

/* A duration split as it was written, for the business clock, where a day
 * and a week are not 86400 and 604800 seconds: "1w2d4h30m" -> 1, 2, 16200. */
struct config_span {
	long weeks;
	long days;
	long seconds;		/* the s, m and h parts */
};

struct sla_target {
	long first;		/* seconds to first response (d = 86400 s, w = 7 d) */
	long resolve;		/* seconds to resolution */
	struct config_span first_span;	/* the same two, as written */
	struct config_span resolve_span;
};

struct tier_policy {
	char			*name;
	struct sla_target	 sla[URGENCY_LEVELS];
};

/*
 * The business calendar (BusinessHours, Holiday, Clock; see sla.h for how
 * deadlines use it).  Times are wall-clock times in Timezone.
 */
#define BUSINESS_RANGES_MAX	8	/* ranges per day */

struct business_range {
	long open;		/* seconds after local midnight, 0 <= open < close */
	long close;		/* ... <= 86400 (24:00) */
};

struct business_day {
	int			count;		/* 0: closed */
	struct business_range	range[BUSINESS_RANGES_MAX];	/* increasing, not overlapping */
};

enum config_clock { CONFIG_CLOCK_24X7, CONFIG_CLOCK_BUSINESS };

enum config_ack_policy { CONFIG_ACK_ALIGNED, CONFIG_ACK_DMARC, CONFIG_ACK_ANY };

/* Escalate N after=breach|warning[+DURATION] to=ADDRESS */
struct escalation {
	int	 level;
	int	 after_warning;		/* counted from the warning, else from the breach */
	long	 offset;		/* seconds on a 24x7 clock after that point */
	struct config_span offset_span;	/* as written, for a business clock ("1d" = a business day) */
	char	*to;
};

/* "Digest ADDR at=09:00,17:30" (business days) and "Report ADDR at=mon
 * 08:00" (weekly): letters to staff on a calendar, in Timezone. */
#define SCHEDULE_TIMES_MAX	8
struct schedule {
	char	*to;
	int	 report;			/* 0: the queue digest, 1: the weekly report */
	int	 wday;				/* report: 0 (Sunday) .. 6; digest: -1 */
	int	 minute[SCHEDULE_TIMES_MAX];	/* after local midnight, increasing */
	int	 n;
};

struct config {
	char		*path;			/* the file it came from */
	char		*socket;		/* milter socket, libmilter syntax */
	char		*database;
	char		*database_password_file;	/* PostgreSQL: the password, mode 0600 */
	struct strlist	 support_addresses;	/* lowercase */
	struct strlist	 staff_domains;		/* lowercase, no '@' */
	struct strlist	 staff_addresses;	/* lowercase */
	struct strlist	 staff_logins;		/* StaffLogin: lowercase fnmatch globs of SASL logins */
	struct strlist	 staff_networks;	/* StaffNetwork: CIDRs of staff's own relays */
	struct strlist	 trusted_authserv_ids;	/* TrustedAuthservID, lowercase */
	enum config_ack_policy ack_policy;	/* AckPolicy (authres.h) */
	long		 ack_global_per_hour;	/* AckPerHour: all acknowledgements */
	long		 p1_notice_per_domain;	/* P1NoticePerDomainPerHour */
	long		 p1_notice_per_hour;	/* P1NoticePerHour */
	char		*relay;			/* smtp:// or smtps:// URL, may be NULL */
	char		*relay_credentials;	/* file with user:password, may be NULL */
	char		*timezone;		/* IANA name */
	char		*pidfile;		/* may be NULL */
	char		*userid;		/* user[:group], may be NULL */
	int		 syslog;		/* log to syslog (else stderr) */
	char		*syslog_facility;
	char		*log_facility;		/* LogFacility; defaults to SyslogFacility */
	int		 log_debug;
	size_t		 max_body_scan;		/* bytes of body inspected */
	char		*keywords_dir;
	char		*templates_dir;
	long		 store_timeout_ms;	/* how long the milter waits for a locked store */
	char		*spool_directory;	/* degraded support mail waits here for the worker */
	char		*seal_key_file;		/* SealKeyFile: the X-Helpgate-Seal key */
	int		 socket_mode;		/* SocketMode: mode of a unix milter socket */
	char		*socket_group;		/* SocketGroup: its group; may be NULL */
	/* the worker */
	char		*from_name;		/* display name on mail helpgate sends */
	char		*escalation_address;	/* new P1 cases are announced here; may be NULL */
	int		 ack_per_hour;		/* AckRateLimit PER_HOUR PER_DAY */
	int		 ack_per_day;
	struct strlist	 no_reply_patterns;	/* POSIX EREs, matched case-insensitively on the address */
	long		 ack_margin;		/* seconds added to the deadline promised to a client */
	long		 poll_interval_ms;	/* how often the worker looks for new work */
	struct tier_policy *tiers;		/* enterprise, premium, standard, trial, unknown, + any in SLA lines */
	size_t		 tier_count;
	/* the SLA clock */
	struct business_day business_week[7];	/* index tm_wday: 0 = Sunday */
	long		*holidays;		/* local dates, days since 1970-01-01; sorted, unique */
	size_t		 holiday_count;
	enum config_clock clock[URGENCY_LEVELS];	/* per urgency */
	long		 business_day_len;	/* seconds in the longest day of the week: "1d" */
	long		 business_week_len;	/* seconds of business time in the week: "1w" */
	long		 end_of_day_window;	/* seconds; the worker warns this long before close */
	/* SLA events */
	int		 warn_at_pct;		/* the warning, in percent of the target */
	char		*notice_address;	/* warnings and breaches; NULL: EscalationAddress */
	char		*on_call_address;	/* P1/P2 arriving at the end of the day */
	long		 incident_watch_days;
	struct escalation *escalations;		/* by level */
	size_t		 escalation_count;
	struct schedule	*schedules;		/* Digest and Report lines, in order */
	size_t		 schedule_count;
	int		 digest_empty;		/* DigestEmpty: a digest also when nothing is open */
	/* the mail-settings diagnosis (diag.h) */
	long		 diagnose_timeout_ms;	/* DiagnoseTimeout: one whole diagnosis */
	char		*diagnose_ca_file;	/* DiagnoseCAFile: PEM added to the system store; may be NULL */
	struct strlist	 probe_allow;		/* ProbeAllow: CIDRs that may be probed besides
						 * public addresses (diag_target.allow) */
	int		*diagnose_ports;	/* DiagnosePorts: PORT/SECURITY pairs, in order */
	enum diag_security *diagnose_security;	/* ... the SECURITY of each port */
	size_t		 diagnose_port_count;
	char		*diagnose_resolver;	/* DiagnoseResolver ADDRESS[:PORT]; NULL: resolv.conf */
	long		 diagnose_concurrency;	/* DiagnoseConcurrency: the worker's probe threads */
	long		 diagnose_per_hour;	/* DiagnosePerCustomerPerHour: automatic runs
						 * per sender domain */
	long		 diagnose_global_per_hour;	/* DiagnosePerHour: all automatic runs */
	int		 diagnose_tell_client;	/* DiagnoseTellClient: send the client a working setting */
	/* the support mailbox the worker reconciles (issue 14) */
	struct strlist	 mailboxes;		/* Mailbox: "maildir:/absolute/path",
						 * "imaps://user@host[:port]/folder", "imap://..." */
	char		*mailbox_password_file;	/* MailboxPasswordFile: the IMAP password */
	char		*mailbox_ca_file;	/* MailboxCAFile: PEM added to the system's CAs */
	int		 mailbox_flags;		/* MailboxFlags: IMAP keywords HG-n, Pn, category */
	long		 mailbox_poll;		/* MailboxPoll: seconds between passes */
	long		 mailbox_max_age;	/* MailboxMaxAge: older mail is left alone (seconds) */
	int		 refcount;
};

/* Loads and validates FILE.  On failure returns NULL and appends one line
 * per problem to errors. */
struct config	*config_load(const char *path, struct buf *errors);
struct config	*config_ref(struct config *cfg);
void		 config_unref(struct config *cfg);	/* accepts NULL */

/* Lookup helpers; address arguments may be in any case, with or without <>. */
int		 config_is_support_address(const struct config *cfg, const char *addr);
int		 config_is_staff(const struct config *cfg, const char *addr);
/* Whether the MTA's authentication makes a sender staff: a SASL login that
 * matches StaffLogin or is itself a staff address; a client address inside
 * a StaffNetwork.  An address in From or MAIL FROM never does. */
int		 config_is_staff_login(const struct config *cfg, const char *login);
int		 config_is_staff_network(const struct config *cfg, const char *client_addr);
const struct tier_policy *config_tier(const struct config *cfg, const char *name); /* NULL if unknown */

/* "30m" "4h" "2d" "90" (seconds) -> seconds; -1 on error. */
long		 config_parse_duration(const char *s);
/* The same, also splitting it into *span (untouched on error). */
long		 config_parse_span(const char *s, struct config_span *span);
/* "2026-12-25" -> days since 1970-01-01 (years 1900..9999); -1 on error. */
long		 config_parse_date(const char *s);
/* "256K" "1M" "4096" -> bytes; -1 on error. */
long long	 config_parse_size(const char *s);

/* Normalises an address in place: strips <> and surrounding space,
 * lowercases.  Returns its argument. */
char		*config_normalize_address(char *addr);

#endif
