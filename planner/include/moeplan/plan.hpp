// Procurement plans (docs/plan.md): one plan scenario in — demand, candidate
// models, candidate builds, money settings — and for every model × build: fit,
// SLA-feasible throughput, nodes, utilization, cost per 1M output tokens owned,
// rented and through the same model's API, payback, risks, evidence tiers,
// P10–P90 ranges from Monte Carlo, a ranked table and a recommendation that
// shows its reasoning (seed 000's decision tree).
#pragma once

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "moeplan/catalog.hpp"
#include "moeplan/cost.hpp"
#include "moeplan/json_read.hpp"
#include "moeplan/montecarlo.hpp"
#include "moeplan/performance.hpp"
#include "moeplan/pilot.hpp"
#include "moeplan/pricing.hpp"
#include "moeplan/report.hpp"
#include "moeplan/sizing.hpp"
#include "moeplan/svg_chart.hpp"

namespace moeplan::plan {

// ---------------------------------------------------------------------------
// Scenario (docs/scenario.md § plan scenario)

struct PlanDemand {
  double requests_per_day = 0;
  long long input_tokens = 0, output_tokens = 0;  // per request
  double cache_hit_share = 0;
  double days_per_year = 365;
  double peak_to_average = 1;          // from the field or the hourly profile
  std::vector<double> hourly_profile;  // 24 relative weights, empty when not given
  std::optional<double> sla_ttft_ms, sla_tpot_ms;
  long long context_tokens = 0;  // context each request needs (≥ input + output)
  bool residency_required = false;
  std::map<std::string, double> min_scores;  // benchmark → minimum score
  std::optional<double> min_retention_pct;   // minimum quality retention of the precision

