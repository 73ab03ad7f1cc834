// Fits on synthetic data with known parameters, and timing statistics.
#include <catch2/catch.hpp>
#include <cmath>

#include "moeprobe/fit.hpp"
#include "moeprobe/measure.hpp"

using namespace moeprobe;

TEST_CASE("line and latency fits recover known parameters", "[probe][fit]") {
  std::vector<double> x, y;
  for (int i = 1; i <= 20; ++i) {
    x.push_back(i * 1e6);  // bytes
    y.push_back(5e-6 + i * 1e6 / 50e9 +
                ((i % 2) ? 1e-9 : -1e-9));  // 5 us + bytes / 50 GB/s, tiny noise
  }
  const LineFit l = fit_line(x, y);
  CHECK(l.a == Approx(5e-6).epsilon(1e-3));
  CHECK(l.b == Approx(1.0 / 50e9).epsilon(1e-4));
  const LatencyFit f = fit_latency(x, y);
  CHECK(f.step_latency_s == Approx(5e-6).epsilon(1e-3));
  CHECK(f.bandwidth_gb_s == Approx(50).epsilon(1e-4));
  CHECK(f.points == 20);
}

TEST_CASE("compute plateau from t = t0 + flops / P", "[probe][fit]") {
  std::vector<double> fl, t;
  for (int i = 1; i <= 10; ++i) {
    fl.push_back(i * 1e9);
    t.push_back(20e-6 + i * 1e9 / 2e12);
  }
  CHECK(fit_plateau(fl, t) == Approx(2e12).epsilon(1e-6));
  // Degenerate input: the best achieved rate.
  CHECK(fit_plateau({1e9}, {1e-3}) == Approx(1e12));
}

TEST_CASE("saturation fit recovers e_max and n_half", "[probe][fit]") {
  const double e_max = 0.8, n_half = 12;
  std::vector<double> n, e;
  for (double v : {1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0}) {
    n.push_back(v);
    e.push_back(e_max * v / (v + n_half));
  }
  const SaturationFit f = fit_saturation(n, e);
  CHECK(f.e_max == Approx(e_max).epsilon(1e-6));
  CHECK(f.n_half == Approx(n_half).epsilon(1e-6));
  CHECK(f.rms < 1e-9);
  CHECK(f(n_half) == Approx(e_max / 2));
}

TEST_CASE("percentiles and summaries", "[probe][fit]") {
  std::vector<double> s;
  for (int i = 10; i >= 0; --i) s.push_back(i);
  CHECK(percentile(s, 0.5) == 5);
  CHECK(percentile(s, 0.1) == Approx(1));
  CHECK(percentile(s, 0.9) == Approx(9));
  const Stats st = summarize(s);
  CHECK(st.samples == 11);
  CHECK(st.min == 0);
  CHECK(st.mean == Approx(5));
}
