#include "moeplan/burst.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
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
  double input = 0;         // prompt tokens
  double output = 1;        // tokens, the first included
  double decode_steps = 0;  // steps after the first token: ceil((output − 1) / τ)
  double first = -1;        // time of the first token; <0 until the prefill ends
  double end = -1;          // time of the last token; <0 while running
};

// Uniform draws in [0, 1) from a fixed seed (splitmix64), the same on every platform.
class Draws {
 public:
  double next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return static_cast<double>(z >> 11) * 0x1.0p-53;
  }

 private:
  std::uint64_t state_ = 0x6D6F65706C616E00ULL;
};

// A length in [⌊r·n⌋, n] as benchmark_serving draws it (numpy randint(int(n·r), n + 1)).
double draw_length(double n, double r, Draws& d) {
  if (r >= 1.0) return n;
  const double lo = std::floor(n * r);
  return lo + std::floor(d.next() * (std::floor(n) - lo + 1.0));
}

void check_load(const BurstLoad& l) {
  if (l.requests < 1 || l.requests > kMaxRequests)
    throw Error(
        fmt::format("a simulated run takes 1 to {} requests, not {}", kMaxRequests, l.requests));
  if (!(l.budget_tokens >= 1) || !(l.tokens_per_step > 0) || l.slots < 1 || l.input_tokens < 0 ||
      l.output_tokens < 1 || l.rate_per_s < 0 || l.clients < 0 ||
      !(l.range_ratio > 0 && l.range_ratio <= 1) || l.admit_every_steps < 1)
    throw Error(
        "a simulated run needs a token budget >= 1, >0 tokens per step, >= 1 slot, "
        ">= 1 output token, a request rate >= 0, >= 0 clients, a range ratio in (0, 1] and "
        "an admission interval >= 1 step");
}

// Every decoding sequence emits τ tokens per step, so a request's last token comes a fixed
// number of steps after its first: decoders are kept in a min-heap by that step, and a step
// costs O(log n) however many sequences decode.
class Wave {
 public:
  Wave(const BurstLoad& l, const BurstStepTime& f) : l_(l), step_s_(f), r_(l.requests) {
    Draws d;
    for (long long i = 0; i < l.requests; ++i) {
      Req& q = r_[i];
      if (l.clients > 0)  // the first `clients` at once, the others when a request ends
        q.arrival = i < l.clients ? 0.0 : std::numeric_limits<double>::infinity();
      else
        q.arrival = l.rate_per_s > 0 ? static_cast<double>(i) / l.rate_per_s : 0.0;
      q.input = draw_length(l.input_tokens, l.range_ratio, d);
      q.prefill_left = q.input;
      q.output = std::max(1.0, draw_length(l.output_tokens, l.range_ratio, d));
      q.decode_steps = std::ceil((q.output - 1) / l.tokens_per_step - 1e-9);
    }
    next_send_ = l.clients > 0 ? std::min(l.clients, l.requests) : l.requests;
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

  // New requests are taken at a poll step (every `admit_every_steps`), or at once when idle.
  bool polling() const {
    const bool idle = decoders_.empty() && pf_head_ == admitted_;
    return idle || steps_ % l_.admit_every_steps == 0;
  }

  void admit() {
    if (!polling()) return;
    while (admitted_ < n() && admitted_ - finished_ < l_.slots && r_[admitted_].arrival <= t_)
      ++admitted_;
  }

  // Requests whose last token comes by emission step `emitted_`; a step that began at `t0`
  // with emission index `e0` and lasted `dt` each ends them at t0 + (their step − e0)·dt.
  void retire(double t0, double e0, double dt) {
    while (!decoders_.empty() && decoders_.top().first <= emitted_ + 1e-9) {
      const auto [at, i] = decoders_.top();
      decoders_.pop();
      finish(i, t0 + (at - e0) * dt);
    }
  }

  // A request ends; a closed-loop client sends its next prompt at that moment.
  void finish(long long i, double at) {
    r_[i].end = at;
    ++finished_;
    if (next_send_ < n()) r_[next_send_++].arrival = at;
  }

  // One step with prompt tokens: the decoders' query tokens take their room first.
  void mixed_step() {
    if (++mixed_ > kMaxMixedSteps)
      throw Error(fmt::format(
          "a simulated run of {} prompts of {:.0f} tokens needs more than {} steps at a budget of "
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
      if (r_[i].decode_steps <= 0)
        finish(i, t_);
      else
        decoders_.push({emitted_ + r_[i].decode_steps, i});
    }
    pf_head_ = last_done;
  }

  // Pure decode steps, in bulk: until a decoder finishes or the next arrival can be admitted.
  void decode_steps() {
    const double dt = step_s_(static_cast<double>(decoders_.size()), 0, 0);
    double k = decoders_.top().first - emitted_;
    if (admitted_ < n() && admitted_ - finished_ < l_.slots) {
      // Up to the arrival, then on to the scheduler's next poll step.
      const double a = static_cast<double>(l_.admit_every_steps);
      const double s = static_cast<double>(steps_);
      const double upto = s + std::max(1.0, std::ceil((r_[admitted_].arrival - t_) / dt));
      k = std::min(k, std::ceil(upto / a) * a - s);
    }
    k = std::max(1.0, k);
    const double t0 = t_, e0 = emitted_;
    t_ += k * dt;
    emitted_ += k;
    steps_ += static_cast<long long>(k);
    retire(t0, e0, dt);
  }

  BurstRun summary() const {
    BurstRun b;
    double ttft = 0, tpot = 0, last = 0, tokens = 0, prompt_tokens = 0;
    long long tpot_n = 0;
    for (const Req& q : r_) {
      ttft += q.first - q.arrival;
      last = std::max(last, q.end);
      tokens += q.output;
      prompt_tokens += q.input;
      if (q.output > 1) {
        tpot += (q.end - q.first) / (q.output - 1);
        ++tpot_n;
      }
    }
    b.ttft_mean_s = ttft / static_cast<double>(n());
    b.tpot_mean_s = tpot_n ? tpot / static_cast<double>(tpot_n) : 0.0;
    b.duration_s = last;
    b.output_tokens_per_s = last > 0 ? tokens / last : 0.0;
    b.input_tokens_per_s = last > 0 ? prompt_tokens / last : 0.0;
    b.steps = steps_;
    return b;
  }

  const BurstLoad& l_;
  const BurstStepTime& step_s_;
  std::vector<Req> r_;
  std::priority_queue<Finish, std::vector<Finish>, std::greater<>> decoders_;
  long long next_send_ = 0;  // closed loop: the next request the client sends
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
