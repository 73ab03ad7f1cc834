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
#include "moeprobe/collective_math.hpp"

#ifdef MOEPROBE_HAVE_MPI
#include <mpi.h>
#endif

namespace moeprobe {

namespace kc = moekernels::cuda;
using collectives::Collective;
using cudabk::DeviceBuffer;

namespace {

struct Rank {
  int device = 0, rank = 0;
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  DeviceBuffer send, recv;
};

// The ranks this process drives and the world they belong to: one GPU per MPI rank when built
// with MOEPLAN_WITH_MPI and launched under mpirun, else ncclCommInitAll over `ndev` devices.
std::vector<Rank> init_ranks(int ndev, int& world) {
  std::vector<Rank> ranks;
  world = ndev;
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
    return ranks;
  }
#endif
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
  return ranks;
}

// Sizes each rank's buffers for the shape and fills its send buffer with the exact pattern.
void fill_buffers(std::vector<Rank>& ranks, const collectives::Shape& sh) {
  for (auto& r : ranks) {
    MOE_CUDA_CHECK(cudaSetDevice(r.device));
    r.send.resize(static_cast<std::size_t>(sh.send) * 4);
    r.recv.resize(static_cast<std::size_t>(sh.recv) * 4);
    std::vector<float> host(static_cast<std::size_t>(sh.send));
    for (long long i = 0; i < sh.send; ++i)
      host[static_cast<std::size_t>(i)] = collectives::send_value(r.rank, i);
    MOE_CUDA_CHECK(cudaMemcpy(r.send.get(), host.data(), host.size() * 4, cudaMemcpyHostToDevice));
  }
}

// One call of the collective on every rank this process drives, as one NCCL group.
void issue(std::vector<Rank>& ranks, Collective c, const collectives::Shape& sh, int world) {
  MOE_NCCL_CHECK(ncclGroupStart());
  for (auto& r : ranks) {
    float* s = r.send.as<float>();
    float* d = r.recv.as<float>();
    const auto count = static_cast<std::size_t>(sh.count),
               chunk = static_cast<std::size_t>(sh.chunk);
    switch (c) {
      case Collective::all_reduce:
        MOE_NCCL_CHECK(ncclAllReduce(s, d, count, ncclFloat, ncclSum, r.comm, r.stream));
        break;
      case Collective::all_gather:
        MOE_NCCL_CHECK(ncclAllGather(s, d, chunk, ncclFloat, r.comm, r.stream));
        break;
      case Collective::reduce_scatter:
        MOE_NCCL_CHECK(ncclReduceScatter(s, d, chunk, ncclFloat, ncclSum, r.comm, r.stream));
        break;
      case Collective::all_to_all:
        for (int p = 0; p < world; ++p) {
          MOE_NCCL_CHECK(ncclSend(s + p * sh.chunk, chunk, ncclFloat, p, r.comm, r.stream));
          MOE_NCCL_CHECK(ncclRecv(d + p * sh.chunk, chunk, ncclFloat, p, r.comm, r.stream));
        }
        break;
    }
  }
  MOE_NCCL_CHECK(ncclGroupEnd());
}

void sync_all(std::vector<Rank>& ranks) {
  for (auto& r : ranks) {
    MOE_CUDA_CHECK(cudaSetDevice(r.device));
    MOE_CUDA_CHECK(cudaStreamSynchronize(r.stream));
  }
}

// Seconds per call: warm-up calls, then `iters` timed ones (the slowest rank's under MPI).
double time_calls(std::vector<Rank>& ranks, Collective c, const collectives::Shape& sh, int world,
                  const NcclOptions& opt) {
  for (int i = 0; i < opt.warmup; ++i) issue(ranks, c, sh, world);
  sync_all(ranks);
#ifdef MOEPROBE_HAVE_MPI
  if (world > static_cast<int>(ranks.size())) MPI_Barrier(MPI_COMM_WORLD);
#endif
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < std::max(1, opt.iters); ++i) issue(ranks, c, sh, world);
  sync_all(ranks);
  double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
               std::max(1, opt.iters);
#ifdef MOEPROBE_HAVE_MPI
  if (world > static_cast<int>(ranks.size()))
    MPI_Allreduce(MPI_IN_PLACE, &sec, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
#endif
  return sec;
}

// One more call (idempotent: inputs unchanged), then every received element checked against
// what it must hold (exact: sums of multiples of 1/8); the count of wrong elements.
long long count_wrong(std::vector<Rank>& ranks, Collective c, const collectives::Shape& sh,
                      int world) {
  issue(ranks, c, sh, world);
  sync_all(ranks);
  long long wrong = 0;
  for (auto& r : ranks) {
    MOE_CUDA_CHECK(cudaSetDevice(r.device));
    const auto got =
        cudabk::download<float>(r.recv.get(), static_cast<std::size_t>(sh.recv), r.stream);
    for (long long i = 0; i < sh.recv; ++i)
      if (got[static_cast<std::size_t>(i)] !=
          collectives::expected_recv(c, world, sh.chunk, r.rank, i))
        ++wrong;
  }
#ifdef MOEPROBE_HAVE_MPI
  if (world > static_cast<int>(ranks.size()))
    MPI_Allreduce(MPI_IN_PLACE, &wrong, 1, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
#endif
  return wrong;
}

// Every size of one collective: a row per size, and the latency intercept over the sizes up to
// 1 MiB.
void sweep_collective(std::vector<Rank>& ranks, const std::string& name, int world,
                      const NcclOptions& opt, NcclSuite& out) {
  const Collective c = collectives::parse_collective(name);
  const long long max_b = std::max(opt.max_bytes, opt.min_bytes);
  std::vector<std::pair<double, double>> small;  // (bytes, seconds) for the intercept
  for (long long bytes = std::max(4LL, opt.min_bytes); bytes <= max_b;
       bytes *= std::max(2, opt.step_factor)) {
    const collectives::Shape sh = collectives::shape_of(c, bytes, world);
    if (sh.count <= 0) continue;
    fill_buffers(ranks, sh);
    const double sec = time_calls(ranks, c, sh, world, opt);
    NcclRow row;
    row.collective = name;
    row.ranks = world;
    row.count = sh.count;
    row.bytes = sh.count * 4;
    row.time_us = sec * 1e6;
    row.algbw_gbs = static_cast<double>(row.bytes) / sec * 1e-9;
    row.busbw_gbs = row.algbw_gbs * collectives::bus_factor(c, world);
    if (opt.verify) row.wrong = count_wrong(ranks, c, sh, world);
    if (row.bytes <= (1LL << 20)) small.emplace_back(static_cast<double>(row.bytes), sec);
    out.rows.push_back(row);
  }
  if (small.size() >= 2) out.latency_us[name] = collectives::latency_intercept_us(small);
}

void release(std::vector<Rank>& ranks) {
  for (auto& r : ranks) {
    (void)cudaSetDevice(r.device);
    r.send.release();
    r.recv.release();
    if (r.stream) MOE_CUDA_CHECK_NOTHROW(cudaStreamDestroy(r.stream));
    if (r.comm) MOE_NCCL_CHECK_NOTHROW(ncclCommDestroy(r.comm));
  }
}

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
  int world = ndev;
  std::vector<Rank> ranks = init_ranks(ndev, world);
  out.ranks = world;
  if (world == 1) out.notes.push_back("one rank: collectives are local copies; busbw factor is 0");
  try {
    for (auto& r : ranks) {
      MOE_CUDA_CHECK(cudaSetDevice(r.device));
      MOE_CUDA_CHECK(cudaStreamCreateWithFlags(&r.stream, cudaStreamNonBlocking));
    }
    for (const std::string& name : opt.collectives) sweep_collective(ranks, name, world, opt, out);
  } catch (...) {
    release(ranks);
    throw;
  }
  release(ranks);
  return out;
}

}  // namespace moeprobe
