# Command-line tests for plan / recommend / regress (docs/plan.md).
add_test(NAME cli:plan:flagship
         COMMAND moeplan plan --wide ${CMAKE_SOURCE_DIR}/examples/plan-8xh200-glm52-huf.json)
set_tests_properties(cli:plan:flagship PROPERTIES PASS_REGULAR_EXPRESSION "RECOMMENDATION: RENT")
add_test(NAME cli:plan:md
         COMMAND moeplan plan ${CMAKE_SOURCE_DIR}/examples/plan-four-builds-huf.json --format md)
set_tests_properties(cli:plan:md PROPERTIES PASS_REGULAR_EXPRESSION "Recommendation and its reasoning")
add_test(NAME cli:plan:bad-scenario
         COMMAND moeplan plan ${CMAKE_SOURCE_DIR}/examples/seed-8xh200-glm52-huf.json)
set_tests_properties(cli:plan:bad-scenario PROPERTIES WILL_FAIL FALSE
                     PASS_REGULAR_EXPRESSION "error: .*seed-8xh200-glm52-huf.json")
add_test(NAME cli:recommend
         COMMAND moeplan recommend --model qwen3-30b-a3b --output-tokens-per-s 200 --sla-tpot-ms 50 --top 3)
set_tests_properties(cli:recommend PROPERTIES PASS_REGULAR_EXPRESSION "Pareto frontier")
add_test(NAME cli:regress
         COMMAND moeplan regress --examples ${CMAKE_SOURCE_DIR}/examples)
set_tests_properties(cli:regress PROPERTIES PASS_REGULAR_EXPRESSION "0 failed")
# Writers: the workbook and the chart land as whole files (written atomically).
add_test(NAME cli:plan:xlsx-and-chart
         COMMAND sh -c "d=$(mktemp -d) && $<TARGET_FILE:moeplan> plan ${CMAKE_SOURCE_DIR}/examples/plan-four-builds-huf.json --format xlsx -o $d/plan.xlsx --chart $d/plan.svg && test -s $d/plan.xlsx && head -c 2 $d/plan.xlsx | grep -q PK && grep -q '</svg>' $d/plan.svg && ls $d && rm -rf $d")
set_tests_properties(cli:plan:xlsx-and-chart PROPERTIES PASS_REGULAR_EXPRESSION "plan.svg")
add_test(NAME cli:plan:auto-builds
         COMMAND moeplan plan ${CMAKE_SOURCE_DIR}/examples/plan-auto-qwen3-30b-usd.json)
set_tests_properties(cli:plan:auto-builds PROPERTIES PASS_REGULAR_EXPRESSION "RECOMMENDATION: API")
# One price basis per ranking (issue #10): the basis is printed, and a contradiction is an error.
add_test(NAME cli:recommend:one-basis
         COMMAND moeplan recommend --model qwen3-30b-a3b --output-tokens-per-s 200 --rent-kind reserved_3y --top 3)
set_tests_properties(cli:recommend:one-basis PROPERTIES PASS_REGULAR_EXPRESSION "one price basis for every row: rent, reserved_3y")
add_test(NAME cli:recommend:basis-conflict
         COMMAND moeplan recommend --model qwen3-30b-a3b --output-tokens-per-s 200 --price-as rent --own-basis list)
set_tests_properties(cli:recommend:basis-conflict PROPERTIES WILL_FAIL TRUE)
# The flagship prices the part-time rental it recommends.
add_test(NAME cli:plan:flagship-part-time
         COMMAND moeplan plan --wide ${CMAKE_SOURCE_DIR}/examples/plan-8xh200-glm52-huf.json)
set_tests_properties(cli:plan:flagship-part-time PROPERTIES PASS_REGULAR_EXPRESSION "rent 1 node\\(s\\) of hgx-h200-8 part-time.*2920 node-hours a year")
# Menus (issue #15): `plan` dispatches on a `workloads` key; bad menus name the field.
add_test(NAME cli:plan:menu
         COMMAND sh -c "d=$(mktemp -d) && $<TARGET_FILE:moeplan> plan ${CMAKE_SOURCE_DIR}/examples/plan-menu-rtxpro6000-huf.json --chart $d/fleet.svg && grep -q 'url(#idle)' $d/fleet.svg && rm -rf $d")
set_tests_properties(cli:plan:menu PROPERTIES PASS_REGULAR_EXPRESSION "Allocation on rtx-pro-6000-8")
add_test(NAME cli:plan:menu-bad
         COMMAND moeplan plan ${CMAKE_SOURCE_DIR}/tests/fixtures/menu-duplicate-id.json)
set_tests_properties(cli:plan:menu-bad PROPERTIES
                     PASS_REGULAR_EXPRESSION "error: .*menu-duplicate-id.json: /workloads/1/id: duplicate workload id")
add_test(NAME cli:plan:menu-embed-generative
         COMMAND moeplan plan ${CMAKE_SOURCE_DIR}/tests/fixtures/menu-embed-generative.json)
set_tests_properties(cli:plan:menu-embed-generative PROPERTIES
                     PASS_REGULAR_EXPRESSION "error: .*menu-embed-generative.json: /workloads/3/model: an embed workload needs a model of kind embed")
# A repeated --model listed every row twice (audit 2026-11-27).
add_test(NAME cli:recommend_model_twice
         COMMAND moeplan recommend --model qwen3-30b-a3b --model qwen3-30b-a3b
                 --output-tokens-per-s 100 --max-gpus 1)
set_tests_properties(cli:recommend_model_twice PROPERTIES
  WILL_FAIL FALSE PASS_REGULAR_EXPRESSION "recommend: --model qwen3-30b-a3b is given twice")
