// Layout rules (docs/performance.md § Layout rules). Pure functions over catalog structs.
#include "moeplan/layout.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <sstream>

#include "moeplan/errors.hpp"
#include "moeplan/text_parse.hpp"

namespace moeplan {

namespace {

bool contains_ci(const std::vector<std::string>& v, const std::string& s) {
  auto lower = [](std::string x) {
    for (auto& ch : x) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return x;
  };
  const std::string ls = lower(s);
  return std::any_of(v.begin(), v.end(), [&](const std::string& x) { return lower(x) == ls; });
}

std::string system_label(const Topology& t) {
  return t.system_id.empty() ? std::string("the device's own fields (no system in the catalog)")
                             : "system " + t.system_id;
}

int domain_of(const Topology& t) {
  return std::max(1, t.scale_up.domain_gpus);
}

}  // namespace

Layout parse_layout(const std::string& text) {
  Layout l;
  std::istringstream in(text);
  std::string tok;
  auto bad = [&](const std::string& why) {
    return Error(
        fmt::format("layout '{}': {} (expected tp=N pp=N ep=N and/or dp-attention, e.g. "
                    "'tp=2 pp=2 ep=2 dp-attention')",
                    text, why));
  };
  while (in >> tok) {
    if (tok == "dp-attention") {
      l.dp_attention = true;
      continue;
    }
    const auto setting = split_setting(tok);
    if (!setting) throw bad(fmt::format("'{}' is not key=value", tok));
    const auto& [key, val] = *setting;
    if (val.empty() || val.size() > 4 ||
        !std::all_of(val.begin(), val.end(), [](unsigned char c) { return std::isdigit(c); }))
      throw bad(fmt::format("'{}' needs a whole number from 1 to 9999", tok));
    const int n = std::stoi(val);
    if (n < 1) throw bad(fmt::format("'{}' needs a whole number from 1 to 9999", tok));
    if (key == "tp")
      l.tp = n;
    else if (key == "pp")
      l.pp = n;
    else if (key == "ep")
      l.ep = n;
    else
      throw bad(fmt::format("unknown key '{}'", key));
  }
  return l;
}

std::string default_engine_id(const Device& d) {
  return d.kind == DeviceKind::gpu ? "vllm" : "llama.cpp";
}

std::string default_engine_id(const Device& d, const PrecisionMix& weights, const Catalog& cat) {
  const std::string first = default_engine_id(d);
  if (!unserved_format(cat.engine(first), weights)) return first;
  for (const Engine& e : cat.engines)
    if (!engine_device_problem(e, d) && !unserved_format(e, weights)) return e.id;
  return first;
}

std::string default_kv_precision(const Device& d, const Engine& e) {
  const bool fp8 = std::find(e.kv_formats.begin(), e.kv_formats.end(), "fp8") != e.kv_formats.end();
  return d.has_hw_format("fp8") && fp8 ? "fp8" : "bf16";
}

int nodes_for(const Topology& t, int gpus) {
  const int per = std::max(1, t.gpus_per_node);
  return (gpus + per - 1) / per;
}

bool group_crosses(int size, int gpus, int domain) {
  if (size <= 1 || gpus <= domain) return false;
  return size > domain || domain % size != 0;
}

Layout effective_layout(const Engine& e, const Topology& t, int gpus, const Layout& asked) {
  Layout l = asked;
  if (l.tp != 0 || l.pp > 1 || gpus <= 1) return l;
  const EngineParallelism& par = e.parallelism;
  if (par.default_split == "layer") {
    l.tp = 1;
    l.pp = gpus;
    return l;
  }
  const int dom = domain_of(t);
  if (gpus > dom && gpus % dom == 0 && (par.pipeline || par.layer_split)) {
    l.tp = dom;
    l.pp = gpus / dom;
  }
  return l;
}

std::optional<std::string> engine_device_problem(const Engine& e, const Device& d) {
  if (!e.device_kinds.empty() && !contains_ci(e.device_kinds, device_kind_name(d.kind)))
    return fmt::format("engine {} does not run on {} devices ({} is one)", e.id,
                       device_kind_name(d.kind), d.id);
  // A calibrated device outside the catalog has no known vendor: the calibration is the evidence
  // that it ran, so only a known, different vendor is refused.
  const bool vendor_known = !d.vendor.empty() && d.vendor != "unknown";
  if (vendor_known && !e.device_vendors.empty() && !contains_ci(e.device_vendors, d.vendor))
    return fmt::format("engine {} does not run on {} devices ({}; it runs on {})", e.id, d.vendor,
                       d.id, fmt::join(e.device_vendors, ", "));
  return std::nullopt;
}

std::optional<LayoutRuleBreak> check_layout(const Model& m, const Device& d, const Topology& t,
                                            const Engine& e, const ResolvedLayout& l, int gpus,
                                            bool force) {
  const EngineParallelism& par = e.parallelism;
  if (auto why = engine_device_problem(e, d)) return LayoutRuleBreak{"engine-device", *why};
  // engine-parallelism: each parallelism the layout uses.
  auto unsupported = [&](const std::string& what) {
    return LayoutRuleBreak{"engine-parallelism",
                           fmt::format("engine {} does not support {} (data/engines.json "
                                       "parallelism; {})",
                                       e.id, what, par.prov.source)};
  };
  // A row split spans every GPU of the build and a layer split gives each GPU its own layers:
  // neither combines with another split (llama.cpp --split-mode is one of none|layer|row).
  if (l.tp > 1 && !par.tensor && !(par.row_split && l.tp == gpus))
    return unsupported(
        par.row_split ? fmt::format("tensor parallelism over part of the GPUs (tp={} of {}); its "
                                    "row split spans all of them",
                                    l.tp, gpus)
                      : fmt::format("tensor parallelism (tp={})", l.tp));
  if (l.pp > 1 && !par.pipeline && !(par.layer_split && l.pp == gpus))
    return unsupported(par.layer_split
                           ? fmt::format("pipeline stages of several GPUs (pp={} of {}); its layer "
                                         "split gives every GPU its own layers",
                                         l.pp, gpus)
                           : fmt::format("pipeline parallelism or a layer split (pp={})", l.pp));
  if (l.dp > 1 && !par.data)
    return unsupported(fmt::format("data parallelism inside one build (dp={})", l.dp));
  if (m.is_moe() && l.ep > l.tp && !par.expert)
    return unsupported(
        fmt::format("expert parallelism beyond the tensor group (ep={} > tp={})", l.ep, l.tp));
  if (l.dp_attention && l.tp > 1 && !par.dp_attention) return unsupported("DP-attention");
  // tp-divides-heads: attention heads split evenly over the tensor-parallel ranks.
  const Attention& a = m.attention;
  if (l.tp > 1 && a.heads > 0 && a.heads % l.tp != 0)
    return LayoutRuleBreak{
        "tp-divides-heads",
        fmt::format("tp={} does not divide {}'s {} attention heads; use a divisor of {} (and "
                    "pipeline or data parallelism for the other GPUs)",
                    l.tp, m.id, a.heads, a.heads)};
  if (l.tp > 1 && a.type != AttentionType::mla && a.kv_heads > 0 && a.kv_heads % l.tp != 0 &&
      l.tp % a.kv_heads != 0)
    return LayoutRuleBreak{"tp-divides-heads",
                           fmt::format("tp={} neither divides nor is a multiple of {}'s {} KV "
                                       "heads, so KV heads cannot be split or replicated evenly",
                                       l.tp, m.id, a.kv_heads)};
  if (l.tp > 1 && a.type != AttentionType::mla && a.global_kv_heads > 0 &&
      a.global_kv_heads % l.tp != 0 && l.tp % a.global_kv_heads != 0)
    return LayoutRuleBreak{"tp-divides-heads",
                           fmt::format("tp={} neither divides nor is a multiple of {}'s {} KV "
                                       "heads of its full-attention layers, so they cannot be "
                                       "split or replicated evenly",
                                       l.tp, m.id, a.global_kv_heads)};
  // Several nodes: an engine that spans them and a fabric between them.
  const int nodes = nodes_for(t, gpus);
  if (nodes > 1 && !par.multi_node)
    return LayoutRuleBreak{
        "engine-multi-node",
        fmt::format("{} GPUs need {} nodes of {} ({}), and engine {} does not serve one model "
                    "across nodes",
                    gpus, nodes, t.gpus_per_node, system_label(t), e.id)};
  if (nodes > 1 && (t.scale_out.kind.empty() || t.scale_out.kind == "none" ||
                    t.scale_out.nics <= 0 || t.scale_out.gbit_s_per_nic <= 0))
    return LayoutRuleBreak{
        "scale-out-fabric",
        fmt::format("{} GPUs need {} nodes of {}, but {} has no scale-out fabric between nodes "
                    "(data/systems.json scale_out)",
                    gpus, nodes, t.gpus_per_node, system_label(t))};
  // tp-within-scale-up: the all-reduce after every layer must not leave the fast fabric.
  const int dom = domain_of(t);
  if (!force && group_crosses(l.tp, gpus, dom))
    return LayoutRuleBreak{
        "tp-within-scale-up",
        fmt::format("tp={} crosses the scale-up domain of {} GPU(s) ({}, {}); across domains use "
                    "pipeline (--pp), expert or data parallelism, or --force to price tensor "
                    "parallelism over the scale-out fabric",
                    l.tp, dom, scale_up_kind_name(t.scale_up.kind), system_label(t))};
  return std::nullopt;
}

std::vector<Layout> valid_layouts(const Model& m, const Device& d, const Topology& t,
                                  const Engine& e, int gpus) {
  std::vector<Layout> cand;
  auto add = [&](Layout l) {
    for (const auto& c : cand)
      if (c.tp == l.tp && c.pp == l.pp && c.ep == l.ep && c.dp_attention == l.dp_attention) return;
    cand.push_back(l);
  };
  const EngineParallelism& par = e.parallelism;
  const int dom = domain_of(t);
  if (gpus == 1) {
    add(Layout{1, 1, 0, false});
  } else {
    if (par.default_split == "layer") add(Layout{1, gpus, 0, false});
    // Tensor groups: divisors of the GPU count (largest first) inside one domain.
    std::vector<int> tps;
    for (int tp = std::min(gpus, dom); tp >= 2; --tp)
      if (gpus % tp == 0 && !group_crosses(tp, gpus, dom)) tps.push_back(tp);
    int kept = 0;
    for (int tp : tps) {
      if (m.attention.heads > 0 && m.attention.heads % tp != 0) continue;
      const int rest = gpus / tp;
      // The rest as pipeline stages (across nodes), or as data-parallel ranks (one expert group).
      add(Layout{tp, rest, 0, false});
      if (rest > 1 && par.data) add(Layout{tp, 1, par.expert ? 0 : tp, false});
      if (m.attention.type == AttentionType::mla && par.dp_attention)
        add(Layout{tp, rest, 0, true});
      if (++kept == 2) break;  // the largest valid group and the next one down
    }
    if (par.layer_split || par.pipeline) add(Layout{1, gpus, 0, false});
  }
  std::vector<Layout> out;
  for (const Layout& l : cand) {
    ResolvedLayout r;
    try {
      r = resolve_layout(m, gpus, l);
    } catch (const Error&) {
      continue;
    }
    if (!check_layout(m, d, t, e, r, gpus, false)) out.push_back(l);
  }
  return out;
}

}  // namespace moeplan
