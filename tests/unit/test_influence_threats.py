"""The threat checks: each warns on data with its threat, stays a quiet line without it, never stops the report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from imagelift.config import ReportConfig
from imagelift.influence import threats
from imagelift.influence.analysis import analyse
from imagelift.influence.estimation import EstimationError
from imagelift.influence.outputs import render_all
from imagelift.influence.records import normalise_records
from imagelift.influence.report import Report
from imagelift.influence.sales import read_sales
from imagelift.influence.simulate import SimulationSpec, simulate

CONFIG = ReportConfig(controls="promo")
CHECKS = {"donut", "placebo_leads", "dynamic_profile", "product_season"}


def _report(**params) -> Report:
    sim = simulate(SimulationSpec(**{"products": 200, "weeks": 40, "seed": 3, **params}))
    sales = read_sales([("sales.csv", sim.sales.to_csv(index=False).encode())], controls=["promo"])
    return analyse(sales, normalise_records(sim.records), CONFIG)


def _moved(report: Report, check: str) -> list[str]:
    return [c.quantity for c in report.checks if c.check == check and c.moved]


@pytest.fixture(scope="module")
def clean():
    return _report()


def test_without_a_threat_every_check_is_a_quiet_line(clean):
    assert {c.check for c in clean.checks} == CHECKS
    assert not any(c.moved for c in clean.checks)
    assert all(c.note is None and c.p_value is not None for c in clean.checks)
    assert not any(c.sentence and c.sentence in clean.warnings for c in clean.checks)
    study = clean.event_study[0]
    assert study.category_name == "model" and study.switches > 20 and study.pretrend_p_value > 0.05


def test_sales_that_rise_before_the_switch_fail_the_placebo_leads():
    report = _report(pre_switch_rise=60.0)
    assert _moved(report, "placebo_leads") == ["model switches"]
    assert any("were already moving before the switch" in w for w in report.warnings)


def test_a_launch_promotion_moves_the_donut_or_the_profile():
    report = _report(switch_promotion_lift=100.0)
    assert "model effect" in _moved(report, "dynamic_profile")
    assert any("fades after a switch" in w for w in report.warnings)
    study = report.event_study[0]
    assert study.early.estimate > study.late.estimate + 0.3


def test_prices_set_by_each_products_season_move_the_elasticity():
    report = _report(product_season_sd=0.3, price_follows_season=0.5)
    assert "price elasticity" in _moved(report, "product_season")
    line = next(c for c in report.checks if c.check == "product_season" and c.quantity == "price elasticity")
    assert line.value < line.reference - 0.3  # held to the season, the elasticity is more negative (truth -1.2)
    assert any("own level in each quarter" in w for w in report.warnings)


def test_a_check_that_cannot_be_fitted_is_a_line_and_a_warning(clean, monkeypatch):
    def fails(*args, **kwargs):
        raise EstimationError("a singular design")

    monkeypatch.setattr(threats, "fit_ppml", fails)
    sim = simulate(SimulationSpec(products=200, weeks=40, seed=3))
    sales = read_sales([("sales.csv", sim.sales.to_csv(index=False).encode())], controls=["promo"])
    report = analyse(sales, normalise_records(sim.records), CONFIG)
    for check in ("donut", "product_season"):
        lines = [c for c in report.checks if c.check == check]
        assert len(lines) == 1 and lines[0].note == "a singular design" and not lines[0].moved
        assert f"The {threats.CHECK_NAMES[check]} check could not be made: a singular design." in report.warnings
    assert report.effects == clean.effects


def test_one_quarter_of_data_says_the_season_check_cannot_be_made():
    sim = simulate(SimulationSpec(products=120, weeks=10, seed=4))
    sales = read_sales([("sales.csv", sim.sales.to_csv(index=False).encode())], controls=["promo"])
    report = analyse(sales, normalise_records(sim.records), CONFIG)
    line = next(c for c in report.checks if c.check == "product_season")
    assert "within one quarter" in line.note
    assert any(w.startswith("The product by season check could not be made") for w in report.warnings)
    assert report.effects[0].estimated


def test_the_report_round_trips_and_old_reports_still_load(clean):
    data = json.loads(clean.to_json())
    assert Report.from_dict(data) == clean
    for key in ("event_study", "checks"):
        data.pop(key)
    old = Report.from_dict(data)
    assert old.event_study == () and old.checks == ()


def test_the_page_draws_the_event_study_and_lists_the_checks(clean):
    html = render_all(clean)["influence.html"].decode()
    assert "Around each photo switch" in html and "<h2>Checks</h2>" in html
    start = html.index("Around each photo switch")
    charts = html[start:].split("<svg")[1:5]
    assert len(charts) == 4  # a wide and a narrow drawing per photo type
    for chart in charts:
        min_width = float(chart.split('data-min-width="')[1].split('"')[0])
        view_width = float(chart.split('viewBox="0 0 ')[1].split(" ")[0])
        sizes = [float(s.split('"')[0]) for s in chart.split('font-size="')[1:]]
        assert min(sizes) * min_width / view_width >= 12  # no text below 12 CSS px where it is shown
    assert np.isfinite(clean.event_study[0].after.estimate)
