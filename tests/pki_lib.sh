# pki_lib.sh -- throwaway TLS material for the tests, made by openssl in
# the folder $PKI ($TMP/pki): sourced after lib.sh (TMP, fail). Keys are
# never committed; they live as long as the test.
PKI=$TMP/pki
mkdir -p "$PKI"

# ca NAME: a self-signed CA, $PKI/NAME.pem and NAME.key.
ca() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -days 1 -subj "/CN=$1" -keyout "$PKI/$1.key" -out "$PKI/$1.pem" \
        -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign 2> /dev/null \
        || fail "openssl: CA $1"
}

# leaf NAME CA EXTENSIONS [CN]: a certificate signed by CA, for CN
# (default NAME), with EXTENSIONS (openssl -extfile lines); its key
# readable by its owner only (libpq refuses a key others can read).
leaf() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/CN=${4:-$1}" -keyout "$PKI/$1.key" -out "$PKI/$1.csr" \
        2> /dev/null || fail "openssl: key $1"
    chmod 600 "$PKI/$1.key"
    printf '%s\n' "$3" > "$PKI/$1.ext"
    openssl x509 -req -in "$PKI/$1.csr" -CA "$PKI/$2.pem" \
        -CAkey "$PKI/$2.key" -CAcreateserial -days 1 \
        -extfile "$PKI/$1.ext" -out "$PKI/$1.pem" 2> /dev/null \
        || fail "openssl: sign $1"
}

# pki_server: CA "ca", an unrelated CA "other", and "server", ca's
# certificate for a server at 127.0.0.1.
pki_server() {
    ca ca
    ca other
    leaf server ca "subjectAltName=IP:127.0.0.1
extendedKeyUsage=serverAuth" 127.0.0.1
}
