# agent_admin.sh -- the agent's admin listener on a real agent: /metrics
# passes `promtool check metrics` and counts what happened (probes by type
# and their failures, batches shipped, ack age, clock offset, the spool
# filling while the collector is down, each target's health, which flips
# when the target goes down and comes back); /healthz and /readyz answer 200
# while it runs and /readyz 503 while it stops; anything but a plain GET is
# refused; a listen address the file names is fatal when taken; and
# admin.enabled: false leaves nothing listening.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

if ! command -v promtool > /dev/null; then
    echo "SKIP: promtool not found (Debian package prometheus; scripts/deps.sh installs it)"
    exit 77
fi

start_target
start_collector "$TMP/collector.db"

# write_agent NAME COLLECTOR_URL ADMIN_YAML: $TMP/NAME.yaml, spool NAME.db.
write_agent() {
    cat > "$TMP/$1.yaml" <<YAML
cluster: test
region: eu-west-1
node: $1
collector:
  url: $2
  token: $TOKEN
spool:
  path: $TMP/$1.db
interval: 200ms
$3
targets:
  - name: up
    url: http://127.0.0.1:$TARGET_PORT/
  - name: down
    url: http://127.0.0.1:$TARGET_PORT/status/500
YAML
}

# start_agent NAME: runs $TMP/NAME.yaml, logs to NAME.log; sets AGENT_PID.
start_agent() {
    : > "$TMP/$1.log"
    "$AGENT" --config "$TMP/$1.yaml" 2> "$TMP/$1.log" &
    AGENT_PID=$!
    PIDS+=($AGENT_PID)
}

# admin_port NAME: the port the agent logged it listens on.
admin_port() {
    wait_for "$TMP/$1.log" 'admin: listening on'
    sed -n 's/.*admin: listening on [0-9.]*:\([0-9]*\).*/\1/p' \
        "$TMP/$1.log" | head -n1
}

# get PATH [CURL ARGS]: sets STATUS and BODY (also in $TMP/body).
get() {
    local path=$1; shift
    STATUS=$(curl -sS --max-time 30 -o "$TMP/body" -w '%{http_code}' "$@" \
             "http://127.0.0.1:$PORT$path") || fail "curl $path failed"
    BODY=$(cat "$TMP/body")
}

# value FILE SERIES: a sample's value in a scrape, or "absent".
value() {
    awk -v m="$2" '$1 == m { print $2; f = 1 } END { if (!f) print "absent" }' "$1"
}

# metric_ge SERIES MIN: the series is present and >= MIN now.
metric_ge() {
    local v
    get /metrics
    v=$(value "$TMP/body" "$1")
    [ "$v" != absent ] && awk -v v="$v" -v m="$2" 'BEGIN { exit !(v >= m) }'
}

# wait_metric SERIES MIN: until the series is >= MIN.
wait_metric() {
    wait_until 30 "$1 stayed below $2" metric_ge "$1" "$2"
}

# metric_is SERIES VALUE: the series has VALUE now ("absent" for none).
metric_is() {
    get /metrics
    [ "$(value "$TMP/body" "$1")" = "$2" ]
}

# wait_metric_is SERIES VALUE: until the series has VALUE.
wait_metric_is() {
    wait_until 30 "$1 never became $2" metric_is "$1" "$2"
}

# listening PID: TCP sockets in LISTEN the process owns.
listening() {
    tcp_count "$1" 0A
}

HTTP='{type="http"}'

# --- A running agent: metrics, promtool, health, readiness, refusals ---
write_agent a "$URL" 'admin: {listen: "127.0.0.1:0"}'
start_agent a
A_PID=$AGENT_PID
PORT=$(admin_port a)
[ -n "$PORT" ] && [ "$PORT" != 0 ] || fail "no admin port in the log"

wait_metric "sextant_agent_probes_failed_total$HTTP" 3
wait_metric "sextant_agent_batches_shipped_total" 1
get /metrics
cp "$TMP/body" "$TMP/m1.txt"
assert_eq "$STATUS" 200 "/metrics status"
promtool check metrics < "$TMP/m1.txt" > "$TMP/promtool.log" 2>&1 ||
    { cat "$TMP/promtool.log" "$TMP/m1.txt" >&2; fail "promtool check metrics failed"; }
# The live endpoint itself, piped as the recipe says.
curl -sS "http://127.0.0.1:$PORT/metrics" | promtool check metrics ||
    fail "promtool rejects the live /metrics"
curl -sS -D - -o /dev/null "http://127.0.0.1:$PORT/metrics" |
    grep -qi '^content-type: text/plain; version=0.0.4' ||
    fail "/metrics content type"

