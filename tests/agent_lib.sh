# agent_lib.sh -- helpers for end-to-end tests of a running agent: the
# common head of its config, polling the collector's timeline, waiting for
# it to exit and reading its log's time stamps. Sourced after lib.sh
# (agent_test_setup and agent_yaml_head need $URL and $TOKEN from
# start_collector).

# agent_test_setup: a local target and a collector on free ports; CFG is
# where the agent's config goes.
agent_test_setup() {
    start_target
    start_collector "$TMP/c.db"
    CFG=$TMP/agent.yaml
}

# agent_yaml_head SPOOL: cluster, region, node, collector and spool lines.
agent_yaml_head() {
    cat <<YAML
cluster: ${CLUSTER:-test}
region: test-region
node: n1
collector: {url: "$URL", token: $TOKEN}
spool: {path: $1}
YAML
}

# agent_admin_addr LOG: IP:PORT of the admin listener, once the agent
# writing LOG says it listens.
agent_admin_addr() {
    wait_for "$1" 'admin: listening on'
    sed -n 's/.*admin: listening on \([0-9.]*:[0-9]*\).*/\1/p' "$1" |
        head -n 1
}

# tl: the whole timeline (one page: up to 10000 events).
tl() { api_get "api/v1/timeline?from=0&limit=10000"; }

# wait_jq EXPR: until the timeline satisfies the jq expression (60 s).
wait_jq() {
    wait_until 60 "timeline never satisfied: $1" tl_is "$1"
}
tl_is() {
    tl | jq -e "$1" > /dev/null
}

# not_running PID: the process is gone (a zombie until reaped counts).
not_running() {
    ! kill -0 "$1" 2>/dev/null ||
        [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" = Z ]
}

# log_ms LOG PATTERN: the time stamp the process wrote on the first line
# of LOG matching PATTERN, as ms of the UTC day (common/log.c's format).
log_ms() {
    grep -m1 -- "$2" "$1" |
        sed -n 's/^[0-9-]*T\([0-9]*\):\([0-9]*\):\([0-9]*\)\.\([0-9]*\)Z.*/\1 \2 \3 \4/p' |
        awk '{ print (($1 * 60 + $2) * 60 + $3) * 1000 + $4 }'
}

# log_gap_ms LOG FIRST LATER: ms between the first lines matching FIRST
# and LATER by the process's own time stamps (over midnight too).
log_gap_ms() {
    local ms=$(( $(log_ms "$1" "$3") - $(log_ms "$1" "$2") ))
    [ "$ms" -ge 0 ] || ms=$((ms + 86400000))
    echo "$ms"
}
