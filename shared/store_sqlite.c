/*
 * store_sqlite - the SQLite backend of store.h.
 *
 * One struct store per thread of use, one sqlite3 connection per handle
 * (opened SQLITE_OPEN_NOMUTEX: the caller serialises, see store.h).  The
 * database runs in WAL mode so that helpgatectl and the worker can read
 * while the milter writes; synchronous=NORMAL keeps a commit to one write
 * of the WAL (durable against a process crash, and against power loss up to
 * the last checkpoint), which is what lets the milter record a message in
 * tens of microseconds.
 *
 * Statements: every statement with data is prepared once per handle, on
 * first use, with bound parameters, and kept in s->stmt[]; after each use it
 * is reset and its bindings cleared on every path (store_done()), so an
 * error never leaves a statement holding a read lock.  Only DDL and PRAGMAs
 * without data go through sqlite3_exec().
 *
 * Schema: store_migrations[] below, one row per version; PRAGMA user_version
 * says which have been applied.  store_open() applies the missing ones in a
 * single BEGIN IMMEDIATE transaction and refuses a database that is newer
 * than this code.
 *
 * Strings read back are cut to their record field on a UTF-8 character
 * boundary (store_copy_text()).  Strings written are read up to their field
 * size even when the caller forgot the NUL.
 */
#include "store.h"

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
};

#define STORE_SCHEMA_VERSION \
	((int)(sizeof(store_migrations) / sizeof(store_migrations[0])))

/* ---- statements ---- */

#define CUSTOMER_COLS	"address, tier, watch_until, created"
#define MAILCMD_COLS	"id, case_id, staff, login, message_id, subject, commands, received, " \
			"done, result"
#define CASE_COLS	"id, created, updated, status, client, support_address, subject, " \
			"urgency, tier, watch, category, lang, reasons, first_due, " \
			"resolve_due, first_response_at, resolved_at, assignee, paused_at, " \
			"cause, lesson, incident, paused_total"
#define MESSAGE_COLS	"id, case_id, message_id, direction, sender, received, " \
			"date_header, subject, queue_id, urgency, category, auto_reason, excerpt, " \
			"refs, ack, sender_auth, via"
#define OUTBOX_COLS	"id, case_id, kind, recipient, envelope_from, message_id, state, " \
			"attempts, next_attempt, created, sent_at, relay_seen, last_error"
#define CUSTOMER_MAIL_COLS "address, smtp_host, smtp_port, smtp_security, smtp_user, " \
			"smtp_password_file, imap_host, imap_port, imap_security, imap_user, " \
			"imap_password_file, updated"
#define DIAGNOSIS_COLS	"id, case_id, customer, client, created, protocol, host, port, security, " \
			"source, skipped, verdict, hint, alt_host, alt_port, alt_security, " \
			"alt_verified, provider, incident, client_note, duration_ms"

enum store_stmt_id {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_CUSTOMER_PUT,
	ST_CUSTOMER_REMOVE,
	ST_CUSTOMER_LOOKUP,
	ST_CUSTOMER_LIST,
	ST_CASE_CREATE,
	ST_CASE_GET,
	ST_CASE_TOUCH,
	ST_CASE_RESPONDED,
	ST_CASE_LIST,
	ST_MESSAGE_ADD,
	ST_MESSAGE_CASE,
	ST_MESSAGE_COUNT_SINCE,
	ST_MESSAGE_LIST,
	ST_MESSAGE_UNDECIDED,
	ST_MESSAGE_SET_ACK,
	ST_CASE_FIRST_MESSAGE,
	ST_OUTBOX_ADD,
	ST_OUTBOX_DUE,
	ST_OUTBOX_UPDATE,
	ST_OUTBOX_RELAY_SEEN,
	ST_OUTBOX_COUNT_ACKS,
	ST_OUTBOX_COUNT_KIND,
	ST_OUTBOX_COUNT_P1_DOMAIN,
	ST_OUTBOX_LIST,
	ST_CASE_SET_STATUS,
	ST_CASE_ASSIGN,
	ST_CASE_SET_RESOLUTION,
	ST_CUSTOMER_WATCH,
	ST_EVENT_ADD,
	ST_EVENT_DUE,
	ST_EVENT_MARK,
	ST_EVENT_RESCHEDULE,
	ST_EVENT_LIST,
	ST_PAUSE_ADD,
	ST_PAUSE_LIST,
	ST_CASE_BY_DUE,
	ST_EVENT_GET,
	ST_EVENT_CANCEL_PENDING,
	ST_EVENT_REARM,
	/* v4: the diagnosis */
	ST_CUSTOMER_MAIL_PUT,
	ST_CUSTOMER_MAIL_GET,
	ST_CUSTOMER_MAIL_REMOVE,
	ST_DIAGNOSIS_ADD,
	ST_DIAGNOSIS_LIST,
	ST_DIAGNOSIS_PENDING,
	ST_DIAGNOSIS_COUNT_SINCE,
	ST_DIAGNOSIS_SIMILAR,
	ST_DIAGNOSIS_SET_INCIDENT,
	ST_DIAGNOSIS_SET_NOTE,
	ST_MESSAGE_GET,
	/* v6: the support mailbox */
	ST_MAILBOX_SEEN,
	ST_MAILBOX_MARK,
	ST_MAILBOX_LAST_UID,
	/* v7: staff commands by mail */
	ST_CASE_SET_URGENCY,
	ST_MAILCMD_ADD,
	ST_MAILCMD_PENDING,
	ST_MAILCMD_DONE,
	ST_MAILCMD_LIST,
	ST_COUNT
};

