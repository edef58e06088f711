"""Intervals for a PPML coefficient when a few products carry most of the weight, and a leave-one-product-out check.

**Wild restricted score bootstrap** (Kline and Santos 2012, in the restricted form MacKinnon and Webb recommend for
few or unequal clusters). Clustered standard errors rest on each product's score estimating its own variance; when
three products carry most of the Poisson weight, those three scores are all there is, CRV1 is far too small and the
jackknife (CR3) still somewhat small. The restricted bootstrap imposes the value under test, b0, on the scores, so
the variance it compares against is the one the data would have if b0 were true, and inverts the test into an
interval: the interval holds every b0 the bootstrap does not reject at the report's level.

Everything is linear in b0 around the converged fit, so nothing is refitted: with H the Hessian (the bread's
inverse), H_g and s_g each product's share of it and its score, the one-step restricted estimate moves the other
coefficients by -H^-1 e_j (b_hat - b0) / (H^-1)_jj, and product g's restricted score is s_g + (b_hat - b0) c_g with
c_g = H_g (H^-1)_{.j} / (H^-1)_jj. Each draw multiplies the restricted scores by a product's weight w_g, takes the
implied coefficient change H^-1 sum w_g s_g^0 and its clustered standard error from the re-centred scores
w_g s_g^0 - H_g H^-1 sum w_h s_h^0 (exactly the wild cluster restricted bootstrap of the converged IRLS step, which
is a weighted least-squares fit). The statistic compared is the usual t = (b_hat - b0) / se_CRV1; the small-sample
factors cancel in the ratio. Webb's six-point weights, not Rademacher's two: with five or so products that matter,
two-point weights give only 2^5 distinct draws and a lumpy p-value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from imagelift.influence.estimation import FitResult

WEBB_WEIGHTS = np.array([-math.sqrt(1.5), -1.0, -math.sqrt(0.5), math.sqrt(0.5), 1.0, math.sqrt(1.5)])
RADEMACHER_WEIGHTS = np.array([-1.0, 1.0])
WEIGHT_SETS = {"webb": WEBB_WEIGHTS, "rademacher": RADEMACHER_WEIGHTS}
SEARCH_STEPS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
"""Multiples of the CRV1 standard error (beyond the CRV1 bound) searched for the end of the interval."""
BISECTIONS = 40
CHUNK_DRAWS = 256
"""Draws held in memory at once (draws x products doubles per array)."""


@dataclass(frozen=True)
class BootstrapInterval:
    """The bootstrap's interval for one coefficient, in log points; an end is None when no value is rejected."""

    low: float | None
    high: float | None
    p_value: float
    """The bootstrap p-value of no effect (b0 = 0)."""
    draws: int
    weights: str
    probability_above_zero: float | None = None
    """One minus the one-sided bootstrap p-value of no effect against a positive one: the bootstrap's counterpart of
    Phi(estimate / std_err)."""


@dataclass(frozen=True)
class _Pieces:
    """Per-product quantities of one coefficient, from which every restricted draw is a few matrix products."""

    estimate: float
    u: np.ndarray  # (G,) each product's unrestricted influence on the coefficient
    v: np.ndarray  # (G,) how that influence moves per unit of (b_hat - b0)
    scores: np.ndarray  # (G, k) unrestricted scores s_g
    shifts: np.ndarray  # (G, k) c_g
    bread_column: np.ndarray  # (k,) (H^-1)_{.j}
    projections: np.ndarray  # (G, k) (H^-1 H_g H^-1)_{j.}


def _pieces(fit: FitResult, j: int) -> _Pieces | None:
    if fit.influence is None or fit.cluster_hessians is None:
        return None
    hessian = fit.cluster_hessians.sum(axis=0)
    try:
        bread = np.linalg.inv(hessian)
    except np.linalg.LinAlgError:
        return None
    column = bread[:, j]
    if not column[j] > 0:
        return None
    scores = fit.influence @ hessian
    shifts = fit.cluster_hessians @ column / column[j]  # (G, k)
    projections = (fit.cluster_hessians @ column) @ bread  # (G, k): row j of H^-1 H_g H^-1 (symmetric)
    return _Pieces(
        estimate=float(fit.params[j]),
        u=fit.influence[:, j].copy(),
        v=shifts @ column,
        scores=scores,
        shifts=shifts,
        bread_column=column,
        projections=projections,
    )


