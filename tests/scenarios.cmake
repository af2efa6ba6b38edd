# Incident scenarios with a ground truth, fed to a real collector by
# scenario_feed (tests/scenarios/).
add_script_test(collector_incidents collector_incidents.sh)
set_tests_properties(collector_incidents PROPERTIES TIMEOUT 900)
