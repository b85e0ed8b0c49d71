/*
 * test_store - store.h on SQLite: schema and migrations, customers, cases,
 * messages, UTF-8-safe field cuts, locking (STORE_BUSY within the timeout)
 * and the errors a sysadmin sees.  Each run works in its own mkdtemp()
 * directory and removes it.  sqlite3 is used directly only to look behind
 * the interface (user_version, row counts) and to plant data the API
 * cannot write (over-long text).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "store.h"
#include "t.h"

static char tmpdir[] = "/tmp/hg-test-store-XXXXXX";
/* HG_TEST_PG="host=/dir user=postgres": the same tests on PostgreSQL, each
 * "file" a fresh database of that server (tests that are about SQLite's
 * file itself are left out). */
static const char *pg_base;

/* Runs sql on the PostgreSQL database target; the first column of the
 * first row as an integer, 0 for none, -1 on error.  text: $1. */
static long long
pg_raw(const char *target, const char *sql, const char *text)
{
	PGconn *c = PQconnectdb(target);
	PGresult *r = NULL;
	long long v = -1;

	if (PQstatus(c) == CONNECTION_OK) {
		r = PQexecParams(c, sql, text ? 1 : 0, NULL, text ? &text : NULL, NULL, NULL, 0);
		if (PQresultStatus(r) == PGRES_TUPLES_OK)
			v = PQntuples(r) > 0 ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
		else if (PQresultStatus(r) == PGRES_COMMAND_OK)
			v = 0;
		else
			fprintf(stderr, "pg_raw %s: %s", sql, PQerrorMessage(c));
	} else {
		fprintf(stderr, "pg_raw connect: %s", PQerrorMessage(c));
	}
	PQclear(r);
	PQfinish(c);
	return v;
}

/* Where the test's database "name" lives: a file in tmpdir, or a fresh
 * PostgreSQL database. */
static void
path_in_tmp(char *out, size_t outlen, const char *name)
{
	char admin[512], sql[160], db[64];
	size_t n = 0;

	if (pg_base == NULL) {
		snprintf(out, outlen, "%s/%s", tmpdir, name);
		return;
	}
	for (const char *p = name; *p && n + 1 < sizeof(db); p++)
		db[n++] = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ? *p : '_';
	db[n] = '\0';
	snprintf(admin, sizeof(admin), "%s dbname=postgres", pg_base);
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS t_%s", db);
	pg_raw(admin, sql, NULL);
	snprintf(sql, sizeof(sql), "CREATE DATABASE t_%s", db);
	pg_raw(admin, sql, NULL);
	snprintf(out, outlen, "%s dbname=t_%s", pg_base, db);
}

static struct store *
open_ok(const char *path, long timeout_ms)
{
	struct store *s = NULL;
	char err[512] = "";
	enum store_rc rc = store_open(path, timeout_ms, &s, err, sizeof(err));

	if (rc != STORE_OK)
		fprintf(stderr, "store_open(%s): %s: %s\n", path, store_strerror(rc), err);
	T_EQ_INT(rc, STORE_OK);
	return s;
}

/* Runs one SQL statement on path outside the store; returns the first
 * column of the first row as an integer (or -1). */
static long long
raw_sql(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	long long v = -1;

	if (pg_base != NULL)
		return pg_raw(path, sql, NULL);
	if (sqlite3_open(path, &db) != SQLITE_OK) {
		sqlite3_close(db);
		return -1;
	}
	sqlite3_busy_timeout(db, 2000);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			v = sqlite3_column_int64(st, 0);
		else if (rc == SQLITE_DONE)
			v = 0;
		else
			fprintf(stderr, "raw_sql %s: %s\n", sql, sqlite3_errmsg(db));
	} else {
		fprintf(stderr, "raw_sql %s: %s\n", sql, sqlite3_errmsg(db));
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* Binds one text value into an UPDATE run outside the store. */
static int
raw_update_text(const char *path, const char *sql, const char *text)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (pg_base != NULL) {
		char pgsql[256], *q;

		/* ?1 is $1 there */
		snprintf(pgsql, sizeof(pgsql), "%s", sql);
		while ((q = strstr(pgsql, "?1")) != NULL)
			*q = '$';
		return pg_raw(path, pgsql, text) == 0 ? 0 : -1;
	}
	if (sqlite3_open(path, &db) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_bind_text(st, 1, text, -1, SQLITE_TRANSIENT) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_DONE)
		rc = 0;
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

/* 1 when s is entirely well-formed UTF-8. */
static int
utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		int n = *p < 0x80 ? 1 : (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3 :
		    (*p & 0xF8) == 0xF0 ? 4 : 0;
		if (n == 0)
			return 0;
		for (int i = 1; i < n; i++)
			if ((p[i] & 0xC0) != 0x80)
				return 0;
		p += n;
	}
	return 1;
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static void
make_customer(struct customer *c, const char *address, const char *tier, long long watch)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->address, sizeof(c->address), "%s", address);
	snprintf(c->tier, sizeof(c->tier), "%s", tier);
	c->watch_until = watch;
	c->created = 1000;
}

static void
make_case(struct case_rec *c, const char *client, long long created, int urgency)
{
	memset(c, 0, sizeof(*c));
	c->created = created;
	c->updated = created;
	snprintf(c->client, sizeof(c->client), "%s", client);
	snprintf(c->support_address, sizeof(c->support_address), "support@example.com");
	snprintf(c->subject, sizeof(c->subject), "subject of %s", client);
	c->urgency = urgency;
	snprintf(c->tier, sizeof(c->tier), "standard");
	snprintf(c->category, sizeof(c->category), "outgoing-mail");
	snprintf(c->lang, sizeof(c->lang), "en");
	snprintf(c->reasons, sizeof(c->reasons), "outage");
	c->first_due = created + 3600;
	c->resolve_due = created + 86400;
}

static void
make_message(struct message_rec *m, long long case_id, const char *message_id,
    const char *direction, long long received)
{
	memset(m, 0, sizeof(*m));
	m->case_id = case_id;
	snprintf(m->message_id, sizeof(m->message_id), "%s", message_id);
	snprintf(m->direction, sizeof(m->direction), "%s", direction);
	snprintf(m->sender, sizeof(m->sender), "client@example.com");
	m->received = received;
	snprintf(m->subject, sizeof(m->subject), "msg %s", message_id);
	m->urgency = 3;
	snprintf(m->excerpt, sizeof(m->excerpt), "hello");
}

/* ---- callbacks ---- */

struct collect {
	char	 text[2048];
	int	 calls;
	int	 stop_after;	/* 0: never stop */
};

static int
collect_customer(const struct customer *c, void *arg)
{
	struct collect *col = arg;
	size_t len = strlen(col->text);

	snprintf(col->text + len, sizeof(col->text) - len, "%s=%s;", c->address, c->tier);
	return ++col->calls == col->stop_after;
}

static int
collect_case(const struct case_rec *c, void *arg)
{
	struct collect *col = arg;
	size_t len = strlen(col->text);

	snprintf(col->text + len, sizeof(col->text) - len, "%lld;", c->id);
	return ++col->calls == col->stop_after;
}

static int
collect_message(const struct message_rec *m, void *arg)
{
	struct collect *col = arg;
	size_t len = strlen(col->text);

	snprintf(col->text + len, sizeof(col->text) - len, "%s@%lld;", m->message_id, m->received);
	return ++col->calls == col->stop_after;
}

/* Calls other store functions, reads and a write, from inside a list. */
struct nested {
	struct store	*s;
	int		 calls, failures;
};

static int
nested_case(const struct case_rec *c, void *arg)
{
	struct nested *n = arg;
	struct case_rec again;
	int count;

	n->calls++;
	if (store_case_get(n->s, c->id, &again) != STORE_OK || again.id != c->id)
		n->failures++;
	if (store_message_count_since(n->s, c->id, 0, &count) != STORE_OK)
		n->failures++;
	if (store_case_touch(n->s, c->id, 4, c->updated) != STORE_OK)
		n->failures++;
	return 0;
}

/* ---- tests ---- */

