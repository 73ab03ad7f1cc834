// Shared plumbing for the moeplan subcommands: each subcommand lives in its
// own file pair (options struct + setup + run) and registers itself here, so
// adding one touches no other file.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "moeplan/catalog.hpp"
#include "moeplan/output_set.hpp"
#include "moeplan/report.hpp"

namespace moeplan::cli {

struct GlobalOptions {
  std::string data_dir;  // "" = bundled catalogs
  std::string command_line;
  int threads = 2;
  // Files this run reads (besides the catalog): no output may overwrite one.
  std::vector<std::string> inputs;  // --threads: Monte Carlo (plan) and search (recommend) workers
};
GlobalOptions& global();

using SetupFn = std::function<void(CLI::App& parent)>;
struct Registration {
  std::string name;
  SetupFn setup;
};
std::vector<Registration>& registry();

struct RegisterCommand {
  RegisterCommand(std::string name, SetupFn setup);
};

// Catalog from --data (or the bundled one), loaded once per process.
const Catalog& catalog();

// Provenance for outputs.
OutputMeta output_meta(const std::string& calibration_file = "");

// Adds --format (table|json|csv|md) and --output FILE to a subcommand.
struct OutputOptions {
  std::string format = "table";
  std::string output;  // "" = stdout
};
void add_output_options(CLI::App& app, OutputOptions& o,
                        std::vector<std::string> formats = {"table", "json", "csv", "md"});

// An output set that refuses to overwrite the catalog files or global().inputs.
OutputSet output_set();

// Renders and writes to stdout or atomically to --output.
void emit(const Report& r, const OutputOptions& o);

}  // namespace moeplan::cli
