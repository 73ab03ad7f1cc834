// Deployments of several engine groups (deployment.hpp, docs/performance.md §Deployments):
// the text form, replicas against the single-group estimate, and the disaggregated closed loop
// against its own equations, hand calculations and a published row.
#include <fmt/format.h>
#include <catch2/catch.hpp>

#include <cmath>

#include "moeplan/deployment.hpp"
#include "moeplan/errors.hpp"
#include "moeplan/layout.hpp"
#include "moeplan/validate_perf.hpp"
#include "test_support.hpp"

using namespace moeplan;
using Catch::Matchers::Contains;

namespace {

const Catalog& cat() {
  return test::bundled_catalog();
}

PerfRequest request(const std::string& model, const std::string& gpu, int gpus,
                    const std::string& weights, const std::string& engine, long long in,
                    long long out, long long conc) {
  return test::with_load(test::perf_request(model, gpu, gpus, weights, engine, "fp8"), in, out,
                         conc);
}

}  // namespace

TEST_CASE("deployment text: forms, labels and errors", "[perf][deployment]") {
  CHECK(parse_deployment("").kind == Deployment::Kind::single);
  CHECK(parse_deployment("single").kind == Deployment::Kind::single);
  const Deployment r = parse_deployment("dp:4");
  CHECK(r.kind == Deployment::Kind::replicas);
  CHECK(r.replicas == 4);
  CHECK(deployment_gpus(r, 32) == 32);
  const Deployment pd = parse_deployment("pd:5x8+1x16a");
  CHECK(pd.kind == Deployment::Kind::disaggregated);
  CHECK(pd.prefill_workers == 5);
  CHECK(pd.prefill_gpus == 8);
  CHECK(pd.decode_workers == 1);
  CHECK(pd.decode_gpus == 16);
  CHECK(pd.decode_dp_attention);
  CHECK(deployment_gpus(pd, 1) == 56);  // 5·8 + 16
  for (const char* s : {"single", "dp:4", "pd:1x8+2x8", "pd:5x8+1x16a"})
    CHECK(deployment_label(parse_deployment(s)) == s);
  CHECK_THROWS_WITH(parse_deployment("pd:1x8"), Contains("deployment 'pd:1x8': not understood"));
  CHECK_THROWS_WITH(parse_deployment("dp:0"), Contains("replicas must be at least 1"));
  CHECK_THROWS_WITH(parse_deployment("pd:0x8+1x8"), Contains("at least 1"));
  CHECK_THROWS_WITH(parse_deployment("tp:8"), Contains("expected 'single', 'dp:R'"));
}

TEST_CASE("wave of prompts at one prefill worker: hand calculation", "[perf][deployment]") {
  // 5 prompts, 2 per step of 1 s: first tokens at 1, 1, 2, 2, 3 s → mean 9/5 = 1.8 s.
  CHECK(wave_mean_s(5, 2, 1.0) == Approx(1.8).epsilon(1e-12));
  // One prompt per step: mean of 1..n steps = (n + 1)/2.
  CHECK(wave_mean_s(10, 1, 0.5) == Approx(0.5 * 5.5).epsilon(1e-12));
  CHECK(wave_mean_s(0, 4, 1.0) == 0);
}

TEST_CASE("replicas: R groups carry C/R requests each", "[perf][deployment]") {
  // Llama 3.3 70B fp8 on 8 H100 as 4 replicas of 2 at 40 requests = the 2-GPU group at 10,
  // four times over; latencies are the group's.
  PerfRequest whole = request("llama-3.3-70b", "h100-sxm", 8, "fp8", "vllm", 1000, 500, 40);
  const DeploymentResult d = estimate_deployment(whole, parse_deployment("dp:4"), cat());
  PerfRequest one = whole;
  one.gpus = 2;
  one.concurrency = 10;
  const PerfResult g = estimate(one, cat());
  CHECK(d.output_tokens_per_s == Approx(4 * g.decode.output_tokens_per_s).epsilon(1e-9));
  CHECK(d.tpot_ms == Approx(g.decode.tpot_ms).epsilon(1e-9));
  CHECK(d.ttft_ms == Approx(g.prefill.ttft_ms).epsilon(1e-9));
  // 42 requests: two replicas carry 11, two carry 10; throughput is the sum of both kinds.
  whole.concurrency = 42;
  const DeploymentResult u = estimate_deployment(whole, parse_deployment("dp:4"), cat());
  one.concurrency = 11;
  const PerfResult g11 = estimate(one, cat());
  CHECK(
      u.output_tokens_per_s ==
      Approx(2 * g.decode.output_tokens_per_s + 2 * g11.decode.output_tokens_per_s).epsilon(1e-9));
  // A single deployment is estimate() itself.
  PerfRequest s = one;
  const DeploymentResult single = estimate_deployment(s, Deployment{}, cat());
  CHECK(single.output_tokens_per_s == Approx(g11.decode.output_tokens_per_s).epsilon(1e-12));
  whole.gpus = 6;
  CHECK_THROWS_WITH(estimate_deployment(whole, parse_deployment("dp:4"), cat()),
                    Contains("6 GPUs do not divide into 4 replicas"));
}

