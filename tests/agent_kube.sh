# agent_kube.sh -- the kube probe through the real sextant-agent and
# collector: tests/kube_api_server serves the recorded API responses over
# HTTPS with a CA made here; one --once run probes the node list, a
# Deployment, a target whose token the server rejects and one whose token
# file is missing. The timeline must show the Ready fraction 2/3, the
# replicas 2 of 3 with their labels, kube probe events (ok, 401, missing
# token) and no samples from failed runs; the token never reaches a log.
. "$(dirname "$0")/lib.sh"
: "${KUBE_API_SERVER:?run through ctest}"
: "${KUBE_FIXTURES:?run through ctest}"

KUBE_TOKEN=kube-e2e-token-5d1c88a0f3
mkdir "$TMP/fixtures"
cp "$KUBE_FIXTURES"/*.json "$TMP/fixtures/"
( cd "$TMP"
  ec='-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes'
  openssl req -x509 $ec -days 1 -subj /CN=test-ca \
      -keyout ca.key -out ca.crt 2>/dev/null
  openssl req $ec -subj /CN=kube-apiserver \
      -keyout server.key -out server.csr 2>/dev/null
  echo 'subjectAltName=IP:127.0.0.1,DNS:localhost' > san.ext
  openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key \
      -CAcreateserial -days 1 -extfile san.ext -out server.crt 2>/dev/null
) || fail "cannot make TLS material with openssl"
echo "$KUBE_TOKEN" > "$TMP/token"
echo "revoked-token-0000" > "$TMP/old-token"

"$KUBE_API_SERVER" --dir "$TMP/fixtures" --cert "$TMP/server.crt" \
    --key "$TMP/server.key" --token "$KUBE_TOKEN" \
    > "$TMP/kas.port" 2> "$TMP/kas.log" &
PIDS+=($!)
wait_for "$TMP/kas.port" '^[0-9]'
KUBE_URL=https://127.0.0.1:$(head -n1 "$TMP/kas.port")

start_collector "$TMP/c.db"
cat > "$TMP/agent.yaml" <<YAML
cluster: test
region: eu-west-1
node: n1
collector: {url: "$URL", token: $TOKEN}
spool: {path: $TMP/spool.db}
log_level: debug
targets:
  - name: cluster-nodes
    type: kube
    resource: nodes
    url: $KUBE_URL
    token_file: $TMP/token
    ca_file: $TMP/ca.crt
  - name: shop-web
    type: kube
    resource: deployment
    namespace: shop
    deployment: web
    url: $KUBE_URL
    token_file: $TMP/token
    ca_file: $TMP/ca.crt
  - name: denied
    type: kube
    resource: nodes
    url: $KUBE_URL
    token_file: $TMP/old-token
    ca_file: $TMP/ca.crt
  - name: no-token
    type: kube
    resource: nodes
    url: $KUBE_URL
    token_file: $TMP/missing-token
    ca_file: $TMP/ca.crt
YAML

"$AGENT" --config "$TMP/agent.yaml" --once 2> "$TMP/agent.log" \
    || fail "agent --once exited $?"
api_get "api/v1/timeline?from=0&limit=10000" > "$TMP/tl.json" \
    || fail "no timeline"

# metric NAME TARGET: the sample's value; fails unless there is exactly one.
metric() {
    local v
    v=$(jq -c --arg n "$1" --arg t "$2" '[.events[]
        | select(.kind == "metric" and .fields.name == $n and .target == $t)
        | .fields.value]' "$TMP/tl.json")
    [ "$(echo "$v" | jq length)" = 1 ] || fail "samples of $1 for $2: $v"
    echo "$v" | jq '.[0]'
}
assert_eq "$(metric kube_nodes_ready cluster-nodes)" 2 "Ready nodes"
assert_eq "$(metric kube_nodes_total cluster-nodes)" 3 "nodes"
metric kube_nodes_ready_ratio cluster-nodes \
    | jq -e '. > 0.6666 and . < 0.6667' > /dev/null \
    || fail "Ready ratio: $(metric kube_nodes_ready_ratio cluster-nodes)"
assert_eq "$(metric kube_deployment_ready_replicas shop-web)" 2 \
    "ready replicas"
assert_eq "$(metric kube_deployment_desired_replicas shop-web)" 3 \
    "desired replicas"
metric kube_deployment_ready_ratio shop-web \
    | jq -e '. > 0.6666 and . < 0.6667' > /dev/null \
    || fail "replica ratio: $(metric kube_deployment_ready_ratio shop-web)"
assert_eq "$(jq -S -c '[.events[] | select(.kind == "metric"
    and .target == "shop-web") | .fields.labels] | unique' "$TMP/tl.json")" \
    '[{"deployment":"web","namespace":"shop"}]' "deployment labels"
assert_eq "$(jq -r '[.events[] | select(.kind == "metric") | .target]
    | unique | join(",")' "$TMP/tl.json")" "cluster-nodes,shop-web" \
    "samples only from the runs that worked"

# probe TARGET: the fields of its one probe event.
probe() {
    jq -c --arg t "$1" '[.events[] | select(.kind == "probe"
        and .target == $t) | .fields] | if length == 1 then .[0]
        else error("want one probe event") end' "$TMP/tl.json" \
        || fail "probe events of $1"
}
assert_eq "$(probe cluster-nodes | jq -c '[.type, .ok, .status, .error]')" \
    '["kube",true,200,""]' "node list probe"
probe cluster-nodes | jq -e '.tls_us > 0 and .total_us >= .tls_us' \
    > /dev/null || fail "node list timings: $(probe cluster-nodes)"
assert_eq "$(probe shop-web | jq -c '[.type, .ok, .status]')" \
    '["kube",true,200]' "deployment probe"
assert_eq "$(probe denied | jq -c '[.ok, .status]')" '[false,401]' \
    "rejected token"
probe denied | jq -e '.error | test("status 401 Unauthorized")' > /dev/null \
    || fail "401 not named: $(probe denied)"
assert_eq "$(probe no-token | jq -c '[.ok, .status]')" '[false,0]' \
    "missing token file"
probe no-token | jq -e --arg f "$TMP/missing-token" \
    '.error == "token_file \($f): No such file or directory"' > /dev/null \
    || fail "missing token not named: $(probe no-token)"

# The sample events carry the run's time, after their probe event.
jq -e '[.events[] | select(.target == "cluster-nodes")] as $e
    | ($e | map(select(.kind == "probe")) | .[0].time_ms) as $t
    | $e | map(select(.kind == "metric")) | length == 3
      and all(.time_ms == $t) and ($t != null)' "$TMP/tl.json" > /dev/null \
    || fail "sample times differ from the probe's"

grep -q "GET /api/v1/nodes resourceVersion=0 -> 200" "$TMP/kas.log" \
    || fail "node list not read from the watch cache"
grep -q "$KUBE_TOKEN" "$TMP/agent.log" "$TMP/collector.log" \
    && fail "the service account token is in a log"
grep -q "revoked-token" "$TMP/agent.log" && fail "a token is in the log"
stop_collector
echo "agent_kube: all passed"
