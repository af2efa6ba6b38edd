# The dashboard in headless chromium (tests/web/run.mjs, driven by
# playwright-core from tests/web/node_modules) against real collectors fed
# the active-passive failover; screenshots in web-shots/ of the build.
# A few minutes on an idle machine; axe alone takes seconds a page on a
# loaded one. Three tests, each with the collectors and the browser of
# its own (tests/web_dashboard.sh), so that ctest runs them side by
# side: as one test of some 270 s on a loaded 2-core machine it was the
# suite's critical path. WEB_PART (run.mjs --part) picks each one's
# checks: the page sweep, and the spec files' checks in two halves of
# about the same time; the last takes every check the other two do not,
# so that a new spec file runs without a line here.

# web_dashboard_part(NAME REGEX [SHOTS]): test web_dashboard_NAME runs
# the checks whose names REGEX (a JavaScript RegExp) matches, and saves
# the screenshots in the build's folder SHOTS (default: its temporary
# folder; only the page sweep takes any).
function(web_dashboard_part name regex)
    set(env ${SEXTANT_TEST_ENV} "WEB_PART=${regex}")
    if(ARGC GREATER 2)
        list(APPEND env "WEB_SHOTS=${CMAKE_BINARY_DIR}/${ARGV2}")
    endif()
    add_script_test(web_dashboard_${name} web_dashboard.sh)
    # Label "browser": scripts/test.sh runs it in the plain build only.
    # What it exercises of the C code (serving the assets and the API)
    # runs under ASan+UBSan in collector_web and the API tests; the
    # sanitized collector under a browser would double the suite's
    # longest tests for nothing the JavaScript it tests can reach.
    set_tests_properties(web_dashboard_${name} PROPERTIES COST 120
        TIMEOUT 900 LABELS browser
        ENVIRONMENT "${env}")
endfunction()
web_dashboard_part(pages "^page " web-shots)
web_dashboard_part(specs_1 "^(banner|generic|incidents): ")
web_dashboard_part(specs_2 "^(?!page |(banner|generic|incidents): )")
