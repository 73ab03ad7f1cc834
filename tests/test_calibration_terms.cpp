// What the planner takes from a probe calibration (issue #11; docs/probe.md, "What the planner
// takes from the probe"): which measured rows feed which term of the step model, the quality
// floor that keeps a class measured far below its roofline out, and validate-perf's
// before/after comparison.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>

#include "moeplan/calibration.hpp"
#include "moeplan/calibration_quality.hpp"
#include "moeplan/errors.hpp"
#include "moeplan/json_read.hpp"
#include "moeplan/performance.hpp"
#include "moeplan/validate_perf.hpp"
#include "test_support.hpp"

using namespace moeplan;

namespace {

const Catalog& cat() {
  return test::bundled_catalog();
}

constexpr double kBw = 3000.0;      // GB/s, the fixture's triad
constexpr double kPlateau = 700.0;  // TFLOP/s bf16, the fixture's GEMM plateau

// One measured row: `eff` of its roofline max(bytes / triad, FLOPs / plateau).
Json row(const std::string& op, const std::string& shape, int tokens, long long context,
         double bytes, double flops, double eff, int touched = -1) {
  const double roof = std::max(bytes / (kBw * 1e9), flops / (kPlateau * 1e12));
  const double p50 = roof / eff;
  return {{"op", op},
          {"shape", shape},
          {"dtype", "bf16"},
          {"distribution", "balanced"},
          {"tokens", tokens},
          {"context", context},
          {"p50_s", p50},
          {"p10_s", p50 * 0.95},
          {"p90_s", p50 * 1.05},
          {"samples", 20},
          {"bytes", bytes},
          {"flops", flops},
          {"roofline_s", nullptr},
          {"util", nullptr},
          {"roofline_measured_s", bytes / (kBw * 1e9)},
          {"util_measured", eff},
          {"gb_s", bytes / p50 * 1e-9},
          {"tflops", flops / p50 * 1e-12},
          {"experts_touched", touched > 0 ? Json(touched) : Json(nullptr)},
          {"verified", true},
          {"max_err", 1e-6}};
}

// Measured efficiency of each class (at every point; 0 = class not in the file).
struct Effs {
  double gemm = 0, attention = 0, experts = 0, layer = 0;
  double layer_intercept_s = 20e-6;
};

// A hand-made calibration of an H100 SXM for qwen3-30b-a3b: bandwidth 3000 GB/s, bf16 plateau
// 700 TFLOP/s, and rows of each kernel class at the efficiencies given.
Json cal_json(const Effs& e) {
  Json rows = Json::array();
  rows.push_back(row("triad", "triad:67108864", 0, 0, 8.0 * 67108864 * 3, 2.0 * 67108864, 1.0));
  for (int m : {1, 16, 256})
    if (e.gemm > 0)  // a 2048 x 5120 bf16 GEMM at M rows
      rows.push_back(row("gemm", "attn.qkv:5120x2048", m, 0, 2.0 * 5120 * 2048 + 2.0 * m * 7168,
                         2.0 * m * 5120 * 2048, e.gemm));
  for (int b : {1, 16, 64})
    if (e.attention > 0)  // 2048 KV bytes per position per layer (4 heads x 128 x K,V x bf16)
      rows.push_back(row("attention.decode", "gqa:32/4x128", b, 4096, 2048.0 * b * 4096,
                         16384.0 * b * 4096, e.attention));
  const int touched[] = {8, 84, 127};
  const int tokens[] = {1, 16, 64};
  for (int i = 0; i < 3; ++i)
    if (e.experts > 0)  // 3 x 768 x 2048 bf16 weights per touched expert
      rows.push_back(row("moe.experts", "moe:128x768x2048,k8", tokens[i], 0,
                         touched[i] * 3.0 * 768 * 2048 * 2, 2.0 * tokens[i] * 8 * 3 * 768 * 2048,
                         e.experts, touched[i]));
  if (e.layer > 0) {
    // t = intercept + bytes / (triad x e.layer): a per-layer fixed cost on top of the byte time.
    for (int b : {1, 2, 4, 64}) {
      const double bytes = 1e8 * (1 + b);  // a MoE layer's 200 MB at batch 1, as real ones
      Json r = row("layer.decode", "moe_layer:gqa:32/4x128,x1", b, 1024, bytes, 0, e.layer, b);
      const double p50 = e.layer_intercept_s + bytes / (kBw * 1e9) / e.layer;
      r["p50_s"] = p50;
      r["p10_s"] = p50 * 0.95;
      r["p90_s"] = p50 * 1.05;
      rows.push_back(r);
    }
  }
  Json j = Json::object();
  j["schema"] = "moeplan-calibration";
  j["schema_version"] = 1;
  j["created_utc"] = "2026-11-26T00:00:00Z";
  j["probe"] = {{"version", "1.0.0"}, {"git_sha", "test"}, {"backend", "cuda"}};
  j["device"] = {{"name", "NVIDIA H100 80GB HBM3"},
                 {"kind", "gpu"},
                 {"catalog_id", "h100-sxm"},
                 {"memory_gb", 80.0},
                 {"cores", 132}};
  j["model"] = {{"id", "qwen3-30b-a3b"}, {"layers", 48}};
  j["config"] = {{"dtype", "bf16"}};
  j["rows"] = rows;
  j["fits"] = {{"bandwidth_gb_s", kBw},
               {"catalog_bandwidth_gb_s", 3350.0},
               {"bandwidth_fraction", kBw / 3350.0},
               {"step_latency_s", 0.0},
               {"effective_bandwidth_gb_s", kBw},
               {"latency_fit", Json::object()},
               {"compute_plateau_tflops", {{"bf16", kPlateau}}},
               {"efficiency", Json::object()}};
  j["decode_step"] = Json::array();
  return j;
}

// Every kernel class measured above the floor (GEMM 0.9, attention 0.7, MoE 0.6, layers 0.8).
Effs every_class_used() {
  Effs e;
  e.gemm = 0.9;
  e.attention = 0.7;
  e.experts = 0.6;
  e.layer = 0.8;
  return e;
}

DeviceCalibration device_cal(const Json& j) {
  return device_calibration(parse_calibration(j.dump(), "cal.json"));
}

const CalibrationTerm& term(const DeviceCalibration& d, const std::string& starts) {
  for (const auto& t : d.terms)
    if (t.term.rfind(starts, 0) == 0) return t;
  FAIL("no term " << starts);
  return d.terms.front();
}

PerfRequest request(const DeviceCalibration* cal) {
  PerfRequest r;
  r.model = &cat().model("qwen3-30b-a3b");
  r.device = &cat().device("h100-sxm");
  r.engine = &cat().engine("vllm");
  r.weights = parse_weight_spec("bf16", r.model->native_precision, cat());
  r.kv_precision = "bf16";
  r.calibration = cal;
  return r;
}

// One decode step of qwen3-30b-a3b on one H100 with `cal`, `batch` sequences at `context`.
StepBreakdown step_with(const DeviceCalibration& cal, double batch, double context) {
  return decode_step(request(&cal), cat(), batch, context);
}

std::string h200_fixture() {
  return test::source_dir() + "/tests/data/cal-h200-qwen3-30b-a3b-trimmed.json";
}

}  // namespace

