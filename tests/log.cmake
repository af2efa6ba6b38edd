# common/log.c: escaping of every logged line (no forged lines).
add_executable(test_log test_log.c)
target_link_libraries(test_log PRIVATE sextant_common PkgConfig::CMOCKA)
add_test(NAME log COMMAND test_log)
