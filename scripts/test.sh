#!/usr/bin/env bash
# test.sh -- installs the API and browser tests' node modules (npm ci, in
# the background), builds Sextant twice, plainly and with AddressSanitizer
# + UndefinedBehaviorSanitizer, and runs every test (ctest) against both
# (the browser tests, label "browser", against the plain build only; the
# PostgreSQL tests, label "postgres", against the ASan build only); with
# CI=true or FUZZ=1, the libFuzzer harnesses too (tests/fuzz/run.sh).
# Both builds come first; then the fuzzing, the plain suite and the ASan
# suite one after another, or with SIDE_BY_SIDE=1 at once (see "Side by
# side" below); their logs are printed whole, each as it ends.
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
# (web_dashboard) drive chromium with those in tests/web/; the manifests
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

# Side by side (SIDE_BY_SIDE=1): the plain suite, the ASan suite, the
# demo tests of both builds and (CI=true or FUZZ=1) the fuzzing at once.
# Run one after another they took 1,330 s on a quiet 2-core machine,
# while the suites mostly wait on the processes they drive (a
# collector-and-agents test keeps some 15 % of a core busy: 5.7 s of CPU
# in 32 s) and each waits for its conditions with generous deadlines,
# never for a fixed time. The fuzzing then runs one harness at a time
# (FUZZ_JOBS=1): each gets a core for its time, as when two ran at once
# with nothing beside them; at nice 10 (its clang build too), so that a
# test that waits on its processes' timing (the demos' RTO, a server's
# start) gets the CPU first. Each suite runs CTEST_JOBS tests at once
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
# SIDE_BY_SIDE=1 runs the parts at once as described above; by default
# (until full runs of it pass under load, see bench/RESULTS.md "Suite
# wall time with the PostgreSQL tests") one after another, as before:
# the fuzzing, the plain suite, the ASan suite.
side=${SIDE_BY_SIDE:-0}
# serial: waits for the part just started, unless side by side.
serial() {
    [ "$side" = 1 ] || wait "${bg_pids[-1]}" || true
}
# ctest_bg NAME BUILD EXCLUDE: the suite of BUILD without the labels
# EXCLUDE matches, as part NAME.
ctest_bg() {
    run_bg "$1" bash -c 'cd "$1" && exec ctest --output-on-failure \
        -j"$2" -LE "$3"' _ "$2" "$jobs" "$3"
}
parts=
if [ "${CI:-}" = true ] || [ "${FUZZ:-}" = 1 ]; then
    # A few minutes of fuzzing: CI always runs it, a developer opts in.
    step "fuzz (tests/fuzz/run.sh, ${FUZZ_SECONDS:-60}s per harness," \
         "the quick ones half)"
    if [ "$side" = 1 ]; then
        run_bg fuzz nice -n 10 env FUZZ_JOBS="${FUZZ_JOBS:-1}" \
            tests/fuzz/run.sh
    else
        run_bg fuzz tests/fuzz/run.sh
    fi
    serial
    parts=fuzz
else
    echo "== fuzz skipped (set FUZZ=1 or CI=true to run tests/fuzz/run.sh)"
fi
if [ "$side" = 1 ]; then
    step "plain tests, sanitize tests and the demos, side by side"
    # The demos (label "demo", tests/demo.cmake) of both builds in a
    # lane of their own, one at a time: each holds its RTO to a window
    # of seconds.
    ctest_bg plain build-test-plain "postgres|demo"
    ctest_bg sanitize build-test-sanitize "browser|demo"
    run_bg demos bash -c 'rc=0
        for b in plain sanitize; do
            echo "== demos of build-test-$b"
            (cd "build-test-$b" && ctest --output-on-failure -j1 -L demo) ||
                rc=1
        done
        exit $rc'
    parts="$parts demos plain sanitize"
else
    step "plain tests"
    ctest_bg plain build-test-plain postgres
    serial
    step "sanitize tests"
    ctest_bg sanitize build-test-sanitize browser
    serial
    parts="$parts plain sanitize"
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
