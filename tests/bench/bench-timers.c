/*
 * bench-timers CONFIG DIR: the SLA timer pass on a store of 1,000,000 open
 * cases (BENCH_CASES), against the same pass on a store of 1,000 cases
 * measured in the same run.  Prints the idle pass (nothing due), a pass
 * that fires 1,000 due events, and leaves DIR/big.db for `helpgatectl sla`.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ack.h"
#include "buf.h"
#include "clock.h"
#include "config.h"
#include "log.h"
#include "store.h"
#include "timers.h"

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Fills a fresh store with n open cases, each with its four timers in the
 * future (first due in a week, resolution in a month). */
static struct store *
make_store(const char *path, long n, long long now)
{
	char err[256], sql[2048];
	struct store *s;
	sqlite3 *db;

	remove(path);
	if (store_open(path, 5000, &s, err, sizeof(err)) != STORE_OK) {
		fprintf(stderr, "%s\n", err);
		exit(1);
	}
	store_close(s);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		exit(1);
	snprintf(sql, sizeof(sql),
	    "PRAGMA synchronous = OFF; BEGIN;"
	    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %ld)"
	    " INSERT INTO cases (created, updated, client, subject, urgency, tier, first_due, resolve_due)"
	    " SELECT %lld, %lld, 'c' || i || '@client.test', 'case ' || i, 1 + i %% 4, 'standard',"
	    "  %lld + i %% 604800, %lld + i %% 2592000 FROM n;"
	    "INSERT INTO events (case_id, kind, due) SELECT id, 'first-warning', first_due - 3600 FROM cases;"
	    "INSERT INTO events (case_id, kind, due) SELECT id, 'first-breach', first_due FROM cases;"
	    "INSERT INTO events (case_id, kind, due) SELECT id, 'resolve-warning', resolve_due - 3600 FROM cases;"
	    "INSERT INTO events (case_id, kind, due) SELECT id, 'resolve-breach', resolve_due FROM cases;"
	    "COMMIT;", n, now, now, now + 7200, now + 86400);
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		fprintf(stderr, "filling %s: %s\n", path, sqlite3_errmsg(db));
		exit(1);
	}
	sqlite3_close(db);
	if (store_open(path, 5000, &s, err, sizeof(err)) != STORE_OK)
		exit(1);
	return s;
}

static double
idle_pass_ms(struct ack_ctx *a, struct store *s, long long now)
{
	double v[201];

	for (int i = 0; i < 201; i++) {
		double t0 = now_ms();
		if (timers_run(a, s, (time_t)now, 1000) != 0)
			fprintf(stderr, "an idle pass fired something\n");
		v[i] = now_ms() - t0;
	}
	qsort(v, 201, sizeof(double), cmp_double);
	return v[100];
}

int
main(int argc, char **argv)
{
	struct buf errors;
	struct config *cfg;
	struct ack_ctx *a;
	struct store *small, *big;
	char err[256], path[1024];
	long n = getenv("BENCH_CASES") ? atol(getenv("BENCH_CASES")) : 1000000;
	long long now = 1796032800;	/* 2026-11-30 10:00 UTC */
	double t0, fill, idle_small, idle_big, fire;
	int fired;

	if (argc != 3) {
		fprintf(stderr, "usage: bench-timers CONFIG DIR\n");
		return 2;
	}
	log_set_level(LOG_LEVEL_WARN);	/* one line per fired event otherwise */
	buf_init(&errors, 65536);
	if ((cfg = config_load(argv[1], &errors)) == NULL) {
		fprintf(stderr, "%s", buf_str(&errors));
		return 1;
	}
	clock_set_timezone(cfg->timezone);
	if ((a = ack_ctx_new(cfg, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/small.db", argv[2]);
	small = make_store(path, 1000, now);
	snprintf(path, sizeof(path), "%s/big.db", argv[2]);
	t0 = now_ms();
	big = make_store(path, n, now);
	fill = now_ms() - t0;

	idle_small = idle_pass_ms(a, small, now);
	idle_big = idle_pass_ms(a, big, now);
	printf("store: %ld open cases, %ld timers (filled in %.1f s)\n", n, 4 * n, fill / 1000);
	printf("idle timer pass, 1,000 cases:   %.3f ms (baseline)\n", idle_small);
	printf("idle timer pass, %ld cases: %.3f ms = %.2fx the baseline (no pass scans all cases)\n",
	    n, idle_big, idle_big / idle_small);
	printf("idle pass target < 5 ms: %s\n", idle_big < 5.0 ? "met" : "MISSED");

	/* 1,000 events come due: the first-warning of 1,000 cases. */
	sqlite3 *db;
	if (sqlite3_open(path, &db) == SQLITE_OK) {
		char sql[256];
		snprintf(sql, sizeof(sql), "UPDATE events SET due = %lld WHERE kind = 'first-warning'"
		    " AND case_id <= 1000", now - 60);
		sqlite3_exec(db, sql, NULL, NULL, NULL);
		sqlite3_close(db);
	}
	t0 = now_ms();
	fired = 0;
	while (fired < 1000) {
		int r = timers_run(a, big, (time_t)now, 1000);
		if (r <= 0)
			break;
		fired += r;
	}
	fire = now_ms() - t0;
	printf("pass with 1,000 events due: %d handled in %.1f ms (%.3f ms each, notices into the outbox)\n",
	    fired, fire, fired ? fire / fired : 0);
	store_close(small);
	store_close(big);
	ack_ctx_free(a);
	config_unref(cfg);
	buf_free(&errors);
	return 0;
}
