// `moeplan regress`: re-plan every example and compare with its expected
// output; print each changed figure and the catalog fields that moved it;
// exit non-zero on any difference. `--update` rewrites the expected outputs.
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>

#include "cli.hpp"
#include "moeplan/errors.hpp"
#include "moeplan/regress.hpp"
#include "moeplan/text_layout.hpp"

namespace {

struct RegressOptions {
  std::string data, examples;
  bool update = false;
  double rel_tol = 1e-6;
  std::string format = "table";
};

// --format json|csv|md: the results as a report (table: the readable text).
moeplan::Report regress_report(const std::vector<moeplan::regress::ExampleResult>& results) {
  using namespace moeplan;
  Report rep;
  rep.title = "Catalog regression";
  rep.meta = cli::output_meta();
  Table ex{"examples", "Examples", {"scenario", "status", "changes", "expected", "error"}, {}, {}};
  Table ch{"changes", "Changed figures", {"scenario", "path", "old", "new"}, {}, {}};
  Json arr = Json::array();
  for (const auto& r : results) {
    const std::string status = r.updated            ? "updated"
                               : r.ok()             ? "ok"
                               : !r.error.empty()   ? "error"
                               : r.missing_expected ? "missing"
                                                    : "changed";
    ex.add({r.scenario, status, r.changes.size(), r.expected, r.error});
    Json changes = Json::array();
    for (const auto& c : r.changes) {
      ch.add({r.scenario, c.path, c.old_value.dump(), c.new_value.dump()});
      changes.push_back({{"path", c.path}, {"old", c.old_value}, {"new", c.new_value}});
    }
    arr.push_back({{"scenario", r.scenario},
                   {"expected", r.expected},
                   {"status", status},
                   {"error", r.error},
                   {"changes", changes}});
  }
  rep.tables = {ex, ch};
  rep.json["examples"] = arr;
  return rep;
}

void run(const RegressOptions& o) {
  using namespace moeplan;
  if (!o.data.empty()) cli::global().data_dir = o.data;
  const Catalog& cat = cli::catalog();
  regress::Options ro;
  ro.examples_dir = o.examples.empty()
                        ? (std::filesystem::path(default_data_dir()) / ".." / "examples")
                              .lexically_normal()
                              .string()
                        : o.examples;
  ro.update = o.update;
  ro.rel_tol = o.rel_tol;
  const auto results = regress::run(ro, cat);
  if (o.format == "table") {
    // One wrapped line at a time, so long paths stay within the terminal.
    const std::size_t width = default_text_options().width;
    std::istringstream lines(regress::format_results(results));
    for (std::string line; std::getline(lines, line);) {
      const std::size_t lead = std::min(line.find_first_not_of(' '), line.size());
      for (const auto& l : text::wrap_hanging(line, width, lead + 4)) std::cout << l << "\n";
    }
    for (const auto& l : text::wrap_hanging(provenance_line(cli::output_meta()), width, 2))
      std::cout << l << "\n";
  } else {
    std::cout << render(regress_report(results), parse_format(o.format));
  }
  std::size_t failed = 0;
  for (const auto& r : results) failed += (!r.updated && !r.ok()) ? 1 : 0;
  if (failed) throw Error(std::to_string(failed) + " example(s) differ from their expected output");
}

void setup(CLI::App& parent) {
  auto opts = std::make_shared<RegressOptions>();
  CLI::App* sub = parent.add_subcommand(
      "regress",
      "Re-plan the examples and compare with their expected outputs (catalog regression)");
  sub->add_option("--data", opts->data, "Catalog directory (same as the global --data)");
  sub->add_option("--examples", opts->examples,
                  "Directory of plan-*.json scenarios (default: bundled examples/)");
  sub->add_flag("--update", opts->update,
                "Rewrite the expected outputs (atomically) instead of comparing");
  sub->add_option("--rel-tol", opts->rel_tol, "Relative tolerance for numbers")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  sub->add_option("--format", opts->format, "Output format")
      ->check(CLI::IsMember({"table", "json", "csv", "md"}))
      ->capture_default_str();
  sub->callback([opts] { run(*opts); });
}

const moeplan::cli::RegisterCommand reg("regress", setup);

}  // namespace
