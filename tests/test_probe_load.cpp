// moeprobe load (docs/load.md): SSE parsing, stream classification, statistics,
// go/no-go rules, and the HTTP driver against a scripted loopback server
// (tests/load_fault_server.py) that injects faults on purpose.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "moeplan/errors.hpp"
#include "moeprobe/load.hpp"
#include "test_support.hpp"

using namespace moeprobe::load;
namespace fs = std::filesystem;
using moeplan::test::run_command;

namespace {

// The scripted server: started per test, killed on scope exit, and it exits
// by itself after its lifetime, so a crashed test leaves nothing behind.
struct FaultServer {
  pid_t pid = -1;
  int port = 0;
  explicit FaultServer(bool not_openai = false) {
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      dup2(fds[1], 1);
      close(fds[0]);
      const std::string script = moeplan::test::source_dir() + "/tests/load_fault_server.py";
      if (not_openai)
        execlp("python3", "python3", script.c_str(), "--lifetime", "120", "--not-openai",
               static_cast<char*>(nullptr));
      else
        execlp("python3", "python3", script.c_str(), "--lifetime", "120",
               static_cast<char*>(nullptr));
      _exit(127);
    }
    close(fds[1]);
    std::string line;
    char c = 0;
    while (read(fds[0], &c, 1) == 1 && c != '\n') line += c;
    close(fds[0]);
    REQUIRE(!line.empty());
    port = std::stoi(line);
  }
  ~FaultServer() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }
};

std::vector<RequestResult> drive(const FaultServer& s, const std::string& mode, int requests,
                                 int concurrency, Api api = Api::chat, double timeout_s = 30) {
  HttpOptions h;
  h.url = s.url();
  h.api = api;
  h.timeout_s = timeout_s;
  PointPlan p;
  p.kind = mode == "tool" ? "tool" : "load";
  p.concurrency = concurrency;
  p.requests = requests;
  std::vector<RequestResult> out;
  run_point(
      h, p, 0, 1,
      [&](const PointPlan&, long long seq) {
        BodyOptions b;
        b.api = api;
        b.model = mode;
        b.max_tokens = 16;
        b.tool = mode == "tool";
        return request_body(synth_prompt(8, 0, static_cast<std::uint64_t>(seq)), b);
      },
      [&](const RequestResult& r) { out.push_back(r); });
  return out;
}

long long count(const std::vector<RequestResult>& rs, Failure f) {
  return std::count_if(rs.begin(), rs.end(), [&](const auto& r) { return r.failure == f; });
}

std::string moeprobe_cli() {
  return MOEPROBE_CLI;
}

}  // namespace

TEST_CASE("SSE parser: events split across reads, CRLF, comments, multi-line data", "[load][sse]") {
  SseParser p;
  std::vector<std::string> ev;
  auto on = [&](const std::string& d) { ev.push_back(d); };
  const std::string s =
      ": keep-alive\r\ndata: {\"a\":1}\r\n\r\ndata: x\ndata: y\n\nevent: e\ndata:z\n\n";
  for (char c : s) p.feed(&c, 1, on);  // one byte at a time: the worst split
  p.finish(on);
  REQUIRE(ev == std::vector<std::string>{"{\"a\":1}", "x\ny", "z"});
  SseParser q;
  ev.clear();
  const std::string t = "data: last";  // no terminating blank line
  q.feed(t.data(), t.size(), on);
  q.finish(on);
  REQUIRE(ev == std::vector<std::string>{"last"});
}

