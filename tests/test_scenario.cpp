// Scenario reader: bad inputs each get a clear error naming the file and the
// JSON path (docs/scenario.md). One test per kind of mistake, checking text.
#include <catch2/catch.hpp>

#include "moeplan/errors.hpp"
#include "moeplan/scenario.hpp"
#include "test_support.hpp"

using Catch::Matchers::Contains;
using namespace moeplan;

namespace {

// A minimal valid scenario; tests splice one mistake into it.
const std::string kGood = R"({
  "currency": "HUF", "fx_per_usd": 311, "horizon_months": 36,
  "demand": {"output_tokens_per_s": 100},
  "node": {"capacity_output_tokens_per_s": 500},
  "buy": {"capex": 140000000, "opex_per_year": 21000000},
  "rent": {"per_year": 94000000},
  "api": {"input_usd_per_mtok": 1.4, "output_usd_per_mtok": 4.4}
})";

std::string with(const std::string& from, const std::string& to) {
  std::string s = kGood;
  const auto at = s.find(from);
  REQUIRE(at != std::string::npos);
  s.replace(at, from.size(), to);
  return s;
}

std::string error_of(const std::string& text) {
  try {
    parse_scenario_text(text, "bad.json");
  } catch (const InputError& e) {
    return e.what();
  }
  FAIL("no InputError for: " << text);
  return "";
}

}  // namespace

TEST_CASE("scenario: the minimal scenario reads", "[cost][scenario]") {
  const auto in = parse_scenario_text(kGood, "good.json");
  CHECK(in.currency == "HUF");
  CHECK(in.fx_per_usd == 311);
  CHECK(in.api->output_per_mtok == Approx(4.4 * 311));
  CHECK(in.rent->per_month == Approx(94e6 / 12));
  CHECK(in.buy->life_months == 36);  // defaults to the horizon
}

TEST_CASE("scenario: missing field names file and path", "[cost][scenario]") {
  const auto msg = error_of(with(R"("currency": "HUF", )", ""));
  CHECK_THAT(msg, Contains("bad.json: /currency: required field is missing"));
  CHECK_THAT(error_of(with(R"({"capex": 140000000, "opex_per_year": 21000000})",
                           R"({"capex": 140000000})")),
             Contains("bad.json: /buy: give opex_per_year, or its components"));
  CHECK_THAT(error_of(with(R"("output_usd_per_mtok": 4.4)", R"("label": "x")")),
             Contains("bad.json: /api/output_usd_per_mtok: required field is missing"));
}

TEST_CASE("scenario: negative price", "[cost][scenario]") {
  CHECK_THAT(
      error_of(with(R"("output_usd_per_mtok": 4.4)", R"("output_usd_per_mtok": -4.4)")),
      Contains("bad.json: /api/output_usd_per_mtok: expected a number >= 0, found number -4.4"));
  CHECK_THAT(error_of(with(R"("per_year": 94000000)", R"("per_year": -1)")),
             Contains("bad.json: /rent/per_year: expected a number > 0"));
  // A rent of zero has no hourly rate: said at its path, not as an internal error later.
  CHECK_THAT(error_of(with(R"("per_year": 94000000)", R"("per_year": 0)")),
             Contains("bad.json: /rent/per_year: expected a number > 0, found number 0"));
  CHECK_THAT(error_of(with(R"({"per_year": 94000000})", R"({"gpu_hour_usd": 0, "gpus": 8})")),
             Contains("bad.json: /rent/gpu_hour_usd: expected a number > 0"));
  CHECK_THAT(error_of(with(R"("capex": 140000000)", R"("capex": -5)")),
             Contains("bad.json: /buy/capex: expected a number > 0, found number -5"));
}

TEST_CASE("scenario: the hours a year a rent price pays for", "[cost][scenario]") {
  // The part-time rate is the yearly rent over these hours (docs/cost.md); the reader, which
  // knows the price's form, states them.
  CHECK(parse_scenario_text(kGood, "s.json").rent->billed_hours_per_year == Approx(8760));
  // A monthly price bills 12 × month_hours (720 by default): 8,640.
  const auto monthly =
      parse_scenario_text(with(R"({"per_year": 94000000})", R"({"per_month": 7800000})"), "s.json");
  CHECK(monthly.rent->billed_hours_per_year == Approx(12 * 720));
  // A 200-hour monthly contract: 2,400 hours; and its hours_per_month is range-checked.
  const auto contract = parse_scenario_text(
      with(R"({"per_year": 94000000})", R"({"per_month": 2000000, "hours_per_month": 200})"),
      "s.json");
  CHECK(contract.rent->billed_hours_per_year == Approx(2400));
  CHECK_THAT(
      error_of(with(R"({"per_year": 94000000})", R"({"per_month": 1, "hours_per_month": 800})")),
      Contains("bad.json: /rent/hours_per_month: a month has at most 744 hours"));
  // Per GPU-hour at 730 hours a month: 12 × 730.
  const auto hourly =
      parse_scenario_text(with(R"({"per_year": 94000000})",
                               R"({"gpu_hour_usd": 3.5, "gpus": 8, "hours_per_month": 730})"),
                          "s.json");
  CHECK(hourly.rent->billed_hours_per_year == Approx(12 * 730));
  CHECK(hourly.rent->per_month == Approx(3.5 * 311 * 8 * 730));
}

