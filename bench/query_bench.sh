#!/usr/bin/env bash
# query_bench.sh -- query latency of a real sextant-collector on a
# database of 50 million events: tests/query_fill (bench/query_fill.c)
# fills a new database, made by the collector's own store code, with the
# events of 200 simulated agents in 3 clusters probing 20 targets over 14
# days, and the minute and hour rollups the collector would have built
# from them. Then a collector serves it (on loopback, default config but
# for a raw retention of 30 days, so that nothing is deleted while we
# measure) and curl asks, over one keep-alive connection, each query
# --reps times, each time for another hour or day picked at random within
# the 14 days (the same picks every run):
#   timeline, 1 hour: default limit (1000); limit 10000; one cluster; one
#     target; one target with limit 10000; kind=state (health changes);
#     in corrected order (order=corrected), and that over 1 day (a page
#     reads its own span and the clock-offset margin, not the window)
#   latency, 24 hours per minute, one target: all clusters merged; one
#     cluster
# It reports p50, p99 and max of curl's time_total per query (the whole
# request: reading, JSON, transfer), checks every answer was a 200 with
# the expected count, prints EXPLAIN QUERY PLAN of the store's statements
# (the indexes used), the bytes on disk per event (the file, and each
# table and index by SQLite's dbstat) and checks the goals: timeline for 1
# hour under 50 ms, the 24-hour latency series under 100 ms, at most 100
# bytes an event on disk.
#
# usage: bench/query_bench.sh [--build DIR] [--events N] [--reps N]
#            [--db FILE] [--cold] [--keep DIR]
#   --build DIR   a build folder holding collector/sextant-collector and
#                 tests/query_fill; default: build (Release) into
#                 ./build-bench of this tree
#   --events N    events to fill (default 50000000; the disk must hold
#                 some 150 bytes an event, checked first)
#   --reps N      repetitions of each query (default 100)
#   --db FILE     query FILE, a database query_fill made before, instead
#                 of filling one (FILE is left as it is; the collector
#                 opens it read-write and may checkpoint it)
#   --cold        also time one pass of every query right after dropping
#                 the kernel's page cache (root; slows the whole machine
#                 for a moment)
#   --keep DIR    keep configs, logs and outputs in DIR (not the database)
# Exit status: 0 every answer was right (whether or not the goals were
# met), 1 not (or the fill failed), 2 usage.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
. "$SRC/bench/lib.sh"
BUILD=
KEEP=
EVENTS=50000000
REPS=100
DB=
COLD=
BYTES_PER_EVENT=150          # schema 6: ~110 measured, with room

usage() { sed -n '/^# usage:/,/^# Exit/p' "$0" | sed 's/^# \{0,1\}//' >&2;
          exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
    --build) BUILD=$2; shift 2 ;;
    --events) EVENTS=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --db) DB=$2; shift 2 ;;
    --cold) COLD=1; shift ;;
    --keep) KEEP=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "query_bench: unknown argument $1" >&2; usage ;;
    esac
done
[[ $EVENTS =~ ^[0-9]+$ ]] && [ "$EVENTS" -ge 100000 ] ||
    { echo "query_bench: --events at least 100000" >&2; exit 2; }
[[ $REPS =~ ^[0-9]+$ ]] && [ "$REPS" -ge 1 ] && [ "$REPS" -le 10000 ] ||
    { echo "query_bench: --reps from 1 to 10000" >&2; exit 2; }
[ -z "$DB" ] || [ -f "$DB" ] || { echo "query_bench: no $DB" >&2; exit 2; }

for t in sqlite3 cmake curl; do
    command -v $t > /dev/null || die "$t not found"
done
bench_build sextant-collector query_fill
COLLECTOR=$BUILD/collector/sextant-collector
FILL=$BUILD/tests/query_fill
for b in "$COLLECTOR" "$FILL"; do
    [ -x "$b" ] || die "$b missing: build first or pass --build DIR"
done
# The database goes beside the build (not in a tmpfs /tmp); its folder is
# removed at exit like the rest.
bench_tmp "$BUILD"
bench_on_exit() { [ -n "$DB_OWNED" ] && rm -f "$DB" "$DB"-wal "$DB"-shm; }
DB_OWNED=

