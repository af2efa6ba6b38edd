# deploy_manifests.sh -- the Kubernetes manifests of deploy/ against the
# API schemas and against the binaries of this build
# (tests/deploy/check.mjs says what is checked). Needs node and the
# modules pinned in tests/deploy/package-lock.json.
set -euo pipefail
: "${SEXTANT_SRC:?run through ctest}"

command -v node > /dev/null || {
    echo "FAIL: node is not installed: run scripts/deps.sh" >&2; exit 1; }
[ -d "$SEXTANT_SRC/tests/deploy/node_modules/kubernetes-models" ] || {
    echo "FAIL: tests/deploy/node_modules is missing: run 'npm ci" \
         "--prefix tests/deploy' (scripts/test.sh does)" >&2; exit 1; }
exec node "$SEXTANT_SRC/tests/deploy/check.mjs"
