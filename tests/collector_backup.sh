# collector_backup.sh -- sextant-collector backup: a copy taken while four
# clients keep posting is intact, is one snapshot (each agent's events are
# exactly 1..its watermark, somewhere between what was acked before the
# backup began and what was sent before it ended), serves the timeline
# from a collector started on it, and ingest never stopped. Then every
# refusal: exit status, one line naming the file, no file left behind.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ingest_lib.sh"

DB=$TMP/c.db
N_CLIENTS=4
T0=$(( $(date +%s) * 1000 - 3600000 ))    # an hour ago
WINDOW=1000000                             # ms of timeline per client
start_collector "$DB"

# Client i is node n$i with its own epoch and its own window of agent
# time (event time = its t0 + seq), so one timeline query sees only it.
CLIENT_PIDS=()
for i in $(seq 0 $((N_CLIENTS - 1))); do
    start_loop "c$i" --node "n$i" --epoch $((100 + i)) \
        --t0 $((T0 + i * WINDOW)) --batches 20000 --batch-size 5
    CLIENT_PIDS+=($LOOP_PID)
done
for i in $(seq 0 $((N_CLIENTS - 1))); do wait_acks_above "c$i" 50; done

LO=(); HI=()
for i in $(seq 0 $((N_CLIENTS - 1))); do LO[i]=$(last_acked "c$i"); done
COPY=$TMP/backup/copy.db
mkdir "$TMP/backup"
"$COLLECTOR" backup --db "$DB" --out "$COPY" > "$TMP/backup.out" \
    2> "$TMP/backup.err" || fail "backup: $(cat "$TMP/backup.err")"
for i in $(seq 0 $((N_CLIENTS - 1))); do HI[i]=$(last_sent "c$i"); done
grep -Eq "^sextant-collector backup: $COPY: [0-9]+ bytes in [0-9.]+ s$" \
    "$TMP/backup.out" || fail "success line: $(cat "$TMP/backup.out")"
assert_eq "$(wc -l < "$TMP/backup.out")" 1 "lines printed on success"
assert_eq "$(ls "$TMP/backup")" "copy.db" "files beside the copy"
echo "ok backup under ingest: $(cat "$TMP/backup.out")"

# Ingest went on: every client gets acks past what it had sent by the end
# of the backup.
for i in $(seq 0 $((N_CLIENTS - 1))); do wait_acks_above "c$i" "${HI[i]}"; done
echo "ok ingest continued past the backup"
stop_collector
for p in "${CLIENT_PIDS[@]}"; do reap "$p"; done

assert_eq "$(sqlite3 "$COPY" 'PRAGMA integrity_check')" "ok" \
    "integrity_check of the copy"

# Each agent's watermark in the copy lies between the two bounds ...
for i in $(seq 0 $((N_CLIENTS - 1))); do
    K[i]=$(sqlite3 "$COPY" "SELECT acked_seq FROM agents
                            WHERE cluster = 'test' AND node = 'n$i'")
    [ -n "${K[i]}" ] || fail "n$i: no agent row in the copy"
    [ "${K[i]}" -ge "${LO[i]}" ] ||
        fail "n$i: copy holds up to ${K[i]}, but ${LO[i]} was acked before"
    [ "${K[i]}" -le "${HI[i]}" ] ||
        fail "n$i: copy holds up to ${K[i]}, but only ${HI[i]} was sent"
    echo "ok n$i: acked ${LO[i]} <= copy ${K[i]} <= sent ${HI[i]}"
done

# ... and a collector started on the copy serves exactly seqs 1..K of each
# agent, once each: the copy is one snapshot, usable as is.
start_collector "$COPY"
for i in $(seq 0 $((N_CLIENTS - 1))); do
    from=$((T0 + i * WINDOW))
    stored_prefix "$from" $((from + WINDOW)) "n$i in the copy"
    assert_eq "$STORED" "${K[i]}" "n$i: events in the copy"
done
echo "ok the copy serves each agent's seqs 1..watermark, once each"
stop_collector

# expect_refusal STATUS PATTERN WHAT ARGS...: backup exits STATUS with one
# line on stderr matching PATTERN, prints nothing, leaves no file in
# $TMP/out (where every refused --out points).
expect_refusal() {
    local want=$1 pattern=$2 what=$3 rc=0
    shift 3
    "$COLLECTOR" backup "$@" > "$TMP/out.txt" 2> "$TMP/err" || rc=$?
    assert_eq "$rc" "$want" "exit status for $what"
    assert_eq "$(wc -l < "$TMP/err")" 1 "stderr lines for $what"
    grep -Eq -- "$pattern" "$TMP/err" ||
        fail "$what: message '$(cat "$TMP/err")' does not match '$pattern'"
    [ ! -s "$TMP/out.txt" ] || fail "$what: printed $(cat "$TMP/out.txt")"
    assert_eq "$(ls -A "$TMP/out")" "$EXPECT_LEFT" "files left by $what"
    echo "ok $what: $(cat "$TMP/err")"
}
mkdir "$TMP/out"
EXPECT_LEFT=
OUT=$TMP/out/b.db
expect_refusal 2 'required' "no arguments"
expect_refusal 2 'required' "no --out" --db "$DB"
expect_refusal 2 'required' "no --db" --out "$OUT"
expect_refusal 2 'required' "a stray argument" --db "$DB" --out "$OUT" x
expect_refusal 2 '--db needs a value' "--db without a value" --db
expect_refusal 2 'unknown option --frob' "unknown option" --frob
expect_refusal 1 "$TMP/none.db: No such file" "missing database" \
    --db "$TMP/none.db" --out "$OUT"
head -c 8192 /dev/urandom > "$TMP/random.db"
expect_refusal 1 "$TMP/random.db: not a Sextant database" "random bytes" \
    --db "$TMP/random.db" --out "$OUT"
sqlite3 "$TMP/plain.db" "CREATE TABLE t (x)"
expect_refusal 1 "$TMP/plain.db: not a Sextant database \(user_version 0\)" \
    "an SQLite file of another program" --db "$TMP/plain.db" --out "$OUT"
expect_refusal 1 "$TMP/out: not a Sextant database" "a folder" \
    --db "$TMP/out" --out "$OUT"
expect_refusal 1 "$TMP/nodir/b.db: cannot create a temporary file" \
    "--out in a missing folder" --db "$COPY" --out "$TMP/nodir/b.db"
# A file size limit fails the copy half-way: the temporary file and its
# journal go, FILE never appears. (The source is a copy: those are not in
# WAL mode, so opening it writes no 32 KiB -shm file under the limit.)
SRC=$TMP/src.db
"$COLLECTOR" backup --db "$DB" --out "$SRC" > /dev/null
[ "$(stat -c %s "$SRC")" -gt 32768 ] || fail "$SRC too small for ulimit -f 16"
( ulimit -f 16; expect_refusal 1 "$SRC -> $OUT: copy failed" \
    "a write over ulimit -f" --db "$SRC" --out "$OUT" ) || exit 1

# An existing FILE is never overwritten.
echo "keep me" > "$OUT"
EXPECT_LEFT=b.db
expect_refusal 1 "$OUT: exists; not overwriting it" "an existing --out" \
    --db "$COPY" --out "$OUT"
assert_eq "$(cat "$OUT")" "keep me" "the existing file"

# Help.
"$COLLECTOR" backup --help | grep -qF -- '(--db PATH | --config FILE) --out FILE' ||
    fail "backup --help"
"$COLLECTOR" --help | grep -q 'sextant-collector backup' ||
    fail "--help does not mention backup"
echo "collector_backup: all passed"
