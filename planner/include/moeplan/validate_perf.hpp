// Validation of the performance model against published measurements
// (`moeplan validate-perf`). File format and statistics: docs/performance.md
// §Validation. The CSV reader is RFC 4180 (quotes, doubled quotes, embedded
// commas and line breaks, CRLF or LF).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "moeplan/catalog.hpp"
#include "moeplan/deployment.hpp"
#include "moeplan/json_read.hpp"
#include "moeplan/performance.hpp"

namespace moeplan {

// A parsed CSV: header plus records; `lines[i]` is the physical line where record i starts.
struct CsvTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<int> lines;
};

// RFC 4180 parsing. Throws InputError("FILE", "line N", problem) on an unterminated quote
// or a record whose field count differs from the header's.
CsvTable parse_csv(const std::string& text, const std::string& file_label);

// The required columns, in the bundled file's order.
const std::vector<std::string>& benchmark_columns();

// An input cell as JSON for validate-perf's rows: a numeric column (gpu_count, input_tokens,
// output_tokens, concurrency, value, nodes, max_num_tokens, admission_interval_steps) as a JSON
// number (whole numbers as integers) and null when empty; any other column as its text.
Json benchmark_cell_json(const std::string& column, const std::string& cell);

// The metrics a row may carry.
enum class Metric {
  decode_tok_s_single,
  output_tok_s,
  total_tok_s,
  prefill_tok_s,
  tpot_ms,
  ttft_ms
};
const char* metric_name(Metric m);
// "ms" for TPOT and TTFT, "tok/s" for the throughputs: the unit column of a benchmark file.
const char* metric_unit(Metric m);

// The fixed two-thirds / one-third division of the published set (docs/performance.md
// §Validation, "Fit and holdout"): constants may be fitted on `fit` rows only.
enum class Split { fit, holdout };
const char* split_name(Split s);

// A published measurement. Its ServingRun fields come from optional columns, none part of the
// row's identity:
// `arrivals` — how the source's load tool started its requests: "steady", "together"
// (optionally with "prompts=N", the client's prompts in all, simulated as a closed loop, and
// "range=R", their lengths' spread) or "once" (one wave of `concurrency` requests, optionally
// "rate=R" requests per second); steady when absent (docs/performance.md §Serving steady
// state). `max_num_tokens` — the scheduler's token budget per step the run set (the engine's
// default when empty). `admission_interval_steps` — steps between the scheduler's looks for
// new requests (1 when empty).
struct BenchmarkRow : ServingRun {
  int line = 0;                  // physical line in the file
  std::vector<std::string> raw;  // every input cell, in header order (extra columns included)
  std::string model, gpu, precision, kv_precision, engine, unit, source;
  // Optional columns: where the number comes from (a family such as "trtllm-tables";
  // "unspecified" when the column is absent or empty) and how many nodes the deployment spans.
  std::string source_family = "unspecified";
  int nodes = 1;
  // Speculative decoding in the measured run (optional column `spec`, parse_spec's words, e.g.
  // "mtp tokens=3 acceptance=0.41"; none when empty). Not part of the row's identity.
  SpecConfig spec;
  // KV-cache precision the row's own figures imply when the source does not state it (optional
  // column `kv_precision_implied`, used only while `kv_precision` is empty). Not part of the
  // row's identity, so it never moves a row between fit and holdout.
  std::string kv_precision_implied;
  // How the published GPUs were deployed (optional column `deployment`: "dp:R" replicas or
  // "pd:PxG+DxG" prefill/decode workers, deployment.hpp; one engine group when absent). Not part
  // of the row's identity.
  Deployment deployment;
  // The parallel layout the source states (optional column `layout`, e.g. "tp=1 pp=2" or
  // "tp=2 pp=2 ep=2 dp-attention"; the engine's default when empty). Not part of the identity.
  Layout layout;
  Split split = Split::fit;  // from the row's identity, see split_for()
  int gpu_count = 1;
  // 0 input tokens: decode-only (llama-bench tg); 0 output tokens: prefill-only (llama-bench pp).
  std::optional<long long> input_tokens, output_tokens,
      concurrency;  // empty concurrency = saturated
  Metric metric = Metric::decode_tok_s_single;
  double value = 0;
};

struct BenchmarkFile {
  std::string file;
  std::vector<std::string> header;
  std::vector<BenchmarkRow> rows;
};

// Reads and validates a benchmark file. Throws InputError naming the file, the line and the
// column for a missing column, a non-numeric number or an unknown metric, and the line of a
// JSON document given as CSV.
BenchmarkFile read_benchmarks(const std::string& path);
BenchmarkFile parse_benchmarks(const std::string& text, const std::string& file_label);

// Deterministic split: FNV-1a over the row's identity (model, device, count, precision, KV
// precision, engine, tokens, concurrency, metric, family); a third of the hash space is holdout.
// Depends on nothing else in the file, so adding rows never moves another row.
Split split_for(const BenchmarkRow& r);

