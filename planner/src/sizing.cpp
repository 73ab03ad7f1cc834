// Formulas: docs/memory.md.
#include "moeplan/sizing.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include "moeplan/errors.hpp"

namespace moeplan {

namespace {
constexpr double kGB = 1e9;

bool is_expert_component(Component c) {
  return c == Component::routed_experts;
}
}  // namespace

PrecisionMix parse_weight_spec(const std::string& spec, const PrecisionMix& base,
                               const Catalog& cat) {
  PrecisionMix mix = base;
  if (spec.empty()) return mix;
  // Parsed whole before anything is applied: `default` sets every component first and the named
  // components override it wherever they stand, so "routed_experts=nvfp4,default=fp8" means what
  // "default=fp8,routed_experts=nvfp4" does instead of silently undoing the experts' precision.
  std::map<std::string, std::string> items;  // component name (or "default") -> precision
  std::stringstream ss(spec);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    const auto eq = item.find('=');
    const std::string comp = eq == std::string::npos ? "default" : item.substr(0, eq);
    const std::string prec = eq == std::string::npos ? item : item.substr(eq + 1);
    (void)cat.weight_format(prec);  // throws "did you mean"
    bool known = comp == "default";
    for (Component c : kComponents) known = known || comp == component_name(c);
    if (!known) {
      std::vector<std::string> names{"default"};
      for (Component c : kComponents) names.emplace_back(component_name(c));
      throw UnknownIdError("weight component", comp, names);
    }
    if (!items.emplace(comp, prec).second)
      throw Error(fmt::format("weights '{}': {} is given twice ({} and {})", spec,
                              comp == "default" ? "the default precision" : "'" + comp + "'",
                              items[comp], prec));
  }
  if (const auto d = items.find("default"); d != items.end())
    for (Component c : kComponents) mix[c] = d->second;
  for (Component c : kComponents)
    if (const auto it = items.find(component_name(c)); it != items.end()) mix[c] = it->second;
  return mix;
}

namespace {
// The share of one layer kind's KV that a GPU holds: pipeline stages split layers, data-parallel
// replicas split sequences, and GQA heads split over the TP ranks, replicated when tp > kv_heads
// (vLLM keeps max(1, kv_heads / tp) heads a rank and requires tp to divide or be a multiple of
// kv_heads, so a rank holds ceil(kv_heads / tp) of kv_heads).
double kv_share_for_heads(const Model& m, const ResolvedLayout& l, int kv_heads) {
  double share = 1.0 / l.pp / l.dp;
  if (l.dp_attention) {
    // Attention runs data-parallel over the TP group: each rank keeps every head of its own
    // sequences, so sequences are sharded tp ways, whatever the attention form.
    share /= l.tp;
  } else if (m.attention.type != AttentionType::mla) {
    const int kvh = std::max(1, kv_heads);
    const int per_rank = std::max(1, (kvh + l.tp - 1) / l.tp);
    share *= static_cast<double>(per_rank) / kvh;
  }
  // MLA without DP attention: one latent serves every head, so every TP rank keeps a full copy.
  return share;
}

int full_attention_layers(const Model& m) {
  return m.layers - m.attention.sliding_window_layers - m.attention.linear_attention_layers;
}

double kv_bytes_for_heads(int kv_heads, int head_dim, double bytes_per_element) {
  return 2.0 * kv_heads * head_dim * bytes_per_element;  // K and V
}
}  // namespace

KvShare kv_share_for_layout(const Model& m, const ResolvedLayout& l) {
  // Sliding-window layers use kv_heads; full-attention layers their own global_kv_heads where the
  // model has them (Gemma 4 31B: 16 and 4, so at tp 8 a rank holds 2 of 16 window heads but 1 of
  // 4 global heads, every global head living on two ranks).
  return {kv_share_for_heads(m, l, m.attention.kv_heads),
          kv_share_for_heads(m, l, m.attention.full_kv_heads())};
}

