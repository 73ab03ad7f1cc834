// Launch-error reporting for the kernels library (host code).
#include <string>

#include "moekernels_cuda.hpp"
#include "moeplan/errors.hpp"

namespace moekernels::cuda {

void throw_on_error(cudaError_t err, const char* what, const char* file, int line) {
  if (err == cudaSuccess) return;
  throw moeplan::Error(std::string(file) + ":" + std::to_string(line) + ": " + what + ": " +
                       cudaGetErrorName(err) + ": " + cudaGetErrorString(err));
}

}  // namespace moekernels::cuda
