#include "moeprobe/shapes.hpp"

#include "moeplan/errors.hpp"

namespace moeprobe {

namespace {

AttnShape attn_shape(const moeplan::Model& m) {
  const auto& a = m.attention;
  AttnShape s;
  s.heads = a.heads;
  if (a.type == moeplan::AttentionType::mla) {
    s.mla = true;
    s.q_lora_rank = a.q_lora_rank;
    s.kv_lora_rank = a.kv_lora_rank;
    s.rope_dim = a.qk_rope_head_dim;
    s.nope_dim = a.qk_nope_head_dim;
    s.v_head_dim = a.v_head_dim;
    if (s.kv_lora_rank <= 0 || s.rope_dim <= 0 || s.nope_dim <= 0 || s.v_head_dim <= 0)
      throw moeplan::Error("model " + m.id +
                           ": MLA attention needs kv_lora_rank, qk_rope_head_dim, "
                           "qk_nope_head_dim and v_head_dim");
  } else {
    s.kv_heads = a.kv_heads > 0 ? a.kv_heads : a.heads;
    s.head_dim = a.head_dim > 0 ? a.head_dim : (a.heads > 0 ? m.hidden_size / a.heads : 0);
    if (s.head_dim <= 0 || s.heads % s.kv_heads != 0)
      throw moeplan::Error("model " + m.id +
                           ": attention needs head_dim and heads divisible by kv_heads");
  }
  if (s.heads <= 0) throw moeplan::Error("model " + m.id + ": attention.heads must be positive");
  return s;
}

}  // namespace

LayerShape layer_shape(const moeplan::Model& m) {
  if (m.hidden_size <= 0) throw moeplan::Error("model " + m.id + ": hidden_size must be positive");
  LayerShape s;
  s.hidden = m.hidden_size;
  s.attn = attn_shape(m);
  s.dense_ffn = m.dense_ffn_size;
  if (m.moe) {
    MoeShape x;
    x.experts = m.moe->routed_experts;
    x.top_k = m.moe->experts_per_token;
    x.ffn = m.moe->expert_ffn_size;
    x.shared_experts = m.moe->shared_experts;
    x.shared_ffn = m.moe->shared_expert_ffn_size > 0 ? m.moe->shared_expert_ffn_size : x.ffn;
    x.sigmoid_grouped = m.moe->routing == "sigmoid_grouped";
    x.n_group = x.sigmoid_grouped ? (m.moe->n_group > 0 ? m.moe->n_group : 1) : 0;
    x.topk_group = x.sigmoid_grouped ? (m.moe->topk_group > 0 ? m.moe->topk_group : x.n_group) : 0;
    if (x.experts <= 0 || x.top_k <= 0 || x.top_k > x.experts || x.ffn <= 0)
      throw moeplan::Error(
          "model " + m.id +
          ": moe needs routed_experts >= experts_per_token > 0 and expert_ffn_size");
    if (x.sigmoid_grouped && (x.experts % x.n_group != 0 || x.topk_group > x.n_group ||
                              x.topk_group * (x.experts / x.n_group) < x.top_k))
      throw moeplan::Error("model " + m.id +
                           ": grouped routing needs n_group dividing routed_experts and "
                           "topk_group groups holding at least experts_per_token experts");
    s.moe = x;
  } else if (m.dense_ffn_size <= 0) {
    throw moeplan::Error("model " + m.id + ": a dense model needs dense_ffn_size");
  }
  return s;
}

LayerShape dense_layer_shape(const moeplan::Model& m) {
  LayerShape s = layer_shape(m);
  s.moe.reset();
  if (s.dense_ffn <= 0)
    throw moeplan::Error("model " + m.id + ": dense layers need dense_ffn_size");
  return s;
}

std::vector<Projection> projections(const moeplan::Model& m) {
  const LayerShape s = layer_shape(m);
  const int h = s.hidden;
  std::vector<Projection> p;
  const AttnShape& a = s.attn;
  if (a.mla) {
    const int qk = a.nope_dim + a.rope_dim;
    if (a.q_lora_rank > 0) {
      p.push_back({"attn.q_a", a.q_lora_rank, h});
      p.push_back({"attn.q_b", a.heads * qk, a.q_lora_rank});
    } else {
      p.push_back({"attn.q", a.heads * qk, h});
    }
    p.push_back({"attn.kv_a", a.kv_lora_rank + a.rope_dim, h});
    p.push_back({"attn.o", h, a.heads * a.v_head_dim});
  } else {
    p.push_back({"attn.qkv", (a.heads + 2 * a.kv_heads) * a.head_dim, h});
    p.push_back({"attn.o", h, a.heads * a.head_dim});
  }
  if (s.moe && s.moe->shared_experts > 0) {
    const int f = s.moe->shared_experts * s.moe->shared_ffn;
    p.push_back({"shared.gate_up", 2 * f, h});
    p.push_back({"shared.down", h, f});
  }
  if (m.dense_ffn_size > 0 && (!m.moe || m.moe->dense_layers > 0)) {
    p.push_back({"dense.gate_up", 2 * m.dense_ffn_size, h});
    p.push_back({"dense.down", h, m.dense_ffn_size});
  }
  if (m.vocab_size > 0) p.push_back({"lm_head", m.vocab_size, h});
  return p;
}

std::vector<std::string> synthetic_model_ids() {
  return {"synthetic-tiny", "synthetic-mla"};
}

moeplan::Model find_model(const std::string& id, const moeplan::Catalog* cat) {
  if (id == "synthetic-tiny") {
    moeplan::Model m;
    m.id = id;
    m.name = "Synthetic tiny MoE (GQA, softmax routing)";
    m.layers = 4;
    m.hidden_size = 256;
    m.vocab_size = 1000;
    m.attention.type = moeplan::AttentionType::gqa;
    m.attention.heads = 8;
    m.attention.kv_heads = 2;
    m.attention.head_dim = 32;
    m.dense_ffn_size = 512;
    moeplan::Moe x;
    x.routed_experts = 16;
    x.experts_per_token = 4;
    x.expert_ffn_size = 128;
    x.shared_experts = 1;
    x.shared_expert_ffn_size = 128;
    x.dense_layers = 1;
    m.moe = x;
    return m;
  }
  if (id == "synthetic-mla") {
    moeplan::Model m;
    m.id = id;
    m.name = "Synthetic MLA MoE (DeepSeek-style grouped sigmoid routing)";
    m.layers = 4;
    m.hidden_size = 192;
    m.vocab_size = 500;
    m.attention.type = moeplan::AttentionType::mla;
    m.attention.heads = 4;
    m.attention.q_lora_rank = 96;
    m.attention.kv_lora_rank = 64;
    m.attention.qk_rope_head_dim = 16;
    m.attention.qk_nope_head_dim = 32;
    m.attention.v_head_dim = 32;
    m.dense_ffn_size = 384;
    moeplan::Moe x;
    x.routed_experts = 32;
    x.experts_per_token = 4;
    x.expert_ffn_size = 64;
    x.shared_experts = 1;
    x.shared_expert_ffn_size = 64;
    x.routing = "sigmoid_grouped";
    x.n_group = 8;
    x.topk_group = 3;
    x.dense_layers = 1;
    m.moe = x;
    return m;
  }
  if (!cat) {
    std::vector<std::string> known = synthetic_model_ids();
    throw moeplan::UnknownIdError("model", id, known);
  }
  return cat->model(id);
}

long long expert_bytes(const MoeShape& m, int hidden, DType d) {
  return 3LL * m.ffn * hidden * dtype_bytes(d);
}

}  // namespace moeprobe
