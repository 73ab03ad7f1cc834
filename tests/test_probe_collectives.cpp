// The NCCL suite's arithmetic (probe/include/moeprobe/collective_math.hpp), checked on the host:
// the suite runs only on GPUs, but its element counts, expected results and latency fit are
// plain C++. Each collective is simulated here from NCCL's documented semantics, independently
// of expected_recv(), and every element of every rank compared.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "moeplan/errors.hpp"
#include "moeprobe/collective_math.hpp"

using namespace moeprobe::collectives;

namespace {

// What rank `r` receives, by NCCL's definitions (ncclAllReduce, ncclAllGather,
// ncclReduceScatter, and the grouped ncclSend/ncclRecv all-to-all the suite issues).
std::vector<float> simulate(Collective c, const Shape& sh, int ranks, int r) {
  std::vector<std::vector<float>> send(static_cast<std::size_t>(ranks));
  for (int q = 0; q < ranks; ++q)
    for (long long i = 0; i < sh.send; ++i) send[q].push_back(send_value(q, i));
  std::vector<float> recv(static_cast<std::size_t>(sh.recv), 0.0f);
  for (long long i = 0; i < sh.recv; ++i) {
    switch (c) {
      case Collective::all_reduce:  // recv[i] = Σ_q send_q[i]
        for (int q = 0; q < ranks; ++q) recv[i] += send[q][i];
        break;
      case Collective::all_gather: {  // recv = send_0 ‖ send_1 ‖ …, chunk elements each
        const long long q = i / sh.chunk, j = i % sh.chunk;
        recv[i] = send[q][j];
        break;
      }
      case Collective::reduce_scatter:  // rank r keeps block r of the sum
        for (int q = 0; q < ranks; ++q) recv[i] += send[q][r * sh.chunk + i];
        break;
      case Collective::all_to_all: {  // block p of rank r's recv = block r of rank p's send
        const long long p = i / sh.chunk, j = i % sh.chunk;
        recv[i] = send[p][r * sh.chunk + j];
        break;
      }
    }
  }
  return recv;
}

}  // namespace

TEST_CASE("NCCL suite: each rank's expected result is what the collective delivers",
          "[probe][nccl]") {
  for (Collective c : {Collective::all_reduce, Collective::all_gather, Collective::reduce_scatter,
                       Collective::all_to_all})
    for (int ranks : {1, 2, 3, 8})
      for (long long bytes : {4LL, 64LL, 100LL, 4096LL}) {
        const Shape sh = shape_of(c, bytes, ranks);
        if (sh.count == 0) continue;
        for (int r = 0; r < ranks; ++r) {
          const std::vector<float> want = simulate(c, sh, ranks, r);
          long long wrong = 0;
          for (long long i = 0; i < sh.recv; ++i)
            wrong += want[i] != expected_recv(c, ranks, sh.chunk, r, i);
          INFO("collective " << static_cast<int>(c) << ", " << ranks << " ranks, " << bytes
                             << " bytes, rank " << r);
          CHECK(wrong == 0);
        }
      }
}

TEST_CASE("NCCL suite: buffer shapes follow nccl-tests", "[probe][nccl]") {
  // all_reduce: 4096 B = 1024 floats per rank, sent and received whole; chunk 1024 / 8 = 128.
  Shape s = shape_of(Collective::all_reduce, 4096, 8);
  CHECK(s.count == 1024);
  CHECK(s.send == 1024);
  CHECK(s.recv == 1024);
  // all_gather over 3 ranks: 100 B = 25 floats, rounded down to 24 = 3 × 8; each rank sends 8
  // and receives the 24.
  s = shape_of(Collective::all_gather, 100, 3);
  CHECK(s.count == 24);
  CHECK(s.chunk == 8);
  CHECK(s.send == 8);
  CHECK(s.recv == 24);
  // reduce_scatter: sends the 24, keeps its 8.
  s = shape_of(Collective::reduce_scatter, 100, 3);
  CHECK(s.send == 24);
  CHECK(s.recv == 8);
  // Fewer floats than ranks: nothing to move, the size is skipped.
  CHECK(shape_of(Collective::all_to_all, 4, 2).count == 0);
  for (Collective c : {Collective::all_gather, Collective::reduce_scatter, Collective::all_to_all})
    for (int ranks : {2, 3, 7})
      for (long long bytes = 4; bytes <= 1 << 16; bytes *= 3) {
        const Shape t = shape_of(c, bytes, ranks);
        CHECK(t.count % ranks == 0);
        CHECK(t.count * 4 <= bytes);
      }
}

TEST_CASE("NCCL suite: bus-bandwidth factors and the send pattern", "[probe][nccl]") {
  CHECK(bus_factor(Collective::all_reduce, 8) == Approx(2.0 * 7 / 8));
  CHECK(bus_factor(Collective::all_gather, 8) == Approx(7.0 / 8));
  CHECK(bus_factor(Collective::reduce_scatter, 4) == Approx(0.75));
  CHECK(bus_factor(Collective::all_to_all, 1) == 0.0);
  // Multiples of 1/8 in [-1, 1]: sums over up to 8 ranks stay exact in float.
  for (int r = 0; r < 8; ++r)
    for (long long i = 0; i < 1000; ++i) {
      const float v = send_value(r, i);
      CHECK(v >= -1.0f);
      CHECK(v <= 1.0f);
      CHECK(v * 8.0f == std::round(v * 8.0f));
    }
}

TEST_CASE("NCCL suite: latency is the intercept of time against bytes", "[probe][nccl]") {
  // t = 5 µs + bytes / 10 GB/s, sampled at 8 B … 1 MiB: the intercept is 5 µs.
  std::vector<std::pair<double, double>> pts;
  for (double b = 8; b <= 1 << 20; b *= 2) pts.emplace_back(b, 5e-6 + b / 10e9);
  CHECK(latency_intercept_us(pts) == Approx(5.0).epsilon(1e-9));
  CHECK(latency_intercept_us({{8, 1e-5}}) == 0.0);  // one point: no fit
}

TEST_CASE("NCCL suite: an unknown collective names the known ones", "[probe][nccl]") {
  CHECK_THROWS_WITH(parse_collective("broadcast"),
                    "unknown collective 'broadcast' (known: all_reduce, all_gather, "
                    "reduce_scatter, all_to_all)");
  CHECK(parse_collective("all_to_all") == Collective::all_to_all);
}
