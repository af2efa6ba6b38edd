# agent_signal.sh -- the agent's run and stop without a working collector:
# it probes on schedule, spools every result between a START and a STOP
# lifecycle event, keeps them all while the collector refuses (503), stops
# promptly with exit 0 on SIGTERM and on SIGINT (once its flush meets the
# 503, not at the end of shipping.shutdown_grace), and a restart keeps the
# epoch and continues the seqs. The collector here is tests/http_target
# answering 503; the real collector's end-to-end test lives elsewhere.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

start_target
SPOOL=$TMP/spool.db
cat > "$TMP/agent.yaml" <<YAML
cluster: test
region: eu-west-1
node: n1
collector:
  url: http://127.0.0.1:$TARGET_PORT/status/503
  token: $TOKEN
spool:
  path: $SPOOL
shipping: {shutdown_grace: 600s}
interval: 200ms
targets:
  - name: up
    url: http://127.0.0.1:$TARGET_PORT/
  - name: down
    url: http://127.0.0.1:$TARGET_PORT/status/500
YAML

q() { sqlite3 "$SPOOL" "$1"; }
probes_ge() {
    [ -e "$SPOOL" ] && [ "$(q "SELECT count(*) FROM events
        WHERE kind = 'probe'" 2>/dev/null || echo 0)" -ge "$1" ]
}

# run_until_probes N SIGNAL: starts the agent, waits for N probe events in
# the spool, sends SIGNAL and wants exit 0 once the stop's flush met the
# 503. "Promptly" is proved without a stopwatch: the grace is 600 s, so an
# agent that waited it out would still be running when the 60 s poll below
# gives up (60 s is 10x under the grace and far over one 503 round trip),
# and the log must show the flush's failed POST between the stop line and
# the give-up line: the stop ended on the collector's answer.
run_until_probes() {
    local want=$1 sig=$2 pid rc order
    : > "$TMP/agent.log"
    "$AGENT" --config "$TMP/agent.yaml" 2> "$TMP/agent.log" &
    pid=$!
    PIDS+=($pid)
    wait_until 30 "no $want probe events" probes_ge "$want"
    kill "-$sig" "$pid"
    wait_until 60 "agent still running 60 s after SIG$sig (grace 600 s)" \
        not_running "$pid"
    set +e
    wait "$pid"
    rc=$?
    set -e
    [ "$rc" = 0 ] || fail "agent exited $rc after SIG$sig"
    order=$(sed -n -e 's/.*signal [0-9]*: stopping.*/stop/p' \
                   -e 's/.*not delivered: HTTP 503.*/503/p' \
                   -e 's/.*could not ship everything before stopping.*/end/p' \
                   "$TMP/agent.log" | sed -n '/^stop$/,$p' | uniq | tr '\n' ' ')
    assert_eq "$order" "stop 503 end " "stop, the flush's 503, give-up (SIG$sig)"
}

run_until_probes 6 TERM
grep -q 'signal 15: stopping' "$TMP/agent.log" || fail "no stop line"
grep -q 'not delivered: HTTP 503' "$TMP/agent.log" \
    || fail "collector failure not logged with its status"
grep -q "$TOKEN" "$TMP/agent.log" && fail "the token is in the log"

# START first, STOP last, seqs 1..N without a hole, nothing shipped away.
n=$(q "SELECT count(*) FROM events")
assert_eq "$(q "SELECT min(seq) || '-' || max(seq) FROM events")" "1-$n" "seqs"
assert_eq "$(q "SELECT kind FROM events ORDER BY seq LIMIT 1")" lifecycle \
    "first event"
assert_eq "$(q "SELECT kind FROM events ORDER BY seq DESC LIMIT 1")" \
    lifecycle "last event"
assert_eq "$(q "SELECT count(*) FROM events WHERE kind = 'lifecycle'")" 2 \
    "lifecycle events"
[ "$(q "SELECT count(*) FROM events WHERE kind = 'probe'")" -ge 6 ] \
    || fail "probe events"
epoch=$(q "SELECT epoch FROM meta")
[ "$epoch" != 0 ] || fail "epoch is zero"

# Restart, stop with SIGINT: same epoch, seqs go on, old events still there.
run_until_probes $(( $(q "SELECT count(*) FROM events WHERE kind = 'probe'") + 2 )) INT
assert_eq "$(q "SELECT epoch FROM meta")" "$epoch" "epoch after restart"
m=$(q "SELECT count(*) FROM events")
assert_eq "$(q "SELECT min(seq) || '-' || max(seq) FROM events")" "1-$m" \
    "seqs after restart"
assert_eq "$(q "SELECT kind FROM events WHERE seq = $((n + 1))")" lifecycle \
    "START after restart"
assert_eq "$(q "SELECT count(*) FROM events WHERE kind = 'lifecycle'")" 4 \
    "lifecycle events after restart"
# --once cut short by SIGTERM while a probe still runs: exit 1, not 0, and
# nothing of what was spooled is lost.
# The slow target has a server of its own, so that a connection to it
# is that probe running.
before=$(q "SELECT count(*) FROM events")
PROBED=$TARGET_PORT
start_target
SLOW_PORT=$TARGET_PORT
sed -i "s|127.0.0.1:$PROBED/status/500|127.0.0.1:$SLOW_PORT/sleep/4000|
        s|^interval: .*|interval: 5s|" "$TMP/agent.yaml"
grep -q "$SLOW_PORT/sleep/4000" "$TMP/agent.yaml" || fail "config not rewritten"
: > "$TMP/agent.log"
"$AGENT" --config "$TMP/agent.yaml" --once 2> "$TMP/agent.log" &
pid=$!
PIDS+=($pid)
probing() { [ "$(tcp_count "$pid" 01 "" "$SLOW_PORT")" -ge 1 ]; }
wait_until 30 "the --once run never reached the slow target" probing
kill -TERM "$pid"
set +e
wait "$pid"
rc=$?
set -e
[ "$rc" = 1 ] || fail "interrupted --once exited $rc, want 1"
[ "$(q "SELECT count(*) FROM events")" -ge $((before + 2)) ] \
    || fail "START and STOP of the interrupted run not spooled"
assert_eq "$(q "SELECT kind FROM events ORDER BY seq DESC LIMIT 1")" \
    lifecycle "STOP after an interrupted --once"
echo "agent_signal: all passed"
