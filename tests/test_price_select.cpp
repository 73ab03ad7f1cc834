// Catalog node prices in cost, plan and recommend (one rule, pricing.hpp) and VAT of foreign
// price entries (issue 16, items 5 and 6): docs/plan.md §Monte Carlo, docs/cost.md §3 and §6.2.
#include <catch2/catch.hpp>

#include <tuple>

#include "moeplan/errors.hpp"
#include "moeplan/plan.hpp"
#include "moeplan/pricing.hpp"
#include "moeplan/recommend.hpp"
#include "moeplan/scenario.hpp"
#include "test_support.hpp"

using namespace moeplan;
using Catch::Matchers::Contains;

namespace {

const Catalog& cat() {
  return test::bundled_catalog();
}

// A cost scenario buying `gpus` × `gpu` priced from the catalog (gpus 0: not given; basis "":
// not stated).
std::string buy_scenario(const std::string& gpu, int gpus = 0, const std::string& basis = "") {
  return std::string(R"({"currency": "USD", "horizon_months": 36,
      "demand": {"output_tokens_per_s": 100}, "node": {"capacity_output_tokens_per_s": 500},
      "buy": {"gpu": ")") +
         gpu + "\"" + (gpus > 0 ? R"(, "gpus": )" + std::to_string(gpus) : std::string()) +
         R"(, "opex_per_year": 0)" + (basis.empty() ? "" : R"(, "price_basis": ")" + basis + "\"") +
         "}}";
}

const cost::Assumption* assumption(const cost::CostInputs& in, const std::string& name) {
  for (const auto& a : in.assumptions)
    if (a.name == name) return &a;
  return nullptr;
}

}  // namespace

TEST_CASE("cost prices every catalog node as plan does, in every basis",
          "[cost][prices][property]") {
  // One rule (docs/cost.md §3, §6.2): `cost` takes pricing::own_price, the function plan,
  // recommend and menus price a node with, so the two tools never disagree on a node's price.
  // Before, cost picked the prices.json entry nearest the median (outliers dropped, quotes
  // counted as street) and agreed with plan only where the catalog happened to make it so.
  const CatalogProvider provider = []() -> const Catalog& { return cat(); };
  int priced = 0, refused = 0;
  for (const System& sys : cat().systems)
    for (const pricing::OwnBasis basis :
         {pricing::OwnBasis::street, pricing::OwnBasis::list, pricing::OwnBasis::quote}) {
      const std::string b = pricing::own_basis_name(basis);
      INFO(sys.id << " in " << b);
      const pricing::OwnPrice plan = pricing::own_price(sys, cat(), basis, {});
      const std::string text = buy_scenario(sys.device, sys.gpus_per_node, b);
      if (!plan.ok) {
        CHECK_THROWS_AS(parse_scenario_text(text, "s.json", provider), InputError);
        ++refused;
        continue;
      }
      // A device's first system of a size is the one both tools take (system_for).
      if (pricing::system_for(cat(), sys.device, sys.gpus_per_node) != &sys) continue;
      const cost::CostInputs in = parse_scenario_text(text, "s.json", provider);
      REQUIRE(in.buy);
      CHECK(in.buy->capex_net_low == Approx(plan.net_low).epsilon(1e-12));
      CHECK(in.buy->capex_net_high == Approx(plan.net_high).epsilon(1e-12));
      CHECK(in.buy->capex_net == Approx(plan.mid()).epsilon(1e-12));
      ++priced;
    }
  // The bundled catalog exercises both branches.
  CHECK(priced >= 10);
  CHECK(refused >= 10);
}

