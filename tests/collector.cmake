add_executable(test_collector_config test_collector_config.c)
target_link_libraries(test_collector_config PRIVATE collector_core
                                                    PkgConfig::CMOCKA)
target_compile_definitions(test_collector_config PRIVATE
    SEXTANT_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
add_test(NAME collector_config COMMAND test_collector_config)

add_script_test(collector_cli collector_cli.sh)
add_script_test(collector_errors collector_errors.sh)
set_tests_properties(collector_errors PROPERTIES COST 56)
add_script_test(collector_replay collector_replay.sh)
add_script_test(collector_timeline collector_timeline.sh)
add_script_test(collector_incidents_api collector_incidents_api.sh)
set_tests_properties(collector_incidents_api PROPERTIES COST 33)

add_executable(test_jsonw test_jsonw.c)
target_link_libraries(test_jsonw PRIVATE collector_core PkgConfig::CMOCKA)
add_test(NAME collector_jsonw COMMAND test_jsonw)

add_executable(test_export test_export.c)
target_link_libraries(test_export PRIVATE collector_core PkgConfig::CMOCKA)
add_test(NAME collector_export COMMAND test_export)

add_script_test(e2e_once e2e_once.sh)
set_tests_properties(e2e_once PROPERTIES COST 27)

add_executable(test_store test_store.c store_test.c)
target_link_libraries(test_store PRIVATE collector_core PkgConfig::CMOCKA)
sextant_add_test(collector_store test_store)