total=$(value "$TMP/m1.txt" "sextant_agent_probes_total$HTTP")
failed=$(value "$TMP/m1.txt" "sextant_agent_probes_failed_total$HTTP")
# "up" and "down" run at the same rate: about half of the runs failed.
[ "$failed" -ge 3 ] && [ $((total - failed)) -ge 2 ] &&
    [ $((total - 2 * failed)) -le 2 ] && [ $((2 * failed - total)) -le 2 ] ||
    fail "probes: $total total, $failed failed; want about half failed"
assert_eq "$(value "$TMP/m1.txt" "sextant_agent_probe_duration_seconds_count$HTTP")" \
    "$total" "histogram count vs probes_total"
assert_eq "$(value "$TMP/m1.txt" "sextant_agent_probe_duration_seconds_bucket{type=\"http\",le=\"+Inf\"}")" \
    "$total" "histogram +Inf bucket"
assert_eq "$(value "$TMP/m1.txt" sextant_agent_targets)" 2 "targets"
assert_eq "$(value "$TMP/m1.txt" sextant_agent_events_dropped_total)" 0 "dropped"
grep -q '^sextant_agent_build_info{version="[0-9][^"]*"} 1$' "$TMP/m1.txt" ||
    fail "build_info"
age=$(value "$TMP/m1.txt" sextant_agent_last_ack_age_seconds)
off=$(value "$TMP/m1.txt" sextant_agent_clock_offset_seconds)
[ "$age" != absent ] && awk -v v="$age" 'BEGIN { exit !(v >= 0 && v < 5) }' ||
    fail "last ack age: $age"
# One host, one clock: the offset is the estimate's error only.
[ "$off" != absent ] && awk -v v="$off" 'BEGIN { exit !(v > -1 && v < 1) }' ||
    fail "clock offset: $off"

# Each target's health, as its state machine has it by now.
wait_metric_is 'sextant_agent_target_healthy{target="up",type="http"}' 1
wait_metric_is 'sextant_agent_target_healthy{target="down",type="http"}' 0

get /healthz
assert_eq "$STATUS $BODY" "200 ok" "/healthz"
get /readyz
assert_eq "$STATUS $BODY" "200 ready" "/readyz"

# GET only, no bodies, known paths only.
get /metrics -X POST --data 'x=1'
assert_eq "$STATUS" 405 "POST /metrics"
curl -sS -D - -o /dev/null -X POST --data x "http://127.0.0.1:$PORT/healthz" |
    grep -qi '^allow: GET' || fail "405 without Allow: GET"
get /healthz -X PUT --data 'x'
assert_eq "$STATUS" 405 "PUT /healthz"
get /metrics --data-binary 'body' -X GET
assert_eq "$STATUS" 413 "GET with a body"
get /metrics -X GET -H 'Transfer-Encoding: chunked' --data-binary @/dev/null
assert_eq "$STATUS" 413 "GET with a chunked body"
get /nope
assert_eq "$STATUS" 404 "unknown path"
# Still serving after all that.
get /healthz
assert_eq "$STATUS" 200 "/healthz after the refusals"

# Idle connections: at most 8 from one address, each closed after 10 s.
# t0 is taken before the first connection opens: the agent's 10 s start
# at its accept, never earlier, so a loaded machine can only make the
# measured time longer (taken after the checks below, it was up to their
# 5 s and more short).
idle=()
t0=$(date +%s%N)
for i in 1 2 3 4 5 6 7 8; do
    exec {fd}<>"/dev/tcp/127.0.0.1/$PORT"
    idle+=($fd)
done
accepted() { [ "$(tcp_count "$A_PID" 01 "$PORT")" -ge 8 ]; }
wait_until 30 "the agent did not accept 8 connections" accepted
if curl -sS --max-time 5 -o /dev/null "http://127.0.0.1:$PORT/healthz" 2> /dev/null; then
    fail "a 9th connection from one address was served"
fi
cat <&"${idle[0]}" > /dev/null 2>&1 || true # returns when the server closes
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
# Not before its 10 s (less libmicrohttpd's whole-second clock); "after"
# has no bound but the test's own timeout on a loaded machine.
[ "$ms" -ge 9000 ] || fail "idle connection closed after $ms ms, want 10 s"
for fd in "${idle[@]}"; do exec {fd}>&-; done
get /healthz
assert_eq "$STATUS" 200 "/healthz once the idle connections are gone"

# A listen address the file names and that is taken: exit 1, said why.
write_agent c "$URL" "admin: {listen: \"127.0.0.1:$PORT\"}"
set +e
timeout 60 "$AGENT" --config "$TMP/c.yaml" 2> "$TMP/c.log"
rc=$?
set -e
assert_eq "$rc" 1 "agent with a taken admin.listen"
grep -q "admin: cannot listen on 127.0.0.1:$PORT" "$TMP/c.log" ||
    fail "no reason logged for the taken port"

