# collector_framing.sh -- request framing a proxy in front could read
# differently (request smuggling): a Transfer-Encoding header, also with a
# blank before its colon, or more than one Content-Length is refused before
# the body is read, on every route (400; 411 for Transfer-Encoding alone),
# with a JSON error (as docs/openapi.yaml says), and the database does
# not change. The requests are
# raw bytes over a socket: curl will not send them.
. "$(dirname "$0")/lib.sh"

DB=$TMP/c.db
start_collector "$DB"
out=$("$INGEST_CLIENT" --url "$URL/v1/ingest" --token "$TOKEN" --seq 1-5)
assert_eq "$out" "200 5" "good batch"
# A valid batch's body for seqs 6-8, written by a request the collector
# refuses (wrong token): the raw requests below carry it.
"$INGEST_CLIENT" --url "$URL/v1/ingest" --token wrong-token-0123456789 \
    --seq 6-8 --dump "$TMP/body" > /dev/null
LEN=$(stat -c %s "$TMP/body")
before=$(db_digest "$DB")

# raw METHOD PATH BODY_FILE HEADER...: sends one request over a fresh
# connection, the body as is; sets STATUS and BODY from the reply.
raw() {
    local method=$1 path=$2 body=$3 h
    shift 3
    {
        printf '%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n' \
            "$method" "$path"
        printf 'Authorization: Bearer %s\r\n' "$TOKEN"
        printf 'Content-Type: application/x-protobuf\r\n'
        printf 'Content-Encoding: deflate\r\n'
        for h in "$@"; do printf '%s\r\n' "$h"; done
        printf '\r\n'
        cat "$body"
    } > "$TMP/req"
    exec 5<> "/dev/tcp/127.0.0.1/$COLLECTOR_PORT"
    cat "$TMP/req" >&5
    timeout 60 cat <&5 > "$TMP/resp" || true
    exec 5<&-
    STATUS=$(head -n1 "$TMP/resp" | cut -d' ' -f2)
    BODY=$(sed '1,/^\r$/d' "$TMP/resp")
}

# refused STATUS METHOD PATH BODY_FILE HEADER...: that status, a JSON
# error, and nothing stored.
refused() {
    local want=$1; shift
    raw "$@"
    assert_eq "$STATUS" "$want" "status for $*"
    echo "$BODY" | jq -e 'has("error") and has("detail")' > /dev/null \
        || fail "not a JSON error for $*: $BODY"
    printf '%s' "$BODY" > "$TMP/reply"
    api_valid "$1" "$2" "$STATUS" "$TMP/reply"
    assert_eq "$(db_digest "$DB")" "$before" "database after $*"
    echo "ok $want $* ($(echo "$BODY" | jq -r .detail))"
}

# The same body, chunked: one chunk and the last.
{ printf '%x\r\n' "$LEN"; cat "$TMP/body"; printf '\r\n0\r\n\r\n'; } \
    > "$TMP/chunked"
: > "$TMP/empty"

# STATUS METHOD PATH BODY HEADER [HEADER]: each case in a line ("-": no
# second header; BODY is a file in $TMP; in headers "_" is a blank and LEN
# the body's length, so LEN0 is ten times it). A blank before the colon: MHD
# reads another header name, a proxy may read Transfer-Encoding. Every
# route: the body is never read, a smuggled request never runs.
while read -r want method path body h1 h2; do
    h1=${h1//_/ } h2=${h2//_/ }
    h1=${h1//LEN/$LEN} h2=${h2//LEN/$LEN}
    if [ "$h2" = - ]; then
        refused "$want" "$method" "$path" "$TMP/$body" "$h1"
    else
        refused "$want" "$method" "$path" "$TMP/$body" "$h1" "$h2"
    fi
done <<'CASES'
400 POST /v1/ingest body    Content-Length:_LEN      Content-Length:_LEN0
400 POST /v1/ingest body    Content-Length:_LEN0     Content-Length:_LEN
400 POST /v1/ingest body    Content-Length:_LEN      Content-Length:_LEN
400 POST /v1/ingest chunked Transfer-Encoding:_chunked Content-Length:_LEN
400 POST /v1/ingest chunked Content-Length:_LEN      transfer-encoding:_chunked
400 POST /v1/ingest body    Transfer-Encoding_:_chunked Content-Length:_LEN
400 POST /v1/ingest chunked Transfer-Encoding:_chunked Transfer-Encoding:_gzip
411 POST /v1/ingest chunked Transfer-Encoding:_chunked -
411 POST /v1/ingest body    Transfer-Encoding:_identity -
400 GET /healthz chunked    Transfer-Encoding:_chunked Content-Length:_LEN
400 GET /metrics empty      Content-Length:_0        Content-Length:_0
411 GET /api/v1/timeline chunked Transfer-Encoding:_chunked -
CASES

# The same bytes with one Content-Length are stored: the refusals above
# were for the framing, not the batch.
raw POST /v1/ingest "$TMP/body" "Content-Length: $LEN"
assert_eq "$STATUS" 200 "one Content-Length"
stop_collector
assert_eq "$(sqlite3 "$DB" \
             "SELECT count(*) FROM events_full WHERE kind = 'probe'")" \
    8 "events stored"
echo "collector_framing: all passed"
