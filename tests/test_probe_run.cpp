// The run pipeline end to end on a tiny model: calibration written atomically,
// read back by the planner's reader, resume after an interrupted run, CLI exits.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "moeplan/calibration.hpp"
#include "moeplan/json_read.hpp"
#include "moeprobe/calibration_writer.hpp"
#include "moeprobe/harness.hpp"
#include "moeprobe/shapes.hpp"
#include "test_support.hpp"

using namespace moeprobe;
namespace fs = std::filesystem;

namespace {

moeplan::Model micro_model() {
  moeplan::Model m = find_model("synthetic-tiny", nullptr);
  m.id = "micro";
  m.hidden_size = 64;
  m.vocab_size = 97;
  m.attention.heads = 4;
  m.attention.kv_heads = 2;
  m.attention.head_dim = 16;
  m.dense_ffn_size = 96;
  m.moe->routed_experts = 8;
  m.moe->experts_per_token = 2;
  m.moe->expert_ffn_size = 32;
  m.moe->shared_expert_ffn_size = 32;
  return m;
}

RunOptions micro_options(const std::string& out) {
  RunOptions o;
  o.tokens = {1, 3};
  o.context = {40};
  o.prefill = {9};
  o.memory_budget_gb = 0.004;
  o.out = out;
  o.progress = false;
  TimingOptions t;
  t.warmup = 0;
  t.min_reps = 3;
  t.max_reps = 3;
  t.min_seconds = 0;
  t.flush = false;
  o.timing = t;
  return o;
}

std::string tmp_path(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("moeprobe-test-" + std::to_string(::getpid()));
  fs::create_directories(d);
  return (d / name).string();
}

}  // namespace

TEST_CASE("run writes a calibration the planner reads back", "[probe][run]") {
  auto b = make_backend("cpu", 2);
  const std::string out = tmp_path("cal.json");
  const RunResult r = run_probe(micro_model(), nullptr, *b, micro_options(out));
  REQUIRE(fs::exists(out));
  REQUIRE(fs::exists(out + ".log.jsonl"));
  // 1 triad + 7 projections x 2 tokens + 5 MoE stages x 2 + decode attention 2 + prefill 1
  // + layers (2 MoE decode + 2 dense decode + 1 prefill)
  CHECK(r.rows.size() == 1 + 14 + 10 + 2 + 1 + 5);
  for (const auto& row : r.rows) {
    CHECK(row.verified);
    CHECK(row.time.samples == 3);
    CHECK(row.time.p10 <= row.time.p50);
    CHECK(row.time.p50 <= row.time.p90);
  }
  const moeplan::Calibration c = moeplan::load_calibration(out);
  CHECK(c.schema_version == 1);
  CHECK(c.model_id == "micro");
  CHECK(c.backend == "cpu");
  CHECK(c.device.kind == "cpu");
  CHECK(c.rows.size() == r.rows.size());
  CHECK(c.bandwidth_gb_s() > 0);
  CHECK(c.compute_plateau_tflops("fp32").has_value());
  CHECK_FALSE(c.compute_plateau_tflops("fp8").has_value());
  CHECK_FALSE(c.bandwidth_fraction().has_value());
  REQUIRE(c.has_curve("moe_fused"));
  const auto& pts = c.curves.at("moe_fused").points;
  REQUIRE(pts.size() == 2);
  CHECK(c.efficiency("moe_fused", 1) == Approx(pts[0].second));
  CHECK(c.efficiency("moe_fused", 3) == Approx(pts[1].second));
  CHECK(c.efficiency("moe_fused", 2) == Approx((pts[0].second + pts[1].second) / 2));
  CHECK(c.efficiency("moe_fused", 1000) == Approx(pts[1].second));
  REQUIRE(c.decode_steps.size() == 2);
  // stack = 3 MoE layers + 1 dense layer of the micro model (4 layers, 1 dense)
  const auto& s1 = c.decode_steps[0];
  CHECK(s1.stack_s == Approx(3 * s1.layer_s + s1.dense_layer_s));
  CHECK(c.decode_step_s(1) == Approx(s1.stack_s));
  CHECK_THROWS_AS(c.efficiency("no_such_class", 1), moeplan::UnknownIdError);

  // Issue #13: how trustworthy the run was, in the file the planner read above.
  const moeplan::Json& q = r.calibration.at("quality");
  REQUIRE(q.at("spread").at("p90_p50").size() == r.rows.size());
  for (std::size_t i = 0; i < r.rows.size(); ++i)
    CHECK(q["spread"]["p90_p50"][i].get<double>() ==
          Approx(r.rows[i].time.p90 / r.rows[i].time.p50));
  CHECK(q["spread"]["median_p90_p50"].get<double>() >= 1.0);
  const auto& load = q.at("load_average");
  CHECK(load.at("cpus").get<int>() > 0);
  for (const char* k : {"start", "end", "max"})
    CHECK((load.at(k).is_null() || load.at(k).get<double>() >= 0));  // null: not readable
  CHECK(q.at("clock_drops").at("count") == "not measured");  // the CPU backend reads no clocks
  const auto& build = q.at("build");
  CHECK_FALSE(build.at("compiler").get<std::string>().empty());
  CHECK(build.at("build_type").is_string());
  CHECK(build.at("sanitizers").is_boolean());
  CHECK(build.at("cuda").is_boolean());
  // The verdict and the planner's copy agree (the machine may be busy: either is fine).
  CHECK(q.at("noisy").get<bool>() == !q.at("reasons").empty());
  CHECK(c.has_quality);
  CHECK(c.quality_noisy == q.at("noisy").get<bool>());
  CHECK(c.quality_reasons.size() == q.at("reasons").size());
  fs::remove_all(fs::path(out).parent_path());
}

