// Deployments of more than one engine group (docs/performance.md §Deployments): data-parallel
// replicas of one group, and prefill/decode disaggregation (prefill workers hand each prompt's
// KV cache to decode workers over the scale-out fabric). Both are built from the single-group
// estimate of performance.hpp; nothing here knows a kernel.
#pragma once

#include <string>
#include <vector>

#include "moeplan/catalog.hpp"
#include "moeplan/performance.hpp"

namespace moeplan {

struct Deployment {
  enum class Kind { single, replicas, disaggregated };
  Kind kind = Kind::single;
  int replicas = 1;  // replicas: R identical engine groups of total / R GPUs
  // disaggregated: workers × GPUs per worker of each pool; DP-attention on the decode workers
  int prefill_workers = 0, prefill_gpus = 0;
  int decode_workers = 0, decode_gpus = 0;
  bool decode_dp_attention = false;
};

// "" or "single" (one engine group), "dp:R" (R replicas), "pd:PxG+DxG" (P prefill workers of G
// GPUs, D decode workers of G GPUs; an "a" after the decode worker's GPUs, "pd:5x8+1x16a", runs
// them with DP-attention). Throws Error naming the text and what is wrong with it.
Deployment parse_deployment(const std::string& text);
// The canonical text parse_deployment reads back ("single", "dp:4", "pd:1x8+2x8").
std::string deployment_label(const Deployment& d);
// GPUs the deployment occupies given `gpus` for a single group or replicas.
int deployment_gpus(const Deployment& d, int gpus);

struct DeploymentResult {
  Deployment deployment;
  PerfResult group;           // one replica; disaggregated: one decode worker (its decode figures)
  PerfResult prefill_worker;  // disaggregated: one prefill worker, one prompt alone
  double output_tokens_per_s = 0;  // whole deployment
  double total_tokens_per_s = 0;
  double tpot_ms = 0;
  double ttft_ms = 0;  // mean, server path included
  double per_request_tokens_per_s = 0;
  double batch_per_group = 0;         // sequences decoding per replica / decode worker
  long long decode_slots = 0;         // disaggregated: sequences a decode worker can hold
  double prefill_utilization = 0;     // disaggregated: share of the prefill pool's capacity in use
  double prefill_capacity_per_s = 0;  // disaggregated: prompts per second the pool can take
  double kv_transfer_ms = 0;  // disaggregated: one prompt's KV cache over the scale-out link
  double queue_ms = 0;        // disaggregated: wait for a free decode slot (in ttft_ms)
  std::vector<std::string> notes;
};

// Whole-deployment estimate at req.concurrency resident requests (all groups together);
// req.gpus must equal deployment_gpus(d, req.gpus). req.layout is each replica's or each
// worker's layout (the decode workers' `a` adds DP-attention). A single deployment is
// estimate() itself.
// Throws Error on an inconsistent request (GPU counts that do not divide, a worker that does
// not fit its model).
DeploymentResult estimate_deployment(const PerfRequest& req, const Deployment& d,
                                     const Catalog& cat);

// Sequences one engine group of req.gpus holds at input + output tokens: min(KV-memory limit
// at the engine's memory share and layout, engine `max_num_seqs` — 256 when the catalog has
// none); 0 when not even one request fits, and `why` (when given) then says why.
long long engine_group_slots(const PerfRequest& req, const Catalog& cat,
                             std::string* why = nullptr);

// Sequences the whole deployment holds at once (a saturated load): R × a replica's, or D × a
// decode worker's, each min(KV-memory limit at input + output tokens, engine `max_num_seqs`).
long long deployment_slots(const PerfRequest& req, const Deployment& d, const Catalog& cat);

// Mean time to first token of `prompts` prompts that arrive together at one prefill worker
// which prefills `per_step` prompts per step of `step_s` seconds (a prompt's first token comes
// with its step): step_s × mean over k = 1..prompts of ceil(k / per_step).
double wave_mean_s(double prompts, double per_step, double step_s);

}  // namespace moeplan
