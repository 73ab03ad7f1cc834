// Catalog loading and validation: the bundled catalogs load and satisfy their
// invariants; broken copies fail with messages naming file, JSON path and problem.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
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
    // The architecture accounts for the published total and active counts within 2%, or the
    // entry explains why not (docs/catalogs.md, "Parameter invariant").
    const ParamCheck pc = check_params(m);
    if (std::fabs(pc.total_dev_pct) > 2 || std::fabs(pc.active_dev_pct) > 2)
      CHECK_FALSE(m.params_note.empty());
    CHECK(std::fabs(pc.total_dev_pct) < 10);
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
  SECTION("a purchase unit of no nodes") {
    j["systems"][0]["purchase_unit_nodes"] = 0;
    s.write("systems.json", j);
    CHECK_THROWS_WITH(load_catalog(s.dir.string()),
                      Contains("systems.json") && Contains("/systems/0/purchase_unit_nodes"));
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
    j["devices"][1].erase("memory_gib");
    s.write("devices.json", j);
    CHECK_THROWS_WITH(load_catalog(s.dir.string()),
                      Contains("/devices/1/memory_gib: required field is missing"));
  }
  SECTION("unknown key suggests the right one") {
    Json j = s.read("devices.json");
    j["devices"][0]["memory_gibs"] = 80;
    s.write("devices.json", j);
    CHECK_THROWS_WITH(load_catalog(s.dir.string()),
                      Contains("unknown field 'memory_gibs', did you mean 'memory_gib'?"));
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
  SECTION("hardware price without includes_vat") {
    Json j = s.read("prices.json");
    j["hardware"][0].erase("includes_vat");
    s.write("prices.json", j);
    CHECK_THROWS_WITH(load_catalog(s.dir.string()), Contains("/hardware/0/includes_vat") &&
                                                        Contains("whether the price includes"));
  }
  SECTION("gross hardware price without its VAT rate") {
    Json j = s.read("prices.json");
    REQUIRE(j["hardware"][1]["includes_vat"] == true);  // the 140M HUF node, 27% VAT
    j["hardware"][1].erase("vat_rate");
    s.write("prices.json", j);
    CHECK_THROWS_WITH(load_catalog(s.dir.string()),
                      Contains("/hardware/1/vat_rate") && Contains("needs the rate"));
  }
  SECTION("VAT rate on a net hardware price, or outside [0, 1)") {
    Json j = s.read("prices.json");
    j["hardware"][0]["vat_rate"] = 0.2;  // includes_vat is false
    s.write("prices.json", j);
    CHECK_THROWS_WITH(load_catalog(s.dir.string()),
                      Contains("/hardware/0/vat_rate") && Contains("includes_vat is false"));
    j = s.read("prices.json");
    j["hardware"][0].erase("vat_rate");
    j["hardware"][1]["vat_rate"] = 27;  // a percentage, not a share
    s.write("prices.json", j);
    CHECK_THROWS_WITH(load_catalog(s.dir.string()), Contains("/hardware/1/vat_rate"));
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
  // The listings carry the new fields: marketed GiB next to decimal GB, usable memory, and the
  // context extension.
  const auto devs = test::run_moeplan("catalog list devices --format json");
  REQUIRE(devs.exit_code == 0);
  const Json devs_doc = Json::parse(devs.output);  // the loop must not outlive a temporary
  for (const auto& d : devs_doc["items"]) {
    if (d["id"] != "h100-sxm") continue;
    CHECK(d["memory_gib"] == 80);
    CHECK(d["memory_gb"].get<double>() == Approx(85.899).epsilon(1e-4));
    CHECK(d["usable_memory_gb"].get<double>() == Approx(85.52).epsilon(1e-3));
  }
  const auto models = test::run_moeplan("catalog list models --format json");
  REQUIRE(models.exit_code == 0);
  const Json models_doc = Json::parse(models.output);
  for (const auto& m : models_doc["items"])
    if (m["id"] == "qwen3-8b") CHECK(m["context_extension"]["max_context_tokens"] == 131072);
}

TEST_CASE("fit CLI: JSON fields and did-you-mean", "[sizing][cli]") {
  // A build that does not fit still gets its report, then exits 3 (a check failed) with the
  // reason on stderr (2>/dev/null keeps the JSON parseable here).
  const auto r = test::run_command(
      "sh -c '" + std::string(MOEPLAN_CLI) +
      " fit --model deepseek-r1 --gpu h100-sxm --gpus 8 --weights fp8 --format json 2>/dev/null'");
  REQUIRE(r.exit_code == 3);
  const auto why = test::run_command(
      "sh -c '" + std::string(MOEPLAN_CLI) +
      " fit --model deepseek-r1 --gpu h100-sxm --gpus 8 --weights fp8 >/dev/null'");
  CHECK_THAT(why.output, Contains("error: fit: does not fit: weights need"));
  CHECK(test::run_moeplan("fit --model deepseek-r1 --gpu h200 --gpus 8 --weights fp8").exit_code ==
        0);
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

namespace {
// Index of the first element of `arr` whose `key` is `value`; arr.size() when none.
std::size_t index_where(const Json& arr, const char* key, const std::string& value) {
  for (std::size_t i = 0; i < arr.size(); ++i)
    if (arr[i][key] == value) return i;
  return arr.size();
}

const CatalogWarning* find_finding(const std::vector<CatalogWarning>& f, const std::string& needle,
                                   FindingLevel level) {
  for (const auto& w : f)
    if (w.level == level && w.message.find(needle) != std::string::npos) return &w;
  return nullptr;
}
}  // namespace

TEST_CASE("DeepSeek V4: compressed attention counted from its real layout", "[catalog][v4]") {
  const Catalog& c = test::bundled_catalog();
  // Hand count (Flash, per layer, h 4096, 64 heads × 512, q_lora 1024, 8 groups × 1024):
  // wq_a 4.19M + wq_b 33.55M + wkv 2.10M + wo_a 33.55M + wo_b 33.55M = 106.95M; plus the
  // compressor (16.8M on ratio-4, 4.2M on ratio-128 layers) and the indexer on ratio-4 layers
  // (8.39M + 0.26M + 1.05M): 5.08B of attention over 43 layers. With 256 experts × 3 × 4096 ×
  // 2048, the shared expert, router and both embeddings: 284.3B total, 13.8B active.
  // The MLA mapping used before gave 16.5B / 68.5B active.
  const ParamCheck flash = check_params(c.model("deepseek-v4-flash"));
  CHECK(flash.arch_total_b == Approx(284.33).epsilon(0.002));
  CHECK(flash.arch_active_b == Approx(13.80).epsilon(0.005));
  const ParamCheck pro = check_params(c.model("deepseek-v4-pro"));
  CHECK(pro.arch_total_b == Approx(1572.99).epsilon(0.002));
  CHECK(pro.arch_active_b == Approx(49.78).epsilon(0.005));
  CHECK(std::fabs(pro.active_dev_pct) < 2.0);
  // kv_compression from compress_ratios: harmonic mean over the compressed layers.
  // Flash: 41 / (21/4 + 20/128) = 7.584; Pro: 61 / (30/4 + 31/128) = 7.879.
  CHECK(c.model("deepseek-v4-flash").attention.kv_compression == Approx(7.584).epsilon(0.001));
  CHECK(c.model("deepseek-v4-pro").attention.kv_compression == Approx(7.879).epsilon(0.001));
  CHECK(c.model("deepseek-v4-flash").attention.sliding_window_layers == 2);
  // The cache entry is the one 512-wide K=V head.
  CHECK(kv_bytes_per_token_per_layer(c.model("deepseek-v4-pro"), 1.0) == Approx(512));
  CHECK(kv_compression_from_ratios({0, 4, 4}) == Approx(4));
  CHECK(kv_compression_from_ratios({0, 0}) == Approx(1));
}

TEST_CASE("catalog check: a prices.json system price that no tool reads is a warning",
          "[catalog][check]") {
  // pricing.hpp takes data/systems.json's prices of a basis first; a prices.json system entry for
  // the same node and basis that does not repeat one of them prices nothing (docs/cost.md §6.2).
  auto shadowed = [](const std::vector<CatalogWarning>& f) {
    std::vector<std::string> paths;
    for (const auto& w : f)
      if (w.message.find("prices nothing") != std::string::npos) paths.push_back(w.json_path);
    return paths;
  };
  CHECK(shadowed(check_catalog(test::bundled_catalog())).empty());
  ScratchCatalog s;
  Json j = s.read("prices.json");
  const std::size_t at =
      index_where(j["hardware"], "item", "8x H100 SXM server, new (DeepSeek V3 case study)");
  REQUIRE(at < j["hardware"].size());
  // The repeated price (320,000 EUR, as in hgx-h100-8) is fine; an edit only to prices.json is not.
  j["hardware"][at]["price_low"] = 330000;
  j["hardware"][at]["price_high"] = 330000;
  s.write("prices.json", j);
  const auto f = check_catalog(load_catalog(s.dir.string()));
  const auto paths = shadowed(f);
  REQUIRE(paths.size() == 1);
  CHECK(paths[0] == "/hardware/" + std::to_string(at));
  for (const auto& w : f)
    if (w.json_path == paths[0]) {
      CHECK(w.level == FindingLevel::warning);
      CHECK_THAT(w.message, Contains("hgx-h100-8") && Contains("street"));
    }
}

TEST_CASE("catalog check: parameter and KV invariants fail on broken entries", "[catalog][check]") {
  SECTION("bundled catalog: no errors, explained differences printed as notes") {
    const auto f = check_catalog(test::bundled_catalog());
    for (const auto& w : f) CHECK(w.level != FindingLevel::error);
    CHECK(find_finding(f, "deepseek-v4-flash: parameters computed", FindingLevel::note));
  }
  ScratchCatalog s;
  Json j = s.read("models.json");
  int idx = -1;
  for (std::size_t i = 0; i < j["models"].size(); ++i)
    if (j["models"][i]["id"] == "llama-3.1-8b") idx = static_cast<int>(i);
  REQUIRE(idx >= 0);
  auto& m = j["models"][static_cast<std::size_t>(idx)];
  SECTION("total off by more than 2% without a note is an error") {
    m["total_params_b"] = 9.0;
    m["active_params_b"] = 9.0;
    s.write("models.json", j);
    const auto f = check_catalog(load_catalog(s.dir.string()));
    const auto* e = find_finding(f, "llama-3.1-8b: parameters computed", FindingLevel::error);
    REQUIRE(e);
    CHECK_THAT(e->message, Contains("params_note"));
    const auto cli = test::run_moeplan("--data " + s.dir.string() + " catalog check");
    CHECK(cli.exit_code == 1);
    CHECK_THAT(cli.output, Contains("catalog check failed"));
  }
  SECTION("the same difference with a note is printed, not failed") {
    m["total_params_b"] = 9.0;
    m["active_params_b"] = 9.0;
    m["params_note"] = "test: explained";
    s.write("models.json", j);
    const auto f = check_catalog(load_catalog(s.dir.string()));
    CHECK(find_finding(f, "test: explained", FindingLevel::note));
    CHECK_FALSE(find_finding(f, "llama-3.1-8b", FindingLevel::error));
  }
  SECTION("published KV per token that the architecture does not reproduce") {
    m["published_kv"]["bytes_per_token"] = 140000;
    s.write("models.json", j);
    const auto f = check_catalog(load_catalog(s.dir.string()));
    CHECK(find_finding(f, "KV bytes per token computed from the architecture (131072)",
                       FindingLevel::error));
  }
}

TEST_CASE("catalog: model kind is read, checked and kept out of plan", "[catalog][check][menu]") {
  const Catalog& c = test::bundled_catalog();
  CHECK(c.model("qwen3-embedding-8b").kind == ModelKind::embed);
  CHECK(c.model("qwen3-reranker-8b").kind == ModelKind::rerank);
  CHECK(c.model("qwen3-8b").kind == ModelKind::generate);  // the default when kind is absent
  ScratchCatalog s;
  SECTION("an unknown kind names the field") {
    Json j = s.read("models.json");
    j["models"][0]["kind"] = "classify";
    s.write("models.json", j);
    CHECK_THROWS_WITH(load_catalog(s.dir.string()), Contains("/models/0/kind"));
  }
  SECTION("an embedding model's API price billing output tokens is an error") {
    Json j = s.read("prices.json");
    const std::size_t idx = index_where(j["api"], "model", "qwen3-embedding-8b");
    REQUIRE(idx < j["api"].size());
    j["api"][idx]["output_per_mtok"] = 0.5;
    s.write("prices.json", j);
    const auto f = check_catalog(load_catalog(s.dir.string()));
    const auto* e = find_finding(f, "qwen3-embedding-8b has kind embed", FindingLevel::error);
    REQUIRE(e);
    CHECK(e->json_path == "/api/" + std::to_string(idx) + "/output_per_mtok");
  }
}

TEST_CASE("Catalog corrections: memory units, Kimi INT4, Qwen3 context, B200 range",
          "[catalog][units]") {
  const Catalog& c = test::bundled_catalog();
  // Marketed "80 GB" = 80 GiB = 85.899e9 bytes; nvidia-smi's 81,559 MiB = 85.52e9.
  CHECK(c.device("h100-sxm").memory_gib == 80);
  CHECK(c.device("h100-sxm").memory_gb == Approx(85.899).epsilon(1e-4));
  REQUIRE(c.device("h100-sxm").usable_memory_gb);
  CHECK(*c.device("h100-sxm").usable_memory_gb == Approx(81559.0 * 1048576 / 1e9).epsilon(1e-4));
  for (const auto& d : c.devices) {
    INFO(d.id);
    CHECK(d.memory_gb == Approx(d.memory_gib * 1.073741824));
    if (d.usable_memory_gb) CHECK(*d.usable_memory_gb < d.memory_gb);
  }
  REQUIRE(c.device("b200").memory_bandwidth_range_gb_s);
  CHECK(c.device("b200").memory_bandwidth_range_gb_s->first == 7700);
  // Kimi K2.6's experts: group-32 int4 with bf16 scales, 4 + 16/32 bits.
  const Model& k = c.model("kimi-k2.6");
  CHECK(c.weight_format(k.native_precision.at(Component::routed_experts)).bits_per_weight ==
        Approx(4.5));
  CHECK(k.release == "2026-04");
  // Qwen3: native 40,960, 131,072 only with YaRN ×4.
  const Model& q = c.model("qwen3-8b");
  CHECK(q.max_context_tokens == 40960);
  REQUIRE(q.context_extension);
  CHECK(q.context_extension->method == "yarn");
  CHECK(q.context_extension->max_context_tokens == 131072);
  CHECK_FALSE(q.context_extension->quality_caveat.empty());
  CHECK(c.model("llama-4-scout").moe->routing == "sigmoid");
  for (const char* id : {"gemma-4-31b", "gemma-4-26b-a4b", "kimi-k2.6"})
    CHECK_FALSE(c.model(id).release.empty());
}

TEST_CASE("Gemma 4: the global layers' geometry is read and counted", "[catalog][gemma]") {
  // HF config: num_global_key_value_heads 4 (31B) / 2 (26B-A4B), global_head_dim 512,
  // attention_k_eq_v; no kv_compression stand-in any more.
  const Catalog& c = test::bundled_catalog();
  const Attention& a = c.model("gemma-4-31b").attention;
  CHECK(a.global_kv_heads == 4);
  CHECK(a.global_head_dim == 512);
  CHECK(a.global_k_eq_v);
  CHECK(a.kv_compression == 1.0);
  CHECK(c.model("gemma-4-26b-a4b").attention.global_kv_heads == 2);
  // Attention parameters with the global layers' own projections (no V projection):
  // 50 sliding × 5,376 × (32·256 + 2·16·256 + 32·256) = 6.606B, 10 global × 5,376 ×
  // (32·512 + 4·512 + 32·512) = 1.872B, FFN 60 × 3 × 5,376 × 21,504 = 20.808B, embeddings
  // 262,144 × 5,376 = 1.409B: 30.696B against the published 30.7B (30.14B at one geometry).
  CHECK(check_params(c.model("gemma-4-31b")).arch_total_b == Approx(30.696).epsilon(0.001));
  // Models without global fields keep one geometry for every layer.
  CHECK_FALSE(c.model("gpt-oss-120b").attention.has_global_geometry());
}

TEST_CASE("Schema extensions reject bad input with located messages", "[catalog][errors]") {
  ScratchCatalog s;
  auto model_index = [](const Json& j, const std::string& id) {
    for (std::size_t i = 0; i < j["models"].size(); ++i)
      if (j["models"][i]["id"] == id) return i;
    return std::size_t(0);
  };
  SECTION("devices.json in decimal GB is refused") {
    Json j = s.read("devices.json");
    j["devices"][0]["memory_gb"] = 80;
    s.write("devices.json", j);
    CHECK_THROWS_WITH(load_catalog(s.dir.string()),
                      Contains("/devices/0") && Contains("unknown field 'memory_gb'"));
  }
  SECTION("bandwidth range must contain the point value") {
    Json j = s.read("devices.json");
    j["devices"][0]["memory_bandwidth_gb_s_range"] = {{"min", 1}, {"max", 2}};
    s.write("devices.json", j);
    CHECK_THROWS_WITH(load_catalog(s.dir.string()),
                      Contains("memory_bandwidth_gb_s_range") && Contains("must contain"));
  }
  SECTION("compress_ratios of the wrong length") {
    Json j = s.read("models.json");
    const auto i = model_index(j, "deepseek-v4-flash");
    j["models"][i]["attention"]["compress_ratios"] = {4, 128};
    s.write("models.json", j);
    CHECK_THROWS_WITH(load_catalog(s.dir.string()),
                      Contains("attention/compress_ratios") && Contains("one ratio per layer"));
  }
  SECTION("context extension no longer than the native window") {
    Json j = s.read("models.json");
    const auto i = model_index(j, "qwen3-8b");
    j["models"][i]["context_extension"]["max_context_tokens"] = 40960;
    s.write("models.json", j);
    CHECK_THROWS_WITH(load_catalog(s.dir.string()),
                      Contains("context_extension/max_context_tokens") && Contains("must exceed"));
  }
  SECTION("unknown routing") {
    Json j = s.read("models.json");
    const auto i = model_index(j, "llama-4-scout");
    j["models"][i]["moe"]["routing"] = "argmax";
    s.write("models.json", j);
    CHECK_THROWS_WITH(load_catalog(s.dir.string()), Contains("moe/routing"));
  }
  SECTION("global_kv_heads must be a positive head count") {
    Json j = s.read("models.json");
    const auto i = model_index(j, "gemma-4-31b");
    j["models"][i]["attention"]["global_kv_heads"] = 0;
    s.write("models.json", j);
    CHECK_THROWS_WITH(
        load_catalog(s.dir.string()),
        Contains("models.json: /models/" + std::to_string(i) + "/attention/global_kv_heads") &&
            Contains("expected an integer > 0"));
  }
  SECTION("global_kv_heads must divide the query heads") {
    Json j = s.read("models.json");
    const auto i = model_index(j, "gemma-4-31b");
    j["models"][i]["attention"]["global_kv_heads"] = 3;
    s.write("models.json", j);
    CHECK_THROWS_WITH(load_catalog(s.dir.string()),
                      Contains("/attention/global_kv_heads") &&
                          Contains("must be a multiple of global_kv_heads"));
  }
  SECTION("global_head_dim must be positive") {
    Json j = s.read("models.json");
    const auto i = model_index(j, "gemma-4-26b-a4b");
    j["models"][i]["attention"]["global_head_dim"] = -512;
    s.write("models.json", j);
    CHECK_THROWS_WITH(load_catalog(s.dir.string()),
                      Contains("/models/" + std::to_string(i) + "/attention/global_head_dim"));
  }
  SECTION("global geometry needs sliding-window layers beside it") {
    Json j = s.read("models.json");
    const auto i = model_index(j, "qwen3-8b");
    j["models"][i]["attention"]["global_kv_heads"] = 4;
    s.write("models.json", j);
    CHECK_THROWS_WITH(
        load_catalog(s.dir.string()),
        Contains("/attention/global_kv_heads") && Contains("requires sliding_window_layers > 0"));
  }
  SECTION("global geometry is refused for MLA") {
    Json j = s.read("models.json");
    const auto i = model_index(j, "deepseek-v3");
    j["models"][i]["attention"]["global_head_dim"] = 512;
    s.write("models.json", j);
    CHECK_THROWS_WITH(load_catalog(s.dir.string()),
                      Contains("/attention/global_head_dim") && Contains("only for"));
  }
  SECTION("estimated_fields names a real field") {
    Json j = s.read("models.json");
    const auto i = model_index(j, "kimi-k2.6");
    j["models"][i]["estimated_fields"] = {"relase"};
    s.write("models.json", j);
    CHECK_THROWS_WITH(load_catalog(s.dir.string()), Contains("unknown field name \"relase\""));
  }
}

TEST_CASE("engines.json efficiencies: keys and ranges are checked", "[catalog][errors]") {
  // Audit 2026-11-27: every one of these passed `catalog check`; gpu.bw 0 gave TPOT inf, -0.85
  // a TPOT faster than 0.85, a typo was ignored. Engine 0 is vllm.
  auto refused = [](const std::string& key, const Json& value, const std::string& message) {
    ScratchCatalog s;
    Json j = s.read("engines.json");
    j["engines"][0]["efficiency"][key] = value;
    s.write("engines.json", j);
    INFO(key << " = " << value.dump());
    CHECK_THROWS_WITH(load_catalog(s.dir.string()),
                      Contains("engines.json: /engines/0/efficiency/" + key + ": " + message));
  };
  refused("gpu.bw", 0, "an efficiency must be in (0, 2], found 0");
  refused("gpu.bw", -0.85, "an efficiency must be in (0, 2], found -0.85");
  refused("gpu.amd.compute", 3, "an efficiency must be in (0, 2]");
  refused("gpu.prefill_chunk_tokens", 0, "must be a whole number >= 1, found 0");
  refused("max_num_seqs", 2.5, "must be a whole number >= 1");
  refused("gpu.layer_overhead_us", -1, "must be >= 0, found -1");
  refused("gpu.bww", 0.8, "unknown efficiency key");
  refused("tpu.bw", 0.8, "unknown efficiency key");
  refused("gemm_tflops.h200.int4", 900, "expected gemm_tflops.<device>.<bf16|fp8|fp4>");
  refused("moe_pair_ns.b200.fp4", 0, "must be > 0, found 0");
  ScratchCatalog s;
  Json j = s.read("engines.json");
  j["engines"][0]["device_kinds"] = Json::array({"gpu", "tpu"});
  s.write("engines.json", j);
  CHECK_THROWS_WITH(load_catalog(s.dir.string()),
                    Contains("/engines/0/device_kinds/1: unknown value 'tpu' (expected one of gpu, "
                             "cpu, unified)"));
  // A vendor class and a kind-less name are keys as the lookup reads them.
  ScratchCatalog ok;
  Json k = ok.read("engines.json");
  k["engines"][0]["efficiency"]["gpu.intel.bw"] = 0.7;
  k["engines"][0]["efficiency"]["host_us_per_seq"] = 0;
  ok.write("engines.json", k);
  CHECK_NOTHROW(load_catalog(ok.dir.string()));
}

TEST_CASE("models.json: quality scores and release dates are checked", "[catalog][errors]") {
  // Audit 2026-11-27: a score of 200 percent, a benchmark given twice (the first silently used
  // by plan's floors) and release "June" all passed catalog check.
  auto refused = [](const std::function<void(Json&)>& edit, const std::string& message) {
    ScratchCatalog s;
    Json j = s.read("models.json");
    edit(j);
    s.write("models.json", j);
    CHECK_THROWS_WITH(load_catalog(s.dir.string()), Contains(message));
  };
  auto model_with_scores = [](Json& j) -> Json& {
    for (auto& m : j["models"])
      if (m.contains("quality_scores") && !m["quality_scores"].empty()) return m;
    FAIL("no model with quality scores");
    return j;
  };
  refused(
      [&](Json& j) {
        Json& m = model_with_scores(j);
        for (auto& q : m["quality_scores"])
          if (q.value("unit", "") == "percent") q["value"] = 200;
      },
      "a percentage must be within 0–100, found 200");
  refused(
      [&](Json& j) {
        Json& m = model_with_scores(j);
        m["quality_scores"].push_back(m["quality_scores"][0]);
      },
      "is given twice for this model");
  refused([](Json& j) { j["models"][0]["release"] = "June"; },
          "/models/0/release: expected a YYYY-MM date, found 'June'");
}
