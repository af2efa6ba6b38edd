# `probers: N`: rendezvous hashing alone (test_hrw), the collector's list
# (test_live), and four real agents
# of one cluster sharing six targets through one collector (probers.sh).
add_executable(test_hrw test_hrw.c)
target_link_libraries(test_hrw PRIVATE sextant_common PkgConfig::CMOCKA)
add_test(NAME hrw COMMAND test_hrw)
add_script_test(probers probers.sh)
# The collector's live node list (collector/live.c), alone.
add_executable(test_live test_live.c)
target_link_libraries(test_live PRIVATE collector_core PkgConfig::CMOCKA)
add_test(NAME live COMMAND test_live)
