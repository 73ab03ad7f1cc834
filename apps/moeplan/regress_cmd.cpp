// `moeplan regress`: re-plan every example and compare with its expected
// output; print each changed figure and the catalog fields that moved it;
// exit non-zero on any difference. `--update` rewrites the expected outputs.
#include <filesystem>
#include <iostream>
#include <memory>

#include "cli.hpp"
#include "moeplan/errors.hpp"
#include "moeplan/regress.hpp"

namespace {

struct RegressOptions {
  std::string data, examples;
  bool update = false;
  double rel_tol = 1e-6;
};

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
  std::cout << regress::format_results(results);
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
  sub->callback([opts] { run(*opts); });
}

const moeplan::cli::RegisterCommand reg("regress", setup);

}  // namespace
