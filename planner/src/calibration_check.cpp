#include "moeplan/calibration_check.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace moeplan {

std::vector<std::string> calibration_doubts(const Calibration& cal, const Model& model) {
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
  if (!cal.model_id.empty() && cal.model_id != model.id)
    out.push_back(fmt::format(
        "measured for model '{}', not '{}': its op curves and decode step are that model's shapes",
        cal.model_id, model.id));
  return out;
}

}  // namespace moeplan
