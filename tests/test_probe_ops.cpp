// Every CPU-backend op against its float64 reference on random shapes,
// including odd sizes, experts with zero tokens, MLA and grouped routing.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>

#include "moeprobe/backend.hpp"
#include "moeprobe/harness.hpp"
#include "moeprobe/measure.hpp"
#include "moeprobe/reference.hpp"
#include "moeprobe/shapes.hpp"

using namespace moeprobe;

namespace {
Backend& cpu() {
  static auto b = make_backend("cpu", 2);
  return *b;
}
std::vector<float> rnd(std::size_t n, std::uint64_t seed) {
  std::vector<float> v(n);
  Pattern p{seed, 1.0f};
  for (std::size_t i = 0; i < n; ++i) v[i] = p.value(i);
  return v;
}
}  // namespace

TEST_CASE("run_check passes on the synthetic models in both dtypes", "[probe][ops]") {
  for (const auto& id : synthetic_model_ids())
    for (DType d : {DType::fp32, DType::bf16}) {
      const CheckResult r =
          run_check(find_model(id, nullptr), cpu(), d, Distribution::parse("power_law:1.0"));
      for (const auto& row : r.rows) {
        INFO(id << " " << row.op << " " << row.shape << " tokens " << row.tokens << ": "
                << row.check.detail);
        CHECK(row.check.ok);
      }
    }
}

TEST_CASE("gemm matches the reference at odd shapes and tile edges", "[probe][ops]") {
  for (int m : {1, 3, 8, 9, 17}) {
    for (auto [n, k] : std::vector<std::pair<int, int>>{{1, 1}, {33, 7}, {257, 129}, {5, 300}}) {
      for (DType d : {DType::fp32, DType::bf16}) {
        GemmSpec s{m, n, k, d, 77};
        const auto x = rnd(static_cast<std::size_t>(m) * k, 5);
        auto op = cpu().gemm(s, x);
        op->run();
        const Check c =
            compare_close(op->output().f, ref::gemm(s, x), error_limit(d, OpKind::simple), "gemm");
        INFO(m << "x" << n << "x" << k << " " << dtype_name(d) << ": " << c.detail);
        CHECK(c.ok);
      }
    }
  }
}

TEST_CASE("MoE experts with zero tokens and a pool smaller than the experts", "[probe][ops]") {
  MoeSpec s;
  s.hidden = 37;
  s.shape.experts = 11;
  s.shape.top_k = 3;
  s.shape.ffn = 13;
  s.shape.shared_experts = 2;
  s.shape.shared_ffn = 5;
  s.pool = 4;
  s.seed = 91;
  s.dtype = DType::fp32;
  const int tokens = 2;  // 6 assignments over 11 experts: most get none
  const auto x = rnd(static_cast<std::size_t>(tokens) * s.hidden, 8);
  const auto r = ref::route(s, x, tokens);
  const auto p = ref::permute(s, r.ids, x, tokens);
  int zero = 0;
  for (int c : p.counts) zero += c == 0;
  CHECK(zero >= 5);
  auto op = cpu().moe_experts(s, p.x_perm, p.counts);
  op->run();
  CHECK(compare_close(op->output().f, ref::experts(s, p.x_perm, p.counts), 1e-4, "experts").ok);
  auto fused = cpu().moe_fused(s, x, tokens);
  fused->run();
  const auto o = fused->output();
  CHECK(o.i == r.ids);
  CHECK(compare_close(o.f, ref::moe_block(s, x, tokens, r.ids, r.w), 1e-4, "fused").ok);
  // Repeated runs give identical results (the timed loop relies on it).
  fused->run();
  CHECK(fused->output().f == o.f);
}

