#include "moeplan/json_read.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
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

namespace {

// Detects a key given twice in one object while nlohmann parses, tracking
// where the parser is so the error names the JSON Pointer. Frames hold only
// their own key or index: the pointer is built when an error needs it (a
// path string per frame cost O(depth²) memory — the fuzzer found 100,000
// nested arrays taking gigabytes). Nesting deeper than kMaxDepth is an error:
// no input of ours comes near, and deep documents only exhaust resources.
constexpr int kMaxDepth = 256;

class DuplicateKeyCheck {
 public:
  struct Found {
    std::string path, problem;
  };
  bool operator()(int depth, nlohmann::json::parse_event_t event, Json& parsed) {
    using E = nlohmann::json::parse_event_t;
    switch (event) {
      case E::object_start:
      case E::array_start:
        if (depth >= kMaxDepth)
          throw Found{pointer(), "nesting deeper than " + std::to_string(kMaxDepth) + " levels"};
        frames_.push_back({event == E::object_start, {}, {}, 0});
        break;
      case E::key: {
        Frame& f = frames_.back();
        f.key = parsed.get<std::string>();
        if (!f.keys.insert(f.key).second)
          throw Found{pointer(), "duplicate key '" + f.key +
                                     "' (it is given twice in the same object; the second value "
                                     "would silently replace the first)"};
        break;
      }
      case E::object_end:
      case E::array_end:
        frames_.pop_back();
        element_done();
        break;
      case E::value:
        element_done();
        break;
    }
    return true;
  }

 private:
  struct Frame {
    bool object;
    std::string key;
    std::set<std::string> keys;
    std::size_t index;
  };
  // JSON Pointer of the value being read.
  std::string pointer() const {
    std::string p;
    for (const auto& f : frames_)
      p += "/" + (f.object ? escape_pointer(f.key) : std::to_string(f.index));
    return p;
  }
  void element_done() {
    if (!frames_.empty() && !frames_.back().object) ++frames_.back().index;
  }
  std::vector<Frame> frames_;
};

}  // namespace

Json parse_json_text(const std::string& text, const std::string& file_label) {
  try {
    DuplicateKeyCheck check;
    return Json::parse(text, std::ref(check));
  } catch (const DuplicateKeyCheck::Found& d) {
    throw InputError(file_label, d.path, d.problem);
  } catch (const nlohmann::json::out_of_range& e) {
    // A number literal beyond double (1e400): nlohmann throws out_of_range 406.
    std::string what = e.what();
    const auto pos = what.find("number overflow");
    throw InputError(file_label, "",
                     "invalid JSON: " + (pos != std::string::npos ? what.substr(pos) : what) +
                         " (beyond the range of a double)");
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
  // A directory opens as an empty stream (then "invalid JSON at line 1"); other failures carry the
  // operating system's reason (permission, a symlink loop).
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw InputError(path, "", "is a directory, not a JSON file");
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, "", "cannot open file for reading: " + os_reason(ENOENT));
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
  if (!std::isfinite(d) || std::floor(d) != d)
    fail("expected an integer, found " + describe_json(*j_));
  // Beyond 2^53 a double no longer holds every integer, and beyond 2^63 the
  // conversion would overflow: no count or amount we read comes near.
  if (std::fabs(d) > 9.0e15)
    fail("expected an integer of magnitude at most 9e15, found " + describe_json(*j_));
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

double JsonView::number_in(std::string_view key, double lo, double hi) const {
  const auto v = at(key);
  const double d = v.number();
  if (d < lo || d > hi)
    v.fail(
        fmt::format("expected a number from {} to {}, found {}", lo, hi, describe_json(v.raw())));
  return d;
}

std::string JsonView::date(std::string_view key) const {
  const auto v = at(key);
  const std::string a = v.string();
  auto digits = [&](std::size_t from, std::size_t n) {
    int x = 0;
    for (std::size_t i = from; i < from + n; ++i) {
      if (i >= a.size() || !std::isdigit(static_cast<unsigned char>(a[i]))) return -1;
      x = x * 10 + (a[i] - '0');
    }
    return x;
  };
  const bool shape = (a.size() == 7 || (a.size() == 10 && a[7] == '-')) && a[4] == '-';
  const int year = digits(0, 4), month = digits(5, 2), day = a.size() == 10 ? digits(8, 2) : 1;
  if (!shape || year < 1900 || year > 2200 || month < 1 || month > 12 || day < 1 || day > 31)
    v.fail("expected a date YYYY-MM or YYYY-MM-DD, found \"" + a + "\"");
  return a;
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
