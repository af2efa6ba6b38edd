# collector_delivery.sh -- the collector's side of durable delivery, driven
# through tests/ingest_client against the real collector: batches arriving
# out of order are stored once each and the Ack watermark climbs only over
# what is contiguous; a hole below Batch.oldest_seq becomes one gap event
# for exactly the lost seqs; Batch.drops becomes one drop event, stored
# once, never also a gap; the per-agent clock offset (EWMA) and the
# timeline's corrected order; hostile seq numbers; and the schema
# migration of a version 1 database.
. "$(dirname "$0")/lib.sh"

DB=$TMP/c.db
start_collector "$DB"
T0=$(( $(date +%s) * 1000 - 600000 ))
send() { "$INGEST_CLIENT" --url "$URL/v1/ingest" --token "$TOKEN" \
             --t0 "$T0" "$@"; }
# q SQL [PG_SQL]: SQL on the store's rows (db_sql: PG_SQL in PostgreSQL
# mode, where JSON is read with ->> and rows joined with string_agg).
q() { db_sql "$DB" "$1" "${2:-}"; }
# node_q NODE WHERE: count of events of that node matching WHERE.
node_count() {
    q "SELECT count(*) FROM events_full e JOIN agents a ON a.id = e.agent_id
       WHERE a.node = '$1' AND $2"
}
# gaps NODE: "FROM-TO:COUNT" per gap event, in seq order.
gaps() {
    q "SELECT group_concat(r, ' ') FROM (SELECT json_extract(data,
       '$.from_seq') || '-' || json_extract(data, '$.to_seq') || ':' ||
       json_extract(data, '$.count') AS r FROM events_full e JOIN agents a
       ON a.id = e.agent_id WHERE a.node = '$1' AND kind = 'gap'
       ORDER BY json_extract(data, '$.from_seq'))" \
      "SELECT string_agg(r, ' ' ORDER BY f) FROM (SELECT (d->>'from_seq')
       || '-' || (d->>'to_seq') || ':' || (d->>'count') AS r,
       (d->>'from_seq')::bigint AS f FROM (SELECT data::json AS d
       FROM events_full e JOIN agents a ON a.id = e.agent_id
       WHERE a.node = '$1' AND kind = 'gap') x) y"
}
drops() {
    q "SELECT group_concat(r, ' ') FROM (SELECT json_extract(data,
       '$.count') || ':' || json_extract(data, '$.from_seq') || '-' ||
       json_extract(data, '$.to_seq') AS r FROM events_full e JOIN agents a
       ON a.id = e.agent_id WHERE a.node = '$1' AND kind = 'drop'
       ORDER BY e.id)" \
      "SELECT string_agg(r, ' ' ORDER BY id) FROM (SELECT (d->>'count')
       || ':' || (d->>'from_seq') || '-' || (d->>'to_seq') AS r, id
       FROM (SELECT data::json AS d, e.id FROM events_full e JOIN agents a
       ON a.id = e.agent_id WHERE a.node = '$1' AND kind = 'drop') x) y"
}
events_digest() { q "SELECT * FROM events_full ORDER BY id" | sha256sum; }

# --- Out of order: newest first, then older, then the oldest. The agent
# still holds everything (oldest_seq 1), so nothing is a gap, and the Ack
# stays at 0 until the hole at the bottom is filled.
assert_eq "$(send --node ooo --oldest-seq 1 --seq 51-100)" "200 0" \
    "newest batch first: watermark stays"
assert_eq "$(send --node ooo --oldest-seq 1 --seq 26-50)" "200 0" \
    "middle batch: still a hole at 1-25"
assert_eq "$(node_count ooo "kind = 'probe'")" 75 "stored before the hole fills"
assert_eq "$(send --node ooo --oldest-seq 1 --seq 1-25)" "200 100" \
    "oldest batch: watermark to the top"
assert_eq "$(q "SELECT count(*), count(DISTINCT seq), min(seq), max(seq)
    FROM events_full e JOIN agents a ON a.id = e.agent_id
    WHERE a.node = 'ooo' AND kind = 'probe'")" "100|100|1|100" \
    "every event stored once"
