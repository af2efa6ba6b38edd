# collector_clock.sh -- the clock offset estimate over real ingest (see
# store_clock): a batch whose previous RTT is absurd (2^32-1 us) or over
# the 10 s cap is no sample; a spike (one batch far from the others, even
# with the smallest RTT) does not move the estimate; a real clock step is
# followed once most of the window agrees; a restart keeps the window.
# Offsets are checked with room for the real transit time (recv - sent is
# the offset plus it), which is small against the steps the test makes.
. "$(dirname "$0")/lib.sh"

DB=$TMP/c.db
start_collector "$DB"
T0=$(( $(date +%s%3N) - 3600000 ))
SEQ=0

# send NODE ARGS...: one batch of one event, the node's next seq.
send() {
    local node=$1; shift
    SEQ=$((SEQ + 1))
    assert_eq "$("$INGEST_CLIENT" --url "$URL/v1/ingest" --token "$TOKEN" \
        --node "$node" --t0 "$T0" --seq "$SEQ-$SEQ" "$@" | cut -d' ' -f1)" \
        200 "batch $SEQ of $node"
}
offset() {
    db_sql "$DB" "SELECT coalesce(CAST(round(clock_offset_ms) AS INTEGER),
        'null') FROM agents WHERE node = '$1'" \
        "SELECT coalesce(round(clock_offset_ms)::bigint::text, 'null')
        FROM agents WHERE node = '$1'"
}
# near NODE WANT WHAT: the estimate is WANT, plus up to 10 s of transit.
near() {
    local got
    got=$(offset "$1")
    [ "$got" != null ] && [ "$got" -ge $(($2 - 2)) ] &&
        [ "$got" -le $(($2 + 10000)) ] ||
        fail "$3: offset $got, want $2 (+ transit up to 10 s)"
    echo "ok $3 ($got)"
}

# An agent's first batch with an absurd RTT is no sample: no estimate
# (it used to become one, 36 minutes off).
send fresh --sent-ms -30000 --rtt-us 4294967295
assert_eq "$(offset fresh)" null "estimate after an RTT of 2^32-1 us"
send fresh --sent-ms -30000 --rtt-us 10000001
assert_eq "$(offset fresh)" null "estimate after an RTT just over 10 s"
echo "ok RTT over the cap: no sample"

# Agent clock 30 s behind, RTT 20 ms: estimate 30000 - 10.
for i in 1 2 3 4; do send clk --sent-ms -30000 --rtt-us 20000; done
near clk 29990 "four consistent samples"
send clk --sent-ms -30000 --rtt-us 4294967295
near clk 29990 "after a batch with an RTT of 2^32-1 us"
# A spike: the agent's clock reads 60 s ahead for one batch, with the
# smallest RTT yet. Far from the window's median: not chosen.
send clk --sent-ms +60000 --rtt-us 2000
near clk 29990 "after one spike 90 s off"

# The clock really steps: 120 s behind from now on. A minority of such
# samples is a spike; once most of the window (8) agrees, the estimate
# follows.
send clk --sent-ms -120000 --rtt-us 20000
send clk --sent-ms -120000 --rtt-us 20000
near clk 29990 "two samples of a step: still a spike"
for i in 1 2 3 4 5 6; do send clk --sent-ms -120000 --rtt-us 20000; done
near clk 119990 "eight samples of the step"

# Of consistent samples, the smallest RTT wins (its delay guess is off by
# the least): RTT 2 ms, estimate 120000 - 1.
send clk --sent-ms -120000 --rtt-us 2000
near clk 119999 "the sample with the smallest RTT"

# A restart keeps the window: one spike is still a spike.
stop_collector
start_collector "$DB"
send clk --sent-ms +60000 --rtt-us 1000
near clk 119999 "a spike after a restart"
stop_collector
echo "collector_clock: all passed"
