// moeprobe: measure this machine for the planner. Parses flags, calls the probe
// library, prints. Errors are caught here once; exit codes in probe_cli.hpp.
#include <clocale>
#include <iostream>
#include <memory>

#include "cli_common.hpp"
#include "moeplan/errors.hpp"
#include "moeplan/json_read.hpp"
#include "moeplan/report.hpp"
#include "moeprobe/backend.hpp"
#include "moeprobe/harness.hpp"
#include "moeprobe/shapes.hpp"
#include "probe_cli.hpp"

namespace moeprobe::cli {

Global& global() {
  static Global g;
  return g;
}

const moeplan::Catalog& catalog() {
  static std::unique_ptr<moeplan::Catalog> c;
  if (!c)
    c = std::make_unique<moeplan::Catalog>(moeplan::load_catalog(
        global().data_dir.empty() ? moeplan::default_data_dir() : global().data_dir));
  return *c;
}

moeplan::Model model(const std::string& id) {
  for (const auto& s : synthetic_model_ids())
    if (s == id) return find_model(id, nullptr);
  return find_model(id, &catalog());
}

}  // namespace moeprobe::cli

int main(int argc, char** argv) {
  std::setlocale(LC_NUMERIC, "C");
  namespace pc = moeprobe::cli;
  namespace cc = moeplan::cli_common;
  CLI::App app{"moeprobe: measure a CPU or GPU node and write a calibration file for moeplan"};
  app.require_subcommand(1);
  cc::allow_global_flags_anywhere(app);
  app.set_version_flag("--version", "moeprobe " + std::string(moeprobe::kProbeVersion) +
                                        " (moeplan " + moeplan::tool_version() + ", " +
                                        moeplan::git_sha() + ")");
  auto& g = pc::global();
  app.add_option("--data", g.data_dir, "Catalog directory (default: the bundled data/)")
      ->envname("MOEPLAN_DATA");
  app.add_option("--threads", g.threads, "Worker threads (default: all cores)")
      ->check(CLI::Range(0, 1024));
  cc::add_wide_flag(app);
  for (int i = 0; i < argc; ++i) g.command_line += (i ? " " : "") + std::string(argv[i]);
  int exit_code = 0;
  pc::setup_run(app, exit_code);
  pc::setup_check(app, exit_code);
  pc::setup_list(app, exit_code);
  pc::setup_gpu_suites(app, exit_code);
  pc::setup_load(app, exit_code);
  pc::setup_compare(app, exit_code);
  cc::require_finite_numbers(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cc::exit_for_parse_error(app, e);
  } catch (const moeprobe::VerificationError& e) {
    std::cerr << "verification failed: " << e.what() << "\n";
    return pc::kExitVerification;
  } catch (const moeprobe::BackendUnavailable& e) {
    std::cerr << "error: " << e.what() << "\n";
    return pc::kExitUnavailable;
  } catch (const moeplan::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return cc::kExitInput;
  } catch (const std::exception& e) {
    std::cerr << "internal error: " << e.what() << "\n";
    return cc::kExitInternal;
  }
  return exit_code;
}
