// Performance model: acceptance cases T1–T3 (the acceptance worked examples) through the
// real estimate() path and the bundled catalogs, property tests, and goldens with
// the hand calculation next to each. Formulas: docs/performance.md.
#include <fmt/format.h>
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <string>
#include <utility>

#include "moeplan/deployment.hpp"
#include "moeplan/errors.hpp"
#include "moeplan/performance.hpp"
#include "test_support.hpp"

using namespace moeplan;

namespace {

const Catalog& cat() {
  return test::bundled_catalog();
}

PerfRequest request(const std::string& model, const std::string& gpu, int gpus,
                    const std::string& weights, const std::string& engine = "vllm",
                    const std::string& kv = "bf16") {
  return test::perf_request(model, gpu, gpus, weights, engine, kv);
}

// Decode step times of `r` under engine profiles `a` and `b` (everything else equal).
std::pair<double, double> step_under(PerfRequest r, const Engine& a, const Engine& b, double batch,
                                     double context) {
  r.engine = &a;
  const double ta = decode_step(r, cat(), batch, context).time_s;
  r.engine = &b;
  return {ta, decode_step(r, cat(), batch, context).time_s};
}

// NVIDIA NIM's benchmark configuration: Llama 3.3 70B FP8 TP2 on 2×H100 under TensorRT-LLM,
// FP8 KV (implied by the table's own figures), 5000 in / 500 out, at `concurrency`.
PerfRequest nim_70b_request(long long concurrency) {
  PerfRequest r = request("llama-3.3-70b", "h100-sxm", 2, "fp8", "trtllm", "fp8");
  r.input_tokens = 5000;
  r.output_tokens = 500;
  r.concurrency = concurrency;
  return r;
}

double deviation_pct(double predicted, double lo, double hi) {
  if (predicted < lo) return (predicted - lo) / lo * 100;
  if (predicted > hi) return (predicted - hi) / hi * 100;
  return 0;
}

}  // namespace

TEST_CASE("T1: one sustained token per second for a 30-day month", "[perf][acceptance]") {
  // 1 tok/s × 30 d × 24 h × 3600 s = 2,592,000 tokens.
  CHECK(tokens_per_month(1.0) == Approx(2592000.0));
  CHECK(tokens_per_month(500.0) == Approx(1.296e9));
}

TEST_CASE("T2: EPYC 9554 roofline for an 8B Q4 model", "[perf][acceptance]") {
  // Article: ~500 GB/s measured, 8B Q4 ≈ 4.5 GB per token, 50 tok/s measured.
  // Roofline = 500 / 4.5 = 111.1 tok/s; efficiency = 50 / 111.1 = 45% (the article says 55%).
  PerfRequest r = request("llama-3.1-8b", "epyc-9554", 1, "q4_k_m", "llama.cpp");
  const StepBreakdown s = decode_step(r, cat(), 1, 128);
  // Llama 3.1 8B at Q4_K_M: 8.03e9 × 4.8 bits / 8 = 4.8 GB stored, of which the input
  // embedding (0.5e9 params, ~0.3 GB) is a lookup, not a read: ≈ 4.5 GB read per token.
  CHECK(s.weight_bytes_per_gpu / 1e9 == Approx(4.5).epsilon(0.03));
  const double roofline = 500e9 / s.bytes_per_gpu;
  CHECK(roofline == Approx(111.1).epsilon(0.03));
  CHECK(50.0 / roofline == Approx(0.45).epsilon(0.04));
  // The article's own inputs, exactly.
  CHECK(500.0 / 4.5 == Approx(111.1).epsilon(0.001));
  CHECK(50.0 / (500.0 / 4.5) == Approx(0.45));
}

TEST_CASE("T3: 8×H200 GLM-5.x FP8 against the published envelope", "[perf][acceptance]") {
  PerfRequest r = request("glm-5.2", "h200", 8, "fp8", "vllm", "fp8");

  // Single stream, no speculation: published ~75 tok/s.
  r.input_tokens = 256;
  r.output_tokens = 1024;
  r.concurrency = 1;
  const double single = estimate(r, cat()).decode.per_request_tokens_per_s;
  // EAGLE speculation: published ~118 tok/s. At the old default acceptance (α = 0.7, τ = 2.53)
  // the model gave 119 tok/s only while each draft pass paid the whole model's communication;
  // with one layer per draft pass it is ≈ 179 (issue 16, item 1 alone), and ≈ 173 once the MLA
  // q_a / kv_a projections are read whole on every rank (item 4: +1.1 GB per GPU per pass):
  // step 14.6 ms / τ 2.53 = TPOT 5.77 ms. The published speed-up 118 / 75 = 1.57× implies
  // α ≈ 0.45 (τ = (1 − 0.45⁴)/0.55 = 1.74), the refitted default (docs/performance.md
  // §Speculative).
  r.spec.method = SpecMethod::eagle;
  const double eagle = estimate(r, cat()).decode.per_request_tokens_per_s;
  r.spec.acceptance = 0.7;
  const double eagle_old_default = estimate(r, cat()).decode.per_request_tokens_per_s;
  r.spec = {};

  // 8k in / 1k out at concurrency 16: published 658–733 aggregate output tok/s.
  r.input_tokens = 8192;
  r.output_tokens = 1024;
  r.concurrency = 16;
  const double agg16 = estimate(r, cat()).decode.output_tokens_per_s;

  // "256k in / 32k out at concurrency 32 with MTP: ~527 output tok/s, TPOT ≈ 35 ms, TTFT ≈ 13.4 s"
  // is seed 000's reading of vLLM's GLM-5 recipe benchmark, whose output block gives the run's
  // totals (256,000 input / 32,768 generated tokens): 32 prompts of 8,000 in / 1,024 out at 10
  // requests per second, MTP with 3 draft tokens at acceptance length 1.64 (α = 0.407), plain
  // TP 8 (data/benchmarks/published.csv; docs/performance.md §T3). Predicted as that run: one
  // wave, whole-run averages.
  PerfRequest l = test::with_load(test::perf_request("glm-5", "h200", 8, "fp8", "vllm", "bf16"),
                                  8000, 1024, 32);
  l.arrivals = Arrivals::once;
  l.request_rate_per_s = 10;
  l.spec.method = SpecMethod::mtp;
  l.spec.tokens = 3;
  l.spec.acceptance = 0.407;
  const PerfResult lr = estimate(l, cat());

  std::printf("T3 deviation from the published envelope (default efficiencies, no calibration):\n");
  std::printf("  single stream       %7.1f tok/s vs ~75    (%+.0f%%)\n", single,
              (single - 75) / 75 * 100);
  std::printf("  single stream EAGLE %7.1f tok/s vs ~118   (%+.0f%%; α 0.45 default)\n", eagle,
              (eagle - 118) / 118 * 100);
  std::printf("  single stream EAGLE %7.1f tok/s vs ~118   (%+.0f%%; α 0.7, the old default)\n",
              eagle_old_default, (eagle_old_default - 118) / 118 * 100);
  std::printf("  8k/1k c=16          %7.1f tok/s vs 658-733 (%+.0f%% outside the range)\n", agg16,
              deviation_pct(agg16, 658, 733));
  std::printf("  recipe 32 x 8000/1024 MTP %7.1f tok/s vs 526.6 (%+.0f%%)\n",
              lr.decode.output_tokens_per_s,
              (lr.decode.output_tokens_per_s - 526.57) / 526.57 * 100);
  std::printf("                      TPOT %5.1f ms vs 35.4  (%+.0f%%)\n", lr.decode.tpot_ms,
              (lr.decode.tpot_ms - 35.39) / 35.39 * 100);
  std::printf(
      "                      TTFT %7.2f s vs 13.40 (%+.0f%%; the run's prefill: ~10k tok/s)\n",
      lr.prefill.ttft_ms / 1e3, (lr.prefill.ttft_ms / 1e3 - 13.395) / 13.395 * 100);

  // Inside or near the envelope: within ±30% of each throughput anchor.
  CHECK(single == Approx(75).epsilon(0.30));
  CHECK(eagle == Approx(118).epsilon(0.30));
  CHECK(eagle_old_default == Approx(173.3).epsilon(0.02));
  CHECK(std::fabs(deviation_pct(agg16, 658, 733)) <= 30);
  // The recipe run: the decode side (TPOT, MTP included) is within ±30%. Its prefill is not:
  // 32 prompts queued behind 0.8–0.9 s each (mean TTFT 13.4 s and P99 23 s over arrivals
  // 0.1 s apart: 9–10k prompt tok/s) where this model prefills 8,000 tokens in ~0.18 s, so TTFT
  // comes out ~9× short and whole-run output ~2× high (docs/performance.md §T3, §Where it misses).
  // Both are printed above, not asserted; the wave itself is tested in test_burst.cpp.
  CHECK(lr.decode.tpot_ms == Approx(35.39).epsilon(0.30));
  CHECK(lr.spec_tokens == 3);
  CHECK(eagle > single);
}

