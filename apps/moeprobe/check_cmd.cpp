// moeprobe check: correctness only (every op against its reference).
#include <iostream>

#include "moeplan/report.hpp"
#include "moeprobe/harness.hpp"
#include "moeprobe/shapes.hpp"
#include "probe_cli.hpp"

namespace moeprobe::cli {

namespace {

struct CheckCmdOptions {
  std::vector<std::string> models;
  std::string format = "table";
  std::string backend = "cpu", dtype = "fp32", kv_dtype = "same", distribution = "balanced";
};

void run(const CheckCmdOptions& o, int& exit_code) {
  auto backend = make_backend(o.backend, global().threads);
  const DType d = parse_dtype(o.dtype);
  const KvDType kv = parse_kv_dtype(o.kv_dtype);
  const Distribution dist = Distribution::parse(o.distribution);
  std::vector<std::string> ids = o.models;
  if (ids.empty()) ids = synthetic_model_ids();
  moeplan::Report rep;
  rep.title = "moeprobe check (" + backend->name() + ", " + o.dtype +
              (kv == KvDType::fp8 ? ", kv fp8" : "") + ")";
  bool ok = true;
  for (const auto& id : ids) {
    const moeplan::Model m = model(id);
    moeplan::Table t;
    t.name = id;
    t.title = "Model " + id;
    t.columns = {"op", "shape", "tokens", "max err", "limit", "result"};
    const CheckResult r = run_check(m, *backend, d, dist, {}, kv);
    for (const auto& row : r.rows) {
      const bool chained = row.op.rfind("layer", 0) == 0;
      t.add({row.op, row.shape, row.tokens, moeplan::Cell(row.check.max_err, -1),
             moeplan::Cell(error_limit(d, chained ? OpKind::chained : OpKind::simple, kv), -1),
             row.check.ok ? std::string("ok") : "FAIL: " + row.check.detail});
    }
    ok = ok && r.ok();
    rep.tables.push_back(t);
  }
  rep.messages.push_back(ok ? "all ops match their references"
                            : "MISMATCH: see the FAIL rows above");
  rep.meta.tool_version = moeplan::tool_version();
  rep.meta.git_sha = moeplan::git_sha();
  std::cout << moeplan::render(rep, moeplan::parse_format(o.format));
  exit_code = ok ? 0 : kExitVerification;
}

}  // namespace

void setup_check(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<CheckCmdOptions>();
  CLI::App* sub =
      app.add_subcommand("check", "Correctness only: every op against its float64 reference");
  sub->add_option("--model", o->models, "Model ids (default: the built-in synthetic models)");
  sub->add_option("--backend", o->backend, "cpu | cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  sub->add_option("--dtype", o->dtype, "Weight and KV storage type")
      ->check(CLI::IsMember({"fp32", "bf16"}));
  sub->add_option("--kv-dtype", o->kv_dtype,
                  "KV cache storage: same (as --dtype) | fp8 (e4m3, per-tensor scale 1/32)")
      ->check(CLI::IsMember({"same", "fp8"}));
  sub->add_option("--distribution", o->distribution, "balanced | power_law:ALPHA");
  add_format_option(*sub, o->format);
  sub->callback([o, &exit_code] { run(*o, exit_code); });
}

}  // namespace moeprobe::cli
