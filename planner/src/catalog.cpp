#include "moeplan/catalog.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "moeplan/errors.hpp"
#include "moeplan/json_read.hpp"
#include "moeplan/system.hpp"

#ifndef MOEPLAN_DATA_DIR
#define MOEPLAN_DATA_DIR "data"
#endif

namespace moeplan {

const char* component_name(Component c) {
  switch (c) {
    case Component::embeddings:
      return "embeddings";
    case Component::attention:
      return "attention";
    case Component::dense_ffn:
      return "dense_ffn";
    case Component::shared_experts:
      return "shared_experts";
    case Component::routed_experts:
      return "routed_experts";
  }
  return "?";
}

const char* model_kind_name(ModelKind k) {
  switch (k) {
    case ModelKind::generate:
      return "generate";
    case ModelKind::embed:
      return "embed";
    case ModelKind::rerank:
      return "rerank";
  }
  return "?";
}

const char* device_kind_name(DeviceKind k) {
  switch (k) {
    case DeviceKind::gpu:
      return "gpu";
    case DeviceKind::cpu:
      return "cpu";
    case DeviceKind::unified:
      return "unified";
  }
  return "gpu";
}

bool Device::has_hw_format(const std::string& f) const {
  return std::find(hw_formats.begin(), hw_formats.end(), f) != hw_formats.end();
}

double Device::peak_tflops_for(const std::string& hw_format) const {
  auto get = [&](const std::string& k) -> double {
    auto it = peak_tflops.find(k);
    return it == peak_tflops.end() ? 0.0 : it->second;
  };
  if ((hw_format == "fp8" || hw_format == "fp4" || hw_format == "int8") &&
      has_hw_format(hw_format)) {
    const double v = get(hw_format);
    if (v > 0) return v;
  }
  for (const char* k : {"bf16", "fp16", "fp32"}) {
    const double v = get(k);
    if (v > 0) return v;
  }
  return 0;
}

std::string default_data_dir() {
  if (const char* env = std::getenv("MOEPLAN_DATA"); env && *env) return env;
  return MOEPLAN_DATA_DIR;
}

namespace {

const std::vector<std::string> kProvenanceKeys = {"source", "as_of", "estimated", "notes"};

std::vector<std::string> with_provenance(std::vector<std::string> keys) {
  keys.insert(keys.end(), kProvenanceKeys.begin(), kProvenanceKeys.end());
  return keys;
}

Provenance read_provenance(const JsonView& v) {
  Provenance p;
  p.source = v.string("source");
  if (p.source.empty()) v.fail_member("source", "must not be empty");
  p.as_of = v.date("as_of");  // YYYY-MM or YYYY-MM-DD
  p.estimated = v.boolean_or("estimated", false);
  p.notes = v.string_or("notes", "");
  if (p.estimated && p.notes.empty())
    v.fail_member("notes", "required when \"estimated\" is true: say what was estimated and how");
  return p;
}

int read_int(const JsonView& v, std::string_view key, int def = 0, bool required = false) {
  if (required) return static_cast<int>(v.positive_int(key));
  const long long n = v.integer_or(key, def);
  if (n < 0) v.fail_member(key, "expected an integer >= 0, found " + std::to_string(n));
  return static_cast<int>(n);
}

struct FileDoc {
  std::string path;
  Json json;
};

FileDoc open_catalog_file(const std::string& dir, const std::string& name,
                          std::string& hash_input) {
  FileDoc d;
  d.path = (std::filesystem::path(dir) / name).string();
  std::ifstream in(d.path, std::ios::binary);
  if (!in) throw InputError(d.path, "", "cannot open catalog file");
  std::ostringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  hash_input += name;
  hash_input += '\0';
  hash_input += text;
  d.json = parse_json_text(text, d.path);
  return d;
}

JsonView root_of(const FileDoc& d, std::initializer_list<std::string_view> arrays) {
  JsonView root(d.json, d.path);
  if (!root.is_object()) root.fail("expected a JSON object at the top level");
  std::vector<std::string> keys = {"schema_version"};
  for (auto a : arrays) keys.emplace_back(a);
  if (std::string(d.path).find("fx.json") != std::string::npos) keys.emplace_back("base");
  root.only_keys(keys);
  const long long ver = root.integer("schema_version");
  if (ver != 1)
    root.fail_member("schema_version",
                     "unsupported schema version " + std::to_string(ver) + " (expected 1)");
  return root;
}

template <typename T>
void check_unique_ids(const std::vector<T>& items, const std::vector<JsonView>& views,
                      const std::string& what) {
  std::set<std::string> seen;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (items[i].id.empty()) views[i].fail_member("id", "must not be empty");
    if (!seen.insert(items[i].id).second)
      views[i].fail_member("id", "duplicate " + what + " id '" + items[i].id + "'");
  }
}

// DeepSeek V4-style compressed attention: the real layout in `compressed`, and the MLA-shaped
// fields filled so that one cached entry per token per layer is head_dim elements (one shared
// K=V head, RoPE dims included) and the cache shrinks by the ratios' harmonic mean.
void read_compressed_attention(const JsonView& a, Attention& at, int layers, int mtp_layers) {
  CompressedAttention c;
  c.head_dim = read_int(a, "head_dim", 0, true);
  at.kv_heads = read_int(a, "kv_heads", 1);
  if (at.kv_heads != 1) a.fail_member("kv_heads", "csa attention has one shared K=V head");
  at.q_lora_rank = read_int(a, "q_lora_rank", 0, true);
  at.qk_rope_head_dim = read_int(a, "qk_rope_head_dim", 0, true);
  if (at.qk_rope_head_dim >= c.head_dim)
    a.fail_member("qk_rope_head_dim", "must be smaller than head_dim");
  c.o_groups = read_int(a, "o_groups", 0, true);
  c.o_lora_rank = read_int(a, "o_lora_rank", 0, true);
  if ((static_cast<long long>(at.heads) * c.head_dim) % c.o_groups != 0)
    a.fail_member("o_groups", "must divide heads × head_dim");
  if (auto ix = a.get("indexer")) {
    ix->only_keys({"heads", "head_dim"});
    c.index_heads = static_cast<int>(ix->positive_int("heads"));
    c.index_head_dim = static_cast<int>(ix->positive_int("head_dim"));
  }
  const auto rv = a.at("compress_ratios");
  const auto arr = rv.array();
  // Configs list one ratio per layer, plus one per MTP layer at the end.
  if (static_cast<int>(arr.size()) != layers && static_cast<int>(arr.size()) != layers + mtp_layers)
    rv.fail("expected one ratio per layer (" + std::to_string(layers) + ", or " +
            std::to_string(layers + mtp_layers) + " with the MTP layers), found " +
            std::to_string(arr.size()));
  int window_only = 0;
  for (int i = 0; i < static_cast<int>(arr.size()); ++i) {
    const long long r = arr[static_cast<std::size_t>(i)].integer();
    if (r < 0) arr[static_cast<std::size_t>(i)].fail("expected a ratio >= 0 (0: window only)");
    if (i < layers) {
      c.compress_ratios.push_back(static_cast<int>(r));
      if (r == 0) ++window_only;
    }
  }
  if (a.has("kv_compression"))
    a.fail_member("kv_compression", "computed from compress_ratios for csa attention; remove it");
  at.sliding_window_layers = window_only;
  if (window_only > 0 && at.sliding_window_tokens <= 0)
    a.fail_member("sliding_window_tokens", "required (> 0) when a compress ratio is 0");
  at.kv_compression = kv_compression_from_ratios(c.compress_ratios);
  at.type = AttentionType::mla;
  at.head_dim = c.head_dim;
  at.kv_lora_rank = c.head_dim - at.qk_rope_head_dim;
  at.qk_nope_head_dim = c.head_dim - at.qk_rope_head_dim;
  at.v_head_dim = c.head_dim;
  at.compressed = std::move(c);
}

Attention read_attention(const JsonView& a, int layers, int mtp_layers) {
  a.only_keys({"type",
               "heads",
               "kv_heads",
               "head_dim",
               "q_lora_rank",
               "kv_lora_rank",
               "qk_rope_head_dim",
               "qk_nope_head_dim",
               "v_head_dim",
               "sliding_window_tokens",
               "sliding_window_layers",
               "linear_attention_layers",
               "sparse",
               "kv_compression",
               "o_groups",
               "o_lora_rank",
               "indexer",
               "compress_ratios",
               "global_kv_heads",
               "global_head_dim",
               "global_k_eq_v"});
  Attention at;
  const std::string type = a.one_of("type", {"mha", "gqa", "mla", "csa"});
  at.type = type == "mha"   ? AttentionType::mha
            : type == "gqa" ? AttentionType::gqa
                            : AttentionType::mla;
  at.heads = read_int(a, "heads", 0, true);
  if (at.type == AttentionType::mla)
    for (const char* k : {"global_kv_heads", "global_head_dim", "global_k_eq_v"})
      if (a.has(k))
        a.fail_member(k, "only for \"type\": \"gqa\" or \"mha\" (MLA layers cache one latent)");
  if (type != "csa")
    for (const char* k : {"o_groups", "o_lora_rank", "indexer", "compress_ratios"})
      if (a.has(k)) a.fail_member(k, "only for \"type\": \"csa\" (DeepSeek V4-style) attention");
  at.sliding_window_tokens = a.integer_or("sliding_window_tokens", 0);
  if (type == "csa") {
    if (a.has("sliding_window_layers"))
      a.fail_member("sliding_window_layers", "counted from compress_ratios (ratio 0) for csa");
    read_compressed_attention(a, at, layers, mtp_layers);
  } else if (at.type == AttentionType::mla) {
    at.q_lora_rank = read_int(a, "q_lora_rank");
    at.kv_lora_rank = read_int(a, "kv_lora_rank", 0, true);
    at.qk_rope_head_dim = read_int(a, "qk_rope_head_dim", 0, true);
    at.qk_nope_head_dim = read_int(a, "qk_nope_head_dim", 0, true);
    at.v_head_dim = read_int(a, "v_head_dim", 0, true);
  } else {
    at.head_dim = read_int(a, "head_dim", 0, true);
    at.kv_heads = at.type == AttentionType::mha ? read_int(a, "kv_heads", at.heads)
                                                : read_int(a, "kv_heads", 0, true);
    if (at.kv_heads > at.heads) a.fail_member("kv_heads", "must not exceed heads");
    if (at.heads % at.kv_heads != 0)
      a.fail_member("kv_heads",
                    "heads (" + std::to_string(at.heads) + ") must be a multiple of kv_heads");
    // The full-attention layers' own geometry (Gemma 4's global layers); absent = the above.
    if (a.has("global_kv_heads")) {
      at.global_kv_heads = static_cast<int>(a.positive_int("global_kv_heads"));
      if (at.global_kv_heads > at.heads) a.fail_member("global_kv_heads", "must not exceed heads");
      if (at.heads % at.global_kv_heads != 0)
        a.fail_member("global_kv_heads", "heads (" + std::to_string(at.heads) +
                                             ") must be a multiple of global_kv_heads");
    }
    if (a.has("global_head_dim"))
      at.global_head_dim = static_cast<int>(a.positive_int("global_head_dim"));
    at.global_k_eq_v = a.boolean_or("global_k_eq_v", false);
  }
  if (type != "csa") {
    at.sliding_window_layers = read_int(a, "sliding_window_layers");
    if (at.sliding_window_layers > 0 && at.sliding_window_tokens <= 0)
      a.fail_member("sliding_window_tokens", "required (> 0) when sliding_window_layers is set");
    // "Global" names the layers outside the window: without sliding-window layers there are none
    // to tell apart, and kv_heads / head_dim already describe every layer.
    for (const char* k : {"global_kv_heads", "global_head_dim", "global_k_eq_v"})
      if (a.has(k) && at.sliding_window_layers <= 0)
        a.fail_member(k,
                      "describes the full-attention layers beside sliding-window ones; "
                      "requires sliding_window_layers > 0");
    at.kv_compression = a.number_or("kv_compression", 1.0);
    if (at.kv_compression < 1) a.fail_member("kv_compression", "expected a factor >= 1");
  }
  at.linear_attention_layers = read_int(a, "linear_attention_layers");
  if (auto s = a.get("sparse")) {
    s->only_keys({"type", "topk_tokens"});
    at.sparse_type = s->one_of("type", {"dsa", "msa", "nsa"});
    at.sparse_topk_tokens = s->positive_int("topk_tokens");
  }
  return at;
}

Moe read_moe(const JsonView& m) {
  m.only_keys({"routed_experts", "experts_per_token", "shared_experts", "expert_ffn_size",
               "shared_expert_ffn_size", "dense_layers", "moe_layer_step", "routing", "n_group",
               "topk_group"});
  Moe moe;
  moe.routed_experts = read_int(m, "routed_experts", 0, true);
  moe.experts_per_token = read_int(m, "experts_per_token", 0, true);
  if (moe.experts_per_token > moe.routed_experts)
    m.fail_member("experts_per_token", "must not exceed routed_experts");
  moe.shared_experts = read_int(m, "shared_experts");
  moe.expert_ffn_size = read_int(m, "expert_ffn_size", 0, true);
  moe.shared_expert_ffn_size = read_int(m, "shared_expert_ffn_size", moe.expert_ffn_size);
  moe.dense_layers = read_int(m, "dense_layers");
  moe.moe_layer_step = read_int(m, "moe_layer_step", 1);
  if (moe.moe_layer_step < 1) m.fail_member("moe_layer_step", "must be at least 1");
  moe.routing = m.has("routing")
                    ? m.one_of("routing", {"softmax", "sigmoid", "sigmoid_grouped", "sqrtsoftplus"})
                    : "softmax";
  moe.n_group = read_int(m, "n_group");
  moe.topk_group = read_int(m, "topk_group");
  return moe;
}

Component parse_component(const JsonView& v, const std::string& key) {
  for (Component c : kComponents)
    if (key == component_name(c)) return c;
  v.fail_member(key,
                "unknown weight component (expected default, embeddings, attention, dense_ffn, "
                "shared_experts or routed_experts)");
}

// Context extension, published KV figure, params note and the estimated-field list.
void read_model_extras(const JsonView& v, Model& m) {
  if (auto c = v.get("context_extension")) {
    c->only_keys(with_provenance({"method", "factor", "max_context_tokens", "quality_caveat"}));
    ContextExtension e;
    e.method = c->one_of("method", {"yarn", "linear", "dynamic_ntk", "longrope"});
    e.factor = c->positive("factor");
    e.max_context_tokens = c->positive_int("max_context_tokens");
    if (e.max_context_tokens <= m.max_context_tokens)
      c->fail_member("max_context_tokens", "must exceed the native max_context_tokens (" +
                                               std::to_string(m.max_context_tokens) + ")");
    e.quality_caveat = c->string("quality_caveat");
    if (e.quality_caveat.empty()) c->fail_member("quality_caveat", "must not be empty");
    e.prov = read_provenance(*c);
    m.context_extension = e;
  }
  if (auto k = v.get("published_kv")) {
    k->only_keys(with_provenance({"bytes_per_token", "kv_precision"}));
    PublishedKv p;
    p.bytes_per_token = k->positive("bytes_per_token");
    p.kv_precision = k->string("kv_precision");
    p.prov = read_provenance(*k);
    m.published_kv = p;
  }
  m.params_note = v.string_or("params_note", "");
  static const std::set<std::string> kEstimable = {
      "total_params_b", "active_params_b",  "max_context_tokens",
      "attention",      "kv_compression",   "moe",
      "mtp_layers",     "native_precision", "release",
      "dense_ffn_size", "global_kv_heads",  "global_head_dim"};
  m.estimated_fields = v.strings_or_empty("estimated_fields");
  for (const auto& f : m.estimated_fields)
    if (!kEstimable.count(f)) v.fail_member("estimated_fields", "unknown field name \"" + f + "\"");
  if (!m.estimated_fields.empty() && !v.boolean_or("estimated", false))
    v.fail_member("estimated", "must be true when estimated_fields lists fields");
}

Model read_model(const JsonView& v) {
  v.only_keys(with_provenance({"id",
                               "name",
                               "kind",
                               "family",
                               "license",
                               "license_notes",
                               "release",
                               "total_params_b",
                               "active_params_b",
                               "layers",
                               "hidden_size",
                               "vocab_size",
                               "max_context_tokens",
                               "tied_embeddings",
                               "attention",
                               "dense_ffn_size",
                               "moe",
                               "mtp_layers",
                               "native_precision",
                               "checkpoints",
                               "quality_scores",
                               "context_extension",
                               "published_kv",
                               "params_note",
                               "estimated_fields"}));
  Model m;
  m.id = v.string("id");
  m.name = v.string("name");
  m.family = v.string("family");
  m.license = v.string("license");
  m.license_notes = v.string_or("license_notes", "");
  m.release = v.string_or("release", "");
  // "YYYY-MM" (or a full date), the form reports sort and compare by.
  if (!m.release.empty() &&
      !(m.release.size() >= 7 && std::isdigit(static_cast<unsigned char>(m.release[0])) &&
        std::isdigit(static_cast<unsigned char>(m.release[3])) && m.release[4] == '-' &&
        std::isdigit(static_cast<unsigned char>(m.release[5])) &&
        std::isdigit(static_cast<unsigned char>(m.release[6]))))
    v.fail_member("release", "expected a YYYY-MM date, found '" + m.release + "'");
  if (v.has("kind")) {
    const std::string k = v.one_of("kind", {"generate", "embed", "rerank"});
    m.kind = k == "embed"    ? ModelKind::embed
             : k == "rerank" ? ModelKind::rerank
                             : ModelKind::generate;
  }
  m.total_params_b = v.positive("total_params_b");
  m.active_params_b = v.positive("active_params_b");
  if (m.active_params_b > m.total_params_b * 1.0000001)
    v.fail_member("active_params_b", "active parameters (" + std::to_string(m.active_params_b) +
                                         "B) exceed total parameters (" +
                                         std::to_string(m.total_params_b) + "B)");
  m.layers = read_int(v, "layers", 0, true);
  m.hidden_size = read_int(v, "hidden_size", 0, true);
  m.vocab_size = read_int(v, "vocab_size", 0, true);
  m.max_context_tokens = v.positive_int("max_context_tokens");
  m.tied_embeddings = v.boolean_or("tied_embeddings", false);
  m.mtp_layers = read_int(v, "mtp_layers");
  m.attention = read_attention(v.at("attention"), m.layers, m.mtp_layers);
  if (m.attention.sliding_window_layers + m.attention.linear_attention_layers > m.layers)
    v.at("attention").fail("sliding_window_layers + linear_attention_layers exceed layers");
  if (m.attention.has_global_geometry() &&
      m.attention.sliding_window_layers + m.attention.linear_attention_layers >= m.layers)
    v.at("attention")
        .fail("global_kv_heads / global_head_dim are set but no layer attends to the full context");
  m.dense_ffn_size = read_int(v, "dense_ffn_size");
  if (auto moe = v.get("moe")) {
    m.moe = read_moe(*moe);
    if (m.moe->dense_layers > m.layers) moe->fail_member("dense_layers", "exceeds layers");
    if (m.moe->moe_layer_step > 1 &&
        m.layers / m.moe->moe_layer_step != m.layers - m.moe->dense_layers)
      moe->fail_member("moe_layer_step", "every " + std::to_string(m.moe->moe_layer_step) +
                                             "th of " + std::to_string(m.layers) +
                                             " layers MoE makes " +
                                             std::to_string(m.layers / m.moe->moe_layer_step) +
                                             " MoE layers, but layers − dense_layers = " +
                                             std::to_string(m.layers - m.moe->dense_layers));
    if (m.moe->dense_layers > 0 && m.dense_ffn_size <= 0)
      v.fail_member("dense_ffn_size", "required when moe.dense_layers > 0");
  } else if (m.dense_ffn_size <= 0) {
    v.fail_member("dense_ffn_size", "required for a dense model (no \"moe\" object)");
  }
  const auto np = v.at("native_precision");
  if (!np.is_object()) np.fail("expected an object of component -> precision id");
  const std::string def = np.string("default");
  for (Component c : kComponents) m.native_precision[c] = def;
  for (auto it = np.raw().begin(); it != np.raw().end(); ++it) {
    if (it.key() == "default") continue;
    m.native_precision[parse_component(np, it.key())] = np.string(it.key());
  }
  for (const auto& c : v.array_or_empty("checkpoints")) {
    c.only_keys(with_provenance({"precision_label", "size_gb", "includes_mtp"}));
    Checkpoint ck;
    ck.precision_label = c.string("precision_label");
    ck.size_gb = c.positive("size_gb");
    ck.includes_mtp = c.boolean_or("includes_mtp", false);
    ck.prov = read_provenance(c);
    m.checkpoints.push_back(ck);
  }
  for (const auto& q : v.array_or_empty("quality_scores")) {
    q.only_keys(with_provenance({"benchmark", "value", "unit", "reported_by"}));
    QualityScore s;
    s.benchmark = q.one_of("benchmark", {"gpqa_diamond", "swe_bench_verified", "swe_bench_pro",
                                         "terminal_bench", "aa_intelligence_index", "arena_elo"});
    s.value = q.number("value");
    s.unit = q.string_or("unit", "");
    // Plan's quality floors compare these: a score out of range, or a benchmark given twice (the
    // first was used silently), passed catalog check (audit 2026-11-27).
    if (s.unit == "percent" && !(s.value >= 0 && s.value <= 100))
      q.fail_member("value", fmt::format("a percentage must be within 0–100, found {}", s.value));
    if (!(s.value >= 0)) q.fail_member("value", fmt::format("expected ≥ 0, found {}", s.value));
    for (const auto& earlier : m.quality_scores)
      if (earlier.benchmark == s.benchmark)
        q.fail_member("benchmark", "'" + s.benchmark + "' is given twice for this model");
    s.reported_by = q.one_of("reported_by", {"vendor", "independent"});
    s.prov = read_provenance(q);
    m.quality_scores.push_back(s);
  }
  read_model_extras(v, m);
  m.prov = read_provenance(v);
  return m;
}

Device read_device(const JsonView& v) {
  v.only_keys(with_provenance(
      {"id", "name", "vendor", "kind", "memory_gib", "usable_memory_gib", "memory_bandwidth_gb_s",
       "memory_bandwidth_gb_s_range", "peak_tflops", "hw_formats", "nvlink_gb_s", "pcie_gen",
       "pcie_lanes", "tdp_w", "form_factor", "max_per_node", "cores", "export_control_notes"}));
  Device d;
  d.id = v.string("id");
  d.name = v.string("name");
  d.vendor = v.string("vendor");
  const std::string kind = v.one_of("kind", {"gpu", "cpu", "unified"});
  d.kind = kind == "gpu" ? DeviceKind::gpu : kind == "cpu" ? DeviceKind::cpu : DeviceKind::unified;
  // Marketed memory sizes are binary (an "80 GB" H100 holds 80 GiB = 85.9e9 bytes).
  d.memory_gib = v.positive("memory_gib");
  d.memory_gb = d.memory_gib * kGibInGb;
  if (v.has("usable_memory_gib")) {
    const double u = v.positive("usable_memory_gib");
    if (u > d.memory_gib) v.fail_member("usable_memory_gib", "exceeds memory_gib");
    d.usable_memory_gb = u * kGibInGb;
  }
  d.memory_bandwidth_gb_s = v.positive("memory_bandwidth_gb_s");
  if (auto r = v.get("memory_bandwidth_gb_s_range")) {
    r->only_keys({"min", "max"});
    const double lo = r->positive("min"), hi = r->positive("max");
    if (lo > d.memory_bandwidth_gb_s || hi < d.memory_bandwidth_gb_s)
      r->fail("must contain memory_bandwidth_gb_s (" +
              std::to_string(static_cast<long long>(d.memory_bandwidth_gb_s)) + ")");
    d.memory_bandwidth_range_gb_s = std::make_pair(lo, hi);
  }
  const auto pk = v.at("peak_tflops");
  pk.only_keys({"fp32", "tf32", "bf16", "fp16", "fp8", "fp4", "int8"});
  for (auto it = pk.raw().begin(); it != pk.raw().end(); ++it)
    d.peak_tflops[it.key()] = pk.positive(it.key());
  if (d.peak_tflops.empty()) pk.fail("at least one data type's peak rate is required");
  const auto hf = v.at("hw_formats");
  for (const auto& f : hf.array()) {
    const std::string s = f.string();
    if (s != "fp8" && s != "fp4" && s != "int8")
      f.fail("expected fp8, fp4 or int8, found \"" + s + "\"");
    d.hw_formats.push_back(s);
  }
  d.nvlink_gb_s = v.number_or("nvlink_gb_s", 0);
  if (d.nvlink_gb_s < 0) v.fail_member("nvlink_gb_s", "must be >= 0");
  d.pcie_gen = read_int(v, "pcie_gen");
  d.pcie_lanes = read_int(v, "pcie_lanes");
  d.tdp_w = v.positive("tdp_w");
  d.form_factor = v.string_or("form_factor", "");
  d.max_per_node = read_int(v, "max_per_node", 8);
  if (d.max_per_node < 1) v.fail_member("max_per_node", "must be >= 1");
  d.cores = read_int(v, "cores");
  d.export_control_notes = v.string_or("export_control_notes", "");
  d.prov = read_provenance(v);
  return d;
}

std::optional<std::pair<double, double>> read_retention(const JsonView& v) {
  auto r = v.get("quality_retention_pct");
  if (!r) return std::nullopt;
  r->only_keys({"min", "max"});
  const double lo = r->positive("min"), hi = r->positive("max");
  if (lo > hi) r->fail("min exceeds max");
  if (hi > 100.0001) r->fail_member("max", "a retention above 100% is not meaningful");
  return std::make_pair(lo, hi);
}

const std::initializer_list<std::string_view> kHwFormats = {"bf16", "fp16", "fp8",
                                                            "fp4",  "int8", "none"};

}  // namespace

