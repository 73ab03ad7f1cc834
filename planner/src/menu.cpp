// Model menus (docs/plan.md § menus): allocation, routing and shared cost for several
// workloads on one fleet of a deployable system.
#include "moeplan/menu.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "moeplan/cost.hpp"
#include "moeplan/errors.hpp"
#include "moeplan/layout.hpp"
#include "moeplan/performance.hpp"
#include "moeplan/pricing.hpp"
#include "moeplan/scenario.hpp"
#include "moeplan/system.hpp"
#include "moeplan/validate_perf.hpp"

namespace moeplan::menu {

double lora_bytes(const Model& m, const LoraAdapters& l, double bytes_per_element) {
  constexpr double kMatricesPerProjection = 2;  // A (hidden × r) and B (r × hidden)
  constexpr double kAdaptedProjections = 4;     // q, k, v, o
  return static_cast<double>(l.count) * l.rank * m.layers * m.hidden_size * kMatricesPerProjection *
         kAdaptedProjections * bytes_per_element;
}

namespace {

bool is_pcie(const Topology& t) {
  return t.scale_up.kind == ScaleUpKind::pcie_p2p || t.scale_up.kind == ScaleUpKind::pcie_host;
}

// Seed 000: "never shard a 0.75T MoE across the bus" on PCIe-only cards; the menu applies it
// from 100B total parameters (the brief of issue #15).
constexpr double kLargeMoeB = 100;

}  // namespace

namespace {

// One sweep point a workload could run at on its half of a shared card.
struct SharePoint {
  long long concurrency = 0;
  double throughput = 0, tpot_ms = 0, ttft_ms = 0;  // alone, LoRA overhead included
};

// As plan excludes such a build (plan.cpp, hard constraints): no engine serves sequences longer
// than the model was trained for.
std::string trained_context_reason(const Workload& w) {
  return fmt::format(
      "trained context {} < the {} tokens needed (data/models.json max_context_tokens)",
      w.model->max_context_tokens, w.demand.context_tokens);
}

// The sweep's points up to `cap` sequences (1, 2, 4, … below it, then `cap` itself), as sweep()
// would have made them had its limit been `cap`: points below the cap are the sweep's own
// (a point does not depend on the limit), the one at the cap is estimated when missing.
std::vector<SweepPoint> capped_points(const SweepResult& sw, const PerfRequest& req,
                                      const Catalog& cat, long long cap) {
  cap = std::max<long long>(1, cap);
  std::vector<SweepPoint> pts;
  for (const auto& pt : sw.points)
    if (pt.concurrency < cap) pts.push_back(pt);
  for (const auto& pt : sw.points)
    if (pt.concurrency == cap) {
      pts.push_back(pt);
      return pts;
    }
  PerfRequest r = req;
  r.concurrency = cap;
  SweepPoint pt;
  pt.concurrency = cap;
  pt.result = estimate(r, cat);
  pts.push_back(std::move(pt));
  return pts;
}

// evaluate_group with the engine given `memory_share` of its usual memory (two engines on one
// card: vLLM's --gpu-memory-utilization split), and every sweep point inside that memory
// collected into `points` when given (the SLA is then checked by the caller).
GroupOption evaluate_group_impl(const Workload& w, const System& sys, int gpus,
                                const MenuScenario& sc, const Catalog& cat, double memory_share,
                                std::vector<SharePoint>* points) {
  GroupOption g;
  g.gpus = gpus;
  const Model& m = *w.model;
  const Device& d = cat.device(sys.device);
  const Engine& e = cat.engine(sc.money.engine);
  const Topology topo = topology_of(sys);
  if (gpus > sys.gpus_per_node) {
    g.reason = "a menu group stays inside one node";
    return g;
  }
  if (m.max_context_tokens < w.demand.context_tokens) {
    g.reason = trained_context_reason(w);
    return g;
  }
  if (m.is_moe() && m.total_params_b >= kLargeMoeB && gpus > 1 && is_pcie(topo)) {
    g.reason = fmt::format("large-moe-over-pcie: a {:.0f}B MoE is not sharded over PCIe (seed 000)",
                           m.total_params_b);
    return g;
  }
  const PrecisionMix mix = w.precision == "native"
                               ? m.native_precision
                               : parse_weight_spec(w.precision, m.native_precision, cat);
  if (auto why = unserved_format(e, mix)) {
    g.reason = *why;
    return g;
  }
  const std::string kv = default_kv_precision(d, e);
  FitRequest f = engine_fit_request(m, d, gpus, mix, kv, e, topo, w.demand.context_tokens);
  f.memory_utilization *= memory_share;  // a shared card: this workload's part of it
  if (w.lora) {
    g.lora_gb = lora_bytes(m, *w.lora) / 1e9;
    f.reserved_gb_per_gpu = g.lora_gb;  // each rank holds every adapter (conservative)
  }
  try {
    if (auto broken = check_layout(m, d, topo, e, resolve_layout(m, gpus, f.layout), gpus)) {
      g.reason = broken->rule + ": " + broken->message;
      return g;
    }
    const FitResult fr = fit(f, cat);
    g.weights_gb = fr.weights_bytes / 1e9;
    g.layout = fr.layout;
    if (!fr.fits) {
      g.reason = "does not fit: " + fr.reason;
      return g;
    }
    PerfRequest p;
    p.model = &m;
    p.device = &d;
    p.engine = &e;
    p.gpus = gpus;
    p.weights = mix;
    p.kv_precision = kv;
    p.layout = f.layout;
    p.topology = topo;
    p.input_tokens = w.demand.input_tokens;
    p.output_tokens = w.demand.output_tokens;
    p.efficiencies = resolve_efficiencies(d, e);
    const double lora_ms = w.lora ? kLoraTpotOverheadMs : 0;
    Sla sla{w.demand.sla_tpot_ms, w.demand.sla_ttft_ms};
    if (sla.tpot_ms) *sla.tpot_ms -= lora_ms;  // the adapters' per-token latency comes on top
    const SweepResult sw = sweep(p, cat, sla);
    // The sweep sizes its KV memory for the engine alone at input + output tokens; the menu's
    // fit above holds the workload's context, its adapters and its share of a shared card, so
    // its limit caps every branch (docs/plan.md § menus, step 1).
    g.limit = concurrency_limit(std::min(sw.limit.kv_limit, fr.max_concurrency), e);
    const std::vector<SweepPoint> pts = capped_points(sw, p, cat, g.limit.slots());
    if (points) {
      for (const auto& pt : pts) {
        const double t = pt.result.decode.tpot_ms;
        points->push_back({pt.concurrency, pt.result.decode.output_tokens_per_s * t / (t + lora_ms),
                           t + lora_ms, pt.result.prefill.ttft_ms});
      }
      g.ok = !points->empty();
      if (!g.ok) g.reason = "no concurrency fits its share of the card";
      if (g.ok)
        g.evidence = throughput_evidence(pts.front().result.evidence, cat, m.id, d.id, gpus,
                                         w.precision, e.id);
      return g;
    }
    const bool has_sla = sla.any();
    long long want = 0;
    double best_power = -1, best_sla = -1, most = -1;
    for (const auto& pt : pts) {
      const auto& dec = pt.result.decode;
      const bool meets = sla.met_by(dec.tpot_ms, pt.result.prefill.ttft_ms);
      if (has_sla) {  // the highest throughput meeting the SLA (as sweep() picks it)
        if (meets && dec.output_tokens_per_s > best_sla) {
          best_sla = dec.output_tokens_per_s;
          want = pt.concurrency;
        }
      } else if (w.kind != Kind::generate) {
        // Items have no per-request token rate for the knee to weigh: the most items/s in memory.
        if (dec.output_tokens_per_s > most) {
          most = dec.output_tokens_per_s;
          want = pt.concurrency;
        }
      } else if (dec.output_tokens_per_s * dec.per_request_tokens_per_s > best_power) {  // the knee
        best_power = dec.output_tokens_per_s * dec.per_request_tokens_per_s;
        want = pt.concurrency;
      }
    }
    for (const auto& pt : pts) {
      if (pt.concurrency != want) continue;
      const double tpot = pt.result.decode.tpot_ms;
      g.ok = true;
      g.concurrency = pt.concurrency;
      g.tpot_ms = tpot + lora_ms;
      g.ttft_ms = pt.result.prefill.ttft_ms;
      g.evidence =
          throughput_evidence(pt.result.evidence, cat, m.id, d.id, gpus, w.precision, e.id);
      // Same batch, each step lora_ms longer: throughput scales by tpot / (tpot + lora_ms).
      g.throughput = pt.result.decode.output_tokens_per_s * tpot / (tpot + lora_ms);
    }
    if (!g.ok) {
      const auto& one = sw.points.front().result;
      g.reason = fmt::format("no concurrency meets the SLA (at 1: TTFT {:.0f} ms, TPOT {:.1f} ms)",
                             one.prefill.ttft_ms, one.decode.tpot_ms + lora_ms);
    }
  } catch (const Error& ex) {
    g.reason = ex.what();
  }
  return g;
}

}  // namespace

GroupOption evaluate_group(const Workload& w, const System& sys, int gpus, const MenuScenario& sc,
                           const Catalog& cat) {
  return evaluate_group_impl(w, sys, gpus, sc, cat, 1.0, nullptr);
}

namespace {

// One workload on half a card: its group there and every sweep point inside that memory.
struct HalfCard {
  GroupOption g;
  std::vector<SharePoint> points;
};

HalfCard half_card(const Workload& w, const System& sys, const MenuScenario& sc,
                   const Catalog& cat) {
  HalfCard h;
  h.g = evaluate_group_impl(w, sys, 1, sc, cat, 0.5, &h.points);
  return h;
}

// Both workloads' half cards time-sliced on one card; the pair of concurrencies with the most
// slack on the tighter peak that meets both SLAs and both peaks.
std::optional<std::pair<GroupOption, GroupOption>> combine(const Workload& a, const HalfCard& ha,
                                                           const Workload& b, const HalfCard& hb) {
  if (!ha.g.ok || !hb.g.ok) return std::nullopt;
  std::optional<std::pair<GroupOption, GroupOption>> best;
  double best_slack = 0;
  for (const auto& x : ha.points)
    for (const auto& y : hb.points) {
      // Time-sliced: each engine step waits for at most one step of the other.
      const double t = x.tpot_ms + y.tpot_ms;
      GroupOption oa = ha.g, ob = hb.g;
      oa.concurrency = x.concurrency;
      ob.concurrency = y.concurrency;
      oa.tpot_ms = ob.tpot_ms = t;
      oa.throughput = x.throughput * x.tpot_ms / t;
      ob.throughput = y.throughput * y.tpot_ms / t;
      oa.time_share = x.tpot_ms / t;
      ob.time_share = y.tpot_ms / t;
      oa.ttft_ms = x.ttft_ms * t / x.tpot_ms;
      ob.ttft_ms = y.ttft_ms * t / y.tpot_ms;
      auto meets = [](const Workload& w, const GroupOption& o) {
        return Sla{w.demand.sla_tpot_ms, w.demand.sla_ttft_ms}.met_by(o.tpot_ms, o.ttft_ms) &&
               o.throughput >= w.demand.peak_output_tokens_per_s();
      };
      if (!meets(a, oa) || !meets(b, ob)) continue;
      const double slack = std::min(oa.throughput / a.demand.peak_output_tokens_per_s(),
                                    ob.throughput / b.demand.peak_output_tokens_per_s());
      if (!best || slack > best_slack) {
        best = std::make_pair(oa, ob);
        best_slack = slack;
      }
    }
  return best;
}

}  // namespace

std::optional<std::pair<GroupOption, GroupOption>> share_card(const Workload& a, const Workload& b,
                                                              const System& sys,
                                                              const MenuScenario& sc,
                                                              const Catalog& cat) {
  return combine(a, half_card(a, sys, sc, cat), b, half_card(b, sys, sc, cat));
}

std::vector<std::pair<int, int>> pack_groups(const std::vector<int>& sizes, int node_gpus,
                                             int* nodes_out) {
  std::vector<std::size_t> order(sizes.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return sizes[a] > sizes[b]; });
  std::vector<std::vector<bool>> used;  // per node, per GPU
  std::vector<std::pair<int, int>> at(sizes.size(), {-1, -1});
  for (std::size_t i : order) {
    const int s = sizes[i];
    bool placed = false;
    for (std::size_t n = 0; n < used.size() && !placed; ++n)
      for (int start = 0; start + s <= node_gpus && !placed; start += s) {  // aligned blocks
        bool free = true;
        for (int k = 0; k < s; ++k) free = free && !used[n][start + k];
        if (!free) continue;
        for (int k = 0; k < s; ++k) used[n][start + k] = true;
        at[i] = {static_cast<int>(n), start};
        placed = true;
      }
    if (!placed) {
      used.emplace_back(node_gpus, false);
      for (int k = 0; k < s; ++k) used.back()[k] = true;
      at[i] = {static_cast<int>(used.size() - 1), 0};
    }
  }
  if (nodes_out) *nodes_out = static_cast<int>(used.size());
  return at;
}

