"""Category effects corrected for the classifier's mistakes, from its confusion matrix.

A photo the classifier calls ``model`` is sometimes a worn or product shot, so the listing-weeks labelled model
mix in other photos' sales and the measured lift is pulled towards zero (attenuation). With K[t, j] the share of
photos of true category t that the classifier calls j (the confusion matrix's rows, normalised) and q_j the share
of listing-weeks labelled j, the true shares are pi = (K')^-1 q and a listing-week labelled j is truly t with
probability M[j, t] = K[t, j] pi_t / q_j. If the mistakes do not depend on sales (nondifferential), expected sales
under label j are sum_t M[j, t] theta_t times the base, with theta_t = exp(true lift of t) and theta_base = 1, so
each measured rate ratio r_j = exp(b_j) satisfies sum_t M[j, t] theta_t = r_j sum_t M[base, t] theta_t: a linear
system in the true lifts (method of moments; the matrix method of misclassified regressors). The interval comes from
draws: the measured coefficients from their clustered covariance (normal), each row of the confusion matrix from a
Dirichlet around its counts (the photos the matrix was counted on are a sample too), the correction redone per
draw, and the percentiles taken. Seeded, so the same data give the same report.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from imagelift.config import ReportConfig
from imagelift.influence.report import Effect, Misclassification, Report
from imagelift.records.categories import BASE, CATEGORY_IDS, CATEGORY_NAMES, EFFECT_CATEGORIES

METHOD = (
    "method of moments: the measured rate ratios of each photo type are mixtures of the true ones, mixed by the "
    "chance that a listing-week with that label truly shows each type (from the confusion matrix and the shares of "
    "labels); the mistakes are taken not to depend on sales. Interval: percentiles of {draws} draws of the measured "
    "coefficients (clustered covariance) and of the confusion matrix (Dirichlet around its counts)"
)
SOURCE_LABELLED = "labelled photos (imagelift evaluate --json)"
SOURCE_CORRECTIONS = (
    "photos people corrected (imagelift review --confusion): the photos people chose to look at, not a sample of "
    "the catalogue, so the matrix likely overstates the classifier's mistakes"
)
ORDER = tuple(sorted(CATEGORY_IDS))
"""Rows and columns of the confusion matrix: categories 1, 2, 3."""


class ConfusionError(ValueError):
    """The confusion JSON cannot be used: not the shape ``imagelift evaluate --json`` writes, or no photos."""


@dataclass(frozen=True)
class Confusion:
    """Counts of photos by true category (rows) and the classifier's category (columns), and where they came from."""

    counts: np.ndarray
    location: str
    source: str

    @property
    def photos(self) -> int:
        return int(self.counts.sum())


def read_confusion(data: bytes | str | Mapping[str, Any], location: str) -> Confusion:
    """The confusion matrix of ``imagelift evaluate --json`` or ``imagelift review --confusion`` output."""
    try:
        parsed = json.loads(data) if isinstance(data, bytes | str) else data
    except ValueError as exc:
        raise ConfusionError(f"{location} is not JSON: {exc}") from exc
    try:
        matrix = parsed["confusion"]["matrix"]
        counts = np.array(matrix, dtype=np.float64)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfusionError(f"{location} has no confusion.matrix (rows true 1-3, columns predicted 1-3)") from exc
    if counts.shape != (len(ORDER), len(ORDER)) or np.any(counts < 0) or not np.all(np.isfinite(counts)):
        raise ConfusionError(f"{location}: confusion.matrix must be 3 x 3 non-negative counts, not {matrix!r}")
    if np.any(counts.sum(axis=1) == 0):
        missing = [CATEGORY_NAMES[ORDER[i]] for i in np.flatnonzero(counts.sum(axis=1) == 0)]
        raise ConfusionError(f"{location}: no labelled photos of {', '.join(missing)}, so its mistakes are unknown")
    source = SOURCE_CORRECTIONS if "by" in parsed else SOURCE_LABELLED
    return Confusion(counts=counts, location=location, source=source)


def _index(category: int) -> int:
    return ORDER.index(category)


