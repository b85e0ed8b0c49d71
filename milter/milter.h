/*
 * helpgate-milter internals shared by milter_main.c (the process: options,
 * privileges, reload) and milter_filter.c (the libmilter callbacks).
 */
#ifndef HG_MILTER_H
#define HG_MILTER_H

#include <libmilter/mfapi.h>
#include <stddef.h>
#include <time.h>

#include "classify.h"
#include "config.h"
#include "seal.h"
#include "spool.h"

/* What a connection works with: taken by reference when the connection
 * starts, so that a reload never changes the rules under a message. */
struct milter_snapshot {
	struct config		*cfg;
	struct classify_rules	*rules;
	int			 refs;
};

struct milter_snapshot *milter_snapshot_get(void);		/* new reference */
void	milter_snapshot_put(struct milter_snapshot *snap);	/* accepts NULL */

/* The callbacks, with the flags they need; registered by main. */
extern struct smfiDesc milter_filter_desc;

/* Opens the store for the filter; retried lazily from the filter when it
 * fails (a missing database directory must not stop mail). */
void	milter_store_init(const char *path, long timeout_ms);
/* Reads (or makes) SealKeyFile; called once running as UserID, and again
 * from the filter (at most once a minute) while it fails. */
void	milter_seal_init(const char *path);
void	milter_store_shutdown(void);

/*
 * A degraded support message (tagged "degraded", delivered, but no case
 * opened) is spooled for the worker in the shared format (shared/spool.h).
 * The worker, not the milter, replays the spool: it already runs a loop
 * outside the mail path, so a replay never delays a message, and while it
 * replays the milter keeps taking new mail.
 */

#endif