namespace {

// One owned node of `sys` per year (capex over its life + opex − residual), through the cost
// reader: the scenario's /buy price, else the one catalog basis (pricing.hpp).
struct NodeCost {
  bool ok = false;
  std::string reason;
  double per_year = 0, capex = 0, opex_per_year = 0;  // every GPU at its TDP 24/7
  double fixed_per_year = 0;            // every GPU idle (average_power), else per_year
  double busy_gpu_energy_per_year = 0;  // one GPU busy all year: (TDP − idle) × …
  double wall_w = 0, dynamic_w_per_gpu = 0;
  std::string power_note;
};

// The average-power split of a node's cost (docs/plan.md § menus, power): electricity is
// wall W × PUE × price × hours; with average_power each GPU's TDP − idle is charged only for the
// time its work keeps it busy. Needs the opex given item by item with the node's wall power.
void split_power(NodeCost& nc, const System& sys, const MenuScenario& sc, const Catalog& cat,
                 const cost::CostInputs& in) {
  nc.fixed_per_year = nc.per_year;
  const auto& b = *in.buy;
  nc.wall_w = b.wall_power_w;
  if (!sc.average_power) return;
  if (!b.opex_itemized || b.wall_power_w <= 0 || b.electricity_per_kwh <= 0) {
    nc.power_note =
        "average_power not applied: the opex is not itemised with wall_power_w and "
        "electricity_per_kwh, so every GPU is charged at full draw";
    return;
  }
  const double tdp = cat.device(sys.device).tdp_w;
  const double gpu_w = tdp * sys.gpus_per_node;
  if (gpu_w > b.wall_power_w) {
    nc.ok = false;
    nc.reason = fmt::format(
        "average_power: the node's wall power {:.0f} W is below its GPUs' TDP ({} × {:.0f} W); "
        "the average draw needs the wall figure at full GPU load",
        b.wall_power_w, sys.gpus_per_node, tdp);
    return;
  }
  const double per_w_year =
      b.pue * b.electricity_per_kwh * in.month_hours * cost::kMonthsPerYear / 1000.0;
  nc.dynamic_w_per_gpu = tdp - sc.average_power->gpu_idle_w;
  nc.busy_gpu_energy_per_year = nc.dynamic_w_per_gpu * per_w_year;
  nc.fixed_per_year = nc.per_year - sys.gpus_per_node * nc.busy_gpu_energy_per_year;
}

NodeCost node_cost(const System& sys, const MenuScenario& sc, const Catalog& cat) {
  NodeCost nc;
  Json doc = sc.money.cost_doc;
  doc.erase("rent");
  doc.erase("api");
  Json buy = doc.contains("buy") ? doc["buy"] : Json::object();
  const bool priced = buy.contains("capex") || buy.contains("capex_usd") ||
                      buy.contains("system_price") || buy.contains("system_price_usd");
  if (!priced) {
    pricing::Context ctx;
    ctx.currency = sc.money.currency;
    ctx.fx_per_usd = doc.contains("fx_per_usd") ? doc["fx_per_usd"].get<double>()
                                                : cat.fx_per_usd(sc.money.currency);
    if (buy.contains("vat_rate")) ctx.vat_rate = buy["vat_rate"].get<double>();
    const pricing::OwnPrice own = pricing::own_price(sys, cat, sc.money.own_basis, ctx);
    if (!own.ok) {
      nc.reason = "owning not priced: " + own.reason;
      return nc;
    }
    buy["system_price"] = Json::array({own.net_low, own.net_high});
    buy["capex_includes_vat"] = false;
  }
  if (!buy.contains("gpu")) buy["gpu"] = sys.device;
  if (!buy.contains("gpus")) buy["gpus"] = sys.gpus_per_node;
  doc["buy"] = buy;
  const CatalogProvider provider = [&cat]() -> const Catalog& { return cat; };
  const cost::CostInputs in = parse_scenario(doc, sc.file, provider);
  const auto& b = *in.buy;
  nc.ok = true;
  nc.capex = b.capex();
  nc.opex_per_year = b.opex_per_year;
  nc.per_year =
      cost::own_tco(b.capex(), b.opex_per_year, b.life_years(), b.residual()) / b.life_years();
  split_power(nc, sys, sc, cat, in);
  return nc;
}

// The workload's own API bill per year at its catalog list price (input, cached input and
// output tokens), nullopt when the catalog has none.
std::optional<double> api_per_year(const Workload& w, const MenuScenario& sc, const Catalog& cat) {
  const ApiPrice* pick = nullptr;
  for (const ApiPrice* a : cat.api_prices_for(w.model->id))
    if (a->tier == "list" && !pick) pick = a;
  if (!pick) return std::nullopt;
  const double h = w.demand.cache_hit_share;
  const double in_price = (1 - h) * pick->input_per_mtok +
                          h * pick->cached_input_per_mtok.value_or(pick->input_per_mtok);
  const double per_request = (static_cast<double>(w.demand.input_tokens) * in_price +
                              static_cast<double>(w.demand.output_tokens) * pick->output_per_mtok) /
                             1e6;
  const double to = sc.money.cost_doc.contains("fx_per_usd")
                        ? sc.money.cost_doc["fx_per_usd"].get<double>()
                        : cat.fx_per_usd(sc.money.currency);
  const double per_year = per_request * w.demand.requests_per_day * w.demand.days_per_year;
  return cost::convert(per_year, cat.fx_per_usd(pick->currency), to);
}

// The smallest total of GPUs serving w's peak on `sys`: over group sizes 1, 2, 4, … ≤ node.
void choose_group(WorkloadResult& wr, const Workload& w, const System& sys, const MenuScenario& sc,
                  const Catalog& cat) {
  if (w.model->max_context_tokens < w.demand.context_tokens) {
    wr.reason = trained_context_reason(w);
    return;
  }
  std::vector<std::string> why;
  for (int g = 1; g <= sys.gpus_per_node; g *= 2) {
    const GroupOption o = evaluate_group(w, sys, g, sc, cat);
    if (!o.ok) {
      why.push_back(fmt::format("{} GPU{}: {}", g, g > 1 ? "s" : "", o.reason));
      continue;
    }
    const int reps = std::max(1, static_cast<int>(std::ceil(wr.peak_tok_s / o.throughput - 1e-9)));
    if (wr.gpus == 0 || reps * g < wr.gpus) {
      wr.group = o;
      wr.replicas = reps;
      wr.gpus = reps * g;
    }
  }
  if (wr.gpus == 0) {
    wr.reason = "no group of " + sys.id + " serves it: ";
    for (std::size_t i = 0; i < why.size(); ++i) wr.reason += (i ? "; " : "") + why[i];
  }
}

// Year-average busy GPUs of a self-hosted workload: its utilization × its engine's share of its
// card's time × its GPUs (docs/plan.md § menus, power).
double busy_gpus_of(const WorkloadResult& wr) {
  if (wr.gpus <= 0 || wr.group.throughput <= 0) return 0;
  const double u = wr.average_tok_s / (wr.replicas * wr.group.throughput);
  return std::min(1.0, u) * wr.group.time_share * wr.gpus;
}

// The most single-card workloads the exact pairing search takes (2^16 subsets); above it they are
// paired greedily in workload-id order.
constexpr std::size_t kExactPairing = 16;

// Card sharing (docs/plan.md § menus, sharing a card): which workloads that need one card alone
// may share one (share_card()), and, for any set of them, the pairing that makes the fleet
// cheapest: the caller prices a pairing by its number of pairs (each saves a card) and its
// energy; with every GPU at full draw that is a maximum matching on the "these two can share a
// card" graph (the fewest cards), with average_power a pair that saves no node is left apart
// when sharing would cost energy. Ties: more pairs, then less energy, then the first workload ids.
// Candidates are taken in id order, so no result depends on the order the menu lists its
// workloads in.
class CardSharing {
 public:
  struct Match {
    int pairs = 0;
    double energy = 0;  // the candidates' energy a year, shared or alone
    double cost = 0;    // as the caller priced it
  };

