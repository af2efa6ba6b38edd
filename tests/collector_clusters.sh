# collector_clusters.sh -- GET /api/v1/clusters on a real collector fed
# by real batches: every cluster that sent, its regions, and per agent
# (its latest epoch) the version, first and last batch, clock offset,
# watermark, highest stored seq, last drop report (and when it came) and
# spool backlog, as the batches said (the latest batch's backlog wins; a
# backlog over 2^63-1 is a 400 that changes nothing; /metrics has the
# backlogs as gauges); an unknown parameter is a 400 naming it, another
# method a 405. Every reply is checked against docs/openapi.yaml.
. "$(dirname "$0")/lib.sh"

start_collector "$TMP/c.db"
clusters() { api_get "api/v1/clusters"; }
assert_eq "$(clusters)" '{"clusters":[]}' "no agent yet"

T0=$(( $(date +%s) * 1000 - 60000 ))
send() {
    "$INGEST_CLIENT" --url "$URL/v1/ingest" --token "$TOKEN" --t0 "$T0" "$@"
}
# n1 in eu-west-1, its clock 2 s behind (one sample: it is the estimate).
assert_eq "$(send --node n1 --region eu-west-1 --epoch 1 --seq 1-5 \
             --sent-ms -2000 --rtt-us 1000)" "200 5" "n1, epoch 1"
# n1 again with a new spool (epoch 2): the agent shown is this one. Its
# backlog: 9 events, then (the latest batch) 7.
assert_eq "$(send --node n1 --region eu-west-1 --epoch 2 --seq 1-1 \
             --sent-ms -2000 --rtt-us 1000 --spool 9:900)" "200 1" \
    "n1, epoch 2"
assert_eq "$(send --node n1 --region eu-west-1 --epoch 2 --seq 2-2 \
             --sent-ms -2000 --rtt-us 1000 --spool 7:700)" "200 2" \
    "n1, epoch 2, its second batch"
# A backlog SQLite cannot hold: refused whole, nothing stored.
out=$(send --node n1 --region eu-west-1 --epoch 2 --seq 3-3 \
      --spool 9223372036854775808:1)
assert_eq "$(jq -r .detail <<< "${out#400 }")" \
    "spool_events: 9223372036854775808 over 2^63-1" "a backlog over 2^63-1"
# n2 in us-east-1 dropped seqs 1-4 (its spool was full): one report,
# received between before and after; its replay in the next batch is not
# a new report.
before=$(now_ms)
assert_eq "$(send --node n2 --region us-east-1 --seq 5-7 --sent-ms 0 \
             --drops "4:1-4@$((T0 + 1))-$((T0 + 4))")" "200 7" "n2"
after=$(now_ms)
wait_until 30 "the clock to move past the report" \
    test "$(now_ms)" -gt "$after"
assert_eq "$(send --node n2 --region us-east-1 --seq 8-8 --sent-ms 0 \
             --drops "4:1-4@$((T0 + 1))-$((T0 + 4))")" "200 8" \
    "n2, the report again"
# n3: seqs 3-4 still on the way (its oldest is 1): two wait above them.
assert_eq "$(send --node n3 --region us-east-1 --seq 1-2 --seq 5-6 \
             --oldest-seq 1)" "200 2" "n3"
out=$("$INGEST_CLIENT" --url "$URL/v1/ingest" --token "$OTHER_TOKEN" \
      --cluster other --node o1 --t0 "$T0" --seq 1-1)
assert_eq "$out" "200 1" "o1 of cluster other"

clusters > "$TMP/c.json"
got() { jq -c "$1" "$TMP/c.json"; }
assert_eq "$(got '[.clusters[].name]')" '["other","test"]' "clusters"
assert_eq "$(got '[.clusters[1].regions[] | [.name, [.agents[].node]]]')" \
    '[["eu-west-1",["n1"]],["us-east-1",["n2","n3"]]]' "regions and agents"
agent() {
    jq -c --arg n "$1" "[.clusters[].regions[].agents[]
        | select(.node == \$n)][0] | $2" "$TMP/c.json"
}
assert_eq "$(agent n1 '[.epoch, .epochs, .acked_seq, .highest_seq,
    .waiting, .agent_version, .region, .last_drop, .spool]')" \
    '["0000000000000002",2,2,2,0,"test","eu-west-1",null,{"events":7,"bytes":700}]' \
    "n1"
