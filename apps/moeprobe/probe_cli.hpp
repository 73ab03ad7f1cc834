// moeprobe subcommands: one file pair each (options + setup + run), sharing
// the global flags and the catalog loaded on demand.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "moeplan/catalog.hpp"

namespace moeprobe::cli {

struct Global {
  std::string data_dir;  // "" = bundled catalogs
  std::string command_line;
  int threads = 0;  // 0 = all cores
};
Global& global();

// The catalog, loaded once (only when a catalog model or device is named).
const moeplan::Catalog& catalog();
// A model by id: built-in synthetic ones first, then the catalog.
moeplan::Model model(const std::string& id);

// Exit codes: the table shared with moeplan (apps/common/cli_common.hpp):
// 0 ok, 1 bad input or usage, 2 internal error, 3 verification failure,
// 4 backend unavailable.
inline constexpr int kExitVerification = 3;
inline constexpr int kExitUnavailable = 4;

// --format for the printing subcommands.
void add_format_option(CLI::App& sub, std::string& format);

// Each subcommand's setup; its callback throws, main maps exceptions to exit codes.
void setup_run(CLI::App& app, int& exit_code);
void setup_check(CLI::App& app, int& exit_code);
void setup_list(CLI::App& app, int& exit_code);
// nccl and peaks (CUDA builds; elsewhere they exit 4).
void setup_gpu_suites(CLI::App& app, int& exit_code);
// load: an OpenAI-compatible endpoint under load (docs/load.md).
void setup_load(CLI::App& app, int& exit_code);
// compare: calibration rows against production figures (any build).
void setup_compare(CLI::App& app, int& exit_code);

}  // namespace moeprobe::cli