static void
test_open_and_migrate(void)
{
	char path[256], err[512];
	struct store *s;

	path_in_tmp(path, sizeof(path), "open.db");
	s = open_ok(path, 1000);
	T_CHECK(s != NULL);
	store_close(s);
	T_EQ_INT(raw_sql(path, "PRAGMA user_version"), 8);
	T_EQ_INT(raw_sql(path, "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
	    " AND name IN ('customers', 'cases', 'messages')"), 3);
	T_EQ_INT(raw_sql(path, "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
	    " AND name IN ('cases_next_due', 'events_pending', 'messages_message_id',"
	    " 'messages_case_received', 'messages_undecided', 'outbox_one_ack')"), 6);
	/* Indexes no query uses are gone (v3): they only slowed every insert. */
	T_EQ_INT(raw_sql(path, "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
	    " AND name IN ('cases_status_due', 'cases_client')"), 0);
	T_EQ_INT(raw_sql(path, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);

	/* Opening again is a no-op migration. */
	s = open_ok(path, 1000);
	T_CHECK(s != NULL);
	store_close(s);
	T_EQ_INT(raw_sql(path, "PRAGMA user_version"), 8);

	/* A newer schema than the code knows is refused, and left alone. */
	path_in_tmp(path, sizeof(path), "newer.db");
	s = open_ok(path, 1000);
	store_close(s);
	T_EQ_INT(raw_sql(path, "PRAGMA user_version = 99"), 0);
	s = (struct store *)1;
	err[0] = '\0';
	T_EQ_INT(store_open(path, 1000, &s, err, sizeof(err)), STORE_ERROR);
	T_CHECK(s == NULL);
	T_CONTAINS(err, "schema version 99 is newer");
	T_EQ_INT(raw_sql(path, "PRAGMA user_version"), 99);

	/* Not a database at all. */
	path_in_tmp(path, sizeof(path), "garbage.db");
	{
		FILE *fp = fopen(path, "w");
		T_CHECK(fp != NULL);
		if (fp) {
			for (int i = 0; i < 200; i++)
				fputs("this is not sqlite ", fp);
			fclose(fp);
		}
	}
	err[0] = '\0';
	T_EQ_INT(store_open(path, 1000, &s, err, sizeof(err)), STORE_ERROR);
	T_CHECK(s == NULL);
	T_CONTAINS(err, "not a database");

	/* errbuf may be omitted. */
	T_EQ_INT(store_open(path, 1000, &s, NULL, 0), STORE_ERROR);
	T_CHECK(s == NULL);
}

static void
test_bad_directory(void)
{
	char path[256], err[512];
	struct store *s = NULL;

	path_in_tmp(path, sizeof(path), "missing/dir/helpgate.db");
	err[0] = '\0';
	T_EQ_INT(store_open(path, 1000, &s, err, sizeof(err)), STORE_ERROR);
	T_CHECK(s == NULL);
	T_CONTAINS(err, "missing/dir");
	T_CONTAINS(err, "No such file or directory");

	/* The parent is a file. */
	path_in_tmp(path, sizeof(path), "garbage.db/helpgate.db");
	err[0] = '\0';
	T_EQ_INT(store_open(path, 1000, &s, err, sizeof(err)), STORE_ERROR);
	T_CONTAINS(err, "is not a directory");

	/* A read-only directory (root can write anywhere: nothing to test). */
	if (geteuid() != 0) {
		char dir[256];

		path_in_tmp(dir, sizeof(dir), "ro");
		T_CHECK(mkdir(dir, 0555) == 0);
		path_in_tmp(path, sizeof(path), "ro/helpgate.db");
		err[0] = '\0';
		T_EQ_INT(store_open(path, 1000, &s, err, sizeof(err)), STORE_ERROR);
		T_CONTAINS(err, "not writable");
		rmdir(dir);
	}
}

static void
test_customers(struct store *s)
{
	struct customer c, out;
	struct collect col;

	make_customer(&c, "alice@example.com", "premium", 0);
	T_EQ_INT(store_customer_put(s, &c), STORE_OK);
	make_customer(&c, "@example.com", "standard", 5000);
	T_EQ_INT(store_customer_put(s, &c), STORE_OK);
	/* Mixed case and <> are normalised on the way in. */
	make_customer(&c, "<Zed@Other.ORG>", "trial", 0);
	T_EQ_INT(store_customer_put(s, &c), STORE_OK);

	/* The address wins over its domain, in any case and with <>. */
	memset(&out, 0, sizeof(out));
	T_EQ_INT(store_customer_lookup(s, "Alice@EXAMPLE.com", &out), STORE_OK);
	T_EQ_STR(out.address, "alice@example.com");
	T_EQ_STR(out.tier, "premium");
	T_EQ_INT(out.created, 1000);
	T_EQ_INT(store_customer_lookup(s, " <alice@example.com> ", &out), STORE_OK);
	T_EQ_STR(out.tier, "premium");
	/* Anyone else at the domain gets the domain's row. */
	T_EQ_INT(store_customer_lookup(s, "Bob@Example.COM", &out), STORE_OK);
	T_EQ_STR(out.address, "@example.com");
	T_EQ_STR(out.tier, "standard");
	T_EQ_INT(out.watch_until, 5000);
	/* The domain is the part after the last '@'. */
	T_EQ_INT(store_customer_lookup(s, "\"a@b\"@example.com", &out), STORE_OK);
	T_EQ_STR(out.address, "@example.com");
	T_EQ_INT(store_customer_lookup(s, "zed@other.org", &out), STORE_OK);
	T_EQ_STR(out.tier, "trial");
	T_EQ_INT(store_customer_lookup(s, "nobody@nowhere.test", &out), STORE_NOTFOUND);
	T_EQ_INT(store_customer_lookup(s, "sub.example.com", &out), STORE_NOTFOUND);
	T_EQ_INT(store_customer_lookup(s, "", &out), STORE_NOTFOUND);

	/* Put replaces. */
	make_customer(&c, "alice@example.com", "enterprise", 7000);
	T_EQ_INT(store_customer_put(s, &c), STORE_OK);
	T_EQ_INT(store_customer_lookup(s, "alice@example.com", &out), STORE_OK);
	T_EQ_STR(out.tier, "enterprise");
	T_EQ_INT(out.watch_until, 7000);

	/* Listed by address; a non-zero callback return stops. */
	memset(&col, 0, sizeof(col));
	T_EQ_INT(store_customer_list(s, collect_customer, &col), STORE_OK);
	T_EQ_STR(col.text, "@example.com=standard;alice@example.com=enterprise;zed@other.org=trial;");
	memset(&col, 0, sizeof(col));
	col.stop_after = 2;
	T_EQ_INT(store_customer_list(s, collect_customer, &col), STORE_OK);
	T_EQ_INT(col.calls, 2);

	/* Remove: then the domain answers for the address. */
	T_EQ_INT(store_customer_remove(s, "ALICE@example.com"), STORE_OK);
	T_EQ_INT(store_customer_remove(s, "alice@example.com"), STORE_NOTFOUND);
	T_EQ_INT(store_customer_lookup(s, "alice@example.com", &out), STORE_OK);
	T_EQ_STR(out.address, "@example.com");
	T_EQ_INT(store_customer_remove(s, "@example.com"), STORE_OK);
	T_EQ_INT(store_customer_lookup(s, "alice@example.com", &out), STORE_NOTFOUND);
}

static void
test_cases(struct store *s, const char *path)
{
	struct case_rec c, out;
	struct collect col;
	long long ids[3];

	for (int i = 0; i < 3; i++) {
		char client[64];

		snprintf(client, sizeof(client), "client%d@example.com", i);
		make_case(&c, client, 1000 + i * 100, 3);
		c.id = 999;	/* ignored */
		T_EQ_INT(store_case_create(s, &c), STORE_OK);
		ids[i] = c.id;
	}
	T_CHECK(ids[0] > 0 && ids[1] > ids[0] && ids[2] > ids[1]);

	memset(&out, 0, sizeof(out));
	T_EQ_INT(store_case_get(s, ids[1], &out), STORE_OK);
	T_EQ_INT(out.id, ids[1]);
	T_EQ_STR(out.status, "open");	/* the default */
	T_EQ_STR(out.client, "client1@example.com");
	T_EQ_STR(out.support_address, "support@example.com");
	T_EQ_STR(out.subject, "subject of client1@example.com");
	T_EQ_INT(out.urgency, 3);
	T_EQ_STR(out.tier, "standard");
	T_EQ_STR(out.category, "outgoing-mail");
	T_EQ_STR(out.lang, "en");
	T_EQ_STR(out.reasons, "outage");
	T_EQ_INT(out.created, 1100);
	T_EQ_INT(out.first_due, 1100 + 3600);
	T_EQ_INT(out.resolve_due, 1100 + 86400);
	T_EQ_INT(out.first_response_at, 0);
	T_EQ_STR(out.assignee, "");
	T_EQ_INT(store_case_get(s, 424242, &out), STORE_NOTFOUND);

	/* touch only ever raises urgency (lowers the number). */
	T_EQ_INT(store_case_touch(s, ids[1], 2, 5000), STORE_OK);
	T_EQ_INT(store_case_get(s, ids[1], &out), STORE_OK);
	T_EQ_INT(out.urgency, 2);
	T_EQ_INT(out.updated, 5000);
	T_EQ_INT(store_case_touch(s, ids[1], 4, 6000), STORE_OK);
	T_EQ_INT(store_case_get(s, ids[1], &out), STORE_OK);
	T_EQ_INT(out.urgency, 2);
	T_EQ_INT(out.updated, 6000);
	T_EQ_INT(store_case_touch(s, 424242, 1, 6000), STORE_NOTFOUND);

	/* Constraint checks are errors, not crashes. */
	make_case(&c, "bad@example.com", 2000, 7);
	T_EQ_INT(store_case_create(s, &c), STORE_ERROR);
	/* SQLite: "CHECK constraint failed"; PostgreSQL: "violates check constraint" */
	T_CHECK(strcasestr(store_errmsg(s), "check constraint") != NULL);
	make_case(&c, "bad@example.com", 2000, 1);
	snprintf(c.status, sizeof(c.status), "closed");
	T_EQ_INT(store_case_create(s, &c), STORE_ERROR);

	/* Newest first; open_only leaves out resolved ones. */
	memset(&col, 0, sizeof(col));
	T_EQ_INT(store_case_list(s, 0, collect_case, &col), STORE_OK);
	{
		char want[128];
		snprintf(want, sizeof(want), "%lld;%lld;%lld;", ids[2], ids[1], ids[0]);
		T_EQ_STR(col.text, want);
	}
	T_EQ_INT(raw_sql(path, "UPDATE cases SET status = 'resolved' WHERE client = 'client2@example.com'"), 0);
	memset(&col, 0, sizeof(col));
	T_EQ_INT(store_case_list(s, 1, collect_case, &col), STORE_OK);
	{
		char want[128];
		snprintf(want, sizeof(want), "%lld;%lld;", ids[1], ids[0]);
		T_EQ_STR(col.text, want);
	}
	memset(&col, 0, sizeof(col));
	col.stop_after = 1;
	T_EQ_INT(store_case_list(s, 0, collect_case, &col), STORE_OK);
	T_EQ_INT(col.calls, 1);
	{
		struct nested n = { s, 0, 0 };

		T_EQ_INT(store_case_list(s, 0, nested_case, &n), STORE_OK);
		T_EQ_INT(n.calls, 3);
		T_EQ_INT(n.failures, 0);
	}

	/* A rolled-back transaction leaves nothing behind. */
	T_EQ_INT(store_begin(s), STORE_OK);
	make_case(&c, "rollback@example.com", 3000, 1);
	T_EQ_INT(store_case_create(s, &c), STORE_OK);
	store_rollback(s);
	T_EQ_INT(store_case_get(s, c.id, &out), STORE_NOTFOUND);
	store_rollback(s);	/* harmless without a transaction */

	/* Nesting is refused and the handle stays usable. */
	T_EQ_INT(store_begin(s), STORE_OK);
	T_EQ_INT(store_begin(s), STORE_ERROR);
	T_CONTAINS(store_errmsg(s), "within a transaction");
	T_EQ_INT(store_commit(s), STORE_OK);
	T_EQ_INT(store_commit(s), STORE_ERROR);
	T_EQ_INT(store_case_get(s, ids[0], &out), STORE_OK);
}

static void
test_messages(struct store *s, const char *path)
{
	struct case_rec c;
	struct message_rec m;
	struct collect col;
	long long case_id, other_id, found = 0;
	int count = -1;

	make_case(&c, "msgs@example.com", 10000, 2);
	T_EQ_INT(store_case_create(s, &c), STORE_OK);
	case_id = c.id;
	make_case(&c, "other@example.com", 10000, 2);
	T_EQ_INT(store_case_create(s, &c), STORE_OK);
	other_id = c.id;

	/* Added out of order: listed by received. */
	make_message(&m, case_id, "b@example.com", "in", 200);
	T_EQ_INT(store_message_add(s, &m), STORE_OK);
	T_CHECK(m.id > 0);
	make_message(&m, case_id, "a@example.com", "in", 100);
	T_EQ_INT(store_message_add(s, &m), STORE_OK);
	make_message(&m, case_id, "c@example.com", "staff", 300);
	T_EQ_INT(store_message_add(s, &m), STORE_OK);
	make_message(&m, other_id, "d@example.com", "in", 250);
	T_EQ_INT(store_message_add(s, &m), STORE_OK);

	/* A repeated Message-ID: STORE_EXISTS and nothing written. */
	T_EQ_INT(raw_sql(path, "SELECT count(*) FROM messages"), 4);
	make_message(&m, other_id, "a@example.com", "in", 999);
	m.id = 0;
	T_EQ_INT(store_message_add(s, &m), STORE_EXISTS);
	T_EQ_INT(m.id, 0);
	T_CONTAINS(store_errmsg(s), "UNIQUE");
	T_EQ_INT(raw_sql(path, "SELECT count(*) FROM messages"), 4);
	/* ... also inside a transaction, which goes on. */
	T_EQ_INT(store_begin(s), STORE_OK);
	T_EQ_INT(store_message_add(s, &m), STORE_EXISTS);
	make_message(&m, other_id, "e@example.com", "out", 260);
	T_EQ_INT(store_message_add(s, &m), STORE_OK);
	T_EQ_INT(store_commit(s), STORE_OK);
	T_EQ_INT(raw_sql(path, "SELECT count(*) FROM messages"), 5);

	/* Empty Message-IDs do not collide. */
	make_message(&m, other_id, "", "in", 270);
	T_EQ_INT(store_message_add(s, &m), STORE_OK);
	make_message(&m, other_id, "", "in", 280);
	T_EQ_INT(store_message_add(s, &m), STORE_OK);

	/* A message for a case that does not exist. */
	make_message(&m, 987654, "orphan@example.com", "in", 1);
	T_EQ_INT(store_message_add(s, &m), STORE_ERROR);
	T_CHECK(strcasestr(store_errmsg(s), "foreign key") != NULL);

	T_EQ_INT(store_message_case(s, "a@example.com", &found), STORE_OK);
	T_EQ_INT(found, case_id);
	T_EQ_INT(store_message_case(s, "d@example.com", &found), STORE_OK);
	T_EQ_INT(found, other_id);
	T_EQ_INT(store_message_case(s, "nope@example.com", &found), STORE_NOTFOUND);
	T_EQ_INT(store_message_case(s, "", &found), STORE_NOTFOUND);

	/* A Message-ID longer than the field: stored cut, and found again by
	 * the full one. */
	{
		char long_id[700];

		memset(long_id, 'x', sizeof(long_id) - 1);
		long_id[sizeof(long_id) - 1] = '\0';
		make_message(&m, other_id, long_id, "in", 290);
		T_EQ_INT(strlen(m.message_id), sizeof(m.message_id) - 1);
		T_EQ_INT(store_message_add(s, &m), STORE_OK);
		found = 0;
		T_EQ_INT(store_message_case(s, long_id, &found), STORE_OK);
		T_EQ_INT(found, other_id);
		T_EQ_INT(store_message_add(s, &m), STORE_EXISTS);
	}

	/* Client messages only, received at or after since. */
	T_EQ_INT(store_message_count_since(s, case_id, 0, &count), STORE_OK);
	T_EQ_INT(count, 2);
	T_EQ_INT(store_message_count_since(s, case_id, 200, &count), STORE_OK);
	T_EQ_INT(count, 1);
	T_EQ_INT(store_message_count_since(s, case_id, 201, &count), STORE_OK);
	T_EQ_INT(count, 0);
	T_EQ_INT(store_message_count_since(s, 424242, 0, &count), STORE_OK);
	T_EQ_INT(count, 0);

	memset(&col, 0, sizeof(col));
	T_EQ_INT(store_message_list(s, case_id, collect_message, &col), STORE_OK);
	T_EQ_STR(col.text, "a@example.com@100;b@example.com@200;c@example.com@300;");
	memset(&col, 0, sizeof(col));
	col.stop_after = 1;
	T_EQ_INT(store_message_list(s, case_id, collect_message, &col), STORE_OK);
	T_EQ_STR(col.text, "a@example.com@100;");
	memset(&col, 0, sizeof(col));
	T_EQ_INT(store_message_list(s, 424242, collect_message, &col), STORE_OK);
	T_EQ_INT(col.calls, 0);

	/* Fields round-trip. */
	{
		struct message_rec full;

		make_message(&full, case_id, "full@example.com", "out", 400);
		snprintf(full.date_header, sizeof(full.date_header), "Mon, 30 Nov 2026 11:00:00 +0200");
		snprintf(full.queue_id, sizeof(full.queue_id), "4ABCD12345");
		snprintf(full.category, sizeof(full.category), "billing");
		snprintf(full.auto_reason, sizeof(full.auto_reason), "auto-submitted");
		full.urgency = 1;
		T_EQ_INT(store_message_add(s, &full), STORE_OK);
	}
	memset(&col, 0, sizeof(col));
	T_EQ_INT(store_message_list(s, case_id, collect_message, &col), STORE_OK);
	T_CONTAINS(col.text, "full@example.com@400;");
}

/* Plants unit x repeat in three fields of case id, behind the store's
 * back, and checks each comes back cut on a character boundary: want_len
 * bytes of subject, a prefix of what was planted, valid UTF-8. */
static void
check_cut(struct store *s, const char *path, long long id, const char *unit, int repeat,
    size_t want_len, int is_utf8)
{
	char *text = malloc(strlen(unit) * (size_t)repeat + 1);
	struct case_rec out;

	text[0] = '\0';
	for (int i = 0; i < repeat; i++)
		memcpy(text + strlen(unit) * (size_t)i, unit, strlen(unit) + 1);
	{
		char sql[128];
		snprintf(sql, sizeof(sql), "UPDATE cases SET subject = ?1, reasons = ?1, "
		    "client = ?1 WHERE id = %lld", id);
		T_EQ_INT(raw_update_text(path, sql, text), 0);
	}
	memset(&out, 'x', sizeof(out));
	T_EQ_INT(store_case_get(s, id, &out), STORE_OK);
	T_EQ_INT(strlen(out.subject), want_len);
	T_CHECK(strncmp(out.subject, text, strlen(out.subject)) == 0);
	T_CHECK(strlen(out.reasons) < sizeof(out.reasons));
	T_CHECK(strlen(out.client) < sizeof(out.client));
	if (is_utf8) {
		T_CHECK(utf8_valid(out.subject));
		T_CHECK(utf8_valid(out.reasons));
		T_CHECK(utf8_valid(out.client));
	}
	free(text);
}

static void
test_utf8_cut(struct store *s, const char *path)
{
	struct case_rec c, out;

	make_case(&c, "utf8@example.com", 20000, 3);
	T_EQ_INT(store_case_create(s, &c), STORE_OK);

	/* 600 bytes of Cyrillic into subject[512]: byte 511 would be the
	 * second half of a letter, so 510 bytes come back. */
	check_cut(s, path, c.id, "Ж", 300, 510, 1);
	/* Odd start: 1 + 2 * 255 = 511 bytes fit exactly. */
	{
		char sql[96];
		char text[700] = "a";
		for (int i = 0; i < 300; i++)
			memcpy(text + 1 + 2 * i, "Ж", 3);
		snprintf(sql, sizeof(sql), "UPDATE cases SET subject = ?1 WHERE id = %lld", c.id);
		T_EQ_INT(raw_update_text(path, sql, text), 0);
		T_EQ_INT(store_case_get(s, c.id, &out), STORE_OK);
		T_EQ_INT(strlen(out.subject), 511);
		T_CHECK(utf8_valid(out.subject));
	}
	check_cut(s, path, c.id, "€", 200, 510, 1);	/* 3-byte: 170 chars */
	check_cut(s, path, c.id, "\xF0\x9F\x93\xA7", 150, 508, 1);	/* 4-byte: 127 chars */
	check_cut(s, path, c.id, "ab", 300, 511, 1);	/* ASCII: cut anywhere */
	/* Exactly full is not cut. */
	check_cut(s, path, c.id, "Ж", 255, 510, 1);
	check_cut(s, path, c.id, "z", 511, 511, 1);
	/* Not UTF-8 at all: cut where it falls, still terminated. */
	if (pg_base == NULL)	/* PostgreSQL stores no text that is not UTF-8 */
		check_cut(s, path, c.id, "\x80", 600, 511, 0);
}

/* A message_rec callback that checks the excerpt cut. */
static int
check_excerpt(const struct message_rec *m, void *arg)
{
	int *ok = arg;

	*ok = strlen(m->excerpt) == 2046 && utf8_valid(m->excerpt);
	return 0;
}

static void
test_utf8_excerpt(struct store *s, const char *path)
{
	struct case_rec c;
	struct message_rec m;
	char big[3000], sql[128];
	size_t n = 0;
	int ok = 0;

	make_case(&c, "excerpt@example.com", 20000, 3);
	T_EQ_INT(store_case_create(s, &c), STORE_OK);
	make_message(&m, c.id, "excerpt-msg@example.com", "in", 1);
	T_EQ_INT(store_message_add(s, &m), STORE_OK);
	while (n + 3 < sizeof(big)) {
		memcpy(big + n, "Ж", 2);
		n += 2;
	}
	big[n] = '\0';
	snprintf(sql, sizeof(sql), "UPDATE messages SET excerpt = ?1 WHERE id = %lld", m.id);
	T_EQ_INT(raw_update_text(path, sql, big), 0);
	T_EQ_INT(store_message_list(s, c.id, check_excerpt, &ok), STORE_OK);
	T_CHECK(ok);
}

/* Writes fields that fill their arrays with no NUL: the store reads only
 * the array, never past it. */
static void
test_unterminated_fields(struct store *s)
{
	struct case_rec c, out;

	make_case(&c, "full@example.com", 30000, 4);
	memset(c.lang, 'e', sizeof(c.lang));
	memset(c.category, 'q', sizeof(c.category));
	T_EQ_INT(store_case_create(s, &c), STORE_OK);
	T_EQ_INT(store_case_get(s, c.id, &out), STORE_OK);
	T_EQ_INT(strlen(out.lang), sizeof(out.lang) - 1);
	T_EQ_INT(strlen(out.category), sizeof(out.category) - 1);
}

static void
test_reopen(const char *path)
{
	struct store *s = open_ok(path, 1000);
	struct case_rec out;
	struct collect col;
	long long found = 0;

	if (s == NULL)
		return;
	memset(&col, 0, sizeof(col));
	T_EQ_INT(store_case_list(s, 0, collect_case, &col), STORE_OK);
	T_CHECK(col.calls >= 5);
	T_EQ_INT(store_message_case(s, "a@example.com", &found), STORE_OK);
	T_EQ_INT(store_case_get(s, found, &out), STORE_OK);
	T_EQ_STR(out.client, "msgs@example.com");
	store_close(s);
}

static void
test_busy(void)
{
	char path[256];
	struct store *a, *b;
	struct customer c;
	double t0, elapsed;

	path_in_tmp(path, sizeof(path), "busy.db");
	a = open_ok(path, 5000);
	b = open_ok(path, 200);
	if (a == NULL || b == NULL) {
		store_close(a);
		store_close(b);
		return;
	}
	T_EQ_INT(store_begin(a), STORE_OK);
	make_customer(&c, "busy@example.com", "standard", 0);
	T_EQ_INT(store_customer_put(a, &c), STORE_OK);

	make_customer(&c, "other@example.com", "standard", 0);
	t0 = now_ms();
	T_EQ_INT(store_customer_put(b, &c), STORE_BUSY);
	elapsed = now_ms() - t0;
	fprintf(stderr, "# write under a held lock returned after %.0f ms (timeout 200)\n", elapsed);
	T_CHECK(elapsed >= 150 && elapsed < 1500);
	T_CONTAINS(store_errmsg(b), "locked");

	t0 = now_ms();
	T_EQ_INT(store_begin(b), STORE_BUSY);
	elapsed = now_ms() - t0;
	T_CHECK(elapsed >= 150 && elapsed < 1500);

	/* Readers are not blocked by a writer in WAL mode. */
	{
		struct customer out;
		T_EQ_INT(store_customer_lookup(b, "busy@example.com", &out), STORE_NOTFOUND);
	}
	/* A new handle opens (no migration lock needed) while a holds the lock. */
	{
		struct store *c3 = open_ok(path, 200);
		store_close(c3);
	}

	T_EQ_INT(store_commit(a), STORE_OK);
	T_EQ_INT(store_customer_put(b, &c), STORE_OK);
	{
		struct customer out;
		T_EQ_INT(store_customer_lookup(b, "busy@example.com", &out), STORE_OK);
	}
	store_close(a);
	store_close(b);
}

/* Errors after open (here: a table dropped behind the store's back, so
 * the cached statements fail when SQLite re-prepares them) are reported,
 * and leave the handle usable for what still works. */
static void
test_errors_after_open(void)
{
	char path[256];
	struct store *s;
	struct case_rec c, out;
	struct message_rec m;
	struct collect col;
	long long found;
	int count;

	path_in_tmp(path, sizeof(path), "broken.db");
	if ((s = open_ok(path, 1000)) == NULL)
		return;
	make_case(&c, "broken@example.com", 100, 2);
	T_EQ_INT(store_case_create(s, &c), STORE_OK);
	make_message(&m, c.id, "first@example.com", "in", 100);
	T_EQ_INT(store_message_add(s, &m), STORE_OK);
	T_EQ_INT(raw_sql(path, "DROP TABLE messages"), 0);

	make_message(&m, c.id, "second@example.com", "in", 200);
	T_EQ_INT(store_message_add(s, &m), STORE_ERROR);
	T_CONTAINS(store_errmsg(s), "no such table");
	T_EQ_INT(store_message_case(s, "first@example.com", &found), STORE_ERROR);
	T_EQ_INT(store_message_count_since(s, c.id, 0, &count), STORE_ERROR);
	memset(&col, 0, sizeof(col));
	T_EQ_INT(store_message_list(s, c.id, collect_message, &col), STORE_ERROR);
	T_EQ_INT(col.calls, 0);
	/* Inside a transaction: the error does not end it, rollback does. */
	T_EQ_INT(store_begin(s), STORE_OK);
	T_EQ_INT(store_message_add(s, &m), STORE_ERROR);
	store_rollback(s);
	T_CONTAINS(store_errmsg(s), "no such table");	/* rollback keeps the cause */
	T_EQ_INT(store_case_get(s, c.id, &out), STORE_OK);
	T_EQ_INT(store_begin(s), STORE_OK);
	T_EQ_INT(store_commit(s), STORE_OK);
	store_close(s);
}

static void
test_misc(void)
{
	const enum store_rc all[] = { STORE_OK, STORE_NOTFOUND, STORE_BUSY, STORE_EXISTS, STORE_ERROR };

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		T_CHECK(store_strerror(all[i]) != NULL && store_strerror(all[i])[0] != '\0');
	store_close(NULL);
	T_CHECK(store_errmsg(NULL) != NULL);
}

static void
cleanup_tmpdir(void)
{
	static const char *const names[] = {
		"open.db", "newer.db", "garbage.db", "main.db", "busy.db", "broken.db",
		"outbox.db", "v1.db",
	};
	char path[256];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		static const char *const suffix[] = { "", "-wal", "-shm", "-journal" };
		for (size_t j = 0; j < 4; j++) {
			snprintf(path, sizeof(path), "%s/%s%s", tmpdir, names[i], suffix[j]);
			unlink(path);
		}
	}
	if (rmdir(tmpdir) != 0)
		fprintf(stderr, "# could not remove %s: %s\n", tmpdir, strerror(errno));
}

