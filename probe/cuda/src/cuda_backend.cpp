// The CUDA backend: ops on one GPU built from kernels/src (launchers) and
// cuBLASLt. Weights are generated on the device from the shared pattern
// (moekernels::pattern_value), never uploaded; inputs the harness passes are
// uploaded at preparation. Op::run only enqueues work (no allocation, no
// upload); Op::sync waits; Op::output downloads in the documented layouts.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <string>
#include <utility>

#include "gpu_support.hpp"
#include "moekernels/gate_math.hpp"
#include "moekernels/index_math.hpp"
#include "moeplan/errors.hpp"

#ifndef MOEPROBE_CUDA_ARCHS
#define MOEPROBE_CUDA_ARCHS "unknown"
#endif

namespace moeprobe {

namespace mk = moekernels;
namespace kc = moekernels::cuda;
using cudabk::DeviceBuffer;
using cudabk::Elem;
using cudabk::LtGemm;
using cudabk::MatmulShape;

namespace {

constexpr const char* kGroupedNote =
#ifdef MOEPROBE_CUBLASLT_GROUPED
    "cuBLASLt grouped matmul symbol detected at configure time but not yet wired; ";
#else
    "";
#endif

Elem elem(DType d) {
  return d == DType::fp32 ? Elem::f32 : Elem::bf16;
}
std::size_t esize(Elem e) {
  return static_cast<std::size_t>(kc::elem_bytes(e));
}

float fan_in_scale(long long fan_in) {
  return Pattern::for_fan_in(0, fan_in).scale;
}

std::string env_or(const char* name, const std::string& def) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : def;
}

// State shared by the backend and its ops (ops keep it alive).
struct Ctx {
  int device = 0;
  cudabk::DeviceFacts facts;
  cudaStream_t stream = nullptr;
  LtGemm lt;
  DeviceBuffer flush;
  bool batched_experts = false;
  // MOEPROBE_CUDA_EXPERTS=gemv: the grouped GEMV (one launch per projection for
  // all experts, device-side counts/offsets) in moe.experts and moe.fused; the
  // fused block then needs no host round trip and is captured in a CUDA graph.
  bool gemv_experts = false;
  // MOEPROBE_CUDA_EXPERTS=grouped: as gemv (same capturable path), but bf16
  // projections run the tensor-core grouped GEMM (kc::grouped_gemm) instead of
  // the GEMV, for prefill-sized token counts; fp32 keeps the GEMV.
  bool grouped_experts = false;
  // MOEPROBE_CUDA_EXPERTS=mixed: as gemv (same capturable path) while the mean
  // rows per expert stay below kMixedGemmRows, the tensor-core grouped GEMM from
  // there on (bf16). On the H200 (2026-11-27) the GEMV met the grouped-GEMM
  // figures up to 16 tokens (1 row per expert) and fell to 1.4x at 64 tokens of
  // qwen3-30b-a3b (4 rows) and 4.9x at 256 (16 rows): it reads each weight row
  // once per 8 token rows, on CUDA cores.
  bool mixed_experts = false;
  static constexpr long long kMixedGemmRows = 4;
  bool tensor_core_experts(long long rows, int experts) const {
    return grouped_experts || (mixed_experts && rows >= kMixedGemmRows * experts);
  }
  bool paged_kv = false;
  bool generic_attention = false;  // MOEPROBE_CUDA_ATTN=generic: no split-KV decode kernel
  bool simt_attention = false;     // MOEPROBE_CUDA_ATTN=simt: GQA decode off the tensor cores
  bool cublaslt_gate = false;      // MOEPROBE_CUDA_GATE=cublaslt: no split-K router gate
  Ctx() = default;
  ~Ctx() {
    if (stream) MOE_CUDA_CHECK_NOTHROW(cudaStreamDestroy(stream));
  }
};

// A [rows, cols] weight in the op's storage type, filled from a pattern block
// by block: blocks[i] = (destination element offset, seed, scale, first index, count).
DeviceBuffer make_weight(long long elems, Elem t) {
  return DeviceBuffer(static_cast<std::size_t>(elems) * esize(t));
}
void fill(const DeviceBuffer& b, Elem t, long long dst_off, std::uint64_t seed, float scale,
          long long index0, long long n, cudaStream_t st) {
  kc::fill_pattern(static_cast<char*>(b.get()) + static_cast<std::size_t>(dst_off) * esize(t), t, n,
                   seed, scale, index0, st);
}

// A contiguous KV cache of n pattern values (scale 1) in t (e4m3: quantised with kv_scale).
void fill_kv(const DeviceBuffer& b, Elem t, long long n, std::uint64_t seed, float kv_scale,
             cudaStream_t st) {
  if (t == Elem::e4m3)
    kc::fill_pattern_e4m3(b.get(), n, seed, 1.0f, kv_scale, st);
  else
    kc::fill_pattern(b.get(), t, n, seed, 1.0f, 0, st);
}

// ---- op base: enqueue() holds the work; graphs where capturable -------------------

class CudaOp : public Op {
 public:
  explicit CudaOp(std::shared_ptr<Ctx> c) : ctx_(std::move(c)) {}
  ~CudaOp() override {
    if (exec_) MOE_CUDA_CHECK_NOTHROW(cudaGraphExecDestroy(exec_));
  }
  // Enqueues one call on `st` (no sync, no allocation).
  virtual void enqueue(cudaStream_t st) = 0;
  // False when enqueue needs the host mid-way (a device->host count copy).
  virtual bool capturable() const { return true; }
  void run() override {
    if (capturable()) {
      if (!exec_) exec_ = capture(1);
      MOE_CUDA_CHECK(cudaGraphLaunch(exec_, ctx_->stream));
    } else {
      enqueue(ctx_->stream);
    }
  }
  void sync() override { MOE_CUDA_CHECK(cudaStreamSynchronize(ctx_->stream)); }
  // A graph of `calls` consecutive calls. The first enqueue outside a capture
  // plans every cuBLASLt shape (algorithm timing cannot run inside a capture).
  cudaGraphExec_t capture(int calls) {
    if (!planned_) {
      enqueue(ctx_->stream);
      sync();
      planned_ = true;
    }
    cudaGraph_t g = nullptr;
    MOE_CUDA_CHECK(cudaStreamBeginCapture(ctx_->stream, cudaStreamCaptureModeThreadLocal));
    try {
      for (int i = 0; i < calls; ++i) enqueue(ctx_->stream);
    } catch (...) {
      cudaGraph_t dummy = nullptr;
      (void)cudaStreamEndCapture(ctx_->stream, &dummy);
      if (dummy) (void)cudaGraphDestroy(dummy);
      throw;
    }
    MOE_CUDA_CHECK(cudaStreamEndCapture(ctx_->stream, &g));
    cudaGraphExec_t e = nullptr;
    const cudaError_t err = cudaGraphInstantiate(&e, g, 0);
    MOE_CUDA_CHECK_NOTHROW(cudaGraphDestroy(g));
    MOE_CUDA_CHECK(err);
    return e;
  }
  Ctx& ctx() { return *ctx_; }

 protected:
  std::shared_ptr<Ctx> ctx_;
  cudaGraphExec_t exec_ = nullptr;
  bool planned_ = false;
  cudaStream_t s() const { return ctx_->stream; }
};

// ---- triad / gemm -------------------------------------------------------------------

class TriadOp : public CudaOp {
 public:
  TriadOp(std::shared_ptr<Ctx> c, const TriadSpec& sp) : CudaOp(std::move(c)), n_(sp.n) {
    const std::size_t bytes = static_cast<std::size_t>(n_) * 4;
    a_.resize(bytes);
    b_.resize(bytes);
    c_.resize(bytes);
    kc::fill_pattern(b_.get(), Elem::f32, n_, sp.seed + 1, 1.0f, 0, s());
    kc::fill_pattern(c_.get(), Elem::f32, n_, sp.seed + 2, 1.0f, 0, s());
    MOE_CUDA_CHECK(cudaMemsetAsync(a_.get(), 0, bytes, s()));
  }
  void enqueue(cudaStream_t st) override {
    kc::triad(a_.as<float>(), b_.as<float>(), c_.as<float>(), n_, st);
  }
  OpOutput output() override {
    return OpOutput{cudabk::download<float>(a_.get(), static_cast<std::size_t>(n_), s()), {}};
  }

 private:
  long long n_;
  DeviceBuffer a_, b_, c_;
};

class GemmOp : public CudaOp {
 public:
  GemmOp(std::shared_ptr<Ctx> c, const GemmSpec& sp, const std::vector<float>& x)
      : CudaOp(std::move(c)), sp_(sp) {
    t_ = elem(sp.dtype);
    w_ = make_weight(static_cast<long long>(sp.n) * sp.k, t_);
    fill(w_, t_, 0, sp.seed, fan_in_scale(sp.k), 0, static_cast<long long>(sp.n) * sp.k, s());
    DeviceBuffer xf = cudabk::upload(x, s());
    x_.resize(x.size() * esize(t_));
    kc::convert_f32(xf.as<float>(), x_.get(), t_, static_cast<long long>(x.size()), s());
    y_.resize(static_cast<std::size_t>(sp.m) * sp.n * 4);
    MOE_CUDA_CHECK(cudaStreamSynchronize(s()));
  }
  void enqueue(cudaStream_t st) override {
    ctx_->lt.matmul(MatmulShape{sp_.m, sp_.n, sp_.k, t_, sp_.k, sp_.k, sp_.n, 0}, w_.get(),
                    x_.get(), y_.as<float>(), st);
  }
  OpOutput output() override {
    return OpOutput{cudabk::download<float>(y_.get(), static_cast<std::size_t>(sp_.m) * sp_.n, s()),
                    {}};
  }

