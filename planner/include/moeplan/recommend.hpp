// `moeplan recommend`: search the catalog — devices × GPU counts × precisions ×
// parallel layouts × concurrency — for one or more models and a demand, and
// return the Pareto frontier of cost per 1M output tokens against per-user
// tok/s plus the top N under the SLA (docs/plan.md § recommend).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "moeplan/catalog.hpp"
#include "moeplan/performance.hpp"
#include "moeplan/pricing.hpp"
#include "moeplan/report.hpp"

namespace moeplan::recommend {

struct Request {
  std::vector<const Model*> models;
  std::optional<double> output_tokens_per_s;  // aggregate demand; none = cost at full use
  long long input_tokens = 1024, output_tokens = 256;
  Sla sla;
  int top = 10;
  int max_gpus = 16;
  std::string engine = "vllm";
  std::string currency = "USD";
  double fx_per_usd = 1;
  // One price basis for the whole ranking (pricing.hpp): own (the system's purchase price in
  // `own_basis`, spread over the life, plus power) or rent (per node-hour of `rent_kind`).
  std::string price_as = "own";  // own | rent
  pricing::OwnBasis own_basis = pricing::OwnBasis::street;
  pricing::RentKind rent_kind = pricing::RentKind::on_demand;
  double vat_rate = 0;  // to take VAT out of catalog prices that include it
  // Owning: price / life + power at the wall.
  int life_months = 36;
  double electricity_usd_per_kwh = 0.12;
  double pue = 1.4;
  // A further cap on each replica's concurrency (quicker searches in tests). The engine's
  // max_num_seqs and the KV memory always apply (concurrency_limit, performance.hpp).
  std::optional<long long> max_concurrency;
  int threads = 2;
};

struct Point {
  const Model* model = nullptr;
  const Device* device = nullptr;
  const System* system = nullptr;  // catalog system; a configuration is `nodes` of it
  int nodes = 1;
  int gpus = 0;
  std::string precision;  // weight spec
  std::string kv;
  ResolvedLayout layout;
  long long concurrency = 0;
  ConcurrencyLimit limit;      // of one replica: KV memory and the engine's max_num_seqs
  double aggregate_tok_s = 0;  // output tok/s of one replica
  double per_user_tok_s = 0;
  double ttft_ms = 0, tpot_ms = 0;
  bool meets_sla = true;
  double node_hour_usd = 0;  // one node, in the ranking's basis
  double gpu_hour_usd = 0;   // node_hour_usd / GPUs per node
  std::string price_basis;   // "own: street, system price" | "rent: on_demand, per node-hour"
  std::string evidence;      // throughput tier, as perf and plan report it
  int replicas = 1;          // copies needed for the demand (1 without a demand)
  int nodes_paid = 1;        // replicas × nodes, owned in whole purchase units (pricing.hpp)
  double cost_per_mtok = 0;  // scenario currency, at the demand (idle capacity included)
};

struct Result {
  std::vector<Point> frontier;  // cost ascending, per-user tok/s ascending
  std::vector<Point> top;       // cheapest meeting the SLA (and the demand)
  std::size_t configs = 0, configs_fit = 0, points = 0;
  // Configurations searched but left out of the ranking, counted per reason (reasons are fixed
  // texts, so the counts add up the same whatever the thread split).
  std::map<std::string, std::size_t> rejected;
  // Concurrency points left out because the demand would need more replicas than the planner's
  // range at them (kMaxUnits, checked.hpp); their configuration stays when another point serves.
  std::size_t points_beyond_range = 0;
  std::size_t systems_unpriced = 0;  // no price in the ranking's basis: skipped
  double seconds = 0;
};

// Per-node-hour price of one node of a system in USD, in the request's one basis, with its
// label; nullopt (and the reason in `why`) when the basis does not price it.
std::optional<std::pair<double, std::string>> node_hour_price(const System& s, const Catalog& cat,
                                                              const Request& req,
                                                              std::string* why = nullptr);

// Keeps the points no other point dominates (cost ≤ and per-user tok/s ≥, one strictly).
std::vector<Point> pareto_frontier(std::vector<Point> pts);

// Throws Error for a demand that is not a positive output tok/s (nothing to size replicas for).
Result search(const Request& req, const Catalog& cat);

// Why a search has nothing to rank (no configuration fits the limits given, or none could be
// estimated or serve the demand); nullopt when it has rows. `recommend` exits non-zero with it.
std::optional<std::string> nothing_to_rank(const Request& req, const Result& r);

Report make_report(const Request& req, const Result& r);

}  // namespace moeplan::recommend
