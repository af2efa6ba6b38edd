add_executable(test_wire test_wire.c)
target_link_libraries(test_wire PRIVATE sextant_wire PkgConfig::CMOCKA)
add_test(NAME wire COMMAND test_wire)
