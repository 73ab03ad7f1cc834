// Catalog loading and validation: the bundled catalogs load and satisfy their
// invariants; broken copies fail with messages naming file, JSON path and problem.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "moeplan/catalog_report.hpp"
#include "moeplan/errors.hpp"
#include "moeplan/json_read.hpp"
#include "moeplan/sizing.hpp"
#include "test_support.hpp"

using namespace moeplan;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

// A scratch copy of the bundled catalogs that a test can break.
struct ScratchCatalog {
  fs::path dir;
  ScratchCatalog() {
    dir = fs::temp_directory_path() /
          ("moeplan-cat-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++));
    fs::remove_all(dir);
    fs::create_directories(dir);
    for (const auto& e : fs::directory_iterator(test::data_dir()))
      if (e.is_regular_file()) fs::copy_file(e.path(), dir / e.path().filename());
  }
  ~ScratchCatalog() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  Json read(const std::string& f) const { return parse_json_file((dir / f).string()); }
  void write(const std::string& f, const Json& j) const { std::ofstream(dir / f) << j.dump(2); }
  void write_text(const std::string& f, const std::string& s) const { std::ofstream(dir / f) << s; }
  static int& counter() {
    static int c = 0;
    return c;
  }
};

}  // namespace

TEST_CASE("Bundled catalogs load with the required ids", "[catalog]") {
  const Catalog& c = test::bundled_catalog();
  for (const char* id :
       {"glm-5.2",           "glm-5",           "deepseek-v3",      "deepseek-r1",
        "deepseek-v4-flash", "deepseek-v4-pro", "kimi-k2",          "kimi-k2.6",
        "mimo-v2.5-pro",     "minimax-m3",      "qwen3-235b-a22b",  "qwen3-30b-a3b",
        "qwen3-8b",          "qwen3-14b",       "qwen3-32b",        "llama-3.1-8b",
        "llama-3.3-70b",     "llama-3.1-405b",  "llama-2-7b",       "llama-2-13b",
        "llama-2-70b",       "llama-4-scout",   "llama-4-maverick", "mixtral-8x7b",
        "gpt-oss-20b",       "gpt-oss-120b",    "gemma-4-31b",      "gemma-4-26b-a4b",
        "mistral-nemo-12b"})
    CHECK(c.find_model(id) != nullptr);
  for (const char* id : {"h100-sxm",
                         "h100-pcie",
                         "h200",
                         "h20",
                         "b200",
                         "b300",
                         "gb200",
                         "rtx-pro-6000",
                         "rtx-5090",
                         "rtx-4090",
                         "rtx-4080",
                         "rtx-3090-ti",
                         "rtx-3090",
                         "rtx-3070",
                         "rtx-3060-12gb",
                         "rtx-4060-ti-16gb",
                         "rtx-4000-sff-ada",
                         "rtx-6000-ada",
                         "rtx-a6000",
                         "l40s",
                         "a100-40gb",
                         "a100-80gb",
                         "mi300x",
                         "mi355x",
                         "gb10",
                         "strix-halo",
                         "apple-m1-max",
                         "apple-m2-ultra",
                         "apple-m3-max",
                         "apple-m3-ultra",
                         "epyc-9554",
                         "ryzen-9-7950x"})
    CHECK(c.find_device(id) != nullptr);
  for (const char* id : {"bf16", "fp16", "fp8", "int8", "nvfp4", "mxfp4", "int4-awq", "int4-gptq",
                         "q8_0", "q6_k", "q5_k_m", "q4_k_m", "q4_0", "q3_k_m", "q2_k", "iq2_xxs"})
    CHECK_NOTHROW(c.weight_format(id));
  for (const char* id : {"fp16", "bf16", "fp8", "q8_0", "q4_0"}) CHECK_NOTHROW(c.kv_format(id));
  for (const char* id : {"vllm", "sglang", "trtllm", "llama.cpp", "mlx", "mlc", "exllamav2"})
    CHECK_NOTHROW(c.engine(id));
  CHECK(c.fx_per_usd("HUF") > 0);
  CHECK(c.content_hash.size() == 16);
}

