// Bytes moved and FLOPs per op, by formula (docs/probe.md, "Formulas").
// Bytes count each array read once plus each array written once (no cache
// reuse, no write-allocate); FLOPs count a multiply-add as 2.
#pragma once

#include "moeprobe/types.hpp"

namespace moeprobe {

struct Work {
  double bytes = 0;
  double flops = 0;
};

Work triad_work(const TriadSpec& s);
Work gemm_work(const GemmSpec& s);
// MoE stages; `touched` = experts with at least one token.
Work router_work(const MoeSpec& s, int tokens);
Work permute_work(const MoeSpec& s, int tokens);
Work experts_work(const MoeSpec& s, int tokens, int touched);
Work combine_work(const MoeSpec& s, int tokens);
Work moe_fused_work(const MoeSpec& s, int tokens, int touched);
Work attention_work(const AttentionSpec& s);
// Whole layers; touched_per_layer = experts touched in each MoE layer.
Work layer_work(const LayerSpec& s, const std::vector<int>& touched_per_layer);

// Keys attended by all queries of one sequence (causal count).
double attended_pairs(const AttentionSpec& s);

}  // namespace moeprobe
