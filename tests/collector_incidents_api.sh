# collector_incidents_api.sh -- the incident and service endpoints of a
# real collector, every reply (200s and errors) checked against
# docs/openapi.yaml: /api/v1/status from stored state events and probes;
# /api/v1/services[/{name}] with each region's windows, and a 404 naming
# the close service; the incident of the zoo's failing region, which a
# real agent's manual failover event then joins, listed, fetched and
# exported (Markdown table rows, CSV parsed by Python's csv module, JSON
# by jq) as an attachment; annotations refused
# without a token (401), with a read token (403), with bad fields (400
# naming them, nothing stored), over 8 KiB (413), of another type (415),
# stored with an annotate token (201) and shown in the incident and its
# exports; the incident's opening POSTed to a real webhook receiver;
# /metrics' service gauges and webhook counters (promtool); the read-only
# `incidents` command; and, with no api_tokens at all, annotations
# refused (403).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"
. "$(dirname "$0")/fixtures/store-v5/zoo.sh"

READ=read-token-0123456789
NOTE=annotate-token-0123456789

# tests/fixtures/services.yaml: the zoo's agents are region eu-west-1 and
# probe checkout-api there; us-east-1 is the standby.
write_services() {
    cat "$(dirname "$0")/fixtures/services.yaml" >> "$1"
}

