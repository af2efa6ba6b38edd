# agent_once_unacked.sh -- `sextant-agent --once` when the collector never
# acks: it still probes every target once, keeps START, the results and
# STOP in the spool, retries for a bounded time (about 15 s), logs the
# collector's status and says why it gives up, and exits 1. The collector
# here is tests/http_target answering 401.
. "$(dirname "$0")/lib.sh"

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

t0=$(date +%s)
set +e
"$AGENT" --config "$TMP/agent.yaml" --once 2> "$TMP/agent.log"
rc=$?
set -e
took=$(( $(date +%s) - t0 ))
[ "$rc" = 1 ] || fail "--once exited $rc, want 1"
[ "$took" -ge 12 ] && [ "$took" -le 25 ] || fail "gave up after $took s"
grep -q 'probed 3 targets: 2 ok, 1 failed' "$TMP/agent.log" \
    || fail "no probe summary"
grep -q 'not delivered: HTTP 401' "$TMP/agent.log" \
    || fail "collector status not logged"
grep -q 'did not ack every event within 15000 ms; 5 events stay' \
    "$TMP/agent.log" || fail "no give-up line"
[ "$(grep -c 'retry' "$TMP/agent.log")" -ge 3 ] || fail "fewer than 3 tries"

q() { sqlite3 "$SPOOL" "$1"; }
assert_eq "$(q "SELECT group_concat(kind, ',') FROM (SELECT kind FROM events ORDER BY seq)")" \
    "lifecycle,probe,probe,probe,lifecycle" "spooled events"
assert_eq "$(q "SELECT min(seq) || '-' || max(seq) FROM events")" "1-5" "seqs"
echo "agent_once_unacked: all passed"
