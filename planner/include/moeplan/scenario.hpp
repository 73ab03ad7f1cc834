// Cost scenario files (docs/scenario.md): JSON in, cost::CostInputs out, with
// every amount converted into the scenario currency and every input recorded
// as an assumption with its source. Unknown keys, wrong types and out-of-range
// values are InputErrors naming the file and the JSON path.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "moeplan/catalog.hpp"
#include "moeplan/cost.hpp"
#include "moeplan/json_read.hpp"

namespace moeplan {

// Supplies the catalog on demand. The scenario reader calls it only when the
// scenario names a catalog id (gpu, model, site) or leaves fx_per_usd out, so a
// self-contained scenario never loads data/. An empty function means "no
// catalog": such references are then errors.
using CatalogProvider = std::function<const Catalog&()>;

// Reads a scenario file. Throws InputError (file + JSON path) on bad content and
// UnknownIdError (wrapped with the path) on unknown catalog ids.
cost::CostInputs load_scenario(const std::string& path, const CatalogProvider& catalog = {});

// Same for already parsed JSON; `file` names it in messages.
cost::CostInputs parse_scenario(const Json& doc, const std::string& file,
                                const CatalogProvider& catalog = {});

// Same for JSON text (tests, stdin).
cost::CostInputs parse_scenario_text(const std::string& text, const std::string& file,
                                     const CatalogProvider& catalog = {});

// The keys a `buy` / `rent` section accepts (docs/scenario.md), for a reader that must check a
// section before the cost reader sees it: plan drops a build's buy section when the catalog
// cannot price that node, and a typo in it would otherwise vanish with it.
std::vector<std::string> buy_section_keys();
std::vector<std::string> rent_section_keys();
// The keys that give a rent price in a `rent` section (one at most); without one the rent is
// priced from the catalog.
const std::vector<std::string>& rent_price_keys();

}  // namespace moeplan
