/*
 * ctl_case - helpgatectl cases, case show | reply | assign | wait | resume |
 * reopen | resolve, and outbox.
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
#include "case_ops.h"
#include "xalloc.h"
#include "ctl.h"

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

int
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
		json_kv_string(&cs->out, "via", m->via);
		json_kv_string(&cs->out, "excerpt", m->excerpt);
		json_object_end(&cs->out);
		cs->count++;
		return 0;
	}
	printf("\n[%zu] ", ++cs->count);
	ctl_cell(m->direction, 5);
	int opened = cs->count == 1;
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
	if (strcmp(m->via, "mailbox") == 0)
		printf("\n    %s from the mailbox: the milter did not see it",
		    opened ? "opened" : "recorded");
	if (m->subject[0]) {
		printf("\n    Subject: ");
		ctl_put_text(stdout, m->subject, 200, NULL);
	}
	printf("\n    | ");
	ctl_put_text(stdout, m->excerpt, CTL_EXCERPT_CHARS, "    | ");
	fputc('\n', stdout);
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

int
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

/* ---- the diagnoses of a case (issue 5) ---- */

struct ctl_diagnoses {
	struct buf	out;
	int		json;
	size_t		count;
};

/* One diagnosis: the check list the worker stored (text) or its fields
 * with the report as the prober wrote it (JSON).  Never a password: the
 * store has none. */
static int
ctl_diagnosis_row(const struct diagnosis_rec *d, void *arg)
{
	struct ctl_diagnoses *dg = arg;
	char t[64];

	dg->count++;
	if (dg->json) {
		json_object_begin(&dg->out);
		json_kv_int(&dg->out, "id", d->id);
		json_kv_string(&dg->out, "protocol", d->protocol);
		ctl_json_time(&dg->out, "created", d->created);
		json_kv_string(&dg->out, "customer", d->customer);
		json_kv_string(&dg->out, "client", d->client);
		if (d->skipped[0]) {
			json_kv_string(&dg->out, "skipped", d->skipped);
			json_object_end(&dg->out);
			return 0;
		}
		json_kv_null(&dg->out, "skipped");
		json_kv_string(&dg->out, "host", d->host);
		json_kv_int(&dg->out, "port", d->port);
		json_kv_string(&dg->out, "security", d->security);
		json_kv_string(&dg->out, "source", d->source);
		json_kv_string(&dg->out, "verdict", d->verdict);
		json_kv_string(&dg->out, "hint", d->hint);
		if (d->alt_host[0]) {
			json_key(&dg->out, "alternative");
			json_object_begin(&dg->out);
			json_kv_string(&dg->out, "host", d->alt_host);
			json_kv_int(&dg->out, "port", d->alt_port);
			json_kv_string(&dg->out, "security", d->alt_security);
			json_kv_bool(&dg->out, "verified", d->alt_verified);
			json_object_end(&dg->out);
		} else {
			json_kv_null(&dg->out, "alternative");
		}
		json_kv_string(&dg->out, "provider", d->provider);
		if (d->incident)
			json_kv_int(&dg->out, "incident", d->incident);
		else
			json_kv_null(&dg->out, "incident");
		json_kv_string(&dg->out, "client_note", d->client_note);
		json_kv_int(&dg->out, "duration_ms", d->duration_ms);
		json_key(&dg->out, "report");
		/* the prober's own JSON, as stored by the worker */
		if (d->report_json && d->report_json[0] == '{' &&
		    d->report_json[strlen(d->report_json) - 1] == '}')
			buf_append_str(&dg->out, d->report_json);
		else
			buf_append_str(&dg->out, "null");
		json_kv_string(&dg->out, "report_text", d->report_text ? d->report_text : "");
		json_object_end(&dg->out);
		return 0;
	}
	printf("  %s  ", ctl_iso(d->created, t, sizeof(t)));
	ctl_put_text(stdout, d->protocol, 8, NULL);
	if (d->skipped[0]) {
		printf("  skipped: ");
		ctl_put_text(stdout, d->skipped, 64, NULL);
		fputc('\n', stdout);
		return 0;
	}
	printf("  ");
	ctl_put_text(stdout, d->host, 256, NULL);
	printf(":%d %s  (from the ", d->port, d->security);
	ctl_put_text(stdout, d->source, 32, NULL);
	printf(")  verdict ");
	ctl_put_text(stdout, d->verdict, 32, NULL);
	if (d->incident)
		printf("  incident #%lld", d->incident);
	if (d->client_note[0]) {
		printf("  client: ");
		ctl_put_text(stdout, d->client_note, 32, NULL);
	}
	printf("\n    ");
	ctl_put_text(stdout, d->report_text ? d->report_text : "", 64 * 1024, "    ");
	fputc('\n', stdout);
	return 0;
}

