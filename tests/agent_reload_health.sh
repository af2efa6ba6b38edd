# agent_reload_health.sh -- a SIGHUP keeps the health of every target
# whose identity (name, type, url) did not change, whatever else did (a
# default interval, a threshold): no reset and no second verdict for a
# target that was unhealthy all along. A target whose url changed is reset,
# and the reset is itself a state change on the timeline.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

agent_test_setup
# config INTERVAL UNHEALTHY_AFTER BAD_PATH
config() {
    agent_yaml_head "$TMP/spool.db" > "$CFG"
    cat >> "$CFG" <<YAML
interval: $1
timeout: 100ms
unhealthy_after: $2
targets:
  - name: bad
    url: "http://127.0.0.1:$TARGET_PORT$3"
YAML
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

# reload_keeps_health N WHAT INTERVAL UNHEALTHY_AFTER: the Nth reload,
# to a config that changes WHAT but not the target's identity. Well past
# unhealthy_after more failures after it, the target has made no new
# verdict (the old code reset it to unknown and said "unhealthy" again).
reload_keeps_health() {
    config "$3" "$4" /status/500
    kill -HUP $AGENT_PID
    wait_jq "[.events[] | select(.kind == \"lifecycle\"
        and .fields.phase == \"reload\")] | length == $1"
    wait_probes_after "$(reload_seq "$1")" 6
    assert_eq "$(states)" "unknown>unhealthy" "health kept across $2"
}
reload_keeps_health 1 "a change of the default interval" 300ms 2
reload_keeps_health 2 "a change of a threshold" 300ms 3

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