static const char *const store_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_CUSTOMER_PUT] =
	    "INSERT OR REPLACE INTO customers (" CUSTOMER_COLS ") VALUES (?1, ?2, ?3, ?4)",
	[ST_CUSTOMER_REMOVE] = "DELETE FROM customers WHERE address = ?1",
	/* Run for the address, then for its "@domain".  (One statement with
	 * "ORDER BY address = ?1" would build a temporary b-tree per call.) */
	[ST_CUSTOMER_LOOKUP] = "SELECT " CUSTOMER_COLS " FROM customers WHERE address = ?1",
	[ST_CUSTOMER_LIST] = "SELECT " CUSTOMER_COLS " FROM customers ORDER BY address",
	[ST_CASE_CREATE] =
	    "INSERT INTO cases (created, updated, status, client, support_address, subject,"
	    " urgency, tier, watch, category, lang, reasons, first_due, resolve_due,"
	    " first_response_at, resolved_at, assignee)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
	[ST_CASE_GET] = "SELECT " CASE_COLS " FROM cases WHERE id = ?1",
	[ST_CASE_TOUCH] =
	    "UPDATE cases SET urgency = MIN(urgency, ?2), updated = ?3 WHERE id = ?1",
	[ST_CASE_RESPONDED] =
	    "UPDATE cases SET first_response_at = ?2, updated = MAX(updated, ?2)"
	    " WHERE id = ?1 AND first_response_at = 0",
	[ST_CASE_LIST] =
	    "SELECT " CASE_COLS " FROM cases WHERE ?1 = 0 OR status <> 'resolved'"
	    " ORDER BY id DESC",
	[ST_MESSAGE_ADD] =
	    "INSERT INTO messages (case_id, message_id, direction, sender, received,"
	    " date_header, subject, queue_id, urgency, category, auto_reason, excerpt,"
	    " refs, ack, sender_auth, via)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
	/* The "<> ''" term lets SQLite use the partial unique index. */
	[ST_MESSAGE_CASE] =
	    "SELECT case_id FROM messages WHERE message_id = ?1 AND message_id <> ''",
	[ST_MESSAGE_COUNT_SINCE] =
	    "SELECT count(*) FROM messages WHERE case_id = ?1 AND received >= ?2"
	    " AND direction = 'in'",
	[ST_MESSAGE_LIST] =
	    "SELECT " MESSAGE_COLS " FROM messages WHERE case_id = ?1 ORDER BY received, id",
	[ST_CASE_SET_STATUS] =
	    "UPDATE cases SET status = ?2, updated = ?3, paused_at = ?4, resolve_due = ?5,"
	    " resolved_at = ?6, paused_total = ?7 WHERE id = ?1",
	[ST_CASE_ASSIGN] = "UPDATE cases SET assignee = ?2, updated = ?3 WHERE id = ?1",
	[ST_CASE_SET_RESOLUTION] =
	    "UPDATE cases SET cause = ?2, lesson = ?3, incident = ?4 WHERE id = ?1",
	[ST_CUSTOMER_WATCH] =
	    "INSERT INTO customers (address, tier, watch_until, created) VALUES (?1, ?2, ?3, ?4)"
	    " ON CONFLICT (address) DO UPDATE SET watch_until = MAX(watch_until, excluded.watch_until)",
	[ST_EVENT_ADD] =
	    "INSERT INTO events (case_id, kind, due, fired, note) VALUES (?1, ?2, ?3, 0, '')",
	[ST_EVENT_DUE] =
	    "SELECT id, case_id, kind, due, fired, note FROM events"
	    " WHERE fired = 0 AND due <= ?1 ORDER BY due LIMIT ?2",
	[ST_EVENT_MARK] = "UPDATE events SET fired = ?2, note = ?3 WHERE id = ?1",
	[ST_EVENT_RESCHEDULE] =
	    "UPDATE events SET due = ?3 WHERE case_id = ?1 AND kind = ?2 AND fired = 0",
	[ST_EVENT_LIST] =
	    "SELECT id, case_id, kind, due, fired, note FROM events WHERE case_id = ?1"
	    " ORDER BY due, id",
	[ST_EVENT_GET] = "SELECT id, case_id, kind, due, fired, note FROM events WHERE id = ?1",
	[ST_EVENT_CANCEL_PENDING] =
	    "UPDATE events SET fired = -1, note = ?2 WHERE case_id = ?1 AND fired = 0",
	[ST_EVENT_REARM] =
	    "UPDATE events SET fired = 0, note = '' WHERE case_id = ?1 AND fired = -1"
	    " AND note = ?2 AND due > ?3",
	[ST_PAUSE_ADD] = "INSERT INTO pauses (case_id, start, end) VALUES (?1, ?2, ?3)",
	[ST_PAUSE_LIST] = "SELECT start, end FROM pauses WHERE case_id = ?1 ORDER BY start",
	/* The expression and the WHERE match cases_next_due, so this walks
	 * that index and stops at the limit. */
	[ST_CASE_BY_DUE] =
	    "SELECT " CASE_COLS " FROM cases WHERE status <> 'resolved'"
	    " ORDER BY (CASE WHEN first_response_at = 0 THEN first_due ELSE resolve_due END)"
	    " LIMIT ?1",
	[ST_MESSAGE_UNDECIDED] =
	    "SELECT " MESSAGE_COLS " FROM messages WHERE ack = '' ORDER BY id LIMIT ?1",
	/* Only an undecided message: a second worker's decision never lands. */
	[ST_MESSAGE_SET_ACK] = "UPDATE messages SET ack = ?2 WHERE id = ?1 AND ack = ''",
	[ST_CASE_FIRST_MESSAGE] = "SELECT min(id) FROM messages WHERE case_id = ?1",
	[ST_OUTBOX_ADD] =
	    "INSERT INTO outbox (case_id, kind, recipient, envelope_from, message_id, content,"
	    " state, attempts, next_attempt, created)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', 0, ?7, ?8)",
	[ST_OUTBOX_DUE] =
	    "SELECT " OUTBOX_COLS ", content FROM outbox"
	    " WHERE state IN ('pending', 'sending') AND next_attempt <= ?1"
	    " ORDER BY next_attempt, id LIMIT ?2",
	[ST_OUTBOX_UPDATE] =
	    "UPDATE outbox SET state = ?2, attempts = ?3, next_attempt = ?4, sent_at = ?5,"
	    " last_error = ?6, relay_seen = CASE WHEN ?7 < 0 THEN relay_seen ELSE ?7 END"
	    " WHERE id = ?1",
	[ST_OUTBOX_RELAY_SEEN] =
	    "UPDATE outbox SET relay_seen = 1"
	    " WHERE message_id = ?1 AND state IN ('pending', 'sending')",
	/* one address and its +detail variants (?3 "local+", ?4 "local,", ?5
	 * the LIKE pattern "local+%@domain"): the range uses outbox_acks_to */
	[ST_OUTBOX_COUNT_ACKS] =
	    "SELECT count(*) FROM outbox WHERE kind = 'ack' AND created >= ?2 AND"
	    " (recipient = ?1 OR (recipient >= ?3 AND recipient < ?4 AND recipient LIKE ?5 ESCAPE '\\'))",
	[ST_OUTBOX_COUNT_KIND] =
	    "SELECT count(*) FROM outbox WHERE kind = ?1 AND created >= ?2"
	    " AND (?3 = '' OR message_id LIKE ?3)",
	/* P1 notices about cases of one client domain (?3 "%@domain") */
	[ST_OUTBOX_COUNT_P1_DOMAIN] =
	    "SELECT count(*) FROM outbox o JOIN cases c ON c.id = o.case_id"
	    " WHERE o.kind = 'notice' AND o.created >= ?1 AND o.message_id LIKE ?2"
	    " AND c.client LIKE ?3 ESCAPE '\\'",
	[ST_OUTBOX_LIST] =
	    "SELECT " OUTBOX_COLS " FROM outbox WHERE ?1 = 0 OR case_id = ?1"
	    " ORDER BY id DESC LIMIT ?2",
	/* ---- v4: the diagnosis ---- */
	[ST_CUSTOMER_MAIL_PUT] =
	    "INSERT OR REPLACE INTO customer_mail (" CUSTOMER_MAIL_COLS ")"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
	[ST_CUSTOMER_MAIL_GET] =
	    "SELECT " CUSTOMER_MAIL_COLS " FROM customer_mail WHERE address = ?1",
	[ST_CUSTOMER_MAIL_REMOVE] = "DELETE FROM customer_mail WHERE address = ?1",
	[ST_DIAGNOSIS_ADD] =
	    "INSERT INTO diagnoses (case_id, customer, client, created, protocol, host, port,"
	    " security, source, skipped, verdict, hint, alt_host, alt_port, alt_security,"
	    " alt_verified, provider, incident, client_note, duration_ms, report_json, report_text)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,"
	    " ?17, ?18, ?19, ?20, ?21, ?22)",
	[ST_DIAGNOSIS_LIST] =
	    "SELECT " DIAGNOSIS_COLS ", report_json, report_text FROM diagnoses"
	    " WHERE case_id = ?1 ORDER BY id",
	/* The category term matches cases_outgoing, so this walks that
	 * partial index from ?1 on and probes diagnoses_case per case. */
	[ST_DIAGNOSIS_PENDING] =
	    "SELECT " CASE_COLS " FROM cases WHERE category = 'outgoing-mail' AND id > ?1"
	    " AND NOT EXISTS (SELECT 1 FROM diagnoses WHERE diagnoses.case_id = cases.id)"
	    " ORDER BY id LIMIT ?2",
	[ST_DIAGNOSIS_COUNT_SINCE] =
	    "SELECT count(*) FROM diagnoses WHERE customer = ?1 AND created >= ?2"
	    " AND skipped = ''",
	[ST_DIAGNOSIS_SIMILAR] =
	    "SELECT " DIAGNOSIS_COLS " FROM diagnoses WHERE provider = ?1 AND verdict = ?2"
	    " AND created >= ?3 AND skipped = '' ORDER BY created, id",
	[ST_DIAGNOSIS_SET_INCIDENT] = "UPDATE diagnoses SET incident = ?2 WHERE id = ?1",
	[ST_DIAGNOSIS_SET_NOTE] = "UPDATE diagnoses SET client_note = ?2 WHERE id = ?1",
	[ST_MESSAGE_GET] = "SELECT " MESSAGE_COLS " FROM messages WHERE id = ?1",
	/* ---- v6: the support mailbox ---- */
	[ST_MAILBOX_SEEN] = "SELECT 1 FROM mailbox_seen WHERE mailbox = ?1 AND key = ?2",
	[ST_MAILBOX_MARK] =
	    "INSERT OR IGNORE INTO mailbox_seen (mailbox, key, seen_at) VALUES (?1, ?2, ?3)",
	/* keys "V/U" of one UIDVALIDITY: ?2 = "V/", ?3 = "V0" ('0' follows
	 * '/'), a range of the primary key */
	[ST_MAILBOX_LAST_UID] =
	    "SELECT coalesce(max(CAST(substr(key, length(?2) + 1) AS INTEGER)), 0)"
	    " FROM mailbox_seen WHERE mailbox = ?1 AND key >= ?2 AND key < ?3",
	/* ---- v7: staff commands by mail ---- */
	[ST_CASE_SET_URGENCY] =
	    "UPDATE cases SET urgency = ?2, first_due = ?3, resolve_due = ?4, updated = ?5"
	    " WHERE id = ?1",
	[ST_MAILCMD_ADD] =
	    "INSERT OR IGNORE INTO mail_commands (case_id, staff, login, message_id, subject,"
	    " commands, received) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[ST_MAILCMD_PENDING] =
	    "SELECT " MAILCMD_COLS " FROM mail_commands WHERE done = 0 ORDER BY id LIMIT ?1",
	[ST_MAILCMD_DONE] = "UPDATE mail_commands SET done = ?2, result = ?3 WHERE id = ?1",
	[ST_MAILCMD_LIST] =
	    "SELECT " MAILCMD_COLS " FROM mail_commands WHERE case_id = ?1 ORDER BY id",
};

struct store {
	sqlite3		*db;
	sqlite3_stmt	*stmt[ST_COUNT];
	char		 errmsg[512];
	time_t		 file_checked;	/* last store_check_file() */
	int		 broken;	/* the file went away or lost its header: only
					 * rollback and close are left (see store_check_file) */
};

const char *
store_strerror(enum store_rc rc)
{
	switch (rc) {
	case STORE_OK:		return "ok";
	case STORE_NOTFOUND:	return "not found";
	case STORE_BUSY:	return "database busy";
	case STORE_EXISTS:	return "already exists";
	case STORE_ERROR:	return "database error";
	}
	return "unknown store error";
}

const char *
store_errmsg(const struct store *s)
{
	return s != NULL ? s->errmsg : "no store";
}

/* Maps an SQLite result code to a store_rc and remembers sqlite's message
 * for store_errmsg().  Call before resetting the statement: the message
 * belongs to the last call on the connection. */
