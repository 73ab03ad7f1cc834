// The CUDA probe backend and its GPU-only suites. This header includes no CUDA
// header (like ggml-cuda.h): it compiles everywhere; the functions exist only
// when the project was configured with CUDA (MOEPROBE_HAVE_CUDA). Kernels live
// in kernels/src/*.cu; timing and targets: docs/probe.md, "## CUDA backend".
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "moeprobe/backend.hpp"
#include "moeprobe/measure.hpp"

namespace moeprobe {

// Registry entry: available=true when this build has the CUDA backend (reason
// then describes the build: architectures, cuBLASLt/NCCL versions, expert-GEMM
// path). Does not touch the driver, so it is safe on machines without a GPU.
BackendInfo cuda_backend_info();

// Creates the backend on device 0 (CUDA_VISIBLE_DEVICES selects). Throws
// BackendUnavailable when cudaGetDeviceCount fails or finds no device.
// `threads` is ignored (recorded in the identity only).
// Environment knobs (read once here):
//   MOEPROBE_CUDA_EXPERTS = graph (default) | batched | gemv | grouped   expert-GEMM
//                           variant (gemv: grouped GEMV; grouped: tensor-core grouped
//                           GEMM for bf16; both device-side counts, graph-capturable)
//   MOEPROBE_CUDA_KV      = contiguous (default) | paged  KV cache layout (page 64)
std::unique_ptr<Backend> make_cuda_backend(int threads);

// NVML readings (dlopen'ed libnvidia-ml.so.1; valid=false when NVML is absent).
struct GpuClocks {
  bool valid = false;
  double sm_mhz = 0, mem_mhz = 0, power_w = 0, temp_c = 0;
};

// GPU timing of an op made by the CUDA backend: CUDA events around CUDA-graph
// replays (ops that need a host sync inside, such as moe_fused, are timed with
// events around direct launches), time-based warm-up, L2 scribbled between
// repetitions (outside the events), >= 30 repetitions, clocks before/after.
struct CudaTiming {
  Stats stats;               // seconds per call
  int calls_per_sample = 1;  // calls between the two events (1 when flushing)
  bool graph = false;        // replayed from a CUDA graph
  GpuClocks before, after;
  bool clock_drop = false;  // SM clock fell by more than 10% during the cell
};
// Throws moeplan::Error when `op` was not made by the CUDA backend.
CudaTiming time_cuda_op(Op& op, Backend& backend, const TimingOptions& t);

// ---- NCCL (one process, every visible GPU, ncclCommInitAll) ---------------------
struct NcclOptions {
  std::vector<std::string> collectives = {"all_reduce", "all_gather", "reduce_scatter",
                                          "all_to_all"};
  long long min_bytes = 8, max_bytes = 256LL << 20;
  int step_factor = 2;
  int warmup = 5, iters = 20;
  bool verify = true;
  int devices = 0;  // 0: all visible
};
// One line per (collective, size), as nccl-tests prints it. bytes: nccl-tests'
// "size" (per-rank buffer for all_reduce; the full gathered/scattered buffer
// for the others). algbw = bytes / time; busbw = algbw * factor with factor
// 2(n-1)/n for all_reduce and (n-1)/n for all_gather, reduce_scatter, all_to_all.
struct NcclRow {
  std::string collective;
  int ranks = 0;
  long long bytes = 0, count = 0;  // count: float elements per nccl-tests' definition
  double time_us = 0, algbw_gbs = 0, busbw_gbs = 0;
  long long wrong = -1;  // mismatching elements (-1: not verified)
};
struct NcclSuite {
  std::vector<NcclRow> rows;
  std::map<std::string, double> latency_us;  // intercept of time vs bytes (sizes <= 1 MiB)
  std::string nccl_version;
  int ranks = 0;
  std::vector<std::string> notes;
};
// Throws BackendUnavailable without GPUs; moeplan::Error on NCCL failures.
// With -DMOEPLAN_WITH_MPI=ON and more than one MPI rank, one GPU per rank is
// used and the communicator is bootstrapped as nccl-tests does (rank 0
// ncclGetUniqueId + MPI_Bcast); the caller must have called MPI_Init.
NcclSuite run_nccl_suite(const NcclOptions& opt);

// Dense peak rates (the reference for utilisation): cuBLASLt at m=n=k=8192,
// bf16 and, on compute capability >= 8.9, fp8 e4m3 with per-tensor scales, and
// the copy bandwidth. Every row is measured on its own: a row that fails (an
// fp8 check that does not pass, a cuBLASLt error) comes back with
// measured = false and `note` saying why, and the other rows still run. The fp8
// row is timed only after check_fp8_gemm passed.
struct PeakRow {
  std::string dtype;
  int m = 0, n = 0, k = 0;
  double tflops = 0;
  double copy_gbs = 0;  // filled on the "copy" row: device copy bandwidth (read + write)
  std::string note;
  bool measured = false;  // false: `note` says why (failed or skipped)
};
std::vector<PeakRow> run_peak_suite();
// Exit status of `moeprobe peaks`: 0 when at least one row was measured, else 2
// (nothing could be measured; each row's note says why).
inline int peaks_exit_code(const std::vector<PeakRow>& rows) {
  for (const auto& r : rows)
    if (r.measured) return 0;
  return 2;
}

// fp8 per-tensor scale pointers (cuBLASLt A/B_SCALE_POINTER): each scale gets a
// slot of its own, kFp8ScaleSlotBytes apart. On an H200 (cuBLASLt 13.0)
// `cublasLtMatmul` returned CUBLAS_STATUS_NOT_SUPPORTED when the B scale was the
// A scale + 4 bytes and succeeded with the scales 256 bytes apart, in separate
// allocations, or both the same pointer (shared measurements of 2026-11-26,
// fp8_scale_pointers.cu). The slot size is the cudaMalloc alignment.
constexpr std::size_t kFp8ScaleSlotBytes = 256;
constexpr std::size_t fp8_scale_slot_offset(int slot) {
  return static_cast<std::size_t>(slot) * kFp8ScaleSlotBytes;
}
// Whether two scale pointers are acceptable: each 16-byte aligned (then they
// are either the same pointer or at least 16 bytes apart; A + 4 bytes is not).
inline bool fp8_scale_pointers_ok(const void* a, const void* b) {
  return reinterpret_cast<std::uintptr_t>(a) % 16 == 0 &&
         reinterpret_cast<std::uintptr_t>(b) % 16 == 0;
}

// fp8 e4m3 GEMM correctness on the GPU: X [m, k] and W [n, k] pattern values
// (W scaled by sqrt(3/k), as the probe's weights) are quantised on the host with
// moekernels::e4m3_quantize and per-tensor scales s = amax / 448 (the usual
// recipe), cuBLASLt computes Y = (s_x X8)(s_w W8)^T in fp32 (FP32 accumulation,
// fast accumulation off), and Y is compared with the float64 product of the
// dequantised inputs (e4m3_dequantize), normalised as compare_close does.
// Needs k % 16 == 0 and n % 4 == 0 (throws moeplan::Error otherwise).
struct Fp8GemmCheck {
  bool ran = false;    // false: skipped, `reason` says why (e.g. compute capability < 8.9)
  std::string reason;  // skipped: why; ran: "" or the mismatch detail
  int m = 0, n = 0, k = 0;
  double max_err = 0;
  double limit = 0;
  bool ok = false;  // ran and max_err <= limit and every output finite
};
// Normalised error limit of the fp8 GEMM against the dequantised float64
// product: the products of e4m3 values are exact in fp32, so the limit covers
// the accumulation order and the tensor cores' reduced-precision partial sums
// (before cuBLASLt promotes them to FP32). Chosen, not yet measured on a GPU.
constexpr double kFp8GemmLimit = 2e-3;
// Throws BackendUnavailable without a GPU.
Fp8GemmCheck check_fp8_gemm(int m, int n, int k);

}  // namespace moeprobe
