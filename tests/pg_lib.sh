# pg_lib.sh -- helpers of the many-collector PostgreSQL tests
# (tests/pg_collectors.sh, tests/pg_outage.sh), sourced after lib.sh and
# delivery_lib.sh: a PostgreSQL server of the test's own (these tests
# crash and stop it, so never the shared one of the ctest fixture:
# tests/pg_private.sh), collectors configured for it, the agents, and the
# exact check of an agent's seqs in the shared database; and the
# incidents a collector serves, as the tests that compare them with one
# SQLite collector's read them (also tests/pg_incidents.sh, which needs
# only lib.sh for those). Not a test itself (tests/pg_e2e.cmake registers
# the scripts).
. "$(dirname "${BASH_SOURCE[0]}")/pg_private.sh"

# pg_setup: a fresh server and a database "sextant" on it (PGDIR, its
# folder for lib.sh's PG_SERVER kill/halt/restart; pg_private.sh's
# CONNINFO and sql), the agents' target server, and the collectors'
# config $TMP/collector.yaml on that database.
pg_setup() {
    pg_private sextant
    PGDIR=$PRIVATE_PG
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

# pg_up: the server answers.
pg_up() {
    sql 'SELECT 1' > /dev/null 2>&1
}

# write_pg_collector_config FILE: lib.sh's collector config (clusters
# "test" and "other") on the test's database.
write_pg_collector_config() {
    write_collector_config "$1"
    cat >> "$1" <<YAML
store:
  backend: postgres
  postgres:
    conninfo: "$CONNINFO"
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
    sql "SELECT coalesce(max(acked_seq), 0) FROM agents
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
    n=$(sql "SELECT count(*) FROM agents
            WHERE cluster = 'test' AND node = '$node'")
    [ "$n" = 1 ] || fail "$what: node $node has $n epochs, want 1"
    dups=$(sql "SELECT string_agg(seq::text, ',' ORDER BY seq) FROM
        (SELECT e.seq FROM events e JOIN agents a ON a.id = e.agent_id
         WHERE a.cluster = 'test' AND a.node = '$node'
           AND e.seq IS NOT NULL
         GROUP BY e.seq HAVING count(*) > 1) d")
    [ -z "$dups" ] || fail "$what: node $node: seqs stored twice: $dups"
    missing=$(sql "WITH a AS (SELECT id FROM agents
                             WHERE cluster = 'test' AND node = '$node'),
        dropped AS (SELECT generate_series((e.data::json->>'from_seq')::bigint,
                                           (e.data::json->>'to_seq')::bigint) s
            FROM events e JOIN kinds k ON k.id = e.kind_id
            WHERE e.agent_id = (SELECT id FROM a) AND k.name = 'drop')
        SELECT s FROM generate_series(1, $last) s
        EXCEPT SELECT seq FROM events WHERE agent_id = (SELECT id FROM a)
        EXCEPT SELECT s FROM dropped ORDER BY 1" | ranges)
    [ -z "$missing" ] ||
        fail "$what: node $node: seqs of 1..$last neither stored nor" \
             "dropped: $missing"
    extra=$(sql "SELECT e.seq FROM events e JOIN agents a ON a.id = e.agent_id
        WHERE a.cluster = 'test' AND a.node = '$node' AND e.seq > $last
        ORDER BY 1" | ranges)
    [ -z "$extra" ] ||
        fail "$what: node $node: seqs above the agent's last ($last): $extra"
    n=$(sql "SELECT count(*) FROM events e JOIN agents a ON a.id = e.agent_id
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

# --- incidents (pg_collectors.sh, pg_incidents.sh) -------------------------

# incidents URL: the list, as GET /api/v1/incidents answers it.
incidents() {
    URL=$1 api_get "api/v1/incidents?limit=100"
}

# closed URL N: the collector at URL lists N incidents, all closed (polled
# with plain curl: a 503 while the store starts is no failure yet).
closed() {
    curl -sf "$1/api/v1/incidents?limit=100" > "$TMP/closed.json" ||
        return 1
    [ "$(jq '[.incidents[] | select(.open | not)] | length' \
         "$TMP/closed.json")" = "$2" ] &&
    [ "$(jq '[.incidents[] | select(.open)] | length' \
         "$TMP/closed.json")" = 0 ]
}

# snapshot URL FILE: the list and every incident in it, ids taken out
# (each store numbers its own), and each event's receive time (it differs
# between runs and collectors).
snapshot() {
    local id
    incidents "$1" > "$TMP/snap.list"
    jq -S 'del(.incidents[].id)' "$TMP/snap.list" > "$2"
    for id in $(jq '.incidents[].id' "$TMP/snap.list"); do
        URL=$1 api_get "api/v1/incidents/$id" |
            jq -S 'del(.id, .timeline[].received_ms,
                       .annotations[].id, .annotations[].incident)' >> "$2"
    done
}
