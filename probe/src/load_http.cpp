// `moeprobe load`: the HTTP edge — libcurl's multi interface drives every
// request of a load point from one thread, so the timestamps of all streams
// come from one clock without locks (docs/load.md §Timers).
#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <list>
#include <memory>
#include <random>
#include <set>
#include <thread>

#include "moeplan/errors.hpp"
#include "moeprobe/load.hpp"

namespace moeprobe::load {

namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

void global_init() {
  static const bool ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  if (!ok) throw moeplan::Error("libcurl could not be initialised");
}

struct Transfer {
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  std::string body, content_type;
  char errbuf[CURL_ERROR_SIZE] = {};
  Clock::time_point t0;
  StreamState state;
  RequestResult res;
  explicit Transfer(Api api, bool keep_text) : state(api, keep_text) {}
  ~Transfer() {
    if (easy) curl_easy_cleanup(easy);
    if (headers) curl_slist_free_all(headers);
  }
  Transfer(const Transfer&) = delete;
  Transfer& operator=(const Transfer&) = delete;
};

std::size_t on_write(char* p, std::size_t size, std::size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  t->state.on_bytes(p, size * n, seconds(t->t0, Clock::now()));
  return size * n;
}

std::size_t on_header(char* p, std::size_t size, std::size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string h(p, size * n);
  std::string lower = h;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower.rfind("content-type:", 0) == 0) {
    t->content_type = h.substr(13);
    while (!t->content_type.empty() &&
           (t->content_type.back() == '\r' || t->content_type.back() == '\n'))
      t->content_type.pop_back();
    while (!t->content_type.empty() && t->content_type.front() == ' ') t->content_type.erase(0, 1);
  }
  return size * n;
}

Failure classify_curl(CURLcode c) {
  switch (c) {
    case CURLE_OK:
      return Failure::none;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return Failure::connect;
    case CURLE_OPERATION_TIMEDOUT:
      return Failure::timeout;
    default:
      return Failure::cut_off;  // partial file, receive error, got nothing, …
  }
}

std::string base_url(const std::string& url) {
  std::string u = url;
  while (!u.empty() && u.back() == '/') u.pop_back();
  // Accept a URL given with /v1 already (as OpenAI clients take it).
  if (u.size() >= 3 && u.compare(u.size() - 3, 3, "/v1") == 0) u.erase(u.size() - 3);
  return u;
}

void common_options(CURL* e, const HttpOptions& http, curl_slist*& headers) {
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(http.timeout_s * 1e3));
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(http.connect_timeout_s * 1e3));
  curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
  if (!http.api_key.empty())
    headers = curl_slist_append(headers, ("Authorization: Bearer " + http.api_key).c_str());
}

}  // namespace

long http_get(const HttpOptions& http, const std::string& path, std::string& body,
              std::string& error) {
  global_init();
  CURL* e = curl_easy_init();
  if (!e) throw moeplan::Error("libcurl: cannot create a handle");
  curl_slist* headers = nullptr;
  common_options(e, http, headers);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(std::min(http.timeout_s, 30.0) * 1e3));
  const std::string url = base_url(http.url) + path;
  curl_easy_setopt(e, CURLOPT_URL, url.c_str());
  if (headers) curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
  char errbuf[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
  body.clear();
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION,
                   static_cast<std::size_t (*)(char*, std::size_t, std::size_t, void*)>(
                       [](char* p, std::size_t s, std::size_t n, void* u) {
                         auto* b = static_cast<std::string*>(u);
                         if (b->size() < (1u << 20)) b->append(p, s * n);
                         return s * n;
                       }));
  const CURLcode rc = curl_easy_perform(e);
  long status = 0;
  if (rc == CURLE_OK) curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  error = rc == CURLE_OK ? "" : (errbuf[0] ? errbuf : curl_easy_strerror(rc));
  curl_slist_free_all(headers);
  curl_easy_cleanup(e);
  return status;
}

