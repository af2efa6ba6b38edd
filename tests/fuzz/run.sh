#!/usr/bin/env bash
# run.sh -- builds the libFuzzer harnesses of tests/fuzz/ with clang in a
# build of their own (build-fuzz: the default build is gcc and not
# instrumented) and runs each for a bounded time on a copy of its seed
# corpus, never on the committed one. Exits non-zero on any crash, leak,
# timeout, sanitizer report or failed harness check, and names the input.
#
# Environment:
#   FUZZ_SECONDS  time per harness, -max_total_time (default 60); the
#                 two whose coverage stops growing early (QUICK below)
#                 get half of it
#   FUZZ_JOBS     harnesses run at once (default: nproc); on 2 jobs the
#                 five take 2 * FUZZ_SECONDS after the build
#   FUZZ_BUILD    build directory (default build-fuzz)
#   FUZZ_CC       compiler (default clang)
#   FUZZ_ONLY     space-separated subset of: wire_zlib wire_raw
#                 agent_config collector_config hist_blob
# Crash inputs are kept in $FUZZ_BUILD/fuzz-artifacts/ (emptied when a run
# starts); reproduce one with
#   $FUZZ_BUILD/tests/fuzz/fuzz_NAME FILE
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-$(nproc)}
build=${FUZZ_BUILD:-build-fuzz}
cc=${FUZZ_CC:-clang}
# Longest first, so that on 2 jobs the two quick ones share one slot
# while wire_raw has the other: 2 * FUZZ_SECONDS, not 3 *.
all="agent_config collector_config wire_raw wire_zlib hist_blob"
# On the committed corpus these reach the cov (and within 3% the ft) of a
# 60 s run within 10 s, while the other three still find features at
# 60 s (cov and ft at 10..60 s, measured twice on a loaded 2-core
# machine; the counts in bench/RESULTS.md, "Suite wall time"): a second
# half-minute of them would buy nothing the others' would not.
quick="wire_zlib hist_blob"
read -r -a harnesses <<< "${FUZZ_ONLY:-$all}"
case "$seconds$jobs" in
    *[!0-9]*) echo "FUZZ_SECONDS and FUZZ_JOBS must be whole numbers" >&2
              exit 2 ;;
esac
[ "$seconds" -ge 1 ] && [ "$jobs" -ge 1 ] \
    || { echo "FUZZ_SECONDS and FUZZ_JOBS must be at least 1" >&2; exit 2; }
for h in "${harnesses[@]}"; do
    [ -d "tests/fuzz/corpus/$h" ] \
        || { echo "unknown harness '$h' (see FUZZ_ONLY)" >&2; exit 2; }
done
command -v "$cc" > /dev/null \
    || { echo "$cc not found: the fuzz build needs clang" >&2; exit 1; }

# The whole build is instrumented (coverage for libFuzzer, ASan, UBSan that
# aborts so libFuzzer sees it); only the harnesses link libFuzzer itself.
flags="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all"
flags="$flags -fno-omit-frame-pointer"
mkdir -p "$build"
echo "fuzz: configuring $build with $cc"
cmake -S . -B "$build" -DCMAKE_C_COMPILER="$cc" \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSEXTANT_FUZZ=ON \
      -DSEXTANT_SANITIZE=OFF -DCMAKE_C_FLAGS="$flags" \
      -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
      > "$build/configure.log" 2>&1 \
    || { cat "$build/configure.log"; exit 1; }
targets=()
for h in "${harnesses[@]}"; do
    targets+=(--target "fuzz_$h")
done
echo "fuzz: building ${harnesses[*]}"
cmake --build "$build" -j"$(nproc)" "${targets[@]}" > "$build/build.log" 2>&1 \
    || { cat "$build/build.log"; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/sextant-fuzz.XXXXXX")
artifacts=$(cd "$build" && pwd)/fuzz-artifacts
rm -rf "$artifacts"
mkdir -p "$artifacts" "$work/tmp"
pids=()
source scripts/bg.sh
cleanup() {
    bg_stop "${pids[@]}"            # the harnesses' subshells
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP    # so that EXIT's cleanup runs on these too

symbolizer=$(command -v llvm-symbolizer || true)
ASAN_OPTIONS="detect_leaks=1:symbolize=1"
[ -n "$symbolizer" ] \
    && ASAN_OPTIONS="$ASAN_OPTIONS:external_symbolizer_path=$symbolizer"
export ASAN_OPTIONS
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export TMPDIR="$work/tmp"     # the config harnesses' scratch files

# Runs one harness; its exit status goes to $work/NAME.rc.
run_one() {
    local name=$1 rc=0 secs=$seconds
    local dict=()
    case " $quick " in
        *" $name "*) secs=$(( (seconds + 1) / 2 )) ;;
    esac
    cp -r "tests/fuzz/corpus/$name" "$work/corpus-$name"
    [ -f "tests/fuzz/$name.dict" ] && dict=(-dict="tests/fuzz/$name.dict")
    # -timeout: no input may take 10 s (a hang is a finding too).
    "$build/tests/fuzz/fuzz_$name" -max_total_time="$secs" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$artifacts/$name-" "${dict[@]}" \
        "$work/corpus-$name" < /dev/null > "$work/$name.log" 2>&1 || rc=$?
    echo "$rc" > "$work/$name.rc"
}

echo "fuzz: ${harnesses[*]}: ${seconds}s each ($quick:" \
     "$(( (seconds + 1) / 2 ))s), $jobs at a time"
running=0
for h in "${harnesses[@]}"; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n || true
        running=$((running - 1))
    fi
    run_one "$h" &
    pids+=($!)
    running=$((running + 1))
done
for p in "${pids[@]}"; do
    wait "$p" || true
done
pids=()

# Reads "stat::NAME: VALUE" from libFuzzer's final stats.
fuzz_stat() {
    sed -n "s/^stat::$2: *//p" "$work/$1.log" | tail -n 1
}

# Any of these in a log fails the run, even if the exit status was 0.
findings='ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:'
findings="$findings|harness check failed|SUMMARY: |ALARM|out-of-memory"
failed=0
for h in "${harnesses[@]}"; do
    log="$work/$h.log"
    rc=$(cat "$work/$h.rc" 2> /dev/null || echo missing)
    report=$(grep -E -m 1 "$findings" "$log" || true)
    if [ "$rc" = 0 ] && [ -z "$report" ]; then
        done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1)
        cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<< "$done_line")
        ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<< "$done_line")
        corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<< "$done_line")
        echo "fuzz: ok   fuzz_$h:" \
             "$(fuzz_stat "$h" number_of_executed_units) runs," \
             "$(fuzz_stat "$h" average_exec_per_sec) exec/s," \
             "cov $cov, ft $ft, corpus $corp," \
             "peak rss $(fuzz_stat "$h" peak_rss_mb) MB"
        continue
    fi
    failed=1
    echo "fuzz: FAIL fuzz_$h (exit $rc): ${report:-no sanitizer report}"
    echo "---- last lines of the fuzz_$h log"
    tail -n 80 "$log"
    echo "----"
    crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
    if [ -n "$crash" ]; then
        echo "fuzz: crashing input: $crash"
        echo "fuzz: reproduce: $build/tests/fuzz/fuzz_$h $crash"
    fi
done
[ "$failed" = 0 ] || exit 1
echo "fuzz: no crashes"
