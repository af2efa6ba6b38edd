#!/usr/bin/env bash
# probe_bench.sh -- the agent's cost beside its peer, measured in one run:
# 1000 HTTP targets on loopback probed every 10 s by a real sextant-agent
# (shipping to a real sextant-collector) and, at the same time, by
# Prometheus' blackbox_exporter (asked by a real Prometheus server, as in
# production). Samples CPU (utime+stime) and RSS of the agent and of
# blackbox_exporter only, over a window after a warm-up, checks that both
# really probed, and prints a table, the ratios and the goals of issue 4.
# Does not judge the collector, Prometheus or the target server (their CPU
# is printed as context). Everything listens on 127.0.0.0/8 only.
#
# usage: bench/probe_bench.sh [--build DIR] [--duration S] [--warmup S]
#                             [--targets N] [--servers N] [--keep DIR]
#   --build DIR    a build folder holding agent/sextant-agent,
#                  collector/sextant-collector and tests/http_target;
#                  default: build (Release) into ./build-bench of this tree
#   --duration S   measured window, seconds (default 300)
#   --warmup S     seconds before the window, so both have ramped up
#                  (default 30: first rounds spread over 10 s, health
#                  settles after the second round)
#   --targets N    targets (default 1000), each its own URL path /t/NNNN
#   --servers N    http_target processes sharing the targets (default 1),
#                  on 127.0.10.1, 127.0.10.2, ...
#   --keep DIR     keep configs, logs and the per-second samples in DIR
# Exit status: 0 the run was valid (whether or not the goals were met),
# 1 it was not (a process died, or too few probes ran), 2 usage.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=
DURATION=300
WARMUP=30
NTARGETS=1000
NSERVERS=1
KEEP=
INTERVAL=10                 # seconds, for both; the issue's figure
TIMEOUT=5                   # seconds, per probe, for both

usage() { sed -n '/^# usage:/,/^# Exit/p' "$0" | sed 's/^# \{0,1\}//' >&2;
          exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
    --build) BUILD=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --targets) NTARGETS=$2; shift 2 ;;
    --servers) NSERVERS=$2; shift 2 ;;
    --keep) KEEP=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "probe_bench: unknown argument $1" >&2; usage ;;
    esac
done
for v in "$DURATION" "$WARMUP" "$NTARGETS" "$NSERVERS"; do
    [[ $v =~ ^[0-9]+$ ]] || { echo "probe_bench: not a number: $v" >&2;
                               exit 2; }
done
[ "$DURATION" -ge 10 ] && [ "$NTARGETS" -ge 1 ] && [ "$NTARGETS" -le 9999 ] \
    && [ "$NSERVERS" -ge 1 ] && [ "$NSERVERS" -le 250 ] \
    || { echo "probe_bench: need --duration >= 10, 1..9999 targets," \
              "1..250 servers" >&2; exit 2; }

. "$SRC/bench/lib.sh"      # say, die, bench_build, wait_for, /proc readers

# --- tools: the peer is installed if missing; the rest we only check ---
if ! command -v prometheus-blackbox-exporter > /dev/null; then
    say "installing prometheus-blackbox-exporter (apt-get)"
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get install -y prometheus-blackbox-exporter > /dev/null \
        || { $SUDO apt-get update > /dev/null &&
             $SUDO apt-get install -y prometheus-blackbox-exporter \
                 > /dev/null; } \
        || die "cannot install prometheus-blackbox-exporter"
fi
BLACKBOX=$(command -v prometheus-blackbox-exporter)
PROMETHEUS=$(command -v prometheus) \
    || die "prometheus not found (apt-get install prometheus)"
for t in curl jq sqlite3 cmake; do
    command -v $t > /dev/null || die "$t not found"
done

# --- the build: given, or made here in Release ---
bench_build sextant-agent sextant-collector http_target
AGENT=$BUILD/agent/sextant-agent
COLLECTOR=$BUILD/collector/sextant-collector
HTTP_TARGET=$BUILD/tests/http_target
for b in "$AGENT" "$COLLECTOR" "$HTTP_TARGET"; do
    [ -x "$b" ] || die "$b missing: build first or pass --build DIR"
done

