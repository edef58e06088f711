"""The regressions against independent implementations: pyfixest (fepois, feols) and dummy-column least squares."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from imagelift.config import ReportConfig
from imagelift.influence import estimation
from imagelift.influence.analysis import analyse
from imagelift.influence.demean import FixedEffects, drop_singletons, factorize
from imagelift.influence.estimation import EstimationError, fit_ols_fe, fit_pooled_ols, fit_ppml, joint_covariance
from imagelift.influence.fits import fit_two_way_ols
from imagelift.influence.records import normalise_records
from imagelift.influence.sales import read_sales
from imagelift.influence.simulate import SimulationSpec, simulate

pf = pytest.importorskip("pyfixest")
TOL = 1e-6


def _pyfixest(kind: str, formula: str, data: pd.DataFrame):
    from pyfixest.demeaners import MapDemeaner

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        demeaner = MapDemeaner(fixef_tol=1e-13, fixef_maxiter=100_000)
        if kind == "fepois":
            return pf.fepois(
                formula, data, vcov={"CRV1": "product_id"}, iwls_tol=1e-13, iwls_maxiter=200, demeaner=demeaner
            )
        return pf.feols(formula, data, vcov={"CRV1": "product_id"}, demeaner=demeaner)


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    """An unbalanced simulated panel plus the awkward cases: a product that never sells, a singleton row."""
    sim = simulate(SimulationSpec(products=120, weeks=20, late_start_share=0.4, bad_rows=0, seed=11))
    frame = sim.sales.copy()
    frame.loc[frame["product_id"] == "P00007", "units"] = 0  # separated: fixed effect runs to -inf
    records = normalise_records(sim.records).frame
    first = records.sort_values("event_time").drop_duplicates(["product_id", "listing_id"])
    cat = first.set_index(["product_id", "listing_id"])["category"]
    # the true weekly category comes from the join; here a simple per-listing category is enough to test fits
    frame["category"] = cat.reindex(pd.MultiIndex.from_frame(frame[["product_id", "listing_id"]])).to_numpy()
    frame["category_model"] = (frame["category"] == 1).astype(float)
    frame["category_worn"] = (frame["category"] == 2).astype(float)
    frame["log_price"] = np.log(frame["price"])
    singleton = frame.iloc[[0]].assign(product_id="PSOLO", listing_id="LSOLO")
    return pd.concat([frame, singleton], ignore_index=True)


def _design(frame: pd.DataFrame, names: list[str]):
    return frame[names].to_numpy(dtype=float), frame["product_id"].to_numpy(), frame["week"].to_numpy()


def test_ppml_matches_pyfixest_fepois(panel):
    names = ["category_model", "category_worn", "log_price", "promo"]
    x, product, week = _design(panel, names)
    ours = fit_ppml(panel["units"].to_numpy(float), x, names, [product, week], product, tol=1e-13, irls_tol=1e-13)
    ref = _pyfixest("fepois", "units ~ " + " + ".join(names) + " | product_id + week", panel)
    assert ours.nobs == ref._N
    assert ours.dropped["all_zero_fixed_effect"] > 0 and ours.dropped["singletons"] == 1
    assert np.max(np.abs(ours.params - ref.coef().to_numpy())) < TOL
    assert np.max(np.abs(ours.std_err - ref.se().to_numpy())) < TOL


def test_ppml_on_a_row_mask_is_the_fit_on_those_rows(panel):
    """``rows=`` fits a subset without copying it first: every number is that of the fit on the copied rows."""
    names = ["category_model", "category_worn", "log_price", "promo"]
    x, product, week = _design(panel, names)
    units = panel["units"].to_numpy(float)
    rows = np.random.default_rng(3).random(len(units)) < 0.7
    start = np.log(units.mean()) + 0.1 * x[:, 2]
    masked = fit_ppml(units, x, names, [product, week], product, rows=rows, start=start, steps=2)
    copied = fit_ppml(
        units[rows], x[rows], names, [product[rows], week[rows]], product[rows], start=start[rows], steps=2
    )
    assert np.array_equal(masked.params, copied.params) and np.array_equal(masked.cov, copied.cov)
    assert np.array_equal(masked.influence, copied.influence)
    assert masked.dropped == copied.dropped and masked.nobs == copied.nobs
    assert np.array_equal(np.flatnonzero(masked.kept_rows), np.flatnonzero(rows)[copied.kept_rows])
    assert np.array_equal(masked.linear_predictor, copied.linear_predictor)


@pytest.mark.parametrize("layout", ["C", "F"])
def test_column_rank_in_blocks_is_matrix_rank(monkeypatch, layout):
    monkeypatch.setattr(estimation, "RANK_BLOCK_ROWS", 1000)
    rng = np.random.default_rng(5)
    full = rng.normal(size=(25_000, 5)) * np.array([1.0, 1e-4, 1e3, 1.0, 1.0])
    collinear = full.copy()
    collinear[:, 4] = collinear[:, 0] - 2 * collinear[:, 3]
    nearly = full.copy()
    nearly[:, 4] = collinear[:, 4] + 1e-9 * rng.normal(size=len(full))
    for x in (full, collinear, nearly, np.ones((25_000, 3))):
        x = np.asarray(x, order=layout)
        assert estimation.column_rank(x) == np.linalg.matrix_rank(x)


OLS_FITS = {
    # the report's two OLS fits: log(units) on weeks with sales, and the price premium on every row
    "log_units": ("log_units", ["category_model", "category_worn", "log_price", "promo"], True),
    "price_premium": ("log_price", ["category_model", "category_worn", "promo"], False),
}


@pytest.mark.parametrize("route", ["rows", "cells"])
@pytest.mark.parametrize("which", list(OLS_FITS))
def test_ols_fe_matches_pyfixest_feols(panel, which, route):
    outcome, names, sold_only = OLS_FITS[which]
    frame = panel.assign(log_units=np.log(panel["units"].where(panel["units"] > 0)))
    if sold_only:
        frame = frame[frame["units"] > 0]
    x, product, week = _design(frame, names)
    y = frame[outcome].to_numpy()
    config = ReportConfig(cell_sums_min_rows=0 if route == "cells" else 10**12, fe_tol=1e-13)
    ours = fit_two_way_ols(y, x, names, product, week, config, model=which)
    ref = _pyfixest("feols", f"{outcome} ~ " + " + ".join(names) + " | product_id + week", frame)
    assert ours.nobs == ref._N
    assert ours.dropped["singletons"] == 1
    assert (ours.demeaned_x is None) == (route == "cells")  # the route asked for is the one taken
    assert np.max(np.abs(ours.params - ref.coef().to_numpy())) < TOL
    assert np.max(np.abs(ours.std_err - ref.se().to_numpy())) < TOL


def test_pooled_ols_matches_pyfixest(panel):
    names = ["category_model", "category_worn", "log_price"]
    frame = panel.assign(log1p_units=np.log1p(panel["units"]))
    ours = fit_pooled_ols(
        frame["log1p_units"].to_numpy(), frame[names].to_numpy(float), names, frame["product_id"].to_numpy()
    )
    ref = _pyfixest("feols", "log1p_units ~ " + " + ".join(names), frame)
    assert np.max(np.abs(ours.params - ref.coef().to_numpy())) < TOL
    assert np.max(np.abs(ours.std_err - ref.se().to_numpy())) < TOL


def test_weighted_demeaning_equals_dummy_regression():
    rng = np.random.default_rng(0)
    n = 400
    a, b = rng.integers(0, 15, n), rng.integers(0, 9, n)
    x = rng.normal(size=(n, 2)) + a[:, None] * 0.3 - b[:, None] * 0.2
    w = rng.uniform(0.2, 3.0, n)
    ours, _ = FixedEffects.from_columns(a, b, tol=1e-14).demean(x, weights=w)
    dummies = np.column_stack([np.eye(15)[a], np.eye(9)[b][:, 1:]])
    sw = np.sqrt(w)[:, None]
    coef, *_ = np.linalg.lstsq(dummies * sw, x * sw, rcond=None)
    assert np.max(np.abs(ours - (x - dummies @ coef))) < 1e-9


def test_exact_two_way_start_and_plain_sweeps_reach_the_same_point(monkeypatch):
    """Unbalanced, weighted, and with a block of products seen only in weeks no other product has."""
    import imagelift.influence.demean as demean

    rng = np.random.default_rng(3)
    n = 3000
    product = rng.integers(0, 200, n)
    week = rng.integers(0, 30, n)
    island = product >= 190
    week[island] = 30 + rng.integers(0, 3, island.sum())  # a second connected set of fixed effects
    x = rng.normal(size=(n, 3)) + product[:, None] * 0.01
    w = rng.gamma(2.0, 1.0, n)
    fe = FixedEffects.from_columns(product, week, tol=1e-13)
    direct, _ = fe.demean(x, weights=w)
    assert fe.last_sweeps == 0  # the exact two-way solution is already the fixed point: no sweep runs
    monkeypatch.setattr(demean, "DIRECT_MAX_SMALL", 0)
    sweeps, _ = fe.demean(x, weights=w)
    assert fe.last_sweeps > 1
    assert np.max(np.abs(direct - sweeps)) < 1e-9
    dummies = np.column_stack([np.eye(200)[product], np.eye(33)[week]])
    sw = np.sqrt(w)[:, None]
    coef, *_ = np.linalg.lstsq(dummies * sw, x * sw, rcond=None)
    assert np.max(np.abs(direct - (x - dummies @ coef))) < 1e-9


def test_exact_two_way_solution_falls_back_to_sweeps_from_it_when_not_the_fixed_point(monkeypatch):
    """When the exact solution's level means are not within tol (an ill-conditioned system), the sweeps run from
    it; either way the residuals are those of the plain sweeps, and row- or column-major input makes no difference."""
    import imagelift.influence.demean as demean

    rng = np.random.default_rng(5)
    n = 4000
    listing = rng.integers(0, 300, n)
    week = rng.integers(0, 52, n)
    x = rng.normal(size=(n, 4)) + listing[:, None] * 0.02 - week[:, None] * 0.01
    w = rng.gamma(2.0, 1.0, n)
    fe = FixedEffects.from_columns(listing, week, tol=1e-13)
    direct, direct_coefs = fe.demean(x, weights=w)
    assert fe.last_sweeps == 0
    column_major, _ = fe.demean(np.asfortranarray(x), weights=w)
    assert np.array_equal(direct, column_major)
    solve = np.linalg.lstsq

    # an inexact solve of the small system (as an ill-conditioned one would give): the sweeps finish the job
    def inexact(a, b, rcond=None):  # off by a different amount in each week (a common shift would be exact)
        return (solve(a, b, rcond=rcond)[0] + 1e-6 * np.arange(len(a))[:, None],)

    monkeypatch.setattr(np.linalg, "lstsq", inexact)
    restarted, _ = fe.demean(x, weights=w)
    assert fe.last_sweeps >= 1
    monkeypatch.setattr(np.linalg, "lstsq", solve)
    monkeypatch.setattr(demean, "DIRECT_MAX_SMALL", 0)
    sweeps, sweep_coefs = fe.demean(x, weights=w)
    assert np.max(np.abs(direct - sweeps)) < 1e-10
    assert np.max(np.abs(restarted - sweeps)) < 1e-10
    # the same fitted effects, whatever each method's normalisation of the free level
    for coefs in (direct_coefs, sweep_coefs):
        assert np.max(np.abs(x - coefs[0][fe.codes[0]] - coefs[1][fe.codes[1]] - direct)) < 1e-10


def test_three_factors_use_plain_sweeps():
    rng = np.random.default_rng(4)
    n = 600
    a, b, c = rng.integers(0, 12, n), rng.integers(0, 7, n), rng.integers(0, 5, n)
    x = rng.normal(size=(n, 2))
    ours, _ = FixedEffects.from_columns(a, b, c, tol=1e-14).demean(x)
    dummies = np.column_stack([np.eye(12)[a], np.eye(7)[b][:, 1:], np.eye(5)[c][:, 1:]])
    coef, *_ = np.linalg.lstsq(dummies, x, rcond=None)
    assert np.max(np.abs(ours - (x - dummies @ coef))) < 1e-9


def test_singletons_are_dropped_repeatedly():
    # row 3 is alone in a=2; once it goes, row 2 is alone in b=1
    a = np.array([0, 0, 1, 2, 0, 1])
    b = np.array([0, 0, 1, 1, 0, 0])
    keep = drop_singletons([a, b])
    assert keep.tolist() == [True, True, False, False, True, False]


def test_category_absorbed_by_product_effects_is_refused():
    rng = np.random.default_rng(1)
    product = np.repeat(np.arange(30), 10)
    week = np.tile(np.arange(10), 30)
    constant_within = (product % 2).astype(float)[:, None]
    y = rng.poisson(3, len(product)).astype(float)
    with pytest.raises(EstimationError, match="does not vary"):
        fit_ppml(y, constant_within, ["category_model"], [product, week], product)


def test_a_singular_system_is_an_estimation_error(monkeypatch):
    from imagelift.influence import estimation

    def singular(*args, **kwargs):
        raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setattr(estimation.np.linalg, "solve", singular)
    rng = np.random.default_rng(2)
    product = np.repeat(np.arange(20), 10)
    week = np.tile(np.arange(10), 20)
    x = rng.normal(size=(len(product), 1))
    y = rng.poisson(3, len(product)).astype(float)
    with pytest.raises(EstimationError, match="ppml: Singular matrix"):
        fit_ppml(y, x, ["x"], [product, week], product)


@pytest.fixture(scope="module")
def simulated_report():
    sim = simulate(SimulationSpec(products=400, weeks=40, seed=5))
    sales = read_sales([("sales.csv", sim.sales.to_csv(index=False).encode())], controls=["promo"])
    report = analyse(sales, normalise_records(sim.records), ReportConfig(controls="promo"))
    return sim, sales, report


def test_report_numbers_are_pyfixest_numbers(simulated_report):
    """The report's headline and price-premium numbers, end to end from files, equal pyfixest on the joined panel."""
    sim, sales, report = simulated_report
    from imagelift.influence.records import join_categories
    from imagelift.influence.sales import Rejections

    panel = join_categories(sales.frame, normalise_records(sim.records), Rejections())
    panel = panel.assign(
        category_model=(panel["category"] == 1).astype(float),
        category_worn=(panel["category"] == 2).astype(float),
        log_price=np.log(panel["price"]),
        week=panel["week"].astype(str),
    )
    ppml = _pyfixest("fepois", "units ~ category_model + category_worn + log_price + promo | product_id + week", panel)
    for effect, name in zip(report.effects, ["category_model", "category_worn"], strict=True):
        assert abs(effect.estimate - ppml.coef()[name]) < TOL
        assert abs(effect.std_err - ppml.se()[name]) < TOL
    assert abs(report.price_elasticity.estimate - ppml.coef()["log_price"]) < TOL
    assert abs(report.price_elasticity.std_err - ppml.se()["log_price"]) < TOL
    premium = _pyfixest("feols", "log_price ~ category_model + category_worn + promo | product_id + week", panel)
    for effect, name in zip(report.price_effects, ["category_model", "category_worn"], strict=True):
        assert abs(effect.estimate - premium.coef()[name]) < TOL
        assert abs(effect.std_err - premium.se()[name]) < TOL


