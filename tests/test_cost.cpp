// Cost model: acceptance cases C1–C15 driven through the scenario files in
// examples/ and the real cost code path (load_scenario → analyze → report),
// plus property tests. Golden numbers carry a tolerance and the hand
// calculation they come from. Formulas: docs/cost.md.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "moeplan/cost.hpp"
#include "moeplan/errors.hpp"
#include "moeplan/scenario.hpp"
#include "moeplan/svg_chart.hpp"
#include "moeplan/xlsx.hpp"
#include "test_support.hpp"

using Catch::Matchers::Contains;
using namespace moeplan;
using namespace moeplan::cost;

namespace {

CostInputs example(const std::string& name) {
  return load_scenario(moeplan::test::examples_dir() + "/" + name);  // no catalog: self-contained
}

struct Run {
  CostInputs in;
  CostAnalysis a;
  Report r;
};

Run run(const std::string& name) {
  Run x{example(name), {}, {}};
  x.a = analyze(x.in);
  x.r = make_cost_report(x.in, x.a, false);
  return x;
}

const FlexionPoint& at_util(const CostAnalysis& a, double u) {
  for (const auto& f : a.flexion)
    if (std::fabs(f.utilization - u) < 1e-9) return f;
  FAIL("no flexion point at " << u);
  return a.flexion.front();
}

}  // namespace

// ---------------------------------------------------------------------------
// Acceptance cases, seed 000 (8×H200, HUF, 311 HUF/USD)

TEST_CASE("C1 simple payback: 140M HUF node against 7.8M HUF/month cloud", "[cost][acceptance]") {
  const auto x = run("seed-8xh200-payback-huf.json");
  // 140,000,000 / 7,800,000 = 17.95 months ("breaks even around 18 months").
  REQUIRE(x.a.simple_payback_months.has_value());
  CHECK(*x.a.simple_payback_months == Approx(17.95).margin(0.05));
  CHECK(x.r.json["payback_months_simple"]["buy_vs_rent"].get<double>() ==
        Approx(17.95).margin(0.05));
}

TEST_CASE("C2 buy vs rent 94M/yr: crossover 23.0, saves 73M/yr, payback 1.92 y, ROI +38.9%",
          "[cost][acceptance]") {
  const auto x = run("seed-8xh200-glm52-huf.json");
  const PairResult* p = x.a.pair("buy", "rent");
  REQUIRE(p);
  // 140 + 21·m/12 = 94·m/12 → m = 140·12/73 = 23.01.
  REQUIRE(p->crossover_month.has_value());
  CHECK(*p->crossover_month == Approx(140.0 * 12 / 73).margin(1e-6));
  CHECK(*p->crossover_month == Approx(23.0).margin(0.05));
  // 94M − 21M = 73M HUF/yr saved against the owner's cash opex.
  CHECK(p->savings_per_year == Approx(73e6).margin(1));
  // 140 / 73 = 1.918 years.
  REQUIRE(p->payback_years.has_value());
  CHECK(*p->payback_years == Approx(1.918).margin(0.005));
  // (3×94 − 203) / 203 = 79/203 = 0.3892.
  CHECK(p->roi == Approx(79.0 / 203.0).margin(1e-9));
  CHECK(p->roi * 100 == Approx(38.9).margin(0.05));
  const Json& j = x.r.json;
  CHECK(j["crossover_month"]["buy_vs_rent"].get<double>() == Approx(23.0).margin(0.05));
  CHECK(j["payback_years"]["buy_vs_rent"].get<double>() == Approx(1.92).margin(0.005));
  CHECK(j["roi"]["buy_vs_rent"].get<double>() == Approx(0.389).margin(0.0005));
  // Own TCO over 36 months: 140 + 3×21 = 203M.
  CHECK(j["options"]["buy"]["total_cost"].get<double>() == Approx(203e6).margin(1));
  CHECK(j["options"]["rent"]["total_cost"].get<double>() == Approx(282e6).margin(1));
}

TEST_CASE("C3 buy vs spot rent 40M/yr: saves 19M/yr, 140/19 = 7.4 y is beyond the 3-y life",
          "[cost][acceptance]") {
  const auto x = run("seed-8xh200-spot-huf.json");
  const PairResult* p = x.a.pair("buy", "rent");
  REQUIRE(p);
  CHECK(p->savings_per_year == Approx(19e6).margin(1));  // 40 − 21
  // The seed's "near 7.5 years" (140 / 19 = 7.37) outlasts the 36-month life: no payback.
  CHECK_FALSE(p->payback_years.has_value());
  CHECK(x.r.json["payback_years"]["buy_vs_rent"].is_null());
  bool said = false;
  for (const auto& m : x.a.messages)
    if (m.find("does not pay back against rent within its 36-month life") != std::string::npos &&
        m.find("would take 7.4 years") != std::string::npos)
      said = true;
  CHECK(said);
  CHECK_THAT(render(x.r, Format::table), Contains("not within life"));
  CHECK(p->roi * 100 == Approx(-40.9).margin(0.05));  // (3×40 − 203) / 203 = −0.4089
  CHECK_FALSE(p->crossover_month.has_value());        // renting stays cheaper for 36 months
  CHECK(x.r.json["crossover_month"]["buy_vs_rent"].is_null());
  // The rent-to-own threshold, 67.7M / 40M = 169%, is out of reach: the verdict says "never"
  // instead of "only above 169%".
  REQUIRE(x.a.rent_to_own_threshold.has_value());
  CHECK(*x.a.rent_to_own_threshold == Approx(203.0 / 3 / 40).epsilon(1e-9));
  bool never = false, above = false;
  for (const auto& m : x.a.messages) {
    never = never || m.find(
                         "Owning never beats renting 24/7 over the 36-month life: it would "
                         "take 169% time-utilization") != std::string::npos;
    above = above || m.find("only above 169%") != std::string::npos;
  }
  CHECK(never);
  CHECK_FALSE(above);
}

