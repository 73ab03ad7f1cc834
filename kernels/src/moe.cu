// MoE kernels: routing (top-k), the stable expert-major permutation, row
// gathers for the expert GEMMs (padded and unpadded), SwiGLU, the weighted
// combine, RMSNorm. Index math comes from moekernels/index_math.hpp, the very
// functions the CPU backend and the reference run.
#include "common.cuh"

namespace moekernels::cuda {

namespace {

using detail::grid_for;
namespace mk = moekernels;

__global__ void route_kernel(const float* logits, const float* bias, int tokens, int experts, int k,
                             bool sigmoid_grouped, int n_group, int topk_group, bool normalize,
                             float* scratch, int scratch_per, int* ids, float* w) {
  const int t = blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= tokens) return;
  mk::route_token(logits + static_cast<long long>(t) * experts, bias, experts, k, sigmoid_grouped,
                  n_group, topk_group, normalize, ids + static_cast<long long>(t) * k,
                  w + static_cast<long long>(t) * k,
                  scratch + static_cast<long long>(t) * scratch_per);
}

// Router, one warp per token (experts <= kRouteMaxExperts): the token's
// scores live in shared memory, top-k in k rounds of a warp arg-max over the
// lanes' strided shares (lane_best / candidate_before, index_math.hpp), the
// same total order as route_token, so the ids are route_token's exactly. Sums
// whose order changes the bits (softmax normaliser, weight renormalisation)
// run serially on lane 0 in route_token's order; maxima and the top-k are
// order-free. Per warp: p[E], c[E], group scores[64] floats, chosen groups[64]
// ints, eligible[E] and taken[E] bytes.
constexpr int kRouteWarps = 4;
constexpr int kRouteMaxExperts = 512;
constexpr int kRouteMaxGroups = 64;

__host__ __device__ constexpr int route_region_floats(int experts) {
  return 2 * experts + 2 * kRouteMaxGroups + (2 * experts + 3) / 4;
}

__global__ void __launch_bounds__(kRouteWarps* detail::kWarp)
    route_warp_kernel(const float* logits, const float* bias, int tokens, int experts, int k,
                      bool sigmoid_grouped, int n_group, int topk_group, bool normalize, int* ids,
                      float* w) {
  extern __shared__ float route_smem[];
  const int warp = static_cast<int>(threadIdx.x) / detail::kWarp;
  const int lane = static_cast<int>(threadIdx.x) % detail::kWarp;
  const int t = static_cast<int>(blockIdx.x) * kRouteWarps + warp;
  if (t >= tokens) return;  // uniform per warp
  const int n = experts;
  float* p = route_smem + static_cast<long long>(warp) * route_region_floats(n);
  float* c = p + n;
  float* gs = c + n;
  // Chosen groups in shared memory, not a local array (which took a stack frame).
  int* gidx = reinterpret_cast<int*>(gs + kRouteMaxGroups);
  unsigned char* eligible = reinterpret_cast<unsigned char*>(gidx + kRouteMaxGroups);
  unsigned char* taken = eligible + n;
  const float* lg = logits + static_cast<long long>(t) * n;
  for (int i = lane; i < n; i += detail::kWarp) {
    const float b = bias ? bias[i] : 0.0f;
    if (sigmoid_grouped) {
      p[i] = mk::sigmoid(lg[i]);
      c[i] = p[i] + b;
    } else {
      c[i] = lg[i] + b;
    }
    eligible[i] = sigmoid_grouped ? 0 : 1;
    taken[i] = 0;
  }
  __syncwarp();
  const float* sel = c;  // the scores top-k ranks: p (softmax) or c (grouped)
  if (!sigmoid_grouped) {
    float m = -3.0e38f;
    for (int i = lane; i < n; i += detail::kWarp) m = fmaxf(m, c[i]);
    m = detail::warp_max(m);
    for (int i = lane; i < n; i += detail::kWarp) p[i] = __builtin_expf(c[i] - m);
    __syncwarp();
    float sum = 0.0f;
    if (lane == 0)
      for (int i = 0; i < n; ++i) sum += p[i];
    sum = __shfl_sync(0xffffffffu, sum, 0);
    for (int i = lane; i < n; i += detail::kWarp) p[i] /= sum;
    __syncwarp();
    sel = p;
  } else {
    // Group scores by the whole warp, one group after another (lanes stride the
    // group's experts, top2_merge over the xor butterfly): lane 0 scanning a
    // group alone took 53 us for glm-5.2's one group of 256 (ncu, H200).
    const int per = n / n_group;
    for (int g = 0; g < n_group; ++g) {
      mk::Top2 t = mk::top2_empty();
      for (int i = lane; i < per; i += detail::kWarp) t = mk::top2_push(t, c[g * per + i], i);
#pragma unroll
      for (int o = detail::kWarp / 2; o > 0; o >>= 1) {
        mk::Top2 other;
        other.v1 = __shfl_xor_sync(0xffffffffu, t.v1, o);
        other.v2 = __shfl_xor_sync(0xffffffffu, t.v2, o);
        other.i1 = __shfl_xor_sync(0xffffffffu, t.i1, o);
        other.i2 = __shfl_xor_sync(0xffffffffu, t.i2, o);
        t = mk::top2_merge(t, other);
      }
      if (lane == 0) gs[g] = mk::top2_sum(t);
    }
    __syncwarp();
    int got = 0;
    if (lane == 0) {
      const int tg = topk_group < kRouteMaxGroups ? topk_group : kRouteMaxGroups;
      got = mk::topk_select(gs, n_group, tg, gidx);  // n_group <= 64: short
    }
    got = __shfl_sync(0xffffffffu, got, 0);
    __syncwarp();
    for (int i = lane; i < n; i += detail::kWarp)
      for (int j = 0; j < got; ++j)
        if (gidx[j] == i / per) eligible[i] = 1;
    __syncwarp();
  }
  int* my_ids = ids + static_cast<long long>(t) * k;
  float* my_w = w + static_cast<long long>(t) * k;
  int found = 0;
  for (int j = 0; j < k; ++j) {
    int bi = mk::lane_best(sel, n, lane, detail::kWarp, eligible, taken);
    float bv = bi >= 0 ? sel[bi] : 0.0f;
#pragma unroll
    for (int o = detail::kWarp / 2; o > 0; o >>= 1) {
      const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
      const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
      if (mk::candidate_before(ov, oi, bv, bi)) {
        bv = ov;
        bi = oi;
      }
    }
    if (bi < 0) break;  // fewer eligible experts than k (uniform across the warp)
    if (lane == 0) {
      taken[bi] = 1;
      my_ids[j] = bi;
    }
    ++found;
    __syncwarp();
  }
  if (lane == 0) {
    float sum = 0.0f;
    for (int j = 0; j < found; ++j) {
      my_w[j] = p[my_ids[j]];
      sum += my_w[j];
    }
    if (normalize && sum > 0.0f)
      for (int j = 0; j < found; ++j) my_w[j] /= sum;
  }
}

// Grouped GEMV over the experts (decode batches): out[o + r, j] = Σ_k x[o + r, k] ·
// W_slot(e)[j, k] for every expert e with counts[e] > 0 (o = offsets[e], r <
// counts[e], slot = e mod pool: grouped_rows / expert_slot in index_math.hpp).
// One launch for all experts: grid (column tiles, experts), blocks of experts
// without rows exit at once, so the counts and offsets never leave the device.
// A warp owns kGemvColsPerWarp weight rows; lanes stride K in 16-byte loads of
// W (8 bf16 or 4 fp32) and the matching x elements (x rows are few and stay in
// L1), kGemvRowChunk x rows per pass.
constexpr int kGemvWarps = 8;
constexpr int kGemvColsPerWarp = 4;
constexpr int kGemvCols = kGemvWarps * kGemvColsPerWarp;
constexpr int kGemvRowChunk = 8;

template <int KIND>  // 0 fp32, 1 bf16 (x and W in the same type)
__device__ __forceinline__ void load_vec(const void* p, long long i, float* f) {
  if constexpr (KIND == 0) {
    const float4 v = __ldg(reinterpret_cast<const float4*>(static_cast<const float*>(p) + i));
    f[0] = v.x;
    f[1] = v.y;
    f[2] = v.z;
    f[3] = v.w;
  } else {
    detail::bf16x8_to_float(
        __ldg(reinterpret_cast<const uint4*>(static_cast<const __nv_bfloat16*>(p) + i)), f);
  }
}

template <int KIND>
__global__ void __launch_bounds__(kGemvWarps* detail::kWarp)
    grouped_gemv_kernel(const void* x, const void* w, long long slot_stride, int pool, int n_out,
                        int k, const int* counts, const int* offsets, float* out) {
  constexpr int kVec = KIND == 0 ? 4 : 8;
  const int e = static_cast<int>(blockIdx.y);
  const int rows = counts[e];
  if (rows == 0) return;  // untouched expert: nothing to read
  const mk::Range rr = mk::grouped_rows(offsets, counts, e);
  const char* wbase =
      static_cast<const char*>(w) + mk::expert_slot(e, pool) * slot_stride * (KIND == 0 ? 4 : 2);
  const int warp = static_cast<int>(threadIdx.x) / detail::kWarp;
  const int lane = static_cast<int>(threadIdx.x) % detail::kWarp;
  for (int cj = 0; cj < kGemvColsPerWarp; ++cj) {
    const int j = static_cast<int>(blockIdx.x) * kGemvCols + warp * kGemvColsPerWarp + cj;
    if (j >= n_out) break;  // uniform per warp
    for (long long r0 = rr.begin; r0 < rr.end; r0 += kGemvRowChunk) {
      const int nr = static_cast<int>(min(static_cast<long long>(kGemvRowChunk), rr.end - r0));
      float acc[kGemvRowChunk];
#pragma unroll
      for (int r = 0; r < kGemvRowChunk; ++r) acc[r] = 0.0f;
      for (int c = lane * kVec; c < k; c += detail::kWarp * kVec) {
        float wv[kVec];
        load_vec<KIND>(wbase, static_cast<long long>(j) * k + c, wv);
#pragma unroll
        for (int r = 0; r < kGemvRowChunk; ++r) {
          if (r >= nr) break;
          float xv[kVec];
          load_vec<KIND>(x, (r0 + r) * k + c, xv);
#pragma unroll
          for (int i = 0; i < kVec; ++i) acc[r] = fmaf(xv[i], wv[i], acc[r]);
        }
      }
#pragma unroll
      for (int r = 0; r < kGemvRowChunk; ++r) {
        if (r >= nr) break;
        const float v = detail::warp_sum(acc[r]);
        if (lane == 0) out[(r0 + r) * n_out + j] = v;
      }
    }
  }
}

constexpr int kPermThreads = 256;

// counts[e] for e = blockIdx.x (no atomics: deterministic).
__global__ void expert_count_kernel(const int* ids, int assignments, int* counts) {
  __shared__ int part[kPermThreads / detail::kWarp];
  const int e = blockIdx.x;
  int c = 0;
  for (int a = threadIdx.x; a < assignments; a += blockDim.x) c += ids[a] == e ? 1 : 0;
#pragma unroll
  for (int o = detail::kWarp / 2; o > 0; o >>= 1) c += __shfl_xor_sync(0xffffffffu, c, o);
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = c;
  __syncthreads();
  if (threadIdx.x == 0) {
    int s = 0;
    for (int i = 0; i < static_cast<int>(blockDim.x) / detail::kWarp; ++i) s += part[i];
    counts[e] = s;
  }
}

__global__ void scan_kernel(const int* counts, int experts, int* offsets) {
  if (blockIdx.x == 0 && threadIdx.x == 0) mk::exclusive_scan(counts, experts, offsets);
}

// Stable scatter for expert e = blockIdx.x: walks the assignments in order in
// chunks of blockDim; a ballot prefix gives each match its rank.
__global__ void expert_scatter_kernel(const int* ids, int assignments, const int* offsets,
                                      int* perm, int* inv) {
  __shared__ int warp_off[kPermThreads / detail::kWarp + 1];
  const int e = blockIdx.x, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int nwarps = static_cast<int>(blockDim.x) / detail::kWarp;
  int running = offsets[e];
  for (int start = 0; start < assignments; start += blockDim.x) {
    const int a = start + static_cast<int>(threadIdx.x);
    const bool match = a < assignments && ids[a] == e;
    const unsigned ballot = __ballot_sync(0xffffffffu, match);
    const int before = __popc(ballot & ((1u << lane) - 1u));
    if (lane == 0) warp_off[warp] = __popc(ballot);
    __syncthreads();
    if (threadIdx.x == 0) {
      int s = 0;
      for (int i = 0; i < nwarps; ++i) {
        const int v = warp_off[i];
        warp_off[i] = s;
        s += v;
      }
      warp_off[nwarps] = s;
    }
    __syncthreads();
    if (match) {
      const int pos = running + warp_off[warp] + before;
      perm[pos] = a;
      inv[a] = pos;
    }
    running += warp_off[nwarps];
    __syncthreads();
  }
}

__global__ void gather_rows_kernel(const float* x, const int* perm, int k, int rows, int hidden,
                                   void* dst, Elem t) {
  const long long n = static_cast<long long>(rows) * hidden;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long p = i / hidden, c = i % hidden;
    const long long tok = perm[p] / k;
    detail::store_elem(dst, t, i, x[tok * hidden + c]);
  }
}

