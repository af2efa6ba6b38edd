#!/usr/bin/env bash
# scale_bench.sh -- one collector, many agents: a DaemonSet puts an agent
# on every node, so 50 clusters of 100 nodes are 5000 agents on one
# collector. A real sextant-collector (Release build, its default config
# but for the three clusters' tokens) takes, in one invocation, 200, 1000
# and 5000 simulated agents (tests/ingest_load, bench/ingest_load.c), each
# on its own HTTP/1.1 keep-alive connection from its own loopback address
# (127.2.X.Y: the per-address cap is not what limits; up to 500 agents
# per load process, see SHARD), each sending one
# batch a second (open loop: latency from the batch's slot, so a slow
# collector is not hidden by sending less). A batch holds the events of
# 20 targets probed every 10 s: 2 a second. Each step gets a fresh
# collector and database.
#
# Per step: acked events/s and batches/s, ack latency p50/p95/p99/max,
# 503s, other statuses and transport errors (refusals: must all be 0),
# connections the collector shed (must be 0), connections it held at the
# peak (sockets in /proc), its CPU (% of one core) and peak RSS (VmHWM),
# the load generator's CPU, and the ratios to the first (200-agent) step.
# The open-files limits of both processes are reported: both raise their
# soft limit (the collector to fit limits.connections, the loader to its
# hard limit).
#
# usage: bench/scale_bench.sh [--build DIR] [--agents "N..."]
#            [--batch-events B] [--duration S] [--warmup S] [--keep DIR]
#   --build DIR       a build folder with collector/sextant-collector and
#                     tests/ingest_load; default: build (Release) into
#                     ./build-bench of this tree
#   --agents "N..."   agent counts, one step each (default "200 1000 5000")
#   --batch-events B  events per batch (default 2)
#   --duration S      measured window of each step (default 30)
#   --warmup S        before each window (default 10: 5000 connections
#                     open in the first second)
#   --keep DIR        keep configs, logs and outputs in DIR
# Exit status: 0 every step valid (every batch acked, none refused, no
# connection shed), 1 not, 2 usage.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
. "$SRC/bench/lib.sh"
BUILD=
KEEP=
STEPS="200 1000 5000"
BATCH=2
DURATION=30
WARMUP=10
SEED=1
SHARD=500               # agents per load generator process

usage() { sed -n '/^# usage:/,/^# Exit/p' "$0" | sed 's/^# \{0,1\}//' >&2;
          exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
    --build) BUILD=$2; shift 2 ;;
    --agents) STEPS=$2; shift 2 ;;
    --batch-events) BATCH=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --keep) KEEP=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "scale_bench: unknown argument $1" >&2; usage ;;
    esac
done
for n in $STEPS; do
    [[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge 3 ] && [ "$n" -le 60000 ] ||
        { echo "scale_bench: --agents counts from 3 to 60000" >&2; exit 2; }
done
[[ $BATCH =~ ^[0-9]+$ ]] && [ "$BATCH" -ge 1 ] &&
    [[ $DURATION =~ ^[0-9]+$ ]] && [ "$DURATION" -ge 5 ] &&
    [[ $WARMUP =~ ^[0-9]+$ ]] ||
    { echo "scale_bench: --batch-events >= 1, --duration >= 5 s," \
           "--warmup >= 0 s" >&2; exit 2; }

bench_build sextant-collector ingest_load
COLLECTOR=$BUILD/collector/sextant-collector
LOAD=$BUILD/tests/ingest_load
bench_need sqlite3 cmake curl -- "$COLLECTOR" "$LOAD"
bench_tmp

# sockets PID: open sockets of the process (its connections and listener).
# find fails when a descriptor closes under it: the count stands.
sockets() {
    { find "/proc/$1/fd" -lname 'socket:*' 2>/dev/null || true; } | wc -l
}

# merge N SHARDS: the shards' figures into $TMP/N.out: counts and rates
# summed, percentiles over every shard's latencies (nearest rank).
merge() {
    local n=$1 k=$2 key
    {
        for key in events_per_s batches_per_s status_503 status_other \
                   transport_errors ack_mismatch loader_cpu_s; do
            echo "$key=$(cat "$TMP/$n".out.* | sed -n "s/^$key=//p" |
                         awk '{ s += $1 } END { print s }')"
        done
        echo "run_s=$(cat "$TMP/$n".out.* | sed -n 's/^run_s=//p' |
                      sort -n | tail -n1)"
        echo "nofile_limit=$(kv "$TMP/$n.out.0" nofile_limit)"
        echo "shards=$k"
        sort -n "$TMP/$n".lat.* | awk '{ v[NR] = $1 } END {
            split("50 95 99 99.9", q, " ")
            split("p50 p95 p99 p999", name, " ")
            for (i = 1; i <= 4; i++) {
                r = int(q[i] / 100 * NR + 0.999999); if (r < 1) r = 1
                printf "latency_%s_ms=%.2f\n", name[i], v[r]
            }
            printf "latency_max_ms=%.2f\nlatency_n=%d\n", v[NR], NR }'
    } > "$TMP/$n.out"
}

