# delivery_faults.sh -- the agent against a collector that answers from a
# script (tests/fault_collector): 429 with Retry-After in seconds, eight
# 503s without it, a 503 with Retry-After as an HTTP date, a 401, a 400,
# then ok. Asserted from the fake collector's request log and the agent's
# /metrics and spool:
#   - Retry-After is honoured (the next request waits that long, no more
#     than the backoff cap beyond);
#   - 503 without it backs off with full jitter under the cap (no wait over
#     backoff_max, the waits add up to a real pause and are not all equal);
#   - 401 is retried (its events are stored later), and logged;
#   - 400 puts exactly that batch in the spool's dead_letter table with the
#     collector's error text, counts it, logs it, and never sends it again;
#   - in the end every seq 1..last is either stored once or dead-lettered,
#     never both, nothing is sent again after a 200, and the counters of
#     shipped and rejected batches equal the collector's.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/delivery_lib.sh"

BACKOFF_MAX_MS=1000
SHIP="shipping: {batch_max_age: 100ms, backoff_initial: 200ms,
  backoff_max: ${BACKOFF_MAX_MS}ms, shutdown_grace: 5s}"

cat > "$TMP/script.txt" <<'EOF'
ok                      # 1: the first batch
429 retry-after=2       # 2
503 x8                  # 3..10: backoff with jitter
503 retry-date=3        # 11
401                     # 12: credentials; the batch is not at fault
400                     # 13: malformed: dead letter
ok x5                   # 14..18
503 retry-after=60 x50  # 19..: the agent waits, its counters hold still
EOF
FDB=$TMP/fault.db
"$FAULT_COLLECTOR" --db "$FDB" --script "$TMP/script.txt" \
    > "$TMP/fault.port" 2> "$TMP/fault.log" &
FPID=$!
PIDS+=($FPID)
wait_for "$TMP/fault.port" '^[0-9]'
FURL=http://127.0.0.1:$(head -n1 "$TMP/fault.port")

start_target
write_agent n1 "$(collector_yaml "$FURL")" 2 200ms "$SHIP"
start_agent n1
ADMIN=$(admin_port n1)

# Requests 1..19 are scripted; the 19th sends the agent to sleep for 60 s.
req_count() { [ "$(q "$FDB" 'SELECT count(*) FROM reqs')" -ge "$1" ]; }
wait_until 60 "the agent did not get through the script" req_count 19
# Nothing more while it waits: proven by 16 probes recorded after the
# 19th reply (two targets every 200 ms: over 1.5 s of the agent's time).
mark=$(spool_last n1)
spool_last_ge() { [ "$(spool_last n1)" -ge "$1" ]; }
wait_until 60 "the agent stopped probing" spool_last_ge $((mark + 16))
assert_eq "$(q "$FDB" 'SELECT count(*) FROM reqs')" 19 \
    "requests during 16 probes after a Retry-After: 60"

