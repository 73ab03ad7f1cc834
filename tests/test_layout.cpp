// Layout rules, communication by link and the engines' parallelism (docs/performance.md
// § Layout rules, § Communication; docs/catalogs.md § engines).
#include <catch2/catch.hpp>

#include "moeplan/layout.hpp"
#include "moeplan/performance.hpp"
#include "moeplan/plan.hpp"
#include "moeplan/recommend.hpp"
#include "test_support.hpp"

using namespace moeplan;
using Catch::Matchers::Contains;

namespace {

// A 4-card PCIe workstation without peer-to-peer, 1 × 10 GbE between boxes.
Topology consumer_box() {
  Topology t;
  t.system_id = "test-4x-geforce";
  t.gpus_per_node = 4;
  t.scale_up.kind = ScaleUpKind::pcie_host;
  t.scale_up.domain_gpus = 4;
  t.scale_up.gb_s_per_gpu = pcie_gb_s(5, 16);
  t.scale_out.kind = "ethernet";
  t.scale_out.nics = 1;
  t.scale_out.gbit_s_per_nic = 10;
  return t;
}

ResolvedLayout resolved(const Model& m, int gpus, Layout l) {
  return resolve_layout(m, gpus, l);
}

}  // namespace

TEST_CASE("engines declare their parallelism with a source", "[layout][catalog]") {
  const Catalog& cat = test::bundled_catalog();
  for (const auto& e : cat.engines) {
    INFO(e.id);
    CHECK_FALSE(e.parallelism.prov.source.empty());
    CHECK_FALSE(e.parallelism.prov.as_of.empty());
  }
  const auto& llama = cat.engine("llama.cpp").parallelism;
  CHECK(llama.layer_split);
  CHECK(llama.row_split);
  CHECK(llama.default_split == "layer");
  CHECK(cat.engine("trtllm").device_vendors == std::vector<std::string>{"nvidia"});
  CHECK(cat.engine("mlx").device_vendors == std::vector<std::string>{"apple"});
  CHECK(cat.engine("vllm").parallelism.multi_node);
}

