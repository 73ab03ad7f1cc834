// `moeplan perf`: decode, prefill, latency and concurrency for one deployment.
// Model and formulas: docs/performance.md.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <filesystem>
#include <memory>

#include "cli.hpp"
#include "moeplan/calibration.hpp"
#include "moeplan/calibration_check.hpp"
#include "moeplan/deployment.hpp"
#include "moeplan/errors.hpp"
#include "moeplan/layout.hpp"
#include "moeplan/performance.hpp"
#include "moeplan/sizing.hpp"
#include "moeplan/validate_perf.hpp"

namespace moeplan::cli {
namespace {

struct PerfOptions {
  std::string model, gpu, weights, kv, engine, system;  // "" kv / engine: the build defaults
  int gpus = 1;
  long long input = 1024, output = 256, concurrency = 1;
  bool allow_context_extension = false;
  bool force_calibration = false;
  bool sweep = false;
  int tp = 0, ep = 0, pp = 1;
  bool dp_attention = false;
  bool force = false, ignore_fit = false;
  std::string spec = "none", spec_draft_model;
  int spec_tokens = 0;
  double spec_acceptance = -1;
  double routing_skew = 0;
  std::optional<double> sla_tpot_ms, sla_ttft_ms;
  std::string calibration;
  std::string format = "table", out_file;
  std::string deployment;  // "" = one engine group (deployment.hpp)
  std::string arrivals = "steady";
  double request_rate = 0;  // --arrivals once: requests per second (0 = all at once)
  long long prompts = 0;    // --arrivals together: the client's prompts in all (0 = every wave)
  double range_ratio = 1;   // --prompts: lengths in [r·nominal, nominal]
  long long max_num_tokens = 0;      // the run's scheduler token budget (0 = the engine's default)
  int admission_interval_steps = 1;  // the scheduler looks for new requests every N steps
  bool gpus_given = false;
};

Json factor_json(const Factor& f) {
  return {{"value", f.value}, {"evidence", evidence_name(f.evidence)}, {"source", f.source}};
}

Json step_json(const StepBreakdown& s) {
  return {{"bytes_per_gpu", s.bytes_per_gpu},
          {"weight_bytes_per_gpu", s.weight_bytes_per_gpu},
          {"expert_bytes_per_gpu", s.expert_bytes_per_gpu},
          {"kv_bytes_per_gpu", s.kv_bytes_per_gpu},
          {"flops_per_gpu", s.flops_per_gpu},
          {"experts_touched_per_layer", s.experts_touched},
          {"memory_ms", s.memory_s * 1e3},
          {"compute_ms", s.compute_s * 1e3},
          {"communication_ms", s.comm_s * 1e3},
          {"overhead_ms", s.overhead_s * 1e3},
          {"step_ms", s.time_s * 1e3},
          {"bound", bound_name(s.bound)}};
}

Json result_json(const PerfResult& r) {
  Json j;
  j["decode"] = {{"tpot_ms", r.decode.tpot_ms},
                 {"output_tokens_per_s", r.decode.output_tokens_per_s},
                 {"per_request_tokens_per_s", r.decode.per_request_tokens_per_s},
                 {"total_tokens_per_s", r.decode.total_tokens_per_s},
                 {"batch", r.decode.batch},
                 {"tokens_per_step", r.decode.tokens_per_step},
                 {"single_stream_roofline_tokens_per_s", r.decode.roofline_tokens_per_s},
                 {"step", step_json(r.decode.step)}};
  j["prefill"] = {{"tokens_per_s", r.prefill.tokens_per_s},
                  {"ttft_ms", r.prefill.ttft_ms},
                  {"ttft_alone_ms", r.prefill.ttft_alone_ms},
                  {"aggregate_tokens_per_s", r.prefill.aggregate_tokens_per_s},
                  {"chunk_tokens", r.prefill.chunk_tokens},
                  {"chunks", r.prefill.chunks},
                  {"bound", bound_name(r.prefill.bound)}};
  j["bound"] = bound_name(r.bound);
  return j;
}

void add_published(Report& rep, Json& j, const PerfOptions& o, const PerfRequest& req) {
  Json arr = Json::array();
  // Predicted as this run predicts: with its calibration, when one is given.
  const auto rows = published_comparisons(catalog(), req.model->id, req.device->id, req.gpus,
                                          o.weights, req.engine->id, req.calibration);
  if (rows.empty()) {
    j["published"] = arr;
    return;
  }
  Table t{"published",
          "Published measurements of this configuration (data/benchmarks/published.csv)",
          {"metric", "input", "output", "concurrency", "measured", "predicted here", "for that row",
           "source"},
          {},
          {}};
  for (const auto& [b, p] : rows) {
    t.add({metric_name(b->metric), b->input_tokens ? Cell(*b->input_tokens) : Cell(),
           b->output_tokens ? Cell(*b->output_tokens) : Cell(),
           b->concurrency ? Cell(*b->concurrency) : Cell("saturated"), Cell(b->value, 1),
           p.predicted ? Cell(*p.predicted, 1) : Cell(p.reason),
           p.predicted ? Cell(fmt::format("{:+.0f}%", p.error_pct)) : Cell(), b->source});
    arr.push_back({{"metric", metric_name(b->metric)},
                   {"input_tokens", b->input_tokens ? Json(*b->input_tokens) : Json(nullptr)},
                   {"output_tokens", b->output_tokens ? Json(*b->output_tokens) : Json(nullptr)},
                   {"concurrency", b->concurrency ? Json(*b->concurrency) : Json(nullptr)},
                   {"measured", b->value},
                   {"predicted", p.predicted ? Json(*p.predicted) : Json(nullptr)},
                   {"error_pct", p.predicted ? Json(p.error_pct) : Json(nullptr)},
                   {"source", b->source}});
  }
  rep.tables.push_back(t);
  j["published"] = arr;
}

// Layout rules (docs/performance.md § Layout rules): a clear error naming the broken rule.
void check_perf_layout(const PerfRequest& req, const PerfOptions& o, const Catalog& cat) {
  (void)cat;
  const ResolvedLayout l = resolve_layout(
      *req.model, req.gpus, effective_layout(*req.engine, *req.topology, req.gpus, req.layout));
  if (const auto broken =
          check_layout(*req.model, *req.device, *req.topology, *req.engine, l, req.gpus, o.force))
    throw Error(fmt::format("perf: layout tp={} pp={} dp={} ep={} breaks rule {}: {}", l.tp, l.pp,
                            l.dp, l.ep, broken->rule, broken->message));
}

// A prompt beyond the trained context is an error; --allow-context-extension admits it only up to
// the context-extension method the catalog records for the model (YaRN and the like), never
// beyond, and never for a model that declares none.
void check_context(const Model& m, long long input, long long output, bool allow_extension) {
  const auto why = context_refusal(m, input, output, allow_extension);
  if (!why) return;
  // The flag's hint: without it, the model's extension may reach; with it, nothing else can.
  const std::string hint =
      allow_extension ? ""
      : m.context_extension
          ? "; give --allow-context-extension to use the model's context-extension method"
          : "";
  throw Error("perf: " + *why + hint);
}

// "" when the weights (and activations) fit each GPU, else fit's numbers in one sentence.
std::string check_perf_fit(const PerfRequest& req, const Catalog& cat) {
  if (req.device->memory_gb <= 0) return "";  // a calibrated device of unknown memory
  const FitRequest fq = fit_request_for(req, cat);
  const FitResult fr = fit(fq, cat);
  const GpuMemory& g = fr.per_gpu.front();
  if (g.weights_bytes + g.activation_bytes <= g.capacity_bytes) return "";
  // The draft model's share is counted with the weights here, not as room taken away.
  const double draft = fq.draft_weights_gb_per_gpu * 1e9;
  return fmt::format(
      "does not fit: needs {:.1f} GB per GPU, has {:.1f} ({:.1f} GB weights{} + {:.1f} GB "
      "activations per GPU; {:.0f} GB × {:.0f}% usable on each of {} × {})",
      (g.weights_bytes + draft + g.activation_bytes) / 1e9, (g.capacity_bytes + draft) / 1e9,
      g.weights_bytes / 1e9,
      draft > 0
          ? fmt::format(" + {:.1f} GB of the draft model {}", draft / 1e9, req.spec.draft_model->id)
          : std::string(),
      g.activation_bytes / 1e9, fr.device_memory_bytes / 1e9, req.engine->memory_utilization * 100,
      req.gpus, req.device->id);
}

// --sla-tpot-ms / --sla-ttft-ms on one estimate (a sweep judges every point itself): whether the
// estimate meets them, in the report and the JSON, so that an SLA asked is never ignored.
void add_sla_verdict(Report& rep, Json& j, const PerfOptions& o, double tpot_ms, double ttft_ms) {
  if (!o.sla_tpot_ms && !o.sla_ttft_ms) return;
  std::vector<std::string> missed;
  if (o.sla_tpot_ms && tpot_ms > *o.sla_tpot_ms)
    missed.push_back(fmt::format("TPOT {:.2f} ms > {:g} ms", tpot_ms, *o.sla_tpot_ms));
  if (o.sla_ttft_ms && ttft_ms > *o.sla_ttft_ms)
    missed.push_back(fmt::format("TTFT {:.1f} ms > {:g} ms", ttft_ms, *o.sla_ttft_ms));
  std::string what;
  for (const auto& m : missed) what += (what.empty() ? "" : "; ") + m;
  rep.messages.push_back(missed.empty()
                             ? fmt::format("SLA met at concurrency {}", o.concurrency)
                             : fmt::format("SLA MISSED at concurrency {}: {} (--sweep finds the "
                                           "concurrencies that meet it)",
                                           o.concurrency, what));
  j["sla"] = {{"tpot_ms", o.sla_tpot_ms ? Json(*o.sla_tpot_ms) : Json(nullptr)},
              {"ttft_ms", o.sla_ttft_ms ? Json(*o.sla_ttft_ms) : Json(nullptr)},
              {"meets_sla", missed.empty()},
              {"missed", missed}};
}

// `--deployment dp:R | pd:PxG+DxG`: replicas or prefill/decode workers (docs/performance.md
// §Deployments). Figures are the whole deployment's; the groups' details follow.
void run_deployment(const PerfOptions& o, const PerfRequest& req, const Deployment& dep,
                    const std::string& cal_file) {
  const Catalog& cat = catalog();
  const DeploymentResult r = estimate_deployment(req, dep, cat);
  const bool pd = dep.kind == Deployment::Kind::disaggregated;
  Report rep;
  rep.title = fmt::format("perf: {} on {} × {} ({}), deployment {}, {} in / {} out",
                          req.model->name, req.gpus, req.device->name, req.engine->name,
                          deployment_label(dep), o.input, o.output);
  rep.meta = output_meta(cal_file);
  Table s{"summary",
          fmt::format("Whole deployment at concurrency {}", o.concurrency),
          {"item", "value", "unit"},
          {},
          {}};
  s.add({"deployment", deployment_label(dep), ""});
  s.add({"TTFT (mean)", Cell(r.ttft_ms, 1), "ms"});
  s.add({"TPOT", Cell(r.tpot_ms, 2), "ms"});
  s.add({"per-request decode", Cell(r.per_request_tokens_per_s, 1), "tok/s"});
  s.add({"aggregate output", Cell(r.output_tokens_per_s, 1), "tok/s"});
  s.add({"aggregate total (input + output)", Cell(r.total_tokens_per_s, 1), "tok/s"});
  s.add({pd ? "sequences decoding per decode worker" : "sequences decoding per replica",
         Cell(r.batch_per_group, 1), ""});
  if (pd) {
    s.add({"decode slots per worker (KV memory, engine max_num_seqs)", Cell(r.decode_slots),
           "sequences"});
    s.add({"prefill pool capacity", Cell(r.prefill_capacity_per_s, 2), "prompts/s"});
    s.add({"prefill pool utilization", Cell(r.prefill_utilization * 100, 1), "%"});
    s.add({"prompt alone on a prefill worker", Cell(r.prefill_worker.prefill.ttft_alone_ms, 1),
           "ms"});
    s.add({"KV hand-off per prompt", Cell(r.kv_transfer_ms, 2), "ms"});
    s.add({"wait for a decode slot (in TTFT)", Cell(r.queue_ms, 1), "ms"});
  }
  s.add({"bound (decode step)", bound_name(r.group.bound), ""});
  rep.tables.push_back(s);
  Json j;
  j["inputs"] = {{"model", req.model->id},
                 {"gpu", req.device->id},
                 {"gpus", req.gpus},
                 {"engine", req.engine->id},
                 {"kv", req.kv_precision},
                 {"input_tokens", o.input},
                 {"output_tokens", o.output},
                 {"concurrency", o.concurrency},
                 {"deployment", deployment_label(dep)},
                 {"calibration", cal_file.empty() ? Json(nullptr) : Json(cal_file)}};
  j["deployment"] = {{"ttft_ms", r.ttft_ms},
                     {"tpot_ms", r.tpot_ms},
                     {"per_request_tokens_per_s", r.per_request_tokens_per_s},
                     {"output_tokens_per_s", r.output_tokens_per_s},
                     {"total_tokens_per_s", r.total_tokens_per_s},
                     {"batch_per_group", r.batch_per_group},
                     {"decode_slots_per_worker", r.decode_slots},
                     {"prefill_capacity_prompts_per_s", r.prefill_capacity_per_s},
                     {"prefill_utilization", r.prefill_utilization},
                     {"kv_transfer_ms", r.kv_transfer_ms},
                     {"decode_slot_wait_ms", r.queue_ms},
                     {"decode_step", step_json(r.group.decode.step)}};
  j["notes"] = r.notes;
  for (const auto& n : r.notes) rep.messages.push_back("note: " + n);
  add_sla_verdict(rep, j, o, r.tpot_ms, r.ttft_ms);
  rep.messages.push_back(fmt::format(
      "evidence: default ({}; deployments are not matched to published rows here — see `moeplan "
      "validate-perf`)",
      evidence_meaning(Evidence::default_)));
  rep.json = j;
  OutputOptions out;
  out.format = o.format;
  out.output = o.out_file;
  global().inputs.push_back(o.calibration);
  emit(rep, out);
}

// A calibration file, and the reasons not to trust it (used only with --force-calibration).
struct LoadedCalibration {
  std::optional<DeviceCalibration> cal;
  std::vector<std::string> doubts;
  std::string other_model;  // calibration_model_note: measured for another model, what applies
  std::string file() const { return cal ? cal->file : ""; }
};

LoadedCalibration load_perf_calibration(const PerfOptions& o, const Catalog& cat) {
  LoadedCalibration lc;
  if (o.calibration.empty()) return lc;
  const Calibration raw = load_calibration(o.calibration);
  lc.doubts = calibration_doubts(raw);
  lc.other_model = calibration_model_note(raw, cat.model(o.model));
  if (!lc.doubts.empty() && !o.force_calibration)
    throw Error(fmt::format("calibration {}: {}; give --force-calibration to use it anyway",
                            o.calibration, fmt::join(lc.doubts, "; ")));
  const DeviceCalibration measured = device_calibration(raw);
  // A device the catalog knows has a datasheet ridge point to judge the GEMM plateau by (one
  // other than the file's is refused in resolve_device).
  lc.cal = calibration_for(measured, o.model,
                           cat.find_device(o.gpu.empty() ? measured.device_id : o.gpu));
  return lc;
}

// The device: the catalog's, else (with a calibration of a device the catalog lacks) one
// described by its measured figures, kept alive in `synthetic`.
const Device* resolve_device(const PerfOptions& o, const Catalog& cat,
                             const std::optional<DeviceCalibration>& cal,
                             std::unique_ptr<Device>& synthetic) {
  std::string gpu_id = o.gpu;
  if (gpu_id.empty()) {
    if (!cal) throw Error("perf: --gpu is required unless --calibration names the device");
    gpu_id = cal->device_id;
  }
  const Device* d = cat.find_device(gpu_id);
  if (!d && cal && cal->device_id == gpu_id) {
    synthetic = std::make_unique<Device>(device_from_calibration(*cal));
    d = synthetic.get();
  } else if (!d) {
    d = &cat.device(gpu_id);  // throws "did you mean"
  }
  if (cal && cal->device_id != d->id)
    throw Error(fmt::format("perf: calibration {} was measured on '{}', not '{}'", cal->file,
                            cal->device_id, d->id));
  return d;
}

PerfRequest build_request(const PerfOptions& o, const Catalog& cat, const LoadedCalibration& lc,
                          std::unique_ptr<Device>& synthetic) {
  PerfRequest req;
  req.model = &cat.model(o.model);
  // An embedding model or reranker decodes nothing: its throughput is the prefill figure, so
  // perf takes it only as prefill-only work (--output 1, docs/catalogs.md `kind`).
  if (!req.model->is_generative() && o.output > 1)
    throw Error(fmt::format(
        "perf: '{}' has kind {} (data/models.json) and generates no tokens: "
        "give --output 1 for its prefill throughput, or plan it as a menu "
        "workload with \"kind\": \"{}\" (docs/scenario.md)",
        req.model->id, model_kind_name(req.model->kind), model_kind_name(req.model->kind)));
  req.device = resolve_device(o, cat, lc.cal, synthetic);
  req.gpus = o.gpus;
  req.weights = o.weights.empty() ? PrecisionMix{}
                                  : parse_weight_spec(o.weights, req.model->native_precision, cat);
  const PrecisionMix& mix = req.weights.empty() ? req.model->native_precision : req.weights;
  req.engine = &cat.engine(o.engine.empty() ? default_engine_id(*req.device, mix, cat) : o.engine);
  req.kv_precision = o.kv.empty() ? default_kv_precision(*req.device, *req.engine) : o.kv;
  (void)cat.kv_format(req.kv_precision);
  // As plan, menu and recommend leave such builds out (data/engines.json weight_formats).
  if (auto why = unserved_format(*req.engine, mix, req.kv_precision))
    throw Error("perf: " + *why + " (data/engines.json; give --engine or --weights)");
  req.layout = Layout{o.tp, o.pp, o.ep, o.dp_attention};
  req.topology =
      o.system.empty() ? topology_for(cat, *req.device) : topology_of(cat.system(o.system));
  if (!o.system.empty() && cat.system(o.system).device != req.device->id)
    throw Error(fmt::format("perf: system {} holds {}, not {}", o.system,
                            cat.system(o.system).device, req.device->id));
  req.input_tokens = o.input;
  req.output_tokens = o.output;
  check_context(*req.model, o.input, o.output, o.allow_context_extension);
  req.concurrency = o.concurrency;
  req.spec.method = parse_spec_method(o.spec);
  req.spec.tokens = o.spec_tokens;
  req.spec.acceptance = o.spec_acceptance;
  if (!o.spec_draft_model.empty()) req.spec.draft_model = &cat.model(o.spec_draft_model);
  req.routing_skew = o.routing_skew;
  req.arrivals = parse_arrivals_mode(o.arrivals).value_or(Arrivals::steady);  // CLI11 checked it
  if (o.request_rate > 0 && req.arrivals != Arrivals::once)
    throw Error(
        "perf: --request-rate applies to --arrivals once (one wave of --concurrency "
        "requests)");
  req.request_rate_per_s = o.request_rate;
  if (o.prompts > 0 && req.arrivals != Arrivals::together)
    throw Error(
        "perf: --prompts applies to --arrivals together (a client's run of N prompts with "
        "--concurrency in flight, simulated)");
  if (o.prompts > 0 && o.prompts < o.concurrency)
    throw Error(fmt::format("perf: --prompts {} is fewer than the {} requests in flight", o.prompts,
                            o.concurrency));
  if (o.range_ratio < 1 && o.prompts == 0)
    throw Error("perf: --range-ratio describes the lengths of a client's --prompts: give both");
  req.prompts = o.prompts;
  req.range_ratio = o.range_ratio;
  req.max_num_tokens = o.max_num_tokens;
  req.admission_interval_steps = o.admission_interval_steps;
  req.calibration = lc.cal ? &*lc.cal : nullptr;
  return req;
}

// --tp/--pp/--ep/--dp-attention describe each replica or worker: every group obeys the layout
// rules on its own GPU count.
void check_deployment_layouts(const PerfOptions& o, const PerfRequest& req, const Deployment& dep,
                              const Catalog& cat) {
  std::vector<int> groups{req.gpus / std::max(1, dep.replicas)};
  if (dep.kind == Deployment::Kind::disaggregated) groups = {dep.prefill_gpus, dep.decode_gpus};
  for (int g : groups) {
    PerfRequest one = req;
    one.gpus = std::max(1, g);
    check_perf_layout(one, o, cat);
  }
}

Table summary_table(const PerfOptions& o, const PerfRequest& req, const PerfResult& r) {
  Table s{"summary",
          req.arrivals == Arrivals::once
              ? fmt::format("One wave of {} requests, run to completion (whole-run averages)",
                            o.concurrency)
              : fmt::format("Steady state at concurrency {}", o.concurrency),
          {"item", "value", "unit"},
          {},
          {}};
  s.add({"layout",
         fmt::format("tp={} pp={} dp={} ep={}{}", r.layout.tp, r.layout.pp, r.layout.dp,
                     r.layout.ep, r.layout.dp_attention ? " dp-attention" : ""),
         ""});
  s.add({"topology",
         fmt::format(
             "{} node(s) of {} ({}; scale-up {} × {} GPU(s), scale-out {})",
             nodes_for(*req.topology, o.gpus), req.topology->gpus_per_node,
             req.topology->system_id.empty() ? "derived from the device" : req.topology->system_id,
             scale_up_kind_name(req.topology->scale_up.kind), req.topology->scale_up.domain_gpus,
             req.topology->scale_out.kind),
         ""});
  s.add({"weights / KV precision",
         fmt::format("{} / {}", o.weights.empty() ? "native" : o.weights, req.kv_precision), ""});
  s.add({"TTFT (mean)", Cell(r.prefill.ttft_ms, 1), "ms"});
  s.add({"TPOT", Cell(r.decode.tpot_ms, 2), "ms"});
  s.add({"per-request decode", Cell(r.decode.per_request_tokens_per_s, 1), "tok/s"});
  s.add({"aggregate output", Cell(r.decode.output_tokens_per_s, 1), "tok/s"});
  s.add({"aggregate total (input + output)", Cell(r.decode.total_tokens_per_s, 1), "tok/s"});
  s.add({"sequences decoding per step", Cell(r.decode.batch, 1), ""});
  if (req.spec.method != SpecMethod::none)
    s.add({fmt::format("tokens per step ({} K={} α={:.2f})", spec_method_name(req.spec.method),
                       r.spec_tokens, r.spec_acceptance),
           Cell(r.decode.tokens_per_step, 2), "tokens"});
  s.add({"prefill, one request", Cell(r.prefill.tokens_per_s, 0), "tok/s"});
  s.add({"TTFT, one request on an idle system", Cell(r.prefill.ttft_alone_ms, 1), "ms"});
  s.add({"single-stream bandwidth roofline", Cell(r.decode.roofline_tokens_per_s, 1), "tok/s"});
  s.add({"bound (steady-state step)", bound_name(r.bound), ""});
  return s;
}

Table step_table(const Model& m, const PerfResult& r) {
  const StepBreakdown& st = r.decode.step;
  Table b{"step", "Decode step breakdown (most loaded GPU)", {"term", "value", "unit"}, {}, {}};
  b.add({"weights read", Cell(st.weight_bytes_per_gpu / 1e9, 3), "GB"});
  b.add({"  of which routed experts", Cell(st.expert_bytes_per_gpu / 1e9, 3), "GB"});
  if (m.is_moe())
    b.add({"experts touched per MoE layer", Cell(st.experts_touched, 1),
           fmt::format("of {}", m.moe->routed_experts)});
  b.add({"KV read", Cell(st.kv_bytes_per_gpu / 1e9, 3), "GB"});
  b.add({"FLOPs", Cell(st.flops_per_gpu / 1e12, 3), "TFLOP"});
  b.add({"memory time", Cell(st.memory_s * 1e3, 3), "ms"});
  b.add({"compute time", Cell(st.compute_s * 1e3, 3), "ms"});
  b.add({"communication", Cell(st.comm_s * 1e3, 3), "ms"});
  b.add({"fixed overhead", Cell(st.overhead_s * 1e3, 3), "ms"});
  b.add({"step", Cell(st.time_s * 1e3, 3), "ms"});
  return b;
}

// The efficiency factors in print order: table label, JSON key, factor.
struct NamedFactor {
  const char* label;
  const char* key;
  const Factor& factor;
};
std::vector<NamedFactor> named_factors(const PerfResult& r) {
  return {{"device bandwidth", "device_bandwidth", r.eff.dev_bw},
          {"device compute", "device_compute", r.eff.dev_compute},
          {"device link", "device_link", r.eff.dev_link},
          {"collective latency (µs)", "collective_latency_us", r.eff.link_latency_us},
          {"engine bandwidth", "engine_bandwidth", r.eff.eng_bw},
          {"engine GEMM", "engine_gemm", r.eff.eng_compute},
          {"engine attention", "engine_attention", r.eff.eng_attention},
          {"step overhead (ms)", "step_overhead_ms", r.eff.step_overhead_ms},
          {"layer overhead (µs)", "layer_overhead_us", r.eff.layer_overhead_us},
          {"MoE layer overhead (µs)", "moe_layer_overhead_us", r.eff.moe_layer_overhead_us},
          {"prefill chunk (tokens)", "prefill_chunk_tokens", r.eff.prefill_chunk_tokens}};
}

// Efficiencies (device layer × engine layer), and what a calibration fed, term by term; a kernel
// class below the quality floor is listed as "not used" with the reason (docs/probe.md, "What the
// planner takes from the probe").
void add_efficiencies(Report& rep, Json& j, const PerfResult& r,
                      const std::optional<DeviceCalibration>& cal) {
  Table e{"efficiencies",
          "Efficiencies (device layer × engine layer)",
          {"factor", "value", "evidence", "source"},
          {},
          {}};
  Json ej = Json::object();
  for (const auto& f : named_factors(r)) {
    e.add({f.label, Cell(f.factor.value, 3), evidence_name(f.factor.evidence), f.factor.source});
    ej[f.key] = factor_json(f.factor);
  }
  if (cal) {
    Json tj = Json::array();
    for (const auto& t : cal->terms) {
      e.add({"calibration: " + t.term, t.value ? Cell(*t.value, 3) : Cell("—"),
             t.used ? "measured" : "not used", t.rows + "; " + t.note});
      tj.push_back({{"term", t.term},
                    {"rows", t.rows},
                    {"used", t.used},
                    {"value", t.value ? Json(*t.value) : Json(nullptr)},
                    {"note", t.note}});
    }
    ej["calibration_terms"] = tj;
  }
  rep.tables.push_back(e);
  j["efficiencies"] = ej;
}

Json inputs_json(const PerfOptions& o, const PerfRequest& req, const PerfResult& r) {
  return {
      {"model", req.model->id},
      {"gpu", req.device->id},
      {"gpus", o.gpus},
      {"weights", o.weights.empty() ? Json("native") : Json(o.weights)},
      {"kv", req.kv_precision},
      {"engine", req.engine->id},
      {"system", req.topology->system_id.empty() ? Json(nullptr) : Json(req.topology->system_id)},
      {"nodes", nodes_for(*req.topology, o.gpus)},
      {"input_tokens", o.input},
      {"output_tokens", o.output},
      {"concurrency", o.concurrency},
      {"arrivals", o.arrivals},
      {"request_rate_per_s", o.request_rate > 0 ? Json(o.request_rate) : Json(nullptr)},
      {"prompts", o.prompts > 0 ? Json(o.prompts) : Json(nullptr)},
      {"range_ratio", o.range_ratio},
      {"max_num_tokens", o.max_num_tokens > 0 ? Json(o.max_num_tokens) : Json(nullptr)},
      {"admission_interval_steps", o.admission_interval_steps},
      {"sweep", o.sweep},
      {"layout",
       {{"tp", r.layout.tp},
        {"pp", r.layout.pp},
        {"dp", r.layout.dp},
        {"ep", r.layout.ep},
        {"dp_attention", r.layout.dp_attention}}},
      {"spec",
       {{"method", spec_method_name(req.spec.method)},
        {"tokens", r.spec_tokens},
        {"acceptance", r.spec_acceptance}}},
      {"routing_skew", o.routing_skew},
      {"sla_tpot_ms", o.sla_tpot_ms ? Json(*o.sla_tpot_ms) : Json(nullptr)},
      {"sla_ttft_ms", o.sla_ttft_ms ? Json(*o.sla_ttft_ms) : Json(nullptr)},
      {"calibration", req.calibration ? Json(req.calibration->file) : Json(nullptr)}};
}

// The links the layout's collectives cross (docs/performance.md § Communication).
void add_links(Report& rep, Json& j, const PerfRequest& req, const PerfResult& r) {
  const Links k = links_for(*req.topology, *req.device, r.eff, req.calibration);
  auto link_json = [](const Link& l) {
    return Json{{"kind", l.kind}, {"gb_s_per_gpu", l.gb_s}, {"latency_us", l.latency_us}};
  };
  j["links"] = {{"scale_up", link_json(k.scale_up)}, {"scale_out", link_json(k.scale_out)}};
  rep.messages.push_back(
      fmt::format("links: scale-up {} {:.1f} GB/s per GPU, {:.0f} µs per collective; scale-out {} "
                  "{:.2f} GB/s per GPU, {:.0f} µs",
                  k.scale_up.kind, k.scale_up.gb_s, k.scale_up.latency_us, k.scale_out.kind,
                  k.scale_out.gb_s, k.scale_out.latency_us));
}

// --sweep: concurrency from 1 to the KV-memory limit, with the knee and the best point within
// the SLA.
void add_sweep(Report& rep, Json& j, const PerfOptions& o, const PerfRequest& req,
               const Catalog& cat) {
  Sla sla{o.sla_tpot_ms, o.sla_ttft_ms};
  const SweepResult sw = sweep(req, cat, sla);
  Table t{
      "sweep",
      fmt::format("Concurrency sweep (up to {} requests of {} tokens: KV memory holds {}, "
                  "engine max_num_seqs {})",
                  sw.max_concurrency, o.input + o.output, sw.limit.kv_limit, sw.limit.max_num_seqs),
      {"concurrency", "TTFT ms", "TPOT ms", "per-request tok/s", "output tok/s", "total tok/s",
       "bound", "mark"},
      {},
      {}};
  Json arr = Json::array();
  for (const auto& p : sw.points) {
    std::string mark;
    if (p.concurrency == sw.knee_concurrency) mark = "knee";
    if (sw.best_sla_concurrency && p.concurrency == *sw.best_sla_concurrency)
      mark += mark.empty() ? "best within SLA" : ", best within SLA";
    if ((o.sla_tpot_ms || o.sla_ttft_ms) && !p.meets_sla)
      mark += mark.empty() ? "misses SLA" : ", misses SLA";
    const auto& rr = p.result;
    t.add({p.concurrency, Cell(rr.prefill.ttft_ms, 0), Cell(rr.decode.tpot_ms, 1),
           Cell(rr.decode.per_request_tokens_per_s, 1), Cell(rr.decode.output_tokens_per_s, 0),
           Cell(rr.decode.total_tokens_per_s, 0), bound_name(rr.bound), mark});
    Json pj = result_json(rr);
    pj["concurrency"] = p.concurrency;
    pj["meets_sla"] = p.meets_sla;
    arr.push_back(pj);
  }
  rep.tables.push_back(t);
  j["sweep"] = {{"points", arr},
                {"max_concurrency", sw.max_concurrency},
                {"kv_limit", sw.limit.kv_limit},
                {"max_num_seqs", sw.limit.max_num_seqs},
                {"knee_concurrency", sw.knee_concurrency},
                {"best_sla_concurrency",
                 sw.best_sla_concurrency ? Json(*sw.best_sla_concurrency) : Json(nullptr)},
                {"limit", sw.limit_reason}};
  rep.messages.push_back(fmt::format(
      "knee at concurrency {} (largest aggregate × per-request tok/s); KV memory allows {}{}",
      sw.knee_concurrency, sw.limit.kv_limit,
      sw.limit.engine_binds()
          ? fmt::format(", the engine's max_num_seqs {} (data/engines.json) caps the sweep there",
                        sw.limit.max_num_seqs)
          : std::string()));
  if (o.sla_tpot_ms || o.sla_ttft_ms) {
    if (sw.best_sla_concurrency)
      rep.messages.push_back(
          fmt::format("best within SLA: concurrency {}", *sw.best_sla_concurrency));
    else
      rep.messages.push_back("no swept concurrency meets the SLA");
  }
}

// A build that does not fit (--ignore-fit) is said at the top of every format: the title (table,
// md), a first section (csv), and the first member of the JSON payload.
void add_fit_warning(Report& rep, Json& j, const std::string& no_fit) {
  if (no_fit.empty()) return;
  rep.title = "NOT A DEPLOYABLE BUILD (--ignore-fit): " + rep.title;
  Table w{"does_not_fit", "NOT A DEPLOYABLE BUILD (--ignore-fit)", {"warning"}, {}, {}};
  w.add({no_fit + "; figures below assume it did"});
  rep.tables.push_back(w);
  rep.messages.push_back("warning: " + no_fit + "; figures below assume it did (--ignore-fit)");
  j["does_not_fit"] = no_fit + "; figures assume it did (--ignore-fit)";
}

// A measured class the planner refused is said once more among the messages; a forced
// calibration's doubts in every output. Another model's file gets one line for its shape-keyed
// curves, not one per curve (the efficiencies table still gives each curve's own reason).
void add_calibration_messages(Report& rep, const LoadedCalibration& lc) {
  const bool other_model = !lc.other_model.empty();
  if (other_model) rep.messages.push_back("calibration: " + lc.other_model);
  if (lc.cal)
    for (const auto& t : lc.cal->terms)
      if (!t.used && t.note.rfind("not used:", 0) == 0 && !(other_model && t.shape_keyed))
        rep.messages.push_back(fmt::format("calibration: {} ({}) {}", t.term, t.rows, t.note));
  for (const auto& doubt : lc.doubts)
    rep.messages.push_back("WARNING: calibration used with --force-calibration although " + doubt);
}

void add_evidence(Report& rep, Json& j, Evidence tier, const PerfResult& r) {
  j["evidence"] = evidence_name(tier);
  j["notes"] = r.notes;
  rep.messages.push_back(fmt::format("evidence: {} ({}{})", evidence_name(tier),
                                     evidence_meaning(tier),
                                     tier == Evidence::published ? " (table above)" : ""));
  rep.messages.push_back(fmt::format("bound: {}", bound_name(r.bound)));
  for (const auto& n : r.notes) rep.messages.push_back("note: " + n);
}

void run_perf(const PerfOptions& o) {
  const Catalog& cat = catalog();
  const LoadedCalibration lc = load_perf_calibration(o, cat);
  std::unique_ptr<Device> synthetic;  // a calibrated device the catalog lacks
  PerfRequest req = build_request(o, cat, lc, synthetic);
  const Deployment dep = parse_deployment(o.deployment);
  if (dep.kind != Deployment::Kind::single) {
    if (dep.kind == Deployment::Kind::disaggregated && !o.gpus_given)
      req.gpus = deployment_gpus(dep, req.gpus);
    check_deployment_layouts(o, req, dep, cat);
    return run_deployment(o, req, dep, lc.file());
  }
  check_perf_layout(req, o, cat);
  const std::string no_fit = check_perf_fit(req, cat);
  if (!no_fit.empty() && !o.ignore_fit)
    throw CheckFailed(no_fit + " (see `moeplan fit`; --ignore-fit estimates anyway)");
  const PerfResult r = estimate(req, cat);

  Report rep;
  rep.title = fmt::format("perf: {} on {} × {} ({}), {} in / {} out", req.model->name, o.gpus,
                          req.device->name, req.engine->name, o.input, o.output);
  Json j;
  add_fit_warning(rep, j, no_fit);
  rep.meta = output_meta(lc.file());
  add_calibration_messages(rep, lc);
  // One function decides the tier for perf, plan and recommend.
  const Evidence tier = throughput_evidence(r.evidence, cat, req.model->id, req.device->id, o.gpus,
                                            o.weights, req.engine->id);
  rep.tables.push_back(summary_table(o, req, r));
  rep.tables.push_back(step_table(*req.model, r));
  j["inputs"] = inputs_json(o, req, r);
  const Json rj = result_json(r);
  for (auto it = rj.begin(); it != rj.end(); ++it) j[it.key()] = it.value();
  add_efficiencies(rep, j, r, lc.cal);
  add_links(rep, j, req, r);
  add_published(rep, j, o, req);
  if (o.sweep)
    add_sweep(rep, j, o, req, cat);
  else
    add_sla_verdict(rep, j, o, r.decode.tpot_ms, r.prefill.ttft_ms);
  add_evidence(rep, j, tier, r);
  rep.json = j;
  if (!lc.doubts.empty()) rep.json["calibration_forced_despite"] = lc.doubts;
  if (!lc.other_model.empty()) rep.json["calibration_other_model"] = lc.other_model;
  OutputOptions out;
  out.format = o.format;
  out.output = o.out_file;
  global().inputs.push_back(o.calibration);
  emit(rep, out);
}

void setup(CLI::App& parent) {
  auto o = std::make_shared<PerfOptions>();
  auto* app = parent.add_subcommand(
      "perf", "Decode, prefill, latency and concurrency (docs/performance.md)");
  app->add_option("--model", o->model, "Model id")->required();
  app->add_option("--gpu", o->gpu, "Device id (may be omitted with --calibration)");
  auto* gpus = app->add_option("--gpus", o->gpus, "Number of devices")
                   ->check(CLI::Range(1, 4096))
                   ->capture_default_str();
  app->add_option("--weights", o->weights,
                  "Weight precision id or per-component mix (default: native)");
  app->add_option("--kv", o->kv,
                  "KV-cache precision id (default: fp8 where the device and engine have it, "
                  "else bf16 — the same default as plan and recommend)");
  app->add_option("--input", o->input, "Prompt tokens per request")
      ->check(CLI::Range(0LL, 100000000LL))
      ->capture_default_str();
  app->add_option("--output", o->output, "Output tokens per request")
      ->check(CLI::Range(1LL, 100000000LL))
      ->capture_default_str();
  auto* conc = app->add_option("--concurrency", o->concurrency, "Concurrent requests")
                   ->check(CLI::Range(1LL, 1000000LL))
                   ->capture_default_str();
  app->add_flag(
      "--force-calibration", o->force_calibration,
      "Use a calibration file although it is too noisy or was measured for another model");
  app->add_flag("--allow-context-extension", o->allow_context_extension,
                "Estimate prompts beyond the model's trained context, up to the context-extension "
                "method the catalog records for it (e.g. YaRN)");
  app->add_flag("--sweep", o->sweep, "Sweep concurrency from 1 to the KV-memory limit")
      ->excludes(conc);
  app->add_option("--tp", o->tp, "Tensor-parallel size")->check(CLI::Range(1, 4096));
  app->add_option("--ep", o->ep, "Expert-parallel size")->check(CLI::Range(1, 4096));
  app->add_option("--pp", o->pp, "Pipeline-parallel size")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app->add_flag("--dp-attention", o->dp_attention,
                "MLA: data-parallel attention (latent KV sharded by sequence)");
  app->add_option("--engine", o->engine,
                  "Engine id (default: vllm on GPUs, llama.cpp on CPUs and unified memory)");
  app->add_option("--system", o->system,
                  "System id (data/systems.json) whose topology the layout runs on (default: the "
                  "catalog's largest system for the device)");
  app->add_flag("--force", o->force,
                "Allow tensor parallelism across scale-up domains (priced over the scale-out "
                "fabric)");
  app->add_flag("--ignore-fit", o->ignore_fit,
                "Estimate a build whose weights do not fit (every output says so)");
  app->add_option("--spec", o->spec, "Speculative decoding")
      ->check(CLI::IsMember({"none", "mtp", "eagle", "draft"}))
      ->capture_default_str();
  app->add_option("--spec-tokens", o->spec_tokens, "Draft length K (default per method)")
      ->check(CLI::Range(1, 64));
  app->add_option("--spec-acceptance", o->spec_acceptance,
                  "Per-position acceptance α (default per method)")
      ->check(CLI::Range(0.0, 0.999));
  app->add_option("--spec-draft-model", o->spec_draft_model, "Draft model id for --spec draft");
  app->add_option("--routing-skew", o->routing_skew,
                  "MoE routing skew s: traffic on (1-s)·E experts")
      ->check(CLI::Range(0.0, 0.99))
      ->capture_default_str();
  app->add_option("--arrivals", o->arrivals,
                  "How the --concurrency requests arrive: 'steady' (a closed loop in its steady "
                  "state), 'together' (waves that start at once, as benchmark_serving "
                  "--max-concurrency), 'once' (one wave run to completion: whole-run averages)")
      ->check(CLI::IsMember({"steady", "together", "once"}))
      ->capture_default_str();
  app->add_option("--request-rate", o->request_rate,
                  "--arrivals once: requests arriving per second (default: all at once)")
      ->check(CLI::Range(1e-6, 1e9));
  auto* prompts =
      app->add_option("--prompts", o->prompts,
                      "--arrivals together: prompts the client sends in all (benchmark_serving "
                      "--num-prompts), --concurrency in flight: the run is simulated step by step "
                      "(default: the steady-state form, every wave together)")
          ->check(CLI::Range(1LL, 65536LL));
  app->add_option("--range-ratio", o->range_ratio,
                  "--prompts: lengths drawn uniformly from ratio × --input/--output to the full "
                  "length (benchmark_serving --random-range-ratio; default 1: fixed lengths)")
      ->check(CLI::Range(0.01, 1.0));
  app->add_option("--admission-interval-steps", o->admission_interval_steps,
                  "Steps between the scheduler's looks for new requests while a batch runs "
                  "(SGLang --scheduler-recv-interval, --num-continuous-decode-steps; default 1)")
      ->check(CLI::Range(1, 1000000));
  app->add_option("--max-num-tokens", o->max_num_tokens,
                  "Scheduler token budget per step as the server is launched (TensorRT-LLM "
                  "--max_num_tokens, SGLang --chunked-prefill-size, vLLM "
                  "--max-num-batched-tokens; default: the engine's prefill_chunk_tokens)")
      ->check(CLI::Range(1LL, 100000000LL));
  app->add_option("--sla-tpot-ms", o->sla_tpot_ms, "SLA: largest acceptable TPOT, ms")
      ->check(CLI::Range(0.001, 1e9));
  app->add_option("--sla-ttft-ms", o->sla_ttft_ms, "SLA: largest acceptable mean TTFT, ms")
      ->check(CLI::Range(0.001, 1e12));
  app->add_option("--calibration", o->calibration,
                  "Calibration file from moeprobe (replaces the device layer)")
      ->check(CLI::ExistingFile);
  app->add_option("--format", o->format, "Output format")
      ->check(CLI::IsMember({"table", "json", "csv", "md"}))
      ->capture_default_str();
  app->add_option("--out-file,--output-file,-o", o->out_file,
                  "Write to FILE (atomically) instead of stdout");
  auto* dep = app->add_option(
      "--deployment", o->deployment,
      "More than one engine group: 'dp:R' (R replicas of --gpus/R GPUs) or 'pd:PxG+DxG' "
      "(P prefill workers and D decode workers of G GPUs each; 'a' after the decode GPUs: "
      "DP-attention); --tp/--pp/--ep/--dp-attention then describe each replica or worker, "
      "docs/performance.md §Deployments");
  for (const char* x : {"--sweep", "--ignore-fit"}) dep->excludes(x);
  prompts->excludes("--sweep");  // a client's run has one concurrency
  app->callback([o, gpus] {
    o->gpus_given = gpus->count() > 0;
    run_perf(*o);
  });
}

const RegisterCommand reg("perf", setup);

}  // namespace
}  // namespace moeplan::cli
