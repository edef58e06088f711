"""Absorbing fixed effects by alternating projections (the within transformation), with optional weights.

statsmodels has no ``absorb`` option and dummy columns for 5k products need tens of GiB at 1M rows, so every
regression here runs on data from which the product and week means have been swept out. With two or more
factors the sweep is repeated until it stops changing (Gauss-Seidel on the normal equations of the fixed
effects); the fixed-effect coefficients are kept so that IRLS can warm-start the next sweep from the last one.
Two factors, one of them small (listings and weeks), are solved exactly instead, and swept only when that
solution is not already the fixed point to ``tol`` (see :class:`FixedEffects`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from imagelift.errors import EstimationFailure

if TYPE_CHECKING:  # imported where first used: importing the report service should not load scipy.sparse
    from scipy import sparse


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
    the exact two-way solution is computed instead: the small factor's effects solve a G_small x G_small
    system once the large factor is concentrated out. When the weighted mean residual of every level is then
    within ``tol`` (what a sweep would change), it is the fixed point and no sweep runs; otherwise the sweeps
    start from it, instead of creeping towards the answer on an unbalanced panel.
    """

    codes: list[np.ndarray]
    tol: float = 1e-10
    maxiter: int = 10_000
    n_levels: list[int] = field(init=False)
    last_sweeps: int = field(init=False, default=0)
    _cell_codes: np.ndarray | None = field(init=False, default=None, repr=False)
    _dummy_matrix: sparse.csr_matrix | None = field(init=False, default=None, repr=False)
    _weighted_dummy_matrix: sparse.csr_matrix | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self.codes = [np.ascontiguousarray(c, dtype=np.intp) for c in self.codes]
        self.n_levels = [int(c.max()) + 1 if len(c) else 0 for c in self.codes]

    @classmethod
    def from_columns(cls, *columns: np.ndarray, tol: float = 1e-10, maxiter: int = 10_000) -> FixedEffects:
        return cls([factorize(np.asarray(col))[0] for col in columns], tol=tol, maxiter=maxiter)

    def subset(self, mask: np.ndarray) -> FixedEffects:
        """The same factors on the rows in ``mask``, re-coded densely."""
        return FixedEffects([factorize(c[mask])[0] for c in self.codes], tol=self.tol, maxiter=self.maxiter)

    def release_work_arrays(self) -> None:
        """Forget the row-level arrays kept between calls (the dummies, the cell codes); a later call rebuilds them."""
        self._cell_codes = self._dummy_matrix = self._weighted_dummy_matrix = None

    def _two_way(self) -> tuple[int, int] | None:
        """(big, small): the factors' positions when the exact two-way solution applies, else None."""
        if len(self.codes) != 2:
            return None
        big, small = (0, 1) if self.n_levels[0] >= self.n_levels[1] else (1, 0)
        g_big, g_small = self.n_levels[big], self.n_levels[small]
        if g_small > DIRECT_MAX_SMALL or g_big * g_small > DIRECT_MAX_CELLS:
            return None
        return big, small

    def _dummies(self, big: int, small: int) -> sparse.csr_matrix:
        """The rows' dummies of both factors, (n, G_big + G_small) with two ones a row, built once: one sparse
        product then sums every column per level of both factors in a single pass over the rows (a bincount per
        column and factor reads them 2k times), and another puts the fitted effects back on the rows."""
        if self._dummy_matrix is None:
            from scipy import sparse

            g_big = self.n_levels[big]
            n = len(self.codes[big])
            index_type = np.int32 if 2 * n + g_big + self.n_levels[small] < np.iinfo(np.int32).max else np.int64
            indices = np.empty(2 * n, dtype=index_type)
            indices[0::2] = self.codes[big]
            indices[1::2] = self.codes[small]
            indices[1::2] += g_big
            indptr = np.arange(0, 2 * n + 1, 2, dtype=index_type)
            self._dummy_matrix = sparse.csr_matrix(
                (np.ones(2 * n), indices, indptr), shape=(n, g_big + self.n_levels[small])
            )
        return self._dummy_matrix

    def _weighted_dummies(self, dummies: sparse.csr_matrix, w: np.ndarray) -> sparse.csr_matrix:
        """:meth:`_dummies` with each row's two ones replaced by its weight (the same structure, its values
        overwritten on every call: the weights change with every IRLS step, the rows' levels do not)."""
        if self._weighted_dummy_matrix is None:
            from scipy import sparse

            self._weighted_dummy_matrix = sparse.csr_matrix(
                (np.empty_like(dummies.data), dummies.indices, dummies.indptr), shape=dummies.shape
            )
        data = self._weighted_dummy_matrix.data
        data[0::2] = w
        data[1::2] = w
        return self._weighted_dummy_matrix

    def _direct(
        self, x: np.ndarray, w: np.ndarray, big: int, small: int
    ) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray | None]:
        """The exact two-way solution: the fixed-effect coefficients, each factor's summed weights, and the
        residuals when the solution is already the fixed point of the sweeps (every level's weighted mean
        residual within ``tol``), else None.

        The small factor's effects solve the G_small x G_small system left once the large factor is concentrated
        out (a Schur complement, one solve for every column), the large factor's follow level by level. Both
        levels' weighted mean residuals come from the level sums without touching the rows again, which is what a
        sweep would compute: when they are within ``tol`` the sweep would only confirm the answer, so it is
        skipped; otherwise (a system too ill-conditioned to solve exactly) the sweeps start from it.
        """
        g_big, g_small = self.n_levels[big], self.n_levels[small]
        c_big, c_small = self.codes[big], self.codes[small]
        dummies = self._dummies(big, small)
        n, k = x.shape
        x = np.ascontiguousarray(x)  # rows contiguous: the sparse products walk the rows
        level_w = dummies.T @ w
        sums = self._weighted_dummies(dummies, w).T @ x  # the weights in the matrix: no weighted copy of x
        w_big, w_small = level_w[:g_big], level_w[g_big:]
        sums_big, sums_small = sums[:g_big], sums[g_big:]
        group_w: list[np.ndarray] = [np.empty(0), np.empty(0)]
        group_w[big], group_w[small] = w_big, w_small
        if self._cell_codes is None:
            self._cell_codes = c_big * g_small + c_small
        cell = np.bincount(self._cell_codes, weights=w, minlength=g_big * g_small).reshape(g_big, g_small)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = cell / w_big[:, None]
        system = np.diag(w_small) - cell.T @ share  # weighted within-big cross-product of the small dummies
        rhs = sums_small - share.T @ sums_big
        coefs: list[np.ndarray] = [np.empty(0), np.empty(0)]
        if not (np.isfinite(system).all() and np.isfinite(rhs).all()):  # a level of zero weight: sweep
            coefs[big], coefs[small] = np.zeros((g_big, k)), np.zeros((g_small, k))
            return coefs, group_w, None
        # singular by construction (one level per connected set is free): least squares picks one solution,
        # and every solution gives the same residuals
        gamma = np.linalg.lstsq(system, rhs, rcond=None)[0]
        alpha = (sums_big - cell @ gamma) / w_big[:, None]
        coefs[big], coefs[small] = alpha, gamma
        # what the first sweep would move each level by: the weighted mean residual per level
        move_big = (sums_big - w_big[:, None] * alpha - cell @ gamma) / w_big[:, None]
        move_small = (sums_small - cell.T @ alpha - w_small[:, None] * gamma) / w_small[:, None]
        largest = np.maximum(_column_max_abs(move_big), _column_max_abs(move_small))
        # the sweeps' tolerance is tol * (1 + max |x|) per column; the largest weighted level mean is a lower bound
        # of max |x| that costs nothing (a pass over the rows costs as much as the sums), so passing with it passes
        with np.errstate(invalid="ignore", divide="ignore"):
            level_means = np.maximum(
                _column_max_abs(sums_big / w_big[:, None]), _column_max_abs(sums_small / w_small[:, None])
            )
        if not np.all(largest <= self.tol * (1.0 + level_means)):
            scale = 1.0 + np.array([max(float(x[:, j].max()), -float(x[:, j].min())) if n else 0.0 for j in range(k)])
            if not np.all(largest <= self.tol * scale):
                return coefs, group_w, None
        resid = dummies @ np.vstack([alpha, gamma])  # each row's alpha + gamma, (n, k)
        np.subtract(x, resid, out=resid)
        return coefs, group_w, resid

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
        n, k = x.shape
        w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
        self.last_sweeps = 0
        two_way = self._two_way()
        if two_way is not None:
            coefs, group_w, resid = self._direct(x, w, *two_way)
            if resid is not None:
                return (resid[:, 0] if one_dim else resid), coefs
        x = np.asfortranarray(x)  # column by column below: keep each column contiguous
        if two_way is None:
            group_w = [np.bincount(c, weights=w, minlength=g) for c, g in zip(self.codes, self.n_levels, strict=True)]
            coefs = [s.copy() for s in start] if start is not None else [np.zeros((g, k)) for g in self.n_levels]
        out = np.empty_like(x, order="F")
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


def _column_max_abs(values: np.ndarray) -> np.ndarray:
    """Largest absolute value of each column (NaN if any is: a level of zero weight), 0 for no rows."""
    return np.max(np.abs(values), axis=0) if len(values) else np.zeros(values.shape[1])
