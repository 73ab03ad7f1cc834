// moeplan: plan self-hosted MoE inference. Parses flags, calls the planner
// library, prints. Every error is caught here once: message to stderr, exit 1
// for bad input or usage, 2 for internal errors, a command's own status for
// ExitStatusError (perf: 3 = the build does not fit).
#include <clocale>
#include <iostream>

#include "cli.hpp"
#include "moeplan/errors.hpp"

int main(int argc, char** argv) {
  std::setlocale(LC_NUMERIC, "C");
  CLI::App app{"moeplan: size, speed and cost self-hosted MoE LLM inference"};
  app.require_subcommand(1);
  app.set_version_flag("--version",
                       "moeplan " + moeplan::tool_version() + " (" + moeplan::git_sha() + ")");
  auto& g = moeplan::cli::global();
  app.add_option("--data", g.data_dir, "Catalog directory (default: the bundled data/)")
      ->envname("MOEPLAN_DATA");
  for (int i = 0; i < argc; ++i) g.command_line += (i ? " " : "") + std::string(argv[i]);
  for (auto& reg : moeplan::cli::registry()) reg.setup(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const moeplan::ExitStatusError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return e.status();
  } catch (const moeplan::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "internal error: " << e.what() << "\n";
    return 2;
  }
  return 0;
}