TEST_CASE("calibration terms: a class below the quality floor is recorded, not used, and says why",
          "[calibration][floor]") {
  Effs e;
  e.gemm = 0.9;
  e.attention = 0.3;  // below kMemoryBoundFloor (0.5) of the triad at every point
  const DeviceCalibration d = device_cal(cal_json(e));
  const CalibrationTerm& a = term(d, "attention");
  CHECK_FALSE(a.used);
  REQUIRE(a.value);
  CHECK(*a.value == Approx(0.3));
  // Largest point: batch 64 x context 4096 = 262144 positions.
  CHECK_THAT(a.note, Catch::Contains("0.300 of the measured triad bandwidth at positions = "
                                     "262144 is below the quality floor 0.50"));
  CHECK_FALSE(d.curve("attention", 262144).has_value());
  CHECK(term(d, "GEMM efficiency").used);
  CHECK_FALSE(term(d, "MoE").used);
  CHECK_THAT(term(d, "MoE").note, Catch::Contains("not measured"));

  // The estimate falls back to the default for that term: the same as a file with no attention
  // rows at all.
  Effs none = e;
  none.attention = 0;
  const DeviceCalibration d0 = device_cal(cal_json(none));
  CHECK(step_with(d, 64, 8192).time_s == Approx(step_with(d0, 64, 8192).time_s).epsilon(1e-12));
}

