# collector_migrate.sh -- the store migrates after the server is up: until
# it is done, /readyz is 503 saying so (with Retry-After) and ingest is
# 503 "collector busy" (agents back off and retry), nothing is stored;
# then /readyz is 200 and the same batch is stored. Another process holds
# the database's write lock so the migration waits long enough to look.
. "$(dirname "$0")/lib.sh"

DB=$TMP/v1.db
make_v1_db "$DB"
hold_write_lock "$DB"

NO_WAIT_READY=1 start_collector "$DB"
code=$(api_fetch "$TMP/body" /readyz)
cp "$TMP/body.headers" "$TMP/h"
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
# The API says so too, rather than failing a query on a half-migrated
# file (and logging an error for each).
code=$(api_code "api/v1/timeline?from=0&to=1")
assert_eq "$code" 503 "the timeline while migrating"
jq -e '.detail | test("migrating")' "$TMP/body" > /dev/null \
    || fail "the timeline while migrating: $(cat "$TMP/body")"

release_write_lock
wait_for "$TMP/collector.log" ', ready$'
assert_eq "$(curl -sS -o /dev/null -w '%{http_code}' "$URL/readyz")" 200 \
    "/readyz once migrated"
assert_eq "$(sqlite3 "$DB" 'PRAGMA user_version')" 7 "schema version"
assert_eq "$("$INGEST_CLIENT" --url "$URL/v1/ingest" --token "$TOKEN" \
             --seq 1-3)" "200 3" "the batch, retried"
assert_eq "$(sqlite3 "$DB" 'SELECT count(*) FROM events')" 3 "stored once"
stop_collector
echo "collector_migrate: all passed"
