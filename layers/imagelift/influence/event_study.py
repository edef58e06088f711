"""Sales of listings week by week around their photo switches: the event study.

For each effect photo type, the events are listings whose first photo switch goes from the base type to it (a
listing that switches again later stays in that event: the weeks after measure the effect of having switched).
Switches are staggered (each listing switches in its own week) and their effects may differ by week and by
listing, which is where an ordinary two-way fixed-effects regression on lead and lag dummies goes wrong: it uses
listings that switched earlier as controls for later ones and mixes the effects of other weeks into each
coefficient (Sun and Abraham 2021). So the counterfactual here comes only from listing-weeks that have not been
touched by a switch: never-switching listings and the weeks before a listing's first switch (the imputation
estimator of Borusyak, Jaravel and Spiess 2024, in its Poisson form):

1. PPML of units on log(price) + controls with listing and week effects on the untreated listing-weeks only.
2. Each switching listing's counterfactual units in week t: exp(alpha_i + gamma_t + x_it b), its own level
   alpha_i from its own weeks before the switch (the Poisson first-order condition: the listing's pre-switch
   units over the sum of exp(gamma_t + x_it b) across those weeks).
3. The effect k weeks from the switch: log(actual units / counterfactual units), summed over the listings
   observed k weeks from their switch. On a balanced panel without covariates this is exactly Wooldridge's extended
   two-way FE Poisson with saturated treated cells (switch cohort by week) aggregated with counterfactual-sales
   weights: with Poisson's canonical link each saturated cell fits exactly, so the fixed effects rest on the
   untreated cells alone. It avoids fitting one coefficient per cohort and week (thousands, at a catalogue's size).

The leads use the same ratio on the weeks before the switch (which also entered step 1): they are near zero when
sales moved in parallel before the switch, and the joint Wald test on them (pooled in three groups, without the
week before the switch, which the others determine through the listing's level) is the pre-trend test. End bins hold every week at or
beyond +-8.

Standard errors: both sums of a ratio are sums over switching listings of their own sales (the counterfactual is
linear in the listing's pre-switch units once week and price effects are fixed), so leaving one product out is
exact and cheap, and the leave-one-product-out jackknife (CR3) gives each bin's variance and the bins'
covariance. Week and price effects are treated as known: they rest on every untreated listing-week, many more
than the switching listings hold.

:func:`imputation_event_study_ols` is the same estimator for a linear outcome (Gardner's two-stage DiD, which
pyfixest's ``did2s`` computes), kept to check the machinery against pyfixest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from imagelift.errors import EstimationFailure
from imagelift.influence.demean import FixedEffects, factorize
from imagelift.influence.distributions import f_sf, t_ppf, t_sf
from imagelift.influence.estimation import EstimationError, FitResult, fit_ols_fe, fit_ppml
from imagelift.influence.report import Effect, EventBin, EventStudy, listings_that_switch
from imagelift.records.categories import BASE, CATEGORY_NAMES

WINDOW = 8
"""Weeks shown before and after the switch; the end bins hold everything beyond."""
BINS = tuple(range(-WINDOW, WINDOW + 1))
EARLY_WEEKS = (0, 1)
"""The switch week and the one after: where a launch promotion or a slow start shows."""
LATE_WEEKS = tuple(range(4, WINDOW + 1))
"""Four weeks and more after the switch: the lasting effect."""
PRETREND_GROUPS = ((-WINDOW,), tuple(range(-WINDOW + 1, -4)), (-4, -3, -2))
"""The leads of the joint pre-trend test, pooled in three groups (far, middle, near); the week before the switch is
left out because the others and the listing's level fix it. Seven single weeks estimated from a few dozen
products make the covariance too noisy: that test rejected 10% of 120 simulated catalogues without a pre-trend at
5%; the three groups reject 5.0% (and 8.3% at 10%)."""
NEVER = np.iinfo(np.int64).max
STARTED_STEPS = 2
"""IRLS steps of the untreated fit when it starts from the within-listing fit (same effects, most of the same
rows): two land within 1e-6 standard errors of the converged bins in simulations, a full refit costs five."""
UNTREATED_FIT_FAILED = "the sales model of listing-weeks without a switch could not be fitted"

ESTIMATOR = (
    "imputation (Borusyak-Jaravel-Spiess) in Poisson form: PPML of units on log(price) + controls with listing + "
    "week effects on listing-weeks untouched by a switch (never-switching listings, weeks before a listing's first "
    "switch), each switching listing's counterfactual from its own pre-switch weeks; per week from the switch, log "
    "of actual over counterfactual units; end bins at -8 and +8 hold the weeks beyond; errors by the leave-one-"
    "product-out jackknife (CR3), week and price effects taken as known; pre-trend test: Hotelling F on the leads in three groups (-8 and earlier, -7 to -5, -4 to -2)"
)


def bin_label(relative_week: int) -> str:
    if relative_week == -WINDOW:
        return f"{-WINDOW} or earlier"
    if relative_week == WINDOW:
        return f"+{WINDOW} or later"
    return f"{relative_week:+d}"


@dataclass(frozen=True)
class SwitchTiming:
    """Per row of the panel: whether a switch has touched it, and for rows of switching listings where they sit."""

    untreated: np.ndarray
    """Rows of never-switching listings, and rows before a listing's first switch."""
    switch_to: np.ndarray
    """Per row, the category its listing's first switch goes to (0 when the listing never switches)."""
    switch_from: np.ndarray
    relative_week: np.ndarray
    """Weeks from the listing's first switch (NEVER for listings that never switch)."""