  // Average output tok/s over a day the service is open: requests/day × output tokens / 86,400.
  // days_per_year does not enter: a business open 220 days a year is just as busy on each of them.
  double open_day_average_output_tokens_per_s() const;
  // The fleet is sized for this: the open-day average × peak/average (docs/plan.md §Demand).
  double peak_output_tokens_per_s() const {
    return open_day_average_output_tokens_per_s() * peak_to_average;
  }
  // Year-average output tok/s: yearly volume / seconds in a year (closed days count as idle).
  // Utilisation and resale are stated over the whole year, so they use this average.
  double average_output_tokens_per_s() const;
  // requests/day × output tokens × days_per_year: the volume cost per token is spread over.
  double output_tokens_per_year() const;
};

struct ModelSelector {
  std::vector<std::string> ids;       // explicit ids, or empty = the whole catalog
  long long min_context_tokens = 0;   // constraint filters
  std::vector<std::string> licenses;  // allowed licence strings (exact), empty = any
  double max_total_params_b = 0;      // 0 = any
  bool moe_only = false;
};

struct BuildSpec {
  std::string system;  // catalog system id ("" = none in data/systems.json for device × gpus)
  std::string device;
  int gpus_per_node = 0;
  std::string precision = "native";  // weight spec: "native", an id, or a per-component mix
  std::string kv;                    // "" = fp8 when the device has FP8 units, else bf16
  std::string engine;                // "" = scenario default
  Layout layout;
  Json buy = Json::object();   // overrides merged into the scenario's buy section
  Json rent = Json::object();  // overrides merged into the scenario's rent section
  std::string json_path;       // "/builds/2", or "auto"
};

struct Resale {  // selling idle capacity (seed 000 "own → hybrid")
  double input_usd_per_mtok = 0, cached_input_usd_per_mtok = 0, output_usd_per_mtok = 0;
  double cache_hit_share = 0;
  double input_tokens_per_output_token = 0;
  double sold_share = 0.5;  // share of the idle capacity that finds buyers
};

struct MonteCarloSettings {
  int samples = 2000;
  std::uint64_t seed = 42;
  double efficiency_spread = 0.2;  // ± share of SLA throughput
};

// How a rented node runs to serve the demand (docs/scenario.md § rent schedule).
struct RentSchedule {
  std::string mode = "profile";  // 24x7 | profile | autoscale
  double min_billing_hours = 1;  // autoscale: each node start bills at least this
  double cold_start_s = 0;       // autoscale: billed start-up time per node start
};

// Pass marks for the rented pilot (`/pilot`, read by `moeprobe load`, docs/load.md).
struct PilotTargets {
  double min_uptime_share = 0.95;             // check 3 (seed 000: "above 95% uptime")
  double min_tool_call_success_share = 0.95;  // check 5
  std::optional<double> min_eval_pass_share;  // check 6: none = not measurable
};

struct PlanScenario {
  std::string file;   // as given (for messages)
  std::string label;  // file name without directories (for outputs)
  std::string title, description;
  std::string currency;
  std::string engine = "vllm";
  PlanDemand demand;
  ModelSelector models;
  std::vector<BuildSpec> builds;
  bool builds_auto = false;
  bool n_plus_one = false;
  double near_full_node_share = 0.7;  // "demand near a full node" (seed 000: 60–70%)
  // One price basis for every candidate (/pricing, docs/scenario.md).
  pricing::OwnBasis own_basis = pricing::OwnBasis::street;
  pricing::RentKind rent_kind = pricing::RentKind::on_demand;
  RentSchedule rent_schedule;
  std::optional<Resale> resale;
  MonteCarloSettings monte_carlo;
  PilotTargets pilot;
  // The money part as a cost scenario (docs/scenario.md): top-level keys, demand
  // (cost keys only), buy, rent, api. Completed per candidate and read by
  // parse_scenario().
  Json cost_doc = Json::object();
  bool has_buy = false;
  std::vector<cost::Assumption> assumptions;  // plan-only settings
};

// Throws InputError naming the file and JSON path (missing field, wrong type,
// unknown key, out of range) and UnknownIdError for unknown catalog ids.
PlanScenario load_plan_scenario(const std::string& path, const Catalog& cat);
// any_model_kind: accept embedding and reranking models in /models (the menu reader, which
// plans them by their kind); plan itself accepts generative models only.
PlanScenario parse_plan_scenario(const Json& doc, const std::string& file, const Catalog& cat,
                                 bool any_model_kind = false);
PlanScenario parse_plan_scenario_text(const std::string& text, const std::string& file,
                                      const Catalog& cat);

// ---------------------------------------------------------------------------
// Results

// One input a figure depends on, with where it came from (regress uses these
// to name the catalog fields that moved a figure).
struct Input {
  std::string name;  // "devices.json/h200/memory_bandwidth_gb_s", "/buy/capex"
  Json value;
  std::string unit;
  std::string source;  // catalog file + entry + field, or the scenario path
};

struct Candidate {
  std::string id;  // "glm-5.2 | 8×h200 | fp8"
  const Model* model = nullptr;
  const Device* device = nullptr;
  const Engine* engine = nullptr;
  BuildSpec build;
  System system;  // the catalog system (or a stand-in: id "" when systems.json has none)
  std::string own_price_basis, rent_price_basis;  // "own: street, system price", …
  PrecisionMix weights;
  std::string precision_label, kv_precision;
  ResolvedLayout layout;
  // fit
  bool fits = false;
  std::string fit_reason;
  double weights_gb = 0;
  double kv_headroom_gb_per_gpu = 0;  // free memory per GPU after weights, activations, one request
  long long max_concurrency = 0;      // at the needed context
  // performance (per node, at the SLA-feasible concurrency)
  bool meets_sla = false;
  long long concurrency = 0;
  ConcurrencyLimit concurrency_limit;  // of one node: KV memory and the engine's max_num_seqs
  double throughput = 0;               // output tok/s per node
  double per_user_tok_s = 0, ttft_ms = 0, tpot_ms = 0;
  std::string perf_evidence = "default";
  std::string perf_note;
  // fleet
  int nodes = 0, reserve_nodes = 0;
  int nodes_owned = 0;     // bought when owning: `nodes` rounded up to the system's purchase unit
  double utilization = 0;  // average demand / fleet capacity
  double node_equivalents = 0;  // average demand / one node's capacity
  // money (scenario currency), for the whole fleet at the demand
  std::optional<double> own_per_mtok, rent_per_mtok, api_per_mtok;
  std::optional<double> own_per_year, rent_per_year, api_per_year;
  std::optional<double> capex, opex_per_year;
  // Payback within the owned node's life (cost.md §6); none when not reached within it.
  std::optional<double> payback_vs_rent_years, payback_vs_api_years;
  // Against renting part-time (the node-hours the schedule needs), when cheaper than 24/7;
  // nullopt also when it does not pay back within the life (then see rent_part_time_per_year).
  std::optional<double> payback_vs_rent_part_time_years;
  // The same two paybacks for owning and reselling idle capacity (hybrid): the resale revenue
  // is part of the owner's yearly cash flow, so the hybrid verdict quotes these.
  std::optional<double> hybrid_payback_vs_rent_years, hybrid_payback_vs_rent_part_time_years;
  int own_life_months = 0;  // the owned node's life; 0 when owning is not costed
  std::optional<double> crossover_vs_rent_month, crossover_vs_api_month;
  std::optional<double> rent_to_own_threshold;
  // Renting part-time: the node-hours the fleet must run to serve the demand profile
  // (RentSchedule), billed at the rent's own node-hour rate: the 24/7 yearly rent per node over
  // the hours that price bills in a year (rent_billed_hours_per_year).
  std::optional<double> rent_per_node_hour;
  // Hours a year the 24/7 rent price pays for: 8,760 for a yearly price; 12 × hours_per_month
  // (default month_hours, 720) for a monthly, hourly or catalog one, whose rate is the hourly
  // price itself. Dividing every price by 8,760 put a catalog node's rate 1.4% under its listed
  // price (12.62 for a 12.80 USD node-hour) and a 200-hour monthly contract's at 27% of it.
  double rent_billed_hours_per_year = cost::kHoursPerYear;
  std::optional<double> rent_node_hours_per_year, rent_part_time_per_year, rent_part_time_per_mtok;
  std::string rent_schedule_note;
  std::optional<double> own_matches_api_tok_s;  // sustained demand where one node's TCO = API
  std::optional<double> resale_revenue_per_year, own_net_of_resale_per_mtok;
  double utilization_with_resale = 0;
  std::string api_label;
  std::vector<std::string> cost_notes;
  mc::Result mc;
  mc::Inputs mc_inputs;
  // Which price entries fed each Monte Carlo range, and which were left out and why
  // (docs/plan.md §Monte Carlo): "capex" / "rent" / "excluded" → descriptions.
  std::map<std::string, std::vector<std::string>> mc_price_entries;
  // quality
  std::map<std::string, std::optional<double>>
      scores;  // asked-for and gpqa_diamond; nullopt = missing
  std::optional<std::pair<double, double>> retention_pct;
  std::optional<double>
      value_points_per_mtok;  // primary score / cheapest own-or-rent cost per Mtok
  std::string primary_benchmark;
  // verdict
  bool eligible = false;
  bool quality_ok = true;  // passes the quality floors and licence filter (API may still serve it)
  std::vector<std::string> excluded;  // why not eligible
  std::vector<std::string> risks;
  std::map<std::string, std::string> evidence;
  std::vector<Input> inputs;
  std::vector<cost::Assumption> cost_assumptions;
  int rank = 0;                            // 1-based among eligible, 0 = not ranked
  std::optional<pilot::Comparison> pilot;  // predicted vs measured, when --pilot is this build

