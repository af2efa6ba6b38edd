# collector_corrupt.sh -- a damaged database file, found by the start
# check (pages of events overwritten; garbage from byte 0) or at run time
# (pages overwritten under a running collector, then hit by a query or by
# ingest): /readyz is 503 with the reason, sextant_collector_store_corrupt
# is 1, one log line says to restore from a backup, and ingest and queries
# answer 500 with the reason and no Retry-After (a retry cannot help).
. "$(dirname "$0")/lib.sh"

# A database with 10000 events over many pages, closed cleanly (no WAL).
GOOD=$TMP/good.db
start_collector "$GOOD"
"$INGEST_CLIENT" --url "$URL/v1/ingest" --token "$TOKEN" --batches 20 \
    --batch-size 500 > "$TMP/fill.out" || fail "filling the database"
assert_eq "$(tail -n1 "$TMP/fill.out")" "200 10000" "filled"
stop_collector
PS=$(sqlite3 "$GOOD" 'PRAGMA page_size')
T0=$(sqlite3 "$GOOD" 'SELECT min(unix_ms) FROM events')

# damage DB: overwrites every page of the events table with 0xff bytes
# (no valid b-tree page starts so).
damage() {
    local p
    head -c "$PS" /dev/zero | tr '\0' '\377' > "$TMP/ff.page"
    for p in $(sqlite3 "$1" "SELECT pageno FROM dbstat WHERE name = 'events'");
    do
        dd if="$TMP/ff.page" of="$1" bs="$PS" seek=$((p - 1)) conv=notrunc \
           status=none
    done
}

# ingest ARGS: status and body of one batch (seqs above the good ones).
ingest() {
    "$INGEST_CLIENT" --url "$URL/v1/ingest" --token "$TOKEN" --seq 10001-10005 "$@"
}

# expect_corrupt REASON WHAT: every answer of the corrupt state.
expect_corrupt() {
    local out
    api_fetch "$TMP/r.json" /readyz > "$TMP/code"
    assert_eq "$(cat "$TMP/code")" 503 "$2: /readyz"
    jq -e --arg r "$1" '.detail | contains("database file damaged") and
        contains($r) and contains("restore it from a backup")' \
        "$TMP/r.json" > /dev/null || fail "$2: /readyz says $(cat "$TMP/r.json")"
    curl -sf "$URL/metrics" > "$TMP/m.txt"
    grep -qx 'sextant_collector_store_corrupt 1' "$TMP/m.txt" ||
        fail "$2: corrupt metric not 1"
    grep -qx 'sextant_collector_ready 0' "$TMP/m.txt" ||
        fail "$2: ready metric not 0"
    out=$(ingest --dump "$TMP/batch.bin")
    assert_eq "${out%% *}" 500 "$2: ingest status"
    echo "${out#* }" | jq -e --arg r "$1" '.error == "database corrupt" and
        (.detail | contains($r))' > /dev/null || fail "$2: ingest says $out"
    curl -s -D "$TMP/h" -o /dev/null -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/x-protobuf' \
        -H 'Content-Encoding: deflate' --data-binary @"$TMP/batch.bin" \
        "$URL/v1/ingest"
    grep -q '^HTTP/1.1 500' "$TMP/h" || fail "$2: curl ingest: $(head -n1 "$TMP/h")"
    ! grep -qi '^Retry-After' "$TMP/h" || fail "$2: ingest has Retry-After"
    assert_eq "$(api_fetch "$TMP/q.json" \
        "/api/v1/timeline?from=$T0&to=$((T0 + 86400000))")" 500 \
        "$2: timeline status"
    jq -e '.error == "database corrupt"' "$TMP/q.json" > /dev/null ||
        fail "$2: timeline says $(cat "$TMP/q.json")"
    assert_eq "$(grep -c 'restore the last backup' "$TMP/collector.log")" 1 \
        "$2: log lines saying what to do"
    echo "ok $2"
}

# Found at start: pages of events overwritten.
cp "$GOOD" "$TMP/a.db"
damage "$TMP/a.db"
NO_WAIT_READY=1 start_collector "$TMP/a.db"
wait_for "$TMP/collector.log" 'damaged, not ready'
expect_corrupt "quick_check" "damaged pages found at start"
stop_collector

# Found at start: garbage from byte 0 is "not a database", not an I/O
# error.
head -c 65536 /dev/urandom > "$TMP/b.db"
NO_WAIT_READY=1 start_collector "$TMP/b.db"
wait_for "$TMP/collector.log" 'damaged, not ready'
expect_corrupt "file is not a database" "garbage from byte 0"
! grep -q 'Input/output error' "$TMP/collector.log" ||
    fail "garbage reported as an I/O error"
stop_collector

# At run time, hit by a query: the collector started sound.
cp "$GOOD" "$TMP/c.db"
start_collector "$TMP/c.db"
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' "$URL/readyz")" 200 \
    "run time: ready before the damage"
damage "$TMP/c.db"
assert_eq "$(api_fetch "$TMP/q.json" \
    "/api/v1/timeline?from=$T0&to=$((T0 + 86400000))")" 500 \
    "run time: the query that hits the damage"
expect_corrupt "database disk image is malformed" "damage hit by a query"
stop_collector

# At run time, hit by ingest: the batch that hits it gets the 500 itself.
cp "$GOOD" "$TMP/d.db"
start_collector "$TMP/d.db"
damage "$TMP/d.db"
out=$(ingest)
assert_eq "${out%% *}" 500 "run time: the batch that hits the damage"
echo "${out#* }" | jq -e '.error == "database corrupt"' > /dev/null ||
    fail "run time: ingest says $out"
expect_corrupt "database disk image is malformed" "damage hit by ingest"
stop_collector
echo "collector_corrupt: all passed"
