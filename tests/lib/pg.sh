# shellcheck shell=bash
# pg.sh - a private PostgreSQL cluster for tests: initdb and pg_ctl into a
# directory of the test's, a unix socket there and no TCP port at all,
# stopped by PID at exit.  Source it after mailstack.sh (or on its own with
# PG_DIR set).
#
#   pg_start DIR             cluster in DIR (made here), database "helpgate";
#                            sets PG_SOCKDIR, PG_PID and PG_TARGET, the
#                            Database value ("postgresql:///helpgate?host=...")
#   pg_createdb NAME         another database; prints its Database value
#   pg_psql [ARGS...]        psql on the helpgate database as the superuser
#   pg_stop_server / pg_start_server
#                            stop (fast) and start the same cluster again
#   pg_freeze / pg_thaw      SIGSTOP / SIGCONT the postmaster and every backend:
#                            a server that stops answering without closing
#   pg_stop                  immediate shutdown; the EXIT hook of mailstack
#
# PostgreSQL refuses to run as root: the cluster belongs to the "postgres"
# user of Debian's package and the commands run through runuser.

PG_BINDIR=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}

_pg_as() { runuser -u postgres -- "$@"; }

pg_start() {
	PG_DIR=$1
	PG_SOCKDIR=$PG_DIR/sock
	if [ ! -x "$PG_BINDIR/initdb" ]; then
		printf '# pg_start: no initdb under /usr/lib/postgresql (apt-get install postgresql)\n' >&2
		return 1
	fi
	mkdir -p "$PG_DIR/data" "$PG_SOCKDIR" || return 1
	chown postgres: "$PG_DIR" "$PG_DIR/data" "$PG_SOCKDIR"
	chmod 700 "$PG_DIR/data"
	chmod 755 "$PG_DIR" "$PG_SOCKDIR"
	_pg_as "$PG_BINDIR/initdb" -D "$PG_DIR/data" -U postgres -A trust -E UTF8 \
		--locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 || {
		printf '# initdb failed:\n' >&2
		sed 's/^/#   /' "$PG_DIR/initdb.log" >&2
		return 1
	}
	cat >>"$PG_DIR/data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$PG_SOCKDIR'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 60
shared_buffers = 32MB
EOF
	[ "$(type -t ms_on_exit)" = function ] && ms_on_exit pg_stop
	pg_start_server || return 1
	_pg_as "$PG_BINDIR/createdb" -h "$PG_SOCKDIR" -U postgres helpgate || return 1
	PG_TARGET="postgresql:///helpgate?host=$PG_SOCKDIR&user=postgres"
	export PG_TARGET PG_SOCKDIR
}

pg_start_server() {
	local i
	_pg_as "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 30 \
		start >/dev/null || {
		printf '# pg_ctl start failed:\n' >&2
		tail -n 20 "$PG_DIR/server.log" | sed 's/^/#   /' >&2
		return 1
	}
	for ((i = 0; i < 100; i++)); do
		PG_PID=$(head -n 1 "$PG_DIR/data/postmaster.pid" 2>/dev/null)
		[ -n "$PG_PID" ] && break
		sleep 0.05
	done
	export PG_PID
}

pg_createdb() {
	_pg_as "$PG_BINDIR/createdb" -h "$PG_SOCKDIR" -U postgres "$1" || return 1
	printf 'postgresql:///%s?host=%s&user=postgres\n' "$1" "$PG_SOCKDIR"
}

pg_psql() {
	_pg_as psql -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCKDIR" -U postgres -d helpgate "$@"
}

# The postmaster and its children, by the PID file's postmaster.
_pg_tree() {
	[ -n "${PG_PID:-}" ] || return 0
	echo "$PG_PID"
	pgrep -P "$PG_PID" 2>/dev/null
}

pg_freeze() { kill -STOP $(_pg_tree) 2>/dev/null; }
pg_thaw() { kill -CONT $(_pg_tree) 2>/dev/null; }

# _pg_shutdown SIGNAL: INT is PostgreSQL's fast shutdown, QUIT immediate.
_pg_shutdown() {
	local i
	[ -n "${PG_PID:-}" ] || return 0
	pg_thaw
	kill -"$1" "$PG_PID" 2>/dev/null
	for ((i = 0; i < 200; i++)); do
		kill -0 "$PG_PID" 2>/dev/null || break
		sleep 0.05
	done
	kill -0 "$PG_PID" 2>/dev/null && kill -KILL $(_pg_tree) 2>/dev/null
	PG_PID=
}

pg_stop_server() { _pg_shutdown INT; }
pg_stop() { _pg_shutdown QUIT; }
