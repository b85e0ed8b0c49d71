/*
 * helpgate-milter internals shared by milter_main.c (the process: options,
 * privileges, reload) and milter_filter.c (the libmilter callbacks).
 */
#ifndef HG_MILTER_H
#define HG_MILTER_H

#include <libmilter/mfapi.h>

#include "classify.h"
#include "config.h"

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
void	milter_store_shutdown(void);

#endif
