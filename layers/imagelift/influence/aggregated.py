"""The headline PPML (product and week effects, errors clustered by product) from product x week aggregates.

:func:`~imagelift.influence.estimation.fit_ppml` holds every row in memory and sweeps the fixed effects out of
it at each IRLS step. Here the rows are only ever summed: each Newton step asks a :class:`CellSums` source for
per product-week cell sums of exp(x b), exp(x b) x and exp(x b) x x' at the current b (one GROUP BY over the
rows), and everything else happens on the cells. The product effects are concentrated out in closed form
(a_p = log(Y_p / sum over its cells of exp(g_w) E_pw), which sets each product's score to zero), leaving a Newton
system in the week effects and the slopes, the size of weeks + regressors. Memory grows with products x weeks,
not rows; the same source can be numpy arrays (:class:`ArrayCellSums`) or a DuckDB table
(:mod:`imagelift.influence.duck`).

The answer is the same maximum as the in-memory fit's: the same rows are dropped first (products or weeks
without any sale, then singletons, repeated until neither changes anything), and the clustered covariance is the
same CRV1 sandwich, built from per-product scores on the regressors net of their (Poisson-weighted) fixed-effect
projection, with the same small-sample factor.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
from scipy import sparse

from imagelift.influence.demean import factorize, group_sums
from imagelift.influence.estimation import EstimationError, FitResult


@dataclass(frozen=True)
class ConstantSums:
    """Sums that do not depend on the coefficients, one entry per non-empty cell."""

    product: np.ndarray
    """Product code (0..P-1) of each cell."""
    week: np.ndarray
    """Week code (0..W-1) of each cell."""
    rows: np.ndarray
    """Rows in the cell."""
    y: np.ndarray
    """Sum of the outcome."""
    yx: np.ndarray
    """(cells, k): sum of outcome times each regressor."""
    y_log_y: np.ndarray
    """Sum of y log y (0 where y is 0): the deviance's constant part."""
    x_max: np.ndarray
    """(k,): the largest absolute value of each regressor over all rows (for the no-variation check)."""
    product_labels: np.ndarray
    """The product (cluster) label of each product code."""


@dataclass(frozen=True)
class VaryingSums:
    """Sums at one coefficient vector b, over the cells of :class:`ConstantSums` in the same order."""

    e: np.ndarray
    """Sum of exp(x b)."""
    ex: np.ndarray
    """(cells, k): sum of exp(x b) x."""
    exx: np.ndarray
    """(cells, k(k+1)/2): sum of exp(x b) x_a x_b for the pairs a <= b in :func:`pairs` order (each cell's
    symmetric k x k matrix packed: at 10M rows and 50k products the cells are many, and this halves them)."""


def pairs(k: int) -> list[tuple[int, int]]:
    """The (a, b), a <= b, of a packed symmetric k x k matrix, in order."""
    return [(a, b) for a in range(k) for b in range(a, k)]


def unpack(packed: np.ndarray, k: int) -> np.ndarray:
    """A packed symmetric matrix (k(k+1)/2,) as k x k."""
    out = np.empty((k, k))
    for i, (a, b) in enumerate(pairs(k)):
        out[a, b] = out[b, a] = packed[i]
    return out


class CellSums(Protocol):
    """Where the rows are: something that sums them per product-week cell."""

    names: list[str]

    def constant(self) -> ConstantSums: ...

    def varying(self, beta: np.ndarray) -> VaryingSums: ...


# Largest products x weeks grid whose cells are found by counting (an int per grid cell); beyond, by hashing.
DENSE_CELL_LIMIT = 50_000_000


