#include "moeprobe/collective_math.hpp"

#include <cstdint>

#include "moekernels/index_math.hpp"
#include "moeplan/errors.hpp"

namespace moeprobe::collectives {

Collective parse_collective(const std::string& s) {
  if (s == "all_reduce") return Collective::all_reduce;
  if (s == "all_gather") return Collective::all_gather;
  if (s == "reduce_scatter") return Collective::reduce_scatter;
  if (s == "all_to_all") return Collective::all_to_all;
  throw moeplan::Error("unknown collective '" + s +
                       "' (known: all_reduce, all_gather, reduce_scatter, all_to_all)");
}

double bus_factor(Collective c, int ranks) {
  const double r = static_cast<double>(ranks);
  return c == Collective::all_reduce ? 2.0 * (r - 1) / r : (r - 1) / r;
}

Shape shape_of(Collective c, long long bytes, int ranks) {
  Shape s;
  s.count = bytes / 4;
  if (c != Collective::all_reduce) s.count = s.count / ranks * ranks;
  if (s.count <= 0) return Shape{};
  s.chunk = s.count / ranks;
  s.send = c == Collective::all_gather ? s.chunk : s.count;
  s.recv = c == Collective::reduce_scatter ? s.chunk : s.count;
  return s;
}

float send_value(int rank, long long i) {
  return static_cast<float>(
             static_cast<int>(moekernels::mix64(static_cast<std::uint64_t>(rank) * 1000003ull +
                                                static_cast<std::uint64_t>(i)) %
                              17) -
             8) *
         0.125f;
}

float expected_recv(Collective c, int ranks, long long chunk, int rank, long long i) {
  float expect = 0;
  switch (c) {
    case Collective::all_reduce:
      for (int q = 0; q < ranks; ++q) expect += send_value(q, i);
      break;
    case Collective::all_gather:
      expect = send_value(static_cast<int>(i / chunk), i % chunk);
      break;
    case Collective::reduce_scatter:
      for (int q = 0; q < ranks; ++q) expect += send_value(q, rank * chunk + i);
      break;
    case Collective::all_to_all:
      expect = send_value(static_cast<int>(i / chunk), rank * chunk + i % chunk);
      break;
  }
  return expect;
}

double latency_intercept_us(const std::vector<std::pair<double, double>>& points) {
  if (points.size() < 2) return 0;
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (const auto& [x, y] : points) {
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  }
  const double n = static_cast<double>(points.size());
  const double den = n * sxx - sx * sx;
  if (!(den != 0)) return 0;
  const double b = (n * sxy - sx * sy) / den;
  return (sy - b * sx) / n * 1e6;
}

}  // namespace moeprobe::collectives
