#include "moeplan/svg_chart.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace moeplan::svg {

namespace {

// Colour-blind-safe palette (Okabe–Ito), darkest first.
const char* kPalette[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                          "#E69F00", "#56B4E9", "#000000"};

std::string num(double v) {
  return fmt::format("{:.2f}", v);
}

}  // namespace

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!(hi > lo)) throw std::invalid_argument("nice_ticks: hi must exceed lo");
  const double raw = (hi - lo) / std::max(1, target);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    step = m * mag;
    if (step >= raw) break;
  }
  std::vector<double> t;
  const double first = std::floor(lo / step + 1e-9) * step;
  for (double v = first; v <= hi + step * 0.999; v += step) {
    t.push_back(std::fabs(v) < step * 1e-9 ? 0.0 : v);
    if (t.size() > 100) break;
  }
  return t;
}

std::string tick_label(double v, double step) {
  // The step alone picks the unit, so every label on an axis shares it.
  const double a = std::fabs(step);
  auto trim = [](std::string s) {
    if (s.find('.') != std::string::npos) {
      while (!s.empty() && s.back() == '0') s.pop_back();
      if (!s.empty() && s.back() == '.') s.pop_back();
    }
    return s == "-0" ? std::string("0") : s;
  };
  // Decimals enough to tell neighbouring ticks apart.
  auto fmt_scaled = [&](double scale, const char* suffix) {
    const double s = step / scale;
    int dec = 0;  // fewest decimals that show the step exactly (2.5 needs one)
    while (dec < 6 && std::fabs(s * std::pow(10.0, dec) - std::round(s * std::pow(10.0, dec))) >
                          1e-6 * std::pow(10.0, dec))
      ++dec;
    return trim(fmt::format("{:.{}f}", v / scale, std::min(dec, 6))) + (v == 0 ? "" : suffix);
  };
  if (a >= 1e9) return fmt_scaled(1e9, "G");
  if (a >= 1e6) return fmt_scaled(1e6, "M");
  if (a >= 1e3) return fmt_scaled(1e3, "k");
  return fmt_scaled(1.0, "");
}

namespace {

// One chart's plot area and data range, and the maps from data to page coordinates.
struct Frame {
  double px0, px1, py0, py1;
  double xmin, xmax, ymin, ymax;
  std::vector<double> xt, yt;  // tick positions
  double xstep, ystep;
  bool clipped;  // the data run above the chart's y_max
  double X(double x) const { return px0 + (x - xmin) / (xmax - xmin) * (px1 - px0); }
  double Y(double y) const { return py1 - (y - ymin) / (ymax - ymin) * (py1 - py0); }
};

// The data bounds (finite points only; the chart's fixed limits win), widened to nice ticks.
Frame frame_of(const LineChart& c, double px0, double px1, double py0, double py1) {
  Frame f{px0, px1, py0, py1, 0, 0, 0, 0, {}, {}, 1, 1, false};
  double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin;
  double ymin = 0, ymax = -std::numeric_limits<double>::infinity();
  for (const auto& s : c.series)
    for (std::size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.y[i])) continue;
      xmin = std::min(xmin, s.x[i]);
      xmax = std::max(xmax, s.x[i]);
      ymin = std::min(ymin, s.y[i]);
      ymax = std::max(ymax, s.y[i]);
    }
  if (!std::isfinite(xmin)) xmin = 0, xmax = 1;
  if (!std::isfinite(ymax)) ymax = 1;
  if (c.x_min) xmin = *c.x_min;
  if (c.x_max) xmax = *c.x_max;
  if (c.y_min) ymin = *c.y_min;
  f.clipped = c.y_max && *c.y_max < ymax;
  if (c.y_max) ymax = *c.y_max;
  if (!(xmax > xmin)) xmax = xmin + 1;
  if (!(ymax > ymin)) ymax = ymin + 1;
  f.yt = nice_ticks(ymin, ymax, 6);
  f.xt = nice_ticks(xmin, xmax, 8);
  ymin = std::min(ymin, f.yt.front());
  ymax = std::max(ymax, f.yt.back());
  f.xstep = f.xt.size() > 1 ? f.xt[1] - f.xt[0] : 1;
  f.ystep = f.yt.size() > 1 ? f.yt[1] - f.yt[0] : 1;
  f.xmin = xmin;
  f.xmax = xmax;
  f.ymin = ymin;
  f.ymax = ymax;
  return f;
}

