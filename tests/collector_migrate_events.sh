# collector_migrate_events.sh -- schema 6 keeps probe results in typed
# columns. (a) A schema 5 database holding every kind of event and every
# probe field at its edges (tests/fixtures/store-v5/store.sql, which the
# schema 5 collector filled through real ingest, see the README there) is
# migrated in place, and the API answers every query with the very bytes
# the schema 5 collector answered (tests/fixtures/store-v5/NN.json); the
# events_full view renders every row as before. (c) The same batches
# ingested by this collector into a new database give the same answers
# (but for the receive time): the insert path writes the typed columns
# for every kind and field as the migration does. (b) A larger copy is
# migrated in small chunks (SEXTANT_STORE_MIGRATE_CHUNK, read by the store
# for tests only), killed with -9 mid-way and started again: the
# migration resumes where it stopped and every event is there once,
# rendered as before.
. "$(dirname "$0")/lib.sh"

FX=$SEXTANT_SRC/tests/fixtures/store-v5

. "$FX/zoo.sh"

# same_answers WHAT [JQ]: every query of the fixture answers what schema 5
# answered, byte for byte (after the jq filter JQ on both, if given).
same_answers() {
    local n q
    while read -r n q; do
        # Schema 5 had no cursor: its replies lack the "next" a timeline
        # now ends with; all else is compared byte for byte.
        api_get "api/v1/$q" |
            sed -E 's/,"next":(null|"[^"]*")\}$/}/' > "$TMP/got.json"
        if [ -n "${2:-}" ]; then
            jq -c "$2" "$TMP/got.json" > "$TMP/got.f"
            jq -c "$2" "$FX/$n.json" > "$TMP/want.f"
        else
            cp "$TMP/got.json" "$TMP/got.f"
            cp "$FX/$n.json" "$TMP/want.f"
        fi
        cmp -s "$TMP/got.f" "$TMP/want.f" || {
            diff <(jq -S . "$TMP/want.f") <(jq -S . "$TMP/got.f") |
                head -n 20 >&2
            fail "$1: GET $q: not the answer schema 5 gave ($n.json)"
        }
    done < "$FX/queries.txt"
}
FULL="SELECT id, agent_id, seq, unix_ms, recv_ms, kind, target, data
      FROM events_full ORDER BY id"

# --- (a) the answers schema 5 gave ---
DB=$TMP/v5.db
sqlite3 "$DB" < "$FX/store.sql"
assert_eq "$(sqlite3 "$DB" 'PRAGMA user_version')" 5 "the fixture's schema"
sqlite3 "$DB" "$FULL" > "$TMP/full.before"
write_collector_config_keep "$TMP/collector.yaml"
start_collector "$DB"
assert_eq "$(sqlite3 "$DB" 'PRAGMA user_version')" 9 "schema version"
same_answers "migrated"
sqlite3 "$DB" "$FULL" > "$TMP/full.after"
cmp -s "$TMP/full.before" "$TMP/full.after" ||
    fail "events_full renders rows differently after the migration"
# Probes went to the typed columns, but those the columns cannot hold as
# they are (a timing past INT64_MAX; a served_by with a control character,
# which SQLite would escape otherwise than the collector did): 2 in each
# of the fixture's 3 batches of every kind.
assert_eq "$(sqlite3 "$DB" "SELECT count(*) FROM events e
    JOIN kinds k ON k.id = e.kind_id
    WHERE k.name = 'probe' AND e.data IS NOT NULL")" 6 "probes kept as JSON"
assert_eq "$(sqlite3 "$DB" "SELECT count(*) FROM events e
    JOIN kinds k ON k.id = e.kind_id
    WHERE k.name <> 'probe' AND e.data IS NULL")" 0 "other kinds keep JSON"
# The store goes on as before: a new batch is stored and shown.
assert_eq "$("$INGEST_CLIENT" --url "$URL/v1/ingest" --token "$TOKEN" \
             --node after --seq 1-3 --t0 1764000000500 --target after-t)" \
    "200 3" "ingest"
api_get "api/v1/timeline?from=1764000000500&to=1764000000600&target=after-t" \
    > "$TMP/after.json"
