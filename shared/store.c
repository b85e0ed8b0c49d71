/*
 * store - the case store of store.h, written once for both databases.
 *
 * Every statement is a row of store_sql[] below: its SQL in the dialect
 * both SQLite and PostgreSQL speak (upserts, RETURNING, CASE instead of
 * two-argument MIN/MAX), with a .pg variant only where they differ.  Each
 * function of store.h binds its values and maps the rows through the
 * driver (store_driver.h): store_sqlite.c or store_pg.c, chosen by
 * store_open() from the Database value.  A new query is one row of the
 * table and one function here; both backends get it.
 *
 * Statements are prepared once per handle, on first use, with bound
 * parameters, and reset with their bindings cleared on every path
 * (store_done()), so an error never leaves one holding a read.
 *
 * Strings read back are cut to their record field on a UTF-8 character
 * boundary (store_copy_text()).  Strings written are read up to their field
 * size even when the caller forgot the NUL.
 */
#include "store.h"
#include "store_driver.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "xalloc.h"

/* One statement: the SQL both databases run, or the SQLite text and a
 * PostgreSQL variant. */
struct store_sql_def {
	const char	*sql;
	const char	*pg;
	const char	*params;	/* one letter per ?N: 'i' integer, 't' text */
};

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
	/* v8: several hosts (issue 16) */
	ST_OUTBOX_CLAIM,
	ST_CLAIM,
	ST_CLAIM_RELEASE,
	/* helpgatectl stats */
	ST_STATS_URGENCY,
	ST_STATS_CATEGORY,
	ST_STATS_HAS_COLUMN,
	ST_STATS_DEGRADED,
	ST_STATS_ACK_STATE,
	ST_STATS_ACK_SKIP,
	ST_STATS_VERDICT,
	ST_STATS_DIAG_SKIP,
	ST_STATS_OUTBOX,
	ST_COUNT
};

