#!/bin/bash
# pg_incidents.sh -- the incident engine with two collectors on one
# PostgreSQL database (collector/pg_incident.c): the active-passive
# failover scenario (tests/scenarios/ap_failover.scn) fed by
# scenario_feed, half of its agents to each collector; the leader killed
# -9 after the detection, the rest fed to the other, which takes the lead
# and goes on from the stored events. At the end the incidents (GET
# /api/v1/incidents and each incident with its timeline) are the same on
# both collectors (the killed one restarted), and the same as one SQLite
# collector fed the same scenario gives (ids and receive times aside).
# Runs on the ctest run's PostgreSQL (tests/pg.cmake's fixture "pg").
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/pg_lib.sh"     # incidents, closed, snapshot
: "${SCENARIO_FEED:?run through ctest}"
on_pg || fail "SEXTANT_TEST_PG_DIR is not set: run through ctest"

SCN=$SEXTANT_SRC/tests/scenarios
FAILOVER=$SCN/ap_failover.scn
N=$(grep -c '^expect incident' "$FAILOVER")

# start_one NAME DB: a collector with the scenarios' config, logging to
# $TMP/NAME.log; sets URL_NAME and PID_NAME. DB names its store (a
# PostgreSQL database, or with SQLITE=1 a SQLite file).
start_one() {
    local cfg=$TMP/$1.yaml
    cp "$SCN/collector.yaml" "$cfg"
    if [ -n "${SQLITE:-}" ]; then
        PG_DIR='' COLLECTOR_CONFIG=$cfg COLLECTOR_LOG=$TMP/$1.log \
            start_collector "$2"
    else
        COLLECTOR_CONFIG=$cfg COLLECTOR_LOG=$TMP/$1.log start_collector "$2"
    fi
    printf -v "URL_$1" %s "$URL"
    printf -v "PID_$1" %s "$COLLECTOR_PID"
}

# feed URL [ARGS]: posts (part of) the scenario; sets BASE.
feed() {
    local url=$1 out=$TMP/feed.out
    shift
    "$SCENARIO_FEED" --url "$url" --scn "$FAILOVER" "$@" > "$out" \
        2>> "$TMP/feed.log" || fail "feed failed: $(tail -n 5 "$TMP/feed.log")"
    BASE=$(sed -n 's/^base //p' "$out")
}

detected() {
    curl -sf "$1/api/v1/incidents?limit=100" > "$TMP/detected.json" ||
        return 1
    [ "$(jq '[.incidents[] | select(.times.detected != null)] | length' \
         "$TMP/detected.json")" -ge 1 ]
}
# leads URL: the collector at URL holds the lead.
leads() {
    curl -s "$1/metrics" |
        grep -qx 'sextant_collector_store_leader 1'
}
# Two collectors on one database; the agents split between them.
start_one a "$TMP/shared.db"
start_one b "$TMP/shared.db"
wait_until 60 "one of the two collectors leads" \
    bash -c "curl -s $URL_a/metrics $URL_b/metrics |
             grep -cx 'sextant_collector_store_leader 1' | grep -qx 1"
feed "$URL_a" --url2 "$URL_b" --before 3.0
wait_until 60 "the incident detected (before the leader is killed)" \
    detected "$URL_b"
# Both serve the incidents table the leader writes.
[ "$(incidents "$URL_a" | jq -S .)" = "$(incidents "$URL_b" | jq -S .)" ] ||
    fail "the two collectors list different incidents"

if leads "$URL_a"; then
    LEADER=a SURVIVOR=b
else
    LEADER=b SURVIVOR=a
fi
lpid=PID_$LEADER surl=URL_$SURVIVOR
kill -9 "${!lpid}"
wait "${!lpid}" 2>/dev/null || true
feed "${!surl}" --base "$BASE" --from 3.0
wait_until 60 "the survivor takes the lead" leads "${!surl}"
wait_until 90 "the incident closed on the survivor" closed "${!surl}" "$N"
grep -q 'leading: engine rebuilt' "$TMP/$SURVIVOR.log" ||
    fail "the survivor did not rebuild the engine as leader"

# The killed one back: both answer the same.
start_one "$LEADER" "$TMP/shared.db"
lurl=URL_$LEADER
snapshot "${!surl}" "$TMP/survivor.json"
snapshot "${!lurl}" "$TMP/restarted.json"
cmp -s "$TMP/survivor.json" "$TMP/restarted.json" ||
    fail "incidents differ between the collectors: $(diff \
          "$TMP/survivor.json" "$TMP/restarted.json" | head -n 20)"

# One SQLite collector, the same scenario at the same base.
SQLITE=1 start_one s "$TMP/single.db"
feed "$URL_s" --base "$BASE"
wait_until 90 "the incident closed on the SQLite collector" \
    closed "$URL_s" "$N"
snapshot "$URL_s" "$TMP/sqlite.json"
cmp -s "$TMP/survivor.json" "$TMP/sqlite.json" ||
    fail "incidents on PostgreSQL differ from SQLite's: $(diff \
          "$TMP/sqlite.json" "$TMP/survivor.json" | head -n 30)"
echo "ok: $N incident(s), the same on both collectors and on SQLite"
