# delivery_collector_crash.sh -- the collector killed with kill -9 and
# restarted on the same database, three times, while three agents ship
# fast (10 targets each every 100 ms, small batches) and a fourth process
# appends drill events to one agent's spool with `sextant-agent event`.
# After the drain, the store holds every seq 1..last of every agent
# exactly once (compared as sets), in one epoch, with no gap or drop
# event; every drill event is stored with the seq the CLI was given and
# its text; and the agents saw each outage (failed batches; the collector
# stays down until they have) and left nothing in their spools. Crashes
# come after a random number of stored events, not after a time.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/delivery_lib.sh"

AGENTS="n1 n2 n3"
SHIP='shipping: {batch_max_events: 100, batch_max_age: 100ms,
  backoff_initial: 100ms, backoff_max: 1s, shutdown_grace: 5s}'

start_target
DB=$TMP/c.db
start_named_collector c "$DB"
PORT=${CPORT[c]}
for a in $AGENTS; do
    write_agent "$a" "$(collector_yaml "http://127.0.0.1:$PORT")" 10 100ms \
        "$SHIP"
    start_agent "$a"
done
for a in $AGENTS; do
    wait_until 30 "agent $a: nothing stored" stored_through "$DB" "$a" 20
done

event_loop n1 "$TMP/cli.txt"
# stored_sum: the watermarks of all agents together.
stored_sum() {
    q "$DB" "SELECT coalesce(sum(acked_seq), 0) FROM agents"
}
stored_sum_ge() {
    [ "$(stored_sum)" -ge "$1" ]
}
# failed_ge A N: agent A counted at least N failed batches.
failed_ge() {
    metric_ge "${ADMIN[$1]}" sextant_agent_batches_failed_total "$2"
}
declare -A ADMIN FAILED
for a in $AGENTS; do ADMIN[$a]=$(admin_port "$a"); done
for round in 1 2 3; do
    # Crash at a random point while it stores: 1 to 500 seqs on.
    wait_until 60 "round $round: the collector stores nothing" \
        stored_sum_ge $(( $(stored_sum) + 1 + RANDOM % 500 ))
    for a in $AGENTS; do
        FAILED[$a]=$(metric "${ADMIN[$a]}" sextant_agent_batches_failed_total)
    done
    crash_collector c
    # The agents spool meanwhile, until each has seen the outage.
    for a in $AGENTS; do
        wait_until 60 "round $round: agent $a did not see the outage" \
            failed_ge "$a" $(( ${FAILED[$a]} + 1 ))
    done
    start_named_collector c "$DB" "$PORT"
done
event_loop_wait n1 "$TMP/cli.txt"

# Drain: the collector has everything each agent made up to now.
for a in $AGENTS; do
    last=$(spool_last "$a")
    wait_until 60 "agent $a: backlog to seq $last not stored" \
        stored_through "$DB" "$a" "$last"
    metric_ge "${ADMIN[$a]}" sextant_agent_batches_failed_total 1 ||
        fail "agent $a: no failed batch counted; the collector crashes went unseen"
done
for a in $AGENTS; do stop_agent "$a"; done

for a in $AGENTS; do
    last=$(spool_last "$a")
    check_store "$DB" "$a" "$last" "after 3 collector crashes"
    assert_eq "$(spool_count "$a")" 0 "agent $a: events left in the spool"
    echo "agent $a: seqs 1..$last stored once each"
done
check_cli_events "$DB" n1 "$TMP/cli.txt"
echo "$CLI_N drill events stored with their seqs and texts"
[ "$(grep -c 'listening on' "$TMP/c.log")" = 4 ] ||
    fail "the collector did not start 4 times"
stop_named_collector c
echo "delivery_collector_crash: all passed"
