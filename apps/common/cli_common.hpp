// Shared by moeplan and moeprobe: the one exit-code table (README, docs/reliability.md),
// global flags accepted before or after the subcommand, and "did you mean"
// for unknown subcommands and flags. Header-only: both front ends include it.
#pragma once

#include <CLI/CLI.hpp>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "moeplan/errors.hpp"
#include "moeplan/report.hpp"
#include "moeplan/text_layout.hpp"

namespace moeplan::cli_common {

// Exit codes of both tools.
inline constexpr int kExitOk = 0;
inline constexpr int kExitInput = 1;        // bad input or usage, every flag parse error included
inline constexpr int kExitInternal = 2;     // a bug: an unexpected exception
inline constexpr int kExitCheckFailed = 3;  // a check failed (verification, does not fit)
inline constexpr int kExitUnavailable = 4;  // a backend or service is unavailable

// Help text wrapped to the terminal like the tables (CLI11 never wraps a
// description), continuation lines under the description column.
class WrappingFormatter : public CLI::Formatter {
 public:
  std::string make_help(const CLI::App* app, std::string name,
                        CLI::AppFormatMode mode) const override {
    const std::string raw = CLI::Formatter::make_help(app, std::move(name), mode);
    const std::size_t width = default_text_options().width;
    std::string out;
    std::size_t start = 0;
    while (start < raw.size()) {
      std::size_t end = raw.find('\n', start);
      if (end == std::string::npos) end = raw.size();
      const std::string line = raw.substr(start, end - start);
      for (const auto& l : text::wrap_hanging(line, width, get_column_width() + 2)) out += l + "\n";
      start = end + 1;
    }
    return out;
  }
};

// Lets the parent's options (--data, --threads, --wide) follow the subcommand:
// call before adding subcommands (they inherit it).
inline void allow_global_flags_anywhere(CLI::App& app) {
  app.fallthrough();
  app.formatter(std::make_shared<WrappingFormatter>());
}

// `--wide`: tables unabridged, wider than the terminal.
inline void add_wide_flag(CLI::App& app) {
  app.add_flag_callback(
      "--wide", [] { set_wide_tables(true); },
      "Print tables unabridged (no wrapping to the terminal's width)");
}

// Every option value that reads as a number must be finite: CLI11 parses
// "nan" and "inf" into doubles, and NaN passes CLI::Range (every comparison
// with NaN is false), so `--output-tokens-per-s nan` was once priced.
inline CLI::Validator finite_numbers() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        std::string v = value;
        while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back()))) v.pop_back();
        std::size_t i = 0;
        while (i < v.size() && std::isspace(static_cast<unsigned char>(v[i]))) ++i;
        v = v.substr(i);
        if (v.empty()) return {};
        char* end = nullptr;
        const double d = std::strtod(v.c_str(), &end);
        if (end && *end == '\0' && !std::isfinite(d))
          return "expected a finite number, found '" + value + "'";
        return {};
      },
      "", "finite");
}

// Adds finite_numbers() to every option of `app` and its subcommands (call
// after every subcommand is set up).
inline void require_finite_numbers(CLI::App& app) {
  for (CLI::Option* o :
       app.get_options([](const CLI::Option* opt) { return opt->get_type_size() != 0; }))
    o->check(finite_numbers());
  for (CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
    require_finite_numbers(*sub);
}

namespace detail {

inline void collect(const CLI::App& app, std::vector<std::string>& options,
                    std::vector<std::string>& subcommands, bool recurse_parsed) {
  for (const CLI::Option* o : app.get_options()) {
    for (const auto& l : o->get_lnames()) options.push_back("--" + l);
    for (const auto& s : o->get_snames()) options.push_back("-" + s);
  }
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    if (!sub->get_name().empty()) subcommands.push_back(sub->get_name());
  }
  if (recurse_parsed)
    for (const CLI::App* sub : app.get_subcommands()) {
      std::vector<std::string> ignored;
      collect(*sub, options, ignored, true);
    }
}

// The deepest parsed subcommand: where an unknown word most likely belongs.
inline const CLI::App* deepest(const CLI::App& app) {
  const CLI::App* a = &app;
  while (!a->get_subcommands().empty()) a = a->get_subcommands().front();
  return a;
}

}  // namespace detail

// "did you mean" lines for the words the parser did not expect.
inline std::vector<std::string> suggestions(const CLI::App& app) {
  std::vector<std::string> options, ignored, subcommands;
  detail::collect(app, options, ignored, true);
  detail::collect(*detail::deepest(app), ignored, subcommands, false);
  std::vector<std::string> out;
  for (std::string word : app.remaining(true)) {
    if (word.empty()) continue;
    if (word[0] == '-') {
      const auto eq = word.find('=');
      if (eq != std::string::npos) word = word.substr(0, eq);
      // Suggest flags of the same kind ("--long" for "--lnog", "-s" for "-x").
      const bool long_form = word.rfind("--", 0) == 0;
      std::vector<std::string> same_kind;
      for (const auto& o : options)
        if ((o.rfind("--", 0) == 0) == long_form) same_kind.push_back(o);
      const auto near = closest_ids(word, same_kind, 3);
      if (!near.empty()) {
        std::string s = "unknown flag '" + word + "': did you mean ";
        for (std::size_t i = 0; i < near.size(); ++i)
          s += (i ? (i + 1 == near.size() ? " or " : ", ") : "") + std::string("'") + near[i] + "'";
        out.push_back(s + "?");
      }
    } else if (!subcommands.empty()) {
      const auto near = closest_ids(word, subcommands, 3);
      if (!near.empty())
        out.push_back("unknown command '" + word + "': did you mean '" + near[0] + "'?");
    }
  }
  return out;
}

// Prints a CLI11 parse error (or help / version) and returns the exit code:
// 0 for --help and --version, 1 for every usage error (CLI11's own codes,
// 104-109, are not part of the table).
inline int exit_for_parse_error(CLI::App& app, const CLI::ParseError& e) {
  if (e.get_exit_code() == 0) return app.exit(e);
  std::cerr << "error: " << e.what() << "\n";
  for (const auto& s : suggestions(app)) std::cerr << s << "\n";
  std::cerr << "Run with --help for more information.\n";
  return kExitInput;
}

}  // namespace moeplan::cli_common
