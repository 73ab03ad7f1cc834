// Fuzzes the cost scenario reader (moeplan cost SCENARIO.json).
#include "fuzz_common.hpp"
#include "moeplan/cost.hpp"
#include "moeplan/scenario.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace moeplan;
  fuzz::expect_clean([&] {
    const cost::CostInputs in =
        parse_scenario_text(fuzz::as_text(data, size), "fuzz.json",
                            []() -> const Catalog& { return fuzz::bundled_catalog(); });
    (void)cost::analyze(in);  // a scenario the reader accepts must also compute
  });
  return 0;
}
