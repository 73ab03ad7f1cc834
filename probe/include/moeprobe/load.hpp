// `moeprobe load` (docs/load.md): drives a live OpenAI-compatible endpoint with
// streamed requests — closed loop at a fixed concurrency or open loop with
// Poisson arrivals — times every token, appends each finished request to a
// JSON-lines log (so a killed run resumes without loss or double counting),
// summarises each load point and settles the plan's six go/no-go checks.
//
// Layers: pure parts (SSE parsing, stream classification, statistics, go/no-go)
// are testable without a network; the HTTP driver (libcurl multi) and the log
// are the I/O edge.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "moeplan/json_read.hpp"
#include "moeplan/plan.hpp"

namespace moeprobe::load {

using moeplan::Json;

enum class Api { chat, completions };
Api parse_api(const std::string& s);
const char* api_path(Api a);  // "/v1/chat/completions" | "/v1/completions"

// How a request failed (docs/load.md §Failure classes). `none` = success.
enum class Failure { none, connect, timeout, http, malformed, cut_off };
const char* failure_name(Failure f);
const std::vector<Failure>& failure_classes();  // every class except none

// ---------------------------------------------------------------------------
// Server-sent events

// Splits a byte stream into SSE events (lines "data: …", blank line ends an
// event; comments and other fields ignored; LF or CRLF). Calls `on_data` with
// each event's data (multi-line data joined with '\n').
class SseParser {
 public:
  void feed(const char* p, std::size_t n, const std::function<void(const std::string&)>& on_data);
  // At end of stream: an event not terminated by a blank line is delivered too.
  void finish(const std::function<void(const std::string&)>& on_data);
  std::size_t bytes() const { return bytes_; }

 private:
  std::string line_, data_;
  bool has_data_ = false;
  std::size_t bytes_ = 0;
  void end_line(const std::function<void(const std::string&)>& on_data);
};

// One request's stream turned into measurements. Times are seconds from the
// moment the request was handed to libcurl.
struct RequestResult {
  int point = 0;
  long long seq = 0;
  std::string kind = "load";  // load | warmup | tool | eval
  int segment = 0;            // which invocation (0 = first, +1 per --resume)
  double start_s = 0;         // from the segment's point start
  double end_s = 0;
  std::optional<double> ttft_ms;
  double e2e_ms = 0;
  std::vector<double> itl_ms;  // gap between consecutive content events
  long long content_events = 0;
  std::optional<long long> prompt_tokens, completion_tokens, cached_tokens;  // from `usage`
  bool usage_missing = false;  // the server sent no usage: counts come from events
  long http_status = 0;
  Failure failure = Failure::none;
  std::string error;  // what went wrong, for the log
  std::string text;   // the reply (kept for tool and eval requests only)
  std::string tool_name, tool_arguments;
  std::optional<bool> check_ok;  // tool: parsed and matched the schema; eval: pattern matched

  bool ok() const { return failure == Failure::none; }
  // Output tokens: usage when given, else the number of content events.
  long long output_tokens() const;
  // Mean inter-token gap of this request: (last token − first token) / (output tokens − 1).
  std::optional<double> tpot_ms() const;
  Json to_json() const;
  static RequestResult from_json(const Json& j);  // throws moeplan::Error on a bad line
};

// Accumulates one streamed reply. Pure: the driver feeds it bytes and times.
class StreamState {
 public:
  explicit StreamState(Api api, bool keep_text = false) : api_(api), keep_text_(keep_text) {}
  void on_bytes(const char* p, std::size_t n, double t_s);
  // Classifies the finished transfer. `curl_failure` is connect/timeout/cut_off
  // when libcurl itself failed (with its message), none otherwise.
  void finish(Failure curl_failure, const std::string& curl_error, long http_status,
              const std::string& content_type, double t_s, RequestResult& out);