def test_planted_effects_fall_inside_the_intervals(simulated_report):
    sim, _, report = simulated_report
    truth = sim.truth
    for effect in report.effects:
        planted = truth["effects_pct"][effect.category_name]
        low, high = effect.effect_pct_ci
        assert low <= planted <= high, (effect.category_name, planted, low, high)
    assert report.effects[0].effect_pct_ci[0] > 0  # the 9% model lift is detected at this size, not just covered
    for effect in report.price_effects:
        planted = truth["price_premium_pct"][effect.category_name]
        assert effect.effect_pct_ci[0] <= planted <= effect.effect_pct_ci[1]
    elasticity = report.price_elasticity
    assert elasticity.ci_low <= truth["elasticity"] <= elasticity.ci_high
    # pooled OLS without fixed effects is confounded by product quality; the headline is not
    pooled_model = report.pooled.effects[0].effect_pct
    assert pooled_model > report.effects[0].effect_pct_ci[1]


def _joined_panel(sim, sales) -> pd.DataFrame:
    from imagelift.influence.records import join_categories
    from imagelift.influence.sales import Rejections

    panel = join_categories(sales.frame, normalise_records(sim.records), Rejections())
    return panel.assign(
        category_model=(panel["category"] == 1).astype(float),
        category_worn=(panel["category"] == 2).astype(float),
        log_price=np.log(panel["price"]),
        week=panel["week"].astype(str),
        listing_key=panel["product_id"].astype(str) + "/" + panel["listing_id"].astype(str),
    )