 private:
  GemmSpec sp_;
  Elem t_ = Elem::f32;
  DeviceBuffer w_, x_, y_;
};

// ---- MoE -------------------------------------------------------------------------------

// Expert and router weights of one MoE block. gate|up of slot q are stored
// together as [2F, H] (rows 0..F gate, F..2F up) so one GEMM yields both.
struct MoeWeights {
  DeviceBuffer router, gu, down, sgu, sdown, bias;
  DeviceBuffer tiles;  // kc::grouped_gemm workspace (per-expert M-tile offsets)
  void build_router(const MoeSpec& s, cudaStream_t st) {
    const long long e = s.shape.experts, h = s.hidden;
    router = make_weight(e * h, Elem::f32);
    fill(router, Elem::f32, 0, s.seed + 1, fan_in_scale(h), 0, e * h, st);
    if (!s.bias.empty()) bias = cudabk::upload(s.bias, st);
  }
  void build_experts(const MoeSpec& s, cudaStream_t st) {
    const Elem t = elem(s.dtype);
    const long long h = s.hidden, f = s.shape.ffn, pool = s.pool;
    gu = make_weight(pool * 2 * f * h, t);
    tiles.resize(static_cast<std::size_t>(kc::grouped_gemm_workspace_ints(s.shape.experts)) *
                 sizeof(int));
    down = make_weight(pool * h * f, t);
    for (long long q = 0; q < pool; ++q) {
      fill(gu, t, q * 2 * f * h, s.seed + 2, fan_in_scale(h), q * f * h, f * h, st);
      fill(gu, t, q * 2 * f * h + f * h, s.seed + 3, fan_in_scale(h), q * f * h, f * h, st);
    }
    fill(down, t, 0, s.seed + 4, fan_in_scale(f), 0, pool * h * f, st);
    const long long fs = static_cast<long long>(s.shape.shared_experts) * s.shape.shared_ffn;
    if (fs > 0) {
      sgu = make_weight(2 * fs * h, t);
      fill(sgu, t, 0, s.seed + 5, fan_in_scale(h), 0, fs * h, st);
      fill(sgu, t, fs * h, s.seed + 6, fan_in_scale(h), 0, fs * h, st);
      sdown = make_weight(h * fs, t);
      fill(sdown, t, 0, s.seed + 7, fan_in_scale(fs), 0, h * fs, st);
    }
  }
};

// Expert FFN over expert-contiguous rows with host-known counts: one cuBLASLt
// matmul per non-empty expert (gate|up), one SwiGLU over all rows, one matmul
// per expert (down). x_act [A, H] in t; gu_out [A, 2F] f32; h_act [A, F] in t.
void experts_per_expert(Ctx& c, const MoeSpec& s, const MoeWeights& w,
                        const std::vector<int>& counts, const void* x_act, float* gu_out,
                        void* h_act, float* y, cudaStream_t st) {
  const Elem t = elem(s.dtype);
  const int h = s.hidden, f = s.shape.ffn;
  long long off = 0;
  for (int e = 0; e < s.shape.experts; ++e) {
    const int n = counts[static_cast<std::size_t>(e)];
    if (n == 0) continue;  // experts without tokens launch nothing
    const long long q = s.slot(e);
    c.lt.matmul(
        MatmulShape{n, 2 * f, h, t, h, h, 2 * f, 0},
        static_cast<const char*>(w.gu.get()) + static_cast<std::size_t>(q * 2 * f * h) * esize(t),
        static_cast<const char*>(x_act) + static_cast<std::size_t>(off * h) * esize(t),
        gu_out + off * 2 * f, st);
    off += n;
  }
  kc::swiglu(gu_out, static_cast<int>(off), f, h_act, t, st);
  off = 0;
  for (int e = 0; e < s.shape.experts; ++e) {
    const int n = counts[static_cast<std::size_t>(e)];
    if (n == 0) continue;
    const long long q = s.slot(e);
    c.lt.matmul(
        MatmulShape{n, h, f, t, f, f, h, 0},
        static_cast<const char*>(w.down.get()) + static_cast<std::size_t>(q * h * f) * esize(t),
        static_cast<const char*>(h_act) + static_cast<std::size_t>(off * f) * esize(t), y + off * h,
        st);
    off += n;
  }
}

// Shared experts (one FFN of width shared_experts * shared_ffn) over all tokens.
void shared_ffn(Ctx& c, const MoeSpec& s, const MoeWeights& w, int tokens, const void* x_act,
                float* gu_out, void* h_act, float* out, cudaStream_t st) {
  const Elem t = elem(s.dtype);
  const int h = s.hidden, fs = s.shape.shared_experts * s.shape.shared_ffn;
  c.lt.matmul(MatmulShape{tokens, 2 * fs, h, t, h, h, 2 * fs, 0}, w.sgu.get(), x_act, gu_out, st);
  kc::swiglu(gu_out, tokens, fs, h_act, t, st);
  c.lt.matmul(MatmulShape{tokens, h, fs, t, fs, fs, h, 0}, w.sdown.get(), h_act, out, st);
}

// Expert FFN with the counts and offsets on the device: grouped GEMV (gate|up)
// -> SwiGLU over all `rows` = tokens * top_k rows -> grouped GEMV (down); with
// `tensor_cores` (MOEPROBE_CUDA_EXPERTS=grouped) bf16 projections use the
// tensor-core grouped GEMM instead. No host sync, so it can be captured.
// experts_gemv_supported false: the caller uses experts_per_expert.
bool experts_gemv_supported(const MoeSpec& s) {
  const Elem t = elem(s.dtype);
  return kc::grouped_gemv_supported(t, s.hidden) && kc::grouped_gemv_supported(t, s.shape.ffn);
}
// One projection out = x · W_slot(e)ᵀ per expert: tensor cores when asked and supported.
void grouped_projection(bool tensor_cores, const MoeSpec& s, const MoeWeights& w, const void* x,
                        const void* wt, long long slot_stride, int n_out, int k, int rows,
                        const int* counts, const int* offsets, float* out, cudaStream_t st) {
  const Elem t = elem(s.dtype);
  const int e = s.shape.experts;
  if (tensor_cores && kc::grouped_gemm_supported(t, k))
    kc::grouped_gemm(x, wt, slot_stride, s.pool, e, n_out, k, t, rows, counts, offsets,
                     w.tiles.as<int>(), out, st);
  else
    kc::grouped_gemv(x, wt, slot_stride, s.pool, e, n_out, k, t, counts, offsets, out, st);
}
void experts_gemv(const MoeSpec& s, const MoeWeights& w, const int* counts, const int* offsets,
                  int rows, const void* x_act, float* gu_out, void* h_act, float* y,
                  cudaStream_t st, bool tensor_cores) {
  const Elem t = elem(s.dtype);
  const int h = s.hidden, f = s.shape.ffn;
  grouped_projection(tensor_cores, s, w, x_act, w.gu.get(), 2LL * f * h, 2 * f, h, rows, counts,
                     offsets, gu_out, st);
  kc::swiglu(gu_out, rows, f, h_act, t, st);
  grouped_projection(tensor_cores, s, w, h_act, w.down.get(), static_cast<long long>(h) * f, h, f,
                     rows, counts, offsets, y, st);
}

struct RouterBufs {
  DeviceBuffer logits, scratch, ids, w, gate_ws;
  long long gate_ws_bytes = 0;
  void alloc(const Ctx& c, const MoeSpec& s, int tokens) {
    const auto m = static_cast<std::size_t>(tokens);
    logits.resize(m * static_cast<std::size_t>(s.shape.experts) * 4);
    scratch.resize(
        m * static_cast<std::size_t>(mk::routing_scratch_floats(s.shape.experts, s.shape.n_group)) *
        4);
    ids.resize(m * static_cast<std::size_t>(s.shape.top_k) * 4);
    w.resize(m * static_cast<std::size_t>(s.shape.top_k) * 4);
    gate_ws_bytes = splitk_gate(c, tokens)
                        ? kc::gate_workspace_bytes(tokens, s.shape.experts, s.hidden, c.facts.sms)
                        : 0;
    gate_ws.resize(static_cast<std::size_t>(gate_ws_bytes));
  }
  // Decode batches take the split-K gate kernel (cuBLASLt's fp32 tiles leave
  // most SMs idle at N = 128-256, docs/probe.md "moe.router"); larger batches
  // and MOEPROBE_CUDA_GATE=cublaslt take cuBLASLt.
  static bool splitk_gate(const Ctx& c, int tokens) {
    return !c.cublaslt_gate && mk::gate_uses_splitk(tokens);
  }
  void run(Ctx& c, const MoeSpec& s, const MoeWeights& mw, const float* x, int tokens,
           cudaStream_t st) {
    const MoeShape& m = s.shape;
    if (splitk_gate(c, tokens))
      kc::gate_splitk(x, mw.router.as<float>(), tokens, m.experts, s.hidden, c.facts.sms,
                      gate_ws.as<float>(), gate_ws_bytes, logits.as<float>(), st);
    else
      c.lt.matmul(
          MatmulShape{tokens, m.experts, s.hidden, Elem::f32, s.hidden, s.hidden, m.experts, 0},
          mw.router.get(), x, logits.as<float>(), st);
    kc::route(logits.as<float>(), mw.bias.as<float>(), tokens, m.experts, m.top_k,
              m.sigmoid_grouped, m.n_group, m.topk_group, m.normalize, scratch.as<float>(),
              ids.as<int>(), w.as<float>(), st);
  }
};

struct PermBufs {
  DeviceBuffer counts, offsets, perm, inv;
  void alloc(const MoeSpec& s, long long assignments) {
    counts.resize(static_cast<std::size_t>(s.shape.experts) * 4);
    offsets.resize(static_cast<std::size_t>(s.shape.experts + 1) * 4);
    perm.resize(static_cast<std::size_t>(std::max(1LL, assignments)) * 4);
    inv.resize(static_cast<std::size_t>(std::max(1LL, assignments)) * 4);
  }
  void run(const MoeSpec& s, const int* ids, int assignments, cudaStream_t st) {
    kc::permute_index(ids, assignments, s.shape.experts, counts.as<int>(), offsets.as<int>(),
                      perm.as<int>(), inv.as<int>(), st);
  }
};

class RouterOp : public CudaOp {
 public:
  RouterOp(std::shared_ptr<Ctx> c, const MoeSpec& sp, const std::vector<float>& x, int tokens)
      : CudaOp(std::move(c)), s_(sp), tokens_(tokens) {
    mw_.build_router(sp, s());
    x_ = cudabk::upload(x, s());
    rb_.alloc(ctx(), sp, tokens);
    MOE_CUDA_CHECK(cudaStreamSynchronize(s()));
  }
  void enqueue(cudaStream_t st) override { rb_.run(ctx(), s_, mw_, x_.as<float>(), tokens_, st); }
  OpOutput output() override {
    const auto t = static_cast<std::size_t>(tokens_);
    OpOutput o;
    o.i = cudabk::download<int>(rb_.ids.get(), t * static_cast<std::size_t>(s_.shape.top_k), s());
    o.f = cudabk::download<float>(rb_.logits.get(), t * static_cast<std::size_t>(s_.shape.experts),
                                  s());
    const auto w =
        cudabk::download<float>(rb_.w.get(), t * static_cast<std::size_t>(s_.shape.top_k), s());
    o.f.insert(o.f.end(), w.begin(), w.end());
    return o;
  }

