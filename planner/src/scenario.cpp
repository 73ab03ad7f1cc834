// Scenario reader (docs/scenario.md). Validation lives here so the cost model
// can assume sane numbers; every value read (or defaulted) is recorded as an
// assumption with its source so reports can show where each number came from.
#include "moeplan/scenario.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <optional>

#include "moeplan/errors.hpp"
#include "moeplan/pricing.hpp"

namespace moeplan {

namespace {

using cost::Assumption;
using cost::CostInputs;

const char* kDefaultSource = "moeplan default (docs/scenario.md)";

// Where the numbers of one section come from: the section's own source/as_of,
// else the scenario's, else the file name.
struct Provenance2 {
  std::string source, as_of;
};

class Reader {
 public:
  Reader(const Json& doc, std::string file, const CatalogProvider& catalog)
      : root_(doc, file), file_(std::move(file)), catalog_(catalog) {}

  CostInputs read();

 private:
  JsonView root_;
  std::string file_;
  const CatalogProvider& catalog_;
  CostInputs in_;
  Provenance2 top_;

  const Catalog& catalog(const JsonView& at, std::string_view key) {
    if (!catalog_)
      at.fail_member(key, "refers to the catalog, but no catalog (data/) is available");
    return catalog_();
  }

  Provenance2 prov_of(const JsonView& section) { return prov_of(section, top_); }
  Provenance2 prov_of(const JsonView& section, const Provenance2& parent) {
    Provenance2 p = parent;
    if (auto s = section.get("source")) p.source = s->string();
    if (section.get("as_of")) p.as_of = section.date("as_of");
    return p;
  }

  void record(const std::string& name, Json value, std::string unit, const Provenance2& p) {
    check_magnitude(name.substr(0, name.find(' ')), value);
    in_.assumptions.push_back(
        Assumption{name, std::move(value), std::move(unit), p.source, p.as_of});
  }
  void record_default(const std::string& name, Json value, std::string unit) {
    in_.assumptions.push_back(
        Assumption{name, std::move(value), std::move(unit), kDefaultSource, ""});
  }
  // Records `key` of `v` as given, or `def` as a default.
  void note(const JsonView& v, std::string_view key, const Json& value, const std::string& unit,
            const Provenance2& p) {
    const std::string name = v.path() + "/" + std::string(key);
    if (v.has(key))
      record(name, value, unit, p);
    else
      record_default(name, value, unit);
  }

  // Every input passes through record(), so this is where absurd magnitudes stop: 1e308 HUF of
  // capex is finite, but × 1.27 VAT it is inf and the totals become NaN. No price, power, rate
  // or count of one node comes near kMaxInputMagnitude in any currency.
  static constexpr double kMaxInputMagnitude = 1e15;
  void check_magnitude(const std::string& path, const Json& value) const {
    if (value.is_array()) {
      for (std::size_t i = 0; i < value.size(); ++i)
        check_magnitude(path + "/" + std::to_string(i), value[i]);
    } else if (value.is_object()) {
      for (auto it = value.begin(); it != value.end(); ++it)
        check_magnitude(path + "/" + it.key(), it.value());
    } else if (value.is_number()) {
      const double x = value.get<double>();
      if (!(std::fabs(x) <= kMaxInputMagnitude))
        throw InputError(file_, path,
                         fmt::format("implausibly large: {:g}, above {:g} in magnitude, where "
                                     "the totals overflow (check the units and the zeros)",
                                     x, kMaxInputMagnitude));
    }
  }

  // Money in the scenario currency: `key` as given, or `key_usd` converted.
  std::optional<double> money(const JsonView& v, const std::string& key, const std::string& key_usd,
                              const Provenance2& p, const std::string& per = "") {
    const bool local = v.has(key), usd = v.has(key_usd);
    if (local && usd) v.fail_member(key_usd, "give " + key + " or " + key_usd + ", not both");
    if (local) {
      const double x = v.non_negative(key);
      record(v.path() + "/" + key, x, in_.currency + per, p);
      return x;
    }
    if (usd) {
      const double x = v.non_negative(key_usd);
      record(v.path() + "/" + key_usd, x, "USD" + per, p);
      return x * in_.fx_per_usd;
    }
    return std::nullopt;
  }

  double fraction_or(const JsonView& v, std::string_view key, double def, const std::string& unit,
                     const Provenance2& p) {
    const double x = v.has(key) ? v.fraction(key) : def;
    note(v, key, x, unit, p);
    return x;
  }
  double non_negative_or(const JsonView& v, std::string_view key, double def,
                         const std::string& unit, const Provenance2& p) {
    const double x = v.has(key) ? v.non_negative(key) : def;
    note(v, key, x, unit, p);
    return x;
  }
  double positive_or(const JsonView& v, std::string_view key, double def, const std::string& unit,
                     const Provenance2& p) {
    const double x = v.has(key) ? v.positive(key) : def;
    note(v, key, x, unit, p);
    return x;
  }
  int positive_int_or(const JsonView& v, std::string_view key, int def, const std::string& unit,
                      const Provenance2& p) {
    long long x = def;
    if (v.has(key)) {
      x = v.positive_int(key);
      if (x > 1'000'000) v.fail_member(key, "implausibly large (" + std::to_string(x) + ")");
    }
    note(v, key, static_cast<double>(x), unit, p);
    return static_cast<int>(x);
  }

  void read_top();
  void read_demand(const JsonView& v);
  void read_node(const JsonView& v);
  void read_buy(const JsonView& v);
  // What read_buy's parts share: the section, its provenance, the catalog device and site it
  // names (either may be absent).
  struct BuyContext {
    const JsonView& v;
    Provenance2 p;
    const Device* device = nullptr;
    const Site* site = nullptr;
    Provenance2 site_prov;
  };
  // A capex quote before VAT is stripped: low and high, whether gross, and the VAT rate a gross
  // quote is stripped with.
  struct CapexQuote {
    double lo = 0, hi = 0;
    bool includes_vat = false;
    double strip_vat_rate = 0;
  };
  const Device* read_buy_gpu(const JsonView& v, const Provenance2& p);
  const Site* read_buy_site(const JsonView& v, const Provenance2& p);
  double site_money(const BuyContext& x, double amount);
  void read_vat(const BuyContext& x, cost::BuyInputs& b);
  void read_capex(const BuyContext& x, cost::BuyInputs& b);
  CapexQuote scenario_quote(const BuyContext& x, const std::string& key, bool includes_vat,
                            double vat_rate);
  CapexQuote catalog_quote(const BuyContext& x, double buyer_vat_rate);
  System catalog_node(const BuyContext& x);
  void read_life(const BuyContext& x, cost::BuyInputs& b);
  void read_opex(const BuyContext& x, cost::BuyInputs& b);
  double read_wall_power(const BuyContext& x);
  void read_power_price(const BuyContext& x, cost::BuyInputs& b);
  void read_rent(const JsonView& v);
  void read_catalog_rent(const JsonView& v, const Catalog& c, const std::string& gpu,
                         const Provenance2& p, cost::RentInputs& r);
  struct RentedNode {
    int gpus;
    double hours;
  };
  RentedNode read_rented_node(const JsonView& v, const Provenance2& p, const std::string& why);
  double billed_hours_per_month(const JsonView& v, const Provenance2& p);
  void read_api(const JsonView& v);
  void read_people(const JsonView& v);
  void read_provider(const JsonView& v);
  void read_power_only(const JsonView& v);

