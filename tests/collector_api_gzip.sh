# collector_api_gzip.sh -- the API's GET replies in gzip: for status, the
# timeline (json, csv, md) and an incident's export (json, csv, md), a
# client taking gzip gets Content-Encoding: gzip whose bytes gunzip
# (curl --compressed) to exactly the identity reply's, fewer of them, a
# strong ETag of its own (the identity one's hash + "-gz"), Vary:
# Accept-Encoding on both; "gzip;q=0", "identity" and no Accept-Encoding
# get identity; If-None-Match with either ETag is a 304 carrying the one
# that matched; small replies, errors and ingest replies stay identity.
# Decoded bodies are checked against docs/openapi.yaml.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures/store-v5/zoo.sh"

# fetch PATH [CURL_ARGS...]: GET $URL$PATH into $TMP/b (headers in $TMP/h,
# CR-stripped); prints the status.
fetch() {
    local path=$1
    shift
    rm -f "$TMP/b"
    curl -sS --max-time 30 -o "$TMP/b" -D "$TMP/h.raw" -w '%{http_code}' \
        "$@" "$URL$path" || fail "curl $path"
    tr -d '\r' < "$TMP/h.raw" > "$TMP/h"
    [ -e "$TMP/b" ] || : > "$TMP/b"
}

# header NAME: the value of header NAME in $TMP/h ("" if absent).
header() {
    grep -i "^$1: " "$TMP/h" | tail -n 1 | cut -d' ' -f2- || true
}

# identity_of PATH AE: GET PATH with Accept-Encoding AE ("-": none) must
# be the identity reply $TMP/id with ETag $ID_ETAG.
identity_of() {
    local args=()
    [ "$2" = - ] || args=(-H "Accept-Encoding: $2")
    assert_eq "$(fetch "$1" "${args[@]}")" 200 "$1 ($2)"
    assert_eq "$(header Content-Encoding)" "" "$1 ($2) encoding"
    assert_eq "$(header ETag)" "$ID_ETAG" "$1 ($2) ETag"
    cmp -s "$TMP/b" "$TMP/id" || fail "$1 ($2): not the identity bytes"
}

# not_modified PATH ETAG WANT [CURL_ARGS...]: If-None-Match ETAG is a 304
# with ETag WANT, Vary, and no body.
not_modified() {
    local path=$1 inm=$2 want=$3
    shift 3
    assert_eq "$(fetch "$path" -H "If-None-Match: $inm" "$@")" 304 \
        "$path If-None-Match $inm $*"
    [ ! -s "$TMP/b" ] || fail "$path: 304 with a body"
    assert_eq "$(header ETag)" "$want" "$path 304 ETag"
    assert_eq "$(header Vary)" Accept-Encoding "$path 304 Vary"
    assert_eq "$(header Content-Encoding)" "" "$path 304 encoding"
}