TEST_CASE("layout rules name the rule they break", "[layout]") {
  const Catalog& cat = test::bundled_catalog();
  const Model& glm = cat.model("glm-5.2");  // 64 heads (MLA)
  const Device& h200 = cat.device("h200");
  const Engine& vllm = cat.engine("vllm");
  const Topology hgx = topology_for(cat, h200);  // 8 GPUs per NVLink domain, 8 × 400G IB
  REQUIRE(hgx.gpus_per_node == 8);

  SECTION("tp must divide the attention heads") {
    const auto b = check_layout(glm, h200, hgx, vllm, resolved(glm, 6, {6, 1, 0, false}), 6);
    REQUIRE(b);
    CHECK(b->rule == "tp-divides-heads");
    CHECK_THAT(b->message, Catch::Contains("64 attention heads"));
    CHECK_FALSE(check_layout(glm, h200, hgx, vllm, resolved(glm, 8, {8, 1, 0, false}), 8));
  }
  SECTION("GQA: KV heads must divide tp or tp them") {
    const Model& maverick = cat.model("llama-4-maverick");  // 40 heads, 8 KV heads
    const auto b = check_layout(maverick, h200, hgx, vllm, resolved(maverick, 5, {5, 1, 0, false}),
                                5);  // 40 % 5 == 0
    REQUIRE(b);
    CHECK(b->rule == "tp-divides-heads");
  }
  SECTION("tp stays inside the scale-up domain unless forced") {
    const ResolvedLayout tp16 = resolved(glm, 16, {16, 1, 0, false});
    const auto b = check_layout(glm, h200, hgx, vllm, tp16, 16);
    REQUIRE(b);
    CHECK(b->rule == "tp-within-scale-up");
    CHECK_THAT(b->message, Catch::Contains("--force"));
    CHECK_FALSE(check_layout(glm, h200, hgx, vllm, tp16, 16, /*force=*/true));
    // Across nodes by pipeline stages: fine.
    CHECK_FALSE(check_layout(glm, h200, hgx, vllm, resolved(glm, 16, {8, 2, 0, false}), 16));
  }
  SECTION("16 consumer cards: no tp=16 across four boxes, and no boxes without a fabric") {
    const Device& rtx = cat.device("rtx-5090");
    const Topology box = consumer_box();
    const auto b = check_layout(glm, rtx, box, vllm, resolved(glm, 16, {16, 1, 0, true}), 16);
    REQUIRE(b);
    CHECK(b->rule == "tp-within-scale-up");
    CHECK_FALSE(check_layout(glm, rtx, box, vllm, resolved(glm, 16, {4, 4, 0, false}), 16));
    Topology lone = box;
    lone.scale_out = ScaleOut{"none", 0, 0, 0};
    const auto c = check_layout(glm, rtx, lone, vllm, resolved(glm, 16, {4, 4, 0, false}), 16);
    REQUIRE(c);
    CHECK(c->rule == "scale-out-fabric");
  }
  SECTION("one engine-device rule: kind, then a known vendor; case-insensitive; empty means any") {
    const Device& mi300 = cat.device("mi300x");
    CHECK_FALSE(engine_device_problem(vllm, mi300));
    const auto amd = engine_device_problem(cat.engine("trtllm"), mi300);
    REQUIRE(amd);
    CHECK_THAT(*amd, Contains("amd") && Contains("it runs on nvidia"));
    Device upper = mi300;
    upper.vendor = "AMD";
    CHECK_FALSE(engine_device_problem(vllm, upper));
    CHECK(engine_device_problem(cat.engine("trtllm"), upper));
    const auto kind = engine_device_problem(cat.engine("mlx"), h200);
    REQUIRE(kind);
    CHECK_THAT(*kind, Contains("gpu devices (h200 is one)"));
    CHECK_FALSE(engine_device_problem(cat.engine("llama.cpp"), mi300));  // no vendor list
    // perf's and fit's engine for a GGUF quant on an AMD GPU: the first that serves it and
    // runs there (llama.cpp; vLLM serves no q4_k_m).
    const PrecisionMix gguf = parse_weight_spec("q4_k_m", glm.native_precision, cat);
    const std::string id = default_engine_id(mi300, gguf, cat);
    CHECK(id == "llama.cpp");
    CHECK_FALSE(engine_device_problem(cat.engine(id), mi300));
  }
  SECTION("engines run only on their devices and layouts") {
    const auto b = check_layout(glm, h200, hgx, cat.engine("mlx"), resolved(glm, 1, {}), 1);
    REQUIRE(b);
    CHECK(b->rule == "engine-device");
    Device calibrated = h200;  // a calibrated device outside the catalog: vendor unknown
    calibrated.vendor = "unknown";
    CHECK_FALSE(check_layout(glm, calibrated, hgx, vllm, resolved(glm, 8, {8, 1, 0, false}), 8));
    const Device& mi300 = cat.device("mi300x");
    const auto c = check_layout(glm, mi300, topology_for(cat, mi300), cat.engine("trtllm"),
                                resolved(glm, 8, {8, 1, 0, false}), 8);
    REQUIRE(c);
    CHECK(c->rule == "engine-device");
    const Model& llama = cat.model("llama-3.3-70b");
    const Device& r4090 = cat.device("rtx-4090");
    const auto d = check_layout(llama, r4090, consumer_box(), cat.engine("llama.cpp"),
                                resolved(llama, 4, {2, 1, 0, false}), 4);  // dp = 2
    REQUIRE(d);
    CHECK(d->rule == "engine-parallelism");
    // Row split spans all cards; it does not combine with a layer split (tp 2 × pp 2).
    const auto mixed = check_layout(llama, r4090, consumer_box(), cat.engine("llama.cpp"),
                                    resolved(llama, 4, {2, 2, 0, false}), 4);
    REQUIRE(mixed);
    CHECK(mixed->rule == "engine-parallelism");
    CHECK_FALSE(check_layout(llama, r4090, consumer_box(), cat.engine("llama.cpp"),
                             resolved(llama, 4, {4, 1, 0, false}), 4));  // row split
    CHECK_FALSE(check_layout(llama, r4090, consumer_box(), cat.engine("llama.cpp"),
                             resolved(llama, 4, {1, 4, 0, false}), 4));  // layer split
    const auto e = check_layout(llama, r4090, consumer_box(), cat.engine("llama.cpp"),
                                resolved(llama, 8, {1, 8, 0, false}), 8);  // two boxes
    REQUIRE(e);
    CHECK(e->rule == "engine-multi-node");
  }
}

