#include "moeplan/text_layout.hpp"

#include <algorithm>
#include <cstdlib>
#include <numeric>

namespace moeplan::text {

namespace {

bool is_continuation(unsigned char c) {
  return (c & 0xC0) == 0x80;
}

// Byte offset after the first `n` code points of `s` (or s.size()).
std::size_t byte_offset(std::string_view s, std::size_t n) {
  std::size_t i = 0, seen = 0;
  while (i < s.size()) {
    if (!is_continuation(static_cast<unsigned char>(s[i]))) {
      if (seen == n) return i;
      ++seen;
    }
    ++i;
  }
  return s.size();
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t p = s.find(sep, start);
    out.push_back(
        s.substr(start, p == std::string_view::npos ? std::string_view::npos : p - start));
    if (p == std::string_view::npos) break;
    start = p + 1;
  }
  return out;
}

// Where to cut a word longer than `width`: after a '/', ',', '-', '_' or '|'
// in its second half when there is one, else exactly at `width`.
std::size_t cut_point(std::string_view word, std::size_t width) {
  const std::size_t hard = byte_offset(word, width);
  for (std::size_t i = hard; i > byte_offset(word, width / 2) && i > 0; --i) {
    const char c = word[i - 1];
    if (c == '/' || c == ',' || c == '-' || c == '_' || c == '|') return i;
  }
  return hard;
}

// Greedy word wrap: the first line may be `first` columns wide, the rest `rest`.
void wrap_paragraph(std::string_view para, std::size_t first, std::size_t rest,
                    std::vector<std::string>& out) {
  std::string cur;
  std::size_t cur_w = 0;
  auto limit = [&] { return out.empty() ? first : rest; };
  bool started = false;  // at least one line of this paragraph emitted or in progress
  for (std::string_view word : split(para, ' ')) {
    if (word.empty()) continue;
    std::size_t ww = display_width(word);
    if (cur_w > 0 && cur_w + 1 + ww <= limit()) {
      cur += ' ';
      cur += word;
      cur_w += 1 + ww;
      continue;
    }
    if (cur_w > 0) {
      out.push_back(cur);
      cur.clear();
      cur_w = 0;
    }
    while (ww > limit() && limit() > 0) {
      const std::size_t cut = cut_point(word, limit());
      out.emplace_back(word.substr(0, cut));
      word.remove_prefix(cut);
      ww = display_width(word);
    }
    cur = std::string(word);
    cur_w = ww;
    started = true;
  }
  if (cur_w > 0 || !started) out.push_back(cur);
}

}  // namespace

std::size_t display_width(std::string_view s) {
  std::size_t n = 0;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (is_continuation(c) || c < 0x20 || c == 0x7F) continue;
    ++n;
  }
  return n;
}

std::vector<std::string> wrap(std::string_view s, std::size_t width) {
  std::vector<std::string> out;
  for (std::string_view para : split(s, '\n')) {
    if (width == 0) {
      out.emplace_back(para);
      continue;
    }
    std::vector<std::string> lines;
    wrap_paragraph(para, width, width, lines);
    out.insert(out.end(), lines.begin(), lines.end());
  }
  return out;
}

std::vector<std::string> wrap_hanging(std::string_view s, std::size_t width, std::size_t hang) {
  std::vector<std::string> out;
  for (std::string_view para : split(s, '\n')) {
    const std::size_t lead = std::min(para.find_first_not_of(' '), para.size());
    if (width == 0 || display_width(para) <= width) {
      out.emplace_back(para);
      continue;
    }
    const std::size_t h = std::max(hang, lead);
    const std::size_t first = width > lead ? width - lead : 1;
    const std::size_t rest = width > h + 10 ? width - h : std::max<std::size_t>(width / 2, 1);
    const std::size_t h_used = width > h + 10 ? h : width - rest;
    std::vector<std::string> lines;
    wrap_paragraph(para.substr(lead), first, rest, lines);
    for (std::size_t i = 0; i < lines.size(); ++i)
      out.push_back(std::string(i == 0 ? lead : h_used, ' ') + lines[i]);
  }
  return out;
}

