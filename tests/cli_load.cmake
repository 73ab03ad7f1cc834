# moeprobe load against a real OpenAI-compatible server: llama.cpp's server from
# PyPI llama-cpp-python with a tiny random model (docs/load.md §Tests). Skipped
# (exit 77) when the venv is not built: scripts/run.sh test builds it, or run
# scripts/llama-test-server.sh setup yourself.
if(TARGET moeprobe)
  set(MOEPLAN_LLAMA_VENV "${CMAKE_BINARY_DIR}/venv-llama" CACHE PATH
      "venv with llama-cpp-python[server] and gguf for the load:llama_server test")
  add_test(NAME load:llama_server
           COMMAND ${CMAKE_SOURCE_DIR}/tests/llama_server_test.sh $<TARGET_FILE:moeprobe>
                   $<TARGET_FILE:moeplan> ${CMAKE_SOURCE_DIR} ${CMAKE_CURRENT_BINARY_DIR}/llama_server)
  set_tests_properties(load:llama_server PROPERTIES
    SKIP_RETURN_CODE 77 TIMEOUT 300 RUN_SERIAL TRUE LABELS "load;llama_server"
    ENVIRONMENT "MOEPLAN_LLAMA_VENV=${MOEPLAN_LLAMA_VENV}")
endif()