def _mixing(label_counts: np.ndarray, classification: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per group (rows of ``label_counts``): M[g, j, t] = P(truly t | labelled j) and the listing-weeks per label."""
    counts = np.atleast_2d(np.asarray(label_counts, dtype=np.float64))
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    try:
        true_shares = shares @ np.linalg.inv(classification)  # pi' K = q'
    except np.linalg.LinAlgError:
        return np.full((len(counts), 3, 3), np.nan), counts
    true_shares = np.clip(true_shares, 0.0, None)
    norm = true_shares.sum(axis=1, keepdims=True)
    true_shares = np.divide(true_shares, norm, out=np.zeros_like(true_shares), where=norm > 0)
    joint = true_shares[:, :, None] * classification[None, :, :]  # [g, t, j]
    labelled = joint.sum(axis=1)  # [g, j]
    with np.errstate(divide="ignore", invalid="ignore"):
        mixing = np.transpose(joint, (0, 2, 1)) / labelled[:, :, None]
    return mixing, counts


def correct_lifts(
    measured: Mapping[int, float], label_counts: np.ndarray, classification: np.ndarray
) -> dict[int, float] | None:
    """True log lifts from measured ones (log rate ratios against the base), or None when the system has no answer.

    ``label_counts`` (groups x 3, categories 1-3): listing-weeks per label, one row for the whole catalogue (the
    report's choice) or one per group; each group's labels are mixed by its own composition and its equations
    count with the weight n_j n_base / (n_j + n_base) of its comparison of label j with the base.
    ``classification``: rows true category, columns the classifier's, each row summing to one. ``measured`` holds
    every effect category (solved together).
    """
    mixing, counts = _mixing(label_counts, classification)
    effect_ids = [c.id for c in EFFECT_CATEGORIES]
    base = _index(BASE.id)
    system = np.zeros((len(effect_ids), len(effect_ids)))
    rhs = np.zeros(len(effect_ids))
    for row, j in enumerate(effect_ids):
        n_j, n_base = counts[:, _index(j)], counts[:, base]
        weight = np.divide(n_j * n_base, n_j + n_base, out=np.zeros_like(n_j), where=(n_j + n_base) > 0)
        usable = (weight > 0) & np.all(np.isfinite(mixing[:, _index(j), :]), axis=1)
        usable &= np.all(np.isfinite(mixing[:, base, :]), axis=1)
        if not usable.any():
            return None
        w = weight[usable]
        m_j, m_base = mixing[usable, _index(j), :], mixing[usable, base, :]
        r = math.exp(measured[j])
        for col, t in enumerate(effect_ids):
            system[row, col] = float(w @ (m_j[:, _index(t)] - r * m_base[:, _index(t)]))
        rhs[row] = float(w @ (r * m_base[:, base] - m_j[:, base]))
    try:
        theta = np.linalg.solve(system, rhs)
    except np.linalg.LinAlgError:
        return None
    if np.any(theta <= 0) or not np.all(np.isfinite(theta)):
        return None
    return {c: float(math.log(v)) for c, v in zip(effect_ids, theta, strict=True)}


def _classification(counts: np.ndarray) -> np.ndarray:
    return counts / counts.sum(axis=1, keepdims=True)


def corrected_effects(
    effects: Sequence[Effect],
    covariance: np.ndarray,
    label_counts: np.ndarray,
    confusion: Confusion,
    config: ReportConfig,
) -> tuple[tuple[Effect, ...], str | None]:
    """Per effect category the corrected lift with its interval; ``effects`` and ``covariance`` in the same order.

    Returns the corrected effects (empty ones with a note where no correction exists) and a note on the draws.
    """
    effect_ids = [c.id for c in EFFECT_CATEGORIES]
    by_category = {e.category: e for e in effects}
    empty = tuple(
        Effect(c, CATEGORY_NAMES[c], note="not corrected: the effect needs every photo type's measured lift")
        for c in effect_ids
    )
    if any(by_category.get(c) is None or by_category[c].estimate is None for c in effect_ids):
        return empty, None
    measured = np.array([by_category[c].estimate for c in effect_ids])
    point = correct_lifts(dict(zip(effect_ids, measured, strict=True)), label_counts, _classification(confusion.counts))
    if point is None:
        note = (
            "the confusion matrix and the shares of labels admit no correction (the classifier's mistakes are too "
            "large for these lifts to come from any true ones)"
        )
        return tuple(replace(e, note=note) for e in empty), None
    rng = np.random.default_rng(config.bootstrap_seed)
    draws = config.bootstrap_draws
    coefficient_draws = rng.multivariate_normal(measured, covariance, size=draws, method="cholesky")
    solved = []
    for b in coefficient_draws:
        rows = np.vstack([rng.dirichlet(row + 0.5) for row in confusion.counts])
        result = correct_lifts(dict(zip(effect_ids, b, strict=True)), label_counts, rows)
        if result is not None:
            solved.append([result[c] for c in effect_ids])
    failed = draws - len(solved)
    sample = np.array(solved) if solved else np.empty((0, len(effect_ids)))
    alpha = 1 - config.confidence
    out = []
    for k, category in enumerate(effect_ids):
        estimate = point[category]
        if len(sample) < 0.5 * draws:
            low = high = None
        else:
            low, high = (float(v) for v in np.quantile(sample[:, k], [alpha / 2, 1 - alpha / 2]))
        out.append(
            Effect(
                category,
                CATEGORY_NAMES[category],
                estimate=estimate,
                std_err=float(np.std(sample[:, k], ddof=1)) if len(sample) > 1 else None,
                ci_low=low,
                ci_high=high,
                p_value=None,
                effect_pct=100 * math.expm1(estimate),
                effect_pct_ci=None if low is None else (100 * math.expm1(low), 100 * math.expm1(high)),
                effect_basis="corrected for the classifier's mistakes",
                probability_above_zero=float(np.mean(sample[:, k] > 0)) if len(sample) else None,
                note=None if low is not None else "too few draws admitted a correction for an interval",
            )
        )
    note = (
        f"{failed} of {draws} draws admitted no correction and were left out; the interval is conditional on a "
        "correction existing"
        if failed
        else None
    )
    return tuple(out), note


def misclassification_summary(
    report: Report,
    covariance: np.ndarray | None,
    names: Sequence[str],
    confusion: Confusion,
    config: ReportConfig,
) -> Misclassification:
    """The report's misclassification section: the matrix, its source and the corrected effects.

    The labels' mix is the catalogue's (listing-weeks per label over every product). Mixing each product by its
    own labels instead over-corrected in the Monte Carlo (bias +0.010 and +0.016 log points for model and worn
    against -0.007 and +0.001 with the catalogue's mix, 40 data sets, planted +20% and +10%): a product's few
    listings make its true shares noisy and often negative before clipping.
    """
    wanted = [f"category_{c.name}" for c in EFFECT_CATEGORIES]
    shares = np.array([[float(report.counts.listing_weeks_by_category.get(CATEGORY_NAMES[c], 0)) for c in ORDER]])
    if covariance is None or any(name not in names for name in wanted):
        effects = tuple(
            Effect(c.id, c.name, note="not corrected: the headline has no estimate for every photo type")
            for c in EFFECT_CATEGORIES
        )
        note = None
    else:
        index = [list(names).index(name) for name in wanted]
        effects, note = corrected_effects(report.effects, covariance[np.ix_(index, index)], shares, confusion, config)
    return Misclassification(
        source=confusion.source,
        location=confusion.location,
        photos=confusion.photos,
        matrix=tuple(tuple(int(v) for v in row) for row in confusion.counts),
        effects=effects,
        method=METHOD.format(draws=config.bootstrap_draws),
        note=note,
    )


def misclassification_warnings(summary: Misclassification, report: Report) -> list[str]:
    """A sentence per category whose corrected lift differs from the measured one by more than a point."""
    out = []
    measured = {e.category: e for e in report.effects}
    for effect in summary.effects:
        before = measured.get(effect.category)
        if effect.effect_pct is None or before is None or before.effect_pct is None:
            continue
        if abs(effect.effect_pct - before.effect_pct) < 1.0:
            continue
        ci = (
            ""
            if effect.effect_pct_ci is None
            else f" ({report.confidence:.0%} range {effect.effect_pct_ci[0]:+.1f}% to {effect.effect_pct_ci[1]:+.1f}%)"
        )
        out.append(
            f"The classifier's mistakes (confusion matrix of {summary.photos} photos from {summary.location}) dilute "
            f"the {effect.category_name} lift: corrected for them it is {effect.effect_pct:+.1f}%{ci}, against "
            f"{before.effect_pct:+.1f}% measured on the labels as they are."
        )
    return out


def with_misclassification(report: Report, fit: Any, confusion: Confusion | None, config: ReportConfig) -> Report:
    """``report`` with the corrected effects and their warnings, given the headline fit; unchanged without a matrix."""
    if confusion is None:
        return report
    covariance = None if fit is None else fit.cov
    names = [] if fit is None else fit.names
    summary = misclassification_summary(report, covariance, names, confusion, config)
    return replace(
        report,
        misclassification=summary,
        warnings=(*report.warnings, *misclassification_warnings(summary, report)),
    )
