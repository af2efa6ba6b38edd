# pg_ingest.sh -- exactly-once ingest from two collectors on one
# PostgreSQL database (collector/pg_writer.c, pg_ingest.c): the same
# batch sent to both at the same moment, many times, and overlapping
# batches of one agent, are each stored once, with the watermark what
# they acked last; a drop report both get at once makes one drop event
# and one gap; rollup rows both add to at once count every probe stored. Then the database stops during ingest: /readyz and ingest
# say 503 "database unreachable", and once it is back the same collector
# is ready again by itself, with nothing it acked lost. Last, a collector
# started while the database is down becomes ready once it is up.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ingest_lib.sh"

PG=$(mktemp -d)
stop_pg() {
    "$SEXTANT_SRC/tests/pg_server.sh" stop "$PG" > /dev/null 2>&1 || true
    cleanup
}
trap stop_pg EXIT

"$SEXTANT_SRC/tests/pg_server.sh" start "$PG" > /dev/null
CONNINFO=$("$SEXTANT_SRC/tests/pg_server.sh" createdb "$PG" ingest)
sql() {
    psql -X -q -A -t -v ON_ERROR_STOP=1 "$CONNINFO" -c "$1"
}

cat > "$TMP/collector.yaml" <<YAML
listen: 127.0.0.1:0
store:
  backend: postgres
  postgres:
    conninfo: "$CONNINFO"
clusters:
  - name: test
    token: $TOKEN
YAML

start_one() {
    COLLECTOR_LOG=$TMP/$1.log start_collector "$TMP/$1.db"
    printf -v "PID_$1" %s "$COLLECTOR_PID"
    printf -v "URL_$1" %s "$URL"
}
start_one a
start_one b

# send NAME URL ARGS...: one batch from ingest_client to URL, its reply
# line in $TMP/NAME.
send() {
    local name=$1 url=$2
    shift 2
    "$INGEST_CLIENT" --url "$url/v1/ingest" --token "$TOKEN" "$@" \
        > "$TMP/$name"
}
# dups NODE: seqs of agent NODE stored more than once (none: empty).
dups() {
    sql "SELECT e.seq FROM events e JOIN agents a ON a.id = e.agent_id
         WHERE a.node = '$1' AND e.seq IS NOT NULL
         GROUP BY e.seq HAVING count(*) > 1"
}
stored() {
    sql "SELECT count(DISTINCT e.seq) FROM events e JOIN agents a
         ON a.id = e.agent_id WHERE a.node = '$1' AND e.seq IS NOT NULL"
}
acked() {
    sql "SELECT acked_seq FROM agents WHERE node = '$1'"
}
notes() {
    sql "SELECT k.name || ' ' || e.data FROM events e
         JOIN agents a ON a.id = e.agent_id JOIN kinds k ON k.id = e.kind_id
         WHERE a.node = '$1' AND e.seq IS NULL ORDER BY e.unix_ms, e.id"
}

# (a) The same batch to both collectors at once, 50 times. Each client
# picks its own t0 (now), so the two copies differ in unix_ms: the
# unique key (agent_id, seq, unix_ms) cannot be what keeps them once.
for i in $(seq 1 50); do
    lo=$(( (i - 1) * 10 + 1 )) hi=$(( i * 10 ))
    send same_a "$URL_a" --node same --seq "$lo-$hi" --oldest-seq "$lo" &
    pa=$!
    send same_b "$URL_b" --node same --seq "$lo-$hi" --oldest-seq "$lo" &
    pb=$!
    wait "$pa" "$pb" || true    # the replies say what went wrong
    [ "$(cat "$TMP/same_a")" = "200 $hi" ] && [ "$(cat "$TMP/same_b")" = "200 $hi" ] ||
        fail "batch $lo-$hi: a said '$(cat "$TMP/same_a")', b '$(cat "$TMP/same_b")'"
done
[ -z "$(dups same)" ] || fail "seqs stored twice: $(dups same | tr '\n' ' ')"
[ "$(stored same)" = 500 ] || fail "stored $(stored same) of 500 seqs"
[ "$(acked same)" = 500 ] || fail "watermark $(acked same), want 500"
[ -z "$(notes same)" ] || fail "gap or drop events: $(notes same)"

