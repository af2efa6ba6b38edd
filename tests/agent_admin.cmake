# The agent's admin surface: registry, renderer and verdicts as unit tests,
# and /healthz, /readyz and /metrics (through promtool) on a real agent.
add_executable(test_agent_metrics test_agent_metrics.c)
target_link_libraries(test_agent_metrics PRIVATE sextant_agent_core
                                                 PkgConfig::CMOCKA)
add_test(NAME agent_metrics COMMAND test_agent_metrics)

add_script_test(agent_admin agent_admin.sh)
set_tests_properties(agent_admin PROPERTIES COST 43)
# 77: promtool is missing and the test says so (it is in scripts/deps.sh).
set_tests_properties(agent_admin PROPERTIES SKIP_RETURN_CODE 77)
