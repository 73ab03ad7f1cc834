// The menu plan's tables and JSON (docs/plan.md § menus): fixed names `allocation`,
// `workloads`, `fleet`, plus `systems` (every candidate system, cheapest first).
#include <fmt/format.h>

#include <algorithm>

#include "moeplan/menu.hpp"
#include "moeplan/svg_chart.hpp"

namespace moeplan::menu {

namespace {

Json opt(const std::optional<double>& v) {
  return v ? Json(*v) : Json();
}
Cell opt_cell(const std::optional<double>& v, int d = 0) {
  return v ? Cell(*v, d) : Cell();
}

std::string gpus_text(const std::vector<int>& g) {
  std::string s;
  for (std::size_t i = 0; i < g.size(); ++i) s += (i ? "," : "") + std::to_string(g[i]);
  return s;
}

const Workload* workload_of(const MenuScenario& sc, const std::string& id) {
  for (const auto& w : sc.workloads)
    if (w.id == id) return &w;
  return nullptr;
}

}  // namespace

namespace {

// Candidate systems, cheapest menu first (a system that could not be priced says why).
Table systems_table(Report& rep, const MenuResult& r, const std::string& cur) {
  Json systems = Json::array();
  Table st{"systems",
           "Candidate systems (cheapest menu first)",
           {"system", "nodes", "idle GPUs", "menu " + cur + "/yr", "separate plans " + cur + "/yr",
            "API bill " + cur + "/yr", "unserved", "note"},
           {},
           {}};
  for (const auto& s : r.systems) {
    int uns = 0;
    for (const auto& w : s.workloads) uns += w.option == "unserved";
    if (!s.ok) {
      st.add({s.system, Cell(), Cell(), Cell(), Cell(), Cell(), Cell(), s.reason});
      systems.push_back({{"system", s.system}, {"ok", false}, {"reason", s.reason}});
      continue;
    }
    st.add({s.system, s.nodes, s.idle_gpus, Cell(s.menu_cost_per_year, 0),
            Cell(s.separate_plans_cost_per_year, 0), Cell(s.api_bill_per_year, 0), uns, ""});
    systems.push_back({{"system", s.system},
                       {"ok", true},
                       {"nodes", s.nodes},
                       {"idle_gpus", s.idle_gpus},
                       {"menu_cost_per_year", s.menu_cost_per_year},
                       {"separate_plans_cost_per_year", s.separate_plans_cost_per_year},
                       {"api_bill_per_year", s.api_bill_per_year},
                       {"unserved", uns}});
  }
  rep.json["systems"] = systems;
  return st;
}

// Which node's GPUs serve which workload's replica on the chosen system.
Table allocation_table(Report& rep, const MenuScenario& sc, const SystemResult& best) {
  Table at{"allocation",
           "Allocation on " + best.system,
           {"node", "GPUs", "workload", "model", "precision", "replica", "tp"},
           {},
           {}};
  Json alloc = Json::array();
  for (const auto& p : best.allocation) {
    const Workload* w = workload_of(sc, p.workload);
    at.add({p.node, gpus_text(p.gpus) + (p.shared_with.empty() ? "" : " (shared)"), p.workload,
            w->model->id, w->precision, p.replica, p.tp});
    alloc.push_back({{"node", p.node},
                     {"gpus", p.gpus},
                     {"workload", p.workload},
                     {"model", w->model->id},
                     {"precision", w->precision},
                     {"replica", p.replica},
                     {"tp", p.tp}});
    if (!p.shared_with.empty()) alloc.back()["shared_with"] = p.shared_with;
  }
  at.notes = best.notes;
  rep.json["allocation"] = alloc;
  return at;
}

// GPUs a self-hosted workload holds: half of its one card when it shares it (the share it pays
// for), so that the workloads' GPUs add up to the fleet's busy cards.
double gpu_share(const WorkloadResult& w) {
  if (w.option != "self_host") return 0;
  return w.shares_card_with.empty() ? w.gpus : 0.5 * w.gpus;
}

Json workload_json(const WorkloadResult& w) {
  const bool self = w.option == "self_host";
  Json j = {{"id", w.id},
            {"model", w.model},
            {"kind", kind_name(w.kind)},
            {"option", w.option},
            {"gpus", !self                        ? Json(0)
                     : w.shares_card_with.empty() ? Json(w.gpus)
                                                  : Json(gpu_share(w))},
            {"replicas", self ? w.replicas : 0},
            {"utilization", self ? Json(w.utilization) : Json()},
            {"cost_per_year", opt(w.cost_per_year)},
            {"cost_per_mtok_output", opt(w.cost_per_mtok_output)},
            {"cost_per_mtok_embedded", opt(w.cost_per_mtok_embedded)},
            {"api_per_year", opt(w.api_per_year)},
            {"separate_plan_cost_per_year", opt(w.separate_per_year)},
            {"reason", w.reason}};
  if (self) {
    // embed / rerank: items/s (one pseudo-output token per item)
    j[w.kind == Kind::generate ? "throughput_per_replica_tok_s"
                               : "throughput_per_replica_items_s"] = w.group.throughput;
    j["busy_gpus"] = w.busy_gpus;
    j["energy_per_year"] = w.energy_per_year;
    j["concurrency_per_replica"] = w.group.concurrency;
    j["concurrency_limit"] = {
        {"kv_memory", w.group.limit.kv_limit},
        {"max_num_seqs", w.group.limit.max_num_seqs},
        {"binds", w.group.limit.engine_binds() ? "max_num_seqs" : "kv_memory"}};
    j["ttft_ms"] = w.group.ttft_ms;
    j["tpot_ms"] = w.group.tpot_ms;
    j["throughput_evidence"] = evidence_name(w.group.evidence);
    j["group_gpus"] = w.group.gpus;
    if (w.group.lora_gb > 0) j["lora_gb_per_gpu"] = w.group.lora_gb;
    if (!w.shares_card_with.empty()) {
      j["shares_card_with"] = w.shares_card_with;
      j["gpu_share"] = 0.5;
    }
  }
  return j;
}

// Each workload on the chosen system: self-hosted or routed to the API, and what it costs.
Table workloads_table(Report& rep, const MenuScenario& sc, const SystemResult& best,
                      const std::string& cur) {
  Table wt{"workloads",
           "Workloads on " + best.system,
           {"workload", "model", "kind", "option", "GPUs", "replicas", "tok/s per replica",
            "peak tok/s", "utilization", cur + "/yr", cur + "/Mtok out", cur + "/Mtok embedded",
            "API " + cur + "/yr", "evidence", "why"},
           {},
           {}};
  Json wj = Json::array();
  for (const auto& w : best.workloads) {
    const bool self = w.option == "self_host";
    if (!w.shares_card_with.empty())
      wt.notes.push_back(
          fmt::format("{} shares its card with {}: half the memory each (GPUs 0.5), the card "
                      "time-sliced (TPOT = both step times)",
                      w.id, w.shares_card_with));
    if (self && w.group.engine_capped())
      wt.notes.push_back(fmt::format(
          "{} runs {} sequences per replica, its engine's max_num_seqs (data/engines.json); "
          "its KV memory holds {}",
          w.id, w.group.concurrency, w.group.limit.kv_limit));
    const Cell gpus = !self                        ? Cell()
                      : w.shares_card_with.empty() ? Cell(w.gpus)
                                                   : Cell(gpu_share(w), 1);
    wt.add({w.id, w.model, kind_name(w.kind), w.option, gpus, self ? Cell(w.replicas) : Cell(),
            self ? Cell(w.group.throughput, 0) : Cell(), Cell(w.peak_tok_s, 0),
            self ? Cell(w.utilization, 2) : Cell(), opt_cell(w.cost_per_year),
            opt_cell(w.cost_per_mtok_output, 1), opt_cell(w.cost_per_mtok_embedded, 2),
            opt_cell(w.api_per_year), self ? Cell(evidence_name(w.group.evidence)) : Cell(),
            w.reason});
    wj.push_back(workload_json(w));
  }
  wt.notes.push_back(
      sc.average_power
          ? "cost of a self-hosted workload = its GPUs / GPUs per node × one node's yearly cost "
            "with its GPUs idle (capex over its life + opex − residual) + the energy its work "
            "draws above idle (busy GPUs × (TDP − idle) × PUE × price × hours)"
          : "cost of a self-hosted workload = its GPUs / GPUs per node × one node's "
            "yearly cost (capex over its life + opex − residual)");
  wt.notes.push_back(
      "embed / rerank workloads: tok/s columns are items/s (a rerank item is one query-document "
      "pair), cost per 1M tokens embedded or scored");
  rep.json["workloads"] = wj;
  return wt;
}

// The fleet: nodes, capex, opex, power, and the menu against separate plans.
Table fleet_table(Report& rep, const MenuScenario& sc, const SystemResult& best,
                  const std::string& cur) {
  Table ft{"fleet", "Fleet", {"figure", "value"}, {}, {}};
  ft.add({"system", best.system});
  ft.add({"nodes", best.nodes});
  ft.add({"capex " + cur, Cell(best.nodes * best.capex_per_node, 0)});
  ft.add({"opex " + cur + "/yr", Cell(best.opex_per_year, 0)});
  if (sc.average_power) {
    ft.add({"opex at full draw " + cur + "/yr", Cell(best.nodes * best.opex_per_node_per_year, 0)});
    ft.add({"wall power, average W", Cell(best.wall_power_average_w, 0)});
    ft.add({"wall power, full draw W", Cell(best.wall_power_full_w, 0)});
    ft.notes.push_back(fmt::format(
        "average power: each GPU draws {:g} W idle + its busy share × (TDP − idle); the rest of "
        "the node's wall power stays at full draw ({}{})",
        sc.average_power->gpu_idle_w, sc.average_power->source,
        sc.average_power->estimated ? "; estimated: " + sc.average_power->notes : ""));
  }
  ft.add({"self-hosted nodes " + cur + "/yr", Cell(best.self_host_cost_per_year, 0)});
  ft.add({"API bill of routed workloads " + cur + "/yr", Cell(best.api_bill_per_year, 0)});
  ft.add({"menu " + cur + "/yr", Cell(best.menu_cost_per_year, 0)});
  ft.add({"sum of separate plans " + cur + "/yr", Cell(best.separate_plans_cost_per_year, 0)});
  ft.add({"saving from sharing " + cur + "/yr",
          Cell(best.separate_plans_cost_per_year - best.menu_cost_per_year, 0)});
  ft.add({"self-hosted " + cur + "/Mtok out", opt_cell(best.cost_per_mtok_output, 1)});
  ft.add({"idle GPUs", best.idle_gpus});
  rep.json["fleet"] = {{"system", best.system},
                       {"nodes", best.nodes},
                       {"gpus_per_node", best.gpus_per_node},
                       {"idle_gpus", best.idle_gpus},
                       {"currency", cur},
                       {"capex", best.nodes * best.capex_per_node},
                       {"opex_per_year", best.opex_per_year},
                       {"opex_per_year_full_draw", best.nodes * best.opex_per_node_per_year},
                       {"wall_power_average_w", best.wall_power_average_w},
                       {"wall_power_full_w", best.wall_power_full_w},
                       {"node_fixed_cost_per_year", best.node_fixed_cost_per_year},
                       {"node_cost_per_year", best.node_cost_per_year},
                       {"api_bill_per_year", best.api_bill_per_year},
                       {"cost_per_mtok_output", opt(best.cost_per_mtok_output)},
                       {"separate_plans_cost_per_year", best.separate_plans_cost_per_year},
                       {"menu_cost_per_year", best.menu_cost_per_year}};
  return ft;
}

}  // namespace

Report make_menu_report(const MenuResult& r) {
  Report rep;
  const MenuScenario& sc = r.scenario;
  const std::string cur = sc.money.currency;
  rep.title = sc.title.empty() ? "Menu plan: " + sc.label : sc.title;
  rep.messages = r.messages;
  // Every money figure in the JSON is in this currency unless its key names another.
  rep.json["currency"] = cur;
  Table st = systems_table(rep, r, cur);
  const SystemResult* best = nullptr;
  for (const auto& s : r.systems)
    if (s.ok) {
      best = &s;
      break;
    }
  if (!best) {
    rep.tables.push_back(std::move(st));
    rep.messages.push_back("no candidate system could be priced: see the systems table");
    rep.json["allocation"] = Json::array();
    rep.json["workloads"] = Json::array();
    rep.json["fleet"] = Json();
    return rep;
  }
  Table at = allocation_table(rep, sc, *best);
  Table wt = workloads_table(rep, sc, *best, cur);
  Table ft = fleet_table(rep, sc, *best, cur);
  rep.tables.push_back(std::move(at));
  rep.tables.push_back(std::move(wt));
  rep.tables.push_back(std::move(ft));
  rep.tables.push_back(std::move(st));
  return rep;
}

}  // namespace moeplan::menu

