// Calibration adapter: the probe's file (moeplan/calibration.hpp) → the device layer of the
// performance model (docs/performance.md §Efficiencies, "With a calibration").
#include <memory>

#include "moeplan/calibration.hpp"
#include "moeplan/errors.hpp"
#include "moeplan/performance.hpp"

namespace moeplan {

DeviceCalibration device_calibration(const Calibration& cal) {
  auto c = std::make_shared<const Calibration>(cal);
  DeviceCalibration d;
  d.file = c->file;
  d.device_id = !c->device.catalog_id.empty() ? c->device.catalog_id : c->device.name;
  if (d.device_id.empty()) throw Error("calibration " + c->file + " names no device");
  d.bandwidth_gb_s = c->bandwidth_gb_s();
  // A CPU backend computes bf16 weights in fp32 after conversion, so an fp32 plateau is the
  // rate 16-bit weights run at when no bf16 plateau was measured.
  d.bf16_tflops =
      c->compute_plateau_tflops("bf16").value_or(c->compute_plateau_tflops("fp32").value_or(0.0));
  d.fp8_tflops = c->compute_plateau_tflops("fp8").value_or(0.0);
  d.fp4_tflops =
      c->compute_plateau_tflops("fp4").value_or(c->compute_plateau_tflops("nvfp4").value_or(0.0));
  d.memory_gb = c->device.memory_gb;
  d.kind = c->device.kind;
  // Op classes of the performance model → the probe's measured classes.
  d.curve = [c](const std::string& op, double tokens) -> std::optional<double> {
    const char* cls = op == "gemm" ? "gemm" : op == "attention" ? "attention_decode" : nullptr;
    if (!cls || !c->has_curve(cls)) return std::nullopt;
    return c->efficiency(cls, tokens);
  };
  return d;
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