 private:
  MoeSpec s_;
  int tokens_;
  MoeWeights mw_;
  DeviceBuffer x_;
  RouterBufs rb_;
};

class PermuteOp : public CudaOp {
 public:
  PermuteOp(std::shared_ptr<Ctx> c, const MoeSpec& sp, const std::vector<int>& ids,
            const std::vector<float>& x, int tokens)
      : CudaOp(std::move(c)), s_(sp), a_(static_cast<int>(ids.size())) {
    ids_ = cudabk::upload(ids, s());
    x_ = cudabk::upload(x, s());
    pb_.alloc(sp, a_);
    x_perm_.resize(static_cast<std::size_t>(std::max(1, a_)) * static_cast<std::size_t>(sp.hidden) *
                   4);
    (void)tokens;
    MOE_CUDA_CHECK(cudaStreamSynchronize(s()));
  }
  void enqueue(cudaStream_t st) override {
    pb_.run(s_, ids_.as<int>(), a_, st);
    kc::gather_rows(x_.as<float>(), pb_.perm.as<int>(), s_.shape.top_k, a_, s_.hidden,
                    x_perm_.get(), Elem::f32, st);
  }
  OpOutput output() override {
    const auto e = static_cast<std::size_t>(s_.shape.experts), a = static_cast<std::size_t>(a_);
    OpOutput o;
    o.i = cudabk::download<int>(pb_.counts.get(), e, s());
    for (const auto& part : {cudabk::download<int>(pb_.offsets.get(), e + 1, s()),
                             cudabk::download<int>(pb_.perm.get(), a, s()),
                             cudabk::download<int>(pb_.inv.get(), a, s())})
      o.i.insert(o.i.end(), part.begin(), part.end());
    o.f = cudabk::download<float>(x_perm_.get(), a * static_cast<std::size_t>(s_.hidden), s());
    return o;
  }

 private:
  MoeSpec s_;
  int a_;
  DeviceBuffer ids_, x_, x_perm_;
  PermBufs pb_;
};

class ExpertsOp : public CudaOp {
 public:
  ExpertsOp(std::shared_ptr<Ctx> c, const MoeSpec& sp, const std::vector<float>& x_perm,
            const std::vector<int>& counts)
      : CudaOp(std::move(c)), s_(sp), counts_(counts) {
    const Elem t = elem(sp.dtype);
    const int h = sp.hidden, f = sp.shape.ffn;
    a_ = std::accumulate(counts.begin(), counts.end(), 0LL);
    mw_.build_experts(sp, s());
    DeviceBuffer xf = cudabk::upload(x_perm, s());
    const auto rows = static_cast<std::size_t>(std::max(1LL, a_));
    x_act_.resize(rows * static_cast<std::size_t>(h) * esize(t));
    kc::convert_f32(xf.as<float>(), x_act_.get(), t, a_ * h, s());
    y_.resize(rows * static_cast<std::size_t>(h) * 4);
    batched_ = ctx().batched_experts;
    gemv_ = ctx().gemv_experts && experts_gemv_supported(sp);
    if (gemv_) {
      std::vector<int> offsets(counts.size() + 1, 0);
      for (std::size_t i = 0; i < counts.size(); ++i) offsets[i + 1] = offsets[i] + counts[i];
      offsets_ = cudabk::upload(offsets, s());
      dcounts_ = cudabk::upload(counts_, s());
      batched_ = false;
    }
    if (batched_) setup_batched(xf);
    if (!batched_) {
      gu_.resize(rows * 2 * static_cast<std::size_t>(f) * 4);
      h_act_.resize(rows * static_cast<std::size_t>(f) * esize(t));
    }
    MOE_CUDA_CHECK(cudaStreamSynchronize(s()));
  }
  void enqueue(cudaStream_t st) override {
    if (gemv_) {
      experts_gemv(s_, mw_, dcounts_.as<int>(), offsets_.as<int>(), static_cast<int>(a_),
                   x_act_.get(), gu_.as<float>(), h_act_.get(), y_.as<float>(), st,
                   ctx().tensor_core_experts(a_, s_.shape.experts));
      return;
    }
    if (!batched_) {
      experts_per_expert(ctx(), s_, mw_, counts_, x_act_.get(), gu_.as<float>(), h_act_.get(),
                         y_.as<float>(), st);
      return;
    }
    const Elem t = elem(s_.dtype);
    const int h = s_.hidden, f = s_.shape.ffn;
    kc::pad_rows(xf_.as<float>(), offsets_.as<int>(), dcounts_.as<int>(), list_.as<int>(), nb_,
                 rows_per_, h, xp_.get(), t, st);
    ctx().lt.matmul(MatmulShape{rows_per_, 2 * f, h, t, h, h, 2 * f, nb_}, ptr_[0].get(),
                    ptr_[1].get(), static_cast<float*>(ptr_[2].get()), st);
    kc::swiglu(gu_.as<float>(), nb_ * rows_per_, f, h_act_.get(), t, st);
    ctx().lt.matmul(MatmulShape{rows_per_, h, f, t, f, f, h, nb_}, ptr_[3].get(), ptr_[4].get(),
                    static_cast<float*>(ptr_[5].get()), st);
    kc::unpad_rows(yp_.as<float>(), offsets_.as<int>(), dcounts_.as<int>(), list_.as<int>(), nb_,
                   rows_per_, h, y_.as<float>(), st);
  }
  OpOutput output() override {
    return OpOutput{
        cudabk::download<float>(
            y_.get(), static_cast<std::size_t>(a_) * static_cast<std::size_t>(s_.hidden), s()),
        {}};
  }
  bool batched() const { return batched_; }

 private:
  // Padded batched variant: every non-empty expert gets rows_per rows (max
  // count rounded up to 16, padding rows zero), one pointer-array matmul per
  // projection. Falls back to per-expert matmuls when cuBLASLt has no
  // pointer-array algorithm for the shape.
  void setup_batched(DeviceBuffer& xf) {
    const Elem t = elem(s_.dtype);
    const int h = s_.hidden, f = s_.shape.ffn;
    std::vector<int> list, offsets(counts_.size() + 1, 0);
    int mx = 0;
    for (std::size_t e = 0; e < counts_.size(); ++e) {
      offsets[e + 1] = offsets[e] + counts_[e];
      if (counts_[e] > 0) list.push_back(static_cast<int>(e));
      mx = std::max(mx, counts_[e]);
    }
    nb_ = static_cast<int>(list.size());
    if (nb_ == 0) {
      batched_ = false;
      return;
    }
    rows_per_ = static_cast<int>(mk::ceil_div(mx, 16) * 16);
    const auto prow = static_cast<std::size_t>(nb_) * static_cast<std::size_t>(rows_per_);
    xp_.resize(prow * static_cast<std::size_t>(h) * esize(t));
    gu_.resize(prow * 2 * static_cast<std::size_t>(f) * 4);
    h_act_.resize(prow * static_cast<std::size_t>(f) * esize(t));
    yp_.resize(prow * static_cast<std::size_t>(h) * 4);
    std::vector<const void*> p[6];
    for (int b = 0; b < nb_; ++b) {
      const long long q = s_.slot(list[static_cast<std::size_t>(b)]);
      const auto row0 = static_cast<std::size_t>(b) * static_cast<std::size_t>(rows_per_);
      p[0].push_back(static_cast<const char*>(mw_.gu.get()) +
                     static_cast<std::size_t>(q * 2 * f * h) * esize(t));
      p[1].push_back(static_cast<const char*>(xp_.get()) +
                     row0 * static_cast<std::size_t>(h) * esize(t));
      p[2].push_back(gu_.as<float>() + row0 * 2 * static_cast<std::size_t>(f));
      p[3].push_back(static_cast<const char*>(mw_.down.get()) +
                     static_cast<std::size_t>(q * h * f) * esize(t));
      p[4].push_back(static_cast<const char*>(h_act_.get()) +
                     row0 * static_cast<std::size_t>(f) * esize(t));
      p[5].push_back(yp_.as<float>() + row0 * static_cast<std::size_t>(h));
    }
    for (int i = 0; i < 6; ++i) ptr_[i] = cudabk::upload(p[i], s());
    xf_ = std::move(xf);
    offsets_ = cudabk::upload(offsets, s());
    dcounts_ = cudabk::upload(counts_, s());
    list_ = cudabk::upload(list, s());
    MOE_CUDA_CHECK(cudaStreamSynchronize(s()));
    const bool ok1 =
        ctx().lt.supported(MatmulShape{rows_per_, 2 * f, h, t, h, h, 2 * f, nb_}, ptr_[0].get(),
                           ptr_[1].get(), static_cast<float*>(ptr_[2].get()), s());
    const bool ok2 =
        ctx().lt.supported(MatmulShape{rows_per_, h, f, t, f, f, h, nb_}, ptr_[3].get(),
                           ptr_[4].get(), static_cast<float*>(ptr_[5].get()), s());
    if (!ok1 || !ok2) {
      batched_ = false;
      const auto rows = static_cast<std::size_t>(std::max(1LL, a_));
      gu_.resize(rows * 2 * static_cast<std::size_t>(f) * 4);
      h_act_.resize(rows * static_cast<std::size_t>(f) * esize(t));
    }
  }

  MoeSpec s_;
  std::vector<int> counts_;
  long long a_ = 0;
  MoeWeights mw_;
  DeviceBuffer x_act_, gu_, h_act_, y_;
  bool batched_ = false, gemv_ = false;
  int nb_ = 0, rows_per_ = 0;
  DeviceBuffer xf_, xp_, yp_, offsets_, dcounts_, list_, ptr_[6];
};

class CombineOp : public CudaOp {
 public:
  CombineOp(std::shared_ptr<Ctx> c, const MoeSpec& sp, const std::vector<float>& y,
            const std::vector<int>& inv, const std::vector<float>& w, int tokens)
      : CudaOp(std::move(c)), s_(sp), tokens_(tokens) {
    y_ = cudabk::upload(y, s());
    inv_ = cudabk::upload(inv, s());
    w_ = cudabk::upload(w, s());
    out_.resize(static_cast<std::size_t>(tokens) * static_cast<std::size_t>(sp.hidden) * 4);
    MOE_CUDA_CHECK(cudaStreamSynchronize(s()));
  }
  void enqueue(cudaStream_t st) override {
    kc::combine(y_.as<float>(), inv_.as<int>(), w_.as<float>(), tokens_, s_.shape.top_k, s_.hidden,
                out_.as<float>(), false, st);
  }
  OpOutput output() override {
    return OpOutput{
        cudabk::download<float>(
            out_.get(), static_cast<std::size_t>(tokens_) * static_cast<std::size_t>(s_.hidden),
            s()),
        {}};
  }