double kv_bytes_per_token_per_layer(const Model& m, double bytes_per_element) {
  const Attention& a = m.attention;
  if (a.type == AttentionType::mla) {
    // Sparse (DSA) MLA at one byte per element is served by FlashMLA's sparse kernels, whose FP8
    // cache ("fp8_ds_mla" in vLLM and SGLang) keeps the latent in FP8 with one fp32 scale per 128
    // values and the RoPE key in bf16: 512 + 16 + 128 = 656 bytes for GLM-5 / DeepSeek-V3.2, not
    // 576 (vLLM FlashMLASparseBackend.get_kv_cache_shape; FlashMLA README).
    // (DeepSeek V4's compressed attention has its own packed layout, not modelled here.)
    if (a.sparse_type == "dsa" && !a.compressed && bytes_per_element == 1.0)
      return a.kv_lora_rank + std::ceil(a.kv_lora_rank / 128.0) * 4.0 + a.qk_rope_head_dim * 2.0;
    // MLA caches the compressed latent plus the decoupled RoPE key, shared by all heads.
    return (a.kv_lora_rank + a.qk_rope_head_dim) * bytes_per_element;
  }
  return kv_bytes_for_heads(a.kv_heads, a.head_dim, bytes_per_element);
}

double kv_bytes_per_token_per_full_layer(const Model& m, double bytes_per_element) {
  const Attention& a = m.attention;
  if (a.type == AttentionType::mla || !a.has_global_geometry())
    return kv_bytes_per_token_per_layer(m, bytes_per_element);
  // Gemma 4's global layers: K and V both cached even with attention_k_eq_v. vLLM's gemma4.py
  // loads the K projection into both the K and V slots and passes k (k_norm + RoPE) and v
  // (v_norm, no RoPE) to a standard Attention layer, whose cache holds the two tensors.
  return kv_bytes_for_heads(a.full_kv_heads(), a.full_head_dim(), bytes_per_element);
}

double indexer_bytes_per_token_per_layer(const Model& m) {
  return m.attention.sparse_type == "dsa" ? kDsaIndexerBytesPerToken : 0.0;
}

KvBytes kv_bytes_by_kind(const Model& m, double bytes_per_element, long long context,
                         bool include_mtp) {
  // The indexer keeps one key per cached entry of each full-attention layer, so it follows the
  // same layer count and compression as the latent (sliding-window layers have none).
  // MTP layers, when loaded, are full-attention layers of the model's own attention form with
  // their own cache: vLLM's DeepSeekMTP / Qwen3-Next MTP and SGLang's NextN draft layer each
  // register an attention layer that the KV-cache manager sizes like any decoder layer, so the
  // cache per token grows by mtp_layers / layers.
  const double mtp = include_mtp ? m.mtp_layers : 0;
  const double full_entries = (static_cast<double>(full_attention_layers(m)) + mtp) *
                              static_cast<double>(context) / m.attention.kv_compression;
  const double window_entries =
      static_cast<double>(m.attention.sliding_window_layers) *
      static_cast<double>(std::min(context, m.attention.sliding_window_tokens > 0
                                                ? m.attention.sliding_window_tokens
                                                : context));
  KvBytes b;
  b.window = kv_bytes_per_token_per_layer(m, bytes_per_element) * window_entries;
  b.full = (kv_bytes_per_token_per_full_layer(m, bytes_per_element) +
            indexer_bytes_per_token_per_layer(m)) *
           full_entries;
  return b;
}

double kv_bytes_for_context(const Model& m, double bytes_per_element, long long context,
                            bool include_mtp) {
  return kv_bytes_by_kind(m, bytes_per_element, context, include_mtp).total();
}

double kv_bytes_per_gpu_for_context(const Model& m, double bytes_per_element, long long context,
                                    const ResolvedLayout& l, bool include_mtp) {
  const KvBytes b = kv_bytes_by_kind(m, bytes_per_element, context, include_mtp);
  const KvShare s = kv_share_for_layout(m, l);
  return b.window * s.window + b.full * s.full;
}

