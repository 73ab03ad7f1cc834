// Attention over the probe's KV cache layouts (contiguous or paged), GQA and
// MLA-absorbed (shared K/V latent rows), fp32, bf16 or fp8 e4m3 cache (e4m3
// dequantised on load with the per-tensor scale, moekernels::e4m3_dequantize). One kernel serves
// decode and causal prefill: a block owns a tile of R "rows" (query position x
// head of one KV group) and a split of the keys; it walks the split in tiles of
// KT keys with an online softmax (flash-style), keeping only R x v accumulators
// in registers. Splits (flash-decoding) are merged by attention_merge_kernel.
#include <algorithm>

#include "common.cuh"
#include "mla_decode.cuh"

namespace moekernels::cuda {

namespace {

namespace mk = moekernels;
constexpr int kThreads = 256;
constexpr int kMaxAcc = 32;                   // accumulators per thread: R * vd <= 256 * 32
constexpr long long kSmemBudget = 96 * 1024;  // fits sm_80 .. sm_120 with the opt-in
constexpr float kNegBig = -3.0e38f;

struct Plan {
  int rows_total = 0;  // Q * group
  int group = 0;
  int r = 0;      // rows per block
  int kt = 0;     // keys per tile
  int tiles = 0;  // row tiles
  int splits = 1;
  long long chunk = 0;  // keys per split (multiple of kt)
  long long smem = 0;
};

long long smem_for(const AttentionArgs& a, int r, int kt) {
  const long long floats = static_cast<long long>(r) * a.qk + static_cast<long long>(kt) * a.qk +
                           (a.shared_kv ? 0 : static_cast<long long>(kt) * a.vd) +
                           static_cast<long long>(r) * kt + r;
  return floats * 4;
}

Plan make_plan(const AttentionArgs& a, int sms) {
  Plan p;
  p.group = a.heads / a.kv_heads;
  p.rows_total = a.queries * p.group;
  p.kt = a.qk <= 256 ? 32 : 16;
  int r = std::min({p.rows_total, 64, (kThreads * kMaxAcc) / std::max(1, a.vd)});
  while (r > 1 && smem_for(a, r, p.kt) > kSmemBudget) --r;
  p.r = std::max(1, r);
  p.smem = smem_for(a, p.r, p.kt);
  p.tiles = static_cast<int>(mk::ceil_div(p.rows_total, p.r));
  const long long base_blocks = static_cast<long long>(p.tiles) * a.batch * a.kv_heads;
  const long long key_tiles = mk::ceil_div(a.context, p.kt);
  long long splits = sms > 0 ? mk::ceil_div(2LL * sms, base_blocks) : 1;
  splits = std::max(1LL, std::min({splits, mk::ceil_div(key_tiles, 4), 64LL}));
  p.splits = static_cast<int>(splits);
  p.chunk = mk::ceil_div(key_tiles, splits) * p.kt;
  p.splits = static_cast<int>(mk::ceil_div(a.context, p.chunk));  // no empty trailing split
  return p;
}

__device__ __forceinline__ long long cache_row(const AttentionArgs& a, int b, long long j) {
  if (a.page_table == nullptr) return static_cast<long long>(b) * a.context + j;
  const int pg = a.page_table[static_cast<long long>(b) * a.pages_per_seq + j / a.page];
  return static_cast<long long>(pg) * a.page + j % a.page;
}

// Loads `nb` cache rows (dim elements each, head kvh) starting at key j0 into
// dst [kt, dim] as float; rows >= nb are zero. 16-byte loads when possible.
__device__ void load_tile(const AttentionArgs& a, const void* src, int dim, int b, int kvh,
                          long long j0, int nb, int kt, float* dst) {
  const int per = a.kv == Elem::e4m3 ? 16 : a.kv == Elem::bf16 ? 8 : 4;  // per 16 bytes
  const bool vec = dim % per == 0;
  if (vec) {
    const int chunks = dim / per;
    for (int idx = threadIdx.x; idx < kt * chunks; idx += blockDim.x) {
      const int j = idx / chunks, c0 = (idx % chunks) * per;
      float* d = dst + j * dim + c0;
      if (j >= nb) {
        for (int i = 0; i < per; ++i) d[i] = 0.0f;
        continue;
      }
      const long long off = (cache_row(a, b, j0 + j) * a.kv_heads + kvh) * dim + c0;
      if (a.kv == Elem::e4m3) {
        const uint4 raw =
            *reinterpret_cast<const uint4*>(static_cast<const std::uint8_t*>(src) + off);
        const std::uint8_t* q8 = reinterpret_cast<const std::uint8_t*>(&raw);
#pragma unroll
        for (int i = 0; i < 16; ++i) d[i] = mk::e4m3_dequantize(q8[i], a.kv_scale);
      } else if (a.kv == Elem::bf16) {
        const uint4 raw =
            *reinterpret_cast<const uint4*>(static_cast<const __nv_bfloat16*>(src) + off);
        const __nv_bfloat162* h2 = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const float2 f = __bfloat1622float2(h2[i]);
          d[2 * i] = f.x;
          d[2 * i + 1] = f.y;
        }
      } else {
        const float4 f = *reinterpret_cast<const float4*>(static_cast<const float*>(src) + off);
        d[0] = f.x;
        d[1] = f.y;
        d[2] = f.z;
        d[3] = f.w;
      }
    }
  } else {
    for (int idx = threadIdx.x; idx < kt * dim; idx += blockDim.x) {
      const int j = idx / dim, c = idx % dim;
      if (j >= nb) {
        dst[idx] = 0.0f;
        continue;
      }
      const long long off = (cache_row(a, b, j0 + j) * a.kv_heads + kvh) * dim + c;
      dst[idx] = a.kv == Elem::e4m3
                     ? mk::e4m3_dequantize(static_cast<const std::uint8_t*>(src)[off], a.kv_scale)
                     : detail::load_elem(src, a.kv, off);
    }
  }
}

__global__ void __launch_bounds__(kThreads)
    attention_kernel(AttentionArgs a, Plan p, float* part_acc, float* part_ml) {
  extern __shared__ float smem[];
  float* qs = smem;                                  // [r, qk]
  float* ks = qs + p.r * a.qk;                       // [kt, qk]
  float* vs = ks + p.kt * a.qk;                      // [kt, vd] (unused when shared)
  float* ps = vs + (a.shared_kv ? 0 : p.kt * a.vd);  // [r, kt]
  float* rscale = ps + p.r * p.kt;                   // [r]

  const int tile = blockIdx.x;
  const int b = static_cast<int>(blockIdx.y) / a.kv_heads,
            kvh = static_cast<int>(blockIdx.y) % a.kv_heads;
  const int split = blockIdx.z;
  const int row0 = tile * p.r;
  const int nrows = min(p.r, p.rows_total - row0);
  const long long first_pos = a.context - a.queries;

  // Row r -> (query qi, head h): rows are query-major, heads of the group minor.
  auto row_q = [&](int r) { return (row0 + r) / p.group; };
  auto row_h = [&](int r) { return kvh * p.group + (row0 + r) % p.group; };

  for (int idx = threadIdx.x; idx < p.r * a.qk; idx += blockDim.x) {
    const int r = idx / a.qk, c = idx % a.qk;
    qs[idx] =
        r < nrows
            ? a.q[((static_cast<long long>(b) * a.queries + row_q(r)) * a.heads + row_h(r)) * a.qk +
                  c]
            : 0.0f;
  }

  float acc[kMaxAcc];
#pragma unroll
  for (int i = 0; i < kMaxAcc; ++i) acc[i] = 0.0f;
  mk::OnlineSoftmax st = mk::online_softmax_init();
  const long long my_pos = threadIdx.x < nrows ? first_pos + row_q(threadIdx.x) : -1;
  const long long max_pos = first_pos + row_q(nrows - 1);
  const long long k_begin = static_cast<long long>(split) * p.chunk;
  const long long k_end = min(min(k_begin + p.chunk, a.context), max_pos + 1);
  const int nacc = static_cast<int>(mk::ceil_div(static_cast<long long>(p.r) * a.vd, kThreads));
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = kThreads / 32;

  for (long long j0 = k_begin; j0 < k_end; j0 += p.kt) {
    const int nb = static_cast<int>(min(static_cast<long long>(p.kt), k_end - j0));
    __syncthreads();  // previous tile fully consumed (and qs visible on the first pass)
    load_tile(a, a.k, a.qk, b, kvh, j0, nb, p.kt, ks);
    if (!a.shared_kv) load_tile(a, a.v, a.vd, b, kvh, j0, nb, p.kt, vs);
    __syncthreads();
    // Scores: one warp per (row, key) pair, lanes across the head dimension.
    for (int pair = warp; pair < p.r * p.kt; pair += nwarps) {
      const int r = pair / p.kt, j = pair % p.kt;
      float d = 0.0f;
      for (int c = lane; c < a.qk; c += 32) d = fmaf(qs[r * a.qk + c], ks[j * a.qk + c], d);
      d = detail::warp_sum(d);
      if (lane == 0) ps[pair] = d * a.scale;
    }
    __syncthreads();
    // Online softmax per row (thread r owns row r's running max/normaliser).
    if (threadIdx.x < p.r) {
      const int r = threadIdx.x;
      float* pr = ps + r * p.kt;
      float bm = kNegBig;
      for (int j = 0; j < nb; ++j)
        if (j0 + j <= my_pos) bm = fmaxf(bm, pr[j]);
      rscale[r] = mk::online_softmax_raise(st, bm);
      for (int j = 0; j < p.kt; ++j) {
        const float e = (j < nb && j0 + j <= my_pos) ? expf(pr[j] - st.m) : 0.0f;
        pr[j] = e;
        st.l += e;
      }
    }
    __syncthreads();
    // acc[(r, c)] = acc * scale[r] + sum_j p[r, j] * V[j, c].
#pragma unroll
    for (int i = 0; i < kMaxAcc; ++i) {
      if (i >= nacc) break;
      const int idx = threadIdx.x + i * kThreads;
      if (idx >= p.r * a.vd) break;
      const int r = idx / a.vd, c = idx % a.vd;
      const float* pr = ps + r * p.kt;
      float s = acc[i] * rscale[r];
      if (a.shared_kv)
        for (int j = 0; j < nb; ++j) s = fmaf(pr[j], ks[j * a.qk + c], s);
      else
        for (int j = 0; j < nb; ++j) s = fmaf(pr[j], vs[j * a.vd + c], s);
      acc[i] = s;
    }
  }
  // Publish (m, l) per row, then the accumulators.
  __syncthreads();
  if (threadIdx.x < p.r) {
    ps[threadIdx.x] = st.m;  // reuse ps: [r] maxima then [r] normalisers
    ps[p.r + threadIdx.x] = st.l;
  }
  __syncthreads();
#pragma unroll
  for (int i = 0; i < kMaxAcc; ++i) {
    if (i >= nacc) break;
    const int idx = threadIdx.x + i * kThreads;
    if (idx >= p.r * a.vd) break;
    const int r = idx / a.vd, c = idx % a.vd;
    if (r >= nrows) continue;
    const long long orow = (static_cast<long long>(b) * a.queries + row_q(r)) * a.heads + row_h(r);
    if (p.splits == 1) {
      const float l = ps[p.r + r];
      a.out[orow * a.vd + c] = l > 0.0f ? acc[i] / l : 0.0f;
    } else {
      const long long rows_all = static_cast<long long>(a.batch) * a.queries * a.heads;
      const long long prow = static_cast<long long>(split) * rows_all + orow;
      part_acc[prow * a.vd + c] = acc[i];
      if (c == 0) {
        part_ml[prow * 2] = ps[r];
        part_ml[prow * 2 + 1] = ps[p.r + r];
      }
    }
  }
}

__global__ void attention_merge_kernel(const float* part_acc, const float* part_ml, int splits,
                                       long long rows_all, int vd, float* out) {
  const long long n = rows_all * vd;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long row = i / vd, c = i % vd;
    float m = kNegBig;
    for (int s = 0; s < splits; ++s) m = fmaxf(m, part_ml[(s * rows_all + row) * 2]);
    float l = 0.0f, acc = 0.0f;
    for (int s = 0; s < splits; ++s) {
      const long long pr = s * rows_all + row;
      const float ls = part_ml[pr * 2 + 1];
      if (ls == 0.0f) continue;  // split with no visible keys for this row
      const float f = expf(part_ml[pr * 2] - m);
      l = fmaf(ls, f, l);
      acc = fmaf(part_acc[pr * vd + c], f, acc);
    }
    out[i] = l > 0.0f ? acc / l : 0.0f;
  }
}

