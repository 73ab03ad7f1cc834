// Reader for the probe's calibration file (docs/probe.md, "Calibration file").
// The planner depends on this FILE FORMAT only, never on probe code.
//
//   const Calibration c = load_calibration("calibration.json");   // throws InputError
//   c.bandwidth_gb_s();                 // measured copy/triad bandwidth, GB/s (10^9 B/s)
//   c.compute_plateau_tflops("bf16");   // sustained dense GEMM rate, TFLOP/s (nullopt: not
//   measured) c.step_latency_s();                 // per-step constant latency, seconds
//   c.efficiency("moe_fused", 8);       // fraction of the measured roofline reached at 8 tokens
//   c.decode_step_s(8);                 // whole-layer-stack decode step at batch 8, seconds
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace moeplan {

// Device identity recorded by the probe (strings empty / numbers 0 when not readable).
struct CalibrationDevice {
  std::string name, kind, catalog_id, host, driver, cuda, simd;
  double memory_gb = 0;
  int cores = 0, threads = 0;
  std::map<std::string, std::string> libraries;
  std::map<std::string, double> clocks_mhz;
};

// One measured row (see docs/probe.md for every field).
struct CalibrationRow {
  std::string op, shape, dtype, distribution;
  int tokens = 0;
  long long context = 0;
  double p50_s = 0, p10_s = 0, p90_s = 0;
  int samples = 0;
  double bytes = 0, flops = 0;
  std::optional<double> roofline_s, util;
  double roofline_measured_s = 0, util_measured = 0, gb_s = 0, tflops = 0;
  int experts_touched = -1;
  bool verified = false;
  double max_err = 0;
};

// Efficiency-vs-tokens curve of one op class: measured points (tokens ascending)
// and the fitted saturation curve e_max * n / (n + n_half).
struct EfficiencyCurve {
  std::vector<std::pair<double, double>> points;  // (tokens, efficiency)
  double e_max = 0, n_half = 0, rms = 0;
};

struct DecodeStepTime {
  int tokens = 0;
  long long context = 0;
  double layer_s = 0, dense_layer_s = 0, stack_s = 0;
};

class Calibration {
 public:
  std::string file;  // path it was loaded from
  int schema_version = 0;
  std::string created_utc, probe_version, git_sha, backend, build_warning;
  CalibrationDevice device;
  std::string model_id;
  int model_layers = 0;
  std::string dtype;  // the run's storage type
  std::vector<CalibrationRow> rows;
  std::map<std::string, EfficiencyCurve> curves;  // by op class
  std::vector<DecodeStepTime> decode_steps;       // tokens ascending
  // The probe's `quality` section (absent in files older than issue #13):
  // noisy = the machine was too noisy to trust, with the reasons it gave.
  bool has_quality = false, quality_noisy = false;
  std::vector<std::string> quality_reasons;

  // Measured bandwidth in GB/s (the probe's triad).
  double bandwidth_gb_s() const { return bandwidth_gb_s_; }
  // Measured / catalog bandwidth; nullopt when the run named no catalog device.
  std::optional<double> bandwidth_fraction() const { return bandwidth_fraction_; }
  // Per-step constant latency in seconds (intercept of t = t0 + bytes / BW).
  double step_latency_s() const { return step_latency_s_; }
  double effective_bandwidth_gb_s() const { return effective_bandwidth_gb_s_; }
  // Sustained dense compute per storage dtype in TFLOP/s; nullopt when not measured.
  std::optional<double> compute_plateau_tflops(const std::string& storage_dtype) const;
  const std::map<std::string, double>& compute_plateaus_tflops() const { return plateau_; }

  bool has_curve(const std::string& op_class) const { return curves.count(op_class) > 0; }
  // Efficiency of `op_class` (gemm, moe_router, moe_permute, moe_experts,
  // moe_combine, moe_fused, attention_decode, attention_prefill, layer_decode,
  // layer_prefill) at `tokens`: the measured value at a measured token count,
  // linear interpolation in tokens between measured counts, and the boundary
  // value held beyond them. Throws Error when the class was not measured.
  double efficiency(const std::string& op_class, double tokens) const;

  // Whole-layer-stack decode step (all model layers) at batch `tokens`, seconds,
  // interpolated like efficiency(); throws Error when no layer rows were measured.
  double decode_step_s(double tokens) const;

 private:
  friend struct CalibrationAccess;  // the reader (calibration.cpp)
  double bandwidth_gb_s_ = 0, step_latency_s_ = 0, effective_bandwidth_gb_s_ = 0;
  std::optional<double> bandwidth_fraction_;
  std::map<std::string, double> plateau_;
};

// Piecewise-linear interpolation through (x, y) points sorted by x: exact at the
// points, linear between, constant beyond the ends. Empty: throws Error.
double interpolate_clamped(const std::vector<std::pair<double, double>>& points, double x);

// Loads and validates a calibration file. Throws InputError naming the file,
// the JSON path, what was expected and what was found (wrong schema, newer
// schema_version, missing or mistyped fields, unknown keys, p10 > p50 > p90).
Calibration load_calibration(const std::string& path);
// Same, from text (file_label used in messages).
Calibration parse_calibration(const std::string& text, const std::string& file_label);

}  // namespace moeplan
