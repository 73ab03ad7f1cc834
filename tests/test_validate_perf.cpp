// validate-perf: RFC 4180 parsing, error messages naming file/line/column, row
// prediction, and the targets on the bundled published set (docs/performance.md).
#include <catch2/catch.hpp>

#include "moeplan/errors.hpp"
#include "moeplan/validate_perf.hpp"
#include "test_support.hpp"

using namespace moeplan;
using Catch::Matchers::Contains;

namespace {
const std::string kHeader =
    "model,gpu,gpu_count,precision,kv_precision,engine,input_tokens,output_tokens,concurrency,"
    "metric,value,unit,source";
}

TEST_CASE("CSV: quotes, doubled quotes, embedded commas and newlines, CRLF", "[perf][validate]") {
  const CsvTable t = parse_csv("a,b,c\r\n1,\"x, \"\"y\"\"\",\"line\nbreak\"\r\n\n2,,z\n", "t.csv");
  REQUIRE(t.rows.size() == 2);
  CHECK(t.rows[0][1] == "x, \"y\"");
  CHECK(t.rows[0][2] == "line\nbreak");
  CHECK(t.lines[1] == 5);
  CHECK(t.rows[1][1].empty());
  CHECK_THROWS_WITH(parse_csv("a,b\n1,\"open\n", "t.csv"),
                    Contains("t.csv: line 2: unterminated quoted field"));
  CHECK_THROWS_WITH(parse_csv("a,b\n1,2,3\n", "t.csv"),
                    Contains("line 2: 3 fields, but the header has 2"));
}

TEST_CASE("benchmark file errors name file, line and column", "[perf][validate]") {
  CHECK_THROWS_WITH(parse_benchmarks("model,gpu\nx,y\n", "b.csv"),
                    Contains("b.csv: line 1: missing column 'gpu_count'"));
  const std::string bad =
      kHeader +
      "\nllama-3.1-8b,rtx-4090,one,q4_k_m,,llama.cpp,,,1,decode_tok_s_single,128,tok/s,s\n";
  CHECK_THROWS_WITH(
      parse_benchmarks(bad, "b.csv"),
      Contains("b.csv: line 2, column 'gpu_count': expected a number, found \"one\""));
  const std::string metric =
      kHeader + "\nllama-3.1-8b,rtx-4090,1,q4_k_m,,llama.cpp,,,1,tok_s,128,tok/s,s\n";
  CHECK_THROWS_WITH(parse_benchmarks(metric, "b.csv"),
                    Contains("line 2, column 'metric': unknown metric"));
  const std::string value =
      kHeader + "\nllama-3.1-8b,rtx-4090,1,q4_k_m,,llama.cpp,,,1,tpot_ms,fast,ms,s\n";
  CHECK_THROWS_WITH(parse_benchmarks(value, "b.csv"),
                    Contains("column 'value': expected a number"));
}

TEST_CASE("rows are predicted in order; unknown ids count against the result", "[perf][validate]") {
  const std::string text = "extra," + kHeader +
                           "\nkeep,llama-3.1-8b,rtx-4090,1,q4_k_m,,llama.cpp,,,1,decode_tok_s_"
                           "single,128,tok/s,\"a, b\"\n"
                           "keep2,no-such-model,rtx-4090,1,,,,,,1,decode_tok_s_single,10,tok/s,x\n";
  const BenchmarkFile f = parse_benchmarks(text, "b.csv");
  REQUIRE(f.rows.size() == 2);
  CHECK(f.rows[0].raw[0] == "keep");
  CHECK(f.rows[0].source == "a, b");
  const ValidationResult v = validate(f, test::bundled_catalog());
  REQUIRE(v.predictions[0].predicted);
  CHECK(*v.predictions[0].predicted == Approx(133.5).epsilon(0.05));
  CHECK_FALSE(v.predictions[1].predicted);
  CHECK_THAT(v.predictions[1].reason, Contains("unknown model 'no-such-model'"));
  CHECK(v.overall.within_25_share == Approx(0.5));
}

TEST_CASE("bundled published set meets the decode target", "[perf][validate]") {
  const BenchmarkFile f = read_benchmarks(test::data_dir() + "/benchmarks/published.csv");
  CHECK(f.rows.size() >= 25);
  const ValidationResult v = validate(f, test::bundled_catalog());
  for (const auto& m : v.per_metric) {
    if (m.metric == "decode_tok_s_single") {
      CHECK(m.median_abs_pct <= 20.0);
      CHECK(m.predicted == m.rows);
    }
  }
}

TEST_CASE("bundled published set meets the aggregate-throughput target", "[perf][validate]") {
  // docs/performance.md §Validation: output_tok_s median |error| ≤ 30% over rows with stated
  // workloads (TensorRT-LLM perf overview, GLM-5.2 envelope, Pro 6000 vLLM).
  const BenchmarkFile f = read_benchmarks(test::data_dir() + "/benchmarks/published.csv");
  const ValidationResult v = validate(f, test::bundled_catalog());
  bool seen = false;
  for (const auto& m : v.per_metric) {
    if (m.metric != "output_tok_s") continue;
    seen = true;
    CHECK(m.rows >= 20);
    CHECK(m.predicted == m.rows);
    CHECK(m.median_abs_pct <= 30.0);
  }
  CHECK(seen);
}