__global__ void fill_paged_kernel(void* dst, Elem t, int batch, long long context, int heads,
                                  int dim, const int* table, int page, int pps, std::uint64_t seed,
                                  float kv_scale) {
  const long long n = static_cast<long long>(batch) * context * heads * dim;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    // i is the logical index ((b*L + j)*heads + h)*dim + c.
    const long long c = i % dim, h = (i / dim) % heads,
                    bj = i / (static_cast<long long>(dim) * heads);
    const long long b = bj / context, j = bj % context;
    const long long prow = static_cast<long long>(table[b * pps + j / page]) * page + j % page;
    const float v = mk::pattern_value(seed, static_cast<std::uint64_t>(i));
    const long long at = (prow * heads + h) * dim + c;
    if (t == Elem::f32)
      static_cast<float*>(dst)[at] = v;
    else if (t == Elem::e4m3)
      static_cast<std::uint8_t*>(dst)[at] = mk::e4m3_quantize(v, kv_scale);
    else
      static_cast<std::uint16_t*>(dst)[at] = mk::float_to_bf16_bits(v);
  }
}

__global__ void store_kv_rows_kernel(const float* src, long long ld, int rows, int n, int queries,
                                     long long context, long long first_new, void* cache, Elem t,
                                     float kv_scale) {
  const long long total = static_cast<long long>(rows) * n;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const int r = static_cast<int>(i / n), c = static_cast<int>(i % n);
    const int b = r / queries, qi = r % queries;
    const long long at = (static_cast<long long>(b) * context + first_new + qi) * n + c;
    const float v = src[static_cast<long long>(r) * ld + c];
    if (t == Elem::e4m3)
      static_cast<std::uint8_t*>(cache)[at] = mk::e4m3_quantize(v, kv_scale);
    else
      detail::store_elem(cache, t, at, v);
  }
}

