// Pilot files (docs/load.md §Feedback into the plan): parsing, replacing a
// candidate's modelled figures with measured ones, the validate-perf adapter,
// and the plan scenario's /pilot pass marks.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <unistd.h>

#include "moeplan/errors.hpp"
#include "moeplan/pilot.hpp"
#include "moeplan/plan.hpp"
#include "moeplan/validate_perf.hpp"
#include "test_support.hpp"

using namespace moeplan;
using Catch::Matchers::Contains;

namespace {

const Catalog& cat() {
  return test::bundled_catalog();
}

std::string fixture() {
  return test::source_dir() + "/tests/data/pilot-glm52-8xh200.json";
}

Json fixture_json() {
  return parse_json_file(fixture());
}

plan::PlanScenario flagship() {
  return plan::load_plan_scenario(test::examples_dir() + "/plan-8xh200-glm52-huf.json", cat());
}

plan::PlanResult run_with(const std::optional<pilot::PilotFile>& p) {
  plan::PlanOptions o;
  o.samples = 64;
  o.threads = 1;
  o.pilot = p;
  return plan::run_plan(flagship(), cat(), o);
}

}  // namespace

TEST_CASE("Pilot file: read, and errors name the file and JSON path", "[pilot]") {
  const auto p = pilot::read_pilot(fixture());
  REQUIRE(p.model == "glm-5.2");
  REQUIRE(p.gpus == 8);
  REQUIRE(p.points.size() == 2);
  REQUIRE(*p.points[0].tpot_p90_ms == Approx(30));
  REQUIRE(p.go_no_go.size() == 6);

  Json j = fixture_json();
  j.erase("kind");
  REQUIRE_THROWS_WITH(pilot::parse_pilot(j, "x.json"),
                      Contains("x.json") && Contains("not a pilot file"));
  j = fixture_json();
  j["build"] = nullptr;
  REQUIRE_THROWS_WITH(pilot::parse_pilot(j, "x.json"), Contains("/build") && Contains("--build"));
  j = fixture_json();
  j["load_points"][1].erase("output_tokens_per_s");
  REQUIRE_THROWS_WITH(pilot::parse_pilot(j, "x.json"),
                      Contains("/load_points/1") && Contains("output_tokens_per_s"));
  j = fixture_json();
  j["go_no_go"][0]["status"] = "maybe";
  REQUIRE_THROWS_AS(pilot::parse_pilot(j, "x.json"), InputError);
}

namespace {

// The fixture as moeprobe load writes it (probe/src/load_report.cpp): the report envelope, `n` in
// every percentile set, ITL and e2e, the per-point extras, the run's shares, and a point that
// completed nothing (null percentiles).
Json writer_shaped() {
  Json j = fixture_json();
  j["schema_version"] = 1;
  j["tool"] = "moeplan";
  j["provenance"] = {{"tool_version", "0.1.0"},
                     {"git_sha", "x"},
                     {"catalog_hash", nullptr},
                     {"calibration_file", nullptr},
                     {"command_line", "moeprobe load ..."}};
  j["notes"] = Json::array();
  j["sla"] = {{"ttft_ms", 30000.0}, {"tpot_ms", nullptr}};
  j["uptime"] = {{"requests", 240}, {"succeeded", 238}, {"share", 238.0 / 240}};
  j["tool_calls"] = nullptr;
  j["eval"] = {{"sent", 4}, {"ok", 3}, {"share", 0.75}};
  j["log"] = "pilot.json.log.jsonl";
  j["resumed_requests"] = 0;
  j["candidate"] = "glm-5.2 | 8×h200 | fp8";
  j["predicted"] = {
      {"output_tokens_per_s", 1519.1}, {"ttft_ms", 227.9}, {"tpot_ms", 48.5}, {"concurrency", 74}};
  for (auto& pt : j["load_points"]) {
    for (const char* m : {"ttft_ms", "tpot_ms", "itl_ms", "e2e_ms"}) pt[m]["n"] = 118;
    pt["itl_ms"]["p50"] = 0.0;  // tokens read in one chunk: a gap of 0
    pt["usage_missing"] = 0;
    pt["cached_tokens"] = 0;
    pt["wall_s"] = 133.3;
  }
  Json idle = j["load_points"][0];
  idle.erase("concurrency");
  idle["rate"] = 0.5;
  idle["completed"] = 0;
  idle["errors"]["timeout"] = 120;
  for (const char* m : {"ttft_ms", "tpot_ms", "itl_ms", "e2e_ms"})
    idle[m] = {{"p50", nullptr}, {"p90", nullptr}, {"p99", nullptr}, {"n", 0}};
  idle["goodput"] = 0.0;
  j["load_points"].push_back(idle);
  return j;
}

}  // namespace

