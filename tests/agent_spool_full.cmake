# Needs root to mount a tmpfs (CI runs as root); exit 77 is a skip.
add_script_test(agent_spool_full agent_spool_full.sh)
set_tests_properties(agent_spool_full PROPERTIES SKIP_RETURN_CODE 77)