# step N: a fresh collector, N agents at a batch a second, the figures
# into $TMP/N.out (key=value): the loader's, plus collector_cpu_pct,
# collector_rss_peak_kb, collector_sockets_peak, collector_nofile, shed.
step() {
    local n=$1 c0 ticks lpid r s rss_max=0 sock_max=0 hwm shed
    bench_collector_config "$TMP/$n.db" > "$TMP/$n.yaml"
    start_collector "$TMP/$n.yaml" "$TMP/$n.collector.log"
    c0=$(cpu_ticks "$CPID")
    # One batch a second per agent; pre-encoded for the run and a margin.
    # Shards of SHARD agents, one loader process each (ingest_load's
    # --first-agent says why), started together.
    local first=0 k=0 m lpids=()
    while [ "$first" -lt "$n" ]; do
        m=$((n - first < SHARD ? n - first : SHARD))
        "$LOAD" --url "http://127.0.0.1:$CPORT/v1/ingest" \
            --tokens "$TOKENS" --agents "$m" --first-agent "$first" \
            --batch-events "$BATCH" --seed "$SEED" --rate "$m" \
            --step-ms 500 --warmup "$WARMUP" --duration "$DURATION" \
            --batches $((WARMUP + DURATION + 5)) \
            --latencies "$TMP/$n.lat.$k" \
            > "$TMP/$n.out.$k" 2> "$TMP/$n.load.$k.log" &
        lpids+=($!)
        PIDS=("$!" "${PIDS[@]}")
        first=$((first + m))
        k=$((k + 1))
    done
    alive() { local p; for p in "$@"; do kill -0 "$p" 2>/dev/null &&
                                          return 0; done; return 1; }
    while alive "${lpids[@]}"; do
        r=$(status_kb "$CPID" VmRSS || echo 0)
        [ "$r" -gt "$rss_max" ] && rss_max=$r
        s=$(sockets "$CPID")
        [ "$s" -gt "$sock_max" ] && sock_max=$s
        sleep 0.5
    done
    # A load the collector fell behind is reported (NOT VALID), not
    # fatal: its connections, memory and refusals still count.
    local valid=1
    for lpid in "${lpids[@]}"; do
        wait "$lpid" || valid=0
    done
    [ "$valid" = 1 ] || { cat "$TMP/$n".load.*.log >&2
                          say "$n agents: NOT VALID (see above)"; }
    merge "$n" "$k"
    echo "valid=$valid" >> "$TMP/$n.out"
    kill -0 "$CPID" 2>/dev/null || die "$n agents: the collector died"
    curl -sf --max-time 60 "http://127.0.0.1:$CPORT/metrics" \
        > "$TMP/$n.metrics" || say "$n agents: /metrics not read"
    ticks=$(($(cpu_ticks "$CPID") - c0))
    hwm=$(status_kb "$CPID" VmHWM)
    [ "$rss_max" -gt "$hwm" ] && hwm=$rss_max
    shed=$(sed -n 's/.*shed \([0-9]*\) idle connections$/\1/p' \
           "$TMP/$n.collector.log" | awk '{ s += $1 } END { print s + 0 }')
    {
        echo "collector_cpu_pct=$(pct "$ticks" "$(kv "$TMP/$n.out" run_s)")"
        echo "collector_rss_peak_kb=$hwm"
        echo "collector_sockets_peak=$sock_max"
        echo "collector_nofile=$(awk '/^Max open files/ { print $4 }' \
                                 "/proc/$CPID/limits")"
        echo "shed=$shed"
        awk '$1 == "sextant_collector_commit_batches_sum" { b = $2 }
             $1 == "sextant_collector_commit_batches_count" { c = $2 }
             $1 == "sextant_collector_commit_duration_seconds_sum" { d = $2 }
             END { printf "commits=%d\ncommit_batches_mean=%.1f\n" \
                          "commit_ms_mean=%.1f\n", c, c ? b / c : 0,
                          c ? 1000 * d / c : 0 }' "$TMP/$n.metrics"
    } >> "$TMP/$n.out"
    stop_collector
    rm -f "$TMP/$n.db"*
}

