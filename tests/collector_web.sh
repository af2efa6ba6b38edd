# collector_web.sh -- the dashboard compiled into the collector: "/" is
# index.html (CSP, no-cache, ETag), every file of web/src/ and uPlot's
# dist files are served under /assets/<build id>/ byte for byte with
# their content type and a year of immutable caching, gzip or identity by
# Accept-Encoding (equal after gunzip), If-None-Match gives 304 on "/",
# an asset and the API (whose ETag changes with its data), HEAD works,
# another build id, unknown paths and traversal attempts are 404 JSON,
# /index.html is the page, a %00 anywhere in a path is a 400 and any
# other escape under /assets/ a 404 (never a file, never a crash), /metrics
# counts the page and its assets under their own routes, and with
# api_tokens the dashboard loads but the API stays closed.
. "$(dirname "$0")/lib.sh"

UPLOT=$SEXTANT_BIN/web-npm/node_modules/uplot/dist
CSP="default-src 'self'; frame-ancestors 'none'"

# fetch PATH [CURL_ARGS...]: GET $URL$PATH into $TMP/b (headers in
# $TMP/h, CR-stripped); prints the status. $TMP/b goes first: curl
# writes no file at all for a reply without a body.
fetch() {
    local path=$1
    shift
    rm -f "$TMP/b"
    curl -sS --max-time 30 --path-as-is -o "$TMP/b" -D "$TMP/h.raw" \
        -w '%{http_code}' "$@" "$URL$path" || fail "curl $path"
    tr -d '\r' < "$TMP/h.raw" > "$TMP/h"
}

# header NAME: the value of header NAME in $TMP/h ("" if absent).
header() {
    grep -i "^$1: " "$TMP/h" | tail -n 1 | cut -d' ' -f2- || true
}

# expect_404 PATH: a JSON 404 like any unknown path's.
expect_404() {
    assert_eq "$(fetch "$1")" 404 "GET $1"
    jq -e '.error == "not found"' "$TMP/b" > /dev/null ||
        fail "GET $1: not a JSON 404: $(head -c 200 "$TMP/b")"
    echo "ok 404 $1"
}

# type_of PATH: the Content-Type an asset of that name must have.
type_of() {
    case $1 in
        *.html) echo 'text/html; charset=utf-8' ;;
        *.js) echo 'text/javascript; charset=utf-8' ;;
        *.css) echo 'text/css; charset=utf-8' ;;
        *.svg) echo 'image/svg+xml' ;;
        *.json) echo 'application/json' ;;
        *) fail "no expected type for $1" ;;
    esac
}

start_collector "$TMP/c.db"

