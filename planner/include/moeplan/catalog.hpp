// The catalogs in data/ loaded into plain structs; nothing downstream reads
// JSON. Field meanings and units: docs/catalogs.md.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace moeplan {

struct Provenance {
  std::string source;
  std::string as_of;
  bool estimated = false;
  std::string notes;
};

enum class AttentionType { mha, gqa, mla };

// DeepSeek V4-style compressed attention ("type": "csa" in models.json): one shared K=V head
// per layer, low-rank Q, a grouped low-rank output projection, and per-layer KV compression
// (ratio 4 layers add a lightning indexer). The loader also fills the MLA-shaped fields of
// Attention (type mla, kv_lora_rank + qk_rope_head_dim = head_dim) so that code that sizes an
// MLA cache (one latent per token per layer, shared by all heads) reads the right figures;
// architecture_params() counts the real projections from this struct.
struct CompressedAttention {
  int head_dim = 0;     // the shared K=V head (RoPE dims included)
  int o_groups = 0;     // grouped output projection: o_groups blocks ...
  int o_lora_rank = 0;  // ... of this rank each
  int index_heads = 0;  // lightning indexer on the ratio-4 layers
  int index_head_dim = 0;
  std::vector<int> compress_ratios;  // one per layer; 0 = sliding window only
};

struct Attention {
  AttentionType type = AttentionType::gqa;
  int heads = 0;
  int kv_heads = 0;     // GQA/MHA
  int head_dim = 0;     // GQA/MHA
  int q_lora_rank = 0;  // MLA
  int kv_lora_rank = 0;
  int qk_rope_head_dim = 0;
  int qk_nope_head_dim = 0;
  int v_head_dim = 0;
  long long sliding_window_tokens = 0;  // 0: none
  int sliding_window_layers = 0;
  int linear_attention_layers = 0;
  std::string sparse_type;  // "" none, "dsa", "msa", "nsa"
  long long sparse_topk_tokens = 0;
  // Average factor by which the full-attention layers' cached KV per token is smaller than the
  // head geometry implies (compressed KV such as DeepSeek V4's 4x/128x layers). 1 = none.
  // Full-attention layers with other heads than the window layers use global_* below instead.
  double kv_compression = 1.0;
  // Full-attention ("global") layers whose head geometry differs from the sliding-window layers'
  // (Gemma 4: num_global_key_value_heads, global_head_dim, attention_k_eq_v in the HF config).
  // 0 = the same as kv_heads / head_dim. GQA/MHA only; the loader requires sliding-window layers.
  int global_kv_heads = 0;
  int global_head_dim = 0;
  // The global layers have no V projection: V is computed from the K projection. Weights only:
  // engines still cache K (normed, rotated) and V (normed) as two tensors (vLLM gemma4.py).
  bool global_k_eq_v = false;
  std::optional<CompressedAttention> compressed;  // set for "type": "csa"

  bool has_global_geometry() const { return global_kv_heads > 0 || global_head_dim > 0; }
  // KV heads and head size of the full-attention layers.
  int full_kv_heads() const { return global_kv_heads > 0 ? global_kv_heads : kv_heads; }
  int full_head_dim() const { return global_head_dim > 0 ? global_head_dim : head_dim; }
};

struct Moe {
  int routed_experts = 0;
  int experts_per_token = 0;
  int shared_experts = 0;
  int expert_ffn_size = 0;
  int shared_expert_ffn_size = 0;
  int dense_layers = 0;
  // 1: the dense_layers lead and every later layer is MoE (DeepSeek first_k_dense_replace). n > 1:
  // every n-th layer is MoE (layer i when (i + 1) % n == 0, Llama 4's interleave_moe_layer_step)
  // and the dense layers sit between them. Only where the layers go (pipeline stages) reads it.
  int moe_layer_step = 1;
  // softmax | sigmoid (top-k sigmoid, no groups: Llama 4) | sigmoid_grouped (DeepSeek V3 noaux_tc)
  // | sqrtsoftplus (DeepSeek V4). Informational: the performance model assumes uniform routing.
  std::string routing = "softmax";
  int n_group = 0;
  int topk_group = 0;
};

struct Checkpoint {
  std::string precision_label;
  double size_gb = 0;
  bool includes_mtp = false;
  Provenance prov;
};

struct QualityScore {
  std::string benchmark;
  double value = 0;
  std::string unit;
  std::string reported_by;  // vendor | independent
  Provenance prov;
};

