#!/usr/bin/env bash
# pg_bench.sh -- many collectors on one PostgreSQL (issue 15): ingest
# throughput with 1, 2 and 4 collectors on one database, beside one
# SQLite collector and beside PostgreSQL's own ceiling, all in one
# invocation on this machine; then query latency of a PostgreSQL
# collector beside the SQLite one.
#
# Every part is a real process on loopback. The load generator is the
# ingest benchmark's (tests/ingest_load, bench/ingest_load.c): simulated
# agents post pre-encoded batches of 100 probe events over HTTP/1.1
# keep-alive, closed loop (each agent sends its next batch once the last
# is acked), one connection and loopback address per agent.
#   1. sqlite: one collector on a SQLite file, every agent on it.
#   2. pg-K for K = 1, 2, 4: a fresh database on one PostgreSQL 15 server
#      (tests/pg_server.sh: a real server, fsync on, 32 MB shared buffers),
#      K collectors on it, the agents split evenly over them (one load
#      process per collector, started together; their rates summed).
#      Checked after each: the database holds exactly the events the
#      collectors acked, each (agent, seq) once.
#   3. copy: PostgreSQL's ceiling: pg-1's rows, exported, the events
#      table emptied (TRUNCATE), and the same rows loaded back with one
#      COPY FROM STDIN (psql \copy) into the same partitioned table with
#      its indexes: no HTTP, no protobuf, no watermarks, rollups or
#      interning, one transaction.
#   4. queries: a collector on sqlite's file and one on pg-1's database
#      (the ingested events, their rollups) each answer REPS times:
#      timeline of a random hour within the data (limit 1000), the same
#      in the corrected order, of one target, and the 24-hour per-minute
#      latency series of one target; curl time_total p50 and p99 in ms.
#      With --before DIR, a collector of that build (the tree before a
#      change) answers the same queries first, on the same two stores. The two stores hold about the
#      same events (each what its step ingested): the figures compare the
#      backends' query paths, not the 50-million-event database of
#      bench/query_bench.sh. A query a backend does not answer 200 is
#      reported with its status instead of times.
# Throughput is reported as events/s and as a ratio to the sqlite step of
# the same invocation; CPU of the collectors and of the PostgreSQL server
# (% of one core) and the load average before and after: the machine may
# be shared.
#
# usage: bench/pg_bench.sh [--build DIR] [--agents N] [--duration S]
#            [--warmup S] [--collectors "K..."] [--reps N] [--keep DIR]
#            [--queries-only] [--before DIR]
#   --build DIR        a build folder holding collector/sextant-collector
#                      and tests/ingest_load; default: build (Release) into
#                      ./build-bench of this tree
#   --agents N         simulated agents (default 120; a multiple of 12
#                      splits evenly over 1, 2, 3 and 4 collectors)
#   --duration S       measured window of each load step (default 20)
#   --warmup S         before each window (default 5)
#   --collectors "K.." collector counts on PostgreSQL (default "1 2 4")
#   --reps N           repetitions of each query (default 50)
#   --keep DIR         keep configs, logs and outputs in DIR
#   --queries-only     only what the queries need: the sqlite and pg-1
#                      steps fill the two stores as above (same size),
#                      no pg-2.., no COPY; only the query table
#   --before DIR       a build folder of another tree (e.g. main's, built
#                      with --target sextant-collector): its collector
#                      fills the stores and answers the queries first,
#                      then this build's does (its PostgreSQL schema may
#                      be newer: it migrates pg-1's database as an upgrade
#                      would); the table shows both
# Exit status: 0 every step was valid, 1 not (a process died, a batch was
# refused or acked wrong, the database does not hold what was acked),
# 2 usage.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
. "$SRC/bench/lib.sh"
BUILD=
KEEP=
AGENTS=120
DURATION=20
WARMUP=5
STEPS="1 2 4"
REPS=50
BATCH=100
MAX_RATE=80000              # events/s the closed loop is pre-encoded for
SEED=1
QONLY=
BEFORE=
PG_SERVER=$SRC/tests/pg_server.sh

