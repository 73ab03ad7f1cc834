#include "moeplan/calibration_check.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace moeplan {

std::vector<std::string> calibration_doubts(const Calibration& cal, const Model& model) {
  std::vector<std::string> out;
  std::vector<double> spread;
  for (const auto& r : cal.rows)
    if (r.p50_s > 0) spread.push_back(r.p90_s / r.p50_s);
  if (!spread.empty()) {
    std::sort(spread.begin(), spread.end());
    const double median = spread[spread.size() / 2];
    const auto noisy = static_cast<std::size_t>(
        std::count_if(spread.begin(), spread.end(), [](double s) { return s > kNoisySpread; }));
    const double share = static_cast<double>(noisy) / static_cast<double>(spread.size());
    if (median > kMaxMedianSpread || share > kMaxNoisyShare)
      out.push_back(fmt::format(
          "too noisy to trust: median p90/p50 {:.2f} (limit {:.1f}), {} of {} rows above {:.0f}x "
          "(worst {:.1f}x); measure again on a quiet machine",
          median, kMaxMedianSpread, noisy, spread.size(), kNoisySpread, spread.back()));
  }
  if (!cal.model_id.empty() && cal.model_id != model.id)
    out.push_back(fmt::format(
        "measured for model '{}', not '{}': its op curves and decode step are that model's shapes",
        cal.model_id, model.id));
  return out;
}

}  // namespace moeplan
