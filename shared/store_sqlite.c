/*
 * store_sqlite - the SQLite driver of the store (store_driver.h).
 *
 * One sqlite3 connection per store handle (opened SQLITE_OPEN_NOMUTEX: the
 * caller serialises, see store.h).  The
 * database runs in WAL mode so that helpgatectl and the worker can read
 * while the milter writes; synchronous=NORMAL keeps a commit to one write
 * of the WAL (durable against a process crash, and against power loss up to
 * the last checkpoint), which is what lets the milter record a message in
 * tens of microseconds.
 *
 * Statements are store.c's; this file prepares, binds and steps them.  Only
 * DDL and PRAGMAs without data go through sqlite3_exec().
 *
 * Schema: store_migrations[] below, one row per version; PRAGMA user_version
 * says which have been applied.  store_open() applies the missing ones in a
 * single BEGIN IMMEDIATE transaction and refuses a database that is newer
 * than this code.
 */
#include "store.h"
#include "store_driver.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "config.h"
#include "xalloc.h"

/* ---- schema ---- */

static const char store_schema_v1[] =
	"CREATE TABLE customers ("
	"  address     TEXT PRIMARY KEY,"
	"  tier        TEXT NOT NULL,"
	"  watch_until INTEGER NOT NULL DEFAULT 0,"
	"  created     INTEGER NOT NULL"
	");"
	"CREATE TABLE cases ("
	"  id                INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  created           INTEGER NOT NULL,"
	"  updated           INTEGER NOT NULL,"
	"  status            TEXT NOT NULL DEFAULT 'open'"
	"                    CHECK (status IN ('open', 'waiting', 'resolved')),"
	"  client            TEXT NOT NULL DEFAULT '',"
	"  support_address   TEXT NOT NULL DEFAULT '',"
	"  subject           TEXT NOT NULL DEFAULT '',"
	"  urgency           INTEGER NOT NULL CHECK (urgency BETWEEN 1 AND 4),"
	"  tier              TEXT NOT NULL DEFAULT '',"
	"  watch             INTEGER NOT NULL DEFAULT 0,"
	"  category          TEXT NOT NULL DEFAULT '',"
	"  lang              TEXT NOT NULL DEFAULT '',"
	"  reasons           TEXT NOT NULL DEFAULT '',"
	"  first_due         INTEGER NOT NULL DEFAULT 0,"
	"  resolve_due       INTEGER NOT NULL DEFAULT 0,"
	"  first_response_at INTEGER NOT NULL DEFAULT 0,"
	"  resolved_at       INTEGER NOT NULL DEFAULT 0,"
	"  assignee          TEXT NOT NULL DEFAULT ''"
	");"
	"CREATE INDEX cases_status_due ON cases (status, first_due);"
	"CREATE INDEX cases_client ON cases (client);"
	"CREATE TABLE messages ("
	"  id          INTEGER PRIMARY KEY,"
	"  case_id     INTEGER NOT NULL REFERENCES cases (id),"
	"  message_id  TEXT NOT NULL DEFAULT '',"
	"  direction   TEXT NOT NULL,"
	"  sender      TEXT NOT NULL DEFAULT '',"
	"  received    INTEGER NOT NULL DEFAULT 0,"
	"  date_header TEXT NOT NULL DEFAULT '',"
	"  subject     TEXT NOT NULL DEFAULT '',"
	"  queue_id    TEXT NOT NULL DEFAULT '',"
	"  urgency     INTEGER NOT NULL DEFAULT 4,"
	"  category    TEXT NOT NULL DEFAULT '',"
	"  auto_reason TEXT NOT NULL DEFAULT '',"
	"  excerpt     TEXT NOT NULL DEFAULT ''"
	");"
	"CREATE UNIQUE INDEX messages_message_id ON messages (message_id)"
	"  WHERE message_id <> '';"
	"CREATE INDEX messages_case_received ON messages (case_id, received);";

/* Schema version N is reached by running rows 1..N in order.  To change the
 * schema, append a row; never edit a row that has shipped. */
/* v2: the worker's acknowledgements.  Messages that predate the worker are
 * marked decided, so that an upgrade never acknowledges old cases. */