// FNV-1a 64-bit: a stable content hash for provenance (not a security hash).
static std::string fnv1a_hex(const std::string& s) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

double kv_compression_from_ratios(const std::vector<int>& ratios) {
  double n = 0, inv = 0;
  for (int r : ratios)
    if (r > 0) n += 1, inv += 1.0 / r;
  return n > 0 ? n / inv : 1.0;
}

namespace {

// DeepSeek V4 attention weights, summed over layers: wq_a (h→q_lora), wq_b (q_lora→heads×d),
// wkv (h→d, the one shared K=V head), wo_a (grouped: each of o_groups blocks maps heads×d/groups
// → o_lora), wo_b (groups×o_lora → h); compressed layers add a compressor (KV and gate
// projections, doubled for the overlapping ratio-4 windows) and the ratio-4 layers a lightning
// indexer (query projection from q_lora, per-head weights from h, its own compressor).
double compressed_attention_params(const Model& m) {
  const Attention& a = m.attention;
  const CompressedAttention& c = *a.compressed;
  const double h = m.hidden_size, d = c.head_dim, H = a.heads, qr = a.q_lora_rank;
  const double base = h * qr + qr * H * d + h * d +
                      (H * d / c.o_groups) * (c.o_groups * c.o_lora_rank) +
                      c.o_groups * c.o_lora_rank * h;
  double total = 0;
  for (int r : c.compress_ratios) {
    double layer = base;
    if (r > 0) {
      const double overlap = r == 4 ? 2.0 : 1.0;
      layer += 2.0 * h * overlap * d;
      if (r == 4 && c.index_heads > 0)
        layer += qr * c.index_heads * c.index_head_dim + h * c.index_heads +
                 2.0 * h * overlap * c.index_head_dim;
    }
    total += layer;
  }
  return total;
}

}  // namespace