std::map<Component, double> weight_bytes(const Model& m, const PrecisionMix& mix,
                                         const Catalog& cat, bool include_mtp) {
  const auto arch = architecture_params(m);
  double arch_total = 0;
  for (const auto& [c, n] : arch) arch_total += n;
  // The published total is authoritative; the architecture gives each component's share.
  const double scale = arch_total > 0 ? m.total_params_b * 1e9 / arch_total : 0;
  const double mtp_factor =
      include_mtp && m.mtp_layers > 0 ? 1.0 + static_cast<double>(m.mtp_layers) / m.layers : 1.0;
  std::map<Component, double> out;
  for (Component c : kComponents) {
    auto it = mix.find(c);
    const std::string& prec = it != mix.end() ? it->second : m.native_precision.at(c);
    const double bits = cat.weight_format(prec).bits_per_weight;
    const double params = arch.at(c) * scale * (c == Component::embeddings ? 1.0 : mtp_factor);
    out[c] = params * bits / 8.0;
  }
  return out;
}

double tp_replicated_attention_share(const Model& m, bool dp_attention) {
  if (dp_attention) return 1.0;
  const Attention& a = m.attention;
  if (a.type != AttentionType::mla || a.q_lora_rank <= 0) return 0.0;
  // The same per-layer terms as architecture_params: q_a = h × q_lora, kv_a = h × (kv_lora +
  // rope). vLLM and SGLang load both as ReplicatedLinear (every TP rank holds them whole).
  const double h = m.hidden_size;
  const double replicated =
      (h * a.q_lora_rank + h * (a.kv_lora_rank + a.qk_rope_head_dim)) * m.layers;
  const double attn = architecture_params(m).at(Component::attention);
  return attn > 0 ? std::min(1.0, replicated / attn) : 0.0;
}

double weight_bytes_per_gpu(const Model& m, const std::map<Component, double>& wbytes,
                            const ResolvedLayout& l) {
  double experts = 0, rest = 0;
  for (const auto& [k, v] : wbytes) (is_expert_component(k) ? experts : rest) += v;
  const auto it = wbytes.find(Component::attention);
  const double attn = it != wbytes.end() ? it->second : 0.0;
  const double replicated = attn * tp_replicated_attention_share(m, l.dp_attention);
  return (rest - replicated) / (l.tp * l.pp) + replicated / l.pp +
         experts / (l.expert_shards() * l.pp);
}

ResolvedLayout resolve_layout(const Model& m, int gpus, const Layout& l) {
  if (gpus < 1) throw Error("--gpus must be at least 1");
  ResolvedLayout r;
  r.pp = std::max(1, l.pp);
  if (gpus % r.pp != 0)
    throw Error(fmt::format("pipeline parallel size {} does not divide {} GPUs", r.pp, gpus));
  r.tp = l.tp > 0 ? l.tp : gpus / r.pp;
  if (gpus % (r.tp * r.pp) != 0)
    throw Error(fmt::format("tp {} × pp {} does not divide {} GPUs", r.tp, r.pp, gpus));
  r.dp = gpus / (r.tp * r.pp);
  if (r.pp > m.layers)
    throw Error(fmt::format("pp {} exceeds the model's {} layers", r.pp, m.layers));
  r.ep = l.ep > 0 ? l.ep : r.tp * r.dp;
  if (m.is_moe()) {
    if ((r.tp * r.dp) % r.ep != 0)
      throw Error(fmt::format("ep {} must divide tp × dp = {}", r.ep, r.tp * r.dp));
  } else {
    r.ep = 1;
  }
  r.dp_attention = l.dp_attention;
  return r;
}

