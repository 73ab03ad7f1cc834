// Node prices in one basis (docs/cost.md § Pricing a system): complete-system prices first,
// cards only with a host platform, rentals per node-hour by kind.
#include <catch2/catch.hpp>

#include "moeplan/pricing.hpp"
#include "test_support.hpp"

using namespace moeplan;
using namespace moeplan::pricing;

namespace {

SystemPrice host(double lo, double hi, std::string basis = "street") {
  SystemPrice p;
  p.basis = std::move(basis);
  p.currency = "USD";
  p.price_low = lo;
  p.price_high = hi;
  p.what = "chassis, CPU, RAM, PSU, NIC (test)";
  p.prov.source = "test";
  return p;
}

// A 4 × RTX 5090 workstation: the catalog publishes only the card (street 2,900–4,200 USD).
System workstation(bool with_host) {
  System s;
  s.id = "test-ws-4x5090";
  s.device = "rtx-5090";
  s.gpus_per_node = 4;
  if (with_host) s.host_platform.push_back(host(3000, 4000));
  return s;
}

}  // namespace

TEST_CASE("own price of a system with a complete-system price uses it", "[pricing]") {
  const Catalog& cat = test::bundled_catalog();
  // A 3 × H200 box: no prices.json entry has that size, so only its own prices count; the H200
  // card price (if any) is never used while a complete-system price of the basis exists.
  System s = workstation(true);
  s.device = "h200";
  s.gpus_per_node = 3;
  s.prices.push_back(host(100000, 120000));
  s.prices.push_back(host(90000, 110000));
  s.prices.push_back(host(50000, 60000, "list"));
  const OwnPrice o = own_price(s, cat, OwnBasis::street, {"USD", 1, 0.27});
  REQUIRE(o.ok);
  CHECK(o.basis == "own: street, system price");
  CHECK(o.net_low == Approx(90000));  // lowest low of the two street entries
  CHECK(o.net_high == Approx(120000));
  CHECK(o.ranges.size() == 2);  // one Monte Carlo alternative per entry
  CHECK(o.entries.size() == 2);
  for (const auto& e : o.entries) CHECK(e.name.find("/prices/") != std::string::npos);
  CHECK(o.mid() == Approx(105000));
  // The bundled 8 × H200 node is priced from complete-system prices only.
  const OwnPrice h = own_price(cat.system("hgx-h200-8"), cat, OwnBasis::street, {"USD", 1, 0.27});
  REQUIRE(h.ok);
  CHECK(h.basis == "own: street, system price");
  for (const auto& e : h.entries) CHECK(e.count == 1);
}

TEST_CASE("own price composes cards × GPUs + host platform, never a bare card", "[pricing]") {
  Catalog cat = test::bundled_catalog();
  const System with = workstation(true);
  const OwnPrice o = own_price(with, cat, OwnBasis::street, {"USD", 1, 0});
  REQUIRE(o.ok);
  CHECK(o.basis == "own: street, cards + host platform");
  // 4 × 2,900 + 3,000 = 14,600; 4 × 4,200 + 4,000 = 20,800 (prices.json RTX 5090 street).
  CHECK(o.net_low == Approx(14600));
  CHECK(o.net_high == Approx(20800));
  const OwnPrice bare = own_price(workstation(false), cat, OwnBasis::street, {"USD", 1, 0});
  CHECK_FALSE(bare.ok);
  CHECK(bare.reason.find("bare card") != std::string::npos);
  CHECK(bare.entries.empty());
  // No list price of any kind for the RTX 5090: unpriceable in that basis, with the reason.
  const OwnPrice list = own_price(with, cat, OwnBasis::list, {"USD", 1, 0});
  CHECK_FALSE(list.ok);
  CHECK(list.reason.find("no list card price") != std::string::npos);
}

