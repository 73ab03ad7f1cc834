// Procurement plans (docs/plan.md): enumerate model × build candidates, size
// them (fit), find the SLA-feasible throughput per node (sweep), size the
// fleet for the peak, cost it owned / rented / through the API with the cost
// model, run the Monte Carlo, flag risks, rank, and decide.
#include "moeplan/plan.hpp"

#include "moeplan/checked.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <thread>

#include "moeplan/errors.hpp"
#include "moeplan/layout.hpp"
#include "moeplan/performance.hpp"
#include "moeplan/scenario.hpp"
#include "moeplan/validate_perf.hpp"

namespace moeplan::plan {

namespace {

constexpr double kLargeMoeParamsB = 100;
// "large MoE" for the PCIe-sharding risk (docs/plan.md)

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

bool has_any_key(const Json& j, const std::vector<std::string>& keys) {
  for (const auto& k : keys)
    if (j.contains(k)) return true;
  return false;
}

const std::vector<std::string> kBuyPriceKeys = {"capex", "capex_usd", "system_price",
                                                "system_price_usd"};

std::string precision_label(const std::string& spec, const Model& m) {
  if (spec != "native") return spec;
  std::set<std::string> f;
  for (const auto& [c, p] : m.native_precision) f.insert(p);
  std::string s = "native (";
  bool first = true;
  for (const auto& x : f) {
    s += (first ? "" : "+") + x;
    first = false;
  }
  return s + ")";
}

std::string build_label(const Candidate& c) {
  return fmt::format("{}×{}", c.build.gpus_per_node, c.device->id);
}

// --- one candidate ---------------------------------------------------------

class Evaluator {
 public:
  Evaluator(const PlanScenario& sc, const Catalog& cat, const pilot::PilotFile* pilot = nullptr)
      : sc_(sc), cat_(cat), pilot_(pilot) {}

  Candidate evaluate(const Model& m, const BuildSpec& b) const;
  // Whether the model fits one node of `g` devices (the auto builds' filter).
  bool fits_on(const Model& m, const Device& d, const PrecisionMix& mix, const std::string& kv,
               const Engine& e, int g, const Topology& topo) const;
  std::string default_kv(const Device& d, const Engine& e) const {
    return default_kv_precision(d, e);  // the same default as perf and recommend
  }
  PrecisionMix mix_of(const Model& m, const std::string& spec) const {
    return spec == "native" ? m.native_precision
                            : parse_weight_spec(spec, m.native_precision, cat_);
  }

 private:
  const PlanScenario& sc_;
  const Catalog& cat_;
  const pilot::PilotFile* pilot_;