usage() { sed -n '/^# usage:/,/^# Exit/p' "$0" | sed 's/^# \{0,1\}//' >&2;
          exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
    --build) BUILD=$2; shift 2 ;;
    --agents) AGENTS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --collectors) STEPS=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --keep) KEEP=$2; shift 2 ;;
    --queries-only) QONLY=1; shift ;;
    --before) BEFORE=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "pg_bench: unknown argument $1" >&2; usage ;;
    esac
done
[ -z "$QONLY" ] || STEPS=1
[[ $AGENTS =~ ^[0-9]+$ ]] && [ "$AGENTS" -ge 4 ] && [ "$AGENTS" -le 10000 ] ||
    { echo "pg_bench: --agents from 4 to 10000" >&2; exit 2; }
[[ $DURATION =~ ^[0-9]+$ ]] && [ "$DURATION" -ge 5 ] &&
    [[ $WARMUP =~ ^[0-9]+$ ]] && [[ $REPS =~ ^[0-9]+$ ]] &&
    [ "$REPS" -ge 1 ] ||
    { echo "pg_bench: --duration >= 5, --warmup >= 0, --reps >= 1" >&2
      exit 2; }
for k in $STEPS; do
    [[ $k =~ ^[0-9]+$ ]] && [ "$k" -ge 1 ] && [ "$k" -le 16 ] &&
        [ "$k" -le "$AGENTS" ] ||
        { echo "pg_bench: --collectors counts from 1 to 16" >&2; exit 2; }
done
[[ " $STEPS " == *" 1 "* ]] ||
    { echo "pg_bench: --collectors must hold 1 (the copy and query steps" \
           "use its database)" >&2; exit 2; }

bench_build sextant-collector ingest_load
COLLECTOR=$BUILD/collector/sextant-collector
LOAD=$BUILD/tests/ingest_load
bench_need sqlite3 psql curl -- "$COLLECTOR" "$LOAD" "$PG_SERVER"
NEW_COLLECTOR=$COLLECTOR
if [ -n "$BEFORE" ]; then   # the stores are filled by the older one
    COLLECTOR=$BEFORE/collector/sextant-collector
    bench_need -- "$COLLECTOR"
fi
bench_tmp
PGDIR=$(mktemp -d /tmp/bench-pg.XXXXXX)     # the postgres user's
bench_on_exit() { "$PG_SERVER" stop "$PGDIR" > /dev/null 2>&1; }
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
say "PostgreSQL server in $PGDIR"
PGBASE=$("$PG_SERVER" start "$PGDIR" 2> "$TMP/pg_server.log") ||
    die "pg_server.sh start: $(cat "$TMP/pg_server.log")"
PG_VERSION=$(psql -X -A -t "$PGBASE dbname=postgres" -c 'SHOW server_version')

# pq DB SQL: one query on database DB.
pq() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$PGBASE dbname=$1" -c "$2"; }

# pg_ticks: CPU ticks of the server: the postmaster and its children
# (the backends live as long as the collectors' connections).
pg_ticks() {
    local pm p t=0
    pm=$(head -n1 "$PGDIR/data/postmaster.pid")
    for p in "$pm" $(pgrep -P "$pm"); do
        t=$((t + $(cpu_ticks "$p" 2>/dev/null || echo 0)))
    done
    echo "$t"
}

# collector_config STORE_YAML: the benchmark clusters' config, then
# STORE_YAML (a "db:" line or a "store:" block).
collector_config() {
    bench_collector_config "$TMP/unused.db" | sed '/^db:/d'
    printf '%s\n' "$1"
}
pg_store() {
    printf 'store:\n  backend: postgres\n  postgres:\n    conninfo: "%s"\n' \
        "$PGBASE dbname=$1"
}

# batches_for EVENTS_PER_S AGENTS: pre-encoded batches per agent to last
# the warm-up and the window, with a margin.
batches_for() {
    awk -v r="$1" -v s="$((WARMUP + DURATION))" -v a="$2" -v b="$BATCH" \
        'BEGIN { printf "%d", r * s * 1.1 / a / b + 3 }'
}

