// `moeplan fit`: will this model fit on these GPUs, and with how much room.
#include <fmt/format.h>

#include "cli.hpp"
#include "moeplan/errors.hpp"
#include "moeplan/layout.hpp"
#include "moeplan/performance.hpp"
#include "moeplan/sizing.hpp"

namespace moeplan::cli {
namespace {

struct FitOptions {
  std::string model, gpu, weights, kv, engine;  // "" kv / engine: the build defaults
  int gpus = 1;
  std::string context;  // "" = the working context, "max" = the model's trained context
  long long concurrency = 1;
  bool force = false;
  int tp = 0, ep = 0, pp = 1;
  bool dp_attention = false, include_mtp = false;
  double mem_util = -1, reserve_gb = 0;
  std::optional<double> activation_gb, gpu_memory_gb, weights_gb, kv_bytes_per_token;
  OutputOptions out;
};

Report build_report(const FitOptions& o, const FitResult& r, int min_gpus, const Model& m,
                    const Device& d, const std::string& engine_id) {
  Report rep;
  rep.title = fmt::format("fit: {} on {} × {}", m.name, o.gpus, d.name);
  rep.meta = output_meta();
  constexpr double GB = 1e9;

  Table w{"weights", "Weights by component", {"component", "precision", "bytes", "GB"}, {}, {}};
  for (Component c : kComponents) {
    const double b = r.weights_bytes_by_component.at(c);
    if (b <= 0) continue;
    w.add({component_name(c), r.weights.at(c), b, Cell(b / GB, 2)});
  }
  w.add({"total", "", r.weights_bytes, Cell(r.weights_bytes / GB, 2)});
  rep.tables.push_back(w);

  Table s{"summary", "Fit", {"item", "value", "unit"}, {}, {}};
  s.add({"fits", r.fits, ""});
  s.add({"layout",
         fmt::format("tp={} pp={} dp={} ep={}", r.layout.tp, r.layout.pp, r.layout.dp, r.layout.ep),
         ""});
  s.add({"kv precision", r.kv_precision, ""});
  s.add({"kv bytes per token", Cell(r.kv_bytes_per_token, 0), "bytes"});
  s.add({"context", r.context_tokens, "tokens"});
  s.add({"concurrency", r.concurrency, "sequences"});
  s.add({"kv for context × concurrency", Cell(r.kv_bytes_total / GB, 2), "GB"});
  s.add({"capacity (all GPUs)", Cell(r.capacity_bytes / GB, 1), "GB"});
  s.add({"max concurrency at context", r.max_concurrency, "sequences"});
  s.add({"max context at concurrency", r.max_context_tokens, "tokens"});
  s.add({"min GPUs of this device", min_gpus, "GPUs"});
  rep.tables.push_back(s);

  Table g{"per_gpu",
          "Per GPU",
          {"gpu", "stage", "capacity GB", "weights GB", "activations GB", "kv GB", "free GB"},
          {},
          {}};
  for (const auto& x : r.per_gpu)
    g.add({x.index, x.pp_stage, Cell(x.capacity_bytes / GB, 2), Cell(x.weights_bytes / GB, 2),
           Cell(x.activation_bytes / GB, 2), Cell(x.kv_bytes / GB, 2), Cell(x.free_bytes / GB, 2)});
  rep.tables.push_back(g);

  rep.messages.push_back((r.fits ? "FITS: " : "DOES NOT FIT: ") + r.reason);
  for (const auto& n : r.notes) rep.messages.push_back("note: " + n);

  Json j;
  j["inputs"] = {{"model", m.id},
                 {"gpu", d.id},
                 {"gpus", o.gpus},
                 {"weights", o.weights.empty() ? Json("native") : Json(o.weights)},
                 {"kv", r.kv_precision},
                 {"context_tokens", r.context_tokens},
                 {"concurrency", r.concurrency},
                 {"engine", engine_id}};
  j["fits"] = r.fits;
  j["reason"] = r.reason;
  j["layout"] = {{"tp", r.layout.tp},
                 {"pp", r.layout.pp},
                 {"dp", r.layout.dp},
                 {"ep", r.layout.ep},
                 {"dp_attention", r.layout.dp_attention}};
  j["weights_bytes"] = r.weights_bytes;
  Json comp = Json::object();
  for (Component c : kComponents)
    comp[component_name(c)] = {{"precision", r.weights.at(c)},
                               {"bytes", r.weights_bytes_by_component.at(c)}};
  j["weights_by_component"] = comp;
  j["kv_bytes_per_token"] = r.kv_bytes_per_token;
  j["kv_bytes_total"] = r.kv_bytes_total;
  j["kv_share_per_gpu"] = r.kv_share_per_gpu;
  j["device_memory_bytes"] = r.device_memory_bytes;
  j["capacity_bytes"] = r.capacity_bytes;
  j["max_concurrency"] = r.max_concurrency;
  j["max_context_tokens"] = r.max_context_tokens;
  j["min_gpus"] = min_gpus;
  Json per = Json::array();
  for (const auto& x : r.per_gpu)
    per.push_back({{"gpu", x.index},
                   {"pp_stage", x.pp_stage},
                   {"capacity_bytes", x.capacity_bytes},
                   {"weights_bytes", x.weights_bytes},
                   {"activation_bytes", x.activation_bytes},
                   {"kv_bytes", x.kv_bytes},
                   {"free_bytes", x.free_bytes}});
  j["per_gpu"] = per;
  j["notes"] = r.notes;
  j["evidence"] = "computed from catalog architecture and precision formats (docs/memory.md)";
  rep.json = j;
  return rep;
}

// The working context `fit` answers for when --context is not given: one sequence at 32,768
// tokens, or the model's trained maximum if smaller — the question a user asks ("does it run?"),
// not one sequence at a 1M-token window.
constexpr long long kWorkingContextTokens = 32768;

long long context_of(const std::string& s, const Model& m) {
  if (s.empty()) return std::min(kWorkingContextTokens, m.max_context_tokens);
  if (s == "max") return m.max_context_tokens;
  std::size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != s.size() || v < 1 || v > 100000000LL)
    throw Error(
        fmt::format("fit: --context must be a token count (1 to 100000000) or \"max\", "
                    "not \"{}\"",
                    s));
  return v;
}

void run_fit(const FitOptions& o) {
  const Catalog& cat = catalog();
  FitRequest req;
  req.model = &cat.model(o.model);
  req.device = &cat.device(o.gpu);
  req.gpus = o.gpus;
  req.weights = o.weights.empty() ? PrecisionMix{}
                                  : parse_weight_spec(o.weights, req.model->native_precision, cat);
  const PrecisionMix& mix = req.weights.empty() ? req.model->native_precision : req.weights;
  const Engine& eng =
      cat.engine(o.engine.empty() ? default_engine_id(*req.device, mix, cat) : o.engine);
  req.kv_precision = o.kv.empty() ? default_kv_precision(*req.device, eng) : o.kv;
  (void)cat.kv_format(req.kv_precision);
  // As plan, menu and recommend leave such builds out (data/engines.json weight_formats).
  if (auto why = unserved_format(eng, mix, req.kv_precision))
    throw Error("fit: " + *why + " (data/engines.json; give --engine or --weights)");
  req.context_tokens = context_of(o.context, *req.model);
  req.concurrency = o.concurrency;
  const Topology topo = topology_for(cat, *req.device);
  req.layout = effective_layout(eng, topo, o.gpus, Layout{o.tp, o.pp, o.ep, o.dp_attention});
  {
    const ResolvedLayout l = resolve_layout(*req.model, o.gpus, req.layout);
    if (const auto broken = check_layout(*req.model, *req.device, topo, eng, l, o.gpus, o.force))
      throw Error(fmt::format("fit: layout tp={} pp={} dp={} ep={} breaks rule {}: {}", l.tp, l.pp,
                              l.dp, l.ep, broken->rule, broken->message));
  }
  req.memory_utilization = o.mem_util > 0 ? o.mem_util : eng.memory_utilization;
  req.prefill_chunk_tokens = engine_prefill_chunk_tokens(eng, *req.device);
  req.reserved_gb_per_gpu = o.reserve_gb;
  req.activation_gb_per_gpu = o.activation_gb;
  req.device_memory_gb = o.gpu_memory_gb;
  req.weights_gb = o.weights_gb;
  req.kv_bytes_per_token = o.kv_bytes_per_token;
  req.include_mtp = o.include_mtp;
  const FitResult r = fit(req, cat);
  Report rep =
      build_report(o, r, min_gpus_that_fit(req, eng, topo, cat), *req.model, *req.device, eng.id);
  // The largest context and the largest concurrency, each on its own (docs/memory.md § fit).
  rep.messages.push_back(fmt::format(
      "largest context for {} sequence(s): {} tokens (trained maximum {}); at {} tokens of "
      "context at most {} sequences fit",
      r.concurrency, r.max_context_tokens, req.model->max_context_tokens, r.context_tokens,
      r.max_concurrency));
  if (!o.activation_gb) {
    rep.messages.push_back(
        fmt::format("activations sized for one forward pass of {} tokens ({}'s prefill chunk, "
                    "data/engines.json); --activation-gb overrides",
                    req.prefill_chunk_tokens, eng.id));
    rep.json["activation_chunk_tokens"] = req.prefill_chunk_tokens;
  }
  if (o.context.empty())
    rep.messages.push_back(fmt::format(
        "context {} is the working default (32,768 tokens or the model maximum if smaller); "
        "--context max asks for the full trained {} tokens",
        r.context_tokens, req.model->max_context_tokens));
  rep.json["working_context_default"] = o.context.empty();
  emit(rep, o.out);
  // The report is written either way; a build that does not fit exits 3 (a check failed), so
  // that `moeplan fit ... && deploy` stops.
  if (!r.fits) throw CheckFailed("fit: does not fit: " + r.reason);
}

void setup(CLI::App& parent) {
  auto opts = std::make_shared<FitOptions>();
  auto* app = parent.add_subcommand("fit", "Size weights, KV cache and activations onto GPUs");
  app->add_option("--model", opts->model, "Model id (moeplan catalog list models)")->required();
  app->add_option("--gpu", opts->gpu, "Device id (moeplan catalog list devices)")->required();
  app->add_option("--gpus", opts->gpus, "Number of devices")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app->add_option("--weights", opts->weights,
                  "Weight precision: an id (fp8) or a per-component mix "
                  "(default=fp8,routed_experts=nvfp4); default: the model's native mix");
  app->add_option("--kv", opts->kv,
                  "KV-cache precision id (default: fp8 where device and engine have it, else "
                  "bf16)");
  app->add_option("--context", opts->context,
                  "Context tokens per sequence, or \"max\" for the model's trained context "
                  "(default: 32768, or the model max if smaller)");
  app->add_option("--concurrency", opts->concurrency, "Concurrent sequences")
      ->check(CLI::Range(1LL, 1000000LL))
      ->capture_default_str();
  app->add_option("--tp", opts->tp, "Tensor-parallel size (default: GPUs / pp)")
      ->check(CLI::Range(1, 4096));
  app->add_option("--ep", opts->ep, "Expert-parallel size (default: tp × dp)")
      ->check(CLI::Range(1, 4096));
  app->add_option("--pp", opts->pp, "Pipeline-parallel size")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app->add_flag("--dp-attention", opts->dp_attention,
                "MLA: shard the latent KV across the TP group by sequence");
  app->add_option("--engine", opts->engine,
                  "Engine id: memory utilization and layout rules (default: vllm on GPUs, "
                  "llama.cpp elsewhere)");
  app->add_flag("--force", opts->force, "Allow tensor parallelism across scale-up domains");
  app->add_option("--mem-util", opts->mem_util,
                  "Share of device memory the engine uses (default: engine's)")
      ->check(CLI::Range(0.01, 1.0));
  app->add_option("--reserve-gb", opts->reserve_gb,
                  "Memory reserved per GPU outside the engine, GB")
      ->check(CLI::Range(0.0, 1e6));
  app->add_option("--activation-gb", opts->activation_gb,
                  "Override the activation estimate per GPU, GB")
      ->check(CLI::Range(0.0, 1e6));
  app->add_option("--gpu-memory-gb", opts->gpu_memory_gb, "What-if: device memory, GB")
      ->check(CLI::Range(0.001, 1e6));
  app->add_option("--weights-gb", opts->weights_gb,
                  "What-if: total weight size, GB (e.g. a file size)")
      ->check(CLI::Range(0.001, 1e7));
  app->add_option("--kv-bytes-per-token", opts->kv_bytes_per_token, "What-if: KV bytes per token")
      ->check(CLI::Range(0.001, 1e9));
  app->add_flag("--include-mtp", opts->include_mtp,
                "Also load the MTP/draft layers (their weights and their own KV cache)");
  add_output_options(*app, opts->out);
  app->callback([opts] { run_fit(*opts); });
}

const RegisterCommand reg("fit", setup);

}  // namespace
}  // namespace moeplan::cli