TEST_CASE("calibration terms: a class above the floor is used and slows its own term by 1/eff",
          "[calibration][floor]") {
  Effs with;
  with.attention = 0.8;  // 0.8 of the triad at every point
  const DeviceCalibration d = device_cal(cal_json(with));
  REQUIRE(term(d, "attention").used);
  CHECK(*d.curve("attention", 4096) == Approx(0.8));
  const DeviceCalibration d0 = device_cal(cal_json(Effs{}));

  // Batch 1 at 32k context (decode attention reads the KV once per step): only the KV term
  // moves, by kv_bytes / BW x (1 / 0.8 - 1). BW = measured triad x the engine's bandwidth factor.
  const StepBreakdown a = step_with(d, 1, 32768);
  const StepBreakdown b = step_with(d0, 1, 32768);
  const Efficiencies eff = resolve_efficiencies(cat().device("h100-sxm"), cat().engine("vllm"), &d);
  const double bw =
      cat().device("h100-sxm").memory_bandwidth_gb_s * 1e9 * eff.dev_bw.value * eff.eng_bw.value;
  CHECK(eff.dev_bw.value == Approx(kBw / 3350.0));
  const double expected = b.kv_bytes_per_gpu / bw * (1.0 / 0.8 - 1.0);
  REQUIRE(expected > 0);
  CHECK(a.time_s - b.time_s == Approx(expected).epsilon(1e-6));
  CHECK(a.time_s > b.time_s);  // a kernel at 0.8 of the triad is slower than the default
}

TEST_CASE("calibration terms: each kernel class feeds its own term, keyed as the model asks",
          "[calibration][floor]") {
  Effs e = every_class_used();
  const DeviceCalibration d = device_cal(cal_json(e));
  for (const char* t : {"GEMM efficiency", "attention", "MoE", "per-layer"}) {
    INFO(t);
    CHECK(term(d, t).used);
  }
  // GEMM by M; attention by batch x context; MoE by tokens per expert (tokens x k / touched:
  // 16 x 8 / 84 = 1.52).
  CHECK(*d.curve("gemm", 16) == Approx(0.9));
  CHECK(*d.curve("attention", 16.0 * 4096) == Approx(0.7));
  CHECK(*d.curve("moe_experts", 16.0 * 8 / 84) == Approx(0.6));
  CHECK_THAT(term(d, "MoE").note, Catch::Contains("tokens per expert = 4.03"));  // 64 x 8 / 127
  // Per-layer overhead: the intercept of time against bytes at batch 1-4 (20 µs by
  // construction), replacing the engine's layer + MoE-layer costs (a MoE layer was measured).
  CHECK(d.layer_overhead_us == Approx(20.0).epsilon(1e-6));
  const Efficiencies eff = resolve_efficiencies(cat().device("h100-sxm"), cat().engine("vllm"), &d);
  CHECK(eff.layer_overhead_us.value == Approx(20.0).epsilon(1e-6));
  CHECK(eff.layer_overhead_us.evidence == Evidence::measured);
  CHECK(eff.moe_layer_overhead_us.value == 0.0);

  // A large fixed cost (the probe's host round trips: glm-5.2's per-expert cuBLASLt path on an
  // H200 measured ~1.4 ms a layer) with a fast byte stream: at batch 64 the layer is at
  // 6.5 GB / 3000 GB/s = 2167 µs of bytes in 2167 / 0.8 + 500 = 3208 µs (0.68, above the floor),
  // but at batch 1 at 66.7 / (83.3 + 500) = 0.11: judged at the smallest batch, not used.
  Effs big = e;
  big.layer_intercept_s = 500e-6;
  const DeviceCalibration hosty = device_cal(cal_json(big));
  CHECK_FALSE(term(hosty, "per-layer").used);
  CHECK_THAT(term(hosty, "per-layer").note, Catch::Contains("batch = 1"));
  CHECK(hosty.layer_overhead_us == 0.0);

  // The same layer rows with their byte time at 0.1 of the triad: below the floor, default kept.
  e.layer = 0.1;
  const DeviceCalibration slow = device_cal(cal_json(e));
  CHECK_FALSE(term(slow, "per-layer").used);
  CHECK(slow.layer_overhead_us == 0.0);
  const Efficiencies def =
      resolve_efficiencies(cat().device("h100-sxm"), cat().engine("vllm"), &slow);
  CHECK(def.layer_overhead_us.evidence != Evidence::measured);
}

