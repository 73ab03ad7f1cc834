// Cost model: total cost of ownership of a bought node against renting one and
// against a hosted API, with break-even, ROI, payback, utilization and provider
// economics. Every formula and convention is written down in docs/cost.md; the
// section named in each comment ("cost.md §n") is where its derivation lives.
//
// Conventions (docs/cost.md §1):
//  - All money inside the model is in one currency, the scenario's. Inputs in
//    another currency are converted once, when the scenario is read.
//  - A cost month is 1/12 of a year: yearly amounts accrue as yearly/12 per
//    month. Hourly quantities (GPU-hours, kWh, sustained tokens per month) use
//    `month_hours` hours per month (720 h = 30 days unless the scenario says 730).
//  - Token volumes per year use the calendar year: 365 days × 86,400 s.
//  - Costs accrue linearly within a month; one-off amounts (capex, residual)
//    are steps at month boundaries.
//
// Everything here is a pure function of plain numbers or structs. Functions
// throw std::invalid_argument (a programming error: the scenario reader has
// already validated inputs) when an argument violates the stated invariant.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "moeplan/report.hpp"
#include "moeplan/svg_chart.hpp"

namespace moeplan::cost {

inline constexpr double kMonthsPerYear = 12.0;
inline constexpr double kDaysPerYear = 365.0;
inline constexpr double kSecondsPerDay = 86'400.0;
inline constexpr double kSecondsPerYear = kDaysPerYear * kSecondsPerDay;  // 31,536,000
inline constexpr double kHoursPerYear = kDaysPerYear * 24.0;              // 8,760
inline constexpr double kTokensPerMTok = 1e6;

// ---------------------------------------------------------------------------
// Currency (cost.md §2)

// Converts `amount` from a currency worth `from_per_usd` units per USD into one
// worth `to_per_usd` units per USD. Both rates > 0. Round-trips exactly up to
// floating-point rounding: convert(convert(x, a, b), b, a) == x.
double convert(double amount, double from_per_usd, double to_per_usd);

// ---------------------------------------------------------------------------
// Capital expenditure (cost.md §3)

// Price before VAT. `includes_vat`: the price was quoted gross. vat_rate in [0, 1].
double net_of_vat(double price, bool includes_vat, double vat_rate);
// Cash paid: net × (1 + vat_rate).
double gross_of_vat(double net, double vat_rate);
// The capex the model charges: net when VAT is recoverable, else gross.
double economic_capex(double net, double vat_rate, bool vat_recoverable);

// ---------------------------------------------------------------------------
// Operating cost (cost.md §4)

// Wall power of a node in W: gpus × tdp_w × load_share + other_system_w.
double node_power_w(int gpus, double tdp_w, double load_share, double other_system_w);
// Electricity cost per month: W/1000 × month_hours × pue × price_per_kwh.
// pue >= 1 (1 = IT power only); month_hours > 0.
double electricity_per_month(double wall_w, double pue, double price_per_kwh, double month_hours);
// Rent per month from a per-GPU-hour price: price × gpus × hours_per_month.
double rent_per_month_from_hourly(double per_gpu_hour, int gpus, double hours_per_month);

// ---------------------------------------------------------------------------
// Tokens and per-token prices (cost.md §5)

// Blended price per 1M *output* tokens when every output token comes with
// `input_per_output` input tokens of which `cache_hit_share` are cache hits:
//   R = P_out + (T_in/T_out) × [(1 − h)·P_in + h·P_cache]
// Used for API cost and for provider revenue (C9). h in [0, 1], prices >= 0.
double price_per_mtok_output(double p_in, double p_cache, double p_out, double input_per_output,
                             double cache_hit_share);
// Output tokens per year of a sustained rate (tok/s) on `days` days a year.
double tokens_per_year(double tokens_per_s, double days = kDaysPerYear);
// Cost per 1M tokens: cost_per_year / (tokens_per_year / 1e6). tokens_per_year > 0.
double cost_per_mtok(double cost_per_year, double tokens_per_year);
// Cost per 1M output tokens of a node that costs `cost_per_year` whatever it
// serves, with peak `capacity_tok_s`, busy `utilization` (0, 1] of calendar time.
// Non-increasing in utilization (the flexion curve, cost.md §7).
double node_cost_per_mtok(double cost_per_year, double capacity_tok_s, double utilization);
// Sustained output rate (tok/s, calendar average) at which a fixed yearly cost
// equals paying `price_per_mtok` per 1M output tokens.
double break_even_tokens_per_s(double cost_per_year, double price_per_mtok);
// Electricity-only cost per 1M tokens (C12): kW × pue × price_per_kwh / (Mtok per hour).
double electricity_per_mtok(double system_w, double tokens_per_s, double price_per_kwh,
                            double pue = 1.0);

// ---------------------------------------------------------------------------
// Owning against an alternative (cost.md §6)

// Own total cost over the life: capex + opex_per_year × life_years − residual.
double own_tco(double capex, double opex_per_year, double life_years, double residual);
// Payback in months against an alternative that costs `alt_per_year`: the first month within
// the node's life at which owning it (`capex` at month 0, `opex_per_year` accruing, `residual`
// credited when the life ends) has cost no more than the alternative. Before the end of the life
// that is capex × 12 / (alt − opex), where the cumulative curves cross (C2: 23.0 months); at the
// end of the life the resale may close what is left. nullopt when it is not reached within the
// life: a node that must be bought again before it has paid back never pays back. Reached exactly
// when owning's TCO over the life is at most the alternative's cost over it (ROI >= 0).
std::optional<double> payback_months(double capex, double opex_per_year, double residual,
                                     double life_months, double alt_per_year);
// The same in years (PairResult::payback_years, the provider's, the Monte Carlo's).
std::optional<double> payback_years(double capex, double opex_per_year, double residual,
                                    double life_months, double alt_per_year);
// Simple payback in months, capex against the alternative's monthly cost alone (C1), under the
// same rule: nullopt when not reached within the life.
std::optional<double> simple_payback_months(double capex, double alt_per_month, double residual,
                                            double life_months);
// ROI of spending `own_cost` to avoid `avoided_cost` over the same period:
// (avoided − own) / own (C2). own_cost > 0.
double roi(double avoided_cost, double own_cost);
// Yearly value needed for a given ROI over the life: (1 + target_roi) × tco / life_years (C4).
double value_needed_per_year(double tco, double life_years, double target_roi);
// Share of time a rented node must be in use before owning is cheaper:
// own_per_year / rent_per_year_24_7 (C5). May exceed 1 (owning never wins).
double rent_to_own_threshold(double own_per_year, double rent_per_year);

// ---------------------------------------------------------------------------
// People (cost.md §8)

// Loaded hourly rate: cost per FTE-year / hours per FTE-year (C7).
double hourly_rate(double fte_cost_per_year, double hours_per_fte_year);
// Value per year of hours saved: users × hours/day × days × hourly rate (C8).
double value_of_hours_saved(double users, double hours_per_user_per_day, double days_per_year,
                            double rate_per_hour);

// ---------------------------------------------------------------------------
// Provider mode (cost.md §9)

// Price-weighted routing: weight ∝ 1/price² (C10). price > 0.
double routing_weight(double price);
// Share of first tries that go to the provider priced `own_price` among itself
// and `competitor_prices`.
double routing_share(double own_price, const std::vector<double>& competitor_prices);

// ---------------------------------------------------------------------------
// Cumulative cost curves (cost.md §6.1)

// A piecewise-linear cumulative cost over months [0, horizon]: `step[m]` is paid
// at the start of month m (m = 0..horizon; step[horizon] falls at the very end),
// `rate[m]` accrues linearly during month m (m = 0..horizon−1).
struct CostCurve {
  std::vector<double> step;
  std::vector<double> rate;

