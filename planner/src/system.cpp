// Topology of deployable systems (docs/catalogs.md § systems, docs/performance.md
// § Communication).
#include "moeplan/system.hpp"

#include <algorithm>
#include <string>

#include "moeplan/performance.hpp"

namespace moeplan {

const char* scale_up_kind_name(ScaleUpKind k) {
  switch (k) {
    case ScaleUpKind::nvlink:
      return "nvlink";
    case ScaleUpKind::xgmi:
      return "xgmi";
    case ScaleUpKind::pcie_p2p:
      return "pcie_p2p";
    case ScaleUpKind::pcie_host:
      return "pcie_host";
    case ScaleUpKind::unified:
      return "unified";
    case ScaleUpKind::none:
      return "none";
  }
  return "none";
}

Topology topology_of(const System& s) {
  Topology t;
  t.system_id = s.id;
  t.gpus_per_node = s.gpus_per_node;
  t.scale_up = s.scale_up;
  t.scale_out = s.scale_out;
  return t;
}

Topology topology_for(const Catalog& cat, const Device& d) {
  const System* best = nullptr;
  for (const System* s : cat.systems_for(d.id))
    if (!best || s->gpus_per_node > best->gpus_per_node) best = s;
  if (best) return topology_of(*best);
  // No system in the catalog: what the device's own fields say. NVLink parts share an NVLink
  // domain of one node; other multi-card nodes talk over PCIe (peer-to-peer assumed only for
  // data-centre cards; consumer cards bounce through host memory).
  Topology t;
  t.gpus_per_node = std::max(1, d.max_per_node);
  if (d.kind != DeviceKind::gpu) {
    t.scale_up.kind = ScaleUpKind::unified;
    t.gpus_per_node = 1;
  } else if (d.nvlink_gb_s > 0) {
    t.scale_up.kind = ScaleUpKind::nvlink;
    t.scale_up.gb_s_per_gpu = d.nvlink_gb_s;
  } else {
    const bool geforce = d.name.find("GeForce") != std::string::npos;  // no P2P on GeForce
    t.scale_up.kind = geforce ? ScaleUpKind::pcie_host : ScaleUpKind::pcie_p2p;
    t.scale_up.gb_s_per_gpu = pcie_gb_s(d.pcie_gen, d.pcie_lanes);
  }
  t.scale_up.domain_gpus = t.gpus_per_node;
  t.scale_out.kind = "none";
  return t;
}

}  // namespace moeplan
