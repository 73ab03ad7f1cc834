// Model menus (docs/plan.md § menus): reader errors, allocation rules, routing, shared cost.
#include <fmt/format.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <random>
#include <set>

#include "moeplan/errors.hpp"
#include "moeplan/layout.hpp"
#include "moeplan/menu.hpp"
#include "moeplan/sizing.hpp"
#include "moeplan/system.hpp"
#include "test_support.hpp"

using namespace moeplan;
using moeplan::test::bundled_catalog;

namespace {

Json workload(const std::string& id, const std::string& model, double rpd, bool resident = false) {
  Json w = {{"id", id},
            {"model", model},
            {"demand",
             {{"requests_per_day", rpd},
              {"input_tokens", 1000},
              {"output_tokens", 300},
              {"peak_to_average", 1.5}}},
            {"sla", {{"ttft_ms", 3000}, {"tpot_ms", 60}}}};
  if (resident) w["residency_required"] = true;
  return w;
}

Json menu_doc(const Json& workloads, const Json& builds = Json::array({"rtx-pro-6000-8"})) {
  return {{"currency", "USD"},
          {"horizon_months", 36},
          {"builds", builds},
          {"buy",
           {{"life_months", 36},
            {"pue", 1.4},
            {"electricity_per_kwh", 0.3},
            {"staff_fte", 0.2},
            {"fte_cost_per_year", 120000}}},
          {"workloads", workloads}};
}

menu::MenuResult run(const Json& doc) {
  const auto& cat = bundled_catalog();
  return menu::run_menu(menu::parse_menu_scenario(doc, "menu.json", cat), cat);
}

const menu::SystemResult& sys(const menu::MenuResult& r, const std::string& id) {
  for (const auto& s : r.systems)
    if (s.system == id) return s;
  FAIL("system " << id << " not in the result");
  return r.systems.front();
}

const menu::WorkloadResult& wl(const menu::SystemResult& s, const std::string& id) {
  for (const auto& w : s.workloads)
    if (w.id == id) return w;
  FAIL("workload " << id << " not in the result");
  return s.workloads.front();
}

std::string input_error_path(const Json& doc) {
  try {
    (void)menu::parse_menu_scenario(doc, "bad.json", bundled_catalog());
  } catch (const InputError& e) {
    return e.json_path() + " | " + e.problem();
  }
  return "no error";
}

// A mixed menu: small and mid models, one resident, one large MoE.
Json mixed() {
  return Json::array(
      {workload("chat", "qwen3-30b-a3b", 400000), workload("small", "qwen3-8b", 50000),
       workload("private", "qwen3-14b", 100000, true), workload("coder", "gpt-oss-120b", 60000),
       workload("big", "minimax-m3", 20000)});
}

// The bundled seed-000 menu (examples/plan-menu-rtxpro6000-huf.json), planned.
menu::MenuResult seed000_menu() {
  const auto& cat = bundled_catalog();
  return menu::run_menu(menu::load_menu_scenario(
                            moeplan::test::examples_dir() + "/plan-menu-rtxpro6000-huf.json", cat),
                        cat);
}

}  // namespace

TEST_CASE("menu reader: bad menus name the field", "[menu]") {
  Json dup =
      menu_doc(Json::array({workload("a", "qwen3-8b", 1000), workload("a", "qwen3-14b", 1000)}));
  CHECK(input_error_path(dup).rfind("/workloads/1/id | duplicate workload id 'a'", 0) == 0);

  Json nodemand = menu_doc(Json::array({workload("a", "qwen3-8b", 1000)}));
  nodemand["workloads"][0].erase("demand");
  CHECK(input_error_path(nodemand).rfind("/workloads/0/demand | missing", 0) == 0);

  Json zero = menu_doc(Json::array({workload("a", "qwen3-8b", 0)}));
  CHECK(input_error_path(zero).rfind("/workloads/0/demand/requests_per_day | a workload with no "
                                     "demand",
                                     0) == 0);

  Json embed = menu_doc(Json::array({workload("e", "qwen3-8b", 1000)}));
  embed["workloads"][0]["kind"] = "embed";
  const std::string m = input_error_path(embed);
  CHECK(m.rfind("/workloads/0/model |", 0) == 0);
  CHECK(m.find("generative") != std::string::npos);

  Json badsla = menu_doc(Json::array({workload("a", "qwen3-8b", 1000)}));
  badsla["workloads"][0]["sla"]["tpot_ms"] = -5;
  CHECK(input_error_path(badsla).rfind("/workloads/0/sla/tpot_ms |", 0) == 0);

  Json several = menu_doc(Json::array({workload("a", "qwen3-8b", 1000)}), "auto");
  several["buy"]["capex"] = 1e6;
  CHECK(input_error_path(several).rfind("/buy/capex | describes one node of one system", 0) == 0);

  Json typo = menu_doc(Json::array({workload("a", "qwen3-8b", 1000)}));
  typo["workloads"][0]["replicas"] = 3;
  CHECK(input_error_path(typo).rfind("/workloads/0", 0) == 0);

  CHECK_THROWS_AS(
      menu::parse_menu_scenario(menu_doc(Json::array({workload("a", "no-such-model", 10)})),
                                "bad.json", bundled_catalog()),
      InputError);
}