__global__ void pad_rows_kernel(const float* x_perm, const int* offsets, const int* counts,
                                const int* list, int nb, int rows_per, int hidden, void* dst,
                                Elem t) {
  const long long n = static_cast<long long>(nb) * rows_per * hidden;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long c = i % hidden, row = i / hidden;
    const int b = static_cast<int>(row / rows_per), r = static_cast<int>(row % rows_per);
    const int e = list[b];
    // Padding rows are zeros: their GEMM outputs are never read.
    const float v =
        r < counts[e] ? x_perm[(static_cast<long long>(offsets[e]) + r) * hidden + c] : 0.0f;
    detail::store_elem(dst, t, i, v);
  }
}

__global__ void unpad_rows_kernel(const float* padded, const int* offsets, const int* counts,
                                  const int* list, int nb, int rows_per, int hidden,
                                  float* y_perm) {
  const long long n = static_cast<long long>(nb) * rows_per * hidden;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long c = i % hidden, row = i / hidden;
    const int b = static_cast<int>(row / rows_per), r = static_cast<int>(row % rows_per);
    const int e = list[b];
    if (r < counts[e]) y_perm[(static_cast<long long>(offsets[e]) + r) * hidden + c] = padded[i];
  }
}

__global__ void swiglu_kernel(const float* gu, int rows, int f, void* out, Elem t) {
  const long long n = static_cast<long long>(rows) * f;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long r = i / f, c = i % f;
    const float g = gu[r * 2 * f + c], u = gu[r * 2 * f + f + c];
    detail::store_elem(out, t, i, g / (1.0f + expf(-g)) * u);
  }
}

