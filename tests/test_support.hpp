// Helpers shared by the test files: paths to the bundled catalogs and
// examples, running the CLI and capturing its output.
#pragma once

#include <array>
#include <cstdio>
#include <string>

#include "moeplan/catalog.hpp"
#include "moeplan/performance.hpp"

namespace moeplan::test {

inline std::string source_dir() {
  return MOEPLAN_SOURCE_DIR;
}
inline std::string data_dir() {
  return source_dir() + "/data";
}
inline std::string examples_dir() {
  return source_dir() + "/examples";
}

// The bundled catalog, loaded once for the whole test binary.
inline const Catalog& bundled_catalog() {
  static const Catalog c = load_catalog(data_dir());
  return c;
}

// A performance request on the bundled catalog: model, device, count, weight precision ("" =
// native), engine and KV precision; lengths and concurrency keep PerfRequest's defaults.
inline PerfRequest perf_request(const std::string& model, const std::string& gpu, int gpus,
                                const std::string& weights, const std::string& engine = "vllm",
                                const std::string& kv = "bf16") {
  const Catalog& cat = bundled_catalog();
  PerfRequest r;
  r.model = &cat.model(model);
  r.device = &cat.device(gpu);
  r.engine = &cat.engine(engine);
  r.gpus = gpus;
  if (!weights.empty()) r.weights = parse_weight_spec(weights, r.model->native_precision, cat);
  r.kv_precision = kv;
  return r;
}

// `r` with a load: prompt and output tokens per request, and requests at once.
inline PerfRequest with_load(PerfRequest r, long long input_tokens, long long output_tokens,
                             long long concurrency) {
  r.input_tokens = input_tokens;
  r.output_tokens = output_tokens;
  r.concurrency = concurrency;
  return r;
}

struct RunResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs a shell command line and captures its output.
inline RunResult run_command(const std::string& cmd) {
  RunResult r;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  std::size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// Runs the moeplan CLI with `args`.
inline RunResult run_moeplan(const std::string& args) {
  return run_command(std::string(MOEPLAN_CLI) + " " + args);
}

}  // namespace moeplan::test
