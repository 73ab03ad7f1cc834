// Whether a calibration file can be trusted for the estimate it is applied
// to (issue #13): rows measured on a machine too noisy to trust, or a file
// measured for another model. `moeplan perf` refuses such a file unless
// --force-calibration, and then says so on every output.
#pragma once

#include <string>
#include <vector>

#include "moeplan/calibration.hpp"
#include "moeplan/catalog.hpp"

namespace moeplan {

// A row is noisy when its p90 exceeds kNoisySpread × its p50; the file is
// too noisy when its median spread exceeds kMaxMedianSpread or more than
// kMaxNoisyShare of its rows are noisy. (A quiet CPU run has a median near
// 1.1; a quick run on a machine shared by six builds measured 1.2 with 11% of
// rows above 3; the file in issue #13 had spreads near 100.)
inline constexpr double kNoisySpread = 3.0;
inline constexpr double kMaxMedianSpread = 2.0;
inline constexpr double kMaxNoisyShare = 0.34;

// Reasons not to trust `cal` for `model`; empty when there are none.
std::vector<std::string> calibration_doubts(const Calibration& cal, const Model& model);

}  // namespace moeplan
