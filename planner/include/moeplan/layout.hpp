// Layouts an engine can run on a topology (docs/performance.md § Layout rules): one function
// decides whether a parallel layout is deployable, and every command (perf, fit, plan,
// recommend) asks it, so no search can rank a build nobody could rack or serve.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "moeplan/catalog.hpp"
#include "moeplan/sizing.hpp"
#include "moeplan/system.hpp"

namespace moeplan {

// The broken rule: a stable name (for scripts and tests) and a sentence for people.
struct LayoutRuleBreak {
  std::string rule;  // engine-device | engine-parallelism | engine-multi-node | tp-divides-heads
                     // | scale-out-fabric | tp-within-scale-up
  std::string message;
};

// A layout as text, the way perf prints one: space-separated `tp=N`, `pp=N`, `ep=N` and the word
// `dp-attention` (e.g. "tp=2 pp=2 ep=2 dp-attention"); an empty text is the engine's default
// (Layout{}). Throws Error naming the text and the token it could not read.
Layout parse_layout(const std::string& text);

// Nodes a layout of `gpus` devices occupies on `t` (ceil(gpus / gpus_per_node)).
int nodes_for(const Topology& t, int gpus);

// The layout asked for, with the engine's default split filled in when neither tp nor pp was
// chosen (tp = 0, pp ≤ 1): layer split (pp = gpus, tp = 1) for engines whose default is it
// (llama.cpp, ExLlamaV2); otherwise tensor parallelism over all GPUs when they fit one scale-up
// domain, else tp = the domain and pipeline stages across domains (vLLM's multi-node guideline:
// tp = GPUs per node, pp = nodes).
Layout effective_layout(const Engine& e, const Topology& t, int gpus, const Layout& asked);

// Checks the rules in order and returns the first broken one, nullopt when the layout is
// deployable:
//   engine-device       the engine runs on this device's kind and vendor;
//   engine-parallelism  the engine supports each parallelism the layout uses;
//   tp-divides-heads    tp divides the attention heads (and, for GQA, the KV heads divide tp
//                       or tp divides them: KV heads are replicated when tp > kv_heads);
//   engine-multi-node   a layout over several nodes needs an engine that spans nodes;
//   scale-out-fabric    … and a scale-out fabric between the nodes;
//   tp-within-scale-up  the tensor-parallel group stays inside one scale-up domain
//                       (`force` allows it, priced over the scale-out fabric).
std::optional<LayoutRuleBreak> check_layout(const Model& m, const Device& d, const Topology& t,
                                            const Engine& e, const ResolvedLayout& l, int gpus,
                                            bool force = false);

// The engine-device rule alone, for every command that pairs an engine with a device: why `e`
// does not run on `d` (a device kind missing from its device_kinds, or a known vendor missing
// from its device_vendors; an empty list means any), or nothing when it does.
std::optional<std::string> engine_device_problem(const Engine& e, const Device& d);

// Every layout of `gpus` devices that check_layout accepts (force = false): tp over the
// divisors of the attention heads inside one scale-up domain, pipeline stages for the rest
// (across nodes), dp-attention variants for MLA models, the engine's own split first.
// Empty when none is valid.
std::vector<Layout> valid_layouts(const Model& m, const Device& d, const Topology& t,
                                  const Engine& e, int gpus);

// One story across commands: the defaults perf, fit, plan and recommend use for a build.
// Engine: vLLM on GPUs, llama.cpp on CPUs and unified memory (validate-perf's rule for rows
// that name none).
std::string default_engine_id(const Device& d);
// perf's and fit's engine when none is named: default_engine_id(d) when it serves `weights`,
// else the first catalog engine for the device's kind and vendor that does (a GGUF quant on a GPU
// is llama.cpp's), else default_engine_id(d) (and the caller says it cannot serve them).
std::string default_engine_id(const Device& d, const PrecisionMix& weights, const Catalog& cat);
// KV cache: fp8 where the device has fp8 math and the engine serves an fp8 KV cache, else bf16.
std::string default_kv_precision(const Device& d, const Engine& e);

// Does a contiguous, aligned group of `size` ranks out of `gpus` leave one domain of
// `domain` GPUs?
bool group_crosses(int size, int gpus, int domain);

}  // namespace moeplan
