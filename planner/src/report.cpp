#include "moeplan/report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include "moeplan/errors.hpp"

#ifndef MOEPLAN_VERSION
#define MOEPLAN_VERSION "0.0.0"
#endif
#ifndef MOEPLAN_GIT_SHA
#define MOEPLAN_GIT_SHA "unknown"
#endif

namespace moeplan {

std::string tool_version() {
  return MOEPLAN_VERSION;
}
std::string git_sha() {
  return MOEPLAN_GIT_SHA;
}

namespace {

std::string format_number(double v, int decimals) {
  if (!std::isfinite(v)) return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
  if (decimals < 0) {
    const double a = std::fabs(v);
    if (a == 0)
      decimals = 0;
    else if (a >= 1000)
      decimals = 0;
    else if (a >= 100)
      decimals = 1;
    else if (a >= 1)
      decimals = 2;
    else if (a >= 0.01)
      decimals = 4;
    else
      decimals = 6;
  }
  std::string s = fmt::format("{:.{}f}", v, decimals);
  if (s == "-0" || s.find_first_not_of("-0.") == std::string::npos) {
    if (!s.empty() && s[0] == '-') s = s.substr(1);
  }
  return s;
}

}  // namespace

std::string Cell::text() const {
  return std::visit(
      [&](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::monostate>)
          return "";
        else if constexpr (std::is_same_v<T, double>)
          return format_number(v, decimals);
        else if constexpr (std::is_same_v<T, long long>)
          return std::to_string(v);
        else if constexpr (std::is_same_v<T, bool>)
          return v ? "yes" : "no";
        else
          return v;
      },
      value);
}

Json Cell::to_json() const {
  return std::visit(
      [](const auto& v) -> Json {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::monostate>)
          return nullptr;
        else if constexpr (std::is_same_v<T, double>)
          return std::isfinite(v) ? Json(v) : Json(nullptr);
        else
          return Json(v);
      },
      value);
}

Format parse_format(const std::string& s) {
  if (s == "table") return Format::table;
  if (s == "json") return Format::json;
  if (s == "csv") return Format::csv;
  if (s == "md" || s == "markdown") return Format::md;
  throw Error("unknown format '" + s + "' (expected table, json, csv or md)");
}

const char* format_name(Format f) {
  switch (f) {
    case Format::table:
      return "table";
    case Format::json:
      return "json";
    case Format::csv:
      return "csv";
    case Format::md:
      return "md";
  }
  return "?";
}

