// `moeprobe load`: statistics per load point and the plan's go/no-go checks
// settled from them (docs/load.md §Report, §Go/no-go rules). Pure functions.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "moeplan/errors.hpp"
#include "moeprobe/load.hpp"

namespace moeprobe::load {

Percentiles percentiles(std::vector<double> v) {
  Percentiles p;
  p.n = v.size();
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    const double pos = q * static_cast<double>(v.size() - 1);
    const auto lo = static_cast<std::size_t>(std::floor(pos));
    const auto hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
  };
  p.p50 = at(0.50);
  p.p90 = at(0.90);
  p.p99 = at(0.99);
  return p;
}

PointSummary summarise(const PointPlan& p, const std::vector<RequestResult>& rs, const Sla& sla) {
  PointSummary s;
  s.plan = p;
  for (Failure f : failure_classes()) s.errors[failure_name(f)] = 0;
  std::vector<double> ttft, tpot, itl, e2e;
  std::map<int, double> wall;  // per segment: last completion
  long long out_tok = 0, in_tok = 0, good = 0, with_prompt = 0;
  for (const auto& r : rs) {
    if (r.point != p.index || r.kind != p.kind) continue;
    ++s.requests;
    wall[r.segment] = std::max(wall[r.segment], r.end_s);
    if (!r.ok()) {
      ++s.errors[failure_name(r.failure)];
      continue;
    }
    ++s.completed;
    if (r.usage_missing) ++s.usage_missing;
    if (r.ttft_ms) ttft.push_back(*r.ttft_ms);
    const auto tp = r.tpot_ms();
    if (tp) tpot.push_back(*tp);
    itl.insert(itl.end(), r.itl_ms.begin(), r.itl_ms.end());
    e2e.push_back(r.e2e_ms);
    out_tok += r.output_tokens();
    if (r.prompt_tokens) {
      in_tok += *r.prompt_tokens;
      ++with_prompt;
      if (r.cached_tokens) {
        s.cached_tokens += *r.cached_tokens;
        s.prompt_tokens_with_cache_info += *r.prompt_tokens;
      }
    }
    const bool ttft_ok = !sla.ttft_ms || (r.ttft_ms && *r.ttft_ms <= *sla.ttft_ms);
    const bool tpot_ok = !sla.tpot_ms || !tp || *tp <= *sla.tpot_ms;
    if (ttft_ok && tpot_ok) ++good;
  }
  s.ttft_ms = percentiles(ttft);
  s.tpot_ms = percentiles(tpot);
  s.itl_ms = percentiles(itl);
  s.e2e_ms = percentiles(e2e);
  for (const auto& [seg, w] : wall) s.wall_s += w;
  if (s.wall_s > 0) {
    s.output_tokens_per_s = static_cast<double>(out_tok) / s.wall_s;
    s.total_tokens_per_s = static_cast<double>(out_tok + in_tok) / s.wall_s;
    s.requests_per_s = static_cast<double>(s.completed) / s.wall_s;
  }
  s.goodput = s.requests ? static_cast<double>(good) / static_cast<double>(s.requests) : 0;
  if (s.completed)
    s.mean_output_tokens = static_cast<double>(out_tok) / static_cast<double>(s.completed);
  if (with_prompt)
    s.mean_prompt_tokens = static_cast<double>(in_tok) / static_cast<double>(with_prompt);
  return s;
}

// --- go/no-go ----------------------------------------------------------------

