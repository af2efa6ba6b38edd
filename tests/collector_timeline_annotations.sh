# collector_timeline_annotations.sh -- annotations (POST
# /api/v1/annotations) in GET /api/v1/timeline and sextant-collector
# timeline: rows of kind "annotation" merged with the events by time (an
# annotation before the events of its millisecond, the newer first);
# paged with limit 1 and 3 in both orders, each event and annotation of
# the window stored before the first page comes once, and an annotation
# or event added after it does not; the kind, cluster, region and
# service filters (a note of the service, or tied to one of its
# incidents); CSV and Markdown rows. Every JSON reply is checked against
# docs/openapi.yaml.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures/store-v5/zoo.sh"

NOTE=annotate-token-0123456789
write_collector_config "$TMP/collector.yaml"
cat >> "$TMP/collector.yaml" <<YAML
api_tokens:
  - token: $NOTE
    scope: annotate
YAML
cat "$(dirname "$0")/fixtures/services.yaml" >> "$TMP/collector.yaml"
DB=$TMP/c.db
start_collector "$DB"
H=(-H "Authorization: Bearer $NOTE")
q() { api_get "api/v1/timeline?$1"; }
# lib.sh's api_get and api_code with the token: reads need one once
# api_tokens are set.
API_CURL_ARGS=("${H[@]}")
# note TIME TEXT [EXTRA_JSON]: stores an annotation; prints its id.
note() {
    local code
    code=$(api_fetch "$TMP/note" /api/v1/annotations -X POST "${H[@]}" \
           -H 'Content-Type: application/json' \
           --data-binary "{\"time\":$1,\"text\":\"$2\"${3:+,$3}}")
    assert_eq "$code" 201 "POST $2: $(cat "$TMP/note")"
    jq -r .id "$TMP/note"
}

# The zoo (a day and more ago) opens an incident of checkout: a note tied
# to it belongs to the service without naming it.
zoo_ingest "$URL"
has_incident() {
    curl -sf "${H[@]}" "$URL/api/v1/incidents?service=checkout" |
        jq -e '.count >= 1' > /dev/null
}
wait_until 60 "no incident of checkout" has_incident
INC=$(curl -sf "${H[@]}" "$URL/api/v1/incidents?service=checkout" |
      jq -r '.incidents[0].id')

# 20 probes of cluster test at T0+1..T0+20, and notes around and among
# them: two in the same millisecond as an event, one as the last event.
T0=$(( ($(date +%s) - 600) * 1000 ))
W="from=$T0&to=$((T0 + 1000000))"
"$INGEST_CLIENT" --url "$URL/v1/ingest" --token "$TOKEN" --cluster test \
    --t0 $T0 --seq 1-20 > /dev/null
note $T0 first > /dev/null
note $((T0 + 3)) a3 > /dev/null
note $((T0 + 3)) b3 > /dev/null
note $((T0 + 10)) svc '"service":"checkout"' > /dev/null
note $((T0 + 15)) inc "\"incident\":$INC" > /dev/null
note $((T0 + 20)) last > /dev/null
note $((T0 + 25)) after > /dev/null

# ---- merged by time ----
all=$(q "$W&limit=100")
assert_eq "$(echo "$all" | jq -c '[.events | to_entries[]
    | select(.value.kind == "annotation")
    | "\(.key):\(.value.time_ms - '$T0'):\(.value.fields.text)"]')" \
    '["0:0:first","3:3:b3","4:3:a3","12:10:svc","18:15:inc","24:20:last","26:25:after"]' \
    "annotations among the events"
assert_eq "$(echo "$all" | jq -c '.count')" 27 "every row"
assert_eq "$(echo "$all" | jq -c '[.events[] | select(.kind == "annotation")][3]
    | [.cluster, .region, .node, .epoch, .seq, .target, .clock_offset_ms,
       .corrected_ms - .time_ms, .fields.service, .fields.incident,
       (.received_ms >= .time_ms)]')" \
    '[null,null,null,null,null,null,null,0,"checkout",null,true]' \
    "an annotation's envelope"
assert_eq "$(echo "$all" | jq -c '[.events[] | select(.kind == "annotation")][4]
    | [.fields.service, .fields.incident]')" "[null,$INC]" "a tied note"