off=$(agent n1 .clock_offset_ms)
[ "$off" -ge 2000 ] && [ "$off" -lt 32000 ] ||
    fail "n1's clock offset: $off, want 2 s and the request's transit"
assert_eq "$(agent n2 '[.acked_seq, .highest_seq, .clock_offset_ms,
    (.last_drop | del(.reported))]')" \
    "[8,8,null,{\"count\":4,\"from_seq\":1,\"to_seq\":4,\"last_event\":{\"ms\":$((T0 + 4)),\"utc\":\"$(date -u -d "@$((T0 / 1000))" +%Y-%m-%dT%H:%M:%S).004Z\"}}]" \
    "n2: its drop report"
rep=$(agent n2 .last_drop.reported.ms)
[ "$rep" -ge "$before" ] && [ "$rep" -le "$after" ] ||
    fail "n2's report received at $rep, want $before to $after (the first)"
# An agent that does not say (older than the field) reads as 0.
assert_eq "$(agent n2 .spool)" '{"events":0,"bytes":0}' "n2: no backlog sent"
assert_eq "$(agent n3 '[.acked_seq, .highest_seq, .waiting]')" '[2,6,4]' \
    "n3: seqs waiting above a hole"
assert_eq "$(agent o1 '[.region, .acked_seq]')" '["test-region",1]' "o1"
# /metrics says the same backlogs, one series per agent that said one.
curl -sS "$URL/metrics" > "$TMP/m.txt"
promtool check metrics < "$TMP/m.txt" > "$TMP/promtool.log" 2>&1 ||
    { cat "$TMP/promtool.log" >&2; fail "promtool check metrics"; }
assert_eq "$(grep '^sextant_collector_agent_spool_' "$TMP/m.txt" | sort)" \
'sextant_collector_agent_spool_bytes{cluster="other",node="o1"} 0
sextant_collector_agent_spool_bytes{cluster="test",node="n1"} 700
sextant_collector_agent_spool_bytes{cluster="test",node="n2"} 0
sextant_collector_agent_spool_bytes{cluster="test",node="n3"} 0
sextant_collector_agent_spool_events{cluster="other",node="o1"} 0
sextant_collector_agent_spool_events{cluster="test",node="n1"} 7
sextant_collector_agent_spool_events{cluster="test",node="n2"} 0
sextant_collector_agent_spool_events{cluster="test",node="n3"} 0' \
    "the backlog gauges"
# Times: first <= last batch; a cluster's last batch is its latest
# agent's; utc says the same time as ms.
assert_eq "$(got '[.clusters[] | .last_seen.ms == ([.regions[].agents[]
    .last_seen.ms] | max)] | all')" true "a cluster's last batch"
assert_eq "$(got '[.clusters[].regions[].agents[] | .first_seen.ms <=
    .last_seen.ms and (.last_seen.utc | sub("\\.[0-9]+Z$"; "Z")
    | fromdateiso8601) == (.last_seen.ms / 1000 | floor)] | all')" true \
    "agents' first and last batch"

assert_eq "$(api_code "api/v1/clusters?region=x")" 400 "a parameter"
assert_eq "$(jq -r .detail "$TMP/body")" "region: unknown parameter (none)" \
    "its detail"
assert_eq "$(api_fetch "$TMP/post" /api/v1/clusters -X POST)" 405 "POST"
stop_collector
echo "collector_clusters: all passed"
