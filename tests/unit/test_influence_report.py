"""The report's stages, its typed form and its summary, and fits that fail turning into warnings, not crashes."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest
from scipy import stats

from imagelift.config import ReportConfig
from imagelift.errors import EstimationFailure, PermanentError
from imagelift.influence import analysis
from imagelift.influence.analysis import Fits, Panel, analyse, assemble_report, fit_models, prepare_panel
from imagelift.influence.demean import DemeaningDidNotConverge
from imagelift.influence.estimation import EstimationError
from imagelift.influence.records import join_categories, normalise_records
from imagelift.influence.report import Report, ReportSummary, listings_that_switch
from imagelift.influence.sales import InputFileError, read_sales
from imagelift.influence.simulate import SimulationSpec, simulate
from imagelift.records.categories import EFFECT_CATEGORIES
from imagelift.services.report_service import build_report, run_local

WHEN = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
CONFIG = ReportConfig(controls="promo")


@pytest.fixture(scope="module")
def sim():
    return simulate(SimulationSpec(products=80, weeks=16, bad_rows=7, seed=11))


def _sources(sim):
    return [("sales.csv", sim.sales.to_csv(index=False).encode())]


def _sales(sim):
    return read_sales(_sources(sim), controls=["promo"])


def test_the_errors_belong_to_their_families():
    assert issubclass(EstimationError, EstimationFailure)
    assert issubclass(DemeaningDidNotConverge, EstimationFailure)
    assert issubclass(InputFileError, PermanentError)
    # callers that caught the builtin bases still do
    assert issubclass(EstimationError, ValueError) and issubclass(InputFileError, ValueError)
    assert issubclass(DemeaningDidNotConverge, RuntimeError)


def test_the_stages_compose_to_the_same_report_as_analyse(sim):
    sales = _sales(sim)
    records = normalise_records(sim.records)
    joined = join_categories(sales.frame, records, sales.rejections)
    assert len(joined) + sales.rejections.total == sales.rows_read
    assert {"category", "listing_code"} <= set(joined.columns)

    panel = prepare_panel(joined, sales.controls)
    assert isinstance(panel, Panel)
    assert len(panel.product) == len(panel.week) == len(joined)
    assert panel.product.max() + 1 == len(panel.product_ids)

    fits = fit_models(panel, CONFIG)
    assert isinstance(fits, Fits)
    assert fits.categories == [c.id for c in EFFECT_CATEGORIES]
    assert fits.ppml is not None and fits.log_units is not None and fits.pooled is not None
    assert fits.price_premium is not None and fits.per_product
    assert fits.warnings == []

    report = assemble_report(sales, records, panel, fits, CONFIG, WHEN)
    assert isinstance(report, Report)
    assert report.spec.nobs == fits.ppml.nobs
    assert report.per_product == tuple(fits.per_product)
    again = analyse(_sales(sim), normalise_records(sim.records), CONFIG, WHEN)
    assert again.to_json() == report.to_json()


def test_no_rows_after_the_join_still_gives_a_complete_report_that_says_why(sim):
    sales = _sales(sim)
    records = normalise_records([])
    empty = join_categories(sales.frame, records, sales.rejections)
    assert empty.empty and sales.rejections.as_dict()["unknown_listing"] == len(sales.frame)
    panel = prepare_panel(empty, sales.controls)
    report = assemble_report(sales, records, panel, fit_models(panel, CONFIG), CONFIG, WHEN)
    assert report.period.first_week is None
    assert report.counts.rows_rejected["unknown_listing"] == len(sales.frame)
    assert report.counts.rows_rejected_total == report.counts.rows
    assert report.warnings[0].startswith(f"No sales row could be used: all {report.counts.rows:,} were rejected")
    assert "no usable photo records" in report.warnings[0]
    assert not any(e.estimated for e in report.effects)
    Report.from_json(report.to_json())


def test_build_report_times_each_stage_and_renders_from_the_report(sim):
    run = build_report(_sources(sim), sim.records, CONFIG, generated_at=WHEN)
    assert list(run.timings_s) == ["read_sales", "read_records", "join", "fit", "assemble", "render"]
    assert run.files["influence.json"] == run.report.to_json()
    rows = list(csv.DictReader(io.StringIO(run.files["influence.csv"].decode())))
    sections = {r["section"] for r in rows}
    assert sections == {"sales_effect", "price_elasticity", "price_premium", "check_ols_log_units", "pooled_ols"} | {
        "per_product",
        "within_listing",
        "within_listing_elasticity",
        "identification",
        "per_product_spread",
        "units_with_price",
        "revenue",
        "leave_one_product_out",
        "power_headline",
        "power_within_listing",
        "event_study",
        "event_study_after",
        "event_study_early",
        "event_study_late",
        "event_study_growth",
        "event_study_pretrend",
    } | {f"threat_check_{check}" for check in ("donut", "placebo_leads", "dynamic_profile", "product_season")}
    assert not any("seed" in r["section"] for r in rows)
    pooled = [r for r in rows if r["section"] == "pooled_ols"]
    assert float(pooled[0]["estimate"]) == pytest.approx(run.report.pooled.effects[0].estimate)
    page = run.files["influence.html"].decode()
    assert f"{run.report.effects[0].effect_pct:+.1f}%" in page
    assert "seed" not in page.lower()


def test_an_unestimated_report_round_trips_through_json():
    sim = simulate(SimulationSpec(products=1, listings_per_product=3, weeks=10, seed=9))
    report = analyse(read_sales(_sources(sim), controls=["promo"]), normalise_records(sim.records), CONFIG, WHEN)
    assert not any(e.estimated for e in report.effects)
    data = json.loads(report.to_json())
    assert data["effects"][0]["effect_pct_ci"] is None and data["effects"][0]["note"]
    assert "category" not in data["price_elasticity"]
    assert Report.from_dict(data) == report


def test_one_summary_for_the_table_the_return_value_and_the_headline(sim):
    report = build_report(_sources(sim), sim.records, CONFIG, generated_at=WHEN).report
    summary = ReportSummary.of(report)
    model = report.effects[0]
    item = summary.to_item("2026-01-05", {"influence.json": "s3://b/k"})
    plain = summary.to_dict()
    assert item["model_effect_pct"] == plain["effects"]["model"] == model.effect_pct
    assert item["model_effect_pct_ci"] == plain["effects_ci"]["model"] == list(model.effect_pct_ci)
    assert item["rows_rejected"] == plain["rows_rejected"] == report.counts.rows_rejected_total > 0
    assert plain["rows_rejected_by_reason"] == report.counts.rows_rejected
    assert item["warnings"] == len(plain["warnings"]) == len(report.warnings)
    assert item["price_elasticity"] == plain["price_elasticity"] == report.price_elasticity.estimate
    assert None not in item.values()
    lo, hi = model.effect_pct_ci
    assert f"model vs product: {model.effect_pct:+.1f}% units (95% CI {lo:+.1f}% to {hi:+.1f}%)" in summary.headline()
    json.dumps(plain, allow_nan=False)


# ------------------------------------------------------------------------------- fits that fail: warnings


def _failing(real, reason: Exception, model: str | None = None):
    """``real`` that raises ``reason`` (for one ``model=`` only, when given)."""

    def fit(*args, **kwargs):
        if model is None or kwargs.get("model") == model:
            raise reason
        return real(*args, **kwargs)

    return fit


FAILURES = {
    "headline": ("fit_headline_ppml", None, "The headline PPML model could not be estimated"),
    "robustness": ("fit_two_way_ols", "ols_log_units", "The log(units) OLS check could not be estimated"),
    "price": ("fit_two_way_ols", "price_premium", "The price premium model could not be estimated"),
    "pooled": ("fit_pooled_ols", None, "The pooled OLS without fixed effects could not be estimated"),
    "per_product": ("per_product_effects", None, "The per-product effects could not be estimated"),
}


@pytest.mark.parametrize("which", list(FAILURES))
@pytest.mark.parametrize(
    "reason",
    [DemeaningDidNotConverge("fixed effects did not converge in 3 sweeps"), EstimationError("a singular design")],
    ids=["no_convergence", "estimation_error"],
)
def test_a_failing_fit_becomes_a_warning_in_a_report_that_is_still_written(which, reason, sim, tmp_path, monkeypatch):
    name, model, warning = FAILURES[which]
    monkeypatch.setattr(analysis, name, _failing(getattr(analysis, name), reason, model))
    sales_path = tmp_path / "sales.csv"
    sales_path.write_bytes(_sources(sim)[0][1])
    categories = tmp_path / "categories.jsonl"
    categories.write_text("".join(json.dumps(r, default=str) + "\n" for r in sim.records))
    run_local([sales_path], categories, tmp_path / "out", CONFIG)

    written = Report.from_json((tmp_path / "out" / "influence.json").read_bytes())
    assert f"{warning}: {reason}." in written.warnings
    assert warning in (tmp_path / "out" / "influence.html").read_text()
    assert (tmp_path / "out" / "influence.csv").read_text().startswith("section,")
    headline_ok = which != "headline"
    assert all(e.estimated == headline_ok for e in written.effects)
    assert (written.log_units_check.nobs > 0) == (which != "robustness")
    assert all(e.estimated == (which != "price") for e in written.price_effects)
    assert (written.pooled.nobs > 0) == (which != "pooled")
    assert bool(written.per_product) == (which not in {"per_product", "headline"})


def test_demeaning_that_never_converges_on_real_data_gives_warnings_and_a_report(sim):
    run = build_report(_sources(sim), sim.records, ReportConfig(controls="promo", fe_tol=0.0), generated_at=WHEN)
    report = run.report
    failed = [w for w in report.warnings if "fixed effects did not converge" in w]
    # headline, within-listing, log(units) check, price premium and the event study all absorb fixed effects
    assert len(failed) == 5
    assert not any(e.estimated for e in (*report.effects, *report.price_effects))
    assert report.pooled.effects[0].estimated  # pooled OLS absorbs nothing and still comes out
    assert json.loads(run.files["influence.json"])["warnings"] == list(report.warnings)


def test_too_few_rows_with_sales_fails_only_the_log_units_check():
    sim = simulate(SimulationSpec(products=30, weeks=8, base_units=0.01, seed=1))
    config = ReportConfig(controls="promo", min_cell_rows=1, min_cell_products=1)
    report = build_report(_sources(sim), sim.records, config, generated_at=WHEN).report
    assert any(w.startswith("The log(units) OLS check could not be estimated: ols_log_units:") for w in report.warnings)
    assert report.log_units_check.nobs == 0
    assert not any(e.estimated for e in report.log_units_check.effects)
    assert all(e.estimated for e in report.effects)  # the headline PPML still has its numbers


def test_the_page_says_what_it_can_and_states_its_assumptions(sim):
    run = build_report(_sources(sim), sim.records, CONFIG, generated_at=WHEN)
    page = run.files["influence.html"].decode()
    for phrase in ("real lift", "real drop", "contains the true effect", "true effect with"):
        assert phrase not in page.lower()
    assert "Assumptions" in page and "Photos were not chosen by how a listing was going to sell" in page
    model = run.report.effects[0]
    assert 0.5 < model.probability_above_zero < 1
    assert model.probability_above_zero == pytest.approx(stats.norm.cdf(model.estimate / model.std_err))
    assert "chance that the effect is above zero" in page and "normally distributed" in page
    assert "Where the answer comes from" in page and "Price: what the photo type brings with it" in page
    assert "chance above zero" in ReportSummary.of(run.report).headline()


def test_corrected_categories_are_counted_in_the_report_and_its_page(sim):
    records = [dict(r) for r in sim.records]
    classified = [r for r in records if r.get("status") == "classified"]
    for record in classified[:3]:
        record["correction"] = {"category": 2, "by": "ana", "at": "2026-01-01T00:00:00Z"}
    run = build_report(_sources(sim), records, CONFIG, generated_at=WHEN)
    assert run.report.counts.records.corrected == 3
    assert json.loads(run.files["influence.json"])["counts"]["records"]["corrected"] == 3
    assert Report.from_json(run.report.to_json()).counts.records.corrected == 3
    assert "a person corrected</td><td class='n'>3</td>" in run.files["influence.html"].decode()
    untouched = build_report(_sources(sim), sim.records, CONFIG, generated_at=WHEN)
    assert untouched.report.counts.records.corrected == 0
    assert "a person corrected" not in untouched.files["influence.html"].decode()


@pytest.mark.parametrize(
    ("n", "phrase"),
    [
        (0, "no listing switches"),
        (1, "only 1 listing switches"),
        (2, "only 2 listings switch"),
        (1200, "only 1,200 listings switch"),
    ],
)
def test_a_note_on_too_few_switches_counts_in_words_that_agree(n, phrase):
    assert listings_that_switch(n) == phrase