double activation_bytes_per_gpu(const Model& m, const ResolvedLayout& l, long long chunk_tokens,
                                long long max_seqs) {
  // Peak live activations of one forward pass over `chunk_tokens` tokens in 16-bit:
  // residual stream, norm output, attention input/output and QKV (≈ 6 × hidden per token),
  // the FFN's gate+up intermediate for the tokens routed to this GPU, and fp32 logits
  // for the sequences sampled in the step. An engineering estimate (docs/memory.md).
  const double t = static_cast<double>(chunk_tokens);
  const double h = m.hidden_size;
  double ffn_cols = 0;
  if (m.is_moe()) {
    const Moe& e = *m.moe;
    ffn_cols = static_cast<double>(e.experts_per_token) * e.expert_ffn_size +
               static_cast<double>(e.shared_experts) * e.shared_expert_ffn_size;
    ffn_cols = std::max(ffn_cols, static_cast<double>(m.dense_ffn_size));
  } else {
    ffn_cols = m.dense_ffn_size;
  }
  const double per_rank = l.tp;
  const double residual = t * h * 2.0 * 6.0;
  const double ffn = t * ffn_cols * 2.0 * 2.0 / per_rank;
  const double logits = static_cast<double>(std::min<long long>(max_seqs, chunk_tokens)) *
                        m.vocab_size * 4.0 / per_rank;
  return residual + ffn + logits;
}

namespace {

struct Budget {
  double capacity = 0;  // per GPU
  double weights = 0;   // most loaded GPU
  double activation = 0;
  double kv_free = 0;  // capacity − weights − activation
};

struct Core {
  ResolvedLayout layout;
  std::map<Component, double> wbytes;
  double weights_total = 0;
  double kv_per_token = 0;
  double bytes_per_kv = 0;
  bool include_mtp = false;  // the MTP layers are loaded: their KV counts too
  Budget b;
  double device_bytes = 0;
};

// Activations grow with the sequences sampled per step (their logits), so every question about
// a concurrency asks this at that concurrency.
double activation_at(const FitRequest& req, const ResolvedLayout& l, long long concurrency) {
  return req.activation_gb_per_gpu
             ? *req.activation_gb_per_gpu * kGB
             : activation_bytes_per_gpu(*req.model, l, req.prefill_chunk_tokens,
                                        std::max<long long>(concurrency, 1));
}

Core compute_core(const FitRequest& req, const Catalog& cat, int gpus) {
  const Model& m = *req.model;
  Core c;
  c.layout = resolve_layout(m, gpus, req.layout);
  PrecisionMix mix = req.weights.empty() ? m.native_precision : req.weights;
  c.wbytes = weight_bytes(m, mix, cat, req.include_mtp);
  for (const auto& [k, v] : c.wbytes) c.weights_total += v;
  if (req.weights_gb) {
    // Scale every component to the stated total (what-if with a published file size).
    const double f = *req.weights_gb * kGB / c.weights_total;
    for (auto& [k, v] : c.wbytes) v *= f;
    c.weights_total = *req.weights_gb * kGB;
  }
  const std::string kvp = req.kv_precision.empty() ? "bf16" : req.kv_precision;
  c.bytes_per_kv = cat.kv_format(kvp).bits_per_element / 8.0;
  c.include_mtp = req.include_mtp && m.mtp_layers > 0;
  c.kv_per_token = kv_bytes_for_context(m, c.bytes_per_kv, 1, c.include_mtp);
  c.device_bytes = req.device_memory_gb.value_or(req.device->engine_visible_memory_gb()) * kGB;
  c.b.capacity = c.device_bytes * req.memory_utilization - req.reserved_gb_per_gpu * kGB;
  // Weights on the most loaded GPU: experts over ep ranks per stage, replicated attention
  // whole on every rank, the rest over tp ranks.
  const auto& L = c.layout;
  c.b.weights = weight_bytes_per_gpu(m, c.wbytes, L);
  c.b.activation = activation_at(req, L, req.concurrency);
  c.b.kv_free = c.b.capacity - c.b.weights - c.b.activation;
  return c;
}

double kv_total(const FitRequest& req, const Core& c, long long context, long long conc) {
  if (req.kv_bytes_per_token)
    return *req.kv_bytes_per_token * static_cast<double>(context) * static_cast<double>(conc);
  return kv_bytes_for_context(*req.model, c.bytes_per_kv, context, c.include_mtp) *
         static_cast<double>(conc);
}

// The fraction of one sequence's KV at `context` that one GPU holds: each layer kind (sliding
// window, full attention) at its own head split (kv_share_for_layout), weighted by its bytes at
// this context. A --kv-bytes-per-token override is spread as the model's own KV would be.
double kv_share_at(const FitRequest& req, const Core& c, long long context) {
  const Model& m = *req.model;
  const double total = kv_bytes_for_context(m, c.bytes_per_kv, context, c.include_mtp);
  if (!(total > 0)) return kv_share_for_layout(m, c.layout).full;
  return kv_bytes_per_gpu_for_context(m, c.bytes_per_kv, context, c.layout, c.include_mtp) / total;
}

// KV bytes on one GPU for `conc` sequences at `context`.
double kv_gpu(const FitRequest& req, const Core& c, long long context, long long conc) {
  return kv_total(req, c, context, conc) * kv_share_at(req, c, context);
}

bool fits_with(const FitRequest& req, const Core& c) {
  const double kv = kv_gpu(req, c, req.context_tokens, req.concurrency);
  return c.b.kv_free >= kv;
}

}  // namespace

