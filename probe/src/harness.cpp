// The probe pipeline (docs/probe.md): verify, time, log, fit, write.
#include "moeprobe/harness.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <numeric>
#include <sstream>
#include <thread>

#include "moekernels/index_math.hpp"
#include "moeplan/output_set.hpp"
#include "moeplan/report.hpp"
#include "moeprobe/formulas.hpp"
#include "moeprobe/reference.hpp"
#include "moeprobe/shapes.hpp"

namespace moeprobe {

using moeplan::Json;
namespace mk = moekernels;

// ---- options ---------------------------------------------------------------------

Distribution Distribution::parse(const std::string& s) {
  Distribution d;
  if (s == "balanced") return d;
  const std::string prefix = "power_law:";
  if (s.rfind(prefix, 0) == 0) {
    const std::string a = s.substr(prefix.size());
    char* end = nullptr;
    const double v = std::strtod(a.c_str(), &end);
    if (a.empty() || *end != '\0' || !(v > 0) || !std::isfinite(v))
      throw moeplan::Error("--distribution " + s +
                           ": ALPHA must be a positive number (power_law:1.2)");
    d.name = s;
    d.alpha = v;
    return d;
  }
  throw moeplan::Error("unknown --distribution '" + s + "' (known: balanced, power_law:ALPHA)");
}

std::vector<float> Distribution::bias(int experts, std::uint64_t seed) const {
  if (alpha <= 0) return {};
  std::vector<int> rank(static_cast<std::size_t>(experts));
  std::iota(rank.begin(), rank.end(), 0);
  for (int i = experts - 1; i > 0; --i) {  // Fisher-Yates with the shared hash
    const int j = static_cast<int>(mk::mix64(seed ^ static_cast<std::uint64_t>(i)) %
                                   static_cast<std::uint64_t>(i + 1));
    std::swap(rank[static_cast<std::size_t>(i)], rank[static_cast<std::size_t>(j)]);
  }
  std::vector<float> b(static_cast<std::size_t>(experts));
  for (int e = 0; e < experts; ++e)
    b[static_cast<std::size_t>(e)] = static_cast<float>(
        -alpha * std::log1p(static_cast<double>(rank[static_cast<std::size_t>(e)])));
  return b;
}

void RunOptions::apply_defaults() {
  if (tokens.empty())
    tokens = quick ? std::vector<int>{1, 4, 16, 17}
                   : std::vector<int>{1, 2, 4, 8, 16, 17, 32, 64, 65, 128, 256};
  if (context.empty())
    context = quick ? std::vector<long long>{512} : std::vector<long long>{1024, 4096};
  if (prefill.empty()) prefill = quick ? std::vector<int>{32} : std::vector<int>{128, 512};
  if (memory_budget_gb <= 0) memory_budget_gb = quick ? 1.0 : 4.0;
  if (!timing) {
    TimingOptions t;
    if (quick) {
      t.warmup = 2;
      t.min_reps = 5;
      t.max_reps = 30;
      t.min_seconds = 0.03;
    }
    timing = t;
  }
  if (log.empty()) log = out + ".log.jsonl";
  for (int t : tokens)
    if (t <= 0) throw moeplan::Error("--tokens: every count must be positive");
  for (long long c : context)
    if (c <= 0) throw moeplan::Error("--context: every length must be positive");
  for (int p : prefill)
    if (p <= 0) throw moeplan::Error("--prefill: every length must be positive");
  if (layers <= 0) throw moeplan::Error("--layers must be positive");
}

double budget_share_s(double remaining_s, double cells, double remaining_cells) {
  if (remaining_s <= 0 || cells <= 0) return 0;
  if (remaining_cells <= cells) return remaining_s;
  return remaining_s * cells / remaining_cells;
}

TimingOptions budget_timing(const TimingOptions& t, double allowance_s, bool* trimmed) {
  TimingOptions o = t;
  const double timed = std::max(0.0, allowance_s / 3);
  const bool trim = timed < t.min_seconds;
  if (trim) {
    o.min_seconds = timed;
    o.min_reps = allowance_s > 0 ? std::max(3, std::min(t.min_reps, 5)) : 3;  // overdrawn: floor
    o.max_reps = std::max(o.min_reps, std::min(t.max_reps, 50));
    o.warmup = std::min(t.warmup, 1);
  }
  if (trimmed) *trimmed = trim;
  return o;
}

bool CheckResult::ok() const {
  return std::all_of(rows.begin(), rows.end(), [](const CheckRow& r) { return r.check.ok; });
}

namespace {

std::vector<float> random_vec(std::size_t n, std::uint64_t seed) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = mk::pattern_value(seed, i);
  return v;
}

// Token count of the verification instance: the same code path (<= 8 rows use
// the small-M kernels) with a bounded reference cost.
int verify_tokens(int t) {
  return t <= 9 ? t : 8 + t % 2;
}

int touched(const std::vector<int>& ids, int experts) {
  std::vector<char> seen(static_cast<std::size_t>(experts), 0);
  for (int e : ids) seen[static_cast<std::size_t>(e)] = 1;
  return static_cast<int>(std::count(seen.begin(), seen.end(), 1));
}

// ---- verification per op ------------------------------------------------------------

Check verify_triad(Backend& b, long long n) {
  TriadSpec s{n, 7};
  auto op = b.triad(s);
  op->run();
  op->sync();
  return compare_close(op->output().f, ref::triad(s), 1e-6, "triad");
}

Check verify_gemm(Backend& b, GemmSpec s, std::uint64_t seed) {
  const auto x = random_vec(static_cast<std::size_t>(s.m) * s.k, seed);
  auto op = b.gemm(s, x);
  op->run();
  op->sync();
  const auto y = op->output().f;
  std::vector<int> cols;
  const int step = std::max(1, s.n / 256);
  for (int j = 0; j < s.n; j += step) cols.push_back(j);
  if (cols.back() != s.n - 1) cols.push_back(s.n - 1);
  std::vector<float> got;
  for (int i = 0; i < s.m; ++i)
    for (int j : cols) got.push_back(y[static_cast<std::size_t>(i) * s.n + j]);
  return compare_close(got, ref::gemm(s, x, cols), error_limit(s.dtype, OpKind::simple), "gemm");
}

Check verify_router(Backend& b, const MoeSpec& s, int tokens, std::uint64_t seed) {
  const auto x = random_vec(static_cast<std::size_t>(tokens) * s.hidden, seed);
  auto op = b.moe_router(s, x, tokens);
  op->run();
  op->sync();
  const OpOutput o = op->output();
  const std::size_t nl = static_cast<std::size_t>(tokens) * s.shape.experts;
  const std::vector<float> logits(o.f.begin(), o.f.begin() + static_cast<long long>(nl));
  const std::vector<float> w(o.f.begin() + static_cast<long long>(nl), o.f.end());
  const ref::Routing r = ref::route(s, x, tokens);
  Check c =
      compare_close(logits, r.logits, error_limit(DType::fp32, OpKind::simple), "router logits");
  // Top-k must match exactly what the shared selection gives on the backend's logits…
  MoeSpec same = s;
  std::vector<int> ids_on_theirs(static_cast<std::size_t>(tokens) * s.shape.top_k);
  std::vector<float> w_on_theirs(ids_on_theirs.size());
  std::vector<float> scratch(
      static_cast<std::size_t>(mk::routing_scratch_floats(s.shape.experts, s.shape.n_group)));
  for (int t = 0; t < tokens; ++t)
    mk::route_token(logits.data() + static_cast<std::size_t>(t) * s.shape.experts,
                    s.bias.empty() ? nullptr : s.bias.data(), s.shape.experts, s.shape.top_k,
                    s.shape.sigmoid_grouped, s.shape.n_group, s.shape.topk_group, s.shape.normalize,
                    ids_on_theirs.data() + static_cast<std::size_t>(t) * s.shape.top_k,
                    w_on_theirs.data() + static_cast<std::size_t>(t) * s.shape.top_k,
                    scratch.data());
  c = combine_checks(c, compare_exact(o.i, ids_on_theirs, "top-k ids"));
  // …and be the reference's selection up to near-ties.
  if (o.i != r.ids && !ref::valid_topk(s, r.logits, o.i, tokens, 1e-4))
    c = combine_checks(c, compare_exact(o.i, r.ids, "top-k ids vs reference"));
  c = combine_checks(
      c, compare_close(w, ref::routing_weights(s, r.logits, o.i, tokens), 1e-4, "routing weights"));
  return c;
}

Check verify_permute(Backend& b, const MoeSpec& s, int tokens, std::uint64_t seed) {
  const auto x = random_vec(static_cast<std::size_t>(tokens) * s.hidden, seed);
  const auto ids = ref::route(s, x, tokens).ids;
  auto op = b.moe_permute(s, ids, x, tokens);
  op->run();
  op->sync();
  const OpOutput o = op->output();
  const ref::Permutation p = ref::permute(s, ids, x, tokens);
  std::vector<int> want = p.counts;
  want.insert(want.end(), p.offsets.begin(), p.offsets.end());
  want.insert(want.end(), p.perm.begin(), p.perm.end());
  want.insert(want.end(), p.inv.begin(), p.inv.end());
  return combine_checks(compare_exact(o.i, want, "permutation"),
                        compare_close(o.f, p.x_perm, 0.0, "gathered rows"));
}

Check verify_experts(Backend& b, const MoeSpec& s, int tokens, std::uint64_t seed) {
  const auto x = random_vec(static_cast<std::size_t>(tokens) * s.hidden, seed);
  const auto ids = ref::route(s, x, tokens).ids;
  const ref::Permutation p = ref::permute(s, ids, x, tokens);
  auto op = b.moe_experts(s, p.x_perm, p.counts);
  op->run();
  op->sync();
  return compare_close(op->output().f, ref::experts(s, p.x_perm, p.counts),
                       error_limit(s.dtype, OpKind::simple), "expert FFN");
}

Check verify_combine(Backend& b, const MoeSpec& s, int tokens, std::uint64_t seed) {
  const auto x = random_vec(static_cast<std::size_t>(tokens) * s.hidden, seed);
  const ref::Routing r = ref::route(s, x, tokens);
  const ref::Permutation p = ref::permute(s, r.ids, x, tokens);
  const auto y = random_vec(p.x_perm.size(), seed + 1);
  auto op = b.moe_combine(s, y, p.inv, r.w, tokens);
  op->run();
  op->sync();
  return compare_close(op->output().f, ref::combine(s, y, p.inv, r.w, tokens),
                       error_limit(DType::fp32, OpKind::simple), "combine");
}

Check verify_fused(Backend& b, const MoeSpec& s, int tokens, std::uint64_t seed) {
  const auto x = random_vec(static_cast<std::size_t>(tokens) * s.hidden, seed);
  auto op = b.moe_fused(s, x, tokens);
  op->run();
  op->sync();
  const OpOutput o = op->output();
  ref::Routing r = ref::route(s, x, tokens);
  Check c;
  if (o.i != r.ids) {
    if (!ref::valid_topk(s, r.logits, o.i, tokens, 1e-4))
      return compare_exact(o.i, r.ids, "fused MoE top-k ids");
    r.ids = o.i;  // near-tie: adopt the backend's (valid) selection
    r.w = ref::routing_weights(s, r.logits, r.ids, tokens);
  }
  return compare_close(o.f, ref::moe_block(s, x, tokens, r.ids, r.w),
                       error_limit(s.dtype, OpKind::simple), "fused MoE");
}

Check verify_attention(Backend& b, const AttentionSpec& s) {
  auto op = b.attention(s);
  op->run();
  op->sync();
  return compare_close(op->output().f, ref::attention(s), error_limit(s.dtype, OpKind::simple),
                       "attention");
}

// Whether `b` implements `op` (its BackendInfo lists it). A backend that lacks an op
// has its rows skipped (and counted) instead of failing after every other op.
bool backend_has_op(const Backend& b, const std::string& op) {
  for (const auto& info : list_backends())
    if (info.name == b.name())
      return std::find(info.ops.begin(), info.ops.end(), op) != info.ops.end();
  return true;
}

Check verify_layer(Backend& b, const LayerSpec& s, std::uint64_t seed) {
  const auto x = random_vec(static_cast<std::size_t>(s.tokens()) * s.shape.hidden, seed);
  auto op = b.layer(s, x);
  op->run();
  op->sync();
  const OpOutput o = op->output();
  std::vector<ref::LayerRouting> routing;
  Check c =
      compare_close(o.f, ref::layer(s, x, &o.i, routing_tie_tol(s.dtype, s.kv_dtype), &routing),
                    error_limit(s.dtype, OpKind::chained, s.kv_dtype), "decoder layer");
  if (!c.ok)  // say whether the expert selection explains it
    for (const auto& r : routing)
      if (r.tokens_differing > 0)
        c.detail += fmt::format(
            "; MoE layer {}: {} token(s) routed differently, worst score "
            "margin {:.3g} ({} the near-tie margin {:.3g})",
            r.layer, r.tokens_differing, r.worst_excess, r.adopted ? "within" : "beyond",
            routing_tie_tol(s.dtype, s.kv_dtype));
  return c;
}

// ---- the run ---------------------------------------------------------------------------

struct Progress {
  bool on = false;
  int total = 0, done = 0;
  void step(const std::string& what) {
    ++done;
    if (!on) return;
    const int width = 30, filled = total > 0 ? width * done / total : width;
    std::fprintf(stderr, "\r[%s%s] %d/%d %-50.50s",
                 std::string(static_cast<std::size_t>(filled), '#').c_str(),
                 std::string(static_cast<std::size_t>(width - filled), ' ').c_str(), done, total,
                 what.c_str());
    std::fflush(stderr);
  }
  void finish() {
    if (on) std::fprintf(stderr, "\r%*s\r", 90, "");
  }
};

struct Prepared {
  std::unique_ptr<Op> op;
  Work work;
  int touched = -1;
};

// Wall time of the run, split into sections (RunOptions::budget_s).
struct BudgetClock {
  using Clock = std::chrono::steady_clock;
  double limit_s = 0;  // 0: no budget
  Clock::time_point start = Clock::now();
  double total_weight = 0, used_weight = 0;  // weighted cells planned / of finished sections
  std::string section;
  double section_start_s = 0, section_end_s = std::numeric_limits<double>::infinity();
  double section_weight = 0, cell_weight = 1;
  int section_cells = 0, section_done = 0;
  Json section_s = Json::object();  // seconds spent per section (always recorded)

