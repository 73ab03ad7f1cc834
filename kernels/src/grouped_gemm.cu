// Grouped expert GEMM on tensor cores for prefill-sized token counts
// (MOEPROBE_CUDA_EXPERTS=grouped): one launch for every touched expert,
// Y[offsets[e] + r, n] = Σ_k X[offsets[e] + r, k] · W_slot(e)[n, k], r < counts[e],
// bf16 in, fp32 accumulate (mma.sync m16n8k16). The counts and offsets stay on
// the device: a one-thread kernel turns the counts into per-expert M-tile
// offsets (grouped_tile_offsets), the GEMM grid is (N tiles, an upper bound of
// the M-tiles from the host-known row total: grouped_tile_bound), and each
// block finds its (expert, M-tile) by binary search (grouped_tile_find); blocks
// past the last tile exit. N tiles run fastest, so the blocks reading one
// expert's X tile run side by side and each W tile is read once per M-tile of
// its expert. Tiles of 64 x 64 outputs, K in steps of 64 with two stages of
// 16-byte cp.async in flight (X rows past the expert's count and K past the
// end are zero-filled, W rows past N too), 4 warps of 32 x 32 outputs, ldmatrix
// fragments (A: mla_ldm_q on the X tile; B: mla_ldm_k on the W tile, which is
// [n][k] like the MLA K tile). Index math: index_math.hpp (grouped_*, gg_out,
// mma_*, mla_ldm_*), host-tested lane by lane in tests/test_probe_kernels.cpp.
#include <cuda_bf16.h>

#include "common.cuh"
#include "mma.cuh"

namespace moekernels::cuda {

namespace {

namespace mk = moekernels;
constexpr int kBm = mk::kGgBm, kBn = mk::kGgBn, kBk = mk::kGgBk;
constexpr int kThreads = 128;  // 4 warps, 2 x 2 over the 64 x 64 tile
constexpr int kStages = 2;
constexpr int kLd =
    kBk + 8;  // padded row: the 8 ldmatrix rows hit distinct banks (144-byte stride)
constexpr int kChunks = kBk / 8;  // 16-byte chunks per tile row

void check_shape(bool ok, const char* what) {
  if (!ok) throw_on_error(cudaErrorInvalidValue, what, __FILE__, __LINE__);
}

__global__ void tile_offsets_kernel(const int* counts, int experts, int bm, int* tile_offsets) {
  if (blockIdx.x == 0 && threadIdx.x == 0)
    mk::grouped_tile_offsets(counts, experts, bm, tile_offsets);
}

__global__ void __launch_bounds__(kThreads)
    grouped_gemm_kernel(const __nv_bfloat16* __restrict__ x, const __nv_bfloat16* __restrict__ w,
                        long long slot_stride, int pool, int experts, int n_out, int k,
                        const int* __restrict__ counts, const int* __restrict__ offsets,
                        const int* __restrict__ tile_offsets, float* __restrict__ out) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  __shared__ __align__(16) __nv_bfloat16 xs[kStages][kBm * kLd];
  __shared__ __align__(16) __nv_bfloat16 ws[kStages][kBn * kLd];
  const mk::GroupedTile gt = mk::grouped_tile_find(tile_offsets, experts, blockIdx.y);
  if (gt.expert < 0) return;  // past the last M-tile of the bound
  const int e = gt.expert;
  const long long row0 =
      static_cast<long long>(offsets[e]) + static_cast<long long>(gt.mtile) * kBm;
  const int rows = min(kBm, counts[e] - gt.mtile * kBm);  // valid rows of this tile (>= 1)
  const int n0 = static_cast<int>(blockIdx.x) * kBn;
  const __nv_bfloat16* wslot = w + mk::expert_slot(e, pool) * slot_stride;
  const int tid = static_cast<int>(threadIdx.x), warp = tid / detail::kWarp,
            lane = tid % detail::kWarp;
  const int ksteps = static_cast<int>(mk::ceil_div(k, kBk));

  // K step s -> stage s % kStages: each thread copies 4 chunks of X and 4 of W.
  auto issue = [&](int s) {
    const int stage = s % kStages, kb = s * kBk;
#pragma unroll
    for (int i = 0; i < kBm * kChunks / kThreads; ++i) {
      const int idx = tid + i * kThreads, r = idx / kChunks, c = (idx % kChunks) * 8;
      const bool kin = kb + c < k;
      const bool xin = kin && r < rows;
      const __nv_bfloat16* xsrc = xin ? x + (row0 + r) * k + kb + c : x;
      detail::cp_async16(&xs[stage][r * kLd + c], xsrc, xin ? 16 : 0);
      const bool win = kin && n0 + r < n_out;
      const __nv_bfloat16* wsrc = win ? wslot + static_cast<long long>(n0 + r) * k + kb + c : w;
      detail::cp_async16(&ws[stage][r * kLd + c], wsrc, win ? 16 : 0);
    }
  };

