// Synthetic data, conversions and the bandwidth kernels (copy, triad, L2 scribble).
#include "common.cuh"

namespace moekernels::cuda {

namespace {

using detail::grid_for;

__global__ void fill_pattern_kernel(void* dst, Elem t, long long n, std::uint64_t seed, float scale,
                                    long long index0) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    // Same expression as moeprobe::Pattern::value then round_to (one rounding each).
    const float v =
        __fmul_rn(scale, moekernels::pattern_value(seed, static_cast<std::uint64_t>(index0 + i)));
    if (t == Elem::f32)
      static_cast<float*>(dst)[i] = v;
    else
      static_cast<std::uint16_t*>(dst)[i] = moekernels::float_to_bf16_bits(v);
  }
}

__global__ void fill_pattern_t_kernel(void* dst, Elem t, int batch, int rows, int cols,
                                      std::uint64_t seed, float scale) {
  const long long n = static_cast<long long>(batch) * rows * cols;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    // i = (b*cols + c)*rows + r holds pattern element (b*rows + r)*cols + c.
    const long long r = i % rows, bc = i / rows, c = bc % cols, b = bc / cols;
    const long long src = (b * rows + r) * cols + c;
    const float v =
        __fmul_rn(scale, moekernels::pattern_value(seed, static_cast<std::uint64_t>(src)));
    if (t == Elem::f32)
      static_cast<float*>(dst)[i] = v;
    else
      static_cast<std::uint16_t*>(dst)[i] = moekernels::float_to_bf16_bits(v);
  }
}

__global__ void fill_e4m3_kernel(std::uint8_t* dst, long long n, std::uint64_t seed, float scale,
                                 float q_scale) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x)
    dst[i] = moekernels::e4m3_quantize(
        __fmul_rn(scale, moekernels::pattern_value(seed, static_cast<std::uint64_t>(i))), q_scale);
}

__global__ void quantize_e4m3_kernel(const float* src, std::uint8_t* dst, long long n,
                                     float q_scale) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x)
    dst[i] = moekernels::e4m3_quantize(src[i], q_scale);
}

__global__ void convert_kernel(const float* src, void* dst, Elem t, long long n) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x)
    detail::store_elem(dst, t, i, src[i]);
}

__global__ void to_f32_kernel(const void* src, Elem t, float* dst, long long n) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x)
    dst[i] = detail::load_elem(src, t, i);
}

// a = b + 3c, four floats (16 bytes) per access.
__global__ void triad_vec4(float4* a, const float4* b, const float4* c, long long n4) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n4;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const float4 x = b[i], y = c[i];
    a[i] = make_float4(__fadd_rn(x.x, __fmul_rn(3.0f, y.x)), __fadd_rn(x.y, __fmul_rn(3.0f, y.y)),
                       __fadd_rn(x.z, __fmul_rn(3.0f, y.z)), __fadd_rn(x.w, __fmul_rn(3.0f, y.w)));
  }
}
__global__ void triad_scalar(float* a, const float* b, const float* c, long long begin,
                             long long n) {
  for (long long i = begin + blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x)
    a[i] = __fadd_rn(b[i], __fmul_rn(3.0f, c[i]));
}

__global__ void copy_vec4(uint4* dst, const uint4* src, long long n16) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n16;
       i += static_cast<long long>(gridDim.x) * blockDim.x)
    dst[i] = src[i];
}

__global__ void scribble_vec4(uint4* buf, long long n16, unsigned salt) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n16;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const unsigned v = static_cast<unsigned>(i) ^ salt;
    buf[i] = make_uint4(v, v + 1u, v + 2u, v + 3u);
  }
}

bool aligned16(const void* p) {
  return (reinterpret_cast<std::uintptr_t>(p) & 15u) == 0;
}

}  // namespace

void fill_pattern(void* dst, Elem t, long long n, std::uint64_t seed, float scale, long long index0,
                  cudaStream_t st) {
  if (t == Elem::e4m3)
    throw_on_error(cudaErrorInvalidValue, "fill_pattern: e4m3 needs fill_pattern_e4m3 (a scale)",
                   __FILE__, __LINE__);
  if (n <= 0) return;
  fill_pattern_kernel<<<grid_for(n, 256), 256, 0, st>>>(dst, t, n, seed, scale, index0);
  MOEK_CHECK_LAUNCH("fill_pattern");
}

