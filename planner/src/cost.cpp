// Cost model (docs/cost.md). Pure math first, then analyze() which wires the
// formulas together, then the report builder.
#include "moeplan/cost.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace moeplan::cost {

namespace {

void require(bool ok, const char* what) {
  if (!ok) throw std::invalid_argument(std::string("cost model: ") + what);
}

}  // namespace

double convert(double amount, double from_per_usd, double to_per_usd) {
  require(from_per_usd > 0 && to_per_usd > 0, "FX rates must be > 0");
  if (from_per_usd == to_per_usd) return amount;
  return amount / from_per_usd * to_per_usd;
}

double net_of_vat(double price, bool includes_vat, double vat_rate) {
  require(vat_rate >= 0 && vat_rate <= 1, "VAT rate must be within [0, 1]");
  return includes_vat ? price / (1 + vat_rate) : price;
}

double gross_of_vat(double net, double vat_rate) {
  require(vat_rate >= 0 && vat_rate <= 1, "VAT rate must be within [0, 1]");
  return net * (1 + vat_rate);
}

double economic_capex(double net, double vat_rate, bool vat_recoverable) {
  return vat_recoverable ? net : gross_of_vat(net, vat_rate);
}

double node_power_w(int gpus, double tdp_w, double load_share, double other_system_w) {
  require(gpus >= 0 && tdp_w >= 0 && load_share >= 0 && other_system_w >= 0,
          "power inputs must be >= 0");
  return gpus * tdp_w * load_share + other_system_w;
}

double electricity_per_month(double wall_w, double pue, double price_per_kwh, double month_hours) {
  require(pue >= 1, "PUE must be >= 1");
  require(month_hours > 0, "month_hours must be > 0");
  return wall_w / 1000.0 * month_hours * pue * price_per_kwh;
}

double rent_per_month_from_hourly(double per_gpu_hour, int gpus, double hours_per_month) {
  require(gpus > 0 && hours_per_month > 0, "GPU count and hours must be > 0");
  return per_gpu_hour * gpus * hours_per_month;
}

double price_per_mtok_output(double p_in, double p_cache, double p_out, double input_per_output,
                             double cache_hit_share) {
  require(cache_hit_share >= 0 && cache_hit_share <= 1, "cache-hit share must be within [0, 1]");
  require(input_per_output >= 0, "input:output ratio must be >= 0");
  return p_out + input_per_output * ((1 - cache_hit_share) * p_in + cache_hit_share * p_cache);
}

double tokens_per_year(double tokens_per_s, double days) {
  return tokens_per_s * kSecondsPerDay * days;
}

double cost_per_mtok(double cost_per_year, double tokens_per_yr) {
  require(tokens_per_yr > 0, "token volume must be > 0");
  return cost_per_year / (tokens_per_yr / kTokensPerMTok);
}

double node_cost_per_mtok(double cost_per_year, double capacity_tok_s, double utilization) {
  require(capacity_tok_s > 0, "node capacity must be > 0");
  require(utilization > 0 && utilization <= 1, "utilization must be within (0, 1]");
  return cost_per_mtok(cost_per_year, tokens_per_year(capacity_tok_s * utilization));
}

double break_even_tokens_per_s(double cost_per_year, double price_per_mtok) {
  require(price_per_mtok > 0, "price per 1M tokens must be > 0");
  return cost_per_year / price_per_mtok * kTokensPerMTok / kSecondsPerYear;
}

double electricity_per_mtok(double system_w, double tokens_per_s, double price_per_kwh,
                            double pue) {
  require(tokens_per_s > 0, "tokens per second must be > 0");
  require(pue >= 1, "PUE must be >= 1");
  const double mtok_per_hour = tokens_per_s * 3600.0 / kTokensPerMTok;
  return system_w / 1000.0 * pue * price_per_kwh / mtok_per_hour;
}

double own_tco(double capex, double opex_per_year, double life_years, double residual) {
  require(life_years > 0, "life must be > 0");
  return capex + opex_per_year * life_years - residual;
}

std::optional<double> payback_months(double capex, double opex_per_year, double residual,
                                     double life_months, double alt_per_year) {
  require(life_months > 0, "life must be > 0");
  const double saving_per_month = (alt_per_year - opex_per_year) / kMonthsPerYear;
  if (capex <= 0) return saving_per_month >= 0 ? std::optional<double>(0.0) : std::nullopt;
  // Inside the life the gap is capex − saving × t: closed while the curves are still straight.
  if (saving_per_month > 0 && capex < saving_per_month * life_months)
    return capex / saving_per_month;
  // At the end of the life the node is sold; a relative hair of rounding counts as even, so a
  // node that exactly breaks even over its life (ROI 0) is said to pay back.
  const double gap_at_end = capex - saving_per_month * life_months - residual;
  if (gap_at_end <= 1e-12 * capex) return life_months;
  return std::nullopt;
}

std::optional<double> payback_years(double capex, double opex_per_year, double residual,
                                    double life_months, double alt_per_year) {
  const auto m = payback_months(capex, opex_per_year, residual, life_months, alt_per_year);
  return m ? std::optional<double>(*m / kMonthsPerYear) : std::nullopt;
}

std::optional<double> simple_payback_months(double capex, double alt_per_month, double residual,
                                            double life_months) {
  if (!(alt_per_month > 0)) return std::nullopt;
  return payback_months(capex, 0.0, residual, life_months, alt_per_month * kMonthsPerYear);
}

double roi(double avoided_cost, double own_cost) {
  require(own_cost > 0, "ROI needs a positive own cost");
  return (avoided_cost - own_cost) / own_cost;
}

double value_needed_per_year(double tco, double life_years, double target_roi) {
  require(life_years > 0, "life must be > 0");
  return (1 + target_roi) * tco / life_years;
}

double rent_to_own_threshold(double own_per_year, double rent_per_year) {
  require(rent_per_year > 0, "rent must be > 0");
  return own_per_year / rent_per_year;
}

double hourly_rate(double fte_cost_per_year, double hours_per_fte_year) {
  require(hours_per_fte_year > 0, "hours per FTE-year must be > 0");
  return fte_cost_per_year / hours_per_fte_year;
}

double value_of_hours_saved(double users, double hours_per_user_per_day, double days_per_year,
                            double rate_per_hour) {
  return users * hours_per_user_per_day * days_per_year * rate_per_hour;
}

double routing_weight(double price) {
  require(price > 0, "routing price must be > 0");
  return 1.0 / (price * price);
}

double routing_share(double own_price, const std::vector<double>& competitor_prices) {
  double total = routing_weight(own_price);
  for (double p : competitor_prices) total += routing_weight(p);
  return routing_weight(own_price) / total;
}

// ---------------------------------------------------------------------------
// Curves

