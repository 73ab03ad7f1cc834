// Topology of deployable systems (the System structs live in catalog.hpp with the other
// catalog entries; data/systems.json, docs/catalogs.md § systems): what a layout's
// communication crosses. The planner sizes, times and prices systems and layouts an engine
// can run, never loose cards.
#pragma once

#include <string>

#include "moeplan/catalog.hpp"

namespace moeplan {

// What a layout's communication crosses, for the performance model (docs/performance.md
// § Communication). Derived from a System, or from a Device's own fields when no system is
// named.
struct Topology {
  std::string system_id;  // "" when derived from the device alone
  int gpus_per_node = 1;
  ScaleUp scale_up;
  ScaleOut scale_out;
};

Topology topology_of(const System& s);
// The topology `gpus` devices of `d` run on: the catalog's system for this device whose node
// holds the most GPUs (a multi-node layout repeats it), else one derived from the device's
// fields (NVLink domain of max_per_node, else PCIe; scale-out unknown → none).
Topology topology_for(const Catalog& cat, const Device& d);

}  // namespace moeplan
