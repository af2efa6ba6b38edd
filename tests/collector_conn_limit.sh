# collector_conn_limit.sh -- limits.connections (set to 1024) held by 1500
# idle connections from many loopback addresses (so the per-IP cap of 64
# does not stop them first): a new client's /healthz and /readyz are
# still answered, and ingest still works, because the oldest idle
# connections are shed to make room, and the log says so.
. "$(dirname "$0")/lib.sh"

N=1500
# The helper needs N descriptors, the collector 1024 + some.
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt $((N + 100)) ]; then
    echo "SKIP: ulimit -Hn is $hard, this test needs $((N + 100))"
    exit 77
fi

DB=$TMP/c.db
# No idle connection leaves by itself: only shedding can make room.
write_collector_config_no_timeouts "$TMP/collector.yaml"
# Below the default (10000), so that 1500 connections pass it.
printf '  connections: 1024\n' >> "$TMP/collector.yaml"
start_collector "$DB"
"$HOLD_CONNS" 127.0.0.1 "$COLLECTOR_PORT" "$N" 60 > "$TMP/hold.out" &
PIDS+=($!)
for _ in $(seq 1 600); do
    [ -s "$TMP/hold.out" ] && break
    sleep 0.1
done
assert_eq "$(cat "$TMP/hold.out")" "held $N of $N" "idle connections"

# Each request is a new connection (curl exits), past all of the above.
for path in /healthz /readyz; do
    status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 60 \
             "$URL$path") || true
    assert_eq "$status" 200 "$path with $N idle connections held"
done
out=$("$INGEST_CLIENT" --url "$URL/v1/ingest" --token "$TOKEN" --seq 1-5)
assert_eq "$out" "200 5" "ingest with $N idle connections held"

# At least N - 1024 were shed (more: our own requests made room too).
shed=0
for _ in $(seq 1 600); do
    shed=$(sed -n 's/.*shed \([0-9]*\) idle connections$/\1/p' \
           "$TMP/collector.log" | awk '{ s += $1 } END { print s + 0 }')
    [ "$shed" -ge $((N - 1024)) ] && break
    sleep 0.1
done
[ "$shed" -ge $((N - 1024)) ] ||
    fail "shed $shed connections, want >= $((N - 1024))"
stop_collector
echo "collector_conn_limit: shed $shed; all passed"