# --- temp folder and cleanup: every process we start is stopped ---
TMP=$(mktemp -d)
PIDS=()
# Stops in reverse order of start, each given up to 10 s: the agent
# flushes its spool while the collector still runs.
cleanup() {
    local i j p
    trap - EXIT INT TERM
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        p=${PIDS[$i]}
        kill -TERM "$p" 2>/dev/null || continue
        for j in $(seq 100); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    if [ -n "$KEEP" ]; then
        mkdir -p "$KEEP" && cp -r "$TMP"/. "$KEEP"/ \
            && say "kept configs, logs and samples in $KEEP"
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'say "unexpected failure at line $LINENO: $BASH_COMMAND"' ERR
trap 'say "interrupted (SIGINT)"; exit 1' INT
trap 'say "interrupted (SIGTERM)"; exit 1' TERM

# free_port HOST: a port the kernel calls free right now (TESTING.md).
free_port() {
    python3 -c 'import socket, sys
s = socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' \
        "$1" 2>/dev/null && return 0
    local p                          # no python: try random high ports
    while :; do
        p=$((20000 + RANDOM % 30000))
        (exec 3<>"/dev/tcp/$1/$p") 2>/dev/null || { echo $p; return 0; }
    done
}

# wait_http URL: until it answers 200 (30 s).
wait_http() {
    local i
    for i in $(seq 300); do
        curl -sf -o /dev/null "$1" && return 0
        sleep 0.1
    done
    die "$1 did not answer"
}

# --- the targets: one URL path each, spread over the servers ---
SERVERS=() TARGET_PIDS=()
for s in $(seq 1 "$NSERVERS"); do
    host=127.0.10.$s
    "$HTTP_TARGET" --listen "$host:0" > "$TMP/target$s.port" \
        2> "$TMP/target$s.log" &
    PIDS+=($!)
    TARGET_PIDS+=($!)
    wait_for "$TMP/target$s.port" '^[0-9]'
    SERVERS+=("$host:$(head -n1 "$TMP/target$s.port")")
done
: > "$TMP/urls"
for i in $(seq 1 "$NTARGETS"); do
    printf 'http://%s/t/%04d\n' "${SERVERS[$(((i - 1) % NSERVERS))]}" "$i" \
        >> "$TMP/urls"
done

# --- sextant: a collector with a temp db, an agent with N targets ---
TOKEN=bench-token-0123456789
cat > "$TMP/collector.yaml" <<YAML
listen: 127.0.0.1:0
db: $TMP/collector.db
clusters:
  - name: bench
    token: $TOKEN
YAML
"$COLLECTOR" --config "$TMP/collector.yaml" 2> "$TMP/collector.log" &
COLLECTOR_PID=$!
PIDS+=($COLLECTOR_PID)
wait_for "$TMP/collector.log" 'listening on'
CPORT=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' \
        "$TMP/collector.log" | head -n1)

{
    cat <<YAML
cluster: bench
region: bench-region
node: bench-node
collector:
  url: http://127.0.0.1:$CPORT
  token: $TOKEN
spool:
  path: $TMP/spool.db
interval: ${INTERVAL}s
timeout: ${TIMEOUT}s
targets:
YAML
    awk '{ printf "  - name: t%04d\n    url: %s\n", NR, $0 }' "$TMP/urls"
} > "$TMP/agent.yaml"

# --- the peer: blackbox_exporter, asked by Prometheus at the same rate ---
cat > "$TMP/blackbox.yml" <<YAML
modules:
  http_2xx:
    prober: http
    timeout: ${TIMEOUT}s
    http:
      preferred_ip_protocol: ip4
YAML
BBPORT=$(free_port 127.0.0.1)
"$BLACKBOX" --config.file="$TMP/blackbox.yml" \
    --web.listen-address="127.0.0.1:$BBPORT" 2> "$TMP/blackbox.log" &
BLACKBOX_PID=$!
PIDS+=($BLACKBOX_PID)
wait_http "http://127.0.0.1:$BBPORT/metrics"

{
    cat <<YAML
global:
  scrape_interval: ${INTERVAL}s
  scrape_timeout: $((TIMEOUT + 1))s
scrape_configs:
  - job_name: blackbox
    metrics_path: /probe
    params:
      module: [http_2xx]
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: 127.0.0.1:$BBPORT
    static_configs:
      - targets:
YAML
    sed 's/^/          - /' "$TMP/urls"
} > "$TMP/prometheus.yml"
PPORT=$(free_port 127.0.0.1)
"$PROMETHEUS" --config.file="$TMP/prometheus.yml" \
    --storage.tsdb.path="$TMP/tsdb" \
    --web.listen-address="127.0.0.1:$PPORT" 2> "$TMP/prometheus.log" &
PROM_PID=$!
PIDS+=($PROM_PID)

# Both start together: the agent spreads its first round over one
# interval, Prometheus spreads its scrapes over one interval too.
"$AGENT" --config "$TMP/agent.yaml" 2> "$TMP/agent.log" &
AGENT_PID=$!
PIDS+=($AGENT_PID)
wait_for "$TMP/agent.log" 'started'
wait_http "http://127.0.0.1:$PPORT/-/ready"
say "running: $NTARGETS targets on ${SERVERS[*]}, every ${INTERVAL}s;" \
    "warm-up ${WARMUP}s, then ${DURATION}s measured"

# --- sampling: /proc only, no process started per sample ---
alive() {
    local p
    for p in "$AGENT_PID" "$BLACKBOX_PID" "$PROM_PID" "$COLLECTOR_PID" \
             "${TARGET_PIDS[@]}"; do
        kill -0 "$p" 2>/dev/null || die "process $p died; see the logs" \
                                         "(--keep DIR keeps them)"
    done
}
# snapshot: wall time and CPU ticks of every process we watch.
snapshot() {
    local p t=0
    SNAP_T=$EPOCHREALTIME
    SNAP_AGENT=$(cpu_ticks "$AGENT_PID")
    SNAP_BB=$(cpu_ticks "$BLACKBOX_PID")
    SNAP_PROM=$(cpu_ticks "$PROM_PID")
    SNAP_COLL=$(cpu_ticks "$COLLECTOR_PID")
    for p in "${TARGET_PIDS[@]}"; do t=$((t + $(cpu_ticks "$p"))); done
    SNAP_TGT=$t
}

t_end=$((SECONDS + WARMUP))
while [ $SECONDS -lt $t_end ]; do alive; sleep 1; done

snapshot
W0_T=$SNAP_T W0_AGENT=$SNAP_AGENT W0_BB=$SNAP_BB W0_PROM=$SNAP_PROM
W0_COLL=$SNAP_COLL W0_TGT=$SNAP_TGT
W0_MS=$(date +%s%3N)
W0_US=${W0_T/./}
echo "t_s,agent_ticks,agent_rss_kb,blackbox_ticks,blackbox_rss_kb" \
    > "$TMP/samples.csv"
A_RSS_MAX=0 B_RSS_MAX=0
t_end=$((SECONDS + DURATION))
next=$((SECONDS + 30))
while [ $SECONDS -lt $t_end ]; do
    sleep 1
    alive
    ar=$(status_kb "$AGENT_PID" VmRSS)
    br=$(status_kb "$BLACKBOX_PID" VmRSS)
    [ "$ar" -gt "$A_RSS_MAX" ] && A_RSS_MAX=$ar
    [ "$br" -gt "$B_RSS_MAX" ] && B_RSS_MAX=$br
    now_us=${EPOCHREALTIME/./}
    echo "$(((now_us - W0_US) / 1000000)),$(cpu_ticks "$AGENT_PID"),$ar,$(
         cpu_ticks "$BLACKBOX_PID"),$br" >> "$TMP/samples.csv"
    if [ $SECONDS -ge $next ]; then
        say "$((DURATION - t_end + SECONDS))/${DURATION}s:" \
            "agent rss ${ar} kB, blackbox rss ${br} kB"
        next=$((SECONDS + 30))
    fi