# load_step NAME K STORE_YAML: K fresh collectors with STORE_YAML, the
# agents split over them, one load process each; figures into
# $TMP/NAME.out: events_per_s (summed), latency_p99_ms (the worst
# shard's), stored_events (the collectors' ingest counters), cpu of the
# collectors and of the server.
load_step() {
    local name=$1 k=$2 store=$3 i first=0 m c0=0 p0 ticks=0 lpids=() cp=()
    local ports=() valid=1 stored=0 v
    collector_config "$store" > "$TMP/$name.yaml"
    for i in $(seq 0 $((k - 1))); do
        start_collector "$TMP/$name.yaml" "$TMP/$name.c$i.log"
        cp+=("$CPID")
        ports+=("$CPORT")
    done
    for i in "${cp[@]}"; do c0=$((c0 + $(cpu_ticks "$i"))); done
    p0=$(pg_ticks)
    for i in $(seq 0 $((k - 1))); do
        m=$(( AGENTS / k + (i < AGENTS % k ? 1 : 0) ))
        "$LOAD" --url "http://127.0.0.1:${ports[$i]}/v1/ingest" \
            --tokens "$TOKENS" --agents "$m" --first-agent "$first" \
            --batch-events "$BATCH" --seed "$SEED" \
            --warmup "$WARMUP" --duration "$DURATION" \
            --batches "$(batches_for $((MAX_RATE / k)) "$m")" \
            > "$TMP/$name.out.$i" 2> "$TMP/$name.load.$i.log" &
        lpids+=($!)
        PIDS=("$!" "${PIDS[@]}")
        first=$((first + m))
    done
    for i in "${lpids[@]}"; do wait "$i" || valid=0; done
    [ "$valid" = 1 ] || { cat "$TMP/$name".load.*.log >&2
                          die "$name: the load was not valid (see above)"; }
    for i in "${cp[@]}"; do
        kill -0 "$i" 2>/dev/null || die "$name: a collector died"
        ticks=$((ticks + $(cpu_ticks "$i")))
    done
    ticks=$((ticks - c0))
    p0=$(($(pg_ticks) - p0))
    for i in "${ports[@]}"; do
        v=$(curl -sf "http://127.0.0.1:$i/metrics" |
            sed -n 's/^sextant_collector_ingest_events_total //p')
        stored=$((stored + ${v%.*}))
    done
    for CPID in "${cp[@]}"; do stop_collector; done
    {
        for v in events_per_s batches_per_s status_503 status_other \
                 transport_errors ack_mismatch; do
            echo "$v=$(cat "$TMP/$name".out.* | sed -n "s/^$v=//p" |
                       awk '{ s += $1 } END { print s }')"
        done
        echo "latency_p99_ms=$(cat "$TMP/$name".out.* |
            sed -n 's/^latency_p99_ms=//p' | sort -g | tail -n1)"
        run=$(cat "$TMP/$name".out.* | sed -n 's/^run_s=//p' | sort -g |
              tail -n1)
        echo "run_s=$run"
        echo "collectors_cpu_pct=$(pct "$ticks" "$run")"
        echo "pg_cpu_pct=$(pct "$p0" "$run")"
        echo "stored_events=$stored"
    } > "$TMP/$name.out"
}

# --- 1. sqlite ---
say "sqlite: one collector, $AGENTS agents, ${WARMUP}s + ${DURATION}s"
load_step sqlite 1 "db: $TMP/sqlite.db"
n=$(sqlite3 "$TMP/sqlite.db" 'SELECT count(*) FROM events')
[ "$n" = "$(kv "$TMP/sqlite.out" stored_events)" ] ||
    die "sqlite: the database holds $n events, the collector acked" \
        "$(kv "$TMP/sqlite.out" stored_events)"
say "sqlite: $(kv "$TMP/sqlite.out" events_per_s) events/s"

