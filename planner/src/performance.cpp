// Performance model. Formulas, constants and their sources: docs/performance.md
// (section names in the comments below refer to it).
#include "moeplan/performance.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <sstream>

#include "moeplan/burst.hpp"
#include "moeplan/errors.hpp"
#include "moeplan/layout.hpp"
#include "moeplan/text_parse.hpp"

namespace moeplan {

const char* evidence_name(Evidence e) {
  switch (e) {
    case Evidence::measured:
      return "measured";
    case Evidence::published:
      return "published";
    case Evidence::default_:
      return "default";
  }
  return "default";
}

const char* evidence_meaning(Evidence e) {
  switch (e) {
    case Evidence::measured:
      return "device layer from a calibration of this device";
    case Evidence::published:
      return "published measurements of this configuration exist";
    case Evidence::default_:
      break;
  }
  return "catalog datasheet figures with default device derating and engine profiles";
}

const char* spec_method_name(SpecMethod s) {
  switch (s) {
    case SpecMethod::none:
      return "none";
    case SpecMethod::mtp:
      return "mtp";
    case SpecMethod::eagle:
      return "eagle";
    case SpecMethod::draft:
      return "draft";
  }
  return "none";
}

SpecMethod parse_spec_method(const std::string& s) {
  if (s.empty() || s == "none") return SpecMethod::none;
  if (s == "mtp") return SpecMethod::mtp;
  if (s == "eagle") return SpecMethod::eagle;
  if (s == "draft") return SpecMethod::draft;
  throw UnknownIdError("speculative method", s, {"none", "mtp", "eagle", "draft"});
}

std::optional<Arrivals> parse_arrivals_mode(const std::string& word) {
  if (word.empty() || word == "steady") return Arrivals::steady;
  if (word == "together") return Arrivals::together;
  if (word == "once") return Arrivals::once;
  return std::nullopt;
}

SpecConfig parse_spec(const std::string& text) {
  SpecConfig c;
  std::istringstream in(text);
  std::string tok;
  auto bad = [&](const std::string& why) {
    return Error(
        fmt::format("speculative decoding '{}': {} (expected a method — none, mtp, "
                    "eagle, draft — then tokens=K and acceptance=α, e.g. "
                    "'mtp tokens=3 acceptance=0.41')",
                    text, why));
  };
  if (!(in >> tok)) return c;
  try {
    c.method = parse_spec_method(tok);
  } catch (const Error&) {
    throw bad(fmt::format("unknown method '{}'", tok));
  }
  while (in >> tok) {
    if (c.method == SpecMethod::none) throw bad("'none' takes no settings");
    const auto setting = split_setting(tok);
    if (!setting) throw bad(fmt::format("'{}' is not key=value", tok));
    const auto& [key, val] = *setting;
    const std::optional<double> number = parse_finite(val);
    if (!number) throw bad(fmt::format("'{}' needs a number", tok));
    const double v = *number;
    if (key == "tokens") {
      if (v < 1 || v > 64 || v != std::floor(v))
        throw bad(fmt::format("'{}': K is a whole number from 1 to 64", tok));
      c.tokens = static_cast<int>(v);
    } else if (key == "acceptance") {
      if (v < 0 || v > 0.999) throw bad(fmt::format("'{}': α is from 0 to 0.999", tok));
      c.acceptance = v;
    } else {
      throw bad(fmt::format("unknown key '{}'", key));
    }
  }
  return c;
}

const char* bound_name(Bound b) {
  switch (b) {
    case Bound::memory:
      return "memory";
    case Bound::compute:
      return "compute";
    case Bound::communication:
      return "communication";
    case Bound::overhead:
      return "overhead";
  }
  return "memory";
}

double spec_expected_tokens(int k, double a) {
  if (k <= 0) return 1.0;
  a = std::clamp(a, 0.0, 0.999999);
  return (1.0 - std::pow(a, k + 1)) / (1.0 - a);
}

double expected_experts_touched(int experts, int top_k, double tokens, double skew) {
  if (experts <= 0 || top_k <= 0 || tokens <= 0) return 0.0;
  // §Decode step / routed experts: uniform routing makes each token pick k of E experts;
  // the chance an expert is missed by all tokens is (1 − k/E)^tokens. Skew s concentrates
  // the traffic on E_eff = (1 − s)·E experts (never fewer than k).
  const double e = std::max<double>(top_k, (1.0 - std::clamp(skew, 0.0, 0.99)) * experts);
  const double p_miss = std::pow(1.0 - top_k / e, tokens);
  return e * (1.0 - p_miss);
}

double prefill_attention_ramp(double chunk_tokens, double mean_position, double half_len) {
  // §Decode step / FLOPs, prefill attention by length. A causal FlashAttention call over a chunk
  // of P tokens at mean position m does work ∝ P·m per head, the same as one whole prompt of
  // L_eff = sqrt(2·P·m) tokens (P = m·2 = L for a prompt in one chunk). Its efficiency rises
  // with that work: L_eff² / (L_eff² + L½²). Measured on one H200 (FA2 through SDPA, 32/8 and
  // 64/8 heads × 128, 2026-11-26; docs/performance.md "Device layer against measured H200
  // curves"): with L½ = 1,024 and a 600 TFLOP/s plateau this gives 120 / 300 / 480 / 565 / 591
  // TFLOP/s at 512 / 1,024 / 2,048 / 4,096 / 8,192 tokens against 135–172 / 253–331 / 406–466 /
  // 530–577 / 608–618 measured.
  if (half_len <= 0 || chunk_tokens <= 0) return 1.0;
  const double work = 2.0 * chunk_tokens * std::max(mean_position, 0.5 * chunk_tokens);
  return work / (work + half_len * half_len);
}

DecodeView prefill_seen_by_decoders(double decoding, double resident, double decode_steps,
                                    double service_s, double decode_step_s, double chunk_step_s) {
  // §Serving steady state. Before 2026-11-28 a decoder was charged the share f·(C − 1)/C of the
  // *steps* that carry a chunk, f from the prompt tokens due per step. That share is per step, but
  // chunk steps are long: a 512-token chunk of glm-5.2 on one EPYC socket takes 13 s against a
  // 0.13 s decode step, so prefill kept the socket busy 89% of the time at concurrency 3 while the
  // decoders were charged 1.4% of their steps, and the output (4.3 tok/s) needed 2.5× the decode
  // steps that fit in the remaining 11% — throughput above what the machine can do, and falling
  // as concurrency rose (audit V5). Here the shares are of time and the tokens are conserved:
  //   X·D = B·(s/T_chunk + (1 − s)/T_dec),  s = 1 − C·(1 − X·S)/B clamped to [0, 1],
  // linear in X once unclamped; s = 0 (no chunk seen: one request alone) gives X = B/(D·T_dec).
  DecodeView v;
  v.step_s = decode_step_s;
  if (decoding <= 0 || decode_steps <= 0 || decode_step_s <= 0 || chunk_step_s <= 0) return v;
  const double a = 1.0 / chunk_step_s, b = 1.0 / decode_step_s;
  const double B = decoding, C = std::max(resident, decoding), S = std::max(0.0, service_s);
  const double unclamped = (B * a + (b - a) * C) / (decode_steps + (b - a) * C * S);
  const double x = std::min(unclamped, B * b / decode_steps);
  const double rho = std::min(1.0, x * S);
  v.time_share = std::clamp(1.0 - C * (1.0 - rho) / B, 0.0, 1.0);
  const double steps_per_s = v.time_share * a + (1.0 - v.time_share) * b;
  v.step_share = v.time_share * a / steps_per_s;
  v.step_s = 1.0 / steps_per_s;
  return v;
}

double closed_loop_ttft_s(double service_s, double busy_s, double decode_s, double population,
                          double running_step_s) {
  // §Serving steady state / TTFT. A closed loop of N requests (each decodes for `decode_s`, then
  // its client sends the next prompt at once) is a two-station network: the prefill, one prompt
  // at a time, and the decode, where every request spends the same time. Mean value analysis
  // (arrival theorem: a prompt arriving at population n sees the queue of population n − 1):
  //   R(n) = S + S_b·(Q(n−1) − U(n−1)/2) + (1 − U(n−1))·(n − 1)/n·T/2,  X(n) = n/(R(n) + Z),
  //   Q(n) = X(n)·(R(n) − S + S_b),  U(n) = X(n)·S_b,
  // S the prompt's prefill latency and S_b the time it holds the server (S_b = S with one stage),
  // the prompt in service having S_b/2 left on average (deterministic service) and, with the
  // prefill idle, the other requests' decode step already running T/2 ((n − 1)/n: none alone). The
  // open M/D/1 queue used before 2026-11-28 ignored that at most N − 1 prompts can be ahead: at
  // high load it made more requests wait than were in flight, which starved the decoders (audit V5:
  // output fell with concurrency on a CPU whose 8K prompts keep it busy most of the time).
  if (service_s <= 0) return 0.0;
  const double busy = std::clamp(busy_s, 0.0, service_s);
  const double n_max = std::max(1.0, population);
  const long long whole = std::min<long long>(static_cast<long long>(std::ceil(n_max)), 1000000);
  double q = 0, u = 0, r = 0, r_prev = 0;
  for (long long n = 1; n <= whole; ++n) {
    r_prev = r;
    const double others = static_cast<double>(n - 1) / static_cast<double>(n);
    r = service_s + busy * (q - u / 2.0) + (1.0 - u) * others * running_step_s / 2.0;
    const double x = static_cast<double>(n) / (r + std::max(0.0, decode_s));
    // Only the time a prompt holds the prefill queues the next one: with pipeline stages a prompt
    // takes the whole latency S but holds each stage for its own share.
    q = x * (r - service_s + busy);
    u = std::min(1.0, x * busy);
  }
  // A fractional population (requests split over replicas): between its two whole neighbours.
  const double frac = n_max - std::floor(n_max);
  return whole > 1 && frac > 0 ? r_prev + frac * (r - r_prev) : r;
}

double chunk_step_tokens(double budget, double decode_tokens, double prompt_tokens,
                         double demand_per_step) {
  // §Serving steady state: a step holds at most `budget` tokens, the decoders' first. While
  // the prompt tokens due per step are fewer than one prompt, a chunk step carries one prompt
  // (or the budget's worth of it); when more are due, the scheduler packs several prompts into
  // each step (vLLM/SGLang chunked prefill, TensorRT-LLM max_num_tokens), so every step carries
  // the demand, up to the room left. Before issue 14 a step never carried more than one prompt,
  // which capped the decoding batch at B ≤ O·S/I (≈ 1,000 sequences at 1000/1000) however much
  // KV memory was free.
  const double room = std::max(1.0, budget - decode_tokens);
  const double one = std::min(std::max(1.0, prompt_tokens), room);
  return std::min(room, std::max(one, demand_per_step));
}

double pcie_gb_s(int gen, int lanes) {
  // Per lane per direction after encoding: gen3 0.985, gen4 1.969, gen5 3.938, gen6 7.563 GB/s.
  double per_lane = 0.985;
  if (gen >= 6)
    per_lane = 7.563;
  else if (gen == 5)
    per_lane = 3.938;
  else if (gen == 4)
    per_lane = 1.969;
  return per_lane * (lanes > 0 ? lanes : 16);
}

// ---------------------------------------------------------------------------
// Efficiencies (§Efficiencies)
// ---------------------------------------------------------------------------
namespace {

struct DeviceDefaults {
  double bw, compute, link, link_latency_us;
};

// Device layer defaults: datasheet × documented derating (§Efficiencies, table D).
DeviceDefaults device_defaults(DeviceKind k) {
  switch (k) {
    case DeviceKind::gpu:
      return {0.90, 0.75, 0.80, 8.0};
    case DeviceKind::cpu:
      return {0.80, 0.60, 0.80, 30.0};
    case DeviceKind::unified:
      return {0.85, 0.60, 0.80, 30.0};
  }
  return {0.90, 0.75, 0.80, 8.0};
}

struct EngineDefaults {
  double bw, compute, attention, step_ms, layer_us, moe_layer_us, chunk;
};

// Engine layer fallbacks when data/engines.json has no value (§Efficiencies, table E).
EngineDefaults engine_fallback(DeviceKind k) {
  if (k == DeviceKind::gpu) return {0.85, 0.80, 0.60, 1.0, 20.0, 30.0, 8192};
  return {0.80, 0.70, 0.50, 1.0, 20.0, 30.0, 512};
}

// Lookup order (§Efficiencies, device classes): `<kind>.<vendor>.<name>` (a device class such as
// unified.apple or gpu.amd, whose kernels differ from the kind's default), then `<kind>.<name>`,
// then the bare `<name>`.
Factor engine_factor(const Engine& e, const std::string& kind, const std::string& vendor,
                     const std::string& name, double fallback) {
  auto it = e.efficiency.find(kind + "." + vendor + "." + name);
  if (!vendor.empty() && it != e.efficiency.end())
    return {it->second, Evidence::published,
            fmt::format("engines.json {} {}.{}.{}", e.id, kind, vendor, name)};
  it = e.efficiency.find(kind + "." + name);
  if (it != e.efficiency.end())
    return {it->second, Evidence::published,
            fmt::format("engines.json {} {}.{}", e.id, kind, name)};
  it = e.efficiency.find(name);
  if (it != e.efficiency.end())
    return {it->second, Evidence::published, fmt::format("engines.json {} {}", e.id, name)};
  return {fallback, Evidence::default_, fmt::format("built-in {} default", kind)};
}

}  // namespace

Efficiencies resolve_efficiencies(const Device& device, const Engine& engine,
                                  const DeviceCalibration* cal) {
  const std::string kind = device_kind_name(device.kind);
  const DeviceDefaults dd = device_defaults(device.kind);
  const EngineDefaults ed = engine_fallback(device.kind);
  Efficiencies e;
  const std::string dsrc = fmt::format("datasheet × {} derating", kind);
  e.dev_bw = {dd.bw, Evidence::default_, dsrc};
  e.dev_compute = {dd.compute, Evidence::default_, dsrc};
  e.dev_link = {dd.link, Evidence::default_, dsrc};
  e.link_latency_us = {dd.link_latency_us, Evidence::default_, dsrc};
  // Engine profiles are fitted against published benchmark rows (validate-perf), hence
  // "published" when the catalog carries them.
  e.eng_bw = engine_factor(engine, kind, device.vendor, "bw", ed.bw);
  e.eng_compute = engine_factor(engine, kind, device.vendor, "compute", ed.compute);
  e.eng_attention = engine_factor(engine, kind, device.vendor, "attention", ed.attention);
  e.step_overhead_ms = engine_factor(engine, kind, device.vendor, "step_overhead_ms", ed.step_ms);
  e.layer_overhead_us =
      engine_factor(engine, kind, device.vendor, "layer_overhead_us", ed.layer_us);
  e.moe_layer_overhead_us =
      engine_factor(engine, kind, device.vendor, "moe_layer_overhead_us", ed.moe_layer_us);
  e.prefill_chunk_tokens =
      engine_factor(engine, kind, device.vendor, "prefill_chunk_tokens", ed.chunk);
  if (engine.efficiency.count(kind + ".comm_latency_us") ||
      engine.efficiency.count(kind + "." + device.vendor + ".comm_latency_us"))
    e.link_latency_us = engine_factor(engine, kind, device.vendor, "comm_latency_us", 0);
  if (cal) {
    const std::string src = "calibration " + cal->file;
    // A measured sustained figure replaces datasheet × derating (the device layer).
    if (cal->bandwidth_gb_s > 0 && device.memory_bandwidth_gb_s > 0)
      e.dev_bw = {cal->bandwidth_gb_s / device.memory_bandwidth_gb_s, Evidence::measured, src};
    const double peak = device.peak_tflops_for("bf16");
    if (cal->bf16_tflops > 0 && peak > 0)
      e.dev_compute = {cal->bf16_tflops / peak, Evidence::measured, src};
    const double link =
        device.nvlink_gb_s > 0 ? device.nvlink_gb_s : pcie_gb_s(device.pcie_gen, device.pcie_lanes);
    if (cal->link_gb_s > 0 && link > 0)
      e.dev_link = {cal->link_gb_s / link, Evidence::measured, src};
    if (cal->link_latency_us > 0)
      e.link_latency_us = {cal->link_latency_us, Evidence::measured, src};
    // The probe's per-layer fixed cost (layer.decode intercept), only when that class passed the
    // quality floor (calibration_device.cpp). Measured on a MoE layer it already holds the
    // router / permute / combine launches, so the separate MoE-layer cost drops to zero.
    if (cal->layer_overhead_us > 0) {
      e.layer_overhead_us = {cal->layer_overhead_us, Evidence::measured,
                             src + " (layer.decode intercept)"};
      if (cal->layer_overhead_moe)
        e.moe_layer_overhead_us = {0.0, Evidence::measured,
                                   src + " (in the measured MoE layer overhead)"};
    }
  }
  return e;
}

// ---------------------------------------------------------------------------
// Links (§Communication)
// ---------------------------------------------------------------------------
namespace {

// Cards without peer-to-peer (GeForce) move collective data GPU → pinned host memory → GPU:
// every byte crosses PCIe twice (half the effective bandwidth) and each step pays an extra
// staging hop. NCCL falls back to its SHM transport when P2P is unavailable (NCCL docs,
// NCCL_P2P_DISABLE / NCCL_SHM_DISABLE); the 10 µs hop is an estimate (§Communication).
constexpr double kPcieHostExtraLatencyUs = 10.0;
// Line rate → sustained NCCL bus bandwidth across nodes: the same 0.8 derating as the
// scale-up default (device layer table D).
constexpr double kScaleOutDerating = 0.8;

// Per-collective latency added by crossing the scale-out fabric when the catalog gives none
// (estimates, §Communication): RDMA fabrics a few µs per hop plus NCCL's inter-node protocol,
// TCP Ethernet tens of µs.
double scale_out_latency_default_us(const std::string& kind) {
  if (kind == "infiniband") return 10.0;
  if (kind == "roce") return 15.0;
  return 30.0;
}

}  // namespace

Links links_for(const Topology& t, const Device& d, const Efficiencies& eff,
                const DeviceCalibration* cal) {
  Links k;
  double up = t.scale_up.gb_s_per_gpu;
  if (up <= 0) up = d.nvlink_gb_s > 0 ? d.nvlink_gb_s : pcie_gb_s(d.pcie_gen, d.pcie_lanes);
  const bool host = t.scale_up.kind == ScaleUpKind::pcie_host;
  k.scale_up.kind = scale_up_kind_name(t.scale_up.kind);
  if (cal && cal->link_gb_s > 0) {
    k.scale_up.gb_s = cal->link_gb_s;  // measured bus bandwidth: already the real path
  } else {
    k.scale_up.gb_s = up * eff.dev_link.value / (host ? 2.0 : 1.0);
  }
  k.scale_up.latency_us = eff.link_latency_us.value;
  if (!(cal && cal->link_latency_us > 0)) {
    k.scale_up.latency_us = std::max(k.scale_up.latency_us, t.scale_up.latency_us);
    if (host) k.scale_up.latency_us += kPcieHostExtraLatencyUs;
  }
  k.scale_out.kind = t.scale_out.kind.empty() ? std::string("none") : t.scale_out.kind;
  const double out_gb_s =
      t.scale_out.gb_s_per_node() / std::max(1, t.gpus_per_node) * kScaleOutDerating;
  k.scale_out.gb_s = out_gb_s;
  k.scale_out.latency_us =
      out_gb_s <= 0
          ? 0.0  // no fabric: nothing to cross
          : k.scale_up.latency_us + (t.scale_out.latency_us > 0
                                         ? t.scale_out.latency_us
                                         : scale_out_latency_default_us(k.scale_out.kind));
  return k;
}

// ---------------------------------------------------------------------------
// The prepared model: everything that does not depend on batch or context.
// ---------------------------------------------------------------------------
namespace {

constexpr double kBf16Bytes = 2.0;
// Rows up to which a "GEMM" runs as a matrix-vector kernel (bandwidth-bound, no ramp).
constexpr double kGemvRows = 8.0;
// DeepSeek-V3.2 DSA "lightning indexer": 64 heads × 128 dims (V3.2 config index_n_heads /
// index_head_dim; §Attention forms). Its key cache (kDsaIndexerBytesPerToken, FP8 keys with one
// fp32 scale per 128) is defined in sizing.hpp, shared with fit().
constexpr double kDsaIndexerFlopsPerPair = 2.0 * 64 * 128;

struct Prepared {
  const Model* m = nullptr;
  const Device* d = nullptr;
  ResolvedLayout L;
  Efficiencies eff;
  const DeviceCalibration* cal = nullptr;
  double skew = 0;

