#include "moeprobe/measure.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <iostream>
#include <numeric>
#include <sstream>

#ifdef MOEPROBE_HAVE_CUDA
#include "moeprobe/cuda_backend.hpp"
#endif

namespace moeprobe {

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const std::size_t lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

Stats summarize(const std::vector<double>& s) {
  Stats st;
  st.samples = static_cast<int>(s.size());
  if (s.empty()) return st;
  st.p50 = percentile(s, 0.5);
  st.p10 = percentile(s, 0.1);
  st.p90 = percentile(s, 0.9);
  st.mean = std::accumulate(s.begin(), s.end(), 0.0) / static_cast<double>(s.size());
  st.min = *std::min_element(s.begin(), s.end());
  return st;
}

namespace {
std::atomic<int> g_clock_drops{0};
}  // namespace

int clock_drop_count() {
  return g_clock_drops.load();
}

Stats time_op(Op& op, Backend& b, const TimingOptions& t) {
#ifdef MOEPROBE_HAVE_CUDA
  // GPU ops: CUDA events around graph replays, L2 scribble between samples, NVML clocks
  // before and after (docs/probe.md, "Timing on the GPU"); host clocks would time launches.
  if (b.name() == "cuda") {
    const CudaTiming ct = time_cuda_op(op, b, t);
    if (ct.clock_drop) ++g_clock_drops;
    if (ct.clock_drop)
      std::cerr << "warning: the SM clock dropped more than 10% during a timed cell ("
                << ct.before.sm_mhz << " -> " << ct.after.sm_mhz
                << " MHz); its timing is suspect\n";
    return ct.stats;
  }
#endif
  using clock = std::chrono::steady_clock;
  for (int i = 0; i < t.warmup; ++i) {
    op.run();
    op.sync();
  }
  std::vector<double> samples;
  double total = 0;
  while (static_cast<int>(samples.size()) < t.max_reps &&
         (static_cast<int>(samples.size()) < t.min_reps || total < t.min_seconds)) {
    if (t.flush) b.flush_caches();
    const auto t0 = clock::now();
    op.run();
    op.sync();
    const double dt = std::chrono::duration<double>(clock::now() - t0).count();
    samples.push_back(dt);
    total += dt;
  }
  return summarize(samples);
}

double error_limit(DType d, OpKind k) {
  if (d == DType::fp32) return k == OpKind::simple ? 1e-4 : 1e-3;
  return k == OpKind::simple ? 2e-2 : 5e-2;
}

double error_limit(DType d, OpKind k, KvDType kv) {
  const double base = error_limit(d, k);
  return kv == KvDType::fp8 && k == OpKind::chained ? std::max(base, 2e-2) : base;
}

double routing_tie_tol(DType d, KvDType kv) {
  return d == DType::fp32 && kv != KvDType::fp8 ? 1e-4 : 3e-2;
}

Check compare_close(const std::vector<float>& got, const std::vector<float>& ref, double limit,
                    const std::string& what) {
  Check c;
  if (got.size() != ref.size()) {
    c.ok = false;
    c.detail = what + ": " + std::to_string(got.size()) + " values, reference has " +
               std::to_string(ref.size());
    return c;
  }
  double max_ref = 0, max_diff = 0;
  std::size_t worst = 0;
  bool finite = true;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    max_ref = std::max(max_ref, std::fabs(static_cast<double>(ref[i])));
    if (!std::isfinite(got[i])) finite = false;
    const double d = std::fabs(static_cast<double>(got[i]) - ref[i]);
    if (d > max_diff || !std::isfinite(d)) {
      max_diff = d;
      worst = i;
    }
  }
  c.max_err = max_diff / std::max(max_ref, 1e-6);
  if (!finite || !(c.max_err <= limit)) {
    c.ok = false;
    std::ostringstream os;
    os << what << ": normalised max error " << c.max_err << " exceeds " << limit << " (element "
       << worst << ": got " << got[worst] << ", reference " << ref[worst] << ")";
    c.detail = os.str();
  }
  return c;
}

Check compare_exact(const std::vector<int>& got, const std::vector<int>& ref,
                    const std::string& what) {
  Check c;
  if (got.size() != ref.size()) {
    c.ok = false;
    c.detail = what + ": " + std::to_string(got.size()) + " values, reference has " +
               std::to_string(ref.size());
    return c;
  }
  for (std::size_t i = 0; i < ref.size(); ++i)
    if (got[i] != ref[i]) {
      c.ok = false;
      c.detail = what + ": element " + std::to_string(i) + " is " + std::to_string(got[i]) +
                 ", reference " + std::to_string(ref[i]);
      return c;
    }
  return c;
}

Check combine_checks(const Check& a, const Check& b) {
  Check c;
  c.ok = a.ok && b.ok;
  c.max_err = std::max(a.max_err, b.max_err);
  c.detail = !a.ok ? a.detail : b.detail;
  return c;
}

std::string build_warning() {
  std::string w;
#ifndef NDEBUG
  w = "assertions enabled (not an optimised release build)";
#endif
#if defined(__SANITIZE_ADDRESS__)
  w += std::string(w.empty() ? "" : "; ") + "built with AddressSanitizer";
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  w += std::string(w.empty() ? "" : "; ") + "built with AddressSanitizer";
#endif
#endif
#if !defined(__OPTIMIZE__)
  w += std::string(w.empty() ? "" : "; ") + "built without optimisation";
#endif
  if (!w.empty()) w = "timings are not representative: " + w;
  return w;
}

}  // namespace moeprobe
