// Split-K router gate (kernels/src/gate.cu): slice plan, tile mapping and the
// kernel's arithmetic replayed on the host through the same MOE_HD functions.
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "moekernels/gate_math.hpp"

namespace mk = moekernels;

TEST_CASE("split-K gate: slices for the measured router shapes", "[probe][kernels][gate]") {
  // glm-5.2: 256 experts x hidden 6144 on an H200 (132 SMs). One token: 2 x 1
  // tiles, 2 waves want ceil(264 / 2) = 132 slices -> ceil(6144 / 132) = 47 k,
  // rounded up to 64 (two 32-k steps) -> 96 slices; 96 x 2 = 192 CTAs.
  mk::GateSplits g = mk::gate_splits(1, 256, 6144, 132);
  CHECK(g.tiles_n == 2);
  CHECK(g.tiles_m == 1);
  CHECK(g.splits == 96);
  CHECK(g.chunk == 64);
  // 256 tokens: 2 x 4 tiles want ceil(264 / 8) = 33 slices (partial cap
  // 4 x 6144 / 256 = 96 not binding) -> 187 k rounded up to 192 -> 32 slices.
  g = mk::gate_splits(256, 256, 6144, 132);
  CHECK(g.tiles_m == 4);
  CHECK(g.splits == 32);
  CHECK(g.chunk == 192);
  // qwen3-30b-a3b: 128 experts x 2048. One token: 264 wanted, capped by the
  // 2048 / 32 = 64 steps -> 64 slices of one step.
  g = mk::gate_splits(1, 128, 2048, 132);
  CHECK(g.splits == 64);
  CHECK(g.chunk == 32);
  // 256 tokens: 66 wanted, partials capped at 4 x 2048 / 256 = 32 slices of 64.
  g = mk::gate_splits(256, 128, 2048, 132);
  CHECK(g.splits == 32);
  CHECK(g.chunk == 64);
  // Workspace: 32 slices x 256 tokens x 128 experts floats.
  CHECK(mk::gate_workspace_floats(256, 128, 2048, 132) == 32LL * 256 * 128);
  // No SM count known: one slice, written straight into the logits.
  CHECK(mk::gate_splits(5, 256, 6144, 0).splits == 1);
  CHECK(mk::gate_workspace_floats(5, 256, 6144, 0) == 0);
}

TEST_CASE("split-K gate: who takes it", "[probe][kernels][gate]") {
  CHECK_FALSE(mk::gate_uses_splitk(0));
  CHECK(mk::gate_uses_splitk(1));
  CHECK(mk::gate_uses_splitk(mk::kGateMaxTokens));
  CHECK_FALSE(mk::gate_uses_splitk(mk::kGateMaxTokens + 1));
  // Above the threshold the launcher is not used: no workspace.
  CHECK(mk::gate_workspace_floats(mk::kGateMaxTokens + 1, 256, 6144, 132) == 0);
}

TEST_CASE("split-K gate: slices partition K, no empty slice", "[probe][kernels][gate]") {
  for (int tokens : {1, 5, 17, 64, 65, 256})
    for (int experts : {8, 128, 200, 256})
      for (int hidden : {1, 31, 100, 2048, 6144, 7168})
        for (int sms : {0, 16, 132}) {
          const mk::GateSplits g = mk::gate_splits(tokens, experts, hidden, sms);
          INFO("tokens " << tokens << " experts " << experts << " hidden " << hidden << " sms "
                         << sms);
          REQUIRE(g.splits >= 1);
          CHECK(g.splits <= mk::kGateMaxSplits);
          CHECK(g.chunk % mk::kGateStepK == 0);
          CHECK(g.tiles_n * mk::kGateTileExperts >= experts);
          CHECK(g.tiles_m * mk::kGateTileTokens >= tokens);
          // Partials within kGatePartialRatio x the weight (or a single slice).
          CHECK((g.splits == 1 || static_cast<long long>(g.splits) * tokens <=
                                      mk::kGatePartialRatio * 1LL * hidden));
          long long next = 0;
          for (int s = 0; s < g.splits; ++s) {
            const mk::Range r = mk::gate_k_range(g.chunk, s, hidden);
            CHECK(r.begin == next);
            CHECK(r.end > r.begin);  // no empty slice
            next = r.end;
          }
          CHECK(next == hidden);
        }
}