namespace {
Row timed_row(double p50, double p90) {
  Row r;
  r.op = "gemm";
  r.time.p10 = p50;
  r.time.p50 = p50;
  r.time.p90 = p90;
  r.time.samples = 10;
  return r;
}
}  // namespace

TEST_CASE("quality: rows with a 4x spread make the run noisy, with the planner's reason",
          "[probe][quality]") {
  RunConditions quiet;
  quiet.load_start = quiet.load_end = quiet.load_max = 0.5;
  quiet.cpus = 4;
  // Every row p90 = 4 x p50: median 4 > 2 and 3 of 3 rows above 3x (both limits).
  const std::vector<Row> spread4 = {timed_row(1e-4, 4e-4), timed_row(2e-4, 8e-4),
                                    timed_row(1e-3, 4e-3)};
  const moeplan::Json q = quality_json(spread4, quiet);
  CHECK(q.at("noisy").get<bool>());
  REQUIRE(q.at("reasons").size() == 1);
  const std::string why = q["reasons"][0].get<std::string>();
  CHECK(why.find("too noisy to trust: median p90/p50 4.00 (limit 2.0), 3 of 3 rows above 3x") == 0);
  CHECK(q["spread"]["median_p90_p50"].get<double>() == Approx(4.0));
  CHECK(q["spread"]["noisy_rows"].get<int>() == 3);

  // The same rows at 1.1x on a quiet machine: trusted, no reason.
  const std::vector<Row> calm = {timed_row(1e-4, 1.1e-4), timed_row(2e-4, 2.2e-4)};
  const moeplan::Json ok = quality_json(calm, quiet);
  CHECK_FALSE(ok.at("noisy").get<bool>());
  CHECK(ok.at("reasons").empty());
  CHECK(ok["load_average"]["max"].get<double>() == Approx(0.5));

  // Quiet rows on a machine loaded beyond its CPUs: noisy for the load alone.
  RunConditions busy = quiet;
  busy.load_max = 6.25;
  const moeplan::Json loaded = quality_json(calm, busy);
  CHECK(loaded.at("noisy").get<bool>());
  REQUIRE(loaded.at("reasons").size() == 1);
  CHECK(loaded["reasons"][0].get<std::string>().find("load average 6.25 above the 4 CPUs") == 0);
  // Load exactly at the core count is not above it.
  busy.load_max = 4.0;
  CHECK_FALSE(quality_json(calm, busy).at("noisy").get<bool>());
  // Unreadable load (negative) is no reason; CUDA clock drops are recorded, not judged.
  RunConditions unknown;
  unknown.cpus = 4;
  unknown.clock_drops = 2;
  const moeplan::Json u = quality_json(calm, unknown);
  CHECK_FALSE(u.at("noisy").get<bool>());
  CHECK(u["load_average"]["start"].is_null());
  CHECK(u["clock_drops"]["count"].get<int>() == 2);
}