TEST_CASE("Catalog invariants hold for every entry", "[catalog][property]") {
  const Catalog& c = test::bundled_catalog();
  for (const auto& m : c.models) {
    INFO(m.id);
    CHECK(m.active_params_b <= m.total_params_b);
    CHECK(!m.prov.source.empty());
    CHECK(!m.prov.as_of.empty());
    if (m.prov.estimated) CHECK(!m.prov.notes.empty());
    if (!m.is_moe()) CHECK(m.active_params_b == Approx(m.total_params_b).epsilon(0.02));
    // The architecture accounts for the published total within 10% (else a config field is wrong).
    double arch = 0;
    for (const auto& [comp, n] : architecture_params(m)) arch += n;
    CHECK(arch / 1e9 == Approx(m.total_params_b).epsilon(0.10));
  }
  for (const auto& d : c.devices) {
    INFO(d.id);
    CHECK(d.memory_bandwidth_gb_s > 0);
    for (const auto& f : d.hw_formats) CHECK(d.peak_tflops.count(f) == 1);
  }
  // Effective bits include scales: never below the nominal width of the format family.
  CHECK(c.weight_format("fp8").bits_per_weight >= 8);
  CHECK(c.weight_format("nvfp4").bits_per_weight > 4);
  CHECK(c.weight_format("q8_0").bits_per_weight > 8);
}

// data/systems.json (docs/catalogs.md § systems): every device the search can pick is deployable
// as a whole system, priced as a buyer pays for it (never a bare card), on the same labels.
TEST_CASE("Bundled systems cover every priced device and hold their invariants",
          "[catalog][systems][property]") {
  const Catalog& c = test::bundled_catalog();
  REQUIRE(!c.systems.empty());
  auto prov_ok = [](const Provenance& p) {
    CHECK(!p.source.empty());
    CHECK(!p.as_of.empty());
    if (p.estimated) CHECK(!p.notes.empty());
  };
  for (const auto& s : c.systems) {
    INFO("system " << s.id);
    const Device* d = c.find_device(s.device);
    REQUIRE(d != nullptr);
    prov_ok(s.prov);
    // A node's GPUs share one scale-up domain (GB200 NVL72: a 4-GPU tray in a 72-GPU domain).
    CHECK(s.scale_up.domain_gpus >= s.gpus_per_node);
    // The wall feeds at least the devices at TDP (host, fans and NICs come on top).
    CHECK(s.wall_power_w >= s.gpus_per_node * d->tdp_w);
    if (s.scale_out.kind != "none") CHECK(s.scale_out.gb_s_per_node() > 0);
    for (const auto& p : s.prices) prov_ok(p.prov);
    for (const auto& p : s.host_platform) prov_ok(p.prov);
    for (const auto& r : s.rentals) prov_ok(r.prov);

    // Card bases of the device (prices.json, kind "card").
    std::set<std::string> card_bases;
    for (const HardwarePrice* h : c.hardware_prices_for(s.device))
      if (h->kind == "card") card_bases.insert(h->basis);
    // A host platform only means something next to card prices of the same basis.
    for (const auto& p : s.host_platform) {
      INFO("host_platform basis " << p.basis);
      CHECK(card_bases.count(p.basis) == 1);
    }
    // Card-priced systems (no complete-system price) carry a platform for every card basis, so
    // `own` composes cards x n + platform and never prices a bare card.
    if (s.prices.empty())
      for (const auto& b : card_bases) {
        INFO("card basis " << b);
        bool has = false;
        for (const auto& p : s.host_platform) has = has || p.basis == b;
        CHECK(has);
      }
  }

  // Every device with any price (the devices `plan --builds auto` and `recommend` consider) has
  // at least one system, and at least one of them can be priced.
  std::set<std::string> priced;
  for (const auto& h : c.hardware_prices) priced.insert(h.device);
  for (const auto& r : c.rental_prices) priced.insert(r.device);
  REQUIRE(!priced.empty());
  for (const auto& dev : priced) {
    INFO("device " << dev);
    const auto sys = c.systems_for(dev);
    CHECK(!sys.empty());
    bool cards = false;
    for (const HardwarePrice* h : c.hardware_prices_for(dev)) cards = cards || h->kind == "card";
    bool priceable = false;
    for (const System* s : sys)
      priceable = priceable || !s->prices.empty() || !s->rentals.empty() ||
                  (cards && !s->host_platform.empty());
    CHECK(priceable);
  }

  // Per-GPU-hour rentals in prices.json reappear per node-hour (x gpus_per_node) on every system
  // of that device that lists rentals: converted, not re-invented. A 36-month reservation is
  // reserved_3y.
  for (const auto& rp : c.rental_prices) {
    const std::string kind = rp.kind == "reserved" ? (rp.commitment_months == 36   ? "reserved_3y"
                                                      : rp.commitment_months == 12 ? "reserved_1y"
                                                                                   : "reserved")
                                                   : rp.kind;
    for (const System* s : c.systems_for(rp.device)) {
      if (s->rentals.empty()) continue;
      INFO(s->id << " " << rp.provider << " " << kind);
      bool found = false;
      for (const auto& r : s->rentals)
        found = found ||
                (r.kind == kind &&
                 std::abs(r.usd_per_node_hour - rp.usd_per_gpu_hour * s->gpus_per_node) < 0.01);
      CHECK(found);
    }
  }
}

