// Host launchers for the probe's CUDA kernels (kernels/src/*.cu). Plain C++:
// callable from g++-compiled host code; the only CUDA header is the runtime
// API (for cudaStream_t). Every launcher checks its shapes, computes its grid
// with ceil_div and checks the launch error (throws moeplan::Error through
// MOEK_CHECK_LAUNCH). Layouts are row-major and match probe/include/moeprobe/
// backend.hpp; formulas: docs/probe.md ("## CUDA backend").
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace moekernels::cuda {

// e4m3: fp8 codes (moekernels::float_to_e4m3_bits). Only the attention KV
// cache and the fp8 GEMM check store it; its per-tensor scale travels separately.
enum class Elem { f32, bf16, e4m3 };
inline int elem_bytes(Elem e) {
  return e == Elem::f32 ? 4 : e == Elem::bf16 ? 2 : 1;
}

// Throws moeplan::Error("<what>: <cudaGetErrorString>") when err != cudaSuccess.
void throw_on_error(cudaError_t err, const char* what, const char* file, int line);

// ---- data ---------------------------------------------------------------------
// dst[i] = round_to(t, scale * pattern_value(seed, index0 + i)) for i < n.
void fill_pattern(void* dst, Elem t, long long n, std::uint64_t seed, float scale, long long index0,
                  cudaStream_t st);
// Per-matrix transpose of a pattern block: batch matrices [rows, cols] of pattern
// elements (b*rows + r)*cols + c stored as [cols, rows], i.e.
// dst[(b*cols + c)*rows + r] = round_to(t, scale * pattern_value(seed, (b*rows + r)*cols + c)).
void fill_pattern_transposed(void* dst, Elem t, int batch, int rows, int cols, std::uint64_t seed,
                             float scale, cudaStream_t st);
// dst [n] e4m3 codes = moekernels::e4m3_quantize(scale * pattern_value(seed, i), q_scale).
void fill_pattern_e4m3(void* dst, long long n, std::uint64_t seed, float scale, float q_scale,
                       cudaStream_t st);
// dst [n] e4m3 codes = moekernels::e4m3_quantize(src[i], q_scale).
void quantize_e4m3(const float* src, void* dst, long long n, float q_scale, cudaStream_t st);
// dst [n] (bf16 or f32) = src [n] f32, rounded to nearest even.
void convert_f32(const float* src, void* dst, Elem t, long long n, cudaStream_t st);
// dst [n] f32 = src [n] (bf16 or f32).
void to_f32(const void* src, Elem t, float* dst, long long n, cudaStream_t st);

// ---- bandwidth ----------------------------------------------------------------
// a[i] = b[i] + 3 c[i] (16-byte accesses when n % 4 == 0 and pointers aligned).
void triad(float* a, const float* b, const float* c, long long n, cudaStream_t st);
// dst = src (16-byte accesses), bytes a multiple of 16.
void copy16(void* dst, const void* src, long long bytes, cudaStream_t st);
// Writes every byte of buf (an L2 flush outside the timed region).
void scribble(void* buf, long long bytes, cudaStream_t st);

// ---- router -------------------------------------------------------------------
// One warp per token (experts <= 512): top-k by warp arg-max rounds over the
// shared order of route_token (index_math.hpp: lane_best, candidate_before),
// so ids equal route_token's; beyond 512 experts one thread per token runs
// moekernels::route_token itself (scratch used only then).
// logits [tokens, experts] f32, bias [experts] or null, scratch
// [tokens * routing_scratch_floats(experts, n_group)] f32; ids/w [tokens, k].
void route(const float* logits, const float* bias, int tokens, int experts, int k,
           bool sigmoid_grouped, int n_group, int topk_group, bool normalize, float* scratch,
           int* ids, float* w, cudaStream_t st);

// Router gate for decode batches (1 <= tokens <= moekernels::kGateMaxTokens):
// logits [tokens, experts] f32 = x [tokens, hidden] f32 . w [experts, hidden]^T,
// split-K over moekernels::gate_splits(tokens, experts, hidden, sms) K slices,
// then a reduction in slice order (deterministic). workspace: at least
// gate_workspace_bytes(...) bytes (0 when one slice suffices; may be null then).
long long gate_workspace_bytes(int tokens, int experts, int hidden, int sms);
void gate_splitk(const float* x, const float* w, int tokens, int experts, int hidden, int sms,
                 float* workspace, long long workspace_bytes, float* logits, cudaStream_t st);

// ---- permutation --------------------------------------------------------------
// Stable expert-major permutation of A = tokens*k assignments (deterministic,
// no atomics): counts [E], offsets [E+1], perm [A], inv [A]. One block per
// expert scans all assignments with a block-wide ballot prefix.
void permute_index(const int* ids, int assignments, int experts, int* counts, int* offsets,
                   int* perm, int* inv, cudaStream_t st);
// dst row p (of `rows` rows, stride hidden) = x row perm[p] / k, converted to `t`.
void gather_rows(const float* x, const int* perm, int k, int rows, int hidden, void* dst, Elem t,
                 cudaStream_t st);
// Padded layout for batched expert GEMMs: expert slot b (one per non-empty
// expert, expert ids in `experts_list` [nb]) owns rows [b*rows_per, (b+1)*rows_per)
// of dst; rows beyond counts[e] are zero. x_perm is the unpadded f32 [A, hidden].
void pad_rows(const float* x_perm, const int* offsets, const int* counts, const int* experts_list,
              int nb, int rows_per, int hidden, void* dst, Elem t, cudaStream_t st);
// Inverse of pad_rows for the outputs: y_perm [A, hidden] f32 from padded f32.
void unpad_rows(const float* padded, const int* offsets, const int* counts, const int* experts_list,
                int nb, int rows_per, int hidden, float* y_perm, cudaStream_t st);

// ---- expert FFN pieces ----------------------------------------------------------
// gu [rows, 2f] f32 (gate | up) -> out [rows, f] = silu(gate) * up in `t`.
void swiglu(const float* gu, int rows, int f, void* out, Elem t, cudaStream_t st);
// Grouped GEMV over experts with device-side counts/offsets (one launch for all
// experts): out[o + r, j] = Σ_k x[o + r, k] · W[slot(e)][j, k], o = offsets[e],
// r < counts[e], slot(e) = e % pool, W slot q at w + q * slot_stride elements
// ([n_out, k] row-major), x [rows, k] and W in t, out [rows, n_out] f32.
// Supported: t bf16 with k % 8 == 0, or fp32 with k % 4 == 0 (16-byte loads).
bool grouped_gemv_supported(Elem t, int k);
void grouped_gemv(const void* x, const void* w, long long slot_stride, int pool, int experts,
                  int n_out, int k, Elem t, const int* counts, const int* offsets, float* out,
                  cudaStream_t st);
// Grouped GEMM over experts on tensor cores (kernels/src/grouped_gemm.cu), the
// same contract as grouped_gemv for bf16: out[o + r, j] = Σ_k x[o + r, k] · W[slot(e)][j, k],
// with `rows` = the host-known total of the counts (sizes the grid; the counts
// and offsets themselves are only read on the device). `workspace` holds
// grouped_gemm_workspace_ints(experts) ints (the per-expert M-tile offsets).
// Supported: bf16 with k % 8 == 0; compute capability >= 8.0 (mma.sync).
bool grouped_gemm_supported(Elem t, int k);
int grouped_gemm_workspace_ints(int experts);
void grouped_gemm(const void* x, const void* w, long long slot_stride, int pool, int experts,
                  int n_out, int k, Elem t, long long rows, const int* counts, const int* offsets,
                  int* workspace, float* out, cudaStream_t st);
// out [tokens, hidden] (+)= sum_j w[t*k+j] * y_perm[inv[t*k+j]] (accumulate: add to out).
void combine(const float* y_perm, const int* inv, const float* w, int tokens, int k, int hidden,
             float* out, bool accumulate, cudaStream_t st);
// In-place RMSNorm of rows [rows, n] (no weight), and y += x.
void rmsnorm(const float* x, int rows, int n, float eps, float* out, cudaStream_t st);
void add_inplace(float* y, const float* x, long long n, cudaStream_t st);

// ---- attention ------------------------------------------------------------------
// softmax(q K^T * scale) V with the probe's layouts (moeprobe::AttentionSpec):
// q [B, Q, Hq, qk] f32; K [.., Hkv, qk], V [.., Hkv, v] in `kv` (V = first v of
// the K row when shared_kv). Contiguous cache: row (b, j) = b*L + j. Paged
// (page_table non-null): row = page_table[b*pages_per_seq + j/page]*page + j%page.
// Query qi sits at position L - Q + qi and attends keys 0..pos (causal).
// out [B, Q, Hq, v] f32. Flash-decoding: key splits processed by separate
// blocks with an online softmax in tiles, merged by a second kernel.
struct AttentionArgs {
  const float* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;  // ignored when shared_kv
  Elem kv = Elem::bf16;
  float kv_scale = 1.0f;  // kv == e4m3: element value = e4m3_dequantize(code, kv_scale)
  int batch = 1, queries = 1, heads = 1, kv_heads = 1, qk = 0, vd = 0;
  long long context = 0;
  bool shared_kv = false;
  float scale = 1.0f;
  const int* page_table = nullptr;
  int page = 0, pages_per_seq = 0;
  float* out = nullptr;
  // Decode (queries == 1, separate K/V, qk == v, qk % 8 == 0, qk <= 256, 32 %
  // (qk / 8) == 0) runs the split-KV decode kernel unless this is set
  // (MOEPROBE_CUDA_ATTN=generic): then the generic tiled kernel runs.
  bool force_generic = false;
  // The queries may be rounded to bf16 (the model runs in bf16). Enables the
  // tensor-core decode kernel (mla_decode.cu; queries == 1, bf16 or e4m3
  // cache, qk % 16 == 0; absorbed MLA: shared_kv, one KV head, v in {64, 128,
  // 256, 512}; GQA/MHA: v in {64, 128, 256}), which feeds bf16 queries and
  // probabilities to the MMAs as the production kernels do. Unset (fp32
  // models), MLA decode takes the generic fp32 kernel, GQA the SIMT one.
  bool q_bf16 = false;
  // GQA/MHA decode takes the SIMT split-KV kernel even where the tensor-core
  // one applies (MOEPROBE_CUDA_ATTN=simt: the comparison and the fallback).
  bool simt_decode = false;
};
// Workspace bytes attention() needs for `a` on a device with `sms` SMs (0: none).
long long attention_workspace_bytes(const AttentionArgs& a, int sms);
// Whether attention() takes the split-KV decode kernel for `a` (GQA/MHA, or
// the tensor-core absorbed-MLA kernel).
bool attention_uses_decode_kernel(const AttentionArgs& a, int sms);
// Whether attention() takes the tensor-core decode kernel (absorbed MLA, or
// GQA/MHA with bf16 queries) for `a`.
bool attention_uses_mla_kernel(const AttentionArgs& a, int sms);
void attention(const AttentionArgs& a, void* workspace, long long workspace_bytes, int sms,
               cudaStream_t st);
// Fill a paged cache: physical row r = page_table[...] so that logical element
// ((b*L + j)*heads + h)*dim + c holds round(pattern(seed, that index)) (e4m3:
// e4m3_quantize(pattern, kv_scale)).
void fill_paged(void* dst, Elem t, int batch, long long context, int heads, int dim,
                const int* page_table, int page, int pages_per_seq, std::uint64_t seed,
                cudaStream_t st, float kv_scale = 1.0f);
// Writes `rows` new cache rows: row r (token t = r) of src [rows, n] f32 goes to
// cache row (b, first_new + qi) with b = t / queries, qi = t % queries, i.e. the
// n = heads*dim elements starting at ((b*context + first_new + qi)*heads)*dim of
// a contiguous cache in `t` (e4m3: quantised with kv_scale). src row stride ld.
void store_kv_rows(const float* src, long long ld, int rows, int n, int queries, long long context,
                   long long first_new, void* cache, Elem t, float kv_scale, cudaStream_t st);

}  // namespace moekernels::cuda
