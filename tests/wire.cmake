# proto/wire.c: decoding and framing in test_wire, the validation rules in
# test_wire_validate, both over the one batch in wire_test.c.
foreach(part wire wire_validate)
    add_executable(test_${part} test_${part}.c wire_test.c)
    target_link_libraries(test_${part} PRIVATE sextant_wire PkgConfig::CMOCKA)
    add_test(NAME ${part} COMMAND test_${part})
endforeach()

add_executable(test_yconf test_yconf.c)
target_link_libraries(test_yconf PRIVATE sextant_common PkgConfig::CMOCKA)
add_test(NAME yconf COMMAND test_yconf)