def switch_timing(listing: np.ndarray, week: pd.Series | np.ndarray, category: np.ndarray) -> SwitchTiming:
    """Each listing's first photo switch: the week its category first differs from the one it started with."""
    days = np.asarray(pd.to_datetime(week).values.astype("datetime64[D]").astype(np.int64))
    listing = np.asarray(listing, dtype=np.int64)
    category = np.asarray(category, dtype=np.int64)
    n_listings = int(listing.max()) + 1 if len(listing) else 0
    order = np.lexsort((days, listing))
    l_sorted, c_sorted, d_sorted = listing[order], category[order], days[order]
    starts = np.flatnonzero(np.r_[True, l_sorted[1:] != l_sorted[:-1]]) if len(order) else np.zeros(0, dtype=int)
    first_category = np.zeros(n_listings, dtype=np.int64)
    first_category[l_sorted[starts]] = c_sorted[starts]
    changed = np.flatnonzero(c_sorted != first_category[l_sorted])
    switch_day = np.full(n_listings, NEVER, dtype=np.int64)
    new_category = np.zeros(n_listings, dtype=np.int64)
    if len(changed):
        switched, first_change = np.unique(l_sorted[changed], return_index=True)
        rows = changed[first_change]
        switch_day[switched] = d_sorted[rows]
        new_category[switched] = c_sorted[rows]
    switches = switch_day[listing] != NEVER
    relative = np.full(len(listing), NEVER, dtype=np.int64)
    relative[switches] = np.floor_divide(days[switches] - switch_day[listing][switches], 7)
    untreated = ~switches | (relative < 0)
    return SwitchTiming(
        untreated=untreated,
        switch_to=new_category[listing],
        switch_from=np.where(switches, first_category[listing], 0),
        relative_week=relative,
    )


@dataclass(frozen=True)
class Counterfactual:
    """Per row: the untreated sales model's exp(gamma_t + x b) (NaN in weeks without untreated rows), and the fit."""

    scale: np.ndarray
    fit: FitResult


def _week_effects(fit: FitResult, listing: np.ndarray, week: np.ndarray, n_weeks: int, offset: np.ndarray):
    """The week effects behind the fit's fixed-effect part ``offset`` (alpha_i + gamma_t) on its kept rows."""
    listing_codes = factorize(listing)[0]
    week_codes, week_levels = factorize(week)
    fe = FixedEffects([listing_codes, week_codes], tol=1e-13)
    _, coefs = fe.demean(offset)
    gamma = np.full(n_weeks, np.nan)
    gamma[week_levels.astype(np.int64)] = coefs[1][:, 0]
    return gamma


