/*
 * ctl - what the helpgatectl command modules share: the command table's
 * types, option parsing, the config and store opened on first use, and the
 * output helpers that make text from mail safe for a terminal.
 *
 * One ctl_*.c file per group of commands (customer, case, sla, diagnose);
 * helpgatectl.c holds the table of commands and main().
 */
#ifndef HG_CTL_H
#define HG_CTL_H

#include <stdio.h>

#include "buf.h"
#include "config.h"
#include "store.h"

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

/* ---- shared helpers (ctl_util.c) ---- */

__attribute__((format(printf, 1, 2)))
void ctl_err(const char *fmt, ...);
struct config *ctl_config(struct ctl *ctl);
struct store *ctl_store(struct ctl *ctl);
int ctl_store_failed(struct ctl *ctl, const char *what, enum store_rc rc);
void ctl_command_usage(FILE *fp, const struct ctl_command *cmd);
__attribute__((format(printf, 2, 3)))
int ctl_usage_error(const struct ctl_command *cmd, const char *fmt, ...);
int ctl_parse(const struct ctl_command *cmd, int argc, char **argv, const struct ctl_opt *opts,
    char **pos, int min, int max, int *npos);
int ctl_parse_case_ref(const char *s, long long *id);
int ctl_parse_days(const char *s, long *days);
int ctl_customer_address(const char *in, char *out, size_t outlen, const char **why);
void ctl_tier_names(const struct config *cfg, struct buf *out);
const struct tier_policy *ctl_tier(const struct config *cfg, const char *name);
const char *ctl_iso(long long t, char *out, size_t outlen);
const char *ctl_short_time(long long t, char *out, size_t outlen);
void ctl_json_time(struct buf *b, const char *name, long long t);
size_t ctl_utf8_char(const unsigned char *p, unsigned long *cp, int *valid);
size_t ctl_text_chars(const char *s);
size_t ctl_put_text(FILE *fp, const char *s, size_t max, const char *indent);
void ctl_cell(const char *s, size_t width);
void ctl_urgency_cell(const struct ctl *ctl, int urgency);
size_t ctl_columns(void);
int ctl_emit(struct buf *b);
int ctl_parse_limit(const struct ctl_command *cmd, const char *arg, long *limit);

/* "1h05m", "-2d03h": time left or taken (ctl_sla.c) */
void ctl_span(long long secs, char *out, size_t outlen);

/* ---- command handlers ---- */

int ctl_cmd_customer_add(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv);
int ctl_cmd_customer_import(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv);
int ctl_cmd_customer_list(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv);
int ctl_cmd_customer_remove(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv);
int ctl_cmd_customer_set(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv);
int ctl_cmd_cases(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv);
int ctl_cmd_outbox(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv);
int ctl_cmd_case_show(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv);
int ctl_cmd_case_reply(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv);
int ctl_cmd_case_assign(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv);
int ctl_cmd_case_wait(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv);
int ctl_cmd_case_reopen(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv);
int ctl_cmd_case_resolve(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv);
int ctl_cmd_sla_due(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv);
int ctl_cmd_sla(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv);
int ctl_cmd_sla_explain(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv);
int ctl_cmd_report(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv);
int ctl_cmd_digest(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv);
int ctl_cmd_diagnose(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv);
int ctl_cmd_stats(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv);
int ctl_cmd_store_copy(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv);
int ctl_cmd_config_check(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv);

#endif