TEST_CASE("Stream state: timing and the failure classes", "[load][stream]") {
  auto feed = [](StreamState& s, const std::string& data, double t) {
    const std::string e = "data: " + data + "\n\n";
    s.on_bytes(e.data(), e.size(), t);
  };
  const std::string tok = R"({"choices":[{"delta":{"content":"x"},"finish_reason":null}]})";
  const std::string fin = R"({"choices":[{"delta":{"content":"y"},"finish_reason":"stop"}]})";
  const std::string use = R"({"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3}})";
  SECTION("complete stream: TTFT, ITL, TPOT from event times and usage") {
    StreamState s(Api::chat);
    feed(s, tok, 0.100);
    feed(s, tok, 0.120);
    feed(s, fin, 0.150);
    feed(s, use, 0.151);
    feed(s, "[DONE]", 0.152);
    RequestResult r;
    s.finish(Failure::none, "", 200, "text/event-stream", 0.160, r);
    REQUIRE(r.ok());
    REQUIRE(*r.ttft_ms == Approx(100));
    REQUIRE(r.itl_ms.size() == 2);
    REQUIRE(r.itl_ms[0] == Approx(20));
    REQUIRE(r.itl_ms[1] == Approx(30));
    REQUIRE(*r.tpot_ms() == Approx(25));  // (150 − 100) / (3 − 1)
    REQUIRE(r.e2e_ms == Approx(160));
    REQUIRE(*r.prompt_tokens == 5);
    REQUIRE_FALSE(r.usage_missing);
  }
  SECTION("a buffered stream (every token in one read) has no TPOT, not a TPOT of 0") {
    StreamState s(Api::chat);
    feed(s, tok, 0.100);
    feed(s, tok, 0.100);
    feed(s, fin, 0.100);
    feed(s, "[DONE]", 0.100);
    RequestResult r;
    s.finish(Failure::none, "", 200, "text/event-stream", 0.101, r);
    REQUIRE(r.ok());
    REQUIRE(*r.ttft_ms == Approx(100));
    REQUIRE_FALSE(r.tpot_ms());
  }
  SECTION("no [DONE] and no finish_reason: cut off") {
    StreamState s(Api::chat);
    feed(s, tok, 0.1);
    RequestResult r;
    s.finish(Failure::none, "", 200, "text/event-stream", 0.2, r);
    REQUIRE(r.failure == Failure::cut_off);
  }
  SECTION("a transport error after tokens is a cut-off stream") {
    StreamState s(Api::chat);
    feed(s, tok, 0.1);
    RequestResult r;
    s.finish(Failure::cut_off, "transfer closed", 200, "text/event-stream", 0.2, r);
    REQUIRE(r.failure == Failure::cut_off);
  }
  SECTION("an event that is not JSON: malformed") {
    StreamState s(Api::chat);
    feed(s, tok, 0.1);
    feed(s, "{nope", 0.11);
    feed(s, fin, 0.12);
    feed(s, "[DONE]", 0.13);
    RequestResult r;
    s.finish(Failure::none, "", 200, "text/event-stream", 0.2, r);
    REQUIRE(r.failure == Failure::malformed);
  }
  SECTION("HTTP status and non-SSE bodies") {
    StreamState a(Api::chat);
    const std::string b = "<html>404</html>";
    a.on_bytes(b.data(), b.size(), 0.01);
    RequestResult r;
    a.finish(Failure::none, "", 404, "text/html", 0.02, r);
    REQUIRE(r.failure == Failure::http);
    StreamState c(Api::chat);
    const std::string j = R"({"id": 1})";
    c.on_bytes(j.data(), j.size(), 0.01);
    c.finish(Failure::none, "", 200, "application/json", 0.02, r);
    REQUIRE(r.failure == Failure::malformed);
    REQUIRE_THAT(r.error, Catch::Contains("not a server-sent event stream"));
  }
  SECTION("completions API reads choices[].text; missing usage is recorded") {
    StreamState s(Api::completions);
    feed(s, R"({"choices":[{"text":"a","finish_reason":null}]})", 0.05);
    feed(s, R"({"choices":[{"text":"b","finish_reason":"length"}]})", 0.07);
    feed(s, "[DONE]", 0.08);
    RequestResult r;
    s.finish(Failure::none, "", 200, "text/event-stream", 0.08, r);
    REQUIRE(r.ok());
    REQUIRE(r.usage_missing);
    REQUIRE(r.output_tokens() == 2);
  }
}

TEST_CASE("Percentiles interpolate between order statistics", "[load][stats]") {
  // Hand calculation: sorted 1..5, p50 at position 2 → 3; p90 at 3.6 → 4.6; p99 at 3.96 → 4.96.
  const auto p = percentiles({5, 1, 4, 2, 3});
  REQUIRE(*p.p50 == Approx(3));
  REQUIRE(*p.p90 == Approx(4.6));
  REQUIRE(*p.p99 == Approx(4.96));
  REQUIRE_FALSE(percentiles({}).p50);
}

TEST_CASE("Point summary: throughput over the wall time, goodput against the SLA",
          "[load][stats]") {
  PointPlan p;
  p.concurrency = 2;
  std::vector<RequestResult> rs(4);
  for (int i = 0; i < 4; ++i) {
    rs[i].seq = i;
    rs[i].end_s = 1.0 + i * 0.5;  // last completion at 2.5 s
    rs[i].ttft_ms = 100.0 * (i + 1);
    rs[i].itl_ms = {10, 10, 10};
    rs[i].content_events = 4;
    rs[i].completion_tokens = 4;
    rs[i].prompt_tokens = 10;
  }
  rs[3].failure = Failure::timeout;
  const auto s = summarise(p, rs, Sla{250.0, std::nullopt});
  REQUIRE(s.requests == 4);
  REQUIRE(s.completed == 3);
  REQUIRE(s.errors.at("timeout") == 1);
  REQUIRE(s.output_tokens_per_s == Approx(12 / 2.5));  // 3 × 4 tokens over 2.5 s
  REQUIRE(s.total_tokens_per_s == Approx(42 / 2.5));
  REQUIRE(s.goodput == Approx(0.5));  // TTFT 100 and 200 meet 250 ms; 300 does not; 1 failed
  REQUIRE(*s.tpot_ms.p50 == Approx(10));
}

