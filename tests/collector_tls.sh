# collector_tls.sh -- HTTPS between agent and collector, with certificates
# made here by openssl (a CA, a server certificate for 127.0.0.1, a client
# certificate, and a second, unrelated CA with its own client
# certificate). Collector: tls.* config errors name file, line and key;
# HTTPS serves; with tls.client_ca_file an ingest without a client
# certificate is 401, with one from another CA or one for servers only
# 403, each with a JSON reason, and with one from the CA it is stored. Agent (the real binary,
# --once): ca_file delivers; a wrong CA fails with curl's certificate
# error in the log and keeps the events spooled; tls_verify: false
# delivers without a CA; mTLS with client_cert/client_key delivers, and
# without them or with the other CA's certificate it is refused with the
# collector's reason in the log, events kept. Agent TLS keys on a wrong
# file or an http:// URL are config errors (exit 2).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pki_lib.sh"

pki_server
leaf client ca "extendedKeyUsage=clientAuth"
leaf rogue other "extendedKeyUsage=clientAuth"

# collector_yaml TLS_LINES: the test collector config plus a tls: block.
collector_yaml() {
    write_collector_config "$TMP/collector.yaml"
    printf '%s\n' "$@" >> "$TMP/collector.yaml"
}

# --- Config errors: file:line: tls.key: reason, exit 2.
cfg_error() {
    local want=$1 rc=0
    "$COLLECTOR" --config "$TMP/collector.yaml" 2> "$TMP/err" || rc=$?
    assert_eq "$rc" 2 "exit status for: $want"
    assert_eq "$(cat "$TMP/err")" "$TMP/collector.yaml:$want" "config error"
}
CERT="  cert_file: $PKI/server.pem"
KEY="  key_file: $PKI/server.key"
collector_yaml "tls:" "  cert_file: $PKI/nope.pem" "$KEY"
cfg_error "9: tls.cert_file: cannot read $PKI/nope.pem: No such file or \
directory"
collector_yaml "tls:" "$CERT"
cfg_error "9: tls.key_file: required key is missing"
collector_yaml "tls:" "$CERT" "  key_file: $PKI/client.key"
cfg_error "10: tls.key_file: $PKI/client.key does not go with cert_file \
$PKI/server.pem: The certificate and the given key do not match."
collector_yaml "tls:" "  cert_file: $PKI/server.key" "$KEY"
cfg_error "9: tls.cert_file: $PKI/server.key: no PEM certificate: No \
certificate was found."
collector_yaml "tls:" "$CERT" "$KEY" "  client_ca_file: $PKI/server.ext"
cfg_error "11: tls.client_ca_file: $PKI/server.ext: no PEM certificate"
collector_yaml "tls:" "$CERT" "$KEY" "  ca_file: $PKI/ca.pem"
cfg_error "11: tls.ca_file: unknown key"

# --- HTTPS, no client certificates.
DB=$TMP/c.db
collector_yaml "tls:" "$CERT" "$KEY"
start_collector "$DB"
grep -q "listening on 127.0.0.1:$COLLECTOR_PORT (https)" \
    "$TMP/collector.log" || fail "no https in the listening line"
HTTPS=https://127.0.0.1:$COLLECTOR_PORT
send() { "$INGEST_CLIENT" --url "$HTTPS/v1/ingest" --token "$TOKEN" "$@"; }
assert_eq "$(send --cacert "$PKI/ca.pem" --seq 1-5)" "200 5" "HTTPS ingest"
out=$(send --cacert "$PKI/other.pem" --seq 6-7) || true   # exit 1: no reply
case $out in
    "0 transport error: SSL certificate problem"*) ;;
    *) fail "wrong CA not refused by the client: $out" ;;
