// CUDA backend: registry and graceful absence everywhere; on a GPU, each op
// against the CPU reference (the harness does the same before timing).
#include <fmt/format.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>

#include "moeprobe/backend.hpp"
#include "moeprobe/measure.hpp"
#include "moeprobe/reference.hpp"
#include "moeprobe/shapes.hpp"

#ifdef MOEPROBE_HAVE_CUDA
#include "moekernels_cuda.hpp"
#include "moeprobe/cuda_backend.hpp"
#endif

using namespace moeprobe;
#ifdef MOEPROBE_HAVE_CUDA
namespace kc = moekernels::cuda;
#endif

#ifdef MOEPROBE_HAVE_CUDA
namespace {
std::unique_ptr<Backend> gpu_or_null() {
  try {
    return make_cuda_backend(0);
  } catch (const BackendUnavailable&) {
    return nullptr;
  }
}
// A backend built while `var` = `value` (the backend reads its MOEPROBE_CUDA_* switches when
// it is made); the variable is unset again.
std::unique_ptr<Backend> gpu_with(const char* var, const char* value) {
  ::setenv(var, value, 1);
  auto b = gpu_or_null();
  ::unsetenv(var);
  return b;
}
std::vector<float> pattern_input(std::size_t n, std::uint64_t seed) {
  std::vector<float> x(n);
  const Pattern p{seed, 1.0f};
  for (std::size_t i = 0; i < n; ++i) x[i] = p.value(i);
  return x;
}
}  // namespace

TEST_CASE("cuda backend is registered and reports its build", "[probe][cuda]") {
  const BackendInfo info = cuda_backend_info();
  CHECK(info.name == "cuda");
  CHECK(info.available);
  CHECK(info.reason.find("cuBLASLt") != std::string::npos);
  bool listed = false;
  for (const auto& b : list_backends())
    if (b.name == "cuda") listed = b.available;
  CHECK(listed);
}

TEST_CASE("make_cuda_backend throws BackendUnavailable without a GPU", "[probe][cuda]") {
  std::unique_ptr<Backend> b;
  try {
    b = make_cuda_backend(0);
  } catch (const BackendUnavailable& e) {
    CHECK(std::string(e.what()).find("backend 'cuda' is unavailable") != std::string::npos);
    WARN("no GPU: " << e.what());
    return;
  }
  CHECK(b->name() == "cuda");
  CHECK(b->identity().kind == "gpu");
}

