// Catalog search: Pareto frontier and SLA filtering (docs/plan.md § recommend).
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <tuple>

#include "moeplan/recommend.hpp"
#include "moeplan/sizing.hpp"
#include "moeplan/system.hpp"
#include "test_support.hpp"

using namespace moeplan;

namespace {
recommend::Point pt(double cost, double user) {
  recommend::Point p;
  p.cost_per_mtok = cost;
  p.per_user_tok_s = user;
  return p;
}
bool dominated(const recommend::Point& a, const std::vector<recommend::Point>& all) {
  for (const auto& b : all)
    if (b.cost_per_mtok <= a.cost_per_mtok && b.per_user_tok_s >= a.per_user_tok_s &&
        (b.cost_per_mtok < a.cost_per_mtok || b.per_user_tok_s > a.per_user_tok_s))
      return true;
  return false;
}
}  // namespace

TEST_CASE("Pareto frontier keeps no dominated point", "[recommend]") {
  const std::vector<recommend::Point> all{pt(1, 10), pt(2, 5),   pt(2, 20), pt(3, 20),
                                          pt(4, 30), pt(0.5, 1), pt(1, 10)};
  const auto f = recommend::pareto_frontier(all);
  CHECK(f.size() == 4);  // (0.5,1) (1,10) (2,20) (4,30)
  for (const auto& p : f) CHECK_FALSE(dominated(p, all));
  for (std::size_t i = 1; i < f.size(); ++i) {
    CHECK(f[i].cost_per_mtok > f[i - 1].cost_per_mtok);
    CHECK(f[i].per_user_tok_s > f[i - 1].per_user_tok_s);
  }
}

TEST_CASE("search returns a frontier and SLA-meeting top N", "[recommend]") {
  const Catalog& cat = test::bundled_catalog();
  recommend::Request req;
  req.models = {&cat.model("qwen3-30b-a3b"), &cat.model("glm-5.2")};
  req.output_tokens_per_s = 500;
  req.input_tokens = 2000;
  req.output_tokens = 500;
  req.sla.tpot_ms = 50;
  req.top = 5;
  const auto r = recommend::search(req, cat);
  REQUIRE_FALSE(r.frontier.empty());
  REQUIRE(r.top.size() == 5);
  for (const auto& p : r.top) CHECK(p.tpot_ms <= 50);
  for (std::size_t i = 1; i < r.top.size(); ++i)
    CHECK(r.top[i].cost_per_mtok >= r.top[i - 1].cost_per_mtok);
  for (const auto& p : r.frontier) CHECK_FALSE(dominated(p, r.frontier));
  // The same search twice gives the same answer (threads merge in a fixed order).
  const auto r2 = recommend::search(req, cat);
  CHECK(r2.top.front().cost_per_mtok == r.top.front().cost_per_mtok);
  CHECK(r2.frontier.size() == r.frontier.size());
}

TEST_CASE("one price basis per ranking, every own price a system price", "[recommend][pricing]") {
  const Catalog& cat = test::bundled_catalog();
  recommend::Request req;
  req.models = {&cat.model("qwen3-30b-a3b")};
  req.output_tokens_per_s = 200;
  req.sla.tpot_ms = 100;
  req.top = 20;
  SECTION("own, street") {
    const auto r = recommend::search(req, cat);
    REQUIRE_FALSE(r.top.empty());
    for (const auto* v : {&r.top, &r.frontier})
      for (const auto& p : *v) {
        INFO(p.price_basis);
        REQUIRE(p.system != nullptr);
        CHECK(p.price_basis.rfind("own: street, ", 0) == 0);
        CHECK((p.price_basis.find("system price") != std::string::npos ||
               p.price_basis.find("cards + host platform") != std::string::npos));
        CHECK(p.gpus == p.nodes * p.system->gpus_per_node);
      }
  }
  SECTION("rent, reserved 3 years: no row mixes in another kind") {
    req.price_as = "rent";
    req.rent_kind = pricing::RentKind::reserved_3y;
    const auto r = recommend::search(req, cat);
    REQUIRE_FALSE(r.top.empty());
    for (const auto& p : r.top) {
      CHECK(p.price_basis.rfind("rent: reserved_3y, ", 0) == 0);
      // 8 × H200 at the device's 3-year rate: 1.60 $/GPU-h × 8 = 12.80 $/node-hour.
      const bool own_rental =
          std::any_of(p.system->rentals.begin(), p.system->rentals.end(),
                      [](const SystemRental& x) { return x.kind == "reserved_3y"; });
      if (p.system->id == "hgx-h200-8" && !own_rental) CHECK(p.node_hour_usd == Approx(12.8));
    }
    const Json j = recommend::make_report(req, r).json;
    CHECK(j["price_basis"] == "rent: reserved_3y");
    for (const auto& x : j["top"]) {
      CHECK(x.contains("system"));
      CHECK(x["layout"].contains("nodes_per_replica"));
      CHECK(x.contains("price_basis"));
    }
  }
}

