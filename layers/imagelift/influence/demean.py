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


class DemeaningDidNotConverge(RuntimeError):
    """The alternating projections did not settle within ``maxiter`` sweeps."""


def factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes 0..G-1 for ``values`` and the sorted unique levels."""
    levels, codes = np.unique(values, return_inverse=True)
    return codes.astype(np.intp, copy=False), levels


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


@dataclass
class FixedEffects:
    """A set of categorical factors (integer codes per row) to absorb.

    ``codes`` must be dense: each array holds 0..G-1 with every level present (use :func:`factorize`).
    """

    codes: list[np.ndarray]
    tol: float = 1e-10
    maxiter: int = 10_000
    n_levels: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.codes = [np.ascontiguousarray(c, dtype=np.intp) for c in self.codes]
        self.n_levels = [int(c.max()) + 1 if len(c) else 0 for c in self.codes]

    @classmethod
    def from_columns(cls, *columns: np.ndarray, tol: float = 1e-10, maxiter: int = 10_000) -> FixedEffects:
        return cls([factorize(np.asarray(col))[0] for col in columns], tol=tol, maxiter=maxiter)

    def subset(self, mask: np.ndarray) -> FixedEffects:
        """The same factors on the rows in ``mask``, re-coded densely."""
        return FixedEffects([factorize(c[mask])[0] for c in self.codes], tol=self.tol, maxiter=self.maxiter)

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
        group_w = [np.bincount(c, weights=w, minlength=g) for c, g in zip(self.codes, self.n_levels, strict=True)]
        coefs = [s.copy() for s in start] if start is not None else [np.zeros((g, k)) for g in self.n_levels]
        out = np.empty_like(x)
        for j in range(k):
            col = x[:, j]
            fitted = np.zeros(n)
            for c, coef in zip(self.codes, coefs, strict=True):
                fitted += coef[c, j]
            scale = 1.0 + float(np.max(np.abs(col))) if n else 1.0
            for _sweep in range(self.maxiter):
                largest_change = 0.0
                for f, (c, coef, gw) in enumerate(zip(self.codes, coefs, group_w, strict=True)):
                    # residual of this column on the other factors, averaged within this factor's levels
                    partial = col - fitted + coef[c, j]
                    new = np.bincount(c, weights=w * partial, minlength=self.n_levels[f]) / gw
                    delta = new - coef[:, j]
                    fitted += delta[c]
                    coef[:, j] = new
                    largest_change = max(largest_change, float(np.max(np.abs(delta))) if len(delta) else 0.0)
                if len(self.codes) == 1 or largest_change <= self.tol * scale:
                    break
            else:
                raise DemeaningDidNotConverge(
                    f"fixed effects did not converge in {self.maxiter} sweeps (last change {largest_change:.3g})"
                )
            out[:, j] = col - fitted
        return (out[:, 0] if one_dim else out), coefs
