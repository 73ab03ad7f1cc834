#include "moeplan/burst.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <queue>
#include <utility>
#include <vector>

#include "moeplan/errors.hpp"

namespace moeplan {
namespace {

constexpr long long kMaxRequests = 65536;
constexpr long long kMaxMixedSteps = 1000000;

struct Req {
  double arrival = 0;
  double prefill_left = 0;
  double first = -1;  // time of the first token; <0 until the prefill ends
  double end = -1;    // time of the last token; <0 while running
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

// Every decoding sequence emits τ tokens per step, so a request's last token comes a fixed
// number of steps after its first: decoders are kept in a min-heap by that step, and a step
// costs O(log n) however many sequences decode.
class Wave {
 public:
  Wave(const BurstLoad& l, const BurstStepTime& f) : l_(l), step_s_(f), r_(l.requests) {
    for (long long i = 0; i < l.requests; ++i) {
      r_[i].arrival = l.rate_per_s > 0 ? static_cast<double>(i) / l.rate_per_s : 0.0;
      r_[i].prefill_left = l.input_tokens;
    }
    // Decode steps after the first token: ceil((O − 1) / τ).
    decode_steps_ = std::ceil((l.output_tokens - 1) / l.tokens_per_step - 1e-9);
  }

  BurstRun run() {
    while (finished_ < n()) {
      admit();
      if (pf_head_ < admitted_) {
        mixed_step();
      } else if (!decoders_.empty()) {
        decode_steps();
      } else {
        t_ = std::max(t_, r_[admitted_].arrival);  // idle until the next arrival
      }
    }
    return summary();
  }

 private:
  using Finish = std::pair<double, long long>;  // (emission step of the last token, request)

  long long n() const { return l_.requests; }

  void admit() {
    while (admitted_ < n() && admitted_ - finished_ < l_.slots && r_[admitted_].arrival <= t_)
      ++admitted_;
  }

  // Requests whose last token comes by emission step `emitted_`; a step that began at `t0`
  // with emission index `e0` and lasted `dt` each ends them at t0 + (their step − e0)·dt.
  void retire(double t0, double e0, double dt) {
    while (!decoders_.empty() && decoders_.top().first <= emitted_ + 1e-9) {
      const auto [at, i] = decoders_.top();
      decoders_.pop();
      r_[i].end = t0 + (at - e0) * dt;
      ++finished_;
    }
  }

  // One step with prompt tokens: the decoders' query tokens take their room first.
  void mixed_step() {
    if (++mixed_ > kMaxMixedSteps)
      throw Error(fmt::format(
          "a single wave of {} prompts of {:.0f} tokens needs more than {} steps at a budget of "
          "{:.0f} tokens",
          n(), l_.input_tokens, kMaxMixedSteps, l_.budget_tokens));
    const double dec = static_cast<double>(decoders_.size());
    const double room = std::max(1.0, l_.budget_tokens - dec * l_.query_tokens);
    double take = 0, seqs = 0;
    long long last_done = pf_head_;  // prompts [pf_head_, last_done) end their prefill here
    for (long long i = pf_head_; i < admitted_ && take < room; ++i) {
      const double x = std::min(r_[i].prefill_left, room - take);
      take += x;
      seqs += 1;
      r_[i].prefill_left -= x;
      if (r_[i].prefill_left <= 0) last_done = i + 1;
    }
    const double dt = step_s_(dec, take, std::max(1.0, seqs));
    const double t0 = t_, e0 = emitted_;
    t_ += dt;
    emitted_ += 1;
    ++steps_;
    retire(t0, e0, dt);
    for (long long i = pf_head_; i < last_done; ++i) {
      r_[i].first = t_;
      if (decode_steps_ <= 0) {
        r_[i].end = t_;
        ++finished_;
      } else {
        decoders_.push({emitted_ + decode_steps_, i});
      }
    }
    pf_head_ = last_done;
  }

  // Pure decode steps, in bulk: until a decoder finishes or the next arrival can be admitted.
  void decode_steps() {
    const double dt = step_s_(static_cast<double>(decoders_.size()), 0, 0);
    double k = decoders_.top().first - emitted_;
    if (admitted_ < n() && admitted_ - finished_ < l_.slots)
      k = std::min(k, std::ceil((r_[admitted_].arrival - t_) / dt));
    k = std::max(1.0, k);
    const double t0 = t_, e0 = emitted_;
    t_ += k * dt;
    emitted_ += k;
    steps_ += static_cast<long long>(k);
    retire(t0, e0, dt);
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
  std::priority_queue<Finish, std::vector<Finish>, std::greater<>> decoders_;
  double decode_steps_ = 0;
  double t_ = 0;
  double emitted_ = 0;      // token-emission steps so far (every step emits τ per decoder)
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
