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

TEST_CASE("a scheduler admission interval: applied per replica, refused for prefill/decode workers",
          "[perf][deployment][errors]") {
  // SGLang --scheduler-recv-interval 30 on dp:2 × 8 H200: each replica's scheduler polls every
  // 30 steps, so a prompt waits (30 − 1)/2 = 14.5 steady steps more than at an interval of 1.
  PerfRequest r = test::with_load(
      test::perf_request("deepseek-r1", "h200", 16, "fp8", "sglang", "fp8"), 1024, 1024, 32);
  r.arrivals = Arrivals::steady;
  const Deployment dp2 = parse_deployment("dp:2");
  const DeploymentResult every = estimate_deployment(r, dp2, test::bundled_catalog());
  r.admission_interval_steps = 30;
  const DeploymentResult polled = estimate_deployment(r, dp2, test::bundled_catalog());
  CHECK(polled.ttft_ms == Approx(every.ttft_ms + 14.5 * every.tpot_ms).epsilon(0.02));
  // Which of a pd: deployment's schedulers poll is not modelled: an error, not a silent drop.
  CHECK_THROWS_WITH(
      estimate_deployment(r, parse_deployment("pd:1x8+1x8"), test::bundled_catalog()),
      Contains("deployment pd:1x8+1x8: a scheduler admission interval of 30 steps is modelled "
               "for one engine group or replicas, not for disaggregated workers"));
  r.admission_interval_steps = 1;
  CHECK_NOTHROW(estimate_deployment(r, parse_deployment("pd:1x8+1x8"), test::bundled_catalog()));
}

TEST_CASE("a closed-loop client, stepped by hand", "[perf][burst]") {
  // benchmark_serving --max-concurrency 1 --num-prompts 3: one request at a time, the next sent
  // the moment the last ends. Budget 100, prompts of 100 tokens, 11 output tokens, 0.1 s a step:
  // each request takes a prefill step (first token 0.1 s after it was sent) and 10 decode steps,
  // so the three run 0–1.1, 1.1–2.2, 2.2–3.3. TTFT 0.1 s each, counted from the send.
  BurstLoad l = two_prompts();
  l.requests = 3;
  l.clients = 1;
  const BurstRun w = simulate_burst(l, kTenthOfASecond);
  CHECK(w.ttft_mean_s == Approx(0.1));
  CHECK(w.tpot_mean_s == Approx(0.1));
  CHECK(w.duration_s == Approx(3.3));
  CHECK(w.output_tokens_per_s == Approx(33.0 / 3.3));
  CHECK(w.input_tokens_per_s == Approx(300.0 / 3.3));  // all three prompts, not one wave's

  // Two clients, four prompts, fixed lengths: the second pair is sent together when the first
  // pair ends, so it queues for the budget exactly as the first did (every wave together):
  // the first pair's schedule (first tokens 0.1 and 0.3, ends 1.1 and 1.3) repeats once A ends
  // for C (sent 1.1) — D, sent 1.3, arrives with C decoding.
  l.requests = 4;
  l.clients = 2;
  const BurstRun two = simulate_burst(l, kTenthOfASecond);
  CHECK(two.ttft_mean_s >= 0.1);
  CHECK(two.ttft_mean_s <= 0.2 + 1e-9);  // never worse than a wave arriving together
  CHECK(two.duration_s == Approx(2.4).margin(0.15));
}

