# pg_lib.sh -- helpers of the many-collector PostgreSQL tests
# (tests/pg_collectors.sh, tests/pg_outage.sh), sourced after lib.sh and
# delivery_lib.sh: a PostgreSQL server of the test's own (these tests
# crash and stop it, so never the shared one of the ctest fixture),
# collectors configured for it, psql reads, and the exact check of an
# agent's seqs in the shared database. Not a test itself
# (tests/pg_e2e.cmake registers the scripts).

PG_SERVER=$SEXTANT_SRC/tests/pg_server.sh
PGDIR=
PGCONN=

# The server's folder is outside $TMP: the server runs as the postgres
# user, which cannot enter a root-only mktemp folder. Stopped and removed
# before lib.sh's cleanup, also when the test fails.
pg_cleanup() {
    local rc=$?
    [ -z "$PGDIR" ] || "$PG_SERVER" stop "$PGDIR" > /dev/null 2>&1 || true
    cleanup
    exit "$rc"
}
trap pg_cleanup EXIT

# pg_setup: a fresh server and a database "sextant" on it (sets PGDIR
# and PGCONN, the database's conninfo), the agents' target server, and
# the collectors' config $TMP/collector.yaml on that database.
pg_setup() {
    PGDIR=$(mktemp -d /tmp/sextant-pg.XXXXXX)
    "$PG_SERVER" start "$PGDIR" > "$TMP/pg.start" 2> "$TMP/pg.log" ||
        fail "pg_server.sh start: $(cat "$TMP/pg.log")"
    PGCONN=$("$PG_SERVER" createdb "$PGDIR" sextant 2>> "$TMP/pg.log") ||
        fail "pg_server.sh createdb: $(cat "$TMP/pg.log")"
    start_target
    write_pg_collector_config "$TMP/collector.yaml"
}

# start_pg_agents URL: an agent for each of NODES shipping to URL, 5
# targets probed every 100 ms, batches closed fast and retried fast;
# returns once each has started.
start_pg_agents() {
    local n
    for n in "${NODES[@]}"; do
        write_agent "$n" "$(collector_yaml "$1")" 5 100ms \
            'shipping: {batch_max_events: 200, batch_max_age: 100ms,
  backoff_initial: 100ms, backoff_max: 500ms, shutdown_grace: 10s}'
        start_agent "$n"
    done
    for n in "${NODES[@]}"; do      # its spool exists once it started
        wait_until 60 "agent $n never logged that it started" \
            agent_started "$n"
    done
}

# pq SQL: one query on the test's database, unaligned, no headers.
pq() {
    psql -X -q -A -t -v ON_ERROR_STOP=1 "$PGCONN" -c "$1"
}

# pg_up: the server answers.
pg_up() {
    pq 'SELECT 1' > /dev/null 2>&1
}

# write_pg_collector_config FILE: lib.sh's collector config (clusters
# "test" and "other") on the test's database.
write_pg_collector_config() {
    write_collector_config "$1"
    cat >> "$1" <<YAML
store:
  backend: postgres
  postgres:
    conninfo: "$PGCONN"
YAML
}

# collector_metric NAME SERIES: a sample of collector NAME's /metrics, or
# "absent" (delivery_lib.sh's metric reads any /metrics).
collector_metric() {
    metric "${CPORT[$1]}" "$2"
}

# readyz NAME: collector NAME's /readyz status code; its body in
# $TMP/NAME.readyz.
readyz() {
    curl -sS --max-time 30 -o "$TMP/$1.readyz" -w '%{http_code}' \
        "http://127.0.0.1:${CPORT[$1]}/readyz" || echo 000
}

# is_ready NAME: /readyz answers 200.
is_ready() {
    [ "$(readyz "$1")" = 200 ]
}

# not_ready NAME: /readyz answers anything but 200.
not_ready() {
    ! is_ready "$1"
}

# The agents of these tests are in cluster "test" (the scenario fed
# beside them has agents of the same node names in its own clusters).

# pg_acked NODE: the node's watermark in the shared database (0 before
# it stored anything).
pg_acked() {
    pq "SELECT coalesce(max(acked_seq), 0) FROM agents
        WHERE cluster = 'test' AND node = '$1'"
}