struct ctl_commands {
	struct buf	out;
	int		json;
	size_t		count;
};

/* One staff mail's commands: who (the login the MTA authenticated), when,
 * and what became of each line. */
static int
ctl_command_row(const struct mailcmd_rec *m, void *arg)
{
	struct ctl_commands *cm = arg;
	char t[64], t2[64];

	cm->count++;
	if (cm->json) {
		json_object_begin(&cm->out);
		json_kv_int(&cm->out, "id", m->id);
		json_kv_string(&cm->out, "staff", m->staff);
		json_kv_string(&cm->out, "login", m->login);
		json_kv_string(&cm->out, "message_id", m->message_id);
		ctl_json_time(&cm->out, "received", m->received);
		ctl_json_time(&cm->out, "done", m->done);
		json_kv_string(&cm->out, "commands", m->commands);
		json_kv_string(&cm->out, "result", m->result);
		json_object_end(&cm->out);
		return 0;
	}
	printf("  %s  ", ctl_iso(m->received, t, sizeof(t)));
	ctl_put_text(stdout, m->staff, 80, NULL);
	printf(" (login ");
	ctl_put_text(stdout, m->login[0] ? m->login : "-", 80, NULL);
	printf(")  %s%s\n    ", m->done ? "done " : "pending", m->done ? ctl_iso(m->done, t2,
	    sizeof(t2)) : "");
	ctl_put_text(stdout, m->done ? m->result : m->commands, 8192, "    ");
	fputc('\n', stdout);
	return 0;
}

int
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
	struct ctl_diagnoses dg;
	memset(&dg, 0, sizeof(dg));
	dg.json = json;
	buf_init(&dg.out, CTL_JSON_MAX);
	if (json)
		json_array_begin(&dg.out);
	else
		printf("\nDiagnosis:\n");
	rc = store_diagnosis_list(s, id, ctl_diagnosis_row, &dg);
	if (rc != STORE_OK) {
		buf_free(&cs.out);
		buf_free(&ob.out);
		buf_free(&dg.out);
		return ctl_store_failed(ctl, "reading the case's diagnoses", rc);
	}
	if (!json && dg.count == 0)
		printf("none\n");
	struct ctl_commands cm;
	memset(&cm, 0, sizeof(cm));
	cm.json = json;
	buf_init(&cm.out, CTL_JSON_MAX);
	if (json)
		json_array_begin(&cm.out);
	else
		printf("\nCommands by mail:\n");
	rc = store_mailcmd_list(s, id, ctl_command_row, &cm);
	if (rc != STORE_OK) {
		buf_free(&cs.out);
		buf_free(&ob.out);
		buf_free(&dg.out);
		buf_free(&cm.out);
		return ctl_store_failed(ctl, "reading the case's commands", rc);
	}
	if (!json && cm.count == 0)
		printf("none\n");
	if (json) {
		json_array_end(&cs.out);
		json_array_end(&ob.out);
		json_array_end(&dg.out);
		json_array_end(&cm.out);
		json_key(&cs.out, "outbox");
		buf_append(&cs.out, ob.out.data, ob.out.len);
		json_key(&cs.out, "diagnoses");
		buf_append(&cs.out, dg.out.data, dg.out.len);
		json_key(&cs.out, "commands");
		buf_append(&cs.out, cm.out.data, cm.out.len);
		json_object_end(&cs.out);
		buf_append_char(&cs.out, '\n');
		if (ctl_emit(&cs.out) != 0)
			ret = CTL_EXIT_FAIL;
	} else if (ob.count == 0) {
		printf("nothing\n");
	}
	buf_free(&cs.out);
	buf_free(&ob.out);
	buf_free(&dg.out);
	buf_free(&cm.out);
	return ret;
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

int
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

/* A case_ops step on the case named by ref, in one transaction: its line
 * printed when done, its reason as the error when refused. */
