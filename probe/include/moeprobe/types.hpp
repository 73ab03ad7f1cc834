// Value types shared by the probe harness and its backends: data types,
// synthetic-weight patterns, the per-layer shapes the probe runs (derived from
// a catalog moeplan::Model by shapes.hpp) and one struct per operation.
// Nothing here depends on a backend; no CUDA headers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace moeprobe {

// Storage type of weights and KV cache. Activations are fp32 on the CPU
// backend; the router is always fp32 (as in the served checkpoints).
enum class DType { fp32, bf16 };
const char* dtype_name(DType d);
DType parse_dtype(const std::string& s);  // throws moeplan::Error listing the known ones
inline int dtype_bytes(DType d) {
  return d == DType::fp32 ? 4 : 2;
}
// Rounds v to what `d` can hold (bf16: round to nearest even), as float.
float round_to(DType d, float v);

// Storage of the KV cache only (weights and activations are unaffected):
// `same` = the weight dtype; `fp8` = OCP fp8 e4m3 with one per-tensor float
// scale (stored code = e4m3(v / scale), read back as value(code) * scale;
// moekernels::e4m3_quantize / e4m3_dequantize, round-to-nearest-even, saturating).
enum class KvDType { same, fp8 };
const char* kv_dtype_name(KvDType k);        // "same" | "fp8"
KvDType parse_kv_dtype(const std::string&);  // throws moeplan::Error listing the known ones
// Default per-tensor KV scale: a power of two (dequantisation exact), range
// ±448/32 = ±14, wide enough for the pattern cache ([-1, 1)) and for the K/V
// rows a decoder layer projects (unit variance).
constexpr float kKvFp8Scale = 1.0f / 32.0f;

// Synthetic weights without zeros: element i is scale * pattern_value(seed, i)
// (uniform in [-scale, scale)), then rounded to the storage type. Backends
// generate them where they live; the reference recomputes them on the fly.
struct Pattern {
  std::uint64_t seed = 0;
  float scale = 1.0f;
  float value(std::uint64_t i) const;
  // Weight pattern for a matrix with `fan_in` inputs: variance of the product
  // equals the variance of the input (scale = sqrt(3 / fan_in)).
  static Pattern for_fan_in(std::uint64_t seed, long long fan_in);
};

// Attention in the form the probe runs.
struct AttnShape {
  bool mla = false;
  int heads = 0;
  int kv_heads = 0;                                                                   // GQA/MHA
  int head_dim = 0;                                                                   // GQA/MHA
  int q_lora_rank = 0, kv_lora_rank = 0, rope_dim = 0, nope_dim = 0, v_head_dim = 0;  // MLA
};

struct MoeShape {
  int experts = 0;
  int top_k = 0;
  int ffn = 0;
  int shared_experts = 0;
  int shared_ffn = 0;
  bool sigmoid_grouped = false;
  int n_group = 0, topk_group = 0;
  bool normalize = true;  // renormalise the top-k weights to sum 1
};

// One decoder layer. moe empty: a dense FFN of dense_ffn.
struct LayerShape {
  int hidden = 0;
  AttnShape attn;
  std::optional<MoeShape> moe;
  int dense_ffn = 0;
  double rms_eps = 1e-6;
};

// ---- operation specs (inputs the backend generates itself are given by seed) ----

// a[i] = b[i] + 3 * c[i] over n floats, b/c from pattern seeds seed+1, seed+2.
struct TriadSpec {
  long long n = 0;
  std::uint64_t seed = 1;
};

// Y[m, n] = X[m, k] · W[n, k]^T; W from Pattern::for_fan_in(seed, k); X given.
struct GemmSpec {
  int m = 0, n = 0, k = 0;
  DType dtype = DType::fp32;
  std::uint64_t seed = 0;
};

// An MoE block. Weights (seed s): router [E, H] fp32 s+1; per materialised slot
// q: gate [F, H] s+2, up [F, H] s+3 (element index q*F*H + row*H + col),
// down [H, F] s+4 (q*H*F + ...); shared experts fused into one FFN of width
// shared_experts*shared_ffn: gate s+5, up s+6, down s+7. Expert e uses slot
// e % pool (only `pool` experts are materialised: a memory budget).
// bias [E]: added to the router's selection scores (skewed distributions,
// DeepSeek's correction bias); empty = zeros.
struct MoeSpec {
  int hidden = 0;
  MoeShape shape;
  DType dtype = DType::fp32;
  int pool = 0;
  std::uint64_t seed = 0;
  std::vector<float> bias;
  int slot(int expert) const { return expert % pool; }
};

// softmax(q·K^T · scale)·V. Layouts: q [B, Q, Hq, qk] fp32 (pattern seed+1),
// K cache [B, L, Hkv, qk] (seed+2), V cache [B, L, Hkv, v] (seed+3) in dtype;
// shared_kv (MLA absorbed): V is the first v_dim elements of the K row.
// Query qi of a sequence sits at position L - Q + qi and attends keys j <= it
// (decode: Q = 1, all L keys; prefill: Q = L = P, causal). Out [B, Q, Hq, v].
struct AttentionSpec {
  int batch = 1, queries = 1;
  long long context = 0;
  int heads = 0, kv_heads = 0, qk_dim = 0, v_dim = 0;
  bool shared_kv = false;
  DType dtype = DType::fp32;
  std::uint64_t seed = 0;
  float scale = 1.0f;
  KvDType kv_dtype = KvDType::same;  // fp8: K/V caches in e4m3 with kv_scale
  float kv_scale = kKvFp8Scale;
  // What the cache holds for value v (dtype rounding, or the e4m3 round trip).
  float kv_round(float v) const;
  int kv_bytes() const { return kv_dtype == KvDType::fp8 ? 1 : dtype_bytes(dtype); }
};

// `layers` consecutive decoder layers (distinct weights and KV caches; layer l
// uses seed + 1000*l) over batch sequences of `queries` new tokens each, with a
// KV cache of `context` positions that already includes the new tokens.
// Input x [B*Q, H] fp32. Weight layout and the step list: docs/probe.md.
struct LayerSpec {
  LayerShape shape;
  DType dtype = DType::fp32;
  KvDType kv_dtype = KvDType::same;  // KV cache storage (attention_spec copies it)
  int batch = 1, queries = 1;
  long long context = 0;
  int layers = 1;
  int pool = 0;  // materialised experts per layer
  std::uint64_t seed = 0;
  std::vector<float> bias;
  MoeSpec moe_spec(int layer) const;
  AttentionSpec attention_spec(int layer) const;
  int tokens() const { return batch * queries; }
};

// What an op hands back for verification.
struct OpOutput {
  std::vector<float> f;  // float results (outputs, weights, logits …)
  std::vector<int> i;    // integer results (expert ids, permutation …)
};

}  // namespace moeprobe
