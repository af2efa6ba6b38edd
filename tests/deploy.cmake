# deploy/: every manifest validates against the Kubernetes API schemas,
# and its configs, ports, probe paths and commands fit the binaries
# (tests/deploy/check.mjs, node modules in tests/deploy/).
add_script_test(deploy_manifests deploy_manifests.sh)