TEST_CASE("an unstated price basis falls back from street to quote, then list, and says so",
          "[cost][prices][scenario]") {
  const CatalogProvider provider = []() -> const Catalog& { return cat(); };
  // 8 × B200 has only a vendor quote in the catalog; 8 × A100 (hgx-a100-8) only a list price.
  for (const auto& [gpu, basis] :
       {std::pair<std::string, std::string>{"b200", "quote"}, {"a100-80gb", "list"}}) {
    INFO(gpu);
    const cost::CostInputs in = parse_scenario_text(buy_scenario(gpu, 8, ""), "s.json", provider);
    REQUIRE(in.buy);
    const System* sys = pricing::system_for(cat(), gpu, 8);
    REQUIRE(sys != nullptr);
    const pricing::OwnPrice o =
        pricing::own_price(*sys, cat(), *pricing::parse_own_basis(basis), {});
    REQUIRE(o.ok);
    CHECK(in.buy->capex_net == Approx(o.mid()));
    const cost::Assumption* a = assumption(in, "/buy/price_basis");
    REQUIRE(a != nullptr);
    CHECK(a->value == Json(basis));
    CHECK_THAT(a->source, Contains("no street price"));
    // Stated, street is refused where the catalog has none: no silent switch.
    try {
      (void)parse_scenario_text(buy_scenario(gpu, 8, "street"), "s.json", provider);
      FAIL("a stated basis the catalog lacks must be an error");
    } catch (const InputError& e) {
      CHECK_THAT(std::string(e.what()), Contains("/buy/price_basis") &&
                                            Contains("no street price") &&
                                            Contains("price_basis " + basis + " would price it"));
    }
  }
  // hgx-a100-8 at list: 199,000 USD (data/systems.json).
  CHECK(parse_scenario_text(buy_scenario("a100-80gb", 8, ""), "s.json", provider).buy->capex_net ==
        Approx(199000));
}

TEST_CASE("a gross catalog price is stripped with its own VAT, not the buyer's", "[cost][prices]") {
  // The 140M HUF 8×H200 node is gross with 27% Hungarian VAT. Bought in a US scenario (VAT 0,
  // 311 HUF/USD, the catalog's HUF rate): net = 140M / 1.27 / 311 = 354,457 USD; the old code
  // stripped the buyer's 0% and charged 450,161 USD (+27%).
  Catalog c = cat();
  std::vector<HardwarePrice> keep;
  for (const auto& h : c.hardware_prices)
    if (!(h.device == "h200" && h.devices == 8 && h.currency == "USD")) keep.push_back(h);
  c.hardware_prices = keep;
  // The node's systems.json prices come first (pricing.hpp): keep only its HUF one there too.
  for (System& sys : c.systems)
    if (sys.id == "hgx-h200-8")
      std::erase_if(sys.prices, [](const SystemPrice& p) { return p.currency == "USD"; });
  const CatalogProvider provider = [&c]() -> const Catalog& { return c; };
  const double fx = c.fx_per_usd("HUF");
  const std::string text = R"({
    "currency": "USD", "horizon_months": 36,
    "demand": {"output_tokens_per_s": 100},
    "node": {"capacity_output_tokens_per_s": 500},
    "buy": {"gpu": "h200", "gpus": 8, "vat_rate": 0, "opex_per_year": 0}
  })";
  const cost::CostInputs in = parse_scenario_text(text, "us.json", provider);
  REQUIRE(in.buy);
  CHECK(in.buy->capex_net == Approx(140e6 / 1.27 / fx).epsilon(1e-9));
  // The buyer's own quote, gross, still uses the buyer's rate (here 8%).
  const std::string own = R"({
    "currency": "USD", "horizon_months": 36,
    "demand": {"output_tokens_per_s": 100},
    "node": {"capacity_output_tokens_per_s": 500},
    "buy": {"capex": 108000, "capex_includes_vat": true, "vat_rate": 0.08, "opex_per_year": 0}
  })";
  CHECK(parse_scenario_text(own, "own.json", provider).buy->capex_net == Approx(100000));
}