TEST_CASE("llama.cpp's default split is layers, one card after another", "[layout][perf]") {
  const Catalog& cat = test::bundled_catalog();
  const Engine& llama = cat.engine("llama.cpp");
  const Topology box = consumer_box();
  const Layout l = effective_layout(llama, box, 4, Layout{});
  CHECK(l.tp == 1);
  CHECK(l.pp == 4);
  const Layout row = effective_layout(llama, box, 4, Layout{4, 1, 0, false});  // --tp: row split
  CHECK(row.tp == 4);
  CHECK(effective_layout(cat.engine("vllm"), box, 4, Layout{}).tp == 0);  // tp = gpus kept
  // 32 × H200 (HGX nodes of 8): tp = 8 per node, 4 pipeline stages across the nodes.
  const Device& h200 = cat.device("h200");
  const Layout multi = effective_layout(cat.engine("vllm"), topology_for(cat, h200), 32, Layout{});
  CHECK(multi.tp == 8);
  CHECK(multi.pp == 4);

  // Single stream on 4 × RTX 4090: Llama 3.3 70B q8_0 (≈ 75 GB) is read once per token, one
  // card's share after another, so one stream is bound by one card's bandwidth:
  //   1008 GB/s / 75 GB ≈ 13.4 tok/s at most (the old tp=4 default predicted ≈ 4× that).
  PerfRequest req;
  req.model = &cat.model("llama-3.3-70b");
  req.device = &cat.device("rtx-4090");
  req.engine = &llama;
  req.gpus = 4;
  req.weights = parse_weight_spec("q8_0", req.model->native_precision, cat);
  req.input_tokens = 0;
  req.output_tokens = 128;
  const PerfResult r = estimate(req, cat);
  CHECK(r.layout.pp == 4);
  CHECK(r.layout.tp == 1);
  const double one_card = req.device->memory_bandwidth_gb_s * 1e9 / r.weights_bytes;
  CHECK(r.decode.per_request_tokens_per_s <= one_card);
  CHECK(r.decode.per_request_tokens_per_s > 0.5 * one_card);  // not absurdly slow either
}

