// From a catalog model to the shapes the probe runs: the decoder-layer shape,
// the dense projection GEMMs, and the built-in synthetic models used by tests
// and quick smoke runs. Formulas for bytes and FLOPs: formulas.hpp.
#pragma once

#include <string>
#include <vector>

#include "moeplan/catalog.hpp"
#include "moeprobe/types.hpp"

namespace moeprobe {

// The MoE layer shape of `m` (the dense-layer shape when m has no MoE).
// Throws moeplan::Error when the model lacks a field the probe needs.
LayerShape layer_shape(const moeplan::Model& m);
// The dense (leading) layer shape of an MoE model with moe.dense_layers > 0.
LayerShape dense_layer_shape(const moeplan::Model& m);

// One projection GEMM of the model: weight [n, k], named like "attn.qkv".
struct Projection {
  std::string name;
  int n = 0, k = 0;
};
// Attention projections, shared experts, dense FFN and the LM head.
std::vector<Projection> projections(const moeplan::Model& m);

// Built-in synthetic models (not in the catalog): "synthetic-tiny" (GQA,
// softmax routing) and "synthetic-mla" (MLA, sigmoid grouped routing).
std::vector<std::string> synthetic_model_ids();
// The model for `id`: synthetic ones by name, otherwise from `cat` (throws
// UnknownIdError). `cat` may be null when only synthetic ids are used.
moeplan::Model find_model(const std::string& id, const moeplan::Catalog* cat);

// Weight bytes of one routed expert (gate + up + down) in `d`.
long long expert_bytes(const MoeShape& m, int hidden, DType d);

}  // namespace moeprobe