TEST_CASE("an interrupted run resumes from its log without re-measuring", "[probe][run]") {
  auto b = make_backend("cpu", 2);
  const std::string out = tmp_path("resume.json");
  RunOptions o = micro_options(out);
  o.stop_after = 7;
  CHECK_THROWS_AS(run_probe(micro_model(), nullptr, *b, o), Interrupted);
  CHECK_FALSE(fs::exists(out));  // no calibration from an unfinished run
  {                              // a torn last line (killed mid-write) is dropped
    std::ofstream app(out + ".log.jsonl", std::ios::app);
    app << "{\"type\":\"row\",\"op\":\"gem";
  }
  o.stop_after = -1;
  o.resume = true;
  int measured = 0;
  o.on_row = [&](const Row&) { ++measured; };
  const RunResult r = run_probe(micro_model(), nullptr, *b, o);
  CHECK(r.resumed == 7);
  CHECK(measured == static_cast<int>(r.rows.size()) - 7);
  CHECK(moeplan::load_calibration(out).rows.size() == r.rows.size());

  // A log from a different configuration is refused.
  RunOptions other = micro_options(out);
  other.tokens = {1, 2};
  other.resume = true;
  CHECK_THROWS_WITH(run_probe(micro_model(), nullptr, *b, other),
                    Catch::Contains("different configuration"));
  fs::remove_all(fs::path(out).parent_path());
}

TEST_CASE("a destination that cannot be written fails before anything is measured or logged",
          "[probe][run]") {
  auto b = make_backend("cpu", 2);
  const fs::path dir = fs::path(tmp_path("dest")).parent_path() / "dest-dir";
  fs::create_directories(dir);
  int measured = 0;
  RunOptions o = micro_options(dir.string());
  o.on_row = [&](const Row&) { ++measured; };
  CHECK_THROWS_WITH(run_probe(micro_model(), nullptr, *b, o),
                    Catch::Contains("--out") && Catch::Contains("Is a directory"));
  CHECK(measured == 0);
  CHECK_FALSE(fs::exists(dir.string() + ".log.jsonl"));
  o = micro_options((dir / "missing" / "x.json").string());
  o.on_row = [&](const Row&) { ++measured; };
  CHECK_THROWS_WITH(run_probe(micro_model(), nullptr, *b, o),
                    Catch::Contains("--out") && Catch::Contains("does not exist"));
  CHECK(measured == 0);
  // The log itself says why it cannot be created (the OS's reason).
  CHECK_THROWS_WITH(
      RowLog((dir / "missing" / "x.log.jsonl").string(), moeplan::Json::object(), false),
      Catch::Contains("No such file or directory"));
  fs::remove_all(fs::path(tmp_path("dest")).parent_path());
}

#ifdef MOEPROBE_CLI
TEST_CASE("moeprobe run: --out and --device are checked before measuring", "[probe][cli]") {
  const std::string cli = MOEPROBE_CLI;
  const fs::path dir = fs::path(tmp_path("cli-out")).parent_path() / "cli-out";
  fs::create_directories(dir / "adir");
  const std::string in_dir = "cd " + dir.string() + " && " + cli +
                             " run --model synthetic-tiny --quick --no-progress --out ";
  auto r = moeplan::test::run_command(in_dir + "adir");
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("--out adir: Is a directory"));
  CHECK_FALSE(fs::exists(dir / "adir.log.jsonl"));
  r = moeplan::test::run_command(in_dir + "''");
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("--out: empty file name"));
  CHECK_FALSE(fs::exists(dir / ".log.jsonl"));
  r = moeplan::test::run_command(in_dir + "nodir/x.json");
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("--out nodir/x.json") && Catch::Contains("nodir"));
  // CPU timings filed under a GPU's catalog id would be applied to that GPU by moeplan.
  r = moeplan::test::run_command(in_dir + "h.json --device h200");
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("--device h200") && Catch::Contains("gpu device") &&
                           Catch::Contains("--backend cpu"));
  CHECK_FALSE(fs::exists(dir / "h.json"));
  CHECK_FALSE(fs::exists(dir / "h.json.log.jsonl"));
  fs::remove_all(dir.parent_path());
}