 private:
  MoeSpec s_;
  int tokens_;
  DeviceBuffer y_, inv_, w_, out_;
};

// Router -> permutation -> (counts to the host) -> expert GEMMs -> shared
// experts -> combine. The count copy makes it non-capturable: one host sync
// per call, as in frameworks that launch one GEMM per expert.
class MoeFusedOp : public CudaOp {
 public:
  MoeFusedOp(std::shared_ptr<Ctx> c, const MoeSpec& sp, const std::vector<float>& x, int tokens)
      : CudaOp(std::move(c)), s_(sp), tokens_(tokens) {
    const Elem t = elem(sp.dtype);
    const int h = sp.hidden, f = sp.shape.ffn, fs = sp.shape.shared_experts * sp.shape.shared_ffn;
    a_ = tokens * sp.shape.top_k;
    mw_.build_router(sp, s());
    mw_.build_experts(sp, s());
    x_ = cudabk::upload(x, s());
    rb_.alloc(ctx(), sp, tokens);
    pb_.alloc(sp, a_);
    const auto rows = static_cast<std::size_t>(std::max(1, a_));
    const auto tk = static_cast<std::size_t>(std::max(1, tokens));
    const std::size_t fmax = static_cast<std::size_t>(std::max(f, fs));
    x_act_.resize(rows * static_cast<std::size_t>(h) * esize(t));
    xt_act_.resize(tk * static_cast<std::size_t>(h) * esize(t));
    gu_.resize(std::max(rows, tk) * 2 * fmax * 4);
    h_act_.resize(std::max(rows, tk) * fmax * esize(t));
    y_.resize(rows * static_cast<std::size_t>(h) * 4);
    out_.resize(tk * static_cast<std::size_t>(h) * 4);
    MOE_CUDA_CHECK(cudaMallocHost(&host_counts_, static_cast<std::size_t>(sp.shape.experts) * 4));
    gemv_ = ctx().gemv_experts && experts_gemv_supported(sp);
    MOE_CUDA_CHECK(cudaStreamSynchronize(s()));
  }
  ~MoeFusedOp() override {
    if (host_counts_) MOE_CUDA_CHECK_NOTHROW(cudaFreeHost(host_counts_));
  }
  // With the grouped GEMV nothing leaves the device: one CUDA graph per call.
  bool capturable() const override { return gemv_; }
  void enqueue(cudaStream_t st) override {
    const Elem t = elem(s_.dtype);
    const int h = s_.hidden, e = s_.shape.experts;
    rb_.run(ctx(), s_, mw_, x_.as<float>(), tokens_, st);
    pb_.run(s_, rb_.ids.as<int>(), a_, st);
    if (!gemv_)
      MOE_CUDA_CHECK(cudaMemcpyAsync(host_counts_, pb_.counts.get(),
                                     static_cast<std::size_t>(e) * 4, cudaMemcpyDeviceToHost, st));
    kc::gather_rows(x_.as<float>(), pb_.perm.as<int>(), s_.shape.top_k, a_, h, x_act_.get(), t, st);
    const bool shared = s_.shape.shared_experts * s_.shape.shared_ffn > 0;
    if (shared) {
      kc::convert_f32(x_.as<float>(), xt_act_.get(), t, static_cast<long long>(tokens_) * h, st);
      shared_ffn(ctx(), s_, mw_, tokens_, xt_act_.get(), gu_.as<float>(), h_act_.get(),
                 out_.as<float>(), st);
    }
    if (gemv_) {
      experts_gemv(s_, mw_, pb_.counts.as<int>(), pb_.offsets.as<int>(), a_, x_act_.get(),
                   gu_.as<float>(), h_act_.get(), y_.as<float>(), st,
                   ctx().tensor_core_experts(a_, s_.shape.experts));
    } else {
      MOE_CUDA_CHECK(cudaStreamSynchronize(st));
      counts_.assign(host_counts_, host_counts_ + e);
      experts_per_expert(ctx(), s_, mw_, counts_, x_act_.get(), gu_.as<float>(), h_act_.get(),
                         y_.as<float>(), st);
    }
    kc::combine(y_.as<float>(), pb_.inv.as<int>(), rb_.w.as<float>(), tokens_, s_.shape.top_k, h,
                out_.as<float>(), shared, st);
  }
  OpOutput output() override {
    OpOutput o;
    o.f = cudabk::download<float>(
        out_.get(), static_cast<std::size_t>(tokens_) * static_cast<std::size_t>(s_.hidden), s());
    o.i = cudabk::download<int>(rb_.ids.get(), static_cast<std::size_t>(a_), s());
    return o;
  }

 private:
  MoeSpec s_;
  int tokens_, a_ = 0;
  MoeWeights mw_;
  DeviceBuffer x_, x_act_, xt_act_, gu_, h_act_, y_, out_;
  RouterBufs rb_;
  PermBufs pb_;
  int* host_counts_ = nullptr;
  std::vector<int> counts_;
  bool gemv_ = false;
};

// ---- attention ----------------------------------------------------------------------

class AttentionOp : public CudaOp {
 public:
  AttentionOp(std::shared_ptr<Ctx> c, const AttentionSpec& sp) : CudaOp(std::move(c)), sp_(sp) {
    const bool fp8 = sp.kv_dtype == KvDType::fp8;
    const Elem t = fp8 ? Elem::e4m3 : elem(sp.dtype);
    const long long qn = static_cast<long long>(sp.batch) * sp.queries * sp.heads * sp.qk_dim;
    q_.resize(static_cast<std::size_t>(qn) * 4);
    kc::fill_pattern(q_.get(), Elem::f32, qn, sp.seed + 1, 1.0f, 0, s());
    const long long rows = static_cast<long long>(sp.batch) * sp.context;
    constexpr int kPage = 64;
    kc::AttentionArgs& a = args_;
    a.force_generic = ctx().generic_attention;
    a.simt_decode = ctx().simt_attention;
    if (ctx().paged_kv) {
      // Pages of 64 positions in a shuffled order (a real allocator's layout).
      const int pps = static_cast<int>(mk::ceil_div(sp.context, kPage));
      const int pages = sp.batch * pps;
      std::vector<int> table(static_cast<std::size_t>(pages));
      std::iota(table.begin(), table.end(), 0);
      for (int i = pages - 1; i > 0; --i)
        std::swap(table[static_cast<std::size_t>(i)],
                  table[static_cast<std::size_t>(mk::mix64(static_cast<std::uint64_t>(i)) %
                                                 static_cast<std::uint64_t>(i + 1))]);
      table_ = cudabk::upload(table, s());
      a.page_table = table_.as<int>();
      a.page = kPage;
      a.pages_per_seq = pps;
      const long long prow = static_cast<long long>(pages) * kPage;
      k_.resize(static_cast<std::size_t>(prow * sp.kv_heads * sp.qk_dim) * esize(t));
      kc::fill_paged(k_.get(), t, sp.batch, sp.context, sp.kv_heads, sp.qk_dim, table_.as<int>(),
                     kPage, pps, sp.seed + 2, s(), sp.kv_scale);
      if (!sp.shared_kv) {
        v_.resize(static_cast<std::size_t>(prow * sp.kv_heads * sp.v_dim) * esize(t));
        kc::fill_paged(v_.get(), t, sp.batch, sp.context, sp.kv_heads, sp.v_dim, table_.as<int>(),
                       kPage, pps, sp.seed + 3, s(), sp.kv_scale);
      }
    } else {
      const long long kn = rows * sp.kv_heads * sp.qk_dim, vn = rows * sp.kv_heads * sp.v_dim;
      k_.resize(static_cast<std::size_t>(kn) * esize(t));
      fill_kv(k_, t, kn, sp.seed + 2, sp.kv_scale, s());
      if (!sp.shared_kv) {
        v_.resize(static_cast<std::size_t>(vn) * esize(t));
        fill_kv(v_, t, vn, sp.seed + 3, sp.kv_scale, s());
      }
    }
    a.q = q_.as<float>();
    a.k = k_.get();
    a.v = sp.shared_kv ? nullptr : v_.get();
    a.kv = t;
    a.kv_scale = sp.kv_scale;
    a.batch = sp.batch;
    a.queries = sp.queries;
    a.heads = sp.heads;
    a.kv_heads = sp.kv_heads;
    a.qk = sp.qk_dim;
    a.vd = sp.v_dim;
    a.context = sp.context;
    a.shared_kv = sp.shared_kv;
    a.scale = sp.scale;
    a.q_bf16 = sp.dtype == DType::bf16;  // bf16 models: the tensor-core decode kernel
    out_.resize(static_cast<std::size_t>(sp.batch) * static_cast<std::size_t>(sp.queries) *
                static_cast<std::size_t>(sp.heads) * static_cast<std::size_t>(sp.v_dim) * 4);
    a.out = out_.as<float>();
    ws_bytes_ = kc::attention_workspace_bytes(a, ctx().facts.sms);
    ws_.resize(static_cast<std::size_t>(ws_bytes_));
    MOE_CUDA_CHECK(cudaStreamSynchronize(s()));
  }
  void enqueue(cudaStream_t st) override {
    kc::attention(args_, ws_.get(), ws_bytes_, ctx().facts.sms, st);
  }
  OpOutput output() override {
    return OpOutput{cudabk::download<float>(out_.get(), out_.bytes() / 4, s()), {}};
  }

