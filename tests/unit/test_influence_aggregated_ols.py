import numpy as np
import pytest

from imagelift.influence.aggregated_ols import CellSums, fit_ols_two_way
from imagelift.influence.estimation import fit_ols_fe


@pytest.fixture
def unbalanced_panel():
    rng = np.random.default_rng(7)
    n = 4000
    product = rng.integers(0, 300, n)
    week = rng.integers(0, 40, n)
    # singleton products and a singleton week, to exercise the dropping
    product = np.concatenate([product, [1000, 1001, 5]])
    week = np.concatenate([week, [3, 7, 99]])
    n = len(product)
    x = np.column_stack([rng.integers(0, 2, n), rng.normal(size=n) + 0.01 * product])
    y = 0.3 * x[:, 0] - 0.8 * x[:, 1] + 0.02 * product + 0.05 * week + rng.normal(size=n)
    return y, x, product, week


def test_cell_sum_fit_equals_row_level_fit(unbalanced_panel):
    y, x, product, week = unbalanced_panel
    rows = fit_ols_fe(y, x, ["a", "b"], [product, week], product, tol=1e-14)
    cells = fit_ols_two_way(CellSums.from_rows(y, x, product, week))
    assert cells.nobs == rows.nobs
    assert cells.df_k == rows.df_k
    assert cells.n_clusters == rows.n_clusters
    assert cells.singletons == rows.dropped["singletons"] > 0
    np.testing.assert_allclose(cells.params, rows.params, rtol=0, atol=1e-10)
    np.testing.assert_allclose(cells.std_err, rows.std_err, rtol=0, atol=1e-10)
    np.testing.assert_allclose(cells.cluster_hessians.sum(axis=0), rows.cluster_hessians.sum(axis=0), rtol=1e-10)