static enum store_rc
store_fail(struct store *s, int rc)
{
	int ext = sqlite3_extended_errcode(s->db);

	snprintf(s->errmsg, sizeof(s->errmsg), "%s", sqlite3_errmsg(s->db));
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
 * which recreates a deleted database (see store_open).  force: check now;
 * else at most once a second (a stat and a 16-byte pread).  Returns 0 when
 * the file is fine, -1 (errmsg set) when not.
 */
static int
store_check_file(struct store *s, int force)
{
	static const char magic[16] = "SQLite format 3";	/* with its NUL */
	const char *path;
	sqlite3_file *file = NULL;
	char head[16];
	time_t now;
	int moved = 0, rc;

	if (s->broken)
		return -1;
	now = time(NULL);
	if (!force && now == s->file_checked)
		return 0;
	s->file_checked = now;
	path = sqlite3_db_filename(s->db, "main");
	if (path == NULL || *path == '\0')
		return 0;		/* :memory: or a temporary database */
	if (sqlite3_file_control(s->db, "main", SQLITE_FCNTL_HAS_MOVED, &moved) == SQLITE_OK &&
	    moved) {
		snprintf(s->errmsg, sizeof(s->errmsg), "%s was deleted or replaced while open", path);
		s->broken = 1;
		return -1;
	}
	/* Read through SQLite's own descriptor: opening and closing another
	 * one on the file would drop every POSIX lock this process holds on
	 * it (fcntl locks belong to the process and the inode). */
	if (sqlite3_file_control(s->db, "main", SQLITE_FCNTL_FILE_POINTER, &file) != SQLITE_OK ||
	    file == NULL || file->pMethods == NULL)
		return 0;
	memset(head, 0, sizeof(head));
	rc = file->pMethods->xRead(file, head, (int)sizeof(head), 0);
	if (rc == SQLITE_IOERR_SHORT_READ && head[0] == '\0')
		return 0;	/* an empty file: created a moment ago, not written yet */
	if (rc != SQLITE_OK || memcmp(head, magic, sizeof(magic)) != 0) {
		snprintf(s->errmsg, sizeof(s->errmsg), "%s: the file header is not an SQLite "
		    "header (file corrupt or overwritten)", path);
		s->broken = 1;
		return -1;
	}
	return 0;
}

/* The cached statement id, prepared on first use; NULL (error recorded) if
 * it cannot be prepared. */
static sqlite3_stmt *
store_stmt(struct store *s, enum store_stmt_id id)
{
	int rc;

	/* ROLLBACK and COMMIT are never refused: a transaction must be able
	 * to end on a handle that has just been found broken. */
	if (id != ST_ROLLBACK && id != ST_COMMIT && store_check_file(s, 0) != 0)
		return NULL;
	if (s->stmt[id] != NULL)
		return s->stmt[id];
	rc = sqlite3_prepare_v3(s->db, store_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
	    &s->stmt[id], NULL);
	if (rc != SQLITE_OK) {
		(void)store_fail(s, rc);
		sqlite3_finalize(s->stmt[id]);
		s->stmt[id] = NULL;
		return NULL;
	}
	return s->stmt[id];
}

/* Returns a cached statement to its idle state: no open read, no bindings
 * that point into the caller's memory. */
static void
store_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* Binding helpers: each does nothing once *rc holds an error, so a run of
 * binds is checked once at the end.  Text is bound SQLITE_STATIC: the
 * statement is stepped and reset before the caller's memory can change. */
static void
bind_text(sqlite3_stmt *st, int idx, const char *v, size_t max, int *rc)
{
	if (*rc == SQLITE_OK)
		*rc = sqlite3_bind_text(st, idx, v, (int)strnlen(v, max), SQLITE_STATIC);
}

static void
bind_int(sqlite3_stmt *st, int idx, long long v, int *rc)
{
	if (*rc == SQLITE_OK)
		*rc = sqlite3_bind_int64(st, idx, (sqlite3_int64)v);
}

/* field must be an array (sizeof is its capacity), never a pointer. */
#define STORE_IS_ARRAY(a) \
	(!__builtin_types_compatible_p(__typeof__(a), __typeof__(&(a)[0])))
#define BIND_FIELD(st, idx, field, rc) do {					\
	_Static_assert(STORE_IS_ARRAY(field), #field " is not an array");	\
	bind_text((st), (idx), (field), sizeof(field), (rc));			\
} while (0)

/* Copies column col into dst[dstlen], NUL-terminated.  Text that does not
 * fit is cut before the first byte of the character that would be split,
 * so a reader never sees half of a UTF-8 sequence (a decoder would show
 * U+FFFD, and JSON output would be invalid).  Only a valid lead byte is
 * looked for, at most 3 bytes back; text that is not UTF-8 is cut where it
 * falls. */
static void
store_copy_text(char *dst, size_t dstlen, sqlite3_stmt *st, int col)
{
	const unsigned char *src = sqlite3_column_text(st, col);
	size_t n, cut;

	if (src == NULL) {
		dst[0] = '\0';
		return;
	}
	n = (size_t)sqlite3_column_bytes(st, col);
	if (n >= dstlen) {
		n = dstlen - 1;
		for (cut = n; cut > 0 && n - cut < 3 && (src[cut] & 0xC0) == 0x80; cut--)
			;
		if ((src[cut] & 0xC0) != 0x80)
			n = cut;
	}
	memcpy(dst, src, n);
	dst[n] = '\0';
}

#define COPY_FIELD(field, st, col) do {					\
	_Static_assert(STORE_IS_ARRAY(field), #field " is not an array");	\
	store_copy_text((field), sizeof(field), (st), (col));			\
} while (0)

static void
store_row_customer(sqlite3_stmt *st, struct customer *c)
{
	COPY_FIELD(c->address, st, 0);
	COPY_FIELD(c->tier, st, 1);
	c->watch_until = sqlite3_column_int64(st, 2);
	c->created = sqlite3_column_int64(st, 3);
}

static void
store_row_case(sqlite3_stmt *st, struct case_rec *c)
{
	c->id = sqlite3_column_int64(st, 0);
	c->created = sqlite3_column_int64(st, 1);
	c->updated = sqlite3_column_int64(st, 2);
	COPY_FIELD(c->status, st, 3);
	COPY_FIELD(c->client, st, 4);
	COPY_FIELD(c->support_address, st, 5);
	COPY_FIELD(c->subject, st, 6);
	c->urgency = sqlite3_column_int(st, 7);
	COPY_FIELD(c->tier, st, 8);
	c->watch = sqlite3_column_int(st, 9);
	COPY_FIELD(c->category, st, 10);
	COPY_FIELD(c->lang, st, 11);
	COPY_FIELD(c->reasons, st, 12);
	c->first_due = sqlite3_column_int64(st, 13);
	c->resolve_due = sqlite3_column_int64(st, 14);
	c->first_response_at = sqlite3_column_int64(st, 15);
	c->resolved_at = sqlite3_column_int64(st, 16);
	COPY_FIELD(c->assignee, st, 17);
	c->paused_at = sqlite3_column_int64(st, 18);
	COPY_FIELD(c->cause, st, 19);
	COPY_FIELD(c->lesson, st, 20);
	c->incident = sqlite3_column_int(st, 21);
	c->paused_total = sqlite3_column_int64(st, 22);
}

static void
store_row_event(sqlite3_stmt *st, struct event_rec *e)
{
	e->id = sqlite3_column_int64(st, 0);
	e->case_id = sqlite3_column_int64(st, 1);
	COPY_FIELD(e->kind, st, 2);
	e->due = sqlite3_column_int64(st, 3);
	e->fired = sqlite3_column_int64(st, 4);
	COPY_FIELD(e->note, st, 5);
}

static void
store_row_message(sqlite3_stmt *st, struct message_rec *m)
{
	m->id = sqlite3_column_int64(st, 0);
	m->case_id = sqlite3_column_int64(st, 1);
	COPY_FIELD(m->message_id, st, 2);
	COPY_FIELD(m->direction, st, 3);
	COPY_FIELD(m->sender, st, 4);
	m->received = sqlite3_column_int64(st, 5);
	COPY_FIELD(m->date_header, st, 6);
	COPY_FIELD(m->subject, st, 7);
	COPY_FIELD(m->queue_id, st, 8);
	m->urgency = sqlite3_column_int(st, 9);
	COPY_FIELD(m->category, st, 10);
	COPY_FIELD(m->auto_reason, st, 11);
	COPY_FIELD(m->excerpt, st, 12);
	COPY_FIELD(m->references, st, 13);
	COPY_FIELD(m->ack, st, 14);
	COPY_FIELD(m->sender_auth, st, 15);
	COPY_FIELD(m->via, st, 16);
}

static void
store_row_outbox(sqlite3_stmt *st, struct outbox_rec *o, int with_content)
{
	o->id = sqlite3_column_int64(st, 0);
	o->case_id = sqlite3_column_int64(st, 1);
	COPY_FIELD(o->kind, st, 2);
	COPY_FIELD(o->recipient, st, 3);
	COPY_FIELD(o->envelope_from, st, 4);
	COPY_FIELD(o->message_id, st, 5);
	COPY_FIELD(o->state, st, 6);
	o->attempts = sqlite3_column_int(st, 7);
	o->next_attempt = sqlite3_column_int64(st, 8);
	o->created = sqlite3_column_int64(st, 9);
	o->sent_at = sqlite3_column_int64(st, 10);
	o->relay_seen = sqlite3_column_int(st, 11);
	COPY_FIELD(o->last_error, st, 12);
	o->content = NULL;
	if (with_content) {
		const unsigned char *c = sqlite3_column_text(st, 13);
		o->content = xstrdup(c ? (const char *)c : "");
	}
}

/*
 * store_each_case(), store_each_message(), store_each_event(): step a
 * statement that yields rows of one kind, hand each to cb (a non-zero return
 * stops), reset the statement.  The record lives on the heap: a case_rec is
 * several KB and this may run on a libmilter thread.
 */
#define STORE_EACH(name, type, row)						\
static enum store_rc								\
name(struct store *s, sqlite3_stmt *st, int rc,					\
    int (*cb)(const type *rec, void *arg), void *arg)				\
{										\
	type *rec = xmalloc(sizeof(*rec));					\
	enum store_rc ret = STORE_OK;						\
										\
	if (rc == SQLITE_OK) {							\
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {			\
			row(st, rec);						\
			if (cb(rec, arg) != 0) {				\
				rc = SQLITE_DONE;				\
				break;						\
			}							\
		}								\
	}									\
	if (rc != SQLITE_DONE)							\
		ret = store_fail(s, rc);					\
	store_done(st);								\
	free(rec);								\
	return ret;								\
}
/*
 * STORE_EACH_OWNED: STORE_EACH for records that own heap memory (outbox
 * content, diagnosis reports).  row() loads the large columns only when
 * the caller's "full" says so, and clear() frees them after each callback,
 * so the callback must copy what it keeps.
 */
#define STORE_EACH_OWNED(name, type, cbtype, row, clear)			\
static enum store_rc								\
name(struct store *s, sqlite3_stmt *st, int rc, int full,			\
    int (*cb)(cbtype *rec, void *arg), void *arg)				\
{										\
	type *rec = xcalloc(1, sizeof(*rec));					\
	enum store_rc ret = STORE_OK;						\
										\
	if (rc == SQLITE_OK) {							\
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {			\
			int stop;						\
										\
			row(st, rec, full);					\
			stop = cb(rec, arg);					\
			clear(rec);						\
			if (stop) {						\
				rc = SQLITE_DONE;				\
				break;						\
			}							\
		}								\
	}									\
	if (rc != SQLITE_DONE)							\
		ret = store_fail(s, rc);					\
	store_done(st);								\
	free(rec);								\
	return ret;								\
}
/*
 * store_one_case(), store_one_customer(), store_one_event(): step a bound
 * statement for at most one row into *out; STORE_NOTFOUND when there is
 * none.  The statement is reset either way.
 */
#define STORE_ONE(name, type, row)						\
static enum store_rc								\
name(struct store *s, sqlite3_stmt *st, int rc, type *out)			\
{										\
	enum store_rc ret = STORE_OK;						\
										\
	if (rc == SQLITE_OK)							\
		rc = sqlite3_step(st);						\
	if (rc == SQLITE_ROW)							\
		row(st, out);							\
	else if (rc == SQLITE_DONE)						\
		ret = STORE_NOTFOUND;						\
	else									\
		ret = store_fail(s, rc);					\
	store_done(st);								\
	return ret;								\
}
STORE_ONE(store_one_case, struct case_rec, store_row_case)
STORE_ONE(store_one_customer, struct customer, store_row_customer)
STORE_ONE(store_one_event, struct event_rec, store_row_event)

STORE_EACH(store_each_case, struct case_rec, store_row_case)
STORE_EACH(store_each_message, struct message_rec, store_row_message)
STORE_EACH(store_each_event, struct event_rec, store_row_event)

/* Runs a cached statement that returns no rows, after its binds (bind_rc).
 * Sets *changes to the rows it changed when changes is not NULL. */
static enum store_rc
store_exec_stmt(struct store *s, sqlite3_stmt *st, int bind_rc, int *changes)
{
	enum store_rc ret = STORE_OK;
	int rc = bind_rc;

	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		ret = store_fail(s, rc);
	else if (changes != NULL)
		*changes = sqlite3_changes(s->db);
	store_done(st);
	return ret;
}

/* ---- open, close, migrate ---- */

/* Checks the directory that will hold path, so that a missing or read-only
 * directory is reported as such instead of sqlite's "unable to open
 * database file".  SQLite needs to create PATH-wal and PATH-shm beside the
 * database, so the directory must be writable, not only the file. */
static int
store_check_dir(const char *path, char *err, size_t errlen)
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
store_user_version(struct store *s, int *version)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		*version = sqlite3_column_int(st, 0);
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_OK)
		(void)store_fail(s, rc);
	sqlite3_finalize(st);
	return rc;
}