TEST_CASE("systems.json errors name file, JSON path and problem", "[catalog][systems][errors]") {
  ScratchCatalog s;
  Json j = s.read("systems.json");
  SECTION("unknown device") {
    j["systems"][0]["device"] = "h300";
    s.write("systems.json", j);
    CHECK_THROWS_WITH(load_catalog(s.dir.string()), Contains("systems.json") &&
                                                        Contains("/systems/0/device") &&
                                                        Contains("unknown device 'h300'"));
  }
  SECTION("scale-up domain smaller than the node") {
    j["systems"][0]["scale_up"]["domain_gpus"] = 4;
    s.write("systems.json", j);
    CHECK_THROWS_WITH(load_catalog(s.dir.string()), Contains("/systems/0/scale_up/domain_gpus") &&
                                                        Contains("smaller than gpus_per_node"));
  }
  SECTION("gross price without its VAT rate") {
    j["systems"][0]["prices"][0]["includes_vat"] = true;
    j["systems"][0]["prices"][0].erase("vat_rate");
    s.write("systems.json", j);
    CHECK_THROWS_WITH(load_catalog(s.dir.string()),
                      Contains("/systems/0/prices/0/vat_rate") && Contains("required (> 0)"));
  }
  SECTION("rental kind outside the shared labels") {
    j["systems"][0]["rentals"][0]["kind"] = "reserved";
    s.write("systems.json", j);
    CHECK_THROWS_WITH(load_catalog(s.dir.string()), Contains("/systems/0/rentals/0/kind"));
  }
  SECTION("rental without a source") {
    j["systems"][0]["rentals"][0].erase("source");
    s.write("systems.json", j);
    CHECK_THROWS_WITH(load_catalog(s.dir.string()),
                      Contains("/systems/0/rentals/0/source: required field is missing"));
  }
}

TEST_CASE("Published checkpoint sizes agree with computed weights", "[catalog]") {
  const auto findings = check_catalog(test::bundled_catalog());
  for (const auto& f : findings) WARN(f.json_path << ": " << f.message);
  // Findings are warnings by design; a catalog edit that breaks more than a few should be looked
  // at.
  std::size_t checkpoint_mismatch = 0;
  for (const auto& f : findings)
    if (f.message.find("checkpoint") != std::string::npos) ++checkpoint_mismatch;
  CHECK(checkpoint_mismatch <= 3);
}

