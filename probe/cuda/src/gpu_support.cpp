// cuBLASLt wrapper, NVML loader, device facts and the check-macro helpers.
#include "gpu_support.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <cstdio>
#include <limits>

#include "moeplan/errors.hpp"

namespace moeprobe::cudabk {

void raise(const char* lib, const char* call, const char* file, int line, const std::string& msg) {
  throw moeplan::Error(std::string(file) + ":" + std::to_string(line) + ": " + lib + " call '" +
                       call + "' failed: " + msg);
}
void warn(const char* lib, const char* call, const char* file, int line, const std::string& msg) {
  std::fprintf(stderr, "warning: %s:%d: %s call '%s' failed: %s\n", file, line, lib, call,
               msg.c_str());
}

// ---- cuBLASLt ------------------------------------------------------------------

namespace {
constexpr std::size_t kWorkspaceBytes = 64ull << 20;
constexpr int kCandidates = 8;

cudaDataType_t lt_type(Elem e) {
  return e == Elem::f32 ? CUDA_R_32F : e == Elem::bf16 ? CUDA_R_16BF : CUDA_R_8F_E4M3;
}

template <class T>
void set_desc(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t a, T v) {
  MOE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d, a, &v, sizeof(v)));
}
template <class T>
void set_layout(cublasLtMatrixLayout_t l, cublasLtMatrixLayoutAttribute_t a, T v) {
  MOE_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(l, a, &v, sizeof(v)));
}

bool capturing(cudaStream_t st) {
  cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
  MOE_CUDA_CHECK(cudaStreamIsCapturing(st, &cs));
  return cs != cudaStreamCaptureStatusNone;
}

// Seconds per call of `fn` (events, a warm call first); +inf when it fails.
template <class Fn>
double time_calls(cudaStream_t st, int reps, Fn&& fn) {
  if (fn() != CUBLAS_STATUS_SUCCESS) {
    (void)cudaGetLastError();
    return std::numeric_limits<double>::infinity();
  }
  cudaEvent_t e0, e1;
  MOE_CUDA_CHECK(cudaEventCreate(&e0));
  MOE_CUDA_CHECK(cudaEventCreate(&e1));
  MOE_CUDA_CHECK(cudaEventRecord(e0, st));
  bool ok = true;
  for (int i = 0; i < reps && ok; ++i) ok = fn() == CUBLAS_STATUS_SUCCESS;
  MOE_CUDA_CHECK(cudaEventRecord(e1, st));
  MOE_CUDA_CHECK(cudaEventSynchronize(e1));
  float ms = 0;
  MOE_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
  MOE_CUDA_CHECK_NOTHROW(cudaEventDestroy(e0));
  MOE_CUDA_CHECK_NOTHROW(cudaEventDestroy(e1));
  return ok ? ms * 1e-3 / reps : std::numeric_limits<double>::infinity();
}
}  // namespace

LtGemm::LtGemm() : workspace_(kWorkspaceBytes) {
  MOE_CUBLAS_CHECK(cublasLtCreate(&handle_));
}

LtGemm::~LtGemm() {
  for (auto& kv : plans_) destroy(kv.second);
  if (handle_) MOE_CUBLAS_CHECK_NOTHROW(cublasLtDestroy(handle_));
}

void LtGemm::destroy(Plan& p) {
  if (p.a) MOE_CUBLAS_CHECK_NOTHROW(cublasLtMatrixLayoutDestroy(p.a));
  if (p.b) MOE_CUBLAS_CHECK_NOTHROW(cublasLtMatrixLayoutDestroy(p.b));
  if (p.d) MOE_CUBLAS_CHECK_NOTHROW(cublasLtMatrixLayoutDestroy(p.d));
  if (p.op) MOE_CUBLAS_CHECK_NOTHROW(cublasLtMatmulDescDestroy(p.op));
  p = Plan{};
}

