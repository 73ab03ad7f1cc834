// Shared index math (kernels/include/moekernels): top-k order and ties,
// grouped routing, permutation round trip, tiling, online softmax, bf16.
#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <numeric>
#include <utility>
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

TEST_CASE("warp group scores (top2 push, xor merge) equal group_score bit for bit",
          "[probe][kernels]") {
  // The CUDA router's grouped path: 32 lanes fold their strided shares of a group
  // with top2_push and merge over the xor butterfly; every lane must end with the
  // pair group_score's insertion finds, and the sum must have the same bits.
  // Group sizes 1, 2, 31, 32, 33 and 256 (glm-5.2: n_group 1), coarse values (ties).
  for (int per : {1, 2, 31, 32, 33, 256})
    for (int trial = 0; trial < 20; ++trial) {
      std::vector<float> c(static_cast<std::size_t>(per));
      for (int i = 0; i < per; ++i)
        c[static_cast<std::size_t>(i)] =
            std::round(mk::pattern_value(static_cast<std::uint64_t>(700 + trial),
                                         static_cast<std::uint64_t>(i)) *
                       4) /
            4;
      std::vector<mk::Top2> lane(32, mk::top2_empty());
      for (int l = 0; l < 32; ++l)
        for (int i = l; i < per; i += 32)
          lane[static_cast<std::size_t>(l)] =
              mk::top2_push(lane[static_cast<std::size_t>(l)], c[static_cast<std::size_t>(i)], i);
      for (int o = 16; o > 0; o >>= 1) {
        const std::vector<mk::Top2> before = lane;
        for (int l = 0; l < 32; ++l)
          lane[static_cast<std::size_t>(l)] = mk::top2_merge(
              before[static_cast<std::size_t>(l)], before[static_cast<std::size_t>(l ^ o)]);
      }
      int want[2] = {-1, -1};
      mk::topk_select(c.data(), per, per >= 2 ? 2 : 1, want);
      INFO("per " << per << " trial " << trial);
      for (const mk::Top2& t : lane) {
        CHECK(t.i1 == want[0]);
        CHECK(t.i2 == want[1]);
        const float got = mk::top2_sum(t), ref = mk::group_score(c.data(), per);
        CHECK(std::memcmp(&got, &ref, sizeof got) == 0);
      }
    }
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

// ---- absorbed-MLA decode on tensor cores: fragment and ldmatrix index math ----
namespace {
// What ldmatrix.x4 hands thread `lane` in register m, half e, given the row
// addresses `addr(source lane)` (PTX ISA: row lane/4 of matrix m, columns
// 2·(lane%4)+e; .trans: row 2·(lane%4)+e, column lane/4).
template <class Addr>
mk::RowCol ldmatrix_gets(Addr addr, int lane, int m, int e, bool trans) {
  if (!trans) {
    const mk::RowCol r = addr(8 * m + lane / 4);
    return mk::RowCol{r.row, r.col + 2 * (lane % 4) + e};
  }
  const mk::RowCol r = addr(8 * m + 2 * (lane % 4) + e);
  return mk::RowCol{r.row, r.col + lane / 4};
}
}  // namespace

TEST_CASE("mma m16n8k16 fragments cover their tiles exactly once", "[probe][kernels][mla]") {
  std::vector<int> c(16 * 8, 0), a(16 * 16, 0), b(16 * 8, 0);
  for (int lane = 0; lane < 32; ++lane) {
    for (int i = 0; i < 4; ++i)
      ++c[static_cast<std::size_t>(mk::mma_c_row(lane, i) * 8 + mk::mma_c_col(lane, i))];
    for (int r = 0; r < 4; ++r)
      for (int e = 0; e < 2; ++e)
        ++a[static_cast<std::size_t>(mk::mma_a_row(lane, r) * 16 + mk::mma_a_col(lane, r, e))];
    for (int r = 0; r < 2; ++r)
      for (int e = 0; e < 2; ++e)
        ++b[static_cast<std::size_t>(mk::mma_b_k(lane, r, e) * 8 + mk::mma_b_n(lane))];
  }
  auto once = [](const std::vector<int>& v) {
    return std::all_of(v.begin(), v.end(), [](int x) { return x == 1; });
  };
  CHECK(once(c));
  CHECK(once(a));
  CHECK(once(b));
  // PTX ISA table spot checks: lane 5 (g 1, t 1) holds C (1, 2), (1, 3), (9, 2), (9, 3).
  CHECK(mk::mma_c_row(5, 3) == 9);
  CHECK(mk::mma_c_col(5, 3) == 3);
  CHECK(mk::mma_a_col(5, 2, 1) == 11);  // a2 of lane 5: row 1, columns 10, 11
  CHECK(mk::mma_b_k(5, 1, 0) == 10);    // b1 of lane 5: k 10, 11 at n 1
}

TEST_CASE("MLA ldmatrix addresses deliver the mma operands", "[probe][kernels][mla]") {
  for (int lane = 0; lane < 32; ++lane)
    for (int m = 0; m < 4; ++m)
      for (int e = 0; e < 2; ++e) {
        INFO("lane " << lane << " reg " << m << " half " << e);
        // Q (A operand) at k-step k0 = 48: register m is a_m.
        const mk::RowCol q =
            ldmatrix_gets([](int l) { return mk::mla_ldm_q(l, 48); }, lane, m, e, false);
        CHECK(q.row == mk::mma_a_row(lane, m));
        CHECK(q.col == 48 + mk::mma_a_col(lane, m, e));
        // K (B operands, keys j0 = 16 .. 31, dims k0 = 32): register m is b_(m%2) of n-tile m/2,
        // B[k][n] = K[key n][dim k].
        const mk::RowCol k =
            ldmatrix_gets([](int l) { return mk::mla_ldm_k(l, 16, 32); }, lane, m, e, false);
        CHECK(k.row == 16 + 8 * (m / 2) + mk::mma_b_n(lane));
        CHECK(k.col == 32 + mk::mma_b_k(lane, m % 2, e));
        // V (B operands, .trans, keys k0 = 16, dims n0 = 256): B[k][n] = V[key k][dim n].
        const mk::RowCol v =
            ldmatrix_gets([](int l) { return mk::mla_ldm_v(l, 16, 256); }, lane, m, e, true);
        CHECK(v.row == 16 + mk::mma_b_k(lane, m % 2, e));
        CHECK(v.col == 256 + 8 * (m / 2) + mk::mma_b_n(lane));
      }
}

TEST_CASE("MLA probabilities reuse the S accumulators as A fragments", "[probe][kernels][mla]") {
  // A register r of key step kk must hold P at (row mma_a_row, key 16kk + mma_a_col): the
  // same (row, key) as element mla_p_elem(r, e) of S n-tile mla_p_ntile(kk, r).
  for (int lane = 0; lane < 32; ++lane)
    for (int kk = 0; kk < 2; ++kk)
      for (int r = 0; r < 4; ++r)
        for (int e = 0; e < 2; ++e) {
          const int n = mk::mla_p_ntile(kk, r), i = mk::mla_p_elem(r, e);
          CHECK(mk::mma_c_row(lane, i) == mk::mma_a_row(lane, r));
          CHECK(8 * n + mk::mma_c_col(lane, i) == 16 * kk + mk::mma_a_col(lane, r, e));
        }
}

TEST_CASE("MLA head groups cover every head once", "[probe][kernels][mla]") {
  // DeepSeek-V3 / GLM-5.2 128 heads: 8 tiles of 16, at most 4 per block -> 2 groups of 4.
  CHECK(mk::mla_heads(128, 4).groups == 2);
  CHECK(mk::mla_heads(128, 4).tiles == 4);
  // 64 heads: one group, the latent tile is read once for all heads.
  CHECK(mk::mla_heads(64, 4).groups == 1);
  // 80 heads = 5 tiles: 2 groups of 3 (one padded tile), not 4 + 1.
  CHECK(mk::mla_heads(80, 4).groups == 2);
  CHECK(mk::mla_heads(80, 4).tiles == 3);
  for (int heads : {1, 4, 16, 17, 40, 64, 100, 128, 257})
    for (int most : {1, 2, 3, 4}) {
      const mk::MlaHeads h = mk::mla_heads(heads, most);
      INFO(heads << " heads, at most " << most << " tiles");
      CHECK(h.tiles >= 1);
      CHECK(h.tiles <= most);
      std::vector<int> seen(static_cast<std::size_t>(heads), 0);
      for (int g = 0; g < h.groups; ++g)
        for (int t = 0; t < h.tiles; ++t)
          for (int r = 0; r < 16; ++r) {
            const int head = mk::mla_head(g, h.tiles, t, r);
            if (head < heads) ++seen[static_cast<std::size_t>(head)];
          }
      CHECK(std::all_of(seen.begin(), seen.end(), [](int x) { return x == 1; }));
      CHECK(mk::mla_head(h.groups - 1, h.tiles, h.tiles - 1, 15) >= heads - 1);
      CHECK((h.groups - 1) * h.tiles * 16 < heads);  // no group without a real head
    }
}

TEST_CASE("MLA shared memory fits Hopper's 227 KiB at 64 heads", "[probe][kernels][mla]") {
  // 64 heads, qk 576, 3 stages of 32 positions, rows padded by 8 (584 elements):
  // Q 64·584·2 = 74,752 B; bf16 KV 3·32·584·2 = 112,128 B; S exchange 8·32·16·4 = 16,384 B.
  CHECK(mk::mla_smem_bytes(576, 4, false, 3, 32, 8) == 74752 + 112128 + 16384);
  // e4m3: raw 3·32·576 = 55,296 B plus one bf16 tile 32·584·2 = 37,376 B.
  CHECK(mk::mla_smem_bytes(576, 4, true, 3, 32, 8) == 74752 + 55296 + 37376 + 16384);
  const long long hopper_optin = 227 * 1024;  // cudaDevAttrMaxSharedMemoryPerBlockOptin, sm_90
  CHECK(mk::mla_smem_bytes(576, 4, false, 3, 32, 8) <= hopper_optin);
  CHECK(mk::mla_smem_bytes(576, 4, true, 3, 32, 8) <= hopper_optin);
  // sm_80's 163 KiB: 64 heads do not fit, 32 heads (2 tiles) do; mla_plan then halves the group.
  CHECK(mk::mla_smem_bytes(576, 4, false, 3, 32, 8) > 163 * 1024);
  CHECK(mk::mla_smem_bytes(576, 2, false, 3, 32, 8) <= 163 * 1024);
}

TEST_CASE("MLA splits: one wave at batch 64, many at batch 1, cover the context",
          "[probe][kernels][mla]") {
  // Batch 64, context 4096 (128 tiles of 32), 132 SMs: s = 1 costs 1 wave x 128 tiles;
  // s = 2 costs 1 wave (128 blocks <= 132) x (64 + 2) + 2·64·2/132 ≈ 67 -> 2 splits of 2048.
  const mk::KeySplits a = mk::mla_splits(64, 4096, 132, 32, 256, 2);
  CHECK(a.splits == 2);
  CHECK(a.chunk == 2048);
  // Batch 1: one tile per split (128 blocks, 1 wave, 1 + 2 tiles each) beats 64 splits (2 + 2).
  const mk::KeySplits b = mk::mla_splits(1, 4096, 132, 32, 256, 2);
  CHECK(b.splits == 128);
  CHECK(b.chunk == 32);
  // No SM count (CPU planning): one split.
  CHECK(mk::mla_splits(8, 4096, 0, 32, 256, 2).splits == 1);
  for (long long ctx : {1LL, 31LL, 33LL, 77LL, 300LL, 4096LL, 131072LL})
    for (long long base : {1LL, 2LL, 64LL, 256LL})
      for (int sms : {0, 16, 132}) {
        const mk::KeySplits k = mk::mla_splits(base, ctx, sms, 32, 256, 2);
        INFO("ctx " << ctx << " base " << base << " sms " << sms);
        CHECK(k.splits >= 1);
        CHECK(k.splits <= 256);
        CHECK(k.chunk % 32 == 0);
        CHECK(k.chunk * k.splits >= ctx);
        CHECK(k.chunk * (k.splits - 1) < ctx);
      }
}

// ---- the MLA kernel's whole data flow, lane by lane, on the host ----------------
// A transliteration of mla_decode_kernel (one thread per lane, warps in turn):
// the same index functions feed an ldmatrix model (ldmatrix_gets) and an mma
// model (fragments scattered into the 16x16 / 16x8 tiles by the PTX maps), the S
// halves are added, the online softmax runs per (lane, row) in the log2 domain
// with bf16 P, and splits merge with softmax_merge. If any map or the
// composition were off (an n-tile numbered differently in S and in the mask, V
// columns of the wrong half, P registers out of order), the result would not
// match softmax(q·Kᵀ)·V.
namespace {
using Reg2 = std::array<float, 2>;
using Frag = std::array<std::array<Reg2, 4>, 32>;  // per lane, 4 registers of 2 bf16
using Acc = std::array<std::array<float, 4>, 32>;  // per lane, one 16x8 fp32 C fragment
float bfr(float x) {
  return mk::bf16_bits_to_float(mk::float_to_bf16_bits(x));
}
template <class Addr>
Frag ldm(const std::vector<float>& tile, int ld, Addr addr, bool trans) {
  Frag f{};
  for (int lane = 0; lane < 32; ++lane)
    for (int m = 0; m < 4; ++m)
      for (int e = 0; e < 2; ++e) {
        const mk::RowCol rc = ldmatrix_gets(addr, lane, m, e, trans);
        f[static_cast<std::size_t>(lane)][static_cast<std::size_t>(m)]
         [static_cast<std::size_t>(e)] = tile[static_cast<std::size_t>(rc.row * ld + rc.col)];
      }
  return f;
}
void mma(Acc& c, const Frag& a, const Frag& b, int r0, int r1) {
  float A[16][16] = {}, B[16][8] = {};
  for (int lane = 0; lane < 32; ++lane) {
    const auto& la = a[static_cast<std::size_t>(lane)];
    const auto& lb = b[static_cast<std::size_t>(lane)];
    for (int r = 0; r < 4; ++r)
      for (int e = 0; e < 2; ++e)
        A[mk::mma_a_row(lane, r)][mk::mma_a_col(lane, r, e)] =
            la[static_cast<std::size_t>(r)][static_cast<std::size_t>(e)];
    for (int r = 0; r < 2; ++r)
      for (int e = 0; e < 2; ++e)
        B[mk::mma_b_k(lane, r, e)][mk::mma_b_n(lane)] =
            lb[static_cast<std::size_t>(r == 0 ? r0 : r1)][static_cast<std::size_t>(e)];
  }
  for (int lane = 0; lane < 32; ++lane)
    for (int i = 0; i < 4; ++i) {
      float s = 0.0f;
      for (int k = 0; k < 16; ++k) s += A[mk::mma_c_row(lane, i)][k] * B[k][mk::mma_c_col(lane, i)];
      c[static_cast<std::size_t>(lane)][static_cast<std::size_t>(i)] += s;
    }
}

struct MlaCase {
  int batch, heads, qk, vd;
  long long context;
  int sms;
  int kv_heads = 1;    // GQA: KV heads (each serving heads / kv_heads query heads)
  bool shared = true;  // absorbed MLA (V = the K row's first vd elements); else GQA
};
// out [B, H, vd] as the kernel + merge compute it; q [B, H, qk]; MLA: cache
// [B, L, qk]; GQA: cache = K [B, L, KVH, qk] followed by V [B, L, KVH, vd].
std::vector<float> simulate_mla(const MlaCase& c, const std::vector<float>& q,
                                const std::vector<float>& cache, float scale) {
  const int ld = c.qk + 8, nt = c.vd / 16, ldv = c.shared ? ld : c.vd + 8;
  const int group = c.heads / c.kv_heads;
  const std::size_t v_at = static_cast<std::size_t>(c.batch) * c.context * c.kv_heads * c.qk;
  const mk::MlaHeads hg = mk::mla_heads(group, 4);
  const int cost = mk::tc_decode_split_cost(std::min(group, 16 * hg.tiles), c.qk, 32,
                                            2LL * (c.qk + (c.shared ? 0 : c.vd)), 2);
  const mk::KeySplits ks = mk::mla_splits(static_cast<long long>(c.batch) * c.kv_heads * hg.groups,
                                          c.context, c.sms, 32, 256, cost);
  const float l2e = 1.4426950408889634f;
  const std::size_t rows_all = static_cast<std::size_t>(c.batch) * c.heads;
  std::vector<float> pacc(static_cast<std::size_t>(ks.splits) * rows_all * c.vd, 0.0f);
  std::vector<float> pm(static_cast<std::size_t>(ks.splits) * rows_all, -3.0e38f),
      pl(static_cast<std::size_t>(ks.splits) * rows_all, 0.0f);
  for (int split = 0; split < ks.splits; ++split)
    for (int b = 0; b < c.batch; ++b)
      for (int blk = 0; blk < c.kv_heads * hg.groups; ++blk) {
        const int kvh = blk / hg.groups, grp = blk % hg.groups, hbase = kvh * group;
        const long long kb = split * ks.chunk, ke = std::min(kb + ks.chunk, c.context);
        std::vector<float> qs(static_cast<std::size_t>(hg.tiles * 16 * ld), 0.0f);
        for (int r = 0; r < hg.tiles * 16; ++r)
          for (int d = 0; d < c.qk; ++d) {
            const int gh = mk::mla_head(grp, hg.tiles, 0, r);
            if (gh < group)
              qs[static_cast<std::size_t>(r * ld + d)] = bfr(
                  q[(static_cast<std::size_t>(b) * c.heads + hbase + gh) * c.qk + d] * scale * l2e);
          }
        const int warps = 2 * hg.tiles;
        std::vector<std::vector<Acc>> acc(static_cast<std::size_t>(warps),
                                          std::vector<Acc>(static_cast<std::size_t>(nt), Acc{}));
        std::vector<std::array<float, 32>> m0(warps), m1(warps), l0(warps), l1(warps);
        for (int w = 0; w < warps; ++w) {
          m0[w].fill(-3.0e38f);
          m1[w].fill(-3.0e38f);
          l0[w].fill(0.0f);
          l1[w].fill(0.0f);
        }
        for (long long j0 = kb; j0 < ke; j0 += 32) {
          std::vector<float> kt(static_cast<std::size_t>(32 * ld), 0.0f);
          std::vector<float> vt(c.shared ? 0 : static_cast<std::size_t>(32 * ldv), 0.0f);
          for (int key = 0; key < 32 && j0 + key < ke; ++key) {
            const std::size_t row =
                (static_cast<std::size_t>(b) * c.context + j0 + key) * c.kv_heads + kvh;
            for (int d = 0; d < c.qk; ++d)
              kt[static_cast<std::size_t>(key * ld + d)] = cache[row * c.qk + d];
            if (!c.shared)
              for (int d = 0; d < c.vd; ++d)
                vt[static_cast<std::size_t>(key * ldv + d)] = cache[v_at + row * c.vd + d];
          }
          const std::vector<float>& vtile = c.shared ? kt : vt;
          std::vector<std::array<Acc, 4>> sc(static_cast<std::size_t>(warps));
          for (int w = 0; w < warps; ++w) {
            const int wt = w / 2, half = w % 2;
            std::vector<float> qw(qs.begin() + wt * 16 * ld, qs.begin() + (wt + 1) * 16 * ld);
            for (auto& s : sc[w]) s = Acc{};
            const mk::Range kr = mk::block_range(c.qk / 16, 2, half);
            for (long long kk = kr.begin; kk < kr.end; ++kk) {
              const int k0 = static_cast<int>(kk) * 16;
              const Frag qa = ldm(
                  qw, ld, [&](int l) { return mk::mla_ldm_q(l, k0); }, false);
              for (int jp = 0; jp < 2; ++jp) {
                const Frag kf = ldm(
                    kt, ld, [&](int l) { return mk::mla_ldm_k(l, jp * 16, k0); }, false);
                mma(sc[w][static_cast<std::size_t>(2 * jp)], qa, kf, 0, 1);
                mma(sc[w][static_cast<std::size_t>(2 * jp + 1)], qa, kf, 2, 3);
              }
            }
          }
          for (int w = 0; w < warps; ++w) {
            const int half = w % 2;
            Frag pa[2] = {};
            for (int lane = 0; lane < 32; ++lane) {
              float s[4][4];
              float mx0 = -3.0e38f, mx1 = -3.0e38f;
              for (int n = 0; n < 4; ++n)
                for (int i = 0; i < 4; ++i) {
                  float v = sc[w][n][lane][i] + sc[w ^ 1][n][lane][i];
                  if (j0 + n * 8 + mk::mma_c_col(lane, i) >= ke) v = -3.0e38f;
                  s[n][i] = v;
                  (i < 2 ? mx0 : mx1) = std::max(i < 2 ? mx0 : mx1, v);
                }
              // The quad's maximum (the kernel's two shuffles).
              for (int o = 0; o < 4; ++o) {
                const int peer = (lane & ~3) | o;
                for (int n = 0; n < 4; ++n)
                  for (int i = 0; i < 4; ++i) {
                    float v = sc[w][n][peer][i] + sc[w ^ 1][n][peer][i];
                    if (j0 + n * 8 + mk::mma_c_col(peer, i) >= ke) v = -3.0e38f;
                    (i < 2 ? mx0 : mx1) = std::max(i < 2 ? mx0 : mx1, v);
                  }
              }
              const float n0 = std::max(m0[w][lane], mx0), n1 = std::max(m1[w][lane], mx1);
              const float c0 = std::exp2(m0[w][lane] - n0), c1 = std::exp2(m1[w][lane] - n1);
              m0[w][lane] = n0;
              m1[w][lane] = n1;
              l0[w][lane] *= c0;
              l1[w][lane] *= c1;
              for (int n = 0; n < nt; ++n) {
                auto& a4 = acc[w][n][lane];
                a4[0] *= c0;
                a4[1] *= c0;
                a4[2] *= c1;
                a4[3] *= c1;
              }
              for (int kk = 0; kk < 2; ++kk)
                for (int r = 0; r < 4; ++r) {
                  const int n = mk::mla_p_ntile(kk, r);
                  const float mr = r % 2 ? n1 : n0;
                  for (int e = 0; e < 2; ++e) {
                    const float p = bfr(std::exp2(s[n][mk::mla_p_elem(r, e)] - mr));
                    pa[kk][lane][r][e] = p;
                    (r % 2 ? l1[w][lane] : l0[w][lane]) += p;
                  }
                }
            }
            const int nbase = half * nt * 8;
            for (int kk = 0; kk < 2; ++kk)
              for (int np = 0; np < nt / 2; ++np) {
                const Frag vf = ldm(
                    vtile, ldv, [&](int l) { return mk::mla_ldm_v(l, kk * 16, nbase + np * 16); },
                    true);
                mma(acc[w][static_cast<std::size_t>(2 * np)], pa[kk], vf, 0, 1);
                mma(acc[w][static_cast<std::size_t>(2 * np + 1)], pa[kk], vf, 2, 3);
              }
          }
        }
        for (int w = 0; w < warps; ++w) {
          const int wt = w / 2, half = w % 2;
          for (int lane = 0; lane < 32; ++lane) {
            float L0 = 0, L1 = 0;
            for (int o = 0; o < 4; ++o) {
              L0 += l0[w][(lane & ~3) | o];
              L1 += l1[w][(lane & ~3) | o];
            }
            for (int n = 0; n < nt; ++n)
              for (int i = 0; i < 4; ++i) {
                const int gh = mk::mla_head(grp, hg.tiles, wt, mk::mma_c_row(lane, i));
                if (gh >= group) continue;
                const int head = hbase + gh;
                const int dim = half * nt * 8 + n * 8 + mk::mma_c_col(lane, i);
                const std::size_t prow = static_cast<std::size_t>(split) * rows_all +
                                         static_cast<std::size_t>(b) * c.heads + head;
                pacc[prow * c.vd + dim] = acc[w][n][lane][i];
                pm[prow] = (i < 2 ? m0[w][lane] : m1[w][lane]) * 0.6931471805599453f;
                pl[prow] = i < 2 ? L0 : L1;
              }
          }
        }
      }
  std::vector<float> out(rows_all * c.vd);
  for (std::size_t row = 0; row < rows_all; ++row)
    for (int d = 0; d < c.vd; ++d) {
      float m = pm[row], l = pl[row], a = pacc[row * c.vd + d];
      for (int s = 1; s < ks.splits; ++s) {
        const std::size_t pr = static_cast<std::size_t>(s) * rows_all + row;
        const mk::SoftmaxMerge f = mk::softmax_merge(m, pm[pr]);
        l = l * f.f1 + pl[pr] * f.f2;
        a = a * f.f1 + pacc[pr * c.vd + d] * f.f2;
        m = f.m;
      }
      out[row * c.vd + d] = a / l;
    }
  return out;
}
}  // namespace

namespace {
// The normalised max error of `got` [B, H, vd] against float64 attention over the same
// cache: MLA (c.shared) reads K and V from one latent row [B, L, qk]; GQA reads K rows
// [B, L, KVH, qk] and, after them, V rows [B, L, KVH, vd].
double simulated_error(const MlaCase& c, const std::vector<float>& q,
                       const std::vector<float>& cache, const std::vector<float>& got,
                       float scale) {
  const int group = c.heads / c.kv_heads;
  const std::size_t rows = static_cast<std::size_t>(c.batch) * c.context * c.kv_heads;
  double worst = 0, top = 0;
  for (int b = 0; b < c.batch; ++b)
    for (int h = 0; h < c.heads; ++h) {
      auto row = [&](long long j) {
        return (static_cast<std::size_t>(b) * c.context + static_cast<std::size_t>(j)) *
                   c.kv_heads +
               static_cast<std::size_t>(h / group);
      };
      auto v_at = [&](long long j, int v) {
        return c.shared ? cache[row(j) * c.qk + v] : cache[rows * c.qk + row(j) * c.vd + v];
      };
      std::vector<double> s(static_cast<std::size_t>(c.context));
      double mx = -1e300;
      for (long long j = 0; j < c.context; ++j) {
        double d = 0;
        for (int k = 0; k < c.qk; ++k)
          d += static_cast<double>(q[(static_cast<std::size_t>(b) * c.heads + h) * c.qk + k]) *
               cache[row(j) * c.qk + k];
        s[static_cast<std::size_t>(j)] = d * scale;
        mx = std::max(mx, d * scale);
      }
      double den = 0;
      for (double& x : s) den += (x = std::exp(x - mx));
      for (int v = 0; v < c.vd; ++v) {
        double num = 0;
        for (long long j = 0; j < c.context; ++j)
          num += s[static_cast<std::size_t>(j)] * v_at(j, v);
        const double want = num / den;
        const double have = got[(static_cast<std::size_t>(b) * c.heads + h) * c.vd + v];
        worst = std::max(worst, std::fabs(have - want));
        top = std::max(top, std::fabs(want));
      }
    }
  return worst / top;
}
}  // namespace

TEST_CASE("the MLA kernel's data flow, simulated lane by lane, is attention",
          "[probe][kernels][mla]") {
  // 20 heads (two tiles, 12 padded rows), qk 80 = 5 k-steps (3 + 2 over the two warps),
  // v 64; context 70 = 2 full tiles + 6 (a partial, zero-filled tile) in one split, and
  // 300 in 10 merged splits; 132 heads: 3 groups of 3 tiles.
  // Batch 2 x 1 group over 300 positions on 132 SMs: 10 splits of one tile (the last
  // split 12 positions), merged; with sms 0 one split of 10 tiles.
  CHECK(mk::mla_splits(2, 300, 132, 32, 256, 2).splits == 10);
  for (const MlaCase c : {MlaCase{2, 20, 80, 64, 70, 0}, MlaCase{2, 20, 80, 64, 300, 132},
                          MlaCase{1, 36, 96, 64, 33, 132}, MlaCase{1, 132, 80, 64, 40, 8}}) {
    const std::size_t nq = static_cast<std::size_t>(c.batch) * c.heads * c.qk;
    const std::size_t nc = static_cast<std::size_t>(c.batch) * c.context * c.qk;
    std::vector<float> q(nq), cache(nc);
    for (std::size_t i = 0; i < nq; ++i) q[i] = mk::pattern_value(11, i);
    for (std::size_t i = 0; i < nc; ++i) cache[i] = bfr(mk::pattern_value(12, i));
    const float scale = 1.0f / std::sqrt(static_cast<float>(c.qk));
    const std::vector<float> got = simulate_mla(c, q, cache, scale);
    const double err = simulated_error(c, q, cache, got, scale);
    INFO("B" << c.batch << " H" << c.heads << " qk" << c.qk << " v" << c.vd << " L" << c.context
             << " sms " << c.sms << ": normalised error " << err);
    CHECK(err < 1e-2);  // bf16 q and P, as on the GPU (the GPU test's limit)
  }
}

TEST_CASE("the tensor-core decode kernel's GQA data flow, simulated lane by lane, is attention",
          "[probe][kernels][mla]") {
  // Separate K and V rows per KV head: qwen3-30b-a3b's 32 query heads over 4 KV heads
  // (group 8: one head tile, 8 padded rows) at qk = v = 128 over 300 positions on 132
  // SMs (merged splits) and in one split; group 20 (two tiles), qk 80 != v 64, over 70.
  for (const MlaCase c :
       {MlaCase{2, 32, 128, 128, 300, 132, 4, false}, MlaCase{1, 32, 128, 128, 70, 0, 4, false},
        MlaCase{2, 40, 80, 64, 70, 8, 2, false}, MlaCase{1, 3, 64, 64, 45, 132, 3, false}}) {
    const std::size_t nq = static_cast<std::size_t>(c.batch) * c.heads * c.qk;
    const std::size_t rows = static_cast<std::size_t>(c.batch) * c.context * c.kv_heads;
    std::vector<float> q(nq), cache(rows * (c.qk + c.vd));
    for (std::size_t i = 0; i < nq; ++i) q[i] = mk::pattern_value(21, i);
    for (std::size_t i = 0; i < cache.size(); ++i) cache[i] = bfr(mk::pattern_value(22, i));
    const float scale = 1.0f / std::sqrt(static_cast<float>(c.qk));
    const std::vector<float> got = simulate_mla(c, q, cache, scale);
    const double err = simulated_error(c, q, cache, got, scale);
    INFO("B" << c.batch << " H" << c.heads << "/" << c.kv_heads << " qk" << c.qk << " v" << c.vd
             << " L" << c.context << " sms " << c.sms << ": normalised error " << err);
    CHECK(err < 1e-2);
  }
}

TEST_CASE("tensor-core decode: GQA shared memory and the cost of a split's queries",
          "[probe][kernels][mla]") {
  // GQA qk = v = 128, one head tile, 3 stages of 32, rows padded by 8 (136):
  // Q 16·136·2 = 4,352; K and V 3·32·136·2 = 26,112 each; S exchange 2·32·16·4 = 4,096.
  CHECK(mk::tc_decode_smem_bytes(128, 128, false, 1, false, 3, 32, 8) == 4352 + 2 * 26112 + 4096);
  // e4m3: per tensor one bf16 tile 32·136·2 = 8,704 plus raw 3·32·128 = 12,288.
  CHECK(mk::tc_decode_smem_bytes(128, 128, false, 1, true, 3, 32, 8) ==
        4352 + 2 * (8704 + 12288) + 4096);
  // MLA is the shared case (and mla_smem_bytes its alias).
  CHECK(mk::tc_decode_smem_bytes(576, 512, true, 4, false, 3, 32, 8) ==
        mk::mla_smem_bytes(576, 4, false, 3, 32, 8));
  // MLA 64 heads x 576 fp32 queries = 147,456 B against a bf16 latent tile of
  // 32 x 576 x 2 = 36,864 B: 4 tiles, plus the 2 of the partials.
  CHECK(mk::tc_decode_split_cost(64, 576, 32, 576 * 2, 2) == 6);
  // GQA group 8: 8 x 128 x 4 = 4,096 B against 32 x 256 x 2 = 16,384 B: one more tile.
  CHECK(mk::tc_decode_split_cost(8, 128, 32, 256 * 2, 2) == 3);
  // With the queries counted, MLA at batch 1 over 4096 positions on 132 SMs no
  // longer takes one tile per split (128 splits, each loading 147 KB of Q for 37 KB
  // of cache): cost(s) = ceil(s/132)·(ceil(128/s) + 6)·132 + 6s is least at 64.
  CHECK(mk::mla_splits(1, 4096, 132, 32, 256, 6).splits == 64);
  CHECK(mk::mla_splits(1, 4096, 132, 32, 256, 2).splits == 128);
}

// ---- grouped expert GEMM on tensor cores (kernels/src/grouped_gemm.cu) ---------
TEST_CASE("grouped GEMM tile scheduler finds every expert M-tile once", "[probe][kernels][ggemm]") {
  // Counts with empty experts at the start, middle and end, exact multiples of bm and
  // one-row experts: the flat tile list must visit each (expert, M-tile) exactly once.
  const std::vector<int> counts = {0, 1, 64, 65, 0, 0, 130, 3, 0};
  const int experts = static_cast<int>(counts.size()), bm = 64;
  std::vector<int> off(counts.size() + 1);
  mk::grouped_tile_offsets(counts.data(), experts, bm, off.data());
  // Hand count: 0 + 1 + 1 + 2 + 0 + 0 + 3 + 1 + 0 = 8 M-tiles.
  CHECK(off[static_cast<std::size_t>(experts)] == 8);
  const long long rows = std::accumulate(counts.begin(), counts.end(), 0LL);  // 263
  const long long bound = mk::grouped_tile_bound(rows, experts, bm);
  CHECK(bound == 5 + 9);  // ceil(263 / 64) + min(9, 263)
  std::vector<int> seen(static_cast<std::size_t>(experts) * 3, 0);
  for (long long t = 0; t < bound; ++t) {
    const mk::GroupedTile g = mk::grouped_tile_find(off.data(), experts, t);
    if (t >= 8) {
      CHECK(g.expert == -1);
      continue;
    }
    REQUIRE(g.expert >= 0);
    REQUIRE(g.mtile < mk::ceil_div(counts[static_cast<std::size_t>(g.expert)], bm));
    ++seen[static_cast<std::size_t>(g.expert * 3 + g.mtile)];
  }
  for (int e = 0; e < experts; ++e)
    for (int m = 0; m < 3; ++m)
      CHECK(seen[static_cast<std::size_t>(e * 3 + m)] ==
            (m < mk::ceil_div(counts[static_cast<std::size_t>(e)], bm) ? 1 : 0));
  CHECK(mk::grouped_tile_find(off.data(), experts, -1).expert == -1);
}

TEST_CASE("grouped GEMM tile bound holds for any split of the rows", "[probe][kernels][ggemm]") {
  // Property: for pseudo-random counts the device-computed total never exceeds the
  // host bound the grid is sized with (a larger total would drop tiles silently).
  for (std::uint64_t seed = 1; seed <= 200; ++seed) {
    const int experts = 1 + static_cast<int>(mk::mix64(seed) % 40);
    std::vector<int> counts(static_cast<std::size_t>(experts));
    long long rows = 0;
    for (int e = 0; e < experts; ++e) {
      const std::uint64_t h = mk::mix64(seed * 131 + static_cast<std::uint64_t>(e));
      counts[static_cast<std::size_t>(e)] = h % 3 == 0 ? 0 : static_cast<int>(h % 200);
      rows += counts[static_cast<std::size_t>(e)];
    }
    std::vector<int> off(counts.size() + 1);
    for (int bm : {16, 64, 128}) {
      mk::grouped_tile_offsets(counts.data(), experts, bm, off.data());
      INFO("seed " << seed << " bm " << bm);
      CHECK(off[static_cast<std::size_t>(experts)] <= mk::grouped_tile_bound(rows, experts, bm));
    }
  }
}

namespace {
// Lane-by-lane host simulation of grouped_gemm_kernel: the same grid, tile
// scheduler, zero-fill rules, ldmatrix addresses (through ldmatrix_gets), mma
// fragment maps and output map as the kernel, with float arithmetic.
std::vector<float> simulate_grouped_gemm(const std::vector<float>& x, const std::vector<float>& w,
                                         long long slot_stride, int pool, int n_out, int k,
                                         const std::vector<int>& counts,
                                         const std::vector<int>& offsets,
                                         std::vector<int>& writes) {
  const int experts = static_cast<int>(counts.size());
  const int bm = mk::kGgBm, bn = mk::kGgBn, bk = mk::kGgBk;
  const long long rows = std::accumulate(counts.begin(), counts.end(), 0LL);
  std::vector<int> toff(counts.size() + 1);
  mk::grouped_tile_offsets(counts.data(), experts, bm, toff.data());
  std::vector<float> out(static_cast<std::size_t>(rows * n_out), std::nanf(""));
  writes.assign(out.size(), 0);
  const long long mtiles = mk::grouped_tile_bound(rows, experts, bm);
  for (long long by = 0; by < mtiles; ++by)
    for (int bx = 0; bx < mk::ceil_div(n_out, bn); ++bx) {
      const mk::GroupedTile gt = mk::grouped_tile_find(toff.data(), experts, by);
      if (gt.expert < 0) continue;
      const int e = gt.expert;
      const long long row0 = offsets[static_cast<std::size_t>(e)] + 1LL * gt.mtile * bm;
      const int valid = std::min(bm, counts[static_cast<std::size_t>(e)] - gt.mtile * bm);
      const int n0 = bx * bn;
      const long long wslot = mk::expert_slot(e, pool) * slot_stride;
      float acc[4][32][2][4][4] = {};  // [warp][lane][mi][nj][i]
      std::vector<float> xs(static_cast<std::size_t>(bm * bk)),
          ws(static_cast<std::size_t>(bn * bk));
      for (int kb = 0; kb < k; kb += bk) {
        for (int r = 0; r < bm; ++r)
          for (int c = 0; c < bk; ++c) {
            const bool kin = kb + c < k;  // whole 16-byte chunks: k % 8 == 0
            xs[static_cast<std::size_t>(r * bk + c)] =
                kin && r < valid ? x[static_cast<std::size_t>((row0 + r) * k + kb + c)] : 0.0f;
            ws[static_cast<std::size_t>(r * bk + c)] =
                kin && n0 + r < n_out
                    ? w[static_cast<std::size_t>(wslot + 1LL * (n0 + r) * k + kb + c)]
                    : 0.0f;
          }
        for (int warp = 0; warp < 4; ++warp) {
          const int wm = 32 * (warp / 2), wn = 32 * (warp % 2);
          for (int k0 = 0; k0 < bk; k0 += 16)
            for (int mi = 0; mi < 2; ++mi)
              for (int np = 0; np < 2; ++np)
                for (int half = 0; half < 2; ++half) {  // n8 tile nj = 2np + half
                  float a[16][16] = {}, b[16][8] = {};
                  for (int lane = 0; lane < 32; ++lane) {
                    for (int m = 0; m < 4; ++m)
                      for (int h = 0; h < 2; ++h) {
                        const mk::RowCol q = ldmatrix_gets(
                            [&](int l) {
                              const mk::RowCol p = mk::mla_ldm_q(l, k0);
                              return mk::RowCol{wm + 16 * mi + p.row, p.col};
                            },
                            lane, m, h, false);
                        a[mk::mma_a_row(lane, m)][mk::mma_a_col(lane, m, h)] =
                            xs[static_cast<std::size_t>(q.row * bk + q.col)];
                      }
                    for (int r = 0; r < 2; ++r)  // register 2·half + r of the B ldmatrix
                      for (int h = 0; h < 2; ++h) {
                        const mk::RowCol p =
                            ldmatrix_gets([&](int l) { return mk::mla_ldm_k(l, wn + 16 * np, k0); },
                                          lane, 2 * half + r, h, false);
                        b[mk::mma_b_k(lane, r, h)][mk::mma_b_n(lane)] =
                            ws[static_cast<std::size_t>(p.row * bk + p.col)];
                      }
                  }
                  for (int lane = 0; lane < 32; ++lane)
                    for (int i = 0; i < 4; ++i) {
                      float s = 0.0f;
                      for (int kk = 0; kk < 16; ++kk)
                        s += a[mk::mma_c_row(lane, i)][kk] * b[kk][mk::mma_c_col(lane, i)];
                      acc[warp][lane][mi][2 * np + half][i] += s;
                    }
                }
        }
      }
      for (int warp = 0; warp < 4; ++warp)
        for (int lane = 0; lane < 32; ++lane)
          for (int mi = 0; mi < 2; ++mi)
            for (int nj = 0; nj < 4; ++nj)
              for (int i = 0; i < 4; ++i) {
                const mk::RowCol o = mk::gg_out(warp, lane, mi, nj, i);
                if (o.row >= valid || n0 + o.col >= n_out) continue;
                const auto idx = static_cast<std::size_t>((row0 + o.row) * n_out + n0 + o.col);
                out[idx] = acc[warp][lane][mi][nj][i];
                ++writes[idx];
              }
    }
  return out;
}
}  // namespace

TEST_CASE("grouped GEMM kernel, simulated lane by lane, matches a plain reference",
          "[probe][kernels][ggemm]") {
  // Experts with 70 (two M-tiles), 0, 3, 64 (exactly one) and 129 rows (three), a pool of 3
  // weight slots (expert 3 reuses slot 0); N = 72 (a partial N tile) with K = 40 (one partial
  // K step of 64), and N = 136 with K = 200 (three full K steps and a partial one).
  const std::vector<int> counts = {70, 0, 3, 64, 129};
  std::vector<int> offsets(counts.size() + 1);
  mk::exclusive_scan(counts.data(), static_cast<int>(counts.size()), offsets.data());
  const int pool = 3;
  for (const auto& [n_out, k] : {std::pair{72, 40}, std::pair{136, 200}}) {
    const long long rows = offsets.back(), slot = 1LL * n_out * k;
    std::vector<float> x(static_cast<std::size_t>(rows * k)),
        w(static_cast<std::size_t>(pool * slot));
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = mk::pattern_value(11, i);
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = mk::pattern_value(12, i);
    std::vector<int> writes;
    const std::vector<float> got =
        simulate_grouped_gemm(x, w, slot, pool, n_out, k, counts, offsets, writes);
    for (std::size_t e = 0; e < counts.size(); ++e)
      for (long long r = offsets[e]; r < offsets[e + 1]; ++r)
        for (int n = 0; n < n_out; ++n) {
          double ref = 0.0;
          const long long ws = mk::expert_slot(static_cast<int>(e), pool) * slot;
          for (int c = 0; c < k; ++c)
            ref += static_cast<double>(x[static_cast<std::size_t>(r * k + c)]) *
                   w[static_cast<std::size_t>(ws + 1LL * n * k + c)];
          const auto idx = static_cast<std::size_t>(r * n_out + n);
          INFO("N " << n_out << " K " << k << " expert " << e << " row " << r << " column " << n);
          REQUIRE(writes[idx] == 1);  // every output written exactly once
          // At most 200 products of terms in [-1, 1) summed in float (|sum| < ~20, 16-term
          // partial sums): the rounding error stays far below 1e-4.
          REQUIRE(std::abs(got[idx] - ref) < 1e-4);
        }
  }
}