// Weight components that may carry different precisions (docs/memory.md).
enum class Component { embeddings, attention, dense_ffn, shared_experts, routed_experts };
inline constexpr Component kComponents[] = {Component::embeddings, Component::attention,
                                            Component::dense_ffn, Component::shared_experts,
                                            Component::routed_experts};
const char* component_name(Component c);

// A context window reachable only with a RoPE-scaling method (e.g. YaRN on Qwen3). The model's
// max_context_tokens stays the native window; this says how far it can be stretched and at what
// cost in quality.
struct ContextExtension {
  std::string method;  // yarn | linear | dynamic_ntk | longrope
  double factor = 1;
  long long max_context_tokens = 0;
  std::string quality_caveat;
  Provenance prov;
};

// A KV-cache size per token that a source publishes for the model (checked by `catalog check`).
struct PublishedKv {
  double bytes_per_token = 0;
  std::string kv_precision;  // KV format id the figure is for
  Provenance prov;
};

// What a model does (data/models.json `kind`, docs/catalogs.md): a generative decoder (the
// default), an embedding model (text → one vector per item) or a reranker (a query-document
// pair → one relevance score). Embedding and reranking models are planned as prefill-only work
// in items/s by menus (docs/plan.md § menus); `plan` and `recommend` take generative models
// only (`perf` estimates any model: give an embedding model --output 1).
enum class ModelKind { generate, embed, rerank };
// "generate" | "embed" | "rerank", as written in models.json.
const char* model_kind_name(ModelKind k);

struct Model {
  std::string id, name, family, license, license_notes, release;
  ModelKind kind = ModelKind::generate;
  double total_params_b = 0;
  double active_params_b = 0;
  int layers = 0;
  int hidden_size = 0;
  int vocab_size = 0;
  long long max_context_tokens = 0;
  bool tied_embeddings = false;
  Attention attention;
  int dense_ffn_size = 0;
  std::optional<Moe> moe;
  int mtp_layers = 0;
  // Precision id per component; always has all five entries after loading.
  std::map<Component, std::string> native_precision;
  std::vector<Checkpoint> checkpoints;
  std::vector<QualityScore> quality_scores;
  std::optional<ContextExtension> context_extension;
  std::optional<PublishedKv> published_kv;
  // Why the parameters computed from the architecture differ from the published total/active
  // by more than 2% (required then; printed by `catalog check`).
  std::string params_note;
  // Fields of this entry that are estimated or scaled rather than read from a source.
  std::vector<std::string> estimated_fields;
  Provenance prov;

  bool is_moe() const { return moe.has_value(); }
  bool is_generative() const { return kind == ModelKind::generate; }
};

enum class DeviceKind { gpu, cpu, unified };
// "gpu" | "cpu" | "unified", as written in devices.json.
const char* device_kind_name(DeviceKind k);

struct Device {
  std::string id, name, vendor;
  DeviceKind kind = DeviceKind::gpu;
  // devices.json gives the marketed size in GiB (`memory_gib`: "80 GB" H100 = 80 GiB); the
  // loader fills memory_gb in decimal GB (1e9 bytes) = memory_gib × 1.073741824, the unit every
  // downstream formula uses.
  double memory_gib = 0;
  double memory_gb = 0;
  std::optional<double> usable_memory_gb;  // after the driver's reservation, when published
  // What an engine's memory_utilization fraction applies to: vLLM and SGLang multiply the total
  // that cudaMemGetInfo reports (torch.cuda.mem_get_info, the figure nvidia-smi shows), which is
  // the usable size where one is published, else the marketed one.
  double engine_visible_memory_gb() const { return usable_memory_gb.value_or(memory_gb); }
  double memory_bandwidth_gb_s = 0;
  // Where sources disagree on the bandwidth: the published range (min, max), which contains
  // memory_bandwidth_gb_s.
  std::optional<std::pair<double, double>> memory_bandwidth_range_gb_s;
  std::map<std::string, double> peak_tflops;  // dense, per data type
  std::vector<std::string> hw_formats;        // fp8, fp4, int8
  double nvlink_gb_s = 0;
  int pcie_gen = 0;
  int pcie_lanes = 0;
  double tdp_w = 0;
  std::string form_factor;
  int max_per_node = 8;
  int cores = 0;
  std::string export_control_notes;
  Provenance prov;

  bool has_hw_format(const std::string& f) const;
  // Dense peak for a math format, falling back to bf16/fp16 when the format has no hardware path.
  double peak_tflops_for(const std::string& hw_format) const;
};

