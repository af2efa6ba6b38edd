# The dashboard in headless chromium (tests/web/run.mjs, driven by
# playwright-core from tests/web/node_modules) against real collectors fed
# the active-passive failover; screenshots in web-shots/ of the build.
# A few minutes on an idle machine; axe alone takes seconds a page on a
# loaded one.
add_script_test(web_dashboard web_dashboard.sh)
set_tests_properties(web_dashboard PROPERTIES COST 175)
# Label "browser": scripts/test.sh runs it in the plain build only. What it
# exercises of the C code (serving the assets and the API) runs under
# ASan+UBSan in collector_web and the API tests; the sanitized collector
# under a browser would double the suite's longest test for nothing the
# JavaScript it tests can reach.
set_tests_properties(web_dashboard PROPERTIES TIMEOUT 1200 LABELS browser)
