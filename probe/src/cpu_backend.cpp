// CPU backend: Eigen for the dense products, OpenMP across cores, weights and
// KV cache in fp32 or bf16 (bf16 widened to fp32 in registers; activations fp32);
// optionally an fp8 e4m3 KV cache (dequantised on load, quantised on store).
#include "cpu_backend.hpp"

#include <unistd.h>
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <thread>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "moekernels/index_math.hpp"

namespace moeprobe {

namespace mk = moekernels;

namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// A weight matrix [rows, cols] in its storage type, filled from a pattern.
struct WeightStore {
  int rows = 0, cols = 0;
  DType dtype = DType::fp32;
  std::vector<float> f32;
  std::vector<std::uint16_t> b16;

  // index(r, c): the pattern element index of entry (r, c) (ref:: layout).
  template <class IndexFn>
  void fill(int r, int c, DType d, const Pattern& p, IndexFn index) {
    rows = r;
    cols = c;
    dtype = d;
    const long long n = static_cast<long long>(r) * c;
    if (d == DType::fp32)
      f32.assign(static_cast<std::size_t>(n), 0.0f);
    else
      b16.assign(static_cast<std::size_t>(n), 0);
#pragma omp parallel for schedule(static)
    for (long long rr = 0; rr < r; ++rr)
      for (int cc = 0; cc < c; ++cc) {
        const float v = p.value(static_cast<std::uint64_t>(index(rr, cc)));
        const std::size_t at = static_cast<std::size_t>(rr * c + cc);
        if (d == DType::fp32)
          f32[at] = v;
        else
          b16[at] = mk::float_to_bf16_bits(v);
      }
  }
  void fill(int r, int c, DType d, const Pattern& p, long long offset = 0) {
    fill(r, c, d, p, [c, offset](long long rr, long long cc) { return offset + rr * c + cc; });
  }
  long long bytes() const {
    return static_cast<long long>(rows) * cols * dtype_bytes(dtype);
  }
};

// acc[i] += sum_c x_i[c] * w[c] for up to 4 rows x_i (stride ldx), w fp32 or bf16.
template <int MR, class W>
inline void dot_rows(const float* x, long long ldx, const W* w, int k, float* out) {
  float acc[MR] = {};
  for (int i = 0; i < MR; ++i) {
    const float* xi = x + i * ldx;
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int c = 0; c < k; ++c) {
      float wc;
      if constexpr (std::is_same_v<W, float>) {
        wc = w[c];
      } else {
        const std::uint32_t u = static_cast<std::uint32_t>(w[c]) << 16;
        std::memcpy(&wc, &u, 4);
      }
      s += xi[c] * wc;
    }
    acc[i] = s;
  }
  for (int i = 0; i < MR; ++i) out[i] = acc[i];
}

// Small-M product: rows of W partitioned across threads; W read once per row block.
template <class W>
void gemv_like(const float* x, int m, long long ldx, const W* w, int k, int nrows, float* y,
               long long ldy) {
#pragma omp parallel for schedule(static) if (static_cast <long long>(nrows) * k > 32768)
  for (int r = 0; r < nrows; ++r) {
    const W* wr = w + static_cast<long long>(r) * k;
    float tmp[4];
    for (int i = 0; i < m; i += 4) {
      const int mr = std::min(4, m - i);
      switch (mr) {
        case 4:
          dot_rows<4>(x + i * ldx, ldx, wr, k, tmp);
          break;
        case 3:
          dot_rows<3>(x + i * ldx, ldx, wr, k, tmp);
          break;
        case 2:
          dot_rows<2>(x + i * ldx, ldx, wr, k, tmp);
          break;
        default:
          dot_rows<1>(x + i * ldx, ldx, wr, k, tmp);
          break;
      }
      for (int j = 0; j < mr; ++j) y[(i + j) * ldy + r] = tmp[j];
    }
  }
}

// Y[m, nrows] (stride ldy) = X[m, K] (stride ldx) · W[row0 .. row0+nrows, :]^T.
void matmul(const float* x, int m, long long ldx, const WeightStore& w, int row0, int nrows,
            float* y, long long ldy) {
  const int k = w.cols;
  if (m <= 0 || nrows <= 0) return;
  if (m <= 8) {
    if (w.dtype == DType::fp32)
      gemv_like(x, m, ldx, w.f32.data() + static_cast<long long>(row0) * k, k, nrows, y, ldy);
    else
      gemv_like(x, m, ldx, w.b16.data() + static_cast<long long>(row0) * k, k, nrows, y, ldy);
    return;
  }
  using Stride = Eigen::OuterStride<>;
  Eigen::Map<const RowMat, 0, Stride> X(x, m, k, Stride(ldx));
  // Row blocks sized so a widened bf16 block stays in L2.
  const int block = std::max(16, std::min(256, static_cast<int>(262144 / std::max(1, k))));
  const int nblocks = static_cast<int>(mk::ceil_div(nrows, block));
#pragma omp parallel for schedule(dynamic, 1) if (static_cast <long long>(m) * nrows * k > 262144)
  for (int bi = 0; bi < nblocks; ++bi) {
    const int r0 = bi * block, nr = std::min(block, nrows - r0);
    Eigen::Map<RowMat, 0, Stride> Y(y + r0, m, nr, Stride(ldy));
    if (w.dtype == DType::fp32) {
      Eigen::Map<const RowMat> Wb(w.f32.data() + static_cast<long long>(row0 + r0) * k, nr, k);
      Y.noalias() = X * Wb.transpose();
    } else {
      thread_local RowMat wide;
      wide.resize(nr, k);
      const std::uint16_t* src = w.b16.data() + static_cast<long long>(row0 + r0) * k;
      float* dst = wide.data();
      const long long n = static_cast<long long>(nr) * k;
      for (long long i = 0; i < n; ++i) {
        const std::uint32_t u = static_cast<std::uint32_t>(src[i]) << 16;
        std::memcpy(dst + i, &u, 4);
      }
      Y.noalias() = X * wide.transpose();
    }
  }
}

