// Printers: one Report rendered as table, CSV (RFC 4180), JSON and Markdown;
// atomic writes never leave a partial file.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "moeplan/errors.hpp"
#include "moeplan/report.hpp"

using namespace moeplan;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {
Report sample() {
  Report r;
  r.title = "sample";
  r.meta.tool_version = "9.9.9";
  r.meta.git_sha = "abc";
  r.meta.catalog_hash = "0123456789abcdef";
  Table t{"rows", "Rows", {"name", "value", "flag"}, {}, {"a note"}};
  t.add({"plain", 1234.5, true});
  t.add({"comma, \"quoted\"", Cell(0.000123, 6), false});
  t.add({"pipe|md", Cell(), Cell(42)});
  r.tables.push_back(t);
  r.messages.push_back("verdict");
  r.json["answer"] = 42;
  return r;
}
}  // namespace

TEST_CASE("CSV quoting follows RFC 4180", "[report]") {
  CHECK(csv_escape("plain") == "plain");
  CHECK(csv_escape("a,b") == "\"a,b\"");
  CHECK(csv_escape("say \"hi\"") == "\"say \"\"hi\"\"\"");
  CHECK(csv_escape("two\nlines") == "\"two\nlines\"");
  const std::string csv = render(sample(), Format::csv);
  CHECK_THAT(csv, Contains("name,value,flag\n"));
  CHECK_THAT(csv, Contains("\"comma, \"\"quoted\"\"\",0.000123,no"));
  // Full precision in CSV, not the table's rounding.
  CHECK_THAT(csv, Contains("plain,1234.5,yes"));
  // Messages and provenance follow the data as comment lines (dropped before 2026-11-27).
  CHECK_THAT(csv, Contains("\n# verdict"));
  CHECK_THAT(
      csv, Catch::Matchers::EndsWith("# provenance: moeplan 9.9.9 (abc), catalog 0123456789abcdef, "
                                     "calibration none\n"));
  CHECK(csv.rfind("name,value,flag\n", 0) == 0);  // a single table still starts with its header
}

TEST_CASE("JSON carries schema version and provenance", "[report]") {
  const Json j = Json::parse(render(sample(), Format::json));
  CHECK(j["schema_version"] == 1);
  CHECK(j["provenance"]["tool_version"] == "9.9.9");
  CHECK(j["provenance"]["catalog_hash"] == "0123456789abcdef");
  CHECK(j["provenance"]["calibration_file"].is_null());
  CHECK(j["answer"] == 42);
}

TEST_CASE("Table and Markdown render every row and the provenance line", "[report]") {
  const std::string t = render(sample(), Format::table);
  CHECK_THAT(t, Contains("plain") && Contains("1234") && Contains("verdict") &&
                    Contains("catalog 0123456789abcdef") && Contains("calibration none"));
  const std::string md = render(sample(), Format::md);
  CHECK_THAT(md, Contains("| name | value | flag |"));
  CHECK_THAT(md, Contains("pipe\\|md"));
  CHECK_THAT(md, Contains("- a note"));
}

TEST_CASE("Formats parse and reject unknown names", "[report][errors]") {
  CHECK(parse_format("md") == Format::md);
  CHECK_THROWS_WITH(parse_format("yaml"), Contains("unknown format 'yaml'"));
}

TEST_CASE("Atomic write replaces the file or leaves it untouched", "[report]") {
  const fs::path dir = fs::temp_directory_path() / ("moeplan-report-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path f = dir / "out.txt";
  write_file_atomic(f.string(), "first");
  write_file_atomic(f.string(), "second");
  std::ifstream in(f);
  std::stringstream ss;
  ss << in.rdbuf();
  CHECK(ss.str() == "second");
  // No temporary file is left behind.
  int files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++files;
  CHECK(files == 1);
  CHECK_THROWS_WITH(write_file_atomic((dir / "missing" / "x.txt").string(), "x"),
                    Contains("does not exist"));
  fs::remove_all(dir);
}
