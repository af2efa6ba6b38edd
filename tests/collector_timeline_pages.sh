# collector_timeline_pages.sh -- GET /api/v1/timeline's cursor, formats
# and region filter, and sextant-collector timeline on the store a running
# collector writes (its file, or its PostgreSQL database by --config):
# paging through a window gives each event stored
# before the first page exactly once, in both orders, while a second
# client keeps storing events inside the window; a bad cursor is a 400;
# format=csv parses (python3 csv) and format=md is a table; RFC 3339
# times with offsets; the command pages through a window larger than one
# page and exits 0/1/2 with one line. Every JSON reply is checked against
# docs/openapi.yaml.
. "$(dirname "$0")/lib.sh"

DB=$TMP/c.db
start_collector "$DB"
# Ten minutes ago on a second: retention (14 days) must not take the
# events while the test reads them.
T0=$(( ($(date +%s) - 600) * 1000 ))
# rfc MS OFFSET_MINUTES [t]: MS as RFC 3339 with that offset (t: lower
# case t and z).
rfc() {
    python3 - "$@" <<'PY'
import datetime as d, sys
ms, off = int(sys.argv[1]), int(sys.argv[2])
tz = d.timezone(d.timedelta(minutes=off))
s = d.datetime.fromtimestamp(ms / 1000, tz).isoformat(timespec='milliseconds')
s = s.replace('+00:00', 'Z')
print(s.lower() if len(sys.argv) > 3 else s)
PY
}
send() { "$INGEST_CLIENT" --url "$URL/v1/ingest" "$@" > /dev/null; }
# 12000 events of cluster test (region test-region) at T0+1..T0+12000
# (more than a page of the command's), and 5 of cluster other in region
# eu-west-1.
for lo in $(seq 1 1000 12000); do
    send --token "$TOKEN" --cluster test --t0 $T0 --seq "$lo-$((lo + 999))"
done
send --token "$OTHER_TOKEN" --cluster other --node o1 --region eu-west-1 \
    --t0 $T0 --seq 1-5 --target api
W="from=$T0&to=$((T0 + 1000000))"
q() { api_get "api/v1/timeline?$1"; }

# ---- region, and times with offsets ----
assert_eq "$(q "$W&region=eu-west-1" | jq -c '[.count, ([.events[].cluster] | unique)]')" \
    '[5,["other"]]' "region filter"
assert_eq "$(q "$W&region=nowhere" | jq .count)" 0 "unknown region: nothing"
# T0+4 written with +01:00, and with -05:30 in lower case.
from=$(rfc $((T0 + 4)) 60)
[[ $from == *+01:00 ]] || fail "rfc: $from"
assert_eq "$(q "from=${from/+/%2B}&to=$(rfc $((T0 + 10)) 0)&region=test-region" |
    jq -c '[.events[].time_ms - '$T0']')" "[4,5,6,7,8,9]" "offset +01:00"
assert_eq "$(q "from=$(rfc $((T0 + 4)) -330 t)&to=$(rfc $((T0 + 6)) 0 t)&region=test-region" |
    jq -c '[.events[].time_ms - '$T0']')" "[4,5]" "offset -05:30, lower case"
assert_eq "$(api_code "api/v1/timeline?from=${from/+01:00/%2B0100}")" \
    400 "offset without a colon"

# ---- cursor ----
first=$(q "$W&limit=3")
assert_eq "$(echo "$first" | jq -c '[.count, .truncated, (.next | type)]')" \
    '[3,true,"string"]' "a page with more after it"
next=$(echo "$first" | jq -r .next)
assert_eq "$(q "$W&limit=3&cursor=$next" | jq -c '[.events[].time_ms - '$T0']')" \
    "[2,3,3]" "the next page goes on after the last event given"
last=$(q "$W&limit=3&region=eu-west-1&cursor=$(q "$W&limit=3&region=eu-west-1" | jq -r .next)")
assert_eq "$(echo "$last" | jq -c '[.count, .truncated, .next]')" \
    '[2,false,null]' "the last page: next null"
for bad in "x" "a.1.2" "a.1.2.3.4" "a.-1.2.3" "a.1.2.x" "c.1.2.3" \
           "a.99999999999999999999.1.1"; do
    assert_eq "$(api_code "api/v1/timeline?$W&cursor=$bad")" 400 \
        "status for cursor $bad"
    assert_eq "$(jq -r .detail "$TMP/body")" \
        "cursor: not a cursor of this timeline in order=agent" \
        "detail for cursor $bad"
done
assert_eq "$(api_code "api/v1/timeline?$W&order=corrected&cursor=$next")" \
    400 "a cursor of the other order"

