# TLS between the collector and PostgreSQL (libpq's sslmode, sslrootcert,
# sslcert, sslkey): a server of the test's own (tests/pg_server.sh) that
# takes TLS connections with a client certificate only. About 10 s.
add_script_test(pg_tls pg_tls.sh)
set_tests_properties(pg_tls PROPERTIES LABELS postgres COST 15)
