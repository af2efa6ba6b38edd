# ingest_lib.sh -- helpers for tests that run ingest_client in its loop
# mode (--batches) beside a collector: what each client has sent and had
# acked so far, and which seqs a window of the timeline holds. Sourced
# after lib.sh.

# start_loop NAME ARGS...: ingest_client --batches ... to the collector at
# $URL, printing to $TMP/NAME.out; sets LOOP_PID.
start_loop() {
    local name=$1; shift
    "$INGEST_CLIENT" --url "$URL/v1/ingest" --token "$TOKEN" "$@" \
        > "$TMP/$name.out" &
    LOOP_PID=$!
    PIDS+=($LOOP_PID)
}

# reap PID: waits for a process this test started and forgets it, so
# cleanup never signals a pid the system may have given to another.
reap() {
    local p keep=()
    wait "$1" 2> /dev/null || true
    for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

# last_acked NAME / last_sent NAME: the last ack (0 if none) and the last
# seq sent (0 if none) that loop NAME printed so far. Each line is one
# write(), so a line is read whole or not at all.
last_acked() {
    { grep '^200 ' "$TMP/$1.out" || echo "200 0"; } | tail -n1 | cut -d' ' -f2
}
last_sent() {
    { grep '^sent ' "$TMP/$1.out" || echo "sent 0-0"; } | tail -n1 |
        sed 's/.*-//'
}

# acks NAME: how many batches loop NAME got acked.
acks() {
    grep -c '^200 ' "$TMP/$1.out" || true
}

# wait_acks_above NAME N: until loop NAME has an ack above seq N.
wait_acks_above() {
    wait_until 30 "$1: no ack above $2 (the collector stopped ingesting?)" \
        acked_above "$1" "$2"
}
acked_above() {
    [ "$(last_acked "$1")" -gt "$2" ]
}

# timeline_seqs FROM TO: the seq of every event of cluster "test" whose
# agent time is in [FROM, TO), in time order, one a line; pages through
# the API's 10000-event cap.
timeline_seqs() {
    local from=$1 to=$2 last
    while :; do
        api_get "api/v1/timeline?cluster=test&from=$from&to=$to&limit=10000" \
            > "$TMP/page.json" || fail "timeline query from=$from to=$to"
        jq -r '.events[].seq' "$TMP/page.json"
        [ "$(jq .truncated "$TMP/page.json")" = true ] || break
        last=$(jq '.events[-1].time_ms // empty' "$TMP/page.json")
        [ -n "$last" ] || fail "a truncated page without events"
        from=$((last + 1))
    done
}

# stored_prefix FROM TO WHAT: checks that window holds seqs 1..S once each
# (one agent's events, with nothing missing below the newest) and sets
# STORED to S.
stored_prefix() {
    timeline_seqs "$1" "$2" > "$TMP/seqs"
    STORED=$(wc -l < "$TMP/seqs")
    seq 1 "$STORED" | cmp -s - "$TMP/seqs" ||
        fail "$3: the timeline's $STORED rows" \
             "($(sort -n "$TMP/seqs" | uniq -d | wc -l) seqs twice)" \
             "are not seqs 1..$STORED once each"
}