TEST_CASE("cuda ops match the reference", "[probe][cuda][gpu]") {
  auto b = gpu_or_null();
  if (!b) {
    WARN("no GPU");
    return;
  }
  for (DType d : {DType::fp32, DType::bf16}) {
    const double lim = error_limit(d, OpKind::simple);
    SECTION(std::string("triad ") + dtype_name(d)) {
      TriadSpec s{1000003, 7};
      auto op = b->triad(s);
      op->run();
      CHECK(compare_close(op->output().f, ref::triad(s), 1e-6, "triad").ok);
    }
    SECTION(std::string("gemm ") + dtype_name(d)) {
      GemmSpec s{17, 96, 80, d, 5};
      const auto x = pattern_input(17 * 80, 3);
      auto op = b->gemm(s, x);
      op->run();
      const Check c = compare_close(op->output().f, ref::gemm(s, x), lim, "gemm");
      CHECK(c.ok);
      INFO(c.detail);
    }
    MoeSpec ms;
    ms.hidden = 64;
    ms.shape.experts = 16;
    ms.shape.top_k = 4;
    ms.shape.ffn = 48;
    ms.shape.shared_experts = 1;
    ms.shape.shared_ffn = 32;
    ms.dtype = d;
    ms.pool = 5;
    ms.seed = 100;
    const int tokens = 17;
    const auto x = pattern_input(static_cast<std::size_t>(tokens) * 64, 9);
    SECTION(std::string("moe pipeline ") + dtype_name(d)) {
      for (bool grouped : {false, true}) {
        ms.shape.sigmoid_grouped = grouped;
        ms.shape.n_group = grouped ? 4 : 0;
        ms.shape.topk_group = grouped ? 2 : 0;
        const ref::Routing r = ref::route(ms, x, tokens);
        auto router = b->moe_router(ms, x, tokens);
        router->run();
        const OpOutput ro = router->output();
        CHECK(ref::valid_topk(ms, r.logits, ro.i, tokens, 1e-4));
        const ref::Permutation p = ref::permute(ms, r.ids, x, tokens);
        auto perm = b->moe_permute(ms, r.ids, x, tokens);
        perm->run();
        const OpOutput po = perm->output();
        std::vector<int> want = p.counts;
        for (const auto* v : {&p.offsets, &p.perm, &p.inv})
          want.insert(want.end(), v->begin(), v->end());
        CHECK(compare_exact(po.i, want, "permute").ok);
        CHECK(compare_close(po.f, p.x_perm, 0, "x_perm").ok);
        auto ex = b->moe_experts(ms, p.x_perm, p.counts);
        ex->run();
        const auto y = ex->output().f;
        CHECK(compare_close(y, ref::experts(ms, p.x_perm, p.counts), lim, "experts").ok);
        auto cb = b->moe_combine(ms, y, p.inv, r.w, tokens);
        cb->run();
        CHECK(compare_close(cb->output().f, ref::combine(ms, y, p.inv, r.w, tokens), lim, "combine")
                  .ok);
        auto fused = b->moe_fused(ms, x, tokens);
        fused->run();
        const OpOutput fo = fused->output();
        CHECK(ref::valid_topk(ms, r.logits, fo.i, tokens, 1e-4));
        const auto w = ref::routing_weights(ms, r.logits, fo.i, tokens);
        CHECK(compare_close(fo.f, ref::moe_block(ms, x, tokens, fo.i, w), lim, "fused").ok);
      }
    }
    SECTION(std::string("attention ") + dtype_name(d)) {
      for (int q : {1, 9}) {
        AttentionSpec a;
        a.batch = 2;
        a.queries = q;
        a.context = 300;
        a.heads = 8;
        a.kv_heads = 2;
        a.qk_dim = 64;
        a.v_dim = 64;
        a.dtype = d;
        a.seed = 77;
        a.scale = 0.125f;
        auto op = b->attention(a);
        op->run();
        CHECK(compare_close(op->output().f, ref::attention(a), lim, "gqa").ok);
        a.kv_heads = 1;  // MLA absorbed: latent rows, V = first v_dim of K
        a.qk_dim = 72;
        a.v_dim = 64;
        a.shared_kv = true;
        auto mla = b->attention(a);
        mla->run();
        CHECK(compare_close(mla->output().f, ref::attention(a), lim, "mla").ok);
      }
    }
  }
}
TEST_CASE("cuda decoder layers match the reference", "[probe][cuda][gpu]") {
  const BackendInfo info = cuda_backend_info();
  for (const char* op : {"layer.decode", "layer.prefill"})
    CHECK(std::find(info.ops.begin(), info.ops.end(), op) != info.ops.end());
  auto b = gpu_or_null();
  if (!b) {
    WARN("no GPU: layer ops not run");
    return;
  }
  MoeShape moe;
  moe.experts = 8;
  moe.top_k = 2;
  moe.ffn = 48;
  moe.shared_experts = 1;
  moe.shared_ffn = 32;
  // 0: GQA + MoE; 1: MLA (q LoRA) + dense FFN; 2: MLA without q LoRA + MoE, fp8 KV.
  for (int cfg = 0; cfg < 3; ++cfg)
    for (DType d : {DType::fp32, DType::bf16})
      for (int q : {1, 9}) {
        LayerSpec s;
        s.shape.hidden = 64;
        s.shape.attn.heads = 4;
        if (cfg == 0) {
          s.shape.attn.kv_heads = 2;
          s.shape.attn.head_dim = 32;
        } else {
          s.shape.attn.mla = true;
          s.shape.attn.q_lora_rank = cfg == 1 ? 48 : 0;
          s.shape.attn.kv_lora_rank = 64;
          s.shape.attn.rope_dim = 16;
          s.shape.attn.nope_dim = 32;
          s.shape.attn.v_head_dim = 32;
        }
        if (cfg == 1)
          s.shape.dense_ffn = 96;
        else
          s.shape.moe = moe;
        s.dtype = d;
        s.kv_dtype = cfg == 2 ? KvDType::fp8 : KvDType::same;
        s.batch = 2;
        s.queries = q;
        s.context = q == 1 ? 40 : q;  // decode: 39 cached + 1 new; prefill: causal
        s.layers = 2;
        s.pool = 3;
        s.seed = 500 + static_cast<std::uint64_t>(cfg);
        const auto x = pattern_input(static_cast<std::size_t>(s.tokens()) * 64, 31);
        auto op = b->layer(s, x);
        op->run();
        op->run();  // repeatable: the new K/V rows are rewritten with the same values
        op->sync();
        const OpOutput o = op->output();
        CHECK(o.i.size() ==
              (s.shape.moe ? static_cast<std::size_t>(s.layers * s.tokens() * moe.top_k) : 0u));
        const Check c = compare_close(o.f, ref::layer(s, x, &o.i, routing_tie_tol(d, s.kv_dtype)),
                                      error_limit(d, OpKind::chained, s.kv_dtype), "layer");
        INFO("config " << cfg << " " << dtype_name(d) << " Q" << q << ": " << c.detail);
        CHECK(c.ok);
      }
}