def test_within_listing_numbers_are_pyfixest_numbers(simulated_report):
    """The listing + week PPML (identified by photo switches only) equals pyfixest's fepois on the same panel."""
    sim, sales, report = simulated_report
    panel = _joined_panel(sim, sales)
    ref = _pyfixest("fepois", "units ~ category_model + category_worn + log_price + promo | listing_key + week", panel)
    within = report.within_listing
    assert within is not None and within.nobs == ref._N
    for effect, name in zip(within.effects, ["category_model", "category_worn"], strict=True):
        assert abs(effect.estimate - ref.coef()[name]) < TOL
        assert abs(effect.std_err - ref.se()[name]) < TOL
    assert abs(within.price_elasticity.estimate - ref.coef()["log_price"]) < TOL
    assert abs(within.price_elasticity.std_err - ref.se()["log_price"]) < TOL


def test_cluster_influences_rebuild_the_clustered_covariance(panel):
    names = ["category_model", "category_worn", "log_price", "promo"]
    x, product, week = _design(panel, names)
    for fit in (
        fit_ppml(panel["units"].to_numpy(float), x, names, [product, week], product),
        fit_ols_fe(np.log1p(panel["units"].to_numpy(float)), x, names, [product, week], product),
    ):
        g, n = fit.n_clusters, fit.nobs
        rebuilt = fit.influence.T @ fit.influence * g / (g - 1) * (n - 1) / (n - fit.df_k)
        np.testing.assert_allclose(rebuilt, fit.cov, rtol=1e-8)
        own = joint_covariance(fit, fit) * (n - 1) / (n - fit.df_k)
        np.testing.assert_allclose(own, fit.cov, rtol=1e-8)


