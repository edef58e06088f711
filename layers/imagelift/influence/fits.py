"""The report's OLS fits with product and week effects, clustered by product, by the cheaper of two routes.

Below ``ReportConfig.cell_sums_min_rows`` rows it is :func:`~imagelift.influence.estimation.fit_ols_fe`, which
sweeps the fixed effects out of every row by alternating projections; from there on it is solved exactly on
product x week cell sums (:func:`~imagelift.influence.aggregated_ols.fit_ols_cells`), one pass over the rows and
no iteration (regressors nearly collinear after the fixed effects go to the rows, where that is judged). Both give the same coefficients, clustered covariance, observations, dropped singletons, kept rows
and per-product influences (to rounding and the demeaning tolerance), so the report reads the same either way;
only the row path carries the demeaned regressors, which nothing downstream of these fits reads.
"""

from __future__ import annotations

import numpy as np

from imagelift.config import ReportConfig
from imagelift.influence import aggregated_ols
from imagelift.influence.estimation import FitResult, fit_ols_fe


def fit_two_way_ols(
    y: np.ndarray,
    x: np.ndarray,
    names: list[str],
    product: np.ndarray,
    week: np.ndarray,
    config: ReportConfig,
    *,
    model: str,
) -> FitResult:
    """OLS of ``y`` on ``x`` with product and week effects, errors clustered by product."""
    if len(y) < config.cell_sums_min_rows or x.shape[1] == 0:
        return fit_ols_fe(y, x, names, [product, week], product, model=model, tol=config.fe_tol)
    try:
        return aggregated_ols.fit_ols_cells(y, x, names, product, week, model=model)
    except aggregated_ols.TooIllConditioned:
        # (nearly) collinear regressors: the rows say whether they are, and estimate what can be
        return fit_ols_fe(y, x, names, [product, week], product, model=model, tol=config.fe_tol)
