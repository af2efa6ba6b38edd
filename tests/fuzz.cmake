# fuzz.cmake -- the libFuzzer harnesses of tests/fuzz/, only when
# SEXTANT_FUZZ is on. They need clang and a build instrumented throughout,
# which the default gcc build is not: tests/fuzz/run.sh configures a
# separate build (build-fuzz) for them. With the option off (the default)
# this file adds nothing.
option(SEXTANT_FUZZ "Build the libFuzzer harnesses (clang; tests/fuzz/run.sh)"
       OFF)
if(SEXTANT_FUZZ)
    add_subdirectory(${CMAKE_CURRENT_LIST_DIR}/fuzz
                     ${CMAKE_BINARY_DIR}/tests/fuzz)
endif()
