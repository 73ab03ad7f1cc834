// Validation against published measurements: docs/performance.md §Validation.
#include "moeplan/validate_perf.hpp"

#include "moeplan/layout.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>

#include "moeplan/errors.hpp"
#include "moeplan/sizing.hpp"
#include "moeplan/text_parse.hpp"

namespace moeplan {

CsvTable parse_csv(const std::string& text, const std::string& file_label) {
  CsvTable t;
  std::vector<std::string> rec;
  std::string field;
  bool in_quotes = false, field_started = false, any = false;
  int line = 1, rec_line = 1;
  auto end_field = [&] {
    rec.push_back(std::move(field));
    field.clear();
    field_started = false;
  };
  auto end_record = [&] {
    end_field();
    const bool blank = rec.size() == 1 && rec[0].empty();
    if (!blank) {
      if (t.header.empty()) {
        t.header = std::move(rec);
      } else {
        if (rec.size() != t.header.size())
          throw InputError(
              file_label, fmt::format("line {}", rec_line),
              fmt::format("{} fields, but the header has {}", rec.size(), t.header.size()));
        t.rows.push_back(std::move(rec));
        t.lines.push_back(rec_line);
      }
    }
    rec.clear();
    any = false;
  };
  const std::size_t n = text.size();
  std::size_t i = 0;
  if (n >= 3 && text.compare(0, 3, "\xEF\xBB\xBF") == 0) i = 3;  // UTF-8 byte-order mark
  for (; i < n; ++i) {
    const char c = text[i];
    if (!any) {
      rec_line = line;
      any = true;
    }
    if (in_quotes) {
      if (c == '"') {
        if (i + 1 < n && text[i + 1] == '"') {
          field.push_back('"');
          ++i;
        } else {
          in_quotes = false;
        }
      } else {
        if (c == '\n') ++line;
        field.push_back(c);
      }
      continue;
    }
    if (c == '"' && !field_started) {
      in_quotes = true;
      field_started = true;
    } else if (c == ',') {
      end_field();
    } else if (c == '\r' && i + 1 < n && text[i + 1] == '\n') {
      // CRLF: handled at the '\n'.
    } else if (c == '\n') {
      end_record();
      ++line;
    } else {
      field.push_back(c);
      field_started = true;
    }
  }
  if (in_quotes)
    throw InputError(file_label, fmt::format("line {}", rec_line), "unterminated quoted field");
  if (any) end_record();
  if (t.header.empty()) throw InputError(file_label, "line 1", "empty file: expected a header row");
  return t;
}

const std::vector<std::string>& benchmark_columns() {
  static const std::vector<std::string> cols{
      "model",  "gpu",          "gpu_count",     "precision",   "kv_precision",
      "engine", "input_tokens", "output_tokens", "concurrency", "metric",
      "value",  "unit",         "source"};
  return cols;
}

const char* split_name(Split s) {
  return s == Split::fit ? "fit" : "holdout";
}

// The unit a metric's value is given in: the published file's `unit` column must say it.
const char* metric_unit(Metric m) {
  return m == Metric::tpot_ms || m == Metric::ttft_ms ? "ms" : "tok/s";
}

const char* metric_name(Metric m) {
  switch (m) {
    case Metric::decode_tok_s_single:
      return "decode_tok_s_single";
    case Metric::output_tok_s:
      return "output_tok_s";
    case Metric::total_tok_s:
      return "total_tok_s";
    case Metric::prefill_tok_s:
      return "prefill_tok_s";
    case Metric::tpot_ms:
      return "tpot_ms";
    case Metric::ttft_ms:
      return "ttft_ms";
  }
  return "";
}

namespace {

constexpr Metric kMetrics[] = {
    Metric::decode_tok_s_single, Metric::output_tok_s, Metric::total_tok_s,
    Metric::prefill_tok_s,       Metric::tpot_ms,      Metric::ttft_ms};

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

[[noreturn]] void bad_cell(const std::string& file, int line, const std::string& col,
                           const std::string& problem) {
  throw InputError(file, fmt::format("line {}, column '{}'", line, col), problem);
}

double number_cell(const std::string& file, int line, const std::string& col,
                   const std::string& v) {
  // Decimal only: strtod would read "0x10" as 16.
  const std::optional<double> d =
      trim(v).find_first_of("xXpP") == std::string::npos ? parse_finite(trim(v)) : std::nullopt;
  if (!d) bad_cell(file, line, col, fmt::format("expected a number, found \"{}\"", v));
  return *d;
}

std::optional<long long> count_cell(const std::string& file, int line, const std::string& col,
                                    const std::string& v, long long min) {
  if (trim(v).empty()) return std::nullopt;
  const double d = number_cell(file, line, col, v);
  if (d != std::floor(d) || d < static_cast<double>(min) || d > 1e12)
    bad_cell(file, line, col, fmt::format("expected a whole number ≥ {}, found \"{}\"", min, v));
  return static_cast<long long>(d);
}

// A prefill-only row (0 output tokens) can only carry prefill metrics; a decode-only row
// (0 input tokens) only decode metrics.
void check_token_counts(const std::string& file, const BenchmarkRow& row) {
  const bool prefill_metric = row.metric == Metric::prefill_tok_s || row.metric == Metric::ttft_ms;
  if (row.output_tokens && *row.output_tokens == 0 && !prefill_metric)
    bad_cell(file, row.line, "output_tokens",
             fmt::format("0 output tokens (prefill only) cannot give {}", metric_name(row.metric)));
  if (row.input_tokens && *row.input_tokens == 0 && prefill_metric)
    bad_cell(file, row.line, "input_tokens",
             fmt::format("0 input tokens (decode only) cannot give {}", metric_name(row.metric)));
}

}  // namespace

Json benchmark_cell_json(const std::string& column, const std::string& cell) {
  static const std::vector<std::string> numeric{
      "gpu_count", "input_tokens", "output_tokens",  "concurrency",
      "value",     "nodes",        "max_num_tokens", "admission_interval_steps"};
  const std::string name = trim(column);
  if (std::find(numeric.begin(), numeric.end(), name) == numeric.end()) return cell;
  const std::string text = trim(cell);
  if (text.empty()) return nullptr;
  const std::optional<double> d = parse_finite(text);
  if (!d) return cell;  // the reader refuses such a row; kept as written all the same
  if (*d == std::floor(*d) && std::fabs(*d) <= 9e15) return static_cast<long long>(*d);
  return *d;
}

Split split_for(const BenchmarkRow& r) {
  auto opt = [](const std::optional<long long>& v) { return v ? std::to_string(*v) : ""; };
  const std::string key = r.model + '|' + r.gpu + '|' + std::to_string(r.gpu_count) + '|' +
                          r.precision + '|' + r.kv_precision + '|' + r.engine + '|' +
                          opt(r.input_tokens) + '|' + opt(r.output_tokens) + '|' +
                          opt(r.concurrency) + '|' + metric_name(r.metric) + '|' + r.source_family;
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : key) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h % 3 == 0 ? Split::holdout : Split::fit;
}

