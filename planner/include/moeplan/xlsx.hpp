// Excel workbooks from a Report (libxlsxwriter): each sheet stacks one or more
// of the report's tables; numbers stay numbers, money columns get currency
// number formats, so finance can recompute from the cells. Written to a
// temporary file in the target directory and renamed into place.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "moeplan/report.hpp"

namespace moeplan::xlsx {

enum class NumberKind {
  number,   // plain number, decimals from magnitude
  integer,  // whole number
  money,    // number with a currency code ("#,##0 \"HUF\"")
  percent,  // a value already in percent points (38.9 → "38.9%")
  text,     // leave as written
};

struct ColumnFormat {
  NumberKind kind = NumberKind::number;
  std::string currency;  // for money: ISO code shown after the number
};

// Classifies a column by its header: "(%)" → percent; "(XYZ)" or "(XYZ/…)"
// where XYZ is an upper-case ISO 4217 code → money in XYZ; columns holding only
// integers → integer; else number.
ColumnFormat column_format_from_header(const Table& t, std::size_t col);

struct SheetSpec {
  std::string name;                 // Excel sheet name, at most 31 characters
  std::vector<std::string> tables;  // Table::name values, stacked with a blank row between
  bool with_messages = false;       // append the report's messages and provenance
};

struct Options {
  // Overrides column classification; empty = column_format_from_header.
  std::function<ColumnFormat(const Table&, std::size_t)> column_format;
};

// Writes `r` to `path` (.xlsx). Tables named in a spec but absent from the
// report are skipped. Throws Error on a bad sheet name or a failed write; a
// failed write leaves no partial file behind.
void write_report(const Report& r, const std::string& path, const std::vector<SheetSpec>& sheets,
                  const Options& options = {});

// The Excel number format for a number of magnitude `abs` shown with
// `decimals` places (-1: default_decimals(abs), as the text renderers do).
// write_report gives every cell its own format this way, from the cell's
// value and decimals, so a small value in a column of large ones keeps its
// digits (0.27 is not shown as 0).
std::string number_format(const ColumnFormat& f, double abs, int decimals = -1);

}  // namespace moeplan::xlsx
