# collector_errors.sh -- every error status of POST /v1/ingest and the API:
# each asserts the status, a JSON {"error","detail"} body, and that the
# database did not change.
. "$(dirname "$0")/lib.sh"

DB=$TMP/c.db
write_collector_config "$TMP/collector.yaml"
# A small inflate cap, so a 64 MiB zlib bomb is well over it.
printf 'limits:\n  max_inflated: 16MiB\n' >> "$TMP/collector.yaml"
start_collector "$DB"
out=$("$INGEST_CLIENT" --url "$URL/v1/ingest" --token "$TOKEN" --seq 1-5)
assert_eq "$out" "200 5" "good batch"
before=$(db_digest "$DB")

# expect STATUS ARGS...: runs ingest_client, checks status, JSON, no change.
expect() {
    local want=$1; shift
    local out status body
    out=$("$INGEST_CLIENT" --url "$URL/v1/ingest" "$@") || fail "client: $*"
    status=${out%% *}
    body=${out#* }
    assert_eq "$status" "$want" "status for $*"
    echo "$body" | jq -e 'has("error") and has("detail")' > /dev/null \
        || fail "not a JSON error for $*: $body"
    assert_eq "$(db_digest "$DB")" "$before" "database after $*"
    echo "ok $want $*"
}

expect 401 --seq 6-7
expect 401 --token wrong-token-0123456789 --seq 6-7
expect 403 --token "$OTHER_TOKEN" --seq 6-7
expect 415 --token "$TOKEN" --content-type application/json --seq 6-7
expect 415 --token "$TOKEN" --content-type - --seq 6-7
expect 415 --token "$TOKEN" --encoding gzip --seq 6-7
expect 415 --token "$TOKEN" --encoding - --seq 6-7
expect 413 --token "$TOKEN" --pad $((9 << 20))
expect 411 --token "$TOKEN" --pad 100 --chunked
expect 411 --token "$TOKEN" --pad $((9 << 20)) --chunked
expect 413 --token "$TOKEN" --body bomb
expect 400 --token "$TOKEN" --body random --seq 6-7
expect 400 --token "$TOKEN" --body zlib-random --seq 6-7
expect 400 --token "$TOKEN" --body truncated --seq 6-70
expect 400 --token "$TOKEN" --body corrupt --seq 6-70
expect 400 --token "$TOKEN" --epoch 0 --seq 6-7
expect 400 --token "$TOKEN" --t0 1 --seq 6-7

# The collector is still healthy and serving after all of that.
out=$("$INGEST_CLIENT" --url "$URL/v1/ingest" --token "$TOKEN" --seq 6-7)
assert_eq "$out" "200 7" "good batch after the bad ones"
before=$(db_digest "$DB")

# http_expect STATUS CURL-ARGS...: same checks for plain HTTP requests.
http_expect() {
    local want=$1; shift
    local status
    status=$(curl -s -o "$TMP/body" -w '%{http_code}' "$@")
    assert_eq "$status" "$want" "status for $*"
    jq -e 'has("error") and has("detail")' "$TMP/body" > /dev/null \
        || fail "not a JSON error for $*: $(cat "$TMP/body")"
    assert_eq "$(db_digest "$DB")" "$before" "database after $*"
    echo "ok $want $*"
}
http_expect 405 "$URL/v1/ingest"
http_expect 404 "$URL/nope"
http_expect 405 -X POST "$URL/api/v1/timeline"
http_expect 400 "$URL/api/v1/timeline?from=yesterday"
http_expect 400 "$URL/api/v1/timeline?limit=0"
http_expect 400 "$URL/api/v1/timeline?limit=10001"
http_expect 400 "$URL/api/v1/timeline?color=blue"
http_expect 400 "$URL/api/v1/timeline?from=2000&to=1000"

# Security headers ride on every response.
curl -s -D "$TMP/h" -o /dev/null "$URL/healthz"
grep -qi '^X-Content-Type-Options: nosniff' "$TMP/h" || fail "no nosniff"
grep -qi "^Content-Security-Policy: .*frame-ancestors 'none'" "$TMP/h" \
    || fail "no CSP"
stop_collector
echo "collector_errors: all passed"
