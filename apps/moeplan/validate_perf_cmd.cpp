// `moeplan validate-perf FILE.csv`: predict every published measurement and
// report the error per row and per metric (docs/performance.md §Validation).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>

#include "cli.hpp"
#include "moeplan/calibration.hpp"
#include "moeplan/calibration_check.hpp"
#include "moeplan/pilot.hpp"
#include "moeplan/validate_perf.hpp"

namespace moeplan::cli {
namespace {

struct ValidateOptions {
  std::string file;
  std::string calibration;  // --calibration: predict that device's rows with it, show the move
  bool force_calibration = false;
  OutputOptions out;
};

// A calibration for validate-perf: its device must be a catalog device (the published rows name
// catalog ids), and a noisy file is refused like in `perf` unless forced. Returns the warnings
// a forced file carries.
std::vector<std::string> load_validation_calibration(const ValidateOptions& o, const Catalog& cat,
                                                     std::optional<DeviceCalibration>& out) {
  global().inputs.push_back(o.calibration);
  const Calibration raw = load_calibration(o.calibration);
  out = device_calibration(raw);
  const Device* d = cat.find_device(out->device_id);
  if (!d)
    throw Error(fmt::format(
        "calibration {}: device '{}' is not in the catalog, so no published row names it",
        o.calibration, out->device_id));
  // Judged here for the device only, for the terms table; each row is judged for its own model
  // and device in validate() (calibration_for). The noise checks apply to every row.
  out = calibration_for(*out, "", d);
  const std::vector<std::string> doubts = calibration_doubts(raw);
  if (!doubts.empty() && !o.force_calibration)
    throw Error(fmt::format("calibration {}: {}; give --force-calibration to use it anyway",
                            o.calibration, fmt::join(doubts, "; ")));
  return doubts;
}

// The "did the calibration move the error" table and its JSON.
Table effect_table(const DeviceCalibration& cal, const std::vector<CalibrationEffect>& eff,
                   Json& js) {
  Table t{"calibration",
          fmt::format("Calibration {} on {}: median |error| of that device's rows", cal.file,
                      cal.device_id),
          {"metric", "rows", "without %", "with %", "verdict"},
          {},
          {}};
  Json je = Json::array();
  auto num = [](double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); };
  for (const auto& e : eff) {
    t.add({e.metric, e.rows, Cell(e.median_abs_pct_without, 1), Cell(e.median_abs_pct_with, 1),
           e.verdict});
    je.push_back({{"metric", e.metric},
                  {"rows", e.rows},
                  {"median_abs_pct_without", num(e.median_abs_pct_without)},
                  {"median_abs_pct_with", num(e.median_abs_pct_with)},
                  {"verdict", e.verdict}});
  }
  Json terms = Json::array();
  for (const auto& term : cal.terms)
    terms.push_back({{"term", term.term},
                     {"rows", term.rows},
                     {"used", term.used},
                     {"value", term.value ? Json(*term.value) : Json(nullptr)},
                     {"note", term.note}});
  js = {{"file", cal.file}, {"device", cal.device_id}, {"terms", terms}, {"effect", je}};
  return t;
}

Cell opt_count(const std::optional<long long>& v) {
  return v ? Cell(*v) : Cell();
}

// One summary table (metric rows, optionally grouped) and its JSON array.
Table summary_table(const std::string& name, const std::string& title, const std::string& group_col,
                    const std::vector<MetricSummary>& ms, const MetricSummary* overall, Json& js) {
  std::vector<std::string> cols;
  if (!group_col.empty()) cols.push_back(group_col);
  for (const char* c :
       {"metric", "rows", "predicted", "median |err| %", "mean |err| %", "within ±25%"})
    cols.emplace_back(c);
  Table t{name, title, cols, {}, {}};
  js = Json::array();
  auto add = [&](const MetricSummary& m) {
    std::vector<Cell> row;
    if (!group_col.empty()) row.emplace_back(m.group);
    for (Cell c : {Cell(m.metric), Cell(m.rows), Cell(m.predicted), Cell(m.median_abs_pct, 1),
                   Cell(m.mean_abs_pct, 1), Cell(fmt::format("{:.0f}%", m.within_25_share * 100))})
      row.push_back(c);
    t.add(std::move(row));
    Json j = {
        {"metric", m.metric},
        {"rows", m.rows},
        {"predicted", m.predicted},
        {"median_abs_pct",
         std::isfinite(m.median_abs_pct) ? Json(m.median_abs_pct) : Json(nullptr)},
        {"mean_abs_pct", std::isfinite(m.mean_abs_pct) ? Json(m.mean_abs_pct) : Json(nullptr)},
        {"within_25_share", m.within_25_share}};
    if (!group_col.empty()) j[group_col] = m.group;
    js.push_back(j);
  };
  for (const auto& m : ms) add(m);
  if (overall) add(*overall);
  return t;
}

// The first five reasons of the skipped rows that `pick` selects, "line N: why; ...".
template <class Pick>
std::string skipped_lines(const BenchmarkFile& f, const ValidationResult& v, Pick pick,
                          std::size_t& n) {
  std::string out;
  const std::string skipped = "skipped: ";
  n = 0;
  for (std::size_t i = 0; i < f.rows.size(); ++i) {
    const RowPrediction& p = v.predictions[i];
    if (!p.skipped || !pick(p) || ++n > 5) continue;
    std::string why = p.reason;
    if (why.rfind(skipped, 0) == 0) why = why.substr(skipped.size());
    out += fmt::format("{}line {}: {}", out.empty() ? "" : "; ", f.rows[i].line, why);
  }
  return n > 5 ? out + "; ..." : out;
}

// A row naming a model, device or engine the catalog lacks, or asking what perf refuses, is bad
// input, not a prediction that is "infinitely wrong": say which rows (the first five), write
// nothing.
void refuse_unusable_rows(const ValidateOptions& o, const BenchmarkFile& f,
                          const ValidationResult& v) {
  std::size_t n = 0;
  std::string lines = skipped_lines(
      f, v, [](const RowPrediction& p) { return !p.refused; }, n);
  if (n > 0)
    throw Error(fmt::format("{}: {} row(s) name an id the catalog lacks: {}", o.file, n, lines));
  lines = skipped_lines(
      f, v, [](const RowPrediction& p) { return p.refused; }, n);
  if (n > 0)
    throw Error(fmt::format("{}: {} row(s) ask for what perf refuses: {}", o.file, n, lines));
}

// --format csv: one row per input row, in input order: every input column, then predicted,
// error_pct, reason, split and the prediction's evidence tier.
Table csv_rows_table(const BenchmarkFile& f, const ValidationResult& v) {
  Table t{"rows", "", f.header, {}, {}};
  t.columns.insert(t.columns.end(), {"predicted", "error_pct", "reason", "split", "evidence"});
  for (std::size_t i = 0; i < f.rows.size(); ++i) {
    std::vector<Cell> row;
    for (const auto& c : f.rows[i].raw) row.emplace_back(c);
    const auto& p = v.predictions[i];
    row.push_back(p.predicted ? Cell(*p.predicted) : Cell());
    row.push_back(p.predicted ? Cell(p.error_pct) : Cell());
    row.push_back(Cell(p.reason));
    row.push_back(Cell(split_name(f.rows[i].split)));
    row.push_back(p.predicted ? Cell(evidence_name(p.evidence)) : Cell());
    t.add(std::move(row));
  }
  return t;
}

// Predicted against measured, one row per input row (table and JSON).
Table rows_table(const BenchmarkFile& f, const ValidationResult& v, Json& jr) {
  Table rows{"rows",
             "Predicted vs measured",
             {"line", "model", "gpu", "n", "precision", "engine", "in", "out", "conc", "metric",
              "measured", "predicted", "error %", "bound", "split"},
             {},
             {}};
  for (std::size_t i = 0; i < f.rows.size(); ++i) {
    const auto& r = f.rows[i];
    const auto& p = v.predictions[i];
    rows.add(
        {r.line, r.model, r.gpu, r.gpu_count, r.precision, r.engine, opt_count(r.input_tokens),
         opt_count(r.output_tokens),
         r.concurrency ? Cell(*r.concurrency) : Cell(fmt::format("sat:{}", p.concurrency_used)),
         metric_name(r.metric), Cell(r.value, 1), p.predicted ? Cell(*p.predicted, 1) : Cell("—"),
         p.predicted ? Cell(fmt::format("{:+.1f}", p.error_pct)) : Cell(p.reason), p.bound,
         split_name(r.split)});
    Json row = Json::object();
    for (std::size_t c = 0; c < f.header.size() && c < r.raw.size(); ++c)
      row[f.header[c]] = benchmark_cell_json(f.header[c], r.raw[c]);
    row["line"] = r.line;
    row["concurrency_used"] = p.concurrency_used;
    row["predicted"] = p.predicted ? Json(*p.predicted) : Json(nullptr);
    row["error_pct"] = p.predicted ? Json(p.error_pct) : Json(nullptr);
    row["reason"] = p.reason;
    row["skipped"] = p.skipped;
    row["split"] = split_name(r.split);
    row["source_family"] = r.source_family;
    row["bound"] = p.bound;
    row["evidence"] = p.predicted ? Json(evidence_name(p.evidence)) : Json(nullptr);
    jr.push_back(row);
  }
  return rows;
}

// With --calibration: the same rows predicted without it, and whether it moved them towards the
// measurements; measured classes the planner refused.
void add_calibration_effect(Report& rep, const BenchmarkFile& f, const ValidationResult& v,
                            const Catalog& cat, const DeviceCalibration& cal) {
  const std::vector<CalibrationEffect> eff =
      calibration_effect(f, validate(f, cat), v, cal.device_id);
  if (eff.empty())
    rep.messages.push_back(fmt::format(
        "calibration {}: no published row is on device '{}', so nothing shows whether it moved "
        "the estimates",
        cal.file, cal.device_id));
  else
    rep.messages.push_back(
        fmt::format("calibration {} on {}: median |error| {:.1f}% → {:.1f}% "
                    "over {} row(s), {}",
                    cal.file, cal.device_id, eff.back().median_abs_pct_without,
                    eff.back().median_abs_pct_with, eff.back().rows, eff.back().verdict));
  for (const auto& t : cal.terms)
    if (!t.used && t.note.rfind("not used:", 0) == 0)
      rep.messages.push_back(fmt::format("calibration: {} ({}) {}", t.term, t.rows, t.note));
  rep.tables.push_back(effect_table(cal, eff, rep.json["calibration"]));
}

// How many predictions stand on which evidence tier (per row: JSON and CSV `evidence`).
std::string evidence_summary(const ValidationResult& v) {
  std::map<std::string, int> n;
  for (const auto& p : v.predictions)
    if (p.predicted) ++n[evidence_name(p.evidence)];
  std::vector<std::string> parts;
  for (const auto& [tier, count] : n) parts.push_back(fmt::format("{} {}", count, tier));
  return fmt::format(
      "evidence tier of the predictions: {} (default: {}; measured: {})",
      parts.empty() ? std::string("none") : fmt::format("{}", fmt::join(parts, ", ")),
      evidence_meaning(Evidence::default_), evidence_meaning(Evidence::measured));
}

// A pilot file (moeprobe load --out) is read as benchmark rows (docs/load.md). Any case of the
// extension: a file copied from a system that upper-cases names is still the same JSON.
bool is_pilot_name(const std::string& file) {
  std::string ext = std::filesystem::path(file).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".json";
}

void run_validate(const ValidateOptions& o) {
  global().inputs.push_back(o.file);
  const Catalog& cat = catalog();
  const BenchmarkFile f =
      is_pilot_name(o.file) ? pilot::read_pilot_benchmarks(o.file, cat) : read_benchmarks(o.file);
  if (f.rows.empty()) throw Error(o.file + ": no measurement rows after the header");
  std::optional<DeviceCalibration> cal;
  std::vector<std::string> cal_doubts;
  if (!o.calibration.empty()) cal_doubts = load_validation_calibration(o, cat, cal);
  const ValidationResult v = validate(f, cat, cal ? &*cal : nullptr);
  refuse_unusable_rows(o, f, v);

  Report rep;
  rep.title = fmt::format("validate-perf: {} ({} rows)", o.file, f.rows.size());
  rep.meta = output_meta(cal ? cal->file : "");
  for (const auto& doubt : cal_doubts)
    rep.messages.push_back("WARNING: calibration used with --force-calibration although " + doubt);
  if (parse_format(o.out.format) == Format::csv) {
    rep.tables.push_back(csv_rows_table(f, v));
    emit(rep, o.out);
    return;
  }
  Json jr = Json::array();
  rep.tables.push_back(rows_table(f, v, jr));
  rep.tables.push_back(summary_table("summary", "Absolute percentage error per metric", "",
                                     v.per_metric, &v.overall, rep.json["summary"]));
  rep.tables.push_back(summary_table("by_split",
                                     "Per split: constants may be fitted on `fit` rows only; "
                                     "`holdout` is the number to quote",
                                     "split", v.per_split, nullptr, rep.json["by_split"]));
  rep.tables.push_back(summary_table("by_family", "Per source family", "family", v.per_family,
                                     nullptr, rep.json["by_family"]));
  if (cal) add_calibration_effect(rep, f, v, cat, *cal);
  rep.messages.push_back(evidence_summary(v));
  const int failed = v.overall.rows - v.overall.predicted;
  if (failed > 0)
    rep.messages.push_back(
        fmt::format("{} row(s) could not be predicted; they count as outside ±25% and as "
                    "infinitely wrong in the median",
                    failed));
  if (v.skipped > 0)
    rep.messages.push_back(fmt::format(
        "{} row(s) skipped (unknown model, device or engine id; reason in the rows table); they "
        "are left out of every statistic",
        v.skipped));
  rep.json["file"] = o.file;
  rep.json["rows"] = jr;
  rep.json["skipped"] = v.skipped;
  emit(rep, o.out);
}

void setup(CLI::App& parent) {
  auto o = std::make_shared<ValidateOptions>();
  auto* app = parent.add_subcommand(
      "validate-perf",
      "Predict published measurements (CSV) and report the error per row and metric");
  app->add_option("file", o->file,
                  "Benchmark CSV (columns: see docs/performance.md), or a pilot file (.json) from "
                  "moeprobe load")
      ->required()
      ->check(CLI::ExistingFile);
  app->add_option("--calibration", o->calibration,
                  "Calibration file (moeprobe run): predict the rows of its device with it and "
                  "show whether the error moved towards the published rows")
      ->check(CLI::ExistingFile);
  app->add_flag("--force-calibration", o->force_calibration,
                "Use a calibration file although it was measured on a machine too noisy to trust");
  add_output_options(*app, o->out);
  app->callback([o] { run_validate(*o); });
}

const RegisterCommand reg("validate-perf", setup);

}  // namespace
}  // namespace moeplan::cli
