# delivery_lib.sh -- helpers of the delivery tests (tests/delivery_*.sh),
# sourced after lib.sh: agents with many fast targets, collectors that can
# be killed and restarted on the same port and database, the TCP proxy of
# tests/tcp_proxy.c, /metrics reads, a load generator that drives until a
# condition holds (waits are lib.sh's wait_until), and the exact checks of
# a store against an agent's spool: every seq once, by set, never by total.
# Not a test itself (tests/delivery.cmake registers the scripts).

: "${TCP_PROXY:?run through ctest (tests/delivery.cmake)}"
: "${FAULT_COLLECTOR:?run through ctest (tests/delivery.cmake)}"

declare -A CPID CPORT APID

# q DB SQL: one query, waiting out a writer (the agent, the collector).
q() {
    sqlite3 -cmd '.timeout 30000' "$1" "$2"
}

# count_lines FILE PATTERN: lines matching, 0 when FILE does not exist.
count_lines() {
    cat "$1" 2>/dev/null | grep -c -- "$2" || true
}

# --- collectors -----------------------------------------------------------

# start_named_collector NAME DB [PORT]: a real collector logging to
# NAME.log (appended over restarts); PORT 0 or absent picks one. Sets
# CPID[NAME], CPORT[NAME]. A restart on a port that is still being let go
# is retried for a few seconds.
start_named_collector() {
    local name=$1 db=$2 port=${3:-0} log=$TMP/$1.log try before
    [ -e "$TMP/collector.yaml" ] || write_collector_config "$TMP/collector.yaml"
    for try in $(seq 1 50); do
        before=$(count_lines "$log" 'listening on')
        "$COLLECTOR" --config "$TMP/collector.yaml" --listen "127.0.0.1:$port" \
            --db "$db" 2>> "$log" &
        CPID[$name]=$!
        PIDS+=(${CPID[$name]})
        wait_until 30 "collector $name did not start" \
            collector_up "$log" "$before" "${CPID[$name]}"
        if kill -0 "${CPID[$name]}" 2>/dev/null; then
            CPORT[$name]=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' \
                           "$log" | tail -n1)
            return 0
        fi
        wait "${CPID[$name]}" 2>/dev/null || true
        sleep 0.1
    done
    fail "collector $name cannot listen on port $port"
}

# collector_up LOG BEFORE PID: a new "listening on" line, or the process
# died (the caller looks which).
collector_up() {
    [ "$(count_lines "$1" 'listening on')" -gt "$2" ] ||
        ! kill -0 "$3" 2>/dev/null
}

# crash_collector NAME: kill -9, reaped.
crash_collector() {
    kill -9 "${CPID[$1]}" 2>/dev/null || true
    wait "${CPID[$1]}" 2>/dev/null || true
}

# stop_named_collector NAME: SIGTERM; fails unless it exits 0.
stop_named_collector() {
    kill -TERM "${CPID[$1]}"
    wait "${CPID[$1]}" || fail "collector $1 exited with $?"
}

# --- agents ---------------------------------------------------------------

# write_agent NAME COLLECTORS_YAML N_TARGETS INTERVAL [EXTRA_YAML]: the
# config $TMP/NAME.yaml with spool $TMP/NAME.spool, N_TARGETS http targets
# on the one target server, all at INTERVAL, admin on a free port.
# COLLECTORS_YAML is the "collector:" or "collectors:" block as written;
# $SPOOL_EXTRA, if set, adds keys under "spool:" (e.g. "  max_bytes: 1MiB").
write_agent() {
    local name=$1 colls=$2 n=$3 interval=$4 extra=${5:-} i
    {
        cat <<YAML
cluster: test
region: eu-west-1
node: $name
$colls
spool:
  path: $TMP/$name.spool
${SPOOL_EXTRA:-}
interval: $interval
timeout: $interval
admin: {listen: "127.0.0.1:0"}
$extra
targets:
YAML
        for i in $(seq 1 "$n"); do
            printf '  - name: t%03d\n    url: http://127.0.0.1:%s/t%03d\n' \
                "$i" "$TARGET_PORT" "$i"
        done
    } > "$TMP/$name.yaml"
}