assert_eq "$(node_count ooo "kind IN ('gap', 'drop')")" 0 "no gap, no drop"
before=$(events_digest)
assert_eq "$(send --node ooo --oldest-seq 1 --seq 51-100)" "200 100" \
    "replay of a newer batch"
assert_eq "$(send --node ooo --oldest-seq 40 --seq 40-60)" "200 100" \
    "overlapping replay"
assert_eq "$(events_digest)" "$before" "replays stored nothing"
# Overlap across the hole: 101-110 and 105-120 before 1xx is complete.
assert_eq "$(send --node ooo --oldest-seq 101 --seq 105-120)" "200 100" \
    "overlap, newest first"
assert_eq "$(send --node ooo --oldest-seq 101 --seq 101-110)" "200 120" \
    "overlap, oldest"
assert_eq "$(node_count ooo "kind = 'probe' AND seq > 100")" 20 \
    "overlap stored once"

# --- oldest_seq above the watermark: the agent no longer has 11-15.
assert_eq "$(send --node lost --oldest-seq 1 --seq 1-10)" "200 10" "lost: first"
assert_eq "$(send --node lost --oldest-seq 16 --seq 16-20)" "200 20" \
    "lost: oldest_seq 16"
assert_eq "$(gaps lost)" "11-15:5" "one gap for exactly 11-15"
# A hole below oldest_seq is lost, one above it is only late.
assert_eq "$(send --node lost --oldest-seq 25 --seq 31-35)" "200 24" \
    "lost: 21-24 gone, 25-30 still coming"
assert_eq "$(gaps lost)" "11-15:5 21-24:4" "second gap"
assert_eq "$(send --node lost --oldest-seq 25 --seq 25-30)" "200 35" \
    "lost: late batch fills the rest"
assert_eq "$(gaps lost)" "11-15:5 21-24:4" "no gap for late events"
assert_eq "$(send --node lost --oldest-seq 16 --seq 16-20)" "200 35" \
    "lost: replay"
