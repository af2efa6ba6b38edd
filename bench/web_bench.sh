#!/usr/bin/env bash
# web_bench.sh -- what the dashboard costs a browser: bytes over the wire
# and time to first render of the overview, and of a 24-hour timeline of
# 100,000 events, each loaded cold (a fresh profile, empty cache) and
# warm (the same profile again: the hashed assets come from the cache),
# in headless chromium (tests/web/bench.mjs: the DevTools Protocol's
# encodedDataLength of every response, headers included; first
# contentful paint; the time until the view's data is drawn; the time
# until the network went quiet; the longest main-thread task).
#   overview   a real collector with the incident scenarios' services,
#              fed the active-passive failover (tests/scenarios/
#              ap_failover.scn by tests/scenario_feed); drawn = the first
#              service x region cell ([data-state])
#   timeline   a real collector serving a database of N events over the
#              24 hours before now (tests/query_fill: 200 agents in 3
#              clusters probing 20 targets); #/timeline?from=&to= those
#              24 hours; drawn = the first event row ([data-kind])
# A view whose page still says "Not built yet." is measured to its
# placeholder and said so. The goal (issue 13): the overview's first load under
# 300 KB over the wire.
#
# With --identity-baseline, each view is measured a second time with the
# page's /api/v1/ requests sent Accept-Encoding: identity (bench.mjs
# --api-identity: the API's replies as they went before they were
# gzipped; the assets still gzipped and cached), and gzip / identity
# ratios of the same invocation are printed.
#
# usage: bench/web_bench.sh [--build DIR] [--events N] [--runs N]
#            [--keep DIR] [--identity-baseline] [--mbit N]
#   --build DIR   a build folder holding collector/sextant-collector,
#                 tests/scenario_feed and tests/query_fill; default: build
#                 (Release) into ./build-bench of this tree
#   --events N    events in the timeline's 24 hours (default 100000)
#   --runs N      cold + warm loads of each view (default 5; medians)
#   --keep DIR    keep configs, logs and outputs in DIR
#   --identity-baseline  also measure with the API's replies uncompressed
#   --mbit N      throttle the browser's downloads to N Mbit/s (DevTools'
#                 network emulation; default: loopback, unthrottled)
# Needs node, tests/web's modules (npm ci --prefix tests/web) and
# /usr/bin/chromium. Exit status: 0 measured (whether or not the goal was
# met), 1 a step failed, 2 usage.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
. "$SRC/bench/lib.sh"
BUILD=
KEEP=
EVENTS=100000
RUNS=5
BASELINE=
MBIT=
GOAL_BYTES=$((300 * 1024))

usage() { sed -n '/^# usage:/,/^# Needs/p' "$0" | sed 's/^# \{0,1\}//' >&2;
          exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
    --build) BUILD=$2; shift 2 ;;
    --events) EVENTS=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --keep) KEEP=$2; shift 2 ;;
    --identity-baseline) BASELINE=1; shift ;;
    --mbit) MBIT=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "web_bench: unknown argument $1" >&2; usage ;;
    esac
done
[[ $EVENTS =~ ^[0-9]+$ ]] && [ "$EVENTS" -ge 1000 ] ||
    { echo "web_bench: --events at least 1000" >&2; exit 2; }
[ -z "$MBIT" ] || [[ $MBIT =~ ^[1-9][0-9]{0,4}$ ]] ||
    { echo "web_bench: --mbit from 1 to 99999" >&2; exit 2; }
[[ $RUNS =~ ^[0-9]+$ ]] && [ "$RUNS" -ge 1 ] && [ "$RUNS" -le 100 ] ||
    { echo "web_bench: --runs from 1 to 100" >&2; exit 2; }
command -v node > /dev/null || die "node not found (scripts/deps.sh)"
[ -x /usr/bin/chromium ] || die "/usr/bin/chromium not found (scripts/deps.sh)"
[ -d "$SRC/tests/web/node_modules/playwright-core" ] ||
    die "tests/web/node_modules missing: npm ci --prefix tests/web"

bench_build sextant-collector scenario_feed query_fill
COLLECTOR=$BUILD/collector/sextant-collector
FEED=$BUILD/tests/scenario_feed
FILL=$BUILD/tests/query_fill
for b in "$COLLECTOR" "$FEED" "$FILL"; do
    [ -x "$b" ] || die "$b missing: build first or pass --build DIR"
done
bench_tmp "$BUILD"

# measure NAME URL SELECTOR [BENCH_ARGS...]: runs bench.mjs; its output in
# $TMP/NAME.out.
measure() {
    local name=$1 url=$2 sel=$3
    shift 3
    curl -sf "${url%%#*}" > /dev/null ||
        die "$url: the collector does not serve the dashboard"
    say "$name: $RUNS cold + warm loads of $url $*"
    node "$SRC/tests/web/bench.mjs" --url "$url" --ready "$sel" \
        --runs "$RUNS" ${MBIT:+--mbit "$MBIT"} "$@" \
        > "$TMP/$name.out" 2> "$TMP/$name.err" ||
        { cat "$TMP/$name.err" >&2; die "$name failed"; }
    echo "$sel" > "$TMP/$name.sel"
}

# measure_both NAME URL SELECTOR [BENCH_ARGS...]: measure, and with
# --identity-baseline also as NAME-identity with the API's replies
# uncompressed.
measure_both() {
    local name=$1
    shift
    measure "$name" "$@"
    [ -z "$BASELINE" ] || measure "$name-identity" "$@" --api-identity 1
}

