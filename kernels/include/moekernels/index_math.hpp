// Index math shared by every probe backend: tiling, top-k selection (softmax
// and DeepSeek-style grouped sigmoid routing), the MoE permutation (histogram,
// exclusive prefix sum, stable scatter), the online-softmax update, bf16 and fp8 e4m3 rounding and
// the deterministic synthetic-data pattern. Plain C++ with no library calls so the CUDA backend
// compiles the very same functions (MOE_HD = __host__ __device__ under nvcc). Formulas:
// docs/probe.md.
//
// Conventions: row-major arrays, indices are int (shapes fit in 2^31), counts
// that can exceed 2^31 (byte counts) are long long. No function allocates.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define MOE_HD __host__ __device__
#else
#define MOE_HD
#endif

namespace moekernels {

// ---- tiling ---------------------------------------------------------------

MOE_HD inline long long ceil_div(long long a, long long b) {
  return (a + b - 1) / b;
}

// Half-open range [begin, end) of part `part` when `n` items are split into
// `parts` nearly equal contiguous blocks (the first n % parts blocks get one
// more). Every item lands in exactly one block; empty blocks when parts > n.
struct Range {
  long long begin;
  long long end;
};
MOE_HD inline Range block_range(long long n, long long parts, long long part) {
  const long long base = n / parts, extra = n % parts;
  const long long begin = part * base + (part < extra ? part : extra);
  const long long len = base + (part < extra ? 1 : 0);
  return Range{begin, begin + len};
}

// ---- deterministic synthetic data ------------------------------------------

// splitmix64 finaliser: a well-mixed 64-bit hash of x.
MOE_HD inline std::uint64_t mix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Element i of a pattern stream: uniform in [-1, 1), never exactly zero-filled,
// identical on every backend (used to fill large bandwidth buffers on the device).
MOE_HD inline float pattern_value(std::uint64_t seed, std::uint64_t i) {
  const std::uint64_t h = mix64(seed * 0x100000001B3ull ^ i);
  const std::uint32_t m = static_cast<std::uint32_t>(h >> 40);  // 24 bits
  return static_cast<float>(m) * (2.0f / 16777216.0f) - 1.0f;
}

// ---- bf16 -------------------------------------------------------------------

// fp32 -> bf16 with round-to-nearest-even (NaN kept quiet), and back.
MOE_HD inline std::uint16_t float_to_bf16_bits(float f) {
  std::uint32_t u;
  __builtin_memcpy(&u, &f, 4);
  if ((u & 0x7F800000u) == 0x7F800000u && (u & 0x007FFFFFu))
    return static_cast<std::uint16_t>((u >> 16) | 0x40u);
  const std::uint32_t lsb = (u >> 16) & 1u;
  u += 0x7FFFu + lsb;
  return static_cast<std::uint16_t>(u >> 16);
}
MOE_HD inline float bf16_bits_to_float(std::uint16_t b) {
  const std::uint32_t u = static_cast<std::uint32_t>(b) << 16;
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}

// ---- fp8 e4m3 (OCP "E4M3FN": bias 7, no infinities, NaN = S.1111.111) -------

// Largest finite e4m3 magnitude.
constexpr float kE4m3Max = 448.0f;

// fp32 -> e4m3 with round-to-nearest-even, saturating: |f| >= 448 (and ±inf)
// gives ±448 (code 0x7E / 0xFE, as cuda_fp8's __NV_SATFINITE); NaN gives 0x7F
// (sign kept); |f| below half the smallest subnormal (2^-10) gives ±0.
MOE_HD inline std::uint8_t float_to_e4m3_bits(float f) {
  std::uint32_t u;
  __builtin_memcpy(&u, &f, 4);
  const std::uint8_t sign = static_cast<std::uint8_t>((u >> 24) & 0x80u);
  const std::uint32_t a = u & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return static_cast<std::uint8_t>(sign | 0x7Fu);   // NaN
  if (a >= 0x43E00000u) return static_cast<std::uint8_t>(sign | 0x7Eu);  // >= 448: saturate
  if (a >=
      0x3C800000u) {  // >= 2^-6: normal; keep 3 mantissa bits, RNE (carry may bump the exponent)
    const std::uint32_t r = a + 0x7FFFFu + ((a >> 20) & 1u);
    return static_cast<std::uint8_t>(sign | ((r >> 20) - (120u << 3)));
  }
  // Subnormal e4m3: code m = RNE(|f| * 2^9), m in 0..8 (8 is the smallest normal, 0x08).
  const std::uint32_t ex = a >> 23;
  if (ex == 0) return sign;  // fp32 subnormal: far below 2^-10
  const std::uint32_t sig = (a & 0x7FFFFFu) | 0x800000u;
  const std::uint32_t shift = 141u - ex;  // |f| * 2^9 = sig * 2^(ex - 141), shift >= 21
  if (shift > 31u) return sign;
  std::uint32_t q = sig >> shift;
  const std::uint32_t rem = sig & ((1u << shift) - 1u), half = 1u << (shift - 1u);
  if (rem > half || (rem == half && (q & 1u))) ++q;
  return static_cast<std::uint8_t>(sign | q);
}

// e4m3 -> fp32 (exact; 0x7F/0xFF -> NaN).
MOE_HD inline float e4m3_bits_to_float(std::uint8_t b) {
  const std::uint32_t e = (b >> 3) & 0xFu, m = b & 7u;
  std::uint32_t u;
  if (e == 15u && m == 7u) {
    u = 0x7FC00000u;
  } else if (e == 0u) {
    float v = static_cast<float>(m) * (1.0f / 512.0f);  // exact
    __builtin_memcpy(&u, &v, 4);
  } else {
    u = ((e + 120u) << 23) | (m << 20);
  }
  u |= static_cast<std::uint32_t>(b & 0x80u) << 24;
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}

// Per-tensor scaled e4m3 (what an fp8 KV cache or fp8 GEMM operand stores):
// code = e4m3(v / scale) (one IEEE division, RNE), value = e4m3_value(code) * scale
// (one IEEE multiplication; exact when scale is a power of two). Explicit
// _rn intrinsics on the device so no FMA contraction or fast-math changes them.
MOE_HD inline std::uint8_t e4m3_quantize(float v, float scale) {
#if defined(__CUDA_ARCH__)
  return float_to_e4m3_bits(__fdiv_rn(v, scale));
#else
  return float_to_e4m3_bits(v / scale);
#endif
}
MOE_HD inline float e4m3_dequantize(std::uint8_t code, float scale) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(e4m3_bits_to_float(code), scale);
#else
  return e4m3_bits_to_float(code) * scale;
#endif
}
// The value an fp8 store of v with `scale` reads back as.
MOE_HD inline float e4m3_round(float v, float scale) {
  return e4m3_dequantize(e4m3_quantize(v, scale), scale);
}

