// Absorbed-MLA split-KV decode attention on tensor cores (mma.sync m16n8k16,
// bf16 in, fp32 accumulate). The cache holds per position one row of
// qk = kv_lora_rank + rope elements shared by every query head; the values are
// its first v = kv_lora_rank elements. A block owns (sequence, head group of up
// to 64 heads, one split of the context) and walks the split in tiles of 32
// positions: each tile is copied once from global memory (16-byte cp.async,
// three stages in flight; e4m3 codes converted to bf16 in shared memory) and
// serves every head of the group, so the latent row is read once per head
// group (once for all heads up to 64). Per head tile of 16 (the mma M), two
// warps: each computes S = Q·Kᵀ over half of the qk dimensions for all 32
// keys, they add their halves through shared memory, then both run the same
// online softmax and each accumulates P·V for half of the v dimensions (16 x
// v/2 fp32 accumulators in registers). P reuses the S accumulators as mma A
// fragments. Queries are pre-scaled by scale·log2(e) (·kv_scale for e4m3) and
// rounded to bf16, as the production kernels feed them. Fragment and ldmatrix
// index math, head groups and splits: index_math.hpp (mma_*, mla_*), host-tested.
//
// The same kernel serves GQA/MHA decode (SHARED = false): a block owns one KV
// head's query heads (a group of 8 is one head tile of 16 rows, half of them
// padding) and copies separate K [qk] and V [v] tiles, so each K/V row is read
// once for all heads of its group and the dot products run on tensor cores.
// The SIMT split-KV kernel (attention.cu) did them on CUDA cores: at a group of
// 8 it was issue-bound at 18-29% of the H200's triad bandwidth (2026-11-27).
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <algorithm>

#include "common.cuh"
#include "mla_decode.cuh"
#include "mma.cuh"

namespace moekernels::cuda::detail {

namespace {

namespace mk = moekernels;
constexpr int kTile = kMlaTileKeys;
constexpr int kStages = 3;        // KV tiles in flight (cp.async groups)
constexpr int kMaxHeadTiles = 4;  // 64 heads per block: 8 warps
constexpr int kSplitCostTiles = 2;
constexpr int kMaxSplits = 256;
constexpr int kPad = 8;  // bf16 elements of row padding: ldmatrix rows hit distinct banks
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;
constexpr float kNeg = -3.0e38f;

// Barrier of the two warps of one head tile (ids 1..kMaxHeadTiles; 0 is __syncthreads).
__device__ __forceinline__ void pair_sync(int id) {
  asm volatile("bar.sync %0, 64;\n" ::"r"(id) : "memory");
}
// Two e4m3 codes (low byte first) -> two bf16 (exact: e4m3 values are bf16 values).
__device__ __forceinline__ unsigned e4m3x2_to_bf16x2(unsigned short codes) {
  const __half2_raw hr = __nv_cvt_fp8x2_to_halfraw2(codes, __NV_E4M3);
  const float2 f = __half22float2(__half2(hr));
  return pack_bf16(f.x, f.y);
}

__device__ __forceinline__ long long mla_cache_row(const AttentionArgs& a, int b, long long j) {
  if (a.page_table == nullptr) return static_cast<long long>(b) * a.context + j;
  const int pg = a.page_table[static_cast<long long>(b) * a.pages_per_seq + j / a.page];
  return static_cast<long long>(pg) * a.page + j % a.page;
}

// NT: n-tiles of 8 value dimensions per warp (v = 16·NT, each warp half of it).
// SHARED: absorbed MLA (V = the first v elements of the K row); else GQA with
// separate K [qk] and V [v] rows per KV head.
template <int NT, bool FP8, bool SHARED>
__global__ void __launch_bounds__(64 * kMaxHeadTiles, 1)
    tc_decode_kernel(AttentionArgs a, MlaPlan p, float* part_acc, float* part_ml) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  extern __shared__ __align__(16) unsigned char smem[];
  constexpr int vd = 16 * NT;
  const int qk = a.qk, ld = qk + kPad, ldv = SHARED ? ld : vd + kPad;
  const int tiles = p.tiles, nthreads = static_cast<int>(blockDim.x);
  const int group = a.heads / a.kv_heads;  // query heads per KV head (MLA: all)
  // Layout (tc_decode_smem_bytes): Q; K tiles; V tiles (GQA); raw e4m3 K (and V)
  // stages; the S exchange.
  __nv_bfloat16* qs = reinterpret_cast<__nv_bfloat16*>(smem);  // [tiles·16][ld]
  __nv_bfloat16* kbuf = qs + tiles * 16 * ld;  // bf16: kStages x [32][ld]; e4m3: one [32][ld]
  __nv_bfloat16* vbuf = kbuf + (FP8 ? 1 : kStages) * kTile * ld;  // GQA: the same for V (ldv)
  unsigned char* raw =
      reinterpret_cast<unsigned char*>(vbuf + (SHARED ? 0 : (FP8 ? 1 : kStages) * kTile * ldv));
  unsigned char* rawv = raw + (FP8 ? kStages * kTile * qk : 0);  // GQA e4m3: raw V stages
  float* red = reinterpret_cast<float*>(rawv + (FP8 && !SHARED ? kStages * kTile * vd : 0));

