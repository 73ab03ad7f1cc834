// `moeprobe load`: what is sent — prompts from a file or synthesised, the tool
// schema of the tool-call check, request bodies (docs/load.md §Requests).
#include <fmt/format.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>

#include "moeplan/errors.hpp"
#include "moeprobe/load.hpp"

namespace moeprobe::load {

std::vector<PromptItem> read_prompts(const std::string& path, bool eval) {
  // A directory opens as an empty stream on Linux: without this it read as "no prompts".
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw moeplan::Error(path + ": is a directory (give a JSON-lines file)");
  errno = 0;
  std::ifstream in(path);
  if (!in) throw moeplan::Error(path + ": cannot open the file: " + moeplan::os_reason(EIO));
  std::vector<PromptItem> out;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = fmt::format("line {}", n);
    Json j;
    try {
      j = Json::parse(line);
    } catch (const std::exception&) {
      // nlohmann's own text counts columns of the line and quotes parser internals.
      throw moeplan::InputError(path, where, "not valid JSON (truncated?)");
    }
    if (!j.is_object()) throw moeplan::InputError(path, where, "not a JSON object");
    PromptItem p;
    const char* key = j.contains("prompt") ? "prompt" : "text";
    if (!j.contains(key) || !j[key].is_string() || j[key].get<std::string>().empty())
      throw moeplan::InputError(path, where + " /prompt", "missing or empty string \"prompt\"");
    p.prompt = j[key].get<std::string>();
    for (const char* k : {"max_tokens", "output_tokens"})
      if (j.contains(k)) {
        if (!j[k].is_number_integer() || j[k].get<long long>() < 1)
          throw moeplan::InputError(path, where + " /" + k, "must be a positive integer");
        p.output = j[k].get<long long>();
      }
    if (eval) {
      if (!j.contains("expect") || !j["expect"].is_string())
        throw moeplan::InputError(path, where + " /expect",
                                  "missing string \"expect\" (a regular expression)");
      p.expect = j["expect"].get<std::string>();
      try {
        std::regex re(p.expect);
      } catch (const std::regex_error& e) {
        throw moeplan::InputError(path, where + " /expect",
                                  std::string("not a valid regular expression: ") + e.what());
      }
    }
    out.push_back(std::move(p));
  }
  if (out.empty()) throw moeplan::InputError(path, "", "no prompts in the file");
  return out;
}

namespace {
// Common words: one token each in the tokenizers of the usual open models
// (and in the test model's vocabulary, scripts/llama-test-server.sh).
const std::vector<std::string>& words() {
  static const std::vector<std::string> w{
      "the",   "of",    "and",  "to",   "in",   "is",    "it",   "that",  "for",   "on",
      "with",  "as",    "was",  "at",   "by",   "this",  "from", "or",    "but",   "not",
      "are",   "be",    "have", "one",  "all",  "we",    "can",  "her",   "has",   "there",
      "been",  "if",    "more", "when", "will", "would", "who",  "so",    "no",    "time",
      "about", "out",   "up",   "into", "only", "new",   "some", "could", "these", "two",
      "may",   "first", "then", "do",   "any",  "like",  "my",   "now",   "over",  "such"};
  return w;
}
}  // namespace

std::string synth_prompt(long long tokens, double prefix_share, std::uint64_t seed) {
  const auto& w = words();
  const long long shared = static_cast<long long>(static_cast<double>(tokens) * prefix_share);
  std::mt19937_64 common(0x6d6f6570726f6265ULL), own(seed);
  std::string s;
  for (long long i = 0; i < tokens; ++i) {
    auto& g = i < shared ? common : own;
    if (i) s += ' ';
    s += w[static_cast<std::size_t>(g() % w.size())];
  }
  return s;
}

Json tool_schema() {
  return Json::parse(R"({"type": "function", "function": {
      "name": "get_weather",
      "description": "Current weather in a city",
      "parameters": {"type": "object",
                     "properties": {"city": {"type": "string"},
                                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                     "required": ["city"]}}})");
}

bool tool_reply_matches(const std::string& name, const std::string& arguments) {
  if (name != "get_weather") return false;
  Json a;
  try {
    a = Json::parse(arguments);
  } catch (const std::exception&) {
    return false;
  }
  if (!a.is_object() || !a.contains("city") || !a["city"].is_string()) return false;
  if (a.contains("unit") &&
      (!a["unit"].is_string() || (a["unit"] != "celsius" && a["unit"] != "fahrenheit")))
    return false;
  for (auto it = a.begin(); it != a.end(); ++it)
    if (it.key() != "city" && it.key() != "unit") return false;
  return true;
}

std::string request_body(const std::string& prompt, const BodyOptions& o) {
  Json b = Json::object();
  if (!o.model.empty()) b["model"] = o.model;
  if (o.api == Api::chat)
    b["messages"] = Json::array({{{"role", "user"}, {"content", prompt}}});
  else
    b["prompt"] = prompt;
  b["max_tokens"] = o.max_tokens;
  b["stream"] = true;
  b["stream_options"] = {{"include_usage", true}};
  b["temperature"] = o.temperature;
  if (o.ignore_eos) b["ignore_eos"] = true;
  if (o.tool) {
    b["tools"] = Json::array({tool_schema()});
    b["tool_choice"] = "auto";
  }
  return b.dump();
}

std::string PointPlan::label() const {
  if (kind == "tool") return "tool calls";
  if (kind == "eval") return "eval";
  if (kind == "warmup") return "warm-up";
  if (rate) return fmt::format("rate={:g}/s", *rate);
  return fmt::format("c={}", concurrency.value_or(1));
}

}  // namespace moeprobe::load
