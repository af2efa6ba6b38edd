# agent_cli.sh -- sextant-agent's command line: --help and --version exit 0,
# also for the event subcommand, usage errors exit 2, and every kind of bad
# config exits 2 with exactly one stderr line "FILE:LINE: key: message" and
# nothing on stdout; --check-config FILE says "FILE: ok" or prints that
# line, creating nothing. `event --count N` appends N events in one process, a
# line and a numbered text each, and refuses a bad N without touching the
# spool. Starts no server and never gets as far as probing.
set -euo pipefail

: "${SEXTANT_BIN:?run through ctest}"
: "${SEXTANT_SRC:?run through ctest}"
AGENT=$SEXTANT_BIN/agent/sextant-agent
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
unset NODE_NAME

fail() {
    echo "FAIL: $*" >&2
    echo "--- stdout" >&2; cat "$TMP/out" >&2 || true
    echo "--- stderr" >&2; cat "$TMP/err" >&2 || true
    exit 1
}

assert_eq() {
    [ "$1" = "$2" ] || fail "$3: got '$1', want '$2'"
}

# run ARGS...: runs the agent; sets RC, with its output in $TMP/out, err.
run() {
    set +e
    timeout 60 "$AGENT" "$@" > "$TMP/out" 2> "$TMP/err"
    RC=$?
    set -e
}

# usage_error ARGS...: exit 2, one line on stderr, nothing on stdout.
usage_error() {
    run "$@"
    [ "$RC" = 2 ] || fail "'$*' exited $RC, want 2"
    [ "$(wc -l < "$TMP/err")" = 1 ] || fail "'$*': want one stderr line"
    [ ! -s "$TMP/out" ] || fail "'$*': stdout not empty"
}

# bad_config NAME WANT: writes stdin to NAME.yaml, runs the agent on it and
# wants exit 2 and exactly one stderr line starting "FILE:WANT".
bad_config() {
    local file=$TMP/$1.yaml want
    cat > "$file"
    want="$file:$2"
    for once in "" --once; do
        run --config "$file" $once
        [ "$RC" = 2 ] || fail "$1: exited $RC, want 2"
        [ "$(wc -l < "$TMP/err")" = 1 ] || fail "$1: want one stderr line"
        [ ! -s "$TMP/out" ] || fail "$1: stdout not empty"
        case "$(cat "$TMP/err")" in
        "$want"*) ;;
        *) fail "$1: stderr does not start with '$want'" ;;
        esac
    done
}

VERSION=$(sed -n 's/^project(sextant VERSION \([0-9.]*\).*/\1/p' \
          "$SEXTANT_SRC/CMakeLists.txt")
[ -n "$VERSION" ] || fail "no version in CMakeLists.txt"

run --help
[ "$RC" = 0 ] || fail "--help exited $RC"
grep -q '^usage: sextant-agent --config FILE \[--once\]' "$TMP/out" \
    || fail "--help: no usage line"
[ ! -s "$TMP/err" ] || fail "--help wrote to stderr"
run -h
[ "$RC" = 0 ] || fail "-h exited $RC"

run --version
[ "$RC" = 0 ] || fail "--version exited $RC"
[ "$(cat "$TMP/out")" = "sextant-agent $VERSION" ] || fail "--version output"
[ ! -s "$TMP/err" ] || fail "--version wrote to stderr"

usage_error
grep -q -- '--config FILE is required' "$TMP/err" || fail "no --config hint"
usage_error --once
usage_error --config
usage_error --bogus
usage_error --config "$TMP/x.yaml" extra-argument

# The first 8 lines of a valid file; tests add to it.
head8() {
    cat <<'YAML'
cluster: c1
region: eu-west-1
node: n1
collector:
  url: http://127.0.0.1:8480
  token: test-token-0123456789
spool:
  path: /nonexistent/spool.db
YAML
}

run --config "$TMP/none.yaml"
[ "$RC" = 2 ] || fail "missing file exited $RC"
[ "$(cat "$TMP/err")" = "$TMP/none.yaml:0: cannot open: No such file or directory" ] \
    || fail "missing file message"