// ---- split-KV decode (one query per sequence, separate K and V) ----------------
// Flash-decoding for GQA/MHA decode: a block owns (sequence b, KV head, a chunk
// of up to kDecMaxGroup query heads of that KV group) and one split of the
// keys, so every K/V tile it loads serves all heads of the chunk. 4 warps; a
// key row is spread over qk/8 lanes with 8 dimensions each (bf16: one 16-byte
// load, fp32: two, fp8: one 8-byte load: 8 codes), 32/(qk/8) keys per warp per
// step, the next step's K/V rows prefetched into registers while the current
// ones are used. q (pre-scaled) and the accumulators of the chunk's heads live
// in registers (2·G·8 floats per lane); partial states merge inside the warp
// by shuffles and across warps in shared memory (softmax_merge), then across
// splits in attention_merge_kernel. Key order, splits and merges: index_math.hpp
// (decode_key, decode_splits, softmax_merge), host-tested.
constexpr int kDecWarps = 4;
constexpr int kDecThreads = kDecWarps * 32;
constexpr int kDecVec = 8;  // dimensions per lane
constexpr int kDecMaxGroup = 8;
constexpr int kDecMaxDim = 256;
constexpr int kDecWaves = 4;     // blocks ~ 4x the SMs
constexpr int kDecMinSteps = 4;  // every split at least 4 steps long
constexpr int kDecMaxSplits = 256;