__global__ void combine_kernel(const float* y_perm, const int* inv, const float* w, int tokens,
                               int k, int hidden, float* out, bool accumulate) {
  const long long n = static_cast<long long>(tokens) * hidden;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long t = i / hidden, c = i % hidden;
    float acc = accumulate ? out[i] : 0.0f;
    for (int j = 0; j < k; ++j) {
      const long long a = t * k + j;
      acc = fmaf(w[a], y_perm[static_cast<long long>(inv[a]) * hidden + c], acc);
    }
    out[i] = acc;
  }
}

constexpr int kNormThreads = 256;
__global__ void rmsnorm_kernel(const float* x, int n, float eps, float* out) {
  __shared__ float part[kNormThreads / detail::kWarp];
  const float* xr = x + static_cast<long long>(blockIdx.x) * n;
  float* orow = out + static_cast<long long>(blockIdx.x) * n;
  float ss = 0.0f;
  for (int i = threadIdx.x; i < n; i += blockDim.x) ss = fmaf(xr[i], xr[i], ss);
  ss = detail::warp_sum(ss);
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = ss;
  __syncthreads();
  if (threadIdx.x < 32) {
    float v = threadIdx.x < blockDim.x / 32 ? part[threadIdx.x] : 0.0f;
    v = detail::warp_sum(v);
    if (threadIdx.x == 0) part[0] = v;
  }
  __syncthreads();
  const float inv = 1.0f / sqrtf(part[0] / static_cast<float>(n) + eps);
  for (int i = threadIdx.x; i < n; i += blockDim.x) orow[i] = xr[i] * inv;
}