  CardSharing(const SystemResult& r, const MenuScenario& sc, const System& sys, const Catalog& cat)
      : slot_(r.workloads.size(), -1) {
    for (std::size_t i = 0; i < r.workloads.size(); ++i)
      if (r.workloads[i].gpus == 1) cand_.push_back(i);
    std::sort(cand_.begin(), cand_.end(),
              [&](std::size_t x, std::size_t y) { return r.workloads[x].id < r.workloads[y].id; });
    const std::size_t k = cand_.size();
    std::vector<HalfCard> half;
    for (std::size_t s = 0; s < k; ++s) {
      slot_[cand_[s]] = static_cast<int>(s);
      alone_.push_back(r.workloads[cand_[s]].energy_per_year);
      half.push_back(half_card(sc.workloads[cand_[s]], sys, sc, cat));
    }
    pair_.assign(k, std::vector<std::optional<std::pair<GroupOption, GroupOption>>>(k));
    pair_energy_.assign(k, std::vector<double>(k, 0));
    for (std::size_t x = 0; x < k; ++x)
      for (std::size_t y = x + 1; y < k; ++y) {
        const std::size_t i = cand_[x], j = cand_[y];
        pair_[x][y] = combine(sc.workloads[i], half[x], sc.workloads[j], half[y]);
        if (!pair_[x][y]) continue;
        WorkloadResult a = r.workloads[i], b = r.workloads[j];
        a.group = pair_[x][y]->first;
        b.group = pair_[x][y]->second;
        pair_energy_[x][y] = (busy_gpus_of(a) + busy_gpus_of(b)) * r.energy_per_busy_gpu_year;
      }
    if (exact()) solve();
  }

