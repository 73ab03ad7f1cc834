// Which catalog price entries price a node in `moeplan cost` (docs/cost.md §3): the scenario
// reader's point estimate and range when buy names gpu × gpus without a price. plan, recommend and
// menus price nodes through pricing.hpp instead (systems.json first, every entry of the basis in
// the range); with several entries the two can take different points (docs/cost.md §3). Pure
// functions over the catalog.
#pragma once

#include <string>
#include <vector>

#include "moeplan/catalog.hpp"

namespace moeplan {

// The hardware price basis a scenario states (buy/price_basis): `street` takes street prices
// and vendor quotes (what a buyer pays), `list` takes list prices only.
enum class PriceBasis { street, list };
const char* price_basis_name(PriceBasis b);
bool price_basis_accepts(PriceBasis b, const std::string& entry_basis);

// An entry more than kOutlierFactor times above (or below 1/kOutlierFactor of) the median
// net midpoint of its in-basis peers is an outlier; needs at least 3 entries to judge.
inline constexpr double kOutlierFactor = 2.0;

struct HardwarePick {
  const HardwarePrice* entry = nullptr;
  int count = 1;           // cards per node (1 for a system entry)
  bool used = false;       // feeds the point estimate's neighbourhood and the draws
  std::string excluded;    // why not used: "basis list", "outlier: …"
  double net_usd_mid = 0;  // midpoint, net of the entry's own VAT, in USD, × count
};

struct HardwareSelection {
  std::vector<HardwarePick> picks;  // every entry for this node shape, used or not
  int point = -1;                   // index in picks of the point estimate's entry (-1: none)
  bool basis_fallback = false;      // no entry in the basis: every basis used instead
  std::vector<const HardwarePick*> used() const;
};

// Entries pricing a node of `gpus` devices: systems of exactly `gpus` devices when any (with
// gpus = 0, systems of the first listed size), else cards × gpus (× 1 when gpus = 0). Keeps
// those in `basis` (all of them, flagged, when none is and `allow_fallback`), then drops
// outliers. The point entry is the used entry whose midpoint is nearest their median (the first
// in catalog order on a tie), never "the last match".
HardwareSelection select_price_entries(const Catalog& cat, const std::string& device_id, int gpus,
                                       PriceBasis basis, bool allow_fallback = true);

// Rental entries of one kind (and provider, when given) for a device, in catalog order; the
// point estimate takes the cheapest, the draws all of them.
std::vector<const RentalPrice*> select_rental_entries(const Catalog& cat,
                                                      const std::string& device_id,
                                                      const std::string& kind,
                                                      const std::string& provider = {});

// "item (basis, currency low–high)" for reports and the candidate's JSON.
std::string describe_price_entry(const HardwarePrice& h);

}  // namespace moeplan