static int
count_outbox_cb(struct outbox_rec *o, void *arg)
{
	int *n = arg;

	(void)o;
	(*n)++;
	return 0;
}

static int
first_outbox_cb(struct outbox_rec *o, void *arg)
{
	struct outbox_rec *out = arg;
	char *content = o->content ? strdup(o->content) : NULL;

	*out = *o;
	out->content = content;
	return 1;
}

static int
count_messages_cb(const struct message_rec *m, void *arg)
{
	int *n = arg;

	(void)m;
	(*n)++;
	return 0;
}

/* The worker's acknowledgement bookkeeping: undecided messages, the outbox,
 * at most one ack per case, the relay-seen mark, per-recipient counts. */
static void
test_outbox(void)
{
	char path[256];
	struct store *s;
	struct case_rec c;
	struct message_rec m;
	struct outbox_rec o, got;
	long long first = 0;
	int n;

	path_in_tmp(path, sizeof(path), "outbox.db");
	if ((s = open_ok(path, 1000)) == NULL)
		return;
	memset(&c, 0, sizeof(c));
	c.created = c.updated = 1000;
	c.urgency = 2;
	snprintf(c.client, sizeof(c.client), "ann@client.test");
	T_EQ_INT(store_case_create(s, &c), STORE_OK);
	memset(&m, 0, sizeof(m));
	m.case_id = c.id;
	snprintf(m.message_id, sizeof(m.message_id), "first@client.test");
	snprintf(m.direction, sizeof(m.direction), "in");
	snprintf(m.references, sizeof(m.references), "a@x b@y");
	m.received = 1000;
	T_EQ_INT(store_message_add(s, &m), STORE_OK);
	snprintf(m.message_id, sizeof(m.message_id), "second@client.test");
	T_EQ_INT(store_message_add(s, &m), STORE_OK);

	n = 0;
	T_EQ_INT(store_message_undecided(s, 10, count_messages_cb, &n), STORE_OK);
	T_EQ_INT(n, 2);
	T_EQ_INT(store_case_first_message(s, c.id, &first), STORE_OK);
	T_CHECK(first > 0 && first < m.id);
	T_EQ_INT(store_case_first_message(s, 999999, &first), STORE_NOTFOUND);
	T_EQ_INT(store_message_set_ack(s, m.id, "skip:follow-up"), STORE_OK);
	T_EQ_INT(store_message_set_ack(s, 999999, "queued"), STORE_NOTFOUND);
	n = 0;
	T_EQ_INT(store_message_undecided(s, 10, count_messages_cb, &n), STORE_OK);
	T_EQ_INT(n, 1);

	memset(&o, 0, sizeof(o));
	o.case_id = c.id;
	snprintf(o.kind, sizeof(o.kind), "ack");
	snprintf(o.recipient, sizeof(o.recipient), "ann@client.test");
	snprintf(o.message_id, sizeof(o.message_id), "hg-1.ack.abc@example.com");
	o.content = strdup("Subject: hi\r\n\r\nbody\r\n");
	o.created = 1000;
	o.next_attempt = 1000;
	T_EQ_INT(store_outbox_add(s, &o), STORE_OK);
	T_CHECK(o.id > 0);
	/* A second acknowledgement for the same case is refused by the store. */
	struct outbox_rec o2 = o;
	snprintf(o2.message_id, sizeof(o2.message_id), "hg-1.ack.def@example.com");
	T_EQ_INT(store_outbox_add(s, &o2), STORE_EXISTS);
	/* A notice for the same case is fine. */
	snprintf(o2.kind, sizeof(o2.kind), "notice");
	T_EQ_INT(store_outbox_add(s, &o2), STORE_OK);
	free(o.content);
	o.content = NULL;

	n = 0;
	T_EQ_INT(store_outbox_due(s, 999, 10, count_outbox_cb, &n), STORE_OK);
	T_EQ_INT(n, 0);
	memset(&got, 0, sizeof(got));
	T_EQ_INT(store_outbox_due(s, 1000, 10, first_outbox_cb, &got), STORE_OK);
	T_EQ_INT(got.id, o.id);
	T_EQ_STR(got.state, "pending");
	T_EQ_STR(got.content, "Subject: hi\r\n\r\nbody\r\n");
	free(got.content);

	T_EQ_INT(store_outbox_relay_seen(s, "hg-1.ack.abc@example.com"), STORE_OK);
	T_EQ_INT(store_outbox_relay_seen(s, "nonesuch@example.com"), STORE_NOTFOUND);
	memset(&got, 0, sizeof(got));
	store_outbox_due(s, 1000, 1, first_outbox_cb, &got);
	T_EQ_INT(got.relay_seen, 1);
	free(got.content);
	/* A fresh attempt forgets the mark of the last one. */
	snprintf(o.state, sizeof(o.state), "sending");
	o.attempts = 1;
	o.next_attempt = 1000;
	T_EQ_INT(store_outbox_update(s, &o), STORE_OK);
	memset(&got, 0, sizeof(got));
	store_outbox_due(s, 1000, 1, first_outbox_cb, &got);
	T_EQ_INT(got.relay_seen, 0);
	T_EQ_STR(got.state, "sending");
	free(got.content);
	snprintf(o.state, sizeof(o.state), "sent");
	o.sent_at = 1001;
	T_EQ_INT(store_outbox_update(s, &o), STORE_OK);
	T_EQ_INT(store_outbox_relay_seen(s, "hg-1.ack.abc@example.com"), STORE_NOTFOUND);

	T_EQ_INT(store_outbox_count_acks(s, "ann@client.test", 0, &n), STORE_OK);
	T_EQ_INT(n, 1);
	T_EQ_INT(store_outbox_count_acks(s, "ann@client.test", 1001, &n), STORE_OK);
	T_EQ_INT(n, 0);
	T_EQ_INT(store_outbox_count_acks(s, "bob@client.test", 0, &n), STORE_OK);
	T_EQ_INT(n, 0);
	n = 0;
	T_EQ_INT(store_outbox_list(s, c.id, 10, count_outbox_cb, &n), STORE_OK);
	T_EQ_INT(n, 2);
	n = 0;
	T_EQ_INT(store_outbox_list(s, 0, 10, count_outbox_cb, &n), STORE_OK);
	T_EQ_INT(n, 2);

	store_close(s);
}

