// `moeplan catalog check|list`: validate the catalogs, list their entries.
#include <fmt/format.h>

#include <iostream>
#include <memory>

#include "cli.hpp"
#include "moeplan/catalog_report.hpp"
#include "moeplan/text_layout.hpp"

namespace moeplan::cli {
namespace {

struct ListOptions {
  std::string what;
  OutputOptions out;
};

void run_check(const std::string& format) {
  const std::string dir = global().data_dir.empty() ? default_data_dir() : global().data_dir;
  const Catalog cat = load_catalog(dir);  // throws on the first error
  const auto findings = check_catalog(cat);
  std::size_t errors = 0, warnings = 0;
  auto level_of = [](const CatalogWarning& w) {
    return w.level == FindingLevel::error  ? "error"
           : w.level == FindingLevel::note ? "note"
                                           : "warning";
  };
  for (const auto& w : findings) {
    errors += w.level == FindingLevel::error;
    warnings += w.level == FindingLevel::warning;
  }
  const std::string summary = fmt::format(
      "catalog OK: {} models, {} devices, {} weight formats, {} KV formats, {} engines, {} API "
      "prices, {} rental prices, {} hardware prices, {} sites, {} FX rates; {} warning{}; hash {}",
      cat.models.size(), cat.devices.size(), cat.weight_formats.size(), cat.kv_formats.size(),
      cat.engines.size(), cat.api_prices.size(), cat.rental_prices.size(),
      cat.hardware_prices.size(), cat.sites.size(), cat.fx_rates.size(), warnings,
      warnings == 1 ? "" : "s", cat.content_hash);
  if (format == "table") {
    const std::size_t width = default_text_options().width;
    for (const auto& w : findings)
      for (const auto& l : text::wrap_hanging(
               std::string(level_of(w)) + ": " + w.file + ": " + w.json_path + ": " + w.message,
               width, 4))
        std::cout << l << "\n";
    if (errors > 0) throw Error(fmt::format("catalog check failed: {} error(s) above", errors));
    for (const auto& l : text::wrap_hanging(summary, width, 4)) std::cout << l << "\n";
    for (const auto& l : text::wrap_hanging(provenance_line(output_meta()), width, 2))
      std::cout << l << "\n";
    return;
  }
  Report r;
  r.title = "Catalog check";
  r.meta = output_meta();
  Table t{"warnings", "Findings", {"level", "file", "json_path", "message"}, {}, {}};
  Json found = Json::array();
  for (const auto& w : findings) {
    t.add({level_of(w), w.file, w.json_path, w.message});
    found.push_back({{"level", level_of(w)},
                     {"file", w.file},
                     {"json_path", w.json_path},
                     {"message", w.message}});
  }
  r.tables.push_back(t);
  r.messages.push_back(errors > 0 ? fmt::format("catalog check failed: {} error(s)", errors)
                                  : summary);
  r.json["ok"] = errors == 0;
  r.json["warnings"] = found;
  r.json["catalog_hash"] = cat.content_hash;
  std::cout << render(r, parse_format(format));
  if (errors > 0) throw Error(fmt::format("catalog check failed: {} error(s)", errors));
}

void setup(CLI::App& parent) {
  auto* app = parent.add_subcommand("catalog", "Validate and list the catalogs in data/");
  app->require_subcommand(1);
  auto* check = app->add_subcommand("check", "Validate every catalog file (exit 1 on errors)");
  auto check_format = std::make_shared<std::string>("table");
  check->add_option("--format", *check_format, "Output format")
      ->check(CLI::IsMember({"table", "json", "csv", "md"}))
      ->capture_default_str();
  check->callback([check_format] { run_check(*check_format); });
  auto opts = std::make_shared<ListOptions>();
  auto* list = app->add_subcommand("list", "List catalog entries");
  list->add_option("what", opts->what, "models|devices|precisions|engines|prices|sites|fx")
      ->required()
      ->check(
          CLI::IsMember({"models", "devices", "precisions", "engines", "prices", "sites", "fx"}));
  add_output_options(*list, opts->out);
  list->callback([opts] {
    Report r = catalog_list_report(catalog(), opts->what);
    r.meta = output_meta();
    emit(r, opts->out);
  });
}

const RegisterCommand reg("catalog", setup);

}  // namespace
}  // namespace moeplan::cli