static int
store_exec(struct store *s, const char *sql)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		(void)store_fail(s, rc);
	return rc;
}

/* Brings the schema to STORE_SCHEMA_VERSION.  The common case (already
 * current) takes no write lock, so opening never waits for a busy writer;
 * otherwise the version is read again inside BEGIN IMMEDIATE, since another
 * process may have migrated in the meantime. */
static enum store_rc
store_migrate(struct store *s, const char *path, char *err, size_t errlen)
{
	char sql[64];
	int rc, version = 0, migrating = 0;

	if ((rc = store_user_version(s, &version)) != SQLITE_OK)
		goto fail;
	if (version == STORE_SCHEMA_VERSION)
		return STORE_OK;
	if (version > STORE_SCHEMA_VERSION)
		goto too_new;
	if ((rc = store_exec(s, "BEGIN IMMEDIATE")) != SQLITE_OK)
		goto fail;
	if ((rc = store_user_version(s, &version)) != SQLITE_OK)
		goto fail_rollback;
	if (version > STORE_SCHEMA_VERSION) {
		store_exec(s, "ROLLBACK");
		goto too_new;
	}
	for (int i = version; i < STORE_SCHEMA_VERSION; i++) {
		migrating = store_migrations[i].version;
		if ((rc = store_exec(s, store_migrations[i].sql)) != SQLITE_OK)
			goto fail_rollback;
	}
	migrating = 0;
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", STORE_SCHEMA_VERSION);
	if ((rc = store_exec(s, sql)) != SQLITE_OK)
		goto fail_rollback;
	if ((rc = store_exec(s, "COMMIT")) != SQLITE_OK)
		goto fail_rollback;
	return STORE_OK;

fail_rollback:
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
fail:
	if (migrating)
		snprintf(err, errlen, "%s: schema migration to version %d: %s", path,
		    migrating, s->errmsg);
	else
		snprintf(err, errlen, "%s: %s", path, s->errmsg);
	return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED ? STORE_BUSY : STORE_ERROR;
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
store_clear_stale(const char *path)
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

enum store_rc
store_open(const char *path, long timeout_ms, struct store **out, char *errbuf,
    size_t errlen)
{
	struct store *s;
	sqlite3_stmt *st = NULL;
	char scratch[512];
	enum store_rc ret;
	int rc;

	*out = NULL;
	if (errbuf == NULL || errlen == 0) {
		errbuf = scratch;
		errlen = sizeof(scratch);
	}
	errbuf[0] = '\0';
	if (store_check_dir(path, errbuf, errlen) != 0)
		return STORE_ERROR;

	store_clear_stale(path);
	s = xcalloc(1, sizeof(*s));
	rc = sqlite3_open_v2(path, &s->db,
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(errbuf, errlen, "%s: %s", path,
		    s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		ret = STORE_ERROR;
		goto fail;
	}
	if (timeout_ms < 0)
		timeout_ms = 0;
	sqlite3_busy_timeout(s->db, timeout_ms > INT_MAX ? INT_MAX : (int)timeout_ms);
	if (sqlite3_db_readonly(s->db, "main") == 1) {
		snprintf(errbuf, errlen, "%s: the database file is read-only", path);
		ret = STORE_ERROR;
		goto fail;
	}

	/* journal_mode answers with the mode it ended up in. */
	rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
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
		ret = store_fail(s, rc);
		snprintf(errbuf, errlen, "%s: setting WAL mode: %s", path, s->errmsg);
		sqlite3_finalize(st);
		goto fail;
	}
	sqlite3_finalize(st);
	if ((rc = store_exec(s, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON")) != SQLITE_OK) {
		snprintf(errbuf, errlen, "%s: %s", path, s->errmsg);
		ret = STORE_ERROR;
		goto fail;
	}
	if ((ret = store_migrate(s, path, errbuf, errlen)) != STORE_OK)
		goto fail;
	s->errmsg[0] = '\0';
	*out = s;
	return STORE_OK;

fail:
	store_close(s);
	return ret;
}

void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->stmt[i]);
	sqlite3_close(s->db);
	free(s);
}

/* ---- transactions ---- */

static enum store_rc
store_simple(struct store *s, enum store_stmt_id id)
{
	sqlite3_stmt *st = store_stmt(s, id);

	if (st == NULL)
		return STORE_ERROR;
	return store_exec_stmt(s, st, SQLITE_OK, NULL);
}

/* Every transaction starts with a look at the file (store_check_file):
 * nothing is written into a database that was deleted under the handle. */
enum store_rc
store_begin(struct store *s)
{
	if (store_check_file(s, 1) != 0)
		return STORE_ERROR;
	return store_simple(s, ST_BEGIN);
}

enum store_rc
store_commit(struct store *s)
{
	return store_simple(s, ST_COMMIT);
}

/* Safe to call when no transaction is open (after a failed COMMIT SQLite
 * may or may not have rolled back already). */
void
store_rollback(struct store *s)
{
	char keep[sizeof(s->errmsg)];

	if (sqlite3_get_autocommit(s->db))
		return;
	/* Keep the error that made the caller roll back. */
	memcpy(keep, s->errmsg, sizeof(keep));
	(void)store_simple(s, ST_ROLLBACK);
	memcpy(s->errmsg, keep, sizeof(keep));
}

/* ---- customers ---- */

/* Copies address into key[keylen] normalised as stored (lowercase, no <>). */
static void
store_address_key(const char *address, char *key, size_t keylen)
{
	snprintf(key, keylen, "%s", address);
	config_normalize_address(key);
}

/* The same for an address kept in a record's fixed-size field, which may
 * fill it without a NUL. */
static void
store_field_key(const char *field, size_t fieldlen, char *key, size_t keylen)
{
	snprintf(key, keylen, "%.*s", (int)strnlen(field, fieldlen), field);
	config_normalize_address(key);
}

enum store_rc
store_customer_put(struct store *s, const struct customer *c)
{
	sqlite3_stmt *st = store_stmt(s, ST_CUSTOMER_PUT);
	char key[sizeof(c->address) + 1];
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	store_field_key(c->address, sizeof(c->address), key, sizeof(key));
	BIND_FIELD(st, 1, key, &rc);
	BIND_FIELD(st, 2, c->tier, &rc);
	bind_int(st, 3, c->watch_until, &rc);
	bind_int(st, 4, c->created, &rc);
	return store_exec_stmt(s, st, rc, NULL);
}

enum store_rc
store_customer_remove(struct store *s, const char *address)
{
	sqlite3_stmt *st = store_stmt(s, ST_CUSTOMER_REMOVE);
	char key[sizeof(((struct customer *)0)->address) + 1];
	enum store_rc ret;
	int rc = SQLITE_OK, changes = 0;

	if (st == NULL)
		return STORE_ERROR;
	store_address_key(address, key, sizeof(key));
	BIND_FIELD(st, 1, key, &rc);
	ret = store_exec_stmt(s, st, rc, &changes);
	if (ret == STORE_OK && changes == 0)
		ret = STORE_NOTFOUND;
	return ret;
}

/* One lookup of key; STORE_NOTFOUND when there is no such row. */
static enum store_rc
store_customer_get(struct store *s, sqlite3_stmt *st, const char *key, size_t keylen,
    struct customer *out)
{
	int rc = SQLITE_OK;

	bind_text(st, 1, key, keylen, &rc);
	return store_one_customer(s, st, rc, out);
}

enum store_rc
store_customer_lookup(struct store *s, const char *address, struct customer *out)
{
	sqlite3_stmt *st = store_stmt(s, ST_CUSTOMER_LOOKUP);
	char key[sizeof(out->address) + 1];
	const char *at;
	enum store_rc ret;

	if (st == NULL)
		return STORE_ERROR;
	store_address_key(address, key, sizeof(key));
	ret = store_customer_get(s, st, key, sizeof(key), out);
	if (ret == STORE_NOTFOUND && (at = strrchr(key, '@')) != NULL && at != key)
		ret = store_customer_get(s, st, at, sizeof(key) - (size_t)(at - key), out);
	return ret;
}

enum store_rc
store_customer_list(struct store *s, int (*cb)(const struct customer *c, void *arg),
    void *arg)
{
	sqlite3_stmt *st = store_stmt(s, ST_CUSTOMER_LIST);
	struct customer c;
	enum store_rc ret = STORE_OK;
	int rc;

	if (st == NULL)
		return STORE_ERROR;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		store_row_customer(st, &c);
		if (cb(&c, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	if (rc != SQLITE_DONE)
		ret = store_fail(s, rc);
	store_done(st);
	return ret;
}

/* ---- cases ---- */

enum store_rc
store_case_create(struct store *s, struct case_rec *c)
{
	sqlite3_stmt *st = store_stmt(s, ST_CASE_CREATE);
	enum store_rc ret;
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, c->created, &rc);
	bind_int(st, 2, c->updated, &rc);
	if (c->status[0] == '\0')
		bind_text(st, 3, "open", 5, &rc);
	else
		BIND_FIELD(st, 3, c->status, &rc);
	BIND_FIELD(st, 4, c->client, &rc);
	BIND_FIELD(st, 5, c->support_address, &rc);
	BIND_FIELD(st, 6, c->subject, &rc);
	bind_int(st, 7, c->urgency, &rc);
	BIND_FIELD(st, 8, c->tier, &rc);
	bind_int(st, 9, c->watch, &rc);
	BIND_FIELD(st, 10, c->category, &rc);
	BIND_FIELD(st, 11, c->lang, &rc);
	BIND_FIELD(st, 12, c->reasons, &rc);
	bind_int(st, 13, c->first_due, &rc);
	bind_int(st, 14, c->resolve_due, &rc);
	bind_int(st, 15, c->first_response_at, &rc);
	bind_int(st, 16, c->resolved_at, &rc);
	BIND_FIELD(st, 17, c->assignee, &rc);
	ret = store_exec_stmt(s, st, rc, NULL);
	if (ret == STORE_OK)
		c->id = sqlite3_last_insert_rowid(s->db);
	return ret;
}

enum store_rc
store_case_get(struct store *s, long long id, struct case_rec *out)
{
	sqlite3_stmt *st = store_stmt(s, ST_CASE_GET);
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, id, &rc);
	return store_one_case(s, st, rc, out);
}

enum store_rc
store_case_touch(struct store *s, long long id, int urgency, long long now)
{
	sqlite3_stmt *st = store_stmt(s, ST_CASE_TOUCH);
	enum store_rc ret;
	int rc = SQLITE_OK, changes = 0;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, id, &rc);
	bind_int(st, 2, urgency, &rc);
	bind_int(st, 3, now, &rc);
	ret = store_exec_stmt(s, st, rc, &changes);
	if (ret == STORE_OK && changes == 0)
		ret = STORE_NOTFOUND;
	return ret;
}

