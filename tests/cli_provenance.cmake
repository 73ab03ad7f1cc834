# Provenance on every output (tool version and SHA, catalog hash, calibration, pilot; evidence
# tiers), including the commands that print their own text instead of a rendered report.
set(MOEPLAN_PROVENANCE_LINE "moeplan [0-9.]+ \\([0-9a-f]+(-dirty)?|unknown\\), catalog ")
add_test(NAME cli:provenance:catalog-check-table COMMAND moeplan catalog check)
set_tests_properties(cli:provenance:catalog-check-table PROPERTIES
                     PASS_REGULAR_EXPRESSION "${MOEPLAN_PROVENANCE_LINE}[0-9a-f]+, calibration none")
add_test(NAME cli:provenance:regress-table
         COMMAND moeplan regress --examples ${CMAKE_SOURCE_DIR}/examples)
set_tests_properties(cli:provenance:regress-table PROPERTIES
                     PASS_REGULAR_EXPRESSION "0 failed\n${MOEPLAN_PROVENANCE_LINE}[0-9a-f]+")
# A self-contained cost scenario reads no catalog, and says so instead of leaving the hash out.
add_test(NAME cli:provenance:cost-no-catalog
         COMMAND moeplan cost ${CMAKE_SOURCE_DIR}/examples/seed-8xh200-glm52-huf.json)
set_tests_properties(cli:provenance:cost-no-catalog PROPERTIES
                     PASS_REGULAR_EXPRESSION "catalog none \\(not read\\), calibration none")
add_test(NAME cli:provenance:cost-no-catalog-json
         COMMAND moeplan cost ${CMAKE_SOURCE_DIR}/examples/seed-8xh200-glm52-huf.json --format json)
set_tests_properties(cli:provenance:cost-no-catalog-json PROPERTIES
                     PASS_REGULAR_EXPRESSION "\"catalog_hash\": null")
# Measured pilot results are an input the report rests on.
add_test(NAME cli:provenance:plan-pilot
         COMMAND moeplan plan ${CMAKE_SOURCE_DIR}/examples/plan-8xh200-glm52-huf.json
                 --pilot ${CMAKE_SOURCE_DIR}/tests/data/pilot-glm52-8xh200.json --format json)
set_tests_properties(cli:provenance:plan-pilot PROPERTIES
                     PASS_REGULAR_EXPRESSION "\"pilot_file\": \"[^\"]*pilot-glm52-8xh200.json\"")
add_test(NAME cli:provenance:validate-perf-tiers
         COMMAND moeplan validate-perf ${CMAKE_SOURCE_DIR}/data/benchmarks/published.csv)
set_tests_properties(cli:provenance:validate-perf-tiers PROPERTIES
                     PASS_REGULAR_EXPRESSION "evidence tier of the predictions: [0-9]+ default")
# The SHA is read when the project is built, not when it was configured: it is HEAD's.
add_test(NAME cli:provenance:sha-is-head
         COMMAND sh -c "h=$(git -C ${CMAKE_SOURCE_DIR} rev-parse --short=12 HEAD 2>/dev/null) || h=unknown; $<TARGET_FILE:moeplan> catalog check --format json | grep -q \"\\\"git_sha\\\": \\\"$h\" && echo sha-ok")
set_tests_properties(cli:provenance:sha-is-head PROPERTIES PASS_REGULAR_EXPRESSION "sha-ok")