struct DecodePlan {
  bool ok = false;
  int lanes_per_key = 0, keys_per_warp = 0;
  int g = 0;        // heads per block (power of two <= kDecMaxGroup)
  int gblocks = 0;  // head chunks per KV head
  int splits = 1;
  long long chunk = 0;
};

DecodePlan make_decode_plan(const AttentionArgs& a, int sms) {
  DecodePlan p;
  if (a.force_generic || a.queries != 1 || a.shared_kv || a.qk != a.vd || a.qk % kDecVec != 0 ||
      a.qk > kDecMaxDim)
    return p;
  const int lpk = a.qk / kDecVec;
  if (32 % lpk != 0) return p;
  const int group = a.heads / a.kv_heads;
  p.lanes_per_key = lpk;
  p.keys_per_warp = 32 / lpk;
  p.g = std::min(kDecMaxGroup, mk::pow2_at_least(group));
  p.gblocks = static_cast<int>(mk::ceil_div(group, p.g));
  const long long base = static_cast<long long>(a.batch) * a.kv_heads * p.gblocks;
  const mk::KeySplits ks = mk::decode_splits(
      base, a.context, sms, kDecWaves, kDecWarps * p.keys_per_warp, kDecMinSteps, kDecMaxSplits);
  p.splits = ks.splits;
  p.chunk = ks.chunk;
  p.ok = true;
  return p;
}