static const char store_schema_v2[] =
	"ALTER TABLE messages ADD COLUMN refs TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE messages ADD COLUMN ack TEXT NOT NULL DEFAULT '';"
	"UPDATE messages SET ack = 'skip:predates-worker';"
	"CREATE INDEX messages_undecided ON messages (id) WHERE ack = '';"
	"CREATE TABLE outbox ("
	"  id            INTEGER PRIMARY KEY,"
	"  case_id       INTEGER NOT NULL DEFAULT 0,"
	"  kind          TEXT NOT NULL,"
	"  recipient     TEXT NOT NULL,"
	"  envelope_from TEXT NOT NULL DEFAULT '',"
	"  message_id    TEXT NOT NULL,"
	"  content       TEXT NOT NULL,"
	"  state         TEXT NOT NULL DEFAULT 'pending'"
	"                CHECK (state IN ('pending', 'sending', 'sent', 'failed')),"
	"  attempts      INTEGER NOT NULL DEFAULT 0,"
	"  next_attempt  INTEGER NOT NULL DEFAULT 0,"
	"  created       INTEGER NOT NULL,"
	"  sent_at       INTEGER NOT NULL DEFAULT 0,"
	"  relay_seen    INTEGER NOT NULL DEFAULT 0,"
	"  last_error    TEXT NOT NULL DEFAULT ''"
	");"
	"CREATE UNIQUE INDEX outbox_message_id ON outbox (message_id);"
	"CREATE UNIQUE INDEX outbox_one_ack ON outbox (case_id) WHERE kind = 'ack';"
	"CREATE INDEX outbox_due ON outbox (next_attempt) WHERE state IN ('pending', 'sending');"
	"CREATE INDEX outbox_acks_to ON outbox (recipient, created) WHERE kind = 'ack';"
	"CREATE INDEX outbox_case ON outbox (case_id);";

/* v3: SLA timers.  Each warning, breach and escalation is a row that fires
 * once; the partial index holds only pending ones, so the timer pass reads
 * what is due and nothing else. */
static const char store_schema_v3[] =
	"ALTER TABLE cases ADD COLUMN paused_at INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE cases ADD COLUMN paused_total INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE cases ADD COLUMN cause TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE cases ADD COLUMN lesson TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE cases ADD COLUMN incident INTEGER NOT NULL DEFAULT 0;"
	"CREATE TABLE events ("
	"  id       INTEGER PRIMARY KEY,"
	"  case_id  INTEGER NOT NULL REFERENCES cases (id),"
	"  kind     TEXT NOT NULL,"
	"  due      INTEGER NOT NULL,"
	"  fired    INTEGER NOT NULL DEFAULT 0,"
	"  note     TEXT NOT NULL DEFAULT '',"
	"  UNIQUE (case_id, kind)"
	");"
	"CREATE INDEX events_pending ON events (due) WHERE fired = 0;"
	/* No query reads these two (sla walks cases_next_due); each cost page
	 * writes on every case the milter opens. */
	"DROP INDEX IF EXISTS cases_status_due;"
	"DROP INDEX IF EXISTS cases_client;"
	"CREATE INDEX cases_next_due ON cases"
	"  ((CASE WHEN first_response_at = 0 THEN first_due ELSE resolve_due END))"
	"  WHERE status <> 'resolved';"
	"CREATE TABLE pauses ("
	"  case_id  INTEGER NOT NULL REFERENCES cases (id),"
	"  start    INTEGER NOT NULL,"
	"  end      INTEGER NOT NULL"
	");"
	"CREATE INDEX pauses_case ON pauses (case_id);";

/* v4: the mail-settings diagnosis (issue 5).  customer_mail holds a
 * customer's mail client settings beside the customer row (a separate table:
 * store_customer_put's INSERT OR REPLACE would wipe extra columns); removing
 * the customer removes them (a REPLACE does not fire the trigger).  One
 * diagnoses row per case and protocol, a skip included, so "not diagnosed
 * yet" is a NOT EXISTS probe; outgoing-mail cases that predate the worker's
 * diagnosis are marked skipped, as v2 did for acknowledgements. */
