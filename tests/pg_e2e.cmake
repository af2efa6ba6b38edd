# Many collectors on one PostgreSQL (issue 15), end to end: real agents,
# collectors, tests/tcp_proxy as a round-robin load balancer, and a
# PostgreSQL server of each test's own (tests/pg_server.sh), which the
# tests crash, stop and restart. delivery_test() is tests/delivery.cmake's.
# 30-70 s each on an idle machine (pg_outage waits out its 30 s outage);
# this 2-core machine at a load of 25 took 170 s and over 300 s:
# hence the longer timeout (a test killed at its timeout cannot stop its
# server).
delivery_test(pg_collectors)
set_tests_properties(pg_collectors PROPERTIES LABELS postgres COST 70
                                              TIMEOUT 600)
delivery_test(pg_outage)
set_tests_properties(pg_outage PROPERTIES LABELS postgres COST 70
                                          TIMEOUT 600)