/* A v1 database (cases recorded before the worker existed) upgrades to v2
 * with every old message marked decided: an upgrade never acknowledges
 * yesterday's mail. */
static void
test_upgrade_from_v1(void)
{
	char path[256];
	struct store *s;
	int n = -1;

	path_in_tmp(path, sizeof(path), "v1.db");
	s = open_ok(path, 1000);
	if (s == NULL)
		return;
	store_close(s);
	/* Simulate a v1 store holding one message: drop v4, v3 and v2 objects. */
	raw_sql(path, "DROP TRIGGER customer_mail_follows");
	raw_sql(path, "DROP TABLE customer_mail");
	raw_sql(path, "DROP TABLE diagnoses");
	raw_sql(path, "DROP INDEX cases_outgoing");
	raw_sql(path, "DROP TABLE events");
	raw_sql(path, "DROP INDEX cases_next_due");
	raw_sql(path, "DROP TABLE pauses");
	raw_sql(path, "ALTER TABLE cases DROP COLUMN paused_at");
	raw_sql(path, "ALTER TABLE cases DROP COLUMN paused_total");
	raw_sql(path, "ALTER TABLE cases DROP COLUMN cause");
	raw_sql(path, "ALTER TABLE cases DROP COLUMN lesson");
	raw_sql(path, "ALTER TABLE cases DROP COLUMN incident");
	raw_sql(path, "ALTER TABLE messages DROP COLUMN sender_auth");
	raw_sql(path, "ALTER TABLE messages DROP COLUMN via");
	raw_sql(path, "DROP TABLE mailbox_seen");
	raw_sql(path, "DROP TABLE mail_commands");
	raw_sql(path, "DROP TABLE work_claims");
	raw_sql(path, "DROP TABLE outbox");
	raw_sql(path, "DROP INDEX messages_undecided");
	raw_sql(path, "ALTER TABLE messages DROP COLUMN ack");
	raw_sql(path, "ALTER TABLE messages DROP COLUMN refs");
	raw_sql(path, "INSERT INTO cases (created, updated, urgency) VALUES (1, 1, 3)");
	raw_sql(path, "INSERT INTO messages (case_id, direction, message_id) VALUES (1, 'in', 'old@x')");
	raw_sql(path, "PRAGMA user_version = 1");
	T_EQ_INT(raw_sql(path, "PRAGMA user_version"), 1);
	s = open_ok(path, 1000);
	if (s == NULL)
		return;
	T_EQ_INT(raw_sql(path, "PRAGMA user_version"), 8);
	n = 0;
	T_EQ_INT(store_message_undecided(s, 10, count_messages_cb, &n), STORE_OK);
	T_EQ_INT(n, 0);
	store_close(s);
}

