// Reading the small texts of flags and CSV cells: a whole string as one finite number, and the
// `key=value` settings of texts like "tp=2 pp=2", "mtp tokens=3" or "once rate=10".
#pragma once

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>

namespace moeplan {

// The whole of `s` as one finite number; nullopt for an empty string, trailing text, an
// overflow, NaN or infinity.
inline std::optional<double> parse_finite(const std::string& s) {
  errno = 0;
  char* end = nullptr;
  const double d = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || errno == ERANGE || !std::isfinite(d))
    return std::nullopt;
  return d;
}

// "key=value" split at the first '='; nullopt when the token has none.
inline std::optional<std::pair<std::string, std::string>> split_setting(const std::string& tok) {
  const auto eq = tok.find('=');
  if (eq == std::string::npos) return std::nullopt;
  return std::make_pair(tok.substr(0, eq), tok.substr(eq + 1));
}

}  // namespace moeplan