TEST_CASE("own hourly price: the system's price over its life plus wall power", "[recommend]") {
  const Catalog& cat = test::bundled_catalog();
  System s;
  s.id = "test-h200-3";
  s.device = "h200";
  s.gpus_per_node = 3;  // no prices.json entry of this size
  s.wall_power_w = 4000;
  SystemPrice p;
  p.basis = "street";
  p.currency = "USD";
  p.price_low = 100000;
  p.price_high = 140000;
  s.prices.push_back(p);
  recommend::Request req;  // own, street, 36 months, 0.12 USD/kWh, PUE 1.4
  std::string why;
  const auto h = recommend::node_hour_price(s, cat, req, &why);
  REQUIRE(h);
  // 120,000 / (36 × 730 h) + 4.0 kW × 1.4 × 0.12 USD/kWh = 4.566 + 0.672 = 5.238 USD/node-hour
  CHECK(h->first == Approx(120000 / (36 * 730.0) + 4.0 * 1.4 * 0.12));
  req.own_basis = pricing::OwnBasis::list;  // no list price: skipped with the reason
  CHECK_FALSE(recommend::node_hour_price(s, cat, req, &why));
  CHECK(why.find("list") != std::string::npos);
}

TEST_CASE("owning prices whole purchase units; renting the nodes needed", "[recommend][pricing]") {
  // GB200 trays are bought by the 18-tray rack (systems.json purchase_unit_nodes), so an owner's
  // cost per token counts 18 trays however few the demand fills; a renter pays per tray.
  const Catalog& cat = test::bundled_catalog();
  recommend::Request req;
  req.models = {&cat.model("glm-5.2")};
  req.output_tokens_per_s = 2000;
  req.top = 1000;
  req.max_gpus = 8;
  for (const std::string basis : {"own", "rent"}) {
    req.price_as = basis;
    req.rent_kind = pricing::RentKind::reserved_3y;
    const auto r = recommend::search(req, cat);
    bool seen = false;
    for (const auto& p : r.top) {
      const int needed = p.replicas * p.nodes;
      if (p.system->id != "gb200-nvl72-tray") {
        CHECK(p.nodes_paid == needed);
        continue;
      }
      seen = true;
      INFO(basis << " " << p.replicas << " × " << p.nodes);
      CHECK(p.nodes_paid == (basis == "own" ? 18 * ((needed + 17) / 18) : needed));
      // cost per 1M output tokens = node-hour × nodes paid / (demand × 3,600 s) × 1e6
      CHECK(p.cost_per_mtok == Approx(p.node_hour_usd * p.nodes_paid / (2000.0 * 3600) * 1e6));
    }
    CHECK(seen);
  }
}

namespace {
// A point's identity and figures, to compare two searches row by row.
auto row_key(const recommend::Point& p) {
  return std::make_tuple(p.model->id, p.system->id, p.gpus, p.precision, p.layout.tp, p.layout.pp,
                         p.layout.dp_attention, p.concurrency, p.replicas, p.cost_per_mtok);
}
}  // namespace

TEST_CASE("a configuration that cannot serve the demand is left out, the search goes on",
          "[recommend]") {
  // 3M output tok/s: qwen3-30b-a3b at concurrency 1 on a small card makes ~28 tok/s, so it
  // would need ~1.06e5 replicas, beyond the planner's 100,000: that point is left out (it used to
  // throw in a worker thread and abort the process), higher concurrencies are kept.
  // At 1e9 tok/s whole configurations fail at every concurrency (a card's best ~10^3-10^4 tok/s
  // → 10^5-10^6 replicas) and are counted as rejected; the largest still serve it.
  const Catalog& cat = test::bundled_catalog();
  recommend::Request req;
  req.models = {&cat.model("qwen3-30b-a3b")};
  req.top = 20;
  const double demand = GENERATE(3e6, 1e9);
  INFO("demand " << demand);
  req.output_tokens_per_s = demand;
  req.threads = 1;
  const auto one = recommend::search(req, cat);
  req.threads = 2;
  const auto two = recommend::search(req, cat);
  REQUIRE_FALSE(one.top.empty());
  for (const auto& p : one.top) CHECK(p.replicas <= 100000);
  CHECK_FALSE(recommend::nothing_to_rank(req, one));
  CHECK(one.points_beyond_range > 0);
  const auto reason = std::find_if(one.rejected.begin(), one.rejected.end(), [](const auto& x) {
    return x.first.find("more replicas than the planner's range") != std::string::npos;
  });
  if (demand > 1e8) {
    REQUIRE(reason != one.rejected.end());
    CHECK(reason->second > 0);
  }
  const Json j = recommend::make_report(req, one).json;
  CHECK(j["search"]["rejected"].size() == one.rejected.size());
  CHECK(j["search"]["points_beyond_range"] == one.points_beyond_range);
  CHECK(one.points_beyond_range == two.points_beyond_range);
  // Identical whatever the thread split.
  CHECK(one.rejected == two.rejected);
  CHECK(one.configs_fit == two.configs_fit);
  CHECK(one.points == two.points);
  REQUIRE(one.top.size() == two.top.size());
  REQUIRE(one.frontier.size() == two.frontier.size());
  for (std::size_t i = 0; i < one.top.size(); ++i)
    CHECK(row_key(one.top[i]) == row_key(two.top[i]));
  for (std::size_t i = 0; i < one.frontier.size(); ++i)
    CHECK(row_key(one.frontier[i]) == row_key(two.frontier[i]));
}