TEST_CASE("a closed-loop client's lengths spread as benchmark_serving draws them",
          "[perf][burst][property]") {
  BurstLoad l;
  l.input_tokens = 1000;
  l.output_tokens = 100;
  l.budget_tokens = 8192;
  l.slots = 64;
  l.clients = 16;
  l.requests = 1600;
  const BurstStepTime step = [](double dec, double pf, double) {
    return 0.01 + 1e-4 * dec + 2e-5 * pf;
  };
  const BurstRun fixed = simulate_burst(l, step);
  l.range_ratio = 0.8;
  const BurstRun spread = simulate_burst(l, step);
  // Reproducible: a fixed seed, the same run twice.
  const BurstRun again = simulate_burst(l, step);
  CHECK(spread.ttft_mean_s == again.ttft_mean_s);
  CHECK(spread.duration_s == again.duration_s);
  // Lengths uniform in [800, 1000] and [80, 100]: the mean output 90 tokens, so 1,600 requests
  // emit about 144,000 tokens (±1% for the draws).
  CHECK(spread.output_tokens_per_s * spread.duration_s == Approx(1600 * 90.0).epsilon(0.01));
  // Spread lengths break the waves up: prompts arrive a few at a time, and queue less for the
  // budget than 16 that arrive together every time.
  CHECK(spread.ttft_mean_s < fixed.ttft_mean_s);
  // Out of range: refused.
  l.range_ratio = 0;
  CHECK_THROWS_WITH(simulate_burst(l, step), Contains("range ratio in (0, 1]"));
  l.range_ratio = 1;
  l.clients = -1;
  CHECK_THROWS_AS(simulate_burst(l, step), Error);
}

TEST_CASE("a scheduler that looks for new requests every N steps", "[perf][burst]") {
  // SGLang --scheduler-recv-interval / --num-continuous-decode-steps. Prompts of 100 tokens
  // arriving 0.25 s apart, budget 200, 0.1 s a step. A is taken at once (the server is idle) and
  // prefilled 0–0.1. B arrives at 0.25:
  //   every step: taken at the step boundary 0.3, prefilled 0.3–0.4 → TTFT 0.15;
  //   every 4 steps: the next look is after step 4 (t 0.4), prefilled 0.4–0.5 → TTFT 0.25.
  BurstLoad l = two_prompts();
  l.rate_per_s = 4;
  l.budget_tokens = 200;  // room for B's whole prompt beside A's decode token
  const BurstRun every = simulate_burst(l, kTenthOfASecond);
  CHECK(every.ttft_mean_s == Approx((0.1 + 0.15) / 2));
  l.admit_every_steps = 4;
  const BurstRun fourth = simulate_burst(l, kTenthOfASecond);
  CHECK(fourth.ttft_mean_s == Approx((0.1 + 0.25) / 2));
  // An arrival during another prompt's prefill waits for the look too. Prompts of 300 tokens,
  // B at 0.05 s:
  //   every step: B is taken after step 1 and shares step 2 (A's last 100, B's first 100);
  //     A decodes from 0.2, B takes 199 in step 3 and its last token in step 4 → TTFT 0.35;
  //   every 4 steps: A is prefilled alone (steps 1–2, first token 0.2), decodes to step 4
  //     (t 0.4), B is taken then: 199 + 101 tokens, first token 0.6 → TTFT 0.55.
  l.input_tokens = 300;
  l.rate_per_s = 20;
  l.admit_every_steps = 1;
  CHECK(simulate_burst(l, kTenthOfASecond).ttft_mean_s == Approx((0.2 + 0.35) / 2));
  l.admit_every_steps = 4;
  CHECK(simulate_burst(l, kTenthOfASecond).ttft_mean_s == Approx((0.2 + 0.55) / 2));
  l.admit_every_steps = 0;
  CHECK_THROWS_WITH(simulate_burst(l, kTenthOfASecond), Contains("admission interval >= 1"));
}

TEST_CASE("steady state: every N steps adds (N − 1)/2 steps to TTFT", "[perf][burst][ttft]") {
  // SGLang on 8 × B200, DeepSeek-R1 NVFP4, 1K/1K, c = 64, as InferenceX launches it with
  // --scheduler-recv-interval 30: the prompt waits 14.5 steps more than with 1.
  PerfRequest r = test::perf_request("deepseek-r1", "b200", 8, "default=fp8,routed_experts=nvfp4",
                                     "sglang", "fp8");
  r.input_tokens = 1024;
  r.output_tokens = 1024;
  r.concurrency = 64;
  const PerfResult one = estimate(r, test::bundled_catalog());
  r.admission_interval_steps = 30;
  const PerfResult thirty = estimate(r, test::bundled_catalog());
  CHECK(thirty.prefill.ttft_ms - one.prefill.ttft_ms == Approx(14.5 * one.decode.tpot_ms));
  CHECK(thirty.decode.tpot_ms == Approx(one.decode.tpot_ms));
}
