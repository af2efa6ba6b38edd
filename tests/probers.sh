# probers.sh -- `probers: 2` end to end: one collector, four real agents of
# one cluster (nodes a..d, each its own spool and admin port), six HTTP
# targets. Once every agent holds the live list of four, each target is
# probed by exactly two agents (from the timeline) and all six are
# covered; each handoff is a state change to unknown whose reason starts
# "handoff:", and /api/v1/status shows the agent as handed_off, the
# target still healthy. Agent b is killed: within the cluster's
# probers_window its targets move to the others, again two per target,
# and no target's status turns unhealthy or unknown meanwhile.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/agent_lib.sh"

NODES="a b c d"
TARGETS="t1 t2 t3 t4 t5 t6"

start_target
write_collector_config "$TMP/collector.yaml"
# A short window, so that a dead node leaves the list within seconds.
sed -i "s/^    token: $TOKEN\$/&\n    probers_window: 5s/" "$TMP/collector.yaml"
grep -q probers_window "$TMP/collector.yaml" || fail "config edit failed"
start_collector "$TMP/c.db"

declare -A APID ADMIN
for n in $NODES; do
    {
        cat <<YAML
cluster: test
region: r1
node: $n
collector: {url: "$URL", token: $TOKEN}
spool: {path: $TMP/spool-$n.db}
admin: {listen: "127.0.0.1:0"}
shipping: {batch_max_age: 200ms}
interval: 500ms
probers: 2
targets:
YAML
        for t in $TARGETS; do
            printf '  - {name: %s, url: "http://127.0.0.1:%s/%s"}\n' \
                "$t" "$TARGET_PORT" "$t"
        done
    } > "$TMP/agent-$n.yaml"
    "$AGENT" --config "$TMP/agent-$n.yaml" 2> "$TMP/agent-$n.log" &
    APID[$n]=$!
    PIDS+=($!)
done
for n in $NODES; do
    ADMIN[$n]=$(agent_admin_addr "$TMP/agent-$n.log")
done

# metric NODE NAME: the value of an unlabelled gauge on NODE's /metrics.
metric() {
    curl -sf "http://${ADMIN[$1]}/metrics" |
        awk -v m="$2" '$1 == m { print $2 }'
}
# all_live COUNT NODES...: every NODE's agent holds a list of COUNT.
all_live() {
    local want=$1 n
    shift
    for n in "$@"; do
        [ "$(metric "$n" sextant_agent_live_nodes)" = "$want" ] || return 1
    done
}
# probed_sum NODES...: the targets those agents probe, added up.
probed_sum() {
    local s=0 n
    for n in "$@"; do s=$((s + $(metric "$n" sextant_agent_targets_probed)))
    done
    echo "$s"
}

# probers_since MS: per target, the sorted nodes with a probe after MS,
# as "target:node,node" lines. Polled often: a plain curl, not api_get,
# whose every reply is kept for the OpenAPI check (tl below checks one).
probers_since() {
    curl -sf "$URL/api/v1/timeline?from=$1&kind=probe&limit=10000" |
        jq -r '[.events[] | {t: .target, n: .node}] | group_by(.t)[] |
               "\(.[0].t):\([.[].n] | unique | join(","))"'
}
# two_each MS [GONE]: every target probed by exactly two nodes after MS,
# none of them GONE.
two_each() {
    local lines
    lines=$(probers_since "$1")
    [ "$(printf '%s\n' "$lines" | grep -c .)" = 6 ] || return 1
    printf '%s\n' "$lines" | awk -F'[:,]' -v gone="${2:-}" '
        NF != 3 || $2 == gone || $3 == gone { bad = 1 }
        END { exit bad }'
}
# settled MS SUM NODES...: two_each holds over the last 4 s, a window
# that starts no sooner than a second after MS (a probe in flight at a
# handoff is cancelled, but one may have been recorded just before it),
# and NODES probe SUM targets in all. Sliding, so that a list that moved
# meanwhile on a slow machine settles again. GONE (env) names a dead node.
settled() {
    local from=$(( $1 + 1000 )) now want=$2
    shift 2
    now=$(now_ms)
    [ "$now" -gt $(( from + 4000 )) ] || return 1
    [ $(( now - 4000 )) -lt "$from" ] || from=$(( now - 4000 ))
    two_each "$from" "${GONE:-}" && [ "$(probed_sum "$@")" = "$want" ]
}
# status_ok: every target healthy in /api/v1/status, none of its agents
# unhealthy or unknown (handed_off and healthy only).
status_ok() {
    api_get api/v1/status | status_check
}
# status_check: status_ok on the status JSON on stdin.
status_check() {
    jq -e '
        [.targets[] | select(.cluster == "test")] as $t |
        ($t | length) == 6 and
        all($t[]; .health == "healthy" and
            all(.agents[]; .health == "healthy" or
                           .health == "handed_off"))' > /dev/null
}

wait_until 60 "agents never all held the list of 4" all_live 4 $NODES
T0=$(now_ms)
wait_until 60 "targets never settled at two probers each" \
    settled "$T0" 12 $NODES
probers_since "$(( $(now_ms) - 4000 ))" > "$TMP/before"
echo "probers before: $(tr '\n' ' ' < "$TMP/before")"
# A handoff is said: a state change to unknown, "handoff:", per agent.
tl | jq -e '[.events[] | select(.kind == "state" and
             .fields.to == "unknown" and
             (.fields.reason | startswith("handoff:")))] | length >= 4' \
    > /dev/null || fail "no handoff state events in the timeline"
grep -q 'probers: probing [0-9] of 6 targets' "$TMP/agent-a.log" ||
    fail "agent a never logged its set"
wait_until 30 "status never healthy with handoffs" status_ok
api_get api/v1/status | jq -e '[.targets[].agents[] |
    select(.health == "handed_off")] | length > 0' > /dev/null ||
    fail "status shows no agent handed_off"

# Agent b dies: its targets move to the others within the window; the
# status is sampled all along the move and must never turn.
# (Its own curl: api_get's files are the main script's.)
( while :; do
      curl -sf "$URL/api/v1/status" | status_check ||
          echo bad >> "$TMP/samples"
      sleep 0.3
  done ) &
SAMPLER=$!
PIDS+=($SAMPLER)
kill -9 "${APID[b]}"
T1=$(now_ms)
wait_until 60 "agents never dropped b from the list" all_live 3 a c d
T2=$(now_ms)
GONE=b wait_until 60 "targets never settled without b" settled "$T2" 12 a c d
echo "probers after: $(probers_since $(( $(now_ms) - 4000 )) | tr '\n' ' ')"
echo "moved $(( (T2 - T1) / 1000 )) s after the kill"
kill "$SAMPLER"
[ ! -s "$TMP/samples" ] ||
    fail "status turned during the move ($(wc -l < "$TMP/samples") samples)"