TEST_CASE("Go/no-go: never a pass without a measurement", "[load][gonogo]") {
  Targets t;
  t.input_tokens = 8000;
  t.output_tokens = 1000;
  t.required_tok_s_per_node = 69.4;
  t.plan_concurrency = 82;
  t.sla = {30000.0, 60.0};
  t.plan_cost_per_mtok = 128767;
  t.plan_nodes = 1;
  t.peak_tok_s = 69.4;
  SECTION("nothing measured: every check is not_measured") {
    for (const auto& g : go_no_go(t, Measured{})) REQUIRE(g.status == "not_measured");
  }
  PointSummary s;
  s.plan.concurrency = 82;
  s.requests = 120;
  s.completed = 120;
  s.output_tokens_per_s = 1500;
  s.ttft_ms = percentiles({1000, 2000});
  s.tpot_ms = percentiles({40, 50});
  s.mean_prompt_tokens = 8010;
  s.mean_output_tokens = 1000;
  Measured m;
  m.points = {s};
  m.issued = 120;
  m.succeeded = 120;
  m.asked_input = 8000;
  m.asked_output = 1000;
  SECTION("at the scenario's prompts and concurrency: checks 1–3 decide, 4 waits for cache") {
    const auto g = go_no_go(t, m);
    REQUIRE(g[0].status == "pass");
    REQUIRE(g[1].status == "pass");
    REQUIRE(g[2].status == "pass");
    REQUIRE(g[3].status == "not_measured");  // no --prefix-share
    REQUIRE(g[4].status == "not_measured");
    REQUIRE(g[5].status == "not_measured");
  }
  SECTION("other prompt lengths: throughput and latency are not_measured, uptime still counts") {
    m.asked_input = 256;
    const auto g = go_no_go(t, m);
    REQUIRE(g[0].status == "not_measured");
    REQUIRE(g[1].status == "not_measured");
    REQUIRE_THAT(g[0].note, Catch::Contains("256 in"));
    REQUIRE(g[2].status == "pass");
  }
  SECTION("the server counted other prompt lengths: not_measured") {
    m.points[0].mean_prompt_tokens = 3000;
    REQUIRE(go_no_go(t, m)[0].status == "not_measured");
  }
  SECTION("below the concurrency of the plan: check 2 not_measured") {
    m.points[0].plan.concurrency = 8;
    REQUIRE(go_no_go(t, m)[1].status == "not_measured");
  }
  SECTION("failures: SLA, uptime, tool calls, eval") {
    m.points[0].tpot_ms = percentiles({70, 80});
    m.succeeded = 90;
    m.issued = 100;
    m.tools = CheckOutcome{10, 5};
    m.eval = CheckOutcome{10, 9};
    t.min_eval_share = 0.8;
    const auto g = go_no_go(t, m);
    REQUIRE(g[1].status == "fail");
    REQUIRE(g[2].status == "fail");
    REQUIRE(g[4].status == "fail");
    REQUIRE(g[5].status == "pass");
  }
  SECTION("cache hits and cost settle check 4") {
    m.prefix_share_given = true;
    m.points[0].cached_tokens = 400;
    m.points[0].prompt_tokens_with_cache_info = 1000;
    t.cache_hit_share = 0.3;
    REQUIRE(go_no_go(t, m)[3].status == "pass");
    m.points[0].output_tokens_per_s = 30;  // 69.4 / 30 → 3 nodes instead of 1: cost ×3
    m.points[0].tpot_ms = percentiles({40});
    REQUIRE(go_no_go(t, m)[3].status == "fail");
  }
}