TEST_CASE("calibration terms: shape-keyed curves apply to the calibration's own model only",
          "[calibration][floor]") {
  // The fixture was measured for qwen3-30b-a3b: for it every class is used; for another model
  // the device layer and the GEMM curve carry over, the attention and MoE curves and the
  // per-layer overhead (that model's head, expert and layer sizes) do not.
  const DeviceCalibration d = device_cal(cal_json(every_class_used()));
  REQUIRE(d.model_id == "qwen3-30b-a3b");
  const DeviceCalibration own = calibration_for(d, "qwen3-30b-a3b", nullptr);
  CHECK(*own.curve("attention", 16.0 * 4096) == Approx(0.7));
  CHECK(*own.curve("moe_experts", 16.0 * 8 / 84) == Approx(0.6));
  CHECK(own.layer_overhead_us == Approx(20.0).epsilon(1e-6));
  CHECK(term(own, "MoE").used);

  const DeviceCalibration other = calibration_for(d, "deepseek-r1", nullptr);
  CHECK(other.bandwidth_gb_s == d.bandwidth_gb_s);
  CHECK(other.bf16_tflops == d.bf16_tflops);
  CHECK(*other.curve("gemm", 16) == Approx(0.9));
  CHECK_FALSE(other.curve("attention", 16.0 * 4096).has_value());
  CHECK_FALSE(other.curve("moe_experts", 1.5).has_value());
  CHECK(other.layer_overhead_us == 0.0);
  for (const char* t : {"attention", "MoE", "per-layer"}) {
    INFO(t);
    CHECK_FALSE(term(other, t).used);
    CHECK_THAT(term(other, t).note, Catch::Contains("measured on qwen3-30b-a3b's shapes"));
  }
  CHECK(term(other, "GEMM efficiency").used);
  const Efficiencies eff =
      resolve_efficiencies(cat().device("h100-sxm"), cat().engine("vllm"), &other);
  CHECK(eff.layer_overhead_us.evidence != Evidence::measured);
  CHECK(eff.dev_bw.evidence == Evidence::measured);

  // validate-perf applies the same rule row by row: a qwen3-30b-a3b row takes the MoE curve
  // (0.6: slower than the device layer alone), a gpt-oss-120b row on the same device is
  // predicted exactly as with the device layer and GEMM curve alone.
  const BenchmarkFile f = parse_benchmarks(
      "model,gpu,gpu_count,precision,kv_precision,engine,input_tokens,output_tokens,concurrency,"
      "metric,value,unit,source\n"
      "qwen3-30b-a3b,h100-sxm,1,bf16,,vllm,,,1,decode_tok_s_single,150,tok/s,test\n"
      "gpt-oss-120b,h100-sxm,1,,,vllm,,,1,decode_tok_s_single,150,tok/s,test\n",
      "bench.csv");
  Effs device_only;
  device_only.gemm = 0.9;
  Effs moe_only = device_only;
  moe_only.experts = 0.6;
  const DeviceCalibration dev = device_cal(cal_json(device_only));
  const DeviceCalibration moe = device_cal(cal_json(moe_only));
  const ValidationResult with = validate(f, cat(), &moe);
  const ValidationResult base = validate(f, cat(), &dev);
  REQUIRE(with.predictions[0].predicted);
  REQUIRE(with.predictions[1].predicted);
  CHECK(*with.predictions[0].predicted < *base.predictions[0].predicted);
  CHECK(*with.predictions[1].predicted == *base.predictions[1].predicted);
}

TEST_CASE("calibration terms: a faster measured curve never makes the estimate slower",
          "[calibration][floor][property]") {
  // Every class at efficiency x, x rising from 0.6 (all classes above the floor, the layer rows'
  // fixed cost included), must not make any step slower.
  for (double batch : {1.0, 8.0, 64.0})
    for (double context : {1024.0, 16384.0}) {
      double last = std::numeric_limits<double>::infinity();
      for (double x = 0.6; x <= 1.2001; x += 0.05) {
        Effs e;
        e.gemm = e.attention = e.experts = e.layer = x;
        const double t = step_with(device_cal(cal_json(e)), batch, context).time_s;
        INFO("batch " << batch << " context " << context << " eff " << x);
        CHECK(t <= last * (1 + 1e-12));
        last = t;
      }
    }
}