namespace {

constexpr double kPromptTolerance = 0.2;  // measured prompt/reply length within ±20% of the plan's

std::string pct(double share) {
  return fmt::format("{:.1f}%", share * 100);
}

// Was this point run at the scenario's prompts (as asked, and as the server counted them)?
bool at_scenario_prompts(const Targets& t, const Measured& m, const PointSummary& s,
                         std::string& why) {
  // asked_input < 0: prompts from a file, judged by the server's own count below.
  if ((m.asked_input >= 0 && m.asked_input != t.input_tokens) ||
      m.asked_output != t.output_tokens) {
    why = fmt::format("measured at {} in / {} out, the scenario's prompts are {} in / {} out",
                      m.asked_input, m.asked_output, t.input_tokens, t.output_tokens);
    return false;
  }
  auto off = [](double got, long long want) {
    return want > 0 && std::abs(got / static_cast<double>(want) - 1) > kPromptTolerance;
  };
  if (m.asked_input < 0 && s.mean_prompt_tokens <= 0) {
    why = "prompts from a file and no usage from the server: their length is unknown";
    return false;
  }
  if (s.mean_prompt_tokens > 0 && off(s.mean_prompt_tokens, t.input_tokens)) {
    why = fmt::format("the server counted {:.0f} prompt tokens per request, not {}",
                      s.mean_prompt_tokens, t.input_tokens);
    return false;
  }
  if (off(s.mean_output_tokens, t.output_tokens)) {
    why = fmt::format("replies averaged {:.0f} tokens, not {} (end of sequence before max_tokens?)",
                      s.mean_output_tokens, t.output_tokens);
    return false;
  }
  return true;
}

const PointSummary* best_throughput(const Measured& m, const Targets& t, bool scenario_only,
                                    std::string& why) {
  const PointSummary* best = nullptr;
  for (const auto& s : m.points) {
    if (s.plan.kind != "load" || s.completed == 0) continue;
    std::string w;
    if (scenario_only && !at_scenario_prompts(t, m, s, w)) {
      why = w;
      continue;
    }
    const double up = static_cast<double>(s.completed) / static_cast<double>(s.requests);
    if (up < t.min_uptime) continue;  // not sustained: too many failures at this load
    if (!best || s.output_tokens_per_s > best->output_tokens_per_s) best = &s;
  }
  return best;
}

GoNoGo check1(const Targets& t, const Measured& m) {
  GoNoGo g{1, "sustained output tok/s at the scenario's prompts", "not_measured", "—", "—", ""};
  if (t.required_tok_s_per_node)
    g.required = fmt::format("≥ {:.1f} tok/s per node", *t.required_tok_s_per_node);
  std::string why;
  const PointSummary* any = best_throughput(m, t, false, why);
  const PointSummary* s = best_throughput(m, t, true, why);
  if (!s) {
    if (any)
      g.measured = fmt::format("{:.1f} tok/s ({})", any->output_tokens_per_s, any->plan.label());
    g.note = why.empty() ? "no load point completed enough requests" : why;
    return g;
  }
  g.measured = fmt::format("{:.1f} tok/s ({})", s->output_tokens_per_s, s->plan.label());
  if (!t.required_tok_s_per_node) {
    g.note = "no scenario demand to compare with";
    return g;
  }
  g.status = s->output_tokens_per_s >= *t.required_tok_s_per_node ? "pass" : "fail";
  return g;
}

GoNoGo check2(const Targets& t, const Measured& m) {
  GoNoGo g{2, "TTFT and TPOT at the plan's concurrency", "not_measured", "—", "—", ""};
  g.required = fmt::format("P90 TTFT {} and TPOT {} at concurrency {}",
                           t.sla.ttft_ms ? fmt::format("≤ {:.0f} ms", *t.sla.ttft_ms) : "(no SLA)",
                           t.sla.tpot_ms ? fmt::format("≤ {:.1f} ms", *t.sla.tpot_ms) : "(no SLA)",
                           t.plan_concurrency ? std::to_string(*t.plan_concurrency) : "?");
  const PointSummary *shown = nullptr, *decisive = nullptr;
  std::string why;
  for (const auto& s : m.points) {
    if (s.plan.kind != "load" || !s.plan.concurrency || !s.ttft_ms.p90) continue;
    if (!shown) shown = &s;  // for the measured column even when it cannot decide
    std::string w;
    if (!at_scenario_prompts(t, m, s, w)) {
      why = w;
      continue;
    }
    if (t.plan_concurrency && *s.plan.concurrency < *t.plan_concurrency) continue;
    if (!decisive || *s.plan.concurrency < *decisive->plan.concurrency) decisive = &s;
  }
  const PointSummary* pick = decisive ? decisive : shown;
  if (pick)
    g.measured = fmt::format("P90 TTFT {:.0f} ms, TPOT {} at c={}", *pick->ttft_ms.p90,
                             pick->tpot_ms.p90 ? fmt::format("{:.1f} ms", *pick->tpot_ms.p90) : "—",
                             *pick->plan.concurrency);
  if (!decisive) {
    g.note = !why.empty() ? why
             : t.plan_concurrency
                 ? fmt::format("no closed-loop point at concurrency ≥ {}", *t.plan_concurrency)
                 : "no closed-loop load point";
    return g;
  }
  if (!t.sla.ttft_ms && !t.sla.tpot_ms) {
    g.note = "the scenario sets no TTFT or TPOT SLA";
    return g;
  }
  const bool ttft_ok = !t.sla.ttft_ms || *pick->ttft_ms.p90 <= *t.sla.ttft_ms;
  const bool tpot_ok =
      !t.sla.tpot_ms || (pick->tpot_ms.p90 && *pick->tpot_ms.p90 <= *t.sla.tpot_ms);
  g.status = ttft_ok && tpot_ok ? "pass" : "fail";
  return g;
}

GoNoGo check3(const Targets& t, const Measured& m) {
  GoNoGo g{3,
           "uptime past 100+ requests",
           "not_measured",
           "—",
           fmt::format("≥ {} over ≥ 100 requests", pct(t.min_uptime)),
           ""};
  if (m.issued == 0) {
    g.note = "no load requests";
    return g;
  }
  const double up = static_cast<double>(m.succeeded) / static_cast<double>(m.issued);
  g.measured = fmt::format("{} of {} requests ({})", m.succeeded, m.issued, pct(up));
  if (m.issued < 100) {
    g.note = "fewer than 100 requests";
    return g;
  }
  g.status = up >= t.min_uptime ? "pass" : "fail";
  return g;
}

GoNoGo check4(const Targets& t, const Measured& m, const GoNoGo& c1) {
  GoNoGo g{4, "cache-hit rate and blended cost per 1M output tokens", "not_measured", "", "", ""};
  g.required =
      fmt::format("cache hits ≥ {}, cost ≤ {}", pct(t.cache_hit_share),
                  t.plan_cost_per_mtok ? fmt::format("{:.0f} {}", *t.plan_cost_per_mtok, t.currency)
                                       : std::string("(no plan cost)"));
  long long cached = 0, prompts = 0;
  for (const auto& s : m.points) {
    cached += s.cached_tokens;
    prompts += s.prompt_tokens_with_cache_info;
  }
  std::optional<bool> cache_ok, cost_ok;
  std::vector<std::string> measured, notes;
  if (!m.prefix_share_given)
    notes.push_back("no --prefix-share: cache hits not exercised");
  else if (prompts == 0)
    notes.push_back("the server reports no cached_tokens in usage");
  else {
    const double hit = static_cast<double>(cached) / static_cast<double>(prompts);
    measured.push_back("cache hits " + pct(hit));
    cache_ok = hit + 1e-12 >= t.cache_hit_share;
  }
  if (c1.status == "not_measured")
    notes.push_back("cost needs check 1's throughput at the scenario's prompts");
  else if (!t.plan_cost_per_mtok || t.plan_nodes <= 0)
    notes.push_back("the plan prices no self-hosted option for this build");
  else {
    const PointSummary* s = nullptr;
    std::string why;
    s = best_throughput(m, t, true, why);
    const int serving =
        std::max(1, static_cast<int>(std::ceil(t.peak_tok_s / s->output_tokens_per_s - 1e-9)));
    const int nodes = serving + t.reserve_nodes;
    const double cost = *t.plan_cost_per_mtok * nodes / t.plan_nodes;
    measured.push_back(
        fmt::format("{:.0f} {} ({} node(s) at the measured rate)", cost, t.currency, nodes));
    cost_ok = cost <= *t.plan_cost_per_mtok * (1 + 1e-9);
  }
  g.measured = measured.empty() ? "—" : fmt::format("{}", fmt::join(measured, "; "));
  g.note = fmt::format("{}", fmt::join(notes, "; "));
  if ((cache_ok && !*cache_ok) || (cost_ok && !*cost_ok))
    g.status = "fail";
  else if (cache_ok && cost_ok)
    g.status = "pass";
  return g;
}

GoNoGo share_check(int n, const char* name, const std::optional<CheckOutcome>& o,
                   std::optional<double> min, const char* absent) {
  GoNoGo g{n, name, "not_measured", "—", min ? "≥ " + pct(*min) : "(no threshold)", ""};
  if (!o || o->sent == 0) {
    g.note = absent;
    return g;
  }
  g.measured = fmt::format("{} of {} ({})", o->ok, o->sent, pct(o->share()));
  if (!min) {
    g.note = "the scenario sets no /pilot/min_eval_pass_share";
    return g;
  }
  g.status = o->share() + 1e-12 >= *min ? "pass" : "fail";
  return g;
}

}  // namespace

