// Fuzzes the calibration file reader (moeplan perf --calibration FILE).
#include "fuzz_common.hpp"
#include "moeplan/calibration.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace moeplan;
  fuzz::expect_clean([&] { (void)parse_calibration(fuzz::as_text(data, size), "fuzz.json"); });
  return 0;
}
