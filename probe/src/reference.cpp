// Reference implementations: plain loops, float64 accumulation. Weight element
// values come from ref::weight, the single definition of what a backend stores.
#include "moeprobe/reference.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "moekernels/index_math.hpp"

namespace moeprobe::ref {

namespace mk = moekernels;
using Vec = std::vector<double>;

float weight(const Pattern& p, DType d, long long i) {
  return round_to(d, p.value(static_cast<std::uint64_t>(i)));
}

namespace {

// y[r] = sum_c W[offset + r*k + c] * x[c] for r < n.
void matvec(const Pattern& p, DType d, long long offset, int n, int k, const double* x, double* y) {
  for (int r = 0; r < n; ++r) {
    double acc = 0;
    const long long base = offset + static_cast<long long>(r) * k;
    for (int c = 0; c < k; ++c) acc += static_cast<double>(weight(p, d, base + c)) * x[c];
    y[r] = acc;
  }
}

Vec to_double(const std::vector<float>& v) {
  return Vec(v.begin(), v.end());
}
std::vector<float> to_float(const Vec& v) {
  std::vector<float> r(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) r[i] = static_cast<float>(v[i]);
  return r;
}

double silu(double g) {
  return g / (1.0 + std::exp(-g));
}

void rmsnorm(double* x, int n, double eps) {
  double ss = 0;
  for (int i = 0; i < n; ++i) ss += x[i] * x[i];
  const double inv = 1.0 / std::sqrt(ss / n + eps);
  for (int i = 0; i < n; ++i) x[i] *= inv;
}

// SwiGLU FFN of one row: gate/up [f, h] at element offset go, down [h, f] at offset do_.
void ffn_row(const Pattern& pg, const Pattern& pu, const Pattern& pd, DType d, long long go,
             long long down_off, int h, int f, const double* x, double* y) {
  Vec g(f), u(f);
  matvec(pg, d, go, f, h, x, g.data());
  matvec(pu, d, go, f, h, x, u.data());
  for (int r = 0; r < f; ++r) g[r] = silu(g[r]) * u[r];
  matvec(pd, d, down_off, h, f, g.data(), y);
}

std::vector<float> router_logits(const MoeSpec& s, const double* x, int tokens) {
  const int e = s.shape.experts, h = s.hidden;
  const Pattern pr = Pattern::for_fan_in(s.seed + 1, h);
  std::vector<float> logits(static_cast<std::size_t>(tokens) * e);
  Vec row(e);
  for (int t = 0; t < tokens; ++t) {
    matvec(pr, DType::fp32, 0, e, h, x + static_cast<long long>(t) * h, row.data());
    for (int i = 0; i < e; ++i)
      logits[static_cast<std::size_t>(t) * e + i] = static_cast<float>(row[i]);
  }
  return logits;
}

void route_from_logits(const MoeSpec& s, const std::vector<float>& logits, int tokens,
                       std::vector<int>& ids, std::vector<float>& w) {
  const MoeShape& m = s.shape;
  ids.assign(static_cast<std::size_t>(tokens) * m.top_k, 0);
  w.assign(ids.size(), 0.0f);
  std::vector<float> scratch(
      static_cast<std::size_t>(mk::routing_scratch_floats(m.experts, m.n_group)));
  for (int t = 0; t < tokens; ++t)
    mk::route_token(logits.data() + static_cast<std::size_t>(t) * m.experts,
                    s.bias.empty() ? nullptr : s.bias.data(), m.experts, m.top_k, m.sigmoid_grouped,
                    m.n_group, m.topk_group, m.normalize,
                    ids.data() + static_cast<std::size_t>(t) * m.top_k,
                    w.data() + static_cast<std::size_t>(t) * m.top_k, scratch.data());
}

// Routed expert e's FFN on one row.
void expert_row(const MoeSpec& s, int e, const double* x, double* y) {
  const int h = s.hidden, f = s.shape.ffn;
  const long long q = s.slot(e);
  ffn_row(Pattern::for_fan_in(s.seed + 2, h), Pattern::for_fan_in(s.seed + 3, h),
          Pattern::for_fan_in(s.seed + 4, f), s.dtype, q * f * h, q * h * f, h, f, x, y);
}

Vec moe_block_d(const MoeSpec& s, const double* x, int tokens, const std::vector<int>& ids,
                const std::vector<float>& w) {
  const int h = s.hidden, k = s.shape.top_k;
  const int fs = s.shape.shared_experts * s.shape.shared_ffn;
  Vec out(static_cast<std::size_t>(tokens) * h, 0.0), y(h);
  for (int t = 0; t < tokens; ++t) {
    const double* xt = x + static_cast<long long>(t) * h;
    double* ot = out.data() + static_cast<long long>(t) * h;
    for (int j = 0; j < k; ++j) {
      expert_row(s, ids[static_cast<std::size_t>(t) * k + j], xt, y.data());
      const double wj = w[static_cast<std::size_t>(t) * k + j];
      for (int c = 0; c < h; ++c) ot[c] += wj * y[c];
    }
    if (fs > 0) {
      ffn_row(Pattern::for_fan_in(s.seed + 5, h), Pattern::for_fan_in(s.seed + 6, h),
              Pattern::for_fan_in(s.seed + 7, fs), s.dtype, 0, 0, h, fs, xt, y.data());
      for (int c = 0; c < h; ++c) ot[c] += y[c];
    }
  }
  return out;
}

// Attention with K/V rows from a callback: kv(b, j, head) -> pointers to qk/v
// values (nullptr: use the pattern cache).
template <class KvFn>
Vec attention_d(const AttentionSpec& s, const Vec& q, KvFn&& kv_override) {
  const int hq = s.heads, hkv = s.kv_heads, dq = s.qk_dim, dv = s.v_dim, group = hq / hkv;
  const long long l = s.context;
  const Pattern pk{s.seed + 2, 1.0f}, pv{s.seed + 3, 1.0f};
  Vec out(static_cast<std::size_t>(s.batch) * s.queries * hq * dv, 0.0);
  Vec krow(dq), vrow(dv), scores;
  for (int b = 0; b < s.batch; ++b)
    for (int qi = 0; qi < s.queries; ++qi) {
      const long long pos = l - s.queries + qi;
      for (int h = 0; h < hq; ++h) {
        const int kvh = h / group;
        const double* qv = q.data() + ((static_cast<long long>(b) * s.queries + qi) * hq + h) * dq;
        scores.assign(static_cast<std::size_t>(pos + 1), 0.0);
        double mx = -1e300;
        for (long long j = 0; j <= pos; ++j) {
          const double* ko = kv_override(b, j, kvh, false);
          double acc = 0;
          for (int c = 0; c < dq; ++c) {
            const double kc =
                ko ? ko[c]
                   : s.kv_round(pk.value(static_cast<std::uint64_t>(
                         ((static_cast<long long>(b) * l + j) * hkv + kvh) * dq + c)));
            acc += qv[c] * kc;
          }
          scores[static_cast<std::size_t>(j)] = acc * s.scale;
          mx = std::max(mx, scores[static_cast<std::size_t>(j)]);
        }
        double sum = 0;
        for (auto& v : scores) sum += (v = std::exp(v - mx));
        double* o = out.data() + ((static_cast<long long>(b) * s.queries + qi) * hq + h) * dv;
        for (long long j = 0; j <= pos; ++j) {
          const double p = scores[static_cast<std::size_t>(j)] / sum;
          const double* vo = kv_override(b, j, kvh, true);
          for (int c = 0; c < dv; ++c) {
            double vc;
            if (vo)
              vc = vo[c];
            else if (s.shared_kv)
              vc = s.kv_round(pk.value(static_cast<std::uint64_t>(
                  ((static_cast<long long>(b) * l + j) * hkv + kvh) * dq + c)));
            else
              vc = s.kv_round(pv.value(static_cast<std::uint64_t>(
                  ((static_cast<long long>(b) * l + j) * hkv + kvh) * dv + c)));
            o[c] += p * vc;
          }
        }
      }
    }
  return out;
}

}  // namespace

std::vector<float> triad(const TriadSpec& s) {
  std::vector<float> a(static_cast<std::size_t>(s.n));
  for (long long i = 0; i < s.n; ++i)
    a[static_cast<std::size_t>(i)] =
        mk::pattern_value(s.seed + 1, static_cast<std::uint64_t>(i)) +
        3.0f * mk::pattern_value(s.seed + 2, static_cast<std::uint64_t>(i));
  return a;
}

std::vector<float> gemm(const GemmSpec& s, const std::vector<float>& x,
                        const std::vector<int>& cols_in) {
  std::vector<int> cols = cols_in;
  if (cols.empty())
    for (int j = 0; j < s.n; ++j) cols.push_back(j);
  const Pattern p = Pattern::for_fan_in(s.seed, s.k);
  std::vector<float> y(static_cast<std::size_t>(s.m) * cols.size());
  for (int i = 0; i < s.m; ++i)
    for (std::size_t jj = 0; jj < cols.size(); ++jj) {
      double acc = 0;
      const long long base = static_cast<long long>(cols[jj]) * s.k;
      for (int c = 0; c < s.k; ++c)
        acc += static_cast<double>(weight(p, s.dtype, base + c)) *
               x[static_cast<std::size_t>(i) * s.k + c];
      y[static_cast<std::size_t>(i) * cols.size() + jj] = static_cast<float>(acc);
    }
  return y;
}

Routing route(const MoeSpec& s, const std::vector<float>& x, int tokens) {
  Routing r;
  const Vec xd = to_double(x);
  r.logits = router_logits(s, xd.data(), tokens);
  route_from_logits(s, r.logits, tokens, r.ids, r.w);
  return r;
}

std::vector<float> routing_weights(const MoeSpec& s, const std::vector<float>& logits,
                                   const std::vector<int>& ids, int tokens) {
  const MoeShape& m = s.shape;
  std::vector<float> w(ids.size());
  for (int t = 0; t < tokens; ++t) {
    const float* lg = logits.data() + static_cast<std::size_t>(t) * m.experts;
    std::vector<double> p(static_cast<std::size_t>(m.experts));
    if (m.sigmoid_grouped) {
      for (int e = 0; e < m.experts; ++e)
        p[static_cast<std::size_t>(e)] = 1.0 / (1.0 + std::exp(-static_cast<double>(lg[e])));
    } else {
      double mx = -1e300, sum = 0;
      for (int e = 0; e < m.experts; ++e)
        mx = std::max(mx, static_cast<double>(lg[e]) +
                              (s.bias.empty() ? 0 : s.bias[static_cast<std::size_t>(e)]));
      for (int e = 0; e < m.experts; ++e)
        sum += (p[static_cast<std::size_t>(e)] = std::exp(
                    lg[e] + (s.bias.empty() ? 0 : s.bias[static_cast<std::size_t>(e)]) - mx));
      for (auto& v : p) v /= sum;
    }
    double sum = 0;
    for (int j = 0; j < m.top_k; ++j)
      sum += p[static_cast<std::size_t>(ids[static_cast<std::size_t>(t) * m.top_k + j])];
    for (int j = 0; j < m.top_k; ++j) {
      const double v = p[static_cast<std::size_t>(ids[static_cast<std::size_t>(t) * m.top_k + j])];
      w[static_cast<std::size_t>(t) * m.top_k + j] =
          static_cast<float>(m.normalize && sum > 0 ? v / sum : v);
    }
  }
  return w;
}

double topk_excess(const MoeSpec& s, const std::vector<float>& logits, const std::vector<int>& ids,
                   int tokens) {
  double worst = -std::numeric_limits<double>::infinity();
  const MoeShape& m = s.shape;
  for (int t = 0; t < tokens; ++t) {
    const float* lg = logits.data() + static_cast<std::size_t>(t) * m.experts;
    // Selection scores: softmax is monotone in logit + bias; sigmoid_grouped uses sigmoid + bias.
    std::vector<double> c(static_cast<std::size_t>(m.experts));
    for (int e = 0; e < m.experts; ++e) {
      const double b = s.bias.empty() ? 0 : s.bias[static_cast<std::size_t>(e)];
      c[static_cast<std::size_t>(e)] =
          m.sigmoid_grouped ? 1.0 / (1.0 + std::exp(-static_cast<double>(lg[e]))) + b : lg[e] + b;
    }
    std::vector<char> chosen(static_cast<std::size_t>(m.experts), 0);
    for (int j = 0; j < m.top_k; ++j) {
      const int e = ids[static_cast<std::size_t>(t) * m.top_k + j];
      if (e < 0 || e >= m.experts || chosen[static_cast<std::size_t>(e)])
        return std::numeric_limits<double>::infinity();
      chosen[static_cast<std::size_t>(e)] = 1;
    }
    double min_in = 1e300, max_out = -1e300;
    for (int e = 0; e < m.experts; ++e) {
      if (chosen[static_cast<std::size_t>(e)])
        min_in = std::min(min_in, c[static_cast<std::size_t>(e)]);
      else if (!m.sigmoid_grouped)
        max_out = std::max(max_out, c[static_cast<std::size_t>(e)]);
    }
    if (m.sigmoid_grouped) {
      // Only experts in the selected groups are eligible; re-run the grouped
      // selection on the reference scores and require the chosen set to match
      // it up to near-ties.
      std::vector<int> ref_ids(static_cast<std::size_t>(m.top_k));
      std::vector<float> ref_w(static_cast<std::size_t>(m.top_k));
      std::vector<float> scratch(
          static_cast<std::size_t>(mk::routing_scratch_floats(m.experts, m.n_group)));
      mk::route_token(lg, s.bias.empty() ? nullptr : s.bias.data(), m.experts, m.top_k, true,
                      m.n_group, m.topk_group, m.normalize, ref_ids.data(), ref_w.data(),
                      scratch.data());
      for (int e : ref_ids)
        if (!chosen[static_cast<std::size_t>(e)])
          max_out = std::max(max_out, c[static_cast<std::size_t>(e)]);
    }
    worst = std::max(worst, max_out - min_in);
  }
  return worst;
}

bool valid_topk(const MoeSpec& s, const std::vector<float>& logits, const std::vector<int>& ids,
                int tokens, double tol) {
  return topk_excess(s, logits, ids, tokens) <= tol;
}

Permutation permute(const MoeSpec& s, const std::vector<int>& ids, const std::vector<float>& x,
                    int tokens) {
  const int e = s.shape.experts, k = s.shape.top_k, h = s.hidden;
  const long long a = static_cast<long long>(tokens) * k;
  Permutation p;
  p.counts.assign(static_cast<std::size_t>(e), 0);
  // Straightforward loops (not the shared helpers) so the shared code is checked.
  for (long long i = 0; i < a; ++i)
    ++p.counts[static_cast<std::size_t>(ids[static_cast<std::size_t>(i)])];
  p.offsets.assign(static_cast<std::size_t>(e) + 1, 0);
  for (int i = 0; i < e; ++i)
    p.offsets[static_cast<std::size_t>(i) + 1] =
        p.offsets[static_cast<std::size_t>(i)] + p.counts[static_cast<std::size_t>(i)];
  p.perm.clear();
  p.inv.assign(static_cast<std::size_t>(a), -1);
  for (int ex = 0; ex < e; ++ex)
    for (long long i = 0; i < a; ++i)
      if (ids[static_cast<std::size_t>(i)] == ex) {
        p.inv[static_cast<std::size_t>(i)] = static_cast<int>(p.perm.size());
        p.perm.push_back(static_cast<int>(i));
      }
  p.x_perm.resize(static_cast<std::size_t>(a) * h);
  for (long long pos = 0; pos < a; ++pos) {
    const long long t = p.perm[static_cast<std::size_t>(pos)] / k;
    std::copy_n(x.begin() + t * h, h, p.x_perm.begin() + pos * h);
  }
  return p;
}

std::vector<float> unpermute(const Permutation& p, int hidden) {
  std::vector<float> out(p.x_perm.size());
  for (std::size_t a = 0; a < p.inv.size(); ++a)
    std::copy_n(p.x_perm.begin() + static_cast<long long>(p.inv[a]) * hidden, hidden,
                out.begin() + static_cast<long long>(a) * hidden);
  return out;
}

std::vector<float> experts(const MoeSpec& s, const std::vector<float>& x_perm,
                           const std::vector<int>& counts) {
  const int h = s.hidden;
  std::vector<float> y(x_perm.size());
  Vec xr(h), yr(h);
  long long pos = 0;
  for (int e = 0; e < s.shape.experts; ++e)
    for (int r = 0; r < counts[static_cast<std::size_t>(e)]; ++r, ++pos) {
      for (int c = 0; c < h; ++c) xr[c] = x_perm[static_cast<std::size_t>(pos * h + c)];
      expert_row(s, e, xr.data(), yr.data());
      for (int c = 0; c < h; ++c)
        y[static_cast<std::size_t>(pos * h + c)] = static_cast<float>(yr[c]);
    }
  return y;
}

std::vector<float> combine(const MoeSpec& s, const std::vector<float>& y_perm,
                           const std::vector<int>& inv, const std::vector<float>& w, int tokens) {
  const int h = s.hidden, k = s.shape.top_k;
  std::vector<float> out(static_cast<std::size_t>(tokens) * h);
  for (int t = 0; t < tokens; ++t)
    for (int c = 0; c < h; ++c) {
      double acc = 0;
      for (int j = 0; j < k; ++j) {
        const std::size_t a = static_cast<std::size_t>(t) * k + j;
        acc += static_cast<double>(w[a]) * y_perm[static_cast<std::size_t>(inv[a]) * h + c];
      }
      out[static_cast<std::size_t>(t) * h + c] = static_cast<float>(acc);
    }
  return out;
}

std::vector<float> moe_block(const MoeSpec& s, const std::vector<float>& x, int tokens,
                             const std::vector<int>& ids, const std::vector<float>& w) {
  const Vec xd = to_double(x);
  return to_float(moe_block_d(s, xd.data(), tokens, ids, w));
}

std::vector<float> attention(const AttentionSpec& s) {
  const Pattern pq{s.seed + 1, 1.0f};
  Vec q(static_cast<std::size_t>(s.batch) * s.queries * s.heads * s.qk_dim);
  for (std::size_t i = 0; i < q.size(); ++i) q[i] = pq.value(i);
  return to_float(
      attention_d(s, q, [](int, long long, int, bool) -> const double* { return nullptr; }));
}

std::vector<float> layer(const LayerSpec& s, const std::vector<float>& x_in,
                         const std::vector<int>* backend_ids, double tol,
                         std::vector<LayerRouting>* routing) {
  const LayerShape& sh = s.shape;
  const AttnShape& a = sh.attn;
  const int h = sh.hidden, t_all = s.tokens(), q_per = s.queries;
  Vec x = to_double(x_in);
  for (int l = 0; l < s.layers; ++l) {
    const std::uint64_t base = s.seed + 1000ull * static_cast<std::uint64_t>(l);
    const AttentionSpec as = s.attention_spec(l);
    Vec hn = x;
    for (int t = 0; t < t_all; ++t)
      rmsnorm(hn.data() + static_cast<long long>(t) * h, h, sh.rms_eps);
    // Projections: q for attention, new K/V rows written into the cache.
    Vec q(static_cast<std::size_t>(t_all) * as.heads * as.qk_dim);
    Vec knew(static_cast<std::size_t>(t_all) * as.kv_heads * as.qk_dim), vnew;
    if (!a.mla) vnew.assign(static_cast<std::size_t>(t_all) * as.kv_heads * as.v_dim, 0.0);
    const int qk_mla = a.nope_dim + a.rope_dim;
    for (int t = 0; t < t_all; ++t) {
      const double* ht = hn.data() + static_cast<long long>(t) * h;
      if (!a.mla) {
        const int d = a.head_dim, n = (a.heads + 2 * a.kv_heads) * d;
        Vec qkv(n);
        matvec(Pattern::for_fan_in(base + 10, h), s.dtype, 0, n, h, ht, qkv.data());
        std::copy_n(qkv.begin(), a.heads * d, q.begin() + static_cast<long long>(t) * a.heads * d);
        for (int i = 0; i < a.kv_heads * d; ++i) {
          knew[static_cast<std::size_t>(t) * a.kv_heads * d + i] =
              as.kv_round(static_cast<float>(qkv[static_cast<std::size_t>(a.heads * d + i)]));
          vnew[static_cast<std::size_t>(t) * a.kv_heads * d + i] = as.kv_round(
              static_cast<float>(qkv[static_cast<std::size_t>((a.heads + a.kv_heads) * d + i)]));
        }
      } else {
        Vec qfull(static_cast<std::size_t>(a.heads) * qk_mla);
        if (a.q_lora_rank > 0) {
          Vec qa(a.q_lora_rank);
          matvec(Pattern::for_fan_in(base + 14, h), s.dtype, 0, a.q_lora_rank, h, ht, qa.data());
          rmsnorm(qa.data(), a.q_lora_rank, sh.rms_eps);
          matvec(Pattern::for_fan_in(base + 15, a.q_lora_rank), s.dtype, 0, a.heads * qk_mla,
                 a.q_lora_rank, qa.data(), qfull.data());
        } else {
          matvec(Pattern::for_fan_in(base + 15, h), s.dtype, 0, a.heads * qk_mla, h, ht,
                 qfull.data());
        }
        const int r = a.kv_lora_rank;
        Vec kv(static_cast<std::size_t>(r + a.rope_dim));
        matvec(Pattern::for_fan_in(base + 16, h), s.dtype, 0, r + a.rope_dim, h, ht, kv.data());
        for (int i = 0; i < r + a.rope_dim; ++i)
          knew[static_cast<std::size_t>(t) * (r + a.rope_dim) + i] =
              as.kv_round(static_cast<float>(kv[static_cast<std::size_t>(i)]));
        const Pattern puk = Pattern::for_fan_in(base + 17, a.nope_dim);
        for (int hh = 0; hh < a.heads; ++hh) {
          double* qo = q.data() + (static_cast<long long>(t) * a.heads + hh) * (r + a.rope_dim);
          const double* qn = qfull.data() + static_cast<long long>(hh) * qk_mla;
          for (int c = 0; c < r; ++c) {
            double acc = 0;
            for (int n = 0; n < a.nope_dim; ++n)
              acc += qn[n] *
                     weight(puk, s.dtype, (static_cast<long long>(hh) * a.nope_dim + n) * r + c);
            qo[c] = acc;
          }
          for (int c = 0; c < a.rope_dim; ++c) qo[r + c] = qn[a.nope_dim + c];
        }
      }
    }
    const long long first_new = as.context - q_per;
    auto kv_fn = [&](int b, long long j, int kvh, bool want_v) -> const double* {
      if (j < first_new) return nullptr;
      const long long t = static_cast<long long>(b) * q_per + (j - first_new);
      if (!want_v || as.shared_kv) return knew.data() + (t * as.kv_heads + kvh) * as.qk_dim;
      return vnew.data() + (t * as.kv_heads + kvh) * as.v_dim;
    };
    Vec att = attention_d(as, q, kv_fn);
    // Output projection (MLA: per-head W_uv first).
    Vec o_in;
    int o_k = 0;
    if (a.mla) {
      const int r = a.kv_lora_rank;
      o_k = a.heads * a.v_head_dim;
      o_in.assign(static_cast<std::size_t>(t_all) * o_k, 0.0);
      const Pattern puv = Pattern::for_fan_in(base + 18, r);
      for (int t = 0; t < t_all; ++t)
        for (int hh = 0; hh < a.heads; ++hh)
          matvec(puv, s.dtype, static_cast<long long>(hh) * a.v_head_dim * r, a.v_head_dim, r,
                 att.data() + (static_cast<long long>(t) * a.heads + hh) * r,
                 o_in.data() + static_cast<long long>(t) * o_k +
                     static_cast<long long>(hh) * a.v_head_dim);
    } else {
      o_k = a.heads * a.head_dim;
      o_in = att;
    }
    Vec y(h);
    for (int t = 0; t < t_all; ++t) {
      matvec(Pattern::for_fan_in(base + 13, o_k), s.dtype, 0, h, o_k,
             o_in.data() + static_cast<long long>(t) * o_k, y.data());
      for (int c = 0; c < h; ++c)
        x[static_cast<std::size_t>(t) * h + c] += y[static_cast<std::size_t>(c)];
    }
    Vec h2 = x;
    for (int t = 0; t < t_all; ++t)
      rmsnorm(h2.data() + static_cast<long long>(t) * h, h, sh.rms_eps);
    if (sh.moe) {
      const MoeSpec ms = s.moe_spec(l);
      const int k = ms.shape.top_k;
      const std::vector<float> logits = router_logits(ms, h2.data(), t_all);
      std::vector<int> ids;
      std::vector<float> w;
      route_from_logits(ms, logits, t_all, ids, w);
      if (backend_ids && backend_ids->size() >= static_cast<std::size_t>(l + 1) * t_all * k) {
        std::vector<int> theirs(backend_ids->begin() + static_cast<long long>(l) * t_all * k,
                                backend_ids->begin() + static_cast<long long>(l + 1) * t_all * k);
        LayerRouting lr;
        lr.layer = l;
        for (int t = 0; t < t_all; ++t)
          if (!std::equal(ids.begin() + static_cast<long long>(t) * k,
                          ids.begin() + static_cast<long long>(t + 1) * k,
                          theirs.begin() + static_cast<long long>(t) * k))
            ++lr.tokens_differing;
        if (lr.tokens_differing > 0) {
          lr.worst_excess = topk_excess(ms, logits, theirs, t_all);
          lr.adopted = lr.worst_excess <= tol;
          if (lr.adopted) {
            ids = theirs;
            w = routing_weights(ms, logits, ids, t_all);
          }
        }
        if (routing) routing->push_back(lr);
      }
      const Vec f = moe_block_d(ms, h2.data(), t_all, ids, w);
      for (std::size_t i = 0; i < x.size(); ++i) x[i] += f[i];
    } else {
      const int f = sh.dense_ffn;
      for (int t = 0; t < t_all; ++t) {
        ffn_row(Pattern::for_fan_in(base + 30, h), Pattern::for_fan_in(base + 31, h),
                Pattern::for_fan_in(base + 32, f), s.dtype, 0, 0, h, f,
                h2.data() + static_cast<long long>(t) * h, y.data());
        for (int c = 0; c < h; ++c)
          x[static_cast<std::size_t>(t) * h + c] += y[static_cast<std::size_t>(c)];
      }
    }
  }
  return to_float(x);
}

}  // namespace moeprobe::ref