TEST_CASE("menu: LoRA adapter memory by hand", "[menu]") {
  // qwen3-14b: 40 layers, hidden 5120 (data/models.json). 8 adapters of rank 16, bf16:
  // 8 × 16 × 40 × 5120 × 2 matrices × 4 projections × 2 bytes = 419,430,400 bytes.
  const Model& m = bundled_catalog().model("qwen3-14b");
  REQUIRE(m.layers == 40);
  REQUIRE(m.hidden_size == 5120);
  CHECK(menu::lora_bytes(m, {8, 16, "bf16"}) == Approx(419430400.0).epsilon(1e-12));
}

TEST_CASE("menu: aligned first-fit-decreasing packs powers of two exactly", "[menu]") {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<int> sizes;
    int sum = 0;
    const int n = 1 + static_cast<int>(rng() % 20);
    for (int i = 0; i < n; ++i) {
      sizes.push_back(1 << (rng() % 4));  // 1, 2, 4, 8
      sum += sizes.back();
    }
    int nodes = 0;
    const auto at = menu::pack_groups(sizes, 8, &nodes);
    CHECK(nodes == (sum + 7) / 8);  // the lower bound is met
    std::set<std::pair<int, int>> used;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      CHECK(at[i].second % sizes[i] == 0);  // aligned
      for (int k = 0; k < sizes[i]; ++k) {
        CHECK(at[i].second + k < 8);
        CHECK(used.insert({at[i].first, at[i].second + k}).second);  // no GPU twice
      }
    }
  }
}

TEST_CASE("menu: allocations respect memory, SLA and layout rules", "[menu]") {
  const auto& cat = bundled_catalog();
  const Json doc = menu_doc(mixed(), Json::array({"rtx-pro-6000-8", "hgx-h200-8", "l40s-4"}));
  const auto sc = menu::parse_menu_scenario(doc, "menu.json", cat);
  const auto r = menu::run_menu(sc, cat);
  int shared = 0;
  for (const auto& s : r.systems) {
    REQUIRE(s.ok);
    const System& system = cat.system(s.system);
    std::map<std::pair<int, int>, std::set<std::string>> used;  // (node, GPU) → workloads
    for (const auto& p : s.allocation)
      for (int g : p.gpus) {
        CHECK(g < system.gpus_per_node);
        auto& on = used[{p.node, g}];
        CHECK(on.insert(p.workload).second);
        CHECK((on.size() == 1 || !p.shared_with.empty()));  // two only on a shared card
        CHECK(on.size() <= 2);
      }
    for (std::size_t i = 0; i < s.workloads.size(); ++i) {
      const auto& w = s.workloads[i];
      if (w.option != "self_host") continue;
      if (!w.shares_card_with.empty()) {
        // A shared card is re-checked as a pair: both SLAs and both peaks hold.
        std::size_t j = 0;
        while (s.workloads[j].id != w.shares_card_with) ++j;
        const auto pair = menu::share_card(sc.workloads[std::min(i, j)],
                                           sc.workloads[std::max(i, j)], system, sc, cat);
        REQUIRE(pair);
        CHECK(w.gpus == 1);
        CHECK(w.group.tpot_ms <= 60 + 1e-9);
        CHECK(w.group.ttft_ms <= 3000 + 1e-9);
        CHECK(w.group.throughput >= w.peak_tok_s - 1e-6);
        ++shared;
        continue;
      }
      // The group is re-checked from scratch: it fits, meets the SLA, obeys the layout rules.
      const auto g = menu::evaluate_group(sc.workloads[i], system, w.group.gpus, sc, cat);
      REQUIRE(g.ok);
      CHECK(g.tpot_ms <= 60 + 1e-9);
      CHECK(g.ttft_ms <= 3000 + 1e-9);
      CHECK(w.replicas * g.throughput >= w.peak_tok_s - 1e-6);
      const Model& m = *sc.workloads[i].model;
      if (m.is_moe() && m.total_params_b >= 100 && system.scale_up.kind != ScaleUpKind::nvlink &&
          system.scale_up.kind != ScaleUpKind::xgmi)
        CHECK(w.group.gpus == 1);
      int placed = 0;
      for (const auto& p : s.allocation)
        if (p.workload == w.id) placed += static_cast<int>(p.gpus.size());
      CHECK(placed == w.gpus);
    }
  }
  CHECK(shared > 0);  // the mixed menu exercises card sharing somewhere
  // minimax-m3 (428B MoE) is never sharded over the RTX PRO 6000's PCIe.
  const auto& rtx = sys(r, "rtx-pro-6000-8");
  CHECK(wl(rtx, "big").option != "self_host");
  CHECK(wl(rtx, "big").reason.find("large-moe-over-pcie") != std::string::npos);
}

TEST_CASE("menu: never dearer than separate plans and residency stays home", "[menu]") {
  Json doc = menu_doc(mixed(), "auto");
  SECTION("every GPU at full draw") {}
  SECTION("average power") {
    doc["average_power"] = {{"gpu_idle_w", 60}, {"source", "test"}};
  }
  const auto r = run(doc);
  int checked = 0;
  for (const auto& s : r.systems) {
    if (!s.ok) continue;
    ++checked;
    CHECK(s.menu_cost_per_year <= s.separate_plans_cost_per_year + 1e-6);
    CHECK(wl(s, "private").option != "api");
  }
  CHECK(checked >= 3);
}

