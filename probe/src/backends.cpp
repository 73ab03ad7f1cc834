#include <memory>

#include "cpu_backend.hpp"
#include "moeprobe/backend.hpp"
#ifdef MOEPROBE_HAVE_CUDA
#include "moeprobe/cuda_backend.hpp"
#endif

namespace moeprobe {

namespace {
const std::vector<std::string> kOps = {
    "triad",        "gemm",      "moe.router",       "moe.permute",       "moe.experts",
    "moe.combine",  "moe.fused", "attention.decode", "attention.prefill", "layer.decode",
    "layer.prefill"};
}

std::vector<BackendInfo> list_backends() {
  std::vector<BackendInfo> v;
  v.push_back(BackendInfo{"cpu", true, "", {"fp32", "bf16"}, kOps});
#ifdef MOEPROBE_HAVE_CUDA
  v.push_back(cuda_backend_info());
#else
  v.push_back(BackendInfo{"cuda",
                          false,
                          "not built: nvcc was not found when this binary was configured "
                          "(rebuild with the CUDA toolkit, see README)",
                          {"fp32", "bf16"},
                          kOps});
#endif
  return v;
}

std::unique_ptr<Backend> make_backend(const std::string& name, int threads) {
  if (name == "cpu") return std::make_unique<CpuBackend>(threads);
#ifdef MOEPROBE_HAVE_CUDA
  if (name == "cuda") return make_cuda_backend(threads);
#endif
  for (const auto& b : list_backends())
    if (b.name == name)
      throw BackendUnavailable("backend '" + name + "' is unavailable: " + b.reason);
  throw moeplan::UnknownIdError("backend", name, {"cpu", "cuda"});
}

}  // namespace moeprobe