 private:
  AttentionSpec sp_;
  kc::AttentionArgs args_;
  DeviceBuffer q_, k_, v_, table_, out_, ws_;
  long long ws_bytes_ = 0;
};

// ---- decoder layers ---------------------------------------------------------------------

// `spec.layers` decoder layers with the CPU backend's step list (docs/probe.md):
// rmsnorm -> projections (new K/V rows stored into the layer's cache, fp8 KV
// quantised) -> attention -> output projection -> residual -> rmsnorm -> MoE
// (router, permutation, per-expert GEMMs, shared experts, combine) or dense
// SwiGLU FFN -> residual. GEMM inputs are converted to the weight dtype;
// outputs and the residual stream stay fp32. Weights and caches come from the
// shared pattern on the device. MoE layers copy the expert counts to the host
// once per layer (not capturable); dense layers run as one CUDA graph.
class LayerOp : public CudaOp {
 public:
  LayerOp(std::shared_ptr<Ctx> c, const LayerSpec& sp, const std::vector<float>& x)
      : CudaOp(std::move(c)), s_(sp) {
    const LayerShape& sh = sp.shape;
    const AttnShape& a = sh.attn;
    t_ = elem(sp.dtype);
    const long long h = sh.hidden, tk = sp.tokens();
    if (sp.layers <= 0 || tk <= 0 || h <= 0 || sp.context < sp.queries ||
        static_cast<long long>(x.size()) != tk * h)
      throw moeplan::Error("cuda layer: needs layers, tokens, hidden > 0, context >= queries and " +
                           std::to_string(tk * h) + " input values (got " +
                           std::to_string(x.size()) + ")");
    if (sh.moe && sp.pool <= 0) throw moeplan::Error("cuda layer: an MoE layer needs pool > 0");
    const AttentionSpec as0 = sp.attention_spec(0);
    kvt_ = sp.kv_dtype == KvDType::fp8 ? Elem::e4m3 : t_;
    layers_.resize(static_cast<std::size_t>(sp.layers));
    for (int l = 0; l < sp.layers; ++l) {
      LayerW& w = layers_[static_cast<std::size_t>(l)];
      const std::uint64_t base = sp.seed + 1000ull * static_cast<std::uint64_t>(l);
      auto dense_w = [&](DeviceBuffer& b, long long rows, long long cols, std::uint64_t seed) {
        b = make_weight(rows * cols, t_);
        fill(b, t_, 0, seed, fan_in_scale(cols), 0, rows * cols, s());
      };
      if (a.mla) {
        const long long qk = a.nope_dim + a.rope_dim, r = a.kv_lora_rank;
        if (a.q_lora_rank > 0) {
          dense_w(w.q_a, a.q_lora_rank, h, base + 14);
          dense_w(w.q_b, a.heads * qk, a.q_lora_rank, base + 15);
        } else {
          dense_w(w.q_b, a.heads * qk, h, base + 15);
        }
        dense_w(w.kv_a, r + a.rope_dim, h, base + 16);
        // W_uk: pattern block [heads, nope, r] stored per head as [r, nope].
        w.uk = make_weight(a.heads * r * a.nope_dim, t_);
        kc::fill_pattern_transposed(w.uk.get(), t_, a.heads, a.nope_dim, a.kv_lora_rank, base + 17,
                                    fan_in_scale(a.nope_dim), s());
        dense_w(w.uv, static_cast<long long>(a.heads) * a.v_head_dim, r, base + 18);
        dense_w(w.o, h, static_cast<long long>(a.heads) * a.v_head_dim, base + 13);
      } else {
        dense_w(w.qkv, static_cast<long long>(a.heads + 2 * a.kv_heads) * a.head_dim, h, base + 10);
        dense_w(w.o, h, static_cast<long long>(a.heads) * a.head_dim, base + 13);
      }
      if (sh.moe) {
        const MoeSpec ms = sp.moe_spec(l);
        w.moe.build_router(ms, s());
        w.moe.build_experts(ms, s());
      } else {
        const long long f = sh.dense_ffn;
        w.gu = make_weight(2 * f * h, t_);
        fill(w.gu, t_, 0, base + 30, fan_in_scale(h), 0, f * h, s());
        fill(w.gu, t_, f * h, base + 31, fan_in_scale(h), 0, f * h, s());
        dense_w(w.down, h, f, base + 32);
      }
      // KV cache: the attention op's pattern cache, new rows overwritten by run().
      const AttentionSpec as = sp.attention_spec(l);
      const long long rows = static_cast<long long>(as.batch) * as.context;
      const long long kn = rows * as.kv_heads * as.qk_dim, vn = rows * as.kv_heads * as.v_dim;
      w.k.resize(static_cast<std::size_t>(kn) * esize(kvt_));
      fill_kv(w.k, kvt_, kn, as.seed + 2, as.kv_scale, s());
      if (!as.shared_kv) {
        w.v.resize(static_cast<std::size_t>(vn) * esize(kvt_));
        fill_kv(w.v, kvt_, vn, as.seed + 3, as.kv_scale, s());
      }
      kc::AttentionArgs& ar = w.args;
      ar.k = w.k.get();
      ar.v = as.shared_kv ? nullptr : w.v.get();
      ar.kv = kvt_;
      ar.kv_scale = as.kv_scale;
      ar.batch = as.batch;
      ar.queries = as.queries;
      ar.heads = as.heads;
      ar.kv_heads = as.kv_heads;
      ar.qk = as.qk_dim;
      ar.vd = as.v_dim;
      ar.context = as.context;
      ar.shared_kv = as.shared_kv;
      ar.scale = as.scale;
      ar.force_generic = ctx().generic_attention;
      ar.simt_decode = ctx().simt_attention;
      ar.q_bf16 = sp.dtype == DType::bf16;
    }
    // Activations (fp32) and their dtype copies (GEMM inputs; bf16 only).
    auto f32 = [](DeviceBuffer& b, long long n) {
      b.resize(static_cast<std::size_t>(std::max(1LL, n)) * 4);
    };
    auto act_buf = [this](DeviceBuffer& b, long long n) {
      if (t_ != Elem::f32) b.resize(static_cast<std::size_t>(std::max(1LL, n)) * esize(t_));
    };
    x_in_ = cudabk::upload(x, s());
    f32(x_, tk * h);
    f32(hn_, tk * h);
    act_buf(hn_act_, tk * h);
    f32(y_, tk * h);
    const long long q_n = tk * as0.heads * as0.qk_dim, att_n = tk * as0.heads * as0.v_dim;
    f32(q_, q_n);
    f32(att_, att_n);
    act_buf(att_act_, att_n);
    if (a.mla) {
      const long long qk = a.nope_dim + a.rope_dim;
      f32(proj_, tk * a.heads * qk);
      act_buf(proj_act_, tk * a.heads * qk);
      f32(qa_, tk * a.q_lora_rank);
      act_buf(qa_act_, tk * a.q_lora_rank);
      f32(kvn_, tk * (a.kv_lora_rank + a.rope_dim));
      f32(ov_, tk * a.heads * a.v_head_dim);
      act_buf(ov_act_, tk * a.heads * a.v_head_dim);
    } else {
      f32(proj_, tk * (a.heads + 2 * a.kv_heads) * a.head_dim);
    }
    long long rows = tk, fmax = sh.dense_ffn;
    if (sh.moe) {
      const MoeShape& m = *sh.moe;
      a_ = static_cast<int>(tk * m.top_k);
      rows = std::max<long long>(rows, a_);
      fmax = std::max<long long>(m.ffn, static_cast<long long>(m.shared_experts) * m.shared_ffn);
      const MoeSpec ms = sp.moe_spec(0);
      rb_.alloc(ctx(), ms, static_cast<int>(tk));
      pb_.alloc(ms, a_);
      x_perm_act_.resize(static_cast<std::size_t>(std::max(1, a_)) * static_cast<std::size_t>(h) *
                         esize(t_));
      f32(y_perm_, static_cast<long long>(a_) * h);
      f32(ids_, static_cast<long long>(sp.layers) * a_);
      MOE_CUDA_CHECK(cudaMallocHost(&host_counts_, static_cast<std::size_t>(m.experts) * 4));
      gemv_ = ctx().gemv_experts && experts_gemv_supported(ms);
    }
    f32(gu_, rows * 2 * fmax);
    h_act_.resize(static_cast<std::size_t>(std::max(1LL, rows * fmax)) * esize(t_));
    for (LayerW& w : layers_) {
      w.args.q = q_.as<float>();
      w.args.out = att_.as<float>();
      ws_bytes_ = std::max(ws_bytes_, kc::attention_workspace_bytes(w.args, ctx().facts.sms));
    }
    ws_.resize(static_cast<std::size_t>(std::max(1LL, ws_bytes_)));
    MOE_CUDA_CHECK(cudaStreamSynchronize(s()));
  }
  ~LayerOp() override {
    if (host_counts_) MOE_CUDA_CHECK_NOTHROW(cudaFreeHost(host_counts_));
  }
  // MoE layers replay from a graph only with the grouped-GEMV experts (no host counts).
  bool capturable() const override { return !s_.shape.moe || gemv_; }
  void enqueue(cudaStream_t st) override {
    const LayerShape& sh = s_.shape;
    const AttnShape& a = sh.attn;
    const int h = sh.hidden, tk = s_.tokens();
    const long long th = static_cast<long long>(tk) * h;
    const float eps = static_cast<float>(sh.rms_eps);
    MOE_CUDA_CHECK(cudaMemcpyAsync(x_.get(), x_in_.get(), static_cast<std::size_t>(th) * 4,
                                   cudaMemcpyDeviceToDevice, st));
    for (int l = 0; l < s_.layers; ++l) {
      LayerW& w = layers_[static_cast<std::size_t>(l)];
      const AttentionSpec as = s_.attention_spec(l);
      const long long first_new = as.context - s_.queries;
      kc::rmsnorm(x_.as<float>(), tk, h, eps, hn_.as<float>(), st);
      const void* hx = act(hn_.as<float>(), th, hn_act_, st);
      int o_k = 0;
      const void* ox = nullptr;
      if (!a.mla) {
        const int d = a.head_dim, n = (a.heads + 2 * a.kv_heads) * d, qn = a.heads * d,
                  kvn = a.kv_heads * d;
        mm(tk, n, h, w.qkv, 0, hx, h, proj_.as<float>(), n, st);
        MOE_CUDA_CHECK(
            cudaMemcpy2DAsync(q_.get(), static_cast<std::size_t>(qn) * 4, proj_.get(),
                              static_cast<std::size_t>(n) * 4, static_cast<std::size_t>(qn) * 4,
                              static_cast<std::size_t>(tk), cudaMemcpyDeviceToDevice, st));
        kc::store_kv_rows(proj_.as<float>() + qn, n, tk, kvn, s_.queries, as.context, first_new,
                          w.k.get(), kvt_, as.kv_scale, st);
        kc::store_kv_rows(proj_.as<float>() + qn + kvn, n, tk, kvn, s_.queries, as.context,
                          first_new, w.v.get(), kvt_, as.kv_scale, st);
        kc::attention(w.args, ws_.get(), ws_bytes_, ctx().facts.sms, st);
        o_k = qn;
        ox = act(att_.as<float>(), static_cast<long long>(tk) * o_k, att_act_, st);
      } else {
        const int qk = a.nope_dim + a.rope_dim, r = a.kv_lora_rank, row = r + a.rope_dim,
                  ql = a.q_lora_rank, v = a.v_head_dim, hq = a.heads * qk;
        if (ql > 0) {
          mm(tk, ql, h, w.q_a, 0, hx, h, qa_.as<float>(), ql, st);
          kc::rmsnorm(qa_.as<float>(), tk, ql, eps, qa_.as<float>(), st);
          const void* qx = act(qa_.as<float>(), static_cast<long long>(tk) * ql, qa_act_, st);
          mm(tk, hq, ql, w.q_b, 0, qx, ql, proj_.as<float>(), hq, st);
        } else {
          mm(tk, hq, h, w.q_b, 0, hx, h, proj_.as<float>(), hq, st);
        }
        mm(tk, row, h, w.kv_a, 0, hx, h, kvn_.as<float>(), row, st);
        kc::store_kv_rows(kvn_.as<float>(), row, tk, row, s_.queries, as.context, first_new,
                          w.k.get(), kvt_, as.kv_scale, st);
        // Absorb W_uk per head: q_lat = q_nope · W_uk^T, then append the rope part.
        const void* px = act(proj_.as<float>(), static_cast<long long>(tk) * hq, proj_act_, st);
        for (int hh = 0; hh < a.heads; ++hh)
          mm(tk, r, a.nope_dim, w.uk, static_cast<long long>(hh) * r * a.nope_dim,
             at(px, static_cast<long long>(hh) * qk), hq,
             q_.as<float>() + static_cast<long long>(hh) * row,
             static_cast<long long>(a.heads) * row, st);
        if (a.rope_dim > 0)
          MOE_CUDA_CHECK(cudaMemcpy2DAsync(
              q_.as<float>() + r, static_cast<std::size_t>(row) * 4, proj_.as<float>() + a.nope_dim,
              static_cast<std::size_t>(qk) * 4, static_cast<std::size_t>(a.rope_dim) * 4,
              static_cast<std::size_t>(tk) * static_cast<std::size_t>(a.heads),
              cudaMemcpyDeviceToDevice, st));
        kc::attention(w.args, ws_.get(), ws_bytes_, ctx().facts.sms, st);
        // Per-head W_uv: latent attention output -> v_head_dim values.
        const long long hr = static_cast<long long>(a.heads) * r;
        const void* ax = act(att_.as<float>(), tk * hr, att_act_, st);
        o_k = a.heads * v;
        for (int hh = 0; hh < a.heads; ++hh)
          mm(tk, v, r, w.uv, static_cast<long long>(hh) * v * r,
             at(ax, static_cast<long long>(hh) * r), hr,
             ov_.as<float>() + static_cast<long long>(hh) * v, o_k, st);
        ox = act(ov_.as<float>(), static_cast<long long>(tk) * o_k, ov_act_, st);
      }
      mm(tk, h, o_k, w.o, 0, ox, o_k, y_.as<float>(), h, st);
      kc::add_inplace(x_.as<float>(), y_.as<float>(), th, st);
      kc::rmsnorm(x_.as<float>(), tk, h, eps, hn_.as<float>(), st);
      if (sh.moe)
        moe(l, w, st);
      else
        dense_ffn(w, st);
      kc::add_inplace(x_.as<float>(), y_.as<float>(), th, st);
    }
  }
  OpOutput output() override {
    OpOutput o;
    o.f = cudabk::download<float>(
        x_.get(), static_cast<std::size_t>(s_.tokens()) * static_cast<std::size_t>(s_.shape.hidden),
        s());
    if (s_.shape.moe)
      o.i = cudabk::download<int>(
          ids_.get(), static_cast<std::size_t>(s_.layers) * static_cast<std::size_t>(a_), s());
    return o;
  }