done
snapshot
W1_MS=$(date +%s%3N)
A_RSS_END=$(status_kb "$AGENT_PID" VmRSS)
B_RSS_END=$(status_kb "$BLACKBOX_PID" VmRSS)
A_HWM=$(status_kb "$AGENT_PID" VmHWM)
B_HWM=$(status_kb "$BLACKBOX_PID" VmHWM)

# pct TICKS0 TICKS1: CPU as % of one core over the window.
WALL=$(awk -v a="$W0_T" -v b="$SNAP_T" 'BEGIN { printf "%.3f", b - a }')
pct() {
    awk -v t=$(($2 - $1)) -v hz="$TCK" -v w="$WALL" \
        'BEGIN { printf "%.2f", 100 * t / hz / w }'
}
A_CPU=$(pct "$W0_AGENT" "$SNAP_AGENT")
B_CPU=$(pct "$W0_BB" "$SNAP_BB")
P_CPU=$(pct "$W0_PROM" "$SNAP_PROM")
C_CPU=$(pct "$W0_COLL" "$SNAP_COLL")
T_CPU=$(pct "$W0_TGT" "$SNAP_TGT")

# --- did both really probe? Counted over the same window ---
# Agent: probe events it stamped inside the window, as the collector
# stored them; wait for the shipper to deliver the last ones.
q_agent() {
    sqlite3 -readonly "$TMP/collector.db" \
        "SELECT count(*), coalesce(sum(json_extract(data, '\$.ok')), 0),
                count(DISTINCT target)
         FROM events_full WHERE kind = 'probe'
           AND unix_ms >= $W0_MS AND unix_ms < $W1_MS" 2>/dev/null
}
prev= cur=
for i in $(seq 30); do
    cur=$(q_agent || true)
    [ -n "$cur" ] && [ "$cur" = "$prev" ] && break
    prev=$cur
    sleep 1
