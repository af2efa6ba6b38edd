# The timeline's pages, formats and filters, and sextant-collector
# timeline (collector/cli_timeline.c) on a live collector's file.
add_script_test(collector_timeline_pages collector_timeline_pages.sh)