  // Head groups fastest: the groups of one (sequence, split) run side by side, so a
  // tile the first group fetched from HBM is still in L2 for the others.
  const int kvh = static_cast<int>(blockIdx.x) / p.groups;
  const int grp = static_cast<int>(blockIdx.x) % p.groups, split = static_cast<int>(blockIdx.y),
            b = static_cast<int>(blockIdx.z);
  const int hbase = kvh * group;  // first query head of this KV head
  const int tid = static_cast<int>(threadIdx.x), warp = tid / 32, lane = tid % 32;
  const int wt = warp / 2, half = warp % 2;
  const long long kb = static_cast<long long>(split) * p.chunk;
  const long long ke = min(kb + p.chunk, a.context);
  const int ntiles = static_cast<int>(mk::ceil_div(ke - kb, kTile));

  // Q of the group's heads, pre-scaled, bf16, zero rows past the last head. Four
  // floats per load, four loads in flight per thread: a scalar loop here cost
  // about 100 us per block at 64 heads x 576.
  const float qf = a.scale * kLog2e * (FP8 ? a.kv_scale : 1.0f);
  const int q4 = qk / 4;
#pragma unroll 4
  for (int idx = tid; idx < tiles * 16 * q4; idx += nthreads) {
    const int r = idx / q4, c = (idx % q4) * 4;
    const int gh = mk::mla_head(grp, tiles, 0, r);
    float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (gh < group)
      v = __ldg(reinterpret_cast<const float4*>(
          a.q + (static_cast<long long>(b) * a.heads + hbase + gh) * qk + c));
    uint2 packed;
    packed.x = pack_bf16(v.x * qf, v.y * qf);
    packed.y = pack_bf16(v.z * qf, v.w * qf);
    *reinterpret_cast<uint2*>(qs + r * ld + c) = packed;
  }

  // Tile t of the split -> stage t % kStages (one cp.async group per tile, empty past the end).
  auto issue = [&](int t) {
    if (t < ntiles) {
      const long long j0 = kb + static_cast<long long>(t) * kTile;
      const int stage = t % kStages;
      auto copy = [&](const void* src, int dim, __nv_bfloat16* buf, int ldb, unsigned char* rs) {
        (void)buf;  // one of buf (bf16 cache) and rs (e4m3 stages) is used
        (void)ldb;
        (void)rs;
        const int cpr = FP8 ? dim / 16 : dim / 8;  // 16-byte chunks per row
        for (int idx = tid; idx < kTile * cpr; idx += nthreads) {
          const int key = idx / cpr, c = idx % cpr;
          const long long j = j0 + key;
          const bool ok = j < ke;
          const long long row = mla_cache_row(a, b, ok ? j : kb) * a.kv_heads + kvh;
          if constexpr (FP8)
            cp_async16(rs + (stage * kTile + key) * dim + c * 16,
                       static_cast<const unsigned char*>(src) + row * dim + c * 16, ok ? 16 : 0);
          else
            cp_async16(buf + (stage * kTile + key) * ldb + c * 8,
                       static_cast<const __nv_bfloat16*>(src) + row * dim + c * 8, ok ? 16 : 0);
        }
      };
      copy(a.k, qk, kbuf, ld, raw);
      if constexpr (!SHARED) copy(a.v, vd, vbuf, ldv, rawv);
    }
    cp_async_commit();
  };
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) issue(s);

