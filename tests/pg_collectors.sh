# pg_collectors.sh -- many collectors on one PostgreSQL, exactly once
# (issue 15): two collectors A and B on one database, behind
# tests/tcp_proxy as a round-robin load balancer (each new connection to
# the next collector), and four real agents shipping through it, every
# agent its own connection, so both collectors take batches at once.
# During ingest A is killed with kill -9 and restarted on its port (its
# agents reconnect through the proxy to B meanwhile), then PostgreSQL
# crashes (pg_server.sh kill) and comes back (restart) under both
# collectors, which reconnect by themselves. Each fault waits for every
# agent to ship on past it (a condition, not a time). At the end, after
# the agents stopped (SIGTERM flushes): every seq of every agent is stored
# exactly once or covered by a drop event, no gap, each watermark is the
# agent's last seq, and every spool is empty.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/delivery_lib.sh"
. "$(dirname "$0")/pg_lib.sh"

NODES=(n1 n2 n3 n4)

pg_setup
start_named_collector A "$TMP/unused-a.db"
start_named_collector B "$TMP/unused-b.db"
wait_until 60 "collector A not ready on PostgreSQL" is_ready A
wait_until 60 "collector B not ready on PostgreSQL" is_ready B
grep -q 'postgres' "$TMP/A.log" ||
    fail "collector A does not say it uses PostgreSQL"

start_proxy lb "${CPORT[A]}" "${CPORT[B]}"
start_pg_agents "http://127.0.0.1:${PROXY_PORT[lb]}"

# ingested NAME: collector NAME took batches since it last started.
ingested() {
    local v
    v=$(collector_metric "$1" sextant_collector_ingest_batches_total)
    [ "$v" != absent ] && [ "${v%.*}" -gt 0 ]
}

all_past "start"
wait_until 30 "collector A took no batch" ingested A
wait_until 30 "collector B took no batch" ingested B
echo "both collectors take batches through the proxy"

# A crashes: its agents' connections break, and they reconnect through
# the proxy, which skips A while it refuses.
crash_collector A
all_past "A down"
start_named_collector A "$TMP/unused-a.db" "${CPORT[A]}"
wait_until 60 "collector A not ready after its restart" is_ready A
all_past "A restarted"
echo "A crashed and restarted; the agents shipped on"

# PostgreSQL crashes under both collectors and comes back; they
# reconnect by themselves.
"$PG_SERVER" kill "$PGDIR" || fail "pg_server.sh kill failed"
wait_until 60 "collector B still ready with PostgreSQL down" \
    not_ready B
"$PG_SERVER" restart "$PGDIR" || fail "pg_server.sh restart failed"
wait_until 60 "collector A not ready after PostgreSQL's restart" is_ready A
wait_until 60 "collector B not ready after PostgreSQL's restart" is_ready B
all_past "PostgreSQL restarted"
echo "PostgreSQL crashed and restarted; the collectors reconnected"

stop_check_agents "after the faults"

stop_proxy lb
stop_named_collector A
stop_named_collector B
echo "pg_collectors: all passed"
