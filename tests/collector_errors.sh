# collector_errors.sh -- every error status of POST /v1/ingest and the API:
# each asserts the status, a JSON {"error","detail"} body, and that the
# database did not change; events with absurd strings or times name the
# field in the detail; every API reply is checked to be JSON. Then what is
# not an error: values at the caps, and absurd send times (stored, left out
# of the clock offset).
. "$(dirname "$0")/lib.sh"

DB=$TMP/c.db
write_collector_config_keep "$TMP/collector.yaml"
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
    printf '%s' "$body" > "$TMP/ingest_body"
    api_valid POST /v1/ingest "$status" "$TMP/ingest_body"
    assert_eq "$(db_digest "$DB")" "$before" "database after $*"
    LAST_DETAIL=$(echo "$body" | jq -r .detail)
    echo "ok $want $*"
}

# expect_detail TEXT ARGS...: expect 400, with TEXT (the field and what
# is wrong with it, as proto/wire.c words it) in the detail.
expect_detail() {
    local text=$1; shift
    expect 400 --token "$TOKEN" "$@"
    case "$LAST_DETAIL" in
    *"$text"*) ;;
    *) fail "detail for $*: '$LAST_DETAIL' does not name '$text'" ;;
    esac
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

# Absurd strings: over the caps (1024 bytes for a name, 8192 for free
# text, 32 labels on a metric, 64 entries in any repeated field, counted
# before unpacking), not UTF-8, or with a NUL inside.
expect_detail "events[0].probe.target: over 1024 bytes" --seq 6-7 \
    --target-len 2048
expect_detail "events[0].probe.target: over 1024 bytes" --seq 6-7 \
    --target-len 1025
expect_detail "events[0].probe.target: not valid UTF-8" --seq 6-7 \
    --target-hex 776562fffe
expect_detail "events[0].probe.target: not valid UTF-8" --seq 6-7 \
    --target-hex c0af                       # an overlong '/'
expect_detail "events[0].probe.target: not valid UTF-8" --seq 6-7 \
    --target-hex eda080                     # a UTF-16 surrogate
expect_detail "events[0].probe.target: not valid UTF-8" --seq 6-7 \
    --target-hex f4908080                   # past U+10FFFF
expect_detail "ProbeResult.target: NUL byte in string" --seq 6-7 \
    --target-hex 7765620061646d696e         # "web\0admin"
# Names are printable: a control character in one could forge a log line
# or hide text on a terminal. Free text (an error) may hold line breaks.
expect_detail "events[0].probe.target: holds a control character" \
    --seq 6-7 --target-hex 7765620a61646d696e     # "web\nadmin"
expect_detail "events[0].probe.target: holds a control character" \
    --seq 6-7 --target-hex 1b5b33316d776562       # ESC[31m
expect_detail "events[0].probe.target: holds a control character" \
    --seq 6-7 --target-hex 7765627f               # DEL
expect_detail "events[0].probe.target: holds a control character" \
    --seq 6-7 --target-hex 776562c285             # U+0085, a C1 control
expect_detail "node: holds a control character" --seq 6-7 \
    --node $'n1\r\nFAKE log line'
expect_detail "events[0].probe.error: over 8192 bytes" --seq 6-7 \
    --error-len 10240
expect_detail "MetricSample.labels: over 64 entries" --seq 6-7 --labels 100
expect_detail "events[0].metric.labels: 33 labels, over 32" --seq 6-7 \
    --labels 33
# Absurd event times: agent clocks outside 2000-2100 are refused.
expect_detail "events[0].unix_ms: 0 not in years 2000-2100" --seq 6-7 \
    --event-ms 0
expect_detail "events[0].unix_ms: -1 not in years 2000-2100" --seq 6-7 \
    --event-ms -1
expect_detail "events[0].unix_ms: -9223372036854775808 not in years" \
    --seq 6-7 --event-ms -9223372036854775808
expect_detail "events[0].unix_ms: 32503680000000 not in years" --seq 6-7 \
    --event-ms 32503680000000               # 3000-01-01