enum store_rc
store_case_responded(struct store *s, long long id, long long at)
{
	sqlite3_stmt *st = store_stmt(s, ST_CASE_RESPONDED);
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, id, &rc);
	bind_int(st, 2, at, &rc);
	return store_exec_stmt(s, st, rc, NULL);
}

enum store_rc
store_case_list(struct store *s, int open_only,
    int (*cb)(const struct case_rec *c, void *arg), void *arg)
{
	sqlite3_stmt *st = store_stmt(s, ST_CASE_LIST);
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, open_only != 0, &rc);
	return store_each_case(s, st, rc, cb, arg);
}

/* ---- messages ---- */

enum store_rc
store_message_add(struct store *s, struct message_rec *m)
{
	sqlite3_stmt *st = store_stmt(s, ST_MESSAGE_ADD);
	enum store_rc ret;
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, m->case_id, &rc);
	BIND_FIELD(st, 2, m->message_id, &rc);
	BIND_FIELD(st, 3, m->direction, &rc);
	BIND_FIELD(st, 4, m->sender, &rc);
	bind_int(st, 5, m->received, &rc);
	BIND_FIELD(st, 6, m->date_header, &rc);
	BIND_FIELD(st, 7, m->subject, &rc);
	BIND_FIELD(st, 8, m->queue_id, &rc);
	bind_int(st, 9, m->urgency, &rc);
	BIND_FIELD(st, 10, m->category, &rc);
	BIND_FIELD(st, 11, m->auto_reason, &rc);
	BIND_FIELD(st, 12, m->excerpt, &rc);
	BIND_FIELD(st, 13, m->references, &rc);
	BIND_FIELD(st, 14, m->ack, &rc);
	BIND_FIELD(st, 15, m->sender_auth, &rc);
	BIND_FIELD(st, 16, m->via, &rc);
	ret = store_exec_stmt(s, st, rc, NULL);
	if (ret == STORE_OK)
		m->id = sqlite3_last_insert_rowid(s->db);
	return ret;
}

enum store_rc
store_message_case(struct store *s, const char *message_id, long long *case_id)
{
	sqlite3_stmt *st;
	enum store_rc ret = STORE_OK;
	int rc = SQLITE_OK;

	if (message_id == NULL || message_id[0] == '\0')
		return STORE_NOTFOUND;
	if ((st = store_stmt(s, ST_MESSAGE_CASE)) == NULL)
		return STORE_ERROR;
	/* At most what a message_rec can have stored, so that an over-long
	 * Message-ID still finds the (equally cut) copy. */
	bind_text(st, 1, message_id, sizeof(((struct message_rec *)0)->message_id) - 1, &rc);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*case_id = sqlite3_column_int64(st, 0);
	else if (rc == SQLITE_DONE)
		ret = STORE_NOTFOUND;
	else
		ret = store_fail(s, rc);
	store_done(st);
	return ret;
}

enum store_rc
store_message_count_since(struct store *s, long long case_id, long long since, int *count)
{
	sqlite3_stmt *st = store_stmt(s, ST_MESSAGE_COUNT_SINCE);
	enum store_rc ret = STORE_OK;
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, case_id, &rc);
	bind_int(st, 2, since, &rc);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*count = sqlite3_column_int(st, 0);
	else
		ret = store_fail(s, rc);
	store_done(st);
	return ret;
}

/* Oldest first. */
enum store_rc
store_message_list(struct store *s, long long case_id,
    int (*cb)(const struct message_rec *m, void *arg), void *arg)
{
	sqlite3_stmt *st = store_stmt(s, ST_MESSAGE_LIST);
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, case_id, &rc);
	return store_each_message(s, st, rc, cb, arg);
}

enum store_rc
store_message_undecided(struct store *s, int limit,
    int (*cb)(const struct message_rec *m, void *arg), void *arg)
{
	sqlite3_stmt *st = store_stmt(s, ST_MESSAGE_UNDECIDED);
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, limit, &rc);
	return store_each_message(s, st, rc, cb, arg);
}

enum store_rc
store_message_set_ack(struct store *s, long long id, const char *ack)
{
	sqlite3_stmt *st = store_stmt(s, ST_MESSAGE_SET_ACK);
	enum store_rc ret;
	int rc = SQLITE_OK, changes = 0;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, id, &rc);
	bind_text(st, 2, ack, sizeof(((struct message_rec *)0)->ack) - 1, &rc);
	ret = store_exec_stmt(s, st, rc, &changes);
	if (ret == STORE_OK && changes == 0)
		ret = STORE_NOTFOUND;
	return ret;
}

/* Reads one integer from a one-row statement; NULL counts as not found. */
static enum store_rc
store_one_int(struct store *s, sqlite3_stmt *st, int rc, long long *out)
{
	enum store_rc ret = STORE_OK;

	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		*out = sqlite3_column_int64(st, 0);
	else if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		ret = STORE_NOTFOUND;
	else
		ret = store_fail(s, rc);
	store_done(st);
	return ret;
}

enum store_rc
store_case_first_message(struct store *s, long long case_id, long long *message_id)
{
	sqlite3_stmt *st = store_stmt(s, ST_CASE_FIRST_MESSAGE);
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, case_id, &rc);
	return store_one_int(s, st, rc, message_id);
}

/* ---- outbox ---- */

void
outbox_rec_clear(struct outbox_rec *o)
{
	free(o->content);
	memset(o, 0, sizeof(*o));
}

enum store_rc
store_outbox_add(struct store *s, struct outbox_rec *o)
{
	sqlite3_stmt *st = store_stmt(s, ST_OUTBOX_ADD);
	enum store_rc ret;
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, o->case_id, &rc);
	BIND_FIELD(st, 2, o->kind, &rc);
	BIND_FIELD(st, 3, o->recipient, &rc);
	BIND_FIELD(st, 4, o->envelope_from, &rc);
	BIND_FIELD(st, 5, o->message_id, &rc);
	bind_text(st, 6, o->content ? o->content : "", SIZE_MAX, &rc);
	bind_int(st, 7, o->next_attempt, &rc);
	bind_int(st, 8, o->created, &rc);
	ret = store_exec_stmt(s, st, rc, NULL);
	if (ret == STORE_OK) {
		o->id = sqlite3_last_insert_rowid(s->db);
		snprintf(o->state, sizeof(o->state), "pending");
	}
	return ret;
}

STORE_EACH_OWNED(store_each_outbox, struct outbox_rec, struct outbox_rec,
    store_row_outbox, outbox_rec_clear)

enum store_rc
store_outbox_due(struct store *s, long long now, int limit,
    int (*cb)(struct outbox_rec *o, void *arg), void *arg)
{
	sqlite3_stmt *st = store_stmt(s, ST_OUTBOX_DUE);
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, now, &rc);
	bind_int(st, 2, limit, &rc);
	return store_each_outbox(s, st, rc, 1, cb, arg);
}

enum store_rc
store_outbox_list(struct store *s, long long case_id, int limit,
    int (*cb)(struct outbox_rec *o, void *arg), void *arg)
{
	sqlite3_stmt *st = store_stmt(s, ST_OUTBOX_LIST);
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, case_id, &rc);
	bind_int(st, 2, limit, &rc);
	return store_each_outbox(s, st, rc, 0, cb, arg);
}

enum store_rc
store_outbox_update(struct store *s, const struct outbox_rec *o)
{
	sqlite3_stmt *st = store_stmt(s, ST_OUTBOX_UPDATE);
	enum store_rc ret;
	int rc = SQLITE_OK, changes = 0;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, o->id, &rc);
	BIND_FIELD(st, 2, o->state, &rc);
	bind_int(st, 3, o->attempts, &rc);
	bind_int(st, 4, o->next_attempt, &rc);
	bind_int(st, 5, o->sent_at, &rc);
	BIND_FIELD(st, 6, o->last_error, &rc);
	bind_int(st, 7, o->relay_seen, &rc);
	ret = store_exec_stmt(s, st, rc, &changes);
	if (ret == STORE_OK && changes == 0)
		ret = STORE_NOTFOUND;
	return ret;
}

enum store_rc
store_outbox_relay_seen(struct store *s, const char *message_id)
{
	sqlite3_stmt *st = store_stmt(s, ST_OUTBOX_RELAY_SEEN);
	enum store_rc ret;
	int rc = SQLITE_OK, changes = 0;

	if (st == NULL)
		return STORE_ERROR;
	bind_text(st, 1, message_id, sizeof(((struct outbox_rec *)0)->message_id) - 1, &rc);
	ret = store_exec_stmt(s, st, rc, &changes);
	if (ret == STORE_OK && changes == 0)
		ret = STORE_NOTFOUND;
	return ret;
}

/* s with LIKE's wildcards escaped by '\', appended to out. */
static void
store_like_escape(char *out, size_t outlen, const char *s)
{
	size_t o = strlen(out);

	for (; *s && o + 2 < outlen; s++) {
		if (*s == '%' || *s == '_' || *s == '\\')
			out[o++] = '\\';
		out[o++] = *s;
	}
	out[o] = '\0';
}

