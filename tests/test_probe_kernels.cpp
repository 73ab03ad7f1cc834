// Shared index math (kernels/include/moekernels): top-k order and ties,
// grouped routing, permutation round trip, tiling, online softmax, bf16.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <numeric>
#include <vector>

#include "moekernels/index_math.hpp"
#include "moeprobe/reference.hpp"

namespace mk = moekernels;

TEST_CASE("top-k picks the largest, best first, ties to the lower index", "[probe][kernels]") {
  const std::vector<float> s = {0.5f, 2.0f, 2.0f, -1.0f, 2.0f, 1.5f};
  std::vector<int> idx(3);
  REQUIRE(mk::topk_select(s.data(), 6, 3, idx.data()) == 3);
  CHECK(idx == std::vector<int>{1, 2, 4});
  std::vector<int> two(2);
  mk::topk_select(s.data(), 6, 2, two.data());
  CHECK(two == std::vector<int>{1, 2});
  // All equal: the first k indices.
  const std::vector<float> flat(10, 0.25f);
  std::vector<int> f(4);
  mk::topk_select(flat.data(), 10, 4, f.data());
  CHECK(f == std::vector<int>{0, 1, 2, 3});
  // Masked: fewer candidates than k.
  const unsigned char mask[6] = {0, 0, 1, 0, 0, 1};
  std::vector<int> m(3, -1);
  CHECK(mk::topk_select(s.data(), 6, 3, m.data(), mask) == 2);
  CHECK(m[0] == 2);
  CHECK(m[1] == 5);
}

TEST_CASE("top-k agrees with a sort on random scores", "[probe][kernels]") {
  for (int trial = 0; trial < 50; ++trial) {
    const int n = 7 + trial * 3, k = 1 + trial % 8;
    std::vector<float> s(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i)  // quantised so ties occur
      s[static_cast<std::size_t>(i)] =
          std::round(
              mk::pattern_value(static_cast<std::uint64_t>(trial), static_cast<std::uint64_t>(i)) *
              4) /
          4;
    std::vector<int> order(static_cast<std::size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
      return s[static_cast<std::size_t>(a)] > s[static_cast<std::size_t>(b)];
    });
    std::vector<int> idx(static_cast<std::size_t>(k));
    mk::topk_select(s.data(), n, k, idx.data());
    CHECK(idx == std::vector<int>(order.begin(), order.begin() + k));
  }
}

namespace {
// Host model of the CUDA router's top-k (route_warp_kernel): k rounds, each lane
// proposes lane_best over its strided share, proposals reduced by the xor
// butterfly the warp shuffles perform, the winner marked taken.
std::vector<int> topk_by_lanes(const std::vector<float>& s, int k, int lanes,
                               const unsigned char* eligible) {
  const int n = static_cast<int>(s.size());
  std::vector<unsigned char> taken(static_cast<std::size_t>(n), 0);
  std::vector<int> out;
  for (int j = 0; j < k; ++j) {
    std::vector<int> bi(static_cast<std::size_t>(lanes));
    std::vector<float> bv(static_cast<std::size_t>(lanes));
    for (int l = 0; l < lanes; ++l) {
      bi[l] = mk::lane_best(s.data(), n, l, lanes, eligible, taken.data());
      bv[l] = bi[l] >= 0 ? s[static_cast<std::size_t>(bi[l])] : 0.0f;
    }
    for (int o = lanes / 2; o > 0; o >>= 1) {
      const auto pi = bi;
      const auto pv = bv;
      for (int l = 0; l < lanes; ++l)
        if (mk::candidate_before(pv[l ^ o], pi[l ^ o], pv[l], pi[l])) {
          bv[l] = pv[l ^ o];
          bi[l] = pi[l ^ o];
        }
    }
    for (int l = 1; l < lanes; ++l) REQUIRE(bi[l] == bi[0]);  // every lane agrees
    if (bi[0] < 0) break;
    taken[static_cast<std::size_t>(bi[0])] = 1;
    out.push_back(bi[0]);
  }
  return out;
}
}  // namespace

