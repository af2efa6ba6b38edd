# pg_collectors.sh -- many collectors on one PostgreSQL, exactly once
# (issue 15): two collectors A and B on one database, behind
# tests/tcp_proxy as a round-robin load balancer (each new connection to
# the next collector), and four real agents shipping through it, every
# agent its own connection, so both collectors take batches at once.
# During ingest A is killed with kill -9 and restarted on its port (its
# agents reconnect through the proxy to B meanwhile), then PostgreSQL
# crashes (pg_server.sh kill) and comes back (restart) under both
# collectors, which reconnect by themselves. Each fault waits for every
# agent to ship on past it (a condition, not a time). At the end, after
# the agents stopped (SIGTERM flushes): every seq of every agent is stored
# exactly once or covered by a drop event, no gap, each watermark is the
# agent's last seq, and every spool is empty.
#
# Incidents through the same faults: the collectors also watch the
# services of tests/scenarios/collector.yaml, and the active-passive
# failover (tests/scenarios/ap_failover.scn) is fed through the proxy by
# tests/scenario_feed, a new connection for every POST (--fresh: the
# collectors take them in turn), in parts around the faults in one run
# (--pause): the events before 3.0 s before A's crash, to 6.0 s while A
# is down, to 10.0 s while it starts again, and the rest from while
# PostgreSQL is down (those POSTs fail and are sent again, as an agent's
# spool would) to after its restart. One SQLite collector is fed the
# whole scenario at the same base meanwhile. At the end A and B serve
# the same incidents, timelines included, as the SQLite collector (ids
# and receive times aside: snapshot, pg_lib.sh). The scenario's agents
# have no skew and the feeds give no clock sample (--no-sync): exact
# corrected times without the many POSTs a sync takes on a loaded
# machine. (A sync through one collector would serve batches the other
# takes: the clock window is kept in the agent's row, which whichever
# collector takes a batch reads and writes in its transaction.)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/delivery_lib.sh"
. "$(dirname "$0")/pg_lib.sh"
: "${SCENARIO_FEED:?run through ctest}"

NODES=(n1 n2 n3 n4)
SCN=$SEXTANT_SRC/tests/scenarios/ap_failover.scn
N=$(grep -c '^expect incident' "$SCN")

pg_setup
# The scenarios' clusters and services, and the agents' cluster "test";
# on the test's database for A and B (collector.yaml), a file for S.
sed -e "/^clusters:\$/a\\
  - name: test\\
    token: $TOKEN" "$SEXTANT_SRC/tests/scenarios/collector.yaml" \
    > "$TMP/sqlite.yaml"
{ cat "$TMP/sqlite.yaml"; sed -n '/^store:/,$p' "$TMP/collector.yaml"; } \
    > "$TMP/pg.yaml"
mv "$TMP/pg.yaml" "$TMP/collector.yaml"
start_named_collector A "$TMP/unused-a.db"
start_named_collector B "$TMP/unused-b.db"
COLLECTOR_CONFIG=$TMP/sqlite.yaml COLLECTOR_LOG=$TMP/S.log \
    start_collector "$TMP/single.db"
URL_S=$URL
wait_until 60 "collector A not ready on PostgreSQL" is_ready A
wait_until 60 "collector B not ready on PostgreSQL" is_ready B
grep -q 'postgres' "$TMP/A.log" ||
    fail "collector A does not say it uses PostgreSQL"

start_proxy lb "${CPORT[A]}" "${CPORT[B]}"
LB=http://127.0.0.1:${PROXY_PORT[lb]}

# feed NAME URL ARGS...: scenario_feed in the background (FEED_PID[NAME];
# its output in feed-NAME.out, its stderr in feed-NAME.log), its stdin
# FEED_IN or /dev/null.
declare -A FEED_PID
feed() {
    "$SCENARIO_FEED" --url "$2" --scn "$SCN" "${@:3}" \
        < "${FEED_IN:-/dev/null}" > "$TMP/feed-$1.out" \
        2> "$TMP/feed-$1.log" &
    FEED_PID[$1]=$!
    PIDS+=(${FEED_PID[$1]})
}
# fed NAME: waits for feed NAME's end; fails unless all was delivered.
fed() {
    wait "${FEED_PID[$1]}" ||
        fail "scenario_feed $1 failed: $(tail -n 5 "$TMP/feed-$1.log")"
    echo "scenario feed $1: $(grep -h '^clock synced' "$TMP/feed-$1.log")" \
         "(${SECONDS} s)"
}
# paused N: feed "pg" delivered its part N and waits (its Nth pause).
paused() {
    [ "$(count_lines "$TMP/feed-pg.out" '^paused')" -ge "$1" ] && return 0
    kill -0 "${FEED_PID[pg]}" 2>/dev/null ||
        fail "scenario_feed pg ended before its pause $1:" \
             "$(tail -n 5 "$TMP/feed-pg.log")"
    return 1
}
# part_fed N: waits for pause N (a part's POSTs may take long on a loaded
# machine; the feeder gives up by itself after 2 minutes of failures).
part_fed() {
    wait_until 300 "scenario part $1 not delivered" paused "$1"
    echo "scenario part $1 delivered (${SECONDS} s)"
}

