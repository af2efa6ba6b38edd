# agent_health_e2e.sh -- the real agent turns a target's results into
# state-change events: unknown -> healthy -> unhealthy (after exactly N
# failures in a row, naming the last error) -> healthy (after M successes).
. "$(dirname "$0")/lib.sh"

start_target
start_collector "$TMP/c.db"
FLAG=$TMP/up
touch "$FLAG"
cat > "$TMP/agent.yaml" <<YAML
cluster: test
region: test-region
node: n1
collector: {url: "$URL", token: $TOKEN}
spool: {path: $TMP/spool.db}
interval: 200ms
timeout: 150ms
healthy_after: 2
unhealthy_after: 3
targets:
  - name: app
    url: "http://127.0.0.1:$TARGET_PORT/flag?file=$FLAG"
YAML
"$AGENT" --config "$TMP/agent.yaml" 2> "$TMP/agent.log" &
AGENT_PID=$!
PIDS+=($AGENT_PID)

states() {
    api_get "api/v1/timeline?from=0&limit=10000" | jq -r \
        '[.events[] | select(.kind == "state")
          | "\(.fields.from)>\(.fields.to)"] | join(" ")'
}
# wait_states WANT: until the state events so far read WANT.
wait_states() {
    wait_until 30 "state events: want '$1'" states_are "$1"
}
states_are() {
    [ "$(states)" = "$1" ]
}

wait_states "unknown>healthy"
rm "$FLAG"
wait_states "unknown>healthy healthy>unhealthy"
touch "$FLAG"
wait_states "unknown>healthy healthy>unhealthy unhealthy>healthy"
kill -TERM $AGENT_PID
wait $AGENT_PID || fail "agent exit status $?"

api_get "api/v1/timeline?from=0&limit=10000" > "$TMP/tl.json"
# The results just before each change are exactly the threshold's worth.
before() {     # before N: probe results (1/0) before the Nth state event
    jq -r --argjson n "$1" '
        [.events[] | select(.kind == "probe" or .kind == "state")] as $e
        | [$e | to_entries[] | select(.value.kind == "state") | .key][$n]
        as $at | [$e[:$at][] | select(.kind == "probe")
                  | if .fields.ok then 1 else 0 end] | join("")' "$TMP/tl.json"
}
case "$(before 1)" in *1000) ;; *) fail "unhealthy after 3 failures: $(before 1)" ;; esac
case "$(before 2)" in *011) ;; *) fail "healthy after 2 successes: $(before 2)" ;; esac
jq -e '[.events[] | select(.kind == "state")][1].fields.reason
    | test("3 failures in a row, last: status 503")' "$TMP/tl.json" \
    > /dev/null || fail "reason of the unhealthy change"
echo "agent_health_e2e: all passed"
