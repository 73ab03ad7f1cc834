// The planner's calibration reader: interpolation rules and schema validation.
#include <catch2/catch.hpp>

#include "moeplan/calibration.hpp"
#include "moeplan/calibration_check.hpp"
#include "moeplan/errors.hpp"
#include "moeplan/json_read.hpp"

using namespace moeplan;

namespace {

Json minimal() {
  Json row = {{"op", "moe.fused"},
              {"shape", "moe:8x32x64,k2"},
              {"dtype", "fp32"},
              {"distribution", "balanced"},
              {"tokens", 1},
              {"context", 0},
              {"p50_s", 2e-5},
              {"p10_s", 1e-5},
              {"p90_s", 3e-5},
              {"samples", 10},
              {"bytes", 1e6},
              {"flops", 2e6},
              {"roofline_s", nullptr},
              {"util", nullptr},
              {"roofline_measured_s", 1e-5},
              {"util_measured", 0.5},
              {"gb_s", 50.0},
              {"tflops", 0.1},
              {"experts_touched", 2},
              {"verified", true},
              {"max_err", 1e-7}};
  Json j = Json::object();
  j["schema"] = "moeplan-calibration";
  j["schema_version"] = 1;
  j["created_utc"] = "2025-01-01T00:00:00Z";
  j["probe"] = {{"version", "1.0.0"}, {"git_sha", "abc"}, {"backend", "cpu"}};
  j["device"] = {{"name", "Test CPU"}, {"kind", "cpu"}, {"memory_gb", 64.0}, {"cores", 16}};
  j["model"] = {{"id", "m"}, {"layers", 10}};
  j["config"] = {{"dtype", "fp32"}};
  j["rows"] = Json::array({row});
  Json eff = Json::object();
  eff["gemm"] = {{"points", Json::array({{{"tokens", 1}, {"efficiency", 0.2}},
                                         {{"tokens", 4}, {"efficiency", 0.5}},
                                         {{"tokens", 16}, {"efficiency", 0.8}}})},
                 {"fit", {{"e_max", 0.9}, {"n_half", 3.0}, {"rms", 0.01}}}};
  j["fits"] = {{"bandwidth_gb_s", 100.0},
               {"catalog_bandwidth_gb_s", 200.0},
               {"bandwidth_fraction", 0.5},
               {"step_latency_s", 1e-5},
               {"effective_bandwidth_gb_s", 90.0},
               {"latency_fit", Json::object()},
               {"compute_plateau_tflops", {{"fp32", 1.5}}},
               {"efficiency", eff}};
  j["decode_step"] = Json::array({{{"tokens", 1},
                                   {"context", 1024},
                                   {"layer_s", 1e-3},
                                   {"dense_layer_s", 0.0},
                                   {"stack_s", 1e-2}},
                                  {{"tokens", 8},
                                   {"context", 1024},
                                   {"layer_s", 2e-3},
                                   {"dense_layer_s", 0.0},
                                   {"stack_s", 2e-2}}});
  return j;
}

}  // namespace

TEST_CASE("calibration: values, interpolation, clamping", "[calibration]") {
  const Calibration c = parse_calibration(minimal().dump(), "cal.json");
  CHECK(c.bandwidth_gb_s() == 100);
  CHECK(*c.bandwidth_fraction() == 0.5);
  CHECK(c.step_latency_s() == 1e-5);
  CHECK(*c.compute_plateau_tflops("fp32") == 1.5);
  CHECK_FALSE(c.compute_plateau_tflops("bf16"));
  CHECK(c.device.name == "Test CPU");
  CHECK(c.efficiency("gemm", 1) == Approx(0.2));  // exact at measured points
  CHECK(c.efficiency("gemm", 4) == Approx(0.5));
  CHECK(c.efficiency("gemm", 10) == Approx(0.65));   // linear between 4 and 16
  CHECK(c.efficiency("gemm", 0.5) == Approx(0.2));   // held below
  CHECK(c.efficiency("gemm", 1000) == Approx(0.8));  // held above
  CHECK(c.decode_step_s(1) == Approx(1e-2));
  CHECK(c.decode_step_s(4.5) == Approx(1.5e-2));
  CHECK(c.decode_step_s(64) == Approx(2e-2));
  CHECK_THROWS_AS(c.efficiency("attention_decode", 1), UnknownIdError);
  CHECK(interpolate_clamped({{2, 5}}, 7) == 5);
  CHECK_THROWS_AS(interpolate_clamped({}, 1), Error);
}

