# collector_timeline.sh -- GET /api/v1/timeline: ordering by time, the
# from/to/cluster/limit filters, RFC 3339 times; /healthz; and a clean stop
# on SIGTERM that closes the database.
. "$(dirname "$0")/lib.sh"

DB=$TMP/c.db
start_collector "$DB"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/healthz")" = 200 ] \
    || fail "healthz"

T0=1764090000000            # 2025-11-25T17:00:00Z
send() { "$INGEST_CLIENT" --url "$URL/v1/ingest" "$@" > /dev/null; }
# Two clusters, interleaved in time: test at T0+1..T0+5, other at
# T0+3..T0+7 (t0 shifted by 2).
send --token "$TOKEN" --cluster test --t0 $T0 --seq 1-5
send --token "$OTHER_TOKEN" --cluster other --node o1 --t0 $((T0 + 2)) \
    --seq 1-5 --target api

q() { curl -sf "$URL/api/v1/timeline?$1"; }
all=$(q "from=$T0&to=$((T0 + 100))")
assert_eq "$(echo "$all" | jq '.count')" 10 "count"
assert_eq "$(echo "$all" | jq -c '[.events[].time_ms - '$T0']')" \
    "[1,2,3,3,4,4,5,5,6,7]" "ordered by time"
assert_eq "$(echo "$all" | jq -r '.events[0] | "\(.cluster) \(.region) \(.node) \(.kind) \(.target) \(.seq) \(.time)"')" \
    "test test-region n1 probe web 1 2025-11-25T17:00:00.001Z" "event fields"
assert_eq "$(echo "$all" | jq '.events[0].fields | .ok, .status, .total_us' | tr '\n' ' ')" \
    "true 200 1001 " "probe fields"

assert_eq "$(q "from=$T0&to=$((T0 + 100))&cluster=other" | jq -r '[.events[].cluster] | unique | join(",")')" \
    "other" "cluster filter"
assert_eq "$(q "from=$((T0 + 4))&to=$((T0 + 6))" | jq '.count')" 4 \
    "from inclusive, to exclusive"
lim=$(q "from=$T0&to=$((T0 + 100))&limit=3")
assert_eq "$(echo "$lim" | jq -c '[.count, .truncated]')" "[3,true]" "limit"
assert_eq "$(q "from=2025-11-25T17:00:00.004Z&to=2025-11-25T17:00:01Z" | jq '.count')" \
    6 "RFC 3339 times"
assert_eq "$(q "" | jq '.count')" 0 "default window is the last hour"

stop_collector
grep -q 'stopped' "$TMP/collector.log" || fail "no clean stop in the log"
[ ! -e "$DB-wal" ] || fail "WAL left behind: database not closed cleanly"
echo "collector_timeline: all passed"
