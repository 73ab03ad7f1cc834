// Monte Carlo over the catalogs' price ranges and the throughput spread
// (docs/plan.md §Monte Carlo). Pure and allocation-free in the sampling loop;
// reproducible for a fixed seed on every platform (own generator and own
// uniform mapping, no std:: distributions).
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace moeplan::mc {

// SplitMix64: tiny, fast, and the same sequence everywhere.
struct Rng {
  std::uint64_t state;
  explicit Rng(std::uint64_t seed) : state(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  std::size_t index(std::size_t n) {
    return static_cast<std::size_t>(uniform() * static_cast<double>(n)) % n;
  }
};

// Seed of one stream (candidate `stream` of a plan with seed `seed`).
std::uint64_t stream_seed(std::uint64_t seed, std::uint64_t stream);

struct Range {
  double p10 = 0, p50 = 0, p90 = 0;
};

// Percentiles by linear interpolation between order statistics (type 7).
// Sorts `v` in place. +inf values sort last (payback never reached). Empty → nullopt.
std::optional<Range> percentiles(std::vector<double>& v);

// One candidate's uncertain inputs, all per node and in the scenario currency.
struct Inputs {
  // Purchase price ranges (net of VAT), one per catalog entry within the scenario's price
  // basis (pricing::OwnPrice::ranges); a sample picks an entry uniformly, then a price uniformly
  // within it. Empty: not owned.
  std::vector<std::pair<double, double>> capex_net;
  double vat_rate = 0;
  bool vat_recoverable = false;
  double residual_share = 0;
  double life_years = 3;
  double opex_fixed_per_year = 0;  // opex that does not scale with the price
  double warranty_share = 0;       // opex share of the net price per year
  // Rent per node per month, one per catalog rental entry of the point estimate's kind (and
  // provider); a sample picks one uniformly. Empty: not rented.
  std::vector<double> rent_per_month;
  // Throughput per node (SLA-feasible) and its spread: × U(1 − spread, 1 + spread).
  double throughput_tok_s = 0;
  double efficiency_spread = 0.2;
  double peak_tok_s = 0;        // demand the fleet is sized for
  int reserve_nodes = 0;        // N+1
  int purchase_unit_nodes = 1;  // owning buys whole multiples of this many nodes
  double output_tokens_per_year = 0;
};

struct Result {
  int samples = 0;
  std::optional<Range> own_per_mtok, rent_per_mtok, payback_years;  // payback: buy against rent
  std::optional<Range> nodes;
};

// Runs `samples` draws with a stream seeded by `seed`. `scratch` (optional)
// avoids allocations across calls.
Result simulate(const Inputs& in, int samples, std::uint64_t seed);

}  // namespace moeplan::mc
