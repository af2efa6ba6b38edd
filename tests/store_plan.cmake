# The store's statements against SQLite's query planner: each uses the
# index it is written for, and every index on events is used.
add_executable(test_store_plan test_store_plan.c store_test.c)
target_link_libraries(test_store_plan PRIVATE collector_core
                                              PkgConfig::CMOCKA)
add_test(NAME collector_store_plan COMMAND test_store_plan)
