// Menu scenarios (docs/scenario.md § menu scenarios): the workloads list is read here; each
// workload's demand, SLA and residency, and the money sections, go through the plan reader
// (one reader, one set of checks), with its error paths moved under /workloads/i.
#include <fmt/format.h>

#include <fstream>
#include <set>
#include <sstream>

#include "moeplan/errors.hpp"
#include "moeplan/menu.hpp"

namespace moeplan::menu {

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::generate:
      return "generate";
    case Kind::embed:
      return "embed";
    case Kind::rerank:
      return "rerank";
  }
  return "?";
}

bool is_menu_document(const Json& doc) {
  return doc.is_object() && doc.contains("workloads");
}

bool is_menu_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return is_menu_document(parse_json_text(ss.str(), path));
  } catch (const Error&) {
    return false;
  }
}

namespace {

// Catalog models are generative decoders (data/models.json has no embedding or reranking
// entries; docs/catalogs.md): an embed/rerank workload cannot name one.
bool is_generative(const Model&) {
  return true;
}

// The plan-scenario document that reads workload `w`'s demand and the money sections.
Json plan_doc_for(const Json& root, const JsonView& w, const std::string& first_system) {
  Json doc = Json::object();
  for (auto it = root.begin(); it != root.end(); ++it)
    if (it.key() != "workloads" && it.key() != "builds") doc[it.key()] = it.value();
  Json demand = w.raw().contains("demand") ? w.raw()["demand"] : Json::object();
  if (w.raw().contains("sla")) {
    const Json& s = w.raw()["sla"];
    if (s.is_object()) {
      if (s.contains("ttft_ms")) demand["sla_ttft_ms"] = s["ttft_ms"];
      if (s.contains("tpot_ms")) demand["sla_tpot_ms"] = s["tpot_ms"];
    }
  }
  if (w.raw().contains("residency_required"))
    demand["residency_required"] = w.raw()["residency_required"];
  doc["demand"] = demand;
  doc["models"] = Json::array({w.raw()["model"]});
  Json b = Json::object();
  b["system"] = first_system;
  if (w.raw().contains("precision")) b["precision"] = w.raw()["precision"];
  doc["builds"] = Json::array({b});
  return doc;
}

// Moves a plan-reader error onto the menu's own JSON path.
[[noreturn]] void rethrow_at(const InputError& e, const std::string& wpath) {
  const std::string& p = e.json_path();
  auto starts = [&](const char* s) { return p.rfind(s, 0) == 0; };
  std::string at = p;
  if (starts("/demand/sla_ttft_ms"))
    at = wpath + "/sla/ttft_ms";
  else if (starts("/demand/sla_tpot_ms"))
    at = wpath + "/sla/tpot_ms";
  else if (starts("/demand/residency_required"))
    at = wpath + "/residency_required";
  else if (starts("/demand"))
    at = wpath + p;
  else if (starts("/models"))
    at = wpath + "/model";
  else if (starts("/builds/0/precision"))
    at = wpath + "/precision";
  throw InputError(e.file(), at, e.problem());
}

void read_lora(const JsonView& v, Workload& w) {
  if (!v.is_object()) v.fail("expected an object {count, rank}, found " + describe_json(v.raw()));
  v.only_keys({"count", "rank", "precision", "notes"});
  LoraAdapters l;
  l.count = static_cast<int>(v.positive_int("count"));
  l.rank = static_cast<int>(v.positive_int("rank"));
  l.precision = v.string_or("precision", "bf16");
  if (l.precision != "bf16" && l.precision != "fp16")
    v.fail_member("precision", "adapters are served in bf16 or fp16");
  w.lora = l;
}

}  // namespace

