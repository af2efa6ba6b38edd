#!/bin/bash
# demo_chaos.sh -- the demo's failover with one region's agent cut off
# from the collector while it happens: eu-west-1's agent (the failing
# region's, as a regional outage often takes its network too) ships
# through the tests' TCP proxy (examples/demo.sh --agent-collector), which
# blackholes it from the moment the demo breaks the primary until a minute
# later. The demo runs until stopped (as a person would leave it), and is
# then stopped with SIGTERM (its Ctrl-C path: the same cleanup; a
# background job of a script ignores SIGINT, so the test cannot send that).
#
# Asserted once healed: the timeline is complete (every seq of the cut
# agent stored, 1 to its last, no gap, no drop; its DNS change, made
# during the cut, present); the incident's numbers equal those of a run
# without the cut; the RTO lies in demo_failover's window; nothing is left
# after the demo stopped.
#
# "A run without the cut": the same events fed to the incident engine in
# order, as they happened. `sextant-collector incidents rebuild` on a copy
# of the database does exactly that (the engine fed every stored event in
# corrected-time order, from scratch). The live engine instead got the cut
# agent's minute of events late, after it had moved on with two agents
# (and so saw that agent as stale); it must have gone back and replayed
# them (README "Late events"), ending with the very incident row the
# rebuild gives. A second demo run without the cut would not do: its
# times differ by whatever the machine's load did, so it could only be
# compared within bounds, which the RTO window below already checks.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/demo_lib.sh"
: "${TCP_PROXY:?run through ctest (tests/demo.cmake)}"

CUT_SECONDS=60
DB=$TMP/demo.db

# A port free now for the collector: the proxy must know it before the
# demo starts (the agent's URL names the proxy).
for _ in $(seq 1 20); do
    C_PORT=$((20000 + RANDOM % 40000))
    listening "$C_PORT" || break
done
"$TCP_PROXY" --to "127.0.0.1:$C_PORT" > "$TMP/proxy.port" 2> "$TMP/proxy.log" &
PROXY_PID=$!
PIDS+=($PROXY_PID)
wait_for "$TMP/proxy.port" '^[0-9]'
PROXY_URL=http://127.0.0.1:$(head -n1 "$TMP/proxy.port")

start_demo --break-after 3 --db "$DB" --collector-listen "127.0.0.1:$C_PORT" \
    --agent-collector "eu-west-1=$PROXY_URL"
wait_until 120 "the demo did not break the primary" \
    has_line "$DEMO_OUT" 'BREAK:'
kill -USR1 "$PROXY_PID"
wait_for "$TMP/proxy.log" 'proxy: mode blackhole'
CUT_MS=$(now_ms)
API=http://127.0.0.1:$C_PORT

# The cut lasts a minute: the length of the scenario, not a wait for
# something. Meanwhile the live engine goes on with two agents.
wait_until 120 "the demo printed no summary during the cut" \
    has_line "$DEMO_OUT" '^RTO  '
# What the live engine said without the cut agent (printed at the end:
# not asserted, the late events may or may not change it).
curl -sf "$API/api/v1/incidents?limit=1" > "$TMP/during.json" || true
until [ "$(now_ms)" -ge $((CUT_MS + CUT_SECONDS * 1000)) ]; do sleep 0.5; done
kill -HUP "$PROXY_PID"
wait_until 30 "the proxy did not heal" \
    has_line "$TMP/proxy.log" 'proxy: mode pass'
HEAL_MS=$(now_ms)

# The cut agent's events, all of them: wait until one it recorded after
# the heal is stored (it ships oldest first, one batch at a time).
eu_events() {
    curl -sf "$API/api/v1/timeline?cluster=eu-west-1&limit=10000&from=0" \
        > "$TMP/eu.json"
}
healed_in() {
    eu_events && jq -e --argjson h "$HEAL_MS" \
        '[.events[] | select(.time_ms > $h)] | length > 0' "$TMP/eu.json" \
        > /dev/null
}
wait_until 90 "the cut agent's events after the heal never arrived" healed_in
jq -e '.truncated == false' "$TMP/eu.json" > /dev/null ||
    fail "more than 10000 events of eu-west-1"
assert_eq "$(jq -r '[.events[].epoch] | unique | length' "$TMP/eu.json")" 1 \
    "eu-west-1's agent epochs"
assert_eq "$(jq -r '[.events[].seq] | sort | . == [range(1; length + 1)]' \
    "$TMP/eu.json")" true "eu-west-1's seqs are 1..N without a hole"
assert_eq "$(jq -r '[.events[] | select(.kind == "gap" or .kind == "drop")]
    | length' "$TMP/eu.json")" 0 "gaps and drops of eu-west-1"
assert_eq "$(jq -r --argjson c "$CUT_MS" --argjson h "$HEAL_MS" '
    [.events[] | select(.kind == "dns" and .time_ms > $c and .time_ms < $h
     and [.fields.new[].value] == ["127.0.2.1"])] | length' "$TMP/eu.json")" \
    1 "eu-west-1's DNS change during the cut"
echo "demo_chaos: eu-west-1's $(jq '.events | length' "$TMP/eu.json") events all stored"

# The live incident row equals the rebuild's, on one copy of the database
# (so both see the same events). Polled: the late batches' replay is
# written a few seconds after they are stored (the engine holds 5 s).
CFG=$(demo_dir)/collector.yaml
same_as_rebuild() {
    rm -f "$TMP/copy.db"
    "$COLLECTOR" backup --db "$DB" --out "$TMP/copy.db" > /dev/null 2>&1 ||
        return 1
    "$COLLECTOR" incidents --db "$TMP/copy.db" > "$TMP/live.json" || return 1
    "$COLLECTOR" incidents rebuild --config "$CFG" --db "$TMP/copy.db" \
        > /dev/null 2> "$TMP/rebuild.log" || return 1
    "$COLLECTOR" incidents --db "$TMP/copy.db" > "$TMP/rebuilt.json" ||
        return 1
    jq -e '.count == 1 and .incidents[0].open == false' "$TMP/live.json" \
        > /dev/null && cmp -s "$TMP/live.json" "$TMP/rebuilt.json" &&
        return 0
    # What fail() shows (it prints $TMP/*.log) if this never holds.
    { echo "live incidents:"; cat "$TMP/live.json"
      echo "rebuilt from the same events:"; cat "$TMP/rebuilt.json"
    } > "$TMP/compare.log" 2>&1
    return 1
}
wait_until 60 "the live incident never equalled the rebuild's" same_as_rebuild
RTO=$(jq -r '.incidents[0].durations_ms.rto' "$TMP/live.json")
[ "$RTO" -ge 2000 ] && [ "$RTO" -le 10000 ] ||
    fail "RTO $RTO ms outside [2000, 10000] ms (see demo_failover.sh)"
echo "demo_chaos: the incident equals the rebuild's, RTO $RTO ms"
echo "demo_chaos: during the cut: $(jq -c '.incidents[0] | [.times.first_failure.ms, .times.detected.ms, .times.dns_switched_all.ms, .durations_ms]' "$TMP/during.json" 2> /dev/null)"
echo "demo_chaos: after the heal: $(jq -c '.incidents[0] | [.times.first_failure.ms, .times.detected.ms, .times.dns_switched_all.ms, .durations_ms]' "$TMP/live.json")"

# Stopped, the demo stops everything it started.
kill -TERM "$DEMO_PID"
wait "$DEMO_PID" || true
assert_demo_left_nothing
