"""The regressions: PPML and OLS with absorbed fixed effects, and pooled OLS.

Fixed effects are swept out by :mod:`imagelift.influence.demean`; the demeaned data are then fitted by (weighted)
least squares through the k x k normal equations (inside each IRLS step for PPML), and the cluster-robust
sandwich is built from each cluster's summed influence, bread @ score. Its small-sample factor is
G/(G-1) * (N-1)/(N-K) (statsmodels' G/(G-1) * (N-1)/(N-k) with k the columns it sees, rescaled by (N-k)/(N-K)
for the degrees of freedom the absorbed fixed effects use up; the two agree to rounding). Following fixest
and pyfixest, K counts the regressors plus the levels of every absorbed factor that is not nested in the
cluster variable, minus one for each such factor beyond the first; a factor nested in the clusters (the
product effects, clustered by product) adds nothing. Inference uses Student t with G-1 degrees of freedom.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imagelift.errors import EstimationFailure
from imagelift.influence.demean import FixedEffects, drop_singletons, factorize
from imagelift.influence.distributions import t_ppf, t_sf


class EstimationError(EstimationFailure, ValueError):
    """The model cannot be estimated on these data (too few rows, no variation, no convergence)."""


def _linear_algebra_is_an_estimation_error(fit: Callable[..., FitResult]) -> Callable[..., FitResult]:
    """A singular or non-finite system (extreme values, perfect fits) says the model cannot be estimated."""

    @functools.wraps(fit)
    def wrapper(*args: Any, **kwargs: Any) -> FitResult:
        try:
            return fit(*args, **kwargs)
        except np.linalg.LinAlgError as exc:
            raise EstimationError(f"{kwargs.get('model', fit.__name__)}: {exc}") from exc

    return wrapper


@dataclass
class FitResult:
    """Coefficients, their clustered covariance and what was dropped on the way."""

    model: str
    names: list[str]
    params: np.ndarray
    cov: np.ndarray
    nobs: int
    n_clusters: int
    df_k: int
    dropped: dict[str, int] = field(default_factory=dict)
    iterations: int = 0
    kept_rows: np.ndarray | None = None  # boolean mask over the input rows used in the fit
    linear_predictor: np.ndarray | None = None  # PPML: eta on the kept rows (with fixed effects)
    influence: np.ndarray | None = None
    """(G, k): each cluster's summed influence on the coefficients, bread @ score (their outer products sum to the
    sandwich before its small-sample factor); lets two fits on the same clusters share a covariance."""
    cluster_labels: np.ndarray | None = None
    """The cluster value of each row of ``influence``."""
    cluster_hessians: np.ndarray | None = None
    """(G, k, k): each cluster's X_g' W_g X_g on the demeaned regressors; they sum to the bread's inverse."""
    weights: np.ndarray | None = None
    """The final IRLS weights (mu) of the kept rows (PPML), or None (OLS: equal weights)."""
    demeaned_x: np.ndarray | None = None
    """The regressors with the fixed effects swept out (with ``weights``), on the kept rows."""

    @property
    def std_err(self) -> np.ndarray:
        return np.sqrt(np.diag(self.cov))

    def coef(self, name: str) -> tuple[float, float]:
        i = self.names.index(name)
        return float(self.params[i]), float(self.std_err[i])

    def inference(self, name: str, level: float = 0.95) -> dict[str, float]:
        """Estimate, standard error, confidence interval and two-sided p-value from t(G-1)."""
        estimate, se = self.coef(name)
        df = max(self.n_clusters - 1, 1)
        t_crit = float(t_ppf(0.5 + level / 2, df))
        p_value = float(2 * t_sf(abs(estimate / se), df)) if se > 0 else float("nan")
        return {
            "estimate": estimate,
            "std_err": se,
            "ci_low": estimate - t_crit * se,
            "ci_high": estimate + t_crit * se,
            "p_value": p_value,
        }


def _absorbed_dof(fe: FixedEffects, clusters: np.ndarray) -> int:
    """Degrees of freedom used by the absorbed fixed effects, counted as fixest's ssc(fixef.K = "nested")."""
    total = 0
    counted = 0
    for codes, n_levels in zip(fe.codes, fe.n_levels, strict=True):
        # nested: every level of the factor lies inside a single cluster
        per_level = np.zeros(n_levels, dtype=np.int64) - 1
        per_level[codes] = clusters
        nested = bool(np.all(per_level[codes] == clusters))
        if not nested:
            total += n_levels
            counted += 1
    return total - max(counted - 1, 0) if counted else 0


