# pg_tls.sh -- TLS between the collector and PostgreSQL (store.postgres
# conninfo, libpq's sslmode/sslrootcert/sslcert/sslkey), on a server of
# the test's own that takes TLS connections only: certificates made here
# by openssl (a CA, the server's certificate for 127.0.0.1, a client
# certificate for the user postgres, and an unrelated CA), pg_hba.conf
# with hostssl lines only and clientcert=verify-full. A collector with
# sslmode=verify-full, the CA and the client certificate becomes ready,
# stores a batch, and every connection it holds is TLS (pg_stat_ssl).
# One given the other CA stays unready: /readyz 503 "database
# unreachable: ..." with libpq's certificate error, a log line saying
# the same, its ingest refused with 503, and the database as it was; so
# does one without a client certificate (the server refuses it).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg_private.sh"
. "$(dirname "$0")/pki_lib.sh"

pki_server
leaf client ca "extendedKeyUsage=clientAuth" postgres

# The server: started plain (pg_server.sh makes the database over TCP),
# then TLS on and hostssl only, restarted on the same port. Its key and
# CA go in its data folder, owned by the user it runs as.
pg_private sextant
DATA=$PRIVATE_PG/data
cp "$PKI/server.pem" "$PKI/server.key" "$PKI/ca.pem" "$DATA/"
chmod 600 "$DATA/server.key"
[ "$(id -u)" != 0 ] ||
    chown postgres "$DATA/server.pem" "$DATA/server.key" "$DATA/ca.pem"
cat >> "$DATA/postgresql.conf" <<'CONF'
ssl = on
ssl_cert_file = 'server.pem'
ssl_key_file = 'server.key'
ssl_ca_file = 'ca.pem'
CONF
cat > "$DATA/pg_hba.conf" <<'HBA'
local all all trust
hostssl all all 127.0.0.1/32 trust clientcert=verify-full
HBA
"$SEXTANT_SRC/tests/pg_server.sh" halt "$PRIVATE_PG"
"$SEXTANT_SRC/tests/pg_server.sh" restart "$PRIVATE_PG"
# The test's own queries: over the server's Unix socket (its folder).
PORT=$(cat "$PRIVATE_PG/port")
SOCK="host=$PRIVATE_PG port=$PORT user=postgres dbname=sextant"
sql() {
    psql -X -q -A -t -v ON_ERROR_STOP=1 "$SOCK" -c "$1"
}
# Without TLS the server now refuses a TCP connection.
if psql -X -q -At "$CONNINFO sslmode=disable" -c 'SELECT 1' \
        > "$TMP/plain.out" 2>&1; then
    fail "the server took a connection without TLS"
fi
grep -q 'no encryption' "$TMP/plain.out" ||
    fail "plain connection: $(cat "$TMP/plain.out")"

# tls_collector NAME CONNINFO_EXTRA: collector NAME on the database with
# CONNINFO_EXTRA appended to the conninfo; does not wait for ready.
tls_collector() {
    write_collector_config "$TMP/$1.yaml"
    cat >> "$TMP/$1.yaml" <<YAML
store:
  backend: postgres
  postgres:
    conninfo: "$CONNINFO $2"
YAML
    COLLECTOR_CONFIG=$TMP/$1.yaml COLLECTOR_LOG=$TMP/$1.log \
        NO_WAIT_READY=1 start_collector "$TMP/$1.db"
    printf -v "PID_$1" %s "$COLLECTOR_PID"
    printf -v "URL_$1" %s "$URL"
}

# readyz URL: the status code of URL/readyz; its body in $TMP/readyz.
readyz() {
    curl -sS --max-time 30 -o "$TMP/readyz" -w '%{http_code}' "$1/readyz" ||
        echo 000
}
# unready_because URL WHAT: /readyz is 503 and its detail says WHAT.
unready_because() {
    [ "$(readyz "$1")" = 503 ] &&
        jq -e --arg w "$2" '.detail | startswith("database unreachable: ")
            and contains($w)' "$TMP/readyz" > /dev/null
}

# --- verify-full, the right CA and a client certificate: ready, stores.
tls_collector good "sslmode=verify-full sslrootcert=$PKI/ca.pem \
sslcert=$PKI/client.pem sslkey=$PKI/client.key"
wait_for "$TMP/good.log" ', ready$'
out=$("$INGEST_CLIENT" --url "$URL_good/v1/ingest" --token "$TOKEN" \
      --seq 1-5)
assert_eq "$out" "200 5" "ingest over a TLS database connection"
assert_eq "$(sql 'SELECT count(*) FROM events WHERE seq IS NOT NULL')" 5 \
    "events stored"
# Every connection of the collector (writer, leader, readers) is TLS;
# the leader's is there once it leads, a reader's after a query (kept
# in the pool).
wait_for "$TMP/good.log" 'this collector leads'
curl -sSf --max-time 30 "$URL_good/api/v1/clusters" > /dev/null ||
    fail "a query through the TLS connection"
conns() {
    sql "SELECT count(*), count(*) FILTER (WHERE s.ssl),
         count(*) FILTER (WHERE s.client_dn = '/CN=postgres')
         FROM pg_stat_activity a JOIN pg_stat_ssl s ON s.pid = a.pid
         WHERE a.application_name LIKE 'sextant-collector (%'"
}
three_conns() {
    [ "$(conns | cut -d'|' -f1)" -ge 3 ]
}
wait_until 30 "the collector's connections (writer, leader, reader)" \
    three_conns
c=$(conns)
n=${c%%|*}
assert_eq "$c" "$n|$n|$n" \
    "collector connections: all, TLS, with the client certificate"
echo "ok: verify-full: ready, stored, $n connections all TLS"

before=$(sql "SELECT count(*), max(id) FROM events")

# --- The wrong CA, and no client certificate (the server refuses the
# connection): never ready, and each says why. Started together.
tls_collector wrongca "sslmode=verify-full sslrootcert=$PKI/other.pem \
sslcert=$PKI/client.pem sslkey=$PKI/client.key"
tls_collector nocert "sslmode=verify-full sslrootcert=$PKI/ca.pem"
wait_until 60 "wrong CA: /readyz names the certificate error" \
    unready_because "$URL_wrongca" "certificate verify failed"
echo "ok: wrong CA: $(jq -r .detail "$TMP/readyz")"
wait_for "$TMP/wrongca.log" 'certificate verify failed'
grep 'certificate verify failed' "$TMP/wrongca.log" | head -n1
out=$("$INGEST_CLIENT" --url "$URL_wrongca/v1/ingest" --token "$TOKEN" \
      --node other --seq 1-5)
case $out in
503\ *) ;;
*) fail "wrong CA: ingest answered $out, want 503" ;;
esac
wait_until 60 "no client certificate: /readyz names the refusal" \
    unready_because "$URL_nocert" "certificate"
echo "ok: no client certificate: $(jq -r .detail "$TMP/readyz")"

# Nothing else changed: the same rows; the good collector still ready.
assert_eq "$(sql "SELECT count(*), max(id) FROM events")" "$before" \
    "events after the refused collectors"
assert_eq "$(readyz "$URL_good")" 200 "the good collector's /readyz"
echo "pg_tls: all passed"