TEST_CASE("decode throughput rises with batch and stays under both ceilings", "[perf][property]") {
  for (const char* model : {"llama-3.1-8b", "qwen3-30b-a3b", "deepseek-v3"}) {
    const bool big = std::string(model) == "deepseek-v3";
    PerfRequest r = request(model, "h200", big ? 8 : 1, big ? "fp8" : "bf16");
    const Model& m = *r.model;
    double prev = 0;
    for (double b : {1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0}) {
      const StepBreakdown s = decode_step(r, cat(), b, 1024);
      const double tps = b / s.time_s;
      INFO(model << " batch " << b);
      CHECK(tps >= prev * 0.999);
      prev = tps;
      // Bandwidth ceiling: every step reads at least the dense weights, at datasheet bandwidth.
      CHECK(s.time_s >= s.weight_bytes_per_gpu / (r.device->memory_bandwidth_gb_s * 1e9));
      // Compute ceiling: 2 × active params per token at datasheet peak over all GPUs.
      const double peak = r.device->peak_tflops_for(big ? "fp8" : "bf16") * 1e12 * r.gpus;
      CHECK(tps <= peak / (2.0 * m.active_params_b * 1e9 * 0.5));
      CHECK(s.time_s >= std::max(s.memory_s, s.compute_s));
    }
  }
}

TEST_CASE("more context never speeds decode", "[perf][property]") {
  for (const char* model : {"llama-3.1-8b", "gemma-4-31b", "glm-5.2", "deepseek-v3"}) {
    const bool big = std::string(model) == "glm-5.2" || std::string(model) == "deepseek-v3";
    PerfRequest r = request(model, "h200", big ? 8 : 1, big ? "fp8" : "bf16");
    double prev = 0;
    for (double ctx : {0.0, 512.0, 4096.0, 32768.0, 131072.0, 1e6}) {
      const double t = decode_step(r, cat(), 8, ctx).time_s;
      INFO(model << " context " << ctx);
      CHECK(t >= prev);
      prev = t;
    }
  }
}

TEST_CASE("MoE expert coverage tends to E as the batch grows", "[perf][property]") {
  // E·(1 − (1 − k/E)^B): B = 1 → k; B = 16, E = 256, k = 8 → 256·(1 − 0.96875^16) = 256·0.3983 =
  // 102.0.
  CHECK(expected_experts_touched(256, 8, 1) == Approx(8));
  CHECK(expected_experts_touched(256, 8, 16) == Approx(101.96).epsilon(0.005));
  double prev = 0;
  for (double b = 1; b <= 4096; b *= 2) {
    const double e = expected_experts_touched(256, 8, b);
    CHECK(e >= prev);
    CHECK(e <= 256.0);
    prev = e;
  }
  CHECK(prev == Approx(256).epsilon(1e-6));
  // Skew concentrates traffic: fewer distinct experts at the same batch.
  CHECK(expected_experts_touched(256, 8, 16, 0.5) < expected_experts_touched(256, 8, 16));
  // Through the step: at large batch every expert is read.
  PerfRequest r = request("deepseek-v3", "h200", 8, "fp8");
  CHECK(decode_step(r, cat(), 4096, 512).experts_touched == Approx(256).epsilon(0.001));
}

TEST_CASE("GEMMs and attention are separate kernels: their rooflines add", "[perf][property]") {
  // Llama 3.1 8B FP8 on one H200 with FP8 KV. Batch 1: every kernel is memory-bound, so the
  // roofline part of the step is bytes / BW exactly as one whole-step roofline would give.
  PerfRequest r = request("llama-3.1-8b", "h200", 1, "fp8", "trtllm", "fp8");
  const StepBreakdown one = decode_step(r, cat(), 1, 2048);
  CHECK(one.time_s - one.overhead_s - one.comm_s == Approx(one.memory_s).epsilon(0.01));
  // Batch 1024 at 2k context: the GEMMs are compute-bound (1024 × 15 GFLOP ≈ 15 TFLOP) while
  // attention is bound by its KV reads (1024 × 2048 × 64 KiB ≈ 137 GB). The kernels run one
  // after another, so the step takes the sum of both — well above max(Σ bytes, Σ FLOPs).
  const StepBreakdown big = decode_step(r, cat(), 1024, 2048);
  const double roof = big.time_s - big.overhead_s - big.comm_s;
  CHECK(roof > 1.1 * std::max(big.memory_s, big.compute_s));
  CHECK(roof <= big.memory_s + big.compute_s + 1e-12);
}

TEST_CASE("FP8 weights are never slower than BF16 on a device with FP8", "[perf][property]") {
  for (const char* model : {"llama-3.1-8b", "qwen3-30b-a3b"}) {
    PerfRequest bf = request(model, "h100-sxm", 1, "bf16");
    PerfRequest f8 = request(model, "h100-sxm", 1, "fp8");
    for (double b : {1.0, 8.0, 64.0, 512.0}) {
      INFO(model << " batch " << b);
      CHECK(decode_step(f8, cat(), b, 2048).time_s <= decode_step(bf, cat(), b, 2048).time_s);
    }
    bf.input_tokens = f8.input_tokens = 4096;
    CHECK(estimate(f8, cat()).prefill.ttft_ms <= estimate(bf, cat()).prefill.ttft_ms);
  }
}

TEST_CASE("single-stream golden: Llama 3.1 8B Q4_K_M on an RTX 4090 with llama.cpp",
          "[perf][golden]") {
  PerfRequest r = request("llama-3.1-8b", "rtx-4090", 1, "q4_k_m", "llama.cpp");
  r.input_tokens = 0;
  r.output_tokens = 128;
  const PerfResult p = estimate(r, cat());
  // Bytes ≈ 4.5 GB weights + 32 layers × 8 KV heads × 128 × 2 × 2 B × 64 tokens of KV (8 MB).
  // Bandwidth 1008 GB/s × 0.90 (device) × 0.85 (llama.cpp) = 771 GB/s → 5.85 ms.
  // Fixed: 1.0 ms step + 32 × 20 µs = 1.64 ms. Step 7.5 ms → 133 tok/s (published ~128).
  CHECK(p.decode.tpot_ms == Approx(7.5).epsilon(0.03));
  CHECK(p.decode.per_request_tokens_per_s == Approx(133.5).epsilon(0.03));
  CHECK(p.bound == Bound::memory);
  CHECK(p.evidence == Evidence::default_);
}

TEST_CASE("an EAGLE / MTP draft pass costs one decoder layer plus the LM head", "[perf]") {
  // Llama-3.3-70B FP8 on 8×H100 SXM, tp 8, EAGLE (K = 3), concurrency 1 (issue 16, item 1).
  // Each TP all-reduce at batch 1: 2·7/8 · tokens × 8192 × 2 B / (450 GB/s × 0.8) + 15 µs (vLLM
  // GPU collective latency) = 15.08 µs for 1 token, 15.32 µs for the 4 tokens of a verify pass.
  //   no speculation: 80 layers × 2 × 15.08 µs = 2.41 ms per step;
  //   EAGLE: verify 160 × 15.32 µs = 2.45 ms + 3 draft passes × 2 × 15.08 µs = 0.09 ms = 2.54 ms
  //   (9.69 ms before: each draft pass paid 160 all-reduces).
  // TPOT ≈ 4.2 ms (6.99 ms before) at the acceptance α = 0.7 (τ = 2.53), given explicitly
  // since the EAGLE default is now 0.45.
  PerfRequest r = request("llama-3.3-70b", "h100-sxm", 8, "fp8");
  const PerfResult base = estimate(r, cat());
  CHECK(base.decode.step.comm_s * 1e3 == Approx(2.41).epsilon(0.01));
  r.spec.method = SpecMethod::eagle;
  r.spec.acceptance = 0.7;
  const PerfResult e = estimate(r, cat());
  CHECK(e.decode.step.comm_s * 1e3 == Approx(2.54).epsilon(0.01));
  CHECK(e.decode.tpot_ms == Approx(4.2).epsilon(0.05));

  // Property: a draft pass's cost does not grow with the model's depth. A 2×-deep copy of the
  // model doubles the verify step but each draft pass stays one layer, so the draft's share of
  // the speculative step falls.
  Model deep = *r.model;
  deep.layers *= 2;
  deep.total_params_b *= 2;
  PerfRequest d = r;
  d.model = &deep;
  const PerfResult de = estimate(d, cat());
  d.spec = {};
  const PerfResult db = estimate(d, cat());
  const double draft_comm = e.decode.step.comm_s - 160 * 15.32e-6;
  const double deep_draft_comm = de.decode.step.comm_s - 320 * 15.32e-6;
  CHECK(deep_draft_comm == Approx(draft_comm).epsilon(0.05));
  CHECK(de.decode.tpot_ms / db.decode.tpot_ms < e.decode.tpot_ms / base.decode.tpot_ms);
}

TEST_CASE("DP-attention reads the whole attention weights on every GPU", "[perf]") {
  // GLM-5.2 FP8 on 8×H200 (issue 16, item 4). Attention weights 13.0 GB; plain TP keeps the MLA
  // q_a / kv_a projections whole (78 × 6144 × (2048 + 576) = 1.26 G params ≈ 1.26 GB) and splits
  // the rest by 8; DP-attention holds all 13.0 GB on each GPU. Extra bytes read per step per GPU:
  // (13.0 − 1.26) × 7/8 ≈ 10.3 GB, ≈ 2.7 ms at 4.8 TB/s × 0.9 × 0.85 (11.4 GB against the old
  // code, which split even q_a / kv_a).
  PerfRequest r = request("glm-5.2", "h200", 8, "fp8", "vllm", "fp8");
  const StepBreakdown tp = decode_step(r, cat(), 1, 4096);
  r.layout.dp_attention = true;
  const StepBreakdown dp = decode_step(r, cat(), 1, 4096);
  CHECK((dp.weight_bytes_per_gpu - tp.weight_bytes_per_gpu) / 1e9 == Approx(10.3).epsilon(0.02));
  CHECK(dp.time_s > tp.time_s);
}

