// Performance model: decode step, prefill, continuous-batching steady state,
// speculative decoding and concurrency sweeps. Pure functions over the
// catalog structs; every formula, constant and source is in
// docs/performance.md (section names are cited next to the code).
//
// Two layers of efficiency are kept apart (docs/performance.md §Efficiencies):
//   device layer — what the hardware sustains against its datasheet
//                  (copy bandwidth, GEMM rate, link bandwidth and latency);
//                  replaced by a calibration file when one is given;
//   engine layer — how close the serving engine gets to those ceilings and
//                  its fixed per-step / per-layer costs (data/engines.json
//                  `efficiency` objects, fitted against published rows).
#pragma once

#include <algorithm>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "moeplan/catalog.hpp"
#include "moeplan/sizing.hpp"
#include "moeplan/system.hpp"

namespace moeplan {

// Where a figure comes from (docs/performance.md §Evidence tiers).
enum class Evidence { measured, published, default_ };
const char* evidence_name(Evidence e);  // "measured" | "published" | "default"
// What a tier rests on, in the words every output uses to explain it.
const char* evidence_meaning(Evidence e);

enum class SpecMethod { none, mtp, eagle, draft };
const char* spec_method_name(SpecMethod s);
SpecMethod parse_spec_method(const std::string& s);  // throws Error on unknown

struct SpecConfig {
  SpecMethod method = SpecMethod::none;
  int tokens = 0;          // draft length K; 0 = the method's default
  double acceptance = -1;  // per-position acceptance probability α in [0,1); <0 = default
  const Model* draft_model = nullptr;  // SpecMethod::draft only (default: 1/20 of the target)
};

// Speculative decoding as text, in perf's words: the method, then optional `tokens=K` and
// `acceptance=α` (e.g. "mtp tokens=3 acceptance=0.41"; "" or "none" = none). A draft model
// cannot be named here (the method's default draft is used). Throws Error naming the text and
// the token it could not read.
SpecConfig parse_spec(const std::string& text);

// One term of the step model a calibration can feed, as the planner decided it (docs/probe.md,
// "What the planner takes from the probe"): used, or recorded but not used, and why.
struct CalibrationTerm {
  std::string term;             // e.g. "attention efficiency by batch × context"
  std::string rows;             // what feeds it, e.g. "attention.decode rows"
  bool used = false;            // false: measured but below the quality floor, or not measured
  std::optional<double> value;  // efficiency at the largest measured point (µs for overhead)
  std::string note;             // where it was read and what it changes; or why it is not used
  bool shape_keyed = false;     // keyed on the measured model's shapes (calibration_for)
};

// Layer-1 replacement read from a calibration file (the probe's output). All
// figures measured on `device_id`; zero means "not measured, keep the default".
struct DeviceCalibration {
  std::string device_id;
  std::string model_id;       // the model whose shapes the probe ran ("" = not recorded)
  std::string file;           // for provenance in outputs
  double bandwidth_gb_s = 0;  // sustained copy bandwidth
  double bf16_tflops = 0;     // sustained large-GEMM rates
  double fp8_tflops = 0;
  double fp4_tflops = 0;
  // The most FLOPs per byte among the gemm rows behind bf16_tflops (0 = no row): a plateau fitted
  // only from GEMMs far below the device's ridge point is the memory's rate, not the compute's
  // (calibration_for).
  double gemm_max_intensity = 0;
  double link_gb_s = 0;        // collective bus bandwidth per GPU
  double link_latency_us = 0;  // small-message collective latency
  double memory_gb = 0;        // device memory (only used when the device is not in the catalog)
  std::string kind;            // "cpu" | "gpu" | "unified" as the probe recorded it
  // Optional measured kernel efficiency per op class, a fraction of the measured roofline
  // max(bytes / bandwidth, FLOPs / plateau) above (1 = exactly the sustained figure), against
  // the key the class is measured by. Queried (docs/performance.md §Efficiencies, "With a
  // calibration"): "gemm" by the GEMM's rows M, "moe_experts" by tokens per expert,
  // "attention" by decode positions (batch × context), "allreduce" by tokens.
  // Empty optional = not measured, or measured below the quality floor (then `terms` says so).
  std::function<std::optional<double>(const std::string& op_class, double key)> curve;
  // Fixed cost per decoder layer measured by the probe (intercept of layer.decode time against
  // bytes at batch 1–4), µs; 0 = not measured or not used. `layer_overhead_moe`: measured on a
  // MoE layer, so it already holds the router / permute / combine cost of a MoE layer.
  double layer_overhead_us = 0;
  bool layer_overhead_moe = false;
  // Every term the file could feed, used or not (shown in perf's efficiencies table).
  std::vector<CalibrationTerm> terms;
};

class Calibration;
// The device layer a calibration file measured (bandwidth, compute plateaus, efficiency curves).
// Throws Error when the file names no device.
DeviceCalibration device_calibration(const Calibration& cal);
// The calibration as it applies to `model_id` on the catalog's `device`; every caller judges a
// file through this one function (docs/probe.md, "What the planner takes from the probe").
// - The model: the device layer (bandwidth, plateaus, links) and the GEMM curve by M carry over to
//   any model on the device; the curves keyed on one model's shapes (attention by batch × context,
//   MoE by tokens per expert, the per-layer overhead) do not, and for another model they are kept
//   out with a note saying so. Measured on the H200: qwen3-30b-a3b's 768-wide experts run at
//   34–69 % of the triad where DeepSeek's 2048-wide ones run near 90 %, and its MoE curve moved
//   the device's published rows of other models from 9.8 % to 30.4 % median error.
// - The device: the GEMM plateau is used only when the file's most intense GEMM reaches half the
//   device's ridge point (datasheet bf16 peak ÷ bandwidth). Below that even a GEMM at full
//   bandwidth runs under half the peak, so the "plateau" fitted from it is the memory's rate: a
//   partial glm-5.2 run on an H200 (decode GEMMs of 1 and 16 rows only, 16 FLOP per byte against a
//   ridge of 206) gave 70 TFLOP/s, 0.07 of the peak, and took the published H200 rows from 12% to
//   71% median error.
// An empty `model_id` (a table of every model's rows) or a null `device`, or one without a
// datasheet peak (a device known only from the file), leaves that judgement out.
DeviceCalibration calibration_for(const DeviceCalibration& cal, const std::string& model_id,
                                  const Device* device);
// Whether timings from a probe backend that records device kind `measured_kind` ("cpu", "gpu",
// "unified") may stand for a catalog device of kind `catalog`: a CPU's only for a CPU, a GPU
// backend's for a GPU or a unified-memory part (the CUDA backend records "gpu" on a GB10).
// moeprobe run refuses a --device that breaks it, and calibration_for a file that does.
bool calibration_kind_fits(const std::string& measured_kind, DeviceKind catalog);
// A catalog-free device described by its measured figures, for a calibrated device that is not
// in the catalog (peaks = the measured sustained rates).
Device device_from_calibration(const DeviceCalibration& cal);

// One effective factor with its provenance.
struct Factor {
  double value = 1;
  Evidence evidence = Evidence::default_;
  std::string source;  // "device default (gpu)", "engine vllm gpu.bw", "calibration FILE"
};

// Resolved efficiencies for one device + engine (docs/performance.md §Efficiencies).
struct Efficiencies {
  // device layer: fraction of datasheet peaks sustained
  Factor dev_bw, dev_compute, dev_link;
  Factor link_latency_us;  // per collective, absolute
  // engine layer: fraction of the device-layer ceiling, and fixed costs
  Factor eng_bw, eng_compute, eng_attention;
  Factor step_overhead_ms;       // scheduler, sampling, host work per engine step
  Factor layer_overhead_us;      // kernel-latency floor per decoder layer
  Factor moe_layer_overhead_us;  // extra per MoE layer (router, top-k, permute, grouped GEMM)
  Factor prefill_chunk_tokens;   // scheduler token budget per step (chunked prefill)
};

// Efficiencies from the catalog defaults for `device` + `engine`, overridden by `cal`.
Efficiencies resolve_efficiencies(const Device& device, const Engine& engine,
                                  const DeviceCalibration* cal = nullptr);

// How the requests of a concurrency-C load arrive (§Serving steady state / TTFT under load).
//   steady   — closed loop measured in its steady state (genai-perf / perf_analyzer measurement
//              windows after warm-up): completions, and so arrivals, are spread out;
//   together — C requests start at once and every request is averaged, the first wave included
//              (vLLM/SGLang benchmark_serving --max-concurrency, as InferenceX runs it): the
//              prompts queue for the prefill token budget, and with fixed lengths every later
//              wave starts together too. With `prompts` set (the client's --num-prompts) the
//              run is simulated step by step as the client drives it (burst.hpp): C at once,
//              the next sent as one ends, lengths drawn with `range_ratio`; its figures are
//              whole-run averages;
//   saturated — every request is queued up front (trtllm-bench throughput at an infinite
//              request rate, "saturated" rows of validate-perf): the engine keeps its
//              `concurrency` slots full, and a request's wait in the queue happens before it
//              takes a slot, so only its prefill service — not its queueing — keeps a slot
//              from decoding (Little's law over the slots);
//   once     — one wave of C requests run to completion, all at once or at a request rate
//              (`vllm bench serve --num-prompts C --request-rate R`, as vLLM's recipes run it):
//              the figures are whole-run averages, ramp and tail included (burst.hpp).
enum class Arrivals { steady, together, saturated, once };

// The modes a user names (`perf --arrivals`, a benchmark file's `arrivals` column): "steady"
// (also ""), "together", "once"; nullopt for any other word (`saturated` is implied by a
// benchmark row without a concurrency, never named).
std::optional<Arrivals> parse_arrivals_mode(const std::string& word);

// How the client drove the run and how the server's scheduler was launched: what a perf request
// and a published benchmark row both state (validate-perf hands a row's to its request whole).
struct ServingRun {
  Arrivals arrivals = Arrivals::steady;
  double request_rate_per_s = 0;  // Arrivals::once: one arrival every 1/rate s; 0 = all at once
  // Arrivals::together: prompts the client sends in all (`--num-prompts`), simulated as a closed
  // loop of `concurrency` (burst.hpp); 0 = the steady-state form, every wave together.
  long long prompts = 0;
  // … and the spread of its lengths: uniform in [⌊r·I⌋, I] and [⌊r·O⌋, O]
  // (`--random-range-ratio r`); 1 = fixed lengths.
  double range_ratio = 1;
  // The scheduler's token budget per step as the run sets it (TensorRT-LLM --max_num_tokens,
  // SGLang --chunked-prefill-size, vLLM --max-num-batched-tokens); 0 = the engine's default
  // (engines.json prefill_chunk_tokens).
  long long max_num_tokens = 0;
  // The scheduler takes new requests every N steps while a batch runs (SGLang
  // --scheduler-recv-interval N, --num-continuous-decode-steps N): a prompt waits about
  // (N − 1)/2 steps more before its prefill. 1 = every step (the engines' default).
  int admission_interval_steps = 1;
};

struct PerfRequest : ServingRun {
  const Model* model = nullptr;
  const Device* device = nullptr;
  const Engine* engine = nullptr;
  int gpus = 1;
  PrecisionMix weights;      // empty = the model's native mix
  std::string kv_precision;  // "" = bf16
  Layout layout;
  long long input_tokens = 1024;
  long long output_tokens = 256;
  long long concurrency = 1;
  SpecConfig spec;
  double routing_skew =
      0;  // 0 = uniform routing; s in [0,1): traffic concentrated on (1−s)·E experts
  const DeviceCalibration* calibration = nullptr;
  std::optional<Efficiencies> efficiencies;  // pre-resolved (fast path for plan/recommend)
  // What the layout's communication crosses (§Communication); none = topology_for(catalog,
  // device): the catalog's system for the device, e.g. `--gpus 32 --gpu h200` is 4 HGX nodes.
  std::optional<Topology> topology;
};

// One link a collective crosses, effective figures per GPU (§Communication).
struct Link {
  std::string kind;       // nvlink | xgmi | pcie_p2p | pcie_host | unified | none | scale-out kind
  double gb_s = 0;        // effective bandwidth per GPU, per direction (GB/s)
  double latency_us = 0;  // per collective
};

// The links a layout's collectives cross on `t`: the scale-up domain, and the scale-out
// fabric between domains (per-GPU share of the node's NICs). A calibration's link figures
// replace the scale-up defaults.
struct Links {
  Link scale_up, scale_out;
};
Links links_for(const Topology& t, const Device& d, const Efficiencies& eff,
                const DeviceCalibration* cal = nullptr);

// Which term sets a step's time (docs/performance.md §Decode step).
enum class Bound { memory, compute, communication, overhead };
const char* bound_name(Bound b);

// One engine step (decode, verify, prefill chunk or a mixed batch).
struct StepBreakdown {
  double bytes_per_gpu = 0;  // weights + KV + activations, most loaded GPU
  double weight_bytes_per_gpu = 0;
  double expert_bytes_per_gpu = 0;  // routed experts touched (included in weight bytes)
  double kv_bytes_per_gpu = 0;
  double flops_per_gpu = 0;
  double experts_touched = 0;  // expected distinct routed experts per MoE layer
  double memory_s = 0;         // bytes / (bandwidth · η_bw)
  double compute_s = 0;        // Σ flops / (peak · η_compute) per math format
  double comm_s = 0;           // TP all-reduce + EP dispatch/combine + PP hand-off
  double overhead_s = 0;       // per-step + per-layer fixed costs
  double time_s = 0;           // max(memory, compute) + comm + overhead (× pp stages)
  Bound bound = Bound::memory;
};

struct DecodeResult {
  StepBreakdown step;          // one decode (or verify + draft) step at the steady-state batch
  double tokens_per_step = 1;  // per sequence (speculative decoding > 1)
  double tpot_ms = 0;
  double per_request_tokens_per_s = 0;
  double output_tokens_per_s = 0;    // aggregate
  double total_tokens_per_s = 0;     // (input + output) tokens per second, aggregate
  double batch = 0;                  // sequences decoding in an average step
  double prefill_step_share = 0;     // share of steps that also carry a prefill chunk
  double roofline_tokens_per_s = 0;  // single-stream bandwidth roofline: BW / bytes per token
};

struct PrefillResult {
  double ttft_ms = 0;                 // mean time to first token at the requested concurrency
  double ttft_alone_ms = 0;           // one request on an idle system
  double tokens_per_s = 0;            // prompt tokens per second for one request on an idle system
  double aggregate_tokens_per_s = 0;  // prompt tokens per second at steady state
  double server_overhead_ms = 0;      // the server's per-request path, included in ttft_ms
  long long chunk_tokens = 0;
  int chunks = 0;
  Bound bound = Bound::compute;
};

struct PerfResult {
  ResolvedLayout layout;
  Efficiencies eff;
  DecodeResult decode;
  PrefillResult prefill;
  Bound bound = Bound::memory;             // binding term of the steady-state step
  Evidence evidence = Evidence::default_;  // weakest tier among the factors used
  double spec_expected_tokens = 1;         // (1 − α^(K+1)) / (1 − α)
  int spec_tokens = 0;
  double spec_acceptance = 0;
  double weights_bytes = 0;  // whole model
  double kv_bytes_per_token = 0;
  std::vector<std::string> notes;
};

// Steady-state estimate at req.concurrency. Throws Error on inconsistent input.
PerfResult estimate(const PerfRequest& req, const Catalog& cat);

// One decode step for `batch` sequences at context `context` (no prefill mixed in),
// exposed for property tests and the single-stream roofline.
StepBreakdown decode_step(const PerfRequest& req, const Catalog& cat, double batch, double context);
// One prefill-only step: `tokens` prompt tokens of `seqs` prompts at mean position `prefix`
// (no decode mixed in), as a disaggregated prefill worker runs it (deployment.hpp).
StepBreakdown prefill_step(const PerfRequest& req, const Catalog& cat, double tokens, double prefix,
                           double seqs);

struct SweepPoint {
  long long concurrency = 0;
  PerfResult result;
  bool meets_sla = true;
};

// How many sequences one engine group (a replica: the GPUs of one engine instance) runs at
// once: what the KV memory holds and what the engine's scheduler admits (engines.json
// `max_num_seqs`). Every command that picks a concurrency — plan, menus, recommend, the sweep,
// deployments — takes it from here, so that none sizes a fleet for a batch the engine never runs.
struct ConcurrencyLimit {
  long long kv_limit = 0;      // fit(): KV memory at the context asked
  long long max_num_seqs = 0;  // the engine's scheduler cap
  long long slots() const { return std::min(kv_limit, max_num_seqs); }
  bool engine_binds() const { return max_num_seqs < kv_limit; }
};

// engines.json `max_num_seqs`; 256 (vLLM's and SGLang's default) when the catalog has none.
long long engine_max_num_seqs(const Engine& e);
ConcurrencyLimit concurrency_limit(long long kv_limit, const Engine& e);

struct SweepResult {
  std::vector<SweepPoint> points;
  long long max_concurrency = 0;   // the last point: limit.slots()
  ConcurrencyLimit limit;          // KV memory from fit() at input + output tokens; max_num_seqs
  long long knee_concurrency = 0;  // maximises aggregate × per-request tok/s (Kleinrock's "power")
  std::optional<long long> best_sla_concurrency;  // highest aggregate throughput meeting the SLA
  std::string limit_reason;
};

struct Sla {
  std::optional<double> tpot_ms;
  std::optional<double> ttft_ms;
  bool any() const { return tpot_ms || ttft_ms; }
  // Whether a point with these latencies meets every bound stated (bounds are inclusive; with
  // none, every point does). The one SLA predicate of sweep, recommend, menu and plan.
  bool met_by(double tpot, double ttft) const {
    return (!tpot_ms || tpot <= *tpot_ms) && (!ttft_ms || ttft <= *ttft_ms);
  }
};

// C = 1, 2, 4, … up to the concurrency limit (inclusive): the KV-memory limit from fit() at
// input + output tokens, with the engine's memory utilization, capped at the engine's
// max_num_seqs. Throws what estimate() and fit() throw.
SweepResult sweep(const PerfRequest& req, const Catalog& cat, const Sla& sla = {});

// The scheduler's token budget per forward pass that engine `e` runs on device `d`
// (engines.json `<kind>.prefill_chunk_tokens`; vLLM, SGLang and TensorRT-LLM 8,192, llama.cpp's
// n_ubatch 512): what fit() sizes one pass's activations for, so that a llama.cpp card is not
// charged the activations of a server engine's 8,192-token chunk.
long long engine_prefill_chunk_tokens(const Engine& e, const Device& d);

// The fit question `plan`, menus, perf, the sweep and recommend ask of a group of `gpus` devices
// served by engine `e`: the engine's memory share, its prefill chunk, and the layout it runs on
// topology `t` (`asked` where set), at `context_tokens` per sequence, one sequence.
FitRequest engine_fit_request(const Model& m, const Device& d, int gpus, const PrecisionMix& mix,
                              const std::string& kv, const Engine& e, const Topology& t,
                              long long context_tokens, const Layout& asked = {});

// The fewest devices that hold `req` (model, precisions, context, concurrency) as engine `e`
// would run them on topology `t`: for each count, the engine's own layout for it (a layer split
// stays one; --dp-attention is kept), accepted by the layout rules (check_layout) and fitting —
// what `fit --gpus N` would answer FITS. 0 when nothing up to 512 does.
int min_gpus_that_fit(const FitRequest& req, const Engine& e, const Topology& t,
                      const Catalog& cat);

// The fit() request a performance request implies: engine_fit_request at input + output tokens
// on the request's topology and layout. Throws Error when model, device or engine is missing.
FitRequest fit_request_for(const PerfRequest& req, const Catalog& cat);

// Why a request of `input + output` tokens cannot run on `m` (nothing when it can): beyond the
// trained context (models.json max_context_tokens), unless `allow_extension` is given and the
// model's context-extension method reaches that far. perf refuses such a request and
// validate-perf such a row, with these words.
std::optional<std::string> context_refusal(const Model& m, long long input, long long output,
                                           bool allow_extension);

// T1: tokens produced in a 30-day month by one sustained token per second.
constexpr double kSecondsPerMonth30 = 30.0 * 24 * 3600;
inline double tokens_per_month(double tokens_per_s) {
  return tokens_per_s * kSecondsPerMonth30;
}

// Expected tokens per verify step with draft length k and per-position acceptance a
// (Leviathan et al. 2023, eq. 1): (1 − a^(k+1)) / (1 − a).
double spec_expected_tokens(int k, double a);

// Expected distinct experts touched by `tokens` tokens routing top-k of E experts
// (uniform routing, optionally skewed): E_eff·(1 − (1 − k/E_eff)^tokens), E_eff = (1 − skew)·E.
double expected_experts_touched(int experts, int top_k, double tokens, double skew = 0);

// What the decoding sequences of a closed loop see of the other requests' prompt chunks, one
// prompt at a time per replica (§Serving steady state): the share of their steps and of their time
// that carry a chunk. `decoding` of `resident` requests decode `decode_steps` steps each; a prompt
// keeps the engine in chunk steps for `service_s` (its chunk steps' time); chunk steps take
// `chunk_step_s`, and decode-only steps, which all `resident` requests decode in,
// `decode_step_s`. While nothing is prefilled, no prompt waits, so all requests decode; with
// chunk steps a share ρ = X·service of the time, the decoders' time in them is B − C·(1 − ρ) of B,
// and the tokens they emit, B per TPOT, must equal X·decode_steps.
struct DecodeView {
  double step_share = 0;  // of a decoder's steps, those that carry a chunk
  double time_share = 0;  // of a decoder's time, the chunk steps'
  double step_s = 0;      // a decoder's mean step: TPOT × tokens per step
};
DecodeView prefill_seen_by_decoders(double decoding, double resident, double decode_steps,
                                    double service_s, double decode_step_s, double chunk_step_s);

// Mean TTFT (before the server's per-request path) in a closed loop of `population` requests per
// prefill server, each decoding `decode_s` before its client sends the next prompt; a prompt's
// prefill takes `service_s` and holds the server `busy_s` of it (less under pipeline stages, or
// for a pool of servers taken as one; at most `service_s`), and with the prefill idle it waits
// for the decode step running (`running_step_s`, half on average). Mean value analysis
// (§Serving steady state / TTFT); a fractional population interpolates between its neighbours.
double closed_loop_ttft_s(double service_s, double busy_s, double decode_s, double population,
                          double running_step_s);

// Prompt tokens in a step that carries prefill (§Serving steady state): room = max(1, budget −
// decode_tokens); one prompt (capped at the room) while the demand per step is below it,
// otherwise the demand, capped at the room (several prompts packed into one step, as vLLM/SGLang
// chunked prefill and TensorRT-LLM's max_num_tokens do).
double chunk_step_tokens(double budget, double decode_tokens, double prompt_tokens,
                         double demand_per_step);

// Efficiency of causal prefill attention over a chunk of `chunk_tokens` tokens of one sequence at
// `mean_position` (relative to its plateau): L_eff² / (L_eff² + half_len²), L_eff² =
// 2·chunk·max(mean_position, chunk/2); 1 when half_len ≤ 0 (no ramp).
double prefill_attention_ramp(double chunk_tokens, double mean_position, double half_len);

// PCIe bandwidth per direction, GB/s, for a generation and lane count.
double pcie_gb_s(int gen, int lanes);

}  // namespace moeplan