TEST_CASE("calibration terms: malformed kernel rows are errors naming the file and row",
          "[calibration][floor]") {
  Effs e;
  e.attention = 0.8;
  e.experts = 0.8;
  const Json good = cal_json(e);
  auto fails = [](const Json& j, const std::string& path, const std::string& text) {
    try {
      device_cal(j);
      FAIL("no error for " << path);
    } catch (const InputError& ex) {
      INFO(ex.what());
      CHECK(ex.file() == "cal.json");
      CHECK(ex.json_path() == path);
      CHECK_THAT(std::string(ex.what()), Catch::Contains(text));
    }
  };
  // rows[0] is the triad, rows[1..3] attention, rows[4..6] experts.
  Json j = good;
  j["rows"][1]["context"] = 0;
  fails(j, "rows[1].context", "context > 0");
  j = good;
  j["rows"][4]["experts_touched"] = nullptr;
  fails(j, "rows[4].experts_touched", "experts_touched > 0");
  j = good;
  j["rows"][5]["shape"] = "moe:128x768x2048";
  fails(j, "rows[5].shape", ",k<top-k>");
  j = good;
  j["rows"][6]["bytes"] = 0.0;
  j["rows"][6]["flops"] = 0.0;
  fails(j, "rows[6].bytes", "no roofline");
}

TEST_CASE("calibration terms: the H200 probe run of issue #11 feeds only its GEMM rows",
          "[calibration][floor]") {
  // tests/data/cal-h200-qwen3-30b-a3b-trimmed.json: rows of the b4ea4a6 probe run on one H200
  // (2026-11-26), trimmed (see its probe.notes). Σ roofline / Σ time at the largest point of each
  // class, against its triad 4261.8 GB/s and bf16 plateau 558.0 TFLOP/s (hand-computed from the
  // fixture's rows):
  //   gemm M = 256 (compute-bound): 1.044 -> used;
  //   attention.decode 256 x 4096 positions: 0.0577 -> not used (the "5% of the triad");
  //   moe.experts at 16 tokens per expert: 0.212 -> not used;
  //   layer.decode at batch 256: 0.084 -> not used (the "8% of its byte floor").
  const DeviceCalibration d = device_calibration(load_calibration(h200_fixture()));
  CHECK(d.device_id == "h200");
  CHECK(term(d, "GEMM efficiency").used);
  CHECK(*term(d, "GEMM efficiency").value == Approx(1.044).epsilon(0.002));
  CHECK_THAT(term(d, "GEMM efficiency").note, Catch::Contains("GEMM plateau at M = 256"));
  CHECK_FALSE(term(d, "attention").used);
  CHECK(*term(d, "attention").value == Approx(0.0577).epsilon(0.002));
  CHECK_FALSE(term(d, "MoE").used);
  CHECK(*term(d, "MoE").value == Approx(0.212).epsilon(0.002));
  CHECK_FALSE(term(d, "per-layer").used);
  CHECK_THAT(term(d, "per-layer").note, Catch::Contains("below the quality floor"));
  CHECK_FALSE(d.curve("attention", 262144).has_value());
  CHECK_FALSE(d.curve("moe_experts", 4).has_value());

  // Before the floor, the attention curve (0.05) divided the attention FLOP term and the GEMM
  // curve the whole step: at batch 64 and 4k context qwen3-30b-a3b's decode step on an H200 came
  // out 1.39x what the bandwidth and plateau alone give (the old calibration_device.cpp and
  // performance.cpp built against this fixture). Now only the GEMM curve (0.89-1.04) acts on
  // the GEMM terms: 1.06x.
  DeviceCalibration plain = d;
  plain.curve = nullptr;
  PerfRequest r = request(&d);
  r.device = &cat().device("h200");
  const double with = decode_step(r, cat(), 64, 4096).time_s;
  r.calibration = &plain;
  const double without = decode_step(r, cat(), 64, 4096).time_s;
  CHECK(with / without == Approx(1.0).margin(0.10));
}

