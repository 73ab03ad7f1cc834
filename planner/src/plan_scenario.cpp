// Plan scenario reader (docs/scenario.md § plan scenario). The plan-only keys
// (models, builds, SLA, residency, quality floors, resale, Monte Carlo) are
// read and validated here; the money part (currency, fx, horizon, demand
// volume, buy, rent, api) is kept as a cost scenario document and read per
// candidate by the cost scenario reader, so both files read alike.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "moeplan/errors.hpp"
#include "moeplan/plan.hpp"
#include "moeplan/scenario.hpp"

namespace moeplan::plan {

namespace {

const char* kDefault = "moeplan default (docs/plan.md)";

std::vector<std::string> with_prov(std::initializer_list<std::string_view> keys) {
  std::vector<std::string> out(keys.begin(), keys.end());
  for (auto k : {"source", "as_of", "notes"}) out.emplace_back(k);
  return out;
}

std::string base_name(const std::string& path) {
  const auto pos = path.find_last_of('/');
  return pos == std::string::npos ? path : path.substr(pos + 1);
}

// Keys of the cost scenario's buy section that price one node: they belong to
// a build (builds[i].buy) when the plan compares several builds.
const std::vector<std::string> kPerBuildBuyKeys = {
    "capex",         "capex_usd",          "system_price", "system_price_usd",
    "price_point",   "capex_includes_vat", "gpu",          "gpus",
    "opex_per_year", "opex_per_year_usd",  "wall_power_w", "gpu_tdp_w"};
const std::vector<std::string> kPerBuildRentKeys = {
    "per_month", "per_year", "per_month_usd", "per_year_usd", "gpu_hour_usd", "gpu", "gpus"};

class Reader {
 public:
  Reader(const Json& doc, const std::string& file, const Catalog& cat, bool any_model_kind = false)
      : root_(doc, file), cat_(cat), any_model_kind_(any_model_kind) {
    sc_.file = file;
    sc_.label = base_name(file);
  }

