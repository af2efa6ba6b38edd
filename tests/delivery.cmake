# Delivery tests (issue 5): real agents and collectors on loopback through
# collector crashes, agent crashes, partitions, scripted HTTP faults and a
# collector pair, with the helpers they need; and the spool filler of the
# drain benchmark (bench/drain_bench.sh), built here because only
# tests/*.cmake are included.

# A TCP proxy a test switches between pass, blackhole and refuse.
add_executable(tcp_proxy tcp_proxy.c)
target_link_libraries(tcp_proxy PRIVATE sextant_common)

# A fake collector answering from a script (429, 503, 400, ok ...).
add_executable(fault_collector fault_collector.c)
target_link_libraries(fault_collector PRIVATE sextant_wire sextant_common
                                              PkgConfig::MHD
                                              PkgConfig::SQLITE)

# Fills an agent spool with N probe events through the spool API.
add_executable(spool_fill ${CMAKE_SOURCE_DIR}/bench/spool_fill.c)
target_link_libraries(spool_fill PRIVATE sextant_agent_core)

set(DELIVERY_ENV
    "TCP_PROXY=$<TARGET_FILE:tcp_proxy>"
    "FAULT_COLLECTOR=$<TARGET_FILE:fault_collector>")

# delivery_test(NAME): tests/NAME.sh with the helpers' paths as well.
function(delivery_test name)
    add_script_test(${name} ${name}.sh)
    set_property(TEST ${name} APPEND PROPERTY ENVIRONMENT ${DELIVERY_ENV})
endfunction()

delivery_test(delivery_collector_crash)
set_tests_properties(delivery_collector_crash PROPERTIES COST 32)
delivery_test(delivery_agent_crash)
delivery_test(delivery_partition)
delivery_test(delivery_faults)
set_tests_properties(delivery_faults PROPERTIES COST 15)
delivery_test(delivery_two_collectors)
set_tests_properties(delivery_two_collectors PROPERTIES COST 34)
delivery_test(agent_spool_backlog)