static const struct store_sql_def store_sql[ST_COUNT] = {
	[ST_CUSTOMER_PUT] = {
	    "INSERT INTO customers (" CUSTOMER_COLS ") VALUES (?1, ?2, ?3, ?4)"
	    " ON CONFLICT (address) DO UPDATE SET tier = excluded.tier,"
	    " watch_until = excluded.watch_until, created = excluded.created",
	    .params = "ttii" },
	[ST_CUSTOMER_REMOVE] = { "DELETE FROM customers WHERE address = ?1", .params = "t" },
	/* Run for the address, then for its "@domain".  (One statement with
	 * "ORDER BY address = ?1" would build a temporary b-tree per call.) */
	[ST_CUSTOMER_LOOKUP] = { "SELECT " CUSTOMER_COLS " FROM customers WHERE address = ?1",
	    .params = "t" },
	[ST_CUSTOMER_LIST] = { "SELECT " CUSTOMER_COLS " FROM customers ORDER BY address",
	    .params = "" },
	[ST_CASE_CREATE] = {
	    "INSERT INTO cases (created, updated, status, client, support_address, subject,"
	    " urgency, tier, watch, category, lang, reasons, first_due, resolve_due,"
	    " first_response_at, resolved_at, assignee)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17) RETURNING id",
	  .params = "iittttititttiiiit" },
	[ST_CASE_GET] = { "SELECT " CASE_COLS " FROM cases WHERE id = ?1", .params = "i" },
	[ST_CASE_TOUCH] = {
	    "UPDATE cases SET urgency = CASE WHEN ?2 < urgency THEN ?2 ELSE urgency END,"
	    " updated = ?3 WHERE id = ?1", .params = "iii" },
	[ST_CASE_RESPONDED] = {
	    "UPDATE cases SET first_response_at = ?2,"
	    " updated = CASE WHEN ?2 > updated THEN ?2 ELSE updated END"
	    " WHERE id = ?1 AND first_response_at = 0", .params = "ii" },
	[ST_CASE_LIST] = {
	    "SELECT " CASE_COLS " FROM cases WHERE ?1 = 0 OR status <> 'resolved'"
	    " ORDER BY id DESC", .params = "i" },
	[ST_MESSAGE_ADD] = {
	    "INSERT INTO messages (case_id, message_id, direction, sender, received,"
	    " date_header, subject, queue_id, urgency, category, auto_reason, excerpt,"
	    " refs, ack, sender_auth, via)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
	    " ON CONFLICT DO NOTHING RETURNING id", .params = "itttitttittttttt" },
	/* The "<> ''" term lets SQLite use the partial unique index. */
	[ST_MESSAGE_CASE] = {
	    "SELECT case_id FROM messages WHERE message_id = ?1 AND message_id <> ''",
	    .params = "t" },
	[ST_MESSAGE_COUNT_SINCE] = {
	    "SELECT count(*) FROM messages WHERE case_id = ?1 AND received >= ?2"
	    " AND direction = 'in'", .params = "ii" },
	[ST_MESSAGE_LIST] = {
	    "SELECT " MESSAGE_COLS " FROM messages WHERE case_id = ?1 ORDER BY received, id",
	    .params = "i" },
	[ST_CASE_SET_STATUS] = {
	    "UPDATE cases SET status = ?2, updated = ?3, paused_at = ?4, resolve_due = ?5,"
	    " resolved_at = ?6, paused_total = ?7 WHERE id = ?1", .params = "itiiiii" },
	[ST_CASE_ASSIGN] = { "UPDATE cases SET assignee = ?2, updated = ?3 WHERE id = ?1",
	    .params = "iti" },
	[ST_CASE_SET_RESOLUTION] = {
	    "UPDATE cases SET cause = ?2, lesson = ?3, incident = ?4 WHERE id = ?1",
	    .params = "itti" },
	[ST_CUSTOMER_WATCH] = {
	    "INSERT INTO customers (address, tier, watch_until, created) VALUES (?1, ?2, ?3, ?4)"
	    " ON CONFLICT (address) DO UPDATE SET watch_until = CASE WHEN excluded.watch_until >"
	    " customers.watch_until THEN excluded.watch_until ELSE customers.watch_until END",
	    .params = "ttii" },
	[ST_EVENT_ADD] = {
	    "INSERT INTO events (case_id, kind, due, fired, note) VALUES (?1, ?2, ?3, 0, '')"
	    " ON CONFLICT DO NOTHING RETURNING id", .params = "iti" },
	[ST_EVENT_DUE] = {
	    "SELECT id, case_id, kind, due, fired, note FROM events"
	    " WHERE fired = 0 AND due <= ?1 ORDER BY due LIMIT ?2", .params = "ii" },
	[ST_EVENT_MARK] = { "UPDATE events SET fired = ?2, note = ?3 WHERE id = ?1",
	    .params = "iit" },
	[ST_EVENT_RESCHEDULE] = {
	    "UPDATE events SET due = ?3 WHERE case_id = ?1 AND kind = ?2 AND fired = 0",
	    .params = "iti" },
	[ST_EVENT_LIST] = {
	    "SELECT id, case_id, kind, due, fired, note FROM events WHERE case_id = ?1"
	    " ORDER BY due, id", .params = "i" },
	[ST_EVENT_GET] = { "SELECT id, case_id, kind, due, fired, note FROM events WHERE id = ?1",
	    .params = "i" },
	[ST_EVENT_CANCEL_PENDING] = {
	    "UPDATE events SET fired = -1, note = ?2 WHERE case_id = ?1 AND fired = 0",
	    .params = "it" },
	[ST_EVENT_REARM] = {
	    "UPDATE events SET fired = 0, note = '' WHERE case_id = ?1 AND fired = -1"
	    " AND note = ?2 AND due > ?3", .params = "iti" },
	/* "end" is quoted: PostgreSQL reserves the word. */
	[ST_PAUSE_ADD] = { "INSERT INTO pauses (case_id, start, \"end\") VALUES (?1, ?2, ?3)",
	    .params = "iii" },
	[ST_PAUSE_LIST] = { "SELECT start, \"end\" FROM pauses WHERE case_id = ?1 ORDER BY start",
	    .params = "i" },
	/* The expression and the WHERE match cases_next_due, so this walks
	 * that index and stops at the limit. */
	[ST_CASE_BY_DUE] = {
	    "SELECT " CASE_COLS " FROM cases WHERE status <> 'resolved'"
	    " ORDER BY (CASE WHEN first_response_at = 0 THEN first_due ELSE resolve_due END)"
	    " LIMIT ?1", .params = "i" },
	[ST_MESSAGE_UNDECIDED] = {
	    "SELECT " MESSAGE_COLS " FROM messages WHERE ack = '' ORDER BY id LIMIT ?1",
	    .params = "i" },
	/* Only an undecided message: a second worker's decision never lands. */
	[ST_MESSAGE_SET_ACK] = { "UPDATE messages SET ack = ?2 WHERE id = ?1 AND ack = ''",
	    .params = "it" },
	[ST_CASE_FIRST_MESSAGE] = { "SELECT min(id) FROM messages WHERE case_id = ?1",
	    .params = "i" },
	[ST_OUTBOX_ADD] = {
	    "INSERT INTO outbox (case_id, kind, recipient, envelope_from, message_id, content,"
	    " state, attempts, next_attempt, created)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', 0, ?7, ?8)"
	    " ON CONFLICT DO NOTHING RETURNING id", .params = "itttttii" },
	[ST_OUTBOX_DUE] = {
	    "SELECT " OUTBOX_COLS ", content FROM outbox"
	    " WHERE state IN ('pending', 'sending') AND next_attempt <= ?1"
	    " ORDER BY next_attempt, id LIMIT ?2", .params = "ii" },
	[ST_OUTBOX_UPDATE] = {
	    "UPDATE outbox SET state = ?2, attempts = ?3, next_attempt = ?4, sent_at = ?5,"
	    " last_error = ?6, relay_seen = CASE WHEN ?7 < 0 THEN relay_seen ELSE ?7 END"
	    " WHERE id = ?1", .params = "itiiiti" },
	[ST_OUTBOX_RELAY_SEEN] = {
	    "UPDATE outbox SET relay_seen = 1"
	    " WHERE message_id = ?1 AND state IN ('pending', 'sending')", .params = "t" },
	/* one address and its +detail variants (?3 "local+", ?4 "local,", ?5
	 * the LIKE pattern "local+%@domain"): the range uses outbox_acks_to */
	[ST_OUTBOX_COUNT_ACKS] = {
	    "SELECT count(*) FROM outbox WHERE kind = 'ack' AND created >= ?2 AND"
	    " (recipient = ?1 OR (recipient >= ?3 AND recipient < ?4 AND recipient LIKE ?5 ESCAPE '\\'))",
	    .params = "tittt" },
	[ST_OUTBOX_COUNT_KIND] = {
	    "SELECT count(*) FROM outbox WHERE kind = ?1 AND created >= ?2"
	    " AND (?3 = '' OR message_id LIKE ?3)", .params = "tit" },
	/* P1 notices about cases of one client domain (?3 "%@domain") */
	[ST_OUTBOX_COUNT_P1_DOMAIN] = {
	    "SELECT count(*) FROM outbox o JOIN cases c ON c.id = o.case_id"
	    " WHERE o.kind = 'notice' AND o.created >= ?1 AND o.message_id LIKE ?2"
	    " AND c.client LIKE ?3 ESCAPE '\\'", .params = "itt" },
	[ST_OUTBOX_LIST] = {
	    "SELECT " OUTBOX_COLS " FROM outbox WHERE ?1 = 0 OR case_id = ?1"
	    " ORDER BY id DESC LIMIT ?2", .params = "ii" },
	/* ---- v4: the diagnosis ---- */
	[ST_CUSTOMER_MAIL_PUT] = {
	    "INSERT INTO customer_mail (" CUSTOMER_MAIL_COLS ")"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
	    " ON CONFLICT (address) DO UPDATE SET smtp_host = excluded.smtp_host,"
	    " smtp_port = excluded.smtp_port, smtp_security = excluded.smtp_security,"
	    " smtp_user = excluded.smtp_user, smtp_password_file = excluded.smtp_password_file,"
	    " imap_host = excluded.imap_host, imap_port = excluded.imap_port,"
	    " imap_security = excluded.imap_security, imap_user = excluded.imap_user,"
	    " imap_password_file = excluded.imap_password_file, updated = excluded.updated",
	    .params = "ttittttittti" },
	[ST_CUSTOMER_MAIL_GET] = {
	    "SELECT " CUSTOMER_MAIL_COLS " FROM customer_mail WHERE address = ?1",
	    .params = "t" },
	[ST_CUSTOMER_MAIL_REMOVE] = { "DELETE FROM customer_mail WHERE address = ?1",
	    .params = "t" },
	[ST_DIAGNOSIS_ADD] = {
	    "INSERT INTO diagnoses (case_id, customer, client, created, protocol, host, port,"
	    " security, source, skipped, verdict, hint, alt_host, alt_port, alt_security,"
	    " alt_verified, provider, incident, client_note, duration_ms, report_json, report_text)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,"
	    " ?17, ?18, ?19, ?20, ?21, ?22) ON CONFLICT DO NOTHING RETURNING id",
	    .params = "ittittittttttititititt" },
	[ST_DIAGNOSIS_LIST] = {
	    "SELECT " DIAGNOSIS_COLS ", report_json, report_text FROM diagnoses"
	    " WHERE case_id = ?1 ORDER BY id", .params = "i" },
	/* The category term matches cases_outgoing, so this walks that
	 * partial index from ?1 on and probes diagnoses_case per case. */
	[ST_DIAGNOSIS_PENDING] = {
	    "SELECT " CASE_COLS " FROM cases WHERE category = 'outgoing-mail' AND id > ?1"
	    " AND NOT EXISTS (SELECT 1 FROM diagnoses WHERE diagnoses.case_id = cases.id)"
	    " ORDER BY id LIMIT ?2", .params = "ii" },
	[ST_DIAGNOSIS_COUNT_SINCE] = {
	    "SELECT count(*) FROM diagnoses WHERE customer = ?1 AND created >= ?2"
	    " AND skipped = ''", .params = "ti" },
	[ST_DIAGNOSIS_SIMILAR] = {
	    "SELECT " DIAGNOSIS_COLS " FROM diagnoses WHERE provider = ?1 AND verdict = ?2"
	    " AND created >= ?3 AND skipped = '' ORDER BY created, id", .params = "tti" },
	[ST_DIAGNOSIS_SET_INCIDENT] = { "UPDATE diagnoses SET incident = ?2 WHERE id = ?1",
	    .params = "ii" },
	[ST_DIAGNOSIS_SET_NOTE] = { "UPDATE diagnoses SET client_note = ?2 WHERE id = ?1",
	    .params = "it" },
	[ST_MESSAGE_GET] = { "SELECT " MESSAGE_COLS " FROM messages WHERE id = ?1",
	    .params = "i" },
	/* ---- v6: the support mailbox ---- */
	[ST_MAILBOX_SEEN] = { "SELECT 1 FROM mailbox_seen WHERE mailbox = ?1 AND key = ?2",
	    .params = "tt" },
	[ST_MAILBOX_MARK] = {
	    "INSERT INTO mailbox_seen (mailbox, key, seen_at) VALUES (?1, ?2, ?3)"
	    " ON CONFLICT DO NOTHING", .params = "tti" },
	/* keys "V/U" of one UIDVALIDITY: ?2 = "V/", ?3 = "V0" ('0' follows
	 * '/'), a range of the primary key */
	[ST_MAILBOX_LAST_UID] = {
	    "SELECT coalesce(max(CAST(substr(key, length(?2) + 1) AS INTEGER)), 0)"
	    " FROM mailbox_seen WHERE mailbox = ?1 AND key >= ?2 AND key < ?3",
	  .pg = "SELECT coalesce(max(CAST(substr(key, length(?2) + 1) AS BIGINT)), 0)"
	    " FROM mailbox_seen WHERE mailbox = ?1 AND key >= ?2 AND key < ?3",
	    .params = "ttt" },
	/* ---- v7: staff commands by mail ---- */
	[ST_CASE_SET_URGENCY] = {
	    "UPDATE cases SET urgency = ?2, first_due = ?3, resolve_due = ?4, updated = ?5"
	    " WHERE id = ?1", .params = "iiiii" },
	[ST_MAILCMD_ADD] = {
	    "INSERT INTO mail_commands (case_id, staff, login, message_id, subject,"
	    " commands, received) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
	    " ON CONFLICT DO NOTHING RETURNING id", .params = "ittttti" },
	[ST_MAILCMD_PENDING] = {
	    "SELECT " MAILCMD_COLS " FROM mail_commands WHERE done = 0 ORDER BY id LIMIT ?1",
	    .params = "i" },
	/* Only once: a second worker's run of the same mail never lands. */
	[ST_MAILCMD_DONE] = {
	    "UPDATE mail_commands SET done = ?2, result = ?3 WHERE id = ?1 AND done = 0",
	    .params = "iit" },
	[ST_MAILCMD_LIST] = {
	    "SELECT " MAILCMD_COLS " FROM mail_commands WHERE case_id = ?1 ORDER BY id",
	    .params = "i" },
	/* ---- v8: several hosts ---- */
	/* Takes due rows for this worker: each moves to "sending" with a lease
	 * (next_attempt) in the one statement that picks it, so two workers
	 * never take the same row; PostgreSQL skips the rows another worker is
	 * taking this very moment instead of waiting for them. */
	[ST_OUTBOX_CLAIM] = {
	    "UPDATE outbox SET state = 'sending', next_attempt = ?2,"
	    " attempts = attempts + CASE WHEN relay_seen = 0 THEN 1 ELSE 0 END"
	    " WHERE id IN (SELECT id FROM outbox WHERE state IN ('pending', 'sending')"
	    " AND next_attempt <= ?1 ORDER BY next_attempt, id LIMIT ?3)"
	    " RETURNING " OUTBOX_COLS ", content",
	  .pg = "UPDATE outbox SET state = 'sending', next_attempt = ?2,"
	    " attempts = attempts + CASE WHEN relay_seen = 0 THEN 1 ELSE 0 END"
	    " WHERE id IN (SELECT id FROM outbox WHERE state IN ('pending', 'sending')"
	    " AND next_attempt <= ?1 ORDER BY next_attempt, id LIMIT ?3"
	    " FOR UPDATE SKIP LOCKED)"
	    " RETURNING " OUTBOX_COLS ", content", .params = "iii" },
	/* A lease on a piece of work (what, key): taken when free or expired,
	 * renewed by its holder. */
	[ST_CLAIM] = {
	    "INSERT INTO work_claims (what, key, holder, until) VALUES (?1, ?2, ?3, ?5)"
	    " ON CONFLICT (what, key) DO UPDATE SET holder = excluded.holder,"
	    " until = excluded.until WHERE work_claims.until <= ?4"
	    " OR work_claims.holder = excluded.holder RETURNING key", .params = "titii" },
	[ST_CLAIM_RELEASE] = {
	    "DELETE FROM work_claims WHERE what = ?1 AND key = ?2 AND holder = ?3",
	    .params = "tit" },
	/* ---- stats ---- */
	[ST_STATS_URGENCY] = { "SELECT urgency, count(*) FROM messages"
	    " WHERE direction = 'in' AND received >= ?1 GROUP BY urgency", .params = "i" },
	[ST_STATS_CATEGORY] = { "SELECT category, count(*) FROM messages"
	    " WHERE direction = 'in' AND received >= ?1 GROUP BY category ORDER BY 2 DESC, 1",
	    .params = "i" },
	[ST_STATS_HAS_COLUMN] = {
	    "SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2",
	  .pg = "SELECT count(*) FROM information_schema.columns"
	    " WHERE table_schema = current_schema() AND table_name = ?1 AND column_name = ?2",
	    .params = "tt" },
	[ST_STATS_DEGRADED] = { "SELECT count(*) FROM messages WHERE degraded <> 0"
	    " AND received >= ?1", .params = "i" },
	[ST_STATS_ACK_STATE] = { "SELECT state, count(*) FROM outbox"
	    " WHERE kind = 'ack' AND created >= ?1 GROUP BY state ORDER BY 2 DESC, 1",
	    .params = "i" },
	[ST_STATS_ACK_SKIP] = { "SELECT substr(ack, 6), count(*) FROM messages"
	    " WHERE ack LIKE 'skip:%' AND received >= ?1 GROUP BY 1 ORDER BY 2 DESC, 1",
	    .params = "i" },
	/* A skipped diagnosis (skipped <> '') has no verdict. */
	[ST_STATS_VERDICT] = { "SELECT verdict, count(*) FROM diagnoses"
	    " WHERE skipped = '' AND created >= ?1 GROUP BY verdict ORDER BY 2 DESC, 1",
	    .params = "i" },
	[ST_STATS_DIAG_SKIP] = { "SELECT skipped, count(*) FROM diagnoses"
	    " WHERE skipped <> '' AND created >= ?1 GROUP BY skipped ORDER BY 2 DESC, 1",
	    .params = "i" },
	[ST_STATS_OUTBOX] = { "SELECT"
	    " coalesce(sum(CASE WHEN state = 'sending' OR (state = 'pending' AND attempts = 0)"
	    " THEN 1 ELSE 0 END), 0),"
	    " coalesce(sum(CASE WHEN state = 'pending' AND attempts > 0 THEN 1 ELSE 0 END), 0),"
	    " coalesce(sum(CASE WHEN state = 'failed' AND created >= ?1 THEN 1 ELSE 0 END), 0),"
	    " coalesce(min(CASE WHEN state IN ('pending', 'sending') THEN created END), 0)"
	    " FROM outbox", .params = "i" },
};