// The SIMT split-KV decode kernel (queries = 1, separate K/V): group sizes below,
// at, not a power of two and above its head chunk of 8, head dims 64/128/256,
// contexts shorter than a step and long enough for many splits, every KV type.
// bf16 models take the tensor-core kernel by default (tested below at its own
// bf16-rounding limit); MOEPROBE_CUDA_ATTN=simt keeps them on this kernel, whose
// fp32 arithmetic meets the fp32 limit.
TEST_CASE("cuda split-KV decode attention against the reference", "[probe][cuda][gpu]") {
  auto b = gpu_with("MOEPROBE_CUDA_ATTN", "simt");
  if (!b) {
    WARN("no GPU: decode attention not run");
    return;
  }
  struct Case {
    int heads, kv_heads, dim;
    long long context;
  };
  for (const Case c :
       {Case{8, 8, 64, 1}, Case{8, 2, 128, 5}, Case{32, 4, 128, 1000}, Case{24, 4, 128, 333},
        Case{64, 4, 128, 77}, Case{16, 2, 256, 517}, Case{8, 1, 32, 130}})
    for (DType d : {DType::fp32, DType::bf16})
      for (KvDType kv : {KvDType::same, KvDType::fp8}) {
        AttentionSpec a;
        a.batch = 3;
        a.queries = 1;
        a.context = c.context;
        a.heads = c.heads;
        a.kv_heads = c.kv_heads;
        a.qk_dim = a.v_dim = c.dim;
        a.dtype = d;
        a.kv_dtype = kv;
        a.seed = 123;
        a.scale = 1.0f / std::sqrt(static_cast<float>(c.dim));
        auto op = b->attention(a);
        op->run();
        op->sync();
        const Check r = compare_close(op->output().f, ref::attention(a),
                                      error_limit(DType::fp32, OpKind::simple), "decode");
        INFO(c.heads << "/" << c.kv_heads << "x" << c.dim << " L" << c.context << " "
                     << dtype_name(d) << (kv == KvDType::fp8 ? " fp8 kv" : "") << ": " << r.detail);
        CHECK(r.ok);
      }
}

namespace {
// A bf16 decode case (one query per sequence) for the tensor-core kernel tests.
AttentionSpec decode_spec(int batch, int heads, int kv_heads, int qk, int v, long long context,
                          KvDType kv, std::uint64_t seed, float scale) {
  AttentionSpec a;
  a.batch = batch;
  a.queries = 1;
  a.context = context;
  a.heads = heads;
  a.kv_heads = kv_heads;
  a.qk_dim = qk;
  a.v_dim = v;
  a.dtype = DType::bf16;
  a.kv_dtype = kv;
  a.seed = seed;
  a.scale = scale;
  return a;
}
// One decode case through the tensor-core kernel on a contiguous and a paged cache, held to
// 1e-2 normalised: the kernel rounds the pre-scaled queries and the probabilities to bf16.
void check_tc_decode(Backend& contiguous, Backend& paged, const AttentionSpec& a,
                     const std::string& what) {
  const std::vector<float> want = ref::attention(a);
  for (Backend* be : {&contiguous, &paged}) {
    auto op = be->attention(a);
    op->run();
    op->sync();
    const Check r = compare_close(op->output().f, want, 1e-2, what);
    INFO(what << (a.kv_dtype == KvDType::fp8 ? " fp8 kv" : " bf16 kv")
              << (be == &paged ? " paged" : "") << ": max err " << r.max_err << " " << r.detail);
    CHECK(r.ok);
  }
}
}  // namespace

