# Incident scenarios with a ground truth, fed to a real collector by
# scenario_feed (tests/scenarios/): each test runs the scenarios named.
# Every scenario starts a collector of its own, so the eight and the
# restart run are three tests of about 45 s (one of 160 s was the
# suite's critical path): ctest runs them side by side. A scenario with
# expect lines goes in one of these lists (collector_incidents.sh runs
# only the names it is given).
add_script_test(collector_incidents_ap collector_incidents.sh)
set_tests_properties(collector_incidents_ap PROPERTIES COST 55 TIMEOUT 600
    ENVIRONMENT "${SEXTANT_TEST_ENV};SCENARIOS=ap_failover ap_partition ap_skew;RESTART=0")
add_script_test(collector_incidents_aa collector_incidents.sh)
set_tests_properties(collector_incidents_aa PROPERTIES COST 55 TIMEOUT 600
    ENVIRONMENT "${SEXTANT_TEST_ENV};SCENARIOS=aa_drain broken_agent flapping;RESTART=0")
# The restart run (the active-passive failover, collector restarted in
# the middle) with the last two.
add_script_test(collector_incidents_restart collector_incidents.sh)
set_tests_properties(collector_incidents_restart PROPERTIES COST 55 TIMEOUT 600
    ENVIRONMENT "${SEXTANT_TEST_ENV};SCENARIOS=sharded_outage silent_watchers")
# The webhooks of one scenario's incident, opened to closed, in order.
add_script_test(collector_incident_webhooks collector_incident_webhooks.sh)
# The same collector restarted mid-incident with its engine's rebuild held
# (catching up) while the rest of the scenario is ingested.
add_script_test(collector_catchup collector_incidents.sh)
set_tests_properties(collector_catchup PROPERTIES COST 12)
set_tests_properties(collector_catchup PROPERTIES TIMEOUT 600
    ENVIRONMENT "${SEXTANT_TEST_ENV};CATCHUP=1")