// ---- top-k ------------------------------------------------------------------

// Strict order used by every top-k: larger score first; equal scores go to the
// lower index. This makes ties deterministic on every backend.
MOE_HD inline bool ranks_before(float a, int ia, float b, int ib) {
  return a > b || (a == b && ia < ib);
}

// Selects the k best of scores[0..n) (k <= n) into idx[0..k), best first, by
// insertion into a sorted list: O(n·k), fine for n <= a few hundred experts.
// `mask` (may be null): entries with mask[i] == 0 are skipped; then fewer than
// k may exist and the count found is returned.
MOE_HD inline int topk_select(const float* scores, int n, int k, int* idx,
                              const unsigned char* mask = nullptr) {
  int found = 0;
  for (int i = 0; i < n; ++i) {
    if (mask && !mask[i]) continue;
    const float s = scores[i];
    int pos = found < k ? found : k;
    while (pos > 0 && ranks_before(s, i, scores[idx[pos - 1]], idx[pos - 1])) --pos;
    if (pos >= k) continue;
    const int last = found < k ? found : k - 1;
    for (int j = last; j > pos; --j) idx[j] = idx[j - 1];
    idx[pos] = i;
    if (found < k) ++found;
  }
  return found;
}

// Numerically stable softmax of x[0..n) into out (may alias x).
MOE_HD inline void softmax_inplace(const float* x, int n, float* out) {
  float m = x[0];
  for (int i = 1; i < n; ++i) m = x[i] > m ? x[i] : m;
  float s = 0.0f;
  for (int i = 0; i < n; ++i) {
    out[i] = __builtin_expf(x[i] - m);
    s += out[i];
  }
  for (int i = 0; i < n; ++i) out[i] /= s;
}