double CostCurve::at(double t) const {
  const int h = horizon();
  require(t >= 0 && t <= h + 1e-9, "month outside the horizon");
  double v = 0;
  const int whole = std::min(static_cast<int>(std::floor(t)), h);
  for (int m = 0; m <= whole; ++m) v += step[m];
  for (int m = 0; m < whole; ++m) v += rate[m];
  if (whole < h) v += rate[whole] * (t - whole);
  return v;
}

std::vector<double> CostCurve::monthly_cumulative() const {
  std::vector<double> out(step.size());
  double v = 0;
  for (std::size_t m = 0; m < step.size(); ++m) {
    if (m > 0) v += rate[m - 1];
    v += step[m];
    out[m] = v;
  }
  return out;
}

double CostCurve::present_value(double yearly_rate) const {
  require(yearly_rate > -1, "discount rate must be > -100%");
  auto df = [&](double month) { return std::pow(1 + yearly_rate, -month / kMonthsPerYear); };
  double pv = 0;
  for (std::size_t m = 0; m < step.size(); ++m) pv += step[m] * df(static_cast<double>(m));
  for (std::size_t m = 0; m < rate.size(); ++m) pv += rate[m] * df(static_cast<double>(m + 1));
  return pv;
}

CostCurve flat_curve(double per_month, int horizon_months) {
  require(horizon_months > 0, "horizon must be > 0");
  CostCurve c;
  c.step.assign(static_cast<std::size_t>(horizon_months) + 1, 0.0);
  c.rate.assign(static_cast<std::size_t>(horizon_months), per_month);
  return c;
}

CostCurve own_curve(double capex, double opex_per_month, double residual, int life_months,
                    int horizon_months) {
  require(life_months > 0, "life must be > 0");
  CostCurve c = flat_curve(opex_per_month, horizon_months);
  c.step[0] = capex;
  for (int m = life_months; m <= horizon_months; m += life_months) {
    c.step[m] -= residual;
    if (m < horizon_months) c.step[m] += capex;  // bought again for the rest of the horizon
  }
  return c;
}

double held_value_at_horizon(double capex, double residual, int life_months, int horizon_months) {
  require(life_months > 0 && horizon_months > 0, "life and horizon must be > 0");
  const int age = horizon_months % life_months;
  if (age == 0) return 0.0;
  return capex - (capex - residual) * static_cast<double>(age) / life_months;
}

