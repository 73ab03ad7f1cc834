#include "moeplan/output_set.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include <unistd.h>

#include "moeplan/errors.hpp"

namespace moeplan {

namespace fs = std::filesystem;

namespace {

std::string os_error(int err) {
  return std::strerror(err);
}

fs::path temp_beside(const fs::path& target, const std::string& tag) {
  fs::path dir = target.parent_path();
  if (dir.empty()) dir = ".";
  return dir /
         (".tmp-" + target.filename().string() + "-" + tag + "-" + std::to_string(::getpid()));
}

void write_text(const std::string& path, const std::string& content) {
  errno = 0;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(path + ": cannot create file: " + os_error(errno ? errno : EIO));
  out << content;
  out.flush();
  if (!out) throw Error(path + ": write failed: " + os_error(errno ? errno : EIO));
}

}  // namespace

bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec1, ec2;
  if (fs::exists(a, ec1) && fs::exists(b, ec2)) {
    std::error_code ec;
    if (fs::equivalent(a, b, ec)) return true;
  }
  std::error_code e1, e2;
  const fs::path ca = fs::weakly_canonical(fs::absolute(a), e1);
  const fs::path cb = fs::weakly_canonical(fs::absolute(b), e2);
  if (e1 || e2) return fs::absolute(a).lexically_normal() == fs::absolute(b).lexically_normal();
  return ca == cb;
}

void OutputSet::add_input(const std::string& path) {
  if (!path.empty()) inputs_.push_back(path);
}

void OutputSet::add_inputs_in(const std::string& dir) {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_regular_file(ec)) inputs_.push_back(it->path().string());
}

void OutputSet::add(const std::string& path, std::string content, std::string flag) {
  auto text = std::make_shared<std::string>(std::move(content));
  outputs_.push_back(
      {path, std::move(flag), [text](const std::string& p) { write_text(p, *text); }});
}

void OutputSet::add(const std::string& path, std::function<void(const std::string&)> writer,
                    std::string flag) {
  outputs_.push_back({path, std::move(flag), std::move(writer)});
}

void OutputSet::check() const {
  for (std::size_t i = 0; i < outputs_.size(); ++i) {
    const Output& o = outputs_[i];
    if (o.path.empty()) throw Error(o.flag + ": empty file name");
    for (const auto& in : inputs_)
      if (same_file(o.path, in))
        throw Error(o.flag + " " + o.path + ": is an input of this run (" + in +
                    "); refusing to overwrite it");
    for (std::size_t k = 0; k < i; ++k)
      if (same_file(o.path, outputs_[k].path))
        throw Error(o.flag + " " + o.path + ": is also the destination of " + outputs_[k].flag +
                    "; give each output its own file");
    const fs::path target(o.path);
    std::error_code ec;
    if (fs::is_directory(target, ec))
      throw Error(o.flag + " " + o.path + ": " + os_error(EISDIR) + " (give a file name)");
    fs::path dir = target.parent_path();
    if (dir.empty()) dir = ".";
    if (!fs::is_directory(dir, ec))
      throw Error(o.flag + " " + o.path + ": directory " + dir.string() + " does not exist");
    if (::access(dir.c_str(), W_OK) != 0)
      throw Error(o.flag + " " + o.path + ": cannot write in " + dir.string() + ": " +
                  os_error(errno));
    if (fs::exists(target, ec) && ::access(target.c_str(), W_OK) != 0)
      throw Error(o.flag + " " + o.path + ": " + os_error(errno));
  }
}

void OutputSet::commit() {
  check();
  std::vector<fs::path> temps;
  auto remove_all = [](const std::vector<fs::path>& paths) {
    std::error_code ec;
    for (const auto& p : paths) fs::remove(p, ec);
  };
  // 1. Every file to a temporary beside its destination.
  try {
    for (std::size_t i = 0; i < outputs_.size(); ++i) {
      temps.push_back(temp_beside(outputs_[i].path, "new" + std::to_string(i)));
      outputs_[i].write(temps.back().string());
    }
  } catch (...) {
    remove_all(temps);
    throw;
  }
  // 2. Keep a hard link to each file being replaced, then rename into place;
  //    on a failure, put the replaced files back and remove the new ones.
  std::vector<fs::path> backups(outputs_.size());
  std::vector<bool> placed(outputs_.size(), false);
  for (std::size_t i = 0; i < outputs_.size(); ++i) {
    const fs::path target(outputs_[i].path);
    std::error_code ec;
    if (fs::exists(target, ec)) {
      backups[i] = temp_beside(target, "old" + std::to_string(i));
      fs::create_hard_link(target, backups[i], ec);
      if (ec) backups[i].clear();
    }
    if (::rename(temps[i].c_str(), target.c_str()) != 0) {
      const int err = errno;
      for (std::size_t k = 0; k < i; ++k) {
        std::error_code e;
        if (!backups[k].empty())
          fs::rename(backups[k], outputs_[k].path, e);
        else if (placed[k])
          fs::remove(outputs_[k].path, e);
      }
      remove_all(temps);
      remove_all(backups);
      throw Error(outputs_[i].flag + " " + outputs_[i].path +
                  ": cannot move the new file into place: " + os_error(err));
    }
    placed[i] = true;
  }
  remove_all(backups);
}

}  // namespace moeplan
