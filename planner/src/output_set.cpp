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

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

fs::path temp_beside(const fs::path& target, const std::string& tag) {
  fs::path dir = target.parent_path();
  if (dir.empty()) dir = ".";
  return dir /
         (".tmp-" + target.filename().string() + "-" + tag + "-" + std::to_string(::getpid()));
}

// A destination that exists and is neither a regular file nor a directory, after symlinks: a
// device (/dev/null, a terminal), a FIFO, a socket; /dev/stdout resolves to one of them. Renaming
// a file over it would replace the device itself (as root, /dev/null), so it is written through.
bool is_stream(const fs::path& target) {
  std::error_code ec;
  const fs::file_status st = fs::status(target, ec);
  return !ec && fs::exists(st) && !fs::is_regular_file(st) && !fs::is_directory(st);
}

// Copies the finished temporary file into a stream destination.
int copy_into(const fs::path& from, const fs::path& to) {
  std::ifstream in(from, std::ios::binary);
  errno = 0;
  std::ofstream out(to, std::ios::binary);
  if (!in || !out) return errno ? errno : EIO;
  out << in.rdbuf();
  out.flush();
  return out ? 0 : (errno ? errno : EIO);
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
    if (is_stream(target)) {  // written through, not replaced: only the stream must be writable
      if (::access(target.c_str(), W_OK) != 0)
        throw Error(o.flag + " " + o.path + ": " + os_error(errno));
      continue;
    }
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

int OutputSet::link(const std::string& from, const std::string& to) const {
  if (ops_.link) return ops_.link(from, to);
  return ::link(from.c_str(), to.c_str()) == 0 ? 0 : errno;
}

int OutputSet::rename(const std::string& from, const std::string& to) const {
  if (ops_.rename) return ops_.rename(from, to);
  return ::rename(from.c_str(), to.c_str()) == 0 ? 0 : errno;
}

void OutputSet::commit() {
  check();
  const std::size_t n = outputs_.size();
  auto remove_files = [](const std::vector<fs::path>& paths) {
    std::error_code ec;
    for (const auto& p : paths)  // files only: a directory of that name is not ours
      if (!p.empty() && !fs::is_directory(fs::symlink_status(p, ec))) fs::remove(p, ec);
  };
  // 1. Every file to a temporary beside its destination (a stream's in the temporary
  //    directory: /dev is no place for it). A writer's message names the option and the user's
  //    path, not the temporary file.
  std::vector<fs::path> temps;
  std::vector<bool> stream(n, false);
  for (std::size_t i = 0; i < n; ++i) {
    stream[i] = is_stream(outputs_[i].path);
    std::error_code tmp_ec;
    temps.push_back(stream[i] ? temp_beside(fs::temp_directory_path(tmp_ec) / "moeplan-stream",
                                            "new" + std::to_string(i))
                              : temp_beside(outputs_[i].path, "new" + std::to_string(i)));
    try {
      outputs_[i].write(temps.back().string());
    } catch (const Error& e) {
      remove_files(temps);
      const std::string msg =
          replace_all(e.what(), temps.back().string(), outputs_[i].flag + " " + outputs_[i].path);
      if (msg == e.what()) throw;
      throw Error(msg);
    } catch (...) {
      remove_files(temps);
      throw;
    }
  }
  // 2. Keep each file being replaced — a hard link beside it, or, where no link
  //    can be made, the file itself renamed aside — then rename the new one into
  //    place. On a failure every kept file goes back and the new ones go away;
  //    a kept file that cannot be put back stays where it is and the error says
  //    where: the user's file is never removed.
  enum class Kept { none, linked, moved };
  std::vector<fs::path> backups(n);
  std::vector<Kept> kept(n, Kept::none);
  std::vector<bool> placed(n, false);
  auto fail = [&](std::size_t i, const std::string& problem) {
    std::string lost;
    for (std::size_t k = 0; k <= i; ++k) {
      const std::string& path = outputs_[k].path;
      std::error_code e;
      if (kept[k] == Kept::linked && !placed[k]) {
        fs::remove(backups[k], e);  // the old file never left its place
      } else if (kept[k] != Kept::none) {
        if (rename(backups[k].string(), path) != 0)
          lost += "; the old " + path + " is kept as " + backups[k].string();
      } else if (placed[k]) {
        fs::remove(path, e);  // a new file where there was none
      }
    }
    remove_files(temps);
    throw Error(outputs_[i].flag + " " + outputs_[i].path + ": " + problem + lost);
  };
  for (std::size_t i = 0; i < n; ++i) {
    if (stream[i]) continue;  // written through once every file is in place (3.)
    const fs::path target(outputs_[i].path);
    std::error_code ec;
    if (fs::exists(fs::symlink_status(target, ec))) {
      backups[i] = temp_beside(target, "old" + std::to_string(i));
      const int link_err = link(target.string(), backups[i].string());
      if (link_err == 0) {
        kept[i] = Kept::linked;
      } else if (const int err = rename(target.string(), backups[i].string()); err == 0) {
        kept[i] = Kept::moved;
      } else {
        backups[i].clear();
        fail(i, "cannot keep the old file while replacing it (link: " + os_error(link_err) +
                    ", rename: " + os_error(err) + ")");
      }
    }
    if (const int err = rename(temps[i].string(), target.string()); err != 0)
      fail(i, "cannot move the new file into place: " + os_error(err));
    placed[i] = true;
    temps[i].clear();
  }
  remove_files(backups);
  // 3. Streams last, so a failed file above leaves them untouched. What a stream has taken
  //    cannot be taken back; the error says so.
  for (std::size_t i = 0; i < n; ++i) {
    if (!stream[i]) continue;
    const int err = copy_into(temps[i], outputs_[i].path);
    remove_files({temps[i]});
    temps[i].clear();
    if (err != 0) {
      remove_files(temps);
      throw Error(outputs_[i].flag + " " + outputs_[i].path + ": write failed: " + os_error(err));
    }
  }
}

}  // namespace moeplan
