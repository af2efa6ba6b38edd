# The dashboard in headless chromium (tests/web/run.mjs, driven by
# playwright-core from tests/web/node_modules) against real collectors fed
# the active-passive failover; screenshots in web-shots/ of the build.
# A few minutes on an idle machine; axe alone takes seconds a page on a
# loaded one.
add_script_test(web_dashboard web_dashboard.sh)
set_tests_properties(web_dashboard PROPERTIES TIMEOUT 1200)