TEST_CASE("own price takes out VAT at the stated rate, else the buyer's", "[pricing]") {
  Catalog cat = test::bundled_catalog();
  System s = workstation(false);
  SystemPrice p = host(12000, 12000);
  p.includes_vat = true;
  p.vat_rate = 0.20;
  s.prices.push_back(p);
  const OwnPrice o = own_price(s, cat, OwnBasis::street, {"USD", 1, 0.27});
  REQUIRE(o.ok);
  CHECK(o.net_low == Approx(10000));  // 12,000 / 1.20, not / 1.27
  s.prices[0].vat_rate = 0;
  CHECK(own_price(s, cat, OwnBasis::street, {"USD", 1, 0.25}).net_low == Approx(9600));
  // In another currency: EUR at the catalog's rate into HUF at the scenario's.
  s.prices[0] = host(1000, 1000);
  s.prices[0].currency = "EUR";
  const double want = 1000 / cat.fx_per_usd("EUR") * 311;
  CHECK(own_price(s, cat, OwnBasis::street, {"HUF", 311, 0}).net_low == Approx(want));
}

TEST_CASE("rent price per node-hour by kind", "[pricing]") {
  const Catalog& cat = test::bundled_catalog();
  System s = workstation(false);
  s.id = "test-h200-8";
  s.device = "h200";
  s.gpus_per_node = 8;
  SystemRental od;
  od.provider = "test";
  od.kind = "on_demand";
  od.usd_per_node_hour = 34.0;
  s.rentals.push_back(od);
  const RentPrice r = rent_price(s, cat, RentKind::on_demand, {"USD", 1, 0});
  REQUIRE(r.ok);
  CHECK(r.basis == "rent: on_demand, per node-hour");
  CHECK(r.per_node_hour == Approx(34.0));  // the system's own node-hour rental wins
  // No reserved rental on the system: the device's 3-year reservation (prices.json, 1.60 $/GPU-h,
  // commitment_months 36) × 8 GPUs, in HUF at 311.
  const RentPrice r3 = rent_price(s, cat, RentKind::reserved_3y, {"HUF", 311, 0});
  REQUIRE(r3.ok);
  CHECK(r3.basis == "rent: reserved_3y, per GPU-hour × 8");
  CHECK(r3.per_node_hour == Approx(1.6 * 8 * 311));
  // No 1-year reservation anywhere: a reason, not a 3-year price in disguise.
  const RentPrice r1 = rent_price(s, cat, RentKind::reserved_1y, {"USD", 1, 0});
  CHECK_FALSE(r1.ok);
  CHECK(r1.reason.find("reserved_1y") != std::string::npos);
  const RentPrice spot = rent_price(s, cat, RentKind::spot, {"USD", 1, 0});
  REQUIRE(spot.ok);
  CHECK(spot.per_node_hour == Approx(1.84 * 8));  // prices.json spot 8×H200, per GPU-hour
}

TEST_CASE("basis names parse and bad names are rejected", "[pricing]") {
  CHECK(parse_own_basis("street") == OwnBasis::street);
  CHECK(parse_own_basis("quote") == OwnBasis::quote);
  CHECK_FALSE(parse_own_basis("card"));
  CHECK(parse_rent_kind("reserved_3y") == RentKind::reserved_3y);
  CHECK_FALSE(parse_rent_kind("reserved"));
  CHECK(bills_by_the_hour(RentKind::on_demand));
  CHECK_FALSE(bills_by_the_hour(RentKind::reserved_1y));
}

TEST_CASE("every own price over the catalog is a system price", "[pricing]") {
  const Catalog& cat = test::bundled_catalog();
  for (const System& s : cat.systems)
    for (auto b : {OwnBasis::street, OwnBasis::list, OwnBasis::quote}) {
      const OwnPrice o = own_price(s, cat, b, {"USD", 1, 0});
      if (!o.ok) {
        CHECK_FALSE(o.reason.empty());
        continue;
      }
      bool system_entry = false, host_entry = false, card_entry = false;
      for (const auto& e : o.entries) {
        system_entry = system_entry || e.name.find("/prices/") != std::string::npos;
        host_entry = host_entry || e.name.find("/host_platform/") != std::string::npos;
        card_entry = card_entry || e.count > 1;
      }
      INFO(s.id << " " << own_basis_name(b) << " " << o.basis);
      // A card entry never stands alone: cards come with a host platform.
      if (card_entry) CHECK(host_entry);
      CHECK((system_entry || host_entry ||
             o.basis == "own: " + std::string(own_basis_name(b)) + ", system price"));
    }
}