struct RowPrediction {
  std::optional<double> predicted;
  double error_pct = 0;  // (predicted − measured) / measured × 100
  // A row whose model, device or engine id the catalog does not know is skipped: reported with
  // its reason, left out of every statistic.
  bool skipped = false;
  // Skipped because `moeplan perf` refuses what the row asks (a prompt plus reply beyond the
  // model's trained context, tokens from a model that generates none, or weights or a KV format
  // its engine does not serve); `skipped` is set too.
  bool refused = false;
  std::string reason;  // why no prediction ("" when predicted)
  long long concurrency_used = 0;
  Evidence evidence = Evidence::default_;
  std::string bound;
};

struct MetricSummary {
  std::string metric;
  std::string group;  // "" overall; else the split or source family the summary covers
  int rows = 0;
  int predicted = 0;
  double median_abs_pct = 0;   // unpredicted rows count as infinitely wrong
  double mean_abs_pct = 0;     // over predicted rows
  double within_25_share = 0;  // share of all rows (unpredicted count as outside)
};

struct ValidationResult {
  std::vector<RowPrediction> predictions;  // one per input row, same order
  std::vector<MetricSummary> per_metric;   // in Metric order, only metrics present
  std::vector<MetricSummary> per_split;    // fit then holdout, per metric present
  std::vector<MetricSummary> per_family;   // per family (sorted) and metric present
  MetricSummary overall;
  int skipped = 0;  // rows left out: unknown model, device or engine, or refused as perf would
};

// Predicts one row through estimate() (docs/performance.md §Validation, "How a row is read").
// With `cal`, a row measured on the calibration's device (row.gpu == cal->device_id) is
// predicted with it (`validate-perf --calibration`); other rows are not touched.
RowPrediction predict_row(const BenchmarkRow& row, const Catalog& cat,
                          const DeviceCalibration* cal = nullptr);
ValidationResult validate(const BenchmarkFile& f, const Catalog& cat,
                          const DeviceCalibration* cal = nullptr);

// How a calibration moved the error of its device's rows (`validate-perf --calibration`): the
// median |error| per metric (and "all") over the rows on `device_id` predicted both ways.
struct CalibrationEffect {
  std::string metric;  // a metric name, or "all"
  int rows = 0;        // rows on the device (skipped rows left out)
  double median_abs_pct_without = 0, median_abs_pct_with = 0;
  // "towards the published rows" when the median |error| fell by more than 0.05 points,
  // "away from the published rows" when it rose by more, else "unchanged".
  std::string verdict;
};
std::vector<CalibrationEffect> calibration_effect(const BenchmarkFile& f,
                                                  const ValidationResult& without,
                                                  const ValidationResult& with,
                                                  const std::string& device_id);

// Rows of `f` that match a configuration (same model, device, count, engine, and precision
// when the row states one) — the `published` evidence tier of `moeplan perf`.
std::vector<const BenchmarkRow*> matching_rows(const BenchmarkFile& f, const std::string& model,
                                               const std::string& gpu, int gpus,
                                               const std::string& precision,
                                               const std::string& engine);

// The evidence tier of a build's throughput, the same in perf, plan and recommend
// (docs/performance.md § Evidence tiers): `measured` when the model tier says so (a calibration
// replaced the device layer), else `published` when <data>/benchmarks/published.csv has rows of
// this configuration (`precision` "" or "native" = any stated precision), else `default`.
// The file is read once per data directory; safe to call from several threads.
Evidence throughput_evidence(Evidence model_tier, const Catalog& cat, const std::string& model,
                             const std::string& gpu, int gpus, const std::string& precision,
                             const std::string& engine);

// The bundled published rows of a configuration (the rows behind the `published` tier), each
// with this model's prediction of it as validate-perf makes it (`precision` "" or "native" = any
// stated precision). Empty when the data directory has no benchmarks/published.csv. The rows live
// as long as the process (the file is read once per data directory).
struct PublishedComparison {
  const BenchmarkRow* row = nullptr;
  RowPrediction prediction;
};
// With `cal`, each row is predicted with the calibration as `perf --calibration` predicts the
// configuration itself (predict_row's rule: rows of the calibration's device).
std::vector<PublishedComparison> published_comparisons(const Catalog& cat, const std::string& model,
                                                       const std::string& gpu, int gpus,
                                                       const std::string& precision,
                                                       const std::string& engine,
                                                       const DeviceCalibration* cal = nullptr);

// How the bundled published rows of a configuration (the rows behind the `published` tier)
// compare with this model's prediction of each: a build whose tier is `published` can still be
// far from what was measured (plan's risks say so).
struct PublishedAgreement {
  int rows = 0;       // rows of the configuration that could be predicted
  int outside = 0;    // of them, |error| > 25%
  std::string worst;  // e.g. "output_tok_s +102% (line 232)"; empty when rows == 0
};
PublishedAgreement published_agreement(const Catalog& cat, const std::string& model,
                                       const std::string& gpu, int gpus,
                                       const std::string& precision, const std::string& engine);

}  // namespace moeplan