  void add_input(Candidate& c, std::string name, Json value, std::string unit,
                 std::string source) const {
    c.inputs.push_back({std::move(name), std::move(value), std::move(unit), std::move(source)});
  }
  void record_catalog_inputs(Candidate& c) const;
  void check_build_layout(Candidate& c) const;
  void run_fit_and_perf(Candidate& c) const;
  // The candidate's cost document with each option's price resolved (the scenario's own, else
  // the catalog's), and where each price came from.
  struct PricedDoc {
    Json doc;  // what the cost module's reader takes
    Json buy;  // the scenario's buy section with the build's overrides
    Json api;  // the api section as resolved (its tier names the catalog price)
    bool buy_priced = false, rent_priced = false, api_explicit = false;
    pricing::Context ctx;
    std::optional<pricing::OwnPrice> own;    // the catalog's buy price, when it is used
    std::optional<pricing::RentPrice> rent;  // the catalog's rent price, when it is used
    double rent_hours = 0;                   // rented hours per month
  };
  void run_cost(Candidate& c) const;
  PricedDoc price_options(Candidate& c) const;
  void price_buy(Candidate& c, PricedDoc& p) const;
  void price_rent(Candidate& c, PricedDoc& p) const;
  void price_api(Candidate& c, PricedDoc& p) const;
  cost::CostInputs read_cost_inputs(const Candidate& c, const Json& doc) const;
  void set_monte_carlo_inputs(Candidate& c, const cost::CostInputs& in, const PricedDoc& p) const;
  void set_price_evidence(Candidate& c, const cost::CostInputs& in, const PricedDoc& p) const;
  void run_fleet_cost(Candidate& c, const cost::CostInputs& in) const;
  void run_resale(Candidate& c, const cost::CostInputs& in) const;
  pricing::Context price_context(const Json& buy) const;
  void run_rent_schedule(Candidate& c) const;
  void run_quality(Candidate& c) const;
  void run_risks(Candidate& c) const;
};

bool Evaluator::fits_on(const Model& m, const Device& d, const PrecisionMix& mix,
                        const std::string& kv, const Engine& e, int g, const Topology& topo) const {
  double wb = 0;
  for (const auto& [comp, b] : weight_bytes(m, mix, cat_)) wb += b;
  if (wb > g * d.engine_visible_memory_gb() * 1e9 * e.memory_utilization)
    return false;  // cheap necessary condition
  const FitRequest f = engine_fit_request(m, d, g, mix, kv, e, topo, sc_.demand.context_tokens);
  try {
    // Only a node whose default layout the engine can run (docs/performance.md § Layout rules).
    if (check_layout(m, d, topo, e, resolve_layout(m, g, f.layout), g)) return false;
    return fit(f, cat_).fits;
  } catch (const Error&) {
    return false;
  }
}

void Evaluator::record_catalog_inputs(Candidate& c) const {
  const Model& m = *c.model;
  const Device& d = *c.device;
  const std::string mf = "models.json/" + m.id + "/", df = "devices.json/" + d.id + "/";
  const std::string ms = "data/models.json: " + m.id + " (" + m.prov.source + ")";
  const std::string ds = "data/devices.json: " + d.id + " (" + d.prov.source + ")";
  add_input(c, mf + "total_params_b", m.total_params_b, "B params", ms);
  add_input(c, mf + "active_params_b", m.active_params_b, "B params", ms);
  add_input(c, mf + "layers", m.layers, "", ms);
  add_input(c, mf + "max_context_tokens", m.max_context_tokens, "tokens", ms);
  add_input(c, df + "memory_gb", d.memory_gb, "GB", ds);
  add_input(c, df + "memory_bandwidth_gb_s", d.memory_bandwidth_gb_s, "GB/s", ds);
  for (const auto& [k, v] : d.peak_tflops) add_input(c, df + "peak_tflops/" + k, v, "TFLOPS", ds);
  add_input(c, df + "nvlink_gb_s", d.nvlink_gb_s, "GB/s", ds);
  add_input(c, df + "tdp_w", d.tdp_w, "W", ds);
  std::set<std::string> formats;
  for (const auto& [comp, p] : c.weights) formats.insert(p);
  for (const auto& f : formats) {
    const WeightFormat& wf = cat_.weight_format(f);
    add_input(c, "precisions.json/" + f + "/bits_per_weight", wf.bits_per_weight, "bits",
              "data/precisions.json: " + f);
  }
  const std::string es = "data/engines.json: " + c.engine->id;
  add_input(c, "engines.json/" + c.engine->id + "/memory_utilization", c.engine->memory_utilization,
            "share", es);
  for (const auto& [k, v] : c.engine->efficiency)
    add_input(c, "engines.json/" + c.engine->id + "/efficiency/" + k, v, "", es);
  if (sc_.currency != "USD") {
    for (const auto& r : cat_.fx_rates)
      if (r.currency == sc_.currency)
        add_input(c, "fx.json/" + r.currency + "/per_usd", r.per_usd, r.currency + " per USD",
                  "data/fx.json: " + r.prov.source);
  }
}

// The links a candidate's traffic crosses: its catalog system's, else the device's default.
Topology build_topology(const Candidate& c, const Catalog& cat) {
  return c.system.id.empty() ? topology_for(cat, *c.device) : topology_of(c.system);
}

// Layout rules (docs/performance.md § Layout rules): a build that breaks one is never ranked.
void Evaluator::check_build_layout(Candidate& c) const {
  const int g = c.build.gpus_per_node;
  const Topology topo = build_topology(c, cat_);
  try {
    const ResolvedLayout l =
        resolve_layout(*c.model, g, effective_layout(*c.engine, topo, g, c.build.layout));
    if (const auto broken = check_layout(*c.model, *c.device, topo, *c.engine, l, g))
      c.excluded.push_back(fmt::format("layout breaks rule {}: {}", broken->rule, broken->message));
  } catch (const Error& e) {
    c.excluded.push_back(std::string("layout: ") + e.what());
  }
}

void Evaluator::run_fit_and_perf(Candidate& c) const {
  const PlanDemand& dm = sc_.demand;
  const Topology topo = build_topology(c, cat_);
  const FitRequest f =
      engine_fit_request(*c.model, *c.device, c.build.gpus_per_node, c.weights, c.kv_precision,
                         *c.engine, topo, dm.context_tokens, c.build.layout);
  FitResult fr;
  try {
    fr = fit(f, cat_);
  } catch (const Error& e) {
    c.fits = false;
    c.fit_reason = e.what();
    c.excluded.push_back(std::string("layout: ") + e.what());
    return;
  }
  c.fits = fr.fits;
  c.fit_reason = fr.reason;
  c.layout = fr.layout;
  c.weights_gb = fr.weights_bytes / 1e9;
  c.max_concurrency = fr.max_concurrency;
  double free = std::numeric_limits<double>::infinity();
  for (const auto& g : fr.per_gpu) free = std::min(free, g.free_bytes);
  c.kv_headroom_gb_per_gpu = fr.per_gpu.empty() ? 0 : free / 1e9;
  if (!c.fits) {
    c.excluded.push_back("does not fit: " + fr.reason);
    return;
  }
  PerfRequest p;
  p.model = c.model;
  p.device = c.device;
  p.engine = c.engine;
  p.gpus = c.build.gpus_per_node;
  p.weights = c.weights;
  p.kv_precision = c.kv_precision;
  p.layout = f.layout;
  p.topology = topo;
  p.input_tokens = dm.input_tokens;
  p.output_tokens = dm.output_tokens;
  p.efficiencies = resolve_efficiencies(*c.device, *c.engine);
  const auto& e = *p.efficiencies;
  add_input(c, "efficiency/device_bandwidth", e.dev_bw.value, "share", e.dev_bw.source);
  add_input(c, "efficiency/device_compute", e.dev_compute.value, "share", e.dev_compute.source);
  add_input(c, "efficiency/engine_bandwidth", e.eng_bw.value, "share", e.eng_bw.source);
  add_input(c, "efficiency/engine_compute", e.eng_compute.value, "share", e.eng_compute.source);
  add_input(c, "efficiency/step_overhead_ms", e.step_overhead_ms.value, "ms",
            e.step_overhead_ms.source);
  Sla sla{dm.sla_tpot_ms, dm.sla_ttft_ms};
  SweepResult sw;
  try {
    sw = sweep(p, cat_, sla);
  } catch (const Error& ex) {
    c.excluded.push_back(std::string("performance model: ") + ex.what());
    return;
  }
  c.concurrency_limit = sw.limit;
  const SweepPoint* pick = nullptr;
  const bool has_sla = sla.any();
  const long long want = has_sla ? sw.best_sla_concurrency.value_or(0) : sw.knee_concurrency;
  for (const auto& pt : sw.points)
    if (pt.concurrency == want) pick = &pt;
  if (!pick) {
    c.meets_sla = false;
    const auto& one = sw.points.front().result;
    c.excluded.push_back(fmt::format(
        "no concurrency meets the SLA (at concurrency 1: TTFT {:.0f} ms, TPOT {:.1f} ms)",
        one.prefill.ttft_ms, one.decode.tpot_ms));
    c.per_user_tok_s = one.decode.per_request_tokens_per_s;
    c.ttft_ms = one.prefill.ttft_ms;
    c.tpot_ms = one.decode.tpot_ms;
    return;
  }
  c.meets_sla = true;
  c.concurrency = pick->concurrency;
  c.throughput = pick->result.decode.output_tokens_per_s;
  c.per_user_tok_s = pick->result.decode.per_request_tokens_per_s;
  c.ttft_ms = pick->result.prefill.ttft_ms;
  c.tpot_ms = pick->result.decode.tpot_ms;
  // The same tier perf and recommend report for this build (one story across commands).
  c.perf_evidence =
      evidence_name(throughput_evidence(pick->result.evidence, cat_, c.model->id, c.device->id,
                                        c.build.gpus_per_node, c.build.precision, c.engine->id));
  c.perf_note =
      has_sla ? fmt::format("highest throughput meeting the SLA, at concurrency {}", c.concurrency)
              : fmt::format("no SLA given: the knee of the concurrency sweep (concurrency {})",
                            c.concurrency);
  if (sw.limit.engine_binds() && c.concurrency == sw.limit.slots()) {
    // A fleet sized for the batch the KV memory holds would be short by that ratio: the engine
    // never admits more than max_num_seqs.
    const std::string capped = fmt::format(
        "concurrency capped at {}'s max_num_seqs of {} (data/engines.json); KV memory "
        "holds {}",
        c.engine->id, sw.limit.max_num_seqs, sw.limit.kv_limit);
    c.perf_note += "; " + capped;
    c.cost_notes.push_back(capped);
  }
  const double peak = sc_.demand.peak_output_tokens_per_s();
  c.reserve_nodes = sc_.n_plus_one ? 1 : 0;
  c.nodes = checked_ceil_count(peak / c.throughput - 1e-9, "nodes for " + c.id) + c.reserve_nodes;
  const double avg = sc_.demand.average_output_tokens_per_s();
  c.utilization = avg / (c.nodes * c.throughput);
  c.node_equivalents = avg / c.throughput;
}

// The buyer's currency, FX and VAT for catalog prices: the scenario's fx_per_usd (else the
// catalog's), and the VAT rate of /buy (else its site's, else none).
pricing::Context Evaluator::price_context(const Json& buy) const {
  pricing::Context ctx;
  ctx.currency = sc_.currency;
  ctx.fx_per_usd = sc_.cost_doc.contains("fx_per_usd") ? sc_.cost_doc["fx_per_usd"].get<double>()
                                                       : cat_.fx_per_usd(sc_.currency);
  if (buy.contains("vat_rate") && buy["vat_rate"].is_number())
    ctx.vat_rate = buy["vat_rate"].get<double>();
  else if (buy.contains("site") && buy["site"].is_string())
    for (const Site& st : cat_.sites)
      if (st.id == buy["site"].get<std::string>()) ctx.vat_rate = st.vat_rate;
  return ctx;
}

// Buy: the scenario's own price (with the build's overrides), else the one catalog basis
// (pricing.hpp); not costed when neither gives a price.
void Evaluator::price_buy(Candidate& c, PricedDoc& p) const {
  if (!sc_.has_buy && c.build.buy.empty()) {
    c.cost_notes.push_back("owning not costed: the scenario has no buy section");
    return;
  }
  Json buy = p.buy;
  if (!p.buy_priced) p.own = pricing::own_price(c.system, cat_, sc_.own_basis, p.ctx);
  if (p.own && !p.own->ok) {
    c.cost_notes.push_back(fmt::format("owning not costed: {} (give {}/buy/capex)", p.own->reason,
                                       c.build.json_path == "auto" || c.build.json_path.empty()
                                           ? "/builds/i"
                                           : c.build.json_path));
    p.own.reset();
    p.doc.erase("buy");
    return;
  }
  if (p.own) {
    buy["system_price"] = Json::array({p.own->net_low, p.own->net_high});
    buy["capex_includes_vat"] = false;
  }
  c.own_price_basis = p.own ? p.own->basis : "own: scenario price (/buy)";
  if (!buy.contains("gpu")) buy["gpu"] = c.device->id;
  if (!buy.contains("gpus")) buy["gpus"] = c.build.gpus_per_node;
  p.doc["buy"] = buy;
}

// Rent: the scenario's own price, else the one catalog kind, per node-hour.
void Evaluator::price_rent(Candidate& c, PricedDoc& p) const {
  Json rent = p.doc.contains("rent") ? p.doc["rent"] : Json::object();
  for (auto it = c.build.rent.begin(); it != c.build.rent.end(); ++it) rent[it.key()] = it.value();
  p.rent_priced = has_any_key(rent, rent_price_keys());
  if (!p.rent_priced) p.rent = pricing::rent_price(c.system, cat_, sc_.rent_kind, p.ctx);
  p.rent_hours = rent.value("hours_per_month", sc_.cost_doc.value("month_hours", 720.0));
  if (p.rent && !p.rent->ok) {
    c.cost_notes.push_back("renting not costed: " + p.rent->reason);
    p.rent.reset();
    p.doc.erase("rent");
    return;
  }
  if (p.rent) {
    rent["per_month"] = p.rent->per_node_hour * p.rent_hours;
    rent["kind"] = pricing::bills_by_the_hour(sc_.rent_kind)
                       ? std::string(pricing::rent_kind_name(sc_.rent_kind))
                       : std::string("reserved");
    rent.erase("gpu");
    rent.erase("gpus");
  } else if (!rent.contains("gpus")) {
    rent["gpus"] = c.build.gpus_per_node;
  }
  c.rent_price_basis = p.rent ? p.rent->basis : "rent: scenario price (/rent)";
  p.doc["rent"] = rent;
}

// API: the same model's catalog price (or the scenario's explicit prices).
void Evaluator::price_api(Candidate& c, PricedDoc& p) const {
  p.api = p.doc.contains("api") ? p.doc["api"] : Json::object();
  p.api_explicit = has_any_key(
      p.api, {"input_usd_per_mtok", "output_usd_per_mtok", "input_per_mtok", "output_per_mtok"});
  if (p.api_explicit) {
    p.doc["api"] = p.api;
    return;
  }
  const std::string tier = p.api.value("tier", std::string("list"));
  const std::string prov = p.api.value("provider", std::string());
  bool found = false;
  for (const ApiPrice* a : cat_.api_prices_for(c.model->id))
    found = found || (a->tier == tier && (prov.empty() || a->provider == prov));
  if (found) {
    p.api["model"] = c.model->id;
    p.doc["api"] = p.api;
  } else {
    c.cost_notes.push_back(
        fmt::format("API not costed: no {} API price for {} in the catalog", tier, c.model->id));
    p.doc.erase("api");
  }
}

Evaluator::PricedDoc Evaluator::price_options(Candidate& c) const {
  PricedDoc p;
  p.doc = sc_.cost_doc;
  p.buy = p.doc.contains("buy") ? p.doc["buy"] : Json::object();
  for (auto it = c.build.buy.begin(); it != c.build.buy.end(); ++it) p.buy[it.key()] = it.value();
  p.buy_priced = has_any_key(p.buy, kBuyPriceKeys);
  p.ctx = price_context(p.buy);
  price_buy(c, p);
  price_rent(c, p);
  price_api(c, p);
  return p;
}

// The candidate's cost scenario through the cost module's reader; a faulty key that came from
// the build's own override is reported at the build's JSON path.
cost::CostInputs Evaluator::read_cost_inputs(const Candidate& c, const Json& doc) const {
  const CatalogProvider provider = [this]() -> const Catalog& { return cat_; };
  try {
    return parse_scenario(doc, sc_.file, provider);
  } catch (const InputError& e) {
    for (const auto& [sec, over] : {std::pair<std::string, const Json*>{"/buy/", &c.build.buy},
                                    std::pair<std::string, const Json*>{"/rent/", &c.build.rent}}) {
      if (e.json_path().rfind(sec, 0) == 0) {
        const std::string key =
            e.json_path().substr(sec.size(), e.json_path().find('/', sec.size()) - sec.size());
        if (over->contains(key))
          throw InputError(e.file(), c.build.json_path + e.json_path(), e.problem());
      }
    }
    throw;
  }
}

// Monte Carlo inputs, per node: the price ranges behind capex and rent, and the catalog prices
// each figure rests on (recorded as inputs).
void Evaluator::set_monte_carlo_inputs(Candidate& c, const cost::CostInputs& in,
                                       const PricedDoc& p) const {
  mc::Inputs& mi = c.mc_inputs;
  mi.throughput_tok_s = c.throughput;
  mi.efficiency_spread = sc_.monte_carlo.efficiency_spread;
  mi.peak_tok_s = sc_.demand.peak_output_tokens_per_s();
  mi.reserve_nodes = c.reserve_nodes;
  mi.purchase_unit_nodes = c.system.purchase_unit_nodes;
  mi.output_tokens_per_year = sc_.demand.output_tokens_per_year();
  if (in.buy) {
    const auto& b = *in.buy;
    mi.vat_rate = b.vat_rate;
    mi.vat_recoverable = b.vat_recoverable;
    mi.residual_share = b.residual_share;
    mi.life_years = b.life_years();
    mi.warranty_share = b.capex_net > 0 ? b.warranty_per_year / b.capex_net : 0.0;
    mi.opex_fixed_per_year = b.opex_per_year - b.warranty_per_year;
    if (!p.own) {
      mi.capex_net.emplace_back(b.capex_net_low, b.capex_net_high);
      c.mc_price_entries["capex"].push_back("scenario price (" + c.build.json_path + ")");
    } else {
      for (const auto& rg : p.own->ranges) mi.capex_net.push_back(rg);
      for (const auto& e : p.own->entries) {
        const std::string src = e.name + " (" + p.own->basis + ", " + e.source + ")";
        add_input(c, e.name + "/price_low", e.low, e.currency, src);
        add_input(c, e.name + "/price_high", e.high, e.currency, src);
        c.mc_price_entries["capex"].push_back(
            fmt::format("{} ({}, {} {}–{}{})", e.name, p.own->basis, e.currency, e.low, e.high,
                        e.count > 1 ? fmt::format(" × {}", e.count) : ""));
      }
    }
  }
  if (in.rent) {
    if (!p.rent) {
      mi.rent_per_month.push_back(in.rent->per_month);
      c.mc_price_entries["rent"].push_back("scenario price (" + c.build.json_path + ")");
    } else {
      for (double x : p.rent->alternatives) mi.rent_per_month.push_back(x * p.rent_hours);
      for (const auto& e : p.rent->entries)
        add_input(c, e.name + (e.count > 1 ? "/usd_per_gpu_hour" : "/usd_per_node_hour"), e.low,
                  e.count > 1 ? "USD/GPU-hour" : "USD/node-hour",
                  e.source + " (" + p.rent->basis + ")");
      for (const auto& e : p.rent->entries)
        c.mc_price_entries["rent"].push_back(
            fmt::format("{} ({}, {} USD{})", e.name, p.rent->basis, e.low,
                        e.count > 1 ? " per GPU-hour" : " per node-hour"));
    }
  }
  if (in.api) {
    for (const ApiPrice* a : cat_.api_prices_for(c.model->id)) {
      const std::string n = "prices.json/api/" + a->model + "/" + a->provider + "/" + a->tier;
      add_input(c, n + "/input_per_mtok", a->input_per_mtok, a->currency + "/MTok",
                "data/prices.json: " + a->provider);
      add_input(c, n + "/output_per_mtok", a->output_per_mtok, a->currency + "/MTok",
                "data/prices.json: " + a->provider);
    }
  }
}

// Evidence of the money figures: the scenario's own price, the catalog's, or a catalog estimate
// (which adds a risk for hardware).
void Evaluator::set_price_evidence(Candidate& c, const cost::CostInputs& in,
                                   const PricedDoc& p) const {
  auto price_tier = [&](const std::string& section, bool priced_in_scenario, bool estimated) {
    if (priced_in_scenario) return std::string("scenario (") + section + ")";
    return std::string(estimated ? "catalog, estimated" : "catalog");
  };
  if (in.buy) {
    const bool est = p.own && p.own->estimated;
    c.evidence["capex"] = price_tier("/buy", p.buy_priced, est);
    if (est && !p.buy_priced)
      c.risks.push_back(fmt::format("hardware price of {} is a catalog estimate: get a live quote",
                                    c.device->id));
  }
  if (in.rent) {
    const bool est = p.rent && p.rent->estimated;
    c.evidence["rent"] = price_tier("/rent", p.rent_priced, est);
    c.evidence["rent"] += " [" + in.rent->kind + "]";
  }
  if (in.api) {
    bool est = false;
    const std::string tier = p.api.value("tier", std::string("list"));
    for (const ApiPrice* a : cat_.api_prices_for(c.model->id))
      if (a->tier == tier) est = est || a->prov.estimated;
    c.evidence["api"] =
        p.api_explicit ? "scenario (/api)" : (est ? "catalog, estimated" : "catalog");
    c.api_label = in.api->label;
  }
}

// The whole fleet through the cost model (it sees `nodes` nodes): cost per token and per year
// of each option, payback and crossover, then part-time renting and resale.
void Evaluator::run_fleet_cost(Candidate& c, const cost::CostInputs& in) const {
  cost::CostInputs fleet = in;
  const double n = c.nodes;
  // An owner buys whole purchase units (a GB200 rack of 18 trays) and pays for, powers and
  // houses all of them; a renter pays for the nodes the demand needs.
  c.nodes_owned = pricing::nodes_to_own(c.system, c.nodes);
  if (fleet.buy) {
    const double own = c.nodes_owned;
    auto& b = *fleet.buy;
    b.capex_net *= own;
    b.capex_net_low *= own;
    b.capex_net_high *= own;
    b.opex_per_year *= own;
    b.wall_power_w *= own;
    b.colo_per_month *= own;
    b.staff_per_year *= own;
    b.warranty_per_year *= own;
    b.other_per_year *= own;
    if (c.nodes_owned > c.nodes)
      c.cost_notes.push_back(fmt::format(
          "owning buys {} in units of {} nodes: {} node(s) owned for the {} the demand needs",
          c.system.id, c.system.purchase_unit_nodes, c.nodes_owned, c.nodes));
  }
  if (fleet.rent) fleet.rent->per_month *= n;
  cost::CostAnalysis a;
  try {
    a = cost::analyze(fleet);
  } catch (const std::exception& e) {
    c.cost_notes.push_back(std::string("cost model: ") + e.what());
    return;
  }
  if (const auto* o = a.option("buy")) {
    c.own_per_mtok = o->cost_per_mtok_output;
    c.own_per_year = o->cost_per_year;
    c.capex = fleet.buy->capex();
    c.opex_per_year = fleet.buy->opex_per_year;
    c.own_life_months = fleet.buy->life_months;
  }
  if (const auto* o = a.option("rent")) {
    c.rent_per_mtok = o->cost_per_mtok_output;
    c.rent_per_year = o->cost_per_year;
  }
  if (const auto* o = a.option("api")) {
    c.api_per_mtok = o->cost_per_mtok_output;
    c.api_per_year = o->cost_per_year;
  }
  if (const auto* p = a.pair("buy", "rent")) {
    c.payback_vs_rent_years = p->payback_years;
    c.crossover_vs_rent_month = p->crossover_month;
  }
  if (const auto* p = a.pair("buy", "api")) {
    c.payback_vs_api_years = p->payback_years;
    c.crossover_vs_api_month = p->crossover_month;
  }
  c.rent_to_own_threshold = a.rent_to_own_threshold;
  run_rent_schedule(c);
  // Payback against the rent the plan would actually pay: part-time, when the schedule makes it
  // cheaper than 24/7 (the 24/7 payback alone reads as a buy signal where renting part-time is
  // far cheaper).
  if (fleet.buy && c.rent_part_time_per_year && c.rent_per_year &&
      *c.rent_part_time_per_year < *c.rent_per_year)
    c.payback_vs_rent_part_time_years =
        cost::payback_years(fleet.buy->capex(), fleet.buy->opex_per_year, fleet.buy->residual(),
                            fleet.buy->life_months, *c.rent_part_time_per_year);
  if (in.buy && a.api_per_mtok_output && *a.api_per_mtok_output > 0) {
    const double per_node = cost::own_tco(in.buy->capex(), in.buy->opex_per_year,
                                          in.buy->life_years(), in.buy->residual()) /
                            in.buy->life_years();
    c.own_matches_api_tok_s = cost::break_even_tokens_per_s(per_node, *a.api_per_mtok_output);
  }
  run_resale(c, in);
  if (fleet.buy && c.resale_revenue_per_year) {
    const auto& b = *fleet.buy;
    const double net_opex = b.opex_per_year - *c.resale_revenue_per_year;
    if (c.rent_per_year)
      c.hybrid_payback_vs_rent_years =
          cost::payback_years(b.capex(), net_opex, b.residual(), b.life_months, *c.rent_per_year);
    if (c.rent_part_time_per_year && c.rent_per_year &&
        *c.rent_part_time_per_year < *c.rent_per_year)
      c.hybrid_payback_vs_rent_part_time_years = cost::payback_years(
          b.capex(), net_opex, b.residual(), b.life_months, *c.rent_part_time_per_year);
  }
}

// Reselling idle capacity (hybrid): what the owned fleet's spare output sells for, and owning's
// cost per token net of it. An owner of whole purchase units (a GB200 rack) can sell the output
// of every node it pays for, the ones beyond the demand's included.
void Evaluator::run_resale(Candidate& c, const cost::CostInputs& in) const {
  const double avg = sc_.demand.average_output_tokens_per_s();
  const double sellable = sellable_tok_s(c.nodes_owned, c.reserve_nodes, c.throughput, avg);
  c.utilization_with_resale = c.utilization;
  if (!sc_.resale || !c.own_per_year) return;
  const Resale& r = *sc_.resale;
  const double price = cost::price_per_mtok_output(
                           r.input_usd_per_mtok, r.cached_input_usd_per_mtok, r.output_usd_per_mtok,
                           r.input_tokens_per_output_token, r.cache_hit_share) *
                       in.fx_per_usd;
  const double sold = sellable * r.sold_share;
  c.resale_revenue_per_year = sold * cost::kSecondsPerYear * price / cost::kTokensPerMTok;
  c.own_net_of_resale_per_mtok = (*c.own_per_year - *c.resale_revenue_per_year) /
                                 (sc_.demand.output_tokens_per_year() / cost::kTokensPerMTok);
  c.utilization_with_resale = (avg + sold) / (c.nodes_owned * c.throughput);
}

void Evaluator::run_cost(Candidate& c) const {
  const PricedDoc p = price_options(c);
  if (!p.doc.contains("buy") && !p.doc.contains("rent") && !p.doc.contains("api")) return;
  const cost::CostInputs in = read_cost_inputs(c, p.doc);
  if (in.rent) c.rent_billed_hours_per_year = in.rent->billed_hours_per_year;
  c.cost_assumptions = in.assumptions;
  for (const auto& a : in.assumptions) add_input(c, a.name, a.value, a.unit, a.source);
  set_monte_carlo_inputs(c, in, p);
  set_price_evidence(c, in, p);
  if (c.throughput <= 0) return;  // does not serve: no per-token figures
  run_fleet_cost(c, in);
}

// Renting part-time: the node-hours the fleet runs to serve the demand profile under the
// scenario's schedule, at the rent's node-hour rate (docs/cost.md § Renting part-time).
void Evaluator::run_rent_schedule(Candidate& c) const {
  if (!c.rent_per_year || c.nodes <= 0 || !(c.throughput > 0)) return;
  const RentSchedule& s = sc_.rent_schedule;
  c.rent_per_node_hour = *c.rent_per_year / (c.nodes * c.rent_billed_hours_per_year);
  const double h = c.rent_billed_node_hours(
      rent_node_hours(s, sc_.demand, c.throughput, c.reserve_nodes, c.nodes), c.nodes);
  c.rent_node_hours_per_year = h;
  c.rent_part_time_per_year = h * *c.rent_per_node_hour;
  c.rent_part_time_per_mtok =
      *c.rent_part_time_per_year / (sc_.demand.output_tokens_per_year() / cost::kTokensPerMTok);
  c.rent_schedule_note =
      s.mode == "autoscale"
          ? fmt::format(
                "autoscale: nodes start with demand, {:.0f} s cold start, each start "
                "billed at least {:g} h",
                s.cold_start_s, s.min_billing_hours)
      : s.mode == "profile" ? std::string("profile: whole node-hours for every hour with demand")
                            : std::string("24x7: around the clock");
}

void Evaluator::run_quality(Candidate& c) const {
  const PlanDemand& dm = sc_.demand;
  c.primary_benchmark = dm.min_scores.empty() ? "gpqa_diamond" : dm.min_scores.begin()->first;
  std::vector<std::string> wanted{c.primary_benchmark};
  for (const auto& [b, v] : dm.min_scores)
    if (b != c.primary_benchmark) wanted.push_back(b);
  for (const auto& b : wanted) {
    std::optional<double> s;
    for (const auto& q : c.model->quality_scores)
      if (q.benchmark == b) {
        s = q.value;
        add_input(
            c, "models.json/" + c.model->id + "/quality_scores/" + b, q.value, q.unit,
            "data/models.json: " + c.model->id + " (" + q.reported_by + ", " + q.prov.source + ")");
        break;
      }
    c.scores[b] = s;
  }
  for (const auto& [b, floor] : dm.min_scores) {
    const auto& s = c.scores[b];
    if (!s)
      c.risks.push_back(
          fmt::format("no published {} score for {}: the /demand/min_scores floor of {} "
                      "is not verified (missing, not guessed)",
                      b, c.model->id, floor));
    else if (*s < floor) {
      c.excluded.push_back(fmt::format("{} {} is below the minimum {}", b, *s, floor));
      c.quality_ok = false;
    }
  }
  // Retention of the precision against the native checkpoint.
  bool unknown = false;
  double lo = 100, hi = 100;
  for (const auto& [comp, p] : c.weights) {
    if (c.model->native_precision.at(comp) == p) continue;
    const WeightFormat& wf = cat_.weight_format(p);
    if (!wf.quality_retention_pct) {
      unknown = true;
      continue;
    }
    lo = std::min(lo, wf.quality_retention_pct->first);
    hi = std::min(hi, wf.quality_retention_pct->second);
  }
  if (!unknown) c.retention_pct = std::make_pair(lo, hi);
  if (dm.min_retention_pct) {
    if (!c.retention_pct)
      c.risks.push_back(
          fmt::format("quality retention of {} is not in the catalog: the {}% floor is not "
                      "verified",
                      c.precision_label, *dm.min_retention_pct));
    else if (c.retention_pct->first < *dm.min_retention_pct) {
      c.excluded.push_back(fmt::format(
          "precision {} keeps {}–{}% of quality, below the {}% minimum", c.precision_label,
          c.retention_pct->first, c.retention_pct->second, *dm.min_retention_pct));
      c.quality_ok = false;
    }
  }
  c.evidence["quality"] = "missing";
  for (const auto& q : c.model->quality_scores)
    if (q.benchmark == c.primary_benchmark)
      c.evidence["quality"] = q.reported_by.empty() ? "published" : q.reported_by;
  const auto best = c.best_self_host_per_mtok();
  const auto& ps = c.scores[c.primary_benchmark];
  if (ps && best && *best > 0) c.value_points_per_mtok = *ps / *best;
}

void Evaluator::run_risks(Candidate& c) const {
  const Model& m = *c.model;
  const Device& d = *c.device;
  const int g = c.build.gpus_per_node;
  if (m.is_moe() && m.total_params_b >= kLargeMoeParamsB && g > 1 && d.nvlink_gb_s <= 0)
    c.risks.push_back(
        fmt::format("{:.0f}B MoE sharded over {} PCIe-only {} cards (no NVLink): expert and "
                    "tensor-parallel traffic "
                    "crosses PCIe; keep large MoEs on NVLink nodes or one model per card",
                    m.total_params_b, g, d.id));
  std::set<std::string> fp4;
  for (const auto& [comp, p] : c.weights)
    if (cat_.weight_format(p).hw_format == "fp4" && !d.has_hw_format("fp4")) fp4.insert(p);
  for (const auto& p : fp4)
    c.risks.push_back(
        fmt::format("{} is an FP4 format but {} has no FP4 units: weights are dequantised, "
                    "so FP4 saves memory but not compute",
                    p, d.id));
  if (!m.license_notes.empty())
    c.risks.push_back("licence (" + m.license + "): " + m.license_notes);
  if (!d.export_control_notes.empty())
    c.risks.push_back("export control (" + d.id + "): " + d.export_control_notes);
  if (m.prov.estimated)
    c.risks.push_back("architecture fields of " + m.id +
                      " are unverified (catalog marks them estimated)");
  if (c.perf_evidence == "default" && c.meets_sla)
    c.risks.push_back(
        "throughput is a model estimate from catalog defaults, not a measurement: confirm "
        "on a rented pilot (go/no-go 1)");
  if (c.perf_evidence == "published" && c.meets_sla) {
    // Published rows of this build exist, but the estimate may still miss them.
    const PublishedAgreement a = published_agreement(cat_, m.id, d.id, c.build.gpus_per_node,
                                                     c.build.precision, c.engine->id);
    if (a.outside > 0)
      c.risks.push_back(fmt::format(
          "{} of {} published measurements of this build lie outside ±25% of this model's "
          "prediction (worst: {} of data/benchmarks/published.csv): confirm on a rented pilot "
          "(go/no-go 1)",
          a.outside, a.rows, a.worst));
  }
}

Candidate Evaluator::evaluate(const Model& m, const BuildSpec& b) const {
  Candidate c;
  c.model = &m;
  c.device = &cat_.device(b.device);
  c.build = b;
  c.system = b.system.empty() ? pricing::stand_in_system(*c.device, b.gpus_per_node)
                              : cat_.system(b.system);
  if (b.system.empty())
    c.cost_notes.push_back(fmt::format(
        "no data/systems.json system holds {} × {}: owning is priced only from prices.json "
        "complete-system entries of that size (name a system in {}/system)",
        b.gpus_per_node, c.device->id, b.json_path == "auto" ? "/builds/i" : b.json_path));
  c.engine = &cat_.engine(b.engine.empty() ? sc_.engine : b.engine);
  c.weights = mix_of(m, b.precision);
  c.precision_label = precision_label(b.precision, m);
  c.kv_precision = b.kv.empty() ? default_kv(*c.device, *c.engine) : b.kv;
  c.id = fmt::format("{} | {}×{} | {}", m.id, b.gpus_per_node, c.device->id, b.precision);
  c.evidence["fit"] = "computed from catalog architecture and precisions (docs/memory.md)";
  record_catalog_inputs(c);

  // Hard constraints before any modelling.
  const auto& sel = sc_.models;
  if (m.max_context_tokens < sc_.demand.context_tokens)
    c.excluded.push_back(fmt::format("trained context {} < the {} tokens needed",
                                     m.max_context_tokens, sc_.demand.context_tokens));
  if (sel.min_context_tokens > 0 && m.max_context_tokens < sel.min_context_tokens)
    c.excluded.push_back(fmt::format("context {} < /models/min_context_tokens {}",
                                     m.max_context_tokens, sel.min_context_tokens));
  if (!sel.licenses.empty() && !contains(sel.licenses, m.license)) {
    c.excluded.push_back("licence '" + m.license + "' is not in /models/licenses");
    c.quality_ok = false;
  }
  if (sel.max_total_params_b > 0 && m.total_params_b > sel.max_total_params_b)
    c.excluded.push_back(
        fmt::format("{}B parameters > /models/max_total_params_b", m.total_params_b));
  if (sel.moe_only && !m.is_moe()) c.excluded.push_back("dense model, /models/moe_only is set");
  if (auto why = unserved_format(*c.engine, c.weights)) c.excluded.push_back(*why);
  if (auto why = unserved_format(*c.engine, {}, c.kv_precision)) c.excluded.push_back(*why);
  if (auto why = engine_device_problem(*c.engine, *c.device)) c.excluded.push_back(*why);
  if (c.excluded.empty()) check_build_layout(c);
  c.evidence["throughput"] = "n/a";
  if (c.excluded.empty()) {
    run_fit_and_perf(c);
    if (c.meets_sla)
      c.evidence["throughput"] = c.perf_evidence + " (performance model, docs/performance.md)";
  }
  if (pilot_) c.pilot = pilot::apply_pilot(c, *pilot_, sc_);  // before costs: they use it
  run_cost(c);
  run_quality(c);
  run_risks(c);
  if (c.meets_sla && !c.own_per_mtok && !c.rent_per_mtok)
    c.excluded.push_back("neither owning nor renting could be priced (see notes)");
  c.eligible = c.excluded.empty() && c.fits && c.meets_sla;
  return c;
}

}  // namespace

std::string fmt_money(double v, const std::string& cur) {
  if (std::abs(v) >= 1e6) return fmt::format("{:.1f}M {}", v / 1e6, cur);
  if (std::abs(v) >= 100) return fmt::format("{:.0f} {}", v, cur);
  return fmt::format("{:.3g} {}", v, cur);
}

std::optional<double> Candidate::best_self_host_per_mtok() const {
  std::optional<double> b = own_per_mtok;
  if (rent_per_mtok && (!b || *rent_per_mtok < *b)) b = rent_per_mtok;
  if (rent_part_time_per_mtok && (!b || *rent_part_time_per_mtok < *b)) b = rent_part_time_per_mtok;
  return b;
}

// --- the plan ----------------------------------------------------------------

void run_monte_carlo(PlanResult& r, int samples, std::uint64_t seed, int threads) {
  const std::size_t n = r.candidates.size();
  auto work = [&](std::size_t begin, std::size_t step) {
    for (std::size_t i = begin; i < n; i += step) {
      Candidate& c = r.candidates[i];
      if (c.throughput <= 0) continue;
      c.mc = mc::simulate(c.mc_inputs, samples, mc::stream_seed(seed, i));
    }
  };
  const auto t = static_cast<std::size_t>(std::max(1, threads));
  if (t == 1 || n < 2) {
    work(0, 1);
    return;
  }
  std::vector<std::thread> pool;
  for (std::size_t k = 1; k < t; ++k) pool.emplace_back(work, k, t);
  work(0, t);
  for (auto& th : pool) th.join();
}

namespace {

// builds: "auto" — every catalog system (data/systems.json) the engine runs on and that one
// basis prices (own or rent), at each precision the device runs natively and that fits one node.
std::vector<BuildSpec> auto_builds(const PlanScenario& sc, const Catalog& cat, const Evaluator& ev,
                                   const Model& m) {
  std::vector<BuildSpec> builds;
  const Engine& e = cat.engine(sc.engine);
  for (const System& sys : cat.systems) {
    const Device& d = cat.device(sys.device);
    if (engine_device_problem(e, d)) continue;
    const pricing::Context probe{"USD", 1, 0};
    if (!pricing::own_price(sys, cat, sc.own_basis, probe).ok &&
        !pricing::rent_price(sys, cat, sc.rent_kind, probe).ok)
      continue;
    std::vector<std::string> specs{"native"};
    if (d.has_hw_format("fp8")) specs.push_back("fp8");
    if (d.has_hw_format("fp4")) specs.push_back("nvfp4");
    std::set<PrecisionMix> seen;
    for (const auto& spec : specs) {
      const PrecisionMix mix = ev.mix_of(m, spec);
      if (!seen.insert(mix).second) continue;
      const bool served = !unserved_format(e, mix);
      if (!served ||
          !ev.fits_on(m, d, mix, ev.default_kv(d, e), e, sys.gpus_per_node, topology_of(sys)))
        continue;
      BuildSpec b;
      b.system = sys.id;
      b.device = d.id;
      b.gpus_per_node = sys.gpus_per_node;
      b.precision = spec;
      b.json_path = "auto";
      builds.push_back(b);
    }
  }
  return builds;
}

}  // namespace

PlanResult run_plan(const PlanScenario& sc, const Catalog& cat, const PlanOptions& o) {
  PlanResult r;
  r.scenario = sc;
  r.catalog_hash = cat.content_hash;
  Evaluator ev(r.scenario, cat, o.pilot ? &*o.pilot : nullptr);
  std::vector<const Model*> models;
  if (!sc.models.ids.empty()) {
    for (const auto& id : sc.models.ids) models.push_back(&cat.model(id));
  } else {
    for (const auto& m : cat.models) {
      const auto& s = sc.models;
      if (!m.is_generative()) continue;  // embeddings/rerankers: menus plan them by kind
      if (m.max_context_tokens < std::max(s.min_context_tokens, sc.demand.context_tokens)) continue;
      if (!s.licenses.empty() && !contains(s.licenses, m.license)) continue;
      if (s.max_total_params_b > 0 && m.total_params_b > s.max_total_params_b) continue;
      if (s.moe_only && !m.is_moe()) continue;
      models.push_back(&m);
    }
    r.messages.push_back(fmt::format("{} of {} catalog models meet the /models constraints",
                                     models.size(), cat.models.size()));
  }
  for (const Model* m : models) {
    std::vector<BuildSpec> builds = sc.builds;
    if (sc.builds_auto) builds = auto_builds(sc, cat, ev, *m);
    for (const auto& b : builds) r.candidates.push_back(ev.evaluate(*m, b));
  }
  if (r.candidates.empty())
    r.messages.push_back(
        "no candidate: no catalog build fits the selected models at the needed context");
  run_monte_carlo(r, o.samples.value_or(sc.monte_carlo.samples), sc.monte_carlo.seed, o.threads);

  // Ranking: eligible by their cheaper self-host cost per token, then the rest.
  std::vector<int> idx(r.candidates.size());
  for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int>(i);
  auto key = [&](int i) {
    const auto b = r.candidates[static_cast<std::size_t>(i)].best_self_host_per_mtok();
    return b ? *b : std::numeric_limits<double>::infinity();
  };
  std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) {
    const auto& ca = r.candidates[static_cast<std::size_t>(a)];
    const auto& cb = r.candidates[static_cast<std::size_t>(b)];
    if (ca.eligible != cb.eligible) return ca.eligible;
    if (!ca.eligible) return false;
    return key(a) < key(b);
  });
  int rank = 0;
  for (int i : idx) {
    auto& c = r.candidates[static_cast<std::size_t>(i)];
    if (c.eligible) c.rank = ++rank;
  }
  r.ranking = idx;
  decide(r);
  return r;
}