namespace {

// The most sequences at the requested context such that fit at that concurrency fits. Sized at
// concurrency 1, the budget would ignore the logits of the extra sequences and promise more than a
// fit at that count accepts (gpt-oss-120b on one H100 at 128 tokens: 2,431 against 2,017). The
// KV need rises and the budget falls with the count, so the fitting counts are a prefix: grow
// past the limit, then bisect, with the exact test fits_with applies.
long long max_concurrency_at(const FitRequest& req, const Core& c) {
  const double per_seq = kv_gpu(req, c, req.context_tokens, 1);
  if (!(per_seq > 0)) return 0;
  auto ok = [&](long long n) {
    const double kv_free = c.b.capacity - c.b.weights - activation_at(req, c.layout, n);
    return kv_gpu(req, c, req.context_tokens, n) <= kv_free;
  };
  if (!ok(1)) return 0;
  constexpr long long kCeiling = 1LL << 50;  // beyond any KV cache; stops a runaway doubling
  long long lo = 1, hi = 2;
  while (hi < kCeiling && ok(hi)) {
    lo = hi;
    hi *= 2;
  }
  if (hi >= kCeiling && ok(hi)) return hi;
  while (hi - lo > 1) {
    const long long mid = lo + (hi - lo) / 2;
    (ok(mid) ? lo : hi) = mid;
  }
  return lo;
}

// The longest context at the requested concurrency whose KV fits (KV grows monotonically with
// context, so bisect), at most the model's trained context; 0 when nothing is left for KV.
long long max_context_at(const FitRequest& req, const Core& c) {
  const Model& m = *req.model;
  auto ok = [&](long long ctx) { return kv_gpu(req, c, ctx, req.concurrency) <= c.b.kv_free; };
  long long lo = 0, hi = m.max_context_tokens;
  if (ok(hi)) {
    lo = hi;
  } else {
    while (hi - lo > 1) {
      const long long mid = lo + (hi - lo) / 2;
      (ok(mid) ? lo : hi) = mid;
    }
  }
  return c.b.kv_free > 0 ? lo : 0;
}

// One sentence on the verdict: what does not fit and by how much, or the headroom.
std::string fit_reason(const FitRequest& req, const Core& c, const FitResult& r,
                       double kv_per_gpu) {
  const double gb = kGB;
  if (c.b.weights + c.b.activation > c.b.capacity) {
    return fmt::format(
        "weights need {:.1f} GB per GPU ({:.1f} GB in all) plus {:.1f} GB activations, but each "
        "{} offers {:.1f} GB ({:.0f} GB × {:.0f}% usable{})",
        c.b.weights / gb, r.weights_bytes / gb, c.b.activation / gb, req.device->name,
        c.b.capacity / gb, c.device_bytes / gb, req.memory_utilization * 100,
        req.reserved_gb_per_gpu > 0 ? fmt::format(" − {:.1f} GB reserved", req.reserved_gb_per_gpu)
                                    : std::string());
  }
  if (!r.fits) {
    return fmt::format(
        "weights fit, but the KV cache for {} tokens × {} sequences needs {:.1f} GB per GPU and "
        "only {:.1f} GB is left; at this context at most {} sequences fit",
        req.context_tokens, req.concurrency, kv_per_gpu / gb, c.b.kv_free / gb, r.max_concurrency);
  }
  return fmt::format(
      "fits: {:.1f} GB weights + {:.1f} GB activations + {:.1f} GB KV of {:.1f} GB per GPU; "
      "{:.1f} GB headroom",
      c.b.weights / gb, c.b.activation / gb, kv_per_gpu / gb, c.b.capacity / gb,
      (c.b.kv_free - kv_per_gpu) / gb);
}

}  // namespace

