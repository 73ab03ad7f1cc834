// moeprobe nccl / peaks: the node-level GPU measurements that sit beside the
// per-op calibration — NCCL collectives (nccl-tests' algbw/busbw and #wrong) and
// dense peak rates through cuBLASLt plus copy bandwidth. Only in a CUDA build;
// elsewhere they say so and exit 4 (backend unavailable).
#include <fmt/format.h>

#include <iostream>
#include <memory>

#include "moeplan/report.hpp"
#include "moeprobe/backend.hpp"
#include "probe_cli.hpp"
#ifdef MOEPROBE_HAVE_CUDA
#include "moeprobe/cuda_backend.hpp"
#endif

namespace moeprobe::cli {

namespace {

struct NcclCliOptions {
  long long min_bytes = 8, max_bytes = 256LL << 20;
  int iters = 20, warmup = 5, devices = 0;
  bool no_verify = false;
  std::string format = "table", out;
};

#ifndef MOEPROBE_HAVE_CUDA
[[noreturn]] void not_built(const std::string& what) {
  throw BackendUnavailable(what +
                           " needs the CUDA backend, which this build does not have "
                           "(nvcc was not found at configure time)");
}
#endif

// Unused in a build without CUDA, where both suites only say so.
[[maybe_unused]] void emit(moeplan::Report& rep, const std::string& format,
                           const std::string& out) {
  rep.meta.tool_version = moeplan::tool_version();
  rep.meta.git_sha = moeplan::git_sha();
  rep.meta.command_line = global().command_line;
  const std::string text = moeplan::render(rep, moeplan::parse_format(format));
  if (out.empty())
    std::cout << text;
  else
    moeplan::write_file_atomic(out, text);
}

void run_nccl(const NcclCliOptions& o, int& exit_code) {
#ifdef MOEPROBE_HAVE_CUDA
  NcclOptions opt;
  opt.min_bytes = o.min_bytes;
  opt.max_bytes = o.max_bytes;
  opt.iters = o.iters;
  opt.warmup = o.warmup;
  opt.devices = o.devices;
  opt.verify = !o.no_verify;
  const NcclSuite s = run_nccl_suite(opt);
  moeplan::Report rep;
  rep.title = fmt::format("NCCL collectives over {} GPUs (NCCL {})", s.ranks, s.nccl_version);
  moeplan::Table t{
      "nccl",
      "",
      {"collective", "ranks", "bytes", "count", "time us", "algbw GB/s", "busbw GB/s", "#wrong"},
      {},
      {"busbw = algbw x 2(n-1)/n (all_reduce) or (n-1)/n (all_gather, "
       "reduce_scatter, all_to_all), as nccl-tests defines it"}};
  long long wrong = 0;
  moeplan::Json rows = moeplan::Json::array();
  for (const auto& r : s.rows) {
    t.add({r.collective, r.ranks, r.bytes, r.count, moeplan::Cell(r.time_us, 2),
           moeplan::Cell(r.algbw_gbs, 2), moeplan::Cell(r.busbw_gbs, 2),
           r.wrong < 0 ? moeplan::Cell("n/a") : moeplan::Cell(r.wrong)});
    if (r.wrong > 0) wrong += r.wrong;
    rows.push_back({{"collective", r.collective},
                    {"ranks", r.ranks},
                    {"bytes", r.bytes},
                    {"time_us", r.time_us},
                    {"algbw_gb_s", r.algbw_gbs},
                    {"busbw_gb_s", r.busbw_gbs},
                    {"wrong", r.wrong}});
  }
  rep.tables.push_back(t);
  moeplan::Table lat{"latency",
                     "Small-message latency (intercept of time vs bytes)",
                     {"collective", "latency us"},
                     {},
                     {}};
  for (const auto& [c, us] : s.latency_us) lat.add({c, moeplan::Cell(us, 2)});
  rep.tables.push_back(lat);
  for (const auto& n : s.notes) rep.messages.push_back(n);
  rep.messages.push_back(wrong == 0 ? "all collectives verified (#wrong = 0)"
                                    : fmt::format("{} wrong elements: results are invalid", wrong));
  rep.json["ranks"] = s.ranks;
  rep.json["nccl_version"] = s.nccl_version;
  rep.json["rows"] = rows;
  rep.json["latency_us"] = s.latency_us;
  emit(rep, o.format, o.out);
  exit_code = wrong == 0 ? 0 : kExitVerification;
#else
  (void)o;
  (void)exit_code;
  not_built("moeprobe nccl");
#endif
}

void run_peaks(const std::string& format, const std::string& out, int& exit_code) {
#ifdef MOEPROBE_HAVE_CUDA
  moeplan::Report rep;
  rep.title = "Dense peak rates (cuBLASLt) and copy bandwidth on this GPU";
  moeplan::Table t{
      "peaks", "", {"dtype", "m", "n", "k", "TFLOP/s", "copy GB/s", "measured", "note"}, {}, {}};
  moeplan::Json rows = moeplan::Json::array();
  const std::vector<PeakRow> peaks = run_peak_suite();
  for (const auto& r : peaks) {
    t.add({r.dtype, r.m, r.n, r.k, r.measured ? moeplan::Cell(r.tflops, 1) : moeplan::Cell(),
           r.measured ? moeplan::Cell(r.copy_gbs, 1) : moeplan::Cell(), r.measured ? "yes" : "no",
           r.note});
    rows.push_back({{"dtype", r.dtype},
                    {"m", r.m},
                    {"n", r.n},
                    {"k", r.k},
                    {"tflops", r.tflops},
                    {"copy_gb_s", r.copy_gbs},
                    {"measured", r.measured},
                    {"note", r.note}});
    if (!r.measured) rep.messages.push_back(r.dtype + " not measured: " + r.note);
  }
  rep.tables.push_back(t);
  rep.json["rows"] = rows;
  emit(rep, format, out);
  exit_code = peaks_exit_code(peaks);
  if (exit_code != 0) std::cerr << "error: no peak row could be measured\n";
#else
  (void)format;
  (void)out;
  (void)exit_code;
  not_built("moeprobe peaks");
#endif
}

}  // namespace

void setup_gpu_suites(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<NcclCliOptions>();
  CLI::App* nccl = app.add_subcommand(
      "nccl", "NCCL collectives across this node's GPUs: algbw, busbw, #wrong, latency");
  // Ranges stated, not CLI::PositiveNumber: its message prints DBL_MAX in full.
  nccl->add_option("--min-bytes", o->min_bytes, "Smallest message, bytes")
      ->check(CLI::Range(1.0, 1e12));
  nccl->add_option("--max-bytes", o->max_bytes, "Largest message, bytes")
      ->check(CLI::Range(1.0, 1e12));
  nccl->add_option("--iters", o->iters, "Timed iterations per size")->check(CLI::Range(1, 1000000));
  nccl->add_option("--warmup", o->warmup, "Warm-up iterations per size")
      ->check(CLI::Range(0, 1000000));
  nccl->add_option("--devices", o->devices, "GPUs to use (0: all visible)")
      ->check(CLI::Range(0, 1024));
  nccl->add_flag("--no-verify", o->no_verify, "Skip the result check (not recommended)");
  nccl->add_option("--format", o->format, "table|json|csv|md")
      ->check(CLI::IsMember({"table", "json", "csv", "md"}));
  nccl->add_option("--out", o->out, "Write to FILE (atomically) instead of stdout");
  nccl->callback([o, &exit_code] { run_nccl(*o, exit_code); });

  auto p = std::make_shared<std::pair<std::string, std::string>>("table", "");
  CLI::App* peaks =
      app.add_subcommand("peaks", "Dense bf16/fp8 GEMM peaks (cuBLASLt) and copy bandwidth");
  peaks->add_option("--format", p->first, "table|json|csv|md")
      ->check(CLI::IsMember({"table", "json", "csv", "md"}));
  peaks->add_option("--out", p->second, "Write to FILE (atomically) instead of stdout");
  peaks->callback([p, &exit_code] { run_peaks(p->first, p->second, exit_code); });
}

}  // namespace moeprobe::cli
