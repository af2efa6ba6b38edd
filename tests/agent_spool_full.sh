# agent_spool_full.sh -- the agent's disk fills up (a real tmpfs holding
# the spool, filled by a filler file) and is freed again: every result
# the spool could not store reaches the collector as one counted,
# time-ranged drop, so that stored + dropped = every seq the agent used,
# with no gap; the agent's dropped counter says the same number, and its
# log says so once, not per result. Needs root (mount); skips otherwise.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

if [ "$(id -u)" != 0 ]; then
    echo "SKIP: agent_spool_full needs root to mount a tmpfs"
    exit 77
fi
DISK=$TMP/disk
mkdir "$DISK"
# Unmount before lib.sh's cleanup removes $TMP; the agent must be gone
# first, or the mount is busy.
spool_full_cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do kill -CONT "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    umount "$DISK" 2>/dev/null || umount -l "$DISK" 2>/dev/null || true
    cleanup
}
trap spool_full_cleanup EXIT
mount -t tmpfs -o size=4m tmpfs "$DISK" || fail "cannot mount a tmpfs"

agent_test_setup
agent_yaml_head "$DISK/spool.db" > "$CFG"
cat >> "$CFG" <<YAML
admin: {listen: "127.0.0.1:0"}
shipping: {shutdown_grace: 60s}
interval: 100ms
timeout: 90ms
targets:
  - name: a
    url: "http://127.0.0.1:$TARGET_PORT/status/200"
  - name: b
    url: "http://127.0.0.1:$TARGET_PORT/status/200"
YAML
# poll WHAT CMD...: until CMD succeeds (90 s).
poll() {
    local what=$1 i
    shift
    for i in $(seq 1 900); do
        "$@" > /dev/null 2>&1 && return 0
        sleep 0.1
    done
    fail "timed out waiting for $what"
}
metric() {
    curl -sf "http://127.0.0.1:$ADMIN_PORT/metrics" \
        | awk -v m="$1" '$1 == m { print $2 }'
}
dropped_at_least() {
    [ "$(metric sextant_agent_events_dropped_total)" -ge "$1" ]
}
timeline_has() { tl | jq -e "$1"; }
now_ms() { date +%s%3N; }

"$AGENT" --config "$CFG" 2> "$TMP/agent.log" &
AGENT_PID=$!
PIDS+=($AGENT_PID)
poll "the admin port" grep -q 'admin: listening on' "$TMP/agent.log"
ADMIN_PORT=$(sed -n 's/.*admin: listening on [0-9.]*:\([0-9]*\).*/\1/p' \
             "$TMP/agent.log" | head -n1)
poll "first results stored" timeline_has \
    '[.events[] | select(.kind == "probe")] | length >= 4'

# The collector stops acking (SIGSTOP: its port stays), so the spool has
# to grow; then the disk fills.
kill -STOP "$COLLECTOR_PID"
fill_ms=$(now_ms)
dd if=/dev/zero of="$DISK/fill" bs=64k 2> /dev/null || true
[ "$(df --output=avail "$DISK" | tail -n1)" -le 64 ] || fail "disk not full"
poll "the spool to refuse writes" grep -q 'the spool refuses writes' \
    "$TMP/agent.log"
# Results keep coming and keep failing: 20 more are counted dropped.
poll "20 dropped results" dropped_at_least 20
rm -f "$DISK/fill"
free_ms=$(now_ms)
poll "the spool to take writes again" grep -q 'the spool takes writes again' \
    "$TMP/agent.log"
kill -CONT "$COLLECTOR_PID"
poll "the drop at the collector" timeline_has \
    '[.events[] | select(.kind == "drop")] | length == 1'
dropped=$(metric sextant_agent_events_dropped_total)

kill -TERM $AGENT_PID
wait $AGENT_PID || fail "agent exit status $?"
poll "the agent's STOP at the collector" timeline_has \
    '[.events[] | select(.kind == "lifecycle" and .fields.phase == "stop")]
     | length == 1'
tl > "$TMP/tl.json"
n_all=$(jq '.events | length' "$TMP/tl.json")
[ "$n_all" -lt 10000 ] || fail "timeline over one page ($n_all events)"
# Every seq the agent used is stored or inside the one drop; no gap.
last=$(jq '[.events[] | select(.seq != null) | .seq] | max' "$TMP/tl.json")
stored=$(jq '[.events[] | select(.seq != null)] | length' "$TMP/tl.json")
drop=$(jq -c '[.events[] | select(.kind == "drop")][0].fields' "$TMP/tl.json")
count=$(jq '.count' <<< "$drop")
q() { jq "$@" "$TMP/tl.json"; }
assert_eq "$(q '[.events[] | select(.kind == "gap")] | length')" 0 \
    "gap events"
assert_eq "$((stored + count))" "$last" "stored ($stored) + dropped ($count)"
assert_eq "$(q -c '[.events[] | select(.seq != null) | .seq] | sort')" \
    "$(jq -nc --argjson d "$drop" --argjson n "$last" \
       '[range(1; $n + 1) | select(. < $d.from_seq or . > $d.to_seq)]')" \
    "stored seqs are all but the drop's"
assert_eq "$(jq '.to_seq - .from_seq + 1' <<< "$drop")" "$count" \
    "drop count = its seqs"
assert_eq "$count" "$dropped" "drop count = the agent's dropped counter"
# The drop is what the agent counted when the spool took writes again.
N='\([0-9]*\)'
said=$(sed -n "s/.*the $N events it refused (agent clock $N to $N ms).*/\1 \2 \3/p" \
       "$TMP/agent.log")
assert_eq "$(jq -r '"\(.count) \(.from_ms) \(.to_ms)"' <<< "$drop")" "$said" \
    "drop = what the agent logged"
# Its span covers the outage: it starts no later than the first refusal
# (whose results were stamped when their probes started, before it), and
# ends after the disk filled (20 refusals from 2 targets are 10 runs of
# one target, and a target's runs never overlap: all but the first
# started after the disk was full) and before it was freed.
refused_ms=$(date -d "$(grep -m1 'the spool refuses writes' "$TMP/agent.log" \
             | cut -d' ' -f1)" +%s%3N)
jq -e --argjson f "$fill_ms" --argjson r "$refused_ms" --argjson t "$free_ms" \
    '.from_ms <= $r and .from_ms <= .to_ms and .to_ms >= $f
     and .to_ms <= $t' <<< "$drop" > /dev/null \
    || fail "drop $drop does not cover the outage (filled $fill_ms, first" \
            "refusal $refused_ms, freed $free_ms)"
assert_eq "$(grep -c 'the spool refuses writes' "$TMP/agent.log")" 1 \
    "refusal logged once"
echo "agent_spool_full: all passed"
