# lib.sh -- shared helpers for the end-to-end test scripts: a temp folder,
# servers started on free loopback ports, and cleanup that stops every
# process a test started, also when the test fails.
set -euo pipefail

: "${SEXTANT_BIN:?run through ctest}"
COLLECTOR=$SEXTANT_BIN/collector/sextant-collector
AGENT=$SEXTANT_BIN/agent/sextant-agent
TMP=$(mktemp -d)
PIDS=()
TOKEN=test-token-0123456789
OTHER_TOKEN=other-token-0123456789

# Stops every process the test started, checks the replies api_valid
# queued, and removes $TMP; a reply that does not match docs/openapi.yaml
# fails the test here, whatever its status was.
cleanup() {
    local p ok=1
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ ! -s "$TMP/openapi/list" ] || openapi_flush || ok=0
    pg_drop_all
    rm -rf "$TMP"
    [ "$ok" = 1 ] || exit 1
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    for f in "$TMP"/*.log; do
        [ -e "$f" ] && { echo "--- $f" >&2; tail -n 30 "$f" >&2; }
    done
    exit 1
}

# now_ms: wall clock, for deadlines and elapsed times.
now_ms() {
    echo $(( $(date +%s%N) / 1000000 ))
}

# wait_until SECONDS WHAT CMD...: runs CMD every 0.1 s until it succeeds;
# fails the test with WHAT after SECONDS. Tests wait for conditions, never
# for a time, and give them 30 s or more: it costs nothing when the
# condition comes early, and a loaded 2-core machine under ASan is slow.
wait_until() {
    local secs=$1 what=$2 deadline
    shift 2
    deadline=$(( $(now_ms) + secs * 1000 ))
    until "$@"; do
        [ "$(now_ms)" -lt "$deadline" ] || fail "after ${secs} s: $what"
        sleep 0.1
    done
}

# wait_for FILE PATTERN: until a line matching PATTERN shows up (30 s).
wait_for() {
    wait_until 30 "no line matching '$2' in $1" has_line "$1" "$2"
}
has_line() {
    grep -q -- "$2" "$1" 2>/dev/null
}

# tcp_count PID STATE [LPORT] [RPORT]: TCP sockets the process owns in
# STATE (as /proc/net/tcp spells it: 0A listen, 01 established), with that
# local and remote port when given. Read from /proc: a test can see that a
# server accepted a connection, or a client holds one open.
tcp_count() {
    local inodes lp=${3:+$(printf '%04X' "$3")} rp=${4:+$(printf '%04X' "$4")}
    inodes=$(ls -l "/proc/$1/fd" 2>/dev/null |
             sed -n 's/.*socket:\[\([0-9]*\)\]$/\1/p' | tr '\n' ' ')
    awk -v list="$inodes" -v st="$2" -v lp="$lp" -v rp="$rp" '
        BEGIN { n = split(list, a, " "); for (i = 1; i <= n; i++) s[a[i]] = 1 }
        FNR > 1 && $4 == st && ($10 in s) &&
        (lp == "" || substr($2, index($2, ":") + 1) == lp) &&
        (rp == "" || substr($3, index($3, ":") + 1) == rp) { c++ }
        END { print c + 0 }' /proc/net/tcp /proc/net/tcp6
}

# start_target [ARGS]: a local HTTP target on a free port; sets TARGET_PORT.
start_target() {
    local out=$TMP/target.$RANDOM.port
    "$HTTP_TARGET" "$@" > "$out" &
    PIDS+=($!)
    wait_for "$out" '^[0-9]'
    TARGET_PORT=$(head -n1 "$out")
}

# write_collector_config FILE: clusters "test" and "other" with their tokens.
write_collector_config() {
    cat > "$1" <<YAML
listen: 127.0.0.1:0
db: $TMP/unused.db
clusters:
  - name: test
    token: $TOKEN
  - name: other
    token: $OTHER_TOKEN
YAML
}

# write_collector_config_no_timeouts FILE: the same with the idle and
# request timeouts far past any test, for tests where a connection that
# hangs or is held must not end by itself.
write_collector_config_no_timeouts() {
    write_collector_config "$1"
    printf 'limits:\n  connection_timeout: 1h\n  request_timeout: 1h\n' >> "$1"
}

# write_collector_config_keep FILE: the default config, its first
# retention pass a day after start: for tests whose events are dated long
# ago (2000, 2025), which the default pass (60 s after start, 14 d of
# events kept) would delete under them on a machine slow enough to take
# that long. What the queries answer is as with the defaults.
write_collector_config_keep() {
    write_collector_config "$1"
    printf 'retention:\n  interval: 1d\n' >> "$1"
}

# PostgreSQL mode: SEXTANT_TEST_PG_DIR names the server of this ctest
# run (the NAME@pg tests of tests/pg.cmake; tests/pg_server.sh). Each
# database path the test gives start_collector is then a database of its
# own on that server, made the first time the test names the path (a
# restart on the same path finds the same rows), dropped at cleanup.
PG_DIR=${SEXTANT_TEST_PG_DIR:-}
PG_SERVER=$(dirname "${BASH_SOURCE[0]}")/pg_server.sh

# on_pg: true in PostgreSQL mode. A step that reads the SQLite file
# itself (or a read-only command on it) runs only when ! on_pg.
on_pg() {
    [ -n "$PG_DIR" ]
}

# pg_conninfo DB: the conninfo of DB's database, made on first use. Its
# name comes from $TMP (one per test run) and DB, hashed: lower case, no
# quoting needed, within PostgreSQL's 63 bytes.
pg_conninfo() {
    local key f
    key=$(printf '%s\n%s' "$TMP" "$1" | sha256sum | cut -c1-20)
    f=$TMP/pg.$key
    if [ ! -s "$f" ]; then
        bash "$PG_SERVER" createdb "$PG_DIR" "sxt_$key" > "$f.new" ||
            fail "cannot make a database for $1 on $PG_DIR"
        mv "$f.new" "$f"
        echo "sxt_$key" >> "$TMP/pg.names"
    fi
    cat "$f"
}

# pg_drop_all: drops the databases this test made (cleanup; a collector
# killed a moment ago may still hold a session: FORCE ends it).
pg_drop_all() {
    local name
    [ -s "$TMP/pg.names" ] || return 0
    while read -r name; do
        psql -X -q "$(cat "$PG_DIR/conninfo") dbname=postgres" \
            -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" \
            > /dev/null 2>&1 || true
    done < "$TMP/pg.names"
}

# pg_store_config CFG DB: CFG's store is DB's database (replacing the
# block an earlier call wrote, e.g. for another DB path).
pg_store_config() {
    local cfg=$1 info
    info=$(pg_conninfo "$2") || exit 1
    sed -i '/^# lib.sh: PostgreSQL mode {$/,/^# lib.sh: }$/d' "$cfg"
    cat >> "$cfg" <<YAML
# lib.sh: PostgreSQL mode {
store:
  backend: postgres
  postgres:
    conninfo: "$info"
# lib.sh: }
YAML
}

# store_args DB: sets STORE_ARGS to what points a command (timeline,
# incidents) at DB's store: --db DB, or in PostgreSQL mode --config of a
# config whose store: is DB's database (made on first use).
store_args() {
    if on_pg; then
        local cfg
        cfg=$TMP/store.$(printf '%s' "$1" | sha256sum | cut -c1-12).yaml
        write_collector_config "$cfg"
        pg_store_config "$cfg" "$1"
        STORE_ARGS=(--config "$cfg")
    else
        STORE_ARGS=(--db "$1")
    fi
}

# db_sql DB SQL [PG_SQL]: runs SQL on DB's rows (the SQLite file), or in
# PostgreSQL mode PG_SQL (default: SQL, when it means the same in both
# dialects) on DB's database; one row a line, columns split by '|', NULL
# empty. On PostgreSQL the session has a view events_full for the tests,
# like SQLite's (kind and target by name, recv_ms, data: the JSON of a
# kind other than probe; a probe's fields are its columns, not rendered).
db_sql() {
    db_sql_sep '|' "$@"
}
# db_sql_sep SEP DB SQL [PG_SQL]: db_sql with columns split by SEP.
db_sql_sep() {
    local sep=$1 view=
    shift
    if on_pg; then
        case ${3:-$2} in *events_full*) view=$PG_EVENTS_FULL ;; esac
        psql -X -q -At -F "$sep" -v ON_ERROR_STOP=1 "$(pg_conninfo "$1")" \
            ${view:+-c "$view"} -c "${3:-$2}"
    else
        sqlite3 -cmd '.timeout 10000' -separator "$sep" "$1" "$2"
    fi
}
PG_EVENTS_FULL="CREATE TEMP VIEW events_full AS SELECT e.id, e.agent_id,
  e.seq, e.unix_ms, e.unix_ms + e.recv_delta_ms AS recv_ms, k.name AS kind,
  tg.name AS target, e.data, x.text, e.probe_type, e.ok, e.status,
  e.total_us FROM events e JOIN kinds k ON k.id = e.kind_id
  LEFT JOIN targets tg ON tg.id = e.target_id
  LEFT JOIN texts x ON x.id = e.text_id"

# db_events_count DB [WHERE]: how many event rows DB holds (that match
# WHERE, a condition on the events table's columns common to both).
db_events_count() {
    db_sql "$1" "SELECT count(*) FROM events${2:+ WHERE $2}"
}

# db_engine_fed DB: the incident engine has read every event DB holds.
# Always on SQLite (the writer feeds it in each commit); on PostgreSQL
# the leader feeds it every tick up to its fence (engine_cursor).
db_engine_fed() {
    on_pg || return 0
    [ "$(db_sql "$1" "SELECT (coalesce((SELECT max(id) FROM events), 0)
        <= coalesce((SELECT event_id FROM engine_cursor), 0))::int")" = 1 ]
}

# start_collector DB [ARGS]: sets COLLECTOR_PID, COLLECTOR_PORT and URL.
# Its config is $TMP/collector.yaml and its log $TMP/collector.log, or
# COLLECTOR_CONFIG and COLLECTOR_LOG for a test that runs two at once.
# In PostgreSQL mode (on_pg) the config gets a store: block for DB's
# database (DB, a file path, names it; nothing is written there).
start_collector() {
    local db=$1 cfg=${COLLECTOR_CONFIG:-$TMP/collector.yaml}
    local log=${COLLECTOR_LOG:-$TMP/collector.log}
    shift
    [ -e "$cfg" ] || write_collector_config "$cfg"
    ! on_pg || pg_store_config "$cfg" "$db"
    : > "$log"
    "$COLLECTOR" --config "$cfg" --listen 127.0.0.1:0 \
        --db "$db" "$@" 2> "$log" &
    COLLECTOR_PID=$!
    PIDS+=($COLLECTOR_PID)
    wait_for "$log" 'listening on'
    COLLECTOR_PORT=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' \
                     "$log" | head -n1)
    URL=http://127.0.0.1:$COLLECTOR_PORT
    # The store migrates after the server starts (/readyz is 503 until
    # then); NO_WAIT_READY=1 skips this for tests of that window.
    [ -n "${NO_WAIT_READY:-}" ] || wait_for "$log" ', ready$'
}

# make_v1_db FILE: an empty collector database as schema version 1 made
# it, for migration tests.
make_v1_db() {
    sqlite3 "$1" <<'SQL'
CREATE TABLE agents (id INTEGER PRIMARY KEY, cluster TEXT NOT NULL,
  region TEXT NOT NULL, node TEXT NOT NULL, epoch INTEGER NOT NULL,
  acked_seq INTEGER NOT NULL DEFAULT 0,
  agent_version TEXT NOT NULL DEFAULT '', first_seen_ms INTEGER NOT NULL,
  last_seen_ms INTEGER NOT NULL, UNIQUE (cluster, node, epoch));
CREATE TABLE events (id INTEGER PRIMARY KEY,
  agent_id INTEGER NOT NULL REFERENCES agents(id), seq INTEGER,
  unix_ms INTEGER NOT NULL, recv_ms INTEGER NOT NULL, kind TEXT NOT NULL,
  target TEXT, data TEXT NOT NULL, UNIQUE (agent_id, seq));
CREATE INDEX events_time ON events (unix_ms);
PRAGMA user_version = 1;
SQL
}

# hold_write_lock DB: another connection takes DB's write lock and keeps
# it (sqlite3 reads its commands from a FIFO held open on fd 3) until
# release_write_lock.
hold_write_lock() {
    mkfifo "$TMP/sql"
    sqlite3 "$1" < "$TMP/sql" > "$TMP/sqlite.log" 2>&1 &
    PIDS+=($!)
    exec 3> "$TMP/sql"
    printf '.timeout 30000\nBEGIN IMMEDIATE;\nSELECT "locked";\n' >&3
    wait_for "$TMP/sqlite.log" locked
}
release_write_lock() {
    printf 'COMMIT;\n.quit\n' >&3
    exec 3>&-
}

# stop_collector: SIGTERM and wait; fails if it does not exit 0.
stop_collector() {
    kill -TERM "$COLLECTOR_PID"
    wait "$COLLECTOR_PID" || fail "collector exited with $?"
}

# db_digest DB: a fingerprint of every row, to assert "nothing changed"
# (in PostgreSQL mode: every row of every table, in order).
db_digest() {
    if on_pg; then
        pg_dump_rows "$(pg_conninfo "$1")" | sha256sum | cut -d' ' -f1
    else
        sqlite3 "$1" .dump | sha256sum | cut -d' ' -f1
    fi
}

# pg_dump_rows CONNINFO: each table of the public schema (partitions as
# their parent shows them), its name and rows in a fixed order.
pg_dump_rows() {
    local t
    for t in $(psql -X -At "$1" -c "SELECT c.relname FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
              AND NOT c.relispartition ORDER BY 1"); do
        echo "== $t"
        psql -X -At "$1" -c "SELECT x::text FROM $t x ORDER BY 1"
    done
}

# assert_eq GOT WANT WHAT
assert_eq() {
    [ "$1" = "$2" ] || fail "$3: got '$1', want '$2'"
}

# json_ok FILE WHAT: fails unless FILE is one JSON text in strict UTF-8
# (jq alone turns bad bytes into U+FFFD, so iconv checks them first).
json_ok() {
    iconv -f UTF-8 -t UTF-8 < "$1" > /dev/null 2>&1 ||
        fail "$2: reply is not UTF-8: $(head -c 300 "$1" | od -c | head -n 5)"
    jq empty < "$1" > /dev/null 2>&1 ||
        fail "$2: reply is not JSON: $(head -c 300 "$1")"
}

# openapi_tools: fails the test, saying what to run, unless node and the
# document checker's modules are there (scripts/test.sh installs them;
# CI has them): a test never skips checking its replies.
openapi_tools() {
    command -v node > /dev/null ||
        fail "node is not installed: run scripts/deps.sh"
    [ -d "$SEXTANT_SRC/tests/openapi/node_modules/ajv" ] ||
        fail "tests/openapi/node_modules is missing: run" \
             "'npm ci --prefix tests/openapi' (scripts/test.sh does)"
}

# api_valid METHOD PATH STATUS FILE [CONTENT_TYPE]: FILE, the body of the
# reply STATUS to METHOD PATH (the path as sent, query included, escaped
# or not), must be what docs/openapi.yaml says that reply is
# (tests/openapi/check.mjs). Every test that calls the API calls this
# after each request (api_code, api_get and api_fetch do). The reply is
# queued (a copy of the body, once per distinct body) and checked when
# the test ends, by one node process: one per request would cost the
# tests minutes. openapi_flush checks the queue at once.
api_valid() {
    local q=$TMP/openapi sum
    openapi_tools
    [ -d "$q" ] || mkdir -p "$q"    # a process per request adds up
    sum=$(sha256sum < "$4")
    sum=${sum%% *}
    [ -e "$q/$sum" ] || cp "$4" "$q/$sum"
    # One line: METHOD STATUS FILE TYPE PATH, tab-separated (PATH, last,
    # is the only one a test writes freely; it never holds a tab).
    printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$3" "$q/$sum" "${5:-}" "$2" \
        >> "$q/list"
}

# openapi_flush: checks the replies queued so far; fails the test, naming
# each that does not match the document.
openapi_flush() {
    [ -s "$TMP/openapi/list" ] || return 0
    node "$SEXTANT_SRC/tests/openapi/check.mjs" --queue "$TMP/openapi/list" \
        > "$TMP/openapi/out" 2>&1 || {
        echo "FAIL: replies that do not match docs/openapi.yaml:" >&2
        cat "$TMP/openapi/out" >&2
        return 1
    }
    : > "$TMP/openapi/list"
}

# reply_type HEADERS: the Content-Type (without parameters) of the last
# reply in HEADERS, a header dump (curl -D).
reply_type() {
    tr -d '\r' < "$1" |
        sed -n 's/^[Cc][Oo][Nn][Tt][Ee][Nn][Tt]-[Tt][Yy][Pp][Ee]: *//p' |
        tail -n 1 | cut -d';' -f1
}

