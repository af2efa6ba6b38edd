# pg_api_parity.sh -- the queries on PostgreSQL answer what SQLite's
# answer, byte for byte: the same batches (the event zoo: every kind and
# probe field, texts with quotes, control characters and non-ASCII, a
# gap, a drop report, two clusters, metric samples; and an annotation)
# go to a collector on SQLite and one on PostgreSQL, then each reply is
# compared: the timeline (JSON, CSV, Markdown; both orders; filters by
# cluster, region, target, kinds and service; paging through cursors),
# an unknown name's suggestions, /clusters, /latency and /status's
# targets. Only times of receipt (received_ms, an agent's first and last
# batch, a drop report's arrival) are left out: the two collectors
# received the batches at different moments. The zoo's send times are a
# day old, so no clock offset is learnt and corrected times are fixed.
# Uses the ctest run's PostgreSQL (SEXTANT_TEST_PG_DIR), or starts one.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/fixtures/store-v5/zoo.sh"

OWN_PG=
if ! on_pg; then
    OWN_PG=$(mktemp -d /tmp/pg_api_parity.XXXXXX)
    PG_DIR=$OWN_PG
fi
stop_all() {
    cleanup
    if [ -n "$OWN_PG" ]; then
        bash "$PG_SERVER" stop "$OWN_PG" > /dev/null 2>&1 || true
        rm -rf "$OWN_PG"
    fi
}
trap stop_all EXIT
[ -z "$OWN_PG" ] || bash "$PG_SERVER" start "$OWN_PG" > /dev/null

# The same config for both: the test topology, nothing expires; reads
# and notes with one token.
NOTE=annotate-token-0123456789
API_CURL_ARGS=(-H "Authorization: Bearer $NOTE")
for b in sq pg; do
    write_collector_config "$TMP/$b.yaml"
    printf 'api_tokens:\n  - token: %s\n    scope: annotate\n' "$NOTE" \
        >> "$TMP/$b.yaml"
    cat "$(dirname "$0")/fixtures/services.yaml" >> "$TMP/$b.yaml"
    printf 'retention:\n  raw: 0\n  minute_rollups: 0\n  hour_rollups: 0\n' \
        >> "$TMP/$b.yaml"
done
PG_KEEP=$PG_DIR
PG_DIR='' COLLECTOR_CONFIG=$TMP/sq.yaml COLLECTOR_LOG=$TMP/sq.log \
    start_collector "$TMP/sq.db"
SQ=$URL
PG_DIR=$PG_KEEP COLLECTOR_CONFIG=$TMP/pg.yaml COLLECTOR_LOG=$TMP/pg.log \
    start_collector "$TMP/pg.db"
PGU=$URL
grep -q 'backend postgres\|postgres' "$TMP/pg.log" ||
    fail "the second collector is not on PostgreSQL: $(cat "$TMP/pg.log")"

# Each batch is acked after its commit: once fed, both hold every row.
for u in "$SQ" "$PGU"; do
    zoo_ingest "$u"
    code=$(curl -sS -o "$TMP/note" -w '%{http_code}' -X POST \
           "${API_CURL_ARGS[@]}" -H 'Content-Type: application/json' \
           --data-binary '{"time":1764000000100,"text":"fail \"over\" \\ é","service":"checkout"}' \
           "$u/api/v1/annotations")
    assert_eq "$code" 201 "annotation on $u: $(cat "$TMP/note")"
done

# norm PATH FILE: FILE's reply as compared: JSON without its times of
# receipt (jq keeps the bytes of every other value); tables as they are.
norm() {
    case $1 in
    *format=csv*|*format=md*) cat "$2" ;;
    /api/v1/timeline*) jq -c 'if .events then del(.events[].received_ms)
                               else . end' "$2" ;;
    /api/v1/clusters*) jq -c '.clusters[] |= (del(.last_seen) |
        .regions[].agents[] |= (del(.first_seen, .last_seen) |
            if .last_drop then del(.last_drop.reported) else . end))' "$2" ;;
    /api/v1/status*) jq -c .targets "$2" ;;
    *) cat "$2" ;;
    esac
}

# same PATH: GET PATH on both, the same status and (normalized) bytes;
# prints the SQLite side's reply into $TMP/last.
same() {
    local b u code
    for b in sq pg; do
        u=$SQ
        [ $b = sq ] || u=$PGU
        code=$(curl -sS -o "$TMP/$b.raw" -w '%{http_code}' \
               "${API_CURL_ARGS[@]}" "$u$1") ||
            fail "GET $1 on $b"
        echo "$code" > "$TMP/$b.out"
        norm "$1" "$TMP/$b.raw" >> "$TMP/$b.out" ||
            fail "GET $1 on $b: not JSON: $(head -c 300 "$TMP/$b.raw")"
    done
    diff "$TMP/sq.out" "$TMP/pg.out" > "$TMP/diff" ||
        fail "GET $1: SQLite and PostgreSQL differ:
$(head -c 3000 "$TMP/diff")"
    cp "$TMP/sq.raw" "$TMP/last"
}

# pages PATH: every page of PATH through the cursors, the same on both
# (each side follows its own cursors, which must be equal too).
pages() {
    local path=$1 next n=0
    while :; do
        same "$path"
        n=$((n + 1))
        next=$(jq -r '.next // empty' "$TMP/last")
        [ -n "$next" ] || break
        [ $n -lt 100 ] || fail "$1: over 100 pages"
        path="$1&cursor=$next"
    done
    [ $n -ge 3 ] || fail "$1: $n pages, the paging is not exercised"
}

W='from=1763990000000&to=1764100000000'
TL=/api/v1/timeline?$W
for order in agent corrected; do
    for f in json csv md; do
        same "$TL&order=$order&format=$f&limit=1000"
    done
    pages "$TL&order=$order&limit=16"
    pages "$TL&order=$order&limit=5&service=checkout"
    same "$TL&order=$order&limit=1000&kind=dns,failover,marker,annotation"
    same "$TL&order=$order&limit=1000&kind=probe&cluster=other"
    same "$TL&order=$order&limit=1000&target=checkout-api&format=csv"
    same "$TL&order=$order&limit=1000&region=eu-west-1&format=md"
done
same "/api/v1/timeline?$W&limit=1000"
n=$(jq .count "$TMP/last")
[ "$n" -ge 40 ] || fail "the timeline holds $n rows, too few to compare"
jq -e '[.events[].kind] | index("annotation") and index("gap") and
       index("drop") and index("dns")' "$TMP/last" > /dev/null ||
    fail "the timeline lacks a kind it should compare: $(jq -c \
         '[.events[].kind] | unique' "$TMP/last")"
# An unknown name is refused with the names the store knows.
same "$TL&target=no-such-target"
same "$TL&cluster=no-such-cluster"
same "$TL&kind=no-such-kind"
same /api/v1/clusters
for q in "target=checkout-api" "target=checkout-api&cluster=other" \
         "service=checkout" "target=db-tcp&step=hour"; do
    same "/api/v1/latency?$W&$q"
done
jq -e '.points | length > 0' "$TMP/last" > /dev/null ||
    fail "latency has no points to compare: $(cat "$TMP/last")"
same /api/v1/status
echo "ok: $n timeline rows and every reply the same on both backends"