# "/": the page, with the API's security headers but revalidated always.
assert_eq "$(fetch /)" 200 "GET /"
assert_eq "$(header Content-Type)" 'text/html; charset=utf-8' "/ type"
assert_eq "$(header Content-Security-Policy)" "$CSP" "/ CSP"
assert_eq "$(header X-Content-Type-Options)" nosniff "/ nosniff"
assert_eq "$(header Referrer-Policy)" no-referrer "/ referrer policy"
assert_eq "$(header Cache-Control)" no-cache "/ Cache-Control"
assert_eq "$(header Vary)" Accept-Encoding "/ Vary"
INDEX_ETAG=$(header ETag)
[[ $INDEX_ETAG =~ ^\"[0-9a-f]{16}\"$ ]] || fail "/ ETag '$INDEX_ETAG'"
grep -q '__ASSETS__' "$TMP/b" && fail "/ still holds __ASSETS__"
cp "$TMP/b" "$TMP/index.html"
BASE=$(grep -o '/assets/[0-9a-f]\{16\}/' "$TMP/index.html" | sort -u)
[ "$(echo "$BASE" | wc -l)" = 1 ] && [ -n "$BASE" ] ||
    fail "index.html names not exactly one asset folder: '$BASE'"
echo "ok / (assets at $BASE)"

# Every asset index.html references is there with its type.
refs=$(grep -o '\(href\|src\)="/assets/[^"]*"' "$TMP/index.html" |
       sed 's/.*="\(.*\)"/\1/')
[ "$(echo "$refs" | wc -l)" -ge 4 ] || fail "index.html references: $refs"
for ref in $refs; do
    assert_eq "$(fetch "$ref")" 200 "GET $ref"
    assert_eq "$(header Content-Type)" "$(type_of "$ref")" "$ref type"
    assert_eq "$(header Cache-Control)" \
        'public, max-age=31536000, immutable' "$ref Cache-Control"
    assert_eq "$(header Content-Security-Policy)" "$CSP" "$ref CSP"
    echo "ok $ref"
done

# check_asset PATH FILE: served byte for byte (identity, and gzip that
# gunzips to the same bytes), with its type and an ETag.
check_asset() {
    local path=$BASE$1
    assert_eq "$(fetch "$path" -H 'Accept-Encoding: identity')" 200 \
        "GET $path"
    cmp -s "$TMP/b" "$2" || fail "$path differs from $2"
    assert_eq "$(header Content-Encoding)" "" "$path identity encoding"
    assert_eq "$(header Content-Type)" "$(type_of "$1")" "$path type"
    assert_eq "$(fetch "$path" -H 'Accept-Encoding: gzip')" 200 \
        "GET $path gzip"
    assert_eq "$(header Content-Encoding)" gzip "$path gzip encoding"
    gunzip -c < "$TMP/b" | cmp -s - "$2" ||
        fail "$path: gzip body does not gunzip to $2"
}
n=0
while IFS= read -r f; do
    rel=${f#"$SEXTANT_SRC/web/src/"}
    [ "$rel" = index.html ] && continue
    check_asset "$rel" "$f"
    n=$((n + 1))
done < <(find "$SEXTANT_SRC/web/src" -type f ! -name '.*' ! -name '*~')
check_asset vendor/uPlot.esm.js "$UPLOT/uPlot.esm.js"
check_asset vendor/uPlot.min.css "$UPLOT/uPlot.min.css"
echo "ok $n files of web/src and uPlot's 2, byte for byte, gzip and not"

# "/" itself gzipped and not: the same page.
fetch / -H 'Accept-Encoding: gzip' > /dev/null
assert_eq "$(header Content-Encoding)" gzip "/ gzip"
gunzip -c < "$TMP/b" | cmp -s - "$TMP/index.html" || fail "/ gzip differs"

# Accept-Encoding as RFC 9110 reads it.
ae() {
    fetch "$BASE"app.js -H "Accept-Encoding: $1" > /dev/null
    assert_eq "$(header Content-Encoding)" "$2" "Accept-Encoding '$1'"
}
ae 'gzip, deflate, br' gzip
ae 'br;q=1.0, gzip;q=0.5' gzip
ae '*' gzip
ae 'gzip;q=0' ''
ae 'GZIP ; Q=0.000' ''
ae 'br, *;q=0' ''
ae 'gzip;q=0, *' ''
ae 'identity' ''
ae 'gzip;q=bogus' ''
echo "ok Accept-Encoding"

# HEAD: the headers of GET, no body.
code=$(curl -sS --max-time 30 -I -o /dev/null -D "$TMP/h.raw" \
       -w '%{http_code}' "$URL/") || fail "HEAD /"
tr -d '\r' < "$TMP/h.raw" > "$TMP/h"
assert_eq "$code" 200 "HEAD /"
assert_eq "$(header Content-Length)" "$(wc -c < "$TMP/index.html")" \
    "HEAD / Content-Length"
assert_eq "$(header ETag)" "$INDEX_ETAG" "HEAD / ETag"
code=$(curl -sS --max-time 30 -I -o /dev/null -w '%{http_code}' \
       -H 'Accept-Encoding: gzip' "$URL${BASE}app.js") || fail "HEAD app.js"
assert_eq "$code" 200 "HEAD app.js"
assert_eq "$(fetch / -X POST -d x)" 405 "POST /"
assert_eq "$(header Allow)" "GET, HEAD" "POST / Allow"
echo "ok HEAD, POST"

# If-None-Match: 304 with the ETag and no body; W/, lists and * match.
inm() {
    assert_eq "$(fetch "$1" -H "If-None-Match: $2")" "$3" \
        "$1 with If-None-Match $2"
    if [ "$3" = 304 ]; then
        [ ! -s "$TMP/b" ] || fail "$1: 304 with a body"
        [ -n "$(header ETag)" ] || fail "$1: 304 without an ETag"
    fi
}
inm / "$INDEX_ETAG" 304
assert_eq "$(header Cache-Control)" no-cache "/ 304 Cache-Control"
inm / "W/$INDEX_ETAG" 304
inm / "\"0000000000000000\", $INDEX_ETAG" 304
inm / '*' 304
inm / '"0000000000000000"' 200
inm / "${INDEX_ETAG:0:10}" 200
fetch "$BASE"style.css > /dev/null
css_etag=$(header ETag)
inm "$BASE"style.css "$css_etag" 304
assert_eq "$(header ETag)" "$css_etag" "style.css 304 ETag"
inm "$BASE"style.css "$INDEX_ETAG" 200
echo "ok If-None-Match on / and an asset"

# The API: a strong ETag on 200s, 304 on a match (still no-store), and a
# new ETag when the data changes. api_inm PATH ETAG: GET PATH with
# If-None-Match ETAG, checked against docs/openapi.yaml; prints the
# status.
api_inm() {
    local code
    code=$(fetch "$1" -H "If-None-Match: $2")
    [ -e "$TMP/b" ] || : > "$TMP/b"
    api_valid GET "$1" "$code" "$TMP/b" "$(header Content-Type)"
    echo "$code"
}
assert_eq "$(api_inm /api/v1/status '"0000000000000000"')" 200 \
    "GET /api/v1/status"
st_etag=$(header ETag)
[[ $st_etag =~ ^\"[0-9a-f]{16}\"$ ]] || fail "status ETag '$st_etag'"
assert_eq "$(header Cache-Control)" no-store "status Cache-Control"
assert_eq "$(api_inm /api/v1/status "$st_etag")" 304 "status, its ETag"
[ ! -s "$TMP/b" ] || fail "status 304 with a body"
assert_eq "$(header Cache-Control)" no-store "status 304 Cache-Control"
assert_eq "$(header ETag)" "$st_etag" "status 304 ETag"
assert_eq "$(api_inm /api/v1/timeline '"0000000000000000"')" 200 \
    "GET /api/v1/timeline"
tl_etag=$(header ETag)
assert_eq "$(api_inm /api/v1/timeline "W/$tl_etag")" 304 \
    "timeline, its ETag"
out=$("$INGEST_CLIENT" --url "$URL/v1/ingest" --token "$TOKEN" --seq 1-3)
assert_eq "$out" "200 3" "ingest"
assert_eq "$(api_inm /api/v1/timeline "$tl_etag")" 200 \
    "timeline after ingest with the old ETag"
assert_eq "$(jq .count "$TMP/b")" 3 "timeline after ingest"
[ "$(header ETag)" != "$tl_etag" ] || fail "timeline ETag did not change"
echo "ok API ETag and 304"

# Anything else under / is a 404, never a file from elsewhere.
other=$(printf '%016x' $(( 0x${BASE:8:16} ^ 1 )))
expect_404 "/assets/$other/app.js"
expect_404 /assets/
expect_404 "$BASE"
expect_404 "$BASE"index.html
expect_404 "$BASE"nope.js
expect_404 "$BASE../$(basename "$BASE")/app.js"
expect_404 "$BASE"lib/../app.js
expect_404 "$BASE"%2e%2e/%2e%2e/%2e%2e/etc/passwd
expect_404 "$BASE"..%2f..%2fetc%2fpasswd
expect_404 "$BASE/app.js"
expect_404 "$BASE"./app.js
expect_404 "$BASE"app.js/
expect_404 "$BASE$(printf 'a%.0s' $(seq 1 300)).js"
expect_404 /app.js
expect_404 /assets
echo "ok 404s"

# /index.html: the page "/" is, cached the same way.
assert_eq "$(fetch /index.html)" 200 "GET /index.html"
cmp -s "$TMP/b" "$TMP/index.html" || fail "/index.html is not the page"
assert_eq "$(header Cache-Control)" no-cache "/index.html Cache-Control"
assert_eq "$(header ETag)" "$INDEX_ETAG" "/index.html ETag"
echo "ok /index.html"

# Odd encodings: MHD hands on paths unescaped and cut at a NUL, so
# "app.js%00.png" would be app.js. A %00 anywhere is a 400; any escape
# in a dashboard path is a 404, even one that decodes to a real name.
# expect_400 PATH: a JSON 400.
expect_400() {
    assert_eq "$(fetch "$1")" 400 "GET $1"
    jq -e '.error == "bad request"' "$TMP/b" > /dev/null ||
        fail "GET $1: not a JSON 400: $(head -c 200 "$TMP/b")"
    echo "ok 400 $1"
}
expect_400 "$BASE"app.js%00.png
expect_400 "$BASE"app.js%00
expect_400 /%00
expect_400 /index.html%00.js
expect_400 /api/v1/status%00
expect_400 /healthz%00x
expect_404 "$BASE"app%2ejs
expect_404 "$BASE"lib%2fapi.js
expect_404 "$BASE"app.js%zz
expect_404 "$BASE"app.js%
expect_404 "$BASE"%c0%ae%c0%ae/app.js
expect_404 "$BASE"app.js%0a
expect_404 /index%2ehtml
expect_404 /%61ssets/"${BASE#/assets/}"app.js
assert_eq "$(fetch "$BASE"app.js)" 200 "app.js after the odd paths"
echo "ok odd encodings"

# /metrics: the page and its assets under their own routes, 304s too.
# metric NAME: its value on a fresh scrape (0 when absent).
metric() {
    curl -sS --max-time 30 "$URL/metrics" |
        awk -v n="$1" '$1 == n { v = $2 } END { print v + 0 }'
}
h=sextant_collector_http_requests_total
page=$(metric "$h{route=\"dashboard\",code=\"200\"}")
page304=$(metric "$h{route=\"dashboard\",code=\"304\"}")
asset=$(metric "$h{route=\"assets\",code=\"200\"}")
asset404=$(metric "$h{route=\"assets\",code=\"404\"}")
other200=$(metric "$h{route=\"other\",code=\"200\"}")
fetch / > /dev/null
fetch /index.html > /dev/null
fetch / -H "If-None-Match: $INDEX_ETAG" > /dev/null
fetch "$BASE"app.js > /dev/null
fetch "$BASE"nope.js > /dev/null
assert_eq "$(metric "$h{route=\"dashboard\",code=\"200\"}")" \
    $((page + 2)) "dashboard 200s"
assert_eq "$(metric "$h{route=\"dashboard\",code=\"304\"}")" \
    $((page304 + 1)) "dashboard 304s"
assert_eq "$(metric "$h{route=\"assets\",code=\"200\"}")" \
    $((asset + 1)) "assets 200s"
assert_eq "$(metric "$h{route=\"assets\",code=\"404\"}")" \
    $((asset404 + 1)) "assets 404s"
assert_eq "$(metric "$h{route=\"other\",code=\"200\"}")" "$other200" \
    "other 200s"
echo "ok /metrics routes dashboard and assets"

# With api_tokens: the dashboard loads (its sign-in form asks for the
# token), the API does not answer without one.
stop_collector
cat >> "$TMP/collector.yaml" <<YAML
api_tokens:
  - token: read-token-0123456789
YAML
start_collector "$TMP/c.db"
assert_eq "$(fetch /)" 200 "/ with api_tokens"
for ref in $refs; do
    assert_eq "$(fetch "$ref")" 200 "$ref with api_tokens"
done
assert_eq "$(api_fetch "$TMP/api" /api/v1/status)" 401 \
    "status without a token"
assert_eq "$(api_inm /api/v1/status "$st_etag")" 401 \
    "status without a token, with an ETag"
assert_eq "$(api_fetch "$TMP/api" /api/v1/status \
             -H 'Authorization: Bearer read-token-0123456789')" 200 \
    "status with the token"
stop_collector
grep -E '^[^ ]+ error ' "$TMP/collector.log" &&
    fail "errors in the collector's log"
echo "collector_web: all passed"