TEST_CASE("buy/price_basis: stated, defaulted, and refused when the catalog lacks it",
          "[cost][prices][scenario]") {
  const CatalogProvider provider = []() -> const Catalog& { return cat(); };
  const double fx = cat().fx_per_usd("HUF");
  // Street (default): 40–47.3M HUF gross at 27% → mid 43.65M / 1.27 / fx.
  CHECK(
      parse_scenario_text(buy_scenario("rtx-pro-6000", 8, ""), "s.json", provider).buy->capex_net ==
      Approx(43.65e6 / 1.27 / fx).epsilon(1e-9));
  // List: 115M HUF gross.
  CHECK(parse_scenario_text(buy_scenario("rtx-pro-6000", 8, "list"), "s.json", provider)
            .buy->capex_net == Approx(115e6 / 1.27 / fx).epsilon(1e-9));
  try {
    (void)parse_scenario_text(buy_scenario("b200", 8, "list"), "s.json", provider);
    FAIL("a stated basis the catalog lacks must be an error");
  } catch (const InputError& e) {
    CHECK_THAT(std::string(e.what()), Contains("/buy/price_basis") && Contains("no list price"));
  }
  try {
    (void)parse_scenario_text(buy_scenario("rtx-pro-6000", 8, "retail"), "s.json", provider);
    FAIL("an unknown basis must be an error");
  } catch (const InputError& e) {
    CHECK_THAT(std::string(e.what()), Contains("/buy/price_basis"));
  }
}

TEST_CASE("plan Monte Carlo draws only the point estimate's rental kind and basis",
          "[plan][prices]") {
  // 8 × H200 rented reserved (reserved_3y, 1.6 USD/GPU-hour × 8 = 12.8 USD per node-hour): the
  // on-demand (4.25) and spot entries never enter the draws; the rent range is then a point.
  const Json j = Json::parse(R"({
    "currency": "USD", "horizon_months": 36,
    "demand": {"requests_per_day": 20000, "input_tokens": 2000, "output_tokens": 500},
    "models": ["glm-5.2"],
    "builds": [{"device": "h200", "gpus_per_node": 8, "precision": "fp8"}],
    "buy": {"vat_rate": 0, "life_months": 36, "opex_per_year": 20000},
    "rent": {"kind": "reserved"},
    "monte_carlo": {"samples": 500}
  })");
  const auto r = plan::run_plan(plan::parse_plan_scenario(j, "mc.json", cat()), cat());
  REQUIRE(r.candidates.size() == 1);
  const auto& c = r.candidates[0];
  REQUIRE(c.mc_inputs.rent_per_month.size() == 1);
  const auto& pe = c.mc_price_entries;
  REQUIRE(pe.count("rent"));
  CHECK_THAT(pe.at("rent").at(0), Contains("reserved"));
  for (const auto& x : pe.at("rent")) {
    CHECK(x.find("on_demand") == std::string::npos);
    CHECK(x.find("spot") == std::string::npos);
  }
  REQUIRE(c.mc.rent_per_mtok);
  REQUIRE(c.rent_per_mtok);
  // The draws move only the node count (throughput spread), never the reserved price.
  CHECK(c.mc.rent_per_mtok->p10 >= *c.rent_per_mtok * 0.999);
  // Both 8 × H200 systems are street prices: both feed the capex range.
  CHECK(c.mc_inputs.capex_net.size() == 2);
  CHECK(pe.at("capex").size() == 2);
}