  std::optional<double> best_self_host_per_mtok() const;
  // The node-hours a rent bills for a schedule's `node_hours` on `fleet_nodes` nodes: never more
  // than its 24/7 price pays for (fleet_nodes × rent_billed_hours_per_year), so renting by the hour
  // never costs more than renting around the clock, and a 24x7 schedule costs exactly the 24/7
  // rent.
  double rent_billed_node_hours(double node_hours, int fleet_nodes) const {
    return std::min(node_hours, fleet_nodes * rent_billed_hours_per_year);
  }
};

// Where the verdict changes: the demand at which the next option becomes cheaper.
struct Flip {
  double requests_per_day = 0;
  double output_tokens_per_month = 0;  // 1/12 of a year's output tokens at that demand
  std::string to;                      // the option that becomes cheaper: buy | rent | api | hybrid
};

struct Recommendation {
  std::string option;  // buy | rent | api | hybrid | none
  int candidate = -1;  // index into candidates, -1 when none
  std::string candidate_id;
  std::string model;
  std::vector<std::string> reasons;
  std::vector<std::string> go_no_go;
  // The recommended option priced as recommended (scenario currency).
  std::optional<double> annual_cost, cost_per_mtok_output;
  std::optional<double> rent_node_hours_per_year;  // rent only
  std::optional<Flip> flips_at;
};

struct PlanResult {
  PlanScenario scenario;
  std::vector<Candidate> candidates;
  std::vector<int> ranking;  // indices, eligible first by cost
  Recommendation recommendation;
  std::vector<std::string> messages;
  std::string catalog_hash;
};

struct PlanOptions {
  int threads = 2;                        // Monte Carlo worker threads
  std::optional<int> samples;             // override the scenario's sample count
  std::optional<pilot::PilotFile> pilot;  // measured figures replace the model's (docs/load.md)
};

PlanResult run_plan(const PlanScenario& sc, const Catalog& cat, const PlanOptions& o = {});

// The decision (exposed for tests): fills result.recommendation from the candidates.
void decide(PlanResult& r);

// Yearly cost of each option for one candidate when demand is `scale` × the scenario's
// (fleet resized for the peak, rented node-hours re-derived from the profile, API linear in
// tokens). Options absent when not priced or ruled out (api with residency). decide() and
// the flip point use it; exposed for tests.
struct OptionCosts {
  std::optional<double> buy, hybrid, rent, api;  // rent: the cheaper of part-time and 24/7
  std::optional<double> rent_node_hours;
  double output_tokens_per_year = 0;
};
OptionCosts option_costs(const PlanResult& r, const Candidate& best, const Candidate* api,
                         double scale);

// Output tok/s an owned fleet has spare for resale: its nodes less the N+1 spare, at a node's
// throughput, less the demand's average (never negative).
inline double sellable_tok_s(int nodes_owned, int reserve_nodes, double node_tok_s,
                             double average_demand_tok_s) {
  return std::max(0.0, (nodes_owned - reserve_nodes) * node_tok_s - average_demand_tok_s);
}

// Node-hours per year a rented fleet runs under `s` to serve `d` scaled by `scale`: whole
// hours per hour of demand (profile), plus cold starts and a minimum billing unit (autoscale),
// or the whole fleet around the clock (24x7). Never more than fleet_nodes × 8,760.
double rent_node_hours(const RentSchedule& s, const PlanDemand& d, double node_tok_s,
                       int reserve_nodes, int fleet_nodes, double scale = 1);

// Re-runs only the Monte Carlo of every candidate (the benchmark and tests).
void run_monte_carlo(PlanResult& r, int samples, std::uint64_t seed, int threads);

Report make_plan_report(const PlanResult& r);
// Cost per 1M output tokens against utilization per candidate, and the chosen
// option's cumulative cost against the alternatives.
svg::ChartPage make_plan_chart(const PlanResult& r);

// A money figure as the verdicts print it: "31.3M HUF", "42922 HUF", "3.03 USD".
std::string fmt_money(double v, const std::string& cur);

// The six go/no-go checks of seed 000 with this plan's targets filled in. `per_mtok`: the cost
// per 1M output tokens the recommendation states (check 4 quotes it); without one, the
// candidate's cheapest self-hosted figure.
std::vector<std::string> go_no_go_checks(const PlanResult& r, const Candidate* c,
                                         std::optional<double> per_mtok = std::nullopt);

}  // namespace moeplan::plan
