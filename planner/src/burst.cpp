#include "moeplan/burst.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "moeplan/errors.hpp"

namespace moeplan {
namespace {

constexpr long long kMaxRequests = 65536;
constexpr long long kMaxMixedSteps = 1000000;

struct Req {
  double arrival = 0;
  double prefill_left = 0;
  double first = -1;     // time of the first token; <0 until the prefill ends
  double remaining = 0;  // output tokens still to decode after the first
  double end = -1;       // time of the last token; <0 while running
};

void check_load(const BurstLoad& l) {
  if (l.requests < 1 || l.requests > kMaxRequests)
    throw Error(
        fmt::format("a single wave takes 1 to {} requests, not {}", kMaxRequests, l.requests));
  if (!(l.budget_tokens >= 1) || !(l.tokens_per_step > 0) || l.slots < 1 || l.input_tokens < 0 ||
      l.output_tokens < 1 || l.rate_per_s < 0)
    throw Error(
        "a single wave needs a token budget >= 1, >0 tokens per step, >= 1 slot, "
        ">= 1 output token and a request rate >= 0");
}

class Wave {
 public:
  Wave(const BurstLoad& l, const BurstStepTime& f) : l_(l), step_s_(f), r_(l.requests) {
    for (long long i = 0; i < l.requests; ++i) {
      r_[i].arrival = l.rate_per_s > 0 ? static_cast<double>(i) / l.rate_per_s : 0.0;
      r_[i].prefill_left = l.input_tokens;
    }
  }

  BurstRun run() {
    while (finished_ < n()) {
      admit();
      if (pf_head_ < admitted_) {
        mixed_step();
      } else if (decoding() > 0) {
        decode_steps();
      } else {
        t_ = std::max(t_, r_[admitted_].arrival);  // idle until the next arrival
      }
    }
    return summary();
  }

 private:
  long long n() const { return l_.requests; }
  long long decoding() const {
    long long d = 0;
    for (long long i = 0; i < pf_head_; ++i) d += r_[i].end < 0 ? 1 : 0;
    return d;
  }

  void admit() {
    while (admitted_ < n() && admitted_ - finished_ < l_.slots && r_[admitted_].arrival <= t_)
      ++admitted_;
  }

  // Decoders emit τ tokens each; those that reach their last token end at `t_end`.
  void advance_decoders(double steps, double t_start, double step_time) {
    for (long long i = 0; i < pf_head_; ++i) {
      Req& q = r_[i];
      if (q.end >= 0) continue;
      const double need = std::ceil(q.remaining / l_.tokens_per_step - 1e-9);
      if (need <= steps) {
        q.end = t_start + need * step_time;
        q.remaining = 0;
        ++finished_;
      } else {
        q.remaining -= steps * l_.tokens_per_step;
      }
    }
  }

  // One step with prompt tokens: the decoders' query tokens take their room first.
  void mixed_step() {
    if (++mixed_ > kMaxMixedSteps)
      throw Error(
          fmt::format("a single wave of {} prompts of {:.0f} tokens needs more than {} "
                      "steps at a budget of {:.0f} tokens",
                      n(), l_.input_tokens, kMaxMixedSteps, l_.budget_tokens));
    const double dec = static_cast<double>(decoding());
    const double room = std::max(1.0, l_.budget_tokens - dec * l_.query_tokens);
    double take = 0, seqs = 0;
    std::vector<long long> done;
    for (long long i = pf_head_; i < admitted_ && take < room; ++i) {
      const double x = std::min(r_[i].prefill_left, room - take);
      take += x;
      seqs += 1;
      r_[i].prefill_left -= x;
      if (r_[i].prefill_left <= 0) done.push_back(i);
    }
    const double dt = step_s_(dec, take, std::max(1.0, seqs));
    advance_decoders(1, t_, dt);
    t_ += dt;
    ++steps_;
    for (long long i : done) {
      r_[i].first = t_;
      r_[i].remaining = l_.output_tokens - 1;
      if (r_[i].remaining <= 0) r_[i].end = t_, ++finished_;
    }
    while (pf_head_ < admitted_ && r_[pf_head_].prefill_left <= 0) ++pf_head_;
  }

  // Pure decode steps, in bulk: until a decoder finishes or the next arrival can be admitted.
  void decode_steps() {
    const double dec = static_cast<double>(decoding());
    const double dt = step_s_(dec, 0, 0);
    double k = std::numeric_limits<double>::infinity();
    for (long long i = 0; i < pf_head_; ++i)
      if (r_[i].end < 0) k = std::min(k, std::ceil(r_[i].remaining / l_.tokens_per_step - 1e-9));
    if (admitted_ < n() && admitted_ - finished_ < l_.slots)
      k = std::min(k, std::ceil((r_[admitted_].arrival - t_) / dt));
    k = std::max(1.0, k);
    advance_decoders(k, t_, dt);
    t_ += k * dt;
    steps_ += static_cast<long long>(k);
  }

  BurstRun summary() const {
    BurstRun b;
    double ttft = 0, tpot = 0, last = 0;
    long long tpot_n = 0;
    for (const Req& q : r_) {
      ttft += q.first - q.arrival;
      last = std::max(last, q.end);
      if (l_.output_tokens > 1) {
        tpot += (q.end - q.first) / (l_.output_tokens - 1);
        ++tpot_n;
      }
    }
    b.ttft_mean_s = ttft / static_cast<double>(n());
    b.tpot_mean_s = tpot_n ? tpot / static_cast<double>(tpot_n) : 0.0;
    b.duration_s = last;
    b.output_tokens_per_s = last > 0 ? static_cast<double>(n()) * l_.output_tokens / last : 0.0;
    b.steps = steps_;
    return b;
  }

  const BurstLoad& l_;
  const BurstStepTime& step_s_;
  std::vector<Req> r_;
  double t_ = 0;
  long long admitted_ = 0;  // requests admitted, in arrival order
  long long pf_head_ = 0;   // first admitted request whose prefill is not done
  long long finished_ = 0;
  long long steps_ = 0, mixed_ = 0;
};

}  // namespace

BurstRun simulate_burst(const BurstLoad& load, const BurstStepTime& step_s) {
  check_load(load);
  return Wave(load, step_s).run();
}

}  // namespace moeplan
