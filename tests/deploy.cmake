# deploy/: every manifest validates against the Kubernetes API schemas,
# and its configs, ports, probe paths and commands fit the binaries
# (tests/deploy/check.mjs, node modules in tests/deploy/).
add_script_test(deploy_manifests deploy_manifests.sh)
# 6-20 s (plain and ASan, loaded machine): most of it node loading the
# schemas and the two binaries started once.
set_tests_properties(deploy_manifests PROPERTIES COST 12)
