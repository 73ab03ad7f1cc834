// moeprobe load: drive an OpenAI-compatible endpoint, report per load point,
// settle the plan's go/no-go checks, write the pilot file (docs/load.md).
#include <cstdlib>
#include <iostream>

#include "moeplan/errors.hpp"
#include "moeplan/output_set.hpp"
#include "moeplan/plan.hpp"
#include "moeplan/report.hpp"
#include "moeprobe/load.hpp"
#include "probe_cli.hpp"

namespace moeprobe::cli {

namespace {

struct LoadCmdOptions {
  std::string url, api = "chat", served_model, api_key_env, scenario, prompts, eval, build, engine,
                   format = "table", out = "pilot.json";
  long long input = 0, output = 0, requests = 0;
  std::vector<int> concurrency;
  std::vector<double> rate;
  double duration = 0, timeout = 600, prefix_share = -1;
  std::optional<double> sla_ttft, sla_tpot;
  int warmup = 1, tool_calls = 0;
  std::uint64_t seed = 1;
  bool resume = false, no_progress = false, ignore_eos = false;
};

void run(const LoadCmdOptions& c, int& exit_code) {
  namespace ld = moeprobe::load;
  const moeplan::Format fmt_out = moeplan::parse_format(c.format);
  ld::LoadOptions o;
  o.http.url = c.url;
  o.http.api = ld::parse_api(c.api);
  o.http.timeout_s = c.timeout;
  if (!c.api_key_env.empty()) {
    const char* k = std::getenv(c.api_key_env.c_str());
    if (!k || !*k)
      throw moeplan::Error("--api-key-env " + c.api_key_env + ": the environment variable " +
                           c.api_key_env + " is not set (export it with the API key first)");
    o.http.api_key = k;
  }
  o.served_model = c.served_model;
  o.input_tokens = c.input;
  o.output_tokens = c.output;
  o.sla = {c.sla_ttft, c.sla_tpot};
  std::optional<ld::Targets> targets;
  std::string engine = c.engine;
  if (!c.scenario.empty()) {
    // Read the plan and its targets before any request: a bad scenario or --build costs nothing.
    const auto sc = moeplan::plan::load_plan_scenario(c.scenario, catalog());
    targets = ld::plan_targets(sc, catalog(), c.build);
    if (o.input_tokens == 0 && c.prompts.empty()) o.input_tokens = sc.demand.input_tokens;
    if (o.output_tokens == 0) o.output_tokens = sc.demand.output_tokens;
    if (!o.sla.ttft_ms) o.sla.ttft_ms = sc.demand.sla_ttft_ms;
    if (!o.sla.tpot_ms) o.sla.tpot_ms = sc.demand.sla_tpot_ms;
    if (engine.empty()) engine = sc.engine;
  }
  if (o.output_tokens <= 0)
    throw moeplan::Error("give --output N (tokens per reply) or --scenario PLAN.json");
  if (o.input_tokens <= 0 && c.prompts.empty())
    throw moeplan::Error("give --input N, --prompts FILE.jsonl or --scenario PLAN.json");
  // The pilot file records the engine only as part of the build.
  if (!c.engine.empty() && c.build.empty())
    throw moeplan::Error("--engine " + c.engine +
                         ": the pilot file records the engine with the build; give --build "
                         "MODEL,SYSTEM_OR_DEVICE,GPUS,PRECISION too");
  const std::optional<ld::BuildId> build = ld::parse_build(c.build, engine);
  if (!c.build.empty()) ld::check_build(*build, catalog());
  // Before any request: a pilot file or log that cannot be written would otherwise fail only
  // after the whole run (docs/load.md §Bad input).
  moeplan::OutputSet destinations;
  destinations.add(c.out, std::string(), "--out");
  destinations.add(c.out + ".log.jsonl", std::string(), "--out (its log)");
  destinations.check();
  o.concurrency = c.concurrency;
  o.rate = c.rate;
  if (o.concurrency.empty() && o.rate.empty()) o.concurrency = {1};
  o.requests = c.requests;
  o.duration_s = c.duration;
  if (o.requests == 0 && o.duration_s == 0) o.requests = 100;
  o.warmup = c.warmup;
  o.prompts_file = c.prompts;
  o.eval_file = c.eval;
  if (c.prefix_share >= 0) o.prefix_share = c.prefix_share;
  o.tool_calls = c.tool_calls;
  o.ignore_eos = c.ignore_eos;
  o.seed = c.seed;
  o.log_path = c.out + ".log.jsonl";
  o.resume = c.resume;
  o.progress = !c.no_progress;

  const ld::LoadRun r = ld::run_load(o);
  moeplan::Report rep = ld::make_load_report(r, o, targets, build, c.scenario);
  rep.meta.tool_version = moeplan::tool_version();
  rep.meta.git_sha = moeplan::git_sha();
  rep.meta.command_line = global().command_line;
  moeplan::write_file_atomic(c.out, moeplan::render(rep, moeplan::Format::json));
  rep.messages.push_back("pilot file written to " + c.out + " (moeplan plan SCENARIO --pilot " +
                         c.out + ")");
  std::cout << moeplan::render(rep, fmt_out);
  exit_code = 0;
}

}  // namespace

void setup_load(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<LoadCmdOptions>();
  CLI::App* sub = app.add_subcommand(
      "load",
      "Load an OpenAI-compatible endpoint; latency percentiles, throughput, goodput, errors; "
      "the plan's go/no-go checks; a pilot file for moeplan plan --pilot (docs/load.md)");
  sub->add_option("--url", o->url, "Server base URL, e.g. http://127.0.0.1:8000")->required();
  sub->add_option("--api", o->api, "chat (/v1/chat/completions) | completions (/v1/completions)")
      ->check(CLI::IsMember({"chat", "completions"}));
  sub->add_option("--served-model", o->served_model,
                  "Model name sent in requests (default: the first of GET /v1/models)");
  sub->add_option("--api-key-env", o->api_key_env,
                  "Environment variable holding the API key (sent as a Bearer token)");
  sub->add_option("--scenario", o->scenario,
                  "Plan scenario: prompt lengths, SLA and the go/no-go targets");
  // Ranges stated, not CLI::PositiveNumber / NonNegativeNumber: their message prints DBL_MAX in
  // full (docs/reliability.md).
  sub->add_option("--input", o->input, "Prompt tokens per request (synthesised prompts)")
      ->check(CLI::Range(1LL, 100000000LL));
  sub->add_option("--output", o->output, "max_tokens per request")
      ->check(CLI::Range(1LL, 100000000LL));
  sub->add_option("--concurrency", o->concurrency, "Closed loop: requests in flight (C[,C…])")
      ->delimiter(',')
      ->check(CLI::Range(1, 100000));
  sub->add_option("--rate", o->rate, "Open loop: Poisson arrivals, requests/s (R[,R…])")
      ->delimiter(',')
      ->check(CLI::Range(0.001, 1e6));
  sub->add_option("--requests", o->requests, "Requests per load point (default 100)")
      ->check(CLI::Range(1LL, 100000000LL));
  sub->add_option("--duration", o->duration, "Seconds per load point (instead of --requests)")
      ->check(CLI::Range(0.001, 1e7));
  sub->add_option("--warmup", o->warmup,
                  "Requests sent first and not counted (at least 1: it checks the endpoint)")
      ->check(CLI::Range(0, 1000000));
  sub->add_option("--prompts", o->prompts, "JSON lines {\"prompt\": …, \"max_tokens\": …}");
  sub->add_option("--prefix-share", o->prefix_share,
                  "Share of each synthesised prompt sent as a prefix common to all (cache hits)")
      ->check(CLI::Range(0.0, 1.0));
  sub->add_option("--tool-calls", o->tool_calls,
                  "Also send N requests offering a tool; check each reply calls it correctly")
      ->check(CLI::Range(0, 1000000));
  sub->add_option("--eval", o->eval,
                  "JSON lines {\"prompt\": …, \"expect\": REGEX}: quality check");
  sub->add_option("--build", o->build,
                  "MODEL,SYSTEM_OR_DEVICE,GPUS,PRECISION: the plan candidate this node is");
  sub->add_option("--engine", o->engine, "Engine id for the pilot file (default: the scenario's)");
  // Positive like the scenario's sla_*_ms: a negative SLA made every request miss it.
  sub->add_option("--sla-ttft-ms", o->sla_ttft, "TTFT SLA for goodput (default: the scenario's)")
      ->check(CLI::Range(0.001, 1e7));
  sub->add_option("--sla-tpot-ms", o->sla_tpot, "TPOT SLA for goodput (default: the scenario's)")
      ->check(CLI::Range(0.001, 1e7));
  sub->add_option("--timeout", o->timeout, "Seconds before a request counts as timed out")
      ->check(CLI::Range(0.001, 1e6));
  sub->add_option("--seed", o->seed, "Seed of synthesised prompts and Poisson arrivals");
  sub->add_option("--format", o->format, "table | json | csv | md")
      ->check(CLI::IsMember({"table", "json", "csv", "md"}));
  sub->add_option("--out", o->out, "Pilot file (JSON); the log goes to FILE.log.jsonl");
  sub->add_flag("--resume", o->resume, "Continue an interrupted run from its log");
  sub->add_flag(
      "--ignore-eos", o->ignore_eos,
      "Ask the server to ignore end-of-sequence (vLLM, SGLang) so replies reach --output");
  sub->add_flag("--no-progress", o->no_progress, "No progress line on stderr");
  sub->callback([o, &exit_code] { run(*o, exit_code); });
}

}  // namespace moeprobe::cli