// The decision lives in plan_decide.cpp.

std::vector<std::string> go_no_go_checks(const PlanResult& r, const Candidate* c,
                                         std::optional<double> per_mtok) {
  const auto& d = r.scenario.demand;
  const std::string& cur = r.scenario.currency;
  std::vector<std::string> g;
  if (c) {
    g.push_back(fmt::format(
        "1. Sustained aggregate output of ≥ {:.0f} tok/s per node ({:.0f} for the fleet "
        "of {} at peak) with your {} in / {} out prompts (the plan assumes {:.0f}).",
        d.peak_output_tokens_per_s() / std::max(1, c->nodes - c->reserve_nodes),
        d.peak_output_tokens_per_s(), c->nodes, d.input_tokens, d.output_tokens, c->throughput));
    g.push_back(fmt::format(
        "2. TTFT {} and TPOT {} under real concurrency ({}); the model expects TTFT {:.0f} "
        "ms and TPOT {:.1f} ms.",
        d.sla_ttft_ms ? fmt::format("≤ {:.0f} ms", *d.sla_ttft_ms) : "competitive",
        d.sla_tpot_ms ? fmt::format("≤ {:.0f} ms", *d.sla_tpot_ms) : "competitive", c->concurrency,
        c->ttft_ms, c->tpot_ms));
  } else {
    g.push_back(
        "1. Sustained aggregate output in your target range (measure on the API or a rented "
        "node).");
    g.push_back("2. TTFT and throughput competitive under real concurrency.");
  }
  g.push_back("3. Above 95% uptime past the first 100+ monitored requests.");
  // The recommendation's own figure: a hybrid's is net of resale, which the candidate's cheapest
  // self-hosted figure is not (check 4 once quoted the part-time rent beside a hybrid verdict).
  const auto best = per_mtok ? per_mtok : c ? c->best_self_host_per_mtok() : std::nullopt;
  g.push_back(fmt::format(
      "4. Cache-hit rate ≥ {:.0f}% and blended cost per 1M output tokens ≤ {} (the plan's "
      "figure), covering node opex{}.",
      d.cache_hit_share * 100, best ? fmt_money(*best, cur) : std::string("the API price"),
      r.scenario.resale ? " with the resale revenue assumed" : ""));
  g.push_back(
      "5. Tool-call success high enough for your agent traffic (and for Auto Exacto routing if you "
      "resell).");
  std::string q = "6. Quality parity against the FP8 baseline on your own eval set";
  if (c && c->scores.count(c->primary_benchmark) && c->scores.at(c->primary_benchmark))
    q += fmt::format(" ({} published {})", c->primary_benchmark,
                     *c->scores.at(c->primary_benchmark));
  if (c && c->retention_pct)
    q += fmt::format("; precision {} retains {}–{}%", c->precision_label, c->retention_pct->first,
                     c->retention_pct->second);
  g.push_back(q + ".");
  return g;
}

}  // namespace moeplan::plan

