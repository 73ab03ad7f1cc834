// Replicas and prefill/decode disaggregation on top of the single-group estimate
// (docs/performance.md §Deployments).
#include "moeplan/deployment.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <regex>

#include "moeplan/errors.hpp"
#include "moeplan/sizing.hpp"
#include "moeplan/system.hpp"

namespace moeplan {

Deployment parse_deployment(const std::string& text) {
  Deployment d;
  if (text.empty() || text == "single") return d;
  const auto bad = [&](const std::string& why) {
    return Error(
        fmt::format("deployment '{}': {} (expected 'single', 'dp:R' or 'pd:PxG+DxG', "
                    "e.g. 'dp:4', 'pd:1x8+2x8', 'pd:5x8+1x16a')",
                    text, why));
  };
  std::smatch m;
  static const std::regex dp(R"(dp:(\d{1,4}))");
  static const std::regex pd(R"(pd:(\d{1,4})x(\d{1,4})\+(\d{1,4})x(\d{1,4})(a?))");
  if (std::regex_match(text, m, dp)) {
    d.kind = Deployment::Kind::replicas;
    d.replicas = std::stoi(m[1]);
    if (d.replicas < 1) throw bad("replicas must be at least 1");
    return d;
  }
  if (std::regex_match(text, m, pd)) {
    d.kind = Deployment::Kind::disaggregated;
    d.prefill_workers = std::stoi(m[1]);
    d.prefill_gpus = std::stoi(m[2]);
    d.decode_workers = std::stoi(m[3]);
    d.decode_gpus = std::stoi(m[4]);
    d.decode_dp_attention = m[5].length() > 0;
    if (d.prefill_workers < 1 || d.prefill_gpus < 1 || d.decode_workers < 1 || d.decode_gpus < 1)
      throw bad("every worker count and GPU count must be at least 1");
    return d;
  }
  throw bad("not understood");
}

std::string deployment_label(const Deployment& d) {
  switch (d.kind) {
    case Deployment::Kind::single:
      return "single";
    case Deployment::Kind::replicas:
      return fmt::format("dp:{}", d.replicas);
    case Deployment::Kind::disaggregated:
      return fmt::format("pd:{}x{}+{}x{}{}", d.prefill_workers, d.prefill_gpus, d.decode_workers,
                         d.decode_gpus, d.decode_dp_attention ? "a" : "");
  }
  return "single";
}

int deployment_gpus(const Deployment& d, int gpus) {
  if (d.kind == Deployment::Kind::disaggregated)
    return d.prefill_workers * d.prefill_gpus + d.decode_workers * d.decode_gpus;
  return gpus;
}

double wave_mean_s(double prompts, double per_step, double step_s) {
  if (prompts <= 0 || per_step <= 0) return 0;
  // Steps k = 1..n_full each finish per_step prompts at time k·step; a partial last step finishes
  // the rest. Mean = step × Σ_k k·(prompts finished in step k) / prompts.
  const double full = std::floor(prompts / per_step);
  const double rest = prompts - full * per_step;
  const double sum = per_step * full * (full + 1) / 2.0 + rest * (full + 1);
  return step_s * sum / prompts;
}

long long engine_group_slots(const PerfRequest& req, const Catalog& cat, std::string* why) {
  const FitResult fr = fit(fit_request_for(req, cat), cat);
  if (fr.max_concurrency < 1) {
    if (why) *why = fr.reason;
    return 0;
  }
  return concurrency_limit(fr.max_concurrency, *req.engine).slots();
}

namespace {

// A group that does not hold one request: an error naming the group and the fit's reason.
long long group_slots(const PerfRequest& req, const Catalog& cat, const char* what) {
  std::string why;
  const long long n = engine_group_slots(req, cat, &why);
  if (n < 1)
    throw Error(fmt::format(
        "deployment: a {} of {} {} does not hold {} with one {}-token request: "
        "{}",
        what, req.gpus, req.device->id, req.model->id, req.input_tokens + req.output_tokens, why));
  return n;
}

// GPUs of one replica; a deployment whose GPUs do not split evenly is refused.
int gpus_per_replica(const PerfRequest& req, const Deployment& d) {
  const int r = d.kind == Deployment::Kind::replicas ? d.replicas : 1;
  if (req.gpus % r != 0)
    throw Error(fmt::format("deployment {}: {} GPUs do not divide into {} replicas",
                            deployment_label(d), req.gpus, r));
  return req.gpus / r;
}

DeploymentResult replicas(const PerfRequest& req, const Deployment& d, const Catalog& cat) {
  DeploymentResult out;
  out.deployment = d;
  PerfRequest g = req;
  g.gpus = gpus_per_replica(req, d);
  g.request_rate_per_s = req.request_rate_per_s / d.replicas;  // `once`: arrivals split evenly
  // C requests over R replicas: C mod R replicas carry one more than the others.
  const long long lo = req.concurrency / d.replicas, n_hi = req.concurrency % d.replicas;
  double reqs = 0, tpot = 0, ttft = 0;
  for (const long long c : {lo, lo + 1}) {
    const double n = static_cast<double>(c == lo ? d.replicas - n_hi : n_hi);
    if (c < 1 || n <= 0) continue;
    g.concurrency = c;
    // A closed-loop client's prompts split as its requests do.
    if (req.prompts > 0)
      g.prompts =
          std::max(c, std::llround(static_cast<double>(req.prompts) * static_cast<double>(c) /
                                   static_cast<double>(req.concurrency)));
    const PerfResult r = estimate(g, cat);
    if (c == lo || lo == 0) out.group = r;
    out.output_tokens_per_s += n * r.decode.output_tokens_per_s;
    out.total_tokens_per_s += n * r.decode.total_tokens_per_s;
    // Means over requests: each replica weighs by the requests it carries.
    const double w = n * static_cast<double>(c);
    reqs += w;
    tpot += w * r.decode.tpot_ms;
    ttft += w * r.prefill.ttft_ms;
    out.batch_per_group = r.decode.batch;
  }
  out.tpot_ms = reqs > 0 ? tpot / reqs : 0;
  out.ttft_ms = reqs > 0 ? ttft / reqs : 0;
  out.per_request_tokens_per_s = out.tpot_ms > 0 ? 1e3 / out.tpot_ms : 0;
  out.notes = out.group.notes;
  if (lo == 0)
    out.notes.push_back(fmt::format("{} of {} replicas idle at concurrency {}", d.replicas - n_hi,
                                    d.replicas, req.concurrency));
  return out;
}

// The prefill pool: one prompt alone, and how many prompts per second a worker takes when
// prompts queue (several packed into one step up to the token budget).
struct PrefillPool {
  PerfResult alone;
  double service_s = 0;   // one prompt on an idle worker
  double per_step = 1;    // prompts per full step
  double step_s = 0;      // time of a full step
  double rate_per_s = 0;  // prompts per second, whole pool
};

PrefillPool prefill_pool(const PerfRequest& req, const Deployment& d, const Catalog& cat) {
  PerfRequest p = req;
  p.gpus = d.prefill_gpus;  // req.layout, when given, is each worker's layout
  p.concurrency = 1;
  p.output_tokens = 1;
  p.arrivals = Arrivals::steady;
  p.prompts = 0;  // one prompt alone, not a client's run
  p.range_ratio = 1;
  p.spec = {};
  (void)group_slots(p, cat, "prefill worker");
  PrefillPool pool;
  pool.alone = estimate(p, cat);
  pool.service_s = pool.alone.prefill.ttft_alone_ms * 1e-3;
  const double in = static_cast<double>(req.input_tokens);
  const double budget = req.max_num_tokens > 0
                            ? static_cast<double>(req.max_num_tokens)
                            : std::max(1.0, pool.alone.eff.prefill_chunk_tokens.value);
  if (in <= budget) {
    pool.per_step = std::floor(budget / in);
    pool.step_s = prefill_step(p, cat, pool.per_step * in, in / 2.0, pool.per_step).time_s;
  } else {
    pool.step_s = pool.service_s;  // a long prompt fills several steps on its own
  }
  pool.rate_per_s = d.prefill_workers * pool.per_step / pool.step_s;
  return pool;
}

// One prompt's KV cache from a prefill worker to a decode worker: every rank of the smaller
// worker sends its share in parallel over its scale-out link (the scale-up link when the
// topology has no scale-out fabric).
double kv_transfer_s(const PerfRequest& req, const Deployment& d, const PerfResult& prefill,
                     const Catalog& cat) {
  const Topology t = req.topology ? *req.topology : topology_for(cat, *req.device);
  const Links k = links_for(t, *req.device, prefill.eff, req.calibration);
  const Link& l = k.scale_out.gb_s > 0 ? k.scale_out : k.scale_up;
  if (l.gb_s <= 0) return 0;
  const double bytes = prefill.kv_bytes_per_token * static_cast<double>(req.input_tokens);
  const double lanes = std::min(d.prefill_gpus, d.decode_gpus);
  return bytes / (l.gb_s * 1e9 * lanes) + l.latency_us * 1e-6;
}

DeploymentResult disaggregated(const PerfRequest& req, const Deployment& d, const Catalog& cat) {
  if (req.input_tokens < 1)
    throw Error(fmt::format("deployment {}: disaggregated serving needs prompts (input ≥ 1)",
                            deployment_label(d)));
  DeploymentResult out;
  out.deployment = d;
  const PrefillPool pool = prefill_pool(req, d, cat);
  out.prefill_worker = pool.alone;
  out.prefill_capacity_per_s = pool.rate_per_s;
  out.kv_transfer_ms = kv_transfer_s(req, d, pool.alone, cat) * 1e3;

  PerfRequest dr = req;
  dr.gpus = d.decode_gpus;
  dr.layout.dp_attention = dr.layout.dp_attention || d.decode_dp_attention;
  out.decode_slots = group_slots(dr, cat, "decode worker");

  const double C = static_cast<double>(req.concurrency), D = d.decode_workers;
  const double in = static_cast<double>(req.input_tokens);
  const double o = static_cast<double>(req.output_tokens);
  const double ctx = in + o / 2.0;
  const double kv_s = out.kv_transfer_ms * 1e-3;
  // At `b` sequences decoding per worker: the step, the request rate it sustains, and the time
  // a request spends before its first token (prefill service, its wait on the pool, KV hand-off).
  struct At {
    StepBreakdown step;
    double x = 0, ttft_s = 0;
    bool feasible = true;
  };
  auto at = [&](double b) {
    At a;
    a.step = decode_step(dr, cat, b, ctx);
    a.x = D * b / (o * a.step.time_s);
    // The pool's wait in the closed loop of C requests (closed_loop_ttft_s), the pool taken as one
    // server a prompt holds for its share 1/rate of it and the rest of its service as a delay
    // (Seidmann's approximation for several servers). Until 2026-11-28 an open M/D/1 wait, which
    // at high load kept more requests waiting than were in flight.
    const double busy_s = 1.0 / pool.rate_per_s;
    a.feasible = a.x * busy_s < 0.999;
    a.ttft_s = a.feasible
                   ? closed_loop_ttft_s(pool.service_s, busy_s, o * a.step.time_s, C, 0.0) + kv_s
                   : 1e12;
    return a;
  };
  // Little's law over the population: decoding + before the first token = C (bisection on b).
  const double b_max = std::min(static_cast<double>(out.decode_slots), C / D);
  auto residual = [&](const At& a, double b) { return D * b + a.x * a.ttft_s - C; };
  At a = at(b_max);
  double b = b_max;
  if (residual(a, b_max) > 0) {
    double lo = std::min(b_max, 1e-3), hi = b_max;
    for (int i = 0; i < 40; ++i) {
      const double mid = 0.5 * (lo + hi);
      (residual(at(mid), mid) > 0 ? hi : lo) = mid;
    }
    b = lo;
    a = at(b);
  } else if (a.x > 0) {
    // Every decode slot is busy: the other requests wait for one (Little's law on the queue).
    out.queue_ms = (C - D * b - a.x * a.ttft_s) / a.x * 1e3;
    out.notes.push_back(fmt::format(
        "decode workers hold {} sequences each ({} in all); the other {:.0f} requests wait for a "
        "slot (TTFT includes the wait)",
        out.decode_slots, out.decode_slots * d.decode_workers, C - D * b));
  }
  double ttft_s = a.ttft_s;
  if (req.arrivals == Arrivals::together)
    ttft_s =
        std::max(ttft_s, wave_mean_s(C / d.prefill_workers, pool.per_step, pool.step_s) + kv_s);
  out.batch_per_group = b;
  out.output_tokens_per_s = a.x * o;
  out.total_tokens_per_s = a.x * (in + o);
  out.tpot_ms = a.step.time_s * 1e3;
  out.per_request_tokens_per_s = 1.0 / a.step.time_s;
  out.ttft_ms = ttft_s * 1e3 + out.queue_ms + pool.alone.prefill.server_overhead_ms;
  out.prefill_utilization = a.x / pool.rate_per_s;
  out.group.decode.step = a.step;
  out.group.decode.batch = b;
  out.group.decode.tpot_ms = out.tpot_ms;
  out.group.bound = a.step.bound;
  out.group.eff = pool.alone.eff;
  out.group.evidence = pool.alone.evidence;
  if (req.spec.method != SpecMethod::none)
    out.notes.push_back("speculative decoding is not modelled on disaggregated decode workers");
  return out;
}

}  // namespace

DeploymentResult estimate_deployment(const PerfRequest& req, const Deployment& d,
                                     const Catalog& cat) {
  if (req.concurrency < 1) throw Error("deployment: concurrency must be at least 1");
  if (req.gpus != deployment_gpus(d, req.gpus))
    throw Error(fmt::format("deployment {} occupies {} GPUs, not {}", deployment_label(d),
                            deployment_gpus(d, req.gpus), req.gpus));
  switch (d.kind) {
    case Deployment::Kind::replicas:
      return replicas(req, d, cat);
    case Deployment::Kind::disaggregated:
      if (req.arrivals == Arrivals::once)
        throw Error(
            fmt::format("deployment {}: a single wave (`once` arrivals) is modelled for "
                        "one engine group or replicas, not for disaggregated workers",
                        deployment_label(d)));
      if (req.arrivals == Arrivals::together && req.prompts > 0)
        throw Error(
            fmt::format("deployment {}: a client's run of N prompts (`together` with prompts) is "
                        "simulated for one engine group or replicas, not for disaggregated "
                        "workers",
                        deployment_label(d)));
      // Which workers' schedulers poll, and how often, is not modelled here: refused rather
      // than dropped without a word.
      if (req.admission_interval_steps != 1)
        throw Error(
            fmt::format("deployment {}: a scheduler admission interval of {} steps is modelled "
                        "for one engine group or replicas, not for disaggregated workers",
                        deployment_label(d), req.admission_interval_steps));
      return disaggregated(req, d, cat);
    case Deployment::Kind::single:
      break;
  }
  Deployment one;
  return replicas(req, one, cat);
}

long long deployment_slots(const PerfRequest& req, const Deployment& d, const Catalog& cat) {
  if (d.kind == Deployment::Kind::disaggregated) {
    PerfRequest dr = req;
    dr.gpus = d.decode_gpus;
    dr.layout.dp_attention = dr.layout.dp_attention || d.decode_dp_attention;
    return d.decode_workers * group_slots(dr, cat, "decode worker");
  }
  PerfRequest g = req;
  g.gpus = gpus_per_replica(req, d);
  return (req.gpus / g.gpus) * group_slots(g, cat, "replica");
}

}  // namespace moeplan
