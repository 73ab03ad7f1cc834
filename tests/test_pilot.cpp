// Pilot files (docs/load.md §Feedback into the plan): parsing, replacing a
// candidate's modelled figures with measured ones, the validate-perf adapter,
// and the plan scenario's /pilot pass marks.
#include <catch2/catch.hpp>

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
  for (auto& p : j["load_points"]) p["tpot_ms"]["p90"] = 90;
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
  const auto f = pilot::read_pilot_benchmarks(fixture());
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