// The same tensor-core kernel for GQA decode (separate K and V rows per KV head)
// against the CPU reference: qwen3-30b-a3b's 32/4 x 128 (group 8: one head tile,
// 8 padded rows), a group of 20 at v = 64 (two tiles), MHA (group 1), one-key
// and partial-tile contexts, one and many splits; bf16 and fp8 KV, contiguous and
// paged. Same 1e-2 limit as the MLA case (bf16 queries and probabilities).
TEST_CASE("cuda tensor-core GQA decode against the reference", "[probe][cuda][gpu]") {
  auto b = gpu_or_null();
  if (!b) {
    WARN("no GPU: GQA decode not run");
    return;
  }
  auto paged = gpu_with("MOEPROBE_CUDA_KV", "paged");
  REQUIRE(paged);
  struct Case {
    int batch, heads, kv_heads, dim;
    long long context;
  };
  for (const Case c : {Case{2, 32, 4, 128, 300}, Case{64, 32, 4, 128, 1000}, Case{3, 40, 2, 64, 77},
                       Case{2, 8, 8, 128, 1}, Case{1, 32, 4, 128, 4096}})
    for (KvDType kv : {KvDType::same, KvDType::fp8}) {
      const AttentionSpec a = decode_spec(c.batch, c.heads, c.kv_heads, c.dim, c.dim, c.context, kv,
                                          99, 1.0f / std::sqrt(static_cast<float>(c.dim)));
      check_tc_decode(
          *b, *paged, a,
          fmt::format("gqa B{} H{}/{} d{} L{}", c.batch, c.heads, c.kv_heads, c.dim, c.context));
    }
}

// The tensor-core absorbed-MLA decode kernel (mla_decode.cu) against the CPU
// reference: production latent dims (512 + 64) at 16, 64 and 128 heads (128: two
// head groups), the synthetic-mla dims (64 + 16, 4 heads: 12 padded rows), a
// 128 + 64 variant, one-key and non-multiple-of-32 contexts (partial tiles,
// zero-filled rows), one and many splits; bf16 and fp8 e4m3 KV, contiguous and
// paged (MOEPROBE_CUDA_KV=paged). Limit 1e-2 normalised: the kernel rounds the
// pre-scaled queries and the probabilities to bf16 (2^-9 relative each, as
// FlashMLA does; the host simulation in test_probe_kernels.cpp lands at 2e-3),
// half of the bf16 check's 2e-2.
TEST_CASE("cuda tensor-core MLA decode against the reference", "[probe][cuda][gpu]") {
  auto b = gpu_or_null();
  if (!b) {
    WARN("no GPU: MLA decode not run");
    return;
  }
  auto paged = gpu_with("MOEPROBE_CUDA_KV", "paged");  // 64-position pages in a shuffled order
  REQUIRE(paged);
  struct Case {
    int batch, heads, latent, rope;
    long long context;
  };
  for (const Case c :
       {Case{2, 64, 512, 64, 300}, Case{1, 128, 512, 64, 1000}, Case{3, 16, 512, 64, 1},
        Case{3, 4, 64, 16, 37}, Case{2, 20, 128, 64, 77}, Case{64, 64, 512, 64, 64}})
    for (KvDType kv : {KvDType::same, KvDType::fp8}) {
      AttentionSpec a =
          decode_spec(c.batch, c.heads, 1, c.latent + c.rope, c.latent, c.context, kv, 321,
                      1.0f / std::sqrt(192.0f));  // DeepSeek: 1/sqrt(nope + rope)
      a.shared_kv = true;
      kc::AttentionArgs args;
      args.batch = a.batch;
      args.heads = a.heads;
      args.qk = a.qk_dim;
      args.vd = a.v_dim;
      args.context = a.context;
      args.shared_kv = true;
      args.kv = kv == KvDType::fp8 ? kc::Elem::e4m3 : kc::Elem::bf16;
      args.q_bf16 = true;
      args.q = args.out = reinterpret_cast<float*>(16);  // validate() only checks non-null
      args.k = args.q;
      CHECK(kc::attention_uses_mla_kernel(args, 132));
      check_tc_decode(
          *b, *paged, a,
          fmt::format("mla B{} H{} r{}+{} L{}", c.batch, c.heads, c.latent, c.rope, c.context));
    }
}

