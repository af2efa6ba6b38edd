#!/usr/bin/env bash
# drain_bench.sh -- backlog drain, measured in one run: a spool holding
# N (default 1,000,000) probe events, written by bench/spool_fill through
# the agent's own spool API, is drained by a real sextant-agent into a real
# sextant-collector on loopback (default shipping settings: batches of
# 5000 events / 1 MiB). Reports the drain rate (events per second, from the
# agent's start to the collector's contiguous watermark passing N), the
# agent's peak RSS (VmHWM) and CPU, the collector's CPU, when the agent's
# first live event was stored (not starved behind the backlog), and, as the
# yardstick, the raw speed of SQLite inserting the very same rows into the
# same schema, one transaction per 5000 rows, in the same run on the same
# disk: tests/raw_ceiling (bench/raw_ceiling.c) creates its database with
# the collector's own store code (schema, indexes and pragmas: WAL,
# synchronous=FULL, foreign keys on) and copies the collector's event rows
# into it with the store's insert statement. Checks the drain was complete
# and exact (N probe events stored, seqs 1..N once each, nothing dropped).
# Does not judge the spool fill (printed as context) or the dashboard.
#
# usage: bench/drain_bench.sh [--build DIR] [--events N] [--keep DIR]
#   --build DIR   a build folder holding agent/sextant-agent,
#                 collector/sextant-collector, tests/spool_fill,
#                 tests/raw_ceiling and tests/http_target; default: build
#                 (Release) into
#                 ./build-bench of this tree
#   --events N    events in the backlog (default 1000000)
#   --keep DIR    keep configs, logs and databases in DIR (large)
# Exit status: 0 the run was valid, 1 it was not (a process died, the
# drain was incomplete or inexact, or it took over 30 minutes), 2 usage.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
. "$SRC/bench/lib.sh"
BUILD=
N=1000000
KEEP=
CHUNK=5000                  # rows per transaction, agent batch size too
DEADLINE_S=1800

usage() { sed -n '/^# usage:/,/^# Exit/p' "$0" | sed 's/^# \{0,1\}//' >&2;
          exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
    --build) BUILD=$2; shift 2 ;;
    --events) N=$2; shift 2 ;;
    --keep) KEEP=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "drain_bench: unknown argument $1" >&2; usage ;;
    esac
done
[[ $N =~ ^[0-9]+$ ]] && [ "$N" -ge "$CHUNK" ] && [ "$N" -le 100000000 ] ||
    { echo "drain_bench: --events from $CHUNK to 100000000" >&2; exit 2; }

for t in sqlite3 cmake curl; do
    command -v $t > /dev/null || die "$t not found"
done
bench_build sextant-agent sextant-collector spool_fill http_target \
    raw_ceiling
AGENT=$BUILD/agent/sextant-agent
COLLECTOR=$BUILD/collector/sextant-collector
FILL=$BUILD/tests/spool_fill
HTTP_TARGET=$BUILD/tests/http_target
CEILING=$BUILD/tests/raw_ceiling
for b in "$AGENT" "$COLLECTOR" "$FILL" "$HTTP_TARGET" "$CEILING"; do
    [ -x "$b" ] || die "$b missing: build first or pass --build DIR"
done

bench_tmp

# --- 1. the backlog: N events in a fresh spool ---
SPOOL=$TMP/spool.db
say "filling the spool with $N events"
t0=$(now)
"$FILL" "$SPOOL" "$N" "$CHUNK" > "$TMP/fill.txt"
FILL_S=$(secs "$t0" "$(now)")
SPOOL_MB=$(du -m "$SPOOL" | cut -f1)
PACKED=$(sqlite3 "$SPOOL" 'SELECT sum(length(body)) FROM events')
say "$(cat "$TMP/fill.txt") in ${FILL_S}s; spool file ${SPOOL_MB} MiB," \
    "$PACKED packed bytes"

# --- 2. the drain: collector and agent, watched until seq N is stored ---
TOKEN=bench-token-0123456789
cat > "$TMP/collector.yaml" <<YAML
listen: 127.0.0.1:0
db: $TMP/collector.db
clusters:
  - name: bench
    token: $TOKEN
YAML
start_collector "$TMP/collector.yaml" "$TMP/collector.log"
COLLECTOR_PID=$CPID
"$HTTP_TARGET" > "$TMP/target.port" 2> "$TMP/target.log" &
PIDS+=($!)
wait_for "$TMP/target.port" '^[0-9]'
# One target probed hourly: the drain is the whole load. The spool bound
# is raised so that nothing of the backlog is dropped.
cat > "$TMP/agent.yaml" <<YAML
cluster: bench
region: bench-region
node: bench-node
collector:
  url: http://127.0.0.1:$CPORT
  token: $TOKEN
spool:
  path: $SPOOL
  max_bytes: 4GiB
admin: {enabled: false}
interval: 1h
targets:
  - name: one
    url: http://127.0.0.1:$(head -n1 "$TMP/target.port")/
YAML

