# collector_stop.sh -- SIGTERM while a slow client holds a request: the
# collector waits its grace for the request, says it is still running,
# closes the connection and exits 0 with "stopped", every wait of its stop
# path bounded. Judged by the collector's own log lines and exit status,
# not by how long it took.
. "$(dirname "$0")/lib.sh"

DB=$TMP/c.db
write_collector_config_no_timeouts "$TMP/collector.yaml"
start_collector "$DB"

# Headers at once, then one body byte every 5 s: the 32-byte body would
# take minutes, so the request is in flight whenever the signal comes.
SLOW_TOKEN=$TOKEN "$SLOW_CLIENT" 127.0.0.1 "$COLLECTOR_PORT" 5000 600 \
    --slow-body > "$TMP/slow.out" &
SLOW=$!
PIDS+=($SLOW)

# In flight: the collector owns the connection and has read every byte
# the client sent so far (its socket's receive queue is empty and the
# client's send queue too), so libmicrohttpd has parsed the headers.
read_all() {
    local port
    port=$(printf '%04X' "$COLLECTOR_PORT")
    [ "$(tcp_count "$COLLECTOR_PID" 01 "$COLLECTOR_PORT")" -ge 1 ] &&
    awk -v p="$port" '
        FNR > 1 && $4 == "01" {
            split($5, q, ":")
            if (substr($2, index($2, ":") + 1) == p && q[2] != "00000000") bad++
            if (substr($3, index($3, ":") + 1) == p && q[1] != "00000000") bad++
            if (substr($2, index($2, ":") + 1) == p) seen++
        }
        END { exit !(seen > 0 && bad == 0) }' /proc/net/tcp
}
wait_until 30 "the slow request never reached the collector" read_all

kill -TERM "$COLLECTOR_PID"
wait "$COLLECTOR_PID" || fail "collector exited with $?"
wait "$SLOW" || fail "slow client: $(cat "$TMP/slow.out")"
grep -q '^closed after' "$TMP/slow.out" ||
    fail "slow client: $(cat "$TMP/slow.out")"
for line in 'signal 15: stopping' '1 requests still running at stop' \
            'stopped$'; do
    has_line "$TMP/collector.log" "$line" || fail "no log line '$line'"
done
# Nothing of the stop path had to be left behind.
if has_line "$TMP/collector.log" 'left behind\|did not stop in time'; then
    fail "stop path hit a deadline: $(grep 'left behind\|did not stop' \
          "$TMP/collector.log")"
fi
echo "collector_stop: all passed"
