#include "moeprobe/fit.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>

namespace moeprobe {

namespace {
// Weighted least squares of y ~ [1, x] (weights w); returns {a, b}.
Eigen::Vector2d wls(const std::vector<double>& x, const std::vector<double>& y,
                    const std::vector<double>& w) {
  const Eigen::Index n = static_cast<Eigen::Index>(x.size());
  Eigen::MatrixXd A(n, 2);
  Eigen::VectorXd b(n);
  for (Eigen::Index i = 0; i < n; ++i) {
    const double sw = std::sqrt(w[static_cast<std::size_t>(i)]);
    A(i, 0) = sw;
    A(i, 1) = sw * x[static_cast<std::size_t>(i)];
    b(i) = sw * y[static_cast<std::size_t>(i)];
  }
  return A.colPivHouseholderQr().solve(b);
}
}  // namespace

LineFit fit_line(const std::vector<double>& x, const std::vector<double>& y) {
  LineFit f;
  f.points = static_cast<int>(std::min(x.size(), y.size()));
  if (f.points == 0) return f;
  if (f.points == 1) {
    f.a = y[0];
    return f;
  }
  const Eigen::Vector2d ab = wls(x, y, std::vector<double>(x.size(), 1.0));
  f.a = ab(0);
  f.b = ab(1);
  double ss = 0;
  for (int i = 0; i < f.points; ++i) {
    const double r = y[static_cast<std::size_t>(i)] - (f.a + f.b * x[static_cast<std::size_t>(i)]);
    ss += r * r;
  }
  f.rms = std::sqrt(ss / f.points);
  return f;
}

LatencyFit fit_latency(const std::vector<double>& bytes, const std::vector<double>& seconds) {
  LatencyFit f;
  const LineFit l = fit_line(bytes, seconds);
  f.points = l.points;
  f.rms = l.rms;
  if (l.points >= 2 && l.b > 0) {
    f.step_latency_s = std::max(0.0, l.a);
    f.bandwidth_gb_s = 1e-9 / l.b;
  } else if (l.points >= 1) {
    // Degenerate: all time attributed to bytes.
    double bsum = 0, tsum = 0;
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      bsum += bytes[i];
      tsum += seconds[i];
    }
    f.bandwidth_gb_s = tsum > 0 ? bsum / tsum * 1e-9 : 0;
  }
  return f;
}

double fit_plateau(const std::vector<double>& flops, const std::vector<double>& seconds) {
  double best = 0;
  for (std::size_t i = 0; i < flops.size(); ++i)
    if (seconds[i] > 0) best = std::max(best, flops[i] / seconds[i]);
  const LineFit l = fit_line(flops, seconds);
  if (l.points >= 3 && l.b > 0) {
    const double p = 1.0 / l.b;
    // A fit beyond what was ever achieved by 2x means the rows were not compute-bound.
    if (p <= 2 * best) return p;
  }
  return best;
}

SaturationFit fit_saturation(const std::vector<double>& tokens, const std::vector<double>& eff) {
  SaturationFit f;
  std::vector<double> x, y, w;
  for (std::size_t i = 0; i < std::min(tokens.size(), eff.size()); ++i)
    if (tokens[i] > 0 && eff[i] > 0) {
      x.push_back(1.0 / tokens[i]);
      y.push_back(1.0 / eff[i]);
      w.push_back(eff[i] * eff[i] * eff[i] *
                  eff[i]);  // d(1/e) = de/e^2 -> weight e^4 on squared residuals
    }
  f.points = static_cast<int>(x.size());
  if (f.points == 0) return f;
  if (f.points == 1) {
    f.e_max = 1.0 / y[0];
    return f;
  }
  const Eigen::Vector2d ab = wls(x, y, w);
  if (ab(0) > 0) {
    f.e_max = 1.0 / ab(0);
    f.n_half = std::max(0.0, ab(1) * f.e_max);
  } else {
    f.e_max = *std::max_element(eff.begin(), eff.end());
    f.n_half = 0;
  }
  double ss = 0;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const double r = eff[i] - f(tokens[i]);
    ss += r * r;
  }
  f.rms = std::sqrt(ss / static_cast<double>(tokens.size()));
  return f;
}

}  // namespace moeprobe
