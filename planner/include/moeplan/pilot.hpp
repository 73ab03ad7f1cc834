// Pilot files (docs/load.md §Feedback into the plan): the JSON `moeprobe load
// --out` writes after loading a rented build. The planner reads the FILE
// FORMAT only — it never links the probe. `moeplan plan --pilot FILE` replaces
// the matching candidate's modelled throughput, TTFT and TPOT with the
// measured ones (evidence `measured`) and keeps both for the report;
// `moeplan validate-perf FILE.json` turns the load points into benchmark rows.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "moeplan/json_read.hpp"
#include "moeplan/report.hpp"

namespace moeplan {
struct BenchmarkFile;
struct Catalog;
namespace plan {
struct Candidate;
struct PlanScenario;
}  // namespace plan
}  // namespace moeplan

namespace moeplan::pilot {

struct LoadPoint {
  std::optional<long long> concurrency;  // closed loop
  std::optional<double> rate;            // open loop, requests/s
  long long requests = 0, completed = 0;
  double output_tokens_per_s = 0, requests_per_s = 0, goodput = 0;
  std::optional<double> ttft_p50_ms, ttft_p90_ms, tpot_p50_ms, tpot_p90_ms;
  double mean_prompt_tokens = 0, mean_output_tokens = 0;
  std::string label() const;  // "c=8" | "rate=2/s"
};

struct GoNoGoRow {
  int check = 0;
  std::string name, status, measured, required, note;
};

struct PilotFile {
  std::string file;
  std::string model, device, precision, engine;  // the build measured (`--build`)
  int gpus = 0;
  std::optional<long long> input_tokens;  // asked (absent: prompts from a file)
  long long output_tokens = 0;
  std::string url;
  std::vector<LoadPoint> points;
  std::vector<GoNoGoRow> go_no_go;
};

// Throws InputError naming the file and JSON path: not a pilot file, a pilot_version newer than
// this reader, a key moeprobe load does not write (with the closest known one), no /build, a
// load point without its fields, a percentile ≤ 0 or out of order, a share outside [0, 1], a
// count below 0 or above the point's requests. Reads the format only (no catalog).
PilotFile read_pilot(const std::string& path);
PilotFile parse_pilot(const Json& doc, const std::string& file);

// The ids a pilot's build names (moeprobe load --build MODEL,SYSTEM_OR_DEVICE,GPUS,PRECISION and
// --engine; an empty engine is none) against the catalog: the member that fails ("model",
// "device", "precision" or "engine") and the catalog's own message with the closest known ids, or
// nothing. A pilot is matched to plan candidates by these ids, so an unknown one would be recorded
// and then never match. moeprobe load checks --build with it, the pilot reader /build.
struct BuildIdProblem {
  std::string member, message;
};
std::optional<BuildIdProblem> build_id_problem(const std::string& model, const std::string& device,
                                               const std::string& precision,
                                               const std::string& engine, const Catalog& cat);

// Refuses a /build the catalog cannot place (build_id_problem), as InputError at /build/MEMBER.
// `plan --pilot` and validate-perf call it before using the file.
void check_build(const PilotFile& p, const Catalog& cat);

// Predicted vs measured for one candidate (kept for the plan's report).
struct Comparison {
  std::string candidate, point, note;
  bool applied = false;  // the measured figures replaced the model's
  long long predicted_concurrency = 0;
  std::optional<long long> measured_concurrency;
  double predicted_tok_s = 0, predicted_ttft_ms = 0, predicted_tpot_ms = 0;
  std::optional<double> measured_tok_s, measured_ttft_ms, measured_tpot_ms;
};

// Does this candidate describe the build the pilot measured (model, device, GPUs, precision)?
bool matches(const PilotFile& p, const plan::Candidate& c);

// For the matching candidate: picks the load point with the highest output tok/s whose P90
// TTFT and TPOT meet the scenario's SLA and, when the pilot ran at the scenario's prompt
// lengths (±20%), replaces throughput, TTFT, TPOT, per-user tok/s (and concurrency for a
// closed-loop point), recomputes nodes and utilization and marks the evidence `measured`.
// Returns nothing for another candidate.
std::optional<Comparison> apply_pilot(plan::Candidate& c, const PilotFile& p,
                                      const plan::PlanScenario& sc);

// The plan report's pilot tables: predicted vs measured, and the pilot's go/no-go results.
std::vector<Table> pilot_tables(const PilotFile& p, const std::vector<Comparison>& cmp);
Json pilot_json(const PilotFile& p, const std::vector<Comparison>& cmp);

// validate-perf: one benchmark row per closed-loop point and metric (output_tok_s, ttft_ms and
// tpot_ms at P50), in the CSV format validate-perf reads, so the same checks apply.
// read_pilot_benchmarks checks the build against `cat` first (check_build).
std::string to_benchmark_csv(const PilotFile& p);
BenchmarkFile read_pilot_benchmarks(const std::string& path, const Catalog& cat);

}  // namespace moeplan::pilot