TEST_CASE("menu: adding a workload never lowers the fleet's cost", "[menu]") {
  Json all = mixed();
  all.push_back({{"id", "rag"},
                 {"model", "qwen3-embedding-8b"},
                 {"kind", "embed"},
                 {"demand", {{"requests_per_day", 300000}, {"input_tokens", 512}}}});
  Json power = Json();
  SECTION("every GPU at full draw") {}
  SECTION("average power") {
    power = {{"gpu_idle_w", 60}, {"source", "test"}};
  }
  auto with_power = [&](Json d) {
    if (!power.is_null()) d["average_power"] = power;
    return d;
  };
  for (std::size_t k = 1; k <= all.size(); ++k) {
    Json fewer = Json::array();
    for (std::size_t i = 0; i + 1 < k; ++i) fewer.push_back(all[i]);
    Json more = fewer;
    more.push_back(all[k - 1]);
    const Json builds = Json::array({"rtx-pro-6000-8", "hgx-h200-8"});
    const auto b = run(with_power(menu_doc(more, builds)));
    if (fewer.empty()) continue;
    const auto a = run(with_power(menu_doc(fewer, builds)));
    for (const std::string id : {"rtx-pro-6000-8", "hgx-h200-8"})
      CHECK(sys(b, id).menu_cost_per_year >= sys(a, id).menu_cost_per_year - 1e-6);
  }
}

TEST_CASE("menu: a workload too big for any group is reported, not dropped", "[menu]") {
  // kimi-k2 (1T MoE) resident on 4 × RTX 4090: no group fits, the API is ruled out.
  const auto r = run(menu_doc(
      Json::array({workload("chat", "qwen3-8b", 20000), workload("huge", "kimi-k2", 1000, true)}),
      Json::array({"rtx-4090-4"})));
  const auto& s = sys(r, "rtx-4090-4");
  REQUIRE(s.workloads.size() == 2);
  CHECK(wl(s, "huge").option == "unserved");
  CHECK(wl(s, "huge").reason.find("residency") != std::string::npos);
  const Report rep = menu::make_menu_report(r);
  bool listed = false;
  for (const auto& w : rep.json["workloads"]) listed = listed || w["id"] == "huge";
  CHECK(listed);
}

TEST_CASE("menu: the example reproduces seed 000's node", "[menu]") {
  const auto r = seed000_menu();
  const auto& s = r.systems.front();
  REQUIRE(s.ok);
  CHECK(s.system == "rtx-pro-6000-8");
  CHECK(s.nodes == 1);
  // Seed 000: 47.3M HUF capex (gross, VAT not recoverable) on one node.
  CHECK(s.nodes * s.capex_per_node == Approx(47.3e6).epsilon(0.001));
  CHECK(wl(s, "tenants").option == "self_host");
  CHECK(wl(s, "coding").option == "api");  // 428B MoE is not sharded over PCIe
}

TEST_CASE("menu: fleet SVG has one cell per GPU, idle ones hatched", "[menu]") {
  const auto r = seed000_menu();
  const auto& s = r.systems.front();
  const std::string svg = menu::render_fleet_svg(r, "test");
  std::size_t cells = 0, idle = 0;
  for (std::size_t p = svg.find("class=\"gpu\""); p != std::string::npos;
       p = svg.find("class=\"gpu\"", p + 1))
    ++cells;
  for (std::size_t p = svg.find("fill=\"url(#idle)\" stroke=\"#333333\"><title>");
       p != std::string::npos;
       p = svg.find("fill=\"url(#idle)\" stroke=\"#333333\"><title>", p + 1))
    ++idle;
  CHECK(cells == static_cast<std::size_t>(s.nodes * s.gpus_per_node));
  CHECK(idle == static_cast<std::size_t>(s.idle_gpus));
  CHECK(svg.find("interactive r1") != std::string::npos);
  // The shared card (embeddings + reranker, seed 000's last GPU) shows both workloads: its title
  // names both, and the second is drawn as a band of its own colour.
  const std::size_t shared = svg.find(" (shared)</title>");
  REQUIRE(shared != std::string::npos);
  const std::size_t title = svg.rfind("<title>", shared);
  const std::string names = svg.substr(title, shared - title);
  CHECK(names.find("rag-embed r1") != std::string::npos);
  CHECK(names.find("rag-rerank r1") != std::string::npos);
  std::size_t bands = 0;
  for (std::size_t p = svg.find("class=\"share\""); p != std::string::npos;
       p = svg.find("class=\"share\"", p + 1))
    ++bands;
  CHECK(bands == 1);
}

TEST_CASE("menu: never dearer than the same workloads through `plan` one by one", "[menu]") {
  // Each workload planned alone by plan::run_plan on the same system and money settings; its
  // cheapest allowed option (own, or API without residency) summed over the menu.
  const auto& cat = bundled_catalog();
  const Json ws = Json::array(
      {workload("chat", "qwen3-30b-a3b", 400000), workload("small", "llama-3.1-8b", 50000),
       workload("private", "qwen3-14b", 100000, true), workload("coder", "gpt-oss-120b", 60000)});
  for (const std::string system : {"hgx-h200-8", "rtx-pro-6000-8"}) {
    const Json doc = menu_doc(ws, Json::array({system}));
    const auto r = run(doc);
    double separate = 0;
    for (const auto& w : ws) {
      Json p = doc;
      p.erase("workloads");
      p["demand"] = w["demand"];
      p["demand"]["sla_ttft_ms"] = w["sla"]["ttft_ms"];
      p["demand"]["sla_tpot_ms"] = w["sla"]["tpot_ms"];
      const bool resident = w.value("residency_required", false);
      if (resident) p["demand"]["residency_required"] = true;
      p["models"] = Json::array({w["model"]});
      p["builds"] = Json::array({{{"system", system}}});
      p["monte_carlo"] = {{"samples", 10}};
      const auto pr = plan::run_plan(plan::parse_plan_scenario(p, "one.json", cat), cat);
      REQUIRE(pr.candidates.size() == 1);
      const auto& c = pr.candidates.front();
      std::optional<double> best = c.meets_sla ? c.own_per_year : std::nullopt;
      if (!resident && c.api_per_year && (!best || *c.api_per_year < *best)) best = c.api_per_year;
      REQUIRE(best);
      separate += *best;
    }
    INFO(system);
    CHECK(sys(r, system).menu_cost_per_year <= separate * (1 + 1e-9));
  }
}

