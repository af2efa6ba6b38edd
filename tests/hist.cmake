# The collector's latency histogram (collector/hist.c): quantile error
# against brute force, merges, and the BLOB decoder on malformed input.
add_executable(test_hist test_hist.c)
target_link_libraries(test_hist PRIVATE collector_core PkgConfig::CMOCKA)
add_test(NAME collector_hist COMMAND test_hist)
