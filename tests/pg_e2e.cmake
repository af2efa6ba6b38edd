# Many collectors on one PostgreSQL (issue 15), end to end: real agents,
# collectors, tests/tcp_proxy as a round-robin load balancer, and a
# PostgreSQL server of each test's own (tests/pg_server.sh), which the
# tests crash, stop and restart. delivery_test() is tests/delivery.cmake's.
delivery_test(pg_collectors)
set_tests_properties(pg_collectors PROPERTIES LABELS postgres COST 60)
delivery_test(pg_outage)
set_tests_properties(pg_outage PROPERTIES LABELS postgres COST 60)
