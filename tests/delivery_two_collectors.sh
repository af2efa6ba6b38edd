# delivery_two_collectors.sh -- fan-out to two collectors, A direct and B
# behind tests/tcp_proxy, with B down twice: first partitioned (blackhole),
# then killed with kill -9 and restarted on its database. While B is out,
# `sextant-agent event --count` appends drill events until B lacks 1500
# events (a condition, not a time); A keeps receiving everything (its own
# ack position) and the spool keeps what B lacks (an event leaves the spool only when both acked it). After
# each heal B drains its backlog (batches of 200) without starving live
# events: the newest event at the heal is stored before the backlog's
# last. In the end both stores hold every seq 1..last exactly once, every
# drill event with its text, and the spool is empty.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/delivery_lib.sh"

SHIP='shipping: {batch_max_events: 200, batch_max_age: 100ms,
  backoff_initial: 100ms, backoff_max: 500ms, shutdown_grace: 5s}'

start_target
start_named_collector A "$TMP/a.db"
start_named_collector B "$TMP/b.db"
start_proxy pb "${CPORT[B]}"
write_agent n1 "$(collectors_yaml "http://127.0.0.1:${CPORT[A]}" \
                                  "http://127.0.0.1:${PROXY_PORT[pb]}")" \
    10 100ms "$SHIP"
start_agent n1
wait_until 30 "A: nothing stored" stored_through "$TMP/a.db" n1 10
wait_until 30 "B: nothing stored" stored_through "$TMP/b.db" n1 10

# b_acked: B's watermark for n1 (0 before it stored anything).
b_acked() {
    q "$TMP/b.db" "SELECT coalesce(max(acked_seq), 0) FROM agents
                   WHERE node = 'n1'"
}

# b_backlog_ge N: the spool holds at least N events B has not stored.
b_backlog_ge() {
    [ $(( $(spool_last n1) - $(b_acked) )) -ge "$1" ]
}

# outage WHAT START STOP: B out from START until STOP (shell commands);
# meanwhile drill events are appended until B lacks BACKLOG events (many
# batches, so that starving live events would show), A gets what the
# agent makes and the spool holds B's share.
BACKLOG=1500
outage() {
    local what=$1 last lost kept
    $2
    EV_CHUNK=100 drive_events n1 "$TMP/cli.txt" 0 b_backlog_ge "$BACKLOG"
    last=$(spool_last n1)
    wait_until 30 "$what: A not fed while B is out" \
        stored_through "$TMP/a.db" n1 "$last"
    # Every seq B lacks is still in the spool, though A acked it.
    lost=$(q "$TMP/b.db" "ATTACH '$TMP/n1.spool' AS sp;
        WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL
        SELECT x + 1 FROM s WHERE x < $last)
        SELECT x FROM s WHERE x NOT IN (SELECT e.seq FROM events_full e
            JOIN agents a ON a.id = e.agent_id WHERE a.node = 'n1'
            AND e.seq IS NOT NULL)
        AND x NOT IN (SELECT seq FROM sp.events) ORDER BY 1" | ranges)
    [ -z "$lost" ] || fail "$what: seqs B lacks gone from the spool: $lost"
    kept=$(spool_count n1)
    echo "$what: A through $last, spool keeps $kept events for B"
    b_wm=$(b_acked)
    live=$(spool_last n1)
    $3
    last=$(spool_last n1)
    wait_until 60 "$what: B's backlog to $last not stored" \
        stored_through "$TMP/b.db" n1 "$last"
    # Live events are not starved: the newest event at the heal was
    # stored before the backlog was (the collector's row ids give the
    # order of arrival), i.e. it did not wait behind all of it.
    order=$(q "$TMP/b.db" "SELECT (SELECT e.id FROM events_full e
            WHERE e.agent_id = a.id AND e.seq = $live) || ' ' ||
        (SELECT max(e.id) FROM events_full e WHERE e.agent_id = a.id
            AND e.seq > $b_wm AND e.seq < $live)
        FROM agents a WHERE a.node = 'n1'")
    read -r id_live id_backlog <<< "$order"
    [ "$((live - b_wm))" -ge "$BACKLOG" ] ||
        fail "$what: backlog of $((live - b_wm)) events, too few to tell"
    [ "$id_live" -lt "$id_backlog" ] ||
        fail "$what: seq $live (the newest at the heal) stored after the" \
             "whole backlog $((b_wm + 1))..$((live - 1)): starved"
}

outage "B partitioned" "proxy_mode pb blackhole" "proxy_mode pb pass"
outage "B crashed" "crash_collector B" \
    "start_named_collector B $TMP/b.db ${CPORT[B]}"

stop_agent n1
last=$(spool_last n1)
check_store "$TMP/a.db" n1 "$last" "collector A"
check_store "$TMP/b.db" n1 "$last" "collector B"
check_cli_events "$TMP/a.db" n1 "$TMP/cli.txt"
check_cli_events "$TMP/b.db" n1 "$TMP/cli.txt"
assert_eq "$(spool_count n1)" 0 "events left in the spool"
echo "both collectors: seqs 1..$last once each, $CLI_N drill events"
stop_proxy pb
stop_named_collector A
stop_named_collector B
echo "delivery_two_collectors: all passed"