void run_point(const HttpOptions& http, const PointPlan& p, int segment, std::uint64_t seed,
               const BodyFn& body, const DoneFn& done, const ProgressFn& progress) {
  global_init();
  std::unique_ptr<CURLM, decltype(&curl_multi_cleanup)> multi(curl_multi_init(),
                                                              curl_multi_cleanup);
  if (!multi) throw moeplan::Error("libcurl: cannot create a multi handle");
  const std::string url = base_url(http.url) + api_path(http.api);
  const bool keep_text = p.kind == "tool" || p.kind == "eval";
  const std::set<long long> skip(p.skip_seqs.begin(), p.skip_seqs.end());
  std::list<Transfer> live;
  long long next_seq = p.first_seq, completed = 0, errors = 0;
  const auto start = Clock::now();
  std::mt19937_64 rng(seed ^ (0x9e3779b97f4a7c15ULL * static_cast<std::uint64_t>(p.index + 1)));
  double next_arrival = 0;  // open loop: seconds from start
  if (p.rate) next_arrival = std::exponential_distribution<double>(*p.rate)(rng);
  constexpr std::size_t kMaxOpenLoopInFlight = 4096;  // a guard, not a model of the client

  auto more_to_start = [&]() {
    if (p.requests > 0) {
      while (next_seq < p.requests && skip.count(next_seq)) ++next_seq;
      return next_seq < p.requests;
    }
    return p.elapsed_done_s + seconds(start, Clock::now()) < p.duration_s;
  };
  auto start_one = [&]() {
    Transfer& t = live.emplace_back(http.api, keep_text);
    t.easy = curl_easy_init();
    if (!t.easy) throw moeplan::Error("libcurl: cannot create a handle");
    t.body = body(p, next_seq);
    t.res.point = p.index;
    t.res.seq = next_seq++;
    t.res.kind = p.kind;
    t.res.segment = segment;
    common_options(t.easy, http, t.headers);
    t.headers = curl_slist_append(t.headers, "Content-Type: application/json");
    t.headers = curl_slist_append(t.headers, "Accept: text/event-stream");
    // No "Expect: 100-continue" for long prompts: a server that ignores it would add
    // libcurl's wait (1 s) to every TTFT.
    t.headers = curl_slist_append(t.headers, "Expect:");
    curl_easy_setopt(t.easy, CURLOPT_URL, url.c_str());
    curl_easy_setopt(t.easy, CURLOPT_HTTPHEADER, t.headers);
    curl_easy_setopt(t.easy, CURLOPT_POSTFIELDS, t.body.c_str());
    curl_easy_setopt(t.easy, CURLOPT_POSTFIELDSIZE, static_cast<long>(t.body.size()));
    curl_easy_setopt(t.easy, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(t.easy, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(t.easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(t.easy, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(t.easy, CURLOPT_ERRORBUFFER, t.errbuf);
    curl_easy_setopt(t.easy, CURLOPT_PRIVATE, &t);
    t.t0 = Clock::now();
    t.res.start_s = p.elapsed_done_s + seconds(start, t.t0);
    curl_multi_add_handle(multi.get(), t.easy);
  };
  auto finish_one = [&](CURL* e, CURLcode code) {
    Transfer* t = nullptr;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, reinterpret_cast<char**>(&t));
    const auto now = Clock::now();
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    const std::string err =
        code == CURLE_OK ? "" : (t->errbuf[0] ? t->errbuf : curl_easy_strerror(code));
    t->state.finish(classify_curl(code), err, status, t->content_type, seconds(t->t0, now), t->res);
    t->res.end_s = p.elapsed_done_s + seconds(start, now);
    curl_multi_remove_handle(multi.get(), e);
    ++completed;
    if (!t->res.ok()) ++errors;
    done(t->res);
    if (progress) progress(p, completed, errors);
    live.remove_if([&](const Transfer& x) { return &x == t; });
  };

  for (;;) {
    // Start what the loop allows.
    if (p.rate) {
      while (more_to_start() && seconds(start, Clock::now()) >= next_arrival &&
             live.size() < kMaxOpenLoopInFlight) {
        start_one();
        next_arrival += std::exponential_distribution<double>(*p.rate)(rng);
      }
    } else {
      const auto c = static_cast<std::size_t>(std::max(1, p.concurrency.value_or(1)));
      while (live.size() < c && more_to_start()) start_one();
    }
    if (live.empty() && !more_to_start()) break;
    int running = 0;
    curl_multi_perform(multi.get(), &running);
    int left = 0;
    bool finished = false;
    while (CURLMsg* m = curl_multi_info_read(multi.get(), &left))
      if (m->msg == CURLMSG_DONE) {
        finish_one(m->easy_handle, m->data.result);
        finished = true;
      }
    if (finished) continue;  // closed loop: refill at once, not after the next wait
    int wait_ms = 50;
    if (p.rate && more_to_start()) {
      const double until = next_arrival - seconds(start, Clock::now());
      wait_ms = std::clamp(static_cast<int>(std::ceil(until * 1e3)), 0, 50);
    }
    if (!live.empty())
      curl_multi_poll(multi.get(), nullptr, 0, wait_ms, nullptr);
    else if (wait_ms > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
  }
}

}  // namespace moeprobe::load
