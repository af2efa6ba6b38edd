# pg_outage.sh -- PostgreSQL stopped for 30 s during ingest (issue 15):
# one collector on PostgreSQL, two real agents shipping to it. The server
# is stopped (pg_server.sh halt) under load; while it is down the
# collector's /readyz is 503 naming the database, the agents' batches get
# 503 with Retry-After (their logs say so) and their spools grow. Once
# the outage has lasted 30 s (wall time, polled, while checking that it
# is still down and the spools still grow) the server starts again; the
# same collector process reconnects by itself and becomes ready, the
# agents drain their spools, and every seq is stored exactly once (or
# covered by a drop event), with each watermark at the agent's last seq.
# The first API read after it is answered (no stale pooled connection).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/delivery_lib.sh"
. "$(dirname "$0")/pg_lib.sh"

NODES=(n1 n2)
OUTAGE_MS=30000

pg_setup
start_named_collector C "$TMP/unused.db"
wait_until 60 "collector not ready on PostgreSQL" is_ready C
start_pg_agents "http://127.0.0.1:${CPORT[C]}"
all_past "before the outage"

# 503s the agent logged with a Retry-After (the shipper's retry line).
refused() {
    count_lines "$TMP/$1.log" 'HTTP 503: .*(Retry-After)$'
}

# outage_checks: the collector says why it is not ready, and each agent
# was refused with a Retry-After and spools what it makes.
outage_checks() {
    local n
    [ "$(readyz C)" = 503 ] || return 1
    grep -q 'database unreachable' "$TMP/C.readyz" || return 1
    for n in "${NODES[@]}"; do
        [ "$(refused "$n")" -gt "${REFUSED[$n]}" ] || return 1
        [ "$(spool_count "$n")" -gt "${SPOOLED[$n]}" ] || return 1
    done
}

# outage_over: 30 s since the stop, and everything still as it was in it.
outage_over() {
    [ "$(now_ms)" -ge $((STOPPED + OUTAGE_MS)) ] && outage_checks
}

# One API read before the outage leaves an idle connection in the
# collector's read pool, which the server's stop ends.
URL=http://127.0.0.1:${CPORT[C]} api_get "api/v1/clusters" > /dev/null

declare -A REFUSED SPOOLED
for n in "${NODES[@]}"; do
    REFUSED[$n]=$(refused "$n")
    SPOOLED[$n]=$(spool_count "$n")
done
"$PG_SERVER" halt "$PGDIR" || fail "pg_server.sh halt failed"
STOPPED=$(now_ms)
wait_until 60 "during the outage: /readyz not 503 'database unreachable', \
or no agent refused with Retry-After, or spools not growing" outage_checks
cat "$TMP/C.readyz"; echo
for n in "${NODES[@]}"; do SPOOLED[$n]=$(spool_count "$n"); done
wait_until 90 "the outage did not last 30 s as it should" outage_over
! pg_up || fail "PostgreSQL answers during the outage"
echo "PostgreSQL down for $(( ($(now_ms) - STOPPED) / 1000 )) s:" \
     "spools at ${SPOOLED[n1]} and ${SPOOLED[n2]} events, and growing"

"$PG_SERVER" restart "$PGDIR" || fail "pg_server.sh restart failed"
wait_until 60 "the collector did not reconnect after the outage" is_ready C
kill -0 "${CPID[C]}" || fail "the collector died during the outage"
# The first read after it answers: the pooled connection the stop ended
# is not used for it (a 503 "query failed; retry" before).
URL=http://127.0.0.1:${CPORT[C]} api_get "api/v1/clusters" > /dev/null
all_past "after the outage"
for n in "${NODES[@]}"; do
    wait_until 60 "node $n: its spool did not drain" spool_below "$n" 200
done

stop_check_agents "after the outage"
stop_named_collector C
echo "pg_outage: all passed"