  float acc[2][4][4];
#pragma unroll
  for (int mi = 0; mi < 2; ++mi)
#pragma unroll
    for (int nj = 0; nj < 4; ++nj)
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[mi][nj][i] = 0.0f;

  const int wm = 32 * (warp / 2), wn = 32 * (warp % 2);
  issue(0);
  detail::cp_async_commit();
  for (int s = 0; s < ksteps; ++s) {
    if (s + 1 < ksteps) issue(s + 1);
    detail::cp_async_commit();  // an empty group at the end keeps the wait count uniform
    detail::cp_async_wait<1>();
    __syncthreads();
    const __nv_bfloat16* xt = xs[s % kStages];
    const __nv_bfloat16* wt = ws[s % kStages];
#pragma unroll
    for (int k0 = 0; k0 < kBk; k0 += 16) {
      unsigned a[2][4], b[2][4];
#pragma unroll
      for (int mi = 0; mi < 2; ++mi) {
        const mk::RowCol q = mk::mla_ldm_q(lane, k0);
        detail::ldm_x4(&xt[(wm + 16 * mi + q.row) * kLd + q.col], a[mi]);
      }
#pragma unroll
      for (int np = 0; np < 2; ++np) {  // n8 tiles 2np, 2np + 1
        const mk::RowCol r = mk::mla_ldm_k(lane, wn + 16 * np, k0);
        detail::ldm_x4(&wt[r.row * kLd + r.col], b[np]);
      }
#pragma unroll
      for (int mi = 0; mi < 2; ++mi)
#pragma unroll
        for (int np = 0; np < 2; ++np) {
          detail::mma_bf16(acc[mi][2 * np], a[mi], b[np][0], b[np][1]);
          detail::mma_bf16(acc[mi][2 * np + 1], a[mi], b[np][2], b[np][3]);
        }
    }
    __syncthreads();  // the stage is overwritten by the next issue
  }

#pragma unroll
  for (int mi = 0; mi < 2; ++mi)
#pragma unroll
    for (int nj = 0; nj < 4; ++nj)
#pragma unroll
      for (int i = 0; i < 4; i += 2) {  // elements i, i + 1: one row, adjacent columns
        const mk::RowCol o = mk::gg_out(warp, lane, mi, nj, i);
        const int n = n0 + o.col;
        if (o.row >= rows || n >= n_out) continue;
        float* dst = out + (row0 + o.row) * n_out + n;
        if (n + 1 < n_out && (n_out % 2) == 0) {
          *reinterpret_cast<float2*>(dst) = make_float2(acc[mi][nj][i], acc[mi][nj][i + 1]);
        } else {
          dst[0] = acc[mi][nj][i];
          if (n + 1 < n_out) dst[1] = acc[mi][nj][i + 1];
        }
      }
#endif
}

}  // namespace

bool grouped_gemm_supported(Elem t, int k) {
  return t == Elem::bf16 && k % 8 == 0 && k > 0;
}

int grouped_gemm_workspace_ints(int experts) {
  return experts + 1;
}

void grouped_gemm(const void* x, const void* w, long long slot_stride, int pool, int experts,
                  int n_out, int k, Elem t, long long rows, const int* counts, const int* offsets,
                  int* workspace, float* out, cudaStream_t st) {
  check_shape(grouped_gemm_supported(t, k) && pool > 0 && experts > 0 && n_out > 0 && rows >= 0,
              "grouped_gemm: needs bf16 with k % 8 == 0");
  if (rows == 0) return;
  const long long mtiles = mk::grouped_tile_bound(rows, experts, kBm);
  check_shape(mtiles <= 65535, "grouped_gemm: more than 65535 M-tiles");
  tile_offsets_kernel<<<1, 1, 0, st>>>(counts, experts, kBm, workspace);
  MOEK_CHECK_LAUNCH("grouped_gemm tile offsets");
  const dim3 grid(static_cast<unsigned>(mk::ceil_div(n_out, kBn)), static_cast<unsigned>(mtiles));
  grouped_gemm_kernel<<<grid, kThreads, 0, st>>>(
      static_cast<const __nv_bfloat16*>(x), static_cast<const __nv_bfloat16*>(w), slot_stride, pool,
      experts, n_out, k, counts, offsets, workspace, out);
  MOEK_CHECK_LAUNCH("grouped_gemm");
}

}  // namespace moekernels::cuda