# pg_stored_through NODE SEQ: the node's watermark reached SEQ.
pg_stored_through() {
    [ "$(pg_acked "$1")" -ge "$2" ]
}

# pg_check_node NODE LAST WHAT: the shared database holds, for NODE, in
# one epoch, every seq of 1..LAST exactly once or covered by a drop event
# (the agent's spool dropped it, and said so), no seq above LAST, no gap
# event (a loss nobody explained), and its watermark is LAST. Says which
# seqs are wrong when not.
pg_check_node() {
    local node=$1 last=$2 what=$3 n dups missing extra
    n=$(pq "SELECT count(*) FROM agents
            WHERE cluster = 'test' AND node = '$node'")
    [ "$n" = 1 ] || fail "$what: node $node has $n epochs, want 1"
    dups=$(pq "SELECT string_agg(seq::text, ',' ORDER BY seq) FROM
        (SELECT e.seq FROM events e JOIN agents a ON a.id = e.agent_id
         WHERE a.cluster = 'test' AND a.node = '$node'
           AND e.seq IS NOT NULL
         GROUP BY e.seq HAVING count(*) > 1) d")
    [ -z "$dups" ] || fail "$what: node $node: seqs stored twice: $dups"
    missing=$(pq "WITH a AS (SELECT id FROM agents
                             WHERE cluster = 'test' AND node = '$node'),
        dropped AS (SELECT generate_series((e.data::json->>'from_seq')::bigint,
                                           (e.data::json->>'to_seq')::bigint) s
            FROM events e JOIN kinds k ON k.id = e.kind_id
            WHERE e.agent_id = (SELECT id FROM a) AND k.name = 'drop')
        SELECT s FROM generate_series(1, $last) s
        EXCEPT SELECT seq FROM events WHERE agent_id = (SELECT id FROM a)
        EXCEPT SELECT s FROM dropped ORDER BY 1" | ranges)
    [ -z "$missing" ] ||
        fail "$what: node $node: seqs of 1..$last neither stored nor dropped: $missing"
    extra=$(pq "SELECT e.seq FROM events e JOIN agents a ON a.id = e.agent_id
        WHERE a.cluster = 'test' AND a.node = '$node' AND e.seq > $last
        ORDER BY 1" | ranges)
    [ -z "$extra" ] ||
        fail "$what: node $node: seqs above the agent's last ($last): $extra"
    n=$(pq "SELECT count(*) FROM events e JOIN agents a ON a.id = e.agent_id
        JOIN kinds k ON k.id = e.kind_id
        WHERE a.cluster = 'test' AND a.node = '$node'
          AND k.name = 'gap'")
    assert_eq "$n" 0 "$what: node $node: gap events"
    assert_eq "$(pg_acked "$node")" "$last" "$what: node $node: watermark"
}

# all_through SEQS...: node ${NODES[i]}'s watermark reached SEQS[i].
all_through() {
    local i=0 n
    for n in "${NODES[@]}"; do
        pg_stored_through "$n" "${@:$((++i)):1}" || return 1
    done
}

# all_past WHAT: every agent of NODES ships past what it had made when
# called (its last seq then, plus 10 probes): the store takes its batches.
all_past() {
    local n want=()
    for n in "${NODES[@]}"; do want+=($(( $(spool_last "$n") + 10 ))); done
    wait_until 90 "$1: the agents' batches are not stored" \
        all_through "${want[@]}"
}

# stop_check_agents WHAT: stops every agent of NODES (SIGTERM: it ships
# what it holds first), then checks each node's seqs (pg_check_node) and
# that its spool is empty.
stop_check_agents() {
    local n last
    for n in "${NODES[@]}"; do stop_agent "$n"; done
    for n in "${NODES[@]}"; do
        last=$(spool_last "$n")
        pg_check_node "$n" "$last" "$1"
        assert_eq "$(spool_count "$n")" 0 "node $n: events left in its spool"
        echo "node $n: seqs 1..$last stored once each"
    done
}