namespace {

Json embed_workload(const std::string& id, const std::string& model, const std::string& kind,
                    double items_per_day, long long tokens) {
  return {{"id", id},
          {"model", model},
          {"kind", kind},
          {"demand", {{"requests_per_day", items_per_day}, {"input_tokens", tokens}}},
          {"sla", {{"ttft_ms", 2000}}}};
}

}  // namespace

TEST_CASE("menu reader: kind against the model's kind, embed demand", "[menu]") {
  auto path = [](Json w) { return input_error_path(menu_doc(Json::array({w}))); };
  // A generative workload (no kind) given an embedding model.
  Json gen = workload("g", "qwen3-embedding-8b", 1000);
  CHECK(path(gen).rfind("/workloads/0/model | 'qwen3-embedding-8b' has kind embed", 0) == 0);
  CHECK(path(gen).find("\"kind\": \"embed\"") != std::string::npos);
  // A rerank workload given an embedding model.
  Json rr = embed_workload("r", "qwen3-embedding-8b", "rerank", 1000, 512);
  CHECK(path(rr).rfind("/workloads/0/model | a rerank workload needs a model of kind rerank", 0) ==
        0);
  // Embed demand: no output tokens, no TPOT, no adapters, tokens per item required.
  Json out = embed_workload("e", "qwen3-embedding-8b", "embed", 1000, 512);
  out["demand"]["output_tokens"] = 10;
  CHECK(path(out).rfind("/workloads/0/demand/output_tokens | an embed workload produces no", 0) ==
        0);
  Json tpot = embed_workload("e", "qwen3-embedding-8b", "embed", 1000, 512);
  tpot["sla"]["tpot_ms"] = 50;
  CHECK(path(tpot).rfind("/workloads/0/sla/tpot_ms | an embed workload has no decode", 0) == 0);
  Json lora = embed_workload("e", "qwen3-embedding-8b", "embed", 1000, 512);
  lora["lora_adapters"] = {{"count", 2}, {"rank", 8}};
  CHECK(path(lora).rfind("/workloads/0/lora_adapters |", 0) == 0);
  Json none = embed_workload("e", "qwen3-embedding-8b", "embed", 1000, 512);
  none["demand"].erase("input_tokens");
  CHECK(path(none).rfind("/workloads/0/demand/input_tokens | missing", 0) == 0);
  Json both = embed_workload("r", "qwen3-reranker-8b", "rerank", 1000, 512);
  both["demand"]["query_tokens"] = 64;
  both["demand"]["document_tokens"] = 448;
  CHECK(path(both).rfind("/workloads/0/demand/input_tokens | give input_tokens or", 0) == 0);
  // A rerank item is one query-document pair: its tokens are the two added.
  Json pair = embed_workload("r", "qwen3-reranker-8b", "rerank", 1000, 512);
  pair["demand"].erase("input_tokens");
  pair["demand"]["query_tokens"] = 64;
  pair["demand"]["document_tokens"] = 448;
  const auto sc =
      menu::parse_menu_scenario(menu_doc(Json::array({pair})), "m.json", bundled_catalog());
  CHECK(sc.workloads[0].item_tokens == 512);
  CHECK(sc.workloads[0].demand.input_tokens == 512);
  CHECK(sc.workloads[0].demand.output_tokens == 1);  // one pseudo-output token per item
}

TEST_CASE("plan: embedding and reranking models are menu-only", "[menu][plan]") {
  const auto& cat = bundled_catalog();
  Json p = menu_doc(Json::array());
  p.erase("workloads");
  p["demand"] = {{"requests_per_day", 1000}, {"input_tokens", 500}, {"output_tokens", 100}};
  p["builds"] = Json::array({{{"system", "rtx-pro-6000-8"}}});
  p["models"] = Json::array({"qwen3-8b", "qwen3-reranker-8b"});
  try {
    (void)plan::parse_plan_scenario(p, "one.json", cat);
    FAIL("a reranker in /models was accepted");
  } catch (const InputError& e) {
    CHECK(e.json_path() == "/models/1");
    CHECK(e.problem().find("menu workload") != std::string::npos);
  }
  // With constraints instead of ids, plan never picks one.
  p["models"] = {{"max_total_params_b", 9}};
  p["monte_carlo"] = {{"samples", 10}};
  const auto r = plan::run_plan(plan::parse_plan_scenario(p, "one.json", cat), cat);
  REQUIRE_FALSE(r.candidates.empty());
  for (const auto& c : r.candidates) CHECK(c.model->is_generative());
}