namespace {

// The columns a benchmark file may add after the required ones (§Validation).
struct OptionalColumns {
  std::optional<std::size_t> family, nodes, arrivals, kv_implied, deployment, layout, spec,
      max_num_tokens, admission;
};

OptionalColumns optional_columns(const std::vector<std::string>& header) {
  OptionalColumns c;
  for (std::size_t i = 0; i < header.size(); ++i) {
    const std::string h = trim(header[i]);
    if (h == "source_family") c.family = i;
    if (h == "nodes") c.nodes = i;
    if (h == "arrivals") c.arrivals = i;
    if (h == "kv_precision_implied") c.kv_implied = i;
    if (h == "deployment") c.deployment = i;
    if (h == "layout") c.layout = i;
    if (h == "spec") c.spec = i;
    if (h == "max_num_tokens") c.max_num_tokens = i;
    if (h == "admission_interval_steps") c.admission = i;
  }
  return c;
}

// A text cell read by `parse` (which throws Error on bad text): the error names the column.
template <class Parse>
auto parsed_cell(const std::string& file, int line, const char* col, const std::string& v,
                 Parse parse) {
  try {
    return parse(trim(v));
  } catch (const InputError&) {
    throw;
  } catch (const Error& e) {
    bad_cell(file, line, col, e.what());
  }
}

// The stated layout must split every engine group of the row: the whole count, one replica, or
// each prefill and decode worker.
void check_layout_fits(const std::string& file, int line, const BenchmarkRow& row) {
  const int per_group = std::max(1, row.layout.tp) * row.layout.pp;
  if (per_group == 1) return;
  const Deployment& d = row.deployment;
  std::vector<std::pair<const char*, int>> groups;
  if (d.kind == Deployment::Kind::disaggregated)
    groups = {{"a prefill worker's", d.prefill_gpus}, {"a decode worker's", d.decode_gpus}};
  else if (d.kind == Deployment::Kind::replicas)
    groups = {{"a replica's", row.gpu_count / d.replicas}};
  else
    groups = {{"gpu_count", row.gpu_count}};
  for (const auto& [what, gpus] : groups)
    if (gpus % per_group != 0)
      bad_cell(file, line, "layout",
               fmt::format("tp × pp = {} does not divide {} {} GPUs", per_group, what, gpus));
}

// `steady`, `together` with optional `prompts=N` (the client's prompts in all) and `range=R`
// (their lengths' spread), or `once` with an optional `rate=R` (requests per second).
void read_arrivals(const std::string& file, int line, const std::string& cell, BenchmarkRow& row) {
  std::istringstream in(trim(cell));
  std::string mode, tok;
  in >> mode;
  auto bad = [&](const std::string& why) {
    bad_cell(file, line, "arrivals",
             fmt::format("{} (expected \"steady\", \"together\" with optional \"prompts=N\" in "
                         "all and \"range=R\" lengths ratio, or \"once\" with an optional "
                         "\"rate=R\" requests per second), found \"{}\"",
                         why, trim(cell)));
  };
  const std::optional<Arrivals> a = parse_arrivals_mode(mode);
  if (!a) bad("unknown mode");
  row.arrivals = *a;
  while (in >> tok) {
    const auto setting = split_setting(tok);
    const bool once = row.arrivals == Arrivals::once;
    const bool together = row.arrivals == Arrivals::together;
    if (!setting || !((once && setting->first == "rate") ||
                      (together && (setting->first == "prompts" || setting->first == "range"))))
      bad("unexpected setting");
    const std::optional<double> v = parse_finite(setting->second);
    if (setting->first == "rate") {
      if (!v || !(*v > 0)) bad("the rate must be a positive number");
      row.request_rate_per_s = *v;
    } else if (setting->first == "prompts") {
      if (!v || *v < 1 || *v != std::floor(*v) || *v > 65536)
        bad("prompts must be a whole number from 1 to 65,536");
      row.prompts = static_cast<long long>(*v);
    } else {
      if (!v || !(*v > 0 && *v <= 1)) bad("the range ratio must be in (0, 1]");
      row.range_ratio = *v;
    }
  }
  if (row.range_ratio < 1 && row.prompts == 0)
    bad("\"range=R\" describes the lengths of a client's prompts: give \"prompts=N\" too");
  if (row.arrivals == Arrivals::once && !row.concurrency)
    bad("\"once\" needs the wave's size in the concurrency column");
  if (row.prompts > 0 && !row.concurrency)
    bad("\"prompts=N\" needs the client's concurrency in the concurrency column");
  if (row.prompts > 0 && row.concurrency && row.prompts < *row.concurrency)
    bad(fmt::format("{} prompts in all is fewer than the {} in flight", row.prompts,
                    *row.concurrency));
}

void read_optional(const std::string& file, int line, const std::vector<std::string>& cells,
                   const OptionalColumns& c, BenchmarkRow& row) {
  if (c.family) {
    const std::string fam = trim(cells[*c.family]);
    if (!fam.empty()) row.source_family = fam;
  }
  if (c.nodes)
    if (auto n = count_cell(file, line, "nodes", cells[*c.nodes], 1))
      row.nodes = static_cast<int>(*n);
  if (c.arrivals) read_arrivals(file, line, cells[*c.arrivals], row);
  if (c.spec) row.spec = parsed_cell(file, line, "spec", cells[*c.spec], parse_spec);
  if (c.kv_implied) row.kv_precision_implied = trim(cells[*c.kv_implied]);
  if (c.max_num_tokens)
    if (auto n = count_cell(file, line, "max_num_tokens", cells[*c.max_num_tokens], 1))
      row.max_num_tokens = *n;
  if (c.admission)
    if (auto n = count_cell(file, line, "admission_interval_steps", cells[*c.admission], 1)) {
      if (*n > 1000000) bad_cell(file, line, "admission_interval_steps", "at most 1,000,000 steps");
      row.admission_interval_steps = static_cast<int>(*n);
    }
  if (c.layout) row.layout = parsed_cell(file, line, "layout", cells[*c.layout], parse_layout);
  if (c.deployment) {
    const std::string text = trim(cells[*c.deployment]);
    row.deployment = parsed_cell(file, line, "deployment", text, parse_deployment);
    const int g = deployment_gpus(row.deployment, row.gpu_count);
    if (g != row.gpu_count)
      bad_cell(file, line, "deployment",
               fmt::format("'{}' occupies {} GPUs but gpu_count is {}", text, g, row.gpu_count));
    if (row.deployment.kind == Deployment::Kind::replicas &&
        row.gpu_count % row.deployment.replicas != 0)
      bad_cell(file, line, "deployment",
               fmt::format("{} GPUs do not divide into {} replicas", row.gpu_count,
                           row.deployment.replicas));
  }
  check_layout_fits(file, line, row);
  if (row.arrivals == Arrivals::once && row.deployment.kind == Deployment::Kind::disaggregated)
    bad_cell(file, line, "arrivals",
             "a single wave (\"once\") is modelled for one engine group or replicas, not for "
             "prefill/decode workers");
  if (row.prompts > 0 && row.deployment.kind == Deployment::Kind::disaggregated)
    bad_cell(file, line, "arrivals",
             "a client's run of N prompts (\"together prompts=N\") is simulated for one engine "
             "group or replicas, not for prefill/decode workers");
  if (row.admission_interval_steps != 1 && row.deployment.kind == Deployment::Kind::disaggregated)
    bad_cell(file, line, "admission_interval_steps",
             "a scheduler admission interval is modelled for one engine group or replicas, not "
             "for prefill/decode workers");
}

// A JSON document under a name not ending in .json (validate-perf reads those as pilot files)
// would fail as CSV with a field count on line 2, which hides what is wrong.
void refuse_json(const std::string& text, const std::string& file_label) {
  const std::size_t from = text.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0;
  const std::size_t i = text.find_first_not_of(" \t\r\n", from);
  if (i == std::string::npos || text[i] != '{') return;
  const auto line = 1 + std::count(text.begin() + static_cast<std::ptrdiff_t>(from),
                                   text.begin() + static_cast<std::ptrdiff_t>(i), '\n');
  throw InputError(file_label, fmt::format("line {}", line),
                   "the file looks like JSON (it starts with '{'), not a benchmark CSV; a pilot "
                   "file from moeprobe load is read as JSON when its name ends in .json");
}

}  // namespace

