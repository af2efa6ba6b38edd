# collector_api_tokens.sh -- api_tokens: with them, every /api/ path needs
# one (401 with WWW-Authenticate: Bearer and a JSON reason without it or
# with a wrong one, before the path is even looked at), inline and file
# tokens both work, ingest tokens do not read and read tokens do not
# ingest, probes and /metrics need none, and no token reaches the log
# (at debug level). Without api_tokens the API is open, with a warning.
# Every reply is checked against docs/openapi.yaml.
. "$(dirname "$0")/lib.sh"

READ=read-token-0123456789
FILE_TOKEN=file-token-0123456789
echo "$FILE_TOKEN" > "$TMP/api.token"
write_collector_config "$TMP/collector.yaml"
cat >> "$TMP/collector.yaml" <<YAML
log_level: debug
api_tokens:
  - token: $READ
  - token_file: $TMP/api.token
YAML
start_collector "$TMP/c.db"

# expect STATUS PATH [TOKEN]: GET with that bearer token (none if empty);
# errors must be JSON {"error","detail"}.
expect() {
    local want=$1 path=$2 token=${3:-} status
    local args=(-sS --max-time 30 -D "$TMP/headers" -o "$TMP/body"
                -w '%{http_code}')
    [ -n "$token" ] && args+=(-H "Authorization: Bearer $token")
    status=$(curl "${args[@]}" "$URL$path") || fail "curl $path"
    assert_eq "$status" "$want" "GET $path with '${token:0:4}...'"
    case "$path" in /api/*) json_ok "$TMP/body" "GET $path" ;; esac
    api_valid GET "$path" "$status" "$TMP/body" "$(reply_type "$TMP/headers")"
    if [ "$want" != 200 ]; then
        jq -e 'has("error") and has("detail")' "$TMP/body" > /dev/null \
            || fail "not a JSON error for $path: $(cat "$TMP/body")"
    fi
    if [ "$want" = 401 ]; then
        grep -qi '^WWW-Authenticate: Bearer' "$TMP/headers" \
            || fail "401 without WWW-Authenticate for $path"
    fi
    echo "ok $want $path"
}

out=$("$INGEST_CLIENT" --url "$URL/v1/ingest" --token "$TOKEN" --seq 1-3)
assert_eq "$out" "200 3" "ingest with the cluster token"

expect 401 /api/v1/timeline
expect 401 /api/v1/timeline wrong-token-0123456789
expect 401 /api/v1/timeline "$TOKEN"           # ingest tokens do not read
expect 401 /api/v1/timeline "$READ"x
expect 401 /api/v1/nope                        # no path is told apart
expect 200 /api/v1/timeline "$READ"
assert_eq "$(jq -r .count "$TMP/body")" 3 "events read with the token"
expect 200 "/api/v1/timeline?limit=1" "$FILE_TOKEN"
expect 404 /api/v1/nope "$READ"
expect 200 /healthz
expect 200 /readyz
expect 200 /metrics

# A read token does not ingest.
out=$("$INGEST_CLIENT" --url "$URL/v1/ingest" --token "$READ" --seq 4-5)
assert_eq "${out%% *}" 401 "ingest with a read token"

stop_collector
for t in "$READ" "$FILE_TOKEN" "$TOKEN" wrong-token-0123456789; do
    if grep -qF -- "$t" "$TMP/collector.log"; then
        fail "a token is in the log: ${t:0:4}..."
    fi
done
grep -q 'no api_tokens' "$TMP/collector.log" && fail "warned with tokens set"

# Without api_tokens: open, and said so once at start.
write_collector_config "$TMP/collector.yaml"
start_collector "$TMP/c.db"
expect 200 /api/v1/timeline
assert_eq "$(grep -c 'no api_tokens: the API under /api/ is open' \
             "$TMP/collector.log")" 1 "warning about the open API"
stop_collector
echo "collector_api_tokens: all passed"
