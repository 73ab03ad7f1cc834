// Catalog price selection: docs/cost.md §3, docs/plan.md §Monte Carlo.
#include "moeplan/price_select.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace moeplan {

const char* price_basis_name(PriceBasis b) {
  return b == PriceBasis::list ? "list" : "street";
}

bool price_basis_accepts(PriceBasis b, const std::string& entry_basis) {
  if (b == PriceBasis::list) return entry_basis == "list";
  return entry_basis == "street" || entry_basis == "quote";
}

std::vector<const HardwarePick*> HardwareSelection::used() const {
  std::vector<const HardwarePick*> out;
  for (const auto& p : picks)
    if (p.used) out.push_back(&p);
  return out;
}

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// The node-shaped entries: systems of the right size, else cards.
std::vector<HardwarePick> node_entries(const Catalog& cat, const std::string& device_id, int gpus) {
  std::vector<HardwarePick> out;
  const auto all = cat.hardware_prices_for(device_id);
  int size = gpus;
  if (size == 0)
    for (const HardwarePrice* h : all)
      if (h->kind == "system") {
        size = h->devices;
        break;
      }
  for (const HardwarePrice* h : all)
    if (h->kind == "system" && h->devices == size) out.push_back({h, 1, false, {}, 0});
  if (out.empty())
    for (const HardwarePrice* h : all)
      if (h->kind == "card") out.push_back({h, gpus > 0 ? gpus : 1, false, {}, 0});
  for (auto& p : out) {
    const HardwarePrice& h = *p.entry;
    const double gross = 0.5 * (h.price_low + h.price_high) * p.count;
    const double net = h.includes_vat ? gross / (1 + h.vat_rate) : gross;
    const double fx = cat.fx_per_usd(h.currency);
    p.net_usd_mid = fx > 0 ? net / fx : net;
  }
  return out;
}

}  // namespace

HardwareSelection select_price_entries(const Catalog& cat, const std::string& device_id, int gpus,
                                       PriceBasis basis, bool allow_fallback) {
  HardwareSelection s;
  s.picks = node_entries(cat, device_id, gpus);
  for (auto& p : s.picks) {
    p.used = price_basis_accepts(basis, p.entry->basis);
    if (!p.used)
      p.excluded = fmt::format("basis {} (scenario: {})", p.entry->basis, price_basis_name(basis));
  }
  if (s.used().empty() && !s.picks.empty() && allow_fallback) {
    s.basis_fallback = true;
    for (auto& p : s.picks) {
      p.used = true;
      p.excluded.clear();
    }
  }
  // Outliers: judged against the median of the used entries' net USD midpoints.
  std::vector<double> mids;
  for (const auto* p : s.used()) mids.push_back(p->net_usd_mid);
  if (mids.size() >= 3) {
    const double med = median(mids);
    for (auto& p : s.picks) {
      if (!p.used || med <= 0) continue;
      const double ratio = p.net_usd_mid / med;
      if (ratio > kOutlierFactor || ratio < 1.0 / kOutlierFactor) {
        p.used = false;
        p.excluded = fmt::format("outlier: midpoint {:.2f}× the median of its peers", ratio);
      }
    }
    mids.clear();
    for (const auto* p : s.used()) mids.push_back(p->net_usd_mid);
  }
  if (!mids.empty()) {
    const double med = median(mids);
    double best = 0;
    for (std::size_t i = 0; i < s.picks.size(); ++i) {
      if (!s.picks[i].used) continue;
      const double d = std::fabs(s.picks[i].net_usd_mid - med);
      if (s.point < 0 || d < best - 1e-9 * med) {
        s.point = static_cast<int>(i);
        best = d;
      }
    }
  }
  return s;
}

std::vector<const RentalPrice*> select_rental_entries(const Catalog& cat,
                                                      const std::string& device_id,
                                                      const std::string& kind,
                                                      const std::string& provider) {
  std::vector<const RentalPrice*> out;
  for (const RentalPrice* r : cat.rental_prices_for(device_id))
    if (r->kind == kind && (provider.empty() || r->provider == provider)) out.push_back(r);
  return out;
}

std::string describe_price_entry(const HardwarePrice& h) {
  return fmt::format("{} ({}, {} {:.0f}–{:.0f}{})", h.item, h.basis, h.currency, h.price_low,
                     h.price_high,
                     h.includes_vat ? fmt::format(" incl. {:.0f}% VAT", h.vat_rate * 100) : "");
}

}  // namespace moeplan