void rmsnorm_rows(float* x, int m, int n, double eps) {
  for (int t = 0; t < m; ++t) {
    float* r = x + static_cast<long long>(t) * n;
    double ss = 0;
    for (int i = 0; i < n; ++i) ss += static_cast<double>(r[i]) * r[i];
    const float inv = static_cast<float>(1.0 / std::sqrt(ss / n + eps));
    for (int i = 0; i < n; ++i) r[i] *= inv;
  }
}

// SwiGLU FFN over m rows: gate/up rows [row0, row0+f) of g/u, down rows [drow0, drow0+h) of d.
struct FfnScratch {
  std::vector<float> g, u;
};
void ffn_forward(const WeightStore& g, const WeightStore& u, const WeightStore& d, int row0, int f,
                 int drow0, const float* x, int m, int h, float* y, FfnScratch& s) {
  s.g.resize(static_cast<std::size_t>(m) * f);
  s.u.resize(static_cast<std::size_t>(m) * f);
  matmul(x, m, h, g, row0, f, s.g.data(), f);
  matmul(x, m, h, u, row0, f, s.u.data(), f);
  const long long n = static_cast<long long>(m) * f;
  for (long long i = 0; i < n; ++i) {
    const float gv = s.g[static_cast<std::size_t>(i)];
    s.g[static_cast<std::size_t>(i)] =
        gv / (1.0f + std::exp(-gv)) * s.u[static_cast<std::size_t>(i)];
  }
  // Down projection reads columns [drow0 ...]: for pooled experts the down block
  // of slot q is rows [q*h, (q+1)*h) of a [pool*h, f] store.
  matmul(s.g.data(), m, f, d, drow0, h, y, h);
}

// ---- MoE ---------------------------------------------------------------------

struct MoeWeights {
  WeightStore router, gate, up, down, sgate, sup, sdown;
  void build(const MoeSpec& s) {
    const int h = s.hidden, e = s.shape.experts, f = s.shape.ffn, pool = s.pool;
    router.fill(e, h, DType::fp32, Pattern::for_fan_in(s.seed + 1, h));
    gate.fill(pool * f, h, s.dtype, Pattern::for_fan_in(s.seed + 2, h));
    up.fill(pool * f, h, s.dtype, Pattern::for_fan_in(s.seed + 3, h));
    down.fill(pool * h, f, s.dtype, Pattern::for_fan_in(s.seed + 4, f));
    const int fs = s.shape.shared_experts * s.shape.shared_ffn;
    if (fs > 0) {
      sgate.fill(fs, h, s.dtype, Pattern::for_fan_in(s.seed + 5, h));
      sup.fill(fs, h, s.dtype, Pattern::for_fan_in(s.seed + 6, h));
      sdown.fill(h, fs, s.dtype, Pattern::for_fan_in(s.seed + 7, fs));
    }
  }
  void build_router_only(const MoeSpec& s) {
    router.fill(s.shape.experts, s.hidden, DType::fp32, Pattern::for_fan_in(s.seed + 1, s.hidden));
  }
};

struct MoeWork {
  std::vector<float> logits, w, x_perm, y_perm, shared_out;
  std::vector<int> ids, counts, offsets, cursor, perm, inv;
  FfnScratch ffn;
};

void route_tokens(const MoeSpec& s, const WeightStore& router, const float* x, int tokens,
                  MoeWork& wk) {
  const MoeShape& m = s.shape;
  wk.logits.resize(static_cast<std::size_t>(tokens) * m.experts);
  matmul(x, tokens, s.hidden, router, 0, m.experts, wk.logits.data(), m.experts);
  wk.ids.resize(static_cast<std::size_t>(tokens) * m.top_k);
  wk.w.resize(wk.ids.size());
  const float* bias = s.bias.empty() ? nullptr : s.bias.data();
#pragma omp parallel if (tokens > 16)
  {
    std::vector<float> scratch(
        static_cast<std::size_t>(mk::routing_scratch_floats(m.experts, m.n_group)));
#pragma omp for schedule(static)
    for (int t = 0; t < tokens; ++t)
      mk::route_token(wk.logits.data() + static_cast<std::size_t>(t) * m.experts, bias, m.experts,
                      m.top_k, m.sigmoid_grouped, m.n_group, m.topk_group, m.normalize,
                      wk.ids.data() + static_cast<std::size_t>(t) * m.top_k,
                      wk.w.data() + static_cast<std::size_t>(t) * m.top_k, scratch.data());
  }
}

void permute_tokens(const MoeSpec& s, const int* ids, const float* x, int tokens, MoeWork& wk) {
  const int e = s.shape.experts, k = s.shape.top_k, h = s.hidden;
  const long long a = static_cast<long long>(tokens) * k;
  wk.counts.resize(static_cast<std::size_t>(e));
  wk.offsets.resize(static_cast<std::size_t>(e) + 1);
  wk.cursor.resize(static_cast<std::size_t>(e));
  wk.perm.resize(static_cast<std::size_t>(a));
  wk.inv.resize(static_cast<std::size_t>(a));
  mk::expert_histogram(ids, a, e, wk.counts.data());
  mk::exclusive_scan(wk.counts.data(), e, wk.offsets.data());
  mk::stable_scatter(ids, a, e, wk.offsets.data(), wk.cursor.data(), wk.perm.data(), wk.inv.data());
  wk.x_perm.resize(static_cast<std::size_t>(a) * h);
#pragma omp parallel for schedule(static) if (a * h > 65536)
  for (long long p = 0; p < a; ++p)
    std::memcpy(wk.x_perm.data() + p * h,
                x + static_cast<long long>(wk.perm[static_cast<std::size_t>(p)] / k) * h,
                sizeof(float) * static_cast<std::size_t>(h));
}