  float acc[NT][4];
#pragma unroll
  for (int n = 0; n < NT; ++n)
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[n][i] = 0.0f;
  float m0 = kNeg, m1 = kNeg, l0 = 0.0f, l1 = 0.0f;        // rows g and g + 8 (log2 units)
  const mk::Range kr = mk::block_range(qk / 16, 2, half);  // this warp's k-steps of Q·Kᵀ
  const __nv_bfloat16* qw = qs + wt * 16 * ld;
  const int nbase = half * NT * 8;  // this warp's first value dimension
  float* mine = red + (warp * 32 + lane) * 16;
  const float* other = red + ((warp ^ 1) * 32 + lane) * 16;

  for (int t = 0; t < ntiles; ++t) {
    cp_async_wait<kStages - 2>();
    __syncthreads();  // tile t landed for every thread; tile t-1 fully consumed
    issue(t + kStages - 1);
    const __nv_bfloat16* kt = kbuf;
    const __nv_bfloat16* vt = SHARED ? kbuf : vbuf;
    if constexpr (FP8) {
      auto convert = [&](const unsigned char* rs, int dim, __nv_bfloat16* buf, int ldb) {
        const int cpr = dim / 16;
        for (int idx = tid; idx < kTile * cpr; idx += nthreads) {
          const int key = idx / cpr, c = idx % cpr;
          const uint4 w = *reinterpret_cast<const uint4*>(rs + key * dim + c * 16);
          const unsigned words[4] = {w.x, w.y, w.z, w.w};
          unsigned o[8];
#pragma unroll
          for (int i = 0; i < 4; ++i) {
            o[2 * i] = e4m3x2_to_bf16x2(static_cast<unsigned short>(words[i] & 0xFFFFu));
            o[2 * i + 1] = e4m3x2_to_bf16x2(static_cast<unsigned short>(words[i] >> 16));
          }
          uint4* d = reinterpret_cast<uint4*>(buf + key * ldb + c * 16);
          d[0] = make_uint4(o[0], o[1], o[2], o[3]);
          d[1] = make_uint4(o[4], o[5], o[6], o[7]);
        }
      };
      convert(raw + (t % kStages) * kTile * qk, qk, kbuf, ld);
      if constexpr (!SHARED) convert(rawv + (t % kStages) * kTile * vd, vd, vbuf, ldv);
      __syncthreads();
    } else {
      kt = kbuf + (t % kStages) * kTile * ld;
      vt = SHARED ? kt : vbuf + (t % kStages) * kTile * ldv;
    }

    // S (16 heads x 32 keys) over this warp's half of the qk dimensions.
    float sc[4][4];
#pragma unroll
    for (int n = 0; n < 4; ++n)
#pragma unroll
      for (int i = 0; i < 4; ++i) sc[n][i] = 0.0f;
    for (long long ks = kr.begin; ks < kr.end; ++ks) {
      const int k0 = static_cast<int>(ks) * 16;
      unsigned qa[4];
      const mk::RowCol q = mk::mla_ldm_q(lane, k0);
      ldm_x4(qw + q.row * ld + q.col, qa);
#pragma unroll
      for (int jp = 0; jp < 2; ++jp) {
        unsigned kf[4];
        const mk::RowCol k = mk::mla_ldm_k(lane, jp * 16, k0);
        ldm_x4(kt + k.row * ld + k.col, kf);
        mma_bf16(sc[2 * jp], qa, kf[0], kf[1]);
        mma_bf16(sc[2 * jp + 1], qa, kf[2], kf[3]);
      }
    }
    // Add the partner warp's half (same fragment positions): a + b in both warps.
#pragma unroll
    for (int n = 0; n < 4; ++n)
      reinterpret_cast<float4*>(mine)[n] = make_float4(sc[n][0], sc[n][1], sc[n][2], sc[n][3]);
    pair_sync(1 + wt);
    const long long j0 = kb + static_cast<long long>(t) * kTile;
    float mx0 = kNeg, mx1 = kNeg;
#pragma unroll
    for (int n = 0; n < 4; ++n) {
      const float4 o = reinterpret_cast<const float4*>(other)[n];
      const float ov[4] = {o.x, o.y, o.z, o.w};
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        float s = half == 0 ? sc[n][i] + ov[i] : ov[i] + sc[n][i];
        if (j0 + n * 8 + mk::mma_c_col(lane, i) >= ke) s = kNeg;
        sc[n][i] = s;
        if (i < 2)
          mx0 = fmaxf(mx0, s);
        else
          mx1 = fmaxf(mx1, s);
      }
    }
#pragma unroll
    for (int o = 1; o < 4; o <<= 1) {
      mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, o));
      mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, o));
    }
    // Online softmax per head row (raise the running max, rescale only when it moved).
    const float n0 = fmaxf(m0, mx0), n1 = fmaxf(m1, mx1);
    const float c0 = exp2f(m0 - n0), c1 = exp2f(m1 - n1);
    m0 = n0;
    m1 = n1;
    l0 *= c0;
    l1 *= c1;
    if (c0 != 1.0f || c1 != 1.0f) {
#pragma unroll
      for (int n = 0; n < NT; ++n) {
        acc[n][0] *= c0;
        acc[n][1] *= c0;
        acc[n][2] *= c1;
        acc[n][3] *= c1;
      }
    }
    unsigned pa[2][4];