MOE_HD inline float sigmoid(float x) {
  return 1.0f / (1.0f + __builtin_expf(-x));
}

// DeepSeek's group score: the sum of the top-2 selection scores of one group
// of `per` experts (top-1 when per == 1), added best first.
MOE_HD inline float group_score(const float* c, int per) {
  int top2[2] = {0, 0};
  const int got = topk_select(c, per, per >= 2 ? 2 : 1, top2);
  float sum = 0.0f;
  for (int j = 0; j < got; ++j) sum += c[top2[j]];
  return sum;
}

// ---- warp-parallel top-k (the CUDA router kernel; host-tested) ----------------
// The kernel finds the k best in k rounds: each of `lanes` lanes proposes its
// best candidate among i = lane, lane + lanes, … (lane_best), the lanes reduce
// the proposals with candidate_before, the winner is marked taken. Because
// ranks_before is a strict total order, the rounds give exactly topk_select's
// list, best first, ties to the lower index.

// Whether candidate (va, ia) beats (vb, ib); index -1 means "no candidate".
MOE_HD inline bool candidate_before(float va, int ia, float vb, int ib) {
  if (ia < 0) return false;
  if (ib < 0) return true;
  return ranks_before(va, ia, vb, ib);
}
// The two best of a group, best first (index -1: none), for the router
// kernel's warp-parallel group scores: each lane folds its strided share with
// top2_push, the lanes merge with top2_merge (any merge order gives the same
// pair, ranks_before being a strict total order), and top2_sum adds them as
// group_score does (0 + best + second), so the score's bits are route_token's.
struct Top2 {
  float v1, v2;
  int i1, i2;
};
MOE_HD inline Top2 top2_empty() {
  return Top2{0.0f, 0.0f, -1, -1};
}
MOE_HD inline Top2 top2_push(Top2 t, float v, int i) {
  if (candidate_before(v, i, t.v1, t.i1)) return Top2{v, t.v1, i, t.i1};
  if (candidate_before(v, i, t.v2, t.i2)) return Top2{t.v1, v, t.i1, i};
  return t;
}
MOE_HD inline Top2 top2_merge(Top2 a, Top2 b) {
  return top2_push(top2_push(a, b.v1, b.i1), b.v2, b.i2);
}
MOE_HD inline float top2_sum(Top2 t) {
  float sum = 0.0f;
  if (t.i1 >= 0) sum += t.v1;
  if (t.i2 >= 0) sum += t.v2;
  return sum;
}

// This lane's best index among its strided share that is eligible (`eligible`
// null or non-zero) and not taken (`taken` null or zero); -1 when none.
MOE_HD inline int lane_best(const float* scores, int n, int lane, int lanes,
                            const unsigned char* eligible, const unsigned char* taken) {
  int best = -1;
  for (int i = lane; i < n; i += lanes) {
    if ((eligible && !eligible[i]) || (taken && taken[i])) continue;
    if (candidate_before(scores[i], i, best >= 0 ? scores[best] : 0.0f, best)) best = i;
  }
  return best;
}

