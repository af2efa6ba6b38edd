# collector_cli.sh -- command line: --help (also of backup) and --version
# exit 0 with their text on stdout alone, usage errors and bad configs exit
# 2 with one line naming file, line and key; --check-config FILE loads a
# config only (no database, no port); the store commands with a
# PostgreSQL config: backup refused (pg_dump), a bad sslmode refused
# before any connection, an unreachable server exit 1.
. "$(dirname "$0")/lib.sh"

# expect_help WHAT WANT ARGS...: exit 0, stdout has WANT, stderr empty.
expect_help() {
    local what=$1 want=$2 rc=0
    shift 2
    "$COLLECTOR" "$@" > "$TMP/out" 2> "$TMP/err" || rc=$?
    assert_eq "$rc" 0 "exit status for $what"
    grep -q -- "$want" "$TMP/out" || fail "$what: no '$want' in its output"
    [ ! -s "$TMP/err" ] || fail "$what wrote to stderr: $(cat "$TMP/err")"
}
expect_help --help '^usage: sextant-collector --config FILE' --help
expect_help -h '^usage: sextant-collector --config FILE' -h
expect_help "backup --help" '^usage: sextant-collector backup (--db PATH | --config FILE)' \
    backup --help
expect_help "backup -h" '^usage: sextant-collector backup (--db PATH | --config FILE)' \
    backup -h
expect_help "backup --db x --help" '^usage: sextant-collector backup' \
    backup --db "$TMP/none.db" --help
"$COLLECTOR" --version | grep -Eq '^sextant-collector [0-9]+\.' \
    || fail "--version"

# expect_exit2 WHAT ARGS...: exit status 2 and exactly one line on stderr.
expect_exit2() {
    local what=$1; shift
    local rc=0
    "$COLLECTOR" "$@" 2> "$TMP/err" > /dev/null || rc=$?
    assert_eq "$rc" 2 "exit status for $what"
    assert_eq "$(wc -l < "$TMP/err")" 1 "stderr lines for $what"
    echo "ok $what: $(cat "$TMP/err")"
}
expect_exit2 "no --config"
expect_exit2 "unknown option" --config x --frobnicate
expect_exit2 "missing file" --config "$TMP/none.yaml"
printf 'listen: 127.0.0.1:0\ndb: x.db\narchive: 3d\n' > "$TMP/bad.yaml"
expect_exit2 "unknown key" --config "$TMP/bad.yaml"
grep -qF "$TMP/bad.yaml:3: archive: unknown key" "$TMP/err" \
    || fail "message names file, line and key: $(cat "$TMP/err")"
write_collector_config "$TMP/ok.yaml"
expect_exit2 "bad --listen" --config "$TMP/ok.yaml" --listen nowhere

# --check-config FILE: the load of a start; no database, no port.
mkdir "$TMP/chk"
write_collector_config "$TMP/chk/ok.yaml"
sed -i "s|^db: .*|db: $TMP/chk/sextant.db|" "$TMP/chk/ok.yaml"
printf 'api_tokens:\n  - token_file: %s\n' "$TMP/chk/read" \
    >> "$TMP/chk/ok.yaml"
printf 'read-token-0123456789\n' > "$TMP/chk/read"
"$COLLECTOR" --check-config "$TMP/chk/ok.yaml" > "$TMP/out" 2> "$TMP/err" \
    || fail "--check-config of a good file: $(cat "$TMP/err")"
assert_eq "$(cat "$TMP/out")" "$TMP/chk/ok.yaml: ok" "--check-config output"
[ ! -s "$TMP/err" ] || fail "--check-config wrote to stderr"
sed 's|^listen: .*|listen: localhost:8480|' "$TMP/chk/ok.yaml" \
    > "$TMP/chk/name.yaml"
expect_exit2 "--check-config, a name to listen on" \
    --check-config "$TMP/chk/name.yaml"
want="name.yaml:1: listen: \"localhost:8480\": HOST must be an IP"
grep -qF "$TMP/chk/$want" "$TMP/err" \
    || fail "listen on a name: $(cat "$TMP/err")"
rm "$TMP/chk/read"
expect_exit2 "--check-config, token_file missing" \
    --check-config "$TMP/chk/ok.yaml"
grep -qF "$TMP/chk/ok.yaml:9: api_tokens[0].token_file: cannot read" \
    "$TMP/err" || fail "missing token_file: $(cat "$TMP/err")"
expect_exit2 "--check-config, no FILE" --check-config
expect_exit2 "--check-config, more" --check-config "$TMP/chk/ok.yaml" --db x
assert_eq "$(cd "$TMP/chk" && ls | tr '\n' ' ')" "name.yaml ok.yaml " \
    "files after --check-config (no database)"

# The store commands with a config whose store is PostgreSQL (nothing
# listens at port 1: the ones refused never connect). backup: refused,
# pointing at pg_dump; --db and --config not both.
cat > "$TMP/pg.yaml" <<YAML
listen: 127.0.0.1:0
clusters:
  - name: test
    token: $TOKEN
store:
  backend: postgres
  postgres:
    conninfo: "host=127.0.0.1 port=1 dbname=sextant connect_timeout=5"
YAML
expect_exit2 "backup on PostgreSQL" backup --config "$TMP/pg.yaml" \
    --out "$TMP/copy.db"
grep -q 'the store is PostgreSQL: back it up with pg_dump' "$TMP/err" ||
    fail "backup on PostgreSQL: $(cat "$TMP/err")"
[ ! -e "$TMP/copy.db" ] || fail "backup on PostgreSQL made a file"
expect_exit2 "backup --db and --config" backup --db x.db \
    --config "$TMP/pg.yaml" --out "$TMP/copy.db"
expect_exit2 "incidents --db and --config" incidents --db x.db \
    --config "$TMP/pg.yaml"
expect_exit2 "timeline --service without --config" timeline --db x.db \
    --from 1 --to 2 --service shop
# A bad sslmode is a config error of every command, before any connect.
sed 's|connect_timeout=5|sslmode=verify_full|' "$TMP/pg.yaml" \
    > "$TMP/pgssl.yaml"
expect_exit2 "--check-config, bad sslmode" --check-config "$TMP/pgssl.yaml"
grep -qF 'store.postgres.conninfo: sslmode: expected disable, allow, prefer, require, verify-ca or verify-full, got "verify_full"' \
    "$TMP/err" || fail "bad sslmode: $(cat "$TMP/err")"
expect_exit2 "start, bad sslmode" --config "$TMP/pgssl.yaml"
expect_exit2 "timeline, bad sslmode" timeline --config "$TMP/pgssl.yaml" \
    --from 1 --to 2
# Unreachable: the read-only commands fail (1) with libpq's reason.
rc=0
"$COLLECTOR" incidents --config "$TMP/pg.yaml" > /dev/null \
    2> "$TMP/err" || rc=$?
assert_eq "$rc" 1 "exit status of incidents, database unreachable"
grep -q 'read connection: connection to server at "127.0.0.1", port 1 failed' \
    "$TMP/err" || fail "incidents, unreachable: $(cat "$TMP/err")"

# A database that cannot be opened is a runtime failure (1), not usage.
rc=0
"$COLLECTOR" --config "$TMP/ok.yaml" --db /nonexistent/dir/x.db \
    2> "$TMP/err" || rc=$?
assert_eq "$rc" 1 "exit status for an unopenable database"
echo "collector_cli: all passed"
