#!/usr/bin/env bash
# deps.sh -- installs the Debian 12 packages that building, running and
# testing Sextant need, and only those that are missing. Run as root.
set -euo pipefail

PKGS=(
    cmake gcc make pkg-config           # build
    protobuf-c-compiler libprotobuf-c-dev
    libmicrohttpd-dev libcurl4-openssl-dev libyaml-dev libsqlite3-dev
    zlib1g-dev libc-ares-dev libjson-c-dev
    libpq-dev                           # the PostgreSQL backend (libpq)
    libcmocka-dev sqlite3 jq curl       # tests
    dnsmasq-base openssl prometheus
    postgresql                          # tests start their own server
                                        # (initdb, pg_ctl: tests/pg_server.sh);
                                        # brings psql (postgresql-client)
    nodejs                              # API replies vs docs/openapi.yaml
                                        # and the dashboard's build (npm)
    chromium                            # browser tests (tests/web/)
    clang libclang-rt-14-dev            # fuzzing (tests/fuzz/run.sh)
)

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' \
        || missing+=("$p")
done
# npm is Debian's own package, but other builds of nodejs (NodeSource's)
# bring the command and conflict with that package: asked for only when
# the command is missing.
command -v npm > /dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
    echo "deps: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${missing[@]}"
fi
