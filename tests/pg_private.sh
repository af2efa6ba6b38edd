# pg_private.sh -- sourced after lib.sh by a test that needs a PostgreSQL
# server of its own (one it may stop, kill and restart: the shared
# server of tests/pg.cmake serves other tests meanwhile).
#
# pg_private NAME: starts a server in a fresh folder (PRIVATE_PG, stopped
# and removed when the test exits, also on failure), makes database NAME
# on it and sets CONNINFO to it. sql SQL: runs SQL there (one
# transaction), printing the rows unaligned, fields joined by '|'.
# pg_collector NAME: one of several collectors (start_collector with the
# config $TMP/collector.yaml), logging to $TMP/NAME.log; sets PID_NAME,
# PORT_NAME and URL_NAME.

pg_private() {
    PRIVATE_PG=$(mktemp -d)
    trap pg_private_stop EXIT
    "$SEXTANT_SRC/tests/pg_server.sh" start "$PRIVATE_PG" > /dev/null
    CONNINFO=$("$SEXTANT_SRC/tests/pg_server.sh" createdb "$PRIVATE_PG" "$1")
}

pg_private_stop() {
    "$SEXTANT_SRC/tests/pg_server.sh" stop "$PRIVATE_PG" > /dev/null 2>&1 ||
        true
    cleanup
}

sql() {
    psql -X -q -A -t -v ON_ERROR_STOP=1 "$CONNINFO" -c "$1"
}

pg_collector() {
    COLLECTOR_LOG=$TMP/$1.log start_collector "$TMP/$1.db"
    printf -v "PID_$1" %s "$COLLECTOR_PID"
    printf -v "PORT_$1" %s "$COLLECTOR_PORT"
    printf -v "URL_$1" %s "$URL"
}