std::string group_thousands(const std::string& number) {
  std::size_t i = 0;
  if (i < number.size() && number[i] == '-') ++i;
  const std::size_t int_start = i;
  while (i < number.size() && number[i] >= '0' && number[i] <= '9') ++i;
  const std::size_t int_end = i;
  if (int_end == int_start) return number;
  if (i < number.size()) {
    if (number[i] != '.') return number;
    ++i;
    while (i < number.size() && number[i] >= '0' && number[i] <= '9') ++i;
    if (i != number.size()) return number;
  }
  const std::size_t digits = int_end - int_start;
  if (digits < 4) return number;
  std::string out = number.substr(0, int_start);
  for (std::size_t k = 0; k < digits; ++k) {
    if (k > 0 && (digits - k) % 3 == 0) out += ',';
    out += number[int_start + k];
  }
  out += number.substr(int_end);
  return out;
}

std::string pad(std::string_view s, std::size_t width, bool right_align) {
  const std::size_t w = display_width(s);
  if (w >= width) return std::string(s);
  const std::string fill(width - w, ' ');
  return right_align ? fill + std::string(s) : std::string(s) + fill;
}

std::size_t terminal_width() {
  const char* env = std::getenv("COLUMNS");
  if (env && *env) {
    char* end = nullptr;
    const long v = std::strtol(env, &end, 10);
    if (end && *end == '\0' && v >= 40 && v <= 10000) return static_cast<std::size_t>(v);
  }
  return 120;
}

std::size_t natural_column_width(const ColumnText& c) {
  std::size_t w = display_width(c.header);
  for (const auto& cell : c.cells)
    for (const auto& line : wrap(cell, 0)) w = std::max(w, display_width(line));
  return w;
}

std::size_t min_column_width(const ColumnText& c) {
  constexpr std::size_t kTextMin = 12, kHeaderWordMax = 16;
  std::size_t header_min = 1;
  for (auto word : split(c.header, ' '))
    header_min = std::max(header_min, std::min(display_width(word), kHeaderWordMax));
  std::size_t cells = 0;
  for (const auto& cell : c.cells)
    for (const auto& line : wrap(cell, 0)) cells = std::max(cells, display_width(line));
  return std::max(header_min, c.numeric ? cells : std::min(cells, kTextMin));
}

std::vector<std::size_t> fit_columns(const std::vector<ColumnText>& cols, std::size_t width) {
  const std::size_t n = cols.size();
  std::vector<std::size_t> natural(n), minimum(n);
  for (std::size_t i = 0; i < n; ++i) {
    natural[i] = natural_column_width(cols[i]);
    minimum[i] = std::min(min_column_width(cols[i]), natural[i]);
  }
  const std::size_t seps = n > 0 ? 3 * (n - 1) : 0;
  const std::size_t total_natural = std::accumulate(natural.begin(), natural.end(), seps);
  if (width == 0 || total_natural <= width) return natural;
  const std::size_t total_min = std::accumulate(minimum.begin(), minimum.end(), seps);
  if (total_min > width) return {};
  // Max-min fair share of the spare columns: the columns that need least get
  // their natural width first, the rest share what is left equally.
  std::vector<std::size_t> w = minimum;
  std::size_t spare = width - total_min;
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < n; ++i)
    if (natural[i] > minimum[i]) order.push_back(i);
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return natural[a] - minimum[a] < natural[b] - minimum[b];
  });
  for (std::size_t k = 0; k < order.size() && spare > 0; ++k) {
    const std::size_t left = order.size() - k;
    const std::size_t share = spare / left;
    const std::size_t i = order[k];
    const std::size_t need = natural[i] - minimum[i];
    if (need <= share) {
      w[i] = natural[i];
      spare -= need;
    } else {
      // Everyone from here on needs more than the equal share: split it.
      std::size_t extra = spare % left;
      for (std::size_t m = k; m < order.size(); ++m) {
        w[order[m]] += share + (extra > 0 ? 1 : 0);
        if (extra > 0) --extra;
      }
      spare = 0;
    }
  }
  return w;
}

}  // namespace moeplan::text