namespace moeplan::menu {

std::string render_fleet_svg(const MenuResult& r, const std::string& footer) {
  static const char* kPalette[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2",
                                   "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
  const SystemResult* best = nullptr;
  for (const auto& s : r.systems)
    if (s.ok) {
      best = &s;
      break;
    }
  const int cell = 56, pad = 20, label_w = 80, top = 60;
  const int nodes = best ? best->nodes : 0, per = best ? best->gpus_per_node : 0;
  std::vector<std::string> ids;  // self-hosted workloads, in the order the scenario lists them
  if (best)
    for (const auto& w : best->workloads)
      if (w.option == "self_host") ids.push_back(w.id);
  const int width = std::max(560, label_w + pad * 2 + per * (cell + 6));
  const int legend_y = top + nodes * (cell + 10) + 20;
  const int height = legend_y + static_cast<int>(ids.size() + 1) * 20 + 40;
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" "
      "viewBox=\"0 0 {0} {1}\" font-family=\"sans-serif\" font-size=\"12\">\n"
      "<defs><pattern id=\"idle\" width=\"8\" height=\"8\" patternUnits=\"userSpaceOnUse\" "
      "patternTransform=\"rotate(45)\"><rect width=\"8\" height=\"8\" fill=\"#ffffff\"/>"
      "<line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"8\" stroke=\"#999999\" stroke-width=\"3\"/>"
      "</pattern></defs>\n<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n",
      width, height);
  s += fmt::format("<text x=\"{}\" y=\"24\" font-size=\"16\">{}</text>\n", pad,
                   svg::xml_escape("Fleet: " + (best ? best->system : std::string("none")) +
                                   " — GPUs coloured by workload, idle hatched"));
  auto color_of = [&](const std::string& id) {
    for (std::size_t i = 0; i < ids.size(); ++i)
      if (ids[i] == id) return std::string(kPalette[i % 10]);
    return std::string("#cccccc");
  };
  for (int n = 0; n < nodes; ++n) {
    const int y = top + n * (cell + 10);
    s += fmt::format("<text x=\"{}\" y=\"{}\">node {}</text>\n", pad, y + cell / 2 + 4, n + 1);
    for (int g = 0; g < per; ++g) {
      // Every workload placed on this GPU: a shared card shows one horizontal band per workload.
      std::vector<std::string> here, labels;
      for (const auto& p : best->allocation)
        if (p.node == n + 1 && std::find(p.gpus.begin(), p.gpus.end(), g) != p.gpus.end()) {
          here.push_back(p.workload);
          labels.push_back(fmt::format("{} r{}", p.workload, p.replica));
        }
      const std::string fill = here.empty() ? "url(#idle)" : color_of(here.front());
      std::string label = here.empty() ? "idle" : labels.front();
      for (std::size_t k = 1; k < labels.size(); ++k) label += " + " + labels[k];
      if (here.size() > 1) label += " (shared)";
      const int x = pad + label_w + g * (cell + 6);
      s += fmt::format(
          "<rect class=\"gpu\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\" "
          "stroke=\"#333333\"><title>GPU {}: {}</title></rect>\n",
          x, y, cell, cell, fill, g, svg::xml_escape(label));
      const int bands = static_cast<int>(here.size());
      for (int k = 1; k < bands; ++k)
        s += fmt::format(
            "<rect class=\"share\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\" "
            "stroke=\"#333333\"><title>GPU {}: {}</title></rect>\n",
            x, y + cell * k / bands, cell, cell / bands,
            color_of(here[static_cast<std::size_t>(k)]), g, svg::xml_escape(label));
      s += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"10\">{}</text>\n", x + 4, y + 14, g);
    }
  }
  int ly = legend_y;
  for (const auto& id : ids) {
    s += fmt::format(
        "<rect x=\"{}\" y=\"{}\" width=\"14\" height=\"14\" fill=\"{}\"/>"
        "<text x=\"{}\" y=\"{}\">{}</text>\n",
        pad, ly, color_of(id), pad + 20, ly + 12, svg::xml_escape(id));
    ly += 20;
  }
  s += fmt::format(
      "<rect x=\"{}\" y=\"{}\" width=\"14\" height=\"14\" fill=\"url(#idle)\" "
      "stroke=\"#333333\"/><text x=\"{}\" y=\"{}\">idle</text>\n",
      pad, ly, pad + 20, ly + 12);
  s += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"10\" fill=\"#666666\">{}</text>\n", pad,
                   height - 12, svg::xml_escape(footer));
  s += "</svg>\n";
  return s;
}

}  // namespace moeplan::menu