  // whole-model figures
  int layers = 0;          // decoder layers a step runs (1 for a draft head, §Speculative)
  double dense_bytes = 0;  // attention + dense FFN + shared experts + LM head (read every step)
  double replicated_bytes = 0;  // part of dense_bytes every TP rank reads whole (DP-attention,
                                // MLA q_a/kv_a; docs/memory.md "Weights per GPU")
  double routed_bytes = 0;      // all routed experts
  double weights_total = 0;
  int moe_layers = 0;
  int experts = 0, top_k = 0;
  double sec_per_token_linear = 0;   // Σ_c 2·active_params_c / effective peak_c (one GPU)
  double sec_per_token_routed = 0;   // the routed-expert part of the above
  double sec_per_token_lm_head = 0;  // the LM-head part of the above
  double flops_per_token_lm_head = 0;
  double flops_per_token_routed = 0;
  double flops_per_token_linear = 0;
  // attention
  double kv_bytes_window_layer = 0;  // per token, one sliding-window layer
  double kv_bytes_full_layer = 0;    // per token, one full-attention layer (global geometry)
  int full_layers = 0, window_layers = 0;
  long long window = 0;
  long long sparse_topk = 0;
  bool dsa = false;
  double attn_flops_pair_decode = 0;  // per (query token, key token, layer)
  double attn_flops_pair_prefill = 0;
  // Full-attention layers' FLOPs per pair relative to the above (Gemma 4's global layers: head
  // dim 512 against 256, so 2; 1 elsewhere).
  double attn_full_pair_ratio = 1;
  double attn_peak = 0;  // effective FLOP/s for attention math, one GPU
  // Prefill attention (FlashAttention-class kernels): plateau FLOP/s and the length at which
  // half of it is reached (0: no ramp; §Decode step / FLOPs, prefill attention by length).
  double attn_peak_prefill = 0;
  double attn_half_len = 0;
  KvShare kv_share;  // fraction of each layer kind's KV held (and read) by one GPU
  // device
  double bw = 0;         // effective bytes/s, one GPU
  double peak_bf16 = 0;  // effective FLOP/s, one GPU
  // links (§Communication): bytes/s per GPU and seconds per collective
  double up_bw = 0, up_lat = 0;    // inside the scale-up domain
  double out_bw = 0, out_lat = 0;  // across domains (scale-out fabric)
  double tp_bw = 0, tp_lat = 0;    // the tensor-parallel ring's bottleneck link
  double ep_in_share = 0;          // share of a rank's all-to-all bytes to peers in its domain
  double ep_out_share = 0;         // … and to peers in other domains
  int pp_cross = 0;                // pipeline boundaries that cross a domain
  double hidden = 0;
  // memory limit
  double kv_free_per_gpu = 0;  // on the most loaded GPU
  // Per pipeline stage (one when pp = 1): its layers and the KV budget of each of its GPUs; the
  // KV limit is the tightest stage's (docs/memory.md, "Pipeline stages").
  std::vector<PpStage> stages;
  // Each stage's room before activations (capacity − weights − a draft model's weights), and
  // the chunk the activations are sized for: the activations grow with the sequences sampled
  // per step, so the KV limit is found at the resident count, not at the requested one.
  std::vector<double> stage_room;
  long long act_chunk = 0;
  double kv_per_token_total = 0;      // all layers, MTP layers included when loaded (reported)
  double kv_write_per_token_gpu = 0;  // what one prefill token writes on one GPU (decoder layers)
  double kv_bytes_per_element = 2;
  bool mtp_loaded = false;  // --spec mtp: the MTP layers are loaded, with their weights and KV
  double lm_head_bytes = 0;
  double gemm_half_tokens = 0;  // M½ (0: no ramp) of the GEMM efficiency ramp
  // Host (CPU) seconds per sequence in a step: the engine's per-request scheduling and sampler
  // bookkeeping (engine key `host_us_per_seq`; 0: not modelled; §Fixed costs).
  double host_s_per_seq = 0;
  // GPU seconds per routed (token, expert) pair per MoE layer on the GPU that holds the expert:
  // routing, permutation and activation quantisation around the grouped GEMMs (engine key
  // `moe_pair_ns.<device>.<format>`, measured; 0: not modelled; §Decode step / routed pairs).
  double moe_pair_s = 0;
  // Math formats whose GEMMs run at the engine's measured plateau on this device, with it
  // (TFLOP/s), for the estimate's notes.
  std::map<std::string, double> measured_gemm;
};

// The math format a component's GEMMs run in on `d`: its hardware format where the device has
// it, else 16-bit (the same fallback as Device::peak_tflops_for; §Decode step / FLOPs).
std::string gemm_math_format(const Device& d, const std::string& hw_format) {
  if ((hw_format == "fp8" || hw_format == "fp4" || hw_format == "int8") &&
      d.has_hw_format(hw_format))
    return hw_format;
  return "bf16";
}

// The engine's own GEMM plateau measured on this device for a math format, TFLOP/s (engine key
// `gemm_tflops.<device id>.<format>`; 0 when not measured). It replaces datasheet × device
// derating × engine compute efficiency for the GEMMs of that format (§Efficiencies, measured
// GEMM plateaus): the engine's production kernels on the real part already include both.
double measured_gemm_tflops(const Engine& e, const Device& d, const std::string& fmt) {
  const auto it = e.efficiency.find("gemm_tflops." + d.id + "." + fmt);
  return it != e.efficiency.end() && it->second > 0 ? it->second : 0.0;
}

// The engine's measured cost per routed (token, expert) pair on `d` for experts in `fmt`
// (`moe_pair_ns.<device>.<format>`), 0 when the catalog has none.
double measured_moe_pair_ns(const Engine& e, const Device& d, const std::string& fmt) {
  const auto it = e.efficiency.find("moe_pair_ns." + d.id + "." + fmt);
  return it != e.efficiency.end() && it->second > 0 ? it->second : 0.0;
}

// Which link each collective of the layout crosses (§Communication). Ranks are placed tp
// innermost, then dp, then pp stages, filling one scale-up domain before the next.
void set_links(Prepared& p, const Topology& t, int gpus) {
  const Links k = links_for(t, *p.d, p.eff, p.cal);
  p.up_bw = k.scale_up.gb_s * 1e9;
  p.up_lat = k.scale_up.latency_us * 1e-6;
  // No scale-out fabric known (a layout the rules would refuse): price it over the scale-up
  // link rather than divide by zero; callers that check layouts never get here.
  p.out_bw = k.scale_out.gb_s > 0 ? k.scale_out.gb_s * 1e9 : p.up_bw;
  p.out_lat = k.scale_out.gb_s > 0 ? k.scale_out.latency_us * 1e-6 : p.up_lat;
  const int dom = std::max(1, t.scale_up.domain_gpus);
  const ResolvedLayout& L = p.L;
  // A ring over domains runs at its slowest link and pays both latencies.
  const bool tp_out = group_crosses(L.tp, gpus, dom);
  p.tp_bw = tp_out ? std::min(p.up_bw, p.out_bw) : p.up_bw;
  p.tp_lat = tp_out ? p.out_lat : p.up_lat;
  if (L.ep > 1) {
    const bool ep_out = group_crosses(L.ep, gpus, dom);
    const int in_domain = ep_out ? std::min(L.ep, dom) : L.ep;
    p.ep_in_share = (in_domain - 1.0) / L.ep;
    p.ep_out_share = static_cast<double>(L.ep - in_domain) / L.ep;
  }
  const int stage = L.tp * L.dp;
  for (int s = 0; s + 1 < L.pp; ++s)
    if (stage >= dom || ((s + 1) * stage) % dom == 0) ++p.pp_cross;
}

namespace {

// Peak bf16 math after the efficiencies (a calibration's when the device has no datasheet
// figure), and decode and prefill attention's peaks (§Efficiencies).
void set_compute_peaks(Prepared& p, const PerfRequest& req) {
  const Device& d = *req.device;
  const double compute_eta = p.eff.dev_compute.value * p.eff.eng_compute.value;
  p.peak_bf16 = d.peak_tflops_for("bf16") * 1e12 * compute_eta;
  if (req.calibration && req.calibration->bf16_tflops > 0 && d.peak_tflops_for("bf16") <= 0)
    p.peak_bf16 = req.calibration->bf16_tflops * 1e12 * p.eff.eng_compute.value;
  p.attn_peak = p.peak_bf16 * p.eff.eng_attention.value / p.eff.eng_compute.value;
  const std::string kind = device_kind_name(d.kind);
  const double pf_eta =
      engine_factor(*req.engine, kind, d.vendor, "prefill_attention", p.eff.eng_attention.value)
          .value;
  p.attn_peak_prefill = p.peak_bf16 * pf_eta / p.eff.eng_compute.value;
  p.attn_half_len =
      engine_factor(*req.engine, kind, d.vendor, "prefill_attention_half_tokens", 0.0).value;
  if (p.peak_bf16 <= 0) throw Error(fmt::format("device {} has no peak compute figure", d.id));
}

// Math rate for one weight format: native hardware format when the device has it, else
// dequantised to 16-bit (§Decode step / FLOPs); a calibration's measured peaks, else the
// engine's measured GEMM plateau for the device (recorded in p.measured_gemm).
double component_peak(Prepared& p, const PerfRequest& req, const WeightFormat& wf) {
  const Device& d = *req.device;
  const double compute_eta = p.eff.dev_compute.value * p.eff.eng_compute.value;
  double peak = d.peak_tflops_for(wf.hw_format == "none" ? std::string("bf16") : wf.hw_format) *
                1e12 * compute_eta;
  if (req.calibration) {
    const double base = d.peak_tflops_for("bf16");
    const double ratio = base > 0 ? peak / (base * 1e12 * compute_eta) : 1.0;
    if (req.calibration->bf16_tflops > 0) peak = p.peak_bf16 * ratio;
    if (wf.hw_format == "fp8" && d.has_hw_format("fp8") && req.calibration->fp8_tflops > 0)
      peak = req.calibration->fp8_tflops * 1e12 * p.eff.eng_compute.value;
    if (wf.hw_format == "fp4" && d.has_hw_format("fp4") && req.calibration->fp4_tflops > 0)
      peak = req.calibration->fp4_tflops * 1e12 * p.eff.eng_compute.value;
  }
  if (!req.calibration) {
    // A calibration of this machine wins over the engine's table for the device model.
    const double measured_tflops =
        measured_gemm_tflops(*req.engine, d, gemm_math_format(d, wf.hw_format));
    if (measured_tflops > 0) {
      peak = measured_tflops * 1e12;
      p.measured_gemm[gemm_math_format(d, wf.hw_format)] = measured_tflops;
    }
  }
  if (peak <= 0) peak = p.peak_bf16;
  return peak;
}

// Bytes, FLOPs and seconds per token of the linear layers, component by component: routed
// experts count their active share, the embeddings only the LM head's GEMM.
void set_linear_layers(Prepared& p, const PerfRequest& req, const Catalog& cat,
                       const PrecisionMix& mix, const std::map<Component, double>& bytes) {
  const Model& m = *req.model;
  const auto arch = architecture_params(m);
  double arch_total = 0;
  for (const auto& [c, n] : arch) arch_total += n;
  const double scale = arch_total > 0 ? m.total_params_b * 1e9 / arch_total : 0;
  const bool moe = m.is_moe();
  const double active_frac = moe && p.experts > 0 ? static_cast<double>(p.top_k) / p.experts : 1.0;
  const double lm_frac = m.tied_embeddings ? 1.0 : 0.5;  // LM head share of the embedding bytes
  for (Component c : kComponents) {
    const double b = bytes.at(c);
    p.weights_total += b;
    const std::string& prec = mix.count(c) ? mix.at(c) : m.native_precision.at(c);
    const WeightFormat& wf = cat.weight_format(prec);
    const double peak = component_peak(p, req, wf);
    const double params = arch.at(c) * scale;
    double active_params = params;
    if (c == Component::routed_experts) {
      active_params = params * active_frac;
      p.routed_bytes = b;
    } else if (c == Component::embeddings) {
      active_params = params * lm_frac;  // the input embedding is a lookup, the LM head a GEMM
      p.lm_head_bytes = b * lm_frac;
      p.dense_bytes += p.lm_head_bytes;
    } else {
      p.dense_bytes += b;
    }
    const double f = 2.0 * active_params;
    p.flops_per_token_linear += f;
    p.sec_per_token_linear += f / peak;
    if (c == Component::routed_experts) {
      p.sec_per_token_routed = f / peak;
      p.flops_per_token_routed = f;
      if (!req.calibration)
        p.moe_pair_s = measured_moe_pair_ns(*req.engine, *req.device,
                                            gemm_math_format(*req.device, wf.hw_format)) *
                       1e-9;
    }
    if (c == Component::embeddings) {
      p.sec_per_token_lm_head = f / peak;
      p.flops_per_token_lm_head = f;
    }
  }
  p.replicated_bytes =
      bytes.at(Component::attention) * tp_replicated_attention_share(m, p.L.dp_attention);
}

// Attention forms (§Attention forms): KV bytes, windows and sparsity, FLOPs per (query, key).
void set_attention(Prepared& p, const Model& m, const KvFormat& kvf) {
  const Attention& a = m.attention;
  p.kv_bytes_window_layer = kv_bytes_per_token_per_layer(m, kvf.bits_per_element / 8.0);
  p.kv_bytes_full_layer = kv_bytes_per_token_per_full_layer(m, kvf.bits_per_element / 8.0);
  p.window_layers = a.sliding_window_tokens > 0 ? a.sliding_window_layers : 0;
  p.full_layers = m.layers - p.window_layers - a.linear_attention_layers;
  p.window = a.sliding_window_tokens;
  p.sparse_topk = a.sparse_topk_tokens;
  p.dsa = a.sparse_type == "dsa";
  if (a.type == AttentionType::mla) {
    // Decode runs MLA "absorbed": scores against the latent (kv_lora + rope) and values from the
    // latent (kv_lora), for every head. Prefill runs the expanded form (nope + rope keys, v
    // values).
    p.attn_flops_pair_decode = 2.0 * a.heads * (2.0 * a.kv_lora_rank + a.qk_rope_head_dim);
    p.attn_flops_pair_prefill =
        2.0 * a.heads * (a.qk_nope_head_dim + a.qk_rope_head_dim + a.v_head_dim);
  } else {
    p.attn_flops_pair_decode = 4.0 * a.heads * a.head_dim;
    p.attn_flops_pair_prefill = p.attn_flops_pair_decode;
    p.attn_full_pair_ratio = static_cast<double>(a.full_head_dim()) / a.head_dim;
  }
  p.kv_share = kv_share_for_layout(m, p.L);
  p.kv_bytes_per_element = kvf.bits_per_element / 8.0;
  p.kv_per_token_total = kv_bytes_for_context(m, p.kv_bytes_per_element, 1, p.mtp_loaded);
  p.kv_write_per_token_gpu = kv_bytes_per_gpu_for_context(m, p.kv_bytes_per_element, 1, p.L);
}

// Memory bandwidth after the efficiencies (a calibration's when the device has no datasheet
// figure), and the KV memory budget per GPU, the same arithmetic as fit() (docs/memory.md),
// activations included: sized for the engine's chunk (engine_prefill_chunk_tokens), as
// fit_request_for asks fit(), so that perf, fit, plan and the sweep agree on how many requests fit.
void set_memory(Prepared& p, const PerfRequest& req, const std::map<Component, double>& bytes) {
  const Device& d = *req.device;
  double bw_gb_s = d.memory_bandwidth_gb_s;
  if (bw_gb_s <= 0 && req.calibration) bw_gb_s = req.calibration->bandwidth_gb_s;
  if (bw_gb_s <= 0) throw Error(fmt::format("device {} has no memory bandwidth figure", d.id));
  p.bw = bw_gb_s * 1e9 * p.eff.dev_bw.value * p.eff.eng_bw.value;
  const double util = req.engine->memory_utilization;
  const double mem_gb = d.memory_gb > 0 ? d.engine_visible_memory_gb()
                                        : (req.calibration ? req.calibration->memory_gb : 0);
  const double capacity = mem_gb * 1e9 * util;
  const std::vector<double> stage_weights =
      stage_weight_bytes_per_gpu(*req.model, bytes, p.L, p.mtp_loaded);
  const double weights_gpu = *std::max_element(stage_weights.begin(), stage_weights.end());
  const double act =
      activation_bytes_per_gpu(*req.model, p.L, engine_prefill_chunk_tokens(*req.engine, d),
                               std::max<long long>(1, req.concurrency));
  p.kv_free_per_gpu = capacity - weights_gpu - act;
  p.stages = pp_stages(*req.model, p.L.pp);
  p.act_chunk = engine_prefill_chunk_tokens(*req.engine, d);
  for (double w : stage_weights) p.stage_room.push_back(capacity - w);
}

// --spec draft: the draft model's weights sit on the same GPUs (vLLM shards a draft model with
// the target's tensor parallelism), held outside the target's room like a reservation. They
// were left out: a 235B draft for a 30B target "fitted" one 80 GB H100 (audit 2026-11-27).
// fit_request_for and perf's own memory arithmetic both take them from here.
double draft_weights_bytes_per_gpu(const PerfRequest& req, const Catalog& cat) {
  if (req.spec.method != SpecMethod::draft || !req.spec.draft_model) return 0.0;
  PerfRequest draft = req;
  draft.model = req.spec.draft_model;
  draft.weights = {};
  draft.spec = {};
  return fit(fit_request_for(draft, cat), cat).per_gpu.front().weights_bytes;
}

// The draft's weights come out of every stage's room (docs/memory.md, "A separate draft model").
void reserve_draft(Prepared& p, const PerfRequest& req, const Catalog& cat) {
  const double w = draft_weights_bytes_per_gpu(req, cat);
  if (w == 0.0) return;
  p.kv_free_per_gpu -= w;
  for (auto& x : p.stage_room) x -= w;
}

}  // namespace

Prepared prepare(const PerfRequest& req, const Catalog& cat) {
  if (!req.model || !req.device || !req.engine)
    throw Error("perf: model, device and engine are required");
  const Model& m = *req.model;
  const Device& d = *req.device;
  Prepared p;
  p.m = &m;
  p.d = &d;
  p.cal = req.calibration;
  p.skew = req.routing_skew;
  const Topology topo = req.topology ? *req.topology : topology_for(cat, d);
  p.L = resolve_layout(m, req.gpus, effective_layout(*req.engine, topo, req.gpus, req.layout));
  p.eff =
      req.efficiencies ? *req.efficiencies : resolve_efficiencies(d, *req.engine, req.calibration);
  p.hidden = m.hidden_size;
  p.gemm_half_tokens =
      engine_factor(*req.engine, device_kind_name(d.kind), d.vendor, "gemm_half_tokens", 0.0).value;
  p.host_s_per_seq =
      engine_factor(*req.engine, device_kind_name(d.kind), d.vendor, "host_us_per_seq", 0.0).value *
      1e-6;
  const PrecisionMix mix = req.weights.empty() ? m.native_precision : req.weights;
  const auto bytes = weight_bytes(m, mix, cat);
  set_compute_peaks(p, req);
  const bool moe = m.is_moe();
  p.experts = moe ? m.moe->routed_experts : 0;
  p.top_k = moe ? m.moe->experts_per_token : 0;
  p.moe_layers = moe ? m.layers - m.moe->dense_layers : 0;
  p.layers = m.layers;
  set_linear_layers(p, req, cat, mix, bytes);
  // Speculative decoding with the model's MTP layers loads them: their weights and their own KV
  // cache take memory (fit_request_for asks fit() with include_mtp the same way). The step reads
  // them only in the draft pass (one_layer).
  p.mtp_loaded = req.spec.method == SpecMethod::mtp && m.mtp_layers > 0;
  set_attention(p, m, cat.kv_format(req.kv_precision.empty() ? "bf16" : req.kv_precision));
  const auto loaded = p.mtp_loaded ? weight_bytes(m, mix, cat, true) : bytes;
  set_memory(p, req, loaded);
  reserve_draft(p, req, cat);
  if (p.mtp_loaded) {  // the weights reported are the ones loaded, MTP layers included
    p.weights_total = 0;
    for (const auto& [c, b] : loaded) p.weights_total += b;
  }
  set_links(p, topo, req.gpus);
  return p;
}

// KV bytes one decoding sequence reads per step at `context` on one GPU: every layer kind at its
// own share of the heads (kv_share_for_layout), as fit stores them.
double kv_read_bytes(const Prepared& p, double context) {
  // Full-attention layers keep context / kv_compression entries (V4's compressed layers), as
  // kv_bytes_for_context stores them: a step cannot read more than that.
  const double stored = context / std::max(1.0, p.m->attention.kv_compression);
  double full_ctx = stored;
  if (p.sparse_topk > 0) full_ctx = std::min(stored, static_cast<double>(p.sparse_topk));
  double w_ctx = p.window > 0 ? std::min(context, static_cast<double>(p.window)) : context;
  double full = p.kv_bytes_full_layer * p.full_layers * full_ctx;
  if (p.dsa)  // the indexer scans every stored entry
    full += indexer_bytes_per_token_per_layer(*p.m) * p.full_layers * stored;
  return full * p.kv_share.full +
         p.kv_bytes_window_layer * p.window_layers * w_ctx * p.kv_share.window;
}

// Attention FLOPs of one query token at `context`, all layers.
double attn_flops_token(const Prepared& p, double context, bool prefill) {
  const double per_pair = prefill ? p.attn_flops_pair_prefill : p.attn_flops_pair_decode;
  double full_ctx = context;
  if (p.sparse_topk > 0) full_ctx = std::min(context, static_cast<double>(p.sparse_topk));
  const double w_ctx = p.window > 0 ? std::min(context, static_cast<double>(p.window)) : context;
  double f =
      per_pair * (p.full_layers * full_ctx * p.attn_full_pair_ratio + p.window_layers * w_ctx);
  if (p.dsa) f += kDsaIndexerFlopsPerPair * p.full_layers * context;
  return f;
}

// Calibration curve lookup: the measured efficiency of `op` at `key` (1 when the calibration has
// none: not measured, or below the quality floor).
double curve(const Prepared& p, const char* op, double key) {
  if (!p.cal || !p.cal->curve) return 1.0;
  const auto v = p.cal->curve(op, key);
  return v && *v > 0 ? *v : 1.0;
}
bool measured(const Prepared& p, const char* op, double key) {
  if (!p.cal || !p.cal->curve) return false;
  const auto v = p.cal->curve(op, key);
  return v && *v > 0;
}

// What a step works on (§Serving steady state): decoding sequences and prefill tokens.
struct StepLoad {
  double dec_seqs = 0;     // sequences decoding (each contributes q_per_seq query tokens)
  double q_per_seq = 1;    // 1, or K+1 for a speculative verify step
  double dec_context = 0;  // their mean context
  double pf_tokens = 0;    // prefill tokens in the step
  double pf_prefix = 0;    // mean position of those prefill tokens within their prompt
  double pf_seqs = 0;      // prompts the prefill tokens belong to
};

// How much more than an even share the busiest data-parallel replica carries (§Decode step /
// data parallelism). The per-GPU figures divide a step's sequences over the dp replicas (and,
// with DP attention, the attention over the tp ranks too); a sequence lives on one replica, so
// a step with fewer sequences than replicas leaves some idle and the busiest one holds a whole
// sequence. Without this a lone 8,000-token prompt on tp=2 × dp=4 was prefilled as if four
// replicas shared it: a quarter of its real TTFT, which let recommend pick DP layouts that miss
// the TTFT target.
struct Spread {
  double replica = 1;    // dense layers, activations, TP all-reduces, host loop: dp / busy
  double attention = 1;  // KV reads and writes, attention FLOPs: ways / busy ways
};

// Replicas that prefill prompts side by side: a prompt lives on one replica (one rank with DP
// attention), so a lone prompt gets one of them and a stream of prompts all of them.
double prefill_servers(const ResolvedLayout& L) {
  return static_cast<double>(L.dp) * (L.dp_attention ? L.tp : 1);
}

Spread step_spread(const ResolvedLayout& L, double seqs_per_mb) {
  Spread sp;
  const double dp = L.dp;
  const double ways = prefill_servers(L);
  sp.replica = dp / std::clamp(seqs_per_mb, 1.0, dp);
  sp.attention = ways / std::clamp(seqs_per_mb, 1.0, ways);
  return sp;
}

// Communication of one micro-batch through one stage (§Communication): tensor-parallel
// all-reduces after attention and after the FFN, and the expert-parallel all-to-all.
double stage_comm_s(const Prepared& p, double mb_tokens, double tokens, const Spread& spread) {
  const ResolvedLayout& L = p.L;
  const double pp = L.pp;
  const double gpus_stage = static_cast<double>(L.tp) * L.dp;
  const double layers_stage = p.layers / pp;
  double comm = 0;
  const double per_replica_tokens = mb_tokens / L.dp * spread.replica;
  if (L.tp > 1) {
    const double msg = per_replica_tokens * p.hidden * kBf16Bytes;
    const double ar =
        2.0 * (L.tp - 1) / L.tp * msg / (p.tp_bw * curve(p, "allreduce", tokens)) + p.tp_lat;
    comm += 2.0 * layers_stage * ar;  // after attention and after the FFN
  }
  if (p.experts > 0 && L.dp > 1 && L.ep > 1) {
    // Expert-parallel all-to-all: each token goes to top-k experts (fp8 dispatch, bf16 combine).
    // Peers in the same domain over the scale-up link, the others over the scale-out fabric;
    // both run at once, so the slower part sets the time.
    const double bytes_gpu = mb_tokens / gpus_stage * p.top_k * p.hidden * (1.0 + kBf16Bytes);
    const double t_in = bytes_gpu * p.ep_in_share / p.up_bw;
    const double t_out = bytes_gpu * p.ep_out_share / p.out_bw;
    const double lat = p.ep_out_share > 0 ? p.out_lat : p.up_lat;
    comm += (p.moe_layers / pp) * (std::max(t_in, t_out) + 2.0 * lat);
  }
  return comm;
}

// One activation hand-off per pipeline-stage boundary, over the link that boundary crosses
// (llama.cpp's layer split: one hop per card boundary); 0 without pipeline stages.
double pipeline_handoff_s(const Prepared& p, double mb_tokens, const Spread& spread) {
  const ResolvedLayout& L = p.L;
  if (L.pp <= 1) return 0;
  const double pp = L.pp;
  const double msg = mb_tokens / L.dp * spread.replica * p.hidden * kBf16Bytes;
  const double cross = p.pp_cross;
  return cross * (msg / p.out_bw + p.out_lat) + (pp - 1 - cross) * (msg / p.up_bw + p.up_lat);
}

// What bounds the step: communication or fixed overhead when either outlasts the roofline,
// else the larger of memory and compute.
Bound step_bound(const StepBreakdown& b) {
  const double roof = std::max(b.memory_s, b.compute_s);
  if (b.comm_s > roof && b.comm_s >= b.overhead_s) return Bound::communication;
  if (b.overhead_s > roof) return Bound::overhead;
  return b.memory_s >= b.compute_s ? Bound::memory : Bound::compute;
}

// Bytes one GPU moves for one micro-batch through one stage (§Decode step / bytes).
struct StepBytes {
  double dense = 0;     // non-expert weights
  double expert = 0;    // routed experts touched
  double kv_stage = 0;  // KV read and written: decode, prefill writes and prefix reads
  double kv_dec = 0;    // decode attention's share of kv_stage
  double act = 0;       // activations
};

StepBytes step_bytes(const Prepared& p, const StepLoad& s, double n_mb, double mb_tokens,
                     double experts_touched, const Spread& spread) {
  const ResolvedLayout& L = p.L;
  const double pp = L.pp;
  StepBytes m;
  m.dense = (p.dense_bytes - p.replicated_bytes) / (L.tp * pp) + p.replicated_bytes / pp;
  // Every GPU of the stage holds 1/(tp × dp) of each touched expert's bytes, as whole experts
  // (expert parallelism) or as slices (experts split by tensor parallelism).
  if (p.experts > 0)
    m.expert = experts_touched / p.experts * p.routed_bytes / (L.expert_shards() * pp);
  // KV on one GPU for one micro-batch (1/n_mb of the sequences) through this stage: kv_read_bytes
  // and kv_write_per_token_gpu already carry the stage's 1/pp of the layers, the 1/dp sequence
  // split and each layer kind's head split; the busiest replica's excess on top (Spread).
  m.kv_dec = s.dec_seqs * kv_read_bytes(p, s.dec_context) / n_mb * spread.attention;
  m.kv_stage =
      (s.dec_seqs * kv_read_bytes(p, s.dec_context) + s.pf_tokens * p.kv_write_per_token_gpu +
       s.pf_seqs * kv_read_bytes(p, s.pf_prefix)) /
      n_mb * spread.attention;
  m.act = mb_tokens / L.dp * spread.replica * p.hidden * kBf16Bytes * 8.0 * p.layers / pp;
  return m;
}

// Compute time of one micro-batch through one stage on one GPU, per kernel (§Decode step /
// FLOPs), and the calibration's measured efficiencies that divide each (1: none).
struct StepCompute {
  double dense_s = 0, expert_s = 0;  // linear layers at the GEMM plateau: dense, routed experts
  // The GEMM ramp's padding (§Efficiencies, GEMM ramp): the M½ rows' worth of plateau time a
  // tensor-core kernel of M rows spends beyond its own, M / (M + M½).
  double dense_pad_s = 0, expert_pad_s = 0;
  double attn_s = 0, attn_dec_s = 0;  // all attention, and decode attention's share
  double flops_per_gpu = 0;
  double g_dense = 1, g_expert = 1, a_dec = 1;
};

// A GEMM's compute time with the ramp's padding, which a kernel overlaps with streaming its
// weights: the padding adds at most the weights' own read time. Left uncapped, a fitted M½ above
// the roofline's ridge (TensorRT-LLM's 256 on an H200 in FP8, ridge ~146 rows; vLLM's 112 on an
// MI300X) made a 9-row GEMM take twice its weights' read time where an 8-row matrix-vector
// kernel took the read time: TPOT rose 47% from 8 to 9 sequences and output fell (audit
// 2026-11-27, V2). Production FP8 GEMMs on an H200 are flat at the read time up to 128-256 rows
// (../measurements, device curves), which the cap keeps.
double padded_gemm_s(double plateau_s, double pad_s, double read_s) {
  return plateau_s + std::min(pad_s, read_s);
}

// The linear layers' compute times with the ramp's padding: the dense GEMMs' capped at their
// weights' read time, the routed experts' uncapped (llama.cpp's per-expert matmuls on Strix Halo
// are not hidden behind the read). Their read times are the roofline's other side.
struct LinearTimes {
  double dense_read_s = 0, dense_s = 0, expert_read_s = 0, expert_s = 0;
};

StepCompute step_compute(const Prepared& p, const StepLoad& s, double n_mb, double mb_tokens,
                         double experts_touched, const Spread& spread) {
  const ResolvedLayout& L = p.L;
  const double pp = L.pp;
  const double gpus_stage = static_cast<double>(L.tp) * L.dp;
  StepCompute c;
  // Linear layers are balanced over the stage's GPUs; routed experts hit at least one expert's
  // worth of weights per touched expert, so their GEMM efficiency follows tokens. GEMM
  // efficiency ramps with the rows M of each GEMM as M / (M + M½): dense layers see the
  // replica's tokens, routed experts only the tokens routed to each one.
  const double m_dense = std::max(1.0, mb_tokens / L.dp * spread.replica);
  const double m_expert =
      experts_touched > 0 ? std::max(1.0, mb_tokens * p.top_k / experts_touched) : 1.0;
  // A calibration's measured kernel efficiencies (§Efficiencies, "With a calibration") are
  // fractions of the roofline max(memory, compute) of their own kernels, so each divides its
  // own term and replaces the engine's ramp for it: the dense GEMMs by M, the routed experts by
  // tokens per expert (else the GEMM curve at that M), decode attention by batch × context. A
  // term without one (not measured, or below the quality floor) keeps 1.
  const bool gemm_measured = measured(p, "gemm", m_dense);
  const bool moe_measured = measured(p, "moe_experts", m_expert);
  c.g_dense = curve(p, "gemm", m_dense);
  c.g_expert = moe_measured ? curve(p, "moe_experts", m_expert) : curve(p, "gemm", m_expert);
  // The ramp's padding as a share of the plateau time: M½ / M. Up to kGemvRows rows the
  // engines switch to matrix-vector kernels (llama.cpp's MMVQ / mul_mat_vec serve ≤ 8 rows),
  // which stream the weights at bandwidth: no tensor-core ramp.
  auto pad = [&](double m, bool measured_curve) {
    if (measured_curve || m <= kGemvRows) return 0.0;  // a measured curve instead, or a GEMV
    return p.gemm_half_tokens / m;
  };
  c.dense_s = mb_tokens * spread.replica / gpus_stage / pp *
              (p.sec_per_token_linear - p.sec_per_token_routed);
  c.expert_s = mb_tokens / gpus_stage / pp * p.sec_per_token_routed;
  c.dense_pad_s = c.dense_s * pad(m_dense, gemm_measured);
  c.expert_pad_s = c.expert_s * pad(m_expert, gemm_measured || moe_measured);
  const double attn_dec_flops =
      s.dec_seqs * s.q_per_seq * attn_flops_token(p, s.dec_context, false);
  const double pf_attn_flops = s.pf_tokens * attn_flops_token(p, s.pf_prefix, true) / n_mb;
  // Prefill attention runs at its own plateau, ramped by the causal work of one sequence's chunk
  // (prefill_attention_ramp); decode attention at the engine's attention peak (and the
  // calibration's measured decode-attention efficiency, at this micro-batch's positions per
  // replica: batch × context, the probe's key).
  const double pf_len_tokens = s.pf_seqs > 0 ? s.pf_tokens / s.pf_seqs : 0.0;
  const double pf_ramp = prefill_attention_ramp(pf_len_tokens, s.pf_prefix, p.attn_half_len);
  const double attn_gpus = gpus_stage / spread.attention;
  c.attn_dec_s = attn_dec_flops / n_mb / attn_gpus / pp / p.attn_peak;
  c.attn_s =
      (attn_dec_flops / n_mb / p.attn_peak + pf_attn_flops / (p.attn_peak_prefill * pf_ramp)) /
      attn_gpus / pp;
  c.a_dec = curve(p, "attention", s.dec_seqs / n_mb / L.dp * spread.replica * s.dec_context);
  c.flops_per_gpu = (mb_tokens * p.flops_per_token_linear * spread.replica +
                     (attn_dec_flops / n_mb + pf_attn_flops) * spread.attention) /
                    gpus_stage / pp;
  return c;
}

// Per-kernel roofline of one micro-batch through one stage (§Decode step / Step time): the
// dense GEMMs, the routed-expert GEMMs and attention are separate kernels that run one after
// another, so each is bound by its own bytes or FLOPs and their times add. At batch 1 all three
// are memory-bound and the sum is bytes / BW; at large batch the GEMMs turn compute-bound while
// attention stays bound by its KV reads, which a single max(Σ bytes, Σ FLOPs) would wrongly
// overlap. Without a measured attention curve the decode and prefill attention share one max
// (a == 1); with one, decode attention is its own kernel divided by its efficiency.
LinearTimes linear_times(const Prepared& p, const StepBytes& m, const StepCompute& c) {
  LinearTimes t;
  t.dense_read_s = (m.dense + m.act) / p.bw;
  t.dense_s = padded_gemm_s(c.dense_s, c.dense_pad_s, t.dense_read_s);
  t.expert_read_s = m.expert / p.bw;
  t.expert_s = c.expert_s + c.expert_pad_s;
  return t;
}

double stage_roofline_s(const Prepared& p, const StepBytes& m, const StepCompute& c) {
  const double attn_roof_s =
      c.a_dec == 1.0 ? std::max(m.kv_stage / p.bw, c.attn_s)
                     : std::max(m.kv_dec / p.bw, c.attn_dec_s) / c.a_dec +
                           std::max((m.kv_stage - m.kv_dec) / p.bw, c.attn_s - c.attn_dec_s);
  const LinearTimes t = linear_times(p, m, c);
  return std::max(t.dense_read_s, t.dense_s) / c.g_dense +
         std::max(t.expert_read_s, t.expert_s) / c.g_expert + attn_roof_s;
}

// One engine step (§Decode step): the per-kernel roofline per pipeline stage + routed pairs +
// communication + fixed costs, with pp micro-batches in flight; the host's per-sequence loop
// sets the pace when it outlasts the GPU work.
StepBreakdown step(const Prepared& p, const StepLoad& s) {
  const ResolvedLayout& L = p.L;
  const double pp = L.pp;
  const double tokens = s.dec_seqs * s.q_per_seq + s.pf_tokens;  // whole deployment, one step
  // Micro-batches in flight (§Decode step / pipeline): a step splits into at most one micro-batch
  // per sequence, so a single prompt (llama-bench pp512, a lone chunk) or a single stream
  // crosses the stages one after another with nothing to overlap; only with ≥ pp sequences do
  // all stages work at once.
  const double n_mb = std::clamp(s.dec_seqs + s.pf_seqs, 1.0, pp);
  const double mb_tokens = tokens / n_mb;  // one micro-batch
  StepBreakdown b;
  if (p.experts > 0)
    b.experts_touched =
        expected_experts_touched(p.experts, p.top_k, std::max(1.0, mb_tokens), p.skew);
  const Spread spread = step_spread(L, (s.dec_seqs + s.pf_seqs) / n_mb);
  const StepBytes m = step_bytes(p, s, n_mb, mb_tokens, b.experts_touched, spread);
  const StepCompute c = step_compute(p, s, n_mb, mb_tokens, b.experts_touched, spread);
  b.weight_bytes_per_gpu = m.dense + m.expert;
  b.expert_bytes_per_gpu = m.expert;
  b.kv_bytes_per_gpu = m.kv_stage;
  b.bytes_per_gpu = m.dense + m.expert + m.kv_stage + m.act;
  b.flops_per_gpu = c.flops_per_gpu;

  const double comm = stage_comm_s(p, mb_tokens, tokens, spread);
  // Fixed kernel-latency floor per layer (§Fixed costs).
  const double layer_fixed = p.layers / pp * p.eff.layer_overhead_us.value * 1e-6 +
                             (p.moe_layers / pp) * p.eff.moe_layer_overhead_us.value * 1e-6;
  // Routed pairs: each of the micro-batch's tokens goes to top-k experts, spread over the
  // expert-parallel ranks; each pair pays the engine's measured per-pair cost.
  const double route_s =
      (p.moe_layers / pp) * mb_tokens * p.top_k / std::max(1, L.ep) * p.moe_pair_s;
  const double stage_s = stage_roofline_s(p, m, c) + route_s + comm + layer_fixed;
  const double handoff = pipeline_handoff_s(p, mb_tokens, spread);
  const double step_fixed = p.eff.step_overhead_ms.value * 1e-3;

  // Memory and compute time, each term divided by its measured efficiency when it has one.
  const LinearTimes lin = linear_times(p, m, c);
  const double dense_c = lin.dense_s, expert_c = lin.expert_s;
  if (c.g_dense == 1.0 && c.g_expert == 1.0 && c.a_dec == 1.0) {
    b.memory_s = b.bytes_per_gpu / p.bw * pp;
    b.compute_s = (dense_c + expert_c + c.attn_s) * pp;
  } else {
    b.memory_s = pp * ((m.dense + m.act) / p.bw / c.g_dense + m.expert / p.bw / c.g_expert +
                       m.kv_dec / p.bw / c.a_dec + (m.kv_stage - m.kv_dec) / p.bw);
    b.compute_s = pp * (dense_c / c.g_dense + expert_c / c.g_expert + c.attn_dec_s / c.a_dec +
                        (c.attn_s - c.attn_dec_s));
  }
  b.compute_s += route_s * pp;
  b.comm_s = comm * pp + handoff;
  b.overhead_s = layer_fixed * pp + step_fixed;
  b.time_s = stage_s * pp + handoff + step_fixed;
  // Host time per step (§Fixed costs, host time per sequence): the engine's per-request loops
  // (scheduler, input preparation, sampler update) run on the CPU for every sequence of the step,
  // once per data-parallel replica (each replica schedules its own requests; under plain TP every
  // rank runs the whole batch's loop). An overlapping executor (TensorRT-LLM's overlap
  // scheduler) prepares step n+1 while the GPU runs step n, so the step lasts the longer of the
  // two: the host sets the pace only when its loop outlasts the GPU work — many sequences of a
  // small model on a fast GPU.
  const double host_s = p.host_s_per_seq * (s.dec_seqs + s.pf_seqs) / L.dp * spread.replica;
  if (host_s > b.time_s) {
    b.overhead_s = host_s;
    b.time_s = host_s;
  }
  b.bound = step_bound(b);
  return b;
}

void add(StepBreakdown& a, const StepBreakdown& b, double times) {
  a.bytes_per_gpu += b.bytes_per_gpu * times;
  a.weight_bytes_per_gpu += b.weight_bytes_per_gpu * times;
  a.expert_bytes_per_gpu += b.expert_bytes_per_gpu * times;
  a.kv_bytes_per_gpu += b.kv_bytes_per_gpu * times;
  a.flops_per_gpu += b.flops_per_gpu * times;
  a.memory_s += b.memory_s * times;
  a.compute_s += b.compute_s * times;
  a.comm_s += b.comm_s * times;
  a.overhead_s += b.overhead_s * times;
  a.time_s += b.time_s * times;
}

struct Spec {
  SpecMethod method = SpecMethod::none;
  int k = 0;
  double alpha = 0;
  double tau = 1;                 // expected tokens per step per sequence
  std::optional<Prepared> draft;  // SpecMethod::draft
  // Tokens each sequence puts through the target per step: its own, plus k drafts to verify.
  double query_tokens() const { return method == SpecMethod::none ? 1.0 : k + 1.0; }
};

// The prepared model cut down to one decoder layer plus the full LM head: what one draft pass
// of an MTP / EAGLE head runs (§Speculative). Every per-layer term of step() follows
// `layers` / `moe_layers` / `full_layers`, so the draft pays one layer's TP all-reduces,
// all-to-all, activations, attention (and DSA indexer scan) and fixed costs; weights and
// linear FLOPs are the per-layer averages of the body plus the whole LM head.
Prepared one_layer(const Prepared& p) {
  Prepared one = p;
  const double layers = p.layers;
  one.layers = 1;
  one.moe_layers = p.moe_layers > 0 ? 1 : 0;
  // The draft layer is a full-attention layer (sliding-window and linear layers have none).
  one.full_layers = 1;
  one.window_layers = 0;
  const double body = (p.dense_bytes - p.lm_head_bytes) / layers;
  one.dense_bytes = body + p.lm_head_bytes;
  one.replicated_bytes = p.replicated_bytes / layers;
  one.routed_bytes = p.moe_layers > 0 ? p.routed_bytes / p.moe_layers : 0;
  one.sec_per_token_routed = p.moe_layers > 0 ? p.sec_per_token_routed / p.moe_layers : 0;
  const double dense_s = p.sec_per_token_linear - p.sec_per_token_routed - p.sec_per_token_lm_head;
  one.sec_per_token_linear = dense_s / layers + p.sec_per_token_lm_head + one.sec_per_token_routed;
  const double dense_f =
      p.flops_per_token_linear - p.flops_per_token_routed - p.flops_per_token_lm_head;
  one.flops_per_token_routed = p.moe_layers > 0 ? p.flops_per_token_routed / p.moe_layers : 0;
  one.flops_per_token_linear =
      dense_f / layers + p.flops_per_token_lm_head + one.flops_per_token_routed;
  one.eff.step_overhead_ms.value = 0;
  return one;
}

// One draft pass of an MTP / EAGLE head: one decoder layer plus the LM head (§Speculative).
StepBreakdown draft_head_step(const Prepared& p, double seqs, double context) {
  const Prepared one = one_layer(p);
  StepLoad s;
  s.dec_seqs = seqs;
  s.dec_context = context;
  return step(one, s);
}

// Decode (or verify + draft) step for `seqs` sequences at `context`, with `pf` prefill tokens mixed
// in.
StepBreakdown serving_step(const Prepared& p, const Spec& sp, double seqs, double context,
                           double pf_tokens, double pf_prefix, double pf_seqs) {
  StepLoad s;
  s.dec_seqs = seqs;
  s.q_per_seq = sp.query_tokens();
  s.dec_context = context;
  s.pf_tokens = pf_tokens;
  s.pf_prefix = pf_prefix;
  s.pf_seqs = pf_seqs;
  StepBreakdown b = step(p, s);
  if (sp.method == SpecMethod::mtp || sp.method == SpecMethod::eagle) {
    add(b, draft_head_step(p, seqs, context), sp.k);
  } else if (sp.method == SpecMethod::draft && sp.draft) {
    StepLoad ds;
    ds.dec_seqs = seqs;
    ds.dec_context = context;
    add(b, step(*sp.draft, ds), sp.k);
  }
  return b;
}

Spec make_spec(const PerfRequest& req, const Catalog& cat, const Prepared& p) {
  Spec sp;
  sp.method = req.spec.method;
  if (sp.method == SpecMethod::none) return sp;
  if (sp.method == SpecMethod::mtp && p.m->mtp_layers <= 0)
    throw Error(
        fmt::format("--spec mtp: {} has no multi-token-prediction layers (models.json "
                    "mtp_layers is 0); use --spec eagle or --spec draft",
                    p.m->id));
  // Defaults (§Speculative): MTP K=1 α=0.85 (DeepSeek-V3 report: 85–90% second-token
  // acceptance); EAGLE K=3 α=0.45 (refitted in issue 16 to the one published EAGLE row, seed
  // 000's GLM-5.x on 8×H200: 118 vs 75 tok/s; §Speculative); draft model K=4 α=0.6.
  int k_def = 3;
  double a_def = 0.45;
  if (sp.method == SpecMethod::mtp) k_def = 1, a_def = 0.85;
  if (sp.method == SpecMethod::draft) k_def = 4, a_def = 0.6;
  sp.k = req.spec.tokens > 0 ? req.spec.tokens : k_def;
  sp.alpha = req.spec.acceptance >= 0 ? req.spec.acceptance : a_def;
  if (sp.alpha >= 1.0) throw Error("--spec-acceptance must be below 1");
  sp.tau = spec_expected_tokens(sp.k, sp.alpha);
  if (sp.method == SpecMethod::draft) {
    const Model* dm = req.spec.draft_model;
    if (!dm) {
      // Smallest model of the same family in the catalog.
      for (const auto& m : cat.models)
        if (m.family == p.m->family && m.id != p.m->id &&
            (!dm || m.total_params_b < dm->total_params_b))
          dm = &m;
      if (!dm || dm->total_params_b >= p.m->total_params_b)
        throw Error(
            fmt::format("--spec draft: no smaller {} model in the catalog; name one with "
                        "--spec-draft-model",
                        p.m->family));
    }
    PerfRequest dr = req;
    dr.model = dm;
    dr.weights = {};
    dr.layout = Layout{p.L.tp, p.L.pp, 0, p.L.dp_attention};
    dr.spec = {};
    dr.efficiencies = p.eff;
    sp.draft = prepare(dr, cat);
  }
  return sp;
}

// Prefill of one prompt on an otherwise idle system, in chunks (§Prefill).
PrefillResult prefill_alone(const Prepared& p, long long input, long long chunk) {
  PrefillResult r;
  r.chunk_tokens = chunk;
  double t = 0;
  long long done = 0;
  int chunks = 0;
  double comp = 0, mem = 0;
  while (done < input) {
    const long long n = std::min(chunk, input - done);
    StepLoad s;
    s.pf_tokens = static_cast<double>(n);
    s.pf_prefix = static_cast<double>(done) + static_cast<double>(n) / 2.0;
    s.pf_seqs = 1;
    const StepBreakdown b = step(p, s);
    t += b.time_s;
    comp += b.compute_s;
    mem += b.memory_s;
    done += n;
    ++chunks;
  }
  r.chunks = chunks;
  r.ttft_alone_ms = t * 1e3;
  r.ttft_ms = r.ttft_alone_ms;
  r.tokens_per_s = t > 0 ? static_cast<double>(input) / t : 0;
  r.bound = comp >= mem ? Bound::compute : Bound::memory;
  return r;
}

struct Steady {
  double batch = 0;   // decoding sequences in an average step
  double iter_s = 0;  // average step time
  double ttft_s = 0;
  double x = 0;  // requests per second
  StepBreakdown step;
  double prefill_share = 0;  // share of steps that carry a prefill chunk
};

// The chunk steps that carry one prompt of `in` tokens while `decoding` other sequences decode
// (§Serving steady state). Its own request is not decoding yet, so only the others' decodes share
// the budget: none at concurrency 1. Full steps of S tokens, then a last, partial one, between a
// decode-only step and a full chunk step in time (other prompts fill it when more than one prompt
// is due per step). Counting ceil(I / S) full steps with every decoder in the budget charged a
// lone 8,192-token prompt two full steps under vLLM's 8,192-token budget: twice its idle TTFT.
double own_prefill_s(const Prepared& p, const Spec& sp, double decoding, double ctx, double in,
                     double chunk, double pf_avg) {
  if (in <= 0) return 0;
  const double q = sp.query_tokens();
  const double s = chunk_step_tokens(chunk, decoding * q, in, pf_avg);
  const StepBreakdown full = serving_step(p, sp, decoding, ctx, s, in / 2.0, std::max(1.0, s / in));
  const double steps = std::floor(in / s);
  const double rest = in - steps * s;
  if (rest < 0.5) return steps * full.time_s;
  if (pf_avg > s - rest) return (steps + 1) * full.time_s;
  const StepBreakdown dec = serving_step(p, sp, decoding, ctx, 0, 0, 0);
  return steps * full.time_s + dec.time_s + rest / s * (full.time_s - dec.time_s);
}

// How long a prompt holds its prefill server while prompts queue (closed_loop_ttft_s's S_b): its
// chunk steps' time (`chunk_steps_s`), or, when the room left in a step holds k ≥ 2 whole prompts,
// a k-th of a step that carries k of them — the scheduler packs the prompts that wait. Before
// 2026-11-28 a queue of short prompts was served one a step, so TTFT fell when the load crossed
// into packed steps (Llama 3.3 70B FP8 on 2×H100 under TensorRT-LLM, 1000/300: 766 ms at 256 in
// flight, 357 ms at 378). Each prefill server (replica) holds its share of the requests, and a step
// spreads its prompt tokens over the servers, so one server is busy `servers` × the step's share.
double prompt_hold_s(const Prepared& p, const Spec& sp, double decoding, double ctx, double in,
                     double room, double chunk_steps_s) {
  const double servers = prefill_servers(p.L);
  const double k = std::floor(room / std::max(1.0, in));
  if (k < 2) return chunk_steps_s * servers;
  const StepBreakdown packed = serving_step(p, sp, decoding, ctx, k * in, in / 2.0, k);
  return packed.time_s / k * servers;
}

// Continuous batching at `conc` resident requests (§Serving steady state).
Steady steady_state(const Prepared& p, const Spec& sp, double conc, double in, double out,
                    double chunk, double ttft_alone_s, bool saturated) {
  const double ctx = in + out / 2.0;
  const double q = sp.query_tokens();
  // Decode-only steps come when no prompt is in the prefill, so every resident request decodes.
  const StepBreakdown dec_all = serving_step(p, sp, conc, ctx, 0, 0, 0);
  const double servers = prefill_servers(p.L);
  const double decode_steps = std::max(1.0, out) / sp.tau;  // per request
  auto eval = [&](double B, Steady& st) {
    // Each step emits B·τ tokens; keeping up needs B·τ·I/O prompt tokens admitted per step on
    // average. The scheduler admits them in chunks as large as the token budget allows: chunk
    // steps of S tokens and, between them, pure decode steps.
    const double pf_avg = B * sp.tau * in / std::max(1.0, out);
    const double s_chunk = chunk_step_tokens(chunk, B * q, in, pf_avg);
    const StepBreakdown dec = serving_step(p, sp, B, ctx, 0, 0, 0);
    const StepBreakdown mix =
        in > 0 ? serving_step(p, sp, B, ctx, s_chunk, in / 2.0, std::max(1.0, s_chunk / in)) : dec;
    const double chunk_steps_s = in / s_chunk * mix.time_s;  // one prompt's, in whole steps
    // A prompt's own chunk steps; it queues behind the other requests' prompts (a closed loop's
    // queue) and, when no prompt is ahead, behind the decode step already running.
    const double others = conc > 1.0 ? (conc - 1.0) / conc : 0.0;
    const double service =
        std::max(ttft_alone_s, own_prefill_s(p, sp, B * others, ctx, in, chunk, pf_avg));
    // Prompts can be admitted only as fast as the room left in the steps allows.
    const double room = std::max(1.0, chunk - B * q);
    const bool feasible = in <= 0 || pf_avg < 0.999 * room;
    // Packed steps (more than one prompt due per step): every step carries prefill.
    const bool packed = in > 0 && pf_avg > std::min(in, room);
    // What the decoders see of the other prompts' chunks: every step once packed, else the share
    // of their time the prefill keeps their replica busy (prefill_seen_by_decoders).
    if (packed) {
      st.prefill_share = others;
      st.iter_s = (1.0 - others) * dec.time_s + others * mix.time_s;
      st.step = dec;
    } else {
      const DecodeView seen = prefill_seen_by_decoders(B, conc, decode_steps, chunk_steps_s,
                                                       dec_all.time_s, mix.time_s);
      st.prefill_share = seen.step_share;
      st.iter_s = seen.step_s;
      st.step = dec_all;
    }
    st.x = B / (decode_steps * st.iter_s);
    if (!feasible)
      st.ttft_s = 1e12;
    else
      st.ttft_s = closed_loop_ttft_s(service, prompt_hold_s(p, sp, B, ctx, in, room, chunk_steps_s),
                                     decode_steps * st.iter_s, conc / servers, dec_all.time_s);
    st.batch = B;
    // Little's law: decoding + prefilling (+ queued, when the queue is inside the population)
    // = resident. Saturated runs queue outside the slots (§Serving steady state).
    const double in_slot_s = !feasible ? 1e12 : saturated ? service : st.ttft_s;
    return B + st.x * in_slot_s - conc;
  };
  Steady st;
  if (out <= 0) {
    st.batch = 0;
    return st;
  }
  double lo = std::min(conc, 1e-3), hi = conc;
  Steady tmp;
  if (eval(hi, tmp) <= 0) return tmp;
  for (int i = 0; i < 40; ++i) {
    const double mid = 0.5 * (lo + hi);
    (eval(mid, tmp) > 0 ? hi : lo) = mid;
  }
  eval(lo, st);
  return st;
}

// Mean TTFT of `conc` prompts of `in` tokens that arrive together (§Serving steady state / TTFT
// under load). Closed-loop benchmarks (vLLM/SGLang benchmark_serving --max-concurrency, genai-perf
// --concurrency, InferenceX) start C requests at once and, with fixed lengths, every later wave
// again starts together. The scheduler packs the queued prompt tokens into steps of at most
// `budget` tokens (chunked prefill), less one token for each request of the wave that already
// decodes (prefill–decode interference: those requests share the step's token budget and its KV
// reads). A prompt's first token comes out with the step that holds its last prompt token.
double wave_ttft_s(const Prepared& p, const Spec& sp, double conc, double in, double budget) {
  if (conc <= 1.0 || in <= 0) return 0.0;
  const long long n = static_cast<long long>(std::llround(conc));
  const double q = sp.query_tokens();
  double t = 0, sum = 0, left = in;  // `left`: tokens still to prefill of the current prompt
  long long done = 0;                // prompts whose first token is out
  // Very long waves repeat the same step: simulate at most kMaxSteps and extrapolate linearly.
  constexpr long long kMaxSteps = 512;
  long long steps = 0;
  while (done < n && steps < kMaxSteps) {
    const double dec = static_cast<double>(done);
    const double room = std::max(1.0, budget - dec * q);
    StepLoad s;
    s.dec_seqs = dec;
    s.q_per_seq = q;
    s.dec_context = in;
    double take = 0, seqs = 0;
    long long finished = 0;
    while (take < room && done + finished < n) {
      const double x = std::min(left, room - take);
      take += x;
      seqs += 1;
      left -= x;
      if (left <= 0) {
        ++finished;
        left = in;
      }
    }
    s.pf_tokens = take;
    s.pf_prefix = in / 2.0;
    s.pf_seqs = seqs;
    t += step(p, s).time_s;
    sum += t * static_cast<double>(finished);
    done += finished;
    ++steps;
  }
  if (done < n && done > 0) {
    // Extrapolate: prompts keep finishing at the average rate seen so far.
    const double per = t / static_cast<double>(done);
    for (long long i = done + 1; i <= n; ++i) sum += per * static_cast<double>(i);
  }
  return sum / static_cast<double>(n);
}

// `once` arrivals, and `together` with the client's prompts in all (burst.hpp): the run
// simulated with this model's step times at the mean decode context; a step without decoders
// drafts nothing.
BurstRun simulated_run(const Prepared& p, const Spec& sp, const PerfRequest& req, double resident,
                       double in, double out, double budget) {
  BurstLoad l;
  l.requests = req.concurrency;
  if (req.arrivals == Arrivals::together) {
    l.requests = req.prompts;
    l.clients = req.concurrency;
    l.range_ratio = req.range_ratio;
  }
  l.admit_every_steps = req.admission_interval_steps;
  l.input_tokens = in;
  l.output_tokens = out;
  l.budget_tokens = budget;
  l.tokens_per_step = sp.tau;
  l.query_tokens = sp.query_tokens();
  l.slots = std::max(1LL, std::llround(resident));
  l.rate_per_s = req.request_rate_per_s;
  const double ctx = in + out / 2.0;
  return simulate_burst(l, [&](double dec, double pf, double pf_seqs) {
    if (dec > 0) return serving_step(p, sp, dec, ctx, pf, in / 2.0, pf_seqs).time_s;
    StepLoad s;
    s.pf_tokens = pf;
    s.pf_prefix = in / 2.0;
    s.pf_seqs = pf_seqs;
    return step(p, s).time_s;
  });
}

}  // namespace

StepBreakdown decode_step(const PerfRequest& req, const Catalog& cat, double batch,
                          double context) {
  const Prepared p = prepare(req, cat);
  StepLoad s;
  s.dec_seqs = batch;
  s.dec_context = context;
  return step(p, s);
}

StepBreakdown prefill_step(const PerfRequest& req, const Catalog& cat, double tokens, double prefix,
                           double seqs) {
  const Prepared p = prepare(req, cat);
  StepLoad s;
  s.pf_tokens = tokens;
  s.pf_prefix = prefix;
  s.pf_seqs = std::max(1.0, seqs);
  return step(p, s);
}

namespace {

// KV memory limit on resident requests (docs/memory.md): how many of the `concurrency` requests
// hold their KV at once; the rest queue. Notes say when the limit binds or nothing fits.
double kv_resident_requests(const Prepared& p, const PerfRequest& req,
                            std::vector<std::string>& notes) {
  // Each stage holds its own layers' KV on its own budget; the tightest stage sets the limit
  // (one stage, the whole model's KV at the layout's share, when pp = 1).
  const long long ctx = req.input_tokens + req.output_tokens;
  const double conc = static_cast<double>(req.concurrency);
  if (p.kv_free_per_gpu <= 0) {
    notes.push_back(
        "the weights do not fit this layout (see `moeplan fit`); throughput shown as if they did");
    return conc;
  }
  // The tightest stage's limit with activations sized for `resident` sequences.
  bool any = false;
  auto cap_at = [&](double resident) {
    const double act = activation_bytes_per_gpu(
        *p.m, p.L, p.act_chunk, std::max<long long>(1, static_cast<long long>(resident)));
    double c_min = 0;
    any = false;
    for (std::size_t i = 0; i < p.stages.size(); ++i) {
      const double per_seq = kv_bytes_per_gpu_on_stage(*p.m, p.stages[i], p.L,
                                                       p.kv_bytes_per_element, ctx, p.mtp_loaded);
      if (per_seq <= 0) continue;
      const double c = std::floor((p.stage_room[i] - act) / per_seq);
      c_min = any ? std::min(c_min, c) : c;
      any = true;
    }
    return c_min;
  };
  // Sized for every request in flight, the logits of queued requests shrank the room of the
  // resident ones: 74 resident at concurrency 96 but 73 at 128 (audit 2026-11-27). The largest
  // count that fits with its own activations, as fit's max_concurrency finds it.
  double cap = cap_at(conc);
  for (int i = 0; i < 8 && any && cap < conc; ++i) {
    const double next = std::min(conc, cap_at(std::max(1.0, cap)));
    if (next <= cap) break;
    cap = next;
  }
  if (!any) return conc;
  if (cap < 1) {
    notes.push_back("not even one request's KV fits; figures assume one resident request");
    return 1;
  }
  if (cap < conc)
    notes.push_back(
        fmt::format("KV memory holds {:.0f} requests of {} tokens; the other {:.0f} wait in the "
                    "queue (TTFT includes the wait)",
                    cap, req.input_tokens + req.output_tokens, conc - cap));
  return std::min(cap, conc);
}

// How many of the `concurrency` requests run at once: what the KV memory holds (docs/memory.md)
// and what the engine's scheduler admits (max_num_seqs); the rest queue. Notes say when a limit
// binds or nothing fits.
double resident_requests(const Prepared& p, const PerfRequest& req,
                         std::vector<std::string>& notes) {
  const double kv = kv_resident_requests(p, req, notes);
  const double seqs = static_cast<double>(engine_max_num_seqs(*req.engine));
  if (seqs < kv)
    notes.push_back(fmt::format(
        "{} runs at most {:.0f} sequences at once (max_num_seqs, data/engines.json); the other "
        "{:.0f} of the {} in flight wait in its queue (TTFT includes the wait)",
        req.engine->id, seqs, static_cast<double>(req.concurrency) - seqs, req.concurrency));
  return std::min(kv, seqs);
}

// Mean TTFT before the server's per-request path, by how the requests arrive
// (§Serving steady state); a `once` wave is simulated and returned in `wave`.
double queued_ttft_s(const Prepared& p, const Spec& sp, const PerfRequest& req, const Steady& st,
                     double resident, double chunk, std::optional<BurstRun>& wave,
                     std::vector<std::string>& notes) {
  const double in = static_cast<double>(req.input_tokens);
  const double out = static_cast<double>(req.output_tokens);
  const double conc = static_cast<double>(req.concurrency);
  if (req.arrivals == Arrivals::together && req.prompts > 0) {
    wave = simulated_run(p, sp, req, resident, in, out, chunk);
    notes.push_back(fmt::format(
        "a client of {} in flight sending {} prompts{}, simulated: mean TTFT, mean TPOT and "
        "output over the run's {:.1f} s",
        req.concurrency, req.prompts,
        req.range_ratio < 1
            ? fmt::format(" of {:g}–100% of the nominal lengths", std::floor(req.range_ratio * 100))
            : std::string(),
        wave->duration_s));
    return wave->ttft_mean_s;
  }
  if (req.arrivals == Arrivals::once) {
    wave = simulated_run(p, sp, req, resident, in, out, chunk);
    notes.push_back(fmt::format(
        "one wave of {} requests ({}), run to completion: mean TTFT, mean TPOT and output over "
        "the run's {:.1f} s",
        req.concurrency,
        req.request_rate_per_s > 0 ? fmt::format("{:g} arriving per second", req.request_rate_per_s)
                                   : std::string("all at once"),
        wave->duration_s));
    return wave->ttft_mean_s;
  }
  // Requests that arrive together: the mean TTFT is at least what a wave of `resident` prompts
  // sees, and at least the steady-state queueing estimate.
  double ttft = st.ttft_s;
  if (req.arrivals == Arrivals::together)
    ttft = std::max(ttft, wave_ttft_s(p, sp, resident, in, chunk));
  if (resident < conc && st.x > 0) ttft += (conc - resident) / st.x;  // Little's law on the queue
  // A scheduler that takes new requests every N steps holds a prompt (N − 1)/2 steps more on
  // average than one that looks every step (the residual step is in the estimate already).
  ttft += (req.admission_interval_steps - 1) / 2.0 * st.iter_s;
  return ttft;
}

// Decode figures from the steady state, or from the wave's whole-run averages.
void fill_decode(const Prepared& p, const Spec& sp, const PerfRequest& req, const Steady& st,
                 const std::optional<BurstRun>& wave, PerfResult& r) {
  const double in = static_cast<double>(req.input_tokens);
  const double out = static_cast<double>(req.output_tokens);
  DecodeResult& d = r.decode;
  d.step = st.step;
  d.batch = st.batch;
  d.prefill_step_share = st.prefill_share;
  d.tokens_per_step = sp.tau;
  d.tpot_ms = st.iter_s / sp.tau * 1e3;
  d.output_tokens_per_s = st.x * out;
  d.total_tokens_per_s = st.x * (in + out);
  r.prefill.aggregate_tokens_per_s = st.x * in;
  if (wave) {
    if (wave->tpot_mean_s > 0) d.tpot_ms = wave->tpot_mean_s * 1e3;
    // The run's own token counts: a client's run sends more prompts than it holds in flight,
    // with lengths that vary.
    d.output_tokens_per_s = wave->output_tokens_per_s;
    d.total_tokens_per_s = wave->output_tokens_per_s + wave->input_tokens_per_s;
    r.prefill.aggregate_tokens_per_s = wave->input_tokens_per_s;
  }
  d.per_request_tokens_per_s = d.tpot_ms > 0 ? 1e3 / d.tpot_ms : 0;
  // Single-stream bandwidth roofline: bytes of one token at the mean context / datasheet BW.
  StepLoad s1;
  s1.dec_seqs = 1;
  s1.dec_context = in + out / 2.0;
  const StepBreakdown one = step(p, s1);
  d.roofline_tokens_per_s = p.d->memory_bandwidth_gb_s * 1e9 / (one.bytes_per_gpu * p.L.pp);
}

// What the reader should know about the estimate's inputs.
void add_notes(const Prepared& p, const Spec& sp, const PerfRequest& req, PerfResult& r) {
  if (req.spec.method != SpecMethod::none && req.spec.acceptance < 0)
    r.notes.push_back(
        fmt::format("speculative acceptance {:.2f} is a default, not measured", sp.alpha));
  if (auto why = engine_device_problem(*req.engine, *p.d)) r.notes.push_back(*why);
  for (const auto& [fmt, tflops] : p.measured_gemm)
    r.notes.push_back(fmt::format(
        "{} GEMMs at {}'s measured plateau on {}: {:.0f} TFLOP/s (engines.json gemm_tflops.{}.{})",
        fmt, req.engine->id, p.d->id, tflops, p.d->id, fmt));
  if (p.m->attention.type == AttentionType::mla && p.L.tp > 1 && !p.L.dp_attention)
    r.notes.push_back(
        "MLA latent KV is replicated (and read) on every TP rank; --dp-attention shards it");
}

}  // namespace

PerfResult estimate(const PerfRequest& req, const Catalog& cat) {
  if (req.input_tokens < 0 || req.output_tokens < 1)
    throw Error("perf: --output must be at least 1");
  if (req.concurrency < 1) throw Error("perf: --concurrency must be at least 1");
  if (req.routing_skew < 0 || req.routing_skew >= 1)
    throw Error("perf: routing skew must be in [0, 1)");
  // A client's run and the server's settings (callers name their own flag or column first).
  if (req.prompts < 0 ||
      (req.prompts > 0 && (req.arrivals != Arrivals::together || req.prompts < req.concurrency)))
    throw Error(
        "perf: a client's prompts in all go with `together` arrivals and are at least "
        "the concurrency");
  if (!(req.range_ratio > 0 && req.range_ratio <= 1) || (req.range_ratio < 1 && req.prompts == 0))
    throw Error("perf: a range ratio in (0, 1] describes a client's prompts");
  if (req.max_num_tokens < 0 || req.admission_interval_steps < 1)
    throw Error("perf: the token budget is >= 0 (0: the engine's) and the admission interval >= 1");
  const Prepared p = prepare(req, cat);
  const Spec sp = make_spec(req, cat, p);
  PerfResult r;
  r.layout = p.L;
  r.eff = p.eff;
  r.weights_bytes = p.weights_total;
  r.kv_bytes_per_token = p.kv_per_token_total;
  r.spec_expected_tokens = sp.tau;
  r.spec_tokens = sp.k;
  r.spec_acceptance = sp.alpha;

  const long long chunk =
      req.max_num_tokens > 0
          ? req.max_num_tokens
          : std::max<long long>(1, std::llround(p.eff.prefill_chunk_tokens.value));
  r.prefill = prefill_alone(p, req.input_tokens, chunk);
  const double resident = resident_requests(p, req, r.notes);
  const Steady st =
      steady_state(p, sp, resident, static_cast<double>(req.input_tokens),
                   static_cast<double>(req.output_tokens), static_cast<double>(chunk),
                   r.prefill.ttft_alone_ms * 1e-3, req.arrivals == Arrivals::saturated);
  std::optional<BurstRun> wave;
  const double ttft =
      queued_ttft_s(p, sp, req, st, resident, static_cast<double>(chunk), wave, r.notes);
  fill_decode(p, sp, req, st, wave, r);

  // Served TTFT also pays the server's per-request path before the first token reaches the client
  // (HTTP, tokenizer, admission, detokenised first chunk): engine key `ttft_overhead_ms`, fitted
  // per engine and device class on the fit split (§Serving steady state / TTFT under load).
  r.prefill.server_overhead_ms =
      engine_factor(*req.engine, device_kind_name(p.d->kind), p.d->vendor, "ttft_overhead_ms", 0.0)
          .value;
  r.prefill.ttft_ms = (ttft + r.prefill.server_overhead_ms * 1e-3) * 1e3;
  r.bound = st.step.bound;
  // Tier of the whole estimate (§Evidence tiers): measured when a calibration of this device
  // replaced the device layer; `published` is assigned by callers that match a benchmark row.
  r.evidence =
      p.eff.dev_bw.evidence == Evidence::measured ? Evidence::measured : Evidence::default_;
  add_notes(p, sp, req, r);
  return r;
}

long long engine_prefill_chunk_tokens(const Engine& e, const Device& d) {
  const Factor f = engine_factor(e, device_kind_name(d.kind), d.vendor, "prefill_chunk_tokens",
                                 engine_fallback(d.kind).chunk);
  return std::max<long long>(1, std::llround(f.value));
}

FitRequest engine_fit_request(const Model& m, const Device& d, int gpus, const PrecisionMix& mix,
                              const std::string& kv, const Engine& e, const Topology& t,
                              long long context_tokens, const Layout& asked) {
  FitRequest f;
  f.model = &m;
  f.device = &d;
  f.gpus = gpus;
  f.weights = mix;
  f.kv_precision = kv;
  f.context_tokens = context_tokens;
  f.memory_utilization = e.memory_utilization;
  f.prefill_chunk_tokens = engine_prefill_chunk_tokens(e, d);
  f.layout = effective_layout(e, t, gpus, asked);
  return f;
}

int min_gpus_that_fit(const FitRequest& req, const Engine& e, const Topology& t,
                      const Catalog& cat) {
  const Model& m = *req.model;
  // A layer split (tp = 1, one stage per GPU, llama.cpp's default) stays one: pp = n. Any other
  // tp/pp the request carries belongs to its own GPU count, not to the counts tried here.
  const bool layer_split = req.gpus > 1 && req.layout.tp == 1 && req.layout.pp == req.gpus;
  for (int n = 1; n <= 512; ++n) {
    FitRequest f = req;
    f.gpus = n;
    Layout asked;
    asked.dp_attention = req.layout.dp_attention;
    if (layer_split) {
      asked.tp = 1;
      asked.pp = std::min(n, m.layers);
      if (n % asked.pp != 0) continue;
    }
    f.layout = effective_layout(e, t, n, asked);
    try {
      if (check_layout(m, *req.device, t, e, resolve_layout(m, n, f.layout), n, false)) continue;
      if (fit(f, cat).fits) return n;
    } catch (const Error&) {
      continue;  // a count no layout of this model can take (e.g. pp beyond the layers)
    }
  }
  return 0;
}

FitRequest fit_request_for(const PerfRequest& req, const Catalog& cat) {
  if (!req.model || !req.device || !req.engine)
    throw Error("perf: model, device and engine are required");
  FitRequest f =
      engine_fit_request(*req.model, *req.device, req.gpus, req.weights, req.kv_precision,
                         *req.engine, req.topology ? *req.topology : topology_for(cat, *req.device),
                         req.input_tokens + req.output_tokens, req.layout);
  // --spec mtp runs the checkpoint's MTP layers as the draft: they are loaded, with their KV.
  f.include_mtp = req.spec.method == SpecMethod::mtp && req.model->mtp_layers > 0;
  // --spec draft: the draft model's weights are held like a reservation.
  f.draft_weights_gb_per_gpu = draft_weights_bytes_per_gpu(req, cat) / 1e9;
  f.reserved_gb_per_gpu += f.draft_weights_gb_per_gpu;
  return f;
}

std::optional<std::string> context_refusal(const Model& m, long long input, long long output,
                                           bool allow_extension) {
  const long long tokens = input + output;
  if (m.max_context_tokens <= 0 || tokens <= m.max_context_tokens) return std::nullopt;
  if (!allow_extension)
    return fmt::format(
        "{} input + {} output = {} tokens exceeds {}'s trained context of {} tokens "
        "(models.json max_context_tokens)",
        input, output, tokens, m.id, m.max_context_tokens);
  if (!m.context_extension)
    return fmt::format(
        "{} tokens exceeds {}'s trained context of {} tokens and the model declares no "
        "context-extension method (models.json context_extension)",
        tokens, m.id, m.max_context_tokens);
  if (tokens > m.context_extension->max_context_tokens)
    return fmt::format("{} tokens exceeds {}'s {} context extension ({} tokens)", tokens, m.id,
                       m.context_extension->method, m.context_extension->max_context_tokens);
  return std::nullopt;
}

long long engine_max_num_seqs(const Engine& e) {
  if (auto it = e.efficiency.find("max_num_seqs"); it != e.efficiency.end())
    return std::max<long long>(1, std::llround(it->second));
  return 256;
}

ConcurrencyLimit concurrency_limit(long long kv_limit, const Engine& e) {
  return {kv_limit, engine_max_num_seqs(e)};
}

SweepResult sweep(const PerfRequest& req, const Catalog& cat, const Sla& sla) {
  SweepResult s;
  const FitResult fr = fit(fit_request_for(req, cat), cat);
  s.limit = concurrency_limit(fr.max_concurrency, *req.engine);
  s.max_concurrency = s.limit.slots();
  s.limit_reason = fr.reason;
  const long long maxc = std::max<long long>(1, s.max_concurrency);
  std::vector<long long> cs;
  for (long long c = 1; c < maxc; c *= 2) cs.push_back(c);
  cs.push_back(maxc);
  // Pre-resolve efficiencies once (fast path).
  PerfRequest r = req;
  if (!r.efficiencies)
    r.efficiencies = resolve_efficiencies(*req.device, *req.engine, req.calibration);
  double best_power = -1, best_sla = -1;
  for (long long c : cs) {
    r.concurrency = c;
    SweepPoint pt;
    pt.concurrency = c;
    pt.result = estimate(r, cat);
    const auto& d = pt.result.decode;
    pt.meets_sla = sla.met_by(d.tpot_ms, pt.result.prefill.ttft_ms);
    const double power = d.output_tokens_per_s * d.per_request_tokens_per_s;
    if (power > best_power) {
      best_power = power;
      s.knee_concurrency = c;
    }
    if (sla.any() && pt.meets_sla && d.output_tokens_per_s > best_sla) {
      best_sla = d.output_tokens_per_s;
      s.best_sla_concurrency = c;
    }
    s.points.push_back(std::move(pt));
  }
  return s;
}

}  // namespace moeplan