TEST_CASE("Pilot file: what moeprobe load writes is accepted", "[pilot]") {
  const auto p = pilot::parse_pilot(writer_shaped(), "w.json");
  REQUIRE(p.points.size() == 3);
  REQUIRE_FALSE(p.points[2].ttft_p50_ms);
  Json j = writer_shaped();
  j["asked"]["input_tokens"] = "prompts file";  // --prompts FILE instead of --input
  REQUIRE_FALSE(pilot::parse_pilot(j, "w.json").input_tokens);
  j["asked"]["input_tokens"] = "prompt file";
  REQUIRE_THROWS_WITH(pilot::parse_pilot(j, "w.json"),
                      Contains("/asked/input_tokens") && Contains("\"prompts file\""));
}

TEST_CASE("Pilot file: version, keys, percentiles, shares and counts are checked",
          "[pilot][errors]") {
  // Audit 2026-11-27: each one-field edit of the fixture was read with exit 0.
  struct Case {
    std::function<void(Json&)> edit;
    std::string path, problem;
  };
  const std::vector<Case> cases{
      {[](Json& j) { j["pilot_version"] = 2; },
       "x.json: /pilot_version: ", "version 2 is newer than this moeplan reads (1)"},
      {[](Json& j) { j.erase("pilot_version"); },
       "x.json: /pilot_version: ", "required field is missing"},
      {[](Json& j) { j["load_points"][0]["tpot_ms"]["p50"] = 0; },
       "/load_points/0/tpot_ms/p50: ", "expected a number > 0, found number 0"},
      {[](Json& j) { j["load_points"][0]["ttft_ms"]["p90"] = -5; },
       "/load_points/0/ttft_ms/p90: ", "expected a number > 0, found number -5"},
      {[](Json& j) { j["load_points"][1]["tpot_ms"]["p50"] = 80; },
       "/load_points/1/tpot_ms/p90: ", "p90 70 is below p50 80: percentiles must be in order"},
      {[](Json& j) { j["load_points"][0]["e2e_ms"]["p99"] = 100; },
       "/load_points/0/e2e_ms/p99: ", "p99 100 is below p90 35000"},
      {[](Json& j) { j["load_points"][0]["goodput"] = 2; },
       "/load_points/0/goodput: ", "expected a fraction between 0 and 1, found number 2"},
      {[](Json& j) { j["load_points"][1]["errors"]["timeout"] = -2; },
       "/load_points/1/errors/timeout: ", "expected a count >= 0, found -2"},
      {[](Json& j) { j["load_points"][0]["completed"] = 121; },
       "/load_points/0/completed: ", "121 completed is more than the point's 120 requests"},
      {[](Json& j) { j["load_points"][1]["errors"]["http"] = 5; }, "/load_points/1/errors: ",
       "118 completed and 7 failed requests are more than the point's 120 requests"},
      {[](Json& j) { j["load_points"][0]["requests"] = -1; },
       "/load_points/0/requests: ", "expected a count >= 0, found -1"},
      {[](Json& j) { j["foo"] = 1; }, "x.json: /foo: ", "unknown field 'foo'"},
      {[](Json& j) { j["load_points"][0]["goodputs"] = 1; },
       "/load_points/0/goodputs: ", "unknown field 'goodputs', did you mean 'goodput'?"},
      {[](Json& j) { j["load_points"][0]["tpot_ms"]["p95"] = 1; },
       "/load_points/0/tpot_ms/p95: ", "unknown field 'p95'"},
      {[](Json& j) { j["build"]["gpu"] = 8; },
       "/build/gpu: ", "unknown field 'gpu', did you mean 'gpus'?"},
      {[](Json& j) {
         j["uptime"] = {{"requests", 10}, {"succeeded", 11}, {"share", 1.1}};
       },
       "/uptime/succeeded: ", "11 is more than the 10 requests"},
      {[](Json& j) {
         j["eval"] = {{"sent", 10}, {"ok", 5}, {"share", 5}};
       },
       "/eval/share: ", "expected a fraction between 0 and 1"},
  };
  for (const auto& c : cases) {
    Json j = writer_shaped();
    c.edit(j);
    INFO(c.path << c.problem);
    REQUIRE_THROWS_WITH(pilot::parse_pilot(j, "x.json"), Contains(c.path + c.problem));
  }
}

