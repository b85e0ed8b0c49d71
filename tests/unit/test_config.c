/* Config parsing: values, defaults, and that every bad line is named. */
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "sla.h"
#include "t.h"

static char dir[] = "/tmp/hg-test-config-XXXXXX";

static const char *
write_conf(const char *name, const char *text)
{
	static char path[256];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "w");
	fputs(text, fp);
	fclose(fp);
	return path;
}

static void
test_durations_and_sizes(void)
{
	T_EQ_INT(config_parse_duration("30m"), 1800);
	T_EQ_INT(config_parse_duration("4h"), 14400);
	T_EQ_INT(config_parse_duration("2d"), 172800);
	T_EQ_INT(config_parse_duration("1h30m"), 5400);
	T_EQ_INT(config_parse_duration("90"), 90);
	T_EQ_INT(config_parse_duration(""), -1);
	T_EQ_INT(config_parse_duration("4x"), -1);
	T_EQ_INT(config_parse_duration("-5m"), -1);
	T_EQ_INT(config_parse_duration("99999999999999999999d"), -1);
	T_EQ_INT(config_parse_size("256K"), 262144);
	T_EQ_INT(config_parse_size("1M"), 1048576);
	T_EQ_INT(config_parse_size("4096"), 4096);
	T_EQ_INT(config_parse_size("12Q"), -1);
	T_EQ_INT(config_parse_size("K"), -1);

	struct config_span span;
	T_EQ_INT(config_parse_span("1w2d4h30m5", &span), 7 * 86400 + 2 * 86400 + 4 * 3600 + 1800 + 5);
	T_EQ_INT(span.weeks, 1);
	T_EQ_INT(span.days, 2);
	T_EQ_INT(span.seconds, 4 * 3600 + 1800 + 5);
	T_EQ_INT(config_parse_span("4x", &span), -1);
	T_EQ_INT(span.weeks, 1);	/* untouched on error */
	T_EQ_INT(config_parse_date("1970-01-01"), 0);
	T_EQ_INT(config_parse_date("2026-12-25"), 20812);
	T_EQ_INT(config_parse_date("2028-02-29"), 21243);
	T_EQ_INT(config_parse_date("2027-02-29"), -1);
	T_EQ_INT(config_parse_date("2026-04-31"), -1);
	T_EQ_INT(config_parse_date("2026-12-25x"), -1);
	T_EQ_INT(config_parse_date("2026-1-5"), -1);
}