LtGemm::Plan& LtGemm::plan(const MatmulShape& s, const void* w, const void* x, float* y,
                           cudaStream_t st) {
  auto it = plans_.find(s);
  if (it != plans_.end()) return it->second;
  Plan& p = plans_[s];
  const cudaDataType_t t = lt_type(s.in);
  MOE_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  set_desc(p.op, CUBLASLT_MATMUL_DESC_TRANSA, CUBLAS_OP_T);
  set_desc(p.op, CUBLASLT_MATMUL_DESC_TRANSB, CUBLAS_OP_N);
  MOE_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.a, t, static_cast<std::uint64_t>(s.k),
                                              static_cast<std::uint64_t>(s.n), s.ldw));
  MOE_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.b, t, static_cast<std::uint64_t>(s.k),
                                              static_cast<std::uint64_t>(s.m), s.ldx));
  MOE_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.d, CUDA_R_32F, static_cast<std::uint64_t>(s.n),
                                              static_cast<std::uint64_t>(s.m), s.ldy));
  if (s.batch > 0) {
    for (cublasLtMatrixLayout_t l : {p.a, p.b, p.d}) {
      set_layout(l, CUBLASLT_MATRIX_LAYOUT_BATCH_MODE,
                 static_cast<std::uint32_t>(CUBLASLT_BATCH_MODE_POINTER_ARRAY));
      set_layout(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, static_cast<std::int32_t>(s.batch));
    }
  }
  cublasLtMatmulPreference_t pref = nullptr;
  MOE_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  const std::size_t ws = workspace_.bytes();
  MOE_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
  cublasLtMatmulHeuristicResult_t res[kCandidates] = {};
  int found = 0;
  const cublasStatus_t hs = cublasLtMatmulAlgoGetHeuristic(handle_, p.op, p.a, p.b, p.d, p.d, pref,
                                                           kCandidates, res, &found);
  MOE_CUBLAS_CHECK_NOTHROW(cublasLtMatmulPreferenceDestroy(pref));
  if (hs != CUBLAS_STATUS_SUCCESS || found == 0) return p;  // ok = false: caller decides
  int best = 0;
  if (found > 1 && !capturing(st)) {
    // Heuristic order is a guess; time each candidate on the real buffers.
    double best_t = std::numeric_limits<double>::infinity();
    const float alpha = 1.0f, beta = 0.0f;
    for (int i = 0; i < found; ++i) {
      if (res[i].state != CUBLAS_STATUS_SUCCESS) continue;
      const double dt = time_calls(st, 5, [&] {
        return cublasLtMatmul(handle_, p.op, &alpha, w, p.a, x, p.b, &beta, y, p.d, y, p.d,
                              &res[i].algo, workspace_.get(), ws, st);
      });
      if (dt < best_t) {
        best_t = dt;
        best = i;
      }
    }
  }
  p.algo = res[best].algo;
  p.ok = true;
  return p;
}

bool LtGemm::supported(const MatmulShape& s, const void* w, const void* x, float* y,
                       cudaStream_t st) {
  return plan(s, w, x, y, st).ok;
}

void LtGemm::matmul(const MatmulShape& s, const void* w, const void* x, float* y, cudaStream_t st) {
  if (s.m <= 0 || s.n <= 0) return;
  Plan& p = plan(s, w, x, y, st);
  if (!p.ok)
    throw moeplan::Error(
        "cuBLASLt: no algorithm for " + std::to_string(s.m) + "x" + std::to_string(s.n) + "x" +
        std::to_string(s.k) + (s.in == Elem::f32 ? " fp32" : " bf16") +
        (s.batch ? " pointer-array batch " + std::to_string(s.batch) : std::string()));
  const float alpha = 1.0f, beta = 0.0f;
  MOE_CUBLAS_CHECK(cublasLtMatmul(handle_, p.op, &alpha, w, p.a, x, p.b, &beta, y, p.d, y, p.d,
                                  &p.algo, workspace_.get(), workspace_.bytes(), st));
}

