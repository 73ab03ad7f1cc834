// Absorbed-MLA split-KV decode on tensor cores (kernels/src/mla_decode.cu),
// private to the attention launcher (attention.cu): plain C++, no kernel syntax.
#pragma once

#include "moekernels_cuda.hpp"

namespace moekernels::cuda::detail {

// Keys per KV tile of the MLA kernel (two n-tiles of 16 keys per mma step).
constexpr int kMlaTileKeys = 32;

struct MlaPlan {
  bool ok = false;
  int groups = 0;  // head groups (blocks per sequence and split)
  int tiles = 0;   // head tiles of 16 per group; 2 warps per tile
  int splits = 1;
  long long chunk = 0;  // keys per split (multiple of kMlaTileKeys)
  long long smem = 0;   // dynamic shared memory bytes
};

// The plan for `a` on the current device (`sms` SMs), ok = false when the
// tensor-core decode kernel does not apply: it needs decode (queries == 1),
// queries that may be rounded to bf16 (a.q_bf16), a bf16 or e4m3 cache,
// qk_dim % 16 == 0, compute capability >= 8.0 and its shared memory within the
// device's limit; and either shared latent K/V with one KV head (absorbed MLA,
// v_dim in {64, 128, 256, 512}, v_dim <= qk_dim) or separate K/V (GQA/MHA,
// v_dim in {64, 128, 256}, unless a.simt_decode).
MlaPlan mla_plan(const AttentionArgs& a, int sms);
// Launches the kernel: writes a.out when plan.splits == 1, else the per-split
// partials (acc [splits, B·H, v], (m, l) [splits, B·H, 2]) for attention_merge_kernel.
void mla_launch(const AttentionArgs& a, const MlaPlan& plan, float* part_acc, float* part_ml,
                cudaStream_t st);

}  // namespace moekernels::cuda::detail