TEST_CASE("validate-perf --calibration: only the device's rows move, and the move is reported",
          "[calibration][validate]") {
  const BenchmarkFile f = parse_benchmarks(
      "model,gpu,gpu_count,precision,kv_precision,engine,input_tokens,output_tokens,concurrency,"
      "metric,value,unit,source\n"
      "qwen3-30b-a3b,h100-sxm,1,bf16,,vllm,,,1,decode_tok_s_single,150,tok/s,test\n"
      "qwen3-30b-a3b,h200,1,bf16,,vllm,,,1,decode_tok_s_single,180,tok/s,test\n",
      "bench.csv");
  // Half the bandwidth on the H100: its row slows, the H200 row does not move.
  DeviceCalibration half;
  half.device_id = "h100-sxm";
  half.file = "half.json";
  half.bandwidth_gb_s = 3350 * 0.45;
  const ValidationResult without = validate(f, cat());
  const ValidationResult with = validate(f, cat(), &half);
  REQUIRE(without.predictions[0].predicted);
  REQUIRE(with.predictions[0].predicted);
  CHECK(*with.predictions[0].predicted < *without.predictions[0].predicted * 0.8);
  CHECK(*with.predictions[1].predicted == *without.predictions[1].predicted);

  const auto eff = calibration_effect(f, without, with, "h100-sxm");
  REQUIRE(eff.size() == 2);  // the metric and "all"
  CHECK(eff[0].metric == "decode_tok_s_single");
  CHECK(eff[0].rows == 1);
  CHECK(eff[1].metric == "all");
  CHECK(eff[0].median_abs_pct_without == Approx(std::fabs(without.predictions[0].error_pct)));
  CHECK(eff[0].median_abs_pct_with == Approx(std::fabs(with.predictions[0].error_pct)));
  const bool closer =
      std::fabs(with.predictions[0].error_pct) < std::fabs(without.predictions[0].error_pct);
  CHECK(eff[0].verdict == (closer ? "towards the published rows" : "away from the published rows"));
  // Swapping the two runs reverses the verdict; the same run twice is "unchanged".
  CHECK(calibration_effect(f, with, without, "h100-sxm")[0].verdict ==
        (closer ? "away from the published rows" : "towards the published rows"));
  CHECK(calibration_effect(f, with, with, "h100-sxm")[0].verdict == "unchanged");
  CHECK(calibration_effect(f, without, with, "mi300x").empty());
  ValidationResult short_run = with;
  short_run.predictions.pop_back();
  CHECK_THROWS_AS(calibration_effect(f, without, short_run, "h100-sxm"), Error);
}

TEST_CASE("validate-perf --calibration: a device no published row can name is an error",
          "[calibration][validate]") {
  Json j = cal_json(Effs{});
  j["device"]["catalog_id"] = "no-such-gpu";
  const std::string path = "calfloor-no-such-gpu.json";
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    REQUIRE(f);
    const std::string text = j.dump();
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
  }
  const auto r = test::run_moeplan("validate-perf " + test::data_dir() +
                                   "/benchmarks/published.csv --calibration " + path);
  std::remove(path.c_str());
  INFO(r.output);
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.output, Catch::Contains("device 'no-such-gpu' is not in the catalog"));
}