// dot(x[0..k), row `row` of w).
inline float dot_row(const float* x, const WeightStore& w, long long row) {
  float out;
  const long long k = w.cols;
  if (w.dtype == DType::fp32)
    dot_rows<1>(x, 0, w.f32.data() + row * k, static_cast<int>(k), &out);
  else
    dot_rows<1>(x, 0, w.b16.data() + row * k, static_cast<int>(k), &out);
  return out;
}

void run_experts(const MoeSpec& s, const MoeWeights& mw, const float* x_perm, const int* counts,
                 float* y_perm, FfnScratch& scratch) {
  const int h = s.hidden, f = s.shape.ffn;
  // Few rows per expert (decode): one parallel region over (expert, output row)
  // for all touched experts, so a step costs three work-shared loops instead of
  // three parallel regions per expert.
  struct Touched {
    int expert, slot, count;
    long long pos;
  };
  std::vector<Touched> tl;
  int maxc = 0;
  long long rows_total = 0;
  for (int e = 0; e < s.shape.experts; ++e)
    if (counts[e] > 0) {
      tl.push_back(Touched{e, s.slot(e), counts[e], rows_total});
      rows_total += counts[e];
      maxc = std::max(maxc, counts[e]);
    }
  if (maxc <= 8) {
    scratch.g.resize(static_cast<std::size_t>(rows_total) * f);
    scratch.u.resize(static_cast<std::size_t>(rows_total) * f);
    float* g = scratch.g.data();
    float* u = scratch.u.data();
    const long long nt = static_cast<long long>(tl.size());
#pragma omp parallel
    {
#pragma omp for schedule(static)
      for (long long job = 0; job < nt * f; ++job) {
        const Touched& te = tl[static_cast<std::size_t>(job / f)];
        const long long r = job % f, wrow = static_cast<long long>(te.slot) * f + r;
        for (int i = 0; i < te.count; ++i) {
          const float* xr = x_perm + (te.pos + i) * h;
          g[(te.pos + i) * f + r] = dot_row(xr, mw.gate, wrow);
          u[(te.pos + i) * f + r] = dot_row(xr, mw.up, wrow);
        }
      }
#pragma omp for schedule(static)
      for (long long i = 0; i < rows_total * f; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
#pragma omp for schedule(static)
      for (long long job = 0; job < nt * h; ++job) {
        const Touched& te = tl[static_cast<std::size_t>(job / h)];
        const long long c = job % h, wrow = static_cast<long long>(te.slot) * h + c;
        for (int i = 0; i < te.count; ++i)
          y_perm[(te.pos + i) * h + c] = dot_row(g + (te.pos + i) * f, mw.down, wrow);
      }
    }
    return;
  }
  long long pos = 0;
  for (int e = 0; e < s.shape.experts; ++e) {
    const int c = counts[e];
    if (c == 0) continue;
    const int q = s.slot(e);
    ffn_forward(mw.gate, mw.up, mw.down, q * f, f, q * h, x_perm + pos * h, c, h, y_perm + pos * h,
                scratch);
    pos += c;
  }
}

void combine_rows(const MoeSpec& s, const float* y_perm, const int* inv, const float* w, int tokens,
                  float* out, bool accumulate) {
  const int h = s.hidden, k = s.shape.top_k;
#pragma omp parallel for schedule(static) if (static_cast <long long>(tokens) * h * k > 65536)
  for (int t = 0; t < tokens; ++t) {
    float* o = out + static_cast<long long>(t) * h;
    if (!accumulate) std::fill(o, o + h, 0.0f);
    for (int j = 0; j < k; ++j) {
      const std::size_t a = static_cast<std::size_t>(t) * k + j;
      const float wj = w[a];
      const float* y = y_perm + static_cast<long long>(inv[a]) * h;
      for (int c = 0; c < h; ++c) o[c] += wj * y[c];
    }
  }
}

// Full MoE block: out = routed + shared (out overwritten).
void moe_forward(const MoeSpec& s, const MoeWeights& mw, const float* x, int tokens, float* out,
                 MoeWork& wk) {
  route_tokens(s, mw.router, x, tokens, wk);
  permute_tokens(s, wk.ids.data(), x, tokens, wk);
  wk.y_perm.resize(wk.x_perm.size());
  run_experts(s, mw, wk.x_perm.data(), wk.counts.data(), wk.y_perm.data(), wk.ffn);
  const int fs = s.shape.shared_experts * s.shape.shared_ffn;
  const int h = s.hidden;
  if (fs > 0) {
    ffn_forward(mw.sgate, mw.sup, mw.sdown, 0, fs, 0, x, tokens, h, out, wk.ffn);
    combine_rows(s, wk.y_perm.data(), wk.inv.data(), wk.w.data(), tokens, out, true);
  } else {
    combine_rows(s, wk.y_perm.data(), wk.inv.data(), wk.w.data(), tokens, out, false);
  }
}

// ---- attention ----------------------------------------------------------------

struct KvCache {
  DType dtype = DType::fp32;
  bool fp8 = false;  // e4m3 codes with a per-tensor scale (AttentionSpec::kv_dtype)
  float scale = 1.0f;
  std::vector<float> kf, vf;
  std::vector<std::uint16_t> kb, vb;
  std::vector<std::uint8_t> k8, v8;
  // True when rows can be read in place as fp32.
  bool is_f32() const { return !fp8 && dtype == DType::fp32; }
  void build(const AttentionSpec& s) {
    dtype = s.dtype;
    fp8 = s.kv_dtype == KvDType::fp8;
    scale = s.kv_scale;
    const long long nk = static_cast<long long>(s.batch) * s.context * s.kv_heads * s.qk_dim;
    const long long nv =
        s.shared_kv ? 0 : static_cast<long long>(s.batch) * s.context * s.kv_heads * s.v_dim;
    auto gen = [&](std::uint64_t seed, long long n, std::vector<float>& f,
                   std::vector<std::uint16_t>& b, std::vector<std::uint8_t>& q) {
      if (fp8)
        q.resize(static_cast<std::size_t>(n));
      else if (dtype == DType::fp32)
        f.resize(static_cast<std::size_t>(n));
      else
        b.resize(static_cast<std::size_t>(n));
#pragma omp parallel for schedule(static)
      for (long long i = 0; i < n; ++i) {
        const float v = mk::pattern_value(seed, static_cast<std::uint64_t>(i));
        if (fp8)
          q[static_cast<std::size_t>(i)] = mk::e4m3_quantize(v, scale);
        else if (dtype == DType::fp32)
          f[static_cast<std::size_t>(i)] = v;
        else
          b[static_cast<std::size_t>(i)] = mk::float_to_bf16_bits(v);
      }
    };
    gen(s.seed + 2, nk, kf, kb, k8);
    gen(s.seed + 3, nv, vf, vb, v8);
  }
  // Element pointer helpers: row `row` of K (qk floats) / V.
  void load(bool v, long long off, int n, float* dst) const {
    if (fp8) {
      const std::uint8_t* src = (v ? v8 : k8).data() + off;
      for (int i = 0; i < n; ++i) dst[i] = mk::e4m3_dequantize(src[i], scale);
    } else if (dtype == DType::fp32) {
      std::memcpy(dst, (v ? vf : kf).data() + off, sizeof(float) * static_cast<std::size_t>(n));
    } else {
      const std::uint16_t* src = (v ? vb : kb).data() + off;
      for (int i = 0; i < n; ++i) dst[i] = mk::bf16_bits_to_float(src[i]);
    }
  }
  const float* ptr(bool v, long long off) const {
    return (v ? vf : kf).data() + off;
  }
  void store(bool v, long long off, int n, const float* src) {
    if (fp8) {
      std::uint8_t* d = (v ? v8 : k8).data() + off;
      for (int i = 0; i < n; ++i) d[i] = mk::e4m3_quantize(src[i], scale);
    } else if (dtype == DType::fp32) {
      std::memcpy((v ? vf : kf).data() + off, src, sizeof(float) * static_cast<std::size_t>(n));
    } else {
      std::uint16_t* d = (v ? vb : kb).data() + off;
      for (int i = 0; i < n; ++i) d[i] = mk::float_to_bf16_bits(src[i]);
    }
  }
};

// out [B, Q, Hq, v] from q [B, Q, Hq, qk]. Work items: (sequence, query,
// kv head, chunk of the query heads sharing it); keys in blocks of 64 with the
// shared online-softmax update, so each K/V row is read once per item.
void attention_forward(const AttentionSpec& s, const KvCache& kv, const float* q, float* out) {
  const int hq = s.heads, hkv = s.kv_heads, dq = s.qk_dim, dv = s.v_dim, group = hq / hkv;
  const long long l = s.context;
  const int base_items = s.batch * s.queries * hkv;
  const int chunks =
      std::max(1, std::min(group, static_cast<int>(mk::ceil_div(2LL * max_threads(), base_items))));
  const int items = base_items * chunks;
  constexpr int kBlock = 64;
#pragma omp parallel
  {
    std::vector<float> krow(static_cast<std::size_t>(dq)), vrow(static_cast<std::size_t>(dv));
    std::vector<float> sc(static_cast<std::size_t>(group) * kBlock),
        acc(static_cast<std::size_t>(group) * dv);
    std::vector<mk::OnlineSoftmax> st(static_cast<std::size_t>(group));
#pragma omp for schedule(dynamic, 1)
    for (int it = 0; it < items; ++it) {
      const int chunk = it % chunks;
      const int kvh = (it / chunks) % hkv;
      const int qi = (it / chunks / hkv) % s.queries;
      const int b = it / chunks / hkv / s.queries;
      const mk::Range hr = mk::block_range(group, chunks, chunk);
      const int nh = static_cast<int>(hr.end - hr.begin);
      if (nh == 0) continue;
      const int h0 = kvh * group + static_cast<int>(hr.begin);
      const long long pos = l - s.queries + qi;
      const float* qb = q + ((static_cast<long long>(b) * s.queries + qi) * hq + h0) * dq;
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int h = 0; h < nh; ++h) st[static_cast<std::size_t>(h)] = mk::online_softmax_init();
      for (long long j0 = 0; j0 <= pos; j0 += kBlock) {
        const int nb = static_cast<int>(std::min<long long>(kBlock, pos + 1 - j0));
        for (int jj = 0; jj < nb; ++jj) {
          const long long off = ((static_cast<long long>(b) * l + j0 + jj) * hkv + kvh) * dq;
          const float* kr;
          if (kv.is_f32())
            kr = kv.ptr(false, off);
          else {
            kv.load(false, off, dq, krow.data());
            kr = krow.data();
          }
          for (int h = 0; h < nh; ++h) {
            const float* qh = qb + static_cast<long long>(h) * dq;
            float d = 0.0f;
#pragma omp simd reduction(+ : d)
            for (int c = 0; c < dq; ++c) d += qh[c] * kr[c];
            sc[static_cast<std::size_t>(h) * kBlock + jj] = d * s.scale;
          }
        }
        for (int h = 0; h < nh; ++h) {
          float bm = -3.0e38f;
          float* sh = sc.data() + static_cast<std::size_t>(h) * kBlock;
          for (int jj = 0; jj < nb; ++jj) bm = std::max(bm, sh[jj]);
          const float scale = mk::online_softmax_raise(st[static_cast<std::size_t>(h)], bm);
          float* ah = acc.data() + static_cast<std::size_t>(h) * dv;
          if (scale != 1.0f)
            for (int c = 0; c < dv; ++c) ah[c] *= scale;
          const float m = st[static_cast<std::size_t>(h)].m;
          for (int jj = 0; jj < nb; ++jj) {
            sh[jj] = std::exp(sh[jj] - m);
            st[static_cast<std::size_t>(h)].l += sh[jj];
          }
        }
        for (int jj = 0; jj < nb; ++jj) {
          const long long row = (static_cast<long long>(b) * l + j0 + jj) * hkv + kvh;
          const float* vr;
          const bool shared = s.shared_kv;
          const long long off = shared ? row * dq : row * dv;
          if (kv.is_f32())
            vr = kv.ptr(!shared, off);
          else {
            kv.load(!shared, off, dv, vrow.data());
            vr = vrow.data();
          }
          for (int h = 0; h < nh; ++h) {
            const float p = sc[static_cast<std::size_t>(h) * kBlock + jj];
            float* ah = acc.data() + static_cast<std::size_t>(h) * dv;
#pragma omp simd
            for (int c = 0; c < dv; ++c) ah[c] += p * vr[c];
          }
        }
      }
      for (int h = 0; h < nh; ++h) {
        float* o = out + ((static_cast<long long>(b) * s.queries + qi) * hq + h0 + h) * dv;
        const float inv = 1.0f / st[static_cast<std::size_t>(h)].l;
        for (int c = 0; c < dv; ++c) o[c] = acc[static_cast<std::size_t>(h) * dv + c] * inv;
      }
    }
  }
}