# collector_yaml URL: a "collector:" block with the test token.
collector_yaml() {
    printf 'collector:\n  url: %s\n  token: %s\n' "$1" "$TOKEN"
}

# collectors_yaml URL...: a "collectors:" block, one item per URL.
collectors_yaml() {
    local u
    echo 'collectors:'
    for u in "$@"; do
        printf '  - url: %s\n    token: %s\n' "$u" "$TOKEN"
    done
}

# start_agent NAME: runs $TMP/NAME.yaml, log NAME.log appended over
# restarts; sets APID[NAME] (and ARUNS[NAME], the runs logged before).
declare -A ARUNS
start_agent() {
    ARUNS[$1]=$(count_lines "$TMP/$1.log" 'sextant-agent .* started')
    "$AGENT" --config "$TMP/$1.yaml" 2>> "$TMP/$1.log" &
    APID[$1]=$!
    PIDS+=(${APID[$1]})
}

# stop_agent NAME: SIGTERM once this run logged "started" (its signal
# handlers are in place then: before, SIGTERM kills it); fails unless it
# exits 0, within 60 s (its shutdown grace is seconds: a minute means it
# hangs).
stop_agent() {
    local pid=${APID[$1]} rc=0
    wait_until 60 "agent $1 never logged that it started" \
        agent_started "$1"
    kill -TERM "$pid"
    wait_until 60 "agent $1 still running after SIGTERM" \
        not_running "$pid"
    wait "$pid" || rc=$?
    [ "$rc" = 0 ] || fail "agent $1 exited $rc after SIGTERM"
}

agent_started() {
    [ "$(count_lines "$TMP/$1.log" 'sextant-agent .* started')" -gt \
      "${ARUNS[$1]}" ]
}

# not_running PID: the process is gone (a zombie until reaped counts).
not_running() {
    ! kill -0 "$1" 2>/dev/null ||
        [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" = Z ]
}

# crash_agent NAME: kill -9, reaped.
crash_agent() {
    kill -9 "${APID[$1]}" 2>/dev/null || true
    wait "${APID[$1]}" 2>/dev/null || true
}

# admin_port NAME: the admin port the agent's latest run logged.
admin_port() {
    wait_for "$TMP/$1.log" 'admin: listening on'
    sed -n 's/.*admin: listening on [0-9.]*:\([0-9]*\).*/\1/p' \
        "$TMP/$1.log" | tail -n1
}

# metric PORT SERIES: a sample's value in the agent's /metrics, or
# "absent" (SERIES with its labels, exactly as exposed).
metric() {
    curl -sS --max-time 30 "http://127.0.0.1:$1/metrics" |
        awk -v m="$2" '$1 == m { print $2; f = 1 }
                       END { if (!f) print "absent" }'
}

# metric_ge PORT SERIES MIN: whether the series is present and >= MIN.
metric_ge() {
    local v
    v=$(metric "$1" "$2")
    [ "$v" != absent ] && awk -v v="$v" -v m="$3" 'BEGIN { exit !(v >= m) }'
}

# spool_last NAME: the agent's last seq (what it ever generated).
spool_last() {
    q "$TMP/$1.spool" 'SELECT next_seq - 1 FROM meta'
}

# spool_count NAME: events still in the agent's spool.
spool_count() {
    q "$TMP/$1.spool" 'SELECT count(*) FROM events'
}

# spool_below NAME MAX: whether the spool holds at most MAX events.
spool_below() {
    [ "$(spool_count "$1")" -le "$2" ]
}

# stored_through DB NODE SEQ: the collector stored every seq 1..SEQ of the
# node's (one) epoch: its contiguous watermark reached SEQ.
stored_through() {
    [ "$(q "$1" "SELECT coalesce(max(acked_seq), 0) FROM agents
                 WHERE node = '$2'")" -ge "$3" ]
}

# --- the proxy ------------------------------------------------------------

# start_proxy NAME PORT...: a tcp_proxy to 127.0.0.1:PORT (several: each
# new connection to the next, round-robin); sets PROXY_PID[NAME] and
# PROXY_PORT[NAME]. Its log is NAME.plog (not *.log: it is chatty).
declare -A PROXY_PID PROXY_PORT
start_proxy() {
    local name=$1 p to=()
    shift
    for p in "$@"; do to+=(--to "127.0.0.1:$p"); done
    "$TCP_PROXY" "${to[@]}" > "$TMP/$name.pport" 2> "$TMP/$name.plog" &
    PROXY_PID[$name]=$!
    PIDS+=(${PROXY_PID[$name]})
    wait_for "$TMP/$name.pport" '^[0-9]'
    PROXY_PORT[$name]=$(head -n1 "$TMP/$name.pport")
}

# proxy_mode NAME pass|blackhole|refuse|oneway: switches and waits until it is in
# force (the proxy logs "proxy: mode NAME" once it is).
proxy_mode() {
    local sig before
    case $2 in
    pass) sig=HUP ;;
    blackhole) sig=USR1 ;;
    refuse) sig=USR2 ;;
    oneway) sig=WINCH ;;
    *) fail "proxy_mode: $2?" ;;
    esac
    before=$(grep -c "proxy: mode " "$TMP/$1.plog")
    kill "-$sig" "${PROXY_PID[$1]}"
    wait_until 30 "proxy $1 did not switch to $2" proxy_switched "$1" "$before"
    grep 'proxy: mode ' "$TMP/$1.plog" | tail -n1 | grep -q "proxy: mode $2\$" ||
        fail "proxy $1 is not in mode $2"
}