TEST_CASE("speculative decoding: expected tokens and cost", "[perf]") {
  // (1 − 0.7^4) / (1 − 0.7) = 0.7599 / 0.3 = 2.533
  CHECK(spec_expected_tokens(3, 0.7) == Approx(2.533).epsilon(0.001));
  CHECK(spec_expected_tokens(1, 0.85) == Approx(1.85));
  CHECK(spec_expected_tokens(0, 0.9) == Approx(1.0));
  PerfRequest r = request("deepseek-v3", "h200", 8, "fp8");
  r.input_tokens = 1024;
  r.output_tokens = 512;
  const double base = estimate(r, cat()).decode.tpot_ms;
  r.spec.method = SpecMethod::mtp;
  r.spec.acceptance = 0.0;  // nothing accepted: the draft is pure cost
  CHECK(estimate(r, cat()).decode.tpot_ms > base);
  r.spec.acceptance = 0.9;
  CHECK(estimate(r, cat()).decode.tpot_ms < base);
}

TEST_CASE("steady state: CPUs and unified memory through the same model", "[perf]") {
  PerfRequest cpu = request("llama-3.3-70b", "epyc-9554", 1, "q4_k_m", "llama.cpp");
  PerfRequest apu = request("llama-3.3-70b", "strix-halo", 1, "q4_k_m", "llama.cpp");
  const double c = estimate(cpu, cat()).decode.per_request_tokens_per_s;
  const double a = estimate(apu, cat()).decode.per_request_tokens_per_s;
  // 42 GB per token: EPYC 460.8 GB/s × 0.8 × 0.75 → ~6.5 tok/s; Strix Halo 256 × 0.85 × 0.8 → ~4.1.
  CHECK(c == Approx(6.5).epsilon(0.1));
  CHECK(a == Approx(4.1).epsilon(0.1));
}

TEST_CASE("sweep runs from 1 to the KV-memory limit and honours the SLA", "[perf]") {
  PerfRequest r = request("qwen3-30b-a3b", "h100-sxm", 1, "fp8", "vllm", "fp8");
  r.input_tokens = 2048;
  r.output_tokens = 512;
  const SweepResult s = sweep(r, cat(), Sla{50.0, std::nullopt});
  REQUIRE(!s.points.empty());
  CHECK(s.points.front().concurrency == 1);
  CHECK(s.points.back().concurrency == s.max_concurrency);
  CHECK(s.knee_concurrency >= 1);
  REQUIRE(s.best_sla_concurrency);
  for (const auto& p : s.points)
    if (p.concurrency == *s.best_sla_concurrency) CHECK(p.result.decode.tpot_ms <= 50.0);
  // Aggregate output rises along the sweep.
  CHECK(s.points.back().result.decode.output_tokens_per_s >
        s.points.front().result.decode.output_tokens_per_s);
}

TEST_CASE("one SLA predicate: bounds inclusive, unstated bounds always met", "[perf][sla]") {
  const Sla none;
  CHECK_FALSE(none.any());
  CHECK(none.met_by(1e9, 1e9));
  const Sla tpot{50.0, std::nullopt};
  CHECK(tpot.any());
  CHECK(tpot.met_by(50.0, 1e9));  // exactly at the bound meets it
  CHECK_FALSE(tpot.met_by(50.001, 0.0));
  const Sla both{50.0, 2000.0};
  CHECK(both.met_by(49.0, 2000.0));
  CHECK_FALSE(both.met_by(49.0, 2000.5));
  CHECK_FALSE(both.met_by(51.0, 100.0));
  // The sweep marks each point by it: the flag is the predicate at the point's latencies
  // (bounds at the middle point's TPOT and TTFT, so some points meet them and some do not).
  PerfRequest r = request("qwen3-30b-a3b", "h100-sxm", 1, "fp8", "vllm", "fp8");
  r.input_tokens = 2048;
  r.output_tokens = 512;
  const SweepResult open = sweep(r, cat());
  REQUIRE(open.points.size() > 2);
  const auto& mid = open.points[open.points.size() / 2].result;
  const Sla at_mid{mid.decode.tpot_ms, mid.prefill.ttft_ms};
  const SweepResult s = sweep(r, cat(), at_mid);
  bool some_in = false, some_out = false;
  for (const auto& p : s.points) {
    CHECK(p.meets_sla == at_mid.met_by(p.result.decode.tpot_ms, p.result.prefill.ttft_ms));
    (p.meets_sla ? some_in : some_out) = true;
  }
  CHECK(some_in);
  CHECK(some_out);
}

TEST_CASE("a calibration replaces the device layer and marks the evidence measured", "[perf]") {
  PerfRequest r = request("llama-3.1-8b", "h100-sxm", 1, "bf16");
  DeviceCalibration c;
  c.device_id = "h100-sxm";
  c.file = "cal.json";
  c.bandwidth_gb_s = 3350 * 0.5;  // half the datasheet
  r.calibration = &c;
  const PerfResult p = estimate(r, cat());
  CHECK(p.evidence == Evidence::measured);
  CHECK(p.eff.dev_bw.value == Approx(0.5));
  r.calibration = nullptr;
  CHECK(estimate(r, cat()).decode.tpot_ms < p.decode.tpot_ms);
}

TEST_CASE("a lone prompt is prefilled on one data-parallel replica", "[perf][ttft][property]") {
  // Llama 3.3 70B FP8 at tp 2 under vLLM, 8,000 in / 512 out. A sequence lives on one replica,
  // so a single request on tp 2 × dp 4 (8 GPUs) takes as long to its first token as on one
  // replica of 2 GPUs. The model once spread the prompt over all four replicas: 156 ms against
  // 604 ms (audit of 2026-11-27), and recommend then chose DP layouts that missed a TTFT target.
  PerfRequest one = request("llama-3.3-70b", "h100-sxm", 2, "fp8");
  one.layout.tp = 2;
  one.input_tokens = 8000;
  one.output_tokens = 512;
  PerfRequest four = one;
  four.gpus = 8;
  const PerfResult a = estimate(one, cat());
  const PerfResult b = estimate(four, cat());
  REQUIRE(b.layout.dp == 4);
  CHECK(b.prefill.ttft_alone_ms == Approx(a.prefill.ttft_alone_ms).epsilon(0.01));
  CHECK(b.prefill.ttft_ms == Approx(a.prefill.ttft_ms).epsilon(0.02));
  // Under load the four replicas prefill side by side: 64 requests on dp 4 serve about four
  // times what 16 serve on one replica, at about the same TTFT (the replicas are independent;
  // the shared step model is not exact, hence 10% and 15%).
  one.concurrency = 16;
  four.concurrency = 64;
  const PerfResult a16 = estimate(one, cat());
  const PerfResult b64 = estimate(four, cat());
  CHECK(b64.decode.output_tokens_per_s == Approx(4 * a16.decode.output_tokens_per_s).epsilon(0.1));
  CHECK(b64.prefill.ttft_ms == Approx(a16.prefill.ttft_ms).epsilon(0.15));
  // Property: more replicas never lengthen a lone request's TTFT nor shorten it below one
  // replica's.
  for (int gpus : {2, 4, 6, 8}) {
    PerfRequest r = one;
    r.gpus = gpus;
    r.concurrency = 1;
    INFO(gpus << " GPUs");
    CHECK(estimate(r, cat()).prefill.ttft_ms == Approx(a.prefill.ttft_ms).epsilon(0.02));
  }
}

TEST_CASE("a prompt of exactly the token budget is one chunk step", "[perf][ttft]") {
  // vLLM's budget is 8,192 tokens. At concurrency 1 nothing else decodes while the prompt is
  // prefilled, so an 8,192-token prompt is one step and TTFT equals the idle TTFT. The budget
  // used to be shared with the request itself (8,191 tokens left): two full steps, twice the
  // idle TTFT (1,240 against 620 ms on 2×H100; audit of 2026-11-27).
  PerfRequest r = request("llama-3.3-70b", "h100-sxm", 2, "fp8");
  r.layout.tp = 2;
  r.output_tokens = 512;
  for (long long in : {8191LL, 8192LL, 8193LL, 16383LL, 16384LL, 20000LL}) {
    r.input_tokens = in;
    const PerfResult e = estimate(r, cat());
    INFO(in << " prompt tokens");
    CHECK(e.prefill.ttft_ms == Approx(e.prefill.ttft_alone_ms).epsilon(0.01));
  }
  // Property: TTFT never falls as the prompt grows, across the chunk boundaries.
  double last = 0;
  for (long long in = 7936; in <= 16640; in += 64) {
    r.input_tokens = in;
    const double t = estimate(r, cat()).prefill.ttft_ms;
    INFO(in << " prompt tokens");
    CHECK(t >= last - 1e-9);
    last = t;
  }
}

TEST_CASE("perf rejects bad requests", "[perf]") {
  PerfRequest r = request("llama-3.1-8b", "h100-sxm", 1, "bf16");
  r.concurrency = 0;
  CHECK_THROWS_AS(estimate(r, cat()), Error);
  r.concurrency = 1;
  r.gpus = 3;
  r.layout.tp = 2;
  CHECK_THROWS_AS(estimate(r, cat()), Error);
  CHECK_THROWS_AS(parse_spec_method("medusa"), UnknownIdError);
}