# A webhook receiver on loopback: one line per POST it got.
"$WEBHOOK_SINK" --out "$TMP/hooks" > "$TMP/sink.port" 2> "$TMP/sink.log" &
PIDS+=($!)
wait_for "$TMP/sink.port" '^[0-9]'
write_collector_config "$TMP/collector.yaml"
cat >> "$TMP/collector.yaml" <<YAML
incidents:
  webhooks: [http://127.0.0.1:$(head -n1 "$TMP/sink.port")/hook]
api_tokens:
  - token: $READ
  - token: $NOTE
    scope: annotate
YAML
write_services "$TMP/collector.yaml"
start_collector "$TMP/c.db"
zoo_ingest "$URL"

# get STATUS PATH [TOKEN]: GET with a token (read by default) into
# $TMP/body, checked against the document; fails unless STATUS.
get() {
    local code
    code=$(api_fetch "$TMP/body" "$2" -H "Authorization: Bearer ${3:-$READ}")
    assert_eq "$code" "$1" "GET $2: $(head -c 300 "$TMP/body")"
}

# post STATUS BODY [TOKEN] [TYPE]: POST /api/v1/annotations.
post() {
    local code args=(-X POST -H "Content-Type: ${4:-application/json}"
                     --data-binary "$2")
    [ -n "${3-$NOTE}" ] && args+=(-H "Authorization: Bearer ${3-$NOTE}")
    code=$(api_fetch "$TMP/body" /api/v1/annotations "${args[@]}")
    assert_eq "$code" "$1" "POST $2: $(head -c 300 "$TMP/body")"
}

# --- status: the zoo's two agents see checkout-api unhealthy ---
get 200 /api/v1/status
jq -e '.targets[] | select(.cluster == "test" and .target == "checkout-api")
       | .health == "unhealthy" and (.agents | length) == 2
         and .last.ok == false and .last.error == "status 503 not expected"' \
    "$TMP/body" > /dev/null || fail "status of checkout-api: $(cat "$TMP/body")"
jq -e '.services[0].name == "checkout"' "$TMP/body" > /dev/null ||
    fail "status without the service: $(cat "$TMP/body")"
get 400 "/api/v1/status?region=x"
jq -e '.detail | startswith("region: unknown parameter")' "$TMP/body" \
    > /dev/null || fail "unknown parameter not named: $(cat "$TMP/body")"

# --- services ---
get 200 /api/v1/services
jq -e '.services[0].regions[0].windows["24h"] | has("uptime")' "$TMP/body" \
    > /dev/null || fail "services without windows: $(cat "$TMP/body")"
get 200 /api/v1/services/checkout
jq -e '.name == "checkout" and (.regions | length) == 2' "$TMP/body" \
    > /dev/null || fail "service: $(cat "$TMP/body")"
get 404 /api/v1/services/chekout
jq -e '.detail | contains("close: \"checkout\"")' "$TMP/body" > /dev/null ||
    fail "404 without the close name: $(cat "$TMP/body")"

# --- an incident: the zoo's region fails; an operator's manual failover ---
start_target
{ agent_yaml_head "$TMP/agent.spool" | sed 's/^region: .*/region: eu-west-1/'
  printf 'targets:\n  - name: checkout-us\n    url: http://127.0.0.1:%s/\n' \
      "$TARGET_PORT"; } > "$TMP/agent.yaml"
"$AGENT" event --config "$TMP/agent.yaml" --kind manual --from eu-west-1 \
    --to us-east-1 --text "planned move" > "$TMP/event.out" 2>&1 ||
    fail "agent event: $(cat "$TMP/event.out")"
"$AGENT" --config "$TMP/agent.yaml" --once 2> "$TMP/agent.log" ||
    fail "agent --once exited $?"
has_incident() {
    curl -sf -H "Authorization: Bearer $READ" \
        "$URL/api/v1/incidents?open=true&service=checkout" |
        jq -e '.count == 1' > /dev/null
}
wait_until 60 "no open incident of checkout" has_incident
get 200 "/api/v1/incidents?open=true&service=checkout&limit=5"
ID=$(jq -r '.incidents[0].id' "$TMP/body")
jq -e '.incidents[0] | .open and .region == "eu-west-1"' \
    "$TMP/body" > /dev/null || fail "incident: $(cat "$TMP/body")"
get 200 "/api/v1/incidents?open=false"
assert_eq "$(jq .count "$TMP/body")" 0 "closed incidents"
get 200 "/api/v1/incidents/$ID"
jq -e '.timeline | any(.kind == "failover")' "$TMP/body" > /dev/null ||
    fail "incident timeline without the failover: $(cat "$TMP/body")"
# The receiver got the opening, with the incident and a line for a chat.
wait_until 60 "no incident.opened webhook" has_line "$TMP/hooks" \
    '"event":"incident.opened"'
grep -m1 '"event":"incident.opened"' "$TMP/hooks" | cut -d' ' -f2- |
    jq -e --argjson id "$ID" '.incident.id == $id and
        .incident.service == "checkout" and (.text | contains("checkout"))' \
    > /dev/null || fail "webhook body: $(head -c 600 "$TMP/hooks")"
grep -q '^200 ' "$TMP/hooks" || fail "webhook not answered 200"
for bad in "open=maybe" "limit=0" "limit=1001" "from=yesterday" \
           "service=chekout" "nope=1" "from=2&to=1"; do
    get 400 "/api/v1/incidents?$bad"
done
get 400 /api/v1/incidents/abc
get 400 /api/v1/incidents/0
get 404 /api/v1/incidents/999999
get 400 "/api/v1/incidents/$ID?x=1"
get 400 "/api/v1/incidents/$ID/export?format=xml"
get 404 "/api/v1/incidents/$ID/nope"

# --- annotations: who may write, and every bad field refused ---
DIGEST=$(db_sql "$TMP/c.db" 'SELECT count(*) FROM annotations')
post 401 '{"text":"x"}' ""
post 403 '{"text":"x"}' "$READ"
post 415 '{"text":"x"}' "$NOTE" text/plain
head -c 9000 /dev/zero | tr '\0' a > "$TMP/big"
post 413 @"$TMP/big"
post 400 '{"text":"x"'
post 400 ''
post 400 '["x"]'
post 400 '{}'
for f in '"text":""' '"text":1' '"text":"x","time":"soon"' \
         '"text":"x","service":"chekout"' '"text":"x","incident":"1"' \
         '"text":"x","incident":999999' '"text":"x","color":"red"'; do
    post 400 "{$f}"
done
jq -e '.detail | startswith("color: unknown field")' "$TMP/body" \
    > /dev/null || fail "unknown field not named: $(cat "$TMP/body")"
head -c 4097 /dev/zero | tr '\0' a > "$TMP/long"
post 400 "{\"text\":\"$(cat "$TMP/long")\"}"
# A control character (but tab and newline) in the text: 400 naming it,
# not the store's failure.
post 400 '{"text":"a\u0001b"}'
jq -e '.detail | startswith("text: ")' "$TMP/body" > /dev/null ||
    fail "control character in text not named: $(cat "$TMP/body")"
assert_eq "$(db_sql "$TMP/c.db" 'SELECT count(*) FROM annotations')" \
    "$DIGEST" "annotations stored by refused requests"
post 201 "{\"text\":\"paged the on-call, a|b, \\\"c\\\"\",\"service\":\"checkout\",\"incident\":$ID,\"time\":\"2026-12-04T21:00:00.5Z\"}"
NOTE_ID=$(jq .id "$TMP/body")
get 200 "/api/v1/incidents/$ID"
jq -e --argjson n "$NOTE_ID" '.annotations | any(.id == $n and
       .text == "paged the on-call, a|b, \"c\"" and .service == "checkout")' \
    "$TMP/body" > /dev/null || fail "annotation not in the incident"

# --- exports: an attachment each, parsed ---
export_fmt() {
    local code
    code=$(curl -sS -D "$TMP/headers" -o "$TMP/export.$1" -w '%{http_code}' \
           -H "Authorization: Bearer $READ" \
           "$URL/api/v1/incidents/$ID/export?format=$1")
    assert_eq "$code" 200 "export $1"
    api_valid GET "/api/v1/incidents/$ID/export?format=$1" 200 \
        "$TMP/export.$1" "$2"
    grep -qi "^Content-Disposition: attachment; filename=\"incident-$ID.$1\"" \
        "$TMP/headers" || fail "export $1: no attachment header"
}
export_fmt json application/json
jq -e --argjson id "$ID" '.id == $id and (.annotations | length) == 1' \
    "$TMP/export.json" > /dev/null || fail "json export"
