"""The minimum detectable lift and the data a target lift needs."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from imagelift.config import ReportConfig
from imagelift.influence.analysis import analyse
from imagelift.influence.power import minimum_detectable, power_sentence, units_needed
from imagelift.influence.records import normalise_records
from imagelift.influence.sales import read_sales
from imagelift.influence.simulate import SimulationSpec, simulate


def test_minimum_detectable_is_the_sum_of_the_two_critical_values_times_the_standard_error():
    assert minimum_detectable(0.1, 10_000, 0.95, 0.8) == pytest.approx((1.95996 + 0.84162) * 0.1, rel=1e-4)
    assert minimum_detectable(0.1, 5, 0.95, 0.8) == pytest.approx((stats.t.ppf(0.975, 5) + stats.t.ppf(0.8, 5)) * 0.1)


def test_the_data_needed_grow_with_the_square_of_the_standard_error_over_the_target():
    se, now = 0.05, 100
    target = minimum_detectable(se, 10_000, 0.95, 0.8)
    assert units_needed(se, now, target, 10_000, 0.95, 0.8) == now  # detectable already: the data as they are
    assert units_needed(se, now, target / 2, 10_000, 0.95, 0.8) == pytest.approx(4 * now, abs=1)
    assert units_needed(se, 0, target, 10_000, 0.95, 0.8) is None


def test_a_small_catalogue_without_a_lift_says_what_it_could_have_detected():
    sim = simulate(SimulationSpec(products=40, weeks=20, model_lift=0.0, seed=2))
    sales = read_sales([("sales.csv", sim.sales.to_csv(index=False).encode())], controls=["promo"])
    config = ReportConfig(controls="promo", power_lift_pct=5.0)
    report = analyse(sales, normalise_records(sim.records), config)
    rows = {(p.comparison, p.category_name): p for p in report.power}
    head = rows[("headline", "model")]
    model = report.effects[0]
    t = stats.t.ppf(0.975, report.spec.clusters - 1)
    assert head.std_err == pytest.approx((model.ci_high - model.ci_low) / (2 * t))
    assert head.minimum_detectable_pct == pytest.approx(
        100 * math.expm1(minimum_detectable(head.std_err, report.spec.clusters - 1, 0.95, 0.8))
    )
    assert head.units_now == model.varying_products and head.units_needed > head.units_now
    within = rows[("within_listing", "model")]
    assert within.units == "listings that switch photos"
    assert within.units_now == next(i.listings_switching for i in report.identification if i.category == 1)
    assert any("not evidence of no lift" in w and "model" in w for w in report.warnings)
    assert "smallest lift detected with 80% power" in power_sentence(head)