// 8 consecutive cache elements as raw bits (bf16: 16 bytes, fp32: 32, e4m3: 8).
struct Raw8 {
  uint4 x, y;
};
template <int KIND>  // 0 fp32, 1 bf16, 2 e4m3
__device__ __forceinline__ Raw8 load_raw8(const void* base, long long off) {
  Raw8 r{};
  if constexpr (KIND == 0) {
    const uint4* p = reinterpret_cast<const uint4*>(static_cast<const float*>(base) + off);
    r.x = __ldg(p);
    r.y = __ldg(p + 1);
  } else if constexpr (KIND == 1) {
    r.x = __ldg(reinterpret_cast<const uint4*>(static_cast<const __nv_bfloat16*>(base) + off));
  } else {
    const uint2 v =
        __ldg(reinterpret_cast<const uint2*>(static_cast<const std::uint8_t*>(base) + off));
    r.x.x = v.x;
    r.x.y = v.y;
  }
  return r;
}
template <int KIND>
__device__ __forceinline__ void to_float8(const Raw8& r, float kv_scale, float* f) {
  // Word by word with shifts: no reinterpreted arrays, so nothing goes to local memory.
  if constexpr (KIND == 0) {
    const unsigned w[8] = {r.x.x, r.x.y, r.x.z, r.x.w, r.y.x, r.y.y, r.y.z, r.y.w};
#pragma unroll
    for (int i = 0; i < 8; ++i) f[i] = __uint_as_float(w[i]);
  } else if constexpr (KIND == 1) {
    detail::bf16x8_to_float(r.x, f);
  } else {
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const unsigned word = i < 4 ? r.x.x : r.x.y;
      const auto code = static_cast<std::uint8_t>((word >> (8 * (i % 4))) & 0xFFu);
      f[i] = mk::e4m3_dequantize(code, kv_scale);
    }
  }
}