class _RestrictedTest:
    """p(b0) for one coefficient, the bootstrap weights drawn once and reused for every b0."""

    def __init__(self, pieces: _Pieces, weights: np.ndarray) -> None:
        self.pieces = pieces
        self.chunks = []
        for start in range(0, len(weights), CHUNK_DRAWS):
            w = weights[start : start + CHUNK_DRAWS]
            t = w @ pieces.scores  # (B, k)
            c = w @ pieces.shifts
            self.chunks.append(
                (
                    w,
                    t @ pieces.bread_column,
                    c @ pieces.bread_column,
                    t @ pieces.projections.T,
                    c @ pieces.projections.T,
                )
            )
        self.observed_scale = math.sqrt(float(np.sum(pieces.u**2)))

    def p_value(self, b0: float, *, one_sided: bool = False) -> float:
        """Share of draws whose |t| reaches the data's; with ``one_sided``, whose signed t reaches it."""
        p = self.pieces
        delta = p.estimate - b0
        if self.observed_scale <= 0:
            return float("nan")
        observed = (delta if one_sided else abs(delta)) / self.observed_scale
        influence = p.u + delta * p.v
        exceed = total = 0
        for w, n_t, n_c, q_t, q_c in self.chunks:
            numerator = n_t + delta * n_c
            resid = w * influence - q_t - delta * q_c
            scale = np.sqrt(np.sum(resid**2, axis=1))
            signed = numerator if one_sided else np.abs(numerator)
            with np.errstate(divide="ignore", invalid="ignore"):
                stat = signed / scale
            # a draw with no spread at all: its t is infinite (with the numerator's sign), or 0 when that is 0 too
            stat = np.where(scale > 0, stat, np.sign(signed) * np.inf)
            stat = np.nan_to_num(stat, nan=0.0, posinf=np.inf, neginf=-np.inf)
            exceed += int(np.sum(stat >= observed - 1e-12 * max(observed, 1.0)))
            total += len(w)
        return exceed / total


def _bound(test: _RestrictedTest, estimate: float, se: float, alpha: float, direction: int) -> float | None:
    """The end of the interval on one side: where p(b0) first falls below alpha, or None within the search."""
    inside = estimate
    outside = None
    for step in SEARCH_STEPS:
        candidate = estimate + direction * step * se
        if test.p_value(candidate) < alpha:
            outside = candidate
            break
        inside = candidate
    if outside is None:
        return None
    for _ in range(BISECTIONS):
        middle = (inside + outside) / 2
        if test.p_value(middle) < alpha:
            outside = middle
        else:
            inside = middle
        if abs(outside - inside) <= 1e-4 * se:
            break
    return (inside + outside) / 2


def draw_weights(n_clusters: int, draws: int, seed: int, kind: str = "webb") -> np.ndarray:
    """(draws, n_clusters) bootstrap weights, the same for every coefficient and every b0 of one report."""
    rng = np.random.default_rng(seed)
    values = WEIGHT_SETS[kind]
    return values[rng.integers(0, len(values), size=(draws, n_clusters))]


def restricted_interval(
    fit: FitResult, name: str, level: float, *, draws: int, seed: int, kind: str = "webb"
) -> BootstrapInterval | None:
    """The wild restricted score bootstrap interval and p-value of coefficient ``name``, or None if it cannot be had."""
    j = fit.names.index(name)
    pieces = _pieces(fit, j)
    if pieces is None or fit.n_clusters < 2:
        return None
    test = _RestrictedTest(pieces, draw_weights(fit.n_clusters, draws, seed, kind))
    se = test.observed_scale
    if se <= 0:
        return None
    alpha = 1 - level
    low = _bound(test, pieces.estimate, se, alpha, -1)
    high = _bound(test, pieces.estimate, se, alpha, +1)
    return BootstrapInterval(
        low=low,
        high=high,
        p_value=test.p_value(0.0),
        draws=draws,
        weights=kind,
        probability_above_zero=1.0 - test.p_value(0.0, one_sided=True),
    )


def unrestricted_interval(fit: FitResult, name: str, level: float, *, draws: int, seed: int, kind: str = "webb"):
    """Percentile-t interval from the unrestricted score bootstrap (the WCU variant), for comparison.

    Draws perturb the scores at the estimate itself; each draw's t is its coefficient change over its own
    re-centred clustered standard error. Cheaper (no search) but known to be too narrow with few clusters.
    """
    j = fit.names.index(name)
    pieces = _pieces(fit, j)
    if pieces is None:
        return None
    weights = draw_weights(fit.n_clusters, draws, seed, kind)
    t = weights @ pieces.scores
    numerator = t @ pieces.bread_column
    resid = weights * pieces.u - t @ pieces.projections.T
    scale = np.sqrt(np.sum(resid**2, axis=1))
    stats = np.abs(numerator[scale > 0] / scale[scale > 0])
    crit = float(np.quantile(stats, level))
    se = math.sqrt(float(np.sum(pieces.u**2)))
    return BootstrapInterval(
        low=pieces.estimate - crit * se,
        high=pieces.estimate + crit * se,
        p_value=float(np.mean(stats >= abs(pieces.estimate) / se)),
        draws=draws,
        weights=kind,
    )


def leave_one_out_shifts(fit: FitResult) -> np.ndarray | None:
    """(G, k): b_(g) - b, the change of every coefficient when product g leaves (one-step, at the fit's weights)."""
    if fit.influence is None or fit.cluster_hessians is None:
        return None
    hessian = fit.cluster_hessians.sum(axis=0)
    scores = fit.influence @ hessian
    try:
        return -np.linalg.solve(hessian[None, :, :] - fit.cluster_hessians, scores[:, :, None])[:, :, 0]
    except np.linalg.LinAlgError:
        return None