__global__ void add_kernel(float* y, const float* x, long long n) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x)
    y[i] += x[i];
}

void check_shape(bool ok, const char* what) {
  if (!ok) throw_on_error(cudaErrorInvalidValue, what, __FILE__, __LINE__);
}

}  // namespace

void route(const float* logits, const float* bias, int tokens, int experts, int k,
           bool sigmoid_grouped, int n_group, int topk_group, bool normalize, float* scratch,
           int* ids, float* w, cudaStream_t st) {
  check_shape(experts > 0 && k > 0 && k <= experts, "route: need 0 < k <= experts");
  check_shape(!sigmoid_grouped || (n_group > 0 && experts % n_group == 0 && topk_group <= 64),
              "route: grouped routing needs experts % n_group == 0 and topk_group <= 64");
  if (tokens <= 0) return;
  if (experts <= kRouteMaxExperts && (!sigmoid_grouped || n_group <= kRouteMaxGroups)) {
    const std::size_t smem = sizeof(float) * kRouteWarps * route_region_floats(experts);
    route_warp_kernel<<<static_cast<unsigned>(mk::ceil_div(tokens, kRouteWarps)),
                        kRouteWarps * detail::kWarp, smem, st>>>(
        logits, bias, tokens, experts, k, sigmoid_grouped, n_group, topk_group, normalize, ids, w);
    MOEK_CHECK_LAUNCH("route_warp");
    return;
  }
  // Fallback for more experts than one warp's shared memory holds: one thread
  // per token running route_token with global scratch.
  const int per = mk::routing_scratch_floats(experts, n_group);
  route_kernel<<<static_cast<unsigned>(mk::ceil_div(tokens, 64)), 64, 0, st>>>(
      logits, bias, tokens, experts, k, sigmoid_grouped, n_group, topk_group, normalize, scratch,
      per, ids, w);
  MOEK_CHECK_LAUNCH("route");
}

