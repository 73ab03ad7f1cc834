// `moeprobe compare`: the probe's op times next to production kernels measured
// on the same GPU and shapes (an "anchor" file, e.g. the anchor-torch.json of a
// GPU run: rows of {kind, shape, tokens, context, p50_us}), with the targets of
// docs/probe.md ("Performance targets") checked row by row. Pure: reads JSON
// documents, returns rows; the CLI prints them. No GPU needed.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "moeplan/json_read.hpp"

namespace moeprobe {

// One calibration file as `compare` needs it (rows keep their shape keys).
struct CalRow {
  std::string op, shape;
  int tokens = 0;
  long long context = 0;
  double p50_s = 0, gb_s = 0, util_measured = 0;
};
struct CalFile {
  std::string file, model;
  double bandwidth_gb_s = 0;  // fits.bandwidth_gb_s (the probe's triad)
  std::vector<CalRow> rows;
};
// Throws moeplan::InputError naming the file and JSON path on a malformed file.
CalFile read_cal_file(const moeplan::Json& doc, const std::string& file);

struct AnchorRow {
  std::string kind, shape;
  int tokens = 0;
  long long context = 0;
  double p50_us = 0;
};
// Validates the anchor schema ({"rows": [{kind, shape, tokens, context, p50_us, …}]}).
std::vector<AnchorRow> read_anchor(const moeplan::Json& doc, const std::string& file);

// What a comparison row checks.
enum class GoalKind {
  ratio_at_most,      // probe time / production time <= value
  time_at_most_us,    // probe time <= value microseconds
  fraction_at_least,  // achieved fraction (of the triad, or of the byte floor) >= value
};
struct CompareRow {
  std::string target;  // e.g. "attention decode vs production"
  std::string op, shape;
  int tokens = 0;
  long long context = 0;
  std::optional<double> probe_us, production_us;
  std::optional<double> value;  // ratio (probe/production) or achieved fraction
  GoalKind goal = GoalKind::ratio_at_most;
  double goal_value = 0;
  std::string status;  // "pass", "FAIL", "not measured"
  std::string note;
};
std::string goal_text(const CompareRow& r);

// Every anchor row with a rule (attention decode 1.3x, experts 1.1x, router
// <= 30 us up to batch 256) against the calibration row of the same op, shape
// and point, then the calibration-only targets (attention >= 70% of the triad
// once batch x context >= 64k; experts >= 70% of the triad at <= 16 tokens;
// MoE decode layer at batch 1 >= 60% of its byte floor). Anchor kinds without a
// rule (e.g. "copy") are left out and listed in `skipped_kinds`.
struct Comparison {
  std::vector<CompareRow> rows;
  std::vector<std::string> skipped_kinds;
  int passed = 0, failed = 0, missing = 0;
};
Comparison compare_with_anchor(const std::vector<CalFile>& cals,
                               const std::vector<AnchorRow>& anchor);

}  // namespace moeprobe
