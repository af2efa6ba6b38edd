# collector_replay.sh -- at least once on the wire, exactly once in the
# store: a replayed batch stores nothing twice and gets the same Ack; a
# jump forward in seq is stored as a visible gap event.
. "$(dirname "$0")/lib.sh"

DB=$TMP/c.db
start_collector "$DB"
T0=$(( $(date +%s) * 1000 - 60000 ))
send() { "$INGEST_CLIENT" --url "$URL/v1/ingest" --token "$TOKEN" \
             --t0 "$T0" "$@"; }

assert_eq "$(send --seq 1-10)" "200 10" "first send"
events() { db_sql "$DB" "SELECT * FROM events_full ORDER BY id"; }
before=$(events | sha256sum)
assert_eq "$(send --seq 1-10)" "200 10" "replay gets the same ack"
assert_eq "$(events | sha256sum)" "$before" "replay stored nothing"
n=$(db_sql "$DB" "SELECT count(*) FROM events_full WHERE kind = 'probe'")
assert_eq "$n" 10 "probe events after replay"

# A batch that overlaps the watermark stores only the new part.
assert_eq "$(send --seq 5-12)" "200 12" "overlap"
assert_eq "$(db_sql "$DB" "SELECT count(*), count(DISTINCT seq)
    FROM events_full WHERE kind = 'probe'")" "12|12" "overlap stored once"

# 13, 14 lost on the agent side: 15..20 makes a gap event for 13..14.
assert_eq "$(send --seq 15-20)" "200 20" "jump forward"
gap=$(db_sql "$DB" "SELECT json_extract(data, '$.from_seq') || '-' ||
    json_extract(data, '$.to_seq') || ':' || json_extract(data, '$.count')
    FROM events_full WHERE kind = 'gap'" \
    "SELECT (data::json->>'from_seq') || '-' || (data::json->>'to_seq') ||
    ':' || (data::json->>'count') FROM events_full WHERE kind = 'gap'")
assert_eq "$gap" "13-14:2" "gap event"
assert_eq "$(send --seq 15-20)" "200 20" "replay after the gap"
assert_eq "$(db_sql "$DB" \
    "SELECT count(*) FROM events_full WHERE kind = 'gap'")" \
    1 "gap stored once"

# The issue's own example, on a fresh agent: 1..10 then 15..20 gives a gap
# for 11..14, visible in the timeline API too.
assert_eq "$(send --node n2 --seq 1-10)" "200 10" "n2 first"
assert_eq "$(send --node n2 --seq 15-20)" "200 20" "n2 jump"
api_get "api/v1/timeline?from=$T0&cluster=test" > "$TMP/tl.json"
got=$(jq -r '.events[] | select(.node == "n2" and .kind == "gap")
    | "\(.fields.from_seq)-\(.fields.to_seq):\(.fields.count)"' "$TMP/tl.json")
assert_eq "$got" "11-14:4" "gap in the timeline"

# Another epoch of the same node is another stream: seq starts over.
assert_eq "$(send --epoch 7 --seq 1-3)" "200 3" "new epoch"
assert_eq "$(db_sql "$DB" "SELECT count(*) FROM agents")" 3 "agent rows"
stop_collector
echo "collector_replay: all passed"
