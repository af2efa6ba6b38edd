#!/usr/bin/env bash
# test.sh -- builds Sextant twice, plainly and with AddressSanitizer +
# UndefinedBehaviorSanitizer, and runs every test (ctest) against both.
set -euo pipefail
cd "$(dirname "$0")/.."

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
    (cd "$dir" && ctest --output-on-failure -j2)
done
