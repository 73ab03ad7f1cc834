// Plain references for every probe op: straightforward loops, float64
// accumulation, weights regenerated from their Pattern and rounded to the
// storage type exactly as the backends store them. Slow by design; the harness
// runs them on capped instances (docs/probe.md, "Verification").
#pragma once

#include <vector>

#include "moeprobe/types.hpp"

namespace moeprobe::ref {

// Weight element i of a matrix stored in `d` (pattern value rounded to d).
float weight(const Pattern& p, DType d, long long i);

std::vector<float> triad(const TriadSpec& s);

// Columns `cols` of Y (row-major [m, cols.size()]); all columns when cols is empty.
std::vector<float> gemm(const GemmSpec& s, const std::vector<float>& x,
                        const std::vector<int>& cols = {});

struct Routing {
  std::vector<float> logits;  // [M*E]
  std::vector<int> ids;       // [M*k]
  std::vector<float> w;       // [M*k]
};
// Router logits in float64 (rounded to float), then the shared route_token.
Routing route(const MoeSpec& s, const std::vector<float>& x, int tokens);
// Routing weights for given ids from float64 logits (used when a backend's
// selection is a valid top-k under near-ties).
std::vector<float> routing_weights(const MoeSpec& s, const std::vector<float>& logits,
                                   const std::vector<int>& ids, int tokens);
// True when ids[t] is a valid top-k of the selection scores implied by `logits`
// within `tol` (every chosen score >= every unchosen eligible score - tol).
bool valid_topk(const MoeSpec& s, const std::vector<float>& logits, const std::vector<int>& ids,
                int tokens, double tol);
// The worst, over tokens, of (best unchosen eligible score - worst chosen score):
// <= 0 for an exact top-k, small and positive for a near-tie flip, +inf for ids
// that are no top-k at all (out of range or repeated).
double topk_excess(const MoeSpec& s, const std::vector<float>& logits, const std::vector<int>& ids,
                   int tokens);

struct Permutation {
  std::vector<int> counts, offsets, perm, inv;
  std::vector<float> x_perm;
};
Permutation permute(const MoeSpec& s, const std::vector<int>& ids, const std::vector<float>& x,
                    int tokens);
// Inverse of permute: rows of x_perm back to token order, one row per
// (token, slot): out[(t*k+j)*H + c] = x_perm[inv[t*k+j]*H + c].
std::vector<float> unpermute(const Permutation& p, int hidden);

// Expert FFN (SwiGLU) of each permuted row: y = W_down (silu(W_gate x) * (W_up x)).
std::vector<float> experts(const MoeSpec& s, const std::vector<float>& x_perm,
                           const std::vector<int>& counts);
std::vector<float> combine(const MoeSpec& s, const std::vector<float>& y_perm,
                           const std::vector<int>& inv, const std::vector<float>& w, int tokens);
// Full MoE block for the given routing (routed + shared experts). Shared by
// the fused-op and layer references.
std::vector<float> moe_block(const MoeSpec& s, const std::vector<float>& x, int tokens,
                             const std::vector<int>& ids, const std::vector<float>& w);

// Attention over the spec's pattern inputs.
std::vector<float> attention(const AttentionSpec& s);

// `spec.layers` decoder layers. `backend_ids` (may be null): the expert ids the
// backend chose, [layers * tokens * k]; the reference adopts them for a layer
// when they are a valid top-k of its own scores within `tol` (near-ties), and
// uses its own selection otherwise (then the outputs differ and verification fails).
// `routing` (may be null) receives, per MoE layer, how the backend's selection
// compared with the reference's (for the message of a failed check).
struct LayerRouting {
  int layer = 0;
  int tokens_differing = 0;  // tokens whose k ids differ from the reference's
  double worst_excess = 0;   // topk_excess of the backend's ids on the reference scores
  bool adopted = false;      // within `tol`: the reference used the backend's ids
};
std::vector<float> layer(const LayerSpec& s, const std::vector<float>& x,
                         const std::vector<int>* backend_ids = nullptr, double tol = 1e-4,
                         std::vector<LayerRouting>* routing = nullptr);

}  // namespace moeprobe::ref
