// moeprobe run: verify, time, fit, write the calibration file.
#include <iostream>

#include "moeplan/performance.hpp"
#include "moeplan/report.hpp"
#include "moeprobe/harness.hpp"
#include "probe_cli.hpp"

namespace moeprobe::cli {

namespace {

// A full GPU sweep of a 700B-class model must fit a rented hour's slot: by
// default a cuda run keeps inside 270 s of wall time (under 5 minutes with the
// set-up before the first cell), trimming repetitions, then points, and saying
// so in the file. `--budget-s 0` lifts the limit.
constexpr double kDefaultGpuBudgetS = 270;

struct RunCmdOptions {
  std::string model, backend = "cpu", device, dtype = "fp32", kv_dtype = "same",
                     distribution = "balanced", out = "calibration.json";
  int layers = 1;
  std::vector<int> tokens, prefill;
  std::vector<long long> context;
  double memory_gb = 0;
  double budget_s = -1;  // -1: the backend's default (kDefaultGpuBudgetS on cuda, none on cpu)
  std::string format = "table";
  bool quick = false, resume = false, no_progress = false, no_flush = false;
};

void run(const RunCmdOptions& o, int& exit_code) {
  const moeplan::Model m = model(o.model);
  const moeplan::Device* dev = o.device.empty() ? nullptr : &catalog().device(o.device);
  auto backend = make_backend(o.backend, global().threads);
  // The file records the catalog id, and moeplan applies the rows to that device: CPU timings
  // filed under an H200 would price an H200 at a CPU's bandwidth (moeplan refuses such a file by
  // the same rule).
  if (dev) {
    const std::string ran = backend->identity().kind;
    if (!moeplan::calibration_kind_fits(ran, dev->kind))
      throw moeplan::Error("--device " + dev->id + ": the catalog lists it as a " +
                           moeplan::device_kind_name(dev->kind) + " device, but --backend " +
                           o.backend + " measures " +
                           (ran == "cpu" ? "this machine's CPU" : "a GPU") +
                           "; name the catalog entry of the hardware this backend runs on "
                           "(moeplan catalog list devices), or leave --device out");
  }
  RunOptions ro;
  ro.dtype = parse_dtype(o.dtype);
  ro.kv_dtype = parse_kv_dtype(o.kv_dtype);
  ro.distribution = Distribution::parse(o.distribution);
  ro.tokens = o.tokens;
  ro.context = o.context;
  ro.prefill = o.prefill;
  ro.layers = o.layers;
  ro.memory_budget_gb = o.memory_gb;
  ro.budget_s = o.budget_s >= 0 ? o.budget_s : (o.backend == "cuda" ? kDefaultGpuBudgetS : 0.0);
  ro.quick = o.quick;
  ro.resume = o.resume;
  ro.out = o.out;
  ro.command_line = global().command_line;
  ro.progress = !o.no_progress;
  ro.apply_defaults();
  if (o.no_flush) ro.timing->flush = false;
  if (const std::string w = build_warning(); !w.empty()) std::cerr << "warning: " << w << "\n";
  const RunResult r = run_probe(m, dev, *backend, ro);

  moeplan::Report rep;
  rep.title = "moeprobe " + backend->name() + " on " + backend->identity().name + ", model " + m.id;
  moeplan::Table t;
  t.name = "measurements";
  t.title = "Measurements (median over repetitions after warm-up)";
  t.columns = {"op", "shape", "tokens",  "context",    "p50 us",  "p10 us", "p90 us",
               "n",  "GB/s",  "TFLOP/s", "util(meas)", "touched", "max err"};
  double bw = 0, moe1 = 0;
  for (const auto& row : r.rows) {
    t.add({row.op, row.shape, row.tokens, row.context, moeplan::Cell(row.time.p50 * 1e6, 1),
           moeplan::Cell(row.time.p10 * 1e6, 1), moeplan::Cell(row.time.p90 * 1e6, 1),
           row.time.samples, moeplan::Cell(row.gb_s, 2), moeplan::Cell(row.tflops, 4),
           moeplan::Cell(row.util_measured, 3),
           row.experts_touched >= 0 ? moeplan::Cell(row.experts_touched) : moeplan::Cell(),
           moeplan::Cell(row.max_err, -1)});
    if (row.op == "triad") bw = row.gb_s;
    if (row.op == "moe.fused" && row.tokens == 1) moe1 = row.gb_s;
  }
  for (const auto& n : r.notes) t.notes.push_back(n);
  rep.tables.push_back(t);
  rep.messages.push_back("measured bandwidth (triad): " + std::to_string(bw) + " GB/s");
  if (moe1 > 0 && bw > 0)
    rep.messages.push_back("MoE decode step at batch 1: " + std::to_string(moe1) + " GB/s = " +
                           std::to_string(moe1 / bw * 100) + "% of the measured bandwidth");
  if (r.trimmed > 0 || !r.out_of_time.empty())
    rep.messages.push_back("--budget-s: " + std::to_string(r.trimmed) +
                           " cells with trimmed repetitions, " +
                           std::to_string(r.out_of_time.size()) +
                           " cells not measured (listed in the file under probe.budget)");
  if (r.resumed > 0)
    rep.messages.push_back(std::to_string(r.resumed) + " rows resumed from the log");
  if (r.skipped > 0)
    rep.messages.push_back(
        std::to_string(r.skipped) +
        " cases skipped (memory budget, or ops this backend does not implement)");
  rep.messages.push_back("calibration written to " + r.out_path);
  rep.meta.calibration_file = r.out_path;
  rep.meta.tool_version = moeplan::tool_version();
  rep.meta.git_sha = moeplan::git_sha();
  std::cout << moeplan::render(rep, moeplan::parse_format(o.format));
  exit_code = 0;
}

}  // namespace

void setup_run(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<RunCmdOptions>();
  CLI::App* sub = app.add_subcommand(
      "run", "Verify and time every op on a model's shapes; write a calibration file");
  sub->add_option("--model", o->model,
                  "Model id from the catalog, or synthetic-tiny / synthetic-mla")
      ->required();
  sub->add_option("--backend", o->backend, "cpu | cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  sub->add_option("--device", o->device, "Catalog device id whose datasheet peaks give `util`");
  sub->add_option("--layers", o->layers, "Decoder layers run back to back in the layer rows")
      ->check(CLI::Range(1, 1024));
  sub->add_option("--tokens", o->tokens, "Token counts / decode batches (comma-separated)")
      ->delimiter(',');
  sub->add_option("--context", o->context, "KV lengths for decode rows (comma-separated)")
      ->delimiter(',');
  sub->add_option("--prefill", o->prefill, "Prefill lengths (comma-separated)")->delimiter(',');
  sub->add_option("--dtype", o->dtype, "Weight and KV storage type")
      ->check(CLI::IsMember({"fp32", "bf16"}));
  sub->add_option("--kv-dtype", o->kv_dtype,
                  "KV cache storage: same (as --dtype) | fp8 (e4m3, per-tensor scale 1/32)")
      ->check(CLI::IsMember({"same", "fp8"}));
  sub->add_option("--distribution", o->distribution, "balanced | power_law:ALPHA");
  sub->add_option("--memory-gb", o->memory_gb,
                  "Memory budget for weights and KV cache, GB (default 1 quick, 4 full)")
      ->check(CLI::Range(0.001, 1e6));  // stated range: PositiveNumber's message prints DBL_MAX
  sub->add_option("--budget-s", o->budget_s,
                  "Wall-time limit, seconds: trims repetitions, then points, to fit; recorded "
                  "in the file (probe.budget). Default 270 on cuda, none on cpu; 0: none")
      ->check(CLI::Range(0.0, 86400.0));
  sub->add_option("--out", o->out, "Calibration file (the log goes to FILE.log.jsonl)");
  add_format_option(*sub, o->format);
  sub->add_flag("--quick", o->quick, "Small token sweep and short timing (smoke run)");
  sub->add_flag("--resume", o->resume, "Keep the rows of an interrupted run from the log");
  sub->add_flag("--no-progress", o->no_progress, "No progress bar");
  sub->add_flag("--no-flush", o->no_flush, "Do not flush caches between repetitions");
  sub->callback([o, &exit_code] { run(*o, exit_code); });
}

}  // namespace moeprobe::cli
