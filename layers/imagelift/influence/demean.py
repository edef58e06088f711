"""Absorbing fixed effects by alternating projections (the within transformation), with optional weights.

statsmodels has no ``absorb`` option and dummy columns for 5k products need tens of GiB at 1M rows, so every
regression here runs on data from which the product and week means have been swept out. With two or more
factors the sweep is repeated until it stops changing (Gauss-Seidel on the normal equations of the fixed
effects); the fixed-effect coefficients are kept so that IRLS can warm-start the next sweep from the last one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from imagelift.errors import EstimationFailure


class DemeaningDidNotConverge(EstimationFailure, RuntimeError):
    """The alternating projections did not settle within ``maxiter`` sweeps."""


def factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes 0..G-1 for ``values`` (hashing, in order of first appearance) and the levels."""
    values = np.asarray(values)
    if values.dtype.kind in "iu" and len(values):
        dense = _factorize_small_integers(values)
        if dense is not None:
            return dense
    codes, levels = pd.factorize(values, sort=False)
    if (codes < 0).any():
        raise ValueError("fixed-effect columns must not hold missing values")
    return codes.astype(np.intp, copy=False), np.asarray(levels)


def _factorize_small_integers(values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`factorize` of non-negative integers below a few times their count (fixed-effect and cluster codes,
    refactorised on every subset of rows a fit keeps) by indexing instead of hashing: the same codes and levels,
    two to four times faster. None for other integers."""
    low, high = int(values.min()), int(values.max())
    n = len(values)
    if low < 0 or high >= 4 * n + 1024:
        return None
    first = np.full(high + 1, n, dtype=np.intp)
    np.minimum.at(first, values, np.arange(n, dtype=np.intp))  # each value's first row
    present = np.flatnonzero(first < n)
    levels = present[np.argsort(first[present], kind="stable")]
    rank = np.empty(high + 1, dtype=np.intp)
    rank[levels] = np.arange(len(levels), dtype=np.intp)
    return rank[values], levels.astype(values.dtype, copy=False)


def group_sums(codes: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Sums of ``values`` (rows, ...) per code 0..n-1: shape (n, ...), one bincount per column."""
    if values.ndim == 1:
        return np.bincount(codes, weights=values, minlength=n)
    flat = np.asfortranarray(values.reshape(len(values), -1))  # each column contiguous for its bincount
    out = np.empty((n, flat.shape[1]))
    for j in range(flat.shape[1]):
        out[:, j] = np.bincount(codes, weights=flat[:, j], minlength=n)
    return out.reshape((n, *values.shape[1:]))


def drop_singletons(codes: Sequence[np.ndarray]) -> np.ndarray:
    """Mask of rows to keep after repeatedly removing rows alone in a level of some factor.

    A singleton's fixed effect fits it perfectly, so it carries no information about the slopes but would
    still count towards N (fixest and pyfixest drop them too).
    """
    keep = np.ones(len(codes[0]), dtype=bool)
    while True:
        changed = False
        for c in codes:
            counts = np.bincount(c[keep], minlength=int(c.max()) + 1 if len(c) else 0)
            single = keep & (counts[c] == 1)
            if single.any():
                keep &= ~single
                changed = True
        if not changed:
            return keep


# Largest (levels of one factor) x (levels of the other) for which the exact two-way start is computed.
DIRECT_MAX_CELLS = 20_000_000
DIRECT_MAX_SMALL = 2_000


@dataclass
class FixedEffects:
    """A set of categorical factors (integer codes per row) to absorb.

    ``codes`` must be dense: each array holds 0..G-1 with every level present (use :func:`factorize`).

    The answer is always the fixed point of alternating projections (each factor's weighted mean swept out in
    turn until a whole sweep changes nothing by more than ``tol``). With two factors, one of them small (weeks),
    the sweeps start from the exact two-way solution: the small factor's effects solve a G_small x G_small
    system once the large factor is concentrated out, so the sweep that follows only confirms convergence,
    instead of creeping towards it on an unbalanced panel.
    """

    codes: list[np.ndarray]
    tol: float = 1e-10
    maxiter: int = 10_000
    n_levels: list[int] = field(init=False)
    last_sweeps: int = field(init=False, default=0)
    _cell_codes: np.ndarray | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self.codes = [np.ascontiguousarray(c, dtype=np.intp) for c in self.codes]
        self.n_levels = [int(c.max()) + 1 if len(c) else 0 for c in self.codes]

    @classmethod
    def from_columns(cls, *columns: np.ndarray, tol: float = 1e-10, maxiter: int = 10_000) -> FixedEffects:
        return cls([factorize(np.asarray(col))[0] for col in columns], tol=tol, maxiter=maxiter)

    def subset(self, mask: np.ndarray) -> FixedEffects:
        """The same factors on the rows in ``mask``, re-coded densely."""
        return FixedEffects([factorize(c[mask])[0] for c in self.codes], tol=self.tol, maxiter=self.maxiter)

    def _direct_start(self, x: np.ndarray, w: np.ndarray, group_w: list[np.ndarray]) -> list[np.ndarray] | None:
        if len(self.codes) != 2:
            return None
        big, small = (0, 1) if self.n_levels[0] >= self.n_levels[1] else (1, 0)
        g_big, g_small = self.n_levels[big], self.n_levels[small]
        if g_small > DIRECT_MAX_SMALL or g_big * g_small > DIRECT_MAX_CELLS:
            return None
        c_big, c_small = self.codes[big], self.codes[small]
        w_big, w_small = group_w[big], group_w[small]
        if self._cell_codes is None:
            self._cell_codes = c_big * g_small + c_small
        cell = np.bincount(self._cell_codes, weights=w, minlength=g_big * g_small).reshape(g_big, g_small)
        share = cell / w_big[:, None]
        system = np.diag(w_small) - cell.T @ share  # weighted within-big cross-product of the small dummies
        k = x.shape[1]
        sums_big = np.empty((g_big, k))
        rhs = np.empty((g_small, k))
        for j in range(k):
            wx = w * x[:, j]
            sums_big[:, j] = np.bincount(c_big, weights=wx, minlength=g_big)
            rhs[:, j] = np.bincount(c_small, weights=wx, minlength=g_small)
        rhs -= share.T @ sums_big
        # singular by construction (one level per connected set is free): least squares picks one solution,
        # and every solution gives the same residuals
        gamma = np.linalg.lstsq(system, rhs, rcond=None)[0]
        alpha = (sums_big - cell @ gamma) / w_big[:, None]
        coefs: list[np.ndarray] = [np.empty(0), np.empty(0)]
        coefs[big], coefs[small] = alpha, gamma
        return coefs

    def demean(
        self,
        x: np.ndarray,
        weights: np.ndarray | None = None,
        start: list[np.ndarray] | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Residuals of each column of ``x`` (n, k) on all factors, by weighted least squares.

        Returns the residuals and the fixed-effect coefficients (one (G_f, k) array per factor), which can be
        passed back as ``start`` when the same columns are demeaned again with slightly different weights.
        """
        x = np.asarray(x, dtype=np.float64)
        one_dim = x.ndim == 1
        if one_dim:
            x = x[:, None]
        x = np.asfortranarray(x)  # column by column below: keep each column contiguous
        n, k = x.shape
        w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
        group_w = [np.bincount(c, weights=w, minlength=g) for c, g in zip(self.codes, self.n_levels, strict=True)]
        coefs = self._direct_start(x, w, group_w)
        if coefs is None:
            coefs = [s.copy() for s in start] if start is not None else [np.zeros((g, k)) for g in self.n_levels]
        out = np.empty_like(x, order="F")
        self.last_sweeps = 0
        for j in range(k):
            resid = x[:, j].copy()
            for c, coef in zip(self.codes, coefs, strict=True):
                resid -= coef[c, j]
            scale = 1.0 + float(np.max(np.abs(x[:, j]))) if n else 1.0
            largest_change = 0.0
            for sweep in range(1, self.maxiter + 1):
                largest_change = 0.0
                for c, coef, gw, g in zip(self.codes, coefs, group_w, self.n_levels, strict=True):
                    # weighted mean of the current residual within each level of this factor
                    delta = np.bincount(c, weights=w * resid, minlength=g) / gw
                    coef[:, j] += delta
                    resid -= delta[c]
                    largest_change = max(largest_change, float(np.max(np.abs(delta))) if g else 0.0)
                self.last_sweeps = max(self.last_sweeps, sweep)
                if largest_change <= self.tol * scale:
                    break
            else:
                raise DemeaningDidNotConverge(
                    f"fixed effects did not converge in {self.maxiter} sweeps (last change {largest_change:.3g})"
                )
            out[:, j] = resid
        return (out[:, 0] if one_dim else out), coefs
