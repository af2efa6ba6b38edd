# delivery_agent_crash.sh -- the agent killed with kill -9 eight times
# while it probes and ships (10 targets every 100 ms, batches of at most 50
# events), each time once its run has shipped a random 1..100 seqs more,
# and restarted on the same spool, while runs of `sextant-agent event
# --count` keep appending drill events to that spool until the crashes are
# done (also while no agent runs). After a last run and its drain: every event
# that was in the spool arrives exactly once -- the store holds seqs
# 1..last of the one epoch, as a set, nothing twice, no gap or drop event,
# every drill event under the seq the CLI was given -- and the spool is
# empty after a clean stop.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/delivery_lib.sh"

SHIP='shipping: {batch_max_events: 50, batch_max_age: 50ms,
  backoff_initial: 100ms, backoff_max: 1s, shutdown_grace: 5s}'

start_target
DB=$TMP/c.db
start_named_collector c "$DB"
write_agent n1 "$(collector_yaml "http://127.0.0.1:${CPORT[c]}")" 10 100ms \
    "$SHIP"

start_agent n1
wait_until 30 "nothing stored" stored_through "$DB" n1 10
event_loop n1 "$TMP/cli.txt"
# stored: the collector's watermark for n1.
stored() {
    q "$DB" "SELECT coalesce(max(acked_seq), 0) FROM agents WHERE node = 'n1'"
}
for round in $(seq 1 8); do
    # Crash at a random point once this run has shipped something: the
    # watermark moved 1 to 100 seqs on.
    wait_until 60 "round $round: the agent ships nothing" \
        stored_through "$DB" n1 $(( $(stored) + 1 + RANDOM % 100 ))
    crash_agent n1
    start_agent n1
done
event_loop_wait n1 "$TMP/cli.txt"
epoch=$(q "$TMP/n1.spool" "SELECT printf('%016x', epoch) FROM meta")

last=$(spool_last n1)
wait_until 60 "backlog to seq $last not stored" stored_through "$DB" n1 "$last"
stop_agent n1
last=$(spool_last n1)
assert_eq "$(q "$TMP/n1.spool" "SELECT printf('%016x', epoch) FROM meta")" \
    "$epoch" "spool epoch after the crashes"
assert_eq "$(grep -c 'sextant-agent .* started' "$TMP/n1.log")" 9 \
    "agent runs"
check_store "$DB" n1 "$last" "after 8 agent crashes"
assert_eq "$(q "$DB" "SELECT printf('%016x', epoch) FROM agents
    WHERE node = 'n1'")" "$epoch" "epoch in the store"
assert_eq "$(spool_count n1)" 0 "events left in the spool"
check_cli_events "$DB" n1 "$TMP/cli.txt"
echo "seqs 1..$last stored once each; $CLI_N drill events with their texts"
stop_named_collector c
echo "delivery_agent_crash: all passed"
