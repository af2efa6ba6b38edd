# agent_keepalive.sh -- the collector closes idle keep-alive connections,
# and the agent's shipper copes: a collector whose idle close (1 s) is
# shorter than the agent's batch interval (3 s) sees every batch on a new
# connection, and still every batch is acked, none is logged as failed or
# retried, and the collector holds every seq the agent wrote, without a
# gap. Twice: closed by the collector's request deadline (its reaper,
# which must close an idle connection quietly, not as a slow request),
# then by libmicrohttpd's idle timeout.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

BATCHES=5           # acked batches per phase, each on a new connection

start_target

# phase NAME LIMITS: a collector with LIMITS (YAML flow map), the agent
# until BATCHES batches past the first were acked on new connections.
phase() {
    local name=$1 limits=$2 db=$TMP/$1.db alog=$TMP/$1.agent.log pid
    write_collector_config "$TMP/collector.yaml"
    printf 'log_level: debug\nlimits: %s\n' "$limits" >> "$TMP/collector.yaml"
    COLLECTOR_LOG=$TMP/$name.collector.log start_collector "$db"
    cat > "$TMP/agent.yaml" <<YAML
$(agent_yaml_head "$TMP/$name.spool")
log_level: debug
interval: 3s
targets:
  - name: up
    url: http://127.0.0.1:$TARGET_PORT/
YAML
    "$AGENT" --config "$TMP/agent.yaml" 2> "$alog" &
    pid=$!
    PIDS+=($pid)
    # The first batch opens the first connection; each later one finds
    # it closed by the collector (idle 3 s > 1 s) and opens another.
    wait_until 60 "$name: $((BATCHES + 1)) batches not acked on new connections" \
        acked_new "$alog" $((BATCHES + 1))
    kill -TERM "$pid"
    wait_until 60 "$name: agent still running after SIGTERM" not_running "$pid"
    wait "$pid" || fail "$name: the agent exited $?"
    ! grep -E 'not delivered|shipper.*(WARN|ERROR)|(WARN|ERROR).*shipper' \
        "$alog" || fail "$name: the agent logged a failed shipment"
    # The collector never called an idle connection a slow request.
    ! grep 'request not complete' "$TMP/$name.collector.log" ||
        fail "$name: an idle keep-alive connection was logged as slow"
    stop_collector
    # Every seq the agent wrote is stored, 1 to the last, no gap (the
    # SIGTERM flush sent the rest).
    assert_eq "$(sqlite3 "$db" 'SELECT min(seq) = 1 AND
                  count(DISTINCT seq) = max(seq) FROM events')" 1 \
        "$name: seqs stored without a gap"
    echo "$name: $(grep -c 'a new connection' "$alog") connections," \
         "$(grep -c 'stored seq' "$alog") batches acked"
}

# acked_new LOG N: N batches acked, each after a new connection.
acked_new() {
    [ "$(grep -c 'stored seq' "$1")" -ge "$2" ] &&
        [ "$(grep -c 'a new connection' "$1")" -ge "$2" ]
}

phase reaper '{request_timeout: 1s, connection_timeout: 1h}'
# The reaper closed them, quietly.
grep -q 'idle for 1000 ms (limits.request_timeout): closing' \
    "$TMP/reaper.collector.log" || fail "reaper: no idle connection closed"
phase mhd_idle '{request_timeout: 1h, connection_timeout: 1s}'
echo "agent_keepalive: all passed"
