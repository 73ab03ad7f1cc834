// Catalog listings and the deeper checks behind `moeplan catalog check`.
#pragma once

#include <string>
#include <vector>

#include "moeplan/catalog.hpp"
#include "moeplan/report.hpp"

namespace moeplan {

// Checks beyond what loading enforces, returned as warnings: load warnings,
// computed weight bytes against published checkpoint sizes beyond ±10%,
// models without API prices, devices without prices.
std::vector<CatalogWarning> check_catalog(const Catalog& cat);

// Rows for `catalog list WHAT` (models, devices, precisions, engines, prices, sites, fx).
Report catalog_list_report(const Catalog& cat, const std::string& what);

}  // namespace moeplan