std::string csv_escape(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

namespace {

bool is_numeric(const Cell& c) {
  return std::holds_alternative<double>(c.value) || std::holds_alternative<long long>(c.value);
}

std::string provenance_line(const OutputMeta& m) {
  std::string s = "moeplan " + m.tool_version + " (" + m.git_sha + ")";
  if (!m.catalog_hash.empty()) s += ", catalog " + m.catalog_hash;
  s += ", calibration " + (m.calibration_file.empty() ? std::string("none") : m.calibration_file);
  return s;
}

void render_text_table(std::ostringstream& os, const Table& t) {
  if (!t.title.empty()) os << t.title << "\n";
  std::vector<std::size_t> w(t.columns.size(), 0);
  std::vector<std::vector<std::string>> text;
  for (std::size_t i = 0; i < t.columns.size(); ++i) w[i] = t.columns[i].size();
  for (const auto& r : t.rows) {
    text.emplace_back();
    for (std::size_t i = 0; i < t.columns.size(); ++i) {
      text.back().push_back(i < r.size() ? r[i].text() : "");
      w[i] = std::max(w[i], text.back().back().size());
    }
  }
  auto line = [&] {
    for (std::size_t i = 0; i < w.size(); ++i) os << (i ? "-+-" : "") << std::string(w[i], '-');
    os << "\n";
  };
  for (std::size_t i = 0; i < w.size(); ++i)
    os << (i ? " | " : "") << fmt::format("{:<{}}", t.columns[i], w[i]);
  os << "\n";
  line();
  for (std::size_t r = 0; r < text.size(); ++r) {
    for (std::size_t i = 0; i < w.size(); ++i) {
      const bool right = i < t.rows[r].size() && is_numeric(t.rows[r][i]);
      os << (i ? " | " : "")
         << (right ? fmt::format("{:>{}}", text[r][i], w[i])
                   : fmt::format("{:<{}}", text[r][i], w[i]));
    }
    os << "\n";
  }
  for (const auto& n : t.notes) os << "  " << n << "\n";
  os << "\n";
}

std::string md_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

void render_md_table(std::ostringstream& os, const Table& t) {
  if (!t.title.empty()) os << "### " << t.title << "\n\n";
  os << "|";
  for (const auto& c : t.columns) os << " " << md_escape(c) << " |";
  os << "\n|";
  for (std::size_t i = 0; i < t.columns.size(); ++i) {
    const bool right = !t.rows.empty() && i < t.rows[0].size() && is_numeric(t.rows[0][i]);
    os << (right ? " ---: |" : " --- |");
  }
  os << "\n";
  for (const auto& r : t.rows) {
    os << "|";
    for (std::size_t i = 0; i < t.columns.size(); ++i)
      os << " " << md_escape(i < r.size() ? r[i].text() : "") << " |";
    os << "\n";
  }
  os << "\n";
  for (const auto& n : t.notes) os << "- " << n << "\n";
  if (!t.notes.empty()) os << "\n";
}

}  // namespace

std::string render(const Report& r, Format f) {
  std::ostringstream os;
  switch (f) {
    case Format::json: {
      Json j = Json::object();
      j["schema_version"] = 1;
      j["tool"] = "moeplan";
      j["provenance"] = {
          {"tool_version", r.meta.tool_version},
          {"git_sha", r.meta.git_sha},
          {"catalog_hash", r.meta.catalog_hash},
          {"calibration_file",
           r.meta.calibration_file.empty() ? Json(nullptr) : Json(r.meta.calibration_file)},
          {"command_line", r.meta.command_line}};
      for (auto it = r.json.begin(); it != r.json.end(); ++it) j[it.key()] = it.value();
      os << j.dump(2) << "\n";
      break;
    }
    case Format::csv: {
      // One table: plain CSV. Several: each preceded by a "# name" line so a
      // spreadsheet import can split them.
      const bool many = r.tables.size() > 1;
      for (const auto& t : r.tables) {
        if (many) os << "# " << t.name << "\n";
        for (std::size_t i = 0; i < t.columns.size(); ++i)
          os << (i ? "," : "") << csv_escape(t.columns[i]);
        os << "\n";
        for (const auto& row : t.rows) {
          for (std::size_t i = 0; i < t.columns.size(); ++i) {
            std::string cell;
            if (i < row.size()) {
              // Full precision in CSV: it is read by programs, not people.
              if (std::holds_alternative<double>(row[i].value)) {
                const double v = std::get<double>(row[i].value);
                cell = std::isfinite(v) ? fmt::format("{}", v) : "";
              } else {
                cell = row[i].text();
              }
            }
            os << (i ? "," : "") << csv_escape(cell);
          }
          os << "\n";
        }
        if (many) os << "\n";
      }
      break;
    }
    case Format::md: {
      if (!r.title.empty()) os << "## " << r.title << "\n\n";
      for (const auto& t : r.tables) render_md_table(os, t);
      for (const auto& m : r.messages) os << m << "\n\n";
      os << "_" << provenance_line(r.meta) << "_\n";
      break;
    }
    case Format::table: {
      if (!r.title.empty()) os << r.title << "\n" << std::string(r.title.size(), '=') << "\n\n";
      for (const auto& t : r.tables) render_text_table(os, t);
      for (const auto& m : r.messages) os << m << "\n";
      if (!r.messages.empty()) os << "\n";
      os << provenance_line(r.meta) << "\n";
      break;
    }
  }
  return os.str();
}

void write_file_atomic(const std::string& path, const std::string& content) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  fs::path dir = target.parent_path();
  if (dir.empty()) dir = ".";
  if (!fs::is_directory(dir)) throw Error(path + ": directory " + dir.string() + " does not exist");
  const fs::path tmp =
      dir / (".tmp-" + target.filename().string() + "-" + std::to_string(::getpid()));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(path + ": cannot create temporary file " + tmp.string());
    out << content;
    out.flush();
    if (!out) {
      out.close();
      std::error_code ec;
      fs::remove(tmp, ec);
      throw Error(path + ": write failed");
    }
  }
  std::error_code ec;
  fs::rename(tmp, target, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw Error(path + ": cannot rename temporary file into place: " + ec.message());
  }
}

}  // namespace moeplan
