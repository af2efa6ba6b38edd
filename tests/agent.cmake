# Agent tests: cmocka unit tests of its modules, and scripts that run the
# real sextant-agent binary.
add_executable(test_agent_config test_agent_config.c)
target_link_libraries(test_agent_config PRIVATE sextant_agent_core
                                                PkgConfig::CMOCKA)
add_test(NAME agent_config COMMAND test_agent_config)

# The spool, one test per part (file, append, collectors, batch), over the
# one fixture in spool_test.c.
foreach(part spool spool_append spool_collectors spool_batch)
    add_executable(test_${part} test_${part}.c spool_test.c)
    target_link_libraries(test_${part} PRIVATE sextant_agent_core
                                               PkgConfig::CMOCKA)
    add_test(NAME agent_${part} COMMAND test_${part})
endforeach()

# The spool's seq-range set alone: pure memory, checked against a model.
add_executable(test_seqset test_seqset.c)
target_link_libraries(test_seqset PRIVATE sextant_agent_core
                                          PkgConfig::CMOCKA)
add_test(NAME agent_seqset COMMAND test_seqset)

add_script_test(agent_cli agent_cli.sh)

# The HTTP probe against tests/http_target and a server thread of its own.
add_executable(test_agent_probe test_agent_probe.c)
target_link_libraries(test_agent_probe PRIVATE sextant_agent_core
                                               PkgConfig::CMOCKA
                                               Threads::Threads)
add_test(NAME agent_probe COMMAND test_agent_probe)
set_tests_properties(agent_probe PROPERTIES
    ENVIRONMENT "HTTP_TARGET=$<TARGET_FILE:http_target>" TIMEOUT 60)

# The shipper against a fake collector (libmicrohttpd) in the test: what
# it sends, and what it does when refused, over the fixture in
# shipper_test.c.
foreach(part shipper shipper_fail)
    add_executable(test_agent_${part} test_agent_${part}.c shipper_test.c)
    target_link_libraries(test_agent_${part} PRIVATE sextant_agent_core
                                                     PkgConfig::CMOCKA
                                                     PkgConfig::MHD
                                                     Threads::Threads)
    add_test(NAME agent_${part} COMMAND test_agent_${part})
    set_tests_properties(agent_${part} PROPERTIES TIMEOUT 60)
endforeach()

add_script_test(agent_signal agent_signal.sh)
add_script_test(agent_once_unacked agent_once_unacked.sh)
set_tests_properties(agent_once_unacked PROPERTIES COST 16)
# The collector closes idle keep-alive connections; no batch fails for it.
add_script_test(agent_keepalive agent_keepalive.sh)
set_tests_properties(agent_keepalive PROPERTIES COST 37)

# probe_curl_start()'s every way out, with a test type and the real ones.
add_executable(test_agent_probe_curl test_agent_probe_curl.c)
target_link_libraries(test_agent_probe_curl PRIVATE sextant_agent_core
                                                    PkgConfig::CMOCKA)
add_test(NAME agent_probe_curl COMMAND test_agent_probe_curl)
set_tests_properties(agent_probe_curl PROPERTIES TIMEOUT 60)