bad_config empty "1: empty configuration" < /dev/null

{ head8; echo "colour: blue"; } | bad_config unknown_top "9: colour: unknown key"

{ head8; cat <<'YAML'; } | bad_config unknown_nested "12: targets[0].retries: unknown key"
targets:
  - name: web
    url: http://127.0.0.1:9/
    retries: 3
YAML

{ head8; cat <<'YAML'; } | bad_config wrong_type "9: interval: expected a scalar value"
interval: [1, 2]
YAML

{ head8; cat <<'YAML'; } | bad_config bad_duration "9: interval: expected a duration"
interval: 10 parsecs
YAML

head -n 3 <(head8) | bad_config missing_required "1: collector: required key is missing"

{ head8; cat <<'YAML'; } | bad_config bad_url "11: targets[0].url: not a valid URL"
targets:
  - name: web
    url: "http://exa mple/"
YAML

{ head8; cat <<'YAML'; } | bad_config bad_scheme "11: targets[0].url: scheme must be http or https"
targets:
  - name: web
    url: ftp://127.0.0.1/
YAML

{ head8; cat <<'YAML'; } | bad_config duplicate_name "12: targets[1].name: duplicate target name \"web\""
targets:
  - name: web
    url: http://127.0.0.1:9/a
  - name: web
    url: http://127.0.0.1:9/b
YAML

cat <<'YAML' | bad_config both_tokens "6: collector.token_file: give exactly one"
cluster: c1
region: eu-west-1
node: n1
collector:
  url: http://127.0.0.1:8480
  token_file: /run/secrets/token
  token: test-token-0123456789
YAML

{ head8; echo "targets: ["; } | bad_config yaml_syntax "10: YAML syntax:"

# --- --check-config FILE: the load of a start, nothing opened or made ---
mkdir "$TMP/chk"
printf 'file-token-0123456789\n' > "$TMP/chk/token"
{ head8 | sed -e "s|/nonexistent/spool.db|$TMP/chk/spool.db|" \
      -e "s|  token: .*|  token_file: $TMP/chk/token|"; cat <<'YAML'; } \
    > "$TMP/chk/ok.yaml"
admin:
  listen: 0.0.0.0:9464
targets:
  - name: web
    url: http://127.0.0.1:9/
YAML
for form in "--check-config $TMP/chk/ok.yaml" "--check-config=$TMP/chk/ok.yaml"
do
    run $form
    [ "$RC" = 0 ] || fail "$form exited $RC"
    assert_eq "$(cat "$TMP/out")" "$TMP/chk/ok.yaml: ok" "$form output"
    [ ! -s "$TMP/err" ] || fail "$form wrote to stderr"
done
# node may come from NODE_NAME alone, as in a DaemonSet.
sed '/^node:/d' "$TMP/chk/ok.yaml" > "$TMP/chk/nonode.yaml"
set +e
NODE_NAME=node-7 "$AGENT" --check-config "$TMP/chk/nonode.yaml" \
    > "$TMP/out" 2> "$TMP/err"
RC=$?
set -e
[ "$RC" = 0 ] || fail "--check-config with NODE_NAME exited $RC"
usage_error --check-config "$TMP/chk/nonode.yaml"
grep -q "nonode.yaml:1: node: " "$TMP/err" || fail "no node: $(cat "$TMP/err")"
# A bad file: the error a start prints, exit 2.
sed 's|^region:.*|region: eu-west-1\ncolour: blue|' "$TMP/chk/ok.yaml" \
    > "$TMP/chk/bad.yaml"
usage_error --check-config "$TMP/chk/bad.yaml"
assert_eq "$(cat "$TMP/err")" "$TMP/chk/bad.yaml:3: colour: unknown key" \
    "--check-config error"
sed "s|$TMP/chk/token|$TMP/chk/missing|" "$TMP/chk/ok.yaml" \
    > "$TMP/chk/notoken.yaml"
usage_error --check-config "$TMP/chk/notoken.yaml"
grep -q "notoken.yaml:6: collector.token_file: cannot read" "$TMP/err" \
    || fail "unreadable token_file: $(cat "$TMP/err")"
