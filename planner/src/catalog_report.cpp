#include "moeplan/catalog_report.hpp"

#include <fmt/format.h>

#include <algorithm>

#include <cmath>

#include "moeplan/errors.hpp"
#include "moeplan/pricing.hpp"
#include "moeplan/sizing.hpp"

namespace moeplan {

namespace {

constexpr double kParamTolerancePct = 2.0;
constexpr double kKvTolerancePct = 2.0;

// Total and active parameters from the architecture against the published figures: within 2%,
// or the entry's params_note explains the difference (then printed as a note).
void check_param_invariant(const Model& m, const std::string& file, const std::string& path,
                           std::vector<CatalogWarning>& out) {
  const ParamCheck pc = check_params(m);
  const bool off = std::fabs(pc.total_dev_pct) > kParamTolerancePct ||
                   std::fabs(pc.active_dev_pct) > kParamTolerancePct;
  if (!off) return;
  const std::string what = fmt::format(
      "{}: parameters computed from the architecture ({:.2f}B total, {:.2f}B active) differ "
      "from the published {:g}B / {:g}B by {:+.1f}% / {:+.1f}%",
      m.id, pc.arch_total_b, pc.arch_active_b, m.total_params_b, m.active_params_b,
      pc.total_dev_pct, pc.active_dev_pct);
  if (m.params_note.empty())
    out.push_back({file, path,
                   what + fmt::format(" (more than {:g}%): fix the fields or explain the "
                                      "difference in params_note",
                                      kParamTolerancePct),
                   FindingLevel::error});
  else
    out.push_back({file, path + "/params_note", what + ": " + m.params_note, FindingLevel::note});
}

// KV bytes per token from the architecture against a figure the entry cites.
void check_kv_invariant(const Model& m, const Catalog& cat, const std::string& file,
                        const std::string& path, std::vector<CatalogWarning>& out) {
  if (!m.published_kv) return;
  const PublishedKv& p = *m.published_kv;
  const KvFormat* f = nullptr;
  for (const auto& k : cat.kv_formats)
    if (k.id == p.kv_precision) f = &k;
  if (!f) {
    out.push_back({file, path + "/published_kv/kv_precision",
                   m.id + ": unknown KV precision '" + p.kv_precision + "'", FindingLevel::error});
    return;
  }
  // One token at a context of one: every layer's entry counted once (windows not yet full).
  // Sliding-window layers at the listed geometry, full-attention layers at their own
  // (global_kv_heads / global_head_dim where set).
  const double b = f->bits_per_element / 8.0;
  const int window = m.attention.sliding_window_layers;
  const int full = m.layers - window - m.attention.linear_attention_layers;
  const double bytes =
      kv_bytes_per_token_per_layer(m, b) * window + kv_bytes_per_token_per_full_layer(m, b) * full;
  const double dev = (bytes - p.bytes_per_token) / p.bytes_per_token * 100.0;
  if (std::fabs(dev) > kKvTolerancePct)
    out.push_back({file, path + "/published_kv",
                   fmt::format("{}: KV bytes per token computed from the architecture ({:.0f}) "
                               "differ from the published {:.0f} ({}) by {:+.1f}%",
                               m.id, bytes, p.bytes_per_token, p.kv_precision, dev),
                   FindingLevel::error});
}

// An embedding or reranking model returns a vector or a score, not tokens: its API prices bill
// input tokens only (a non-zero output price would be charged on the one pseudo-output token
// per item the menu plans, docs/plan.md § menus).
void check_kind_prices(const Catalog& cat, std::vector<CatalogWarning>& out) {
  const std::string prices_file = cat.data_dir + "/prices.json";
  for (std::size_t i = 0; i < cat.api_prices.size(); ++i) {
    const ApiPrice& p = cat.api_prices[i];
    const Model* m = nullptr;
    for (const auto& x : cat.models)
      if (x.id == p.model) m = &x;
    if (!m || m->is_generative() || p.output_per_mtok == 0) continue;
    out.push_back({prices_file, fmt::format("/api/{}/output_per_mtok", i),
                   fmt::format("{} has kind {} (models.json): it produces no output tokens, "
                               "so its API price must bill input tokens only "
                               "(output_per_mtok 0, found {:g})",
                               m->id, model_kind_name(m->kind), p.output_per_mtok),
                   FindingLevel::error});
  }
}

// A prices.json complete-system entry stands in only for a node data/systems.json does not price
// in that basis (pricing.hpp): where the catalog system has prices of the basis, cost, plan and
// recommend take those, and an entry that does not repeat one of them prices nothing. An edit to
// it would then move no output, which a catalog edit must never do silently.
void check_shadowed_system_prices(const Catalog& cat, std::vector<CatalogWarning>& out) {
  const std::string prices_file = cat.data_dir + "/prices.json";
  for (std::size_t i = 0; i < cat.hardware_prices.size(); ++i) {
    const HardwarePrice& h = cat.hardware_prices[i];
    if (h.kind != "system") continue;
    const System* sys = pricing::system_for(cat, h.device, h.devices);
    if (!sys) continue;
    bool basis_priced = false, repeated = false;
    for (const SystemPrice& p : sys->prices) {
      if (p.basis != h.basis) continue;
      basis_priced = true;
      repeated = repeated || (p.currency == h.currency && p.price_low == h.price_low &&
                              p.price_high == h.price_high && p.includes_vat == h.includes_vat);
    }
    if (!basis_priced || repeated) continue;
    out.push_back({prices_file, fmt::format("/hardware/{}", i),
                   fmt::format("'{}' prices nothing: data/systems.json '{}' has {} prices of its "
                               "own for this {} × {} node, which cost, plan and recommend take "
                               "instead (docs/cost.md §6.2); repeat this price in its prices to "
                               "use it, or remove it",
                               h.item, sys->id, h.basis, h.devices, h.device)});
  }
}

}  // namespace

std::vector<CatalogWarning> check_catalog(const Catalog& cat) {
  std::vector<CatalogWarning> out = cat.warnings;
  check_kind_prices(cat, out);
  check_shadowed_system_prices(cat, out);
  const std::string models_file = cat.data_dir + "/models.json";
  for (std::size_t i = 0; i < cat.models.size(); ++i) {
    const Model& m = cat.models[i];
    check_param_invariant(m, models_file, fmt::format("/models/{}", i), out);
    check_kv_invariant(m, cat, models_file, fmt::format("/models/{}", i), out);
    for (std::size_t k = 0; k < m.checkpoints.size(); ++k) {
      const Checkpoint& ck = m.checkpoints[k];
      const std::string path = fmt::format("/models/{}/checkpoints/{}", i, k);
      PrecisionMix mix;
      try {
        // A label is a precision id or a per-component mix ("default=bf16,routed_experts=nvfp4").
        mix = parse_weight_spec(ck.precision_label, m.native_precision, cat);
      } catch (const Error& e) {
        out.push_back({models_file, path + "/precision_label",
                       "cannot interpret as a precision mix: " + std::string(e.what())});
        continue;
      }
      double bytes = 0;
      for (const auto& [c, b] : weight_bytes(m, mix, cat, ck.includes_mtp)) bytes += b;
      const double dev = (bytes / 1e9 - ck.size_gb) / ck.size_gb * 100;
      if (std::fabs(dev) > 10)
        out.push_back({models_file, path,
                       fmt::format("{}: computed weights {:.1f} GB differ from the published {} "
                                   "checkpoint ({:.1f} GB) by {:+.1f}%",
                                   m.id, bytes / 1e9, ck.precision_label, ck.size_gb, dev)});
    }
  }
  return out;
}

namespace {

std::string join(const std::vector<std::string>& v, const char* sep = " ") {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

std::string attention_text(const Attention& a) {
  switch (a.type) {
    case AttentionType::mla:
      if (a.compressed)
        return fmt::format("CSA h{} kv1×{} o{}×{} kv/{:.2f}", a.heads, a.compressed->head_dim,
                           a.compressed->o_groups, a.compressed->o_lora_rank, a.kv_compression);
      return fmt::format("MLA h{} r{}+{}", a.heads, a.kv_lora_rank, a.qk_rope_head_dim);
    case AttentionType::gqa:
      if (a.has_global_geometry())
        return fmt::format("GQA {}/{}×{}, global {}×{}{}", a.heads, a.kv_heads, a.head_dim,
                           a.full_kv_heads(), a.full_head_dim(), a.global_k_eq_v ? " K=V" : "");
      return fmt::format("GQA {}/{}×{}", a.heads, a.kv_heads, a.head_dim);
    case AttentionType::mha:
      return fmt::format("MHA {}×{}", a.heads, a.head_dim);
  }
  return "";
}

Json prov_json(const Provenance& p) {
  Json j = {{"source", p.source}, {"as_of", p.as_of}, {"estimated", p.estimated}};
  if (!p.notes.empty()) j["notes"] = p.notes;
  return j;
}

}  // namespace

namespace {

// Models: size, attention, experts, context and native precision.
void list_models(Report& r, Json& items, const Catalog& cat) {
  Table t{"models",
          "",
          {"id", "name", "kind", "total B", "active B", "layers", "attention", "experts", "context",
           "native", "license", "estimated"},
          {},
          {}};
  for (const auto& m : cat.models) {
    const std::string experts = m.moe ? fmt::format("{}+{} / k{}", m.moe->routed_experts,
                                                    m.moe->shared_experts, m.moe->experts_per_token)
                                      : "dense";
    t.add({m.id, m.name, model_kind_name(m.kind), Cell(m.total_params_b, 1),
           Cell(m.active_params_b, 1), m.layers, attention_text(m.attention), experts,
           m.max_context_tokens,
           m.native_precision.at(Component::routed_experts) ==
                   m.native_precision.at(Component::attention)
               ? m.native_precision.at(Component::attention)
               : m.native_precision.at(Component::routed_experts) + "+" +
                     m.native_precision.at(Component::attention),
           m.license, m.prov.estimated});
    items.push_back({{"id", m.id},
                     {"name", m.name},
                     {"kind", model_kind_name(m.kind)},
                     {"total_params_b", m.total_params_b},
                     {"active_params_b", m.active_params_b},
                     {"layers", m.layers},
                     {"max_context_tokens", m.max_context_tokens},
                     {"context_extension",
                      m.context_extension
                          ? Json{{"method", m.context_extension->method},
                                 {"factor", m.context_extension->factor},
                                 {"max_context_tokens", m.context_extension->max_context_tokens},
                                 {"quality_caveat", m.context_extension->quality_caveat}}
                          : Json(nullptr)},
                     {"license", m.license},
                     {"provenance", prov_json(m.prov)}});
  }
  r.tables.push_back(t);
}

// Devices: memory (GiB and GB), bandwidth, peak math and power.
void list_devices(Report& r, Json& items, const Catalog& cat) {
  Table t{"devices",
          "",
          {"id", "name", "kind", "memory GiB", "memory GB", "bandwidth GB/s", "bf16 TFLOPS",
           "fp8 TFLOPS", "fp4 TFLOPS", "NVLink GB/s", "TDP W", "estimated"},
          {},
          {}};
  for (const auto& d : cat.devices) {
    auto pk = [&](const char* k) -> Cell {
      auto it = d.peak_tflops.find(k);
      return it == d.peak_tflops.end() ? Cell() : Cell(it->second, 1);
    };
    t.add({d.id, d.name, device_kind_name(d.kind), Cell(d.memory_gib, 0), Cell(d.memory_gb, 1),
           Cell(d.memory_bandwidth_gb_s, 0), pk("bf16"), pk("fp8"), pk("fp4"),
           d.nvlink_gb_s > 0 ? Cell(d.nvlink_gb_s, 0) : Cell(), Cell(d.tdp_w, 0),
           d.prov.estimated});
    items.push_back(
        {{"id", d.id},
         {"name", d.name},
         {"kind", device_kind_name(d.kind)},
         {"memory_gib", d.memory_gib},
         {"memory_gb", d.memory_gb},
         {"usable_memory_gb", d.usable_memory_gb ? Json(*d.usable_memory_gb) : Json(nullptr)},
         {"memory_bandwidth_gb_s", d.memory_bandwidth_gb_s},
         {"peak_tflops", d.peak_tflops},
         {"hw_formats", d.hw_formats},
         {"provenance", prov_json(d.prov)}});
  }
  r.tables.push_back(t);
}

// Weight and KV-cache formats.
void list_precisions(Report& r, Json& items, const Catalog& cat) {
  Table t{"weight_formats",
          "Weight formats",
          {"id", "bits/weight", "hw format", "retention %", "source"},
          {},
          {}};
  for (const auto& w : cat.weight_formats) {
    t.add({w.id, Cell(w.bits_per_weight, 3), w.hw_format,
           w.quality_retention_pct ? fmt::format("{:g}–{:g}", w.quality_retention_pct->first,
                                                 w.quality_retention_pct->second)
                                   : std::string(),
           w.prov.source});
    items.push_back({{"id", w.id},
                     {"kind", "weight"},
                     {"bits_per_weight", w.bits_per_weight},
                     {"hw_format", w.hw_format},
                     {"provenance", prov_json(w.prov)}});
  }
  r.tables.push_back(t);
  Table k{"kv_formats", "KV-cache formats", {"id", "bits/element", "source"}, {}, {}};
  for (const auto& f : cat.kv_formats) {
    k.add({f.id, Cell(f.bits_per_element, 3), f.prov.source});
    items.push_back({{"id", f.id},
                     {"kind", "kv"},
                     {"bits_per_element", f.bits_per_element},
                     {"provenance", prov_json(f.prov)}});
  }
  r.tables.push_back(k);
}

// Serving engines.
void list_engines(Report& r, Json& items, const Catalog& cat) {
  Table t{"engines", "", {"id", "name", "devices", "memory util", "speculative"}, {}, {}};
  for (const auto& e : cat.engines) {
    t.add({e.id, e.name, join(e.device_kinds), Cell(e.memory_utilization, 2), join(e.speculative)});
    items.push_back({{"id", e.id},
                     {"name", e.name},
                     {"memory_utilization", e.memory_utilization},
                     {"provenance", prov_json(e.prov)}});
  }
  r.tables.push_back(t);
}

// API, rental and hardware prices.
void list_prices(Report& r, Json& items, const Catalog& cat) {
  Table a{"api",
          "API prices (per 1M tokens)",
          {"model", "provider", "tier", "currency", "input/1M", "cached input/1M", "output/1M",
           "as of"},
          {},
          {}};
  for (const auto& p : cat.api_prices) {
    // Prices to their own precision (a cached input of 0.0028 is not 0.003).
    a.add({p.model, p.provider, p.tier, p.currency, Cell(p.input_per_mtok),
           p.cached_input_per_mtok ? Cell(*p.cached_input_per_mtok) : Cell(),
           Cell(p.output_per_mtok), p.prov.as_of});
    items.push_back({{"type", "api"},
                     {"model", p.model},
                     {"provider", p.provider},
                     {"currency", p.currency},
                     {"input_per_mtok", p.input_per_mtok},
                     {"cached_input_per_mtok",
                      p.cached_input_per_mtok ? Json(*p.cached_input_per_mtok) : Json(nullptr)},
                     {"output_per_mtok", p.output_per_mtok},
                     {"provenance", prov_json(p.prov)}});
  }
  r.tables.push_back(a);
  Table rt{"rental", "GPU rental", {"device", "provider", "kind", "USD/GPU-hour", "as of"}, {}, {}};
  for (const auto& p : cat.rental_prices) {
    rt.add({p.device, p.provider, p.kind, Cell(p.usd_per_gpu_hour, 2), p.prov.as_of});
    items.push_back({{"type", "rental"},
                     {"device", p.device},
                     {"provider", p.provider},
                     {"kind", p.kind},
                     {"usd_per_gpu_hour", p.usd_per_gpu_hour},
                     {"provenance", prov_json(p.prov)}});
  }
  r.tables.push_back(rt);
  Table h{"hardware",
          "Hardware purchase",
          {"item", "device", "devices", "currency", "low", "high", "basis", "as of"},
          {},
          {}};
  for (const auto& p : cat.hardware_prices) {
    h.add({p.item, p.device, p.devices, p.currency, Cell(p.price_low, 0), Cell(p.price_high, 0),
           p.basis, p.prov.as_of});
    items.push_back({{"type", "hardware"},
                     {"item", p.item},
                     {"device", p.device},
                     {"currency", p.currency},
                     {"price_low", p.price_low},
                     {"price_high", p.price_high},
                     {"provenance", prov_json(p.prov)}});
  }
  r.tables.push_back(h);
}

// Sites: electricity, PUE and VAT.
void list_sites(Report& r, Json& items, const Catalog& cat) {
  Table t{"sites", "", {"id", "currency", "electricity/kWh", "PUE", "VAT"}, {}, {}};
  for (const auto& s : cat.sites) {
    t.add({s.id, s.currency, Cell(s.electricity_per_kwh, 3), Cell(s.pue, 2), Cell(s.vat_rate, 2)});
    items.push_back({{"id", s.id},
                     {"currency", s.currency},
                     {"electricity_per_kwh", s.electricity_per_kwh},
                     {"pue", s.pue},
                     {"provenance", prov_json(s.prov)}});
  }
  r.tables.push_back(t);
}

// Exchange rates (units per USD).
void list_fx(Report& r, Json& items, const Catalog& cat) {
  Table t{"fx", "FX (units per USD)", {"currency", "per USD", "as of", "source"}, {}, {}};
  for (const auto& f : cat.fx_rates) {
    t.add({f.currency, Cell(f.per_usd, 4), f.prov.as_of, f.prov.source});
    items.push_back(
        {{"currency", f.currency}, {"per_usd", f.per_usd}, {"provenance", prov_json(f.prov)}});
  }
  r.tables.push_back(t);
}

}  // namespace

Report catalog_list_report(const Catalog& cat, const std::string& what) {
  using Lister = void (*)(Report&, Json&, const Catalog&);
  static const std::pair<const char*, Lister> kListers[] = {{"models", list_models},
                                                            {"devices", list_devices},
                                                            {"precisions", list_precisions},
                                                            {"engines", list_engines},
                                                            {"prices", list_prices},
                                                            {"sites", list_sites},
                                                            {"fx", list_fx}};
  Report r;
  r.title = "catalog: " + what;
  Json items = Json::array();
  const auto it = std::find_if(std::begin(kListers), std::end(kListers),
                               [&](const auto& l) { return what == l.first; });
  if (it == std::end(kListers)) throw Error("unknown catalog listing '" + what + "'");
  it->second(r, items, cat);
  r.json["catalog"] = what;
  r.json["items"] = items;
  return r;
}

}  // namespace moeplan
