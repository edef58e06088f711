"""OLS with product and week effects, clustered by product, from per-(product, week) cell sums.

The two-way within transformation is the residual of a projection on the product and week dummies, so every
quantity the fit needs follows from aggregates a GROUP BY can produce: per cell the row count and the sums of
z = (y, x); per product the cross-products sum z z'. With alpha (products) and gamma (weeks) the projection
coefficients of z, Z~'Z~ = Z'Z - alpha' S_product - gamma' S_week, and each product's share of Z~'Z~ is
Q_g - sum over its cells (a_c S_c' + S_c a_c' - n_c a_c a_c') with a_c = alpha_g + gamma_w. The cluster score
of product g is that share's x rows times (1, -b), which gives CRV1 without touching a row.

Memory grows with the non-empty cells, never with the full products x weeks grid: the weeks' normal equations
are summed a block of products at a time, every other per-cell quantity is a bincount. The columns are centred
on their product means before they are summed (the product effects absorb any per-product constant), so that
Z'Z minus the projection does not cancel away the digits the within variation lives in.

:func:`fit_ols_cells` is :func:`~imagelift.influence.estimation.fit_ols_fe` with product and week effects and
product clusters by this route: the same coefficients, covariance, dropped singletons, kept rows and per-product
influences and hessians, without the row-level demeaned regressors (``demeaned_x`` is None).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imagelift.influence.demean import factorize, group_sums
from imagelift.influence.estimation import EstimationError, FitResult

# Largest products x weeks grid whose cells are found by counting (an int per grid cell); beyond, by hashing.
DENSE_CELL_LIMIT = 50_000_000
# Largest block (products x weeks, floats) held dense while the weeks' normal equations are summed.
WEEK_GRAM_BLOCK = 1_000_000
# Largest condition number of X~'X~ (scaled to unit diagonal) solved from cell sums; beyond, the rows decide.
MAX_CONDITION = 1e6
# A regressor whose root mean square after the fixed effects is below this share of its largest absolute value
# does not vary once they are absorbed (the row path asks the same of the largest demeaned value).
NO_VARIATION = 1e-9


@dataclass(frozen=True)
class CellSums:
    """Aggregates of z = (y, x1..xk) for a product x week panel (codes are 0-based integers)."""

    product: np.ndarray  # (C,) product code of each cell
    week: np.ndarray  # (C,) week code of each cell
    count: np.ndarray  # (C,) rows in the cell
    sums: np.ndarray  # (C, k+1) sum of z over the cell's rows
    product_cross: np.ndarray  # (P, k+1, k+1) sum of z z' over each product's rows
    x_max: np.ndarray | None = None
    """(k,) the largest absolute value of each regressor over the rows, for the no-variation check."""
    product_labels: np.ndarray | None = None
    """The input's product label of each product code."""
    cell_of_row: np.ndarray | None = None
    """The cell of each input row (from :meth:`from_rows`)."""

    @classmethod
    def from_rows(cls, y: np.ndarray, x: np.ndarray, product: np.ndarray, week: np.ndarray) -> CellSums:
        """The same aggregates as ``GROUP BY product, week`` (and ``GROUP BY product`` for the cross-products),
        of the columns centred on their product means."""
        y = np.asarray(y, dtype=np.float64)
        x = np.asfortranarray(np.asarray(x, dtype=np.float64).reshape(len(y), -1))  # read column by column
        p_codes, p_labels = factorize(product)
        w_codes, w_labels = factorize(week)
        n_products, n_weeks = len(p_labels), len(w_labels)
        key = p_codes.astype(np.int64) * n_weeks + w_codes
        if n_products * n_weeks <= DENSE_CELL_LIMIT:
            # the non-empty cells of the grid by counting, not hashing (and in product-major order)
            occupied = np.flatnonzero(np.bincount(key, minlength=n_products * n_weeks))
            dense = np.full(n_products * n_weeks, -1, dtype=np.intp)
            dense[occupied] = np.arange(len(occupied))
            cell_of_row, cells = dense[key], occupied
        else:
            cell_of_row, cells = factorize(key)
        n_cells, k1 = len(cells), x.shape[1] + 1
        rows_per_product = np.bincount(p_codes, minlength=n_products)
        z = np.empty((len(y), k1), order="F")
        x_max = np.zeros(k1 - 1)
        for j in range(k1):
            column = y if j == 0 else x[:, j - 1]
            if j and len(column):
                x_max[j - 1] = np.max(np.abs(column))
            mean = np.bincount(p_codes, weights=column, minlength=n_products) / np.maximum(rows_per_product, 1)
            z[:, j] = column - mean[p_codes]
        sums = np.empty((n_cells, k1), order="F")
        for j in range(k1):
            sums[:, j] = np.bincount(cell_of_row, weights=z[:, j], minlength=n_cells)
        cross = np.empty((n_products, k1, k1))
        for a in range(k1):
            for b in range(a, k1):
                cross[:, a, b] = cross[:, b, a] = np.bincount(p_codes, weights=z[:, a] * z[:, b], minlength=n_products)
        cells = np.asarray(cells, dtype=np.int64)
        return cls(
            product=(cells // n_weeks).astype(np.intp),
            week=(cells % n_weeks).astype(np.intp),
            count=np.bincount(cell_of_row, minlength=n_cells).astype(np.float64),
            sums=sums,
            product_cross=cross,
            x_max=x_max,
            product_labels=np.asarray(p_labels),
            cell_of_row=cell_of_row,
        )


@dataclass(frozen=True)
class AggregatedOLS:
    params: np.ndarray
    cov: np.ndarray
    nobs: int
    n_clusters: int
    df_k: int
    singletons: int
    cluster_hessians: np.ndarray  # (G, k, k) each product's share of X~'X~
    influence: np.ndarray  # (G, k) bread @ score per product
    kept_cells: np.ndarray
    """Mask over the input's cells of those left after dropping singletons."""
    kept_products: np.ndarray
    """The input's product code of each cluster (row of ``influence``)."""

    @property
    def std_err(self) -> np.ndarray:
        return np.sqrt(np.diag(self.cov))


def _drop_singletons(cells: CellSums) -> tuple[CellSums, int, np.ndarray, np.ndarray]:
    """Drop rows alone in their product or week, repeatedly, as ``demean.drop_singletons`` does row by row.

    Returns the trimmed cells (products and weeks renumbered densely), the rows dropped, the mask of kept cells
    and the input's product code of each kept product.
    """
    product, week, count, sums = cells.product, cells.week, cells.count, cells.sums
    n_products = len(cells.product_cross)
    n_weeks = int(week.max()) + 1 if len(week) else 0
    k1 = sums.shape[1]
    cross = cells.product_cross.copy()
    keep = np.ones(len(count), dtype=bool)
    dropped = 0
    while True:
        per_product = np.bincount(product[keep], weights=count[keep], minlength=n_products)
        per_week = np.bincount(week[keep], weights=count[keep], minlength=n_weeks)
        alone = keep & ((per_product[product] == 1) | (per_week[week] == 1))
        if not alone.any():
            break
        # a lone row's cell holds that row alone: its sums are the row
        lone_product, lone_sums = product[alone], sums[alone]
        for a in range(k1):
            for b in range(a, k1):
                removed = np.bincount(lone_product, weights=lone_sums[:, a] * lone_sums[:, b], minlength=n_products)
                cross[:, a, b] -= removed
                if b != a:
                    cross[:, b, a] -= removed
        dropped += int(count[alone].sum() + 0.5)
        keep &= ~alone
    used_products, product_codes = np.unique(product[keep], return_inverse=True)
    week_codes = np.unique(week[keep], return_inverse=True)[1]
    trimmed = CellSums(
        product_codes.ravel(),
        week_codes.ravel(),
        count[keep],
        sums[keep],
        cross[used_products],
        x_max=cells.x_max,
    )
    return trimmed, dropped, keep, used_products


def _week_gram(product: np.ndarray, week: np.ndarray, count: np.ndarray, n_p: np.ndarray, n_weeks: int) -> np.ndarray:
    """sum over products of N_p N_p' / N_p. (W x W), N_p the product's row counts by week, a block at a time."""
    if len(product) > 1 and np.any(product[1:] < product[:-1]):
        order = np.argsort(product, kind="stable")
        product, week, count = product[order], week[order], count[order]
    n_products = len(n_p)
    per_block = max(1, WEEK_GRAM_BLOCK // max(n_weeks, 1))
    starts = np.arange(0, n_products, per_block)
    bounds = np.append(np.searchsorted(product, starts), len(product))
    gram = np.zeros((n_weeks, n_weeks))
    for i, first in enumerate(starts):
        last = min(first + per_block, n_products)
        lo, hi = bounds[i], bounds[i + 1]
        block = np.zeros((last - first, n_weeks))
        block[product[lo:hi] - first, week[lo:hi]] = count[lo:hi]
        gram += block.T @ (block / n_p[first:last, None])
    return gram


class TooIllConditioned(ValueError):
    """X~'X~ from cell sums is too ill-conditioned to be trusted: fit the rows instead.

    Z'Z minus the projection keeps about 16 digits of the cross-products' size, and the solve loses the
    condition number's worth of them; collinear or nearly collinear regressors are judged on the rows.
    """


def _check_design(demeaned: np.ndarray, n: int, x_max: np.ndarray | None, names: list[str]) -> None:
    """The row path's no-variation check on X~ from X~'X~; :class:`TooIllConditioned` when collinearity
    cannot be judged from it."""
    for j, name in enumerate(names):
        spread = float(x_max[j]) if x_max is not None else float("inf")
        if spread == 0 or np.sqrt(max(demeaned[j, j], 0.0) / n) <= NO_VARIATION * spread:
            raise EstimationError(f"{name} does not vary once the fixed effects are absorbed")
    # scaled to unit diagonal, so that regressors in different units do not count as ill-conditioned
    root = np.sqrt(np.diag(demeaned))
    condition = np.linalg.cond(demeaned / root[:, None] / root[None, :])
    if not np.isfinite(condition) or condition > MAX_CONDITION:
        raise TooIllConditioned(f"X~'X~ has condition number {condition:.3g} (scaled)")


def fit_ols_two_way(cells: CellSums, names: list[str] | None = None, *, model: str = "ols_fe") -> AggregatedOLS:
    """y on x with product and week effects absorbed, CRV1 errors clustered by product, from cell sums.

    Raises :class:`~imagelift.influence.estimation.EstimationError` where the row path does (too few rows, a
    regressor the fixed effects absorb, fewer than two products, no degrees of freedom) and
    :class:`TooIllConditioned` when the regressors are (nearly) collinear after the fixed effects.
    """
    k1 = cells.sums.shape[1]
    k = k1 - 1
    names = list(names) if names is not None else [f"x{j}" for j in range(k)]
    cells, singletons, kept_cells, kept_products = _drop_singletons(cells)
    p, w, n_c = cells.product, cells.week, cells.count
    s_c = np.asfortranarray(cells.sums)  # every loop below reads one column of the cells at a time
    n = int(n_c.sum() + 0.5)
    if n <= k + 1:
        raise EstimationError(f"{model}: {n} usable rows for {k} regressors")
    n_products, n_weeks = int(p.max()) + 1, int(w.max()) + 1
    n_p = np.bincount(p, weights=n_c, minlength=n_products)
    n_w = np.bincount(w, weights=n_c, minlength=n_weeks)
    s_p = group_sums(p, s_c, n_products)
    s_w = group_sums(w, s_c, n_weeks)
    # alpha_p = (S_p - sum_w N_pw gamma_w) / N_p eliminated; the weeks' system is singular by the constant
    week_system = np.diag(n_w) - _week_gram(p, w, n_c, n_p, n_weeks)
    share = (n_c / n_p[p])[:, None]
    gamma = np.linalg.lstsq(week_system, s_w - group_sums(w, share * s_p[p], n_weeks), rcond=None)[0]
    alpha = (s_p - group_sums(p, n_c[:, None] * gamma[w], n_products)) / n_p[:, None]
    total_cross = cells.product_cross.sum(axis=0)
    demeaned_cross = total_cross - alpha.T @ s_p - gamma.T @ s_w
    demeaned_cross = (demeaned_cross + demeaned_cross.T) / 2
    xx, xy = demeaned_cross[1:, 1:], demeaned_cross[1:, 0]
    _check_design(xx, n, cells.x_max, names)
    params = np.linalg.solve(xx, xy)
    # each product's share of Z~'Z~, one pair of columns at a time (no cells x (k+1) x (k+1) array)
    a_c = np.empty((len(n_c), k1), order="F")
    for j in range(k1):
        a_c[:, j] = alpha[p, j] + gamma[w, j]
    n_a = a_c * n_c[:, None]
    shares = cells.product_cross.copy()
    for a in range(k1):
        for b in range(a, k1):
            cell_values = a_c[:, a] * s_c[:, b] + s_c[:, a] * a_c[:, b] - n_a[:, a] * a_c[:, b]
            removed = np.bincount(p, weights=cell_values, minlength=n_products)
            shares[:, a, b] -= removed
            if b != a:
                shares[:, b, a] -= removed
    direction = np.concatenate([[1.0], -params])
    scores = shares[:, 1:, :] @ direction
    bread = np.linalg.inv(xx)
    influence = scores @ bread
    weeks_nested = bool(np.all(np.bincount(w, minlength=n_weeks) == 1))
    df_k = k + (0 if weeks_nested else n_weeks)
    g = n_products
    if g < 2:
        raise EstimationError(f"clustered errors need at least 2 products, the data hold {g}")
    if n <= df_k:
        raise EstimationError(f"{n} rows leave no degrees of freedom after {df_k} parameters")
    cov = influence.T @ influence * (g / (g - 1)) * ((n - 1) / (n - df_k))
    return AggregatedOLS(
        params=params,
        cov=cov,
        nobs=n,
        n_clusters=g,
        df_k=df_k,
        singletons=singletons,
        cluster_hessians=shares[:, 1:, 1:],
        influence=influence,
        kept_cells=kept_cells,
        kept_products=kept_products,
    )


def fit_ols_cells(
    y: np.ndarray,
    x: np.ndarray,
    names: list[str],
    product: np.ndarray,
    week: np.ndarray,
    *,
    model: str = "ols_fe",
) -> FitResult:
    """``fit_ols_fe(y, x, names, [product, week], product)`` solved on cell sums, as a :class:`FitResult`.

    Clusters are numbered in order of first appearance among the kept rows, as the row path numbers them.
    Raises :class:`TooIllConditioned` (not an estimation failure) when the rows must decide.
    """
    k = x.shape[1]
    n_in = len(y)
    if n_in <= k + 1:
        raise EstimationError(f"{model}: {n_in} usable rows for {k} regressors")
    try:
        cells = CellSums.from_rows(y, x, product, week)
        fit = fit_ols_two_way(cells, names, model=model)
    except np.linalg.LinAlgError as exc:
        raise EstimationError(f"{model}: {exc}") from exc
    kept_rows = fit.kept_cells[cells.cell_of_row]
    # the kept products in order of first appearance among the kept rows
    kept_code = np.full(len(cells.product_labels), -1, dtype=np.intp)
    kept_code[fit.kept_products] = np.arange(len(fit.kept_products))
    row_product = cells.product[cells.cell_of_row[kept_rows]]
    order = factorize(kept_code[row_product])[1].astype(np.intp)
    labels = cells.product_labels[fit.kept_products[order]]
    return FitResult(
        model=model,
        names=list(names),
        params=np.asarray(fit.params),
        cov=fit.cov,
        nobs=fit.nobs,
        n_clusters=fit.n_clusters,
        df_k=fit.df_k,
        dropped={"singletons": n_in - fit.nobs},
        kept_rows=kept_rows,
        influence=fit.influence[order],
        cluster_labels=np.asarray(labels, dtype=object),
        cluster_hessians=fit.cluster_hessians[order],
    )
