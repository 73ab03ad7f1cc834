// Readable tables (issue #13): every command, on every bundled example, prints
// no line wider than 120 columns by default; COLUMNS narrows it; --wide prints
// unabridged; numbers carry thousands separators in tables only.
#include <catch2/catch.hpp>

#include <filesystem>
#include <sstream>
#include <vector>

#include "moeplan/report.hpp"
#include "moeplan/text_layout.hpp"
#include "test_support.hpp"

using namespace moeplan;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

// Widest line of `out`, and that line. Counted in bytes, as the project's
// pre-stop hook (mawk's length) counts: never less than the display width.
std::pair<std::size_t, std::string> widest(const std::string& out) {
  std::istringstream in(out);
  std::size_t w = 0;
  std::string worst;
  for (std::string line; std::getline(in, line);) {
    const std::size_t lw = line.size();
    if (lw > w) {
      w = lw;
      worst = line;
    }
  }
  return {w, worst};
}

std::vector<std::string> example_files(const std::string& prefix) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(test::examples_dir()))
    if (e.path().filename().string().rfind(prefix, 0) == 0 && e.path().extension() == ".json")
      out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

// Every command a user runs on the bundled examples and catalogs.
std::vector<std::string> every_command() {
  std::vector<std::string> cmds;
  for (const auto& f : example_files("plan-")) cmds.push_back("plan " + f);
  for (const auto& f : example_files("seed")) cmds.push_back("cost " + f);
  for (const char* what : {"models", "devices", "precisions", "engines", "prices", "sites", "fx"})
    cmds.push_back(std::string("catalog list ") + what);
  cmds.push_back("catalog check");
  cmds.push_back("validate-perf " + test::data_dir() + "/benchmarks/published.csv");
  cmds.push_back(
      "perf --model glm-5.2 --gpu h200 --gpus 8 --weights fp8 --kv fp8 --input 8192 --output 1024");
  cmds.push_back(
      "perf --model qwen3-30b-a3b --gpu h100-sxm --weights fp8 --kv fp8 --input 2048 --output 512 "
      "--sweep --sla-tpot-ms 50");
  cmds.push_back("fit --model glm-5.2 --gpu h200 --gpus 8 --weights fp8 --kv fp8");
  cmds.push_back("fit --model qwen3-30b-a3b --gpu rtx-4090 --gpus 1 --weights q4_k_m");
  cmds.push_back(
      "recommend --model qwen3-30b-a3b --output-tokens-per-s 200 --sla-tpot-ms 50 --top 3");
  cmds.push_back("regress --examples " + test::examples_dir());
  cmds.push_back("--help");
  cmds.push_back("plan --help");
  return cmds;
}

}  // namespace

TEST_CASE("Every command on every bundled example fits 120 columns", "[report][widths]") {
  for (const auto& cmd : every_command()) {
    INFO("moeplan " << cmd);
    const auto r = test::run_command("env -u COLUMNS " + std::string(MOEPLAN_CLI) + " " + cmd);
    REQUIRE(r.exit_code == 0);
    const auto [w, line] = widest(r.output);
    INFO("widest line (" << w << "): " << line);
    CHECK(w <= 120);
  }
}

#ifdef MOEPROBE_CLI
TEST_CASE("moeprobe list fits 120 columns", "[report][widths]") {
  const auto r = test::run_command("env -u COLUMNS " + std::string(MOEPROBE_CLI) + " list");
  REQUIRE(r.exit_code == 0);
  CHECK(widest(r.output).first <= 120);
}
#endif

TEST_CASE("COLUMNS narrows tables and --wide prints them unabridged", "[report][widths]") {
  const std::string plan = test::examples_dir() + "/plan-four-builds-huf.json";
  const auto narrow = test::run_command("COLUMNS=80 " + std::string(MOEPLAN_CLI) + " plan " + plan);
  REQUIRE(narrow.exit_code == 0);
  CHECK(widest(narrow.output).first <= 80);
  // --wide, before or after the subcommand: the candidates table on one line per row.
  for (const std::string& args : {"--wide plan " + plan, "plan " + plan + " --wide"}) {
    const auto wide = test::run_moeplan(args);
    REQUIRE(wide.exit_code == 0);
    CHECK(widest(wide.output).first > 200);
  }
}

TEST_CASE("Thousands separators in tables, plain numbers in CSV and JSON", "[report]") {
  Report r;
  Table t{"t", "T", {"n", "x"}, {}, {}};
  t.add({203000000LL, Cell(1234567.891, 2)});
  r.tables.push_back(t);
  const std::string table = render(r, Format::table, TextOptions{120, true});
  CHECK_THAT(table, Contains("203,000,000") && Contains("1,234,567.89"));
  CHECK_THAT(render(r, Format::csv), Contains("203000000,1234567.891"));
  CHECK_THAT(render(r, Format::json), Contains("203000000"));
  CHECK(text::group_thousands("-20000") == "-20,000");
  CHECK(text::group_thousands("999.5") == "999.5");
  CHECK(text::group_thousands("nan") == "nan");
  CHECK(text::group_thousands("1e+20") == "1e+20");
}

TEST_CASE("Long text cells wrap inside their column", "[report]") {
  Report r;
  Table t{"risks", "Risks", {"candidate", "risk"}, {}, {}};
  std::string long_risk;
  for (int i = 0; i < 40; ++i) long_risk += "word" + std::to_string(i) + " ";
  t.add({"glm-5.2 | 8×h200 | fp8", long_risk});
  t.add({"short", "ok"});
  r.tables.push_back(t);
  const std::string out = render(r, Format::table, TextOptions{60, true});
  CHECK(widest(out).first <= 60);
  // Every word survives the wrap, in order.
  CHECK_THAT(out, Contains("word0") && Contains("word39"));
  // Unlimited width keeps the row on one line.
  const std::string wide = render(r, Format::table, TextOptions{0, true});
  CHECK(widest(wide).first > 200);
}

TEST_CASE("A table too wide for the terminal prints in parts repeating its key columns",
          "[report]") {
  Report r;
  Table t{"wide", "Wide", {}, {}, {}};
  std::vector<Cell> row;
  for (int i = 0; i < 30; ++i) {
    t.columns.push_back("column" + std::to_string(i));
    row.emplace_back(static_cast<long long>(1000000 + i));
  }
  row[0] = Cell("key-a");
  t.add(row);
  r.tables.push_back(t);
  const std::string out = render(r, Format::table, TextOptions{80, true});
  CHECK(widest(out).first <= 80);
  CHECK_THAT(out, Contains("Wide (part 1 of") && Contains("column29") && Contains("1,000,029"));
  // The key column is in every part.
  std::size_t parts = 0;
  for (std::size_t p = out.find("key-a"); p != std::string::npos; p = out.find("key-a", p + 1))
    ++parts;
  CHECK(parts >= 2);
}

TEST_CASE("Word wrap: hard breaks only inside words longer than a line", "[report]") {
  CHECK(text::wrap("aaa bbb ccc", 7) == std::vector<std::string>{"aaa bbb", "ccc"});
  CHECK(text::wrap("abcdefghij", 4) == std::vector<std::string>{"abcd", "efgh", "ij"});
  CHECK(text::wrap("", 10) == std::vector<std::string>{""});
  CHECK(text::display_width("8×h200 — ok") == 11);
  const auto hang = text::wrap_hanging("  - one two three four five six", 14, 4);
  for (const auto& l : hang) CHECK(text::display_width(l) <= 14);
  CHECK(hang.size() > 1);
  CHECK(hang[1].rfind("    ", 0) == 0);
}