  // Index of workload i among the candidates, or -1.
  int slot(std::size_t i) const { return slot_[i]; }
  std::size_t candidates() const { return cand_.size(); }
  bool exact() const { return cand_.size() <= kExactPairing; }

  // The cheapest pairing of the candidates marked in `in` (by slot) under `cost(pairs, energy)`;
  // `partner`, when given, receives each slot's partner slot (or -1).
  template <class Cost>
  Match match(const std::vector<bool>& in, const Cost& cost,
              std::vector<int>* partner = nullptr) const {
    const std::size_t k = cand_.size();
    if (partner) partner->assign(k, -1);
    Match m;
    if (!exact()) {  // greedy in id order
      std::vector<bool> paired(k, false);
      for (std::size_t x = 0; x < k; ++x) {
        if (!in[x] || paired[x]) continue;
        for (std::size_t y = x + 1; y < k && !paired[x]; ++y)
          if (in[y] && !paired[y] && pair_[x][y]) {
            paired[x] = paired[y] = true;
            ++m.pairs;
            m.energy += pair_energy_[x][y];
            if (partner) {
              (*partner)[x] = static_cast<int>(y);
              (*partner)[y] = static_cast<int>(x);
            }
          }
        if (!paired[x]) m.energy += alone_[x];
      }
      m.cost = cost(m.pairs, m.energy);
      return m;
    }
    unsigned mask = 0;
    for (std::size_t s = 0; s < k; ++s)
      if (in[s]) mask |= 1u << s;
    m.cost = std::numeric_limits<double>::infinity();
    for (int p = max_pairs_; p >= 0; --p) {  // more pairs first: they win ties
      const double e = energy_[at(mask, p)];
      if (!std::isfinite(e)) continue;
      const double c = cost(p, e);
      if (c < m.cost - 1e-6) m = {p, e, c};
    }
    for (int p = m.pairs; partner && mask;) {
      const int x = lowest(mask), y = choice_[at(mask, p)];
      mask &= ~(1u << x);
      if (y < 0) continue;
      mask &= ~(1u << y);
      --p;
      (*partner)[static_cast<std::size_t>(x)] = y;
      (*partner)[static_cast<std::size_t>(y)] = x;
    }
    return m;
  }

