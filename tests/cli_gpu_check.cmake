# scripts/gpu-check.sh: argument handling without a GPU (the GPU steps run on a node).
add_test(NAME cli:gpu_check_usage COMMAND ${CMAKE_SOURCE_DIR}/scripts/gpu-check.sh)
set_tests_properties(cli:gpu_check_usage PROPERTIES
  PASS_REGULAR_EXPRESSION "give the production figures \\(anchor JSON\\)")
add_test(NAME cli:gpu_check_missing_anchor
         COMMAND ${CMAKE_SOURCE_DIR}/scripts/gpu-check.sh /nonexistent/anchor.json)
set_tests_properties(cli:gpu_check_missing_anchor PROPERTIES
  PASS_REGULAR_EXPRESSION "cannot read anchor file /nonexistent/anchor.json")
add_test(NAME cli:gpu_check_exit_status COMMAND ${CMAKE_SOURCE_DIR}/scripts/gpu-check.sh --bogus)
set_tests_properties(cli:gpu_check_exit_status PROPERTIES WILL_FAIL TRUE)