done
IFS='|' read -r A_N A_OK A_TGTS <<< "$cur"
# blackbox_exporter: probe_success samples Prometheus stored in the window.
promq() {
    curl -sfG "http://127.0.0.1:$PPORT/api/v1/query" \
        --data-urlencode "query=$1" \
        --data-urlencode "time=${W1_MS:0:-3}.${W1_MS: -3}" \
        | jq -r '.data.result[0].value[1] // "0"'
}
SERIES="probe_success{job=\"blackbox\"}[$((W1_MS - W0_MS))ms]"
B_N=$(promq "sum(count_over_time($SERIES))")
B_OK=$(promq "sum(sum_over_time($SERIES))")
B_TGTS=$(promq "count(count_over_time($SERIES))")
EXPECT=$(awk -v n="$NTARGETS" -v w="$WALL" -v i="$INTERVAL" \
         'BEGIN { printf "%d", n * w / i }')

# --- report ---
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" \
          'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
verdict() { [ "$1" = 1 ] && echo met || echo "NOT met"; }
goal_cpu=$(awk -v a="$A_CPU" 'BEGIN { print (a < 5) }')
goal_rss=$(awk -v a="$A_HWM" 'BEGIN { print (a < 16384) }')
goal_rel=$(awk -v a="$A_CPU" -v b="$B_CPU" 'BEGIN { print (a <= b / 2) }')

cat <<TXT

probe_bench: $NTARGETS HTTP targets every ${INTERVAL}s (timeout ${TIMEOUT}s), \
${SERVERS[*]}
window ${WALL}s after a ${WARMUP}s warm-up; $(nproc) CPUs, \
$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
CPU is utime+stime over the window as % of one core; RSS in MiB
(peak = VmHWM over the whole run, final = VmRSS at the window's end).

                     CPU %   RSS peak  RSS final  probes in window (ok)  targets
sextant-agent     $(printf '%7s %10s %10s   %8s (%s) %12s' "$A_CPU" \
    "$(mib "$A_HWM")" "$(mib "$A_RSS_END")" "$A_N" "$A_OK" "$A_TGTS")
blackbox_exporter $(printf '%7s %10s %10s   %8s (%s) %12s' "$B_CPU" \
    "$(mib "$B_HWM")" "$(mib "$B_RSS_END")" "$B_N" "$B_OK" "$B_TGTS")
expected probes per side: ~$EXPECT

agent / blackbox_exporter: CPU $(ratio "$A_CPU" "$B_CPU"), \
RSS peak $(ratio "$A_HWM" "$B_HWM")
context (not compared): sextant-collector ${C_CPU}%, prometheus ${P_CPU}%, \
http_target ${T_CPU}%

goals (issue 4):
  agent CPU < 5% of one core:        $A_CPU%  $(verdict "$goal_cpu")
  agent RSS < 16 MiB (peak):         $(mib "$A_HWM") MiB  $(verdict "$goal_rss")
  agent CPU <= 1/2 blackbox's CPU:   ratio $(ratio "$A_CPU" "$B_CPU")  \
$(verdict "$goal_rel")
TXT

# A run where either side did not really probe measures nothing.
valid=$(awk -v a="${A_N:-0}" -v ao="${A_OK:-0}" -v b="$B_N" -v bo="$B_OK" \
        -v e="$EXPECT" 'BEGIN { print (a >= 0.95 * e && b >= 0.95 * e &&
                                       ao >= 0.99 * a && bo >= 0.99 * b) }')
[ "$valid" = 1 ] || die "invalid run: fewer than 95% of the expected" \
                        "probes, or more than 1% failed, on one side"
echo "run valid: both sides probed ~every target every ${INTERVAL}s"