// A layer's expert selection may differ from the float64 reference by a near-tie
// flip: tolerated within routing_tie_tol (bf16: 3e-2, fp32: 1e-4), reported beyond.
TEST_CASE("near-tie expert selections: excess, tolerance by dtype", "[probe][ops]") {
  MoeSpec s;
  s.hidden = 8;
  s.shape.experts = 4;
  s.shape.top_k = 2;
  s.shape.ffn = 4;
  // Softmax routing selects on the logits: the reference's top-2 is {0, 1}.
  const std::vector<float> logits = {1.0f, 0.60f, 0.59f, 0.2f};
  CHECK(ref::topk_excess(s, logits, {0, 1}, 1) == Approx(0.59 - 0.60).margin(1e-6));
  CHECK(ref::topk_excess(s, logits, {1, 0}, 1) == Approx(0.59 - 0.60).margin(1e-6));
  // Expert 2 instead of 1: best unchosen 0.60 - worst chosen 0.59 = 0.01.
  CHECK(ref::topk_excess(s, logits, {0, 2}, 1) == Approx(0.01).margin(1e-6));
  CHECK(ref::valid_topk(s, logits, {0, 2}, 1, routing_tie_tol(DType::bf16, KvDType::same)));
  CHECK_FALSE(ref::valid_topk(s, logits, {0, 2}, 1, routing_tie_tol(DType::fp32, KvDType::same)));
  CHECK(routing_tie_tol(DType::fp32, KvDType::fp8) == routing_tie_tol(DType::bf16, KvDType::same));
  // A far swap (0.60 vs 0.2) is no tie at any precision; repeated ids are no top-k.
  CHECK_FALSE(ref::valid_topk(s, logits, {0, 3}, 1, routing_tie_tol(DType::bf16, KvDType::same)));
  CHECK(std::isinf(ref::topk_excess(s, logits, {0, 0}, 1)));
  CHECK(std::isinf(ref::topk_excess(s, logits, {0, 4}, 1)));
}

TEST_CASE("attention decode and causal prefill, GQA and shared-KV (MLA) forms", "[probe][ops]") {
  for (bool shared : {false, true})
    for (auto [b, q, l] : std::vector<std::tuple<int, int, long long>>{
             {1, 1, 1}, {3, 1, 130}, {1, 21, 21}, {2, 4, 67}}) {
      AttentionSpec s;
      s.batch = b;
      s.queries = q;
      s.context = l;
      s.heads = 6;
      s.kv_heads = shared ? 1 : 2;
      s.qk_dim = shared ? 24 : 16;
      s.v_dim = 16;
      s.shared_kv = shared;
      s.seed = 33;
      s.scale = 0.25f;
      for (DType d : {DType::fp32, DType::bf16}) {
        s.dtype = d;
        auto op = cpu().attention(s);
        op->run();
        const Check c = compare_close(op->output().f, ref::attention(s),
                                      error_limit(d, OpKind::simple), "attention");
        INFO("B" << b << " Q" << q << " L" << l << " shared " << shared << ": " << c.detail);
        CHECK(c.ok);
      }
    }
}

TEST_CASE("attention with an fp8 e4m3 KV cache", "[probe][ops]") {
  // Decode and causal prefill, GQA and shared KV; against the float64
  // reference that reads the same e4m3 values (the backend limit for the
  // dtype), and against the unquantised fp32 cache: the fp8 error itself.
  double worst = 0;
  for (int b : {1, 2})
    for (int q : {1, 5})
      for (bool shared : {false, true}) {
        AttentionSpec s;
        s.batch = b;
        s.queries = q;
        s.context = q == 1 ? 70 : 5 + q;
        s.heads = 6;
        s.kv_heads = shared ? 1 : 2;
        s.qk_dim = shared ? 24 : 16;
        s.v_dim = 16;
        s.shared_kv = shared;
        s.seed = 44;
        s.scale = 0.25f;
        for (DType d : {DType::fp32, DType::bf16}) {
          s.dtype = d;
          s.kv_dtype = KvDType::fp8;
          auto op = cpu().attention(s);
          op->run();
          const auto got = op->output().f;
          const Check c = compare_close(got, ref::attention(s), error_limit(d, OpKind::simple),
                                        "attention fp8 kv");
          INFO("B" << b << " Q" << q << " shared " << shared << ": " << c.detail);
          CHECK(c.ok);
          AttentionSpec exact = s;
          exact.dtype = DType::fp32;
          exact.kv_dtype = KvDType::same;
          const Check q8 =
              compare_close(got, ref::attention(exact), kFp8KvAttentionLimit, "fp8 kv vs fp32 kv");
          INFO(q8.detail);
          CHECK(q8.ok);
          worst = std::max(worst, q8.max_err);
        }
      }
  // The quantisation is real (not a no-op) and within the documented limit.
  CHECK(worst > 1e-3);
}

