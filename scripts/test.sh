#!/usr/bin/env bash
# test.sh -- installs the API and browser tests' node modules (npm ci),
# builds Sextant twice, plainly and with AddressSanitizer +
# UndefinedBehaviorSanitizer, and runs every test (ctest) against both
# (the browser test, label "browser", against the plain build only);
# first, with CI=true or FUZZ=1, the libFuzzer harnesses (tests/fuzz/run.sh),
# so that ctest's summary is the last thing printed.
set -euo pipefail
cd "$(dirname "$0")/.."

# The API tests check every reply against docs/openapi.yaml with node
# modules pinned in tests/openapi/package-lock.json; the browser tests
# (web_dashboard) drive chromium with those in tests/web/; the manifests
# of deploy/ are validated with those in tests/deploy/.
echo "== node modules (tests/openapi, tests/web, tests/deploy, npm ci)"
npm ci --prefix tests/openapi --no-audit --no-fund --loglevel=error
npm ci --prefix tests/web --no-audit --no-fund --loglevel=error
npm ci --prefix tests/deploy --no-audit --no-fund --loglevel=error

# A few minutes of fuzzing: CI always runs it, a developer opts in.
if [ "${CI:-}" = true ] || [ "${FUZZ:-}" = 1 ]; then
    echo "== fuzz (tests/fuzz/run.sh, ${FUZZ_SECONDS:-60}s per harness)"
    tests/fuzz/run.sh \
        || { echo "== fuzz FAILED (inputs in build-fuzz/fuzz-artifacts/)"
             exit 1; }
    echo "== fuzz passed"
else
    echo "== fuzz skipped (set FUZZ=1 or CI=true to run tests/fuzz/run.sh)"
fi

for variant in plain sanitize; do
    dir=build-test-$variant
    san=OFF
    [ "$variant" = sanitize ] && san=ON
    echo "== $variant build ($dir)"
    mkdir -p "$dir"
    cmake -S . -B "$dir" -DSEXTANT_SANITIZE=$san > "$dir/configure.log" 2>&1 \
        || { cat "$dir/configure.log"; exit 1; }
    cmake --build "$dir" -j"$(nproc)"
    echo "== $variant tests"
    # The browser test (label "browser", tests/web.cmake) in the plain
    # build only.
    skip=()
    [ "$variant" = sanitize ] && skip=(-LE browser)
    (cd "$dir" && ctest --output-on-failure -j2 "${skip[@]}")
done
