// Catalog regression over the example plans (docs/plan.md § regress).
#include "moeplan/regress.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "moeplan/errors.hpp"
#include "moeplan/menu.hpp"
#include "moeplan/plan.hpp"
#include "moeplan/report.hpp"

namespace moeplan::regress {

namespace fs = std::filesystem;

namespace {

bool same_number(double a, double b, double rel) {
  if (a == b) return true;
  const double scale = std::max(std::abs(a), std::abs(b));
  return std::abs(a - b) <= std::max(1e-12, rel * scale);
}

// The key that identifies an element of an array of objects, or "" for index matching.
std::string element_key(const Json& arr) {
  if (!arr.is_array() || arr.empty()) return "";
  for (const char* k : {"id", "name"}) {
    bool all = true;
    for (const auto& e : arr) all = all && e.is_object() && e.contains(k) && e[k].is_string();
    if (all) return k;
  }
  return "";
}

void diff_into(const Json& a, const Json& b, const std::string& path, double rel,
               std::vector<Change>& out) {
  if (a.is_number() && b.is_number()) {
    if (!same_number(a.get<double>(), b.get<double>(), rel)) out.push_back({path, a, b});
    return;
  }
  if (a.is_object() && b.is_object()) {
    for (auto it = a.begin(); it != a.end(); ++it) {
      if (path.empty() && ignored_key(it.key())) continue;
      const std::string p = path + "/" + it.key();
      if (!b.contains(it.key()))
        out.push_back({p, it.value(), nullptr});
      else
        diff_into(it.value(), b.at(it.key()), p, rel, out);
    }
    for (auto it = b.begin(); it != b.end(); ++it) {
      if (path.empty() && ignored_key(it.key())) continue;
      if (!a.contains(it.key())) out.push_back({path + "/" + it.key(), nullptr, it.value()});
    }
    return;
  }
  if (a.is_array() && b.is_array()) {
    const std::string ka = element_key(a), kb = element_key(b);
    if (!ka.empty() && ka == kb) {
      std::map<std::string, const Json*> bm;
      for (const auto& e : b) bm[e[kb].get<std::string>()] = &e;
      std::map<std::string, bool> seen;
      for (const auto& e : a) {
        const std::string id = e[ka].get<std::string>();
        seen[id] = true;
        const std::string p = path + "[" + id + "]";
        auto it = bm.find(id);
        if (it == bm.end())
          out.push_back({p, e, nullptr});
        else
          diff_into(e, *it->second, p, rel, out);
      }
      for (const auto& e : b)
        if (!seen.count(e[kb].get<std::string>()))
          out.push_back({path + "[" + e[kb].get<std::string>() + "]", nullptr, e});
      return;
    }
    const std::size_t n = std::max(a.size(), b.size());
    for (std::size_t i = 0; i < n; ++i) {
      const std::string p = path + "/" + std::to_string(i);
      if (i >= a.size())
        out.push_back({p, nullptr, b[i]});
      else if (i >= b.size())
        out.push_back({p, a[i], nullptr});
      else
        diff_into(a[i], b[i], p, rel, out);
    }
    return;
  }
  if (a != b) out.push_back({path, a, b});
}

std::vector<MovedInput> moved(const Json& a, const Json& b, double rel) {
  std::map<std::string, const Json*> bm;
  if (b.is_array())
    for (const auto& e : b)
      if (e.contains("name")) bm[e["name"].get<std::string>()] = &e;
  std::vector<MovedInput> out;
  std::map<std::string, bool> seen;
  if (a.is_array())
    for (const auto& e : a) {
      if (!e.contains("name")) continue;
      const std::string n = e["name"].get<std::string>();
      if (seen[n]) continue;
      seen[n] = true;
      const Json ov = e.value("value", Json(nullptr));
      auto it = bm.find(n);
      const Json nv = it == bm.end() ? Json(nullptr) : it->second->value("value", Json(nullptr));
      std::vector<Change> d;
      diff_into(ov, nv, "", rel, d);
      if (!d.empty() || it == bm.end())
        out.push_back({n, e.value("source", std::string()), ov, nv});
    }
  for (const auto& [n, e] : bm)
    if (!seen.count(n))
      out.push_back(
          {n, e->value("source", std::string()), nullptr, e->value("value", Json(nullptr))});
  return out;
}

std::string short_json(const Json& j) {
  if (j.is_null()) return "(absent)";
  std::string s = j.is_number_float() ? fmt::format("{:.10g}", j.get<double>()) : j.dump();
  if (s.size() > 120) s = s.substr(0, 117) + "...";
  return s;
}

}  // namespace

bool ignored_key(const std::string& key) {
  return key == "provenance" || key == "tool";
}

std::vector<Change> diff(const Json& expected, const Json& actual, double rel_tol) {
  std::vector<Change> out;
  diff_into(expected, actual, "", rel_tol, out);
  return out;
}

std::vector<std::pair<std::string, std::vector<MovedInput>>> moved_inputs(const Json& expected,
                                                                          const Json& actual,
                                                                          double rel_tol) {
  std::vector<std::pair<std::string, std::vector<MovedInput>>> out;
  auto global = moved(expected.value("assumptions", Json::array()),
                      actual.value("assumptions", Json::array()), rel_tol);
  if (!global.empty()) out.emplace_back("", std::move(global));
  std::map<std::string, const Json*> am;
  const Json actual_candidates = actual.value("candidates", Json::array());
  for (const auto& c : actual_candidates)
    if (c.contains("id")) am[c["id"].get<std::string>()] = &c;
  const Json expected_candidates = expected.value("candidates", Json::array());
  for (const auto& c : expected_candidates) {
    if (!c.contains("id")) continue;
    const std::string id = c["id"].get<std::string>();
    auto it = am.find(id);
    if (it == am.end()) continue;
    auto m = moved(c.value("inputs", Json::array()), it->second->value("inputs", Json::array()),
                   rel_tol);
    if (!m.empty()) out.emplace_back(id, std::move(m));
  }
  return out;
}

std::string plan_json_text(const std::string& scenario_path, const Catalog& cat) {
  if (menu::is_menu_file(scenario_path)) {  // the same dispatch as `moeplan plan`
    const menu::MenuScenario ms = menu::load_menu_scenario(scenario_path, cat);
    Report rep = menu::make_menu_report(menu::run_menu(ms, cat));
    rep.meta.tool_version = tool_version();
    rep.meta.git_sha = git_sha();
    rep.meta.catalog_hash = cat.content_hash;
    rep.meta.command_line = "moeplan plan " + ms.label + " --format json";
    return render(rep, Format::json);
  }
  const plan::PlanScenario sc = plan::load_plan_scenario(scenario_path, cat);
  plan::PlanOptions po;
  po.threads = 2;
  const plan::PlanResult r = plan::run_plan(sc, cat, po);
  Report rep = plan::make_plan_report(r);
  rep.meta.tool_version = tool_version();
  rep.meta.git_sha = git_sha();
  rep.meta.catalog_hash = cat.content_hash;
  rep.meta.command_line = "moeplan plan " + sc.label + " --format json";
  return render(rep, Format::json);
}

std::vector<ExampleResult> run(const Options& o, const Catalog& cat) {
  if (!fs::is_directory(o.examples_dir))
    throw Error("regress: examples directory '" + o.examples_dir + "' " +
                (fs::exists(o.examples_dir) ? "is not a directory" : "not found"));
  std::vector<fs::path> scenarios;
  for (const auto& e : fs::directory_iterator(o.examples_dir)) {
    const std::string n = e.path().filename().string();
    if (e.is_regular_file() && n.rfind("plan-", 0) == 0 && e.path().extension() == ".json")
      scenarios.push_back(e.path());
  }
  std::sort(scenarios.begin(), scenarios.end());
  if (scenarios.empty())
    throw Error("regress: no plan-*.json scenarios in '" + o.examples_dir + "'");
  std::vector<ExampleResult> out;
  for (const auto& s : scenarios) {
    ExampleResult r;
    r.scenario = s.string();
    r.expected = (s.parent_path() / "expected" / s.filename()).string();
    std::string text;
    try {
      text = plan_json_text(r.scenario, cat);
    } catch (const std::exception& e) {
      r.error = e.what();
      out.push_back(std::move(r));
      continue;
    }
    if (o.update) {
      fs::create_directories(s.parent_path() / "expected");
      write_file_atomic(r.expected, text);
      r.updated = true;
      out.push_back(std::move(r));
      continue;
    }
    if (!fs::exists(r.expected)) {
      r.missing_expected = true;
      out.push_back(std::move(r));
      continue;
    }
    const Json expected = parse_json_file(r.expected);
    const Json actual = parse_json_text(text, r.scenario + " (re-planned)");
    r.changes = diff(expected, actual, o.rel_tol);
    if (!r.changes.empty()) r.causes = moved_inputs(expected, actual, o.rel_tol);
    out.push_back(std::move(r));
  }
  return out;
}

std::string format_results(const std::vector<ExampleResult>& results) {
  std::ostringstream os;
  int failed = 0;
  for (const auto& r : results) {
    if (r.updated) {
      os << "updated  " << r.expected << "\n";
      continue;
    }
    if (r.ok()) {
      os << "ok       " << r.scenario << "\n";
      continue;
    }
    ++failed;
    if (!r.error.empty()) {
      os << "ERROR    " << r.scenario << ": " << r.error << "\n";
      continue;
    }
    if (r.missing_expected) {
      os << "MISSING  " << r.expected << " (run `moeplan regress --update` to create it)\n";
      continue;
    }
    os << "CHANGED  " << r.scenario << " (" << r.changes.size() << " figure(s) differ from "
       << r.expected << ")\n";
    const std::size_t limit = 40;
    for (std::size_t i = 0; i < r.changes.size() && i < limit; ++i) {
      const auto& c = r.changes[i];
      os << "  " << c.path << ": " << short_json(c.old_value) << " -> " << short_json(c.new_value)
         << "\n";
    }
    if (r.changes.size() > limit) os << "  ... and " << r.changes.size() - limit << " more\n";
    if (r.causes.empty()) {
      os << "  moved by: no recorded input changed (model or code change)\n";
    } else {
      for (const auto& [id, ins] : r.causes) {
        os << "  moved by "
           << (id.empty() ? std::string("scenario-wide assumptions") : "inputs of " + id) << ":\n";
        for (const auto& m : ins)
          os << "    " << m.name << ": " << short_json(m.old_value) << " -> "
             << short_json(m.new_value) << (m.source.empty() ? "" : "  [" + m.source + "]") << "\n";
      }
    }
  }
  os << fmt::format("{} example(s), {} failed\n", results.size(), failed);
  return os.str();
}

}  // namespace moeplan::regress
