#!/usr/bin/env bash
# pg_server.sh -- a real PostgreSQL 15 server for the tests, in a folder
# of its own, on 127.0.0.1 and a port free at run time (see
# ../shared/TESTING.md "PostgreSQL"). The server refuses to run as root,
# so as root it runs as the `postgres` user that Debian's package made.
#
#   pg_server.sh start DIR   initdb into DIR/data (DIR made if missing),
#                            start, print the conninfo
#                            ("host=127.0.0.1 port=N user=postgres") and
#                            write it to DIR/conninfo
#   pg_server.sh stop DIR    fast stop, then remove DIR
#   pg_server.sh kill DIR    stop like a crash (-m immediate), keep DIR
#   pg_server.sh restart DIR start again on the same port (after kill/halt)
#   pg_server.sh halt DIR    fast stop, keep DIR (for restart)
#   pg_server.sh createdb DIR NAME   a new empty database; prints its
#                            conninfo
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

die() {
    echo "pg_server.sh: $*" >&2
    exit 1
}

[ -x "$PGBIN/initdb" ] ||
    die "$PGBIN/initdb not found: install Debian's postgresql (scripts/deps.sh)"

# as_pg CMD...: CMD as the postgres user when we are root, else as us.
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

pg_start() {
    local dir=$1 port=$2
    # Small shared memory and few connections: many servers may run at
    # once on a CI machine. fsync stays on: the tests kill -9 and must
    # see what a real server keeps.
    as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir \
            -c max_connections=100 -c shared_buffers=32MB \
            -c max_locks_per_transaction=256" start > /dev/null ||
        { cat "$dir/log" >&2; die "cannot start the server in $dir"; }
}

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || die "usage: pg_server.sh start|stop|kill|halt|restart|createdb DIR [NAME]"
case $cmd in
start)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    as_pg "$PGBIN/initdb" -D "$dir/data" -A trust -U postgres \
        --no-sync > "$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    port=$(free_port)
    echo "$port" > "$dir/port"
    pg_start "$dir" "$port"
    echo "host=127.0.0.1 port=$port user=postgres" | tee "$dir/conninfo"
    ;;
restart)
    pg_start "$dir" "$(cat "$dir/port")"
    ;;
stop)
    as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop \
        > /dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
halt)
    as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop > /dev/null
    ;;
kill)
    as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w -t 60 stop \
        > /dev/null
    ;;
createdb)
    name=${3:?createdb needs a NAME}
    psql -X -q -v ON_ERROR_STOP=1 "$(cat "$dir/conninfo") dbname=postgres" \
        -c "CREATE DATABASE \"$name\"" > /dev/null
    echo "$(cat "$dir/conninfo") dbname=$name"
    ;;
*)
    die "unknown command $cmd"
    ;;
esac
