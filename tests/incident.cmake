# The incident engine (collector/incident.c): scenarios with a ground
# truth to the millisecond, fed as event lists with explicit times.
add_executable(test_incident test_incident.c incident_world.c)
target_link_libraries(test_incident PRIVATE collector_core PkgConfig::CMOCKA)
# realloc fails on demand (test_out_of_memory_*): the engine's arrays
# grow through it.
target_link_options(test_incident PRIVATE -Wl,--wrap=realloc)
add_test(NAME collector_incident COMMAND test_incident)
