# agent_reload_health.sh -- a SIGHUP keeps the health of every target
# whose identity (name, type, url) did not change, whatever else did (a
# default interval, a threshold): no reset and no second verdict for a
# target that was unhealthy all along. A target whose url changed is reset,
# and the reset is itself a state change on the timeline.
. "$(dirname "$0")/lib.sh"

start_target
start_collector "$TMP/c.db"
CFG=$TMP/agent.yaml
# config INTERVAL UNHEALTHY_AFTER BAD_PATH
config() {
    cat > "$CFG" <<YAML
cluster: test
region: test-region
node: n1
collector: {url: "$URL", token: $TOKEN}
spool: {path: $TMP/spool.db}
interval: $1
timeout: 100ms
unhealthy_after: $2
targets:
  - name: bad
    url: "http://127.0.0.1:$TARGET_PORT$3"
YAML
}
tl() { curl -sf "$URL/api/v1/timeline?from=0&limit=10000"; }
# wait_jq EXPR: until the timeline satisfies the jq expression (60 s).
wait_jq() {
    local i
    for i in $(seq 1 600); do
        tl | jq -e "$1" > /dev/null && return 0
        sleep 0.1
    done
    fail "timed out waiting for: $1"
}
states() {
    tl | jq -r '[.events[] | select(.kind == "state" and .target == "bad")
        | "\(.fields.from)>\(.fields.to)"] | join(" ")'
}
# reload_seq N: the seq of the Nth reload event.
reload_seq() {
    tl | jq --argjson n "$1" '[.events[] | select(.kind == "lifecycle"
        and .fields.phase == "reload")][$n - 1].seq'
}
# wait_probes_after SEQ N: until N probe results of "bad" with a higher
# seq are stored: proof that the agent went on probing after SEQ.
wait_probes_after() {
    wait_jq "[.events[] | select(.kind == \"probe\" and .target == \"bad\"
        and .seq > $1)] | length >= $2"
}

config 200ms 2 /status/500
"$AGENT" --config "$CFG" 2> "$TMP/agent.log" &
AGENT_PID=$!
PIDS+=($AGENT_PID)
wait_jq '[.events[] | select(.kind == "state" and .target == "bad")]
    | length == 1'
assert_eq "$(states)" "unknown>unhealthy" "first verdict"

# A changed default interval: the target's settings change, its identity
# does not. Well past unhealthy_after more failures must not make a new
# verdict (the old code reset the state and said "unhealthy" again).
config 300ms 2 /status/500
kill -HUP $AGENT_PID
wait_jq '[.events[] | select(.kind == "lifecycle" and .fields.phase == "reload")]
    | length == 1'
wait_probes_after "$(reload_seq 1)" 6
assert_eq "$(states)" "unknown>unhealthy" "health kept across an interval change"

# A changed threshold: still the same target, still unhealthy.
config 300ms 3 /status/500
kill -HUP $AGENT_PID
wait_jq '[.events[] | select(.kind == "lifecycle" and .fields.phase == "reload")]
    | length == 2'
wait_probes_after "$(reload_seq 2)" 6
assert_eq "$(states)" "unknown>unhealthy" "health kept across a threshold change"

# A changed url is another target under the same name: its health is
# reset, and the reset is on the timeline, after the reload, with why.
config 300ms 3 /status/503
kill -HUP $AGENT_PID
wait_jq '[.events[] | select(.kind == "state" and .target == "bad")]
    | length == 3'
assert_eq "$(states)" "unknown>unhealthy unhealthy>unknown unknown>unhealthy" \
    "reset recorded, then a new verdict"
reset=$(tl | jq -c '[.events[] | select(.kind == "state"
    and .target == "bad")][1] | {seq, reason: .fields.reason}')
r3=$(reload_seq 3)
jq -e --argjson r "$r3" '.seq > $r and (.reason | startswith("config reload"))' \
    <<< "$reset" > /dev/null || fail "reset event: $reset (reload seq $r3)"

kill -TERM $AGENT_PID
wait $AGENT_PID || fail "agent exit status $?"
echo "agent_reload_health: all passed"