TEST_CASE("Prompts files: bad lines are named", "[load][input]") {
  const fs::path dir = fs::temp_directory_path() / "moeprobe-load-prompts";
  fs::create_directories(dir);
  const std::string f = (dir / "p.jsonl").string();
  std::ofstream(f) << "{\"prompt\": \"hi\"}\n{bad\n";
  REQUIRE_THROWS_WITH(read_prompts(f, false),
                      Catch::Contains("p.jsonl") && Catch::Contains("line 2"));
  // A truncated line: a short reason, not the JSON library's parser internals.
  std::ofstream(f) << "{\"prompt\": \"hi\"}\n{\"prompt\": \"a\", \"max_tok\n";
  REQUIRE_THROWS_WITH(read_prompts(f, false),
                      Catch::Contains("p.jsonl: line 2: not valid JSON (truncated?)") &&
                          !Catch::Contains("json.exception"));
  REQUIRE_THROWS_WITH(read_prompts(dir.string(), false), Catch::Contains("is a directory"));
  std::ofstream(f) << "{\"prompt\": \"hi\", \"expect\": \"(\"}\n";
  REQUIRE_THROWS_WITH(read_prompts(f, true), Catch::Contains("regular expression"));
  std::ofstream(f) << "{\"prompt\": \"hi\", \"max_tokens\": 7}\n";
  REQUIRE(*read_prompts(f, false)[0].output == 7);
  REQUIRE(tool_reply_matches("get_weather", R"({"city": "Oslo"})"));
  REQUIRE_FALSE(tool_reply_matches("get_weather", R"({"city": )"));
  REQUIRE_FALSE(tool_reply_matches("get_weather", R"({"town": "Oslo"})"));
  // Synthesised prompts: shared prefix, deterministic per seed.
  const auto a = synth_prompt(100, 0.5, 1), b = synth_prompt(100, 0.5, 2);
  REQUIRE(a == synth_prompt(100, 0.5, 1));
  REQUIRE(a.substr(0, 150) == b.substr(0, 150));
  REQUIRE(a != b);
}

TEST_CASE("Logs: a missing header, an unknown record or a foreign point is refused",
          "[load][resume]") {
  const fs::path dir =
      fs::temp_directory_path() / ("moeprobe-load-log-" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string f = (dir / "p.json.log.jsonl").string();
  RequestResult r;
  r.kind = "load";
  r.point = 0;
  r.seq = 0;
  const std::string header = R"({"type":"header","config":{"input_tokens":100}})";
  const std::string request = r.to_json().dump();
  const std::string segment = R"({"type":"segment","segment":0,"resumed":0})";
  std::ofstream(f) << header << "\n" << segment << "\n" << request << "\n";
  REQUIRE(read_log(f).results.size() == 1);
  // Without the header nothing says which settings the requests were measured with.
  std::ofstream(f) << segment << "\n" << request << "\n";
  REQUIRE_THROWS_WITH(read_log(f),
                      Catch::Contains("p.json.log.jsonl: line 1 /type: the first line must be "
                                      "the header"));
  std::ofstream(f) << header << "\n"
                   << segment << "\n"
                   << R"({"type":"weird"})"
                   << "\n";
  REQUIRE_THROWS_WITH(read_log(f), Catch::Contains("line 3 /type: unknown record type 'weird'"));
  std::ofstream(f) << header << "\n" << segment << "\n" << header << "\n";
  REQUIRE_THROWS_WITH(read_log(f), Catch::Contains("line 3 /type: a header after the first line"));
  std::ofstream(f) << header << "\n"
                   << "[1]\n";
  REQUIRE_THROWS_WITH(read_log(f), Catch::Contains("line 2 /type: not a log record"));
  std::ofstream(f) << R"({"type":"header"})"
                   << "\n";
  REQUIRE_THROWS_WITH(read_log(f), Catch::Contains("line 1 /config"));
  // A log with no complete line holds nothing yet (killed before the header was flushed).
  std::ofstream(f) << R"({"type":"hea)";
  REQUIRE(read_log(f).header.is_null());

  // Requests and point_done records must name a point of this run, of the same kind.
  std::vector<PointPlan> points(1);
  r.point = 3;
  std::ofstream(f) << header << "\n"
                   << segment << "\n"
                   << request << "\n"
                   << r.to_json().dump() << "\n";
  const LogContents bad_point = read_log(f);
  REQUIRE_THROWS_WITH(check_log_points(bad_point, points, f),
                      Catch::Contains("line 4 /point: point 3 is not a point of this run"));
  r.point = 0;
  r.kind = "tool";
  std::ofstream(f) << header << "\n" << r.to_json().dump() << "\n";
  REQUIRE_THROWS_WITH(check_log_points(read_log(f), points, f),
                      Catch::Contains("line 2 /point: a 'tool' request for point 0"));
  std::ofstream(f) << header << "\n"
                   << R"({"type":"point_done","point":-1})"
                   << "\n";
  REQUIRE_THROWS_WITH(check_log_points(read_log(f), points, f),
                      Catch::Contains("line 2 /point: point -1 is not a point of this run"));
  std::ofstream(f) << header << "\n"
                   << request << "\n"
                   << R"({"type":"point_done","point":0})"
                   << "\n";
  REQUIRE_NOTHROW(check_log_points(read_log(f), points, f));
  fs::remove_all(dir);
}