std::map<Component, double> architecture_params(const Model& m) {
  std::map<Component, double> p;
  for (Component c : kComponents) p[c] = 0;
  const double h = m.hidden_size;
  const double L = m.layers;
  p[Component::embeddings] = h * m.vocab_size * (m.tied_embeddings ? 1.0 : 2.0);
  const Attention& a = m.attention;
  double attn = 0;
  if (a.compressed) {
    attn = compressed_attention_params(m) / L;  // summed over layers below
  } else if (a.type == AttentionType::mla) {
    const double qk_head = a.qk_nope_head_dim + a.qk_rope_head_dim;
    const double q = a.q_lora_rank > 0 ? h * a.q_lora_rank + a.q_lora_rank * a.heads * qk_head
                                       : h * a.heads * qk_head;
    const double kv_down = h * (a.kv_lora_rank + a.qk_rope_head_dim);
    const double kv_up = a.kv_lora_rank * a.heads * (a.qk_nope_head_dim + a.v_head_dim);
    const double o = a.heads * a.v_head_dim * h;
    attn = q + kv_down + kv_up + o;
  } else {
    attn = h * a.heads * a.head_dim + 2 * h * a.kv_heads * a.head_dim + a.heads * a.head_dim * h;
  }
  p[Component::attention] = attn * L;
  if (!a.compressed && a.type != AttentionType::mla &&
      (a.has_global_geometry() || a.global_k_eq_v)) {
    // The full-attention layers with their own geometry (Gemma 4's global layers): Q and O at
    // global_head_dim, K at global_kv_heads, and no V projection when K = V.
    const double d = a.full_head_dim(), kvh = a.full_kv_heads();
    const double global =
        h * a.heads * d + (a.global_k_eq_v ? 1.0 : 2.0) * h * kvh * d + a.heads * d * h;
    const double full_layers = L - a.sliding_window_layers - a.linear_attention_layers;
    p[Component::attention] += (global - attn) * full_layers;
  }
  if (m.moe) {
    const Moe& e = *m.moe;
    const double moe_layers = L - e.dense_layers;
    p[Component::dense_ffn] = 3.0 * h * m.dense_ffn_size * e.dense_layers;
    p[Component::shared_experts] =
        3.0 * h * e.shared_expert_ffn_size * e.shared_experts * moe_layers;
    p[Component::routed_experts] = 3.0 * h * e.expert_ffn_size * e.routed_experts * moe_layers;
    p[Component::attention] += h * e.routed_experts * moe_layers;  // router
  } else {
    p[Component::dense_ffn] = 3.0 * h * m.dense_ffn_size * L;
  }
  return p;
}

