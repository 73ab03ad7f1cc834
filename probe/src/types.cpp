#include "moeprobe/types.hpp"

#include <cmath>

#include "moekernels/index_math.hpp"
#include "moeplan/errors.hpp"

namespace moeprobe {

const char* dtype_name(DType d) {
  return d == DType::fp32 ? "fp32" : "bf16";
}

DType parse_dtype(const std::string& s) {
  if (s == "fp32") return DType::fp32;
  if (s == "bf16") return DType::bf16;
  throw moeplan::Error("unknown --dtype '" + s + "' (known: bf16, fp32)");
}

float round_to(DType d, float v) {
  if (d == DType::fp32) return v;
  return moekernels::bf16_bits_to_float(moekernels::float_to_bf16_bits(v));
}

const char* kv_dtype_name(KvDType k) {
  return k == KvDType::fp8 ? "fp8" : "same";
}

KvDType parse_kv_dtype(const std::string& s) {
  if (s == "same") return KvDType::same;
  if (s == "fp8" || s == "fp8_e4m3") return KvDType::fp8;
  throw moeplan::Error("unknown --kv-dtype '" + s + "' (known: fp8, same)");
}

float AttentionSpec::kv_round(float v) const {
  if (kv_dtype == KvDType::fp8) return moekernels::e4m3_round(v, kv_scale);
  return round_to(dtype, v);
}

float Pattern::value(std::uint64_t i) const {
  return scale * moekernels::pattern_value(seed, i);
}

Pattern Pattern::for_fan_in(std::uint64_t seed, long long fan_in) {
  return Pattern{seed,
                 static_cast<float>(std::sqrt(3.0 / static_cast<double>(fan_in > 0 ? fan_in : 1)))};
}

MoeSpec LayerSpec::moe_spec(int layer) const {
  MoeSpec s;
  s.hidden = shape.hidden;
  s.shape = *shape.moe;
  s.dtype = dtype;
  s.pool = pool;
  s.seed = seed + 1000ull * static_cast<std::uint64_t>(layer) + 20;
  s.bias = bias;
  return s;
}

AttentionSpec LayerSpec::attention_spec(int layer) const {
  AttentionSpec a;
  a.batch = batch;
  a.queries = queries;
  a.context = context;
  a.dtype = dtype;
  a.kv_dtype = kv_dtype;
  a.seed = seed + 1000ull * static_cast<std::uint64_t>(layer) + 40;
  const AttnShape& at = shape.attn;
  a.heads = at.heads;
  if (at.mla) {
    a.kv_heads = 1;
    a.qk_dim = at.kv_lora_rank + at.rope_dim;
    a.v_dim = at.kv_lora_rank;
    a.shared_kv = true;
    a.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(at.nope_dim + at.rope_dim)));
  } else {
    a.kv_heads = at.kv_heads;
    a.qk_dim = at.head_dim;
    a.v_dim = at.head_dim;
    a.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(at.head_dim)));
  }
  return a;
}

}  // namespace moeprobe
