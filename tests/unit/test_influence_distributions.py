"""The report's t, normal and F probabilities are scipy.stats' own, to the last bit, without importing it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import imagelift
from imagelift.influence import distributions as d

PROBABILITIES = np.array([1e-12, 0.001, 0.025, 0.1, 0.5, 0.8, 0.975, 0.999, 1 - 1e-12])
VALUES = np.array([-40.0, -3.0, -1.96, -0.5, 0.0, 0.3, 1.0, 2.5, 8.0, 40.0, np.inf, -np.inf])


@pytest.mark.parametrize("df", [1, 2, 5, 29, 30, 199, 5_000, 1e7])
def test_student_t_is_scipy_stats(df):
    np.testing.assert_array_equal(d.t_ppf(PROBABILITIES, df), stats.t.ppf(PROBABILITIES, df))
    np.testing.assert_array_equal(d.t_sf(VALUES, df), stats.t.sf(VALUES, df))
    assert d.t_ppf(0.975, df) == stats.t.ppf(0.975, df)
    assert isinstance(d.t_ppf(0.975, df), np.floating)


def test_normal_is_scipy_stats():
    np.testing.assert_array_equal(d.norm_cdf(VALUES), stats.norm.cdf(VALUES))
    np.testing.assert_array_equal(d.norm_sf(VALUES), stats.norm.sf(VALUES))
    np.testing.assert_array_equal(d.norm_ppf(PROBABILITIES), stats.norm.ppf(PROBABILITIES))


@pytest.mark.parametrize("dfn, dfd", [(1, 10), (3, 40), (8, 2_000)])
def test_f_tail_is_scipy_stats(dfn, dfd):
    values = np.array([0.0, 0.2, 1.0, 2.7, 15.0, np.inf])
    np.testing.assert_array_equal(d.f_sf(values, dfn, dfd), stats.f.sf(values, dfn, dfd))


def test_the_report_service_does_not_import_scipy_stats_or_sparse():
    code = (
        "import sys, imagelift.services.report_service; "
        "print(sorted(m for m in ('scipy.stats', 'scipy.sparse', 'statsmodels') if m in sys.modules))"
    )
    layers = str(Path(imagelift.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": layers}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "[]"
