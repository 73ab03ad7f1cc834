// The files one run writes, checked together and written as a set (all or
// none): no destination may be one of the run's inputs or another output of
// the same run, every destination is checked before any is written, every
// file goes to a temporary file first, and only when all are written are they
// renamed into place (a failed rename puts the earlier ones back). A file being
// replaced is kept until the whole set is in place: as a hard link beside it,
// or, where no hard link can be made (EMLINK, a filesystem without links), by
// renaming it aside; a failed run renames it back, so it is never lost. A destination that is
// not a regular file (/dev/null, /dev/stdout, a FIFO) is written through, never replaced. Errors
// name the option and the user's path (never a temporary file) and carry the
// operating system's own text (strerror), never "Success".
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace moeplan {

class OutputSet {
 public:
  // A path the run reads (scenario, calibration, CSV, a catalog file).
  void add_input(const std::string& path);
  // Every regular file directly in `dir` (the catalog directory).
  void add_inputs_in(const std::string& dir);
  // An output with its content.
  void add(const std::string& path, std::string content, std::string flag = "--output");
  // An output produced by a writer that creates the file it is given
  // (a workbook); `flag` names the option in messages.
  void add(const std::string& path, std::function<void(const std::string& path)> writer,
           std::string flag = "--output");

  // Throws Error when a destination is an input, repeats another output, is a
  // directory, or its directory does not exist or cannot be written.
  void check() const;
  // check(), then writes every file as described above.
  void commit();

  // Test seam: the link(2) and rename(2) that commit() uses to keep and to
  // place files, so a test can make them fail (EMLINK, EBUSY) on any
  // filesystem. Each returns 0 or an errno value; an unset one is the real call.
  struct FileOps {
    std::function<int(const std::string&from, const std::string&to)> link, rename;
  };
  void set_file_ops(FileOps ops) { ops_ = std::move(ops); }

 private:
  struct Output {
    std::string path, flag;
    std::function<void(const std::string&)> write;
  };
  std::vector<std::string> inputs_;
  std::vector<Output> outputs_;
  FileOps ops_;
  int link(const std::string& from, const std::string& to) const;
  int rename(const std::string& from, const std::string& to) const;
};

// True when `a` and `b` name the same file (after resolving ., .., symlinks,
// and hard links when both exist).
bool same_file(const std::string& a, const std::string& b);

}  // namespace moeplan