/* ---- v4: mail settings and diagnoses ---- */

static int
count_cases_cb(const struct case_rec *c, void *arg)
{
	(void)c;
	(*(int *)arg)++;
	return 0;
}

static int
count_diag_cb(const struct diagnosis_rec *d, void *arg)
{
	(void)d;
	(*(int *)arg)++;
	return 0;
}

static int
first_diag_cb(const struct diagnosis_rec *d, void *arg)
{
	struct diagnosis_rec *out = arg;

	*out = *d;
	out->report_json = d->report_json ? strdup(d->report_json) : NULL;
	out->report_text = d->report_text ? strdup(d->report_text) : NULL;
	return 1;
}

static void
test_diagnoses(void)
{
	char path[256];
	struct store *s;
	struct customer c;
	struct customer_mail m, got;
	struct case_rec k;
	struct diagnosis_rec d, back;
	int n;

	path_in_tmp(path, sizeof(path), "diag.db");
	if ((s = open_ok(path, 1000)) == NULL)
		return;
	/* settings: exact address, then @domain; removed with the customer */
	memset(&c, 0, sizeof(c));
	snprintf(c.address, sizeof(c.address), "@client.test");
	snprintf(c.tier, sizeof(c.tier), "trial");
	T_EQ_INT(store_customer_put(s, &c), STORE_OK);
	memset(&m, 0, sizeof(m));
	snprintf(m.address, sizeof(m.address), "@Client.test");
	snprintf(m.smtp_host, sizeof(m.smtp_host), "smtp.client.test");
	m.smtp_port = 465;
	snprintf(m.smtp_security, sizeof(m.smtp_security), "tls");
	snprintf(m.smtp_password_file, sizeof(m.smtp_password_file), "/etc/pw");
	T_EQ_INT(store_customer_mail_put(s, &m), STORE_OK);
	T_EQ_INT(store_customer_mail_lookup(s, "Ann@client.test", &got), STORE_OK);
	T_EQ_STR(got.address, "@client.test");
	T_EQ_STR(got.smtp_host, "smtp.client.test");
	T_EQ_INT(got.smtp_port, 465);
	T_EQ_STR(got.smtp_password_file, "/etc/pw");
	T_EQ_INT(store_customer_mail_lookup(s, "ann@other.test", &got), STORE_NOTFOUND);
	/* customer add (INSERT OR REPLACE) keeps them, customer remove drops them */
	snprintf(c.tier, sizeof(c.tier), "premium");
	T_EQ_INT(store_customer_put(s, &c), STORE_OK);
	T_EQ_INT(store_customer_mail_lookup(s, "ann@client.test", &got), STORE_OK);
	T_EQ_INT(store_customer_remove(s, "@client.test"), STORE_OK);
	T_EQ_INT(store_customer_mail_lookup(s, "ann@client.test", &got), STORE_NOTFOUND);

	/* pending: outgoing-mail cases without a diagnosis, after a watermark */
	memset(&k, 0, sizeof(k));
	k.created = k.updated = 1000;
	k.urgency = 2;
	snprintf(k.client, sizeof(k.client), "ann@client.test");
	snprintf(k.category, sizeof(k.category), "outgoing-mail");
	T_EQ_INT(store_case_create(s, &k), STORE_OK);
	snprintf(k.category, sizeof(k.category), "billing");
	T_EQ_INT(store_case_create(s, &k), STORE_OK);
	snprintf(k.category, sizeof(k.category), "outgoing-mail");
	T_EQ_INT(store_case_create(s, &k), STORE_OK);
	n = 0;
	T_EQ_INT(store_diagnosis_pending(s, 0, 10, count_cases_cb, &n), STORE_OK);
	T_EQ_INT(n, 2);
	n = 0;
	T_EQ_INT(store_diagnosis_pending(s, 1, 10, count_cases_cb, &n), STORE_OK);
	T_EQ_INT(n, 1);
	memset(&d, 0, sizeof(d));
	d.case_id = 1;
	d.created = 5000;
	snprintf(d.customer, sizeof(d.customer), "ann@client.test");
	snprintf(d.client, sizeof(d.client), "ann@client.test");
	snprintf(d.protocol, sizeof(d.protocol), "smtp");
	snprintf(d.verdict, sizeof(d.verdict), "auth_failed");
	snprintf(d.provider, sizeof(d.provider), "client.test");
	snprintf(d.alt_host, sizeof(d.alt_host), "smtp.client.test");
	d.alt_port = 587;
	d.report_json = "{\"verdict\":\"auth_failed\"}";
	d.report_text = "x AUTH PLAIN";
	T_EQ_INT(store_diagnosis_add(s, &d), STORE_OK);
	T_CHECK(d.id > 0);
	T_EQ_INT(store_diagnosis_add(s, &d), STORE_EXISTS);
	n = 0;
	T_EQ_INT(store_diagnosis_pending(s, 0, 10, count_cases_cb, &n), STORE_OK);
	T_EQ_INT(n, 1);
	/* a skip counts as decided but not against the rate limit */
	d.case_id = 3;
	snprintf(d.skipped, sizeof(d.skipped), "rate-limit");
	T_EQ_INT(store_diagnosis_add(s, &d), STORE_OK);
	n = 0;
	T_EQ_INT(store_diagnosis_pending(s, 0, 10, count_cases_cb, &n), STORE_OK);
	T_EQ_INT(n, 0);
	T_EQ_INT(store_diagnosis_count_since(s, "ann@client.test", 4000, &n), STORE_OK);
	T_EQ_INT(n, 1);
	T_EQ_INT(store_diagnosis_count_since(s, "ann@client.test", 6000, &n), STORE_OK);
	T_EQ_INT(n, 0);
	n = 0;
	T_EQ_INT(store_diagnosis_similar(s, "client.test", "auth_failed", 4000, count_diag_cb, &n),
	    STORE_OK);
	T_EQ_INT(n, 1);
	n = 0;
	T_EQ_INT(store_diagnosis_similar(s, "client.test", "ok", 4000, count_diag_cb, &n), STORE_OK);
	T_EQ_INT(n, 0);
	T_EQ_INT(store_diagnosis_set_incident(s, 1, 1), STORE_OK);
	T_EQ_INT(store_diagnosis_set_client_note(s, 1, "follow-up"), STORE_OK);
	memset(&back, 0, sizeof(back));
	T_EQ_INT(store_diagnosis_list(s, 1, first_diag_cb, &back), STORE_OK);
	T_EQ_INT(back.incident, 1);
	T_EQ_STR(back.client_note, "follow-up");
	T_EQ_INT(back.alt_port, 587);
	T_EQ_STR(back.report_text ? back.report_text : "", "x AUTH PLAIN");
	T_EQ_STR(back.report_json ? back.report_json : "", "{\"verdict\":\"auth_failed\"}");
	diagnosis_rec_clear(&back);
	store_close(s);

	/* An upgrade marks the outgoing-mail cases it finds as predating. */
	if (pg_base != NULL)
		return;		/* PostgreSQL starts at schema 8: nothing to upgrade */
	T_EQ_INT(raw_sql(path, "DELETE FROM diagnoses"), 0);
	T_EQ_INT(raw_sql(path, "PRAGMA user_version = 3"), 0);
	raw_sql(path, "DROP TRIGGER customer_mail_follows");
	raw_sql(path, "DROP TABLE customer_mail");
	raw_sql(path, "DROP TABLE diagnoses");
	raw_sql(path, "DROP INDEX cases_outgoing");
	raw_sql(path, "DROP INDEX outbox_acks_recent");
	raw_sql(path, "DROP INDEX outbox_notices_recent");
	raw_sql(path, "ALTER TABLE messages DROP COLUMN sender_auth");
	raw_sql(path, "ALTER TABLE messages DROP COLUMN via");
	raw_sql(path, "DROP TABLE mailbox_seen");
	raw_sql(path, "DROP TABLE mail_commands");
	raw_sql(path, "DROP TABLE work_claims");
	if ((s = open_ok(path, 1000)) == NULL)
		return;
	T_EQ_INT(raw_sql(path, "SELECT count(*) FROM diagnoses WHERE skipped = 'predates-diagnosis'"), 2);
	/* v5: messages from before the check have no verdict ("": answered as before) */
	T_EQ_INT(raw_sql(path, "SELECT count(*) FROM messages WHERE sender_auth <> ''"), 0);
	/* v6: every older message was the milter's */
	T_EQ_INT(raw_sql(path, "SELECT count(*) FROM messages WHERE via <> ''"), 0);
	T_EQ_INT(raw_sql(path, "SELECT count(*) FROM mailbox_seen"), 0);
	T_EQ_INT(raw_sql(path, "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
	    " AND name IN ('outbox_acks_recent', 'outbox_notices_recent')"), 2);
	n = 0;
	T_EQ_INT(store_diagnosis_pending(s, 0, 10, count_cases_cb, &n), STORE_OK);
	T_EQ_INT(n, 0);
	store_close(s);
}

