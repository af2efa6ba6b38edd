# agent_reload.sh -- SIGHUP reloads the agent's config while it probes:
# targets added, removed and changed, unchanged ones keep their state; an
# invalid file or a change of identity is refused and the old config
# stays. Also "sextant-agent event" marks a failover while the agent runs.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

agent_test_setup
# config TARGETS...: each "name:path" probed on the local target.
config() {
    {
        agent_yaml_head "$TMP/spool.db"
        cat <<YAML
interval: 200ms
timeout: 150ms
healthy_after: 2
targets:
YAML
        local t
        for t in "$@"; do
            printf '  - name: %s\n    url: "http://127.0.0.1:%s%s"\n' \
                "${t%%:*}" "$TARGET_PORT" "${t#*:}"
        done
    } > "$CFG"
}
states_of() {
    tl | jq -r --arg t "$1" '[.events[] | select(.kind == "state"
        and .target == $t) | "\(.fields.from)>\(.fields.to)"] | join(" ")'
}
reloads() { tl | jq '[.events[] | select(.kind == "lifecycle"
    and .fields.phase == "reload")] | length'; }

config a:/status/200 b:/status/200
"$AGENT" --config "$CFG" 2> "$TMP/agent.log" &
AGENT_PID=$!
PIDS+=($AGENT_PID)
wait_jq '[.events[] | select(.kind == "state" and .fields.to == "healthy")]
    | length == 2'

# Keep a, drop b, add c.
config a:/status/200 c:/status/200
kill -HUP $AGENT_PID
wait_jq '[.events[] | select(.kind == "lifecycle" and .fields.phase == "reload")]
    | length == 1'
detail=$(tl | jq -r '.events[] | select(.kind == "lifecycle"
    and .fields.phase == "reload") | .fields.detail')
assert_eq "$detail" "1 targets kept; added: c; removed: b; changed: none" \
    "reload detail"
wait_jq '[.events[] | select(.kind == "state" and .target == "c")] | length == 1'
assert_eq "$(states_of a)" "unknown>healthy" "a kept its health"
# b is not probed after the reload: proven once a was, 3 times, since.
reload_ms=$(tl | jq '.events[] | select(.kind == "lifecycle"
    and .fields.phase == "reload") | .time_ms')
wait_jq "[.events[] | select(.kind == \"probe\" and .target == \"a\"
    and .time_ms > $reload_ms)] | length >= 3"
late_b=$(tl | jq --argjson r "$reload_ms" '[.events[] | select(.kind == "probe"
    and .target == "b" and .time_ms > $r)] | length')
assert_eq "$late_b" 0 "no probe of b after the reload"

# Change a's url: it starts afresh.
config a:/status/204 c:/status/200
kill -HUP $AGENT_PID
wait_jq '[.events[] | select(.kind == "lifecycle" and .fields.phase == "reload")]
    | length == 2'
tl | jq -e '[.events[] | select(.kind == "lifecycle"
    and .fields.phase == "reload")][1].fields.detail
    == "1 targets kept; added: none; removed: none; changed: a"' > /dev/null \
    || fail "changed target named"
# Its url changed, so its health is reset: a state change says so.
wait_jq '[.events[] | select(.kind == "state" and .target == "a")] | length == 3'
assert_eq "$(states_of a)" "unknown>healthy healthy>unknown unknown>healthy" \
    "a's reset recorded"

# Invalid file and a change of identity are refused; probing goes on.
printf 'cluster: test\nbogus: 1\n' > "$CFG"
kill -HUP $AGENT_PID
wait_for "$TMP/agent.log" "reload refused, keeping the old config: $CFG:2: bogus: unknown key"
CLUSTER=other config a:/status/204 c:/status/200
kill -HUP $AGENT_PID
wait_for "$TMP/agent.log" "reload refused: cluster, region or node cannot change"
n=$(tl | jq '[.events[] | select(.kind == "probe" and .target == "c")] | length')
wait_jq "[.events[] | select(.kind == \"probe\" and .target == \"c\")] | length > $n + 2"
assert_eq "$(reloads)" 2 "refused reloads record nothing"

# A failover marked by hand while the agent runs.
CLUSTER=test config a:/status/204 c:/status/200
out=$("$AGENT" event --config "$CFG" --kind failover --from eu-west-1 \
      --to us-east-1 --text "promoted replica")
case "$out" in "recorded failover event, seq "*) ;; *) fail "event: $out" ;; esac
wait_jq '[.events[] | select(.kind == "failover" and .node == "n1"
    and .fields.kind == "failover" and .fields.from == "eu-west-1"
    and .fields.to == "us-east-1" and .fields.text == "promoted replica")]
    | length == 1'
rc=0
"$AGENT" event --config "$CFG" 2> "$TMP/err" || rc=$?
assert_eq "$rc" 2 "event without --kind"
# Text the collector would refuse is refused here, and nothing is spooled.
rc=0
"$AGENT" event --config "$CFG" --kind drill --text $'bad \xff byte' \
    2> "$TMP/err" || rc=$?
assert_eq "$rc" 2 "event with invalid UTF-8"
grep -q "failover.text: not valid UTF-8" "$TMP/err" \
    || fail "invalid text not named: $(cat "$TMP/err")"
# So is a kind (a name) with a control character in it.
rc=0
"$AGENT" event --config "$CFG" --kind $'drill\nFAKE line' 2> "$TMP/err" ||
    rc=$?
assert_eq "$rc" 2 "event with a line break in its kind"
grep -q "failover.kind: holds a control character" "$TMP/err" \
    || fail "control character in kind not named: $(cat "$TMP/err")"

kill -TERM $AGENT_PID
wait $AGENT_PID || fail "agent exit status $?"
# Everything in order and exactly once: seqs 1..n without holes or gaps.
tl > "$TMP/tl.json"
n=$(jq '[.events[] | select(.seq != null)] | length' "$TMP/tl.json")
assert_eq "$(jq -c '[.events[] | select(.seq != null) | .seq] | sort' "$TMP/tl.json")" \
    "$(jq -nc "[range(1; $n + 1)]")" "seqs 1..$n"
assert_eq "$(jq '[.events[] | select(.kind == "gap")] | length' "$TMP/tl.json")" 0 "no gap"
echo "agent_reload: all passed"