// ---- ops ------------------------------------------------------------------------

class TriadOp : public Op {
 public:
  explicit TriadOp(const TriadSpec& s) : n_(s.n) {
    a_.resize(static_cast<std::size_t>(n_));
    b_.resize(static_cast<std::size_t>(n_));
    c_.resize(static_cast<std::size_t>(n_));
#pragma omp parallel for schedule(static)
    for (long long i = 0; i < n_; ++i) {
      a_[static_cast<std::size_t>(i)] = 0.0f;
      b_[static_cast<std::size_t>(i)] =
          mk::pattern_value(s.seed + 1, static_cast<std::uint64_t>(i));
      c_[static_cast<std::size_t>(i)] =
          mk::pattern_value(s.seed + 2, static_cast<std::uint64_t>(i));
    }
  }
  void run() override {
    float* a = a_.data();
    const float* b = b_.data();
    const float* c = c_.data();
#pragma omp parallel for simd schedule(static)
    for (long long i = 0; i < n_; ++i) a[i] = b[i] + 3.0f * c[i];
  }
  OpOutput output() override {
    return OpOutput{a_, {}};
  }

 private:
  long long n_;
  std::vector<float> a_, b_, c_;
};

class GemmOp : public Op {
 public:
  GemmOp(const GemmSpec& s, const std::vector<float>& x) : s_(s), x_(x) {
    w_.fill(s.n, s.k, s.dtype, Pattern::for_fan_in(s.seed, s.k));
    y_.resize(static_cast<std::size_t>(s.m) * s.n);
  }
  void run() override { matmul(x_.data(), s_.m, s_.k, w_, 0, s_.n, y_.data(), s_.n); }
  OpOutput output() override { return OpOutput{y_, {}}; }

