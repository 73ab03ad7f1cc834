// The probe pipeline: plan the measurements for a model, verify each op against
// its reference, time it, log it, fit, and write the calibration file
// (`moeprobe run`); and the correctness-only pass (`moeprobe check`).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "moeplan/catalog.hpp"
#include "moeprobe/backend.hpp"
#include "moeprobe/calibration_writer.hpp"
#include "moeprobe/measure.hpp"

namespace moeprobe {

// A verification failure: the run stops, no calibration is written (exit 3).
class VerificationError : public moeplan::Error {
 public:
  using moeplan::Error::Error;
};
// Thrown by the stop_after test hook, as if the run had been interrupted.
class Interrupted : public moeplan::Error {
 public:
  using moeplan::Error::Error;
};

// Routing distribution: balanced (random router) or power_law:ALPHA (expert of
// rank r gets a selection-score bias -ALPHA * ln(1 + r); ranks a fixed shuffle).
struct Distribution {
  std::string name = "balanced";
  double alpha = 0;
  static Distribution parse(const std::string& s);  // throws moeplan::Error
  std::vector<float> bias(int experts, std::uint64_t seed) const;
};

struct RunOptions {
  DType dtype = DType::fp32;
  KvDType kv_dtype = KvDType::same;  // fp8: attention/layer rows with an e4m3 KV cache
  Distribution distribution;
  std::vector<int> tokens;         // empty: defaults (quick or full)
  std::vector<long long> context;  // KV lengths for decode rows
  std::vector<int> prefill;        // prefill lengths
  int layers = 1;                  // decoder layers run back to back in layer rows
  double memory_budget_gb = 0;     // 0: default (quick 1, full 4)
  bool quick = false;
  bool resume = false;
  std::string out = "calibration.json";
  std::string log;  // "" = out + ".log.jsonl"
  std::string command_line;
  bool progress = true;                 // progress bar (only when stderr is a terminal)
  std::optional<TimingOptions> timing;  // default from quick
  // Wall-time budget in seconds (0: none). The run is split into sections
  // (triad, GEMMs, MoE, attention, layers), each given a share of what is left
  // when it starts (budget_share_s); a cell gets its section's remaining time
  // over its remaining cells, and repetitions are trimmed to fit
  // (budget_timing); cells reached after their section's share is spent are
  // not measured. Both are recorded in the file (probe.budget and a note).
  double budget_s = 0;
  int stop_after = -1;                     // test hook: throw Interrupted after this many new rows
  std::function<void(const Row&)> on_row;  // called for every new measured row
  void apply_defaults();
};

// ---- wall-time budget (pure rules) ----
// Seconds a section of `cells` (weighted) cells may use when `remaining_s` are
// left for `remaining_cells` (weighted) cells: its proportional share.
double budget_share_s(double remaining_s, double cells, double remaining_cells);
// Timing options for one cell allowed `allowance_s` of wall time in all
// (verification and preparation included): the timed part gets at most a third
// of it; when that is less than t.min_seconds, min_seconds shrinks to it,
// min_reps to at most 5 (3 when the allowance is already spent), warm-up to at
// most 1, and *trimmed is set.
TimingOptions budget_timing(const TimingOptions& t, double allowance_s, bool* trimmed);

struct RunResult {
  std::vector<Row> rows;
  int resumed = 0;                       // rows taken from the log
  int trimmed = 0;                       // cells timed with fewer repetitions to fit --budget-s
  std::vector<std::string> out_of_time;  // cells not measured: --budget-s spent
  int skipped = 0;                       // cases skipped by the memory budget
  std::vector<std::string> notes;
  moeplan::Json calibration;
  std::string out_path;
};

// `device` (may be null): the catalog entry whose peaks give `util`.
RunResult run_probe(const moeplan::Model& m, const moeplan::Device* device, Backend& b,
                    RunOptions opt);

struct CheckRow {
  std::string op, shape, dtype;
  int tokens = 0;
  Check check;
};
struct CheckResult {
  std::vector<CheckRow> rows;
  bool ok() const;
};
// Correctness pass over every op at small token counts (1, 5, 17) and odd
// shapes, including experts with zero tokens. Never throws on a mismatch.
// kv = fp8: attention and layer checks use an e4m3 KV cache.
CheckResult run_check(const moeplan::Model& m, Backend& b, DType d, const Distribution& dist,
                      const std::function<void(const CheckRow&)>& on_row = {},
                      KvDType kv = KvDType::same);

}  // namespace moeprobe
