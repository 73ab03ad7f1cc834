// `moeplan recommend`: catalog search for the cheapest builds of one or more
// models at a demand — Pareto frontier of cost per 1M output tokens against
// per-user tok/s, and the top N under the SLA (docs/plan.md § recommend).
#include <fmt/format.h>

#include <algorithm>
#include <memory>

#include "cli.hpp"
#include "moeplan/errors.hpp"
#include "moeplan/plan.hpp"
#include "moeplan/recommend.hpp"

namespace {

struct RecommendOptions {
  std::vector<std::string> models;
  double output_tokens_per_s = 0;
  std::string scenario;
  long long input = 1024, output = 256;
  double sla_tpot_ms = 0, sla_ttft_ms = 0;
  int top = 10, max_gpus = 16;
  std::string engine = "vllm";
  std::string price_as, own_basis, rent_kind;
  moeplan::cli::OutputOptions out;
};

void run(const RecommendOptions& o, CLI::App* app) {
  using namespace moeplan;
  const Catalog& cat = cli::catalog();
  recommend::Request req;
  req.input_tokens = o.input;
  req.output_tokens = o.output;
  req.top = o.top;
  req.max_gpus = o.max_gpus;
  req.threads = moeplan::cli::global().threads;
  req.engine = o.engine;
  (void)cat.engine(o.engine);
  if (!o.scenario.empty()) {
    const plan::PlanScenario sc = plan::load_plan_scenario(o.scenario, cat);
    const auto& d = sc.demand;
    req.output_tokens_per_s = d.peak_output_tokens_per_s();
    if (app->count("--input") == 0) req.input_tokens = d.input_tokens;
    if (app->count("--output") == 0) req.output_tokens = d.output_tokens;
    req.sla = {d.sla_tpot_ms, d.sla_ttft_ms};
    req.currency = sc.currency;
    req.fx_per_usd = sc.cost_doc.contains("fx_per_usd") ? sc.cost_doc["fx_per_usd"].get<double>()
                                                        : cat.fx_per_usd(sc.currency);
    if (o.models.empty())
      for (const auto& id : sc.models.ids) req.models.push_back(&cat.model(id));
    if (app->count("--engine") == 0) req.engine = sc.engine;
    req.own_basis = sc.own_basis;
    req.rent_kind = sc.rent_kind;
    if (sc.cost_doc.contains("buy") && sc.cost_doc["buy"].contains("vat_rate"))
      req.vat_rate = sc.cost_doc["buy"]["vat_rate"].get<double>();
  } else {
    if (app->count("--output-tokens-per-s") == 0)
      throw Error("recommend: give --output-tokens-per-s N or --scenario FILE");
    req.output_tokens_per_s = o.output_tokens_per_s;
  }
  for (const auto& id : o.models) {
    // A repeated --model would list every row twice and crowd the top N.
    if (std::count(o.models.begin(), o.models.end(), id) > 1)
      throw Error(fmt::format("recommend: --model {} is given twice", id));
    req.models.push_back(&cat.model(id));
  }
  if (req.models.empty())
    throw Error("recommend: give at least one --model (or a scenario listing models)");
  for (const Model* m : req.models)  // ranked by output tok/s: decoders only (docs/catalogs.md)
    if (!m->is_generative())
      throw Error(
          fmt::format("recommend: '{}' has kind {} (data/models.json); recommend ranks "
                      "generative models: plan it as a menu workload with \"kind\": "
                      "\"{}\"",
                      m->id, model_kind_name(m->kind), model_kind_name(m->kind)));
  // One basis for the whole ranking: own unless renting is asked for (--price-as rent, or a
  // --rent-kind without --price-as).
  if (!o.own_basis.empty()) req.own_basis = *pricing::parse_own_basis(o.own_basis);
  if (!o.rent_kind.empty()) req.rent_kind = *pricing::parse_rent_kind(o.rent_kind);
  req.price_as = !o.price_as.empty() ? o.price_as : (o.rent_kind.empty() ? "own" : "rent");
  if (req.price_as == "rent" && !o.own_basis.empty())
    throw Error("recommend: --own-basis prices owning, but the ranking is priced as rent");
  if (o.sla_tpot_ms > 0) req.sla.tpot_ms = o.sla_tpot_ms;
  if (o.sla_ttft_ms > 0) req.sla.ttft_ms = o.sla_ttft_ms;
  const recommend::Result r = recommend::search(req, cat);
  // An empty ranking is an answer nobody can act on: say why and exit non-zero.
  if (const auto why = recommend::nothing_to_rank(req, r)) throw CheckFailed(*why);
  Report rep = recommend::make_report(req, r);
  rep.meta = cli::output_meta();
  cli::global().inputs.push_back(o.scenario);
  cli::emit(rep, o.out);
}

void setup(CLI::App& parent) {
  auto opts = std::make_shared<RecommendOptions>();
  CLI::App* sub = parent.add_subcommand(
      "recommend",
      "Search devices × GPUs × precisions × layouts × concurrency for the cheapest builds");
  sub->add_option("--model", opts->models, "Model id (repeatable)");
  auto* rate = sub->add_option("--output-tokens-per-s", opts->output_tokens_per_s,
                               "Demand: aggregate output tok/s to serve")
                   ->check(CLI::Range(0.0, 1e9));
  auto* scen =
      sub->add_option("--scenario", opts->scenario,
                      "Take models, demand (peak), tokens, SLA and currency from a plan scenario");
  rate->excludes(scen);
  sub->add_option("--input", opts->input, "Input tokens per request")
      ->check(CLI::Range(0LL, 100000000LL))
      ->capture_default_str();
  sub->add_option("--output", opts->output, "Output tokens per request")
      ->check(CLI::Range(1LL, 10000000LL))
      ->capture_default_str();
  sub->add_option("--sla-tpot-ms", opts->sla_tpot_ms, "SLA: time per output token, ms")
      ->check(CLI::Range(0.001, 1e9));
  sub->add_option("--sla-ttft-ms", opts->sla_ttft_ms, "SLA: time to first token, ms")
      ->check(CLI::Range(0.001, 1e9));
  sub->add_option("--top", opts->top, "How many configurations to list")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  sub->add_option("--max-gpus", opts->max_gpus, "Largest GPU count to try")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  sub->add_option("--engine", opts->engine, "Serving engine id")->capture_default_str();
  sub->add_option("--price-as", opts->price_as,
                  "One price basis for every row: own (default) or rent")
      ->check(CLI::IsMember({"own", "rent"}));
  sub->add_option("--own-basis", opts->own_basis, "Owning: street (default), list or quote price")
      ->check(CLI::IsMember({"street", "list", "quote"}));
  sub->add_option("--rent-kind", opts->rent_kind,
                  "Renting: on_demand (default), reserved_1y, reserved_3y or spot (implies "
                  "--price-as rent)")
      ->check(CLI::IsMember({"on_demand", "reserved_1y", "reserved_3y", "spot"}));
  // --threads is global (apps/moeplan/main.cpp): accepted before or after `recommend`.
  // --output is the output-token count here (as in `perf`), so the file option is --output-file.
  sub->add_option("--format", opts->out.format, "Output format")
      ->check(CLI::IsMember({"table", "json", "csv", "md"}))
      ->capture_default_str();
  sub->add_option("--output-file,--out-file", opts->out.output,
                  "Write to FILE (atomically) instead of stdout");
  sub->callback([opts, sub] { run(*opts, sub); });
}

const moeplan::cli::RegisterCommand reg("recommend", setup);

}  // namespace