TEST_CASE("recommend prices an owned node-hour net of the entry's own VAT", "[recommend][prices]") {
  // 8 × RTX PRO 6000 node (data/systems.json rtx-pro-6000-8), street basis: 40–47.3M HUF gross
  // with 27% VAT → 43.65M / 1.27 / fx per node over 36 months × 730 h, plus the node's 8.8 kW at
  // the wall × 1.4 PUE × 0.12 USD/kWh. Before issue 16 the gross price was amortised as if it
  // were net (+27%); before issue 10 it was priced per card.
  recommend::Request req;
  const System& s = cat().system("rtx-pro-6000-8");
  std::string why;
  const auto p = recommend::node_hour_price(s, cat(), req, &why);
  REQUIRE(p);
  const double usd = 43.65e6 / 1.27 / cat().fx_per_usd("HUF");
  const double power = s.wall_power_w / 1000.0 * req.pue * req.electricity_usd_per_kwh;
  CHECK(s.wall_power_w == 8800);
  CHECK(p->first == Approx(usd / (req.life_months * 730.0) + power).epsilon(1e-6));
  CHECK_THAT(p->second, Contains("own: street"));
}

TEST_CASE("a node priced from card prices adds its host platform; bare cards are no node",
          "[cost][prices][scenario]") {
  // docs/cost.md §3 / §6.2: `cost` prices a catalog node as `plan` does. 4 × RTX 4090: the street
  // card entry (data/prices.json, 1,600–2,200 USD) × 4 = 6,400–8,800 USD, plus the rtx-4090-4
  // system's street host_platform (data/systems.json, 1,314–1,814 USD) = 7,714–10,614 USD; the
  // point is the midpoint, 9,164 USD. Before, the four bare cards were the node (7,600 USD).
  const CatalogProvider provider = []() -> const Catalog& { return cat(); };
  const cost::CostInputs in = parse_scenario_text(buy_scenario("rtx-4090", 4), "s.json", provider);
  REQUIRE(in.buy);
  CHECK(in.buy->capex_net_low == Approx(7714).epsilon(1e-9));
  CHECK(in.buy->capex_net_high == Approx(10614).epsilon(1e-9));
  CHECK(in.buy->capex_net == Approx(9164).epsilon(1e-9));
  bool recorded = false;
  for (const auto& a : in.assumptions)
    recorded = recorded || a.name == "/buy/host_platform (catalog)";
  CHECK(recorded);
  // A system whose prices cover the whole node (8 × RTX PRO 6000) adds nothing: see above.
  // No host platform to add: an error that says so. 4 × A100 has no catalog system in any
  // basis (at /buy/gpu); 8 × A100 (hgx-a100-8) has a list price but no street host platform, so a
  // stated street basis is refused (at /buy/price_basis).
  for (const auto& [gpus, basis, at, why] :
       {std::tuple<int, std::string, std::string, std::string>{4, "", "/buy/gpu",
                                                               "no 4-GPU a100-80gb system"},
        {8, "street", "/buy/price_basis", "system 'hgx-a100-8'"}}) {
    INFO("a100-80gb × " << gpus);
    try {
      (void)parse_scenario_text(buy_scenario("a100-80gb", gpus, basis), "s.json", provider);
      FAIL("bare cards must not price a node");
    } catch (const InputError& e) {
      CHECK_THAT(std::string(e.what()),
                 Contains(at) && Contains(why) && Contains("a bare card is not a node"));
    }
  }
}

