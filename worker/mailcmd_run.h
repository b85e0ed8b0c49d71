/*
 * mailcmd_run - carries out the commands staff wrote at the top of a mail
 * (recorded by the milter: store.h mail_commands) through case_ops.h, the
 * same steps as helpgatectl case, and answers the staff member in their
 * thread: what became of each command, or its exact error.
 *
 * One transaction per staff mail holds the steps, the record of what
 * became of them and the answer in the outbox: a crash redoes all of it or
 * nothing, and a command is never carried out twice.
 */
#ifndef HG_MAILCMD_RUN_H
#define HG_MAILCMD_RUN_H

#include <time.h>

#include "ack.h"
#include "store.h"

/* At most limit staff mails; returns how many, -1 on a store failure. */
int	mailcmd_run(struct ack_ctx *a, struct store *s, time_t now, int limit);

#endif