/* Runs a count(*) statement whose parameters are already bound. */
static enum store_rc
store_count(struct store *s, sqlite3_stmt *st, int rc, int *count)
{
	long long n = 0;
	enum store_rc ret = store_one_int(s, st, rc, &n);

	*count = (int)n;
	return ret == STORE_NOTFOUND ? STORE_OK : ret;
}

enum store_rc
store_outbox_count_acks(struct store *s, const char *recipient, long long since, int *count)
{
	sqlite3_stmt *st = store_stmt(s, ST_OUTBOX_COUNT_ACKS);
	char base[320], lo[330], hi[330], like[700] = "";
	const char *at;
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	/* local+detail@domain counts as local@domain */
	snprintf(base, sizeof(base), "%s", recipient);
	at = strrchr(base, '@');
	char *plus = memchr(base, '+', at ? (size_t)(at - base) : strlen(base));
	if (plus != NULL && at != NULL)
		memmove(plus, at, strlen(at) + 1);
	at = strrchr(base, '@');
	size_t local = at ? (size_t)(at - base) : strlen(base);
	snprintf(lo, sizeof(lo), "%.*s+", (int)local, base);
	snprintf(hi, sizeof(hi), "%.*s,", (int)local, base);
	memcpy(like, base, local);
	like[local] = '\0';
	{
		char tmp[330];

		snprintf(tmp, sizeof(tmp), "%s", like);
		like[0] = '\0';
		store_like_escape(like, sizeof(like), tmp);
	}
	snprintf(like + strlen(like), sizeof(like) - strlen(like), "+%%");
	store_like_escape(like, sizeof(like), at ? at : "");
	bind_text(st, 1, base, sizeof(base) - 1, &rc);
	bind_int(st, 2, since, &rc);
	bind_text(st, 3, lo, sizeof(lo) - 1, &rc);
	bind_text(st, 4, hi, sizeof(hi) - 1, &rc);
	bind_text(st, 5, like, sizeof(like) - 1, &rc);
	return store_count(s, st, rc, count);
}

enum store_rc
store_outbox_count_kind(struct store *s, const char *kind, const char *message_id_like,
    long long since, int *count)
{
	sqlite3_stmt *st = store_stmt(s, ST_OUTBOX_COUNT_KIND);
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_text(st, 1, kind, 32, &rc);
	bind_int(st, 2, since, &rc);
	bind_text(st, 3, message_id_like ? message_id_like : "", 512, &rc);
	return store_count(s, st, rc, count);
}

enum store_rc
store_outbox_count_domain_notices(struct store *s, const char *message_id_like,
    const char *client_domain, long long since, int *count)
{
	sqlite3_stmt *st = store_stmt(s, ST_OUTBOX_COUNT_P1_DOMAIN);
	char like[600] = "%@";
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	store_like_escape(like, sizeof(like), client_domain);
	bind_int(st, 1, since, &rc);
	bind_text(st, 2, message_id_like, 512, &rc);
	bind_text(st, 3, like, sizeof(like) - 1, &rc);
	return store_count(s, st, rc, count);
}

/* ---- case life cycle ---- */

/* Runs an UPDATE on one case; STORE_NOTFOUND when there is no such case. */
static enum store_rc
store_update_one(struct store *s, sqlite3_stmt *st, int rc)
{
	int changes = 0;
	enum store_rc ret = store_exec_stmt(s, st, rc, &changes);

	return ret == STORE_OK && changes == 0 ? STORE_NOTFOUND : ret;
}

enum store_rc
store_case_set_status(struct store *s, long long id, const char *status, long long now,
    long long paused_at, long long resolve_due, long long resolved_at, long long paused_total)
{
	sqlite3_stmt *st = store_stmt(s, ST_CASE_SET_STATUS);
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, id, &rc);
	bind_text(st, 2, status, 16, &rc);
	bind_int(st, 3, now, &rc);
	bind_int(st, 4, paused_at, &rc);
	bind_int(st, 5, resolve_due, &rc);
	bind_int(st, 6, resolved_at, &rc);
	bind_int(st, 7, paused_total, &rc);
	return store_update_one(s, st, rc);
}

enum store_rc
store_case_assign(struct store *s, long long id, const char *assignee, long long now)
{
	sqlite3_stmt *st = store_stmt(s, ST_CASE_ASSIGN);
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, id, &rc);
	bind_text(st, 2, assignee, sizeof(((struct case_rec *)0)->assignee) - 1, &rc);
	bind_int(st, 3, now, &rc);
	return store_update_one(s, st, rc);
}

enum store_rc
store_case_set_resolution(struct store *s, long long id, const char *cause, const char *lesson,
    int incident)
{
	sqlite3_stmt *st = store_stmt(s, ST_CASE_SET_RESOLUTION);
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, id, &rc);
	bind_text(st, 2, cause, sizeof(((struct case_rec *)0)->cause) - 1, &rc);
	bind_text(st, 3, lesson, sizeof(((struct case_rec *)0)->lesson) - 1, &rc);
	bind_int(st, 4, incident, &rc);
	return store_update_one(s, st, rc);
}

enum store_rc
store_customer_watch(struct store *s, const char *address, const char *tier, long long until,
    long long now)
{
	sqlite3_stmt *st = store_stmt(s, ST_CUSTOMER_WATCH);
	char key[320];
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	store_address_key(address, key, sizeof(key));
	bind_text(st, 1, key, sizeof(key), &rc);
	bind_text(st, 2, tier && *tier ? tier : "unknown", 32, &rc);
	bind_int(st, 3, until, &rc);
	bind_int(st, 4, now, &rc);
	return store_exec_stmt(s, st, rc, NULL);
}

/* ---- events ---- */

enum store_rc
store_event_add(struct store *s, const struct event_rec *e)
{
	sqlite3_stmt *st = store_stmt(s, ST_EVENT_ADD);
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, e->case_id, &rc);
	BIND_FIELD(st, 2, e->kind, &rc);
	bind_int(st, 3, e->due, &rc);
	return store_exec_stmt(s, st, rc, NULL);
}

enum store_rc
store_event_due(struct store *s, long long now, int limit,
    int (*cb)(const struct event_rec *e, void *arg), void *arg)
{
	sqlite3_stmt *st = store_stmt(s, ST_EVENT_DUE);
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, now, &rc);
	bind_int(st, 2, limit, &rc);
	return store_each_event(s, st, rc, cb, arg);
}

enum store_rc
store_event_list(struct store *s, long long case_id,
    int (*cb)(const struct event_rec *e, void *arg), void *arg)
{
	sqlite3_stmt *st = store_stmt(s, ST_EVENT_LIST);
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, case_id, &rc);
	return store_each_event(s, st, rc, cb, arg);
}

enum store_rc
store_event_mark(struct store *s, long long id, long long fired, const char *note)
{
	sqlite3_stmt *st = store_stmt(s, ST_EVENT_MARK);
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, id, &rc);
	bind_int(st, 2, fired, &rc);
	bind_text(st, 3, note ? note : "", 127, &rc);
	return store_update_one(s, st, rc);
}

enum store_rc
store_event_reschedule(struct store *s, long long case_id, const char *kind, long long due)
{
	sqlite3_stmt *st = store_stmt(s, ST_EVENT_RESCHEDULE);
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, case_id, &rc);
	bind_text(st, 2, kind, 31, &rc);
	bind_int(st, 3, due, &rc);
	return store_exec_stmt(s, st, rc, NULL);
}

/* ---- pauses ---- */

enum store_rc
store_pause_add(struct store *s, long long case_id, long long start, long long end)
{
	sqlite3_stmt *st = store_stmt(s, ST_PAUSE_ADD);
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, case_id, &rc);
	bind_int(st, 2, start, &rc);
	bind_int(st, 3, end, &rc);
	return store_exec_stmt(s, st, rc, NULL);
}

enum store_rc
store_pause_list(struct store *s, long long case_id,
    int (*cb)(long long start, long long end, void *arg), void *arg)
{
	sqlite3_stmt *st = store_stmt(s, ST_PAUSE_LIST);
	enum store_rc ret = STORE_OK;
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, case_id, &rc);
	if (rc == SQLITE_OK) {
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			if (cb(sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), arg) != 0) {
				rc = SQLITE_DONE;
				break;
			}
		}
	}
	if (rc != SQLITE_DONE)
		ret = store_fail(s, rc);
	store_done(st);
	return ret;
}

enum store_rc
store_case_by_due(struct store *s, int limit,
    int (*cb)(const struct case_rec *c, void *arg), void *arg)
{
	sqlite3_stmt *st = store_stmt(s, ST_CASE_BY_DUE);
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, limit, &rc);
	return store_each_case(s, st, rc, cb, arg);
}

enum store_rc
store_event_get(struct store *s, long long id, struct event_rec *out)
{
	sqlite3_stmt *st = store_stmt(s, ST_EVENT_GET);
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, id, &rc);
	return store_one_event(s, st, rc, out);
}

enum store_rc
store_event_cancel_pending(struct store *s, long long case_id, const char *note)
{
	sqlite3_stmt *st = store_stmt(s, ST_EVENT_CANCEL_PENDING);
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, case_id, &rc);
	bind_text(st, 2, note, 127, &rc);
	return store_exec_stmt(s, st, rc, NULL);
}

enum store_rc
store_event_rearm(struct store *s, long long case_id, const char *note, long long now)
{
	sqlite3_stmt *st = store_stmt(s, ST_EVENT_REARM);
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, case_id, &rc);
	bind_text(st, 2, note, 127, &rc);
	bind_int(st, 3, now, &rc);
	return store_exec_stmt(s, st, rc, NULL);
}

/* ==== v4: customer mail settings and diagnoses (store.h) ==== */

static void
store_row_customer_mail(sqlite3_stmt *st, struct customer_mail *c)
{
	COPY_FIELD(c->address, st, 0);
	COPY_FIELD(c->smtp_host, st, 1);
	c->smtp_port = sqlite3_column_int(st, 2);
	COPY_FIELD(c->smtp_security, st, 3);
	COPY_FIELD(c->smtp_user, st, 4);
	COPY_FIELD(c->smtp_password_file, st, 5);
	COPY_FIELD(c->imap_host, st, 6);
	c->imap_port = sqlite3_column_int(st, 7);
	COPY_FIELD(c->imap_security, st, 8);
	COPY_FIELD(c->imap_user, st, 9);
	COPY_FIELD(c->imap_password_file, st, 10);
	c->updated = sqlite3_column_int64(st, 11);
}

STORE_ONE(store_one_customer_mail, struct customer_mail, store_row_customer_mail)
STORE_ONE(store_one_message, struct message_rec, store_row_message)

