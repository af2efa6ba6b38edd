# collector_timeline.sh -- GET /api/v1/timeline: ordering by time, the
# from/to/cluster/limit/kind filters, RFC 3339 times, names the store has
# never seen (400 with the close ones); /healthz; and a clean stop on
# SIGTERM that closes the database. Every reply is checked to be JSON.
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

q() { api_get "api/v1/timeline?$1"; }
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

# kind takes a list; a kind the store knows of but has not stored yet is
# an empty answer, not an error.
W="from=$T0&to=$((T0 + 100))"
assert_eq "$(q "$W&kind=probe,state" | jq '.count')" 10 "kind list"
assert_eq "$(q "$W&kind=failover" | jq '.count')" 0 "kind not stored yet"
assert_eq "$(q "$W&kind=state,probe&cluster=other&target=api" |
    jq -c '[.count, ([.events[].kind] | unique)]')" '[5,["probe"]]' \
    "kind list with cluster and target"
# A name the store has never seen is a 400 naming it and the close names
# it knows: a typo must not read as "nothing happened".
unknown() {
    assert_eq "$(api_code "api/v1/timeline?$W&$1")" 400 "status for $1"
    assert_eq "$(jq -r .error "$TMP/body")" "unknown name" "error for $1"
    assert_eq "$(jq -r .detail "$TMP/body")" "$2" "detail for $1"
}
unknown "cluster=tset" \
    'cluster: the store has never seen a cluster "tset"; close: "test"'
unknown "cluster=Other" \
    'cluster: the store has never seen a cluster "Other"; close: "other"'
unknown "target=wbe" \
    'target: the store has never seen a target "wbe"; close: "web"'
unknown "target=ap" \
    'target: the store has never seen a target "ap"; close: "api"'
unknown "kind=probe,prbe" \
    'kind: the store has never seen a kind "prbe"; close: "probe"'
# The eleven kinds the API knows (api.c's api_kinds), probe and state among
# them, the two this store holds: each counted once.
unknown "kind=zzzzzzzz" \
    'kind: the store has never seen a kind "zzzzzzzz"; none of the 11 it knows is close'
unknown "service=checkout" \
    'service: the config has no service "checkout"; it has none'
unknown "cluster=test&target=nothing-like-it" \
    'target: the store has never seen a target "nothing-like-it"; none of the 2 it knows is close'
for bad in "kind=probe," "kind=,probe" "kind=probe,,state"; do
    assert_eq "$(api_code "api/v1/timeline?$W&$bad")" 400 "status for $bad"
    assert_eq "$(jq -r .detail "$TMP/body")" "kind: an empty kind in the list" \
        "detail for $bad"
done

stop_collector
grep -q 'stopped' "$TMP/collector.log" || fail "no clean stop in the log"
[ ! -e "$DB-wal" ] || fail "WAL left behind: database not closed cleanly"
echo "collector_timeline: all passed"