def _check_dof(n_clusters: int, n: int, df_k: int) -> None:
    if n_clusters < 2:
        raise EstimationError(f"clustered errors need at least 2 products, the data hold {n_clusters}")
    if n <= df_k:
        raise EstimationError(f"{n} rows leave no degrees of freedom after {df_k} parameters")


def _cluster_cov(influence: np.ndarray, n: int, df_k: int) -> np.ndarray:
    """CRV1 from the per-cluster influences: G/(G-1) * (N-1)/(N-K) * sum_g infl_g infl_g'."""
    n_clusters = len(influence)
    _check_dof(n_clusters, n, df_k)
    return influence.T @ influence * (n_clusters / (n_clusters - 1)) * ((n - 1) / (n - df_k))


@dataclass(frozen=True)
class _LeastSquares:
    """A (weighted) least-squares solution: coefficients and residuals on the data it was fitted to."""

    params: np.ndarray
    resid: np.ndarray


def _least_squares(
    y: np.ndarray,
    x: np.ndarray,
    weights: np.ndarray | None = None,
    normal: tuple[np.ndarray, np.ndarray] | None = None,
) -> _LeastSquares:
    """``y`` on ``x`` (with ``weights``) through the k x k normal equations.

    An SVD of the whole n x k design costs about a second at 1M rows; with a few well-conditioned columns the
    normal equations give the same answer in a fraction of that. An ill-conditioned design falls back to the
    minimum-norm least-squares solution. ``normal``: the weighted design and its Gram matrix, when the caller
    has just built them from the same ``x`` and ``weights``.
    """
    if normal is not None:
        wx, gram = normal
    else:
        wx = x if weights is None else x * weights[:, None]
        gram = wx.T @ x
    if np.linalg.cond(gram) > 1e12:
        root = np.ones(len(y)) if weights is None else np.sqrt(weights)
        params = np.linalg.lstsq(x * root[:, None], y * root, rcond=None)[0]
    else:
        params = np.linalg.solve(gram, wx.T @ y)
    return _LeastSquares(params=params, resid=y - x @ params)


def _check_design(x_dm: np.ndarray, x: np.ndarray, names: list[str]) -> None:
    for j, name in enumerate(names):
        spread = float(np.max(np.abs(x[:, j]))) if len(x) else 0.0
        if spread == 0 or float(np.max(np.abs(x_dm[:, j]))) <= 1e-9 * spread:
            raise EstimationError(f"{name} does not vary once the fixed effects are absorbed")
    if column_rank(x_dm) < x_dm.shape[1]:
        raise EstimationError(f"regressors {names} are collinear once the fixed effects are absorbed")


RANK_BLOCK_ROWS = 1 << 18


def column_rank(x: np.ndarray) -> int:
    """``numpy.linalg.matrix_rank`` of a tall ``x`` (n x k, any layout) without copying all of it.

    Up to :data:`RANK_BLOCK_ROWS` rows it is ``matrix_rank`` itself; past that, the singular values come from the R
    of a QR decomposition built block by block (each block of rows stacked under the last R: the same singular
    values as ``x``'s, to rounding), held to ``matrix_rank``'s tolerance, so a copy of one block is all it holds.
    """
    n, k = x.shape
    if n <= RANK_BLOCK_ROWS:
        return int(np.linalg.matrix_rank(x))
    r = np.zeros((0, k))
    for start in range(0, n, RANK_BLOCK_ROWS):
        r = np.linalg.qr(np.vstack([r, x[start : start + RANK_BLOCK_ROWS]]), mode="r")
    singular = np.linalg.svd(r, compute_uv=False)
    return int(np.sum(singular > singular.max(initial=0.0) * max(n, k) * np.finfo(np.float64).eps))


