"""The Student t, normal and F probabilities the report needs, straight from scipy.special.

Importing scipy.stats builds every distribution object it offers (about 1.1 s more than scipy.special here,
on every cold start of the report function); its ``t``, ``norm`` and ``f`` compute these very numbers with the
scipy.special functions called below, so the results are the same to the last bit. Scalars give numpy scalars
and arrays give arrays, as scipy.stats does.
"""

from __future__ import annotations

from scipy import special


def t_ppf(q, df):
    """Quantile of Student t with ``df`` degrees of freedom (``scipy.stats.t.ppf``)."""
    return special.stdtrit(df, q)


def t_sf(x, df):
    """Upper tail P(T > x) of Student t (``scipy.stats.t.sf``)."""
    return special.stdtr(df, -x)


def norm_cdf(x):
    """Standard normal P(Z <= x) (``scipy.stats.norm.cdf``)."""
    return special.ndtr(x)


def norm_sf(x):
    """Standard normal P(Z > x) (``scipy.stats.norm.sf``)."""
    return special.ndtr(-x)


def norm_ppf(q):
    """Standard normal quantile (``scipy.stats.norm.ppf``)."""
    return special.ndtri(q)


def f_sf(x, dfn, dfd):
    """Upper tail P(F > x) of the F distribution (``scipy.stats.f.sf``)."""
    return special.fdtrc(dfn, dfd, x)
