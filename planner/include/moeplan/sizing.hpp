// Memory sizing: model + precision + device + layout + context/concurrency →
// memory breakdown, fit, limits. Pure functions; formulas in docs/memory.md.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "moeplan/catalog.hpp"

namespace moeplan {

// Precision per weight component. parse_weight_spec accepts "fp8" (every
// component) or "default=fp8,routed_experts=nvfp4" (components named in
// docs/catalogs.md), in any order: named components override the default; a name given twice
// is an error. Unset components keep `base`.
using PrecisionMix = std::map<Component, std::string>;

// Why `engine` cannot serve weights `mix` (data/engines.json `weight_formats`), or with KV format
// `kv` when given (`kv_formats`): "engine vllm does not serve weight format q4_k_m"; nullopt when
// it can. plan, menu and recommend leave such builds out; perf and fit refuse them.
std::optional<std::string> unserved_format(const Engine& engine, const PrecisionMix& mix,
                                           const std::string& kv = "");
PrecisionMix parse_weight_spec(const std::string& spec, const PrecisionMix& base,
                               const Catalog& cat);

// Parallel layout. gpus = tp × pp × dp. Experts are spread over ep ranks
// inside each pipeline stage (ep ≤ tp × dp). 0 = choose the default
// (tp = gpus / pp, dp = 1, ep = tp).
struct Layout {
  int tp = 0;
  int pp = 1;
  int ep = 0;
  bool dp_attention =
      false;  // MLA: shard the latent KV by sequence instead of replicating per TP rank
};

struct FitRequest {
  const Model* model = nullptr;
  const Device* device = nullptr;
  int gpus = 1;
  PrecisionMix weights;          // empty = the model's native mix
  std::string kv_precision;      // "" = bf16
  long long context_tokens = 0;  // 0 = the model's max context
  long long concurrency = 1;
  Layout layout;
  double memory_utilization = 0.90;  // share of device memory the engine may use (vLLM default)
  double reserved_gb_per_gpu = 0.0;  // fixed reservation outside the engine (desktop, other apps)
  std::optional<double> activation_gb_per_gpu;  // override the activation/workspace estimate
  long long prefill_chunk_tokens = 8192;  // tokens per forward pass the activations are sized for
  // What-if overrides (the article's own figures, M8).
  std::optional<double> device_memory_gb;
  std::optional<double> weights_gb;
  std::optional<double> kv_bytes_per_token;
  bool include_mtp = false;  // load the MTP/draft layers too
  // A separate draft model's weights per GPU (--spec draft), already in reserved_gb_per_gpu;
  // kept apart so a "does not fit" can say what took the room.
  double draft_weights_gb_per_gpu = 0;
};

struct GpuMemory {
  int index = 0;
  int pp_stage = 0;
  double capacity_bytes = 0;  // device memory × utilization − reservation
  double weights_bytes = 0;
  double activation_bytes = 0;
  double kv_bytes = 0;    // at the requested context × concurrency
  double free_bytes = 0;  // capacity − the above (negative: does not fit)
};

struct ResolvedLayout {
  int tp = 1, pp = 1, dp = 1, ep = 1;
  bool dp_attention = false;
  // GPUs of one pipeline stage that share a MoE layer's routed experts: tp × dp. `ep` of them
  // hold whole experts; with ep below tp × dp (vLLM without --enable-expert-parallel, SGLang
  // --ep-size 1, TensorRT-LLM --ep_size 1) each expert is also split by tensor parallelism
  // over tp × dp / ep ranks, so every GPU holds 1/(tp × dp) of the experts' bytes either way.
  int expert_shards() const { return tp * dp; }
};

struct FitResult {
  ResolvedLayout layout;
  PrecisionMix weights;
  std::string kv_precision;
  std::map<Component, double> weights_bytes_by_component;
  double weights_bytes = 0;       // whole model
  double kv_bytes_per_token = 0;  // all KV-holding layers, one token (context within any window)
  double kv_bytes_total = 0;      // requested context × concurrency, before any replication
  // Fraction of kv_bytes_total each GPU holds (replication included), at the requested context:
  // each layer kind at its own head split, weighted by its bytes; with pp > 1, a GPU of the stage
  // holding the most KV.
  double kv_share_per_gpu = 0;
  double capacity_bytes = 0;       // sum over GPUs
  double device_memory_bytes = 0;  // one device
  long long context_tokens = 0;
  long long concurrency = 0;
  bool fits = false;
  std::string reason;                // why not, or the binding limit when it fits
  long long max_concurrency = 0;     // at context_tokens
  long long max_context_tokens = 0;  // at concurrency, capped by the model's trained context
  std::vector<GpuMemory> per_gpu;
  std::vector<std::string> notes;
};

// The share of each layer kind's KV cache (sequences × layers × heads) one GPU holds under
// layout `l` (docs/memory.md, "Where the KV lives"), averaged over the pipeline stages (1/pp of
// the layers): perf's step time reads it. The kinds differ where the full-attention layers have
// their own KV heads (Attention::global_kv_heads). Memory limits use each stage's own layers
// (kv_bytes_per_gpu_on_stage), since the stages do not hold equal shares.
struct KvShare {
  double window = 1.0;  // sliding-window layers (kv_heads)
  double full = 1.0;    // full-attention layers, MTP layers and the DSA indexer (full_kv_heads())
};
KvShare kv_share_for_layout(const Model& m, const ResolvedLayout& l);
// The share of one pipeline stage's KV that one GPU of the stage holds: 1/dp of the sequences and
// the TP head split of each layer kind (the layers are the stage's; 1/pp is not applied).
KvShare kv_share_within_stage(const Model& m, const ResolvedLayout& l);

// One pipeline stage's decoder layers (docs/memory.md, "Pipeline stages").
struct PpStage {
  int index = 0;
  int first_layer = 0;
  int layers = 0;
  int dense_layers = 0;  // dense-FFN layers (MoE models: the leading moe.dense_layers)
  int moe_layers = 0;
  // Full-attention layers the stage holds, at least and at most: the catalog counts the layer
  // kinds but (DeepSeek V4 aside) does not place them (see pp_stages).
  int full_attention_min = 0;
  int full_attention_max = 0;
  bool first = false, last = false;
};
// Decoder layers per stage, vLLM's get_pp_indices: floor(layers/pp) each, the remainder one apiece
// to the stages before the last, from the second-to-last backwards.
std::vector<int> pp_stage_layer_counts(int layers, int pp);
std::vector<PpStage> pp_stages(const Model& m, int pp);

// Bytes per token of KV for one layer of the model's listed attention geometry (kv_heads ×
// head_dim, or the MLA latent): every layer, or the sliding-window layers where the
// full-attention layers have their own geometry. The indexer cache below is not included.
double kv_bytes_per_token_per_layer(const Model& m, double bytes_per_element);
// Bytes per token of KV for one full-attention layer: global_kv_heads × global_head_dim where
// set (Gemma 4), else kv_bytes_per_token_per_layer. K and V are both cached even for K = V
// layers. The indexer cache below is not included.
double kv_bytes_per_token_per_full_layer(const Model& m, double bytes_per_element);
// Bytes per token per full-attention layer of the DSA "lightning indexer" key cache: 128 FP8
// key dims plus one fp32 scale (DeepSeek-V3.2 index_head_dim 128), whatever the KV precision;
// 0 for models without DSA. Memory (fit) and time (perf) both read it from here.
inline constexpr double kDsaIndexerBytesPerToken = 128.0 + 4.0;
double indexer_bytes_per_token_per_layer(const Model& m);
// KV bytes of one sequence at `context` tokens by layer kind (sliding windows, linear layers,
// kv_compression and the DSA indexer's key cache accounted for). include_mtp: the model's
// mtp_layers are loaded and each keeps a full-attention cache of its own.
struct KvBytes {
  double window = 0;  // sliding-window layers
  double full = 0;    // full-attention (and MTP) layers, indexer keys included
  double total() const { return window + full; }
};
KvBytes kv_bytes_by_kind(const Model& m, double bytes_per_element, long long context,
                         bool include_mtp = false);
// KV bytes of one sequence at `context` tokens, all layers (kv_bytes_by_kind's total).
double kv_bytes_for_context(const Model& m, double bytes_per_element, long long context,
                            bool include_mtp = false);
// The part of one sequence's KV at `context` that one GPU of layout `l` holds: each layer kind
// at its own kv_share_for_layout.
double kv_bytes_per_gpu_for_context(const Model& m, double bytes_per_element, long long context,
                                    const ResolvedLayout& l, bool include_mtp = false);
// The part of one sequence's KV at `context` that one GPU of stage `s` of layout `l` holds: the
// stage's layers (the MTP layers, when loaded, on the last stage), each layer kind at its own
// kv_share_within_stage; kv_bytes_per_gpu_for_context when pp is 1.
double kv_bytes_per_gpu_on_stage(const Model& m, const PpStage& s, const ResolvedLayout& l,
                                 double bytes_per_element, long long context,
                                 bool include_mtp = false);
// Stage `s`'s share of one sequence's KV at `context`, before any head or sequence split
// (exactly 1 when pp is 1; the stages together never count less than 1).
double kv_stage_fraction(const Model& m, const PpStage& s, const ResolvedLayout& l,
                         double bytes_per_element, long long context, bool include_mtp = false);
// Share of the attention component's weight bytes that every rank of a tensor-parallel group
// holds whole (docs/memory.md, "Weights per GPU"): all of it under DP-attention (each rank runs
// attention for its own sequences with a full copy); under plain TP the MLA down-projections
// q_a and kv_a, which engines keep replicated. 0 for other attention forms under plain TP.
double tp_replicated_attention_share(const Model& m, bool dp_attention);
// Weight bytes on one GPU of each pipeline stage of `l` (docs/memory.md, "Pipeline stages"): the
// stage's layers' share of each component, the input embedding on the first stage, the LM head
// on the last (tied embeddings: the matrix on both), MTP layers (`include_mtp`, counted in
// `wbytes`) on the last; within a stage, routed experts over tp × dp, the replicated part of
// attention whole, everything else over tp.
std::vector<double> stage_weight_bytes_per_gpu(const Model& m,
                                               const std::map<Component, double>& wbytes,
                                               const ResolvedLayout& l, bool include_mtp = false);
// Weight bytes on the most loaded GPU of `l`: the heaviest stage of stage_weight_bytes_per_gpu.
double weight_bytes_per_gpu(const Model& m, const std::map<Component, double>& wbytes,
                            const ResolvedLayout& l, bool include_mtp = false);
// Weight bytes per component for a precision mix (published total split by architecture shares).
std::map<Component, double> weight_bytes(const Model& m, const PrecisionMix& mix,
                                         const Catalog& cat, bool include_mtp = false);
// Activation/workspace estimate per GPU (docs/memory.md).
double activation_bytes_per_gpu(const Model& m, const ResolvedLayout& l, long long chunk_tokens,
                                long long max_seqs);

ResolvedLayout resolve_layout(const Model& m, int gpus, const Layout& l);

// Throws Error on inconsistent requests (layout not dividing the GPU count, …).
FitResult fit(const FitRequest& req, const Catalog& cat);

}  // namespace moeplan
