# agent_spool_owner.sh -- one agent per spool: a second agent, or --once,
# with the config of a running agent exits 2 with one line naming the
# spool and the running agent's pid, and writes nothing into its spool;
# "sextant-agent event" still appends beside the running agent. Once the
# owner stops, the lock it left behind does not block the next one.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

agent_test_setup
SPOOL=$TMP/spool.db
agent_yaml_head "$SPOOL" > "$CFG"
cat >> "$CFG" <<YAML
admin: {enabled: false}
interval: 200ms
timeout: 100ms
targets:
  - name: up
    url: "http://127.0.0.1:$TARGET_PORT/status/200"
YAML
# second_owner WHAT ARGS...: runs the agent with ARGS, wants exit 2 and
# one line on stderr naming the spool and the running agent's pid.
second_owner() {
    local what=$1 rc=0
    shift
    timeout 60 "$AGENT" "$@" > "$TMP/second.out" 2> "$TMP/second.err" || rc=$?
    assert_eq "$rc" 2 "$what: exit status"
    assert_eq "$(wc -l < "$TMP/second.err")" 1 "$what: lines on stderr"
    grep -qF "spool $SPOOL is in use by another sextant-agent (pid $AGENT_PID)" \
        "$TMP/second.err" || fail "$what: $(cat "$TMP/second.err")"
}

"$AGENT" --config "$CFG" 2> "$TMP/agent.log" &
AGENT_PID=$!
PIDS+=($AGENT_PID)
# START is spooled after the lock is taken: the agent owns the spool now.
wait_jq '[.events[] | select(.kind == "lifecycle" and .fields.phase == "start")]
    | length == 1'

second_owner "--once" --config "$CFG" --once
second_owner "a second agent" --config "$CFG"

# event appends beside the owner; the owner ships it.
out=$("$AGENT" event --config "$CFG" --kind drill --text "beside the owner")
case "$out" in "recorded drill event, seq "*) ;; *) fail "event: $out" ;; esac
ev_seq=${out##*seq }
# Every seq below the event's stored: whatever the refused runs could
# have spooled would be among them.
wait_jq "[.events[] | select(.seq != null and .seq <= $ev_seq)] | length
    == $ev_seq"
assert_eq "$(tl | jq '[.events[] | select(.kind == "lifecycle")] | length')" 1 \
    "lifecycle events in the owner's spool (only its START)"
grep -q "in use" "$TMP/agent.log" && fail "the owner logged the refusal"

kill -TERM $AGENT_PID
wait $AGENT_PID || fail "agent exit status $?"
[ -e "$SPOOL.lock" ] || fail "no lock file beside the spool"
# The lock file stays; its lock went with the process.
timeout 60 "$AGENT" --config "$CFG" --once 2> "$TMP/once.log" \
    || fail "--once after the owner stopped: exit $?"
echo "agent_spool_owner: all passed"