// Routing of one token. `logits` [n] router outputs; `bias` [n] per-expert bias
// (the distribution skew, or DeepSeek's e_score_correction_bias; may be null).
// softmax routing: p = softmax(logits + bias); pick top-k of p; weights = p of
//   the picked, renormalised to sum 1 when `normalize`.
// sigmoid_grouped (n_group > 0): s = sigmoid(logits); selection score
//   c = s + bias; group score = sum of the top-2 c in each of n_group equal
//   groups; keep the topk_group best groups; pick top-k of c among them;
//   weights = s of the picked (without bias), renormalised when `normalize`.
// scratch must hold 2*n floats + n_group floats + n bytes (see routing_scratch_floats).
// Writes idx[k] (best first) and w[k].
MOE_HD inline int routing_scratch_floats(int n, int n_group) {
  return 2 * n + n_group + n / 4 + 1;
}
MOE_HD inline void route_token(const float* logits, const float* bias, int n, int k,
                               bool sigmoid_grouped, int n_group, int topk_group, bool normalize,
                               int* idx, float* w, float* scratch) {
  float* p = scratch;      // probabilities / sigmoid scores
  float* c = scratch + n;  // selection scores
  if (!sigmoid_grouped) {
    for (int i = 0; i < n; ++i) c[i] = logits[i] + (bias ? bias[i] : 0.0f);
    softmax_inplace(c, n, p);
    topk_select(p, n, k, idx);
  } else {
    for (int i = 0; i < n; ++i) {
      p[i] = sigmoid(logits[i]);
      c[i] = p[i] + (bias ? bias[i] : 0.0f);
    }
    float* gscore = scratch + 2 * n;
    unsigned char* mask = reinterpret_cast<unsigned char*>(gscore + n_group);
    const int per = n / n_group;
    for (int g = 0; g < n_group; ++g) gscore[g] = group_score(c + g * per, per);
    // Group selection reuses idx as scratch (k >= topk_group is not required:
    // use a small local array instead).
    // Only the groups actually found are read (topk_group > n_group finds n_group).
    int gidx[64];
    const int tg = topk_select(gscore, n_group, topk_group < 64 ? topk_group : 64, gidx);
    for (int i = 0; i < n; ++i) mask[i] = 0;
    for (int j = 0; j < tg; ++j)
      for (int i = gidx[j] * per; i < (gidx[j] + 1) * per; ++i) mask[i] = 1;
    topk_select(c, n, k, idx, mask);
  }
  float sum = 0.0f;
  for (int j = 0; j < k; ++j) {
    w[j] = p[idx[j]];
    sum += w[j];
  }
  if (normalize && sum > 0.0f)
    for (int j = 0; j < k; ++j) w[j] /= sum;
}

// ---- permutation (token-major -> expert-major) -------------------------------

// counts[e] = number of (token, slot) assignments to expert e. ids [m*k].
MOE_HD inline void expert_histogram(const int* ids, long long assignments, int n_experts,
                                    int* counts) {
  for (int e = 0; e < n_experts; ++e) counts[e] = 0;
  for (long long a = 0; a < assignments; ++a) ++counts[ids[a]];
}

// offsets[e] = sum of counts[0..e), offsets[n] = total (array of n+1).
MOE_HD inline void exclusive_scan(const int* counts, int n, int* offsets) {
  int run = 0;
  for (int e = 0; e < n; ++e) {
    offsets[e] = run;
    run += counts[e];
  }
  offsets[n] = run;
}

// Stable scatter: assignment a (= token*k + slot) goes to position
// offsets[ids[a]] + (number of earlier assignments to the same expert).
// Writes perm[pos] = a (expert-major order) and inv[a] = pos. `cursor` [n] scratch.
MOE_HD inline void stable_scatter(const int* ids, long long assignments, int n_experts,
                                  const int* offsets, int* cursor, int* perm, int* inv) {
  for (int e = 0; e < n_experts; ++e) cursor[e] = offsets[e];
  for (long long a = 0; a < assignments; ++a) {
    const int pos = cursor[ids[a]]++;
    perm[pos] = static_cast<int>(a);
    inv[a] = pos;
  }
}