namespace {

// The CUDA kernel's arithmetic on the host: every CTA (tile_n, tile_m, split),
// warp and lane through gate_token / gate_expert / gate_k_range, fmaf in
// ascending k (zero-padded steps), partials at gate_partial_index, then the
// slice-order reduction. `writes` counts the stores per partial.
std::vector<float> gate_replay(const std::vector<float>& x, const std::vector<float>& w, int tokens,
                               int experts, int hidden, int sms, std::vector<int>& writes) {
  const mk::GateSplits g = mk::gate_splits(tokens, experts, hidden, sms);
  std::vector<float> part(static_cast<std::size_t>(g.splits) * tokens * experts, 0.0f);
  writes.assign(part.size(), 0);
  for (int s = 0; s < g.splits; ++s) {
    const mk::Range kr = mk::gate_k_range(g.chunk, s, hidden);
    for (int tm = 0; tm < g.tiles_m; ++tm)
      for (int tn = 0; tn < g.tiles_n; ++tn)
        for (int warp = 0; warp < mk::kGateWarps; ++warp)
          for (int lane = 0; lane < 32; ++lane)
            for (int r = 0; r < mk::kGateTokensPerWarp; ++r)
              for (int j = 0; j < mk::kGateExpertsPerLane; ++j) {
                const int t = mk::gate_token(tm, warp, r), e = mk::gate_expert(tn, lane, j);
                if (t >= tokens || e >= experts) continue;
                float acc = 0.0f;
                for (long long k0 = kr.begin; k0 < kr.end; k0 += mk::kGateStepK)
                  for (long long k = k0; k < k0 + mk::kGateStepK; ++k) {
                    const bool in = k < kr.end;
                    const float a = in ? x[static_cast<std::size_t>(t * hidden + k)] : 0.0f;
                    const float b = in ? w[static_cast<std::size_t>(e * hidden + k)] : 0.0f;
                    acc = std::fma(a, b, acc);
                  }
                const auto i =
                    static_cast<std::size_t>(mk::gate_partial_index(s, t, e, tokens, experts));
                part[i] = acc;
                ++writes[i];
              }
  }
  const std::size_t n = static_cast<std::size_t>(tokens) * experts;
  std::vector<float> logits(n, 0.0f);
  for (std::size_t i = 0; i < n; ++i) {
    float sum = 0.0f;
    for (int s = 0; s < g.splits; ++s) sum += part[static_cast<std::size_t>(s) * n + i];
    logits[i] = sum;
  }
  return logits;
}

}  // namespace

TEST_CASE("split-K gate: host replay of the kernel equals the float64 product",
          "[probe][kernels][gate]") {
  struct Case {
    int tokens, experts, hidden, sms;
  };
  // Tails on every axis: 70 tokens (two token tiles, the second of 6),
  // 200 experts (second expert tile of 72), hidden 100 (a 4-wide last step).
  for (const Case c : {Case{1, 16, 64, 132}, Case{5, 200, 100, 132}, Case{17, 128, 256, 16},
                       Case{70, 200, 100, 132}, Case{3, 8, 31, 0}}) {
    std::vector<float> x(static_cast<std::size_t>(c.tokens) * c.hidden);
    std::vector<float> w(static_cast<std::size_t>(c.experts) * c.hidden);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = mk::pattern_value(11, i);
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = mk::pattern_value(12, i) * 0.1f;
    std::vector<int> writes;
    const auto got = gate_replay(x, w, c.tokens, c.experts, c.hidden, c.sms, writes);
    INFO("tokens " << c.tokens << " experts " << c.experts << " hidden " << c.hidden);
    for (int n : writes) REQUIRE(n == 1);  // every partial written exactly once
    double worst = 0.0;
    for (int t = 0; t < c.tokens; ++t)
      for (int e = 0; e < c.experts; ++e) {
        double ref = 0.0;
        for (int k = 0; k < c.hidden; ++k)
          ref += static_cast<double>(x[static_cast<std::size_t>(t * c.hidden + k)]) *
                 w[static_cast<std::size_t>(e * c.hidden + k)];
        worst = std::max(worst, std::abs(got[static_cast<std::size_t>(t * c.experts + e)] - ref));
      }
    // |x|, |w/0.1| < 1, hidden <= 256 terms: fp32 error << 256 * 2^-24 * 0.1 ~ 2e-6.
    CHECK(worst < 1e-5);
  }
}
