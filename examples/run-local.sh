#!/usr/bin/env bash
# run-local.sh -- the local demo: three "regions" on loopback, each with an
# app (tests/http_target) and an agent probing all three apps, and one
# collector. Prints the API URL and a running count of stored events.
# Ctrl-C stops everything. Usage: examples/run-local.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build}
REGIONS=(eu-west-1 us-east-1 ap-southeast-1)
API=http://127.0.0.1:8480
mkdir -p run
apps=() agents=() collector=

# Agents first (they flush to the collector), then the collector, then the
# apps. Children run in their own sessions (setsid), so Ctrl-C reaches only
# this script and each child gets exactly one SIGTERM.
stop_all() {
    trap - INT TERM EXIT
    echo
    echo "stopping..."
    for group in "${agents[*]}" "$collector" "${apps[*]}"; do
        [ -n "$group" ] || continue
        kill -TERM $group 2>/dev/null || true
        for p in $group; do
            while kill -0 "$p" 2>/dev/null; do sleep 0.1; done
        done
    done
}
trap stop_all INT TERM EXIT

for i in 0 1 2; do
    r=${REGIONS[$i]}
    setsid "$BIN/tests/http_target" --listen "127.0.$((i + 1)).1:8081" \
        --region "$r" > /dev/null &
    apps+=($!)
    echo $! > "run/app-$r.pid"
done
setsid "$BIN/collector/sextant-collector" --config examples/collector.yaml \
    2> run/collector.log &
collector=$!
for _ in $(seq 50); do
    curl -sf "$API/healthz" > /dev/null && break
    sleep 0.1
done
curl -sf "$API/healthz" > /dev/null \
    || { echo "collector did not start; see run/collector.log"; exit 1; }
for i in 0 1 2; do
    r=${REGIONS[$i]}
    sed -e "s/^cluster: .*/cluster: $r/" -e "s/^region: .*/region: $r/" \
        -e "s/listen: 127.0.1.1:9464/listen: 127.0.$((i + 1)).1:9464/" \
        -e "s/^node: .*/node: $r-node-a/" \
        -e "s/token: demo-token-.*/token: demo-token-$r/" \
        -e "s|path: run/spool-.*|path: run/spool-$r.db|" \
        examples/agent.yaml > "run/agent-$r.yaml"
    setsid "$BIN/agent/sextant-agent" --config "run/agent-$r.yaml" \
        2> "run/agent-$r.log" &
    agents+=($!)
done

# The read token of examples/collector.yaml (api_tokens).
AUTH="Authorization: Bearer demo-read-token-0123"
cat <<TXT
Sextant is running: 3 apps, 3 agents, 1 collector (logs in run/).
  Timeline API: $API/api/v1/timeline
  Agent metrics: http://127.0.1.1:9464/metrics (127.0.2.1, 127.0.3.1 too)
  e.g.          curl -s -H '$AUTH' '$API/api/v1/timeline?limit=5' | jq .
  Make a region fail: kill \$(cat run/app-eu-west-1.pid)
Ctrl-C to stop.
TXT
while sleep 5; do
    curl -sf -H "$AUTH" "$API/api/v1/timeline?limit=10000" | jq -r '
        [.events[] | select(.kind == "probe")] as $p
        | "events in the last hour: \(.count)  probes failed: \([$p[] | select(.fields.ok | not)] | length)  "
          + ([$p | group_by(.cluster)[] | "\(.[0].cluster)=\(length)"] | join(" "))' \
        || echo "collector not answering"
done
