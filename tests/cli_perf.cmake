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
  PASS_REGULAR_EXPRESSION "^model,gpu,gpu_count,precision,kv_precision,engine,input_tokens,output_tokens,concurrency,metric,value,unit,source,source_family,nodes,arrivals,kv_precision_implied,deployment,layout,spec,predicted,error_pct,reason,split,evidence")
file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/bad_bench.csv "model,gpu,gpu_count,precision,kv_precision,engine,input_tokens,output_tokens,concurrency,metric,value,unit,source\nllama-3.1-8b,rtx-4090,x,,,,,,1,decode_tok_s_single,1,tok/s,s\n")
add_test(NAME cli:validate_perf_bad COMMAND moeplan validate-perf ${CMAKE_CURRENT_BINARY_DIR}/bad_bench.csv)
set_tests_properties(cli:validate_perf_bad PROPERTIES WILL_FAIL TRUE)
add_test(NAME cli:validate_perf_bad_message COMMAND moeplan validate-perf ${CMAKE_CURRENT_BINARY_DIR}/bad_bench.csv)
set_tests_properties(cli:validate_perf_bad_message PROPERTIES
  PASS_REGULAR_EXPRESSION "bad_bench.csv: line 2, column 'gpu_count': expected a number")
# Layout rules and fit gating (docs/performance.md § Layout rules, issue 10).
add_test(NAME cli:perf_tp6_64_heads
         COMMAND moeplan perf --model glm-5.2 --gpu h200 --gpus 6 --tp 6 --weights fp8)
set_tests_properties(cli:perf_tp6_64_heads PROPERTIES
  PASS_REGULAR_EXPRESSION "breaks rule tp-divides-heads: tp=6 does not divide glm-5.2's 64 attention heads")
add_test(NAME cli:perf_tp_across_nodes
         COMMAND moeplan perf --model glm-5.2 --gpu h200 --gpus 16 --tp 16 --weights fp8)
set_tests_properties(cli:perf_tp_across_nodes PROPERTIES
  PASS_REGULAR_EXPRESSION "breaks rule tp-within-scale-up: tp=16 crosses the scale-up domain of 8")
add_test(NAME cli:perf_tp_across_nodes_forced
         COMMAND moeplan perf --model glm-5.2 --gpu h200 --gpus 16 --tp 16 --weights fp8 --force)
set_tests_properties(cli:perf_tp_across_nodes_forced PROPERTIES PASS_REGULAR_EXPRESSION "2 node\\(s\\) of 8")
add_test(NAME cli:perf_32_h200_is_4_nodes
         COMMAND moeplan perf --model glm-5.2 --gpu h200 --gpus 32 --tp 8 --pp 4 --weights fp8)
set_tests_properties(cli:perf_32_h200_is_4_nodes PROPERTIES PASS_REGULAR_EXPRESSION "4 node\\(s\\) of 8 \\(hgx-h200-8")
add_test(NAME cli:perf_does_not_fit COMMAND moeplan perf --model glm-5.2 --gpu rtx-4090)
set_tests_properties(cli:perf_does_not_fit PROPERTIES
  PASS_REGULAR_EXPRESSION "does not fit: needs [0-9.]+ GB per GPU, has [0-9.]+")
add_test(NAME cli:perf_ignore_fit COMMAND moeplan perf --model glm-5.2 --gpu rtx-4090 --ignore-fit)
set_tests_properties(cli:perf_ignore_fit PROPERTIES PASS_REGULAR_EXPRESSION "^[^\n]*NOT A DEPLOYABLE BUILD")
add_test(NAME cli:fit_working_context
         COMMAND moeplan fit --model glm-5.2 --gpu h200 --gpus 8 --weights fp8)
set_tests_properties(cli:fit_working_context PROPERTIES
  PASS_REGULAR_EXPRESSION "FITS: .*context 32768 is the working default")
add_test(NAME cli:fit_context_max
         COMMAND moeplan fit --model glm-5.2 --gpu h200 --gpus 8 --weights fp8 --context max)
set_tests_properties(cli:fit_context_max PROPERTIES PASS_REGULAR_EXPRESSION "DOES NOT FIT")
add_test(NAME cli:fit_context_bad COMMAND moeplan fit --model glm-5.2 --gpu h200 --gpus 8 --context lots)
set_tests_properties(cli:fit_context_bad PROPERTIES PASS_REGULAR_EXPRESSION "--context must be a token count")
add_test(NAME cli:perf_ignore_fit_csv
         COMMAND moeplan perf --model glm-5.2 --gpu rtx-4090 --ignore-fit --format csv)