struct store {
	struct store_common	 c;	/* first: store_common() */
	struct store_stmt	*stmt[ST_COUNT];
	int			 pg;	/* the PostgreSQL driver: use .pg variants */
};

struct store_common *
store_common(struct store *s)
{
	return &s->c;
}

int
store_seterr(struct store *s, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->c.errmsg, sizeof(s->c.errmsg), fmt, ap);
	va_end(ap);
	return rc;
}

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
	return s != NULL ? s->c.errmsg : "no store";
}

const char *
store_backend(const struct store *s)
{
	return s->c.drv->name;
}

/* Is target a PostgreSQL connection string rather than a file path? */
int
store_target_is_pg(const char *target)
{
	return strncmp(target, "postgresql://", 13) == 0 ||
	    strncmp(target, "postgres://", 11) == 0 ||
	    (target[0] != '/' && target[0] != '.' && strchr(target, '=') != NULL);
}

/* The cached statement id, prepared on first use; NULL (error recorded) if
 * it cannot be prepared or the driver's check fails. */
static struct store_stmt *
store_stmt(struct store *s, enum store_stmt_id id)
{
	const char *sql;

	if (s->c.drv->check(s, 0) != STORE_OK)
		return NULL;
	if (s->stmt[id] != NULL)
		return s->stmt[id];
	sql = s->pg && store_sql[id].pg != NULL ? store_sql[id].pg : store_sql[id].sql;
	if (s->c.drv->prepare(s, sql, &s->stmt[id]) != STORE_OK) {
		s->stmt[id] = NULL;
		return NULL;
	}
	return s->stmt[id];
}

#define COL_INT(st, i)	((st)->drv->col_int((st), (i)))
#define COL_TEXT(st, i)	((st)->drv->col_text((st), (i)))

static int
store_step(struct store *s, struct store_stmt *st)
{
	return st->drv->step(s, st);
}

/* Returns a cached statement to its idle state: no open read, no bindings
 * that point into the caller's memory. */
static void
store_done(struct store_stmt *st)
{
	st->drv->reset(st);
}

/* Binding helpers: each does nothing once *rc holds an error, so a run of
 * binds is checked once at the end.  The text is not copied: the statement
 * is run and reset before the caller's memory can change. */
static void
bind_text(struct store_stmt *st, int idx, const char *v, size_t max, int *rc)
{
	if (*rc == STORE_OK)
		*rc = st->drv->bind_text(st, idx, v, strnlen(v, max));
}

static void
bind_int(struct store_stmt *st, int idx, long long v, int *rc)
{
	if (*rc == STORE_OK)
		*rc = st->drv->bind_int(st, idx, v);
}

/* field must be an array (sizeof is its capacity), never a pointer. */
#define STORE_IS_ARRAY(a) \
	(!__builtin_types_compatible_p(__typeof__(a), __typeof__(&(a)[0])))

/* Copies column col into dst[dstlen], NUL-terminated.  Text that does not
 * fit is cut before the first byte of the character that would be split,
 * so a reader never sees half of a UTF-8 sequence (a decoder would show
 * U+FFFD, and JSON output would be invalid).  Only a valid lead byte is
 * looked for, at most 3 bytes back; text that is not UTF-8 is cut where it
 * falls. */
static void
store_copy_text(char *dst, size_t dstlen, struct store_stmt *st, int col)
{
	const unsigned char *src = (const unsigned char *)COL_TEXT(st, col);
	size_t n, cut;

	if (src == NULL) {
		dst[0] = '\0';
		return;
	}
	n = strlen((const char *)src);
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
store_row_customer(struct store_stmt *st, struct customer *c)
{
	COPY_FIELD(c->address, st, 0);
	COPY_FIELD(c->tier, st, 1);
	c->watch_until = COL_INT(st, 2);
	c->created = COL_INT(st, 3);
}

static void
store_row_case(struct store_stmt *st, struct case_rec *c)
{
	c->id = COL_INT(st, 0);
	c->created = COL_INT(st, 1);
	c->updated = COL_INT(st, 2);
	COPY_FIELD(c->status, st, 3);
	COPY_FIELD(c->client, st, 4);
	COPY_FIELD(c->support_address, st, 5);
	COPY_FIELD(c->subject, st, 6);
	c->urgency = (int)COL_INT(st, 7);
	COPY_FIELD(c->tier, st, 8);
	c->watch = (int)COL_INT(st, 9);
	COPY_FIELD(c->category, st, 10);
	COPY_FIELD(c->lang, st, 11);
	COPY_FIELD(c->reasons, st, 12);
	c->first_due = COL_INT(st, 13);
	c->resolve_due = COL_INT(st, 14);
	c->first_response_at = COL_INT(st, 15);
	c->resolved_at = COL_INT(st, 16);
	COPY_FIELD(c->assignee, st, 17);
	c->paused_at = COL_INT(st, 18);
	COPY_FIELD(c->cause, st, 19);
	COPY_FIELD(c->lesson, st, 20);
	c->incident = (int)COL_INT(st, 21);
	c->paused_total = COL_INT(st, 22);
}

static void
store_row_event(struct store_stmt *st, struct event_rec *e)
{
	e->id = COL_INT(st, 0);
	e->case_id = COL_INT(st, 1);
	COPY_FIELD(e->kind, st, 2);
	e->due = COL_INT(st, 3);
	e->fired = COL_INT(st, 4);
	COPY_FIELD(e->note, st, 5);
}

static void
store_row_message(struct store_stmt *st, struct message_rec *m)
{
	m->id = COL_INT(st, 0);
	m->case_id = COL_INT(st, 1);
	COPY_FIELD(m->message_id, st, 2);
	COPY_FIELD(m->direction, st, 3);
	COPY_FIELD(m->sender, st, 4);
	m->received = COL_INT(st, 5);
	COPY_FIELD(m->date_header, st, 6);
	COPY_FIELD(m->subject, st, 7);
	COPY_FIELD(m->queue_id, st, 8);
	m->urgency = (int)COL_INT(st, 9);
	COPY_FIELD(m->category, st, 10);
	COPY_FIELD(m->auto_reason, st, 11);
	COPY_FIELD(m->excerpt, st, 12);
	COPY_FIELD(m->references, st, 13);
	COPY_FIELD(m->ack, st, 14);
	COPY_FIELD(m->sender_auth, st, 15);
	COPY_FIELD(m->via, st, 16);
}

static void
store_row_outbox(struct store_stmt *st, struct outbox_rec *o, int with_content)
{
	o->id = COL_INT(st, 0);
	o->case_id = COL_INT(st, 1);
	COPY_FIELD(o->kind, st, 2);
	COPY_FIELD(o->recipient, st, 3);
	COPY_FIELD(o->envelope_from, st, 4);
	COPY_FIELD(o->message_id, st, 5);
	COPY_FIELD(o->state, st, 6);
	o->attempts = (int)COL_INT(st, 7);
	o->next_attempt = COL_INT(st, 8);
	o->created = COL_INT(st, 9);
	o->sent_at = COL_INT(st, 10);
	o->relay_seen = (int)COL_INT(st, 11);
	COPY_FIELD(o->last_error, st, 12);
	o->content = NULL;
	if (with_content) {
		const char *c = COL_TEXT(st, 13);
		o->content = xstrdup(c ? (const char *)c : "");
	}
}

/*
 * Arguments.  A statement's values are given as one ARGS(...) list, checked
 * against the parameter types of its row of store_sql[] before anything is
 * bound: ARG_I an integer, ARG_T text read up to max bytes, ARG_F a record's
 * text field (an array: text that fills it needs no NUL).
 */
struct store_arg {
	char		 type;		/* 'i' or 't' */
	long long	 i;
	const char	*t;
	size_t		 max;
};

struct store_args {
	const struct store_arg	*v;
	size_t			 n;
};

#define ARG_I(v)	((struct store_arg){ 'i', (long long)(v), NULL, 0 })
#define ARG_T(v, m)	((struct store_arg){ 't', 0, (v), (m) })
#define ARG_F(f)	ARG_T((f), sizeof(f) + 0 * sizeof(char[STORE_IS_ARRAY(f) ? 1 : -1]))
#define ARGS(...)	((struct store_args){ (const struct store_arg[]){ __VA_ARGS__ },	\
			    sizeof((const struct store_arg[]){ __VA_ARGS__ }) /		\
			    sizeof(struct store_arg) })
