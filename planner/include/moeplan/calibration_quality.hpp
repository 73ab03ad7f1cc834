// The one rule for "measured on a machine too noisy to trust" (issue #13),
// header-only so that both the probe (which writes the calibration file's
// `quality` section and warns) and the planner (which refuses the file unless
// --force-calibration) apply the same thresholds and the same words without
// the planner linking probe code.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

namespace moeplan {

// A row is noisy when its p90 exceeds kNoisySpread × its p50; the file is
// too noisy when its median spread exceeds kMaxMedianSpread or more than
// kMaxNoisyShare of its rows are noisy. (A quiet CPU run has a median near
// 1.1; a quick run on a machine shared by six builds measured 1.2 with 11% of
// rows above 3; the file in issue #13 had spreads near 100.)
inline constexpr double kNoisySpread = 3.0;
inline constexpr double kMaxMedianSpread = 2.0;
inline constexpr double kMaxNoisyShare = 0.34;

// p90/p50 spreads of a set of rows (rows with p50 <= 0 left out).
struct SpreadSummary {
  std::size_t rows = 0, noisy = 0;  // rows counted; rows above kNoisySpread
  double median = 0, worst = 0;
  bool too_noisy() const {
    return rows > 0 && (median > kMaxMedianSpread ||
                        static_cast<double>(noisy) / static_cast<double>(rows) > kMaxNoisyShare);
  }
  // Why the rows are not to be trusted (call only when too_noisy()).
  std::string reason() const {
    return fmt::format(
        "too noisy to trust: median p90/p50 {:.2f} (limit {:.1f}), {} of {} rows above {:.0f}x "
        "(worst {:.1f}x); measure again on a quiet machine",
        median, kMaxMedianSpread, noisy, rows, kNoisySpread, worst);
  }
};

inline SpreadSummary summarize_spreads(std::vector<double> spread) {
  SpreadSummary s;
  if (spread.empty()) return s;
  std::sort(spread.begin(), spread.end());
  s.rows = spread.size();
  s.median = spread[spread.size() / 2];
  s.worst = spread.back();
  s.noisy = static_cast<std::size_t>(
      std::count_if(spread.begin(), spread.end(), [](double v) { return v > kNoisySpread; }));
  return s;
}

// The machine was busier than it has cores: the 1-minute load average (which
// counts the probe's own threads) above the number of online CPUs means other
// work competed with the measurement.
inline bool load_too_high(double load_average, int cpus) {
  return cpus > 0 && load_average > static_cast<double>(cpus);
}
inline std::string load_reason(double load_average, int cpus) {
  return fmt::format(
      "load average {:.2f} above the {} CPUs during the run: other work competed with the "
      "measurement; measure again on a quiet machine",
      load_average, cpus);
}

// The kernel quality floor (issue #11; docs/probe.md "What the planner takes from the probe"):
// a kernel class whose efficiency at its largest measured point is below this fraction of its
// measured roofline — the probe's own triad when the point is memory-bound, its measured GEMM
// plateau when compute-bound — measured the probe's kernels, not the node's. The planner records
// such a class but does not use it (it falls back to its defaults for that term and says why).
// `moeprobe compare` holds the probe's TARGETS (0.70 of the triad, 1.3x production); the floor
// is lower because a kernel between the two is still a better guide than a default.
inline constexpr double kMemoryBoundFloor = 0.5;   // of the triad bandwidth
inline constexpr double kComputeBoundFloor = 0.5;  // of the measured GEMM plateau

// Why a class measured at `efficiency` of its roofline (at `where`, e.g. "M = 256") is not used.
inline std::string below_floor_reason(double efficiency, bool compute_bound,
                                      const std::string& where) {
  return fmt::format(
      "not used: {:.3f} of the measured {} at {} is below the quality floor {:.2f}; the probe's "
      "kernel, not the device, set this time",
      efficiency, compute_bound ? "GEMM plateau" : "triad bandwidth", where,
      compute_bound ? kComputeBoundFloor : kMemoryBoundFloor);
}

}  // namespace moeplan
