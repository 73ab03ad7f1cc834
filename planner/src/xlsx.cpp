#include "moeplan/xlsx.hpp"

#include <fmt/format.h>
#include <unistd.h>
#include <xlsxwriter.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include "moeplan/errors.hpp"

namespace moeplan::xlsx {

namespace {

bool is_iso_code(const std::string& s) {
  return s.size() == 3 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

// Holds the workbook and removes the temporary file unless committed.
class Book {
 public:
  Book(std::string tmp, std::string target) : tmp_(std::move(tmp)), target_(std::move(target)) {
    lxw_workbook_options opt{};
    opt.constant_memory = LXW_FALSE;
    opt.tmpdir = nullptr;
    wb_ = workbook_new_opt(tmp_.c_str(), &opt);
    if (!wb_) throw Error(target_ + ": cannot create workbook");
  }
  ~Book() {
    if (wb_) workbook_close(wb_);  // only on an error path: close and discard
    if (!committed_) {
      std::error_code ec;
      std::filesystem::remove(tmp_, ec);
    }
  }
  Book(const Book&) = delete;
  Book& operator=(const Book&) = delete;

  lxw_workbook* wb() { return wb_; }

  lxw_format* format(const std::string& num_format, bool bold = false, bool italic = false,
                     bool header = false) {
    const std::string key =
        num_format + (bold ? "|b" : "") + (italic ? "|i" : "") + (header ? "|h" : "");
    auto it = formats_.find(key);
    if (it != formats_.end()) return it->second;
    lxw_format* f = workbook_add_format(wb_);
    if (!num_format.empty()) format_set_num_format(f, num_format.c_str());
    if (bold) format_set_bold(f);
    if (italic) format_set_italic(f);
    if (header) {
      format_set_bottom(f, LXW_BORDER_THIN);
      format_set_text_wrap(f);
      format_set_align(f, LXW_ALIGN_VERTICAL_TOP);
    }
    formats_[key] = f;
    return f;
  }

  void close() {
    const lxw_error err = workbook_close(wb_);
    wb_ = nullptr;
    if (err != LXW_NO_ERROR)
      throw Error(target_ + ": cannot write workbook: " + std::string(lxw_strerror(err)));
    std::error_code ec;
    std::filesystem::rename(tmp_, target_, ec);
    if (ec) throw Error(target_ + ": cannot rename temporary file into place: " + ec.message());
    committed_ = true;
  }

 private:
  std::string tmp_, target_;
  lxw_workbook* wb_ = nullptr;
  bool committed_ = false;
  std::map<std::string, lxw_format*> formats_;
};

void check_sheet_name(const std::string& name) {
  if (name.empty() || name.size() > 31 || name.find_first_of("[]:*?/\\") != std::string::npos)
    throw Error("xlsx: invalid sheet name '" + name + "' (1-31 characters, none of []:*?/\\)");
}

lxw_row_t row_t(std::size_t r) {
  return static_cast<lxw_row_t>(r);
}
lxw_col_t col_t(std::size_t c) {
  return static_cast<lxw_col_t>(c);
}

}  // namespace

ColumnFormat column_format_from_header(const Table& t, std::size_t col) {
  ColumnFormat f;
  if (col >= t.columns.size()) return f;
  const std::string& h = t.columns[col];
  const auto open = h.rfind('(');
  const auto close = h.rfind(')');
  if (open != std::string::npos && close != std::string::npos && close > open) {
    const std::string unit = h.substr(open + 1, close - open - 1);
    if (unit == "%") {
      f.kind = NumberKind::percent;
      return f;
    }
    const std::string code = unit.substr(0, 3);
    if (is_iso_code(code) && (unit.size() == 3 || unit[3] == '/' || unit[3] == ' ')) {
      f.kind = NumberKind::money;
      f.currency = code;
      return f;
    }
  }
  bool any = false, all_int = true;
  for (const auto& row : t.rows) {
    if (col >= row.size() || row[col].empty()) continue;
    any = true;
    if (!std::holds_alternative<long long>(row[col].value)) all_int = false;
  }
  if (any && all_int) f.kind = NumberKind::integer;
  return f;
}

std::string number_format(const ColumnFormat& f, double abs, int decimals) {
  if (f.kind == NumberKind::integer) return "#,##0";
  if (f.kind == NumberKind::text) return "@";
  if (decimals < 0) decimals = default_decimals(abs);
  std::string base = "#,##0";
  if (decimals > 0) {  // appended in place: "." + std::string(n, '0') trips GCC 12's -Wrestrict
    base += '.';
    base.append(static_cast<std::size_t>(decimals), '0');
  }
  switch (f.kind) {
    case NumberKind::money:
      return base + "\\ \"" + f.currency + "\"";
    case NumberKind::percent:
      return base + "\"%\"";
    default:
      return base;
  }
}

void write_report(const Report& r, const std::string& path, const std::vector<SheetSpec>& sheets,
                  const Options& options) {
  namespace fs = std::filesystem;
  if (sheets.empty()) throw Error("xlsx: no sheets to write");
  for (const auto& s : sheets) check_sheet_name(s.name);
  const fs::path target(path);
  fs::path dir = target.parent_path();
  if (dir.empty()) dir = ".";
  if (!fs::is_directory(dir)) throw Error(path + ": directory " + dir.string() + " does not exist");
  const fs::path tmp =
      dir / (".tmp-" + target.filename().string() + "-" + std::to_string(::getpid()) + ".xlsx");

  Book book(tmp.string(), path);
  auto classify = [&](const Table& t, std::size_t c) {
    return options.column_format ? options.column_format(t, c) : column_format_from_header(t, c);
  };
  for (const auto& spec : sheets) {
    lxw_worksheet* ws = workbook_add_worksheet(book.wb(), spec.name.c_str());
    if (!ws) throw Error("xlsx: cannot add sheet '" + spec.name + "'");
    std::vector<std::size_t> width(1, 10);
    std::size_t row = 0;
    bool first = true;
    for (const auto& name : spec.tables) {
      const auto it = std::find_if(r.tables.begin(), r.tables.end(),
                                   [&](const Table& t) { return t.name == name; });
      if (it == r.tables.end()) continue;
      const Table& t = *it;
      if (!first) row += 1;
      first = false;
      if (width.size() < t.columns.size()) width.resize(t.columns.size(), 10);
      worksheet_write_string(ws, row_t(row++), 0, (t.title.empty() ? t.name : t.title).c_str(),
                             book.format("", true));
      const std::size_t header_row = row;
      for (std::size_t c = 0; c < t.columns.size(); ++c) {
        worksheet_write_string(ws, row_t(row), col_t(c), t.columns[c].c_str(),
                               book.format("", true, false, true));
        width[c] = std::max(width[c], std::min<std::size_t>(t.columns[c].size(), 28));
      }
      ++row;
      // Each number gets its own format: the decimals the table shows for it, in its column's
      // kind (money, percent, integer), so a small value among large ones keeps its digits.
      std::vector<ColumnFormat> kinds;
      for (std::size_t c = 0; c < t.columns.size(); ++c) kinds.push_back(classify(t, c));
      auto cell_format = [&](std::size_t c, double v, int decimals) {
        return book.format(number_format(kinds[c], std::fabs(v), decimals));
      };
      for (const auto& rr : t.rows) {
        for (std::size_t c = 0; c < t.columns.size() && c < rr.size(); ++c) {
          const Cell& cell = rr[c];
          std::size_t shown = cell.text().size();
          if (const auto* d = std::get_if<double>(&cell.value)) {
            if (std::isfinite(*d))
              worksheet_write_number(ws, row_t(row), col_t(c), *d,
                                     cell_format(c, *d, cell.decimals));
            shown += shown / 3 + 5;  // thousands separators and currency code
          } else if (const auto* i = std::get_if<long long>(&cell.value)) {
            worksheet_write_number(ws, row_t(row), col_t(c), static_cast<double>(*i),
                                   cell_format(c, 0, 0));
          } else if (const auto* b = std::get_if<bool>(&cell.value)) {
            worksheet_write_boolean(ws, row_t(row), col_t(c), *b ? 1 : 0, nullptr);
          } else if (const auto* s = std::get_if<std::string>(&cell.value)) {
            worksheet_write_string(ws, row_t(row), col_t(c), s->c_str(), nullptr);
          }
          width[c] = std::max(width[c], std::min<std::size_t>(shown, 60));
        }
        ++row;
      }
      for (const auto& n : t.notes)
        worksheet_write_string(ws, row_t(row++), 0, n.c_str(), book.format("", false, true));
      if (header_row == 1 && spec.tables.size() == 1)
        worksheet_freeze_panes(ws, row_t(header_row + 1), 0);
    }
    if (spec.with_messages) {
      row += 1;
      for (const auto& m : r.messages)
        worksheet_write_string(ws, row_t(row++), 0, m.c_str(), nullptr);
      const std::string prov =
          provenance_line(r.meta) + (r.meta.command_line.empty() ? "" : "; " + r.meta.command_line);
      worksheet_write_string(ws, row_t(row + 1), 0, prov.c_str(), book.format("", false, true));
    }
    for (std::size_t c = 0; c < width.size(); ++c)
      worksheet_set_column(ws, col_t(c), col_t(c), static_cast<double>(width[c] + 2), nullptr);
  }
  book.close();
}

}  // namespace moeplan::xlsx