#define ARGS0		((struct store_args){ NULL, 0 })
/* Text for a field of record type rec: at most what the field holds. */
#define ARG_FOR(v, rec, field)	ARG_T((v), sizeof(((rec *)0)->field) - 1)

/* Statement id, prepared, with args bound; NULL (error set, statement
 * reset) when it cannot be prepared or args do not match its row's
 * parameter types, a mistake in this file that the unit tests meet. */
static struct store_stmt *
store_bind(struct store *s, enum store_stmt_id id, struct store_args args)
{
	struct store_stmt *st = store_stmt(s, id);
	const char *types = store_sql[id].params != NULL ? store_sql[id].params : "";
	int rc = STORE_OK;

	if (st == NULL)
		return NULL;
	if (strlen(types) != args.n)
		rc = store_seterr(s, STORE_ERROR, "statement %d: %zu values for %zu parameters",
		    (int)id, args.n, strlen(types));
	for (size_t k = 0; k < args.n && rc == STORE_OK; k++) {
		const struct store_arg *a = &args.v[k];

		if (a->type != types[k])
			rc = store_seterr(s, STORE_ERROR, "statement %d: value %zu is not of type %c",
			    (int)id, k + 1, types[k]);
		else if (a->type == 'i')
			rc = st->drv->bind_int(st, (int)k + 1, a->i);
		else
			rc = st->drv->bind_text(st, (int)k + 1, a->t, strnlen(a->t, a->max));
	}
	if (rc != STORE_OK) {
		if (s->c.errmsg[0] == '\0')
			store_seterr(s, rc, "statement %d: binding failed", (int)id);
		store_done(st);
		return NULL;
	}
	return st;
}

/*
 * The ways a bound statement is run (st NULL: store_bind failed, its error
 * stands).  store_each_case(), store_each_message(), ...: step a statement
 * that yields rows of one kind, hand each to cb (a non-zero return stops),
 * reset the statement.  The record lives on the heap: a case_rec is
 * several KB and this may run on a libmilter thread.
 */
#define STORE_EACH(name, type, row)						\
static enum store_rc								\
name(struct store *s, struct store_stmt *st,					\
    int (*cb)(const type *rec, void *arg), void *arg)				\
{										\
	type *rec;								\
	int rc;									\
										\
	if (st == NULL)								\
		return STORE_ERROR;						\
	rec = xmalloc(sizeof(*rec));						\
	while ((rc = store_step(s, st)) == STEP_ROW) {				\
		row(st, rec);							\
		if (cb(rec, arg) != 0) {					\
			rc = STEP_DONE;						\
			break;							\
		}								\
	}									\
	store_done(st);								\
	free(rec);								\
	return rc == STEP_DONE ? STORE_OK : (enum store_rc)rc;			\
}
/*
 * STORE_EACH_OWNED: STORE_EACH for records that own heap memory (outbox
 * content, diagnosis reports).  row() loads the large columns only when
 * the caller's "full" says so, and clear() frees them after each callback,
 * so the callback must copy what it keeps.
 */
#define STORE_EACH_OWNED(name, type, cbtype, row, clear)			\
static enum store_rc								\
name(struct store *s, struct store_stmt *st, int full,				\
    int (*cb)(cbtype *rec, void *arg), void *arg)				\
{										\
	type *rec;								\
	int rc;									\
										\
	if (st == NULL)								\
		return STORE_ERROR;						\
	rec = xcalloc(1, sizeof(*rec));						\
	while ((rc = store_step(s, st)) == STEP_ROW) {				\
		int stop;							\
										\
		row(st, rec, full);						\
		stop = cb(rec, arg);						\
		clear(rec);							\
		if (stop) {							\
			rc = STEP_DONE;						\
			break;							\
		}								\
	}									\
	store_done(st);								\
	free(rec);								\
	return rc == STEP_DONE ? STORE_OK : (enum store_rc)rc;			\
}
/*
 * store_one_case(), store_one_customer(), ...: at most one row into *out;
 * STORE_NOTFOUND when there is none.  The statement is reset either way.
 */
#define STORE_ONE(name, type, row)						\
static enum store_rc								\
name(struct store *s, struct store_stmt *st, type *out)				\
{										\
	int rc;									\
										\
	if (st == NULL)								\
		return STORE_ERROR;						\
	if ((rc = store_step(s, st)) == STEP_ROW)				\
		row(st, out);							\
	store_done(st);								\
	return rc == STEP_ROW ? STORE_OK : rc == STEP_DONE ? STORE_NOTFOUND :	\
	    (enum store_rc)rc;							\
}
STORE_ONE(store_one_case, struct case_rec, store_row_case)
STORE_ONE(store_one_customer, struct customer, store_row_customer)
STORE_ONE(store_one_event, struct event_rec, store_row_event)

STORE_EACH(store_each_case, struct case_rec, store_row_case)
STORE_EACH(store_each_message, struct message_rec, store_row_message)
STORE_EACH(store_each_event, struct event_rec, store_row_event)

/* Runs a bound statement to its end.  Sets *changes to the rows it changed
 * when changes is not NULL. */
static enum store_rc
store_exec_stmt(struct store *s, struct store_stmt *st, int *changes)
{
	int rc;

	if (st == NULL)
		return STORE_ERROR;
	while ((rc = store_step(s, st)) == STEP_ROW)
		;
	if (rc == STEP_DONE && changes != NULL)
		*changes = st->drv->changes(s, st);
	store_done(st);
	return rc == STEP_DONE ? STORE_OK : (enum store_rc)rc;
}

/* An UPDATE or DELETE of one row: STORE_NOTFOUND when it changed none. */
static enum store_rc
store_update_one(struct store *s, struct store_stmt *st)
{
	int changes = 0;
	enum store_rc ret = store_exec_stmt(s, st, &changes);

	return ret == STORE_OK && changes == 0 ? STORE_NOTFOUND : ret;
}

/* Runs an "INSERT ... ON CONFLICT DO NOTHING RETURNING id": *id is the new
 * row's id, or STORE_EXISTS when a unique key was already there. */
static enum store_rc
store_insert_id(struct store *s, struct store_stmt *st, long long *id)
{
	int rc, got = 0;

	if (st == NULL)
		return STORE_ERROR;
	while ((rc = store_step(s, st)) == STEP_ROW)
		if (!got++)
			*id = COL_INT(st, 0);
	store_done(st);
	if (rc != STEP_DONE)
		return (enum store_rc)rc;
	if (!got)
		return store_seterr(s, STORE_EXISTS, "UNIQUE key already present: nothing written");
	return STORE_OK;
}

/* One integer, the first column of the first row, into *out; no row or
 * NULL is STORE_NOTFOUND. */
static enum store_rc
store_one_int(struct store *s, struct store_stmt *st, long long *out)
{
	int rc;

	if (st == NULL)
		return STORE_ERROR;
	if ((rc = store_step(s, st)) == STEP_ROW) {
		if (st->drv->col_null(st, 0))
			rc = STEP_DONE;
		else
			*out = COL_INT(st, 0);
	}
	store_done(st);
	return rc == STEP_ROW ? STORE_OK : rc == STEP_DONE ? STORE_NOTFOUND : (enum store_rc)rc;
}

/* A count(*) into *count. */
static enum store_rc
store_count(struct store *s, struct store_stmt *st, int *count)
{
	long long n = 0;
	enum store_rc ret = store_one_int(s, st, &n);

	*count = (int)n;
	return ret == STORE_NOTFOUND ? STORE_OK : ret;
}

/* ---- open, close, transactions ---- */

enum store_rc
store_open(const char *target, long timeout_ms, struct store **out, char *errbuf,
    size_t errlen)
{
	struct store *s;
	char scratch[512];
	int rc;

	*out = NULL;
	if (errbuf == NULL || errlen == 0) {
		errbuf = scratch;
		errlen = sizeof(scratch);
	}
	errbuf[0] = '\0';
	if (timeout_ms < 0)
		timeout_ms = 0;
	s = xcalloc(1, sizeof(*s));
	s->pg = store_target_is_pg(target);
	s->c.drv = s->pg ? &store_pg_driver : &store_sqlite_driver;
	if ((rc = s->c.drv->open(s, target, timeout_ms, errbuf, errlen)) != STORE_OK) {
		free(s);
		return (enum store_rc)rc;
	}
	s->c.errmsg[0] = '\0';
	*out = s;
	return STORE_OK;
}

void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		if (s->stmt[i] != NULL)
			s->c.drv->finalize(s->stmt[i]);
	s->c.drv->close(s);
	free(s);
}

/* A write transaction: serialised with every other writer on the database
 * (SQLite: BEGIN IMMEDIATE; PostgreSQL: a transaction-scoped advisory lock),
 * so that a read-then-write inside it sees what the last writer committed. */
enum store_rc
store_begin(struct store *s)
{
	int rc;

	if (s->c.drv->in_transaction(s))
		return store_seterr(s, STORE_ERROR, "cannot start a transaction within a transaction");
	if ((rc = s->c.drv->check(s, 1)) == STORE_OK)
		rc = s->c.drv->begin(s, 1);
	return (enum store_rc)rc;
}