TEST_CASE("menu: embed and rerank are prefill-only work in items/s", "[menu]") {
  const auto& cat = bundled_catalog();
  // Resident (documents stay home): a whole node for two small workloads is dearer than their
  // input-only APIs, which this test is not about.
  Json emb = embed_workload("emb", "qwen3-embedding-8b", "embed", 1e6, 512);
  Json rr = embed_workload("rr", "qwen3-reranker-8b", "rerank", 8e5, 512);
  emb["residency_required"] = rr["residency_required"] = true;
  const auto r = run(menu_doc(Json::array({emb, rr})));
  const auto& s = sys(r, "rtx-pro-6000-8");
  REQUIRE(s.ok);
  const Device& d = cat.device("rtx-pro-6000");
  for (const char* id : {"emb", "rr"}) {
    INFO(id);
    const auto& w = wl(s, id);
    REQUIRE(w.option == "self_host");
    // Items/s: 1e6 (8e5) items a day / 86,400 s.
    CHECK(w.peak_tok_s == Approx((id == std::string("emb") ? 1e6 : 8e5) / 86400.0));
    // Prefill roofline: an item of 512 tokens costs 2 × parameters × 512 FLOPs; the card cannot
    // beat its bf16 peak (500 TFLOPS), and prefill of an 8B model at 512 tokens reaches a fair
    // share of it (≥ 15%). A shared card halves each engine's share.
    const double params = cat.model(w.model).total_params_b * 1e9;
    const double roofline = d.peak_tflops.at("bf16") * 1e12 / (2 * params * 512);
    const double share = w.shares_card_with.empty() ? 1.0 : w.group.time_share;
    CHECK(w.group.throughput <= roofline * share);
    CHECK(w.group.throughput >= 0.15 * roofline * share);
    CHECK(w.group.tpot_ms > 0);
    CHECK(w.group.ttft_ms <= 2000 + 1e-9);
    CHECK_FALSE(w.cost_per_mtok_output);  // no output tokens
    // Cost per 1M tokens embedded/scored: its yearly cost / (items a year × 512 / 1e6).
    REQUIRE(w.cost_per_mtok_embedded);
    CHECK(*w.cost_per_mtok_embedded ==
          Approx(*w.cost_per_year / (w.peak_tok_s * 86400 * 365 * 512 / 1e6)));
  }
  // Both 8B models fit half a card each (15.1 + 16.4 GB of bf16 weights) and share one.
  CHECK(wl(s, "emb").shares_card_with == "rr");
  CHECK(s.idle_gpus == 7);
  // The fleet's cost per output token counts generative output only: none here.
  CHECK_FALSE(s.cost_per_mtok_output);
}

TEST_CASE("menu: average power charges each GPU's draw above idle by its busy share", "[menu]") {
  Json doc = menu_doc(Json::array({workload("chat", "qwen3-30b-a3b", 400000, true)}));
  doc["buy"]["capex"] = 300000;
  doc["buy"]["wall_power_w"] = 8800;
  const auto full = run(doc);
  doc["average_power"] = {{"gpu_idle_w", 90}, {"source", "test"}};
  const auto avg = run(doc);
  const auto& f = sys(full, "rtx-pro-6000-8");
  const auto& a = sys(avg, "rtx-pro-6000-8");
  REQUIRE(f.ok);
  REQUIRE(a.ok);
  const auto& w = wl(a, "chat");
  REQUIRE(w.option == "self_host");
  // Hand calculation: one W all year = PUE 1.4 × 0.3 USD/kWh × 720 h × 12 / 1000 = 3.6288 USD;
  // a busy GPU adds 600 − 90 = 510 W (rtx-pro-6000 TDP 600 W, data/devices.json).
  const double per_w_year = 1.4 * 0.3 * 720 * 12 / 1000;
  CHECK(a.energy_per_busy_gpu_year == Approx(510 * per_w_year));
  const double u = w.average_tok_s / (w.replicas * w.group.throughput);
  CHECK(w.busy_gpus == Approx(u * w.gpus));
  // Opex: the full-draw opex less every GPU's 510 W, plus the busy GPUs' 510 W.
  const double opex_full = f.opex_per_year;
  CHECK(opex_full == Approx(8800 * per_w_year + 0.2 * 120000));
  CHECK(a.opex_per_year == Approx(opex_full - (8 - w.busy_gpus) * 510 * per_w_year));
  CHECK(a.wall_power_average_w == Approx(8800 - (8 - w.busy_gpus) * 510));
  CHECK(a.menu_cost_per_year < f.menu_cost_per_year);
  // The workload pays its GPU share of the idle node plus its own energy.
  CHECK(*w.cost_per_year ==
        Approx(w.gpus * a.node_fixed_cost_per_year / 8 + w.busy_gpus * 510 * per_w_year));
  // An idle draw at or above the TDP is refused, naming the field.
  doc["average_power"]["gpu_idle_w"] = 600;
  CHECK(input_error_path(doc).rfind("/average_power/gpu_idle_w | 600 W is not below the TDP", 0) ==
        0);
}

TEST_CASE("menu: the seed 000 example lands within 15% of the seed's economics", "[menu]") {
  const auto r = seed000_menu();
  const auto& s = r.systems.front();
  REQUIRE(s.ok);
  // Seed 000: GPU 7 carries Qwen3-Embedding + Qwen3-Reranker.
  CHECK(wl(s, "rag-embed").option == "self_host");
  CHECK(wl(s, "rag-embed").shares_card_with == "rag-rerank");
  // Average power on the shared card: each engine is busy its utilization × its share of the
  // card's time; the two shares split the card (time-sliced).
  const auto& e = wl(s, "rag-embed");
  const auto& rr = wl(s, "rag-rerank");
  CHECK(e.group.time_share + rr.group.time_share == Approx(1));
  CHECK(e.busy_gpus == Approx(e.utilization * e.group.time_share));
  double busy = 0;
  for (const auto& w : s.workloads) busy += w.busy_gpus;
  // 8.8 kW wall at full draw; every GPU not busy draws 600 − 90 W less.
  CHECK(s.wall_power_average_w == Approx(8800 - (8 - busy) * 510));
  // Seed 000: 47.3M HUF capex, 17.9M HUF/yr opex, ~127 HUF per 1M output tokens.
  CHECK(s.nodes * s.capex_per_node == Approx(47.3e6).epsilon(0.001));
  CHECK(s.opex_per_year == Approx(17.9e6).epsilon(0.15));
  REQUIRE(s.cost_per_mtok_output);
  CHECK(*s.cost_per_mtok_output == Approx(127).epsilon(0.15));
}

