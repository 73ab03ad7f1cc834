// Workbook cells keep the digits the tables show (data audit): every number gets
// its own format, so a rate of 0.27 in a column of millions is not shown as 0.
// The written .xlsx is opened (zip + inflate) and its sheet and style XML read.
#include <zlib.h>
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "moeplan/report.hpp"
#include "moeplan/xlsx.hpp"
#include "test_support.hpp"

using namespace moeplan;
namespace fs = std::filesystem;

namespace {

std::uint32_t le(const std::string& b, std::size_t at, int bytes) {
  std::uint32_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(b.at(at + i));
  return v;
}

// One member of a zip file, found through the central directory (stored or deflated).
std::string unzip_member(const fs::path& zip, const std::string& name) {
  std::ifstream in(zip, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string b = ss.str();
  std::size_t eocd = b.rfind(std::string("PK\x05\x06", 4));
  REQUIRE(eocd != std::string::npos);
  std::size_t at = le(b, eocd + 16, 4);
  const std::uint32_t count = le(b, eocd + 10, 2);
  for (std::uint32_t e = 0; e < count; ++e) {
    REQUIRE(le(b, at, 4) == 0x02014b50u);
    const std::uint32_t method = le(b, at + 10, 2), csize = le(b, at + 20, 4),
                        usize = le(b, at + 24, 4), nlen = le(b, at + 28, 2),
                        xlen = le(b, at + 30, 2), clen = le(b, at + 32, 2),
                        local = le(b, at + 42, 4);
    if (b.compare(at + 46, nlen, name) == 0) {
      const std::size_t data = local + 30 + le(b, local + 26, 2) + le(b, local + 28, 2);
      if (method == 0) return b.substr(data, csize);
      REQUIRE(method == 8);
      std::string out(usize, '\0');
      z_stream z{};
      REQUIRE(inflateInit2(&z, -MAX_WBITS) == Z_OK);
      z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(b.data() + data));
      z.avail_in = csize;
      z.next_out = reinterpret_cast<Bytef*>(out.data());
      z.avail_out = usize;
      const int rc = inflate(&z, Z_FINISH);
      inflateEnd(&z);
      REQUIRE(rc == Z_STREAM_END);
      return out;
    }
    at += 46 + nlen + xlen + clen;
  }
  FAIL("no " << name << " in " << zip);
  return "";
}

std::string unescape(std::string s) {
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"&quot;", "\""}, {"&lt;", "<"}, {"&gt;", ">"}, {"&amp;", "&"}}) {
    for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + 1))
      s.replace(at, from.size(), to);
  }
  return s;
}

struct NumberCell {
  std::string ref;
  double value = 0;
  std::string format;  // the Excel number format code applied to it
};

