// `moeprobe load`: the report — per load point percentiles, throughput,
// goodput, errors; the go/no-go table; the JSON document that is also the
// pilot file `moeplan plan --pilot` reads (docs/load.md §JSON).
#include <fmt/format.h>

#include <sstream>

#include "moeplan/errors.hpp"
#include "moeplan/pilot.hpp"
#include "moeplan/sizing.hpp"
#include "moeprobe/load.hpp"

namespace moeprobe::load {

BuildId parse_build(const std::string& s, const std::string& engine) {
  BuildId b;
  b.engine = engine;
  if (s.empty()) return b;
  std::vector<std::string> f;
  std::stringstream ss(s);
  for (std::string x; std::getline(ss, x, ',');) f.push_back(x);
  if (f.size() != 4 || f[0].empty() || f[1].empty() || f[3].empty())
    throw moeplan::Error(
        "--build: expected MODEL,SYSTEM_OR_DEVICE,GPUS,PRECISION (e.g. "
        "glm-5.2,h200,8,fp8), got '" +
        s + "'");
  b.model = f[0];
  b.device = f[1];
  b.precision = f[3];
  try {
    std::size_t used = 0;
    b.gpus = std::stoi(f[2], &used);
    if (used != f[2].size() || b.gpus < 1) throw std::invalid_argument("");
  } catch (const std::exception&) {
    throw moeplan::Error("--build: GPUS '" + f[2] + "' is not a positive integer");
  }
  return b;
}

void check_build(const BuildId& b, const moeplan::Catalog& cat) {
  if (b.model.empty()) return;  // no --build (load refuses --engine without one)
  const auto e = moeplan::pilot::build_id_problem(b.model, b.device, b.precision, b.engine, cat);
  if (!e) return;
  throw moeplan::Error(e->member == "engine" ? "--engine " + b.engine + ": " + e->message
                                             : "--build: " + e->message);
}

namespace {

Json pct_json(const Percentiles& p) {
  auto o = [](const std::optional<double>& v) { return v ? Json(*v) : Json(nullptr); };
  return {{"p50", o(p.p50)}, {"p90", o(p.p90)}, {"p99", o(p.p99)}, {"n", p.n}};
}

moeplan::Cell pcell(const std::optional<double>& v, int d = 1) {
  return v ? moeplan::Cell(*v, d) : moeplan::Cell("—");
}

Json point_json(const PointSummary& s) {
  Json j = Json::object();
  if (s.plan.concurrency) j["concurrency"] = *s.plan.concurrency;
  if (s.plan.rate) j["rate"] = *s.plan.rate;
  j["requests"] = s.requests;
  j["completed"] = s.completed;
  j["errors"] = s.errors;
  j["ttft_ms"] = pct_json(s.ttft_ms);
  j["tpot_ms"] = pct_json(s.tpot_ms);
  j["itl_ms"] = pct_json(s.itl_ms);
  j["e2e_ms"] = pct_json(s.e2e_ms);
  j["output_tokens_per_s"] = s.output_tokens_per_s;
  j["total_tokens_per_s"] = s.total_tokens_per_s;
  j["requests_per_s"] = s.requests_per_s;
  j["goodput"] = s.goodput;
  j["mean_prompt_tokens"] = s.mean_prompt_tokens;
  j["mean_output_tokens"] = s.mean_output_tokens;
  j["usage_missing"] = s.usage_missing;
  j["cached_tokens"] = s.cached_tokens;
  j["wall_s"] = s.wall_s;
  return j;
}

}  // namespace

moeplan::Report make_load_report(const LoadRun& run, const LoadOptions& o,
                                 const std::optional<Targets>& targets,
                                 const std::optional<BuildId>& build,
                                 const std::string& scenario_file) {
  using moeplan::Cell;
  using moeplan::Table;
  moeplan::Report rep;
  rep.title =
      fmt::format("moeprobe load: {} ({}), model {}", o.http.url, api_path(o.http.api), run.model);
  Table lp{"load_points",
           "Per load point (latencies in ms; TPOT = mean gap per request, ITL = every gap)",
           {"point",    "requests",  "ok",          "TTFT p50", "TTFT p90", "TTFT p99", "TPOT p50",
            "TPOT p90", "TPOT p99",  "ITL p50",     "ITL p90",  "ITL p99",  "e2e p50",  "e2e p90",
            "e2e p99",  "out tok/s", "total tok/s", "req/s",    "goodput",  "in tok",   "out tok"},
           {},
           {}};
  Table er{"errors", "Errors by class", {"point"}, {}, {}};
  for (Failure f : failure_classes()) er.columns.push_back(failure_name(f));
  er.columns.push_back("success");
  Json points = Json::array();
  for (const auto& s : run.summaries) {
    lp.add({s.plan.label(),
            s.requests,
            s.completed,
            pcell(s.ttft_ms.p50, 0),
            pcell(s.ttft_ms.p90, 0),
            pcell(s.ttft_ms.p99, 0),
            pcell(s.tpot_ms.p50, 2),
            pcell(s.tpot_ms.p90, 2),
            pcell(s.tpot_ms.p99, 2),
            pcell(s.itl_ms.p50, 2),
            pcell(s.itl_ms.p90, 2),
            pcell(s.itl_ms.p99, 2),
            pcell(s.e2e_ms.p50, 0),
            pcell(s.e2e_ms.p90, 0),
            pcell(s.e2e_ms.p99, 0),
            Cell(s.output_tokens_per_s, 1),
            Cell(s.total_tokens_per_s, 1),
            Cell(s.requests_per_s, 2),
            Cell(fmt::format("{:.1f}%", s.goodput * 100)),
            Cell(s.mean_prompt_tokens, 0),
            Cell(s.mean_output_tokens, 0)});
    std::vector<Cell> row{s.plan.label()};
    for (Failure f : failure_classes()) row.emplace_back(s.errors.at(failure_name(f)));
    row.emplace_back(fmt::format("{:.1f}%", s.requests ? 100.0 * static_cast<double>(s.completed) /
                                                             static_cast<double>(s.requests)
                                                       : 0.0));
    er.add(row);
    points.push_back(point_json(s));
  }
  lp.notes.push_back(
      fmt::format("goodput = share of requests that succeeded with TTFT {} and TPOT {}",
                  o.sla.ttft_ms ? fmt::format("≤ {:.0f} ms", *o.sla.ttft_ms) : "(no SLA)",
                  o.sla.tpot_ms ? fmt::format("≤ {:.1f} ms", *o.sla.tpot_ms) : "(no SLA)"));
  rep.tables.push_back(lp);
  rep.tables.push_back(er);

  const Measured& m = run.measured;
  const double uptime =
      m.issued ? static_cast<double>(m.succeeded) / static_cast<double>(m.issued) : 0;
  auto share_json = [](const std::optional<CheckOutcome>& c) {
    return c ? Json{{"sent", c->sent}, {"ok", c->ok}, {"share", c->share()}} : Json(nullptr);
  };
  Json& j = rep.json;
  j["kind"] = "moeprobe-load";
  j["pilot_version"] = 1;
  j["endpoint"] = {{"url", o.http.url},
                   {"api", o.http.api == Api::chat ? "chat" : "completions"},
                   {"served_model", run.model}};
  j["build"] = build && !build->model.empty() ? Json{{"model", build->model},
                                                     {"device", build->device},
                                                     {"gpus", build->gpus},
                                                     {"precision", build->precision},
                                                     {"engine", build->engine}}
                                              : Json(nullptr);
  j["scenario"] = scenario_file.empty() ? Json(nullptr) : Json(scenario_file);
  j["asked"] = {{"input_tokens", m.asked_input >= 0 ? Json(m.asked_input) : Json("prompts file")},
                {"output_tokens", o.output_tokens},
                {"prefix_share", o.prefix_share ? Json(*o.prefix_share) : Json(nullptr)}};
  j["sla"] = {{"ttft_ms", o.sla.ttft_ms ? Json(*o.sla.ttft_ms) : Json(nullptr)},
              {"tpot_ms", o.sla.tpot_ms ? Json(*o.sla.tpot_ms) : Json(nullptr)}};
  j["load_points"] = points;
  j["uptime"] = {{"requests", m.issued}, {"succeeded", m.succeeded}, {"share", uptime}};
  j["tool_calls"] = share_json(m.tools);
  j["eval"] = share_json(m.eval);
  j["log"] = o.log_path;
  j["resumed_requests"] = run.resumed;
  j["notes"] = run.notes;

  Json gj = Json::array();
  if (targets) {
    Table go{"go_no_go",
             "Go/no-go checks of the plan, measured" +
                 (targets->candidate.empty() ? std::string() : " (" + targets->candidate + ")"),
             {"check", "what", "status", "measured", "required", "note"},
             {},
             {}};
    for (const auto& g : go_no_go(*targets, m)) {
      go.add({g.check, g.name, g.status, g.measured, g.required, g.note});
      gj.push_back({{"check", g.check},
                    {"name", g.name},
                    {"status", g.status},
                    {"measured", g.measured},
                    {"required", g.required},
                    {"note", g.note}});
    }
    go.notes.push_back(
        "not_measured = this run cannot settle the check (never counted as a pass); docs/load.md "
        "§Go/no-go rules");
    rep.tables.push_back(go);
    j["candidate"] = targets->candidate;
    auto o2 = [](const std::optional<double>& v) { return v ? Json(*v) : Json(nullptr); };
    j["predicted"] = {{"output_tokens_per_s", o2(targets->predicted_tok_s)},
                      {"ttft_ms", o2(targets->predicted_ttft_ms)},
                      {"tpot_ms", o2(targets->predicted_tpot_ms)},
                      {"concurrency", targets->plan_concurrency ? Json(*targets->plan_concurrency)
                                                                : Json(nullptr)}};
  }
  j["go_no_go"] = gj;
  rep.messages.push_back(
      fmt::format("uptime over the run: {} of {} load requests succeeded ({:.1f}%)", m.succeeded,
                  m.issued, uptime * 100));
  if (m.tools)
    rep.messages.push_back(
        fmt::format("tool calls: {} of {} replies called get_weather with "
                    "arguments matching its schema",
                    m.tools->ok, m.tools->sent));
  if (m.eval)
    rep.messages.push_back(
        fmt::format("eval: {} of {} answers matched their pattern", m.eval->ok, m.eval->sent));
  for (const auto& n : run.notes) rep.messages.push_back(n);
  rep.messages.push_back("log: " + o.log_path);
  return rep;
}

}  // namespace moeprobe::load