// --- audit fixes (docs/plan.md § menus) ---------------------------------------------------------

namespace {

// An hgx-h100-8 menu with the money of the menu benchmark (USD, owned, 3-year life).
Json h100_doc(const Json& workloads) {
  return {{"currency", "USD"},
          {"horizon_months", 36},
          {"builds", Json::array({"hgx-h100-8"})},
          {"buy",
           {{"life_months", 36},
            {"pue", 1.3},
            {"electricity_per_kwh", 0.15},
            {"staff_fte", 0.2},
            {"fte_cost_per_year", 150000}}},
          {"workloads", workloads}};
}

Json job(const std::string& id, const std::string& model, double rpd, long long in, long long out,
         double p2a, double ttft, double tpot, bool resident = false) {
  Json w = {{"id", id},
            {"model", model},
            {"demand",
             {{"requests_per_day", rpd},
              {"input_tokens", in},
              {"output_tokens", out},
              {"peak_to_average", p2a}}},
            {"sla", {{"ttft_ms", ttft}, {"tpot_ms", tpot}}}};
  if (resident) w["residency_required"] = true;
  return w;
}

// The five qwen3-8b workloads of the order audit: two light, two heavy, one bulk (6 cards).
std::vector<Json> order_workloads() {
  return {job("A-light", "qwen3-8b", 10000, 1000, 200, 1, 5000, 100, true),
          job("B-light", "qwen3-8b", 10000, 1000, 200, 1, 5000, 100, true),
          job("C-heavy", "qwen3-8b", 1296000, 1000, 200, 1, 5000, 100, true),
          job("D-heavy", "qwen3-8b", 1296000, 1000, 200, 1, 5000, 100, true),
          job("E-bulk", "qwen3-8b", 12238776, 1000, 200, 1, 5000, 100, true)};
}

// The menu benchmark's ten workloads on one hgx-h100-8 (tests/fixtures/menu-bench-10-auto-usd.json
// with builds narrowed to that system).
Json bench_h100() {
  Json ws = Json::array();
  const std::vector<std::pair<std::string, double>> m = {
      {"qwen3-30b-a3b", 100000},  {"qwen3-8b", 200000},     {"qwen3-14b", 300000},
      {"qwen3-32b", 100000},      {"llama-3.1-8b", 200000}, {"llama-3.3-70b", 300000},
      {"gpt-oss-20b", 100000},    {"gpt-oss-120b", 200000}, {"mistral-nemo-12b", 300000},
      {"gemma-4-26b-a4b", 100000}};
  for (std::size_t i = 0; i < m.size(); ++i) {
    Json w = job(fmt::format("w{}-{}", i + 1, m[i].first), m[i].first, m[i].second, 2000, 400, 1.5,
                 3000, 60, i % 3 == 2);
    if (i == 2) w["lora_adapters"] = {{"count", 16}, {"rank", 16}};
    ws.push_back(w);
  }
  return h100_doc(ws);
}

}  // namespace

TEST_CASE("menu: LoRA adapters cap the concurrency at what fits beside them", "[menu]") {
  // Audit repro lora-big: qwen3-14b FP8 with 286 rank-64 adapters on an RTX PRO 6000.
  // Adapters: 286 × 64 × 40 layers × 5120 hidden × 2 matrices × 4 projections × 2 B
  // = 59.98 GB on the card, so fit --reserve-gb 59.98 holds 111 sequences, not the 516 of the
  // bare engine; the sweep's 256 (max_num_seqs) does not fit.
  Json w = job("tenants", "qwen3-14b", 600000, 1500, 300, 1, 10000, 200, true);
  w["precision"] = "fp8";
  w["lora_adapters"] = {{"count", 286}, {"rank", 64}};
  const Json doc = menu_doc(Json::array({w}));
  const auto& cat = bundled_catalog();
  const auto sc = menu::parse_menu_scenario(doc, "menu.json", cat);
  const System& system = cat.system("rtx-pro-6000-8");
  const auto g = menu::evaluate_group(sc.workloads[0], system, 1, sc, cat);
  REQUIRE(g.ok);
  CHECK(g.lora_gb == Approx(59.98).epsilon(0.001));
  // What fit() holds with the adapters reserved, at the workload's context.
  const Model& m = cat.model("qwen3-14b");
  const Device& d = cat.device(system.device);
  const Engine& e = cat.engine(sc.money.engine);
  const PrecisionMix mix = parse_weight_spec("fp8", m.native_precision, cat);
  FitRequest f =
      engine_fit_request(m, d, 1, mix, default_kv_precision(d, e), e, topology_of(system), 1800);
  f.reserved_gb_per_gpu = g.lora_gb;
  const long long fits = fit(f, cat).max_concurrency;
  CHECK(fits < 256);
  CHECK(g.limit.kv_limit == fits);  // the reported limit is the one with adapters reserved
  CHECK(g.concurrency <= fits);
  const auto r = run(doc);
  const auto& t = wl(sys(r, "rtx-pro-6000-8"), "tenants");
  CHECK(t.group.concurrency <= fits);
  // The sweep point at the cap itself (as sweep() ends at its own limit): 111 sequences, ~2,219
  // tok/s at TPOT ~49 ms (SLA 200 ms). Peak 600,000 × 300 / 86,400 = 2,083 tok/s, so one card
  // (~94% busy at peak); before the fix: one card at 256 sequences, which do not fit.
  CHECK(t.group.concurrency == fits);
  CHECK(t.group.limit.kv_limit == fits);
  CHECK(t.replicas == static_cast<int>(std::ceil(600000.0 * 300 / 86400 / t.group.throughput)));
  CHECK(t.group.throughput == Approx(2219).epsilon(0.02));
}

