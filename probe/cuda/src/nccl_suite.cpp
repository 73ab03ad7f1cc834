// NCCL collectives across the node's GPUs, nccl-tests style: one process,
// ncclCommInitAll over every visible device (or one GPU per MPI rank when
// built with MOEPLAN_WITH_MPI), float sums, algbw/busbw with nccl-tests'
// factors, results verified (#wrong), small-message latency from the intercept.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>

#include "gpu_support.hpp"
#include "moekernels/index_math.hpp"
#include "moeplan/errors.hpp"

#ifdef MOEPROBE_HAVE_MPI
#include <mpi.h>
#endif

namespace moeprobe {

namespace kc = moekernels::cuda;
using cudabk::DeviceBuffer;

namespace {

enum class Coll { all_reduce, all_gather, reduce_scatter, all_to_all };

Coll parse_coll(const std::string& s) {
  if (s == "all_reduce") return Coll::all_reduce;
  if (s == "all_gather") return Coll::all_gather;
  if (s == "reduce_scatter") return Coll::reduce_scatter;
  if (s == "all_to_all") return Coll::all_to_all;
  throw moeplan::Error("unknown collective '" + s +
                       "' (known: all_reduce, all_gather, reduce_scatter, all_to_all)");
}

double bus_factor(Coll c, int n) {
  const double r = static_cast<double>(n);
  return c == Coll::all_reduce ? 2.0 * (r - 1) / r : (r - 1) / r;
}

// Value element i of rank r's send buffer (exact in float sums of a few ranks:
// small integers scaled by 1/8).
float send_value(int rank, long long i) {
  return static_cast<float>(
             static_cast<int>(moekernels::mix64(static_cast<std::uint64_t>(rank) * 1000003ull +
                                                static_cast<std::uint64_t>(i)) %
                              17) -
             8) *
         0.125f;
}

struct Rank {
  int device = 0, rank = 0;
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  DeviceBuffer send, recv;
};

}  // namespace

NcclSuite run_nccl_suite(const NcclOptions& opt) {
  NcclSuite out;
  int version = 0;
  MOE_NCCL_CHECK(ncclGetVersion(&version));
  out.nccl_version = std::to_string(version / 10000) + "." + std::to_string((version / 100) % 100) +
                     "." + std::to_string(version % 100);
  int ndev = 0;
  const cudaError_t e = cudaGetDeviceCount(&ndev);
  if (e != cudaSuccess || ndev == 0)
    throw BackendUnavailable("run_nccl_suite: no CUDA device (" +
                             std::string(cudaGetErrorString(e)) + ")");
  if (opt.devices > 0) ndev = std::min(ndev, opt.devices);

  std::vector<Rank> ranks;
  int world = ndev;
  int first_rank = 0;
#ifdef MOEPROBE_HAVE_MPI
  int mpi_size = 1, mpi_rank = 0, mpi_init = 0;
  MPI_Initialized(&mpi_init);
  if (mpi_init) {
    MPI_Comm_size(MPI_COMM_WORLD, &mpi_size);
    MPI_Comm_rank(MPI_COMM_WORLD, &mpi_rank);
  }
  if (mpi_size > 1) {
    // One GPU per rank: device = local rank modulo the visible devices.
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, mpi_rank, MPI_INFO_NULL, &local);
    int local_rank = 0;
    MPI_Comm_rank(local, &local_rank);
    MPI_Comm_free(&local);
    ncclUniqueId id;
    if (mpi_rank == 0) MOE_NCCL_CHECK(ncclGetUniqueId(&id));
    MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, MPI_COMM_WORLD);
    ranks.resize(1);
    ranks[0].device = local_rank % ndev;
    ranks[0].rank = mpi_rank;
    MOE_CUDA_CHECK(cudaSetDevice(ranks[0].device));
    MOE_NCCL_CHECK(ncclCommInitRank(&ranks[0].comm, mpi_size, id, mpi_rank));
    world = mpi_size;
    first_rank = mpi_rank;
  }
