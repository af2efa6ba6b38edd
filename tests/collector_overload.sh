# collector_overload.sh -- every ingest request is answered under
# overload: many agents at once (tests/ingest_load, 40 simulated agents,
# one keep-alive connection each) against a writer queue of 2 batches,
# so most requests find it full and get a 503, and the rest wait
# suspended for their commit and are resumed by the writer. Each agent
# sends its batches until all are acked (retrying a 503 after its
# Retry-After, as an agent does); a request the collector never answered
# would end as a transport error (the loader's 60 s request timeout), or
# the loader giving up (gave_up=1). Rounds go on until the queue has
# overflowed at least once (a count, not a time); then the collector's
# own counts must match the loader's: every refusal it made reached a
# client, and every batch was stored once.
. "$(dirname "$0")/lib.sh"

LOAD=$SEXTANT_BIN/tests/ingest_load
AGENTS=40
BATCHES=10                          # per agent and round
ROUNDS=10                           # at most, until a 503 was seen
TOKENS=
cat > "$TMP/collector.yaml" <<YAML
listen: 127.0.0.1:0
db: $TMP/unused.db
clusters:
YAML
for c in eu-west-1 us-east-1 ap-southeast-1; do
    TOKENS+=${TOKENS:+,}overload-token-$c-0123456789
    printf '  - name: %s\n    token: overload-token-%s-0123456789\n' \
        "$c" "$c" >> "$TMP/collector.yaml"
done
cat >> "$TMP/collector.yaml" <<YAML
limits:
  queue_batches: 2
YAML
start_collector "$TMP/c.db"

kv() { sed -n "s/^$2=//p" "$1"; }
metric() {
    curl -sS "$URL/metrics" | awk -v k="$1" '$1 == k { print $2 }'
}

refused=0
round=0
while [ "$round" -lt "$ROUNDS" ]; do
    round=$((round + 1))
    out=$TMP/load.$round.out
    # The window outlasts the run: it ends when every agent's batches are
    # acked (so the loader reports them as run out: exit 1, ignored).
    "$LOAD" --url "$URL/v1/ingest" --tokens "$TOKENS" --agents "$AGENTS" \
        --batch-events 10 --batches "$BATCHES" --seed "$round" \
        --warmup 0 --duration 3600 > "$out" 2> "$TMP/load.$round.log" ||
        true
    # Its exit status is ignored, so a sanitizer report must fail here.
    ! grep -q 'Sanitizer\|runtime error' "$TMP/load.$round.log" ||
        fail "round $round: the loader's sanitizer report (load.$round.log)"
    assert_eq "$(kv "$out" gave_up)" 0 "round $round: loader gave up"
    assert_eq "$(kv "$out" transport_errors)" 0 \
        "round $round: requests without an answer"
    assert_eq "$(kv "$out" status_other)" 0 "round $round: other statuses"
    assert_eq "$(kv "$out" ack_mismatch)" 0 "round $round: wrong acks"
    assert_eq "$(kv "$out" status_200)" $((AGENTS * BATCHES)) \
        "round $round: batches acked"
    refused=$((refused + $(kv "$out" status_503)))
    [ "$refused" -gt 0 ] && break
done
[ "$refused" -gt 0 ] ||
    fail "the writer queue never overflowed in $ROUNDS rounds"
assert_eq "$(metric 'sextant_collector_ingest_rejected_total{reason="busy"}')" \
    "$refused" "503s counted by the collector and received by the agents"
assert_eq "$(metric sextant_collector_ingest_batches_total)" \
    $((round * AGENTS * BATCHES)) "batches stored"
echo "ok: $round rounds, $refused requests refused with 503 and retried"
