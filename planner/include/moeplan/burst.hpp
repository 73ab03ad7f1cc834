#pragma once
// One wave of requests run to completion: `vllm bench serve --num-prompts N` with N no larger
// than --max-concurrency, at a request rate (or all at once). The benchmark's figures are
// whole-run averages — mean TTFT over the wave, mean TPOT, output tokens over the run's
// duration — so the ramp (prompts queueing for the prefill budget) and the tail (the last
// prompts decoding alone) are part of them, which a steady-state estimate leaves out.
// docs/performance.md §Serving steady state, "once" arrivals.

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
};

// Time of one engine step carrying `dec_seqs` decoding sequences and `pf_tokens` prompt tokens
// of `pf_seqs` prompts.
using BurstStepTime = std::function<double(double dec_seqs, double pf_tokens, double pf_seqs)>;

struct BurstRun {
  double ttft_mean_s = 0;          // first token − arrival, mean over the wave
  double tpot_mean_s = 0;          // (last token − first token) / (O − 1), mean over the wave
  double duration_s = 0;           // first arrival to last token
  double output_tokens_per_s = 0;  // N · O / duration
  long long steps = 0;             // engine steps simulated (bulk decode steps counted)
};

// Simulates the wave step by step: prompts are admitted in arrival order while a slot is free,
// chunked into the room the decoders leave in the budget (FIFO), and decode from the step after
// their prefill ends. Throws Error when the load is out of range (no requests, more than
// 65,536, non-positive budget) or would take more than a million mixed steps.
BurstRun simulate_burst(const BurstLoad& load, const BurstStepTime& step_s);

}  // namespace moeplan
