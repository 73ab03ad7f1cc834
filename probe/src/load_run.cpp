// `moeprobe load`: one run — preflight, warm-up, the load points, tool calls
// and eval — with every finished request appended to the JSON-lines log, so a
// killed run resumes without losing or double-counting requests (docs/load.md §Log).
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <set>
#include <tuple>

#include "moeplan/errors.hpp"
#include "moeprobe/load.hpp"

namespace moeprobe::load {

namespace fs = std::filesystem;

Json run_config(const LoadOptions& o) {
  return Json{{"url", o.http.url},
              {"api", o.http.api == Api::chat ? "chat" : "completions"},
              {"served_model", o.served_model},
              {"input_tokens", o.input_tokens},
              {"output_tokens", o.output_tokens},
              {"concurrency", o.concurrency},
              {"rate", o.rate},
              {"requests", o.requests},
              {"duration_s", o.duration_s},
              {"prompts", o.prompts_file},
              {"eval", o.eval_file},
              {"prefix_share", o.prefix_share ? Json(*o.prefix_share) : Json(nullptr)},
              {"tool_calls", o.tool_calls},
              {"ignore_eos", o.ignore_eos},
              {"seed", o.seed}};
}

LogContents read_log(const std::string& path) {
  LogContents c;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw moeplan::InputError(path, "", "cannot open the log");
  std::string line;
  std::set<std::tuple<std::string, int, long long>> seen;
  std::uintmax_t pos = 0;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    const bool complete = !in.eof();  // a last line without '\n' was torn by a kill
    if (!complete) break;
    pos += line.size() + 1;
    const std::string where = fmt::format("line {}", n);
    Json j;
    try {
      j = Json::parse(line);
    } catch (const std::exception&) {
      throw moeplan::InputError(path, where, "not JSON (a damaged log)");
    }
    if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
      throw moeplan::InputError(path, where + " /type",
                                "not a log record (a damaged log, or not a moeprobe load log)");
    c.valid_bytes = pos;
    const std::string type = j["type"].get<std::string>();
    // Only the header says which settings the requests were measured with.
    if ((n == 1) != (type == "header"))
      throw moeplan::InputError(
          path, where + " /type",
          n == 1 ? "the first line must be the header (the run's settings): without it the "
                   "requests cannot be checked against this run; remove the log to start afresh"
                 : "a header after the first line (a damaged log)");
    if (type == "header") {
      if (!j.contains("config") || !j["config"].is_object())
        throw moeplan::InputError(path, where + " /config", "missing the run's settings");
      c.header = j["config"];
    } else if (type == "segment") {
      ++c.segments;
    } else if (type == "point_done") {
      if (!j.contains("point") || !j["point"].is_number_integer())
        throw moeplan::InputError(path, where + " /point", "expected a point index");
      c.points_done.push_back(j["point"].get<int>());
      c.points_done_lines.push_back(n);
    } else if (type == "request") {
      RequestResult r;
      try {
        r = RequestResult::from_json(j);
      } catch (const moeplan::Error& e) {
        throw moeplan::InputError(path, where, e.what());
      }
      if (seen.insert({r.kind, r.point, r.seq}).second) {
        c.results.push_back(std::move(r));
        c.result_lines.push_back(n);
      }
    } else {
      throw moeplan::InputError(
          path, where + " /type",
          fmt::format("unknown record type '{}' (expected header, segment, point_done or request)",
                      type));
    }
  }
  return c;
}

void check_log_points(const LogContents& log, const std::vector<PointPlan>& points,
                      const std::string& path) {
  auto known = [&](int p) { return p >= 0 && static_cast<std::size_t>(p) < points.size(); };
  for (std::size_t i = 0; i < log.results.size(); ++i) {
    const RequestResult& r = log.results[i];
    const std::string where = fmt::format("line {} /point", log.result_lines.at(i));
    if (!known(r.point))
      throw moeplan::InputError(
          path, where,
          fmt::format("point {} is not a point of this run (points 0 to {}): a damaged log",
                      r.point, static_cast<int>(points.size()) - 1));
    const PointPlan& p = points[static_cast<std::size_t>(r.point)];
    if (p.kind != r.kind)
      throw moeplan::InputError(path, where,
                                fmt::format("a '{}' request for point {}, which is the {} point "
                                            "of this run: a damaged log",
                                            r.kind, r.point, p.kind));
  }
  for (std::size_t i = 0; i < log.points_done.size(); ++i)
    if (!known(log.points_done[i]))
      throw moeplan::InputError(
          path, fmt::format("line {} /point", log.points_done_lines.at(i)),
          fmt::format("point {} is not a point of this run (points 0 to {}): a damaged log",
                      log.points_done[i], static_cast<int>(points.size()) - 1));
}

