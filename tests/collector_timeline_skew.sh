# collector_timeline_skew.sh -- GET /api/v1/timeline in corrected order
# when agents' clocks disagree by more than a page's first span (4 s,
# collector/store_query.c): three agents, one 25 s behind, one 35 s
# ahead, one right, each sending an event every 11 s. On the corrected
# clock they come 3 s (behind), 6 s (ahead) and 2 s (right) apart: after
# a page that ends on a behind event, the next event is an ahead one that
# a scan of the first span leaves unread (its agent time is 35 s later),
# while the right one after it is read. Small pages through the cursor
# must give the very events, in the very order, of one page holding the
# whole window: sorted by corrected time, each event once. Every reply is
# checked against docs/openapi.yaml.
. "$(dirname "$0")/lib.sh"

start_collector "$TMP/c.db"
T0=$(( ($(date +%s) - 600) * 1000 ))
# send NODE SENT_MS: the node's ten batches of one event; SENT_MS is its
# clock's error as ingest_client gives it (-25000: 25 s behind). SLOWEST:
# the longest call, in ms.
SLOWEST=0
send() {
    local t d
    for i in $(seq 0 9); do
        t=$(now_ms)
        "$INGEST_CLIENT" --url "$URL/v1/ingest" --token "$TOKEN" \
            --node "$1" --sent-ms "$2" --rtt-us 20000 \
            --seq "$((i + 1))-$((i + 1))" --t0 $((T0 + i * 11000)) \
            > /dev/null
        d=$(( $(now_ms) - t ))
        [ "$d" -le "$SLOWEST" ] || SLOWEST=$d
    done
}
send behind -25000
send ahead +35000
send right +0
# Each agent's offset: the collector's receive time minus the batch's
# send time, less half the claimed round trip (10 ms): the clock's error
# plus the POST's one-way delay, which is no longer than the call took.
# On a loaded machine that is well over the half second that rounding
# to whole seconds would hide.
offsets=$(api_get "api/v1/timeline?from=$((T0 - 60000))&to=$((T0 + 200000))&limit=10000" |
    jq -c '[.events[] | {(.node): .clock_offset_ms}] | add')
for want in behind:25000 ahead:-35000 right:0; do
    node=${want%%:*} want=${want#*:}
    jq -e --arg n "$node" --argjson lo $((want - 11)) \
        --argjson hi $((want - 9 + SLOWEST)) \
        '.[$n] >= $lo and .[$n] <= $hi' <<< "$offsets" > /dev/null ||
        fail "offset of $node: got $(jq ".$node" <<< "$offsets") ms," \
             "want $want ms (its clock's error), less 10, plus up to" \
             "$SLOWEST ms (a POST's delay)"
done

W="from=$((T0 + 5000))&to=$((T0 + 80000))&order=corrected"
ev='.events[] | "\(.corrected_ms) \(.node) \(.seq)"'
api_get "api/v1/timeline?$W&limit=10000" | jq -r "$ev" > "$TMP/whole.txt"
n=$(wc -l < "$TMP/whole.txt")
# The window cuts through each agent's events: neither all nor none.
[ "$n" -gt 10 ] && [ "$n" -lt 30 ] || fail "whole window: $n events"
sort -n -s -k1,1 "$TMP/whole.txt" | cmp -s - "$TMP/whole.txt" ||
    fail "whole window not in corrected order: $(cat "$TMP/whole.txt")"
for limit in 1 7; do
    cur=
    : > "$TMP/pages.txt"
    while :; do
        reply=$(api_get "api/v1/timeline?$W&limit=$limit${cur:+&cursor=$cur}")
        echo "$reply" | jq -r "$ev" >> "$TMP/pages.txt"
        cur=$(echo "$reply" | jq -r '.next // empty')
        [ -n "$cur" ] || break
    done
    cmp -s "$TMP/pages.txt" "$TMP/whole.txt" ||
        fail "pages of $limit differ from the whole window:
$(diff "$TMP/whole.txt" "$TMP/pages.txt" | head -20)"
done
stop_collector
echo "collector_timeline_skew: all passed"