  // Filled while reading buy, reused by rent and power_only.
  std::string buy_gpu_;
  int buy_gpus_ = 0;
};

const std::initializer_list<std::string_view> kProvKeys = {"source", "as_of", "notes"};

std::vector<std::string> keys_with_prov(std::initializer_list<std::string_view> keys) {
  std::vector<std::string> out(keys.begin(), keys.end());
  for (auto k : kProvKeys) out.emplace_back(k);
  return out;
}

CostInputs Reader::read() {
  if (!root_.is_object()) root_.fail("expected a JSON object at the top level");
  root_.only_keys(keys_with_prov({"title", "description", "currency", "fx_per_usd",
                                  "horizon_months", "month_hours", "demand", "node", "buy", "rent",
                                  "api", "people", "provider", "power_only"}));
  in_.file = file_;
  read_top();
  if (auto v = root_.get("demand")) read_demand(*v);
  if (auto v = root_.get("node")) read_node(*v);
  if (auto v = root_.get("buy")) read_buy(*v);
  if (auto v = root_.get("rent")) read_rent(*v);
  if (auto v = root_.get("api")) read_api(*v);
  if (auto v = root_.get("people")) read_people(*v);
  if (auto v = root_.get("provider")) read_provider(*v);
  if (auto v = root_.get("power_only")) read_power_only(*v);

  if (!in_.buy && !in_.rent && !in_.api && !in_.provider && !in_.power_only)
    root_.fail("nothing to cost: give at least one of buy, rent, api, provider or power_only");
  if (in_.people && !in_.buy && !in_.rent && !in_.api && (in_.people->users <= 0))
    root_.at("people").fail(
        "people needs an option to compare (buy, rent or api) or users saving time");
  // The node serves the rate of an open day, not the calendar average: 800 tok/s on 220 days
  // averages 482 over the year, yet needs two 500 tok/s nodes. cost prices one node (cost.md
  // §10), so more demand than it serves is an error rather than a fleet sized here.
  if (in_.demand && in_.node_capacity_tok_s) {
    const double open_day = in_.demand->open_day_tokens_per_s();
    const double util = open_day / *in_.node_capacity_tok_s;
    if (util > 1 + 1e-12) {
      const std::string days =
          in_.demand->days_per_year < cost::kDaysPerYear
              ? fmt::format(
                    " on each of its {:g} open days ({:.1f} averaged over the calendar "
                    "year)",
                    in_.demand->days_per_year, in_.demand->average_tokens_per_s())
              : "";
      root_.at("demand").fail(fmt::format(
          "demand averages {:.1f} output tok/s{}, above node/capacity_output_tokens_per_s {:.1f} "
          "(utilization {:.2f} > 1); cost prices one node: raise the capacity, lower the "
          "demand, or size a fleet with moeplan plan",
          open_day, days, *in_.node_capacity_tok_s, util));
    }
  }
  return in_;
}

void Reader::read_top() {
  top_.source = root_.string_or("source", "scenario file " + file_);
  top_.as_of = root_.get("as_of") ? root_.date("as_of") : "";
  in_.title = root_.string_or("title", "");
  const auto cur = root_.at("currency");
  in_.currency = cur.string();
  const bool iso =
      in_.currency.size() == 3 && std::all_of(in_.currency.begin(), in_.currency.end(),
                                              [](char c) { return c >= 'A' && c <= 'Z'; });
  if (!iso)
    cur.fail("expected an ISO 4217 currency code such as USD, EUR or HUF, found \"" + in_.currency +
             "\"");
  record("/currency", in_.currency, "", top_);

  if (root_.has("fx_per_usd")) {
    in_.fx_per_usd = root_.positive("fx_per_usd");
    if (in_.currency == "USD" && in_.fx_per_usd != 1.0)
      root_.fail_member("fx_per_usd", "must be 1 (or absent) when currency is USD");
    record("/fx_per_usd", in_.fx_per_usd, in_.currency + " per USD", top_);
  } else if (in_.currency == "USD") {
    in_.fx_per_usd = 1.0;
  } else {
    const Catalog& c = catalog(root_, "fx_per_usd");
    try {
      in_.fx_per_usd = c.fx_per_usd(in_.currency);
    } catch (const UnknownIdError& e) {
      root_.fail_member("currency", std::string(e.what()) + " in fx.json; give fx_per_usd");
    }
    std::string src = "data/fx.json", as_of;
    for (const auto& r : c.fx_rates)
      if (r.currency == in_.currency) {
        src = "data/fx.json: " + r.prov.source;
        as_of = r.prov.as_of;
      }
    record("/fx_per_usd", in_.fx_per_usd, in_.currency + " per USD", {src, as_of});
  }

  const long long h = root_.positive_int("horizon_months");
  if (h > 600) root_.fail_member("horizon_months", "expected at most 600 months (50 years)");
  in_.horizon_months = static_cast<int>(h);
  record("/horizon_months", static_cast<double>(h), "months", top_);
  in_.month_hours = root_.has("month_hours") ? root_.positive("month_hours") : 720.0;
  if (in_.month_hours < 672 || in_.month_hours > 744)
    root_.fail_member(
        "month_hours",
        fmt::format("expected 672..744 hours (28 to 31 days), found {}", in_.month_hours));
  note(root_, "month_hours", in_.month_hours, "hours", top_);
}

void Reader::read_demand(const JsonView& v) {
  v.only_keys(
      keys_with_prov({"output_tokens_per_s", "requests_per_day", "input_tokens", "output_tokens",
                      "input_tokens_per_output_token", "cache_hit_share", "days_per_year"}));
  const auto p = prov_of(v);
  cost::DemandInputs d;
  d.days_per_year = positive_or(v, "days_per_year", cost::kDaysPerYear, "days", p);
  if (d.days_per_year > 366 || d.days_per_year < 1)
    v.fail_member("days_per_year",
                  fmt::format("expected 1–366 open days, found {}", d.days_per_year));
  const bool rate = v.has("output_tokens_per_s"), reqs = v.has("requests_per_day");
  if (rate && reqs)
    v.fail_member("requests_per_day", "give output_tokens_per_s or requests_per_day, not both");
  if (rate) {
    if (v.has("input_tokens") || v.has("output_tokens"))
      v.fail_member(v.has("input_tokens") ? "input_tokens" : "output_tokens",
                    "per-request token counts go with requests_per_day; with output_tokens_per_s "
                    "use input_tokens_per_output_token");
    const double tps = v.non_negative("output_tokens_per_s");
    record(v.path() + "/output_tokens_per_s", tps, "output tok/s", p);
    d.output_tokens_per_year = cost::tokens_per_year(tps, d.days_per_year);
    d.input_per_output = non_negative_or(v, "input_tokens_per_output_token", 0.0,
                                         "input tokens per output token", p);
  } else if (reqs) {
    if (v.has("input_tokens_per_output_token"))
      v.fail_member("input_tokens_per_output_token",
                    "with requests_per_day give input_tokens per request instead");
    const double rpd = v.non_negative("requests_per_day");
    record(v.path() + "/requests_per_day", rpd, "requests/day", p);
    const double out = v.positive("output_tokens");
    record(v.path() + "/output_tokens", out, "tokens/request", p);
    const double inp = non_negative_or(v, "input_tokens", 0.0, "tokens/request", p);
    d.output_tokens_per_year = rpd * out * d.days_per_year;
    d.input_per_output = inp / out;
  } else {
    v.fail("give output_tokens_per_s, or requests_per_day with input_tokens and output_tokens");
  }
  d.cache_hit_share = fraction_or(v, "cache_hit_share", 0.0, "share of input tokens", p);
  in_.demand = d;
}

void Reader::read_node(const JsonView& v) {
  v.only_keys(keys_with_prov({"capacity_output_tokens_per_s"}));
  const auto p = prov_of(v);
  in_.node_capacity_tok_s = v.positive("capacity_output_tokens_per_s");
  record(v.path() + "/capacity_output_tokens_per_s", *in_.node_capacity_tok_s, "output tok/s", p);
}

// A price that is one number or a [low, high] pair.
std::pair<double, double> read_price_range(const JsonView& v) {
  if (v.raw().is_number()) {
    const double x = v.number();
    if (!(x > 0)) v.fail("expected a price > 0, found " + describe_json(v.raw()));
    return {x, x};
  }
  if (!v.raw().is_array() || v.raw().size() != 2)
    v.fail("expected a number or a [low, high] pair of numbers, found " + describe_json(v.raw()));
  const auto a = v.array();
  const double lo = a[0].number(), hi = a[1].number();
  if (!(lo > 0)) a[0].fail("expected a price > 0, found " + describe_json(a[0].raw()));
  if (hi < lo) a[1].fail("high end of the range is below the low end");
  return {lo, hi};
}

// Opex given item by item (docs/scenario.md): allowed in /buy, and exclusive with opex_per_year.
constexpr const char* kOpexComponents[] = {"wall_power_w",
                                           "gpu_tdp_w",
                                           "gpu_load_share",
                                           "other_system_w",
                                           "pue",
                                           "electricity_per_kwh",
                                           "colo_per_month",
                                           "staff_fte",
                                           "fte_cost_per_year",
                                           "warranty_share_per_year",
                                           "other_opex_per_year"};

}  // namespace

std::vector<std::string> buy_section_keys() {
  auto keys = keys_with_prov(
      {"label", "capex", "capex_usd", "system_price", "system_price_usd", "price_point",
       "price_basis", "capex_includes_vat", "gpu", "gpus", "site", "vat_rate", "vat_recoverable",
       "life_months", "residual_share", "discount_rate", "opex_per_year", "opex_per_year_usd"});
  for (const char* k : kOpexComponents) keys.emplace_back(k);
  return keys;
}

const std::vector<std::string>& rent_price_keys() {
  static const std::vector<std::string> keys = {"per_month", "per_year", "per_month_usd",
                                                "per_year_usd", "gpu_hour_usd"};
  return keys;
}

std::vector<std::string> rent_section_keys() {
  std::vector<std::string> keys =
      keys_with_prov({"gpu", "gpus", "hours_per_month", "kind", "provider"});
  keys.insert(keys.end(), rent_price_keys().begin(), rent_price_keys().end());
  return keys;
}

namespace {

void Reader::read_buy(const JsonView& v) {
  v.only_keys(buy_section_keys());
  BuyContext x{v, prov_of(v), nullptr, nullptr, {}};
  x.device = read_buy_gpu(v, x.p);
  x.site = read_buy_site(v, x.p);
  if (x.site) x.site_prov = {"data/sites.json: " + x.site->prov.source, x.site->prov.as_of};
  cost::BuyInputs b;
  b.label = v.string_or("label", "buy");
  read_vat(x, b);  // first: it decides how prices are read
  read_capex(x, b);
  read_life(x, b);
  read_opex(x, b);
  in_.buy = b;
}

const Device* Reader::read_buy_gpu(const JsonView& v, const Provenance2& p) {
  const Device* device = nullptr;
  if (v.has("gpu")) {
    buy_gpu_ = v.string("gpu");
    try {
      device = &catalog(v, "gpu").device(buy_gpu_);
    } catch (const UnknownIdError& e) {
      v.fail_member("gpu", e.what());
    }
    record(v.path() + "/gpu", buy_gpu_, "device id", p);
  }
  if (v.has("gpus")) {
    buy_gpus_ = static_cast<int>(v.positive_int("gpus"));
    record(v.path() + "/gpus", buy_gpus_, "GPUs", p);
  }
  return device;
}

const Site* Reader::read_buy_site(const JsonView& v, const Provenance2& p) {
  if (!v.has("site")) return nullptr;
  const Site* site = nullptr;
  const std::string id = v.string("site");
  try {
    site = &catalog(v, "site").site(id);
  } catch (const UnknownIdError& e) {
    v.fail_member("site", e.what());
  }
  record(v.path() + "/site", id, "site id", p);
  return site;
}

// An amount in the site's currency, in the scenario's.
double Reader::site_money(const BuyContext& x, double amount) {
  return cost::convert(amount, catalog(x.v, "site").fx_per_usd(x.site->currency), in_.fx_per_usd);
}

void Reader::read_vat(const BuyContext& x, cost::BuyInputs& b) {
  const JsonView& v = x.v;
  if (v.has("vat_rate")) {
    b.vat_rate = fraction_or(v, "vat_rate", 0.0, "share", x.p);
  } else if (x.site) {
    b.vat_rate = x.site->vat_rate;
    record(v.path() + "/vat_rate", b.vat_rate, "share", x.site_prov);
  } else {
    record_default(v.path() + "/vat_rate", 0.0, "share");
  }
  b.vat_recoverable = v.boolean_or("vat_recoverable", false);
  note(v, "vat_recoverable", b.vat_recoverable, "", x.p);
}

// Capex from exactly one source: the scenario's capex or system price (in its currency or USD),
// else the catalog's hardware price for gpu × gpus. Net of VAT at the price point.
void Reader::read_capex(const BuyContext& x, cost::BuyInputs& b) {
  const JsonView& v = x.v;
  const char* kCapexKeys[] = {"capex", "capex_usd", "system_price", "system_price_usd"};
  std::vector<std::string> given;
  for (const char* k : kCapexKeys)
    if (v.has(k)) given.emplace_back(k);
  if (given.size() > 1)
    v.fail_member(given[1], "give one of capex, capex_usd, system_price, system_price_usd (found " +
                                given[0] + " too)");
  const bool includes_vat = v.boolean_or("capex_includes_vat", false);
  CapexQuote q;
  if (!given.empty()) {
    q = scenario_quote(x, given[0], includes_vat, b.vat_rate);
  } else if (x.device) {
    q = catalog_quote(x, b.vat_rate);
  } else {
    v.fail(
        "give capex, capex_usd, system_price, system_price_usd, or gpu and gpus to price the "
        "node from the catalog");
  }
  const std::string point =
      v.has("price_point") ? v.one_of("price_point", {"low", "mid", "high"}) : "mid";
  if (q.lo != q.hi) note(v, "price_point", point, "", x.p);
  const double price = point == "low" ? q.lo : point == "high" ? q.hi : (q.lo + q.hi) / 2;
  b.capex_net = cost::net_of_vat(price, q.includes_vat, q.strip_vat_rate);
  b.capex_net_low = cost::net_of_vat(q.lo, q.includes_vat, q.strip_vat_rate);
  b.capex_net_high = cost::net_of_vat(q.hi, q.includes_vat, q.strip_vat_rate);
}

// The scenario's own quote under `key`; a gross quote is stripped of the buyer's VAT.
Reader::CapexQuote Reader::scenario_quote(const BuyContext& x, const std::string& key,
                                          bool includes_vat, double vat_rate) {
  const JsonView& v = x.v;
  CapexQuote q;
  q.includes_vat = includes_vat;
  q.strip_vat_rate = vat_rate;
  note(v, "capex_includes_vat", q.includes_vat, "", x.p);
  const bool usd = key.ends_with("_usd");
  const auto j = v.at(key);
  if (key.starts_with("capex")) {
    const double c = j.number();
    if (!(c > 0)) j.fail("expected a number > 0, found " + describe_json(j.raw()));
    q.lo = q.hi = c;
  } else {
    std::tie(q.lo, q.hi) = read_price_range(j);
  }
  record(j.path(), j.raw(), usd ? "USD" : in_.currency, x.p);
  if (usd) {
    q.lo *= in_.fx_per_usd;
    q.hi *= in_.fx_per_usd;
  }
  return q;
}

// The catalog's price for the gpu × gpus node, through the function plan and recommend price a
// node with (pricing::own_price, docs/cost.md §6.2): the catalog system's complete-system prices
// of the basis, else its cards plus its host platform; a bare card is not a node. Net of each
// entry's own VAT (the buyer's rate where an entry does not state one), in the scenario currency.
Reader::CapexQuote Reader::catalog_quote(const BuyContext& x, double buyer_vat_rate) {
  const JsonView& v = x.v;
  const Catalog& c = catalog(v, "gpu");
  const System node = catalog_node(x);
  const pricing::Context ctx{in_.currency, in_.fx_per_usd, buyer_vat_rate};
  const bool stated = v.has("price_basis");
  const std::string asked =
      stated ? v.one_of("price_basis", {"street", "list", "quote"}) : std::string("street");
  // The node in every basis; unstated, the basis falls back from street to a vendor quote, then
  // to list, and says so.
  const char* const kBases[] = {"street", "list", "quote"};
  std::map<std::string, pricing::OwnPrice> by;
  for (const char* b : kBases)
    by[b] = pricing::own_price(node, c, *pricing::parse_own_basis(b), ctx);
  std::string used = asked;
  if (!stated && !by[asked].ok)
    for (const char* alt : {"quote", "list"})
      if (by[alt].ok) {
        used = alt;
        break;
      }
  const pricing::OwnPrice& o = by[used];
  if (!o.ok) {
    // o.reason names the node and what is missing; say which bases would price it instead.
    std::string others;
    for (const char* b : kBases)
      if (b != asked && by[b].ok) others += std::string(others.empty() ? "" : " or ") + b;
    const std::string where = node.id.empty()
                                  ? fmt::format(" (data/systems.json has no {}-GPU {} system)",
                                                node.gpus_per_node, node.device)
                                  : "";
    if (stated)
      v.fail_member("price_basis",
                    fmt::format("{}{}; {}", o.reason, where,
                                others.empty() ? "no basis prices it: give capex or system_price"
                                               : "price_basis " + others + " would price it"));
    v.fail_member("gpu", fmt::format("the catalog prices this node in no basis: {}{}; give capex "
                                     "or system_price",
                                     o.reason, where));
  }
  if (used == asked)
    note(v, "price_basis", used, "", x.p);
  else
    record(v.path() + "/price_basis", used, "",
           {fmt::format("the catalog has no {} price for this node", asked), ""});
  for (const pricing::Entry& e : o.entries)
    record(v.path() + (e.name.find("/host_platform/") != std::string::npos
                           ? "/host_platform (catalog)"
                           : "/system_price (catalog)"),
           Json::array({e.low * e.count, e.high * e.count}), e.currency,
           {fmt::format("data/{}, {}", e.name, e.source), e.as_of});
  record(v.path() + "/system_price (catalog) basis", o.basis, "",
         {fmt::format("{} entr{}, each converted and made net of its own VAT; range from the "
                      "lowest low to the highest high",
                      o.entries.size(), o.entries.size() == 1 ? "y" : "ies"),
          ""});
  CapexQuote q;
  q.lo = o.net_low;  // already net of VAT
  q.hi = o.net_high;
  return q;
}

// The catalog system the buy prices: data/systems.json's gpu × gpus node (with gpus unset, the
// device's first listed system), else a stand-in that only complete-system entries can price.
System Reader::catalog_node(const BuyContext& x) {
  const Catalog& c = catalog(x.v, "gpu");
  if (buy_gpus_ == 0) {
    for (const System& s : c.systems)
      if (s.device == x.device->id) {
        record(x.v.path() + "/gpus", s.gpus_per_node, "GPUs",
               {"data/systems.json: " + s.id + " (gpus not given: the device's first system)", ""});
        return s;
      }
    x.v.fail_member("gpu", fmt::format("data/systems.json has no system of '{}', so the node "
                                       "size is unknown: give gpus (then only a prices.json "
                                       "complete-system entry of that size can price it), or "
                                       "capex or system_price",
                                       x.device->id));
  }
  return pricing::node_for(c, *x.device, buy_gpus_);
}

void Reader::read_life(const BuyContext& x, cost::BuyInputs& b) {
  const JsonView& v = x.v;
  b.life_months = positive_int_or(v, "life_months", in_.horizon_months, "months", x.p);
  if (b.life_months > in_.horizon_months)  // the headline would mix the two periods
    v.fail_member("life_months",
                  fmt::format("life_months {} is longer than horizon_months {}: the totals over "
                              "the horizon would charge the whole capex while ROI and the "
                              "rent-to-own threshold run over the life; set horizon_months to "
                              "at least {}",
                              b.life_months, in_.horizon_months, b.life_months));
  b.residual_share = fraction_or(v, "residual_share", 0.0, "share of capex", x.p);
  b.discount_rate = fraction_or(v, "discount_rate", 0.0, "per year", x.p);
}

// Opex: a total or its components, never both.
void Reader::read_opex(const BuyContext& x, cost::BuyInputs& b) {
  const JsonView& v = x.v;
  const auto total = money(v, "opex_per_year", "opex_per_year_usd", x.p, "/year");
  if (total) {
    for (const char* k : kOpexComponents)
      if (v.has(k))
        v.fail_member(k,
                      "opex_per_year is given as a total; remove it or give the components only");
    b.opex_per_year = *total;
    return;
  }
  bool any = false;
  for (const char* k : kOpexComponents) any = any || v.has(k);
  if (!any && !x.site)
    v.fail(
        "give opex_per_year, or its components (power, electricity_per_kwh, colo_per_month, "
        "staff_fte, warranty_share_per_year, other_opex_per_year)");
  b.opex_itemized = true;
  b.wall_power_w = read_wall_power(x);
  read_power_price(x, b);
  const double fte = non_negative_or(v, "staff_fte", 0.0, "FTE", x.p);
  if (fte > 0) {
    const double fte_cost = v.positive("fte_cost_per_year");
    record(v.path() + "/fte_cost_per_year", fte_cost, in_.currency + "/year", x.p);
    b.staff_per_year = fte * fte_cost;
  } else if (v.has("fte_cost_per_year")) {
    v.fail_member("fte_cost_per_year", "given without staff_fte");
  }
  b.warranty_per_year =
      fraction_or(v, "warranty_share_per_year", 0.0, "share of capex per year", x.p) * b.capex_net;
  b.other_per_year = non_negative_or(v, "other_opex_per_year", 0.0, in_.currency + "/year", x.p);
  const double power_month =
      b.wall_power_w > 0 ? cost::electricity_per_month(b.wall_power_w, b.pue, b.electricity_per_kwh,
                                                       in_.month_hours)
                         : 0.0;
  b.opex_per_year = (power_month + b.colo_per_month) * cost::kMonthsPerYear + b.staff_per_year +
                    b.warranty_per_year + b.other_per_year;
}

// The node's wall power: given, or GPUs × TDP × load share + the rest of the system (the TDP
// from the catalog when the section names a gpu); 0 when neither.
double Reader::read_wall_power(const BuyContext& x) {
  const JsonView& v = x.v;
  if (v.has("wall_power_w")) {
    for (const char* k : {"gpu_tdp_w", "gpu_load_share", "other_system_w"})
      if (v.has(k)) v.fail_member(k, "wall_power_w is given; remove it or give the parts only");
    const double w = v.non_negative("wall_power_w");
    // A GB200 NVL72 rack draws about 130 kW; 1 MW for one node is a unit mistake (1e14 passed).
    if (w > 1e6) v.fail_member("wall_power_w", fmt::format("{} W is above 1 MW for one node", w));
    record(v.path() + "/wall_power_w", w, "W", x.p);
    return w;
  }
  if (!v.has("gpu_tdp_w") && !x.device) return 0.0;
  // Nothing said about power: the catalog system's wall power (GPUs, CPUs, fans, PSU losses),
  // not the GPUs' TDP alone, which leaves the host out.
  const bool parts = v.has("gpu_tdp_w") || v.has("gpu_load_share") || v.has("other_system_w");
  if (!parts && x.device && buy_gpus_ > 0)
    if (const System* sys = pricing::system_for(catalog(v, "gpu"), x.device->id, buy_gpus_);
        sys && sys->wall_power_w > 0) {
      record(v.path() + "/wall_power_w (catalog system)", sys->wall_power_w, "W",
             {"data/systems.json: " + sys->id + ", " + sys->prov.source, sys->prov.as_of});
      return sys->wall_power_w;
    }
  // A node size the catalog does not list: scale the wall power of the device's nearest catalog
  // system per GPU (host, fans and PSU losses included), rather than the GPUs' TDP alone.
  if (!parts && x.device && buy_gpus_ > 0) {
    const System* near = nullptr;
    for (const System& s : catalog(v, "gpu").systems)
      if (s.device == x.device->id && s.wall_power_w > 0 &&
          (!near ||
           std::abs(s.gpus_per_node - buy_gpus_) < std::abs(near->gpus_per_node - buy_gpus_)))
        near = &s;
    if (near) {
      const double w = near->wall_power_w / near->gpus_per_node * buy_gpus_;
      record(v.path() + fmt::format("/wall_power_w (catalog system {} scaled to {} GPUs, "
                                    "estimated)",
                                    near->id, buy_gpus_),
             w, "W",
             {"data/systems.json: " + near->id + ", " + near->prov.source, near->prov.as_of});
      return w;
    }
  }
  double tdp = 0;
  if (v.has("gpu_tdp_w")) {
    tdp = v.positive("gpu_tdp_w");
    record(v.path() + "/gpu_tdp_w", tdp, "W", x.p);
  } else {
    tdp = x.device->tdp_w;
    record(v.path() + "/gpu_tdp_w (catalog)", tdp, "W",
           {"data/devices.json: " + x.device->prov.source, x.device->prov.as_of});
  }
  if (buy_gpus_ <= 0) v.fail_member("gpus", "required to compute power from the GPU TDP");
  const double load = fraction_or(v, "gpu_load_share", 1.0, "share of TDP", x.p);
  const double other = non_negative_or(v, "other_system_w", 0.0, "W", x.p);
  return cost::node_power_w(buy_gpus_, tdp, load, other);
}

// PUE, electricity price and colocation: the section's own, else the site's.
void Reader::read_power_price(const BuyContext& x, cost::BuyInputs& b) {
  const JsonView& v = x.v;
  if (v.has("pue")) {
    b.pue = v.positive("pue");
    if (b.pue < 1) v.fail_member("pue", "PUE below 1 is not physical");
    // Data centres report 1.1–2.5 (Uptime Institute's survey average is about 1.6); 3 leaves room
    // for a poor site while catching a percentage or a typo (100 passed).
    if (b.pue > 3) v.fail_member("pue", fmt::format("PUE {} is above 3: no data centre's", b.pue));
    record(v.path() + "/pue", b.pue, "", x.p);
  } else if (x.site) {
    b.pue = x.site->pue;
    record(v.path() + "/pue", b.pue, "", x.site_prov);
  } else {
    record_default(v.path() + "/pue", 1.0, "");
  }
  if (v.has("electricity_per_kwh")) {
    b.electricity_per_kwh = v.non_negative("electricity_per_kwh");
    record(v.path() + "/electricity_per_kwh", b.electricity_per_kwh, in_.currency + "/kWh", x.p);
  } else if (x.site) {
    b.electricity_per_kwh = site_money(x, x.site->electricity_per_kwh);
    record(v.path() + "/electricity_per_kwh", x.site->electricity_per_kwh,
           x.site->currency + "/kWh", x.site_prov);
  } else if (b.wall_power_w > 0) {
    v.fail_member("electricity_per_kwh", "required when the node draws power (or give a site)");
  }
  if (v.has("colo_per_month")) {
    b.colo_per_month = v.non_negative("colo_per_month");
    record(v.path() + "/colo_per_month", b.colo_per_month, in_.currency, x.p);
  } else if (x.site && x.site->colo_per_kw_month > 0) {
    b.colo_per_month = site_money(x, x.site->colo_per_kw_month) * b.wall_power_w / 1000.0;
    record(v.path() + "/colo_per_kw_month", x.site->colo_per_kw_month,
           x.site->currency + "/kW/month", x.site_prov);
  }
}

void Reader::read_rent(const JsonView& v) {
  v.only_keys(rent_section_keys());
  const auto p = prov_of(v);
  cost::RentInputs r;
  r.kind = v.has("kind") ? v.one_of("kind", {"on_demand", "reserved", "spot"}) : "on_demand";
  note(v, "kind", r.kind, "", p);
  std::vector<std::string> given;
  for (const auto& k : rent_price_keys())
    if (v.has(k)) given.push_back(k);
  if (given.size() > 1) v.fail_member(given[1], "give one rent price (found " + given[0] + " too)");
  auto hourly_month = [&](double usd_per_gpu_hour) {
    const RentedNode n = read_rented_node(v, p, "required with an hourly price (or give buy/gpus)");
    r.billed_hours_per_year = cost::kMonthsPerYear * n.hours;
    return cost::rent_per_month_from_hourly(usd_per_gpu_hour * in_.fx_per_usd, n.gpus, n.hours);
  };
  if (!given.empty()) {
    const std::string& k = given[0];
    // A rent of zero has no node-hour rate and no break-even; a free node is not a rent.
    const double x = v.positive(k);
    const bool usd = k.ends_with("_usd");
    const std::string per = k == "gpu_hour_usd"          ? "/GPU-hour"
                            : k.starts_with("per_month") ? "/month"
                                                         : "/year";
    record(v.path() + "/" + k, x, (usd ? "USD" : in_.currency) + per, p);
    if (k == "gpu_hour_usd") {
      r.per_month = hourly_month(x);
    } else if (k.starts_with("per_month")) {
      r.per_month = usd ? x * in_.fx_per_usd : x;
      r.billed_hours_per_year = cost::kMonthsPerYear * billed_hours_per_month(v, p);
    } else {
      r.per_month = (usd ? x * in_.fx_per_usd : x) / cost::kMonthsPerYear;
      r.billed_hours_per_year = cost::kHoursPerYear;
    }
  } else if (v.has("gpu") || !buy_gpu_.empty()) {
    const std::string gpu = v.has("gpu") ? v.string("gpu") : buy_gpu_;
    const Catalog& c = catalog(v, v.has("gpu") ? "gpu" : "kind");
    try {
      (void)c.device(gpu);
    } catch (const UnknownIdError& e) {
      v.fail_member("gpu", e.what());
    }
    const std::string provider = v.string_or("provider", "");
    if (provider.empty()) {
      read_catalog_rent(v, c, gpu, p, r);
      in_.rent = r;
      return;
    }
    const RentalPrice* best = nullptr;
    for (const RentalPrice* rp : c.rental_prices_for(gpu))
      if (rp->kind == r.kind && (provider.empty() || rp->provider == provider) &&
          (!best || rp->usd_per_gpu_hour < best->usd_per_gpu_hour))
        best = rp;
    if (!best)
      v.fail("the catalog has no " + r.kind + " rental price for '" + gpu + "'" +
             (provider.empty() ? "" : " from " + provider) +
             "; give per_month, per_year or gpu_hour_usd");
    record(v.path() + "/gpu_hour_usd (catalog, " + best->provider + ")", best->usd_per_gpu_hour,
           "USD", {"data/prices.json: " + best->prov.source, best->prov.as_of});
    r.per_month = hourly_month(best->usd_per_gpu_hour);
  } else {
    v.fail("give per_month, per_year, gpu_hour_usd with gpus, or gpu to price from the catalog");
  }
  in_.rent = r;
}

// GPUs rented (rent/gpus, else buy/gpus; `why` when neither) and hours billed a month.
Reader::RentedNode Reader::read_rented_node(const JsonView& v, const Provenance2& p,
                                            const std::string& why) {
  RentedNode n{buy_gpus_, 0};
  if (v.has("gpus")) {
    n.gpus = static_cast<int>(v.positive_int("gpus"));
    record(v.path() + "/gpus", n.gpus, "GPUs", p);
  } else if (n.gpus > 0) {
    record(v.path() + "/gpus (from buy)", n.gpus, "GPUs", p);
  } else {
    v.fail_member("gpus", why);
  }
  n.hours = billed_hours_per_month(v, p);
  return n;
}

// The hours a month a rent bills: rent/hours_per_month, else the scenario's month_hours.
double Reader::billed_hours_per_month(const JsonView& v, const Provenance2& p) {
  const double hours = positive_or(v, "hours_per_month", in_.month_hours, "hours", p);
  if (hours > 744) v.fail_member("hours_per_month", "a month has at most 744 hours");
  return hours;
}

// A catalog rent with no provider named: the node's rent as plan prices it (pricing.hpp) — the
// catalog system's rentals of that kind per node-hour, else the device's per-GPU-hour rentals ×
// GPUs — the cheapest entry, × the rented hours. "reserved" is the 3-year commitment, the only
// one prices.json lists.
void Reader::read_catalog_rent(const JsonView& v, const Catalog& c, const std::string& gpu,
                               const Provenance2& p, cost::RentInputs& r) {
  const RentedNode n =
      read_rented_node(v, p, "required to price a rented node from the catalog (or give buy/gpus)");
  const pricing::RentKind k = r.kind == "spot"       ? pricing::RentKind::spot
                              : r.kind == "reserved" ? pricing::RentKind::reserved_3y
                                                     : pricing::RentKind::on_demand;
  const pricing::RentPrice rp = pricing::rent_price(pricing::node_for(c, c.device(gpu), n.gpus), c,
                                                    k, {in_.currency, in_.fx_per_usd, 0});
  if (!rp.ok) v.fail(rp.reason + "; give per_month, per_year or gpu_hour_usd");
  const auto cheapest = static_cast<std::size_t>(
      std::min_element(rp.alternatives.begin(), rp.alternatives.end()) - rp.alternatives.begin());
  const pricing::Entry& e = rp.entries[cheapest];
  record(v.path() + "/" + (e.count > 1 ? "gpu_hour_usd" : "node_hour_usd") + " (catalog, " +
             rp.basis + ")",
         e.low, e.currency, {e.name + ": " + e.source, e.as_of});
  r.per_month = rp.per_node_hour * n.hours;
  r.billed_hours_per_year = cost::kMonthsPerYear * n.hours;
}

void Reader::read_api(const JsonView& v) {
  v.only_keys(keys_with_prov({"label", "model", "provider", "tier", "input_usd_per_mtok",
                              "cached_input_usd_per_mtok", "output_usd_per_mtok", "input_per_mtok",
                              "cached_input_per_mtok", "output_per_mtok"}));
  const auto p = prov_of(v);
  if (!in_.demand) v.fail("the API option needs a demand section to price");
  cost::ApiInputs a;
  a.label = v.string_or("label", "api");
  const bool explicit_prices = v.has("input_usd_per_mtok") || v.has("output_usd_per_mtok") ||
                               v.has("input_per_mtok") || v.has("output_per_mtok");
  if (v.has("model") && explicit_prices)
    v.fail_member("model", "give a catalog model or explicit prices, not both");
  if (v.has("model")) {
    const std::string model = v.string("model");
    const Catalog& c = catalog(v, "model");
    try {
      (void)c.model(model);
    } catch (const UnknownIdError& e) {
      v.fail_member("model", e.what());
    }
    const std::string provider = v.string_or("provider", ""), tier = v.string_or("tier", "list");
    const ApiPrice* pick = nullptr;
    for (const ApiPrice* ap : c.api_prices_for(model))
      if ((provider.empty() || ap->provider == provider) && ap->tier == tier) {
        pick = ap;
        break;
      }
    if (!pick)
      v.fail_member("model", "the catalog has no " + tier + " API price for '" + model + "'" +
                                 (provider.empty() ? "" : " from " + provider));
    const double fx = c.fx_per_usd(pick->currency);
    a.input_per_mtok = cost::convert(pick->input_per_mtok, fx, in_.fx_per_usd);
    a.cached_input_per_mtok = cost::convert(
        pick->cached_input_per_mtok.value_or(pick->input_per_mtok), fx, in_.fx_per_usd);
    a.output_per_mtok = cost::convert(pick->output_per_mtok, fx, in_.fx_per_usd);
    if (a.label == "api") a.label = "api (" + model + ", " + pick->provider + ")";
    const Provenance2 cp{"data/prices.json: " + pick->provider + ", " + pick->prov.source,
                         pick->prov.as_of};
    const std::string unit = pick->currency + "/MTok";
    record(v.path() + "/model", model, "model id", p);
    record(v.path() + "/input_per_mtok (catalog)", pick->input_per_mtok, unit, cp);
    record(v.path() + "/cached_input_per_mtok (catalog)",
           pick->cached_input_per_mtok.value_or(pick->input_per_mtok), unit, cp);
    record(v.path() + "/output_per_mtok (catalog)", pick->output_per_mtok, unit, cp);
    return void(in_.api = a);
  }
  for (const char* k : {"provider", "tier"})
    if (v.has(k)) v.fail_member(k, "only meaningful with model (a catalog price)");
  auto read = [&](const std::string& local, const std::string& usd, bool required,
                  std::optional<double> def) -> double {
    const bool l = v.has(local), u = v.has(usd);
    if (l && u) v.fail_member(usd, "give " + local + " or " + usd + ", not both");
    if (l) {
      const double x = v.non_negative(local);
      record(v.path() + "/" + local, x, in_.currency + "/MTok", p);
      return x;
    }
    if (u) {
      const double x = v.non_negative(usd);
      record(v.path() + "/" + usd, x, "USD/MTok", p);
      return x * in_.fx_per_usd;
    }
    if (required) v.fail_member(usd, "required field is missing (or give " + local + ", or model)");
    record_default(v.path() + "/" + usd, Json("= input price"), "");
    return *def;
  };
  a.input_per_mtok = read("input_per_mtok", "input_usd_per_mtok", true, std::nullopt);
  a.output_per_mtok = read("output_per_mtok", "output_usd_per_mtok", true, std::nullopt);
  a.cached_input_per_mtok =
      read("cached_input_per_mtok", "cached_input_usd_per_mtok", false, a.input_per_mtok);
  in_.api = a;
}

void Reader::read_people(const JsonView& v) {
  v.only_keys(keys_with_prov({"fte_cost_per_year", "hours_per_fte_year", "users",
                              "hours_saved_per_user_per_day", "working_days_per_year"}));
  const auto p = prov_of(v);
  cost::PeopleInputs pp;
  pp.fte_cost_per_year = v.positive("fte_cost_per_year");
  record(v.path() + "/fte_cost_per_year", pp.fte_cost_per_year, in_.currency + "/year", p);
  pp.hours_per_fte_year = positive_or(v, "hours_per_fte_year", 1760.0, "hours", p);
  if (pp.hours_per_fte_year > 8760) v.fail_member("hours_per_fte_year", "a year has 8,760 hours");
  pp.users = non_negative_or(v, "users", 0.0, "people", p);
  pp.hours_saved_per_user_per_day =
      non_negative_or(v, "hours_saved_per_user_per_day", 0.0, "hours/day", p);
  if (pp.hours_saved_per_user_per_day > 24)
    v.fail_member("hours_saved_per_user_per_day", "a day has 24 hours");
  pp.working_days_per_year = positive_or(v, "working_days_per_year", 220.0, "days", p);
  if (pp.working_days_per_year > 366)
    v.fail_member("working_days_per_year", "a year has 366 days at most");
  in_.people = pp;
}

void Reader::read_provider(const JsonView& v) {
  v.only_keys(keys_with_prov({"input_usd_per_mtok", "cached_input_usd_per_mtok",
                              "output_usd_per_mtok", "cache_hit_share", "mixes", "sold_utilization",
                              "own_price_usd_per_mtok", "competitor_prices_usd_per_mtok"}));
  const auto p = prov_of(v);
  cost::ProviderInputs pv;
  pv.input_usd_per_mtok = v.non_negative("input_usd_per_mtok");
  record(v.path() + "/input_usd_per_mtok", pv.input_usd_per_mtok, "USD/MTok", p);
  pv.output_usd_per_mtok = v.positive("output_usd_per_mtok");
  record(v.path() + "/output_usd_per_mtok", pv.output_usd_per_mtok, "USD/MTok", p);
  pv.cached_input_usd_per_mtok =
      non_negative_or(v, "cached_input_usd_per_mtok", pv.input_usd_per_mtok, "USD/MTok", p);
  pv.cache_hit_share = fraction_or(v, "cache_hit_share", 0.0, "share of input tokens", p);
  if (v.has("mixes")) {
    for (const auto& m : v.array("mixes")) {
      m.only_keys({"name", "input_tokens", "output_tokens"});
      cost::ProviderMix mix;
      mix.input_tokens = m.non_negative("input_tokens");
      mix.output_tokens = m.positive("output_tokens");
      mix.name = m.string_or("name", fmt::format("{}:{}", mix.input_tokens, mix.output_tokens));
      record(m.path(), m.raw(), "tokens in:out", p);
      pv.mixes.push_back(mix);
    }
    if (pv.mixes.empty()) v.fail_member("mixes", "expected at least one mix");
  } else {
    pv.mixes.push_back({"1:1", 1, 1});
    record_default(v.path() + "/mixes", Json::array({{{"input_tokens", 1}, {"output_tokens", 1}}}),
                   "tokens in:out");
  }
  if (v.has("sold_utilization")) {
    // The payback at a share of capacity sold needs that capacity: without a node it was
    // silently left blank under a heading that promised it (audit 2026-11-27).
    if (!in_.node_capacity_tok_s)
      v.fail_member("sold_utilization",
                    "needs the node's capacity (node/capacity_output_tokens_per_s) to sell a "
                    "share of");
    pv.sold_utilization = v.fraction("sold_utilization");
    if (*pv.sold_utilization <= 0) v.fail_member("sold_utilization", "expected a share > 0");
    record(v.path() + "/sold_utilization", *pv.sold_utilization, "share of capacity", p);
  }
  pv.own_price_usd_per_mtok =
      positive_or(v, "own_price_usd_per_mtok", pv.output_usd_per_mtok, "USD/MTok", p);
  for (const auto& c : v.array_or_empty("competitor_prices_usd_per_mtok")) {
    const double x = c.number();
    if (!(x > 0)) c.fail("expected a price > 0, found " + describe_json(c.raw()));
    pv.competitor_prices_usd_per_mtok.push_back(x);
    record(c.path(), x, "USD/MTok", p);
  }
  in_.provider = pv;
}

void Reader::read_power_only(const JsonView& v) {
  v.only_keys(keys_with_prov({"electricity_per_kwh", "pue", "systems"}));
  const auto p = prov_of(v);
  cost::PowerOnlyInputs po;
  po.electricity_per_kwh = v.positive("electricity_per_kwh");
  record(v.path() + "/electricity_per_kwh", po.electricity_per_kwh, in_.currency + "/kWh", p);
  po.pue = positive_or(v, "pue", 1.0, "", p);
  if (po.pue < 1) v.fail_member("pue", "PUE below 1 is not physical");
  const auto systems = v.array("systems");
  if (systems.empty()) v.fail_member("systems", "expected at least one system");
  for (const auto& s : systems) {
    s.only_keys({"name", "system_w", "output_tokens_per_s", "source", "as_of", "notes"});
    const auto sp = prov_of(s, p);
    cost::PowerSystem ps;
    ps.name = s.string("name");
    ps.system_w = s.positive("system_w");
    ps.tokens_per_s = s.positive("output_tokens_per_s");
    record(s.path() + "/system_w", ps.system_w, "W", sp);
    record(s.path() + "/output_tokens_per_s", ps.tokens_per_s, "tok/s", sp);
    po.systems.push_back(ps);
  }
  in_.power_only = po;
}

}  // namespace

cost::CostInputs parse_scenario(const Json& doc, const std::string& file,
                                const CatalogProvider& catalog) {
  Reader r(doc, file, catalog);
  return r.read();
}

cost::CostInputs parse_scenario_text(const std::string& text, const std::string& file,
                                     const CatalogProvider& catalog) {
  const Json doc = parse_json_text(text, file);
  return parse_scenario(doc, file, catalog);
}

cost::CostInputs load_scenario(const std::string& path, const CatalogProvider& catalog) {
  const Json doc = parse_json_file(path);
  return parse_scenario(doc, path, catalog);
}

}  // namespace moeplan
