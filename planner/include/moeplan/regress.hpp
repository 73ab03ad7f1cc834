// Catalog regression (docs/plan.md § regress): re-plan every example scenario,
// compare with its committed expected output, and name each changed figure
// (path, old, new) together with the catalog fields that moved it (the
// recorded inputs whose values differ). Users run it in their own CI on their
// own catalogs.
#pragma once

#include <string>
#include <vector>

#include "moeplan/catalog.hpp"
#include "moeplan/json_read.hpp"

namespace moeplan::regress {

struct Change {
  std::string path;  // readable path: /candidates[glm-5.2 | 8×h200 | fp8]/cost_per_mtok_output/own
  Json old_value, new_value;  // null when absent
};

struct MovedInput {
  std::string
      name;  // "prices.json/hardware/8x H200 SXM complete system (reseller listings)/price_low"
  std::string source;  // catalog file + entry (or scenario path)
  Json old_value, new_value;
};

struct ExampleResult {
  std::string scenario;  // path
  std::string expected;  // path
  bool missing_expected = false;
  bool updated = false;
  std::string error;  // the plan failed
  std::vector<Change> changes;
  // Per changed candidate id (or "" for scenario-wide), the inputs that moved.
  std::vector<std::pair<std::string, std::vector<MovedInput>>> causes;
  bool ok() const { return !missing_expected && error.empty() && changes.empty(); }
};

// Keys ignored at the top level: provenance (tool version, git SHA, catalog hash, command line).
bool ignored_key(const std::string& key);

// Structural diff. Numbers compare with relative tolerance `rel_tol` (absolute
// 1e-12 near zero); arrays of objects with "id" (or "name") match by that key,
// other arrays by index.
std::vector<Change> diff(const Json& expected, const Json& actual, double rel_tol = 1e-6);

// Inputs recorded per candidate (candidates[].inputs) and scenario-wide
// (assumptions) whose values differ between the two outputs.
std::vector<std::pair<std::string, std::vector<MovedInput>>> moved_inputs(const Json& expected,
                                                                          const Json& actual,
                                                                          double rel_tol = 1e-6);

// The plan output (as `moeplan plan --format json` prints it) for one scenario.
std::string plan_json_text(const std::string& scenario_path, const Catalog& cat);

struct Options {
  std::string examples_dir;
  bool update = false;
  double rel_tol = 1e-6;
};

// Scenarios are examples_dir/plan-*.json, expected outputs examples_dir/expected/<same name>.
std::vector<ExampleResult> run(const Options& o, const Catalog& cat);

// Human-readable report: one block per example with each changed figure and its causes.
std::string format_results(const std::vector<ExampleResult>& results);

}  // namespace moeplan::regress