# --- The collector goes away: the spool fills, the agent stays healthy ---
stop_collector
wait_metric sextant_agent_batches_failed_total 1
wait_metric sextant_agent_spool_events 10
get /metrics
cp "$TMP/body" "$TMP/m2.txt"
ev=$(value "$TMP/m2.txt" sextant_agent_spool_events)
by=$(value "$TMP/m2.txt" sextant_agent_spool_bytes)
[ "$by" -gt $((ev * 8)) ] || fail "spool bytes $by for $ev events"
# The gauge follows the spool's own count, which only grows while the
# collector is down: it reaches what the spool held before we looked, and
# never passes what it holds after. The exact accounting is
# test_agent_metrics.c's.
n=$(sqlite3 "$TMP/a.db" 'SELECT count(*) FROM events')
wait_metric sextant_agent_spool_events "$n"
ev=$(value "$TMP/body" sextant_agent_spool_events)
n=$(sqlite3 "$TMP/a.db" 'SELECT count(*) FROM events')
[ "$ev" -le "$n" ] || fail "spool_events $ev, spool has $n"
promtool check metrics < "$TMP/m2.txt" || fail "promtool, collector down"
get /healthz
assert_eq "$STATUS $BODY" "200 ok" "/healthz with the collector down"
[ "$(listening "$A_PID")" = 1 ] || fail "agent a: not one listening socket"
kill -TERM "$A_PID"
wait "$A_PID" || fail "agent a exited $?"

# --- Stopping: not ready while it flushes, healthy until it exits ---
# The collector is a target of its own that holds every POST for 4 s, so
# the stop's flush lasts that long.
PROBED=$TARGET_PORT
start_target
SLOW_PORT=$TARGET_PORT
TARGET_PORT=$PROBED
write_agent b "http://127.0.0.1:$SLOW_PORT/sleep/4000" \
    'admin: {listen: "127.0.0.1:0"}'
start_agent b
B_PID=$AGENT_PID
PORT=$(admin_port b)
readyz_is() { get /readyz; [ "$STATUS" = "$1" ]; }
wait_until 30 "agent b never ready" readyz_is 200
posting() { [ "$(tcp_count "$B_PID" 01 "" "$SLOW_PORT")" -ge 1 ]; }
wait_until 30 "agent b never POSTed its first batch" posting
kill -TERM "$B_PID"
wait_until 30 "/readyz not 503 while stopping" readyz_is 503
assert_eq "$BODY" "not ready: stopping" "/readyz body while stopping"
get /healthz
assert_eq "$STATUS $BODY" "200 ok" "/healthz while stopping"
wait "$B_PID" || fail "agent b exited $?"

# --- Each target's health: absent while unknown, then 1, 0 and 1 again
# as the target goes down and comes back ---
: > "$TMP/flag"
{ agent_yaml_head "$TMP/e.db"; cat; } > "$TMP/e.yaml" <<YAML
admin: {listen: "127.0.0.1:0"}
interval: 200ms
targets:
  - name: flip
    url: http://127.0.0.1:$TARGET_PORT/flag?file=$TMP/flag
  - name: never
    url: http://127.0.0.1:$TARGET_PORT/sleep/600000
    interval: 60s
    timeout: 50s
YAML
start_agent e
E_PID=$AGENT_PID
PORT=$(admin_port e)
FLIP='sextant_agent_target_healthy{target="flip",type="http"}'
wait_metric_is "$FLIP" 1
# A target whose first run has not ended has no verdict: no line.
assert_eq "$(value "$TMP/body" \
    'sextant_agent_target_healthy{target="never",type="http"}')" absent \
    "a target without a verdict"
rm "$TMP/flag"
wait_metric_is "$FLIP" 0
promtool check metrics < "$TMP/body" > "$TMP/promtool.log" 2>&1 ||
    { cat "$TMP/promtool.log" "$TMP/body" >&2; fail "promtool, target down"; }
: > "$TMP/flag"
wait_metric_is "$FLIP" 1
kill -TERM "$E_PID"
wait "$E_PID" || fail "agent e exited $?"

# --- admin.enabled: false: nothing listens ---
write_agent d "$URL" 'admin: {enabled: false, listen: "127.0.0.1:0"}'
start_agent d
D_PID=$AGENT_PID
wait_for "$TMP/d.log" 'sextant-agent .* started'
probes_ge() {
    [ "$(sqlite3 "$TMP/d.db" "SELECT count(*) FROM events
        WHERE kind = 'probe'" 2>/dev/null || echo 0)" -ge "$1" ]
}
wait_until 30 "agent d does not probe" probes_ge 2
assert_eq "$(listening "$D_PID")" 0 "listening sockets with admin off"
grep -q 'listening on' "$TMP/d.log" && fail "agent d says it listens"
kill -TERM "$D_PID"
wait "$D_PID" || fail "agent d exited $?"
echo "PASS"