#pragma unroll
    for (int kk = 0; kk < 2; ++kk)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int n = mk::mla_p_ntile(kk, r), e = mk::mla_p_elem(r, 0);
        const float mr = r % 2 ? m1 : m0;
        const unsigned u = pack_bf16(exp2f(sc[n][e] - mr), exp2f(sc[n][e + 1] - mr));
        pa[kk][r] = u;
        const float lo = __uint_as_float(u << 16), hi = __uint_as_float(u & 0xFFFF0000u);
        if (r % 2)
          l1 += lo + hi;  // the normaliser sums the rounded weights P·V uses
        else
          l0 += lo + hi;
      }
      // O (16 heads x this warp's v/2 dimensions) += P (16 x 32) · V (32 x v/2).
#pragma unroll
    for (int kk = 0; kk < 2; ++kk)
#pragma unroll
      for (int np = 0; np < NT / 2; ++np) {
        unsigned vf[4];
        const mk::RowCol v = mk::mla_ldm_v(lane, kk * 16, nbase + np * 16);
        ldm_x4_trans(vt + v.row * ldv + v.col, vf);
        mma_bf16(acc[2 * np], pa[kk], vf[0], vf[1]);
        mma_bf16(acc[2 * np + 1], pa[kk], vf[2], vf[3]);
      }
  }
  cp_async_wait<0>();

#pragma unroll
  for (int o = 1; o < 4; o <<= 1) {
    l0 += __shfl_xor_sync(0xffffffffu, l0, o);
    l1 += __shfl_xor_sync(0xffffffffu, l1, o);
  }
  const float vscale = FP8 ? a.kv_scale : 1.0f;
  const long long rows_all = static_cast<long long>(a.batch) * a.heads;
#pragma unroll
  for (int n = 0; n < NT; ++n)
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int gh = mk::mla_head(grp, tiles, wt, mk::mma_c_row(lane, i));
      if (gh >= group) continue;
      const int head = hbase + gh;
      const int col = mk::mma_c_col(lane, i);
      const int dim = nbase + n * 8 + col;
      const float l = i < 2 ? l0 : l1, m = i < 2 ? m0 : m1;
      const long long orow = static_cast<long long>(b) * a.heads + head;
      if (p.splits == 1) {
        a.out[orow * vd + dim] = l > 0.0f ? acc[n][i] * vscale / l : 0.0f;
      } else {
        const long long prow = static_cast<long long>(split) * rows_all + orow;
        part_acc[prow * vd + dim] = acc[n][i] * vscale;
        if (half == 0 && n == 0 && col == 0) {
          part_ml[prow * 2] = m * kLn2;  // natural-log units for attention_merge_kernel
          part_ml[prow * 2 + 1] = l;
        }
      }
    }
#else
  (void)a;
  (void)p;
  (void)part_acc;
  (void)part_ml;
  __trap();  // mla_plan() never selects the kernel below sm_80
#endif
}

template <int NT, bool FP8, bool SHARED>
void launch_nt(const AttentionArgs& a, const MlaPlan& p, float* pa, float* pm, cudaStream_t st) {
  throw_on_error(
      cudaFuncSetAttribute(tc_decode_kernel<NT, FP8, SHARED>,
                           cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(p.smem)),
      "cudaFuncSetAttribute(tc_decode_kernel)", __FILE__, __LINE__);
  const dim3 grid(static_cast<unsigned>(a.kv_heads * p.groups), static_cast<unsigned>(p.splits),
                  static_cast<unsigned>(a.batch));
  tc_decode_kernel<NT, FP8, SHARED>
      <<<grid, 64 * p.tiles, static_cast<size_t>(p.smem), st>>>(a, p, pa, pm);
  MOEK_CHECK_LAUNCH("tc_decode_kernel");
}

