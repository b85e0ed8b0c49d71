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
#include "ctl.h"

/* ---- config ---- */

int
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
	{ "customer set", ctl_cmd_customer_set,
	    "ADDRESS|@DOMAIN [--smtp HOST[:PORT] [--security tls|starttls|none] [--user U "
	    "--password-file F]] [--imap HOST[:PORT] [--imap-security S] [--imap-user U "
	    "--imap-password-file F]] [--clear]",
	    "the customer's mail settings for the automatic diagnosis (the password only as a "
	    "0600 file, never stored); no option: show them" },
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
	{ "sla", ctl_cmd_sla, "[--json] [--limit N] [--watch [--interval SECONDS] [--count N]]",
	    "open cases, the nearest deadline first, with time left or overdue; --watch redraws "
	    "it every --interval seconds (default 5) until interrupted or --count frames" },
	{ "digest", ctl_cmd_digest, "[--html FILE] [--text FILE]",
	    "the open queue as the Digest letter shows it, now: plain text to standard output, "
	    "or the text and HTML versions to files" },
	{ "report", ctl_cmd_report, "[--since DATE] [--json]",
	    "per tier and urgency: cases, first response met %, median and p90 time to first "
	    "response, resolution met % (undecided cases are not counted as met or missed)" },
	{ "stats", ctl_cmd_stats, "[--since DATE|7d|24h] [--json]",
	    "messages tagged by urgency and category, degraded mail, acknowledgements sent and "
	    "skipped by reason, SLA met %, diagnoses by verdict, outbox backlog" },
	{ "store copy", ctl_cmd_store_copy, "FROM TO",
	    "copy every case, message, event, diagnosis and customer of the store FROM into the "
	    "empty store TO (each a Database value: an SQLite path or a PostgreSQL connection "
	    "string), checked by counts; all or nothing" },
	{ "diagnose", ctl_cmd_diagnose,
	    "[--smtp HOST[:PORT] [--security tls|starttls|none]] [--imap HOST[:PORT] "
	    "[--imap-security tls|starttls|none] [--imap-user USER]] [--user USER --password-file FILE] "
	    "[--from ADDRESS [--rcpt ADDRESS]] [--json]",
	    "probe a client's SMTP settings step by step (connect, TLS, certificate, AUTH, "
	    "MAIL FROM, RCPT TO; never DATA) and/or IMAP (login, Sent folder); "
	    "exit 0 when every protocol asked is ok, 1 problem found" },
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
