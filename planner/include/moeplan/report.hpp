// One row schema, many printers. Commands turn their result structs into a
// Report once (tables of typed cells plus a structured JSON document); the
// printers render it as a terminal table, CSV (RFC 4180), JSON or Markdown.
// Cells carry a unit hint so computation code never formats numbers.
#pragma once

#include <iosfwd>
#include <string>
#include <variant>
#include <vector>

#include "moeplan/json_read.hpp"

namespace moeplan {

struct Cell {
  std::variant<std::monostate, double, long long, std::string, bool> value;
  int decimals = -1;  // -1: choose from magnitude
  Cell() = default;
  Cell(double v, int d = -1) : value(v), decimals(d) {}
  Cell(int v) : value(static_cast<long long>(v)) {}
  Cell(long long v) : value(v) {}
  Cell(std::size_t v) : value(static_cast<long long>(v)) {}
  Cell(std::string v) : value(std::move(v)) {}
  Cell(const char* v) : value(std::string(v)) {}
  Cell(bool v) : value(v) {}
  bool empty() const { return std::holds_alternative<std::monostate>(value); }
  std::string text() const;  // plain text (no thousands separators), "" for empty
  Json to_json() const;
};

// Decimals the renderers print for a number whose cell gives none (decimals
// -1): 0 for 0 and from 1000 up, 1 from 100, 2 from 1, 4 from 0.01, else 6.
int default_decimals(double v);

struct Table {
  std::string name;   // machine name, used for CSV sections and JSON keys
  std::string title;  // human title
  std::vector<std::string> columns;
  std::vector<std::vector<Cell>> rows;
  std::vector<std::string> notes;  // printed under the table
  // Leading columns that identify a row: repeated in every part when a table
  // too wide for the terminal is split into parts.
  std::size_t key_columns = 1;
  void add(std::vector<Cell> row) { rows.push_back(std::move(row)); }
};

// Provenance every output records (docs/architecture.md).
struct OutputMeta {
  std::string tool_version;
  std::string git_sha;
  std::string catalog_hash;
  std::string calibration_file;  // "" when none
  std::string pilot_file;        // measured pilot results the report used ("" when none)
  std::string command_line;
};

// "moeplan VERSION (SHA), catalog HASH, calibration FILE": the line every text format ends with,
// and the one a command that prints its own text (catalog check, regress) must print too.
std::string provenance_line(const OutputMeta& m);

struct Report {
  std::string title;
  OutputMeta meta;
  std::vector<Table> tables;
  std::vector<std::string> messages;  // verdicts and explanations, printed after the tables
  Json json = Json::object();         // the structured result for --format json
};

enum class Format { table, json, csv, md };
Format parse_format(const std::string& s);  // throws Error on unknown
const char* format_name(Format f);

// How the terminal table format lays out text. width: the widest line, in
// columns (0 = unlimited, as `--wide`); thousands: group digits of numbers
// ("203,000,000"), in tables only — CSV and JSON always carry plain numbers.
struct TextOptions {
  std::size_t width = 120;
  bool thousands = true;
};
// COLUMNS (else 120), or unlimited after set_wide_tables(true) (`--wide`).
TextOptions default_text_options();
void set_wide_tables(bool wide);

// Renders `r`. JSON: {"schema_version", "tool", "provenance", ...r.json}.
// Table: every line fits opt.width; long text wraps inside its column, and a
// table whose columns cannot fit is printed in parts that repeat its key columns.
std::string render(const Report& r, Format f, const TextOptions& opt);
std::string render(const Report& r, Format f);  // with default_text_options()

// RFC 4180 quoting.
std::string csv_escape(const std::string& s);

// Writes `content` to `path` through a temporary file in the same directory and
// a rename, so a failure never leaves a partly written output file.
void write_file_atomic(const std::string& path, const std::string& content);

// Tool identity baked in at build time.
std::string tool_version();
std::string git_sha();

}  // namespace moeplan