TEST_CASE("TTFT under load: prompts that arrive together queue for the prefill budget",
          "[perf][ttft]") {
  // Llama 3.1 8B BF16 on one H100 under vLLM (token budget 8192). With 8192-token prompts each
  // step prefills exactly one prompt, so C prompts arriving together see first tokens after
  // 1, 2, …, C prefill steps (the later ones slower for the decoders they carry): the mean is
  // at least (C + 1)/2 ≈ 16.5 prefill times at C = 32. The old M/D/1 steady-state estimate put
  // it near one prefill time (prompts modelled as spread-out arrivals).
  PerfRequest r = request("llama-3.1-8b", "h100-sxm", 1, "bf16");
  r.input_tokens = 8192;
  r.output_tokens = 1024;
  r.concurrency = 32;
  r.arrivals = Arrivals::together;
  const PerfResult res = estimate(r, cat());
  REQUIRE(res.prefill.ttft_alone_ms > 0);
  const double ratio = res.prefill.ttft_ms / res.prefill.ttft_alone_ms;
  CHECK(ratio >= 16.5 * 0.95);
  CHECK(ratio <= 32.0);  // never worse than every prompt waiting for all of them
  // Measured in the steady state instead, the arrivals are spread out: far less queueing.
  r.arrivals = Arrivals::steady;
  CHECK(estimate(r, cat()).prefill.ttft_ms < res.prefill.ttft_ms / 4);
  r.arrivals = Arrivals::together;
  // Property: mean TTFT never falls as more prompts arrive together.
  double last = 0;
  for (long long c : {1, 2, 4, 8, 16, 32}) {
    r.concurrency = c;
    const double t = estimate(r, cat()).prefill.ttft_ms;
    CHECK(t >= last * 0.999);
    last = t;
  }
}

TEST_CASE("Experts split by tensor parallelism: a decode step reads 1/(tp × dp) of them",
          "[perf][moe]") {
  // InferenceX, DeepSeek-R1 NVFP4 on 8 × B200, TensorRT-LLM TP 8 with --ep_size 1, 1K/1K at
  // c = 16 (run 19019407598, 2025-11-02; data/benchmarks/inferencex-single-node.csv): mean TPOT
  // 11.91 ms. Read as every GPU streaming every touched expert whole, the estimate was 35.6 ms
  // (+199%); split eight ways it is the EP 8 step.
  PerfRequest r =
      request("deepseek-r1", "b200", 8, "default=fp8,routed_experts=nvfp4", "trtllm", "fp8");
  r.input_tokens = 1024;
  r.output_tokens = 1024;
  r.concurrency = 16;
  r.layout = Layout{8, 1, 1, false};
  const PerfResult tp_split = estimate(r, cat());
  r.layout = Layout{8, 1, 8, false};
  const PerfResult ep_split = estimate(r, cat());
  // The same bytes per touched expert (the batch differs a hair with the communication).
  CHECK(tp_split.decode.step.expert_bytes_per_gpu ==
        Approx(ep_split.decode.step.expert_bytes_per_gpu).epsilon(0.01));
  CHECK(tp_split.decode.tpot_ms == Approx(ep_split.decode.tpot_ms).epsilon(0.02));
  // Within the error this model has on the EP 8 run of the same point (published.csv, 12.26 ms
  // measured, +23% predicted: the B200 NVFP4 TPOT bias of docs/performance.md §Efficiencies).
  CHECK(tp_split.decode.tpot_ms == Approx(11.91).epsilon(0.30));
}

TEST_CASE("TTFT of a client's run of N prompts, simulated", "[perf][ttft]") {
  // DeepSeek-R1 NVFP4 on 8 × B200 under TensorRT-LLM, 1K/1K, c = 16, as InferenceX ran it:
  // 160 prompts (10 × C), lengths 0.8–1.0 of the nominal.
  PerfRequest r =
      request("deepseek-r1", "b200", 8, "default=fp8,routed_experts=nvfp4", "trtllm", "fp8");
  r.input_tokens = 1024;
  r.output_tokens = 1024;
  r.concurrency = 16;
  r.arrivals = Arrivals::steady;
  const double steady = estimate(r, cat()).prefill.ttft_ms;
  r.arrivals = Arrivals::together;
  const double every_wave = estimate(r, cat()).prefill.ttft_ms;
  REQUIRE(every_wave > steady);
  r.prompts = 160;
  r.range_ratio = 0.8;
  const PerfResult run = estimate(r, cat());
  // The waves break up after the first: below every wave together, above a lone prompt.
  CHECK(run.prefill.ttft_ms < every_wave);
  CHECK(run.prefill.ttft_ms > run.prefill.ttft_alone_ms);
  // Totals count the run's 160 prompts, not one wave of 16: at 1K/1K (both lengths drawn from
  // 0.8–1.0) input and output tokens come out about equal.
  CHECK(run.prefill.aggregate_tokens_per_s == Approx(run.decode.output_tokens_per_s).epsilon(0.03));
  CHECK(run.decode.total_tokens_per_s ==
        Approx(run.decode.output_tokens_per_s + run.prefill.aggregate_tokens_per_s));
  std::string notes;
  for (const auto& n : run.notes) notes += n + "\n";
  CHECK_THAT(notes, Catch::Matchers::Contains("a client of 16 in flight sending 160 prompts"));
  // Property: more prompts after the first wave never raise the mean much (the first wave's
  // share shrinks; ±3% for the draws).
  double last = run.prefill.ttft_ms;
  for (long long n : {320, 640}) {
    r.prompts = n;
    const double t = estimate(r, cat()).prefill.ttft_ms;
    CHECK(t <= last * 1.03);
    last = t;
  }

  // The library refuses what the flags and columns refuse, rather than running something else.
  PerfRequest bad = r;
  bad.prompts = 8;  // fewer than the 16 in flight
  CHECK_THROWS_AS(estimate(bad, cat()), Error);
  bad = r;
  bad.arrivals = Arrivals::steady;  // prompts outside `together`
  CHECK_THROWS_AS(estimate(bad, cat()), Error);
  bad = r;
  bad.prompts = 0;  // a range ratio without prompts
  CHECK_THROWS_AS(estimate(bad, cat()), Error);
  bad = r;
  bad.admission_interval_steps = 0;
  CHECK_THROWS_AS(estimate(bad, cat()), Error);

  // The run's token budget: 1,152 tokens a step (trtllm-serve --max_num_tokens as InferenceX set
  // it) fit one 1K prompt, so prompts that arrive together are prefilled one a step — never
  // faster than with the engine's 8,192 (eight a step).
  r.prompts = 0;
  r.range_ratio = 1;
  r.max_num_tokens = 1152;
  const PerfResult tight = estimate(r, cat());
  CHECK(tight.prefill.chunk_tokens == 1152);
  CHECK(tight.prefill.ttft_ms > every_wave);
}

TEST_CASE("engine efficiencies per device class: <kind>.<vendor>.<name> before <kind>.<name>",
          "[perf][efficiency]") {
  // A device class (kind × vendor) gets its own engine factor; other vendors of the same kind
  // keep the kind's value.
  Engine e = cat().engine("llama.cpp");
  e.efficiency["unified.compute"] = 0.5;
  e.efficiency["unified.apple.compute"] = 0.25;
  e.efficiency.erase("unified.amd.compute");
  const Efficiencies apple = resolve_efficiencies(cat().device("apple-m4-max"), e);
  const Efficiencies amd = resolve_efficiencies(cat().device("strix-halo"), e);
  CHECK(apple.eng_compute.value == Approx(0.25));
  CHECK(apple.eng_compute.source.find("unified.apple.compute") != std::string::npos);
  CHECK(amd.eng_compute.value == Approx(0.5));
}

TEST_CASE("one prompt crosses a layer split stage after stage: no pipeline speed-up",
          "[perf][pipeline]") {
  // llama.cpp's layer split (pp = GPUs) prefilling one 512-token prompt (llama-bench pp512): a
  // single micro-batch visits the cards one after another, so 8 RTX 4090s are no faster than 4
  // (published: 813 vs 835 tok/s for Llama 3.3 70B Q4_K_M). The old model split the chunk into
  // pp micro-batches and predicted 8 cards ~2× as fast as 4.
  PerfRequest r = request("llama-3.3-70b", "rtx-4090", 4, "q4_k_m", "llama.cpp");
  r.input_tokens = 512;
  r.output_tokens = 1;
  const double four = estimate(r, cat()).prefill.tokens_per_s;
  r.gpus = 8;
  const double eight = estimate(r, cat()).prefill.tokens_per_s;
  CHECK(eight / four == Approx(1.0).epsilon(0.15));
}