# --- 2. pg-K ---
for k in $STEPS; do
    "$PG_SERVER" createdb "$PGDIR" "pg$k" > /dev/null
    say "pg-$k: $k collectors on one database, ${WARMUP}s + ${DURATION}s"
    load_step "pg$k" "$k" "$(pg_store "pg$k")"
    read -r n dups <<< "$(pq "pg$k" "SELECT count(*), count(*) -
        count(DISTINCT (agent_id, seq)) FROM events WHERE seq IS NOT NULL" |
        tr '|' ' ')"
    [ "$n" = "$(kv "$TMP/pg$k.out" stored_events)" ] && [ "$dups" = 0 ] ||
        die "pg-$k: the database holds $n events ($dups twice), the" \
            "collectors acked $(kv "$TMP/pg$k.out" stored_events)"
    say "pg-$k: $(kv "$TMP/pg$k.out" events_per_s) events/s"
done

# --- 3. copy: the same rows, one COPY ---
COPY_ROWS=$(pq pg1 'SELECT count(*) FROM events')
if [ -z "$QONLY" ]; then
COPY_ROWS=$(pq pg1 'SELECT count(*) FROM events')
say "copy: $COPY_ROWS rows of pg-1 out, the table emptied, COPY back in"
psql -X -q "$PGBASE dbname=pg1" \
    -c "\\copy (SELECT * FROM events) TO '$TMP/rows.copy'"
pq pg1 'CHECKPOINT' > /dev/null
pq pg1 'TRUNCATE events' > /dev/null
t0=$(now)
psql -X -q "$PGBASE dbname=pg1" -c "\\copy events FROM '$TMP/rows.copy'"
COPY_S=$(secs "$t0" "$(now)")
COPY_RATE=$(rate "$COPY_ROWS" "$COPY_S")
rm -f "$TMP/rows.copy"
[ "$(pq pg1 'SELECT count(*) FROM events')" = "$COPY_ROWS" ] ||
    die "copy: the rows did not all come back"
say "copy: $COPY_RATE rows/s"
fi

# --- 4. queries ---
# qstep NAME STORE_YAML: a collector ($COLLECTOR) on the store; each
# query REPS times at random windows (the same picks for both); p50 and
# p99 into $TMP/q.NAME.
HOUR=3600000
DAY=86400000
qstep() {
    local name=$1 q s args bad
    collector_config "$2" > "$TMP/q$name.yaml"
    start_collector "$TMP/q$name.yaml" "$TMP/q$name.log"
    : > "$TMP/q.$name"
    for q in "timeline?limit=1000 $HOUR" \
             "timeline?limit=1000&order=corrected $HOUR" \
             "timeline?target=checkout-api&limit=1000 $HOUR" \
             "latency?target=checkout-api&step=minute $DAY"; do
        read -r q span <<< "$q"
        args=()
        while read -r s; do
            args+=(-o /dev/null "http://127.0.0.1:$CPORT/api/v1/$q&from=$s&to=$((s + span))")
        done < "$TMP/starts.$span"
        curl -s -w '%{http_code} %{time_total}\n' "${args[@]}" \
            > "$TMP/q.$name.times"
        bad=$(awk '$1 != 200 { print $1 }' "$TMP/q.$name.times" | sort -u |
              paste -sd,)
        if [ -n "$bad" ]; then      # a backend without the query
            say "queries on $name: $q answered $bad"
            echo "HTTP-$bad -" >> "$TMP/q.$name"
            continue
        fi
        awk '{ print $2 * 1000 }' "$TMP/q.$name.times" | sort -g |
            awk -v n="$REPS" '{ v[NR] = $1 } END {
                printf "%.1f %.1f\n", v[int(0.5 * n + 0.999999)],
                                      v[int(0.99 * n + 0.999999)] }' \
            >> "$TMP/q.$name"
    done
    stop_collector
}
read -r FROM_MS TO_MS <<< "$(pq pg1 'SELECT min(unix_ms), max(unix_ms)
                                     FROM events' | tr '|' ' ')"
