# The metric scrape probe: the Prometheus text parser on its own, and the
# probe against a libmicrohttpd server inside the test.
add_executable(test_promtext test_promtext.c)
target_link_libraries(test_promtext PRIVATE sextant_agent_core
                                            PkgConfig::CMOCKA)
add_test(NAME agent_promtext COMMAND test_promtext)
set_tests_properties(agent_promtext PROPERTIES TIMEOUT 60)

add_executable(test_agent_metric test_agent_metric.c)
target_link_libraries(test_agent_metric PRIVATE sextant_agent_core
                                                PkgConfig::CMOCKA
                                                PkgConfig::MHD
                                                Threads::Threads)
add_test(NAME agent_metric COMMAND test_agent_metric)
set_tests_properties(agent_metric PROPERTIES TIMEOUT 60)