# The PostgreSQL collectors' feed, one run through the proxy, goes on
# past each pause when the test writes a line to fd 3. (The FIFO is
# opened read-write first: opening it for reading alone would block.)
mkfifo "$TMP/feed.ctl"
exec 3<> "$TMP/feed.ctl"
FEED_IN=$TMP/feed.ctl feed pg "$LB" --fresh --no-sync --pause 3.0 \
    --pause 6.0 --pause 10.0
wait_for "$TMP/feed-pg.out" '^base '
BASE=$(sed -n 's/^base //p' "$TMP/feed-pg.out")
# The SQLite collector's feed: a batch per agent (the incidents come out
# of the events, however they were batched), quick beside the rest.
feed S "$URL_S" --no-sync --base "$BASE" --span 100
start_pg_agents "$LB"

# ingested NAME: collector NAME took batches since it last started.
ingested() {
    local v
    v=$(collector_metric "$1" sextant_collector_ingest_batches_total)
    [ "$v" != absent ] && [ "${v%.*}" -gt 0 ]
}

all_past "start"
wait_until 30 "collector A took no batch" ingested A
wait_until 30 "collector B took no batch" ingested B
echo "both collectors take batches through the proxy (${SECONDS} s)"
part_fed 1

# A crashes: its agents' connections break, and they reconnect through
# the proxy, which skips A while it refuses.
crash_collector A
echo >&3                        # part 2, to 6.0 s, while A is down
all_past "A down"
part_fed 2
start_named_collector A "$TMP/unused-a.db" "${CPORT[A]}"
echo >&3                        # part 3, to 10.0 s, while A starts
wait_until 60 "collector A not ready after its restart" is_ready A
all_past "A restarted"
part_fed 3
echo "A crashed and restarted; the agents and the scenario shipped on" \
     "(${SECONDS} s)"

# PostgreSQL crashes under both collectors and comes back; they
# reconnect by themselves. The last part starts while it is down: its
# POSTs fail ("retrying" in its log) until then.
"$PG_SERVER" kill "$PGDIR" || fail "pg_server.sh kill failed"
wait_until 60 "collector B still ready with PostgreSQL down" \
    not_ready B
# failed_more N: feed "pg" has said more than N times that POSTs fail.
failed_more() {
    [ "$(count_lines "$TMP/feed-pg.log" 'retrying$')" -gt "$1" ]
}
retries=$(count_lines "$TMP/feed-pg.log" 'retrying$')
echo >&3                        # part 4, the rest
wait_until 60 "the scenario's POSTs did not fail with PostgreSQL down" \
    failed_more "$retries"
"$PG_SERVER" restart "$PGDIR" || fail "pg_server.sh restart failed"
wait_until 60 "collector A not ready after PostgreSQL's restart" is_ready A
wait_until 60 "collector B not ready after PostgreSQL's restart" is_ready B
all_past "PostgreSQL restarted"
fed pg
exec 3>&-
echo "PostgreSQL crashed and restarted; the collectors reconnected" \
     "(${SECONDS} s)"

stop_check_agents "after the faults"

# same_incidents: the scenario's incidents are in, all closed, on the
# three collectors, and A and B serve exactly the SQLite collector's (the
# leader wrote them on the shared database); the differences seen last
# in incidents.diff.log. (closed polls with plain curl: a collector's
# first query on a read connection from before PostgreSQL's restart
# fails with 503, and the next is on a new connection.)
same_incidents() {
    closed "$URL_S" "$N" && closed "http://127.0.0.1:${CPORT[A]}" "$N" &&
        closed "http://127.0.0.1:${CPORT[B]}" "$N" || return 1
    snapshot "$URL_S" "$TMP/inc.S"
    snapshot "http://127.0.0.1:${CPORT[A]}" "$TMP/inc.A"
    snapshot "http://127.0.0.1:${CPORT[B]}" "$TMP/inc.B"
    cmp -s "$TMP/inc.S" "$TMP/inc.A" && cmp -s "$TMP/inc.S" "$TMP/inc.B" &&
        return 0
    { diff "$TMP/inc.S" "$TMP/inc.A"; diff "$TMP/inc.S" "$TMP/inc.B"; } |
        head -n 40 > "$TMP/incidents.diff.log"
    return 1
}
fed S
wait_until 90 "incidents on PostgreSQL differ from one SQLite collector's" \
    same_incidents
echo "incidents: $N, the same on A, B and one SQLite collector" \
     "(${SECONDS} s)"

stop_proxy lb
stop_named_collector A
stop_named_collector B
stop_collector
echo "pg_collectors: all passed"