BenchmarkFile parse_benchmarks(const std::string& text, const std::string& file_label) {
  refuse_json(text, file_label);
  const CsvTable t = parse_csv(text, file_label);
  BenchmarkFile f;
  f.file = file_label;
  f.header = t.header;
  std::vector<std::size_t> idx;
  for (const auto& col : benchmark_columns()) {
    std::size_t found = t.header.size();
    for (std::size_t i = 0; i < t.header.size(); ++i)
      if (trim(t.header[i]) == col) found = i;
    if (found == t.header.size())
      throw InputError(file_label, "line 1",
                       fmt::format("missing column '{}' (required: {})", col,
                                   fmt::join(benchmark_columns(), ",")));
    idx.push_back(found);
  }
  for (std::size_t i = 0; i < t.header.size(); ++i)
    for (std::size_t k = 0; k < i; ++k)
      if (trim(t.header[i]) == trim(t.header[k]) && !trim(t.header[i]).empty())
        throw InputError(file_label, "line 1",
                         fmt::format("column '{}' is given twice (columns {} and {})",
                                     trim(t.header[i]), k + 1, i + 1));
  const OptionalColumns opt = optional_columns(t.header);
  for (std::size_t r = 0; r < t.rows.size(); ++r) {
    const auto& cells = t.rows[r];
    const int line = t.lines[r];
    auto cell = [&](std::size_t k) { return trim(cells[idx[k]]); };
    BenchmarkRow row;
    row.line = line;
    row.raw = cells;
    row.model = cell(0);
    row.gpu = cell(1);
    if (auto g = count_cell(file_label, line, "gpu_count", cells[idx[2]], 1))
      row.gpu_count = static_cast<int>(*g);
    row.precision = cell(3);
    row.kv_precision = cell(4);
    row.engine = cell(5);
    row.input_tokens = count_cell(file_label, line, "input_tokens", cells[idx[6]], 0);
    row.output_tokens = count_cell(file_label, line, "output_tokens", cells[idx[7]], 0);
    row.concurrency = count_cell(file_label, line, "concurrency", cells[idx[8]], 1);
    if (row.concurrency && *row.concurrency > 1000000)
      bad_cell(file_label, line, "concurrency", "at most 1,000,000 requests (as perf takes it)");
    const std::string metric = cell(9);
    bool known = false;
    for (Metric m : kMetrics)
      if (metric == metric_name(m)) row.metric = m, known = true;
    if (!known) {
      std::vector<std::string> names;
      for (Metric m : kMetrics) names.emplace_back(metric_name(m));
      bad_cell(file_label, line, "metric",
               fmt::format("unknown metric \"{}\" (expected one of {})", metric,
                           fmt::join(names, ", ")));
    }
    if (cell(10).empty()) bad_cell(file_label, line, "value", "a measured value is required");
    row.value = number_cell(file_label, line, "value", cells[idx[10]]);
    if (row.value <= 0)
      bad_cell(file_label, line, "value", fmt::format("must be positive, found \"{}\"", cell(10)));
    if (row.model.empty()) bad_cell(file_label, line, "model", "a model id is required");
    if (row.gpu.empty()) bad_cell(file_label, line, "gpu", "a device id is required");
    row.unit = cell(11);
    if (row.unit != metric_unit(row.metric))
      bad_cell(file_label, line, "unit",
               fmt::format("{} is measured in {}, found \"{}\"", metric_name(row.metric),
                           metric_unit(row.metric), row.unit));
    row.source = cell(12);
    if (row.source.empty())
      bad_cell(file_label, line, "source", "a published measurement needs its source");
    check_token_counts(file_label, row);
    read_optional(file_label, line, cells, opt, row);
    row.split = split_for(row);
    f.rows.push_back(std::move(row));
  }
  return f;
}

