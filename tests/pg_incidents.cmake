# The incident engine with two collectors on one PostgreSQL database
# (collector/pg_incident.c): the leader's engine, its takeover after a
# kill -9, and the incidents equal to a SQLite collector's. On the ctest
# run's server (tests/pg.cmake's fixture "pg": pg-server in the build
# folder).
add_script_test(pg_incidents pg_incidents.sh)
set_tests_properties(pg_incidents PROPERTIES LABELS postgres COST 40
                                             FIXTURES_REQUIRED pg)
set_property(TEST pg_incidents APPEND PROPERTY ENVIRONMENT
             "SEXTANT_TEST_PG_DIR=${CMAKE_BINARY_DIR}/pg-server")