static void
test_good_config(void)
{
	struct buf errors;
	struct config *cfg;
	const char *path = write_conf("good.conf",
	    "# comment\n"
	    "Socket unix:/tmp/x.sock\n"
	    "  database   data/hg.db  \n"
	    "SupportAddress <Support@Example.COM>\n"
	    "SupportAddress help@example.com\n"
	    "StaffDomain @Staff.Example.com\n"
	    "StaffAddress boss@example.net\n"
	    "Relay smtps://relay.example.com:465\n"
	    "Timezone Europe/Kyiv\n"
	    "MaxBodyScan 64K\n"
	    "StoreTimeout 250ms\n"
	    "SLA trial P2 first=45m\n"
	    "SLA gold P1 first=10m resolve=2h\n"
	    "EscalationAddress OnCall@Example.com\n"
	    "AckRateLimit 2 9\n"
	    "NoReplyPattern ^robot@\n"
	    "AckMargin 45m\n"
	    "BusinessHours mon-fri 09:00-13:00 14:00-18:00\n"
	    "businesshours Sat 10:00-14:00\n"
	    "BusinessHours mon,wed 8:30-17:00\n"
	    "Holiday 2027-01-01\n"
	    "Holiday 2026-12-25\n"
	    "Holiday 2027-01-01\n"
	    "Clock P2 24x7\n"
	    "Clock p4 BUSINESS\n"
	    "EndOfDayWindow 30m\n"
	    "WarnAt 80%\n"
	    "OnCallAddress oncall@example.com\n"
	    "IncidentWatchDays 14\n"
	    "Escalate 1 after=breach to=l2@example.com\n"
	    "Escalate 2 after=breach+2h to=Manager@example.com\n"
	    "Escalate 3 after=warning+1d to=cto@example.com\n"
	    "DiagnoseTimeout 5s\n"
	    "DiagnoseCAFile certs/ca.pem\n"
	    "ProbeAllow 127.0.0.0/8 ::1\n"
	    "ProbeAllow 10.1.2.3, fd00::/8\n"
	    "DiagnosePorts 2525/starttls, 465/tls 25/none\n"
	    "Digest Lead@Example.com at=09:00,17:30\n"
	    "Digest night@example.com at=23:55\n"
	    "Report lead@example.com at=mon 08:00\n"
	    "DigestEmpty yes\n");

	buf_init(&errors, 4096);
	cfg = config_load(path, &errors);
	T_CHECK(cfg != NULL);
	T_EQ_STR(buf_str(&errors), "");
	if (cfg == NULL)
		return;
	T_EQ_INT((int)cfg->schedule_count, 3);
	if (cfg->schedule_count == 3) {
		T_EQ_INT(cfg->schedules[2].report, 1);
		T_EQ_INT(cfg->schedules[2].wday, 1);
		T_EQ_INT(cfg->schedules[2].minute[0], 8 * 60);
		T_EQ_STR(cfg->schedules[0].to, "lead@example.com");
		T_EQ_INT(cfg->schedules[0].n, 2);
		T_EQ_INT(cfg->schedules[0].minute[1], 17 * 60 + 30);
		T_EQ_INT(cfg->schedules[0].report, 0);
		T_EQ_INT(cfg->schedules[1].minute[0], 23 * 60 + 55);
	}
	T_EQ_INT(cfg->digest_empty, 1);
	T_EQ_STR(cfg->socket, "unix:/tmp/x.sock");
	T_CONTAINS(cfg->database, "/data/hg.db");
	T_CHECK(cfg->database[0] == '/');
	T_EQ_INT(cfg->max_body_scan, 65536);
	T_EQ_INT(cfg->store_timeout_ms, 250);
	T_EQ_STR(cfg->timezone, "Europe/Kyiv");
	T_EQ_STR(cfg->escalation_address, "oncall@example.com");
	T_EQ_INT(cfg->ack_per_hour, 2);
	T_EQ_INT(cfg->ack_per_day, 9);
	T_EQ_INT(cfg->no_reply_patterns.count, 3);	/* the two built-in ones stay */
	T_EQ_INT(cfg->ack_margin, 45 * 60);
	T_EQ_INT(cfg->warn_at_pct, 80);
	T_EQ_STR(cfg->on_call_address, "oncall@example.com");
	T_CHECK(cfg->notice_address == NULL);
	T_EQ_INT(cfg->incident_watch_days, 14);
	T_EQ_INT(cfg->escalation_count, 3);
	if (cfg->escalation_count == 3) {
		/* "1d" kept as written: a business day on a business clock. */
		T_EQ_INT(cfg->escalations[2].offset, 86400);
		T_EQ_INT(cfg->escalations[2].offset_span.days, 1);
		T_EQ_INT(cfg->escalations[2].after_warning, 1);
		T_EQ_INT(cfg->escalations[1].level, 2);
		T_EQ_INT(cfg->escalations[1].offset, 7200);
		T_EQ_STR(cfg->escalations[1].to, "manager@example.com");
		T_EQ_INT(cfg->escalations[0].offset, 0);
	}
	T_EQ_INT(cfg->poll_interval_ms, 200);
	T_EQ_INT(cfg->diagnose_timeout_ms, 5000);
	T_CHECK(cfg->diagnose_ca_file != NULL && cfg->diagnose_ca_file[0] == '/');
	T_CONTAINS(cfg->diagnose_ca_file, "/certs/ca.pem");
	T_EQ_INT(cfg->probe_allow.count, 4);
	if (cfg->probe_allow.count == 4) {
		T_EQ_STR(cfg->probe_allow.items[0], "127.0.0.0/8");
		T_EQ_STR(cfg->probe_allow.items[1], "::1");
		T_EQ_STR(cfg->probe_allow.items[3], "fd00::/8");
		T_EQ_INT(diag_cidr_match(cfg->probe_allow.items[0], "127.0.0.1"), 1);
	}
	T_EQ_INT(cfg->diagnose_port_count, 3);
	if (cfg->diagnose_port_count == 3) {
		T_EQ_INT(cfg->diagnose_ports[0], 2525);
		T_EQ_INT(cfg->diagnose_security[0], DIAG_SEC_STARTTLS);
		T_EQ_INT(cfg->diagnose_ports[1], 465);
		T_EQ_INT(cfg->diagnose_security[1], DIAG_SEC_TLS);
		T_EQ_INT(cfg->diagnose_ports[2], 25);
		T_EQ_INT(cfg->diagnose_security[2], DIAG_SEC_NONE);
	}
	/* The business calendar: lines replace only the days they name. */
	T_EQ_INT(cfg->business_week[0].count, 0);
	T_EQ_INT(cfg->business_week[1].count, 1);
	T_EQ_INT(cfg->business_week[1].range[0].open, 8 * 3600 + 1800);
	T_EQ_INT(cfg->business_week[2].count, 2);
	T_EQ_INT(cfg->business_week[2].range[1].open, 14 * 3600);
	T_EQ_INT(cfg->business_week[2].range[1].close, 18 * 3600);
	T_EQ_INT(cfg->business_week[3].count, 1);
	T_EQ_INT(cfg->business_week[6].count, 1);
	T_EQ_INT(cfg->business_week[6].range[0].close, 14 * 3600);
	T_EQ_INT(cfg->business_day_len, 8 * 3600 + 1800);
	T_EQ_INT(cfg->business_week_len, 2 * (8 * 3600 + 1800) + 3 * 8 * 3600 + 4 * 3600);
	T_EQ_INT(cfg->holiday_count, 2);
	if (cfg->holiday_count == 2) {
		T_EQ_INT(cfg->holidays[0], config_parse_date("2026-12-25"));
		T_EQ_INT(cfg->holidays[1], config_parse_date("2027-01-01"));
	}
	T_EQ_INT(cfg->clock[0], CONFIG_CLOCK_24X7);
	T_EQ_INT(cfg->clock[1], CONFIG_CLOCK_24X7);
	T_EQ_INT(cfg->clock[2], CONFIG_CLOCK_BUSINESS);
	T_EQ_INT(cfg->clock[3], CONFIG_CLOCK_BUSINESS);
	T_EQ_INT(cfg->end_of_day_window, 1800);
	T_EQ_INT(cfg->tiers[0].sla[3].resolve_span.days, 5);	/* enterprise P4 resolve=5d */
	T_CHECK(config_is_support_address(cfg, "<support@example.com>"));
	T_CHECK(config_is_support_address(cfg, "SUPPORT@example.com"));
	T_CHECK(config_is_support_address(cfg, "support+billing@example.com"));
	T_CHECK(!config_is_support_address(cfg, "sales@example.com"));
	T_CHECK(!config_is_support_address(cfg, "support@example.com.evil"));
	T_CHECK(config_is_staff(cfg, "ann@staff.example.com"));
	T_CHECK(config_is_staff(cfg, "<Boss@Example.net>"));
	T_CHECK(!config_is_staff(cfg, "ann@notstaff.example.com"));
	T_CHECK(!config_is_staff(cfg, "client@example.net"));
	/* Overrides and defaults side by side. */
	T_EQ_INT(sla_target(cfg, "trial", 2, SLA_FIRST_RESPONSE), 45 * 60);
	T_EQ_INT(sla_target(cfg, "trial", 1, SLA_FIRST_RESPONSE), 30 * 60);
	T_EQ_INT(sla_target(cfg, "gold", 1, SLA_RESOLUTION), 7200);
	T_CHECK(config_tier(cfg, "gold") != NULL);
	T_CHECK(config_tier(cfg, "enterprise") != NULL);
	T_EQ_INT(sla_target(cfg, "nonesuch", 3, SLA_FIRST_RESPONSE),
	    sla_target(cfg, "unknown", 3, SLA_FIRST_RESPONSE));
	T_EQ_INT(sla_deadline(cfg, "trial", 1, SLA_FIRST_RESPONSE, 1000), 1000 + 1800);
	/* First response never later than resolution in the shipped table. */
	for (size_t i = 0; i < cfg->tier_count; i++)
		for (int u = 0; u < URGENCY_LEVELS; u++)
			T_CHECK(cfg->tiers[i].sla[u].first <= cfg->tiers[i].sla[u].resolve);
	config_unref(cfg);
	buf_free(&errors);
}

