# e2e_once.sh -- end to end with real processes: a local HTTP target, a
# collector on a temporary database, and sextant-agent --once. The probe
# results arrive exactly once, with timings, and the timeline API serves
# them; an agent that cannot reach the collector keeps its events in the
# spool and delivers them, once, on the next run.
. "$(dirname "$0")/lib.sh"

start_target
DB=$TMP/c.db
start_collector "$DB"
SPOOL=$TMP/spool.db

# write_agent_config URL: three targets: healthy, failing, timing out.
write_agent_config() {
    cat > "$TMP/agent.yaml" <<YAML
cluster: test
region: test-region
node: node-1
collector:
  url: $1
  token: $TOKEN
spool:
  path: $SPOOL
interval: 60s
timeout: 30s
targets:
  - name: ok
    url: http://localhost:$TARGET_PORT/healthz
  - name: down
    url: http://127.0.0.1:$TARGET_PORT/status/503
  - name: slow
    url: http://127.0.0.1:$TARGET_PORT/sleep/3000
    timeout: 500ms
YAML
}
write_agent_config "$URL"

"$AGENT" --config "$TMP/agent.yaml" --once 2> "$TMP/agent.log" \
    || fail "agent --once exited $?"
assert_eq "$(sqlite3 "$SPOOL" 'SELECT count(*) FROM events')" 0 \
    "spool empty after the ack"

tl() { api_get "api/v1/timeline?from=0&limit=10000"; }
tl > "$TMP/tl.json"
probes() { jq -c '[.events[] | select(.kind == "probe")]' "$TMP/tl.json"; }
assert_eq "$(probes | jq -r '[.[].target] | sort | join(",")')" \
    "down,ok,slow" "one probe event per target"
assert_eq "$(jq '[.events[] | select(.kind == "lifecycle"
    and .fields.phase == "start")] | length' "$TMP/tl.json")" 1 \
    "one start event"
assert_eq "$(jq -r '[.events[] | .cluster, .region, .node] | unique
    | join(",")' "$TMP/tl.json")" "node-1,test,test-region" "labels"

ok=$(probes | jq -c '.[] | select(.target == "ok") | .fields')
assert_eq "$(echo "$ok" | jq -c '[.type, .ok, .status]')" '["http",true,200]' \
    "healthy target"
echo "$ok" | jq -e '.total_us > 0 and .connect_us > 0 and .first_byte_us > 0
    and .first_byte_us >= .connect_us and .total_us >= .first_byte_us
    and .dns_us > 0 and .connect_us >= .dns_us' > /dev/null \
    || fail "timings of the healthy probe: $ok"
down=$(probes | jq -c '.[] | select(.target == "down") | .fields')
assert_eq "$(echo "$down" | jq -c '[.ok, .status]')" '[false,503]' \
    "failing target"
echo "$down" | jq -e '.error | test("503")' > /dev/null \
    || fail "failing probe names its status: $down"
slow=$(probes | jq -c '.[] | select(.target == "slow") | .fields')
# libcurl's timer has millisecond steps and may fire a little early. Its
# "timed out" says the probe ended on its 500 ms timer, not on the body
# (due after 3 s): no upper bound on the time, a loaded machine is late.
echo "$slow" | jq -e '(.ok | not) and .status == 0
    and (.error | test("timed out")) and .total_us >= 490000' > /dev/null \
    || fail "timed out probe: $slow"

# Stored once: seqs are unique per agent and the count matches the API.
unique_seqs() {
    db_sql "$DB" "SELECT count(*) = count(DISTINCT seq) FROM events
        WHERE seq IS NOT NULL" "SELECT (count(*) = count(DISTINCT seq))::int
        FROM events WHERE seq IS NOT NULL"
}
assert_eq "$(unique_seqs)" 1 "no duplicate seq"
first_epoch=$(jq -r '.events[0].epoch' "$TMP/tl.json")

# Collector unreachable: --once fails, the events stay in the spool.
stop_collector
rc=0
"$AGENT" --config "$TMP/agent.yaml" --once 2> "$TMP/agent2.log" || rc=$?
[ "$rc" -ne 0 ] || fail "agent --once succeeded with no collector"
left=$(sqlite3 "$SPOOL" 'SELECT count(*) FROM events')
[ "$left" -ge 3 ] || fail "spool kept $left events, want at least 3"

# Collector back: the next run delivers the old events and its own, once.
start_collector "$DB"                   # on a new port
write_agent_config "$URL"
"$AGENT" --config "$TMP/agent.yaml" --once 2> "$TMP/agent3.log" \
    || fail "agent --once after the collector came back exited $?"
assert_eq "$(sqlite3 "$SPOOL" 'SELECT count(*) FROM events')" 0 "spool drained"
tl > "$TMP/tl.json"
assert_eq "$(probes | jq 'length')" 9 "three runs of three probes"
assert_eq "$(jq '[.events[] | select(.kind == "gap")] | length' "$TMP/tl.json")" \
    0 "no gap: nothing was lost"
assert_eq "$(jq -r '[.events[].epoch] | unique | join(",")' "$TMP/tl.json")" \
    "$first_epoch" "one epoch across runs (the spool persisted)"
assert_eq "$(unique_seqs)" 1 "no duplicate seq after the retry"
seqs=$(jq -c '[.events[] | select(.seq != null) | .seq] | sort' "$TMP/tl.json")
n=$(echo "$seqs" | jq 'length')
assert_eq "$seqs" "$(jq -nc "[range(1; $n + 1)]")" "seqs 1..$n without holes"

# Operator events keep their kind: a deploy is a marker on the timeline,
# a failover naming its service is a failover (the incident engine's).
"$AGENT" event --config "$TMP/agent.yaml" --kind deploy --text "v2.1" \
    > /dev/null || fail "event --kind deploy exited $?"
"$AGENT" event --config "$TMP/agent.yaml" --kind failover --from eu-west-1 \
    --to us-east-1 --service shop > /dev/null ||
    fail "event --kind failover --service shop exited $?"
"$AGENT" --config "$TMP/agent.yaml" --once 2> "$TMP/agent4.log" \
    || fail "agent --once with operator events exited $?"
tl > "$TMP/tl.json"
assert_eq "$(jq -c '[.events[] | select(.kind == "marker" or
    .kind == "failover") | [.kind, .fields.kind, .fields.service]]' \
    "$TMP/tl.json")" '[["marker","deploy",null],["failover","failover","shop"]]' \
    "operator events by kind"
assert_eq "$(curl -sf "$URL/api/v1/timeline?from=0&kind=marker" |
    jq -c '[.events[].fields.text]')" '["v2.1"]' "kind=marker filter"
stop_collector
echo "e2e_once: all passed"
