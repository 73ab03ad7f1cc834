// Outputs are never destroyed (issue #13): an output may not be an input or
// another output of the same run, every destination is checked before any is
// written, and a run's files land as a set or not at all.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "moeplan/errors.hpp"
#include "moeplan/json_read.hpp"
#include "moeplan/output_set.hpp"
#include "moeplan/report.hpp"

using namespace moeplan;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {
fs::path fresh_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("moeplan-outset-" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}
std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
std::size_t entries(const fs::path& d) {
  return static_cast<std::size_t>(std::distance(fs::directory_iterator(d), {}));
}
}  // namespace

TEST_CASE("An output that is an input is refused, however it is spelled", "[outputs][errors]") {
  const fs::path d = fresh_dir("input");
  std::ofstream(d / "scenario.json") << "{}";
  fs::create_symlink(d / "scenario.json", d / "link.json");
  for (const std::string& spelled :
       {(d / "scenario.json").string(), (d / "." / "scenario.json").string(),
        (d / "sub" / ".." / "scenario.json").string(), (d / "link.json").string()}) {
    OutputSet s;
    s.add_input((d / "scenario.json").string());
    s.add(spelled, "overwritten");
    INFO(spelled);
    CHECK_THROWS_WITH(s.commit(), Contains("is an input of this run"));
  }
  CHECK(slurp(d / "scenario.json") == "{}");
}

TEST_CASE("Two outputs of one run may not share a file", "[outputs][errors]") {
  const fs::path d = fresh_dir("twice");
  OutputSet s;
  s.add((d / "x").string(), "json", "--output");
  s.add((d / "x").string(), "svg", "--chart");
  CHECK_THROWS_WITH(s.commit(),
                    Contains("--chart") && Contains("is also the destination of --output"));
  CHECK(entries(d) == 0);
}

TEST_CASE("A bad second destination leaves the first unwritten", "[outputs][errors]") {
  const fs::path d = fresh_dir("set");
  std::ofstream(d / "old.txt") << "old";
  OutputSet s;
  s.add((d / "old.txt").string(), "new");
  s.add((d / "missing" / "c.svg").string(), "<svg/>", "--chart");
  CHECK_THROWS_WITH(s.commit(), Contains("--chart") && Contains("does not exist"));
  CHECK(slurp(d / "old.txt") == "old");
  CHECK(entries(d) == 1);  // no temporary left behind
}

TEST_CASE("A writer that fails leaves every destination as it was", "[outputs][errors]") {
  const fs::path d = fresh_dir("writer");
  std::ofstream(d / "a.txt") << "A";
  OutputSet s;
  s.add((d / "a.txt").string(), "new A");
  s.add((d / "b.xlsx").string(), [](const std::string&) { throw Error("workbook failed"); });
  CHECK_THROWS_WITH(s.commit(), Contains("workbook failed"));
  CHECK(slurp(d / "a.txt") == "A");
  CHECK(entries(d) == 1);
}

TEST_CASE("All outputs land together and replace old files", "[outputs]") {
  const fs::path d = fresh_dir("ok");
  std::ofstream(d / "a.txt") << "A";
  OutputSet s;
  s.add((d / "a.txt").string(), "new A");
  s.add((d / "b.txt").string(), "B");
  s.commit();
  CHECK(slurp(d / "a.txt") == "new A");
  CHECK(slurp(d / "b.txt") == "B");
  CHECK(entries(d) == 2);
}

TEST_CASE("A directory as output names the real error, not 'Success'", "[outputs][errors]") {
  const fs::path d = fresh_dir("dir");
  CHECK_THROWS_WITH(write_file_atomic(d.string(), "x"), Contains("Is a directory"));
  CHECK_THROWS_WITH(write_file_atomic(d.string(), "x"), !Contains("Success"));
}

TEST_CASE("Duplicate JSON keys are errors at their JSON Pointer", "[json][errors]") {
  CHECK_THROWS_WITH(parse_json_text(R"({"currency": "HUF", "currency": "EUR"})", "s.json"),
                    Contains("s.json: /currency: duplicate key 'currency'"));
  CHECK_THROWS_WITH(parse_json_text(R"({"a": [1, {"b": 1, "b": 2}]})", "s.json"),
                    Contains("/a/1/b: duplicate key 'b'"));
  // The same key in sibling objects is fine.
  CHECK_NOTHROW(
      parse_json_text(R"({"a": {"k": 1}, "b": {"k": 2}, "c": [{"k": 1}, {"k": 2}]})", "s.json"));
  CHECK_THROWS_WITH(parse_json_text(R"({"x": 1e400})", "s.json"), Contains("number overflow"));
}

TEST_CASE("Deeply nested JSON is a located error, in linear memory", "[json][errors]") {
  // Regression (fuzz_scenario, out-of-memory): 100,000 nested arrays once made
  // the duplicate-key check keep a path string per level, O(depth²) bytes.
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  CHECK_THROWS_WITH(parse_json_text(deep, "deep.json"),
                    Contains("deep.json: /0/0/0") && Contains("nesting deeper than 256 levels"));
  const std::string ok = std::string(200, '[') + std::string(200, ']');
  CHECK_NOTHROW(parse_json_text(ok, "ok.json"));
}
