// Model menus (docs/plan.md § menus, docs/scenario.md § menu scenarios): several workloads —
// each its own model, demand, SLA, residency and LoRA adapters — sharing one fleet of a
// deployable system. For every candidate system: the GPU group each workload needs (layout
// rules, fit, SLA throughput), the replicas its peak needs, an exact choice of which workloads
// to self-host and which to send to their API (residency forces self-hosting), the groups
// packed onto nodes, and the node cost split over the workloads by GPU share.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "moeplan/catalog.hpp"
#include "moeplan/plan.hpp"
#include "moeplan/report.hpp"

namespace moeplan::menu {

// A workload's kind is its model's (data/models.json `kind`): generate, embed or rerank.
using Kind = ModelKind;
const char* kind_name(Kind k);

// Per-tenant LoRA adapters over one base model (docs/plan.md § menus, multi-LoRA).
struct LoraAdapters {
  int count = 0;
  int rank = 0;
  std::string precision = "bf16";  // adapter weights' precision (vLLM serves them in bf16)
};

// Adapter memory: count × rank × layers × hidden × 2 matrices (A: hidden×r, B: r×hidden) ×
// 4 adapted projections (q, k, v, o of attention) × bytes per element. Every rank of a tensor
// group holds a full copy (conservative).
double lora_bytes(const Model& m, const LoraAdapters& l, double bytes_per_element = 2.0);
// Punica (Chen et al., MLSys 2024, arXiv:2310.18547, abstract): batched multi-LoRA decoding
// "only adding 2ms latency per token".
inline constexpr double kLoraTpotOverheadMs = 2.0;

struct Workload {
  std::string id;
  const Model* model = nullptr;
  std::string precision = "native";  // weight spec as in plan builds
  Kind kind = Kind::generate;
  // embed / rerank: the demand counts items (texts embedded, query-document pairs scored) as
  // requests with one pseudo-output token each, so every "output tok/s" of the allocation is
  // items/s (prefill-only work: the item's tokens are its prompt). item_tokens = tokens per
  // item (a rerank item = query + document); 0 for generate.
  long long item_tokens = 0;
  plan::PlanDemand demand;  // read by the plan reader (demand + sla + residency)
  std::optional<LoraAdapters> lora;
  std::string json_path;  // "/workloads/2"
};

// Demand-weighted average power (docs/plan.md § menus, power): each GPU draws idle +
// busy share × (TDP − idle) instead of its TDP around the clock; the rest of the node's wall power
// (host, fans, conversion losses) stays at its full figure. Given in the menu's `average_power`.
struct AveragePower {
  double gpu_idle_w = 0;
  std::string source, as_of, notes;
  bool estimated = false;
};

struct MenuScenario {
  std::string file, label, title, description;
  std::vector<Workload> workloads;
  std::vector<std::string> systems;  // candidate data/systems.json ids (auto: all priced ones)
  bool builds_auto = false;
  plan::PlanScenario money;  // currency, engine, pricing basis and the cost sections
  std::optional<AveragePower> average_power;  // none: every GPU draws its TDP 24/7
};

// Throws InputError naming the file and JSON path (duplicate ids, no demand, an embed or
// rerank workload given a generative model, unknown keys) and UnknownIdError for ids.
MenuScenario parse_menu_scenario(const Json& doc, const std::string& file, const Catalog& cat);
MenuScenario load_menu_scenario(const std::string& path, const Catalog& cat);
// Whether a scenario document is a menu (it has `workloads`).
bool is_menu_document(const Json& doc);
// Whether the scenario file at `path` is a menu (false when it cannot be read or parsed: the
// plan reader then reports the problem).
bool is_menu_file(const std::string& path);

// One workload's GPU group on one system.
struct GroupOption {
  bool ok = false;
  std::string reason;  // why not, when !ok
  int gpus = 0;        // group size (tp × pp)
  ResolvedLayout layout;
  long long concurrency = 0;
  ConcurrencyLimit limit;  // of one replica: KV memory and the engine's max_num_seqs
  double throughput = 0;   // output tok/s per replica at the SLA (LoRA overhead included)
  double ttft_ms = 0, tpot_ms = 0;
  Evidence evidence = Evidence::default_;  // of throughput, TTFT and TPOT (throughput_evidence)
  double weights_gb = 0, lora_gb = 0;
  // Share of the card's time this workload's engine runs when serving `throughput` at full
  // load: 1 alone; its own step / both steps on a shared card.
  double time_share = 1;
  // Runs at the engine's max_num_seqs though its KV memory holds more.
  bool engine_capped() const { return limit.engine_binds() && concurrency == limit.slots(); }
};

// The best group of `gpus` devices of `sys` for `w` (layout rules, fit, SLA).
GroupOption evaluate_group(const Workload& w, const System& sys, int gpus, const MenuScenario& sc,
                           const Catalog& cat);

// Two single-card workloads on one card (docs/plan.md § menus, sharing a card): each engine gets
// half the card's engine memory; the card is time-sliced, so each engine's step waits for at
// most one step of the other (TPOT = the two step times added, throughput and TTFT scaled by the
// same factor). Both SLAs and both peaks must hold; nullopt when they do not.
std::optional<std::pair<GroupOption, GroupOption>> share_card(const Workload& a, const Workload& b,
                                                              const System& sys,
                                                              const MenuScenario& sc,
                                                              const Catalog& cat);

struct Placement {
  int node = 0;
  std::vector<int> gpus;  // indices inside the node
  std::string workload;
  int replica = 0;
  int tp = 1;
  std::string shared_with;  // the other workload on this card, "" when it has the card alone
};

struct WorkloadResult {
  std::string id, model;
  std::string option;            // self_host | api | unserved
  std::string reason;            // why api / unserved
  GroupOption group;             // the chosen group (self_host), or the best group found
  std::string shares_card_with;  // set when its one card is shared (group then holds the shared
                                 // figures)
  int replicas = 0;
  int gpus = 0;  // replicas × group size
  Kind kind = Kind::generate;
  double peak_tok_s = 0, average_tok_s = 0;  // items/s for embed / rerank
  double utilization = 0;                    // year-average demand / capacity of its replicas
  double output_mtok_per_year = 0;           // 0 for embed / rerank
  double embedded_mtok_per_year = 0;         // embed / rerank: items × tokens per item
  double busy_gpus = 0;                      // year-average GPUs its work keeps busy (≤ gpus)
  double energy_per_year = 0;                // its GPUs' draw above idle (average_power), else 0
  std::optional<double> api_per_year;        // its own API bill (catalog price)
  std::optional<double> cost_per_year;       // GPU share of the nodes, or the API bill
  std::optional<double> cost_per_mtok_output;
  std::optional<double> cost_per_mtok_embedded;  // embed / rerank: per 1M tokens embedded/scored
  std::optional<double> separate_per_year;       // planned alone on the same system (or its API)
};

struct SystemResult {
  std::string system;
  bool ok = false;
  std::string reason;
  int nodes = 0, gpus_per_node = 0, idle_gpus = 0;
  double node_cost_per_year = 0, capex_per_node = 0, opex_per_node_per_year = 0;  // full draw
  // With average_power: a node's yearly cost with every GPU idle, and the yearly energy cost of
  // one GPU kept busy (TDP − idle); without it, fixed = node_cost_per_year and busy = 0.
  double node_fixed_cost_per_year = 0, energy_per_busy_gpu_year = 0;
  double opex_per_year = 0;                                // the fleet's opex at its average draw
  double wall_power_full_w = 0, wall_power_average_w = 0;  // per fleet
  double dynamic_w_per_gpu = 0;                            // TDP − idle (average_power)
  double menu_cost_per_year = 0, separate_plans_cost_per_year = 0, api_bill_per_year = 0;
  double self_host_cost_per_year = 0;          // nodes × node cost
  std::optional<double> cost_per_mtok_output;  // self-hosted nodes' cost / their output
  std::vector<WorkloadResult> workloads;
  std::vector<Placement> allocation;
  std::vector<std::string> notes;
};

struct MenuResult {
  MenuScenario scenario;
  std::vector<SystemResult> systems;  // cheapest first (served workloads, then cost)
  std::vector<std::string> messages;
};

MenuResult run_menu(const MenuScenario& sc, const Catalog& cat);

// Aligned first-fit-decreasing packing of groups (sizes ≤ node size) onto nodes; returns, per
// group in input order, {node, first GPU}. Exact (the fewest nodes) when sizes and node size
// are powers of two (docs/plan.md § menus).
std::vector<std::pair<int, int>> pack_groups(const std::vector<int>& sizes, int node_gpus,
                                             int* nodes_out);

Report make_menu_report(const MenuResult& r);
// The cheapest system's fleet: nodes × GPUs, each GPU coloured by its workload, idle GPUs
// hatched, with a legend and a provenance footer. Pure: the caller writes the file.
std::string render_fleet_svg(const MenuResult& r, const std::string& footer);

}  // namespace moeplan::menu
