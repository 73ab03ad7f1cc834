// Private building blocks of the CUDA backend: device buffers, the cuBLASLt
// matmul wrapper with a per-shape algorithm cache, NVML through dlopen.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "cuda_check.hpp"
#include "moekernels_cuda.hpp"
#include "moeprobe/cuda_backend.hpp"

namespace moeprobe::cudabk {

using moekernels::cuda::Elem;

// Owning device allocation (cudaMalloc; freed without throwing).
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t bytes) { resize(bytes); }
  ~DeviceBuffer() { release(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : p_(o.p_), bytes_(o.bytes_) {
    o.p_ = nullptr;
    o.bytes_ = 0;
  }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      release();
      p_ = o.p_;
      bytes_ = o.bytes_;
      o.p_ = nullptr;
      o.bytes_ = 0;
    }
    return *this;
  }
  void resize(std::size_t bytes) {
    if (bytes == bytes_) return;
    release();
    if (bytes > 0) MOE_CUDA_CHECK(cudaMalloc(&p_, bytes));
    bytes_ = bytes;
  }
  void release() {
    if (p_) MOE_CUDA_CHECK_NOTHROW(cudaFree(p_));
    p_ = nullptr;
    bytes_ = 0;
  }
  template <class T = void>
  T* as() const {
    return static_cast<T*>(p_);
  }
  void* get() const { return p_; }
  std::size_t bytes() const { return bytes_; }

 private:
  void* p_ = nullptr;
  std::size_t bytes_ = 0;
};

template <class T>
DeviceBuffer upload(const std::vector<T>& v, cudaStream_t st) {
  DeviceBuffer b(v.size() * sizeof(T));
  if (!v.empty())
    MOE_CUDA_CHECK(
        cudaMemcpyAsync(b.get(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice, st));
  return b;
}
template <class T>
std::vector<T> download(const void* p, std::size_t n, cudaStream_t st) {
  std::vector<T> v(n);
  if (n > 0)
    MOE_CUDA_CHECK(cudaMemcpyAsync(v.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost, st));
  MOE_CUDA_CHECK(cudaStreamSynchronize(st));
  return v;
}

// Y[m, n] (f32, row stride ldy) = X[m, k] (row stride ldx) · W[n, k]^T (row
// stride ldw), X and W both of type `in` (f32: FP32 compute; bf16: FP32
// accumulate). In cuBLASLt's column-major terms: D[n, m] = op(A = W)^T · B = X
// ("TN", the layout every data type supports). batch > 0: pointer-array
// batched, W/X/Y are device arrays of `batch` pointers.
struct MatmulShape {
  int m = 0, n = 0, k = 0;
  Elem in = Elem::f32;
  long long ldw = 0, ldx = 0, ldy = 0;
  int batch = 0;
  bool operator<(const MatmulShape& o) const {
    return std::tie(m, n, k, in, ldw, ldx, ldy, batch) <
           std::tie(o.m, o.n, o.k, o.in, o.ldw, o.ldx, o.ldy, o.batch);
  }
};

class LtGemm {
 public:
  LtGemm();
  ~LtGemm();
  LtGemm(const LtGemm&) = delete;
  LtGemm& operator=(const LtGemm&) = delete;
  // Plans (heuristics, then each candidate timed on these very buffers, best
  // kept) on first use of a shape; must not be first used inside a capture.
  void matmul(const MatmulShape& s, const void* w, const void* x, float* y, cudaStream_t st);
  // True when the shape could be planned (heuristics returned an algorithm).
  bool supported(const MatmulShape& s, const void* w, const void* x, float* y, cudaStream_t st);
  // fp8 e4m3 (A, B) with per-tensor scale pointers, bf16 out: peak-rate probe
  // only. Best of the heuristic's candidates; 0 when none ran (`why` says why).
  double time_fp8_tflops(int m, int n, int k, cudaStream_t st, std::string* why = nullptr);
  // Y[m, n] f32 = (scale_x * X8)[m, k] · (scale_w * W8)[n, k]^T, X8/W8 e4m3
  // codes (rows of k bytes), scale_w/scale_x device floats (cuBLASLt A/B scale
  // pointers), FP32 accumulation without fast accumulation. Needs k % 16 == 0
  // and n % 4 == 0 (16-byte leading dimensions). Returns false (nothing
  // enqueued) when cuBLASLt has no algorithm, e.g. below compute capability 8.9.
  // Each scale must sit in its own 16-byte aligned slot (Fp8Scales does that):
  // cuBLASLt 13.0 on an H200 answered CUBLAS_STATUS_NOT_SUPPORTED when the B
  // scale was the A scale + 4 bytes; misaligned pointers throw moeplan::Error.
  bool matmul_fp8(int m, int n, int k, const void* w8, const void* x8, const float* scale_w,
                  const float* scale_x, float* y, cudaStream_t st);
  std::size_t cached_plans() const { return plans_.size(); }

 private:
  struct Plan {
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
    cublasLtMatmulAlgo_t algo{};
    bool ok = false;
  };
  Plan& plan(const MatmulShape& s, const void* w, const void* x, float* y, cudaStream_t st);
  // The one fp8 set-up shared by matmul_fp8 (check) and time_fp8_tflops (peak):
  // e4m3 A = W [n, k] and B = X [m, k] ("TN"), A/B scale pointers, FP32 compute,
  // fast accumulation off, D of type `out` [n, m]; up to `candidates`
  // heuristic results in `algos` (empty: none). The caller destroys the plan.
  Plan fp8_plan(int m, int n, int k, cudaDataType_t out, const float* scale_w, const float* scale_x,
                int candidates, std::vector<cublasLtMatmulHeuristicResult_t>& algos);
  static void destroy(Plan& p);
  cublasLtHandle_t handle_ = nullptr;
  DeviceBuffer workspace_;
  std::map<MatmulShape, Plan> plans_;
};

// Per-tensor fp8 scales on the device, each in its own kFp8ScaleSlotBytes slot
// (fp8_scale_slot_offset, cuda_backend.hpp) of one allocation.
class Fp8Scales {
 public:
  Fp8Scales(float scale_w, float scale_x, cudaStream_t st);
  const float* w() const { return slot(0); }
  const float* x() const { return slot(1); }

 private:
  float* slot(int i) const {
    return reinterpret_cast<float*>(static_cast<char*>(buf_.get()) + fp8_scale_slot_offset(i));
  }
  DeviceBuffer buf_;
};

// NVML loaded at run time (dlopen libnvidia-ml.so.1): the toolkit here has no
// NVML link library (libnvidia-ml.so) to link against, and the driver's copy is only on GPU
// machines.
class Nvml {
 public:
  static Nvml& instance();
  bool available() const { return ok_; }
  GpuClocks read(int cuda_device) const;
  std::string driver_version() const;

 private:
  Nvml();
  bool ok_ = false;
  void* lib_ = nullptr;
  void* fn_[8] = {};
};

// Process-wide device facts.
struct DeviceFacts {
  int device = 0, sms = 0, cc_major = 0, cc_minor = 0;
  long long l2_bytes = 0, memory_bytes = 0;
  std::string name;
};
DeviceFacts device_facts(int device);

}  // namespace moeprobe::cudabk
