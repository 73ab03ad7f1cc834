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
  // head geometry above implies (compressed KV such as DeepSeek V4's 4x/128x layers, or global
  // layers with fewer, shared K=V heads). 1 = none.
  double kv_compression = 1.0;
};

struct Moe {
  int routed_experts = 0;
  int experts_per_token = 0;
  int shared_experts = 0;
  int expert_ffn_size = 0;
  int shared_expert_ffn_size = 0;
  int dense_layers = 0;
  std::string routing = "softmax";  // or "sigmoid_grouped"
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

struct Model {
  std::string id, name, family, license, license_notes, release;
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
  Provenance prov;

  bool is_moe() const { return moe.has_value(); }
};

enum class DeviceKind { gpu, cpu, unified };
// "gpu" | "cpu" | "unified", as written in devices.json.
const char* device_kind_name(DeviceKind k);

struct Device {
  std::string id, name, vendor;
  DeviceKind kind = DeviceKind::gpu;
  double memory_gb = 0;
  double memory_bandwidth_gb_s = 0;
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

struct Engine {
  std::string id, name;
  std::vector<std::string> device_kinds, weight_formats, kv_formats, speculative;
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

// A warning from loading: not fatal, but printed by `catalog check`.
struct CatalogWarning {
  std::string file, json_path, message;
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
  std::vector<CatalogWarning> warnings;

  // Lookups throw UnknownIdError with "did you mean …?".
  const Model& model(const std::string& id) const;
  const Device& device(const std::string& id) const;
  const WeightFormat& weight_format(const std::string& id) const;
  const KvFormat& kv_format(const std::string& id) const;
  const Engine& engine(const std::string& id) const;
  const Site& site(const std::string& id) const;
  double fx_per_usd(const std::string& currency) const;  // USD -> 1

  const Model* find_model(const std::string& id) const;
  const Device* find_device(const std::string& id) const;
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

}  // namespace moeplan
