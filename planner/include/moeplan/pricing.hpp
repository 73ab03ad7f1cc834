// One price for one node of a deployable system, in one basis (docs/cost.md § Pricing a
// system). `plan` and `recommend` price every candidate through these functions so a ranking
// never mixes bases and an owned node is never priced as a bare card.
//
// Owning, basis street | list | quote:
//   1. the system's complete-system prices of that basis (systems.json `prices`),
//      else prices.json entries of kind "system" for the same device and node size and basis;
//   2. else the device's card prices of that basis (prices.json kind "card") × gpus_per_node
//      plus the system's `host_platform` price of that basis (chassis, CPUs, RAM, PSU, NIC).
//   A card price without a host platform price does not price a node: unpriceable.
// Renting, kind on_demand | reserved_1y | reserved_3y | spot:
//   1. the system's rentals of that kind (per node-hour);
//   2. else the device's per-GPU-hour rentals (prices.json) × gpus_per_node, prices.json
//      kind "reserved" with commitment_months 12 → reserved_1y, 36 → reserved_3y.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "moeplan/catalog.hpp"

namespace moeplan::pricing {

enum class OwnBasis { street, list, quote };
enum class RentKind { on_demand, reserved_1y, reserved_3y, spot };

const char* own_basis_name(OwnBasis b);
const char* rent_kind_name(RentKind k);
// nullopt for an unknown name (the callers turn that into an InputError with the JSON path).
std::optional<OwnBasis> parse_own_basis(const std::string& s);
std::optional<RentKind> parse_rent_kind(const std::string& s);
// Reserved capacity is paid around the clock whether used or not; on-demand and spot are
// billed by the hour, so a part-time schedule only saves money on those.
bool bills_by_the_hour(RentKind k);

// The buyer's money context: the scenario's currency and the VAT rate that applies to it
// (used to take VAT out of prices that include it without saying at which rate).
struct Context {
  std::string currency = "USD";
  double fx_per_usd = 1;  // units of `currency` per USD
  double vat_rate = 0;
};

// One catalog entry a price was built from (provenance, Monte Carlo).
struct Entry {
  std::string name;    // "systems.json/hgx-h200-8/prices/0", "prices.json/hardware/<item>"
  std::string source;  // catalog source text
  std::string as_of;
  std::string currency;      // as written in the catalog
  double low = 0, high = 0;  // as written, per unit
  int count = 1;             // units per node (cards × gpus_per_node)
  bool estimated = false;
};

struct OwnPrice {
  bool ok = false;
  std::string reason;  // why not priced, when !ok
  std::string basis;   // "own: street, system price" | "own: street, cards + host platform"
  // Net of VAT, scenario currency, whole node. mid() is the point the cost model uses.
  double net_low = 0, net_high = 0;
  // Alternatives (one per complete-system entry, or per card entry + host platform), net of
  // VAT in the scenario currency: the Monte Carlo picks one and draws uniformly in it.
  std::vector<std::pair<double, double>> ranges;
  std::vector<Entry> entries;
  bool estimated = false;
  double mid() const { return (net_low + net_high) / 2; }
};

struct RentPrice {
  bool ok = false;
  std::string reason;
  std::string basis;  // "rent: on_demand, per node-hour" | "rent: reserved_3y, per GPU-hour × 8"
  RentKind kind = RentKind::on_demand;
  double per_node_hour = 0;  // scenario currency: the cheapest entry (what a buyer would take)
  std::vector<double> alternatives;  // every entry's node-hour price (Monte Carlo)
  std::vector<Entry> entries;
  bool estimated = false;
};

OwnPrice own_price(const System& s, const Catalog& cat, OwnBasis basis, const Context& ctx);
RentPrice rent_price(const System& s, const Catalog& cat, RentKind kind, const Context& ctx);

// The catalog system of `device` with exactly `gpus` per node (the first listed), or nullptr.
const System* system_for(const Catalog& cat, const std::string& device, int gpus);

// A stand-in for a device and node size that data/systems.json does not list: no host
// platform, so only prices.json complete-system entries of that size can price it.
System stand_in_system(const Device& d, int gpus);

// The node `gpus` × `d` is priced as: its catalog system (system_for), else the stand-in.
System node_for(const Catalog& cat, const Device& d, int gpus);

// Nodes an owner must buy to run `needed` of system `s`: whole purchase units
// (`purchase_unit_nodes`, e.g. 18 GB200 trays = one NVL72 rack). Renting needs only `needed`.
int nodes_to_own(const System& s, int needed);
// The same for a purchase unit of `unit` nodes (< 1 read as 1).
int nodes_to_own(int unit, int needed);

}  // namespace moeplan::pricing