@dataclass(frozen=True)
class _Codes:
    """The fixed-effect columns and the clusters as integer codes (:func:`factorize`) on every input row.

    Factorising once per fit instead of at every drop round: the codes of a subset of rows are then those of the
    subset of these codes (both number the levels in order of first appearance, so they are the same codes).
    """

    fe: list[np.ndarray]
    n_levels: list[int]
    clusters: np.ndarray

    @classmethod
    def of(cls, fe_columns: list[np.ndarray], clusters: np.ndarray) -> _Codes:
        fe = [factorize(c)[0] for c in fe_columns]
        return cls(fe=fe, n_levels=[int(c.max()) + 1 if len(c) else 0 for c in fe], clusters=factorize(clusters)[0])

    def fixed_effects(self, keep: np.ndarray, tol: float) -> FixedEffects:
        if keep.all():
            return FixedEffects(list(self.fe), tol=tol)
        return FixedEffects.from_columns(*(c[keep] for c in self.fe), tol=tol)

    def cluster_codes(self, keep: np.ndarray) -> np.ndarray:
        return self.clusters if keep.all() else factorize(self.clusters[keep])[0]


def _prepare(
    x: np.ndarray,
    fe_columns: list[np.ndarray],
    clusters: np.ndarray,
    keep: np.ndarray,
    tol: float,
    codes: _Codes | None = None,
) -> tuple[FixedEffects, np.ndarray, np.ndarray]:
    codes = codes or _Codes.of(fe_columns, clusters)
    fe = codes.fixed_effects(keep, tol)
    single = drop_singletons(fe.codes)
    if not single.all():
        keep = keep.copy()
        keep[np.flatnonzero(keep)[~single]] = False
        fe = fe.subset(single)
    return fe, keep, codes.cluster_codes(keep)