def untreated_poisson(
    units: np.ndarray,
    x: np.ndarray,
    names: list[str],
    listing: np.ndarray,
    week: np.ndarray,
    product: np.ndarray,
    timing: SwitchTiming,
    *,
    tol: float = 1e-10,
    irls_tol: float = 1e-10,
    start: np.ndarray | None = None,
) -> Counterfactual:
    """Step 1: PPML with listing + week effects on the untreated rows, and exp(gamma_t + x b) for every row."""
    u = timing.untreated
    if not u.any():
        raise EstimationError("every listing-week follows a photo switch, so nothing shows sales without one")
    fit = fit_ppml(
        units,
        x,
        names,
        [listing, week],
        product,
        rows=u,
        tol=tol,
        irls_tol=irls_tol,
        model="untreated_ppml",
        hessians=False,  # compared through its influences only
        start=start,
        steps=None if start is None else STARTED_STEPS,
    )
    kept = fit.kept_rows
    xu = x[kept]
    offset = fit.linear_predictor - (xu @ fit.params if xu.shape[1] else 0.0)
    gamma = _week_effects(fit, listing[kept], week[kept], int(week.max()) + 1, offset)
    index = gamma[week] + (x @ fit.params if x.shape[1] else 0.0)
    return Counterfactual(scale=np.exp(index), fit=fit)


@dataclass(frozen=True)
class _Ratios:
    """Per bin: actual and counterfactual sums, in total and per product (cluster), for the jackknife."""

    actual: np.ndarray  # (B,)
    counterfactual: np.ndarray  # (B,)
    actual_by_product: np.ndarray  # (G, B)
    counterfactual_by_product: np.ndarray  # (G, B)
    listings: np.ndarray  # (B,)
    rows: np.ndarray  # (B,)

    def pooled(self, bins: tuple[int, ...]) -> tuple[float, np.ndarray] | None:
        """log(actual / counterfactual) over ``bins`` together, and each product's jackknife deviation.

        The deviations are sqrt((G-1)/G) (tau_(g) - mean of the tau_(g)), tau_(g) the ratio without product g (exact:
        both sums lose the product's share), so their sum of squares is the CR3 variance and the sum of their outer
        products across bins the CR3 covariance. CR3 rather than the delta method because a few dozen switching
        products of very different sizes make the delta method's ranges a little narrow.
        """
        columns = [BINS.index(b) for b in bins]
        a, m = self.actual[columns].sum(), self.counterfactual[columns].sum()
        if a <= 0 or m <= 0:
            return None
        estimate = math.log(a / m)
        rest_a = a - self.actual_by_product[:, columns].sum(axis=1)
        rest_m = m - self.counterfactual_by_product[:, columns].sum(axis=1)
        usable = (rest_a > 0) & (rest_m > 0)
        left_out = np.full(len(rest_a), estimate)
        left_out[usable] = np.log(rest_a[usable] / rest_m[usable])
        g = len(left_out)
        deviations = (left_out - left_out.mean()) * math.sqrt((g - 1) / g) if g > 1 else np.zeros(g)
        return estimate, deviations


def _ratios(
    y: np.ndarray,
    scale: np.ndarray,
    listing: np.ndarray,
    product: np.ndarray,
    relative: np.ndarray,
    untreated: np.ndarray,
    events: np.ndarray,
) -> tuple[_Ratios, int, int]:
    """Actual and counterfactual units of the event listings per relative-week bin (Poisson counterfactual)."""
    known = events & np.isfinite(scale)
    n_listings = int(listing.max()) + 1
    pre = known & untreated
    pre_units = np.bincount(listing[pre], weights=y[pre], minlength=n_listings)
    pre_scale = np.bincount(listing[pre], weights=scale[pre], minlength=n_listings)
    level = np.divide(pre_units, pre_scale, out=np.full(n_listings, np.nan), where=pre_scale > 0)
    usable = known & np.isfinite(level[listing])
    return _binned(y, level[listing] * scale, listing, product, relative, usable)


def _binned(
    actual: np.ndarray,
    counterfactual: np.ndarray,
    listing: np.ndarray,
    product: np.ndarray,
    relative: np.ndarray,
    usable: np.ndarray,
) -> tuple[_Ratios, int, int]:
    rows = np.flatnonzero(usable)
    bins = np.clip(relative[rows], -WINDOW, WINDOW) + WINDOW
    product_codes, _ = factorize(product[rows])
    n_products = int(product_codes.max()) + 1 if len(rows) else 0
    cell = product_codes * len(BINS) + bins
    size = n_products * len(BINS)

    def by_product(values: np.ndarray) -> np.ndarray:
        return np.bincount(cell, weights=values[rows], minlength=size).reshape(n_products, len(BINS))

    listing_bin = pd.DataFrame({"l": listing[rows], "b": bins}).drop_duplicates()
    ratios = _Ratios(
        actual=np.bincount(bins, weights=actual[rows], minlength=len(BINS)),
        counterfactual=np.bincount(bins, weights=counterfactual[rows], minlength=len(BINS)),
        actual_by_product=by_product(actual),
        counterfactual_by_product=by_product(counterfactual),
        listings=np.bincount(listing_bin["b"].to_numpy(), minlength=len(BINS)),
        rows=np.bincount(bins, minlength=len(BINS)),
    )
    return ratios, len(np.unique(listing[rows])), n_products