set_tests_properties(cli:perf_ignore_fit_csv PROPERTIES PASS_REGULAR_EXPRESSION "^# does_not_fit\nwarning\n\"does not fit: needs")
add_test(NAME cli:perf_system
         COMMAND moeplan perf --model qwen3-30b-a3b --gpu h200 --gpus 2 --system hgx-h200-8 --weights fp8 --format json)
set_tests_properties(cli:perf_system PROPERTIES PASS_REGULAR_EXPRESSION "\"system\": \"hgx-h200-8\"")
add_test(NAME cli:perf_system_wrong_device
         COMMAND moeplan perf --model qwen3-30b-a3b --gpu h100-sxm --system hgx-h200-8)
set_tests_properties(cli:perf_system_wrong_device PROPERTIES PASS_REGULAR_EXPRESSION "system hgx-h200-8 holds h200, not h100-sxm")
# A calibration's kernel classes below the quality floor are recorded, not used, and perf says
# why (issue #11; docs/probe.md, "What the planner takes from the probe"). The fixture is the
# H200 probe run of issue #11, trimmed.
add_test(NAME cli:perf_calibration_floor
         COMMAND moeplan perf --model qwen3-30b-a3b --gpu h200 --weights bf16 --concurrency 64
                 --format md
                 --calibration ${CMAKE_SOURCE_DIR}/tests/data/cal-h200-qwen3-30b-a3b-trimmed.json)
set_tests_properties(cli:perf_calibration_floor PROPERTIES
  PASS_REGULAR_EXPRESSION "calibration: attention efficiency by batch × context \\| 0.058 \\| not used \\| attention.decode rows; not used: 0.058 of the measured triad bandwidth at positions = 1048576 is below the quality floor 0.50")
add_test(NAME cli:perf_calibration_terms_json
         COMMAND moeplan perf --model qwen3-30b-a3b --gpu h200 --weights bf16 --format json
                 --calibration ${CMAKE_SOURCE_DIR}/tests/data/cal-h200-qwen3-30b-a3b-trimmed.json)
set_tests_properties(cli:perf_calibration_terms_json PROPERTIES
  PASS_REGULAR_EXPRESSION "\"calibration_terms\".*\"term\": \"GEMM efficiency by M\".*\"used\": true.*\"term\": \"attention efficiency by batch × context\".*\"used\": false")
# Another model's file: one message says the shape-keyed curves do not apply; they are not listed
# again one by one among the messages (the efficiencies table keeps each curve's reason).
add_test(NAME cli:perf_calibration_other_model
         COMMAND moeplan perf --model deepseek-r1 --gpu h200 --gpus 8 --weights fp8
                 --calibration ${CMAKE_SOURCE_DIR}/tests/data/cal-h200-qwen3-30b-a3b-trimmed.json)
set_tests_properties(cli:perf_calibration_other_model PROPERTIES
  PASS_REGULAR_EXPRESSION "calibration: measured for model 'qwen3-30b-a3b', applied to 'deepseek-r1'"
  FAIL_REGULAR_EXPRESSION "rows\\) not used")
# validate-perf --calibration: the device's rows predicted with and without it.
add_test(NAME cli:validate_perf_calibration
         COMMAND moeplan validate-perf ${CMAKE_SOURCE_DIR}/data/benchmarks/published.csv --format md
                 --calibration ${CMAKE_SOURCE_DIR}/tests/data/cal-h200-qwen3-30b-a3b-trimmed.json)
set_tests_properties(cli:validate_perf_calibration PROPERTIES
  PASS_REGULAR_EXPRESSION "median \\|error\\| [0-9.]+% → [0-9.]+% over [0-9]+ row\\(s\\), (towards the published rows|away from the published rows|unchanged)")
# An embedding model is prefill-only work: perf takes it with --output 1 (and refuses a larger
# --output: bad-inputs/manifest.txt perf-embedding-model).
add_test(NAME cli:perf_embedding_prefill_only
         COMMAND moeplan perf --model qwen3-embedding-8b --gpu h200 --input 512 --output 1)
set_tests_properties(cli:perf_embedding_prefill_only PROPERTIES PASS_REGULAR_EXPRESSION "prefill, one request")
# A disaggregated deployment from the command line: whole-deployment figures in JSON.
add_test(NAME cli:perf_deployment_pd
         COMMAND moeplan perf --model deepseek-r1 --gpu b200 --engine trtllm --weights fp8
                 --input 1024 --output 1024 --concurrency 128 --deployment pd:1x8+2x8 --format json)