ParamCheck check_params(const Model& m) {
  ParamCheck r;
  const auto p = architecture_params(m);
  double total = 0, active = 0;
  for (const auto& [c, n] : p) {
    total += n;
    const bool routed = c == Component::routed_experts && m.moe && m.moe->routed_experts > 0;
    active += routed ? n * m.moe->experts_per_token / m.moe->routed_experts : n;
  }
  r.arch_total_b = total / 1e9;
  r.arch_active_b = active / 1e9;
  r.total_dev_pct = (r.arch_total_b - m.total_params_b) / m.total_params_b * 100.0;
  r.active_dev_pct = (r.arch_active_b - m.active_params_b) / m.active_params_b * 100.0;
  return r;
}

const Model* Catalog::find_model(const std::string& id) const {
  for (const auto& m : models)
    if (m.id == id) return &m;
  return nullptr;
}
const Device* Catalog::find_device(const std::string& id) const {
  for (const auto& d : devices)
    if (d.id == id) return &d;
  return nullptr;
}

template <typename T>
static const T& lookup(const std::vector<T>& v, const std::string& id, const std::string& what) {
  for (const auto& x : v)
    if (x.id == id) return x;
  std::vector<std::string> ids;
  for (const auto& x : v) ids.push_back(x.id);
  throw UnknownIdError(what, id, ids);
}