for span in $HOUR $DAY; do
    # Windows ending within the data: the data spans less than a window.
    awk -v n="$REPS" -v lo="$FROM_MS" -v hi="$TO_MS" -v span="$span" 'BEGIN {
        srand(42)
        for (i = 0; i < n; i++)
            printf "%.0f\n", lo - span + 1 + int(rand() * (hi - lo))
    }' > "$TMP/starts.$span"
done
if [ -n "$BEFORE" ]; then
    say "queries before: $REPS of each on sqlite, then on pg-1 ($BEFORE)"
    qstep bsqlite "db: $TMP/sqlite.db"
    qstep bpg "$(pg_store pg1)"
    COLLECTOR=$NEW_COLLECTOR
fi
say "queries: $REPS of each on sqlite, then on pg-1"
qstep sqlite "db: $TMP/sqlite.db"
qstep pg "$(pg_store pg1)"
SQLITE_ROWS=$(sqlite3 "$TMP/sqlite.db" 'SELECT count(*) FROM events')
rm -f "$TMP"/sqlite.db*
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report ---
BASE=$(kv "$TMP/sqlite.out" events_per_s)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
row() {
    local f=$TMP/$1.out
    printf '%-22s %9s %6s %8s %6s %6s %6s\n' "$2" "$(kv "$f" events_per_s)" \
        "$(ratio "$(kv "$f" events_per_s)" "$BASE")" \
        "$(kv "$f" latency_p99_ms)" "$(kv "$f" collectors_cpu_pct)" \
        "$(kv "$f" pg_cpu_pct)" \
        "$(($(kv "$f" status_503) + $(kv "$f" status_other) +
            $(kv "$f" transport_errors)))"
}
qrow() {
    [ -z "$BEFORE" ] ||
        printf '%-42s %8s %8s %8s %8s\n' "$1, before" \
            $(sed -n "${2}p" "$TMP/q.bsqlite") $(sed -n "${2}p" "$TMP/q.bpg")
    printf '%-42s %8s %8s %8s %8s\n' "$1" \
        $(sed -n "${2}p" "$TMP/q.sqlite") $(sed -n "${2}p" "$TMP/q.pg")
}
cat <<TXT

pg_bench: $AGENTS agents (3 clusters), batches of $BATCH probe events,
closed loop, HTTP/1.1 keep-alive on loopback; window ${DURATION}s after ${WARMUP}s
$(machine); PostgreSQL $PG_VERSION on the same machine
(tests/pg_server.sh: fsync on, shared_buffers 32MB, defaults otherwise)
load average (1, 5, 15 min): $LOAD_BEFORE before, $LOAD_AFTER after
$([ -z "$BEFORE" ] || echo "before: $BEFORE's collector filled the stores" \
    "and answered the rows marked before")
TXT
[ -n "$QONLY" ] || cat <<TXT

step                    events/s  x sql  p99-ms  coll%    pg%  refus
$(row sqlite "sqlite, 1 collector")
$(for k in $STEPS; do row "pg$k" "postgres, $k collector$([ "$k" = 1 ] || echo s)"; done)
$(printf '%-22s %9s %6s' "postgres COPY ceiling" "$COPY_RATE" "$(ratio "$COPY_RATE" "$BASE")")
(x sql = events/s over the sqlite step's; p99 = ack latency of the worst
load process; coll% = CPU of all collectors, pg% = CPU of the PostgreSQL
server, % of one core over the run; refus = 503s, other statuses and
transport errors; the COPY ceiling: $COPY_ROWS rows of pg-1 in one COPY,
$COPY_S s)
TXT
cat <<TXT

queries ($REPS each, random windows within the data; curl time_total, ms;
sqlite: $SQLITE_ROWS events, postgres: $COPY_ROWS events)
query                                        sqlite p50   p99    pg p50    p99
$(qrow "timeline 1 h, limit 1000" 1)
$(qrow "timeline 1 h, order=corrected" 2)
$(qrow "timeline 1 h, target=checkout-api" 3)
$(qrow "latency 24 h per minute, one target" 4)
TXT
