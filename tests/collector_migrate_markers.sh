# collector_migrate_markers.sh -- schema 7 keeps operator events that are
# not failovers apart: before it, every `sextant-agent event` was stored
# with kind "failover" whatever its --kind. (a) A schema 6 database holding
# a deploy and a drill stored as failovers, beside a manual failover,
# comes out of migration 7 with the deploy and the drill as kind "marker"
# and the manual one still a failover; the API shows them so. (b) A
# schema 5 database whose move into schema 6's rows (store_compact.c) was
# stopped mid-way by a schema 6 collector, with a deploy already moved:
# migration 7 sees only the old table, and the end of the move reclassifies
# the rows it moved before (store_compact.c's last transaction).
. "$(dirname "$0")/lib.sh"

FX=$SEXTANT_SRC/tests/fixtures/store-v5
. "$FX/zoo.sh"

# kind_of DB KIND: the stored kind of the operator event whose data.kind
# is KIND.
kind_of() {
    sqlite3 "$1" "SELECT group_concat(DISTINCT k.name) FROM events e
        JOIN kinds k ON k.id = e.kind_id
        WHERE json_valid(e.data) AND json_extract(e.data, '\$.kind') = '$2'"
}

# as_schema6 DB: takes a schema 9 database back to what a schema 6
# collector left: without migration 7's, 8's and 9's tables and columns,
# kind "marker" or version.
as_schema6() {
    sqlite3 "$1" "DROP TABLE agent_offsets; DROP TABLE incidents;
        DROP TABLE annotations; DROP TABLE target_now;
        ALTER TABLE agents DROP COLUMN spool_events;
        ALTER TABLE agents DROP COLUMN spool_bytes;
        ALTER TABLE agents DROP COLUMN drop_report_ms;
        DELETE FROM kinds WHERE name = 'marker'
            AND id NOT IN (SELECT kind_id FROM events);
        PRAGMA user_version = 6;"
}

# operator_events DB TABLE ID0: a deploy and a drill as a schema 6
# collector stored them (kind failover), into TABLE, ids from ID0 on.
operator_events() {
    sqlite3 "$1" "INSERT INTO $2 (id, agent_id, seq, unix_ms,
            recv_delta_ms, kind_id, data)
        SELECT $3 + n, 1, 900000 + n, 1764000000900 + n, 5,
            (SELECT id FROM kinds WHERE name = 'failover'),
            json_object('kind', k, 'from', '', 'to', '', 'text', 'by hand')
        FROM (SELECT 1 AS n, 'deploy' AS k UNION ALL SELECT 2, 'drill')"
}

# --- (a) schema 6 to 7 ---
DB=$TMP/v6.db
sqlite3 "$DB" < "$FX/store.sql"
start_collector "$DB"
stop_collector
as_schema6 "$DB"
operator_events "$DB" events 1000000
assert_eq "$(kind_of "$DB" deploy)" failover "schema 6: a deploy is a failover"
start_collector "$DB"
assert_eq "$(sqlite3 "$DB" 'PRAGMA user_version')" 9 "schema version"
assert_eq "$(kind_of "$DB" deploy)" marker "migrated: the deploy"
assert_eq "$(kind_of "$DB" drill)" marker "migrated: the drill"
assert_eq "$(kind_of "$DB" manual)" failover "migrated: manual failovers"
api_get "api/v1/timeline?from=1764000000000&to=1764000001000&kind=marker" \
    > "$TMP/markers.json"
assert_eq "$(jq -c '[.events[].fields.kind]' "$TMP/markers.json")" \
    '["deploy","drill"]' "the API's markers"
api_get "api/v1/timeline?from=1764000000000&to=1764000001000&kind=failover" \
    > "$TMP/failovers.json"
assert_eq "$(jq -c '[.events[].fields.kind] | unique' "$TMP/failovers.json")" \
    '["manual"]' "the API's failovers"
stop_collector

# --- (b) a move into schema 6 stopped mid-way by a schema 6 collector ---
BIG=$TMP/big.db
zoo_copies "$BIG" 200
export SEXTANT_STORE_MIGRATE_CHUNK=10
NO_WAIT_READY=1 start_collector "$BIG"
wait_for "$TMP/collector.log" 'migrating events to schema 6: [1-9]'
kill -9 "$COLLECTOR_PID"
wait "$COLLECTOR_PID" 2>/dev/null || true
unset SEXTANT_STORE_MIGRATE_CHUNK
assert_eq "$(sqlite3 "$BIG" "SELECT count(*) FROM sqlite_schema
    WHERE name = 'events6'")" 1 \
    "killed before the move ended (else make the copy larger)"
# As a schema 6 collector would have left it: the deploy and the drill
# were moved as failovers, and migration 7 never ran.
as_schema6 "$BIG"
operator_events "$BIG" events6 -10
assert_eq "$(sqlite3 "$BIG" "SELECT count(*) FROM events6 WHERE id < 0")" \
    2 "moved before migration 7"
NO_WAIT_READY=1 start_collector "$BIG"
wait_until 300 "the resumed move ends" \
    has_line "$TMP/collector.log" ', ready$'
stop_collector
assert_eq "$(sqlite3 "$BIG" 'PRAGMA user_version')" 9 "moved: version"
assert_eq "$(kind_of "$BIG" deploy)" marker "moved early: the deploy"
assert_eq "$(kind_of "$BIG" drill)" marker "moved early: the drill"
assert_eq "$(kind_of "$BIG" manual)" failover "moved: manual failovers"
echo "collector_migrate_markers: all passed"