# check PATH: the gzip and identity representations of GET PATH, which
# must be at least 1 KiB.
check() {
    local path=$1 gz_etag gz_len
    assert_eq "$(fetch "$path")" 200 "GET $path"
    cp "$TMP/b" "$TMP/id"
    api_valid GET "$path" 200 "$TMP/id" "$(header Content-Type | cut -d';' -f1)"
    ID_ETAG=$(header ETag)
    [[ $ID_ETAG =~ ^\"[0-9a-f]{16}\"$ ]] || fail "$path ETag '$ID_ETAG'"
    assert_eq "$(header Vary)" Accept-Encoding "$path identity Vary"
    [ "$(wc -c < "$TMP/id")" -ge 1024 ] ||
        fail "$path: $(wc -c < "$TMP/id") bytes, too few for gzip: $(cat "$TMP/id")"
    # What a browser sends; curl decodes, the bytes must be the same.
    assert_eq "$(fetch "$path" --compressed \
                 -H 'Accept-Encoding: gzip, deflate, br')" 200 "$path gzip"
    assert_eq "$(header Content-Encoding)" gzip "$path Content-Encoding"
    assert_eq "$(header Vary)" Accept-Encoding "$path gzip Vary"
    gz_etag=$(header ETag)
    assert_eq "$gz_etag" "${ID_ETAG%\"}-gz\"" "$path gzip ETag"
    cmp -s "$TMP/b" "$TMP/id" || fail "$path: gzip decodes to other bytes"
    # On the wire: a gzip stream, smaller, the same Content-Type.
    fetch "$path" -H 'Accept-Encoding: gzip' > /dev/null
    gz_len=$(wc -c < "$TMP/b")
    gunzip -c < "$TMP/b" | cmp -s - "$TMP/id" ||
        fail "$path: the raw body does not gunzip to the identity bytes"
    [ "$gz_len" -lt "$(wc -c < "$TMP/id")" ] ||
        fail "$path: gzip $gz_len bytes, no fewer than identity"
    identity_of "$path" 'gzip;q=0'
    identity_of "$path" 'identity'
    identity_of "$path" 'br, *;q=0'
    identity_of "$path" -
    # Each ETag for its own representation, and either for the other.
    not_modified "$path" "$ID_ETAG" "$ID_ETAG"
    not_modified "$path" "$gz_etag" "$gz_etag" -H 'Accept-Encoding: gzip'
    not_modified "$path" "W/$gz_etag" "$gz_etag"
    not_modified "$path" "$ID_ETAG" "$ID_ETAG" -H 'Accept-Encoding: gzip'
    not_modified "$path" "\"0000000000000000\", $gz_etag" "$gz_etag" \
        -H 'Accept-Encoding: gzip'
    assert_eq "$(fetch "$path" -H 'Accept-Encoding: gzip' \
                 -H 'If-None-Match: "0000000000000000-gz"')" 200 \
        "$path with another -gz ETag"
    echo "ok $path: $(wc -c < "$TMP/id") bytes, $gz_len in gzip"
}

# etag_of PATH: the identity ETag of GET PATH now.
etag_of() {
    curl -sS --max-time 30 -o /dev/null -D - "$URL$1" | tr -d '\r' |
        grep -i '^etag: ' | cut -d' ' -f2-
}

# stable_check PATH: check PATH. Some replies move with the clock (the
# status's 24 h uptime windows, an open incident's stale agents), and a
# change between the check's GETs makes their comparison meaningless: a
# failed check whose identity ETag changed meanwhile runs again, 5 times
# at most; a failure on an unchanged reply is the test's failure.
stable_check() {
    local before after
    for _ in 1 2 3 4 5; do
        before=$(etag_of "$1")
        if (check "$1") 2> "$TMP/check.err"; then
            return 0
        fi
        after=$(etag_of "$1")
        if [ "$before" = "$after" ]; then
            cat "$TMP/check.err" >&2
            exit 1
        fi
        echo "again $1: it changed during the check ($before, $after)"
    done
    fail "$1 changed during each of 5 checks"
}

write_collector_config "$TMP/collector.yaml"
cat "$(dirname "$0")/fixtures/services.yaml" >> "$TMP/collector.yaml"
# The zoo's events are a year old: retention's first pass (a minute in)
# would empty the incident's timeline while a slow build still checks it.
cat >> "$TMP/collector.yaml" <<YAML
retention:
  raw: 0
  minute_rollups: 0
  hour_rollups: 0
YAML
start_collector "$TMP/c.db"
zoo_ingest "$URL"
out=$("$INGEST_CLIENT" --url "$URL/v1/ingest" --token "$TOKEN" \
      --node gz-1 --seq 1-40)
assert_eq "$out" "200 40" "ingest"

stable_check /api/v1/status
for f in json csv md; do
    stable_check "/api/v1/timeline?format=$f&limit=1000"
done

# Below 1 KiB: identity whatever the client takes, the plain ETag.
assert_eq "$(fetch '/api/v1/incidents?open=false&service=kube' \
             -H 'Accept-Encoding: gzip')" 200 "a small reply"
[ "$(wc -c < "$TMP/b")" -lt 1024 ] || fail "the small reply is not small"
assert_eq "$(header Content-Encoding)" "" "small reply encoding"
[[ $(header ETag) =~ ^\"[0-9a-f]{16}\"$ ]] || fail "small reply ETag"
assert_eq "$(header Vary)" Accept-Encoding "small reply Vary"
# Errors and ingest: identity.
assert_eq "$(fetch '/api/v1/timeline?nope=1' -H 'Accept-Encoding: gzip')" \
    400 "a bad parameter"
assert_eq "$(header Content-Encoding)" "" "error encoding"
jq -e '.error' "$TMP/b" > /dev/null || fail "error body: $(cat "$TMP/b")"
"$EVENT_ZOO" "$TMP/zoo.bin" zoo-a 1 1764000000000
assert_eq "$(fetch /v1/ingest -H 'Accept-Encoding: gzip' \
             -H 'Content-Type: application/x-protobuf' \
             -H 'Content-Encoding: deflate' \
             -H "Authorization: Bearer $TOKEN" \
             --data-binary @"$TMP/zoo.bin")" 200 "ingest with gzip"
assert_eq "$(header Content-Encoding)" "" "ingest reply encoding"
echo "ok small replies, errors and ingest stay identity"

stop_collector
grep -E '^[^ ]+ error ' "$TMP/collector.log" &&
    fail "errors in the collector's log"

# An incident's export from a closed incident (the active-passive failover
# scenario, its events all in the past): a closed incident no longer
# changes, so its two representations can be compared. The zoo's incident
# above stays open, and an open incident moves with the clock (agents go
# stale), its ETag with it.
closed_incident() {
    curl -sf "$URL/api/v1/incidents" > "$TMP/incidents.json" || return 1
    jq -e '.count == 1 and (.incidents[0].open | not)' \
        "$TMP/incidents.json" > /dev/null
}
cp "$SEXTANT_SRC/tests/scenarios/collector.yaml" "$TMP/scn.yaml"
COLLECTOR_CONFIG=$TMP/scn.yaml COLLECTOR_LOG=$TMP/scn-collector.log \
    start_collector "$TMP/scn.db"
"$SCENARIO_FEED" --url "$URL" \
    --scn "$SEXTANT_SRC/tests/scenarios/ap_failover.scn" \
    > "$TMP/feed.log" 2>&1 || fail "feeding the failover: $(cat "$TMP/feed.log")"
wait_until 60 "the failover's incident is not closed" closed_incident
ID=$(jq -r '.incidents[0].id' "$TMP/incidents.json")
for f in json csv md; do
    stable_check "/api/v1/incidents/$ID/export?format=$f"
done
stop_collector
grep -E '^[^ ]+ error ' "$TMP/scn-collector.log" &&
    fail "errors in the scenario collector's log"
echo "collector_api_gzip: all passed"