 private:
  GemmSpec s_;
  std::vector<float> x_, y_;
  WeightStore w_;
};

class RouterOp : public Op {
 public:
  RouterOp(const MoeSpec& s, const std::vector<float>& x, int tokens)
      : s_(s), x_(x), tokens_(tokens) {
    mw_.build_router_only(s);
  }
  void run() override { route_tokens(s_, mw_.router, x_.data(), tokens_, wk_); }
  OpOutput output() override {
    OpOutput o;
    o.i = wk_.ids;
    o.f = wk_.logits;
    o.f.insert(o.f.end(), wk_.w.begin(), wk_.w.end());
    return o;
  }

 private:
  MoeSpec s_;
  std::vector<float> x_;
  int tokens_;
  MoeWeights mw_;
  MoeWork wk_;
};

class PermuteOp : public Op {
 public:
  PermuteOp(const MoeSpec& s, const std::vector<int>& ids, const std::vector<float>& x, int tokens)
      : s_(s), ids_(ids), x_(x), tokens_(tokens) {}
  void run() override { permute_tokens(s_, ids_.data(), x_.data(), tokens_, wk_); }
  OpOutput output() override {
    OpOutput o;
    o.i = wk_.counts;
    o.i.insert(o.i.end(), wk_.offsets.begin(), wk_.offsets.end());
    o.i.insert(o.i.end(), wk_.perm.begin(), wk_.perm.end());
    o.i.insert(o.i.end(), wk_.inv.begin(), wk_.inv.end());
    o.f = wk_.x_perm;
    return o;
  }

 private:
  MoeSpec s_;
  std::vector<int> ids_;
  std::vector<float> x_;
  int tokens_;
  MoeWork wk_;
};

