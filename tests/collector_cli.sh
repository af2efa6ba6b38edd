# collector_cli.sh -- command line: --help (also of backup) and --version
# exit 0 with their text on stdout alone, usage errors and bad configs exit
# 2 with one line naming file, line and key; --check-config FILE loads a
# config only (no database, no port).
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
expect_help "backup --help" '^usage: sextant-collector backup --db PATH' \
    backup --help
expect_help "backup -h" '^usage: sextant-collector backup --db PATH' \
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

# A database that cannot be opened is a runtime failure (1), not usage.
rc=0
"$COLLECTOR" --config "$TMP/ok.yaml" --db /nonexistent/dir/x.db \
    2> "$TMP/err" || rc=$?
assert_eq "$rc" 1 "exit status for an unopenable database"
echo "collector_cli: all passed"