struct WeightFormat {
  std::string id;
  double bits_per_weight = 0;
  int block_size = 0;
  int scale_bits = 0;
  std::string hw_format;  // bf16 fp16 fp8 fp4 int8 none
  std::optional<std::pair<double, double>> quality_retention_pct;
  std::vector<std::string> engines;
  Provenance prov;
};

struct KvFormat {
  std::string id;
  double bits_per_element = 0;
  int block_size = 0;
  int scale_bits = 0;
  std::string hw_format;
  std::vector<std::string> engines;
  Provenance prov;
};

// What layouts an engine can run (data/engines.json `parallelism`, docs/catalogs.md § engines).
// Layer split: consecutive layers per card, run one card after another (llama.cpp's default
// split mode), modelled as pipeline stages; row split: each tensor's rows over the cards,
// modelled as tensor parallelism.
struct EngineParallelism {
  bool tensor = false, pipeline = false, expert = false, data = false, dp_attention = false;
  bool layer_split = false, row_split = false;
  bool multi_node = false;
  std::string default_split = "tensor";  // "tensor" | "layer": the layout with no --tp/--pp
  Provenance prov;
};

struct Engine {
  std::string id, name;
  std::vector<std::string> device_kinds, weight_formats, kv_formats, speculative;
  std::vector<std::string> device_vendors;  // empty: any vendor (devices.json `vendor`)
  EngineParallelism parallelism;
  double memory_utilization = 0.9;
  std::map<std::string, double> efficiency;  // documented in docs/performance.md
  Provenance prov;
};

struct ApiPrice {
  std::string model, provider, currency, tier;
  double input_per_mtok = 0;
  std::optional<double> cached_input_per_mtok;
  double output_per_mtok = 0;
  Provenance prov;
};

struct RentalPrice {
  std::string device, provider, kind;  // kind: on_demand | reserved | spot
  double usd_per_gpu_hour = 0;
  int commitment_months = 0;
  Provenance prov;
};

struct HardwarePrice {
  std::string item, device, kind, currency, basis;  // kind: card | system
  int devices = 1;
  double price_low = 0, price_high = 0;
  bool includes_vat = false;
  double vat_rate = 0;  // the VAT included in a gross price (its own country's rate), else 0
  double system_power_w = 0;
  Provenance prov;
};

struct Site {
  std::string id, name, country, currency;
  double electricity_per_kwh = 0;
  double pue = 1;
  double vat_rate = 0;
  double colo_per_kw_month = 0;
  Provenance prov;
};

struct FxRate {
  std::string currency;
  double per_usd = 0;
  Provenance prov;
};

// Deployable systems (data/systems.json, docs/catalogs.md § systems): what a buyer racks or
// rents — GPUs per node, the scale-up domain they share, the scale-out fabric between nodes,
// host, power, rack units and whole-system prices.
// Where tensor-parallel traffic can go without leaving the fast fabric.
enum class ScaleUpKind {
  nvlink,     // NVLink / NVSwitch
  xgmi,       // AMD Infinity Fabric
  pcie_p2p,   // PCIe with peer-to-peer between cards
  pcie_host,  // PCIe, no peer-to-peer: traffic bounces through host memory
  unified,    // one package (Apple, Strix Halo, DGX Spark): no inter-GPU link inside
  none        // a single device per node
};
const char* scale_up_kind_name(ScaleUpKind k);

struct ScaleUp {
  ScaleUpKind kind = ScaleUpKind::none;
  int domain_gpus = 1;      // GPUs that share it (GB200 NVL72: 72 over 18 trays)
  double gb_s_per_gpu = 0;  // per direction, per GPU (GB/s, 1e9 bytes)
  double latency_us = 0;    // small-message collective latency over it
};

struct ScaleOut {
  std::string kind;           // "infiniband" | "ethernet" | "roce" | "none"
  int nics = 0;               // per node
  double gbit_s_per_nic = 0;  // line rate per NIC (Gb/s)
  double latency_us = 0;      // small-message latency between nodes
  double gb_s_per_node() const { return nics * gbit_s_per_nic / 8.0; }
};

// A price of the complete system (or of its host platform), one basis.
struct SystemPrice {
  std::string basis;     // "list" | "street" | "quote"
  std::string currency;  // ISO 4217
  double price_low = 0, price_high = 0;
  bool includes_vat = false;
  double vat_rate = 0;  // the rate included when includes_vat (0 otherwise)
  std::string what;     // what the price covers ("complete system", "chassis, 2× EPYC, …")
  Provenance prov;
};

