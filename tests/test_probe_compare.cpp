// moeprobe compare: probe rows against production figures, per target, on a
// small fixture anchor (tests/fixtures/anchor-small.json, the schema of a GPU
// run's anchor-torch.json) and a hand-made calibration (cal-small.json).
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "moeprobe/gpu_compare.hpp"
#include "test_support.hpp"

using namespace moeprobe;

namespace {

std::string fixture(const std::string& name) {
  return moeplan::test::source_dir() + "/tests/fixtures/" + name;
}

Comparison fixture_comparison() {
  const auto cal = read_cal_file(moeplan::parse_json_file(fixture("cal-small.json")), "cal");
  const auto anchor = read_anchor(moeplan::parse_json_file(fixture("anchor-small.json")), "anchor");
  return compare_with_anchor({cal}, anchor);
}

const CompareRow& row(const Comparison& c, const std::string& target, int tokens) {
  for (const auto& r : c.rows)
    if (r.target == target && r.tokens == tokens) return r;
  FAIL("no row " << target << " at " << tokens);
  throw;
}

}  // namespace

TEST_CASE("compare: ratio, absolute and fraction targets on the fixture", "[probe][compare]") {
  const Comparison c = fixture_comparison();
  // Attention at batch 64, context 4096: 160 / 134.944 = 1.186 <= 1.3 -> pass.
  const auto& a64 = row(c, "attention decode vs FlashAttention", 64);
  REQUIRE(a64.value);
  CHECK(*a64.value == Approx(160.0 / 134.944).epsilon(1e-9));
  CHECK(a64.status == "pass");
  // Batch 1: 95 / 12.832 = 7.40 > 1.3 -> FAIL (the H200 run's figure).
  CHECK(row(c, "attention decode vs FlashAttention", 1).status == "FAIL");
  // Batch 256: no calibration row -> not measured (never a silent pass).
  CHECK(row(c, "attention decode vs FlashAttention", 256).status == "not measured");
  // Experts: 60 / 58.432 = 1.027 <= 1.1 -> pass; the anchor's model prefix maps to "moe:".
  const auto& ex = row(c, "experts vs grouped GEMM", 1);
  CHECK(ex.shape == "qwen3-30b-a3b moe:128x768x2048,k8");
  CHECK(ex.status == "pass");
  // Router: an absolute goal, 25 us <= 30 us -> pass, with the ratio 25/27 in the note.
  const auto& rt = row(c, "router (gate GEMM + top-k)", 64);
  CHECK(*rt.value == Approx(25.0));
  CHECK(rt.status == "pass");
  CHECK(rt.note.find("0.93x") != std::string::npos);
  // glm-5.2's router row: the calibration is qwen3's, whose decoy row with the
  // same "moe:256x2048x6144,k8" key must not be matched to another model's figure.
  CHECK(row(c, "router (gate GEMM + top-k)", 1).status == "not measured");
  // Own targets: attention 3000/4000 = 0.75 >= 0.70 pass (64 x 4096 >= 64k positions);
  // experts 2000/4000 = 0.50 < 0.70 FAIL; MoE layer at batch 1 util 0.65 >= 0.60 pass.
  CHECK(*row(c, "attention decode vs triad", 64).value == Approx(0.75));
  CHECK(row(c, "attention decode vs triad", 64).status == "pass");
  CHECK(row(c, "decode experts vs triad", 1).status == "FAIL");
  CHECK(row(c, "MoE decode layer vs byte floor", 1).status == "pass");
  // Batch 1 x 4096 = 4096 positions < 64k: no triad target for that attention row.
  for (const auto& r : c.rows) CHECK(!(r.target == "attention decode vs triad" && r.tokens == 1));
  CHECK(c.passed == 5);
  CHECK(c.failed == 2);
  CHECK(c.missing == 2);
  REQUIRE(c.skipped_kinds.size() == 1);
  CHECK(c.skipped_kinds[0] == "copy");
}

TEST_CASE("compare: goals read as the targets of docs/probe.md", "[probe][compare]") {
  const Comparison c = fixture_comparison();
  CHECK(goal_text(row(c, "attention decode vs FlashAttention", 64)) == "<= 1.3x production");
  CHECK(goal_text(row(c, "experts vs grouped GEMM", 1)) == "<= 1.1x production");
  CHECK(goal_text(row(c, "router (gate GEMM + top-k)", 64)) == "<= 30 us");
  CHECK(goal_text(row(c, "decode experts vs triad", 1)) == ">= 70% of triad");
  CHECK(goal_text(row(c, "MoE decode layer vs byte floor", 1)) == ">= 60% of byte floor");
}

TEST_CASE("compare: bad anchor and calibration files name file and path", "[probe][compare]") {
  auto anchor = moeplan::parse_json_text(
      R"({"rows": [{"kind": "moe.router.torch", "shape": "m:1", "tokens": 1, "context": 0,
                    "p50_us": -3}]})",
      "bad-anchor.json");
  try {
    read_anchor(anchor, "bad-anchor.json");
    FAIL("negative p50_us accepted");
  } catch (const moeplan::InputError& e) {
    CHECK(e.file() == "bad-anchor.json");
    CHECK(e.json_path() == "/rows/0/p50_us");
  }
  CHECK_THROWS_AS(read_anchor(moeplan::parse_json_text(R"({"rows": []})", "a"), "a"),
                  moeplan::InputError);
  CHECK_THROWS_AS(read_anchor(moeplan::parse_json_text(R"([1, 2])", "a"), "a"),
                  moeplan::InputError);
  auto cal = moeplan::parse_json_text(R"({"schema": "something-else", "rows": []})", "c.json");
  CHECK_THROWS_WITH(read_cal_file(cal, "c.json"),
                    Catch::Contains("c.json") && Catch::Contains("moeplan-calibration"));
}

#ifdef MOEPROBE_CLI
TEST_CASE("moeprobe compare CLI on the fixtures", "[probe][compare][cli]") {
  const std::string cli = MOEPROBE_CLI;
  auto r = moeplan::test::run_command(cli + " compare " + fixture("cal-small.json") + " --anchor " +
                                      fixture("anchor-small.json"));
  CHECK(r.exit_code == 0);  // missed targets are findings, not errors
  CHECK(r.output.find("5 pass, 2 fail, 2 not measured") != std::string::npos);
  CHECK(r.output.find("anchor kind 'copy' has no target") != std::string::npos);
  r = moeplan::test::run_command(cli + " compare " + fixture("cal-small.json"));
  CHECK(r.exit_code != 0);  // --anchor is required
  r = moeplan::test::run_command(cli + " compare " + fixture("anchor-small.json") + " --anchor " +
                                 fixture("anchor-small.json"));
  CHECK(r.exit_code == 1);  // an anchor is not a calibration
  CHECK(r.output.find("moeplan-calibration") != std::string::npos);
}
#endif
