# The DNS answer watch: unit tests against a dnsmasq the test starts on a
# free loopback port, and the real agent end to end through a collector.
add_executable(test_agent_dns test_agent_dns.c)
target_link_libraries(test_agent_dns PRIVATE sextant_agent_core
                                             PkgConfig::CMOCKA)
add_test(NAME agent_dns COMMAND test_agent_dns)
set_tests_properties(agent_dns PROPERTIES TIMEOUT 120)

add_script_test(agent_dns_e2e agent_dns.sh)