BenchmarkFile read_benchmarks(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, "", "cannot open file");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_benchmarks(ss.str(), path);
}

namespace {

// An empty output_tokens cell: llama-bench's tg128 for a single stream, else 256; a model that
// generates no tokens (an embedding model, a reranker) is prefill-only work, one token, as perf
// takes it (--output 1).
long long default_output_tokens(const BenchmarkRow& row, const Model& m) {
  if (!m.is_generative()) return 1;
  return row.metric == Metric::decode_tok_s_single ? 128 : 256;
}

// What `moeplan perf` refuses of the same request (apps/moeplan/perf_cmd.cpp: build_request,
// check_context): tokens from a model that generates none, a prompt plus reply beyond the
// model's trained context (a published run cannot state perf's --allow-context-extension), and
// weights or a KV format the engine does not serve. Such a row is unusable input like an unknown
// id, not a prediction that is "infinitely wrong". "" when perf would take it.
std::string perf_refusal(const BenchmarkRow& row, const PerfRequest& req) {
  const Model& m = *req.model;
  const long long input = req.input_tokens, output = req.output_tokens;
  const bool decode_metric = row.metric == Metric::decode_tok_s_single ||
                             row.metric == Metric::output_tok_s || row.metric == Metric::tpot_ms;
  if (!m.is_generative() && (decode_metric || output > 1))
    return fmt::format(
        "'{}' has kind {} (data/models.json) and generates no tokens, so {} (perf refuses it too)",
        m.id, model_kind_name(m.kind),
        decode_metric
            ? fmt::format("it has no {}", metric_name(row.metric))
            : fmt::format("a row with {} output tokens cannot describe it (0 or 1 can)", output));
  // A published row states no context extension, so it is held to the trained context.
  if (auto why = context_refusal(m, input, output, false)) return *why + " (perf refuses it too)";
  if (auto why = unserved_format(
          *req.engine, req.weights.empty() ? m.native_precision : req.weights, req.kv_precision))
    return *why + " (data/engines.json; perf refuses it too)";
  return "";
}

// A deployment's figures: throughput of all its GPUs, per-request latencies, and a prompt's
// prefill rate on one prefill worker (one replica).
double metric_value(Metric m, const DeploymentResult& r) {
  switch (m) {
    case Metric::decode_tok_s_single:
      return r.per_request_tokens_per_s;
    case Metric::output_tok_s:
      return r.output_tokens_per_s;
    case Metric::total_tok_s:
      return r.total_tokens_per_s;
    case Metric::prefill_tok_s:
      return r.deployment.kind == Deployment::Kind::disaggregated
                 ? r.prefill_worker.prefill.tokens_per_s
                 : r.group.prefill.tokens_per_s;
    case Metric::tpot_ms:
      return r.tpot_ms;
    case Metric::ttft_ms:
      return r.ttft_ms;
  }
  return 0;
}

}  // namespace

