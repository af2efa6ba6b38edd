# collector_metrics.sh -- /metrics, /readyz and /healthz on a real
# collector: the page passes `promtool check metrics`, needs no token (even
# with api_tokens set), and its counters move by exactly what happened in
# between two scrapes: batches, events and compressed bytes stored, each
# kind of refusal by reason, responses by route and code.
. "$(dirname "$0")/lib.sh"

if ! command -v promtool > /dev/null; then
    echo "SKIP: promtool not found (Debian package prometheus; scripts/deps.sh installs it)"
    exit 77
fi

DB=$TMP/c.db
write_collector_config "$TMP/collector.yaml"
cat >> "$TMP/collector.yaml" <<YAML
api_tokens:
  - token: read-token-0123456789
limits:
  queue_batches: 77
YAML
start_collector "$DB"

# get PATH: sets STATUS, body in $TMP/body, checked against
# docs/openapi.yaml.
get() {
    STATUS=$(api_fetch "$TMP/body" "$1" --max-time 30) || exit 1
}

# value FILE SERIES: a sample's value in a scrape, 0 when absent.
value() {
    awk -v m="$2" '$1 == m { print $2; f = 1 } END { if (!f) print 0 }' "$1"
}

# scrape FILE: /metrics into FILE, checked by promtool.
scrape() {
    get /metrics
    assert_eq "$STATUS" 200 "GET /metrics"
    cp "$TMP/body" "$1"
    promtool check metrics < "$1" > "$TMP/promtool.log" 2>&1 ||
        { cat "$TMP/promtool.log" "$1" >&2; fail "promtool check metrics"; }
}

# delta SERIES WANT: the series grew by exactly WANT from m0 to m1.
delta() {
    local a b
    a=$(value "$TMP/m0" "$1")
    b=$(value "$TMP/m1" "$1")
    assert_eq "$(awk -v a="$a" -v b="$b" 'BEGIN { print b - a }')" "$2" \
        "change of $1"
}

# /readyz turns 200 once the store is migrated (main waits for it).
readyz_200() { get /readyz; [ "$STATUS" = 200 ]; }
wait_until 30 "GET /readyz never 200" readyz_200
assert_eq "$(jq -r .status "$TMP/body")" ready "readyz body"

scrape "$TMP/m0"
grep -q '^# TYPE sextant_collector_commit_duration_seconds histogram' \
    "$TMP/m0" || fail "no commit duration histogram"
grep -q '^sextant_collector_build_info{version="' "$TMP/m0" \
    || fail "no build info"
assert_eq "$(value "$TMP/m0" sextant_collector_ready)" 1 "ready gauge"

# Three batches, 13 events, and the bytes each body had.
bytes=0
for s in 1-5 6-10 11-13; do
    out=$("$INGEST_CLIENT" --url "$URL/v1/ingest" --token "$TOKEN" \
          --seq "$s" --dump "$TMP/sent")
    assert_eq "${out%% *}" 200 "batch $s"
    bytes=$((bytes + $(stat -c %s "$TMP/sent")))
done

# One refusal or more of each kind the headers or the body can earn.
refuse() {
    local want=$1; shift
    out=$("$INGEST_CLIENT" --url "$URL/v1/ingest" "$@" --seq 20-21)
    assert_eq "${out%% *}" "$want" "status for $*"
}
refuse 401
refuse 401 --token wrong-token-0123456789
refuse 401 --token read-token-0123456789    # a read token does not ingest
refuse 403 --token "$OTHER_TOKEN"
refuse 415 --token "$TOKEN" --encoding gzip
refuse 400 --token "$TOKEN" --body random
refuse 413 --token "$TOKEN" --pad $((9 << 20))
refuse 411 --token "$TOKEN" --pad 100 --chunked
get /v1/ingest
assert_eq "$STATUS" 405 "GET /v1/ingest"
get /nope
assert_eq "$STATUS" 404 "GET /nope"
get /healthz
assert_eq "$STATUS" 200 "GET /healthz"
get /api/v1/timeline
assert_eq "$STATUS" 401 "API without its token"
json_ok "$TMP/body" "GET /api/v1/timeline"

scrape "$TMP/m1"
delta sextant_collector_ingest_batches_total 3
delta sextant_collector_ingest_events_total 13
delta sextant_collector_ingest_bytes_total "$bytes"
r=sextant_collector_ingest_rejected_total
delta "$r{reason=\"unauthorized\"}" 3
delta "$r{reason=\"wrong_cluster\"}" 1
delta "$r{reason=\"unsupported_media\"}" 1
delta "$r{reason=\"malformed\"}" 1
delta "$r{reason=\"too_large\"}" 1
delta "$r{reason=\"length_required\"}" 1
delta "$r{reason=\"method_not_allowed\"}" 1
delta "$r{reason=\"busy\"}" 0
delta "$r{reason=\"store_error\"}" 0
h=sextant_collector_http_requests_total
delta "$h{route=\"ingest\",code=\"200\"}" 3
delta "$h{route=\"ingest\",code=\"401\"}" 3
delta "$h{route=\"ingest\",code=\"403\"}" 1
delta "$h{route=\"ingest\",code=\"405\"}" 1
delta "$h{route=\"other\",code=\"404\"}" 1
delta "$h{route=\"healthz\",code=\"200\"}" 1
delta "$h{route=\"timeline\",code=\"401\"}" 0    # refused before routing
delta "$h{route=\"other\",code=\"401\"}" 1
delta "$h{route=\"metrics\",code=\"200\"}" 1    # the first scrape

# The store's figures.
assert_eq "$(value "$TMP/m1" \
    sextant_collector_writer_queue_high_water_batches)" 77 \
    "high-water gauge from limits.queue_batches"
delta sextant_collector_commit_batches_sum 3
grep -q '^sextant_collector_cluster_last_seen_age_seconds{cluster="test"} ' \
    "$TMP/m1" || fail "no last-seen age for cluster test"
[ "$(value "$TMP/m1" sextant_collector_database_bytes)" -gt 0 ] \
    || fail "database_bytes is not positive"

stop_collector
echo "collector_metrics: all passed"