assert_eq "$(node_count lost "kind = 'gap'")" 2 "gaps stored once"
# The gap shows on the timeline next to the event after it.
gt=$(q "SELECT e.unix_ms - $T0 FROM events_full e JOIN agents a ON a.id =
    e.agent_id WHERE a.node = 'lost' AND kind = 'gap' ORDER BY e.id LIMIT 1")
assert_eq "$gt" 16 "gap time: the first event after it"

# --- Drops: one drop event with the agent's counts, stored once, and the
# dropped range is not also a gap.
F=$((T0 + 11)); L=$((T0 + 20))
assert_eq "$(send --node drop --oldest-seq 1 --seq 1-10)" "200 10" "drop: first"
assert_eq "$(send --node drop --oldest-seq 21 --seq 21-30 \
    --drops "10:11-20@$F-$L")" "200 30" "drop: drops + oldest_seq"
assert_eq "$(drops drop)" "10:11-20" "drop event"
assert_eq "$(gaps drop)" "" "no gap for the dropped range"
assert_eq "$(q "SELECT (json_extract(data, '$.from_ms') - $T0) || ',' ||
    (json_extract(data, '$.to_ms') - $T0) || ',' || (unix_ms - $T0)
    FROM events_full WHERE kind = 'drop'" \
    "SELECT ((data::json->>'from_ms')::bigint - $T0) || ',' ||
    ((data::json->>'to_ms')::bigint - $T0) || ',' || (unix_ms - $T0)
    FROM events_full WHERE kind = 'drop'")" "11,20,11" "drop times"
before=$(events_digest)
assert_eq "$(send --node drop --oldest-seq 21 --seq 21-30 \
    --drops "10:11-20@$F-$L")" "200 30" "drop: replay"
assert_eq "$(events_digest)" "$before" "replayed drops stored nothing"
assert_eq "$(send --node drop --oldest-seq 31 --seq 31-35 \
    --drops "10:11-20@$F-$L")" "200 35" "drop: next batch repeats them"
assert_eq "$(drops drop)" "10:11-20" "repeated drops stored once"
# The Ack of a drop report got lost and the agent dropped 3 more: it
# reports 6 from the same first seq; only the 3 new ones are stored.
assert_eq "$(send --node drop --oldest-seq 39 --seq 39-41 \
    --drops "3:36-38")" "200 41" "drop: second report"
assert_eq "$(send --node drop --oldest-seq 45 --seq 45-46 \
    --drops "6:36-44")" "200 46" "drop: report grown"
assert_eq "$(gaps drop)" "" "still no gap"
assert_eq "$(drops drop)" "10:11-20 3:36-38 3:42-44" "grown report: the rest"
assert_eq "$(q "SELECT sum(json_extract(data, '$.count')) FROM events_full e
    JOIN agents a ON a.id = e.agent_id WHERE a.node = 'drop'
    AND kind = 'drop'" \
    "SELECT sum((data::json->>'count')::bigint) FROM events_full e
    JOIN agents a ON a.id = e.agent_id WHERE a.node = 'drop'
    AND kind = 'drop'")" 16 "drop counts add up"
# A drop report alone, before the batch that jumps over it.
assert_eq "$(send --node drop --oldest-seq 47 --drops "5:50-54")" "200 46" \
    "drop: report without events"
assert_eq "$(send --node drop --oldest-seq 55 --seq 55-56)" "200 56" \
    "drop: oldest_seq past the hole"
assert_eq "$(gaps drop)" "47-49:3" "gap only for the unexplained"
assert_eq "$(drops drop)" "10:11-20 3:36-38 3:42-44 5:50-54" "drops so far"

# The agent reports as dropped what it never got an Ack for, which the
# collector may have stored all the same: a drop event says only what the
# collector lacks. 1-10 stored, Ack lost, then 1-15 dropped: 11-15.
assert_eq "$(send --node dst --oldest-seq 1 --seq 1-10)" "200 10" "dst: first"
assert_eq "$(send --node dst --oldest-seq 16 --seq 16-20 --drops 15:1-15)" \
    "200 20" "dst: drops over stored seqs"
assert_eq "$(drops dst)/$(gaps dst)" "5:11-15/" "dst: only the missing part"
# Stored seqs inside the range (newest first, then dropped): one event per
# run not stored, its times bounded by the stored neighbours.
assert_eq "$(send --node dmid --oldest-seq 1 --seq 5-6)" "200 0" "dmid: 5-6"
assert_eq "$(send --node dmid --oldest-seq 9 --seq 9-10 \
    --drops "8:1-8@$((T0 + 1))-$((T0 + 8))")" "200 10" "dmid: 1-8 dropped"
assert_eq "$(drops dmid)/$(gaps dmid)" "4:1-4 2:7-8/" "dmid: two runs"
assert_eq "$(q "SELECT group_concat((json_extract(data, '$.from_ms') - $T0)
    || '-' || (json_extract(data, '$.to_ms') - $T0), ' ') FROM (SELECT data
    FROM events_full e JOIN agents a ON a.id = e.agent_id WHERE a.node = 'dmid'
    AND kind = 'drop' ORDER BY e.id)" \
    "SELECT string_agg(((data::json->>'from_ms')::bigint - $T0) || '-' ||
    ((data::json->>'to_ms')::bigint - $T0), ' ' ORDER BY e.id)
    FROM events_full e JOIN agents a ON a.id = e.agent_id
    WHERE a.node = 'dmid' AND kind = 'drop'")" "1-5 6-8" "dmid: run times"
# A report that is not contiguous (5 of 11-20): one event over what is
# not stored, its count capped by the report's; what the report does not
# explain (8 missing, 5 reported: e.g. a dead letter) is a gap, so every
# missing seq is accounted for.
assert_eq "$(send --node dnc --oldest-seq 1 --seq 1-10)" "200 10" "dnc: first"
assert_eq "$(send --node dnc --oldest-seq 11 --seq 12-13)" "200 10" \
    "dnc: 12-13"
assert_eq "$(send --node dnc --oldest-seq 21 --seq 21-22 --drops 5:11-20)" \
    "200 22" "dnc: 5 of 11-20 dropped"
assert_eq "$(drops dnc)/$(gaps dnc)" "5:11-20/11-20:3" \
    "dnc: a drop and a gap for the rest"
assert_eq "$(send --node dnc2 --oldest-seq 1 --seq 1-10)" "200 10" "dnc2"
assert_eq "$(send --node dnc2 --oldest-seq 1 --seq 12-18)" "200 10" "dnc2 12-18"
assert_eq "$(send --node dnc2 --oldest-seq 21 --seq 21-21 --drops 5:11-20)" \
    "200 21" "dnc2: 5 of 11-20 dropped, 7 of them stored"
assert_eq "$(drops dnc2)/$(gaps dnc2)" "3:11-20/" "dnc2: capped at the missing"

# Old rule (no oldest_seq): a jump forward is a gap unless dropped.
assert_eq "$(send --node old --seq 1-10)" "200 10" "old: first"
assert_eq "$(send --node old --seq 16-20 --drops 5:11-15)" "200 20" \
    "old: jump explained by drops"
assert_eq "$(drops old)/$(gaps old)" "5:11-15/" "old: drop, no gap"
assert_eq "$(send --node old --seq 31-32 --drops 5:21-25)" "200 32" \
    "old: jump partly explained"
assert_eq "$(drops old)/$(gaps old)" "5:11-15 5:21-25/26-30:5" \
    "old: drop and gap"

# --- Clock offset: agent clock 5 s behind, previous RTT 20 ms: the first
# sample is taken as is (5000 - 10 + transit). Of two samples with the same
# RTT the newer wins; from three on, one far from the median is left out
# (store_clock; collector_clock.sh has the rest).
offset() {
    q "SELECT CAST(round(clock_offset_ms) AS INTEGER) FROM agents
       WHERE node = '$1'" \
      "SELECT round(clock_offset_ms)::bigint FROM agents WHERE node = '$1'"
}
in_range() { [ "$1" -ge "$2" ] && [ "$1" -le "$3" ] \
                 || fail "$4: $1 not in $2..$3"; }
# A sample includes the batch's transit (posting, queueing, decoding), a
# few ms here but seconds under ASan on a busy machine: allow TRANSIT ms,
# less than the 4 s between the samples the checks tell apart.
TRANSIT=3900
send --node ca --seq 1-1 --t0 $((T0 + 1000)) --sent-ms -5000 \
    --rtt-us 20000 > /dev/null
in_range "$(offset ca)" 4985 $((5000 + TRANSIT)) "first offset sample"
send --node ca --seq 2-2 --t0 $((T0 + 1000)) --sent-ms -10000 \
    --rtt-us 20000 > /dev/null
in_range "$(offset ca)" 9985 $((10000 + TRANSIT)) \
    "same RTT: the newer sample"
before=$(offset ca)
# A clock years off is a node that booted without time, not skew: the
# sample is ignored, the estimate stays.
send --node ca --seq 2-2 --t0 $((T0 + 1000)) --sent-ms 946771200000 \
    > /dev/null
assert_eq "$(offset ca)" "$before" "a sample a day or more off is ignored"
send --node cnone --seq 1-1 --sent-ms 0 > /dev/null
assert_eq "$(q "SELECT clock_offset_ms IS NULL FROM agents
    WHERE node = 'cnone'" "SELECT (clock_offset_ms IS NULL)::int FROM agents
    WHERE node = 'cnone'")" 1 "no send time: no estimate"

# Two agents whose clocks disagree: ca is ~6 s behind, cb is right. ca's
# event at agent time T0+1003 happened at ~T0+7003 on one clock; cb's at
# T0+3003 really at T0+3003. Agent order: ca first; corrected: cb first.
send --node cb --seq 3-3 --t0 $((T0 + 3000)) --sent-ms +0 > /dev/null
send --node ca --seq 3-3 --t0 $((T0 + 1000)) --sent-ms -6000 \
    --rtt-us 20000 > /dev/null
tl() { api_get "api/v1/timeline?cluster=test&$1"; }
W="from=$((T0 + 1003))&to=$((T0 + 1004))"
tl "from=$((T0 + 1003))&to=$((T0 + 3004))" > "$TMP/agent.json"
got=$(jq -r '[.events[] | select(.seq == 3 and (.node == "ca" or
    .node == "cb")) | .node] | join(",")' "$TMP/agent.json")