# --- 1. the database ---
if [ -z "$DB" ]; then
    DB=$TMP/query.db
    DB_OWNED=1
    AVAIL_KB=$(df -Pk "$TMP" | awk 'NR == 2 { print $4 }')
    NEED_KB=$((EVENTS / 1024 * BYTES_PER_EVENT))
    if [ "$AVAIL_KB" -lt "$((NEED_KB + 4 * 1024 * 1024))" ]; then
        SCALED=$(( (AVAIL_KB - 4 * 1024 * 1024) * 1024 / BYTES_PER_EVENT ))
        [ "$SCALED" -ge 100000 ] || die "no room for a database on $TMP"
        say "only $((AVAIL_KB / 1024 / 1024)) GiB free: $SCALED events" \
            "instead of $EVENTS"
        EVENTS=$SCALED
    fi
    say "filling $DB with $EVENTS events (some minutes)"
    "$FILL" "$DB" --events "$EVENTS" > "$TMP/fill.out" 2> "$TMP/fill.log" ||
        { cat "$TMP/fill.log" >&2; die "query_fill failed"; }
    FILL_S=$(kv "$TMP/fill.out" seconds)
else
    FILL_S=
fi
read -r N_EVENTS FROM_MS TO_MS <<< "$(sqlite3 -readonly -separator ' ' "$DB" \
    "SELECT count(*), min(unix_ms), max(unix_ms) FROM events")"
DB_MB=$(( $(stat -c %s "$DB") / 1024 / 1024 ))
DAYS=$(awk -v a="$FROM_MS" -v b="$TO_MS" 'BEGIN { printf "%.1f", (b - a) / 86400000 }')
say "database: $N_EVENTS events, $DB_MB MiB, $DAYS days${FILL_S:+, filled in ${FILL_S}s}"
# Bytes on disk per event: the whole file, and each table and index
# (SQLite's dbstat: the pages each one holds, free space in them
# included), over the events stored.
say "measuring the space of each table and index (reads every page)"
BYTES_EVENT=$(awk -v b="$(stat -c %s "$DB")" -v n="$N_EVENTS" \
              'BEGIN { printf "%.1f", b / n }')
sqlite3 -readonly -separator ' ' "$DB" \
    "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC" |
    awk -v n="$N_EVENTS" '{ printf "  %-28s %12.0f bytes %8.1f per event\n",
                            $1, $2, $2 / n }' > "$TMP/space.txt"

# --- 2. the plans: the store's statements' joins and filters (as
# collector/store_query.c has them), parameters unbound as the store
# prepares them ---
# The select list does not change a plan: the joins and filters do.
TL_FROM="SELECT e.id FROM events e CROSS JOIN agents a ON a.id = e.agent_id
 JOIN kinds k ON k.id = e.kind_id
 LEFT JOIN targets tg ON tg.id = e.target_id
 LEFT JOIN texts x ON x.id = e.text_id
 LEFT JOIN regions r ON r.id = e.served_by_id
 LEFT JOIN certs c ON c.id = e.cert_id
 LEFT JOIN texts an ON an.id = e.answers_id
 WHERE e.unix_ms >= ?1 AND e.unix_ms < ?2"
TL_ORDER=" ORDER BY e.unix_ms, e.id LIMIT ?4"
SELECT_SQL="$TL_FROM $TL_ORDER"
TARGET_SQL="$TL_FROM AND e.target_id = (SELECT id FROM targets WHERE name = ?5) $TL_ORDER"
KIND_SQL="$TL_FROM AND e.data IS NOT NULL
 AND e.kind_id = (SELECT id FROM kinds WHERE name = ?6) $TL_ORDER"
