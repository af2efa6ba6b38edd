# collector_slowloris.sh -- limits.request_timeout: a client that sends its
# request a byte a second is never idle, so MHD's idle timeout never fires;
# the whole-request deadline closes it. Two such clients (slow headers;
# fast headers, slow body) are cut off well within a liveness bound, while
# a good client keeps ingesting, during and after, and every one of its
# events is in the database.
. "$(dirname "$0")/lib.sh"

DB=$TMP/c.db
write_collector_config "$TMP/collector.yaml"
cat >> "$TMP/collector.yaml" <<YAML
limits:
  request_timeout: 2s
  connection_timeout: 60s
YAML
start_collector "$DB"

# A byte every second, for at most 15 s: the deadline is 2 s, so closing
# by then is a liveness bound, not a speed test.
"$SLOW_CLIENT" 127.0.0.1 "$COLLECTOR_PORT" 1000 15 > "$TMP/slow_headers" &
SLOW1=$!
PIDS+=($SLOW1)
SLOW_TOKEN=$TOKEN "$SLOW_CLIENT" 127.0.0.1 "$COLLECTOR_PORT" 1000 15 \
    --slow-body > "$TMP/slow_body" &
SLOW2=$!
PIDS+=($SLOW2)

# The good client ingests all along, one batch at a time.
seq_lo=1
good() {
    local out hi=$((seq_lo + 9))
    out=$("$INGEST_CLIENT" --url "$URL/v1/ingest" --token "$TOKEN" \
          --seq "$seq_lo-$hi")
    assert_eq "$out" "200 $hi" "good batch $seq_lo-$hi"
    seq_lo=$((hi + 1))
}
while kill -0 "$SLOW1" 2> /dev/null || kill -0 "$SLOW2" 2> /dev/null; do
    good
    sleep 0.2
done
wait "$SLOW1" || fail "slow headers: $(cat "$TMP/slow_headers")"
wait "$SLOW2" || fail "slow body: $(cat "$TMP/slow_body")"
echo "slow headers: $(cat "$TMP/slow_headers"); slow body: $(cat "$TMP/slow_body")"
assert_eq "$(grep -c 'request not complete after 2000 ms' \
             "$TMP/collector.log")" 2 "deadline log lines"
[ "$seq_lo" -gt 11 ] || fail "no good batch while the slow clients ran"

for i in 1 2 3; do good; done              # and afterwards
stop_collector
assert_eq "$(sqlite3 "$DB" "SELECT count(*) FROM events_full WHERE kind = 'probe'")" \
    $((seq_lo - 1)) "events stored for the good client"
echo "collector_slowloris: all passed"
