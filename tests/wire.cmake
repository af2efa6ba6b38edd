add_executable(test_wire test_wire.c)
target_link_libraries(test_wire PRIVATE sextant_wire PkgConfig::CMOCKA)
add_test(NAME wire COMMAND test_wire)

add_executable(test_yconf test_yconf.c)
target_link_libraries(test_yconf PRIVATE sextant_common PkgConfig::CMOCKA)
add_test(NAME yconf COMMAND test_yconf)
