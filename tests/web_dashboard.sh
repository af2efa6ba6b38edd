#!/bin/bash
# web_dashboard.sh -- the dashboard in a real browser: Debian's chromium,
# headless, driven by playwright-core (tests/web/run.mjs, which says what
# it checks and how a page adds its own checks) against three real
# collectors with the services of tests/scenarios/collector.yaml:
# - one fed the active-passive failover (tests/web/steady.scn: the
#   scenario, then its aftermath kept going a few seconds ahead of the
#   clock so that the agents stay fresh while the browser looks);
# - one with api_tokens (a read token, and one of scope annotate), fed the
#   same failover, for the sign-in and annotation checks;
# - one with 100,000 events over the last 24 hours (tests/query_fill),
#   for the timeline's volume check;
# - one with an empty database, made not ready by banner.spec.mjs (which
#   write-locks its database) for the "Collector not ready" banner.
# Screenshots of every page go to web-shots/ in the build folder.
source "$(dirname "$0")/lib.sh"
: "${SCENARIO_FEED:?run through ctest}"

WEB=$SEXTANT_SRC/tests/web
READ_TOKEN=web-read-token-0123456789
NOTE_TOKEN=web-note-token-0123456789
LIVE_AGENT="cluster=us region=us-east-1 token=scenario-us-token-0123456789"
SHOTS=$SEXTANT_BIN/web-shots

# Node, its pinned modules and the browser: missing ones fail the test
# with what to run (a test never skips its checks).
command -v node > /dev/null ||
    fail "node is not installed: run scripts/deps.sh"
[ -d "$WEB/node_modules/playwright-core" ] ||
    fail "tests/web/node_modules is missing: run" \
         "'npm ci --prefix tests/web' (scripts/test.sh does)"
[ -x /usr/bin/chromium ] ||
    fail "/usr/bin/chromium is missing: run scripts/deps.sh"

# closed_incidents TOKEN N: the collector at $URL lists N incidents, all
# closed (read with TOKEN, if not empty).
closed_incidents() {
    curl -sf "$URL/api/v1/incidents" ${1:+-H "Authorization: Bearer $1"} \
        > "$TMP/incidents.json" 2>/dev/null || return 1
    [ "$(jq '[.incidents[] | select(.open | not)] | length' \
         "$TMP/incidents.json")" = "$2" ]
}

# keep_fresh: feeds steady.scn from 41 s on up to 40 s ahead of the
# clock (the collector takes events up to a minute ahead), again each
# time the clock moved 10 s on, until $TMP/keeper.stop exists. A feed
# takes seconds on a loaded machine (its clock sync): the lead outlasts it.
keep_fresh() {
    local w=41 upto
    until [ -e "$TMP/keeper.stop" ]; do
        upto=$(( ($(now_ms) - BASE) / 1000 + 40 ))
        if [ "$upto" -lt $(( w + 10 )) ]; then
            sleep 0.2
            continue
        fi
        "$SCENARIO_FEED" --url "$URL" --scn "$WEB/steady.scn" \
            --base "$BASE" --from "$w" --before "$upto" --span 10 \
            >> "$TMP/keeper.log" 2>&1 ||
            echo "keeper: feed of $w s failed" >> "$TMP/keeper.log"
        w=$upto
    done
}

# The collector for the timeline's volume check (timeline.spec.mjs):
# 100,000 events over the 24 hours before now, written by query_fill.
"$SEXTANT_BIN/tests/query_fill" "$TMP/volume.db" --events 100000 --days 1 \
    --end-ms "$(now_ms)" > "$TMP/fill.log" 2>&1 || fail "query_fill failed"
cp "$SEXTANT_SRC/tests/scenarios/collector.yaml" "$TMP/volume.yaml"
COLLECTOR_CONFIG=$TMP/volume.yaml COLLECTOR_LOG=$TMP/volume-collector.log \
    start_collector "$TMP/volume.db"
VOLUME_PID=$COLLECTOR_PID
VOLUME_URL=$URL

# The collector banner.spec.mjs makes not ready and ready again.
cp "$SEXTANT_SRC/tests/scenarios/collector.yaml" "$TMP/notready.yaml"
COLLECTOR_CONFIG=$TMP/notready.yaml COLLECTOR_LOG=$TMP/notready-collector.log \
    start_collector "$TMP/notready.db"
NOTREADY_PID=$COLLECTOR_PID
NOTREADY_URL=$URL

# The collector with tokens: the failover, fed once, read with the token.
cp "$SEXTANT_SRC/tests/scenarios/collector.yaml" "$TMP/auth.yaml"
printf 'api_tokens:\n  - token: %s\n  - token: %s\n    scope: annotate\n' \
    "$READ_TOKEN" "$NOTE_TOKEN" >> "$TMP/auth.yaml"
COLLECTOR_CONFIG=$TMP/auth.yaml COLLECTOR_LOG=$TMP/auth-collector.log \
    start_collector "$TMP/auth.db"
AUTH_PID=$COLLECTOR_PID
AUTH_URL=$URL
"$SCENARIO_FEED" --url "$URL" --scn "$SEXTANT_SRC/tests/scenarios/ap_failover.scn" \
    > "$TMP/auth-feed.log" 2>&1 || fail "feeding the token collector failed"
wait_until 60 "the token collector's incident closed" \
    closed_incidents "$READ_TOKEN" 1

# The collector the pages are checked on: the failover ended 10 s ago.
cp "$SEXTANT_SRC/tests/scenarios/collector.yaml" "$TMP/collector.yaml"
start_collector "$TMP/main.db"
BASE=$(( $(now_ms) - 51000 ))
"$SCENARIO_FEED" --url "$URL" --scn "$WEB/steady.scn" --base "$BASE" \
    --before 41 > "$TMP/feed.log" 2>&1 || fail "feeding the failover failed"
keep_fresh &
KEEPER_PID=$!
PIDS+=($KEEPER_PID)
wait_until 60 "the failover's incident closed" closed_incidents "" 1

rm -rf "$SHOTS"
mkdir -p "$SHOTS"
node "$WEB/run.mjs" --base "$URL" --out "$SHOTS" \
    --auth-base "$AUTH_URL" --auth-token "$READ_TOKEN" \
    --auth-note-token "$NOTE_TOKEN" --volume-base "$VOLUME_URL" \
    --feed "$SCENARIO_FEED" --live-agent "$LIVE_AGENT" --tmp "$TMP" \
    --notready-base "$NOTREADY_URL" --notready-db "$TMP/notready.db" \
    --notready-agent "$LIVE_AGENT" \
    --ingest-client "$INGEST_CLIENT" \
    ${WEB_ONLY:+--only "$WEB_ONLY"} || fail "browser checks failed"

touch "$TMP/keeper.stop"
wait "$KEEPER_PID"
if grep -q 'failed' "$TMP/keeper.log"; then
    fail "the keeper's feeds failed"
fi
stop_collector
COLLECTOR_PID=$AUTH_PID
stop_collector
COLLECTOR_PID=$VOLUME_PID
stop_collector
COLLECTOR_PID=$NOTREADY_PID
stop_collector
echo "web_dashboard: all passed (screenshots in $SHOTS)"