TEST_CASE("menu: card sharing is an optimal matching, whatever the menu order", "[menu]") {
  // Audit repro order-ABCD / order-ACBD: A and B (light) can each share with a heavy one, the
  // two light ones can share too, but the heavy ones cannot share with each other. Greedy in
  // menu order paired A+B and left C, D alone: 1 + 1 + 1 + 6 = 9 cards → 2 nodes; the maximum
  // matching (A+C, B+D) needs 2 + 6 = 8 cards → 1 node.
  const std::vector<Json> base = order_workloads();
  std::vector<std::size_t> perm = {0, 1, 2, 3, 4};
  std::mt19937 rng(7);
  std::optional<double> cost;
  std::optional<std::set<std::pair<std::string, std::string>>> pairs;
  for (int trial = 0; trial < 6; ++trial) {
    Json ws = Json::array();
    for (std::size_t i : perm) ws.push_back(base[i]);
    const auto r = run(h100_doc(ws));
    const auto& s = sys(r, "hgx-h100-8");
    CHECK(s.nodes == 1);
    CHECK(s.idle_gpus == 0);
    std::set<std::pair<std::string, std::string>> p;
    for (const auto& w : s.workloads)
      if (!w.shares_card_with.empty()) p.insert(std::minmax(w.id, w.shares_card_with));
    CHECK(p.size() == 2);
    if (!cost) {
      cost = s.menu_cost_per_year;
      pairs = p;
    }
    CHECK(s.menu_cost_per_year == Approx(*cost).epsilon(1e-9));
    CHECK(p == *pairs);  // the same pairs, whatever the order
    std::shuffle(perm.begin(), perm.end(), rng);
  }
}

TEST_CASE("menu: routing sees the GPUs that sharing frees", "[menu]") {
  // Audit repro bench-h100: before the fix routing counted whole cards (w2..w10 without w5:
  // 1+1+2+8+1+1+1+1 = 16, two nodes, 342,025 USD/yr) and sent w1 (API 5,630 USD/yr) and w5
  // (API 9,636) to their APIs; sharing then freed a card that stood idle. Counting the cards
  // after sharing, w5 shares a card with w2 and the fleet stays two full nodes:
  // 2 × 163,379.59 + w1's 5,629.76 = 332,388.9 USD/yr (no average_power: no energy term), below
  // the 336,395 the audit expected from putting w1 on the idle card instead.
  const auto r = run(bench_h100());
  const auto& s = sys(r, "hgx-h100-8");
  CHECK(s.menu_cost_per_year <= 336395);
  CHECK(s.menu_cost_per_year == Approx(2 * s.node_cost_per_year + 5629.76).epsilon(1e-6));
  CHECK(s.menu_cost_per_year == Approx(332389).epsilon(1e-4));
  CHECK(s.nodes == 2);
  CHECK(s.idle_gpus == 0);
  CHECK(wl(s, "w5-llama-3.1-8b").option == "self_host");
  CHECK(wl(s, "w5-llama-3.1-8b").shares_card_with == "w2-qwen3-8b");
  // w1 on a 17th card would buy a third node: 163,380 more a year against its 5,630 bill.
  CHECK(wl(s, "w1-qwen3-30b-a3b")
            .reason.rfind("self-hosting it as well would add 1 node and 163380 USD a year", 0) ==
        0);
  // Whatever goes to its API says what self-hosting it as well would cost, and that is true:
  // on an idle GPU (or an unpaired card's other half) it would add nothing.
  for (const auto& w : s.workloads)
    if (w.option == "api" && w.gpus > 0) {
      CHECK(w.reason.find("not less than its API bill") != std::string::npos);
      CHECK(!(w.gpus == 1 && s.idle_gpus > 0));
    }
}

TEST_CASE("menu: a context beyond the model's trained context is not self-hosted", "[menu]") {
  // Audit repros e-ctxbig (1,000,000 tokens on qwen3-8b, trained to 40,960; here on
  // qwen3-30b-a3b, the same 40,960, which has an API to go to) and e-tp-huge
  // (50,000 input tokens): plan excludes such builds; the menu sends them to the API (or, when
  // resident, reports them unserved) with the reason.
  Json big = job("a", "qwen3-30b-a3b", 100000, 1000, 200, 1, 60000, 200);  // has an API price
  big["demand"]["context_tokens"] = 1000000;
  Json huge = job("b", "qwen3-8b", 100000, 50000, 200, 1, 60000, 200, true);
  huge["demand"]["context_tokens"] = 60000;
  const auto r = run(h100_doc(Json::array({big, huge})));
  const auto& s = sys(r, "hgx-h100-8");
  CHECK(wl(s, "a").option == "api");
  CHECK(wl(s, "a").reason.find("trained context 40960 < the 1000000 tokens needed") !=
        std::string::npos);
  CHECK(wl(s, "b").option == "unserved");
  CHECK(wl(s, "b").reason.find("trained context 40960 < the 60000 tokens needed") !=
        std::string::npos);
  CHECK(s.nodes == 0);
}