// Titles, grid, ticks, axes and axis labels.
void render_axes(std::ostringstream& os, const LineChart& c, const Frame& f, double y0) {
  os << fmt::format(
      "<text x=\"{}\" y=\"{}\" font-size=\"15\" font-weight=\"bold\" fill=\"#222\">{}</text>\n",
      num(f.px0), num(y0 + 22), xml_escape(c.title));
  if (!c.subtitle.empty())
    os << fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"11.5\" fill=\"#555\">{}</text>\n",
                      num(f.px0), num(y0 + 40), xml_escape(c.subtitle));
  os << "<g font-size=\"11.5\" fill=\"#333\">\n";
  for (double t : f.yt) {
    if (t < f.ymin - 1e-9 || t > f.ymax + 1e-9) continue;
    os << fmt::format(
        "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#e3e3e3\" stroke-width=\"1\"/>\n",
        num(f.px0), num(f.Y(t)), num(f.px1), num(f.Y(t)));
    os << fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n", num(f.px0 - 8),
                      num(f.Y(t) + 4), xml_escape(tick_label(t, f.ystep)));
  }
  for (double t : f.xt) {
    if (t < f.xmin - 1e-9 || t > f.xmax + 1e-9) continue;
    os << fmt::format(
        "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#efefef\" stroke-width=\"1\"/>\n",
        num(f.X(t)), num(f.py0), num(f.X(t)), num(f.py1));
    os << fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", num(f.X(t)),
                      num(f.py1 + 18), xml_escape(tick_label(t, f.xstep)));
  }
  os << "</g>\n";
  os << fmt::format(
      "<path d=\"M{} {} L{} {} L{} {}\" fill=\"none\" stroke=\"#444\" stroke-width=\"1.2\"/>\n",
      num(f.px0), num(f.py0), num(f.px0), num(f.py1), num(f.px1), num(f.py1));
  os << fmt::format(
      "<text x=\"{}\" y=\"{}\" font-size=\"12.5\" text-anchor=\"middle\" "
      "fill=\"#222\">{}</text>\n",
      num((f.px0 + f.px1) / 2), num(f.py1 + 42), xml_escape(c.x_label));
  os << fmt::format(
      "<text transform=\"translate({} {}) rotate(-90)\" font-size=\"12.5\" "
      "text-anchor=\"middle\" "
      "fill=\"#222\">{}</text>\n",
      num(f.px0 - 72), num((f.py0 + f.py1) / 2), xml_escape(c.y_label));
}

// The series, clipped to the plot area (a gap at each non-finite point); their colours.
std::vector<std::string> render_series(std::ostringstream& os, const LineChart& c, const Frame& f,
                                       std::size_t ci) {
  const std::string clip_id = fmt::format("plot{}", ci);
  os << fmt::format(
      "<clipPath id=\"{}\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/></clipPath>\n",
      clip_id, num(f.px0), num(f.py0 - 2), num(f.px1 - f.px0 + 2), num(f.py1 - f.py0 + 4));
  os << fmt::format("<g clip-path=\"url(#{})\">\n", clip_id);
  std::vector<std::string> colors;
  for (std::size_t si = 0; si < c.series.size(); ++si) {
    const Series& s = c.series[si];
    const std::string color =
        s.color.empty() ? kPalette[si % (sizeof(kPalette) / sizeof(kPalette[0]))] : s.color;
    colors.push_back(color);
    std::string d;
    bool pen = false;
    for (std::size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.y[i])) {
        pen = false;
        continue;
      }
      d += fmt::format("{}{} {} ", pen ? "L" : "M", num(f.X(s.x[i])), num(f.Y(s.y[i])));
      pen = true;
    }
    os << fmt::format(
        "<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2.2\" "
        "stroke-linejoin=\"round\"{}/>\n",
        d, color, s.dashed ? " stroke-dasharray=\"7 5\"" : "");
    if (s.markers) {
      const std::size_t every = std::max<std::size_t>(1, s.x.size() / 40);
      for (std::size_t i = 0; i < s.x.size() && i < s.y.size(); i += every) {
        if (!std::isfinite(s.y[i])) continue;
        os << fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"2.6\" fill=\"{}\"/>\n", num(f.X(s.x[i])),
                          num(f.Y(s.y[i])), color);
      }
    }
  }
  os << "</g>\n";
  return colors;
}

