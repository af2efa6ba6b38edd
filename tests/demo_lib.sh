# demo_lib.sh -- running examples/demo.sh from the demo tests (sourced
# after tests/lib.sh): start it, read what it printed, check that it left
# nothing behind.

DEMO=$SEXTANT_SRC/examples/demo.sh
DEMO_OUT=$TMP/demo.out

# start_demo ARGS: the demo in the background on this build, its output
# in $DEMO_OUT; sets DEMO_PID. lib.sh's cleanup kills it on a failure
# (SIGKILL: the demo's own children may then be left, as with any test
# killed mid-way; a passing run stops them through the demo).
start_demo() {
    bash "$DEMO" --build "$SEXTANT_BIN" "$@" > "$DEMO_OUT" 2>&1 &
    DEMO_PID=$!
    PIDS+=($DEMO_PID)
}

# demo_value LABEL: the rest of the summary line starting with LABEL.
demo_value() {
    sed -n "s/^$1  *//p" "$DEMO_OUT" | head -n1
}

# demo_processes, demo_dir, demo_ports: what the demo said it started.
demo_processes() {
    sed -n 's/.*  processes: //p' "$DEMO_OUT" | tr ' ' '\n' | sed 's/.*=//'
}
demo_dir() {
    sed -n 's/.*(files in \([^,]*\), removed on exit).*/\1/p' "$DEMO_OUT"
}
demo_ports() {
    sed -n 's/.*  listening: //p' "$DEMO_OUT" | grep -o ':[0-9]*\|port [0-9]*' |
        grep -o '[0-9]*'
}

# listening PORT: a TCP listener or a UDP socket is bound to PORT
# (/proc/net: local address column, hex port).
listening() {
    local hex
    hex=$(printf '%04X' "$1")
    awk -v p="$hex" 'FNR > 1 && substr($2, index($2, ":") + 1) == p &&
        (FILENAME ~ /udp/ || $4 == "0A") { found = 1 }
        END { exit !found }' /proc/net/tcp /proc/net/tcp6 /proc/net/udp \
        /proc/net/udp6
}

# assert_demo_left_nothing: every process it listed is gone, its folder
# is removed, none of its ports is bound any more.
assert_demo_left_nothing() {
    local p dir ports
    [ -n "$(demo_processes)" ] || fail "the demo listed no processes"
    for p in $(demo_processes); do
        ! kill -0 "$p" 2> /dev/null ||
            fail "process $p the demo started is still alive: $(tr '\0' ' ' < "/proc/$p/cmdline")"
    done
    dir=$(demo_dir)
    [ -n "$dir" ] || fail "the demo did not say where its files are"
    [ ! -e "$dir" ] || fail "the demo left $dir: $(ls -A "$dir")"
    ports=$(demo_ports)
    [ "$(wc -w <<< "$ports")" -ge 5 ] || fail "the demo listed ports: '$ports'"
    for p in $ports; do
        ! listening "$p" || fail "port $p of the demo is still bound"
    done
}