static const char store_schema_v4[] =
	"CREATE TABLE customer_mail ("
	"  address            TEXT PRIMARY KEY,"
	"  smtp_host          TEXT NOT NULL DEFAULT '',"
	"  smtp_port          INTEGER NOT NULL DEFAULT 0,"
	"  smtp_security      TEXT NOT NULL DEFAULT '',"
	"  smtp_user          TEXT NOT NULL DEFAULT '',"
	"  smtp_password_file TEXT NOT NULL DEFAULT '',"
	"  imap_host          TEXT NOT NULL DEFAULT '',"
	"  imap_port          INTEGER NOT NULL DEFAULT 0,"
	"  imap_security      TEXT NOT NULL DEFAULT '',"
	"  imap_user          TEXT NOT NULL DEFAULT '',"
	"  imap_password_file TEXT NOT NULL DEFAULT '',"
	"  updated            INTEGER NOT NULL DEFAULT 0"
	");"
	"CREATE TRIGGER customer_mail_follows AFTER DELETE ON customers BEGIN"
	"  DELETE FROM customer_mail WHERE address = old.address;"
	"END;"
	"CREATE TABLE diagnoses ("
	"  id           INTEGER PRIMARY KEY,"
	"  case_id      INTEGER NOT NULL REFERENCES cases (id),"
	"  customer     TEXT NOT NULL DEFAULT '',"
	"  client       TEXT NOT NULL DEFAULT '',"
	"  created      INTEGER NOT NULL,"
	"  protocol     TEXT NOT NULL DEFAULT 'smtp',"
	"  host         TEXT NOT NULL DEFAULT '',"
	"  port         INTEGER NOT NULL DEFAULT 0,"
	"  security     TEXT NOT NULL DEFAULT '',"
	"  source       TEXT NOT NULL DEFAULT '',"
	"  skipped      TEXT NOT NULL DEFAULT '',"
	"  verdict      TEXT NOT NULL DEFAULT '',"
	"  hint         TEXT NOT NULL DEFAULT '',"
	"  alt_host     TEXT NOT NULL DEFAULT '',"
	"  alt_port     INTEGER NOT NULL DEFAULT 0,"
	"  alt_security TEXT NOT NULL DEFAULT '',"
	"  alt_verified INTEGER NOT NULL DEFAULT 0,"
	"  provider     TEXT NOT NULL DEFAULT '',"
	"  incident     INTEGER NOT NULL DEFAULT 0,"
	"  client_note  TEXT NOT NULL DEFAULT '',"
	"  duration_ms  INTEGER NOT NULL DEFAULT 0,"
	"  report_json  TEXT NOT NULL DEFAULT '',"
	"  report_text  TEXT NOT NULL DEFAULT ''"
	");"
	"CREATE UNIQUE INDEX diagnoses_case ON diagnoses (case_id, protocol);"
	/* the last hour of one customer (DiagnosePerCustomerPerHour) */
	"CREATE INDEX diagnoses_customer_recent ON diagnoses (customer, created)"
	"  WHERE skipped = '';"
	/* the same provider failing the same way within an hour (incidents) */
	"CREATE INDEX diagnoses_provider_verdict ON diagnoses (provider, verdict, created)"
	"  WHERE skipped = '';"
	"CREATE INDEX cases_outgoing ON cases (id) WHERE category = 'outgoing-mail';"
	"INSERT INTO diagnoses (case_id, created, protocol, skipped)"
	"  SELECT id, 0, 'smtp', 'predates-diagnosis' FROM cases WHERE category = 'outgoing-mail';";

/* v5: who may be answered (authres.h), and the caps a sender cannot pass
 * by varying its address: acknowledgements per hour in all, P1 notices. */
static const char store_schema_v5[] =
	"ALTER TABLE messages ADD COLUMN sender_auth TEXT NOT NULL DEFAULT '';"
	"CREATE INDEX outbox_acks_recent ON outbox (created) WHERE kind = 'ack';"
	"CREATE INDEX outbox_notices_recent ON outbox (created) WHERE kind = 'notice';";

/* v6: the support mailbox the worker reconciles (issue 14).  messages.via
 * says how a message reached the store when the milter did not record it
 * ("mailbox"); mailbox_seen holds what a mailbox pass already read, keyed
 * by the Maildir file's unique part (or "uidvalidity/uid" for IMAP). */
static const char store_schema_v6[] =
	"ALTER TABLE messages ADD COLUMN via TEXT NOT NULL DEFAULT '';"
	"CREATE TABLE mailbox_seen ("
	"  mailbox TEXT NOT NULL,"
	"  key TEXT NOT NULL,"
	"  seen_at INTEGER NOT NULL,"
	"  PRIMARY KEY (mailbox, key)"
	") WITHOUT ROWID;";