template <int G, int KIND>
__global__ void __launch_bounds__(kDecThreads)
    decode_kernel(AttentionArgs a, DecodePlan p, float* part_acc, float* part_ml) {
  __shared__ float red_acc[kDecWarps][G][kDecMaxDim];
  __shared__ float red_m[kDecWarps][G], red_l[kDecWarps][G];
  const int split = static_cast<int>(blockIdx.x);
  const int b = static_cast<int>(blockIdx.y) / a.kv_heads;
  const int kvh = static_cast<int>(blockIdx.y) % a.kv_heads;
  const int group = a.heads / a.kv_heads;
  const int h0 = kvh * group + static_cast<int>(blockIdx.z) * G;
  const int nh = min(G, group - static_cast<int>(blockIdx.z) * G);
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int lpk = p.lanes_per_key, kpw = p.keys_per_warp;
  const int sub = lane / lpk, part = lane % lpk;
  const int d = a.qk, c0 = part * kDecVec;

  float q[G][kDecVec], acc[G][kDecVec], m[G], l[G];
#pragma unroll
  for (int g = 0; g < G; ++g) {
    m[g] = kNegBig;
    l[g] = 0.0f;
#pragma unroll
    for (int i = 0; i < kDecVec; ++i) {
      acc[g][i] = 0.0f;
      q[g][i] = g < nh ? a.q[(static_cast<long long>(b) * a.heads + h0 + g) * d + c0 + i] * a.scale
                       : 0.0f;
    }
  }
  const long long kb = static_cast<long long>(split) * p.chunk;
  const long long ke = min(kb + p.chunk, a.context);
  const long long steps = mk::ceil_div(ke - kb, static_cast<long long>(kDecWarps) * kpw);
  auto offset = [&](long long j) { return (cache_row(a, b, j) * a.kv_heads + kvh) * d + c0; };
  long long j = mk::decode_key(kb, 0, kDecWarps, kpw, warp, sub);
  Raw8 kr{}, vr{};
  if (j < ke) {
    kr = load_raw8<KIND>(a.k, offset(j));
    vr = load_raw8<KIND>(a.v, offset(j));
  }
  for (long long s = 0; s < steps; ++s) {  // the same count on every lane (shuffles below)
    const bool valid = j < ke;
    float kf[kDecVec], vf[kDecVec];
    to_float8<KIND>(kr, a.kv_scale, kf);
    to_float8<KIND>(vr, a.kv_scale, vf);
    const long long jn = mk::decode_key(kb, s + 1, kDecWarps, kpw, warp, sub);
    if (s + 1 < steps && jn < ke) {  // prefetch the next step's rows
      kr = load_raw8<KIND>(a.k, offset(jn));
      vr = load_raw8<KIND>(a.v, offset(jn));
    }
    float dot[G];
#pragma unroll
    for (int g = 0; g < G; ++g) {
      float t = 0.0f;
#pragma unroll
      for (int i = 0; i < kDecVec; ++i) t = fmaf(q[g][i], kf[i], t);
      dot[g] = t;
    }
    for (int o = lpk / 2; o > 0; o >>= 1)
#pragma unroll
      for (int g = 0; g < G; ++g) dot[g] += __shfl_xor_sync(0xffffffffu, dot[g], o);
    if (valid) {
#pragma unroll
      for (int g = 0; g < G; ++g) {
        if (dot[g] > m[g]) {  // raise the running max (rare once it settles)
          const float corr = __expf(m[g] - dot[g]);
          l[g] *= corr;
#pragma unroll
          for (int i = 0; i < kDecVec; ++i) acc[g][i] *= corr;
          m[g] = dot[g];
        }
        const float e = __expf(dot[g] - m[g]);
        l[g] += e;
#pragma unroll
        for (int i = 0; i < kDecVec; ++i) acc[g][i] = fmaf(e, vf[i], acc[g][i]);
      }
    }
    j = jn;
  }
  // Merge the warp's key slots (lanes with the same dimensions, other `sub`).
  for (int o = lpk; o < 32; o <<= 1)
#pragma unroll
    for (int g = 0; g < G; ++g) {
      const float mo = __shfl_xor_sync(0xffffffffu, m[g], o);
      const float lo = __shfl_xor_sync(0xffffffffu, l[g], o);
      const mk::SoftmaxMerge f = mk::softmax_merge(m[g], mo);
      l[g] = l[g] * f.f1 + lo * f.f2;
#pragma unroll
      for (int i = 0; i < kDecVec; ++i) {
        const float ao = __shfl_xor_sync(0xffffffffu, acc[g][i], o);
        acc[g][i] = acc[g][i] * f.f1 + ao * f.f2;
      }
      m[g] = f.m;
    }
  if (sub == 0) {
#pragma unroll
    for (int g = 0; g < G; ++g) {
#pragma unroll
      for (int i = 0; i < kDecVec; ++i) red_acc[warp][g][c0 + i] = acc[g][i];
      if (part == 0) {
        red_m[warp][g] = m[g];
        red_l[warp][g] = l[g];
      }
    }
  }
  __syncthreads();
  const long long rows_all = static_cast<long long>(a.batch) * a.heads;
  for (int idx = static_cast<int>(threadIdx.x); idx < nh * d; idx += kDecThreads) {
    const int g = idx / d, c = idx % d;
    float mm = red_m[0][g], ll = red_l[0][g], aa = red_acc[0][g][c];
#pragma unroll
    for (int w = 1; w < kDecWarps; ++w) {
      const mk::SoftmaxMerge f = mk::softmax_merge(mm, red_m[w][g]);
      ll = ll * f.f1 + red_l[w][g] * f.f2;
      aa = aa * f.f1 + red_acc[w][g][c] * f.f2;
      mm = f.m;
    }
    const long long row = static_cast<long long>(b) * a.heads + h0 + g;
    if (p.splits == 1) {
      a.out[row * d + c] = ll > 0.0f ? aa / ll : 0.0f;
    } else {
      const long long prow = static_cast<long long>(split) * rows_all + row;
      part_acc[prow * d + c] = aa;
      if (c == 0) {
        part_ml[prow * 2] = mm;
        part_ml[prow * 2 + 1] = ll;
      }
    }
  }
}