enum store_rc
store_customer_mail_put(struct store *s, const struct customer_mail *c)
{
	sqlite3_stmt *st = store_stmt(s, ST_CUSTOMER_MAIL_PUT);
	char key[sizeof(c->address) + 1];
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	store_field_key(c->address, sizeof(c->address), key, sizeof(key));
	BIND_FIELD(st, 1, key, &rc);
	BIND_FIELD(st, 2, c->smtp_host, &rc);
	bind_int(st, 3, c->smtp_port, &rc);
	BIND_FIELD(st, 4, c->smtp_security, &rc);
	BIND_FIELD(st, 5, c->smtp_user, &rc);
	BIND_FIELD(st, 6, c->smtp_password_file, &rc);
	BIND_FIELD(st, 7, c->imap_host, &rc);
	bind_int(st, 8, c->imap_port, &rc);
	BIND_FIELD(st, 9, c->imap_security, &rc);
	BIND_FIELD(st, 10, c->imap_user, &rc);
	BIND_FIELD(st, 11, c->imap_password_file, &rc);
	bind_int(st, 12, c->updated, &rc);
	return store_exec_stmt(s, st, rc, NULL);
}

enum store_rc
store_customer_mail_lookup(struct store *s, const char *address, struct customer_mail *out)
{
	sqlite3_stmt *st = store_stmt(s, ST_CUSTOMER_MAIL_GET);
	char key[sizeof(out->address) + 1];
	const char *at;
	enum store_rc ret;
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	store_address_key(address, key, sizeof(key));
	bind_text(st, 1, key, sizeof(key), &rc);
	ret = store_one_customer_mail(s, st, rc, out);
	if (ret == STORE_NOTFOUND && (at = strrchr(key, '@')) != NULL && at != key) {
		rc = SQLITE_OK;
		bind_text(st, 1, at, sizeof(key) - (size_t)(at - key), &rc);
		ret = store_one_customer_mail(s, st, rc, out);
	}
	return ret;
}

enum store_rc
store_customer_mail_remove(struct store *s, const char *address)
{
	sqlite3_stmt *st = store_stmt(s, ST_CUSTOMER_MAIL_REMOVE);
	char key[sizeof(((struct customer_mail *)0)->address) + 1];
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	store_address_key(address, key, sizeof(key));
	BIND_FIELD(st, 1, key, &rc);
	return store_update_one(s, st, rc);
}

void
diagnosis_rec_clear(struct diagnosis_rec *d)
{
	free(d->report_json);
	free(d->report_text);
	memset(d, 0, sizeof(*d));
}

static void
store_row_diagnosis(sqlite3_stmt *st, struct diagnosis_rec *d, int with_report)
{
	d->id = sqlite3_column_int64(st, 0);
	d->case_id = sqlite3_column_int64(st, 1);
	COPY_FIELD(d->customer, st, 2);
	COPY_FIELD(d->client, st, 3);
	d->created = sqlite3_column_int64(st, 4);
	COPY_FIELD(d->protocol, st, 5);
	COPY_FIELD(d->host, st, 6);
	d->port = sqlite3_column_int(st, 7);
	COPY_FIELD(d->security, st, 8);
	COPY_FIELD(d->source, st, 9);
	COPY_FIELD(d->skipped, st, 10);
	COPY_FIELD(d->verdict, st, 11);
	COPY_FIELD(d->hint, st, 12);
	COPY_FIELD(d->alt_host, st, 13);
	d->alt_port = sqlite3_column_int(st, 14);
	COPY_FIELD(d->alt_security, st, 15);
	d->alt_verified = sqlite3_column_int(st, 16);
	COPY_FIELD(d->provider, st, 17);
	d->incident = sqlite3_column_int64(st, 18);
	COPY_FIELD(d->client_note, st, 19);
	d->duration_ms = (long)sqlite3_column_int64(st, 20);
	d->report_json = d->report_text = NULL;
	if (with_report) {
		const unsigned char *j = sqlite3_column_text(st, 21);
		const unsigned char *t = sqlite3_column_text(st, 22);

		d->report_json = xstrdup(j ? (const char *)j : "");
		d->report_text = xstrdup(t ? (const char *)t : "");
	}
}

STORE_EACH_OWNED(store_each_diagnosis, struct diagnosis_rec, const struct diagnosis_rec,
    store_row_diagnosis, diagnosis_rec_clear)

enum store_rc
store_diagnosis_add(struct store *s, struct diagnosis_rec *d)
{
	sqlite3_stmt *st = store_stmt(s, ST_DIAGNOSIS_ADD);
	enum store_rc ret;
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, d->case_id, &rc);
	BIND_FIELD(st, 2, d->customer, &rc);
	BIND_FIELD(st, 3, d->client, &rc);
	bind_int(st, 4, d->created, &rc);
	BIND_FIELD(st, 5, d->protocol, &rc);
	BIND_FIELD(st, 6, d->host, &rc);
	bind_int(st, 7, d->port, &rc);
	BIND_FIELD(st, 8, d->security, &rc);
	BIND_FIELD(st, 9, d->source, &rc);
	BIND_FIELD(st, 10, d->skipped, &rc);
	BIND_FIELD(st, 11, d->verdict, &rc);
	BIND_FIELD(st, 12, d->hint, &rc);
	BIND_FIELD(st, 13, d->alt_host, &rc);
	bind_int(st, 14, d->alt_port, &rc);
	BIND_FIELD(st, 15, d->alt_security, &rc);
	bind_int(st, 16, d->alt_verified, &rc);
	BIND_FIELD(st, 17, d->provider, &rc);
	bind_int(st, 18, d->incident, &rc);
	BIND_FIELD(st, 19, d->client_note, &rc);
	bind_int(st, 20, d->duration_ms, &rc);
	bind_text(st, 21, d->report_json ? d->report_json : "", SIZE_MAX, &rc);
	bind_text(st, 22, d->report_text ? d->report_text : "", SIZE_MAX, &rc);
	ret = store_exec_stmt(s, st, rc, NULL);
	if (ret == STORE_OK)
		d->id = sqlite3_last_insert_rowid(s->db);
	return ret;
}

enum store_rc
store_diagnosis_list(struct store *s, long long case_id,
    int (*cb)(const struct diagnosis_rec *d, void *arg), void *arg)
{
	sqlite3_stmt *st = store_stmt(s, ST_DIAGNOSIS_LIST);
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, case_id, &rc);
	return store_each_diagnosis(s, st, rc, 1, cb, arg);
}

enum store_rc
store_diagnosis_pending(struct store *s, long long after, int limit,
    int (*cb)(const struct case_rec *c, void *arg), void *arg)
{
	sqlite3_stmt *st = store_stmt(s, ST_DIAGNOSIS_PENDING);
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, after, &rc);
	bind_int(st, 2, limit, &rc);
	return store_each_case(s, st, rc, cb, arg);
}

enum store_rc
store_diagnosis_count_since(struct store *s, const char *customer, long long since, int *count)
{
	sqlite3_stmt *st = store_stmt(s, ST_DIAGNOSIS_COUNT_SINCE);
	long long n = 0;
	enum store_rc ret;
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_text(st, 1, customer, sizeof(((struct diagnosis_rec *)0)->customer) - 1, &rc);
	bind_int(st, 2, since, &rc);
	ret = store_one_int(s, st, rc, &n);
	*count = (int)n;
	return ret == STORE_NOTFOUND ? STORE_OK : ret;
}

enum store_rc
store_diagnosis_similar(struct store *s, const char *provider, const char *verdict,
    long long since, int (*cb)(const struct diagnosis_rec *d, void *arg), void *arg)
{
	sqlite3_stmt *st = store_stmt(s, ST_DIAGNOSIS_SIMILAR);
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_text(st, 1, provider, sizeof(((struct diagnosis_rec *)0)->provider) - 1, &rc);
	bind_text(st, 2, verdict, sizeof(((struct diagnosis_rec *)0)->verdict) - 1, &rc);
	bind_int(st, 3, since, &rc);
	return store_each_diagnosis(s, st, rc, 0, cb, arg);
}

enum store_rc
store_diagnosis_set_incident(struct store *s, long long id, long long incident)
{
	sqlite3_stmt *st = store_stmt(s, ST_DIAGNOSIS_SET_INCIDENT);
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, id, &rc);
	bind_int(st, 2, incident, &rc);
	return store_update_one(s, st, rc);
}

enum store_rc
store_diagnosis_set_client_note(struct store *s, long long id, const char *note)
{
	sqlite3_stmt *st = store_stmt(s, ST_DIAGNOSIS_SET_NOTE);
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, id, &rc);
	bind_text(st, 2, note, sizeof(((struct diagnosis_rec *)0)->client_note) - 1, &rc);
	return store_update_one(s, st, rc);
}

enum store_rc
store_message_get(struct store *s, long long id, struct message_rec *out)
{
	sqlite3_stmt *st = store_stmt(s, ST_MESSAGE_GET);
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, id, &rc);
	return store_one_message(s, st, rc, out);
}

/* ==== staff commands by mail (store.h, schema v7) ==== */

static void
store_row_mailcmd(sqlite3_stmt *st, struct mailcmd_rec *m)
{
	m->id = sqlite3_column_int64(st, 0);
	m->case_id = sqlite3_column_int64(st, 1);
	COPY_FIELD(m->staff, st, 2);
	COPY_FIELD(m->login, st, 3);
	COPY_FIELD(m->message_id, st, 4);
	COPY_FIELD(m->subject, st, 5);
	COPY_FIELD(m->commands, st, 6);
	m->received = sqlite3_column_int64(st, 7);
	m->done = sqlite3_column_int64(st, 8);
	COPY_FIELD(m->result, st, 9);
}

STORE_EACH(store_each_mailcmd, struct mailcmd_rec, store_row_mailcmd)

enum store_rc
store_case_set_urgency(struct store *s, long long id, int urgency, long long first_due,
    long long resolve_due, long long now)
{
	sqlite3_stmt *st = store_stmt(s, ST_CASE_SET_URGENCY);
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, id, &rc);
	bind_int(st, 2, urgency, &rc);
	bind_int(st, 3, first_due, &rc);
	bind_int(st, 4, resolve_due, &rc);
	bind_int(st, 5, now, &rc);
	return store_update_one(s, st, rc);
}