// Renting one whole node, per node-hour.
struct SystemRental {
  std::string provider;
  std::string kind;  // "on_demand" | "reserved_1y" | "reserved_3y" | "spot"
  double usd_per_node_hour = 0;
  Provenance prov;
};

struct System {
  std::string id, name, device, form_factor;  // form_factor: server | workstation | desktop | rack
  int gpus_per_node = 1;
  ScaleUp scale_up;
  ScaleOut scale_out;
  std::string host_cpus;
  double host_ram_gb = 0;
  double wall_power_w = 0;  // whole node at the wall, under inference load
  int rack_units = 0;
  // Nodes sold together: owning buys whole multiples of this (a GB200 NVL72 rack of 18 trays);
  // renting is per node. 1 = any number of nodes.
  int purchase_unit_nodes = 1;
  // Complete-system prices. When a basis has none, the price is composed from the device's
  // card prices (prices.json, kind "card") × gpus_per_node + `host_platform` of that basis.
  std::vector<SystemPrice> prices;
  std::vector<SystemPrice> host_platform;
  std::vector<SystemRental> rentals;
  Provenance prov;
};

// A finding from loading or checking. `catalog check` prints every one and exits 1 when any is
// an error; notes are explained differences (printed, not failures).
enum class FindingLevel { warning, error, note };
struct CatalogWarning {
  std::string file, json_path, message;
  FindingLevel level = FindingLevel::warning;
};

struct Catalog {
  std::string data_dir;
  std::string content_hash;  // FNV-1a 64 over the catalog files' bytes, hex
  std::vector<Model> models;
  std::vector<Device> devices;
  std::vector<WeightFormat> weight_formats;
  std::vector<KvFormat> kv_formats;
  std::vector<Engine> engines;
  std::vector<ApiPrice> api_prices;
  std::vector<RentalPrice> rental_prices;
  std::vector<HardwarePrice> hardware_prices;
  std::vector<Site> sites;
  std::vector<FxRate> fx_rates;
  std::vector<System> systems;  // data/systems.json (optional file)
  std::vector<CatalogWarning> warnings;

  // Lookups throw UnknownIdError with "did you mean …?".
  const Model& model(const std::string& id) const;
  const Device& device(const std::string& id) const;
  const WeightFormat& weight_format(const std::string& id) const;
  const KvFormat& kv_format(const std::string& id) const;
  const Engine& engine(const std::string& id) const;
  const Site& site(const std::string& id) const;
  const System& system(const std::string& id) const;
  double fx_per_usd(const std::string& currency) const;  // USD -> 1

  const Model* find_model(const std::string& id) const;
  const Device* find_device(const std::string& id) const;
  const System* find_system(const std::string& id) const;
  std::vector<const System*> systems_for(const std::string& device_id) const;
  std::vector<const ApiPrice*> api_prices_for(const std::string& model_id) const;
  std::vector<const RentalPrice*> rental_prices_for(const std::string& device_id) const;
  std::vector<const HardwarePrice*> hardware_prices_for(const std::string& device_id) const;
};

// The bundled data directory: $MOEPLAN_DATA, else the install/source path baked in at build time.
std::string default_data_dir();

// Loads and validates every catalog file in `dir`. Throws InputError on the first
// error (file, JSON path, expected vs found). Non-fatal findings go to `warnings`.
Catalog load_catalog(const std::string& dir);

// Parameter count (not bytes) per weight component computed from the architecture
// fields (docs/memory.md). Used for precision mixes and the checkpoint cross-check.
std::map<Component, double> architecture_params(const Model& m);

// Total and active parameters recomputed from the architecture fields (embeddings, both input
// and output, counted in full; routed experts at experts_per_token / routed_experts; MTP layers
// not counted), against the published figures.
struct ParamCheck {
  double arch_total_b = 0, arch_active_b = 0;
  double total_dev_pct = 0, active_dev_pct = 0;  // (computed − published) / published × 100
};
ParamCheck check_params(const Model& m);

// KV compression implied by per-layer compression ratios: the harmonic mean over the layers
// with a ratio > 0 (ratio 0 layers keep only a sliding window). 1 when none is compressed.
double kv_compression_from_ratios(const std::vector<int>& ratios);

inline constexpr double kGibInGb = 1.073741824;  // 2^30 / 1e9

}  // namespace moeplan