def test_the_one_step_jackknife_is_close_to_refitting_without_each_product():
    from imagelift.influence.estimation import jackknife_covariance

    sim = simulate(SimulationSpec(products=40, weeks=16, seed=9))
    frame = sim.sales
    x = np.column_stack([np.log(frame["price"]), frame["promo"]]).astype(float)
    y, product, week = frame["units"].to_numpy(float), frame["product_id"].to_numpy(), frame["week"].to_numpy()
    fit = fit_ppml(y, x, ["log_price", "promo"], [product, week], product)
    shifts = []
    for left_out in np.unique(product):
        keep = product != left_out
        refit = fit_ppml(y[keep], x[keep], ["log_price", "promo"], [product[keep], week[keep]], product[keep])
        shifts.append(refit.params - fit.params)
    shifts = np.array(shifts)
    g = len(shifts)
    exact = shifts.T @ shifts * (g - 1) / g
    np.testing.assert_allclose(np.sqrt(np.diag(jackknife_covariance(fit))), np.sqrt(np.diag(exact)), rtol=0.1)


@pytest.mark.parametrize(
    "values",
    [
        np.array([5, 3, 5, 0, 3, 9, 9, 1]),
        np.array([7], dtype=np.int32),
        np.array([2, 2, 2], dtype=np.uint16),
        np.array([-1, 4, -1, 2]),  # negative: hashed
        np.array([10**12, 3, 10**12]),  # far beyond the row count: hashed
        np.random.default_rng(0).integers(0, 5_000, 20_000),
    ],
)
def test_factorize_gives_pandas_codes_and_levels(values):
    codes, levels = factorize(values)
    want_codes, want_levels = pd.factorize(values, sort=False)
    np.testing.assert_array_equal(codes, want_codes)
    np.testing.assert_array_equal(levels, want_levels)
    assert levels.dtype == want_levels.dtype


def test_a_fit_without_hessians_has_the_same_numbers(panel):
    """The panel drops a separated product and a singleton, so the codes are refactorised on the kept rows."""
    names = ["category_model", "category_worn", "log_price", "promo"]
    x, product, week = _design(panel, names)
    units = panel["units"].to_numpy(float)
    full = fit_ppml(units, x, names, [product, week], product)
    light = fit_ppml(units, x, names, [product, week], product, hessians=False)
    assert sum(full.dropped.values()) > 0
    assert light.cluster_hessians is None and full.cluster_hessians is not None
    np.testing.assert_array_equal(light.params, full.params)
    np.testing.assert_array_equal(light.cov, full.cov)
    np.testing.assert_array_equal(light.influence, full.influence)
    assert list(light.cluster_labels) == list(full.cluster_labels)
    # each cluster's label is the product of its rows, in order of first appearance among the kept rows
    kept = product[full.kept_rows]
    assert list(full.cluster_labels) == list(pd.unique(kept))
