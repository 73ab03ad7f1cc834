# `moeplan perf` and `moeplan validate-perf` from the command line.
add_test(NAME cli:perf_json
         COMMAND moeplan perf --model llama-3.1-8b --gpu rtx-4090 --weights q4_k_m --engine llama.cpp
                 --input 512 --output 128 --format json)
set_tests_properties(cli:perf_json PROPERTIES
  PASS_REGULAR_EXPRESSION "\"tpot_ms\".*\"output_tokens_per_s\".*\"per_request_tokens_per_s\".*\"prefill\".*\"ttft_ms\".*\"bound\".*\"evidence\": \"published\"")
add_test(NAME cli:perf_sweep
         COMMAND moeplan perf --model qwen3-30b-a3b --gpu h100-sxm --weights fp8 --kv fp8 --input 2048
                 --output 512 --sweep --sla-tpot-ms 50)
set_tests_properties(cli:perf_sweep PROPERTIES PASS_REGULAR_EXPRESSION "knee.*best within SLA")
add_test(NAME cli:perf_unknown_gpu COMMAND moeplan perf --model llama-3.1-8b --gpu h100)
set_tests_properties(cli:perf_unknown_gpu PROPERTIES WILL_FAIL FALSE PASS_REGULAR_EXPRESSION "did you mean")
add_test(NAME cli:validate_perf_bundled
         COMMAND moeplan validate-perf ${CMAKE_SOURCE_DIR}/data/benchmarks/published.csv --format csv)
set_tests_properties(cli:validate_perf_bundled PROPERTIES
  PASS_REGULAR_EXPRESSION "^model,gpu,gpu_count,precision,kv_precision,engine,input_tokens,output_tokens,concurrency,metric,value,unit,source,source_family,nodes,predicted,error_pct,reason,split")
file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/bad_bench.csv "model,gpu,gpu_count,precision,kv_precision,engine,input_tokens,output_tokens,concurrency,metric,value,unit,source\nllama-3.1-8b,rtx-4090,x,,,,,,1,decode_tok_s_single,1,tok/s,s\n")
add_test(NAME cli:validate_perf_bad COMMAND moeplan validate-perf ${CMAKE_CURRENT_BINARY_DIR}/bad_bench.csv)
set_tests_properties(cli:validate_perf_bad PROPERTIES WILL_FAIL TRUE)
add_test(NAME cli:validate_perf_bad_message COMMAND moeplan validate-perf ${CMAKE_CURRENT_BINARY_DIR}/bad_bench.csv)
set_tests_properties(cli:validate_perf_bad_message PROPERTIES
  PASS_REGULAR_EXPRESSION "bad_bench.csv: line 2, column 'gpu_count': expected a number")
