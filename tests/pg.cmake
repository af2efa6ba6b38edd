# pg.cmake -- the tests on PostgreSQL: one real server per build folder
# for the whole ctest run (the fixture "pg"), and the matrix: each test of
# SEXTANT_PG_MATRIX runs again as NAME@pg, the same command with
# SEXTANT_TEST_PG_DIR set, so that tests/lib.sh (and store_test.c for the
# C tests) puts its stores on that server, each test in databases of its
# own (tests run in parallel). Included after every other area
# (tests/CMakeLists.txt): it copies the tests and their properties.
# Tests whose point is SQLite itself (migrations of old files, a corrupt
# file, disk full, backup, the write lock) are not in the matrix.

set(SEXTANT_PG_DIR ${CMAKE_BINARY_DIR}/pg-server)

# A server a killed run left behind (same folder, maybe still running) is
# stopped and removed first: a fresh initdb each run.
set(SEXTANT_PG_FRESH "bash \"$0\" stop \"$1\" && exec bash \"$0\" start \"$1\"")
add_test(NAME pg_server_start
         COMMAND bash -c ${SEXTANT_PG_FRESH}
                 ${CMAKE_CURRENT_SOURCE_DIR}/pg_server.sh ${SEXTANT_PG_DIR})
# 300 s: initdb alone took over 120 s at the start of a CI run (both
# suites and the fuzz build starting at once, on a shared 2-core machine).
set_tests_properties(pg_server_start PROPERTIES FIXTURES_SETUP pg
                                                LABELS postgres TIMEOUT 300)
add_test(NAME pg_server_stop
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/pg_server.sh stop
                 ${SEXTANT_PG_DIR})
set_tests_properties(pg_server_stop PROPERTIES FIXTURES_CLEANUP pg
                                               LABELS postgres TIMEOUT 120)

# The properties a NAME@pg takes from NAME (ENVIRONMENT, LABELS and
# FIXTURES_REQUIRED are extended below).
set(SEXTANT_PG_COPIED_PROPERTIES
    COST DEPENDS ENVIRONMENT FAIL_REGULAR_EXPRESSION FIXTURES_REQUIRED
    LABELS PASS_REGULAR_EXPRESSION PROCESSORS REQUIRED_FILES RESOURCE_LOCK
    RUN_SERIAL SKIP_REGULAR_EXPRESSION TIMEOUT WILL_FAIL WORKING_DIRECTORY)

# sextant_pg_matrix(NAME...): NAME@pg for each NAME, a test defined with
# sextant_add_test or add_script_test.
function(sextant_pg_matrix)
    foreach(name ${ARGN})
        get_property(cmd GLOBAL PROPERTY SEXTANT_TEST_COMMAND_${name})
        if(NOT cmd)
            message(FATAL_ERROR "pg.cmake: ${name} is not a test defined "
                                "with sextant_add_test or add_script_test")
        endif()
        add_test(NAME ${name}@pg COMMAND ${cmd})
        foreach(prop ${SEXTANT_PG_COPIED_PROPERTIES})
            get_test_property(${name} ${prop} val)
            if(NOT val STREQUAL "NOTFOUND")
                set_property(TEST ${name}@pg PROPERTY ${prop} "${val}")
            endif()
        endforeach()
        set_property(TEST ${name}@pg APPEND PROPERTY ENVIRONMENT
                     "SEXTANT_TEST_PG_DIR=${SEXTANT_PG_DIR}")
        set_property(TEST ${name}@pg APPEND PROPERTY FIXTURES_REQUIRED pg)
        set_property(TEST ${name}@pg APPEND PROPERTY LABELS postgres)
        # 77: a test that finds nothing to check on PostgreSQL says so.
        set_property(TEST ${name}@pg PROPERTY SKIP_RETURN_CODE 77)
    endforeach()
endfunction()

# The one list: the store, API and incident tests. In
# collector_store_incident (the C driver tests) the leader's engine on
# PostgreSQL reads committed events once per leader tick, so its rows,
# counters and announcements trail the ingest: each sub-test first waits
# for the engine to have settled every stored event (engine_cursor at the
# newest id, store_test_wait_engine), then for what it asserts.
sextant_pg_matrix(
    collector_store
    collector_store_incident
    collector_timeline
    collector_timeline_pages
    collector_timeline_service
    collector_timeline_skew
    collector_timeline_annotations
    collector_clusters
    collector_latency
    collector_delivery
    collector_replay
    collector_clock
    collector_incidents_ap
    collector_incidents_aa
    collector_incidents_restart
    collector_incidents_api
    collector_incident_webhooks
    collector_api_gzip
    collector_api_tokens
    e2e_once
)

# Longer than on SQLite: collector_store_incident@pg waits for the
# leader's tick (2 s) and hold (5 s) in each of its some 17 sub-tests
# (130-150 s alone in the ASan build), so ctest starts it among the first.
set_tests_properties(collector_store_incident@pg PROPERTIES COST 150)
