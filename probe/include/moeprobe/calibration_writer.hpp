// The calibration file and its JSON-lines log, written by the probe and read
// by the planner (planner/include/moeplan/calibration.hpp reads the same
// format without linking the probe). Schema: docs/probe.md, "Calibration file".
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "moeplan/json_read.hpp"
#include "moeprobe/backend.hpp"
#include "moeprobe/measure.hpp"

namespace moeprobe {

inline constexpr int kCalibrationSchemaVersion = 1;
inline constexpr const char* kCalibrationSchema = "moeplan-calibration";
inline constexpr const char* kProbeVersion = "1.0.0";

// One measurement (one op on one shape at one token count).
struct Row {
  std::string op;            // triad, gemm, moe.router, …, layer.prefill (docs/probe.md)
  std::string shape;         // shape key, e.g. "attn.qkv:5120x2048"
  std::string dtype;         // fp32 | bf16
  std::string distribution;  // balanced | power_law:ALPHA | "" when routing-free
  int tokens = 0;            // M, batch B (decode) or P (prefill); 0 for triad
  long long context = 0;     // KV length L for attention/layer rows, else 0
  Stats time;                // seconds
  double bytes = 0, flops = 0;
  std::optional<double> roofline_s, util;             // against the catalog device peaks
  double roofline_measured_s = 0, util_measured = 0;  // against the measured bandwidth
  double gb_s = 0, tflops = 0;                        // achieved
  int experts_touched = -1;  // MoE rows: experts with >= 1 token (per layer for layer rows)
  bool verified = false;
  double max_err = 0;
  std::string op_class() const;  // bandwidth, gemm, moe_router, …, layer_prefill
  std::string key() const;       // op|shape|dtype|distribution|tokens|context
};

moeplan::Json row_to_json(const Row& r);
Row row_from_json(const moeplan::JsonView& v);  // validates; throws InputError

// JSON-lines log: line 1 {"type":"header","config":…}, then {"type":"row",…}
// per measurement, flushed as measured. read_log returns the rows of a log
// whose config equals `config` (a truncated last line is ignored) and throws
// moeplan::Error when the log belongs to a different configuration.
class RowLog {
 public:
  RowLog(std::string path, const moeplan::Json& config, bool resume);
  const std::vector<Row>& resumed() const { return resumed_; }
  void append(const Row& r);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::vector<Row> resumed_;
};

struct DecodeStep {
  int tokens = 0;
  long long context = 0;
  double layer_s = 0;        // one MoE decoder layer (p50)
  double dense_layer_s = 0;  // one dense layer (0 when the model has none measured)
  double stack_s = 0;        // all model layers: moe_layers*layer_s + dense_layers*dense_layer_s
};

// What the machine did while a run measured (issue #13).
struct RunConditions {
  // 1-minute load averages (getloadavg) at the start and end of the run and
  // the highest seen after any timed cell; negative = not readable.
  double load_start = -1, load_end = -1, load_max = -1;
  int cpus = 0;                    // online CPUs: the limit for the load average
  std::optional<int> clock_drops;  // timed cells whose clock dropped; nullopt = not measured
  std::string clock_drops_note;    // how they were (or why they were not) measured
};

// 1-minute load average now; negative when the system does not report it.
double load_average_now();

// The build's compiler, build type, sanitizers and CUDA (compile definitions
// from probe/CMakeLists.txt).
moeplan::Json build_flags_json();

// The calibration file's `quality` section: p90/p50 per row (in row order),
// the run conditions, the build flags and the verdict `noisy` with its
// reasons, judged by the planner's own rule (moeplan/calibration_quality.hpp).
moeplan::Json quality_json(const std::vector<Row>& rows, const RunConditions& run);

// Builds the calibration document (fits included) from the header parts and rows.
moeplan::Json build_calibration(const moeplan::Json& header_probe, const DeviceIdentity& id,
                                const std::string& catalog_device_id,
                                std::optional<double> catalog_bw_gb_s, const moeplan::Json& model,
                                const moeplan::Json& config, const std::vector<Row>& rows,
                                const std::vector<DecodeStep>& steps);

}  // namespace moeprobe