namespace {

class Log {
 public:
  Log(const std::string& path, bool append, std::uintmax_t keep_bytes) : path_(path) {
    if (append) fs::resize_file(path, keep_bytes);  // drop a torn last line
    f_ = std::fopen(path.c_str(), append ? "ab" : "wb");
    if (!f_) throw moeplan::Error("cannot write the log " + path);
  }
  ~Log() {
    if (f_) std::fclose(f_);
  }
  Log(const Log&) = delete;
  Log& operator=(const Log&) = delete;
  void write(const Json& j) {
    const std::string s = j.dump() + "\n";
    if (std::fwrite(s.data(), 1, s.size(), f_) != s.size() || std::fflush(f_) != 0)
      throw moeplan::Error("writing the log " + path_ + " failed");
  }

 private:
  std::string path_;
  std::FILE* f_ = nullptr;
};

std::string first_model_id(const std::string& body) {
  try {
    const Json j = Json::parse(body);
    if (j.contains("data") && j["data"].is_array() && !j["data"].empty() &&
        j["data"][0].contains("id") && j["data"][0]["id"].is_string())
      return j["data"][0]["id"].get<std::string>();
  } catch (const std::exception&) {
  }
  return "";
}

// Asks /v1/models (which model to name; is anything there at all?).
std::string preflight_models(const LoadOptions& o) {
  std::string body, err;
  const long st = http_get(o.http, "/v1/models", body, err);
  if (st == 0)
    throw moeplan::Error(fmt::format(
        "cannot reach {} ({}): is the server running and the URL right?", o.http.url, err));
  if (st == 401 || st == 403)
    throw moeplan::Error(fmt::format(
        "{}/v1/models answered HTTP {}: the server wants an API key (--api-key-env VAR)",
        o.http.url, st));
  if (!o.served_model.empty()) return o.served_model;
  const std::string id = st == 200 ? first_model_id(body) : "";
  if (id.empty())
    throw moeplan::Error(fmt::format(
        "{}/v1/models answered HTTP {} without a model list: not an OpenAI-compatible server, or "
        "give the model name with --served-model",
        o.http.url, st));
  return id;
}

const char* const kCities[] = {"Paris", "Budapest", "Tokyo", "Lima", "Oslo", "Nairobi"};

// The log of an earlier run (--resume): read, never truncated before the server answers; a log
// written with other settings is refused (the URL may change between segments — a rebooted
// node, a new port — everything that shapes the requests may not).
LogContents read_prior_log(const LoadOptions& o, const Json& config, bool have_log) {
  LogContents prior;
  if (have_log && !o.resume)
    throw moeplan::Error(fmt::format(
        "{} exists: add --resume to continue that run, or remove it to start afresh", o.log_path));
  if (!have_log) return prior;
  prior = read_log(o.log_path);
  auto same = [&](const std::string& k) {
    return k == "url" || (prior.header.contains(k) && prior.header[k] == config[k]);
  };
  if (prior.header.is_null()) return prior;  // no complete line: nothing measured yet
  for (auto it = config.begin(); it != config.end(); ++it)
    if (!same(it.key()))
      throw moeplan::Error(fmt::format(
          "{} was written by a run with other settings ({} differs): --resume continues only "
          "the same run",
          o.log_path, it.key()));
  return prior;
}

// The request body of each (point, sequence): a tool call, an eval prompt, a prompt from the
// prompts file, or a synthetic prompt of the asked length with the asked shared prefix.
BodyFn make_body_fn(const LoadOptions& o, const std::string& model,
                    const std::vector<PromptItem>& prompts, const std::vector<PromptItem>& evals) {
  BodyOptions bo;
  bo.api = o.http.api;
  bo.model = model;
  bo.ignore_eos = o.ignore_eos;
  const long long in_tokens = o.input_tokens > 0 ? o.input_tokens : 128;
  auto prompt_for = [&o, &prompts, in_tokens](int point, long long seq) {
    if (!prompts.empty())
      return prompts[static_cast<std::size_t>((seq + 7919LL * point) %
                                              static_cast<long long>(prompts.size()))];
    PromptItem p;
    p.prompt = synth_prompt(in_tokens, o.prefix_share.value_or(0),
                            o.seed * 1000003ULL + static_cast<std::uint64_t>(point) * 7919ULL +
                                static_cast<std::uint64_t>(seq));
    return p;
  };
  return [&o, &evals, bo, prompt_for](const PointPlan& p, long long seq) {
    BodyOptions b = bo;
    if (p.kind == "tool") {
      b.tool = true;
      b.max_tokens = 256;
      return request_body(
          fmt::format("What is the weather in {} right now? Use the tool.", kCities[seq % 6]), b);
    }
    if (p.kind == "eval") {
      const auto& e = evals[static_cast<std::size_t>(seq) % evals.size()];
      b.max_tokens = e.output.value_or(o.output_tokens > 0 ? o.output_tokens : 256);
      return request_body(e.prompt, b);
    }
    const PromptItem item = prompt_for(p.index, seq);
    b.max_tokens = item.output.value_or(o.output_tokens > 0 ? o.output_tokens : 128);
    return request_body(item.prompt, b);
  };
}

// Warm-up requests; the first one's failure is an error when it says the endpoint or the model
// name is wrong (a server error or a slow first reply is measured later).
void warm_up(const LoadOptions& o, const LoadRun& run, const BodyFn& body) {
  PointPlan w;
  w.index = -1;
  w.kind = "warmup";
  w.concurrency = 1;
  w.requests = std::max(1, o.warmup);
  bool first = true;
  run_point(o.http, w, run.segment, o.seed, body, [&](const RequestResult& r) {
    if (!first) return;
    first = false;
    const bool wrong = r.failure == Failure::connect || r.failure == Failure::malformed ||
                       (r.failure == Failure::http && r.http_status >= 400 && r.http_status < 500);
    if (!r.ok() && !wrong)
      std::cerr << fmt::format("warning: the warm-up request failed ({}: {})\n",
                               failure_name(r.failure), r.error);
    if (wrong)
      throw moeplan::Error(fmt::format(
          "the first request to {}{} failed ({}: {}): not an OpenAI-compatible streaming "
          "endpoint, or the model name '{}' is wrong{}",
          o.http.url, api_path(o.http.api), failure_name(r.failure), r.error, run.model,
          run.resumed ? "; the log is kept as it was" : ""));
  });
}

// The plan of points: each concurrency, each rate, then the tool-call and eval checks.
std::vector<PointPlan> plan_points(const LoadOptions& o, std::size_t evals) {
  std::vector<PointPlan> points;
  auto add_point = [&](PointPlan p) {
    p.index = static_cast<int>(points.size());
    points.push_back(p);
  };
  for (int c : o.concurrency) {
    PointPlan p;
    p.concurrency = c;
    p.requests = o.requests;
    p.duration_s = o.duration_s;
    add_point(p);
  }
  for (double r : o.rate) {
    PointPlan p;
    p.rate = r;
    p.requests = o.requests;
    p.duration_s = o.duration_s;
    add_point(p);
  }
  if (o.tool_calls > 0) {
    PointPlan p;
    p.kind = "tool";
    p.concurrency = 4;
    p.requests = o.tool_calls;
    add_point(p);
  }
  if (evals > 0) {
    PointPlan p;
    p.kind = "eval";
    p.concurrency = 4;
    p.requests = static_cast<long long>(evals);
    add_point(p);
  }
  return points;
}

// What the log already holds of a point: the sequences to skip, where to continue, and (in
// duration mode) the time already spent, per earlier segment. True when nothing is left.
bool resume_point(PointPlan& p, const LogContents& prior) {
  const bool done_before =
      std::count(prior.points_done.begin(), prior.points_done.end(), p.index) > 0;
  for (const auto& r : prior.results)
    if (r.point == p.index && r.kind == p.kind) {
      p.skip_seqs.push_back(r.seq);
      p.first_seq = std::max(p.first_seq, r.seq + 1);
    }
  if (p.requests == 0) {
    std::map<int, double> wall;
    for (const auto& r : prior.results)
      if (r.point == p.index && r.kind == p.kind)
        wall[r.segment] = std::max(wall[r.segment], r.end_s);
    for (const auto& [s, w] : wall) p.elapsed_done_s += w;
  }
  return done_before ||
         (p.requests > 0 && static_cast<long long>(p.skip_seqs.size()) >= p.requests);
}

// Runs one point, checking tool and eval replies, appending every finished request to the log
// and to run.results, with progress on stderr.
void run_one_point(const LoadOptions& o, LoadRun& run, PointPlan& p, const BodyFn& body,
                   const std::vector<PromptItem>& evals, Log& log) {
  const bool tty = o.progress && isatty(2);
  const std::size_t before = run.results.size();
  run_point(
      o.http, p, run.segment, o.seed, body,
      [&](const RequestResult& r0) {
        RequestResult r = r0;
        if (r.kind == "tool")
          r.check_ok = r.ok() && tool_reply_matches(r.tool_name, r.tool_arguments);
        if (r.kind == "eval") {
          const auto& e = evals[static_cast<std::size_t>(r.seq) % evals.size()];
          r.check_ok = r.ok() && std::regex_search(r.text, std::regex(e.expect));
        }
        log.write(r.to_json());
        run.results.push_back(std::move(r));
      },
      [&](const PointPlan& pp, long long completed, long long errors) {
        if (tty)
          std::cerr << fmt::format(
              "\r[point {}/{} {}] {} done{}, {} errors   ", pp.index + 1, run.points.size(),
              pp.label(), completed,
              pp.requests
                  ? fmt::format("/{}", pp.requests - static_cast<long long>(pp.skip_seqs.size()))
                  : "",
              errors);
      });
  if (tty) std::cerr << "\n";
  if (o.progress && !tty) {
    long long err = 0;
    for (std::size_t i = before; i < run.results.size(); ++i) err += !run.results[i].ok();
    std::cerr << fmt::format("point {}/{} {}: {} requests, {} errors\n", p.index + 1,
                             run.points.size(), p.label(), run.results.size() - before, err);
  }
}

// Per-point summaries of the load points, the tool-call and eval outcomes, and notes.
void summarise_run(const LoadOptions& o, LoadRun& run) {
  Measured& m = run.measured;
  m.asked_input = o.prompts_file.empty() ? (o.input_tokens > 0 ? o.input_tokens : 128) : -1;
  m.asked_output = o.output_tokens;
  m.prefix_share_given = o.prefix_share.has_value();
  for (const auto& p : run.points) {
    if (p.kind == "load") {
      run.summaries.push_back(summarise(p, run.results, o.sla));
      m.points.push_back(run.summaries.back());
      m.issued += run.summaries.back().requests;
      m.succeeded += run.summaries.back().completed;
      continue;
    }
    CheckOutcome c;
    for (const auto& r : run.results)
      if (r.point == p.index && r.kind == p.kind) {
        ++c.sent;
        c.ok += r.check_ok.value_or(false) ? 1 : 0;
      }
    (p.kind == "tool" ? m.tools : m.eval) = c;
  }
  long long missing = 0;
  for (const auto& s : run.summaries) missing += s.usage_missing;
  if (missing > 0)
    run.notes.push_back(fmt::format(
        "{} successful request(s) came without usage in the stream (stream_options.include_usage "
        "unsupported?): their output tokens are counted as content events",
        missing));
  if (run.resumed > 0)
    run.notes.push_back(fmt::format("{} request(s) resumed from {}", run.resumed, o.log_path));
}

}  // namespace

