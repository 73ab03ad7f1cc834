// Typed, located reads of JSON input. Every accessor that fails throws
// InputError naming the file, the JSON Pointer path, what was expected and
// what was found, so catalog, scenario and calibration errors read alike.
#pragma once

#include <initializer_list>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "moeplan/errors.hpp"

namespace moeplan {

using Json = nlohmann::ordered_json;

// Reads and parses a JSON file; syntax errors report line and column, and a
// key given twice in one object is an error at its JSON Pointer (JSON allows
// it, but the second value would silently replace the first).
Json parse_json_file(const std::string& path);
// Parses text that came from `file_label` (for messages).
Json parse_json_text(const std::string& text, const std::string& file_label);

// A located view of one JSON value. Cheap to copy; the document must outlive it.
class JsonView {
 public:
  JsonView(const Json& j, std::string file, std::string path = "");

  const Json& raw() const { return *j_; }
  const std::string& file() const { return *file_; }
  const std::string& path() const { return path_; }

  bool is_object() const { return j_->is_object(); }
  bool is_array() const { return j_->is_array(); }
  bool is_null() const { return j_->is_null(); }
  bool has(std::string_view key) const;

  JsonView at(std::string_view key) const;  // required member
  std::optional<JsonView> get(std::string_view key) const;
  std::vector<JsonView> array() const;                      // requires an array
  std::vector<JsonView> array(std::string_view key) const;  // required array member
  std::vector<JsonView> array_or_empty(std::string_view key) const;

  double number() const;
  long long integer() const;
  std::string string() const;
  bool boolean() const;

  double number(std::string_view key) const { return at(key).number(); }
  double number_or(std::string_view key, double def) const;
  std::optional<double> number_opt(std::string_view key) const;
  long long integer(std::string_view key) const { return at(key).integer(); }
  long long integer_or(std::string_view key, long long def) const;
  std::string string(std::string_view key) const { return at(key).string(); }
  std::string string_or(std::string_view key, std::string def) const;
  bool boolean_or(std::string_view key, bool def) const;
  std::vector<std::string> strings_or_empty(std::string_view key) const;

  // Range-checked numbers.
  double positive(std::string_view key) const;
  double non_negative(std::string_view key) const;
  double fraction(std::string_view key) const;  // within [0, 1]
  long long positive_int(std::string_view key) const;
  // A finite number within [lo, hi] (the documented range), else an error naming both.
  double number_in(std::string_view key, double lo, double hi) const;
  // A date "YYYY-MM" or "YYYY-MM-DD" (month 01-12, day 01-31), as given.
  std::string date(std::string_view key) const;
  std::string one_of(std::string_view key, std::initializer_list<std::string_view> allowed) const;

  // Rejects members not in `allowed` (a typo must not fall back to a default).
  void only_keys(std::initializer_list<std::string_view> allowed) const;
  void only_keys(const std::vector<std::string>& allowed) const;

  [[noreturn]] void fail(const std::string& problem) const;
  [[noreturn]] void fail_member(std::string_view key, const std::string& problem) const;

 private:
  std::string child_path(std::string_view key) const;
  const Json* j_;
  std::shared_ptr<const std::string> file_;
  std::string path_;
  JsonView(const Json& j, std::shared_ptr<const std::string> file, std::string path);
};

// Short description of a JSON value's type and value, for messages ("string \"abc\"").
std::string describe_json(const Json& j);

}  // namespace moeplan
