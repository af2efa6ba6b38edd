#!/usr/bin/env bash
# demo.sh -- Sextant's demo: a three-region active-passive failover on one
# machine, watched as it happens, in about a minute. Everything runs on
# loopback and in a fresh temporary folder (no internet, no Kubernetes):
#   - a collector with a temporary database and the "shop" service (the
#     dashboard's URL is the first thing printed);
#   - per region (eu-west-1 primary on 127.0.1.1, us-east-1 standby on
#     127.0.2.1, ap-southeast-1 on 127.0.3.1) an app (tools/demo_app) and
#     its own agent probing all three apps, the global name app.global.test
#     (HTTP through the traffic manager's DNS, and its DNS answers) and,
#     in us-east-1, the standby database's replication lag;
#   - a real dnsmasq answering app.global.test, and a "traffic manager"
#     (a loop of this script) that health-checks the primary and, after a
#     few failures in a row, points the name at the standby, reloads
#     dnsmasq and records a failover event.
# After --break-after seconds it breaks the primary's app; it narrates what
# follows, one line per step, prints a summary of the incident from the
# API, then keeps running until Ctrl-C (or, with --exit, exits: 0 when the
# incident was seen, detected, and closed; 1 otherwise). Whatever it
# started is stopped, and its folder removed, on any exit.
#
# Usage: examples/demo.sh [--build DIR] [--exit] [--break-after S]
#          [--db FILE] [--collector-listen IP:PORT]
#          [--agent-collector REGION=URL]
# (run examples/demo.sh --help for what each does).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    cat <<'TXT'
Usage: examples/demo.sh [OPTIONS]
  --build DIR            the build folder (default: build, as the README
                         builds it)
  --exit                 exit once the incident closed (status 0), or
                         when it did not happen in time (status 1),
                         instead of running until Ctrl-C
  --break-after S        break the primary S seconds after the agents
                         start, and not before every region is seen
                         healthy (default 30)
  --db FILE              keep the collector's database in FILE (default:
                         a temporary one, removed on exit)
  --collector-listen IP:PORT
                         the collector's address (default 127.0.0.1 on a
                         free port)
  --agent-collector REGION=URL
                         REGION's agent ships to URL instead of the
                         collector (e.g. a proxy a test cuts)
TXT
}

