# collector_http_limits.sh -- oversized and malformed requests get an HTTP
# answer, never a silent close or a hang: a ~21 KB URL (of many short
# query parameters, which libmicrohttpd 0.9.75 cannot fit in its pool and
# used to leave hanging until a timeout; or of one long one) and a URL of
# more than 64 parameters get our JSON 414; what libmicrohttpd answers
# itself (huge URL, huge or too many headers, HTTP/2.0, broken request
# line or header line, bad Content-Length) is checked to be answered as
# the README says, with its own HTML. Ingest works afterwards. Our 414
# also goes out over HTTPS.
. "$(dirname "$0")/lib.sh"

DB=$TMP/c.db
# A hang is a failure here, not a late close.
write_collector_config_no_timeouts "$TMP/collector.yaml"
start_collector "$DB"

# raw FILE: sends FILE's bytes as they are over a fresh connection; sets
# STATUS, HEAD (lower case) and BODY from the reply ("" if none came).
raw() {
    exec 5<> "/dev/tcp/127.0.0.1/$COLLECTOR_PORT"
    cat "$1" >&5 || true            # the server may close before all is in
    timeout 60 cat <&5 > "$TMP/resp" || true
    exec 5<&-
    STATUS=$(head -n1 "$TMP/resp" | cut -d' ' -f2)
    HEAD=$(sed '/^\r$/q' "$TMP/resp" | tr 'A-Z' 'a-z')
    BODY=$(sed '1,/^\r$/d' "$TMP/resp")
}

# ours STATUS FILE WHAT: our JSON error with our headers, as
# docs/openapi.yaml says.
ours() {
    local line
    raw "$2"
    assert_eq "$STATUS" "$1" "$3"
    echo "$BODY" | jq -e 'has("error") and has("detail")' > /dev/null \
        || fail "$3: not a JSON error: $BODY"
    line=$(head -n1 "$2")
    printf '%s' "$BODY" > "$TMP/reply"
    api_valid "${line%% *}" "$(echo "$line" | cut -d' ' -f2)" "$STATUS" \
        "$TMP/reply"
    case "$HEAD" in
    *"x-content-type-options: nosniff"*) ;;
    *) fail "$3: no security headers: $HEAD" ;;
    esac
    echo "ok $1 $3 ($(echo "$BODY" | jq -r .detail))"
}

# mhd STATUS FILE WHAT: libmicrohttpd's own answer: its HTML, none of our
# headers.
mhd() {
    raw "$2"
    assert_eq "$STATUS" "$1" "$3"
    case "$BODY" in
    "<html>"*) ;;
    *) fail "$3: not libmicrohttpd's HTML: $BODY" ;;
    esac
    case "$HEAD" in
    *"content-type:"*|*nosniff*) fail "$3: has our headers: $HEAD" ;;
    esac
    echo "ok $1 $3 (libmicrohttpd)"
}

# get TARGET [HEADER_LINES]: a GET request into $TMP/req.
get() {
    printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s\r\n' \
        "$1" "${2:-}" > "$TMP/req"
}

many=$(for i in $(seq 1 3000); do printf 'a%d=b&' "$i"; done)
get "/api/v1/timeline?$many"
[ "$(stat -c %s "$TMP/req")" -gt 20000 ] || fail "URL not ~21 KB"
ours 414 "$TMP/req" "~21 KB URL of 3000 parameters"
get "/healthz?$(head -c 21000 /dev/zero | tr '\0' '&')"
ours 414 "$TMP/req" "~21 KB URL of empty parameters"
get "/healthz?x=$(head -c 21000 /dev/zero | tr '\0' a)"
ours 414 "$TMP/req" "~21 KB URL of one parameter"
get "/healthz?$(for i in $(seq 1 65); do printf 'a%d=b&' "$i"; done)z"
ours 414 "$TMP/req" "66 parameters"
# Under the caps: served.
get "/healthz?x=$(head -c 8000 /dev/zero | tr '\0' a)"
raw "$TMP/req"
assert_eq "$STATUS" 200 "8000-byte URL"
get "/api/v1/timeline?$(for i in $(seq 1 20); do printf 'a%d=b&' "$i"; done)"
ours 400 "$TMP/req" "20 parameters (the API's own cap)"

get "/healthz?x=$(head -c 100000 /dev/zero | tr '\0' a)"
mhd 414 "$TMP/req" "100 KB URL"
get /healthz "X-Big: $(head -c 100000 /dev/zero | tr '\0' a)"$'\r\n'
mhd 431 "$TMP/req" "100 KB header"
get /healthz "$(for i in $(seq 1 3000); do printf 'a%d: b\r\n' "$i"; done)"
mhd 431 "$TMP/req" "3000 headers"
printf 'GET /healthz HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n' > "$TMP/req"
mhd 505 "$TMP/req" "HTTP/2.0 request line"
printf 'GET /healthz FOO/1.1\r\nHost: 127.0.0.1\r\n\r\n' > "$TMP/req"
mhd 400 "$TMP/req" "unknown protocol"
get /healthz $'NoColonHere\r\n'
mhd 400 "$TMP/req" "header line without a colon"
# A bad Content-Length: libmicrohttpd 0.9.75 writes its header block
# twice, so its HTML comes after a second status line (README says so).
get /healthz $'Content-Length: abc\r\n'
raw "$TMP/req"
assert_eq "$STATUS" 400 "Content-Length not a number"
assert_eq "$(grep -c '^HTTP/1.1 400' "$TMP/resp")" 2 "its status lines"
get /healthz $'Content-Length: 99999999999999999999999\r\n'
raw "$TMP/req"
assert_eq "$STATUS" 413 "Content-Length over 64 bits"
echo "ok 400, 413 bad Content-Length (libmicrohttpd, header block twice)"

out=$("$INGEST_CLIENT" --url "$URL/v1/ingest" --token "$TOKEN" --seq 1-5)
assert_eq "$out" "200 5" "ingest afterwards"
stop_collector

# Over HTTPS our 414 goes through the TLS session.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$TMP/server.key" -out "$TMP/server.pem" 2> /dev/null \
    || fail "openssl: server certificate"
printf 'tls:\n  cert_file: %s\n  key_file: %s\n' "$TMP/server.pem" \
    "$TMP/server.key" >> "$TMP/collector.yaml"
start_collector "$DB"
HTTPS=https://127.0.0.1:$COLLECTOR_PORT
https() {
    curl -s --cacert "$TMP/server.pem" --max-time 60 -o "$TMP/resp" \
        -w '%{http_code}' "$HTTPS$1" || true
}
assert_eq "$(https "/api/v1/timeline?$many")" 414 "HTTPS: ~21 KB URL"
api_valid GET "/api/v1/timeline?$many" 414 "$TMP/resp"
jq -e '.error == "uri too long"' "$TMP/resp" > /dev/null \
    || fail "HTTPS: not our JSON: $(cat "$TMP/resp")"
assert_eq "$(https /healthz)" 200 "HTTPS: /healthz afterwards"
stop_collector
echo "collector_http_limits: all passed"
