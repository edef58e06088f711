"""The report's contract, its warnings instead of numbers, and the per-product effects."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from imagelift.config import ReportConfig
from imagelift.influence.analysis import analyse
from imagelift.influence.records import normalise_records
from imagelift.influence.report import Report, ReportSummary
from imagelift.influence.sales import read_sales
from imagelift.influence.simulate import SimulationSpec, simulate

EFFECT_FIELDS = {
    "category",
    "category_name",
    "estimate",
    "std_err",
    "ci_low",
    "ci_high",
    "p_value",
    "effect_pct",
    "effect_pct_ci",
}


def _report(sim, config=None):
    sales = read_sales([("sales.csv", sim.sales.to_csv(index=False).encode())], controls=["promo"])
    return analyse(sales, normalise_records(sim.records), config or ReportConfig(controls="promo"))


@pytest.fixture(scope="module")
def report_and_truth():
    sim = simulate(SimulationSpec(products=250, weeks=30, bad_rows=14, seed=2))
    return _report(sim), sim.truth


def test_report_follows_the_json_contract(report_and_truth):
    report, truth = report_and_truth
    data = json.loads(report.to_json())  # strict JSON: to_json refuses NaN and infinities
    for key in (
        "generated_at",
        "period",
        "counts",
        "spec",
        "effects",
        "price_elasticity",
        "price_effects",
        "per_product",
        "pooled",
        "warnings",
    ):
        assert key in data
    assert [e["category"] for e in data["effects"]] == [1, 2]
    for entry in [*data["effects"], *data["price_effects"]]:
        assert entry.keys() >= EFFECT_FIELDS
        assert entry["ci_low"] < entry["estimate"] < entry["ci_high"]
        assert entry["effect_pct"] == pytest.approx(100 * np.expm1(entry["estimate"]))
    assert {"estimate", "std_err", "ci_low", "ci_high", "p_value", "effect_pct"} <= data["price_elasticity"].keys()
    counts = data["counts"]
    assert counts["rows_rejected"] == truth["expected_rejections"]
    assert counts["rows_used"] + counts["rows_rejected_total"] == counts["rows"]
    assert counts["products"] == truth["products"]
    assert counts["records"]["excluded"]["failed"] > 0
    assert data["period"] == {"from": "2025-01-06", "to": "2025-07-28"}
    assert data["spec"]["fixed_effects"] == ["product_id", "week"]
    assert data["robustness"]["ols_log_units"]["effects"][0]["estimate"] is not None
    assert {"spec", "nobs", "effects", "price_elasticity"} <= data["pooled"].keys()
    assert {"product_id", "category", "effect_pct", "effect_pct_ci", "n"} <= data["per_product"][0].keys()


def test_the_typed_report_holds_the_same_numbers(report_and_truth):
    report, truth = report_and_truth
    assert [e.category for e in report.effects] == [1, 2]
    for effect in [*report.effects, *report.price_effects]:
        assert effect.estimated and effect.ci_low < effect.estimate < effect.ci_high
        assert effect.effect_pct == pytest.approx(100 * np.expm1(effect.estimate))
    assert report.counts.rows_rejected == truth["expected_rejections"]
    assert report.counts.rows_used + report.counts.rows_rejected_total == report.counts.rows
    assert report.period.first_week == "2025-01-06" and report.period.last_week == "2025-07-28"
    assert report.log_units_check.effects[0].estimate is not None
    assert report.pooled.nobs == report.counts.rows_used


def test_the_json_round_trips_to_an_equal_report(report_and_truth):
    report, _ = report_and_truth
    again = Report.from_json(report.to_json())
    assert again == report
    assert again.to_json() == report.to_json()


def test_per_product_effects_centre_on_the_planted_lift(report_and_truth):
    report, truth = report_and_truth
    model = [r for r in report.per_product if r.category == 1]
    covered = np.mean([r.effect_pct_ci[0] <= truth["effects_pct"]["model"] <= r.effect_pct_ci[1] for r in model])
    assert len(model) > 50
    assert covered > 0.85  # rough intervals (few listings per product) but not misleading
    assert abs(np.median([r.effect_pct for r in model]) - truth["effects_pct"]["model"]) < 6


def test_a_category_that_never_varies_within_products_gets_a_warning_not_a_number():
    sim = simulate(SimulationSpec(products=80, weeks=12, switch_share=0.0, seed=4))
    # give every listing of a product the same category as its first listing... for worn photos only:
    records = sim.records
    worn_products = {r["product_id"] for r in records if r.get("category") == 2}
    for r in records:
        if r.get("product_id") in worn_products and r.get("category") is not None:
            r["category"] = 2
    report = _report(sim)
    worn = report.effects[1]
    assert worn.estimate is None and worn.effect_pct is None
    assert "never varies within a product" in worn.note
    assert any("worn category never varies" in w for w in report.warnings)
    assert report.effects[0].estimate is not None  # the model effect is still estimated
    assert report.price_effects[1].estimate is None


def test_a_cell_too_small_gets_a_warning_not_a_number():
    sim = simulate(SimulationSpec(products=60, weeks=12, switch_share=0.0, seed=6))
    worn = [r for r in sim.records if r.get("category") == 2]
    for r in worn[2:]:
        r["category"] = 3  # two worn listings left in the whole catalogue
    report = _report(sim, ReportConfig(controls="promo", min_cell_rows=30, min_cell_products=3))
    assert report.effects[1].estimate is None
    assert "Too little data for the worn effect" in report.effects[1].note
    assert any("Too little data for the worn effect" in w for w in report.warnings)


def test_many_zero_weeks_still_recover_the_lift():
    sim = simulate(SimulationSpec(products=400, weeks=30, base_units=0.4, seed=8))
    share_zero = float((sim.sales["units"] == 0).mean())
    assert share_zero > 0.6
    report = _report(sim)
    low, high = report.effects[0].effect_pct_ci
    assert low <= sim.truth["effects_pct"]["model"] <= high


def test_a_single_product_gives_warnings_not_a_crash():
    sim = simulate(SimulationSpec(products=1, listings_per_product=3, weeks=10, seed=9))
    report = _report(sim)
    assert all(e.estimate is None for e in report.effects)
    assert report.warnings
    json.loads(report.to_json())


def test_the_identification_table_says_where_the_comparisons_come_from(report_and_truth):
    report, _ = report_and_truth
    assert [row.category for row in report.identification] == [1, 2]
    for row, effect in zip(report.identification, report.effects, strict=True):
        assert 0 < row.listings_switching < row.listings
        assert row.products_varying == effect.varying_products
        assert 0 < row.weight_within_listing < 1
        assert row.difference_std_err > 0
    assert report.within_listing is not None and report.within_listing.effects[0].estimated
    assert not any("two comparisons disagree" in w for w in report.warnings)


def test_photos_chosen_by_listing_quality_are_flagged_and_the_within_listing_fit_covers_the_truth():
    sim = simulate(SimulationSpec(products=400, weeks=40, listing_selection=1.0, seed=0))
    report = _report(sim)
    model = report.effects[0]
    within = report.within_listing.effects[0]
    planted = sim.truth["effects_pct"]["model"]
    assert model.effect_pct_ci[0] > planted  # the headline is pushed up by the better listings
    assert within.effect_pct_ci[0] <= planted <= within.effect_pct_ci[1]
    assert report.identification[0].disagrees
    assert any("two comparisons disagree on model photos" in w for w in report.warnings)


def test_no_switches_means_no_within_listing_number():
    sim = simulate(SimulationSpec(products=120, weeks=20, switch_share=0.0, seed=3))
    report = _report(sim)
    assert report.effects[0].estimated
    assert not report.within_listing.effects[0].estimated
    assert report.within_listing.effects[0].note.startswith("no listing switches to or from model photos")
    assert report.identification[0].listings_switching == 0
    assert report.identification[0].weight_within_listing == pytest.approx(0.0, abs=1e-12)


def _per_product_rmse(report, planted_log: float) -> tuple[float, float]:
    model = [r for r in report.per_product if r.category == 1 and r.shrunk_effect_pct is not None]
    raw = np.array([r.estimate for r in model])
    shrunk = np.log1p(np.array([r.shrunk_effect_pct for r in model]) / 100)
    return float(np.sqrt(np.mean((raw - planted_log) ** 2))), float(np.sqrt(np.mean((shrunk - planted_log) ** 2)))


def test_shrinkage_cuts_the_per_product_error_when_every_product_has_the_same_lift():
    """Monte Carlo: the same +9% model lift in every product; the shrunk estimates land far closer to it."""
    raw_errors, shrunk_errors, flagged, nominal = [], [], 0, 0
    for seed in (21, 22, 23):
        sim = simulate(SimulationSpec(products=200, weeks=30, worn_lift=0.0, seed=seed))
        report = _report(sim)
        raw, shrunk = _per_product_rmse(report, sim.truth["log_effects"]["model"])
        raw_errors.append(raw)
        shrunk_errors.append(shrunk)
        worn = next(s for s in report.shrinkage if s.category_name == "worn")
        flagged += worn.discoveries
        nominal += worn.nominal_significant
        for row in report.per_product:  # raw and shrunk both reach the CSV
            assert row.q_value is not None and row.p_value <= row.q_value <= 1
    assert np.mean(shrunk_errors) < 0.3 * np.mean(raw_errors)
    # no worn effect anywhere: chance alone makes some products nominally significant, the FDR flags few
    assert flagged <= max(1, nominal // 4)


def test_heterogeneity_and_fdr_on_known_numbers():
    from statsmodels.stats.multitest import multipletests

    from imagelift.influence.analysis import benjamini_hochberg, heterogeneity_reml

    rng = np.random.default_rng(4)
    taus = []
    for _ in range(40):
        se = rng.uniform(0.05, 0.4, 300)
        truth = 0.1 + rng.normal(0, 0.15, 300)
        tau2, mean = heterogeneity_reml(truth + rng.normal(0, se), se)
        taus.append(np.sqrt(tau2))
        assert abs(mean - 0.1) < 0.06
    assert abs(np.mean(taus) - 0.15) < 0.01
    p = rng.uniform(size=50) ** 2
    np.testing.assert_allclose(benjamini_hochberg(p), multipletests(p, method="fdr_bh")[1], rtol=1e-12)


def test_units_with_the_price_channel_and_revenue_follow_from_the_three_estimates(report_and_truth):
    report, truth = report_and_truth
    for headline, premium, units, revenue in zip(
        report.effects, report.price_effects, report.units_with_price, report.revenue_effects, strict=True
    ):
        e = report.price_elasticity.estimate
        assert units.estimate == pytest.approx(headline.estimate + e * premium.estimate)
        assert revenue.estimate == pytest.approx(headline.estimate + (1 + e) * premium.estimate)
        assert units.std_err > 0 and revenue.std_err > 0
        planted_b = truth["log_effects"][headline.category_name]
        planted_p = np.log1p(truth["price_premium_pct"][headline.category_name] / 100)
        planted_units = planted_b + truth["elasticity"] * planted_p
        assert units.ci_low <= planted_units <= units.ci_high
        assert "descriptive" in premium.effect_basis
    assert not any("price elasticity is" in w for w in report.warnings)


def test_an_elasticity_of_the_wrong_sign_or_size_is_a_warning():
    from imagelift.influence.analysis import _elasticity_warnings
    from imagelift.influence.report import Effect

    config = ReportConfig()
    assert "at or above zero" in _elasticity_warnings(Effect(None, None, estimate=0.99), config)[0]
    assert "outside the range" in _elasticity_warnings(Effect(None, None, estimate=-9.0), config)[0]
    assert _elasticity_warnings(Effect(None, None, estimate=-1.2), config) == []
    assert (
        "outside the range"
        in _elasticity_warnings(Effect(None, None, estimate=-1.2), ReportConfig(elasticity_min=-1.0))[0]
    )


def test_a_few_huge_products_switch_the_headline_to_bootstrap_ranges_and_jackknife_errors():
    sim = simulate(SimulationSpec(products=150, weeks=26, huge_products=3, huge_demand=4.0, seed=5))
    report = _report(sim)
    model = next(c for c in report.concentration if c.category == 1)
    assert model.interval == "wild bootstrap" and model.top_share > 0.3
    assert set(model.top_products) <= {"P00000", "P00001", "P00002"} or model.top_share > 0.3
    assert report.effects[0].std_err == pytest.approx(model.cr3_std_err)
    assert (report.effects[0].ci_low, report.effects[0].ci_high) == pytest.approx(model.bootstrap_ci)
    assert report.effects[0].p_value == pytest.approx(model.bootstrap_p_value)
    low, high = report.effects[0].effect_pct_ci
    assert low == pytest.approx(100 * math.expm1(model.bootstrap_ci[0]))
    assert high == pytest.approx(100 * math.expm1(model.bootstrap_ci[1]))
    assert any("wild bootstrap" in w and "jackknife, CR3" in w for w in report.warnings)
    model_line = next(
        line for line in ReportSummary.of(report).headline().splitlines() if line.startswith("model vs product")
    )
    assert model_line.endswith("(wild bootstrap)")
    # the same seed gives the same report; the bootstrap range is wider than the jackknife's here
    again = _report(sim)
    assert again.effects[0].ci_low == report.effects[0].ci_low
    assert model.bootstrap_ci[1] - model.bootstrap_ci[0] > 2 * 1.9 * model.cr3_std_err
    assert Report.from_json(report.to_json()).concentration == report.concentration


def test_evenly_spread_products_keep_clustered_ranges(report_and_truth):
    report, _ = report_and_truth
    assert {c.interval for c in report.concentration} == {"CRV1"}
    assert (
        "(normal approximation)" in ReportSummary.of(report).headline()
        and "(wild bootstrap)" not in ReportSummary.of(report).headline()
    )
    for c in report.concentration:
        assert c.effective_products > 30 and 0 < c.top_share < 0.3 and len(c.top_products) == 3


def test_the_within_listing_fit_follows_the_same_jackknife_rule():
    sim = simulate(SimulationSpec(products=150, weeks=26, huge_products=3, huge_demand=4.0, seed=5))
    report = _report(sim)
    plain = _report(sim, ReportConfig(controls="promo", jackknife_top_share=1.0, jackknife_min_effective=0.0))
    assert report.within_listing.effects[0].std_err > plain.within_listing.effects[0].std_err
    assert report.within_listing.effects[0].estimate == pytest.approx(plain.within_listing.effects[0].estimate)
    # its ranges come from the same bootstrap: not symmetric around the estimate, a p-value counted in draws
    within = report.within_listing.effects[0]
    assert within.ci_high - within.estimate != pytest.approx(within.estimate - within.ci_low, rel=1e-6)
    draws = ReportConfig().bootstrap_draws
    assert within.p_value * draws == pytest.approx(round(within.p_value * draws), abs=1e-6)


def test_reports_written_before_the_robust_intervals_and_power_still_load(report_and_truth):
    report, _ = report_and_truth
    data = json.loads(report.to_json())
    for key in ("leave_one_out", "power"):
        data.pop(key)
    for row in data["concentration"]:
        for key in [k for k in row if k.startswith("bootstrap_")]:
            row.pop(key)
    old = Report.from_dict(data)
    assert old.leave_one_out == () and old.power == ()
    assert all(c.bootstrap_ci is None for c in old.concentration)
    assert old.effects == report.effects
