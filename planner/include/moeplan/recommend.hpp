// `moeplan recommend`: search the catalog — devices × GPU counts × precisions ×
// parallel layouts × concurrency — for one or more models and a demand, and
// return the Pareto frontier of cost per 1M output tokens against per-user
// tok/s plus the top N under the SLA (docs/plan.md § recommend).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "moeplan/catalog.hpp"
#include "moeplan/performance.hpp"
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
  // Owning, when a device has no rental price: price / life + power.
  int life_months = 36;
  double electricity_usd_per_kwh = 0.12;
  double pue = 1.4;
  long long max_concurrency = 1024;
  int threads = 2;
};

struct Point {
  const Model* model = nullptr;
  const Device* device = nullptr;
  int gpus = 0;
  std::string precision;  // weight spec
  std::string kv;
  ResolvedLayout layout;
  long long concurrency = 0;
  double aggregate_tok_s = 0;  // output tok/s of one replica
  double per_user_tok_s = 0;
  double ttft_ms = 0, tpot_ms = 0;
  bool meets_sla = true;
  double gpu_hour_usd = 0;
  std::string price_basis;   // "rent: provider (kind)" | "own: item"
  std::string evidence;      // throughput tier, as perf and plan report it
  int replicas = 1;          // copies needed for the demand (1 without a demand)
  double cost_per_mtok = 0;  // scenario currency, at the demand (idle capacity included)
};

struct Result {
  std::vector<Point> frontier;  // cost ascending, per-user tok/s ascending
  std::vector<Point> top;       // cheapest meeting the SLA (and the demand)
  std::size_t configs = 0, configs_fit = 0, points = 0;
  std::size_t devices_unpriced = 0;
  double seconds = 0;
};

// Per-GPU-hour price of a device in USD and its basis; nullopt when the catalog has none.
std::optional<std::pair<double, std::string>> gpu_hour_price(const Device& d, const Catalog& cat,
                                                             const Request& req);

// Keeps the points no other point dominates (cost ≤ and per-user tok/s ≥, one strictly).
std::vector<Point> pareto_frontier(std::vector<Point> pts);

Result search(const Request& req, const Catalog& cat);

Report make_report(const Request& req, const Result& r);

}  // namespace moeplan::recommend
