# The incident engine (collector/incident.c): scenarios with a ground
# truth to the millisecond, fed as event lists with explicit times.
add_executable(test_incident test_incident.c incident_world.c)
target_link_libraries(test_incident PRIVATE collector_core PkgConfig::CMOCKA)
add_test(NAME collector_incident COMMAND test_incident)
