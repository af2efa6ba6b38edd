# agent_lib.sh -- helpers for end-to-end tests of a running agent: the
# common head of its config, and polling the collector's timeline. Sourced
# after lib.sh (needs $URL and $TOKEN from start_collector).

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

# tl: the whole timeline (one page: up to 10000 events).
tl() { curl -sf "$URL/api/v1/timeline?from=0&limit=10000"; }

# wait_jq EXPR: until the timeline satisfies the jq expression (60 s).
wait_jq() {
    wait_until 60 "timeline never satisfied: $1" tl_is "$1"
}
tl_is() {
    tl | jq -e "$1" > /dev/null
}