TEST_CASE("recommend never runs a replica past its engine's max_num_seqs", "[recommend]") {
  // vLLM admits 256 sequences per engine (engines.json max_num_seqs), llama.cpp 8; a small
  // model on a large card holds far more KV than that, so the cap is what binds.
  const Catalog& cat = test::bundled_catalog();
  for (const std::string engine : {"vllm", "llama.cpp"}) {
    recommend::Request req;
    req.models = {&cat.model("qwen3-30b-a3b")};
    req.engine = engine;
    req.output_tokens_per_s = 5e4;  // enough that no replica stops the ladder early
    req.input_tokens = 512;
    req.output_tokens = 128;
    req.top = 1000;
    req.max_gpus = 8;
    const auto r = recommend::search(req, cat);
    const long long cap = engine_max_num_seqs(cat.engine(engine));
    CHECK(cap == (engine == "vllm" ? 256 : 8));
    REQUIRE_FALSE(r.top.empty());
    bool binds = false;
    for (const auto* list : {&r.top, &r.frontier})
      for (const auto& p : *list) {
        INFO(engine << " " << p.system->id << " conc " << p.concurrency);
        CHECK(p.concurrency <= cap);
        CHECK(p.concurrency <= p.limit.kv_limit);
        CHECK(p.limit.max_num_seqs == cap);
        binds = binds || (p.concurrency == cap && p.limit.kv_limit > cap);
      }
    CHECK(binds);  // some row sits at the cap with KV room to spare
    bool said = false;
    for (const auto& m : recommend::make_report(req, r).messages)
      said = said || m.find("max_num_seqs of " + std::to_string(cap)) != std::string::npos;
    CHECK(said);
  }
}

TEST_CASE("every recommended concurrency fits when fit is asked at that concurrency",
          "[recommend][sizing]") {
  // The audit's case: deepseek-v3 at 500 tok/s listed 16 × RTX 4090 (tp 1, pp 16) at
  // concurrency 32, which fit at 1,280 tokens rejected (at most 28): the limit had been sized
  // with the activations of one sequence.
  const Catalog& cat = test::bundled_catalog();
  const Engine& eng = cat.engine("vllm");
  recommend::Request req;
  req.models = {&cat.model("deepseek-v3")};
  req.output_tokens_per_s = 500;
  req.top = 50;
  const auto r = recommend::search(req, cat);
  REQUIRE(r.top.size() == 50);
  for (const auto* list : {&r.top, &r.frontier})
    for (const auto& p : *list) {
      INFO(p.system->id << " tp " << p.layout.tp << " pp " << p.layout.pp << " conc "
                        << p.concurrency);
      FitRequest f = engine_fit_request(
          *p.model, *p.device, p.gpus,
          p.precision == "native" ? p.model->native_precision
                                  : parse_weight_spec(p.precision, p.model->native_precision, cat),
          p.kv, eng, topology_of(*p.system), req.input_tokens + req.output_tokens,
          Layout{p.layout.tp, p.layout.pp, p.layout.ep, p.layout.dp_attention});
      f.concurrency = p.concurrency;
      CHECK(fit(f, cat).fits);
    }
}

TEST_CASE("recommend refuses a demand that is not positive and says when nothing fits",
          "[recommend][errors]") {
  const Catalog& cat = test::bundled_catalog();
  recommend::Request req;
  req.models = {&cat.model("qwen3-30b-a3b")};
  for (const double bad : {0.0, -5.0}) {
    req.output_tokens_per_s = bad;
    CHECK_THROWS_WITH(
        recommend::search(req, cat),
        Catch::Matchers::StartsWith("recommend: the demand must be a positive output tok/s"));
  }
  // deepseek-v4-pro's weights are far beyond one card: nothing to search, nothing to rank.
  req.models = {&cat.model("deepseek-v4-pro")};
  req.output_tokens_per_s = 500;
  req.max_gpus = 1;
  const auto r = recommend::search(req, cat);
  CHECK(r.configs == 0);
  const auto why = recommend::nothing_to_rank(req, r);
  REQUIRE(why);
  CHECK_THAT(*why, Catch::Matchers::StartsWith("recommend: nothing fits within the limits given"));
  CHECK(why->find("SLA") == std::string::npos);
}
