add_executable(test_agent_health test_agent_health.c)
target_link_libraries(test_agent_health PRIVATE sextant_agent_core
                                                PkgConfig::CMOCKA)
add_test(NAME agent_health COMMAND test_agent_health)

add_script_test(agent_health_e2e agent_health_e2e.sh)
