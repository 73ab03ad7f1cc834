// Outputs are never destroyed (issue #13): an output may not be an input or
// another output of the same run, every destination is checked before any is
// written, and a run's files land as a set or not at all.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

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

// --- Replacing a file keeps the old one until the whole set is in place (data-loss audit) ---

namespace {
ino_t inode_of(const fs::path& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 ? st.st_ino : 0;
}
int real_rename(const std::string& from, const std::string& to) {
  return ::rename(from.c_str(), to.c_str()) == 0 ? 0 : errno;
}
// No hard links (EMLINK: the file is at its link limit, or the filesystem has none), and the
// rename that would put `blocked` in place fails with EBUSY (a bind-mounted file).
OutputSet::FileOps no_links_and_blocked(const fs::path& blocked) {
  OutputSet::FileOps ops;
  ops.link = [](const std::string&, const std::string&) { return EMLINK; };
  ops.rename = [blocked](const std::string& from, const std::string& to) {
    if (to == blocked.string() && from.find(".tmp-") != std::string::npos &&
        from.find("-new") != std::string::npos)
      return EBUSY;
    return real_rename(from, to);
  };
  return ops;
}
}  // namespace

TEST_CASE("An old file that cannot be hard-linked survives a failed set", "[outputs][errors]") {
  const fs::path d = fresh_dir("nolink");
  std::ofstream(d / "a.csv") << "old A";
  const ino_t before = inode_of(d / "a.csv");
  OutputSet s;
  s.add((d / "a.csv").string(), "new A");
  s.add((d / "b.svg").string(), "<svg/>", "--chart");
  s.set_file_ops(no_links_and_blocked(d / "b.svg"));
  CHECK_THROWS_WITH(s.commit(), Contains("--chart " + (d / "b.svg").string()) &&
                                    Contains("cannot move the new file into place") &&
                                    Contains("Device or resource busy"));
  CHECK(slurp(d / "a.csv") == "old A");
  CHECK(inode_of(d / "a.csv") == before);  // the user's own file, not a copy
  CHECK(entries(d) == 1);                  // no temporary or kept file left behind
}

TEST_CASE("Both old files survive when the second cannot be placed", "[outputs][errors]") {
  const fs::path d = fresh_dir("nolink2");
  std::ofstream(d / "a.csv") << "old A";
  std::ofstream(d / "b.svg") << "old B";
  OutputSet s;
  s.add((d / "a.csv").string(), "new A");
  s.add((d / "b.svg").string(), "<svg/>", "--chart");
  s.set_file_ops(no_links_and_blocked(d / "b.svg"));
  CHECK_THROWS(s.commit());
  CHECK(slurp(d / "a.csv") == "old A");
  CHECK(slurp(d / "b.svg") == "old B");
  CHECK(entries(d) == 2);
}

TEST_CASE("Without hard links a set still replaces its files", "[outputs]") {
  const fs::path d = fresh_dir("nolink-ok");
  std::ofstream(d / "a.csv") << "old A";
  OutputSet s;
  s.add((d / "a.csv").string(), "new A");
  s.add((d / "b.svg").string(), "B", "--chart");
  s.set_file_ops(no_links_and_blocked(d / "nowhere"));
  s.commit();
  CHECK(slurp(d / "a.csv") == "new A");
  CHECK(slurp(d / "b.svg") == "B");
  CHECK(entries(d) == 2);
}

TEST_CASE("An old file that can be neither linked nor moved stops the set", "[outputs][errors]") {
  const fs::path d = fresh_dir("stuck");
  std::ofstream(d / "a.csv") << "old A";
  std::ofstream(d / "b.svg") << "old B";
  OutputSet s;
  s.add((d / "a.csv").string(), "new A");
  s.add((d / "b.svg").string(), "<svg/>", "--chart");
  OutputSet::FileOps ops;
  ops.link = [](const std::string&, const std::string&) { return EMLINK; };
  ops.rename = [&d](const std::string& from, const std::string& to) {
    if (from == (d / "b.svg").string()) return EBUSY;  // b cannot be moved aside
    return real_rename(from, to);
  };
  s.set_file_ops(ops);
  CHECK_THROWS_WITH(s.commit(), Contains("--chart " + (d / "b.svg").string()) &&
                                    Contains("cannot keep the old file while replacing it"));
  CHECK(slurp(d / "a.csv") == "old A");
  CHECK(slurp(d / "b.svg") == "old B");
  CHECK(entries(d) == 2);
}