static int
ctl_case_step(struct ctl *ctl, const struct ctl_command *cmd, const char *ref,
    struct ack_ctx *ack, enum case_op_rc (*step)(struct case_op *, const struct case_rec *,
    const void *), const void *arg, const char *what)
{
	struct case_op op;
	struct case_rec c;
	struct store *s;
	enum case_op_rc r;
	int ex;

	if ((ex = ctl_case_begin(ctl, cmd, ref, &s, &c)) != CTL_EXIT_OK)
		return ex;
	memset(&op, 0, sizeof(op));
	op.cfg = ctl->cfg;
	op.s = s;
	op.ack = ack;
	op.now = clock_now();
	if ((r = step(&op, &c, arg)) != CASE_OP_DONE) {
		store_rollback(s);
		if (r == CASE_OP_FAILED && op.rc != STORE_OK)
			return ctl_store_failed(ctl, what, op.rc);
		ctl_err("%s", op.said);
		return CTL_EXIT_FAIL;
	}
	if ((ex = ctl_case_commit(ctl, s, STORE_OK, what)) != CTL_EXIT_OK)
		return ex;
	printf("%s\n", op.said);
	return CTL_EXIT_OK;
}

static enum case_op_rc
step_assign(struct case_op *op, const struct case_rec *c, const void *arg)
{
	return case_op_assign(op, c, arg);
}

static enum case_op_rc
step_wait(struct case_op *op, const struct case_rec *c, const void *arg)
{
	(void)arg;
	return case_op_wait(op, c);
}

static enum case_op_rc
step_reopen(struct case_op *op, const struct case_rec *c, const void *arg)
{
	(void)arg;
	return case_op_reopen(op, c);
}

struct resolve_args {
	const char	*cause, *lesson;
	int		 incident;
};

static enum case_op_rc
step_resolve(struct case_op *op, const struct case_rec *c, const void *arg)
{
	const struct resolve_args *ra = arg;

	return case_op_resolve(op, c, ra->cause, ra->lesson, ra->incident);
}

int
ctl_cmd_case_assign(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv)
{
	char *pos[2];
	int r;

	if ((r = ctl_parse(cmd, argc, argv, NULL, pos, 2, 2, NULL)) != 0)
		return r == CTL_HELP ? CTL_EXIT_OK : r;
	config_normalize_address(pos[1]);
	if (strchr(pos[1], '@') == NULL || strpbrk(pos[1], " \t<>\"") != NULL)
		return ctl_usage_error(cmd, "\"%s\" is not a mail address", pos[1]);
	return ctl_case_step(ctl, cmd, pos[0], NULL, step_assign, pos[1], "assigning");
}

int
ctl_cmd_case_wait(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv)
{
	char *pos[1];
	int r;

	if ((r = ctl_parse(cmd, argc, argv, NULL, pos, 1, 1, NULL)) != 0)
		return r == CTL_HELP ? CTL_EXIT_OK : r;
	return ctl_case_step(ctl, cmd, pos[0], NULL, step_wait, NULL, "pausing the case");
}

int
ctl_cmd_case_reopen(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv)
{
	char *pos[1];
	int r;

	if ((r = ctl_parse(cmd, argc, argv, NULL, pos, 1, 1, NULL)) != 0)
		return r == CTL_HELP ? CTL_EXIT_OK : r;
	return ctl_case_step(ctl, cmd, pos[0], NULL, step_reopen, NULL, "reopening");
}

int
ctl_cmd_case_resolve(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv)
{
	struct resolve_args ra = { NULL, NULL, 0 };
	int quiet = 0, r;
	const struct ctl_opt opts[] = {
		{ "--cause", &ra.cause, NULL }, { "--lesson", &ra.lesson, NULL },
		{ "--incident", NULL, &ra.incident }, { "--no-message", NULL, &quiet },
		{ NULL, NULL, NULL },
	};
	struct ack_ctx *a = NULL;
	char *pos[1], err[512];

	if ((r = ctl_parse(cmd, argc, argv, opts, pos, 1, 1, NULL)) != 0)
		return r == CTL_HELP ? CTL_EXIT_OK : r;
	if (ra.cause == NULL || ra.lesson == NULL)
		return ctl_usage_error(cmd, "--cause and --lesson are required: what broke, and "
		    "what we learn from it");
	if (ctl_config(ctl) == NULL)
		return CTL_EXIT_FAIL;
	if (!quiet && (a = ack_ctx_new(ctl->cfg, err, sizeof(err))) != NULL &&
	    ack_load_seal(a, err, sizeof(err)) != 0)
		ctl_err("warning: %s: the message goes out unsealed", err);
	if (!quiet && a == NULL) {
		ctl_err("%s", err);
		return CTL_EXIT_FAIL;
	}
	r = ctl_case_step(ctl, cmd, pos[0], a, step_resolve, &ra, "resolving");
	ack_ctx_free(a);
	return r;
}

/* ---- sla ---- */

