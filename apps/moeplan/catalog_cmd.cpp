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
  const std::string summary = fmt::format(
      "catalog OK: {} models, {} devices, {} weight formats, {} KV formats, {} engines, {} API "
      "prices, {} rental prices, {} hardware prices, {} sites, {} FX rates; {} warnings; hash {}",
      cat.models.size(), cat.devices.size(), cat.weight_formats.size(), cat.kv_formats.size(),
      cat.engines.size(), cat.api_prices.size(), cat.rental_prices.size(),
      cat.hardware_prices.size(), cat.sites.size(), cat.fx_rates.size(), findings.size(),
      cat.content_hash);
  if (format == "table") {
    const std::size_t width = default_text_options().width;
    for (const auto& w : findings)
      for (const auto& l : text::wrap_hanging(
               "warning: " + w.file + ": " + w.json_path + ": " + w.message, width, 4))
        std::cout << l << "\n";
    for (const auto& l : text::wrap_hanging(summary, width, 4)) std::cout << l << "\n";
    return;
  }
  Report r;
  r.title = "Catalog check";
  r.meta = output_meta();
  Table t{"warnings", "Warnings", {"file", "json_path", "message"}, {}, {}};
  Json warnings = Json::array();
  for (const auto& w : findings) {
    t.add({w.file, w.json_path, w.message});
    warnings.push_back({{"file", w.file}, {"json_path", w.json_path}, {"message", w.message}});
  }
  r.tables.push_back(t);
  r.messages.push_back(summary);
  r.json["ok"] = true;
  r.json["warnings"] = warnings;
  r.json["catalog_hash"] = cat.content_hash;
  std::cout << render(r, parse_format(format));
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