# row NAME LOAD: a result line from the medians.
row() {
    jq -r --arg l "$2" --arg n "$1" --arg s "$(cat "$TMP/$1.sel")" '
        select(.median == $l) |
        (if .placeholder then "the placeholder (page not built)"
         else $s end) as $s |
        def ms: if . == null then "-" else "\(. | round) ms" end;
        "\($n) \($l): \(.bytes) bytes (\(.bytes / 1024 * 10 | round / 10) KB)" +
        " in \(.requests) requests; first paint \(.fcp_ms | ms)," +
        " drawn (\($s)) \(.ready_ms | ms)," +
        (if .loaded_ms == null then "" else " all rows \(.loaded_ms | ms)," end) +
        " network quiet \(.quiet_ms | ms)," +
        " longest task \(.longest_task_ms | ms)"' "$TMP/$1.out"
}
# vs NAME LOAD KEY: NAME's median / NAME-identity's, for LOAD.
vs() {
    jq -rs --arg l "$2" --arg k "$3" '
        map(select(.median == $l)) as $m |
        if ($m[1][$k] // 0) > 0
        then ($m[0][$k] / $m[1][$k] * 100 | round / 100) else "-" end' \
        "$TMP/$1.out" "$TMP/$1-identity.out"
}
# ratio NAME KEY: warm / cold of a median.
ratio() {
    jq -rs --arg k "$2" '(map(select(.median == "warm"))[0][$k]) as $w |
        (map(select(.median == "cold"))[0][$k]) as $c |
        if $c > 0 then ($w / $c * 100 | round / 100) else "-" end' \
        "$TMP/$1.out"
}

# serve NAME: a collector on $TMP/NAME.db with the incident scenarios'
# config (their clusters and services; the timeline's database has other
# clusters, which only ingest would need).
serve() {
    sed "s|^listen: .*|listen: 127.0.0.1:0|; s|^db: .*|db: $TMP/$1.db|" \
        "$SRC/tests/scenarios/collector.yaml" > "$TMP/$1.yaml"
    start_collector "$TMP/$1.yaml" "$TMP/$1.log"
}

# --- 1. the overview: the failover scenario ---
serve overview
"$FEED" --url "http://127.0.0.1:$CPORT" \
    --scn "$SRC/tests/scenarios/ap_failover.scn" > "$TMP/feed.out" \
    2> "$TMP/feed.log" || { cat "$TMP/feed.log" >&2; die "feed failed"; }
measure_both overview "http://127.0.0.1:$CPORT/#/" '[data-state]'
stop_collector

# --- 2. the timeline: N events over the last 24 hours ---
NOW_MS=$(( $(date +%s%N) / 1000000 ))
say "filling $EVENTS events over the 24 hours before now"
"$FILL" "$TMP/timeline.db" --events "$EVENTS" --days 1 --end-ms "$NOW_MS" \
    > "$TMP/fill.out" 2> "$TMP/fill.log" ||
    { cat "$TMP/fill.log" >&2; die "query_fill failed"; }
serve timeline
FROM=$(date -u -d "@$(( NOW_MS / 1000 - 86400 ))" +%Y-%m-%dT%H:%M:%SZ)
TO=$(date -u -d "@$(( NOW_MS / 1000 + 60 ))" +%Y-%m-%dT%H:%M:%SZ)
measure_both timeline \
    "http://127.0.0.1:$CPORT/#/timeline?from=$FROM&to=$TO" '[data-kind]' \
    --loaded '^[0-9]+ events from'
stop_collector

# --- 3. the figures ---
COLD=$(jq -r 'select(.median == "cold") | .bytes' "$TMP/overview.out")
if [ "$COLD" -le "$GOAL_BYTES" ]; then
    VERDICT="met"
else
    VERDICT="NOT met"
fi
cat <<EOF
web_bench: medians of $RUNS runs, headless chromium $(/usr/bin/chromium \
    --version 2>/dev/null | sed -n 's/^Chromium \([0-9.]*\).*/\1/p'),
1280x900, $(machine), load average $(cut -d' ' -f1-3 /proc/loadavg)${MBIT:+,
downloads throttled to $MBIT Mbit/s}
$(row overview cold)
$(row overview warm)
$(row timeline cold)
$(row timeline warm)
overview warm / cold: bytes $(ratio overview bytes), first paint \
$(ratio overview fcp_ms), drawn $(ratio overview ready_ms)
timeline ($EVENTS events, $FROM to $TO) warm / cold: bytes \
$(ratio timeline bytes), drawn $(ratio timeline ready_ms)
goal: the overview's first load under 300 KB: $COLD bytes, $VERDICT
EOF
[ -n "$BASELINE" ] || exit 0
cat <<EOF
the same views with the API's replies uncompressed (Accept-Encoding:
identity on /api/v1/ requests; the assets still gzipped):
$(row overview-identity cold)
$(row overview-identity warm)
$(row timeline-identity cold)
$(row timeline-identity warm)
gzip / identity: overview bytes cold $(vs overview cold bytes), warm \
$(vs overview warm bytes); drawn cold $(vs overview cold ready_ms)
gzip / identity: timeline bytes cold $(vs timeline cold bytes), warm \
$(vs timeline warm bytes); drawn cold $(vs timeline cold ready_ms); all \
rows cold $(vs timeline cold loaded_ms), warm $(vs timeline warm loaded_ms)
EOF