BUILD=build
EXIT_AFTER=0
BREAK_AFTER=30
KEEP_DB=
COLLECTOR_LISTEN=127.0.0.1:0
declare -A AGENT_URL=()
while [ $# -gt 0 ]; do
    case "$1" in
        --build) BUILD=${2:?--build needs a folder}; shift ;;
        --exit) EXIT_AFTER=1 ;;
        --break-after) BREAK_AFTER=${2:-}; shift
            [[ $BREAK_AFTER =~ ^[0-9]+$ ]] ||
                { echo "demo: --break-after takes whole seconds" >&2; exit 2; } ;;
        --db) KEEP_DB=${2:?--db needs a file}; shift ;;
        --collector-listen) COLLECTOR_LISTEN=${2:?}; shift ;;
        --agent-collector)
            [[ ${2:-} =~ ^([a-z0-9-]+)=(https?://.+)$ ]] ||
                { echo "demo: --agent-collector takes REGION=URL" >&2; exit 2; }
            AGENT_URL[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
    shift
done

COLLECTOR=$BUILD/collector/sextant-collector
AGENT=$BUILD/agent/sextant-agent
APP=$BUILD/tools/demo_app
DNSMASQ=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
for f in "$COLLECTOR" "$AGENT" "$APP"; do
    [ -x "$f" ] || { echo "demo: $f not found: build first (see the README)" >&2
                     exit 2; }
done
[ -x "$DNSMASQ" ] || { echo "demo: dnsmasq not found (scripts/deps.sh)" >&2
                       exit 2; }
for c in curl jq; do
    command -v $c > /dev/null || { echo "demo: $c not found (scripts/deps.sh)" >&2
                                   exit 2; }
done

# The settings, shortened for the demo (real ones are minutes, not
# seconds: Route 53 checks every 30 s or 10 s, and a record's TTL is often
# 60 s). The test demo_failover derives its RTO window from these.
PROBE_INTERVAL=1        # s, every agent target
UNHEALTHY_AFTER=3       # failures in a row: a target is unhealthy
TM_PERIOD=2             # s, the traffic manager's health check
TM_FAILURES=3           # failures in a row before it moves the name
DNS_TTL=5               # s, of app.global.test's answers
STABLE=10               # s healthy through the name: incident closed
BACKOFF_MAX=2           # s, an agent's longest wait between retries

REGIONS=(eu-west-1 us-east-1 ap-southeast-1)
ADDRS=(127.0.1.1 127.0.2.1 127.0.3.1)
ROLES=(primary standby standby)
GLOBAL=app.global.test

DIR=$(mktemp -d "${TMPDIR:-/tmp}/sextant-demo.XXXXXX")
PIDS=()                 # every process started
FIRST_AGENT=1000        # index in PIDS of the first agent, once started
DB=${KEEP_DB:-$DIR/sextant.db}

# alive PID...: any of them is still running.
alive() {
    local p
    for p; do kill -0 "$p" 2> /dev/null && return 0; done
    return 1
}
# stop PID...: SIGTERM to each, up to 10 s for all to exit, then SIGKILL.
stop() {
    local deadline=$(( $(date +%s) + 10 ))
    [ $# -gt 0 ] || return 0
    kill -TERM "$@" 2> /dev/null || true
    while alive "$@" && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.1; done
    kill -KILL "$@" 2> /dev/null || true
}
# Stops what the demo started: the traffic manager and the agents first
# (they ship their last events to the collector), then the rest; removes
# the folder. Runs on every exit: the end, Ctrl-C, a failure.
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop "${PIDS[@]:FIRST_AGENT}"
    stop "${PIDS[@]:0:FIRST_AGENT}"
    wait 2> /dev/null || true
    rm -rf "$DIR"
    say "stopped everything and removed $DIR"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# say TEXT: one line of narration, with the time (UTC).
say() {
    printf '%s  %s\n' "$(date -u +%H:%M:%S)" "$*"
}
die() {
    say "FAILED: $*"
    for f in "$DIR"/*.log; do
        [ -e "$f" ] && { echo "--- $f"; tail -n 15 "$f"; }
    done
    exit 1
}
now_ms() {
    echo $(( $(date +%s%N) / 1000000 ))
}
# hms UTC: 2026-12-05T03:30:01.234Z -> 03:30:01.234
hms() {
    local t=${1#*T}
    echo "${t%Z}"
}
# wait_line FILE PATTERN WHAT: until FILE has a line matching PATTERN.
wait_line() {
    local i
    for ((i = 0; i < 300; i++)); do
        grep -q -- "$2" "$1" 2> /dev/null && return 0
        sleep 0.1
    done
    die "$3 (no '$2' in $1 after 30 s)"
}

# start NAME CMD...: runs CMD in its own session (so a Ctrl-C reaches
# only this script, which stops it once), log in $DIR/NAME.log.
start() {
    local name=$1
    shift
    setsid "$@" > "$DIR/$name.out" 2> "$DIR/$name.log" &
    PIDS+=($!)
    STARTED+=("$name=$!")
}
STARTED=()

start_collector() {
    local i
    {
        printf 'listen: %s\ndb: %s\nlog_level: info\nclusters:\n' \
            "$COLLECTOR_LISTEN" "$DB"
        for r in "${REGIONS[@]}"; do
            printf '  - name: %s\n    token: demo-token-%s\n' "$r" "$r"
        done
        cat <<YAML
services:
  - name: shop
    global_name: $GLOBAL
    pattern: active-passive
    regions:
YAML
        for i in 0 1 2; do
            printf '      - name: %s\n        role: %s\n' \
                "${REGIONS[$i]}" "${ROLES[$i]}"
            printf '        targets: [app-%s]\n        answers: [%s]\n' \
                "${REGIONS[$i]}" "${ADDRS[$i]}"
            [ "$i" != 1 ] || printf '        lag: {metric: %s, target: %s}\n' \
                pg_replication_lag_seconds db-us-east-1
        done
        cat <<YAML
    global_targets: [app-global, app-global-dns]
incidents:
  stable: ${STABLE}s
YAML
    } > "$DIR/collector.yaml"
    start collector "$COLLECTOR" --config "$DIR/collector.yaml"
    wait_line "$DIR/collector.log" ', ready$' "the collector did not start"
    C_PORT=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' \
             "$DIR/collector.log" | head -n1)
    C_HOST=${COLLECTOR_LISTEN%:*}
    API=http://$C_HOST:$C_PORT
}

# The three apps listen on one port (the global name's answer is an
# address only), free on all three addresses: the first picks it, the
# others follow; on a clash, all try again on a new one.
start_apps() {
    local try i pids
    for ((try = 0; try < 10; try++)); do
        start app-eu-west-1 "$APP" --listen "${ADDRS[0]}:0" \
            --region eu-west-1 --down-file "$DIR/eu-west-1.broken"
        wait_line "$DIR/app-eu-west-1.out" '^[0-9]' "the eu-west-1 app did not start"
        APP_PORT=$(head -n1 "$DIR/app-eu-west-1.out")
        start app-us-east-1 "$APP" --listen "${ADDRS[1]}:$APP_PORT" \
            --region us-east-1 --lag
        start app-ap-southeast-1 "$APP" --listen "${ADDRS[2]}:$APP_PORT" \
            --region ap-southeast-1
        pids=("${PIDS[@]: -3}")
        for i in 1 2; do
            until grep -q '^[0-9]' "$DIR/app-${REGIONS[$i]}.out" ||
                  ! kill -0 "${pids[$i]}" 2> /dev/null; do sleep 0.05; done
        done
        if grep -q '^[0-9]' "$DIR/app-us-east-1.out" &&
           grep -q '^[0-9]' "$DIR/app-ap-southeast-1.out"; then
            return 0
        fi
        kill "${pids[@]}" 2> /dev/null || true
        PIDS=("${PIDS[@]:0:${#PIDS[@]}-3}")
        STARTED=("${STARTED[@]:0:${#STARTED[@]}-3}")
    done
    die "no port free on ${ADDRS[*]} after 10 tries"
}

# dnsmasq on a random port (again on another while one is taken: it exits
# at once then), answering app.global.test from $DIR/hosts.
start_dns() {
    local i user=()
    [ "$(id -u)" = 0 ] && user=(--user=root)
    echo "${ADDRS[0]} $GLOBAL" > "$DIR/hosts"
    for ((i = 0; i < 10; i++)); do
        DNS_PORT=$((20000 + RANDOM % 40000))
        start dnsmasq "$DNSMASQ" --keep-in-foreground --port="$DNS_PORT" \
            --listen-address=127.0.0.1 --bind-interfaces --no-resolv \
            --no-hosts --addn-hosts="$DIR/hosts" --local-ttl="$DNS_TTL" \
            --pid-file="$DIR/dnsmasq.pid" --conf-file=/dev/null \
            --local=/global.test/ --log-facility=- "${user[@]}"
        DNS_PID=${PIDS[-1]}
        until grep -q "read $DIR/hosts" "$DIR/dnsmasq.log" ||
              ! kill -0 "$DNS_PID" 2> /dev/null; do sleep 0.05; done
        grep -q "read $DIR/hosts" "$DIR/dnsmasq.log" && return 0
        unset 'PIDS[-1]' 'STARTED[-1]'
    done
    die "dnsmasq did not start (see $DIR/dnsmasq.log)"
}

# agent_config I: region I's agent: all three apps, the global name (HTTP
# through dnsmasq, and its answers), in us-east-1 the lag gauge.
agent_config() {
    local r=${REGIONS[$1]} i
    cat <<YAML
cluster: $r
region: $r
node: $r-node-a
collector:
  url: ${AGENT_URL[$r]:-$API}
  token: demo-token-$r
spool:
  path: $DIR/spool-$r.db
shipping:
  backoff_initial: 500ms
  backoff_max: ${BACKOFF_MAX}s
admin:
  listen: ${ADDRS[$1]}:0
interval: ${PROBE_INTERVAL}s
timeout: 800ms
unhealthy_after: $UNHEALTHY_AFTER
healthy_after: 2
targets:
YAML
    for i in 0 1 2; do
        printf '  - name: app-%s\n    url: http://%s:%s/healthz\n' \
            "${REGIONS[$i]}" "${ADDRS[$i]}" "$APP_PORT"
    done
    cat <<YAML
  - name: app-global
    url: http://$GLOBAL:$APP_PORT/healthz
    resolver: 127.0.0.1:$DNS_PORT
    served_by_header: X-Served-By
  - name: app-global-dns
    type: dns
    query: $GLOBAL
    resolver: 127.0.0.1:$DNS_PORT
YAML
    [ "$r" = us-east-1 ] && cat <<YAML
  - name: db-us-east-1
    type: metric
    url: http://${ADDRS[1]}:$APP_PORT/metrics
    series:
      - name: pg_replication_lag_seconds
YAML
    return 0
}

start_agents() {
    local i r
    FIRST_AGENT=${#PIDS[@]}
    for i in 0 1 2; do
        r=${REGIONS[$i]}
        agent_config "$i" > "$DIR/agent-$r.yaml"
        start "agent-$r" "$AGENT" --config "$DIR/agent-$r.yaml"
    done
    for r in "${REGIONS[@]}"; do
        wait_line "$DIR/agent-$r.log" 'admin.*listening on' \
            "the $r agent did not start"
    done
}

# The traffic manager: checks the primary's /healthz every TM_PERIOD s (on
# a fixed schedule, not drifting by each check's time); after TM_FAILURES
# failures in a row it points the name at the standby, makes dnsmasq read
# it again (SIGHUP), records a failover event with the standby's agent
# (sextant-agent event), and stops.
traffic_manager() {
    local fails=0 next code
    trap - EXIT INT TERM
    next=$(now_ms)
    while :; do
        code=$(curl -s -o /dev/null -m 1 -w '%{http_code}' \
               "http://${ADDRS[0]}:$APP_PORT/healthz") || true
        if [ "$code" = 200 ]; then
            fails=0
        else
            fails=$((fails + 1))
            say "traffic manager: health check of eu-west-1 failed ($fails of $TM_FAILURES, HTTP ${code:-none})"
        fi
        if [ "$fails" -ge "$TM_FAILURES" ]; then
            echo "${ADDRS[1]} $GLOBAL" > "$DIR/hosts.new"
            mv "$DIR/hosts.new" "$DIR/hosts"
            kill -HUP "$DNS_PID"
            say "traffic manager: $GLOBAL now answers ${ADDRS[1]} (us-east-1)"
            "$AGENT" event --config "$DIR/agent-us-east-1.yaml" \
                --kind failover --from eu-west-1 --to us-east-1 \
                --service shop \
                --text "traffic manager moved $GLOBAL to us-east-1" \
                > /dev/null 2>> "$DIR/traffic-manager.log" &&
                say "traffic manager: failover eu-west-1 -> us-east-1 recorded (sextant-agent event --kind failover)"
            return 0
        fi
        next=$((next + TM_PERIOD * 1000))
        while [ "$(now_ms)" -lt "$next" ]; do sleep 0.1; done
    done
}

# api PATH: GET from the collector's API (empty output on failure).
api() {
    curl -sf -m 5 "$API$1" || true
}

# all_healthy: every region healthy by quorum, the name serving eu-west-1.
all_healthy() {
    api /api/v1/services/shop | jq -e '
        .catching_up == false and .serving == ["eu-west-1"] and
        ([.regions[] | select(.health == "healthy")] | length) == 3' \
        > /dev/null 2>&1
}

# region_of ADDR: the region whose app ADDR is.
region_of() {
    local i
    for i in 0 1 2; do
        [ "$1" != "${ADDRS[$i]}" ] || { echo "${REGIONS[$i]}"; return 0; }
    done
    echo "?"
}

# watch_incident: narrates the incident until it closes; sets INC_ID.
# Fails after 180 s (far past what the settings give, about 30 s).
watch_incident() {
    local deadline=$(( $(now_ms) + 180000 )) inc seen_dns=" " said=" "
    local seen_down=" " down dns c t old new
    INC_ID=
    while [ "$(now_ms)" -lt "$deadline" ]; do
        inc=$(api "/api/v1/incidents?service=shop&from=$((BREAK_MS - 1000))&limit=1" |
              jq -c '.incidents[0] // empty' 2> /dev/null)
        down=$(api "/api/v1/timeline?kind=state&target=app-eu-west-1&from=$((BREAK_MS - 1000))&limit=100" |
              jq -r '.events[] | select(.fields.to == "unhealthy") | "\(.cluster) \(.time)"' 2> /dev/null)
        while read -r c t; do
            [ -n "$c" ] && [[ $seen_down != *" $c "* ]] || continue
            seen_down+="$c "
            say "agent in $c: eu-west-1's app failed ${UNHEALTHY_AFTER} probes in a row, unhealthy at $(hms "$t")"
        done <<< "$down"
        dns=$(api "/api/v1/timeline?kind=dns&from=$((BREAK_MS - 1000))&limit=100" |
              jq -r '.events[] | "\(.cluster) \(.time) \([.fields.old[].value] | join(",")) \([.fields.new[].value] | join(","))"' 2> /dev/null)
        while read -r c t old new; do
            [ -n "$c" ] && [[ $seen_dns != *" $c "* ]] || continue
            seen_dns+="$c "
            say "agent in $c sees the DNS move: $GLOBAL $old ($(region_of "$old")) -> $new ($(region_of "$new")) at $(hms "$t")"
        done <<< "$dns"
        if [ -n "$inc" ]; then
            INC_ID=$(jq -r .id <<< "$inc")
            narrate_times "$inc"
            [ "$(jq -r .open <<< "$inc")" = false ] && return 0
        fi
        sleep 0.5
    done
    return 1
}

# narrate_times INC: a line for each time of the incident not yet told.
narrate_times() {
    local t
    t=$(jq -r '.times.detected.utc // empty' <<< "$1")
    if [ -n "$t" ] && [[ $said != *" detected "* ]]; then
        said+="detected "
        say "incident #$INC_ID opened: eu-west-1 is unhealthy for most agents (quorum), detected at $(hms "$t")"
    fi
    t=$(jq -r '.times.restored.utc // empty' <<< "$1")
    if [ -n "$t" ] && [[ $said != *" restored "* ]]; then
        said+="restored "
        say "restored: clients of $GLOBAL are served again (by $(jq -r .to_region <<< "$1")) since $(hms "$t")"
    fi
    t=$(jq -r '.times.closed.utc // empty' <<< "$1")
    if [ -n "$t" ] && [[ $said != *" closed "* ]]; then
        said+="closed "
        say "incident #$INC_ID closed: the service stayed healthy for ${STABLE} s"
    fi
}

# summary ID: the incident, one screen, from GET /api/v1/incidents/ID.
summary() {
    local inc from to
    inc=$(api "/api/v1/incidents/$1")
    [ -n "$inc" ] || die "GET /api/v1/incidents/$1 failed"
    from=$(jq -r '(.times.first_failure.ms - 60000) / 1000 | floor | todate' <<< "$inc")
    to=$(jq -r '(.times.closed.ms + 10000) / 1000 | floor | todate' <<< "$inc")
    jq -r --arg api "$API" --arg from "$from" --arg to "$to" '
        def t: if . == null then "-" else .utc | sub(".*T"; "") | sub("Z"; " UTC") end;
        def s: if . == null then "-" else "\(. / 1000 | tostring) s" end;
        "",
        "==== Incident #\(.id): what happened (GET /api/v1/incidents/\(.id)) ====",
        "service            \(.service) (\(.pattern))",
        "failed region      \(.region); traffic moved to \(.to_region // "-")",
        "first failure      \(.times.first_failure | t)   the first failed probe of eu-west-1",
        "detected           \(.times.detected | t)   most agents see eu-west-1 unhealthy",
        "failover start     \(.times.failover_start | t)   the failover event or DNS move, first",
        "DNS switched       \(.times.dns_switched_first | t)   first agent; all: \(.times.dns_switched_all | t)",
        "restored           \(.times.restored | t)   served again through the name",
        "closed             \(.times.closed | t)",
        "time to detect     \(.durations_ms.time_to_detect | s)   first failure to detected",
        "time to fail over  \(.durations_ms.time_to_failover | s)   detected to DNS switched (all)",
        "RTO                \(.durations_ms.rto | s)   first failure to restored",
        "RPO (estimate)     \(.rpo_ms | s)   the standby'"'"'s replication lag",
        "incident page      \($api)/#/incidents/\(.id)",
        "timeline           \($api)/#/timeline?service=shop&from=\($from)&to=\($to)",
        ""' <<< "$inc"
}

START_MS=$(now_ms)
start_collector
say "Sextant demo: dashboard at $API/  (files in $DIR, removed on exit)"
start_apps
say "apps up on port $APP_PORT: eu-west-1 ${ADDRS[0]} (primary), us-east-1 ${ADDRS[1]} (standby, with a replication-lag gauge), ap-southeast-1 ${ADDRS[2]}"
start_dns
say "DNS: dnsmasq on 127.0.0.1:$DNS_PORT answers $GLOBAL -> ${ADDRS[0]} (eu-west-1)"
say "shortened for the demo: DNS TTL ${DNS_TTL} s; traffic manager checks eu-west-1 every ${TM_PERIOD} s and moves the name after ${TM_FAILURES} failures; agents probe every ${PROBE_INTERVAL} s, a target is unhealthy after ${UNHEALTHY_AFTER} failures; an incident closes after ${STABLE} s healthy"
start_agents
AGENTS_MS=$(now_ms)
traffic_manager &
PIDS+=($!)
STARTED+=("traffic-manager=$!")
say "agents up: one per region, each probing the 3 apps and $GLOBAL every ${PROBE_INTERVAL} s"
say "processes: ${STARTED[*]}"
say "listening: collector $C_HOST:$C_PORT, dnsmasq 127.0.0.1:$DNS_PORT, apps ${ADDRS[*]} port $APP_PORT, agents' admin $(for r in "${REGIONS[@]}"; do sed -n 's/.*listening on \([0-9.:]*\) .*/\1/p' "$DIR/agent-$r.log" | head -n1; done | tr '\n' ' ')"

deadline=$(( $(now_ms) + 120000 ))
until all_healthy; do
    [ "$(now_ms)" -lt "$deadline" ] || die "the regions did not all turn healthy within 120 s"
    sleep 0.5
done
say "all 3 agents see all 3 regions healthy; $GLOBAL serves eu-west-1"
BREAK_AT=$((AGENTS_MS + BREAK_AFTER * 1000))
[ "$(now_ms)" -ge "$BREAK_AT" ] ||
    say "breaking eu-west-1 at $(date -u -d "@$((BREAK_AT / 1000))" +%H:%M:%S): open the dashboard to watch"
while [ "$(now_ms)" -lt "$BREAK_AT" ]; do sleep 0.2; done

BREAK_MS=$(now_ms)
touch "$DIR/eu-west-1.broken"
say "BREAK: eu-west-1's app now answers 503 on /healthz (the primary is down)"
watch_incident || die "no incident closed within 180 s of the break"
summary "$INC_ID"
if [ "$EXIT_AFTER" = 1 ]; then
    jq -e '.durations_ms.rto != null and .times.detected != null' \
        <<< "$(api "/api/v1/incidents/$INC_ID")" > /dev/null ||
        die "incident #$INC_ID has no detection or no RTO"
    exit 0
fi
say "still running: look around the dashboard at $API/ ; Ctrl-C stops everything"
while :; do sleep 1; done