LoadRun run_load(const LoadOptions& o) {
  LoadRun run;
  // Inputs first: a bad prompts line fails before any request or log write.
  std::vector<PromptItem> prompts, evals;
  if (!o.prompts_file.empty()) prompts = read_prompts(o.prompts_file, false);
  if (!o.eval_file.empty()) evals = read_prompts(o.eval_file, true);
  if (o.concurrency.empty() && o.rate.empty())
    throw moeplan::Error("give --concurrency C[,C…] or --rate R[,R…]");
  if (o.requests <= 0 && o.duration_s <= 0)
    throw moeplan::Error("give --requests N or --duration S");
  const bool have_log = fs::exists(o.log_path);
  const Json config = run_config(o);
  const LogContents prior = read_prior_log(o, config, have_log);
  run.points = plan_points(o, evals.size());
  check_log_points(prior, run.points, o.log_path);
  if (have_log) {
    run.resumed = static_cast<long long>(prior.results.size());
    run.segment = prior.segments;
  }
  // Preflight: the server, the model name, one streamed request.
  run.model = preflight_models(o);
  const BodyFn body = make_body_fn(o, run.model, prompts, evals);
  warm_up(o, run, body);
  // The plan of points, less what the log already holds; run, appending every finished request.
  Log log(o.log_path, have_log, prior.valid_bytes);
  if (prior.header.is_null()) log.write({{"type", "header"}, {"config", config}});
  log.write({{"type", "segment"}, {"segment", run.segment}, {"resumed", run.resumed}});
  run.results = prior.results;
  for (auto& p : run.points) {
    if (!resume_point(p, prior)) run_one_point(o, run, p, body, evals, log);
    log.write({{"type", "point_done"}, {"point", p.index}});
  }
  summarise_run(o, run);
  return run;
}

}  // namespace moeprobe::load
