"""The headline fit (PPML with product and week effects, clustered by product), by the cheaper of two routes.

Below ``ReportConfig.cell_sums_min_rows`` rows it is :func:`~imagelift.influence.estimation.fit_ppml`, which sweeps
the fixed effects out of every row at each IRLS step; from there on it is solved on product x week cell sums
(:func:`~imagelift.influence.aggregated.fit_ppml_rows`), one pass over the rows per Newton step. Both reach the
same maximum: coefficients agree to 1e-12 and standard errors to about 1e-7 of themselves at the default IRLS
tolerance (to rounding as it shrinks), so the report reads the same either way.
"""

from __future__ import annotations

import numpy as np

from imagelift.config import ReportConfig
from imagelift.influence.estimation import EstimationError, FitResult, fit_ppml


def fit_headline_ppml(
    units: np.ndarray,
    x: np.ndarray,
    names: list[str],
    product: np.ndarray,
    week: np.ndarray,
    config: ReportConfig,
    *,
    model: str = "ppml",
) -> FitResult:
    """PPML of ``units`` on ``x`` with product and week effects, errors clustered by product."""
    if len(units) < config.cell_sums_min_rows or x.shape[1] == 0:
        return fit_ppml(
            units, x, names, [product, week], product, tol=config.fe_tol, irls_tol=config.irls_tol, model=model
        )
    # scipy.sparse, which the cell route needs, costs a noticeable part of a cold start: only load it when used
    from imagelift.influence.aggregated import fit_ppml_rows

    try:
        return fit_ppml_rows(units, x, names, product, week, irls_tol=config.irls_tol, model=model)
    except np.linalg.LinAlgError as exc:
        raise EstimationError(f"{model}: {exc}") from exc
