#!/bin/bash
# collector_incidents.sh -- incident scenarios with a ground truth, through
# a real collector: for each tests/scenarios/*.scn, a fresh collector with
# tests/scenarios/collector.yaml, the scenario posted by scenario_feed as
# agents would, then every time of every incident asserted to the
# millisecond against the scenario's "expect" lines (times in seconds
# after the base the feed prints; "expect none": no incident). Asserted in
# the incidents table, through GET /api/v1/incidents and
# /api/v1/incidents/{id} (durations too) when the collector serves them,
# and again after `sextant-collector incidents rebuild`, which must leave
# the table as the live engine wrote it (on PostgreSQL also: refused
# while a collector leads). The active-passive scenario also
# runs with the collector restarted in the middle of the incident, and
# (CATCHUP=1, test collector_catchup) with the engine's rebuild at that
# start held while the rest is ingested.
# SCENARIOS (names, see tests/scenarios.cmake) picks the scenarios; RESTART=0
# leaves out the restart run.
source "$(dirname "$0")/lib.sh"
: "${SCENARIO_FEED:?run through ctest}"

SCN=$SEXTANT_SRC/tests/scenarios
cp "$SCN/collector.yaml" "$TMP/collector.yaml"

# The incidents table as one line per incident, in the order and the
# spelling of expect_rows (PostgreSQL's coalesce wants one type).
INC_COLS="service, region, coalesce(to_region, 'null'), manual,
  coalesce(first_failure_ms, 'null'), coalesce(detected_ms, 'null'),
  coalesce(failover_start_ms, 'null'), coalesce(dns_first_ms, 'null'),
  coalesce(dns_all_ms, 'null'), coalesce(restored_ms, 'null'),
  coalesce(closed_ms, 'null'),
  coalesce(CAST(round(rpo_ms) AS INTEGER), 'null')"
INC_COLS_PG="service, region, coalesce(to_region, 'null'), manual,
  coalesce(first_failure_ms::text, 'null'),
  coalesce(detected_ms::text, 'null'),
  coalesce(failover_start_ms::text, 'null'),
  coalesce(dns_first_ms::text, 'null'), coalesce(dns_all_ms::text, 'null'),
  coalesce(restored_ms::text, 'null'), coalesce(closed_ms::text, 'null'),
  coalesce(round(rpo_ms)::bigint::text, 'null')"
inc_rows() {
    db_sql_sep ' ' "$1" \
        "SELECT $INC_COLS FROM incidents ORDER BY service, opened_ms" \
        "SELECT $INC_COLS_PG FROM incidents ORDER BY service, opened_ms"
}
# Every column of every row (but the id), for "the rebuild changed nothing".
inc_dump() {
    db_sql_sep '|' "$1" "SELECT service, opened_ms, region, to_region,
      pattern, manual, first_failure_ms, detected_ms, failover_start_ms,
      dns_first_ms, dns_all_ms, restored_ms, closed_ms, rpo_ms
      FROM incidents ORDER BY service, opened_ms"
}

# expect_rows SCN BASE: the scenario's expected incidents, as inc_rows
# prints them (seconds after BASE turned into unix ms).
expect_rows() {
    awk -v base="$2" '
        function ms(v) {
            if (v == "null") return "null"
            return sprintf("%.0f", base + v * 1000)
        }
        $1 == "expect" && $2 == "incident" {
            delete k
            for (i = 3; i <= NF; i++) { split($i, p, "="); k[p[1]] = p[2] }
            print k["service"], k["region"], k["to_region"], k["manual"],
                  ms(k["first_failure"]), ms(k["detected"]),
                  ms(k["failover_start"]), ms(k["dns_first"]),
                  ms(k["dns_all"]), ms(k["restored"]), ms(k["closed"]),
                  k["rpo"]
        }' "$1"
}

# expect_field SCN N KEY: KEY of the scenario's N-th expected incident.
expect_field() {
    awk -v n="$2" -v key="$3" '
        $1 == "expect" && $2 == "incident" && ++c == n {
            for (i = 3; i <= NF; i++) {
                split($i, p, "=")
                if (p[1] == key) print p[2]
            }
        }' "$1"
}

