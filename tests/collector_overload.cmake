# Ingest under overload: tests/ingest_load's simulated agents against a
# writer queue of 2 batches; every request must be answered (200 or 503).
add_script_test(collector_overload collector_overload.sh)
set_tests_properties(collector_overload PROPERTIES COST 21)
