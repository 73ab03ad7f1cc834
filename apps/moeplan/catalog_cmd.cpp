// `moeplan catalog check|list`: validate the catalogs, list their entries.
#include <fmt/format.h>

#include <iostream>

#include "cli.hpp"
#include "moeplan/catalog_report.hpp"

namespace moeplan::cli {
namespace {

struct ListOptions {
  std::string what;
  OutputOptions out;
};

void run_check() {
  const std::string dir = global().data_dir.empty() ? default_data_dir() : global().data_dir;
  const Catalog cat = load_catalog(dir);  // throws on the first error
  const auto findings = check_catalog(cat);
  std::size_t errors = 0, warnings = 0;
  for (const auto& w : findings) {
    const char* level = w.level == FindingLevel::error  ? "error"
                        : w.level == FindingLevel::note ? "note"
                                                        : "warning";
    errors += w.level == FindingLevel::error;
    warnings += w.level == FindingLevel::warning;
    std::cout << level << ": " << w.file << ": " << w.json_path << ": " << w.message << "\n";
  }
  if (errors > 0) throw Error(fmt::format("catalog check failed: {} error(s) above", errors));
  std::cout << fmt::format(
      "catalog OK: {} models, {} devices, {} weight formats, {} KV formats, {} engines, {} API "
      "prices, {} rental prices, {} hardware prices, {} sites, {} FX rates; {} warnings; hash {}\n",
      cat.models.size(), cat.devices.size(), cat.weight_formats.size(), cat.kv_formats.size(),
      cat.engines.size(), cat.api_prices.size(), cat.rental_prices.size(),
      cat.hardware_prices.size(), cat.sites.size(), cat.fx_rates.size(), warnings,
      cat.content_hash);
}

void setup(CLI::App& parent) {
  auto* app = parent.add_subcommand("catalog", "Validate and list the catalogs in data/");
  app->require_subcommand(1);
  auto* check = app->add_subcommand("check", "Validate every catalog file (exit 1 on errors)");
  check->callback([] { run_check(); });
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
