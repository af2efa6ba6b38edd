# dnsmasq_lib.sh -- a real dnsmasq as the traffic manager's DNS, for the
# end-to-end tests (sourced after tests/lib.sh): it answers from the hosts
# file $HOSTS with a TTL of 5 s and NXDOMAIN for any other name under
# global.test. Rewrite $HOSTS and send SIGHUP to move a name, as a
# failover would.

DNSMASQ=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
[ -x "$DNSMASQ" ] || fail "dnsmasq not found (Debian package dnsmasq-base)"

# dnsmasq_settled: it read the hosts file, or it exited (port taken).
dnsmasq_settled() {
    grep -q "read $HOSTS" "$TMP/dnsmasq.log" || ! kill -0 "$DNS_PID" 2> /dev/null
}

# start_dnsmasq LINE: HOSTS=$TMP/hosts holding LINE ("ADDR NAME"), served
# on a random port, again on another while it is taken (dnsmasq exits at
# once then); sets DNS_PORT and DNS_PID.
start_dnsmasq() {
    local i user=()
    HOSTS=$TMP/hosts
    echo "$1" > "$HOSTS"
    [ "$(id -u)" = 0 ] && user=(--user=root)
    for i in $(seq 1 10); do
        DNS_PORT=$((20000 + RANDOM % 40000))
        "$DNSMASQ" --keep-in-foreground --port="$DNS_PORT" \
            --listen-address=127.0.0.1 --bind-interfaces --no-resolv \
            --no-hosts --addn-hosts="$HOSTS" --local-ttl=5 \
            --pid-file="$TMP/dnsmasq.pid" --conf-file=/dev/null \
            --local=/global.test/ --log-facility=- "${user[@]}" \
            2> "$TMP/dnsmasq.log" &
        DNS_PID=$!
        PIDS+=($DNS_PID)
        wait_until 30 "dnsmasq neither read $HOSTS nor exited" \
            dnsmasq_settled
        grep -q "read $HOSTS" "$TMP/dnsmasq.log" && return 0
        kill -9 "$DNS_PID" 2> /dev/null || true
    done
    fail "cannot start dnsmasq"
}
