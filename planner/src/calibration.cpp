#include "moeplan/calibration.hpp"

#include <algorithm>

#include "moeplan/errors.hpp"
#include "moeplan/json_read.hpp"

namespace moeplan {

namespace {

constexpr int kSupportedSchema = 1;

CalibrationRow read_row(const JsonView& v) {
  v.only_keys({"op",
               "shape",
               "dtype",
               "distribution",
               "tokens",
               "context",
               "p50_s",
               "p10_s",
               "p90_s",
               "samples",
               "bytes",
               "flops",
               "roofline_s",
               "util",
               "roofline_measured_s",
               "util_measured",
               "gb_s",
               "tflops",
               "experts_touched",
               "verified",
               "max_err"});
  CalibrationRow r;
  r.op = v.string("op");
  r.shape = v.string("shape");
  r.dtype = v.string("dtype");
  r.distribution = v.string("distribution");
  r.tokens = static_cast<int>(v.integer("tokens"));
  if (r.tokens < 0) v.fail_member("tokens", "must be >= 0");
  r.context = v.integer("context");
  r.p50_s = v.positive("p50_s");
  r.p10_s = v.positive("p10_s");
  r.p90_s = v.positive("p90_s");
  if (r.p10_s > r.p50_s || r.p50_s > r.p90_s) v.fail("expected p10_s <= p50_s <= p90_s");
  r.samples = static_cast<int>(v.positive_int("samples"));
  r.bytes = v.non_negative("bytes");
  r.flops = v.non_negative("flops");
  if (!v.at("roofline_s").is_null()) r.roofline_s = v.non_negative("roofline_s");
  if (!v.at("util").is_null()) r.util = v.non_negative("util");
  r.roofline_measured_s = v.non_negative("roofline_measured_s");
  r.util_measured = v.non_negative("util_measured");
  r.gb_s = v.non_negative("gb_s");
  r.tflops = v.non_negative("tflops");
  r.experts_touched =
      v.at("experts_touched").is_null() ? -1 : static_cast<int>(v.integer("experts_touched"));
  r.verified = v.at("verified").boolean();
  if (!r.verified) v.fail_member("verified", "an unverified row must not be in a calibration file");
  r.max_err = v.non_negative("max_err");
  return r;
}

// The probe's record of how trustworthy the run was (docs/probe.md). Only the
// verdict and its reasons are used; the measurements behind them are for people.
void read_quality(const JsonView& q, Calibration& c) {
  if (!q.is_object()) q.fail("expected an object");
  q.only_keys({"spread", "load_average", "clock_drops", "build", "noisy", "reasons"});
  c.has_quality = true;
  c.quality_noisy = q.at("noisy").boolean();
  for (const auto& r : q.array("reasons")) c.quality_reasons.push_back(r.string());
  if (c.quality_noisy && c.quality_reasons.empty())
    q.fail_member("reasons", "noisy is true but no reason is given");
  if (!c.quality_noisy && !c.quality_reasons.empty())
    q.fail_member("reasons", "reasons are given but noisy is false");
}

}  // namespace

struct CalibrationAccess {
  static Calibration read(const Json& j, const std::string& label);
};

Calibration CalibrationAccess::read(const Json& j, const std::string& label) {
  const JsonView root(j, label);
  if (!root.is_object()) root.fail("expected an object");
  root.only_keys({"schema", "schema_version", "created_utc", "probe", "device", "model", "config",
                  "rows", "fits", "decode_step", "quality"});
  if (root.string("schema") != "moeplan-calibration")
    root.fail_member("schema", "expected \"moeplan-calibration\"");
  Calibration c;
  c.file = label;
  c.schema_version = static_cast<int>(root.positive_int("schema_version"));
  if (c.schema_version > kSupportedSchema)
    root.fail_member("schema_version", "version " + std::to_string(c.schema_version) +
                                           " is newer than this moeplan reads (" +
                                           std::to_string(kSupportedSchema) + "); update moeplan");
  c.created_utc = root.string("created_utc");
  const JsonView probe = root.at("probe");
  c.probe_version = probe.string("version");
  c.git_sha = probe.string_or("git_sha", "");
  c.backend = probe.string("backend");
  c.build_warning = probe.string_or("build_warning", "");

  const JsonView d = root.at("device");
  c.device.name = d.string("name");
  c.device.kind = d.one_of("kind", {"cpu", "gpu", "unified"});
  c.device.catalog_id = d.string_or("catalog_id", "");
  c.device.host = d.string_or("host", "");
  c.device.driver = d.string_or("driver", "");
  c.device.cuda = d.string_or("cuda", "");
  c.device.simd = d.string_or("simd", "");
  c.device.memory_gb = d.non_negative("memory_gb");
  c.device.cores = static_cast<int>(d.integer("cores"));
  c.device.threads = static_cast<int>(d.integer_or("threads", 0));
  if (auto libs = d.get("libraries"))
    for (auto it = libs->raw().begin(); it != libs->raw().end(); ++it)
      c.device.libraries[it.key()] = libs->string(it.key());
  if (auto clk = d.get("clocks_mhz"))
    for (auto it = clk->raw().begin(); it != clk->raw().end(); ++it)
      c.device.clocks_mhz[it.key()] = clk->number(it.key());

  const JsonView m = root.at("model");
  c.model_id = m.string("id");
  c.model_layers = static_cast<int>(m.positive_int("layers"));
  c.dtype = root.at("config").string("dtype");

  for (const auto& r : root.array("rows")) c.rows.push_back(read_row(r));
  if (root.get("quality")) read_quality(root.at("quality"), c);

  const JsonView f = root.at("fits");
  c.bandwidth_gb_s_ = f.positive("bandwidth_gb_s");
  if (!f.at("bandwidth_fraction").is_null())
    c.bandwidth_fraction_ = f.positive("bandwidth_fraction");
  c.step_latency_s_ = f.non_negative("step_latency_s");
  c.effective_bandwidth_gb_s_ = f.non_negative("effective_bandwidth_gb_s");
  const JsonView pl = f.at("compute_plateau_tflops");
  if (!pl.is_object()) pl.fail("expected an object of dtype -> TFLOP/s");
  for (auto it = pl.raw().begin(); it != pl.raw().end(); ++it)
    c.plateau_[it.key()] = pl.non_negative(it.key());
  const JsonView eff = f.at("efficiency");
  if (!eff.is_object()) eff.fail("expected an object of op class -> curve");
  for (auto it = eff.raw().begin(); it != eff.raw().end(); ++it) {
    const JsonView cv = eff.at(it.key());
    EfficiencyCurve curve;
    double last = -1;
    for (const auto& p : cv.array("points")) {
      const double n = p.non_negative("tokens");
      if (n <= last) p.fail_member("tokens", "points must be in ascending token order");
      last = n;
      curve.points.emplace_back(n, p.non_negative("efficiency"));
    }
    if (curve.points.empty()) cv.fail_member("points", "expected at least one point");
    const JsonView fit = cv.at("fit");
    curve.e_max = fit.non_negative("e_max");
    curve.n_half = fit.non_negative("n_half");
    curve.rms = fit.non_negative("rms");
    c.curves[it.key()] = curve;
  }
  double last = -1;
  for (const auto& s : root.array("decode_step")) {
    DecodeStepTime t;
    t.tokens = static_cast<int>(s.positive_int("tokens"));
    if (t.tokens <= last) s.fail_member("tokens", "entries must be in ascending token order");
    last = t.tokens;
    t.context = s.integer("context");
    t.layer_s = s.positive("layer_s");
    t.dense_layer_s = s.non_negative("dense_layer_s");
    t.stack_s = s.positive("stack_s");
    c.decode_steps.push_back(t);
  }
  return c;
}

double interpolate_clamped(const std::vector<std::pair<double, double>>& pts, double x) {
  if (pts.empty()) throw Error("interpolation over no points");
  if (x <= pts.front().first) return pts.front().second;
  if (x >= pts.back().first) return pts.back().second;
  auto hi =
      std::lower_bound(pts.begin(), pts.end(), x,
                       [](const std::pair<double, double>& p, double v) { return p.first < v; });
  if (hi->first == x) return hi->second;
  auto lo = hi - 1;
  const double f = (x - lo->first) / (hi->first - lo->first);
  return lo->second + f * (hi->second - lo->second);
}

std::optional<double> Calibration::compute_plateau_tflops(const std::string& storage_dtype) const {
  auto it = plateau_.find(storage_dtype);
  if (it == plateau_.end()) return std::nullopt;
  return it->second;
}

double Calibration::efficiency(const std::string& op_class, double tokens) const {
  auto it = curves.find(op_class);
  if (it == curves.end()) {
    std::vector<std::string> known;
    for (const auto& [k, v] : curves) known.push_back(k);
    throw UnknownIdError("op class in calibration " + file, op_class, known);
  }
  return interpolate_clamped(it->second.points, tokens);
}

double Calibration::decode_step_s(double tokens) const {
  if (decode_steps.empty())
    throw Error(file + ": the calibration has no decode-step (layer) measurements");
  std::vector<std::pair<double, double>> pts;
  for (const auto& s : decode_steps) pts.emplace_back(s.tokens, s.stack_s);
  return interpolate_clamped(pts, tokens);
}

Calibration load_calibration(const std::string& path) {
  return CalibrationAccess::read(parse_json_file(path), path);
}

Calibration parse_calibration(const std::string& text, const std::string& file_label) {
  return CalibrationAccess::read(parse_json_text(text, file_label), file_label);
}

}  // namespace moeplan