TEST_CASE("links: PCIe through host memory, NICs between nodes, calibration", "[layout][perf]") {
  const Catalog& cat = test::bundled_catalog();
  const Device& rtx = cat.device("rtx-5090");
  const Efficiencies eff = resolve_efficiencies(rtx, cat.engine("vllm"));
  REQUIRE(eff.dev_link.value == Approx(0.8));
  REQUIRE(eff.link_latency_us.value == Approx(15));  // vLLM gpu.comm_latency_us
  Topology t = consumer_box();
  // PCIe 5.0 x16 = 16 × 3.938 = 63.0 GB/s per direction; × 0.8 derating = 50.4; no P2P halves
  // it (every byte crosses PCIe twice through host memory): 25.2 GB/s, + 10 µs staging hop.
  Links k = links_for(t, rtx, eff);
  CHECK(k.scale_up.gb_s == Approx(25.2).epsilon(0.001));
  CHECK(k.scale_up.latency_us == Approx(25));
  t.scale_up.kind = ScaleUpKind::pcie_p2p;
  k = links_for(t, rtx, eff);
  CHECK(k.scale_up.gb_s == Approx(50.4).epsilon(0.001));
  CHECK(k.scale_up.latency_us == Approx(15));
  // 1 × 10 GbE for 4 cards: 1.25 GB/s / 4 = 0.3125 × 0.8 = 0.25 GB/s per GPU; latency 15 + 30.
  CHECK(k.scale_out.gb_s == Approx(0.25));
  CHECK(k.scale_out.latency_us == Approx(45));
  // HGX H200: 8 × 400 Gb/s = 400 GB/s per node / 8 GPUs = 50 × 0.8 = 40 GB/s per GPU.
  const Device& h200 = cat.device("h200");
  const Links hk =
      links_for(topology_for(cat, h200), h200, resolve_efficiencies(h200, cat.engine("vllm")));
  CHECK(hk.scale_out.gb_s == Approx(40));
  CHECK(hk.scale_up.gb_s == Approx(450 * 0.8));
  // A calibration's measured bus bandwidth and latency replace the scale-up defaults.
  DeviceCalibration cal;
  cal.device_id = "rtx-5090";
  cal.file = "test.json";
  cal.link_gb_s = 20;
  cal.link_latency_us = 12;
  const Efficiencies ceff = resolve_efficiencies(rtx, cat.engine("vllm"), &cal);
  const Links ck = links_for(consumer_box(), rtx, ceff, &cal);
  CHECK(ck.scale_up.gb_s == Approx(20));
  CHECK(ck.scale_up.latency_us == Approx(12));
}

TEST_CASE("tensor parallelism over 4 nodes is slower per user than inside one", "[layout][perf]") {
  const Catalog& cat = test::bundled_catalog();
  PerfRequest req;
  req.model = &cat.model("glm-5.2");
  req.device = &cat.device("h200");
  req.engine = &cat.engine("vllm");
  req.weights = parse_weight_spec("fp8", req.model->native_precision, cat);
  req.kv_precision = "fp8";
  req.input_tokens = 1024;
  req.output_tokens = 256;
  req.gpus = 8;
  const PerfResult one = estimate(req, cat);
  req.gpus = 32;  // 4 HGX nodes, tp = 32 forced across them
  req.layout = Layout{32, 1, 0, false};
  const PerfResult four = estimate(req, cat);
  // Per all-reduce: NVLink 15 µs vs NIC 15 + 10 µs, and 40 GB/s per GPU instead of 360; with
  // 2 all-reduces × 78 layers the communication grows from ≈ 2.3 ms to ≥ 3.9 ms per step while
  // the weights read per GPU only shrink by 4× (≈ 0.5 ms at batch 1): per-user speed falls.
  CHECK(four.decode.step.comm_s > 1.5 * one.decode.step.comm_s);
  CHECK(four.decode.per_request_tokens_per_s < one.decode.per_request_tokens_per_s);
  // The same 32 GPUs as 4 pipeline stages of tp = 8 keep the all-reduces on NVLink.
  req.layout = Layout{8, 4, 0, false};
  const PerfResult pp = estimate(req, cat);
  CHECK(pp.decode.step.comm_s < four.decode.step.comm_s);
}

TEST_CASE("valid_layouts: only divisors of the heads, inside a domain", "[layout]") {
  const Catalog& cat = test::bundled_catalog();
  const Model& glm = cat.model("glm-5.2");
  const Device& h200 = cat.device("h200");
  const Topology hgx = topology_for(cat, h200);
  for (int g = 1; g <= 32; ++g) {
    for (const Layout& l : valid_layouts(glm, h200, hgx, cat.engine("vllm"), g)) {
      INFO("gpus " << g << " tp " << l.tp << " pp " << l.pp);
      CHECK(64 % std::max(1, l.tp) == 0);
      CHECK(l.tp <= 8);
    }
  }
  CHECK(valid_layouts(glm, cat.device("rtx-5090"), consumer_box(), cat.engine("llama.cpp"), 16)
            .empty());  // llama.cpp does not span boxes
}