assert_eq "$got" "ca,cb" "agent order"
tl "from=$((T0 + 3000))&to=$((T0 + 7100 + TRANSIT))&order=corrected" > "$TMP/corr.json"
got=$(jq -r '[.events[] | select(.seq == 3 and (.node == "ca" or
    .node == "cb")) | .node] | join(",")' "$TMP/corr.json")
assert_eq "$got" "cb,ca" "corrected order"
ev=$(jq -c '.events[] | select(.node == "ca" and .seq == 3)' "$TMP/corr.json")
off=$(echo "$ev" | jq '.clock_offset_ms')
in_range "$off" 5985 $((6000 + TRANSIT)) "clock_offset_ms in the API"
assert_eq "$(echo "$ev" | jq '.corrected_ms - .time_ms')" "$off" \
    "corrected_ms = time_ms + clock_offset_ms"
ct=$(date -u -d "$(echo "$ev" | jq -r '.corrected_time')" +%s%3N)
in_range "$(( ct - $(echo "$ev" | jq '.corrected_ms') ))" -1 1 \
    "corrected_time is corrected_ms"
# from/to with order=corrected are on the corrected clock: ca's event
# (agent time T0+1003) is in [T0+5000, T0+8000), cb's (T0+3003) is not.
tl "from=$((T0 + 5000))&to=$((T0 + 8000))&order=corrected" > "$TMP/w.json"
assert_eq "$(jq -r '[.events[] | .node] | unique | join(",")' "$TMP/w.json")" \
    "ca" "corrected window"
