# collector_kill.sh -- kill -9 in the middle of group commits loses no
# acked event and stores none twice. Eight clients (each its own node and
# epoch) post batches as fast as the collector acks them; the collector is
# killed at a random point, twice, and restarted on the same database.
# After each restart: PRAGMA integrity_check is ok, and each agent holds
# seqs 1..S once each, with S at least its last ack (every acked event is
# there) and at most its last sent seq. Then the clients resend what was
# not acked (even ones from their last ack, odd ones everything from 1)
# and, at the end, every agent holds exactly its seqs 1..TOTAL once each.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ingest_lib.sh"

DB=$TMP/c.db
N_CLIENTS=8
BATCH=5
TOTAL=1500                                 # seqs per client, in all
T0=$(( $(date +%s) * 1000 - 3600000 ))    # an hour ago
WINDOW=1000000                             # ms of timeline per client
ACKED=(); SENT=(); ROUND_PIDS=()         # per client, over all rounds
for i in $(seq 0 $((N_CLIENTS - 1))); do ACKED[i]=0; SENT[i]=0; done

# start_clients ROUND: every client posts from its resume point up to
# TOTAL: even clients from the seq after their last ack, odd ones all
# over again from 1 (a replay of what is stored, then what is not).
start_clients() {
    local i from
    ROUND_PIDS=()
    for i in $(seq 0 $((N_CLIENTS - 1))); do
        from=1
        [ $((i % 2)) -eq 1 ] || from=$((ACKED[i] + 1))
        [ "$from" -le "$TOTAL" ] || continue
        start_loop "r$1-c$i" --node "n$i" --epoch $((300 + i)) \
            --t0 $((T0 + i * WINDOW)) --seq "$from-$TOTAL" \
            --batches $(( (TOTAL - from + 1) / BATCH )) --batch-size "$BATCH"
        ROUND_PIDS+=("$i:$LOOP_PID")
    done
}

# total_acks ROUND: batches acked in that round so far, all clients.
total_acks() {
    local i n=0
    for i in $(seq 0 $((N_CLIENTS - 1))); do
        [ -e "$TMP/r$1-c$i.out" ] && n=$((n + $(acks "r$1-c$i")))
    done
    echo "$n"
}

# finish_round ROUND: reaps the clients; raises each one's ACKED and SENT
# to its last ack and the highest seq it sent in that round.
finish_round() {
    local e i a
    for e in "${ROUND_PIDS[@]}"; do
        i=${e%%:*}
        reap "${e#*:}"
        a=$(last_acked "r$1-c$i")
        [ "$a" -le "${ACKED[i]}" ] || ACKED[i]=$a
        a=$(last_sent "r$1-c$i")
        [ "$a" -le "${SENT[i]}" ] || SENT[i]=$a
    done
}

# check_after_crash: integrity, and per agent 1..S, ACKED <= S <= SENT.
check_after_crash() {
    local i from
    assert_eq "$(sqlite3 -readonly "$DB" 'PRAGMA integrity_check')" ok \
        "integrity_check after kill -9"
    for i in $(seq 0 $((N_CLIENTS - 1))); do
        from=$((T0 + i * WINDOW))
        stored_prefix "$from" $((from + WINDOW)) "n$i after kill -9"
        [ "$STORED" -ge "${ACKED[i]}" ] ||
            fail "n$i: ${ACKED[i]} acked, only $STORED stored after kill -9"
        [ "$STORED" -le "${SENT[i]}" ] ||
            fail "n$i: $STORED stored, only ${SENT[i]} sent"
        echo "ok n$i: acked ${ACKED[i]} <= stored $STORED <= sent ${SENT[i]}"
    done
}

acks_ge() { [ "$(total_acks "$1")" -ge "$2" ]; }
start_collector "$DB"
for round in 1 2; do
    start_clients "$round"
    # A random point: after 40..199 acked batches of this round.
    at=$((40 + RANDOM % 160))
    wait_until 30 "round $round: fewer than $at batches acked" \
        acks_ge "$round" "$at"
    kill -9 "$COLLECTOR_PID"
    reap "$COLLECTOR_PID"
    finish_round "$round"
    echo "round $round: killed after $at+ acked batches"
    start_collector "$DB"
    check_after_crash
done

# Resend the rest with the collector up; each client ends acked at TOTAL.
start_clients 3
finish_round 3
for i in $(seq 0 $((N_CLIENTS - 1))); do
    assert_eq "${ACKED[i]}" "$TOTAL" "n$i: last ack after the resend"
done
assert_eq "$(sqlite3 -readonly "$DB" 'PRAGMA integrity_check')" ok \
    "integrity_check at the end"
for i in $(seq 0 $((N_CLIENTS - 1))); do
    from=$((T0 + i * WINDOW))
    stored_prefix "$from" $((from + WINDOW)) "n$i at the end"
    assert_eq "$STORED" "$TOTAL" "n$i: events stored at the end"
done
# Nothing else either: no gap event, no agent row of a stray epoch.
assert_eq "$(sqlite3 -readonly "$DB" 'SELECT count(*) FROM events')" \
    $((N_CLIENTS * TOTAL)) "rows in events"
assert_eq "$(sqlite3 -readonly "$DB" 'SELECT count(*) FROM agents')" \
    "$N_CLIENTS" "rows in agents"
stop_collector
echo "collector_kill: all passed"
