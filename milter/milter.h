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

/* A degraded support message, as milter_spool.c writes it for the worker
 * (format there).  raw: the kept header block and body, not NUL-terminated. */
struct milter_spool_item {
	time_t		 received;
	const char	*queue_id;
	const char	*envelope_from;
	const char	*support_address;
	int		 truncated;
	const char	*raw;
	size_t		 raw_len;
};

/* Writes it atomically into dir (created if missing, one level); on success
 * the file's name (without dir) goes to name.  -1 with errno on failure. */
int	milter_spool_write(const char *dir, const struct milter_spool_item *it,
    char *name, size_t namelen);

#endif
