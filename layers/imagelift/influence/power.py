"""How large a lift each comparison could detect at this data size, and how much more data a given lift needs.

For a two-sided test at level alpha with power 1 - beta, a coefficient with standard error s is detected when
its true value is at least (t_{1-alpha/2} + t_{1-beta}) s (t with G-1 degrees of freedom, as the intervals). The
standard error is read off the interval the report shows (half its width over t_{1-alpha/2}), so where the
bootstrap gives the range, the power rests on it too. More data of the kind that identifies the comparison
shrinks s with its square root: products whose listings differ in photo type for the headline, listings that
switch photos for the within-listing fit; so a target lift L needs units_now * (s / s_L)^2 of them, with
s_L = log(1 + L) / (t_{1-alpha/2} + t_{1-beta}). The simulation check is ``bench/report_bench.py power``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from imagelift.config import ReportConfig
from imagelift.influence.distributions import t_ppf
from imagelift.influence.report import Effect, Power, Report

HEADLINE = "headline"
WITHIN_LISTING = "within_listing"
HEADLINE_UNITS = "products with varying photos"
WITHIN_UNITS = "listings that switch photos"


def _quantiles(df: int, level: float, power: float) -> tuple[float, float]:
    df = max(df, 1)
    return float(t_ppf(0.5 + level / 2, df)), float(t_ppf(power, df))


def effective_std_err(effect: Effect, df: int, level: float) -> float | None:
    """The standard error the shown interval implies (its half-width over the critical value)."""
    if effect.ci_low is None or effect.ci_high is None:
        return None
    crit = _quantiles(df, level, 0.5)[0]
    se = (effect.ci_high - effect.ci_low) / (2 * crit)
    return se if math.isfinite(se) and se > 0 else None


def minimum_detectable(std_err: float, df: int, level: float, power: float) -> float:
    """The smallest true coefficient (log points) a two-sided test at ``level`` detects with ``power``."""
    a, b = _quantiles(df, level, power)
    return (a + b) * std_err


def units_needed(std_err: float, units_now: int, target_log: float, df: int, level: float, power: float) -> int | None:
    """Units (products or listings) the target lift needs, the standard error shrinking with their square root."""
    if units_now <= 0 or target_log <= 0:
        return None
    a, b = _quantiles(df, level, power)
    needed_se = target_log / (a + b)
    return math.ceil(units_now * (std_err / needed_se) ** 2)


def _row(comparison: str, effect: Effect, units: str, units_now: int, df: int, config: ReportConfig) -> Power | None:
    if effect.category is None or effect.category_name is None:
        return None
    se = effective_std_err(effect, df, config.confidence)
    target = math.log1p(config.power_lift_pct / 100)
    return Power(
        comparison=comparison,
        category=effect.category,
        category_name=effect.category_name,
        std_err=se,
        minimum_detectable_pct=None
        if se is None
        else 100 * math.expm1(minimum_detectable(se, df, config.confidence, config.power)),
        power=config.power,
        units=units,
        units_now=units_now,
        target_lift_pct=config.power_lift_pct,
        units_needed=None if se is None else units_needed(se, units_now, target, df, config.confidence, config.power),
    )


def power_table(report: Report, config: ReportConfig) -> list[Power]:
    """Per effect category, the headline's and the within-listing fit's detectable lift and data needed."""
    df = report.spec.clusters - 1
    out = []
    for effect in report.effects:
        row = _row(HEADLINE, effect, HEADLINE_UNITS, effect.varying_products or 0, df, config)
        if row is not None and row.std_err is not None:
            out.append(row)
    switching = {i.category: i.listings_switching for i in report.identification}
    if report.within_listing is not None:
        for effect in report.within_listing.effects:
            row = _row(WITHIN_LISTING, effect, WITHIN_UNITS, switching.get(effect.category, 0), df, config)
            if row is not None and row.std_err is not None:
                out.append(row)
    return out


def power_warnings(report: Report, rows: Sequence[Power]) -> list[str]:
    """Where the headline finds no lift but could not have found the target one: absence of evidence, said so."""
    warnings = []
    effects = {e.category: e for e in report.effects}
    for row in rows:
        effect = effects.get(row.category)
        if row.comparison != HEADLINE or effect is None or effect.ci_low is None or effect.ci_high is None:
            continue
        if row.minimum_detectable_pct is None or not effect.ci_low <= 0 <= effect.ci_high:
            continue
        if row.minimum_detectable_pct <= row.target_lift_pct:
            continue
        need = (
            f"; a lift of {row.target_lift_pct:+.0f}% would need about {row.units_needed:,} {row.units} "
            f"(now {row.units_now:,})"
            if row.units_needed
            else ""
        )
        warnings.append(
            f"No {row.category_name} lift is established, but that is not evidence of no lift: at this data size the "
            f"comparison detects (with {row.power:.0%} power) only lifts of {row.minimum_detectable_pct:+.1f}% or "
            f"more{need}."
        )
    return warnings


def power_sentence(row: Power) -> str:
    """The row in words, for the page."""
    what = "listings of one product compared" if row.comparison == HEADLINE else "listings before and after a switch"
    need = ""
    if row.units_needed is not None:
        if row.units_needed <= row.units_now:
            need = f" A lift of {row.target_lift_pct:+.0f}% is within reach of these data."
        else:
            need = (
                f" To detect {row.target_lift_pct:+.0f}% it would need about {row.units_needed:,} {row.units} "
                f"(now {row.units_now:,})."
            )
    return (
        f"{row.category_name} ({what}): the smallest lift detected with {row.power:.0%} power is "
        f"{row.minimum_detectable_pct:+.1f}%.{need}"
    )
