// One wave of requests run to completion (burst.hpp; docs/performance.md §Serving steady state,
// `once` arrivals): the simulation against hand-stepped schedules, its error paths, and the wave
// through estimate() against the steady-state figures of the same load.
#include <catch2/catch.hpp>

#include <cmath>

#include "moeplan/burst.hpp"
#include "moeplan/deployment.hpp"
#include "moeplan/errors.hpp"
#include "moeplan/performance.hpp"
#include "test_support.hpp"

using namespace moeplan;
using Catch::Matchers::Contains;

namespace {

BurstLoad two_prompts() {
  BurstLoad l;
  l.requests = 2;
  l.input_tokens = 100;
  l.output_tokens = 11;
  l.budget_tokens = 100;
  l.slots = 2;
  return l;
}

const BurstStepTime kTenthOfASecond = [](double, double, double) { return 0.1; };

}  // namespace

TEST_CASE("a wave of two prompts, stepped by hand", "[perf][burst]") {
  // Budget 100, prompts of 100 tokens, 11 output tokens, every step 0.1 s:
  //   step 1 (t 0.0–0.1): prompt A whole → A's first token at 0.1;
  //   step 2 (0.1–0.2): A decodes (1 query token), B takes the other 99 tokens;
  //   step 3 (0.2–0.3): A decodes, B's last token → B's first token at 0.3;
  //   A has 10 − 2 = 8 tokens left, B 10: 8 steps end A at 1.1, 2 more end B at 1.3.
  // TTFT (0.1 + 0.3)/2 = 0.2 s; TPOT (1.0/10 + 1.0/10)/2 = 0.1 s; output 22 / 1.3 s.
  const BurstRun w = simulate_burst(two_prompts(), kTenthOfASecond);
  CHECK(w.ttft_mean_s == Approx(0.2));
  CHECK(w.tpot_mean_s == Approx(0.1));
  CHECK(w.duration_s == Approx(1.3));
  CHECK(w.output_tokens_per_s == Approx(22.0 / 1.3));
  CHECK(w.steps == 13);
}

TEST_CASE("a wave waits for a slot and for arrivals", "[perf][burst]") {
  BurstLoad l = two_prompts();
  SECTION("one slot: B starts when A has finished") {
    l.slots = 1;
    // A: first token 0.1, 10 decode steps → ends 1.1; B prefills 1.1–1.2, ends 2.2.
    const BurstRun w = simulate_burst(l, kTenthOfASecond);
    CHECK(w.ttft_mean_s == Approx((0.1 + 1.2) / 2));
    CHECK(w.duration_s == Approx(2.2));
    CHECK(w.tpot_mean_s == Approx(0.1));
  }
  SECTION("arrivals 10 s apart never meet") {
    l.rate_per_s = 0.1;
    // A: 0–1.1; idle until B arrives at 10; B: 10.1 first token, ends 11.1.
    const BurstRun w = simulate_burst(l, kTenthOfASecond);
    CHECK(w.ttft_mean_s == Approx(0.1));
    CHECK(w.duration_s == Approx(11.1));
  }
  SECTION("an arrival during a decode run is admitted at the next step boundary") {
    l.rate_per_s = 1 / 0.25;  // B arrives at 0.25, while A decodes (steps end 0.2, 0.3)
    l.budget_tokens = 200;    // room for B's whole prompt beside A's query token
    // A: first token 0.1; pure decode steps end at 0.2, 0.3; B prefills 0.3–0.4 beside A's
    // decode; B's TTFT = 0.4 − 0.25 = 0.15.
    const BurstRun w = simulate_burst(l, kTenthOfASecond);
    CHECK(w.ttft_mean_s == Approx((0.1 + 0.15) / 2));
  }
  SECTION("speculative decoding: τ tokens a step, K + 1 query tokens of budget") {
    l.tokens_per_step = 2.5;
    l.query_tokens = 4;
    // A: first token 0.1; step 2: room 100 − 4 = 96 of B's 100; step 3 ends B at 0.3.
    // A has 10 − 2·2.5 = 5 left → 2 steps (ends 0.5); B 10 → 4 steps (ends 0.7).
    const BurstRun w = simulate_burst(l, kTenthOfASecond);
    CHECK(w.ttft_mean_s == Approx(0.2));
    CHECK(w.duration_s == Approx(0.7));
    CHECK(w.tpot_mean_s == Approx((0.4 / 10 + 0.4 / 10) / 2));
  }
}

