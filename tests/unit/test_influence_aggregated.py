"""The headline PPML from product x week cell sums (numpy and DuckDB) against the in-memory fit on the same rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from imagelift.influence.aggregated import ArrayCellSums, fit_ppml_aggregated
from imagelift.influence.estimation import EstimationError, fit_ppml, jackknife_covariance
from imagelift.influence.records import join_categories, normalise_records
from imagelift.influence.sales import Rejections, read_sales
from imagelift.influence.simulate import SimulationSpec, simulate

NAMES = ["category_model", "category_worn", "log_price", "promo"]
COEF_TOL = 1e-10
SE_TOL = 1e-8
# The in-memory fit's sandwich uses the weights of its last IRLS step, one step behind the converged ones: at the
# default tolerance (1e-10 on the deviance) that moves its standard errors by about 1e-6 of themselves. Run to
# 1e-13 both are at the same maximum and agree to rounding.
REFERENCE_IRLS_TOL = 1e-13


def _joined(spec: SimulationSpec) -> pd.DataFrame:
    sim = simulate(spec)
    sales = read_sales([("sales.csv", sim.sales.to_csv(index=False).encode())], controls=["promo"])
    panel = join_categories(sales.frame, normalise_records(sim.records), Rejections())
    return panel.assign(
        category_model=(panel["category"] == 1).astype(float),
        category_worn=(panel["category"] == 2).astype(float),
        log_price=np.log(panel["price"]),
    )


@pytest.fixture(scope="module")
def panels() -> dict[str, pd.DataFrame]:
    plain = _joined(SimulationSpec(products=150, weeks=26, seed=3))
    sparse_sales = _joined(SimulationSpec(products=200, weeks=26, base_units=0.3, late_start_share=0.4, seed=4))
    # a product that never sells (separated) and a product seen once (a singleton)
    awkward = plain.copy()
    awkward.loc[awkward["product_id"] == awkward["product_id"].iloc[0], "units"] = 0.0
    awkward = pd.concat([awkward, awkward.iloc[[5]].assign(product_id="PSOLO")], ignore_index=True)
    return {"plain": plain, "many_zero_weeks": sparse_sales, "separated_and_singleton": awkward}


def _in_memory(frame: pd.DataFrame):
    product, week = frame["product_id"].to_numpy(), frame["week"].to_numpy()
    return fit_ppml(
        frame["units"].to_numpy(float),
        frame[NAMES].to_numpy(float),
        NAMES,
        [product, week],
        product,
        tol=1e-13,
        irls_tol=REFERENCE_IRLS_TOL,
    )


def _assert_same_fit(ours, reference) -> None:
    assert ours.nobs == reference.nobs
    assert ours.dropped == reference.dropped
    assert ours.n_clusters == reference.n_clusters and ours.df_k == reference.df_k
    np.testing.assert_allclose(ours.params, reference.params, rtol=0, atol=COEF_TOL)
    np.testing.assert_allclose(ours.std_err, reference.std_err, rtol=0, atol=SE_TOL)
    order = {label: i for i, label in enumerate(ours.cluster_labels.tolist())}
    rows = [order[label] for label in reference.cluster_labels.tolist()]
    np.testing.assert_allclose(ours.influence[rows], reference.influence, rtol=0, atol=1e-8)
    # the jackknife rests on the per-product hessians: it must agree too
    np.testing.assert_allclose(
        np.sqrt(np.diag(jackknife_covariance(ours))), np.sqrt(np.diag(jackknife_covariance(reference))), rtol=1e-6
    )


@pytest.mark.parametrize("name", ["plain", "many_zero_weeks", "separated_and_singleton"])
def test_cell_sums_give_the_in_memory_fit(panels, name):
    frame = panels[name]
    source = ArrayCellSums(
        frame["units"].to_numpy(float),
        frame[NAMES].to_numpy(float),
        NAMES,
        frame["product_id"].to_numpy(),
        frame["week"].to_numpy(),
    )
    _assert_same_fit(fit_ppml_aggregated(source), _in_memory(frame))


@pytest.mark.parametrize("name", ["plain", "separated_and_singleton"])
def test_duckdb_cell_sums_give_the_in_memory_fit(panels, name, tmp_path):
    pytest.importorskip("duckdb")
    from imagelift.influence.duck import DuckCellSums, connect

    frame = panels[name][["product_id", "week", "units", *NAMES]]
    connection = connect(memory_limit_mb=256, temp_directory=tmp_path)
    connection.register("joined", frame)
    source = DuckCellSums(connection, "SELECT * FROM joined", "units", NAMES)
    assert source.rows() == len(frame)
    _assert_same_fit(fit_ppml_aggregated(source), _in_memory(panels[name]))


def test_a_regressor_absorbed_by_the_fixed_effects_is_an_estimation_error():
    rng = np.random.default_rng(1)
    product = np.repeat(np.arange(30), 10)
    week = np.tile(np.arange(10), 30)
    constant_within = (product % 2).astype(float)[:, None]
    y = rng.poisson(3, len(product)).astype(float)
    with pytest.raises(EstimationError, match="does not vary"):
        fit_ppml_aggregated(ArrayCellSums(y, constant_within, ["category_model"], product, week))


def test_a_negative_outcome_is_an_estimation_error():
    with pytest.raises(EstimationError, match="non-negative"):
        ArrayCellSums(np.array([1.0, -1.0]), np.ones((2, 1)), ["x"], np.array([0, 1]), np.array([0, 0]))


def _flatten(value, prefix=""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _flatten(item, f"{prefix}[{i}]")
    else:
        yield prefix, value


@pytest.mark.parametrize(
    "spec",
    [
        SimulationSpec(products=150, weeks=26, seed=21),
        SimulationSpec(products=200, weeks=26, base_units=0.3, seed=22),
        SimulationSpec(products=120, weeks=30, huge_products=3, huge_demand=6.0, seed=23),
    ],
    ids=["default", "many_zero_weeks", "huge_sellers"],
)
def test_the_report_is_the_same_on_either_route(spec):
    """Every number of the report, the headline solved by demeaning rows or on cell sums (ReportConfig threshold)."""
    from datetime import UTC, datetime

    from imagelift.config import ReportConfig
    from imagelift.influence.analysis import analyse

    sim = simulate(spec)
    data = sim.sales.to_csv(index=False).encode()
    reports = {}
    for route, threshold in (("rows", 10**12), ("cells", 0)):
        sales = read_sales([("sales.csv", data)], controls=["promo"])
        config = ReportConfig(controls="promo", cell_sums_min_rows=threshold, irls_tol=REFERENCE_IRLS_TOL, fe_tol=1e-13)
        reports[route] = analyse(
            sales, normalise_records(sim.records), config, generated_at=datetime(2026, 1, 1, tzinfo=UTC)
        )
    rows, cells = (dict(_flatten(reports[r].to_dict())) for r in ("rows", "cells"))
    assert rows.keys() == cells.keys()
    # the two routes take different steps to the same maximum
    different_paths = {".spec.iterations"}
    for key, value in rows.items():
        if key in different_paths:
            continue
        other = cells[key]
        if isinstance(value, float) and isinstance(other, float):
            # percentages are 100 (exp(b) - 1): a hundred times the log-point differences
            unit = 100.0 if "pct" in key else 1.0
            if key.endswith(".estimate"):
                tolerance = COEF_TOL
            elif any(part in key for part in ("std_err", "ci_low", "ci_high", "_ci[")):
                tolerance = unit * SE_TOL * max(1.0, abs(value))
            else:
                # what rests on the Poisson weights themselves (weight shares, per-product levels), which the
                # in-memory fit takes one IRLS step early
                tolerance = 1e-6 * max(unit, abs(value))
            assert abs(value - other) <= tolerance, (key, value, other)
        else:
            assert value == other, (key, value, other)
    assert reports["cells"].effects[0].estimate is not None
