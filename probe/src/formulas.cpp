#include "moeprobe/formulas.hpp"

namespace moeprobe {

namespace {

double elt(DType d) {
  return static_cast<double>(dtype_bytes(d));
}

// Y[T, n] = X[T, k] W[n, k]^T: X and Y fp32, W in d.
Work proj(double t, double n, double k, DType d) {
  return Work{t * k * 4 + n * k * elt(d) + t * n * 4, 2 * t * n * k};
}

Work operator+(Work a, Work b) {
  return Work{a.bytes + b.bytes, a.flops + b.flops};
}

}  // namespace

Work triad_work(const TriadSpec& s) {
  const double n = static_cast<double>(s.n);
  return Work{3 * n * 4, 2 * n};
}

Work gemm_work(const GemmSpec& s) {
  return proj(s.m, s.n, s.k, s.dtype);
}

Work router_work(const MoeSpec& s, int tokens) {
  const double m = tokens, h = s.hidden, e = s.shape.experts, k = s.shape.top_k;
  return Work{m * h * 4 + e * h * 4 + m * e * 4 + m * k * 8, 2 * m * h * e};
}

Work permute_work(const MoeSpec& s, int tokens) {
  const double a = static_cast<double>(tokens) * s.shape.top_k, h = s.hidden;
  return Work{a * 4 + 2 * a * 4 + 2 * a * h * 4, 0};
}

Work experts_work(const MoeSpec& s, int tokens, int touched) {
  const double a = static_cast<double>(tokens) * s.shape.top_k, h = s.hidden, f = s.shape.ffn;
  return Work{touched * 3 * f * h * elt(s.dtype) + 2 * a * h * 4, a * 6 * f * h};
}

Work combine_work(const MoeSpec& s, int tokens) {
  const double m = tokens, a = m * s.shape.top_k, h = s.hidden;
  return Work{a * h * 4 + m * h * 4 + a * 8, 2 * a * h};
}

Work moe_fused_work(const MoeSpec& s, int tokens, int touched) {
  const double m = tokens, a = m * s.shape.top_k, h = s.hidden, e = s.shape.experts,
               f = s.shape.ffn,
               fs = static_cast<double>(s.shape.shared_experts) * s.shape.shared_ffn;
  Work w;
  w.bytes = m * h * 4 + e * h * 4 + touched * 3 * f * h * elt(s.dtype) + 3 * fs * h * elt(s.dtype) +
            m * h * 4;
  w.flops = 2 * m * h * e + a * 6 * f * h + m * 6 * fs * h + 2 * a * h;
  return w;
}

double attended_pairs(const AttentionSpec& s) {
  const double l = static_cast<double>(s.context), q = s.queries;
  // sum over qi of (L - Q + qi + 1) = Q*(L - Q) + Q(Q+1)/2
  return s.batch * (q * (l - q) + q * (q + 1) / 2);
}

Work attention_work(const AttentionSpec& s) {
  const double b = s.batch, q = s.queries, l = static_cast<double>(s.context);
  const double row = s.kv_heads * (static_cast<double>(s.qk_dim) + (s.shared_kv ? 0 : s.v_dim));
  Work w;
  w.bytes = b * l * row * s.kv_bytes() + b * q * s.heads * s.qk_dim * 4.0 +
            b * q * s.heads * s.v_dim * 4.0;
  w.flops = 2.0 * s.heads * attended_pairs(s) * (s.qk_dim + s.v_dim);
  return w;
}

Work layer_work(const LayerSpec& s, const std::vector<int>& touched_per_layer) {
  const double t = s.tokens();
  const LayerShape& sh = s.shape;
  const AttnShape& a = sh.attn;
  const double h = sh.hidden;
  Work total;
  for (int l = 0; l < s.layers; ++l) {
    Work w;
    if (a.mla) {
      const double qk = a.nope_dim + a.rope_dim;
      if (a.q_lora_rank > 0)
        w = w + proj(t, a.q_lora_rank, h, s.dtype) + proj(t, a.heads * qk, a.q_lora_rank, s.dtype);
      else
        w = w + proj(t, a.heads * qk, h, s.dtype);
      w = w + proj(t, a.kv_lora_rank + a.rope_dim, h, s.dtype);
      // absorbed W_uk and W_uv, per head
      w = w +
          Work{a.heads * (a.nope_dim + a.v_head_dim) * static_cast<double>(a.kv_lora_rank) *
                   elt(s.dtype),
               2 * t * a.heads * (a.nope_dim + a.v_head_dim) * static_cast<double>(a.kv_lora_rank)};
      w = w + proj(t, h, a.heads * a.v_head_dim, s.dtype);
    } else {
      w = w + proj(t, (a.heads + 2.0 * a.kv_heads) * a.head_dim, h, s.dtype);
      w = w + proj(t, h, a.heads * a.head_dim, s.dtype);
    }
    w = w + attention_work(s.attention_spec(l));
    if (sh.moe) {
      const int touched = l < static_cast<int>(touched_per_layer.size()) ? touched_per_layer[l] : 0;
      w = w + moe_fused_work(s.moe_spec(l), s.tokens(), touched);
    } else {
      w = w + proj(t, 2.0 * sh.dense_ffn, h, s.dtype) + proj(t, h, sh.dense_ffn, s.dtype);
    }
    total = total + w;
  }
  return total;
}

}  // namespace moeprobe