  PlanScenario read() {
    if (!root_.is_object()) root_.fail("expected a JSON object at the top level");
    root_.only_keys(with_prov({"title", "description", "currency", "fx_per_usd", "horizon_months",
                               "month_hours", "demand", "models", "builds", "engine", "n_plus_one",
                               "near_full_node_share", "resale", "monte_carlo", "buy", "rent",
                               "api", "pricing", "pilot"}));
    sc_.title = root_.string_or("title", "");
    sc_.description = root_.string_or("description", "");
    sc_.currency = root_.string("currency");  // the cost reader checks the code itself
    for (const char* k : {"title", "description", "source", "as_of", "notes", "currency",
                          "fx_per_usd", "horizon_months", "month_hours"})
      if (root_.has(k)) sc_.cost_doc[k] = root_.raw().at(k);
    (void)root_.positive_int("horizon_months");  // required; range-checked by the cost reader
    if (root_.has("fx_per_usd")) {
      // Read here too (price_context and the menu use it before the cost reader sees it).
      const double fx = root_.positive("fx_per_usd");
      if (sc_.currency == "USD" && fx != 1.0)
        root_.fail_member("fx_per_usd", "must be 1 (or absent) when currency is USD");
    }
    if (root_.has("engine")) {
      sc_.engine = root_.string("engine");
      try {
        (void)cat_.engine(sc_.engine);
      } catch (const UnknownIdError& e) {
        root_.fail_member("engine", e.what());
      }
      record("/engine", sc_.engine, "engine id");
    } else {
      record_default("/engine", sc_.engine, "engine id");
    }
    sc_.n_plus_one = root_.boolean_or("n_plus_one", false);
    note(root_, "n_plus_one", sc_.n_plus_one, "");
    if (root_.has("near_full_node_share")) {
      sc_.near_full_node_share = root_.fraction("near_full_node_share");
      if (sc_.near_full_node_share <= 0)
        root_.fail_member("near_full_node_share", "expected a share in (0, 1]");
    }
    note(root_, "near_full_node_share", sc_.near_full_node_share, "share of one node");

    read_demand(root_.at("demand"));
    read_models(root_.at("models"));
    read_builds(root_.at("builds"));
    if (auto v = root_.get("resale")) read_resale(*v);
    if (auto v = root_.get("pilot")) read_pilot(*v);
    if (auto v = root_.get("monte_carlo"))
      read_mc(*v);
    else {
      record_default("/monte_carlo/samples", sc_.monte_carlo.samples, "samples");
      record_default("/monte_carlo/seed", static_cast<double>(sc_.monte_carlo.seed), "");
      record_default("/monte_carlo/efficiency_spread", sc_.monte_carlo.efficiency_spread,
                     "± share");
    }

    // Money sections go to the cost reader as they are (it validates them).
    const bool many = sc_.builds_auto || sc_.builds.size() > 1;
    if (auto v = root_.get("buy")) {
      if (!v->is_object()) v->fail("expected an object, found " + describe_json(v->raw()));
      if (many)
        for (const auto& k : kPerBuildBuyKeys)
          if (v->has(k))
            v->fail_member(k,
                           "prices one node, but the plan compares several builds: put it in "
                           "/builds/i/buy of the build it belongs to");
      v->only_keys(buy_section_keys());  // before any build's pricing can drop it
      sc_.cost_doc["buy"] = v->raw();
      sc_.has_buy = true;
    }
    read_pricing();
    if (auto v = root_.get("rent")) {
      if (!v->is_object()) v->fail("expected an object, found " + describe_json(v->raw()));
      if (many)
        for (const auto& k : kPerBuildRentKeys)
          if (v->has(k))
            v->fail_member(k,
                           "prices one node, but the plan compares several builds: put it in "
                           "/builds/i/rent of the build it belongs to");
      auto rent_keys = rent_section_keys();
      rent_keys.emplace_back("schedule");
      v->only_keys(rent_keys);  // before any build's pricing can drop it
      sc_.cost_doc["rent"] = v->raw();
      sc_.cost_doc["rent"].erase("schedule");  // plan-only: read by read_pricing()
    }
    if (auto v = root_.get("api")) {
      if (!v->is_object()) v->fail("expected an object, found " + describe_json(v->raw()));
      for (const char* k :
           {"input_usd_per_mtok", "output_usd_per_mtok", "input_per_mtok", "output_per_mtok"})
        if (v->has(k) && sc_.models.ids.size() != 1)
          v->fail_member(k,
                         "explicit API prices belong to one model: list exactly one model, or "
                         "leave the prices out to take each model's from the catalog");
      if (v->has("model"))
        v->fail_member("model",
                       "the API price is looked up for each candidate's own model; "
                       "remove this key");
      sc_.cost_doc["api"] = v->raw();
    }
    return sc_;
  }

 private:
  JsonView root_;
  const Catalog& cat_;
  bool any_model_kind_ = false;
  PlanScenario sc_;

  void record(const std::string& name, Json value, std::string unit) {
    sc_.assumptions.push_back(
        {name, std::move(value), std::move(unit), "scenario " + sc_.label, ""});
  }
  void record_default(const std::string& name, Json value, std::string unit) {
    sc_.assumptions.push_back({name, std::move(value), std::move(unit), kDefault, ""});
  }
  void note(const JsonView& v, std::string_view key, const Json& value, const std::string& unit) {
    const std::string name = v.path() + "/" + std::string(key);
    if (v.has(key))
      record(name, value, unit);
    else
      record_default(name, value, unit);
  }

