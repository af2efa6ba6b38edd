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
# Incidents through the same faults: the collectors also watch the
# services of tests/scenarios/collector.yaml, and the active-passive
# failover scenario is fed through the proxy (tests/scenario_feed) in two
# parts, the first before A's crash, the rest after PostgreSQL's restart,
# each part on a connection of its own (so to one collector or the
# other). The incidents the collectors serve must equal those of one
# SQLite collector fed the same scenario at the same base.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/delivery_lib.sh"
. "$(dirname "$0")/pg_lib.sh"

NODES=(n1 n2 n3 n4)
SCN=$SEXTANT_SRC/tests/scenarios

pg_setup
# The scenarios' clusters and services, and the agents' cluster "test".
sed -e "/^clusters:\$/a\\
  - name: test\\
    token: $TOKEN" "$SCN/collector.yaml" > "$TMP/sqlite.yaml"
{ cat "$TMP/sqlite.yaml"; sed -n '/^store:/,$p' "$TMP/collector.yaml"; } \
    > "$TMP/collector.yaml.new"
mv "$TMP/collector.yaml.new" "$TMP/collector.yaml"
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

# feed URL ARGS...: part of the failover scenario (posted as its agents
# would); sets BASE, the time its second 0 stands for.
feed() {
    "$SCENARIO_FEED" --url "$1" --scn "$SCN/ap_failover.scn" "${@:2}" \
        > "$TMP/feed.out" 2>> "$TMP/feed.log" ||
        fail "scenario_feed failed: $(tail -n 5 "$TMP/feed.log")"
    BASE=$(sed -n 's/^base //p' "$TMP/feed.out")
}

all_past "start"
wait_until 30 "collector A took no batch" ingested A
wait_until 30 "collector B took no batch" ingested B
echo "both collectors take batches through the proxy"
feed "http://127.0.0.1:${PROXY_PORT[lb]}" --before 3.0

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
feed "http://127.0.0.1:${PROXY_PORT[lb]}" --base "$BASE" --from 3.0

stop_check_agents "after the faults"

# incidents PORT: the incidents a collector lists, ids taken out (each
# store numbers its own); fails while it does not answer 200.
incidents() {
    curl -sf --max-time 30 "http://127.0.0.1:$1/api/v1/incidents?limit=100" |
        jq -S 'del(.incidents[].id)'
}
# same_incidents: the scenario's incidents are in, all closed, on the
# SQLite collector, and A and B list exactly those (the leader wrote them,
# every collector serves them).
same_incidents() {
    incidents "${CPORT[S]}" > "$TMP/inc.sqlite" &&
        incidents "${CPORT[A]}" > "$TMP/inc.a" &&
        incidents "${CPORT[B]}" > "$TMP/inc.b" || return 1
    [ "$(jq '[.incidents[] | select(.open | not)] | length' \
         "$TMP/inc.sqlite")" = "$(grep -c '^expect incident' \
                                  "$SCN/ap_failover.scn")" ] &&
        cmp -s "$TMP/inc.sqlite" "$TMP/inc.a" &&
        cmp -s "$TMP/inc.sqlite" "$TMP/inc.b" && return 0
    # fail() shows the *.log files: the last difference seen.
    diff "$TMP/inc.sqlite" "$TMP/inc.a" > "$TMP/incidents.diff.log"
    diff "$TMP/inc.sqlite" "$TMP/inc.b" >> "$TMP/incidents.diff.log"
    return 1
}
"$COLLECTOR" --config "$TMP/sqlite.yaml" --listen 127.0.0.1:0 \
    --db "$TMP/single.db" 2> "$TMP/S.log" &
CPID[S]=$!
PIDS+=(${CPID[S]})
wait_for "$TMP/S.log" 'listening on'
CPORT[S]=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$TMP/S.log")
wait_until 60 "the SQLite collector not ready" is_ready S
feed "http://127.0.0.1:${CPORT[S]}" --base "$BASE"
wait_until 90 "incidents on PostgreSQL differ from one SQLite collector's \
(incidents.diff.log)" same_incidents
echo "incidents: $(jq '.incidents | length' "$TMP/inc.a"), the same on" \
     "both collectors as on one SQLite collector"
stop_proxy lb
stop_named_collector A
stop_named_collector B
stop_named_collector S
echo "pg_collectors: all passed"