LATENCY_SQL="SELECT t, count, failures, hist FROM rollup_minute
 WHERE target_id = (SELECT id FROM targets WHERE name = ?1)
   AND (?2 IS NULL OR cluster_id = (SELECT id FROM clusters WHERE name = ?2))
   AND t >= ?3 AND t < ?4 ORDER BY t"
{
    echo "-- timeline (store_timeline, order=agent)"
    sqlite3 -readonly "$DB" "EXPLAIN QUERY PLAN $SELECT_SQL"
    echo "-- timeline, target=T"
    sqlite3 -readonly "$DB" "EXPLAIN QUERY PLAN $TARGET_SQL"
    echo "-- timeline, kind=K (K not probe)"
    sqlite3 -readonly "$DB" "EXPLAIN QUERY PLAN $KIND_SQL"
    echo "-- latency (store_latency, step=minute)"
    sqlite3 -readonly "$DB" "EXPLAIN QUERY PLAN $LATENCY_SQL"
} > "$TMP/plans.txt"

# --- 3. the collector ---
cat > "$TMP/collector.yaml" <<YAML
listen: 127.0.0.1:0
db: $DB
retention:
  raw: 30d
clusters:
  - name: eu-west-1
    token: bench-token-eu-west-1-0123456789
  - name: us-east-1
    token: bench-token-us-east-1-0123456789
  - name: ap-southeast-1
    token: bench-token-ap-southeast-1-0123456789
YAML
start_collector "$TMP/collector.yaml" "$TMP/collector.log"
API=http://127.0.0.1:$CPORT/api/v1

# starts N SPAN_MS: N window starts, random within the data (seeded).
starts() {
    awk -v n="$1" -v span="$2" -v lo="$FROM_MS" -v hi="$TO_MS" 'BEGIN {
        srand(42)
        for (i = 0; i < n; i++)
            printf "%.0f\n", lo + int(rand() * (hi - lo - span))
    }'
}
HOUR=3600000
DAY=86400000
starts "$REPS" $HOUR > "$TMP/hours.txt"
starts "$REPS" $DAY > "$TMP/days.txt"

# run NAME STARTS SPAN QUERY: one curl, one connection, a request per
# start; writes "code bytes seconds" lines to $TMP/NAME.times and the
# bodies to $TMP/NAME.bodies (one per line: the API's JSON has no
# newline).
run() {
    local name=$1 file=$2 span=$3 q=$4 s args=()
    while read -r s; do
        args+=(-o "$TMP/$name.body.$s" "$API/$q&from=$s&to=$((s + span))")
    done < "$file"
    curl -s -w '%{http_code} %{size_download} %{time_total}\n' "${args[@]}" \
        > "$TMP/$name.times"
    while read -r s; do
        cat "$TMP/$name.body.$s"; echo
        rm -f "$TMP/$name.body.$s"
    done < "$file" > "$TMP/$name.bodies"
}

# check NAME: every answer a 200 holding events (timeline) or points
# (latency).
check() {
    local bad
    bad=$(awk '$1 != 200' "$TMP/$1.times" | wc -l)
    [ "$bad" = 0 ] || die "$1: $bad answers were not 200"
    bad=$(grep -c -E '"events":\[\{|"points":\[\{' "$TMP/$1.bodies" || true)
    [ "$bad" = "$REPS" ] || die "$1: $((REPS - bad)) answers were empty"
    # events (timeline) or points (latency) per answer; the bodies go
    grep -o -E '"count":[0-9]+,"truncated"|"t":' "$TMP/$1.bodies" |
        awk -v n="$REPS" '/count/ { gsub(/[^0-9]/, ""); c += $0; next }
                          { c++ } END { printf " %7.0f", c / n }' \
        > "$TMP/$1.items"
    rm -f "$TMP/$1.bodies"
}

# stats NAME: p50 p99 max of time_total in ms, and the mean body size.
stats() {
    awk '{ print $3 * 1000 }' "$TMP/$1.times" | sort -g | awk -v n="$REPS" '
        { v[NR] = $1 }
        END {
            p50 = v[int(0.50 * n + 0.999999)]; p99 = v[int(0.99 * n + 0.999999)]
            printf "%8.1f %8.1f %8.1f", p50, p99, v[NR]
        }'
    awk '{ b += $2 } END { printf " %9.0f", b / NR }' "$TMP/$1.times"
    cat "$TMP/$1.items"
}

