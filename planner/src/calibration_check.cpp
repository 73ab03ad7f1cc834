#include "moeplan/calibration_check.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace moeplan {

std::vector<std::string> calibration_doubts(const Calibration& cal) {
  std::vector<std::string> out;
  std::vector<double> spread;
  for (const auto& r : cal.rows)
    if (r.p50_s > 0) spread.push_back(r.p90_s / r.p50_s);
  const SpreadSummary sum = summarize_spreads(std::move(spread));
  if (sum.too_noisy()) out.push_back(sum.reason());
  // What the probe saw while measuring (load average, its own spread verdict);
  // the spread reason is the same text as the one above and is listed once.
  for (const auto& why : cal.quality_reasons)
    if (std::find(out.begin(), out.end(), why) == out.end()) out.push_back(why);
  return out;
}

std::string calibration_model_note(const Calibration& cal, const Model& model) {
  if (cal.model_id.empty() || cal.model_id == model.id) return "";
  return fmt::format(
      "measured for model '{}', applied to '{}': the device layer (bandwidth, GEMM plateau) and "
      "the GEMM curve are the node's and apply; the attention and MoE curves and the per-layer "
      "overhead follow {}'s shapes and do not",
      cal.model_id, model.id, cal.model_id);
}

}  // namespace moeplan
