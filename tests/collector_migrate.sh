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
# Replies in the window are checked against docs/openapi.yaml only after
# it: the migration gives up on a lock held past its busy timeout (5 s),
# and on a loaded machine every process the test starts meanwhile counts.
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
# The API says so too, rather than failing a query on a half-migrated
# file (and logging an error for each).
code=$(curl -sS -o "$TMP/tl.json" -w '%{http_code}' \
       "$URL/api/v1/timeline?from=0&to=1")
assert_eq "$code" 503 "the timeline while migrating"
jq -e '.detail | test("migrating")' "$TMP/tl.json" > /dev/null \
    || fail "the timeline while migrating: $(cat "$TMP/tl.json")"

release_write_lock
api_valid GET /readyz 503 "$TMP/body"
api_valid GET "/api/v1/timeline?from=0&to=1" 503 "$TMP/tl.json"
wait_for "$TMP/collector.log" ', ready$'
assert_eq "$(curl -sS -o /dev/null -w '%{http_code}' "$URL/readyz")" 200 \
    "/readyz once migrated"
assert_eq "$(sqlite3 "$DB" 'PRAGMA user_version')" 9 "schema version"
assert_eq "$("$INGEST_CLIENT" --url "$URL/v1/ingest" --token "$TOKEN" \
             --seq 1-3)" "200 3" "the batch, retried"
assert_eq "$(sqlite3 "$DB" 'SELECT count(*) FROM events')" 3 "stored once"
stop_collector
echo "collector_migrate: all passed"
