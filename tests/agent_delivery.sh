# agent_delivery.sh -- the agent side of durable delivery, through the
# real sextant-agent binary: a corrupt spool is moved aside and a new
# epoch ships; SIGTERM flushes for shipping.shutdown_grace, not longer
# (a POST held far longer is given up);
# spool.max_bytes holds with real probes running against a collector that
# is down, and the drop accounting in the file adds up exactly; several
# collectors (collectors:) each get every event. The shipper's finer
# behaviour (batching, backoff, Retry-After, dead letters, drain order) is
# tests/test_agent_shipper*.c's; kill -9 and partition runs are the
# delivery_*.sh system tests.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

start_target
SPOOL=$TMP/spool.db
q() { sqlite3 "$SPOOL" "$1"; }

# write_agent FILE COLLECTORS_YAML [EXTRA_YAML]: two targets at 200 ms.
write_agent() {
    cat > "$1" <<YAML
cluster: test
region: eu-west-1
node: n1
$2
spool:
  path: $SPOOL
${3:-}
interval: 200ms
admin:
  enabled: false
targets:
  - name: up
    url: http://127.0.0.1:$TARGET_PORT/
  - name: down
    url: http://127.0.0.1:$TARGET_PORT/status/500
YAML
}

one_collector() {
    printf 'collector:\n  url: %s\n  token: %s\n' "$1" "$TOKEN"
}

# stored DB: events the agent sent (not made by the collector) in a
# collector's db.
stored() {
    sqlite3 "$1" "SELECT count(*) FROM events_full WHERE seq > 0 AND kind NOT IN ('gap', 'drop')"
}

# --- A corrupt spool: moved aside, a new epoch, and the agent ships ---
start_collector "$TMP/c1.db"
head -c 8192 /dev/urandom > "$SPOOL"
cp "$SPOOL" "$TMP/junk.copy"
write_agent "$TMP/a.yaml" "$(one_collector "$URL")"
"$AGENT" --config "$TMP/a.yaml" --once 2> "$TMP/a.log" \
    || fail "agent --once over a corrupt spool exited $?"
grep -q "not a usable spool" "$TMP/a.log" || fail "no error logged"
aside=$(ls "$SPOOL".corrupt-* 2>/dev/null | head -n1)
[ -n "$aside" ] || fail "no $SPOOL.corrupt-* file"
cmp -s "$aside" "$TMP/junk.copy" || fail "the moved file is not the old one"
grep -q "moved aside to $aside" "$TMP/a.log" || fail "log does not say where"
assert_eq "$(q 'SELECT count(*) FROM events')" 0 "spool after the ack"
# START, two probes, STOP: all four stored, under the new epoch.
assert_eq "$(stored "$TMP/c1.db")" 4 "events stored"
assert_eq "$(sqlite3 "$TMP/c1.db" 'SELECT epoch FROM agents')" \
    "$(q 'SELECT epoch FROM meta')" "epoch"
rm -f "$aside"

# --- SIGTERM: the flush lasts shutdown_grace, not longer ---
# The "collector" holds every POST for 10 minutes: only the grace can end
# it (the POST's own 30 s timeout is later than the grace too).
rm -f "$SPOOL"*
write_agent "$TMP/b.yaml" \
    "$(one_collector "http://127.0.0.1:$TARGET_PORT/sleep/600000")" \
    "shipping: {shutdown_grace: 1s, batch_max_age: 5s}"
"$AGENT" --config "$TMP/b.yaml" 2> "$TMP/b.log" &
pid=$!
PIDS+=($pid)
probes_ge() {
    [ -e "$SPOOL" ] && [ "$(q "SELECT count(*) FROM events
        WHERE kind = 'probe'" 2>/dev/null || echo 0)" -ge "$1" ]
}
wait_until 30 "no probe events" probes_ge 4
# batch_max_age 5 s: nothing went out yet; the stop sends at once.
t0=$(now_ms)
kill -TERM "$pid"
# Not longer than the grace, without a stopwatch: an agent that waited for
# the reply (10 minutes) would still run when this 60 s poll gives up (60x
# the grace), and one that waited for the POST's 30 s timeout would have
# logged that failure ("not delivered") before giving up.
wait_until 60 "agent still running 60 s after SIGTERM (grace 1 s)" \
    not_running "$pid"
wait "$pid" || fail "agent exited $? after SIGTERM"
ms=$(( $(now_ms) - t0 ))
[ "$ms" -ge 1000 ] || fail "stopped after $ms ms, before the 1000 ms grace"
grep -q "not delivered" "$TMP/b.log" &&
    fail "the held POST ended before the agent gave up on it"
# The grace by the agent's own clock, from its stop line to its give-up
# line: a lower bound only, with 50 ms for the stop line being stamped a
# little after the instant the grace counts from.
ms=$(log_gap_ms "$TMP/b.log" "signal 15: stopping" "could not ship everything")
[ "$ms" -ge 950 ] || fail "the agent gave up $ms ms after its stop line, grace 1000 ms"
grep -q "flushing for up to 1000 ms" "$TMP/b.log" || fail "no grace line"
grep -q "could not ship everything before stopping" "$TMP/b.log" ||
    fail "no line about what stays spooled"
n=$(q 'SELECT count(*) FROM events')
assert_eq "$(q 'SELECT min(seq) || "-" || max(seq) FROM events')" "1-$n" \
    "everything stays spooled"

