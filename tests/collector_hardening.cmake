# Collector hardening: /metrics (through promtool) and /readyz, read tokens
# for the API, the whole-request deadline against slowloris clients, and
# the writer queue's back-pressure (503 + Retry-After).

# Sends a request a byte at a time, for the request deadline test.
add_executable(slow_client slow_client.c)
target_link_libraries(slow_client PRIVATE sextant_common)

add_script_test(collector_metrics collector_metrics.sh)
# 77: promtool is missing and the test says so (it is in scripts/deps.sh).
set_tests_properties(collector_metrics PROPERTIES SKIP_RETURN_CODE 77)
add_script_test(collector_api_tokens collector_api_tokens.sh)
add_script_test(collector_slowloris collector_slowloris.sh)
set_property(TEST collector_slowloris APPEND PROPERTY ENVIRONMENT
             "SLOW_CLIENT=$<TARGET_FILE:slow_client>")
# SIGTERM while a slow client holds a request: a bounded, clean stop.
add_script_test(collector_stop collector_stop.sh)
set_tests_properties(collector_stop PROPERTIES COST 11)
set_property(TEST collector_stop APPEND PROPERTY ENVIRONMENT
             "SLOW_CLIENT=$<TARGET_FILE:slow_client>")
add_script_test(collector_busy collector_busy.sh)
# /readyz and ingest while the store migrates (behind another's lock).
add_script_test(collector_migrate collector_migrate.sh)
add_script_test(collector_migrate_events collector_migrate_events.sh)
set_tests_properties(collector_migrate_events PROPERTIES COST 56)
# Migration 7: operator events that are not failovers become markers, also
# those a stopped schema 6 move had put in its new table.
add_script_test(collector_migrate_markers collector_migrate_markers.sh)
# Transfer-Encoding and duplicate Content-Length refused (smuggling).
add_script_test(collector_framing collector_framing.sh)
# limits.connections: idle connections are shed so /healthz gets in.
add_executable(hold_conns hold_conns.c)
target_link_libraries(hold_conns PRIVATE sextant_common)
add_script_test(collector_conn_limit collector_conn_limit.sh)
set_property(TEST collector_conn_limit APPEND PROPERTY ENVIRONMENT
             "HOLD_CONNS=$<TARGET_FILE:hold_conns>")
# 77: the machine's open-files hard limit is below what the test needs.
set_tests_properties(collector_conn_limit PROPERTIES SKIP_RETURN_CODE 77)
# limits.connections against the open-files limit: raised, lowered, refused.
add_script_test(collector_fd_limit collector_fd_limit.sh)
set_tests_properties(collector_fd_limit PROPERTIES SKIP_RETURN_CODE 77)
# Oversized and malformed requests are answered (ours or libmicrohttpd's).
add_script_test(collector_http_limits collector_http_limits.sh)
# The clock offset filter (absurd RTTs, spikes, a real step) over ingest.
add_script_test(collector_clock collector_clock.sh)
# A damaged database file, found at start and at run time.
add_script_test(collector_corrupt collector_corrupt.sh)
# A full disk under the database (a tmpfs: root only; 77 = skipped).
add_script_test(collector_disk_full collector_disk_full.sh)
set_tests_properties(collector_disk_full PROPERTIES SKIP_RETURN_CODE 77)