TEST_CASE("scenario: utilization above 1", "[cost][scenario]") {
  // Demand above what the node can serve.
  CHECK_THAT(error_of(with(R"("output_tokens_per_s": 100)", R"("output_tokens_per_s": 750)")),
             Contains("bad.json: /demand: demand averages 750.0 output tok/s, above "
                      "node/capacity_output_tokens_per_s 500.0 (utilization 1.50 > 1)"));
  // An explicit share above 1.
  const std::string provider = with(R"("api": {)", R"("provider": {"input_usd_per_mtok": 0.95,
      "output_usd_per_mtok": 3, "sold_utilization": 1.2}, "api": {)");
  CHECK_THAT(error_of(provider),
             Contains("bad.json: /provider/sold_utilization: expected a fraction between 0 and 1, "
                      "found number 1.2"));
  CHECK_THAT(error_of(with(R"("output_tokens_per_s": 100)",
                           R"("output_tokens_per_s": 100, "cache_hit_share": 1.5)")),
             Contains("bad.json: /demand/cache_hit_share: expected a fraction between 0 and 1"));
}

TEST_CASE("scenario: unknown key suggests the nearest", "[cost][scenario]") {
  CHECK_THAT(error_of(with(R"("capex": 140000000)", R"("capx": 140000000)")),
             Contains("bad.json: /buy/capx: unknown field 'capx', did you mean 'capex'?"));
  CHECK_THAT(error_of(with(R"("horizon_months": 36)", R"("horizon_months": 36, "horizon": 3)")),
             Contains("bad.json: /horizon: unknown field 'horizon'"));
}

TEST_CASE("scenario: wrong type", "[cost][scenario]") {
  CHECK_THAT(error_of(with(R"("horizon_months": 36)", R"("horizon_months": "36")")),
             Contains("bad.json: /horizon_months: expected an integer, found string \"36\""));
  CHECK_THAT(error_of(with(R"("per_year": 94000000)", R"("per_year": "94M")")),
             Contains("bad.json: /rent/per_year: expected a number, found string \"94M\""));
  CHECK_THAT(error_of(with(R"("buy": {)", R"("buy": {"vat_recoverable": "yes", )")),
             Contains("bad.json: /buy/vat_recoverable: expected true or false, found string"));
  CHECK_THAT(error_of(with(R"("demand": {"output_tokens_per_s": 100})", R"("demand": [100])")),
             Contains("bad.json: /demand: expected an object, found array"));
}

TEST_CASE("scenario: contradictions and catalog references", "[cost][scenario]") {
  CHECK_THAT(error_of(with(R"("capex": 140000000)", R"("capex": 140000000, "capex_usd": 450000)")),
             Contains("bad.json: /buy/capex_usd: give one of capex, capex_usd"));
  CHECK_THAT(
      error_of(with(R"("opex_per_year": 21000000)", R"("opex_per_year": 21000000, "pue": 1.3)")),
      Contains("bad.json: /buy/pue: opex_per_year is given as a total"));
  CHECK_THAT(error_of(with(R"("currency": "HUF")", R"("currency": "huf")")),
             Contains("bad.json: /currency: expected an ISO 4217 currency code"));
  // Without a catalog, a catalog id is an error, not a silent default.
  CHECK_THAT(error_of(with(R"("capex": 140000000)", R"("gpu": "h200", "gpus": 8)")),
             Contains("bad.json: /buy/gpu: refers to the catalog, but no catalog"));
  CHECK_THAT(error_of(with(R"("fx_per_usd": 311, )", "")),
             Contains("bad.json: /fx_per_usd: refers to the catalog"));
  CHECK_THAT(error_of(R"({"currency": "USD", "horizon_months": 12})"),
             Contains("bad.json: /: nothing to cost"));
}

TEST_CASE("scenario: bad JSON and missing file", "[cost][scenario]") {
  CHECK_THAT(error_of("{\"currency\": \"HUF\",}"), Contains("bad.json: /: invalid JSON at line 1"));
  CHECK_THROWS_WITH(load_scenario("/nonexistent/x.json"),
                    Contains("/nonexistent/x.json: /: cannot open file for reading: No such file"));
  // A directory read as an empty stream: "invalid JSON at line 1" (audit 2026-11-27).
  CHECK_THROWS_WITH(load_scenario("/tmp"), Contains("/tmp: /: is a directory, not a JSON file"));
}