/* v6: what the worker read of the support mailbox, and messages.via. */
static void
test_mailbox(struct store *s)
{
	struct message_rec m, back;
	struct case_rec c;

	T_EQ_INT(store_mailbox_seen(s, "maildir:/m", "1.P1.host"), STORE_NOTFOUND);
	T_EQ_INT(store_mailbox_mark(s, "maildir:/m", "1.P1.host", 100), STORE_OK);
	T_EQ_INT(store_mailbox_seen(s, "maildir:/m", "1.P1.host"), STORE_OK);
	/* again: nothing changes; another mailbox is another key space */
	T_EQ_INT(store_mailbox_mark(s, "maildir:/m", "1.P1.host", 200), STORE_OK);
	T_EQ_INT(store_mailbox_seen(s, "maildir:/other", "1.P1.host"), STORE_NOTFOUND);
	/* IMAP keys: the last UID of one UIDVALIDITY, numerically */
	unsigned long last = 99;
	T_EQ_INT(store_mailbox_last_uid(s, "imaps://u@h/INBOX", 7, &last), STORE_OK);
	T_EQ_INT((long long)last, 0);
	T_EQ_INT(store_mailbox_mark(s, "imaps://u@h/INBOX", "7/9", 1), STORE_OK);
	T_EQ_INT(store_mailbox_mark(s, "imaps://u@h/INBOX", "7/10", 1), STORE_OK);
	T_EQ_INT(store_mailbox_mark(s, "imaps://u@h/INBOX", "70/500", 1), STORE_OK);
	T_EQ_INT(store_mailbox_mark(s, "imaps://u@h/INBOX", "6/400", 1), STORE_OK);
	T_EQ_INT(store_mailbox_mark(s, "imaps://u@h/Other", "7/300", 1), STORE_OK);
	T_EQ_INT(store_mailbox_last_uid(s, "imaps://u@h/INBOX", 7, &last), STORE_OK);
	T_EQ_INT((long long)last, 10);

	make_case(&c, "via@example.com", 10000, 2);
	T_EQ_INT(store_case_create(s, &c), STORE_OK);
	make_message(&m, c.id, "via-1@example.com", "in", 100);
	snprintf(m.via, sizeof(m.via), "mailbox");
	T_EQ_INT(store_message_add(s, &m), STORE_OK);
	T_EQ_INT(store_message_get(s, m.id, &back), STORE_OK);
	T_EQ_STR(back.via, "mailbox");
	make_message(&m, c.id, "via-2@example.com", "in", 101);
	T_EQ_INT(store_message_add(s, &m), STORE_OK);
	T_EQ_INT(store_message_get(s, m.id, &back), STORE_OK);
	T_EQ_STR(back.via, "");
}


