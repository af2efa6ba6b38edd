# The PostgreSQL writer (collector/pg_writer.c, pg_ingest.c): exactly-once
# ingest from two collectors on a real PostgreSQL 15 the test starts
# itself, the database stopped during ingest, a collector started before
# the database.
add_script_test(pg_ingest pg_ingest.sh)
set_tests_properties(pg_ingest PROPERTIES LABELS postgres COST 61)