// Device-side expert variants (MOEPROBE_CUDA_EXPERTS=`variant`) in moe.experts and
// moe.fused (no host round trip, replayed from a graph) against the CPU reference.
namespace {
void check_device_experts(const char* variant, const char* library, std::vector<int> token_list) {
  auto b = gpu_with("MOEPROBE_CUDA_EXPERTS", variant);
  if (!b) {
    WARN("no GPU: " << variant << " experts not run");
    return;
  }
  CHECK(b->identity().libraries.at("moe_fused").find("no host round trip") != std::string::npos);
  CHECK(b->identity().libraries.at("moe_experts").find(library) != std::string::npos);
  const moeplan::Model m = find_model("synthetic-tiny", nullptr);
  const LayerShape ls = layer_shape(m);
  for (DType d : {DType::fp32, DType::bf16})
    for (int tokens : token_list) {
      MoeSpec ms;
      ms.hidden = ls.hidden;
      ms.shape = *ls.moe;
      ms.dtype = d;
      ms.pool = std::min(ls.moe->experts, 5);  // slot = e % 5: experts share weights
      ms.seed = 4100;
      std::vector<float> x(static_cast<std::size_t>(tokens) * ms.hidden);
      const Pattern px{4200 + static_cast<std::uint64_t>(tokens), 1.0f};
      for (std::size_t i = 0; i < x.size(); ++i) x[i] = px.value(i);
      const ref::Routing r = ref::route(ms, x, tokens);
      const ref::Permutation p = ref::permute(ms, r.ids, x, tokens);
      const double lim = error_limit(d, OpKind::simple);
      auto ex = b->moe_experts(ms, p.x_perm, p.counts);
      ex->run();
      const Check ce = compare_close(ex->output().f, ref::experts(ms, p.x_perm, p.counts), lim,
                                     "device experts");
      INFO(variant << " " << dtype_name(d) << " tokens " << tokens << ": " << ce.detail);
      CHECK(ce.ok);
      auto fused = b->moe_fused(ms, x, tokens);
      fused->run();  // captured in a graph on first run
      fused->run();  // replayed
      const OpOutput fo = fused->output();
      CHECK(ref::valid_topk(ms, r.logits, fo.i, tokens, 1e-4));
      const auto w = ref::routing_weights(ms, r.logits, fo.i, tokens);
      const Check cf =
          compare_close(fo.f, ref::moe_block(ms, x, tokens, fo.i, w), lim, "device fused");
      INFO(cf.detail);
      CHECK(cf.ok);
    }
}
}  // namespace

TEST_CASE("cuda grouped GEMV experts and graph-captured fused MoE", "[probe][cuda][gpu]") {
  check_device_experts("gemv", "grouped GEMV", {1, 3, 17});
}

// MOEPROBE_CUDA_EXPERTS=grouped: bf16 runs the tensor-core grouped GEMM. synthetic-tiny has
// 16 experts, top-4: 300 tokens give 1,200 rows, about 75 per expert, so experts span
// several 64-row M-tiles with a partial last one; 1 and 3 tokens leave most experts empty.
TEST_CASE("cuda tensor-core grouped GEMM experts and graph-captured fused MoE",
          "[probe][cuda][gpu][ggemm]") {
  check_device_experts("grouped", "tensor-core grouped GEMM", {1, 3, 17, 300});
}

// MOEPROBE_CUDA_EXPERTS=mixed (the default from sm_80): 1 and 3 tokens (4 and 12 rows
// over 16 experts) stay below 4 rows per expert and take the GEMV; 17 and 300 tokens
// (68 and 1,200 rows) take the tensor-core GEMM.
TEST_CASE("cuda mixed GEMV / grouped-GEMM experts and graph-captured fused MoE",
          "[probe][cuda][gpu][ggemm]") {
  check_device_experts("mixed", "from there on", {1, 3, 17, 300});
}

