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
#include <map>
#include <thread>

#include "moeplan/errors.hpp"
#include "moeplan/sizing.hpp"

namespace moeplan::recommend {

namespace {

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

struct Config {
  const Model* m;
  const Device* d;
  int gpus;
  std::string precision;
  PrecisionMix mix;
  std::string kv;
  Layout layout;
  const Efficiencies* eff;
  double gpu_hour_usd;
  const std::string* basis;
};

}  // namespace

std::optional<std::pair<double, std::string>> gpu_hour_price(const Device& d, const Catalog& cat,
                                                             const Request& req) {
  const RentalPrice* best = nullptr;
  for (const RentalPrice* r : cat.rental_prices_for(d.id))
    if (!best || r->usd_per_gpu_hour < best->usd_per_gpu_hour) best = r;
  if (best)
    return std::make_pair(best->usd_per_gpu_hour,
                          "rent: " + best->provider + " (" + best->kind + ")");
  const HardwarePrice* hp = nullptr;
  for (const HardwarePrice* h : cat.hardware_prices_for(d.id))
    if (!hp || (h->basis == "street" && hp->basis != "street")) hp = h;
  if (!hp) return std::nullopt;
  const double usd = (hp->price_low + hp->price_high) / 2 / cat.fx_per_usd(hp->currency) /
                     std::max(1, hp->devices);
  const double hours = req.life_months * 730.0;
  const double power = d.tdp_w / 1000.0 * req.pue * req.electricity_usd_per_kwh;
  return std::make_pair(usd / hours + power, "own: " + hp->item);
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

Result search(const Request& req, const Catalog& cat) {
  const auto t0 = std::chrono::steady_clock::now();
  Result res;
  const Engine& eng = cat.engine(req.engine);
  // Devices with a price, their efficiencies resolved once.
  struct Dev {
    const Device* d;
    Efficiencies eff;
    double price;
    std::string basis;
  };
  std::vector<Dev> devs;
  for (const auto& d : cat.devices) {
    if (!eng.device_kinds.empty() && !contains(eng.device_kinds, device_kind_name(d.kind)))
      continue;
    const auto p = gpu_hour_price(d, cat, req);
    if (!p) {
      ++res.devices_unpriced;
      continue;
    }
    devs.push_back({&d, resolve_efficiencies(d, eng), p->first, p->second});
  }
  // Configurations, pruned by a necessary memory condition.
  std::vector<Config> configs;
  for (const Model* m : req.models) {
    std::vector<std::pair<std::string, PrecisionMix>> precs;
    for (const std::string spec : {"native", "fp8", "nvfp4", "int4-awq"}) {
      PrecisionMix mix = spec == "native" ? m->native_precision
                                          : parse_weight_spec(spec, m->native_precision, cat);
      bool served = true;
      for (const auto& [c, p] : mix) served = served && contains(eng.weight_formats, p);
      if (!served) continue;
      if (std::none_of(precs.begin(), precs.end(), [&](const auto& x) { return x.second == mix; }))
        precs.emplace_back(spec, std::move(mix));
    }
    for (const auto& [spec, mix] : precs) {
      double wb = 0;
      for (const auto& [c, b] : weight_bytes(*m, mix, cat)) wb += b;
      bool needs_fp4 = false, needs_fp8 = false;
      for (const auto& [c, p] : mix) {
        const auto& hw = cat.weight_format(p).hw_format;
        needs_fp4 = needs_fp4 || (hw == "fp4" && spec != "native");
        needs_fp8 = needs_fp8 || (hw == "fp8" && spec != "native");
      }
      for (const auto& dv : devs) {
        const Device& d = *dv.d;
        if ((needs_fp4 && !d.has_hw_format("fp4")) || (needs_fp8 && !d.has_hw_format("fp8")))
          continue;
        const std::string kv =
            d.has_hw_format("fp8") && contains(eng.kv_formats, "fp8") ? "fp8" : "bf16";
        for (int g = 1; g <= req.max_gpus; ++g) {
          if (g > d.max_per_node && g % d.max_per_node != 0) continue;
          if (wb > g * d.memory_gb * 1e9 * eng.memory_utilization) continue;
          std::vector<Layout> layouts{Layout{g, 1, 0, false}};
          if (g >= 2 && g % 2 == 0) layouts.push_back(Layout{g / 2, 2, 0, false});
          if (m->attention.type == AttentionType::mla && g > 1)
            layouts.push_back(Layout{g, 1, 0, true});
          for (const auto& l : layouts)
            configs.push_back({m, &d, g, spec, mix, kv, l, &dv.eff, dv.price, &dv.basis});
        }
      }
    }
  }
  res.configs = configs.size();

  auto work = [&](std::size_t begin, std::size_t step, std::vector<Point>& out, std::size_t& fitn,
                  std::size_t& pts) {
    PerfRequest pr;
    pr.engine = &eng;
    pr.input_tokens = req.input_tokens;
    pr.output_tokens = req.output_tokens;
    for (std::size_t i = begin; i < configs.size(); i += step) {
      const Config& c = configs[i];
      FitRequest f;
      f.model = c.m;
      f.device = c.d;
      f.gpus = c.gpus;
      f.weights = c.mix;
      f.kv_precision = c.kv;
      f.context_tokens = req.input_tokens + req.output_tokens;
      f.layout = c.layout;
      f.memory_utilization = eng.memory_utilization;
      FitResult fr;
      try {
        fr = fit(f, cat);
      } catch (const Error&) {
        continue;
      }
      if (!fr.fits || fr.max_concurrency < 1) continue;
      ++fitn;
      pr.model = c.m;
      pr.device = c.d;
      pr.gpus = c.gpus;
      pr.weights = c.mix;
      pr.kv_precision = c.kv;
      pr.layout = c.layout;
      pr.efficiencies = *c.eff;
      const long long maxc = std::min(fr.max_concurrency, req.max_concurrency);
      double prev_agg = 0;
      for (long long conc = 1;; conc = std::min(maxc, conc * 2)) {
        pr.concurrency = conc;
        PerfResult r;
        try {
          r = estimate(pr, cat);
        } catch (const Error&) {
          break;
        }
        ++pts;
        Point p;
        p.model = c.m;
        p.device = c.d;
        p.gpus = c.gpus;
        p.precision = c.precision;
        p.kv = c.kv;
        p.layout = r.layout;
        p.concurrency = conc;
        p.aggregate_tok_s = r.decode.output_tokens_per_s;
        p.per_user_tok_s = r.decode.per_request_tokens_per_s;
        p.ttft_ms = r.prefill.ttft_ms;
        p.tpot_ms = r.decode.tpot_ms;
        p.meets_sla = (!req.sla.tpot_ms || p.tpot_ms <= *req.sla.tpot_ms) &&
                      (!req.sla.ttft_ms || p.ttft_ms <= *req.sla.ttft_ms);
        p.gpu_hour_usd = c.gpu_hour_usd;
        p.price_basis = *c.basis;
        const double per_hour = c.gpu_hour_usd * c.gpus * req.fx_per_usd;
        if (p.aggregate_tok_s > 0) {
          if (req.output_tokens_per_s && *req.output_tokens_per_s > 0) {
            p.replicas =
                checked_ceil_count(*req.output_tokens_per_s / p.aggregate_tok_s - 1e-9, "replicas");
            p.cost_per_mtok = per_hour * p.replicas / (*req.output_tokens_per_s * 3600) * 1e6;
          } else {
            p.cost_per_mtok = per_hour / (p.aggregate_tok_s * 3600) * 1e6;
          }
        }
        // Higher concurrency only lowers per-user speed; once it stops buying aggregate
        // throughput, or one replica already carries the demand, every further point is
        // dominated (same or higher cost, lower per-user tok/s).
        const bool saturated = p.aggregate_tok_s < prev_agg * 1.02;
        const bool one_replica = req.output_tokens_per_s && p.replicas == 1;
        prev_agg = p.aggregate_tok_s;
        if (p.aggregate_tok_s > 0 && !saturated) out.push_back(std::move(p));
        if (conc >= maxc || saturated || one_replica) break;
      }
    }
  };
  const auto t = static_cast<std::size_t>(std::max(1, req.threads));
  std::vector<std::vector<Point>> parts(t);
  std::vector<std::size_t> fits(t, 0), pts(t, 0);
  std::vector<std::thread> pool;
  for (std::size_t k = 1; k < t; ++k)
    pool.emplace_back(work, k, t, std::ref(parts[k]), std::ref(fits[k]), std::ref(pts[k]));
  work(0, t, parts[0], fits[0], pts[0]);
  for (auto& th : pool) th.join();
  std::vector<Point> all;
  for (std::size_t k = 0; k < t; ++k) {
    res.configs_fit += fits[k];
    res.points += pts[k];
    all.insert(all.end(), std::make_move_iterator(parts[k].begin()),
               std::make_move_iterator(parts[k].end()));
  }
  // Deterministic order whatever the thread split.
  auto key = [](const Point& p) {
    return std::make_tuple(p.cost_per_mtok, -p.per_user_tok_s, p.model->id, p.device->id, p.gpus,
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
            {"model", "device", "gpus", "precision", "layout", "concurrency", "per-user tok/s",
             "aggregate tok/s", "TTFT (ms)", "TPOT (ms)", "meets SLA", "replicas", "GPU-hour (USD)",
             cm, "price basis"},
            {},
            {}};
    for (const auto& p : pts)
      t.add({p.model->id, p.device->id, p.gpus, p.precision,
             fmt::format("tp={} pp={} ep={}{}", p.layout.tp, p.layout.pp, p.layout.ep,
                         p.layout.dp_attention ? " dp-attn" : ""),
             p.concurrency, Cell(p.per_user_tok_s, 1), Cell(p.aggregate_tok_s, 0),
             Cell(p.ttft_ms, 0), Cell(p.tpot_ms, 1), p.meets_sla, p.replicas,
             Cell(p.gpu_hour_usd, 2), Cell(p.cost_per_mtok), p.price_basis});
    return t;
  };
  rep.tables.push_back(table("top", fmt::format("Top {} under the SLA", req.top), r.top));
  rep.tables.push_back(table(
      "frontier", "Pareto frontier: cost per 1M output tokens vs per-user tok/s", r.frontier));
  rep.messages.push_back(
      fmt::format("searched {} configurations ({} fit) and {} concurrency points in {:.2f} s; {} "
                  "devices without a price "
                  "skipped",
                  r.configs, r.configs_fit, r.points, r.seconds, r.devices_unpriced));
  rep.messages.push_back(
      req.output_tokens_per_s
          ? fmt::format("cost at a demand of {:.1f} output tok/s (replicas × GPUs × GPU-hour, idle "
                        "capacity included)",
                        *req.output_tokens_per_s)
          : std::string("cost at full use of one replica (no demand given)"));
  if (r.top.empty()) rep.messages.push_back("no configuration meets the SLA");
  Json j;
  auto pj = [&](const std::vector<Point>& pts) {
    Json a = Json::array();
    for (const auto& p : pts)
      a.push_back({{"model", p.model->id},
                   {"device", p.device->id},
                   {"gpus", p.gpus},
                   {"precision", p.precision},
                   {"kv_precision", p.kv},
                   {"layout",
                    {{"tp", p.layout.tp},
                     {"pp", p.layout.pp},
                     {"dp", p.layout.dp},
                     {"ep", p.layout.ep},
                     {"dp_attention", p.layout.dp_attention}}},
                   {"concurrency", p.concurrency},
                   {"per_user_tokens_per_s", p.per_user_tok_s},
                   {"aggregate_output_tokens_per_s", p.aggregate_tok_s},
                   {"ttft_ms", p.ttft_ms},
                   {"tpot_ms", p.tpot_ms},
                   {"meets_sla", p.meets_sla},
                   {"replicas", p.replicas},
                   {"gpu_hour_usd", p.gpu_hour_usd},
                   {"price_basis", p.price_basis},
                   {"cost_per_mtok_output", p.cost_per_mtok}});
    return a;
  };
  j["currency"] = req.currency;
  j["demand"] = {{"output_tokens_per_s",
                  req.output_tokens_per_s ? Json(*req.output_tokens_per_s) : Json(nullptr)},
                 {"input_tokens", req.input_tokens},
                 {"output_tokens", req.output_tokens},
                 {"sla",
                  {{"ttft_ms", req.sla.ttft_ms ? Json(*req.sla.ttft_ms) : Json(nullptr)},
                   {"tpot_ms", req.sla.tpot_ms ? Json(*req.sla.tpot_ms) : Json(nullptr)}}}};
  j["top"] = pj(r.top);
  j["frontier"] = pj(r.frontier);
  j["search"] = {{"configurations", r.configs},
                 {"configurations_fit", r.configs_fit},
                 {"points", r.points},
                 {"seconds", r.seconds}};
  rep.json = j;
  return rep;
}

}  // namespace moeplan::recommend
