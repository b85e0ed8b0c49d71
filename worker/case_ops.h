/*
 * case_ops - the steps of a case's life, one function each, shared by
 * `helpgatectl case ...` and the commands staff write at the top of a mail
 * (mailcmd_run.c): the same rules whichever way a person takes the step.
 *
 * Each runs inside the caller's transaction on case c as it was read in
 * it, and returns CASE_OP_DONE with one line for a person in op->said
 * ("assigned to ann@example.com"), CASE_OP_REFUSED with why in op->said
 * ("HG-7 is resolved, not open"; nothing written), or CASE_OP_FAILED when
 * the store failed (op->rc) or a letter could not be made (op->said): the
 * caller rolls back.
 */
#ifndef HG_CASE_OPS_H
#define HG_CASE_OPS_H

#include "ack.h"
#include "config.h"
#include "store.h"

enum case_op_rc { CASE_OP_DONE = 0, CASE_OP_REFUSED = 1, CASE_OP_FAILED = -1 };

struct case_op {
	const struct config	*cfg;
	struct store		*s;
	struct ack_ctx		*ack;	/* resolve's letter to the client; NULL: none */
	long long		 now;
	char			 said[512];
	enum store_rc		 rc;
};

enum case_op_rc case_op_assign(struct case_op *op, const struct case_rec *c, const char *addr);
/* The resolution clock stops until the client writes (or the case reopens). */
enum case_op_rc case_op_wait(struct case_op *op, const struct case_rec *c);
enum case_op_rc case_op_reopen(struct case_op *op, const struct case_rec *c);
/* cause and lesson are required (support's work on mistakes); incident puts
 * the customer under incident watch; with op->ack the client is asked to
 * confirm that it works (close-the-loop letter). */
enum case_op_rc case_op_resolve(struct case_op *op, const struct case_rec *c, const char *cause,
	    const char *lesson, int incident);
/* A person's judgement over the classifier's: the deadlines of the new
 * urgency from the case's start, and its pending timers moved with them. */
enum case_op_rc case_op_urgency(struct case_op *op, const struct case_rec *c, int urgency);
/* The client's customer record gets tier (kept for their next cases). */
enum case_op_rc case_op_tier(struct case_op *op, const struct case_rec *c, const char *tier);

#endif
