# The README's demo (examples/demo.sh) end to end, on this build's binaries
# (the demo's app is tools/demo_app): the failover as the demo runs it
# (demo_failover), and again with one region's agent cut off from the
# collector during it (demo_chaos).
add_script_test(demo_failover demo_failover.sh)