MenuScenario parse_menu_scenario(const Json& doc, const std::string& file, const Catalog& cat) {
  JsonView root(doc, file);
  if (!root.is_object()) root.fail("expected a JSON object at the top level");
  MenuScenario sc;
  sc.file = file;
  sc.label =
      file.substr(file.find_last_of('/') == std::string::npos ? 0 : file.find_last_of('/') + 1);
  sc.title = root.string_or("title", "");
  sc.description = root.string_or("description", "");
  // builds: a list of system ids, or "auto" (every catalog system one basis prices)
  const JsonView b = root.at("builds");
  if (b.raw().is_string()) {
    if (b.string() != "auto") b.fail("expected \"auto\" or a list of data/systems.json ids");
    sc.builds_auto = true;
    for (const System& s : cat.systems) sc.systems.push_back(s.id);
  } else {
    if (!b.is_array() || b.array().empty())
      b.fail("expected \"auto\" or a non-empty list of data/systems.json ids, found " +
             describe_json(b.raw()));
    for (const auto& x : b.array()) {
      try {
        sc.systems.push_back(cat.system(x.string()).id);
      } catch (const UnknownIdError& e) {
        x.fail(e.what());
      }
    }
  }
  const auto items = root.array("workloads");
  if (items.empty()) root.fail_member("workloads", "expected at least one workload");
  std::set<std::string> ids;
  bool first = true;
  for (const auto& v : items) {
    if (!v.is_object()) v.fail("expected a workload object, found " + describe_json(v.raw()));
    v.only_keys({"id", "model", "precision", "kind", "demand", "sla", "residency_required",
                 "lora_adapters", "notes"});
    Workload w;
    w.json_path = v.path();
    w.id = v.string("id");
    if (w.id.empty()) v.fail_member("id", "expected a non-empty id");
    if (!ids.insert(w.id).second)
      v.fail_member("id", "duplicate workload id '" + w.id + "' (ids must be unique)");
    const std::string kind =
        v.has("kind") ? v.one_of("kind", {"generate", "embed", "rerank"}) : "generate";
    w.kind = kind == "embed" ? Kind::embed : kind == "rerank" ? Kind::rerank : Kind::generate;
    try {
      w.model = &cat.model(v.string("model"));
    } catch (const UnknownIdError& e) {
      v.fail_member("model", e.what());
    }
    if (w.kind != Kind::generate && is_generative(*w.model))
      v.fail_member("model", fmt::format("a {} workload needs an embedding/reranking model; '{}' "
                                         "is a generative model",
                                         kind, w.model->id));
    if (!v.has("demand")) v.fail_member("demand", "missing: a workload needs its demand");
    const JsonView d = v.at("demand");
    if (!d.is_object()) d.fail("expected an object, found " + describe_json(d.raw()));
    if (!d.has("requests_per_day") || d.number("requests_per_day") <= 0)
      d.fail_member("requests_per_day", "a workload with no demand: expected requests_per_day > 0");
    if (auto s = v.get("sla")) {
      if (!s->is_object()) s->fail("expected an object {ttft_ms, tpot_ms}");
      s->only_keys({"ttft_ms", "tpot_ms"});
    }
    if (auto l = v.get("lora_adapters")) read_lora(*l, w);
    w.precision = v.string_or("precision", "native");
    plan::PlanScenario ps;
    try {
      ps = plan::parse_plan_scenario(plan_doc_for(doc, v, sc.systems.front()), file, cat);
    } catch (const InputError& e) {
      rethrow_at(e, w.json_path);
    }
    w.demand = ps.demand;
    if (first) sc.money = ps;
    first = false;
    sc.workloads.push_back(std::move(w));
  }
  // A node price or power in /buy belongs to one system (as in plan, docs/scenario.md).
  if (sc.systems.size() > 1)
    if (auto buy = root.get("buy"); buy && buy->is_object())
      for (const char* k : {"capex", "capex_usd", "system_price", "system_price_usd", "price_point",
                            "capex_includes_vat", "gpu", "gpus", "opex_per_year",
                            "opex_per_year_usd", "wall_power_w", "gpu_tdp_w"})
        if (buy->has(k))
          buy->fail_member(k,
                           "describes one node of one system, but the menu compares several "
                           "systems: name one system in /builds, or leave it to the catalog");
  if (!sc.money.has_buy)
    root.fail(
        "a menu needs /buy (the shared nodes are owned; give buy settings as in plan "
        "scenarios)");
  return sc;
}

MenuScenario load_menu_scenario(const std::string& path, const Catalog& cat) {
  std::ifstream in(path);
  if (!in) throw Error("cannot read menu scenario '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_menu_scenario(parse_json_text(ss.str(), path), path, cat);
}

}  // namespace moeplan::menu
