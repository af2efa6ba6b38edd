# The store's incident driver against the engine, on real files: the
# worked example from wire batches, live equal to a rebuild (restart,
# late agent), offsets, annotations, status.
add_executable(test_store_incident test_store_incident.c store_test.c)
target_link_libraries(test_store_incident PRIVATE collector_core
                                                  PkgConfig::CMOCKA)
sextant_add_test(collector_store_incident test_store_incident)
set_tests_properties(collector_store_incident PROPERTIES COST 48)
set_tests_properties(collector_store_incident PROPERTIES TIMEOUT 600)