[ "$(jq '.count' "$TMP/after.json")" = 3 ] ||
    fail "new events after the migration: $(cat "$TMP/after.json")"
stop_collector

# --- (c) the same events ingested by this collector: the same answers
# but for the receive time (now, not when the fixture was made). ---
rm -f "$TMP"/fresh.db*
start_collector "$TMP/fresh.db"
zoo_ingest "$URL"
same_answers "ingested" 'del(.events[]?.received_ms)'
assert_eq "$(sqlite3 "$TMP/fresh.db" "SELECT count(*) FROM events e
    JOIN kinds k ON k.id = e.kind_id
    WHERE k.name = 'probe' AND e.data IS NOT NULL")" 6 "probes as JSON"
stop_collector

# --- (b) kill -9 mid-way, then resume ---
BIG=$TMP/big.db
zoo_copies "$BIG" 500                   # 40,000 rows
N=$(sqlite3 "$BIG" 'SELECT count(*) FROM events')
sqlite3 "$BIG" "$FULL" | sha256sum > "$TMP/big.before"
export SEXTANT_STORE_MIGRATE_CHUNK=10    # 4,000 chunks: long enough to kill
NO_WAIT_READY=1 start_collector "$BIG"
wait_for "$TMP/collector.log" 'migrating events to schema 6: [1-9]'
kill -9 "$COLLECTOR_PID"
wait "$COLLECTOR_PID" 2>/dev/null || true
assert_eq "$(sqlite3 "$BIG" 'SELECT count(*) FROM sqlite_schema
    WHERE name = '"'"'events6'"'"'')" 1 \
    "killed before the migration ended (else make the copy larger)"
# Version 6 from the migration's first step: a schema 5 collector refuses
# a file whose events are half moved.
assert_eq "$(sqlite3 "$BIG" 'PRAGMA user_version')" 9 "version mid-way"
unset SEXTANT_STORE_MIGRATE_CHUNK
NO_WAIT_READY=1 start_collector "$BIG"
# The rest in one chunk of the default size: generous, for a loaded
# machine under ASan.
wait_until 300 "the resumed migration ends" \
    has_line "$TMP/collector.log" ', ready$'
grep -q 'migrating events to schema 6: resuming after id [1-9]' \
    "$TMP/collector.log" || fail "the migration started over"
stop_collector
assert_eq "$(sqlite3 "$BIG" 'PRAGMA user_version')" 9 "schema version"
assert_eq "$(sqlite3 "$BIG" 'SELECT count(*) FROM events')" "$N" "events"
assert_eq "$(sqlite3 "$BIG" 'SELECT count(*) FROM sqlite_schema
    WHERE name = '"'"'events6'"'"'')" 0 "the migration's table is gone"
assert_eq "$(sqlite3 "$BIG" "$FULL" | sha256sum)" "$(cat "$TMP/big.before")" \
    "every event once, rendered as before"
# --- (d) a damaged row does not stop the migration ---
# A probe row whose fields are not JSON at all (a hand edit, a damaged
# page SQLite did not notice): SQLite's JSON functions fail on it, which
# stopped the move at that chunk on every start. It is kept as it is.
BAD=$TMP/bad.db
sqlite3 "$BAD" < "$FX/store.sql"
sqlite3 "$BAD" "INSERT INTO events (agent_id, seq, unix_ms, recv_ms, kind_id,
      target_id, data)
    SELECT agent_id, 1000000, unix_ms, recv_ms, kind_id, target_id, '{not'
    FROM events WHERE kind_id = (SELECT id FROM kinds WHERE name = 'probe')
    LIMIT 1"
n=$(sqlite3 "$BAD" 'SELECT count(*) FROM events')
start_collector "$BAD"
stop_collector
assert_eq "$(sqlite3 "$BAD" 'PRAGMA user_version')" 9 "damaged: version"
assert_eq "$(sqlite3 "$BAD" 'SELECT count(*) FROM events')" "$n" \
    "damaged: every event moved"
assert_eq "$(sqlite3 "$BAD" "SELECT data FROM events WHERE seq = 1000000")" \
    "{not" "damaged: the row keeps its text"
echo "collector_migrate_events: all passed"