TEST_CASE("disaggregated: closed loop, decode step and Little's law", "[perf][deployment]") {
  // DeepSeek-R1 fp8 on B200: one prefill worker of 8, two decode workers of 8, 1K/1K at 128.
  const Deployment dep = parse_deployment("pd:1x8+2x8");
  const PerfRequest req = request("deepseek-r1", "b200", 24, "fp8", "trtllm", 1024, 1024, 128);
  const DeploymentResult r = estimate_deployment(req, dep, cat());
  // TPOT is a pure decode step (no prefill chunks) at the solved batch per decode worker.
  PerfRequest dr = req;
  dr.gpus = 8;
  const double step_ms = decode_step(dr, cat(), r.batch_per_group, 1024 + 512).time_s * 1e3;
  CHECK(r.tpot_ms == Approx(step_ms).epsilon(1e-9));
  // Throughput: D·b sequences each emitting one token per step.
  CHECK(r.output_tokens_per_s == Approx(2 * r.batch_per_group / (r.tpot_ms * 1e-3)).epsilon(1e-6));
  // Little's law: decoding + waiting for the first token = the population (no slot queue here).
  const double x = r.output_tokens_per_s / 1024;
  const double before_first_s = (r.ttft_ms - r.prefill_worker.prefill.server_overhead_ms) * 1e-3;
  CHECK(r.queue_ms == 0);
  CHECK(2 * r.batch_per_group + x * before_first_s == Approx(128).epsilon(1e-3));
  // The prefill pool is lightly used at 1K prompts; TTFT at least one prompt alone + hand-off.
  CHECK(r.prefill_utilization > 0);
  CHECK(r.prefill_utilization < 0.5);
  CHECK(r.ttft_ms >= r.prefill_worker.prefill.ttft_alone_ms + r.kv_transfer_ms);
  CHECK(r.kv_transfer_ms > 0);
  // A disaggregated deployment needs prompts.
  PerfRequest none = req;
  none.input_tokens = 0;
  CHECK_THROWS_WITH(estimate_deployment(none, dep, cat()), Contains("needs prompts"));
}

TEST_CASE("disaggregated: a saturated prefill pool keeps Little's law", "[perf][deployment]") {
  // DeepSeek-R1 fp8 on H200 under SGLang, pd:1x8+2x8, 8K/1K: one prefill worker serves ~5.7
  // prompts/s, so from ~250 requests in flight the pool is the bottleneck. The open M/D/1 wait
  // used before 2026-11-28 broke Little's law there: at 1,024 in flight, 5.67 requests/s with a
  // 43 s decode and an 88 s TTFT, a 131 s cycle where 1,024 / 5.67 = 180 s. The closed loop's
  // queue (closed_loop_ttft_s) can hold no more requests than are in flight.
  const Deployment dep = parse_deployment("pd:1x8+2x8");
  double last_out = 0, last_ttft = 0;
  for (long long c : {64LL, 256LL, 512LL, 1024LL}) {
    CAPTURE(c);
    const PerfRequest req = request("deepseek-r1", "h200", 24, "fp8", "sglang", 8192, 1024, c);
    const DeploymentResult r = estimate_deployment(req, dep, cat());
    const double x = r.output_tokens_per_s / 1024;
    const double cycle_s =
        (r.ttft_ms - r.prefill_worker.prefill.server_overhead_ms) * 1e-3 + 1024 * r.tpot_ms * 1e-3;
    CHECK(x * cycle_s == Approx(static_cast<double>(c)).epsilon(0.01));
    CHECK(r.prefill_utilization < 1.0);
    // Properties: output never falls and TTFT never shortens as more requests arrive.
    CHECK(r.output_tokens_per_s >= last_out * (1 - 1e-6));
    CHECK(r.ttft_ms >= last_ttft);
    last_out = r.output_tokens_per_s;
    last_ttft = r.ttft_ms;
  }
}

