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

std::optional<std::string> unserved_format(const Engine& engine, const PrecisionMix& mix,
                                           const std::string& kv) {
  auto has = [](const std::vector<std::string>& v, const std::string& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  };
  for (const auto& [component, format] : mix)
    if (!has(engine.weight_formats, format))
      return fmt::format("engine {} does not serve weight format {}", engine.id, format);
  if (!kv.empty() && !has(engine.kv_formats, kv))
    return fmt::format("engine {} does not serve KV format {}", engine.id, kv);
  return std::nullopt;
}

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
// `pp_div`: how many ways the layers are split evenly (kv_share_for_layout: pp;
// kv_share_within_stage: 1, a stage's own layers being counted by kv_bytes_per_gpu_on_stage).
double kv_share_for_heads(const Model& m, const ResolvedLayout& l, int kv_heads, int pp_div) {
  double share = 1.0 / pp_div / l.dp;
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
  return {kv_share_for_heads(m, l, m.attention.kv_heads, l.pp),
          kv_share_for_heads(m, l, m.attention.full_kv_heads(), l.pp)};
}

KvShare kv_share_within_stage(const Model& m, const ResolvedLayout& l) {
  return {kv_share_for_heads(m, l, m.attention.kv_heads, 1),
          kv_share_for_heads(m, l, m.attention.full_kv_heads(), 1)};
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

namespace {
// KV bytes of one sequence at `context` held by `full_layers` full-attention layers (MTP layers
// included) and `window_layers` sliding-window layers.
KvBytes kv_bytes_for_layers(const Model& m, double bytes_per_element, long long context,
                            double full_layers, double window_layers) {
  // The indexer keeps one key per cached entry of each full-attention layer, so it follows the
  // same layer count and compression as the latent (sliding-window layers have none).
  const double full_entries =
      full_layers * static_cast<double>(context) / m.attention.kv_compression;
  const double window_entries =
      window_layers * static_cast<double>(std::min(context, m.attention.sliding_window_tokens > 0
                                                                ? m.attention.sliding_window_tokens
                                                                : context));
  KvBytes b;
  b.window = kv_bytes_per_token_per_layer(m, bytes_per_element) * window_entries;
  b.full = (kv_bytes_per_token_per_full_layer(m, bytes_per_element) +
            indexer_bytes_per_token_per_layer(m)) *
           full_entries;
  return b;
}

// MTP layers, when loaded, are full-attention layers of the model's own attention form with their
// own cache: vLLM's DeepSeekMTP / Qwen3-Next MTP and SGLang's NextN draft layer each register an
// attention layer that the KV-cache manager sizes like any decoder layer, so the cache per token
// grows by mtp_layers / layers.
double mtp_kv_layers(const Model& m, bool include_mtp) {
  return include_mtp ? static_cast<double>(m.mtp_layers) : 0.0;
}
}  // namespace

KvBytes kv_bytes_by_kind(const Model& m, double bytes_per_element, long long context,
                         bool include_mtp) {
  return kv_bytes_for_layers(m, bytes_per_element, context,
                             full_attention_layers(m) + mtp_kv_layers(m, include_mtp),
                             m.attention.sliding_window_layers);
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

std::vector<int> pp_stage_layer_counts(int layers, int pp) {
  // vLLM vllm/distributed/utils.py get_pp_indices (without VLLM_PP_LAYER_PARTITION): every stage
  // gets floor(layers/pp); the remainder r adds one layer to each of the stages pp−2, pp−3, …,
  // pp−1−r (`partitions[-i] += 1` for i in 2..r+1). The last stage never takes one (it holds the
  // final norm and the LM head), and the first takes one only when r = pp − 1 (it holds the
  // input embedding). DeepSeek-V3 (61 layers) at pp 2: [31, 30]; at pp 4: [15, 15, 16, 15].
  // SGLang's get_pp_indices (SGLANG_PP_LAYER_PARTITION unset) instead gives the extra layers to
  // the last r stages, the LM-head stage included: at most one layer more on the last stage than
  // modelled here. Either way the heaviest stage holds ceil(layers/pp) layers. (TensorRT-LLM's
  // split was not checked.)
  std::vector<int> n(static_cast<std::size_t>(std::max(1, pp)), layers / std::max(1, pp));
  const int rest = layers % std::max(1, pp);
  for (int i = 2; i < rest + 2; ++i) ++n[n.size() - static_cast<std::size_t>(i)];
  return n;
}

std::vector<PpStage> pp_stages(const Model& m, int pp) {
  const std::vector<int> counts = pp_stage_layer_counts(m.layers, pp);
  const int dense_total = m.is_moe() ? m.moe->dense_layers : m.layers;
  const int full_total = std::max(0, full_attention_layers(m));
  std::vector<PpStage> out;
  int start = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    PpStage s;
    s.index = static_cast<int>(i);
    s.first_layer = start;
    s.layers = counts[i];
    s.first = i == 0;
    s.last = i + 1 == counts.size();
    // An MoE's dense layers lead (DeepSeek/GLM/Kimi first_k_dense_replace), so they fall in the
    // first stage(s), unless moe_layer_step interleaves them (Llama 4 Maverick: layer i is MoE
    // when (i + 1) % step == 0).
    const int step = m.is_moe() ? std::max(1, m.moe->moe_layer_step) : 1;
    if (!m.is_moe())
      s.moe_layers = 0;
    else if (step > 1)
      s.moe_layers = (start + s.layers) / step - start / step;
    else
      s.moe_layers = s.layers - std::clamp(dense_total - start, 0, s.layers);
    s.dense_layers = s.layers - s.moe_layers;
    // DeepSeek V4 (csa) lists each layer's compression: its ratio-0 (sliding-window only) layers
    // are placed exactly. Other models count full-attention, sliding-window and linear-attention
    // layers without placing them; every one in the catalog spreads its full-attention layers
    // evenly (one per period: gpt-oss 1:1, Gemma 4 1 in 6, Llama 4 1 in 4, MiMo), so a run of n
    // consecutive layers holds floor or ceil(n × full / layers) of them. kv_bytes_per_gpu_on_stage
    // charges the stage whichever of the two costs more (its other layers sliding-window before
    // linear ones, a window costing more than a fixed state), so the stages together never count
    // less than the model. A model stacking its kinds in blocks would be understated; the wholly
    // conservative reading (every layer of the stage full-attention) would double gpt-oss's KV at
    // pp 2 against what vLLM allocates.
    if (m.attention.compressed) {
      const auto& ratios = m.attention.compressed->compress_ratios;
      int window = 0;
      for (int k = start; k < start + s.layers && k < static_cast<int>(ratios.size()); ++k)
        window += ratios[static_cast<std::size_t>(k)] == 0 ? 1 : 0;
      s.full_attention_max = s.full_attention_min = s.layers - window;
    } else {
      const long long share = static_cast<long long>(s.layers) * full_total;
      const int L = std::max(1, m.layers);
      s.full_attention_max = static_cast<int>(std::min<long long>(full_total, (share + L - 1) / L));
      s.full_attention_min = static_cast<int>(std::min<long long>(full_total, share / L));
    }
    out.push_back(s);
    start += s.layers;
  }
  return out;
}

namespace {
// One sequence's KV at `context` on one GPU of stage `s`, with `full` of its layers full-attention
// (the rest sliding-window, up to the model's count) and the MTP layers on the last stage.
double stage_kv_with_full(const Model& m, const PpStage& s, const ResolvedLayout& l,
                          double bytes_per_element, long long context, bool include_mtp, int full) {
  const double mtp = s.last ? mtp_kv_layers(m, include_mtp) : 0.0;
  const KvBytes b =
      kv_bytes_for_layers(m, bytes_per_element, context, full + mtp,
                          std::min(m.attention.sliding_window_layers, s.layers - full));
  const KvShare sh = kv_share_within_stage(m, l);
  return b.window * sh.window + b.full * sh.full;
}
}  // namespace

double kv_bytes_per_gpu_on_stage(const Model& m, const PpStage& s, const ResolvedLayout& l,
                                 double bytes_per_element, long long context, bool include_mtp) {
  if (l.pp <= 1) return kv_bytes_per_gpu_for_context(m, bytes_per_element, context, l, include_mtp);
  // The stage holds floor or ceil of its layers' share of full-attention layers (pp_stages):
  // charge whichever costs more on its GPUs.
  return std::max(
      stage_kv_with_full(m, s, l, bytes_per_element, context, include_mtp, s.full_attention_max),
      stage_kv_with_full(m, s, l, bytes_per_element, context, include_mtp, s.full_attention_min));
}

double kv_stage_fraction(const Model& m, const PpStage& s, const ResolvedLayout& l,
                         double bytes_per_element, long long context, bool include_mtp) {
  if (l.pp <= 1) return 1.0;
  const double all = kv_bytes_for_context(m, bytes_per_element, context, include_mtp);
  // No KV at all (linear-attention only, or context 0): the stage's layer share.
  if (!(all > 0)) return static_cast<double>(s.layers) / m.layers;
  // The stage's bytes before any head or sequence split: one GPU a stage.
  ResolvedLayout one = l;
  one.tp = 1;
  one.dp = 1;
  one.dp_attention = false;
  return kv_bytes_per_gpu_on_stage(m, s, one, bytes_per_element, context, include_mtp) / all;
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

namespace {
// Under DP attention the input embedding is not split over the TP group: SGLang builds
// VocabParallelEmbedding with enable_tp = !enable_dp_attention (deepseek_v2.py, llama4.py,
// qwen2.py …), and a vLLM data-parallel rank is an engine of its own holding it whole. The LM
// head stays vocab-parallel over the whole group (SGLang's ParallelLMHead unless
// --enable-dp-lm-head), unless it is tied to the embedding, which then is whole on that stage
// too. The bytes of stage `s` held whole on each of its ranks.
double dp_attention_whole_embedding(const Model& m, const std::map<Component, double>& wbytes,
                                    const PpStage& s, int pp) {
  const auto it = wbytes.find(Component::embeddings);
  if (it == wbytes.end()) return 0.0;
  const double v = it->second;
  // The input embedding: the one matrix when tied (or an embedding model's), else half.
  const double input = m.tied_embeddings || m.kind == ModelKind::embed ? v : v / 2.0;
  double whole = s.first || pp == 1 ? input : 0.0;
  if (m.tied_embeddings && m.kind != ModelKind::embed && s.last && pp > 1) whole += v;
  return whole;
}
}  // namespace

std::vector<double> stage_weight_bytes_per_gpu(const Model& m,
                                               const std::map<Component, double>& wbytes,
                                               const ResolvedLayout& l, bool include_mtp) {
  const int pp = std::max(1, l.pp);
  const auto it = wbytes.find(Component::attention);
  const double attn = it != wbytes.end() ? it->second : 0.0;
  const double replicated = attn * tp_replicated_attention_share(m, l.dp_attention);
  // One stage's share of a per-layer component: the stage's fraction `f` of the model's layers
  // that carry it, plus, on the last stage, the MTP layers weight_bytes added (vLLM puts the whole
  // draft model on the last PP rank: gpu_model_runner.py, "we put the entire draft model on the
  // last PP rank"). With pp = 1 the component is returned as it is.
  const double L = m.layers;
  const double mtp = include_mtp && m.mtp_layers > 0 ? m.mtp_layers : 0.0;
  const double main_share = mtp > 0 ? L / (L + mtp) : 1.0;
  const double mtp_share = mtp > 0 ? mtp / (L + mtp) : 0.0;
  auto part = [&](double v, double f, const PpStage& s) {
    if (pp == 1) return v;
    return v * (main_share * f + (s.last ? mtp_share : 0.0));
  };
  // The attention component also carries the routers (hidden × experts per MoE layer,
  // architecture_params), which live on the MoE layers only.
  const auto arch = architecture_params(m);
  const int moe_total = m.is_moe() ? m.layers - m.moe->dense_layers : 0;
  const double router =
      m.is_moe() ? static_cast<double>(m.hidden_size) * m.moe->routed_experts : 0.0;
  const double attn_arch = arch.at(Component::attention);
  const double attn_layer = (attn_arch - router * moe_total) / L;
  const int dense_total = m.is_moe() ? m.moe->dense_layers : m.layers;
  std::vector<double> out;
  for (const PpStage& s : pp_stages(m, pp)) {
    const double layer_f = s.layers / L;
    double experts = 0, rest = 0, attn_stage = 0;
    for (const auto& [k, v] : wbytes) {
      double b = v;
      if (pp > 1) {
        switch (k) {
          case Component::embeddings: {
            // vLLM (LlamaModel, DeepseekV2Model, …): embed_tokens on the first rank, lm_head on
            // the last; with tie_word_embeddings the last rank builds embed_tokens as well and
            // ties lm_head to it, so the one matrix is held by both. Embedding models have no
            // LM head (their one matrix is the input embedding).
            const double half = m.tied_embeddings ? v : v / 2.0;
            const bool head = !m.tied_embeddings || m.kind != ModelKind::embed;
            b = (s.first ? half : 0.0) + (s.last && head ? half : 0.0);
            break;
          }
          case Component::attention: {
            const double denom = attn_layer * L + router * moe_total;
            b = part(v,
                     denom > 0 ? (attn_layer * s.layers + router * s.moe_layers) / denom : layer_f,
                     s);
            attn_stage = b;
            break;
          }
          case Component::dense_ffn:
            b = part(v, dense_total > 0 ? static_cast<double>(s.dense_layers) / dense_total : 0.0,
                     s);
            break;
          case Component::shared_experts:
          case Component::routed_experts:
            b = part(v, moe_total > 0 ? static_cast<double>(s.moe_layers) / moe_total : 0.0, s);
            break;
        }
      }
      (is_expert_component(k) ? experts : rest) += b;
    }
    // The replicated attention weights follow the stage: all of its attention under DP
    // attention, else the MLA q_a/kv_a of its attention layers.
    const double rep = pp == 1          ? replicated
                       : l.dp_attention ? attn_stage
                                        : part(replicated, layer_f, s);
    const double embed = l.dp_attention ? dp_attention_whole_embedding(m, wbytes, s, pp) : 0.0;
    out.push_back((rest - rep - embed) / l.tp + rep + embed + experts / l.expert_shards());
  }
  return out;
}

double weight_bytes_per_gpu(const Model& m, const std::map<Component, double>& wbytes,
                            const ResolvedLayout& l, bool include_mtp) {
  const std::vector<double> stages = stage_weight_bytes_per_gpu(m, wbytes, l, include_mtp);
  return *std::max_element(stages.begin(), stages.end());
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
  double kv_free = 0;  // capacity − weights − activation (on the most loaded GPU)
};

// One pipeline stage: its layers and the weights on each of its GPUs.
struct Stage {
  PpStage layers;
  double weights = 0;
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
  std::vector<Stage> stages;  // one when pp = 1
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
  // Weights per GPU of each stage: experts over ep ranks per stage, replicated attention whole
  // on every rank, the rest over tp ranks; the stages differ (layer remainder, embedding, LM
  // head, dense layers), and memory is set by the most loaded one, not the average.
  const auto& L = c.layout;
  const std::vector<double> sw = stage_weight_bytes_per_gpu(m, c.wbytes, L, req.include_mtp);
  const std::vector<PpStage> layers = pp_stages(m, L.pp);
  c.b.weights = *std::max_element(sw.begin(), sw.end());
  c.b.activation = activation_at(req, L, req.concurrency);
  c.b.kv_free = c.b.capacity - c.b.weights - c.b.activation;
  for (std::size_t i = 0; i < sw.size(); ++i)
    c.stages.push_back({layers[i], sw[i], c.b.capacity - sw[i] - c.b.activation});
  return c;
}

double kv_total(const FitRequest& req, const Core& c, long long context, long long conc) {
  if (req.kv_bytes_per_token)
    return *req.kv_bytes_per_token * static_cast<double>(context) * static_cast<double>(conc);
  return kv_bytes_for_context(*req.model, c.bytes_per_kv, context, c.include_mtp) *
         static_cast<double>(conc);
}

// The fraction of one sequence's KV at `context` that one GPU of stage `st` holds: the stage's
// layers (MTP layers on the last), each layer kind at its own head split (kv_share_within_stage),
// weighted by its bytes at this context. A --kv-bytes-per-token override is spread as the
// model's own KV would be. With pp = 1: kv_bytes_per_gpu_for_context / kv_bytes_for_context.
double kv_gpu_fraction(const FitRequest& req, const Core& c, const Stage& st, long long context) {
  const Model& m = *req.model;
  const double total = kv_bytes_for_context(m, c.bytes_per_kv, context, c.include_mtp);
  if (!(total > 0))
    return static_cast<double>(st.layers.layers) / m.layers *
           kv_share_within_stage(m, c.layout).full;
  return kv_bytes_per_gpu_on_stage(m, st.layers, c.layout, c.bytes_per_kv, context, c.include_mtp) /
         total;
}

// KV bytes on one GPU of stage `st` for `conc` sequences at `context`.
double kv_on_stage(const FitRequest& req, const Core& c, const Stage& st, long long context,
                   long long conc) {
  return kv_total(req, c, context, conc) * kv_gpu_fraction(req, c, st, context);
}

// Whether `conc` sequences of `context` tokens fit every stage: its weights, the activations at
// that many sequences (their logits grow with it) and its KV.
bool fits_at(const FitRequest& req, const Core& c, long long context, long long conc) {
  const double act = activation_at(req, c.layout, conc);
  for (const Stage& st : c.stages)
    if (!(kv_on_stage(req, c, st, context, conc) <= c.b.capacity - st.weights - act)) return false;
  return true;
}

bool fits_with(const FitRequest& req, const Core& c) {
  return fits_at(req, c, req.context_tokens, req.concurrency);
}

// The stage with the least room left at the requested context and concurrency (the first such
// stage on a tie; the only one when pp = 1): the one the verdict and its reason speak for.
const Stage& binding_stage(const FitRequest& req, const Core& c) {
  const Stage* worst = &c.stages.front();
  double worst_room = 0;
  for (const Stage& st : c.stages) {
    const double room = st.kv_free - kv_on_stage(req, c, st, req.context_tokens, req.concurrency);
    if (&st == &c.stages.front() || room < worst_room) {
      worst = &st;
      worst_room = room;
    }
  }
  return *worst;
}

}  // namespace

namespace {

// The most sequences at the requested context such that fit at that concurrency fits. Sized at
// concurrency 1, the budget would ignore the logits of the extra sequences and promise more than a
// fit at that count accepts (gpt-oss-120b on one H100 at 128 tokens: 2,431 against 2,017). The
// KV need rises and the budget falls with the count, so the fitting counts are a prefix: grow
// past the limit, then bisect, with the exact test fits_with applies.
long long max_concurrency_at(const FitRequest& req, const Core& c) {
  double per_seq = 0;
  for (const Stage& st : c.stages)
    per_seq = std::max(per_seq, kv_on_stage(req, c, st, req.context_tokens, 1));
  if (!(per_seq > 0)) return 0;
  auto ok = [&](long long n) { return fits_at(req, c, req.context_tokens, n); };
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
  auto ok = [&](long long ctx) { return fits_at(req, c, ctx, req.concurrency); };
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

// One sentence on the verdict: what does not fit and by how much, or the headroom. With pp > 1 it
// speaks for the binding stage (the heaviest one for weights) and names it.
std::string fit_reason(const FitRequest& req, const Core& c, const FitResult& r) {
  const double gb = kGB;
  const int pp = c.layout.pp;
  auto where = [&](const Stage& st) {
    return pp > 1 ? fmt::format(" on pipeline stage {} of {} ({} layers{})", st.layers.index, pp,
                                st.layers.layers,
                                st.layers.first && st.layers.last ? ""
                                : st.layers.first                 ? ", input embedding"
                                : st.layers.last                  ? ", LM head"
                                                                  : "")
                  : std::string();
  };
  if (c.b.weights + c.b.activation > c.b.capacity) {
    const Stage* heavy = &c.stages.front();
    for (const Stage& st : c.stages)
      if (st.weights > heavy->weights) heavy = &st;
    return fmt::format(
        "weights need {:.1f} GB per GPU ({:.1f} GB in all){} plus {:.1f} GB activations, but each "
        "{} offers {:.1f} GB ({:.0f} GB × {:.0f}% usable{})",
        c.b.weights / gb, r.weights_bytes / gb, where(*heavy), c.b.activation / gb,
        req.device->name, c.b.capacity / gb, c.device_bytes / gb, req.memory_utilization * 100,
        req.reserved_gb_per_gpu > 0 ? fmt::format(" − {:.1f} GB reserved", req.reserved_gb_per_gpu)
                                    : std::string());
  }
  const Stage& st = binding_stage(req, c);
  const double kv_per_gpu = kv_on_stage(req, c, st, req.context_tokens, req.concurrency);
  if (!r.fits) {
    return fmt::format(
        "weights fit, but the KV cache for {} tokens × {} sequences needs {:.1f} GB per GPU{} and "
        "only {:.1f} GB is left; at this context at most {} sequences fit",
        req.context_tokens, req.concurrency, kv_per_gpu / gb, where(st), st.kv_free / gb,
        r.max_concurrency);
  }
  return fmt::format(
      "fits: {:.1f} GB weights + {:.1f} GB activations + {:.1f} GB KV of {:.1f} GB per GPU{}; "
      "{:.1f} GB headroom",
      st.weights / gb, c.b.activation / gb, kv_per_gpu / gb, c.b.capacity / gb, where(st),
      (st.kv_free - kv_per_gpu) / gb);
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
  r.kv_share_per_gpu = 0;
  for (const Stage& st : c.stages)
    r.kv_share_per_gpu =
        std::max(r.kv_share_per_gpu, kv_gpu_fraction(req, c, st, req.context_tokens));
  r.device_memory_bytes = c.device_bytes;
  r.capacity_bytes = c.b.capacity * req.gpus;

  for (int g = 0; g < req.gpus; ++g) {
    GpuMemory gm;
    gm.index = g;
    gm.pp_stage = g / (c.layout.tp * c.layout.dp);
    const Stage& st = c.stages.at(static_cast<std::size_t>(gm.pp_stage));
    const double kv_per_gpu = kv_on_stage(req, c, st, req.context_tokens, req.concurrency);
    gm.capacity_bytes = c.b.capacity;
    gm.weights_bytes = st.weights;
    gm.activation_bytes = c.b.activation;
    gm.kv_bytes = kv_per_gpu;
    gm.free_bytes = c.b.capacity - st.weights - c.b.activation - kv_per_gpu;
    r.per_gpu.push_back(gm);
  }

  // Limits.
  r.max_concurrency = max_concurrency_at(req, c);
  r.max_context_tokens = max_context_at(req, c);
  r.fits = fits_with(req, c);
  r.reason = fit_reason(req, c, r);
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