# Overlapping batches of one agent at once: 1-100 to a, 50-150 to b,
# for 10 agents. Whichever commits second stores the rest and acks 150.
for i in $(seq 1 10); do
    send ovl_a "$URL_a" --node "ovl$i" --seq 1-100 --oldest-seq 1 &
    pa=$!
    send ovl_b "$URL_b" --node "ovl$i" --seq 50-150 --oldest-seq 1 &
    pb=$!
    wait "$pa" "$pb" || true    # the replies say what went wrong
    ra=$(cut -d' ' -f2 "$TMP/ovl_a") rb=$(cut -d' ' -f2 "$TMP/ovl_b")
    grep -q '^200 ' "$TMP/ovl_a" && grep -q '^200 ' "$TMP/ovl_b" ||
        fail "ovl$i: a said '$(cat "$TMP/ovl_a")', b '$(cat "$TMP/ovl_b")'"
    [ "$ra" = 150 ] || [ "$rb" = 150 ] || fail "ovl$i: acks $ra and $rb"
done
# Per agent: rows with a seq, distinct seqs, rows without (gap, drop),
# the watermark. One query: psql's start costs more than the batches.
got=$(sql "SELECT a.node, count(e.seq), count(DISTINCT e.seq),
                  count(e.id) - count(e.seq), a.acked_seq
           FROM agents a LEFT JOIN events e ON e.agent_id = a.id
           WHERE a.node LIKE 'ovl%' GROUP BY a.node, a.acked_seq
           ORDER BY a.node" | sed 's/^ovl[0-9]*|//' | sort | uniq -c |
      sed 's/^ *//')
[ "$got" = "10 150|150|0|150" ] ||
    fail "overlapping batches: (agents rows|seqs|notes|watermark): $got"

# One drop report to both at once: 11-15 dropped, 16-20 never sent.
send gd "$URL_a" --node gd --seq 1-10
send gd_a "$URL_a" --node gd --seq 21-30 --oldest-seq 21 --drops 5:11-15 &
pa=$!
send gd_b "$URL_b" --node gd --seq 21-30 --oldest-seq 21 --drops 5:11-15 &
pb=$!
wait "$pa" "$pb" || true
[ "$(cat "$TMP/gd_a")" = "200 30" ] && [ "$(cat "$TMP/gd_b")" = "200 30" ] ||
    fail "drops: a said '$(cat "$TMP/gd_a")', b '$(cat "$TMP/gd_b")'"
got=$(notes gd | sed 's/,"from_ms.*//')
want='drop {"count":5,"from_seq":11,"to_seq":15
gap {"from_seq":16,"to_seq":20,"count":5}'
[ "$got" = "$want" ] || fail "gap and drop events: $got"
[ "$(stored gd)" = 20 ] && [ -z "$(dups gd)" ] || fail "gd: stored twice"

# Rollups from both collectors at once: 20 agents, half failing, their
# batches at one t0 (one minute, one hour) sent to a and b together, on
# top of what the batches above rolled up. Every rollup row must count
# exactly the stored probe events of its key: a row both collectors
# insert or update at once keeps both adds.
T0=$(( $(date +%s) * 1000 ))
pids=()
for i in $(seq 1 10); do
    send roll_a$i "$URL_a" --node "roll_a$i" --seq 1-50 --t0 "$T0" &
    pids+=($!)
    send roll_b$i "$URL_b" --node "roll_b$i" --seq 1-50 --t0 "$T0" \
        --error-len 8 &
    pids+=($!)
done
wait "${pids[@]}" || true
for i in $(seq 1 10); do
    [ "$(cat "$TMP/roll_a$i")" = "200 50" ] && [ "$(cat "$TMP/roll_b$i")" = "200 50" ] ||
        fail "rollup batches $i: '$(cat "$TMP/roll_a$i")', '$(cat "$TMP/roll_b$i")'"
