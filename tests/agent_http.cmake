# The HTTP(S) and TCP probes: cmocka tests that load targets through the
# real config parser and probe real servers on loopback (tests/http_target,
# plain and with TLS from openssl-made certificates, and raw socket
# servers), plus an end-to-end run of the agent binary.
add_executable(test_agent_http test_agent_http.c)
target_link_libraries(test_agent_http PRIVATE sextant_agent_core
                                              PkgConfig::CMOCKA
                                              Threads::Threads)
add_test(NAME agent_http COMMAND test_agent_http)
set_tests_properties(agent_http PROPERTIES
    ENVIRONMENT "HTTP_TARGET=$<TARGET_FILE:http_target>" TIMEOUT 120)

add_executable(test_agent_tcp test_agent_tcp.c)
target_link_libraries(test_agent_tcp PRIVATE sextant_agent_core
                                             PkgConfig::CMOCKA)
add_test(NAME agent_tcp COMMAND test_agent_tcp)
set_tests_properties(agent_tcp PROPERTIES TIMEOUT 60)

add_script_test(agent_http_e2e agent_http_e2e.sh)
