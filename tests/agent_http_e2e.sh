# agent_http_e2e.sh -- the HTTP(S) and TCP probes through the real agent
# binary, collector and timeline API: an HTTPS target with a CA made here
# by openssl (served-by and the certificate's not-after arrive in the
# store), a body match that fails, a TCP port that is open and one that was
# just closed. Everything on loopback; every process stopped on exit.
. "$(dirname "$0")/lib.sh"

# A CA and a server certificate for localhost, valid 3 days from now.
(
    cd "$TMP"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -days 7 -subj /CN=test-ca -keyout ca.key -out ca.pem
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj /CN=localhost -keyout srv.key -out srv.csr
    printf 'subjectAltName=DNS:localhost\n' > ext.cnf
    openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
        -days 3 -extfile ext.cnf -out srv.pem
) > "$TMP/openssl.log" 2>&1 || fail "openssl could not make certificates"
want_not_after=$(( ($(date +%s) + 3 * 86400) * 1000 ))

start_target --tls-cert "$TMP/srv.pem" --tls-key "$TMP/srv.key" \
    --region eu-west-1
TLS_PORT=$TARGET_PORT
start_target
PLAIN_PORT=$TARGET_PORT
# A port that had a listener a moment ago and has none now.
start_target
CLOSED_PORT=$TARGET_PORT
kill "${PIDS[-1]}"
wait "${PIDS[-1]}" 2>/dev/null || true

DB=$TMP/c.db
start_collector "$DB"
cat > "$TMP/agent.yaml" <<YAML
cluster: test
region: eu-west-1
node: node-1
collector:
  url: $URL
  token: $TOKEN
spool:
  path: $TMP/spool.db
interval: 60s
timeout: 30s
targets:
  - name: https
    url: https://localhost:$TLS_PORT/echo
    ca_file: $TMP/ca.pem
    served_by_header: X-Served-By
    body_match: "method: GET"
  - name: https-untrusted
    url: https://localhost:$TLS_PORT/
  - name: wrong-body
    url: http://127.0.0.1:$PLAIN_PORT/body?text=red
    body_match: green
  - name: tcp-open
    type: tcp
    address: 127.0.0.1:$PLAIN_PORT
  - name: tcp-closed
    type: tcp
    address: 127.0.0.1:$CLOSED_PORT
YAML
"$AGENT" --config "$TMP/agent.yaml" --once 2> "$TMP/agent.log" \
    || fail "agent --once exited $?"

api_get "api/v1/timeline?from=0&limit=10000" > "$TMP/tl.json" \
    || fail "timeline API"
probe() {
    jq -c --arg t "$1" \
        '[.events[] | select(.kind == "probe" and .target == $t)][0].fields' \
        "$TMP/tl.json"
}

p=$(probe https)
echo "$p" | jq -e --argjson want "$want_not_after" '.ok and .status == 200
    and .type == "http" and .served_by == "eu-west-1" and .tls_us > 0
    and .tls_us >= .connect_us
    and (.cert_not_after_ms - $want | fabs) < 86400000' > /dev/null \
    || fail "https probe: $p (want not-after near $want_not_after)"

p=$(probe https-untrusted)
echo "$p" | jq -e '(.ok | not) and .status == 0
    and (.error | test("SSL certificate problem"))' > /dev/null \
    || fail "https probe without the CA: $p"

p=$(probe wrong-body)
echo "$p" | jq -e '(.ok | not) and .status == 200
    and .error == "body does not match body_match \"green\""' > /dev/null \
    || fail "body match probe: $p"

p=$(probe tcp-open)
echo "$p" | jq -e '.ok and .type == "tcp" and .status == 0
    and .connect_us > 0 and .error == ""' > /dev/null \
    || fail "open tcp port: $p"

p=$(probe tcp-closed)
echo "$p" | jq -e '(.ok | not) and .type == "tcp"
    and (.error | test("Failed to connect to 127.0.0.1"))' > /dev/null \
    || fail "closed tcp port: $p"

stop_collector
echo "agent_http_e2e: all passed"