done
# rollup_diff TABLE STEP_MS: keys whose row differs from the events.
rollup_diff() {
    sql "SELECT count(*) FROM (SELECT e.target_id, c.id AS cl,
                e.unix_ms - e.unix_ms % $2 AS t, count(*) AS n,
                count(*) FILTER (WHERE e.ok = 0) AS f
           FROM events e JOIN agents a ON a.id = e.agent_id
           JOIN clusters c ON c.name = a.cluster
           WHERE e.probe_type IS NOT NULL AND e.target_id IS NOT NULL
           GROUP BY 1, 2, 3) ev
         FULL JOIN $1 r ON (r.target_id, r.cluster_id, r.t) =
                           (ev.target_id, ev.cl, ev.t)
         WHERE r.count IS DISTINCT FROM ev.n
            OR r.failures IS DISTINCT FROM ev.f"
}
[ "$(rollup_diff rollup_minute 60000)" = 0 ] ||
    fail "minute rollups differ from the events: $(sql "SELECT * FROM rollup_minute")"
[ "$(rollup_diff rollup_hour 3600000)" = 0 ] ||
    fail "hour rollups differ from the events: $(sql "SELECT * FROM rollup_hour")"
got=$(sql "SELECT sum(count), sum(failures) FROM rollup_minute
           WHERE t = $T0 - $T0 % 60000")
[ "${got%|*}" -ge 1000 ] && [ "${got#*|}" -ge 500 ] ||
    fail "the minute of the concurrent batches: count|failures $got"

# (b) The database stops during ingest.
URL=$URL_a start_loop out --node out --batches 100000 --batch-size 20
some_acks() {
    [ "$(acks out)" -ge 5 ]
}
wait_until 30 "the loop got acks" some_acks
"$SEXTANT_SRC/tests/pg_server.sh" halt "$PG"
readyz() {
    curl -s -o "$TMP/readyz" -w '%{http_code}' "$1/readyz"
}
down() {
    [ "$(readyz "$URL_a")" = 503 ] && grep -q 'database unreachable' "$TMP/readyz"
}
wait_until 30 "/readyz says the database is unreachable" down
send down "$URL_a" --node other --seq 1-5
grep -q '^503 .*database is unreachable' "$TMP/down" ||
    fail "ingest while down: $(cat "$TMP/down")"
kill "$LOOP_PID" 2> /dev/null || true   # it may have given up already
reap "$LOOP_PID"
"$SEXTANT_SRC/tests/pg_server.sh" restart "$PG" > /dev/null
up() {
    [ "$(readyz "$URL_a")" = 200 ]
}
wait_until 60 "collector a ready again without a restart" up
kill -0 "$PID_a" || fail "collector a exited"
last=$(last_acked out)
[ "$last" -gt 0 ] || fail "nothing acked before the outage"
[ "$(stored out)" -ge "$last" ] || fail "acked $last, stored $(stored out)"
[ -z "$(dups out)" ] || fail "seqs stored twice after the outage"
have=$(sql "SELECT count(*) FROM events e JOIN agents a ON a.id = e.agent_id
            WHERE a.node = 'out' AND e.seq BETWEEN 1 AND $last")
[ "$have" = "$last" ] || fail "acked 1-$last, $have of them stored"
# It takes batches again, and the agent's next batch goes on from there.
send after "$URL_a" --node out --seq "$((last + 1))-$((last + 5))"
grep -q '^200 ' "$TMP/after" && [ "$(cut -d' ' -f2 "$TMP/after")" -ge $((last + 5)) ] ||
    fail "after the outage: $(cat "$TMP/after")"

# A collector started while the database is down: ready once it is up.
"$SEXTANT_SRC/tests/pg_server.sh" halt "$PG"
NO_WAIT_READY=1 start_one c
down_c() {
    [ "$(readyz "$URL_c")" = 503 ] && grep -q 'database unreachable' "$TMP/readyz"
}
wait_until 30 "/readyz says the database is unreachable at start" down_c
"$SEXTANT_SRC/tests/pg_server.sh" restart "$PG" > /dev/null
wait_for "$TMP/c.log" ', ready$'
send late "$URL_c" --node late --seq 1-5
[ "$(cat "$TMP/late")" = "200 5" ] || fail "late start: $(cat "$TMP/late")"
# Both stop cleanly (the sanitizer build checks for leaks at exit), also
# the one that lived through the outage.
stop_collector
COLLECTOR_PID=$PID_a stop_collector
echo "PASS"