class ExpertsOp : public Op {
 public:
  ExpertsOp(const MoeSpec& s, const std::vector<float>& x_perm, const std::vector<int>& counts)
      : s_(s), x_(x_perm), counts_(counts), y_(x_perm.size()) {
    mw_.build(s);
  }
  void run() override { run_experts(s_, mw_, x_.data(), counts_.data(), y_.data(), scratch_); }
  OpOutput output() override { return OpOutput{y_, {}}; }

 private:
  MoeSpec s_;
  std::vector<float> x_;
  std::vector<int> counts_;
  std::vector<float> y_;
  MoeWeights mw_;
  FfnScratch scratch_;
};

class CombineOp : public Op {
 public:
  CombineOp(const MoeSpec& s, const std::vector<float>& y, const std::vector<int>& inv,
            const std::vector<float>& w, int tokens)
      : s_(s),
        y_(y),
        inv_(inv),
        w_(w),
        tokens_(tokens),
        out_(static_cast<std::size_t>(tokens) * s.hidden) {}
  void run() override {
    combine_rows(s_, y_.data(), inv_.data(), w_.data(), tokens_, out_.data(), false);
  }
  OpOutput output() override { return OpOutput{out_, {}}; }

 private:
  MoeSpec s_;
  std::vector<float> y_;
  std::vector<int> inv_;
  std::vector<float> w_;
  int tokens_;
  std::vector<float> out_;
};

class MoeFusedOp : public Op {
 public:
  MoeFusedOp(const MoeSpec& s, const std::vector<float>& x, int tokens)
      : s_(s), x_(x), tokens_(tokens), out_(static_cast<std::size_t>(tokens) * s.hidden) {
    mw_.build(s);
  }
  void run() override { moe_forward(s_, mw_, x_.data(), tokens_, out_.data(), wk_); }
  OpOutput output() override { return OpOutput{out_, wk_.ids}; }

 private:
  MoeSpec s_;
  std::vector<float> x_;
  int tokens_;
  std::vector<float> out_;
  MoeWeights mw_;
  MoeWork wk_;
};

class AttentionOp : public Op {
 public:
  explicit AttentionOp(const AttentionSpec& s) : s_(s) {
    kv_.build(s);
    q_.resize(static_cast<std::size_t>(s.batch) * s.queries * s.heads * s.qk_dim);
    for (std::size_t i = 0; i < q_.size(); ++i) q_[i] = mk::pattern_value(s.seed + 1, i);
    out_.resize(static_cast<std::size_t>(s.batch) * s.queries * s.heads * s.v_dim);
  }
  void run() override { attention_forward(s_, kv_, q_.data(), out_.data()); }
  OpOutput output() override { return OpOutput{out_, {}}; }

 private:
  AttentionSpec s_;
  KvCache kv_;
  std::vector<float> q_, out_;
};

// ---- decoder layers ----------------------------------------------------------------

struct LayerWeights {
  WeightStore qkv, q_a, q_b, kv_a, uk, uv, o, fg, fu, fd;
  MoeWeights moe;
  KvCache cache;
};

class LayerOp : public Op {
 public:
  LayerOp(const LayerSpec& s, const std::vector<float>& x) : s_(s), x_in_(x) {
    const LayerShape& sh = s.shape;
    const AttnShape& a = sh.attn;
    const int h = sh.hidden;
    layers_.resize(static_cast<std::size_t>(s.layers));
    for (int l = 0; l < s.layers; ++l) {
      LayerWeights& w = layers_[static_cast<std::size_t>(l)];
      const std::uint64_t base = s.seed + 1000ull * static_cast<std::uint64_t>(l);
      if (a.mla) {
        const int qk = a.nope_dim + a.rope_dim, r = a.kv_lora_rank;
        if (a.q_lora_rank > 0) {
          w.q_a.fill(a.q_lora_rank, h, s.dtype, Pattern::for_fan_in(base + 14, h));
          w.q_b.fill(a.heads * qk, a.q_lora_rank, s.dtype,
                     Pattern::for_fan_in(base + 15, a.q_lora_rank));
        } else {
          w.q_b.fill(a.heads * qk, h, s.dtype, Pattern::for_fan_in(base + 15, h));
        }
        w.kv_a.fill(r + a.rope_dim, h, s.dtype, Pattern::for_fan_in(base + 16, h));
        // W_uk stored per head as [r, nope] (row c, column n) so q_lat = q_nope · W^T.
        const int nope = a.nope_dim;
        w.uk.fill(a.heads * r, nope, s.dtype, Pattern::for_fan_in(base + 17, nope),
                  [r, nope](long long row, long long n) {
                    const long long hh = row / r, c = row % r;
                    return (hh * nope + n) * r + c;
                  });
        w.uv.fill(a.heads * a.v_head_dim, r, s.dtype, Pattern::for_fan_in(base + 18, r));
        w.o.fill(h, a.heads * a.v_head_dim, s.dtype,
                 Pattern::for_fan_in(base + 13, a.heads * a.v_head_dim));
      } else {
        w.qkv.fill((a.heads + 2 * a.kv_heads) * a.head_dim, h, s.dtype,
                   Pattern::for_fan_in(base + 10, h));
        w.o.fill(h, a.heads * a.head_dim, s.dtype,
                 Pattern::for_fan_in(base + 13, a.heads * a.head_dim));
      }
      if (sh.moe) {
        w.moe.build(s.moe_spec(l));
      } else {
        w.fg.fill(sh.dense_ffn, h, s.dtype, Pattern::for_fan_in(base + 30, h));
        w.fu.fill(sh.dense_ffn, h, s.dtype, Pattern::for_fan_in(base + 31, h));
        w.fd.fill(h, sh.dense_ffn, s.dtype, Pattern::for_fan_in(base + 32, sh.dense_ffn));
      }
      w.cache.build(s.attention_spec(l));
    }
    x_.resize(x.size());
  }