static void
test_bad_config(void)
{
	struct buf errors;
	struct config *cfg;
	const char *path = write_conf("bad.conf",
	    "SupportAddress support@example.com\n"
	    "Frobnicate yes\n"
	    "MaxBodyScan lots\n"
	    "SLA trial P7 first=1h\n"
	    "SLA trial P1 first=soon\n"
	    "Relay http://example.com\n"
	    "Timezone Mars/Olympus\n"
	    "SupportAddress not-an-address\n"
	    "Syslog perhaps\n"
	    "Socket\n"
	    "AckRateLimit five\n"
	    "NoReplyPattern (unclosed\n"
	    "EscalationAddress nobody\n"
	    "BusinessHours mon-fry 09:00-18:00\n"
	    "BusinessHours mon 18:00-09:00\n"
	    "BusinessHours mon 09:00-13:00 12:00-18:00\n"
	    "Holiday 2026-12-32\n"
	    "Clock P5 24x7\n"
	    "EndOfDayWindow forever\n"
	    "WarnAt 150%\n"
	    "Escalate 1 after=lunch to=x@example.com\n"
	    "Escalate 2 after=breach\n"
	    "DiagnoseTimeout 500s\n"
	    "ProbeAllow 127.0.0.0/33\n"
	    "DiagnosePorts 587/starttls 99999/tls\n"
	    "DiagnosePorts 587/smoke\n"
	    "DiagnoseCAFile\n"
	    "DiagnosePerHour 100001\n"
	    "Digest nobody at=09:00\n"
	    "Digest lead@example.com at=17:30,09:00\n"
	    "Digest lead@example.com\n"
	    "Report lead@example.com at=monday 08:00\n");

	buf_init(&errors, 8192);
	cfg = config_load(path, &errors);
	T_CHECK(cfg == NULL);
	T_CONTAINS(buf_str(&errors), "bad.conf:2: unknown key \"Frobnicate\"");
	T_CONTAINS(buf_str(&errors), "Digest: \"nobody\" is not a mail address");
	T_CONTAINS(buf_str(&errors), "Digest: at= wants up to 8 increasing times");
	T_CONTAINS(buf_str(&errors), "Digest lead@example.com needs at=");
	T_CONTAINS(buf_str(&errors), "Report: at= wants a day and a time");
	T_CONTAINS(buf_str(&errors), "bad.conf:3: MaxBodyScan");
	T_CONTAINS(buf_str(&errors), "bad.conf:4: SLA: urgency \"P7\"");
	T_CONTAINS(buf_str(&errors), "bad.conf:5: SLA: \"soon\"");
	T_CONTAINS(buf_str(&errors), "bad.conf:6: Relay");
	T_CONTAINS(buf_str(&errors), "bad.conf:7: Timezone");
	T_CONTAINS(buf_str(&errors), "bad.conf:8: SupportAddress");
	T_CONTAINS(buf_str(&errors), "bad.conf:9: Syslog");
	T_CONTAINS(buf_str(&errors), "bad.conf:10: Socket needs a value");
	T_CONTAINS(buf_str(&errors), "bad.conf:11: AckRateLimit");
	T_CONTAINS(buf_str(&errors), "bad.conf:12: NoReplyPattern");
	T_CONTAINS(buf_str(&errors), "bad.conf:13: EscalationAddress");
	T_CONTAINS(buf_str(&errors), "bad.conf:14: BusinessHours: \"mon-fry\" is not a day");
	T_CONTAINS(buf_str(&errors), "bad.conf:15: BusinessHours: \"18:00-09:00\" does not end after");
	T_CONTAINS(buf_str(&errors), "bad.conf:16: BusinessHours: \"12:00-18:00\" overlaps");
	T_CONTAINS(buf_str(&errors), "bad.conf:17: Holiday: \"2026-12-32\" is not a date");
	T_CONTAINS(buf_str(&errors), "bad.conf:18: Clock: urgency \"P5\"");
	T_CONTAINS(buf_str(&errors), "bad.conf:19: EndOfDayWindow");
	T_CONTAINS(buf_str(&errors), "bad.conf:20: WarnAt");
	T_CONTAINS(buf_str(&errors), "bad.conf:21: Escalate: after=lunch");
	T_CONTAINS(buf_str(&errors), "bad.conf:22: Escalate 2 needs after= and to=");
	T_CONTAINS(buf_str(&errors), "bad.conf:23: DiagnoseTimeout: \"500s\" is not a duration");
	T_CONTAINS(buf_str(&errors), "bad.conf:24: ProbeAllow: \"127.0.0.0/33\" is not an address");
	T_CONTAINS(buf_str(&errors), "bad.conf:25: DiagnosePorts: \"99999/tls\" is not PORT/SECURITY");
	T_CONTAINS(buf_str(&errors), "bad.conf:26: DiagnosePorts: \"587/smoke\" is not PORT/SECURITY");
	T_CONTAINS(buf_str(&errors), "bad.conf:27: DiagnoseCAFile needs a value");
	T_CONTAINS(buf_str(&errors), "bad.conf:28: DiagnosePerHour: \"100001\" is not a number from 0 to 100000");
	buf_free(&errors);

	buf_init(&errors, 8192);
	cfg = config_load(write_conf("empty.conf", "# nothing\n"), &errors);
	T_CHECK(cfg == NULL);
	T_CONTAINS(buf_str(&errors), "no SupportAddress");
	buf_free(&errors);

	buf_init(&errors, 8192);
	cfg = config_load("/nonexistent/helpgate.conf", &errors);
	T_CHECK(cfg == NULL);
	T_CONTAINS(buf_str(&errors), "cannot open");
	buf_free(&errors);
}

