// Private helpers of the probe kernels: launch checks, bf16 loads, warp sums.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "moekernels/index_math.hpp"
#include "moekernels_cuda.hpp"

#define MOEK_CHECK_LAUNCH(what) \
  ::moekernels::cuda::throw_on_error(cudaGetLastError(), what, __FILE__, __LINE__)

namespace moekernels::cuda::detail {

constexpr int kWarp = 32;

// e4m3 elements are read and written unscaled (scale 1); callers that hold a
// per-tensor scale use moekernels::e4m3_quantize / e4m3_dequantize directly.
__device__ __forceinline__ float load_elem(const void* p, Elem t, long long i) {
  if (t == Elem::f32) return static_cast<const float*>(p)[i];
  if (t == Elem::e4m3)
    return moekernels::e4m3_bits_to_float(static_cast<const std::uint8_t*>(p)[i]);
  return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
}
__device__ __forceinline__ void store_elem(void* p, Elem t, long long i, float v) {
  if (t == Elem::f32)
    static_cast<float*>(p)[i] = v;
  else if (t == Elem::e4m3)
    static_cast<std::uint8_t*>(p)[i] = moekernels::float_to_e4m3_bits(v);
  else
    static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(v);
}

// The two bf16 values packed in a 32-bit word (low half first) as floats: exact,
// on registers only (reinterpreting a uint4 as a __nv_bfloat162 array can put it
// in local memory).
__device__ __forceinline__ void bf16x2_to_float(unsigned u, float& lo, float& hi) {
  lo = __uint_as_float(u << 16);
  hi = __uint_as_float(u & 0xFFFF0000u);
}
__device__ __forceinline__ void bf16x8_to_float(const uint4& r, float* f) {
  bf16x2_to_float(r.x, f[0], f[1]);
  bf16x2_to_float(r.y, f[2], f[3]);
  bf16x2_to_float(r.z, f[4], f[5]);
  bf16x2_to_float(r.w, f[6], f[7]);
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = kWarp / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = kWarp / 2; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Grid size for a grid-stride loop over n items.
inline unsigned grid_for(long long n, int block, long long max_blocks = 65535LL * 16) {
  long long g = moekernels::ceil_div(n > 0 ? n : 1, block);
  if (g > max_blocks) g = max_blocks;
  return static_cast<unsigned>(g);
}

}  // namespace moekernels::cuda::detail