TEST_CASE("recommend over the whole catalog never proposes a layout that breaks a rule",
          "[layout][recommend]") {
  const Catalog& cat = test::bundled_catalog();
  for (const std::string engine : {"vllm", "llama.cpp"}) {
    for (const std::optional<double> demand :
         {std::optional<double>{}, std::optional<double>{50.0}, std::optional<double>{5000.0}}) {
      recommend::Request req;
      for (const auto& m : cat.models) req.models.push_back(&m);
      req.engine = engine;
      req.output_tokens_per_s = demand;
      req.top = 1000;
      req.max_gpus = 16;
      req.max_concurrency = 64;
      const recommend::Result res = recommend::search(req, cat);
      CHECK(res.top.size() > 0);
      const Engine& e = cat.engine(engine);
      for (const auto* list : {&res.top, &res.frontier}) {
        for (const auto& p : *list) {
          INFO(engine << " " << p.model->id << " " << p.gpus << " × " << p.device->id << " tp "
                      << p.layout.tp << " pp " << p.layout.pp << " dp " << p.layout.dp);
          const Topology t = topology_for(cat, *p.device);
          const auto broken = check_layout(*p.model, *p.device, t, e, p.layout, p.gpus);
          CHECK_FALSE(broken);
          CHECK_FALSE(group_crosses(p.layout.tp, p.gpus, std::max(1, t.scale_up.domain_gpus)));
          CHECK(p.model->attention.heads % p.layout.tp == 0);
        }
      }
    }
  }
}

TEST_CASE("perf exits 3 for a build whose weights do not fit", "[layout][cli]") {
  // GLM-5.2 native (≈ 1.5 TB) on one 24 GiB card: fit's numbers, exit status 3.
  const auto r = test::run_moeplan("perf --model glm-5.2 --gpu rtx-4090");
  CHECK(r.exit_code == 3);
  CHECK_THAT(r.output, Catch::Contains("does not fit: needs"));
  CHECK_THAT(r.output,
             Catch::Contains("GB per GPU, has 23.2"));  // 24 GiB = 25.77 GB × 0.90 (vLLM)
  const auto j =
      test::run_moeplan("perf --model glm-5.2 --gpu rtx-4090 --ignore-fit --format json");
  CHECK(j.exit_code == 0);
  // Said at the top: the first member of the JSON document.
  CHECK(j.output.find("\"does_not_fit\"") < j.output.find("\"inputs\""));
}

TEST_CASE("KV heads are replicated, and paid for, when tp > kv_heads", "[layout][fit]") {
  // Qwen3-235B-A22B: 64 heads, 4 KV heads. tp = 8 is allowed (8 is a multiple of 4): each rank
  // keeps ceil(4/8) = 1 KV head of 4, i.e. a quarter of the KV — twice the 1/8 an even split would
  // give (every KV head lives on two ranks).
  const Catalog& cat = test::bundled_catalog();
  const Model& q = cat.model("qwen3-235b-a22b");
  const Device& h200 = cat.device("h200");
  REQUIRE_FALSE(check_layout(q, h200, topology_for(cat, h200), cat.engine("vllm"),
                             resolve_layout(q, 8, Layout{8, 1, 0, false}), 8));
  FitRequest f;
  f.model = &q;
  f.device = &h200;
  f.gpus = 8;
  f.context_tokens = 32768;
  f.layout = Layout{8, 1, 0, false};
  CHECK(fit(f, cat).kv_share_per_gpu == Approx(0.25));
  f.gpus = 4;
  f.layout = Layout{4, 1, 0, false};
  CHECK(fit(f, cat).kv_share_per_gpu == Approx(0.25));  // 1 of 4 heads per rank, no replication
}