TEST_CASE("TTFT under steady load: a closed loop's queue, the prefill's time share",
          "[perf][ttft]") {
  // closed_loop_ttft_s, by hand (mean value analysis): prefill S = 1 s, held 1 s, decode
  // Z = 3 s, a decode step T = 0.2 s. Population 1: R = S (no other request, no step running);
  // X(1) = 1/(1 + 3) = 0.25, Q(1) = 0.25, U(1) = 0.25. Population 2: R = 1 + 1 × (0.25 − 0.125)
  // + (1 − 0.25) × 1/2 × 0.2/2 = 1.1625 s.
  CHECK(closed_loop_ttft_s(1, 1, 3, 1, 0.2) == Approx(1.0));
  CHECK(closed_loop_ttft_s(1, 1, 3, 2, 0.2) == Approx(1.1625));
  CHECK(closed_loop_ttft_s(0, 0, 3, 8, 0.2) == 0.0);
  // A fractional population (requests split over replicas) lies between its neighbours.
  const double r2 = closed_loop_ttft_s(1, 1, 3, 2, 0.2), r3 = closed_loop_ttft_s(1, 1, 3, 3, 0.2);
  CHECK(closed_loop_ttft_s(1, 1, 3, 2.5, 0.2) == Approx((r2 + r3) / 2));
  // Properties: never below the service time, rising with the population, and never more than
  // the other N − 1 prompts ahead (the open M/D/1 queue used before 2026-11-28 had no such
  // bound: at high load it kept more requests waiting than were in flight). With pipeline
  // stages a prompt holds the prefill for less than its latency, and queues the next one less.
  double last = 0;
  for (int n = 1; n <= 64; ++n) {
    CAPTURE(n);
    const double t = closed_loop_ttft_s(1, 1, 3, n, 0.2);
    CHECK(t >= 1.0);
    CHECK(t >= last);
    CHECK(t <= 1.0 + (n - 1) * 1.0 + 0.1);
    CHECK(closed_loop_ttft_s(1, 0.5, 3, n, 0.2) <= t);
    last = t;
  }
  // Saturated (no decode time): every request waits for nearly all the others' prompts.
  CHECK(closed_loop_ttft_s(1, 1, 0, 5, 0) > 4.0);
  // NIM's Llama 3.3 70B FP8 TP2 on 2×H100, 5000 in / 500 out, concurrency 50 (genai-perf
  // steady windows; FP8 KV as the table's own throughput × ITL implies): published mean TTFT
  // 834.5 ms. Counting ρ as the share of *steps* that carry a chunk (one in ~11 here, each
  // ~6× a decode step) gave 578 ms (−31%); the time share gives ≈ 795 ms (808 before the
  // prefill-attention ramp).
  PerfRequest r = nim_70b_request(50);
  const PerfResult res = estimate(r, cat());
  CHECK(res.prefill.ttft_ms == Approx(834.5).epsilon(0.12));
  CHECK(res.prefill.ttft_ms > res.prefill.ttft_alone_ms + 190.0 + 0.3 * res.prefill.ttft_alone_ms);
}

TEST_CASE("a prefill step packs several prompts up to the token budget", "[perf][packing]") {
  // chunk_step_tokens by hand (budget 8192 tokens):
  // - 1,000 decoders leave room 7,192; 100 prompt tokens due per step on average, prompts of
  //   1,000 → one whole prompt per chunk step (a share 100/1000 of the steps carry it): 1,000;
  CHECK(chunk_step_tokens(8192, 1000, 1000, 100) == Approx(1000));
  // - 3,000 decoders at 1000/1000 need 3,000 prompt tokens per step: three prompts packed into
  //   every step (the old model took one, 1,000, and so capped the batch at O·S/I = 1,000);
  CHECK(chunk_step_tokens(8192, 3000, 1000, 3000) == Approx(3000));
  // - demand above the room (5,000 decoders, 5,000 due, room 3,192): capped at the room;
  CHECK(chunk_step_tokens(8192, 5000, 1000, 5000) == Approx(3192));
  // - a prompt longer than the room: one chunk of the room; a full budget: at least one token.
  CHECK(chunk_step_tokens(8192, 0, 20000, 10) == Approx(8192));
  CHECK(chunk_step_tokens(8192, 9000, 1000, 10) == Approx(1));
  // Property: never above the room, never below one token, rising with the demand.
  double last = 0;
  for (double d : {0.0, 10.0, 500.0, 1000.0, 2000.0, 6000.0, 9000.0}) {
    const double t = chunk_step_tokens(8192, 2000, 1000, d);
    CHECK(t <= 6192.0 + 1e-9);
    CHECK(t >= 1.0);
    CHECK(t >= last);
    last = t;
  }
}

TEST_CASE("short prompts: the decoding batch is held by KV memory, not one prompt per step",
          "[perf][packing]") {
  // 8×H200 Llama 4 Maverick FP8 (KV fp8) under TensorRT-LLM, 1000 in / 1000 out, 4,096
  // requests queued up front (trtllm-bench throughput). Budget S = 8192 tokens a step.
  // Keeping B decoders fed needs B·I/O = B prompt tokens per step; with one prompt per step at
  // most (the old model) f = B/1000 < 1 capped B at 1,000 however much KV room was free. Packed,
  // the limit is B < S − B → B < 4,096, so the KV memory (a few thousand requests of 2,000
  // tokens beside ~400 GB of weights) is what holds the batch.
  PerfRequest r = request("llama-4-maverick", "h200", 8, "fp8", "trtllm", "fp8");
  r.input_tokens = 1000;
  r.output_tokens = 1000;
  r.concurrency = 4096;
  r.arrivals = Arrivals::saturated;
  const PerfResult res = estimate(r, cat());
  // KV memory holds 3,469 such requests (the estimate's note, catalogs of November 2026); the
  // packed model decodes ~3,460 of them, the old one at most 1,000.
  CHECK(res.decode.batch > 0.9 * 3469.0);
  CHECK(res.decode.batch <= 3469.0);
  // Every step carries prefill (share ≈ 1), and decoders never exceed what KV memory holds:
  // resident = floor(KV free / per-request share), reported in the notes when below 4,096.
  CHECK(res.decode.prefill_step_share > 0.9);
  CHECK(std::isfinite(res.prefill.ttft_ms));
}

TEST_CASE("saturated runs: the queue is outside the slots", "[perf][ttft]") {
  // trtllm-bench throughput queues every request up front: a request waits before it takes a
  // slot, so only its prefill service keeps a slot from decoding. Counting its queueing in
  // Little's law (B + X·TTFT = C) would starve the decoders of a full engine.
  PerfRequest r = nim_70b_request(50);
  const PerfResult steady = estimate(r, cat());
  r.arrivals = Arrivals::saturated;
  const PerfResult sat = estimate(r, cat());
  CHECK(sat.decode.batch > steady.decode.batch);
  CHECK(sat.decode.output_tokens_per_s >= steady.decode.output_tokens_per_s);
  // Never more decoders than slots.
  CHECK(sat.decode.batch <= 50.0);
}

TEST_CASE("llama.cpp on Apple reads its own bandwidth efficiency", "[perf][efficiency]") {
  // data/engines.json llama.cpp `unified.apple.bw` 0.94 (fitted on the Apple fit rows), other
  // unified devices keep `unified.bw` 0.80. Single stream, 7B-class Q4_0 on an M2 (100 GB/s):
  // the decode time is ~bytes / (100 × 0.85 × 0.94) so the Apple device is 0.94/0.80 = 1.175×
  // faster than with the kind's factor (less the fixed per-layer costs).
  const Efficiencies apple =
      resolve_efficiencies(cat().device("apple-m2"), cat().engine("llama.cpp"));
  const Efficiencies strix =
      resolve_efficiencies(cat().device("strix-halo"), cat().engine("llama.cpp"));
  CHECK(apple.eng_bw.value == Approx(0.94));
  CHECK(apple.eng_bw.source.find("unified.apple.bw") != std::string::npos);
  CHECK(strix.eng_bw.value == Approx(0.80));
}

TEST_CASE("prefill attention efficiency rises with the causal work of a chunk", "[perf][prefill]") {
  // prefill_attention_ramp = L_eff² / (L_eff² + L½²), L_eff² = 2·P·max(m, P/2), by hand:
  //   one 1,024-token prompt (P = 1024, m = 512): L_eff² = 1024² → 0.5 at L½ = 1,024;
  //   one 512-token prompt: 512² / (512² + 1024²) = 262,144 / 1,310,720 = 0.2;
  //   a 1,024-token chunk at mean position 4,096: 8,388,608 / (8,388,608 + 1,048,576) = 0.888889.
  CHECK(prefill_attention_ramp(1024, 512, 1024) == Approx(0.5));
  CHECK(prefill_attention_ramp(512, 256, 1024) == Approx(0.2));
  CHECK(prefill_attention_ramp(1024, 4096, 1024) == Approx(0.888889).epsilon(1e-5));
  CHECK(prefill_attention_ramp(1024, 512, 0) == 1.0);  // no ramp configured
  CHECK(prefill_attention_ramp(0, 0, 1024) == 1.0);
  double last = 0;  // property: rises with length, stays below 1
  for (double l : {256.0, 512.0, 1024.0, 4096.0, 32768.0}) {
    const double r = prefill_attention_ramp(l, l / 2, 1024);
    CHECK(r > last);
    CHECK(r < 1.0);
    last = r;
  }
  // The H200 measurement (FA2, docs/performance.md "Device layer against measured H200 curves")
  // is 530–620 TFLOP/s from 4,096 tokens on against the 0.75 × 989.5 × 0.65 = 482 TFLOP/s that
  // TensorRT-LLM's `attention` factor alone gives: with `gpu.nvidia.prefill_attention` 0.81 and
  // L½ = 1,024 a 32K-token prompt of Llama 3.3 70B on one H200 prefills faster, and a 512-token
  // one (where attention is 2–3× slower than its plateau) slower, than without the two keys.
  PerfRequest r = request("llama-3.3-70b", "h200", 1, "fp8", "trtllm");
  r.output_tokens = 1;
  Engine plain = cat().engine("trtllm");
  plain.efficiency.erase("gpu.nvidia.prefill_attention");
  plain.efficiency.erase("gpu.nvidia.prefill_attention_half_tokens");
  PerfRequest q = r;
  q.engine = &plain;
  r.input_tokens = q.input_tokens = 32768;
  CHECK(estimate(r, cat()).prefill.tokens_per_s > 1.05 * estimate(q, cat()).prefill.tokens_per_s);
  r.input_tokens = q.input_tokens = 512;
  CHECK(estimate(r, cat()).prefill.tokens_per_s < estimate(q, cat()).prefill.tokens_per_s);
}

