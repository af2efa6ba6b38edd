# collector_timeline_service.sh -- the timeline and the latency of a
# service of the collector's config (services:): its targets, the DNS
# changes of its global name and the failover events of its regions, and
# nothing else; latency merged over its regions' targets or one region's;
# names not in the config are a 400 naming the close ones. Every reply is
# checked against docs/openapi.yaml.
. "$(dirname "$0")/lib.sh"

write_collector_config "$TMP/collector.yaml"
cat "$(dirname "$0")/fixtures/services.yaml" >> "$TMP/collector.yaml"
DB=$TMP/c.db
start_collector "$DB"

# Every kind of event (tests/event_zoo.c: probes of checkout-api, db-tcp,
# app.global.test, queue-depth and kube-api; a state change; a DNS change
# of app.global.test; metric samples; a manual failover from eu-west-1 to
# us-east-1; a lifecycle event), ten minutes ago.
T0=$(( ($(date +%s) - 600) * 1000 ))
"$EVENT_ZOO" "$TMP/zoo.bin" zoo 1 $T0
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/x-protobuf' \
    -H 'Content-Encoding: deflate' --data-binary @"$TMP/zoo.bin" \
    "$URL/v1/ingest")" 200 "zoo stored"
W="from=$((T0 - 1000))&to=$((T0 + 60000))"
q() { api_get "api/v1/timeline?$W&$1"; }
kinds() { jq -c '[.events[] | "\(.kind):\(.target)"] | unique'; }

all=$(q "")
assert_eq "$(echo "$all" | kinds)" \
    '["dns:app.global.test","failover:null","lifecycle:null","metric:null","metric:queue-depth","probe:app.global.test","probe:checkout-api","probe:db-tcp","probe:kube-api","probe:queue-depth","state:checkout-api"]' \
    "the zoo's events"
svc=$(q "service=checkout")
assert_eq "$(echo "$svc" | kinds)" \
    '["dns:app.global.test","failover:null","metric:queue-depth","probe:app.global.test","probe:checkout-api","probe:db-tcp","probe:queue-depth","state:checkout-api"]' \
    "service checkout: its targets, global name and failover"
assert_eq "$(echo "$svc" | jq '.count')" \
    "$(echo "$all" | jq '[.events[] | select(.target != "kube-api" and .kind != "lifecycle" and (.kind != "metric" or .target != null))] | length')" \
    "service checkout: every such event"
assert_eq "$(echo "$svc" | jq -c '[.events[].time_ms] | . == sort')" true \
    "service checkout: in time order"
assert_eq "$(q "service=kube" | kinds)" '["probe:kube-api"]' \
    "service kube: not the failover of other regions"
assert_eq "$(q "service=checkout&kind=failover,dns" | kinds)" \
    '["dns:app.global.test","failover:null"]' "service with kinds"
# The zoo's batch says it was sent at T0+20 ms: its agent's clock is ten
# minutes behind, and corrected times are ten minutes later.
assert_eq "$(api_get "api/v1/timeline?from=$((T0 + 500000))&to=$((T0 + 700000))&service=checkout&order=corrected&limit=2" |
    jq -c '[.count, .truncated, (.events[0].corrected_ms - .events[0].time_ms > 500000)]')" \
    '[2,true,true]' "service, corrected order, a page"

bad() {
    assert_eq "$(api_code "api/v1/$1")" 400 "status for $1"
    assert_eq "$(jq -r .detail "$TMP/body")" "$2" "detail for $1"
}
bad "timeline?$W&service=checkot" \
    'service: the config has no service "checkot"; close: "checkout"'
bad "timeline?$W&service=zzzzzzzzzz" \
    'service: the config has no service "zzzzzzzzzz"; none of the 2 it has is close'
bad "incidents?service=checkot" \
    'service: the config has no service "checkot"; close: "checkout"'
assert_eq "$(api_code "api/v1/services/chekout")" 404 "status of a typo"
assert_eq "$(jq -r '.error + ": " + .detail' "$TMP/body")" \
    'not found: name: the config has no service "chekout"; close: "checkout"' \
    "detail of a typo"
bad "timeline?$W&service=checkout&target=db-tcp" \
    'service: give either target or service'

# ---- latency of a service and of a region ----
M0=$(( ($(date +%s) / 60 - 2) * 60000 ))
send() { "$INGEST_CLIENT" --url "$URL/v1/ingest" --token "$TOKEN" --t0 $M0 "$@" > /dev/null; }
send --node l1 --target checkout-api --seq 1-30
send --node l2 --target db-tcp --seq 1-20
send --node l3 --target kube-api --seq 1-7
L="from=$((M0 - 60000))&to=$((M0 + 120000))"
lat() { api_get "api/v1/latency?$L&$1"; }
assert_eq "$(lat "service=checkout" | jq -c '[.service, .region, .target, .targets, [.points[] | [.t, .count]]]')" \
    "[\"checkout\",null,null,[\"checkout-api\",\"db-tcp\"],[[$M0,50]]]" \
    "service: its regions' targets merged"
assert_eq "$(lat "service=checkout&region=us-east-1" | jq -c '[.region, .targets, [.points[].count]]')" \
    '["us-east-1",["db-tcp"],[20]]' "one region's targets"
assert_eq "$(lat "service=kube&cluster=test" | jq -c '[.points[].count]')" \
    '[7]' "service with cluster"
bad "latency?$L&service=checkout&region=us-east" \
    'region: the config has no region of that service "us-east"; close: "us-east-1"'
bad "latency?$L&region=us-east-1" 'region: needs service (a region is a service'"'"'s)'
bad "latency?$L&target=db-tcp&region=us-east-1" \
    'region: needs service (a region is a service'"'"'s)'
bad "latency?$L" 'target: required (or service)'
bad "latency?$L&service=checkout&target=db-tcp" \
    'service: give either target or service'
bad "latency?$L&service=shop" \
    'service: the config has no service "shop"; none of the 2 it has is close'

stop_collector
echo "collector_timeline_service: all passed"
