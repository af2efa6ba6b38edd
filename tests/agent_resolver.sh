# agent_resolver.sh -- an HTTP target probed through the global name, as
# clients reach the service: the agent resolves app.global.test through a
# real dnsmasq (resolver: IP:PORT) and connects where the answer points.
# Two HTTP targets stand for two regions, on the same port of 127.0.1.1
# and 127.0.2.1, each answering its own X-Served-By. The probe reaches
# region A; after the name moves (hosts file rewritten, SIGHUP) it reaches
# B, with no restart: every run resolves again. A name the server does not
# know is a failed probe saying NXDOMAIN; a resolver that stops answering
# (SIGSTOP) is a failed probe saying timeout, while the loop goes on: a
# target without a resolver keeps its results coming, and the admin
# listener answers.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

. "$(dirname "$0")/dnsmasq_lib.sh"
start_dnsmasq "127.0.1.1 app.global.test"
start_collector "$TMP/c.db"

# Region A on a free port, region B on the same port of its own address.
start_target --listen 127.0.1.1:0 --region region-a
PORT=$TARGET_PORT
start_target --listen "127.0.2.1:$PORT" --region region-b
assert_eq "$TARGET_PORT" "$PORT" "both regions on one port"

{ agent_yaml_head "$TMP/spool.db"; cat; } > "$TMP/agent.yaml" <<YAML
admin: {listen: "127.0.0.1:0"}
interval: 1s
timeout: 900ms
targets:
  - name: global
    url: http://app.global.test:$PORT/health
    resolver: 127.0.0.1:$DNS_PORT
    served_by_header: X-Served-By
  - name: missing
    url: http://nowhere.global.test:$PORT/health
    resolver: 127.0.0.1:$DNS_PORT
  - name: direct
    url: http://127.0.1.1:$PORT/health
YAML
"$AGENT" --config "$TMP/agent.yaml" 2> "$TMP/agent.log" &
AGENT_PID=$!
PIDS+=($AGENT_PID)
ADMIN=$(agent_admin_addr "$TMP/agent.log")

count() { jq "[.events[] | select($1)] | length" "$TMP/tl.json"; }
count_ge() {
    tl > "$TMP/tl.json"
    [ "$(count "$1")" -ge "$2" ]
}
# wait_count FILTER MIN: until at least MIN such events arrived.
wait_count() {
    wait_until 60 "fewer than $2 events of: $1" count_ge "$1" "$2"
}
G='.kind == "probe" and .target == "global"'

# Region A through the global name, timed from the lookup on.
OK="$G and .fields.ok"
wait_count "$OK and .fields.served_by == \"region-a\"" 2
jq -e "[.events[] | select($OK)][0].fields | .status == 200
    and .dns_us > 0 and .connect_us >= .dns_us
    and .total_us >= .connect_us" "$TMP/tl.json" > /dev/null ||
    fail "first probe through the global name: $(jq -c \
        "[.events[] | select($OK)][0].fields" "$TMP/tl.json")"
# A name the resolver does not know.
wait_count ".kind == \"probe\" and .target == \"missing\" and (.fields.ok | not)
    and .fields.error == \"resolve nowhere.global.test via 127.0.0.1:$DNS_PORT: NXDOMAIN\"" 1
assert_eq "$(count '.kind == "probe" and .target == "missing" and .fields.ok')" \
    0 "a name the resolver does not know never succeeds"

# The failover: the name now answers region B's address.
echo "127.0.2.1 app.global.test" > "$HOSTS"
kill -HUP "$DNS_PID"
wait_count "$OK and .fields.served_by == \"region-b\"" 2
# Once moved, it stays moved: no answer of A after the first of B. (A
# probe that failed on a loaded machine has no served_by: left out.)
jq -e "[.events[] | select($OK) | .fields.served_by]
    | (index(\"region-b\")) as \$i | .[\$i:] | all(. == \"region-b\")" \
    "$TMP/tl.json" > /dev/null || fail "a probe went back to region A"

# The resolver stops answering: the probe fails with a timeout, the loop
# goes on (the direct target keeps its pace) and the admin listener too.
kill -STOP "$DNS_PID"
SILENT="$G and .fields.error == \"resolve app.global.test via 127.0.0.1:$DNS_PORT: timeout after 900 ms\""
wait_count "$SILENT" 2
direct=$(count '.kind == "probe" and .target == "direct"')
wait_count '.kind == "probe" and .target == "direct"' $((direct + 3))
jq -e "[.events[] | select($SILENT)][0].fields
    | (.ok | not) and .status == 0 and .dns_us > 0
    and .total_us == .dns_us" \
    "$TMP/tl.json" > /dev/null || fail "a failed lookup's timings"
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' "http://$ADMIN/healthz")" \
    200 "admin /healthz while the resolver is silent"
kill -CONT "$DNS_PID"
n=$(count "$OK")
wait_count "$OK" $((n + 2))

kill -TERM "$AGENT_PID"
wait "$AGENT_PID" || fail "agent exit status $?"
echo "agent_resolver: all passed"