TEST_CASE("disaggregated: more decode workers never lower throughput", "[perf][deployment]") {
  double last = 0;
  for (int d : {1, 2, 3, 4}) {
    const Deployment dep = parse_deployment(fmt::format("pd:1x8+{}x8", d));
    const PerfRequest req =
        request("deepseek-r1", "b200", 8 + 8 * d, "fp8", "trtllm", 1024, 1024, 256);
    const double x = estimate_deployment(req, dep, cat()).output_tokens_per_s;
    CHECK(x >= last * (1 - 1e-9));
    last = x;
  }
}

TEST_CASE("disaggregated: full decode slots make the rest wait", "[perf][deployment]") {
  // SGLang holds at most 256 sequences per worker (engines.json max_num_seqs): 1,000 requests on
  // one decode worker leave 744 waiting, so TTFT carries a queue of (C − D·slots − X·t₁)/X.
  const Deployment dep = parse_deployment("pd:1x8+1x8");
  const PerfRequest req = request("deepseek-r1", "mi355x", 16, "fp8", "sglang", 1024, 1024, 1000);
  const DeploymentResult r = estimate_deployment(req, dep, cat());
  REQUIRE(r.decode_slots == 256);
  CHECK(r.batch_per_group == Approx(256));
  const double x = r.output_tokens_per_s / 1024;
  CHECK(r.queue_ms > 0);
  CHECK(r.queue_ms * 1e-3 * x ==
        Approx(1000 - 256 -
               x * (r.ttft_ms - r.queue_ms - r.prefill_worker.prefill.server_overhead_ms) * 1e-3)
            .epsilon(1e-6));
  REQUIRE_FALSE(r.notes.empty());
  CHECK_THAT(r.notes.front(), Contains("wait for a slot"));
}

TEST_CASE("validate-perf: the deployment column", "[perf][validate][deployment]") {
  const std::string header =
      "model,gpu,gpu_count,precision,kv_precision,engine,input_tokens,output_tokens,concurrency,"
      "metric,value,unit,source,deployment";
  // The published GB200 NVL72 DeepSeek-R1 row (InferenceX run 21701654125: 5 prefill workers of
  // 8, one DP-attention decode worker of 16, 8K/1K at 1,229): 34,777.5 output tok/s. As one
  // 56-GPU group the estimate was −84% (capped at 4,096 sequences of one TP group, queueing the
  // prompts behind its decode); with the workers it ran, within ±25%.
  const std::string row =
      "deepseek-r1,gb200,56,fp8,fp8,trtllm,8192,1024,1229,output_tok_s,34777.5,tok/s,s,";
  const BenchmarkFile with = parse_benchmarks(header + "\n" + row + "pd:5x8+1x16a\n", "b.csv");
  const BenchmarkFile without = parse_benchmarks(header + "\n" + row + "\n", "b.csv");
  const RowPrediction pw = predict_row(with.rows[0], cat());
  const RowPrediction po = predict_row(without.rows[0], cat());
  REQUIRE(pw.predicted);
  REQUIRE(po.predicted);
  CHECK(std::abs(pw.error_pct) < 25);
  CHECK(std::abs(pw.error_pct) < std::abs(po.error_pct));
  // Errors name the file, the line and the column.
  CHECK_THROWS_WITH(
      parse_benchmarks(header + "\n" + row + "pd:5x8\n", "b.csv"),
      Contains("b.csv: line 2") && Contains("deployment") && Contains("not understood"));
  CHECK_THROWS_WITH(parse_benchmarks(header + "\n" + row + "pd:4x8+1x16\n", "b.csv"),
                    Contains("occupies 48 GPUs but gpu_count is 56"));
  CHECK_THROWS_WITH(parse_benchmarks(header + "\n" + row + "dp:3\n", "b.csv"),
                    Contains("56 GPUs do not divide into 3 replicas"));
}

