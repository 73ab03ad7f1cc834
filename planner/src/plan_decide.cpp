// The plan's verdict (docs/plan.md § decision): every option priced as it would be run —
// owning the fleet, renting it for the node-hours the demand profile needs (or 24/7), or the
// API — and the cheapest option no stated constraint rules out is the recommendation. Each
// verdict also says where it flips: the demand at which another option becomes cheaper.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "moeplan/plan.hpp"
#include "moeplan/pricing.hpp"

namespace moeplan::plan {

namespace {

constexpr double kFlipRange = 1000;  // the flip is searched within [demand / 1000, demand × 1000]

// Output tok/s in each hour of a demand day at `scale` × the scenario's requests.
std::vector<double> hourly_rates(const PlanDemand& d, double scale) {
  const double day_rate =
      d.requests_per_day * scale * static_cast<double>(d.output_tokens) / cost::kSecondsPerDay;
  std::vector<double> rate(24, 0.0);
  if (!d.hourly_profile.empty()) {
    double sum = 0;
    for (double w : d.hourly_profile) sum += w;
    for (std::size_t h = 0; h < 24 && h < d.hourly_profile.size(); ++h)
      rate[h] = day_rate * 24 * d.hourly_profile[h] / sum;
    return rate;
  }
  // No profile: the day's tokens arrive in one block of 24 / (peak/average) hours at the peak
  // rate ("business hours"), widened to whole hours.
  const int hours =
      std::clamp(static_cast<int>(std::ceil(24 / std::max(1.0, d.peak_to_average) - 1e-9)), 1, 24);
  for (int h = 0; h < hours; ++h) rate[static_cast<std::size_t>(h)] = day_rate * 24 / hours;
  return rate;
}

int fleet_nodes(const PlanDemand& d, double node_tok_s, int reserve, double scale) {
  const double peak = d.peak_output_tokens_per_s() * scale;
  return std::max(1, static_cast<int>(std::ceil(peak / node_tok_s - 1e-9))) + reserve;
}

struct Choice {
  std::string option;
  double cost = std::numeric_limits<double>::infinity();
};

Choice cheapest(const OptionCosts& oc) {
  Choice c;
  // Ties go to the option that commits least: API, then rent, then owning.
  const std::pair<const char*, const std::optional<double>*> options[] = {
      {"api", &oc.api}, {"rent", &oc.rent}, {"hybrid", &oc.hybrid}, {"buy", &oc.buy}};
  for (const auto& [name, v] : options)
    if (*v && **v < c.cost) c = {name, **v};
  return c;
}

// The demand scale where the cheapest option first differs from the one at scale 1: up first
// (on a 2% geometric grid), then down; bisection to 1e-7 relative. nullopt when it never does
// within kFlipRange.
std::optional<std::pair<double, std::string>> find_flip(const PlanResult& r, const Candidate& best,
                                                        const Candidate* api) {
  const std::string now = cheapest(option_costs(r, best, api, 1)).option;
  for (double dir : {1.02, 1 / 1.02}) {
    double prev = 1;
    for (double s = dir; s <= kFlipRange && s >= 1 / kFlipRange; s *= dir) {
      const std::string o = cheapest(option_costs(r, best, api, s)).option;
      if (o != now) {
        double same = prev, diff = s;
        while (std::abs(diff - same) > 1e-7 * same) {
          const double mid = (same + diff) / 2;
          (cheapest(option_costs(r, best, api, mid)).option == now ? same : diff) = mid;
        }
        return std::make_pair(diff, cheapest(option_costs(r, best, api, diff)).option);
      }
      prev = s;
    }
  }
  return std::nullopt;
}

// The cheapest API among eligible candidates' models (quality floors applied); when no build is
// eligible, among models that at least pass the quality floors.
const Candidate* cheapest_api(const PlanResult& r, bool any_eligible) {
  const Candidate* api = nullptr;
  for (const auto& c : r.candidates) {
    if (!c.api_per_mtok) continue;
    if (any_eligible ? c.eligible : c.quality_ok)
      if (!api || *c.api_per_mtok < *api->api_per_mtok) api = &c;
  }
  return api;
}

void no_eligible_build(PlanResult& r, const Candidate* api) {
  Recommendation& rec = r.recommendation;
  const PlanScenario& sc = r.scenario;
  if (!sc.demand.residency_required && api) {
    rec.option = "api";
    rec.model = api->model->id;
    rec.candidate_id = api->model->id + " | API: " + api->api_label;
    rec.candidate = static_cast<int>(api - r.candidates.data());
    rec.annual_cost = api->api_per_year;
    rec.cost_per_mtok_output = api->api_per_mtok;
    rec.reasons.push_back(
        fmt::format("no build is eligible (fit, SLA, quality, price): call the {} API at {} per "
                    "1M output tokens",
                    api->model->id, fmt_money(*api->api_per_mtok, sc.currency)));
  } else {
    rec.option = "none";
    rec.reasons.push_back(
        sc.demand.residency_required
            ? "residency is mandatory but no build is eligible: widen builds or models"
            : "no build is eligible and no API price is known for the selected models");
  }
  rec.go_no_go = go_no_go_checks(r, nullptr);
}

// "own 67.7M HUF a year (92,694 per 1M output tokens)" for each priced option.
std::string costs_line(const OptionCosts& oc, const Candidate& best, const std::string& cur,
                       bool residency, bool api_known) {
  const double mtok = oc.output_tokens_per_year / cost::kTokensPerMTok;
  auto one = [&](const std::string& name, const std::optional<double>& v) {
    return v ? fmt::format("{} {} ({} per 1M)", name, fmt_money(*v, cur), fmt_money(*v / mtok, cur))
             : name + " not priced";
  };
  std::string s = "yearly cost of serving the demand: " + one("own", oc.buy);
  if (oc.hybrid) s += "; " + one("own and resell idle capacity", oc.hybrid);
  if (best.rent_per_year) {
    s += "; " + one(fmt::format("rent {:.0f} node-hours", oc.rent_node_hours.value_or(0)), oc.rent);
    if (oc.rent && *best.rent_per_year > *oc.rent + 0.5)
      s += "; " + one("rent 24/7", best.rent_per_year);
  }
  if (residency)
    s += "; API ruled out by residency (/demand/residency_required)";
  else if (api_known)
    s += "; " + one("API", oc.api);
  return s;
}

// Owning's payback against renting part-time, when the schedule makes that cheaper than 24/7:
// "" otherwise.
std::string part_time_payback_text(const Candidate& c, bool hybrid) {
  if (!c.rent_part_time_per_year || !c.rent_per_year ||
      !(*c.rent_part_time_per_year < *c.rent_per_year))
    return "";
  const auto& years =
      hybrid ? c.hybrid_payback_vs_rent_part_time_years : c.payback_vs_rent_part_time_years;
  return years ? fmt::format(", against renting part-time {:.2f} years", *years)
               : fmt::format(", against renting part-time not within the {}-month life",
                             c.own_life_months);
}

// The verdict's own line: what is recommended, priced as recommended.
std::string verdict_line(const Recommendation& rec, const Candidate& best, const Candidate* api,
                         const OptionCosts& oc, const PlanScenario& sc) {
  const std::string& cur = sc.currency;
  const std::string tail =
      fmt::format("{} a year, {} per 1M output tokens", fmt_money(*rec.annual_cost, cur),
                  fmt_money(*rec.cost_per_mtok_output, cur));
  if (rec.option == "rent") {
    const double full = best.nodes * best.rent_billed_hours_per_year;
    const bool part = *oc.rent_node_hours < full - 0.5;
    return fmt::format(
        "rent {} node(s) of {} {} ({}): {:.0f} node-hours a year at {} per node-hour{}: {}",
        best.nodes, best.system.id.empty() ? best.id : best.system.id,
        part ? "part-time" : "around the clock", best.rent_price_basis, *oc.rent_node_hours,
        fmt_money(best.rent_per_node_hour.value_or(0), cur),
        part ? fmt::format(" ({:.0f}% of 24/7; schedule {})", *oc.rent_node_hours / full * 100,
                           best.rent_schedule_note)
             : "",
        tail);
  }
  if (rec.option == "api")
    return fmt::format("use the {} API ({}): {}", api->model->id, api->api_label, tail);
  // A hybrid's paybacks count the resale revenue, as its yearly cost does.
  const bool hybrid = rec.option == "hybrid";
  const auto& payback = hybrid ? best.hybrid_payback_vs_rent_years : best.payback_vs_rent_years;
  return fmt::format("own {} node(s) of {}{} ({}{}): {}; payback against renting 24/7 {}{}",
                     best.nodes_owned, best.system.id.empty() ? best.id : best.system.id,
                     best.nodes_owned > best.nodes
                         ? fmt::format(" (bought in units of {}; {} serve the demand)",
                                       best.system.purchase_unit_nodes, best.nodes)
                         : "",
                     best.own_price_basis, hybrid ? ", reselling idle capacity" : "", tail,
                     payback ? fmt::format("{:.2f} years", *payback)
                     : best.rent_per_year
                         ? fmt::format("not within the node's {}-month life", best.own_life_months)
                         : std::string("not known (renting is not costed)"),
                     part_time_payback_text(best, hybrid));
}

// Cheaper options that a constraint rules out, named with the constraint.
void ruled_out_reasons(PlanResult& r, const Candidate* api) {
  Recommendation& rec = r.recommendation;
  const PlanScenario& sc = r.scenario;
  const double mtok = sc.demand.output_tokens_per_year() / cost::kTokensPerMTok;
  int shown = 0;
  for (const auto& c : r.candidates) {
    if (c.eligible || shown >= 3) continue;
    std::optional<double> y;
    for (const auto& v : {c.own_per_year, c.rent_part_time_per_year, c.rent_per_year})
      if (v && (!y || *v < *y)) y = v;
    if (y && *y < *rec.annual_cost && !c.excluded.empty()) {
      rec.reasons.push_back(fmt::format("cheaper but ruled out: {} at {} per 1M output tokens ({})",
                                        c.id, fmt_money(*y / mtok, sc.currency),
                                        c.excluded.front()));
      ++shown;
    }
  }
  if (sc.demand.residency_required && api && api->api_per_year &&
      *api->api_per_year < *rec.annual_cost)
    rec.reasons.push_back(
        fmt::format("cheaper but ruled out: the {} API at {} a year (residency is mandatory)",
                    api->model->id, fmt_money(*api->api_per_year, sc.currency)));
}

}  // namespace

double rent_node_hours(const RentSchedule& s, const PlanDemand& d, double node_tok_s,
                       int reserve_nodes, int fleet, double scale) {
  const double full = fleet * cost::kHoursPerYear;
  if (s.mode == "24x7" || !(node_tok_s > 0)) return full;
  const std::vector<double> rate = hourly_rates(d, scale);
  std::vector<int> nodes(24, 0);
  for (std::size_t h = 0; h < 24; ++h)
    if (rate[h] > 0)
      nodes[h] = static_cast<int>(std::ceil(rate[h] / node_tok_s - 1e-9)) + reserve_nodes;
  double per_day = 0;
  for (int n : nodes) per_day += n;
  if (s.mode == "autoscale") {
    // Each node started when the hour before needed fewer pays its cold start, and no start
    // bills less than the minimum unit.
    int starts = 0;
    for (std::size_t h = 0; h < 24; ++h) starts += std::max(0, nodes[h] - nodes[(h + 23) % 24]);
    per_day += starts * s.cold_start_s / 3600.0;
    per_day = std::max(per_day, starts * s.min_billing_hours);
  }
  return std::min(full, per_day * d.days_per_year);
}

OptionCosts option_costs(const PlanResult& r, const Candidate& best, const Candidate* api,
                         double scale) {
  const PlanScenario& sc = r.scenario;
  const PlanDemand& d = sc.demand;
  OptionCosts oc;
  oc.output_tokens_per_year = d.output_tokens_per_year() * scale;
  const int n = fleet_nodes(d, best.throughput, best.reserve_nodes, scale);
  if (best.own_per_year && best.nodes_owned > 0) {
    // Owning pays for whole purchase units: a GB200 rack costs the same for 2 trays of demand as
    // for 18, so the cost follows the units owned at this scale, not the nodes needed.
    const int owned = pricing::nodes_to_own(best.system, n);
    oc.buy = *best.own_per_year / best.nodes_owned * owned;
    // Reselling idle capacity of the owned fleet: revenue per sold tok/s as at the scenario's
    // demand.
    const double avg = d.average_output_tokens_per_s();
    const double sold1 =
        sc.resale ? sellable_tok_s(best.nodes_owned, best.reserve_nodes, best.throughput, avg) *
                        sc.resale->sold_share
                  : 0.0;
    if (best.resale_revenue_per_year && sold1 > 0) {
      const double sold = sellable_tok_s(owned, best.reserve_nodes, best.throughput, avg * scale) *
                          sc.resale->sold_share;
      oc.hybrid = *oc.buy - *best.resale_revenue_per_year / sold1 * sold;
    }
  }
  if (best.rent_per_node_hour) {
    oc.rent_node_hours = best.rent_billed_node_hours(
        rent_node_hours(sc.rent_schedule, d, best.throughput, best.reserve_nodes, n, scale), n);
    oc.rent = *oc.rent_node_hours * *best.rent_per_node_hour;
  }
  if (api && api->api_per_year && !d.residency_required) oc.api = *api->api_per_year * scale;
  return oc;
}

void decide(PlanResult& r) {
  Recommendation& rec = r.recommendation;
  rec = {};
  const PlanScenario& sc = r.scenario;
  const std::string& cur = sc.currency;
  const Candidate* best = nullptr;
  for (int i : r.ranking)
    if (r.candidates[static_cast<std::size_t>(i)].eligible) {
      best = &r.candidates[static_cast<std::size_t>(i)];
      rec.candidate = i;
      break;
    }
  const Candidate* api = cheapest_api(r, best != nullptr);
  rec.reasons.push_back(fmt::format(
      "demand: {:.0f} requests/day × {} out tokens = {:.1f} output tok/s on an open day, {:.1f} "
      "at peak (peak/average {:.2f}); {:.1f} averaged over the year ({:.0f} open days)",
      sc.demand.requests_per_day, sc.demand.output_tokens,
      sc.demand.open_day_average_output_tokens_per_s(), sc.demand.peak_output_tokens_per_s(),
      sc.demand.peak_to_average, sc.demand.average_output_tokens_per_s(), sc.demand.days_per_year));
  if (!best) return no_eligible_build(r, api);

  rec.candidate_id = best->id;
  rec.model = best->model->id;
  // best->nodes already counts the spare: name the peak's nodes and the total apart.
  const int peak_nodes = best->nodes - best->reserve_nodes;
  rec.reasons.push_back(fmt::format(
      "best build: {} serves {:.0f} output tok/s per node within the SLA ({}); {} node(s) cover "
      "the peak{}, running at {:.1f}% average utilization",
      best->id, best->throughput, best->perf_note, peak_nodes,
      best->reserve_nodes ? fmt::format(", plus one N+1 spare: {} in all", best->nodes) : "",
      best->utilization * 100));
  if (sc.demand.residency_required)
    rec.reasons.push_back(
        "residency is mandatory (/demand/residency_required): the API is ruled out, self-host");
  else if (!api)
    rec.reasons.push_back("no API price is known for the eligible models: self-host");
  else
    rec.reasons.push_back(
        fmt::format("residency is not mandatory: compare with the API ({} at {} per 1M output "
                    "tokens, input included)",
                    api->model->id, fmt_money(*api->api_per_mtok, cur)));

  const OptionCosts oc = option_costs(r, *best, api, 1);
  rec.reasons.push_back(costs_line(oc, *best, cur, sc.demand.residency_required, api != nullptr));
  const Choice ch = cheapest(oc);
  if (ch.option.empty()) {
    rec.option = "none";
    rec.reasons.push_back("neither owning, renting nor an API could be priced");
    rec.go_no_go = go_no_go_checks(r, nullptr);
    return;
  }
  rec.option = ch.option;
  rec.annual_cost = ch.cost;
  rec.cost_per_mtok_output = ch.cost / (oc.output_tokens_per_year / cost::kTokensPerMTok);
  if (rec.option == "rent") rec.rent_node_hours_per_year = oc.rent_node_hours;
  if (rec.option == "api") {
    rec.model = api->model->id;
    rec.candidate_id = api->model->id + " | API: " + api->api_label;
    rec.candidate = static_cast<int>(api - r.candidates.data());
  }
  rec.reasons.push_back("cheapest eligible option: " + verdict_line(rec, *best, api, oc, sc));
  ruled_out_reasons(r, api);

  if (const auto f = find_flip(r, *best, api)) {
    Flip fl;
    fl.requests_per_day = sc.demand.requests_per_day * f->first;
    fl.output_tokens_per_month = sc.demand.output_tokens_per_year() * f->first / 12;
    fl.to = f->second;
    rec.flips_at = fl;
    rec.reasons.push_back(fmt::format(
        "flips at about {:.0f} requests/day ({:.3g} output tokens a month): {} becomes cheaper "
        "({} demand)",
        fl.requests_per_day, fl.output_tokens_per_month, fl.to, f->first > 1 ? "higher" : "lower"));
  } else {
    rec.reasons.push_back(fmt::format(
        "no demand between {:.0f} and {:.0f} requests/day changes the verdict with this build, "
        "profile and these prices",
        sc.demand.requests_per_day / kFlipRange, sc.demand.requests_per_day * kFlipRange));
  }
  if (rec.option == "rent" || rec.option == "buy" || rec.option == "hybrid")
    rec.reasons.push_back(
        "before buying, rent the build for a pilot and pass all six go/no-go checks");
  rec.go_no_go = go_no_go_checks(r, rec.option == "api" ? nullptr : best,
                                 rec.option == "api" ? std::nullopt : rec.cost_per_mtok_output);
}

}  // namespace moeplan::plan
