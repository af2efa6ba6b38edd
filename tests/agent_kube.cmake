# The Kubernetes API probe: a TLS test double of the API server that
# serves the recorded responses in fixtures/kube, a cmocka test of the
# probe against it, and a script through the real agent and collector.
# json-c for the test double; FindPkgConfig skips a target that exists.
pkg_check_modules(JSONC REQUIRED IMPORTED_TARGET json-c)
add_executable(kube_api_server kube_api_server.c)
target_link_libraries(kube_api_server PRIVATE PkgConfig::MHD PkgConfig::JSONC
                                              sextant_common Threads::Threads)

set(KUBE_TEST_ENV
    "KUBE_API_SERVER=$<TARGET_FILE:kube_api_server>"
    "KUBE_FIXTURES=${CMAKE_CURRENT_SOURCE_DIR}/fixtures/kube")

add_executable(test_agent_kube test_agent_kube.c)
target_link_libraries(test_agent_kube PRIVATE sextant_agent_core
                                              PkgConfig::CMOCKA m)
add_test(NAME agent_kube COMMAND test_agent_kube)
set_tests_properties(agent_kube PROPERTIES ENVIRONMENT "${KUBE_TEST_ENV}"
                                           TIMEOUT 120)

add_script_test(agent_kube_e2e agent_kube.sh)
set_property(TEST agent_kube_e2e APPEND PROPERTY ENVIRONMENT
             ${KUBE_TEST_ENV})