static void
test_shipped_config(void)
{
	struct buf errors;
	struct config *cfg;

	buf_init(&errors, 8192);
	cfg = config_load("conf/helpgate.conf", &errors);
	T_CHECK(cfg != NULL);
	T_EQ_STR(buf_str(&errors), "");
	if (cfg != NULL) {
		T_EQ_INT(cfg->max_body_scan, 256 * 1024);
		T_EQ_STR(cfg->socket, "inet:8891@127.0.0.1");
		T_EQ_INT(cfg->ack_per_hour, 5);
		T_EQ_INT(cfg->ack_per_day, 20);
		T_CHECK(cfg->no_reply_patterns.count >= 1);
		T_EQ_INT(cfg->end_of_day_window, 3600);
		T_EQ_INT(cfg->clock[0], CONFIG_CLOCK_24X7);
		T_EQ_INT(cfg->clock[1], CONFIG_CLOCK_BUSINESS);
		T_EQ_INT(cfg->business_week[1].count, 1);
		T_EQ_INT(cfg->business_day_len, 9 * 3600);
		/* The diagnosis defaults. */
		T_EQ_INT(cfg->diagnose_timeout_ms, 20000);
		T_CHECK(cfg->diagnose_ca_file == NULL);
		T_EQ_INT(cfg->probe_allow.count, 0);
		T_EQ_INT(cfg->diagnose_port_count, 4);
		if (cfg->diagnose_port_count == 4) {
			T_EQ_INT(cfg->diagnose_ports[0], 587);
			T_EQ_INT(cfg->diagnose_security[0], DIAG_SEC_STARTTLS);
			T_EQ_INT(cfg->diagnose_ports[1], 465);
			T_EQ_INT(cfg->diagnose_security[1], DIAG_SEC_TLS);
			T_EQ_INT(cfg->diagnose_ports[3], 2525);
		}
		/* what one sender domain, and everyone, may make it probe */
		T_EQ_INT(cfg->diagnose_per_hour, 6);
		T_EQ_INT(cfg->diagnose_global_per_hour, 60);
	}
	config_unref(cfg);
	buf_free(&errors);
}

