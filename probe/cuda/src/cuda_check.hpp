// Check macros for CUDA runtime, cuBLASLt and NCCL calls (private to the CUDA
// backend). The throwing forms raise moeplan::Error with the location, the
// call text and the library's error string; the _NOTHROW forms (destructors)
// print to stderr instead.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <nccl.h>

#include <string>

namespace moeprobe::cudabk {

[[noreturn]] void raise(const char* lib, const char* call, const char* file, int line,
                        const std::string& msg);
void warn(const char* lib, const char* call, const char* file, int line, const std::string& msg);

inline std::string cuda_msg(cudaError_t e) {
  return std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
}
inline std::string cublas_msg(cublasStatus_t s) {
  return std::string(cublasLtGetStatusName(s)) + ": " + cublasLtGetStatusString(s);
}
inline std::string nccl_msg(ncclResult_t r) {
  return ncclGetErrorString(r);
}

}  // namespace moeprobe::cudabk

#define MOE_CUDA_CHECK(call)                                           \
  do {                                                                 \
    const cudaError_t moe_e_ = (call);                                 \
    if (moe_e_ != cudaSuccess)                                         \
      ::moeprobe::cudabk::raise("CUDA", #call, __FILE__, __LINE__,     \
                                ::moeprobe::cudabk::cuda_msg(moe_e_)); \
  } while (0)
#define MOE_CUBLAS_CHECK(call)                                           \
  do {                                                                   \
    const cublasStatus_t moe_s_ = (call);                                \
    if (moe_s_ != CUBLAS_STATUS_SUCCESS)                                 \
      ::moeprobe::cudabk::raise("cuBLASLt", #call, __FILE__, __LINE__,   \
                                ::moeprobe::cudabk::cublas_msg(moe_s_)); \
  } while (0)
#define MOE_NCCL_CHECK(call)                                           \
  do {                                                                 \
    const ncclResult_t moe_r_ = (call);                                \
    if (moe_r_ != ncclSuccess)                                         \
      ::moeprobe::cudabk::raise("NCCL", #call, __FILE__, __LINE__,     \
                                ::moeprobe::cudabk::nccl_msg(moe_r_)); \
  } while (0)
#define MOE_CUDA_CHECK_NOTHROW(call)                                  \
  do {                                                                \
    const cudaError_t moe_e_ = (call);                                \
    if (moe_e_ != cudaSuccess)                                        \
      ::moeprobe::cudabk::warn("CUDA", #call, __FILE__, __LINE__,     \
                               ::moeprobe::cudabk::cuda_msg(moe_e_)); \
  } while (0)
#define MOE_CUBLAS_CHECK_NOTHROW(call)                                  \
  do {                                                                  \
    const cublasStatus_t moe_s_ = (call);                               \
    if (moe_s_ != CUBLAS_STATUS_SUCCESS)                                \
      ::moeprobe::cudabk::warn("cuBLASLt", #call, __FILE__, __LINE__,   \
                               ::moeprobe::cudabk::cublas_msg(moe_s_)); \
  } while (0)
#define MOE_NCCL_CHECK_NOTHROW(call)                                  \
  do {                                                                \
    const ncclResult_t moe_r_ = (call);                               \
    if (moe_r_ != ncclSuccess)                                        \
      ::moeprobe::cudabk::warn("NCCL", #call, __FILE__, __LINE__,     \
                               ::moeprobe::cudabk::nccl_msg(moe_r_)); \
  } while (0)
