// Monte Carlo over price ranges and the throughput spread (docs/plan.md
// §Monte Carlo). The loop touches only numbers already resolved per candidate:
// no catalog lookups, no allocations besides the result vectors sized once.
#include "moeplan/montecarlo.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "moeplan/cost.hpp"
#include "moeplan/pricing.hpp"

namespace moeplan::mc {

std::uint64_t stream_seed(std::uint64_t seed, std::uint64_t stream) {
  Rng r(seed ^ (0xD1B54A32D192ED03ULL * (stream + 1)));
  return r.next();
}

std::optional<Range> percentiles(std::vector<double>& v) {
  if (v.empty()) return std::nullopt;
  std::sort(v.begin(), v.end());
  auto q = [&](double p) {
    const double h = (static_cast<double>(v.size()) - 1) * p;
    const auto lo = static_cast<std::size_t>(std::floor(h));
    const std::size_t hi = std::min(v.size() - 1, lo + 1);
    if (std::isinf(v[lo]) || std::isinf(v[hi])) return std::isinf(v[lo]) ? v[lo] : v[hi];
    return v[lo] + (h - static_cast<double>(lo)) * (v[hi] - v[lo]);
  };
  return Range{q(0.1), q(0.5), q(0.9)};
}

Result simulate(const Inputs& in, int samples, std::uint64_t seed) {
  Result out;
  out.samples = samples;
  if (samples <= 0 || in.throughput_tok_s <= 0 || in.output_tokens_per_year <= 0) return out;
  const bool own = !in.capex_net.empty(), rent = !in.rent_per_month.empty();
  const auto n = static_cast<std::size_t>(samples);
  std::vector<double> own_v, rent_v, pay_v, nodes_v(n);
  if (own) own_v.resize(n);
  if (rent) rent_v.resize(n);
  if (own && rent) pay_v.resize(n);
  const double mtok = in.output_tokens_per_year / cost::kTokensPerMTok;
  const double inf = std::numeric_limits<double>::infinity();
  Rng rng(seed);
  for (std::size_t i = 0; i < n; ++i) {
    // Draw order is fixed (throughput, price entry, price, rent entry) so that
    // adding a price entry does not reshuffle the throughput draws.
    const double f = rng.uniform(1.0 - in.efficiency_spread, 1.0 + in.efficiency_spread);
    const double thr = in.throughput_tok_s * f;
    const double nodes = std::max(1.0, std::ceil(in.peak_tok_s / thr - 1e-9)) + in.reserve_nodes;
    nodes_v[i] = nodes;
    const double owned = pricing::nodes_to_own(in.purchase_unit_nodes, static_cast<int>(nodes));
    double capex = 0, opex = 0;
    if (own) {
      const auto& e = in.capex_net[rng.index(in.capex_net.size())];
      const double net = rng.uniform(e.first, e.second);
      capex = cost::economic_capex(net, in.vat_rate, in.vat_recoverable);
      opex = in.opex_fixed_per_year + in.warranty_share * net;
      const double tco = cost::own_tco(capex, opex, in.life_years, in.residual_share * capex);
      own_v[i] = tco / in.life_years * owned / mtok;
    }
    if (rent) {
      const double per_year =
          in.rent_per_month[rng.index(in.rent_per_month.size())] * cost::kMonthsPerYear;
      rent_v[i] = per_year * nodes / mtok;
      if (own) {
        const auto pb =
            cost::payback_years(capex * owned, opex * owned, in.residual_share * capex * owned,
                                in.life_years * cost::kMonthsPerYear, per_year * nodes);
        pay_v[i] = pb ? *pb : inf;
      }
    }
  }
  out.own_per_mtok = percentiles(own_v);
  out.rent_per_mtok = percentiles(rent_v);
  out.payback_years = percentiles(pay_v);
  out.nodes = percentiles(nodes_v);
  return out;
}

}  // namespace moeplan::mc