void permute_index(const int* ids, int assignments, int experts, int* counts, int* offsets,
                   int* perm, int* inv, cudaStream_t st) {
  check_shape(experts > 0, "permute_index: experts must be positive");
  expert_count_kernel<<<static_cast<unsigned>(experts), kPermThreads, 0, st>>>(ids, assignments,
                                                                               counts);
  MOEK_CHECK_LAUNCH("expert_count");
  scan_kernel<<<1, 1, 0, st>>>(counts, experts, offsets);
  MOEK_CHECK_LAUNCH("scan");
  if (assignments <= 0) return;
  expert_scatter_kernel<<<static_cast<unsigned>(experts), kPermThreads, 0, st>>>(
      ids, assignments, offsets, perm, inv);
  MOEK_CHECK_LAUNCH("expert_scatter");
}

void gather_rows(const float* x, const int* perm, int k, int rows, int hidden, void* dst, Elem t,
                 cudaStream_t st) {
  const long long n = static_cast<long long>(rows) * hidden;
  if (n <= 0) return;
  gather_rows_kernel<<<grid_for(n, 256), 256, 0, st>>>(x, perm, k, rows, hidden, dst, t);
  MOEK_CHECK_LAUNCH("gather_rows");
}

void pad_rows(const float* x_perm, const int* offsets, const int* counts, const int* list, int nb,
              int rows_per, int hidden, void* dst, Elem t, cudaStream_t st) {
  const long long n = static_cast<long long>(nb) * rows_per * hidden;
  if (n <= 0) return;
  pad_rows_kernel<<<grid_for(n, 256), 256, 0, st>>>(x_perm, offsets, counts, list, nb, rows_per,
                                                    hidden, dst, t);
  MOEK_CHECK_LAUNCH("pad_rows");
}

