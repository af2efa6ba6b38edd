# Incident scenarios with a ground truth, fed to a real collector by
# scenario_feed (tests/scenarios/): each test runs the scenarios named.
add_script_test(collector_incidents collector_incidents.sh)
set_tests_properties(collector_incidents PROPERTIES COST 70)
set_tests_properties(collector_incidents PROPERTIES TIMEOUT 900
    ENVIRONMENT "${SEXTANT_TEST_ENV};SCENARIOS=aa_drain ap_failover ap_partition ap_skew broken_agent flapping sharded_outage silent_watchers")
# The webhooks of one scenario's incident, opened to closed, in order.
add_script_test(collector_incident_webhooks collector_incident_webhooks.sh)
# The same collector restarted mid-incident with its engine's rebuild held
# (catching up) while the rest of the scenario is ingested.
add_script_test(collector_catchup collector_incidents.sh)
set_tests_properties(collector_catchup PROPERTIES COST 12)
set_tests_properties(collector_catchup PROPERTIES TIMEOUT 600
    ENVIRONMENT "${SEXTANT_TEST_ENV};CATCHUP=1")
