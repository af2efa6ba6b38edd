# The DNS answer watch: unit tests against a dnsmasq the test starts on a
# free loopback port, and the real agent end to end through a collector.
# test_agent_dns: answers and their changes; test_agent_dns_input: hostile
# replies and config errors. Both over the fixture in dns_test.c.
foreach(part dns dns_input)
    add_executable(test_agent_${part} test_agent_${part}.c dns_test.c)
    target_link_libraries(test_agent_${part} PRIVATE sextant_agent_core
                                                     PkgConfig::CMOCKA)
    add_test(NAME agent_${part} COMMAND test_agent_${part})
    set_tests_properties(agent_${part} PROPERTIES TIMEOUT 120)
endforeach()

add_script_test(agent_dns_e2e agent_dns.sh)
# HTTP targets resolved through a configured resolver (dnsmasq), as
# clients reach a service through its global name.
add_script_test(agent_resolver agent_resolver.sh)
set_tests_properties(agent_resolver PROPERTIES COST 16)