RowPrediction predict_row(const BenchmarkRow& row, const Catalog& cat,
                          const DeviceCalibration* cal) {
  RowPrediction p;
  const Model* m = cat.find_model(row.model);
  const Device* d = cat.find_device(row.gpu);
  p.skipped = !m || !d;
  if (!m) return p.reason = fmt::format("skipped: unknown model '{}'", row.model), p;
  if (!d) return p.reason = fmt::format("skipped: unknown device '{}'", row.gpu), p;
  std::string engine_id = row.engine;
  if (engine_id.empty()) engine_id = d->kind == DeviceKind::gpu ? "vllm" : "llama.cpp";
  const Engine* e = nullptr;
  for (const auto& x : cat.engines)
    if (x.id == engine_id) e = &x;
  if (!e) {
    p.skipped = true;
    return p.reason = fmt::format("skipped: unknown engine '{}'", engine_id), p;
  }
  try {
    PerfRequest req;
    req.model = m;
    req.device = d;
    req.engine = e;
    req.gpus = row.gpu_count;
    req.layout = row.layout;
    if (!row.precision.empty())
      req.weights = parse_weight_spec(row.precision, m->native_precision, cat);
    // An unstated KV precision is bf16, unless the row's own figures imply another
    // (`kv_precision_implied`, §Validation).
    req.kv_precision = !row.kv_precision.empty()           ? row.kv_precision
                       : !row.kv_precision_implied.empty() ? row.kv_precision_implied
                                                           : "bf16";
    (void)cat.kv_format(req.kv_precision);
    // Defaults for empty cells (§Validation): llama-bench's tg128 / pp512 shapes.
    const bool prefill_metric =
        row.metric == Metric::prefill_tok_s || row.metric == Metric::ttft_ms;
    req.input_tokens = row.input_tokens.value_or(prefill_metric ? 512 : 0);
    req.output_tokens = row.output_tokens.value_or(default_output_tokens(row, *m));
    const std::string refused = perf_refusal(row, req);
    if (!refused.empty()) {
      p.skipped = p.refused = true;
      return p.reason = "skipped: " + refused, p;
    }
    // A prefill-only row (llama-bench pp) is predicted as a request that stops at its first token.
    if (req.output_tokens == 0) req.output_tokens = 1;
    if (row.metric == Metric::decode_tok_s_single) {
      req.concurrency = 1;
    } else if (row.concurrency) {
      req.concurrency = *row.concurrency;
    } else if (row.deployment.kind != Deployment::Kind::single) {
      req.concurrency = deployment_slots(req, row.deployment, cat);
    } else {
      // Saturated: the largest concurrency that fits, capped at the engine's batch limit.
      std::string why;
      req.concurrency = engine_group_slots(req, cat, &why);
      if (req.concurrency < 1) return p.reason = "does not fit: " + why, p;
    }
    // How the source's tool started its requests (docs/performance.md §Serving steady state /
    // TTFT under load): the file's `arrivals` column, e.g. `together` for InferenceX's
    // benchmark_serving --max-concurrency runs, `steady` for genai-perf windows (NIM tables).
    // A row without a concurrency is a saturated run: every request queued up front.
    static_cast<ServingRun&>(req) = row;
    if (!row.concurrency) req.arrivals = Arrivals::saturated;
    req.spec = row.spec;
    // The file's device layer applies to every model's rows on its device, its shape-keyed
    // curves to its own model's rows only (calibration_for).
    std::optional<DeviceCalibration> for_row;
    if (cal && cal->device_id == d->id) {
      for_row = calibration_for(*cal, m->id, d);
      req.calibration = &*for_row;
    }
    p.concurrency_used = req.concurrency;
    // One engine group is the deployment of one replica: the same estimate() figures.
    const DeploymentResult r = estimate_deployment(req, row.deployment, cat);
    p.predicted = metric_value(row.metric, r);
    p.evidence = r.group.evidence;
    p.bound = bound_name(r.group.bound);
    p.error_pct = (*p.predicted - row.value) / row.value * 100.0;
  } catch (const UnknownIdError& ex) {
    // A precision, KV format or other id the catalog lacks is bad input like an unknown model:
    // refused by the command, never averaged in as an unpredictable row (audit 2026-11-27).
    p.predicted.reset();
    p.skipped = true;
    p.reason = std::string("skipped: ") + ex.what();
  } catch (const Error& ex) {
    p.predicted.reset();
    p.reason = ex.what();
  }
  return p;
}