/* v7: staff commands by mail (issue 15), recorded by the milter and
 * carried out by the worker; a message the MTA delivers twice is one row. */
static const char store_schema_v7[] =
	"CREATE TABLE mail_commands ("
	"  id         INTEGER PRIMARY KEY,"
	"  case_id    INTEGER NOT NULL DEFAULT 0,"
	"  staff      TEXT NOT NULL,"
	"  login      TEXT NOT NULL DEFAULT '',"
	"  message_id TEXT NOT NULL DEFAULT '',"
	"  subject    TEXT NOT NULL DEFAULT '',"
	"  commands   TEXT NOT NULL,"
	"  received   INTEGER NOT NULL,"
	"  done       INTEGER NOT NULL DEFAULT 0,"
	"  result     TEXT NOT NULL DEFAULT ''"
	");"
	"CREATE UNIQUE INDEX mail_commands_message ON mail_commands (message_id)"
	"  WHERE message_id != '';"
	"CREATE INDEX mail_commands_pending ON mail_commands (id) WHERE done = 0;"
	"CREATE INDEX mail_commands_case ON mail_commands (case_id, id);";

/* v8: leases on work that several workers share (store_claim). */
static const char store_schema_v8[] =
	"CREATE TABLE work_claims ("
	"  what   TEXT NOT NULL,"
	"  key    INTEGER NOT NULL,"
	"  holder TEXT NOT NULL,"
	"  until  INTEGER NOT NULL,"
	"  PRIMARY KEY (what, key)"
	");";

static const struct {
	int		 version;
	const char	*sql;
} store_migrations[] = {
	{ 1, store_schema_v1 },
	{ 2, store_schema_v2 },
	{ 3, store_schema_v3 },
	{ 4, store_schema_v4 },
	{ 5, store_schema_v5 },
	{ 6, store_schema_v6 },
	{ 7, store_schema_v7 },
	{ 8, store_schema_v8 },
};

#define STORE_SCHEMA_VERSION \
	((int)(sizeof(store_migrations) / sizeof(store_migrations[0])))


struct sqlite_conn {
	sqlite3		*db;
	time_t		 file_checked;	/* last sqlite_check_file() */
	int		 broken;	/* the file went away or lost its header: only
					 * rollback and close are left (see sqlite_check_file) */
};

struct sqlite_stmt {
	struct store_stmt	 base;
	sqlite3_stmt		*st;
	sqlite3			*db;
};

static struct sqlite_conn *
conn_of(struct store *s)
{
	return store_common(s)->conn;
}

static sqlite3_stmt *
raw(struct store_stmt *st)
{
	return ((struct sqlite_stmt *)st)->st;
}

/* Maps an SQLite result code to a store_rc and remembers sqlite's message
 * for store_errmsg().  Call before resetting the statement: the message
 * belongs to the last call on the connection. */
static int
sqlite_fail(struct store *s, int rc)
{
	sqlite3 *db = conn_of(s)->db;
	int ext = sqlite3_extended_errcode(db);

	store_seterr(s, 0, "%s", sqlite3_errmsg(db));
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return STORE_BUSY;
	case SQLITE_CONSTRAINT:
		if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
			return STORE_EXISTS;
		return STORE_ERROR;
	default:
		return STORE_ERROR;
	}
}

/*
 * Is the file at the database's path still the database this handle writes
 * to, and does it still look like one?  SQLite keeps writing to a database
 * file that was deleted (or renamed away) under an open handle: everything
 * written afterwards vanishes with the last close, and a process that opens
 * the path later sees another database.  And a handle whose pages are cached
 * does not notice that the file's header was overwritten until much later.
 * Both are checked here: the inode (SQLITE_FCNTL_HAS_MOVED: the path is gone
 * or names another file) and the 16-byte magic at the start of the file,
 * read through SQLite's own descriptor.
 * A handle found broken stays broken (0 from here only after reopening):
 * the caller is told STORE_ERROR and is expected to close and reopen it,
 * which recreates a deleted database (see sqlite_open).  force: check now;
 * else at most once a second (a stat and a 16-byte pread).
 */
