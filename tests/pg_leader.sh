# pg_leader.sh -- two collectors on one PostgreSQL database: exactly one
# leads (sextant_collector_store_leader), the leader drops events' day
# partitions past raw retention (and keeps today's), deletes rollups past
# theirs and texts nothing uses; killed -9, the other takes the lead; and
# after the database restarts, one of them leads again; it stops cleanly.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/pg_private.sh"

pg_private leader

# Raw events for a day, rollups a little longer, and a pass each second.
cat > "$TMP/collector.yaml" <<YAML
listen: 127.0.0.1:0
store:
  backend: postgres
  postgres:
    conninfo: "$CONNINFO"
retention:
  raw: 1d
  minute_rollups: 2d
  hour_rollups: 3d
  interval: 1s
clusters:
  - name: test
    token: $TOKEN
YAML

pg_collector a
pg_collector b
grep -q 'store: postgres host=127.0.0.1 port=[0-9]* dbname=leader' \
    "$TMP/a.log" || fail "the log does not say which store is used"

# metric PORT NAME: the value of metric NAME on the collector at PORT.
metric() {
    curl -s "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n { print $2 }'
}
leads() {
    [ "$(metric "$1" sextant_collector_store_leader)" = 1 ]
}
one_leads() {
    local la lb
    la=$(metric "$PORT_a" sextant_collector_store_leader)
    lb=$(metric "$PORT_b" sextant_collector_store_leader)
    [ -n "$la" ] && [ -n "$lb" ] && [ $((la + lb)) = 1 ]
}
wait_until 60 "exactly one collector leads" one_leads
if leads "$PORT_a"; then
    LEADER=a FOLLOWER=b
else
    LEADER=b FOLLOWER=a
fi
lport=PORT_$LEADER fport=PORT_$FOLLOWER lpid=PID_$LEADER
fpid=PID_$FOLLOWER
grep -q 'this collector leads' "$TMP/$LEADER.log" ||
    fail "the leader did not log that it leads"
! grep -q 'this collector leads' "$TMP/$FOLLOWER.log" ||
    fail "the follower logged that it leads"

# Retention: a day partition 30 days old with 3 events (created as
# ingest would, by hand), 2 events today; rollups on both sides of
# their retention; texts: one used by today's event, one unused and
# old (deleted), one unused but just made (spared: a writer may be
# about to use it).
DAY=86400000
NOW=$(now_ms)
OLD=$(( (NOW / DAY - 30) * DAY ))
OLD_NAME=events_$(date -u -d "@$((OLD / 1000))" +%Y%m%d)
TODAY_NAME=events_$(date -u -d "@$((NOW / 1000))" +%Y%m%d)
sql "CREATE TABLE $OLD_NAME PARTITION OF events
       FOR VALUES FROM ($OLD) TO ($((OLD + DAY)));
     INSERT INTO agents (cluster, region, node, epoch, first_seen_ms,
                         last_seen_ms)
       VALUES ('test', 'eu', 'n1', 1, $OLD, $NOW);
     INSERT INTO kinds (name) VALUES ('probe') ON CONFLICT DO NOTHING;
     INSERT INTO texts (text, created_ms, md5) VALUES
       ('used', $NOW - 7200000, md5('used')::uuid),
       ('stale', $NOW - 7200000, md5('stale')::uuid),
       ('fresh', $NOW, md5('fresh')::uuid);
     INSERT INTO events (agent_id, seq, unix_ms, recv_delta_ms, kind_id,
                         text_id)
       SELECT a.id, s, $OLD + s, 0, k.id, NULL
         FROM agents a, kinds k, generate_series(1, 3) s
        WHERE k.name = 'probe';
     INSERT INTO events (agent_id, seq, unix_ms, recv_delta_ms, kind_id,
                         text_id)
       SELECT a.id, s, $NOW, 0, k.id, t.id
         FROM agents a, kinds k, texts t, generate_series(4, 5) s
        WHERE k.name = 'probe' AND t.text = 'used';
     INSERT INTO rollup_minute VALUES
       (1, 1, $NOW - 3 * $DAY, 1, 0, '\\x00'), (1, 1, $NOW, 1, 0, '\\x00');
     INSERT INTO rollup_hour VALUES
       (1, 1, $NOW - 4 * $DAY, 1, 0, '\\x00'), (1, 1, $NOW, 1, 0, '\\x00');"

old_gone() {
    [ "$(sql "SELECT count(*) FROM pg_class WHERE relname = '$OLD_NAME'")" = 0 ]
}
wait_until 60 "the leader drops $OLD_NAME" old_gone
texts_done() {
    [ "$(sql "SELECT string_agg(text, ',' ORDER BY text) FROM texts")" = \
      "fresh,used" ]
}
wait_until 60 "the leader deletes the unused old text" texts_done
[ "$(sql "SELECT count(*) FROM $TODAY_NAME")" = 2 ] ||
    fail "today's partition lost events"
[ "$(sql "SELECT count(*) FROM events")" = 2 ] || fail "events left: not 2"
[ "$(sql "SELECT count(*) FROM rollup_minute WHERE t = $NOW")" = 1 ] &&
[ "$(sql "SELECT count(*) FROM rollup_minute")" = 1 ] ||
    fail "minute rollups: want only the recent row"
[ "$(sql "SELECT count(*) FROM rollup_hour WHERE t = $NOW")" = 1 ] &&
[ "$(sql "SELECT count(*) FROM rollup_hour")" = 1 ] ||
    fail "hour rollups: want only the recent row"
# 3 events, a minute row, an hour row and a text (counted just after
# each statement returns: polled).
deleted_is() {
    [ "$(metric "$1" sextant_collector_retention_deleted_rows_total)" = "$2" ]
}
wait_until 30 "retention_deleted: want 6 on the leader" \
    deleted_is "${!lport}" 6
[ "$(metric "${!fport}" sextant_collector_retention_deleted_rows_total)" = 0 ] ||
    fail "the follower ran retention"
# Partitions ahead: today and the next days exist.
for d in 1 2; do
    name=events_$(date -u -d "@$(( NOW / 1000 + d * 86400 ))" +%Y%m%d)
    [ "$(sql "SELECT count(*) FROM pg_class WHERE relname = '$name'")" = 1 ] ||
        fail "partition $name not created ahead"
done

# The leader dies: its session ends, its lock with it, and the other
# collector takes the lead.
kill -9 "${!lpid}"
wait_until 60 "the follower takes the lead" leads "${!fport}"
has_line "$TMP/$FOLLOWER.log" 'this collector leads' ||
    fail "the new leader did not log it"

# The database restarts: the lead is lost with the connection, then
# taken again.
"$SEXTANT_SRC/tests/pg_server.sh" halt "$PRIVATE_PG"
wait_for "$TMP/$FOLLOWER.log" 'lost the lead'
"$SEXTANT_SRC/tests/pg_server.sh" restart "$PRIVATE_PG"
wait_until 60 "the survivor leads again after the restart" leads "${!fport}"

# A clean stop: the maintenance thread ends, every connection closes,
# nothing leaks (the sanitizer build's exit status says so).
rc=0
kill -TERM "${!fpid}"
wait "${!fpid}" || rc=$?
[ "$rc" = 0 ] || fail "the collector exited $rc on SIGTERM"
has_line "$TMP/$FOLLOWER.log" 'gave up the lead (closing)' ||
    fail "the leader did not say it gave up the lead"
echo "ok"
