# `moeplan cost`: every example scenario runs in every format, and bad
# scenarios fail with a message naming the file and the JSON path.
# (Included from tests/CMakeLists.txt.)
set(_cost_dir ${CMAKE_CURRENT_BINARY_DIR}/cli_cost)
file(MAKE_DIRECTORY ${_cost_dir})

file(GLOB _cost_examples CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/examples/seed*.json)
foreach(_ex ${_cost_examples})
  get_filename_component(_name ${_ex} NAME_WE)
  foreach(_fmt table json csv md)
    add_test(NAME cli:cost:${_name}:${_fmt} COMMAND moeplan cost ${_ex} --format ${_fmt})
  endforeach()
  add_test(NAME cli:cost:${_name}:xlsx
           COMMAND moeplan cost ${_ex} --format xlsx --output ${_cost_dir}/${_name}.xlsx
                   --chart ${_cost_dir}/${_name}.svg)
endforeach()

# Golden numbers reach the output (acceptance cases C2, C5).
add_test(NAME cli:cost:c2-crossover
         COMMAND moeplan cost ${CMAKE_SOURCE_DIR}/examples/seed-8xh200-glm52-huf.json --format json)
set_tests_properties(cli:cost:c2-crossover PROPERTIES
  PASS_REGULAR_EXPRESSION "\"buy_vs_rent\": 23\\.01")
add_test(NAME cli:cost:c5-threshold
         COMMAND moeplan cost ${CMAKE_SOURCE_DIR}/examples/seed-8xh200-glm52-huf.json)
set_tests_properties(cli:cost:c5-threshold PROPERTIES
  PASS_REGULAR_EXPRESSION "Owning beats renting 24/7 only above 72% time-utilization")
add_test(NAME cli:cost:csv-tidy
         COMMAND moeplan cost ${CMAKE_SOURCE_DIR}/examples/seed-8xh200-glm52-huf.json --format csv)
set_tests_properties(cli:cost:csv-tidy PROPERTIES
  PASS_REGULAR_EXPRESSION "# monthly\nmonth,option,cumulative_cost,currency\n0,buy,140000000,HUF")

# xlsx is binary: it needs --output.
add_test(NAME cli:cost:xlsx-needs-output
         COMMAND moeplan cost ${CMAKE_SOURCE_DIR}/examples/seed-8xh200-glm52-huf.json --format xlsx)
set_tests_properties(cli:cost:xlsx-needs-output PROPERTIES
  PASS_REGULAR_EXPRESSION "--format xlsx writes a binary workbook: give --output FILE.xlsx")

# Bad scenarios: one per kind of mistake.
set(_good_head "\"currency\": \"HUF\", \"fx_per_usd\": 311, \"horizon_months\": 36")
set(_good_buy "\"buy\": {\"capex\": 140000000, \"opex_per_year\": 21000000}")
file(WRITE ${_cost_dir}/bad-missing.json "{\"fx_per_usd\": 311, \"horizon_months\": 36, ${_good_buy}}\n")
file(WRITE ${_cost_dir}/bad-negative.json
     "{${_good_head}, \"demand\": {\"output_tokens_per_s\": 10}, \"api\": {\"input_usd_per_mtok\": 1, \"output_usd_per_mtok\": -3}}\n")
file(WRITE ${_cost_dir}/bad-utilization.json
     "{${_good_head}, \"demand\": {\"output_tokens_per_s\": 900}, \"node\": {\"capacity_output_tokens_per_s\": 500}, ${_good_buy}}\n")
file(WRITE ${_cost_dir}/bad-unknown.json
     "{${_good_head}, \"buy\": {\"capex\": 140000000, \"opex_per_yaer\": 21000000}}\n")
file(WRITE ${_cost_dir}/bad-type.json
     "{\"currency\": \"HUF\", \"fx_per_usd\": 311, \"horizon_months\": \"36\", ${_good_buy}}\n")

macro(_cost_bad name regex)
  add_test(NAME cli:cost:bad-${name} COMMAND moeplan cost ${_cost_dir}/bad-${name}.json)
  set_tests_properties(cli:cost:bad-${name} PROPERTIES PASS_REGULAR_EXPRESSION "${regex}")
  # The same run must also exit non-zero.
  add_test(NAME cli:cost:bad-${name}:exit COMMAND moeplan cost ${_cost_dir}/bad-${name}.json)
  set_tests_properties(cli:cost:bad-${name}:exit PROPERTIES WILL_FAIL TRUE)
endmacro()
_cost_bad(missing "error: [^\n]*bad-missing\\.json: /currency: required field is missing")
_cost_bad(negative "error: [^\n]*bad-negative\\.json: /api/output_usd_per_mtok: expected a number >= 0")
_cost_bad(utilization "error: [^\n]*bad-utilization\\.json: /demand: demand averages 900\\.0 output tok/s[^\n]*utilization 1\\.80 > 1")
_cost_bad(unknown "error: [^\n]*bad-unknown\\.json: /buy/opex_per_yaer: unknown field 'opex_per_yaer', did you mean 'opex_per_year'\\?")
_cost_bad(type "error: [^\n]*bad-type\\.json: /horizon_months: expected an integer, found string \"36\"")