TEST_CASE("calibration terms: a GEMM plateau measured only far below the ridge point is not used",
          "[calibration]") {
  const Device& h100 = cat().device("h100-sxm");
  // Hand calculation: the H100 SXM's ridge is 989.5 TFLOP/s / 3,350 GB/s = 295 FLOP per byte.
  // The fixture's GEMM at M = 256 does 2·256·5120·2048 FLOPs over 2·5120·2048 + 2·256·7168 bytes
  // = 218 FLOP per byte (≥ half the ridge: a compute measurement); at M = 16, 15.8 (< 148).
  Effs e;
  e.gemm = 0.9;
  const DeviceCalibration full = device_cal(cal_json(e));
  CHECK(full.gemm_max_intensity == Approx(218.4).epsilon(0.01));
  const DeviceCalibration kept = calibration_for(full, "", &h100);
  CHECK(kept.bf16_tflops == Approx(kPlateau));
  CHECK(term(kept, "GEMM plateau").used);

  Json j = cal_json(e);
  Json rows = Json::array();
  for (const auto& r : j["rows"])
    if (!(r["op"] == "gemm" && r["tokens"] == 256)) rows.push_back(r);
  j["rows"] = rows;
  const DeviceCalibration partial = device_cal(j);
  CHECK(partial.gemm_max_intensity == Approx(15.8).epsilon(0.01));
  const DeviceCalibration judged = calibration_for(partial, "", &h100);
  CHECK(judged.bf16_tflops == 0);
  const CalibrationTerm& t = term(judged, "GEMM plateau");
  CHECK_FALSE(t.used);
  CHECK_THAT(t.note, Catch::Contains("not used") && Catch::Contains("ridge point of h100-sxm"));
  // The device layer then keeps the datasheet × derating compute figure, not the memory's rate.
  const Efficiencies with = resolve_efficiencies(h100, cat().engine("vllm"), &judged);
  const Efficiencies without = resolve_efficiencies(h100, cat().engine("vllm"), nullptr);
  CHECK(with.dev_compute.value == Approx(without.dev_compute.value));
  CHECK(with.dev_bw.evidence == Evidence::measured);  // the triad still counts
  // A device without a datasheet peak has no ridge to judge by: the file stands as it is.
  Device bare = h100;
  bare.peak_tflops.clear();
  CHECK(calibration_for(partial, "", &bare).bf16_tflops == Approx(kPlateau));

  // Both judgements in one call, as perf and validate-perf make it, on a file with every class
  // measured but GEMMs only up to M = 16: another model's rows on the H100 lose the shape-keyed
  // curves and the sub-ridge plateau; the triad and the GEMM curve stand.
  Json sub_ridge = cal_json(every_class_used());
  Json kept_rows = Json::array();
  for (const auto& r : sub_ridge["rows"])
    if (!(r["op"] == "gemm" && r["tokens"] == 256)) kept_rows.push_back(r);
  sub_ridge["rows"] = kept_rows;
  const DeviceCalibration all = device_cal(sub_ridge);
  REQUIRE(term(all, "MoE").used);
  REQUIRE(all.layer_overhead_us > 0);
  const DeviceCalibration both = calibration_for(all, "deepseek-r1", &h100);
  CHECK(both.bf16_tflops == 0);
  CHECK_FALSE(term(both, "GEMM plateau").used);
  CHECK_FALSE(term(both, "MoE").used);
  CHECK(both.layer_overhead_us == 0.0);
  CHECK(both.bandwidth_gb_s == all.bandwidth_gb_s);
  CHECK(term(both, "GEMM efficiency").used);
  // Its own model on the H100: the shape-keyed curves stay, only the plateau goes.
  const DeviceCalibration own = calibration_for(all, all.model_id, &h100);
  CHECK(own.bf16_tflops == 0);
  CHECK(term(own, "MoE").used);
  CHECK(own.layer_overhead_us == Approx(all.layer_overhead_us));
}

TEST_CASE("calibration terms: CPU timings are refused for a GPU, and GPU timings for a CPU",
          "[calibration][errors]") {
  const DeviceCalibration gpu_file = device_cal(cal_json({}));
  REQUIRE(gpu_file.kind != "cpu");
  DeviceCalibration cpu_file = gpu_file;
  cpu_file.kind = "cpu";  // moeprobe run --backend cpu --device h200, as older probes wrote it
  const Device& h200 = cat().device("h200");
  CHECK_THROWS_WITH(calibration_for(cpu_file, "", &h200),
                    Catch::Contains("measured on a cpu backend, but 'h200' is a gpu device"));
  const Device& epyc = *std::find_if(cat().devices.begin(), cat().devices.end(),
                                     [](const Device& d) { return d.kind == DeviceKind::cpu; });
  CHECK_THROWS_WITH(calibration_for(gpu_file, "", &epyc),
                    Catch::Contains("is a cpu device in the catalog"));
  CHECK_NOTHROW(calibration_for(cpu_file, "", &epyc));
  // The CUDA backend records "gpu" on a unified-memory part (GB10): not a contradiction.
  const auto unified = std::find_if(cat().devices.begin(), cat().devices.end(),
                                    [](const Device& d) { return d.kind == DeviceKind::unified; });
  REQUIRE(unified != cat().devices.end());
  CHECK_NOTHROW(calibration_for(gpu_file, "", &*unified));
  CHECK_NOTHROW(calibration_for(cpu_file, "", nullptr));  // no catalog device: nothing to judge
}
