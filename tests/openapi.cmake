# docs/openapi.yaml: the document lints, and names every route the
# collector serves (each API test checks its replies against it through
# tests/lib.sh's api_valid); GET /api/v1/clusters end to end.
add_script_test(openapi_lint openapi_lint.sh)
set_tests_properties(openapi_lint PROPERTIES COST 11)
add_script_test(collector_clusters collector_clusters.sh)