// Rows of expert e in the expert-major order: [offsets[e], offsets[e] + counts[e]).
MOE_HD inline Range grouped_rows(const int* offsets, const int* counts, int e) {
  return Range{offsets[e], static_cast<long long>(offsets[e]) + counts[e]};
}
// Materialised weight slot of expert e when only `pool` experts are stored.
MOE_HD inline long long expert_slot(int e, int pool) {
  return static_cast<long long>(e % pool);
}

// ---- online softmax ----------------------------------------------------------

// Running state of softmax(x)·V over a stream of scores: max m, normaliser l.
// Adding score s with value row v: m' = max(m, s); scale = exp(m - m');
// l' = l·scale + exp(s - m'); acc' = acc·scale + exp(s - m')·v.
struct OnlineSoftmax {
  float m;
  float l;
};
MOE_HD inline OnlineSoftmax online_softmax_init() {
  return OnlineSoftmax{-3.0e38f, 0.0f};
}
// Returns (scale for the old accumulator, weight for the new value).
struct OnlineStep {
  float scale_old;
  float weight_new;
};
MOE_HD inline OnlineStep online_softmax_update(OnlineSoftmax& st, float s) {
  const float m_new = s > st.m ? s : st.m;
  const float scale = __builtin_expf(st.m - m_new);
  const float p = __builtin_expf(s - m_new);
  st.l = st.l * scale + p;
  st.m = m_new;
  return OnlineStep{scale, p};
}

// Block form (what a tiled kernel does): before accumulating a block of
// scores whose maximum is block_max, raise the running max once; returns the
// factor the old accumulator and normaliser must be scaled by (1 when the max
// did not move). The caller then adds p = exp(s - st.m) per score to st.l.
MOE_HD inline float online_softmax_raise(OnlineSoftmax& st, float block_max) {
  if (block_max <= st.m) return 1.0f;
  const float scale = __builtin_expf(st.m - block_max);
  st.l *= scale;
  st.m = block_max;
  return scale;
}

// Merging two partial softmax states (m1, l1, acc1) and (m2, l2, acc2) of the
// same row over disjoint key sets: m = max(m1, m2), l = l1·f1 + l2·f2 and
// acc = acc1·f1 + acc2·f2 with f_i = exp(m_i − m). An empty state has
// m = online_softmax_init().m and l = 0 (its factor is then 0 or 1 with l = 0).
struct SoftmaxMerge {
  float m;
  float f1;
  float f2;
};
MOE_HD inline SoftmaxMerge softmax_merge(float m1, float m2) {
  const float m = m1 > m2 ? m1 : m2;
  return SoftmaxMerge{m, __builtin_expf(m1 - m), __builtin_expf(m2 - m)};
}

// ---- split-KV decode attention (the CUDA decode kernel; host-tested) ---------
// A block owns one (sequence, KV head, head chunk) and one split of the keys.
// Its `warps` warps walk the split in steps of warps·keys_per_warp keys; in a
// step, warp w's key slot `sub` (lanes sub·lanes_per_key … + lanes_per_key − 1,
// each holding 8 dimensions) takes key first + step·(warps·kpw) + w·kpw + sub.

// Smallest power of two >= x (x >= 1).
MOE_HD inline int pow2_at_least(int x) {
  int p = 1;
  while (p < x) p <<= 1;
  return p;
}

MOE_HD inline long long decode_key(long long first, long long step, int warps, int keys_per_warp,
                                   int warp, int sub) {
  return first + step * warps * keys_per_warp + static_cast<long long>(warp) * keys_per_warp + sub;
}

// Splits of the keys: enough blocks to cover the GPU about `waves` times
// (base_blocks = sequences × KV heads × head chunks), every split at least
// `min_steps` steps long, at most max_splits; chunk (keys per split) a multiple
// of keys_per_step; no empty trailing split.
struct KeySplits {
  int splits;
  long long chunk;
};
MOE_HD inline KeySplits decode_splits(long long base_blocks, long long context, int sms, int waves,
                                      int keys_per_step, int min_steps, int max_splits) {
  long long want = sms > 0 ? ceil_div(static_cast<long long>(sms) * waves, base_blocks) : 1;
  const long long most = ceil_div(context, static_cast<long long>(keys_per_step) * min_steps);
  if (want > most) want = most;
  if (want > max_splits) want = max_splits;
  if (want < 1) want = 1;
  const long long chunk = ceil_div(ceil_div(context, want), keys_per_step) * keys_per_step;
  return KeySplits{static_cast<int>(ceil_div(context, chunk)), chunk};
}