TEST_CASE("warp top-k rounds give topk_select's list, ties included", "[probe][kernels]") {
  for (int trial = 0; trial < 60; ++trial) {
    const int n = trial < 30 ? 128 : 256 + trial, k = 1 + trial % 9;
    std::vector<float> s(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i)  // coarse values: many ties
      s[static_cast<std::size_t>(i)] =
          std::round(mk::pattern_value(static_cast<std::uint64_t>(900 + trial),
                                       static_cast<std::uint64_t>(i)) *
                     8) /
          8;
    std::vector<unsigned char> mask(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) mask[static_cast<std::size_t>(i)] = (i / 16) % 3 != 1;
    for (const unsigned char* m : {static_cast<const unsigned char*>(nullptr),
                                   static_cast<const unsigned char*>(mask.data())}) {
      std::vector<int> want(static_cast<std::size_t>(k));
      want.resize(static_cast<std::size_t>(mk::topk_select(s.data(), n, k, want.data(), m)));
      CHECK(topk_by_lanes(s, k, 32, m) == want);
      CHECK(topk_by_lanes(s, k, 4, m) == want);
    }
  }
  // Fewer eligible entries than k: the rounds stop where topk_select stops.
  const std::vector<float> s = {1, 2, 3, 4};
  const unsigned char only_one[4] = {0, 0, 1, 0};
  CHECK(topk_by_lanes(s, 3, 32, only_one) == std::vector<int>{2});
  CHECK(mk::candidate_before(0.0f, 3, 0.0f, -1));
  CHECK_FALSE(mk::candidate_before(9.0f, -1, 0.0f, 2));
}

TEST_CASE("group score is the sum of a group's two best", "[probe][kernels]") {
  const std::vector<float> c = {0.1f, 0.7f, 0.3f, 0.7f};
  CHECK(mk::group_score(c.data(), 4) == 0.7f + 0.7f);
  CHECK(mk::group_score(c.data(), 1) == 0.1f);
  CHECK(mk::group_score(c.data() + 2, 2) == 0.7f + 0.3f);  // added best first
}

TEST_CASE("grouped sigmoid routing keeps only the best groups", "[probe][kernels]") {
  // 8 experts in 4 groups of 2; group scores = sum of both members.
  const std::vector<float> logits = {5, 5, -5, -5, 4, 0, -5, 6};
  std::vector<int> idx(2);
  std::vector<float> w(2), scratch(static_cast<std::size_t>(mk::routing_scratch_floats(8, 4)));
  mk::route_token(logits.data(), nullptr, 8, 2, true, 4, 1, true, idx.data(), w.data(),
                  scratch.data());
  // Group 0 (5,5) wins over group 3 (-5,6) and group 2 (4,0); top-2 from group 0 only.
  CHECK(idx == std::vector<int>{0, 1});
  CHECK(w[0] + w[1] == Approx(1.0));
  // With a bias the selection moves but the weights come from the unbiased scores.
  const std::vector<float> bias = {0, 0, 0, 0, 0, 0, 0, 3};
  mk::route_token(logits.data(), bias.data(), 8, 2, true, 4, 2, false, idx.data(), w.data(),
                  scratch.data());
  CHECK(idx[0] == 7);
  CHECK(w[0] == Approx(1.0 / (1.0 + std::exp(-6.0))));
}

TEST_CASE("softmax routing weights are renormalised probabilities", "[probe][kernels]") {
  const std::vector<float> logits = {1, 3, 2, 0};
  std::vector<int> idx(2);
  std::vector<float> w(2), scratch(static_cast<std::size_t>(mk::routing_scratch_floats(4, 0)));
  mk::route_token(logits.data(), nullptr, 4, 2, false, 0, 0, true, idx.data(), w.data(),
                  scratch.data());
  CHECK(idx == std::vector<int>{1, 2});
  CHECK(w[0] == Approx(std::exp(1.0) / (std::exp(1.0) + 1.0)));
}

