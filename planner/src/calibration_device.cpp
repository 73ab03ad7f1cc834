// Calibration adapter: the probe's file (moeplan/calibration.hpp) → the device layer of the
// performance model (docs/performance.md §Efficiencies, "With a calibration"; docs/probe.md,
// "What the planner takes from the probe").
//
// Each kernel term is built from the file's measured rows as Σ roofline / Σ time per key (the
// probe's own roofline: its triad bandwidth and GEMM plateau), and used only when the class
// reaches the quality floor (calibration_quality.hpp) at its largest measured point: a class
// below it timed the probe's kernel, not the device, and would make every estimate built on it
// too slow (issue #11).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>

#include "moeplan/calibration.hpp"
#include "moeplan/calibration_quality.hpp"
#include "moeplan/errors.hpp"
#include "moeplan/performance.hpp"

namespace moeplan {

namespace {

using Points = std::vector<std::pair<double, double>>;

// Measured efficiency of one kernel class by its key, with the bound of its largest point.
struct ClassCurve {
  Points points;  // (key, Σ roofline / Σ time), key ascending
  bool compute_bound = false;
};

std::string row_path(std::size_t i, const char* member) {
  return fmt::format("rows[{}].{}", i, member);
}

// Σ roofline / Σ time per key over the rows of `op`; `key_of` returns the key of a row (it
// throws InputError for a row it cannot key). Empty when the file has no such rows.
template <typename KeyOf>
ClassCurve class_curve(const Calibration& c, const std::string& op, KeyOf key_of) {
  struct Acc {
    double roof = 0, time = 0, mem = 0, comp = 0;
  };
  std::map<double, Acc> acc;
  for (std::size_t i = 0; i < c.rows.size(); ++i) {
    const CalibrationRow& r = c.rows[i];
    if (r.op != op) continue;
    // The roofline against the file's own fits, as the probe computes its efficiency curves
    // (a row's roofline_measured_s is written before the plateau is fitted: bytes only).
    const auto plateau = c.compute_plateau_tflops(r.dtype);
    const double mem = r.bytes / (c.bandwidth_gb_s() * 1e9);
    const double comp = plateau && *plateau > 0 ? r.flops / (*plateau * 1e12) : 0.0;
    if (mem <= 0 && comp <= 0)
      throw InputError(c.file, row_path(i, "bytes"),
                       "a " + op +
                           " row counts no bytes (and no FLOPs at a measured plateau): it "
                           "has no roofline to be measured against");
    Acc& a = acc[key_of(r, i)];
    a.roof += std::max(mem, comp);
    a.time += r.p50_s;
    a.mem += mem;
    a.comp += comp;
  }
  ClassCurve out;
  for (const auto& [key, a] : acc) out.points.emplace_back(key, a.roof / a.time);
  if (!acc.empty()) out.compute_bound = acc.rbegin()->second.comp > acc.rbegin()->second.mem;
  return out;
}

// Top-k of a MoE shape "moe:EXPxFFNxHIDDEN,kK" (the probe's shape key).
int top_k_of(const Calibration& c, const CalibrationRow& r, std::size_t i) {
  const auto pos = r.shape.rfind(",k");
  const int k = pos == std::string::npos ? 0 : std::atoi(r.shape.c_str() + pos + 2);
  if (k <= 0)
    throw InputError(c.file, row_path(i, "shape"),
                     "expected a MoE shape ending in \",k<top-k>\", found \"" + r.shape + "\"");
  return k;
}

// Decides one kernel term: used when measured and at or above the floor at its largest point.
CalibrationTerm decide(const std::string& term, const std::string& rows, const ClassCurve& cc,
                       const std::string& key_name, const std::string& file) {
  CalibrationTerm t{term, rows, false, std::nullopt, ""};
  if (cc.points.empty()) {
    t.note = "not measured (no " + rows + " in the file); default kept";
    return t;
  }
  const auto& [key, eff] = cc.points.back();
  t.value = eff;
  const std::string where = key == std::floor(key) ? fmt::format("{} = {:.0f}", key_name, key)
                                                   : fmt::format("{} = {:.2f}", key_name, key);
  const double floor = cc.compute_bound ? kComputeBoundFloor : kMemoryBoundFloor;
  if (eff < floor) {
    t.note = below_floor_reason(eff, cc.compute_bound, where) + "; default kept";
    return t;
  }
  t.used = true;
  t.note =
      fmt::format("calibration {}: {:.3f} of the measured {} at {} ({} points)", file, eff,
                  cc.compute_bound ? "GEMM plateau" : "triad bandwidth", where, cc.points.size());
  return t;
}

struct LineFit {
  double intercept = 0, slope = 0;
  bool ok = false;
};
// Least squares t = intercept + slope · bytes; needs two distinct byte counts.
LineFit fit_time_vs_bytes(const Points& pts) {
  LineFit f;
  if (pts.size() < 2) return f;
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  const double n = static_cast<double>(pts.size());
  for (const auto& [x, y] : pts) {
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  }
  const double den = n * sxx - sx * sx;
  if (den <= 0) return f;
  f.slope = (n * sxy - sx * sy) / den;
  f.intercept = (sy - f.slope * sx) / n;
  f.ok = true;
  return f;
}

// Batch sizes whose layer time sets the per-layer fixed cost (the probe's latency fit uses the
// same range): at 1–4 tokens a decoder layer reads its weights once and little else.
constexpr int kOverheadMaxTokens = 4;

// Per-layer launch/sync overhead from the layer.decode rows (MoE layers preferred).
CalibrationTerm layer_overhead(const Calibration& c, DeviceCalibration& d) {
  const std::string rows = "layer.decode rows (batch 1–4)";
  const bool moe = std::any_of(c.rows.begin(), c.rows.end(), [](const CalibrationRow& r) {
    return r.op == "layer.decode" && r.shape.rfind("moe_layer:", 0) == 0;
  });
  const std::string prefix = moe ? "moe_layer:" : "";
  Calibration only = c;  // the layer kind the fit uses
  only.rows.clear();
  Points pts;
  for (std::size_t i = 0; i < c.rows.size(); ++i) {
    const CalibrationRow& r = c.rows[i];
    if (r.op != "layer.decode" || r.shape.rfind(prefix, 0) != 0) continue;
    if (r.bytes <= 0)
      throw InputError(c.file, row_path(i, "bytes"), "a layer.decode row must count its bytes");
    only.rows.push_back(r);
    if (r.tokens <= kOverheadMaxTokens) pts.emplace_back(r.bytes, r.p50_s);
  }
  ClassCurve cc = class_curve(only, "layer.decode", [](const CalibrationRow& r, std::size_t) {
    return static_cast<double>(r.tokens);
  });
  // Judged where a fixed cost weighs most, at the smallest batch: a layer that reads its bytes
  // there at under the floor is slow because of the probe's kernels or host round trips (e.g.
  // the per-expert cuBLASLt path's count copy: ~1.4 ms a glm-5.2 layer on an H200), which the
  // intercept would otherwise charge to every engine as launch overhead.
  if (!cc.points.empty()) cc.points.erase(cc.points.begin() + 1, cc.points.end());
  CalibrationTerm t = decide("per-layer launch/sync overhead", rows, cc, "batch", c.file);
  t.value.reset();
  if (!t.used) return t;
  const LineFit f = fit_time_vs_bytes(pts);
  double t_min = 0;  // the shortest measured layer time: no fixed cost can exceed it
  for (std::size_t i = 0; i < pts.size(); ++i)
    t_min = i == 0 ? pts[i].second : std::min(t_min, pts[i].second);
  if (!f.ok || f.slope <= 0 || f.intercept <= 0 || f.intercept >= t_min) {
    t.used = false;
    t.note = fmt::format(
        "not used: {} layer.decode rows at batch 1–{} give no positive intercept of time against "
        "bytes below the shortest layer time; default kept",
        pts.size(), kOverheadMaxTokens);
    return t;
  }
  t.value = f.intercept * 1e6;
  d.layer_overhead_us = f.intercept * 1e6;
  d.layer_overhead_moe = moe;
  t.note = fmt::format("calibration {}: intercept {:.1f} µs per {} layer over {} rows{}", c.file,
                       f.intercept * 1e6, moe ? "MoE" : "dense", pts.size(),
                       moe ? " (replaces layer + MoE layer overhead)" : "");
  return t;
}

}  // namespace

DeviceCalibration device_calibration(const Calibration& cal) {
  auto c = std::make_shared<const Calibration>(cal);
  DeviceCalibration d;
  d.file = c->file;
  d.device_id = !c->device.catalog_id.empty() ? c->device.catalog_id : c->device.name;
  d.model_id = c->model_id;
  if (d.device_id.empty()) throw Error("calibration " + c->file + " names no device");
  d.bandwidth_gb_s = c->bandwidth_gb_s();
  // A CPU backend computes bf16 weights in fp32 after conversion, so an fp32 plateau is the
  // rate 16-bit weights run at when no bf16 plateau was measured.
  d.bf16_tflops =
      c->compute_plateau_tflops("bf16").value_or(c->compute_plateau_tflops("fp32").value_or(0.0));
  d.fp8_tflops = c->compute_plateau_tflops("fp8").value_or(0.0);
  d.fp4_tflops =
      c->compute_plateau_tflops("fp4").value_or(c->compute_plateau_tflops("nvfp4").value_or(0.0));
  const std::string plateau_dtype = c->compute_plateau_tflops("bf16") ? "bf16" : "fp32";
  for (const auto& r : c->rows)
    if (r.op == "gemm" && r.dtype == plateau_dtype && r.bytes > 0)
      d.gemm_max_intensity = std::max(d.gemm_max_intensity, r.flops / r.bytes);
  d.memory_gb = c->device.memory_gb;
  d.kind = c->device.kind;
  d.terms.push_back({"bandwidth", "triad (fits.bandwidth_gb_s)", d.bandwidth_gb_s > 0,
                     d.bandwidth_gb_s, "GB/s; replaces datasheet × derating"});
  d.terms.push_back({"GEMM plateau", "gemm rows (fits.compute_plateau_tflops)", d.bf16_tflops > 0,
                     d.bf16_tflops, "TFLOP/s (bf16, else fp32); replaces datasheet × derating"});

  // Kernel terms (docs/probe.md): each keyed the way the step model asks for it.
  const ClassCurve gemm = class_curve(
      *c, "gemm", [](const CalibrationRow& r, std::size_t) { return double(r.tokens); });
  const ClassCurve attention =
      class_curve(*c, "attention.decode", [&](const CalibrationRow& r, std::size_t i) {
        if (r.tokens <= 0 || r.context <= 0)
          throw InputError(c->file, row_path(i, "context"),
                           "an attention.decode row needs tokens > 0 and context > 0 (it is keyed "
                           "by batch × context)");
        return double(r.tokens) * double(r.context);
      });
  const ClassCurve experts =
      class_curve(*c, "moe.experts", [&](const CalibrationRow& r, std::size_t i) {
        if (r.experts_touched <= 0)
          throw InputError(c->file, row_path(i, "experts_touched"),
                           "a moe.experts row needs experts_touched > 0 (it is keyed by tokens "
                           "per expert)");
        if (r.tokens <= 0) throw InputError(c->file, row_path(i, "tokens"), "must be > 0");
        return double(r.tokens) * top_k_of(*c, r, i) / r.experts_touched;
      });
  const CalibrationTerm t_gemm = decide("GEMM efficiency by M", "gemm rows", gemm, "M", c->file);
  const CalibrationTerm t_attn = decide("attention efficiency by batch × context",
                                        "attention.decode rows", attention, "positions", c->file);
  const CalibrationTerm t_moe = decide("MoE efficiency by tokens per expert", "moe.experts rows",
                                       experts, "tokens per expert", c->file);
  d.terms.push_back(t_gemm);
  d.terms.push_back(t_attn);
  d.terms.push_back(t_moe);
  d.terms.push_back(layer_overhead(*c, d));
  // Attention, MoE and the per-layer overhead follow the model's head, expert and layer sizes.
  for (std::size_t i = d.terms.size() - 3; i < d.terms.size(); ++i) d.terms[i].shape_keyed = true;

  auto used = std::make_shared<std::map<std::string, Points>>();
  if (t_gemm.used) (*used)["gemm"] = gemm.points;
  if (t_attn.used) (*used)["attention"] = attention.points;
  if (t_moe.used) (*used)["moe_experts"] = experts.points;
  d.curve = [used](const std::string& op, double key) -> std::optional<double> {
    const auto it = used->find(op);
    if (it == used->end()) return std::nullopt;
    return interpolate_clamped(it->second, key);
  };
  return d;
}

namespace {

// The shape-keyed curves kept out for another model than the file's (calibration_for).
DeviceCalibration for_model(const DeviceCalibration& cal, const std::string& model_id) {
  if (cal.model_id.empty() || cal.model_id == model_id) return cal;
  DeviceCalibration out = cal;
  const auto inner = cal.curve;
  out.curve = [inner](const std::string& op, double key) -> std::optional<double> {
    if (!inner || op == "moe_experts" || op == "attention") return std::nullopt;
    return inner(op, key);
  };
  out.layer_overhead_us = 0;
  out.layer_overhead_moe = false;
  for (auto& t : out.terms) {
    if (!t.shape_keyed || !t.used) continue;
    t.used = false;
    t.note = fmt::format(
        "not used: measured on {}'s shapes, not {}'s (kernel efficiency depends on expert, head "
        "and layer sizes; the device layer and the GEMM curve carry over)",
        cal.model_id, model_id);
  }
  return out;
}

// The GEMM plateau dropped when the file's GEMMs never reached the compute side (calibration_for).
DeviceCalibration for_device(const DeviceCalibration& cal, const Device& device) {
  const double peak = device.peak_tflops_for("bf16");
  if (cal.bf16_tflops <= 0 || cal.gemm_max_intensity <= 0 || peak <= 0 ||
      device.memory_bandwidth_gb_s <= 0)
    return cal;
  const double ridge = peak * 1e12 / (device.memory_bandwidth_gb_s * 1e9);
  if (cal.gemm_max_intensity >= 0.5 * ridge) return cal;
  DeviceCalibration out = cal;
  out.bf16_tflops = 0;
  for (auto& t : out.terms) {
    if (t.term != "GEMM plateau") continue;
    t.used = false;
    t.note = fmt::format(
        "not used: its most intense GEMM does {:.0f} FLOP per byte, under half the ridge point of "
        "{} ({:.0f} = {:.0f} TFLOP/s bf16 / {:.0f} GB/s), so its rate was the memory's, not a "
        "compute plateau; the default kept (run the probe with more tokens, e.g. 256)",
        cal.gemm_max_intensity, device.id, ridge, peak, device.memory_bandwidth_gb_s);
  }
  return out;
}

}  // namespace

bool calibration_kind_fits(const std::string& measured_kind, DeviceKind catalog) {
  return (measured_kind == "cpu") == (catalog == DeviceKind::cpu);
}

DeviceCalibration calibration_for(const DeviceCalibration& cal, const std::string& model_id,
                                  const Device* device) {
  // CPU timings filed under a GPU (or the reverse) would replace its bandwidth and peaks: a
  // file from `moeprobe run --backend cpu --device h200`, which older probes wrote, gave the
  // H200 0.002 of its bandwidth (audit 2026-11-27, 2.9).
  if (device && !cal.kind.empty() && !calibration_kind_fits(cal.kind, device->kind))
    throw Error(fmt::format(
        "calibration {}: measured on a {} backend, but '{}' is a {} device in the catalog; "
        "calibrate it with the matching moeprobe backend",
        cal.file, cal.kind, device->id, device_kind_name(device->kind)));
  const DeviceCalibration judged = model_id.empty() ? cal : for_model(cal, model_id);
  return device ? for_device(judged, *device) : judged;
}

Device device_from_calibration(const DeviceCalibration& c) {
  Device d;
  d.id = c.device_id;
  d.name = c.device_id + " (from calibration)";
  d.vendor = "unknown";
  d.kind = c.kind == "cpu"       ? DeviceKind::cpu
           : c.kind == "unified" ? DeviceKind::unified
                                 : DeviceKind::gpu;
  d.memory_gb = c.memory_gb;
  d.memory_bandwidth_gb_s = c.bandwidth_gb_s;
  if (c.bf16_tflops > 0) d.peak_tflops["bf16"] = c.bf16_tflops;
  if (c.fp8_tflops > 0) {
    d.peak_tflops["fp8"] = c.fp8_tflops;
    d.hw_formats.push_back("fp8");
  }
  if (c.fp4_tflops > 0) {
    d.peak_tflops["fp4"] = c.fp4_tflops;
    d.hw_formats.push_back("fp4");
  }
  d.nvlink_gb_s = c.link_gb_s;
  d.prov.source = "calibration " + c.file;
  return d;
}

}  // namespace moeplan