template <int KIND>
void launch_decode_kind(const AttentionArgs& a, const DecodePlan& p, float* pa, float* pm,
                        cudaStream_t st) {
  const dim3 grid(static_cast<unsigned>(p.splits), static_cast<unsigned>(a.batch * a.kv_heads),
                  static_cast<unsigned>(p.gblocks));
  switch (p.g) {
    case 1:
      decode_kernel<1, KIND><<<grid, kDecThreads, 0, st>>>(a, p, pa, pm);
      break;
    case 2:
      decode_kernel<2, KIND><<<grid, kDecThreads, 0, st>>>(a, p, pa, pm);
      break;
    case 4:
      decode_kernel<4, KIND><<<grid, kDecThreads, 0, st>>>(a, p, pa, pm);
      break;
    default:
      decode_kernel<8, KIND><<<grid, kDecThreads, 0, st>>>(a, p, pa, pm);
      break;
  }
  MOEK_CHECK_LAUNCH("decode_kernel");
}

void check(bool ok, const char* what) {
  if (!ok) throw_on_error(cudaErrorInvalidValue, what, __FILE__, __LINE__);
}

void validate(const AttentionArgs& a) {
  check(a.batch > 0 && a.queries > 0 && a.heads > 0 && a.kv_heads > 0 && a.qk > 0 && a.vd > 0,
        "attention: shapes must be positive");
  check(a.heads % a.kv_heads == 0, "attention: heads must be a multiple of kv_heads");
  check(a.context >= a.queries, "attention: context must include the new queries");
  check(!a.shared_kv || a.vd <= a.qk, "attention: shared K/V needs v_dim <= qk_dim");
  check(a.vd <= kThreads * kMaxAcc, "attention: v_dim above 8192 is not supported");
  check(a.page_table == nullptr ||
            (a.page > 0 && a.pages_per_seq * static_cast<long long>(a.page) >= a.context),
        "attention: page table too small for the context");
  check(a.q != nullptr && a.k != nullptr && a.out != nullptr && (a.shared_kv || a.v != nullptr),
        "attention: null pointer");
  check(a.kv != Elem::e4m3 || (a.kv_scale > 0.0f && a.kv_scale < 3.0e38f),
        "attention: e4m3 cache needs a positive finite kv_scale");
}

}  // namespace

long long attention_workspace_bytes(const AttentionArgs& a, int sms) {
  validate(a);
  const detail::MlaPlan ml = detail::mla_plan(a, sms);
  const DecodePlan d = make_decode_plan(a, sms);
  const int splits = ml.ok ? ml.splits : d.ok ? d.splits : make_plan(a, sms).splits;
  if (splits <= 1) return 0;
  const long long rows_all = static_cast<long long>(a.batch) * a.queries * a.heads;
  return static_cast<long long>(splits) * rows_all * (a.vd + 2) * 4;
}

bool attention_uses_decode_kernel(const AttentionArgs& a, int sms) {
  validate(a);
  return make_decode_plan(a, sms).ok || detail::mla_plan(a, sms).ok;
}

bool attention_uses_mla_kernel(const AttentionArgs& a, int sms) {
  validate(a);
  return detail::mla_plan(a, sms).ok;
}

namespace {
long long generic_workspace_bytes(const AttentionArgs& a, int sms) {
  const Plan p = make_plan(a, sms);
  if (p.splits <= 1) return 0;
  const long long rows_all = static_cast<long long>(a.batch) * a.queries * a.heads;
  return static_cast<long long>(p.splits) * rows_all * (a.vd + 2) * 4;
}

// The split-KV kernels' partial results in the caller's workspace: accumulators
// [splits][rows][vd], then (max, sum) pairs [splits][rows]; none with one split.
void split_parts(const AttentionArgs& a, int splits, long long rows_all, void* workspace,
                 long long workspace_bytes, int sms, float*& pa, float*& pm) {
  pa = pm = nullptr;
  if (splits <= 1) return;
  check(workspace != nullptr && workspace_bytes >= attention_workspace_bytes(a, sms),
        "attention: workspace smaller than attention_workspace_bytes()");
  pa = static_cast<float*>(workspace);
  pm = pa + static_cast<long long>(splits) * rows_all * a.vd;
}

}  // namespace