  double elapsed() const { return std::chrono::duration<double>(Clock::now() - start).count(); }
  void begin(const std::string& name, int cells, double weight_per_cell) {
    end();
    section = name;
    section_start_s = elapsed();
    section_cells = cells;
    section_done = 0;
    cell_weight = weight_per_cell;
    section_weight = cells * weight_per_cell;
    section_end_s =
        limit_s > 0 ? section_start_s + budget_share_s(limit_s - section_start_s, section_weight,
                                                       total_weight - used_weight)
                    : std::numeric_limits<double>::infinity();
  }
  void end() {
    if (section.empty()) return;
    section_s[section] = elapsed() - section_start_s;
    used_weight += section_weight;
    section.clear();
  }
  // The triad is always measured: every other row's measured roofline needs it.
  bool out_of_time() const {
    return limit_s > 0 && section != "triad" && elapsed() >= section_end_s;
  }
  // Wall time one more cell of the section may take.
  double allowance() const {
    const int left = std::max(1, section_cells - section_done);
    return (section_end_s - elapsed()) / left;
  }
};

struct Runner {
  Backend& b;
  const RunOptions& o;
  const moeplan::Device* dev;
  RowLog& log;
  std::map<std::string, Row> done;
  std::vector<Row> rows;
  Progress progress;
  double bw_gb_s = 0;  // measured in step 1
  int new_rows = 0, resumed = 0, trimmed = 0;
  BudgetClock clock;
  std::vector<std::string> out_of_time;
  // Verification results by instance: rows whose verification instance is the
  // same (tokens > 9 all verify at 8 or 9 tokens) verify once.
  std::map<std::string, Check> verified;
  double load_max = -1;  // highest 1-minute load average seen after a timed cell

