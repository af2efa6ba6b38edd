# agent_once_unacked.sh -- `sextant-agent --once` when the collector never
# acks: it still probes every target once, keeps START, the results and
# STOP in the spool, retries for a bounded time (15 s by its own clock,
# not less), logs the collector's status and says why it gives up, sends
# nothing after that, and exits 1. The collector here is tests/http_target
# answering 401.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

start_target
SPOOL=$TMP/spool.db
cat > "$TMP/agent.yaml" <<YAML
cluster: test
region: eu-west-1
node: n1
collector:
  url: http://127.0.0.1:$TARGET_PORT/status/401
  token: $TOKEN
spool:
  path: $SPOOL
targets:
  - name: up
    url: http://127.0.0.1:$TARGET_PORT/
  - name: slow
    url: http://127.0.0.1:$TARGET_PORT/sleep/300
    timeout: 2s
  - name: refused
    url: http://127.0.0.1:1/
YAML

t0=$(now_ms)
"$AGENT" --config "$TMP/agent.yaml" --once 2> "$TMP/agent.log" &
pid=$!
PIDS+=($pid)
# "Bounded" is proved by the give-up line and the order of the log below;
# this poll only turns a hang into a failure. 150 s is 10x the 15 s.
wait_until 150 "agent --once still running after 150 s (bound 15 s)" \
    not_running "$pid"
set +e
wait "$pid"
rc=$?
set -e
took=$(( $(now_ms) - t0 ))
[ "$rc" = 1 ] || fail "--once exited $rc, want 1"
[ "$took" -ge 15000 ] || fail "gave up after $took ms, before 15 s"
grep -q 'probed 3 targets: 2 ok, 1 failed' "$TMP/agent.log" \
    || fail "no probe summary"
grep -q 'not delivered: HTTP 401' "$TMP/agent.log" \
    || fail "collector status not logged"
grep -q 'did not ack every event within 15000 ms; 5 events stay' \
    "$TMP/agent.log" || fail "no give-up line"
[ "$(grep -c 'retry' "$TMP/agent.log")" -ge 3 ] || fail "fewer than 3 tries"
# By the agent's own clock the tries lasted the 15 s, not less (a lower
# bound: the start line is stamped a little after the bound starts, hence
# 50 ms of slack), and nothing was tried after it gave up.
ms=$(log_gap_ms "$TMP/agent.log" 'probed 3 targets' 'did not ack every event')
[ "$ms" -ge 14950 ] || fail "gave up $ms ms after the drain began, bound 15000"
assert_eq "$(sed -n '/did not ack every event/,$p' "$TMP/agent.log" |
             grep -c 'not delivered' || true)" 0 "tries after giving up"

q() { sqlite3 "$SPOOL" "$1"; }
assert_eq "$(q "SELECT group_concat(kind, ',') FROM (SELECT kind FROM events ORDER BY seq)")" \
    "lifecycle,probe,probe,probe,lifecycle" "spooled events"
assert_eq "$(q "SELECT min(seq) || '-' || max(seq) FROM events")" "1-5" "seqs"
echo "agent_once_unacked: all passed"
