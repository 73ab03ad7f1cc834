// Fuzzes the validate-perf CSV reader and the prediction of every row it accepts.
#include "fuzz_common.hpp"
#include "moeplan/validate_perf.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace moeplan;
  fuzz::expect_clean([&] {
    const BenchmarkFile f = parse_benchmarks(fuzz::as_text(data, size), "fuzz.csv");
    if (f.rows.size() <= 16) (void)validate(f, fuzz::bundled_catalog());
  });
  return 0;
}
