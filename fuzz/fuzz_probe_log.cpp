// Fuzzes the probe's JSON-lines log reader (moeprobe run --resume): the log is
// read with the configuration its own first line names, so row parsing is reached.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "fuzz_common.hpp"
#include "moeplan/json_read.hpp"
#include "moeprobe/calibration_writer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace fs = std::filesystem;
  static const fs::path path =
      fs::temp_directory_path() / ("moeplan-fuzz-log-" + std::to_string(::getpid()) + ".jsonl");
  const std::string text = moeplan::fuzz::as_text(data, size);
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
  }
  moeplan::Json config = moeplan::Json::object();
  const std::string first = text.substr(0, text.find('\n'));
  const moeplan::Json head = moeplan::Json::parse(first, nullptr, false);
  if (head.is_object() && head.contains("config")) config = head["config"];
  moeplan::fuzz::expect_clean([&] { moeprobe::RowLog log(path.string(), config, true); });
  return 0;
}