LtGemm::Plan LtGemm::fp8_plan(int m, int n, int k, cudaDataType_t out, const float* scale_w,
                              const float* scale_x, int candidates,
                              std::vector<cublasLtMatmulHeuristicResult_t>& algos) {
  algos.clear();
  Plan p;
  try {
    MOE_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    set_desc(p.op, CUBLASLT_MATMUL_DESC_TRANSA, CUBLAS_OP_T);
    set_desc(p.op, CUBLASLT_MATMUL_DESC_TRANSB, CUBLAS_OP_N);
    set_desc(p.op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, scale_w);
    set_desc(p.op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, scale_x);
    set_desc(p.op, CUBLASLT_MATMUL_DESC_FAST_ACCUM, static_cast<std::int8_t>(0));
    MOE_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.a, CUDA_R_8F_E4M3, static_cast<std::uint64_t>(k),
                                                static_cast<std::uint64_t>(n), k));
    MOE_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.b, CUDA_R_8F_E4M3, static_cast<std::uint64_t>(k),
                                                static_cast<std::uint64_t>(m), k));
    MOE_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.d, out, static_cast<std::uint64_t>(n),
                                                static_cast<std::uint64_t>(m), n));
    cublasLtMatmulPreference_t pref = nullptr;
    MOE_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    const std::size_t ws = workspace_.bytes();
    MOE_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
    algos.resize(static_cast<std::size_t>(std::max(1, candidates)));
    int found = 0;
    const cublasStatus_t hs =
        cublasLtMatmulAlgoGetHeuristic(handle_, p.op, p.a, p.b, p.d, p.d, pref,
                                       static_cast<int>(algos.size()), algos.data(), &found);
    MOE_CUBLAS_CHECK_NOTHROW(cublasLtMatmulPreferenceDestroy(pref));
    algos.resize(hs == CUBLAS_STATUS_SUCCESS ? static_cast<std::size_t>(found) : 0);
  } catch (...) {
    destroy(p);
    throw;
  }
  return p;
}

namespace {
void require_fp8_dims(int m, int n, int k) {
  if (m <= 0 || n <= 0 || k <= 0 || k % 16 != 0 || n % 4 != 0)
    throw moeplan::Error(
        "cuBLASLt fp8: needs positive m, n, k with k % 16 == 0 and n % 4 == 0 (got " +
        std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k) + ")");
}
}  // namespace

bool LtGemm::matmul_fp8(int m, int n, int k, const void* w8, const void* x8, const float* scale_w,
                        const float* scale_x, float* y, cudaStream_t st) {
  require_fp8_dims(m, n, k);
  if (!fp8_scale_pointers_ok(scale_w, scale_x))
    throw moeplan::Error(
        "cuBLASLt fp8: each scale pointer needs its own 16-byte aligned slot (Fp8Scales); a B "
        "scale 4 bytes after the A scale gives CUBLAS_STATUS_NOT_SUPPORTED");
  std::vector<cublasLtMatmulHeuristicResult_t> algos;
  Plan p = fp8_plan(m, n, k, CUDA_R_32F, scale_w, scale_x, 1, algos);
  try {
    if (!algos.empty()) {
      const float alpha = 1.0f, beta = 0.0f;
      MOE_CUBLAS_CHECK(cublasLtMatmul(handle_, p.op, &alpha, w8, p.a, x8, p.b, &beta, y, p.d, y,
                                      p.d, &algos[0].algo, workspace_.get(), workspace_.bytes(),
                                      st));
    }
  } catch (...) {
    destroy(p);
    throw;
  }
  destroy(p);
  return !algos.empty();
}

double LtGemm::time_fp8_tflops(int m, int n, int k, cudaStream_t st, std::string* why) {
  require_fp8_dims(m, n, k);
  DeviceBuffer a(static_cast<std::size_t>(n) * k), b(static_cast<std::size_t>(m) * k),
      d(static_cast<std::size_t>(m) * n * 2);
  moekernels::cuda::scribble(a.get(), static_cast<long long>(a.bytes()), st);
  moekernels::cuda::scribble(b.get(), static_cast<long long>(b.bytes()), st);
  const Fp8Scales scales(1.0f, 1.0f, st);
  std::vector<cublasLtMatmulHeuristicResult_t> algos;
  Plan p = fp8_plan(m, n, k, CUDA_R_16BF, scales.w(), scales.x(), kCandidates, algos);
  double best = std::numeric_limits<double>::infinity();
  const float alpha = 1.0f, beta = 0.0f;
  for (const auto& r : algos)
    best = std::min(best, time_calls(st, 10, [&] {
                      return cublasLtMatmul(handle_, p.op, &alpha, a.get(), p.a, b.get(), p.b,
                                            &beta, d.get(), p.d, d.get(), p.d, &r.algo,
                                            workspace_.get(), workspace_.bytes(), st);
                    }));
  destroy(p);
  if (!(best < std::numeric_limits<double>::infinity())) {
    if (why)
      *why = algos.empty() ? "cuBLASLt returned no fp8 e4m3 algorithm (bf16 output)"
                           : "every fp8 e4m3 algorithm the heuristic returned failed to run (" +
                                 std::to_string(algos.size()) + " tried)";
    return 0;
  }
  return 2.0 * m * n * static_cast<double>(k) / best * 1e-12;
}