TEST_CASE("Catalog errors name file, JSON path, expected and found", "[catalog][errors]") {
  ScratchCatalog s;
  SECTION("syntax error reports line and column") {
    s.write_text("models.json", "{\n  \"schema_version\": 1,\n  \"models\": [ , ]\n}\n");
    CHECK_THROWS_WITH(load_catalog(s.dir.string()),
                      Contains("models.json") && Contains("line 3, column"));
  }
  SECTION("wrong type") {
    Json j = s.read("models.json");
    j["models"][0]["layers"] = "sixty";
    s.write("models.json", j);
    CHECK_THROWS_WITH(load_catalog(s.dir.string()),
                      Contains("models.json: /models/0/layers: expected an integer, found string"));
  }
  SECTION("missing required field") {
    Json j = s.read("devices.json");
    j["devices"][1].erase("memory_gb");
    s.write("devices.json", j);
    CHECK_THROWS_WITH(load_catalog(s.dir.string()),
                      Contains("/devices/1/memory_gb: required field is missing"));
  }
  SECTION("unknown key suggests the right one") {
    Json j = s.read("devices.json");
    j["devices"][0]["memory_gbs"] = 80;
    s.write("devices.json", j);
    CHECK_THROWS_WITH(load_catalog(s.dir.string()),
                      Contains("unknown field 'memory_gbs', did you mean 'memory_gb'?"));
  }
  SECTION("active above total") {
    Json j = s.read("models.json");
    j["models"][0]["active_params_b"] = 1e6;
    s.write("models.json", j);
    CHECK_THROWS_WITH(load_catalog(s.dir.string()), Contains("exceed total parameters"));
  }
  SECTION("duplicate id") {
    Json j = s.read("models.json");
    j["models"].push_back(j["models"][0]);
    s.write("models.json", j);
    CHECK_THROWS_WITH(load_catalog(s.dir.string()), Contains("duplicate model id"));
  }
  SECTION("missing source") {
    Json j = s.read("precisions.json");
    j["weight_formats"][0].erase("source");
    s.write("precisions.json", j);
    CHECK_THROWS_WITH(load_catalog(s.dir.string()),
                      Contains("/weight_formats/0/source: required field is missing"));
  }
  SECTION("estimated without notes") {
    Json j = s.read("devices.json");
    j["devices"][0]["estimated"] = true;
    j["devices"][0].erase("notes");
    s.write("devices.json", j);
    CHECK_THROWS_WITH(load_catalog(s.dir.string()),
                      Contains("required when \"estimated\" is true"));
  }
  SECTION("unknown reference between files") {
    Json j = s.read("prices.json");
    j["api"][0]["model"] = "glm-5.3";
    s.write("prices.json", j);
    CHECK_THROWS_WITH(load_catalog(s.dir.string()),
                      Contains("/api/0/model") && Contains("unknown model 'glm-5.3'"));
  }
  SECTION("unknown precision in a model") {
    Json j = s.read("models.json");
    j["models"][0]["native_precision"]["default"] = "fp7";
    s.write("models.json", j);
    CHECK_THROWS_WITH(load_catalog(s.dir.string()),
                      Contains("native_precision/default") && Contains("unknown weight precision"));
  }
  SECTION("negative price") {
    Json j = s.read("prices.json");
    j["api"][0]["output_per_mtok"] = -1;
    s.write("prices.json", j);
    CHECK_THROWS_WITH(load_catalog(s.dir.string()), Contains("expected a number >= 0"));
  }
  SECTION("missing file") {
    fs::remove(s.dir / "fx.json");
    CHECK_THROWS_WITH(load_catalog(s.dir.string()), Contains("fx.json") && Contains("cannot open"));
  }
}

TEST_CASE("catalog CLI: check passes, errors exit non-zero", "[catalog][cli]") {
  const auto ok = test::run_moeplan("catalog check");
  CHECK(ok.exit_code == 0);
  CHECK_THAT(ok.output, Contains("catalog OK"));
  ScratchCatalog s;
  Json j = s.read("devices.json");
  j["devices"][0]["tdp_w"] = -5;
  s.write("devices.json", j);
  const auto bad = test::run_moeplan("--data " + s.dir.string() + " catalog check");
  CHECK(bad.exit_code == 1);
  CHECK_THAT(bad.output, Contains("devices.json: /devices/0/tdp_w: expected a number > 0"));
  const auto list = test::run_moeplan("catalog list models --format csv");
  CHECK(list.exit_code == 0);
  CHECK_THAT(list.output, Contains("glm-5.2"));
}

TEST_CASE("fit CLI: JSON fields and did-you-mean", "[sizing][cli]") {
  const auto r = test::run_moeplan(
      "fit --model deepseek-r1 --gpu h100-sxm --gpus 8 --weights fp8 --format json");
  REQUIRE(r.exit_code == 0);
  const Json j = Json::parse(r.output);
  CHECK(j["fits"] == false);
  for (const char* k : {"weights_bytes", "kv_bytes_per_token", "capacity_bytes", "max_concurrency",
                        "max_context_tokens", "min_gpus", "per_gpu", "provenance"})
    CHECK(j.contains(k));
  CHECK(j["per_gpu"].size() == 8);
  const auto bad = test::run_moeplan("fit --model deepseek-r2 --gpu h100-sxm --gpus 8");
  CHECK(bad.exit_code == 1);
  CHECK_THAT(bad.output, Contains("unknown model 'deepseek-r2', did you mean"));
}

TEST_CASE("did-you-mean ranks close ids first", "[catalog][errors]") {
  CHECK(edit_distance("kitten", "sitting") == 3);
  const auto near = closest_ids("h10", {"h100-sxm", "h200", "b200", "mi300x"});
  REQUIRE_FALSE(near.empty());
  CHECK(near[0] == "h100-sxm");
}