TEST_CASE("menu reader: every workload's demand is checked where it is", "[menu]") {
  // Audit repros e-days / e-days2: days_per_year > 366 was caught for the first workload only,
  // under /demand/days_per_year.
  Json one = menu_doc(Json::array({workload("a", "qwen3-8b", 1000)}));
  one["workloads"][0]["demand"]["days_per_year"] = 400;
  CHECK(input_error_path(one) ==
        "/workloads/0/demand/days_per_year | expected 1–366 open days, found 400");
  Json two =
      menu_doc(Json::array({workload("a", "qwen3-8b", 1000), workload("b", "qwen3-8b", 1000)}));
  two["workloads"][1]["demand"]["days_per_year"] = 400;
  CHECK(input_error_path(two) ==
        "/workloads/1/demand/days_per_year | expected 1–366 open days, found 400");
}

TEST_CASE("menu and plan: fx_per_usd 0 is a located input error", "[menu]") {
  // Audit repro e-fx0: "internal error: cost model: FX rates must be > 0" (exit 2) before.
  Json fx = menu_doc(Json::array({workload("a", "qwen3-8b", 1000)}));
  fx["fx_per_usd"] = 0;
  CHECK(input_error_path(fx) == "/fx_per_usd | expected a number > 0, found number 0");
  Json plan_doc = {
      {"currency", "USD"},
      {"horizon_months", 36},
      {"fx_per_usd", 0},
      {"builds", Json::array({{{"system", "hgx-h100-8"}}})},
      {"buy", {{"life_months", 36}}},
      {"models", Json::array({"qwen3-8b"})},
      {"demand", {{"requests_per_day", 100000}, {"input_tokens", 1000}, {"output_tokens", 200}}}};
  try {
    (void)plan::parse_plan_scenario(plan_doc, "plan.json", bundled_catalog());
    FAIL("no error");
  } catch (const InputError& e) {
    CHECK(e.json_path() == "/fx_per_usd");
  }
}

TEST_CASE("menu: too many workloads for the routing search: a located error", "[menu]") {
  // Audit repro e-many17: 17 workloads that may go either way named neither file nor path.
  Json ws = Json::array();
  for (int i = 0; i < 17; ++i)
    ws.push_back(job(fmt::format("w{}", i), "qwen3-30b-a3b", 100000, 1000, 200, 1, 3000, 60));
  try {
    (void)run(h100_doc(ws));
    FAIL("no error");
  } catch (const InputError& e) {
    CHECK(e.file() == "menu.json");
    CHECK(e.json_path() == "/workloads");
    CHECK(e.problem().find("17 workloads can go either way") != std::string::npos);
  }
}

TEST_CASE("menu: a shared card reports its KV limit at its half of the memory", "[menu]") {
  // Audit: a workload on a shared card reported the whole card's KV limit.
  Json ws = Json::array();
  for (const auto& w : order_workloads()) ws.push_back(w);
  const auto r = run(h100_doc(ws));
  const auto& cat = bundled_catalog();
  const auto sc = menu::parse_menu_scenario(h100_doc(ws), "menu.json", cat);
  const auto& s = sys(r, "hgx-h100-8");
  const auto& a = wl(s, "A-light");
  REQUIRE(!a.shares_card_with.empty());
  const auto alone = menu::evaluate_group(sc.workloads[0], cat.system("hgx-h100-8"), 1, sc, cat);
  // Half the engine memory minus the same weights (16.4 GB of bf16 qwen3-8b): less than half
  // the KV of the whole card.
  CHECK(a.group.limit.kv_limit < alone.limit.kv_limit / 2);
  CHECK(a.group.concurrency <= a.group.limit.slots());
}

TEST_CASE("menu: a shared card counts half a GPU, and systems carry their API bill", "[menu]") {
  // Audit: each workload on a shared card showed 1 GPU (the table summed to more GPUs than the
  // node has), and the systems JSON left out the API bill the Systems table shows.
  Json ws = Json::array();
  for (const auto& w : order_workloads()) ws.push_back(w);
  const auto r = run(h100_doc(ws));
  const auto& s = sys(r, "hgx-h100-8");
  const Report rep = menu::make_menu_report(r);
  double gpus = 0;
  for (const auto& j : rep.json["workloads"]) {
    gpus += j["gpus"].get<double>();
    if (j.contains("shares_card_with")) CHECK(j["gpus"].get<double>() == 0.5);
  }
  // The workloads' GPUs add up to the node's busy cards: 0.5 × 4 + 6 = 8.
  CHECK(gpus == Approx(s.nodes * s.gpus_per_node - s.idle_gpus));
  REQUIRE(rep.json["systems"][0].contains("api_bill_per_year"));
  CHECK(rep.json["systems"][0]["api_bill_per_year"].get<double>() == Approx(s.api_bill_per_year));
}

TEST_CASE("menu: a system listed twice in builds is said at its path", "[menu][errors]") {
  // Audit 2026-11-27: it surfaced as an unrelated /buy/capex error.
  CHECK(input_error_path(menu_doc(mixed(), Json::array({"rtx-pro-6000-8", "rtx-pro-6000-8"}))) ==
        "/builds/1 | system 'rtx-pro-6000-8' is listed twice");
}
