# The collector store's rollups, retention, group commits and migration
# against a brute-force recomputation (json-c reads store_latency's reply).
pkg_check_modules(JSONC REQUIRED IMPORTED_TARGET json-c)
add_executable(test_rollup test_rollup.c store_test.c)
target_link_libraries(test_rollup PRIVATE collector_core PkgConfig::CMOCKA
                      PkgConfig::JSONC PkgConfig::SQLITE m)
add_test(NAME collector_rollup COMMAND test_rollup)
set_tests_properties(collector_rollup PROPERTIES COST 68)
add_script_test(collector_latency collector_latency.sh)
