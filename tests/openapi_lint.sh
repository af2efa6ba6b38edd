# openapi_lint.sh -- lints docs/openapi.yaml (tests/openapi/lint.mjs): a
# valid OpenAPI 3.1 document whose schemas compile strictly, whose JSON
# replies refuse unlisted fields, and which has a path for every route
# literal of collector/server_route.c. Then checks that the reply checker
# refuses what it must: a field the document does not list, an
# undocumented status, path and query parameter, and an event whose fields
# are not its kind's (tests/openapi/event-state.json, a state event).
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
# Each kind has its own fields: a state event passes; with a probe's
# fields, a health no one writes, or as a marker of kind failover (only
# failover events are), it does not.
EV=$SEXTANT_SRC/tests/openapi/event-state.json
check GET /api/v1/timeline 200 "$EV" ||
    fail "a state event refused: $(cat "$TMP/check.log")"
jq -c '.events[0].fields = {type: "http", ok: false, status: 503,
    error: "", dns_us: 0, connect_us: 0, tls_us: 0, first_byte_us: 0,
    total_us: 9, served_by: "", cert_not_after_ms: 0}' "$EV" > "$TMP/x.json"
refused "at /events/0/fields: must have required property 'reason'" \
    GET /api/v1/timeline 200 "$TMP/x.json"
jq -c '.events[0].fields.to = "down"' "$EV" > "$TMP/x.json"
refused 'at /events/0/fields/to: must be equal to one of the allowed' \
    GET /api/v1/timeline 200 "$TMP/x.json"
jq -c '.events[0].kind = "marker" | .events[0].fields = {kind: "failover",
    from: "a", to: "b", text: ""}' "$EV" > "$TMP/x.json"
refused 'at /events/0/fields/kind: must NOT be valid' \
    GET /api/v1/timeline 200 "$TMP/x.json"
echo "openapi_lint: ok"
