// moeplan: plan self-hosted MoE inference. Parses flags, calls the planner
// library, prints. Every error is caught here once and mapped to the exit-code
// table shared with moeprobe (apps/common/cli_common.hpp, README): 0 ok, 1 bad
// input or usage, 2 internal error, 3 a check failed, 4 unavailable.
#include <clocale>
#include <iostream>

#include "cli.hpp"
#include "cli_common.hpp"
#include "moeplan/errors.hpp"

int main(int argc, char** argv) {
  namespace cc = moeplan::cli_common;
  std::setlocale(LC_NUMERIC, "C");
  CLI::App app{"moeplan: size, speed and cost self-hosted MoE LLM inference"};
  app.require_subcommand(1);
  cc::allow_global_flags_anywhere(app);
  app.set_version_flag("--version",
                       "moeplan " + moeplan::tool_version() + " (" + moeplan::git_sha() + ")");
  auto& g = moeplan::cli::global();
  app.add_option("--data", g.data_dir, "Catalog directory (default: the bundled data/)")
      ->envname("MOEPLAN_DATA");
  app.add_option("--threads", g.threads,
                 "Worker threads for the Monte Carlo (plan) and the search (recommend)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cc::add_wide_flag(app);
  for (int i = 0; i < argc; ++i) g.command_line += (i ? " " : "") + std::string(argv[i]);
  for (auto& reg : moeplan::cli::registry()) reg.setup(app);
  cc::require_finite_numbers(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cc::exit_for_parse_error(app, e);
  } catch (const moeplan::CheckFailed& e) {
    std::cerr << "error: " << e.what() << "\n";
    return cc::kExitCheckFailed;
  } catch (const moeplan::Unavailable& e) {
    std::cerr << "error: " << e.what() << "\n";
    return cc::kExitUnavailable;
  } catch (const moeplan::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return cc::kExitInput;
  } catch (const std::exception& e) {
    std::cerr << "internal error: " << e.what() << "\n";
    return cc::kExitInternal;
  }
  return cc::kExitOk;
}
