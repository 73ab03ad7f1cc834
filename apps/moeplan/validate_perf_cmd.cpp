// `moeplan validate-perf FILE.csv`: predict every published measurement and
// report the error per row and per metric (docs/performance.md §Validation).
#include <fmt/format.h>

#include <memory>

#include "cli.hpp"
#include "moeplan/pilot.hpp"
#include "moeplan/validate_perf.hpp"

namespace moeplan::cli {
namespace {

struct ValidateOptions {
  std::string file;
  OutputOptions out;
};

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

void run_validate(const ValidateOptions& o) {
  global().inputs.push_back(o.file);
  const Catalog& cat = catalog();
  // A pilot file (moeprobe load --out) is read as benchmark rows (docs/load.md).
  const bool is_pilot = o.file.size() > 5 && o.file.compare(o.file.size() - 5, 5, ".json") == 0;
  const BenchmarkFile f = is_pilot ? pilot::read_pilot_benchmarks(o.file) : read_benchmarks(o.file);
  if (f.rows.empty()) throw Error(o.file + ": no measurement rows after the header");
  const ValidationResult v = validate(f, cat);
  // A row naming a model, device or engine the catalog lacks is bad input,
  // not a prediction that is "infinitely wrong": say which rows, write nothing.
  std::string unknown;
  std::size_t n_unknown = 0;
  const std::string skipped = "skipped: ";
  for (std::size_t i = 0; i < f.rows.size(); ++i) {
    std::string why = v.predictions[i].reason;
    if (why.rfind(skipped, 0) == 0) why = why.substr(skipped.size());
    if (v.predictions[i].skipped && ++n_unknown <= 5)
      unknown += fmt::format("{}line {}: {}", unknown.empty() ? "" : "; ", f.rows[i].line, why);
  }
  if (n_unknown > 0)
    throw Error(fmt::format("{}: {} row(s) name an id the catalog lacks: {}{}", o.file, n_unknown,
                            unknown, n_unknown > 5 ? "; ..." : ""));
  const Format fmt_ = parse_format(o.out.format);

  Report rep;
  rep.title = fmt::format("validate-perf: {} ({} rows)", o.file, f.rows.size());
  rep.meta = output_meta();

  if (fmt_ == Format::csv) {
    // One row per input row, in input order: every input column, then predicted, error_pct, reason.
    Table t{"rows", "", f.header, {}, {}};
    t.columns.insert(t.columns.end(), {"predicted", "error_pct", "reason", "split"});
    for (std::size_t i = 0; i < f.rows.size(); ++i) {
      std::vector<Cell> row;
      for (const auto& c : f.rows[i].raw) row.emplace_back(c);
      const auto& p = v.predictions[i];
      row.push_back(p.predicted ? Cell(*p.predicted) : Cell());
      row.push_back(p.predicted ? Cell(p.error_pct) : Cell());
      row.push_back(Cell(p.reason));
      row.push_back(Cell(split_name(f.rows[i].split)));
      t.add(std::move(row));
    }
    rep.tables.push_back(std::move(t));
    emit(rep, o.out);
    return;
  }

  Table rows{"rows",
             "Predicted vs measured",
             {"line", "model", "gpu", "n", "precision", "engine", "in", "out", "conc", "metric",
              "measured", "predicted", "error %", "bound", "split"},
             {},
             {}};
  Json jr = Json::array();
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
      row[f.header[c]] = r.raw[c];
    row["line"] = r.line;
    row["concurrency_used"] = p.concurrency_used;
    row["predicted"] = p.predicted ? Json(*p.predicted) : Json(nullptr);
    row["error_pct"] = p.predicted ? Json(p.error_pct) : Json(nullptr);
    row["reason"] = p.reason;
    row["skipped"] = p.skipped;
    row["split"] = split_name(r.split);
    row["source_family"] = r.source_family;
    row["bound"] = p.bound;
    jr.push_back(row);
  }
  rep.tables.push_back(rows);

  rep.tables.push_back(summary_table("summary", "Absolute percentage error per metric", "",
                                     v.per_metric, &v.overall, rep.json["summary"]));
  rep.tables.push_back(summary_table("by_split",
                                     "Per split: constants may be fitted on `fit` rows only; "
                                     "`holdout` is the number to quote",
                                     "split", v.per_split, nullptr, rep.json["by_split"]));
  rep.tables.push_back(summary_table("by_family", "Per source family", "family", v.per_family,
                                     nullptr, rep.json["by_family"]));
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
  add_output_options(*app, o->out);
  app->callback([o] { run_validate(*o); });
}

const RegisterCommand reg("validate-perf", setup);

}  // namespace
}  // namespace moeplan::cli
