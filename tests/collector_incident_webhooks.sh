#!/bin/bash
# collector_incident_webhooks.sh -- an incident's webhooks from open to
# close, end to end: a real collector with tests/scenarios/collector.yaml
# and a webhook receiver (tests/webhook_sink), the active-passive failover
# of tests/scenarios/ap_failover.scn posted by scenario_feed. The receiver
# must get incident.opened, any incident.updated, then incident.closed,
# in that order, all for the one incident, and the last body must carry
# the scenario's times to the millisecond (its "expect" line) and its
# durations; nothing is retracted.
source "$(dirname "$0")/lib.sh"
: "${SCENARIO_FEED:?run through ctest}"
: "${WEBHOOK_SINK:?run through ctest}"

SCN=$SEXTANT_SRC/tests/scenarios/ap_failover.scn

"$WEBHOOK_SINK" --out "$TMP/hooks" > "$TMP/sink.port" 2> "$TMP/sink.log" &
PIDS+=($!)
wait_for "$TMP/sink.port" '^[0-9]'
# The scenarios' config, with the receiver as the incidents' webhook.
sed "s|^  stable: 10s$|&\n  webhooks: [http://127.0.0.1:$(head -n1 \
"$TMP/sink.port")/hook]|" "$SEXTANT_SRC/tests/scenarios/collector.yaml" \
    > "$TMP/collector.yaml"
grep -q '^  webhooks: ' "$TMP/collector.yaml" ||
    fail "no webhooks line added to the scenarios' config"

start_collector "$TMP/c.db"
"$SCENARIO_FEED" --url "$URL" --scn "$SCN" > "$TMP/feed.out" \
    2> "$TMP/feed.log" || fail "feed failed: $(cat "$TMP/feed.log")"
BASE=$(sed -n 's/^base //p' "$TMP/feed.out")
[ -n "$BASE" ] || fail "the feed printed no base"
wait_until 120 "no incident.closed webhook" has_line "$TMP/hooks" \
    '"event":"incident.closed"'
stop_collector

# The events in the order received, each with its incident's id.
cut -d' ' -f2- "$TMP/hooks" |
    jq -r '"\(.event) \(.incident.id)"' > "$TMP/events" ||
    fail "a webhook body is not JSON: $(head -c 600 "$TMP/hooks")"
awk '$0 !~ /^200 /' "$TMP/hooks" | grep -q . &&
    fail "a webhook was not answered 200: $(cat "$TMP/hooks")"
ID=$(head -n1 "$TMP/events" | cut -d' ' -f2)
awk -v id="$ID" '
    $2 != id { print "another incident: " $0; bad = 1 }
    NR == 1 && $1 != "incident.opened" { print "first: " $0; bad = 1 }
    NR > 1 && $1 != "incident.updated" && $1 != "incident.closed" {
        print "then: " $0; bad = 1 }
    $1 == "incident.closed" { closed++ }
    END { if (closed != 1 || $1 != "incident.closed") {
              print "not closed once and last"; bad = 1 }
          exit bad }' "$TMP/events" ||
    fail "webhooks out of order: $(tr '\n' ';' < "$TMP/events")"

# The close's body: the ground truth's times and durations.
tail -n1 "$TMP/hooks" | cut -d' ' -f2- > "$TMP/closed.json"
line=$(grep '^expect incident' "$SCN")
for kv in $line; do
    key=${kv%%=*} want=${kv#*=}
    case $key in
    first_failure|detected|failover_start|dns_first|dns_all|restored|closed)
        want=$(awk -v b="$BASE" -v s="$want" \
               'BEGIN { printf "%.0f\n", b + s * 1000 }')
        got=$(jq -r --arg k "$key" '{dns_first: "dns_switched_first",
              dns_all: "dns_switched_all"} as $m |
              .incident.times[$m[$k] // $k].ms' "$TMP/closed.json") ;;
    time_to_detect|time_to_failover|rto)
        got=$(jq -r --arg k "$key" '.incident.durations_ms[$k]' \
              "$TMP/closed.json") ;;
    rpo)
        got=$(jq -r '.incident.rpo_ms | round' "$TMP/closed.json") ;;
    service|region|to_region)
        got=$(jq -r --arg k "$key" '.incident[$k]' "$TMP/closed.json") ;;
    *) continue ;;
    esac
    assert_eq "$got" "$want" "incident.closed's $key"
done
jq -e '.incident.open == false and (.text | contains("closed"))' \
    "$TMP/closed.json" > /dev/null ||
    fail "incident.closed body: $(cat "$TMP/closed.json")"
echo "ok: $(wc -l < "$TMP/events") webhooks, opened to closed"
