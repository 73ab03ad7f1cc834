// `moeplan cost SCENARIO.json`: TCO and buy / rent / API break-even
// (docs/cost.md, docs/scenario.md). Reads the scenario, runs the cost model,
// renders the report in the chosen format and optionally an SVG chart.
#include <iostream>
#include <memory>

#include "cli.hpp"
#include "moeplan/cost.hpp"
#include "moeplan/errors.hpp"
#include "moeplan/scenario.hpp"
#include "moeplan/svg_chart.hpp"
#include "moeplan/xlsx.hpp"

namespace {

struct CostOptions {
  std::string scenario;
  moeplan::cli::OutputOptions out;
  std::string chart;
};

void run_cost(const CostOptions& o) {
  using namespace moeplan;
  if (o.out.format == "xlsx" && o.out.output.empty())
    throw Error("--format xlsx writes a binary workbook: give --output FILE.xlsx");

  // The catalog is loaded only when the scenario refers to it, so a
  // self-contained scenario runs without data/.
  cli::global().inputs.push_back(o.scenario);
  bool used_catalog = false;
  const CatalogProvider catalog = [&]() -> const Catalog& {
    used_catalog = true;
    return cli::catalog();
  };
  const cost::CostInputs in = load_scenario(o.scenario, catalog);
  const cost::CostAnalysis a = cost::analyze(in);
  Report r = cost::make_cost_report(in, a, o.out.format == "csv");
  // The reader bounds every input; this catches what their combination can still overflow
  // (a tiny token rate under a large cost), which would otherwise print "nan" and exit 0.
  if (const auto bad = cost::first_non_finite(r.json))
    throw InputError(o.scenario, "/",
                     "the inputs give a result that is not a finite number (report " + *bad +
                         "): check the magnitudes of the prices and the demand");
  r.meta.tool_version = tool_version();
  r.meta.git_sha = git_sha();
  r.meta.catalog_hash = used_catalog ? cli::catalog().content_hash : "";
  r.meta.command_line = cli::global().command_line;

  // Every file of the run is checked first and written as a set (all or none).
  OutputSet set = cli::output_set();
  std::string stdout_text;
  if (o.out.format == "xlsx") {
    set.add(
        o.out.output,
        [&r](const std::string& path) {
          xlsx::write_report(r, path,
                             {{"Summary",
                               {"summary", "comparison", "thresholds", "buy_breakdown", "people",
                                "provider", "routing", "power_only"},
                               true},
                              {"Monthly", {"monthly"}, false},
                              {"Flexion", {"flexion"}, false},
                              {"Assumptions", {"assumptions"}, false}});
        },
        "--output");
  } else if (!o.out.output.empty()) {
    set.add(o.out.output, render(r, parse_format(o.out.format)), "--output");
  } else {
    stdout_text = render(r, parse_format(o.out.format));
  }
  if (!o.chart.empty()) {
    svg::ChartPage page = cost::make_cost_chart(in, a);
    page.footer = provenance_line(r.meta) + ", scenario " + o.scenario;
    set.add(o.chart, svg::render_svg(page), "--chart");
  }
  set.commit();
  std::cout << stdout_text;
}

void setup(CLI::App& parent) {
  auto opts = std::make_shared<CostOptions>();
  CLI::App* sub = parent.add_subcommand(
      "cost", "TCO and buy / rent / API break-even from a scenario file (docs/scenario.md)");
  sub->add_option("scenario", opts->scenario, "Scenario JSON file")->required();
  moeplan::cli::add_output_options(*sub, opts->out, {"table", "json", "csv", "md", "xlsx"});
  sub->add_option("--chart", opts->chart,
                  "Also write an SVG chart: cumulative cost by month and cost per token "
                  "against utilization");
  sub->callback([opts] { run_cost(*opts); });
}

moeplan::cli::RegisterCommand reg("cost", setup);

}  // namespace