void fill_pattern_transposed(void* dst, Elem t, int batch, int rows, int cols, std::uint64_t seed,
                             float scale, cudaStream_t st) {
  if (t == Elem::e4m3 || batch < 0 || rows < 0 || cols < 0)
    throw_on_error(cudaErrorInvalidValue,
                   "fill_pattern_transposed: needs f32 or bf16 and non-negative shapes", __FILE__,
                   __LINE__);
  const long long n = static_cast<long long>(batch) * rows * cols;
  if (n <= 0) return;
  fill_pattern_t_kernel<<<grid_for(n, 256), 256, 0, st>>>(dst, t, batch, rows, cols, seed, scale);
  MOEK_CHECK_LAUNCH("fill_pattern_transposed");
}

void fill_pattern_e4m3(void* dst, long long n, std::uint64_t seed, float scale, float q_scale,
                       cudaStream_t st) {
  if (n <= 0) return;
  fill_e4m3_kernel<<<grid_for(n, 256), 256, 0, st>>>(static_cast<std::uint8_t*>(dst), n, seed,
                                                     scale, q_scale);
  MOEK_CHECK_LAUNCH("fill_pattern_e4m3");
}

void quantize_e4m3(const float* src, void* dst, long long n, float q_scale, cudaStream_t st) {
  if (n <= 0) return;
  quantize_e4m3_kernel<<<grid_for(n, 256), 256, 0, st>>>(src, static_cast<std::uint8_t*>(dst), n,
                                                         q_scale);
  MOEK_CHECK_LAUNCH("quantize_e4m3");
}

void convert_f32(const float* src, void* dst, Elem t, long long n, cudaStream_t st) {
  if (n <= 0) return;
  convert_kernel<<<grid_for(n, 256), 256, 0, st>>>(src, dst, t, n);
  MOEK_CHECK_LAUNCH("convert_f32");
}

void to_f32(const void* src, Elem t, float* dst, long long n, cudaStream_t st) {
  if (n <= 0) return;
  to_f32_kernel<<<grid_for(n, 256), 256, 0, st>>>(src, t, dst, n);
  MOEK_CHECK_LAUNCH("to_f32");
}

void triad(float* a, const float* b, const float* c, long long n, cudaStream_t st) {
  if (n <= 0) return;
  long long done = 0;
  if (aligned16(a) && aligned16(b) && aligned16(c)) {
    const long long n4 = n / 4;
    if (n4 > 0) {
      triad_vec4<<<grid_for(n4, 256), 256, 0, st>>>(reinterpret_cast<float4*>(a),
                                                    reinterpret_cast<const float4*>(b),
                                                    reinterpret_cast<const float4*>(c), n4);
      MOEK_CHECK_LAUNCH("triad_vec4");
    }
    done = n4 * 4;
  }
  if (done < n) {
    triad_scalar<<<grid_for(n - done, 256), 256, 0, st>>>(a, b, c, done, n);
    MOEK_CHECK_LAUNCH("triad_scalar");
  }
}

void copy16(void* dst, const void* src, long long bytes, cudaStream_t st) {
  if (bytes <= 0) return;
  if (bytes % 16 != 0 || !aligned16(dst) || !aligned16(src))
    throw_on_error(cudaErrorInvalidValue, "copy16: bytes and pointers must be multiples of 16",
                   __FILE__, __LINE__);
  copy_vec4<<<grid_for(bytes / 16, 256), 256, 0, st>>>(static_cast<uint4*>(dst),
                                                       static_cast<const uint4*>(src), bytes / 16);
  MOEK_CHECK_LAUNCH("copy16");
}

void scribble(void* buf, long long bytes, cudaStream_t st) {
  static unsigned salt = 0x9E3779B9u;
  salt = salt * 1664525u + 1013904223u;
  if (bytes < 16) return;
  scribble_vec4<<<grid_for(bytes / 16, 256), 256, 0, st>>>(static_cast<uint4*>(buf), bytes / 16,
                                                           salt);
  MOEK_CHECK_LAUNCH("scribble");
}

}  // namespace moekernels::cuda
