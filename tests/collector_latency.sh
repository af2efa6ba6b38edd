# collector_latency.sh -- GET /api/v1/latency over real HTTP: probe results
# from two clusters' agents are rolled up per minute and hour; counts,
# failures and percentiles (within 2 %) come back per cluster and merged;
# a replayed batch counts once; bad parameters and names the store has
# never seen are a 400 naming them. Every reply is checked to be JSON.
. "$(dirname "$0")/lib.sh"

DB=$TMP/c.db
start_collector "$DB"
# Two minutes ago, on a minute boundary: seq s is stamped T0 + s ms and
# took 1000 + s us (see ingest_client).
T0=$(( ($(date +%s) / 60 - 2) * 60000 ))
send() { "$INGEST_CLIENT" --url "$URL/v1/ingest" --t0 "$T0" "$@"; }
assert_eq "$(send --token "$TOKEN" --seq 1-100)" "200 100" "cluster test"
assert_eq "$(send --token "$TOKEN" --seq 1-100)" "200 100" "replay"
assert_eq "$(send --token "$OTHER_TOKEN" --cluster other --seq 1-40)" \
    "200 40" "cluster other"
assert_eq "$(send --token "$OTHER_TOKEN" --cluster other --seq 41-50 \
             --error-len 20)" "200 50" "failures of cluster other"

lat() { api_get "api/v1/latency?target=web&from=$((T0 - 60000))&to=$((T0 + 120000))$1"; }
# Nearest rank within 2 %: p of n sorted values 1001..1000+n us, in ms.
near() { awk -v got="$1" -v want="$2" \
    'BEGIN { d = got - want; if (d < 0) d = -d; exit !(d <= want * 0.0201) }'; }

j=$(lat "&cluster=test")
assert_eq "$(jq -c '[.points[] | [.t, .count, .failures]]' <<<"$j")" \
    "[[$T0,100,0]]" "cluster test: one minute, each event once"
near "$(jq '.points[0].p50_ms' <<<"$j")" 1.050 || fail "p50: $j"
near "$(jq '.points[0].p99_ms' <<<"$j")" 1.099 || fail "p99: $j"

j=$(lat "")
assert_eq "$(jq -c '[.points[] | [.count, .failures]]' <<<"$j")" \
    "[[150,10]]" "every cluster merged"
# 140 successes: 1..100 from test, 1..40 from other.
near "$(jq '.points[0].p95_ms' <<<"$j")" 1.093 || fail "merged p95: $j"

j=$(lat "&cluster=other&step=hour")
assert_eq "$(jq -c '[.points[] | [.t, .count, .failures]]' <<<"$j")" \
    "[[$(( T0 / 3600000 * 3600000 )),50,10]]" "hour rollup of other"
code() { api_code "api/v1/latency$1"; }
assert_eq "$(code "?target=web&cluster=nobody")" 400 "unknown cluster"
assert_eq "$(jq -r .detail "$TMP/body")" \
    'cluster: the store has never seen a cluster "nobody"; none of the 2 it knows is close' \
    "unknown cluster named"
assert_eq "$(code "?target=webb")" 400 "unknown target"
assert_eq "$(jq -r .detail "$TMP/body")" \
    'target: the store has never seen a target "webb"; close: "web"' \
    "unknown target named, with the close one"
assert_eq "$(code "")" 400 "no target"
jq -e '.detail | test("target")' "$TMP/body" > /dev/null || fail "detail"
assert_eq "$(code "?target=web&step=week")" 400 "bad step"
assert_eq "$(code "?target=web&from=0&to=9999999999999")" 400 "too many steps"
jq -e '.detail | test("step=hour")' "$TMP/body" > /dev/null || fail "detail"
assert_eq "$(code "?target=web&colour=red")" 400 "unknown parameter"
stop_collector
echo "collector_latency: all passed"
