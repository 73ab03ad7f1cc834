// Catalog regression: the bundled examples match their expected outputs, and
// an edited catalog fails with a readable diff naming the moved field.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "moeplan/regress.hpp"
#include "test_support.hpp"

using namespace moeplan;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

TEST_CASE("diff compares numbers with a relative tolerance and matches by id", "[regress]") {
  const Json a = Json::parse(
      R"({"provenance": {"git_sha": "x"}, "candidates": [{"id": "a", "v": 1.0}, {"id": "b", "v": 2.0}]})");
  Json b = Json::parse(
      R"({"provenance": {"git_sha": "y"}, "candidates": [{"id": "b", "v": 2.0000000001}, {"id": "a", "v": 1.0}]})");
  CHECK(regress::diff(a, b).empty());
  b["candidates"][0]["v"] = 2.1;
  const auto d = regress::diff(a, b);
  REQUIRE(d.size() == 1);
  CHECK(d[0].path == "/candidates[b]/v");
}

TEST_CASE("the bundled examples match their expected outputs", "[regress]") {
  regress::Options o;
  o.examples_dir = test::examples_dir();
  const auto results = regress::run(o, test::bundled_catalog());
  REQUIRE(results.size() >= 7);
  for (const auto& r : results) {
    INFO(regress::format_results({r}));
    CHECK(r.ok());
  }
}

TEST_CASE("an edited catalog price fails with a readable diff", "[regress]") {
  const fs::path tmp =
      fs::temp_directory_path() / ("moeplan-regress-" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  fs::copy(test::data_dir(), tmp / "data", fs::copy_options::recursive);
  fs::create_directories(tmp / "examples" / "expected");
  const std::string name = "plan-8xh200-glm52-hybrid-huf.json";
  fs::copy_file(test::examples_dir() + "/" + name, tmp / "examples" / name);
  fs::copy_file(test::examples_dir() + "/expected/" + name, tmp / "examples" / "expected" / name);
  // Change the GLM-5.2 list API price.
  const fs::path prices = tmp / "data" / "prices.json";
  Json p = parse_json_file(prices.string());
  for (auto& a : p["api"])
    if (a["model"] == "glm-5.2" && a["tier"] == "list") a["output_per_mtok"] = 5.5;
  std::ofstream(prices) << p.dump(2);
  const Catalog edited = load_catalog((tmp / "data").string());
  regress::Options o;
  o.examples_dir = (tmp / "examples").string();
  const auto results = regress::run(o, edited);
  REQUIRE(results.size() == 1);
  CHECK_FALSE(results[0].ok());
  const std::string text = regress::format_results(results);
  CHECK_THAT(text, Contains("CHANGED"));
  CHECK_THAT(text, Contains("/cost_per_mtok_output/api"));
  CHECK_THAT(text, Contains("prices.json/api/glm-5.2/Z.ai/list/output_per_mtok: 4.4 -> 5.5"));
  // --update rewrites the expected output, after which it passes.
  o.update = true;
  (void)regress::run(o, edited);
  o.update = false;
  CHECK(regress::run(o, edited)[0].ok());
  fs::remove_all(tmp);
}

TEST_CASE("a directory argument that names a file says it is not a directory",
          "[regress][catalog][errors]") {
  // Audit 2026-11-27: a regular file was "not found" / "does not exist".
  const std::string file = test::examples_dir() + "/plan-8xh200-glm52-huf.json";
  const std::string missing = test::examples_dir() + "/no-such-directory";
  regress::Options o;
  o.examples_dir = file;
  CHECK_THROWS_WITH(regress::run(o, test::bundled_catalog()),
                    "regress: examples directory '" + file + "' is not a directory");
  o.examples_dir = missing;
  CHECK_THROWS_WITH(regress::run(o, test::bundled_catalog()),
                    "regress: examples directory '" + missing + "' not found");
  CHECK_THROWS_WITH(load_catalog(file), file +
                                            ": /: not a directory: the catalog is a directory "
                                            "of JSON files (models.json, devices.json, ...)");
  CHECK_THROWS_WITH(load_catalog(missing), missing + ": /: catalog directory does not exist");
  const auto cli = test::run_moeplan("--data " + file + " catalog check");
  INFO(cli.output);
  CHECK(cli.exit_code == 1);
  CHECK_THAT(cli.output, Contains(file + ": /: not a directory"));
  const auto reg = test::run_moeplan("regress --examples " + file);
  INFO(reg.output);
  CHECK(reg.exit_code != 0);
  CHECK_THAT(reg.output, Contains("'" + file + "' is not a directory"));
}