  void run() override {
    const LayerShape& sh = s_.shape;
    const AttnShape& a = sh.attn;
    const int h = sh.hidden, t_all = s_.tokens();
    std::copy(x_in_.begin(), x_in_.end(), x_.begin());
    ids_.clear();
    for (int l = 0; l < s_.layers; ++l) {
      LayerWeights& w = layers_[static_cast<std::size_t>(l)];
      const AttentionSpec as = s_.attention_spec(l);
      hn_ = x_;
      rmsnorm_rows(hn_.data(), t_all, h, sh.rms_eps);
      q_.resize(static_cast<std::size_t>(t_all) * as.heads * as.qk_dim);
      const long long first_new = as.context - s_.queries;
      auto row_of = [&](int t) {  // cache row index (b, position) of token t, times kv_heads
        const int b = t / s_.queries, qi = t % s_.queries;
        return (static_cast<long long>(b) * as.context + first_new + qi) * as.kv_heads;
      };
      if (!a.mla) {
        const int d = a.head_dim, n = (a.heads + 2 * a.kv_heads) * d;
        tmp_.resize(static_cast<std::size_t>(t_all) * n);
        matmul(hn_.data(), t_all, h, w.qkv, 0, n, tmp_.data(), n);
        for (int t = 0; t < t_all; ++t) {
          const float* r = tmp_.data() + static_cast<long long>(t) * n;
          std::copy_n(r, a.heads * d, q_.data() + static_cast<long long>(t) * a.heads * d);
          w.cache.store(false, row_of(t) * d, a.kv_heads * d, r + a.heads * d);
          w.cache.store(true, row_of(t) * d, a.kv_heads * d, r + (a.heads + a.kv_heads) * d);
        }
      } else {
        const int qk = a.nope_dim + a.rope_dim, r = a.kv_lora_rank, row = r + a.rope_dim;
        tmp_.resize(static_cast<std::size_t>(t_all) * a.heads * qk);
        if (a.q_lora_rank > 0) {
          qa_.resize(static_cast<std::size_t>(t_all) * a.q_lora_rank);
          matmul(hn_.data(), t_all, h, w.q_a, 0, a.q_lora_rank, qa_.data(), a.q_lora_rank);
          rmsnorm_rows(qa_.data(), t_all, a.q_lora_rank, sh.rms_eps);
          matmul(qa_.data(), t_all, a.q_lora_rank, w.q_b, 0, a.heads * qk, tmp_.data(),
                 a.heads * qk);
        } else {
          matmul(hn_.data(), t_all, h, w.q_b, 0, a.heads * qk, tmp_.data(), a.heads * qk);
        }
        kvn_.resize(static_cast<std::size_t>(t_all) * row);
        matmul(hn_.data(), t_all, h, w.kv_a, 0, row, kvn_.data(), row);
        for (int t = 0; t < t_all; ++t)
          w.cache.store(false, row_of(t) * row, row, kvn_.data() + static_cast<long long>(t) * row);
        // Absorb W_uk per head: q_lat = q_nope · W_uk^T, then append the rope part.
        for (int hh = 0; hh < a.heads; ++hh) {
          matmul(tmp_.data() + static_cast<long long>(hh) * qk, t_all,
                 static_cast<long long>(a.heads) * qk, w.uk, hh * r, r,
                 q_.data() + static_cast<long long>(hh) * row,
                 static_cast<long long>(a.heads) * row);
          for (int t = 0; t < t_all; ++t)
            std::copy_n(tmp_.data() + (static_cast<long long>(t) * a.heads + hh) * qk + a.nope_dim,
                        a.rope_dim,
                        q_.data() + (static_cast<long long>(t) * a.heads + hh) * row + r);
        }
      }
      att_.resize(static_cast<std::size_t>(t_all) * as.heads * as.v_dim);
      attention_forward(as, w.cache, q_.data(), att_.data());
      const float* o_in = att_.data();
      int o_k = a.heads * a.head_dim;
      if (a.mla) {
        const int r = a.kv_lora_rank, v = a.v_head_dim;
        o_k = a.heads * v;
        ov_.resize(static_cast<std::size_t>(t_all) * o_k);
        for (int hh = 0; hh < a.heads; ++hh)
          matmul(att_.data() + static_cast<long long>(hh) * r, t_all,
                 static_cast<long long>(a.heads) * r, w.uv, hh * v, v,
                 ov_.data() + static_cast<long long>(hh) * v, o_k);
        o_in = ov_.data();
      }
      y_.resize(static_cast<std::size_t>(t_all) * h);
      matmul(o_in, t_all, o_k, w.o, 0, h, y_.data(), h);
      for (std::size_t i = 0; i < x_.size(); ++i) x_[i] += y_[i];
      hn_ = x_;
      rmsnorm_rows(hn_.data(), t_all, h, sh.rms_eps);
      if (sh.moe) {
        moe_forward(s_.moe_spec(l), w.moe, hn_.data(), t_all, y_.data(), wk_);
        ids_.insert(ids_.end(), wk_.ids.begin(), wk_.ids.end());
      } else {
        ffn_forward(w.fg, w.fu, w.fd, 0, sh.dense_ffn, 0, hn_.data(), t_all, h, y_.data(), wk_.ffn);
      }
      for (std::size_t i = 0; i < x_.size(); ++i) x_[i] += y_[i];
    }
  }
  OpOutput output() override { return OpOutput{x_, ids_}; }

