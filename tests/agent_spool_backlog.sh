# agent_spool_backlog.sh -- a real agent's spool backlog as a real
# collector shows it (GET /api/v1/clusters "spool", /metrics'
# sextant_collector_agent_spool_events). The collector is cut off (a
# proxy that refuses) while the agent piles events in its spool; then
# requests get through but replies do not (the proxy's oneway mode), so
# the batch that arrives first after the outage is stored and stays the
# latest: it reports the whole backlog, far more than one batch. Healed,
# the agent drains and the backlog reported falls to one batch at most.
# Every API reply is checked against docs/openapi.yaml.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/delivery_lib.sh"

BATCH=20
start_target
start_collector "$TMP/c.db"
start_proxy c "$COLLECTOR_PORT"
write_agent n1 "$(collector_yaml "http://127.0.0.1:${PROXY_PORT[c]}")" 4 \
    100ms "shipping: {batch_max_events: $BATCH, batch_max_age: 100ms,
           backoff_initial: 50ms, backoff_max: 200ms}"
start_agent n1
APORT=$(admin_port n1)

# reported: the spool n1's latest stored batch reported, events (-1: none
# yet).
reported() {
    api_get api/v1/clusters |
        jq '[.clusters[].regions[].agents[] | select(.node == "n1")][0]
            | .spool.events // -1'
}
reported_ge() { [ "$(reported)" -ge "$1" ]; }
reported_in() {
    local n
    n=$(reported)
    [ "$n" -ge 0 ] && [ "$n" -le "$1" ]
}
gauge() {
    curl -sS --max-time 30 "$URL/metrics" | awk -v m="$1" \
        '$1 == m { print $2; f = 1 } END { if (!f) print "absent" }'
}
SERIES='sextant_collector_agent_spool_events{cluster="test",node="n1"}'

wait_until 60 "n1's first batch" reported_ge 1

proxy_mode c refuse
wait_until 60 "100 events spooled" \
    metric_ge "$APORT" sextant_agent_spool_events 100
# Nothing can be acked from here on: the backlog only grows.
held=$(metric "$APORT" sextant_agent_spool_events)
proxy_mode c oneway
wait_until 60 "the backlog reported" reported_ge "$held"
n=$(reported)
[ "$n" -gt "$BATCH" ] || fail "backlog $n, want more than one batch"
echo "after the outage: $n events reported ($held spooled before)"
g=$(gauge "$SERIES")
[ "$g" != absent ] && [ "$g" -ge "$held" ] ||
    fail "gauge $SERIES: $g, want $held or more"
curl -sS "$URL/metrics" | promtool check metrics > "$TMP/promtool.log" 2>&1 ||
    { cat "$TMP/promtool.log" >&2; fail "promtool check metrics"; }

proxy_mode c pass
wait_until 120 "the backlog reported to fall to one batch" \
    reported_in "$BATCH"
echo "drained: $(reported) events reported"
wait_until 60 "the agent's spool to drain" \
    spool_below n1 $((BATCH * 4))
stop_agent n1
stop_proxy c
stop_collector
echo "agent_spool_backlog: all passed"
