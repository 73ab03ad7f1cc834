// Pilot files into the plan and into validate-perf (docs/load.md §Feedback into the plan).
#include "moeplan/pilot.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>

#include "moeplan/errors.hpp"
#include "moeplan/plan.hpp"
#include "moeplan/sizing.hpp"
#include "moeplan/validate_perf.hpp"

namespace moeplan::pilot {

namespace {

constexpr double kPromptTolerance = 0.2;  // as moeprobe load's go/no-go (docs/load.md)
// The newest pilot_version this reader understands; a newer writer may mean fields it cannot read.
constexpr long long kPilotVersion = 1;

// A count moeprobe load writes: a whole number ≥ 0.
long long count_of(const JsonView& v, std::string_view key) {
  const long long n = v.integer(key);
  if (n < 0) v.fail_member(key, fmt::format("expected a count >= 0, found {}", n));
  return n;
}

struct Percentiles {
  std::optional<double> p50, p90, p99;
};

// Percentiles of one sample never decrease. The slack only absorbs the last-bit rounding of the
// writer's interpolation between order statistics, never a real inversion.
void check_order(const JsonView& m, const Percentiles& p) {
  const std::pair<const char*, std::optional<double>> seq[] = {
      {"p50", p.p50}, {"p90", p.p90}, {"p99", p.p99}};
  const char* prev_name = nullptr;
  double prev = 0;
  for (const auto& [name, v] : seq) {
    if (!v) continue;
    if (prev_name && *v < prev * (1 - 1e-9))
      m.fail_member(name, fmt::format("{} {:g} is below {} {:g}: percentiles must be in order "
                                      "(p50 <= p90 <= p99)",
                                      name, *v, prev_name, prev));
    prev_name = name;
    prev = *v;
  }
}

// A percentile set as moeprobe load writes it: null where nothing was measured. A time is > 0,
// except ITL, where two tokens read in one chunk are a gap of 0.
Percentiles percentiles(const JsonView& pt, std::string_view metric, bool zero_ok = false) {
  Percentiles out;
  const std::optional<JsonView> m = pt.get(metric);
  if (!m) return out;
  if (!m->is_object()) m->fail("expected an object with p50, p90, p99");
  m->only_keys({"p50", "p90", "p99", "n"});
  auto read = [&](std::string_view p) -> std::optional<double> {
    if (!m->get(p)) return std::nullopt;
    return zero_ok ? m->non_negative(p) : m->positive(p);
  };
  out = {read("p50"), read("p90"), read("p99")};
  if (m->get("n")) (void)count_of(*m, "n");
  check_order(*m, out);
  return out;
}

// Every request of a point either completed or failed in one class, so no count exceeds
// `requests`. The classes are the probe's (connect, timeout, ...): not listed here, so a class a
// newer probe adds is still read as a count.
void read_counts(const JsonView& pt, LoadPoint& l) {
  l.requests = count_of(pt, "requests");
  l.completed = count_of(pt, "completed");
  if (l.completed > l.requests)
    pt.fail_member("completed", fmt::format("{} completed is more than the point's {} requests",
                                            l.completed, l.requests));
  if (pt.get("usage_missing") && count_of(pt, "usage_missing") > l.completed)
    pt.fail_member("usage_missing",
                   fmt::format("more than the point's {} completed requests", l.completed));
  const std::optional<JsonView> e = pt.get("errors");
  if (!e) return;
  if (!e->is_object()) e->fail("expected an object of counts per error class");
  long long failed = 0;
  for (auto it = e->raw().begin(); it != e->raw().end(); ++it) failed += count_of(*e, it.key());
  if (l.completed + failed > l.requests)
    e->fail(fmt::format("{} completed and {} failed requests are more than the point's {} requests",
                        l.completed, failed, l.requests));
}

LoadPoint read_point(const JsonView& pt) {
  pt.only_keys({"concurrency", "rate", "requests", "completed", "errors", "ttft_ms", "tpot_ms",
                "itl_ms", "e2e_ms", "output_tokens_per_s", "total_tokens_per_s", "requests_per_s",
                "goodput", "mean_prompt_tokens", "mean_output_tokens", "usage_missing",
                "cached_tokens", "wall_s"});
  LoadPoint l;
  if (pt.has("concurrency")) l.concurrency = pt.positive_int("concurrency");
  if (pt.has("rate")) l.rate = pt.positive("rate");
  if (!l.concurrency && !l.rate) pt.fail("a load point needs concurrency or rate");
  read_counts(pt, l);
  l.output_tokens_per_s = pt.non_negative("output_tokens_per_s");
  for (const char* k : {"requests_per_s", "mean_prompt_tokens", "mean_output_tokens",
                        "total_tokens_per_s", "wall_s"})
    if (pt.get(k)) (void)pt.non_negative(k);
  if (pt.get("cached_tokens")) (void)count_of(pt, "cached_tokens");
  l.requests_per_s = pt.number_or("requests_per_s", 0);
  l.goodput = pt.get("goodput") ? pt.fraction("goodput") : 0;
  const Percentiles ttft = percentiles(pt, "ttft_ms"), tpot = percentiles(pt, "tpot_ms");
  (void)percentiles(pt, "itl_ms", true);
  (void)percentiles(pt, "e2e_ms");
  l.ttft_p50_ms = ttft.p50;
  l.ttft_p90_ms = ttft.p90;
  l.tpot_p50_ms = tpot.p50;
  l.tpot_p90_ms = tpot.p90;
  l.mean_prompt_tokens = pt.number_or("mean_prompt_tokens", 0);
  l.mean_output_tokens = pt.number_or("mean_output_tokens", 0);
  return l;
}

// The report envelope (schema_version, tool, provenance) and every member moeprobe load writes
// (probe/src/load_report.cpp): a typo must not pass for an absent optional field.
void check_top(const JsonView& root) {
  const long long v = root.positive_int("pilot_version");
  if (v > kPilotVersion)
    root.fail_member("pilot_version",
                     fmt::format("version {} is newer than this moeplan reads ({}); update moeplan",
                                 v, kPilotVersion));
  root.only_keys({"schema_version",   "tool",   "provenance", "kind",      "pilot_version",
                  "endpoint",         "build",  "scenario",   "asked",     "sla",
                  "load_points",      "uptime", "tool_calls", "eval",      "log",
                  "resumed_requests", "notes",  "candidate",  "predicted", "go_no_go"});
  if (auto e = root.get("endpoint")) e->only_keys({"url", "api", "served_model"});
  if (auto s = root.get("sla")) {
    s->only_keys({"ttft_ms", "tpot_ms"});
    for (const char* k : {"ttft_ms", "tpot_ms"})
      if (s->get(k)) (void)s->positive(k);
  }
  if (auto p = root.get("predicted"))
    p->only_keys({"output_tokens_per_s", "ttft_ms", "tpot_ms", "concurrency"});
  if (root.get("resumed_requests")) (void)count_of(root, "resumed_requests");
}

// uptime, tool_calls and eval: `ok` of `total` requests, and the share they make.
void check_share(const JsonView& root, std::string_view key, const char* total, const char* ok) {
  const std::optional<JsonView> s = root.get(key);
  if (!s) return;
  s->only_keys({total, ok, "share"});
  const long long n = count_of(*s, total), k = count_of(*s, ok);
  if (k > n) s->fail_member(ok, fmt::format("{} is more than the {} {}", k, n, total));
  (void)s->fraction("share");
}

void read_build(const JsonView& root, PilotFile& p) {
  const JsonView b = root.at("build");
  if (b.is_null())
    b.fail(
        "the pilot records no build: run moeprobe load with --build "
        "MODEL,SYSTEM_OR_DEVICE,GPUS,PRECISION");
  b.only_keys({"model", "device", "gpus", "precision", "engine"});
  p.model = b.string("model");
  p.device = b.string("device");
  p.gpus = static_cast<int>(b.positive_int("gpus"));
  p.precision = b.string("precision");
  p.engine = b.string_or("engine", "");
}

// The asked prompt length is a number, or "prompts file" when the prompts came from --prompts.
void read_asked(const JsonView& root, PilotFile& p) {
  const std::optional<JsonView> a = root.get("asked");
  if (!a) return;
  a->only_keys({"input_tokens", "output_tokens", "prefix_share"});
  if (auto in = a->get("input_tokens")) {
    if (!in->raw().is_string())
      p.input_tokens = count_of(*a, "input_tokens");
    else if (in->string() != "prompts file")
      in->fail("expected a token count or \"prompts file\", found " + describe_json(in->raw()));
  }
  p.output_tokens = a->get("output_tokens") ? count_of(*a, "output_tokens") : 0;
  if (a->get("prefix_share")) (void)a->fraction("prefix_share");
}

GoNoGoRow read_go(const JsonView& g) {
  g.only_keys({"check", "name", "status", "measured", "required", "note"});
  return {static_cast<int>(g.integer("check")),
          g.string_or("name", ""),
          g.one_of("status", {"pass", "fail", "not_measured"}),
          g.string_or("measured", ""),
          g.string_or("required", ""),
          g.string_or("note", "")};
}

}  // namespace

std::string LoadPoint::label() const {
  if (rate) return fmt::format("rate={:g}/s", *rate);
  return fmt::format("c={}", concurrency.value_or(0));
}

PilotFile parse_pilot(const Json& doc, const std::string& file) {
  const JsonView root(doc, file);
  if (!root.is_object()) root.fail("expected a JSON object (a moeprobe load --out file)");
  if (root.string_or("kind", "") != "moeprobe-load")
    root.fail(
        "not a pilot file: /kind is not \"moeprobe-load\" (write one with moeprobe load "
        "--out FILE)");
  check_top(root);
  PilotFile p;
  p.file = file;
  read_build(root, p);
  if (auto e = root.get("endpoint")) p.url = e->string_or("url", "");
  read_asked(root, p);
  for (const JsonView& pt : root.array("load_points")) p.points.push_back(read_point(pt));
  check_share(root, "uptime", "requests", "succeeded");
  check_share(root, "tool_calls", "sent", "ok");
  check_share(root, "eval", "sent", "ok");
  for (const JsonView& g : root.array_or_empty("go_no_go")) p.go_no_go.push_back(read_go(g));
  return p;
}

PilotFile read_pilot(const std::string& path) {
  const Json doc = parse_json_file(path);
  return parse_pilot(doc, path);
}

std::optional<BuildIdProblem> build_id_problem(const std::string& model, const std::string& device,
                                               const std::string& precision,
                                               const std::string& engine, const Catalog& cat) {
  // The catalog's own errors (UnknownIdError: "did you mean ..."), tagged with the member.
  const char* member = "model";
  try {
    const Model& m = cat.model(model);
    member = "device";
    if (!cat.find_device(device) && !cat.find_system(device)) {
      std::vector<std::string> known;
      for (const auto& d : cat.devices) known.push_back(d.id);
      for (const auto& s : cat.systems) known.push_back(s.id);
      throw UnknownIdError("device or system", device, known);
    }
    member = "precision";
    if (precision != "native") (void)parse_weight_spec(precision, m.native_precision, cat);
    member = "engine";
    if (!engine.empty()) (void)cat.engine(engine);
  } catch (const Error& e) {
    return BuildIdProblem{member, e.what()};
  }
  return std::nullopt;
}

void check_build(const PilotFile& p, const Catalog& cat) {
  if (auto e = build_id_problem(p.model, p.device, p.precision, p.engine, cat))
    throw InputError(p.file, "/build/" + e->member, e->message);
}

bool matches(const PilotFile& p, const plan::Candidate& c) {
  // `moeprobe load --build` takes a device or a system id; a system id used to match nothing,
  // so a pilot of `glm-5.2,hgx-h200-8,8,fp8` was never applied to the HGX H200 candidate.
  const bool same_box = c.device && (p.device == c.device->id || p.device == c.system.id);
  return c.model && same_box && p.model == c.model->id && p.gpus == c.build.gpus_per_node &&
         p.precision == c.build.precision;
}

namespace {

// Did the pilot send the scenario's prompts? (asked lengths, else the server's counts)
bool same_prompts(const PilotFile& p, const LoadPoint& l, const plan::PlanDemand& d,
                  std::string& why) {
  auto off = [](double got, long long want) {
    return want > 0 && std::abs(got / static_cast<double>(want) - 1) > kPromptTolerance;
  };
  const double in = p.input_tokens ? static_cast<double>(*p.input_tokens) : l.mean_prompt_tokens;
  const double out =
      l.mean_output_tokens > 0 ? l.mean_output_tokens : static_cast<double>(p.output_tokens);
  if (off(in, d.input_tokens) || off(out, d.output_tokens) ||
      (l.mean_prompt_tokens > 0 && off(l.mean_prompt_tokens, d.input_tokens))) {
    why = fmt::format("measured at {:.0f} in / {:.0f} out, the scenario's prompts are {} / {}",
                      l.mean_prompt_tokens > 0 ? l.mean_prompt_tokens : in, out, d.input_tokens,
                      d.output_tokens);
    return false;
  }
  return true;
}

bool meets(const LoadPoint& l, const plan::PlanDemand& d) {
  if (l.completed == 0) return false;
  if (d.sla_ttft_ms && (!l.ttft_p90_ms || *l.ttft_p90_ms > *d.sla_ttft_ms)) return false;
  if (d.sla_tpot_ms && (!l.tpot_p90_ms || *l.tpot_p90_ms > *d.sla_tpot_ms)) return false;
  return true;
}

}  // namespace

std::optional<Comparison> apply_pilot(plan::Candidate& c, const PilotFile& p,
                                      const plan::PlanScenario& sc) {
  if (!matches(p, c)) return std::nullopt;
  Comparison k;
  k.candidate = c.id;
  k.predicted_concurrency = c.concurrency;
  k.predicted_tok_s = c.throughput;
  k.predicted_ttft_ms = c.ttft_ms;
  k.predicted_tpot_ms = c.tpot_ms;
  const auto& d = sc.demand;
  const LoadPoint* best = nullptr;
  for (const auto& l : p.points)
    if (meets(l, d) && (!best || l.output_tokens_per_s > best->output_tokens_per_s)) best = &l;
  const LoadPoint* shown = best;
  if (!shown)
    for (const auto& l : p.points)
      if (l.completed > 0 && (!shown || l.output_tokens_per_s > shown->output_tokens_per_s))
        shown = &l;
  if (shown) {
    k.point = shown->label();
    k.measured_concurrency = shown->concurrency;
    k.measured_tok_s = shown->output_tokens_per_s;
    k.measured_ttft_ms = shown->ttft_p50_ms;
    k.measured_tpot_ms = shown->tpot_p50_ms;
  }
  if (!c.fits || !c.excluded.empty()) {
    k.note = "not applied: the candidate is excluded before performance (" +
             (c.excluded.empty() ? c.fit_reason : c.excluded.front()) + ")";
    return k;
  }
  if (!shown) {
    k.note = "not applied: no load point of the pilot completed a request";
    return k;
  }
  std::string why;
  if (!same_prompts(p, *shown, d, why)) {
    k.note = "not applied: " + why;
    return k;
  }
  k.applied = true;
  c.perf_evidence = "measured";
  c.evidence["throughput"] = "measured (pilot " + p.file + ", " + shown->label() + ")";
  if (!best) {
    c.meets_sla = false;
    c.excluded.push_back(fmt::format(
        "measured on the pilot ({}): no load point meets the SLA at P90 (best {}: {:.0f} tok/s)",
        p.file, shown->label(), shown->output_tokens_per_s));
    k.note = "applied: no measured load point meets the SLA";
    return k;
  }
  c.meets_sla = true;
  c.throughput = best->output_tokens_per_s;
  if (best->ttft_p50_ms) c.ttft_ms = *best->ttft_p50_ms;
  if (best->tpot_p50_ms) {
    c.tpot_ms = *best->tpot_p50_ms;
    c.per_user_tok_s = *best->tpot_p50_ms > 0 ? 1000.0 / *best->tpot_p50_ms : 0;
  }
  if (best->concurrency) c.concurrency = *best->concurrency;
  c.perf_note = fmt::format("measured on the pilot at {} (P90 within the SLA)", best->label());
  // Fleet size from the measured rate: the same formulas as the plan (docs/plan.md).
  const double peak = d.peak_output_tokens_per_s();
  c.nodes = std::max(1, static_cast<int>(std::ceil(peak / c.throughput - 1e-9))) + c.reserve_nodes;
  const double avg = d.average_output_tokens_per_s();
  c.utilization = avg / (c.nodes * c.throughput);
  c.node_equivalents = avg / c.throughput;
  k.note = "applied";
  return k;
}

std::vector<Table> pilot_tables(const PilotFile& p, const std::vector<Comparison>& cmp) {
  auto opt = [](const std::optional<double>& v, int d) { return v ? Cell(*v, d) : Cell("—"); };
  Table t{"pilot",
          "Predicted vs measured (pilot " + p.file + ")",
          {"candidate", "point", "conc pred", "conc meas", "tok/s pred", "tok/s meas",
           "TTFT pred ms", "TTFT meas ms", "TPOT pred ms", "TPOT meas ms", "used"},
          {},
          {}};
  for (const auto& k : cmp)
    t.add({k.candidate, k.point, k.predicted_concurrency,
           k.measured_concurrency ? Cell(*k.measured_concurrency) : Cell("—"),
           Cell(k.predicted_tok_s, 1), opt(k.measured_tok_s, 1), Cell(k.predicted_ttft_ms, 0),
           opt(k.measured_ttft_ms, 0), Cell(k.predicted_tpot_ms, 1), opt(k.measured_tpot_ms, 1),
           k.note});
  if (cmp.empty())
    t.notes.push_back(fmt::format("no candidate is the pilot's build {} | {}×{} | {}", p.model,
                                  p.gpus, p.device, p.precision));
  t.notes.push_back(
      "measured TTFT and TPOT are P50 of the chosen load point; the point is the "
      "highest output tok/s whose P90 TTFT and TPOT meet the SLA");
  std::vector<Table> out{t};
  if (!p.go_no_go.empty()) {
    Table g{"pilot_go_no_go",
            "Go/no-go measured on the pilot",
            {"check", "what", "status", "measured", "required", "note"},
            {},
            {}};
    for (const auto& r : p.go_no_go)
      g.add({r.check, r.name, r.status, r.measured, r.required, r.note});
    out.push_back(g);
  }
  return out;
}

Json pilot_json(const PilotFile& p, const std::vector<Comparison>& cmp) {
  auto o = [](const std::optional<double>& v) { return v ? Json(*v) : Json(nullptr); };
  Json rows = Json::array();
  for (const auto& k : cmp)
    rows.push_back(
        {{"candidate", k.candidate},
         {"point", k.point},
         {"applied", k.applied},
         {"note", k.note},
         {"predicted",
          {{"concurrency", k.predicted_concurrency},
           {"output_tokens_per_s", k.predicted_tok_s},
           {"ttft_ms", k.predicted_ttft_ms},
           {"tpot_ms", k.predicted_tpot_ms}}},
         {"measured",
          {{"concurrency", k.measured_concurrency ? Json(*k.measured_concurrency) : Json(nullptr)},
           {"output_tokens_per_s", o(k.measured_tok_s)},
           {"ttft_ms", o(k.measured_ttft_ms)},
           {"tpot_ms", o(k.measured_tpot_ms)}}}});
  Json g = Json::array();
  for (const auto& r : p.go_no_go)
    g.push_back({{"check", r.check},
                 {"status", r.status},
                 {"measured", r.measured},
                 {"required", r.required},
                 {"note", r.note}});
  return {{"file", p.file}, {"comparisons", rows}, {"go_no_go", g}};
}

std::string to_benchmark_csv(const PilotFile& p) {
  if (p.engine.empty())
    throw InputError(p.file, "/build/engine",
                     "validate-perf needs the engine the pilot ran (moeprobe load --engine ID)");
  std::string csv = fmt::format("{}\n", fmt::join(benchmark_columns(), ","));
  const std::string in = p.input_tokens ? std::to_string(*p.input_tokens) : "";
  for (const auto& l : p.points) {
    if (!l.concurrency || l.completed == 0) continue;  // open-loop points have no fixed batch
    const std::string src = fmt::format("\"pilot {} {} ({} of {} requests)\"", p.file, l.label(),
                                        l.completed, l.requests);
    const std::string in_tok = !in.empty() ? in : fmt::format("{:.0f}", l.mean_prompt_tokens);
    const std::string head = fmt::format(
        "{},{},{},{},,{},{},{:.0f},{}", p.model, p.device, p.gpus, p.precision, p.engine, in_tok,
        l.mean_output_tokens > 0 ? l.mean_output_tokens : static_cast<double>(p.output_tokens),
        *l.concurrency);
    csv += fmt::format("{},output_tok_s,{},tok/s,{}\n", head, l.output_tokens_per_s, src);
    if (l.ttft_p50_ms) csv += fmt::format("{},ttft_ms,{},ms,{}\n", head, *l.ttft_p50_ms, src);
    if (l.tpot_p50_ms) csv += fmt::format("{},tpot_ms,{},ms,{}\n", head, *l.tpot_p50_ms, src);
  }
  return csv;
}

BenchmarkFile read_pilot_benchmarks(const std::string& path, const Catalog& cat) {
  PilotFile p = read_pilot(path);
  check_build(p, cat);
  // The rows' `gpu` column takes a device: a build named by its system is that system's device.
  if (const System* s = cat.find_system(p.device)) p.device = s->device;
  return parse_benchmarks(to_benchmark_csv(p), path);
}

}  // namespace moeplan::pilot