/* v7: staff commands by mail: one row per staff message, pending until
 * the worker marks it done, listed per case. */
static int
collect_mailcmd(const struct mailcmd_rec *m, void *arg)
{
	struct mailcmd_rec *out = arg;

	if (out->id == 0 || m->id > out->id)
		*out = *m;
	out->received++;	/* counts the rows seen */
	return 0;
}

static void
test_mailcmd(struct store *s)
{
	struct mailcmd_rec m, got;

	memset(&m, 0, sizeof(m));
	m.case_id = 42;
	snprintf(m.staff, sizeof(m.staff), "ann@staff.example.com");
	snprintf(m.login, sizeof(m.login), "ann@staff.example.com");
	snprintf(m.message_id, sizeof(m.message_id), "reply-1@staff.example.com");
	snprintf(m.subject, sizeof(m.subject), "Re: [HG-42] mail stuck");
	snprintf(m.commands, sizeof(m.commands), "#assign me\n#wait");
	m.received = 1000;
	T_EQ_INT(store_mailcmd_add(s, &m), STORE_OK);
	T_CHECK(m.id > 0);
	/* the MTA retried: the same message is not a second row */
	T_EQ_INT(store_mailcmd_add(s, &m), STORE_OK);
	T_EQ_INT((int)m.id, 0);
	memset(&got, 0, sizeof(got));
	T_EQ_INT(store_mailcmd_pending(s, 10, collect_mailcmd, &got), STORE_OK);
	T_EQ_INT((int)got.received, 1000 + 1);		/* one row */
	T_EQ_STR(got.commands, "#assign me\n#wait");
	T_EQ_STR(got.staff, "ann@staff.example.com");
	T_EQ_INT(store_mailcmd_done(s, got.id, 2000, "assigned to ann@staff.example.com\nwaiting"),
	    STORE_OK);
	memset(&m, 0, sizeof(m));
	T_EQ_INT(store_mailcmd_pending(s, 10, collect_mailcmd, &m), STORE_OK);
	T_EQ_INT((int)m.id, 0);				/* nothing pending */
	memset(&m, 0, sizeof(m));
	T_EQ_INT(store_mailcmd_list(s, 42, collect_mailcmd, &m), STORE_OK);
	T_EQ_INT((int)m.done, 2000);
	T_CONTAINS(m.result, "waiting");
	T_EQ_INT(store_mailcmd_done(s, 999999, 1, ""), STORE_NOTFOUND);
}