export_fmt csv text/csv
python3 - "$TMP/export.csv" "$ID" <<'PY' || fail "csv export: $(cat "$TMP/export.csv")"
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline='', encoding='utf-8')))
blank = rows.index([])
summary = dict(rows[1:blank])
assert rows[0] == ['field', 'value'], rows[0]
assert summary['service'] == 'checkout' and summary['id'] == sys.argv[2], summary
assert summary['open'] == 'yes' and summary['closed'] == '', summary
head = rows[blank + 1]
assert head == ['Time (UTC)', 'Corrected (UTC)', 'Cluster', 'Node', 'Kind',
                'Target', 'What'], head
kinds = [r[4] for r in rows[blank + 2:]]
assert 'failover' in kinds and 'annotation' in kinds, kinds
note = [r for r in rows[blank + 2:] if r[4] == 'annotation'][0]
assert note[6] == 'paged the on-call, a|b, "c"', note
assert note[0] == '2026-12-04T21:00:00.500Z', note
PY
export_fmt md text/markdown
grep -q "^# Incident $ID: checkout, region eu-west-1$" "$TMP/export.md" ||
    fail "md title: $(head -3 "$TMP/export.md")"
grep -q '^| Open | yes |$' "$TMP/export.md" || fail "md summary"
grep -q '^| Time (UTC) | Corrected (UTC) | Cluster | Node | Kind | Target | What |$' \
    "$TMP/export.md" || fail "md timeline header"
grep -qF '| annotation |  | paged the on-call, a\|b, "c" |' \
    "$TMP/export.md" || fail "md annotation row: $(cat "$TMP/export.md")"
grep -q '| failover | .*manual eu-west-1 -> us-east-1: planned move |$' \
    "$TMP/export.md" || fail "md failover row: $(cat "$TMP/export.md")"
# Every timeline row has the columns of its header (an escaped \| is
# inside a cell).
awk '{ line = $0; gsub(/\\\|/, "", line); c = split(line, f, "|") }
     /^\| Time/ { n = c } n && /^\|/ && c != n { bad = 1 }
     END { exit bad }' "$TMP/export.md" || fail "md row widths"

# --- /metrics: the service's gauges ---
curl -sS "$URL/metrics" > "$TMP/metrics"
promtool check metrics < "$TMP/metrics" > "$TMP/promtool.log" 2>&1 ||
    fail "promtool: $(cat "$TMP/promtool.log")"
grep -q '^sextant_collector_open_incidents{service="checkout"} 1$' \
    "$TMP/metrics" || fail "open incidents gauge: $(grep open_inc "$TMP/metrics")"
grep -q '^sextant_collector_region_healthy{service="checkout",region="eu-west-1"} ' \
    "$TMP/metrics" || fail "region health gauge"
grep -q '^sextant_collector_region_serving{service="checkout",region="us-east-1"} ' \
    "$TMP/metrics" || fail "region serving gauge"
awk '/^sextant_collector_webhook_delivered_total / { exit !($2 >= 1) }' \
    "$TMP/metrics" || fail "webhook deliveries not counted"

# --- the read-only command, the collector still running (on the file,
# or on PostgreSQL the database through --config) ---
store_args "$TMP/c.db"
"$COLLECTOR" incidents "${STORE_ARGS[@]}" --service checkout --open \
    --format csv > "$TMP/list.csv" 2> "$TMP/list.err" ||
    fail "incidents command: $(cat "$TMP/list.err")"
python3 - "$TMP/list.csv" "$ID" <<'PY' ||
    fail "list csv: $(cat "$TMP/list.csv")"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline='', encoding='utf-8')))
assert len(rows) == 1 and rows[0]['id'] == sys.argv[2], rows
assert rows[0]['service'] == 'checkout' and rows[0]['open'] == 'yes', rows
PY
"$COLLECTOR" incidents "${STORE_ARGS[@]}" --format json |
    jq -e '.count == 1' > /dev/null || fail "incidents --format json"
"$COLLECTOR" incidents "${STORE_ARGS[@]}" --format md |
    grep -q "^| $ID | checkout | eu-west-1 |" ||
    fail "incidents --format md"
set +e
"$COLLECTOR" incidents "${STORE_ARGS[@]}" --format xml > /dev/null 2>&1
rc=$?
set -e
assert_eq "$rc" 2 "incidents --format xml"
# One of --db and --config, not both nor none.
set +e
"$COLLECTOR" incidents --format json > /dev/null 2> "$TMP/list.err"
rc=$?
set -e
assert_eq "$rc" 2 "incidents without --db or --config"
assert_eq "$(wc -l < "$TMP/list.err")" 1 "one line without --db or --config"
stop_collector

# --- no api_tokens: reads open, annotations refused ---
write_collector_config "$TMP/collector.yaml"
write_services "$TMP/collector.yaml"
start_collector "$TMP/c.db"
get 200 /api/v1/incidents ""
post 403 '{"text":"x"}' ""
jq -e '.detail | contains("scope: annotate")' "$TMP/body" > /dev/null ||
    fail "403 without saying how: $(cat "$TMP/body")"
stop_collector
echo "collector_incidents_api: all passed"