const Model& Catalog::model(const std::string& id) const {
  return lookup(models, id, "model");
}
const Device& Catalog::device(const std::string& id) const {
  return lookup(devices, id, "device");
}
const WeightFormat& Catalog::weight_format(const std::string& id) const {
  return lookup(weight_formats, id, "weight precision");
}
const KvFormat& Catalog::kv_format(const std::string& id) const {
  return lookup(kv_formats, id, "KV-cache precision");
}
const Engine& Catalog::engine(const std::string& id) const {
  return lookup(engines, id, "engine");
}
const Site& Catalog::site(const std::string& id) const {
  return lookup(sites, id, "site");
}

const System& Catalog::system(const std::string& id) const {
  return lookup(systems, id, "system");
}

const System* Catalog::find_system(const std::string& id) const {
  for (const auto& s : systems)
    if (s.id == id) return &s;
  return nullptr;
}

std::vector<const System*> Catalog::systems_for(const std::string& device_id) const {
  std::vector<const System*> out;
  for (const auto& s : systems)
    if (s.device == device_id) out.push_back(&s);
  return out;
}

double Catalog::fx_per_usd(const std::string& currency) const {
  if (currency == "USD") return 1.0;
  for (const auto& r : fx_rates)
    if (r.currency == currency) return r.per_usd;
  std::vector<std::string> ids{"USD"};
  for (const auto& r : fx_rates) ids.push_back(r.currency);
  throw UnknownIdError("currency", currency, ids);
}

std::vector<const ApiPrice*> Catalog::api_prices_for(const std::string& model_id) const {
  std::vector<const ApiPrice*> out;
  for (const auto& p : api_prices)
    if (p.model == model_id) out.push_back(&p);
  return out;
}
std::vector<const RentalPrice*> Catalog::rental_prices_for(const std::string& device_id) const {
  std::vector<const RentalPrice*> out;
  for (const auto& p : rental_prices)
    if (p.device == device_id) out.push_back(&p);
  return out;
}
std::vector<const HardwarePrice*> Catalog::hardware_prices_for(const std::string& device_id) const {
  std::vector<const HardwarePrice*> out;
  for (const auto& p : hardware_prices)
    if (p.device == device_id) out.push_back(&p);
  return out;
}

