# delivery_faults.sh -- the agent against a collector that answers from a
# script (tests/fault_collector): 429 with Retry-After in seconds, eight
# 503s without it, a 503 with Retry-After as an HTTP date, a 401, a 400,
# then ok. Asserted from the fake collector's request log and the agent's
# /metrics, spool and log (each failure's line says the wait it chose):
#   - Retry-After is honoured: the agent chooses exactly that wait (a date:
#     at most that far ahead) and says so, and the collector sees the next
#     request no earlier;
#   - 503 without it backs off with full jitter: each chosen wait is under
#     the doubling bound (backoff_initial, twice that, ... up to
#     backoff_max), the waits are not all equal and add up to a real
#     pause, and the collector sees each next request no earlier;
#   - 401 is retried (its events are stored later) after a backoff under
#     the cap, and logged;
# No check has an upper bound on wall time: only the agent's own choices
# are bounded, and the collector's time stamps give lower bounds.
#   - 400 puts exactly that batch in the spool's dead_letter table with the
#     collector's error text, counts it, logs it, and never sends it again;
#   - in the end every seq 1..last is either stored once or dead-lettered,
#     never both, nothing is sent again after a 200, and the counters of
#     shipped and rejected batches equal the collector's.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/delivery_lib.sh"

BACKOFF_INITIAL_MS=200
BACKOFF_MAX_MS=1000
SHIP="shipping: {batch_max_age: 100ms, backoff_initial: ${BACKOFF_INITIAL_MS}ms,
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

# The wait the agent chose after each failed request, from its log line
# "...not delivered: ...; retry K in MS ms[ (Retry-After)]", one per 429,
# 503 and 401 in the order the collector answered them (the 400 is a dead
# letter, logged apart).
declare -A TRY CHOSEN RA
failed=($(f "SELECT n FROM reqs WHERE status IN (429, 503, 401) ORDER BY n"))
mapfile -t lines < <(sed -n 's/.*not delivered: .*; retry \([0-9]*\) in \([0-9]*\) ms\(.*\)$/\1 \2 \3/p' \
                     "$TMP/n1.log")
assert_eq "${#lines[@]}" "${#failed[@]}" \
    "retry lines in the agent's log vs failed requests"
for i in "${!failed[@]}"; do
    read -r k ms rest <<< "${lines[$i]}"
    TRY[${failed[$i]}]=$k
    CHOSEN[${failed[$i]}]=$ms
    case $rest in *'(Retry-After)'*) RA[${failed[$i]}]=1 ;; *) RA[${failed[$i]}]=0 ;; esac
done
# honoured N: the collector got request N+1 no earlier than the wait the
# agent chose after reply N. Both stamps are taken by the collector (it
# stamps a request before it answers it; the agent's wait starts at the
# answer), so the gap can only be longer; 10 ms is for the ms grain.
honoured() {
    local w
    w=$(wait_ms "$1")
    [ "$w" -ge $((CHOSEN[$1] - 10)) ] ||
        fail "request $(($1 + 1)) came $w ms after reply $1; the agent chose ${CHOSEN[$1]} ms"
}
# jitter_ok N: the wait after request N is the agent's own backoff, under
# the full-jitter bound of its try number: backoff_initial doubled per
# try, capped at backoff_max.
jitter_ok() {
    local bound=$BACKOFF_INITIAL_MS t
    for ((t = 1; t < TRY[$1] && bound < BACKOFF_MAX_MS; t++)); do
        bound=$((bound * 2))
    done
    [ "$bound" -le "$BACKOFF_MAX_MS" ] || bound=$BACKOFF_MAX_MS
    [ "${RA[$1]}" = 0 ] || fail "request $1: a Retry-After where none was sent"
    [ "${CHOSEN[$1]}" -le "$bound" ] ||
        fail "request $1 (try ${TRY[$1]}): chose ${CHOSEN[$1]} ms, bound $bound ms"
}

assert_eq "${CHOSEN[2]} ${RA[2]}" "2000 1" "429 Retry-After: 2: wait chosen"
honoured 2
# An HTTP date has second grain and is 3 s ahead when the collector sends
# it: the agent reads 1 to 3 s (0 would mean the reply took over 2 s to
# reach it, on loopback), and must not add its backoff to it.
[ "${RA[11]}" = 1 ] && [ "${CHOSEN[11]}" -ge 1000 ] &&
    [ "${CHOSEN[11]}" -le 3000 ] ||
    fail "503 Retry-After: <date in 3 s>: chose ${CHOSEN[11]} ms (Retry-After: ${RA[11]})"
honoured 11
total=0; gaps=0
distinct=$(for n in $(seq 3 10); do echo "${CHOSEN[$n]}"; done | sort -u | wc -l)
for n in $(seq 3 10); do
    jitter_ok "$n"
    honoured "$n"
    total=$((total + CHOSEN[$n]))
    gaps=$((gaps + $(wait_ms "$n")))
done
echo "503 x8: the agent chose $(for n in $(seq 3 10); do printf '%s ' "${CHOSEN[$n]}"; done)ms; $gaps ms between the requests"
[ "$total" -ge 500 ] || fail "8 x 503: waits chosen add up to $total ms: no backoff"
[ "$distinct" -ge 2 ] || fail "8 x 503: every wait chosen is ${CHOSEN[3]} ms: no jitter"
jitter_ok 12
honoured 12
assert_eq "${CHOSEN[19]} ${RA[19]}" "60000 1" "503 Retry-After: 60: wait chosen"
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
