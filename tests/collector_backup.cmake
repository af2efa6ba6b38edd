# The collector's database under stress: online backups while ingesting,
# kill -9 in the middle of group commits, and absurd events (the last are
# in collector_errors.sh).
add_script_test(collector_backup collector_backup.sh)
add_script_test(collector_kill collector_kill.sh)
set_tests_properties(collector_kill PROPERTIES COST 45)
