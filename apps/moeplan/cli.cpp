#include "cli.hpp"

#include <iostream>
#include <memory>

namespace moeplan::cli {

GlobalOptions& global() {
  static GlobalOptions g;
  return g;
}

std::vector<Registration>& registry() {
  static std::vector<Registration> r;
  return r;
}

RegisterCommand::RegisterCommand(std::string name, SetupFn setup) {
  registry().push_back({std::move(name), std::move(setup)});
}

const Catalog& catalog() {
  static std::unique_ptr<Catalog> c;
  if (!c) {
    const std::string dir = global().data_dir.empty() ? default_data_dir() : global().data_dir;
    c = std::make_unique<Catalog>(load_catalog(dir));
    for (const auto& w : c->warnings)
      std::cerr << "warning: " << w.file << ": " << w.json_path << ": " << w.message << "\n";
  }
  return *c;
}

OutputMeta output_meta(const std::string& calibration_file) {
  OutputMeta m;
  m.tool_version = tool_version();
  m.git_sha = git_sha();
  m.catalog_hash = catalog().content_hash;
  m.calibration_file = calibration_file;
  m.command_line = global().command_line;
  return m;
}

void add_output_options(CLI::App& app, OutputOptions& o, std::vector<std::string> formats) {
  app.add_option("--format", o.format, "Output format")
      ->check(CLI::IsMember(formats))
      ->capture_default_str();
  app.add_option("--output,-o", o.output, "Write to FILE (atomically) instead of stdout");
}

OutputSet output_set() {
  OutputSet set;
  set.add_inputs_in(global().data_dir.empty() ? default_data_dir() : global().data_dir);
  for (const auto& in : global().inputs) set.add_input(in);
  return set;
}

void emit(const Report& r, const OutputOptions& o) {
  const std::string text = render(r, parse_format(o.format));
  if (o.output.empty()) {
    std::cout << text;
    return;
  }
  OutputSet set = output_set();
  set.add(o.output, text, "--output");
  set.commit();
}

}  // namespace moeplan::cli