QUERIES=(
    "tl_1000 hours $HOUR timeline?x=1"
    "tl_10000 hours $HOUR timeline?limit=10000"
    "tl_cluster hours $HOUR timeline?cluster=eu-west-1"
    "tl_target hours $HOUR timeline?target=checkout-api"
    "tl_target_10000 hours $HOUR timeline?target=checkout-api&limit=10000"
    "tl_kind hours $HOUR timeline?kind=state"
    "tl_corr hours $HOUR timeline?order=corrected"
    "tl_corr_day days $DAY timeline?order=corrected"
    "lat_all days $DAY latency?target=checkout-api&step=minute"
    "lat_cluster days $DAY latency?target=checkout-api&cluster=eu-west-1&step=minute"
)
# The API refuses an unknown parameter: drop the placeholder.
api_q() { echo "${1/x=1/limit=1000}"; }

say "warming up: one pass of every query"
for q in "${QUERIES[@]}"; do
    read -r name file span query <<< "$q"
    head -n1 "$TMP/$file.txt" > "$TMP/one.txt"
    run warm "$TMP/one.txt" "$span" "$(api_q "$query")"
done
for q in "${QUERIES[@]}"; do
    read -r name file span query <<< "$q"
    say "$name: $REPS requests"
    run "$name" "$TMP/$file.txt" "$span" "$(api_q "$query")"
    check "$name"
done
if [ -n "$COLD" ]; then
    for q in "${QUERIES[@]}"; do
        read -r name file span query <<< "$q"
        sync
        echo 3 > /proc/sys/vm/drop_caches
        tail -n1 "$TMP/$file.txt" > "$TMP/one.txt"
        run "cold_$name" "$TMP/one.txt" "$span" "$(api_q "$query")"
    done
fi
HWM=$(status_kb "$CPID" VmHWM)
stop_collector

# --- report ---
ms_of() { stats "$1" | awk -v f="$2" '{ print $f }'; }
verdict() { awk -v v="$1" -v lim="$2" 'BEGIN { print v < lim ? "met" : "NOT met" }'; }
cat <<TXT

query_bench: $N_EVENTS events over $DAYS days (200 agents, 3 clusters,
20 targets); database $DB_MB MiB${FILL_S:+, filled in ${FILL_S}s}
$(machine)
each query $REPS times, a random hour (timeline) or day (latency) each time,
one keep-alive connection; curl time_total in ms; bytes and items (events
or points) per answer, on average

query                                        p50      p99      max     bytes   items
timeline 1 h, limit 1000 (default)      $(stats tl_1000)
timeline 1 h, limit 10000               $(stats tl_10000)
timeline 1 h, cluster=eu-west-1         $(stats tl_cluster)
timeline 1 h, target=checkout-api       $(stats tl_target)
timeline 1 h, target, limit 10000       $(stats tl_target_10000)
timeline 1 h, kind=state                $(stats tl_kind)
timeline 1 h, order=corrected           $(stats tl_corr)
timeline 24 h, order=corrected          $(stats tl_corr_day)
latency 24 h/minute, all clusters       $(stats lat_all)
latency 24 h/minute, cluster=eu-west-1  $(stats lat_cluster)
collector peak RSS: $(mib "$HWM") MiB

space on disk: $BYTES_EVENT bytes per event (file size / events); by table
and index (dbstat pages, over the events):
$(cat "$TMP/space.txt")
TXT
if [ -n "$COLD" ]; then
    echo "cold page cache, one request each (ms):"
    for q in "${QUERIES[@]}"; do
        read -r name _ <<< "$q"
        printf '  %-18s %8.1f\n' "$name" \
            "$(awk '{ print $3 * 1000 }' "$TMP/cold_$name.times")"
    done
fi
cat <<TXT

plans (EXPLAIN QUERY PLAN, parameters unbound):
$(sed 's/^/  /' "$TMP/plans.txt")

goals (issue):
  timeline 1 h (default limit) p99 < 50 ms:   $(ms_of tl_1000 2) ms  $(verdict "$(ms_of tl_1000 2)" 50)
  latency 24 h per minute p99 < 100 ms:       $(ms_of lat_all 2) ms  $(verdict "$(ms_of lat_all 2)" 100)
  bytes per event on disk <= 100:             $BYTES_EVENT  $(verdict "$BYTES_EVENT" 100.05)
TXT