TEST_CASE("C4 value needed per year: 67.7M break-even, 101.5M for 50%, 135.3M for 100% ROI",
          "[cost][acceptance]") {
  const auto x = run("seed-8xh200-glm52-huf.json");
  // Own TCO 203M over 3 years → 67.67M/yr; ×1.5 = 101.5M; ×2 = 135.33M.
  CHECK(*x.a.value_break_even == Approx(203e6 / 3).margin(1));
  CHECK(*x.a.value_roi_50 == Approx(101.5e6).margin(1));
  CHECK(*x.a.value_roi_100 == Approx(135.333e6).margin(1e3));
  const Json& v = x.r.json["value_needed_per_year"];
  CHECK(v["break_even"].get<double>() / 1e6 == Approx(67.7).margin(0.05));
  CHECK(v["roi_50"].get<double>() / 1e6 == Approx(101.5).margin(0.05));
  CHECK(v["roi_100"].get<double>() / 1e6 == Approx(135.3).margin(0.05));
}

TEST_CASE("C5 rent-to-own threshold: 67.7 / 94 = 72% time-utilization", "[cost][acceptance]") {
  const auto x = run("seed-8xh200-glm52-huf.json");
  REQUIRE(x.a.rent_to_own_threshold.has_value());
  CHECK(*x.a.rent_to_own_threshold == Approx((203.0 / 3) / 94).margin(1e-9));  // 0.7199
  CHECK(x.r.json["utilization_threshold"]["rent_to_own"].get<double>() ==
        Approx(0.72).margin(0.005));
}

TEST_CASE("C6 API: 2,000 jobs/day of 8k in / 1k out at $1.40/$4.40 → 3.54M HUF/yr",
          "[cost][acceptance]") {
  const auto x = run("seed-8xh200-glm52-huf.json");
  const OptionResult* api = x.a.option("api");
  REQUIRE(api);
  // Per job: 8,000 × 1.40e-6 + 1,000 × 4.40e-6 = $0.0156; × 2,000 × 365 = $11,388/yr;
  // × 311 = 3,541,668 HUF/yr.
  CHECK(api->cost_per_year == Approx(3'541'668).margin(1));
  CHECK(api->cost_per_year / 1e6 == Approx(3.54).margin(0.005));
  CHECK(api->total_cost == Approx(3 * 3'541'668.0).margin(1));
}