  // /pricing (own_basis, rent_kind) and /rent/schedule: one price basis for every candidate
  // and how a rented node runs (docs/scenario.md § pricing).
  void read_pricing() {
    std::string rent_kind;
    if (auto r = root_.get("rent"); r && r->is_object() && r->has("kind")) {
      // The cost reader's kinds map onto the catalog's: reserved prices are 36-month ones.
      const std::string k = r->one_of("kind", {"on_demand", "reserved", "spot"});
      rent_kind = k == "reserved" ? "reserved_3y" : k;
    }
    if (auto v = root_.get("pricing")) {
      if (!v->is_object()) v->fail("expected an object, found " + describe_json(v->raw()));
      v->only_keys({"own_basis", "rent_kind", "notes"});
      if (v->has("own_basis"))
        sc_.own_basis =
            *pricing::parse_own_basis(v->one_of("own_basis", {"street", "list", "quote"}));
      if (v->has("rent_kind")) {
        const std::string k =
            v->one_of("rent_kind", {"on_demand", "reserved_1y", "reserved_3y", "spot"});
        if (!rent_kind.empty() && k.rfind(rent_kind.substr(0, 8), 0) != 0)
          v->fail_member("rent_kind", "'" + k + "' contradicts /rent/kind (" + rent_kind +
                                          "): give one of them");
        rent_kind = k;
      }
    }
    if (!rent_kind.empty()) sc_.rent_kind = *pricing::parse_rent_kind(rent_kind);
    const bool given = root_.get("pricing").has_value();
    auto put = given ? &Reader::record : &Reader::record_default;
    (this->*put)("/pricing/own_basis", pricing::own_basis_name(sc_.own_basis), "basis");
    (this->*put)("/pricing/rent_kind", pricing::rent_kind_name(sc_.rent_kind), "kind");
    RentSchedule& s = sc_.rent_schedule;
    if (!pricing::bills_by_the_hour(sc_.rent_kind)) s.mode = "24x7";  // reserved: paid 24/7
    auto r = root_.get("rent");
    auto sv = r && r->is_object() ? r->get("schedule") : std::nullopt;
    if (!sv) {
      record_default("/rent/schedule/mode", s.mode, "");
      return;
    }
    if (!sv->is_object()) sv->fail("expected an object, found " + describe_json(sv->raw()));
    sv->only_keys({"mode", "min_billing_hours", "cold_start_s", "notes"});
    if (sv->has("mode")) s.mode = sv->one_of("mode", {"24x7", "profile", "autoscale"});
    if (s.mode != "24x7" && !pricing::bills_by_the_hour(sc_.rent_kind))
      sv->fail_member("mode", fmt::format("a {} rental is paid around the clock: only 24x7 applies",
                                          pricing::rent_kind_name(sc_.rent_kind)));
    if (sv->has("min_billing_hours")) {
      s.min_billing_hours = sv->positive("min_billing_hours");
      if (s.min_billing_hours > 24)
        sv->fail_member("min_billing_hours", "expected at most 24 hours");
    }
    if (sv->has("cold_start_s")) s.cold_start_s = sv->non_negative("cold_start_s");
    if (s.cold_start_s > 3600) sv->fail_member("cold_start_s", "expected at most 3,600 s");
    if (s.mode != "autoscale")
      for (const char* k : {"min_billing_hours", "cold_start_s"})
        if (sv->has(k)) sv->fail_member(k, "applies to mode autoscale only");
    record("/rent/schedule", sv->raw(), "");
  }

