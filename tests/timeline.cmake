# The timeline's pages, formats and filters, and sextant-collector
# timeline (collector/cli_timeline.c) on a live collector's file.
add_script_test(collector_timeline_pages collector_timeline_pages.sh)
set_tests_properties(collector_timeline_pages PROPERTIES COST 79)
# Pages of a window while a loader writes, each reply checked against
# the OpenAPI document by node: minutes on a loaded 2-core machine.
set_tests_properties(collector_timeline_pages PROPERTIES TIMEOUT 900)
add_script_test(collector_timeline_service collector_timeline_service.sh)
# Corrected-order pages when agents' clocks are tens of seconds apart.
add_script_test(collector_timeline_skew collector_timeline_skew.sh)
set_tests_properties(collector_timeline_skew PROPERTIES COST 31)
# Annotations as timeline rows: merged, paged, filtered, in every format.
add_script_test(collector_timeline_annotations collector_timeline_annotations.sh)
# About 90 API calls, each a few processes: over 300 s at load 30 on 2 cores.
set_tests_properties(collector_timeline_annotations PROPERTIES COST 116 TIMEOUT 900)