#endif
  if (ranks.empty()) {
    std::vector<ncclComm_t> comms(static_cast<std::size_t>(ndev));
    std::vector<int> devs(static_cast<std::size_t>(ndev));
    for (int i = 0; i < ndev; ++i) devs[static_cast<std::size_t>(i)] = i;
    MOE_NCCL_CHECK(ncclCommInitAll(comms.data(), ndev, devs.data()));
    ranks.resize(static_cast<std::size_t>(ndev));
    for (int i = 0; i < ndev; ++i) {
      ranks[static_cast<std::size_t>(i)].device = i;
      ranks[static_cast<std::size_t>(i)].rank = i;
      ranks[static_cast<std::size_t>(i)].comm = comms[static_cast<std::size_t>(i)];
    }
  }
  (void)first_rank;
  out.ranks = world;
  if (world == 1) out.notes.push_back("one rank: collectives are local copies; busbw factor is 0");
  for (auto& r : ranks) {
    MOE_CUDA_CHECK(cudaSetDevice(r.device));
    MOE_CUDA_CHECK(cudaStreamCreateWithFlags(&r.stream, cudaStreamNonBlocking));
  }
  auto cleanup = [&] {
    for (auto& r : ranks) {
      (void)cudaSetDevice(r.device);
      r.send.release();
      r.recv.release();
      if (r.stream) MOE_CUDA_CHECK_NOTHROW(cudaStreamDestroy(r.stream));
      if (r.comm) MOE_NCCL_CHECK_NOTHROW(ncclCommDestroy(r.comm));
    }
  };

  try {
    const long long max_b = std::max(opt.max_bytes, opt.min_bytes);
    for (const std::string& name : opt.collectives) {
      const Coll c = parse_coll(name);
      std::vector<std::pair<double, double>> small;  // (bytes, seconds) for the intercept
      for (long long bytes = std::max(4LL, opt.min_bytes); bytes <= max_b;
           bytes *= std::max(2, opt.step_factor)) {
        // nccl-tests' count: elements of the per-rank buffer (all_reduce) or of
        // the full buffer (others), rounded to a multiple of the rank count.
        long long count = bytes / 4;
        if (c != Coll::all_reduce) count = count / world * world;
        if (count <= 0) continue;
        const long long chunk = count / world;
        const long long send_n = c == Coll::all_gather ? chunk : count;
        const long long recv_n = c == Coll::reduce_scatter ? chunk : count;
        for (auto& r : ranks) {
          MOE_CUDA_CHECK(cudaSetDevice(r.device));
          r.send.resize(static_cast<std::size_t>(send_n) * 4);
          r.recv.resize(static_cast<std::size_t>(recv_n) * 4);
          std::vector<float> host(static_cast<std::size_t>(send_n));
          for (long long i = 0; i < send_n; ++i)
            host[static_cast<std::size_t>(i)] = send_value(r.rank, i);
          MOE_CUDA_CHECK(
              cudaMemcpy(r.send.get(), host.data(), host.size() * 4, cudaMemcpyHostToDevice));
        }
        auto issue = [&] {
          MOE_NCCL_CHECK(ncclGroupStart());
          for (auto& r : ranks) {
            float* s = r.send.as<float>();
            float* d = r.recv.as<float>();
            switch (c) {
              case Coll::all_reduce:
                MOE_NCCL_CHECK(ncclAllReduce(s, d, static_cast<std::size_t>(count), ncclFloat,
                                             ncclSum, r.comm, r.stream));
                break;
              case Coll::all_gather:
                MOE_NCCL_CHECK(ncclAllGather(s, d, static_cast<std::size_t>(chunk), ncclFloat,
                                             r.comm, r.stream));
                break;
              case Coll::reduce_scatter:
                MOE_NCCL_CHECK(ncclReduceScatter(s, d, static_cast<std::size_t>(chunk), ncclFloat,
                                                 ncclSum, r.comm, r.stream));
                break;
              case Coll::all_to_all:
                for (int p = 0; p < world; ++p) {
                  MOE_NCCL_CHECK(ncclSend(s + p * chunk, static_cast<std::size_t>(chunk), ncclFloat,
                                          p, r.comm, r.stream));
                  MOE_NCCL_CHECK(ncclRecv(d + p * chunk, static_cast<std::size_t>(chunk), ncclFloat,
                                          p, r.comm, r.stream));
                }
                break;
            }
          }
          MOE_NCCL_CHECK(ncclGroupEnd());
        };
        auto sync_all = [&] {
          for (auto& r : ranks) {
            MOE_CUDA_CHECK(cudaSetDevice(r.device));
            MOE_CUDA_CHECK(cudaStreamSynchronize(r.stream));
          }
        };
        for (int i = 0; i < opt.warmup; ++i) issue();
        sync_all();
#ifdef MOEPROBE_HAVE_MPI
        if (world > static_cast<int>(ranks.size())) MPI_Barrier(MPI_COMM_WORLD);
#endif
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < std::max(1, opt.iters); ++i) issue();
        sync_all();
        double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
                     std::max(1, opt.iters);
#ifdef MOEPROBE_HAVE_MPI
        if (world > static_cast<int>(ranks.size()))
          MPI_Allreduce(MPI_IN_PLACE, &sec, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
#endif
        NcclRow row;
        row.collective = name;
        row.ranks = world;
        row.count = count;
        row.bytes = count * 4;
        row.time_us = sec * 1e6;
        row.algbw_gbs = static_cast<double>(row.bytes) / sec * 1e-9;
        row.busbw_gbs = row.algbw_gbs * bus_factor(c, world);
        if (opt.verify) {
          // One more call (idempotent: inputs unchanged), then every element checked.
          issue();
          sync_all();
          long long wrong = 0;
          for (auto& r : ranks) {
            MOE_CUDA_CHECK(cudaSetDevice(r.device));
            const auto got =
                cudabk::download<float>(r.recv.get(), static_cast<std::size_t>(recv_n), r.stream);
            for (long long i = 0; i < recv_n; ++i) {
              float expect = 0;
              switch (c) {
                case Coll::all_reduce:
                  for (int q = 0; q < world; ++q) expect += send_value(q, i);
                  break;
                case Coll::all_gather:
                  expect = send_value(static_cast<int>(i / chunk), i % chunk);
                  break;
                case Coll::reduce_scatter:
                  for (int q = 0; q < world; ++q) expect += send_value(q, r.rank * chunk + i);
                  break;
                case Coll::all_to_all:
                  expect = send_value(static_cast<int>(i / chunk), r.rank * chunk + i % chunk);
                  break;
              }
              if (got[static_cast<std::size_t>(i)] != expect)
                ++wrong;  // exact: sums of multiples of 1/8
            }
          }
#ifdef MOEPROBE_HAVE_MPI
          if (world > static_cast<int>(ranks.size()))
            MPI_Allreduce(MPI_IN_PLACE, &wrong, 1, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
#endif
          row.wrong = wrong;
        }
        if (row.bytes <= (1LL << 20)) small.emplace_back(static_cast<double>(row.bytes), sec);
        out.rows.push_back(row);
      }
      // Least-squares t = a + b * bytes over the small sizes; a is the latency.
      if (small.size() >= 2) {
        double sx = 0, sy = 0, sxx = 0, sxy = 0;
        for (const auto& [x, y] : small) {
          sx += x;
          sy += y;
          sxx += x * x;
          sxy += x * y;
        }
        const double n = static_cast<double>(small.size());
        const double b = (n * sxy - sx * sy) / (n * sxx - sx * sx);
        out.latency_us[name] = (sy - b * sx) / n * 1e6;
      }
    }
  } catch (...) {
    cleanup();
    throw;
  }
  cleanup();
  return out;
}

}  // namespace moeprobe