 private:
  struct LayerW {
    DeviceBuffer qkv, q_a, q_b, kv_a, uk, uv, o, gu, down, k, v;
    MoeWeights moe;
    kc::AttentionArgs args;
  };

  // src as a GEMM input: itself (fp32) or its dtype copy in `buf`.
  const void* act(const float* src, long long n, DeviceBuffer& buf, cudaStream_t st) const {
    if (t_ == Elem::f32) return src;
    kc::convert_f32(src, buf.get(), t_, n, st);
    return buf.get();
  }
  // Element `elems` of a GEMM input in the op's dtype.
  const void* at(const void* p, long long elems) const {
    return static_cast<const char*>(p) + static_cast<std::size_t>(elems) * esize(t_);
  }
  // Y[m, n] (stride ldy) = X[m, k] (stride ldx) · W[w_off.., n rows of k]^T.
  void mm(int m, int n, int k, const DeviceBuffer& w, long long w_off, const void* x, long long ldx,
          float* y, long long ldy, cudaStream_t st) {
    ctx().lt.matmul(MatmulShape{m, n, k, t_, k, ldx, ldy, 0}, at(w.get(), w_off), x, y, st);
  }
  void dense_ffn(LayerW& w, cudaStream_t st) {
    const int h = s_.shape.hidden, tk = s_.tokens(), f = s_.shape.dense_ffn;
    const void* hx = act(hn_.as<float>(), static_cast<long long>(tk) * h, hn_act_, st);
    mm(tk, 2 * f, h, w.gu, 0, hx, h, gu_.as<float>(), 2 * f, st);
    kc::swiglu(gu_.as<float>(), tk, f, h_act_.get(), t_, st);
    mm(tk, h, f, w.down, 0, h_act_.get(), f, y_.as<float>(), h, st);
  }
  // Router -> permutation -> counts to the host -> expert GEMMs -> shared -> combine.
  void moe(int l, LayerW& w, cudaStream_t st) {
    const MoeSpec ms = s_.moe_spec(l);
    const int h = s_.shape.hidden, tk = s_.tokens(), e = ms.shape.experts;
    rb_.run(ctx(), ms, w.moe, hn_.as<float>(), tk, st);
    pb_.run(ms, rb_.ids.as<int>(), a_, st);
    if (!gemv_)
      MOE_CUDA_CHECK(cudaMemcpyAsync(host_counts_, pb_.counts.get(),
                                     static_cast<std::size_t>(e) * 4, cudaMemcpyDeviceToHost, st));
    kc::gather_rows(hn_.as<float>(), pb_.perm.as<int>(), ms.shape.top_k, a_, h, x_perm_act_.get(),
                    t_, st);
    const bool shared = ms.shape.shared_experts * ms.shape.shared_ffn > 0;
    if (shared) {
      const void* hx = act(hn_.as<float>(), static_cast<long long>(tk) * h, hn_act_, st);
      shared_ffn(ctx(), ms, w.moe, tk, hx, gu_.as<float>(), h_act_.get(), y_.as<float>(), st);
    }
    if (gemv_) {
      experts_gemv(ms, w.moe, pb_.counts.as<int>(), pb_.offsets.as<int>(), a_, x_perm_act_.get(),
                   gu_.as<float>(), h_act_.get(), y_perm_.as<float>(), st,
                   ctx().tensor_core_experts(a_, ms.shape.experts));
    } else {
      MOE_CUDA_CHECK(cudaStreamSynchronize(st));
      counts_.assign(host_counts_, host_counts_ + e);
      experts_per_expert(ctx(), ms, w.moe, counts_, x_perm_act_.get(), gu_.as<float>(),
                         h_act_.get(), y_perm_.as<float>(), st);
    }
    kc::combine(y_perm_.as<float>(), pb_.inv.as<int>(), rb_.w.as<float>(), tk, ms.shape.top_k, h,
                y_.as<float>(), shared, st);
    MOE_CUDA_CHECK(cudaMemcpyAsync(ids_.as<int>() + static_cast<long long>(l) * a_, rb_.ids.get(),
                                   static_cast<std::size_t>(a_) * 4, cudaMemcpyDeviceToDevice, st));
  }