namespace {

ScaleUpKind parse_scale_up_kind(const JsonView& v) {
  const std::string k =
      v.one_of("kind", {"nvlink", "xgmi", "pcie_p2p", "pcie_host", "unified", "none"});
  for (ScaleUpKind x : {ScaleUpKind::nvlink, ScaleUpKind::xgmi, ScaleUpKind::pcie_p2p,
                        ScaleUpKind::pcie_host, ScaleUpKind::unified, ScaleUpKind::none})
    if (k == scale_up_kind_name(x)) return x;
  return ScaleUpKind::none;
}

SystemPrice read_system_price(const JsonView& v) {
  v.only_keys(with_provenance(
      {"basis", "currency", "price_low", "price_high", "includes_vat", "vat_rate", "what"}));
  SystemPrice p;
  p.basis = v.one_of("basis", {"street", "list", "quote"});
  p.currency = v.string("currency");
  p.price_low = v.positive("price_low");
  p.price_high = v.positive("price_high");
  if (p.price_low > p.price_high) v.fail_member("price_low", "exceeds price_high");
  p.includes_vat = v.boolean_or("includes_vat", false);
  p.vat_rate = v.has("vat_rate") ? v.fraction("vat_rate") : 0.0;
  if (p.includes_vat && p.vat_rate <= 0)
    v.fail_member("vat_rate", "required (> 0) when includes_vat is true");
  p.what = v.string_or("what", "");
  p.prov = read_provenance(v);
  return p;
}

System read_system(const JsonView& v, const std::vector<std::string>& device_ids) {
  v.only_keys(with_provenance({"id", "name", "device", "gpus_per_node", "form_factor", "scale_up",
                               "scale_out", "host", "wall_power_w", "rack_units",
                               "purchase_unit_nodes", "prices", "host_platform", "rentals"}));
  System s;
  s.id = v.string("id");
  s.name = v.string_or("name", s.id);
  s.device = v.string("device");
  if (std::find(device_ids.begin(), device_ids.end(), s.device) == device_ids.end())
    v.fail_member("device", UnknownIdError("device", s.device, device_ids).what());
  s.gpus_per_node = static_cast<int>(v.positive_int("gpus_per_node"));
  s.form_factor = v.one_of("form_factor", {"server", "workstation", "desktop", "rack"});
  {
    const JsonView u = v.at("scale_up");
    u.only_keys({"kind", "domain_gpus", "gb_s_per_gpu", "latency_us", "notes"});
    s.scale_up.kind = parse_scale_up_kind(u);
    s.scale_up.domain_gpus = static_cast<int>(u.positive_int("domain_gpus"));
    s.scale_up.gb_s_per_gpu = u.non_negative("gb_s_per_gpu");
    s.scale_up.latency_us = u.number_or("latency_us", 0);
    if (s.scale_up.domain_gpus < s.gpus_per_node && s.scale_up.kind != ScaleUpKind::none)
      u.fail_member("domain_gpus", "smaller than gpus_per_node: a node's GPUs share one domain");
    if (s.scale_up.kind != ScaleUpKind::none && s.scale_up.kind != ScaleUpKind::unified &&
        s.gpus_per_node > 1 && s.scale_up.gb_s_per_gpu <= 0)
      u.fail_member("gb_s_per_gpu", "must be > 0 for a multi-GPU scale-up domain");
  }
  {
    const JsonView o = v.at("scale_out");
    o.only_keys({"kind", "nics", "gbit_s_per_nic", "latency_us", "notes"});
    s.scale_out.kind = o.one_of("kind", {"infiniband", "ethernet", "roce", "none"});
    s.scale_out.nics = static_cast<int>(o.integer_or("nics", 0));
    s.scale_out.gbit_s_per_nic = o.number_or("gbit_s_per_nic", 0);
    s.scale_out.latency_us = o.number_or("latency_us", 0);
    if (s.scale_out.kind != "none" && (s.scale_out.nics < 1 || s.scale_out.gbit_s_per_nic <= 0))
      o.fail("a scale-out fabric needs nics >= 1 and gbit_s_per_nic > 0 (or kind \"none\")");
  }
  if (auto h = v.get("host")) {
    h->only_keys({"cpus", "ram_gb", "notes"});
    s.host_cpus = h->string_or("cpus", "");
    s.host_ram_gb = h->number_or("ram_gb", 0);
  }
  s.wall_power_w = v.positive("wall_power_w");
  s.rack_units = static_cast<int>(v.integer_or("rack_units", 0));
  if (v.get("purchase_unit_nodes"))
    s.purchase_unit_nodes = static_cast<int>(v.positive_int("purchase_unit_nodes"));
  for (const auto& p : v.array_or_empty("prices")) s.prices.push_back(read_system_price(p));
  for (const auto& p : v.array_or_empty("host_platform"))
    s.host_platform.push_back(read_system_price(p));
  for (const auto& r : v.array_or_empty("rentals")) {
    r.only_keys(with_provenance({"provider", "kind", "usd_per_node_hour"}));
    SystemRental x;
    x.provider = r.string("provider");
    x.kind = r.one_of("kind", {"on_demand", "reserved_1y", "reserved_3y", "spot"});
    x.usd_per_node_hour = r.positive("usd_per_node_hour");
    x.prov = read_provenance(r);
    s.rentals.push_back(x);
  }
  s.prov = read_provenance(v);
  return s;
}

EngineParallelism read_parallelism(const JsonView& v) {
  v.only_keys(with_provenance({"tensor", "pipeline", "expert", "data", "dp_attention",
                               "layer_split", "row_split", "multi_node", "default_split"}));
  EngineParallelism p;
  p.tensor = v.at("tensor").boolean();
  p.pipeline = v.at("pipeline").boolean();
  p.expert = v.at("expert").boolean();
  p.data = v.at("data").boolean();
  p.dp_attention = v.at("dp_attention").boolean();
  p.layer_split = v.boolean_or("layer_split", false);
  p.row_split = v.boolean_or("row_split", false);
  p.multi_node = v.at("multi_node").boolean();
  p.default_split = v.one_of("default_split", {"tensor", "layer"});
  if (p.default_split == "layer" && !p.layer_split && !p.pipeline)
    v.fail_member("default_split", "\"layer\" needs layer_split or pipeline to be true");
  if (p.default_split == "tensor" && !p.tensor && !p.row_split)
    v.fail_member("default_split", "\"tensor\" needs tensor or row_split to be true");
  p.prov = read_provenance(v);
  return p;
}

}  // namespace

