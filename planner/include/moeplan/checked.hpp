// Counts computed from doubles without silent overflow: a ratio that needs more
// whole units than a planner can mean (or is not finite) is an error naming
// what was counted, instead of a cast that wraps (issue #13: 1e15 requests a
// day once became "1 node").
#pragma once

#include <cmath>
#include <string>

#include <fmt/format.h>

#include "moeplan/errors.hpp"

namespace moeplan {

// Largest node or replica count the planner reports: a fleet larger than
// this is outside what the cost and layout models were built for.
inline constexpr double kMaxUnits = 100000;

// ceil(x) as an int in [1, max]; throws Error when x is not finite or above max.
inline int checked_ceil_count(double x, const std::string& what, double max = kMaxUnits) {
  const double c = std::ceil(x);
  if (!std::isfinite(c) || c > max)
    throw Error(
        fmt::format("{} would be {:.3g}, beyond the planner's range of {:.0f}: check the "
                    "demand (requests_per_day, output_tokens_per_s)",
                    what, x, max));
  return c < 1 ? 1 : static_cast<int>(c);
}

}  // namespace moeplan
