# lib.sh -- helpers shared by the benchmark scripts (sourced, not run):
# logging, the Release build, a temp folder whose processes are all
# stopped at exit, waiting for a log line, reading a process's CPU
# time and memory from /proc, and the ingest benchmarks' clusters. The caller sets SRC, BUILD (empty: build
# into $SRC/build-bench) and KEEP (empty: delete the temp folder).

say() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { say "FAILED: $*"; exit 1; }

# bench_build TARGET...: builds the targets in Release into
# $SRC/build-bench unless BUILD names a build already; sets BUILD and
# BUILD_TYPE.
bench_build() {
    if [ -z "$BUILD" ]; then
        BUILD=$SRC/build-bench
        say "building into $BUILD (Release)"
        cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release > /dev/null
        cmake --build "$BUILD" -j "$(nproc)" --target "$@" > /dev/null
    fi
    BUILD_TYPE=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' \
                 "$BUILD/CMakeCache.txt")
}

# bench_tmp: makes TMP; at exit stops every pid in PIDS (TERM, then KILL
# after 10 s), keeps TMP's contents in KEEP if set, and removes TMP. A
# script may put a function named bench_on_exit before that.
TMP=
PIDS=()
bench_cleanup() {
    local p j
    trap - EXIT INT TERM
    if declare -F bench_on_exit > /dev/null; then bench_on_exit || true; fi
    for p in "${PIDS[@]}"; do
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
            && say "kept configs, logs and databases in $KEEP"
    fi
    rm -rf "$TMP"
}
bench_tmp() {
    TMP=$(mktemp -d "${1:-/tmp}/bench.XXXXXX")
    trap bench_cleanup EXIT
    trap 'say "interrupted"; exit 1' INT TERM
}

# wait_for FILE PATTERN [SECONDS]: until a line matches (default 10 s).
wait_for() {
    local i
    for i in $(seq $((${3:-10} * 10))); do
        grep -q -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    die "timed out waiting for '$2' in $1"
}

TCK=$(getconf CLK_TCK)
# cpu_ticks PID: utime + stime of every thread, in clock ticks.
cpu_ticks() {
    local stat rest f
    stat=$(< "/proc/$1/stat") || return 1
    rest=${stat##*) }
    read -r -a f <<< "$rest"
    echo $((f[11] + f[12]))
}
# status_kb PID KEY: a kB figure of /proc/PID/status (VmRSS, VmHWM).
status_kb() {
    local s
    s=$(< "/proc/$1/status") || return 1
    [[ $s == *"$2:"* ]] || return 1
    read -r s _ <<< "${s#*"$2:"}"
    echo "$s"
}
now() { echo "$EPOCHREALTIME"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
# pct TICKS SECONDS: CPU as % of one core.
pct() { awk -v t="$1" -v hz="$TCK" -v w="$2" \
        'BEGIN { printf "%.0f", 100 * t / hz / w }'; }
# kv FILE KEY: the value of a key=value line.
kv() { sed -n "s/^$2=//p" "$1" | head -n1; }
machine() {
    echo "$(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' \
        /proc/cpuinfo | head -n1); build $BUILD_TYPE; SQLite" \
        "$(sqlite3 --version | cut -d' ' -f1)"
}

# bench_need CMD... -- FILE...: dies unless each CMD is on PATH and each
# FILE (a built binary) is executable.
bench_need() {
    local t
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        command -v "$1" > /dev/null || die "$1 not found"
        shift
    done
    [ $# -eq 0 ] || shift
    for t in "$@"; do
        [ -x "$t" ] || die "$t missing: build first or pass --build DIR"
    done
}

# The ingest benchmarks' three clusters, and their tokens as ingest_load's
# --tokens takes them.
CLUSTERS=(eu-west-1 us-east-1 ap-southeast-1)
TOKENS=
for c in "${CLUSTERS[@]}"; do TOKENS+=${TOKENS:+,}bench-token-$c-0123456789; done
# bench_collector_config DB: the default config with those clusters.
bench_collector_config() {
    local c
    echo "listen: 127.0.0.1:0"
    echo "db: $1"
    echo "clusters:"
    for c in "${CLUSTERS[@]}"; do
        echo "  - name: $c"
        echo "    token: bench-token-$c-0123456789"
    done
}

# start_collector CONFIG LOG [SECONDS]: a real sextant-collector
# ($COLLECTOR) on a free loopback port, waited for until its store is
# ready (at most SECONDS, default 600); sets CPID and CPORT and adds it
# to PIDS.
start_collector() {
    "$COLLECTOR" --config "$1" 2> "$2" &
    CPID=$!
    PIDS+=("$CPID")
    wait_for "$2" 'listening on'
    CPORT=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$2" |
            head -n1)
    wait_for "$2" ', ready$' "${3:-600}"
}

# stop_collector: SIGTERM, and it must exit 0.
stop_collector() {
    kill -TERM "$CPID"
    wait "$CPID" || die "the collector exited $? on SIGTERM"
}
