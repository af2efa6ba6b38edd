# openapi_lint.sh -- lints docs/openapi.yaml (tests/openapi/lint.mjs): a
# valid OpenAPI 3.1 document whose schemas compile strictly, whose JSON
# replies refuse unlisted fields, and which has a path for every route
# literal of collector/server_route.c. Then checks that the reply checker
# refuses what it must: a field the document does not list, an
# undocumented status, path and query parameter.
. "$(dirname "$0")/lib.sh"

openapi_tools
node "$SEXTANT_SRC/tests/openapi/lint.mjs" \
    "$SEXTANT_SRC/collector/server_route.c" > "$TMP/lint.log" 2>&1 ||
    fail "$(cat "$TMP/lint.log")"

check() {
    node "$SEXTANT_SRC/tests/openapi/check.mjs" "$@" > "$TMP/check.log" 2>&1
}
echo '{"events":[],"count":0,"truncated":false}' > "$TMP/tl.json"
check GET '/api/v1/timeline?kind=probe&limit=1' 200 "$TMP/tl.json" ||
    fail "an empty timeline refused: $(cat "$TMP/check.log")"
echo '{"error":"not found","detail":"no such path"}' > "$TMP/err.json"
check GET /api/v1/incidents/7 404 "$TMP/err.json" ||
    fail "a 404 refused: $(cat "$TMP/check.log")"
check GET /api/v1/nope 404 "$TMP/err.json" ||
    fail "an unknown path's 404 refused: $(cat "$TMP/check.log")"

# Each of these must be refused, with a reason naming what is wrong.
refused() {
    local why=$1
    shift
    ! check "$@" || fail "accepted: $* ($why)"
    grep -q -- "$why" "$TMP/check.log" ||
        fail "$*: reason without '$why': $(cat "$TMP/check.log")"
}
echo '{"events":[],"count":0,"truncated":false,"extra":1}' > "$TMP/x.json"
refused 'additional properties' GET /api/v1/timeline 200 "$TMP/x.json"
echo '{"events":[],"count":0}' > "$TMP/x.json"
refused "required property 'truncated'" GET /api/v1/timeline 200 "$TMP/x.json"
refused 'not in the document' GET '/api/v1/timeline?colour=red' 200 \
    "$TMP/tl.json"
refused 'status 418 is not documented' GET /api/v1/timeline 418 \
    "$TMP/err.json"
refused 'has no path /nope' GET /nope 200 "$TMP/err.json"
echo 'not json' > "$TMP/x.json"
refused 'not JSON' GET /api/v1/timeline 400 "$TMP/x.json"
refused 'content type text/html' GET /api/v1/timeline 200 "$TMP/tl.json" \
    text/html
echo "openapi_lint: ok"
