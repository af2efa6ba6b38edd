# bg.sh -- sourced by scripts/test.sh and tests/fuzz/run.sh: stopping the
# background parts a script started, when it leaves early (a failed
# build, Ctrl-C) or at its end.

# bg_stop PID...: each PID (a `( ... ) &` subshell), its children first,
# then waits for all of them.
bg_stop() {
    local p
    for p in "$@"; do
        pkill -TERM -P "$p" 2> /dev/null || true
        kill "$p" 2> /dev/null || true
    done
    wait 2> /dev/null || true
}
