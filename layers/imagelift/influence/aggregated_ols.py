"""OLS with product and week effects, clustered by product, from per-(product, week) cell sums.

The two-way within transformation is the residual of a projection on the product and week dummies, so every
quantity the fit needs follows from aggregates a GROUP BY can produce: per cell the row count and the sums of
z = (y, x); per product the cross-products sum z z'. With alpha (products) and gamma (weeks) the projection
coefficients of z, Z~'Z~ = Z'Z - alpha' S_product - gamma' S_week, and each product's share of Z~'Z~ is
Q_g - sum over its cells (a_c S_c' + S_c a_c' - n_c a_c a_c') with a_c = alpha_g + gamma_w. The cluster score
of product g is that share's x rows times (1, -b), which gives CRV1 without touching a row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CellSums:
    """Aggregates of z = (y, x1..xk) for a product x week panel (codes are 0-based integers)."""

    product: np.ndarray  # (C,) product code of each cell
    week: np.ndarray  # (C,) week code of each cell
    count: np.ndarray  # (C,) rows in the cell
    sums: np.ndarray  # (C, k+1) sum of z over the cell's rows
    product_cross: np.ndarray  # (P, k+1, k+1) sum of z z' over each product's rows

    @classmethod
    def from_rows(cls, y: np.ndarray, x: np.ndarray, product: np.ndarray, week: np.ndarray) -> CellSums:
        """The same aggregates as ``GROUP BY product, week`` (and ``GROUP BY product`` for the cross-products)."""
        z = np.column_stack([y, x]).astype(float)
        p_codes = np.unique(product, return_inverse=True)[1].ravel()
        w_codes = np.unique(week, return_inverse=True)[1].ravel()
        n_weeks = int(w_codes.max()) + 1
        cell_key, cell_index = np.unique(p_codes * n_weeks + w_codes, return_inverse=True)
        cell_index = cell_index.ravel()
        n_cells, k1 = len(cell_key), z.shape[1]
        sums = np.column_stack([np.bincount(cell_index, weights=z[:, j], minlength=n_cells) for j in range(k1)])
        n_products = int(p_codes.max()) + 1
        cross = np.empty((n_products, k1, k1))
        for a in range(k1):
            for b in range(a, k1):
                cross[:, a, b] = cross[:, b, a] = np.bincount(p_codes, weights=z[:, a] * z[:, b], minlength=n_products)
        return cls(
            product=cell_key // n_weeks,
            week=cell_key % n_weeks,
            count=np.bincount(cell_index, minlength=n_cells).astype(float),
            sums=sums,
            product_cross=cross,
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

    @property
    def std_err(self) -> np.ndarray:
        return np.sqrt(np.diag(self.cov))


def _drop_singletons(cells: CellSums) -> tuple[CellSums, int]:
    """Drop rows alone in their product or week, repeatedly, as ``demean.drop_singletons`` does row by row."""
    product, week, count, sums = cells.product, cells.week, cells.count, cells.sums
    cross = cells.product_cross.copy()
    keep = np.ones(len(count), dtype=bool)
    dropped = 0
    while True:
        per_product = np.bincount(product[keep], weights=count[keep], minlength=len(cross))
        per_week = np.bincount(week[keep], weights=count[keep], minlength=int(week.max()) + 1)
        alone = keep & ((per_product[product] == 1) | (per_week[week] == 1))
        if not alone.any():
            break
        for c in np.flatnonzero(alone):  # a lone row's cell holds that row alone: its sums are the row
            cross[product[c]] -= np.outer(sums[c], sums[c])
        dropped += int(count[alone].sum())
        keep &= ~alone
    used_products, product_codes = np.unique(product[keep], return_inverse=True)
    week_codes = np.unique(week[keep], return_inverse=True)[1]
    trimmed = CellSums(product_codes.ravel(), week_codes.ravel(), count[keep], sums[keep], cross[used_products])
    return trimmed, dropped


def fit_ols_two_way(cells: CellSums) -> AggregatedOLS:
    """y on x with product and week effects absorbed, CRV1 errors clustered by product, from cell sums."""
    cells, singletons = _drop_singletons(cells)
    p, w, n_c, s_c = cells.product, cells.week, cells.count, cells.sums
    n_products, n_weeks = int(p.max()) + 1, int(w.max()) + 1
    k1 = s_c.shape[1]
    n_p = np.bincount(p, weights=n_c, minlength=n_products)
    n_w = np.bincount(w, weights=n_c, minlength=n_weeks)
    s_p = np.zeros((n_products, k1))
    np.add.at(s_p, p, s_c)
    s_w = np.zeros((n_weeks, k1))
    np.add.at(s_w, w, s_c)
    counts = np.zeros((n_products, n_weeks))
    counts[p, w] = n_c
    # alpha_p = (S_p - sum_w N_pw gamma_w) / N_p eliminated; the weeks' system is singular by the constant
    scaled = counts / n_p[:, None]
    week_system = np.diag(n_w) - counts.T @ scaled
    gamma = np.linalg.lstsq(week_system, s_w - scaled.T @ s_p, rcond=None)[0]
    alpha = (s_p - counts @ gamma) / n_p[:, None]
    total_cross = cells.product_cross.sum(axis=0)
    demeaned_cross = total_cross - alpha.T @ s_p - gamma.T @ s_w
    xx, xy = demeaned_cross[1:, 1:], demeaned_cross[1:, 0]
    params = np.linalg.solve(xx, xy)
    a_c = alpha[p] + gamma[w]
    shares = cells.product_cross.copy()
    share_cells = a_c[:, :, None] * s_c[:, None, :]
    share_cells = share_cells + share_cells.transpose(0, 2, 1) - n_c[:, None, None] * a_c[:, :, None] * a_c[:, None, :]
    np.add.at(shares, p, -share_cells)
    direction = np.concatenate([[1.0], -params])
    scores = shares[:, 1:, :] @ direction
    bread = np.linalg.inv(xx)
    influence = scores @ bread
    n = int(n_c.sum() + 0.5)
    k = k1 - 1
    weeks_nested = bool(np.all(np.bincount(w, minlength=n_weeks) == 1))
    df_k = k + (0 if weeks_nested else n_weeks)
    g = n_products
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
    )