# The ground truth's durations must follow from its own times (a typo in
# a .scn would otherwise be asserted against the engine).
check_truth() {
    local scn=$1 n=$2 ff det rest dall
    ff=$(expect_field "$scn" "$n" first_failure)
    det=$(expect_field "$scn" "$n" detected)
    rest=$(expect_field "$scn" "$n" restored)
    dall=$(expect_field "$scn" "$n" dns_all)
    truth_diff "$scn" "$n" time_to_detect "$det" "$ff"
    truth_diff "$scn" "$n" rto "$rest" "$ff"
    truth_diff "$scn" "$n" time_to_failover "$dall" "$det"
}
truth_diff() {
    local want
    want=$(awk -v a="$4" -v b="$5" 'BEGIN {
        if (a == "null" || b == "null") print "null";
        else printf "%.0f\n", (a - b) * 1000 }')
    assert_eq "$(expect_field "$1" "$2" "$3")" "$want" \
        "$(basename "$1"): expected $3 is not what its times give"
}

# closed_done DB N: N incidents or more are in, and none is open.
closed_done() {
    local closed open
    closed=$(db_sql "$1" "SELECT count(*) FROM incidents
                       WHERE closed_ms IS NOT NULL" 2>/dev/null) || return 1
    open=$(db_sql "$1" "SELECT count(*) FROM incidents
                     WHERE closed_ms IS NULL" 2>/dev/null) || return 1
    [ "$closed" -ge "$2" ] && [ "$open" = 0 ]
}
# wait_closed DB N WHAT: until closed_done DB N, 60 s at most; then the
# caller's assertion says what is there (more, fewer or open incidents).
wait_closed() {
    local deadline=$(( $(now_ms) + 60000 ))
    until closed_done "$1" "$2"; do
        if [ "$(now_ms)" -ge "$deadline" ]; then
            echo "after 60 s: $3: not $2 closed incident(s) and none open" >&2
            return 0
        fi
        sleep 0.1
    done
}
# events_in DB N: the store holds at least N events.
events_in() {
    local n
    n=$(db_sql "$1" "SELECT count(*) FROM events" 2>/dev/null) || return 1
    [ "$n" -ge "$2" ]
}
# detected_in DB: an incident with its detection time is in.
detected_in() {
    local n
    n=$(db_sql "$1" "SELECT count(*) FROM incidents
                  WHERE detected_ms IS NOT NULL" 2>/dev/null) || return 1
    [ "$n" -ge 1 ]
}

# feed SCN [ARGS]: posts the scenario; sets BASE and DELIVERED.
feed() {
    local scn=$1 out=$TMP/feed.out
    shift
    "$SCENARIO_FEED" --url "$URL" --scn "$scn" "$@" > "$out" \
        2> "$TMP/feed.log" || fail "$(basename "$scn"): feed failed"
    BASE=$(sed -n 's/^base //p' "$out")
    DELIVERED=$(sed -n 's/^delivered \([0-9]*\) events.*/\1/p' "$out")
}

# api_check SCN BASE: the incidents through the API, with their
# durations and exports, when the collector serves /api/v1/incidents.
api_check() {
    local scn=$1 base=$2 n i id code
    code=$(curl -sS -o /dev/null -w '%{http_code}' "$URL/api/v1/incidents")
    if [ "$code" = 404 ]; then
        echo "note: GET /api/v1/incidents is 404: API part skipped"
        return 0
    fi
    api_get "api/v1/incidents?limit=100" > "$TMP/list.json"
    n=$(grep -c '^expect incident' "$scn" || true)
    assert_eq "$(jq '.incidents | length' "$TMP/list.json")" "$n" \
        "$(basename "$scn"): incidents in the API"
    for i in $(seq 1 "$n"); do
        # The list is newest first; the scenario's order is oldest first.
        id=$(jq --argjson i "$i" '.incidents | sort_by(.times.detected.ms
              // 0) | .[$i - 1].id' "$TMP/list.json")
        api_get "api/v1/incidents/$id" > "$TMP/inc.json"
        api_incident_check "$scn" "$i" "$base" "$TMP/inc.json"
        export_check "$scn" "$i" "$base" "$id"
    done
}

# export_check SCN N BASE ID: the incident's exports: JSON as the
# incident, CSV parsed (python3 csv) and the Markdown summary table's rows,
# every time in UTC with ms and every duration as the ground truth says.
export_check() {
    local scn=$1 i=$2 base=$3 id=$4 fmt code line
    for fmt in json csv md; do
        code=$(api_fetch "$TMP/export.$fmt" \
               "/api/v1/incidents/$id/export?format=$fmt") || exit 1
        assert_eq "$code" 200 "$(basename "$scn") #$i export $fmt"
    done
    api_incident_check "$scn" "$i" "$base" "$TMP/export.json"
    line=$(grep '^expect incident' "$scn" | sed -n "${i}p")
    python3 - "$TMP/export.csv" "$TMP/export.md" "$base" "$line" <<'PY' ||
import csv, datetime, sys
csv_path, md_path, base, line = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
want = dict(kv.split("=", 1) for kv in line.split()[2:])
times = {"first_failure": "first_failure", "detected": "detected",
         "failover_start": "failover_start", "dns_first": "dns_switched_first",
         "dns_all": "dns_switched_all", "restored": "restored",
         "closed": "closed"}
labels = {"first_failure": "First failure (UTC)", "detected": "Detected (UTC)",
          "restored": "Restored (UTC)", "closed": "Closed (UTC)",
          "rto": "RTO", "time_to_detect": "Time to detect",
          "time_to_failover": "Time to fail over"}
def utc(ms):
    t = datetime.datetime.fromtimestamp(ms // 1000, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (ms % 1000)
def dur(ms):
    return "" if ms == "null" else "%d.%03d s" % divmod(int(ms), 1000)
expect = {}
for k, field in times.items():
    if k in want:
        expect[field] = "" if want[k] == "null" else \
            utc(base + round(float(want[k]) * 1000))
for k in ("time_to_detect", "time_to_failover", "rto", "outage"):
    if k in want:
        expect[k] = dur(want[k])
if "rpo" in want:
    expect["rpo"] = dur(want["rpo"])
rows = list(csv.reader(open(csv_path, newline="")))
summary = {}
for r in rows:
    if not r:
        break
    if len(r) == 2:
        summary[r[0]] = r[1]
bad = [f"csv {k}: got {summary.get(k)!r}, want {v!r}"
       for k, v in expect.items() if summary.get(k) != v]
if len(rows) <= len(summary) + 2:
    bad.append("csv: no timeline after the summary")
md = [l.strip() for l in open(md_path)]
cells = {}
for l in md:
    if l.startswith("|") and l.endswith("|"):
        c = [x.strip() for x in l.strip("|").split("|")]
        if len(c) == 2:
            cells.setdefault(c[0], c[1])
for k, label in labels.items():
    field = times.get(k, k)
    if field in expect and cells.get(label) != (expect[field] or cells.get(label)):
        bad.append(f"md {label}: got {cells.get(label)!r}, want {expect[field]!r}")
if not any(set(l.replace("|", "").strip()) <= set("-: ") and "---" in l for l in md):
    bad.append("md: no table separator row")
if bad:
    print("\n".join(bad))
    sys.exit(1)
PY
        fail "$(basename "$scn") #$i exports differ from the ground truth"
}

# expect_values SCN N BASE: "KEY VALUE" lines, one per field of the
# scenario's N-th expected incident, its times turned into unix ms after
# BASE ("null" stays): one awk for what was one per field.
expect_values() {
    awk -v n="$2" -v b="$3" '
        BEGIN {
            split("first_failure detected failover_start dns_first " \
                  "dns_all restored closed", t, " ")
            for (i in t) time[t[i]] = 1
        }
        $1 == "expect" && $2 == "incident" && ++c == n {
            for (i = 3; i <= NF; i++) {
                split($i, p, "=")
                v = p[2]
                if ((p[1] in time) && v != "null")
                    v = sprintf("%.0f", b + v * 1000)
                print p[1], v
            }
        }' "$1"
}

# api_values FILE: "KEY VALUE" lines of an incident reply (or its JSON
# export), in the spelling of expect_values, and "order true" when its
# timeline is in corrected order: one jq for what was one per field.
api_values() {
    jq -r '{dns_first: "dns_switched_first", dns_all: "dns_switched_all"}
        as $m |
        (["first_failure", "detected", "failover_start", "dns_first",
          "dns_all", "restored", "closed"][] as $k
         | "\($k) \(.times[$m[$k] // $k] | if . == null then "null"
                    else .ms end)"),
        (["time_to_detect", "time_to_failover", "rto", "outage"][] as $k
         | "\($k) \(.durations_ms[$k] // "null")"),
        "rpo \(.rpo_ms // "null" | if type == "number" then round
                else . end)",
        (["service", "region", "to_region"][] as $k
         | "\($k) \(.[$k] // "null")"),
        "manual \(if .manual then 1 else 0 end)",
        "order \([.timeline[] | .corrected_ms] | . == sort)"' "$1"
}

api_incident_check() {
    local scn=$1 i=$2 base=$3 f=$4 key val name
    local -A want=() got=()
    name=$(basename "$scn")
    while read -r key val; do want[$key]=$val; done \
        < <(expect_values "$scn" "$i" "$base")
    while read -r key val; do got[$key]=$val; done < <(api_values "$f")
    for key in first_failure detected failover_start dns_first dns_all \
               restored closed; do
        [ -n "${want[$key]:-}" ] || continue
        assert_eq "${got[$key]:-}" "${want[$key]}" "$name #$i API times.$key"
    done
    for key in time_to_detect time_to_failover rto outage; do
        [ -n "${want[$key]:-}" ] || continue
        assert_eq "${got[$key]:-}" "${want[$key]}" "$name #$i API $key"
    done
    assert_eq "${got[rpo]:-}" "${want[rpo]:-}" "$name #$i API rpo_ms"
    for key in service region to_region; do
        assert_eq "${got[$key]:-}" "${want[$key]:-}" "$name #$i API $key"
    done
    assert_eq "${got[manual]:-}" "${want[manual]:-}" "$name #$i API manual"
    # Ordered by corrected time, whatever the agents' clocks say, and
    # corrected by exactly each agent's skew ("expect skew NODE MS").
    assert_eq "${got[order]:-}" true "$name #$i API timeline order"
    while read -r node skew; do
        val=$(jq -r --arg n "$node" --argjson s "$skew" '[.timeline[] |
              select(.node == $n) | .time_ms - .corrected_ms == $s] |
              if length > 0 then all else "no events" end' "$f")
        assert_eq "$val" true "$name #$i $node's skew"
    done < <(grep "^expect skew " "$scn" | cut -d" " -f3-)
}

# assert_incidents SCN DB BASE: the table against the ground truth.
assert_incidents() {
    local scn=$1 db=$2 base=$3 name
    name=$(basename "$scn")
    inc_rows "$db" > "$TMP/got.rows"
    expect_rows "$scn" "$base" > "$TMP/want.rows"
    if ! cmp -s "$TMP/got.rows" "$TMP/want.rows"; then
        echo "--- $name: incidents (service region to manual first_failure" \
             "detected failover_start dns_first dns_all restored closed" \
             "rpo; want, then got; base $base)" >&2
        cat "$TMP/want.rows" >&2
        echo "---" >&2
        cat "$TMP/got.rows" >&2
        echo "--- got, in seconds after the base:" >&2
        awk -v b="$base" '{ for (i = 5; i <= 11; i++)
            if ($i != "null") $i = sprintf("%.3f", ($i - b) / 1000);
            print }' "$TMP/got.rows" >&2
        fail "$name: incidents differ from the ground truth"
    fi
}

# rebuild_check SCN DB: with the collector stopped, a rebuild from
# scratch, of an emptied incidents table, gives the table the live engine
# wrote (on PostgreSQL: the config's store, with no collector leading).
rebuild_check() {
    local before after args=(--db "$2")
    if on_pg; then
        pg_store_config "$TMP/collector.yaml" "$2"
        args=()
    fi
    before=$(inc_dump "$2")
    # From nothing: the rebuild computes every row again.
    db_sql "$2" "DELETE FROM incidents" > /dev/null
    "$COLLECTOR" incidents rebuild "${args[@]}" \
        --config "$TMP/collector.yaml" > "$TMP/rebuild.log" 2>&1 ||
        fail "$(basename "$1"): rebuild failed: $(cat "$TMP/rebuild.log")"
    grep -q "^sextant-collector incidents rebuild: .*: [0-9]* events, [0-9]* incidents in" \
        "$TMP/rebuild.log" ||
        fail "$(basename "$1"): rebuild said: $(cat "$TMP/rebuild.log")"
    after=$(inc_dump "$2")
    # On PostgreSQL the next leader takes what it wrote as history.
    db_engine_fed "$2" || fail "$(basename "$1"): engine_cursor not moved"
    [ "$before" = "$after" ] ||
        fail "$(basename "$1"): rebuild differs from live:
live:
$before
rebuild:
$after"
}

# rebuild_refused DB: on PostgreSQL, while the running collector leads,
# a rebuild refuses (exit 1, one line naming the leader and what to do)
# and changes nothing.
rebuild_refused() {
    local before rc=0
    on_pg || return 0
    wait_for "$TMP/collector.log" 'this collector leads'
    before=$(inc_dump "$1")
    "$COLLECTOR" incidents rebuild --config "$TMP/collector.yaml" \
        > "$TMP/rebuild.out" 2> "$TMP/rebuild.log" || rc=$?
    assert_eq "$rc" 1 "exit status of a rebuild while a collector leads"
    assert_eq "$(wc -l < "$TMP/rebuild.log")" 1 \
        "lines of a rebuild refused: $(cat "$TMP/rebuild.log")"
    grep -q "a collector leads (sextant-collector (.*restart it" \
        "$TMP/rebuild.log" ||
        fail "rebuild refused without naming the leader: $(cat "$TMP/rebuild.log")"
    [ ! -s "$TMP/rebuild.out" ] || fail "a refused rebuild printed a result"
    assert_eq "$(inc_dump "$1")" "$before" "incidents after a refused rebuild"
    echo "ok: rebuild refused while a collector leads: $(cat "$TMP/rebuild.log")"
}

# run_scenario SCN: the whole check for one scenario.
run_scenario() {
    local scn=$1 db n name
    name=$(basename "$scn" .scn)
    db=$TMP/$name.db
    n=$(grep -c '^expect incident' "$scn" || true)
    for i in $(seq 1 "$n"); do check_truth "$scn" "$i"; done
    start_collector "$db"
    feed "$scn"
    wait_until 60 "$name: the $DELIVERED events stored" \
        events_in "$db" "$DELIVERED"
    wait_until 60 "$name: the engine fed every stored event" \
        db_engine_fed "$db"
    [ "$n" = 0 ] || wait_closed "$db" "$n" "$name"
    api_check "$scn" "$BASE"
    stop_collector
    assert_incidents "$scn" "$db" "$BASE"
    rebuild_check "$scn" "$db"
    assert_incidents "$scn" "$db" "$BASE"
    echo "ok: $name"
}

# The active-passive failover with the collector restarted after the
# detection and before the restore (3.0 s into the scenario).
run_restart() {
    local scn=$SCN/ap_failover.scn db=$TMP/restart.db
    start_collector "$db"
    feed "$scn" --before 3.0
    wait_until 60 "restart: the incident detected before the restart" \
        detected_in "$db"
    stop_collector
    start_collector "$db"
    feed "$scn" --base "$BASE" --from 3.0
    wait_closed "$db" 1 "restart"
    api_check "$scn" "$BASE"
    rebuild_refused "$db"
    stop_collector
    assert_incidents "$scn" "$db" "$BASE"
    rebuild_check "$scn" "$db"
    echo "ok: ap_failover with a restart in the middle"
}

# catching_up: every service of /api/v1/status says "catching_up" $1.
catching_up() {
    [ "$(api_get api/v1/status | jq '[.services[].catching_up] | unique')" \
      = "[
  $1
]" ]
}
# catching_gauge V: /metrics' sextant_collector_incidents_catching_up is V.
catching_gauge() {
    curl -sS "$URL/metrics" |
        grep -qx "sextant_collector_incidents_catching_up $1"
}

# The active-passive failover with the collector restarted after the
# detection, its engine's rebuild held at start (SEXTANT_INC_REBUILD_GATE:
# until a file exists) while the rest of the scenario is ingested: the
# collector is ready and acks it, /api/v1/status and /metrics say
# "catching up" and the incidents table stays as the last run wrote it;
# once the gate opens, the incidents are the ground truth and what a
# rebuild from scratch gives, and the webhooks say what happened after
# the start (closed), never what the history held (opened). The same
# start cuts the start check short (SEXTANT_STORE_CHECK_MS=0).
run_catchup() {
    local scn=$SCN/ap_failover.scn db=$TMP/catchup.db gate=$TMP/gate
    local before stored
    start_collector "$db"
    feed "$scn" --before 3.0
    wait_until 60 "catchup: the incident detected before the restart" \
        detected_in "$db"
    stop_collector
    before=$(inc_dump "$db")
    stored=$(db_sql "$db" "SELECT count(*) FROM events")
    "$WEBHOOK_SINK" --out "$TMP/hooks" > "$TMP/sink.port" \
        2> "$TMP/sink.log" &
    PIDS+=($!)
    wait_for "$TMP/sink.port" '^[0-9]'
    sed -i "s|^incidents:|incidents:\n  webhooks: [http://127.0.0.1:$(head \
        -n1 "$TMP/sink.port")/hook]|" "$TMP/collector.yaml"
    SEXTANT_INC_REBUILD_GATE=$gate SEXTANT_STORE_CHECK_MS=0 \
        start_collector "$db"
    has_line "$TMP/collector.log" \
        "quick_check of $db not done after 0 ms: starting unchecked" ||
        fail "catchup: the start check was not cut short"
    has_line "$TMP/collector.log" "rebuild at start waits for $gate" ||
        fail "catchup: the rebuild is not held"
    catching_up true || fail "catchup: status does not say catching up"
    catching_gauge 1 || fail "catchup: /metrics does not say catching up"
    api_get api/v1/status | jq -e '[.services[].regions[].health] |
        unique == ["unknown"]' > /dev/null ||
        fail "catchup: regions not unknown while catching up"
    # Acked during the catch-up (scenario_feed fails on a refused batch).
    feed "$scn" --base "$BASE" --from 3.0
    wait_until 60 "catchup: the events stored during the catch-up" \
        events_in "$db" $(( stored + DELIVERED ))
    catching_up true || fail "catchup: caught up with the gate closed"
    assert_eq "$(inc_dump "$db")" "$before" \
        "catchup: incidents written while catching up"
    touch "$gate"
    wait_until 60 "catchup: status still catching up" catching_up false
    catching_gauge 0 || fail "catchup: /metrics still says catching up"
    has_line "$TMP/collector.log" "engine caught up in" ||
        fail "catchup: no 'engine caught up' line"
    wait_closed "$db" 1 "catchup"
    api_check "$scn" "$BASE"
    wait_until 60 "catchup: no incident.closed webhook" has_line \
        "$TMP/hooks" '"event":"incident.closed"'
    ! has_line "$TMP/hooks" '"event":"incident.opened"' ||
        fail "catchup: the history's incident announced as opened"
    stop_collector
    assert_incidents "$scn" "$db" "$BASE"
    rebuild_check "$scn" "$db"
    echo "ok: ap_failover with the engine catching up at a restart"
}

# CATCHUP=1 runs only run_catchup (test collector_catchup).
if [ "${CATCHUP:-0}" = 1 ]; then
    run_catchup
    exit 0
fi

# SCENARIOS: the names to run (default: every scenario with expect
# lines); RESTART=0 skips the restart run.
if [ -n "${SCENARIOS:-}" ]; then
    for name in $SCENARIOS; do run_scenario "$SCN/$name.scn"; done
else
    for scn in "$SCN"/*.scn; do
        grep -q '^expect' "$scn" || continue      # included parts
        run_scenario "$scn"
    done
fi
[ "${RESTART:-1}" = 0 ] || run_restart