  int horizon() const { return static_cast<int>(rate.size()); }
  // Cumulative cost at fractional month t in [0, horizon], steps at t included.
  double at(double t) const;
  // Cumulative cost at the end of each month 0..horizon (index 0: after month 0's steps).
  std::vector<double> monthly_cumulative() const;
  // Present value of the flows: steps discounted at their month, the accrual of
  // month m at its end (m + 1), at `yearly_rate` compounded yearly, (1+r)^(−m/12).
  double present_value(double yearly_rate) const;
};

// A constant monthly cost from month 0.
CostCurve flat_curve(double per_month, int horizon_months);
// Owning: `capex` at month 0, `opex_per_month` accrued, `residual` credited at
// each end of life; the node is bought again at each end of life that falls
// before the horizon (cost.md §6.1).
CostCurve own_curve(double capex, double opex_per_month, double residual, int life_months,
                    int horizon_months);
// What the hardware bought last is still worth at the horizon's end when the horizon ends within
// its life: its book value, straight-line from capex at purchase to `residual` at the end of the
// life; 0 when the horizon ends on a life boundary (own_curve has resold it at `residual`).
// A 48-month horizon on a 36-month life re-buys at month 36 and holds 24 months of life at the
// end: without this credit the option pays two capexes for 48 months of use.
double held_value_at_horizon(double capex, double residual, int life_months, int horizon_months);

// The first month (fractional) where the cheaper of `a` and `b` changes, i.e.
// where the cumulative curves cross. nullopt when they never cross within the
// horizon. Both curves have the same horizon.
std::optional<double> crossover_month(const CostCurve& a, const CostCurve& b);

// ---------------------------------------------------------------------------
// Resolved inputs: everything in the scenario currency (see scenario.hpp for
// how a scenario file becomes these).

struct Assumption {
  std::string name;    // JSON path in the scenario, or a derived name
  Json value;          // number, string or bool as given
  std::string unit;    // "HUF", "USD/MTok", "W", "share", …
  std::string source;  // where the number comes from
  std::string as_of;   // date of the source, "" when none
};

struct DemandInputs {
  double output_tokens_per_year = 0;
  double input_per_output = 0;  // input tokens per output token
  double cache_hit_share = 0;
  double days_per_year = kDaysPerYear;
  // Calendar-average sustained rate: output_tokens_per_year / kSecondsPerYear.
  double average_tokens_per_s() const { return output_tokens_per_year / kSecondsPerYear; }
  // The rate on a day the service is open, which the node must serve: the yearly volume spread
  // over days_per_year days only (docs/plan.md §Demand).
  double open_day_tokens_per_s() const {
    return output_tokens_per_year / (days_per_year * kSecondsPerDay);
  }
};

struct BuyInputs {
  std::string label = "buy";
  double capex_net = 0;                          // before VAT, the point used in the TCO
  double capex_net_low = 0, capex_net_high = 0;  // quoted range (equal when one price)
  double vat_rate = 0;
  bool vat_recoverable = false;
  int life_months = 36;
  double residual_share = 0;
  double discount_rate = 0;  // yearly
  // Operating cost per year, and its items when given as components (the sum).
  double opex_per_year = 0;
  bool opex_itemized = false;
  double wall_power_w = 0;
  double pue = 1;
  double electricity_per_kwh = 0;
  double colo_per_month = 0;
  double staff_per_year = 0;
  double warranty_per_year = 0;
  double other_per_year = 0;