usage_error --check-config
usage_error --check-config=
usage_error --check-config "$TMP/chk/ok.yaml" --once
usage_error --check-config "$TMP/none.yaml"
# Nothing was created beside the configs: no spool, no lock.
assert_eq "$(cd "$TMP/chk" && ls | tr '\n' ' ')" \
    "bad.yaml nonode.yaml notoken.yaml ok.yaml token " "files after checks"

# --- the event subcommand ---
for h in --help -h; do
    run event "$h"
    [ "$RC" = 0 ] || fail "event $h exited $RC"
    grep -q '^usage: sextant-agent event --config FILE --kind KIND' \
        "$TMP/out" || fail "event $h: no usage line"
    grep -q -- '--count N' "$TMP/out" || fail "event $h: no --count"
    [ ! -s "$TMP/err" ] || fail "event $h wrote to stderr"
done
run event --config "$TMP/none.yaml" --kind drill --help
[ "$RC" = 0 ] || fail "event --help after other options exited $RC"

# A valid config whose spool is ours to look at.
{ head8 | sed "s|/nonexistent/spool.db|$TMP/ev.spool|"; cat <<'YAML'; } \
    > "$TMP/ev.yaml"
targets:
  - name: web
    url: http://127.0.0.1:9/
YAML
SPOOL=$TMP/ev.spool
run event --config "$TMP/ev.yaml" --kind drill --text one
[ "$RC" = 0 ] || fail "event exited $RC: $(cat "$TMP/err")"
assert_out() {
    [ "$(cat "$TMP/out")" = "$1" ] || fail "event output, want '$1'"
}
assert_out "recorded drill event, seq 1"
run event --config "$TMP/ev.yaml" --kind drill --text T --count 3
[ "$RC" = 0 ] || fail "event --count 3 exited $RC: $(cat "$TMP/err")"
assert_out "$(printf 'recorded drill event, seq %s\n' 2 3 4)"
[ ! -s "$TMP/err" ] || fail "event --count wrote to stderr"
# Each seq carries its numbered text (the packed event holds it as is).
texts=$(sqlite3 "$SPOOL" "SELECT seq || '=' || CASE
    WHEN instr(body, CAST('T-1' AS BLOB)) THEN 'T-1'
    WHEN instr(body, CAST('T-2' AS BLOB)) THEN 'T-2'
    WHEN instr(body, CAST('T-3' AS BLOB)) THEN 'T-3'
    WHEN instr(body, CAST('one' AS BLOB)) THEN 'one' ELSE '?' END
    FROM events ORDER BY seq" | tr '\n' ' ')
[ "$texts" = "1=one 2=T-1 3=T-2 4=T-3 " ] || fail "texts by seq: $texts"
run event --config "$TMP/ev.yaml" --kind deploy --count 2
assert_out "$(printf 'recorded deploy event, seq %s\n' 5 6)"

# Bad input: exit 2, one line, and the spool as it was.
before=$(sqlite3 "$SPOOL" 'SELECT next_seq FROM meta')
for n in 0 -1 x 5x 1000001 ''; do
    usage_error event --config "$TMP/ev.yaml" --kind drill --count "$n"
    grep -q -- '--count must be a whole number' "$TMP/err" ||
        fail "--count '$n': $(cat "$TMP/err")"
done
usage_error event --config "$TMP/ev.yaml" --kind drill --count
long=$(head -c 8190 /dev/zero | tr '\0' x)
usage_error event --config "$TMP/ev.yaml" --kind drill --text "$long" \
    --count 10                  # "-10" takes it past 8192 bytes
usage_error event --config "$TMP/ev.yaml" --kind drill --bogus
usage_error event --config "$TMP/ev.yaml"
assert_eq "$(sqlite3 "$SPOOL" 'SELECT next_seq FROM meta')" "$before" \
    "next seq after refused commands"
run event --config "$TMP/ev.yaml" --kind drill --text "$long" --count 9
[ "$RC" = 0 ] || fail "the longest text that fits was refused"

echo "agent_cli: all passed"