// Every number cell of one sheet with its number format.
std::vector<NumberCell> number_cells(const fs::path& book, int sheet) {
  const std::string styles = unzip_member(book, "xl/styles.xml");
  std::map<int, std::string> codes{{0, "General"},  {1, "0"},  {2, "0.00"},  {3, "#,##0"},
                                   {4, "#,##0.00"}, {9, "0%"}, {10, "0.00%"}};
  const std::regex numfmt(R"re(<numFmt numFmtId="(\d+)" formatCode="([^"]*)")re");
  for (std::sregex_iterator it(styles.begin(), styles.end(), numfmt), end; it != end; ++it)
    codes[std::stoi((*it)[1])] = unescape((*it)[2]);
  const auto xfs_at = styles.find("<cellXfs");
  const std::string xfs = styles.substr(xfs_at, styles.find("</cellXfs>") - xfs_at);
  std::vector<int> xf_fmt;
  const std::regex xf(R"re(<xf numFmtId="(\d+)")re");
  for (std::sregex_iterator it(xfs.begin(), xfs.end(), xf), end; it != end; ++it)
    xf_fmt.push_back(std::stoi((*it)[1]));

  const std::string xml =
      unzip_member(book, "xl/worksheets/sheet" + std::to_string(sheet) + ".xml");
  std::vector<NumberCell> cells;
  const std::regex cell(R"re(<c r="([A-Z]+\d+)"( s="(\d+)")?><v>([^<]*)</v></c>)re");
  for (std::sregex_iterator it(xml.begin(), xml.end(), cell), end; it != end; ++it) {
    const int s = (*it)[3].matched ? std::stoi((*it)[3]) : 0;
    REQUIRE(static_cast<std::size_t>(s) < xf_fmt.size());
    cells.push_back({(*it)[1], std::stod((*it)[4]), codes.at(xf_fmt[s])});
  }
  return cells;
}

// Places after the decimal point in a format code ("#,##0.00\ "HUF"" → 2).
int decimals_of(const std::string& code) {
  const auto dot = code.find('.');
  if (dot == std::string::npos) return code == "General" ? 99 : 0;
  int n = 0;
  while (dot + 1 + n < code.size() && code[dot + 1 + n] == '0') ++n;
  return n;
}

const NumberCell& at(const std::vector<NumberCell>& cells, const std::string& ref) {
  for (const auto& c : cells)
    if (c.ref == ref) return c;
  FAIL("no number in " << ref);
  return cells.front();
}

// A fractional number below 100 must keep at least one decimal: the tables never show one
// as a whole number.
void check_no_rounded_fractions(const std::vector<NumberCell>& cells) {
  for (const auto& c : cells) {
    if (std::fabs(c.value - std::round(c.value)) < 1e-9 || std::fabs(c.value) >= 100) continue;
    INFO(c.ref << " = " << std::setprecision(17) << c.value << " shown as " << c.format);
    CHECK(decimals_of(c.format) >= 1);
  }
}

}  // namespace

TEST_CASE("xlsx: each number keeps the decimals its table shows", "[xlsx]") {
  Report r;
  Table t;
  t.name = "assumptions";
  t.columns = {"item", "value", "share (%)", "cost (HUF)"};
  t.add({"capex", Cell(2.5e8), Cell(250.0, 1), Cell(2.5e8)});
  t.add({"vat_rate", Cell(0.27), Cell(4.63, 1), Cell(0.14)});
  t.add({"efficiency", Cell(0.9, 2), Cell(17.87), Cell(1234.5)});
  t.add({"gpus", Cell(8), Cell(3), Cell(7)});
  r.tables.push_back(t);
  const fs::path dir = fs::temp_directory_path() / "moeplan-test-xlsx-formats";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path book = dir / "a.xlsx";
  xlsx::write_report(r, book.string(), {{"Sheet", {"assumptions"}, false}});
  const auto cells = number_cells(book, 1);
  // Row 1 is the title, row 2 the header: the numbers start in row 3.
  CHECK(at(cells, "B3").format == "#,##0");
  CHECK(at(cells, "B4").format == "#,##0.0000");  // 0.27, not 0
  CHECK(at(cells, "B5").format == "#,##0.00");    // 0.9 with the table's 2 decimals, not 1
  CHECK(at(cells, "C3").format == "#,##0.0\"%\"");
  CHECK(at(cells, "C4").format == "#,##0.0\"%\"");   // 4.6%, not 5%
  CHECK(at(cells, "C5").format == "#,##0.00\"%\"");  // 17.87%, not 18%
  CHECK(at(cells, "D3").format == "#,##0\\ \"HUF\"");
  CHECK(at(cells, "D4").format == "#,##0.0000\\ \"HUF\"");
  CHECK(at(cells, "D5").format == "#,##0\\ \"HUF\"");
  CHECK(at(cells, "B6").format == "#,##0");  // whole numbers stay whole
  CHECK(at(cells, "C6").format == "#,##0\"%\"");
  check_no_rounded_fractions(cells);
  fs::remove_all(dir);
}

TEST_CASE("xlsx: plan and cost workbooks show small values with their digits", "[xlsx][cli]") {
  const fs::path dir = fs::temp_directory_path() / "moeplan-test-xlsx-cli";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string ex = test::examples_dir();
  const fs::path plan = dir / "plan.xlsx", cost = dir / "cost.xlsx";
  auto r = test::run_moeplan("plan " + ex + "/plan-8xh200-glm52-huf.json --samples 200 " +
                             "--format xlsx -o " + plan.string());
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  r = test::run_moeplan("cost " + ex + "/seed-8xh200-glm52-huf.json --format xlsx -o " +
                        cost.string());
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  // Plan: Summary, Candidates, Assumptions (vat_rate 0.27, discount_rate 0.08, efficiencies).
  for (int sheet = 1; sheet <= 3; ++sheet) {
    INFO("plan sheet " << sheet);
    check_no_rounded_fractions(number_cells(plan, sheet));
  }
  bool saw_rate = false;
  for (const auto& c : number_cells(plan, 3))
    if (c.value == 0.27) saw_rate = decimals_of(c.format) >= 2;
  CHECK(saw_rate);
  // Cost: Summary (utilization %, payback months), Monthly, Flexion, Assumptions.
  for (int sheet = 1; sheet <= 4; ++sheet) {
    INFO("cost sheet " << sheet);
    check_no_rounded_fractions(number_cells(cost, sheet));
  }
  fs::remove_all(dir);
}
