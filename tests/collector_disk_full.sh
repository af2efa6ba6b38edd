# collector_disk_full.sh -- the database on a small tmpfs that fills up:
# while group commits fail, /readyz is 503 "commits failing: ..." and
# sextant_collector_commits_failing is 1; once space is back, both
# recover by themselves with no batch sent (the writer's probe commit: an
# unready collector behind a readiness probe gets no ingest), and the
# batch is stored when sent again. Needs root (a mount); skips with 77
# otherwise.
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ]; then
    echo "SKIP: collector_disk_full needs root to mount a tmpfs"
    exit 77
fi
MNT=$TMP/mnt
mkdir "$MNT"
mount -t tmpfs -o size=8m tmpfs "$MNT" ||
    { echo "SKIP: cannot mount a tmpfs here"; exit 77; }
# The collector must be gone before the unmount, and the unmount done
# before lib.sh's cleanup removes $TMP: also when the test fails.
trap 'for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
      wait 2>/dev/null || true; umount "$MNT" 2>/dev/null || true; cleanup' EXIT

DB=$MNT/c.db
start_collector "$DB"
SEQ=0
# batch: the next 50 events with 4 KiB of error text each, the same seqs
# again after a failure (as an agent retries); prints "STATUS ...".
batch() {
    "$INGEST_CLIENT" --url "$URL/v1/ingest" --token "$TOKEN" \
        --seq $((SEQ + 1))-$((SEQ + 50)) --error-len 4096
}
metric() {
    curl -sf "$URL/metrics" | sed -n "s/^$1 //p"
}
out=$(batch)
assert_eq "${out%% *}" 200 "a batch while there is room"
SEQ=$((SEQ + 50))
assert_eq "$(metric sextant_collector_commits_failing)" 0 "metric before"

# Fill the file system, then drive batches until one fails (the WAL may
# still have room for a few), bounded.
dd if=/dev/zero of="$MNT/filler" bs=64k status=none 2> /dev/null || true
for i in $(seq 1 200); do
    out=$(batch)
    [ "${out%% *}" = 200 ] || break
    SEQ=$((SEQ + 50))
done
assert_eq "${out%% *}" 503 "ingest on a full disk"
api_fetch "$TMP/r.json" /readyz > "$TMP/code"
assert_eq "$(cat "$TMP/code")" 503 "/readyz while commits fail"
jq -e '.detail | startswith("commits failing: ") and contains("full")' \
    "$TMP/r.json" > /dev/null || fail "/readyz says $(cat "$TMP/r.json")"
assert_eq "$(metric sextant_collector_commits_failing)" 1 "metric while full"
assert_eq "$(metric sextant_collector_ready)" 0 "ready metric while full"
echo "ok disk full: $(jq -r .detail "$TMP/r.json")"

# Space is back: with no ingest at all, ready again (60 s at most).
rm "$MNT/filler"
deadline=$((SECONDS + 60))
while code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/readyz")
      [ "$code" != 200 ] && [ $SECONDS -lt $deadline ]
do
    sleep 0.1
done
assert_eq "$code" 200 "/readyz once space is back, with no batch sent"
assert_eq "$(metric sextant_collector_commits_failing)" 0 "metric after"
assert_eq "$(metric sextant_collector_ready)" 1 "ready metric after"
# The batch the agent still holds is stored when it comes again.
out=$(batch)
assert_eq "$out" "200 $((SEQ + 50))" "the batch once space is back"
assert_eq "$(sqlite3 "$DB" 'SELECT max(seq) FROM events')" "$((SEQ + 50))" \
    "the batch is stored"
stop_collector
echo "collector_disk_full: all passed"
