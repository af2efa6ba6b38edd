#!/usr/bin/env bash
# test.sh -- installs the API and browser tests' node modules (npm ci, in
# the background), builds Sextant twice, plainly and with AddressSanitizer
# + UndefinedBehaviorSanitizer, and runs every test (ctest) against both
# (the browser tests, label "browser", against the plain build only; the
# PostgreSQL tests, label "postgres", against the ASan build only); with
# CI=true or FUZZ=1, the libFuzzer harnesses too (tests/fuzz/run.sh).
# The two suites, the demo tests of both builds (one at a time) and the
# fuzzing run side by side once both builds are done (see "Side by side"
# below); their logs are printed whole, each as it ends.
set -euo pipefail
cd "$(dirname "$0")/.."

logs=$(mktemp -d "${TMPDIR:-/tmp}/sextant-test.XXXXXX")

# step TEXT: a "== " line with the seconds since the start and the CPU
# seconds (user + sys) used so far by the processes that ended, so that
# a CI log shows what each phase cost. bash's `times` (its second line:
# the children's) runs in this shell, not in a $(...) subshell, which
# has no children of its own.
step() {
    times > "$logs/times"
    echo "== [${SECONDS} s, CPU $(sed -n 2p "$logs/times" | tr ' ' '\n' |
        awk -F'[ms]' '{ s += $1 * 60 + $2 } END { printf "%d", s }') s] $*"
}
bg_pids=()
# Stops whatever still runs in the background if we leave early (a failed
# build, Ctrl-C): npm, the fuzzing, a suite.
source scripts/bg.sh
cleanup() {
    bg_stop "${bg_pids[@]}"
    rm -rf "$logs"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP    # so that EXIT's cleanup runs on these too

# The API tests check every reply against docs/openapi.yaml with node
# modules pinned in tests/openapi/package-lock.json; the browser tests
# (web_dashboard_*) drive chromium with those in tests/web/; the manifests
# of deploy/ are validated with those in tests/deploy/. Installed in the
# background while the builds run (a minute and more of network and disk
# on a CI machine, which neither needs), joined before the first tests.
step "node modules (tests/openapi, tests/web, tests/deploy, npm ci)," \
     "in the background"
( npm ci --prefix tests/openapi --no-audit --no-fund --loglevel=error &&
  npm ci --prefix tests/web --no-audit --no-fund --loglevel=error &&
  npm ci --prefix tests/deploy --no-audit --no-fund --loglevel=error ) \
    > "$logs/npm" 2>&1 &
npm_pid=$!
bg_pids+=("$npm_pid")

for variant in plain sanitize; do
    dir=build-test-$variant
    san=OFF
    [ "$variant" = sanitize ] && san=ON
    step "$variant build ($dir)"
    mkdir -p "$dir"
    cmake -S . -B "$dir" -DSEXTANT_SANITIZE=$san > "$dir/configure.log" 2>&1 \
        || { cat "$dir/configure.log"; exit 1; }
    cmake --build "$dir" -j"$(nproc)"
done
if wait "$npm_pid"; then
    step "node modules installed"
    cat "$logs/npm"
else
    cat "$logs/npm"
    echo "== npm ci FAILED"
    exit 1
fi

# Side by side: the plain suite, the ASan suite and (CI=true or FUZZ=1)
# the fuzzing. Run one after another they took 1,330 s on a quiet 2-core
# machine, while their processes kept the cores busy less than half of
# that time: a collector-and-agents test keeps some 15 % of a core busy
# (5.7 s of CPU in 32 s), waiting on the processes it drives, and each
# waits for its conditions with generous deadlines, never for a fixed
# time. The fuzzing runs one harness at a time (FUZZ_JOBS=1): each gets
# a core for its time, as when two ran at once with nothing beside them,
# and the tests keep the other; at nice 10 (its clang build too), so
# that a test that waits on its processes' timing (the demos' RTO, a
# server's start) gets the CPU first: a fuzzer does not mind waiting. Each suite runs CTEST_JOBS tests at once
# (default 4), longest first (the COST next to each long test).
# run_bg NAME CMD...: runs CMD in the background, its output to
# $logs/NAME, its exit status to $logs/NAME.rc.
run_bg() {
    local name=$1
    shift
    ( rc=0; "$@" > "$logs/$name" 2>&1 || rc=$?; echo "$rc" > "$logs/$name.rc" ) &
    bg_pids+=($!)
}
jobs=${CTEST_JOBS:-4}
# The browser tests (label "browser", tests/web.cmake) in the plain build
# only; the PostgreSQL tests (label "postgres": the @pg matrix of
# tests/pg.cmake and the pg_* tests) in the ASan build only, where the
# sanitizers check the same C code they reach.
# The demos (label "demo", tests/demo.cmake) of both builds in a lane of
# their own, one at a time: each holds its RTO to a window of seconds.
run_bg plain bash -c 'cd build-test-plain &&
    exec ctest --output-on-failure -j"$1" -LE "postgres|demo"' _ "$jobs"
run_bg sanitize bash -c 'cd build-test-sanitize &&
    exec ctest --output-on-failure -j"$1" -LE "browser|demo"' _ "$jobs"
run_bg demos bash -c 'rc=0
    for b in plain sanitize; do
        echo "== demos of build-test-$b"
        (cd "build-test-$b" && ctest --output-on-failure -j1 -L demo) || rc=1
    done
    exit $rc'
parts="demos plain sanitize"
if [ "${CI:-}" = true ] || [ "${FUZZ:-}" = 1 ]; then
    # A few minutes of fuzzing: CI always runs it, a developer opts in.
    run_bg fuzz nice -n 10 env FUZZ_JOBS="${FUZZ_JOBS:-1}" tests/fuzz/run.sh
    parts="fuzz $parts"
    step "plain tests, sanitize tests, the demos and fuzz" \
         "(tests/fuzz/run.sh, ${FUZZ_SECONDS:-60}s per harness, the quick" \
         "ones half), side by side"
else
    step "plain tests, sanitize tests and the demos, side by side" \
         "(fuzz skipped: set FUZZ=1 or CI=true to run tests/fuzz/run.sh)"
fi

# Each part's log as it ends (fuzzing first when it ends first); the
# ctest summaries come last, since the suites end last.
failed=()
pending=" $parts "
while [ "$pending" != " " ]; do
    wrc=0
    wait -n || wrc=$?
    for part in $pending; do
        [ -e "$logs/$part.rc" ] || continue
        pending=${pending/ $part / }
        rc=$(cat "$logs/$part.rc")
        echo "==== $part (exit $rc)"
        cat "$logs/$part"
        if [ "$rc" = 0 ]; then
            step "$part passed"
        else
            failed+=("$part")
            case $part in
                fuzz) step "fuzz FAILED (inputs in build-fuzz/fuzz-artifacts/)" ;;
                *) step "$part tests FAILED" ;;
            esac
        fi
    done
    # 127: nothing left to wait for, yet a part wrote no exit status.
    if [ "$wrc" = 127 ] && [ "$pending" != " " ]; then
        echo "== no exit status from:$pending"
        failed+=($pending)
        break
    fi
done
bg_pids=()
[ ${#failed[@]} = 0 ] || { echo "== FAILED: ${failed[*]}"; exit 1; }
step "all passed"