TEST_CASE("scenario: implausible power and sales inputs are refused", "[cost][scenario]") {
  // Audit 2026-11-27: each was accepted (PUE 100 gave 61M a month of power; 1e14 W a buy total of
  // 3.5e17 HUF; a sold share without a node left the payback blank under its heading).
  const std::string node = R"({"capex": 140000000, "opex_per_year": 21000000})";
  CHECK_THAT(error_of(with(node, R"({"capex": 140000000, "wall_power_w": 10000, "pue": 100,
      "electricity_per_kwh": 95})")),
             Contains("bad.json: /buy/pue: PUE 100 is above 3"));
  CHECK_THAT(error_of(with(node, R"({"capex": 140000000, "wall_power_w": 1e14,
      "electricity_per_kwh": 95})")),
             Contains("bad.json: /buy/wall_power_w: 100000000000000 W is above 1 MW for one node"));
  std::string no_node = with(R"("api": {)", R"("provider": {"input_usd_per_mtok": 0.95,
      "output_usd_per_mtok": 3, "sold_utilization": 0.9}, "api": {)");
  const auto at = no_node.find(R"("node": {"capacity_output_tokens_per_s": 500},)");
  REQUIRE(at != std::string::npos);
  no_node.erase(at, std::string(R"("node": {"capacity_output_tokens_per_s": 500},)").size());
  CHECK_THAT(error_of(no_node),
             Contains("bad.json: /provider/sold_utilization: needs the node's capacity"));
  CHECK_THAT(error_of(with(R"("output_tokens_per_s": 100)",
                           R"("output_tokens_per_s": 100, "days_per_year": 0.5)")),
             Contains("bad.json: /demand/days_per_year: expected 1–366 open days, found 0.5"));
}

TEST_CASE("scenario: every example reads without the catalog", "[cost][scenario]") {
  for (const char* f :
       {"seed-8xh200-glm52-huf.json", "seed-8xh200-payback-huf.json", "seed-8xh200-spot-huf.json",
        "seed-8xh200-saturated-huf.json", "seed-8xh200-vat-range-huf.json",
        "seed-8xrtxpro6000-huf.json", "seed-provider-glm52-huf.json", "seed003-power-only-eur.json",
        "seed003-utilization-eur.json"}) {
    INFO(f);
    CHECK_NOTHROW(load_scenario(moeplan::test::examples_dir() + "/" + f));
  }
}

TEST_CASE("scenario: a node's power defaults to its catalog system's wall power",
          "[cost][scenario]") {
  // 8 × H200 with nothing said about power: the hgx-h200-8 system's 10,200 W at the wall
  // (data/systems.json), not 8 × 700 W of GPU TDP, which would leave the host out. Monthly power
  // = 10.2 kW × 720 h × PUE 1.3 × 0.15 USD/kWh = 1,432.08 USD.
  const CatalogProvider provider = []() -> const Catalog& { return test::bundled_catalog(); };
  auto scenario = [](const std::string& power) {
    return R"({"currency": "USD", "horizon_months": 36, "month_hours": 720,
      "demand": {"output_tokens_per_s": 100}, "node": {"capacity_output_tokens_per_s": 500},
      "buy": {"capex": 400000, "gpu": "h200", "gpus": 8, "pue": 1.3,
              "electricity_per_kwh": 0.15)" +
           power + "}}";
  };
  const cost::CostInputs sys = parse_scenario_text(scenario(""), "s.json", provider);
  REQUIRE(sys.buy);
  CHECK(sys.buy->wall_power_w == 10200);
  bool recorded = false;
  for (const auto& a : sys.assumptions)
    recorded = recorded || (a.name == "/buy/wall_power_w (catalog system)" &&
                            a.source.find("hgx-h200-8") != std::string::npos);
  CHECK(recorded);
  CHECK(cost::electricity_per_month(sys.buy->wall_power_w, sys.buy->pue,
                                    sys.buy->electricity_per_kwh, 720) == Approx(1432.08));
  // Any power part given: the parts, as before (8 × 700 W + 1,500 W for the host).
  const cost::CostInputs parts =
      parse_scenario_text(scenario(R"(, "other_system_w": 1500)"), "s.json", provider);
  CHECK(parts.buy->wall_power_w == Approx(7100));
  // No catalog system of that size (a 3-GPU H200 node): the nearest catalog system of the
  // device, h200-2-lean (2 GPUs, 2,400 W at the wall), scaled per GPU: 2,400 / 2 × 3 = 3,600 W,
  // recorded as estimated. Until 2026-11-27 it was the GPUs' TDP alone (3 × 700 = 2,100 W),
  // which leaves the host out.
  std::string three = scenario("");
  three.replace(three.find("\"gpus\": 8"), 9, "\"gpus\": 3");
  const cost::CostInputs odd = parse_scenario_text(three, "s.json", provider);
  CHECK(odd.buy->wall_power_w == Approx(3600));
  bool scaled = false;
  for (const auto& a : odd.assumptions)
    scaled = scaled || (a.name.find("catalog system h200-2-lean scaled to 3 GPUs, estimated") !=
                        std::string::npos);
  CHECK(scaled);
}
