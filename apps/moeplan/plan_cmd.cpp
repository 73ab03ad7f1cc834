// `moeplan plan SCENARIO.json`: the procurement plan (docs/plan.md) — every
// model × build candidate with fit, SLA throughput, nodes, utilization, cost
// per 1M output tokens owned / rented / API with P10–P90 ranges, risks and
// evidence, a ranked table and a recommendation with its reasoning.
#include <functional>
#include <iostream>
#include <memory>

#include "cli.hpp"
#include "moeplan/errors.hpp"
#include "moeplan/menu.hpp"
#include "moeplan/pilot.hpp"
#include "moeplan/plan.hpp"
#include "moeplan/xlsx.hpp"

namespace {

struct PlanCmdOptions {
  std::string scenario;
  moeplan::cli::OutputOptions out;
  std::string chart, pilot;
  int samples = 0;
};

// Every file of the run is checked first (inputs refused) and written as a set (all or
// none); the report goes to stdout only after that. `chart` renders the --chart SVG.
void write_outputs(const moeplan::Report& rep, const PlanCmdOptions& o,
                   std::vector<moeplan::xlsx::SheetSpec> sheets,
                   const std::function<std::string()>& chart) {
  using namespace moeplan;
  OutputSet set = cli::output_set();
  std::string stdout_text;
  if (o.out.format == "xlsx") {
    set.add(
        o.out.output,
        [&rep, sheets = std::move(sheets)](const std::string& path) {
          xlsx::write_report(rep, path, sheets);
        },
        "--output");
  } else if (!o.out.output.empty()) {
    set.add(o.out.output, render(rep, parse_format(o.out.format)), "--output");
  } else {
    stdout_text = render(rep, parse_format(o.out.format));
  }
  if (!o.chart.empty()) set.add(o.chart, chart(), "--chart");
  set.commit();
  std::cout << stdout_text;
}

void run(const PlanCmdOptions& o) {
  using namespace moeplan;
  if (o.out.format == "xlsx" && o.out.output.empty())
    throw Error("--format xlsx writes a binary workbook: give --output FILE.xlsx");
  cli::global().inputs.push_back(o.scenario);
  if (!o.pilot.empty()) cli::global().inputs.push_back(o.pilot);
  const Catalog& cat = cli::catalog();
  if (menu::is_menu_file(o.scenario)) {  // a `workloads` list: the menu planner (docs/plan.md)
    // The menu has no predicted-vs-measured step; a pilot given to it used to be ignored.
    if (!o.pilot.empty())
      throw Error("--pilot: " + o.scenario +
                  " is a menu scenario (a workloads list), which does not use a pilot file; "
                  "give the pilot to a plan scenario of the measured build");
    const menu::MenuResult mr = menu::run_menu(menu::load_menu_scenario(o.scenario, cat), cat);
    Report rep = menu::make_menu_report(mr);
    rep.meta = cli::output_meta();
    write_outputs(
        rep, o,
        {{"Menu", {"allocation", "workloads", "fleet"}, true}, {"Systems", {"systems"}, false}},
        [&] { return menu::render_fleet_svg(mr, provenance_line(rep.meta)); });
    return;
  }
  const plan::PlanScenario sc = plan::load_plan_scenario(o.scenario, cat);
  plan::PlanOptions po;
  po.threads = cli::global().threads;
  if (o.samples > 0) po.samples = o.samples;
  if (!o.pilot.empty()) {
    po.pilot = pilot::read_pilot(o.pilot);
    pilot::check_build(*po.pilot, cat);
  }
  const plan::PlanResult r = plan::run_plan(sc, cat, po);
  Report rep = plan::make_plan_report(r);
  if (po.pilot) {  // predicted vs measured, and the pilot's go/no-go (docs/load.md)
    std::vector<pilot::Comparison> cmp;
    for (const auto& c : r.candidates)
      if (c.pilot) cmp.push_back(*c.pilot);
    for (auto& t : pilot::pilot_tables(*po.pilot, cmp)) rep.tables.push_back(std::move(t));
    rep.json["pilot"] = pilot::pilot_json(*po.pilot, cmp);
  }
  rep.meta = cli::output_meta();
  rep.meta.pilot_file = o.pilot;
  write_outputs(rep, o,
                {{"Summary", {"decision", "go_no_go"}, true},
                 {"Candidates", {"candidates", "risks", "evidence"}, false},
                 {"Assumptions", {"assumptions"}, false}},
                [&] {
                  svg::ChartPage page = plan::make_plan_chart(r);
                  page.footer = provenance_line(rep.meta) + "; " + page.footer;
                  return svg::render_svg(page);
                });
  // The report says why; the exit code lets a script tell "nothing to buy" from a plan.
  if (r.recommendation.option == "none")
    throw CheckFailed("plan: no build or API can be recommended (" +
                      (r.recommendation.reasons.empty() ? std::string("see the report")
                                                        : r.recommendation.reasons.back()) +
                      ")");
}

void setup(CLI::App& parent) {
  auto opts = std::make_shared<PlanCmdOptions>();
  CLI::App* sub = parent.add_subcommand(
      "plan", "Procurement plan: candidates, costs, risks and a recommendation (docs/plan.md)");
  sub->add_option("scenario", opts->scenario,
                  "Plan scenario JSON (docs/scenario.md § plan scenario)")
      ->required();
  moeplan::cli::add_output_options(*sub, opts->out, {"table", "json", "csv", "md", "xlsx"});
  sub->add_option("--chart", opts->chart,
                  "Also write an SVG: cost per token against utilization per candidate, and the "
                  "chosen option's cumulative cost");
  sub->add_option("--pilot", opts->pilot,
                  "Pilot file from moeprobe load --out: its measured figures replace the model's "
                  "for that build (docs/load.md)")
      ->check(CLI::ExistingFile);
  // --threads is global (apps/moeplan/main.cpp): accepted before or after `plan`.
  sub->add_option("--samples", opts->samples, "Override the scenario's Monte Carlo sample count")
      ->check(CLI::Range(1, 1000000));
  sub->callback([opts] { run(*opts); });
}

const moeplan::cli::RegisterCommand reg("plan", setup);

}  // namespace