TEST_CASE("permutation: histogram, offsets, stable scatter, round trip", "[probe][kernels]") {
  const int e = 9, k = 3, tokens = 13;  // experts 2 and 7 get no tokens
  std::vector<int> ids;
  for (int t = 0; t < tokens; ++t)
    for (int j = 0; j < k; ++j) {
      int v = (t * 5 + j * 3) % e;
      if (v == 2 || v == 7) v = (v + 1) % e;
      ids.push_back(v);
    }
  const long long a = static_cast<long long>(ids.size());
  std::vector<int> counts(e), offsets(e + 1), cursor(e), perm(static_cast<std::size_t>(a)),
      inv(static_cast<std::size_t>(a));
  mk::expert_histogram(ids.data(), a, e, counts.data());
  mk::exclusive_scan(counts.data(), e, offsets.data());
  mk::stable_scatter(ids.data(), a, e, offsets.data(), cursor.data(), perm.data(), inv.data());
  CHECK(counts[2] == 0);
  CHECK(counts[7] == 0);
  CHECK(offsets[e] == a);
  for (long long i = 0; i < a; ++i) {
    CHECK(perm[static_cast<std::size_t>(inv[static_cast<std::size_t>(i)])] == i);  // inverse
    const int pos = inv[static_cast<std::size_t>(i)], ex = ids[static_cast<std::size_t>(i)];
    CHECK(pos >= offsets[ex]);
    CHECK(pos < offsets[ex + 1]);
  }
  for (long long p = 1; p < a; ++p)  // expert-major, stable within an expert
    if (ids[static_cast<std::size_t>(perm[static_cast<std::size_t>(p)])] ==
        ids[static_cast<std::size_t>(perm[static_cast<std::size_t>(p - 1)])])
      CHECK(perm[static_cast<std::size_t>(p)] > perm[static_cast<std::size_t>(p - 1)]);

  // The reference permutation agrees, and unpermute(permute(x)) gives each token's row back.
  moeprobe::MoeSpec s;
  s.hidden = 5;
  s.shape.experts = e;
  s.shape.top_k = k;
  std::vector<float> x(static_cast<std::size_t>(tokens) * 5);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i);
  const auto p = moeprobe::ref::permute(s, ids, x, tokens);
  CHECK(p.perm == perm);
  CHECK(p.inv == inv);
  const auto back = moeprobe::ref::unpermute(p, 5);
  for (int t = 0; t < tokens; ++t)
    for (int j = 0; j < k; ++j)
      for (int c = 0; c < 5; ++c)
        CHECK(back[static_cast<std::size_t>((t * k + j) * 5 + c)] ==
              x[static_cast<std::size_t>(t * 5 + c)]);
}

TEST_CASE("block_range covers every item exactly once", "[probe][kernels]") {
  for (long long n : {0LL, 1LL, 7LL, 64LL, 1001LL})
    for (long long parts : {1LL, 2LL, 3LL, 8LL, 13LL}) {
      long long next = 0;
      for (long long p = 0; p < parts; ++p) {
        const auto r = mk::block_range(n, parts, p);
        CHECK(r.begin == next);
        CHECK(r.end - r.begin <= mk::ceil_div(n, parts));
        next = r.end;
      }
      CHECK(next == n);
    }
}

