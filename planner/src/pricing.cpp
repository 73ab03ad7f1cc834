// Node prices in one basis (docs/cost.md § Pricing a system). Pure functions of the catalog.
#include "moeplan/pricing.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "moeplan/cost.hpp"

namespace moeplan::pricing {

const char* own_basis_name(OwnBasis b) {
  switch (b) {
    case OwnBasis::street:
      return "street";
    case OwnBasis::list:
      return "list";
    case OwnBasis::quote:
      return "quote";
  }
  return "?";
}

const char* rent_kind_name(RentKind k) {
  switch (k) {
    case RentKind::on_demand:
      return "on_demand";
    case RentKind::reserved_1y:
      return "reserved_1y";
    case RentKind::reserved_3y:
      return "reserved_3y";
    case RentKind::spot:
      return "spot";
  }
  return "?";
}

std::optional<OwnBasis> parse_own_basis(const std::string& s) {
  for (auto b : {OwnBasis::street, OwnBasis::list, OwnBasis::quote})
    if (s == own_basis_name(b)) return b;
  return std::nullopt;
}

std::optional<RentKind> parse_rent_kind(const std::string& s) {
  for (auto k : {RentKind::on_demand, RentKind::reserved_1y, RentKind::reserved_3y, RentKind::spot})
    if (s == rent_kind_name(k)) return k;
  return std::nullopt;
}

bool bills_by_the_hour(RentKind k) {
  return k == RentKind::on_demand || k == RentKind::spot;
}

namespace {

// A catalog amount in the scenario currency, net of VAT. An entry that includes VAT at a
// stated rate loses that rate; one that only says "includes VAT" loses the buyer's rate
// (the rule the cost scenario reader has always applied to prices.json entries).
double net_in(double amount, const std::string& currency, bool includes_vat, double stated_rate,
              const Catalog& cat, const Context& ctx) {
  const double x = cost::convert(amount, cat.fx_per_usd(currency), ctx.fx_per_usd);
  const double rate = stated_rate > 0 ? stated_rate : ctx.vat_rate;
  return cost::net_of_vat(x, includes_vat, rate);
}

struct Net {
  double low, high;
};

Net net_of(const SystemPrice& p, const Catalog& cat, const Context& ctx) {
  return {net_in(p.price_low, p.currency, p.includes_vat, p.vat_rate, cat, ctx),
          net_in(p.price_high, p.currency, p.includes_vat, p.vat_rate, cat, ctx)};
}

Net net_of(const HardwarePrice& h, int count, const Catalog& cat, const Context& ctx) {
  return {net_in(h.price_low * count, h.currency, h.includes_vat, h.vat_rate, cat, ctx),
          net_in(h.price_high * count, h.currency, h.includes_vat, h.vat_rate, cat, ctx)};
}

Entry entry_of(const SystemPrice& p, const std::string& name) {
  return {name, p.prov.source,   p.prov.as_of, p.currency, p.price_low, p.price_high,
          1,    p.prov.estimated};
}

Entry entry_of(const HardwarePrice& h, int count) {
  return {"prices.json/hardware/" + h.item,
          h.prov.source,
          h.prov.as_of,
          h.currency,
          h.price_low,
          h.price_high,
          count,
          h.prov.estimated};
}

void add_range(OwnPrice& o, Net n) {
  if (o.ranges.empty()) {
    o.net_low = n.low;
    o.net_high = n.high;
  } else {
    o.net_low = std::min(o.net_low, n.low);
    o.net_high = std::max(o.net_high, n.high);
  }
  o.ranges.emplace_back(n.low, n.high);
}

// Complete-system prices: systems.json `prices` of the basis, else prices.json system entries
// of the same device, node size and basis.
void complete_system(OwnPrice& o, const System& s, const Catalog& cat, const std::string& basis,
                     const Context& ctx) {
  for (std::size_t i = 0; i < s.prices.size(); ++i) {
    const SystemPrice& p = s.prices[i];
    if (p.basis != basis) continue;
    add_range(o, net_of(p, cat, ctx));
    o.entries.push_back(entry_of(p, fmt::format("systems.json/{}/prices/{}", s.id, i)));
  }
  // prices.json system entries only stand in when systems.json has no price of this basis:
  // the bundled systems repeat them, and counting both would double their weight in the draws.
  if (!o.ranges.empty()) return;
  for (const HardwarePrice* h : cat.hardware_prices_for(s.device)) {
    if (h->kind != "system" || h->devices != s.gpus_per_node || h->basis != basis) continue;
    add_range(o, net_of(*h, 1, cat, ctx));
    o.entries.push_back(entry_of(*h, 1));
  }
}

// Cards × gpus_per_node + the host platform (cheapest to dearest host over every card entry).
void cards_and_host(OwnPrice& o, const System& s, const Catalog& cat, const std::string& basis,
                    const Context& ctx) {
  std::vector<const HardwarePrice*> cards;
  for (const HardwarePrice* h : cat.hardware_prices_for(s.device))
    if (h->kind == "card" && h->basis == basis) cards.push_back(h);
  std::vector<std::size_t> hosts;
  for (std::size_t i = 0; i < s.host_platform.size(); ++i)
    if (s.host_platform[i].basis == basis) hosts.push_back(i);
  if (cards.empty() || hosts.empty()) {
    o.reason = fmt::format(
        "no {} price for system '{}': no complete-system price of that basis, and {}", basis,
        s.id.empty() ? fmt::format("{}×{}", s.gpus_per_node, s.device) : s.id,
        cards.empty() ? fmt::format("no {} card price for {} in prices.json", basis, s.device)
                      : fmt::format("no {} host_platform price to add to the {} card price "
                                    "(a bare card is not a node)",
                                    basis, s.device));
    return;
  }
  Net host{std::numeric_limits<double>::infinity(), 0};
  for (std::size_t i : hosts) {
    const Net n = net_of(s.host_platform[i], cat, ctx);
    host.low = std::min(host.low, n.low);
    host.high = std::max(host.high, n.high);
    o.entries.push_back(
        entry_of(s.host_platform[i], fmt::format("systems.json/{}/host_platform/{}", s.id, i)));
  }
  for (const HardwarePrice* h : cards) {
    const Net c = net_of(*h, s.gpus_per_node, cat, ctx);
    add_range(o, {c.low + host.low, c.high + host.high});
    o.entries.push_back(entry_of(*h, s.gpus_per_node));
  }
}

std::optional<RentKind> device_rental_kind(const RentalPrice& r) {
  if (r.kind == "on_demand") return RentKind::on_demand;
  if (r.kind == "spot") return RentKind::spot;
  if (r.kind == "reserved" && r.commitment_months == 12) return RentKind::reserved_1y;
  if (r.kind == "reserved" && r.commitment_months == 36) return RentKind::reserved_3y;
  return std::nullopt;  // other commitments match no basis
}

}  // namespace

OwnPrice own_price(const System& s, const Catalog& cat, OwnBasis basis, const Context& ctx) {
  OwnPrice o;
  const std::string b = own_basis_name(basis);
  complete_system(o, s, cat, b, ctx);
  if (!o.ranges.empty()) {
    o.basis = "own: " + b + ", system price";
  } else {
    cards_and_host(o, s, cat, b, ctx);
    if (o.ranges.empty()) {
      o.entries.clear();
      return o;
    }
    o.basis = "own: " + b + ", cards + host platform";
  }
  o.ok = true;
  for (const auto& e : o.entries) o.estimated = o.estimated || e.estimated;
  return o;
}

RentPrice rent_price(const System& s, const Catalog& cat, RentKind kind, const Context& ctx) {
  RentPrice r;
  r.kind = kind;
  const std::string k = rent_kind_name(kind);
  const double to = ctx.fx_per_usd;
  for (std::size_t i = 0; i < s.rentals.size(); ++i) {
    const SystemRental& x = s.rentals[i];
    if (x.kind != k) continue;
    r.alternatives.push_back(x.usd_per_node_hour * to);
    r.entries.push_back({fmt::format("systems.json/{}/rentals/{}", s.id, i), x.prov.source,
                         x.prov.as_of, "USD", x.usd_per_node_hour, x.usd_per_node_hour, 1,
                         x.prov.estimated});
  }
  if (!r.alternatives.empty()) {
    r.basis = "rent: " + k + ", per node-hour";
  } else {
    for (const RentalPrice* x : cat.rental_prices_for(s.device)) {
      if (device_rental_kind(*x) != kind) continue;
      r.alternatives.push_back(x->usd_per_gpu_hour * s.gpus_per_node * to);
      r.entries.push_back({"prices.json/rental/" + x->provider + "/" + x->device + "/" + x->kind,
                           x->prov.source, x->prov.as_of, "USD", x->usd_per_gpu_hour,
                           x->usd_per_gpu_hour, s.gpus_per_node, x->prov.estimated});
    }
    if (r.alternatives.empty()) {
      r.reason = fmt::format(
          "no {} rental for system '{}' (systems.json) nor for {} (prices.json)", k,
          s.id.empty() ? fmt::format("{}×{}", s.gpus_per_node, s.device) : s.id, s.device);
      return r;
    }
    r.basis = fmt::format("rent: {}, per GPU-hour × {}", k, s.gpus_per_node);
  }
  r.ok = true;
  r.per_node_hour = *std::min_element(r.alternatives.begin(), r.alternatives.end());
  for (const auto& e : r.entries) r.estimated = r.estimated || e.estimated;
  return r;
}

const System* system_for(const Catalog& cat, const std::string& device, int gpus) {
  for (const System* s : cat.systems_for(device))
    if (s->gpus_per_node == gpus) return s;
  return nullptr;
}

System stand_in_system(const Device& d, int gpus) {
  System s;
  s.device = d.id;
  s.gpus_per_node = gpus;
  s.name = fmt::format("{}×{} (not in data/systems.json)", gpus, d.id);
  return s;
}

System node_for(const Catalog& cat, const Device& d, int gpus) {
  if (const System* s = system_for(cat, d.id, gpus)) return *s;
  return stand_in_system(d, gpus);
}

int nodes_to_own(int unit, int needed) {
  unit = std::max(1, unit);
  return needed <= 0 ? 0 : (needed + unit - 1) / unit * unit;
}

int nodes_to_own(const System& s, int needed) {
  return nodes_to_own(s.purchase_unit_nodes, needed);
}

}  // namespace moeplan::pricing
