// End to end on this machine: probe a catalog MoE model with the CPU backend,
// write a calibration, and check that the planner's performance model, fed that
// calibration, predicts the measured decode step of the whole layer stack
// within 25% (issue: probe part 1, "The planner uses it").
//
// What is compared: the probe's layer stack is a straightforward implementation
// (docs/architecture.md: the probe is a reference point for the device layer, not
// an engine), so the prediction uses the calibrated device layer with the engine
// layer set to 1 and no engine overheads, and the model's LM head is left out
// (the probe's stack time covers the decoder layers only).
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>

#include "moeplan/calibration.hpp"
#include "moeplan/performance.hpp"
#include "test_support.hpp"

using namespace moeplan;
namespace fs = std::filesystem;

TEST_CASE("probe -> calibration -> perf predicts the measured decode step", "[probe][e2e]") {
  const fs::path dir = fs::temp_directory_path() / ("moeprobe-e2e-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string out = (dir / "calibration.json").string();
  const Catalog& cat = test::bundled_catalog();
  Model m = cat.model("qwen3-30b-a3b");
  m.vocab_size = 1;  // no LM head: the probe times the decoder layers only

  // One worker thread: a busy core then slows the whole run evenly instead of stalling one
  // thread of a barrier. Timings on a shared machine can still be disturbed; a probe run is
  // repeated (up to three times) before the comparison counts as a miss.
  double best_err = 1e9;
  for (int attempt = 0; attempt < 3 && std::fabs(best_err) > 0.25; ++attempt) {
    const auto run =
        test::run_command(std::string(MOEPROBE_CLI) + " --threads 1" +
                          " run --model qwen3-30b-a3b --backend cpu --quick --dtype bf16"
                          " --tokens 1 --context 512 --prefill 16 --no-progress --out " +
                          out);
    INFO(run.output);
    REQUIRE(run.exit_code == 0);
    const Calibration cal = load_calibration(out);
    const double measured_s = cal.decode_step_s(1);
    REQUIRE(measured_s > 0);
    const DeviceCalibration dc = device_calibration(cal);
    const Device dev = device_from_calibration(dc);

    PerfRequest req;
    req.model = &m;
    req.device = &dev;
    req.engine = &cat.engine("llama.cpp");
    req.gpus = 1;
    req.weights = parse_weight_spec("bf16", m.native_precision, cat);
    req.kv_precision = "bf16";
    req.input_tokens = 512;
    req.output_tokens = 1;
    req.concurrency = 1;
    req.calibration = &dc;
    Efficiencies eff = resolve_efficiencies(dev, *req.engine, &dc);
    // Device layer only: a straightforward implementation, no engine derating or overheads.
    eff.eng_bw.value = eff.eng_compute.value = eff.eng_attention.value = 1.0;
    eff.step_overhead_ms.value = eff.layer_overhead_us.value = eff.moe_layer_overhead_us.value =
        0.0;
    req.efficiencies = eff;

    const StepBreakdown step = decode_step(req, cat, 1, 512);
    const double err = (step.time_s - measured_s) / measured_s;
    WARN("attempt " << attempt + 1 << ": measured stack " << measured_s * 1e3 << " ms, predicted "
                    << step.time_s * 1e3 << " ms (" << err * 100 << "%), bound "
                    << bound_name(step.bound));
    if (std::fabs(err) < std::fabs(best_err)) best_err = err;
  }
  CHECK(std::fabs(best_err) <= 0.25);
  fs::remove_all(dir);
}
