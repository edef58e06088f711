"""The wild restricted score bootstrap and the leave-one-product-out shifts against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from imagelift.influence.bootstrap import (
    _pieces,
    _RestrictedTest,
    draw_weights,
    leave_one_out_shifts,
    restricted_interval,
)
from imagelift.influence.demean import factorize
from imagelift.influence.estimation import fit_ols_fe, fit_ppml
from imagelift.influence.report import Effect
from imagelift.influence.robust_intervals import leave_one_out_warnings, leave_one_product_out


def _panel(seed: int = 0, products: int = 12, rows_per: int = 30):
    rng = np.random.default_rng(seed)
    product = np.repeat(np.arange(products), rows_per)
    sizes = rng.lognormal(0, 1.0, products)  # unequal products, as in a concentrated catalogue
    x = np.column_stack([rng.random(len(product)) < 0.4, rng.normal(size=len(product))]).astype(float)
    effect = rng.normal(size=products)[product]
    noise = rng.normal(size=len(product)) * sizes[product] + rng.normal(size=products)[product] * sizes[product]
    y = 0.3 * x[:, 0] - 0.5 * x[:, 1] + effect + noise
    return y, x, product


def _cluster_t(y, x, product, j, b0):
    fit = fit_ols_fe(y, x, ["d", "z"], [product], product)
    return (fit.params[j] - b0) / fit.std_err[j]


def test_restricted_p_value_equals_the_wild_cluster_restricted_bootstrap_refitted_draw_by_draw():
    y, x, product = _panel()
    names = ["d", "z"]
    fit = fit_ols_fe(y, x, names, [product], product)
    j, b0, draws = 0, 0.1, 199
    weights = draw_weights(fit.n_clusters, draws, seed=3)
    codes = factorize(product)[0]
    # restricted fit: impose b_j = b0, re-estimate the rest, keep its residuals
    restricted = fit_ols_fe(y - b0 * x[:, j], x[:, [1]], ["z"], [product], product)
    resid = y - b0 * x[:, j] - x[:, [1]] @ restricted.params
    resid = resid - np.bincount(codes, resid)[codes] / np.bincount(codes)[codes]  # the absorbed product effects
    fitted = y - resid
    observed = abs(_cluster_t(y, x, product, j, b0))
    brute = np.mean([abs(_cluster_t(fitted + w[codes] * resid, x, product, j, b0)) >= observed for w in weights])
    test = _RestrictedTest(_pieces(fit, j), weights)
    assert test.p_value(b0) == pytest.approx(brute, abs=1e-12)


def test_the_interval_holds_the_estimate_and_agrees_with_the_p_value_of_no_effect():
    y, x, product = _panel(seed=1)
    fit = fit_ols_fe(y, x, ["d", "z"], [product], product)
    interval = restricted_interval(fit, "d", 0.95, draws=499, seed=0)
    estimate = fit.params[0]
    assert interval.low < estimate < interval.high
    assert (interval.low <= 0 <= interval.high) == (interval.p_value >= 0.05)
    again = restricted_interval(fit, "d", 0.95, draws=499, seed=0)
    assert (again.low, again.high, again.p_value) == (interval.low, interval.high, interval.p_value)


def test_bootstrap_of_a_poisson_fit_is_finite_and_seeded():
    rng = np.random.default_rng(4)
    product = np.repeat(np.arange(40), 20)
    week = np.tile(np.arange(20), 40)
    d = (rng.random(len(product)) < 0.5).astype(float)
    size = np.where(np.arange(40) < 3, 4.0, 0.0)[product]
    y = rng.poisson(np.exp(0.5 + 0.1 * d + size + rng.normal(0, 0.3, 40)[product]))
    fit = fit_ppml(y.astype(float), d[:, None], ["d"], [product, week], product)
    a = restricted_interval(fit, "d", 0.95, draws=299, seed=7)
    b = restricted_interval(fit, "d", 0.95, draws=299, seed=8)
    assert a.low < fit.params[0] < a.high and np.isfinite([a.low, a.high]).all()
    assert (a.low, a.high) != (b.low, b.high)


def test_leave_one_out_shifts_are_the_refits_without_each_product():
    y, x, product = _panel(seed=2)
    fit = fit_ols_fe(y, x, ["d", "z"], [product], product)
    shifts = leave_one_out_shifts(fit)
    labels = list(fit.cluster_labels)
    for g in (0, 5, 11):
        keep = product != labels[g]
        refit = fit_ols_fe(y[keep], x[keep], ["d", "z"], [product[keep]], product[keep])
        assert fit.params + shifts[g] == pytest.approx(refit.params, abs=1e-10)


def test_one_huge_product_with_its_own_effect_is_flagged_as_driving_the_headline():
    rng = np.random.default_rng(9)
    products, weeks = 60, 20
    product = np.repeat(np.arange(products), 2 * weeks)
    week = np.tile(np.arange(weeks), 2 * products)
    listing = np.repeat(np.arange(2 * products), weeks)
    d = ((listing % 2 == 0) & (week >= rng.integers(2, 18, 2 * products)[listing])).astype(float)
    huge = product == 0
    lift = np.where(huge, 0.8, 0.05)  # the big product's photos do much more than everyone else's
    log_mu = 1.0 + 4.0 * huge + lift * d + rng.normal(0, 0.2, products)[product]
    y = rng.poisson(np.exp(log_mu)).astype(float)
    fit = fit_ppml(y, d[:, None], ["category_model"], [product, week], product)
    effect = Effect(1, "model", **fit.inference("category_model"))
    ids = np.array([f"P{i:03d}" for i in range(products)])
    (row,) = leave_one_product_out(fit, ids, [effect], dummy=lambda c: "category_model", price_name="log_price")
    assert row.driven and row.low_without == "P000" and row.low < effect.ci_low
    (warning,) = leave_one_out_warnings([row], 0.95)
    assert "without P000" in warning and "One product drives the model estimate" in warning
    # the same data without the outlying product: nothing drives it
    keep = ~huge
    calm = fit_ppml(y[keep], d[keep, None], ["category_model"], [product[keep], week[keep]], product[keep])
    calm_effect = Effect(1, "model", **calm.inference("category_model"))
    (calm_row,) = leave_one_product_out(
        calm, ids, [calm_effect], dummy=lambda c: "category_model", price_name="log_price"
    )
    assert not calm_row.driven and leave_one_out_warnings([calm_row], 0.95) == []


def test_one_step_leave_one_out_is_close_to_refitting_the_poisson_model_without_a_huge_product():
    rng = np.random.default_rng(12)
    products, weeks = 50, 16
    product = np.repeat(np.arange(products), 3 * weeks)
    week = np.tile(np.arange(weeks), 3 * products)
    d = (rng.random(len(product)) < 0.4).astype(float)
    size = np.where(np.arange(products) < 2, 3.0, 0.0)[product]
    y = rng.poisson(np.exp(0.5 + 0.1 * d + size + rng.normal(0, 0.3, products)[product])).astype(float)
    fit = fit_ppml(y, d[:, None], ["d"], [product, week], product)
    shifts = leave_one_out_shifts(fit)
    for g in (0, 1, 20):
        label = fit.cluster_labels[g]
        keep = product != label
        refit = fit_ppml(y[keep], d[keep, None], ["d"], [product[keep], week[keep]], product[keep])
        assert fit.params[0] + shifts[g, 0] == pytest.approx(refit.params[0], abs=0.01)
