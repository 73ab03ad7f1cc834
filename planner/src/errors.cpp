#include "moeplan/errors.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <numeric>

namespace moeplan {

InputError::InputError(std::string file, std::string json_path, std::string problem)
    : Error(file + ": " + (json_path.empty() ? std::string("/") : json_path) + ": " + problem),
      file_(std::move(file)),
      json_path_(std::move(json_path)),
      problem_(std::move(problem)) {}

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  std::iota(prev.begin(), prev.end(), 0);
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::vector<std::string> closest_ids(const std::string& id, const std::vector<std::string>& known,
                                     std::size_t max) {
  std::vector<std::pair<std::size_t, std::string>> scored;
  const std::size_t limit = std::max<std::size_t>(2, id.size() / 3);
  for (const auto& k : known) {
    std::size_t d = edit_distance(id, k);
    // A prefix or substring match is a strong hint even when the distance is large
    // ("glm" -> "glm-5.2").
    if (k.find(id) != std::string::npos || id.find(k) != std::string::npos) d = std::min(d, limit);
    if (d <= limit) scored.emplace_back(d, k);
  }
  std::stable_sort(scored.begin(), scored.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  std::vector<std::string> out;
  for (std::size_t i = 0; i < scored.size() && i < max; ++i) out.push_back(scored[i].second);
  return out;
}

static std::string unknown_message(const std::string& what, const std::string& id,
                                   const std::vector<std::string>& known) {
  std::string msg = "unknown " + what + " '" + id + "'";
  const auto near = closest_ids(id, known);
  if (!near.empty()) {
    msg += ", did you mean ";
    for (std::size_t i = 0; i < near.size(); ++i) {
      if (i) msg += i + 1 == near.size() ? " or " : ", ";
      msg += "'" + near[i] + "'";
    }
    msg += "?";
  } else {
    msg += " (see `moeplan catalog list`)";
  }
  return msg;
}

UnknownIdError::UnknownIdError(const std::string& what, const std::string& id,
                               const std::vector<std::string>& known)
    : Error(unknown_message(what, id, known)) {}

std::string os_reason(int fallback) {
  return std::strerror(errno ? errno : fallback);
}

}  // namespace moeplan