# ---- pages of 1 and 3 in both orders, while notes and events arrive ----
# page_all ORDER LIMIT FILE: every page into FILE (one "KEY ROW" line
# each: KEY the order's time, ROW "n ID" or "e CLUSTER NODE EPOCH SEQ");
# after the first page, stores a note and an event inside the window.
# Prints the first page's cursor.
page_all() {
    local order=$1 limit=$2 file=$3 cur="" reply first="" key=time_ms
    [ "$order" = corrected ] && key=corrected_ms
    : > "$file"
    while :; do
        reply=$(q "$W&order=$order&limit=$limit${cur:+&cursor=$cur}")
        cur=$(timeline_page "$reply" '"\(.'$key') " +
            (if .kind == "annotation" then "n \(.fields.id)"
             else "e \(.cluster) \(.node) \(.epoch) \(.seq)" end)' "$file")
        if [ -z "$first" ]; then
            first=$cur
            note $((T0 + 2)) "late $order $limit" > /dev/null
            "$INGEST_CLIENT" --url "$URL/v1/ingest" --token "$TOKEN" \
                --cluster test --node "late-$order-$limit" --t0 $T0 \
                --seq 1-1 > /dev/null
        fi
        [ -n "$cur" ] || break
    done
    echo "$first"
}
for order in agent corrected; do
    for limit in 1 3; do
        f=$TMP/$order.$limit
        cur=$(page_all $order $limit "$f")
        max_id=$(echo "$cur" | cut -d. -f2)
        max_note=$(echo "$cur" | cut -d. -f5 | tr -d n)
        what="$order, limit $limit"
        assert_eq "$(grep -c ' e ' "$f")" \
            "$(db_events_count "$DB" "id <= $max_id
                AND unix_ms >= $T0 AND unix_ms < $((T0 + 1000000))")" \
            "$what: every event"
        assert_eq "$(grep ' n ' "$f" | cut -d' ' -f3 | sort -n | tr '\n' ' ')" \
            "$(db_sql "$DB" "SELECT id FROM annotations WHERE id <= $max_note
                AND unix_ms >= $T0 AND unix_ms < $((T0 + 1000000))
                ORDER BY id" | tr '\n' ' ')" "$what: every note"
        assert_eq "$(cut -d' ' -f2- "$f" | sort | uniq -d | wc -l)" 0 \
            "$what: nothing twice"
        assert_eq "$(grep -c "late-$order-$limit" "$f")" 0 \
            "$what: the event stored after the first page"
        late=$(db_sql "$DB" "SELECT id FROM annotations
                              WHERE text = 'late $order $limit'")
        assert_eq "$(grep -c " n $late\$" "$f")" 0 \
            "$what: the note stored after the first page"
        cut -d' ' -f1 "$f" | sort -n -c || fail "$what: not in time order"
    done
done

# ---- filters ----
notes=$(db_sql "$DB" "SELECT count(*) FROM annotations
                       WHERE unix_ms >= $T0 AND unix_ms < $((T0 + 1000000))")
assert_eq "$(q "$W&kind=annotation&limit=100" |
    jq -c '[.count, ([.events[].kind] | unique)]')" \
    "[$notes,[\"annotation\"]]" "kind=annotation"
assert_eq "$(q "$W&kind=probe&limit=100" |
    jq -c '[.events[] | select(.kind == "annotation")] | length')" 0 \
    "kind=probe: no notes"
assert_eq "$(q "$W&kind=probe,annotation&limit=100" |
    jq -c '[.events[].kind] | unique')" '["annotation","probe"]' \
    "kind=probe,annotation"
for f in cluster=test region=test-region; do
    assert_eq "$(q "$W&$f&limit=100" |
        jq -c '[.events[] | select(.kind == "annotation")] | length')" 0 \
        "$f: no notes"
done
assert_eq "$(q "$W&service=checkout&limit=100" |
    jq -c '[.events[] | select(.kind == "annotation") | .fields.text]')" \
    '["svc","inc"]' "service=checkout: its note and its incident's"
assert_eq "$(q "$W&service=kube&limit=100" |
    jq -c '[.events[] | select(.kind == "annotation")] | length')" 0 \
    "service=kube: none"
assert_eq "$(api_code "api/v1/timeline?$W&kind=annotaton")" 400 \
    "a misspelt kind"
jq -e '.detail | contains("close: \"annotation\"")' "$TMP/body" \
    > /dev/null || fail "annotation not offered: $(cat "$TMP/body")"

# ---- CSV and Markdown ----
csv=$TMP/notes.csv
code=$(api_fetch "$csv" "/api/v1/timeline?$W&limit=5&format=csv" "${H[@]}")
assert_eq "$code" 200 "csv status"
python3 - "$csv" <<'PY' || fail "csv: $(cat "$csv")"
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline='')))
assert len(rows) == 6, rows
note = rows[1]
assert note[2:7] == ['', '', '', 'annotation', ''], note
assert note[0] == note[1], note
assert 'text=first' in note[7], note[7]
assert rows[2][5] == 'probe', rows[2]
PY
md=$TMP/notes.md
code=$(api_fetch "$md" "/api/v1/timeline?$W&kind=annotation&service=checkout&format=md" "${H[@]}")
assert_eq "$code" 200 "md status"
assert_eq "$(grep -c '|  |  |  | annotation |  | ' "$md")" 2 "md: two note rows"
grep -q 'text=svc service=checkout' "$md" || fail "md summary: $(cat "$md")"

# ---- sextant-collector timeline (the file, or the PostgreSQL database
# through --config) ----
store_args "$DB"
"$COLLECTOR" timeline "${STORE_ARGS[@]}" --from $T0 --to $((T0 + 1000000)) \
    --kind annotation > "$TMP/cli.json" || fail "timeline command"
assert_eq "$(jq '.events | length' "$TMP/cli.json")" "$notes" "cli: every note"
"$COLLECTOR" timeline "${STORE_ARGS[@]}" --from $T0 --to $((T0 + 30)) \
    --format csv > "$csv" || fail "cli csv"
grep -q ',annotation,.*text=after' "$csv" || fail "cli csv: $(cat "$csv")"

stop_collector
echo "collector_timeline_annotations: all passed"