expect_detail "events[0].unix_ms: 946684799999 not in years" --seq 6-7 \
    --event-ms 946684799999                 # 1999-12-31T23:59:59.999Z

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
    json_ok "$TMP/body" "$*"
    api_check_curl "$status" "$TMP/body" "$@"
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
# Parameters are UTF-8 without NUL, or refused naming them: never echoed
# as raw bytes into the JSON, never cut at a %00.
api_bad() {
    http_expect 400 "$URL/api/v1/$1"
    case "$(jq -r .detail "$TMP/body")" in
    "$2"*) ;;
    *) fail "detail for $1: '$(jq -r .detail "$TMP/body")' is not '$2...'" ;;
    esac
}
api_bad "latency?target=%ff%fe" "target: value is not valid UTF-8"
api_bad "timeline?target=web%c0%af" "target: value is not valid UTF-8"
api_bad "timeline?cluster=test%00x" "cluster: value holds a NUL byte"
api_bad "timeline?cluster=%00" "cluster: value holds a NUL byte"
api_bad "timeline?from=1%002" "from: value holds a NUL byte"
api_bad "latency?target=web&step=hour%00" "step: value holds a NUL byte"
api_bad "timeline?limit%ff=3" "limit"
jq -r .detail "$TMP/body" | grep -q 'name is not valid UTF-8' ||
    fail "a key that is not UTF-8: $(cat "$TMP/body")"
api_bad "timeline?lim%00it=3" "lim: name holds a NUL byte"

# The caps are inclusive, and the flags above send what they say: at the
# caps, and with valid UTF-8, the same events are stored and shown as sent.
T=$(( $(date +%s) * 1000 - 60000 ))
edge() {
    "$INGEST_CLIENT" --url "$URL/v1/ingest" --token "$TOKEN" --node edge \
        --t0 "$T" "$@"
}
assert_eq "$(edge --seq 1-1 --target-len 1024)" "200 1" "1024-byte target"
assert_eq "$(edge --seq 2-2 --error-len 8192)" "200 2" "8192-byte error"
assert_eq "$(edge --seq 3-3 --labels 32)" "200 3" "32 labels"
assert_eq "$(edge --seq 4-4 --target-hex c3a9f09f9880)" "200 4" "UTF-8 target"
assert_eq "$(edge --seq 5-5 --event-ms 946684800000)" "200 5" \
    "an event at 2000-01-01T00:00:00Z"
api_get "api/v1/timeline?cluster=test&from=$T&to=$((T + 10))" \
    > "$TMP/edge.json" || fail "timeline of node edge"
assert_eq "$(jq -r '[.events[] | select(.node == "edge") |
    if .seq == 1 then (.target | length)
    elif .seq == 2 then (.fields.error | length)
    elif .seq == 3 then (.fields.labels | length)
    else .target end] | join(" ")' "$TMP/edge.json")" "1024 8192 32 é😀" \
    "what the timeline shows of the events at the caps"
api_get "api/v1/timeline?cluster=test&from=946684800000&to=946684800001" \
    | jq -e '.events[0].seq == 5' > /dev/null || fail "event of 2000-01-01"
echo "ok the caps are inclusive"

# An absurd send time (outside 2000-2100) is no reason to refuse a batch:
# its events are stored, and only the clock offset sample is left out.
clock() {
    "$INGEST_CLIENT" --url "$URL/v1/ingest" --token "$TOKEN" --node clock \
        --t0 "$T" "$@"
}
# offsets: the clock offsets node clock's events show: each the one
# recorded when its batch was stored (null before the first sane send).
offsets() {
    api_get "api/v1/timeline?cluster=test&from=$T&to=$((T + 10))" |
        jq -c '[.events[] | select(.node == "clock") | .clock_offset_ms]
               | unique'
}
assert_eq "$(clock --seq 1-1 --sent-ms 32503680000000)" "200 1" \
    "sent in the year 3000"
assert_eq "$(clock --seq 2-2 --sent-ms 1)" "200 2" "sent in 1970"
assert_eq "$(clock --seq 3-3 --sent-ms -2000000000000000)" "200 3" \
    "sent before 0"
assert_eq "$(offsets)" "[null]" "clock offset after absurd sends"
assert_eq "$(clock --seq 4-4 --sent-ms -5000)" "200 4" "a clock 5 s behind"
o=$(offsets)
echo "$o" | jq -e 'length == 2 and .[0] == null and .[1] >= 5000' \
    > /dev/null ||
    fail "clock offset from a clock 5 s behind: $o"
assert_eq "$(clock --seq 5-5 --sent-ms 32503680000000)" "200 5" \
    "the year 3000 again"
assert_eq "$(clock --seq 6-6 --sent-ms 1)" "200 6" "1970 again"
assert_eq "$(offsets)" "$o" "clock offset after more absurd sends"
echo "ok absurd send times: stored, and ignored for the clock ($o)"

# Security headers ride on every response.
api_fetch "$TMP/healthz" /healthz > /dev/null
mv "$TMP/healthz.headers" "$TMP/h"
grep -qi '^X-Content-Type-Options: nosniff' "$TMP/h" || fail "no nosniff"
grep -qi "^Content-Security-Policy: .*frame-ancestors 'none'" "$TMP/h" \
    || fail "no CSP"
stop_collector
echo "collector_errors: all passed"
