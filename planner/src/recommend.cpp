// Catalog search for `moeplan recommend` (docs/plan.md § recommend). Speed:
// weights are sized once per model × precision and used as a necessary
// condition before fit(); efficiencies are resolved once per device; each
// configuration's concurrency ladder runs estimate() directly (no second
// fit); configurations are split over threads and merged in a fixed order.
#include "moeplan/recommend.hpp"

#include "moeplan/checked.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>
#include <map>
#include <optional>
#include <thread>

#include "moeplan/errors.hpp"
#include "moeplan/layout.hpp"
#include "moeplan/sizing.hpp"
#include "moeplan/validate_perf.hpp"

namespace moeplan::recommend {

namespace {

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

struct Config {
  const Model* m;
  const Device* d;
  const System* sys;
  int nodes;
  int gpus;
  std::string precision;
  PrecisionMix mix;
  std::string kv;
  Layout layout;
  const Efficiencies* eff;
  double node_hour_usd;
  const std::string* basis;
};

}  // namespace

std::optional<std::pair<double, std::string>> node_hour_price(const System& s, const Catalog& cat,
                                                              const Request& req,
                                                              std::string* why) {
  const pricing::Context ctx{"USD", 1, req.vat_rate};
  if (req.price_as == "rent") {
    const pricing::RentPrice r = pricing::rent_price(s, cat, req.rent_kind, ctx);
    if (!r.ok) {
      if (why) *why = r.reason;
      return std::nullopt;
    }
    return std::make_pair(r.per_node_hour, r.basis);
  }
  const pricing::OwnPrice o = pricing::own_price(s, cat, req.own_basis, ctx);
  if (!o.ok) {
    if (why) *why = o.reason;
    return std::nullopt;
  }
  const Device& d = cat.device(s.device);
  const double wall_w = s.wall_power_w > 0 ? s.wall_power_w : d.tdp_w * s.gpus_per_node;
  const double hours = req.life_months * 730.0;
  const double power = wall_w / 1000.0 * req.pue * req.electricity_usd_per_kwh;
  return std::make_pair(o.mid() / hours + power,
                        fmt::format("{} over {} months + power", o.basis, req.life_months));
}

std::vector<Point> pareto_frontier(std::vector<Point> pts) {
  std::sort(pts.begin(), pts.end(), [](const Point& a, const Point& b) {
    if (a.cost_per_mtok != b.cost_per_mtok) return a.cost_per_mtok < b.cost_per_mtok;
    return a.per_user_tok_s > b.per_user_tok_s;
  });
  std::vector<Point> out;
  double best_user = -1;
  for (auto& p : pts)
    if (p.per_user_tok_s > best_user) {
      best_user = p.per_user_tok_s;
      out.push_back(std::move(p));
    }
  return out;
}

namespace {

// A system priced in the request's one basis, its efficiencies resolved once.
struct PricedSystem {
  const System* s;
  const Device* d;
  Efficiencies eff;
  double price;
  std::string basis;
};

std::vector<PricedSystem> priced_systems(const Request& req, const Catalog& cat, const Engine& eng,
                                         std::size_t& unpriced) {
  std::vector<PricedSystem> out;
  for (const auto& s : cat.systems) {
    const Device& d = cat.device(s.device);
    if (!eng.device_kinds.empty() && !contains(eng.device_kinds, device_kind_name(d.kind)))
      continue;
    const auto p = node_hour_price(s, cat, req);
    if (!p) {
      ++unpriced;
      continue;
    }
    out.push_back({&s, &d, resolve_efficiencies(d, eng), p->first, p->second});
  }
  return out;
}

// The weight precisions tried for a model that the engine serves, each mix once.
std::vector<std::pair<std::string, PrecisionMix>> served_precisions(const Model& m,
                                                                    const Engine& eng,
                                                                    const Catalog& cat) {
  std::vector<std::pair<std::string, PrecisionMix>> precs;
  for (const std::string spec : {"native", "fp8", "nvfp4", "int4-awq"}) {
    PrecisionMix mix =
        spec == "native" ? m.native_precision : parse_weight_spec(spec, m.native_precision, cat);
    if (unserved_format(eng, mix)) continue;
    if (std::none_of(precs.begin(), precs.end(), [&](const auto& x) { return x.second == mix; }))
      precs.emplace_back(spec, std::move(mix));
  }
  return precs;
}

// Configurations, pruned by a necessary memory condition: N whole nodes of a system, in layouts
// the engine can run on it (docs/performance.md § Layout rules): tp dividing the heads inside
// one scale-up domain, pipeline or data parallelism across nodes.
std::vector<Config> enumerate_configs(const Request& req, const Catalog& cat, const Engine& eng,
                                      const std::vector<PricedSystem>& syss) {
  std::vector<Config> configs;
  for (const Model* m : req.models) {
    for (const auto& [spec, mix] : served_precisions(*m, eng, cat)) {
      double wb = 0;
      for (const auto& [c, b] : weight_bytes(*m, mix, cat)) wb += b;
      bool needs_fp4 = false, needs_fp8 = false;
      for (const auto& [c, p] : mix) {
        const auto& hw = cat.weight_format(p).hw_format;
        needs_fp4 = needs_fp4 || (hw == "fp4" && spec != "native");
        needs_fp8 = needs_fp8 || (hw == "fp8" && spec != "native");
      }
      for (const auto& sv : syss) {
        const Device& d = *sv.d;
        if ((needs_fp4 && !d.has_hw_format("fp4")) || (needs_fp8 && !d.has_hw_format("fp8")))
          continue;
        const std::string kv = default_kv_precision(d, eng);  // as perf and plan
        const Topology topo = topology_of(*sv.s);
        for (int n = 1; n * sv.s->gpus_per_node <= req.max_gpus; ++n) {
          const int g = n * sv.s->gpus_per_node;
          if (wb > g * d.engine_visible_memory_gb() * 1e9 * eng.memory_utilization) continue;
          for (const auto& l : valid_layouts(*m, d, topo, eng, g))
            configs.push_back({m, &d, sv.s, n, g, spec, mix, kv, l, &sv.eff, sv.price, &sv.basis});
        }
      }
    }
  }
  return configs;
}

// Why a configuration is left out of the ranking (Result::rejected).
constexpr const char* kRejectFitError = "fit() refused the layout";
constexpr const char* kRejectNoFit = "does not fit in memory at input + output tokens";
constexpr const char* kRejectPerfError = "the performance model refused it";
constexpr const char* kRejectReplicas =
    "needs more replicas than the planner's range for the demand at every concurrency tried";

// One point of a configuration's concurrency ladder: speed, SLA, price and cost per 1M output
// tokens (for the demand's replicas when the request gives one). nullopt when the demand would
// need more replicas than the planner's range: that point cannot serve it, a higher concurrency
// of the same configuration may.
std::optional<Point> make_point(const Config& c, const PerfResult& r, long long conc,
                                const ConcurrencyLimit& limit, const Request& req,
                                const Catalog& cat, const Engine& eng) {
  Point p;
  p.model = c.m;
  p.device = c.d;
  p.gpus = c.gpus;
  p.precision = c.precision;
  p.kv = c.kv;
  p.layout = r.layout;
  p.concurrency = conc;
  p.limit = limit;
  p.aggregate_tok_s = r.decode.output_tokens_per_s;
  p.per_user_tok_s = r.decode.per_request_tokens_per_s;
  p.ttft_ms = r.prefill.ttft_ms;
  p.tpot_ms = r.decode.tpot_ms;
  p.meets_sla = req.sla.met_by(p.tpot_ms, p.ttft_ms);
  p.system = c.sys;
  p.nodes = c.nodes;
  p.node_hour_usd = c.node_hour_usd;
  p.gpu_hour_usd = c.node_hour_usd / c.sys->gpus_per_node;
  p.price_basis = *c.basis;
  p.evidence = evidence_name(
      throughput_evidence(r.evidence, cat, c.m->id, c.d->id, c.gpus, c.precision, eng.id));
  const double node_hour = c.node_hour_usd * req.fx_per_usd;
  if (p.aggregate_tok_s > 0) {
    const bool demand = req.output_tokens_per_s && *req.output_tokens_per_s > 0;
    if (demand) {
      const double need = std::ceil(*req.output_tokens_per_s / p.aggregate_tok_s - 1e-9);
      if (!(need <= kMaxUnits)) return std::nullopt;
      p.replicas = checked_ceil_count(need, "replicas");
    }
    // Owning pays for whole purchase units (a GB200 rack of 18 trays); renting per node.
    const int needed = p.replicas * c.nodes;
    p.nodes_paid = req.price_as == "rent" ? needed : pricing::nodes_to_own(*c.sys, needed);
    if (p.nodes_paid > needed)
      p.price_basis += fmt::format("; bought {} at a time", c.sys->purchase_unit_nodes);
    const double served_tok_s = demand ? *req.output_tokens_per_s : p.aggregate_tok_s;
    p.cost_per_mtok = node_hour * p.nodes_paid / (served_tok_s * 3600) * 1e6;
  }
  return p;
}

// What the threads count and collect.
struct Tally {
  std::vector<Point> points;
  std::size_t configs_fit = 0, estimates = 0, beyond_range = 0;
  std::map<std::string, std::size_t> rejected;
};

// One configuration: fit at input + output tokens, then concurrency 1, 2, 4 … up to the
// replica's concurrency limit (KV memory, engine max_num_seqs), stopping once more concurrency
// stops buying aggregate throughput (every further point is dominated: same or higher cost, lower
// per-user tok/s) or one replica carries the demand.
void evaluate_config(const Config& c, const Request& req, const Catalog& cat, const Engine& eng,
                     Tally& out) {
  PerfRequest pr;
  pr.engine = &eng;
  pr.input_tokens = req.input_tokens;
  pr.output_tokens = req.output_tokens;
  pr.model = c.m;
  pr.device = c.d;
  pr.gpus = c.gpus;
  pr.weights = c.mix;
  pr.kv_precision = c.kv;
  pr.layout = c.layout;
  pr.topology = topology_of(*c.sys);  // the links of the system being priced
  pr.efficiencies = *c.eff;
  FitResult fr;
  try {
    fr = fit(fit_request_for(pr, cat), cat);  // the same KV limit perf and the sweep use
  } catch (const Error&) {
    ++out.rejected[kRejectFitError];
    return;
  }
  if (!fr.fits || fr.max_concurrency < 1) {
    ++out.rejected[kRejectNoFit];
    return;
  }
  ++out.configs_fit;
  const ConcurrencyLimit limit = concurrency_limit(fr.max_concurrency, eng);
  const long long maxc = std::min(limit.slots(), req.max_concurrency.value_or(limit.slots()));
  double prev_agg = 0;
  std::size_t kept = 0, beyond_range = 0;
  for (long long conc = 1;; conc = std::min(maxc, conc * 2)) {
    pr.concurrency = conc;
    PerfResult r;
    try {
      r = estimate(pr, cat);
    } catch (const Error&) {
      break;
    }
    ++out.estimates;
    std::optional<Point> p = make_point(c, r, conc, limit, req, cat, eng);
    const double agg = r.decode.output_tokens_per_s;
    const bool saturated = agg < prev_agg * 1.02;
    prev_agg = agg;
    if (!p) {
      ++beyond_range;
      ++out.beyond_range;
    } else if (p->aggregate_tok_s > 0 && !saturated) {
      ++kept;
      out.points.push_back(std::move(*p));
    }
    const bool one_replica = p && req.output_tokens_per_s && p->replicas == 1;
    if (conc >= maxc || saturated || one_replica) break;
  }
  if (kept == 0) ++out.rejected[beyond_range > 0 ? kRejectReplicas : kRejectPerfError];
}

// Configurations split over `threads` (every threads-th one each), merged in thread order.
Tally evaluate_all(const std::vector<Config>& configs, const Request& req, const Catalog& cat,
                   const Engine& eng) {
  const auto t = static_cast<std::size_t>(std::max(1, req.threads));
  std::vector<Tally> parts(t);
  // An exception escaping a std::thread calls std::terminate: each worker keeps its first one
  // and the caller rethrows it after every worker has joined.
  std::vector<std::exception_ptr> failed(t);
  auto work = [&](std::size_t begin) {
    try {
      for (std::size_t i = begin; i < configs.size(); i += t)
        evaluate_config(configs[i], req, cat, eng, parts[begin]);
    } catch (...) {
      failed[begin] = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  for (std::size_t k = 1; k < t; ++k) pool.emplace_back(work, k);
  work(0);
  for (auto& th : pool) th.join();
  for (const auto& e : failed)
    if (e) std::rethrow_exception(e);
  Tally all;
  for (auto& part : parts) {
    all.configs_fit += part.configs_fit;
    all.estimates += part.estimates;
    all.beyond_range += part.beyond_range;
    for (const auto& [why, n] : part.rejected) all.rejected[why] += n;
    all.points.insert(all.points.end(), std::make_move_iterator(part.points.begin()),
                      std::make_move_iterator(part.points.end()));
  }
  return all;
}

}  // namespace

Result search(const Request& req, const Catalog& cat) {
  const auto t0 = std::chrono::steady_clock::now();
  // Zero demand would read as "no demand" downstream and be costed at full use of one replica.
  if (req.output_tokens_per_s && !(*req.output_tokens_per_s > 0))
    throw Error(fmt::format(
        "recommend: the demand must be a positive output tok/s, got {} (--output-tokens-per-s, or "
        "the scenario's peak)",
        *req.output_tokens_per_s));
  Result res;
  const Engine& eng = cat.engine(req.engine);
  const std::vector<PricedSystem> syss = priced_systems(req, cat, eng, res.systems_unpriced);
  const std::vector<Config> configs = enumerate_configs(req, cat, eng, syss);
  res.configs = configs.size();
  Tally tally = evaluate_all(configs, req, cat, eng);
  res.configs_fit = tally.configs_fit;
  res.points = tally.estimates;
  res.rejected = std::move(tally.rejected);
  res.points_beyond_range = tally.beyond_range;
  std::vector<Point>& all = tally.points;
  // Deterministic order whatever the thread split.
  auto key = [](const Point& p) {
    return std::make_tuple(p.cost_per_mtok, -p.per_user_tok_s, p.model->id, p.system->id, p.gpus,
                           p.precision, p.layout.tp, p.layout.pp, p.layout.dp_attention,
                           p.concurrency);
  };
  std::sort(all.begin(), all.end(),
            [&](const Point& a, const Point& b) { return key(a) < key(b); });
  res.frontier = pareto_frontier(all);
  for (const auto& p : all) {
    if (static_cast<int>(res.top.size()) >= req.top) break;
    if (p.meets_sla) res.top.push_back(p);
  }
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

std::optional<std::string> nothing_to_rank(const Request& req, const Result& r) {
  if (!r.frontier.empty()) return std::nullopt;
  std::string names;
  for (const Model* m : req.models) names += (names.empty() ? "" : ", ") + m->id;
  std::string why;
  for (const auto& [reason, n] : r.rejected) why += fmt::format("; {} left out: {}", n, reason);
  return fmt::format(
      "recommend: nothing fits within the limits given: {} configuration(s) of {} on up to {} GPUs "
      "({} engine, {} + {} tokens) hold the weights, {} fit in memory{}{}; raise --max-gpus, or "
      "try another engine or shorter requests",
      r.configs, names, req.max_gpus, req.engine, req.input_tokens, req.output_tokens,
      r.configs_fit, why,
      r.systems_unpriced > 0
          ? fmt::format("; {} system(s) without a price in the ranking's basis skipped",
                        r.systems_unpriced)
          : std::string());
}

Report make_report(const Request& req, const Result& r) {
  Report rep;
  std::string names;
  for (const Model* m : req.models) names += (names.empty() ? "" : ", ") + m->id;
  rep.title = "recommend: " + names;
  const std::string cm = "cost (" + req.currency + "/MTok)";
  auto table = [&](const std::string& name, const std::string& title,
                   const std::vector<Point>& pts) {
    Table t{name,
            title,
            {"model", "system", "nodes", "gpus", "precision", "layout", "concurrency",
             "per-user tok/s", "aggregate tok/s", "TTFT (ms)", "TPOT (ms)", "meets SLA", "replicas",
             "node-hour (USD)", cm, "price basis", "evidence"},
            {},
            {}};
    for (const auto& p : pts)
      t.add({p.model->id, p.system->id, p.nodes, p.gpus, p.precision,
             fmt::format("tp={} pp={} ep={}{}", p.layout.tp, p.layout.pp, p.layout.ep,
                         p.layout.dp_attention ? " dp-attn" : ""),
             p.concurrency, Cell(p.per_user_tok_s, 1), Cell(p.aggregate_tok_s, 0),
             Cell(p.ttft_ms, 0), Cell(p.tpot_ms, 1), p.meets_sla, p.replicas,
             Cell(p.node_hour_usd, 2), Cell(p.cost_per_mtok), p.price_basis, p.evidence});
    return t;
  };
  rep.tables.push_back(table("top", fmt::format("Top {} under the SLA", req.top), r.top));
  rep.tables.push_back(table(
      "frontier", "Pareto frontier: cost per 1M output tokens vs per-user tok/s", r.frontier));
  rep.messages.push_back(
      fmt::format("searched {} configurations ({} fit) and {} concurrency points in {:.2f} s; {} "
                  "systems without a price in the ranking's basis skipped",
                  r.configs, r.configs_fit, r.points, r.seconds, r.systems_unpriced));
  for (const auto& [why, n] : r.rejected)
    rep.messages.push_back(fmt::format("{} configuration(s) left out: {}", n, why));
  if (r.points_beyond_range > 0)
    rep.messages.push_back(fmt::format(
        "{} concurrency point(s) left out: the demand would need more than {:.0f} replicas there",
        r.points_beyond_range, kMaxUnits));
  rep.messages.push_back(
      req.price_as == "rent"
          ? fmt::format("one price basis for every row: rent, {} per node-hour",
                        pricing::rent_kind_name(req.rent_kind))
          : fmt::format("one price basis for every row: own, {} system price over {} months plus "
                        "power (never a bare card)",
                        pricing::own_basis_name(req.own_basis), req.life_months));
  rep.messages.push_back(
      req.output_tokens_per_s
          ? fmt::format("cost at a demand of {:.1f} output tok/s (replicas × nodes × node-hour, "
                        "idle capacity included)",
                        *req.output_tokens_per_s)
          : std::string("cost at full use of one replica (no demand given)"));
  std::size_t capped = 0;
  long long cap = 0;
  for (const auto* list : {&r.top, &r.frontier})
    for (const auto& p : *list)
      if (p.limit.engine_binds() && p.concurrency == p.limit.slots()) {
        ++capped;
        cap = p.limit.max_num_seqs;
      }
  if (capped > 0)
    rep.messages.push_back(
        fmt::format("{} listed row(s) run at {}'s max_num_seqs of {} sequences per replica "
                    "(data/engines.json), below what their KV memory holds: the engine admits no "
                    "more",
                    capped, req.engine, cap));
  if (r.top.empty() && !r.frontier.empty())
    rep.messages.push_back("no configuration meets the SLA");
  Json j;
  auto pj = [&](const std::vector<Point>& pts) {
    Json a = Json::array();
    for (const auto& p : pts)
      a.push_back({{"model", p.model->id},
                   {"system", p.system->id},
                   {"device", p.device->id},
                   {"nodes", p.nodes},
                   {"gpus", p.gpus},
                   {"precision", p.precision},
                   {"kv_precision", p.kv},
                   {"layout",
                    {{"tp", p.layout.tp},
                     {"pp", p.layout.pp},
                     {"dp", p.layout.dp},
                     {"ep", p.layout.ep},
                     {"nodes_per_replica", p.nodes},
                     {"dp_attention", p.layout.dp_attention}}},
                   {"concurrency", p.concurrency},
                   {"concurrency_limit",
                    {{"kv_memory", p.limit.kv_limit},
                     {"max_num_seqs", p.limit.max_num_seqs},
                     {"binds", p.limit.engine_binds() ? "max_num_seqs" : "kv_memory"}}},
                   {"per_user_tokens_per_s", p.per_user_tok_s},
                   {"aggregate_output_tokens_per_s", p.aggregate_tok_s},
                   {"ttft_ms", p.ttft_ms},
                   {"tpot_ms", p.tpot_ms},
                   {"meets_sla", p.meets_sla},
                   {"replicas", p.replicas},
                   {"nodes_paid", p.nodes_paid},
                   {"node_hour_usd", p.node_hour_usd},
                   {"gpu_hour_usd", p.gpu_hour_usd},
                   {"price_basis", p.price_basis},
                   {"throughput_evidence", p.evidence},
                   {"cost_per_mtok_output", p.cost_per_mtok}});
    return a;
  };
  j["currency"] = req.currency;
  j["price_basis"] = req.price_as == "rent"
                         ? "rent: " + std::string(pricing::rent_kind_name(req.rent_kind))
                         : "own: " + std::string(pricing::own_basis_name(req.own_basis));
  j["demand"] = {{"output_tokens_per_s",
                  req.output_tokens_per_s ? Json(*req.output_tokens_per_s) : Json(nullptr)},
                 {"input_tokens", req.input_tokens},
                 {"output_tokens", req.output_tokens},
                 {"sla",
                  {{"ttft_ms", req.sla.ttft_ms ? Json(*req.sla.ttft_ms) : Json(nullptr)},
                   {"tpot_ms", req.sla.tpot_ms ? Json(*req.sla.tpot_ms) : Json(nullptr)}}}};
  j["top"] = pj(r.top);
  j["frontier"] = pj(r.frontier);
  Json rejected = Json::array();
  for (const auto& [why, n] : r.rejected)
    rejected.push_back({{"reason", why}, {"configurations", n}});
  j["search"] = {{"configurations", r.configs}, {"configurations_fit", r.configs_fit},
                 {"points", r.points},          {"seconds", r.seconds},
                 {"rejected", rejected},        {"points_beyond_range", r.points_beyond_range}};
  rep.json = j;
  return rep;
}

}  // namespace moeplan::recommend