class ArrayCellSums:
    """Cell sums over rows held as numpy arrays (``product`` and ``week`` are any hashable labels)."""

    def __init__(self, y: np.ndarray, x: np.ndarray, names: list[str], product: np.ndarray, week: np.ndarray):
        if np.any(y < 0):
            raise EstimationError("PPML needs a non-negative outcome")
        self.names = list(names)
        self._y = np.asarray(y, dtype=np.float64)
        self._x = np.asfortranarray(x, dtype=np.float64)  # read column by column below
        self.product_codes, self.product_labels = factorize(product)
        week_codes, self.week_labels = factorize(week)
        n_weeks = len(self.week_labels)
        cell_of_row = self.product_codes.astype(np.int64) * n_weeks + week_codes
        if len(self.product_labels) * n_weeks <= DENSE_CELL_LIMIT:
            # the non-empty cells of the products x weeks grid by counting, not hashing
            occupied = np.bincount(cell_of_row, minlength=len(self.product_labels) * n_weeks) > 0
            cells = np.flatnonzero(occupied)
            dense = np.full(len(occupied), -1, dtype=np.intp)
            dense[cells] = np.arange(len(cells))
            self._cell = dense[cell_of_row]
        else:
            self._cell, cells = factorize(cell_of_row)
        self.cell_of_row = self._cell  # the source cell (ConstantSums order) of each row
        self._n_weeks = n_weeks
        self._cells = np.asarray(cells, dtype=np.int64)

    def _sum(self, weights: np.ndarray) -> np.ndarray:
        return np.bincount(self._cell, weights=weights, minlength=len(self._cells))

    def constant(self) -> ConstantSums:
        k = self._x.shape[1]
        x_max = np.max(np.abs(self._x), axis=0) if len(self._x) else np.zeros(k)
        with np.errstate(divide="ignore", invalid="ignore"):
            y_log_y = np.where(self._y > 0, self._y * np.log(self._y), 0.0)
        return ConstantSums(
            product=self._cells // self._n_weeks,
            week=self._cells % self._n_weeks,
            rows=np.bincount(self._cell, minlength=len(self._cells)).astype(np.float64),
            y=self._sum(self._y),
            yx=np.column_stack([self._sum(self._y * self._x[:, j]) for j in range(k)]).reshape(-1, k),
            y_log_y=self._sum(y_log_y),
            x_max=x_max,
            product_labels=np.asarray(self.product_labels),
        )

    def varying(self, beta: np.ndarray) -> VaryingSums:
        k = self._x.shape[1]
        e = np.exp(self._x @ beta)
        ex = np.empty((len(self._cells), k))
        exx = np.empty((len(self._cells), k * (k + 1) // 2))
        column = 0
        for a in range(k):
            weighted = e * self._x[:, a]
            ex[:, a] = self._sum(weighted)
            for b in range(a, k):
                exx[:, column] = self._sum(weighted * self._x[:, b])
                column += 1
        return VaryingSums(e=self._sum(e), ex=ex, exx=exx)


# ------------------------------------------------------------------------------------------ dropped rows


def _drop_levels(sums: ConstantSums) -> tuple[np.ndarray, int, int]:
    """Cells kept after the in-memory fit's drops, and the rows dropped as separated and as singletons.

    Every drop removes whole levels (a product or week with no sales, or with one row left), so a row is kept
    exactly when its product and its week are: the rules run on the cells' row counts and outcome sums, in the
    in-memory fit's order (separation over both factors until stable, then singletons, repeated).
    """
    keep = np.ones(len(sums.rows), dtype=bool)
    factors = (sums.product, sums.week)
    separated = 0

    def totals(codes: np.ndarray, values: np.ndarray) -> np.ndarray:
        return np.bincount(codes, weights=values * keep, minlength=int(codes.max()) + 1 if len(codes) else 0)

    while True:
        before = int(sums.rows[keep].sum())
        while True:  # separated levels: no sale at all among the kept rows
            changed = False
            for codes in factors:
                dead = keep & (totals(codes, sums.y)[codes] <= 0)
                if dead.any():
                    keep &= ~dead
                    changed = True
            if not changed:
                break
        separated += before - int(sums.rows[keep].sum())
        while True:  # singletons: one kept row in a level
            changed = False
            for codes in factors:
                single = keep & (totals(codes, sums.rows)[codes] == 1)
                if single.any():
                    keep &= ~single
                    changed = True
            if not changed:
                break
        if int(sums.rows[keep].sum()) == before:
            break
    total = int(sums.rows.sum())
    kept = int(sums.rows[keep].sum())
    return keep, separated, total - kept - separated


# ------------------------------------------------------------------------------------------ the fit


@dataclass
class _Cells:
    """The kept cells with dense product and week codes, and the constant sums on them."""

    product: np.ndarray
    week: np.ndarray
    n_products: int
    n_weeks: int
    rows: np.ndarray
    y: np.ndarray
    yx: np.ndarray

    def matrix(self, values: np.ndarray) -> sparse.csr_matrix:
        return sparse.csr_matrix((values, (self.product, self.week)), shape=(self.n_products, self.n_weeks))

    def by_product(self, values: np.ndarray) -> np.ndarray:
        return group_sums(self.product, values, self.n_products)

    def by_week(self, values: np.ndarray) -> np.ndarray:
        return group_sums(self.week, values, self.n_weeks)


@dataclass
class _State:
    """Cell-level quantities at (b, g) with the product effects a(b, g) in closed form."""

    a: np.ndarray
    mu: np.ndarray
    """Expected units per cell."""
    sx: np.ndarray
    """(cells, k): sum of mu x per cell."""
    scale: np.ndarray
    """exp(a_p + g_w) per cell: mu x x' summed over a cell is ``scale`` times the cell's packed ``exx``."""
    exx: np.ndarray
    deviance: float

    def sxx_total(self) -> np.ndarray:
        """sum over all cells of mu x x' (k x k)."""
        return unpack(self.scale @ self.exx, self.sx.shape[1])


def _state(cells: _Cells, varying: VaryingSums, g: np.ndarray, beta: np.ndarray, y_log_y: float) -> _State:
    base = varying.e * np.exp(g[cells.week])  # sum over the cell of exp(x b + g_w)
    product_y = cells.by_product(cells.y)
    a = np.log(product_y / cells.by_product(base))
    scale = np.exp(a[cells.product] + g[cells.week])
    mu = scale * varying.e
    # deviance = 2 sum(y log(y / mu) - (y - mu)); sum y log mu = sum_p Y_p a_p + sum_w Y_w g_w + sum (y x) b
    log_likelihood_part = float(product_y @ a + cells.by_week(cells.y) @ g + cells.yx.sum(axis=0) @ beta)
    deviance = 2 * (y_log_y - log_likelihood_part - float(cells.y.sum() - mu.sum()))
    return _State(
        a=a,
        mu=mu,
        sx=scale[:, None] * varying.ex,
        scale=scale,
        exx=varying.exx,
        deviance=deviance,
    )


@dataclass
class _Profiled:
    """The (week, slope) blocks of the Poisson information with the product effects concentrated out."""

    h_gg: np.ndarray
    h_gb: np.ndarray
    h_bb: np.ndarray
    mu_matrix: sparse.csr_matrix
    product_mu: np.ndarray
    product_sx: np.ndarray


def _profiled(cells: _Cells, state: _State) -> _Profiled:
    mu_matrix = cells.matrix(state.mu)
    product_mu = cells.by_product(state.mu)
    product_sx = cells.by_product(state.sx)
    week_mu = cells.by_week(state.mu)
    week_sx = cells.by_week(state.sx)
    scaled = sparse.diags(1 / product_mu) @ mu_matrix
    h_gg = np.diag(week_mu) - (mu_matrix.T @ scaled).toarray()
    h_gb = week_sx - scaled.T @ product_sx
    h_bb = state.sxx_total() - product_sx.T @ (product_sx / product_mu[:, None])
    return _Profiled(h_gg, np.asarray(h_gb), h_bb, mu_matrix, product_mu, product_sx)


def _newton_step(cells: _Cells, state: _State, profiled: _Profiled) -> tuple[np.ndarray, np.ndarray]:
    grad_g = cells.by_week(cells.y) - cells.by_week(state.mu)
    grad_b = cells.yx.sum(axis=0) - state.sx.sum(axis=0)
    system = np.block([[profiled.h_gg, profiled.h_gb], [profiled.h_gb.T, profiled.h_bb]])
    # singular in the weeks (one level per connected set of products and weeks is free): least squares picks
    # one solution, and every solution gives the same fitted values
    step = np.linalg.lstsq(system, np.concatenate([grad_g, grad_b]), rcond=None)[0]
    return step[: cells.n_weeks], step[cells.n_weeks :]


def _absorbed_dof(cells: _Cells) -> int:
    """fixest's nested count: the product effects are nested in the product clusters; weeks count unless each
    lies inside a single product."""
    products_per_week = np.bincount(cells.week, minlength=cells.n_weeks)
    return 0 if bool(np.all(products_per_week == 1)) else cells.n_weeks


@dataclass(frozen=True)
class CellSolution:
    """The fitted fixed effects on the kept cells, enough to rebuild any row's fitted values."""

    keep: np.ndarray
    """Mask over the source's cells (``ConstantSums`` order) of those the fit kept."""
    product: np.ndarray
    """Dense product code of each kept cell (the order of ``FitResult.cluster_labels``)."""
    week: np.ndarray
    product_effects: np.ndarray
    week_effects: np.ndarray
    product_projection: np.ndarray
    """(P, k) and (W, k): the regressors' Poisson-weighted projection on the product and week effects."""
    week_projection: np.ndarray


def fit_ppml_aggregated(
    source: CellSums,
    *,
    irls_tol: float = 1e-10,
    maxiter: int = 100,
    model: str = "ppml",
) -> FitResult:
    """PPML of y on x with product and week effects, errors clustered by product, from cell sums only.

    Returns a :class:`FitResult` with the coefficients, the CRV1 covariance, the per-product influences and
    hessians (for the jackknife and joint covariances) and the dropped rows; it carries no row-level arrays
    (``kept_rows``, ``linear_predictor``, ``weights``, ``demeaned_x`` are None).
    """
    return solve_cells(source, irls_tol=irls_tol, maxiter=maxiter, model=model)[0]


def solve_cells(
    source: CellSums,
    *,
    irls_tol: float = 1e-10,
    maxiter: int = 100,
    model: str = "ppml",
) -> tuple[FitResult, CellSolution]:
    """:func:`fit_ppml_aggregated`, and the fixed effects behind it."""
    names = list(source.names)
    k = len(names)
    constant = source.constant()
    keep, n_separated, n_singletons = _drop_levels(constant)
    n = int(constant.rows[keep].sum())
    if n <= k + 1:
        raise EstimationError(f"{model}: {n} usable rows for {k} regressors")
    product_codes, product_labels = factorize(constant.product[keep])
    week_codes, _ = factorize(constant.week[keep])
    cells = _Cells(
        product=product_codes,
        week=week_codes,
        n_products=int(product_codes.max()) + 1,
        n_weeks=int(week_codes.max()) + 1,
        rows=constant.rows[keep],
        y=constant.y[keep],
        yx=constant.yx[keep],
    )
    y_log_y = float(constant.y_log_y[keep].sum())
    x_max, cluster_labels = constant.x_max, constant.product_labels[product_labels]
    del constant  # the cells hold what is left of it (at 100M rows its cell arrays are over a gigabyte)

    all_kept = bool(keep.all())

    def sums_at(beta: np.ndarray) -> VaryingSums:
        varying = source.varying(beta)
        if all_kept:
            return varying
        # the kept cells one array at a time, each source array going as its copy is made
        e, ex, exx = varying.e, varying.ex, varying.exx
        del varying
        e = e[keep]
        ex = ex[keep]
        exx = exx[keep]
        return VaryingSums(e=e, ex=ex, exx=exx)

    beta = np.zeros(k)
    g = np.log(cells.by_week(cells.y) / cells.by_week(cells.rows))
    state: _State | None = _state(cells, sums_at(beta), g, beta, y_log_y)
    for iteration in range(1, maxiter + 1):
        profiled = _profiled(cells, state)
        if iteration == 1:
            _check_variation(profiled.h_bb, state.sxx_total(), x_max, names)
        step_g, step_b = _newton_step(cells, state, profiled)
        # from here the step needs only the last deviance: the last point's cell sums go before the next point's
        # are made, and a rejected try's before the next try's (at 100M rows each set is gigabytes)
        deviance = state.deviance
        profiled = None
        # Poisson's likelihood is concave, but a full Newton step from a poor start can overshoot: halve it until
        # the deviance does not rise
        for _ in range(30):
            state = None
            new_beta, new_g = beta + step_b, g + step_g
            state = _state(cells, sums_at(new_beta), new_g, new_beta, y_log_y)
            if np.isfinite(state.deviance) and state.deviance <= deviance + 1e-9 * abs(deviance):
                break
            step_b, step_g = step_b / 2, step_g / 2
        change = abs(state.deviance - deviance) / (0.1 + abs(state.deviance))
        small_step = float(np.max(np.abs(step_b))) <= 1e-12 * (1 + float(np.max(np.abs(new_beta))))
        beta, g = new_beta, new_g
        if change < irls_tol * 1e-3 or small_step:
            break
    else:
        raise EstimationError(f"{model}: Newton steps did not converge in {maxiter} iterations")
    fit, product_projection, week_projection = _clustered_result(
        cells,
        state,
        beta,
        names,
        cluster_labels,
        n,
        model=model,
        dropped={"all_zero_fixed_effect": n_separated, "singletons": n_singletons},
        iterations=iteration,
    )
    solution = CellSolution(
        keep=keep,
        product=cells.product,
        week=cells.week,
        product_effects=state.a,
        week_effects=g,
        product_projection=product_projection,
        week_projection=week_projection,
    )
    return fit, solution


def _check_variation(schur: np.ndarray, raw: np.ndarray, x_max: np.ndarray, names: list[str]) -> None:
    for j, name in enumerate(names):
        if x_max[j] == 0 or schur[j, j] <= 1e-18 * max(raw[j, j], 1e-300):
            raise EstimationError(f"{name} does not vary once the fixed effects are absorbed")
    if np.linalg.matrix_rank(schur) < schur.shape[0]:
        raise EstimationError(f"regressors {names} are collinear once the fixed effects are absorbed")


def _clustered_result(
    cells: _Cells,
    state: _State,
    beta: np.ndarray,
    names: list[str],
    product_labels: np.ndarray,
    n: int,
    *,
    model: str,
    dropped: dict[str, int],
    iterations: int,
) -> tuple[FitResult, np.ndarray, np.ndarray]:
    profiled = _profiled(cells, state)
    schur = profiled.h_bb - profiled.h_gb.T @ np.linalg.lstsq(profiled.h_gg, profiled.h_gb, rcond=None)[0]
    try:
        bread = np.linalg.inv(schur)
    except np.linalg.LinAlgError as exc:
        raise EstimationError(f"{model}: {exc}") from exc
    # the regressors' Poisson-weighted projection on the fixed effects: x - A_p - G_w is the demeaned x
    week_coef = np.linalg.lstsq(profiled.h_gg, profiled.h_gb, rcond=None)[0]  # (W, k)
    product_coef = (profiled.product_sx - profiled.mu_matrix @ week_coef) / profiled.product_mu[:, None]
    shift = product_coef[cells.product] + week_coef[cells.week]  # (cells, k)
    resid_y = cells.y - state.mu
    # score of product p: sum over its rows of (x - shift)(y - mu)
    cell_scores = cells.yx - state.sx - shift * resid_y[:, None]
    scores = cells.by_product(cell_scores)
    influence = scores @ bread
    # each product's sum of mu (x - shift)(x - shift)', one pair of regressors at a time (no cells x k x k array)
    k = len(names)
    hessians = np.empty((cells.n_products, k, k))
    for column, (a, b) in enumerate(pairs(k)):
        cell_values = (
            state.scale * state.exx[:, column]
            - state.sx[:, a] * shift[:, b]
            - shift[:, a] * state.sx[:, b]
            + state.mu * shift[:, a] * shift[:, b]
        )
        hessians[:, a, b] = hessians[:, b, a] = cells.by_product(cell_values)
    n_clusters = cells.n_products
    df_k = len(names) + _absorbed_dof(cells)
    if n_clusters < 2:
        raise EstimationError(f"clustered errors need at least 2 products, the data hold {n_clusters}")
    if n <= df_k:
        raise EstimationError(f"{n} rows leave no degrees of freedom after {df_k} parameters")
    cov = influence.T @ influence * (n_clusters / (n_clusters - 1)) * ((n - 1) / (n - df_k))
    fit = FitResult(
        model=model,
        names=names,
        params=beta.copy(),
        cov=cov,
        nobs=n,
        n_clusters=n_clusters,
        df_k=df_k,
        dropped=dropped,
        iterations=iterations,
        influence=influence,
        cluster_labels=np.asarray(product_labels),
        cluster_hessians=hessians,
    )
    return fit, product_coef, week_coef


def fit_ppml_rows(
    y: np.ndarray,
    x: np.ndarray,
    names: list[str],
    product: np.ndarray,
    week: np.ndarray,
    *,
    irls_tol: float = 1e-10,
    maxiter: int = 100,
    model: str = "ppml",
) -> FitResult:
    """:func:`~imagelift.influence.estimation.fit_ppml` with product and week effects clustered by product, solved
    on cell sums, with the row-level results (kept rows, linear predictor, weights, demeaned regressors) rebuilt
    from the fitted effects, so that everything downstream of the headline fit can use it unchanged.

    Its weights are the converged ones; the in-memory fit's sandwich uses those of its last IRLS step, so the two
    standard errors differ by about as much as the IRLS tolerance lets the weights move (1e-6 of themselves at
    1e-10), and agree to rounding as both tolerances shrink.
    """
    source = ArrayCellSums(y, x, names, product, week)
    fit, solution = solve_cells(source, irls_tol=irls_tol, maxiter=maxiter, model=model)
    kept_cell = np.cumsum(solution.keep) - 1
    keep = solution.keep[source.cell_of_row]
    cell = kept_cell[source.cell_of_row[keep]]
    p, w = solution.product[cell], solution.week[cell]
    xk = np.asarray(x, dtype=np.float64)[keep]
    eta = solution.product_effects[p] + solution.week_effects[w] + xk @ fit.params
    demeaned = xk - solution.product_projection[p] - solution.week_projection[w]
    # clusters in order of first appearance among the kept rows, as the in-memory fit numbers them
    order = factorize(p)[1].astype(np.intp)
    return replace(
        fit,
        influence=fit.influence[order],
        cluster_hessians=fit.cluster_hessians[order],
        cluster_labels=fit.cluster_labels[order],
        kept_rows=keep,
        linear_predictor=eta,
        weights=np.exp(eta),
        demeaned_x=demeaned,
    )