// --- report ---------------------------------------------------------------------

namespace moeplan::plan {

namespace {

Json opt_json(const std::optional<double>& v) {
  return v ? Json(*v) : Json(nullptr);
}

Json range_json(const std::optional<mc::Range>& r) {
  if (!r) return nullptr;
  auto num = [](double x) { return std::isfinite(x) ? Json(x) : Json(nullptr); };
  return {{"p10", num(r->p10)}, {"p50", num(r->p50)}, {"p90", num(r->p90)}};
}

Cell opt_cell(const std::optional<double>& v, int d = -1) {
  return v ? Cell(*v, d) : Cell();
}

std::string price_basis_text(const Candidate& c) {
  std::string s = c.own_price_basis;
  if (!c.rent_price_basis.empty()) s += (s.empty() ? "" : "; ") + c.rent_price_basis;
  return s;
}

}  // namespace

namespace {

// The verdict in capitals, e.g. "RENT".
std::string verdict_word(const Recommendation& rec) {
  std::string verdict = rec.option;
  std::transform(verdict.begin(), verdict.end(), verdict.begin(), [](char ch) {
    return static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  });
  return verdict;
}

Table decision_table(const Recommendation& rec) {
  Table dec{"decision", "Recommendation and its reasoning", {"step", "finding"}, {}, {}};
  dec.add(
      {"verdict", verdict_word(rec) + (rec.candidate_id.empty() ? "" : ": " + rec.candidate_id)});
  int k = 0;
  for (const auto& x : rec.reasons) dec.add({fmt::format("reason {}", ++k), x});
  return dec;
}

// Candidates, ranked by self-hosted cost per 1M output tokens.
Table candidates_table(const PlanResult& r) {
  const PlanScenario& sc = r.scenario;
  const std::string& cur = sc.currency;
  const std::string m = "(" + cur + "/MTok)";
  Table t{"candidates",
          "Candidates, ranked by self-hosted cost per 1M output tokens",
          {"rank", "model", "build", "precision", "status", "fits", "nodes", "tok/s per node",
           "utilization (%)", "own " + m, "own P10 " + m, "own P90 " + m, "rent " + m,
           "rent part-time " + m, "api " + m, "payback vs rent (years)", "quality", "risks",
           "price basis"},
          {},
          {}};
  t.key_columns = 3;  // rank, model, build: repeated when the table prints in parts
  for (int i : r.ranking) {
    const Candidate& c = r.candidates[static_cast<std::size_t>(i)];
    const auto& ps =
        c.scores.count(c.primary_benchmark) ? c.scores.at(c.primary_benchmark) : std::nullopt;
    // The status (and the reason for an exclusion) sits next to the candidate's name.
    t.add({c.rank > 0 ? Cell(c.rank) : Cell(), c.model->id, build_label(c), c.precision_label,
           c.eligible ? std::string("eligible") : "excluded: " + c.excluded.front(), c.fits,
           c.nodes > 0 ? Cell(c.nodes) : Cell(), c.meets_sla ? Cell(c.throughput, 0) : Cell(),
           c.meets_sla ? Cell(c.utilization * 100, 1) : Cell(), opt_cell(c.own_per_mtok),
           c.mc.own_per_mtok ? Cell(c.mc.own_per_mtok->p10) : Cell(),
           c.mc.own_per_mtok ? Cell(c.mc.own_per_mtok->p90) : Cell(), opt_cell(c.rent_per_mtok),
           opt_cell(c.rent_part_time_per_mtok), opt_cell(c.api_per_mtok),
           c.payback_vs_rent_years || !(c.own_per_year && c.rent_per_year)
               ? opt_cell(c.payback_vs_rent_years, 2)
               : Cell("not within life"),
           ps ? Cell(fmt::format("{} {}", c.primary_benchmark, *ps))
              : Cell(c.primary_benchmark + " missing"),
           Cell(c.risks.size()), price_basis_text(c)});
  }
  t.notes.push_back(
      "own = TCO over the life ÷ demand served; rent = renting the same nodes 24/7; rent "
      "part-time = the node-hours the demand profile needs (/rent/schedule); api = the same "
      "model's API, input tokens included (docs/plan.md). Payback is against renting 24/7; "
      "against renting part-time it is in the JSON (payback_years.vs_rent_part_time) and the "
      "verdict.");
  t.notes.push_back(fmt::format(
      "P10/P90 from {} Monte Carlo samples over catalog price ranges and ±{:.0f}% "
      "throughput (seed {}).",
      sc.monte_carlo.samples, sc.monte_carlo.efficiency_spread * 100, sc.monte_carlo.seed));
  return t;
}

// Risks flagged from the catalogs, and the evidence tier of each figure of the eligible ones.
void add_risks_and_evidence(Report& rep, const PlanResult& r) {
  Table risks{"risks", "Risks flagged from the catalogs", {"candidate", "risk"}, {}, {}};
  Table ev{"evidence", "Evidence tier of each figure", {"candidate", "figure", "evidence"}, {}, {}};
  for (int i : r.ranking) {
    const Candidate& c = r.candidates[static_cast<std::size_t>(i)];
    for (const auto& x : c.risks) risks.add({c.id, x});
    for (const auto& x : c.cost_notes) risks.add({c.id, "note: " + x});
    if (c.eligible)
      for (const auto& [f, e] : c.evidence) ev.add({c.id, f, e});
  }
  rep.tables.push_back(risks);
  rep.tables.push_back(ev);
}

Cell value_cell(const Json& v) {
  if (v.is_number_integer()) return Cell(v.get<long long>());
  if (v.is_number()) return Cell(v.get<double>());
  if (v.is_boolean()) return Cell(v.get<bool>());
  if (v.is_string()) return Cell(v.get<std::string>());
  return Cell(v.dump());
}

// Assumptions: the scenario's and defaults, then the recommended candidate's inputs.
Table assumptions_table(const PlanResult& r) {
  const PlanScenario& sc = r.scenario;
  const Recommendation& rec = r.recommendation;
  Table as{"assumptions",
           "Assumptions (scenario and defaults)",
           {"name", "value", "unit", "source"},
           {},
           {}};
  for (const auto& a : sc.assumptions) as.add({a.name, value_cell(a.value), a.unit, a.source});
  if (rec.candidate >= 0) {
    const Candidate& c = r.candidates[static_cast<std::size_t>(rec.candidate)];
    for (const auto& a : c.inputs) as.add({a.name, value_cell(a.value), a.unit, a.source});
  }
  return as;
}

Json demand_json(const PlanScenario& sc) {
  return {
      {"requests_per_day", sc.demand.requests_per_day},
      {"input_tokens", sc.demand.input_tokens},
      {"output_tokens", sc.demand.output_tokens},
      {"cache_hit_share", sc.demand.cache_hit_share},
      {"days_per_year", sc.demand.days_per_year},
      {"open_day_average_output_tokens_per_s", sc.demand.open_day_average_output_tokens_per_s()},
      {"average_output_tokens_per_s", sc.demand.average_output_tokens_per_s()},
      {"peak_to_average", sc.demand.peak_to_average},
      {"peak_output_tokens_per_s", sc.demand.peak_output_tokens_per_s()},
      {"context_tokens", sc.demand.context_tokens},
      {"sla",
       {{"ttft_ms", opt_json(sc.demand.sla_ttft_ms)},
        {"tpot_ms", opt_json(sc.demand.sla_tpot_ms)}}},
      {"residency_required", sc.demand.residency_required},
      {"min_scores", sc.demand.min_scores},
      {"min_retention_pct", opt_json(sc.demand.min_retention_pct)}};
}

// One candidate as the JSON document carries it: build, fit, throughput, costs, break-evens,
// quality, Monte Carlo ranges, risks, evidence and inputs.
// A candidate's money figures: cost per 1M output tokens (with the Monte Carlo range) and per
// year of each option, part-time rent, capex and opex, payback, break-evens and resale.
void add_candidate_costs(Json& x, const Candidate& c, const PlanScenario& sc) {
  const std::string& cur = sc.currency;
  Json cp = {{"own", opt_json(c.own_per_mtok)},
             {"rent", opt_json(c.rent_per_mtok)},
             {"api", opt_json(c.api_per_mtok)},
             {"currency", cur}};
  const Json own_r = range_json(c.mc.own_per_mtok);
  cp["p10"] = own_r.is_null() ? Json(nullptr) : own_r["p10"];
  cp["p50"] = own_r.is_null() ? Json(nullptr) : own_r["p50"];
  cp["p90"] = own_r.is_null() ? Json(nullptr) : own_r["p90"];
  cp["own_range"] = own_r;
  cp["rent_range"] = range_json(c.mc.rent_per_mtok);
  cp["rent_part_time"] = opt_json(c.rent_part_time_per_mtok);
  x["cost_per_mtok_output"] = cp;
  x["cost_per_year"] = {{"own", opt_json(c.own_per_year)},
                        {"rent", opt_json(c.rent_per_year)},
                        {"rent_part_time", opt_json(c.rent_part_time_per_year)},
                        {"api", opt_json(c.api_per_year)}};
  x["rent_schedule"] = {{"mode", sc.rent_schedule.mode},
                        {"node_hours_per_year", opt_json(c.rent_node_hours_per_year)},
                        {"per_node_hour", opt_json(c.rent_per_node_hour)}};
  x["capex"] = opt_json(c.capex);
  x["opex_per_year"] = opt_json(c.opex_per_year);
  x["payback_years"] = {{"vs_rent", opt_json(c.payback_vs_rent_years)},
                        {"vs_rent_part_time", opt_json(c.payback_vs_rent_part_time_years)},
                        {"vs_api", opt_json(c.payback_vs_api_years)},
                        {"vs_rent_range", range_json(c.mc.payback_years)}};
  if (c.resale_revenue_per_year)  // owning and reselling idle capacity (hybrid)
    x["payback_years"]["hybrid"] = {
        {"vs_rent", opt_json(c.hybrid_payback_vs_rent_years)},
        {"vs_rent_part_time", opt_json(c.hybrid_payback_vs_rent_part_time_years)}};
  x["break_even"] = {{"crossover_vs_rent_month", opt_json(c.crossover_vs_rent_month)},
                     {"crossover_vs_api_month", opt_json(c.crossover_vs_api_month)},
                     {"rent_to_own_utilization", opt_json(c.rent_to_own_threshold)},
                     {"own_matches_api_output_tokens_per_s", opt_json(c.own_matches_api_tok_s)}};
  if (sc.resale)
    x["resale"] = {{"revenue_per_year", opt_json(c.resale_revenue_per_year)},
                   {"own_net_of_resale_per_mtok", opt_json(c.own_net_of_resale_per_mtok)},
                   {"utilization_with_resale", c.utilization_with_resale}};
}

Json quality_json(const Candidate& c) {
  Json scores = Json::object();
  for (const auto& [b, v] : c.scores) scores[b] = opt_json(v);
  return {{"scores", scores},
          {"primary_benchmark", c.primary_benchmark},
          {"retention_pct", c.retention_pct
                                ? Json::array({c.retention_pct->first, c.retention_pct->second})
                                : Json(nullptr)},
          {"points_per_mtok_self_hosted", opt_json(c.value_points_per_mtok)},
          {"points_per_mtok_api", c.api_per_mtok && c.scores.at(c.primary_benchmark)
                                      ? Json(*c.scores.at(c.primary_benchmark) / *c.api_per_mtok)
                                      : Json(nullptr)}};
}

Json candidate_json(const Candidate& c, const PlanScenario& sc) {
  Json x;
  x["id"] = c.id;
  x["rank"] = c.rank > 0 ? Json(c.rank) : Json(nullptr);
  x["model"] = c.model->id;
  x["device"] = c.device->id;
  x["gpus_per_node"] = c.build.gpus_per_node;
  x["precision"] = c.build.precision;
  x["kv_precision"] = c.kv_precision;
  x["engine"] = c.engine->id;
  x["system"] = c.system.id.empty() ? Json(nullptr) : Json(c.system.id);
  x["layout"] = {{"tp", c.layout.tp},
                 {"pp", c.layout.pp},
                 {"ep", c.layout.ep},
                 {"dp", c.layout.dp},
                 {"nodes_per_replica", 1}};
  x["price_basis"] = {
      {"own", c.own_price_basis.empty() ? Json(nullptr) : Json(c.own_price_basis)},
      {"rent", c.rent_price_basis.empty() ? Json(nullptr) : Json(c.rent_price_basis)}};
  x["fits"] = c.fits;
  x["fit"] = {{"reason", c.fit_reason},
              {"weights_gb", c.weights_gb},
              {"kv_headroom_gb_per_gpu", c.kv_headroom_gb_per_gpu},
              {"max_concurrency_at_context", c.max_concurrency}};
  x["meets_sla"] = c.meets_sla;
  x["concurrency"] = c.concurrency;
  // null for a candidate excluded before its concurrency sweep
  x["concurrency_limit"] =
      c.concurrency_limit.max_num_seqs > 0
          ? Json{{"kv_memory", c.concurrency_limit.kv_limit},
                 {"max_num_seqs", c.concurrency_limit.max_num_seqs},
                 {"binds", c.concurrency_limit.engine_binds() ? "max_num_seqs" : "kv_memory"}}
          : Json(nullptr);
  x["throughput_output_tokens_per_s"] = c.throughput;
  x["per_user_tokens_per_s"] = c.per_user_tok_s;
  x["ttft_ms"] = c.ttft_ms;
  x["tpot_ms"] = c.tpot_ms;
  x["nodes"] = c.nodes;
  x["nodes_owned"] = c.nodes_owned;
  x["reserve_nodes"] = c.reserve_nodes;
  x["utilization"] = c.utilization;
  add_candidate_costs(x, c, sc);
  x["quality"] = quality_json(c);
  x["monte_carlo"] = {{"samples", c.mc.samples}, {"nodes_range", range_json(c.mc.nodes)}};
  x["monte_carlo"]["price_entries"] = c.mc_price_entries;
  x["eligible"] = c.eligible;
  x["excluded"] = c.excluded;
  x["risks"] = c.risks;
  x["notes"] = c.cost_notes;
  Json evj = Json::object();
  for (const auto& [f, e] : c.evidence) evj[f] = e;
  x["evidence"] = evj;
  Json inputs = Json::array();
  for (const auto& a : c.inputs)
    inputs.push_back(
        {{"name", a.name}, {"value", a.value}, {"unit", a.unit}, {"source", a.source}});
  x["inputs"] = inputs;
  return x;
}

Json recommendation_json(const Recommendation& rec, const std::string& cur) {
  Json j = {{"option", rec.option},
            {"candidate", rec.candidate_id},
            {"model", rec.model},
            {"annual_cost", opt_json(rec.annual_cost)},
            {"cost_per_mtok_output", opt_json(rec.cost_per_mtok_output)},
            {"currency", cur},
            {"reasons", rec.reasons},
            {"go_no_go", rec.go_no_go}};
  if (rec.option == "rent") j["rent_node_hours_per_year"] = opt_json(rec.rent_node_hours_per_year);
  j["flips_at"] = rec.flips_at
                      ? Json{{"requests_per_day", rec.flips_at->requests_per_day},
                             {"output_tokens_per_month", rec.flips_at->output_tokens_per_month},
                             {"to", rec.flips_at->to}}
                      : Json(nullptr);
  return j;
}

}  // namespace

Report make_plan_report(const PlanResult& r) {
  const PlanScenario& sc = r.scenario;
  const std::string& cur = sc.currency;
  const Recommendation& rec = r.recommendation;
  Report rep;
  rep.title = "Procurement plan: " + (sc.title.empty() ? sc.label : sc.title);
  rep.tables.push_back(decision_table(rec));
  rep.tables.push_back(candidates_table(r));
  add_risks_and_evidence(rep, r);
  Table go{"go_no_go", "Go/no-go on a rented pilot: buy only when all six hold", {"check"}, {}, {}};
  for (const auto& x : rec.go_no_go) go.add({x});
  rep.tables.push_back(go);
  rep.tables.push_back(assumptions_table(r));

  rep.messages.push_back(fmt::format("RECOMMENDATION: {}{}", verdict_word(rec),
                                     rec.candidate_id.empty() ? "" : " — " + rec.candidate_id));
  for (const auto& x : rec.reasons) rep.messages.push_back("  - " + x);
  for (const auto& x : r.messages) rep.messages.push_back("note: " + x);

  Json j;
  // Every money figure below is in this currency unless its key names another (e.g. `_usd`).
  j["currency"] = cur;
  j["scenario"] = {
      {"file", sc.label}, {"title", sc.title}, {"currency", cur}, {"demand", demand_json(sc)}};
  Json cands = Json::array();
  for (int i : r.ranking)
    cands.push_back(candidate_json(r.candidates[static_cast<std::size_t>(i)], sc));
  j["candidates"] = cands;
  j["recommendation"] = recommendation_json(rec, cur);
  j["monte_carlo"] = {{"samples", sc.monte_carlo.samples},
                      {"seed", sc.monte_carlo.seed},
                      {"efficiency_spread", sc.monte_carlo.efficiency_spread},
                      {"method",
                       "per sample: throughput × U(1−s, 1+s); a hardware price entry, then a price "
                       "uniform in its low..high; a rental entry (docs/plan.md)"}};
  Json asj = Json::array();
  for (const auto& a : sc.assumptions)
    asj.push_back({{"name", a.name}, {"value", a.value}, {"unit", a.unit}, {"source", a.source}});
  j["assumptions"] = asj;
  j["messages"] = r.messages;
  rep.json = j;
  return rep;
}

svg::ChartPage make_plan_chart(const PlanResult& r) {
  const PlanScenario& sc = r.scenario;
  const std::string& cur = sc.currency;
  svg::ChartPage page;
  page.title = "Procurement plan: " + (sc.title.empty() ? sc.label : sc.title);
  svg::LineChart a;
  a.title = "Cost per 1M output tokens against utilization (owned, per candidate)";
  a.subtitle = "Own = TCO per year ÷ tokens served at that utilization; dashed = the model's API";
  a.x_label = "Utilization of the fleet (%)";
  a.y_label = "Cost per 1M output tokens (" + cur + ")";
  double ymax = 0;
  int shown = 0;
  std::set<std::string> api_models;
  for (int i : r.ranking) {
    const Candidate& c = r.candidates[static_cast<std::size_t>(i)];
    if (!c.eligible || !c.own_per_year || shown >= 6) continue;
    ++shown;
    svg::Series s;
    s.name = c.id;
    for (int u = 5; u <= 100; u += 5) {
      const double tok = c.throughput * c.nodes * u / 100.0 * cost::kSecondsPerYear;
      s.x.push_back(u);
      s.y.push_back(*c.own_per_year / (tok / cost::kTokensPerMTok));
    }
    ymax = std::max(ymax, s.y[3]);  // clip at 20% utilization so the floor stays readable
    a.series.push_back(s);
    if (c.api_per_mtok && api_models.insert(c.model->id).second) {
      svg::Series api;
      api.name = c.model->id + " API";
      api.dashed = true;
      api.markers = false;
      api.x = {5, 100};
      api.y = {*c.api_per_mtok, *c.api_per_mtok};
      ymax = std::max(ymax, *c.api_per_mtok * 1.2);
      a.series.push_back(api);
    }
    a.highlights.push_back({c.utilization * 100, c.own_per_mtok.value_or(0), "plan"});
    a.highlight_legend = "plan's utilization";
  }
  if (ymax > 0) {
    a.y_max = ymax;
    a.clip_note = "values above the axis are cut";
  }
  a.x_min = 0;
  a.x_max = 100;
  if (!a.series.empty()) page.charts.push_back(a);

  const Recommendation& rec = r.recommendation;
  if (rec.candidate >= 0) {
    const Candidate& c = r.candidates[static_cast<std::size_t>(rec.candidate)];
    svg::LineChart b;
    b.title = "Cumulative cost of the chosen option (" + rec.option + ") and its alternatives";
    b.subtitle = c.id + fmt::format(", {} node(s)", c.nodes);
    b.x_label = "Month";
    b.y_label = "Cumulative cost (" + cur + ")";
    int horizon = 36;
    if (sc.cost_doc.contains("horizon_months")) horizon = sc.cost_doc["horizon_months"].get<int>();
    auto add = [&](const std::string& name, double capex, double per_year) {
      svg::Series s;
      s.name = name;
      for (int mth = 0; mth <= horizon; ++mth) {
        s.x.push_back(mth);
        s.y.push_back(capex + per_year * mth / cost::kMonthsPerYear);
      }
      b.series.push_back(s);
    };
    if (c.capex && c.opex_per_year) add("own (capex + opex)", *c.capex, *c.opex_per_year);
    if (c.rent_per_year) add("rent 24/7", 0, *c.rent_per_year);
    if (c.rent_part_time_per_year && c.rent_per_year &&
        *c.rent_part_time_per_year < *c.rent_per_year)
      add(fmt::format("rent part-time ({:.0f} node-h/yr)", c.rent_node_hours_per_year.value_or(0)),
          0, *c.rent_part_time_per_year);
    if (c.api_per_year) add("API", 0, *c.api_per_year);
    if (c.crossover_vs_rent_month && c.rent_per_year)
      b.highlights.push_back({*c.crossover_vs_rent_month,
                              *c.rent_per_year * *c.crossover_vs_rent_month / cost::kMonthsPerYear,
                              "own = rent 24/7"});
    if (!b.series.empty()) page.charts.push_back(b);
  }
  page.footer = "plan " + sc.label;  // the caller puts the provenance line before it
  return page;
}

}  // namespace moeplan::plan
