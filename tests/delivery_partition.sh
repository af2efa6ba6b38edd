# delivery_partition.sh -- partitions longer than the spool can hold. The
# agent (10 targets every 100 ms, spool.max_bytes 256KiB) reaches the
# collector through tests/tcp_proxy; in each partition `sextant-agent
# event --count` appends drill events with 4 KB texts to its spool until
# the spool has dropped events (a condition, not a time).
# Partition 1 blackholes (requests hang), partition 2 refuses (resets),
# partition 3 is one-way: batches reach the collector and are stored, but
# the acks are lost, so the agent later drops events the collector has.
# While cut off, the spool stays near its bound and the agent counts drops;
# after each heal the backlog drains and a new drop event is stored. At the
# end the store holds exactly the surviving events plus drop events whose
# counts add up to what was generated: stored + sum(count) = the agent's
# last seq (so a drop event does not count events the collector stored
# from a batch whose ack was lost), every seq 1..last is stored or inside
# a drop event's range,
# no seq is stored twice, drop events do not overlap, each count fits its
# range, the drops are the oldest unacked events (the event before a run of
# dropped ranges was stored before the cut, the one after it survived),
# there is no "gap" event, and the agent's dropped counter equals the sum.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/delivery_lib.sh"

MAX_BYTES=262144
SPOOL_EXTRA="  max_bytes: 256KiB"
SHIP='shipping: {batch_max_events: 200, batch_max_age: 100ms,
  backoff_initial: 100ms, backoff_max: 500ms, shutdown_grace: 5s}'

start_target
DB=$TMP/c.db
start_named_collector c "$DB"
start_proxy p "${CPORT[c]}"
write_agent n1 "$(collector_yaml "http://127.0.0.1:${PROXY_PORT[p]}")" 10 \
    100ms "$SHIP"
start_agent n1
ADMIN=$(admin_port n1)
wait_until 30 "nothing stored" stored_through "$DB" n1 10

# spool_bytes: packed bytes of the events in the spool.
spool_bytes() {
    q "$TMP/n1.spool" 'SELECT coalesce(sum(length(body)), 0) FROM events'
}

# spool_dropped: the spool's own count of dropped events (exact, in the
# file; /metrics catches up within a second).
spool_dropped() {
    q "$TMP/n1.spool" 'SELECT dropped_total FROM meta'
}

# overflowed BEFORE: samples the spool's size into PEAK and holds once the
# spool has dropped events since BEFORE. drive_events checks it between
# its runs, so PEAK is what the spool held after each run of appends.
overflowed() {
    local b
    b=$(spool_bytes)
    [ "$b" -gt "$PEAK" ] && PEAK=$b
    [ "$(spool_dropped)" -gt "$1" ]
}

# partition MODE ROUND: cuts the agent off, appends drill events with 4 KB
# texts until the spool has dropped some, then heals and waits for the
# drain.
partition() {
    local mode=$1 round=$2 before
    before=$(metric "$ADMIN" sextant_agent_events_dropped_total)
    [ "$before" != absent ] || fail "no sextant_agent_events_dropped_total"
    proxy_mode p "$mode"
    PEAK=0
    drive_events n1 "$TMP/cli$round.txt" 4000 overflowed "$(spool_dropped)"
    wait_until 30 "partition $round ($mode): no events dropped" \
        metric_ge "$ADMIN" sextant_agent_events_dropped_total $((before + 1))
    # A spool past its bound drops the oldest on the next append; allow
    # what one more round of appends adds (10 probes and a drill event).
    [ "$PEAK" -le $((MAX_BYTES + 16384)) ] ||
        fail "partition $round: spool held $PEAK packed bytes, bound $MAX_BYTES"
    echo "partition $round ($mode): $DRIVEN drill events, spool peaked at" \
         "$PEAK bytes, dropped $(metric "$ADMIN" \
         sextant_agent_events_dropped_total) in all"
    proxy_mode p pass
    last=$(spool_last n1)
    wait_until 60 "partition $round: backlog to seq $last not stored" \
        stored_through "$DB" n1 "$last"
    n=$(q "$DB" "SELECT count(*) FROM events_full WHERE kind = 'drop'")
    [ "$n" -gt "$DROP_EVENTS" ] || fail "partition $round: no drop event stored"
    DROP_EVENTS=$n
}

