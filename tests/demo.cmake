# The README's demo (examples/demo.sh) end to end, on this build's binaries
# (the demo's app is tools/demo_app): the failover as the demo runs it
# (demo_failover), and again with one region's agent cut off from the
# collector during it (demo_chaos).
add_script_test(demo_failover demo_failover.sh)
set_tests_properties(demo_failover PROPERTIES COST 300)
# About two minutes (a one-minute cut, then the healed agent's backlog and
# the engine's replay): COST makes ctest start it first.
add_script_test(demo_chaos demo_chaos.sh)
set_tests_properties(demo_chaos PROPERTIES COST 1000)
set_property(TEST demo_chaos APPEND PROPERTY ENVIRONMENT
             "TCP_PROXY=$<TARGET_FILE:tcp_proxy>")
# Label "demo": scripts/test.sh runs these of both builds one at a time,
# beside the two suites. Their checks hold the demo's RTO to its window,
# which four demos and a dozen other tests starting at once on 2 cores
# pushed past 10 s.
set_tests_properties(demo_failover demo_chaos PROPERTIES LABELS demo)