namespace {

// A weight precision id must name an entry of precisions.json.
void require_weight_format(const Catalog& cat, const std::string& id, const JsonView& at,
                           std::string_view member = {}) {
  for (const auto& w : cat.weight_formats)
    if (w.id == id) return;
  std::vector<std::string> ids;
  for (const auto& w : cat.weight_formats) ids.push_back(w.id);
  const std::string why = UnknownIdError("weight precision", id, ids).what();
  if (member.empty()) at.fail(why);
  at.fail_member(member, why);
}

WeightFormat read_weight_format(const JsonView& v) {
  v.only_keys(with_provenance({"id", "bits_per_weight", "block_size", "scale_bits", "hw_format",
                               "quality_retention_pct", "engines"}));
  WeightFormat w;
  w.id = v.string("id");
  w.bits_per_weight = v.positive("bits_per_weight");
  if (w.bits_per_weight > 32) v.fail_member("bits_per_weight", "expected at most 32");
  w.block_size = read_int(v, "block_size");
  w.scale_bits = read_int(v, "scale_bits");
  w.hw_format = v.one_of("hw_format", kHwFormats);
  w.quality_retention_pct = read_retention(v);
  w.engines = v.strings_or_empty("engines");
  w.prov = read_provenance(v);
  return w;
}

KvFormat read_kv_format(const JsonView& v) {
  v.only_keys(with_provenance(
      {"id", "bits_per_element", "block_size", "scale_bits", "hw_format", "engines"}));
  KvFormat k;
  k.id = v.string("id");
  k.bits_per_element = v.positive("bits_per_element");
  k.block_size = read_int(v, "block_size");
  k.scale_bits = read_int(v, "scale_bits");
  k.hw_format = v.has("hw_format") ? v.one_of("hw_format", kHwFormats) : "none";
  k.engines = v.strings_or_empty("engines");
  k.prov = read_provenance(v);
  return k;
}

// precisions.json first: engines and models reference it.
void read_precisions(const FileDoc& f, Catalog& cat) {
  const auto root = root_of(f, {"weight_formats", "kv_formats"});
  const auto wv = root.array("weight_formats");
  for (const auto& v : wv) cat.weight_formats.push_back(read_weight_format(v));
  check_unique_ids(cat.weight_formats, wv, "weight precision");
  const auto kv = root.array("kv_formats");
  for (const auto& v : kv) cat.kv_formats.push_back(read_kv_format(v));
  check_unique_ids(cat.kv_formats, kv, "KV precision");
}

// The engine-layer keys performance.cpp looks up (engine_factor and its neighbours), by what
// their values are: an efficiency (a factor on the device layer; above 1 only where the device's
// derating is conservative, unified.apple.compute 1.26), a time or count that may be 0, or a
// count that must be at least 1. A typo ("gpu.bww") used to be ignored and 0 or a negative
// efficiency passed: TPOT inf, or faster with -0.85 than with 0.85 (audit 2026-11-27).
enum class EffKind { factor, non_negative, at_least_one };

const std::map<std::string, EffKind>& engine_efficiency_kinds() {
  static const std::map<std::string, EffKind> kinds = {
      {"bw", EffKind::factor},
      {"compute", EffKind::factor},
      {"attention", EffKind::factor},
      {"prefill_attention", EffKind::factor},
      {"step_overhead_ms", EffKind::non_negative},
      {"layer_overhead_us", EffKind::non_negative},
      {"moe_layer_overhead_us", EffKind::non_negative},
      {"comm_latency_us", EffKind::non_negative},
      {"ttft_overhead_ms", EffKind::non_negative},
      {"host_us_per_seq", EffKind::non_negative},
      {"gemm_half_tokens", EffKind::non_negative},
      {"prefill_attention_half_tokens", EffKind::non_negative},
      {"prefill_chunk_tokens", EffKind::at_least_one},
  };
  return kinds;
}

// One `efficiency` member: `max_num_seqs`; `gemm_tflops.<device>.<format>` or
// `moe_pair_ns.<device>.<format>`; or `[<kind>.[<vendor>.]]<name>` (docs/performance.md
// §Efficiencies).
double read_engine_efficiency(const JsonView& eff, const std::string& key) {
  const double x = eff.at(key).number();
  std::vector<std::string> parts;
  for (std::size_t at = 0, dot; at <= key.size(); at = dot + 1) {
    dot = std::min(key.find('.', at), key.size());
    parts.push_back(key.substr(at, dot - at));
  }
  auto fail = [&](const std::string& why) { eff.fail_member(key, why); };
  EffKind kind = EffKind::factor;
  if (key == "max_num_seqs") {
    kind = EffKind::at_least_one;
  } else if (parts[0] == "gemm_tflops" || parts[0] == "moe_pair_ns") {
    if (parts.size() != 3 || parts[1].empty() ||
        !(parts[2] == "bf16" || parts[2] == "fp8" || parts[2] == "fp4"))
      fail("expected " + parts[0] + ".<device>.<bf16|fp8|fp4>");
    if (!(x > 0)) fail(fmt::format("must be > 0, found {}", x));
    return x;
  } else {
    const bool kinded = parts[0] == "gpu" || parts[0] == "cpu" || parts[0] == "unified";
    const bool shape_ok = parts.size() == 1 || (kinded && parts.size() <= 3);
    const auto& kinds = engine_efficiency_kinds();
    const auto k = shape_ok ? kinds.find(parts.back()) : kinds.end();
    if (k == kinds.end()) {
      std::vector<std::string> names;
      for (const auto& [name, what] : kinds) names.push_back(name);
      fail(
          fmt::format("unknown efficiency key (expected [gpu|cpu|unified.[vendor.]]<name> with a "
                      "name among {}; or max_num_seqs, gemm_tflops.<device>.<format>, "
                      "moe_pair_ns.<device>.<format>)",
                      fmt::join(names, ", ")));
    }
    kind = k->second;
  }
  if (kind == EffKind::factor && !(x > 0 && x <= 2))
    fail(fmt::format("an efficiency must be in (0, 2], found {}", x));
  if (kind == EffKind::non_negative && !(x >= 0)) fail(fmt::format("must be >= 0, found {}", x));
  if (kind == EffKind::at_least_one && (!(x >= 1) || x != std::floor(x)))
    fail(fmt::format("must be a whole number >= 1, found {}", x));
  return x;
}

// Every string of the array member `key` (when present) is one of `allowed`.
void check_members(const JsonView& v, std::string_view key,
                   std::initializer_list<std::string_view> allowed) {
  const auto arr = v.get(key);
  if (!arr) return;
  const auto items = arr->array();
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::string s = items[i].string();
    if (std::find(allowed.begin(), allowed.end(), s) == allowed.end())
      items[i].fail(
          fmt::format("unknown value '{}' (expected one of {})", s, fmt::join(allowed, ", ")));
  }
}

Engine read_engine(const JsonView& v, const Catalog& cat) {
  v.only_keys(with_provenance({"id", "name", "device_kinds", "device_vendors", "weight_formats",
                               "kv_formats", "memory_utilization", "speculative", "efficiency",
                               "parallelism"}));
  Engine e;
  e.id = v.string("id");
  e.name = v.string("name");
  e.device_kinds = v.strings_or_empty("device_kinds");
  e.weight_formats = v.strings_or_empty("weight_formats");
  e.kv_formats = v.strings_or_empty("kv_formats");
  e.memory_utilization = v.fraction("memory_utilization");
  if (e.memory_utilization <= 0) v.fail_member("memory_utilization", "must be > 0");
  e.speculative = v.strings_or_empty("speculative");
  e.device_vendors = v.strings_or_empty("device_vendors");
  e.parallelism = read_parallelism(v.at("parallelism"));
  check_members(v, "device_kinds", {"gpu", "cpu", "unified"});
  check_members(v, "speculative", {"mtp", "eagle", "draft"});
  if (auto eff = v.get("efficiency")) {
    for (auto it = eff->raw().begin(); it != eff->raw().end(); ++it)
      e.efficiency[it.key()] = read_engine_efficiency(*eff, it.key());
  }
  e.prov = read_provenance(v);
  for (std::size_t i = 0; i < e.weight_formats.size(); ++i)
    require_weight_format(cat, e.weight_formats[i], v.at("weight_formats").array()[i]);
  return e;
}

// A catalog file whose entries sit in one array under `key` and carry unique ids (what:
// "engine", "device"...): each entry through `read`.
template <class T, class Read>
void read_entries(const FileDoc& f, const char* key, std::vector<T>& out, Read read,
                  const char* what) {
  const auto root = root_of(f, {key});
  const auto entries = root.array(key);
  for (const auto& v : entries) out.push_back(read(v));
  check_unique_ids(out, entries, what);
}

void read_engines(const FileDoc& f, Catalog& cat) {
  read_entries(
      f, "engines", cat.engines, [&](const JsonView& v) { return read_engine(v, cat); }, "engine");
}

void read_devices(const FileDoc& f, Catalog& cat) {
  read_entries(f, "devices", cat.devices, read_device, "device");
}

void read_models(const FileDoc& f, Catalog& cat) {
  auto read = [&](const JsonView& v) {
    Model m = read_model(v);
    const auto np = v.at("native_precision");
    for (auto it = np.raw().begin(); it != np.raw().end(); ++it)
      require_weight_format(cat, it.value().get<std::string>(), np, it.key());
    // The parameter invariant (computed vs published) is `catalog check`'s: check_params().
    return m;
  };
  read_entries(f, "models", cat.models, read, "model");
}

// `key` names one of `ids` (what: "model", "device"); the id.
std::string check_ref(const JsonView& v, std::string_view key, const std::vector<std::string>& ids,
                      const std::string& what) {
  const std::string id = v.string(key);
  if (std::find(ids.begin(), ids.end(), id) == ids.end())
    v.fail_member(key, UnknownIdError(what, id, ids).what());
  return id;
}

ApiPrice read_api_price(const JsonView& v, const std::vector<std::string>& model_ids) {
  v.only_keys(with_provenance({"model", "provider", "currency", "input_per_mtok",
                               "cached_input_per_mtok", "output_per_mtok", "tier"}));
  ApiPrice p;
  p.model = check_ref(v, "model", model_ids, "model");
  p.provider = v.string("provider");
  p.currency = v.string("currency");
  p.input_per_mtok = v.non_negative("input_per_mtok");
  if (v.has("cached_input_per_mtok"))
    p.cached_input_per_mtok = v.non_negative("cached_input_per_mtok");
  p.output_per_mtok = v.non_negative("output_per_mtok");
  p.tier = v.string_or("tier", "list");
  p.prov = read_provenance(v);
  return p;
}