# api_check_curl STATUS FILE CURL_ARGS...: api_valid for the reply STATUS
# that curl, run with CURL_ARGS (the method from -X, default GET; the URL
# the one under $URL), wrote into FILE (its header dump, if any, in
# FILE.headers gives the Content-Type).
api_check_curl() {
    local status=$1 file=$2 method=GET path= arg prev= type=
    shift 2
    for arg in "$@"; do
        [ "$prev" = -X ] && method=$arg
        case $arg in "$URL"/*) path=${arg#"$URL"} ;; esac
        prev=$arg
    done
    [ -n "$path" ] || fail "api_check_curl: no URL under $URL in: $*"
    [ -e "$file.headers" ] && type=$(reply_type "$file.headers")
    api_valid "$method" "$path" "$status" "$file" $type
}

# api_fetch FILE PATH [CURL_ARGS...]: requests $URL$PATH (PATH starts
# with /; CURL_ARGS may set the method with -X, add headers or a body)
# into FILE (its headers into FILE.headers), checks the reply against
# docs/openapi.yaml whatever its status, and prints the status.
api_fetch() {
    local file=$1 path=$2 code
    shift 2
    code=$(curl -sS -o "$file" -D "$file.headers" -w '%{http_code}' \
           "$@" "$URL$path") || fail "$path: curl failed"
    api_check_curl "$code" "$file" "$@" "$URL$path"
    echo "$code"
}

# timeline_page REPLY ROW FILE: appends to FILE a line per event of REPLY,
# a page of GET /api/v1/timeline, as the jq expression ROW writes it, and
# prints the page's next cursor (nothing on the last page): one jq a
# page, not one for the rows and one for the cursor.
timeline_page() {
    local out
    out=$(jq -r "(.events[] | $2), \"next \\(.next // \"\")\"" <<< "$1") ||
        fail "not a timeline page: ${1:0:300}"
    [ "$out" = "${out##*$'\n'}" ] || echo "${out%$'\n'*}" >> "$3"
    out=${out##*$'\n'}
    echo "${out#next }"
}

# api_code PATH?QUERY: GETs $URL/PATH?QUERY (already escaped), prints the
# HTTP status and leaves the body in $TMP/body; fails unless the body is
# JSON and the reply what docs/openapi.yaml says, whatever the status.
# API_CURL_ARGS (an array, empty by default): more curl arguments, e.g.
# a token's -H "Authorization: Bearer ...".
API_CURL_ARGS=()
api_code() {
    local code
    code=$(curl -sS -o "$TMP/body" -w '%{http_code}' "${API_CURL_ARGS[@]}" \
           "$URL/$1") ||
        fail "GET /$1: curl failed"
    json_ok "$TMP/body" "GET /$1"
    api_valid GET "/$1" "$code" "$TMP/body"
    echo "$code"
}

# api_get PATH?QUERY: prints the body of a GET that must answer 200 JSON.
api_get() {
    local code
    code=$(api_code "$1") || exit 1
    [ "$code" = 200 ] || fail "GET /$1: status $code: $(cat "$TMP/body")"
    cat "$TMP/body"
}