TEST_CASE("moeprobe load: flags, --build and --out are checked before any request",
          "[load][input]") {
  // Port 9 (discard) has no server: a check that passes reaches "cannot reach".
  const std::string base =
      moeprobe_cli() + " load --url http://127.0.0.1:9 --input 100 --output 10";
  auto refused = [&](const std::string& args, const std::string& want) {
    const auto r = run_command(base + " " + args);
    INFO(args << "\n" << r.output);
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.output, Catch::Contains(want));
    CHECK(r.output.size() < 400);  // a stated bound, never DBL_MAX in full
    CHECK_THAT(r.output, !Catch::Contains("1797693134862315"));
  };
  refused("--concurrency 0", "--concurrency: Value 0 not in range 1 to 100000");
  refused("--concurrency 4,0", "--concurrency: Value 0 not in range 1 to 100000");
  refused("--timeout inf", "--timeout: Value inf not in range");
  refused("--warmup -1", "--warmup: Value -1 not in range 0 to 1000000");
  refused("--rate inf", "--rate: Value inf not in range");
  refused("--duration inf", "--duration: Value inf not in range");
  refused("--requests 0", "--requests: Value 0 not in range 1 to 100000000");
  refused("--tool-calls -1", "--tool-calls: Value -1 not in range");
  refused("--sla-ttft-ms -5", "--sla-ttft-ms: Value -5 not in range");
  refused("--sla-tpot-ms 0", "--sla-tpot-ms: Value 0 not in range");
  refused("--build glm-9,h300,8,fp7", "--build: unknown model 'glm-9'");
  refused("--build glm-5.2,h300,8,fp8", "--build: unknown device or system 'h300'");
  refused("--build glm-5.2,h200,8,fp7", "--build: ");
  refused("--build glm-5.2,h200,8,fp7", "fp7");
  refused("--engine foo", "--engine foo: the pilot file records the engine with the build");
  refused("--build glm-5.2,h200,8,fp8 --engine foo", "--engine foo: unknown engine 'foo'");
  const fs::path dir =
      fs::temp_directory_path() / ("moeprobe-load-flags-" + std::to_string(getpid()));
  fs::create_directories(dir / "adir");
  refused("--out " + (dir / "adir").string(),
          "--out " + (dir / "adir").string() + ": Is a directory");
  refused("--out " + (dir / "nodir" / "p.json").string(), "does not exist");
  refused("--out ''", "--out: empty file name");
  refused("--prompts " + dir.string(), "is a directory");
  CHECK_FALSE(fs::exists((dir / "adir").string() + ".log.jsonl"));
  // Known ids pass, a system id too (SYSTEM_OR_DEVICE): the run goes on to the preflight.
  for (const std::string ok :
       {"--build glm-5.2,h200,8,fp8 --engine vllm", "--build glm-5.2,h200,8,native",
        "--build glm-5.2,hgx-h200-8,8,fp8"}) {
    const auto r = run_command(base + " " + ok + " --out " + (dir / "p.json").string());
    INFO(ok << "\n" << r.output);
    CHECK_THAT(r.output, Catch::Contains("cannot reach http://127.0.0.1:9"));
  }
  fs::remove_all(dir);
}

