# agent_dns.sh -- the real agent watches app.global.test through a dnsmasq
# this test starts on a free loopback port. The test moves the name from
# 127.0.1.1 to 127.0.2.1 (hosts file rewritten, SIGHUP), as a traffic
# manager's failover would, and exactly one DNS-change event per watching
# target, old [127.0.1.1] and new [127.0.2.1], reaches the collector. A
# target that expects the primary's address turns unhealthy after the move.
. "$(dirname "$0")/lib.sh"

. "$(dirname "$0")/dnsmasq_lib.sh"
start_dnsmasq "127.0.1.1 app.global.test"
start_collector "$TMP/c.db"

cat > "$TMP/agent.yaml" <<YAML
cluster: test
region: test-region
node: n1
collector: {url: "$URL", token: $TOKEN}
spool: {path: $TMP/spool.db}
interval: 300ms
timeout: 250ms
targets:
  - name: global
    type: dns
    query: app.global.test
    resolver: 127.0.0.1:$DNS_PORT
  - name: primary
    type: dns
    query: app.global.test
    record: ANY
    resolver: 127.0.0.1:$DNS_PORT
    expect: [127.0.1.1]
YAML
"$AGENT" --config "$TMP/agent.yaml" 2> "$TMP/agent.log" &
AGENT_PID=$!
PIDS+=($AGENT_PID)

tl() { api_get "api/v1/timeline?from=0&limit=10000" > "$TMP/tl.json"; }
# count FILTER: events of the timeline that FILTER selects.
count() { jq "[.events[] | select($1)] | length" "$TMP/tl.json"; }
# wait_count FILTER MIN: until at least MIN such events arrived.
wait_count() {
    wait_until 30 "fewer than $2 events of: $1" count_ge "$1" "$2"
}
count_ge() {
    tl
    [ "$(count "$1")" -ge "$2" ]
}

# Before the move: both targets answer 127.0.1.1, healthy, no change.
wait_count '.kind == "probe" and .target == "primary" and .fields.ok' 3
wait_count '.kind == "probe" and .target == "global" and .fields.ok' 3
assert_eq "$(count '.kind == "dns"')" 0 "no DNS change before the move"
jq -e '[.events[] | select(.kind == "probe" and .target == "global")][0]
    .fields | .type == "dns" and .status == 0 and .error == ""
    and .dns_us > 0 and .total_us == .dns_us' "$TMP/tl.json" > /dev/null \
    || fail "first DNS probe result"

# The failover: the global name now answers us-east-1's address.
echo "127.0.2.1 app.global.test" > "$HOSTS"
kill -HUP "$DNS_PID"
wait_count '.kind == "dns"' 2
wait_count '.kind == "state" and .target == "primary"
    and .fields.to == "unhealthy"' 1
# A few more runs: the new answer is the new baseline, not a new change.
n=$(count '.kind == "probe" and .target == "global"')
wait_count '.kind == "probe" and .target == "global"' $((n + 3))
kill -TERM "$AGENT_PID"
wait "$AGENT_PID" || fail "agent exit status $?"
tl

assert_eq "$(count '.kind == "dns"')" 2 "one DNS change per target"
want='{"name":"app.global.test",
    "old":[{"type":"A","value":"127.0.1.1","ttl":5}],
    "new":[{"type":"A","value":"127.0.2.1","ttl":5}]}'
for t in global primary; do
    got=$(jq -c --arg t "$t" '[.events[] | select(.kind == "dns"
        and .target == $t)][0].fields' "$TMP/tl.json")
    assert_eq "$got" "$(echo "$want" | jq -c .)" "DNS change seen by $t"
done
# The change comes right after the first result that saw the new answer.
jq -e '[.events[] | select(.target == "global"
        and (.kind == "dns" or .kind == "probe"))]
    | (map(.kind) | index("dns")) as $i
    | .[$i - 1].kind == "probe" and .[$i - 1].time_ms == .[$i].time_ms' \
    "$TMP/tl.json" > /dev/null || fail "DNS change follows its probe result"
jq -e '[.events[] | select(.kind == "probe" and .target == "primary"
        and (.fields.ok | not))][0].fields.error
    == "answer not expected: A 127.0.2.1"' "$TMP/tl.json" > /dev/null \
    || fail "primary's error names the new answer"
assert_eq "$(count '.kind == "probe" and .target == "global"
    and (.fields.ok | not)')" 0 "global never failed"
# Every result carries what it resolved: the first and the last differ.
assert_eq "$(jq -c '[.events[] | select(.kind == "probe" and .target == "global")
    | .fields.answers | map(.value) | join(",")] | [first, last]' "$TMP/tl.json")" \
    '["127.0.1.1","127.0.2.1"]' "answers on every DNS probe result"
echo "agent_dns_e2e: all passed"