template <bool FP8>
void launch_kind(const AttentionArgs& a, const MlaPlan& p, float* pa, float* pm, cudaStream_t st) {
  if (!a.shared_kv) {  // GQA: v in {64, 128, 256} (tc_plan)
    if (a.vd == 64)
      launch_nt<4, FP8, false>(a, p, pa, pm, st);
    else if (a.vd == 128)
      launch_nt<8, FP8, false>(a, p, pa, pm, st);
    else
      launch_nt<16, FP8, false>(a, p, pa, pm, st);
    return;
  }
  switch (a.vd) {
    case 64:
      launch_nt<4, FP8, true>(a, p, pa, pm, st);
      break;
    case 128:
      launch_nt<8, FP8, true>(a, p, pa, pm, st);
      break;
    case 256:
      launch_nt<16, FP8, true>(a, p, pa, pm, st);
      break;
    default:
      launch_nt<32, FP8, true>(a, p, pa, pm, st);
      break;
  }
}

// Whether the kernel serves `a` at all (before asking the device).
bool tc_applies(const AttentionArgs& a) {
  if (a.force_generic || !a.q_bf16 || a.queries != 1 || a.batch > 65535 || a.qk % 16 != 0 ||
      (a.kv != Elem::bf16 && a.kv != Elem::e4m3))
    return false;
  if (a.shared_kv)  // absorbed MLA: one latent KV head, V its first v elements
    return a.kv_heads == 1 && a.vd <= a.qk &&
           (a.vd == 64 || a.vd == 128 || a.vd == 256 || a.vd == 512);
  return !a.simt_decode && (a.vd == 64 || a.vd == 128 || a.vd == 256);  // GQA / MHA
}

}  // namespace

MlaPlan mla_plan(const AttentionArgs& a, int sms) {
  MlaPlan p;
  if (!tc_applies(a)) return p;
  int dev = 0, major = 0, optin = 0, per_sm = 0;
  if (cudaGetDevice(&dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, dev) !=
          cudaSuccess) {
    (void)cudaGetLastError();  // no device: the generic kernel's own checks report it
    return p;
  }
  if (major < 8) return p;
  const bool fp8 = a.kv == Elem::e4m3;
  const int group = a.heads / a.kv_heads;
  for (int most = kMaxHeadTiles; most >= 1; --most) {  // fewer heads per block if smem is short
    const mk::MlaHeads h = mk::mla_heads(group, most);
    const long long bytes =
        mk::tc_decode_smem_bytes(a.qk, a.vd, a.shared_kv, h.tiles, fp8, kStages, kTile, kPad);
    if (bytes > optin) continue;
    if (static_cast<long long>(h.groups) * a.kv_heads > 65535) return p;
    // Block slots: one per SM for MLA's 64 heads; GQA's small blocks share an SM
    // (shared memory, 1 KiB reserved per block, bounds them; at most 4).
    const long long resident =
        std::max(1LL, std::min(4LL, static_cast<long long>(per_sm) / (bytes + 1024)));
    const long long row_bytes =
        static_cast<long long>(a.qk + (a.shared_kv ? 0 : a.vd)) * (fp8 ? 1 : 2);
    const int cost = mk::tc_decode_split_cost(std::min(group, 16 * h.tiles), a.qk, kTile, row_bytes,
                                              kSplitCostTiles);
    const mk::KeySplits ks =
        mk::mla_splits(static_cast<long long>(a.batch) * a.kv_heads * h.groups, a.context,
                       static_cast<int>(sms * resident), kTile, kMaxSplits, cost);
    p.groups = h.groups;
    p.tiles = h.tiles;
    p.splits = ks.splits;
    p.chunk = ks.chunk;
    p.smem = bytes;
    p.ok = true;
    return p;
  }
  return p;
}

void mla_launch(const AttentionArgs& a, const MlaPlan& p, float* part_acc, float* part_ml,
                cudaStream_t st) {
  if (a.kv == Elem::e4m3)
    launch_kind<true>(a, p, part_acc, part_ml, st);
  else
    launch_kind<false>(a, p, part_acc, part_ml, st);
}

}  // namespace moekernels::cuda::detail