TEST_CASE("calibration: validation errors name the file and path", "[calibration]") {
  auto fails = [](Json j, const std::string& text) {
    try {
      parse_calibration(j.dump(), "cal.json");
      FAIL("no error for " << text);
    } catch (const InputError& e) {
      INFO(e.what());
      CHECK(std::string(e.what()).find(text) != std::string::npos);
      CHECK(std::string(e.what()).find("cal.json") == 0);
    }
  };
  Json j = minimal();
  j["schema"] = "other";
  fails(j, "moeplan-calibration");
  j = minimal();
  j["schema_version"] = 2;
  fails(j, "newer than this moeplan reads");
  j = minimal();
  j["rows"][0]["p10_s"] = 5e-5;
  fails(j, "p10_s <= p50_s <= p90_s");
  j = minimal();
  j["rows"][0]["verified"] = false;
  fails(j, "unverified");
  j = minimal();
  j["rows"][0]["latency"] = 1;
  fails(j, "latency");
  j = minimal();
  j["fits"].erase("bandwidth_gb_s");
  fails(j, "bandwidth_gb_s");
  j = minimal();
  j["fits"]["efficiency"]["gemm"]["points"][1]["tokens"] = 1;
  fails(j, "ascending");
  j = minimal();
  j["device"]["kind"] = "tpu";
  fails(j, "kind");
}

TEST_CASE("calibration: the probe's quality section is read, its verdict kept", "[calibration]") {
  // Files written before issue #13 have no section: nothing to report.
  const Calibration old = parse_calibration(minimal().dump(), "cal.json");
  CHECK_FALSE(old.has_quality);
  CHECK(old.quality_reasons.empty());

  Json j = minimal();
  j["quality"] =
      Json{{"spread", Json{{"p90_p50", Json::array({1.05})}}},
           {"load_average", Json{{"start", 7.5}, {"end", 3.0}, {"max", 7.5}, {"cpus", 2}}},
           {"clock_drops", Json{{"count", "not measured"}, {"note", "cpu"}}},
           {"build", Json{{"compiler", "GNU 12"},
                          {"build_type", "Release"},
                          {"sanitizers", false},
                          {"cuda", false}}},
           {"noisy", true},
           {"reasons", Json::array({"load average 7.50 above the 2 CPUs"})}};
  const Calibration c = parse_calibration(j.dump(), "cal.json");
  CHECK(c.has_quality);
  CHECK(c.quality_noisy);
  REQUIRE(c.quality_reasons.size() == 1);
  CHECK(c.quality_reasons[0] == "load average 7.50 above the 2 CPUs");

  auto fails = [](const Json& bad, const std::string& text) {
    try {
      parse_calibration(bad.dump(), "cal.json");
      FAIL("no error for " << text);
    } catch (const InputError& e) {
      INFO(e.what());
      CHECK(std::string(e.what()).find(text) != std::string::npos);
      CHECK(std::string(e.what()).find("/quality") != std::string::npos);
    }
  };
  Json bad = j;
  bad["quality"]["reasons"] = Json::array();
  fails(bad, "no reason is given");
  bad = j;
  bad["quality"]["noisy"] = false;
  fails(bad, "noisy is false");
  bad = j;
  bad["quality"]["loudness"] = 1;
  fails(bad, "loudness");
  bad = j;
  bad["quality"]["reasons"] = Json::array({3});
  fails(bad, "reasons");
}

TEST_CASE("calibration: another model's file is used for its node terms, a noisy one is doubted",
          "[calibration]") {
  Json j = minimal();
  j["model"]["id"] = "qwen3-30b-a3b";
  const Calibration c = parse_calibration(j.dump(), "cal.json");
  REQUIRE(c.model_id == "qwen3-30b-a3b");
  Model own, other;
  own.id = "qwen3-30b-a3b";
  other.id = "glm-5.2";
  // The model is no reason to refuse a file: calibration_for keeps only the node's terms.
  CHECK(calibration_doubts(c).empty());
  CHECK(calibration_model_note(c, own).empty());
  const std::string note = calibration_model_note(c, other);
  CHECK_THAT(note, Catch::Contains("measured for model 'qwen3-30b-a3b', applied to 'glm-5.2'"));
  CHECK_THAT(note, Catch::Contains("do not"));
  // Noise still is: the probe's own verdict comes back as a doubt, whatever the model.
  j["quality"] = Json{{"spread", Json{{"p90_p50", Json::array({1.05})}}},
                      {"noisy", true},
                      {"reasons", Json::array({"load average 7.50 above the 2 CPUs"})}};
  const Calibration noisy = parse_calibration(j.dump(), "cal.json");
  REQUIRE(calibration_doubts(noisy).size() == 1);
  CHECK(calibration_doubts(noisy)[0] == "load average 7.50 above the 2 CPUs");
}
