"""Checks of the headline against the usual ways a photo effect is wrong, each a sentence when it moves the answer.

- Donut: the headline refitted without the weeks around each listing's photo switch. A promotion run with a new
  photo (or a clearance before it) lifts exactly those weeks; without them the estimate should not move.
- Placebo leads: the event study's joint test that sales did not move in the weeks before a switch. Sellers who
  change photos after sales rise make the photo look like a cause (reverse causality).
- Dynamic profile: the event study's late weeks against its first ones. An effect that builds up (or fades) is
  not one number; the headline then averages whatever mix of old and new switches the data hold.
- Product by season: the headline with a level per product and quarter instead of per product. Prices or photos
  that follow each product's own season bias the elasticity, and through the price premium the photo effects.

A check "moves the answer" when its figure differs from the headline's beyond the uncertainty of the difference:
its p-value is below 1 - confidence, shared (Bonferroni) among the numbers the check looks at, so that on data
without the threat each check warns at most that often. The difference's standard error combines both fits'
influences on the same products, so the overlap of the two samples is accounted for.
A check whose fit cannot be made becomes a line that says why, and a warning; it never stops the report.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from imagelift.errors import EstimationFailure
from imagelift.influence.demean import factorize
from imagelift.influence.distributions import norm_sf
from imagelift.influence.estimation import EstimationError, FitResult, fit_ppml
from imagelift.influence.event_study import (
    NEVER,
    UNTREATED_FIT_FAILED,
    SwitchTiming,
    empty_study,
    event_studies,
    switch_timing,
)
from imagelift.influence.report import EventStudy, ThreatCheck

DONUT_WEEKS = 2
"""Weeks left out on each side of a switch (the switch week too)."""
DONUT_STEPS = 1
SEASON_STEPS = 2
"""IRLS steps of the check fits, from the headline's solution: the donut drops a few rows of the same model, so
one step (the one-step estimator) lands within a small fraction of a standard error of the full refit; the
product-by-quarter levels move further from the headline's product levels, so two. A full refit would cost three
to five steps of the size of the headline's on every report."""

QUESTIONS = {
    "donut": f"Do the weeks around photo switches ({DONUT_WEEKS} before to {DONUT_WEEKS} after) drive the estimate, "
    "as a promotion run with the new photo would?",
    "placebo_leads": "Did sales already move in the weeks before listings switched photos (reverse causality)?",
    "dynamic_profile": "Does the effect build up or fade after a switch, instead of being one number?",
    "product_season": "Does the estimate move when each product gets its own level in each quarter (seasons)?",
}
CHECK_NAMES = {
    "donut": "donut (without the weeks around switches)",
    "placebo_leads": "placebo leads",
    "dynamic_profile": "dynamic profile",
    "product_season": "product by season",
}
FAILURES = (EstimationFailure, np.linalg.LinAlgError, ValueError, FloatingPointError, ZeroDivisionError)


def _quantity(name: str) -> str:
    if name.startswith("category_"):
        return f"{name.removeprefix('category_')} effect"
    return "price elasticity" if name == "log_price" else name


def _pct(b: float) -> str:
    return f"{100 * math.expm1(b):+.1f}%"


def _shown(name: str, value: float) -> str:
    """An effect as a lift in percent, the elasticity as itself."""
    return _pct(value) if name.startswith("category_") else f"{value:+.2f}"


def difference_std_err(a: FitResult, b: FitResult, name: str) -> float | None:
    """Clustered SE of a's minus b's coefficient ``name``, from both fits' per-cluster influences.

    Clusters present in one fit only count with a zero influence in the other. G/(G-1) as in CRV1.
    """
    if a.influence is None or b.influence is None or a.cluster_labels is None or b.cluster_labels is None:
        return None
    ia, ib = a.names.index(name), b.names.index(name)
    labels = pd.Index(np.concatenate([a.cluster_labels, b.cluster_labels])).unique()
    d = np.zeros(len(labels))
    d[labels.get_indexer(a.cluster_labels)] += a.influence[:, ia]
    d[labels.get_indexer(b.cluster_labels)] -= b.influence[:, ib]
    g = len(labels)
    if g < 2:
        return None
    return math.sqrt(float(np.sum(d**2)) * g / (g - 1))


