# The agent side of durable delivery through the real binary: a corrupt
# spool moved aside, the shutdown grace, the spool's byte bound with real
# probes, several collectors. (Spool and shipper unit tests are in
# agent.cmake: test_spool*, test_agent_shipper*.)
add_script_test(agent_delivery agent_delivery.sh)
set_tests_properties(agent_delivery PROPERTIES COST 12)