set_tests_properties(cli:perf_deployment_pd PROPERTIES
  PASS_REGULAR_EXPRESSION "\"deployment\": \"pd:1x8\\+2x8\".*\"prefill_capacity_prompts_per_s\"|\"prefill_capacity_prompts_per_s\".*\"deployment\": \"pd:1x8\\+2x8\"")
# One wave run to completion (`--arrivals once`, burst.hpp): JSON records how requests arrive.
add_test(NAME cli:perf_once_json
         COMMAND moeplan perf --model llama-3.1-8b --gpu h100-sxm --arrivals once --concurrency 64
                 --request-rate 4 --input 2000 --output 500 --format json)
set_tests_properties(cli:perf_once_json PROPERTIES
  PASS_REGULAR_EXPRESSION "\"arrivals\": \"once\",[ \n]*\"request_rate_per_s\": 4.0")
add_test(NAME cli:perf_once_note
         COMMAND moeplan perf --model llama-3.1-8b --gpu h100-sxm --arrivals once --concurrency 64)
set_tests_properties(cli:perf_once_note PROPERTIES
  PASS_REGULAR_EXPRESSION "One wave of 64 requests, run to completion.*one wave of 64 requests \\(all at once\\), run to completion")
# A closed-loop client's prompts in all (--prompts) and the server's token budget
# (--max-num-tokens): recorded in the JSON inputs; --prompts outside `together`, fewer prompts
# than are in flight, or --range-ratio without --prompts is refused.
add_test(NAME cli:perf_prompts_json
         COMMAND moeplan perf --model deepseek-r1 --gpu b200 --gpus 8 --engine trtllm --weights fp8
                 --arrivals together --concurrency 16 --prompts 160 --range-ratio 0.8
                 --max-num-tokens 1152 --admission-interval-steps 30 --format json)
set_tests_properties(cli:perf_prompts_json PROPERTIES
  PASS_REGULAR_EXPRESSION "\"prompts\": 160,[ \n]*\"range_ratio\": 0.8,[ \n]*\"max_num_tokens\": 1152,[ \n]*\"admission_interval_steps\": 30")
add_test(NAME cli:perf_prompts_not_together
         COMMAND moeplan perf --model deepseek-r1 --gpu b200 --gpus 8 --engine trtllm --weights fp8
                 --concurrency 16 --prompts 160)
set_tests_properties(cli:perf_prompts_not_together PROPERTIES
  PASS_REGULAR_EXPRESSION "--prompts applies to --arrivals together")
add_test(NAME cli:perf_prompts_too_few
         COMMAND moeplan perf --model deepseek-r1 --gpu b200 --gpus 8 --engine trtllm --weights fp8
                 --arrivals together --concurrency 16 --prompts 8)
set_tests_properties(cli:perf_prompts_too_few PROPERTIES
  PASS_REGULAR_EXPRESSION "--prompts 8 is fewer than the 16 requests in flight")
add_test(NAME cli:perf_range_without_prompts
         COMMAND moeplan perf --model deepseek-r1 --gpu b200 --gpus 8 --engine trtllm --weights fp8
                 --arrivals together --concurrency 16 --range-ratio 0.8)
set_tests_properties(cli:perf_range_without_prompts PROPERTIES
  PASS_REGULAR_EXPRESSION "--range-ratio describes the lengths of a client's --prompts")
add_test(NAME cli:perf_prompts_not_with_sweep
         COMMAND moeplan perf --model deepseek-r1 --gpu b200 --gpus 8 --engine trtllm --weights fp8
                 --arrivals together --prompts 160 --sweep)
set_tests_properties(cli:perf_prompts_not_with_sweep PROPERTIES
  PASS_REGULAR_EXPRESSION "--sweep excludes --prompts")
# An SLA asked on one estimate is judged, never ignored (before 2026-11-27 only --sweep read it).
add_test(NAME cli:perf_sla_missed
         COMMAND moeplan perf --model glm-5.2 --gpu h200 --gpus 8 --weights fp8 --sla-tpot-ms 10)
set_tests_properties(cli:perf_sla_missed PROPERTIES
  PASS_REGULAR_EXPRESSION "SLA MISSED at concurrency 1: TPOT [0-9.]+ ms > 10 ms")
add_test(NAME cli:perf_sla_met_json
         COMMAND moeplan perf --model glm-5.2 --gpu h200 --gpus 8 --weights fp8 --sla-tpot-ms 50
                 --sla-ttft-ms 5000 --format json)
set_tests_properties(cli:perf_sla_met_json PROPERTIES
  PASS_REGULAR_EXPRESSION "\"sla\": {[^}]*\"meets_sla\": true")
