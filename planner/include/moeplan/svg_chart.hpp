// Self-contained SVG line charts: one or more stacked panels, each with axes,
// tick labels, axis titles that carry units and currency, a legend, point
// markers and labelled highlight points. No scripts, fonts or images are
// referenced, so the file renders the same in a browser, rsvg-convert or a
// document. Pure: builds a string; the caller writes it.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace moeplan::svg {

struct Series {
  std::string name;          // legend entry
  std::vector<double> x, y;  // same length; NaN y values break the line
  std::string color;         // "" = next palette colour
  bool dashed = false;
  bool markers = true;  // a dot at every point (thinned when points are dense)
};

// A point to call out (a crossover, a threshold) with a ring and a label.
struct Highlight {
  double x = 0, y = 0;
  std::string label;
};

struct LineChart {
  std::string title;
  std::string subtitle;  // one line under the title (assumptions, units)
  std::string x_label;   // axis title with unit, e.g. "Month"
  std::string y_label;   // axis title with unit and currency, e.g. "Cumulative cost (HUF)"
  std::vector<Series> series;
  std::vector<Highlight> highlights;
  std::string highlight_legend = "crossover";        // legend entry for the rings
  std::optional<double> x_min, x_max, y_min, y_max;  // default: from the data (y from 0)
  std::string clip_note;  // shown when y_max cuts off data, e.g. "values above the axis are cut"
};

struct ChartPage {
  std::string title;
  std::vector<LineChart> charts;  // stacked top to bottom
  std::string footer;             // provenance line
  int width = 960;
  int chart_height = 440;
};

std::string render_svg(const ChartPage& page);

// "Nice" tick positions (1, 2, 2.5, 5 × 10^k steps) covering [lo, hi] with about
// `target` intervals. lo < hi.
std::vector<double> nice_ticks(double lo, double hi, int target = 6);
// Compact tick label: 1.5M, 250k, 0.25, 1,200 → "1.2k".
std::string tick_label(double v, double step);
// XML text escaping.
std::string xml_escape(const std::string& s);

}  // namespace moeplan::svg