/* ---- PostgreSQL only: several workers on one database ---- */

struct claim_worker {
	const char	*target;
	long long	 ids[200];
	int		 n;
	int		 failed;
};

static int
claim_collect(struct outbox_rec *o, void *arg)
{
	struct claim_worker *w = arg;

	if (w->n < 200)
		w->ids[w->n++] = o->id;
	return 0;
}

/* Claims five at a time until nothing is due. */
static void *
claim_thread(void *arg)
{
	struct claim_worker *w = arg;
	struct store *s = NULL;
	char err[256];

	if (store_open(w->target, 5000, &s, err, sizeof(err)) != STORE_OK) {
		w->failed = 1;
		return NULL;
	}
	for (int before = -1; before != w->n;) {
		before = w->n;
		if (store_outbox_claim(s, 1000, 1030, 5, claim_collect, w) != STORE_OK)
			w->failed = 1;
	}
	store_close(s);
	return NULL;
}

static void
test_pg_claims(void)
{
	char path[256], err[256];
	struct store *a, *b = NULL;
	struct case_rec c;
	struct message_rec m;
	struct outbox_rec o;
	struct claim_worker w[2];
	pthread_t th[2];
	int seen[121] = { 0 }, dup = 0, total = 0;

	path_in_tmp(path, sizeof(path), "claims");
	if ((a = open_ok(path, 1000)) == NULL)
		return;
	T_EQ_INT(store_open(path, 300, &b, err, sizeof(err)), STORE_OK);
	if (b == NULL) {
		store_close(a);
		return;
	}
	T_EQ_STR(store_backend(a), "postgresql");
	make_case(&c, "claims@example.com", 1000, 2);
	T_EQ_INT(store_case_create(a, &c), STORE_OK);

	/* The same Message-ID recorded on two hosts: one row, the second
	 * told STORE_EXISTS, inside a transaction that goes on. */
	make_message(&m, c.id, "both@example.com", "in", 1000);
	snprintf(m.message_id, sizeof(m.message_id), "same@mx.test");
	T_EQ_INT(store_message_add(a, &m), STORE_OK);
	T_EQ_INT(store_begin(b), STORE_OK);
	T_EQ_INT(store_message_add(b, &m), STORE_EXISTS);
	T_EQ_INT(store_customer_watch(b, "claims@example.com", "trial", 5000, 1000), STORE_OK);
	T_EQ_INT(store_commit(b), STORE_OK);
	T_EQ_INT(raw_sql(path, "SELECT count(*) FROM messages WHERE message_id = 'same@mx.test'"), 1);

	/* Write transactions are serialised across connections: the second
	 * waits, and gives up after its timeout with STORE_BUSY. */
	T_EQ_INT(store_begin(a), STORE_OK);
	T_EQ_INT(store_begin(b), STORE_BUSY);
	store_rollback(b);
	T_EQ_INT(store_commit(a), STORE_OK);
	T_EQ_INT(store_begin(b), STORE_OK);
	store_rollback(b);

	/* 120 outbox rows, two workers claiming at once: each row once. */
	for (int i = 0; i < 120; i++) {
		memset(&o, 0, sizeof(o));
		o.case_id = c.id;
		snprintf(o.kind, sizeof(o.kind), "notice");
		snprintf(o.recipient, sizeof(o.recipient), "x%d@example.com", i);
		snprintf(o.message_id, sizeof(o.message_id), "claim-%d@example.com", i);
		o.content = (char *)"Subject: x\r\n\r\nbody\r\n";
		o.created = 900;
		T_EQ_INT(store_outbox_add(a, &o), STORE_OK);
	}
	for (int i = 0; i < 2; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].target = path;
		pthread_create(&th[i], NULL, claim_thread, &w[i]);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		T_EQ_INT(w[i].failed, 0);
		for (int j = 0; j < w[i].n; j++) {
			long long id = w[i].ids[j] - w[0].ids[0] + 1;

			total++;
			if (id >= 1 && id <= 120 && seen[id]++)
				dup++;
		}
	}
	printf("# two workers claimed %d and %d rows\n", w[0].n, w[1].n);
	T_EQ_INT(total, 120);
	T_EQ_INT(dup, 0);
	T_EQ_INT(raw_sql(path, "SELECT count(*) FROM outbox WHERE state = 'sending' AND attempts = 1"
	    " AND next_attempt = 1030"), 120);
	/* Leased until 1030: nothing for anyone before, everything after. */
	memset(&w[0], 0, sizeof(w[0]));
	T_EQ_INT(store_outbox_claim(b, 1029, 1060, 200, claim_collect, &w[0]), STORE_OK);
	T_EQ_INT(w[0].n, 0);
	T_EQ_INT(store_outbox_claim(b, 1030, 1060, 200, claim_collect, &w[0]), STORE_OK);
	T_EQ_INT(w[0].n, 120);

	/* Leases on other work. */
	T_EQ_INT(store_claim(a, "diagnose", 7, "mx1:100", 100, 200), STORE_OK);
	T_EQ_INT(store_claim(b, "diagnose", 7, "mx2:100", 150, 250), STORE_EXISTS);
	T_EQ_INT(store_claim(a, "diagnose", 7, "mx1:100", 150, 260), STORE_OK);	/* renewed */
	T_EQ_INT(store_claim(b, "diagnose", 7, "mx2:100", 260, 360), STORE_OK);	/* expired */
	T_EQ_INT(store_claim_release(b, "diagnose", 7, "mx2:100"), STORE_OK);
	T_EQ_INT(store_claim(a, "diagnose", 7, "mx1:100", 261, 300), STORE_OK);
	store_close(b);
	store_close(a);
}

int
main(void)
{
	char path[256];
	struct store *s;

	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	if ((pg_base = getenv("HG_TEST_PG")) != NULL && *pg_base == '\0')
		pg_base = NULL;
	if (pg_base == NULL) {
		test_misc();
		test_open_and_migrate();
		test_bad_directory();
	}

	path_in_tmp(path, sizeof(path), "main.db");
	s = open_ok(path, 1000);
	if (s != NULL) {
		test_customers(s);
		test_cases(s, path);
		test_messages(s, path);
		test_utf8_cut(s, path);
		test_utf8_excerpt(s, path);
		test_unterminated_fields(s);
		test_mailbox(s);
		test_mailcmd(s);
		store_close(s);
		if (pg_base == NULL)
			test_reopen(path);
	}
	test_outbox();
	if (pg_base == NULL)
		test_upgrade_from_v1();
	test_diagnoses();
	if (pg_base == NULL) {
		test_busy();
		test_errors_after_open();
	} else {
		test_pg_claims();
	}
	cleanup_tmpdir();
	return t_done();
}
