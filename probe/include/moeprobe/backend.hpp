// The probe's backend interface, in the manner of ggml's backends: this header
// includes no CUDA (or other vendor) header. A backend turns an op spec plus
// host inputs into a prepared op (allocation, weight generation and uploads
// happen at preparation, never in the timed region); the harness then times
// Op::run and verifies Op::output against the reference (reference.hpp).
//
// Stage outputs (OpOutput layout), A = tokens * top_k assignments:
//   moe_router : i = ids [M*k] (best first); f = logits [M*E] then weights [M*k]
//   moe_permute: i = counts [E], offsets [E+1], perm [A], inv [A]; f = x_perm [A*H]
//   moe_experts: f = y_perm [A*H]  (expert FFN of each permuted row, unweighted)
//   moe_combine: f = out [M*H] = sum_j w[t,j] * y_perm[inv[t*k+j]]
//   moe_fused  : f = out [M*H] (routed + shared experts); i = ids [M*k]
//   attention  : f = out [B*Q*Hq*v]
//   layer      : f = out [B*Q*H] after all spec.layers layers
//   triad      : f = a (full array)
//   gemm       : f = Y [m*n]
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "moeplan/errors.hpp"
#include "moeprobe/types.hpp"

namespace moeprobe {

// Identity of the machine a backend runs on, as recorded in the calibration header.
struct DeviceIdentity {
  std::string name;      // "AMD EPYC 9654", "NVIDIA H100 80GB HBM3"
  std::string kind;      // cpu | gpu
  double memory_gb = 0;  // 10^9 bytes
  int cores = 0;         // CPU cores (logical CPUs) or SMs
  int threads = 0;       // worker threads the backend uses
  std::string host;
  std::string driver, cuda;                      // "" when not applicable
  std::map<std::string, std::string> libraries;  // eigen, openmp, compiler, cublas…
  std::map<std::string, double> clocks_mhz;      // "current", "max" when readable
  long long last_level_cache_bytes = 0;
  std::string simd;  // instruction sets in use
};

// A prepared operation. run() is the timed region and must be repeatable
// (identical results every call); output() copies the results to the host.
class Op {
 public:
  virtual ~Op() = default;
  virtual void run() = 0;
  virtual OpOutput output() = 0;
  // Synchronise outstanding device work (a no-op on the CPU backend).
  virtual void sync() {}
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual DeviceIdentity identity() const = 0;
  virtual bool supports(DType d) const = 0;
  // Evicts caches between timed repetitions (a write over a buffer larger than
  // the last-level cache); not timed.
  virtual void flush_caches() = 0;

  virtual std::unique_ptr<Op> triad(const TriadSpec& s) = 0;
  virtual std::unique_ptr<Op> gemm(const GemmSpec& s, const std::vector<float>& x) = 0;
  virtual std::unique_ptr<Op> moe_router(const MoeSpec& s, const std::vector<float>& x,
                                         int tokens) = 0;
  virtual std::unique_ptr<Op> moe_permute(const MoeSpec& s, const std::vector<int>& ids,
                                          const std::vector<float>& x, int tokens) = 0;
  virtual std::unique_ptr<Op> moe_experts(const MoeSpec& s, const std::vector<float>& x_perm,
                                          const std::vector<int>& counts) = 0;
  virtual std::unique_ptr<Op> moe_combine(const MoeSpec& s, const std::vector<float>& y_perm,
                                          const std::vector<int>& inv, const std::vector<float>& w,
                                          int tokens) = 0;
  virtual std::unique_ptr<Op> moe_fused(const MoeSpec& s, const std::vector<float>& x,
                                        int tokens) = 0;
  virtual std::unique_ptr<Op> attention(const AttentionSpec& s) = 0;
  virtual std::unique_ptr<Op> layer(const LayerSpec& s, const std::vector<float>& x) = 0;
};

// Registry. Every backend name the CLI knows, whether it is built, and why not.
struct BackendInfo {
  std::string name;
  bool available = false;
  std::string reason;  // why not available
  std::vector<std::string> dtypes;
  std::vector<std::string> ops;
};
std::vector<BackendInfo> list_backends();

// Thrown when a known backend is not built or finds no device (exit code 4 in moeprobe).
class BackendUnavailable : public moeplan::Error {
 public:
  using moeplan::Error::Error;
};

// Creates a backend by name; throws BackendUnavailable or moeplan::Error (unknown name).
std::unique_ptr<Backend> make_backend(const std::string& name, int threads = 0);

}  // namespace moeprobe