std::optional<double> crossover_month(const CostCurve& a, const CostCurve& b) {
  require(a.horizon() == b.horizon(), "curves must share a horizon");
  const int h = a.horizon();
  int sign = 0;            // who is dearer: +1 a, −1 b, 0 not yet known
  double zero_since = -1;  // time the difference touched 0 while sign was set; −1: not touching
  auto sgn = [](double d) {
    // Differences below a relative hair are ties (sums of the same numbers in a different order).
    return d > 1e-9 ? 1 : (d < -1e-9 ? -1 : 0);
  };
  // Visits a point of the difference curve reached at time t.
  auto visit = [&](double t, double d) -> std::optional<double> {
    const int s = sgn(d);
    if (s == 0) {
      if (sign != 0 && zero_since < 0) zero_since = t;
      return std::nullopt;
    }
    if (sign == 0) {
      sign = s;
      return std::nullopt;
    }
    if (s == -sign) return zero_since >= 0 ? zero_since : t;
    zero_since = -1;
    return std::nullopt;
  };
  double d = 0;  // difference at the left limit of month m
  for (int m = 0; m <= h; ++m) {
    // Step at month m.
    const double after = d + a.step[m] - b.step[m];
    if (auto x = visit(m, after)) return x;
    d = after;
    if (m == h) break;
    // Linear accrual during month m.
    const double end = d + a.rate[m] - b.rate[m];
    const int s0 = sgn(d), s1 = sgn(end);
    if (sign != 0 && s0 == sign && s1 == -sign) return m + d / (d - end);
    if (auto x = visit(m + 1, end)) return x;
    d = end;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------
// Analysis

const OptionResult* CostAnalysis::option(const std::string& id) const {
  for (const auto& o : options)
    if (o.id == id) return &o;
  return nullptr;
}

const PairResult* CostAnalysis::pair(const std::string& a, const std::string& b) const {
  for (const auto& p : pairs)
    if (p.a == a && p.b == b) return &p;
  return nullptr;
}

namespace {

// What owning costs: cash opex per year, TCO over the life, and that TCO per life year (all zero
// without a buy option).
struct OwnCosts {
  double per_year = 0, opex_per_year = 0, tco_life = 0;
};

OwnCosts own_costs(const std::optional<BuyInputs>& buy) {
  OwnCosts c;
  if (!buy) return c;
  c.opex_per_year = buy->opex_per_year;
  c.tco_life = own_tco(buy->capex(), c.opex_per_year, buy->life_years(), buy->residual());
  c.per_year = c.tco_life / buy->life_years();
  return c;
}

// Cost per 1M output tokens at the scenario's demand; none without a yearly volume.
std::optional<double> per_mtok_at_demand(const CostInputs& in, double per_year) {
  if (!in.demand || !(in.demand->output_tokens_per_year > 0)) return std::nullopt;
  return cost_per_mtok(per_year, in.demand->output_tokens_per_year);
}

BuyBreakdown buy_breakdown(const CostInputs& in, const OwnCosts& own) {
  const BuyInputs& b = *in.buy;
  BuyBreakdown bd;
  bd.capex_net = b.capex_net;
  bd.capex_gross = gross_of_vat(b.capex_net, b.vat_rate);
  bd.capex_economic = b.capex();
  bd.capex_net_low = b.capex_net_low;
  bd.capex_net_high = b.capex_net_high;
  bd.capex_gross_low = gross_of_vat(b.capex_net_low, b.vat_rate);
  bd.capex_gross_high = gross_of_vat(b.capex_net_high, b.vat_rate);
  bd.residual = b.residual();
  bd.depreciation_per_month = (b.capex() - b.residual()) / b.life_months;
  if (b.wall_power_w > 0) {
    bd.power_it_per_month =
        electricity_per_month(b.wall_power_w, 1.0, b.electricity_per_kwh, in.month_hours);
    bd.power_per_month =
        electricity_per_month(b.wall_power_w, b.pue, b.electricity_per_kwh, in.month_hours);
  }
  bd.colo_per_month = b.colo_per_month;
  bd.staff_per_month = b.staff_per_year / kMonthsPerYear;
  bd.warranty_per_month = b.warranty_per_year / kMonthsPerYear;
  bd.other_per_month = b.other_per_year / kMonthsPerYear;
  bd.opex_per_month = own.opex_per_year / kMonthsPerYear;
  bd.tco_life = own.tco_life;
  bd.simple_payback_vs_rent_months = std::numeric_limits<double>::quiet_NaN();
  return bd;
}

// The options present (buy, rent, api, in that order) with their curves over the horizon, and
// owning's breakdown and value thresholds.
void add_options(CostAnalysis& out, const CostInputs& in, const OwnCosts& own) {
  const int h = in.horizon_months;
  if (in.buy) {
    const BuyInputs& b = *in.buy;
    OptionResult o;
    o.id = "buy";
    o.label = b.label;
    o.curve =
        own_curve(b.capex(), own.opex_per_year / kMonthsPerYear, b.residual(), b.life_months, h);
    o.held_value_at_horizon = held_value_at_horizon(b.capex(), b.residual(), b.life_months, h);
    o.cost_per_year = own.per_year;
    o.cost_per_mtok_output = per_mtok_at_demand(in, own.per_year);
    out.options.push_back(std::move(o));
    out.buy = buy_breakdown(in, own);
    out.value_break_even = value_needed_per_year(own.tco_life, b.life_years(), 0.0);
    out.value_roi_50 = value_needed_per_year(own.tco_life, b.life_years(), 0.5);
    out.value_roi_100 = value_needed_per_year(own.tco_life, b.life_years(), 1.0);
  }
  if (in.rent) {
    OptionResult o;
    o.id = "rent";
    o.label = "rent (" + in.rent->kind + ")";
    o.curve = flat_curve(in.rent->per_month, h);
    o.cost_per_year = in.rent->per_month * kMonthsPerYear;
    o.cost_per_mtok_output = per_mtok_at_demand(in, o.cost_per_year);
    out.options.push_back(std::move(o));
  }
  if (in.api) {
    require(in.demand.has_value(), "the API option needs a demand");
    const ApiInputs& p = *in.api;
    const double r =
        price_per_mtok_output(p.input_per_mtok, p.cached_input_per_mtok, p.output_per_mtok,
                              in.demand->input_per_output, in.demand->cache_hit_share);
    out.api_per_mtok_output = r;
    OptionResult o;
    o.id = "api";
    o.label = p.label;
    o.cost_per_year = r * in.demand->output_tokens_per_year / kTokensPerMTok;
    o.curve = flat_curve(o.cost_per_year / kMonthsPerYear, h);
    o.cost_per_mtok_output =
        in.demand->output_tokens_per_year > 0 ? std::optional<double>(r) : std::nullopt;
    out.options.push_back(std::move(o));
  }
  const double discount = in.buy ? in.buy->discount_rate : 0.0;
  // The cumulative cash out, less what is still held at the end (valued at the horizon's month).
  for (auto& o : out.options) {
    o.total_cost = o.curve.at(h) - o.held_value_at_horizon;
    o.present_cost = o.curve.present_value(discount) -
                     o.held_value_at_horizon * std::pow(1 + discount, -h / kMonthsPerYear);
  }
}

// Pairs, in the fixed order buy/rent, buy/api, rent/api (those whose both options are present).
std::vector<PairResult> compare_pairs(const CostAnalysis& out, const CostInputs& in,
                                      const OwnCosts& own) {
  std::vector<PairResult> pairs;
  const char* kPairs[][2] = {{"buy", "rent"}, {"buy", "api"}, {"rent", "api"}};
  for (const auto& pr : kPairs) {
    const OptionResult* a = out.option(pr[0]);
    const OptionResult* b = out.option(pr[1]);
    if (!a || !b) continue;
    PairResult p;
    p.a = a->id;
    p.b = b->id;
    p.crossover_month = crossover_month(a->curve, b->curve);
    if (a->id == "buy") {
      const BuyInputs& buy = *in.buy;
      p.payback_years = payback_years(buy.capex(), own.opex_per_year, buy.residual(),
                                      buy.life_months, b->cost_per_year);
      p.savings_per_year = b->cost_per_year - own.opex_per_year;
      p.roi = own.tco_life > 0 ? roi(b->cost_per_year * in.buy->life_years(), own.tco_life) : 0.0;
    } else {
      p.savings_per_year = b->cost_per_year - a->cost_per_year;
      p.roi = a->cost_per_year > 0 ? roi(b->cost_per_year, a->cost_per_year) : 0.0;
    }
    p.npv = b->present_cost - a->present_cost;
    pairs.push_back(p);
  }
  return pairs;
}

// Simple payback against rent, the utilization above which owning beats renting, and the
// sustained demand at which owning or renting matches the API per token.
void set_break_evens(CostAnalysis& out, const CostInputs& in, const OwnCosts& own) {
  if (in.buy && in.rent) {
    out.simple_payback_months = simple_payback_months(in.buy->capex(), in.rent->per_month,
                                                      in.buy->residual(), in.buy->life_months);
    if (out.simple_payback_months)
      out.buy->simple_payback_vs_rent_months = *out.simple_payback_months;
    out.rent_to_own_threshold =
        rent_to_own_threshold(own.per_year, in.rent->per_month * kMonthsPerYear);
  }
  if (out.api_per_mtok_output && *out.api_per_mtok_output > 0) {
    if (in.buy)
      out.own_matches_api_tok_s = break_even_tokens_per_s(own.per_year, *out.api_per_mtok_output);
    if (in.rent)
      out.rent_matches_api_tok_s =
          break_even_tokens_per_s(in.rent->per_month * kMonthsPerYear, *out.api_per_mtok_output);
  }
}

// Cost per 1M output tokens against node utilization: 5% .. 100% in 5% steps (integer steps so
// 100% is exact); empty without a node capacity or an option.
std::vector<FlexionPoint> flexion_curve(const CostInputs& in, const OwnCosts& own,
                                        std::optional<double> api_per_mtok) {
  std::vector<FlexionPoint> curve;
  if (!in.node_capacity_tok_s || !(in.buy || in.rent || in.api)) return curve;
  for (int k = 1; k <= 20; ++k) {
    FlexionPoint f;
    f.utilization = k / 20.0;
    if (in.buy) f.own = node_cost_per_mtok(own.per_year, *in.node_capacity_tok_s, f.utilization);
    if (in.rent)
      f.rent = node_cost_per_mtok(in.rent->per_month * kMonthsPerYear, *in.node_capacity_tok_s,
                                  f.utilization);
    f.api = api_per_mtok;
    curve.push_back(f);
  }
  return curve;
}

// Each option per year in staff hours and FTE, and the ROI of the hours it saves.
PeopleResult people_result(const PeopleInputs& pp, const std::vector<OptionResult>& options) {
  PeopleResult r;
  r.hourly_rate = hourly_rate(pp.fte_cost_per_year, pp.hours_per_fte_year);
  r.hours_saved_per_year = pp.users * pp.hours_saved_per_user_per_day * pp.working_days_per_year;
  r.value_per_year = value_of_hours_saved(pp.users, pp.hours_saved_per_user_per_day,
                                          pp.working_days_per_year, r.hourly_rate);
  for (const auto& o : options) {
    PeopleResult::PerOption po;
    po.id = o.id;
    po.cost_per_year = o.cost_per_year;
    po.hours = o.cost_per_year / r.hourly_rate;
    po.fte = po.hours / pp.hours_per_fte_year;
    po.roi_of_savings = o.cost_per_year > 0 ? roi(r.value_per_year, o.cost_per_year) : 0.0;
    r.options.push_back(po);
  }
  return r;
}

// A provider's revenue per 1M output tokens per traffic mix, the owned node's payback at the
// share sold, and the price-weighted routing share against competitors.
ProviderResult provider_result(const CostInputs& in, const OwnCosts& own) {
  const ProviderInputs& pv = *in.provider;
  ProviderResult r;
  for (const auto& mix : pv.mixes) {
    ProviderMixResult m;
    m.name = mix.name;
    m.input_per_output = mix.input_tokens / mix.output_tokens;
    m.revenue_usd_per_mtok =
        price_per_mtok_output(pv.input_usd_per_mtok, pv.cached_input_usd_per_mtok,
                              pv.output_usd_per_mtok, m.input_per_output, pv.cache_hit_share);
    m.revenue_per_mtok = m.revenue_usd_per_mtok * in.fx_per_usd;
    m.revenue_per_tok_s_month = m.revenue_per_mtok * 3600.0 * in.month_hours / kTokensPerMTok;
    if (in.buy && in.node_capacity_tok_s && pv.sold_utilization) {
      const double revenue_year = m.revenue_per_mtok *
                                  tokens_per_year(*in.node_capacity_tok_s * *pv.sold_utilization) /
                                  kTokensPerMTok;
      m.payback_years = payback_years(in.buy->capex(), own.opex_per_year, in.buy->residual(),
                                      in.buy->life_months, revenue_year);
    }
    r.mixes.push_back(m);
  }
  if (!pv.competitor_prices_usd_per_mtok.empty()) {
    r.routing_share = routing_share(pv.own_price_usd_per_mtok, pv.competitor_prices_usd_per_mtok);
    for (double c : pv.competitor_prices_usd_per_mtok)
      r.routing_ratio.emplace_back(c,
                                   routing_weight(pv.own_price_usd_per_mtok) / routing_weight(c));
  }
  return r;
}

std::vector<PowerOnlyResult> power_only_results(const CostInputs& in) {
  std::vector<PowerOnlyResult> out;
  for (const auto& s : in.power_only->systems) {
    PowerOnlyResult r;
    r.name = s.name;
    r.system_w = s.system_w;
    r.tokens_per_s = s.tokens_per_s;
    r.cost_per_mtok = electricity_per_mtok(s.system_w, s.tokens_per_s,
                                           in.power_only->electricity_per_kwh, in.power_only->pue);
    r.cost_per_month = electricity_per_month(s.system_w, in.power_only->pue,
                                             in.power_only->electricity_per_kwh, in.month_hours);
    out.push_back(r);
  }
  return out;
}

// One line per verdict: the cheapest option, where pairs cross, and the break-evens.
std::vector<std::string> verdicts(const CostInputs& in, const CostAnalysis& out) {
  std::vector<std::string> msgs;
  const std::string& cur = in.currency;
  auto money = [&](double v) {
    const double a = std::fabs(v);
    if (a >= 1e6) return fmt::format("{:.1f}M {}", v / 1e6, cur);
    if (a >= 1e3) return fmt::format("{:.1f}k {}", v / 1e3, cur);
    return fmt::format("{:.3g} {}", v, cur);
  };
  if (!out.options.empty()) {
    const auto best =
        std::min_element(out.options.begin(), out.options.end(),
                         [](const auto& x, const auto& y) { return x.total_cost < y.total_cost; });
    msgs.push_back(fmt::format("Cheapest over {} months: {} ({}).", in.horizon_months, best->label,
                               money(best->total_cost)));
  }
  for (const auto& p : out.pairs) {
    if (p.crossover_month)
      msgs.push_back(fmt::format("{} and {} cross at month {:.1f}.", p.a, p.b, *p.crossover_month));
    // Seeds quote capex / saving even where it outlasts the node (C3: 7.4 years on a 3-year
    // life); say how far it is instead of printing it as a payback.
    if (p.a == "buy" && !p.payback_years) {
      const double capex = in.buy->capex();
      msgs.push_back(
          p.savings_per_year > 0
              ? fmt::format("{} does not pay back against {} within its {}-month life: {} capex "
                            "at {} saved a year would take {:.1f} years.",
                            p.a, p.b, in.buy->life_months, money(capex), money(p.savings_per_year),
                            capex / p.savings_per_year)
              : fmt::format("{} does not pay back against {} within its {}-month life: it saves "
                            "nothing a year.",
                            p.a, p.b, in.buy->life_months));
    }
  }
  // Above 100% the threshold is out of reach: say so rather than print an impossible share.
  if (out.rent_to_own_threshold && *out.rent_to_own_threshold > 1.0)
    msgs.push_back(
        fmt::format("Owning never beats renting 24/7 over the {}-month life: it would take {:.0f}% "
                    "time-utilization, more than the node has.",
                    in.buy->life_months, *out.rent_to_own_threshold * 100));
  else if (out.rent_to_own_threshold)
    msgs.push_back(fmt::format(
        "Owning beats renting 24/7 only above {:.0f}% time-utilization over the {}-month life.",
        *out.rent_to_own_threshold * 100, in.buy->life_months));
  if (out.own_matches_api_tok_s && in.node_capacity_tok_s &&
      *out.own_matches_api_tok_s > *in.node_capacity_tok_s)
    msgs.push_back(fmt::format(
        "Owning never matches the API per token within one node: it would need {:.0f} output tok/s "
        "sustained, above the node's {:.0f}.",
        *out.own_matches_api_tok_s, *in.node_capacity_tok_s));
  return msgs;
}

}  // namespace

CostAnalysis analyze(const CostInputs& in) {
  require(in.horizon_months > 0, "horizon must be > 0");
  CostAnalysis out;
  if (in.demand && in.node_capacity_tok_s) {
    // Utilization is over the calendar year (closed days idle, as plan reports it); the node
    // must still serve the rate of an open day.
    out.node_utilization = in.demand->average_tokens_per_s() / *in.node_capacity_tok_s;
    require(in.demand->open_day_tokens_per_s() <= *in.node_capacity_tok_s * (1 + 1e-12),
            "demand exceeds the node's capacity");
  }
  const OwnCosts own = own_costs(in.buy);
  add_options(out, in, own);
  out.pairs = compare_pairs(out, in, own);
  set_break_evens(out, in, own);
  out.flexion = flexion_curve(in, own, out.api_per_mtok_output);
  if (in.people) out.people = people_result(*in.people, out.options);
  if (in.provider) out.provider = provider_result(in, own);
  if (in.power_only) out.power_only = power_only_results(in);
  out.messages = verdicts(in, out);
  return out;
}

// ---------------------------------------------------------------------------
// Report

namespace {

Json opt_json(const std::optional<double>& v) {
  return v && std::isfinite(*v) ? Json(*v) : Json(nullptr);
}

Cell opt_cell(const std::optional<double>& v, int decimals = -1) {
  return v && std::isfinite(*v) ? Cell(*v, decimals) : Cell();
}

// A payback is either a number or, when the node does not pay back within its life, words: an
// empty cell would read as "unknown", and a number beyond the life as achievable.
constexpr const char* kNotWithinLife = "not within life";

Cell payback_cell(const std::optional<double>& v, int decimals) {
  return v && std::isfinite(*v) ? Cell(*v, decimals) : Cell(kNotWithinLife);
}

// Summary: one row per option, its monthly cumulative cost in the JSON.
void add_summary(Report& r, const CostInputs& in, const CostAnalysis& a) {
  const std::string& cur = in.currency;
  Json& j = r.json;
  Table sum;
  sum.name = "summary";
  sum.title = fmt::format("Options over {} months ({}; {} {} per USD)", in.horizon_months, cur,
                          in.fx_per_usd, cur);
  sum.columns = {"option",
                 "description",
                 "total cost (" + cur + ")",
                 "per year (" + cur + ")",
                 "per 1M output tokens (" + cur + ")",
                 "present cost (" + cur + ")",
                 "total cost (USD)"};
  Json opts = Json::object();
  for (const auto& o : a.options) {
    sum.add({o.id, o.label, Cell(o.total_cost), Cell(o.cost_per_year),
             opt_cell(o.cost_per_mtok_output), Cell(o.present_cost),
             Cell(convert(o.total_cost, in.fx_per_usd, 1.0))});
    Json monthly = Json::array();
    for (double v : o.curve.monthly_cumulative()) monthly.push_back(v);
    opts[o.id] = {{"label", o.label},
                  {"total_cost", o.total_cost},
                  {"total_cost_usd", convert(o.total_cost, in.fx_per_usd, 1.0)},
                  {"cost_per_year", o.cost_per_year},
                  {"cost_per_mtok_output", opt_json(o.cost_per_mtok_output)},
                  {"present_cost", o.present_cost},
                  {"held_value_at_horizon", o.held_value_at_horizon},
                  {"monthly_cumulative", monthly}};
  }
  if (in.buy)
    sum.notes.push_back("buy: per year = total cost of ownership over the life / life years");
  if (const OptionResult* b = a.option("buy"); b && b->held_value_at_horizon > 0)
    sum.notes.push_back(fmt::format(
        "buy: total and present cost are less {:.0f} {}, the book value at month {} of hardware "
        "{} months into its {}-month life (straight line from capex to the residual); the "
        "monthly cumulative cost is the cash paid",
        b->held_value_at_horizon, cur, in.horizon_months, in.horizon_months % in.buy->life_months,
        in.buy->life_months));
  if (!a.options.empty()) r.tables.push_back(sum);
  j["options"] = opts;
}

// Pairwise comparison: crossover, payback, ROI and NPV of each pair, and the value and
// demand thresholds the JSON carries beside them.
void add_comparison(Report& r, const CostInputs& in, const CostAnalysis& a) {
  const std::string& cur = in.currency;
  Json& j = r.json;
  Json cross = {{"buy_vs_rent", nullptr}, {"buy_vs_api", nullptr}, {"rent_vs_api", nullptr}};
  Json payback = {{"buy_vs_rent", nullptr}, {"buy_vs_api", nullptr}};
  Json roi_j = Json::object(), npv_j = Json::object(), save_j = Json::object();
  Table cmp;
  cmp.name = "comparison";
  cmp.title = "Pairwise comparison (first option against the second)";
  cmp.columns = {"pair",    "crossover month",  "payback (years)", "saves per year (" + cur + ")",
                 "ROI (%)", "NPV (" + cur + ")"};
  for (const auto& p : a.pairs) {
    const std::string key = p.a + "_vs_" + p.b;
    cross[key] = opt_json(p.crossover_month);
    if (p.a == "buy") payback[key] = opt_json(p.payback_years);
    roi_j[key] = p.roi;
    npv_j[key] = p.npv;
    save_j[key] = p.savings_per_year;
    cmp.add({key, opt_cell(p.crossover_month, 1),
             p.a == "buy" ? payback_cell(p.payback_years, 2) : Cell(), Cell(p.savings_per_year),
             Cell(p.roi * 100, 1), Cell(p.npv)});
  }
  cmp.notes.push_back(
      "crossover month: where the cumulative costs cross (empty: never within the horizon)");
  if (in.buy)
    cmp.notes.push_back(
        fmt::format("buy payback: the first month the cumulative cost of owning (capex, opex, "
                    "resale at the end of the life) is no more than the alternative's, within the "
                    "{0}-month life = capex / (alternative per year - buy cash opex per year) "
                    "while the life lasts; \"{2}\" otherwise; ROI over the {0}-month "
                    "life = (avoided - own TCO) / own TCO; NPV at {1:.1f}%/yr, positive when the "
                    "first is cheaper",
                    in.buy->life_months, in.buy->discount_rate * 100, kNotWithinLife));
  if (!a.pairs.empty()) r.tables.push_back(cmp);
  j["crossover_month"] = cross;
  j["payback_years"] = payback;
  j["payback_months_simple"] = {{"buy_vs_rent", opt_json(a.simple_payback_months)}};
  j["savings_per_year"] = save_j;
  j["roi"] = roi_j;
  j["npv"] = npv_j;
  j["value_needed_per_year"] = {{"break_even", opt_json(a.value_break_even)},
                                {"roi_50", opt_json(a.value_roi_50)},
                                {"roi_100", opt_json(a.value_roi_100)}};
  j["utilization_threshold"] = {{"rent_to_own", opt_json(a.rent_to_own_threshold)}};
  j["api_per_mtok_output"] = opt_json(a.api_per_mtok_output);
  j["break_even_demand_tok_s"] = {{"buy_vs_api", opt_json(a.own_matches_api_tok_s)},
                                  {"rent_vs_api", opt_json(a.rent_matches_api_tok_s)}};
}

// Break-even and thresholds.
void add_thresholds(Report& r, const CostInputs& in, const CostAnalysis& a) {
  const std::string& cur = in.currency;
  Table th;
  th.name = "thresholds";
  th.title = "Break-even and thresholds";
  th.columns = {"measure", "value", "unit"};
  if (in.buy && in.rent && in.rent->per_month > 0)
    th.add({"simple payback, capex against rent alone", payback_cell(a.simple_payback_months, 1),
            "months"});
  if (a.value_break_even) {
    th.add({"value needed to break even over the life", Cell(*a.value_break_even), cur + "/year"});
    th.add({"value needed for 50% ROI over the life", Cell(*a.value_roi_50), cur + "/year"});
    th.add({"value needed for 100% ROI over the life", Cell(*a.value_roi_100), cur + "/year"});
  }
  if (a.rent_to_own_threshold)
    th.add({"owning beats renting 24/7 above", Cell(*a.rent_to_own_threshold * 100, 1),
            *a.rent_to_own_threshold > 1.0 ? "% time-utilization (over 100%: never)"
                                           : "% time-utilization"});
  if (a.node_utilization)
    th.add({"node utilization at the demand", Cell(*a.node_utilization * 100, 1), "%"});
  if (a.api_per_mtok_output)
    th.add({"API per 1M output tokens (input mix included)", Cell(*a.api_per_mtok_output), cur});
  if (a.own_matches_api_tok_s)
    th.add({"sustained demand where owning matches the API", Cell(*a.own_matches_api_tok_s, 0),
            "output tok/s"});
  if (a.rent_matches_api_tok_s)
    th.add({"sustained demand where renting matches the API", Cell(*a.rent_matches_api_tok_s, 0),
            "output tok/s"});
  if (!th.rows.empty()) r.tables.push_back(th);
}

// Owning: capex and monthly cost, item by item.
void add_buy_breakdown(Report& r, const CostInputs& in, const CostAnalysis& a) {
  const std::string& cur = in.currency;
  Json& j = r.json;
  if (!a.buy || !in.buy) return;
  const BuyBreakdown& b = *a.buy;
  const BuyInputs& bi = *in.buy;
  Table t;
  t.name = "buy_breakdown";
  t.title = "Owning: capex and monthly cost";
  t.columns = {"item", "amount (" + cur + ")", "note"};
  t.add({"capex before VAT", Cell(b.capex_net), ""});
  t.add({"capex with VAT", Cell(b.capex_gross), fmt::format("VAT {:.0f}%", bi.vat_rate * 100)});
  t.add({"capex charged", Cell(b.capex_economic),
         bi.vat_recoverable ? "VAT recoverable: net" : "VAT not recoverable: gross"});
  if (b.capex_net_low != b.capex_net_high) {
    t.add({"capex range low, before VAT", Cell(b.capex_net_low), ""});
    t.add({"capex range high, before VAT", Cell(b.capex_net_high), ""});
    t.add({"capex range low, with VAT", Cell(b.capex_gross_low), ""});
    t.add({"capex range high, with VAT", Cell(b.capex_gross_high), ""});
  }
  t.add({"residual value at end of life", Cell(b.residual),
         fmt::format("{:.0f}% of capex charged", bi.residual_share * 100)});
  t.add({"capex per month over the life", Cell(b.depreciation_per_month),
         fmt::format("(capex - residual) / {} months", bi.life_months)});
  if (bi.opex_itemized) {
    t.add({"power per month, IT only (PUE 1)", Cell(b.power_it_per_month),
           fmt::format("{:.0f} W x {:.0f} h x {} {}/kWh", bi.wall_power_w, in.month_hours,
                       bi.electricity_per_kwh, cur)});
    t.add({"power per month with PUE", Cell(b.power_per_month), fmt::format("PUE {}", bi.pue)});
    t.add({"colocation per month", Cell(b.colo_per_month), ""});
    t.add({"staff per month", Cell(b.staff_per_month), ""});
    t.add({"warranty per month", Cell(b.warranty_per_month), ""});
    t.add({"other opex per month", Cell(b.other_per_month), ""});
  }
  t.add({"cash opex per month", Cell(b.opex_per_month), "1/12 of opex per year"});
  t.add({"total cost of ownership over the life", Cell(b.tco_life),
         "capex + opex x life - residual"});
  r.tables.push_back(t);
  j["buy_breakdown"] = {{"capex_net", b.capex_net},
                        {"capex_gross", b.capex_gross},
                        {"capex_economic", b.capex_economic},
                        {"capex_net_range", {b.capex_net_low, b.capex_net_high}},
                        {"capex_gross_range", {b.capex_gross_low, b.capex_gross_high}},
                        {"residual", b.residual},
                        {"capex_per_month", b.depreciation_per_month},
                        {"power_it_per_month", b.power_it_per_month},
                        {"power_per_month", b.power_per_month},
                        {"colo_per_month", b.colo_per_month},
                        {"staff_per_month", b.staff_per_month},
                        {"warranty_per_month", b.warranty_per_month},
                        {"other_per_month", b.other_per_month},
                        {"opex_per_month", b.opex_per_month},
                        {"tco_life", b.tco_life},
                        {"life_months", bi.life_months}};
}

// Cost per 1M output tokens against node utilization.
void add_flexion(Report& r, const CostInputs& in, const CostAnalysis& a) {
  const std::string per_mtok = in.currency + "/1M out";
  Json& j = r.json;
  if (a.flexion.empty()) return;
  Table t;
  t.name = "flexion";
  t.title = fmt::format("Cost per 1M output tokens against node utilization (capacity {} tok/s)",
                        *in.node_capacity_tok_s);
  // A column per option present.
  const bool own = a.flexion[0].own.has_value(), rent = a.flexion[0].rent.has_value(),
             api = a.flexion[0].api.has_value();
  t.columns = {"utilization (%)"};
  if (own) t.columns.push_back("buy (" + per_mtok + ")");
  if (rent) t.columns.push_back("rent (" + per_mtok + ")");
  if (api) t.columns.push_back("api (" + per_mtok + ")");
  Json arr = Json::array();
  for (const auto& f : a.flexion) {
    std::vector<Cell> row{Cell(f.utilization * 100, 0)};
    if (own) row.push_back(opt_cell(f.own));
    if (rent) row.push_back(opt_cell(f.rent));
    if (api) row.push_back(opt_cell(f.api));
    t.add(std::move(row));
    arr.push_back({{"utilization", f.utilization},
                   {"buy", opt_json(f.own)},
                   {"rent", opt_json(f.rent)},
                   {"api", opt_json(f.api)}});
  }
  t.notes.push_back("own and rent: cost per year / tokens served in a 365-day year; api: flat");
  r.tables.push_back(t);
  j["flexion_curve"] = arr;
}

// People: each option per year in hours and FTE at the loaded rate.
void add_people(Report& r, const CostInputs& in, const CostAnalysis& a) {
  const std::string& cur = in.currency;
  Json& j = r.json;
  if (!a.people) return;
  const PeopleResult& p = *a.people;
  Table t;
  t.name = "people";
  t.title = fmt::format("People: loaded rate {:.0f} {}/hour", p.hourly_rate, cur);
  t.columns = {"option", "per year (" + cur + ")", "equals hours", "equals FTE",
               "ROI of hours saved (%)"};
  Json po = Json::object();
  for (const auto& o : p.options) {
    t.add({o.id, Cell(o.cost_per_year), Cell(o.hours, 0), Cell(o.fte, 2),
           Cell(o.roi_of_savings * 100, 1)});
    po[o.id] = {{"cost_per_year", o.cost_per_year},
                {"hours", o.hours},
                {"fte", o.fte},
                {"roi_of_hours_saved", o.roi_of_savings}};
  }
  t.notes.push_back(fmt::format("hours saved: {:.0f} h/year, worth {:.0f} {}/year",
                                p.hours_saved_per_year, p.value_per_year, cur));
  r.tables.push_back(t);
  j["people"] = {{"hourly_rate", p.hourly_rate},
                 {"hours_saved_per_year", p.hours_saved_per_year},
                 {"value_per_year", p.value_per_year},
                 {"options", po}};
}

// Price-weighted routing: our share of first tries against each competitor (a table, and the
// JSON the provider section carries).
Json add_routing(Report& r, const ProviderInputs& in, const ProviderResult& p) {
  Table rt;
  rt.name = "routing";
  rt.title = "Price-weighted routing (weight proportional to 1/price^2)";
  rt.columns = {"provider", "output price (USD/1M)", "weight", "share of first tries (%)",
                "odds of ours against it"};
  const double own = in.own_price_usd_per_mtok;
  double total = routing_weight(own);
  for (const auto& [c, _] : p.routing_ratio) total += routing_weight(c);
  rt.add({"ours", Cell(own, 3), Cell(routing_weight(own)),
          Cell(routing_weight(own) / total * 100, 1), Cell()});
  Json rr = Json::array();
  for (std::size_t i = 0; i < p.routing_ratio.size(); ++i) {
    const auto& [c, ratio] = p.routing_ratio[i];
    rt.add({fmt::format("competitor {}", i + 1), Cell(c, 3), Cell(routing_weight(c)),
            Cell(routing_weight(c) / total * 100, 1), Cell(ratio, 2)});
    rr.push_back({{"price_usd_per_mtok", c}, {"odds_ours_vs_theirs", ratio}});
  }
  r.tables.push_back(rt);
  return Json{{"own_price_usd_per_mtok", own}, {"share", *p.routing_share}, {"competitors", rr}};
}

// Provider: revenue per 1M output tokens per mix, and price-weighted routing.
void add_provider(Report& r, const CostInputs& in, const CostAnalysis& a) {
  const std::string& cur = in.currency;
  const std::string per_mtok = cur + "/1M out";
  Json& j = r.json;
  if (!a.provider || !in.provider) return;
  const ProviderResult& p = *a.provider;
  Table t;
  t.name = "provider";
  t.title = fmt::format("Provider revenue per 1M output tokens (cache hits {:.0f}%)",
                        in.provider->cache_hit_share * 100);
  t.columns = {"mix",
               "input per output token",
               "revenue (USD/1M out)",
               "revenue (" + per_mtok + ")",
               "per sustained tok/s per month (" + cur + ")",
               "payback of owned node (years)"};
  Json mixes = Json::array();
  for (const auto& m : p.mixes) {
    t.add({m.name, Cell(m.input_per_output), Cell(m.revenue_usd_per_mtok, 3),
           Cell(m.revenue_per_mtok), Cell(m.revenue_per_tok_s_month),
           in.buy && in.node_capacity_tok_s && in.provider->sold_utilization
               ? payback_cell(m.payback_years, 1)
               : Cell()});
    mixes.push_back({{"name", m.name},
                     {"input_per_output", m.input_per_output},
                     {"revenue_usd_per_mtok", m.revenue_usd_per_mtok},
                     {"revenue_per_mtok", m.revenue_per_mtok},
                     {"revenue_per_tok_s_month", m.revenue_per_tok_s_month},
                     {"payback_years", opt_json(m.payback_years)}});
  }
  t.notes.push_back("R = P_out + (T_in/T_out) x [(1 - h) x P_in + h x P_cache]");
  if (in.provider->sold_utilization)
    t.notes.push_back(fmt::format("payback at {:.0f}% of node capacity sold",
                                  *in.provider->sold_utilization * 100));
  r.tables.push_back(t);
  Json pj = {{"mixes", mixes}};
  if (p.routing_share) pj["routing"] = add_routing(r, *in.provider, p);
  j["provider"] = pj;
}

// Electricity only, per system.
void add_power_only(Report& r, const CostInputs& in, const CostAnalysis& a) {
  const std::string& cur = in.currency;
  Json& j = r.json;
  if (a.power_only.empty() || !in.power_only) return;
  Table t;
  t.name = "power_only";
  t.title = fmt::format("Electricity only ({} {}/kWh, PUE {})", in.power_only->electricity_per_kwh,
                        cur, in.power_only->pue);
  t.columns = {"system", "wall power (W)", "output tok/s", "per 1M tokens (" + cur + ")",
               "per month 24/7 (" + cur + ")"};
  Json arr = Json::array();
  for (const auto& p : a.power_only) {
    t.add({p.name, Cell(p.system_w, 0), Cell(p.tokens_per_s), Cell(p.cost_per_mtok, 3),
           Cell(p.cost_per_month, 2)});
    arr.push_back({{"name", p.name},
                   {"system_w", p.system_w},
                   {"tokens_per_s", p.tokens_per_s},
                   {"cost_per_mtok", p.cost_per_mtok},
                   {"cost_per_month", p.cost_per_month}});
  }
  r.tables.push_back(t);
  j["power_only"] = arr;
}

// Cumulative cost by month: wide (a column per option) or tidy (a row per month and option).
void add_monthly(Report& r, const CostInputs& in, const CostAnalysis& a, bool tidy) {
  const std::string& cur = in.currency;
  if (a.options.empty()) return;
  Table t;
  t.name = "monthly";
  t.title = "Cumulative cost by month (" + cur + ")";
  std::vector<std::vector<double>> cum;
  for (const auto& o : a.options) cum.push_back(o.curve.monthly_cumulative());
  if (tidy) {
    t.columns = {"month", "option", "cumulative_cost", "currency"};
    for (std::size_t m = 0; m < cum[0].size(); ++m)
      for (std::size_t i = 0; i < a.options.size(); ++i)
        t.add({Cell(m), a.options[i].id, Cell(cum[i][m]), cur});
  } else {
    t.columns = {"month"};
    for (const auto& o : a.options) t.columns.push_back(o.id + " (" + cur + ")");
    for (std::size_t m = 0; m < cum[0].size(); ++m) {
      std::vector<Cell> row{Cell(m)};
      for (std::size_t i = 0; i < a.options.size(); ++i) row.emplace_back(cum[i][m]);
      t.add(std::move(row));
    }
  }
  r.tables.push_back(t);
}

// Assumptions: every input with its source.
void add_assumptions(Report& r, const CostInputs& in) {
  Json& j = r.json;
  Table as;
  as.name = "assumptions";
  as.title = "Assumptions (every input, with its source)";
  as.columns = {"input", "value", "unit", "source", "as_of"};
  Json aj = Json::array();
  for (const auto& x : in.assumptions) {
    Cell v;
    if (x.value.is_number()) {
      const double d = x.value.get<double>();
      // Whole numbers print without decimals (counts, HUF amounts).
      if (std::fabs(d) < 1e15 && std::floor(d) == d)
        v = Cell(static_cast<long long>(d));
      else
        v = Cell(d);
    } else if (x.value.is_boolean())
      v = Cell(x.value.get<bool>());
    else if (x.value.is_string())
      v = Cell(x.value.get<std::string>());
    else
      v = Cell(x.value.dump());
    as.add({x.name, v, x.unit, x.source, x.as_of});
    aj.push_back({{"input", x.name},
                  {"value", x.value},
                  {"unit", x.unit},
                  {"source", x.source},
                  {"as_of", x.as_of.empty() ? Json(nullptr) : Json(x.as_of)}});
  }
  r.tables.push_back(as);
  j["assumptions"] = aj;
}

}  // namespace

std::optional<std::string> first_non_finite(const Json& doc, const std::string& path) {
  if (doc.is_array()) {
    for (std::size_t i = 0; i < doc.size(); ++i)
      if (auto p = first_non_finite(doc[i], path + "/" + std::to_string(i))) return p;
  } else if (doc.is_object()) {
    for (auto it = doc.begin(); it != doc.end(); ++it)
      if (auto p = first_non_finite(it.value(), path + "/" + it.key())) return p;
  } else if (doc.is_number_float() && !std::isfinite(doc.get<double>())) {
    return path.empty() ? "/" : path;
  }
  return std::nullopt;
}

Report make_cost_report(const CostInputs& in, const CostAnalysis& a, bool tidy) {
  Report r;
  const std::string& cur = in.currency;
  r.title = in.title.empty() ? "Cost: " + in.file : in.title;
  Json& j = r.json;
  // Every money figure below is in this currency unless its key names another (e.g. `_usd`).
  j["currency"] = cur;
  j["scenario"] = {{"file", in.file},
                   {"title", in.title},
                   {"currency", cur},
                   {"fx_per_usd", in.fx_per_usd},
                   {"horizon_months", in.horizon_months},
                   {"month_hours", in.month_hours}};
  if (in.demand) {
    j["demand"] = {{"output_tokens_per_year", in.demand->output_tokens_per_year},
                   {"average_output_tokens_per_s", in.demand->average_tokens_per_s()},
                   {"input_tokens_per_output_token", in.demand->input_per_output},
                   {"cache_hit_share", in.demand->cache_hit_share},
                   {"node_utilization", opt_json(a.node_utilization)}};
  }

  add_summary(r, in, a);
  add_comparison(r, in, a);
  add_thresholds(r, in, a);
  add_buy_breakdown(r, in, a);
  add_flexion(r, in, a);
  add_people(r, in, a);
  add_provider(r, in, a);
  add_power_only(r, in, a);
  add_monthly(r, in, a, tidy);
  add_assumptions(r, in);
  r.messages = a.messages;
  j["messages"] = a.messages;
  return r;
}

svg::ChartPage make_cost_chart(const CostInputs& in, const CostAnalysis& a) {
  svg::ChartPage page;
  page.title = in.title.empty() ? "Cost comparison" : in.title;
  const std::string& cur = in.currency;
  auto color_of = [](const std::string& id) {
    return id == "buy" ? "#0072B2" : id == "rent" ? "#D55E00" : "#009E73";
  };
  if (!a.options.empty()) {
    svg::LineChart c;
    c.title = fmt::format("Cumulative cost over {} months", in.horizon_months);
    c.subtitle =
        fmt::format("{} at {} {}/USD; buy = capex at month 0 + opex, less residual at end of life",
                    cur, in.fx_per_usd, cur);
    c.x_label = "Month";
    c.y_label = "Cumulative cost (" + cur + ")";
    for (const auto& o : a.options) {
      svg::Series s;
      s.name = o.label;
      s.color = color_of(o.id);
      const auto cum = o.curve.monthly_cumulative();
      for (std::size_t m = 0; m < cum.size(); ++m) {
        s.x.push_back(static_cast<double>(m));
        s.y.push_back(cum[m]);
      }
      c.series.push_back(std::move(s));
    }
    for (const auto& p : a.pairs) {
      if (!p.crossover_month) continue;
      const double y = a.option(p.a)->curve.at(*p.crossover_month);
      c.highlights.push_back(
          {*p.crossover_month, y,
           fmt::format("{} = {} at month {:.1f}", p.a, p.b, *p.crossover_month)});
    }
    page.charts.push_back(std::move(c));
  }
  if (!a.flexion.empty()) {
    svg::LineChart c;
    c.title = "Cost per 1M output tokens against node utilization";
    c.subtitle =
        fmt::format("Node capacity {} output tok/s, 24/7 over a 365-day year; the API is flat",
                    *in.node_capacity_tok_s);
    c.x_label = "Node utilization (% of capacity in use)";
    c.y_label = cur + " per 1M output tokens";
    svg::Series own, rent, api;
    own.name = "buy (own)";
    own.color = color_of("buy");
    rent.name = "rent";
    rent.color = color_of("rent");
    api.name = "api";
    api.color = color_of("api");
    api.dashed = true;
    api.markers = false;
    double cap = 0;
    for (const auto& f : a.flexion) {
      const double x = f.utilization * 100;
      if (f.own) own.x.push_back(x), own.y.push_back(*f.own);
      if (f.rent) rent.x.push_back(x), rent.y.push_back(*f.rent);
      if (f.api) api.x.push_back(x), api.y.push_back(*f.api);
      // Scale the axis to 20% utilization and up: the 5% end is 20x the full-node cost.
      if (f.utilization >= 0.2 - 1e-9) {
        if (f.own) cap = std::max(cap, *f.own);
        if (f.rent) cap = std::max(cap, *f.rent);
      }
      if (f.api) cap = std::max(cap, *f.api * 1.25);
    }
    for (auto* s : {&own, &rent, &api})
      if (!s->x.empty()) c.series.push_back(*s);
    c.x_min = 0;
    c.x_max = 100;
    if (cap > 0) c.y_max = cap;
    c.clip_note = "lines above the axis are cut";
    page.charts.push_back(std::move(c));
  }
  page.footer = "moeplan cost, " + in.file;
  return page;
}

}  // namespace moeplan::cost