def _cluster_influence(
    x_dm: np.ndarray,
    resid: np.ndarray,
    weights: np.ndarray | None,
    cluster_codes: np.ndarray,
    with_hessians: bool = True,
    weighted_x: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-cluster bread @ (sum of scores), the pieces of the clustered sandwich, and per-cluster X_g' W_g X_g
    (``None`` unless ``with_hessians``); ``weighted_x`` is ``x_dm`` times ``weights`` when already at hand."""
    wx = weighted_x
    if wx is None:
        wx = x_dm if weights is None else x_dm * weights[:, None]
    bread = np.linalg.inv(wx.T @ x_dm)
    n_clusters = int(cluster_codes.max()) + 1
    k = x_dm.shape[1]
    scores = np.column_stack(
        [np.bincount(cluster_codes, weights=wx[:, j] * resid, minlength=n_clusters) for j in range(k)]
    )
    if not with_hessians:
        return scores @ bread, None
    hessians = np.empty((n_clusters, k, k))
    for a in range(k):
        for b in range(a, k):
            hessians[:, a, b] = hessians[:, b, a] = np.bincount(
                cluster_codes, weights=wx[:, a] * x_dm[:, b], minlength=n_clusters
            )
    return scores @ bread, hessians


def jackknife_covariance(fit: FitResult) -> np.ndarray | None:
    """Leave-one-cluster-out (CR3) covariance: (G-1)/G times the sum of (b_(g) - b)(b_(g) - b)'.

    b_(g) - b is the exact change of the last weighted least-squares step when cluster g leaves:
    -(H - H_g)^-1 s_g, with H the bread's inverse, H_g and s_g the cluster's share of it and its score. Fixed
    effects and IRLS weights stay at the full-sample values (the one-step jackknife), which is what keeps it
    cheap; unlike CRV1 it does not trust the largest clusters to estimate their own variance.
    """
    if fit.influence is None or fit.cluster_hessians is None:
        return None
    hessian = fit.cluster_hessians.sum(axis=0)
    scores = fit.influence @ hessian
    remaining = hessian[None, :, :] - fit.cluster_hessians
    try:
        shifts = np.linalg.solve(remaining, scores[:, :, None])[:, :, 0]
    except np.linalg.LinAlgError:
        return None
    g = len(shifts)
    return shifts.T @ shifts * (g - 1) / g


def joint_covariance(a: FitResult, b: FitResult) -> np.ndarray | None:
    """Clustered covariance between the coefficients of two fits on the same clusters (k_a x k_b), or None.

    The sum over shared clusters of the outer products of their influences, with the G/(G-1) factor; the
    N-K factors of the two fits differ and are left out, which matters little with many rows per cluster.
    """
    if a.influence is None or b.influence is None or a.cluster_labels is None or b.cluster_labels is None:
        return None
    index_b = {label: i for i, label in enumerate(b.cluster_labels.tolist())}
    pairs = [(i, index_b[label]) for i, label in enumerate(a.cluster_labels.tolist()) if label in index_b]
    if len(pairs) < 2:
        return None
    ia, ib = (np.array(p) for p in zip(*pairs, strict=True))
    g = len(pairs)
    return a.influence[ia].T @ b.influence[ib] * g / (g - 1)


def _absorbed_fit_result(
    result: _LeastSquares,
    fe: FixedEffects,
    cluster_codes: np.ndarray,
    n: int,
    k: int,
    *,
    model: str,
    names: list[str],
    x_dm: np.ndarray,
    weights: np.ndarray | None,
    cluster_labels: np.ndarray,
    hessians: bool = True,
    weighted_x: np.ndarray | None = None,
    **details: Any,
) -> FitResult:
    """A fit on demeaned data, with clustered errors whose small-sample correction counts the absorbed levels.

    ``weighted_x``: ``x_dm`` times ``weights``, when the caller holds it already."""
    df_k = k + _absorbed_dof(fe, cluster_codes)
    _check_dof(int(cluster_codes.max()) + 1, n, df_k)
    labels = np.empty(int(cluster_codes.max()) + 1, dtype=object)
    labels[:] = cluster_labels[_first_rows(cluster_codes)]
    influence, cluster_hessians = _cluster_influence(x_dm, result.resid, weights, cluster_codes, hessians, weighted_x)
    return FitResult(
        influence=influence,
        cluster_hessians=cluster_hessians,
        cluster_labels=labels,
        weights=weights,
        demeaned_x=x_dm,
        model=model,
        names=list(names),
        params=np.asarray(result.params),
        cov=_cluster_cov(influence, n, df_k),
        nobs=n,
        n_clusters=int(cluster_codes.max()) + 1,
        df_k=df_k,
        **details,
    )


@_linear_algebra_is_an_estimation_error
def fit_ols_fe(
    y: np.ndarray,
    x: np.ndarray,
    names: list[str],
    fe_columns: list[np.ndarray],
    clusters: np.ndarray,
    *,
    model: str = "ols_fe",
    tol: float = 1e-10,
) -> FitResult:
    """OLS of ``y`` on ``x`` with the factors in ``fe_columns`` absorbed, errors clustered by ``clusters``."""
    n_in = len(y)
    keep = np.ones(n_in, dtype=bool)
    fe, keep, cluster_codes = _prepare(x, fe_columns, clusters, keep, tol)
    n = int(keep.sum())
    k = x.shape[1]
    if n <= k + 1:
        raise EstimationError(f"{model}: {n} usable rows for {k} regressors")
    yx = np.column_stack([y[keep], x[keep]])
    yx_dm, _ = fe.demean(yx)
    # column-major for the sandwich's per-cluster column sums (the demeaning returns rows contiguous)
    y_dm, x_dm = yx_dm[:, 0], np.asfortranarray(yx_dm[:, 1:])
    _check_design(x_dm, x[keep], names)
    result = _least_squares(y_dm, x_dm)
    return _absorbed_fit_result(
        result,
        fe,
        cluster_codes,
        n,
        k,
        model=model,
        names=names,
        x_dm=x_dm,
        weights=None,
        cluster_labels=clusters[keep],
        dropped={"singletons": n_in - n},
        kept_rows=keep,
    )


@_linear_algebra_is_an_estimation_error
def fit_pooled_ols(
    y: np.ndarray, x: np.ndarray, names: list[str], clusters: np.ndarray, *, model: str = "pooled_ols"
) -> FitResult:
    """Plain OLS with an intercept and no fixed effects, errors clustered by ``clusters``."""
    n, k = x.shape
    design = np.column_stack([np.ones(n), x])
    result = _least_squares(y, design)
    cluster_codes = factorize(clusters)[0]
    _check_dof(int(cluster_codes.max()) + 1 if n else 0, n, k + 1)
    influence, _ = _cluster_influence(design, result.resid, None, cluster_codes, with_hessians=False)
    cov = _cluster_cov(influence, n, k + 1)
    return FitResult(
        model=model,
        names=["intercept", *names],
        params=np.asarray(result.params),
        cov=cov,
        nobs=n,
        n_clusters=int(cluster_codes.max()) + 1,
        df_k=k + 1,
        kept_rows=np.ones(n, dtype=bool),
    )


def _separated(y: np.ndarray, codes: _Codes, keep: np.ndarray) -> np.ndarray:
    """Rows in a fixed-effect level whose outcome is zero throughout: its effect would run to minus infinity."""
    keep = keep.copy()
    while True:
        changed = False
        for fe_codes, n_levels in zip(codes.fe, codes.n_levels, strict=True):
            everything = bool(keep.all())  # no copies while nothing has been dropped
            totals = np.bincount(
                fe_codes if everything else fe_codes[keep], weights=y if everything else y[keep], minlength=n_levels
            )
            dead = keep & (totals[fe_codes] <= 0)
            if dead.any():
                keep &= ~dead
                changed = True
        if not changed:
            return keep


@_linear_algebra_is_an_estimation_error
def fit_ppml(
    y: np.ndarray,
    x: np.ndarray,
    names: list[str],
    fe_columns: list[np.ndarray],
    clusters: np.ndarray,
    *,
    tol: float = 1e-10,
    irls_tol: float = 1e-10,
    maxiter: int = 100,
    model: str = "ppml",
    start: np.ndarray | None = None,
    steps: int | None = None,
    hessians: bool = True,
    rows: np.ndarray | None = None,
) -> FitResult:
    """Poisson pseudo-maximum likelihood with absorbed fixed effects, by IRLS with weighted demeaning.

    Each step regresses the working response z = eta + (y - mu)/mu on x by weighted least squares with
    weights mu, after sweeping the fixed effects out of both with the same weights.
    Convergence is judged on the deviance, as fixest and pyfixest do. Fixed-effect levels with no sales at
    all are dropped first (their effect is minus infinity and would stall the iteration), then singletons.
    ``start`` (a linear predictor for every input row) replaces the usual start from the data; ``steps`` stops after
    that many steps, converged or not (from a start at a related fit's solution: the one-step estimator).
    ``hessians`` False leaves out the per-cluster X_g' W_g X_g (``cluster_hessians``, for the jackknife and the
    bootstrap), which a fit compared only through its influences does not need.
    ``rows`` (a boolean mask) fits those rows alone, as if only they had been passed, without copying the inputs
    first; ``kept_rows`` then marks the rows used among all of them.
    """
    keep = np.ones(len(y), dtype=bool) if rows is None else np.array(rows, dtype=bool)
    if np.any((y < 0) & keep):
        raise EstimationError("PPML needs a non-negative outcome")
    n_in = int(keep.sum())
    n_separated = 0
    codes = _Codes.of(fe_columns, clusters)
    # singletons and separated levels can uncover each other; repeat until neither changes anything
    while True:
        before = int(keep.sum())
        keep = _separated(y, codes, keep)
        n_separated += before - int(keep.sum())
        fe, keep, cluster_codes = _prepare(x, fe_columns, clusters, keep, tol, codes)
        if int(keep.sum()) == before:
            break
    del codes  # the codes of every input row: once rows are dropped, the fixed effects hold their own
    n = int(keep.sum())
    k = x.shape[1]
    if n <= k + 1:
        raise EstimationError(f"{model}: {n} usable rows for {k} regressors")
    every_row = n == len(y)
    yk = (y if every_row else y[keep]).astype(np.float64, copy=False)
    # one row-major buffer for [z, x], reused every step: the exact two-way demeaning walks it row by row; its
    # columns after the first are the kept regressors (no copy of them of their own: at a marketplace's size each
    # n x k array is a gigabyte)
    zx = np.empty((n, k + 1), dtype=np.float64)
    zx[:, 1:] = x if every_row else x[keep]
    xk = zx[:, 1:]

    if start is not None:
        # a related fit's linear predictor (the same model on overlapping rows): IRLS then needs a step or two
        eta = np.asarray(start, dtype=np.float64)[keep]
        mu = np.exp(eta)
    else:
        mu = (yk + yk.mean()) / 2
        eta = np.log(mu)
    deviance_of = _PoissonDeviance(yk)
    deviance = deviance_of(eta, mu)
    step: _Step | None = None
    for iteration in range(1, maxiter + 1):
        z = eta + yk / mu - 1
        zx[:, 0] = z
        step = None  # the last step's n x k arrays go before this step's are made
        step = _weighted_step(fe, zx, mu, xk, names, check=iteration == 1)
        weights = mu
        # z minus the step's residual z_dm - x_dm beta, that residual as one product over the contiguous rows
        eta = z - step.zx_dm @ np.concatenate([[1.0], -step.beta])
        mu = np.exp(eta)
        new_deviance = deviance_of(eta, mu)
        converged = abs(new_deviance - deviance) / (0.1 + abs(deviance)) < irls_tol
        deviance = new_deviance
        if converged or iteration == steps:
            break
    else:
        raise EstimationError(f"{model}: IRLS did not converge in {maxiter} iterations")
    del zx, xk  # the step holds what is left to compute; the rows' sparse dummies go too
    fe.release_work_arrays()
    # the converged step again: its params and residuals feed the clustered sandwich
    # a column-major copy for the sandwich, which sums each column per cluster (a bincount needs it contiguous)
    x_dm = np.asfortranarray(step.zx_dm[:, 1:])
    result = _least_squares(step.zx_dm[:, 0], x_dm, weights=weights, normal=(step.wx, step.gram))
    return _absorbed_fit_result(
        result,
        fe,
        cluster_codes,
        n,
        k,
        model=model,
        names=names,
        x_dm=x_dm,
        weights=weights,
        hessians=hessians,
        weighted_x=step.wx,
        cluster_labels=clusters[keep],
        dropped={"all_zero_fixed_effect": n_separated, "singletons": n_in - n - n_separated},
        iterations=iteration,
        kept_rows=keep,
        linear_predictor=eta,
    )


@dataclass(frozen=True)
class _Step:
    """One IRLS step: the working response and regressors demeaned ([z, x] as one array), the weighted
    regressors, their Gram matrix and the step's coefficients."""

    zx_dm: np.ndarray
    wx: np.ndarray
    gram: np.ndarray
    beta: np.ndarray


def _weighted_step(
    fe: FixedEffects, zx: np.ndarray, mu: np.ndarray, x: np.ndarray, names: list[str], *, check: bool
) -> _Step:
    """Weighted least squares of z on x (the columns of ``zx``) with weights ``mu``, after sweeping the fixed
    effects out of both; ``check``: first make sure each regressor still varies and none is collinear."""
    zx_dm, _ = fe.demean(zx, weights=mu)
    x_dm = zx_dm[:, 1:]
    if check:
        _check_design(x_dm, x, names)
    # weighted least squares on the demeaned data (k x k normal equations)
    wx = x_dm * mu[:, None]
    gram = wx.T @ x_dm
    return _Step(zx_dm, wx, gram, np.linalg.solve(gram, wx.T @ zx_dm[:, 0]))


class _PoissonDeviance:
    """The Poisson deviance of ``y`` at a linear predictor eta (mu = exp(eta)), with its constant part summed once.

    2 * sum(y log(y / mu) - (y - mu)) = 2 * (sum(y log y - y) - y . eta + sum(mu)) (y log y = 0 where y is 0): a
    dot product and a sum per IRLS step instead of a logarithm and a division of every row; the two differ by
    rounding (about 1e-15 of the deviance), far inside the 1e-10 change that stops IRLS.
    """

    def __init__(self, y: np.ndarray) -> None:
        self.y = y
        positive = y[y > 0]
        self.constant = float(np.sum(positive * np.log(positive)) - np.sum(y))

    def __call__(self, eta: np.ndarray, mu: np.ndarray) -> float:
        return 2 * (self.constant - float(self.y @ eta) + float(np.sum(mu)))


def _first_rows(codes: np.ndarray) -> np.ndarray:
    """The row where each code first appears, for codes numbered in order of first appearance (:func:`factorize`):
    exactly the rows whose code exceeds every code before it."""
    if not len(codes):
        return np.zeros(0, dtype=np.intp)
    new = np.empty(len(codes), dtype=bool)
    new[0] = True
    np.greater(codes[1:], np.maximum.accumulate(codes)[:-1], out=new[1:])
    return np.flatnonzero(new)