  // Slots x < y share a card: their groups there, x's first.
  const std::pair<GroupOption, GroupOption>& shared(int x, int y) const {
    return *pair_[static_cast<std::size_t>(x)][static_cast<std::size_t>(y)];
  }
  std::size_t workload(int s) const { return cand_[static_cast<std::size_t>(s)]; }

 private:
  static int lowest(unsigned mask) {
    int b = 0;
    while (!(mask >> b & 1u)) ++b;
    return b;
  }
  std::size_t at(unsigned mask, int p) const {
    return static_cast<std::size_t>(mask) * static_cast<std::size_t>(max_pairs_ + 1) +
           static_cast<std::size_t>(p);
  }

  // Bitmask DP over every subset of the candidates and every number of pairs in it: the least
  // energy. The lowest candidate of a subset either stays alone or shares with one of the others
  // (in id order; the first of equal energies is kept).
  void solve() {
    const std::size_t k = cand_.size();
    const unsigned full = 1u << k;
    max_pairs_ = static_cast<int>(k / 2);
    const double inf = std::numeric_limits<double>::infinity();
    energy_.assign(static_cast<std::size_t>(full) * static_cast<std::size_t>(max_pairs_ + 1), inf);
    choice_.assign(energy_.size(), -1);
    energy_[at(0, 0)] = 0;
    for (unsigned mask = 1; mask < full; ++mask) {
      const int x = lowest(mask);
      const unsigned rest = mask & ~(1u << x);
      const auto xs = static_cast<std::size_t>(x);
      for (int p = 0; p <= max_pairs_; ++p) {
        double best = inf;
        int pick = -1;
        if (p > 0)
          for (std::size_t y = xs + 1; y < k; ++y)
            if ((rest >> y & 1u) && pair_[xs][y]) {
              const double e = energy_[at(rest & ~(1u << y), p - 1)] + pair_energy_[xs][y];
              if (e < best - 1e-6) {
                best = e;
                pick = static_cast<int>(y);
              }
            }
        const double alone = energy_[at(rest, p)] + alone_[xs];
        if (alone < best - 1e-6) {
          best = alone;
          pick = -1;
        }
        energy_[at(mask, p)] = best;
        choice_[at(mask, p)] = pick;
      }
    }
  }