namespace {

MetricSummary summarize(const std::string& name, const std::vector<const RowPrediction*>& ps) {
  MetricSummary s;
  s.metric = name;
  s.rows = static_cast<int>(ps.size());
  std::vector<double> abs;
  double sum = 0;
  int within = 0;
  for (const auto* p : ps) {
    if (!p->predicted) {
      abs.push_back(std::numeric_limits<double>::infinity());
      continue;
    }
    ++s.predicted;
    const double a = std::fabs(p->error_pct);
    abs.push_back(a);
    sum += a;
    if (a <= 25.0) ++within;
  }
  if (!abs.empty()) {
    std::sort(abs.begin(), abs.end());
    const std::size_t n = abs.size();
    s.median_abs_pct = n % 2 ? abs[n / 2] : 0.5 * (abs[n / 2 - 1] + abs[n / 2]);
    s.within_25_share = static_cast<double>(within) / static_cast<double>(n);
  }
  s.mean_abs_pct = s.predicted > 0 ? sum / s.predicted : std::numeric_limits<double>::infinity();
  return s;
}

}  // namespace

namespace {

// Per-metric summaries of the rows `keep` selects (skipped rows are never counted).
template <typename Keep>
std::vector<MetricSummary> metric_summaries(const BenchmarkFile& f, const ValidationResult& v,
                                            const std::string& group, Keep keep) {
  std::vector<MetricSummary> out;
  for (Metric m : kMetrics) {
    std::vector<const RowPrediction*> ps;
    for (std::size_t i = 0; i < f.rows.size(); ++i)
      if (f.rows[i].metric == m && !v.predictions[i].skipped && keep(f.rows[i]))
        ps.push_back(&v.predictions[i]);
    if (ps.empty()) continue;
    out.push_back(summarize(metric_name(m), ps));
    out.back().group = group;
  }
  return out;
}

}  // namespace