void attention(const AttentionArgs& a, void* workspace, long long workspace_bytes, int sms,
               cudaStream_t st) {
  validate(a);
  if (const detail::MlaPlan ml = detail::mla_plan(a, sms); ml.ok) {
    const long long rows_all = static_cast<long long>(a.batch) * a.heads;
    float *pa = nullptr, *pm = nullptr;
    split_parts(a, ml.splits, rows_all, workspace, workspace_bytes, sms, pa, pm);
    detail::mla_launch(a, ml, pa, pm, st);
    if (ml.splits > 1) {
      attention_merge_kernel<<<detail::grid_for(rows_all * a.vd, 256), 256, 0, st>>>(
          pa, pm, ml.splits, rows_all, a.vd, a.out);
      MOEK_CHECK_LAUNCH("attention_merge_kernel");
    }
    return;
  }
  if (const DecodePlan d = make_decode_plan(a, sms); d.ok) {
    const long long rows_all = static_cast<long long>(a.batch) * a.heads;
    float *pa = nullptr, *pm = nullptr;
    split_parts(a, d.splits, rows_all, workspace, workspace_bytes, sms, pa, pm);
    check(static_cast<long long>(a.batch) * a.kv_heads <= 65535 && d.gblocks <= 65535,
          "attention: grid too large");
    if (a.kv == Elem::bf16)
      launch_decode_kind<1>(a, d, pa, pm, st);
    else if (a.kv == Elem::e4m3)
      launch_decode_kind<2>(a, d, pa, pm, st);
    else
      launch_decode_kind<0>(a, d, pa, pm, st);
    if (d.splits > 1) {
      attention_merge_kernel<<<detail::grid_for(rows_all * a.vd, 256), 256, 0, st>>>(
          pa, pm, d.splits, rows_all, a.vd, a.out);
      MOEK_CHECK_LAUNCH("attention_merge_kernel");
    }
    return;
  }
  const Plan p = make_plan(a, sms);
  const long long rows_all = static_cast<long long>(a.batch) * a.queries * a.heads;
  float* part_acc = nullptr;
  float* part_ml = nullptr;
  if (p.splits > 1) {
    check(workspace != nullptr && workspace_bytes >= generic_workspace_bytes(a, sms),
          "attention: workspace smaller than attention_workspace_bytes()");
    part_acc = static_cast<float*>(workspace);
    part_ml = part_acc + static_cast<long long>(p.splits) * rows_all * a.vd;
  }
  check(static_cast<long long>(a.batch) * a.kv_heads <= 65535 && p.splits <= 65535,
        "attention: grid too large");
  throw_on_error(cudaFuncSetAttribute(attention_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      static_cast<int>(p.smem)),
                 "cudaFuncSetAttribute(attention_kernel)", __FILE__, __LINE__);
  const dim3 grid(static_cast<unsigned>(p.tiles), static_cast<unsigned>(a.batch * a.kv_heads),
                  static_cast<unsigned>(p.splits));
  attention_kernel<<<grid, kThreads, static_cast<size_t>(p.smem), st>>>(a, p, part_acc, part_ml);
  MOEK_CHECK_LAUNCH("attention_kernel");
  if (p.splits > 1) {
    attention_merge_kernel<<<detail::grid_for(rows_all * a.vd, 256), 256, 0, st>>>(
        part_acc, part_ml, p.splits, rows_all, a.vd, a.out);
    MOEK_CHECK_LAUNCH("attention_merge_kernel");
  }
}

void fill_paged(void* dst, Elem t, int batch, long long context, int heads, int dim,
                const int* page_table, int page, int pages_per_seq, std::uint64_t seed,
                cudaStream_t st, float kv_scale) {
  const long long n = static_cast<long long>(batch) * context * heads * dim;
  if (n <= 0) return;
  fill_paged_kernel<<<detail::grid_for(n, 256), 256, 0, st>>>(
      dst, t, batch, context, heads, dim, page_table, page, pages_per_seq, seed, kv_scale);
  MOEK_CHECK_LAUNCH("fill_paged");
}

void store_kv_rows(const float* src, long long ld, int rows, int n, int queries, long long context,
                   long long first_new, void* cache, Elem t, float kv_scale, cudaStream_t st) {
  const long long total = static_cast<long long>(rows) * n;
  if (total <= 0) return;
  check(queries > 0 && first_new >= 0 && first_new + queries <= context && ld >= n,
        "store_kv_rows: bad shape");
  store_kv_rows_kernel<<<detail::grid_for(total, 256), 256, 0, st>>>(
      src, ld, rows, n, queries, context, first_new, cache, t, kv_scale);
  MOEK_CHECK_LAUNCH("store_kv_rows");
}

}  // namespace moekernels::cuda
