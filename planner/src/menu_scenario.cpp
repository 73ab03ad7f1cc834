// Menu scenarios (docs/scenario.md § menu scenarios): the workloads list is read here; each
// workload's demand, SLA and residency, and the money sections, go through the plan reader
// (one reader, one set of checks), with its error paths moved under /workloads/i.
#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "moeplan/errors.hpp"
#include "moeplan/menu.hpp"

namespace moeplan::menu {

const char* kind_name(Kind k) {
  return model_kind_name(k);
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

// The plan-scenario document that reads workload `w`'s demand and the money sections.
// `item_tokens` > 0 (embed/rerank): the demand is rewritten to items as requests of
// item_tokens prompt tokens and one pseudo-output token (Workload::item_tokens).
Json plan_doc_for(const Json& root, const JsonView& w, const std::string& first_system,
                  long long item_tokens) {
  Json doc = Json::object();
  for (auto it = root.begin(); it != root.end(); ++it)
    if (it.key() != "workloads" && it.key() != "builds" && it.key() != "average_power")
      doc[it.key()] = it.value();
  Json demand = w.raw().contains("demand") ? w.raw()["demand"] : Json::object();
  if (item_tokens > 0) {
    demand.erase("query_tokens");
    demand.erase("document_tokens");
    demand["input_tokens"] = item_tokens;
    demand["output_tokens"] = 1;
  }
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

// Kind against model: a workload's kind (default generate) must be its model's kind.
void check_kind(const JsonView& v, const Workload& w) {
  if (w.kind == w.model->kind) return;
  if (w.kind == Kind::generate)
    v.fail_member("model",
                  fmt::format("'{}' has kind {} (data/models.json), not generate: give "
                              "the workload \"kind\": \"{}\"",
                              w.model->id, kind_name(w.model->kind), kind_name(w.model->kind)));
  v.fail_member(
      "model",
      fmt::format("{} {} workload needs a model of kind {}; '{}' is {} model (data/"
                  "models.json kind {})",
                  w.kind == Kind::embed ? "an" : "a", kind_name(w.kind), kind_name(w.kind),
                  w.model->id, w.model->is_generative() ? "a generative" : "another kind of",
                  kind_name(w.model->kind)));
}

// embed / rerank demand: tokens per item, no output tokens, no TPOT, no adapters.
long long read_item_tokens(const JsonView& v, const JsonView& d, Kind kind) {
  const std::string a = kind == Kind::embed ? "an embed" : "a rerank";
  if (d.has("output_tokens"))
    d.fail_member("output_tokens",
                  a +
                      " workload produces no output tokens: give input_tokens (tokens "
                      "per item)" +
                      (kind == Kind::rerank ? " or query_tokens + document_tokens" : ""));
  if (auto s = v.get("sla"); s && s->is_object() && s->has("tpot_ms"))
    s->fail_member("tpot_ms", a + " workload has no decode phase: give ttft_ms (the "
                                  "latency of one item)");
  if (v.has("lora_adapters"))
    v.fail_member("lora_adapters", "adapters are planned for generative workloads only");
  if (kind == Kind::rerank && (d.has("query_tokens") || d.has("document_tokens"))) {
    if (d.has("input_tokens"))
      d.fail_member("input_tokens",
                    "give input_tokens or query_tokens + document_tokens, not both");
    return d.positive_int("query_tokens") + d.positive_int("document_tokens");
  }
  if (!d.has("input_tokens"))
    d.fail_member("input_tokens",
                  "missing: " + a + " workload needs the tokens per item" +
                      (kind == Kind::rerank ? " (or query_tokens + document_tokens: a rerank "
                                              "item is one query-document pair)"
                                            : ""));
  return d.positive_int("input_tokens");
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

// average_power: {gpu_idle_w, source, as_of, estimated, notes}; the idle draw must sit below the
// TDP of every candidate system's GPU.
AveragePower read_average_power(const JsonView& v, const MenuScenario& sc, const Catalog& cat) {
  if (!v.is_object()) v.fail("expected an object {gpu_idle_w, source, as_of, notes}");
  v.only_keys({"gpu_idle_w", "source", "as_of", "estimated", "notes"});
  AveragePower a;
  a.gpu_idle_w = v.non_negative("gpu_idle_w");
  a.source = v.string("source");
  a.as_of = v.string_or("as_of", "");
  a.estimated = v.boolean_or("estimated", false);
  a.notes = v.string_or("notes", "");
  if (a.estimated && a.notes.empty())
    v.fail_member("notes", "required when \"estimated\" is true: say what was estimated and how");
  for (const std::string& id : sc.systems) {
    const Device& d = cat.device(cat.system(id).device);
    if (a.gpu_idle_w >= d.tdp_w)
      v.fail_member("gpu_idle_w", fmt::format("{:g} W is not below the TDP of {} ({:g} W, system "
                                              "{})",
                                              a.gpu_idle_w, d.id, d.tdp_w, id));
  }
  return a;
}

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
      // Said here: a system listed twice otherwise surfaced as an unrelated /buy/capex error.
      if (std::count(sc.systems.begin(), sc.systems.end(), sc.systems.back()) > 1)
        x.fail("system '" + sc.systems.back() + "' is listed twice");
    }
  }
  if (auto ap = root.get("average_power")) sc.average_power = read_average_power(*ap, sc, cat);
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
    check_kind(v, w);
    if (!v.has("demand")) v.fail_member("demand", "missing: a workload needs its demand");
    const JsonView d = v.at("demand");
    if (!d.is_object()) d.fail("expected an object, found " + describe_json(d.raw()));
    if (!d.has("requests_per_day") || d.number("requests_per_day") <= 0)
      d.fail_member("requests_per_day",
                    w.kind == Kind::generate
                        ? "a workload with no demand: expected requests_per_day > 0"
                        : "a workload with no demand: expected requests_per_day > 0 (items a "
                          "day: texts embedded, or query-document pairs scored)");
    if (w.kind != Kind::generate) w.item_tokens = read_item_tokens(v, d, w.kind);
    if (auto s = v.get("sla")) {
      if (!s->is_object()) s->fail("expected an object {ttft_ms, tpot_ms}");
      s->only_keys({"ttft_ms", "tpot_ms"});
    }
    if (auto l = v.get("lora_adapters")) read_lora(*l, w);
    w.precision = v.string_or("precision", "native");
    plan::PlanScenario ps;
    try {
      ps = plan::parse_plan_scenario(plan_doc_for(doc, v, sc.systems.front(), w.item_tokens), file,
                                     cat, /*any_model_kind=*/true);
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