TEST_CASE("Pilot file: a build the catalog lacks is refused at /build", "[pilot][errors]") {
  REQUIRE_NOTHROW(pilot::check_build(pilot::read_pilot(fixture()), cat()));
  auto refused = [](const char* key, const char* value) {
    Json j = fixture_json();
    j["build"][key] = value;
    const auto p = pilot::parse_pilot(j, "x.json");  // the format alone is fine
    REQUIRE_THROWS_AS(pilot::check_build(p, cat()), InputError);
    try {
      pilot::check_build(p, cat());
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  REQUIRE_THAT(refused("model", "glm-5.3"),
               Contains("x.json: /build/model: unknown model 'glm-5.3', did you mean 'glm-5.2'"));
  REQUIRE_THAT(refused("device", "h2000"),
               Contains("x.json: /build/device: unknown device or system 'h2000', did you mean "
                        "'h200'"));
  REQUIRE_THAT(refused("precision", "fp7"),
               Contains("x.json: /build/precision: unknown weight precision 'fp7'"));
  REQUIRE_THAT(refused("engine", "vlm"),
               Contains("x.json: /build/engine: unknown engine 'vlm', did you mean 'vllm'"));
  // A system id is a build moeprobe load --build takes.
  Json j = fixture_json();
  j["build"]["device"] = cat().systems.at(0).id;
  REQUIRE_NOTHROW(pilot::check_build(pilot::parse_pilot(j, "x.json"), cat()));
}

TEST_CASE("plan --pilot: the measured build's figures replace the model's", "[pilot][plan]") {
  const auto base = run_with(std::nullopt);
  const auto with = run_with(pilot::read_pilot(fixture()));
  REQUIRE(base.candidates.size() == 1);
  const auto& b = base.candidates[0];
  const auto& c = with.candidates[0];
  REQUIRE(b.perf_evidence != "measured");
  REQUIRE_FALSE(b.pilot);
  REQUIRE(c.pilot);
  REQUIRE(c.pilot->applied);
  // c=82 has P90 TPOT 70 ms > the 60 ms SLA, so the best point meeting it is c=32 at 900 tok/s.
  REQUIRE(c.perf_evidence == "measured");
  REQUIRE(c.throughput == Approx(900));
  REQUIRE(c.concurrency == 32);
  REQUIRE(c.ttft_ms == Approx(2000));  // P50 of the chosen point
  REQUIRE(c.tpot_ms == Approx(25));
  REQUIRE(c.per_user_tok_s == Approx(40));  // 1000 / 25 ms
  REQUIRE_THAT(c.evidence.at("throughput"), Contains("measured") && Contains("c=32"));
  // Predicted vs measured is kept: the predicted side is the model's figure without the pilot.
  REQUIRE(c.pilot->predicted_tok_s == Approx(b.throughput));
  REQUIRE(c.pilot->predicted_concurrency == b.concurrency);
  REQUIRE(*c.pilot->measured_tok_s == Approx(900));
  // Fleet from the measured rate: peak 69.4 tok/s (2000 × 1000 / 86,400 × 3) < 900 → one node.
  REQUIRE(c.nodes == 1);
  REQUIRE(c.utilization == Approx(23.148 / 900).epsilon(0.01));
  // The risk "throughput is a model estimate" is gone once measured.
  for (const auto& r : c.risks) REQUIRE_THAT(r, !Contains("not a measurement"));
}

TEST_CASE("plan --pilot: not applied at other prompt lengths; SLA misses exclude",
          "[pilot][plan]") {
  Json j = fixture_json();
  j["asked"]["input_tokens"] = 256;
  for (auto& p : j["load_points"]) p["mean_prompt_tokens"] = 260;
  auto with = run_with(pilot::parse_pilot(j, "short.json"));
  auto& c = with.candidates[0];
  REQUIRE(c.pilot);
  REQUIRE_FALSE(c.pilot->applied);
  REQUIRE_THAT(c.pilot->note, Contains("260 in"));  // the server's count wins over the asked 256
  REQUIRE(c.perf_evidence != "measured");

  j = fixture_json();
  for (auto& p : j["load_points"]) {
    p["tpot_ms"]["p90"] = 90;
    p["tpot_ms"]["p99"] = 95;  // percentiles stay in order
  }
  with = run_with(pilot::parse_pilot(j, "slow.json"));
  REQUIRE(with.candidates[0].perf_evidence == "measured");
  REQUIRE_FALSE(with.candidates[0].eligible);
  REQUIRE_THAT(with.candidates[0].excluded.back(), Contains("no load point meets the SLA"));

  j = fixture_json();
  j["build"]["gpus"] = 4;  // another build: nothing matches
  with = run_with(pilot::parse_pilot(j, "other.json"));
  REQUIRE_FALSE(with.candidates[0].pilot);
}

TEST_CASE("validate-perf reads a pilot file as benchmark rows", "[pilot][validate]") {
  const auto f = pilot::read_pilot_benchmarks(fixture(), cat());
  REQUIRE(f.rows.size() == 6);  // 2 closed-loop points × output_tok_s, ttft_ms, tpot_ms
  REQUIRE(f.rows[0].metric == Metric::output_tok_s);
  REQUIRE(f.rows[0].value == Approx(900));
  REQUIRE(*f.rows[0].concurrency == 32);
  REQUIRE(*f.rows[0].input_tokens == 8000);
  const auto v = validate(f, cat());
  REQUIRE(v.overall.rows == 6);
  REQUIRE(v.overall.predicted == 6);
  Json j = fixture_json();
  j["build"]["engine"] = "";
  REQUIRE_THROWS_WITH(pilot::to_benchmark_csv(pilot::parse_pilot(j, "e.json")),
                      Contains("/build/engine"));
}

TEST_CASE("Plan scenario /pilot: pass marks for the pilot's checks", "[pilot][scenario]") {
  Json j = parse_json_file(test::examples_dir() + "/plan-8xh200-glm52-huf.json");
  auto sc = plan::parse_plan_scenario(j, "s.json", cat());
  REQUIRE(sc.pilot.min_uptime_share == Approx(0.95));
  REQUIRE_FALSE(sc.pilot.min_eval_pass_share);
  j["pilot"] = {{"min_eval_pass_share", 0.9}, {"min_uptime_share", 0.99}};
  sc = plan::parse_plan_scenario(j, "s.json", cat());
  REQUIRE(*sc.pilot.min_eval_pass_share == Approx(0.9));
  REQUIRE(sc.pilot.min_uptime_share == Approx(0.99));
  j["pilot"] = {{"min_eval_pass", 0.9}};
  REQUIRE_THROWS_WITH(plan::parse_plan_scenario(j, "s.json", cat()),
                      Contains("/pilot") && Contains("min_eval_pass"));
  j["pilot"] = {{"min_eval_pass_share", 1.5}};
  REQUIRE_THROWS_AS(plan::parse_plan_scenario(j, "s.json", cat()), InputError);
}

TEST_CASE("moeplan plan --pilot and validate-perf FILE.json from the command line",
          "[pilot][cli]") {
  const auto r = test::run_moeplan("plan " + test::examples_dir() +
                                   "/plan-8xh200-glm52-huf.json --samples 64 --pilot " + fixture());
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  REQUIRE_THAT(r.output,
               Contains("Predicted vs measured") && Contains("Go/no-go measured on the pilot"));
  REQUIRE_THAT(r.output, Contains("measured (pilot"));
  const auto j = test::run_moeplan(
      "plan " + test::examples_dir() +
      "/plan-8xh200-glm52-huf.json --samples 64 --format json --pilot " + fixture());
  REQUIRE(j.exit_code == 0);
  const Json doc = Json::parse(j.output);
  REQUIRE(doc["pilot"]["comparisons"][0]["applied"] == true);
  REQUIRE(doc["pilot"]["comparisons"][0]["measured"]["output_tokens_per_s"] == 900);
  const auto v = test::run_moeplan("validate-perf " + fixture());
  REQUIRE(v.exit_code == 0);
  REQUIRE_THAT(v.output, Contains("output_tok_s") && Contains("tpot_ms"));
  const auto bad =
      test::run_moeplan("plan " + test::examples_dir() + "/plan-8xh200-glm52-huf.json --pilot " +
                        test::examples_dir() + "/plan-8xh200-glm52-huf.json");
  REQUIRE(bad.exit_code == 1);
  REQUIRE_THAT(bad.output, Contains("not a pilot file"));
}

TEST_CASE(
    "A pilot whose build names a system: matched to that system's candidate, read as its "
    "device",
    "[pilot][plan][validate]") {
  Json j = fixture_json();
  j["build"]["device"] = "hgx-h200-8";  // moeprobe load --build glm-5.2,hgx-h200-8,8,fp8
  const auto p = pilot::parse_pilot(j, "system.json");
  REQUIRE_NOTHROW(pilot::check_build(p, cat()));
  const auto with = run_with(p);
  REQUIRE(with.candidates[0].system.id == "hgx-h200-8");
  REQUIRE(with.candidates[0].pilot);
  REQUIRE(with.candidates[0].pilot->applied);
  REQUIRE(with.candidates[0].throughput == Approx(900));  // c=32, as with the device id
  j["build"]["device"] = "h200-2-lean";                   // another H200 system: not this candidate
  REQUIRE_FALSE(run_with(pilot::parse_pilot(j, "other.json")).candidates[0].pilot);

  const std::string file = (std::filesystem::temp_directory_path() /
                            ("moeplan-pilot-system-" + std::to_string(::getpid()) + ".json"))
                               .string();
  j["build"]["device"] = "hgx-h200-8";
  std::ofstream(file) << j.dump();
  const auto f = pilot::read_pilot_benchmarks(file, cat());
  std::filesystem::remove(file);
  REQUIRE(f.rows.size() == 6);
  REQUIRE(f.rows[0].gpu == "h200");
  REQUIRE(validate(f, cat()).overall.predicted == 6);
}

TEST_CASE("plan --pilot with a menu scenario is refused, not ignored", "[pilot][cli][errors]") {
  const auto r = test::run_moeplan("plan " + test::examples_dir() +
                                   "/plan-menu-rtxpro6000-huf.json --pilot " + fixture());
  INFO(r.output);
  REQUIRE(r.exit_code != 0);
  REQUIRE_THAT(r.output, Contains("--pilot") && Contains("menu scenario"));
}

TEST_CASE("plan --pilot and validate-perf refuse a pilot whose build the catalog lacks",
          "[pilot][cli][errors]") {
  const std::string bad = test::source_dir() + "/tests/data/pilot-bad-build-device.json";
  const std::string want = "/build/device: unknown device or system 'h2000', did you mean 'h200'";
  const auto p = test::run_moeplan("plan " + test::examples_dir() +
                                   "/plan-8xh200-glm52-huf.json --samples 64 --pilot " + bad);
  INFO(p.output);
  REQUIRE(p.exit_code == 1);
  REQUIRE_THAT(p.output, Contains("pilot-bad-build-device.json: " + want));
  const auto v = test::run_moeplan("validate-perf " + bad);
  INFO(v.output);
  REQUIRE(v.exit_code == 1);
  REQUIRE_THAT(v.output, Contains("pilot-bad-build-device.json: " + want));
}

TEST_CASE("validate-perf: a pilot named .JSON is JSON; JSON named .csv says so",
          "[pilot][cli][errors]") {
  namespace fs = std::filesystem;
  const fs::path dir =
      fs::temp_directory_path() / ("moeplan-pilot-ext-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::copy_file(fixture(), dir / "pilot.JSON");
  fs::copy_file(fixture(), dir / "pilot.csv");
  const auto upper = test::run_moeplan("validate-perf " + (dir / "pilot.JSON").string());
  INFO(upper.output);
  REQUIRE(upper.exit_code == 0);  // was "line 2: 2 fields, but the header has 1"
  REQUIRE_THAT(upper.output, Contains("output_tok_s") && Contains("tpot_ms"));
  const auto csv = test::run_moeplan("validate-perf " + (dir / "pilot.csv").string());
  INFO(csv.output);
  REQUIRE(csv.exit_code == 1);
  REQUIRE_THAT(csv.output, Contains("pilot.csv: line 1: the file looks like JSON (it starts with "
                                    "'{'), not a benchmark CSV"));
  fs::remove_all(dir);
}
