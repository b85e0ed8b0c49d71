#!/bin/sh
# make run: the milter and the worker in the foreground with conf/helpgate.conf
# and the database under var/.  Ctrl-C stops both.
set -u
cd "$(dirname "$0")/.." || exit 1
mkdir -p var
CONF=conf/helpgate.conf
bin/helpgate-milter -n -c "$CONF" >/dev/null || exit 1

bin/helpgate-milter -f -c "$CONF" &
MILTER=$!
bin/helpgate-worker -f -c "$CONF" &
WORKER=$!
trap 'kill $MILTER $WORKER 2>/dev/null; wait $MILTER $WORKER 2>/dev/null; exit 0' INT TERM

SOCKET=$(sed -n 's/^[Ss]ocket[[:space:]]*//p' "$CONF" | tail -n 1)
case "$SOCKET" in
inet:*@*) PORT=${SOCKET#inet:}; PORT=${PORT%@*}; ADDR=${SOCKET#*@}; POSTFIX="inet:$ADDR:$PORT" ;;
unix:*)   POSTFIX="$SOCKET" ;;
*)        POSTFIX="$SOCKET" ;;
esac
cat <<TXT

helpgate is running (milter pid $MILTER, worker pid $WORKER), database var/helpgate.db.
Add this line to Postfix's main.cf and run 'postfix reload':

    smtpd_milters = $POSTFIX

(and milter_default_action = accept, so mail flows even when helpgate is down).
Ctrl-C stops both daemons.

TXT
wait $MILTER $WORKER