// Highlights: a ring and a label with a white halo.
void render_highlights(std::ostringstream& os, const LineChart& c, const Frame& f) {
  for (const auto& hl : c.highlights) {
    if (hl.y > f.ymax || hl.y < f.ymin || hl.x < f.xmin || hl.x > f.xmax) continue;
    os << fmt::format(
        "<circle cx=\"{}\" cy=\"{}\" r=\"7\" fill=\"none\" stroke=\"#111\" "
        "stroke-width=\"2\"/>\n",
        num(f.X(hl.x)), num(f.Y(hl.y)));
    const bool left_side = f.X(hl.x) > (f.px0 + f.px1) / 2;
    os << fmt::format(
        "<text x=\"{}\" y=\"{}\" font-size=\"11.5\" font-weight=\"bold\" text-anchor=\"{}\" "
        "fill=\"#111\" stroke=\"#fff\" stroke-width=\"3\" paint-order=\"stroke\">{}</text>\n",
        num(f.X(hl.x) + (left_side ? -11 : 11)), num(f.Y(hl.y) - 10), left_side ? "end" : "start",
        xml_escape(hl.label));
  }
}

// The legend, right of the plot: one line per series, the highlight ring, the clip note.
void render_legend(std::ostringstream& os, const LineChart& c, const Frame& f,
                   const std::vector<std::string>& colors) {
  double ly = f.py0 + 8;
  const double lx = f.px1 + 22;
  for (std::size_t si = 0; si < c.series.size(); ++si) {
    os << fmt::format(
        "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"2.6\"{}/>\n",
        num(lx), num(ly), num(lx + 26), num(ly), colors[si],
        c.series[si].dashed ? " stroke-dasharray=\"7 5\"" : "");
    if (c.series[si].markers)
      os << fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"2.6\" fill=\"{}\"/>\n", num(lx + 13),
                        num(ly), colors[si]);
    os << fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"12\" fill=\"#222\">{}</text>\n",
                      num(lx + 34), num(ly + 4), xml_escape(c.series[si].name));
    ly += 22;
  }
  if (!c.highlights.empty()) {
    os << fmt::format(
        "<circle cx=\"{}\" cy=\"{}\" r=\"6\" fill=\"none\" stroke=\"#111\" "
        "stroke-width=\"2\"/>\n",
        num(lx + 13), num(ly));
    os << fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"12\" fill=\"#222\">{}</text>\n",
                      num(lx + 34), num(ly + 4), xml_escape(c.highlight_legend));
    ly += 22;
  }
  if (f.clipped && !c.clip_note.empty())
    os << fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"#777\">{}</text>\n", num(lx),
                      num(ly + 6), xml_escape(c.clip_note));
}

}  // namespace

std::string render_svg(const ChartPage& page) {
  const int w = page.width;
  const int title_h = page.title.empty() ? 10 : 44;
  const int footer_h = page.footer.empty() ? 10 : 30;
  const int h = title_h + static_cast<int>(page.charts.size()) * page.chart_height + footer_h;
  std::ostringstream os;
  os << fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" "
      "font-family=\"DejaVu Sans, Arial, Helvetica, sans-serif\">\n",
      w, h, w, h);
  os << fmt::format("<rect x=\"0\" y=\"0\" width=\"{}\" height=\"{}\" fill=\"#ffffff\"/>\n", w, h);
  if (!page.title.empty())
    os << fmt::format(
        "<text x=\"{}\" y=\"28\" font-size=\"19\" font-weight=\"bold\" text-anchor=\"middle\" "
        "fill=\"#222\">{}</text>\n",
        w / 2, xml_escape(page.title));

  // The legend sits right of the plot: size it to the longest entry (≈ 6.6 px per character at
  // 12 px, plus the swatch), so long "model | N×device" names are not cut.
  std::size_t longest = 0;
  for (const auto& ch : page.charts) {
    for (const auto& se : ch.series) longest = std::max(longest, se.name.size());
    if (!ch.highlights.empty()) longest = std::max(longest, ch.highlight_legend.size());
  }
  const double left = 96, top = 56, bottom = 62;
  const double right = std::max(230.0, 50.0 + 6.6 * static_cast<double>(longest));
  for (std::size_t ci = 0; ci < page.charts.size(); ++ci) {
    const LineChart& c = page.charts[ci];
    const double y0 = title_h + static_cast<double>(ci) * page.chart_height;
    const Frame f = frame_of(c, left, w - right, y0 + top, y0 + page.chart_height - bottom);
    render_axes(os, c, f, y0);
    const std::vector<std::string> colors = render_series(os, c, f, ci);
    render_highlights(os, c, f);
    render_legend(os, c, f, colors);
  }
  if (!page.footer.empty())
    os << fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"10.5\" fill=\"#777\">{}</text>\n", 12,
                      h - 10, xml_escape(page.footer));
  os << "</svg>\n";
  return os.str();
}

}  // namespace moeplan::svg
