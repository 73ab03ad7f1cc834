// The arithmetic of the NCCL suite (probe/cuda/src/nccl_suite.cpp), kept free of CUDA and NCCL
// so the host tests check it: nccl-tests' element counts and bus-bandwidth factors, the exact
// send pattern, what each rank must receive, and the small-message latency intercept.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace moeprobe::collectives {

enum class Collective { all_reduce, all_gather, reduce_scatter, all_to_all };

// "all_reduce" | "all_gather" | "reduce_scatter" | "all_to_all"; anything else is an error
// naming the known ones.
Collective parse_collective(const std::string& name);

// nccl-tests' busbw factor over algbw: 2(n−1)/n for all-reduce, (n−1)/n for the others (0 on
// one rank: nothing crosses a link).
double bus_factor(Collective c, int ranks);

// Buffers of one size point, as nccl-tests sizes them: `count` elements of the per-rank buffer
// (all-reduce) or of the full buffer (the others, rounded down to a multiple of the ranks);
// `chunk` = count / ranks; what each rank sends and receives. count 0: the size is skipped.
struct Shape {
  long long count = 0, chunk = 0, send = 0, recv = 0;
};
Shape shape_of(Collective c, long long bytes, int ranks);

// Element i of rank r's send buffer: small integers scaled by 1/8, so float sums over a few
// ranks are exact and a result is checked with ==.
float send_value(int rank, long long i);

// What element i of rank r's receive buffer must hold after the collective.
float expected_recv(Collective c, int ranks, long long chunk, int rank, long long i);

// Least-squares intercept a of t = a + b·bytes over (bytes, seconds) points, in µs: the
// per-call latency. Needs at least two distinct sizes (else 0).
double latency_intercept_us(const std::vector<std::pair<double, double>>& points);

}  // namespace moeprobe::collectives
