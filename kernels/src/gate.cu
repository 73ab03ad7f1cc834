// Router gate GEMM for decode batches: split-K fp32 SIMT kernel plus a
// slice-order reduction. Tile and slice math: moekernels/gate_math.hpp.
#include "common.cuh"
#include "moekernels/gate_math.hpp"

namespace moekernels::cuda {

namespace {

namespace mk = moekernels;
constexpr int kGateThreads = mk::kGateWarps * detail::kWarp;  // 256
// Padding: x tile stored [k][token] with rows of 68 floats (16-byte aligned
// float4 reads of a warp's 8 tokens, 4-way conflicts on the stores only); w
// tile [expert][k] with rows of 33 floats (conflict-free stores and reads).
constexpr int kXRow = mk::kGateTileTokens + 4;
constexpr int kWRow = mk::kGateStepK + 1;
// Three CTAs per SM (at most 85 registers): 24 warps keep enough loads in
// flight at one token, where the gate is a pure weight stream.
constexpr int kGateMinBlocks = 3;

// CTA (tile_n, tile_m, split): partial[split] of a 64 x 128 logits tile over
// the slice's K range, accumulated in fp32 in ascending k (fmaf), so the
// result is deterministic. Out-of-range tokens, experts and k read as 0.
__global__ void __launch_bounds__(kGateThreads, kGateMinBlocks)
    gate_splitk_kernel(const float* __restrict__ x, const float* __restrict__ w, int tokens,
                       int experts, int hidden, long long chunk, float* __restrict__ part) {
  __shared__ __align__(16) float xs[mk::kGateStepK * kXRow];
  __shared__ float ws[mk::kGateTileExperts * kWRow];
  const int tid = static_cast<int>(threadIdx.x);
  const int warp = tid / detail::kWarp, lane = tid % detail::kWarp;
  const int tile_n = static_cast<int>(blockIdx.x), tile_m = static_cast<int>(blockIdx.y);
  const int split = static_cast<int>(blockIdx.z);
  const mk::Range kr = mk::gate_k_range(chunk, split, hidden);
  const int t0 = mk::gate_token(tile_m, 0, 0), e0 = mk::gate_expert(tile_n, 0, 0);
  const bool active = mk::gate_token(tile_m, warp, 0) < tokens;  // uniform per warp
  float acc[mk::kGateTokensPerWarp][mk::kGateExpertsPerLane] = {};
  for (long long k0 = kr.begin; k0 < kr.end; k0 += mk::kGateStepK) {
    // Consecutive threads take consecutive k of one row: 128-byte loads.
    // Partly unrolled: fully unrolled, the 24 loads took 232 registers.
#pragma unroll 4
    for (int i = 0; i < mk::kGateTileTokens * mk::kGateStepK / kGateThreads; ++i) {
      const int idx = tid + i * kGateThreads;
      const int t = idx / mk::kGateStepK, kk = idx % mk::kGateStepK;
      const long long gk = k0 + kk;
      xs[kk * kXRow + t] =
          (t0 + t < tokens && gk < kr.end) ? x[static_cast<long long>(t0 + t) * hidden + gk] : 0.0f;
    }
#pragma unroll 8
    for (int i = 0; i < mk::kGateTileExperts * mk::kGateStepK / kGateThreads; ++i) {
      const int idx = tid + i * kGateThreads;
      const int e = idx / mk::kGateStepK, kk = idx % mk::kGateStepK;
      const long long gk = k0 + kk;
      ws[e * kWRow + kk] = (e0 + e < experts && gk < kr.end)
                               ? w[static_cast<long long>(e0 + e) * hidden + gk]
                               : 0.0f;
    }
    __syncthreads();
    if (active) {
#pragma unroll 8
      for (int kk = 0; kk < mk::kGateStepK; ++kk) {
        const float* xr = xs + kk * kXRow + warp * mk::kGateTokensPerWarp;
        const float4 a0 = *reinterpret_cast<const float4*>(xr);
        const float4 a1 = *reinterpret_cast<const float4*>(xr + 4);
        const float a[mk::kGateTokensPerWarp] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
        float b[mk::kGateExpertsPerLane];
#pragma unroll
        for (int j = 0; j < mk::kGateExpertsPerLane; ++j)
          b[j] = ws[(lane + detail::kWarp * j) * kWRow + kk];
#pragma unroll
        for (int r = 0; r < mk::kGateTokensPerWarp; ++r)
#pragma unroll
          for (int j = 0; j < mk::kGateExpertsPerLane; ++j) acc[r][j] = fmaf(a[r], b[j], acc[r][j]);
      }
    }
    __syncthreads();
  }
  if (!active) return;
#pragma unroll
  for (int r = 0; r < mk::kGateTokensPerWarp; ++r)
#pragma unroll
    for (int j = 0; j < mk::kGateExpertsPerLane; ++j) {
      const int t = mk::gate_token(tile_m, warp, r), e = mk::gate_expert(tile_n, lane, j);
      if (t < tokens && e < experts)
        part[mk::gate_partial_index(split, t, e, tokens, experts)] = acc[r][j];
    }
}

// logits[i] = sum over slices s = 0, 1, ... of part[s][i], in that order.
__global__ void gate_reduce_kernel(const float* __restrict__ part, int splits, long long n,
                                   float* __restrict__ logits) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    float s = 0.0f;
    for (int p = 0; p < splits; ++p) s += part[static_cast<long long>(p) * n + i];
    logits[i] = s;
  }
}

void gate_check(bool ok, const char* what) {
  if (!ok) throw_on_error(cudaErrorInvalidValue, what, __FILE__, __LINE__);
}

}  // namespace

long long gate_workspace_bytes(int tokens, int experts, int hidden, int sms) {
  return 4 * mk::gate_workspace_floats(tokens, experts, hidden, sms);
}

void gate_splitk(const float* x, const float* w, int tokens, int experts, int hidden, int sms,
                 float* workspace, long long workspace_bytes, float* logits, cudaStream_t st) {
  gate_check(mk::gate_uses_splitk(tokens) && experts > 0 && hidden > 0,
             "gate_splitk: need 1 <= tokens <= kGateMaxTokens, experts > 0, hidden > 0");
  const mk::GateSplits g = mk::gate_splits(tokens, experts, hidden, sms);
  const long long need = gate_workspace_bytes(tokens, experts, hidden, sms);
  gate_check(need == 0 || (workspace != nullptr && workspace_bytes >= need),
             "gate_splitk: workspace smaller than gate_workspace_bytes");
  float* part = g.splits > 1 ? workspace : logits;
  const dim3 grid(static_cast<unsigned>(g.tiles_n), static_cast<unsigned>(g.tiles_m),
                  static_cast<unsigned>(g.splits));
  gate_splitk_kernel<<<grid, kGateThreads, 0, st>>>(x, w, tokens, experts, hidden, g.chunk, part);
  MOEK_CHECK_LAUNCH("gate_splitk");
  if (g.splits == 1) return;
  const long long n = static_cast<long long>(tokens) * experts;
  gate_reduce_kernel<<<static_cast<unsigned>(mk::ceil_div(n, 256)), 256, 0, st>>>(part, g.splits, n,
                                                                                  logits);
  MOEK_CHECK_LAUNCH("gate_reduce");
}

}  // namespace moekernels::cuda
