# collector_migrate.sh -- the store migrates after the server is up: until
# it is done, /readyz is 503 saying so (with Retry-After) and ingest is
# 503 "collector busy" (agents back off and retry), nothing is stored;
# then /readyz is 200 and the same batch is stored. Another process holds
# the database's write lock so the migration waits long enough to look.
. "$(dirname "$0")/lib.sh"

DB=$TMP/v1.db
sqlite3 "$DB" <<'SQL'
CREATE TABLE agents (id INTEGER PRIMARY KEY, cluster TEXT NOT NULL,
  region TEXT NOT NULL, node TEXT NOT NULL, epoch INTEGER NOT NULL,
  acked_seq INTEGER NOT NULL DEFAULT 0,
  agent_version TEXT NOT NULL DEFAULT '', first_seen_ms INTEGER NOT NULL,
  last_seen_ms INTEGER NOT NULL, UNIQUE (cluster, node, epoch));
CREATE TABLE events (id INTEGER PRIMARY KEY,
  agent_id INTEGER NOT NULL REFERENCES agents(id), seq INTEGER,
  unix_ms INTEGER NOT NULL, recv_ms INTEGER NOT NULL, kind TEXT NOT NULL,
  target TEXT, data TEXT NOT NULL, UNIQUE (agent_id, seq));
PRAGMA user_version = 1;
SQL

# Hold the write lock: sqlite3 reads its commands from a FIFO kept open.
mkfifo "$TMP/sql"
sqlite3 "$DB" < "$TMP/sql" > "$TMP/sqlite.log" 2>&1 &
PIDS+=($!)
exec 3> "$TMP/sql"
printf 'BEGIN IMMEDIATE;\nSELECT "locked";\n' >&3
wait_for "$TMP/sqlite.log" locked

NO_WAIT_READY=1 start_collector "$DB"
code=$(curl -sS -D "$TMP/h" -o "$TMP/body" -w '%{http_code}' "$URL/readyz")
assert_eq "$code" 503 "/readyz while migrating"
grep -qi '^Retry-After: [0-9]' "$TMP/h" || fail "/readyz without Retry-After"
jq -e '.detail | test("migrat")' "$TMP/body" > /dev/null \
    || fail "/readyz does not say it is migrating: $(cat "$TMP/body")"
got=$("$INGEST_CLIENT" --url "$URL/v1/ingest" --token "$TOKEN" --seq 1-3)
case $got in
"503 "*busy*) ;;
*) fail "ingest while migrating: got '$got', want 503 collector busy" ;;
esac
assert_eq "$(curl -sS -o /dev/null -w '%{http_code}' "$URL/healthz")" 200 \
    "/healthz while migrating (the process is alive)"

printf 'COMMIT;\n.quit\n' >&3
exec 3>&-
wait_for "$TMP/collector.log" ', ready$'
assert_eq "$(curl -sS -o /dev/null -w '%{http_code}' "$URL/readyz")" 200 \
    "/readyz once migrated"
assert_eq "$(sqlite3 "$DB" 'PRAGMA user_version')" 4 "schema version"
assert_eq "$("$INGEST_CLIENT" --url "$URL/v1/ingest" --token "$TOKEN" \
             --seq 1-3)" "200 3" "the batch, retried"
assert_eq "$(sqlite3 "$DB" 'SELECT count(*) FROM events')" 3 "stored once"
stop_collector
echo "collector_migrate: all passed"