enum store_rc
store_mailcmd_add(struct store *s, struct mailcmd_rec *m)
{
	sqlite3_stmt *st = store_stmt(s, ST_MAILCMD_ADD);
	enum store_rc ret;
	int rc = SQLITE_OK, changes = 0;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, m->case_id, &rc);
	BIND_FIELD(st, 2, m->staff, &rc);
	BIND_FIELD(st, 3, m->login, &rc);
	BIND_FIELD(st, 4, m->message_id, &rc);
	BIND_FIELD(st, 5, m->subject, &rc);
	BIND_FIELD(st, 6, m->commands, &rc);
	bind_int(st, 7, m->received, &rc);
	ret = store_exec_stmt(s, st, rc, &changes);
	m->id = ret == STORE_OK && changes ? sqlite3_last_insert_rowid(s->db) : 0;
	return ret;
}

enum store_rc
store_mailcmd_pending(struct store *s, int limit,
    int (*cb)(const struct mailcmd_rec *m, void *arg), void *arg)
{
	sqlite3_stmt *st = store_stmt(s, ST_MAILCMD_PENDING);
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, limit, &rc);
	return store_each_mailcmd(s, st, rc, cb, arg);
}

enum store_rc
store_mailcmd_done(struct store *s, long long id, long long done, const char *result)
{
	sqlite3_stmt *st = store_stmt(s, ST_MAILCMD_DONE);
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, id, &rc);
	bind_int(st, 2, done, &rc);
	bind_text(st, 3, result, sizeof(((struct mailcmd_rec *)0)->result), &rc);
	return store_update_one(s, st, rc);
}

enum store_rc
store_mailcmd_list(struct store *s, long long case_id,
    int (*cb)(const struct mailcmd_rec *m, void *arg), void *arg)
{
	sqlite3_stmt *st = store_stmt(s, ST_MAILCMD_LIST);
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_int(st, 1, case_id, &rc);
	return store_each_mailcmd(s, st, rc, cb, arg);
}

/* ==== stats: counts for helpgatectl stats (store.h) ====
 *
 * Run rarely, by hand, so the statements here are prepared per call
 * instead of being cached in s->stmt[]; that keeps this section apart from
 * the statement table.  Degraded mail is marked on messages only by a
 * schema that has a messages.degraded column (set when the worker replays
 * the milter's spool); whether there is one is read from the schema on
 * each call, and without it degraded_known is 0. */

static enum store_rc
stats_prepare(struct store *s, const char *sql, sqlite3_stmt **st)
{
	int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);

	if (rc != SQLITE_OK) {
		enum store_rc ret = store_fail(s, rc);

		sqlite3_finalize(*st);
		*st = NULL;
		return ret;
	}
	return STORE_OK;
}

/* Runs sql with ?1 = since; its rows are (name, count), appended to
 * *list (heap, grown here). */
static enum store_rc
stats_counts(struct store *s, const char *sql, long long since, struct store_count **list,
    size_t *n)
{
	sqlite3_stmt *st;
	enum store_rc ret;
	int rc = SQLITE_OK;

	if ((ret = stats_prepare(s, sql, &st)) != STORE_OK)
		return ret;
	bind_int(st, 1, since, &rc);
	if (rc == SQLITE_OK) {
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			struct store_count *c;

			*list = xrealloc(*list, (*n + 1) * sizeof(**list));
			c = &(*list)[(*n)++];
			COPY_FIELD(c->name, st, 0);
			c->n = sqlite3_column_int64(st, 1);
		}
	}
	if (rc != SQLITE_DONE)
		ret = store_fail(s, rc);
	sqlite3_finalize(st);
	return ret;
}

/* The first row of sql (?1 = since) into out[0..nout-1]; NULL reads as 0. */
static enum store_rc
stats_ints(struct store *s, const char *sql, long long since, long long *out, int nout)
{
	sqlite3_stmt *st;
	enum store_rc ret;
	int rc = SQLITE_OK;

	if ((ret = stats_prepare(s, sql, &st)) != STORE_OK)
		return ret;
	bind_int(st, 1, since, &rc);
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		for (int i = 0; i < nout && i < sqlite3_column_count(st); i++)
			out[i] = sqlite3_column_int64(st, i);
		rc = SQLITE_DONE;
	}
	if (rc != SQLITE_DONE)
		ret = store_fail(s, rc);
	sqlite3_finalize(st);
	return ret;
}

/* *yes: table exists and has column. */
static enum store_rc
stats_has_column(struct store *s, const char *table, const char *column, int *yes)
{
	sqlite3_stmt *st;
	enum store_rc ret;
	int rc = SQLITE_OK;

	*yes = 0;
	if ((ret = stats_prepare(s, "SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2",
	    &st)) != STORE_OK)
		return ret;
	bind_text(st, 1, table, SIZE_MAX, &rc);
	bind_text(st, 2, column, SIZE_MAX, &rc);
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		*yes = sqlite3_column_int(st, 0) > 0;
		rc = SQLITE_DONE;
	}
	if (rc != SQLITE_DONE)
		ret = store_fail(s, rc);
	sqlite3_finalize(st);
	return ret;
}

void
store_stats_clear(struct store_stats *st)
{
	free(st->category);
	free(st->ack_state);
	free(st->ack_skip);
	free(st->verdict);
	free(st->diag_skip);
	memset(st, 0, sizeof(*st));
}

enum store_rc
store_stats(struct store *s, long long since, struct store_stats *out)
{
	struct store_count *urg = NULL;
	size_t nurg = 0;
	long long v[4] = { 0, 0, 0, 0 };
	enum store_rc ret;
	int yes = 0, began;

	memset(out, 0, sizeof(*out));
	/* One read transaction, so that the numbers agree with each other
	 * (unless the caller has one open already). */
	if ((began = sqlite3_get_autocommit(s->db)) &&
	    sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return store_fail(s, sqlite3_errcode(s->db));
	ret = stats_counts(s, "SELECT urgency, count(*) FROM messages"
	    " WHERE direction = 'in' AND received >= ?1 GROUP BY urgency", since, &urg, &nurg);
	for (size_t i = 0; ret == STORE_OK && i < nurg; i++) {
		long u = strtol(urg[i].name, NULL, 10);

		out->messages += urg[i].n;
		if (u >= 1 && u <= 4)
			out->urgency[u] += urg[i].n;
	}
	free(urg);
	if (ret == STORE_OK)
		ret = stats_counts(s, "SELECT category, count(*) FROM messages"
		    " WHERE direction = 'in' AND received >= ?1 GROUP BY category"
		    " ORDER BY 2 DESC, 1", since, &out->category, &out->ncategory);
	if (ret == STORE_OK)
		ret = stats_has_column(s, "messages", "degraded", &yes);
	if (ret == STORE_OK && yes) {
		out->degraded_known = 1;
		ret = stats_ints(s, "SELECT count(*) FROM messages WHERE degraded <> 0"
		    " AND received >= ?1", since, &out->degraded, 1);
	}
	if (ret == STORE_OK)
		ret = stats_counts(s, "SELECT state, count(*) FROM outbox"
		    " WHERE kind = 'ack' AND created >= ?1 GROUP BY state ORDER BY 2 DESC, 1",
		    since, &out->ack_state, &out->nack_state);
	if (ret == STORE_OK)
		ret = stats_counts(s, "SELECT substr(ack, 6), count(*) FROM messages"
		    " WHERE ack LIKE 'skip:%' AND received >= ?1 GROUP BY 1 ORDER BY 2 DESC, 1",
		    since, &out->ack_skip, &out->nack_skip);
	/* A skipped diagnosis (skipped <> '') has no verdict. */
	if (ret == STORE_OK)
		ret = stats_counts(s, "SELECT verdict, count(*) FROM diagnoses"
		    " WHERE skipped = '' AND created >= ?1 GROUP BY verdict ORDER BY 2 DESC, 1",
		    since, &out->verdict, &out->nverdict);
	if (ret == STORE_OK)
		ret = stats_counts(s, "SELECT skipped, count(*) FROM diagnoses"
		    " WHERE skipped <> '' AND created >= ?1 GROUP BY skipped ORDER BY 2 DESC, 1",
		    since, &out->diag_skip, &out->ndiag_skip);
	if (ret == STORE_OK)
		ret = stats_ints(s, "SELECT"
		    " total(state = 'sending' OR (state = 'pending' AND attempts = 0)),"
		    " total(state = 'pending' AND attempts > 0),"
		    " total(state = 'failed' AND created >= ?1),"
		    " min(CASE WHEN state IN ('pending', 'sending') THEN created END)"
		    " FROM outbox", since, v, 4);
	out->outbox_queued = v[0];
	out->outbox_deferred = v[1];
	out->outbox_failed = v[2];
	out->outbox_oldest = v[3];
	if (began)
		sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	return ret;
}

/* ==== v6: the support mailbox (store.h) ==== */

enum store_rc
store_mailbox_seen(struct store *s, const char *mailbox, const char *key)
{
	sqlite3_stmt *st = store_stmt(s, ST_MAILBOX_SEEN);
	enum store_rc ret = STORE_OK;
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_text(st, 1, mailbox, 4096, &rc);
	bind_text(st, 2, key, 1024, &rc);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		ret = STORE_NOTFOUND;
	else if (rc != SQLITE_ROW)
		ret = store_fail(s, rc);
	store_done(st);
	return ret;
}

enum store_rc
store_mailbox_mark(struct store *s, const char *mailbox, const char *key, long long now)
{
	sqlite3_stmt *st = store_stmt(s, ST_MAILBOX_MARK);
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	bind_text(st, 1, mailbox, 4096, &rc);
	bind_text(st, 2, key, 1024, &rc);
	bind_int(st, 3, now, &rc);
	return store_exec_stmt(s, st, rc, NULL);
}

enum store_rc
store_mailbox_last_uid(struct store *s, const char *mailbox, unsigned long uidvalidity,
    unsigned long *last_uid)
{
	sqlite3_stmt *st = store_stmt(s, ST_MAILBOX_LAST_UID);
	enum store_rc ret = STORE_OK;
	char lo[32], hi[32];
	int rc = SQLITE_OK;

	if (st == NULL)
		return STORE_ERROR;
	snprintf(lo, sizeof(lo), "%lu/", uidvalidity);
	snprintf(hi, sizeof(hi), "%lu0", uidvalidity);
	bind_text(st, 1, mailbox, 4096, &rc);
	bind_text(st, 2, lo, sizeof(lo), &rc);
	bind_text(st, 3, hi, sizeof(hi), &rc);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*last_uid = (unsigned long)sqlite3_column_int64(st, 0);
	else
		ret = store_fail(s, rc);
	store_done(st);
	return ret;
}