 private:
  LayerSpec s_;
  std::vector<float> x_in_, x_, hn_, q_, tmp_, qa_, kvn_, att_, ov_, y_;
  std::vector<int> ids_;
  std::vector<LayerWeights> layers_;
  MoeWork wk_;
};

std::string read_first_line_with(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key, 0) == 0) {
      const auto colon = line.find(':');
      if (colon == std::string::npos) return "";
      std::string v = line.substr(colon + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    }
  return "";
}

double read_number(const std::string& path) {
  std::ifstream in(path);
  double v = 0;
  if (in >> v) return v;
  return 0;
}

}  // namespace

CpuBackend::CpuBackend(int threads) {
#ifdef _OPENMP
  if (threads > 0) omp_set_num_threads(threads);
#endif
  threads_ = max_threads();
  llc_bytes_ = 0;
  for (int idx = 0; idx < 8; ++idx) {
    const std::string base = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(idx) + "/";
    std::ifstream in(base + "size");
    std::string sz;
    if (!(in >> sz)) continue;
    long long v = std::atoll(sz.c_str());
    if (!sz.empty() && (sz.back() == 'K' || sz.back() == 'k')) v *= 1024;
    if (!sz.empty() && (sz.back() == 'M' || sz.back() == 'm')) v *= 1024 * 1024;
    llc_bytes_ = std::max(llc_bytes_, v);
  }
  if (llc_bytes_ <= 0) llc_bytes_ = 32LL << 20;
}

CpuBackend::~CpuBackend() = default;

DeviceIdentity CpuBackend::identity() const {
  DeviceIdentity id;
  id.kind = "cpu";
  id.name = read_first_line_with("/proc/cpuinfo", "model name");
  if (id.name.empty()) id.name = "unknown CPU";
  id.cores = static_cast<int>(std::thread::hardware_concurrency());
  id.threads = threads_;
  const std::string mem = read_first_line_with("/proc/meminfo", "MemTotal");
  if (!mem.empty()) id.memory_gb = std::atof(mem.c_str()) * 1024.0 / 1e9;
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) == 0) id.host = host;
  id.libraries["eigen"] = std::to_string(EIGEN_WORLD_VERSION) + "." +
                          std::to_string(EIGEN_MAJOR_VERSION) + "." +
                          std::to_string(EIGEN_MINOR_VERSION);
#ifdef _OPENMP
  id.libraries["openmp"] = std::to_string(_OPENMP);
#endif
#if defined(__clang__)
  id.libraries["compiler"] = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  id.libraries["compiler"] = "gcc " + std::to_string(__GNUC__) + "." +
                             std::to_string(__GNUC_MINOR__) + "." +
                             std::to_string(__GNUC_PATCHLEVEL__);
#endif
  const double cur = read_number("/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq");
  const double mx = read_number("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq");
  if (cur > 0) id.clocks_mhz["current"] = cur / 1000.0;
  if (mx > 0) id.clocks_mhz["max"] = mx / 1000.0;
  if (cur <= 0) {
    const std::string mhz = read_first_line_with("/proc/cpuinfo", "cpu MHz");
    if (!mhz.empty()) id.clocks_mhz["current"] = std::atof(mhz.c_str());
  }
  id.last_level_cache_bytes = llc_bytes_;
  id.simd = Eigen::SimdInstructionSetsInUse();
  return id;
}

void CpuBackend::flush_caches() {
  const std::size_t n = static_cast<std::size_t>(2 * llc_bytes_ / 4);
  if (flush_.size() != n) flush_.assign(n, 1.0f);
  float* f = flush_.data();
  const long long nn = static_cast<long long>(n);
#pragma omp parallel for simd schedule(static)
  for (long long i = 0; i < nn; ++i) f[i] = f[i] * 0.5f + 0.5f;
}

std::unique_ptr<Op> CpuBackend::triad(const TriadSpec& s) {
  return std::make_unique<TriadOp>(s);
}
std::unique_ptr<Op> CpuBackend::gemm(const GemmSpec& s, const std::vector<float>& x) {
  return std::make_unique<GemmOp>(s, x);
}
std::unique_ptr<Op> CpuBackend::moe_router(const MoeSpec& s, const std::vector<float>& x,
                                           int tokens) {
  return std::make_unique<RouterOp>(s, x, tokens);
}
std::unique_ptr<Op> CpuBackend::moe_permute(const MoeSpec& s, const std::vector<int>& ids,
                                            const std::vector<float>& x, int tokens) {
  return std::make_unique<PermuteOp>(s, ids, x, tokens);
}
std::unique_ptr<Op> CpuBackend::moe_experts(const MoeSpec& s, const std::vector<float>& x_perm,
                                            const std::vector<int>& counts) {
  return std::make_unique<ExpertsOp>(s, x_perm, counts);
}
std::unique_ptr<Op> CpuBackend::moe_combine(const MoeSpec& s, const std::vector<float>& y_perm,
                                            const std::vector<int>& inv,
                                            const std::vector<float>& w, int tokens) {
  return std::make_unique<CombineOp>(s, y_perm, inv, w, tokens);
}
std::unique_ptr<Op> CpuBackend::moe_fused(const MoeSpec& s, const std::vector<float>& x,
                                          int tokens) {
  return std::make_unique<MoeFusedOp>(s, x, tokens);
}
std::unique_ptr<Op> CpuBackend::attention(const AttentionSpec& s) {
  return std::make_unique<AttentionOp>(s);
}
std::unique_ptr<Op> CpuBackend::layer(const LayerSpec& s, const std::vector<float>& x) {
  return std::make_unique<LayerOp>(s, x);
}

}  // namespace moeprobe
