/*
 * store_driver - what a database backend gives store.c.
 *
 * store.c holds every statement once (its SQL, with a PostgreSQL variant
 * where the dialects differ) and every function of store.h once; a driver
 * only opens a connection, migrates its own schema, prepares, binds, steps
 * and reads columns.  store_sqlite.c and store_pg.c are the two drivers;
 * store_open() picks one from the Database value (a path means SQLite, a
 * postgresql:// URI or a libpq keyword string means PostgreSQL).
 *
 * Codes: every driver call that can fail returns an int in one space:
 * STORE_OK, a store_rc error (the message in s->errmsg), or, from step,
 * STEP_ROW (a row is there to read) / STEP_DONE (no more rows).
 */
#ifndef HG_STORE_DRIVER_H
#define HG_STORE_DRIVER_H

#include <stddef.h>

#include "store.h"

#define STEP_ROW	100
#define STEP_DONE	101

/* What a prepared statement of either driver starts with. */
struct store_stmt {
	const struct store_driver *drv;
};

struct store_driver {
	const char *name;		/* "sqlite", "postgresql" */
	int	(*open)(struct store *s, const char *target, long timeout_ms,
		    char *err, size_t errlen);
	void	(*close)(struct store *s);
	/* Called before each statement: the SQLite driver checks that its file
	 * is still the database, the PostgreSQL one reconnects a lost
	 * connection when no transaction is open.  0 or a store_rc. */
	int	(*check)(struct store *s, int force);
	/* sql is the statement in this driver's dialect ("?N" parameters). */
	int	(*prepare)(struct store *s, const char *sql, struct store_stmt **out);
	void	(*finalize)(struct store_stmt *st);
	int	(*bind_int)(struct store_stmt *st, int idx, long long v);
	/* The text must stay unchanged until reset. */
	int	(*bind_text)(struct store_stmt *st, int idx, const char *v, size_t len);
	int	(*step)(struct store *s, struct store_stmt *st);
	long long (*col_int)(struct store_stmt *st, int col);
	const char *(*col_text)(struct store_stmt *st, int col);	/* NULL: SQL NULL */
	int	(*col_null)(struct store_stmt *st, int col);
	int	(*col_count)(struct store_stmt *st);
	/* Rows changed by the statement that just ran to STEP_DONE. */
	int	(*changes)(struct store *s, struct store_stmt *st);
	void	(*reset)(struct store_stmt *st);
	/* Transactions: write (serialised with every other writer, like
	 * SQLite's BEGIN IMMEDIATE) or read (one consistent view). */
	int	(*begin)(struct store *s, int write);
	int	(*commit)(struct store *s);
	void	(*rollback)(struct store *s);
	int	(*in_transaction)(struct store *s);
};

extern const struct store_driver store_sqlite_driver;
extern const struct store_driver store_pg_driver;

/* The part of struct store a driver may use. */
struct store_common {
	const struct store_driver *drv;
	void		*conn;		/* the driver's own connection state */
	char		 errmsg[512];
};

/* The driver's state of s (store.c owns struct store). */
struct store_common *store_common(struct store *s);

/* Sets s's error message (printf-style); returns rc. */
int	store_seterr(struct store *s, int rc, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

#endif