// ---- absorbed-MLA decode on tensor cores (the CUDA MLA kernel; host-tested) --
// Fragments of mma.sync.m16n8k16 (bf16 in, fp32 accumulate; PTX ISA "Matrix
// fragments for mma.m16n8k16"), for lane 0..31 with g = lane / 4, t = lane % 4:
//   C/D 16x8 fp32: element i (0..3) at row g + 8·(i/2), column 2t + i%2;
//   A 16x16 row-major: register r (0..3), half e (0..1) at row g + 8·(r%2),
//     column 2t + 8·(r/2) + e;
//   B 16x8 (k x n): register r (0..1), half e at k = 2t + 8r + e, n = g.
MOE_HD inline int mma_c_row(int lane, int i) {
  return lane / 4 + 8 * (i / 2);
}
MOE_HD inline int mma_c_col(int lane, int i) {
  return 2 * (lane % 4) + i % 2;
}
MOE_HD inline int mma_a_row(int lane, int r) {
  return lane / 4 + 8 * (r % 2);
}
MOE_HD inline int mma_a_col(int lane, int r, int e) {
  return 2 * (lane % 4) + 8 * (r / 2) + e;
}
MOE_HD inline int mma_b_k(int lane, int r, int e) {
  return 2 * (lane % 4) + 8 * r + e;
}
MOE_HD inline int mma_b_n(int lane) {
  return lane / 4;
}

// ldmatrix.x4 row addresses (row, column of a row-major bf16 tile in shared
// memory): lane l names row l % 8 of 8x8 matrix l / 8; the thread then holds
// in register m the pair at (row lane/4, columns 2·(lane%4), +1) of matrix m,
// or with .trans the pair at (rows 2·(lane%4), +1; column lane/4).
struct RowCol {
  int row;
  int col;
};
// Q tile [heads][dims] as the A operand of S = Q·Kᵀ, k-step at dimension k0:
// matrices (rows 0-7, k0), (rows 8-15, k0), (rows 0-7, k0+8), (rows 8-15, k0+8).
MOE_HD inline RowCol mla_ldm_q(int lane, int k0) {
  const int m = lane / 8;
  return RowCol{lane % 8 + 8 * (m % 2), k0 + 8 * (m / 2)};
}
// K tile [keys][dims] as the B operands of two n-tiles (keys j0..j0+7, j0+8..j0+15):
// registers (b0, b1) of the first n-tile, then of the second.
MOE_HD inline RowCol mla_ldm_k(int lane, int j0, int k0) {
  const int m = lane / 8;
  return RowCol{j0 + lane % 8 + 8 * (m / 2), k0 + 8 * (m % 2)};
}
// V = the same tile [keys][dims], transposed (.trans), as the B operands of two
// n-tiles of dimensions n0..n0+7, n0+8..n0+15 over keys k0..k0+15.
MOE_HD inline RowCol mla_ldm_v(int lane, int k0, int n0) {
  const int m = lane / 8;
  return RowCol{k0 + lane % 8 + 8 * (m % 2), n0 + 8 * (m / 2)};
}
// The probabilities P = exp(S − m) reuse the S accumulators as A fragments
// (no shared memory): A register r of key step kk (keys 16kk..16kk+15) packs
// elements mla_p_elem(r, 0..1) of the S n-tile mla_p_ntile(kk, r).
MOE_HD inline int mla_p_ntile(int kk, int r) {
  return 2 * kk + r / 2;
}
MOE_HD inline int mla_p_elem(int r, int e) {
  return 2 * (r % 2) + e;
}