  // vkey: what identifies the verification instance besides op, shape and
  // dtype ("" = no reuse).
  void measure(Row proto, const std::function<Check()>& verify,
               const std::function<Prepared()>& prepare, const std::string& vkey = "") {
    const std::string key = proto.key();
    const std::string label = proto.op + " " + proto.shape + " n=" + std::to_string(proto.tokens) +
                              (proto.context ? " L=" + std::to_string(proto.context) : "");
    if (auto it = done.find(key); it != done.end()) {
      rows.push_back(it->second);
      if (proto.op == "triad") bw_gb_s = std::max(bw_gb_s, it->second.gb_s);
      ++resumed;
      ++clock.section_done;
      progress.step(label + " (resumed)");
      return;
    }
    if (clock.out_of_time()) {
      out_of_time.push_back(label);
      ++clock.section_done;
      progress.step(label + " (budget spent)");
      return;
    }
    bool trim = false;
    const TimingOptions timing =
        clock.limit_s > 0 ? budget_timing(*o.timing, clock.allowance(), &trim) : *o.timing;
    const std::string vk = vkey.empty() ? std::string()
                                        : proto.op + "|" + proto.shape + "|" + proto.dtype + "|" +
                                              proto.distribution + "|" + vkey;
    Check c;
    if (auto it = verified.find(vk); !vk.empty() && it != verified.end()) {
      c = it->second;
    } else {
      c = verify();
      if (!vk.empty()) verified[vk] = c;
    }
    if (!c.ok) {
      progress.finish();
      throw VerificationError("verification failed for " + label + " (" + proto.dtype +
                              "): " + c.detail + "; no calibration written");
    }
    Prepared p = prepare();
    Row r = std::move(proto);
    r.time = time_op(*p.op, b, timing);
    load_max = std::max(load_max, load_average_now());  // reads /proc/loadavg: cheap
    if (trim) ++trimmed;
    ++clock.section_done;
    r.bytes = p.work.bytes;
    r.flops = p.work.flops;
    r.experts_touched = p.touched;
    r.verified = true;
    r.max_err = c.max_err;
    const double t = r.time.p50;
    r.gb_s = r.bytes / t * 1e-9;
    r.tflops = r.flops / t * 1e-12;
    const double peak_flops = dev ? dev->peak_tflops_for(r.dtype) * 1e12 : 0;
    if (dev && dev->memory_bandwidth_gb_s > 0) {
      r.roofline_s = std::max(r.bytes / (dev->memory_bandwidth_gb_s * 1e9),
                              peak_flops > 0 ? r.flops / peak_flops : 0.0);
      r.util = *r.roofline_s / t;
    }
    if (r.op == "triad") bw_gb_s = std::max(bw_gb_s, r.gb_s);
    r.roofline_measured_s = std::max(bw_gb_s > 0 ? r.bytes / (bw_gb_s * 1e9) : 0.0,
                                     peak_flops > 0 ? r.flops / peak_flops : 0.0);
    r.util_measured = r.roofline_measured_s / t;
    log.append(r);
    rows.push_back(r);
    if (o.on_row) o.on_row(r);
    progress.step(label);
    ++new_rows;
    if (o.stop_after >= 0 && new_rows >= o.stop_after) {
      progress.finish();
      throw Interrupted("interrupted after " + std::to_string(new_rows) + " rows (test hook)");
    }
  }
};

Json shape_json(const moeplan::Model& m, const LayerShape& s) {
  Json j = Json::object();
  j["id"] = m.id;
  j["layers"] = m.layers;
  j["dense_layers"] = m.moe ? m.moe->dense_layers : 0;
  j["hidden_size"] = s.hidden;
  j["vocab_size"] = m.vocab_size;
  const AttnShape& a = s.attn;
  if (a.mla)
    j["attention"] = Json{{"type", "mla"},
                          {"heads", a.heads},
                          {"q_lora_rank", a.q_lora_rank},
                          {"kv_lora_rank", a.kv_lora_rank},
                          {"rope_dim", a.rope_dim},
                          {"nope_dim", a.nope_dim},
                          {"v_head_dim", a.v_head_dim}};
  else
    j["attention"] = Json{
        {"type", "gqa"}, {"heads", a.heads}, {"kv_heads", a.kv_heads}, {"head_dim", a.head_dim}};
  if (s.moe)
    j["moe"] = Json{{"experts", s.moe->experts},
                    {"top_k", s.moe->top_k},
                    {"ffn", s.moe->ffn},
                    {"shared_experts", s.moe->shared_experts},
                    {"shared_ffn", s.moe->shared_ffn},
                    {"routing", s.moe->sigmoid_grouped ? "sigmoid_grouped" : "softmax"},
                    {"n_group", s.moe->n_group},
                    {"topk_group", s.moe->topk_group}};
  j["dense_ffn_size"] = m.dense_ffn_size;
  return j;
}

std::string fmt_g(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", v);
  return buf;
}

std::string gemm_key(const std::string& name, int n, int k, int full_n) {
  std::string s = name + ":" + std::to_string(n) + "x" + std::to_string(k);
  if (n != full_n) s += "(of " + std::to_string(full_n) + ")";
  return s;
}

}  // namespace

