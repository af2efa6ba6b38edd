# The queries on PostgreSQL (collector/pg_query.c, pg_tl.c) against
# SQLite's: the same batches into a collector on each, every reply
# compared byte for byte (tests/pg_api_parity.sh), on the ctest run's
# PostgreSQL (the fixture "pg" of tests/pg.cmake).
add_script_test(pg_api_parity pg_api_parity.sh)
set_property(TEST pg_api_parity APPEND PROPERTY ENVIRONMENT
             "SEXTANT_TEST_PG_DIR=${CMAKE_BINARY_DIR}/pg-server")
set_tests_properties(pg_api_parity PROPERTIES LABELS postgres COST 40
                                              FIXTURES_REQUIRED pg)