// Head groups: heads in tiles of 16 (one mma M), at most max_tiles tiles per
// block, the tiles spread evenly over the groups (heads beyond `heads` are
// zero-padded rows, never stored).
struct MlaHeads {
  int groups;
  int tiles;  // head tiles per group
};
MOE_HD inline MlaHeads mla_heads(int heads, int max_tiles) {
  const long long tiles = ceil_div(heads, 16);
  const long long groups = ceil_div(tiles, max_tiles);
  return MlaHeads{static_cast<int>(groups), static_cast<int>(ceil_div(tiles, groups))};
}
// Query head of row `row` (0..15) of head tile `tile` in group `group`.
MOE_HD inline int mla_head(int group, int tiles, int tile, int row) {
  return (group * tiles + tile) * 16 + row;
}

// Dynamic shared memory of the tensor-core decode kernel (mla_decode.cu), for
// the absorbed-MLA cache (`shared`: one latent row of qk elements serves as K,
// its first v elements as V) and for GQA (separate K rows of qk and V rows of
// v elements): Q [tiles·16][qk + pad] bf16; per cache tensor, with a bf16
// cache `stages` tiles [tile_keys][dim + pad] bf16, with an e4m3 cache
// `stages` raw tiles [tile_keys][dim] bytes plus one converted bf16 tile; the
// S exchange, 2 warps per head tile x 32 lanes x 16 floats.
MOE_HD inline long long tc_decode_smem_bytes(int qk, int v, bool shared, int tiles, bool fp8,
                                             int stages, int tile_keys, int pad) {
  auto tensor = [&](long long dim) {
    const long long ld = dim + pad;
    return fp8 ? tile_keys * ld * 2 + static_cast<long long>(stages) * tile_keys * dim
               : static_cast<long long>(stages) * tile_keys * ld * 2;
  };
  const long long q = static_cast<long long>(tiles) * 16 * (qk + pad) * 2;
  return q + tensor(qk) + (shared ? 0 : tensor(v)) +
         static_cast<long long>(tiles) * 2 * 32 * 16 * 4;
}
MOE_HD inline long long mla_smem_bytes(int qk, int tiles, bool fp8, int stages, int tile_keys,
                                       int pad) {
  return tc_decode_smem_bytes(qk, qk, true, tiles, fp8, stages, tile_keys, pad);
}

// What starting one more split costs a block of the tensor-core decode kernel,
// in KV tiles: writing and merging its fp32 partials (`merge_tiles`) plus
// loading the block's queries, `rows` heads x qk fp32, against one tile of
// tile_keys cache rows of `row_bytes` each (K and V). The queries matter for
// MLA: 64 heads x 576 x 4 B are four latent tiles' worth, so at batch 1 one
// tile per split spent most of its time loading Q (119 us on an H200 where
// the production pair of GEMMs took 25).
MOE_HD inline int tc_decode_split_cost(int rows, int qk, int tile_keys, long long row_bytes,
                                       int merge_tiles) {
  const long long q = static_cast<long long>(rows) * qk * 4;
  const long long tile = static_cast<long long>(tile_keys) * (row_bytes > 0 ? row_bytes : 1);
  return merge_tiles + static_cast<int>(ceil_div(q, tile));
}

// Splits of the context for the tensor-core decode kernel; `sms` counts block
// slots (SMs x resident blocks per SM: one for MLA's 64 heads, whose Q and three
// KV tiles fill the shared memory; several for GQA's one head tile). Picks s in
// 1..min(tiles, max_splits) minimising waves(s)·(tiles per split + c) + s·base·c / sms,
// c = split_cost_tiles (tc_decode_split_cost: a split's partials and its Q load, in
// KV-tile units; 0 when s = 1), waves(s) = ceil(base·s / sms); the smallest s among ties. Chunk a
// multiple of tile_keys, no empty trailing split.
MOE_HD inline KeySplits mla_splits(long long base, long long context, int sms, int tile_keys,
                                   int max_splits, int split_cost_tiles) {
  const long long tiles = ceil_div(context, tile_keys);
  const long long slots = sms > 0 ? sms : 1;
  const long long most = tiles < max_splits ? tiles : max_splits;
  long long best = 1, best_cost = -1;
  for (long long s = 1; s <= most; ++s) {
    const long long c = s > 1 ? split_cost_tiles : 0;
    const long long cost =
        ceil_div(base * s, slots) * (ceil_div(tiles, s) + c) * slots + s * base * c;
    if (best_cost < 0 || cost < best_cost) {
      best = s;
      best_cost = cost;
    }
  }
  const long long chunk = ceil_div(tiles, best) * tile_keys;
  return KeySplits{static_cast<int>(ceil_div(context, chunk)), chunk};
}