// The scripted schedule (tests/load_fault_server.py): TTFT 300 ms, 11 tokens 40 ms apart;
// stall 1000 ms; trickle 6 tokens 200 ms apart. Latencies must match within 5% (the
// schedule is long enough that loopback and Python overheads of a few ms stay inside it).
TEST_CASE("Scripted server: latencies match the schedule within 5%", "[load][server]") {
  FaultServer s;
  const auto steady = drive(s, "steady", 8, 2);
  REQUIRE(count(steady, Failure::none) == 8);
  PointPlan p;
  p.concurrency = 2;
  for (auto& r : const_cast<std::vector<RequestResult>&>(steady)) r.point = 0;
  const auto sum = summarise(p, steady, {});
  REQUIRE(*sum.ttft_ms.p50 == Approx(300).epsilon(0.05));
  REQUIRE(*sum.itl_ms.p50 == Approx(40).epsilon(0.05));
  REQUIRE(*sum.tpot_ms.p50 == Approx(40).epsilon(0.05));
  REQUIRE(*sum.e2e_ms.p50 == Approx(700).epsilon(0.05));  // 300 + 10 × 40
  REQUIRE(sum.mean_output_tokens == Approx(11));
  // 8 requests at concurrency 2 = 4 rounds of 700 ms.
  REQUIRE(sum.wall_s == Approx(2.8).epsilon(0.05));
  REQUIRE(sum.output_tokens_per_s == Approx(88 / 2.8).epsilon(0.05));
  // Closed loop refills at once: the next request starts when the last one ends (it waited
  // for the driver's 50 ms poll before, which lowered throughput at low concurrency).
  auto one = drive(s, "steady", 3, 1);
  std::sort(one.begin(), one.end(), [](const auto& a, const auto& b) { return a.seq < b.seq; });
  for (std::size_t i = 1; i < one.size(); ++i) REQUIRE(one[i].start_s - one[i - 1].end_s < 0.01);
  REQUIRE(sum.mean_prompt_tokens == Approx(64));

  // Medians over a few requests, so one late thread wake-up on a busy machine does not decide.
  auto median_of = [](std::vector<RequestResult> rs, auto get) {
    std::vector<double> v;
    for (const auto& r : rs) v.push_back(get(r));
    return *percentiles(v).p50;
  };
  const auto stall = drive(s, "stall", 4, 4);
  REQUIRE(count(stall, Failure::none) == 4);
  REQUIRE(median_of(stall, [](const auto& r) { return *r.ttft_ms; }) == Approx(1000).epsilon(0.05));

  const auto slow = drive(s, "trickle", 4, 4, Api::completions);
  REQUIRE(count(slow, Failure::none) == 4);
  // TTFT of the trickle is the steady case again at 200 ms; its point is the slow gaps.
  REQUIRE(median_of(slow, [](const auto& r) { return *r.ttft_ms; }) == Approx(200).epsilon(0.15));
  REQUIRE(median_of(slow, [](const auto& r) { return *r.tpot_ms(); }) == Approx(200).epsilon(0.05));
}

TEST_CASE("Scripted server: every fault is classified and counted", "[load][server]") {
  FaultServer s;
  const auto e10 = drive(s, "every10", 20, 4);
  REQUIRE(e10.size() == 20);
  REQUIRE(count(e10, Failure::http) == 2);  // requests 10 and 20
  REQUIRE(count(e10, Failure::none) == 18);
  for (const auto& r : e10)
    if (r.failure == Failure::http) REQUIRE(r.http_status == 500);

  const auto cut = drive(s, "cut", 3, 3);
  REQUIRE(count(cut, Failure::cut_off) == 3);
  for (const auto& r : cut) REQUIRE(r.content_events == 5);

  const auto bad = drive(s, "malformed", 3, 3);
  REQUIRE(count(bad, Failure::malformed) == 3);

  const auto late = drive(s, "stall", 2, 2, Api::chat, 0.3);  // 1000 ms stall, 300 ms timeout
  REQUIRE(count(late, Failure::timeout) == 2);

  const auto nou = drive(s, "nousage", 2, 2);
  REQUIRE(count(nou, Failure::none) == 2);
  for (const auto& r : nou) {
    REQUIRE(r.usage_missing);
    REQUIRE(r.output_tokens() == 11);
  }
  const auto cached = drive(s, "cached", 1, 1);
  REQUIRE(*cached.at(0).cached_tokens == 32);

  const auto tools = drive(s, "tool", 4, 1);
  int ok = 0;
  for (const auto& r : tools) ok += tool_reply_matches(r.tool_name, r.tool_arguments);
  REQUIRE(ok == 2);  // even requests answer correctly, odd ones with broken arguments

  HttpOptions h;
  h.url = "http://127.0.0.1:9";  // nothing listens on discard
  h.timeout_s = 5;
  PointPlan p;
  p.concurrency = 1;
  p.requests = 1;
  std::vector<RequestResult> out;
  run_point(
      h, p, 0, 1, [](const PointPlan&, long long) { return std::string("{}"); },
      [&](const RequestResult& r) { out.push_back(r); });
  REQUIRE(out.at(0).failure == Failure::connect);
}

