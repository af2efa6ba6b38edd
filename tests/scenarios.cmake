# Incident scenarios with a ground truth, fed to a real collector by
# scenario_feed (tests/scenarios/): each test runs the scenarios named.
add_script_test(collector_incidents collector_incidents.sh)
set_tests_properties(collector_incidents PROPERTIES TIMEOUT 900
    ENVIRONMENT "${SEXTANT_TEST_ENV};SCENARIOS=aa_drain ap_failover ap_partition ap_skew broken_agent flapping sharded_outage")
# Agents that watch the global name falling silent while their region
# probes go on must not open an incident on the failed former primary
# (fails with the engine of 2026-12-04: see the scenario's comment).
add_script_test(collector_incidents_silent collector_incidents.sh)
set_tests_properties(collector_incidents_silent PROPERTIES
    ENVIRONMENT "${SEXTANT_TEST_ENV};SCENARIOS=silent_watchers;RESTART=0")
