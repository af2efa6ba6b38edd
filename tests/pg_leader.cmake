# The PostgreSQL backend's leadership and retention (collector/pg_store.c):
# two collectors on a real PostgreSQL 15 the test starts itself.
add_script_test(pg_leader pg_leader.sh)
set_tests_properties(pg_leader PROPERTIES LABELS postgres COST 26)