  LayerSpec s_;
  Elem t_ = Elem::f32, kvt_ = Elem::f32;
  std::vector<LayerW> layers_;
  DeviceBuffer x_in_, x_, hn_, hn_act_, y_, q_, att_, att_act_, proj_, proj_act_, qa_, qa_act_,
      kvn_, ov_, ov_act_, gu_, h_act_, x_perm_act_, y_perm_, ids_, ws_;
  long long ws_bytes_ = 0;
  int a_ = 0;
  RouterBufs rb_;
  PermBufs pb_;
  int* host_counts_ = nullptr;
  std::vector<int> counts_;
  bool gemv_ = false;
};

// ---- backend ------------------------------------------------------------------------

std::string arch_list() {
  return MOEPROBE_CUDA_ARCHS;
}

std::string lt_version() {
  const std::size_t v = cublasLtGetVersion();
  return std::to_string(v / 10000) + "." + std::to_string((v / 100) % 100) + "." +
         std::to_string(v % 100);
}

std::string experts_path(bool batched) {
  return std::string(kGroupedNote) +
         (batched ? "cuBLASLt pointer-array batched matmul over padded experts (fallback variant 2)"
                  : "one cuBLASLt matmul per non-empty expert, captured in a CUDA graph (fallback "
                    "variant 1; "
                    "CUDA 13.0 cuBLASLt has no grouped matmul)");
}

class CudaBackend : public Backend {
 public:
  CudaBackend(int threads, int device) : threads_(threads) {
    ctx_ = std::make_shared<Ctx>();
    ctx_->device = device;
    MOE_CUDA_CHECK(cudaSetDevice(device));
    ctx_->facts = cudabk::device_facts(device);
    MOE_CUDA_CHECK(cudaStreamCreateWithFlags(&ctx_->stream, cudaStreamNonBlocking));
    // Default: the device-side experts (GEMV at few rows per expert, tensor-core
    // grouped GEMM from kMixedGemmRows on), verified and timed on an H200 on
    // 2026-11-27 (docs/probe.md, "GPU runs"); the grouped GEMM needs sm_80, so
    // older cards take the GEMV alone. "graph" keeps cuBLASLt per expert, the
    // reference and fallback.
    const std::string experts =
        env_or("MOEPROBE_CUDA_EXPERTS", ctx_->facts.cc_major >= 8 ? "mixed" : "gemv");
    ctx_->batched_experts = experts == "batched";
    ctx_->grouped_experts = experts == "grouped";
    ctx_->mixed_experts = experts == "mixed";
    ctx_->gemv_experts = experts == "gemv" || ctx_->grouped_experts || ctx_->mixed_experts;
    ctx_->paged_kv = env_or("MOEPROBE_CUDA_KV", "contiguous") == "paged";
    const std::string attn = env_or("MOEPROBE_CUDA_ATTN", "decode");
    ctx_->generic_attention = attn == "generic";
    ctx_->simt_attention = attn == "simt";
    ctx_->cublaslt_gate = env_or("MOEPROBE_CUDA_GATE", "splitk") == "cublaslt";
    ctx_->flush.resize(static_cast<std::size_t>(std::max(2 * ctx_->facts.l2_bytes, 8LL << 20)));
  }
  std::string name() const override { return "cuda"; }
  DeviceIdentity identity() const override {
    DeviceIdentity id;
    const auto& f = ctx_->facts;
    id.name = f.name;
    id.kind = "gpu";
    id.memory_gb = static_cast<double>(f.memory_bytes) / 1e9;
    id.cores = f.sms;
    id.threads = threads_;
    char host[256] = {};
    if (::gethostname(host, sizeof(host) - 1) == 0) id.host = host;
    int drv = 0, rt = 0;
    MOE_CUDA_CHECK(cudaDriverGetVersion(&drv));
    MOE_CUDA_CHECK(cudaRuntimeGetVersion(&rt));
    id.driver = cudabk::Nvml::instance().driver_version();
    if (id.driver.empty())
      id.driver =
          "cuda-driver-api " + std::to_string(drv / 1000) + "." + std::to_string((drv % 1000) / 10);
    id.cuda = std::to_string(rt / 1000) + "." + std::to_string((rt % 1000) / 10);
    id.libraries["cublasLt"] = lt_version();
    id.libraries["nccl"] = std::to_string(NCCL_MAJOR) + "." + std::to_string(NCCL_MINOR) + "." +
                           std::to_string(NCCL_PATCH);
    id.libraries["compute_capability"] =
        std::to_string(f.cc_major) + "." + std::to_string(f.cc_minor);
    id.libraries["cuda_archs"] = arch_list();
    id.libraries["moe_experts"] =
        ctx_->grouped_experts
            ? "tensor-core grouped GEMM (bf16; fp32 grouped GEMV) over all experts, device-side "
              "counts/offsets (MOEPROBE_CUDA_EXPERTS=grouped)"
        : ctx_->mixed_experts
            ? "grouped GEMV below " + std::to_string(Ctx::kMixedGemmRows) +
                  " rows per expert, tensor-core grouped GEMM (bf16) from there on, device-side "
                  "counts/offsets (MOEPROBE_CUDA_EXPERTS=mixed)"
        : ctx_->gemv_experts ? "grouped GEMV over all experts, device-side "
                               "counts/offsets (MOEPROBE_CUDA_EXPERTS=gemv)"
                             : experts_path(ctx_->batched_experts);
    id.libraries["router_gate"] =
        ctx_->cublaslt_gate ? "cuBLASLt fp32 at every batch (MOEPROBE_CUDA_GATE=cublaslt)"
                            : "split-K fp32 kernel up to " + std::to_string(mk::kGateMaxTokens) +
                                  " tokens, cuBLASLt above";
    id.libraries["moe_fused"] =
        ctx_->gemv_experts
            ? (ctx_->grouped_experts || ctx_->mixed_experts
                   ? "tensor-core grouped GEMM experts (mixed: GEMV at few rows per expert), no "
                     "host round trip, replayed from a CUDA graph"
                   : "grouped GEMV experts, no host round trip, replayed from a CUDA graph")
            : "per-expert cuBLASLt matmuls after a device->host count copy (one sync per call)";
    id.libraries["attention"] =
        ctx_->generic_attention ? "generic tiled kernel for every case (MOEPROBE_CUDA_ATTN=generic)"
        : ctx_->simt_attention
            ? "SIMT split-KV decode kernel for GQA/MHA decode (MOEPROBE_CUDA_ATTN=simt), "
              "tensor-core absorbed-MLA decode kernel for bf16 models, generic tiled kernel "
              "for prefill and fp32 MLA"
            : "tensor-core split-KV decode kernel for bf16 models (GQA/MHA v <= 256 and "
              "absorbed MLA; bf16 or fp8 KV), SIMT split-KV decode kernel for fp32 GQA/MHA "
              "(qk = v <= 256), generic tiled kernel for prefill and fp32 MLA";
    id.libraries["kv_cache"] =
        ctx_->paged_kv ? "paged (64 positions per page, shuffled pages)" : "contiguous";
    id.libraries["nvml"] =
        cudabk::Nvml::instance().available() ? "dlopen libnvidia-ml.so.1" : "unavailable";
    const GpuClocks c = cudabk::Nvml::instance().read(ctx_->device);
    if (c.valid) {
      id.clocks_mhz["sm"] = c.sm_mhz;
      id.clocks_mhz["memory"] = c.mem_mhz;
    }
    int clk = 0;
    if (cudaDeviceGetAttribute(&clk, cudaDevAttrClockRate, ctx_->device) == cudaSuccess && clk > 0)
      id.clocks_mhz["max"] = clk / 1000.0;
    id.last_level_cache_bytes = f.l2_bytes;
    id.simd = "sm_" + std::to_string(f.cc_major) + std::to_string(f.cc_minor);
    return id;
  }
  bool supports(DType) const override { return true; }
  void flush_caches() override {
    kc::scribble(ctx_->flush.get(), static_cast<long long>(ctx_->flush.bytes()), ctx_->stream);
    MOE_CUDA_CHECK(cudaStreamSynchronize(ctx_->stream));
  }
  std::unique_ptr<Op> triad(const TriadSpec& s) override {
    return std::make_unique<TriadOp>(ctx_, s);
  }
  std::unique_ptr<Op> gemm(const GemmSpec& s, const std::vector<float>& x) override {
    return std::make_unique<GemmOp>(ctx_, s, x);
  }
  std::unique_ptr<Op> moe_router(const MoeSpec& s, const std::vector<float>& x,
                                 int tokens) override {
    return std::make_unique<RouterOp>(ctx_, s, x, tokens);
  }
  std::unique_ptr<Op> moe_permute(const MoeSpec& s, const std::vector<int>& ids,
                                  const std::vector<float>& x, int tokens) override {
    return std::make_unique<PermuteOp>(ctx_, s, ids, x, tokens);
  }
  std::unique_ptr<Op> moe_experts(const MoeSpec& s, const std::vector<float>& x_perm,
                                  const std::vector<int>& counts) override {
    return std::make_unique<ExpertsOp>(ctx_, s, x_perm, counts);
  }
  std::unique_ptr<Op> moe_combine(const MoeSpec& s, const std::vector<float>& y_perm,
                                  const std::vector<int>& inv, const std::vector<float>& w,
                                  int tokens) override {
    return std::make_unique<CombineOp>(ctx_, s, y_perm, inv, w, tokens);
  }
  std::unique_ptr<Op> moe_fused(const MoeSpec& s, const std::vector<float>& x,
                                int tokens) override {
    return std::make_unique<MoeFusedOp>(ctx_, s, x, tokens);
  }
  std::unique_ptr<Op> attention(const AttentionSpec& s) override {
    return std::make_unique<AttentionOp>(ctx_, s);
  }
  std::unique_ptr<Op> layer(const LayerSpec& s, const std::vector<float>& x) override {
    return std::make_unique<LayerOp>(ctx_, s, x);
  }
  Ctx& ctx() { return *ctx_; }

 private:
  int threads_;
  std::shared_ptr<Ctx> ctx_;
};

double median_of(std::vector<double> v) {
  return percentile(std::move(v), 0.5);
}

}  // namespace

BackendInfo cuda_backend_info() {
  BackendInfo b;
  b.name = "cuda";
  b.available = true;
  b.reason = "built with CUDA for sm " + arch_list() + ", cuBLASLt " + lt_version() + ", NCCL " +
             std::to_string(NCCL_MAJOR) + "." + std::to_string(NCCL_MINOR) +
             "; expert GEMMs: " + experts_path(false);
  b.dtypes = {"fp32", "bf16"};
  b.ops = {"triad",        "gemm",      "moe.router",       "moe.permute",       "moe.experts",
           "moe.combine",  "moe.fused", "attention.decode", "attention.prefill", "layer.decode",
           "layer.prefill"};
  return b;
}

std::unique_ptr<Backend> make_cuda_backend(int threads) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    throw BackendUnavailable(
        std::string("backend 'cuda' is unavailable: cudaGetDeviceCount failed (") +
        cudaGetErrorName(e) + ": " + cudaGetErrorString(e) +
        "); is an NVIDIA driver installed and a GPU visible (CUDA_VISIBLE_DEVICES)?");
  }
  if (n == 0)
    throw BackendUnavailable(
        "backend 'cuda' is unavailable: no CUDA device found (cudaGetDeviceCount returned 0)");
  return std::make_unique<CudaBackend>(threads, 0);
}

CudaTiming time_cuda_op(Op& op, Backend& backend, const TimingOptions& t) {
  auto* cop = dynamic_cast<CudaOp*>(&op);
  auto* cb = dynamic_cast<CudaBackend*>(&backend);
  if (!cop || !cb)
    throw moeplan::Error("time_cuda_op: the op and backend must come from make_cuda_backend");
  Ctx& c = cb->ctx();
  CudaTiming r;
  r.graph = cop->capturable();
  // With the flush, one call per sample (cold L2 each time); without, ten
  // calls per graph replay amortise the launch.
  r.calls_per_sample = (t.flush || !r.graph) ? 1 : 10;
  cudaGraphExec_t exec = r.graph ? cop->capture(r.calls_per_sample) : nullptr;
  auto launch = [&] {
    if (exec)
      MOE_CUDA_CHECK(cudaGraphLaunch(exec, c.stream));
    else
      cop->enqueue(c.stream);
  };
  cudaEvent_t e0, e1;
  MOE_CUDA_CHECK(cudaEventCreate(&e0));
  MOE_CUDA_CHECK(cudaEventCreate(&e1));
  r.before = cudabk::Nvml::instance().read(c.device);
  try {
    // Time-based warm-up: at least t.warmup calls and 50 ms (clocks settle).
    const auto w0 = std::chrono::steady_clock::now();
    for (int i = 0; i < std::max(1, t.warmup) ||
                    std::chrono::steady_clock::now() - w0 < std::chrono::milliseconds(50);
         ++i) {
      launch();
      MOE_CUDA_CHECK(cudaStreamSynchronize(c.stream));
    }
    std::vector<double> samples;
    double total = 0;
    const int min_reps = std::max(30, t.min_reps), max_reps = std::max(min_reps, t.max_reps);
    while (static_cast<int>(samples.size()) < max_reps &&
           (static_cast<int>(samples.size()) < min_reps || total < t.min_seconds)) {
      if (t.flush)
        kc::scribble(c.flush.get(), static_cast<long long>(c.flush.bytes()),
                     c.stream);  // not timed
      MOE_CUDA_CHECK(cudaEventRecord(e0, c.stream));
      launch();
      MOE_CUDA_CHECK(cudaEventRecord(e1, c.stream));
      MOE_CUDA_CHECK(cudaEventSynchronize(e1));
      float ms = 0;
      MOE_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
      const double dt = ms * 1e-3 / r.calls_per_sample;
      samples.push_back(dt);
      total += dt * r.calls_per_sample;
    }
    r.stats = summarize(samples);
  } catch (...) {
    if (exec) MOE_CUDA_CHECK_NOTHROW(cudaGraphExecDestroy(exec));
    MOE_CUDA_CHECK_NOTHROW(cudaEventDestroy(e0));
    MOE_CUDA_CHECK_NOTHROW(cudaEventDestroy(e1));
    throw;
  }
  if (exec) MOE_CUDA_CHECK_NOTHROW(cudaGraphExecDestroy(exec));
  MOE_CUDA_CHECK_NOTHROW(cudaEventDestroy(e0));
  MOE_CUDA_CHECK_NOTHROW(cudaEventDestroy(e1));
  r.after = cudabk::Nvml::instance().read(c.device);
  r.clock_drop = r.before.valid && r.after.valid && r.after.sm_mhz < 0.9 * r.before.sm_mhz;
  return r;
}