# --- spool.max_bytes with real probes and the collector down ---
# The collector's port is known and closed: the same URL, so the same
# collector (the spool knows collectors by URL) when it comes back.
rm -f "$SPOOL"*
start_collector "$TMP/c2.db"
DOWN_PORT=$COLLECTOR_PORT
stop_collector
cat > "$TMP/c.yaml" <<YAML
cluster: test
region: eu-west-1
node: n1
collector:
  url: http://127.0.0.1:$DOWN_PORT
  token: $TOKEN
spool:
  path: $SPOOL
  max_bytes: 64KiB
shipping: {backoff_initial: 10s, backoff_max: 10s}
interval: 100ms
admin:
  enabled: false
targets:
YAML
for i in $(seq 1 20); do
    printf '  - name: target-with-a-longish-name-%02d\n    url: http://127.0.0.1:%s/\n' \
        "$i" "$TARGET_PORT" >> "$TMP/c.yaml"
done
"$AGENT" --config "$TMP/c.yaml" 2> "$TMP/c.log" &
pid=$!
PIDS+=($pid)
for i in $(seq 1 601); do
    [ "$i" -le 600 ] || fail "the spool never reached its bound in 60 s"
    [ -e "$SPOOL" ] && [ "$(q 'SELECT dropped_total FROM meta' 2>/dev/null || echo 0)" -ge 200 ] && break
    sleep 0.1
done
kill -TERM "$pid"
wait "$pid" || fail "agent exited $? after SIGTERM"
dropped=$(q 'SELECT dropped_total FROM meta')
bytes=$(q 'SELECT CAST(total(length(body)) AS INTEGER) FROM events')
[ "$bytes" -le 65536 ] || fail "spool holds $bytes bytes, bound 65536"
[ "$bytes" -gt 60000 ] || fail "spool holds only $bytes bytes: dropped too much"
assert_eq "$(q 'SELECT bytes FROM meta')" "$bytes" "meta.bytes"
assert_eq "$(q 'SELECT n_events FROM meta')" "$(q 'SELECT count(*) FROM events')" \
    "meta.n_events"
# Nothing was ever acked: the drops are exactly 1..dropped, the events
# exactly what follows, and the one collector's records say the same.
assert_eq "$(q 'SELECT min(seq) FROM events')" "$((dropped + 1))" \
    "oldest surviving seq"
assert_eq "$(q 'SELECT max(seq) FROM events')" \
    "$(( $(q 'SELECT next_seq FROM meta') - 1 ))" "newest seq"
assert_eq "$(q 'SELECT sum(count) || "," || min(first_seq) || "," || max(last_seq) FROM drops')" \
    "$dropped,1,$dropped" "drop records"

# Back online on its port: this run's events push a few more of the
# oldest out, then everything left and every drop record arrives.
start_collector "$TMP/c2.db" --listen "127.0.0.1:$DOWN_PORT"
assert_eq "$COLLECTOR_PORT" "$DOWN_PORT" "collector port"
"$AGENT" --config "$TMP/c.yaml" --once 2> "$TMP/c2.log" ||
    fail "agent --once to the collector exited $?"
assert_eq "$(q 'SELECT count(*) FROM events')" 0 "spool after the drain"
assert_eq "$(q 'SELECT count(*) FROM drops')" 0 "drop records once told"
dropped=$(q 'SELECT dropped_total FROM meta')
last=$(( $(q 'SELECT next_seq FROM meta') - 1 ))
# Every seq is stored or counted as dropped, never both, never twice.
assert_eq "$(stored "$TMP/c2.db")" "$((last - dropped))" "events stored"
assert_eq "$(sqlite3 "$TMP/c2.db" "SELECT min(seq) || '-' || max(seq) FROM events_full WHERE seq > 0 AND kind NOT IN ('gap', 'drop')")" \
    "$((dropped + 1))-$last" "stored seqs"
assert_eq "$(sqlite3 "$TMP/c2.db" "SELECT total(json_extract(data, '\$.count')) FROM events_full WHERE kind = 'drop'")" \
    "$dropped.0" "drops the collector was told"
assert_eq "$(sqlite3 "$TMP/c2.db" "SELECT count(*) FROM events_full WHERE kind = 'gap'")" \
    0 "gaps (every loss is explained)"

# --- collectors: each gets every event ---
rm -f "$SPOOL"*
URL1=$URL
: > "$TMP/collector2.log"
"$COLLECTOR" --config "$TMP/collector.yaml" --listen 127.0.0.1:0 \
    --db "$TMP/c3.db" 2> "$TMP/collector2.log" &
PIDS+=($!)
wait_for "$TMP/collector2.log" 'listening on'
URL2=http://127.0.0.1:$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' \
                        "$TMP/collector2.log" | head -n1)
write_agent "$TMP/d.yaml" "$(printf 'collectors:\n  - url: %s\n    token: %s\n  - url: %s\n    token: %s\n' \
    "$URL1" "$TOKEN" "$URL2" "$TOKEN")"
"$AGENT" --config "$TMP/d.yaml" --once 2> "$TMP/d.log" ||
    fail "agent --once to two collectors exited $?"
assert_eq "$(q 'SELECT count(*) FROM events')" 0 "spool after both acked"
epoch=$(q 'SELECT epoch FROM meta')
for db in "$TMP/c2.db" "$TMP/c3.db"; do
    assert_eq "$(sqlite3 "$db" "SELECT group_concat(e.seq) FROM events e JOIN agents a ON a.id = e.agent_id WHERE a.epoch = $epoch AND e.seq > 0 ORDER BY e.seq")" \
        "1,2,3,4" "events in $(basename "$db")"
done
echo "agent_delivery: all passed"
