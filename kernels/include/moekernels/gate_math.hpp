// Index math of the split-K router gate kernel (kernels/src/gate.cu), shared
// with the host tests: logits[t, e] = sum_k x[t, k] * w[e, k] for the router's
// fp32 gate at decode batches. cuBLASLt's fp32 tiles give one or two CTAs for
// 256 experts and walk all of K (6144 for glm-5.2) in each, so the gate ran at
// a few percent of the bandwidth; here the K axis is cut into `splits` slices
// (one CTA per tile x slice), each CTA writes its partial tile, and a second
// pass adds the slices in slice order (deterministic, no atomics). Formulas:
// docs/probe.md ("moe.router").
#pragma once

#include "moekernels/index_math.hpp"

namespace moekernels {

// CTA tile: 64 tokens x 128 experts, K in steps of 32. 8 warps; warp w owns
// tokens w*8 .. w*8+7 of the tile, lane l experts l, l+32, l+64, l+96.
constexpr int kGateTileTokens = 64;
constexpr int kGateTileExperts = 128;
constexpr int kGateStepK = 32;
constexpr int kGateWarps = 8;
constexpr int kGateTokensPerWarp = kGateTileTokens / kGateWarps;  // 8
constexpr int kGateExpertsPerLane = kGateTileExperts / 32;        // 4
// Largest batch the split-K gate takes; above it cuBLASLt (enough M tiles).
constexpr int kGateMaxTokens = 256;
// About two CTAs per SM (the kernel fits three), a slice at least one K step
// long, and the partials (splits x tokens x experts floats, written and read
// back once) at most kGatePartialRatio times the weight (experts x hidden).
constexpr int kGateWaves = 2;
constexpr int kGateMinSteps = 1;
constexpr int kGateMaxSplits = 256;
constexpr int kGatePartialRatio = 4;

struct GateSplits {
  int tiles_n;      // expert tiles (grid x)
  int tiles_m;      // token tiles (grid y)
  int splits;       // K slices (grid z)
  long long chunk;  // K elements per slice, a multiple of kGateStepK
};

MOE_HD inline bool gate_uses_splitk(int tokens) {
  return tokens >= 1 && tokens <= kGateMaxTokens;
}

// Same rule as the split-KV decode: about kGateWaves CTAs per SM over the
// tiles, capped so that a slice keeps kGateMinSteps steps and the partials stay
// within kGatePartialRatio x the weight bytes; no empty slice. tokens >= 1.
MOE_HD inline GateSplits gate_splits(int tokens, int experts, int hidden, int sms) {
  GateSplits g{};
  g.tiles_n = static_cast<int>(ceil_div(experts, kGateTileExperts));
  g.tiles_m = static_cast<int>(ceil_div(tokens, kGateTileTokens));
  long long most = static_cast<long long>(kGatePartialRatio) * hidden / (tokens > 0 ? tokens : 1);
  if (most > kGateMaxSplits) most = kGateMaxSplits;
  if (most < 1) most = 1;
  const KeySplits k = decode_splits(static_cast<long long>(g.tiles_n) * g.tiles_m, hidden, sms,
                                    kGateWaves, kGateStepK, kGateMinSteps, static_cast<int>(most));
  g.splits = k.splits;
  g.chunk = k.chunk;
  return g;
}

// K range [begin, end) of slice `split`.
MOE_HD inline Range gate_k_range(long long chunk, int split, long long hidden) {
  const long long b = static_cast<long long>(split) * chunk;
  const long long e = b + chunk;
  return Range{b < hidden ? b : hidden, e < hidden ? e : hidden};
}

// Token row r (0..7) of warp `warp` in token tile `tile_m`.
MOE_HD inline int gate_token(int tile_m, int warp, int r) {
  return tile_m * kGateTileTokens + warp * kGateTokensPerWarp + r;
}
// Expert j (0..3) of lane `lane` in expert tile `tile_n` (stride 32: the
// lanes read consecutive shared-memory rows, conflict-free).
MOE_HD inline int gate_expert(int tile_n, int lane, int j) {
  return tile_n * kGateTileExperts + lane + 32 * j;
}

// Partial of slice `split` for (token, expert): [splits][tokens][experts].
MOE_HD inline long long gate_partial_index(int split, int token, int expert, int tokens,
                                           int experts) {
  return (static_cast<long long>(split) * tokens + token) * experts + expert;
}

// fp32 workspace the gate needs (0 when one slice writes the logits directly).
MOE_HD inline long long gate_workspace_floats(int tokens, int experts, int hidden, int sms) {
  if (!gate_uses_splitk(tokens)) return 0;
  const GateSplits g = gate_splits(tokens, experts, hidden, sms);
  return g.splits > 1 ? static_cast<long long>(g.splits) * tokens * experts : 0;
}

}  // namespace moekernels