TEST_CASE("host time per sequence paces the step only when it outlasts the GPU work",
          "[perf][host]") {
  // §Fixed costs, host time per sequence. An engine whose per-request loops cost
  // `host_us_per_seq` on the CPU overlaps them with the GPU (TensorRT-LLM's overlap scheduler):
  // the step lasts max(GPU step, host_us_per_seq × sequences per data-parallel replica).
  // 34 µs per request is the order TensorRT-LLM PR #16564 measured on GB200 (an 8.8 ms per-step
  // bubble over 256 requests of the sampler's per-request loop).
  Engine e = cat().engine("trtllm");
  e.efficiency.erase("gpu.host_us_per_seq");
  Engine with_host = e;
  with_host.efficiency["gpu.host_us_per_seq"] = 34.0;
  PerfRequest base = request("qwen3-30b-a3b", "b200", 1, "nvfp4", "trtllm", "fp8");
  base.engine = &e;
  PerfRequest host = base;
  host.engine = &with_host;

  // Qwen3-30B-A3B NVFP4 on one B200, 1,451 sequences at 1,152 tokens of context (the 128/2048
  // saturated row's batch): the GPU step is ≈ 34 ms (16 ms of KV and weight reads; 48 MoE
  // layers × (30 + 130) µs of fixed costs), the host loop 1,451 × 34 µs = 49.33 ms, so the host
  // sets the step.
  const StepBreakdown gpu = decode_step(base, cat(), 1451, 1152);
  const StepBreakdown cpu = decode_step(host, cat(), 1451, 1152);
  CHECK(gpu.time_s < 0.040);
  CHECK(cpu.time_s == Approx(1451 * 34e-6).epsilon(1e-9));
  CHECK(cpu.bound == Bound::overhead);
  CHECK(cpu.memory_s == Approx(gpu.memory_s));  // the GPU terms themselves do not change

  // One sequence (34 µs) or a large model whose step outlasts its loop (Llama 3.3 70B NVFP4 at
  // 371 sequences: 12.6 ms of host work against a ≈ 29 ms GPU step): unchanged.
  CHECK(decode_step(host, cat(), 1, 1152).time_s ==
        Approx(decode_step(base, cat(), 1, 1152).time_s));
  const auto [big, big_host] = step_under(
      request("llama-3.3-70b", "b200", 1, "nvfp4", "trtllm", "fp8"), e, with_host, 371, 1152);
  CHECK(big_host == Approx(big));

  // Each data-parallel replica runs its own scheduler: two replicas (tp 1 on 2 GPUs) of 1,451
  // sequences each pay the same 49.33 ms as one replica of 1,451.
  PerfRequest dp2 = host;
  dp2.gpus = 2;
  dp2.layout.tp = 1;
  CHECK(decode_step(dp2, cat(), 2902, 1152).time_s == Approx(1451 * 34e-6).epsilon(1e-9));

  // Property: the host term never makes a step faster, and throughput never exceeds one
  // token per sequence per host loop (1 / 34 µs ≈ 29,400 tok/s for one replica).
  for (double b : {1.0, 64.0, 512.0, 1024.0, 4096.0}) {
    INFO("batch " << b);
    CHECK(decode_step(host, cat(), b, 1152).time_s >= decode_step(base, cat(), b, 1152).time_s);
    CHECK(b / decode_step(host, cat(), b, 1152).time_s <= 1.0 / 34e-6 + 1e-6);
  }
}

TEST_CASE("a measured GEMM plateau replaces datasheet × derating for its format",
          "[perf][efficiency]") {
  // §Efficiencies, measured GEMM plateaus: engine key gemm_tflops.<device>.<format> is the
  // engine's own GEMM plateau measured on the device (TFLOP/s); it stands for the product
  // datasheet × device derating × engine compute (0.75 × 0.85 for TensorRT-LLM on GPUs).
  Engine plain = cat().engine("trtllm");
  for (auto it = plain.efficiency.begin(); it != plain.efficiency.end();)
    it = it->first.rfind("gemm_tflops.", 0) == 0 ? plain.efficiency.erase(it) : std::next(it);
  // Llama 3.3 70B, every component NVFP4, on one B200 (datasheet FP4 9,000 TFLOP/s dense).
  PerfRequest base = request("llama-3.3-70b", "b200", 1, "nvfp4", "trtllm", "fp8");
  base.engine = &plain;

  // Identity: a "measurement" equal to 9,000 × 0.75 × 0.85 = 5,737.5 changes nothing.
  Engine same = plain;
  same.efficiency["gemm_tflops.b200.fp4"] = 5737.5;
  PerfRequest r_same = base;
  r_same.engine = &same;
  for (double b : {1.0, 64.0, 1024.0}) {
    INFO("batch " << b);
    CHECK(decode_step(r_same, cat(), b, 1024).time_s ==
          Approx(decode_step(base, cat(), b, 1024).time_s).epsilon(1e-12));
  }

  // Half the plateau doubles the GEMM compute. At 4,096 sequences of one token of context the
  // compute term is the linear layers' (attention ≈ 0): 4,096 × 2 × 70.6e9 FLOP ≈ 578 TFLOP at
  // 5,737.5 TFLOP/s ≈ 0.1 s / ramp 4096/(4096+256) — so it doubles.
  Engine half = plain;
  half.efficiency["gemm_tflops.b200.fp4"] = 5737.5 / 2;
  PerfRequest r_half = base;
  r_half.engine = &half;
  const StepBreakdown s0 = decode_step(base, cat(), 4096, 1);
  const StepBreakdown s1 = decode_step(r_half, cat(), 4096, 1);
  CHECK(s1.compute_s == Approx(2.0 * s0.compute_s).epsilon(0.01));
  CHECK(s1.memory_s == Approx(s0.memory_s));

  // Only the named device and format: an H200 (no FP4: its NVFP4 weights run at BF16) and the
  // B200's FP8 path keep their figures.
  const auto [h200, h200_half] = step_under(
      request("llama-3.3-70b", "h200", 1, "nvfp4", "trtllm", "fp8"), plain, half, 512, 1024);
  CHECK(h200_half == Approx(h200));
  const auto [fp8, fp8_half] = step_under(
      request("llama-3.3-70b", "b200", 1, "fp8", "trtllm", "fp8"), plain, half, 512, 1024);
  CHECK(fp8_half == Approx(fp8));
}

TEST_CASE("bundled TensorRT-LLM plateaus: B200 FP4 runs at the measured 3,519 TFLOP/s",
          "[perf][efficiency]") {
  // The bundled trtllm entry carries NVIDIA's measured TensorRT-LLM GEMM plateau for B200 NVFP4
  // (aiconfigurator 0.12.0, trtllm 1.3.0rc20 tables: median over GEMMs with N, K ≥ 4096 and
  // M ≥ 2048 = 3,519 TFLOP/s), 0.61 of datasheet × derating (9,000 × 0.6375 = 5,737.5). A
  // compute-bound step of the 70B NVFP4 model is therefore 5,737.5 / 3,519 = 1.63× slower than
  // with the plateau removed.
  Engine plain = cat().engine("trtllm");
  plain.efficiency.erase("gemm_tflops.b200.fp4");
  plain.efficiency.erase("gemm_tflops.b200.bf16");
  PerfRequest bundled = request("llama-3.3-70b", "b200", 1, "nvfp4", "trtllm", "fp8");
  PerfRequest without = bundled;
  without.engine = &plain;
  CHECK(decode_step(bundled, cat(), 4096, 1).compute_s ==
        Approx(5737.5 / 3519 * decode_step(without, cat(), 4096, 1).compute_s).epsilon(0.01));
  // The estimate says which figure it used; without the key it says nothing about it.
  bundled.concurrency = without.concurrency = 64;
  auto names_plateau = [](const PerfResult& r) {
    for (const auto& n : r.notes)
      if (n.find("gemm_tflops.b200.fp4") != std::string::npos) return true;
    return false;
  };
  CHECK(names_plateau(estimate(bundled, cat())));
  CHECK_FALSE(names_plateau(estimate(without, cat())));
}

TEST_CASE("routed pairs: TensorRT-LLM's measured per-pair cost on B200 NVFP4",
          "[perf][efficiency]") {
  // engines.json trtllm `moe_pair_ns.b200.fp4` = 10.9 ns per routed (token, expert) pair per MoE
  // layer (median residual of aiconfigurator's measured MoE tables over this model's own MoE
  // terms, docs/performance.md "routed pairs"). Qwen3-30B-A3B on one B200 (ep 1), 1,024
  // sequences decoding: 48 MoE layers × 1,024 tokens × top-8 / 1 × 10.9 ns = 4.286 ms added to
  // the step, and counted as compute.
  Engine without = cat().engine("trtllm");
  without.efficiency.erase("moe_pair_ns.b200.fp4");
  const auto [base, with_pairs] =
      step_under(request("qwen3-30b-a3b", "b200", 1, "nvfp4", "trtllm", "fp8"), without,
                 cat().engine("trtllm"), 1024, 1500);
  CHECK(with_pairs - base == Approx(48 * 1024 * 8 * 10.9e-9).epsilon(1e-6));
  // Only the named device and format: the same model's FP8 experts on B200 keep their step.
  const auto [fp8, fp8_pairs] =
      step_under(request("qwen3-30b-a3b", "b200", 1, "fp8", "trtllm", "fp8"), without,
                 cat().engine("trtllm"), 1024, 1500);
  CHECK(fp8_pairs == Approx(fp8).epsilon(1e-12));
  // Spread over expert-parallel ranks: Qwen3-235B on 8 B200 (ep 8) pays 1/8 of the pairs per GPU.
  const auto [b8, b8_pairs] =
      step_under(request("qwen3-235b-a22b", "b200", 8, "nvfp4", "trtllm", "fp8"), without,
                 cat().engine("trtllm"), 1024, 1500);
  CHECK(b8_pairs - b8 == Approx(94 * 1024 * 8 / 8.0 * 10.9e-9).epsilon(1e-6));
}

