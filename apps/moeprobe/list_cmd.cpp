// moeprobe list: backends, whether they are built, the device each sees.
#include <iostream>
#include <memory>

#include "moeplan/report.hpp"
#include "moeprobe/backend.hpp"
#include "probe_cli.hpp"

namespace moeprobe::cli {

namespace {

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

void run(const std::string& format, int& exit_code) {
  moeplan::Report rep;
  rep.title = "moeprobe backends";
  moeplan::Table t;
  t.name = "backends";
  t.title = "Backends";
  t.columns = {"backend", "status", "device", "memory GB", "cores", "threads", "dtypes", "ops"};
  for (const auto& b : list_backends()) {
    if (b.available) {
      // Built is not the same as usable: a CUDA build on a machine without a GPU
      // (or driver) lists the backend with the reason instead of failing.
      try {
        auto be = make_backend(b.name, global().threads);
        const DeviceIdentity id = be->identity();
        t.add({b.name, "available", id.name, moeplan::Cell(id.memory_gb, 1), id.cores, id.threads,
               join(b.dtypes), join(b.ops)});
      } catch (const BackendUnavailable& e) {
        t.add({b.name, std::string("built, no device: ") + e.what(), moeplan::Cell(),
               moeplan::Cell(), moeplan::Cell(), moeplan::Cell(), join(b.dtypes), join(b.ops)});
      }
    } else {
      t.add({b.name, b.reason, moeplan::Cell(), moeplan::Cell(), moeplan::Cell(), moeplan::Cell(),
             join(b.dtypes), join(b.ops)});
    }
  }
  rep.tables.push_back(t);
  rep.meta.tool_version = moeplan::tool_version();
  rep.meta.git_sha = moeplan::git_sha();
  std::cout << moeplan::render(rep, moeplan::parse_format(format));
  exit_code = 0;
}

}  // namespace

void add_format_option(CLI::App& sub, std::string& format) {
  sub.add_option("--format", format, "Output format")
      ->check(CLI::IsMember({"table", "json", "csv", "md"}))
      ->capture_default_str();
}

void setup_list(CLI::App& app, int& exit_code) {
  CLI::App* sub =
      app.add_subcommand("list", "Backends, the device each sees, and what each supports");
  auto format = std::make_shared<std::string>("table");
  add_format_option(*sub, *format);
  sub->callback([format, &exit_code] { run(*format, exit_code); });
}

}  // namespace moeprobe::cli