  void read_demand(const JsonView& v) {
    if (!v.is_object()) v.fail("expected an object, found " + describe_json(v.raw()));
    v.only_keys(with_prov({"requests_per_day", "input_tokens", "output_tokens", "cache_hit_share",
                           "days_per_year", "peak_to_average", "hourly_profile", "sla_ttft_ms",
                           "sla_tpot_ms", "context_tokens", "residency_required", "min_scores",
                           "min_retention_pct"}));
    PlanDemand& d = sc_.demand;
    d.requests_per_day = v.positive("requests_per_day");
    if (d.requests_per_day > 1e10)  // 115,000 requests a second: the documented range
      v.fail_member("requests_per_day",
                    fmt::format("expected a number > 0 and at most 1e10, found {}",
                                describe_json(v.raw().at("requests_per_day"))));
    d.output_tokens = v.positive_int("output_tokens");
    d.input_tokens = v.has("input_tokens") ? v.integer("input_tokens") : 0;
    if (d.input_tokens < 0) v.fail_member("input_tokens", "expected a number ≥ 0");
    if (d.output_tokens > 10'000'000 || d.input_tokens > 100'000'000)
      v.fail_member(d.output_tokens > 10'000'000 ? "output_tokens" : "input_tokens",
                    "implausibly large token count per request");
    d.cache_hit_share = v.has("cache_hit_share") ? v.fraction("cache_hit_share") : 0.0;
    d.days_per_year = v.has("days_per_year") ? v.positive("days_per_year") : 365.0;
    if (d.days_per_year > 366 || d.days_per_year < 1)
      v.fail_member("days_per_year",
                    fmt::format("expected 1–366 open days, found {}", d.days_per_year));
    if (v.has("peak_to_average") && v.has("hourly_profile"))
      v.fail_member("hourly_profile", "give peak_to_average or hourly_profile, not both");
    if (v.has("peak_to_average")) {
      d.peak_to_average = v.positive("peak_to_average");
      if (d.peak_to_average < 1)
        v.fail_member("peak_to_average",
                      fmt::format("expected ≥ 1 (peak over average), found {}", d.peak_to_average));
      if (d.peak_to_average > 24)
        v.fail_member("peak_to_average", "expected at most 24 (all traffic in one hour)");
      record(v.path() + "/peak_to_average", d.peak_to_average, "peak / average");
    } else if (v.has("hourly_profile")) {
      const auto h = v.array("hourly_profile");
      if (h.size() != 24)
        v.fail_member("hourly_profile",
                      fmt::format("expected 24 hourly weights, found {}", h.size()));
      double sum = 0, mx = 0;
      for (const auto& x : h) {
        const double w = x.number();
        if (!(w >= 0)) x.fail("expected a weight ≥ 0, found " + describe_json(x.raw()));
        d.hourly_profile.push_back(w);
        sum += w;
        mx = std::max(mx, w);
      }
      if (!(sum > 0)) v.fail_member("hourly_profile", "all weights are zero");
      d.peak_to_average = mx / (sum / 24.0);
      record(v.path() + "/hourly_profile", v.raw().at("hourly_profile"), "relative load per hour");
    } else {
      record_default(v.path() + "/peak_to_average", 1.0, "peak / average");
    }
    auto ms = [&](const char* k, std::optional<double>& out) {
      if (!v.has(k)) return;
      out = v.positive(k);
      record(v.path() + "/" + k, *out, "ms");
    };
    ms("sla_ttft_ms", d.sla_ttft_ms);
    ms("sla_tpot_ms", d.sla_tpot_ms);
    d.context_tokens = d.input_tokens + d.output_tokens;
    if (v.has("context_tokens")) {
      d.context_tokens = v.positive_int("context_tokens");
      if (d.context_tokens < d.input_tokens + d.output_tokens)
        v.fail_member("context_tokens",
                      fmt::format("expected at least input_tokens + output_tokens = {}",
                                  d.input_tokens + d.output_tokens));
      if (d.context_tokens > 100'000'000) v.fail_member("context_tokens", "implausibly large");
    }
    note(v, "context_tokens", static_cast<double>(d.context_tokens), "tokens");
    d.residency_required = v.boolean_or("residency_required", false);
    note(v, "residency_required", d.residency_required, "");
    if (auto s = v.get("min_scores")) {
      if (!s->is_object())
        s->fail("expected an object {benchmark: minimum}, found " + describe_json(s->raw()));
      // A benchmark no catalog model reports would make every floor "not verified": a typo
      // ("gpqa_diamnd") turned the quality floor off with exit 0 (audit 2026-11-27).
      std::vector<std::string> known;
      for (const auto& model : cat_.models)
        for (const auto& q : model.quality_scores)
          if (std::find(known.begin(), known.end(), q.benchmark) == known.end())
            known.push_back(q.benchmark);
      for (auto it = s->raw().begin(); it != s->raw().end(); ++it) {
        const JsonView x = s->at(it.key());
        if (std::find(known.begin(), known.end(), it.key()) == known.end())
          x.fail(UnknownIdError("benchmark", it.key(), known).what());
        const double m = x.number();
        if (!(m >= 0)) x.fail("expected a score ≥ 0, found " + describe_json(x.raw()));
        d.min_scores[it.key()] = m;
        record(x.path(), m, "score");
      }
    }
    if (v.has("min_retention_pct")) {
      const double r = v.positive("min_retention_pct");
      if (r > 100)
        v.fail_member("min_retention_pct", fmt::format("expected at most 100, found {}", r));
      d.min_retention_pct = r;
      record(v.path() + "/min_retention_pct", r, "%");
    }
    // The cost reader takes the volume part.
    Json cd = Json::object();
    for (const char* k : {"requests_per_day", "input_tokens", "output_tokens", "cache_hit_share",
                          "days_per_year", "source", "as_of", "notes"})
      if (v.has(k)) cd[k] = v.raw().at(k);
    sc_.cost_doc["demand"] = cd;
  }