def _effect(category: int, value: tuple[float, np.ndarray] | None, level: float, basis: str) -> Effect:
    if value is None:
        return Effect(category, CATEGORY_NAMES[category], note="no sales to compare", effect_basis=basis)
    estimate, psi = value
    g = len(psi)
    se = math.sqrt(float(np.sum(psi**2)))
    t_crit = float(t_ppf(0.5 + level / 2, max(g - 1, 1)))
    low, high = estimate - t_crit * se, estimate + t_crit * se
    return Effect(
        category,
        CATEGORY_NAMES[category],
        estimate=estimate,
        std_err=se,
        ci_low=low,
        ci_high=high,
        p_value=float(2 * t_sf(abs(estimate / se), max(g - 1, 1))) if se > 0 else None,
        effect_pct=100 * math.expm1(estimate),
        effect_pct_ci=(100 * math.expm1(low), 100 * math.expm1(high)),
        effect_basis=basis,
    )


def _difference(category: int, late, early, level: float) -> Effect:
    if late is None or early is None:
        return Effect(category, CATEGORY_NAMES[category], note="no sales to compare")
    return _effect(category, (late[0] - early[0], late[1] - early[1]), level, GROWTH_BASIS)


AFTER_BASIS = "every week from the switch on, against the listings' counterfactual"
EARLY_BASIS = "the switch week and the week after"
LATE_BASIS = f"four to {WINDOW}+ weeks after the switch"
GROWTH_BASIS = "late minus early weeks after the switch, log points"


def _pretrend(ratios: _Ratios) -> tuple[float | None, int | None, float | None]:
    """Joint Wald test (CR3, Hotelling's F(q, G-q)) that the pooled leads in PRETREND_GROUPS are all zero."""
    leads = [(b, ratios.pooled(b)) for b in PRETREND_GROUPS]
    leads = [(b, v) for b, v in leads if v is not None]
    if not leads:
        return None, None, None
    estimates = np.array([v[0] for _, v in leads])
    psi = np.column_stack([v[1] for _, v in leads])
    g = psi.shape[0]
    cov = psi.T @ psi
    q = int(np.linalg.matrix_rank(cov))
    if q == 0 or g <= q + 1:
        return None, None, None
    wald = float(estimates @ np.linalg.pinv(cov) @ estimates)
    # Hotelling's small-sample form: with a few dozen products the clustered covariance is itself noisy, and W/q
    # against F(q, G-1) rejects too often
    statistic = wald * (g - q) / (q * (g - 1))
    return statistic, q, float(f_sf(statistic, q, g - q))


def summarise(category: int, ratios: _Ratios, switches: int, products: int, level: float) -> EventStudy:
    """The typed event study of one photo type from its binned sums."""
    z_bins = []
    for b in BINS:
        effect = _effect(category, ratios.pooled((b,)), level, "")
        i = BINS.index(b)
        z_bins.append(
            EventBin(
                relative_week=b,
                label=bin_label(b),
                estimate=effect.estimate,
                std_err=effect.std_err,
                ci_low=effect.ci_low,
                ci_high=effect.ci_high,
                effect_pct=effect.effect_pct,
                listings=int(ratios.listings[i]),
                listing_weeks=int(ratios.rows[i]),
            )
        )
    after_bins = tuple(b for b in BINS if b >= 0)
    early, late = ratios.pooled(EARLY_WEEKS), ratios.pooled(LATE_WEEKS)
    statistic, df, p_value = _pretrend(ratios)
    return EventStudy(
        category=category,
        category_name=CATEGORY_NAMES[category],
        estimator=ESTIMATOR,
        switches=switches,
        products=products,
        bins=tuple(z_bins),
        after=_effect(category, ratios.pooled(after_bins), level, AFTER_BASIS),
        early=_effect(category, early, level, EARLY_BASIS),
        late=_effect(category, late, level, LATE_BASIS),
        growth=_difference(category, late, early, level),
        pretrend_statistic=statistic,
        pretrend_df=df,
        pretrend_p_value=p_value,
    )