say "draining into the collector"
C0=$(cpu_ticks "$COLLECTOR_PID")
t0=$(now)
"$AGENT" --config "$TMP/agent.yaml" 2> "$TMP/agent.log" &
AGENT_PID=$!
PIDS=("$AGENT_PID" "${PIDS[@]}")      # stopped first
RSS_MAX=0
stored() {
    sqlite3 -readonly "$TMP/collector.db" \
        'SELECT coalesce(max(acked_seq), 0) FROM agents' 2>/dev/null || echo 0
}
next=$SECONDS
while :; do
    kill -0 "$AGENT_PID" 2>/dev/null || die "the agent died; see its log"
    kill -0 "$COLLECTOR_PID" 2>/dev/null || die "the collector died"
    r=$(status_kb "$AGENT_PID" VmRSS || echo 0)
    [ "$r" -gt "$RSS_MAX" ] && RSS_MAX=$r
    s=$(stored)
    [ "$s" -ge "$N" ] && break
    [ $SECONDS -lt $((next + DEADLINE_S)) ] || die "not drained in ${DEADLINE_S}s"
    if [ $SECONDS -ge $((next + 15)) ]; then
        say "stored through seq $s of $N, agent rss ${r} kB"
        next=$SECONDS
    fi
    sleep 0.2
done
t1=$(now)
DRAIN_S=$(secs "$t0" "$t1")
# Not starved: when the agent's first live event (its start, seq N + 1)
# was stored, against the drain's length.
LIVE_MS=$(sqlite3 -readonly "$TMP/collector.db" \
          "SELECT min(recv_ms) FROM events_full WHERE seq = $((N + 1))")
LIVE_S=$(awk -v r="$LIVE_MS" -v t="$t0" 'BEGIN { printf "%.3f", r / 1000 - t }')
A_TICKS=$(cpu_ticks "$AGENT_PID")
A_HWM=$(status_kb "$AGENT_PID" VmHWM)
# The kernel updates VmHWM lazily (per-thread RSS counters), so a sample
# of VmRSS can be above it: the peak is the larger of the two.
[ "$RSS_MAX" -gt "$A_HWM" ] && A_HWM=$RSS_MAX
C_TICKS=$(($(cpu_ticks "$COLLECTOR_PID") - C0))
kill -TERM "$AGENT_PID"
wait "$AGENT_PID" || die "the agent exited $? on SIGTERM"
stop_collector

# Complete and exact: the backlog's seqs 1..N once each, all probes, no
# loss. (The agent's own events -- start, its one probe, stop -- follow
# from N + 1.)
read -r P_N P_MIN P_MAX P_DISTINCT LOST <<< "$(sqlite3 -separator ' ' \
    "$TMP/collector.db" "SELECT count(*), min(seq), max(seq),
        count(DISTINCT seq),
        (SELECT count(*) FROM events_full WHERE kind IN ('gap', 'drop'))
     FROM events_full WHERE kind = 'probe' AND seq <= $N")"
[ "$P_N" = "$N" ] && [ "$P_MIN" = 1 ] && [ "$P_MAX" = "$N" ] &&
    [ "$P_DISTINCT" = "$N" ] && [ "$LOST" = 0 ] ||
    die "inexact drain: $P_N probe events, seqs $P_MIN..$P_MAX," \
        "$P_DISTINCT distinct, $LOST gap/drop events"

# --- 3. the yardstick: the same rows into the same schema, raw SQLite ---
# raw_ceiling creates its database with the collector's store code and
# copies the backlog's rows, read ahead of each transaction's clock.
say "raw SQLite: the same $N rows, $CHUNK per transaction"
RAW=$TMP/raw.db
"$CEILING" "$RAW" --from "$TMP/collector.db" --max-seq "$N" \
    --txn-events "$CHUNK" > "$TMP/raw.out" 2> "$TMP/raw.log" ||
    { cat "$TMP/raw.log" >&2; die "raw_ceiling failed"; }
RAW_S=$(kv "$TMP/raw.out" seconds)
RAW_N=$(sqlite3 "$RAW" "SELECT count(*) FROM events")
[ "$RAW_N" = "$N" ] || die "raw insert stored $RAW_N rows, not $N"

# --- report ---
DRAIN_RATE=$(rate "$N" "$DRAIN_S")
RAW_RATE=$(rate "$N" "$RAW_S")
cat <<TXT

drain_bench: $N spooled probe events, agent -> collector on loopback
$(machine)
spool: $SPOOL_MB MiB file, $PACKED packed event bytes, filled in ${FILL_S}s

                                   seconds    events/s
drain (agent start -> seq N stored) $(printf '%8s %11s' "$DRAIN_S" \
    "$DRAIN_RATE")
raw SQLite insert, same rows        $(printf '%8s %11s' "$RAW_S" "$RAW_RATE")
drain / raw: $(awk -v a="$DRAIN_RATE" -v b="$RAW_RATE" \
    'BEGIN { printf "%.2f", a / b }')

agent:     peak RSS $(mib "$A_HWM") MiB (VmHWM, or VmRSS sampled every 0.2 s if \
higher), CPU $(pct "$A_TICKS" "$DRAIN_S")% of one core over the drain
collector: CPU $(pct "$C_TICKS" "$DRAIN_S")% of one core over the drain
live: the agent's first own event (seq $((N + 1))) stored ${LIVE_S}s after \
its start, while the backlog took ${DRAIN_S}s
exact: $P_N probe events stored, seqs 1..$N once each, no gap or drop
TXT