# Pages through the window in ORDER with LIMIT per page into FILE (one
# "cluster node epoch seq" per line); prints the first page's cursor.
page_all() {
    local order=$1 limit=$2 file=$3 cur="" reply first=""
    : > "$file"
    while :; do
        reply=$(q "$W&order=$order&limit=$limit${cur:+&cursor=$cur}")
        cur=$(timeline_page "$reply" \
              '"\(.cluster) \(.node) \(.epoch) \(.seq)"' "$file")
        [ -n "$first" ] || first=$cur
        [ -n "$cur" ] || break
    done
    echo "$first"
}

# While we page, a second client keeps storing events inside the window
# (cluster other, at T0+1 on: among the events already there, before and
# after the page being read); we start paging once it has stored some.
for order in agent corrected; do
    "$INGEST_CLIENT" --url "$URL/v1/ingest" --token "$OTHER_TOKEN" \
        --cluster other --node "o-$order" --t0 $T0 \
        --batches 1000000 --batch-size 2 \
        > "$TMP/loader.out" 2> "$TMP/loader.log" &
    LOADER=$!
    PIDS+=($LOADER)
    wait_for "$TMP/loader.out" '^200 '
    cur=$(page_all $order 2500 "$TMP/$order.txt")
    kill "$LOADER"
    wait "$LOADER" 2>/dev/null || true
    # The cursor holds the newest id at the first page: every event with
    # an id up to it in the window, each once, and no other.
    max_id=$(echo "$cur" | cut -d. -f2)
    want=$(db_events_count "$DB" "id <= $max_id
                          AND unix_ms >= $T0 AND unix_ms < $((T0 + 1000000))")
    assert_eq "$(wc -l < "$TMP/$order.txt")" "$want" "$order: every event"
    assert_eq "$(sort "$TMP/$order.txt" | uniq -d | wc -l)" 0 \
        "$order: no event twice"
    later=$(db_events_count "$DB" "id > $max_id
                           AND unix_ms >= $T0 AND unix_ms < $((T0 + 1000000))")
    [ "$later" -gt 0 ] || fail "$order: nothing was stored while paging"
done

# ---- CSV and Markdown ----
csv=$TMP/page.csv
code=$(curl -sS -D "$TMP/head.txt" -o "$csv" -w '%{http_code}' \
       "$URL/api/v1/timeline?$W&region=eu-west-1&limit=4&format=csv")
assert_eq "$code" 200 "csv status"
api_valid GET "/api/v1/timeline?$W&region=eu-west-1&limit=4&format=csv" 200 "$csv" text/csv
grep -qi '^Content-Type: text/csv' "$TMP/head.txt" || fail "csv content type"
cur=$(sed -n 's/^X-Next-Cursor: \([^\r]*\).*/\1/Ip' "$TMP/head.txt")
[ -n "$cur" ] || fail "csv: no X-Next-Cursor: $(cat "$TMP/head.txt")"
python3 - "$csv" "$(rfc $((T0 + 1)) 0)" <<'PY' || fail "csv: $(cat "$csv")"
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline='')))
assert rows[0] == ['time', 'corrected_time', 'cluster', 'region', 'node',
                   'kind', 'target', 'summary'], rows[0]
assert len(rows) == 5, rows
assert rows[1][:7] == [sys.argv[2], rows[1][1], 'other',
                       'eu-west-1', 'o1', 'probe', 'api'], rows[1]
assert 'ok=true' in rows[1][7] and 'status=200' in rows[1][7], rows[1][7]
PY
# The cursor of a csv page continues it: the fifth event, and the end.
curl -sS -D "$TMP/head2.txt" -o "$csv" \
    "$URL/api/v1/timeline?$W&region=eu-west-1&limit=4&format=csv&cursor=$cur"
assert_eq "$(python3 -c 'import csv,sys; r=list(csv.reader(open(sys.argv[1]))); print(len(r), r[1][0])' "$csv")" \
    "2 $(rfc $((T0 + 5)) 0)" "csv next page"
grep -qi '^X-Next-Cursor' "$TMP/head2.txt" && fail "csv last page has a next"
md=$TMP/page.md
curl -sS -D "$TMP/head.txt" -o "$md" \
    "$URL/api/v1/timeline?$W&region=eu-west-1&limit=2&format=md"
grep -qi '^Content-Type: text/markdown' "$TMP/head.txt" || fail "md content type"
api_valid GET "/api/v1/timeline?$W&region=eu-west-1&limit=2&format=md" 200 "$md" text/markdown
assert_eq "$(head -n 2 "$md")" \
    "$(printf '%s\n' '| time | corrected_time | cluster | region | node | kind | target | summary |' \
                      '| --- | --- | --- | --- | --- | --- | --- | --- |')" "md header"
