// Fuzzes the catalog loader: the first byte picks which catalog file the rest
// of the input replaces in a private copy of the bundled data/ directory.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "fuzz_common.hpp"

namespace {
namespace fs = std::filesystem;
const char* const kFiles[] = {"models.json", "devices.json", "precisions.json", "engines.json",
                              "prices.json", "sites.json",   "fx.json"};

const fs::path& scratch() {
  static const fs::path dir = [] {
    const fs::path d =
        fs::temp_directory_path() / ("moeplan-fuzz-catalog-" + std::to_string(::getpid()));
    fs::remove_all(d);
    fs::copy(MOEPLAN_FUZZ_DATA_DIR, d, fs::copy_options::recursive);
    return d;
  }();
  return dir;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const char* name = kFiles[data[0] % (sizeof(kFiles) / sizeof(kFiles[0]))];
  const fs::path target = scratch() / name;
  const fs::path original = fs::path(MOEPLAN_FUZZ_DATA_DIR) / name;
  {
    std::ofstream out(target, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data + 1), static_cast<std::streamsize>(size - 1));
  }
  moeplan::fuzz::expect_clean([&] { (void)moeplan::load_catalog(scratch().string()); });
  fs::copy_file(original, target, fs::copy_options::overwrite_existing);
  return 0;
}