TEST_CASE("online softmax (per score and per block) equals the two-pass form", "[probe][kernels]") {
  std::vector<float> s, v;
  for (int i = 0; i < 100; ++i) {
    s.push_back(mk::pattern_value(3, static_cast<std::uint64_t>(i)) * 8);
    v.push_back(mk::pattern_value(4, static_cast<std::uint64_t>(i)));
  }
  double mx = -1e30, den = 0, num = 0;
  for (float x : s) mx = std::max(mx, static_cast<double>(x));
  for (std::size_t i = 0; i < s.size(); ++i) {
    den += std::exp(s[i] - mx);
    num += std::exp(s[i] - mx) * v[i];
  }
  auto st = mk::online_softmax_init();
  float acc = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto step = mk::online_softmax_update(st, s[i]);
    acc = acc * step.scale_old + step.weight_new * v[i];
  }
  CHECK(acc / st.l == Approx(num / den).epsilon(1e-5));
  auto bt = mk::online_softmax_init();
  float bacc = 0;
  for (std::size_t b0 = 0; b0 < s.size(); b0 += 16) {
    const std::size_t b1 = std::min(s.size(), b0 + 16);
    const float bm =
        *std::max_element(s.begin() + static_cast<long>(b0), s.begin() + static_cast<long>(b1));
    bacc *= mk::online_softmax_raise(bt, bm);
    for (std::size_t i = b0; i < b1; ++i) {
      const float p = std::exp(s[i] - bt.m);
      bt.l += p;
      bacc += p * v[i];
    }
  }
  CHECK(bacc / bt.l == Approx(num / den).epsilon(1e-5));
}

TEST_CASE("bf16 rounding is round-to-nearest-even", "[probe][kernels]") {
  CHECK(mk::bf16_bits_to_float(mk::float_to_bf16_bits(1.0f)) == 1.0f);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (1.0).
  CHECK(mk::bf16_bits_to_float(mk::float_to_bf16_bits(1.0f + 1.0f / 256)) == 1.0f);
  CHECK(mk::bf16_bits_to_float(mk::float_to_bf16_bits(1.0f + 3.0f / 256)) == 1.0f + 4.0f / 256);
  CHECK(std::isnan(mk::bf16_bits_to_float(mk::float_to_bf16_bits(std::nanf("")))));
  for (int i = 0; i < 1000; ++i) {
    const float x = mk::pattern_value(9, static_cast<std::uint64_t>(i));
    CHECK(std::fabs(mk::bf16_bits_to_float(mk::float_to_bf16_bits(x)) - x) <= std::fabs(x) / 256);
    CHECK(x >= -1.0f);
    CHECK(x < 1.0f);
  }
}

TEST_CASE("fp8 e4m3: every code round-trips, known values, RNE, saturation", "[probe][kernels]") {
  for (int c = 0; c < 256; ++c) {
    const auto code = static_cast<std::uint8_t>(c);
    const float v = mk::e4m3_bits_to_float(code);
    if ((c & 0x7F) == 0x7F) {
      CHECK(std::isnan(v));
      CHECK(mk::float_to_e4m3_bits(v) == code);  // NaN keeps its sign
      continue;
    }
    INFO("code " << c << " value " << v);
    CHECK(std::isfinite(v));
    CHECK(mk::float_to_e4m3_bits(v) == code);
    CHECK(mk::e4m3_round(v, 1.0f) == v);
  }
  CHECK(mk::e4m3_bits_to_float(0x38) == 1.0f);
  CHECK(mk::e4m3_bits_to_float(0x3C) == 1.5f);
  CHECK(mk::e4m3_bits_to_float(0xB8) == -1.0f);
  CHECK(mk::e4m3_bits_to_float(0x7E) == 448.0f);
  CHECK(mk::e4m3_bits_to_float(0x08) == std::ldexp(1.0f, -6));  // smallest normal
  CHECK(mk::e4m3_bits_to_float(0x01) == std::ldexp(1.0f, -9));  // smallest subnormal
  CHECK(mk::e4m3_bits_to_float(0x07) == 7.0f * std::ldexp(1.0f, -9));
  // Ties to even: 1.0625 is halfway between 1.0 (0x38) and 1.125 (0x39).
  CHECK(mk::float_to_e4m3_bits(1.0625f) == 0x38);
  CHECK(mk::float_to_e4m3_bits(1.1875f) == 0x3A);
  CHECK(mk::float_to_e4m3_bits(std::nextafter(1.0625f, 2.0f)) == 0x39);
  CHECK(mk::float_to_e4m3_bits(std::ldexp(1.0f, -10)) == 0x00);         // tie -> 0
  CHECK(mk::float_to_e4m3_bits(3.0f * std::ldexp(1.0f, -10)) == 0x02);  // tie 1|2 -> 2
  CHECK(mk::float_to_e4m3_bits(-std::ldexp(1.0f, -12)) == 0x80);        // -0
  // Saturation to ±448 (no infinities in e4m3).
  CHECK(mk::float_to_e4m3_bits(448.0f) == 0x7E);
  CHECK(mk::float_to_e4m3_bits(470.0f) == 0x7E);
  CHECK(mk::float_to_e4m3_bits(1e30f) == 0x7E);
  CHECK(mk::float_to_e4m3_bits(-INFINITY) == 0xFE);
  // Against a brute-force nearest search (ties to the even code) on random values.
  std::vector<float> finite;
  for (int c = 0; c < 0x7F; ++c)
    finite.push_back(mk::e4m3_bits_to_float(static_cast<std::uint8_t>(c)));
  for (int i = 0; i < 20000; ++i) {
    const float x =
        std::ldexp(mk::pattern_value(77, static_cast<std::uint64_t>(i)),
                   static_cast<int>(mk::mix64(static_cast<std::uint64_t>(i)) % 24) - 12);
    const float ax = std::fabs(x);
    int best = 0;
    for (int c = 1; c < 0x7F; ++c) {
      const double dc = std::fabs(finite[static_cast<std::size_t>(c)] - static_cast<double>(ax));
      const double db = std::fabs(finite[static_cast<std::size_t>(best)] - static_cast<double>(ax));
      if (dc < db || (dc == db && (c & 1) == 0)) best = c;
    }
    const int want = best | (std::signbit(x) ? 0x80 : 0);
    INFO("x = " << x);
    CHECK(static_cast<int>(mk::float_to_e4m3_bits(x)) == want);
  }
  // Scaled form: code of v / s, value code * s; exact for a power-of-two scale.
  const float s = 1.0f / 32.0f;
  CHECK(mk::e4m3_quantize(1.0f / 32.0f, s) == 0x38);
  CHECK(mk::e4m3_dequantize(0x38, s) == 1.0f / 32.0f);
  CHECK(mk::e4m3_round(100.0f, s) == 14.0f);  // saturates at 448 * s
}

