// Error policy: libraries throw moeplan::Error (or a subclass) carrying the
// location first ("file: /json/path: problem"), main() catches once, prints,
// and exits non-zero. Tests check the message text.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace moeplan {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A check the user asked for failed (a build that does not fit where an
// estimate was asked for, a verification): exit 3.
class CheckFailed : public Error {
 public:
  using Error::Error;
};

// A backend or service the command needs is not available: exit 4.
class Unavailable : public Error {
 public:
  using Error::Error;
};

// Bad input data: catalog, scenario or calibration file content.
class InputError : public Error {
 public:
  InputError(std::string file, std::string json_path, std::string problem);
  const std::string& file() const { return file_; }
  const std::string& json_path() const { return json_path_; }
  const std::string& problem() const { return problem_; }

 private:
  std::string file_, json_path_, problem_;
};

// An id that is not in a catalog; the message suggests the closest ids.
class UnknownIdError : public Error {
 public:
  UnknownIdError(const std::string& what, const std::string& id,
                 const std::vector<std::string>& known);
};

// The operating system's reason for the call that just failed (strerror of errno), or that of
// `fallback` when the call left errno unset, as a C++ stream may. Set errno = 0 before the call.
std::string os_reason(int fallback);

// Levenshtein distance, for "did you mean …?".
std::size_t edit_distance(const std::string& a, const std::string& b);

// Up to `max` known ids closest to `id` (distance ≤ max(2, len/3)), best first.
std::vector<std::string> closest_ids(const std::string& id, const std::vector<std::string>& known,
                                     std::size_t max = 3);

}  // namespace moeplan