void unpad_rows(const float* padded, const int* offsets, const int* counts, const int* list, int nb,
                int rows_per, int hidden, float* y_perm, cudaStream_t st) {
  const long long n = static_cast<long long>(nb) * rows_per * hidden;
  if (n <= 0) return;
  unpad_rows_kernel<<<grid_for(n, 256), 256, 0, st>>>(padded, offsets, counts, list, nb, rows_per,
                                                      hidden, y_perm);
  MOEK_CHECK_LAUNCH("unpad_rows");
}

bool grouped_gemv_supported(Elem t, int k) {
  return (t == Elem::bf16 && k % 8 == 0) || (t == Elem::f32 && k % 4 == 0);
}

void grouped_gemv(const void* x, const void* w, long long slot_stride, int pool, int experts,
                  int n_out, int k, Elem t, const int* counts, const int* offsets, float* out,
                  cudaStream_t st) {
  check_shape(grouped_gemv_supported(t, k) && pool > 0 && experts > 0 && n_out > 0,
              "grouped_gemv: needs bf16 with k % 8 == 0 or fp32 with k % 4 == 0");
  check_shape(experts <= 65535, "grouped_gemv: at most 65535 experts");
  const dim3 grid(static_cast<unsigned>(mk::ceil_div(n_out, kGemvCols)),
                  static_cast<unsigned>(experts));
  if (t == Elem::bf16)
    grouped_gemv_kernel<1><<<grid, kGemvWarps * detail::kWarp, 0, st>>>(
        x, w, slot_stride, pool, n_out, k, counts, offsets, out);
  else
    grouped_gemv_kernel<0><<<grid, kGemvWarps * detail::kWarp, 0, st>>>(
        x, w, slot_stride, pool, n_out, k, counts, offsets, out);
  MOEK_CHECK_LAUNCH("grouped_gemv");
}

void swiglu(const float* gu, int rows, int f, void* out, Elem t, cudaStream_t st) {
  const long long n = static_cast<long long>(rows) * f;
  if (n <= 0) return;
  swiglu_kernel<<<grid_for(n, 256), 256, 0, st>>>(gu, rows, f, out, t);
  MOEK_CHECK_LAUNCH("swiglu");
}

void combine(const float* y_perm, const int* inv, const float* w, int tokens, int k, int hidden,
             float* out, bool accumulate, cudaStream_t st) {
  const long long n = static_cast<long long>(tokens) * hidden;
  if (n <= 0) return;
  combine_kernel<<<grid_for(n, 256), 256, 0, st>>>(y_perm, inv, w, tokens, k, hidden, out,
                                                   accumulate);
  MOEK_CHECK_LAUNCH("combine");
}

void rmsnorm(const float* x, int rows, int n, float eps, float* out, cudaStream_t st) {
  if (rows <= 0 || n <= 0) return;
  rmsnorm_kernel<<<static_cast<unsigned>(rows), kNormThreads, 0, st>>>(x, n, eps, out);
  MOEK_CHECK_LAUNCH("rmsnorm");
}

void add_inplace(float* y, const float* x, long long n, cudaStream_t st) {
  if (n <= 0) return;
  add_kernel<<<grid_for(n, 256), 256, 0, st>>>(y, x, n);
  MOEK_CHECK_LAUNCH("add_inplace");
}

}  // namespace moekernels::cuda
