#pragma once
// A benchmark run simulated step by step: one wave of requests (`vllm bench serve --num-prompts
// N` with N no larger than --max-concurrency, at a request rate or all at once), or a closed-loop
// client (`benchmark_serving --num-prompts N --max-concurrency C`: C requests at once, the next
// sent when one ends). The benchmark's figures are whole-run averages — mean TTFT, mean TPOT,
// output tokens over the run's duration — so the ramp (prompts queueing for the prefill budget)
// and the tail (the last prompts decoding alone) are part of them, which a steady-state estimate
// leaves out. docs/performance.md §Serving steady state, "once" and "together" arrivals.

#include <functional>

namespace moeplan {

struct BurstLoad {
  long long requests = 1;      // prompts in the wave (N)
  double input_tokens = 0;     // per prompt
  double output_tokens = 1;    // per request, the first token included
  double budget_tokens = 1;    // the scheduler's token budget per step (chunked prefill)
  double tokens_per_step = 1;  // per decoding sequence (speculative decoding: τ > 1)
  double query_tokens = 1;     // budget each decoding sequence takes (1, or K + 1 verifying)
  long long slots = 1;         // requests resident at once (KV memory, max_num_seqs)
  double rate_per_s = 0;       // arrivals every 1/rate seconds; 0 = all at t = 0
  // Closed loop: the client keeps this many requests in flight and sends the next as one ends
  // (rate_per_s unused); 0 = arrivals by rate.
  long long clients = 0;
  // Lengths drawn uniformly from [⌊r·I⌋, I] and [⌊r·O⌋, O] (benchmark_serving
  // --random-range-ratio r) from a fixed seed, so a run is reproducible; 1 = every request I / O.
  double range_ratio = 1;
  // The scheduler takes new requests only every N steps while anything runs (SGLang
  // --scheduler-recv-interval, --num-continuous-decode-steps); an idle server takes them at once.
  long long admit_every_steps = 1;
};

// Time of one engine step carrying `dec_seqs` decoding sequences and `pf_tokens` prompt tokens
// of `pf_seqs` prompts.
using BurstStepTime = std::function<double(double dec_seqs, double pf_tokens, double pf_seqs)>;

struct BurstRun {
  double ttft_mean_s = 0;          // first token − arrival, mean over the wave
  double tpot_mean_s = 0;          // (last token − first token) / (O − 1), mean over the wave
  double duration_s = 0;           // first arrival to last token
  double output_tokens_per_s = 0;  // output tokens of all N requests / duration
  double input_tokens_per_s = 0;   // prompt tokens of all N requests / duration
  long long steps = 0;             // engine steps simulated (bulk decode steps counted)
};

// Simulates the run step by step: prompts are admitted in arrival order while a slot is free,
// chunked into the room the decoders leave in the budget (FIFO), and decode from the step after
// their prefill ends; TTFT counts from when the client sent the request. Throws Error when the
// load is out of range (no requests, more than 65,536, non-positive budget, a range ratio
// outside (0, 1]) or would take more than a million mixed steps.
BurstRun simulate_burst(const BurstLoad& load, const BurstStepTime& step_s);

}  // namespace moeplan
