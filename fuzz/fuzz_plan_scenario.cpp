// Fuzzes the plan scenario reader (moeplan plan SCENARIO.json).
#include "fuzz_common.hpp"
#include "moeplan/plan.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace moeplan;
  fuzz::expect_clean([&] {
    (void)plan::parse_plan_scenario_text(fuzz::as_text(data, size), "fuzz.json",
                                         fuzz::bundled_catalog());
  });
  return 0;
}