def _moves(p_value: float | None, level: float, tests: int) -> bool:
    """Beyond the check's uncertainty: p below 1 - confidence shared among the check's numbers (Bonferroni), so
    each check, not each number, raises a false warning at most that often."""
    return p_value is not None and p_value < (1 - level) / max(tests, 1)


def _compare(
    check: str, headline: FitResult, other: FitResult, level: float, explain: Callable[[str, float, float], str]
) -> list[ThreatCheck]:
    """One line per headline coefficient (photo effects and the elasticity) the check's fit also has."""
    out = []
    compared = [
        name for name in headline.names if (name.startswith("category_") or name == "log_price") and name in other.names
    ]
    for name in compared:
        reference = float(headline.params[headline.names.index(name)])
        value = float(other.params[other.names.index(name)])
        se = difference_std_err(headline, other, name)
        difference = value - reference
        p_value = float(2 * norm_sf(abs(difference) / se)) if se else None
        moved = _moves(p_value, level, len(compared))
        out.append(
            ThreatCheck(
                check=check,
                question=QUESTIONS[check],
                quantity=_quantity(name),
                reference=reference,
                value=value,
                difference=difference,
                std_err=se,
                p_value=p_value,
                moved=moved,
                sentence=explain(name, reference, value) + f" (difference {difference:+.3f}, standard error {se:.3f})."
                if moved
                else None,
            )
        )
    return out


def donut_check(
    units: np.ndarray,
    x: np.ndarray,
    names: list[str],
    product: np.ndarray,
    week: np.ndarray,
    timing: SwitchTiming,
    headline: FitResult,
    *,
    level: float,
    tol: float,
    irls_tol: float,
    start: np.ndarray | None = None,
) -> list[ThreatCheck]:
    near = (timing.relative_week != NEVER) & (np.abs(timing.relative_week) <= DONUT_WEEKS)
    if not near.any():
        raise EstimationError("no listing-week lies near a photo switch")
    fit = fit_ppml(
        units,
        x,
        names,
        [product, week],
        product,
        rows=~near,
        tol=tol,
        irls_tol=irls_tol,
        model="ppml_donut",
        hessians=False,  # compared through its influences only
        start=start,
        steps=None if start is None else DONUT_STEPS,
    )

    def explain(name: str, reference: float, value: float) -> str:
        return (
            f"Leaving out the weeks around each photo switch ({DONUT_WEEKS} before to {DONUT_WEEKS} after, "
            f"{int(near.sum()):,} listing-weeks) moves the {_quantity(name)} from {_shown(name, reference)} to "
            f"{_shown(name, value)}: sales around switches differ from the rest, as a promotion run with a new photo "
            "would make them, and the headline may count that as the photo's effect"
        )

    return _compare("donut", headline, fit, level, explain)