  std::vector<std::size_t> cand_;  // workload indices, by id
  std::vector<int> slot_;          // per workload
  std::vector<double> alone_;      // energy a year on its own card
  std::vector<std::vector<std::optional<std::pair<GroupOption, GroupOption>>>> pair_;  // x < y
  std::vector<std::vector<double>> pair_energy_;
  int max_pairs_ = 0;
  std::vector<double> energy_;  // per subset and number of pairs (exact search); inf: none
  std::vector<int> choice_;     // the lowest candidate's partner there, or -1
};

// Nodes owned for `cards` cards: ⌈cards / node GPUs⌉ (what packing reaches for power-of-two
// sizes) in whole purchase units (a GB200 rack of 18 trays), as place_and_split buys them.
int nodes_for(const System& sys, int cards) {
  return pricing::nodes_to_own(sys, (cards + sys.gpus_per_node - 1) / sys.gpus_per_node);
}

// The price route() and place_and_split() put on a pairing of the self-hosted single-card
// workloads, `cards` being the self-hosted cards before sharing: the nodes left after its pairs
// saved a card each, and its energy.
auto pairing_price(const System& sys, double node_cost, int cards) {
  return [&sys, node_cost, cards](int pairs, double energy) {
    return nodes_for(sys, cards - pairs) * node_cost + energy;
  };
}

// Exact routing: every subset of the workloads that may go either way (≤ 2^16 subsets); the
// fleet for a subset is its cards after sharing (CardSharing: the self-hosted single-card
// workloads paired as they will be placed) packed on ⌈cards / node GPUs⌉ nodes (what packing
// reaches for power-of-two sizes), bought in whole purchase units, plus the self-hosted
// workloads' energy and the API bills of the rest. Marks resident-but-unplaceable and unpriced
// workloads `unserved`; returns which workloads are self-hosted, and says for each workload it
// sends to its API what self-hosting it as well would have cost.
std::vector<bool> route(SystemResult& r, const MenuScenario& sc, const System& sys,
                        double node_cost, const CardSharing& share) {
  const std::size_t n = r.workloads.size();
  std::vector<std::size_t> free_choice;
  std::vector<bool> self(n, false);
  for (std::size_t i = 0; i < n; ++i) {
    auto& wr = r.workloads[i];
    const bool resident = sc.workloads[i].demand.residency_required;
    const bool placeable = wr.gpus > 0;
    if (resident && !placeable) {
      wr.option = "unserved";  // reported, never dropped or sent to an API
      wr.reason = "residency forbids the API and " + wr.reason;
    } else if (resident) {
      self[i] = true;
    } else if (placeable && wr.api_per_year) {
      free_choice.push_back(i);
    } else if (placeable) {
      self[i] = true;
    } else if (wr.api_per_year) {
      wr.option = "api";
    } else {
      wr.option = "unserved";
      wr.reason += "; and the catalog has no API price for " + wr.model;
    }
  }
  if (free_choice.size() > 16)
    throw InputError(sc.file, "/workloads",
                     fmt::format("{} workloads can go either way (placeable, not resident, with a "
                                 "catalog API price); the exact routing search handles at most "
                                 "16: mark some residency_required or split the menu",
                                 free_choice.size()));
  struct Fleet {
    double cost = 0;
    int nodes = 0;
  };
  auto fleet_cost = [&](const std::vector<bool>& s) {
    int g = 0;
    double other = 0;  // API bills, and self-hosted GPUs' draw above idle
    std::vector<bool> in(share.candidates(), false);
    for (std::size_t i = 0; i < n; ++i) {
      if (s[i]) {
        g += r.workloads[i].gpus;
        if (share.slot(i) >= 0)
          in[static_cast<std::size_t>(share.slot(i))] = true;
        else
          other += r.workloads[i].energy_per_year;
      } else if (r.workloads[i].option == "api" || r.workloads[i].option.empty())
        other += r.workloads[i].api_per_year.value_or(0);
    }
    const CardSharing::Match m = share.match(in, pairing_price(sys, node_cost, g));
    return Fleet{m.cost + other, nodes_for(sys, g - m.pairs)};
  };
  std::vector<bool> best = self;
  Fleet best_fleet{std::numeric_limits<double>::infinity(), 0};
  for (unsigned mask = 0; mask < (1u << free_choice.size()); ++mask) {
    std::vector<bool> s = self;
    for (std::size_t k = 0; k < free_choice.size(); ++k) s[free_choice[k]] = (mask >> k) & 1u;
    const Fleet f = fleet_cost(s);
    if (f.cost < best_fleet.cost - 1e-6) {
      best_fleet = f;
      best = s;
    }
  }
  for (std::size_t i : free_choice) {
    auto& wr = r.workloads[i];
    if (best[i] || !wr.reason.empty()) continue;
    std::vector<bool> s = best;
    s[i] = true;
    const Fleet f = fleet_cost(s);
    const int more = f.nodes - best_fleet.nodes;
    // The exact search kept the cheaper side, so the fleet's extra cost is at least the bill.
    wr.reason = fmt::format(
        "self-hosting it as well would add {} node{} and {:.0f} {} a year to the fleet, not "
        "less than its API bill of {:.0f} (exact routing search, card sharing counted)",
        more, more == 1 ? "" : "s", f.cost - best_fleet.cost + *wr.api_per_year, sc.money.currency,
        *wr.api_per_year);
  }
  return best;
}

void place_and_split(SystemResult& r, const std::vector<bool>& best, const MenuScenario& sc,
                     const System& sys, const CardSharing& share, double node_cost) {
  const int node_gpus = sys.gpus_per_node;
  const std::size_t n = r.workloads.size();
  const double per_gpu = node_cost / node_gpus;  // every GPU idle (average_power), else full
  std::vector<int> sizes;
  std::vector<std::pair<std::size_t, int>> owner;  // workload, replica
  for (std::size_t i = 0; i < n; ++i) {
    auto& wr = r.workloads[i];
    if (wr.option == "unserved") continue;
    if (!best[i]) {
      wr.option = "api";
      wr.busy_gpus = wr.energy_per_year = 0;
      if (wr.reason.empty())
        wr.reason = "its API bill is below the nodes it would add (exact routing search)";
      wr.cost_per_year = wr.api_per_year;
      r.api_bill_per_year += wr.api_per_year.value_or(0);
      continue;
    }
    wr.option = "self_host";
  }
  // Sharing a card: the pairing the routing search counted for the self-hosted set.
  std::vector<int> partner(n, -1);
  {
    std::vector<bool> in(share.candidates(), false);
    int cards = 0;
    for (std::size_t i = 0; i < n; ++i)
      if (r.workloads[i].option == "self_host") {
        cards += r.workloads[i].gpus;
        if (share.slot(i) >= 0) in[static_cast<std::size_t>(share.slot(i))] = true;
      }
    std::vector<int> mate;
    (void)share.match(in, pairing_price(sys, node_cost, cards), &mate);
    for (int x = 0; x < static_cast<int>(mate.size()); ++x) {
      const int y = mate[static_cast<std::size_t>(x)];
      if (y < x) continue;
      const std::size_t i = share.workload(x), j = share.workload(y);
      partner[i] = static_cast<int>(j);
      partner[j] = static_cast<int>(i);
      r.workloads[i].group = share.shared(x, y).first;
      r.workloads[j].group = share.shared(x, y).second;
      r.workloads[i].shares_card_with = r.workloads[j].id;
      r.workloads[j].shares_card_with = r.workloads[i].id;
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    auto& wr = r.workloads[i];
    if (wr.option != "self_host") continue;
    if (partner[i] < 0 || static_cast<std::size_t>(partner[i]) > i)  // the card's owner packs it
      for (int k = 0; k < wr.replicas; ++k) {
        sizes.push_back(wr.group.gpus);
        owner.emplace_back(i, k + 1);
      }
    // GPU share: a shared card is split half and half; each pays its own draw above idle.
    wr.busy_gpus = busy_gpus_of(wr);
    wr.energy_per_year = wr.busy_gpus * r.energy_per_busy_gpu_year;
    wr.cost_per_year = (partner[i] < 0 ? wr.gpus : 0.5) * per_gpu + wr.energy_per_year;
    wr.utilization = wr.average_tok_s / (wr.replicas * wr.group.throughput);
  }
  for (auto& wr : r.workloads) {
    if (wr.cost_per_year && wr.output_mtok_per_year > 0)
      wr.cost_per_mtok_output = *wr.cost_per_year / wr.output_mtok_per_year;
    if (wr.cost_per_year && wr.embedded_mtok_per_year > 0)
      wr.cost_per_mtok_embedded = *wr.cost_per_year / wr.embedded_mtok_per_year;
  }
  int packed = 0;
  const auto at = pack_groups(sizes, node_gpus, &packed);
  // The fleet is bought in whole purchase units; nodes beyond the packed ones stand idle.
  const int nodes = pricing::nodes_to_own(sys, packed);
  if (nodes > packed)
    r.notes.push_back(
        fmt::format("{} is bought {} nodes at a time: {} owned for the {} the menu "
                    "fills",
                    sys.id, sys.purchase_unit_nodes, nodes, packed));
  double self_mtok = 0;
  int used = 0;
  for (std::size_t k = 0; k < sizes.size(); ++k) {
    const auto& wr = r.workloads[owner[k].first];
    Placement p;
    p.node = at[k].first + 1;
    for (int j = 0; j < sizes[k]; ++j) p.gpus.push_back(at[k].second + j);
    p.workload = wr.id;
    p.replica = owner[k].second;
    p.tp = wr.group.layout.tp;
    const int other = partner[owner[k].first];
    if (other >= 0) {
      const auto& ow = r.workloads[static_cast<std::size_t>(other)];
      p.shared_with = ow.id;
      Placement q = p;
      q.workload = ow.id;
      q.replica = 1;
      q.shared_with = wr.id;
      r.allocation.push_back(q);
    }
    r.allocation.push_back(p);
    used += sizes[k];
  }
  std::sort(r.allocation.begin(), r.allocation.end(), [](const Placement& a, const Placement& b) {
    return a.node != b.node ? a.node < b.node : a.gpus.front() < b.gpus.front();
  });
  double energy = 0, busy = 0;
  for (const auto& wr : r.workloads)
    if (wr.option == "self_host") {
      self_mtok += wr.output_mtok_per_year;  // generative output only
      energy += wr.energy_per_year;
      busy += wr.busy_gpus;
    }
  r.nodes = nodes;
  r.idle_gpus = nodes * node_gpus - used;
  r.self_host_cost_per_year = nodes * node_cost + energy;
  const double idle_energy = node_gpus * r.energy_per_busy_gpu_year;  // 0 without average_power
  r.opex_per_year = nodes * (r.opex_per_node_per_year - idle_energy) + energy;
  r.wall_power_full_w = nodes * r.wall_power_full_w;
  r.wall_power_average_w =
      r.energy_per_busy_gpu_year > 0
          ? r.wall_power_full_w - (nodes * node_gpus - busy) * r.dynamic_w_per_gpu
          : r.wall_power_full_w;
  r.menu_cost_per_year = r.self_host_cost_per_year + r.api_bill_per_year;
  for (const auto& wr : r.workloads)
    r.separate_plans_cost_per_year += wr.separate_per_year.value_or(0);
  if (self_mtok > 0) r.cost_per_mtok_output = r.self_host_cost_per_year / self_mtok;
  r.ok = true;
  if (r.idle_gpus > 0)
    r.notes.push_back(fmt::format("{} idle GPU{} ({:.0f} {} a year of the nodes' cost)",
                                  r.idle_gpus, r.idle_gpus > 1 ? "s" : "", r.idle_gpus * per_gpu,
                                  sc.money.currency));
}

SystemResult plan_system(const System& sys, const MenuScenario& sc, const Catalog& cat) {
  SystemResult r;
  r.system = sys.id;
  r.gpus_per_node = sys.gpus_per_node;
  const NodeCost nc = node_cost(sys, sc, cat);
  if (!nc.ok) {
    r.reason = nc.reason;
    return r;
  }
  r.node_cost_per_year = nc.per_year;
  r.capex_per_node = nc.capex;
  r.opex_per_node_per_year = nc.opex_per_year;
  r.node_fixed_cost_per_year = nc.fixed_per_year;
  r.energy_per_busy_gpu_year = nc.busy_gpu_energy_per_year;
  r.dynamic_w_per_gpu = nc.dynamic_w_per_gpu;
  r.wall_power_full_w = nc.wall_w;  // per node until placed
  if (!nc.power_note.empty()) r.notes.push_back(nc.power_note);
  for (const Workload& w : sc.workloads) {
    WorkloadResult wr;
    wr.id = w.id;
    wr.model = w.model->id;
    wr.peak_tok_s = w.demand.peak_output_tokens_per_s();
    wr.average_tok_s = w.demand.average_output_tokens_per_s();
    wr.kind = w.kind;
    if (w.kind == Kind::generate)
      wr.output_mtok_per_year = w.demand.output_tokens_per_year() / 1e6;
    else  // one pseudo-output token per item
      wr.embedded_mtok_per_year =
          w.demand.output_tokens_per_year() * static_cast<double>(w.item_tokens) / 1e6;
    wr.api_per_year = api_per_year(w, sc, cat);
    choose_group(wr, w, sys, sc, cat);
    wr.busy_gpus = busy_gpus_of(wr);
    wr.energy_per_year = wr.busy_gpus * nc.busy_gpu_energy_per_year;
    // Planned alone on the same system: its groups on whole nodes bought in whole purchase
    // units, or its API if cheaper.
    if (wr.gpus > 0)
      wr.separate_per_year =
          pricing::nodes_to_own(sys, (wr.gpus + sys.gpus_per_node - 1) / sys.gpus_per_node) *
              nc.fixed_per_year +
          wr.energy_per_year;
    if (wr.api_per_year && !w.demand.residency_required &&
        (!wr.separate_per_year || *wr.api_per_year < *wr.separate_per_year))
      wr.separate_per_year = wr.api_per_year;
    r.workloads.push_back(std::move(wr));
  }
  const CardSharing share(r, sc, sys, cat);
  const std::vector<bool> self = route(r, sc, sys, nc.fixed_per_year, share);
  place_and_split(r, self, sc, sys, share, nc.fixed_per_year);
  return r;
}

int unserved(const SystemResult& s) {
  int u = 0;
  for (const auto& w : s.workloads) u += w.option == "unserved";
  return u;
}

}  // namespace

MenuResult run_menu(const MenuScenario& sc, const Catalog& cat) {
  MenuResult r;
  r.scenario = sc;
  for (const std::string& id : sc.systems) {
    const System& sys = cat.system(id);
    const Engine& e = cat.engine(sc.money.engine);
    const Device& d = cat.device(sys.device);
    if (auto why = engine_device_problem(e, d)) {
      SystemResult s;
      s.system = id;
      s.reason = *why;
      r.systems.push_back(std::move(s));
      continue;
    }
    r.systems.push_back(plan_system(sys, sc, cat));
  }
  std::stable_sort(r.systems.begin(), r.systems.end(),
                   [](const SystemResult& a, const SystemResult& b) {
                     if (a.ok != b.ok) return a.ok;
                     if (!a.ok) return false;
                     if (unserved(a) != unserved(b)) return unserved(a) < unserved(b);
                     return a.menu_cost_per_year < b.menu_cost_per_year;
                   });
  r.messages.push_back(
      "Shared cost split by GPU share: each self-hosted workload pays (its GPUs / GPUs per node) "
      "of a node's yearly cost; idle GPUs stay with the fleet.");
  r.messages.push_back(
      "Two single-card workloads may share a card (half the memory each, time-sliced; shown as "
      "'(shared)'); every other GPU group carries one workload.");
  return r;
}

}  // namespace moeplan::menu
