#include "moeprobe/calibration_writer.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <stdlib.h>  // getloadavg

#include "moeplan/calibration_quality.hpp"
#include "moeprobe/fit.hpp"

namespace moeprobe {

using moeplan::Json;
using moeplan::JsonView;

std::string Row::op_class() const {
  if (op == "triad") return "bandwidth";
  std::string c = op;
  std::replace(c.begin(), c.end(), '.', '_');
  return c;
}

std::string Row::key() const {
  return op + "|" + shape + "|" + dtype + "|" + distribution + "|" + std::to_string(tokens) + "|" +
         std::to_string(context);
}

Json row_to_json(const Row& r) {
  Json j = Json::object();
  j["op"] = r.op;
  j["shape"] = r.shape;
  j["dtype"] = r.dtype;
  j["distribution"] = r.distribution;
  j["tokens"] = r.tokens;
  j["context"] = r.context;
  j["p50_s"] = r.time.p50;
  j["p10_s"] = r.time.p10;
  j["p90_s"] = r.time.p90;
  j["samples"] = r.time.samples;
  j["bytes"] = r.bytes;
  j["flops"] = r.flops;
  j["roofline_s"] = r.roofline_s ? Json(*r.roofline_s) : Json(nullptr);
  j["util"] = r.util ? Json(*r.util) : Json(nullptr);
  j["roofline_measured_s"] = r.roofline_measured_s;
  j["util_measured"] = r.util_measured;
  j["gb_s"] = r.gb_s;
  j["tflops"] = r.tflops;
  j["experts_touched"] = r.experts_touched >= 0 ? Json(r.experts_touched) : Json(nullptr);
  j["verified"] = r.verified;
  j["max_err"] = r.max_err;
  return j;
}

Row row_from_json(const JsonView& v) {
  v.only_keys({"type",          "op",         "shape",   "dtype",
               "distribution",  "tokens",     "context", "p50_s",
               "p10_s",         "p90_s",      "samples", "bytes",
               "flops",         "roofline_s", "util",    "roofline_measured_s",
               "util_measured", "gb_s",       "tflops",  "experts_touched",
               "verified",      "max_err"});
  Row r;
  r.op = v.string("op");
  r.shape = v.string("shape");
  r.dtype = v.one_of("dtype", {"fp32", "bf16", "fp16", "fp8", "fp4", "int8"});
  r.distribution = v.string("distribution");
  r.tokens = static_cast<int>(v.integer("tokens"));
  r.context = v.integer("context");
  r.time.p50 = v.positive("p50_s");
  r.time.p10 = v.positive("p10_s");
  r.time.p90 = v.positive("p90_s");
  r.time.samples = static_cast<int>(v.positive_int("samples"));
  if (r.time.p10 > r.time.p50 || r.time.p50 > r.time.p90)
    v.fail("p10_s <= p50_s <= p90_s does not hold");
  r.bytes = v.non_negative("bytes");
  r.flops = v.non_negative("flops");
  if (!v.at("roofline_s").is_null()) r.roofline_s = v.non_negative("roofline_s");
  if (!v.at("util").is_null()) r.util = v.non_negative("util");
  r.roofline_measured_s = v.non_negative("roofline_measured_s");
  r.util_measured = v.non_negative("util_measured");
  r.gb_s = v.non_negative("gb_s");
  r.tflops = v.non_negative("tflops");
  r.experts_touched =
      v.at("experts_touched").is_null() ? -1 : static_cast<int>(v.integer("experts_touched"));
  r.verified = v.at("verified").boolean();
  r.max_err = v.non_negative("max_err");
  return r;
}

RowLog::RowLog(std::string path, const Json& config, bool resume) : path_(std::move(path)) {
  namespace fs = std::filesystem;
  if (resume && fs::exists(path_)) {
    std::ifstream in(path_);
    std::string line;
    int lineno = 0;
    std::vector<std::string> lines;
    while (std::getline(in, line)) lines.push_back(line);
    for (const auto& l : lines) {
      ++lineno;
      if (l.empty()) continue;
      Json j;
      try {
        j = Json::parse(l);
      } catch (const std::exception&) {
        if (lineno == static_cast<int>(lines.size())) break;  // interrupted mid-line: drop it
        throw moeplan::InputError(path_, "line " + std::to_string(lineno), "not valid JSON");
      }
      const std::string label = path_ + ":" + std::to_string(lineno);
      JsonView v(j, label);
      const std::string type = v.string("type");
      if (lineno == 1) {
        if (type != "header") v.fail_member("type", "the first line must be the header");
        if (v.at("config").raw() != config)
          throw moeplan::Error(path_ +
                               ": this log belongs to a run with a different configuration; "
                               "remove it or run without --resume");
        continue;
      }
      if (type != "row") v.fail_member("type", "expected \"row\"");
      resumed_.push_back(row_from_json(v));
    }
    // Rewrite the log without a torn last line, then keep appending.
    std::ofstream out(path_, std::ios::trunc);
    out << Json{{"type", "header"}, {"config", config}}.dump() << "\n";
    for (const auto& r : resumed_) {
      Json j = row_to_json(r);
      j["type"] = "row";
      out << j.dump() << "\n";
    }
    if (!out) throw moeplan::Error(path_ + ": cannot rewrite the log");
    return;
  }
  errno = 0;
  std::ofstream out(path_, std::ios::trunc);
  if (!out)
    throw moeplan::Error(path_ + ": cannot create the log file: " + moeplan::os_reason(EIO));
  out << Json{{"type", "header"}, {"config", config}}.dump() << "\n";
}

void RowLog::append(const Row& r) {
  std::ofstream out(path_, std::ios::app);
  Json j = row_to_json(r);
  j["type"] = "row";
  out << j.dump() << "\n";
  out.flush();
  if (!out) throw moeplan::Error(path_ + ": cannot append to the log");
}

namespace {

std::string utc_now() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

double load_average_now() {
  double l[1] = {-1};
  return getloadavg(l, 1) == 1 ? l[0] : -1;
}

Json build_flags_json() {
#ifndef MOEPROBE_COMPILER
#define MOEPROBE_COMPILER "unknown"
#endif
#ifndef MOEPROBE_BUILD_TYPE
#define MOEPROBE_BUILD_TYPE "unknown"
#endif
#ifndef MOEPROBE_SANITIZERS
#define MOEPROBE_SANITIZERS 0
#endif
#ifndef MOEPROBE_CUDA_BUILD
#define MOEPROBE_CUDA_BUILD 0
#endif
  return Json{
      {"compiler", MOEPROBE_COMPILER},
      {"build_type", std::string(MOEPROBE_BUILD_TYPE).empty() ? std::string("(none)")
                                                              : std::string(MOEPROBE_BUILD_TYPE)},
      {"sanitizers", MOEPROBE_SANITIZERS != 0},
      {"cuda", MOEPROBE_CUDA_BUILD != 0}};
}

Json quality_json(const std::vector<Row>& rows, const RunConditions& run) {
  Json q = Json::object();
  std::vector<double> spread;
  Json per_row = Json::array();
  for (const auto& r : rows) {
    const double s = r.time.p50 > 0 ? r.time.p90 / r.time.p50 : 0.0;
    per_row.push_back(s);
    if (r.time.p50 > 0) spread.push_back(s);
  }
  const moeplan::SpreadSummary sum = moeplan::summarize_spreads(spread);
  q["spread"] = Json{{"p90_p50", per_row},
                     {"median_p90_p50", sum.median},
                     {"worst_p90_p50", sum.worst},
                     {"noisy_rows", sum.noisy},
                     {"noisy_row_above", moeplan::kNoisySpread},
                     {"median_limit", moeplan::kMaxMedianSpread},
                     {"noisy_share_limit", moeplan::kMaxNoisyShare}};
  auto opt = [](double v) { return v >= 0 ? Json(v) : Json(nullptr); };
  q["load_average"] = Json{{"start", opt(run.load_start)},
                           {"end", opt(run.load_end)},
                           {"max", opt(run.load_max)},
                           {"cpus", run.cpus}};
  q["clock_drops"] =
      Json{{"count", run.clock_drops ? Json(*run.clock_drops) : Json("not measured")},
           {"note", run.clock_drops_note}};
  q["build"] = build_flags_json();
  std::vector<std::string> reasons;
  if (sum.too_noisy()) reasons.push_back(sum.reason());
  const double load = std::max({run.load_start, run.load_end, run.load_max});
  if (moeplan::load_too_high(load, run.cpus))
    reasons.push_back(moeplan::load_reason(load, run.cpus));
  q["noisy"] = !reasons.empty();
  q["reasons"] = reasons;
  return q;
}

Json build_calibration(const Json& header_probe, const DeviceIdentity& id,
                       const std::string& catalog_device_id, std::optional<double> catalog_bw_gb_s,
                       const Json& model, const Json& config, const std::vector<Row>& rows,
                       const std::vector<DecodeStep>& steps) {
  Json doc = Json::object();
  doc["schema"] = kCalibrationSchema;
  doc["schema_version"] = kCalibrationSchemaVersion;
  doc["created_utc"] = utc_now();
  doc["probe"] = header_probe;
  Json dev = Json::object();
  dev["name"] = id.name;
  dev["kind"] = id.kind;
  dev["catalog_id"] = catalog_device_id;
  dev["memory_gb"] = id.memory_gb;
  dev["cores"] = id.cores;
  dev["threads"] = id.threads;
  dev["host"] = id.host;
  dev["driver"] = id.driver;
  dev["cuda"] = id.cuda;
  dev["libraries"] = Json::object();
  for (const auto& [k, v] : id.libraries) dev["libraries"][k] = v;
  dev["clocks_mhz"] = Json::object();
  for (const auto& [k, v] : id.clocks_mhz) dev["clocks_mhz"][k] = v;
  dev["last_level_cache_bytes"] = id.last_level_cache_bytes;
  dev["simd"] = id.simd;
  doc["device"] = dev;
  doc["model"] = model;
  doc["config"] = config;
  Json jr = Json::array();
  for (const auto& r : rows) jr.push_back(row_to_json(r));
  doc["rows"] = jr;

  // ---- fits ----
  Json fits = Json::object();
  double bw = 0;
  for (const auto& r : rows)
    if (r.op == "triad") bw = std::max(bw, r.gb_s);
  fits["bandwidth_gb_s"] = bw;
  fits["catalog_bandwidth_gb_s"] = catalog_bw_gb_s ? Json(*catalog_bw_gb_s) : Json(nullptr);
  fits["bandwidth_fraction"] =
      catalog_bw_gb_s && *catalog_bw_gb_s > 0 ? Json(bw / *catalog_bw_gb_s) : Json(nullptr);

  std::vector<double> lb, lt;
  for (const auto& r : rows)
    if ((r.op == "gemm" || r.op == "moe.fused" || r.op == "layer.decode") && r.tokens <= 4) {
      lb.push_back(r.bytes);
      lt.push_back(r.time.p50);
    }
  const LatencyFit lf = fit_latency(lb, lt);
  fits["step_latency_s"] = lf.step_latency_s;
  fits["effective_bandwidth_gb_s"] = lf.bandwidth_gb_s;
  fits["latency_fit"] = Json{{"points", lf.points}, {"rms_s", lf.rms}};

  std::map<std::string, double> plateau;
  std::set<std::string> dtypes;
  for (const auto& r : rows)
    if (r.op == "gemm") dtypes.insert(r.dtype);
  Json jp = Json::object();
  for (const auto& d : dtypes) {
    int max_tokens = 0;
    for (const auto& r : rows)
      if (r.op == "gemm" && r.dtype == d) max_tokens = std::max(max_tokens, r.tokens);
    std::vector<double> f, t;
    for (const auto& r : rows)
      if (r.op == "gemm" && r.dtype == d && r.tokens * 4 >= max_tokens) {
        f.push_back(r.flops);
        t.push_back(r.time.p50);
      }
    plateau[d] = fit_plateau(f, t);
    jp[d] = plateau[d] * 1e-12;
  }
  fits["compute_plateau_tflops"] = jp;

  // Efficiency vs tokens per op class against the measured ceilings.
  std::map<std::string, std::map<int, std::pair<double, double>>>
      acc;  // class -> tokens -> (roofline, time)
  for (const auto& r : rows) {
    if (r.op == "triad") continue;
    const double p = plateau.count(r.dtype) ? plateau[r.dtype] : 0;
    const double roof = std::max(bw > 0 ? r.bytes / (bw * 1e9) : 0.0, p > 0 ? r.flops / p : 0.0);
    auto& a = acc[r.op_class()][r.tokens];
    a.first += roof;
    a.second += r.time.p50;
  }
  Json eff = Json::object();
  for (const auto& [cls, byt] : acc) {
    Json pts = Json::array();
    std::vector<double> n, e;
    for (const auto& [tok, a] : byt) {
      const double v = a.second > 0 ? a.first / a.second : 0;
      pts.push_back(Json{{"tokens", tok}, {"efficiency", v}});
      n.push_back(tok);
      e.push_back(v);
    }
    const SaturationFit sf = fit_saturation(n, e);
    eff[cls] = Json{{"points", pts},
                    {"fit", Json{{"e_max", sf.e_max}, {"n_half", sf.n_half}, {"rms", sf.rms}}}};
  }
  fits["efficiency"] = eff;
  doc["fits"] = fits;

  Json js = Json::array();
  for (const auto& s : steps)
    js.push_back(Json{{"tokens", s.tokens},
                      {"context", s.context},
                      {"layer_s", s.layer_s},
                      {"dense_layer_s", s.dense_layer_s},
                      {"stack_s", s.stack_s}});
  doc["decode_step"] = js;
  return doc;
}

}  // namespace moeprobe