TEST_CASE("a wave's out-of-range loads are errors, not hangs", "[perf][burst][error]") {
  BurstLoad l = two_prompts();
  l.requests = 0;
  CHECK_THROWS_WITH(simulate_burst(l, kTenthOfASecond), Contains("1 to 65536 requests"));
  l.requests = 70000;
  CHECK_THROWS_WITH(simulate_burst(l, kTenthOfASecond), Contains("not 70000"));
  l = two_prompts();
  l.budget_tokens = 0;
  CHECK_THROWS_WITH(simulate_burst(l, kTenthOfASecond), Contains("token budget"));
  l = two_prompts();
  l.input_tokens = 5e6;  // 10 million prompt tokens at one token a step
  l.budget_tokens = 1;
  CHECK_THROWS_WITH(simulate_burst(l, kTenthOfASecond), Contains("more than 1000000 steps"));
}

TEST_CASE("a wave's figures against the steady state of the same load", "[perf][burst]") {
  // 8×H200 GLM-5 FP8, 32 prompts of 8,000 / 1,024 (vLLM's GLM-5 recipe benchmark).
  PerfRequest r = test::with_load(test::perf_request("glm-5", "h200", 8, "fp8", "vllm", "bf16"),
                                  8000, 1024, 32);
  r.arrivals = Arrivals::together;
  const PerfResult waves = estimate(r, test::bundled_catalog());
  r.arrivals = Arrivals::once;
  const PerfResult once = estimate(r, test::bundled_catalog());
  r.request_rate_per_s = 10;
  const PerfResult spread = estimate(r, test::bundled_catalog());
  // The wave's ramp and tail lower whole-run output below the closed loop's, which never
  // drains; every request still waits at least its own prefill.
  CHECK(once.decode.output_tokens_per_s < waves.decode.output_tokens_per_s);
  CHECK(once.prefill.ttft_ms > once.prefill.ttft_alone_ms);
  // All 32 prompts queue for the 8,192-token budget: the mean waits about half the wave's
  // prefill, ≈ (32 + 1)/2 prompt services (±40% for the decoders' share of the budget).
  CHECK(once.prefill.ttft_ms == Approx(16.5 * once.prefill.ttft_alone_ms).epsilon(0.4));
  // Arrivals spread over 3.1 s shorten the queue each prompt sees.
  CHECK(spread.prefill.ttft_ms < once.prefill.ttft_ms);
  bool noted = false;
  for (const auto& n : spread.notes) noted = noted || n.find("10 arriving per second") != n.npos;
  CHECK(noted);
}

TEST_CASE("a wave over replicas: each replica runs its share at its share of the rate",
          "[perf][burst][deployment]") {
  // dp:2 on 4×H100, 20 requests at 2 per second: each replica runs 10 at 1 per second, so the
  // deployment's output is twice one replica's and its TTFT and TPOT are the replica's.
  PerfRequest r = test::with_load(
      test::perf_request("llama-3.3-70b", "h100-sxm", 4, "fp8", "vllm", "fp8"), 2000, 300, 20);
  r.arrivals = Arrivals::once;
  r.request_rate_per_s = 2;
  Deployment dp2;
  dp2.kind = Deployment::Kind::replicas;
  dp2.replicas = 2;
  const DeploymentResult both = estimate_deployment(r, dp2, test::bundled_catalog());
  PerfRequest one = r;
  one.gpus = 2;
  one.concurrency = 10;
  one.request_rate_per_s = 1;
  const PerfResult half = estimate(one, test::bundled_catalog());
  CHECK(both.output_tokens_per_s == Approx(2 * half.decode.output_tokens_per_s));
  CHECK(both.ttft_ms == Approx(half.prefill.ttft_ms));
  CHECK(both.tpot_ms == Approx(half.decode.tpot_ms));
  // Disaggregated workers are not modelled for a single wave: an error, not a guess.
  PerfRequest pd = test::perf_request("deepseek-r1", "h200", 16, "fp8", "vllm", "fp8");
  pd.concurrency = 8;
  pd.arrivals = Arrivals::once;
  CHECK_THROWS_WITH(
      estimate_deployment(pd, parse_deployment("pd:1x8+1x8"), test::bundled_catalog()),
      Contains("not for disaggregated workers"));
}
