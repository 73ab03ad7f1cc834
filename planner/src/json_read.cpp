#include "moeplan/json_read.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

namespace moeplan {

namespace {

// RFC 6901 escaping of a member name inside a JSON Pointer.
std::string escape_pointer(std::string_view key) {
  std::string out;
  for (char c : key) {
    if (c == '~')
      out += "~0";
    else if (c == '/')
      out += "~1";
    else
      out += c;
  }
  return out;
}

std::pair<std::size_t, std::size_t> line_col(const std::string& text, std::size_t byte) {
  std::size_t line = 1, col = 1;
  for (std::size_t i = 0; i < byte && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return {line, col};
}

}  // namespace

Json parse_json_text(const std::string& text, const std::string& file_label) {
  try {
    return Json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    // nlohmann reports the byte after the offending token; report it as line:column.
    const std::size_t at = e.byte > 0 ? e.byte - 1 : 0;
    const auto [line, col] = line_col(text, at);
    std::string what = e.what();
    const auto pos = what.find("syntax error");
    if (pos != std::string::npos) what = what.substr(pos);
    throw InputError(file_label, "",
                     "invalid JSON at line " + std::to_string(line) + ", column " +
                         std::to_string(col) + ": " + what);
  }
}

Json parse_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, "", "cannot open file for reading");
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_json_text(ss.str(), path);
}

std::string describe_json(const Json& j) {
  std::string dump = j.dump();
  if (dump.size() > 40) dump = dump.substr(0, 37) + "...";
  switch (j.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::boolean:
      return "boolean " + dump;
    case Json::value_t::string:
      return "string " + dump;
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float:
      return "number " + dump;
    case Json::value_t::array:
      return "array";
    case Json::value_t::object:
      return "object";
    default:
      return dump;
  }
}

JsonView::JsonView(const Json& j, std::string file, std::string path)
    : j_(&j), file_(std::make_shared<const std::string>(std::move(file))), path_(std::move(path)) {}

JsonView::JsonView(const Json& j, std::shared_ptr<const std::string> file, std::string path)
    : j_(&j), file_(std::move(file)), path_(std::move(path)) {}

std::string JsonView::child_path(std::string_view key) const {
  return path_ + "/" + escape_pointer(key);
}

void JsonView::fail(const std::string& problem) const {
  throw InputError(*file_, path_, problem);
}

void JsonView::fail_member(std::string_view key, const std::string& problem) const {
  throw InputError(*file_, child_path(key), problem);
}

bool JsonView::has(std::string_view key) const {
  return j_->is_object() && j_->contains(std::string(key));
}

JsonView JsonView::at(std::string_view key) const {
  if (!j_->is_object()) fail("expected an object, found " + describe_json(*j_));
  auto it = j_->find(std::string(key));
  if (it == j_->end()) fail_member(key, "required field is missing");
  return JsonView(*it, file_, child_path(key));
}

std::optional<JsonView> JsonView::get(std::string_view key) const {
  if (!j_->is_object()) fail("expected an object, found " + describe_json(*j_));
  auto it = j_->find(std::string(key));
  if (it == j_->end() || it->is_null()) return std::nullopt;
  return JsonView(*it, file_, child_path(key));
}

std::vector<JsonView> JsonView::array() const {
  if (!j_->is_array()) fail("expected an array, found " + describe_json(*j_));
  std::vector<JsonView> out;
  out.reserve(j_->size());
  for (std::size_t i = 0; i < j_->size(); ++i)
    out.emplace_back(JsonView((*j_)[i], file_, path_ + "/" + std::to_string(i)));
  return out;
}

std::vector<JsonView> JsonView::array(std::string_view key) const {
  return at(key).array();
}

std::vector<JsonView> JsonView::array_or_empty(std::string_view key) const {
  auto v = get(key);
  return v ? v->array() : std::vector<JsonView>{};
}

double JsonView::number() const {
  if (!j_->is_number()) fail("expected a number, found " + describe_json(*j_));
  const double v = j_->get<double>();
  if (!std::isfinite(v)) fail("expected a finite number");
  return v;
}

long long JsonView::integer() const {
  if (!j_->is_number()) fail("expected an integer, found " + describe_json(*j_));
  const double d = j_->get<double>();
  if (std::floor(d) != d) fail("expected an integer, found " + describe_json(*j_));
  return static_cast<long long>(d);
}

std::string JsonView::string() const {
  if (!j_->is_string()) fail("expected a string, found " + describe_json(*j_));
  return j_->get<std::string>();
}

bool JsonView::boolean() const {
  if (!j_->is_boolean()) fail("expected true or false, found " + describe_json(*j_));
  return j_->get<bool>();
}

double JsonView::number_or(std::string_view key, double def) const {
  auto v = get(key);
  return v ? v->number() : def;
}

std::optional<double> JsonView::number_opt(std::string_view key) const {
  auto v = get(key);
  if (!v) return std::nullopt;
  return v->number();
}

long long JsonView::integer_or(std::string_view key, long long def) const {
  auto v = get(key);
  return v ? v->integer() : def;
}

std::string JsonView::string_or(std::string_view key, std::string def) const {
  auto v = get(key);
  return v ? v->string() : def;
}

bool JsonView::boolean_or(std::string_view key, bool def) const {
  auto v = get(key);
  return v ? v->boolean() : def;
}

std::vector<std::string> JsonView::strings_or_empty(std::string_view key) const {
  std::vector<std::string> out;
  for (const auto& e : array_or_empty(key)) out.push_back(e.string());
  return out;
}

double JsonView::positive(std::string_view key) const {
  const auto v = at(key);
  const double d = v.number();
  if (!(d > 0)) v.fail("expected a number > 0, found " + describe_json(v.raw()));
  return d;
}

double JsonView::non_negative(std::string_view key) const {
  const auto v = at(key);
  const double d = v.number();
  if (d < 0) v.fail("expected a number >= 0, found " + describe_json(v.raw()));
  return d;
}

double JsonView::fraction(std::string_view key) const {
  const auto v = at(key);
  const double d = v.number();
  if (d < 0 || d > 1)
    v.fail("expected a fraction between 0 and 1, found " + describe_json(v.raw()));
  return d;
}

long long JsonView::positive_int(std::string_view key) const {
  const auto v = at(key);
  const long long n = v.integer();
  if (n <= 0) v.fail("expected an integer > 0, found " + describe_json(v.raw()));
  return n;
}

std::string JsonView::one_of(std::string_view key,
                             std::initializer_list<std::string_view> allowed) const {
  const auto v = at(key);
  const std::string s = v.string();
  for (auto a : allowed)
    if (s == a) return s;
  std::string list;
  for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
  v.fail("expected one of " + list + ", found \"" + s + "\"");
}

void JsonView::only_keys(std::initializer_list<std::string_view> allowed) const {
  only_keys(std::vector<std::string>(allowed.begin(), allowed.end()));
}

void JsonView::only_keys(const std::vector<std::string>& allowed) const {
  if (!j_->is_object()) fail("expected an object, found " + describe_json(*j_));
  for (auto it = j_->begin(); it != j_->end(); ++it) {
    if (std::find(allowed.begin(), allowed.end(), it.key()) != allowed.end()) continue;
    std::string msg = "unknown field '" + it.key() + "'";
    const auto near = closest_ids(it.key(), allowed, 1);
    if (!near.empty()) msg += ", did you mean '" + near[0] + "'?";
    throw InputError(*file_, child_path(it.key()), msg);
  }
}

}  // namespace moeplan