add_test(NAME cli:perf_sla_deployment
         COMMAND moeplan perf --model qwen3-30b-a3b --gpu h100-sxm --gpus 2 --weights fp8
                 --deployment dp:2 --concurrency 64 --sla-ttft-ms 1)
set_tests_properties(cli:perf_sla_deployment PROPERTIES
  PASS_REGULAR_EXPRESSION "SLA MISSED at concurrency 64: TTFT [0-9.]+ ms > 1 ms")
# Catalog prices print to their own precision: DeepSeek V4 Flash's cached input is 0.0028 USD per
# 1M tokens, which three fixed decimals showed as 0.003 (−7%); the JSON carries it too.
add_test(NAME cli:catalog_prices_precision COMMAND moeplan catalog list prices)
set_tests_properties(cli:catalog_prices_precision PROPERTIES
  PASS_REGULAR_EXPRESSION "deepseek-v4-flash +\\| DeepSeek +\\| list +\\| USD +\\| +0\\.1400 \\| +0\\.002800 \\|")
add_test(NAME cli:catalog_prices_cached_json COMMAND moeplan catalog list prices --format json)
set_tests_properties(cli:catalog_prices_cached_json PROPERTIES
  PASS_REGULAR_EXPRESSION "\"cached_input_per_mtok\": 0\\.0028")
# recommend names each row's evidence tier in every format (it was in the JSON only).
add_test(NAME cli:recommend_evidence_csv
         COMMAND moeplan recommend --model glm-5.2 --output-tokens-per-s 500 --input 8000 --output 1000
                 --sla-tpot-ms 60 --top 3 --format csv)
set_tests_properties(cli:recommend_evidence_csv PROPERTIES
  PASS_REGULAR_EXPRESSION "price basis,evidence\n[^\n]*,(default|published|measured)\n")
# With --calibration the published rows are predicted with it too, as the run itself is: the
# 8,192/1,024 c = 16 row reads 610.3 tok/s (-12%) calibrated, 652.4 (-6%) without.
add_test(NAME cli:perf_calibrated_published
         COMMAND moeplan perf --model glm-5.2 --gpus 8 --weights fp8 --concurrency 64 --input 8000
                 --output 1000 --calibration
                 ${CMAKE_SOURCE_DIR}/docs/measurements/2026-11-26-h200-ef09787/cal-glm-5.2.json)
set_tests_properties(cli:perf_calibrated_published PROPERTIES
  PASS_REGULAR_EXPRESSION "output_tok_s +\\| 8,192 \\| +1,024 \\| +16 \\| +695\\.0 \\| +610\\.3 \\| -12%")
# An engine that does not serve the weights is refused, as plan leaves the build out; without
# --engine the default moves to an engine that serves them (a GGUF quant on a GPU is llama.cpp's).
# Audit 2026-11-27: perf and fit took q4_k_m under vLLM with exit 0.
add_test(NAME cli:perf_unserved_format
         COMMAND moeplan perf --model qwen3-30b-a3b --gpu h100-sxm --weights q4_k_m --engine vllm)
set_tests_properties(cli:perf_unserved_format PROPERTIES
  PASS_REGULAR_EXPRESSION "perf: engine vllm does not serve weight format q4_k_m")
add_test(NAME cli:fit_unserved_format
         COMMAND moeplan fit --model qwen3-30b-a3b --gpu h100-sxm --weights q4_k_m --engine vllm)
set_tests_properties(cli:fit_unserved_format PROPERTIES
  PASS_REGULAR_EXPRESSION "fit: engine vllm does not serve weight format q4_k_m")
add_test(NAME cli:perf_default_engine_serves
         COMMAND moeplan perf --model qwen3-30b-a3b --gpu h100-sxm --weights q4_k_m)
set_tests_properties(cli:perf_default_engine_serves PROPERTIES
  PASS_REGULAR_EXPRESSION "on 1 × NVIDIA H100 SXM5 80GB \\(llama\\.cpp\\)")
# A draft model's weights share the GPUs: a 235B draft for a 30B target does not fit one H100
# (61.0 GB of target + 470.0 GB of draft weights per GPU against 77 GB usable).
add_test(NAME cli:perf_draft_model_fit
         COMMAND moeplan perf --model qwen3-30b-a3b --gpu h100-sxm --spec draft
                 --spec-draft-model qwen3-235b-a22b)
set_tests_properties(cli:perf_draft_model_fit PROPERTIES
  PASS_REGULAR_EXPRESSION "does not fit: needs 531\\.4 GB per GPU, has 77\\.0 \\(61\\.0 GB weights \\+ 470\\.0 GB of the draft model qwen3-235b-a22b")