TEST_CASE("fit sizes one pass's activations for the engine's own prefill chunk", "[perf][sizing]") {
  // engines.json: llama.cpp's n_ubatch is 512 tokens a pass, vLLM's token budget 8,192.
  const Device& card = cat().device("rtx-4090");
  CHECK(engine_prefill_chunk_tokens(cat().engine("llama.cpp"), card) == 512);
  CHECK(engine_prefill_chunk_tokens(cat().engine("vllm"), cat().device("h100-sxm")) == 8192);
  // Llama 3.3 70B Q4_K_M on 2 x RTX 4090 under llama.cpp: layer split, so tp = 1 on each card.
  // Hand calculation (docs/memory.md), hidden 8,192, dense FFN 28,672, vocab 128,256, C = 512:
  //   residual 512 x 8,192 x 2 B x 6   = 50,331,648
  //   FFN      512 x 28,672 x 2 B x 2  = 58,720,256
  //   logits   min(1, 512) x 128,256 x 4 B = 513,024
  //   total                             = 109,564,928 bytes per card (1.75 GB at C = 8,192).
  const PerfRequest r = test::with_load(
      test::perf_request("llama-3.3-70b", "rtx-4090", 2, "q4_k_m", "llama.cpp", "fp16"), 4000, 1000,
      1);
  const FitRequest f = fit_request_for(r, cat());
  CHECK(f.prefill_chunk_tokens == 512);
  const FitResult fr = fit(f, cat());
  REQUIRE(fr.per_gpu.size() == 2);
  for (const GpuMemory& g : fr.per_gpu) CHECK(g.activation_bytes == Approx(109564928.0));
  // The same build under an 8,192-token budget holds less KV: the chunk is what moved.
  FitRequest big = f;
  big.prefill_chunk_tokens = 8192;
  CHECK(fit(big, cat()).max_context_tokens < fr.max_context_tokens);
}

TEST_CASE("perf's KV limit on resident requests is fit's", "[perf][property]") {
  // perf queues the requests beyond what KV memory holds; the sweep, plan and `moeplan fit` take
  // that limit from fit() at input + output tokens. Both must size the same budget (weights,
  // activations for fit's prefill chunk, the engine's memory share): at fit's limit nothing
  // queues, one request more and perf says the memory holds exactly fit's limit.
  struct Build {
    const char *model, *gpu;
    int gpus;
    const char *weights, *engine, *kv;
    long long in, out;
    int pp = 1;
  };
  // The pipeline builds have stages of unequal weights and KV (docs/memory.md § Pipeline
  // stages): gpt-oss-120b's 36 layers at pp 4 with sliding-window layers, DeepSeek-V3's 61 at
  // pp 4 ([15, 15, 16, 15]).
  for (const Build& b :
       {Build{"qwen3-30b-a3b", "rtx-5090", 1, "q4_k_m", "llama.cpp", "fp16", 4000, 1000},
        Build{"llama-3.3-70b", "h100-sxm", 2, "fp8", "trtllm", "fp8", 5000, 500},
        Build{"glm-5.2", "h200", 8, "fp8", "vllm", "fp8", 8192, 1024},
        Build{"gpt-oss-120b", "h100-sxm", 4, "", "vllm", "fp8", 8192, 1024, 4},
        Build{"deepseek-v3", "h200", 8, "", "vllm", "fp8", 8192, 1024, 4}}) {
    INFO(b.model << " on " << b.gpus << " x " << b.gpu << " (" << b.engine << ") pp " << b.pp);
    PerfRequest base = test::with_load(
        test::perf_request(b.model, b.gpu, b.gpus, b.weights, b.engine, b.kv), b.in, b.out, 1);
    base.layout.pp = b.pp;
    const long long limit = sweep(base, cat(), Sla{}).limit.kv_limit;
    REQUIRE(limit >= 2);
    auto queue_note = [&](long long c) {
      PerfRequest r = base;
      r.concurrency = c;
      for (const auto& n : estimate(r, cat()).notes)
        if (n.rfind("KV memory holds", 0) == 0) return n;
      return std::string();
    };
    CHECK(queue_note(limit).empty());
    CHECK_THAT(queue_note(limit + 1),
               Catch::Matchers::StartsWith(fmt::format("KV memory holds {} requests", limit)));
  }
}

TEST_CASE("sweep stops at the engine's max_num_seqs when KV memory holds more", "[perf]") {
  // qwen3-30b-a3b FP8 on one H100 at 512 + 128 tokens holds well over 256 sequences of KV;
  // vLLM admits 256, llama.cpp 8 (engines.json max_num_seqs): the sweep ends there.
  for (const auto& [engine, cap] : {std::pair<std::string, long long>{"vllm", 256},
                                    std::pair<std::string, long long>{"llama.cpp", 8}}) {
    PerfRequest r =
        test::with_load(request("qwen3-30b-a3b", "h100-sxm", 1, "fp8", engine, "fp8"), 512, 128, 1);
    const SweepResult s = sweep(r, cat(), Sla{});
    INFO(engine);
    CHECK(s.limit.max_num_seqs == cap);
    CHECK(s.limit.kv_limit > cap);
    CHECK(s.limit.engine_binds());
    CHECK(s.max_concurrency == cap);
    CHECK(s.points.back().concurrency == cap);
    CHECK(engine_group_slots(r, cat()) == cap);  // deployments take the same limit
  }
}

TEST_CASE("perf runs at most max_num_seqs sequences; the rest queue", "[perf]") {
  // qwen3-30b-a3b FP8 on one H100 at 512 + 128 tokens: the KV memory holds thousands of such
  // requests, vLLM's scheduler admits 256 (engines.json max_num_seqs). At 512 in flight the
  // server decodes 256 and queues 256, so its throughput is the 256-sequence one and each
  // request waits about 256 / (requests per second) more for its first token (Little's law).
  // Before 2026-11-27 perf decoded all 512 at once: more output than the engine can give.
  const PerfRequest base =
      test::with_load(request("qwen3-30b-a3b", "h100-sxm", 1, "fp8", "vllm", "fp8"), 512, 128, 256);
  PerfRequest over = base;
  over.concurrency = 512;
  const PerfResult at = estimate(base, cat());
  const PerfResult beyond = estimate(over, cat());
  CHECK(beyond.decode.output_tokens_per_s == Approx(at.decode.output_tokens_per_s).epsilon(1e-9));
  const double requests_per_s = at.decode.output_tokens_per_s / 128.0;
  CHECK(beyond.prefill.ttft_ms - at.prefill.ttft_ms ==
        Approx(256.0 / requests_per_s * 1e3).epsilon(0.02));
  bool noted = false;
  for (const auto& n : beyond.notes)
    noted =
        noted || n.find("runs at most 256 sequences at once (max_num_seqs") != std::string::npos;
  CHECK(noted);
  for (const auto& n : at.notes) CHECK(n.find("max_num_seqs") == std::string::npos);
}

TEST_CASE("Property: a decode step reads no more KV than the cache stores", "[perf][property]") {
  // One sequence on one GPU at a long context: the step's KV read (perf) is at most the KV that
  // fit stores for that sequence (kv_bytes_for_context), sliding windows, compressed layers
  // (DeepSeek V4), Gemma 4's global layers (their own KV heads and head split) and DSA indexer
  // keys included. Until 2026-11-27 compressed layers were read at full length.
  const Catalog& c = cat();
  std::size_t checked = 0;
  for (const Model& m : c.models) {
    for (long long ctx : {4096LL, 65536LL, 200000LL}) {
      if (ctx > m.max_context_tokens) continue;
      PerfRequest r = test::perf_request(m.id, "b200", 8, "", "vllm", "bf16");
      r.layout.tp = 8;
      StepBreakdown s;
      try {
        s = decode_step(r, c, 1, static_cast<double>(ctx));
      } catch (const Error&) {
        continue;  // a layout this model cannot take
      }
      const ResolvedLayout l = resolve_layout(m, 8, r.layout);
      const double stored = kv_bytes_per_gpu_for_context(m, 2.0, ctx, l);
      INFO(m.id << " at " << ctx);
      CHECK(s.kv_bytes_per_gpu <= stored * (1 + 1e-9));
      ++checked;
    }
  }
  CHECK(checked > 40);
}

TEST_CASE("requests waiting in the queue do not shrink the room of the resident ones",
          "[perf][property]") {
  // Llama 3.1 8B BF16 on one RTX 4090 under vLLM, 1,024 in / 256 out: fit holds 74 sequences of
  // 1,280 tokens. The activations (each sampled sequence's logits) were sized for every request
  // in flight, so 128 in flight left room for 73 resident and TPOT fell from 69.93 to 69.23 ms as
  // concurrency rose (audit 2026-11-27). Past the KV limit the resident batch, and with it TPOT
  // and throughput, stay where they are.
  PerfRequest r = request("llama-3.1-8b", "rtx-4090", 1, "bf16");
  r.input_tokens = 1024;
  r.output_tokens = 256;
  r.concurrency = 74;
  const PerfResult at_limit = estimate(r, cat());
  for (long long c : {75LL, 96LL, 128LL, 256LL}) {
    r.concurrency = c;
    const PerfResult e = estimate(r, cat());
    INFO("concurrency " << c);
    CHECK(e.decode.tpot_ms == Approx(at_limit.decode.tpot_ms).epsilon(1e-6));
    CHECK(e.decode.output_tokens_per_s ==
          Approx(at_limit.decode.output_tokens_per_s).epsilon(1e-6));
    CHECK(e.prefill.ttft_ms > at_limit.prefill.ttft_ms);  // the queue's wait
  }
}