static int
sqlite_check_file(struct store *s, int force)
{
	static const char magic[16] = "SQLite format 3";	/* with its NUL */
	struct sqlite_conn *c = conn_of(s);
	const char *path;
	sqlite3_file *file = NULL;
	char head[16];
	time_t now;
	int moved = 0, rc;

	if (c->broken)
		return STORE_ERROR;
	now = time(NULL);
	if (!force && now == c->file_checked)
		return STORE_OK;
	c->file_checked = now;
	path = sqlite3_db_filename(c->db, "main");
	if (path == NULL || *path == '\0')
		return STORE_OK;	/* :memory: or a temporary database */
	if (sqlite3_file_control(c->db, "main", SQLITE_FCNTL_HAS_MOVED, &moved) == SQLITE_OK &&
	    moved) {
		c->broken = 1;
		return store_seterr(s, STORE_ERROR, "%s was deleted or replaced while open", path);
	}
	/* Read through SQLite's own descriptor: opening and closing another
	 * one on the file would drop every POSIX lock this process holds on
	 * it (fcntl locks belong to the process and the inode). */
	if (sqlite3_file_control(c->db, "main", SQLITE_FCNTL_FILE_POINTER, &file) != SQLITE_OK ||
	    file == NULL || file->pMethods == NULL)
		return STORE_OK;
	memset(head, 0, sizeof(head));
	rc = file->pMethods->xRead(file, head, (int)sizeof(head), 0);
	if (rc == SQLITE_IOERR_SHORT_READ && head[0] == '\0')
		return STORE_OK;	/* an empty file: created a moment ago, not written yet */
	if (rc != SQLITE_OK || memcmp(head, magic, sizeof(magic)) != 0) {
		c->broken = 1;
		return store_seterr(s, STORE_ERROR, "%s: the file header is not an SQLite "
		    "header (file corrupt or overwritten)", path);
	}
	return STORE_OK;
}

static int
sqlite_prepare(struct store *s, const char *sql, struct store_stmt **out)
{
	struct sqlite_stmt *st = xcalloc(1, sizeof(*st));
	int rc;

	st->base.drv = &store_sqlite_driver;
	st->db = conn_of(s)->db;
	rc = sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st->st, NULL);
	if (rc != SQLITE_OK) {
		rc = sqlite_fail(s, rc);
		sqlite3_finalize(st->st);
		free(st);
		*out = NULL;
		return rc;
	}
	*out = &st->base;
	return STORE_OK;
}

static void
sqlite_finalize(struct store_stmt *st)
{
	sqlite3_finalize(raw(st));
	free(st);
}

static int
sqlite_bind_int(struct store_stmt *st, int idx, long long v)
{
	return sqlite3_bind_int64(raw(st), idx, (sqlite3_int64)v) == SQLITE_OK ? STORE_OK
	    : STORE_ERROR;
}

/* SQLITE_STATIC: store.c steps and resets the statement before the
 * caller's memory can change. */
static int
sqlite_bind_text(struct store_stmt *st, int idx, const char *v, size_t len)
{
	if (len > INT_MAX)
		return STORE_ERROR;
	return sqlite3_bind_text(raw(st), idx, v, (int)len, SQLITE_STATIC) == SQLITE_OK ? STORE_OK
	    : STORE_ERROR;
}

static int
sqlite_step(struct store *s, struct store_stmt *st)
{
	int rc = sqlite3_step(raw(st));

	if (rc == SQLITE_ROW)
		return STEP_ROW;
	if (rc == SQLITE_DONE)
		return STEP_DONE;
	return sqlite_fail(s, rc);
}

static long long
sqlite_col_int(struct store_stmt *st, int col)
{
	return sqlite3_column_int64(raw(st), col);
}

static const char *
sqlite_col_text(struct store_stmt *st, int col)
{
	return (const char *)sqlite3_column_text(raw(st), col);
}

static int
sqlite_col_null(struct store_stmt *st, int col)
{
	return sqlite3_column_type(raw(st), col) == SQLITE_NULL;
}

static int
sqlite_col_count(struct store_stmt *st)
{
	return sqlite3_column_count(raw(st));
}

static int
sqlite_changes(struct store *s, struct store_stmt *st)
{
	(void)st;
	return sqlite3_changes(conn_of(s)->db);
}

static void
sqlite_reset(struct store_stmt *st)
{
	sqlite3_reset(raw(st));
	sqlite3_clear_bindings(raw(st));
}