tl "$W" > "$TMP/w.json"
assert_eq "$(jq -r '[.events[] | "\(.node)/\(.seq)"] | join(",")' \
    "$TMP/w.json")" "ca/3" "agent window is on agent time"
tl "from=$T0&to=$((T0 + 100))&limit=1" > "$TMP/n.json"
assert_eq "$(jq -c '[.events[] | has("clock_offset_ms")
    and has("corrected_ms") and has("corrected_time")] | unique' \
    "$TMP/n.json")" "[true]" "offset fields on every event"
assert_eq "$(api_code "api/v1/timeline?order=skew")" 400 "bad order"
jq -e '.detail | startswith("order:")' "$TMP/body" > /dev/null \
    || fail "400 does not name order: $(cat "$TMP/body")"

# --- Hostile numbers: refused with 400, nothing stored.
before=$(db_digest "$DB")
expect400() {
    local out
    out=$(send --node bad "$@")
    assert_eq "${out%% *}" 400 "status for $*"
    echo "${out#* }" | jq -e ".detail | contains(\"$W2\")" > /dev/null \
        || fail "detail for $*: $out"
}
W2="over 2^63-1"; expect400 --seq 9223372036854775808-9223372036854775808
W2="oldest_seq"; expect400 --seq 1-2 --oldest-seq 9223372036854775808
W2="count 11 over the 10 seqs"; expect400 --seq 21-22 --drops 11:11-20
W2="drops: seqs"; expect400 --seq 21-22 --drops 1:0-5
# oldest_seq above what the batch holds would write off unsent seqs (and
# ack events the collector then skips); drops must lie below the batch.
W2="oldest_seq: 1000000 above the batch's first seq 11"
expect400 --seq 11-12 --oldest-seq 1000000
W2="oldest_seq: 50 above what the batch reports"
expect400 --oldest-seq 50 --drops 1:5-9
W2="drops: last seq 3 not below the batch's first seq 1"
expect400 --seq 1-3 --drops 2:2-3
W2="drops: last seq 9223372036854775807 not below"
expect400 --seq 11-12 --drops 1:5-9223372036854775807
assert_eq "$(db_digest "$DB")" "$before" "nothing stored for bad input"
stop_collector

# --- A version 1 database (before this change) is migrated in place and
# its agents keep their watermark. (A SQLite file: not on PostgreSQL.)
if on_pg; then
    echo "collector_delivery: all passed (PostgreSQL: no version 1 file)"
    exit 0
fi
DB1=$TMP/v1.db
make_v1_db "$DB1"
sqlite3 "$DB1" \
    "INSERT INTO agents VALUES (1, 'test', 'r', 'n1', 42, 7, 'old', 1, 1)"
start_collector "$DB1"
assert_eq "$(sqlite3 "$DB1" 'PRAGMA user_version')" 9 "migrated"
assert_eq "$(send --seq 5-9)" "200 9" "watermark kept across the migration"
assert_eq "$(sqlite3 "$DB1" "SELECT count(*) FROM events_full")" 2 \
    "only 8 and 9 are new"
stop_collector
echo "collector_delivery: all passed"