TEST_CASE("run_check passes with an fp8 KV cache", "[probe][ops]") {
  for (const auto& id : synthetic_model_ids()) {
    const CheckResult r = run_check(find_model(id, nullptr), cpu(), DType::bf16,
                                    Distribution::parse("balanced"), {}, KvDType::fp8);
    for (const auto& row : r.rows) {
      INFO(id << " " << row.op << " " << row.shape << ": " << row.check.detail);
      CHECK(row.check.ok);
    }
    CHECK(r.ok());
  }
  CHECK(parse_kv_dtype("fp8") == KvDType::fp8);
  CHECK(parse_kv_dtype("same") == KvDType::same);
  CHECK_THROWS_AS(parse_kv_dtype("fp4"), moeplan::Error);
}

TEST_CASE("verification catches a wrong result", "[probe][ops]") {
  std::vector<float> ref = {1, 2, 3}, got = {1, 2, 3.01f};
  const Check c = compare_close(got, ref, 1e-4, "x");
  CHECK_FALSE(c.ok);
  CHECK(c.detail.find("x: normalised max error") == 0);
  CHECK_FALSE(compare_exact({1, 2}, {1, 3}, "ids").ok);
  CHECK_FALSE(compare_close({std::nanf("")}, {1.0f}, 1.0, "nan").ok);
}

TEST_CASE("unknown and unbuilt backends", "[probe][ops]") {
#ifdef MOEPROBE_HAVE_CUDA
  // Built with CUDA: on a machine with a GPU the backend starts; without one it says why.
  try {
    (void)make_backend("cuda");
  } catch (const BackendUnavailable& e) {
    CHECK_THAT(e.what(), Catch::Contains("is unavailable") && Catch::Contains("GPU"));
  }
#else
  CHECK_THROWS_AS(make_backend("cuda"), BackendUnavailable);
  CHECK_THROWS_WITH(make_backend("cuda"), Catch::Contains("not built"));
#endif
  CHECK_THROWS_AS(make_backend("cdua"), moeplan::UnknownIdError);
  CHECK_THROWS_WITH(Distribution::parse("power_law:x"),
                    Catch::Contains("ALPHA must be a positive number"));
  CHECK_THROWS_WITH(parse_dtype("fp9"), Catch::Contains("unknown --dtype 'fp9'"));
}

TEST_CASE("power-law distribution skews the routing", "[probe][ops]") {
  MoeSpec s;
  s.hidden = 64;
  s.shape.experts = 32;
  s.shape.top_k = 2;
  s.shape.ffn = 8;
  s.pool = 32;
  s.seed = 3;
  const int tokens = 64;
  const auto x = rnd(static_cast<std::size_t>(tokens) * s.hidden, 21);
  auto touched = [&](const MoeSpec& spec) {
    const auto p = ref::permute(spec, ref::route(spec, x, tokens).ids, x, tokens);
    int t = 0;
    for (int c : p.counts) t += c > 0;
    return t;
  };
  const int balanced = touched(s);
  s.bias = Distribution::parse("power_law:2").bias(32, 4242);
  CHECK(touched(s) < balanced);
}
