# The incident engine (collector/incident.c): scenarios with a ground
# truth to the millisecond, fed as event lists with explicit times.
add_executable(test_incident test_incident.c incident_check.c
                             incident_world.c)
target_link_libraries(test_incident PRIVATE collector_core PkgConfig::CMOCKA)
add_test(NAME collector_incident COMMAND test_incident)

# Review 1's findings, one scenario each. realloc fails on demand
# (test_out_of_memory_*): the engine's arrays grow through it.
add_executable(test_incident_fixes test_incident_fixes.c incident_check.c
                                   incident_world.c)
target_link_libraries(test_incident_fixes PRIVATE collector_core
                                                  PkgConfig::CMOCKA)
target_link_options(test_incident_fixes PRIVATE -Wl,--wrap=realloc)
add_test(NAME collector_incident_fixes COMMAND test_incident_fixes)