TEST_CASE("split-KV decode: every key of a split is visited exactly once", "[probe][kernels]") {
  // (warps, keys per warp) as the decode kernel uses them: qk 128 bf16 -> 16 lanes
  // per key -> 2 keys per warp; qk 64 -> 4; qk 256 -> 1.
  for (int kpw : {1, 2, 4}) {
    const int warps = 4, step = warps * kpw;
    for (long long kb : {0LL, 192LL}) {
      for (long long len : {1LL, 7LL, 64LL, 333LL}) {
        const long long ke = kb + len, steps = mk::ceil_div(len, step);
        std::vector<int> seen(static_cast<std::size_t>(len), 0);
        for (long long s = 0; s < steps; ++s)
          for (int w = 0; w < warps; ++w)
            for (int sub = 0; sub < kpw; ++sub) {
              const long long j = mk::decode_key(kb, s, warps, kpw, w, sub);
              if (j < ke) ++seen[static_cast<std::size_t>(j - kb)];
            }
        CHECK(std::all_of(seen.begin(), seen.end(), [](int c) { return c == 1; }));
      }
    }
  }
}

TEST_CASE("split-KV decode: splits cover the context, no empty split", "[probe][kernels]") {
  // GQA 32/4 x 128 at batch 1, context 4096 on 132 SMs: base = 1 x 4 x 1 blocks,
  // 4 waves want ceil(528 / 4) = 132 splits, capped by 4096 / (8 keys x 4 steps) = 128:
  // 128 splits of 32 keys.
  const mk::KeySplits a = mk::decode_splits(4, 4096, 132, 4, 8, 4, 256);
  CHECK(a.splits == 128);
  CHECK(a.chunk == 32);
  // Batch 64 x 4 KV heads = 256 blocks already: ceil(528 / 256) = 3 splits of 1368 keys.
  const mk::KeySplits b = mk::decode_splits(256, 4096, 132, 4, 8, 4, 256);
  CHECK(b.splits == 3);
  CHECK(b.chunk == 1368);
  for (long long ctx : {1LL, 5LL, 77LL, 1024LL, 4097LL, 131072LL})
    for (long long base : {1LL, 4LL, 64LL, 2048LL})
      for (int sms : {0, 16, 132}) {
        const mk::KeySplits k = mk::decode_splits(base, ctx, sms, 4, 8, 4, 256);
        INFO("ctx " << ctx << " base " << base << " sms " << sms);
        CHECK(k.splits >= 1);
        CHECK(k.splits <= 256);
        CHECK(k.chunk % 8 == 0);
        CHECK(k.chunk * k.splits >= ctx);
        CHECK(k.chunk * (k.splits - 1) < ctx);  // the last split is not empty
      }
  CHECK(mk::pow2_at_least(1) == 1);
  CHECK(mk::pow2_at_least(6) == 8);
  CHECK(mk::pow2_at_least(8) == 8);
}

