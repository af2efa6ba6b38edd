# Programs of the collector's benchmarks (bench/ingest_bench.sh,
# bench/query_bench.sh, bench/drain_bench.sh), built here because only
# tests/*.cmake are included. Built with everything so that they keep
# compiling; never run by ctest.
add_library(bench_support STATIC ${CMAKE_SOURCE_DIR}/bench/bench_events.c
                                 ${CMAKE_SOURCE_DIR}/bench/bench_db.c)
target_include_directories(bench_support PUBLIC ${CMAKE_SOURCE_DIR}/bench)
target_link_libraries(bench_support PUBLIC collector_core m)

# The simulated agents posting pre-encoded batches (libcurl multi).
add_executable(ingest_load ${CMAKE_SOURCE_DIR}/bench/ingest_load.c)
target_link_libraries(ingest_load PRIVATE bench_support sextant_wire
                                          PkgConfig::CURL)

# SQLite alone: the same rows into the collector's schema.
add_executable(raw_ceiling ${CMAKE_SOURCE_DIR}/bench/raw_ceiling.c)
target_link_libraries(raw_ceiling PRIVATE bench_support)

# A collector database of 50 million events and their rollups.
add_executable(query_fill ${CMAKE_SOURCE_DIR}/bench/query_fill.c)
target_link_libraries(query_fill PRIVATE bench_support)

# The incident engine alone: events per second (bench/RESULTS.md).
add_executable(incident_bench ${CMAKE_SOURCE_DIR}/bench/incident_bench.c)
target_link_libraries(incident_bench PRIVATE collector_core)

# A collector database of services, failovers and DNS changes, for the
# incident rebuild benchmark (bench/incident_bench.sh).
add_executable(incident_fill ${CMAKE_SOURCE_DIR}/bench/incident_fill.c)
target_link_libraries(incident_fill PRIVATE bench_support)