TEST_CASE("GEMM ramp: a decode step's throughput never falls as the batch grows (audit V2)",
          "[perf][property]") {
  // TensorRT-LLM's M½ = 256 on an H200 in FP8 lies above the roofline's ridge (~146 rows), and
  // vLLM's 112 on an MI300X above its own: uncapped, the ramp's padding made a 9-row dense GEMM
  // take about twice its weights' read time where 8 rows (matrix-vector kernels) took the read
  // time, and Llama 3.3 70B's TPOT rose 47% from 8 to 9 sequences on one H200 (output fell
  // 321 → 244 tok/s). The padding is now capped at the read time.
  struct Case {
    const char *gpu, *weights, *engine;
  };
  for (const Case& c : {Case{"h200", "fp8", "trtllm"}, Case{"b200", "fp8", "trtllm"},
                        Case{"mi300x", "bf16", "vllm"}, Case{"h200", "fp8", "vllm"}}) {
    CAPTURE(c.gpu, c.weights, c.engine);
    const PerfRequest r = request("llama-3.3-70b", c.gpu, 1, c.weights, c.engine);
    double last = 0;
    for (int b = 1; b <= 256; ++b) {
      CAPTURE(b);
      const double per_s = b / decode_step(r, cat(), b, 1024).time_s;
      CHECK(per_s >= last * (1 - 1e-9));
      last = per_s;
    }
  }
  // The cliff itself: one more sequence costs about one more row, not another read.
  const PerfRequest h200 = request("llama-3.3-70b", "h200", 1, "fp8", "trtllm");
  const double t8 = decode_step(h200, cat(), 8, 1024).time_s;
  const double t9 = decode_step(h200, cat(), 9, 1024).time_s;
  CHECK(t9 / t8 < 1.10);  // 1.47 before the cap
}

TEST_CASE("a decoder sees the prompt chunks by their share of time, tokens conserved",
          "[perf][steady]") {
  // By hand: B = 2.8 of C = 3 requests decode 1,000 steps each; a prompt keeps the prefill busy
  // 10 s; chunk steps take 1 s (a = 1/s), decode-only steps 0.1 s (b = 10/s).
  // X = (B·a + (b − a)·C) / (D + (b − a)·C·S) = (2.8 + 27) / (1,000 + 270) = 0.023465 /s, below
  // B·b/D = 0.028; ρ = X·S = 0.23465; the decoders' time in chunk steps
  // s = 1 − C·(1 − ρ)/B = 1 − 3 × 0.76535 / 2.8 = 0.17998; steps per second
  // 0.17998 × 1 + 0.82002 × 10 = 8.3802, so a mean step of 0.11933 s and a step share
  // 0.17998 / 8.3802 = 0.021477.
  const DecodeView v = prefill_seen_by_decoders(2.8, 3, 1000, 10, 0.1, 1);
  CHECK(v.time_share == Approx(0.17998).epsilon(1e-4));
  CHECK(v.step_share == Approx(0.021477).epsilon(1e-4));
  CHECK(v.step_s == Approx(0.11933).epsilon(1e-4));
  // Conservation: the B decoders emit B tokens per mean step, X·D per second.
  CHECK(2.8 / v.step_s == Approx(0.023465 * 1000).epsilon(1e-4));
  // One request alone (B = 1 − ρ at C = 1) never decodes in a chunk step: its own are the only
  // ones. Nor do fewer decoders than the idle prefill leaves (clamped at 0): B = 2 of 3 above
  // gives X = B·b/D = 0.02 and ρ = 0.2, where s would be 1 − 3 × 0.8 / 2 < 0.
  CHECK(prefill_seen_by_decoders(0.8, 1, 1000, 0.2 * 1000 / 8, 0.1, 1).time_share == 0.0);
  const DecodeView low = prefill_seen_by_decoders(2, 3, 1000, 10, 0.1, 1);
  CHECK(low.time_share == 0.0);
  CHECK(low.step_s == Approx(0.1));
  // No prompt work (service 0), or nobody decoding: nothing seen.
  CHECK(prefill_seen_by_decoders(2.8, 3, 1000, 0, 0.1, 1).time_share == 0.0);
  CHECK(prefill_seen_by_decoders(0, 3, 1000, 10, 0.1, 1).step_s == Approx(0.1));
  // Property: the more of the time the prefill takes, the more of it the decoders see.
  double last = -1;
  for (double service : {0.0, 2.0, 5.0, 10.0, 20.0, 40.0}) {
    const DecodeView w = prefill_seen_by_decoders(2.8, 3, 1000, service, 0.1, 1);
    CHECK(w.time_share >= last);
    CHECK(w.time_share <= 1.0);
    last = w.time_share;
  }
}

TEST_CASE("a steady state emits no more tokens than its steps can (audit V5)", "[perf][property]") {
  // glm-5.2 Q4_K_M on one EPYC 9554 socket under llama.cpp, 8,192 in / 1,024 out: a 512-token
  // chunk step takes ~13 s, a decode step ~0.1–0.4 s. Charging the decoders the chunk steps'
  // share of *steps* (1.4% at concurrency 3) instead of their share of *time* had prefill busy
  // 89% of the time while the output (4.3 tok/s) needed 2.5× the decode steps that fit in the
  // other 11%, and the output fell 7% from concurrency 3 to 8. The bound checked here: in the
  // prefill's share of time ρ at most C − 1 decoders ride along in chunk steps no shorter than
  // the idle ones, and in the rest at most C decode in steps of C sequences.
  struct Case {
    const char *model, *gpu, *weights;
    int gpus;
    long long in;
  };
  for (const Case& c : {Case{"glm-5.2", "epyc-9554", "q4_k_m", 1, 8192},
                        Case{"qwen3-30b-a3b", "strix-halo", "q4_k_m", 1, 32768},
                        Case{"glm-5.2", "epyc-9554", "q4_k_m", 1, 32768}}) {
    PerfRequest r = request(c.model, c.gpu, c.gpus, c.weights, "llama.cpp");
    r.input_tokens = c.in;
    r.output_tokens = 1024;
    double last = 0;
    for (int conc = 1; conc <= 8; ++conc) {
      CAPTURE(c.model, c.gpu, c.in, conc);
      r.concurrency = conc;
      const PerfResult res = estimate(r, cat());
      const double out_tok_s = res.decode.output_tokens_per_s;
      const double x = out_tok_s / 1024.0;
      const double chunk_s = res.prefill.ttft_alone_ms * 1e-3 / res.prefill.chunks;
      const double rho = std::min(1.0, x * res.prefill.ttft_alone_ms * 1e-3);
      const double dec_s = decode_step(r, cat(), conc, static_cast<double>(c.in) + 512.0).time_s;
      const double bound = rho * (conc - 1) / chunk_s + (1 - rho) * conc / dec_s;
      CHECK(out_tok_s <= bound * 1.01);
      // Property: one more request in flight never lowers the output (2% for the bisection and
      // the chunk's shrinking room).
      CHECK(out_tok_s >= last * 0.98);
      last = std::max(last, out_tok_s);
    }
  }
  // Two sockets as two pipeline stages, 32K prompts: the prefill is busy nearly all the time,
  // and the open M/D/1 queue then kept more requests waiting than were in flight, so output
  // fell 4.9% from concurrency 4 to 8. The closed loop's queue (closed_loop_ttft_s) cannot.
  PerfRequest r = request("glm-5.2", "epyc-9554", 2, "q4_k_m", "llama.cpp");
  r.input_tokens = 32768;
  r.output_tokens = 1024;
  double last = 0;
  for (int conc = 1; conc <= 8; ++conc) {
    CAPTURE(conc);
    r.concurrency = conc;
    const double out_tok_s = estimate(r, cat()).decode.output_tokens_per_s;
    CHECK(out_tok_s >= last * 0.98);
    last = std::max(last, out_tok_s);
  }
}

TEST_CASE("TTFT never falls as more requests arrive, across packed steps",
          "[perf][ttft][property]") {
  // Llama 3.3 70B FP8 (KV fp8) on 2×H100 under TensorRT-LLM, 1000 in / 300 out, steady load.
  // Unpacked, a queue of short prompts was served one a step; packed (more than one prompt due per
  // step), there was no queue at all. So TTFT fell as the load crossed over: 913 ms at 256 in
  // flight, 357 ms at 378 (the KV limit). A prompt now holds the prefill for a k-th of a step that
  // carries the k prompts its room holds (prompt_hold_s), packed or not.
  PerfRequest r = request("llama-3.3-70b", "h100-sxm", 2, "fp8", "trtllm", "fp8");
  r.input_tokens = 1000;
  r.output_tokens = 300;
  double last = 0;
  for (long long c = 16; c <= 378; c += 18) {
    CAPTURE(c);
    r.concurrency = c;
    const PerfResult res = estimate(r, cat());
    CHECK(res.prefill.ttft_ms >= last * (1 - 1e-6));
    CHECK(res.prefill.ttft_ms >= res.prefill.ttft_alone_ms);
    last = res.prefill.ttft_ms;
  }
}