ValidationResult validate(const BenchmarkFile& f, const Catalog& cat,
                          const DeviceCalibration* cal) {
  ValidationResult v;
  v.predictions.reserve(f.rows.size());
  for (const auto& row : f.rows) v.predictions.push_back(predict_row(row, cat, cal));
  auto all_rows = [](const BenchmarkRow&) { return true; };
  v.per_metric = metric_summaries(f, v, "", all_rows);
  std::vector<const RowPrediction*> all;
  for (const auto& p : v.predictions) {
    if (p.skipped)
      ++v.skipped;
    else
      all.push_back(&p);
  }
  v.overall = summarize("all", all);
  for (Split s : {Split::fit, Split::holdout}) {
    auto part =
        metric_summaries(f, v, split_name(s), [s](const BenchmarkRow& r) { return r.split == s; });
    v.per_split.insert(v.per_split.end(), part.begin(), part.end());
  }
  std::vector<std::string> families;
  for (const auto& r : f.rows)
    if (std::find(families.begin(), families.end(), r.source_family) == families.end())
      families.push_back(r.source_family);
  std::sort(families.begin(), families.end());
  for (const auto& fam : families) {
    auto part = metric_summaries(f, v, fam,
                                 [&fam](const BenchmarkRow& r) { return r.source_family == fam; });
    v.per_family.insert(v.per_family.end(), part.begin(), part.end());
  }
  return v;
}