  // A model named twice would be planned and ranked twice.
  void check_unique_model(const JsonView& at, const std::vector<std::string>& ids) {
    if (std::find(ids.begin(), ids.end() - 1, ids.back()) != ids.end() - 1)
      at.fail(fmt::format("model '{}' is listed twice", ids.back()));
  }

  void check_model(const JsonView& at, const std::string& id) {
    const Model* m = nullptr;
    try {
      m = &cat_.model(id);
    } catch (const UnknownIdError& e) {
      at.fail(e.what());
    }
    // plan sizes decoders by output tok/s; an embedding or reranking model has no decode
    // phase and is planned by a menu workload with its kind (docs/scenario.md § menus).
    if (!any_model_kind_ && !m->is_generative())
      at.fail(
          fmt::format("'{}' is an {} model (models.json kind {}): plan sizes generative "
                      "models; plan it as a menu workload with \"kind\": \"{}\"",
                      id, m->kind == ModelKind::embed ? "embedding" : "reranking",
                      model_kind_name(m->kind), model_kind_name(m->kind)));
  }

  void read_models(const JsonView& v) {
    ModelSelector& s = sc_.models;
    if (v.is_array()) {
      for (const auto& x : v.array()) {
        s.ids.push_back(x.string());
        check_model(x, s.ids.back());
        check_unique_model(x, s.ids);
      }
      if (s.ids.empty()) v.fail("expected at least one model id");
      record(v.path(), v.raw(), "model ids");
      return;
    }
    if (!v.is_object())
      v.fail("expected a list of model ids or an object of constraints, found " +
             describe_json(v.raw()));
    v.only_keys({"ids", "min_context_tokens", "licenses", "max_total_params_b", "moe_only"});
    for (const auto& x : v.array_or_empty("ids")) {
      s.ids.push_back(x.string());
      check_model(x, s.ids.back());
      check_unique_model(x, s.ids);
    }
    if (v.has("min_context_tokens")) s.min_context_tokens = v.positive_int("min_context_tokens");
    s.licenses = v.strings_or_empty("licenses");
    if (v.has("max_total_params_b")) s.max_total_params_b = v.positive("max_total_params_b");
    s.moe_only = v.boolean_or("moe_only", false);
    record(v.path(), v.raw(), "model constraints");
  }