std::vector<GoNoGo> go_no_go(const Targets& t, const Measured& m) {
  std::vector<GoNoGo> out;
  out.push_back(check1(t, m));
  out.push_back(check2(t, m));
  out.push_back(check3(t, m));
  out.push_back(check4(t, m, out.front()));
  out.push_back(
      share_check(5, "tool-call success", m.tools, t.min_tool_success, "no --tool-calls requests"));
  out.push_back(share_check(6, "quality parity on your eval set", m.eval, t.min_eval_share,
                            "no --eval file"));
  return out;
}

Targets plan_targets(const moeplan::plan::PlanScenario& sc, const moeplan::Catalog& cat,
                     const std::string& build) {
  namespace mp = moeplan::plan;
  Targets t;
  const auto& d = sc.demand;
  t.input_tokens = d.input_tokens;
  t.output_tokens = d.output_tokens;
  t.sla = {d.sla_ttft_ms, d.sla_tpot_ms};
  t.cache_hit_share = d.cache_hit_share;
  t.currency = sc.currency;
  t.peak_tok_s = d.peak_output_tokens_per_s();
  t.min_uptime = sc.pilot.min_uptime_share;
  t.min_tool_success = sc.pilot.min_tool_call_success_share;
  t.min_eval_share = sc.pilot.min_eval_pass_share;
  mp::PlanOptions po;
  po.threads = 1;
  po.samples = 64;  // only the deterministic figures are used
  const mp::PlanResult r = mp::run_plan(sc, cat, po);
  const mp::Candidate* c = nullptr;
  if (build.empty()) {
    if (r.recommendation.candidate >= 0)
      c = &r.candidates[static_cast<std::size_t>(r.recommendation.candidate)];
  } else {
    std::vector<std::string> f;
    std::stringstream ss(build);
    for (std::string x; std::getline(ss, x, ',');) f.push_back(x);
    if (f.size() != 4)
      throw moeplan::Error("--build: expected MODEL,DEVICE,GPUS,PRECISION, got '" + build + "'");
    std::vector<std::string> ids;
    for (const auto& x : r.candidates) {
      ids.push_back(x.id);
      if (x.model->id == f[0] && x.device->id == f[1] &&
          std::to_string(x.build.gpus_per_node) == f[2] && x.build.precision == f[3])
        c = &x;
    }
    if (!c)
      throw moeplan::Error(fmt::format("--build {}: not a candidate of {} (candidates: {})", build,
                                       sc.file, fmt::join(ids, "; ")));
  }
  if (c && c->meets_sla && c->nodes > 0) {
    t.candidate = c->id;
    t.plan_nodes = c->nodes;
    t.reserve_nodes = c->reserve_nodes;
    t.required_tok_s_per_node = t.peak_tok_s / std::max(1, c->nodes - c->reserve_nodes);
    t.plan_concurrency = c->concurrency;
    t.plan_cost_per_mtok = c->best_self_host_per_mtok();
    t.predicted_tok_s = c->throughput;
    t.predicted_ttft_ms = c->ttft_ms;
    t.predicted_tpot_ms = c->tpot_ms;
  } else {
    // No self-hosted build in the plan: one node must carry the peak.
    t.required_tok_s_per_node = t.peak_tok_s;
  }
  return t;
}

}  // namespace moeprobe::load