TEST_CASE("moeprobe load: a run killed mid-way resumes without loss or double counting",
          "[load][resume]") {
  FaultServer s;
  const fs::path dir =
      fs::temp_directory_path() / ("moeprobe-load-resume-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string out = (dir / "p.json").string(), log = out + ".log.jsonl";
  const std::string args = "load --url " + s.url() +
                           " --served-model steady --input 16 --output 11 --concurrency 2 "
                           "--requests 30 --no-progress --out " +
                           out;
  auto request_lines = [&]() {
    std::vector<std::string> v;
    std::ifstream in(log);
    for (std::string l; std::getline(in, l);)
      if (l.find("\"type\":\"request\"") != std::string::npos) v.push_back(l);
    return v;
  };
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {  // the probe itself (no shell), so SIGKILL hits it mid-run
    std::vector<std::string> words{moeprobe_cli()};
    std::stringstream ss(args);
    for (std::string w; ss >> w;) words.push_back(w);
    std::vector<char*> argv;
    for (auto& w : words) argv.push_back(w.data());
    argv.push_back(nullptr);
    const int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (request_lines().size() < 8 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  const auto before = request_lines();
  REQUIRE(before.size() >= 8);
  REQUIRE(before.size() < 30);

  // A resume with other settings is refused, naming the setting.
  std::string changed = args;
  changed.replace(changed.find("--output 11"), 11, "--output 12");
  const auto other = run_command(moeprobe_cli() + " " + changed + " --resume");
  REQUIRE(other.exit_code == 1);
  REQUIRE_THAT(other.output, Catch::Contains("output_tokens differs"));
  // Without --resume the existing log is refused, not overwritten.
  const auto refused = run_command(moeprobe_cli() + " " + args);
  REQUIRE(refused.exit_code == 1);
  REQUIRE_THAT(refused.output, Catch::Contains("--resume"));
  REQUIRE(request_lines() == before);

  const auto resumed = run_command(moeprobe_cli() + " " + args + " --resume --format json");
  INFO(resumed.output);
  REQUIRE(resumed.exit_code == 0);
  const auto after = request_lines();
  REQUIRE(std::equal(before.begin(), before.end(), after.begin()));  // nothing lost
  std::set<long long> seqs;
  for (const auto& l : after) {
    const auto j = moeplan::Json::parse(l);
    if (j["kind"] == "load") REQUIRE(seqs.insert(j["seq"].get<long long>()).second);  // no dup
  }
  REQUIRE(seqs.size() == 30);
  REQUIRE(*seqs.rbegin() == 29);
  const auto pilot = moeplan::Json::parse(std::ifstream(out));
  REQUIRE(pilot["load_points"][0]["requests"] == 30);
  REQUIRE(pilot["load_points"][0]["completed"] == 30);
  REQUIRE(pilot["resumed_requests"].get<long long>() == static_cast<long long>(before.size()));
  fs::remove_all(dir);
}

TEST_CASE("moeprobe load: bad input gets a clear error and keeps what was measured",
          "[load][errors]") {
  FaultServer s;
  FaultServer html(true);
  const fs::path dir =
      fs::temp_directory_path() / ("moeprobe-load-errors-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string out = (dir / "p.json").string();
  const std::string base = moeprobe_cli() +
                           " load --input 8 --output 11 --requests 4 "
                           "--no-progress --out " +
                           out;
  // A measured run to protect.
  auto ok = run_command(base + " --url " + s.url() + " --served-model steady");
  REQUIRE(ok.exit_code == 0);
  const auto log_text = [&]() {
    std::ifstream in(out + ".log.jsonl");
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const std::string kept = log_text();

  auto r = run_command(base + " --resume --url http://127.0.0.1:9 --served-model steady");
  REQUIRE(r.exit_code == 1);
  REQUIRE_THAT(r.output, Catch::Contains("cannot reach http://127.0.0.1:9"));

  // A fresh run against a server that is not OpenAI-compatible writes no log at all.
  const std::string other = (dir / "other.json").string();
  r = run_command(moeprobe_cli() + " load --input 8 --output 11 --requests 4 --no-progress --url " +
                  html.url() + " --out " + other);
  REQUIRE(r.exit_code == 1);
  REQUIRE_THAT(r.output, Catch::Contains("not an OpenAI-compatible server"));
  REQUIRE_FALSE(fs::exists(other + ".log.jsonl"));
  REQUIRE_FALSE(fs::exists(other));
  r = run_command(base + " --resume --url " + html.url() + " --served-model steady");
  REQUIRE(r.exit_code == 1);
  REQUIRE_THAT(r.output, Catch::Contains("not an OpenAI-compatible streaming endpoint"));

  r = run_command("env -u MOEPROBE_TEST_NO_KEY " + base + " --resume --url " + s.url() +
                  " --served-model steady --api-key-env MOEPROBE_TEST_NO_KEY");
  REQUIRE(r.exit_code == 1);
  REQUIRE_THAT(r.output, Catch::Contains("MOEPROBE_TEST_NO_KEY is not set"));

  const std::string prompts = (dir / "prompts.jsonl").string();
  std::ofstream(prompts) << "{\"prompt\": \"a\"}\n{\"prompt\": 3}\n";
  r = run_command(base + " --resume --url " + s.url() + " --served-model steady --prompts " +
                  prompts);
  REQUIRE(r.exit_code == 1);
  REQUIRE_THAT(r.output, Catch::Contains("prompts.jsonl") && Catch::Contains("line 2"));

  REQUIRE(log_text() == kept);  // nothing measured was lost or rewritten

  // A resumed log without its header, or naming a point this run does not plan, is refused
  // (it was adopted with other settings, or its requests were neither counted nor re-sent).
  auto resume_with_log = [&](const std::string& name, const std::string& log) {
    const std::string o2 = (dir / name).string();
    std::ofstream(o2 + ".log.jsonl") << log;
    return run_command(moeprobe_cli() +
                       " load --input 8 --output 11 --requests 4 --no-progress --resume --url " +
                       s.url() + " --served-model steady --out " + o2);
  };
  std::string no_header = kept;
  no_header.erase(0, kept.find('\n') + 1);
  r = resume_with_log("nohdr.json", no_header);
  REQUIRE(r.exit_code == 1);
  REQUIRE_THAT(r.output, Catch::Contains("nohdr.json.log.jsonl: line 1 /type: the first line "
                                         "must be the header"));
  std::string other_point = kept;
  const std::size_t at = other_point.find("\"point\":0");
  REQUIRE(at != std::string::npos);
  other_point.replace(at, 9, "\"point\":7");
  r = resume_with_log("point.json", other_point);
  REQUIRE(r.exit_code == 1);
  REQUIRE_THAT(r.output, Catch::Contains("point.json.log.jsonl: line") &&
                             Catch::Contains("point 7 is not a point of this run"));
  fs::remove_all(dir);
}

TEST_CASE("Driver: open loop does not wait for replies; duration mode stops starting on time",
          "[load][server]") {
  FaultServer s;
  HttpOptions h;
  h.url = s.url();
  auto body = [](const PointPlan&, long long) {
    BodyOptions b;
    b.model = "steady";
    b.max_tokens = 16;
    return request_body("the of and", b);
  };
  PointPlan open;
  open.rate = 20;  // a request every 50 ms on average, each lasting 700 ms
  open.requests = 10;
  std::vector<RequestResult> rs;
  run_point(h, open, 0, 7, body, [&](const RequestResult& r) { rs.push_back(r); });
  REQUIRE(count(rs, Failure::none) == 10);
  int overlap = 0;
  for (const auto& a : rs)
    for (const auto& b : rs)
      if (a.seq < b.seq && b.start_s < a.end_s) ++overlap;
  REQUIRE(overlap > 0);  // a closed loop at concurrency 1 would have none

  PointPlan timed;
  timed.concurrency = 2;
  timed.duration_s = 1.0;  // starts at 0 and 0.7 s; at 1.4 s the second is over
  rs.clear();
  run_point(h, timed, 0, 7, body, [&](const RequestResult& r) { rs.push_back(r); });
  REQUIRE(rs.size() == 4);
}

TEST_CASE("moeprobe load: tool calls and eval settle checks 5 and 6 against the scenario",
          "[load][gonogo]") {
  FaultServer s;
  const fs::path dir =
      fs::temp_directory_path() / ("moeprobe-load-checks-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto sc = moeplan::parse_json_file(moeplan::test::examples_dir() + "/plan-8xh200-glm52-huf.json");
  sc["pilot"] = {{"min_eval_pass_share", 0.5}};
  const std::string scenario = (dir / "plan.json").string();
  std::ofstream(scenario) << sc.dump();
  const std::string eval = (dir / "eval.jsonl").string();
  std::ofstream(eval) << "{\"prompt\": \"q1\", \"expect\": \"answer 4[0-9]\"}\n"
                      << "{\"prompt\": \"q2\", \"expect\": \"^never$\"}\n";
  const auto r =
      run_command(moeprobe_cli() + " load --url " + s.url() + " --served-model steady --scenario " +
                  scenario + " --input 16 --output 11 --requests 2 --tool-calls 2 --eval " + eval +
                  " --no-progress --format json --out " + (dir / "p.json").string());
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const auto j = moeplan::Json::parse(r.output);
  const auto& g = j["go_no_go"];
  REQUIRE(g.size() == 6);
  REQUIRE(g[4]["status"] == "fail");  // the steady server never calls the tool: 0 of 2
  REQUIRE(g[4]["measured"].get<std::string>().rfind("0 of 2", 0) == 0);
  REQUIRE(g[5]["status"] == "pass");  // one of two answers matches: 50% ≥ 50%
  REQUIRE(g[5]["measured"].get<std::string>().rfind("1 of 2", 0) == 0);
  REQUIRE(g[0]["status"] == "not_measured");  // 16 in / 11 out is not the scenario's 8000 / 1000
  REQUIRE(j["tool_calls"]["sent"] == 2);
  REQUIRE(j["eval"]["ok"] == 1);
  fs::remove_all(dir);
}