TEST_CASE("An old file that cannot be put back is kept, and the error says where",
          "[outputs][errors]") {
  const fs::path d = fresh_dir("keep");
  std::ofstream(d / "a.csv") << "old A";
  OutputSet s;
  s.add((d / "a.csv").string(), "new A");
  s.add((d / "b.svg").string(), "<svg/>", "--chart");
  OutputSet::FileOps ops = no_links_and_blocked(d / "b.svg");
  const auto inner = ops.rename;
  ops.rename = [&d, inner](const std::string& from, const std::string& to) {
    if (to == (d / "a.csv").string() && from.find("-old") != std::string::npos) return EIO;
    return inner(from, to);
  };
  s.set_file_ops(ops);
  std::string message;
  try {
    s.commit();
  } catch (const Error& e) {
    message = e.what();
  }
  REQUIRE_THAT(message, Contains("the old " + (d / "a.csv").string() + " is kept as "));
  const fs::path kept = message.substr(message.rfind(" is kept as ") + 12);
  CHECK(slurp(kept) == "old A");
}

TEST_CASE("A failed write names the option and the user's path, not the temporary file",
          "[outputs][errors]") {
  const fs::path d = fresh_dir("names");
  const fs::path chart = d / "c.svg";
  {  // the temporary file cannot be created: a directory holds its name
    const fs::path temp = d / (".tmp-c.svg-new1-" + std::to_string(::getpid()));
    fs::create_directory(temp);
    OutputSet s;
    s.add((d / "a.csv").string(), "A");
    s.add(chart.string(), "<svg/>", "--chart");
    CHECK_THROWS_WITH(s.commit(), Catch::Matchers::StartsWith("--chart " + chart.string() +
                                                              ": cannot create file: ") &&
                                      !Contains(".tmp-"));
    fs::remove_all(temp);
    CHECK(entries(d) == 0);
  }
  {  // a writer's own message about the file it was given
    OutputSet s;
    s.add((d / "w.xlsx").string(),
          [](const std::string& path) { throw Error(path + ": cannot write workbook: disk full"); },
          "--output");
    CHECK_THROWS_WITH(s.commit(), Catch::Matchers::Equals("--output " + (d / "w.xlsx").string() +
                                                          ": cannot write workbook: disk full"));
  }
}

TEST_CASE("A destination that is not a regular file is written through, never replaced",
          "[outputs]") {
  // Audit 2026-11-27: `-o` renamed its temporary file over a device node or FIFO, so as root
  // `-o /dev/null` would have replaced the system's /dev/null with a regular file. A symlink to
  // /dev/null (as /dev/stdout is one to the process's stream) must stay a symlink, /dev/null a
  // character device, and no temporary file may be left beside either.
  const fs::path d = fresh_dir("stream");
  const fs::path link = d / "sink";
  fs::create_symlink("/dev/null", link);
  OutputSet set;
  set.add((d / "report.json").string(), std::string("{}\n"));
  set.add(link.string(), std::string("to the sink\n"), "--chart");
  set.commit();
  CHECK(fs::is_symlink(fs::symlink_status(link)));
  CHECK(fs::is_character_file(fs::status("/dev/null")));
  CHECK(slurp(d / "report.json") == "{}\n");
  CHECK(entries(d) == 2);

  // A FIFO gets the content through it, and stays a FIFO.
  const fs::path fifo = d / "pipe";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  std::string got;
  std::thread reader([&] { got = slurp(fifo); });
  OutputSet piped;
  piped.add(fifo.string(), std::string("through the pipe\n"));
  piped.commit();
  reader.join();
  CHECK(got == "through the pipe\n");
  struct stat st {};
  REQUIRE(::stat(fifo.c_str(), &st) == 0);
  CHECK(S_ISFIFO(st.st_mode));
  CHECK(entries(d) == 3);
}