RunResult run_probe(const moeplan::Model& m, const moeplan::Device* device, Backend& b,
                    RunOptions opt) {
  opt.apply_defaults();
  // Before the log is created and before minutes of measuring: a destination that cannot be
  // written (a directory, a missing directory, "") would otherwise fail only at the end and
  // leave the log of a failed run behind.
  moeplan::OutputSet destinations;
  destinations.add(opt.out, std::string(), "--out");
  destinations.add(opt.log, std::string(), "--out (its log)");
  destinations.check();
  if (!b.supports(opt.dtype))
    throw moeplan::Error("backend " + b.name() + " does not support --dtype " +
                         dtype_name(opt.dtype));
  const LayerShape ls = layer_shape(m);
  const std::string dt = dtype_name(opt.dtype);
  const double budget = opt.memory_budget_gb * 1e9;
  const int elt = dtype_bytes(opt.dtype);

  Json config = Json::object();
  config["model"] = m.id;
  config["backend"] = b.name();
  config["dtype"] = dt;
  // Only fp8 runs carry the key, so logs of earlier runs still resume.
  if (opt.kv_dtype == KvDType::fp8) config["kv_dtype"] = kv_dtype_name(opt.kv_dtype);
  config["distribution"] = opt.distribution.name;
  config["tokens"] = opt.tokens;
  config["context"] = opt.context;
  config["prefill"] = opt.prefill;
  config["layers_measured"] = opt.layers;
  config["memory_budget_gb"] = opt.memory_budget_gb;
  config["quick"] = opt.quick;
  config["device"] = device ? device->id : "";
  config["timing"] = Json{{"warmup", opt.timing->warmup},
                          {"min_reps", opt.timing->min_reps},
                          {"max_reps", opt.timing->max_reps},
                          {"min_seconds", opt.timing->min_seconds},
                          {"flush_caches", opt.timing->flush}};

  RowLog log(opt.log, config, opt.resume);
  Runner run{b, opt, device, log, {}, {}, {}, 0, 0, 0, 0, {}, {}, {}, -1.0};
  RunConditions cond;
  cond.load_start = load_average_now();
  cond.cpus = static_cast<int>(std::thread::hardware_concurrency());
  const int drops_before = clock_drop_count();
  run.clock.limit_s = opt.budget_s;
  for (const auto& r : log.resumed()) run.done[r.key()] = r;
  RunResult result;

  // ---- plan sizes ----
  const long long triad_n = std::min<long long>(opt.quick ? (16LL << 20) : (64LL << 20),
                                                static_cast<long long>(budget / 12));
  const auto projs = projections(m);
  const std::vector<float> bias =
      ls.moe ? opt.distribution.bias(ls.moe->experts, 4242) : std::vector<float>{};
  MoeSpec moe;
  if (ls.moe) {
    moe.hidden = ls.hidden;
    moe.shape = *ls.moe;
    moe.dtype = opt.dtype;
    moe.seed = 5000;
    moe.bias = bias;
    const long long eb = expert_bytes(*ls.moe, ls.hidden, opt.dtype);
    moe.pool = static_cast<int>(
        std::clamp<long long>(static_cast<long long>(budget / 2) / eb, 1, ls.moe->experts));
    if (moe.pool < ls.moe->experts)
      result.notes.push_back(
          "memory budget: " + std::to_string(moe.pool) + " of " + std::to_string(ls.moe->experts) +
          " experts materialised per layer; expert e uses the weights of slot e % " +
          std::to_string(moe.pool));
  }
  auto attn_for = [&](int batch, int queries, long long context) {
    LayerSpec tmp;
    tmp.shape = ls;
    tmp.dtype = opt.dtype;
    tmp.kv_dtype = opt.kv_dtype;
    tmp.batch = batch;
    tmp.queries = queries;
    tmp.context = context;
    tmp.seed = 9000;
    AttentionSpec a = tmp.attention_spec(0);
    if (ls.attn.mla && queries > 1) {  // prefill: the non-absorbed form, one KV head per query head
      a.kv_heads = ls.attn.heads;
      a.qk_dim = ls.attn.nope_dim + ls.attn.rope_dim;
      a.v_dim = ls.attn.v_head_dim;
      a.shared_kv = false;
    }
    return a;
  };
  auto cache_bytes = [&](const AttentionSpec& a) {
    return static_cast<double>(a.batch) * static_cast<double>(a.context) * a.kv_heads *
           (a.qk_dim + (a.shared_kv ? 0 : a.v_dim)) * a.kv_bytes();
  };
  auto layer_for = [&](const LayerShape& shape, int batch, int queries, long long context,
                       std::uint64_t seed) {
    LayerSpec s;
    s.shape = shape;
    s.dtype = opt.dtype;
    s.kv_dtype = opt.kv_dtype;
    s.batch = batch;
    s.queries = queries;
    s.context = context;
    s.layers = opt.layers;
    s.seed = seed;
    s.bias = bias;
    if (shape.moe) {
      const long long eb = expert_bytes(*shape.moe, shape.hidden, opt.dtype);
      s.pool = static_cast<int>(std::clamp<long long>(
          static_cast<long long>(budget / 2 / opt.layers) / eb, 1, shape.moe->experts));
    }
    return s;
  };
  const bool dense_layers = m.moe && m.moe->dense_layers > 0 && m.dense_ffn_size > 0;

  run.progress.on = opt.progress && ::isatty(2);
  run.progress.total = 1 + static_cast<int>(projs.size() * opt.tokens.size()) +
                       (ls.moe ? 5 * static_cast<int>(opt.tokens.size()) : 0) +
                       static_cast<int>(opt.tokens.size() * opt.context.size()) +
                       static_cast<int>(opt.prefill.size()) +
                       static_cast<int>(opt.tokens.size()) * (dense_layers ? 2 : 1) +
                       static_cast<int>(opt.prefill.size());
  std::uint64_t vseed = 100;
  // Budget sections: cells and a weight per cell (a layer cell prepares and
  // verifies a whole decoder layer: weighted 3; chosen, not measured).
  const int nt = static_cast<int>(opt.tokens.size());
  const int gemm_cells = static_cast<int>(projs.size()) * nt;
  const int moe_cells = ls.moe ? 5 * nt : 0;
  const int attn_cells =
      nt * static_cast<int>(opt.context.size()) + static_cast<int>(opt.prefill.size());
  const int layer_cells = nt * (dense_layers ? 2 : 1) + static_cast<int>(opt.prefill.size());
  constexpr double kLayerWeight = 3;
  run.clock.total_weight = 1 + gemm_cells + moe_cells + attn_cells + kLayerWeight * layer_cells;
  auto vk = [](int t, long long ctx = 0) {
    return "t=" + std::to_string(t) + (ctx ? ",L=" + std::to_string(ctx) : "");
  };

  // 1. bandwidth
  run.clock.begin("triad", 1, 1);
  {
    Row r;
    r.op = "triad";
    r.shape = "triad:" + std::to_string(triad_n);
    r.dtype = "fp32";
    run.measure(
        r, [&] { return verify_triad(b, 1 << 16); },
        [&] {
          TriadSpec s{triad_n, 1};
          return Prepared{b.triad(s), triad_work(s), -1};
        });
  }
  // 2. dense GEMMs (tokens outermost: a spent budget drops the largest counts
  // of every projection, not whole projections)
  run.clock.begin("gemm", gemm_cells, 1);
  for (int t : opt.tokens)
    for (const auto& p : projs) {
      const int n = static_cast<int>(
          std::clamp<double>(budget / 2 / (static_cast<double>(p.k) * elt), 1, p.n));
      Row r;
      r.op = "gemm";
      r.shape = gemm_key(p.name, n, p.k, p.n);
      r.dtype = dt;
      r.tokens = t;
      const GemmSpec s{t, n, p.k, opt.dtype, 700};
      run.measure(
          r,
          [&] {
            GemmSpec v = s;
            v.m = verify_tokens(t);
            v.seed = 701;
            return verify_gemm(b, v, ++vseed);
          },
          [&] {
            return Prepared{b.gemm(s, random_vec(static_cast<std::size_t>(t) * p.k, 11)),
                            gemm_work(s), -1};
          },
          vk(verify_tokens(t)));
    }
  // 3. MoE, step by step and fused
  if (ls.moe) {
    const std::string key = "moe:" + std::to_string(ls.moe->experts) + "x" +
                            std::to_string(ls.moe->ffn) + "x" + std::to_string(ls.hidden) + ",k" +
                            std::to_string(ls.moe->top_k);
    MoeSpec vmoe = moe;
    vmoe.pool = std::min(moe.pool, 16);
    vmoe.seed = 5100;
    run.clock.begin("moe", moe_cells, 1);
    for (int t : opt.tokens) {
      const int vt = verify_tokens(t);
      if (run.clock.out_of_time()) {  // not even the routing of the timed input
        for (const char* op :
             {"moe.router", "moe.permute", "moe.experts", "moe.combine", "moe.fused"}) {
          run.out_of_time.push_back(std::string(op) + " " + key + " n=" + std::to_string(t));
          ++run.clock.section_done;
          run.progress.step(std::string(op) + " (budget spent)");
        }
        continue;
      }
      const auto x = random_vec(static_cast<std::size_t>(t) * ls.hidden, 12);
      // Routing of the timed input (also the inputs of the later stages).
      auto router = b.moe_router(moe, x, t);
      router->run();
      const OpOutput ro = router->output();
      const std::vector<int> ids = ro.i;
      const std::vector<float> w(ro.f.begin() + static_cast<long long>(t) * ls.moe->experts,
                                 ro.f.end());
      const int tch = touched(ids, ls.moe->experts);
      auto perm_op = b.moe_permute(moe, ids, x, t);
      perm_op->run();
      const OpOutput po = perm_op->output();
      const int e = ls.moe->experts;
      const std::vector<int> counts(po.i.begin(), po.i.begin() + e);
      const long long a = static_cast<long long>(t) * ls.moe->top_k;
      const std::vector<int> inv(po.i.end() - a, po.i.end());
      Row r;
      r.shape = key;
      r.dtype = dt;
      r.distribution = opt.distribution.name;
      r.tokens = t;
      r.op = "moe.router";
      run.measure(
          r, [&] { return verify_router(b, vmoe, vt, ++vseed); },
          [&] {
            return Prepared{b.moe_router(moe, x, t), router_work(moe, t), tch};
          },
          vk(vt));
      r.op = "moe.permute";
      run.measure(
          r, [&] { return verify_permute(b, vmoe, vt, ++vseed); },
          [&] {
            return Prepared{b.moe_permute(moe, ids, x, t), permute_work(moe, t), tch};
          },
          vk(vt));
      r.op = "moe.experts";
      run.measure(
          r, [&] { return verify_experts(b, vmoe, vt, ++vseed); },
          [&] {
            return Prepared{b.moe_experts(moe, po.f, counts), experts_work(moe, t, tch), tch};
          },
          vk(vt));
      r.op = "moe.combine";
      run.measure(
          r, [&] { return verify_combine(b, vmoe, vt, ++vseed); },
          [&] {
            return Prepared{b.moe_combine(moe, random_vec(po.f.size(), 13), inv, w, t),
                            combine_work(moe, t), tch};
          },
          vk(vt));
      r.op = "moe.fused";
      run.measure(
          r, [&] { return verify_fused(b, vmoe, vt, ++vseed); },
          [&] {
            return Prepared{b.moe_fused(moe, x, t), moe_fused_work(moe, t, tch), tch};
          },
          vk(vt));
    }
  }
  // 4. attention
  const std::string akey0 =
      ls.attn.mla
          ? "mla:" + std::to_string(ls.attn.heads) + "h,r" + std::to_string(ls.attn.kv_lora_rank) +
                "+" + std::to_string(ls.attn.rope_dim)
          : "gqa:" + std::to_string(ls.attn.heads) + "/" + std::to_string(ls.attn.kv_heads) + "x" +
                std::to_string(ls.attn.head_dim);
  const std::string akey = akey0 + (opt.kv_dtype == KvDType::fp8 ? ",kv:fp8" : "");
  run.clock.begin("attention", attn_cells, 1);
  for (int t : opt.tokens)
    for (long long ctx : opt.context) {
      const AttentionSpec s = attn_for(t, 1, ctx);
      if (cache_bytes(s) > budget) {
        ++result.skipped;
        run.progress.step("attention.decode skipped (memory budget)");
        continue;
      }
      Row r;
      r.op = "attention.decode";
      r.shape = akey;
      r.dtype = dt;
      r.tokens = t;
      r.context = ctx;
      run.measure(
          r,
          [&] {
            AttentionSpec v = attn_for(std::min(t, 2), 1, std::min<long long>(ctx, 77));
            v.seed = ++vseed;
            return verify_attention(b, v);
          },
          [&] {
            return Prepared{b.attention(s), attention_work(s), -1};
          },
          vk(std::min(t, 2), std::min<long long>(ctx, 77)));
    }
  for (int p : opt.prefill) {
    const AttentionSpec s = attn_for(1, p, p);
    Row r;
    r.op = "attention.prefill";
    r.shape = akey;
    r.dtype = dt;
    r.tokens = p;
    r.context = p;
    run.measure(
        r,
        [&] {
          const int vp = std::min(p, 33);
          AttentionSpec v = attn_for(1, vp, vp);
          v.seed = ++vseed;
          return verify_attention(b, v);
        },
        [&] {
          return Prepared{b.attention(s), attention_work(s), -1};
        },
        vk(std::min(p, 33), std::min(p, 33)));
  }
  // 5. whole decoder layers
  run.clock.begin("layers", layer_cells, kLayerWeight);
  const long long ctx0 = opt.context.front();
  std::map<int, double> layer_s, dense_s;
  auto layer_rows = [&](const LayerShape& shape, const std::string& op, int batch, int queries,
                        long long ctx, std::map<int, double>* per_tokens) {
    if (!backend_has_op(b, op)) {
      ++result.skipped;
      run.progress.step(op + " skipped (backend " + b.name() + " does not list this op)");
      return;
    }
    const LayerSpec s = layer_for(shape, batch, queries, ctx, 20000);
    const AttentionSpec a = s.attention_spec(0);
    if (cache_bytes(a) * opt.layers > budget) {
      ++result.skipped;
      run.progress.step(op + " skipped (memory budget)");
      return;
    }
    Row r;
    r.op = op;
    r.shape =
        (shape.moe ? "moe_layer:" : "dense_layer:") + akey + ",x" + std::to_string(opt.layers);
    r.dtype = dt;
    r.distribution = shape.moe ? opt.distribution.name : "";
    r.tokens = batch * queries;
    r.context = ctx;
    run.measure(
        r,
        [&] {
          LayerSpec v =
              layer_for(shape, std::min(batch, 2), verify_tokens(queries),
                        queries > 1 ? verify_tokens(queries) : std::min<long long>(ctx, 65), 30000);
          v.layers = 1;
          v.pool = std::min(v.pool, 16);
          return verify_layer(b, v, ++vseed);
        },
        [&] {
          const auto x = random_vec(static_cast<std::size_t>(s.tokens()) * shape.hidden, 14);
          auto op_ptr = b.layer(s, x);
          op_ptr->run();
          const OpOutput o = op_ptr->output();
          std::vector<int> tpl;
          const int k = shape.moe ? shape.moe->top_k : 0;
          for (int l = 0; shape.moe && l < s.layers; ++l)
            tpl.push_back(touched(
                std::vector<int>(o.i.begin() + static_cast<long long>(l) * s.tokens() * k,
                                 o.i.begin() + static_cast<long long>(l + 1) * s.tokens() * k),
                shape.moe->experts));
          const int tch = tpl.empty() ? -1 : tpl.front();
          return Prepared{std::move(op_ptr), layer_work(s, tpl), tch};
        },
        (shape.moe ? "moe," : "dense,") +
            vk(std::min(batch, 2) * verify_tokens(queries),
               queries > 1 ? verify_tokens(queries) : std::min<long long>(ctx, 65)));
    if (per_tokens && !run.rows.empty() && run.rows.back().op == op &&
        run.rows.back().tokens == batch * queries)
      (*per_tokens)[batch] = run.rows.back().time.p50 / opt.layers;
  };
  for (int t : opt.tokens) layer_rows(ls, "layer.decode", t, 1, ctx0, &layer_s);
  if (dense_layers)
    for (int t : opt.tokens) layer_rows(dense_layer_shape(m), "layer.decode", t, 1, ctx0, &dense_s);
  for (int p : opt.prefill) layer_rows(ls, "layer.prefill", 1, p, p, nullptr);
  run.progress.finish();
  run.clock.end();
  if (run.trimmed > 0)
    result.notes.push_back("--budget-s " + fmt_g(opt.budget_s) + ": repetitions trimmed in " +
                           std::to_string(run.trimmed) + " cells");
  if (!run.out_of_time.empty())
    result.notes.push_back("--budget-s " + fmt_g(opt.budget_s) + ": " +
                           std::to_string(run.out_of_time.size()) +
                           " cells not measured (their section's share of the budget was spent)");

  std::vector<DecodeStep> steps;
  const int n_dense = dense_layers ? m.moe->dense_layers : 0;
  for (const auto& [t, s] : layer_s) {
    DecodeStep d;
    d.tokens = t;
    d.context = ctx0;
    d.layer_s = s;
    d.dense_layer_s = dense_s.count(t) ? dense_s[t] : 0;
    d.stack_s = (m.layers - n_dense) * s + n_dense * (d.dense_layer_s > 0 ? d.dense_layer_s : s);
    steps.push_back(d);
  }

  const DeviceIdentity id = b.identity();
  Json probe = Json::object();
  probe["version"] = kProbeVersion;
  probe["tool_version"] = moeplan::tool_version();
  probe["git_sha"] = moeplan::git_sha();
  probe["backend"] = b.name();
  probe["command_line"] = opt.command_line;
  probe["build_warning"] = build_warning();
  probe["notes"] = result.notes;
  probe["budget"] = Json{{"limit_s", opt.budget_s > 0 ? Json(opt.budget_s) : Json()},
                         {"elapsed_s", run.clock.elapsed()},
                         {"section_s", run.clock.section_s},
                         {"trimmed_cells", run.trimmed},
                         {"not_measured", run.out_of_time}};
  result.calibration = build_calibration(probe, id, device ? device->id : "",
                                         device && device->memory_bandwidth_gb_s > 0
                                             ? std::optional<double>(device->memory_bandwidth_gb_s)
                                             : std::nullopt,
                                         shape_json(m, ls), config, run.rows, steps);
  cond.load_end = load_average_now();
  cond.load_max = run.load_max;
  if (b.name() == "cuda") {
    cond.clock_drops = clock_drop_count() - drops_before;
    cond.clock_drops_note = "timed cells whose SM clock (NVML) fell more than 10%";
  } else {
    cond.clock_drops_note = "not measured: the " + b.name() + " backend reads no clocks per cell";
  }
  const Json quality = quality_json(run.rows, cond);
  result.calibration["quality"] = quality;
  if (quality["noisy"].get<bool>()) {
    std::string why;
    for (const auto& r : quality["reasons"]) why += "\n  - " + r.get<std::string>();
    std::fprintf(stderr,
                 "WARNING: this machine was too noisy to trust the calibration (quality.noisy: "
                 "true in %s); moeplan will refuse it without --force-calibration:%s\n",
                 opt.out.c_str(), why.c_str());
  }
  moeplan::write_file_atomic(opt.out, result.calibration.dump(2) + "\n");
  result.rows = run.rows;
  result.resumed = run.resumed;
  result.trimmed = run.trimmed;
  result.out_of_time = run.out_of_time;
  result.out_path = opt.out;
  return result;
}

