# The incident webhook sender (collector/webhook.c): a cmocka test that
# posts to real receivers on loopback (tests/webhook_sink, built in
# tests/CMakeLists.txt with the other helper programs).
add_executable(test_webhook test_webhook.c)
target_link_libraries(test_webhook PRIVATE collector_core PkgConfig::CMOCKA)
add_test(NAME collector_webhook COMMAND test_webhook)
set_tests_properties(collector_webhook PROPERTIES
    ENVIRONMENT "WEBHOOK_SINK=$<TARGET_FILE:webhook_sink>" TIMEOUT 300)
