# collector_fd_limit.sh -- limits.connections against the open-files
# limit, under a soft limit of 1024 and a hard one of 2000 (set for the
# collector alone): the collector raises its soft limit to fit its
# connections; when the hard limit is too small, the default limit
# (10000) is lowered to what fits, with a warning, and the collector
# serves, while a limit the config sets is refused at start with a clear
# error (exit non-zero).
. "$(dirname "$0")/lib.sh"

HARD=2000
SPARE=128               # descriptors besides the connections (server.c)
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt $HARD ]; then
    echo "SKIP: ulimit -Hn is $hard, this test needs $HARD"
    exit 77
fi
REAL=$COLLECTOR
COLLECTOR=$TMP/limited-collector
cat > "$COLLECTOR" <<SH
#!/usr/bin/env bash
ulimit -Sn 1024 && ulimit -Hn $HARD && exec "$REAL" "\$@"
SH
chmod +x "$COLLECTOR"

# The default: lowered to what fits, said once, and served.
write_collector_config "$TMP/collector.yaml"
start_collector "$TMP/c.db"
grep -q "open files limit $HARD (hard) holds $((HARD - SPARE)) connections, not the default limits.connections (10000)" \
    "$TMP/collector.log" || fail "no warning about the lowered limit"
assert_eq "$(awk '/^Max open files/ { print $4, $5 }' \
             "/proc/$COLLECTOR_PID/limits")" "$HARD $HARD" \
    "open files limit raised to the hard limit"
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 \
             "$URL/healthz")" 200 "/healthz with the lowered limit"
stop_collector

# Set in the config: raised as far as needed (not to the hard limit) ...
printf 'limits:\n  connections: 1000\n' >> "$TMP/collector.yaml"
start_collector "$TMP/c.db"
assert_eq "$(awk '/^Max open files/ { print $4 }' \
             "/proc/$COLLECTOR_PID/limits")" $((1000 + SPARE)) \
    "open files soft limit raised to fit 1000 connections"
! grep -q 'open files' "$TMP/collector.log" || fail "a warning for a fit"
stop_collector

# ... and refused when it cannot fit.
write_collector_config "$TMP/collector.yaml"
printf 'limits:\n  connections: 5000\n' >> "$TMP/collector.yaml"
"$COLLECTOR" --config "$TMP/collector.yaml" --listen 127.0.0.1:0 \
    --db "$TMP/c.db" 2> "$TMP/refused.log" &
pid=$!
PIDS+=($pid)
gone() { ! kill -0 "$pid" 2>/dev/null ||
         [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" = Z ]; }
wait_until 60 "the collector still runs with a limit it cannot hold" gone
set +e
wait "$pid"
rc=$?
set -e
[ "$rc" != 0 ] || fail "the collector exited 0 with a limit it cannot hold"
grep -q "limits.connections (5000) needs $((5000 + SPARE)) open files, and the limit is $HARD (hard $HARD): raise ulimit -n" \
    "$TMP/refused.log" || fail "no clear error: $(cat "$TMP/refused.log")"
! grep -q 'listening on' "$TMP/refused.log" || fail "it listened anyway"
echo "collector_fd_limit: all passed"
