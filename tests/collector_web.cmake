# collector_web.cmake -- the dashboard compiled into the collector:
# web.c's table and replies (unit), and "/", /assets/, ETags, gzip and
# tokens over HTTP (end to end); the API's replies in gzip.
add_executable(test_web test_web.c)
target_link_libraries(test_web PRIVATE collector_core PkgConfig::CMOCKA)
add_test(NAME collector_web_unit COMMAND test_web)

add_script_test(collector_web collector_web.sh)
set_tests_properties(collector_web PROPERTIES COST 40)

# The API's GET replies in gzip by Accept-Encoding, their ETags and 304s.
add_script_test(collector_api_gzip collector_api_gzip.sh)
set_tests_properties(collector_api_gzip PROPERTIES COST 68)