enum store_rc
store_commit(struct store *s)
{
	if (!s->c.drv->in_transaction(s))
		return store_seterr(s, STORE_ERROR, "cannot commit - no transaction is active");
	return (enum store_rc)s->c.drv->commit(s);
}

/* Safe to call when no transaction is open (after a failed COMMIT SQLite
 * may or may not have rolled back already). */
void
store_rollback(struct store *s)
{
	char keep[sizeof(s->c.errmsg)];

	if (!s->c.drv->in_transaction(s))
		return;
	/* Keep the error that made the caller roll back. */
	memcpy(keep, s->c.errmsg, sizeof(keep));
	s->c.drv->rollback(s);
	memcpy(s->c.errmsg, keep, sizeof(keep));
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
	char key[sizeof(c->address) + 1];

	store_field_key(c->address, sizeof(c->address), key, sizeof(key));
	return store_exec_stmt(s, store_bind(s, ST_CUSTOMER_PUT, ARGS(ARG_F(key), ARG_F(c->tier),
	    ARG_I(c->watch_until), ARG_I(c->created))), NULL);
}

enum store_rc
store_customer_remove(struct store *s, const char *address)
{
	char key[sizeof(((struct customer *)0)->address) + 1];

	store_address_key(address, key, sizeof(key));
	return store_update_one(s, store_bind(s, ST_CUSTOMER_REMOVE, ARGS(ARG_F(key))));
}

/* The exact address first, then its "@domain". */
enum store_rc
store_customer_lookup(struct store *s, const char *address, struct customer *out)
{
	char key[sizeof(out->address) + 1];
	const char *at;
	enum store_rc ret;

	store_address_key(address, key, sizeof(key));
	ret = store_one_customer(s, store_bind(s, ST_CUSTOMER_LOOKUP, ARGS(ARG_F(key))), out);
	if (ret == STORE_NOTFOUND && (at = strrchr(key, '@')) != NULL && at != key)
		ret = store_one_customer(s, store_bind(s, ST_CUSTOMER_LOOKUP,
		    ARGS(ARG_T(at, sizeof(key) - (size_t)(at - key)))), out);
	return ret;
}

STORE_EACH(store_each_customer, struct customer, store_row_customer)

enum store_rc
store_customer_list(struct store *s, int (*cb)(const struct customer *c, void *arg),
    void *arg)
{
	return store_each_customer(s, store_bind(s, ST_CUSTOMER_LIST, ARGS0), cb, arg);
}

/* ---- cases ---- */

enum store_rc
store_case_create(struct store *s, struct case_rec *c)
{
	return store_insert_id(s, store_bind(s, ST_CASE_CREATE, ARGS(ARG_I(c->created),
	    ARG_I(c->updated), c->status[0] ? ARG_F(c->status) : ARG_T("open", 5),
	    ARG_F(c->client), ARG_F(c->support_address), ARG_F(c->subject), ARG_I(c->urgency),
	    ARG_F(c->tier), ARG_I(c->watch), ARG_F(c->category), ARG_F(c->lang),
	    ARG_F(c->reasons), ARG_I(c->first_due), ARG_I(c->resolve_due),
	    ARG_I(c->first_response_at), ARG_I(c->resolved_at), ARG_F(c->assignee))), &c->id);
}

enum store_rc
store_case_get(struct store *s, long long id, struct case_rec *out)
{
	return store_one_case(s, store_bind(s, ST_CASE_GET, ARGS(ARG_I(id))), out);
}

enum store_rc
store_case_touch(struct store *s, long long id, int urgency, long long now)
{
	return store_update_one(s, store_bind(s, ST_CASE_TOUCH, ARGS(ARG_I(id), ARG_I(urgency),
	    ARG_I(now))));
}

enum store_rc
store_case_responded(struct store *s, long long id, long long at)
{
	return store_exec_stmt(s, store_bind(s, ST_CASE_RESPONDED, ARGS(ARG_I(id),
	    ARG_I(at))), NULL);
}

enum store_rc
store_case_list(struct store *s, int open_only,
    int (*cb)(const struct case_rec *c, void *arg), void *arg)
{
	return store_each_case(s, store_bind(s, ST_CASE_LIST, ARGS(ARG_I(open_only != 0))), cb,
	    arg);
}

/* ---- messages ---- */

enum store_rc
store_message_add(struct store *s, struct message_rec *m)
{
	enum store_rc ret;

	ret = store_insert_id(s, store_bind(s, ST_MESSAGE_ADD, ARGS(ARG_I(m->case_id),
	    ARG_F(m->message_id), ARG_F(m->direction), ARG_F(m->sender), ARG_I(m->received),
	    ARG_F(m->date_header), ARG_F(m->subject), ARG_F(m->queue_id), ARG_I(m->urgency),
	    ARG_F(m->category), ARG_F(m->auto_reason), ARG_F(m->excerpt), ARG_F(m->references),
	    ARG_F(m->ack), ARG_F(m->sender_auth), ARG_F(m->via))), &m->id);
	return ret;
}

enum store_rc
store_message_case(struct store *s, const char *message_id, long long *case_id)
{
	if (message_id == NULL || message_id[0] == '\0')
		return STORE_NOTFOUND;
	/* At most what a message_rec can have stored, so that an over-long
	 * Message-ID still finds the (equally cut) copy. */
	return store_one_int(s, store_bind(s, ST_MESSAGE_CASE, ARGS(ARG_T(message_id,
	    sizeof(((struct message_rec *)0)->message_id) - 1))), case_id);
}

enum store_rc
store_message_count_since(struct store *s, long long case_id, long long since, int *count)
{
	return store_count(s, store_bind(s, ST_MESSAGE_COUNT_SINCE, ARGS(ARG_I(case_id),
	    ARG_I(since))), count);
}

/* Oldest first. */
enum store_rc
store_message_list(struct store *s, long long case_id,
    int (*cb)(const struct message_rec *m, void *arg), void *arg)
{
	return store_each_message(s, store_bind(s, ST_MESSAGE_LIST, ARGS(ARG_I(case_id))), cb, arg);
}

enum store_rc
store_message_undecided(struct store *s, int limit,
    int (*cb)(const struct message_rec *m, void *arg), void *arg)
{
	return store_each_message(s, store_bind(s, ST_MESSAGE_UNDECIDED, ARGS(ARG_I(limit))), cb,
	    arg);
}

enum store_rc
store_message_set_ack(struct store *s, long long id, const char *ack)
{
	return store_update_one(s, store_bind(s, ST_MESSAGE_SET_ACK, ARGS(ARG_I(id),
	    ARG_FOR(ack, struct message_rec, ack))));
}


