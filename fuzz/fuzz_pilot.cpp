// Fuzzes the pilot file reader (moeplan plan --pilot FILE, validate-perf FILE.json).
#include "fuzz_common.hpp"
#include "moeplan/json_read.hpp"
#include "moeplan/pilot.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace moeplan;
  fuzz::expect_clean([&] {
    const Json doc = parse_json_text(fuzz::as_text(data, size), "fuzz-pilot.json");
    (void)pilot::parse_pilot(doc, "fuzz-pilot.json");
  });
  return 0;
}