std::vector<CalibrationEffect> calibration_effect(const BenchmarkFile& f,
                                                  const ValidationResult& without,
                                                  const ValidationResult& with,
                                                  const std::string& device_id) {
  if (without.predictions.size() != f.rows.size() || with.predictions.size() != f.rows.size())
    throw Error("calibration_effect: the validations do not cover the file's rows");
  std::vector<CalibrationEffect> out;
  auto effect = [&](const std::string& name, auto keep) {
    std::vector<const RowPrediction*> a, b;
    for (std::size_t i = 0; i < f.rows.size(); ++i)
      if (f.rows[i].gpu == device_id && !without.predictions[i].skipped && keep(f.rows[i])) {
        a.push_back(&without.predictions[i]);
        b.push_back(&with.predictions[i]);
      }
    if (a.empty()) return;
    CalibrationEffect e;
    e.metric = name;
    e.rows = static_cast<int>(a.size());
    e.median_abs_pct_without = summarize(name, a).median_abs_pct;
    e.median_abs_pct_with = summarize(name, b).median_abs_pct;
    // Unpredicted rows count as infinitely wrong (as in every summary); inf − inf is no move.
    const double d = e.median_abs_pct_with - e.median_abs_pct_without;
    e.verdict = !(std::fabs(d) > 0.05) ? "unchanged"
                : d < 0                ? "towards the published rows"
                                       : "away from the published rows";
    out.push_back(e);
  };
  for (Metric m : kMetrics)
    effect(metric_name(m), [m](const BenchmarkRow& r) { return r.metric == m; });
  if (!out.empty()) effect("all", [](const BenchmarkRow&) { return true; });
  return out;
}

namespace {

// <data>/benchmarks/published.csv, read once per data directory (nullptr when absent).
const BenchmarkFile* bundled_benchmarks(const Catalog& cat) {
  static std::mutex mu;
  static std::map<std::string, std::optional<BenchmarkFile>> files;
  const std::string path = cat.data_dir + "/benchmarks/published.csv";
  const BenchmarkFile* f = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = files.find(path);
    if (it == files.end()) {
      std::optional<BenchmarkFile> loaded;
      if (std::filesystem::exists(path)) loaded = read_benchmarks(path);
      it = files.emplace(path, std::move(loaded)).first;
    }
    if (it->second) f = &*it->second;
  }
  return f;
}

}  // namespace

Evidence throughput_evidence(Evidence model_tier, const Catalog& cat, const std::string& model,
                             const std::string& gpu, int gpus, const std::string& precision,
                             const std::string& engine) {
  if (model_tier == Evidence::measured) return model_tier;
  const BenchmarkFile* f = bundled_benchmarks(cat);
  if (!f) return model_tier;
  const std::string prec = precision == "native" ? std::string() : precision;
  return matching_rows(*f, model, gpu, gpus, prec, engine).empty() ? model_tier
                                                                   : Evidence::published;
}

std::vector<PublishedComparison> published_comparisons(const Catalog& cat, const std::string& model,
                                                       const std::string& gpu, int gpus,
                                                       const std::string& precision,
                                                       const std::string& engine,
                                                       const DeviceCalibration* cal) {
  std::vector<PublishedComparison> out;
  const BenchmarkFile* f = bundled_benchmarks(cat);
  if (!f) return out;
  const std::string prec = precision == "native" ? std::string() : precision;
  for (const BenchmarkRow* r : matching_rows(*f, model, gpu, gpus, prec, engine))
    out.push_back({r, predict_row(*r, cat, cal)});
  return out;
}

PublishedAgreement published_agreement(const Catalog& cat, const std::string& model,
                                       const std::string& gpu, int gpus,
                                       const std::string& precision, const std::string& engine) {
  PublishedAgreement a;
  double worst = -1;
  for (const auto& [r, p] : published_comparisons(cat, model, gpu, gpus, precision, engine)) {
    if (!p.predicted) continue;
    ++a.rows;
    const double e = std::fabs(p.error_pct);
    if (e > 25) ++a.outside;
    if (e > worst) {
      worst = e;
      a.worst = fmt::format("{} {:+.0f}% (line {})", metric_name(r->metric), p.error_pct, r->line);
    }
  }
  return a;
}

std::vector<const BenchmarkRow*> matching_rows(const BenchmarkFile& f, const std::string& model,
                                               const std::string& gpu, int gpus,
                                               const std::string& precision,
                                               const std::string& engine) {
  std::vector<const BenchmarkRow*> out;
  for (const auto& r : f.rows) {
    if (r.model != model || r.gpu != gpu || r.gpu_count != gpus) continue;
    if (!r.engine.empty() && r.engine != engine) continue;
    if (!r.precision.empty() && !precision.empty() && r.precision != precision) continue;
    out.push_back(&r);
  }
  return out;
}

}  // namespace moeplan
