// Least-squares fits (Eigen) that turn calibration rows into the device-level
// scalars the planner uses (docs/probe.md, "Fits").
#pragma once

#include <vector>

namespace moeprobe {

// y = a + b x by least squares. rms = root-mean-square residual.
struct LineFit {
  double a = 0, b = 0, rms = 0;
  int points = 0;
};
LineFit fit_line(const std::vector<double>& x, const std::vector<double>& y);

// Per-step constant latency and effective bandwidth from t = t0 + bytes / BW
// (memory-bound rows). t0 clamped at >= 0; bw_gb_s = 1e-9 / b.
struct LatencyFit {
  double step_latency_s = 0;
  double bandwidth_gb_s = 0;
  double rms = 0;
  int points = 0;
};
LatencyFit fit_latency(const std::vector<double>& bytes, const std::vector<double>& seconds);

// Compute plateau from t = t0 + flops / P over compute-bound rows: P in FLOP/s.
// Falls back to the largest achieved rate when the fit is degenerate.
double fit_plateau(const std::vector<double>& flops, const std::vector<double>& seconds);

// Efficiency vs tokens: eff(n) = e_max * n / (n + n_half), fitted through the
// linearisation 1/eff = 1/e_max + (n_half/e_max) * (1/n), weighted by eff^2 so
// residuals are in eff units to first order.
struct SaturationFit {
  double e_max = 0, n_half = 0, rms = 0;
  int points = 0;
  double operator()(double n) const { return n <= 0 ? 0 : e_max * n / (n + n_half); }
};
SaturationFit fit_saturation(const std::vector<double>& tokens, const std::vector<double>& eff);

}  // namespace moeprobe
