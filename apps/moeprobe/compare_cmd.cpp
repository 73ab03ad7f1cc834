// moeprobe compare CAL.json [CAL2.json …] --anchor ANCHOR.json: the probe's op
// times next to production kernels on the same GPU and shapes, with the
// targets of docs/probe.md checked per row. Reads files only; no GPU needed.
#include <fmt/format.h>

#include <iostream>
#include <memory>

#include "moeplan/report.hpp"
#include "moeprobe/gpu_compare.hpp"
#include "probe_cli.hpp"

namespace moeprobe::cli {

namespace {

struct CompareOptions {
  std::vector<std::string> cals;
  std::string anchor, format = "table", out;
};

moeplan::Cell opt_cell(const std::optional<double>& v, int digits) {
  return v ? moeplan::Cell(*v, digits) : moeplan::Cell();
}

void run(const CompareOptions& o, int& exit_code) {
  std::vector<CalFile> cals;
  for (const auto& f : o.cals) cals.push_back(read_cal_file(moeplan::parse_json_file(f), f));
  const auto anchor = read_anchor(moeplan::parse_json_file(o.anchor), o.anchor);
  const Comparison cmp = compare_with_anchor(cals, anchor);

  moeplan::Report rep;
  rep.title = "Probe ops against production kernels (" + o.anchor + ")";
  moeplan::Table t{"compare",
                   "",
                   {"target", "op", "shape", "tokens", "context", "probe us", "production us",
                    "value", "goal", "result", "note"},
                   {},
                   {"value: probe/production time, probe time in us (router), or the achieved "
                    "fraction of the probe's triad bandwidth / of the layer's byte floor"}};
  moeplan::Json rows = moeplan::Json::array();
  for (const auto& r : cmp.rows) {
    t.add({r.target, r.op, r.shape, r.tokens, r.context, opt_cell(r.probe_us, 1),
           opt_cell(r.production_us, 1), opt_cell(r.value, 2), goal_text(r), r.status, r.note});
    moeplan::Json j{{"target", r.target}, {"op", r.op},           {"shape", r.shape},
                    {"tokens", r.tokens}, {"context", r.context}, {"goal", goal_text(r)},
                    {"status", r.status}, {"note", r.note}};
    j["probe_us"] = r.probe_us ? moeplan::Json(*r.probe_us) : moeplan::Json();
    j["production_us"] = r.production_us ? moeplan::Json(*r.production_us) : moeplan::Json();
    j["value"] = r.value ? moeplan::Json(*r.value) : moeplan::Json();
    rows.push_back(j);
  }
  rep.tables.push_back(t);
  rep.messages.push_back(
      fmt::format("{} pass, {} fail, {} not measured", cmp.passed, cmp.failed, cmp.missing));
  for (const auto& k : cmp.skipped_kinds)
    rep.messages.push_back("anchor kind '" + k + "' has no target: not compared");
  rep.json["rows"] = rows;
  rep.json["passed"] = cmp.passed;
  rep.json["failed"] = cmp.failed;
  rep.json["not_measured"] = cmp.missing;
  rep.meta.tool_version = moeplan::tool_version();
  rep.meta.git_sha = moeplan::git_sha();
  rep.meta.command_line = global().command_line;
  const std::string text = moeplan::render(rep, moeplan::parse_format(o.format));
  if (o.out.empty())
    std::cout << text;
  else
    moeplan::write_file_atomic(o.out, text);
  // Missed performance targets are findings, not errors: the table says them.
  exit_code = 0;
}

}  // namespace

void setup_compare(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<CompareOptions>();
  CLI::App* sub = app.add_subcommand(
      "compare", "Probe op times against production figures (an anchor file), per target");
  sub->add_option("calibrations", o->cals, "Calibration files written by moeprobe run")
      ->required()
      ->check(CLI::ExistingFile);
  sub->add_option("--anchor", o->anchor,
                  "Production figures: {\"rows\": [{kind, shape, tokens, context, p50_us}]}")
      ->required()
      ->check(CLI::ExistingFile);
  sub->add_option("--format", o->format, "table|json|csv|md")
      ->check(CLI::IsMember({"table", "json", "csv", "md"}));
  sub->add_option("--out", o->out, "Write to FILE (atomically) instead of stdout");
  sub->callback([o, &exit_code] { run(*o, exit_code); });
}

}  // namespace moeprobe::cli