esac
[ "$(curl -s -o /dev/null -w '%{http_code}' \
    "http://127.0.0.1:$COLLECTOR_PORT/healthz")" != 200 ] \
    || fail "plain HTTP served on the HTTPS port"
assert_eq "$(curl -s --cacert "$PKI/ca.pem" "$HTTPS/healthz")" \
    '{"status":"ok"}' "healthz over HTTPS"

# --- The agent over HTTPS.
start_target
# agent_yaml NAME COLLECTOR_LINES...: config and spool of one agent run.
agent_yaml() {
    local name=$1; shift
    {
        printf 'cluster: test\nregion: eu-west-1\nnode: %s\n' "$name"
        printf 'collector:\n  url: %s\n  token: %s\n' "$HTTPS" "$TOKEN"
        for l in "$@"; do printf '  %s\n' "$l"; done
        printf 'spool:\n  path: %s\n' "$TMP/$name.spool"
        printf 'targets:\n  - name: up\n    url: http://127.0.0.1:%s/\n' \
            "$TARGET_PORT"
    } > "$TMP/$name.yaml"
}
# delivered NAME: the agent ran, exited 0, and its events are stored.
delivered() {
    "$AGENT" --config "$TMP/$1.yaml" --once 2> "$TMP/$1.log" \
        || fail "agent $1 exited $?"
    assert_eq "$(sqlite3 "$TMP/$1.spool" 'SELECT count(*) FROM events')" 0 \
        "$1: spool after the ack"
    assert_eq "$(sqlite3 "$DB" "SELECT count(*) FROM events_full e JOIN agents a
        ON a.id = e.agent_id WHERE a.node = '$1' AND e.kind = 'probe'")" 1 \
        "$1: probe stored"
}
# refused NAME PATTERN: run in the background (each gives up after some
# 15 s); refused_wait checks exit 1, PATTERN in the log, spool kept.
REFUSED=()
refused() {
    ( rc=0; "$AGENT" --config "$TMP/$1.yaml" --once 2> "$TMP/$1.log" || rc=$?
      echo "$rc" > "$TMP/$1.rc" ) &
    PIDS+=($!)
    REFUSED+=("$1|$2")
}
refused_wait() {
    local r name pat
    wait_rc() {
        local i
        for i in $(seq 1 600); do
            [ -s "$TMP/$1.rc" ] && return 0
            sleep 0.1
        done
        fail "agent $1 did not exit"
    }
    for r in "${REFUSED[@]}"; do
        name=${r%%|*}
        pat=${r#*|}
        wait_rc "$name"
        assert_eq "$(cat "$TMP/$name.rc")" 1 "$name: exit status"
        grep -q -- "not delivered: $pat" "$TMP/$name.log" \
            || fail "$name: no '$pat' in its log: $(grep 'not delivered' \
                    "$TMP/$name.log" | head -n 2)"
        assert_eq "$(sqlite3 "$TMP/$name.spool" "SELECT count(*) FROM events
            WHERE kind = 'probe'")" 1 "$name: events kept in the spool"
        assert_eq "$(sqlite3 "$DB" "SELECT count(*) FROM agents
            WHERE node = '$name'")" 0 "$name: nothing stored"
    done
    REFUSED=()
}

agent_yaml a-ca "ca_file: $PKI/ca.pem"
delivered a-ca
agent_yaml a-noverify "tls_verify: false"
delivered a-noverify
agent_yaml a-wrongca "ca_file: $PKI/other.pem"
refused a-wrongca "SSL certificate problem: unable to get local issuer \
certificate"

# Agent TLS config errors.
agent_cfg_error() {
    local rc=0
    "$AGENT" --config "$TMP/$1.yaml" --once 2> "$TMP/err" || rc=$?
    assert_eq "$rc" 2 "agent exit status for $1"
    assert_eq "$(cat "$TMP/err")" "$TMP/$1.yaml:$2" "agent config error $1"
}
agent_yaml e-missing "ca_file: $PKI/nope.pem"
agent_cfg_error e-missing "7: collector.ca_file: cannot read $PKI/nope.pem: \
No such file or directory"
agent_yaml e-notpem "client_cert: $PKI/server.ext" "client_key: $PKI/client.key"
agent_cfg_error e-notpem "7: collector.client_cert: $PKI/server.ext is not \
PEM (no -----BEGIN line)"
agent_yaml e-half "client_cert: $PKI/client.pem"
agent_cfg_error e-half "5: collector.client_key: give client_cert and \
client_key together"
agent_yaml e-http "ca_file: $PKI/ca.pem"
sed -i "s|url: https://|url: http://|" "$TMP/e-http.yaml"
agent_cfg_error e-http "7: collector.ca_file: TLS options need an \
https:// url"
refused_wait
stop_collector

# --- Client certificates required (mTLS).
collector_yaml "tls:" "$CERT" "$KEY" "  client_ca_file: $PKI/ca.pem"
start_collector "$DB"
HTTPS=https://127.0.0.1:$COLLECTOR_PORT
grep -q "(https, client certificates required for ingest)" \
    "$TMP/collector.log" || fail "mTLS not in the listening line"
before=$(db_digest "$DB")
json_refusal() {    # STATUS DETAIL-PREFIX ARGS...
    local want=$1 detail=$2 out; shift 2
    out=$(send --cacert "$PKI/ca.pem" --seq 50-51 "$@")
    assert_eq "${out%% *}" "$want" "status for $*"
    echo "${out#* }" | jq -e --arg d "$detail" \
        '.error != null and (.detail | startswith($d))' > /dev/null \
        || fail "JSON reason for $*: $out"
    assert_eq "$(db_digest "$DB")" "$before" "database after $*"
}
json_refusal 401 "this collector requires a client certificate"
json_refusal 403 "client certificate not trusted: The certificate is NOT \
trusted. The certificate issuer is unknown." \
    --cert "$PKI/rogue.pem" --key "$PKI/rogue.key"
# Signed by the CA but for servers only (the collector's own certificate).
json_refusal 403 "client certificate not trusted: The certificate is NOT \
trusted. The certificate chain does not match the intended purpose." \
    --cert "$PKI/server.pem" --key "$PKI/server.key"
grep -q "ingest refused (403): client certificate not trusted" \
    "$TMP/collector.log" || fail "refusal not logged"
assert_eq "$(send --cacert "$PKI/ca.pem" --cert "$PKI/client.pem" \
    --key "$PKI/client.key" --seq 6-7)" "200 7" "ingest with a client cert"
assert_eq "$(curl -s --cacert "$PKI/ca.pem" "$HTTPS/healthz")" \
    '{"status":"ok"}' "healthz needs no client certificate"

agent_yaml m-ok "ca_file: $PKI/ca.pem" "client_cert: $PKI/client.pem" \
    "client_key: $PKI/client.key"
delivered m-ok
agent_yaml m-nocert "ca_file: $PKI/ca.pem"
refused m-nocert 'HTTP 401: {"error":"unauthorized","detail":"this '\
'collector requires a client certificate'
agent_yaml m-rogue "ca_file: $PKI/ca.pem" "client_cert: $PKI/rogue.pem" \
    "client_key: $PKI/rogue.key"
refused m-rogue 'HTTP 403: {"error":"forbidden","detail":"client '\
'certificate not trusted'
refused_wait
stop_collector
echo "collector_tls: all passed"