  double capex() const { return economic_capex(capex_net, vat_rate, vat_recoverable); }
  double residual() const { return residual_share * capex(); }
  double life_years() const { return life_months / kMonthsPerYear; }
};

struct RentInputs {
  std::string kind = "on_demand";  // on_demand | reserved | spot
  double per_month = 0;
  // Hours a year the price pays for, as the scenario states it: 8,760 for a yearly price,
  // 12 × hours_per_month (default month_hours) for a monthly, per-GPU-hour or catalog one. The
  // rate of an hour rented part-time is the yearly rent over these hours (docs/cost.md).
  double billed_hours_per_year = kHoursPerYear;
};

struct ApiInputs {
  std::string label = "api";
  double input_per_mtok = 0;  // scenario currency per 1M tokens
  double cached_input_per_mtok = 0;
  double output_per_mtok = 0;
};

struct PeopleInputs {
  double fte_cost_per_year = 0;
  double hours_per_fte_year = 1760;
  double users = 0;
  double hours_saved_per_user_per_day = 0;
  double working_days_per_year = 220;
};

struct ProviderMix {
  std::string name;
  double input_tokens = 0, output_tokens = 1;
};

struct ProviderInputs {
  double input_usd_per_mtok = 0, cached_input_usd_per_mtok = 0, output_usd_per_mtok = 0;
  double cache_hit_share = 0;
  std::vector<ProviderMix> mixes;
  std::optional<double> sold_utilization;  // for payback of an owned node
  double own_price_usd_per_mtok = 0;       // for routing
  std::vector<double> competitor_prices_usd_per_mtok;
};

struct PowerSystem {
  std::string name;
  double system_w = 0;
  double tokens_per_s = 0;
};

struct PowerOnlyInputs {
  double electricity_per_kwh = 0;  // scenario currency
  double pue = 1;
  std::vector<PowerSystem> systems;
};

struct CostInputs {
  std::string title;
  std::string file;
  std::string currency = "USD";
  double fx_per_usd = 1;  // units of `currency` per USD
  int horizon_months = 36;
  double month_hours = 720;
  std::optional<DemandInputs> demand;
  std::optional<double> node_capacity_tok_s;
  std::optional<BuyInputs> buy;
  std::optional<RentInputs> rent;
  std::optional<ApiInputs> api;
  std::optional<PeopleInputs> people;
  std::optional<ProviderInputs> provider;
  std::optional<PowerOnlyInputs> power_only;
  std::vector<Assumption> assumptions;
};

// ---------------------------------------------------------------------------
// Results

struct OptionResult {
  std::string id;     // buy | rent | api
  std::string label;  // human description
  CostCurve curve;
  double total_cost = 0;             // cumulative at the horizon, less held_value_at_horizon
  double held_value_at_horizon = 0;  // buy: book value still held at the end (above)
  double cost_per_year = 0;          // own: TCO over life / life years; rent, api: yearly
  std::optional<double> cost_per_mtok_output;  // at the scenario's demand
  double present_cost = 0;                     // PV at the buy discount rate (0 without buy)
};

struct PairResult {
  std::string a, b;  // "buy", "rent"
  std::optional<double> crossover_month;
  std::optional<double> payback_years;  // only when a == buy; none when not within the life
  double savings_per_year = 0;          // b's yearly cost − a's (cash) yearly cost
  double roi = 0;                       // a against b over a's life (buy) or a year
  double npv = 0;                       // PV(b) − PV(a) over the horizon; > 0: a is better
};

struct BuyBreakdown {
  double capex_net = 0, capex_gross = 0, capex_economic = 0;
  double capex_net_low = 0, capex_net_high = 0, capex_gross_low = 0, capex_gross_high = 0;
  double residual = 0;
  double depreciation_per_month = 0;  // (capex − residual) / life months
  double power_it_per_month = 0;      // electricity at PUE 1
  double power_per_month = 0;         // with PUE
  double colo_per_month = 0, staff_per_month = 0, warranty_per_month = 0, other_per_month = 0;
  double opex_per_month = 0;
  double tco_life = 0;
  double simple_payback_vs_rent_months = 0;  // NaN when no rent
};

struct FlexionPoint {
  double utilization = 0;
  std::optional<double> own, rent, api;  // per 1M output tokens
};

struct PeopleResult {
  double hourly_rate = 0;
  struct PerOption {
    std::string id;
    double cost_per_year = 0, hours = 0, fte = 0, roi_of_savings = 0;
  };
  std::vector<PerOption> options;
  double hours_saved_per_year = 0;
  double value_per_year = 0;
};

struct ProviderMixResult {
  std::string name;
  double input_per_output = 0;
  double revenue_usd_per_mtok = 0;
  double revenue_per_mtok = 0;          // scenario currency
  double revenue_per_tok_s_month = 0;   // one sustained tok/s for a month
  std::optional<double> payback_years;  // owned node at the sold utilization, within its life
};

struct ProviderResult {
  std::vector<ProviderMixResult> mixes;
  std::optional<double> routing_share;
  std::vector<std::pair<double, double>> routing_ratio;  // competitor price, own/competitor odds
};

struct PowerOnlyResult {
  std::string name;
  double system_w = 0, tokens_per_s = 0, cost_per_mtok = 0, cost_per_month = 0;
};

struct CostAnalysis {
  std::vector<OptionResult> options;  // in order buy, rent, api (those present)
  std::vector<PairResult> pairs;
  std::optional<BuyBreakdown> buy;
  std::optional<double> simple_payback_months;  // buy capex against rent alone (C1), within life
  std::optional<double> value_break_even, value_roi_50, value_roi_100;  // per year (C4)
  std::optional<double> rent_to_own_threshold;                          // C5
  std::optional<double> node_utilization;                               // demand / capacity
  std::optional<double> api_per_mtok_output;
  std::optional<double> own_matches_api_tok_s, rent_matches_api_tok_s;  // sustained demand
  std::vector<FlexionPoint> flexion;
  std::optional<PeopleResult> people;
  std::optional<ProviderResult> provider;
  std::vector<PowerOnlyResult> power_only;
  std::vector<std::string> messages;

  const OptionResult* option(const std::string& id) const;
  const PairResult* pair(const std::string& a, const std::string& b) const;
};

// Runs the whole model. Throws std::invalid_argument on inputs the scenario
// reader should have rejected (e.g. demand above node capacity).
CostAnalysis analyze(const CostInputs& in);

// The JSON Pointer of the first number in `doc` that is not finite (NaN or ±inf), or nullopt.
// A report must never carry one: JSON would print it as null, a table as "nan".
std::optional<std::string> first_non_finite(const Json& doc, const std::string& path = "");

// Builds the report: summary, comparison, thresholds, breakdowns, flexion curve,
// monthly cumulative costs and assumptions, plus the JSON document. `tidy`:
// the monthly table has one row per month per option (for CSV); otherwise one
// row per month with a column per option.
Report make_cost_report(const CostInputs& in, const CostAnalysis& a, bool tidy);

// The chart for --chart: cumulative cost of each option by month with the
// crossovers ringed, and (with a node capacity) cost per 1M output tokens
// against utilization with the API as a flat line.
svg::ChartPage make_cost_chart(const CostInputs& in, const CostAnalysis& a);

}  // namespace moeplan::cost