RentalPrice read_rental_price(const JsonView& v, const std::vector<std::string>& device_ids) {
  v.only_keys(
      with_provenance({"device", "provider", "kind", "usd_per_gpu_hour", "commitment_months"}));
  RentalPrice p;
  p.device = check_ref(v, "device", device_ids, "device");
  p.provider = v.string("provider");
  p.kind = v.one_of("kind", {"on_demand", "reserved", "spot"});
  p.usd_per_gpu_hour = v.positive("usd_per_gpu_hour");
  p.commitment_months = read_int(v, "commitment_months");
  p.prov = read_provenance(v);
  return p;
}

HardwarePrice read_hardware_price(const JsonView& v, const std::vector<std::string>& device_ids) {
  v.only_keys(
      with_provenance({"item", "device", "devices", "kind", "currency", "price_low", "price_high",
                       "basis", "includes_vat", "vat_rate", "system_power_w"}));
  HardwarePrice p;
  p.item = v.string("item");
  p.device = check_ref(v, "device", device_ids, "device");
  p.devices = static_cast<int>(v.positive_int("devices"));
  p.kind = v.one_of("kind", {"card", "system"});
  p.currency = v.string("currency");
  p.price_low = v.positive("price_low");
  p.price_high = v.positive("price_high");
  if (p.price_low > p.price_high) v.fail_member("price_low", "exceeds price_high");
  p.basis = v.one_of("basis", {"street", "list", "quote"});
  // Gross prices are converted with the VAT of the country they were recorded in, not the
  // buyer's (docs/catalogs.md): so every entry says which it is, and a gross one at what rate.
  if (!v.has("includes_vat"))
    v.fail_member("includes_vat",
                  "missing: say whether the price includes VAT (and give vat_rate if it does)");
  p.includes_vat = v.boolean_or("includes_vat", false);
  if (p.includes_vat) {
    if (!v.has("vat_rate"))
      v.fail_member("vat_rate", "missing: a price that includes VAT needs the rate it includes");
    p.vat_rate = v.fraction("vat_rate");
    if (p.vat_rate >= 1) v.fail_member("vat_rate", "expected a share below 1");
  } else if (v.has("vat_rate")) {
    v.fail_member("vat_rate", "given for a price without VAT (includes_vat is false)");
  }
  p.system_power_w = v.number_or("system_power_w", 0);
  p.prov = read_provenance(v);
  return p;
}

std::vector<std::string> ids_of(const auto& entries) {
  std::vector<std::string> ids;
  for (const auto& e : entries) ids.push_back(e.id);
  return ids;
}

void read_prices(const FileDoc& f, Catalog& cat) {
  const auto root = root_of(f, {"api", "rental", "hardware"});
  const std::vector<std::string> model_ids = ids_of(cat.models), device_ids = ids_of(cat.devices);
  for (const auto& v : root.array_or_empty("api"))
    cat.api_prices.push_back(read_api_price(v, model_ids));
  for (const auto& v : root.array_or_empty("rental"))
    cat.rental_prices.push_back(read_rental_price(v, device_ids));
  for (const auto& v : root.array_or_empty("hardware"))
    cat.hardware_prices.push_back(read_hardware_price(v, device_ids));
}

Site read_site(const JsonView& v) {
  v.only_keys(with_provenance({"id", "name", "country", "currency", "electricity_per_kwh", "pue",
                               "vat_rate", "colo_per_kw_month"}));
  Site s;
  s.id = v.string("id");
  s.name = v.string_or("name", s.id);
  s.country = v.string_or("country", "");
  s.currency = v.string("currency");
  s.electricity_per_kwh = v.positive("electricity_per_kwh");
  s.pue = v.positive("pue");
  if (s.pue < 1) v.fail_member("pue", "PUE below 1 is not physical");
  s.vat_rate = v.has("vat_rate") ? v.fraction("vat_rate") : 0.0;
  s.colo_per_kw_month = v.number_or("colo_per_kw_month", 0);
  s.prov = read_provenance(v);
  return s;
}

void read_sites(const FileDoc& f, Catalog& cat) {
  read_entries(f, "sites", cat.sites, read_site, "site");
}

void read_fx(const FileDoc& f, Catalog& cat) {
  const auto root = root_of(f, {"rates"});
  if (root.string_or("base", "USD") != "USD")
    root.fail_member("base", "only USD is supported as the base");
  std::set<std::string> seen;
  for (const auto& v : root.array("rates")) {
    v.only_keys(with_provenance({"currency", "per_usd"}));
    FxRate r;
    r.currency = v.string("currency");
    if (r.currency.size() != 3) v.fail_member("currency", "expected an ISO 4217 code such as EUR");
    r.per_usd = v.positive("per_usd");
    r.prov = read_provenance(v);
    if (!seen.insert(r.currency).second)
      v.fail_member("currency", "duplicate currency " + r.currency);
    cat.fx_rates.push_back(r);
  }
}

// Every price's currency must be convertible: checked once fx.json is read, at each entry's path.
void check_currencies(const Catalog& cat, const std::vector<JsonView>& entries) {
  for (const auto& v : entries) {
    const std::string cur = v.string("currency");
    if (cur == "USD") continue;
    bool known = false;
    for (const auto& r : cat.fx_rates) known = known || r.currency == cur;
    if (!known) v.fail_member("currency", "currency " + cur + " has no rate in fx.json");
  }
}

void read_systems(const FileDoc& f, Catalog& cat) {
  const auto root = root_of(f, {"systems"});
  const std::vector<std::string> device_ids = ids_of(cat.devices);
  const auto sv = root.array("systems");
  for (const auto& v : sv) cat.systems.push_back(read_system(v, device_ids));
  check_unique_ids(cat.systems, sv, "system");
  for (const auto& v : sv) {
    check_currencies(cat, v.array_or_empty("prices"));
    check_currencies(cat, v.array_or_empty("host_platform"));
  }
}

}  // namespace

Catalog load_catalog(const std::string& dir) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir))
    throw InputError(dir, "",
                     fs::exists(dir) ? "not a directory: the catalog is a directory of JSON files "
                                       "(models.json, devices.json, ...)"
                                     : "catalog directory does not exist");
  Catalog cat;
  cat.data_dir = dir;
  std::string hash_input;  // every file's bytes, in this order
  read_precisions(open_catalog_file(dir, "precisions.json", hash_input), cat);
  read_engines(open_catalog_file(dir, "engines.json", hash_input), cat);
  read_devices(open_catalog_file(dir, "devices.json", hash_input), cat);
  read_models(open_catalog_file(dir, "models.json", hash_input), cat);
  const auto pri = open_catalog_file(dir, "prices.json", hash_input);
  read_prices(pri, cat);
  const auto sit = open_catalog_file(dir, "sites.json", hash_input);
  read_sites(sit, cat);
  read_fx(open_catalog_file(dir, "fx.json", hash_input), cat);
  const JsonView prices(pri.json, pri.path), sites(sit.json, sit.path);
  check_currencies(cat, prices.array_or_empty("api"));
  check_currencies(cat, prices.array_or_empty("hardware"));
  check_currencies(cat, sites.array("sites"));
  // systems.json is optional (a user's own catalog directory may predate it).
  if (fs::exists(fs::path(dir) / "systems.json"))
    read_systems(open_catalog_file(dir, "systems.json", hash_input), cat);
  cat.content_hash = fnv1a_hex(hash_input);
  return cat;
}

}  // namespace moeplan
