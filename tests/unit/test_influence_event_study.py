"""The event study around photo switches: timing, the imputation estimator against pyfixest, the pre-trend test."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from imagelift.influence.analysis import _design, prepare_panel
from imagelift.influence.event_study import (
    BINS,
    NEVER,
    PRETREND_GROUPS,
    WINDOW,
    event_studies,
    imputation_event_study_ols,
    switch_timing,
)
from imagelift.influence.records import join_categories, normalise_records
from imagelift.influence.report import EventStudy
from imagelift.influence.sales import read_sales
from imagelift.influence.simulate import SimulationSpec, simulate
from imagelift.records.categories import BASE


def _panel(spec: SimulationSpec):
    sim = simulate(spec)
    sales = read_sales([("sales.csv", sim.sales.to_csv(index=False).encode())], controls=["promo"])
    joined = join_categories(sales.frame, normalise_records(sim.records), sales.rejections)
    return prepare_panel(joined, sales.controls), sim


def test_switch_timing_finds_each_listings_first_switch():
    weeks = pd.to_datetime(["2025-01-06", "2025-01-13", "2025-01-20", "2025-01-27"] * 3)
    listing = np.repeat([0, 1, 2], 4)
    category = np.array([3, 3, 1, 2, 2, 2, 2, 2, 1, 3, 3, 1])
    timing = switch_timing(listing, pd.Series(weeks), category)
    assert timing.relative_week.tolist() == [-2, -1, 0, 1, *[NEVER] * 4, -1, 0, 1, 2]
    assert timing.untreated.tolist() == [True, True, False, False, True, True, True, True, True, False, False, False]
    assert timing.switch_to.tolist() == [1] * 4 + [0] * 4 + [3] * 4
    assert timing.switch_from.tolist() == [3] * 4 + [0] * 4 + [1] * 4


@pytest.fixture(scope="module")
def balanced_panel():
    # everyone from the first week (no late starts), so the untreated fit has no singleton listing and pyfixest's
    # default singleton rule removes nothing either
    return _panel(SimulationSpec(products=120, weeks=30, late_start_share=0.0, switch_share=0.6, seed=5))


def test_ols_imputation_matches_pyfixest_did2s(balanced_panel):
    pf = pytest.importorskip("pyfixest")
    panel, _ = balanced_panel
    frame = panel.frame
    listing = frame["listing_code"].to_numpy()
    timing = switch_timing(listing, frame["week"], frame["category"].to_numpy())
    # listings that switch in their second week have one untreated week: a singleton the two treat differently
    # (pyfixest drops it and leaves its later weeks unimputed), so they are left out of this comparison
    untreated_weeks = np.bincount(listing[timing.untreated], minlength=int(listing.max()) + 1)
    keep = untreated_weeks[listing] > 1
    assert (~keep).any()
    frame = frame[keep].reset_index(drop=True)
    listing = frame["listing_code"].to_numpy()
    week, product = panel.week[keep], panel.product[keep]
    timing = switch_timing(listing, frame["week"], frame["category"].to_numpy())
    events = (timing.switch_from == BASE.id) & (timing.switch_to == 1)
    x, names = _design(frame, [], panel.controls)
    y = np.log1p(frame["units"].to_numpy(dtype=float))
    ours = imputation_event_study_ols(y, x, names, listing, week, product, timing, events)

    data = pd.DataFrame(
        {
            "y": y,
            "log_price": frame["log_price"].to_numpy(),
            "promo": frame["promo"].to_numpy(),
            "listing": listing,
            "week": week,
            "product": product,
            "treated": ~timing.untreated,
        }
    )
    dummies = []
    for b in BINS:
        name = f"bin_{b + WINDOW}"
        data[name] = (events & (np.clip(timing.relative_week, -WINDOW, WINDOW) == b)).astype(float)
        dummies.append(name)
    fit = pf.did2s(
        data,
        yname="y",
        first_stage="~ log_price + promo | listing + week",
        second_stage="~ " + " + ".join(dummies),
        treatment="treated",
        cluster="product",
    )
    theirs = fit.coef()
    assert len(ours) == len(BINS)
    # did2s recovers the first stage's fixed effects by lsqr at a tolerance of 1e-6
    for b in BINS:
        assert ours[b] == pytest.approx(float(theirs[f"bin_{b + WINDOW}"]), abs=1e-5)

    # did2s's two steps with the fixed effects solved to full precision: the same numbers to 1e-8
    first = pf.feols("y ~ log_price + promo | listing + week", data=data[~data["treated"]], vcov="iid")
    first.fixef(atol=1e-14, btol=1e-14)
    data["y_hat"] = data["y"] - first.predict(newdata=data)
    second = pf.feols("y_hat ~ " + " + ".join(dummies), data=data, vcov="iid", drop_intercept=True)
    exact = second.coef()
    for b in BINS:
        assert ours[b] == pytest.approx(float(exact[f"bin_{b + WINDOW}"]), abs=1e-8)


def test_event_study_recovers_a_planted_lift_and_passes_the_pretrend_test():
    panel, sim = _panel(SimulationSpec(products=400, weeks=40, switch_share=0.6, model_lift=25.0, seed=11))
    frame = panel.frame
    x, names = _design(frame, [], panel.controls)
    studies = event_studies(
        panel.units,
        x,
        names,
        frame["listing_code"].to_numpy(),
        frame["week"],
        panel.week,
        panel.product,
        frame["category"].to_numpy(),
        [1, 2],
    )
    model = studies[0]
    assert model.switches > 50 and model.note is None
    truth = sim.truth["log_effects"]["model"]
    assert model.after.ci_low <= truth <= model.after.ci_high
    assert abs(model.after.estimate - truth) < 3 * model.after.std_err
    assert model.pretrend_df == len(PRETREND_GROUPS)
    assert model.pretrend_p_value > 0.01
    assert [b.relative_week for b in model.bins] == list(BINS)
    # leads pooled: no effect before the switch
    leads = [b for b in model.bins if b.lead]
    assert np.mean([b.estimate for b in leads]) == pytest.approx(0.0, abs=0.1)
    assert EventStudy.from_dict(model.to_dict()) == model


def test_too_few_switches_give_a_note_not_a_number(balanced_panel):
    panel, _ = balanced_panel
    frame = panel.frame
    x, names = _design(frame, [], panel.controls)
    studies = event_studies(
        panel.units,
        x,
        names,
        frame["listing_code"].to_numpy(),
        frame["week"],
        panel.week,
        panel.product,
        frame["category"].to_numpy(),
        [1],
        min_switches=10_000,
    )
    assert studies[0].after is None and "at least 10000" in studies[0].note
    assert math.isnan(float("nan"))