Fp8GemmCheck check_fp8_gemm(int m, int n, int k) {
  auto backend = make_cuda_backend(0);
  Ctx& c = static_cast<CudaBackend*>(backend.get())->ctx();
  Fp8GemmCheck r;
  r.m = m;
  r.n = n;
  r.k = k;
  r.limit = kFp8GemmLimit;
  if (m <= 0 || n <= 0 || k <= 0 || k % 16 != 0 || n % 4 != 0)
    throw moeplan::Error("check_fp8_gemm: needs positive m, n, k with k % 16 == 0 and n % 4 == 0");
  const int cc = c.facts.cc_major * 10 + c.facts.cc_minor;
  if (cc < 89) {
    r.reason =
        "fp8 e4m3 cuBLASLt matmul needs compute capability >= 8.9 (Ada, Hopper or newer); "
        "this GPU is " +
        std::to_string(c.facts.cc_major) + "." + std::to_string(c.facts.cc_minor);
    return r;
  }
  // Host quantisation with the shared encoder; per-tensor scale = amax / 448.
  auto quantise = [](const std::vector<float>& v, float& scale) {
    float amax = 0.0f;
    for (float x : v) amax = std::max(amax, std::fabs(x));
    scale = amax > 0.0f ? amax / mk::kE4m3Max : 1.0f;
    std::vector<std::uint8_t> q(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) q[i] = mk::e4m3_quantize(v[i], scale);
    return q;
  };
  const auto mk_ = static_cast<std::size_t>(m), nk = static_cast<std::size_t>(n),
             kk = static_cast<std::size_t>(k);
  std::vector<float> x(mk_ * kk), w(nk * kk);
  const Pattern px{811, 1.0f}, pw = Pattern::for_fan_in(812, k);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = px.value(i);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = pw.value(i);
  float sx = 1.0f, sw = 1.0f;
  const auto x8 = quantise(x, sx), w8 = quantise(w, sw);
  DeviceBuffer dx = cudabk::upload(x8, c.stream), dw = cudabk::upload(w8, c.stream),
               dy(mk_ * nk * sizeof(float));
  const cudabk::Fp8Scales scales(sw, sx, c.stream);  // each scale in its own slot
  if (!c.lt.matmul_fp8(m, n, k, dw.get(), dx.get(), scales.w(), scales.x(), dy.as<float>(),
                       c.stream)) {
    r.reason = "cuBLASLt returned no fp8 e4m3 algorithm for " + std::to_string(m) + "x" +
               std::to_string(n) + "x" + std::to_string(k) + " (fp32 output)";
    return r;
  }
  const auto y = cudabk::download<float>(dy.get(), mk_ * nk, c.stream);
  // float64 reference over the dequantised inputs.
  std::vector<double> xd(x8.size()), wd(w8.size());
  for (std::size_t i = 0; i < x8.size(); ++i) xd[i] = mk::e4m3_dequantize(x8[i], sx);
  for (std::size_t i = 0; i < w8.size(); ++i) wd[i] = mk::e4m3_dequantize(w8[i], sw);
  std::vector<float> ref(mk_ * nk);
  for (std::size_t i = 0; i < mk_; ++i)
    for (std::size_t j = 0; j < nk; ++j) {
      double acc = 0;
      for (std::size_t t = 0; t < kk; ++t) acc += xd[i * kk + t] * wd[j * kk + t];
      ref[i * nk + j] = static_cast<float>(acc);
    }
  const Check chk = compare_close(y, ref, r.limit, "fp8 e4m3 gemm");
  r.ran = true;
  r.ok = chk.ok;
  r.max_err = chk.max_err;
  r.reason = chk.detail;
  return r;
}

namespace {

// Median seconds of `reps` event-timed calls of `fn` after `skip` untimed ones.
template <class Fn>
double median_event_seconds(cudaStream_t st, int reps, int skip, Fn&& fn) {
  std::vector<double> ts;
  cudaEvent_t e0, e1;
  MOE_CUDA_CHECK(cudaEventCreate(&e0));
  MOE_CUDA_CHECK(cudaEventCreate(&e1));
  try {
    for (int i = 0; i < skip + reps; ++i) {
      MOE_CUDA_CHECK(cudaEventRecord(e0, st));
      fn();
      MOE_CUDA_CHECK(cudaEventRecord(e1, st));
      MOE_CUDA_CHECK(cudaEventSynchronize(e1));
      float ms = 0;
      MOE_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
      if (i >= skip) ts.push_back(ms * 1e-3);
    }
  } catch (...) {
    MOE_CUDA_CHECK_NOTHROW(cudaEventDestroy(e0));
    MOE_CUDA_CHECK_NOTHROW(cudaEventDestroy(e1));
    throw;
  }
  MOE_CUDA_CHECK_NOTHROW(cudaEventDestroy(e0));
  MOE_CUDA_CHECK_NOTHROW(cudaEventDestroy(e1));
  return median_of(ts);
}

constexpr int kPeakN = 8192;

PeakRow peak_bf16(Ctx& c) {
  constexpr int kN = kPeakN;
  // bf16 dense: pattern inputs (never zeros), best heuristic algorithm, events.
  DeviceBuffer w(static_cast<std::size_t>(kN) * kN * 2), x(static_cast<std::size_t>(kN) * kN * 2),
      y(static_cast<std::size_t>(kN) * kN * 4);
  kc::fill_pattern(w.get(), Elem::bf16, static_cast<long long>(kN) * kN, 11, 0.01f, 0, c.stream);
  kc::fill_pattern(x.get(), Elem::bf16, static_cast<long long>(kN) * kN, 12, 1.0f, 0, c.stream);
  const MatmulShape sh{kN, kN, kN, Elem::bf16, kN, kN, kN, 0};
  c.lt.matmul(sh, w.get(), x.get(), y.as<float>(), c.stream);
  const double s = median_event_seconds(
      c.stream, 30, 0, [&] { c.lt.matmul(sh, w.get(), x.get(), y.as<float>(), c.stream); });
  return PeakRow{"bf16",
                 kN,
                 kN,
                 kN,
                 2.0 * kN * kN * static_cast<double>(kN) / s * 1e-12,
                 0,
                 "cuBLASLt bf16, FP32 accumulate",
                 true};
}

// fp8 is timed only once its results are verified (check_fp8_gemm).
PeakRow peak_fp8(Ctx& c) {
  constexpr int kN = kPeakN;
  PeakRow r{"fp8_e4m3", kN, kN, kN, 0, 0, "", false};
  const Fp8GemmCheck chk = check_fp8_gemm(64, 256, 512);
  if (!chk.ran) {
    r.note = "skipped: " + chk.reason;
    return r;
  }
  if (!chk.ok) {
    r.note = "not timed: the fp8 e4m3 check at 64x256x512 failed (" + chk.reason + ")";
    return r;
  }
  std::string why;
  r.tflops = c.lt.time_fp8_tflops(kN, kN, kN, c.stream, &why);
  r.measured = r.tflops > 0;
  r.note = r.measured ? "verified at 64x256x512: normalised error " + std::to_string(chk.max_err) +
                            " <= " + std::to_string(chk.limit)
                      : "verified at 64x256x512, but not timed: " + why;
  return r;
}

// Copy bandwidth: 4x L2 per buffer, bytes read + written.
PeakRow peak_copy(Ctx& c) {
  const long long bytes = std::max(4 * c.facts.l2_bytes, 256LL << 20) / 16 * 16;
  DeviceBuffer a(static_cast<std::size_t>(bytes)), b(static_cast<std::size_t>(bytes));
  kc::scribble(a.get(), bytes, c.stream);
  const double s =
      median_event_seconds(c.stream, 30, 3, [&] { kc::copy16(b.get(), a.get(), bytes, c.stream); });
  return PeakRow{"copy",
                 0,
                 0,
                 0,
                 0,
                 2.0 * static_cast<double>(bytes) / s * 1e-9,
                 "16-byte copy kernel, read + write",
                 true};
}

}  // namespace

std::vector<PeakRow> run_peak_suite() {
  auto backend = make_cuda_backend(0);
  Ctx& c = static_cast<CudaBackend*>(backend.get())->ctx();
  std::vector<PeakRow> rows;
  // Each row on its own: one failing row (fp8 on a library that refuses it)
  // must not take the others with it.
  const std::pair<const char*, PeakRow (*)(Ctx&)> suite[] = {
      {"bf16", peak_bf16}, {"fp8_e4m3", peak_fp8}, {"copy", peak_copy}};
  for (const auto& [name, fn] : suite) {
    try {
      rows.push_back(fn(c));
    } catch (const moeplan::Error& e) {
      (void)cudaGetLastError();  // a sticky launch error would poison the next rows
      rows.push_back(PeakRow{name, 0, 0, 0, 0, 0, std::string("failed: ") + e.what(), false});
    }
  }
  return rows;
}

}  // namespace moeprobe