for n in $STEPS; do
    say "$n agents: a batch of $BATCH events a second each," \
        "${WARMUP}s + ${DURATION}s"
    step "$n"
    say "$n agents: p99 $(kv "$TMP/$n.out" latency_p99_ms) ms," \
        "$(kv "$TMP/$n.out" events_per_s) events/s," \
        "$(kv "$TMP/$n.out" collector_sockets_peak) sockets"
done

# --- report ---
BASE=${STEPS%% *}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
row() {
    local f=$TMP/$1.out b=$TMP/$BASE.out
    printf '%6s %9s %9s %7s %7s %7s %8s %6s %6s %6s %5s %7s %5s %7s  %s\n' "$1" \
        "$(kv "$f" batches_per_s)" "$(kv "$f" events_per_s)" \
        "$(kv "$f" latency_p50_ms)" "$(kv "$f" latency_p95_ms)" \
        "$(kv "$f" latency_p99_ms)" "$(kv "$f" latency_max_ms)" \
        "$(($(kv "$f" status_503) + $(kv "$f" status_other) +
            $(kv "$f" transport_errors)))" "$(kv "$f" shed)" \
        "$(kv "$f" collector_sockets_peak)" "$(kv "$f" collector_cpu_pct)" \
        "$(mib "$(kv "$f" collector_rss_peak_kb)")" \
        "$(kv "$f" loader_cpu_s)" \
        "$(ratio "$(kv "$f" latency_p99_ms)" "$(kv "$b" latency_p99_ms)")" \
        "cpu x$(ratio "$(kv "$f" collector_cpu_pct)" \
                      "$(kv "$b" collector_cpu_pct)"), rss x$(ratio \
                "$(kv "$f" collector_rss_peak_kb)" \
                "$(kv "$b" collector_rss_peak_kb)")"
}
BAD=0
for n in $STEPS; do
    f=$TMP/$n.out
    [ "$(kv "$f" status_503)" = 0 ] && [ "$(kv "$f" status_other)" = 0 ] &&
        [ "$(kv "$f" transport_errors)" = 0 ] && [ "$(kv "$f" shed)" = 0 ] &&
        [ "$(kv "$f" ack_mismatch)" = 0 ] && [ "$(kv "$f" valid)" = 1 ] ||
        BAD=1
done
cat <<TXT

scale_bench: one collector (default config, 3 clusters), N agents each on
its own keep-alive connection and loopback address, one batch of $BATCH
probe events a second each (open loop); window ${DURATION}s after ${WARMUP}s
$(machine); $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM
open files (soft, as raised): collector $(kv "$TMP/$BASE.out" collector_nofile) at $BASE agents, \
loader $(kv "$TMP/$BASE.out" nofile_limit)

latency in ms, from each batch's scheduled time to its Ack
agents batches/s  events/s     p50     p95     p99      max  refus   shed  socks  cpu%  rss-MiB gen-s  p99/base  vs base
$(for n in $STEPS; do row "$n"; done)
(refus = 503 + other statuses + transport errors; shed = connections the
collector closed at limits.connections; socks = the collector's sockets at
the peak; cpu% = collector, % of one core over the run; rss = collector
peak VmHWM; gen-s = load generator CPU seconds)
$([ "$BAD" = 0 ] && echo "every step: no refusal, no shed connection, every Ack right" ||
  echo "NOT VALID: a step had refusals, shed connections or wrong Acks, or
its batches were not all acked within 60 s after the window (the collector
behind the offered rate): see the valid= lines of the steps")
TXT
exit "$BAD"