enum store_rc
store_case_first_message(struct store *s, long long case_id, long long *message_id)
{
	return store_one_int(s, store_bind(s, ST_CASE_FIRST_MESSAGE, ARGS(ARG_I(case_id))),
	    message_id);
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
	enum store_rc ret;

	ret = store_insert_id(s, store_bind(s, ST_OUTBOX_ADD, ARGS(ARG_I(o->case_id),
	    ARG_F(o->kind), ARG_F(o->recipient), ARG_F(o->envelope_from), ARG_F(o->message_id),
	    ARG_T(o->content ? o->content : "", SIZE_MAX), ARG_I(o->next_attempt),
	    ARG_I(o->created))), &o->id);
	if (ret == STORE_OK) {
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
	return store_each_outbox(s, store_bind(s, ST_OUTBOX_DUE, ARGS(ARG_I(now),
	    ARG_I(limit))), 1, cb, arg);
}

enum store_rc
store_outbox_list(struct store *s, long long case_id, int limit,
    int (*cb)(struct outbox_rec *o, void *arg), void *arg)
{
	return store_each_outbox(s, store_bind(s, ST_OUTBOX_LIST, ARGS(ARG_I(case_id),
	    ARG_I(limit))), 0, cb, arg);
}

enum store_rc
store_outbox_update(struct store *s, const struct outbox_rec *o)
{
	return store_update_one(s, store_bind(s, ST_OUTBOX_UPDATE, ARGS(ARG_I(o->id),
	    ARG_F(o->state), ARG_I(o->attempts), ARG_I(o->next_attempt), ARG_I(o->sent_at),
	    ARG_F(o->last_error), ARG_I(o->relay_seen))));
}

enum store_rc
store_outbox_relay_seen(struct store *s, const char *message_id)
{
	return store_update_one(s, store_bind(s, ST_OUTBOX_RELAY_SEEN,
	    ARGS(ARG_FOR(message_id, struct outbox_rec, message_id))));
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


enum store_rc
store_outbox_count_acks(struct store *s, const char *recipient, long long since, int *count)
{
	char base[320], lo[330], hi[330], like[700] = "";
	const char *at;

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
	return store_count(s, store_bind(s, ST_OUTBOX_COUNT_ACKS, ARGS(ARG_T(base, sizeof(base) - 1),
	    ARG_I(since), ARG_T(lo, sizeof(lo) - 1), ARG_T(hi, sizeof(hi) - 1),
	    ARG_T(like, sizeof(like) - 1))), count);
}

enum store_rc
store_outbox_count_kind(struct store *s, const char *kind, const char *message_id_like,
    long long since, int *count)
{
	return store_count(s, store_bind(s, ST_OUTBOX_COUNT_KIND, ARGS(ARG_T(kind, 32),
	    ARG_I(since), ARG_T(message_id_like ? message_id_like : "", 512))), count);
}

enum store_rc
store_outbox_count_domain_notices(struct store *s, const char *message_id_like,
    const char *client_domain, long long since, int *count)
{
	char like[600] = "%@";

	store_like_escape(like, sizeof(like), client_domain);
	return store_count(s, store_bind(s, ST_OUTBOX_COUNT_P1_DOMAIN, ARGS(ARG_I(since),
	    ARG_T(message_id_like, 512), ARG_T(like, sizeof(like) - 1))), count);
}

/* ---- case life cycle ---- */


enum store_rc
store_case_set_status(struct store *s, long long id, const char *status, long long now,
    long long paused_at, long long resolve_due, long long resolved_at, long long paused_total)
{
	return store_update_one(s, store_bind(s, ST_CASE_SET_STATUS, ARGS(ARG_I(id),
	    ARG_T(status, 16), ARG_I(now), ARG_I(paused_at), ARG_I(resolve_due),
	    ARG_I(resolved_at), ARG_I(paused_total))));
}

enum store_rc
store_case_assign(struct store *s, long long id, const char *assignee, long long now)
{
	return store_update_one(s, store_bind(s, ST_CASE_ASSIGN, ARGS(ARG_I(id),
	    ARG_FOR(assignee, struct case_rec, assignee), ARG_I(now))));
}

enum store_rc
store_case_set_resolution(struct store *s, long long id, const char *cause, const char *lesson,
    int incident)
{
	return store_update_one(s, store_bind(s, ST_CASE_SET_RESOLUTION, ARGS(ARG_I(id),
	    ARG_FOR(cause, struct case_rec, cause),
	    ARG_FOR(lesson, struct case_rec, lesson), ARG_I(incident))));
}

enum store_rc
store_customer_watch(struct store *s, const char *address, const char *tier, long long until,
    long long now)
{
	char key[320];

	store_address_key(address, key, sizeof(key));
	return store_exec_stmt(s, store_bind(s, ST_CUSTOMER_WATCH, ARGS(ARG_T(key, sizeof(key)),
	    ARG_T(tier && *tier ? tier : "unknown", 32), ARG_I(until), ARG_I(now))), NULL);
}

/* ---- events ---- */

enum store_rc
store_event_add(struct store *s, const struct event_rec *e)
{
	long long id = 0;

	return store_insert_id(s, store_bind(s, ST_EVENT_ADD, ARGS(ARG_I(e->case_id),
	    ARG_F(e->kind), ARG_I(e->due))), &id);
}

enum store_rc
store_event_due(struct store *s, long long now, int limit,
    int (*cb)(const struct event_rec *e, void *arg), void *arg)
{
	return store_each_event(s, store_bind(s, ST_EVENT_DUE, ARGS(ARG_I(now),
	    ARG_I(limit))), cb, arg);
}

enum store_rc
store_event_list(struct store *s, long long case_id,
    int (*cb)(const struct event_rec *e, void *arg), void *arg)
{
	return store_each_event(s, store_bind(s, ST_EVENT_LIST, ARGS(ARG_I(case_id))), cb, arg);
}

enum store_rc
store_event_mark(struct store *s, long long id, long long fired, const char *note)
{
	return store_update_one(s, store_bind(s, ST_EVENT_MARK, ARGS(ARG_I(id), ARG_I(fired),
	    ARG_T(note ? note : "", 127))));
}

enum store_rc
store_event_reschedule(struct store *s, long long case_id, const char *kind, long long due)
{
	return store_exec_stmt(s, store_bind(s, ST_EVENT_RESCHEDULE, ARGS(ARG_I(case_id),
	    ARG_T(kind, 31), ARG_I(due))), NULL);
}

/* ---- pauses ---- */

enum store_rc
store_pause_add(struct store *s, long long case_id, long long start, long long end)
{
	return store_exec_stmt(s, store_bind(s, ST_PAUSE_ADD, ARGS(ARG_I(case_id), ARG_I(start),
	    ARG_I(end))), NULL);
}

enum store_rc
store_pause_list(struct store *s, long long case_id,
    int (*cb)(long long start, long long end, void *arg), void *arg)
{
	struct store_stmt *st = store_bind(s, ST_PAUSE_LIST, ARGS(ARG_I(case_id)));
	int rc;

	if (st == NULL)
		return STORE_ERROR;
	while ((rc = store_step(s, st)) == STEP_ROW) {
		if (cb(COL_INT(st, 0), COL_INT(st, 1), arg) != 0) {
			rc = STEP_DONE;
			break;
		}
	}
	store_done(st);
	return rc == STEP_DONE ? STORE_OK : (enum store_rc)rc;
}

enum store_rc
store_case_by_due(struct store *s, int limit,
    int (*cb)(const struct case_rec *c, void *arg), void *arg)
{
	return store_each_case(s, store_bind(s, ST_CASE_BY_DUE, ARGS(ARG_I(limit))), cb, arg);
}

enum store_rc
store_event_get(struct store *s, long long id, struct event_rec *out)
{
	return store_one_event(s, store_bind(s, ST_EVENT_GET, ARGS(ARG_I(id))), out);
}

enum store_rc
store_event_cancel_pending(struct store *s, long long case_id, const char *note)
{
	return store_exec_stmt(s, store_bind(s, ST_EVENT_CANCEL_PENDING, ARGS(ARG_I(case_id),
	    ARG_T(note, 127))), NULL);
}

enum store_rc
store_event_rearm(struct store *s, long long case_id, const char *note, long long now)
{
	return store_exec_stmt(s, store_bind(s, ST_EVENT_REARM, ARGS(ARG_I(case_id),
	    ARG_T(note, 127), ARG_I(now))), NULL);
}

/* ==== v4: customer mail settings and diagnoses (store.h) ==== */

static void
store_row_customer_mail(struct store_stmt *st, struct customer_mail *c)
{
	COPY_FIELD(c->address, st, 0);
	COPY_FIELD(c->smtp_host, st, 1);
	c->smtp_port = (int)COL_INT(st, 2);
	COPY_FIELD(c->smtp_security, st, 3);
	COPY_FIELD(c->smtp_user, st, 4);
	COPY_FIELD(c->smtp_password_file, st, 5);
	COPY_FIELD(c->imap_host, st, 6);
	c->imap_port = (int)COL_INT(st, 7);
	COPY_FIELD(c->imap_security, st, 8);
	COPY_FIELD(c->imap_user, st, 9);
	COPY_FIELD(c->imap_password_file, st, 10);
	c->updated = COL_INT(st, 11);
}

STORE_ONE(store_one_customer_mail, struct customer_mail, store_row_customer_mail)
STORE_ONE(store_one_message, struct message_rec, store_row_message)

enum store_rc
store_customer_mail_put(struct store *s, const struct customer_mail *c)
{
	char key[sizeof(c->address) + 1];

	store_field_key(c->address, sizeof(c->address), key, sizeof(key));
	return store_exec_stmt(s, store_bind(s, ST_CUSTOMER_MAIL_PUT, ARGS(ARG_F(key),
	    ARG_F(c->smtp_host), ARG_I(c->smtp_port), ARG_F(c->smtp_security),
	    ARG_F(c->smtp_user), ARG_F(c->smtp_password_file), ARG_F(c->imap_host),
	    ARG_I(c->imap_port), ARG_F(c->imap_security), ARG_F(c->imap_user),
	    ARG_F(c->imap_password_file), ARG_I(c->updated))), NULL);
}

enum store_rc
store_customer_mail_lookup(struct store *s, const char *address, struct customer_mail *out)
{
	char key[sizeof(out->address) + 1];
	const char *at;
	enum store_rc ret;

	store_address_key(address, key, sizeof(key));
	ret = store_one_customer_mail(s, store_bind(s, ST_CUSTOMER_MAIL_GET, ARGS(ARG_F(key))),
	    out);
	if (ret == STORE_NOTFOUND && (at = strrchr(key, '@')) != NULL && at != key)
		ret = store_one_customer_mail(s, store_bind(s, ST_CUSTOMER_MAIL_GET,
		    ARGS(ARG_T(at, sizeof(key) - (size_t)(at - key)))), out);
	return ret;
}

enum store_rc
store_customer_mail_remove(struct store *s, const char *address)
{
	char key[sizeof(((struct customer_mail *)0)->address) + 1];

	store_address_key(address, key, sizeof(key));
	return store_update_one(s, store_bind(s, ST_CUSTOMER_MAIL_REMOVE, ARGS(ARG_F(key))));
}

void
diagnosis_rec_clear(struct diagnosis_rec *d)
{
	free(d->report_json);
	free(d->report_text);
	memset(d, 0, sizeof(*d));
}

static void
store_row_diagnosis(struct store_stmt *st, struct diagnosis_rec *d, int with_report)
{
	d->id = COL_INT(st, 0);
	d->case_id = COL_INT(st, 1);
	COPY_FIELD(d->customer, st, 2);
	COPY_FIELD(d->client, st, 3);
	d->created = COL_INT(st, 4);
	COPY_FIELD(d->protocol, st, 5);
	COPY_FIELD(d->host, st, 6);
	d->port = (int)COL_INT(st, 7);
	COPY_FIELD(d->security, st, 8);
	COPY_FIELD(d->source, st, 9);
	COPY_FIELD(d->skipped, st, 10);
	COPY_FIELD(d->verdict, st, 11);
	COPY_FIELD(d->hint, st, 12);
	COPY_FIELD(d->alt_host, st, 13);
	d->alt_port = (int)COL_INT(st, 14);
	COPY_FIELD(d->alt_security, st, 15);
	d->alt_verified = (int)COL_INT(st, 16);
	COPY_FIELD(d->provider, st, 17);
	d->incident = COL_INT(st, 18);
	COPY_FIELD(d->client_note, st, 19);
	d->duration_ms = (long)COL_INT(st, 20);
	d->report_json = d->report_text = NULL;
	if (with_report) {
		const char *j = COL_TEXT(st, 21);
		const char *t = COL_TEXT(st, 22);

		d->report_json = xstrdup(j ? (const char *)j : "");
		d->report_text = xstrdup(t ? (const char *)t : "");
	}
}

STORE_EACH_OWNED(store_each_diagnosis, struct diagnosis_rec, const struct diagnosis_rec,
    store_row_diagnosis, diagnosis_rec_clear)

enum store_rc
store_diagnosis_add(struct store *s, struct diagnosis_rec *d)
{
	enum store_rc ret;

	ret = store_insert_id(s, store_bind(s, ST_DIAGNOSIS_ADD, ARGS(ARG_I(d->case_id),
	    ARG_F(d->customer), ARG_F(d->client), ARG_I(d->created), ARG_F(d->protocol),
	    ARG_F(d->host), ARG_I(d->port), ARG_F(d->security), ARG_F(d->source),
	    ARG_F(d->skipped), ARG_F(d->verdict), ARG_F(d->hint), ARG_F(d->alt_host),
	    ARG_I(d->alt_port), ARG_F(d->alt_security), ARG_I(d->alt_verified),
	    ARG_F(d->provider), ARG_I(d->incident), ARG_F(d->client_note), ARG_I(d->duration_ms),
	    ARG_T(d->report_json ? d->report_json : "", SIZE_MAX),
	    ARG_T(d->report_text ? d->report_text : "", SIZE_MAX))), &d->id);
	return ret;
}

enum store_rc
store_diagnosis_list(struct store *s, long long case_id,
    int (*cb)(const struct diagnosis_rec *d, void *arg), void *arg)
{
	return store_each_diagnosis(s, store_bind(s, ST_DIAGNOSIS_LIST, ARGS(ARG_I(case_id))), 1,
	    cb, arg);
}

enum store_rc
store_diagnosis_pending(struct store *s, long long after, int limit,
    int (*cb)(const struct case_rec *c, void *arg), void *arg)
{
	return store_each_case(s, store_bind(s, ST_DIAGNOSIS_PENDING, ARGS(ARG_I(after),
	    ARG_I(limit))), cb, arg);
}

enum store_rc
store_diagnosis_count_since(struct store *s, const char *customer, long long since, int *count)
{
	return store_count(s, store_bind(s, ST_DIAGNOSIS_COUNT_SINCE,
	    ARGS(ARG_FOR(customer, struct diagnosis_rec, customer), ARG_I(since))), count);
}

enum store_rc
store_diagnosis_similar(struct store *s, const char *provider, const char *verdict,
    long long since, int (*cb)(const struct diagnosis_rec *d, void *arg), void *arg)
{
	return store_each_diagnosis(s, store_bind(s, ST_DIAGNOSIS_SIMILAR,
	    ARGS(ARG_FOR(provider, struct diagnosis_rec, provider),
	    ARG_FOR(verdict, struct diagnosis_rec, verdict), ARG_I(since))), 0, cb, arg);
}

enum store_rc
store_diagnosis_set_incident(struct store *s, long long id, long long incident)
{
	return store_update_one(s, store_bind(s, ST_DIAGNOSIS_SET_INCIDENT, ARGS(ARG_I(id),
	    ARG_I(incident))));
}

enum store_rc
store_diagnosis_set_client_note(struct store *s, long long id, const char *note)
{
	return store_update_one(s, store_bind(s, ST_DIAGNOSIS_SET_NOTE, ARGS(ARG_I(id),
	    ARG_FOR(note, struct diagnosis_rec, client_note))));
}

enum store_rc
store_message_get(struct store *s, long long id, struct message_rec *out)
{
	return store_one_message(s, store_bind(s, ST_MESSAGE_GET, ARGS(ARG_I(id))), out);
}

/* ==== staff commands by mail (store.h, schema v7) ==== */

static void
store_row_mailcmd(struct store_stmt *st, struct mailcmd_rec *m)
{
	m->id = COL_INT(st, 0);
	m->case_id = COL_INT(st, 1);
	COPY_FIELD(m->staff, st, 2);
	COPY_FIELD(m->login, st, 3);
	COPY_FIELD(m->message_id, st, 4);
	COPY_FIELD(m->subject, st, 5);
	COPY_FIELD(m->commands, st, 6);
	m->received = COL_INT(st, 7);
	m->done = COL_INT(st, 8);
	COPY_FIELD(m->result, st, 9);
}

STORE_EACH(store_each_mailcmd, struct mailcmd_rec, store_row_mailcmd)

enum store_rc
store_case_set_urgency(struct store *s, long long id, int urgency, long long first_due,
    long long resolve_due, long long now)
{
	return store_update_one(s, store_bind(s, ST_CASE_SET_URGENCY, ARGS(ARG_I(id),
	    ARG_I(urgency), ARG_I(first_due), ARG_I(resolve_due), ARG_I(now))));
}

enum store_rc
store_mailcmd_add(struct store *s, struct mailcmd_rec *m)
{
	enum store_rc ret;

	m->id = 0;
	ret = store_insert_id(s, store_bind(s, ST_MAILCMD_ADD, ARGS(ARG_I(m->case_id),
	    ARG_F(m->staff), ARG_F(m->login), ARG_F(m->message_id), ARG_F(m->subject),
	    ARG_F(m->commands), ARG_I(m->received))), &m->id);
	return ret == STORE_EXISTS ? STORE_OK : ret;
}

enum store_rc
store_mailcmd_pending(struct store *s, int limit,
    int (*cb)(const struct mailcmd_rec *m, void *arg), void *arg)
{
	return store_each_mailcmd(s, store_bind(s, ST_MAILCMD_PENDING, ARGS(ARG_I(limit))), cb,
	    arg);
}

enum store_rc
store_mailcmd_done(struct store *s, long long id, long long done, const char *result)
{
	return store_update_one(s, store_bind(s, ST_MAILCMD_DONE, ARGS(ARG_I(id), ARG_I(done),
	    ARG_T(result, sizeof(((struct mailcmd_rec *)0)->result)))));
}

enum store_rc
store_mailcmd_list(struct store *s, long long case_id,
    int (*cb)(const struct mailcmd_rec *m, void *arg), void *arg)
{
	return store_each_mailcmd(s, store_bind(s, ST_MAILCMD_LIST, ARGS(ARG_I(case_id))), cb, arg);
}

/* ==== stats: counts for helpgatectl stats (store.h) ====
 *
 * Degraded mail is marked on messages only by a schema that has a
 * messages.degraded column (set when the worker replays the milter's
 * spool); whether there is one is read from the schema on each call, and
 * without it degraded_known is 0. */

/* Runs statement id with ?1 = since; its rows are (name, count), appended
 * to *list (heap, grown here). */
static enum store_rc
stats_counts(struct store *s, enum store_stmt_id id, long long since,
    struct store_count **list, size_t *n)
{
	struct store_stmt *st = store_bind(s, id, ARGS(ARG_I(since)));
	int rc;

	if (st == NULL)
		return STORE_ERROR;
	while ((rc = store_step(s, st)) == STEP_ROW) {
		struct store_count *c;

		*list = xrealloc(*list, (*n + 1) * sizeof(**list));
		c = &(*list)[(*n)++];
		COPY_FIELD(c->name, st, 0);
		c->n = COL_INT(st, 1);
	}
	store_done(st);
	return rc == STEP_DONE ? STORE_OK : (enum store_rc)rc;
}

/* The first row of statement id (?1 = since) into out[0..nout-1]; NULL
 * reads as 0. */
static enum store_rc
stats_ints(struct store *s, enum store_stmt_id id, long long since, long long *out, int nout)
{
	struct store_stmt *st = store_bind(s, id, ARGS(ARG_I(since)));
	int rc;

	if (st == NULL)
		return STORE_ERROR;
	if ((rc = store_step(s, st)) == STEP_ROW) {
		for (int i = 0; i < nout && i < st->drv->col_count(st); i++)
			out[i] = COL_INT(st, i);
		rc = STEP_DONE;
	}
	store_done(st);
	return rc == STEP_DONE ? STORE_OK : (enum store_rc)rc;
}

/* *yes: table exists and has column. */
static enum store_rc
stats_has_column(struct store *s, const char *table, const char *column, int *yes)
{
	long long n = 0;
	enum store_rc ret = store_one_int(s, store_bind(s, ST_STATS_HAS_COLUMN,
	    ARGS(ARG_T(table, 64), ARG_T(column, 64))), &n);

	*yes = n > 0;
	return ret == STORE_NOTFOUND ? STORE_OK : ret;
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
	int yes = 0, began, rc;

	memset(out, 0, sizeof(*out));
	/* One read transaction, so that the numbers agree with each other
	 * (unless the caller has one open already). */
	if ((rc = s->c.drv->check(s, 1)) != STORE_OK)
		return (enum store_rc)rc;
	if ((began = !s->c.drv->in_transaction(s)) &&
	    (rc = s->c.drv->begin(s, 0)) != STORE_OK)
		return (enum store_rc)rc;
	ret = stats_counts(s, ST_STATS_URGENCY, since, &urg, &nurg);
	for (size_t i = 0; ret == STORE_OK && i < nurg; i++) {
		long u = strtol(urg[i].name, NULL, 10);

		out->messages += urg[i].n;
		if (u >= 1 && u <= 4)
			out->urgency[u] += urg[i].n;
	}
	free(urg);
	if (ret == STORE_OK)
		ret = stats_counts(s, ST_STATS_CATEGORY, since, &out->category, &out->ncategory);
	if (ret == STORE_OK)
		ret = stats_has_column(s, "messages", "degraded", &yes);
	if (ret == STORE_OK && yes) {
		out->degraded_known = 1;
		ret = stats_ints(s, ST_STATS_DEGRADED, since, &out->degraded, 1);
	}
	if (ret == STORE_OK)
		ret = stats_counts(s, ST_STATS_ACK_STATE, since, &out->ack_state, &out->nack_state);
	if (ret == STORE_OK)
		ret = stats_counts(s, ST_STATS_ACK_SKIP, since, &out->ack_skip, &out->nack_skip);
	if (ret == STORE_OK)
		ret = stats_counts(s, ST_STATS_VERDICT, since, &out->verdict, &out->nverdict);
	if (ret == STORE_OK)
		ret = stats_counts(s, ST_STATS_DIAG_SKIP, since, &out->diag_skip, &out->ndiag_skip);
	if (ret == STORE_OK)
		ret = stats_ints(s, ST_STATS_OUTBOX, since, v, 4);
	out->outbox_queued = v[0];
	out->outbox_deferred = v[1];
	out->outbox_failed = v[2];
	out->outbox_oldest = v[3];
	if (began) {
		if (ret == STORE_OK)
			ret = (enum store_rc)s->c.drv->commit(s);
		else
			store_rollback(s);
	}
	return ret;
}

/* ==== v6: the support mailbox (store.h) ==== */

enum store_rc
store_mailbox_seen(struct store *s, const char *mailbox, const char *key)
{
	long long one = 0;

	return store_one_int(s, store_bind(s, ST_MAILBOX_SEEN, ARGS(ARG_T(mailbox, 4096),
	    ARG_T(key, 1024))), &one);
}

enum store_rc
store_mailbox_mark(struct store *s, const char *mailbox, const char *key, long long now)
{
	return store_exec_stmt(s, store_bind(s, ST_MAILBOX_MARK, ARGS(ARG_T(mailbox, 4096),
	    ARG_T(key, 1024), ARG_I(now))), NULL);
}

enum store_rc
store_mailbox_last_uid(struct store *s, const char *mailbox, unsigned long uidvalidity,
    unsigned long *last_uid)
{
	char lo[32], hi[32];
	long long n = 0;
	enum store_rc ret;

	snprintf(lo, sizeof(lo), "%lu/", uidvalidity);
	snprintf(hi, sizeof(hi), "%lu0", uidvalidity);
	ret = store_one_int(s, store_bind(s, ST_MAILBOX_LAST_UID, ARGS(ARG_T(mailbox, 4096),
	    ARG_F(lo), ARG_F(hi))), &n);
	*last_uid = (unsigned long)n;
	return ret == STORE_NOTFOUND ? STORE_OK : ret;
}


/* ==== v8: several hosts on one database (issue 16) ==== */

enum store_rc
store_outbox_claim(struct store *s, long long now, long long lease_until, int limit,
    int (*cb)(struct outbox_rec *o, void *arg), void *arg)
{
	return store_each_outbox(s, store_bind(s, ST_OUTBOX_CLAIM, ARGS(ARG_I(now),
	    ARG_I(lease_until), ARG_I(limit))), 1, cb, arg);
}

enum store_rc
store_claim(struct store *s, const char *what, long long key, const char *holder,
    long long now, long long until)
{
	long long got = 0;

	return store_insert_id(s, store_bind(s, ST_CLAIM, ARGS(ARG_T(what, 64), ARG_I(key),
	    ARG_T(holder, 256), ARG_I(now), ARG_I(until))), &got);
}

enum store_rc
store_claim_release(struct store *s, const char *what, long long key, const char *holder)
{
	return store_exec_stmt(s, store_bind(s, ST_CLAIM_RELEASE, ARGS(ARG_T(what, 64),
	    ARG_I(key), ARG_T(holder, 256))), NULL);
}

/* ==== store_copy: every row of one store into another (store.h) ==== */

/* The tables and columns a copy moves, parents before children (foreign
 * keys); 'i' an integer column, 't' text.  work_claims is left out: a
 * lease belongs to a running worker of the old store. */
static const struct store_table {
	const char	*name;
	const char	*cols;
	const char	*types;
	int		 has_id;	/* an id column whose sequence follows */
} store_tables[] = {
	{ "customers", CUSTOMER_COLS, "ttii", 0 },
	{ "customer_mail", CUSTOMER_MAIL_COLS, "ttittttittti", 0 },
	{ "cases", CASE_COLS, "iiittttititttiiiitittii", 1 },
	{ "messages", MESSAGE_COLS, "iitttitttittttttt", 1 },
	{ "outbox", OUTBOX_COLS ", content", "iitttttiiiiitt", 1 },
	{ "events", "id, case_id, kind, due, fired, note", "iitiit", 1 },
	{ "pauses", "case_id, start, \"end\"", "iii", 0 },
	{ "diagnoses", DIAGNOSIS_COLS ", report_json, report_text",
	    "iittittittttttititititt", 1 },
	{ "mailbox_seen", "mailbox, key, seen_at", "tti", 0 },
	{ "mail_commands", MAILCMD_COLS, "iitttttiit", 1 },
};

/* Prepares sql on s outside the statement table (the copy's statements
 * are built from store_tables, once per call). */
static struct store_stmt *
store_adhoc(struct store *s, const char *sql)
{
	struct store_stmt *st = NULL;

	if (s->c.drv->check(s, 0) != STORE_OK || s->c.drv->prepare(s, sql, &st) != STORE_OK)
		return NULL;
	return st;
}

/* The number of rows of table into *n. */
static enum store_rc
store_count_rows(struct store *s, const char *table, long long *n)
{
	char sql[128];
	struct store_stmt *st;
	int rc;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	if ((st = store_adhoc(s, sql)) == NULL)
		return STORE_ERROR;
	if ((rc = store_step(s, st)) == STEP_ROW) {
		*n = COL_INT(st, 0);
		rc = STORE_OK;
	}
	st->drv->finalize(st);
	return (enum store_rc)rc;
}

/* Copies one table's rows, in the order of its first column. */
static enum store_rc
store_copy_table(struct store *from, struct store *to, const struct store_table *t,
    long long *copied)
{
	char sel[1024], ins[1200], *p;
	struct store_stmt *rd, *wr;
	size_t ncols = strlen(t->types);
	int rc = STORE_OK;

	snprintf(sel, sizeof(sel), "SELECT %s FROM %s ORDER BY 1", t->cols, t->name);
	p = ins + snprintf(ins, sizeof(ins), "INSERT INTO %s (%s) VALUES (", t->name, t->cols);
	for (size_t i = 0; i < ncols; i++)
		p += snprintf(p, sizeof(ins) - (size_t)(p - ins), "%s?%zu", i ? ", " : "", i + 1);
	snprintf(p, sizeof(ins) - (size_t)(p - ins), ")");
	if ((rd = store_adhoc(from, sel)) == NULL)
		return STORE_ERROR;
	if ((wr = store_adhoc(to, ins)) == NULL) {
		rd->drv->finalize(rd);
		return STORE_ERROR;
	}
	*copied = 0;
	while ((rc = store_step(from, rd)) == STEP_ROW) {
		int brc = STORE_OK;

		for (size_t i = 0; i < ncols; i++) {
			const char *v;

			if (t->types[i] == 'i')
				bind_int(wr, (int)i + 1, COL_INT(rd, (int)i), &brc);
			else
				bind_text(wr, (int)i + 1, (v = COL_TEXT(rd, (int)i)) ? v : "",
				    SIZE_MAX, &brc);
		}
		if (brc != STORE_OK) {
			store_done(wr);
			rc = store_seterr(to, brc, "%s: binding a row failed", t->name);
			break;
		}
		if ((rc = store_exec_stmt(to, wr, NULL)) != STORE_OK)
			break;
		(*copied)++;
	}
	rd->drv->finalize(rd);
	wr->drv->finalize(wr);
	return rc == STEP_DONE ? STORE_OK : (enum store_rc)rc;
}

enum store_rc
store_copy(struct store *from, struct store *to,
    void (*progress)(const char *table, long long source, long long copied, long long dest,
    void *arg), void *arg)
{
	enum store_rc rc = STORE_OK;
	long long n;

	/* Only into an empty store: a copy never merges two desks' numbering. */
	for (size_t i = 0; i < sizeof(store_tables) / sizeof(store_tables[0]); i++) {
		if ((rc = store_count_rows(to, store_tables[i].name, &n)) != STORE_OK)
			return rc;
		if (n > 0)
			return store_seterr(to, STORE_EXISTS, "the destination is not empty (%s has "
			    "%lld rows); copy into a new database", store_tables[i].name, n);
	}
	if ((rc = (enum store_rc)from->c.drv->begin(from, 0)) != STORE_OK)
		return rc;
	if ((rc = store_begin(to)) != STORE_OK) {
		store_rollback(from);
		return rc;
	}
	for (size_t i = 0; i < sizeof(store_tables) / sizeof(store_tables[0]) && rc == STORE_OK;
	    i++) {
		const struct store_table *t = &store_tables[i];
		long long copied = 0, src = 0, dst = 0;

		if ((rc = store_copy_table(from, to, t, &copied)) != STORE_OK)
			break;
		/* PostgreSQL's identity sequences do not follow explicit ids. */
		if (to->pg && t->has_id) {
			char sql[200];
			struct store_stmt *st;

			snprintf(sql, sizeof(sql), "SELECT setval(pg_get_serial_sequence('%s', 'id'),"
			    " coalesce(max(id), 0) + 1, false) FROM %s", t->name, t->name);
			if ((st = store_adhoc(to, sql)) == NULL) {
				rc = STORE_ERROR;
				break;
			}
			rc = store_exec_stmt(to, st, NULL);
			st->drv->finalize(st);
			if (rc != STORE_OK)
				break;
		}
		if ((rc = store_count_rows(from, t->name, &src)) != STORE_OK ||
		    (rc = store_count_rows(to, t->name, &dst)) != STORE_OK)
			break;
		if (progress != NULL)
			progress(t->name, src, copied, dst, arg);
		if (src != copied || dst != copied)
			rc = store_seterr(to, STORE_ERROR, "%s: %lld rows in the source, %lld copied, "
			    "%lld in the destination", t->name, src, copied, dst);
	}
	if (rc == STORE_OK)
		rc = store_commit(to);
	else
		store_rollback(to);
	store_rollback(from);
	return rc;
}
