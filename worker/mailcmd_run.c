/*
 * mailcmd_run - staff commands by mail, carried out (see mailcmd_run.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "case_ops.h"
#include "log.h"
#include "mailcmd.h"
#include "mailcmd_run.h"
#include "xalloc.h"

struct pending {
	struct mailcmd_rec	*v;
	size_t			 n, cap;
};

static int
collect(const struct mailcmd_rec *m, void *arg)
{
	struct pending *p = arg;

	if (p->n == p->cap) {
		p->cap = p->cap ? 2 * p->cap : 8;
		p->v = xrealloc(p->v, p->cap * sizeof(*p->v));
	}
	p->v[p->n++] = *m;
	return 0;
}

/* One command on case *c (re-read after each step, which may change it). */
static enum case_op_rc
one_command(struct case_op *op, const struct mailcmd *cmd, const struct mailcmd_rec *m,
    const struct case_rec *c)
{
	switch (cmd->kind) {
	case MAILCMD_ASSIGN:
		return case_op_assign(op, c, strcmp(cmd->arg, "me") == 0 ? m->staff : cmd->arg);
	case MAILCMD_WAIT:
		return case_op_wait(op, c);
	case MAILCMD_REOPEN:
		return case_op_reopen(op, c);
	case MAILCMD_RESOLVE:
		return case_op_resolve(op, c, cmd->text, cmd->lesson, cmd->incident);
	case MAILCMD_URGENCY:
		return case_op_urgency(op, c, cmd->urgency);
	case MAILCMD_TIER:
		return case_op_tier(op, c, cmd->arg);
	case MAILCMD_NOTE:
		snprintf(op->said, sizeof(op->said), "HG-%lld: note recorded (staff only)", c->id);
		return CASE_OP_DONE;
	case MAILCMD_BAD:
		break;
	}
	snprintf(op->said, sizeof(op->said), "%s", cmd->error);
	return CASE_OP_REFUSED;
}

/* Carries out one staff mail's commands and queues the answer; -1 when the
 * store failed (rolled back: done again on a later pass). */
static int
run_one(struct ack_ctx *a, struct store *s, const struct mailcmd_rec *m, time_t now)
{
	struct mailcmd_list *l = xmalloc(sizeof(*l));
	struct case_rec c, *cp = NULL;
	struct outbox_rec o;
	struct case_op op;
	struct buf answer;
	enum store_rc rc;
	char err[512];
	int refused = 0, ret = -1;

	buf_init(&answer, sizeof(m->result) - 1);
	mailcmd_parse(m->commands, strlen(m->commands), l);
	memset(&op, 0, sizeof(op));
	op.cfg = ack_config(a);
	op.s = s;
	op.ack = a;
	op.now = now;
	if ((rc = store_begin(s)) != STORE_OK)
		goto out;
	rc = m->case_id > 0 ? store_case_get(s, m->case_id, &c) : STORE_NOTFOUND;
	if (rc == STORE_OK)
		cp = &c;
	else if (rc != STORE_NOTFOUND)
		goto fail;
	for (size_t i = 0; i < l->n; i++) {
		enum case_op_rc r;

		if (cp == NULL) {
			snprintf(op.said, sizeof(op.said), "case not found: keep [HG-n] in the subject, "
			    "or reply to a message of the case");
			r = CASE_OP_REFUSED;
		} else
			r = one_command(&op, &l->v[i], m, cp);
		if (r == CASE_OP_FAILED) {
			log_warnx("HG-%lld: commands from %s: %s", m->case_id, m->staff, op.said);
			rc = op.rc != STORE_OK ? op.rc : STORE_ERROR;
			goto fail;
		}
		refused += r == CASE_OP_REFUSED;
		buf_printf(&answer, "%s\n  %s%s\n", l->v[i].line, r == CASE_OP_REFUSED ? "not done: " : "",
		    op.said);
		/* the next command sees what this one did */
		if (cp != NULL && r == CASE_OP_DONE && (rc = store_case_get(s, cp->id, &c)) != STORE_OK)
			goto fail;
	}
	if (l->dropped)
		buf_printf(&answer, "(%zu more command lines not read: at most %d per mail)\n",
		    l->dropped, MAILCMD_MAX);
	if (m->staff[0] != '\0') {
		if (ack_command_answer(a, cp, m, buf_str(&answer), now, &o, err, sizeof(err)) != 0) {
			log_warnx("HG-%lld: the answer to %s's commands: %s", m->case_id, m->staff, err);
			rc = STORE_ERROR;
			goto fail;
		}
		rc = store_outbox_add(s, &o);
		free(o.content);
		if (rc != STORE_OK)
			goto fail;
	}
	if ((rc = store_mailcmd_done(s, m->id, now, buf_str(&answer))) == STORE_NOTFOUND) {
		/* another worker on the database carried them out meanwhile */
		store_rollback(s);
		ret = 0;
		goto out;
	}
	if (rc != STORE_OK || (rc = store_commit(s)) != STORE_OK)
		goto fail;
	log_info("HG-%lld: %zu command%s by mail from %s (login %s): %zu done, %d not", m->case_id,
	    l->n, l->n == 1 ? "" : "s", m->staff, m->login[0] ? m->login : "-", l->n - (size_t)refused,
	    refused);
	ret = 0;
	goto out;
fail:
	store_rollback(s);
	log_warnx("HG-%lld: commands by mail from %s not carried out yet: %s", m->case_id, m->staff,
	    store_strerror(rc));
out:
	buf_free(&answer);
	free(l);
	return ret;
}

int
mailcmd_run(struct ack_ctx *a, struct store *s, time_t now, int limit)
{
	struct pending p = { NULL, 0, 0 };
	int done = 0;

	if (store_mailcmd_pending(s, limit, collect, &p) != STORE_OK) {
		free(p.v);
		return -1;
	}
	for (size_t i = 0; i < p.n; i++) {
		if (run_one(a, s, &p.v[i], now) != 0) {
			free(p.v);
			return -1;
		}
		done++;
	}
	free(p.v);
	return done;
}
