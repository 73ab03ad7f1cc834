// `moeprobe load`: server-sent events, one reply's measurements and their
// classification (docs/load.md §Timers, §Failure classes).
#include <fmt/format.h>

#include <algorithm>

#include "moeplan/errors.hpp"
#include "moeprobe/load.hpp"

namespace moeprobe::load {

Api parse_api(const std::string& s) {
  if (s == "chat") return Api::chat;
  if (s == "completions") return Api::completions;
  throw moeplan::Error("--api: '" + s + "' is not chat or completions");
}

const char* api_path(Api a) {
  return a == Api::chat ? "/v1/chat/completions" : "/v1/completions";
}

const char* failure_name(Failure f) {
  switch (f) {
    case Failure::none:
      return "none";
    case Failure::connect:
      return "connect";
    case Failure::timeout:
      return "timeout";
    case Failure::http:
      return "http";
    case Failure::malformed:
      return "malformed";
    case Failure::cut_off:
      return "cut_off";
  }
  return "?";
}

const std::vector<Failure>& failure_classes() {
  static const std::vector<Failure> v{Failure::connect, Failure::timeout, Failure::http,
                                      Failure::malformed, Failure::cut_off};
  return v;
}

// --- SSE ---------------------------------------------------------------------

void SseParser::end_line(const std::function<void(const std::string&)>& on_data) {
  if (!line_.empty() && line_.back() == '\r') line_.pop_back();
  if (line_.empty()) {  // blank line: dispatch
    if (has_data_) on_data(data_);
    data_.clear();
    has_data_ = false;
    return;
  }
  if (line_[0] == ':') {  // comment (keep-alive)
    line_.clear();
    return;
  }
  const auto colon = line_.find(':');
  const std::string field = line_.substr(0, colon);
  std::string value = colon == std::string::npos ? "" : line_.substr(colon + 1);
  if (!value.empty() && value[0] == ' ') value.erase(0, 1);
  if (field == "data") {
    if (has_data_) data_ += '\n';
    data_ += value;
    has_data_ = true;
  }
  line_.clear();
}

void SseParser::feed(const char* p, std::size_t n,
                     const std::function<void(const std::string&)>& on_data) {
  bytes_ += n;
  for (std::size_t i = 0; i < n; ++i) {
    if (p[i] == '\n') {
      end_line(on_data);
      line_.clear();
    } else {
      line_ += p[i];
    }
  }
}

void SseParser::finish(const std::function<void(const std::string&)>& on_data) {
  if (!line_.empty()) end_line(on_data);
  if (has_data_) on_data(data_);
  data_.clear();
  has_data_ = false;
}

// --- one reply ---------------------------------------------------------------

namespace {

std::optional<long long> opt_int(const Json& j, const char* key) {
  if (j.is_object() && j.contains(key) && j[key].is_number_integer())
    return j[key].get<long long>();
  return std::nullopt;
}

std::string str_or_empty(const Json& j, const char* key) {
  if (j.is_object() && j.contains(key) && j[key].is_string()) return j[key].get<std::string>();
  return "";
}

}  // namespace

void StreamState::on_bytes(const char* p, std::size_t n, double t_s) {
  if (body_head_.size() < 300)
    body_head_.append(p, std::min<std::size_t>(n, 300 - body_head_.size()));
  sse_.feed(p, n, [&](const std::string& d) { on_event(d, t_s); });
}

void StreamState::on_event(const std::string& data, double t_s) {
  if (data == "[DONE]") {
    done_ = true;
    return;
  }
  Json j;
  try {
    j = Json::parse(data);
  } catch (const std::exception&) {
    if (malformed_.empty()) malformed_ = "event is not JSON: " + data.substr(0, 80);
    return;
  }
  if (!j.is_object()) {
    if (malformed_.empty()) malformed_ = "event is not a JSON object: " + data.substr(0, 80);
    return;
  }
  if (j.contains("error")) {  // vLLM and others report failures inside the stream
    const Json& e = j["error"];
    server_error_ = e.is_object() ? str_or_empty(e, "message") : e.dump();
    if (server_error_.empty()) server_error_ = e.dump();
    return;
  }
  if (j.contains("usage") && j["usage"].is_object()) {
    const Json& u = j["usage"];
    prompt_ = opt_int(u, "prompt_tokens");
    completion_ = opt_int(u, "completion_tokens");
    if (u.contains("prompt_tokens_details") && u["prompt_tokens_details"].is_object())
      cached_ = opt_int(u["prompt_tokens_details"], "cached_tokens");
  }
  if (!j.contains("choices")) {
    if (!j.contains("usage") && malformed_.empty())
      malformed_ = "event has neither choices nor usage: " + data.substr(0, 80);
    return;
  }
  if (!j["choices"].is_array()) {
    if (malformed_.empty()) malformed_ = "choices is not an array";
    return;
  }
  for (const Json& c : j["choices"]) {
    if (!c.is_object()) continue;
    std::string piece;
    bool tool_piece = false;
    if (api_ == Api::chat) {
      const Json d = c.contains("delta") && c["delta"].is_object() ? c["delta"] : Json::object();
      piece = str_or_empty(d, "content");
      if (piece.empty()) piece = str_or_empty(d, "reasoning_content");
      if (d.contains("tool_calls") && d["tool_calls"].is_array()) {
        for (const Json& tc : d["tool_calls"]) {
          if (!tc.is_object() || !tc.contains("function")) continue;
          const Json& f = tc["function"];
          tool_name_ += str_or_empty(f, "name");
          tool_args_ += str_or_empty(f, "arguments");
          tool_piece = true;
        }
      }
    } else {
      piece = str_or_empty(c, "text");
    }
    if (!piece.empty() || tool_piece) {
      token_times_.push_back(t_s);
      if (keep_text_) text_ += piece;
    }
    if (c.contains("finish_reason") && !c["finish_reason"].is_null()) finished_ = true;
  }
}

void StreamState::finish(Failure curl_failure, const std::string& curl_error, long http_status,
                         const std::string& content_type, double t_s, RequestResult& out) {
  sse_.finish([&](const std::string& d) { on_event(d, t_s); });
  out.http_status = http_status;
  out.e2e_ms = t_s * 1e3;
  out.content_events = static_cast<long long>(token_times_.size());
  if (!token_times_.empty()) out.ttft_ms = token_times_.front() * 1e3;
  out.itl_ms.clear();
  for (std::size_t i = 1; i < token_times_.size(); ++i)
    out.itl_ms.push_back((token_times_[i] - token_times_[i - 1]) * 1e3);
  out.prompt_tokens = prompt_;
  out.completion_tokens = completion_;
  out.cached_tokens = cached_;
  out.usage_missing = !completion_.has_value();
  out.text = text_;
  out.tool_name = tool_name_;
  out.tool_arguments = tool_args_;
  // Order matters: the transport first, then the status, then the stream.
  if (curl_failure != Failure::none) {
    out.failure = curl_failure;
    out.error = curl_error;
    // A transfer that broke after some events arrived was cut off, whatever libcurl calls it.
    if (curl_failure != Failure::connect && curl_failure != Failure::timeout &&
        !token_times_.empty())
      out.failure = Failure::cut_off;
  } else if (http_status >= 400) {
    out.failure = Failure::http;
    std::string head = body_head_;
    std::replace(head.begin(), head.end(), '\n', ' ');
    out.error = fmt::format("HTTP {}: {}", http_status, head.substr(0, 200));
  } else if (!server_error_.empty()) {
    out.failure = Failure::http;
    out.error = "error event in the stream: " + server_error_;
  } else if (content_type.find("text/event-stream") == std::string::npos && !done_ &&
             token_times_.empty()) {
    out.failure = Failure::malformed;
    std::string head = body_head_;
    std::replace(head.begin(), head.end(), '\n', ' ');
    out.error = fmt::format("not a server-sent event stream (Content-Type '{}', body '{}')",
                            content_type, head.substr(0, 120));
  } else if (!malformed_.empty()) {
    out.failure = Failure::malformed;
    out.error = malformed_;
  } else if (!done_ && !finished_) {
    out.failure = Failure::cut_off;
    out.error = fmt::format("stream ended after {} events without finish_reason or [DONE]",
                            token_times_.size());
  } else {
    out.failure = Failure::none;
  }
}

// --- results -----------------------------------------------------------------

long long RequestResult::output_tokens() const {
  return completion_tokens ? *completion_tokens : content_events;
}

std::optional<double> RequestResult::tpot_ms() const {
  const long long n = output_tokens();
  if (!ttft_ms || n < 2 || itl_ms.empty()) return std::nullopt;
  double span = 0;
  for (double g : itl_ms) span += g;
  // Every token in the first read (a proxy that buffers the stream): no decode rate was seen. A
  // TPOT of 0 would read as infinitely fast, and moeplan refuses a pilot file that states one.
  if (span <= 0) return std::nullopt;
  return span / static_cast<double>(n - 1);
}

Json RequestResult::to_json() const {
  auto opt = [](const auto& v) { return v ? Json(*v) : Json(nullptr); };
  Json j{{"type", "request"},
         {"point", point},
         {"seq", seq},
         {"kind", kind},
         {"segment", segment},
         {"start_s", start_s},
         {"end_s", end_s},
         {"ttft_ms", opt(ttft_ms)},
         {"e2e_ms", e2e_ms},
         {"itl_ms", itl_ms},
         {"content_events", content_events},
         {"prompt_tokens", opt(prompt_tokens)},
         {"completion_tokens", opt(completion_tokens)},
         {"cached_tokens", opt(cached_tokens)},
         {"usage_missing", usage_missing},
         {"http_status", http_status},
         {"failure", failure_name(failure)},
         {"error", error}};
  if (kind == "tool") {
    j["tool_name"] = tool_name;
    j["tool_arguments"] = tool_arguments;
  }
  if (check_ok) j["check_ok"] = *check_ok;
  return j;
}

RequestResult RequestResult::from_json(const Json& j) {
  RequestResult r;
  try {
    r.point = j.at("point").get<int>();
    r.seq = j.at("seq").get<long long>();
    r.kind = j.at("kind").get<std::string>();
    r.segment = j.at("segment").get<int>();
    r.start_s = j.at("start_s").get<double>();
    r.end_s = j.at("end_s").get<double>();
    if (!j.at("ttft_ms").is_null()) r.ttft_ms = j["ttft_ms"].get<double>();
    r.e2e_ms = j.at("e2e_ms").get<double>();
    r.itl_ms = j.at("itl_ms").get<std::vector<double>>();
    r.content_events = j.at("content_events").get<long long>();
    for (auto [key, dst] : {std::pair{"prompt_tokens", &r.prompt_tokens},
                            std::pair{"completion_tokens", &r.completion_tokens},
                            std::pair{"cached_tokens", &r.cached_tokens}})
      if (!j.at(key).is_null()) *dst = j[key].get<long long>();
    r.usage_missing = j.at("usage_missing").get<bool>();
    r.http_status = j.at("http_status").get<long>();
    const std::string f = j.at("failure").get<std::string>();
    r.failure = Failure::none;
    for (Failure c : failure_classes())
      if (f == failure_name(c)) r.failure = c;
    r.error = j.at("error").get<std::string>();
    r.tool_name = j.value("tool_name", "");
    r.tool_arguments = j.value("tool_arguments", "");
    if (j.contains("check_ok")) r.check_ok = j["check_ok"].get<bool>();
  } catch (const Json::exception& e) {
    throw moeplan::Error(std::string("log line is not a request record: ") + e.what());
  }
  return r;
}

}  // namespace moeprobe::load