TEST_CASE("C7 people: 25M HUF/yr over 1,760 h = 14,205 HUF/h; 67.7M/yr = 4,764 h = 2.7 FTE",
          "[cost][acceptance]") {
  const auto x = run("seed-8xh200-glm52-huf.json");
  REQUIRE(x.a.people.has_value());
  CHECK(x.a.people->hourly_rate == Approx(14'204.5).margin(0.5));  // 25e6 / 1760
  const auto& buy = x.a.people->options.at(0);
  REQUIRE(buy.id == "buy");
  CHECK(buy.hours == Approx(4'763.7).margin(1));  // 67.667e6 / 14,204.5
  CHECK(buy.fte == Approx(2.71).margin(0.01));    // 4,763.7 / 1,760
}

TEST_CASE("C8 100 users saving 30 min/day on 220 days = 156.3M HUF/yr, 131% ROI vs 67.7M",
          "[cost][acceptance]") {
  const auto x = run("seed-8xh200-glm52-huf.json");
  // 100 × 0.5 h × 220 d = 11,000 h × 14,204.5 = 156.25M HUF.
  CHECK(x.a.people->value_per_year / 1e6 == Approx(156.3).margin(0.05));
  // (156.25 − 67.67) / 67.67 = 1.309.
  CHECK(x.a.people->options.at(0).roi_of_savings * 100 == Approx(131).margin(0.5));
}

TEST_CASE("C9 provider revenue per 1M output tokens by input:output mix", "[cost][acceptance]") {
  const auto x = run("seed-provider-glm52-huf.json");
  REQUIRE(x.a.provider.has_value());
  const auto& m = x.a.provider->mixes;
  REQUIRE(m.size() == 3);
  // R = 3.00 + r × (0.3 × 0.95 + 0.7 × 0.18) = 3.00 + r × 0.411.
  CHECK(m[0].revenue_usd_per_mtok == Approx(3.411).margin(1e-9));  // r = 1
  CHECK(m[1].revenue_usd_per_mtok == Approx(6.288).margin(1e-9));  // r = 8
  CHECK(m[2].revenue_usd_per_mtok == Approx(9.576).margin(1e-9));  // r = 16
  // One sustained tok/s for 30 days = 2.592M tokens: × R × 311 HUF.
  CHECK(m[0].revenue_per_tok_s_month == Approx(2'750).margin(1));  // 2,749.6
  CHECK(m[1].revenue_per_tok_s_month == Approx(5'069).margin(1));  // 5,068.8
  CHECK(m[2].revenue_per_tok_s_month == Approx(7'719).margin(1));  // 7,719.2
  // Payback of the owned node at 90% sold: revenue/yr = R × 1,600 × 0.9 × 31.536M s / 1e6 × 311.
  REQUIRE(m[1].payback_years.has_value());
  const double rev = 6.288 * 311 * 1600 * 0.9 * 31'536'000 / 1e6;
  CHECK(*m[1].payback_years == Approx(140e6 / (rev - 21e6)).epsilon(1e-9));
}

TEST_CASE("C10 price-weighted routing: a $1/M provider is 9x likelier than a $3/M one",
          "[cost][acceptance]") {
  const auto x = run("seed-provider-glm52-huf.json");
  REQUIRE(x.a.provider->routing_share.has_value());
  const auto& rr = x.a.provider->routing_ratio;
  REQUIRE(rr.size() == 2);
  CHECK(rr[0].first == 1.0);
  // Ours at $3 against theirs at $1: (1/3²) / (1/1²) = 1/9 → theirs is 9× likelier.
  CHECK(1.0 / rr[0].second == Approx(9.0).margin(1e-12));
  CHECK(routing_weight(1.0) / routing_weight(3.0) == Approx(9.0).margin(1e-12));
  // Share of first tries: (1/9) / (1/9 + 1 + 1/4.4²).
  CHECK(*x.a.provider->routing_share ==
        Approx((1.0 / 9) / (1.0 / 9 + 1 + 1 / (4.4 * 4.4))).margin(1e-12));
}

TEST_CASE("C11 owned node at 67.7M/yr: 4,291 HUF/Mtok at 500 tok/s, 1,341 at 1,600 ~ API 1,368",
          "[cost][acceptance]") {
  const auto x = run("seed-8xh200-glm52-huf.json");
  // 67.667e6 / (500 × 31,536,000 / 1e6) = 4,291.4 HUF per 1M output tokens.
  CHECK(*at_util(x.a, 1.0).own == Approx(4'291).margin(1));
  const auto s = run("seed-8xh200-saturated-huf.json");
  // 67.667e6 / (1,600 × 31.536) = 1,341.1; API output list $4.40 × 311 = 1,368.4 HUF.
  CHECK(*s.a.option("buy")->cost_per_mtok_output == Approx(1'341).margin(1));
  CHECK(*s.a.option("api")->cost_per_mtok_output == Approx(1'368.4).margin(0.1));
  CHECK(*s.a.api_per_mtok_output == Approx(4.40 * 311).margin(1e-9));
  // Owning matches the API at 67.667e6 / (1,368.4 × 31.536) = 1,568 tok/s.
  CHECK(*s.a.own_matches_api_tok_s == Approx(1'568).margin(1));
}

// ---------------------------------------------------------------------------
// Seed 003 (EUR)

TEST_CASE("C12 electricity only: RTX 4090 413 W at 128 tok/s, H100 900 W at 400 tok/s",
          "[cost][acceptance]") {
  const auto x = run("seed003-power-only-eur.json");
  auto find = [&](const std::string& n) {
    for (const auto& p : x.a.power_only)
      if (p.name == n) return p;
    FAIL("no system " << n);
    return x.a.power_only.front();
  };
  // 0.413 kW × 0.15 EUR/kWh / (128 × 3,600 / 1e6 Mtok/h) = 0.1345 EUR/Mtok.
  CHECK(find("RTX 4090").cost_per_mtok == Approx(0.134).margin(0.0005));
  // 0.9 × 0.15 / 1.44 = 0.09375.
  CHECK(find("H100 SXM").cost_per_mtok == Approx(0.094).margin(0.0005));
  // 30-day month: 0.413 kW × 720 h × 0.15 = 44.60 EUR.
  CHECK(find("RTX 4090").cost_per_month == Approx(44.604).margin(0.001));
}

TEST_CASE("C13 utilization trap: EUR 0.14/Mtok at 100% → 0.28, 0.70, 1.40 at 50/20/10%",
          "[cost][acceptance]") {
  const auto x = run("seed003-utilization-eur.json");
  // EUR 380/month × 12 = 4,560 EUR/yr over 2.7B tokens/month × 12 = 32.4B → 0.1407.
  CHECK(*at_util(x.a, 1.0).own == Approx(0.14).epsilon(0.01));
  CHECK(*at_util(x.a, 0.5).own == Approx(0.28).epsilon(0.01));
  CHECK(*at_util(x.a, 0.2).own == Approx(0.70).epsilon(0.01));
  CHECK(*at_util(x.a, 0.1).own == Approx(1.40).epsilon(0.01));
  // The ratio is exact: cost per token scales as 1/utilization.
  CHECK(*at_util(x.a, 0.1).own == Approx(10 * *at_util(x.a, 1.0).own).epsilon(1e-12));
  // The API line is flat at EUR 0.39.
  for (const auto& f : x.a.flexion) CHECK(*f.api == Approx(0.39));
}

TEST_CASE("C14 8x RTX PRO 6000: capex 1.31M/month, power 0.61M without PUE, 0.85M with 1.4",
          "[cost][acceptance]") {
  const auto x = run("seed-8xrtxpro6000-huf.json");
  REQUIRE(x.a.buy.has_value());
  // 47.3M / 36 = 1,313,889 HUF/month.
  CHECK(x.a.buy->depreciation_per_month / 1e6 == Approx(1.31).margin(0.005));
  // 8.8 kW × 730 h × 95 HUF/kWh = 610,280 HUF; × 1.4 = 854,392 HUF.
  CHECK(x.a.buy->power_it_per_month == Approx(610'280).margin(1));
  CHECK(x.a.buy->power_per_month == Approx(854'392).margin(1));
  CHECK(x.a.buy->power_per_month / 1e6 == Approx(0.85).margin(0.005));
  // Itemized opex adds up: power + staff 0.45M + other 0.43M per month.
  CHECK(x.a.buy->opex_per_month == Approx(854'392 + 450'000 + 430'000).margin(1));
}

TEST_CASE("C15 8xH200 SXM $350k-$500k with 27% VAT → 108.9-155.5M / 138.2-197.5M HUF",
          "[cost][acceptance]") {
  const auto x = run("seed-8xh200-vat-range-huf.json");
  REQUIRE(x.a.buy.has_value());
  const auto& b = *x.a.buy;
  // 350,000 × 311 = 108,850,000; 500,000 × 311 = 155,500,000; × 1.27 each.
  CHECK(b.capex_net_low / 1e6 == Approx(108.85).margin(0.01));
  CHECK(b.capex_net_high / 1e6 == Approx(155.5).margin(0.01));
  CHECK(b.capex_gross_low / 1e6 == Approx(138.24).margin(0.01));
  CHECK(b.capex_gross_high / 1e6 == Approx(197.485).margin(0.01));
  // Mid price point, VAT recoverable: capex charged = (108.85 + 155.5) / 2 = 132.175M net.
  CHECK(b.capex_economic == Approx(132.175e6).margin(1));
}

TEST_CASE("demand is checked against the node at the rate of an open day", "[cost]") {
  const std::string head = R"({"currency":"HUF","fx_per_usd":311,"horizon_months":36,
    "node":{"capacity_output_tokens_per_s":500},
    "buy":{"capex":140000000,"opex_per_year":21000000},)";
  // 800 tok/s on 220 days averages 800 × 220 / 365 = 482 over the calendar year, under 500, but
  // an open day needs 800: one 500 tok/s node cannot serve it.
  try {
    (void)parse_scenario_text(head + R"("demand":{"output_tokens_per_s":800,"days_per_year":220}})",
                              "days800.json");
    FAIL("800 tok/s on open days passed a 500 tok/s node");
  } catch (const InputError& e) {
    CHECK(e.json_path() == "/demand");
    CHECK_THAT(e.problem(), Contains("demand averages 800.0 output tok/s on each of its 220 open "
                                     "days (482.2 averaged over the calendar year)"));
    CHECK_THAT(e.problem(), Contains("utilization 1.60 > 1"));
  }
  // The same with requests: 2,000 × 24,000 / 86,400 = 555.6 tok/s on an open day.
  CHECK_THROWS_AS(
      parse_scenario_text(head + R"("demand":{"requests_per_day":2000,"output_tokens":24000,
                                  "days_per_year":220}})",
                          "rpd.json"),
      InputError);
  // 450 tok/s on 220 days fits; utilization stays over the calendar year: 450 × 220/365 / 500.
  const auto ok = parse_scenario_text(
      head + R"("demand":{"output_tokens_per_s":450,"days_per_year":220}})", "ok.json");
  CHECK(*analyze(ok).node_utilization == Approx(450.0 * 220 / 365 / 500).epsilon(1e-12));
  // analyze() holds the same line for inputs built in code.
  CostInputs in = ok;
  in.demand->output_tokens_per_year = tokens_per_year(800, 220);
  CHECK_THROWS_AS(analyze(in), std::invalid_argument);
}

// ---------------------------------------------------------------------------
// Report shape

TEST_CASE("cost JSON carries the documented keys", "[cost]") {
  const auto x = run("seed-8xh200-glm52-huf.json");
  const Json j = Json::parse(render(x.r, Format::json));
  for (const char* o : {"buy", "rent", "api"}) {
    INFO(o);
    CHECK(j["options"][o]["total_cost"].is_number());
    CHECK(j["options"][o]["cost_per_mtok_output"].is_number());
    CHECK(j["options"][o]["monthly_cumulative"].size() == 37);
  }
  for (const char* k : {"buy_vs_rent", "buy_vs_api", "rent_vs_api"})
    CHECK(j["crossover_month"].contains(k));
  CHECK(j["crossover_month"]["buy_vs_api"].is_null());
  CHECK(j["payback_years"]["buy_vs_rent"].is_number());
  CHECK(j["roi"]["buy_vs_rent"].is_number());
  for (const char* k : {"break_even", "roi_50", "roi_100"})
    CHECK(j["value_needed_per_year"][k].is_number());
  CHECK(j["utilization_threshold"]["rent_to_own"].is_number());
  REQUIRE(j["assumptions"].is_array());
  bool saw_capex = false;
  for (const auto& a : j["assumptions"]) {
    CHECK(a.contains("source"));
    CHECK(a.contains("as_of"));
    if (a["input"] == "/buy/capex") {
      saw_capex = true;
      CHECK(a["as_of"] == "2026-06");
      CHECK_THAT(a["source"].get<std::string>(), Contains("seed 000"));
    }
  }
  CHECK(saw_capex);
}

TEST_CASE("cost CSV monthly table is tidy: one row per month per option", "[cost]") {
  const auto in = example("seed-8xh200-glm52-huf.json");
  const auto a = analyze(in);
  const std::string csv = render(make_cost_report(in, a, true), Format::csv);
  CHECK_THAT(csv,
             Contains("# monthly\nmonth,option,cumulative_cost,currency\n0,buy,140000000,HUF\n"));
  CHECK_THAT(csv, Contains("\n36,rent,282000000"));  // 282M, to float rounding
  CHECK_THAT(csv, Contains("# summary\n"));
}

// ---------------------------------------------------------------------------
// Properties

TEST_CASE("property: higher utilization never raises cost per token", "[cost][property]") {
  for (const char* f : {"seed-8xh200-glm52-huf.json", "seed003-utilization-eur.json",
                        "seed-8xh200-saturated-huf.json"}) {
    const auto x = run(f);
    REQUIRE(x.a.flexion.size() == 20);
    for (std::size_t i = 1; i < x.a.flexion.size(); ++i) {
      const auto& p = x.a.flexion[i - 1];
      const auto& q = x.a.flexion[i];
      if (p.own) CHECK(*q.own <= *p.own);
      if (p.rent) CHECK(*q.rent <= *p.rent);
      if (p.api) CHECK(*q.api == *p.api);
    }
  }
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> cost(1, 1e9), cap(1, 1e4), u(0.01, 1);
  for (int i = 0; i < 500; ++i) {
    const double c = cost(rng), k = cap(rng), u1 = u(rng), u2 = u(rng);
    const double lo = std::min(u1, u2), hi = std::max(u1, u2);
    CHECK(node_cost_per_mtok(c, k, hi) <= node_cost_per_mtok(c, k, lo));
  }
}

TEST_CASE("property: the crossover month is where the cumulative curves cross",
          "[cost][property]") {
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> capex(1e6, 3e8), opex(0, 5e6), rent(1e5, 2e7);
  std::uniform_int_distribution<int> life(6, 60);
  int crossed = 0;
  for (int i = 0; i < 400; ++i) {
    const int h = 60;
    const CostCurve own = own_curve(capex(rng), opex(rng), 0.0, life(rng), h);
    const CostCurve alt = flat_curve(rent(rng), h);
    const auto m = crossover_month(own, alt);
    // Brute force: the first sampled time where renting has become dearer than owning.
    std::optional<double> brute;
    for (int s = 1; s <= h * 1000; ++s) {
      const double t = s / 1000.0;
      if (alt.at(t) > own.at(t) + 1e-6) {
        brute = t;
        break;
      }
    }
    REQUIRE(m.has_value() == brute.has_value());
    if (m) {
      ++crossed;
      CHECK(*m == Approx(*brute).margin(0.0011));
      // Just before, owning is dearer; just after, cheaper or equal.
      if (*m > 0.01) CHECK(own.at(*m - 0.01) > alt.at(*m - 0.01));
      if (*m < h - 0.01) CHECK(own.at(*m + 0.01) <= alt.at(*m + 0.01) + 1e-6);
    }
  }
  CHECK(crossed > 50);
  // Ties: identical curves never cross.
  CHECK_FALSE(crossover_month(flat_curve(5, 12), flat_curve(5, 12)).has_value());
}

TEST_CASE("property: raising capex never makes buying pay back sooner", "[cost][property]") {
  const auto base = example("seed-8xh200-glm52-huf.json");
  std::optional<double> prev_payback, prev_cross;
  double prev_roi = 1e9;
  bool first = true;
  for (double capex = 50e6; capex <= 400e6; capex += 10e6) {
    CostInputs in = base;
    in.buy->capex_net = capex;  // VAT not recoverable: charged = capex × 1.27
    const auto a = analyze(in);
    const PairResult* p = a.pair("buy", "rent");
    const auto pb = p->payback_years;
    const auto cm = p->crossover_month;
    // No payback within the life at a lower capex means none at a higher one either.
    if (!first && !prev_payback) CHECK_FALSE(pb.has_value());
    if (prev_payback && pb) CHECK(*pb >= *prev_payback);
    if (prev_cross && cm) CHECK(*cm >= *prev_cross);
    // No crossover at a lower capex means none at a higher one either.
    if (!first && !prev_cross) CHECK_FALSE(cm.has_value());
    first = false;
    CHECK(p->roi <= prev_roi);
    prev_payback = pb;
    prev_cross = cm;
    prev_roi = p->roi;
  }
}

TEST_CASE("property: payback agrees with the cumulative cost curves", "[cost][property]") {
  // A grid over capex, opex, the alternative, residual, life and horizon (horizon > life: the
  // node is bought again); each payback is checked against the curves the report prints.
  int paid = 0, unpaid = 0, at_life = 0, simple = 0;
  for (double capex : {20e6, 140e6, 400e6})
    for (double opex : {0.0, 21e6})
      for (double alt : {10e6, 40e6, 94e6, 300e6})
        for (double residual_share : {0.0, 0.3, 0.9})
          for (int life : {12, 36})
            for (int horizon : {life, 48, 60}) {
              if (horizon < life) continue;
              CostInputs in;
              in.horizon_months = horizon;
              BuyInputs b;
              b.capex_net = capex;
              b.vat_recoverable = true;
              b.life_months = life;
              b.residual_share = residual_share;
              b.opex_per_year = opex;
              in.buy = b;
              in.rent = RentInputs{"on_demand", alt / 12};
              const CostAnalysis a = analyze(in);
              const PairResult* p = a.pair("buy", "rent");
              REQUIRE(p);
              const OptionResult& own = *a.option("buy");
              const OptionResult& rent = *a.option("rent");
              const double residual = residual_share * capex;
              INFO("capex " << capex << " opex " << opex << " alt " << alt << " residual "
                            << residual_share << " life " << life << " horizon " << horizon);
              // Owning is dearer at every sampled time before the payback (or the life).
              const double until = p->payback_years ? *p->payback_years * 12 : life;
              for (int s = 0; s < 200; ++s) {
                const double t = until * s / 200.0;
                CHECK(own.curve.at(t) > rent.curve.at(t));
              }
              // Owning's curve over its first life alone: the printed one less any re-buy.
              const double rebuy = life < horizon ? capex : 0.0;
              const double own_end_of_life = own.curve.at(life) - rebuy;
              if (p->payback_years && *p->payback_years * 12 < life - 1e-9) {
                ++paid;
                const double m = *p->payback_years * 12;
                // Before the life ends, payback is the printed crossover.
                REQUIRE(p->crossover_month.has_value());
                CHECK(*p->crossover_month == Approx(m).epsilon(1e-9));
                CHECK(own.curve.at(m) == Approx(rent.curve.at(m)).epsilon(1e-9));
                if (residual_share == 0) {
                  ++simple;
                  // The simple formula's assumptions hold: capex / (alt − opex).
                  CHECK(m == Approx(capex / (alt - opex) * 12).epsilon(1e-12));
                }
              } else if (p->payback_years) {
                ++at_life;
                // Reached at the end of the life, by the resale.
                CHECK(*p->payback_years * 12 == Approx(life).epsilon(1e-12));
                CHECK(own_end_of_life <= rent.curve.at(life) * (1 + 1e-12));
              } else {
                ++unpaid;
                CHECK(own_end_of_life > rent.curve.at(life));
                if (p->crossover_month) CHECK(*p->crossover_month > life - 1e-9);
              }
              // Payback within the life exactly when the ROI over the life is not negative.
              CHECK(p->payback_years.has_value() == (p->roi >= -1e-12));
              // The simple payback follows the same rule against the rent alone.
              if (a.simple_payback_months) {
                CHECK(*a.simple_payback_months <= life);
              } else {
                CHECK(capex - residual > alt / 12 * life);
              }
            }
  CHECK(paid > 20);
  CHECK(simple > 5);
  CHECK(at_life > 5);
  CHECK(unpaid > 20);
}

TEST_CASE("payback: a 12-month node over 48 months, where the curves never cross", "[cost]") {
  // 140M capex, 21M/yr opex, rent 60M/yr, life 12: 140 / (60 − 21) = 3.59 years, but the node
  // must be bought again every 12 months, so owning never catches up. ROI over the life
  // = (60 − 161) / 161 < 0.
  const auto in = parse_scenario_text(R"({"currency":"HUF","fx_per_usd":311,"horizon_months":48,
    "buy":{"capex":140000000,"opex_per_year":21000000,"life_months":12},
    "rent":{"per_year":60000000}})",
                                      "life12.json");
  const auto a = analyze(in);
  const PairResult* p = a.pair("buy", "rent");
  CHECK_FALSE(p->crossover_month.has_value());
  CHECK_FALSE(p->payback_years.has_value());
  CHECK_FALSE(a.simple_payback_months.has_value());  // 140 / 5 = 28 months > 12
  const Report r = make_cost_report(in, a, true);
  CHECK(r.json["payback_years"]["buy_vs_rent"].is_null());
  CHECK(r.json["payback_months_simple"]["buy_vs_rent"].is_null());
  const std::string csv = render(r, Format::csv);
  CHECK_THAT(csv, Contains("buy_vs_rent,,not within life,"));
  CHECK_THAT(csv, Contains("capex against rent alone\",not within life,months"));
  CHECK_THAT(render(r, Format::md), Contains("not within life"));
}

TEST_CASE("property: currency conversion round-trips", "[cost][property]") {
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> amt(-1e9, 1e9), fx(0.01, 1e4);
  for (int i = 0; i < 1000; ++i) {
    const double x = amt(rng), a = fx(rng), b = fx(rng);
    CHECK(convert(convert(x, a, b), b, a) == Approx(x).epsilon(1e-12).margin(1e-6));
  }
  // The same scenario priced in USD and in HUF gives totals related by the rate.
  const std::string usd = R"({"currency":"USD","horizon_months":24,
    "demand":{"output_tokens_per_s":100,"input_tokens_per_output_token":4,"cache_hit_share":0.5},
    "node":{"capacity_output_tokens_per_s":500},
    "buy":{"capex_usd":400000,"opex_per_year_usd":60000,"life_months":24,"residual_share":0.2},
    "rent":{"gpu_hour_usd":3.5,"gpus":8},
    "api":{"input_usd_per_mtok":1.4,"cached_input_usd_per_mtok":0.26,"output_usd_per_mtok":4.4}})";
  std::string huf = usd;
  huf.replace(huf.find("\"USD\""), 5, "\"HUF\",\"fx_per_usd\":311");
  const auto a_usd = analyze(parse_scenario_text(usd, "usd.json"));
  const auto a_huf = analyze(parse_scenario_text(huf, "huf.json"));
  for (const char* o : {"buy", "rent", "api"}) {
    INFO(o);
    CHECK(a_huf.option(o)->total_cost == Approx(a_usd.option(o)->total_cost * 311).epsilon(1e-12));
    CHECK(convert(a_huf.option(o)->total_cost, 311, 1) ==
          Approx(a_usd.option(o)->total_cost).epsilon(1e-12));
  }
  // Crossovers do not depend on the currency.
  CHECK(a_huf.pair("buy", "rent")->crossover_month == a_usd.pair("buy", "rent")->crossover_month);
}

// ---------------------------------------------------------------------------
// Pure functions

TEST_CASE("a horizon that ends within a life credits the hardware still held", "[cost]") {
  // Capex 360, residual 10% (36), life 36 months, opex 12 a year, horizon 48: bought at 0,
  // resold at 36 for 36 and bought again; at 48 the second node is 12 months into its life.
  // Book value, straight line from 360 to 36 over 36 months: 360 − 324 × 12/36 = 252.
  // Cash paid: 360 + 48 − 36 + 360 = 732; total cost over the horizon = 732 − 252 = 480.
  CHECK(held_value_at_horizon(360, 36, 36, 48) == Approx(252).epsilon(1e-12));
  CHECK(held_value_at_horizon(360, 36, 36, 36) == 0.0);  // resold at the residual already
  CHECK(held_value_at_horizon(360, 36, 36, 72) == 0.0);
  CHECK(held_value_at_horizon(360, 36, 36, 24) == Approx(360 - 324 * 24.0 / 36).epsilon(1e-12));
  CostInputs in;
  in.horizon_months = 48;
  BuyInputs b;
  b.capex_net = 360;
  b.vat_recoverable = true;
  b.life_months = 36;
  b.residual_share = 0.1;
  b.opex_per_year = 12;
  in.buy = b;
  in.rent = RentInputs{"on_demand", 12};  // 576 over 48 months
  const CostAnalysis a = analyze(in);
  const OptionResult& own = *a.option("buy");
  CHECK(own.curve.at(48) == Approx(732).epsilon(1e-12));  // the chart's cash curve is unchanged
  CHECK(own.held_value_at_horizon == Approx(252).epsilon(1e-12));
  CHECK(own.total_cost == Approx(480).epsilon(1e-12));
  // 480 < 576: owning is the cheaper over 48 months; charging both capexes (732) said renting.
  CHECK(own.total_cost < a.option("rent")->total_cost);
  CHECK(own.curve.at(48) > a.option("rent")->total_cost);
  // At 0% discount the present cost is the total.
  CHECK(own.present_cost == Approx(own.total_cost).epsilon(1e-12));
  // Property: the credit never exceeds the capex and never falls below the residual.
  for (int h = 1; h <= 120; ++h) {
    const double v = held_value_at_horizon(360, 36, 36, h);
    CHECK((v == 0.0 ? h % 36 == 0 : (v <= 360 && v > 36)));
  }
}

TEST_CASE("cost curves: steps, renewal at end of life, present value", "[cost]") {
  // Life 12 within a 30-month horizon: bought at 0, 12, 24; residual 10 credited at 12 and 24.
  const CostCurve c = own_curve(100, 1, 10, 12, 30);
  const auto m = c.monthly_cumulative();
  CHECK(m[0] == 100);
  CHECK(m[11] == 111);
  CHECK(m[12] == 100 + 12 - 10 + 100);
  CHECK(m[30] == 100 + 30 - 20 + 200);
  CHECK(c.at(11.5) == Approx(111.5));
  // At 0% the present value is the undiscounted total.
  CHECK(c.present_value(0) == Approx(m[30]));
  // One payment of 100 at month 12 discounted at 10%/yr is worth 100/1.1.
  CostCurve one = flat_curve(0, 12);
  one.step[12] = 100;
  CHECK(one.present_value(0.10) == Approx(100 / 1.1));
  CHECK(own_tco(140, 21, 3, 0) == 203);
  CHECK(economic_capex(100, 0.27, true) == 100);
  CHECK(economic_capex(100, 0.27, false) == Approx(127));
  CHECK(net_of_vat(127, true, 0.27) == Approx(100));
  CHECK_FALSE(payback_months(100, 20, 0, 36, 10).has_value());  // saves nothing
  // 100 / (40 − 10) a year = 3.33 years = 40 months, beyond a 36-month life ...
  CHECK_FALSE(payback_months(100, 10, 0, 36, 40).has_value());
  // ... unless the resale closes the gap at its end: 100 + 30 − 10 = 120 = 40 × 3.
  CHECK(*payback_months(100, 10, 10, 36, 40) == 36);
  CHECK(*payback_months(100, 10, 0, 48, 40) == Approx(40).epsilon(1e-12));
  CHECK(rent_per_month_from_hourly(3.1, 8, 730) == Approx(3.1 * 8 * 730));
  CHECK_THROWS_AS(node_cost_per_mtok(1, 1, 1.5), std::invalid_argument);
}

TEST_CASE("absurd magnitudes are refused where they are given", "[cost]") {
  const std::string head = R"({"currency":"HUF","fx_per_usd":311,"horizon_months":36,)";
  auto error_at = [&](const std::string& body) -> std::string {
    try {
      (void)parse_scenario_text(head + body, "huge.json");
    } catch (const InputError& e) {
      return e.json_path() + ": " + e.problem();
    }
    return "";
  };
  // 1e308 HUF is a finite double, but × 1.27 VAT it is inf and the totals NaN.
  CHECK_THAT(error_at(R"("buy":{"capex":1e308,"opex_per_year":1}})"),
             Contains("/buy/capex: implausibly large: 1e+308"));
  CHECK_THAT(error_at(R"("buy":{"capex":1,"opex_per_year":1e308}})"),
             Contains("/buy/opex_per_year: implausibly large"));
  CHECK_THAT(error_at(R"("buy":{"system_price":[1,1e300],"opex_per_year":1}})"),
             Contains("/buy/system_price/1: implausibly large"));
  CHECK_THAT(error_at(R"("rent":{"per_month_usd":1e200}})"),
             Contains("/rent/per_month_usd: implausibly large"));
  // A large but real amount passes: a 10B USD fleet in HUF is 3.1e12.
  CHECK(error_at(R"("buy":{"capex":3.11e12,"opex_per_year":1}})").empty());
  // And the last line of defence finds a non-finite number anywhere in a report.
  Json doc = {{"a", {{"b", Json::array({1.0, std::nan("")})}}}};
  CHECK(first_non_finite(doc) == std::optional<std::string>("/a/b/1"));
  CHECK_FALSE(first_non_finite(Json{{"x", 1.0}}).has_value());
}

TEST_CASE("svg chart renders axes, legend, highlights and escapes text", "[cost][svg]") {
  const auto x = run("seed-8xh200-glm52-huf.json");
  const std::string svg = svg::render_svg(make_cost_chart(x.in, x.a));
  CHECK_THAT(svg, Contains("<svg xmlns=\"http://www.w3.org/2000/svg\""));
  CHECK_THAT(svg, Contains("Cumulative cost (HUF)"));
  CHECK_THAT(svg, Contains("HUF per 1M output tokens"));
  CHECK_THAT(svg, Contains("buy = rent at month 23.0"));
  CHECK_THAT(svg, Contains("GLM-5.2 API (Z.ai list)"));
  CHECK(svg.find("href") == std::string::npos);  // no external assets
  CHECK(svg::xml_escape("a<b & \"c\"") == "a&lt;b &amp; &quot;c&quot;");
  const auto t = svg::nice_ticks(0, 282e6, 6);
  CHECK(t.front() == 0);
  CHECK(t.back() >= 282e6);
  CHECK(svg::tick_label(150e6, 50e6) == "150M");
  CHECK(svg::tick_label(7500, 2500) == "7.5k");
  CHECK(svg::tick_label(2500, 500) == "2500");
  CHECK(svg::tick_label(0.25, 0.05) == "0.25");
}

TEST_CASE("xlsx writer: numbers with currency formats, atomic file", "[cost][xlsx]") {
  Table t;
  t.name = "summary";
  t.columns = {"option", "total cost (HUF)", "ROI (%)", "month", "per 1M (EUR/1M out)"};
  t.add({"buy", Cell(203e6), Cell(38.9, 1), Cell(3), Cell(0.14)});
  CHECK(xlsx::column_format_from_header(t, 1).kind == xlsx::NumberKind::money);
  CHECK(xlsx::column_format_from_header(t, 1).currency == "HUF");
  CHECK(xlsx::column_format_from_header(t, 2).kind == xlsx::NumberKind::percent);
  CHECK(xlsx::column_format_from_header(t, 3).kind == xlsx::NumberKind::integer);
  CHECK(xlsx::column_format_from_header(t, 4).currency == "EUR");
  CHECK(xlsx::number_format({xlsx::NumberKind::money, "HUF"}, 2e8) == "#,##0\\ \"HUF\"");
  CHECK(xlsx::number_format({xlsx::NumberKind::money, "EUR"}, 0.14) == "#,##0.0000\\ \"EUR\"");

  const auto x = run("seed-8xh200-glm52-huf.json");
  const auto dir = std::filesystem::temp_directory_path() / "moeplan-test-xlsx";
  std::filesystem::create_directories(dir);
  const auto path = (dir / "cost.xlsx").string();
  xlsx::write_report(x.r, path,
                     {{"Summary", {"summary", "comparison"}, true},
                      {"Monthly", {"monthly"}, false},
                      {"Assumptions", {"assumptions"}, false}});
  std::ifstream f(path, std::ios::binary);
  char magic[2] = {};
  f.read(magic, 2);
  CHECK(magic[0] == 'P');  // a zip container
  CHECK(magic[1] == 'K');
  for (const auto& e : std::filesystem::directory_iterator(dir))
    CHECK(e.path().filename().string().rfind(".tmp-", 0) != 0);  // no temp file left behind
  CHECK_THROWS_WITH(xlsx::write_report(x.r, path, {{"Bad/Name", {"summary"}, false}}),
                    Contains("invalid sheet name"));
  std::filesystem::remove_all(dir);
}