TEST_CASE("merging partial softmax states equals one pass", "[probe][kernels]") {
  std::vector<float> s(37), v(37);
  for (int i = 0; i < 37; ++i) {
    s[static_cast<std::size_t>(i)] = 4 * mk::pattern_value(77, static_cast<std::uint64_t>(i));
    v[static_cast<std::size_t>(i)] = mk::pattern_value(78, static_cast<std::uint64_t>(i));
  }
  double mx = -1e30, den = 0, num = 0;
  for (float x : s) mx = std::max(mx, static_cast<double>(x));
  for (int i = 0; i < 37; ++i) {
    const double e = std::exp(s[static_cast<std::size_t>(i)] - mx);
    den += e;
    num += e * v[static_cast<std::size_t>(i)];
  }
  // Three partial states over [0, 10), [10, 30), [30, 37) plus an empty one, merged in order.
  struct St {
    float m, l, acc;
  };
  auto partial = [&](int b, int e) {
    mk::OnlineSoftmax st = mk::online_softmax_init();
    float acc = 0;
    for (int i = b; i < e; ++i) {
      const mk::OnlineStep u = mk::online_softmax_update(st, s[static_cast<std::size_t>(i)]);
      acc = acc * u.scale_old + u.weight_new * v[static_cast<std::size_t>(i)];
    }
    return St{st.m, st.l, acc};
  };
  St tot = partial(0, 0);  // empty
  for (const St p : {partial(0, 10), partial(10, 30), partial(30, 30), partial(30, 37)}) {
    const mk::SoftmaxMerge f = mk::softmax_merge(tot.m, p.m);
    tot = St{f.m, tot.l * f.f1 + p.l * f.f2, tot.acc * f.f1 + p.acc * f.f2};
  }
  CHECK(tot.m == Approx(mx));
  CHECK(tot.acc / tot.l == Approx(num / den).epsilon(1e-5));
}

TEST_CASE("grouped GEMV rows and weight slots", "[probe][kernels]") {
  const std::vector<int> counts = {2, 0, 3, 1};
  std::vector<int> offsets(5);
  mk::exclusive_scan(counts.data(), 4, offsets.data());
  const mk::Range r2 = mk::grouped_rows(offsets.data(), counts.data(), 2);
  CHECK(r2.begin == 2);
  CHECK(r2.end == 5);
  const mk::Range r1 = mk::grouped_rows(offsets.data(), counts.data(), 1);
  CHECK(r1.begin == r1.end);  // an expert without rows: an empty range
  long long covered = 0;
  for (int e = 0; e < 4; ++e) {
    const mk::Range r = mk::grouped_rows(offsets.data(), counts.data(), e);
    CHECK(r.begin == covered);  // consecutive, in expert order
    covered = r.end;
  }
  CHECK(covered == 6);
  // Slot of expert e with `pool` materialised experts: the probe's MoeSpec::slot rule.
  CHECK(mk::expert_slot(0, 5) == 0);
  CHECK(mk::expert_slot(7, 5) == 2);
  CHECK(mk::expert_slot(255, 256) == 255);
}