static int
sqlite_exec(struct store *s, const char *sql)
{
	int rc = sqlite3_exec(conn_of(s)->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? STORE_OK : sqlite_fail(s, rc);
}

static int
sqlite_begin(struct store *s, int write)
{
	return sqlite_exec(s, write ? "BEGIN IMMEDIATE" : "BEGIN");
}

static int
sqlite_commit(struct store *s)
{
	return sqlite_exec(s, "COMMIT");
}

static void
sqlite_rollback(struct store *s)
{
	(void)sqlite_exec(s, "ROLLBACK");
}

static int
sqlite_in_transaction(struct store *s)
{
	return !sqlite3_get_autocommit(conn_of(s)->db);
}

/* ---- open, close, migrate ---- */

/* Checks the directory that will hold path, so that a missing or read-only
 * directory is reported as such instead of sqlite's "unable to open
 * database file".  SQLite needs to create PATH-wal and PATH-shm beside the
 * database, so the directory must be writable, not only the file. */
static int
sqlite_check_dir(const char *path, char *err, size_t errlen)
{
	const char *slash = strrchr(path, '/');
	char dir[4096];
	struct stat st;

	if (strcmp(path, ":memory:") == 0)
		return 0;
	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else if ((size_t)(slash - path) >= sizeof(dir)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	} else {
		memcpy(dir, path, (size_t)(slash - path));
		dir[slash - path] = '\0';
	}
	if (stat(dir, &st) != 0) {
		snprintf(err, errlen, "%s: directory %s: %s", path, dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s: %s is not a directory", path, dir);
		return -1;
	}
	if (access(dir, W_OK | X_OK) != 0) {
		snprintf(err, errlen, "%s: directory %s is not writable (%s); SQLite needs to "
		    "create the -wal and -shm files beside the database", path, dir,
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* Reads PRAGMA user_version into *version. */
static int
sqlite_user_version(struct store *s, int *version)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(conn_of(s)->db, "PRAGMA user_version", -1, &st, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		*version = sqlite3_column_int(st, 0);
		rc = SQLITE_OK;
	}
	rc = rc == SQLITE_OK ? STORE_OK : sqlite_fail(s, rc);
	sqlite3_finalize(st);
	return rc;
}

/* Brings the schema to STORE_SCHEMA_VERSION.  The common case (already
 * current) takes no write lock, so opening never waits for a busy writer;
 * otherwise the version is read again inside BEGIN IMMEDIATE, since another
 * process may have migrated in the meantime. */
static int
sqlite_migrate(struct store *s, const char *path, char *err, size_t errlen)
{
	char sql[64];
	int rc, version = 0, migrating = 0;

	if ((rc = sqlite_user_version(s, &version)) != STORE_OK)
		goto fail;
	if (version == STORE_SCHEMA_VERSION)
		return STORE_OK;
	if (version > STORE_SCHEMA_VERSION)
		goto too_new;
	if ((rc = sqlite_exec(s, "BEGIN IMMEDIATE")) != STORE_OK)
		goto fail;
	if ((rc = sqlite_user_version(s, &version)) != STORE_OK)
		goto fail_rollback;
	if (version > STORE_SCHEMA_VERSION) {
		sqlite_exec(s, "ROLLBACK");
		goto too_new;
	}
	for (int i = version; i < STORE_SCHEMA_VERSION; i++) {
		migrating = store_migrations[i].version;
		if ((rc = sqlite_exec(s, store_migrations[i].sql)) != STORE_OK)
			goto fail_rollback;
	}
	migrating = 0;
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", STORE_SCHEMA_VERSION);
	if ((rc = sqlite_exec(s, sql)) != STORE_OK)
		goto fail_rollback;
	if ((rc = sqlite_exec(s, "COMMIT")) != STORE_OK)
		goto fail_rollback;
	return STORE_OK;

fail_rollback:
	if (sqlite_in_transaction(s))
		sqlite3_exec(conn_of(s)->db, "ROLLBACK", NULL, NULL, NULL);
fail:
	if (migrating)
		snprintf(err, errlen, "%s: schema migration to version %d: %s", path,
		    migrating, store_common(s)->errmsg);
	else
		snprintf(err, errlen, "%s: %s", path, store_common(s)->errmsg);
	return rc == STORE_BUSY ? STORE_BUSY : STORE_ERROR;
too_new:
	snprintf(err, errlen, "%s: schema version %d is newer than this helpgate understands "
	    "(%d); refusing to touch it (was helpgate downgraded?)", path, version,
	    STORE_SCHEMA_VERSION);
	return STORE_ERROR;
}

/*
 * A database file deleted while a process had it open leaves its -wal and
 * -shm files behind at the path, and a process still holding the old
 * database keeps using them.  A new database created at the path must not
 * inherit them: SQLite would read the old wal-index (another database's
 * pages) into it.  So whoever creates the file (O_EXCL: one process wins)
 * removes them first.  Processes still on the old database keep their open
 * copies and notice the deletion on their next statement (store_check_file).
 */
static void
sqlite_clear_stale(const char *path)
{
	char side[4096];
	int fd;

	if (strcmp(path, ":memory:") == 0 || access(path, F_OK) == 0 || errno != ENOENT)
		return;
	if ((fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) == -1)
		return;		/* another process created it; sqlite reports the rest */
	close(fd);
	if (snprintf(side, sizeof(side), "%s-wal", path) < (int)sizeof(side))
		(void)unlink(side);
	if (snprintf(side, sizeof(side), "%s-shm", path) < (int)sizeof(side))
		(void)unlink(side);
}

static int
sqlite_open(struct store *s, const char *path, long timeout_ms, char *errbuf, size_t errlen)
{
	struct sqlite_conn *c;
	sqlite3_stmt *st = NULL;
	int rc, ret;

	if (sqlite_check_dir(path, errbuf, errlen) != 0)
		return STORE_ERROR;
	sqlite_clear_stale(path);
	c = xcalloc(1, sizeof(*c));
	store_common(s)->conn = c;
	rc = sqlite3_open_v2(path, &c->db,
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(errbuf, errlen, "%s: %s", path,
		    c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
		ret = STORE_ERROR;
		goto fail;
	}
	sqlite3_busy_timeout(c->db, timeout_ms > INT_MAX ? INT_MAX : (int)timeout_ms);
	if (sqlite3_db_readonly(c->db, "main") == 1) {
		snprintf(errbuf, errlen, "%s: the database file is read-only", path);
		ret = STORE_ERROR;
		goto fail;
	}

	/* journal_mode answers with the mode it ended up in. */
	rc = sqlite3_prepare_v2(c->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *mode = (const char *)sqlite3_column_text(st, 0);

		if (mode == NULL || (strcmp(mode, "wal") != 0 && strcmp(mode, "memory") != 0)) {
			snprintf(errbuf, errlen, "%s: cannot switch to WAL mode (journal mode is %s)",
			    path, mode ? mode : "unknown");
			sqlite3_finalize(st);
			ret = STORE_ERROR;
			goto fail;
		}
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_OK) {
		ret = sqlite_fail(s, rc);
		snprintf(errbuf, errlen, "%s: setting WAL mode: %s", path, store_common(s)->errmsg);
		sqlite3_finalize(st);
		goto fail;
	}
	sqlite3_finalize(st);
	if (sqlite_exec(s, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON") != STORE_OK) {
		snprintf(errbuf, errlen, "%s: %s", path, store_common(s)->errmsg);
		ret = STORE_ERROR;
		goto fail;
	}
	if ((ret = sqlite_migrate(s, path, errbuf, errlen)) != STORE_OK)
		goto fail;
	return STORE_OK;

fail:
	sqlite3_close(c->db);
	free(c);
	store_common(s)->conn = NULL;
	return ret;
}

static void
sqlite_close(struct store *s)
{
	struct sqlite_conn *c = conn_of(s);

	if (c == NULL)
		return;
	sqlite3_close(c->db);
	free(c);
}

const struct store_driver store_sqlite_driver = {
	.name = "sqlite",
	.open = sqlite_open,
	.close = sqlite_close,
	.check = sqlite_check_file,
	.prepare = sqlite_prepare,
	.finalize = sqlite_finalize,
	.bind_int = sqlite_bind_int,
	.bind_text = sqlite_bind_text,
	.step = sqlite_step,
	.col_int = sqlite_col_int,
	.col_text = sqlite_col_text,
	.col_null = sqlite_col_null,
	.col_count = sqlite_col_count,
	.changes = sqlite_changes,
	.reset = sqlite_reset,
	.begin = sqlite_begin,
	.commit = sqlite_commit,
	.rollback = sqlite_rollback,
	.in_transaction = sqlite_in_transaction,
};