// ---- grouped GEMM over experts (the CUDA tensor-core kernel; host-tested) ----
// Y[offsets[e] + r, n] = sum_k X[offsets[e] + r, k] · W_slot(e)[n, k] for r < counts[e].
// The M dimension is cut per expert into tiles of bm rows (the last one of an
// expert partly past its count: those rows are zero-filled and never stored).
// Tile t of the flat list (experts in order, their M-tiles in order) is found by
// a binary search in tile_offsets (grouped_tile_offsets: tile_offsets[e] = M-tiles
// of the experts before e, tile_offsets[experts] = total), computed on the device
// from the counts, so the launch needs no host round trip: its grid uses
// grouped_tile_bound, and blocks with t >= total exit.
MOE_HD inline void grouped_tile_offsets(const int* counts, int experts, int bm, int* tile_offsets) {
  int s = 0;
  for (int e = 0; e < experts; ++e) {
    tile_offsets[e] = s;
    s += static_cast<int>(ceil_div(counts[e], bm));
  }
  tile_offsets[experts] = s;
}
// Upper bound of the total for `rows` assignment rows over `experts` experts:
// sum_e ceil(c_e / bm) <= sum_e (c_e / bm + 1) over the non-empty experts, of
// which there are at most min(experts, rows): ceil(rows / bm) + min(experts, rows).
MOE_HD inline long long grouped_tile_bound(long long rows, int experts, int bm) {
  return ceil_div(rows, bm) + (rows < experts ? rows : experts);
}
struct GroupedTile {
  int expert = -1;  // -1: t is past the last tile
  int mtile = 0;    // M-tile within the expert (rows mtile·bm .. +bm)
};
// The last e with tile_offsets[e] <= t (experts without rows have an empty
// range and are skipped by taking the last such e).
MOE_HD inline GroupedTile grouped_tile_find(const int* tile_offsets, int experts, long long t) {
  if (t < 0 || t >= tile_offsets[experts]) return GroupedTile{};
  int lo = 0, hi = experts - 1;  // invariant: tile_offsets[lo] <= t < tile_offsets[hi + 1]
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (tile_offsets[mid] <= t)
      lo = mid;
    else
      hi = mid - 1;
  }
  return GroupedTile{lo, static_cast<int>(t - tile_offsets[lo])};
}
// Tile of the grouped GEMM kernel: kGgBm x kGgBn outputs, K in steps of kGgBk.
constexpr int kGgBm = 64, kGgBn = 64, kGgBk = 64;
// A block tile of the grouped GEMM: BM x BN outputs, 4 warps in 2 x 2, each
// warp 32 x 32 = 2 m16 tiles x 4 n8 tiles. The X tile [BM][bk] feeds the A
// operands through mla_ldm_q (rows = tokens), the W tile [BN][bk] (W is [N, K]
// row-major, so B[k][n] = W[n][k]) feeds the B operands through mla_ldm_k (keys = n).
// Output element i of n8 tile nj of m16 tile mi of warp w in lane `lane`:
MOE_HD inline RowCol gg_out(int warp, int lane, int mi, int nj, int i) {
  return RowCol{32 * (warp / 2) + 16 * mi + mma_c_row(lane, i),
                32 * (warp % 2) + 8 * nj + mma_c_col(lane, i)};
}

}  // namespace moekernels
