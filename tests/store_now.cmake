# target_now (collector/store_now.c): kept by each group commit, never
# moved back by a late batch, filled once on a file from before schema 8,
# and GET /api/v1/status from it says what the history said.
add_executable(test_store_now test_store_now.c store_test.c)
target_link_libraries(test_store_now PRIVATE collector_core
                                             PkgConfig::CMOCKA)
add_test(NAME collector_store_now COMMAND test_store_now)
set_tests_properties(collector_store_now PROPERTIES TIMEOUT 300)
