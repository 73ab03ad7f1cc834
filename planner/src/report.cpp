#include "moeplan/report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <tuple>

#include <unistd.h>

#include "moeplan/errors.hpp"
#include "moeplan/output_set.hpp"
#include "moeplan/text_layout.hpp"

#ifndef MOEPLAN_VERSION
#define MOEPLAN_VERSION "0.0.0"
#endif

namespace moeplan {

std::string tool_version() {
  return MOEPLAN_VERSION;
}
// git_sha() is generated at build time (cmake/git_sha.cmake).

int default_decimals(double v) {
  const double a = std::fabs(v);
  if (a == 0 || a >= 1000) return 0;
  if (a >= 100) return 1;
  if (a >= 1) return 2;
  if (a >= 0.01) return 4;
  return 6;
}

namespace {

std::string format_number(double v, int decimals) {
  if (!std::isfinite(v)) return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
  if (decimals < 0) decimals = default_decimals(v);
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

// A message on one comment line: line breaks become spaces.
std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

}  // namespace

std::string provenance_line(const OutputMeta& m) {
  std::string s = "moeplan " + m.tool_version + " (" + m.git_sha + ")";
  // A self-contained cost scenario reads no catalog: say so rather than leave the hash out.
  s += ", catalog " + (m.catalog_hash.empty() ? std::string("none (not read)") : m.catalog_hash);
  s += ", calibration " + (m.calibration_file.empty() ? std::string("none") : m.calibration_file);
  if (!m.pilot_file.empty()) s += ", pilot " + m.pilot_file;
  return s;
}

namespace {

std::string display_text(const Cell& c, const TextOptions& opt) {
  std::string s = c.text();
  if (opt.thousands && is_numeric(c)) s = text::group_thousands(s);
  return s;
}

std::size_t max_line_bytes(const std::string& s) {
  std::size_t m = 0, start = 0;
  for (std::size_t p = s.find('\n');; p = s.find('\n', start)) {
    const std::size_t end = p == std::string::npos ? s.size() : p;
    m = std::max(m, end - start);
    if (p == std::string::npos) break;
    start = p + 1;
  }
  return m;
}

// Lays text out for `width` display columns, then narrows the layout until
// no line is longer than `width` bytes either: ×, —, ± take 2-3 bytes, and
// tools that count bytes (mawk's length) must see the same limit.
template <typename RenderAt>
std::string fit_bytes(std::size_t width, RenderAt render_at) {
  std::string out = render_at(width);
  std::size_t w = width;
  for (int i = 0; i < 8 && width > 0; ++i) {
    const std::size_t longest = max_line_bytes(out);
    if (longest <= width || w <= 20) break;
    w -= std::min(w - 20, longest - width);
    out = render_at(w);
  }
  return out;
}

void put_wrapped(std::ostringstream& os, const std::string& s, std::size_t width,
                 std::size_t hang) {
  os << fit_bytes(width, [&](std::size_t w) {
    std::string out;
    for (const auto& line : text::wrap_hanging(s, w, hang)) out += line + "\n";
    return out;
  });
}

// Prints columns `cols` of `t` with the given widths: headers wrap at words,
// text cells wrap inside their column, numbers are right-aligned and whole.
void render_panel(std::ostringstream& os, const Table& t,
                  const std::vector<std::vector<std::string>>& text,
                  const std::vector<std::size_t>& cols, const std::vector<std::size_t>& w) {
  auto emit_lines = [&](const std::vector<std::vector<std::string>>& cells,
                        const std::vector<bool>& right) {
    std::size_t height = 1;
    for (const auto& c : cells) height = std::max(height, c.size());
    for (std::size_t l = 0; l < height; ++l) {
      std::string line;
      for (std::size_t k = 0; k < cols.size(); ++k) {
        const std::string& part = l < cells[k].size() ? cells[k][l] : std::string();
        line += (k ? " | " : "") + text::pad(part, w[k], right[k]);
      }
      while (!line.empty() && line.back() == ' ') line.pop_back();
      os << line << "\n";
    }
    return height;
  };
  std::vector<std::vector<std::string>> header;
  for (std::size_t k = 0; k < cols.size(); ++k)
    header.push_back(text::wrap(t.columns[cols[k]], w[k]));
  emit_lines(header, std::vector<bool>(cols.size(), false));
  std::string rule;
  for (std::size_t k = 0; k < cols.size(); ++k) rule += (k ? "-+-" : "") + std::string(w[k], '-');
  os << rule << "\n";
  std::vector<std::vector<std::vector<std::string>>> rows;
  bool multi = false;
  for (std::size_t r = 0; r < text.size(); ++r) {
    rows.emplace_back();
    for (std::size_t k = 0; k < cols.size(); ++k) {
      rows.back().push_back(text::wrap(text[r][cols[k]], w[k]));
      multi = multi || rows.back().back().size() > 1;
    }
  }
  for (std::size_t r = 0; r < rows.size(); ++r) {
    if (multi && r > 0) os << rule << "\n";
    std::vector<bool> right;
    for (std::size_t k = 0; k < cols.size(); ++k)
      right.push_back(cols[k] < t.rows[r].size() && is_numeric(t.rows[r][cols[k]]));
    emit_lines(rows[r], right);
  }
}

// Splits the columns into parts that each fit `width`, every part starting
// with the table's key columns.
std::vector<std::vector<std::size_t>> split_columns(const std::vector<text::ColumnText>& ct,
                                                    std::size_t keys, std::size_t width) {
  std::vector<std::size_t> key_cols;
  std::size_t key_w = 0;
  for (std::size_t i = 0; i < keys; ++i) {
    key_cols.push_back(i);
    key_w += text::min_column_width(ct[i]) + 3;
  }
  std::vector<std::vector<std::size_t>> parts;
  std::vector<std::size_t> cur = key_cols;
  std::size_t cur_w = key_w;
  for (std::size_t i = keys; i < ct.size(); ++i) {
    const std::size_t cw =
        std::min(text::min_column_width(ct[i]), text::natural_column_width(ct[i]));
    if (cur.size() > key_cols.size() && cur_w + cw > width) {
      parts.push_back(cur);
      cur = key_cols;
      cur_w = key_w;
    }
    cur.push_back(i);
    cur_w += cw + 3;
  }
  parts.push_back(cur);
  return parts;
}

void render_text_table_at(std::ostringstream& os, const Table& t, const TextOptions& opt);

void render_text_table(std::ostringstream& os, const Table& t, const TextOptions& opt) {
  os << fit_bytes(opt.width, [&](std::size_t w) {
    std::ostringstream one;
    TextOptions o = opt;
    o.width = w;
    render_text_table_at(one, t, o);
    return one.str();
  });
}

void render_text_table_at(std::ostringstream& os, const Table& t, const TextOptions& opt) {
  const std::size_t n = t.columns.size();
  if (n == 0) return;
  std::vector<std::vector<std::string>> text;
  std::vector<text::ColumnText> ct(n);
  for (std::size_t i = 0; i < n; ++i) {
    ct[i].header = t.columns[i];
    ct[i].numeric = !t.rows.empty();
  }
  for (const auto& r : t.rows) {
    text.emplace_back();
    for (std::size_t i = 0; i < n; ++i) {
      text.back().push_back(i < r.size() ? display_text(r[i], opt) : "");
      ct[i].cells.push_back(text.back().back());
      if (i < r.size() && !r[i].empty() && !is_numeric(r[i])) ct[i].numeric = false;
    }
  }
  auto layout = [&] {
    std::vector<std::vector<std::size_t>> parts;
    std::vector<std::size_t> all(n);
    for (std::size_t i = 0; i < n; ++i) all[i] = i;
    if (!text::fit_columns(ct, opt.width).empty())
      parts.push_back(all);
    else
      parts = split_columns(ct, std::min(t.key_columns, n - 1), opt.width);
    std::vector<std::vector<std::size_t>> widths;
    for (const auto& part : parts) {
      std::vector<text::ColumnText> sub;
      for (std::size_t i : part) sub.push_back(ct[i]);
      std::vector<std::size_t> w = text::fit_columns(sub, opt.width);
      if (w.empty())  // even one column beside the keys is too wide: narrowest layout
        for (const auto& c : sub)
          w.push_back(std::min(text::min_column_width(c), text::natural_column_width(c)));
      widths.push_back(w);
    }
    return std::make_pair(parts, widths);
  };
  auto [parts, widths] = layout();
  // A long text squeezed into a narrow column becomes a numbered footnote
  // under the table; the cell keeps its lead-in ("excluded") and the number.
  std::vector<std::string> footnotes;
  if (opt.width > 0) {
    constexpr std::size_t kNarrow = 30, kMaxLines = 3;
    std::vector<std::size_t> col_w(n, 0);
    for (std::size_t p = 0; p < parts.size(); ++p)
      for (std::size_t k = 0; k < parts[p].size(); ++k) col_w[parts[p][k]] = widths[p][k];
    for (std::size_t r = 0; r < text.size(); ++r)
      for (std::size_t i = 0; i < n; ++i) {
        if (ct[i].numeric || col_w[i] >= kNarrow) continue;
        std::string& cell = text[r][i];
        if (text::wrap(cell, col_w[i]).size() <= kMaxLines) continue;
        footnotes.push_back(cell);
        const auto colon = cell.find(':');
        const std::string lead =
            colon != std::string::npos && colon < 16 ? cell.substr(0, colon) : "";
        cell = (lead.empty() ? "" : lead + " ") + fmt::format("[{}]", footnotes.size());
        ct[i].cells[r] = cell;
      }
    if (!footnotes.empty()) std::tie(parts, widths) = layout();
  }
  for (std::size_t p = 0; p < parts.size(); ++p) {
    std::string title = t.title;
    if (parts.size() > 1)
      title += fmt::format("{}(part {} of {})", title.empty() ? "" : " ", p + 1, parts.size());
    if (!title.empty()) put_wrapped(os, title, opt.width, 2);
    render_panel(os, t, text, parts[p], widths[p]);
    if (p + 1 < parts.size()) os << "\n";
  }
  for (std::size_t f = 0; f < footnotes.size(); ++f)
    put_wrapped(os, fmt::format("  [{}] {}", f + 1, footnotes[f]), opt.width, 6);
  for (const auto& note : t.notes) put_wrapped(os, "  " + note, opt.width, 4);
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

namespace {
bool g_wide_tables = false;
}  // namespace

TextOptions default_text_options() {
  TextOptions o;
  o.width = g_wide_tables ? 0 : text::terminal_width();
  return o;
}

void set_wide_tables(bool wide) {
  g_wide_tables = wide;
}

std::string render(const Report& r, Format f) {
  return render(r, f, default_text_options());
}

std::string render(const Report& r, Format f, const TextOptions& opt) {
  std::ostringstream os;
  switch (f) {
    case Format::json: {
      Json j = Json::object();
      j["schema_version"] = 1;
      j["tool"] = "moeplan";
      j["provenance"] = {
          {"tool_version", r.meta.tool_version},
          {"git_sha", r.meta.git_sha},
          {"catalog_hash", r.meta.catalog_hash.empty() ? Json(nullptr) : Json(r.meta.catalog_hash)},
          {"calibration_file",
           r.meta.calibration_file.empty() ? Json(nullptr) : Json(r.meta.calibration_file)},
          {"command_line", r.meta.command_line}};
      if (!r.meta.pilot_file.empty()) j["provenance"]["pilot_file"] = r.meta.pilot_file;
      for (auto it = r.json.begin(); it != r.json.end(); ++it) j[it.key()] = it.value();
      // A report without a structured document still carries its rows.
      if (r.json.empty())
        for (const auto& t : r.tables) {
          Json rows = Json::array();
          for (const auto& row : t.rows) {
            Json o = Json::object();
            for (std::size_t i = 0; i < t.columns.size(); ++i)
              o[t.columns[i]] = i < row.size() ? row[i].to_json() : Json(nullptr);
            rows.push_back(o);
          }
          j[t.name.empty() ? "rows" : t.name] = rows;
        }
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
      // Verdicts, warnings and provenance after the data, as "#" comment lines (the same marker
      // as the section names), so that a reader skipping comments gets the tables unchanged.
      for (const auto& m : r.messages) os << "# " << one_line(m) << "\n";
      if (!r.meta.tool_version.empty()) os << "# provenance: " << provenance_line(r.meta) << "\n";
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
      if (!r.title.empty()) {
        const auto lines = text::wrap(r.title, opt.width);
        std::size_t tw = 0;
        for (const auto& l : lines) {
          os << l << "\n";
          tw = std::max(tw, text::display_width(l));
        }
        os << std::string(tw, '=') << "\n\n";
      }
      for (const auto& t : r.tables) render_text_table(os, t, opt);
      for (const auto& m : r.messages) {
        const std::size_t lead = std::min(m.find_first_not_of(' '), m.size());
        const bool bullet = m.compare(lead, 2, "- ") == 0;
        put_wrapped(os, m, opt.width, lead + (bullet ? 2 : 4));
      }
      if (!r.messages.empty()) os << "\n";
      put_wrapped(os, provenance_line(r.meta), opt.width, 2);
      break;
    }
  }
  return os.str();
}

void write_file_atomic(const std::string& path, const std::string& content) {
  OutputSet set;
  set.add(path, content, "output");
  set.commit();
}

}  // namespace moeplan