def product_season_check(
    units: np.ndarray,
    x: np.ndarray,
    names: list[str],
    product: np.ndarray,
    week: np.ndarray,
    week_dates: pd.Series,
    headline: FitResult,
    *,
    level: float,
    tol: float,
    irls_tol: float,
    start: np.ndarray | None = None,
) -> list[ThreatCheck]:
    dates = pd.to_datetime(pd.Series(week_dates)).reset_index(drop=True)
    quarter = (dates.dt.year * 4 + (dates.dt.month - 1) // 3).to_numpy()
    quarters = len(np.unique(quarter))
    if quarters < 2:
        raise EstimationError("the period lies within one quarter, so seasons cannot be told apart from products")
    product_quarter = product.astype(np.int64) * quarters + factorize(quarter)[0]
    del dates, quarter  # row-level (quarter a new array), not needed while the fit runs
    fit = fit_ppml(
        units,
        x,
        names,
        [product_quarter, week],
        product,
        tol=tol,
        irls_tol=irls_tol,
        model="ppml_product_quarter",
        hessians=False,  # compared through its influences only
        start=start,
        steps=None if start is None else SEASON_STEPS,
    )

    def explain(name: str, reference: float, value: float) -> str:
        return (
            f"Giving each product its own level in each quarter moves the {_quantity(name)} from "
            f"{_shown(name, reference)} to {_shown(name, value)}: prices or photos seem to follow each product's "
            "season, which the headline's single level per product mistakes for their effect"
        )

    return _compare("product_season", headline, fit, level, explain)


def placebo_leads_check(studies: list[EventStudy], level: float) -> list[ThreatCheck]:
    out = []
    tests = sum(s.pretrend_p_value is not None for s in studies)
    for study in studies:
        if study.pretrend_p_value is None:
            out.append(
                ThreatCheck(
                    "placebo_leads",
                    QUESTIONS["placebo_leads"],
                    f"{study.category_name} switches",
                    note=study.note or "too few switching listings with weeks before the switch",
                )
            )
            continue
        moved = _moves(study.pretrend_p_value, level, tests)
        sentence = None
        if moved:
            sentence = (
                f"Sales of listings that switched to {study.category_name} photos were already moving before the "
                f"switch (joint test of the weeks before it, p = {study.pretrend_p_value:.3f}): "
                "sellers may change photos after sales change, so part of the photo effect may be a rise that came "
                "first."
            )
        out.append(
            ThreatCheck(
                "placebo_leads",
                QUESTIONS["placebo_leads"],
                f"{study.category_name} switches",
                value=study.pretrend_statistic,
                std_err=None,
                p_value=study.pretrend_p_value,
                moved=moved,
                sentence=sentence,
            )
        )
    return out


def dynamic_profile_check(studies: list[EventStudy], level: float) -> list[ThreatCheck]:
    out = []
    tests = sum(s.growth is not None and s.growth.p_value is not None for s in studies)
    for study in studies:
        growth, early, late = study.growth, study.early, study.late
        if growth is None or growth.estimate is None or early is None or late is None or early.estimate is None:
            out.append(
                ThreatCheck(
                    "dynamic_profile",
                    QUESTIONS["dynamic_profile"],
                    f"{study.category_name} effect",
                    note=study.note or "too few weeks observed on both sides of the switches",
                )
            )
            continue
        moved = _moves(growth.p_value, level, tests)
        sentence = None
        if moved:
            direction = "builds up" if growth.estimate > 0 else "fades"
            sentence = (
                f"The {study.category_name} effect {direction} after a switch: {_pct(early.estimate)} in the switch "
                f"week and the next, {_pct(late.estimate)} four weeks on and later (difference "
                f"{growth.estimate:+.3f}, standard error {growth.std_err:.3f}). One number averages this profile "
                "over whatever mix of old and new switches the data hold; see the event study"
                + (", and a launch promotion looks like this too." if growth.estimate < 0 else ".")
            )
        out.append(
            ThreatCheck(
                "dynamic_profile",
                QUESTIONS["dynamic_profile"],
                f"{study.category_name} effect",
                reference=early.estimate,
                value=late.estimate,
                difference=growth.estimate,
                std_err=growth.std_err,
                p_value=growth.p_value,
                moved=moved,
                sentence=sentence,
            )
        )
    return out


def _guarded(check: str, run: Callable[[], list[ThreatCheck]], warnings: list[str]) -> list[ThreatCheck]:
    try:
        return run()
    except FAILURES as exc:
        warnings.append(f"The {CHECK_NAMES[check]} check could not be made: {exc}.")
        return [ThreatCheck(check, QUESTIONS[check], "all", note=str(exc))]


def threat_checks(
    units: np.ndarray,
    x: np.ndarray,
    names: list[str],
    product: np.ndarray,
    week: np.ndarray,
    week_dates: pd.Series,
    timing: SwitchTiming | None,
    headline: FitResult | None,
    studies: list[EventStudy],
    *,
    level: float,
    tol: float = 1e-10,
    irls_tol: float = 1e-10,
    start: np.ndarray | None = None,
) -> tuple[list[ThreatCheck], list[str]]:
    """Every check, and the warnings: a sentence for each check that moves the answer, or that could not be made."""
    warnings: list[str] = []
    checks: list[ThreatCheck] = []
    if headline is not None and timing is not None:
        checks += _guarded(
            "donut",
            lambda: donut_check(
                units, x, names, product, week, timing, headline, level=level, tol=tol, irls_tol=irls_tol, start=start
            ),
            warnings,
        )
    checks += _guarded("placebo_leads", lambda: placebo_leads_check(studies, level), warnings)
    checks += _guarded("dynamic_profile", lambda: dynamic_profile_check(studies, level), warnings)
    if headline is not None:
        checks += _guarded(
            "product_season",
            lambda: product_season_check(
                units,
                x,
                names,
                product,
                week,
                week_dates,
                headline,
                level=level,
                tol=tol,
                irls_tol=irls_tol,
                start=start,
            ),
            warnings,
        )
    warnings.extend(c.sentence for c in checks if c.moved and c.sentence)
    return checks, warnings


def headline_start(headline: FitResult | None, units: np.ndarray) -> np.ndarray | None:
    """A fit's linear predictor on every row, to start the checks' fits from: they are the same model on most of
    the same rows, so IRLS converges in fewer steps (rows the fit left out start at the mean)."""
    if headline is None or headline.linear_predictor is None or headline.kept_rows is None:
        return None
    eta = np.full(len(units), math.log(max(float(units.mean()), 1e-12)))
    eta[headline.kept_rows] = headline.linear_predictor
    return eta


def switch_analyses(
    frame: pd.DataFrame,
    units: np.ndarray,
    x: np.ndarray,
    names: list[str],
    product: np.ndarray,
    week: np.ndarray,
    headline: FitResult | None,
    categories: list[int],
    *,
    level: float,
    min_switches: int,
    tol: float = 1e-10,
    irls_tol: float = 1e-10,
    within_listing: FitResult | None = None,
) -> tuple[list[EventStudy], list[ThreatCheck], list[str]]:
    """The event study of each estimable photo type and the threat checks, from the headline's design.

    ``x`` and ``names`` are the headline's regressors; the event study uses the price and controls among them (the
    photo type is what it traces week by week). The within-listing fit, when there is one, starts the event
    study's fit (listing + week effects, like it).
    """
    warnings: list[str] = []
    listing = frame["listing_code"].to_numpy()
    category = frame["category"].to_numpy()
    start = headline_start(headline, units)
    timing = None
    studies: list[EventStudy] = []
    try:
        timing = switch_timing(listing, frame["week"], category)
        columns = [j for j, name in enumerate(names) if not name.startswith("category_")]
        studies = event_studies(
            units,
            x[:, columns],
            [names[j] for j in columns],
            listing,
            frame["week"],
            week,
            product,
            category,
            categories,
            level=level,
            min_switches=min_switches,
            tol=tol,
            irls_tol=irls_tol,
            timing=timing,
            start=headline_start(within_listing, units) if within_listing is not None else start,
        )
    except FAILURES as exc:
        warnings.append(f"The event study around photo switches could not be made: {exc}.")
        studies = [empty_study(c, 0, str(exc)) for c in categories]
    failed = next((s.note for s in studies if s.note and s.note.startswith(UNTREATED_FIT_FAILED)), None)
    if failed:
        warnings.append(f"The event study around photo switches could not be made: {failed}.")
    checks, check_warnings = threat_checks(
        units,
        x,
        names,
        product,
        week,
        frame["week"],
        timing,
        headline,
        studies,
        level=level,
        tol=tol,
        irls_tol=irls_tol,
        start=start,
    )
    return studies, checks, warnings + check_warnings