def empty_study(category: int, switches: int, note: str) -> EventStudy:
    return EventStudy(
        category=category,
        category_name=CATEGORY_NAMES[category],
        estimator=ESTIMATOR,
        switches=switches,
        products=0,
        note=note,
    )


def event_studies(
    units: np.ndarray,
    x: np.ndarray,
    names: list[str],
    listing: np.ndarray,
    week_dates: pd.Series | np.ndarray,
    week: np.ndarray,
    product: np.ndarray,
    category: np.ndarray,
    categories: list[int],
    *,
    level: float = 0.95,
    min_switches: int = 3,
    tol: float = 1e-10,
    irls_tol: float = 1e-10,
    timing: SwitchTiming | None = None,
    start: np.ndarray | None = None,
) -> list[EventStudy]:
    """One event study per category in ``categories`` (switches from the base photo type to it)."""
    timing = timing or switch_timing(listing, week_dates, category)
    events_by_category = {
        c: (timing.switch_from == BASE.id) & (timing.switch_to == c) & (timing.relative_week != NEVER)
        for c in categories
    }
    counts = {c: len(np.unique(listing[rows])) for c, rows in events_by_category.items()}
    studies: dict[int, EventStudy] = {}
    wanted = [c for c in categories if counts[c] >= min_switches]
    for c in categories:
        if c not in wanted:
            studies[c] = empty_study(
                c,
                counts[c],
                f"{listings_that_switch(counts[c])} from {BASE.name} to {CATEGORY_NAMES[c]} photos (at least "
                f"{min_switches} are needed), so there is no event study",
            )
    if wanted:
        try:
            counterfactual = untreated_poisson(
                units, x, names, listing, week, product, timing, tol=tol, irls_tol=irls_tol, start=start
            )
        except EstimationFailure as exc:
            for c in wanted:
                studies[c] = empty_study(c, counts[c], f"{UNTREATED_FIT_FAILED}: {exc}")
            wanted = []
        for c in wanted:
            ratios, switches, products = _ratios(
                units,
                counterfactual.scale,
                listing,
                product,
                timing.relative_week,
                timing.untreated,
                events_by_category[c],
            )
            if products < 2:
                studies[c] = empty_study(c, counts[c], "the switching listings sit in fewer than 2 products")
                continue
            studies[c] = summarise(c, ratios, switches, products, level)
    return [studies[c] for c in categories]


def imputation_event_study_ols(
    y: np.ndarray,
    x: np.ndarray,
    names: list[str],
    listing: np.ndarray,
    week: np.ndarray,
    product: np.ndarray,
    timing: SwitchTiming,
    events: np.ndarray,
    *,
    tol: float = 1e-12,
) -> dict[int, float]:
    """Per relative-week bin, the mean of y minus its untreated two-way fit (listing + week + x b): Gardner's did2s.

    The linear counterpart of :func:`event_studies`, with the same timing and bins; its point estimates are what
    pyfixest's ``did2s`` gives with one dummy per bin in the second stage.
    """
    u = timing.untreated
    fit = fit_ols_fe(y[u], x[u], names, [listing[u], week[u]], product[u], model="untreated_ols", tol=tol)
    kept = fit.kept_rows
    yu, xu, lu, wu = y[u][kept], x[u][kept], listing[u][kept], week[u][kept]
    rest = yu - (xu @ fit.params if xu.shape[1] else 0.0)
    listing_codes = factorize(lu)[0]
    week_codes, week_levels = factorize(wu)
    _, coefs = FixedEffects([listing_codes, week_codes], tol=tol).demean(rest)
    gamma = np.full(int(week.max()) + 1, np.nan)
    gamma[week_levels.astype(np.int64)] = coefs[1][:, 0]
    partial = y - gamma[week] - (x @ fit.params if x.shape[1] else 0.0)
    n_listings = int(listing.max()) + 1
    pre = u & np.isfinite(partial)
    sums = np.bincount(listing[pre], weights=partial[pre], minlength=n_listings)
    counts = np.bincount(listing[pre], minlength=n_listings)
    alpha = np.divide(sums, counts, out=np.full(n_listings, np.nan), where=counts > 0)
    residual = partial - alpha[listing]
    rows = events & np.isfinite(residual)
    bins = np.clip(timing.relative_week[rows], -WINDOW, WINDOW)
    frame = pd.DataFrame({"bin": bins, "r": residual[rows]})
    return {int(b): float(v) for b, v in frame.groupby("bin")["r"].mean().items()}
