# collector_busy.sh -- back-pressure: while another process holds the
# database's write lock, the writer cannot commit and its queue fills to
# limits.queue_batches; batches past it are answered at once with 503
# "collector busy" and Retry-After (never a wait), /readyz says why, and
# the metrics count them (fillers keep the queue full while the test
# looks, since the writer gives a batch up after 5 s). Once the lock
# goes, the queued batches are answered (the request deadline does not
# cut off a request waiting for its commit) and the refused ones go
# through on retry: every batch is then stored.
. "$(dirname "$0")/lib.sh"

DB=$TMP/c.db
N=8
write_collector_config "$TMP/collector.yaml"
cat >> "$TMP/collector.yaml" <<YAML
limits:
  queue_batches: 2
  request_timeout: 1s
YAML
start_collector "$DB"
ready() { curl -sf -o /dev/null "$URL/readyz"; }
wait_until 30 "/readyz never 200" ready
hw=$(curl -sS "$URL/metrics" |
     awk '$1 == "sextant_collector_writer_queue_high_water_batches" { print $2 }')
assert_eq "$hw" 2 "high-water gauge"

# A batch to post by hand later (ingest_client sends it now, too).
"$INGEST_CLIENT" --url "$URL/v1/ingest" --token "$TOKEN" --node probe \
    --seq 1-1 --dump "$TMP/probe.body" > "$TMP/probe.out"

# Hold the write lock from another connection until we say.
hold_write_lock "$DB"

# N agents send at once; at most the queue's worth can wait.
clients=()
for i in $(seq 1 "$N"); do
    "$INGEST_CLIENT" --url "$URL/v1/ingest" --token "$TOKEN" --node "n$i" \
        --seq 1-3 > "$TMP/out.$i" &
    clients+=($!)
done
busy_count() { cat "$TMP"/out.* | grep -c '^503 .*collector busy' || true; }
some_busy() { [ "$(busy_count)" -gt 0 ]; }
wait_until 30 "no batch was refused as busy with the writer stuck" some_busy
busy=$(busy_count)

# The writer gives a queued batch up after its busy timeout (5 s) and
# takes the next, so on a slow machine the queue would drain before the
# checks below are done: fillers keep posting to keep it full, and each
# check is retried until it meets a full queue.
fill() {
    local k=0
    while [ ! -e "$TMP/fill.stop" ]; do
        k=$((k + 1))
        "$INGEST_CLIENT" --url "$URL/v1/ingest" --token "$TOKEN" \
            --node "f$k" --seq 1-1 >> "$TMP/fill.out" 2>&1 || true
    done
}
fill &
FILL_PID=$!
PIDS+=($FILL_PID)

readyz_busy() {
    curl -sS --max-time 30 -D "$TMP/h" -o "$TMP/body" "$URL/readyz" \
        > /dev/null &&
    grep -q '^HTTP/1.1 503' "$TMP/h" && grep -qi '^Retry-After: 1' "$TMP/h" &&
    jq -e '.detail | test("high-water")' "$TMP/body" > /dev/null
}
wait_until 60 "/readyz never 503, Retry-After: 1, high-water" readyz_busy

# The refusal carries Retry-After too.
ingest_busy() {
    curl -sS --max-time 30 -D "$TMP/h" -o /dev/null \
        -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/x-protobuf' \
        -H 'Content-Encoding: deflate' \
        --data-binary @"$TMP/probe.body" "$URL/v1/ingest" &&
    grep -q '^HTTP/1.1 503' "$TMP/h" && grep -qi '^Retry-After: 1' "$TMP/h"
}
wait_until 60 "ingest never 503 with Retry-After: 1 with a full queue" \
    ingest_busy

# Waiting for a commit is not a slow request: the queued batches outlive
# the request deadline (1 s) and are still answered. That the deadline
# has passed for them shows when a request opened after them, left
# half-sent, is cut off by it.
exec {half}<>"/dev/tcp/127.0.0.1/$COLLECTOR_PORT"
printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n' >&"$half"
wait_for "$TMP/collector.log" 'request not complete after 1000 ms'
exec {half}>&-
touch "$TMP/fill.stop"
release_write_lock
wait "$FILL_PID"
wait "${clients[@]}"
for i in $(seq 1 "$N"); do
    out=$(cat "$TMP/out.$i")
    case $out in
    "200 3") ;;
    503\ *) # refused or failed: the agent retries, and so do we
        out=$("$INGEST_CLIENT" --url "$URL/v1/ingest" --token "$TOKEN" \
              --node "n$i" --seq 1-3)
        assert_eq "$out" "200 3" "retry of n$i" ;;
    *) fail "n$i: unexpected answer: $out" ;;
    esac
done
curl -sS "$URL/metrics" > "$TMP/m"
awk '$1 == "sextant_collector_ingest_rejected_total{reason=\"busy\"}" { b = $2 }
     END { exit !(b >= 2) }' "$TMP/m" \
    || fail "busy refusals not counted: $(grep busy "$TMP/m")"
stop_collector
assert_eq "$(sqlite3 "$DB" "SELECT count(DISTINCT a.node) FROM events e
                            JOIN agents a ON a.id = e.agent_id
                            WHERE a.node LIKE 'n%'")" "$N" \
    "agents with stored events"
echo "collector_busy: all passed ($busy refused at first)"
