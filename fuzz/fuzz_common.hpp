// Shared by the libFuzzer targets (fuzz/*.cpp, scripts/fuzz.sh): the bundled
// catalog, loaded once, and the rule every reader must keep — bad input ends
// in moeplan::Error (a located message, exit 1); any other exception, a
// crash, a leak or undefined behaviour is a bug the fuzzer reports.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "moeplan/catalog.hpp"
#include "moeplan/errors.hpp"

namespace moeplan::fuzz {

inline const Catalog& bundled_catalog() {
  static const Catalog c = load_catalog(MOEPLAN_FUZZ_DATA_DIR);
  return c;
}

inline std::string as_text(const std::uint8_t* data, std::size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

// Runs `f`; moeplan::Error is the expected way for bad input to end.
template <typename F>
void expect_clean(F&& f) {
  try {
    f();
  } catch (const moeplan::Error&) {
  }
}

}  // namespace moeplan::fuzz