FitResult fit(const FitRequest& in, const Catalog& cat) {
  if (!in.model || !in.device) throw Error("fit: model and device are required");
  FitRequest req = in;
  const Model& m = *req.model;
  if (req.context_tokens <= 0) req.context_tokens = m.max_context_tokens;
  if (req.concurrency < 1) throw Error("--concurrency must be at least 1");
  if (req.memory_utilization <= 0 || req.memory_utilization > 1)
    throw Error("memory utilization must be in (0, 1]");

  const Core c = compute_core(req, cat, req.gpus);
  FitResult r;
  r.layout = c.layout;
  r.weights = req.weights.empty() ? m.native_precision : req.weights;
  r.kv_precision = req.kv_precision.empty() ? "bf16" : req.kv_precision;
  r.weights_bytes_by_component = c.wbytes;
  r.weights_bytes = c.weights_total;
  r.kv_bytes_per_token = req.kv_bytes_per_token ? *req.kv_bytes_per_token : c.kv_per_token;
  r.context_tokens = req.context_tokens;
  r.concurrency = req.concurrency;
  r.kv_bytes_total = kv_total(req, c, req.context_tokens, req.concurrency);
  r.kv_share_per_gpu = kv_share_at(req, c, req.context_tokens);
  r.device_memory_bytes = c.device_bytes;
  r.capacity_bytes = c.b.capacity * req.gpus;

  const double kv_per_gpu = r.kv_bytes_total * r.kv_share_per_gpu;
  for (int g = 0; g < req.gpus; ++g) {
    GpuMemory gm;
    gm.index = g;
    gm.pp_stage = g / (c.layout.tp * c.layout.dp);
    gm.capacity_bytes = c.b.capacity;
    gm.weights_bytes = c.b.weights;
    gm.activation_bytes = c.b.activation;
    gm.kv_bytes = kv_per_gpu;
    gm.free_bytes = c.b.capacity - c.b.weights - c.b.activation - kv_per_gpu;
    r.per_gpu.push_back(gm);
  }

  // Limits.
  r.max_concurrency = max_concurrency_at(req, c);
  r.max_context_tokens = max_context_at(req, c);
  r.fits = fits_with(req, c);
  r.reason = fit_reason(req, c, r, kv_per_gpu);
  if (m.attention.type == AttentionType::mla && c.layout.tp > 1 && !c.layout.dp_attention)
    r.notes.push_back(
        "MLA latent KV is replicated on every tensor-parallel rank; --dp-attention shards it by "
        "sequence instead");
  if (m.attention.sparse_type == "dsa")
    r.notes.push_back(fmt::format(
        "KV per token includes the DSA indexer's key cache ({:.0f} bytes per token per layer)",
        kDsaIndexerBytesPerToken));
  if (c.include_mtp)
    r.notes.push_back(
        fmt::format("KV per token includes the own full-attention cache of the {} MTP layer(s) "
                    "loaded with the model",
                    m.mtp_layers));
  if (req.context_tokens > m.max_context_tokens)
    r.notes.push_back(fmt::format("requested context exceeds the model's trained {} tokens",
                                  m.max_context_tokens));
  return r;
}

}  // namespace moeplan
