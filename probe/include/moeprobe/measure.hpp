// Timing and verification. Timing: warm-up, then repetitions until both a
// minimum count and a minimum total time are reached (capped), caches flushed
// between repetitions (not timed); reported as median and p10/p90.
// Verification: normalised max error against the reference with per-dtype
// limits (docs/probe.md, "Verification").
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "moeprobe/backend.hpp"

namespace moeprobe {

struct TimingOptions {
  int warmup = 3;
  int min_reps = 10;
  int max_reps = 200;
  double min_seconds = 0.2;  // total timed seconds to reach before stopping
  bool flush = true;
};

// A duration summary (seconds) over `samples` repetitions.
struct Stats {
  double p50 = 0, p10 = 0, p90 = 0, mean = 0, min = 0;
  int samples = 0;
};
// Percentile by linear interpolation between order statistics (q in [0, 1]).
double percentile(std::vector<double> v, double q);
Stats summarize(const std::vector<double>& seconds);
Stats time_op(Op& op, Backend& b, const TimingOptions& t);
// Timed cells so far (this process) whose SM clock dropped more than 10%
// (NVML, CUDA backend only; the CPU backend reads no clocks per cell).
int clock_drop_count();

// Verification limits: normalised error = max|y - ref| / max(max|ref|, 1e-6).
enum class OpKind { simple, chained };  // chained: layer (several ops in sequence)
double error_limit(DType d, OpKind k);
// With an fp8 KV cache: single ops as error_limit(d, k) (the reference reads the
// same e4m3 values); chained ops at least 2e-2, because a layer quantises K/V rows
// it computed itself, and a backend's last-bit difference can land on the
// neighbouring e4m3 code (one e4m3 step is 6-12% of the element).
double error_limit(DType d, OpKind k, KvDType kv);
// Near-tie margin (in selection-score units: logit + bias, or sigmoid + bias) within
// which a chained layer's expert selection may differ from the float64 reference's.
// fp32: 1e-4. bf16 or an fp8 KV cache: the router's input has passed attention and
// several projections rounded to bf16 (unit roundoff 2^-8 = 3.9e-3 a step), so on the
// O(1) scores of the pattern weights its logits land ~1e-2 from the reference's; two
// experts closer than 3e-2 may swap, as they would in any bf16 engine. The layer is
// then checked against the reference run with the backend's selection, at the
// chained limit. (First seen on an H200: glm-5.2 layer.prefill, 128 tokens, bf16.)
double routing_tie_tol(DType d, KvDType kv);
// The fp8 error itself: attention over an e4m3 cache (kKvFp8Scale) against the
// same attention over the unquantised fp32 cache, normalised as above
// (docs/probe.md, "fp8 KV cache"). Not a backend check; tests use it.
constexpr double kFp8KvAttentionLimit = 0.08;  // measured worst on the CPU tests: 0.040

struct Check {
  bool ok = true;
  double max_err = 0;  // normalised (see above); 0 for exact checks
  std::string detail;  // what failed, "" when ok
};
Check compare_close(const std::vector<float>& got, const std::vector<float>& ref, double limit,
                    const std::string& what);
// Exact equality (top-k ids, permutation).
Check compare_exact(const std::vector<int>& got, const std::vector<int>& ref,
                    const std::string& what);
Check combine_checks(const Check& a, const Check& b);

// Build hygiene: "" for an optimised build without sanitizers, else a warning.
std::string build_warning();

}  // namespace moeprobe
