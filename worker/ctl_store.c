/*
 * ctl_store - helpgatectl store copy FROM TO: a desk moved between
 * databases (SQLite to PostgreSQL when it grows to several hosts, and
 * back), every row checked by counts.  FROM and TO are Database values;
 * a PostgreSQL one takes its password from the configuration's
 * DatabasePasswordFile or ~/.pgpass.
 */
#include <stdio.h>

#include "config.h"
#include "store.h"
#include "ctl.h"

static void
copy_progress(const char *table, long long source, long long copied, long long dest, void *arg)
{
	long long *total = arg;

	printf("  %-14s %8lld in the source, %8lld copied, %8lld in the destination%s\n", table,
	    source, copied, dest, source == copied && copied == dest ? "" : "  MISMATCH");
	*total += copied;
}

int
ctl_cmd_store_copy(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv)
{
	static const struct ctl_opt opts[] = { { NULL, NULL, NULL } };
	struct config *cfg;
	struct store *from = NULL, *to = NULL;
	char *pos[2], err[512];
	long long total = 0;
	enum store_rc rc;
	int r;

	if ((r = ctl_parse(cmd, argc, argv, opts, pos, 2, 2, NULL)) != 0)
		return r == CTL_HELP ? CTL_EXIT_OK : r;
	if ((cfg = ctl_config(ctl)) == NULL)
		return CTL_EXIT_FAIL;
	store_set_password_file(cfg->database_password_file);
	if (store_open(pos[0], CTL_STORE_TIMEOUT_MS, &from, err, sizeof(err)) != STORE_OK) {
		ctl_err("cannot open %s: %s", pos[0], err);
		return CTL_EXIT_FAIL;
	}
	if (store_open(pos[1], CTL_STORE_TIMEOUT_MS, &to, err, sizeof(err)) != STORE_OK) {
		ctl_err("cannot open %s: %s", pos[1], err);
		store_close(from);
		return CTL_EXIT_FAIL;
	}
	printf("copying %s store into %s store\n", store_backend(from), store_backend(to));
	rc = store_copy(from, to, copy_progress, &total);
	if (rc != STORE_OK)
		ctl_err("copy failed, nothing written: %s", store_errmsg(to)[0] ? store_errmsg(to)
		    : store_errmsg(from));
	else
		printf("done: %lld rows, every table's counts agree\n", total);
	store_close(from);
	store_close(to);
	return rc == STORE_OK ? CTL_EXIT_OK : CTL_EXIT_FAIL;
}