TEST_CASE("layout text: perf's own form, and errors", "[perf][layout]") {
  const Layout l = parse_layout("tp=2 pp=2 ep=2 dp-attention");
  CHECK(l.tp == 2);
  CHECK(l.pp == 2);
  CHECK(l.ep == 2);
  CHECK(l.dp_attention);
  const Layout d = parse_layout("");
  CHECK(d.tp == 0);
  CHECK(d.pp == 1);
  CHECK_FALSE(d.dp_attention);
  CHECK_THROWS_WITH(parse_layout("tp2"), Contains("'tp2' is not key=value"));
  CHECK_THROWS_WITH(parse_layout("tp=0"), Contains("whole number from 1 to 9999"));
  CHECK_THROWS_WITH(parse_layout("dp=2"), Contains("unknown key 'dp'"));
}

TEST_CASE("validate-perf: the layout column runs the published layout",
          "[perf][validate][layout]") {
  // TensorRT-LLM's RTX PRO 6000 table (commit 03e27c7): Llama 3.3 70B FP4 on 2 PCIe cards as
  // TP1 × PP2, 1000/1000 at max load: 3,802 output tok/s. The engine's default TP2 all-reduces
  // every layer over PCIe (the estimate was −24%); the stated pipeline split is within ±10%.
  const std::string header =
      "model,gpu,gpu_count,precision,kv_precision,engine,input_tokens,output_tokens,concurrency,"
      "metric,value,unit,source,layout";
  const std::string row =
      "llama-3.3-70b,rtx-pro-6000,2,nvfp4,fp8,trtllm,1000,1000,,output_tok_s,3802,tok/s,s,";
  const RowPrediction pp =
      predict_row(parse_benchmarks(header + "\n" + row + "tp=1 pp=2\n", "b.csv").rows[0], cat());
  const RowPrediction tp =
      predict_row(parse_benchmarks(header + "\n" + row + "\n", "b.csv").rows[0], cat());
  REQUIRE(pp.predicted);
  REQUIRE(tp.predicted);
  CHECK(std::abs(pp.error_pct) < 10);
  CHECK(tp.error_pct < -15);
  CHECK_THROWS_WITH(parse_benchmarks(header + "\n" + row + "tp=4\n", "b.csv"),
                    Contains("line 2, column 'layout'") &&
                        Contains("tp × pp = 4 does not divide gpu_count 2 GPUs"));
  CHECK_THROWS_WITH(parse_benchmarks(header + "\n" + row + "tp=x\n", "b.csv"),
                    Contains("column 'layout'") && Contains("whole number"));
}

TEST_CASE("disaggregated: the stated layout is each worker's", "[perf][deployment][layout]") {
  // InferenceX's H100 run: prefill and decode workers of 16 GPUs as TP16 × EP16 across two
  // nodes. The decode step must be the one of that layout, not the engine's default TP8 × PP2.
  const Deployment dep = parse_deployment("pd:1x16+3x16");
  PerfRequest req = request("deepseek-r1", "h100-sxm", 64, "fp8", "trtllm", 1024, 1024, 30);
  const DeploymentResult def = estimate_deployment(req, dep, cat());
  req.layout = parse_layout("tp=16 ep=16");
  const DeploymentResult tp16 = estimate_deployment(req, dep, cat());
  PerfRequest dr = req;
  dr.gpus = 16;
  const double step_ms = decode_step(dr, cat(), tp16.batch_per_group, 1024 + 512).time_s * 1e3;
  CHECK(tp16.tpot_ms == Approx(step_ms).epsilon(1e-9));
  CHECK(tp16.tpot_ms != Approx(def.tpot_ms).epsilon(1e-3));
  // A layout that does not split a worker is an input error naming the worker.
  const std::string header =
      "model,gpu,gpu_count,precision,kv_precision,engine,input_tokens,output_tokens,concurrency,"
      "metric,value,unit,source,deployment,layout";
  CHECK_THROWS_WITH(
      parse_benchmarks(header + "\ndeepseek-r1,h100-sxm,24,fp8,fp8,trtllm,1024,1024,30,"
                                "tpot_ms,20,ms,s,pd:1x8+1x16,tp=16\n",
                       "b.csv"),
      Contains("tp × pp = 16 does not divide a prefill worker's 8 GPUs"));
}