TEST_CASE("budget rules: proportional shares, trimmed repetitions", "[probe][run][budget]") {
  // 300 s left, a section of 40 of 200 weighted cells: 300 * 40 / 200 = 60 s.
  CHECK(budget_share_s(300, 40, 200) == Approx(60));
  CHECK(budget_share_s(300, 50, 50) == Approx(300));  // the last section gets the rest
  CHECK(budget_share_s(-1, 10, 20) == 0);
  TimingOptions full;  // warmup 3, min_reps 10, max_reps 200, min_seconds 0.2
  bool trimmed = true;
  TimingOptions t = budget_timing(full, 3.0, &trimmed);  // 1 s for timing >= 0.2 s: unchanged
  CHECK_FALSE(trimmed);
  CHECK(t.min_reps == 10);
  CHECK(t.min_seconds == 0.2);
  t = budget_timing(full, 0.3, &trimmed);  // 0.1 s for timing < 0.2 s
  CHECK(trimmed);
  CHECK(t.min_seconds == Approx(0.1));
  CHECK(t.min_reps == 5);
  CHECK(t.warmup == 1);
  CHECK(t.max_reps == 50);
  t = budget_timing(full, -2.0, &trimmed);  // overdrawn: the floor of 3 repetitions
  CHECK(t.min_seconds == 0);
  CHECK(t.min_reps == 3);
}

TEST_CASE("a spent --budget-s leaves cells out and says so in the file", "[probe][run][budget]") {
  const moeplan::Model m = micro_model();
  auto b = make_backend("cpu", 1);
  const std::string out = tmp_path("budget.json");
  fs::remove(out + ".log.jsonl");
  RunOptions o = micro_options(out);
  o.budget_s = 1e-6;  // spent before the first section after the triad begins
  const RunResult r = run_probe(m, nullptr, *b, o);
  REQUIRE(r.rows.size() == 1);  // the triad is always measured
  CHECK(r.rows[0].op == "triad");
  // Every other cell is listed: 2 token counts x (projections + 5 MoE ops + 1 attention
  // context + 2 layer shapes) + prefill cells; at least the 10 MoE cells.
  CHECK(r.out_of_time.size() > 10);
  const auto doc = moeplan::parse_json_file(out);
  CHECK(doc["probe"]["budget"]["limit_s"].get<double>() == Approx(1e-6));
  CHECK(doc["probe"]["budget"]["not_measured"].size() == r.out_of_time.size());
  bool noted = false;
  for (const auto& n : doc["probe"]["notes"])
    noted = noted || n.get<std::string>().find("cells not measured") != std::string::npos;
  CHECK(noted);
  // The same run without a budget measures every cell and records the sections' seconds.
  const std::string out2 = tmp_path("nobudget.json");
  fs::remove(out2 + ".log.jsonl");
  const RunResult full = run_probe(m, nullptr, *b, micro_options(out2));
  CHECK(full.rows.size() == 1 + r.out_of_time.size());  // same cells, all measured
  CHECK(full.out_of_time.empty());
  CHECK(full.trimmed == 0);
  const auto doc2 = moeplan::parse_json_file(out2);
  CHECK(doc2["probe"]["budget"]["limit_s"].is_null());
  for (const char* sec : {"triad", "gemm", "moe", "attention", "layers"})
    CHECK(doc2["probe"]["budget"]["section_s"].contains(sec));
}

TEST_CASE("moeprobe CLI: list, check, unavailable backend, bad flags", "[probe][cli]") {
  const std::string cli = MOEPROBE_CLI;
  auto r = moeplan::test::run_command(cli + " list");
  CHECK(r.exit_code == 0);
#ifdef MOEPROBE_HAVE_CUDA
  CHECK(r.output.find("cuda") != std::string::npos);
#else
  CHECK(r.output.find("not built") != std::string::npos);
#endif
  r = moeplan::test::run_command(cli + " check --model synthetic-tiny");
  CHECK(r.exit_code == 0);
  CHECK(r.output.find("all ops match their references") != std::string::npos);
  r = moeplan::test::run_command(
      cli + " run --model synthetic-tiny --backend cuda --quick --out /tmp/x.json");
  if (r.exit_code != 0) {  // 0 only on a machine with a GPU and a CUDA build
    CHECK(r.exit_code == 4);
    CHECK(r.output.find("backend 'cuda' is unavailable") != std::string::npos);
  }
  r = moeplan::test::run_command(cli + " run --model synthetic-tiny --distribution zipf");
  CHECK(r.exit_code == 1);
  CHECK(r.output.find("unknown --distribution 'zipf'") != std::string::npos);
}
#endif