/* Mailbox (issue 14): maildir paths resolved, IMAP URLs checked, an IMAP
 * mailbox needs its password file. */
static void
test_mailbox(void)
{
	struct buf errors;
	struct config *cfg;
	char want[300];

	buf_init(&errors, 8192);
	cfg = config_load(write_conf("mb.conf",
	    "SupportAddress support@example.com\n"
	    "Mailbox maildir:mail/support\n"
	    "Mailbox maildir:/var/mail/support\n"
	    "Mailbox maildir:/var/mail/support\n"
	    "Mailbox imaps://support@example.com@imap.example.com:1993/INBOX\n"
	    "MailboxPasswordFile mailbox.secret\n"
	    "MailboxCAFile /etc/ssl/ca.pem\n"
	    "MailboxPoll 2m\n"), &errors);
	T_CHECK(cfg != NULL);
	T_EQ_STR(buf_str(&errors), "");
	if (cfg != NULL) {
		T_EQ_INT(cfg->mailboxes.count, 3);	/* the repeated line counts once */
		snprintf(want, sizeof(want), "maildir:%s/mail/support", dir);
		T_EQ_STR(cfg->mailboxes.items[0], want);
		T_EQ_STR(cfg->mailboxes.items[1], "maildir:/var/mail/support");
		T_EQ_STR(cfg->mailboxes.items[2], "imaps://support@example.com@imap.example.com:1993/INBOX");
		snprintf(want, sizeof(want), "%s/mailbox.secret", dir);
		T_EQ_STR(cfg->mailbox_password_file, want);
		T_EQ_STR(cfg->mailbox_ca_file, "/etc/ssl/ca.pem");
		T_EQ_INT(cfg->mailbox_poll, 120);
		config_unref(cfg);
	}
	buf_free(&errors);

	buf_init(&errors, 8192);
	cfg = config_load(write_conf("mb-default.conf", "SupportAddress support@example.com\n"), &errors);
	T_CHECK(cfg != NULL);
	if (cfg != NULL) {
		T_EQ_INT(cfg->mailboxes.count, 0);
		T_EQ_INT(cfg->mailbox_poll, 60);
		T_EQ_INT(cfg->mailbox_flags, 0);
		T_EQ_INT(cfg->mailbox_max_age, 2 * 86400);
		config_unref(cfg);
	}
	buf_free(&errors);

	buf_init(&errors, 8192);
	cfg = config_load(write_conf("mb-bad.conf",
	    "SupportAddress support@example.com\n"
	    "Mailbox /var/mail/support\n"
	    "Mailbox imaps://imap.example.com/INBOX\n"
	    "Mailbox imaps://support@imap.example.com/\n"
	    "MailboxPoll 0s\n"), &errors);
	T_CHECK(cfg == NULL);
	T_CONTAINS(buf_str(&errors), "mb-bad.conf:2: Mailbox: \"/var/mail/support\" is not maildir:PATH");
	T_CONTAINS(buf_str(&errors), "mb-bad.conf:3: Mailbox: \"imaps://imap.example.com/INBOX\" is not imaps://USER@HOST");
	T_CONTAINS(buf_str(&errors), "mb-bad.conf:4: Mailbox");
	T_CONTAINS(buf_str(&errors), "mb-bad.conf:5: MailboxPoll");
	buf_free(&errors);

	buf_init(&errors, 8192);
	cfg = config_load(write_conf("mb-nopw.conf",
	    "SupportAddress support@example.com\n"
	    "Mailbox imap://support@imap.example.com/INBOX\n"), &errors);
	T_CHECK(cfg == NULL);
	T_CONTAINS(buf_str(&errors), "needs a MailboxPasswordFile");
	buf_free(&errors);
}

int
main(void)
{
	if (mkdtemp(dir) == NULL)
		return 2;
	test_durations_and_sizes();
	test_good_config();
	test_bad_config();
	test_shipped_config();
	test_mailbox();
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return t_done();
}