// The router's gate: split-K kernel up to kGateMaxTokens tokens (tokens 1, 5,
// 17, 256), cuBLASLt above (300) and with MOEPROBE_CUDA_GATE=cublaslt; tails
// on every axis of the kernel's tiles (hidden 100: a 4-wide last K step; 200
// experts: a 72-wide second expert tile; 70 and 300 tokens: partial token tiles).
TEST_CASE("cuda router gate: split-K and cuBLASLt logits against float64",
          "[probe][cuda][gpu][gate]") {
  for (const char* gate : {"splitk", "cublaslt"}) {
    auto b = gpu_with("MOEPROBE_CUDA_GATE", gate);
    if (!b) {
      WARN("no GPU");
      return;
    }
    CHECK((b->identity().libraries.at("router_gate").find("split-K") != std::string::npos) ==
          (std::string(gate) == "splitk"));
    // (experts, n_group, topk_group): DeepSeek-style 8 groups pick 4; glm-5.2's one
    // group of 256, whose group score the whole warp now computes.
    for (const auto& [experts, n_group, topk_group] :
         {std::array<int, 3>{200, 8, 4}, std::array<int, 3>{256, 1, 1}})
      for (int hidden : {100, 2048})
        for (int tokens : {1, 5, 17, 70, 256, 300}) {
          MoeSpec ms;
          ms.hidden = hidden;
          ms.shape.experts = experts;
          ms.shape.top_k = 8;
          ms.shape.ffn = 16;
          ms.shape.sigmoid_grouped = true;
          ms.shape.n_group = n_group;
          ms.shape.topk_group = topk_group;
          ms.dtype = DType::bf16;
          ms.pool = 4;
          ms.seed = 700 + static_cast<std::uint64_t>(tokens);
          const auto x = pattern_input(static_cast<std::size_t>(tokens) * hidden, 31);
          const ref::Routing r = ref::route(ms, x, tokens);
          auto router = b->moe_router(ms, x, tokens);
          router->run();
          const OpOutput o = router->output();
          const std::size_t n = static_cast<std::size_t>(tokens) * ms.shape.experts;
          REQUIRE(o.f.size() >= n);
          const std::vector<float> logits(o.f.begin(), o.f.begin() + static_cast<long>(n));
          const Check c = compare_close(logits, r.logits, 1e-4, "router logits");
          INFO(gate << " " << experts << "/" << n_group << " hidden " << hidden << " tokens "
                    << tokens << ": " << c.detail);
          CHECK(c.ok);
          CHECK(ref::valid_topk(ms, r.logits, o.i, tokens, 1e-4));
        }
  }
}

TEST_CASE("cuda attention with an fp8 e4m3 KV cache", "[probe][cuda][gpu]") {
  auto b = gpu_or_null();
  if (!b) {
    WARN("no GPU: fp8 KV attention not run");
    return;
  }
  for (int q : {1, 9})
    for (bool shared : {false, true}) {
      AttentionSpec a;
      a.batch = 2;
      a.queries = q;
      a.context = q == 1 ? 300 : 9;
      a.heads = 8;
      a.kv_heads = shared ? 1 : 2;
      a.qk_dim = shared ? 72 : 64;  // 72: not a multiple of 16, the scalar e4m3 load path
      a.v_dim = 64;
      a.shared_kv = shared;
      a.dtype = DType::bf16;
      a.kv_dtype = KvDType::fp8;
      a.seed = 91;
      a.scale = 0.125f;
      auto op = b->attention(a);
      op->run();
      op->sync();
      // GQA decode (q = 1, qk = v = 64) takes the tensor-core kernel, which rounds
      // the queries and probabilities to bf16: its limit is the 1e-2 of the
      // tensor-core tests; the other cases compute in fp32 on the dequantised cache.
      const bool tensor_cores = q == 1 && !shared;
      const Check c = compare_close(op->output().f, ref::attention(a),
                                    tensor_cores ? 1e-2 : error_limit(DType::fp32, OpKind::simple),
                                    "fp8 kv attention");
      INFO("Q" << q << " shared " << shared << ": " << c.detail);
      CHECK(c.ok);
    }
}

TEST_CASE("cuda fp8 e4m3 GEMM against the dequantised reference", "[probe][cuda][gpu]") {
  if (!gpu_or_null()) {
    WARN("no GPU: fp8 GEMM check not run");
    return;
  }
  for (int m : {1, 17, 64}) {
    const Fp8GemmCheck r = check_fp8_gemm(m, 96, 256);
    if (!r.ran) {
      WARN("fp8 GEMM skipped: " << r.reason);
      CHECK(!r.reason.empty());
      return;
    }
    INFO("m " << m << ": " << r.reason << " err " << r.max_err);
    CHECK(r.ok);
  }
  CHECK_THROWS_AS(check_fp8_gemm(4, 96, 250), moeplan::Error);
}

