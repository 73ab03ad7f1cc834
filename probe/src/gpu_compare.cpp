// moeprobe compare: probe rows against production figures (docs/probe.md,
// "Performance targets").
#include "moeprobe/gpu_compare.hpp"

#include <cstdio>
#include <map>
#include <set>

namespace moeprobe {

namespace {

using moeplan::JsonView;

// The targets of issue #11 / docs/probe.md. Kept here, one place, so the
// table and its test agree.
constexpr double kAttentionRatio = 1.3;       // decode attention within 1.3x of production
constexpr double kExpertsRatio = 1.1;         // experts within 1.1x of the grouped GEMM
constexpr double kRouterMaxUs = 30.0;         // router <= 30 us …
constexpr int kRouterMaxTokens = 256;         // … at every batch up to 256
constexpr double kTriadFraction = 0.70;       // attention / decode experts vs the triad
constexpr long long kAttnPositions = 65536;   // … once batch x context >= 64k positions
constexpr int kExpertsDecodeTokens = 16;      // … decode batches <= 16
constexpr double kLayerFloorFraction = 0.60;  // MoE decode layer at batch 1 vs its byte floor

struct Rule {
  const char* kind;   // anchor kind
  const char* op;     // probe op
  bool model_prefix;  // anchor shape "MODEL:rest" -> probe shape "moe:rest" in MODEL's file
  GoalKind goal;
  double value;
  const char* target;
};
constexpr Rule kRules[] = {
    {"attn.decode.sdpa", "attention.decode", false, GoalKind::ratio_at_most, kAttentionRatio,
     "attention decode vs FlashAttention"},
    {"attn.decode.mla-bmm", "attention.decode", false, GoalKind::ratio_at_most, kAttentionRatio,
     "MLA decode vs batched GEMMs"},
    {"moe.experts.grouped_mm", "moe.experts", true, GoalKind::ratio_at_most, kExpertsRatio,
     "experts vs grouped GEMM"},
    {"moe.router.torch", "moe.router", true, GoalKind::time_at_most_us, kRouterMaxUs,
     "router (gate GEMM + top-k)"},
};

std::string status_of(GoalKind g, double v, double goal) {
  const bool ok = g == GoalKind::fraction_at_least ? v >= goal : v <= goal;
  return ok ? "pass" : "FAIL";
}

const CalRow* find_row(const std::vector<CalFile>& cals, const std::string& model,
                       const std::string& op, const std::string& shape, int tokens,
                       long long context) {
  for (const auto& c : cals) {
    if (!model.empty() && c.model != model) continue;
    for (const auto& r : c.rows)
      if (r.op == op && r.shape == shape && r.tokens == tokens && r.context == context) return &r;
  }
  return nullptr;
}

void count(Comparison& out, const CompareRow& r) {
  if (r.status == "pass")
    ++out.passed;
  else if (r.status == "FAIL")
    ++out.failed;
  else
    ++out.missing;
}

void anchor_rows(const std::vector<CalFile>& cals, const std::vector<AnchorRow>& anchor,
                 Comparison& out) {
  std::set<std::string> skipped;
  for (const auto& a : anchor) {
    const Rule* rule = nullptr;
    for (const auto& r : kRules)
      if (a.kind == r.kind) rule = &r;
    if (!rule) {
      skipped.insert(a.kind);
      continue;
    }
    if (rule->goal == GoalKind::time_at_most_us && a.tokens > kRouterMaxTokens) continue;
    CompareRow row;
    row.target = rule->target;
    row.op = rule->op;
    row.tokens = a.tokens;
    row.context = a.context;
    row.goal = rule->goal;
    row.goal_value = rule->value;
    row.production_us = a.p50_us;
    std::string model;
    row.shape = a.shape;
    if (rule->model_prefix) {
      const auto colon = a.shape.find(':');
      model = colon == std::string::npos ? std::string() : a.shape.substr(0, colon);
      row.shape = "moe:" + (colon == std::string::npos ? a.shape : a.shape.substr(colon + 1));
    }
    const CalRow* c = find_row(cals, model, row.op, row.shape, a.tokens, a.context);
    if (!c) {
      row.status = "not measured";
      row.note = model.empty() ? "no calibration row at this point"
                               : "no " + model + " calibration row at this point";
    } else {
      row.probe_us = c->p50_s * 1e6;
      const double ratio = *row.probe_us / a.p50_us;
      row.value = rule->goal == GoalKind::time_at_most_us ? *row.probe_us : ratio;
      row.status = status_of(rule->goal, *row.value, rule->value);
      if (rule->goal == GoalKind::time_at_most_us) {
        char buf[64];
        std::snprintf(buf, sizeof(buf), "%.2fx production", ratio);
        row.note = buf;
      }
    }
    if (!model.empty()) row.shape = model + " " + row.shape;
    out.rows.push_back(row);
  }
  out.skipped_kinds.assign(skipped.begin(), skipped.end());
}

// Targets that need no production figure: fractions of the probe's own triad
// (row GB/s over the op's counted bytes) and of the layer's byte floor.
void own_rows(const std::vector<CalFile>& cals, Comparison& out) {
  for (const auto& c : cals)
    for (const auto& r : c.rows) {
      CompareRow row;
      row.op = r.op;
      row.shape = c.model + " " + r.shape;
      row.tokens = r.tokens;
      row.context = r.context;
      row.probe_us = r.p50_s * 1e6;
      row.goal = GoalKind::fraction_at_least;
      if (r.op == "attention.decode" &&
          static_cast<long long>(r.tokens) * r.context >= kAttnPositions) {
        row.target = "attention decode vs triad";
        row.goal_value = kTriadFraction;
      } else if (r.op == "moe.experts" && r.tokens <= kExpertsDecodeTokens) {
        row.target = "decode experts vs triad";
        row.goal_value = kTriadFraction;
      } else if (r.op == "layer.decode" && r.tokens == 1 && r.shape.rfind("moe_layer:", 0) == 0) {
        row.target = "MoE decode layer vs byte floor";
        row.goal_value = kLayerFloorFraction;
        row.value = r.util_measured;
        row.status = status_of(row.goal, *row.value, row.goal_value);
        out.rows.push_back(row);
        continue;
      } else {
        continue;
      }
      if (c.bandwidth_gb_s > 0) {
        row.value = r.gb_s / c.bandwidth_gb_s;
        row.status = status_of(row.goal, *row.value, row.goal_value);
      } else {
        row.status = "not measured";
        row.note = "no triad bandwidth in the calibration's fits";
      }
      out.rows.push_back(row);
    }
}

}  // namespace

CalFile read_cal_file(const moeplan::Json& doc, const std::string& file) {
  const JsonView v(doc, file);
  if (!v.is_object()) v.fail("expected a calibration document (a JSON object)");
  if (v.string_or("schema", "") != "moeplan-calibration")
    v.fail_member("schema", "expected \"moeplan-calibration\"");
  CalFile c;
  c.file = file;
  c.model = v.at("model").string("id");
  if (const auto fits = v.get("fits"))
    c.bandwidth_gb_s = fits->number_opt("bandwidth_gb_s").value_or(0.0);
  for (const auto& r : v.array("rows")) {
    CalRow row;
    row.op = r.string("op");
    row.shape = r.string("shape");
    row.tokens = static_cast<int>(r.integer("tokens"));
    row.context = r.integer("context");
    row.p50_s = r.positive("p50_s");
    row.gb_s = r.number_or("gb_s", 0.0);
    row.util_measured = r.number_or("util_measured", 0.0);
    c.rows.push_back(row);
  }
  return c;
}

std::vector<AnchorRow> read_anchor(const moeplan::Json& doc, const std::string& file) {
  const JsonView v(doc, file);
  if (!v.is_object()) v.fail("expected an anchor document (a JSON object with \"rows\")");
  std::vector<AnchorRow> out;
  for (const auto& r : v.array("rows")) {
    AnchorRow a;
    a.kind = r.string("kind");
    a.shape = r.string("shape");
    a.tokens = static_cast<int>(r.integer("tokens"));
    a.context = r.integer("context");
    a.p50_us = r.positive("p50_us");
    out.push_back(a);
  }
  if (out.empty()) v.fail_member("rows", "no rows to compare against");
  return out;
}

std::string goal_text(const CompareRow& r) {
  char buf[64];
  switch (r.goal) {
    case GoalKind::ratio_at_most:
      std::snprintf(buf, sizeof(buf), "<= %.2gx production", r.goal_value);
      break;
    case GoalKind::time_at_most_us:
      std::snprintf(buf, sizeof(buf), "<= %.0f us", r.goal_value);
      break;
    case GoalKind::fraction_at_least:
      std::snprintf(buf, sizeof(buf), ">= %.0f%% of %s", r.goal_value * 100,
                    r.op == "layer.decode" ? "byte floor" : "triad");
      break;
  }
  return buf;
}

Comparison compare_with_anchor(const std::vector<CalFile>& cals,
                               const std::vector<AnchorRow>& anchor) {
  Comparison out;
  anchor_rows(cals, anchor, out);
  own_rows(cals, out);
  for (const auto& r : out.rows) count(out, r);
  return out;
}

}  // namespace moeprobe
