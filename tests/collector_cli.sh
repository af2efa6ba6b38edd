# collector_cli.sh -- command line: --help (also of backup) and --version
# exit 0 with their text on stdout alone, usage errors and bad configs exit
# 2 with one line naming file, line and key.
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

# A database that cannot be opened is a runtime failure (1), not usage.
rc=0
"$COLLECTOR" --config "$TMP/ok.yaml" --db /nonexistent/dir/x.db \
    2> "$TMP/err" || rc=$?
assert_eq "$rc" 1 "exit status for an unopenable database"
echo "collector_cli: all passed"
