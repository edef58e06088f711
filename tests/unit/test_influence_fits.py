"""The report's OLS fits by either route (rows demeaned, or product x week cell sums): the same fit, the same report."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from imagelift.config import ReportConfig
from imagelift.influence import aggregated_ols, analysis
from imagelift.influence.aggregated_ols import fit_ols_cells
from imagelift.influence.estimation import EstimationError, fit_ols_fe
from imagelift.influence.fits import fit_two_way_ols
from imagelift.influence.records import normalise_records
from imagelift.influence.sales import read_sales
from imagelift.influence.simulate import SimulationSpec, simulate

TOL = 1e-10
ROWS_ONLY = 10**12


@pytest.fixture(scope="module")
def awkward_panel():
    """Unbalanced, with zero outcomes, a singleton product, a singleton week, a product seen in one week only."""
    rng = np.random.default_rng(5)
    n = 6000
    product = rng.integers(0, 400, n)
    week = rng.integers(0, 30, n)
    one_week = product == 7
    week[one_week] = 4  # product 7: several rows, all in one week
    product = np.concatenate([product, [5000, 12]])  # a product with one row
    week = np.concatenate([week, [3, 45]])  # and a week with one row
    n = len(product)
    x = np.column_stack([rng.integers(0, 2, n), rng.integers(0, 2, n), 4 + rng.normal(0, 0.1, n) + 0.01 * product])
    y = 0.3 * x[:, 0] + 0.1 * x[:, 1] - 1.2 * x[:, 2] + 0.002 * product + 0.05 * week + rng.normal(size=n)
    y[rng.random(n) < 0.2] = 0.0
    return y, x, product, week


def _assert_same(cells, rows) -> None:
    assert cells.model == rows.model and cells.names == rows.names
    assert (cells.nobs, cells.n_clusters, cells.df_k, cells.dropped) == (
        rows.nobs,
        rows.n_clusters,
        rows.df_k,
        rows.dropped,
    )
    np.testing.assert_array_equal(cells.kept_rows, rows.kept_rows)
    np.testing.assert_array_equal(cells.cluster_labels, rows.cluster_labels)
    np.testing.assert_allclose(cells.params, rows.params, rtol=0, atol=TOL)
    np.testing.assert_allclose(cells.cov, rows.cov, rtol=0, atol=TOL * np.abs(rows.cov).max())
    np.testing.assert_allclose(cells.std_err, rows.std_err, rtol=0, atol=TOL)
    np.testing.assert_allclose(cells.influence, rows.influence, rtol=0, atol=TOL * np.abs(rows.influence).max())
    scale = np.abs(rows.cluster_hessians).max()
    np.testing.assert_allclose(cells.cluster_hessians, rows.cluster_hessians, rtol=0, atol=TOL * scale)


@pytest.mark.parametrize(
    "layout", ["counted", "hashed", "small_blocks"], ids=["grid_counted", "grid_hashed", "week_gram_in_blocks"]
)
def test_the_cell_route_is_the_row_route_field_by_field(awkward_panel, layout, monkeypatch):
    y, x, product, week = awkward_panel
    if layout == "hashed":
        monkeypatch.setattr(aggregated_ols, "DENSE_CELL_LIMIT", 0)  # cells by hashing, not in product order
    if layout == "small_blocks":
        monkeypatch.setattr(aggregated_ols, "WEEK_GRAM_BLOCK", 200)
    names = ["a", "b", "c"]
    rows = fit_ols_fe(y, x, names, [product, week], product, tol=1e-14, model="m")
    cells = fit_ols_cells(y, x, names, product, week, model="m")
    assert rows.dropped["singletons"] >= 2
    _assert_same(cells, rows)


def test_the_threshold_picks_the_route(awkward_panel, monkeypatch):
    y, x, product, week = awkward_panel
    calls = []
    monkeypatch.setattr(
        aggregated_ols, "fit_ols_cells", lambda *a, **k: calls.append("cells") or fit_ols_cells(*a, **k)
    )
    for threshold, expected in ((len(y), ["cells"]), (len(y) + 1, [])):
        calls.clear()
        fit_two_way_ols(y, x, ["a", "b", "c"], product, week, ReportConfig(cell_sums_min_rows=threshold), model="m")
        assert calls == expected


@pytest.mark.parametrize(
    "case, message",
    [("absorbed", "does not vary"), ("collinear", "collinear"), ("one_product", "at least 2 products")],
)
def test_the_cell_route_fails_where_the_row_route_does(case, message):
    rng = np.random.default_rng(2)
    product = np.repeat(np.arange(1 if case == "one_product" else 40), 24)
    week = np.tile(np.arange(12), len(product) // 12)
    n = len(product)
    first = rng.normal(size=n)
    second = {"absorbed": (product % 3).astype(float), "collinear": 2 * first + 1}.get(case, rng.normal(size=n))
    x = np.column_stack([first, second])
    y = first + rng.normal(size=n)
    config = ReportConfig(cell_sums_min_rows=0)
    for fit in (
        lambda: fit_ols_fe(y, x, ["a", "b"], [product, week], product),
        lambda: fit_two_way_ols(y, x, ["a", "b"], product, week, config, model="m"),
    ):
        with pytest.raises(EstimationError, match=message):
            fit()
    if case == "collinear":
        with pytest.raises(aggregated_ols.TooIllConditioned):  # the rows decided, not the cell sums
            fit_ols_cells(y, x, ["a", "b"], product, week)


def _flatten(value, prefix=""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _flatten(item, f"{prefix}[{i}]")
    else:
        yield prefix, value


def _awkward_inputs(seed: int):
    """Simulated sales with a product of one row, a product sold in one week only, and a week with one row."""
    sim = simulate(SimulationSpec(products=160, weeks=26, base_units=1.0, seed=seed))
    sales = sim.sales.copy()
    records = list(sim.records)
    products = sales["product_id"].unique()
    one_week = products[3]
    first_week = sales.loc[sales["product_id"] == one_week, "week"].min()
    sales = sales[(sales["product_id"] != one_week) | (sales["week"] == first_week)]
    donor = sales[sales["units"] > 0].iloc[0]
    # a one-row product: a copy of a listing's row and of its photo records under new ids
    copied = [
        json.loads(json.dumps(r).replace(donor["product_id"], "PSOLO").replace(donor["listing_id"], "LSOLO"))
        for r in records
        if r.get("product_id") == donor["product_id"] and r.get("listing_id") == donor["listing_id"]
    ]
    assert copied
    solo = donor.copy()
    solo["product_id"], solo["listing_id"] = "PSOLO", "LSOLO"
    # one row in a week after every other week
    late = sales[sales["units"] > 0].iloc[-1].copy()
    late["week"] = (pd.Timestamp(sales["week"].max()) + timedelta(weeks=1)).date().isoformat()
    sales = pd.concat([sales, pd.DataFrame([solo, late])], ignore_index=True)
    assert (sales["units"] == 0).mean() > 0.2
    return sales.to_csv(index=False).encode(), records + copied


@pytest.mark.parametrize("seed", [31, 32])
def test_the_report_is_the_same_with_its_ols_fits_on_either_route(seed, monkeypatch):
    """Every number and warning of the report, the two OLS fits from rows or from cell sums (the headline PPML kept
    on one route, so that only the OLS route changes)."""
    data, records = _awkward_inputs(seed)
    real_headline = analysis.fit_headline_ppml
    monkeypatch.setattr(
        analysis,
        "fit_headline_ppml",
        lambda *args, **kwargs: real_headline(*args[:5], replace(args[5], cell_sums_min_rows=ROWS_ONLY), **kwargs),
    )
    solved_on_cells = []

    def spy(*args, **kwargs):
        fit = fit_ols_cells(*args, **kwargs)
        solved_on_cells.append(fit.model)
        return fit

    monkeypatch.setattr(aggregated_ols, "fit_ols_cells", spy)
    routes = {}
    for route, threshold in (("rows", ROWS_ONLY), ("cells", 0)):
        config = ReportConfig(controls="promo", cell_sums_min_rows=threshold, fe_tol=1e-13)
        sales = read_sales([("sales.csv", data)], controls=["promo"])
        routes[route] = analysis.analyse(
            sales, normalise_records(records), config, generated_at=datetime(2026, 1, 1, tzinfo=UTC)
        )
    assert solved_on_cells == ["ols_log_units", "price_premium"]  # only the cell run, and both fits
    rows, cells = (dict(_flatten(routes[r].to_dict())) for r in ("rows", "cells"))
    assert rows.keys() == cells.keys()
    compared = 0
    for key, value in rows.items():
        other = cells[key]
        if isinstance(value, float) and isinstance(other, float):
            unit = 100.0 if "pct" in key else 1.0
            assert abs(value - other) <= TOL * max(unit, abs(value)), (key, value, other)
            compared += "log_units" in key or "price_effects" in key
        else:
            assert value == other, (key, value, other)
    assert compared > 20  # the OLS fits' numbers are in the report and were compared
    report = routes["cells"]
    assert report.log_units_check.nobs > 0 and all(e.estimate is not None for e in report.log_units_check.effects)
    assert all(e.estimate is not None for e in report.price_effects)