  void read_builds(const JsonView& v) {
    if (v.raw().is_string()) {
      if (v.string() != "auto")
        v.fail("expected \"auto\" or a list of builds, found " + describe_json(v.raw()));
      sc_.builds_auto = true;
      record(v.path(), "auto", "");
      return;
    }
    if (!v.is_array())
      v.fail("expected \"auto\" or a list of builds, found " + describe_json(v.raw()));
    const auto items = v.array();
    if (items.empty()) v.fail("expected at least one build");
    for (const auto& b : items) {
      if (!b.is_object()) b.fail("expected a build object, found " + describe_json(b.raw()));
      b.only_keys({"system", "device", "gpus_per_node", "precision", "kv", "engine", "tp", "pp",
                   "ep", "dp_attention", "buy", "rent", "notes"});
      BuildSpec s;
      s.json_path = b.path();
      const System* sys = nullptr;
      if (b.has("system")) {
        try {
          sys = &cat_.system(b.string("system"));
        } catch (const UnknownIdError& e) {
          b.fail_member("system", e.what());
        }
        s.system = sys->id;
      } else if (!b.has("device")) {
        b.fail("expected \"system\" (a data/systems.json id) or \"device\" with gpus_per_node");
      }
      s.device = b.has("device") ? b.string("device") : sys->device;
      if (sys && s.device != sys->device)
        b.fail_member("device",
                      fmt::format("system '{}' holds {}, not {}", sys->id, sys->device, s.device));
      const Device* d = nullptr;
      try {
        d = &cat_.device(s.device);
      } catch (const UnknownIdError& e) {
        b.fail_member("device", e.what());
      }
      const long long g =
          b.has("gpus_per_node") || !sys ? b.positive_int("gpus_per_node") : sys->gpus_per_node;
      if (sys && g != sys->gpus_per_node)
        b.fail_member("gpus_per_node", fmt::format("system '{}' has {} GPUs per node, found {}",
                                                   sys->id, sys->gpus_per_node, g));
      if (g > d->max_per_node)
        b.fail_member("gpus_per_node", fmt::format("{} takes at most {} per node (devices.json "
                                                   "max_per_node), found {}",
                                                   d->id, d->max_per_node, g));
      s.gpus_per_node = static_cast<int>(g);
      // An old-style build (device × gpus) is the catalog system of that device and size.
      if (!sys)
        if (const System* m = pricing::system_for(cat_, s.device, s.gpus_per_node))
          s.system = m->id;
      s.precision = b.string_or("precision", "native");
      if (s.precision != "native") {
        try {
          (void)parse_weight_spec(s.precision, cat_.models.front().native_precision, cat_);
        } catch (const Error& e) {
          b.fail_member("precision", e.what());
        }
      }
      if (b.has("kv")) {
        s.kv = b.string("kv");
        try {
          (void)cat_.kv_format(s.kv);
        } catch (const UnknownIdError& e) {
          b.fail_member("kv", e.what());
        }
      }
      if (b.has("engine")) {
        s.engine = b.string("engine");
        try {
          (void)cat_.engine(s.engine);
        } catch (const UnknownIdError& e) {
          b.fail_member("engine", e.what());
        }
      }
      auto layout_int = [&](const char* k) -> int {
        if (!b.has(k)) return 0;
        const long long x = b.positive_int(k);
        if (x > s.gpus_per_node)
          b.fail_member(
              k, fmt::format("expected at most gpus_per_node ({}), found {}", s.gpus_per_node, x));
        return static_cast<int>(x);
      };
      s.layout.tp = layout_int("tp");
      s.layout.pp = b.has("pp") ? layout_int("pp") : 1;
      s.layout.ep = layout_int("ep");
      s.layout.dp_attention = b.boolean_or("dp_attention", false);
      // Keys are checked here, not left to the cost reader: a build the catalog cannot price
      // has its buy (or rent) section dropped before that reader runs.
      if (auto x = b.get("buy")) {
        if (!x->is_object()) x->fail("expected an object, found " + describe_json(x->raw()));
        x->only_keys(buy_section_keys());
        s.buy = x->raw();
      }
      if (auto x = b.get("rent")) {
        if (!x->is_object()) x->fail("expected an object, found " + describe_json(x->raw()));
        x->only_keys(rent_section_keys());
        s.rent = x->raw();
      }
      sc_.builds.push_back(std::move(s));
    }
    record(v.path(), v.raw(), "builds");
  }