f() { q "$FDB" "$1"; }
# wait_ms N: how long the agent waited after reply N before request N+1.
wait_ms() { f "SELECT b.t_ms - a.t_ms FROM reqs a, reqs b
               WHERE a.n = $1 AND b.n = $1 + 1"; }
assert_eq "$(f "SELECT group_concat(status, ' ') FROM
    (SELECT status FROM reqs ORDER BY n)")" \
    "200 429 $(echo 503 503 503 503 503 503 503 503 503) 401 400 $(echo \
     200 200 200 200 200) 503" \
    "statuses the agent met"

w=$(wait_ms 2)
[ "$w" -ge 1950 ] && [ "$w" -le $((2000 + BACKOFF_MAX_MS + 500)) ] ||
    fail "429 Retry-After: 2: next request after $w ms, want 2000..$((2500 + BACKOFF_MAX_MS))"
w=$(wait_ms 11)                 # an HTTP date: second resolution
[ "$w" -ge 1950 ] && [ "$w" -le $((3000 + BACKOFF_MAX_MS + 500)) ] ||
    fail "503 Retry-After: <date in 3 s>: next request after $w ms"
total=0; lo=999999; hi=0
for n in $(seq 3 10); do
    w=$(wait_ms "$n")
    [ "$w" -le $((BACKOFF_MAX_MS + 300)) ] ||
        fail "503 backoff: waited $w ms after request $n, cap $BACKOFF_MAX_MS ms"
    total=$((total + w))
    [ "$w" -lt "$lo" ] && lo=$w
    [ "$w" -gt "$hi" ] && hi=$w
done
echo "503 x8: waits from $lo to $hi ms, $total ms in all"
[ "$total" -ge 500 ] || fail "8 x 503 retried within $total ms: no backoff"
[ $((hi - lo)) -gt 40 ] || fail "503 backoff waits all within 40 ms: no jitter"
w=$(wait_ms 12)
[ "$w" -le $((BACKOFF_MAX_MS + 300)) ] || fail "401: retried after $w ms"
grep -q '401' "$TMP/n1.log" || fail "the 401 is not in the agent's log"

# The 400: dead-lettered whole, never sent again.
dl=$(f "SELECT min(seq) || '|' || max(seq) || '|' || count(*)
        FROM req_seqs WHERE n = 13")
IFS='|' read -r dl_first dl_last dl_n <<< "$dl"
[ "$dl_n" -ge 1 ] || fail "request 13 (the 400) carried no events"
got=$(q "$TMP/n1.spool" "SELECT first_seq || '|' || last_seq || '|' || status
    FROM dead_letter")
assert_eq "$got" "$dl_first|$dl_last|400" "dead_letter rows"
q "$TMP/n1.spool" "SELECT reason FROM dead_letter" | grep -q 'scripted 400' ||
    fail "dead_letter.reason lacks the collector's text: $(q "$TMP/n1.spool" \
         "SELECT reason FROM dead_letter")"
grep -q 'scripted 400' "$TMP/n1.log" ||
    fail "the collector's error text is not in the agent's log"
assert_eq "$(f "SELECT count(*) FROM req_seqs WHERE n > 13
    AND seq BETWEEN $dl_first AND $dl_last")" 0 \
    "dead-lettered events sent again"
assert_eq "$(metric "$ADMIN" 'sextant_agent_batches_rejected_total{status="400"}')" \
    1 "rejected_total{status=\"400\"}"
assert_eq "$(metric "$ADMIN" sextant_agent_dead_letter_events)" "$dl_n" \
    "sextant_agent_dead_letter_events"

# Counters against the collector's log while the agent waits.
assert_eq "$(metric "$ADMIN" sextant_agent_batches_shipped_total)" \
    "$(f "SELECT count(*) FROM reqs WHERE status = 200")" \
    "batches_shipped_total vs the collector's 200s"
assert_eq "$(metric "$ADMIN" sextant_agent_batches_failed_total)" \
    "$(f "SELECT count(*) FROM reqs WHERE status IN (429, 503, 401)")" \
    "batches_failed_total vs the collector's 429, 503 and 401s"

# The final accounting: every seq stored, dead-lettered or still spooled
# (the agent stops inside the 60 s wait), exactly one of the three.
stop_agent n1
last=$(spool_last n1)
SP="ATTACH '$TMP/n1.spool' AS sp;"
missing=$(f "$SP WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL
    SELECT x + 1 FROM s WHERE x < $last)
    SELECT x FROM s WHERE x NOT IN (SELECT seq FROM stored)
    AND x NOT IN (SELECT seq FROM sp.events)
    AND x NOT BETWEEN $dl_first AND $dl_last ORDER BY 1" | ranges)
[ -z "$missing" ] || fail "seqs neither stored, dead-lettered nor spooled: $missing"
both=$(f "$SP SELECT group_concat(seq) FROM stored
          WHERE seq BETWEEN $dl_first AND $dl_last
             OR seq IN (SELECT seq FROM sp.events)")
[ -z "$both" ] || fail "seqs stored and also dead-lettered or still spooled: $both"
both=$(f "$SP SELECT group_concat(seq) FROM sp.events
          WHERE seq BETWEEN $dl_first AND $dl_last")
[ -z "$both" ] || fail "dead-lettered seqs still in the spool: $both"
assert_eq "$(f "SELECT count(*) FROM stored WHERE seq > $last")" 0 \
    "seqs stored above the last"
assert_eq "$(f "SELECT count(*) FROM req_seqs s JOIN reqs r ON r.n = s.n
    WHERE r.status = 200 AND s.fresh = 0")" 0 "events sent again after a 200"
n_stored=$(f "SELECT count(*) FROM stored")
n_spool=$(spool_count n1)
assert_eq "$((n_stored + dl_n + n_spool))" "$last" \
    "stored $n_stored + dead-lettered $dl_n + spooled $n_spool"
echo "last seq $last: $n_stored stored, $dl_n dead-lettered, $n_spool spooled"
stop_named() { kill -TERM "$1"; wait "$1" || fail "fault_collector exited $?"; }
stop_named "$FPID"
echo "delivery_faults: all passed"