// Host-side rules behind the fp8 fix; no GPU needed.
TEST_CASE("fp8 scale pointers: one aligned slot each", "[probe][cuda]") {
  alignas(256) static char base[2 * kFp8ScaleSlotBytes] = {};
  const void* a = base + fp8_scale_slot_offset(0);
  const void* b = base + fp8_scale_slot_offset(1);
  CHECK(fp8_scale_slot_offset(1) - fp8_scale_slot_offset(0) == 256);
  CHECK(fp8_scale_pointers_ok(a, b));
  CHECK(fp8_scale_pointers_ok(a, a));  // the same pointer for both also ran on the H200
  // The layout of b4ea4a6 (B scale = A scale + 4 bytes): CUBLAS_STATUS_NOT_SUPPORTED there.
  CHECK_FALSE(fp8_scale_pointers_ok(a, base + 4));
  CHECK_FALSE(fp8_scale_pointers_ok(base + 8, b));
}

TEST_CASE("moeprobe peaks exits 0 when any row was measured", "[probe][cuda]") {
  PeakRow bf16{"bf16", 8192, 8192, 8192, 790, 0, "", true};
  PeakRow fp8{"fp8_e4m3", 8192, 8192, 8192, 0, 0, "failed: CUBLAS_STATUS_NOT_SUPPORTED", false};
  PeakRow copy{"copy", 0, 0, 0, 0, 3900, "", true};
  CHECK(peaks_exit_code({bf16, fp8, copy}) == 0);  // b4ea4a6 exited 1 here, printing nothing
  CHECK(peaks_exit_code({fp8}) == 2);
  CHECK(peaks_exit_code({}) == 2);
}

TEST_CASE("the MLA kernel is taken only where it applies", "[probe][cuda]") {
  // Host-side eligibility (no device needed: every case below is refused before
  // the device is asked): fp32 queries, f32 cache, separate K/V, several KV
  // heads, prefill, v not in {64, 128, 256, 512}, qk % 16 != 0, and the escape hatch.
  kc::AttentionArgs a;
  a.batch = 2;
  a.heads = 64;
  a.qk = 576;
  a.vd = 512;
  a.context = 100;
  a.shared_kv = true;
  a.kv = kc::Elem::bf16;
  a.q_bf16 = true;
  a.q = a.out = reinterpret_cast<float*>(16);
  a.k = a.q;
  auto refused = [](kc::AttentionArgs x) { return !kc::attention_uses_mla_kernel(x, 132); };
  using Change = void (*)(kc::AttentionArgs&);
  const std::pair<const char*, Change> cases[] = {
      {"fp32 queries", [](kc::AttentionArgs& x) { x.q_bf16 = false; }},
      {"f32 cache", [](kc::AttentionArgs& x) { x.kv = kc::Elem::f32; }},
      {"separate K/V",
       [](kc::AttentionArgs& x) {
         x.shared_kv = false;
         x.v = x.k;
       }},
      {"several KV heads", [](kc::AttentionArgs& x) { x.kv_heads = 2; }},
      {"prefill", [](kc::AttentionArgs& x) { x.queries = 7; }},
      {"v not in 64/128/256/512", [](kc::AttentionArgs& x) { x.vd = 96; }},
      {"qk % 16 != 0", [](kc::AttentionArgs& x) { x.qk = 520; }},
      {"escape hatch", [](kc::AttentionArgs& x) { x.force_generic = true; }},
      {"GQA at v = 512",
       [](kc::AttentionArgs& x) {
         x.shared_kv = false;
         x.v = x.k;
         x.kv_heads = 8;
       }},
      {"GQA with the SIMT hatch",
       [](kc::AttentionArgs& x) {
         x.shared_kv = false;
         x.v = x.k;
         x.kv_heads = 8;
         x.qk = x.vd = 128;
         x.simt_decode = true;
       }},
  };
  for (const auto& [name, change] : cases) {
    INFO(name);
    kc::AttentionArgs x = a;
    change(x);
    CHECK(refused(x));
  }
}

#else
TEST_CASE("cuda backend absent in this build", "[probe][cuda]") {
  bool listed = false;
  for (const auto& b : list_backends())
    if (b.name == "cuda") listed = !b.available;
  CHECK(listed);
  CHECK_THROWS_AS(make_backend("cuda"), BackendUnavailable);
}
#endif