TEST_CASE("cost rents a catalog node at the price plan uses", "[cost][prices][scenario]") {
  // docs/cost.md §6.2: the hgx-h200-8 system's cheapest on-demand rental is 18 USD per node-hour
  // (data/systems.json); 730 h a month → 13,140 USD. Before, `cost` took the cheapest per-GPU
  // entry of prices.json (4.25 USD × 8 = 34 USD per node-hour, 24,820 USD a month) while `plan`
  // rented the same node at 18.
  const CatalogProvider provider = []() -> const Catalog& { return cat(); };
  auto scenario = [](int gpus, const std::string& kind) {
    return std::string(R"({"currency": "USD", "horizon_months": 36, "month_hours": 730,
      "rent": {"gpu": "h200", "gpus": )") +
           std::to_string(gpus) + R"(, "kind": ")" + kind + R"("}})";
  };
  const cost::CostInputs od = parse_scenario_text(scenario(8, "on_demand"), "s.json", provider);
  REQUIRE(od.rent);
  CHECK(od.rent->per_month == Approx(18.0 * 730));
  const System* sys = pricing::system_for(cat(), "h200", 8);
  REQUIRE(sys != nullptr);
  CHECK(od.rent->per_month ==
        Approx(pricing::rent_price(*sys, cat(), pricing::RentKind::on_demand, {}).per_node_hour *
               730));
  // reserved = the 3-year commitment: 12.8 USD per node-hour (systems.json).
  CHECK(parse_scenario_text(scenario(8, "reserved"), "s.json", provider).rent->per_month ==
        Approx(12.8 * 730));
  // No catalog system of 4 × H200: the per-GPU on-demand entry × 4 (4.25 USD × 4 × 730).
  CHECK(parse_scenario_text(scenario(4, "on_demand"), "s.json", provider).rent->per_month ==
        Approx(4.25 * 4 * 730));
  // A named provider keeps that provider's per-GPU entry.
  const std::string lavx = R"json({"currency": "USD", "horizon_months": 36, "month_hours": 730,
      "rent": {"gpu": "h200", "gpus": 8,
               "provider": "cloud 8xH200 node, 24/7 (LavX planning paper)"}})json";
  CHECK(parse_scenario_text(lavx, "s.json", provider).rent->per_month == Approx(4.25 * 8 * 730));
}

TEST_CASE("cost prices a node only systems.json lists, as plan does", "[cost][prices][scenario]") {
  // prices.json has no GB200 entry and no list price for A100: before, `cost` refused these nodes
  // while `plan` priced them from data/systems.json. gb200-nvl72-tray (4 GPUs) street: 166,667–
  // 216,667 USD, mid 191,667; hgx-a100-8 list: 199,000 USD.
  const CatalogProvider provider = []() -> const Catalog& { return cat(); };
  const cost::CostInputs gb =
      parse_scenario_text(buy_scenario("gb200", 4, "street"), "s.json", provider);
  CHECK(gb.buy->capex_net_low == Approx(166667));
  CHECK(gb.buy->capex_net_high == Approx(216667));
  CHECK(gb.buy->capex_net == Approx(191667));
  const System* tray = pricing::system_for(cat(), "gb200", 4);
  REQUIRE(tray != nullptr);
  const pricing::OwnPrice plan = pricing::own_price(*tray, cat(), pricing::OwnBasis::street, {});
  CHECK(gb.buy->capex_net == Approx((plan.net_low + plan.net_high) / 2));
  CHECK(parse_scenario_text(buy_scenario("a100-80gb", 8, "list"), "s.json", provider)
            .buy->capex_net == Approx(199000));
}

TEST_CASE("buy/gpus unset: the device's first catalog system, or an error naming what to give",
          "[cost][prices][scenario][errors]") {
  const CatalogProvider provider = []() -> const Catalog& { return cat(); };
  // h200's first system in data/systems.json is hgx-h200-8: priced as 8 GPUs, and recorded.
  const cost::CostInputs in = parse_scenario_text(buy_scenario("h200"), "s.json", provider);
  REQUIRE(in.buy);
  CHECK(in.buy->capex_net == Approx(425000));
  const cost::Assumption* a = assumption(in, "/buy/gpus");
  REQUIRE(a != nullptr);
  CHECK(a->value == Json(8));
  CHECK_THAT(a->source, Contains("hgx-h200-8"));
  // rtx-4080 has no catalog system: the node size is unknown.
  try {
    (void)parse_scenario_text(buy_scenario("rtx-4080"), "s.json", provider);
    FAIL("a device without a catalog system needs gpus");
  } catch (const InputError& e) {
    CHECK_THAT(std::string(e.what()), Contains("s.json") && Contains("/buy/gpu") &&
                                          Contains("no system of 'rtx-4080'") &&
                                          Contains("give gpus"));
  }
}
