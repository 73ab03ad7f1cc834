// Whether a calibration file can be trusted for the estimate it is applied
// to (issue #13): rows measured on a machine too noisy to trust. `moeplan
// perf` refuses such a file unless --force-calibration, and then says so on
// every output. A file measured for another model is not doubted: only its
// node-level terms apply (calibration_for), and the output says which.
#pragma once

#include <string>
#include <vector>

#include "moeplan/calibration.hpp"
#include "moeplan/calibration_quality.hpp"
#include "moeplan/catalog.hpp"

namespace moeplan {

// Thresholds and wording: calibration_quality.hpp (shared with the probe).

// Reasons not to trust `cal`; empty when there are none. The file's own
// quality.noisy reasons (written by the probe) are among them.
std::vector<std::string> calibration_doubts(const Calibration& cal);

// What a file measured for another model contributes to `model`'s estimate;
// empty when the file is `model`'s own (or names no model).
std::string calibration_model_note(const Calibration& cal, const Model& model);

}  // namespace moeplan