assert_eq "$(sed -n 3p "$md" | cut -d'|' -f2,4,5,6,7,8)" \
    " $(rfc $((T0 + 1)) 0) | other | eu-west-1 | o1 | probe | api " "md row"
assert_eq "$(wc -l < "$md")" 4 "md: header, separator, two rows"
assert_eq "$(api_code "api/v1/timeline?$W&format=xml")" 400 "format=xml"

# ---- sextant-collector timeline on the live collector's store ----
# (the file, or in PostgreSQL mode the database through --config)
store_args "$DB"
TL() { "$COLLECTOR" timeline "${STORE_ARGS[@]}" "$@"; }
# More than one page (10000 events each): every event of the window.
TL --from $T0 --to $((T0 + 1000000)) --cluster test > "$TMP/cli.json" \
    2> "$TMP/cli.log" || fail "timeline command: $(cat "$TMP/cli.log")"
assert_eq "$(jq '.events | length' "$TMP/cli.json")" 12000 "cli: every event"
assert_eq "$(jq -r '.events[] | "\(.cluster) \(.node) \(.seq)"' "$TMP/cli.json" |
    sort | uniq -d | wc -l)" 0 "cli: each once"
assert_eq "$(jq -c '[.events[].time_ms] | . == sort' "$TMP/cli.json")" true \
    "cli: in time order"
TL --from "$(rfc $T0 60)" --to $((T0 + 1000000)) --region eu-west-1 \
    --format csv > "$csv" || fail "cli csv"
assert_eq "$(python3 -c 'import csv,sys; r=list(csv.reader(open(sys.argv[1]))); print(len(r), r[0][0], r[-1][2])' "$csv")" \
    "6 time other" "cli csv: header and 5 rows"
TL --from $T0 --to $((T0 + 4)) --cluster test --format md > "$md" || fail "cli md"
assert_eq "$(wc -l < "$md")" 5 "cli md: header, separator, three rows"
TL --from $T0 --to $((T0 + 100)) --kind state > "$TMP/none.json" || fail "cli none"
assert_eq "$(jq -c . "$TMP/none.json")" '{"events":[]}' "cli: an empty window"

# Exit 2: bad usage, one line; exit 1: the file cannot be read.
usage_err() {
    local rc=0
    TL "$@" > /dev/null 2> "$TMP/err.txt" || rc=$?
    assert_eq "$rc" 2 "exit for $*"
    assert_eq "$(wc -l < "$TMP/err.txt")" 1 "one line for $*"
}
usage_err --from $T0
usage_err --from yesterday --to $T0
usage_err --from $T0 --to $T0
usage_err --from $T0 --to $((T0 + 1)) --format xml
usage_err --from $T0 --to $((T0 + 1)) --service shop
usage_err --from $T0 --to $((T0 + 1)) --bogus
if on_pg; then
    # A database no collector has made its schema in: exit 1, one line,
    # and the command made none.
    store_args "$TMP/empty.db"
    rc=0
    "$COLLECTOR" timeline "${STORE_ARGS[@]}" --from $T0 --to $((T0 + 1)) \
        > /dev/null 2> "$TMP/err.txt" || rc=$?
    assert_eq "$rc" 1 "exit for a database without the schema"
    assert_eq "$(wc -l < "$TMP/err.txt")" 1 "one line for no schema"
    grep -q 'no Sextant schema' "$TMP/err.txt" ||
        fail "no schema not said: $(cat "$TMP/err.txt")"
    assert_eq "$(db_sql "$TMP/empty.db" "SELECT count(*) FROM pg_tables
        WHERE schemaname = 'public'")" 0 "tables made by a read-only command"
else
    rc=0
    "$COLLECTOR" timeline --db "$TMP/missing.db" --from $T0 \
        --to $((T0 + 1)) > /dev/null 2> "$TMP/err.txt" || rc=$?
    assert_eq "$rc" 1 "exit for a missing file"
    assert_eq "$(wc -l < "$TMP/err.txt")" 1 "one line for a missing file"
    sqlite3 "$TMP/other.db" "CREATE TABLE t (x); PRAGMA user_version = 99;"
    rc=0
    "$COLLECTOR" timeline --db "$TMP/other.db" --from $T0 --to $((T0 + 1)) \
        > /dev/null 2> "$TMP/err.txt" || rc=$?
    assert_eq "$rc" 1 "exit for another schema"
    grep -q 'schema 99' "$TMP/err.txt" ||
        fail "schema not named: $(cat "$TMP/err.txt")"
    [ ! -e "$TMP/missing.db" ] || fail "a read-only command created a file"
fi

stop_collector
echo "collector_timeline_pages: all passed"