DROP_EVENTS=0
partition blackhole 1
partition refuse 2
partition oneway 3
# The spool counts its drops in the file; /metrics reads that once a
# second: wait for it to catch up.
dropped=$(spool_dropped)
metric_is() { [ "$(metric "$ADMIN" "$1")" = "$2" ]; }
wait_until 30 "sextant_agent_events_dropped_total is not the spool's $dropped" \
    metric_is sextant_agent_events_dropped_total "$dropped"
stop_agent n1
last=$(spool_last n1)
assert_eq "$(spool_count n1)" 0 "events left in the spool"

# The store against the spool's history, as sets.
EV="FROM events_full e JOIN agents a ON a.id = e.agent_id WHERE a.node = 'n1'"
assert_eq "$(q "$DB" "SELECT count(*) FROM agents WHERE node = 'n1'")" 1 \
    "epochs"
assert_eq "$(q "$DB" "SELECT count(*) $EV AND e.kind = 'gap'")" 0 \
    "gap events (every hole is explained by a drop event)"
stored=$(q "$DB" "SELECT count(*) $EV AND e.seq IS NOT NULL")
assert_eq "$(q "$DB" "SELECT count(DISTINCT e.seq) $EV")" "$stored" \
    "distinct stored seqs"
DROPS="SELECT json_extract(e.data, '\$.from_seq') AS f,
       json_extract(e.data, '\$.to_seq') AS t,
       json_extract(e.data, '\$.count') AS c,
       json_extract(e.data, '\$.from_ms') AS fm,
       json_extract(e.data, '\$.to_ms') AS tm $EV AND e.kind = 'drop'"
q "$DB" "$DROPS" > "$TMP/drops.txt"
echo "drop events (from|to|count|from_ms|to_ms):"; cat "$TMP/drops.txt"
sum=$(q "$DB" "SELECT coalesce(sum(c), 0) FROM ($DROPS)")
if [ "$((stored + sum))" != "$last" ]; then
    both=$(q "$DB" "SELECT e.seq $EV AND e.seq IS NOT NULL AND EXISTS
        (SELECT 1 FROM ($DROPS) d WHERE e.seq BETWEEN d.f AND d.t)
        ORDER BY 1" | ranges)
    fail "stored ($stored) + dropped ($sum) = $((stored + sum)), want the" \
         "last seq $last; stored seqs inside drop ranges: ${both:-none}"
fi
assert_eq "$sum" "$dropped" "drop counts vs sextant_agent_events_dropped_total"
assert_eq "$(q "$DB" "SELECT count(*) FROM ($DROPS)
    WHERE c IS NULL OR c < 1 OR c > t - f + 1 OR f < 1 OR t > $last
       OR fm IS NULL OR fm > tm")" 0 \
    "drop events whose range, count or times do not add up"
assert_eq "$(q "$DB" "SELECT count(*) FROM ($DROPS) d1, ($DROPS) d2
    WHERE d1.f < d2.f AND d1.t >= d2.f")" 0 "drop events that overlap"
missing=$(q "$DB" "WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL
    SELECT x + 1 FROM s WHERE x < $last)
    SELECT x FROM s WHERE x NOT IN (SELECT e.seq $EV AND e.seq IS NOT NULL)
    AND NOT EXISTS (SELECT 1 FROM ($DROPS) d WHERE x BETWEEN d.f AND d.t)
    ORDER BY 1" | ranges)
[ -z "$missing" ] || fail "seqs neither stored nor in a drop event: $missing"
# Oldest first: around each run of dropped ranges, the event before was
# stored before the cut and the one after is the oldest that survived.
q "$DB" "SELECT e.seq $EV AND e.seq IS NOT NULL ORDER BY 1" > "$TMP/stored.txt"
q "$DB" "SELECT f, t FROM ($DROPS) ORDER BY f" | tr '|' ' ' |
    awk 'NR > 1 && $1 <= t + 1 { if ($2 > t) t = $2; next }
         NR > 1 { print f, t } { f = $1; t = $2 } END { if (NR) print f, t }' \
    > "$TMP/blocks.txt"
while read -r f t; do
    { [ "$f" = 1 ] || grep -qx "$((f - 1))" "$TMP/stored.txt"; } &&
        grep -qx "$((t + 1))" "$TMP/stored.txt" ||
        fail "dropped seqs $f..$t are not the oldest unacked events"
done < "$TMP/blocks.txt"
echo "last seq $last = $stored stored + $sum dropped"
stop_proxy p
stop_named_collector c
echo "delivery_partition: all passed"