CheckResult run_check(const moeplan::Model& m, Backend& b, DType d, const Distribution& dist,
                      const std::function<void(const CheckRow&)>& on_row, KvDType kv) {
  CheckResult res;
  const LayerShape ls = layer_shape(m);
  std::uint64_t seed = 500;
  auto add = [&](const std::string& op, const std::string& shape, int tokens, const Check& c) {
    CheckRow r{op, shape, dtype_name(d), tokens, c};
    if (on_row) on_row(r);
    res.rows.push_back(r);
  };
  add("triad", "65537", 0, verify_triad(b, 65537));
  const std::vector<int> toks = {1, 5, 17};
  for (const auto& p : projections(m)) {
    const int n = std::min(p.n, 1031);  // odd, capped: the reference is O(m·n·k)
    for (int t : toks) {
      // Two seeds in a fixed order: function arguments are evaluated in an unspecified order,
      // so `f(++seed, ++seed)` gave GCC and clang builds different inputs.
      const auto weights_seed = ++seed;
      const auto input_seed = ++seed;
      add("gemm", p.name, t, verify_gemm(b, GemmSpec{t, n, p.k, d, weights_seed}, input_seed));
    }
  }
  if (ls.moe) {
    MoeSpec s;
    s.hidden = ls.hidden;
    s.shape = *ls.moe;
    s.dtype = d;
    s.pool = std::min(ls.moe->experts, 16);
    s.seed = 600;
    s.bias = dist.bias(ls.moe->experts, 4242);
    for (int t : toks) {
      add("moe.router", "moe", t, verify_router(b, s, t, ++seed));
      add("moe.permute", "moe", t, verify_permute(b, s, t, ++seed));
      add("moe.experts", "moe", t, verify_experts(b, s, t, ++seed));
      add("moe.combine", "moe", t, verify_combine(b, s, t, ++seed));
      add("moe.fused", "moe", t, verify_fused(b, s, t, ++seed));
    }
  }
  LayerSpec l;
  l.shape = ls;
  l.dtype = d;
  l.kv_dtype = kv;
  l.seed = 700;
  l.pool = ls.moe ? std::min(ls.moe->experts, 16) : 0;
  l.bias = ls.moe ? dist.bias(ls.moe->experts, 4242) : std::vector<float>{};
  for (int bsz : {1, 3}) {
    l.batch = bsz;
    l.queries = 1;
    l.context = 37;
    AttentionSpec a = l.attention_spec(0);
    a.seed = ++seed;
    add("attention.decode", "B" + std::to_string(bsz) + ",L37", bsz, verify_attention(b, a));
  }
  if (ls.attn.mla) {
    // The production latent row (DeepSeek-V3 / GLM-5.2: r 512 + rope 64, 128 heads,
    // softmax scale 1/sqrt(nope 128 + rope 64)), whatever the model's own dims: on the
    // CUDA backend (bf16) the tensor-core MLA kernel's 512-wide instantiation with two
    // 64-head groups, a partial last tile (100 = 3·32 + 4) and key splits.
    AttentionSpec a = l.attention_spec(0);
    a.batch = 2;
    a.context = 100;
    a.heads = 128;
    a.qk_dim = 576;
    a.v_dim = 512;
    a.scale = 1.0f / std::sqrt(192.0f);
    a.seed = ++seed;
    add("attention.decode", "MLA H128,r512+64,B2,L100", 2, verify_attention(b, a));
  }
  {
    l.batch = 1;
    l.queries = 19;
    l.context = 19;
    AttentionSpec a = l.attention_spec(0);
    a.seed = ++seed;
    add("attention.prefill", "P19", 19, verify_attention(b, a));
  }
  l.batch = 2;
  l.queries = 1;
  l.context = 23;
  if (!backend_has_op(b, "layer.decode")) return res;  // a backend without the layer op
  add("layer.decode", "B2,L23", 2, verify_layer(b, l, ++seed));
  l.batch = 1;
  l.queries = 7;
  l.context = 7;
  add("layer.prefill", "P7", 7, verify_layer(b, l, ++seed));
  return res;
}

}  // namespace moeprobe