Fp8Scales::Fp8Scales(float scale_w, float scale_x, cudaStream_t st) : buf_(2 * kFp8ScaleSlotBytes) {
  MOE_CUDA_CHECK(cudaMemsetAsync(buf_.get(), 0, buf_.bytes(), st));
  MOE_CUDA_CHECK(cudaMemcpyAsync(slot(0), &scale_w, sizeof(float), cudaMemcpyHostToDevice, st));
  MOE_CUDA_CHECK(cudaMemcpyAsync(slot(1), &scale_x, sizeof(float), cudaMemcpyHostToDevice, st));
  // The host floats are stack copies: finish before they go away.
  MOE_CUDA_CHECK(cudaStreamSynchronize(st));
}

// ---- NVML ------------------------------------------------------------------------

namespace {
using nvml_ret = int;
using nvml_dev = void*;
using fn_init = nvml_ret (*)();
using fn_by_pci = nvml_ret (*)(const char*, nvml_dev*);
using fn_clock = nvml_ret (*)(nvml_dev, int, unsigned*);
using fn_power = nvml_ret (*)(nvml_dev, unsigned*);
using fn_temp = nvml_ret (*)(nvml_dev, int, unsigned*);
using fn_driver = nvml_ret (*)(char*, unsigned);
constexpr int kClockSm = 1, kClockMem = 2, kTempGpu = 0;
}  // namespace

Nvml::Nvml() {
  lib_ = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib_) return;
  const char* names[] = {"nvmlInit_v2",
                         "nvmlDeviceGetHandleByPciBusId_v2",
                         "nvmlDeviceGetClockInfo",
                         "nvmlDeviceGetPowerUsage",
                         "nvmlDeviceGetTemperature",
                         "nvmlSystemGetDriverVersion"};
  for (int i = 0; i < 6; ++i) {
    fn_[i] = dlsym(lib_, names[i]);
    if (!fn_[i]) return;
  }
  ok_ = reinterpret_cast<fn_init>(fn_[0])() == 0;
}

Nvml& Nvml::instance() {
  static Nvml n;
  return n;
}

GpuClocks Nvml::read(int cuda_device) const {
  GpuClocks c;
  if (!ok_) return c;
  char bus[64] = {};
  if (cudaDeviceGetPCIBusId(bus, sizeof(bus), cuda_device) != cudaSuccess) return c;
  nvml_dev dev = nullptr;
  if (reinterpret_cast<fn_by_pci>(fn_[1])(bus, &dev) != 0) return c;
  unsigned v = 0;
  if (reinterpret_cast<fn_clock>(fn_[2])(dev, kClockSm, &v) == 0) c.sm_mhz = v;
  if (reinterpret_cast<fn_clock>(fn_[2])(dev, kClockMem, &v) == 0) c.mem_mhz = v;
  if (reinterpret_cast<fn_power>(fn_[3])(dev, &v) == 0) c.power_w = v / 1000.0;
  if (reinterpret_cast<fn_temp>(fn_[4])(dev, kTempGpu, &v) == 0) c.temp_c = v;
  c.valid = c.sm_mhz > 0;
  return c;
}

std::string Nvml::driver_version() const {
  if (!ok_) return "";
  char buf[96] = {};
  if (reinterpret_cast<fn_driver>(fn_[5])(buf, sizeof(buf)) != 0) return "";
  return buf;
}

DeviceFacts device_facts(int device) {
  DeviceFacts f;
  f.device = device;
  cudaDeviceProp p{};
  MOE_CUDA_CHECK(cudaGetDeviceProperties(&p, device));
  f.name = p.name;
  f.sms = p.multiProcessorCount;
  f.cc_major = p.major;
  f.cc_minor = p.minor;
  f.l2_bytes = p.l2CacheSize;
  f.memory_bytes = static_cast<long long>(p.totalGlobalMem);
  return f;
}

}  // namespace moeprobe::cudabk