 private:
  Api api_;
  bool keep_text_;
  SseParser sse_;
  std::vector<double> token_times_;
  bool done_ = false, finished_ = false;
  std::string malformed_, server_error_, body_head_;
  std::optional<long long> prompt_, completion_, cached_;
  std::string text_, tool_name_, tool_args_;
  void on_event(const std::string& data, double t_s);
};

// ---------------------------------------------------------------------------
// Requests

struct PromptItem {
  std::string prompt;               // text (chat: the user message)
  std::optional<long long> output;  // max_tokens for this prompt, when the file gives one
  std::string expect;               // eval: ECMAScript regex the answer must match
};
// JSON lines: {"prompt": "…"} (or "text"), optional "max_tokens"/"output_tokens"; eval files
// also need "expect". Throws InputError("FILE", "line N", problem) on a bad line.
std::vector<PromptItem> read_prompts(const std::string& path, bool eval);

// A synthetic prompt of about `tokens` tokens (one common English word per token), the first
// `prefix_share` of it shared by every request, the rest drawn from `seed`.
std::string synth_prompt(long long tokens, double prefix_share, std::uint64_t seed);

// The tool every --tool-calls request offers, and the reply check.
Json tool_schema();
bool tool_reply_matches(const std::string& name, const std::string& arguments);

struct BodyOptions {
  Api api = Api::chat;
  std::string model;
  long long max_tokens = 0;
  bool ignore_eos = false;
  bool tool = false;
  double temperature = 0;
};
std::string request_body(const std::string& prompt, const BodyOptions& o);

// ---------------------------------------------------------------------------
// Load plan and driver

struct PointPlan {
  int index = 0;
  std::string kind = "load";  // load | tool | eval | warmup
  std::optional<int> concurrency;
  std::optional<double> rate;  // requests/s, Poisson arrivals
  long long requests = 0;      // 0 = until duration_s
  double duration_s = 0;
  std::vector<long long> skip_seqs;  // already in the log (resume)
  long long first_seq = 0;           // duration mode: continue numbering here
  double elapsed_done_s = 0;         // duration mode: time already spent (resume)
  std::string label() const;         // "c=4", "rate=2/s", "tool calls"
};

struct HttpOptions {
  std::string url;  // base URL, e.g. http://127.0.0.1:8080
  Api api = Api::chat;
  std::string api_key;  // "" = no Authorization header
  double timeout_s = 600;
  double connect_timeout_s = 10;
};

// Builds the body of request `seq` of a point (deterministic, so a resumed run
// sends the same request again).
using BodyFn = std::function<std::string(const PointPlan&, long long seq)>;
using DoneFn = std::function<void(const RequestResult&)>;
using ProgressFn = std::function<void(const PointPlan&, long long completed, long long errors)>;

// Runs one point: keeps `concurrency` requests in flight, or starts them at
// Poisson times for `rate`, until `requests` have started (or `duration_s`
// has passed); waits for the stragglers. Calls `done` for each as it finishes.
void run_point(const HttpOptions& http, const PointPlan& p, int segment, std::uint64_t seed,
               const BodyFn& body, const DoneFn& done, const ProgressFn& progress = {});

// One GET (e.g. /v1/models), for the preflight. Returns the status (0 = no
// connection) and the body; `error` gets libcurl's message.
long http_get(const HttpOptions& http, const std::string& path, std::string& body,
              std::string& error);

// ---------------------------------------------------------------------------
// Statistics

struct Percentiles {
  std::optional<double> p50, p90, p99;
  std::size_t n = 0;
};
// Linear interpolation between order statistics (numpy's default).
Percentiles percentiles(std::vector<double> v);

struct Sla {
  std::optional<double> ttft_ms, tpot_ms;
};

struct PointSummary {
  PointPlan plan;
  long long requests = 0, completed = 0;
  std::map<std::string, long long> errors;  // class → count (every class present)
  Percentiles ttft_ms, tpot_ms, itl_ms, e2e_ms;
  double wall_s = 0;
  double output_tokens_per_s = 0, total_tokens_per_s = 0, requests_per_s = 0;
  double goodput = 0;  // share of requests that succeeded and met every SLA given
  double mean_prompt_tokens = 0, mean_output_tokens = 0;
  long long usage_missing = 0;  // successful requests whose stream carried no usage
  long long cached_tokens = 0, prompt_tokens_with_cache_info = 0;
};
PointSummary summarise(const PointPlan& p, const std::vector<RequestResult>& rs, const Sla& sla);

struct CheckOutcome {  // one measured share (tool calls, eval)
  long long sent = 0, ok = 0;
  double share() const { return sent ? static_cast<double>(ok) / static_cast<double>(sent) : 0; }
};

// ---------------------------------------------------------------------------
// Go/no-go (docs/load.md §Go/no-go rules)

struct Targets {  // what the plan asks of the build (from the scenario and its plan)
  long long input_tokens = 0, output_tokens = 0;  // the scenario's prompts
  std::optional<double> required_tok_s_per_node;  // check 1
  std::optional<long long> plan_concurrency;      // check 2
  Sla sla;
  double min_uptime = 0.95;                  // check 3
  double cache_hit_share = 0;                // check 4
  std::optional<double> plan_cost_per_mtok;  // check 4 (plan's self-host cost)
  std::string currency;
  int plan_nodes = 0, reserve_nodes = 0;
  double peak_tok_s = 0;
  double min_tool_success = 0.95;        // check 5
  std::optional<double> min_eval_share;  // check 6
  std::string candidate;                 // "glm-5.2 | 8×h200 | fp8", "" when none
  std::optional<double> predicted_tok_s, predicted_ttft_ms, predicted_tpot_ms;
};

struct Measured {
  std::vector<PointSummary> points;
  long long issued = 0, succeeded = 0;  // load requests over the run (uptime)
  long long asked_input = 0, asked_output = 0;
  bool prefix_share_given = false;
  std::optional<CheckOutcome> tools, eval;
};

struct GoNoGo {
  int check = 0;
  std::string name;
  std::string status;  // pass | fail | not_measured
  std::string measured, required, note;
};
std::vector<GoNoGo> go_no_go(const Targets& t, const Measured& m);

// The plan's targets for the build measured: runs the plan (few Monte Carlo
// samples) and picks the candidate `build` names ("MODEL,DEVICE,GPUS,PRECISION";
// "" = the recommended one).
Targets plan_targets(const moeplan::plan::PlanScenario& sc, const moeplan::Catalog& cat,
                     const std::string& build);

// ---------------------------------------------------------------------------
// A whole run: preflight, warm-up, load points, tool calls, eval; the log.

struct LoadOptions {
  HttpOptions http;
  std::string served_model;  // "" = the first id of GET /v1/models
  long long input_tokens = 0, output_tokens = 0;
  std::vector<int> concurrency;
  std::vector<double> rate;
  long long requests = 0;  // per point; 0 = use duration_s
  double duration_s = 0;
  int warmup = 1;  // at least one: the first request also checks the endpoint
  std::string prompts_file, eval_file;
  std::optional<double> prefix_share;
  int tool_calls = 0;
  bool ignore_eos = false;
  std::uint64_t seed = 1;
  Sla sla;
  std::string log_path;  // JSON lines, appended as requests finish
  bool resume = false;
  bool progress = true;
};

struct LoadRun {
  std::string model;  // as sent in the requests
  std::vector<PointPlan> points;
  std::vector<RequestResult> results;   // logged earlier (resume) and new, deduplicated
  std::vector<PointSummary> summaries;  // load points only, in order
  Measured measured;
  long long resumed = 0;  // results taken from the log
  int segment = 0;
  std::vector<std::string> notes;
};

// The config a log records in its header; a resumed run must match it.
Json run_config(const LoadOptions& o);

// Runs everything. Throws moeplan::Error with a clear message for an
// unreachable server, a non-OpenAI endpoint, a log of another run; the log is
// never truncated before the endpoint has answered.
LoadRun run_load(const LoadOptions& o);

// Reads a log (tolerating a torn last line); duplicates of (kind, point, seq) are dropped.
// Every complete line must be a known record and the first one the header: a log whose header
// was lost cannot be checked against the run's settings, so it is refused rather than adopted.
struct LogContents {
  Json header;
  int segments = 0;
  std::vector<RequestResult> results;
  std::vector<int> points_done;
  std::vector<int> result_lines, points_done_lines;  // log line of each entry above
  std::uintmax_t valid_bytes = 0;                    // up to the last complete line
};
LogContents read_log(const std::string& path);
// Throws, naming the log's line, when a request or point_done names a point this run does not
// plan (or a point of another kind): such a line would be neither counted nor re-sent.
void check_log_points(const LogContents& log, const std::vector<PointPlan>& points,
                      const std::string& path);

// The report of a run: load points, errors, go/no-go (when `targets`), and the
// JSON document the pilot file is (docs/load.md §JSON).
struct BuildId {
  std::string model, device, precision, engine;
  int gpus = 0;
};
BuildId parse_build(const std::string& s, const std::string& engine);  // "" → empty id
// The ids of a parsed --build (model; device or system; precision as plan scenarios take it) and
// its engine, against the catalog: the pilot file is matched to plan candidates by these ids, so
// an unknown one would be recorded and then never match anything.
void check_build(const BuildId& b, const moeplan::Catalog& cat);
moeplan::Report make_load_report(const LoadRun& run, const LoadOptions& o,
                                 const std::optional<Targets>& targets,
                                 const std::optional<BuildId>& build,
                                 const std::string& scenario_file);

}  // namespace moeprobe::load