  void read_resale(const JsonView& v) {
    v.only_keys(with_prov({"input_usd_per_mtok", "cached_input_usd_per_mtok", "output_usd_per_mtok",
                           "cache_hit_share", "input_tokens_per_output_token", "sold_share"}));
    Resale r;
    r.output_usd_per_mtok = v.positive("output_usd_per_mtok");
    r.input_usd_per_mtok = v.has("input_usd_per_mtok") ? v.non_negative("input_usd_per_mtok") : 0.0;
    r.cached_input_usd_per_mtok = v.has("cached_input_usd_per_mtok")
                                      ? v.non_negative("cached_input_usd_per_mtok")
                                      : r.input_usd_per_mtok;
    r.cache_hit_share = v.has("cache_hit_share") ? v.fraction("cache_hit_share") : 0.0;
    r.input_tokens_per_output_token = v.has("input_tokens_per_output_token")
                                          ? v.non_negative("input_tokens_per_output_token")
                                          : 0.0;
    r.sold_share = v.has("sold_share") ? v.fraction("sold_share") : 0.5;
    note(v, "output_usd_per_mtok", r.output_usd_per_mtok, "USD/MTok");
    note(v, "input_usd_per_mtok", r.input_usd_per_mtok, "USD/MTok");
    note(v, "cached_input_usd_per_mtok", r.cached_input_usd_per_mtok, "USD/MTok");
    note(v, "cache_hit_share", r.cache_hit_share, "share");
    note(v, "input_tokens_per_output_token", r.input_tokens_per_output_token, "tokens");
    note(v, "sold_share", r.sold_share, "share of idle capacity");
    sc_.resale = r;
  }

  // Pass marks of the rented pilot's go/no-go checks 3, 5 and 6 (docs/load.md).
  void read_pilot(const JsonView& v) {
    v.only_keys(
        with_prov({"min_uptime_share", "min_tool_call_success_share", "min_eval_pass_share"}));
    auto& p = sc_.pilot;
    if (v.has("min_uptime_share")) p.min_uptime_share = v.fraction("min_uptime_share");
    if (v.has("min_tool_call_success_share"))
      p.min_tool_call_success_share = v.fraction("min_tool_call_success_share");
    if (v.has("min_eval_pass_share")) p.min_eval_pass_share = v.fraction("min_eval_pass_share");
    note(v, "min_uptime_share", p.min_uptime_share, "share");
    note(v, "min_tool_call_success_share", p.min_tool_call_success_share, "share");
    if (p.min_eval_pass_share) note(v, "min_eval_pass_share", *p.min_eval_pass_share, "share");
  }

  void read_mc(const JsonView& v) {
    v.only_keys({"samples", "seed", "efficiency_spread", "notes"});
    auto& m = sc_.monte_carlo;
    if (v.has("samples")) {
      const long long n = v.positive_int("samples");
      if (n > 1'000'000) v.fail_member("samples", "expected at most 1,000,000 samples");
      m.samples = static_cast<int>(n);
    }
    if (v.has("seed")) {
      const long long s = v.integer("seed");
      if (s < 0) v.fail_member("seed", "expected an integer ≥ 0");
      m.seed = static_cast<std::uint64_t>(s);
    }
    if (v.has("efficiency_spread")) {
      m.efficiency_spread = v.fraction("efficiency_spread");
      if (m.efficiency_spread >= 1) v.fail_member("efficiency_spread", "expected a share below 1");
    }
    note(v, "samples", m.samples, "samples");
    note(v, "seed", static_cast<double>(m.seed), "");
    note(v, "efficiency_spread", m.efficiency_spread, "± share");
  }
};

}  // namespace

double PlanDemand::open_day_average_output_tokens_per_s() const {
  return requests_per_day * static_cast<double>(output_tokens) / cost::kSecondsPerDay;
}
double PlanDemand::average_output_tokens_per_s() const {
  return output_tokens_per_year() / cost::kSecondsPerYear;
}
double PlanDemand::output_tokens_per_year() const {
  return requests_per_day * static_cast<double>(output_tokens) * days_per_year;
}

PlanScenario parse_plan_scenario(const Json& doc, const std::string& file, const Catalog& cat,
                                 bool any_model_kind) {
  return Reader(doc, file, cat, any_model_kind).read();
}

PlanScenario parse_plan_scenario_text(const std::string& text, const std::string& file,
                                      const Catalog& cat) {
  const Json doc = parse_json_text(text, file);
  return parse_plan_scenario(doc, file, cat);
}

PlanScenario load_plan_scenario(const std::string& path, const Catalog& cat) {
  const Json doc = parse_json_file(path);
  return parse_plan_scenario(doc, path, cat);
}

}  // namespace moeplan::plan