# stop_proxy NAME: SIGTERM; fails unless it exits 0.
stop_proxy() {
    kill -TERM "${PROXY_PID[$1]}"
    wait "${PROXY_PID[$1]}" || fail "proxy $1 exited with $?"
}

proxy_switched() {
    [ "$(grep -c "proxy: mode " "$TMP/$1.plog")" -gt "$2" ]
}

# --- exact checks ---------------------------------------------------------

# ranges: reads seqs (one a line, sorted) and prints them as "a-b,c,...".
ranges() {
    awk 'NR == 1 { s = p = $1; next }
         $1 == p + 1 { p = $1; next }
         { out = out (s == p ? s : s "-" p) ","; s = p = $1 }
         END { if (NR) out = out (s == p ? s : s "-" p) ","; print out }' |
        sed 's/,$//'
}

# check_store DB NODE LAST WHAT: the collector's store holds, for NODE,
# exactly the seqs 1..LAST, each once, in one epoch, with no gap and no
# drop event. Says which seqs are missing or extra when not.
check_store() {
    local db=$1 node=$2 last=$3 what=$4 epochs missing extra dups n
    epochs=$(q "$db" "SELECT count(*) FROM agents WHERE node = '$node'")
    [ "$epochs" = 1 ] || fail "$what: node $node has $epochs epochs in the store, want 1"
    dups=$(q "$db" "SELECT group_concat(seq) FROM (SELECT e.seq FROM events_full e
        JOIN agents a ON a.id = e.agent_id WHERE a.node = '$node'
        AND e.seq IS NOT NULL GROUP BY e.seq HAVING count(*) > 1)")
    [ -z "$dups" ] || fail "$what: node $node: seqs stored twice: $dups"
    missing=$(q "$db" "WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL
        SELECT x + 1 FROM s WHERE x < $last)
        SELECT x FROM s EXCEPT SELECT e.seq FROM events_full e
        JOIN agents a ON a.id = e.agent_id WHERE a.node = '$node'
        ORDER BY 1" | ranges)
    extra=$(q "$db" "SELECT e.seq FROM events_full e JOIN agents a
        ON a.id = e.agent_id WHERE a.node = '$node' AND e.seq > $last
        ORDER BY 1" | ranges)
    [ -z "$missing" ] || fail "$what: node $node: seqs of 1..$last missing from the store: $missing"
    [ -z "$extra" ] || fail "$what: node $node: seqs above the agent's last ($last) stored: $extra"
    n=$(q "$db" "SELECT count(*) FROM events_full e JOIN agents a
        ON a.id = e.agent_id WHERE a.node = '$node' AND e.seq IS NOT NULL")
    assert_eq "$n" "$last" "$what: node $node: events stored"
    n=$(q "$db" "SELECT count(*) FROM events_full e JOIN agents a
        ON a.id = e.agent_id WHERE a.node = '$node'
        AND e.kind IN ('gap', 'drop')")
    assert_eq "$n" 0 "$what: node $node: gap and drop events"
}

# check_cli_events DB NODE FILE: every "SEQ TEXT" line of FILE (events
# that `sextant-agent event` said it recorded) is stored with that seq as
# a marker (a drill) with that text; sets CLI_N to how many there were.
check_cli_events() {
    local db=$1 node=$2 file=$3 values bad
    values=$(awk -v q="'" '{ printf "%s(%d, %s%s%s)", (NR > 1 ? "," : ""),
                                     $1, q, $2, q }' "$file")
    bad=$(q "$db" "WITH cli(seq, text) AS (VALUES $values)
        SELECT group_concat(c.seq || ': ' || coalesce(e.kind, 'missing')
            || ' ' || coalesce(json_extract(e.data, '\$.text'), ''), ', ')
        FROM cli c LEFT JOIN (SELECT e.* FROM events_full e JOIN agents a
            ON a.id = e.agent_id WHERE a.node = '$node') e ON e.seq = c.seq
        WHERE e.kind IS NOT 'marker'
           OR json_extract(e.data, '\$.text') IS NOT c.text")
    [ -z "$bad" ] || fail "node $node: drill events not stored as recorded: ${bad:0:600}"
    CLI_N=$(wc -l < "$file")
}

# drive_events NAME OUT PAD CMD...: the load generator. Appends drill
# events to the agent's spool, $EV_CHUNK at a time with one `sextant-agent
# event --count` each, until CMD succeeds (checked before every run), and
# fails the test if CMD still fails after $EV_MAX events or 120 s. Texts
# are "evK<PAD x's>-I" (run K, event I of it); writes "SEQ TEXT" per
# recorded event to OUT. CMD may watch anything: bytes in the spool, a
# counter, a marker file another part of the test touches.
EV_CHUNK=${EV_CHUNK:-20}
EV_MAX=${EV_MAX:-200000}
drive_events() {
    local name=$1 out=$2 pad=$3 k=0 n=0 deadline fill text
    shift 3
    deadline=$(( $(now_ms) + 120000 ))
    fill=$(head -c "$pad" /dev/zero | tr '\0' 'x')
    until "$@"; do
        [ "$n" -lt "$EV_MAX" ] ||
            fail "drive_events $name: $* still false after $n events"
        [ "$(now_ms)" -lt "$deadline" ] ||
            fail "drive_events $name: $* still false after 120 s ($n events)"
        k=$((k + 1))
        text=ev$k$fill
        "$AGENT" event --config "$TMP/$name.yaml" --kind drill \
            --text "$text" --count "$EV_CHUNK" > "$TMP/$name.ev.out" \
            2>> "$TMP/$name.evloop.log" ||
            fail "sextant-agent event --count $EV_CHUNK exited $?:" \
                 "$(tail -n 3 "$TMP/$name.evloop.log")"
        awk -v t="$text" '/^recorded drill event, seq [0-9]+$/ {
                print $NF, t "-" NR }' "$TMP/$name.ev.out" >> "$out"
        [ "$(wc -l < "$TMP/$name.ev.out")" = "$EV_CHUNK" ] ||
            fail "sextant-agent event --count $EV_CHUNK printed" \
                 "$(wc -l < "$TMP/$name.ev.out") lines"
        n=$((n + EV_CHUNK))
    done
    DRIVEN=$n
}

# event_loop NAME OUT: drive_events in the background until event_loop_wait
# (or until the bound); sets EVLOOP_PID. For tests that crash things
# meanwhile: the load runs until the crashes are done, not for a time.
event_loop() {
    rm -f "$TMP/$1.evstop"
    ( drive_events "$1" "$2" 0 evloop_done "$1" "$2" ) &
    EVLOOP_PID=$!
    PIDS+=($EVLOOP_PID)
}

# evloop_done NAME OUT: told to stop, and recorded something first.
evloop_done() {
    [ -e "$TMP/$1.evstop" ] && [ -s "$2" ]
}

# event_loop_wait NAME OUT: stops the loop and waits for it; fails if
# `sextant-agent event` ever failed or recorded nothing.
event_loop_wait() {
    touch "$TMP/$1.evstop"
    wait "$EVLOOP_PID" || fail "the drill event loop failed (see above)"
    [ -s "$2" ] || fail "sextant-agent event recorded nothing"
}
