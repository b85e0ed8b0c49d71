#!/usr/bin/env bash
# test_store_pg.sh BINDIR - the store's unit tests (tests/unit/test_store.c)
# again, on a private PostgreSQL cluster: every API test, each on a fresh
# database, plus what only several connections show (two workers claiming
# the outbox at once, serialised write transactions, leases).
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/mailstack.sh"
. "$here/../lib/pg.sh"

bindir=${1:-bin}
# BUILD/bin's unit tests are in BUILD/tests; a release build's bin/ is the
# repository's, its tests in build/rel/tests.
unit="$bindir/../tests/test_store"
[ -x "$unit" ] || unit="$here/../../build/rel/tests/test_store"
[ -x "$unit" ] || { echo "no $unit"; echo "0 passed, 1 failed"; exit 1; }
ms_init || exit 1
pg_start "$MS_T/pg" || { echo "0 passed, 1 failed"; exit 1; }
HG_TEST_PG="host=$PG_SOCKDIR user=postgres" "$unit" 2>&1 | grep -v '^NOTICE:'
rc=${PIPESTATUS[0]}
T_DONE=1
exit "$rc"