TEST_CASE("The full-attention layers' own KV heads must split or replicate evenly",
          "[layout][gemma]") {
  // vLLM asserts tp divides, or is a multiple of, every attention layer's KV heads. A Gemma-4-like
  // model with 24 heads, 8 window KV heads and 3 global KV heads cannot load at tp 2: 24 and 8
  // split two ways, the 3 global heads neither split nor replicate evenly.
  const Catalog& cat = test::bundled_catalog();
  Model m = cat.model("gemma-4-31b");
  m.attention.heads = 24;
  m.attention.kv_heads = 8;
  m.attention.global_kv_heads = 3;
  const Device& h200 = cat.device("h200");
  const auto rule = check_layout(m, h200, topology_for(cat, h200), cat.engine("vllm"),
                                 resolve_layout(m, 2, Layout{2, 1, 0, false}), 2);
  REQUIRE(rule);
  CHECK(rule->rule == "tp-divides-heads");
  CHECK_THAT(rule->message, Catch::Contains("full-attention layers"));
  // The catalog's Gemma 4 31B (4 global heads) loads at tp 8, the global heads replicated.
  const Model& g = cat.model("gemma-4-31b");
  CHECK_FALSE(check_layout(g, h200, topology_for(cat, h200), cat.engine("vllm"),
                           resolve_layout(g, 8, Layout{8, 1, 0, false}), 8));
}

TEST_CASE("plan never ranks a build that breaks a layout rule", "[layout][plan]") {
  // Six H200s for GLM-5.2 (64 heads): the default tp = 6 cannot load. The candidate is excluded
  // with the rule as its reason, and is not eligible.
  const Catalog& cat = test::bundled_catalog();
  const Json j = Json::parse(R"({
    "currency": "USD", "horizon_months": 36,
    "demand": {"requests_per_day": 2000, "input_tokens": 8000, "output_tokens": 1000},
    "models": ["glm-5.2"],
    "builds": [{"device": "h200", "gpus_per_node": 6, "precision": "fp8",
                "buy": {"capex": 300000, "opex_per_year": 20000}}],
    "monte_carlo": {"samples": 50}
  })");
  const auto r = plan::run_plan(plan::parse_plan_scenario(j, "test.json", cat), cat);
  REQUIRE(r.candidates.size() == 1);
  const auto& c = r.candidates[0];
  CHECK_FALSE(c.eligible);
  REQUIRE_FALSE(c.excluded.empty());
  CHECK_THAT(c.excluded.front(), Catch::Contains("layout breaks rule tp-divides-heads"));
}

TEST_CASE("expert all-to-all and pipeline hand-offs across nodes use the NICs", "[layout][perf]") {
  // 16 × H200 as tp = 8 × dp = 2 (ep = 16): half of each rank's expert peers sit in the other
  // node. On two HGX nodes (domain 8) that half crosses InfiniBand at 40 GB/s per GPU instead of
  // NVLink's 360, so the step's communication grows; on one 16-GPU domain it would not.
  const Catalog& cat = test::bundled_catalog();
  PerfRequest req;
  req.model = &cat.model("qwen3-235b-a22b");
  req.device = &cat.device("h200");
  req.engine = &cat.engine("vllm");
  req.weights = parse_weight_spec("fp8", req.model->native_precision, cat);
  req.kv_precision = "fp8";
  req.gpus = 16;
  req.concurrency = 64;
  req.layout = Layout{8, 1, 0, false};
  Topology two_nodes = topology_for(cat, *req.device);
  REQUIRE(two_nodes.scale_up.domain_gpus == 8);
  Topology one_domain = two_nodes;
  one_domain.gpus_per_node = 16;
  one_domain.scale_up.domain_gpus = 16;
  req.topology = two_nodes;
  const PerfResult across = estimate(req, cat);
  req.topology = one_domain;
  const PerfResult inside = estimate(req, cat);
  REQUIRE(across.layout.ep == 16);
  CHECK(across.decode.step.comm_s > inside.decode.step.comm_s);
  // Pipeline: tp = 8 × pp = 2 puts the one stage boundary between the two nodes.
  req.layout = Layout{8, 2, 0, false};
  req.topology = two_nodes;
  const PerfResult pp_across = estimate(req, cat);
  req.topology = one_domain;
  const PerfResult pp_inside = estimate(req, cat);
  CHECK(pp_across.decode.step.comm_s > pp_inside.decode.step.comm_s);
}
