#!/usr/bin/env bash
# test.sh -- installs the API and browser tests' node modules (npm ci, in
# the background), builds Sextant twice, plainly and with AddressSanitizer
# + UndefinedBehaviorSanitizer, and runs every test (ctest) against both
# (the browser test, label "browser", against the plain build only; the
# PostgreSQL tests, label "postgres", against the ASan build only);
# first, with CI=true or FUZZ=1, the libFuzzer harnesses (tests/fuzz/run.sh),
# so that ctest's summary is the last thing printed.
set -euo pipefail
cd "$(dirname "$0")/.."

# step TEXT: a "== " line with the seconds since the start, so that a CI
# log shows what each phase cost.
step() {
    echo "== [${SECONDS} s] $*"
}

# The API tests check every reply against docs/openapi.yaml with node
# modules pinned in tests/openapi/package-lock.json; the browser tests
# (web_dashboard) drive chromium with those in tests/web/; the manifests
# of deploy/ are validated with those in tests/deploy/. Installed in the
# background while fuzzing and the plain build run (a minute and more of
# network and disk on a CI machine, which neither needs), joined before
# the first tests.
step "node modules (tests/openapi, tests/web, tests/deploy, npm ci)," \
     "in the background"
npm_log=$(mktemp "${TMPDIR:-/tmp}/sextant-npm.XXXXXX")
( npm ci --prefix tests/openapi --no-audit --no-fund --loglevel=error &&
  npm ci --prefix tests/web --no-audit --no-fund --loglevel=error &&
  npm ci --prefix tests/deploy --no-audit --no-fund --loglevel=error ) \
    > "$npm_log" 2>&1 &
npm_pid=$!
# Stops npm if we leave early (a failed fuzz run or build).
trap '[ -z "$npm_pid" ] || { pkill -TERM -P "$npm_pid"; kill "$npm_pid"; } \
          2> /dev/null; rm -f "$npm_log"' EXIT
npm_join() {
    [ -n "$npm_pid" ] || return 0
    if wait "$npm_pid"; then
        step "node modules installed"
        cat "$npm_log"
    else
        cat "$npm_log"
        echo "== npm ci FAILED"
        exit 1
    fi
    npm_pid=
}

# A few minutes of fuzzing: CI always runs it, a developer opts in.
if [ "${CI:-}" = true ] || [ "${FUZZ:-}" = 1 ]; then
    step "fuzz (tests/fuzz/run.sh, ${FUZZ_SECONDS:-60}s per harness," \
         "the quick ones half)"
    tests/fuzz/run.sh \
        || { echo "== fuzz FAILED (inputs in build-fuzz/fuzz-artifacts/)"
             exit 1; }
    step "fuzz passed"
else
    echo "== fuzz skipped (set FUZZ=1 or CI=true to run tests/fuzz/run.sh)"
fi

for variant in plain sanitize; do
    dir=build-test-$variant
    san=OFF
    [ "$variant" = sanitize ] && san=ON
    step "$variant build ($dir)"
    mkdir -p "$dir"
    cmake -S . -B "$dir" -DSEXTANT_SANITIZE=$san > "$dir/configure.log" 2>&1 \
        || { cat "$dir/configure.log"; exit 1; }
    cmake --build "$dir" -j"$(nproc)"
    npm_join
    step "$variant tests"
    # The browser test (label "browser", tests/web.cmake) in the plain
    # build only; the PostgreSQL tests (label "postgres": the @pg matrix
    # of tests/pg.cmake and the pg_* tests) in the ASan build only, where
    # the sanitizers check the same C code they reach.
    skip=(-LE postgres)
    [ "$variant" = sanitize ] && skip=(-LE browser)
    # Four at once on two cores: the tests mostly wait on the processes
    # they drive (a collector-and-agents test keeps some 15 % of a core
    # busy: 5.7 s of CPU in 32 s), and each waits for its conditions with
    # generous deadlines, never for a fixed time. CTEST_JOBS overrides.
    (cd "$dir" && ctest --output-on-failure -j"${CTEST_JOBS:-4}" \
        "${skip[@]}")
done
