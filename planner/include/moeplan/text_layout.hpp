// Terminal text layout for the table printer (report.cpp): display width of
// UTF-8 text, word wrapping, thousands separators and fitting a table's
// columns into a line width. Pure functions; the only environment read is
// terminal_width() (COLUMNS), and only when the caller asks for it.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace moeplan::text {

// Columns a string occupies: one per UTF-8 code point (the project prints
// Latin text, ×, —, ±, ≥; no double-width characters), control characters 0.
std::size_t display_width(std::string_view s);

// Splits `s` into lines of at most `width` columns, breaking at spaces and
// after '/', ',' or '|' when possible and inside a word only when a word is
// longer than a line. Embedded newlines are kept. Always at least one line.
// `width` 0 means no limit.
std::vector<std::string> wrap(std::string_view s, std::size_t width);

// Wraps a paragraph, continuation lines indented by `hang` spaces.
std::vector<std::string> wrap_hanging(std::string_view s, std::size_t width, std::size_t hang);

// "1234567.5" -> "1,234,567.5"; "-20000" -> "-20,000". Leaves anything that is
// not a plain decimal number (nan, inf, 1e+20, text) unchanged. Integer parts
// of fewer than 4 digits are unchanged.
std::string group_thousands(const std::string& number);

// Pads to `width` display columns, left or right aligned.
std::string pad(std::string_view s, std::size_t width, bool right_align);

// COLUMNS from the environment when it is a number in [40, 10000], else 120.
std::size_t terminal_width();

// Column widths for a table: given each column's header, its cells' texts
// and whether it is numeric (numbers never wrap), returns the widths that fit
// `width` (0 = unlimited: natural widths), or an empty vector when even the
// narrowest layout does not fit (the caller then splits the columns).
struct ColumnText {
  std::string header;
  std::vector<std::string> cells;
  bool numeric = false;
};
std::vector<std::size_t> fit_columns(const std::vector<ColumnText>& cols, std::size_t width);

// Narrowest width a column may take (numbers whole, header at its longest
// word, text at up to 12 columns).
std::size_t min_column_width(const ColumnText& c);
// Width of the widest header or cell.
std::size_t natural_column_width(const ColumnText& c);

}  // namespace moeplan::text
